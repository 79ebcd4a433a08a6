-- Detection acting on events: the per-load evaluation and its decisions
-- (the tables, settings and type inference are in 32_detection.sql; this
-- file comes after the lifecycle because every move goes through it).
--
-- The functions here and the ingest triggers run with jit = off: their
-- statements work on small sets, where compiling costs more than it saves
-- (measured: 3.4 s of JIT compilation for a 60-series evaluation that runs
-- in 0.1 s without it).

CREATE VIEW evmgmt.detection_conditions AS
SELECT d.site_id, d.queue_id, d.pool, d.status, d.severity, d.event_id, d.breach_started_at, d.evaluated_at,
	   d.healthy_intervals, pc.state AS condition_state, pc.severity AS condition_severity
FROM evmgmt.detection_state d
LEFT JOIN evmgmt.pool_condition pc ON pc.event_id = d.event_id AND pc.pool = d.pool;
COMMENT ON VIEW evmgmt.detection_conditions IS 'Each series detection follows with its status (breaching, recovering, flapping, recovered) next to the state of its pool condition';

-- Note on an event's timeline that a rule acted, with who loaded the data.
CREATE FUNCTION evmgmt.detection_note(p_event_id bigint, p_pool evmgmt.pool, p_rule text, p_reason text, p_details jsonb)
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO evmgmt.event_timeline (event_id, pool, actor, action, reason, details)
	VALUES (p_event_id, p_pool, 'rule:' || p_rule, 'note', p_reason,
			p_details || pg_catalog.jsonb_build_object('session_user', SESSION_USER::text, 'rule', p_rule));
END;
COMMENT ON FUNCTION evmgmt.detection_note(bigint, evmgmt.pool, text, text, jsonb) IS 'Timeline note by a detection rule (actor rule:<name>; the loading session user in the details)';

-- Evaluate one series at one interval (data time) and act: open, join,
-- raise, reopen, mark recovering, or only record why not (maintenance,
-- inhibition, backfill).  Called in data order for each new interval.
CREATE FUNCTION evmgmt.detect_point(p_site text, p_queue text, p_pool evmgmt.pool, p_operation text,
									pol evmgmt.effective_detection_policy, sustains integer[],
									thresholds double precision[], pt evmgmt.detection_row,
									buf evmgmt.detection_row[], backfill boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_rule constant text := 'sustained_service_level';
	v_end timestamptz := pt.interval_start + pt.interval_minutes * interval '1 minute';
	v_tier evmgmt.severity;
	v_k integer;
	v_run_start timestamptz;
	v_healthy boolean;
	d evmgmt.detection_state;
	v_found boolean;
	f record;
	v_esc_base double precision;
	v_tra_base double precision;
	inf record;
	v_figures jsonb;
	v_intervals jsonb;
	v_evidence jsonb;
	v_event bigint;
	v_inhibitor bigint;
	v_decision text;
	v_status text;
	v_transitions timestamptz[];
	v_closed timestamptz;
	v_state evmgmt.event_state;
	v_sev evmgmt.severity;
	v_title text;
	v_reason text;
BEGIN
	v_tier := evmgmt.classify_sustained_runs(pt.runs[1], pt.runs[2], pt.runs[3], sustains[1], sustains[2], sustains[3]);
	v_healthy := pt.service_level IS NOT NULL
				 AND COALESCE(pt.runs[1], 0) = 0 AND COALESCE(pt.runs[2], 0) = 0 AND COALESCE(pt.runs[3], 0) = 0;

	SELECT * INTO d FROM evmgmt.detection_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool FOR UPDATE;
	v_found := FOUND;
	-- an event a responder resolved, closed or cancelled is no longer followed
	IF v_found AND d.status <> 'recovered' THEN
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = d.event_id AND pc.pool = p_pool;
		IF v_state IS NULL OR v_state IN ('resolved', 'cancelled')
		   OR EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = d.event_id
					  AND (e.closed_at IS NOT NULL OR e.cancelled_at IS NOT NULL)) THEN
			d.status := 'recovered';
		END IF;
	END IF;

	-- a point evaluated before (a re-delivery): only a breach worse than the
	-- one recorded acts again; nothing else is replayed
	IF v_found AND v_end <= d.evaluated_at
	   AND (v_tier IS NULL OR (d.status <> 'recovered' AND d.severity <= v_tier)) THEN
		RETURN;
	END IF;

	IF v_tier IS NULL THEN
		IF NOT v_found OR backfill THEN
			RETURN;
		END IF;
		IF d.status = 'recovered' THEN
			UPDATE evmgmt.detection_state s SET status = 'recovered', evaluated_at = v_end, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool AND s.status <> 'recovered';
			RETURN;
		END IF;
		v_status := d.status;
		v_transitions := ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x WHERE x > v_end - pol.flap_window ORDER BY x);
		IF NOT v_healthy THEN
			-- below a threshold again, not (yet) for long enough
			UPDATE evmgmt.detection_state s SET evaluated_at = v_end, healthy_intervals = 0, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
			RETURN;
		END IF;
		IF d.status = 'breaching' THEN
			v_transitions := v_transitions || v_end;
			v_status := CASE WHEN pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN 'flapping' ELSE 'recovering' END;
			d.healthy_intervals := 1;
		ELSIF d.status = 'flapping' THEN
			d.healthy_intervals := d.healthy_intervals + 1;
			-- held until healthy for a whole flap window
			IF d.healthy_intervals * pt.interval_minutes * interval '1 minute' >= pol.flap_window THEN
				v_status := 'recovering';
			END IF;
		ELSE
			d.healthy_intervals := d.healthy_intervals + 1;
		END IF;
		v_evidence := pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object(
						  'service_level', pt.service_level, 'healthy_intervals', d.healthy_intervals));
		IF v_status <> d.status THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', v_status, d.event_id, d.severity, v_evidence);
			PERFORM evmgmt.detection_note(d.event_id, p_pool, 'recovery',
				CASE v_status WHEN 'flapping' THEN pg_catalog.format('%s flapping: held at %s', p_pool, d.severity)
							  ELSE pg_catalog.format('%s recovering: service level %s%%', p_pool,
													 pg_catalog.round((pt.service_level * 100)::numeric)) END,
				pg_catalog.jsonb_build_object('status', v_status, 'data_time', pt.interval_start));
		END IF;
		-- opt-in auto-resolve (routine tiers, after a response was logged)
		IF v_status = 'recovering' AND pol.auto_resolve_after IS NOT NULL
		   AND d.healthy_intervals >= pol.auto_resolve_after AND v_sev = ANY (pol.auto_resolve_severities)
		   AND v_state = 'responding' THEN
			PERFORM evmgmt.resolve_pool(d.event_id, p_pool,
				pg_catalog.format('rule:recovery: healthy for %s intervals', d.healthy_intervals));
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', 'auto_resolved', d.event_id, d.severity, v_evidence);
			v_status := 'recovered';
		END IF;
		UPDATE evmgmt.detection_state s
		SET status = v_status, evaluated_at = v_end, healthy_intervals = d.healthy_intervals,
			transitions = v_transitions, updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- a sustained breach at this interval: what it looks like
	------------------------------------------------------------------
	v_k := CASE v_tier WHEN 'sev1' THEN 1 WHEN 'sev2' THEN 2 ELSE 3 END;
	v_run_start := v_end - pt.runs[v_k] * interval '1 minute';
	SELECT pg_catalog.sum(x.offered)::float8 AS offered, pg_catalog.sum(x.handled)::float8 AS handled,
		   pg_catalog.avg(x.staffed) FILTER (WHERE x.scheduled IS NOT NULL) AS staffed,
		   pg_catalog.avg(x.scheduled) FILTER (WHERE x.staffed IS NOT NULL) AS scheduled,
		   pg_catalog.sum(x.offered) FILTER (WHERE x.forecast_offered IS NOT NULL)::float8 AS offered_fc,
		   pg_catalog.sum(x.forecast_offered)::float8 AS forecast_offered,
		   pg_catalog.sum(x.aht * x.handled) FILTER (WHERE x.forecast_aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS aht,
		   pg_catalog.sum(x.forecast_aht * x.handled) FILTER (WHERE x.aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS forecast_aht,
		   pg_catalog.sum(x.escalated)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.escalated IS NOT NULL), 0) AS escalated_share,
		   pg_catalog.sum(x.transferred)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.transferred IS NOT NULL), 0) AS transferred_share,
		   pg_catalog.sum(x.answered)::float8 / NULLIF(pg_catalog.sum(x.offered), 0) AS service_level,
		   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
			   'interval_start', x.interval_start, 'minutes', x.interval_minutes, 'service_level', x.service_level,
			   'offered', x.offered, 'handled', x.handled, 'forecast_offered', x.forecast_offered,
			   'staffed', x.staffed, 'scheduled', x.scheduled, 'aht', x.aht, 'forecast_aht', x.forecast_aht,
			   'escalated', x.escalated, 'transferred', x.transferred) ORDER BY x.interval_start) AS intervals
	INTO f
	FROM pg_catalog.unnest(buf) x
	WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	-- process shares against the same series and interval of day, 7 days back
	IF f.escalated_share IS NOT NULL OR f.transferred_share IS NOT NULL THEN
		SELECT pg_catalog.sum(h.escalated)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.escalated IS NOT NULL), 0),
			   pg_catalog.sum(h.transferred)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.transferred IS NOT NULL), 0)
		INTO v_esc_base, v_tra_base
		FROM pg_catalog.unnest(buf) x
		CROSS JOIN pg_catalog.generate_series(1, 7) k
		JOIN evmgmt.interval_stat h
		  ON h.interval_start = x.interval_start - k * interval '1 day'
		 AND h.site_id = p_site AND h.queue_id = p_queue AND h.pool = p_pool
		WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	END IF;
	SELECT * INTO inf FROM evmgmt.infer_event_type(f.offered, f.handled, f.staffed, f.scheduled,
		f.forecast_offered, f.offered_fc, f.aht, f.forecast_aht,
		f.escalated_share, v_esc_base, f.transferred_share, v_tra_base, pol) i;
	v_figures := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'tier', v_tier, 'service_level', f.service_level, 'latest_service_level', pt.service_level,
		'run_started_at', v_run_start, 'run_minutes', pt.runs[v_k],
		'minutes_below_sev1', pt.runs[1], 'minutes_below_sev2', pt.runs[2], 'minutes_below_sev3', pt.runs[3],
		'thresholds', pg_catalog.to_jsonb(thresholds), 'sustain_minutes', pg_catalog.to_jsonb(sustains),
		'offered', f.offered, 'handled', f.handled, 'forecast_offered', f.forecast_offered,
		'staffed', f.staffed, 'scheduled', f.scheduled, 'aht', f.aht, 'forecast_aht', f.forecast_aht,
		'escalated_share', f.escalated_share, 'escalated_share_7d_mean', v_esc_base,
		'transferred_share', f.transferred_share, 'transferred_share_7d_mean', v_tra_base,
		'inferred_type', inf.event_type, 'inferred_subtype', inf.subtype, 'inference', inf.matched,
		'weak_inference', inf.weak));
	v_evidence := pg_catalog.jsonb_build_object('figures', v_figures, 'intervals', f.intervals);

	IF backfill THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'backfill', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'backfill' AND l.severity = v_tier);
		RETURN;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.maintenance_window w
			   WHERE w.site_id = p_site AND (w.queue_id IS NULL OR w.queue_id = p_queue)
				 AND (w.pool IS NULL OR w.pool = p_pool)
				 AND w.starts_at <= pt.interval_start AND w.ends_at > pt.interval_start) THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'maintenance', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'maintenance' AND l.severity = v_tier);
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- which event the condition belongs to
	------------------------------------------------------------------
	IF v_found AND d.status <> 'recovered' THEN
		v_event := d.event_id;
	END IF;
	-- a breach prediction foresaw (49_prediction.sql): its event carries on
	IF v_event IS NULL AND EXISTS (SELECT FROM evmgmt.prediction_state ps
								   WHERE ps.site_id = p_site AND ps.queue_id = p_queue AND ps.pool = p_pool
									 AND ps.status = 'predicted') THEN
		v_event := evmgmt.prediction_confirm(p_site, p_queue, p_pool, pt.interval_start, v_tier);
		IF v_event IS NOT NULL THEN
			v_decision := 'continued';
		END IF;
	END IF;
	-- an open sev1 outage at the site/queue absorbs the lower tiers it explains
	SELECT e.event_id INTO v_inhibitor
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.site_id = p_site AND (e.queue_id IS NULL OR e.queue_id = p_queue) AND e.event_type = 'system'
	  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
	  AND pc.severity = 'sev1' AND pc.state NOT IN ('resolved', 'cancelled')
	  AND e.event_id IS DISTINCT FROM v_event
	ORDER BY e.event_id LIMIT 1;
	IF v_inhibitor IS NOT NULL THEN
		IF v_tier = 'sev1' AND inf.event_type = 'system' THEN
			v_event := v_inhibitor;
		ELSIF v_event IS NULL THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
			SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'inhibited', v_inhibitor, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
			WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
							  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
								AND l.data_time = pt.interval_start AND l.decision = 'inhibited' AND l.severity = v_tier);
			RETURN;
		END IF;
	END IF;
	v_reason := pg_catalog.format('%s %s: service level below %s%% for %s min (tier %s)', v_rule, p_pool,
								  pg_catalog.round((thresholds[v_k] * 100)::numeric), pt.runs[v_k], v_tier);
	-- the same series breaching again within the recurrence window: its event
	IF v_event IS NULL AND v_found AND d.event_id IS NOT NULL THEN
		SELECT e.closed_at INTO v_closed FROM evmgmt.event e
		WHERE e.event_id = d.event_id AND e.cancelled_at IS NULL;
		IF v_closed IS NULL AND FOUND THEN
			v_event := d.event_id;
		ELSIF v_closed >= pg_catalog.now() - evmgmt.setting_interval('evmgmt.recurrence_window', interval '7 days') THEN
			PERFORM evmgmt.reopen_event(d.event_id, 'rule:' || v_reason, ARRAY[p_pool]);
			v_event := d.event_id;
			v_decision := 'reopened';
		END IF;
	END IF;
	-- one event per condition: the open event of the site, queue and type
	-- (also one a responder retyped from that type: reclassify_type)
	IF v_event IS NULL THEN
		SELECT e.event_id INTO v_event FROM evmgmt.event e
		WHERE e.site_id = p_site AND e.queue_id = p_queue
		  AND (e.event_type = inf.event_type
			   OR EXISTS (SELECT FROM evmgmt.event_timeline t
						  WHERE t.event_id = e.event_id AND t.action = 'reclassified' AND t.pool IS NULL
							AND t.details ->> 'from_type' = inf.event_type::text))
		  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
		ORDER BY e.event_id DESC LIMIT 1;
	END IF;
	IF v_event IS NULL THEN
		v_title := pg_catalog.format('%s at %s %s: service level %s%% for %s min',
			COALESCE((SELECT st.name FROM evmgmt.event_subtype st WHERE st.subtype = inf.subtype), pg_catalog.initcap(inf.event_type::text)),
			p_site, p_queue, pg_catalog.round((COALESCE(f.service_level, 0) * 100)::numeric), pt.runs[v_k]);
		v_event := evmgmt.open_event(inf.event_type, p_site, ARRAY[p_pool], 'rule', v_title,
									 LEAST(v_run_start, pg_catalog.now()), p_queue, inf.subtype,
									 'Opened by rule ' || v_rule || ': ' || inf.matched
									 || CASE WHEN inf.weak THEN ' (weak inference: check the type)' ELSE '' END);
		PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
		v_decision := 'opened';
	ELSE
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = v_event AND pc.pool = p_pool;
		IF NOT FOUND THEN
			PERFORM evmgmt.add_pool(v_event, p_pool, 'rule:' || v_reason);
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := 'joined';
		ELSIF v_state = 'detected' THEN
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := COALESCE(v_decision, 'joined');
		ELSIF v_state = 'cancelled' THEN
			v_decision := NULL;		-- a responder called it a false positive
		ELSE
			IF v_state = 'resolved' THEN
				PERFORM evmgmt.reopen_pool(v_event, p_pool, 'rule:' || v_reason);
				v_decision := 'reopened';
			END IF;
			IF v_sev > v_tier THEN
				PERFORM evmgmt.reclassify_pool(v_event, p_pool, v_tier, 'rule:' || v_reason);
				v_decision := COALESCE(v_decision, 'raised');
			END IF;
		END IF;
	END IF;

	-- the series' own state; a breach after recovering is a transition
	v_transitions := CASE WHEN v_found THEN ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x
												  WHERE x > v_end - pol.flap_window ORDER BY x)
					 ELSE '{}' END;
	v_status := 'breaching';
	IF v_found AND d.status IN ('recovering', 'recovered') AND d.event_id = v_event THEN
		v_transitions := v_transitions || v_end;
		v_decision := COALESCE(v_decision, 'continued');
	END IF;
	IF v_found AND d.status = 'flapping' AND d.event_id = v_event THEN
		v_status := 'flapping';
	ELSIF pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN
		IF d.status IS DISTINCT FROM 'flapping' THEN
			v_decision := COALESCE(v_decision, 'flapping');
		END IF;
		v_status := 'flapping';
	END IF;
	INSERT INTO evmgmt.detection_state AS s (site_id, queue_id, pool, status, severity, event_id, breach_started_at,
											 evaluated_at, healthy_intervals, transitions)
	VALUES (p_site, p_queue, p_pool, v_status, v_tier, v_event, v_run_start, v_end, 0, v_transitions)
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE
	SET status = EXCLUDED.status,
		severity = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN LEAST(s.severity, EXCLUDED.severity)
						ELSE EXCLUDED.severity END,
		event_id = EXCLUDED.event_id,
		breach_started_at = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN s.breach_started_at
								 ELSE EXCLUDED.breach_started_at END,
		evaluated_at = EXCLUDED.evaluated_at, healthy_intervals = 0, transitions = EXCLUDED.transitions,
		updated_at = pg_catalog.clock_timestamp();

	IF v_decision IS NOT NULL THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
		VALUES (p_site, p_queue, p_pool, pt.interval_start, v_rule, v_decision, v_event, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence);
		PERFORM evmgmt.detection_note(v_event, p_pool, v_rule, v_decision || ': ' || v_reason,
			pg_catalog.jsonb_build_object('decision', v_decision, 'data_time', pt.interval_start, 'tier', v_tier,
										  'suggested_type', inf.event_type, 'suggested_subtype', inf.subtype,
										  'weak_inference', inf.weak));
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.detect_point(text, text, evmgmt.pool, text, evmgmt.effective_detection_policy, integer[], double precision[], evmgmt.detection_row, evmgmt.detection_row[], boolean) IS 'Detection for one series at one interval in data time: opens, joins, raises or reopens through the lifecycle functions, marks recovering or flapping, or records a suppressed breach (maintenance, inhibition, backfill) with its evidence';

-- Evaluate the series one load touched (called by interval_stat's statement
-- trigger).  Only series whose new intervals dip below a threshold, or that
-- detection already follows, are read further; their intervals in one
-- range scan on the key, then each new interval in data order.
CREATE FUNCTION evmgmt.detect_loaded(touched evmgmt.interval_touch[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_now timestamptz := pg_catalog.now();
	v_from timestamptz;
	v_to timestamptz;
	c record;
	v_nestloop text;
BEGIN
	-- a silent site that sends data again (48_feed_health.sql)
	IF EXISTS (SELECT FROM evmgmt.feed_health f WHERE f.resumed_at IS NULL) THEN
		PERFORM evmgmt.feed_resumed(touched);
	END IF;
	IF pg_catalog.to_regclass('pg_temp.evmgmt_detect_cand') IS NULL THEN
		CREATE TEMPORARY TABLE evmgmt_detect_cand (
			n integer, site_id text COLLATE "C", queue_id text COLLATE "C", pool evmgmt.pool, operation_id text,
			first_start timestamptz, last_start timestamptz, prev_last_start timestamptz,
			eval_from timestamptz, backfill boolean, read_from timestamptz, rows evmgmt.detection_row[],
			followed boolean, first_tiered timestamptz
		) ON COMMIT DELETE ROWS;
	END IF;
	DELETE FROM pg_temp.evmgmt_detect_cand;

	-- The points to evaluate are the intervals new to the series (all of
	-- the load when it only re-delivered), the live ones only; when nothing
	-- of it is live, its latest interval once, as backfill.
	INSERT INTO pg_temp.evmgmt_detect_cand (n, site_id, queue_id, pool, operation_id, first_start, last_start,
											prev_last_start, eval_from, backfill, read_from, followed)
	SELECT pg_catalog.row_number() OVER (), t.site_id, t.queue_id, t.pool, si.operation_id, t.first_start,
		   t.last_start, t.prev_last_start, e.eval_from, e.backfill,
		   CASE WHEN e.backfill THEN t.last_start ELSE GREATEST(e.eval_from, v_now - pol.backfill_after - interval '1 hour') END
			   - pol.lookback,
		   d.site_id IS NOT NULL AND d.status <> 'recovered'
	FROM pg_catalog.unnest(touched) t
	JOIN evmgmt.site si ON si.site_id = t.site_id
	JOIN evmgmt.severity_thresholds th ON th.operation_id = si.operation_id
	JOIN evmgmt.effective_detection_policy pol ON pol.operation_id = si.operation_id
	LEFT JOIN evmgmt.detection_state d ON d.site_id = t.site_id AND d.queue_id = t.queue_id AND d.pool = t.pool
	CROSS JOIN LATERAL (
		SELECT CASE WHEN t.prev_last_start IS NULL OR t.last_start <= t.prev_last_start THEN t.first_start
					ELSE t.prev_last_start + interval '1 microsecond' END AS eval_from,
			   -- an interval is live when it ended less than backfill_after ago
			   -- (here bounded by the longest interval, an hour; exact below)
			   t.last_start + interval '1 hour' < v_now - pol.backfill_after AS backfill
	) e
	WHERE pol.enabled
	  AND ((d.site_id IS NOT NULL AND d.status <> 'recovered')
		   OR t.min_service_level < GREATEST(th.sev1_threshold, th.sev2_threshold, th.sev3_threshold)
		   OR (t.min_service_level <= 0 AND 0 IN (th.sev1_threshold, th.sev2_threshold, th.sev3_threshold)));
	IF NOT FOUND THEN
		RETURN;
	END IF;
	ANALYZE pg_temp.evmgmt_detect_cand;
	SELECT pg_catalog.min(k.read_from), pg_catalog.max(GREATEST(k.last_start, k.prev_last_start))
	INTO v_from, v_to
	FROM pg_temp.evmgmt_detect_cand k;

	-- The candidates' intervals come from one range scan on the key, hashed
	-- against the candidates: a nested loop would rescan the whole range for
	-- every candidate (the key leads with time), so it is ruled out here.
	v_nestloop := pg_catalog.current_setting('enable_nestloop');
	PERFORM pg_catalog.set_config('enable_nestloop', 'off', true);

	-- one range scan on the key for all candidates, the runs as a window
	UPDATE pg_temp.evmgmt_detect_cand cd SET rows = agg.rows
	FROM (SELECT x.n,
				 pg_catalog.array_agg(ROW(x.interval_start, x.interval_minutes, x.sl, x.runs, x.offered, x.handled,
										  x.answered_in_threshold, x.staffed, x.scheduled, x.forecast_offered,
										  x.aht_seconds, x.forecast_aht, x.escalated, x.transferred)::evmgmt.detection_row
									  ORDER BY x.interval_start) AS rows
		  FROM (SELECT d.*, evmgmt.interval_service_level(d.answered_in_threshold, d.offered) AS sl,
					   evmgmt.sustained_runs_below(evmgmt.interval_service_level(d.answered_in_threshold, d.offered),
												   ARRAY[th2.sev1_threshold, th2.sev2_threshold, th2.sev3_threshold],
												   d.interval_start, d.interval_minutes)
						   OVER (PARTITION BY d.n ORDER BY d.interval_start) AS runs
				FROM (-- the same interval twice in one statement is read once
					  -- here (the deferred key refuses it at commit)
					  SELECT DISTINCT ON (cd2.n, s.interval_start) cd2.n, cd2.operation_id, s.*
					  FROM evmgmt.interval_stat s
					  JOIN pg_temp.evmgmt_detect_cand cd2
						ON cd2.site_id = s.site_id AND cd2.queue_id = s.queue_id AND cd2.pool = s.pool
					  WHERE s.interval_start > v_from AND s.interval_start <= v_to
						AND s.interval_start > cd2.read_from
					  ORDER BY cd2.n, s.interval_start) d
				JOIN evmgmt.severity_thresholds th2 ON th2.operation_id = d.operation_id) x
		  GROUP BY x.n) agg
	WHERE agg.n = cd.n;
	PERFORM pg_catalog.set_config('enable_nestloop', v_nestloop, true);

	-- backfill exactly: no new interval of the series is live; and the first
	-- new point below a tier's threshold for long enough (a series detection
	-- did not follow before the load has nothing to do before it: such a
	-- point opens nothing and records nothing, see detect_point)
	UPDATE pg_temp.evmgmt_detect_cand cd
	SET backfill = NOT EXISTS (SELECT FROM pg_catalog.unnest(cd.rows) x
							   WHERE x.interval_start >= cd.eval_from
								 AND x.interval_start + x.interval_minutes * interval '1 minute' >= v_now - pol.backfill_after),
		first_tiered = (SELECT pg_catalog.min(x.interval_start) FROM pg_catalog.unnest(cd.rows) x
						WHERE x.interval_start >= cd.eval_from
						  AND evmgmt.classify_sustained_runs(x.runs[1], x.runs[2], x.runs[3], th.sev1_sustain,
															 th.sev2_sustain, th.sev3_sustain) IS NOT NULL)
	FROM evmgmt.effective_detection_policy pol, evmgmt.severity_thresholds th
	WHERE pol.operation_id = cd.operation_id AND th.operation_id = cd.operation_id;

	-- every point in data order across series (at one time the worst
	-- service level first, so an outage is open before what it explains)
	FOR c IN
		SELECT cd.site_id, cd.queue_id, cd.pool, cd.operation_id, cd.backfill, cd.rows, pol AS policy,
			   ARRAY[th.sev1_sustain, th.sev2_sustain, th.sev3_sustain] AS sustains,
			   ARRAY[th.sev1_threshold, th.sev2_threshold, th.sev3_threshold] AS thresholds,
			   ROW(pt.*)::evmgmt.detection_row AS pt
		FROM pg_temp.evmgmt_detect_cand cd
		JOIN evmgmt.severity_thresholds th ON th.operation_id = cd.operation_id
		JOIN evmgmt.effective_detection_policy pol ON pol.operation_id = cd.operation_id
		CROSS JOIN LATERAL pg_catalog.unnest(cd.rows) pt
		WHERE pt.interval_start >= cd.eval_from
		  AND (cd.followed OR pt.interval_start >= cd.first_tiered)
		  AND CASE WHEN cd.backfill THEN pt.interval_start = (SELECT pg_catalog.max(y.interval_start) FROM pg_catalog.unnest(cd.rows) y)
				   ELSE pt.interval_start + pt.interval_minutes * interval '1 minute' >= v_now - pol.backfill_after END
		ORDER BY pt.interval_start, pt.service_level NULLS LAST, cd.site_id, cd.queue_id, cd.pool
	LOOP
		PERFORM evmgmt.detect_point(c.site_id, c.queue_id, c.pool, c.operation_id, c.policy, c.sustains,
									c.thresholds, c.pt, c.rows, c.backfill);
	END LOOP;
END
$$;
COMMENT ON FUNCTION evmgmt.detect_loaded(evmgmt.interval_touch[]) IS 'Detection over the series a load touched: each new live interval of a series below a threshold (or followed by detection) is evaluated in data order by detect_point';

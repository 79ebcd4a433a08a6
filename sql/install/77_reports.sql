-- Post-event reports: set-returning functions with the period first
-- (from_at inclusive, to_at exclusive, on the events' detected_at unless a
-- report says otherwise), then optional filters site_filter, type_filter, pool_filter,
-- severity_filter (contact_filter for fatigue), NULL meaning all.  Columns and how
-- each figure is computed: docs/reports.md; hand-computed fixture:
-- test/sql/reports.sql.  PL/pgSQL (DESIGN.md section 3: Citus cannot plan
-- parameterized SQL functions over distributed tables).

-- The period every report takes, checked once.
CREATE FUNCTION evmgmt.report_check_period(from_at timestamptz, to_at timestamptz) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF from_at IS NULL OR to_at IS NULL THEN
		RAISE EXCEPTION 'report period must have both from_at and to_at'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a period such as from_at => ''2026-01-01'', to_at => ''2026-02-01''.';
	END IF;
	IF NOT from_at < to_at OR from_at IN ('-infinity', 'infinity') OR to_at IN ('-infinity', 'infinity') THEN
		RAISE EXCEPTION 'report period must be finite and from_at must be before to_at'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The period given was [%s, %s).', from_at, to_at);
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.report_check_period(timestamptz, timestamptz) IS 'Raises 22023 unless from_at < to_at, both finite (22004 when either is NULL); used by every report';


-- The interval evidence of every pool condition of the events detected in
-- a period (or of one event), set-based: the reports over a month or a year
-- read each condition's intervals in one join and one window pass instead
-- of one query per condition.  The window of a condition: its site's (and
-- queue's, when the event has one) intervals of its pool that overlap
-- detection to resolution (or until, while unresolved).
CREATE FUNCTION evmgmt.condition_window_stats(from_at timestamptz, to_at timestamptz, only_event bigint DEFAULT NULL,
											 until timestamptz DEFAULT NULL)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, intervals integer, minutes_below_target double precision,
			   abandoned bigint, beyond_threshold bigint, outage_minutes double precision, overtime_hours double precision,
			   worst_service_level double precision, worst_interval timestamptz,
			   sev1_run double precision, sev2_run double precision, sev3_run double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
BEGIN ATOMIC
	WITH c AS (
		SELECT e.event_id, pc.pool, e.site_id, e.queue_id, e.detected_at AS w_from,
			   COALESCE(pc.resolved_at, e.closed_at, e.cancelled_at, condition_window_stats.until, condition_window_stats.to_at) AS w_to,
			   th.sev1_threshold AS t1, th.sev2_threshold AS t2, th.sev3_threshold AS t3
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		JOIN evmgmt.severity_thresholds th ON th.operation_id = e.operation_id
		WHERE e.detected_at >= condition_window_stats.from_at AND e.detected_at < condition_window_stats.to_at
		  AND (condition_window_stats.only_event IS NULL OR e.event_id = condition_window_stats.only_event)
		  AND (condition_window_stats.only_event IS NOT NULL OR (e.cancelled_at IS NULL AND pc.state <> 'cancelled'))
	), w AS (
		SELECT c.event_id, c.pool, c.t1, c.t2, c.t3, s.queue_id, s.interval_start, s.interval_minutes,
			   s.interval_minutes::double precision AS m, s.offered,
			   s.handled, s.abandoned, s.answered_in_threshold, s.staffed, s.scheduled, q.sl_target,
			   evmgmt.interval_service_level(s.answered_in_threshold, s.offered) AS sl
		FROM c
		-- each condition probes its own intervals by the key (time leads it);
		-- OFFSET 0 keeps the planner from joining every interval of a site
		-- with every condition there
		CROSS JOIN LATERAL (SELECT x.* FROM evmgmt.interval_stat x
							WHERE x.interval_start >= c.w_from - interval '1 hour' AND x.interval_start < c.w_to
							  AND x.interval_start + x.interval_minutes * interval '1 minute' > c.w_from
							  AND x.site_id = c.site_id AND (c.queue_id IS NULL OR x.queue_id = c.queue_id)
							  AND x.pool = c.pool
							OFFSET 0) s
		JOIN evmgmt.queue q ON q.queue_id = s.queue_id
	), r AS (
		-- the trailing run below each tier's threshold at every interval, by
		-- the C aggregate detection uses (a missing interval breaks a run),
		-- per series: one sort for the three tiers
		SELECT w.*, evmgmt.sustained_runs_below(w.sl, ARRAY[w.t1, w.t2, w.t3], w.interval_start, w.interval_minutes)
						OVER (PARTITION BY w.event_id, w.pool, w.queue_id ORDER BY w.interval_start) AS run
		FROM w
	), agg AS (
		SELECT w.event_id, w.pool, pg_catalog.count(*)::integer AS n,
			   pg_catalog.max(w.run[1]) AS r1, pg_catalog.max(w.run[2]) AS r2, pg_catalog.max(w.run[3]) AS r3,
			   COALESCE(pg_catalog.sum(w.m) FILTER (WHERE w.sl < w.sl_target), 0) AS below_target,
			   COALESCE(pg_catalog.sum(w.abandoned), 0) AS abandoned,
			   COALESCE(pg_catalog.sum(w.handled - w.answered_in_threshold), 0) AS beyond,
			   COALESCE(pg_catalog.sum(w.m) FILTER (WHERE w.offered > 0 AND w.answered_in_threshold = 0), 0) AS outage,
			   COALESCE(pg_catalog.sum(GREATEST(w.staffed - w.scheduled, 0) * w.m / 60.0), 0) AS overtime,
			   pg_catalog.min(w.sl) AS worst,
			   -- the earliest interval at the lowest service level, without a sort per group
			   pg_catalog.to_timestamp((pg_catalog.min(ARRAY[w.sl, EXTRACT(epoch FROM w.interval_start)::double precision])
										FILTER (WHERE w.sl IS NOT NULL))[2]) AS worst_at
		FROM r w GROUP BY w.event_id, w.pool
	)
	SELECT c.event_id, c.pool, COALESCE(a.n, 0), COALESCE(a.below_target, 0), COALESCE(a.abandoned, 0)::bigint,
		   COALESCE(a.beyond, 0)::bigint, COALESCE(a.outage, 0), COALESCE(a.overtime, 0), a.worst, a.worst_at,
		   COALESCE(a.r1, 0), COALESCE(a.r2, 0), COALESCE(a.r3, 0)
	FROM c
	LEFT JOIN agg a ON a.event_id = c.event_id AND a.pool = c.pool;
END;
COMMENT ON FUNCTION evmgmt.condition_window_stats(timestamptz, timestamptz, bigint, timestamptz) IS 'Interval evidence of every pool condition (not cancelled) of the events detected in [from_at, to_at), in one pass (or of one event''s conditions, cancelled ones too): intervals, minutes below the queue target, abandoned, answered beyond threshold, outage minutes, overtime hours (staffed above scheduled), worst interval, longest run below each tier threshold (minutes, per series, a missing interval breaking a run); an unresolved condition counts up to until (default to_at)';

-- The interval evidence of one pool condition: the intervals of the event's
-- site (and queue, when the event has one) and pool that overlap the window
-- from detection to resolution (or until, while unresolved).
CREATE FUNCTION evmgmt.event_window_stats(event_id bigint, pool evmgmt.pool, until timestamptz,
	OUT intervals integer, OUT minutes_below_target double precision, OUT abandoned bigint,
	OUT beyond_threshold bigint, OUT outage_minutes double precision, OUT overtime_hours double precision,
	OUT worst_service_level double precision, OUT worst_interval timestamptz,
	OUT sev1_run double precision, OUT sev2_run double precision, OUT sev3_run double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT w.intervals, w.minutes_below_target, w.abandoned, w.beyond_threshold, w.outage_minutes, w.overtime_hours,
		   w.worst_service_level, w.worst_interval, w.sev1_run, w.sev2_run, w.sev3_run
	FROM evmgmt.event e
	CROSS JOIN LATERAL evmgmt.condition_window_stats(e.detected_at, e.detected_at + interval '1 microsecond',
													 e.event_id, event_window_stats.until) w
	WHERE e.event_id = event_window_stats.event_id AND w.pool = event_window_stats.pool;
END;
COMMENT ON FUNCTION evmgmt.event_window_stats(bigint, evmgmt.pool, timestamptz) IS 'Interval evidence of one pool condition from detection to resolution (or until): condition_window_stats for one condition';

------------------------------------------------------------------------------
-- Response and resolution target compliance
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_target_compliance(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL,
	pool_filter evmgmt.pool DEFAULT NULL, severity_filter evmgmt.severity DEFAULT NULL)
RETURNS TABLE (month date, site_id text, event_type evmgmt.event_type, pool evmgmt.pool, severity evmgmt.severity,
			   business_time boolean, conditions bigint, closed bigint, open bigint,
			   response_met bigint, response_breached bigint, response_pending bigint, response_compliance double precision,
			   resolution_met bigint, resolution_breached bigint, resolution_pending bigint, resolution_compliance double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_target_compliance.from_at, report_target_compliance.to_at);
	RETURN QUERY
	WITH c AS (
		SELECT pg_catalog.date_trunc('month', e.detected_at, 'UTC')::date AS month, e.site_id, e.event_type, pc.pool, pc.severity,
			   p.business_time, e.closed_at IS NOT NULL AS is_closed,
			   CASE WHEN pc.first_response_at <= pc.response_due THEN 'met'
					WHEN COALESCE(pc.first_response_at, pg_catalog.now()) > pc.response_due THEN 'breached'
					ELSE 'pending' END AS resp,
			   CASE WHEN pc.resolved_at <= pc.resolution_due THEN 'met'
					WHEN COALESCE(pc.resolved_at, pg_catalog.now()) > pc.resolution_due THEN 'breached'
					ELSE 'pending' END AS resol
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		JOIN evmgmt.effective_severity_policy p ON p.operation_id = e.operation_id AND p.severity = pc.severity
		WHERE e.detected_at >= report_target_compliance.from_at AND e.detected_at < report_target_compliance.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
		  AND (report_target_compliance.site_filter IS NULL OR e.site_id = report_target_compliance.site_filter)
		  AND (report_target_compliance.type_filter IS NULL OR e.event_type = report_target_compliance.type_filter)
		  AND (report_target_compliance.pool_filter IS NULL OR pc.pool = report_target_compliance.pool_filter)
		  AND (report_target_compliance.severity_filter IS NULL OR pc.severity = report_target_compliance.severity_filter)
	)
	SELECT c.month, c.site_id, c.event_type, c.pool, c.severity, c.business_time,
		   pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE c.is_closed), pg_catalog.count(*) FILTER (WHERE NOT c.is_closed),
		   pg_catalog.count(*) FILTER (WHERE c.resp = 'met'), pg_catalog.count(*) FILTER (WHERE c.resp = 'breached'),
		   pg_catalog.count(*) FILTER (WHERE c.resp = 'pending'),
		   (pg_catalog.count(*) FILTER (WHERE c.resp = 'met'))::double precision
			/ NULLIF(pg_catalog.count(*) FILTER (WHERE c.resp <> 'pending'), 0),
		   pg_catalog.count(*) FILTER (WHERE c.resol = 'met'), pg_catalog.count(*) FILTER (WHERE c.resol = 'breached'),
		   pg_catalog.count(*) FILTER (WHERE c.resol = 'pending'),
		   (pg_catalog.count(*) FILTER (WHERE c.resol = 'met'))::double precision
			/ NULLIF(pg_catalog.count(*) FILTER (WHERE c.resol <> 'pending'), 0)
	FROM c
	GROUP BY c.month, c.site_id, c.event_type, c.pool, c.severity, c.business_time
	ORDER BY c.month, c.site_id, c.event_type, c.pool, c.severity;
END
$$;
COMMENT ON FUNCTION evmgmt.report_target_compliance(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity) IS 'Response and resolution target compliance of classified pool conditions (closed and open events) per month (UTC), site, type, pool and tier: met, breached, still pending and the share met among decided ones; due times are the stored ones, in business time where the tier says so';

------------------------------------------------------------------------------
-- MTTA and MTTR
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_response_times(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL,
	pool_filter evmgmt.pool DEFAULT NULL, severity_filter evmgmt.severity DEFAULT NULL)
RETURNS TABLE (severity evmgmt.severity, pool evmgmt.pool, conditions bigint,
			   acknowledged bigint, mtta interval, tta_p50 interval, tta_p90 interval, tta_p95 interval,
			   responded bigint, mean_time_to_respond interval,
			   resolved bigint, mttr interval, ttr_p50 interval, ttr_p90 interval, ttr_p95 interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_response_times.from_at, report_response_times.to_at);
	RETURN QUERY
	WITH c AS (
		SELECT pc.severity, pc.pool,
			   pg_catalog.date_part('epoch', ack.first_ack - e.detected_at) AS tta,
			   pg_catalog.date_part('epoch', pc.first_response_at - e.detected_at) AS ttresp,
			   pg_catalog.date_part('epoch', pc.resolved_at - e.detected_at) AS ttr
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		LEFT JOIN LATERAL (SELECT pg_catalog.min(x.acknowledged_at) AS first_ack FROM evmgmt.escalation x
						   WHERE x.event_id = e.event_id AND x.pool = pc.pool) ack ON true
		WHERE e.detected_at >= report_response_times.from_at AND e.detected_at < report_response_times.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
		  AND (report_response_times.site_filter IS NULL OR e.site_id = report_response_times.site_filter)
		  AND (report_response_times.type_filter IS NULL OR e.event_type = report_response_times.type_filter)
		  AND (report_response_times.pool_filter IS NULL OR pc.pool = report_response_times.pool_filter)
		  AND (report_response_times.severity_filter IS NULL OR pc.severity = report_response_times.severity_filter)
	)
	SELECT c.severity, c.pool, pg_catalog.count(*),
		   pg_catalog.count(c.tta), pg_catalog.avg(c.tta) * interval '1 second',
		   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY c.tta) * interval '1 second',
		   pg_catalog.percentile_cont(0.9) WITHIN GROUP (ORDER BY c.tta) * interval '1 second',
		   pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY c.tta) * interval '1 second',
		   pg_catalog.count(c.ttresp), pg_catalog.avg(c.ttresp) * interval '1 second',
		   pg_catalog.count(c.ttr), pg_catalog.avg(c.ttr) * interval '1 second',
		   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY c.ttr) * interval '1 second',
		   pg_catalog.percentile_cont(0.9) WITHIN GROUP (ORDER BY c.ttr) * interval '1 second',
		   pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY c.ttr) * interval '1 second'
	FROM c
	GROUP BY GROUPING SETS ((c.severity, c.pool), (c.severity), ())
	ORDER BY c.severity NULLS LAST, c.pool NULLS LAST;
END
$$;
COMMENT ON FUNCTION evmgmt.report_response_times(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity) IS 'MTTA (detection to first escalation acknowledgment of the pool) and MTTR (detection to resolution) with p50, p90 and p95 (linear interpolation), and mean time to the first response lever, per tier and pool, per tier (pool NULL) and overall (both NULL)';

------------------------------------------------------------------------------
-- Severity calibration audit
------------------------------------------------------------------------------

-- The classified pool conditions a drift report looks at, with the month
-- (UTC) of their detection.  No SET clause: each of the report's queries
-- inlines it (its BEGIN ATOMIC body was bound at creation).
CREATE FUNCTION evmgmt.drift_conditions(from_at timestamptz, to_at timestamptz, site_filter text,
										type_filter evmgmt.event_type, pool_filter evmgmt.pool)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, severity evmgmt.severity, month date, operation_id text)
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT e.event_id, pc.pool, pc.severity, pg_catalog.date_trunc('month', e.detected_at, 'UTC')::date, e.operation_id
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.detected_at >= drift_conditions.from_at AND e.detected_at < drift_conditions.to_at
	  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
	  AND (drift_conditions.site_filter IS NULL OR e.site_id = drift_conditions.site_filter)
	  AND (drift_conditions.type_filter IS NULL OR e.event_type = drift_conditions.type_filter)
	  AND (drift_conditions.pool_filter IS NULL OR pc.pool = drift_conditions.pool_filter);
END;
COMMENT ON FUNCTION evmgmt.drift_conditions(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool) IS 'The classified pool conditions (not cancelled) of the events detected in [from_at, to_at), of the site, type and pool when given, with the UTC month of detection: what a severity-drift report counts';

CREATE FUNCTION evmgmt.report_severity_drift(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL, pool_filter evmgmt.pool DEFAULT NULL)
RETURNS TABLE (finding text, month date, severity evmgmt.severity, conditions bigint, share double precision,
			   direction text, event_id bigint, pool evmgmt.pool, assigned_severity evmgmt.severity,
			   implied_severity evmgmt.severity, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_severity_drift.from_at, report_severity_drift.to_at);
	-- tier mix per month: conditions per current tier and their share of the month
	RETURN QUERY
	WITH c AS (
		SELECT * FROM evmgmt.drift_conditions(report_severity_drift.from_at, report_severity_drift.to_at,
											  report_severity_drift.site_filter, report_severity_drift.type_filter,
											  report_severity_drift.pool_filter)
	)
	SELECT 'tier_mix'::text, c.month, c.severity, pg_catalog.count(*),
		   pg_catalog.count(*)::double precision / pg_catalog.sum(pg_catalog.count(*)) OVER (PARTITION BY c.month),
		   NULL::text, NULL::bigint, NULL::evmgmt.pool, NULL::evmgmt.severity, NULL::evmgmt.severity, NULL::text
	FROM c
	GROUP BY c.month, c.severity
	ORDER BY c.month, c.severity;

	-- reclassifications: how many conditions were reclassified at least once
	-- in each direction (up = more severe), as a share of all conditions
	RETURN QUERY
	WITH c AS (
		SELECT * FROM evmgmt.drift_conditions(report_severity_drift.from_at, report_severity_drift.to_at,
											  report_severity_drift.site_filter, report_severity_drift.type_filter,
											  report_severity_drift.pool_filter)
	)
	SELECT 'reclassification'::text, NULL::date, NULL::evmgmt.severity, pg_catalog.count(DISTINCT (t.event_id, t.pool)),
		   pg_catalog.count(DISTINCT (t.event_id, t.pool))::double precision / NULLIF((SELECT pg_catalog.count(*) FROM c), 0),
		   d.direction, NULL::bigint, NULL::evmgmt.pool, NULL::evmgmt.severity, NULL::evmgmt.severity,
		   pg_catalog.count(*) || ' reclassification(s)'
	FROM evmgmt.event_timeline t
	JOIN c ON c.event_id = t.event_id AND c.pool = t.pool
	CROSS JOIN LATERAL (SELECT CASE WHEN t.to_severity < t.from_severity THEN 'up' ELSE 'down' END AS direction) d
	WHERE t.action = 'reclassified' AND t.from_severity IS DISTINCT FROM t.to_severity
	GROUP BY d.direction
	ORDER BY d.direction DESC;

	-- disagreements: the tier the condition's own evidence window implies
	-- (the longest run below each tier threshold against its sustain time,
	-- the rule detection uses) differs from the assigned tier
	RETURN QUERY
	WITH c AS (
		SELECT * FROM evmgmt.drift_conditions(report_severity_drift.from_at, report_severity_drift.to_at,
											  report_severity_drift.site_filter, report_severity_drift.type_filter,
											  report_severity_drift.pool_filter)
	)
	SELECT 'disagreement'::text, c.month, NULL::evmgmt.severity, NULL::bigint, NULL::double precision,
		   CASE WHEN x.implied IS NULL OR x.implied > c.severity THEN 'over_classified' ELSE 'under_classified' END,
		   c.event_id, c.pool, c.severity, x.implied,
		   pg_catalog.format('%s interval(s); longest run below the sev1/sev2/sev3 thresholds: %s/%s/%s min',
							 w.intervals, w.sev1_run, w.sev2_run, w.sev3_run)
	FROM c
	JOIN evmgmt.condition_window_stats(report_severity_drift.from_at, report_severity_drift.to_at) w
	  ON w.event_id = c.event_id AND w.pool = c.pool
	JOIN evmgmt.severity_thresholds th ON th.operation_id = c.operation_id
	CROSS JOIN LATERAL (SELECT evmgmt.classify_sustained_runs(w.sev1_run, w.sev2_run, w.sev3_run,
															  th.sev1_sustain, th.sev2_sustain, th.sev3_sustain) AS implied) x
	WHERE w.intervals > 0 AND c.severity <> 'sev4' AND x.implied IS DISTINCT FROM c.severity
	ORDER BY c.event_id, c.pool;
END
$$;
COMMENT ON FUNCTION evmgmt.report_severity_drift(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool) IS 'Severity calibration audit: tier_mix rows (conditions per month and tier, share of the month), reclassification rows (conditions reclassified up or down, share of all), disagreement rows (assigned tier differs from the tier the condition''s interval evidence implies: over_classified or under_classified)';

------------------------------------------------------------------------------
-- Detection blind spots
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_blind_spots(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL)
RETURNS TABLE (finding text, event_type evmgmt.event_type, events bigint, by_rule bigint, by_prediction bigint,
			   by_other_automated bigint, by_people bigint, share_automated double precision,
			   share_people double precision, event_id bigint, site_id text, detected_at timestamptz,
			   detection_source text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_blind_spots.from_at, report_blind_spots.to_at);
	RETURN QUERY
	WITH ev AS (
		SELECT e.*, ds.automated
		FROM evmgmt.event e JOIN evmgmt.detection_source ds ON ds.source = e.detection_source
		WHERE e.detected_at >= report_blind_spots.from_at AND e.detected_at < report_blind_spots.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_blind_spots.site_filter IS NULL OR e.site_id = report_blind_spots.site_filter)
		  AND (report_blind_spots.type_filter IS NULL OR e.event_type = report_blind_spots.type_filter)
	)
	SELECT 'detection_share'::text, ev.event_type, pg_catalog.count(*),
		   pg_catalog.count(*) FILTER (WHERE ev.detection_source = 'rule'),
		   pg_catalog.count(*) FILTER (WHERE ev.detection_source = 'predictive'),
		   pg_catalog.count(*) FILTER (WHERE ev.automated AND ev.detection_source NOT IN ('rule', 'predictive')),
		   pg_catalog.count(*) FILTER (WHERE NOT ev.automated),
		   (pg_catalog.count(*) FILTER (WHERE ev.automated))::double precision / pg_catalog.count(*),
		   (pg_catalog.count(*) FILTER (WHERE NOT ev.automated))::double precision / pg_catalog.count(*),
		   NULL::bigint, NULL::text, NULL::timestamptz, NULL::text, NULL::text
	FROM ev
	GROUP BY ev.event_type
	ORDER BY ev.event_type;

	-- found by people with no automated detection of the same site and type
	-- from an hour before detection until the event was resolved (or to_at)
	RETURN QUERY
	SELECT 'undetected'::text, e.event_type, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
		   NULL::double precision, NULL::double precision, e.event_id, e.site_id, e.detected_at, e.detection_source,
		   e.title
	FROM evmgmt.event e JOIN evmgmt.detection_source ds ON ds.source = e.detection_source
	WHERE e.detected_at >= report_blind_spots.from_at AND e.detected_at < report_blind_spots.to_at
	  AND e.cancelled_at IS NULL AND NOT ds.automated
	  AND (report_blind_spots.site_filter IS NULL OR e.site_id = report_blind_spots.site_filter)
	  AND (report_blind_spots.type_filter IS NULL OR e.event_type = report_blind_spots.type_filter)
	  AND NOT EXISTS (SELECT FROM evmgmt.event o JOIN evmgmt.detection_source ods ON ods.source = o.detection_source
					  WHERE ods.automated AND o.site_id = e.site_id AND o.event_type = e.event_type
						AND o.event_id <> e.event_id
						AND o.detected_at >= e.detected_at - interval '1 hour'
						AND o.detected_at < COALESCE((SELECT pg_catalog.max(pc.resolved_at) FROM evmgmt.pool_condition pc
													  WHERE pc.event_id = e.event_id),
													 e.closed_at, report_blind_spots.to_at))
	ORDER BY e.detected_at, e.event_id;

	RETURN QUERY
	SELECT 'detector_gap'::text, e.event_type, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
		   NULL::double precision, NULL::double precision, e.event_id, e.site_id, e.detected_at, e.detection_source,
		   a.detector_gap
	FROM evmgmt.event e JOIN evmgmt.post_resolution_analysis a ON a.event_id = e.event_id
	WHERE e.detected_at >= report_blind_spots.from_at AND e.detected_at < report_blind_spots.to_at
	  AND a.detector_gap IS NOT NULL AND a.detector_gap <> ''
	  AND (report_blind_spots.site_filter IS NULL OR e.site_id = report_blind_spots.site_filter)
	  AND (report_blind_spots.type_filter IS NULL OR e.event_type = report_blind_spots.type_filter)
	ORDER BY e.detected_at, e.event_id;
END
$$;
COMMENT ON FUNCTION evmgmt.report_blind_spots(timestamptz, timestamptz, text, evmgmt.event_type) IS 'Detection blind spots: detection_share rows per type (found by rules, prediction, other automated sources, people), undetected rows (found by people with no automated event of that site and type detected from an hour before until the event was resolved), detector_gap rows from analyses';

------------------------------------------------------------------------------
-- Notification fatigue
------------------------------------------------------------------------------

-- PagerDuty's hours: business 08:00-18:00 Monday to Friday, sleep 22:00-08:00
-- every day, off hours the rest (evenings and weekend days), local time.
-- No SET clause and not STRICT, so that PostgreSQL inlines it into the
-- fatigue report's query (once per notification); its body was bound to
-- pg_catalog's functions when it was created.
CREATE FUNCTION evmgmt.hours_class(at timestamptz, time_zone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
	WHEN at IS NULL OR time_zone IS NULL THEN NULL
	WHEN pg_catalog.date_part('hour', pg_catalog.timezone(time_zone, at)) >= 22
	  OR pg_catalog.date_part('hour', pg_catalog.timezone(time_zone, at)) < 8 THEN 'sleep'
	WHEN pg_catalog.date_part('isodow', pg_catalog.timezone(time_zone, at)) <= 5
	 AND pg_catalog.date_part('hour', pg_catalog.timezone(time_zone, at)) < 18 THEN 'business'
	ELSE 'off'
END;
COMMENT ON FUNCTION evmgmt.hours_class(timestamptz, text) IS 'business (08:00-18:00 Monday to Friday), sleep (22:00-08:00) or off (the rest) hours of a moment in a time zone';

CREATE FUNCTION evmgmt.report_notification_fatigue(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, contact_filter bigint DEFAULT NULL)
RETURNS TABLE (month date, contact_id bigint, contact_name text, time_zone text, channel evmgmt.channel,
			   notifications bigint, interruptions bigint, business_hours bigint, off_hours bigint, sleep_hours bigint,
			   escalations bigint, acknowledged bigint, ack_share double precision, median_time_to_ack interval,
			   ack_share_change double precision, trending_away boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_notification_fatigue.from_at, report_notification_fatigue.to_at);
	RETURN QUERY
	WITH n AS (
		SELECT n.notification_id, n.contact_id, n.channel, n.created_at, n.escalation_id, c.name, c.time_zone,
			   pg_catalog.date_trunc('month', n.created_at, c.time_zone)::date AS month
		FROM evmgmt.notification n
		JOIN evmgmt.contact c ON c.contact_id = n.contact_id
		LEFT JOIN evmgmt.event e ON e.event_id = n.event_id
		WHERE n.created_at >= report_notification_fatigue.from_at AND n.created_at < report_notification_fatigue.to_at
		  AND n.state <> 'cancelled' AND n.kind <> 'test'
		  AND (report_notification_fatigue.site_filter IS NULL OR e.site_id = report_notification_fatigue.site_filter)
		  -- SECURITY DEFINER reads past row security: the acting role's sites only
		  AND ((SELECT evmgmt.site_scope()) IS NULL OR e.site_id = ANY ((SELECT evmgmt.site_scope())::text[]))
		  AND (report_notification_fatigue.contact_filter IS NULL OR n.contact_id = report_notification_fatigue.contact_filter)
	),
	-- an interruption: a page (any channel but e-mail) more than a minute
	-- after the previous page to the same person; each e-mail is its own
	p AS (
		SELECT n.*,
			   n.channel = 'email'
			   OR n.created_at - pg_catalog.lag(n.created_at) OVER (PARTITION BY n.contact_id, n.channel = 'email'
																	  ORDER BY n.created_at, n.notification_id) <= interval '1 minute'
				  IS NOT TRUE AS opens
		FROM n
	),
	i AS (
		SELECT p.*, CASE WHEN p.opens THEN evmgmt.hours_class(p.created_at, p.time_zone) END AS hours
		FROM p
	),
	-- escalations that paged the person in the month and whether (and how
	-- soon after the first page) the person acknowledged them
	esc AS (
		SELECT x.month, x.contact_id, x.escalation_id, pg_catalog.min(x.created_at) AS first_page, k.acked_at
		FROM n x
		LEFT JOIN evmgmt.escalation_ack k ON k.escalation_id = x.escalation_id AND k.contact_id = x.contact_id
		WHERE x.escalation_id IS NOT NULL
		GROUP BY x.month, x.contact_id, x.escalation_id, k.acked_at
	),
	ack AS (
		SELECT esc.month, esc.contact_id, pg_catalog.count(*) AS escalations,
			   pg_catalog.count(esc.acked_at) AS acknowledged,
			   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_catalog.date_part('epoch', esc.acked_at - esc.first_page)) * interval '1 second' AS median_tta
		FROM esc GROUP BY esc.month, esc.contact_id
	),
	g AS (
		SELECT i.month, i.contact_id, pg_catalog.min(i.name) AS name, pg_catalog.min(i.time_zone) AS tz, i.channel,
			   GROUPING(i.channel) AS all_channels,
			   pg_catalog.count(*) AS notifications, pg_catalog.count(*) FILTER (WHERE i.opens) AS interruptions,
			   pg_catalog.count(*) FILTER (WHERE i.hours = 'business') AS business_hours,
			   pg_catalog.count(*) FILTER (WHERE i.hours = 'off') AS off_hours,
			   pg_catalog.count(*) FILTER (WHERE i.hours = 'sleep') AS sleep_hours
		FROM i
		GROUP BY GROUPING SETS ((i.month, i.contact_id, i.channel), (i.month, i.contact_id))
	),
	t AS (
		SELECT g.*, a.escalations, a.acknowledged, a.median_tta,
			   a.acknowledged::double precision / NULLIF(a.escalations, 0) AS share
		FROM g LEFT JOIN ack a ON a.month = g.month AND a.contact_id = g.contact_id AND g.all_channels = 1
	)
	SELECT t.month, t.contact_id, t.name, t.tz, t.channel, t.notifications, t.interruptions,
		   t.business_hours, t.off_hours, t.sleep_hours, t.escalations, t.acknowledged, t.share, t.median_tta,
		   t.share - pg_catalog.lag(t.share) OVER w,
		   (t.share - pg_catalog.lag(t.share) OVER w) < 0
			AND (pg_catalog.lag(t.share) OVER w - pg_catalog.lag(t.share, 2) OVER w) < 0 IS TRUE
	FROM t
	WINDOW w AS (PARTITION BY t.contact_id, t.all_channels, t.channel ORDER BY t.month)
	ORDER BY t.contact_id, t.month, t.channel NULLS LAST;
END
$$;
COMMENT ON FUNCTION evmgmt.report_notification_fatigue(timestamptz, timestamptz, text, bigint) IS 'Notifications and interruptions per person, month (recipient''s time zone) and channel (channel NULL: all channels): pages within a minute of the previous page to the same person count as one interruption, each e-mail apart; interruptions split into business, off and sleep hours in the recipient''s time zone; escalations acknowledged, share, median time to acknowledge, change from the previous month, trending_away after two falls in a row';

------------------------------------------------------------------------------
-- Learning loop
------------------------------------------------------------------------------

-- The events a learning-loop report looks at: detected in the period, not
-- cancelled, with the most severe live tier.  No SET clause: each of the
-- report's queries inlines it (its BEGIN ATOMIC body was bound at creation).
CREATE FUNCTION evmgmt.learning_loop_events(from_at timestamptz, to_at timestamptz, site_filter text,
											type_filter evmgmt.event_type)
RETURNS TABLE (event_id bigint, site_id text, queue_id text, event_type evmgmt.event_type, severity evmgmt.severity,
			   recurrence_of bigint, detected_at timestamptz, closed_at timestamptz)
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT e.event_id, e.site_id, e.queue_id, e.event_type,
		   (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc
			WHERE pc.event_id = e.event_id AND pc.state <> 'cancelled'),
		   e.recurrence_of, e.detected_at, e.closed_at
	FROM evmgmt.event e
	WHERE e.detected_at >= learning_loop_events.from_at AND e.detected_at < learning_loop_events.to_at
	  AND e.cancelled_at IS NULL
	  AND (learning_loop_events.site_filter IS NULL OR e.site_id = learning_loop_events.site_filter)
	  AND (learning_loop_events.type_filter IS NULL OR e.event_type = learning_loop_events.type_filter);
END;
COMMENT ON FUNCTION evmgmt.learning_loop_events(timestamptz, timestamptz, text, evmgmt.event_type) IS 'The events of a learning-loop report: detected in [from_at, to_at), not cancelled, of the site and type when given, with their most severe live tier';

CREATE FUNCTION evmgmt.report_learning_loop(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL)
RETURNS TABLE (finding text, event_id bigint, site_id text, event_type evmgmt.event_type, severity evmgmt.severity,
			   detail text, gaps text[], item_id bigint, owner text, due_date date, overdue_days integer,
			   chain_root bigint, chain_length integer, metric text, before_value double precision,
			   after_value double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_learning_loop.from_at, report_learning_loop.to_at);
	-- sev1 and recurring sev2 whose analysis is missing or incomplete
	RETURN QUERY
	WITH e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	)
	SELECT 'missing_analysis'::text, e.event_id, e.site_id, e.event_type, e.severity,
		   CASE WHEN e.severity = 'sev1' THEN 'sev1' ELSE 'recurring sev2' END
			|| CASE WHEN e.closed_at IS NULL THEN ', open' ELSE ', closed' END,
		   g.gaps, NULL::bigint, NULL::text, NULL::date, NULL::integer,
		   NULL::bigint, NULL::integer, NULL::text, NULL::double precision, NULL::double precision
	-- what the analysis lacks, asked once per sev1 or recurring sev2 (empty:
	-- complete; OFFSET 0 keeps the call from being repeated in the filter)
	FROM (SELECT x.*, evmgmt.analysis_gaps(x.event_id) AS gaps FROM e x
		  WHERE x.severity = 'sev1' OR (x.severity = 'sev2' AND x.recurrence_of IS NOT NULL) OFFSET 0) e
	CROSS JOIN LATERAL (SELECT e.gaps) g
	WHERE pg_catalog.cardinality(g.gaps) > 0
	ORDER BY e.event_id;

	-- action items not done, overdue ones with their days overdue
	RETURN QUERY
	WITH e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	)
	SELECT CASE WHEN i.due_date < CURRENT_DATE THEN 'overdue_action_item' ELSE 'open_action_item' END,
		   e.event_id, e.site_id, e.event_type, e.severity, i.description, NULL::text[], i.item_id, i.owner, i.due_date,
		   CASE WHEN i.due_date < CURRENT_DATE THEN CURRENT_DATE - i.due_date END,
		   NULL::bigint, NULL::integer, NULL::text, NULL::double precision, NULL::double precision
	FROM e
	JOIN evmgmt.action_item i ON i.event_id = e.event_id
	WHERE i.done_at IS NULL
	ORDER BY i.due_date, i.item_id;

	-- recurrence chains: every event of the period that recurs an earlier one,
	-- with the first event of its chain and its place in it
	RETURN QUERY
	WITH RECURSIVE e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	),
	up AS (
		SELECT e.event_id AS start_id, e.recurrence_of AS prev, 1 AS depth
		FROM e WHERE e.recurrence_of IS NOT NULL
		UNION ALL
		SELECT up.start_id, p.recurrence_of, up.depth + 1
		FROM up JOIN evmgmt.event p ON p.event_id = up.prev
		WHERE p.recurrence_of IS NOT NULL AND up.depth < 1000
	)
	SELECT 'recurrence'::text, e.event_id, e.site_id, e.event_type, e.severity,
		   pg_catalog.format('recurs event %s', e.recurrence_of), NULL::text[], NULL::bigint, NULL::text, NULL::date,
		   NULL::integer, r.root, r.len, NULL::text, NULL::double precision, NULL::double precision
	FROM e
	JOIN (SELECT up.start_id, (pg_catalog.array_agg(up.prev ORDER BY up.depth DESC))[1] AS root,
				 (pg_catalog.max(up.depth) + 1)::integer AS len
		  FROM up GROUP BY up.start_id) r ON r.start_id = e.event_id
	ORDER BY r.root, e.event_id;

	-- process health of the affected series in the 28 days before the
	-- analysis was recorded and the 28 days after its last action item was
	-- done (service level, abandonment rate, AHT, and the process-health
	-- figures: repeat contacts per offered, escalations and transfers per
	-- handled; events whose items are all done)
	RETURN QUERY
	WITH e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	),
	done AS (
		SELECT e.event_id, e.site_id, e.queue_id, e.event_type, e.severity, a.recorded_at,
			   pg_catalog.max(i.done_at) AS done_at
		FROM e
		JOIN evmgmt.post_resolution_analysis a ON a.event_id = e.event_id
		JOIN evmgmt.action_item i ON i.event_id = e.event_id
		GROUP BY e.event_id, e.site_id, e.queue_id, e.event_type, e.severity, a.recorded_at
		HAVING pg_catalog.bool_and(i.done_at IS NOT NULL)
	),
	m AS (
		SELECT d.event_id, s.interval_start >= d.done_at AS after,
			   pg_catalog.sum(s.answered_in_threshold)::double precision / NULLIF(pg_catalog.sum(s.offered), 0) AS sl,
			   pg_catalog.sum(s.abandoned)::double precision / NULLIF(pg_catalog.sum(s.offered), 0) AS abandon_rate,
			   pg_catalog.sum(s.aht_seconds * s.handled) / NULLIF(pg_catalog.sum(s.handled) FILTER (WHERE s.aht_seconds IS NOT NULL), 0) AS aht,
			   -- the process-health columns where the feed carries them
			   pg_catalog.sum(s.repeat_contacts)::double precision
				/ NULLIF(pg_catalog.sum(s.offered) FILTER (WHERE s.repeat_contacts IS NOT NULL), 0) AS repeat_rate,
			   pg_catalog.sum(s.escalated)::double precision
				/ NULLIF(pg_catalog.sum(s.handled) FILTER (WHERE s.escalated IS NOT NULL), 0) AS escalation_rate,
			   pg_catalog.sum(s.transferred)::double precision
				/ NULLIF(pg_catalog.sum(s.handled) FILTER (WHERE s.transferred IS NOT NULL), 0) AS transfer_rate
		FROM done d
		JOIN evmgmt.interval_stat s ON s.site_id = d.site_id AND (d.queue_id IS NULL OR s.queue_id = d.queue_id)
			AND ((s.interval_start >= d.recorded_at - interval '28 days' AND s.interval_start < d.recorded_at)
				 OR (s.interval_start >= d.done_at AND s.interval_start < d.done_at + interval '28 days'))
		GROUP BY d.event_id, s.interval_start >= d.done_at
	)
	SELECT 'process_health'::text, d.event_id, d.site_id, d.event_type, d.severity,
		   pg_catalog.format('28 days before the analysis (%s) and after the last action item was done (%s)',
							 d.recorded_at, d.done_at),
		   NULL::text[], NULL::bigint, NULL::text, NULL::date, NULL::integer, NULL::bigint, NULL::integer,
		   k.metric, k.before_value, k.after_value
	FROM done d
	LEFT JOIN m b ON b.event_id = d.event_id AND NOT b.after
	LEFT JOIN m a ON a.event_id = d.event_id AND a.after
	CROSS JOIN LATERAL (VALUES ('service_level'::text, b.sl, a.sl, 1), ('abandon_rate', b.abandon_rate, a.abandon_rate, 2),
							   ('aht_seconds', b.aht, a.aht, 3), ('repeat_contact_rate', b.repeat_rate, a.repeat_rate, 4),
							   ('escalation_rate', b.escalation_rate, a.escalation_rate, 5),
							   ('transfer_rate', b.transfer_rate, a.transfer_rate, 6)) AS k(metric, before_value, after_value, o)
	WHERE b.event_id IS NOT NULL OR a.event_id IS NOT NULL
	ORDER BY d.event_id, k.o;
END
$$;
COMMENT ON FUNCTION evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type) IS 'Learning loop: missing_analysis rows (sev1 and recurring sev2 without a complete analysis, with its gaps), open_action_item and overdue_action_item rows, recurrence rows (chain root and length), process_health rows (service level, abandonment rate, AHT, repeat-contact, escalation and transfer rates of the affected series 28 days before the analysis and 28 days after its last action item was done)';

------------------------------------------------------------------------------
-- Multi-objective impact
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_impact(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL, pool_filter evmgmt.pool DEFAULT NULL,
	severity_filter evmgmt.severity DEFAULT NULL,
	cost_per_outage_hour double precision DEFAULT 0, cost_per_overtime_hour double precision DEFAULT 0)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, site_id text, event_type evmgmt.event_type, severity evmgmt.severity,
			   intervals bigint, service_level_minutes_lost double precision, contacts_abandoned bigint,
			   contacts_beyond_threshold bigint, outage_hours double precision, overtime_hours double precision,
			   estimated_cost double precision, customer_experience text, agent_experience text, business_value text,
			   cost_recorded text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_impact.from_at, report_impact.to_at);
	IF cost_per_outage_hour IS NULL OR cost_per_overtime_hour IS NULL
	   OR NOT (cost_per_outage_hour >= 0 AND cost_per_outage_hour < 'Infinity')
	   OR NOT (cost_per_overtime_hour >= 0 AND cost_per_overtime_hour < 'Infinity') THEN
		RAISE EXCEPTION 'costs per hour must be finite and not negative'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('cost_per_outage_hour was %s, cost_per_overtime_hour %s.',
											 cost_per_outage_hour, cost_per_overtime_hour);
	END IF;
	RETURN QUERY
	WITH c AS (
		SELECT e.event_id, pc.pool, e.site_id, e.event_type, pc.severity, w.intervals, w.minutes_below_target, w.abandoned,
			   w.beyond_threshold, w.outage_minutes, w.overtime_hours
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		JOIN evmgmt.condition_window_stats(report_impact.from_at, report_impact.to_at) w
		  ON w.event_id = e.event_id AND w.pool = pc.pool
		WHERE e.detected_at >= report_impact.from_at AND e.detected_at < report_impact.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled'
		  AND (report_impact.site_filter IS NULL OR e.site_id = report_impact.site_filter)
		  AND (report_impact.type_filter IS NULL OR e.event_type = report_impact.type_filter)
		  AND (report_impact.pool_filter IS NULL OR pc.pool = report_impact.pool_filter)
		  AND (report_impact.severity_filter IS NULL OR pc.severity = report_impact.severity_filter)
	),
	o AS (
		SELECT oi.event_id,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'customer_experience') AS cx,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'agent_experience') AS ax,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'business_value') AS bv,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'cost') AS co
		FROM evmgmt.objective_impact oi
		WHERE oi.event_id IN (SELECT c.event_id FROM c)
		GROUP BY oi.event_id
	)
	SELECT c.event_id, c.pool, c.site_id, c.event_type, c.severity, c.intervals::bigint, c.minutes_below_target,
		   c.abandoned, c.beyond_threshold, c.outage_minutes / 60.0, c.overtime_hours,
		   c.outage_minutes / 60.0 * report_impact.cost_per_outage_hour + c.overtime_hours * report_impact.cost_per_overtime_hour,
		   o.cx, o.ax, o.bv, o.co
	FROM c LEFT JOIN o ON o.event_id = c.event_id
	UNION ALL
	SELECT NULL, NULL, NULL, NULL, NULL, pg_catalog.sum(c.intervals)::bigint, pg_catalog.sum(c.minutes_below_target),
		   pg_catalog.sum(c.abandoned)::bigint, pg_catalog.sum(c.beyond_threshold)::bigint,
		   pg_catalog.sum(c.outage_minutes) / 60.0, pg_catalog.sum(c.overtime_hours),
		   pg_catalog.sum(c.outage_minutes) / 60.0 * report_impact.cost_per_outage_hour
			+ pg_catalog.sum(c.overtime_hours) * report_impact.cost_per_overtime_hour,
		   pg_catalog.count(o.cx) || ' event(s) recorded', pg_catalog.count(o.ax) || ' event(s) recorded',
		   pg_catalog.count(o.bv) || ' event(s) recorded', pg_catalog.count(o.co) || ' event(s) recorded'
	FROM c LEFT JOIN o ON o.event_id = c.event_id
	ORDER BY 1 NULLS LAST, 2;
END
$$;
COMMENT ON FUNCTION evmgmt.report_impact(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity, double precision, double precision) IS 'Multi-objective impact per pool condition and in aggregate (event_id NULL): interval minutes below the queue target, contacts abandoned and answered beyond threshold, outage hours (intervals with offered contacts and none answered in threshold), overtime hours (staffed above scheduled), estimated cost at the given cost per outage and overtime hour, and the recorded customer, agent, business-value and cost impacts';

------------------------------------------------------------------------------
-- Maturity
------------------------------------------------------------------------------

-- The maturity model of the practitioner texts, read off the operation's own
-- data: automatic detection (level 3), sev3 handled by response rules
-- without the ROC (level 3), breaches predicted and prevented (level 4),
-- routine conditions absorbed by automation (level 5).  Thresholds:
-- docs/reports.md.
CREATE FUNCTION evmgmt.report_maturity(from_at timestamptz, to_at timestamptz, site_filter text DEFAULT NULL)
RETURNS TABLE (events bigint, classified bigint, classified_share double precision,
			   detected_automatically bigint, share_automated double precision,
			   predictions bigint, predicted_confirmed bigint, predicted_averted bigint, predicted_not_confirmed bigint,
			   predicted_open bigint, breaches_missed bigint, share_predicted double precision, share_averted double precision,
			   sev3_conditions bigint, sev3_handled_by_rules bigint, share_sev3_by_rules double precision,
			   maturity_level integer, reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	r record;
	p record;
	v_foreseen bigint;
BEGIN
	PERFORM evmgmt.report_check_period(report_maturity.from_at, report_maturity.to_at);
	WITH ev AS (
		SELECT e.event_id, ds.automated,
			   pg_catalog.bool_or(pc.severity IS NOT NULL) AS is_classified
		FROM evmgmt.event e
		JOIN evmgmt.detection_source ds ON ds.source = e.detection_source
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		WHERE e.detected_at >= report_maturity.from_at AND e.detected_at < report_maturity.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_maturity.site_filter IS NULL OR e.site_id = report_maturity.site_filter)
		GROUP BY e.event_id, ds.automated
	),
	-- the level-3 share: sev3 conditions a response rule handled and that
	-- resolved without ROC intervention (72_response_rules.sql)
	s3 AS (
		SELECT pc.event_id, pc.pool,
			   EXISTS (SELECT FROM evmgmt.rule_handled_conditions h
					   WHERE h.event_id = pc.event_id AND h.pool = pc.pool AND h.handled_without_roc) AS by_rules
		FROM ev JOIN evmgmt.pool_condition pc ON pc.event_id = ev.event_id
		WHERE pc.severity = 'sev3' AND pc.state <> 'cancelled'
	)
	SELECT pg_catalog.count(*) AS events,
		   pg_catalog.count(*) FILTER (WHERE ev.is_classified) AS classified,
		   pg_catalog.count(*) FILTER (WHERE ev.automated) AS auto,
		   (SELECT pg_catalog.count(*) FROM s3) AS s3n,
		   (SELECT pg_catalog.count(*) FROM s3 WHERE s3.by_rules) AS s3r
	INTO r
	FROM ev;
	-- predictions and missed breaches (49_prediction.sql): predicted events
	-- by outcome, and events detected from actuals on series with a forecast
	SELECT pg_catalog.count(*) FILTER (WHERE o.source = 'predicted') AS n,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'confirmed') AS confirmed,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'averted') AS averted,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'not_confirmed') AS not_confirmed,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'open') AS open,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'missed') AS missed
	INTO p
	FROM evmgmt.prediction_outcome o
	JOIN evmgmt.event e ON e.event_id = o.event_id
	WHERE e.detected_at >= report_maturity.from_at AND e.detected_at < report_maturity.to_at
	  AND e.cancelled_at IS NULL
	  AND (report_maturity.site_filter IS NULL OR e.site_id = report_maturity.site_filter);

	events := r.events;
	classified := r.classified;
	classified_share := r.classified::double precision / NULLIF(r.events, 0);
	detected_automatically := r.auto;
	share_automated := r.auto::double precision / NULLIF(r.events, 0);
	predictions := p.n;
	predicted_confirmed := p.confirmed;
	predicted_averted := p.averted;
	predicted_not_confirmed := p.not_confirmed;
	predicted_open := p.open;
	breaches_missed := p.missed;
	-- a breach foreseen: a prediction the actuals confirmed or that was averted
	v_foreseen := p.confirmed + p.averted;
	share_predicted := v_foreseen::double precision / NULLIF(v_foreseen + p.missed, 0);
	share_averted := p.averted::double precision / NULLIF(v_foreseen, 0);
	sev3_conditions := r.s3n;
	sev3_handled_by_rules := r.s3r;
	share_sev3_by_rules := r.s3r::double precision / NULLIF(r.s3n, 0);

	IF r.events = 0 THEN
		maturity_level := NULL;
		reason := 'no events in the period';
	ELSIF COALESCE(classified_share, 0) < 0.9 THEN
		maturity_level := 1;
		reason := pg_catalog.format('L1: only %s%% of events were classified (L2 needs 90%%)',
									pg_catalog.round((100 * classified_share)::numeric, 1));
	ELSIF COALESCE(share_automated, 0) < 0.5 OR COALESCE(share_sev3_by_rules, 0) < 0.25 THEN
		maturity_level := 2;
		reason := pg_catalog.format('L2: events classified and documented; %s%% detected automatically and %s%% of sev3 handled by rules without the ROC (L3 needs 50%% and 25%%)',
									pg_catalog.round((100 * COALESCE(share_automated, 0))::numeric, 1),
									pg_catalog.round((100 * COALESCE(share_sev3_by_rules, 0))::numeric, 1));
	ELSIF COALESCE(share_predicted, 0) < 0.5 OR COALESCE(share_averted, 0) < 0.5 THEN
		maturity_level := 3;
		reason := pg_catalog.format('L3: automatic detection and rule-driven response; %s%% of breaches predicted and %s%% of foreseen breaches averted (L4 needs 50%% of each)',
									pg_catalog.round((100 * COALESCE(share_predicted, 0))::numeric, 1),
									pg_catalog.round((100 * COALESCE(share_averted, 0))::numeric, 1));
	ELSIF share_predicted < 0.8 OR COALESCE(share_sev3_by_rules, 0) < 0.8 THEN
		maturity_level := 4;
		reason := pg_catalog.format('L4: %s%% of breaches predicted, %s%% of them averted; %s%% of sev3 handled by rules (L5 needs 80%% predicted and 80%% of sev3 by rules)',
									pg_catalog.round((100 * share_predicted)::numeric, 1),
									pg_catalog.round((100 * share_averted)::numeric, 1),
									pg_catalog.round((100 * COALESCE(share_sev3_by_rules, 0))::numeric, 1));
	ELSE
		maturity_level := 5;
		reason := pg_catalog.format('L5: %s%% of breaches predicted and %s%% of sev3 handled by rules without ROC intervention',
									pg_catalog.round((100 * share_predicted)::numeric, 1),
									pg_catalog.round((100 * share_sev3_by_rules)::numeric, 1));
	END IF;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION evmgmt.report_maturity(timestamptz, timestamptz, text) IS 'Maturity figures of the period: events classified and detected automatically, predictions by outcome (confirmed, averted, not confirmed, open) and breaches missed by prediction, the share of breaches predicted and of foreseen ones averted, sev3 conditions handled by rules without ROC intervention, and the maturity level (1-5) they support with the reason';

-- Predictive detection: forecast and schedule in, projected service level
-- out, and predicted events before the breach (docs/prediction.md).
--
-- For every series with a forecast (22_forecast.sql) and every interval that
-- has not ended and starts within the operation's horizon, the projection
-- computes the traffic, the service level and the ASA at the scheduled
-- agents with Erlang C (Erlang A where the forecast gives a patience), and
-- the agents needed to meet the queue's target (agents_required).  It does so
-- twice: on the forecast as loaded, and corrected by today's actuals of the
-- same series (the intraday correction, below).  The operation chooses which
-- projection drives prediction.
--
-- Prediction applies the detection rule of 30_classify.sql (the trailing
-- run below each tier's threshold, classify_sustained_runs) to the projected
-- series.  A series whose projection crosses a tier for longer than its
-- sustain time gets a predicted event (detection_source 'predictive') before
-- the first breaching interval starts; a re-forecast or schedule change that
-- makes the projection healthy before the breach starts averts it
-- (avert_pool); actuals that confirm it continue the same event (detection,
-- 47_detection_actions.sql).  The worker runs it (run_due_work) right after
-- a load changed what a series' projection depends on, and every series
-- again every evmgmt.prediction_refresh as the horizon moves on.

CREATE TABLE evmgmt.prediction_policy (
	operation_id		text PRIMARY KEY REFERENCES evmgmt.operation ON DELETE CASCADE,
	enabled				boolean NOT NULL DEFAULT true,
	horizon				interval NOT NULL DEFAULT '2 hours'
		CONSTRAINT prediction_policy_horizon_range CHECK (horizon >= interval '15 minutes' AND horizon <= interval '2 days'),
	drive				text NOT NULL DEFAULT 'corrected'
		CONSTRAINT prediction_policy_drive_known CHECK (drive IN ('corrected', 'forecast')),
	page_up_to			evmgmt.severity NOT NULL DEFAULT 'sev2',
	correction_min_intervals integer NOT NULL DEFAULT 2
		CONSTRAINT prediction_policy_min_intervals_range CHECK (correction_min_intervals BETWEEN 1 AND 96),
	correction_min_ratio double precision NOT NULL DEFAULT 0.5
		CONSTRAINT prediction_policy_min_ratio_range CHECK (correction_min_ratio > 0 AND correction_min_ratio <= 1),
	correction_max_ratio double precision NOT NULL DEFAULT 2.0
		CONSTRAINT prediction_policy_max_ratio_range CHECK (correction_max_ratio >= 1 AND correction_max_ratio <= 10)
);
COMMENT ON TABLE evmgmt.prediction_policy IS 'Prediction settings per operation (an operation without a row uses the defaults)';
COMMENT ON COLUMN evmgmt.prediction_policy.horizon IS 'How far ahead intervals are projected and predicted (from now; the interval in progress included)';
COMMENT ON COLUMN evmgmt.prediction_policy.drive IS 'Which projection drives predicted events: corrected (by today''s actual-to-forecast ratios) or forecast (as loaded)';
COMMENT ON COLUMN evmgmt.prediction_policy.page_up_to IS 'Predicted pool conditions of this tier or a more severe one page as detected ones do; less severe ones notify only the footprint''s audiences (the ROC)';
COMMENT ON COLUMN evmgmt.prediction_policy.correction_min_intervals IS 'Intraday correction: actual intervals of the series today needed before the ratios apply (before that the corrected projection equals the forecast one)';
COMMENT ON COLUMN evmgmt.prediction_policy.correction_min_ratio IS 'Intraday correction: lowest volume or AHT ratio applied (a smaller one is clamped to it)';
COMMENT ON COLUMN evmgmt.prediction_policy.correction_max_ratio IS 'Intraday correction: highest volume or AHT ratio applied (a larger one is clamped to it)';

CREATE VIEW evmgmt.effective_prediction_policy AS
SELECT o.operation_id,
	   COALESCE(p.enabled, true) AS enabled,
	   COALESCE(p.horizon, interval '2 hours') AS horizon,
	   COALESCE(p.drive, 'corrected') AS drive,
	   COALESCE(p.page_up_to, 'sev2'::evmgmt.severity) AS page_up_to,
	   COALESCE(p.correction_min_intervals, 2) AS correction_min_intervals,
	   COALESCE(p.correction_min_ratio, 0.5) AS correction_min_ratio,
	   COALESCE(p.correction_max_ratio, 2.0) AS correction_max_ratio
FROM evmgmt.operation o
LEFT JOIN evmgmt.prediction_policy p ON p.operation_id = o.operation_id;
COMMENT ON VIEW evmgmt.effective_prediction_policy IS 'Prediction settings in force for every operation: its prediction_policy row or the defaults';

------------------------------------------------------------------------------
-- The projection
------------------------------------------------------------------------------

-- One interval at given volume, handle time and agents.  Fractional
-- scheduled agents count down (7.6 scheduled are 7 on the phones all
-- interval long); no volume meets the target; no agents for some volume
-- answers nothing.  Agents needed are those of Erlang C also where Erlang A
-- projects the service level (patience lets some callers go, which the
-- staffing should not count on).  No SET clause: PostgreSQL inlines the
-- function into the projection's query (a SET would make it a call per row,
-- 15 times slower), and its BEGIN ATOMIC body was bound to evmgmt's and
-- pg_catalog's objects when it was created, so no search_path reaches it.
CREATE FUNCTION evmgmt.project_interval(offered double precision, aht double precision, scheduled double precision,
										patience double precision, interval_minutes integer,
										target_sl double precision, target_seconds double precision)
RETURNS TABLE (traffic double precision, service_level double precision, asa double precision, agents_needed integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT t.traffic,
		   CASE WHEN project_interval.offered <= 0 THEN 1
				WHEN pg_catalog.floor(project_interval.scheduled) < 1 THEN 0
				WHEN project_interval.patience IS NULL
					THEN evmgmt.service_level(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer,
											  project_interval.aht, project_interval.target_seconds)
				ELSE (evmgmt.erlang_a(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer, project_interval.aht,
									  project_interval.patience, project_interval.target_seconds)).service_level END,
		   CASE WHEN project_interval.offered <= 0 THEN 0
				WHEN pg_catalog.floor(project_interval.scheduled) < 1 THEN NULL
				WHEN project_interval.patience IS NULL
					THEN NULLIF(evmgmt.asa(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer, project_interval.aht),
								'Infinity'::double precision)
				ELSE (evmgmt.erlang_a(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer, project_interval.aht,
									  project_interval.patience, project_interval.target_seconds)).asa END,
		   CASE WHEN project_interval.offered <= 0 THEN 0
				ELSE evmgmt.agents_required(t.traffic, project_interval.aht, project_interval.target_sl,
											project_interval.target_seconds) END
	FROM (SELECT project_interval.offered * project_interval.aht / (project_interval.interval_minutes * 60)::double precision AS traffic) t;
END;
COMMENT ON FUNCTION evmgmt.project_interval(double precision, double precision, double precision, double precision, integer, double precision, double precision) IS 'Traffic (Erlangs), projected service level and ASA at the scheduled agents (whole agents; Erlang A when a patience is given, else Erlang C) and the agents Erlang C needs for the target';

-- Today's actual-to-forecast ratios of each series (the intraday
-- correction): over the actual intervals of the series since the site's
-- local midnight that ended by "at" and have a forecast (interval_forecast
-- for the same interval, else the forecast columns of interval_stat),
--   volume ratio = sum(offered) / sum(forecast offered)
--   AHT ratio    = sum(aht x handled) / sum(forecast aht x handled)
-- applied once the series has correction_min_intervals of them, clamped to
-- [correction_min_ratio, correction_max_ratio]; 1 otherwise.
CREATE FUNCTION evmgmt.intraday_ratios(at timestamptz)
RETURNS TABLE (site_id text, queue_id text, pool evmgmt.pool, intervals integer,
			   volume_ratio double precision, aht_ratio double precision,
			   raw_volume_ratio double precision, raw_aht_ratio double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT r.site_id, r.queue_id, r.pool, r.n,
		   CASE WHEN r.n >= pol.correction_min_intervals AND r.vol IS NOT NULL
				THEN GREATEST(pol.correction_min_ratio, LEAST(pol.correction_max_ratio, r.vol)) ELSE 1 END,
		   CASE WHEN r.n >= pol.correction_min_intervals AND r.aht IS NOT NULL
				THEN GREATEST(pol.correction_min_ratio, LEAST(pol.correction_max_ratio, r.aht)) ELSE 1 END,
		   r.vol, r.aht
	FROM (SELECT s.site_id, s.queue_id, s.pool, si.operation_id,
				 pg_catalog.count(*)::integer AS n,
				 pg_catalog.sum(a.offered)::float8 / NULLIF(pg_catalog.sum(COALESCE(f.forecast_offered, a.forecast_offered)), 0) AS vol,
				 pg_catalog.sum(a.aht_seconds::float8 * a.handled) FILTER (WHERE a.aht_seconds IS NOT NULL AND COALESCE(f.forecast_aht, a.forecast_aht) IS NOT NULL)
					 / NULLIF(pg_catalog.sum(COALESCE(f.forecast_aht, a.forecast_aht)::float8 * a.handled)
								  FILTER (WHERE a.aht_seconds IS NOT NULL AND COALESCE(f.forecast_aht, a.forecast_aht) IS NOT NULL), 0) AS aht
		  FROM evmgmt.forecast_series s
		  JOIN evmgmt.site si ON si.site_id = s.site_id
		  JOIN evmgmt.interval_stat a
			ON a.site_id = s.site_id AND a.queue_id = s.queue_id AND a.pool = s.pool
		   AND a.interval_start >= (pg_catalog.date_trunc('day', intraday_ratios.at AT TIME ZONE si.time_zone) AT TIME ZONE si.time_zone)
		   AND a.interval_start < intraday_ratios.at
		   AND a.interval_start + a.interval_minutes * interval '1 minute' <= intraday_ratios.at
		  LEFT JOIN evmgmt.interval_forecast f
			ON f.site_id = a.site_id AND f.queue_id = a.queue_id AND f.pool = a.pool AND f.interval_start = a.interval_start
		  WHERE COALESCE(f.forecast_offered, a.forecast_offered) IS NOT NULL
		  GROUP BY s.site_id, s.queue_id, s.pool, si.operation_id) r
	JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = r.operation_id;
END;
COMMENT ON FUNCTION evmgmt.intraday_ratios(timestamptz) IS 'Per series with a forecast and actuals today (site-local day, intervals ended by the given time): the number of actual intervals with a forecast, the volume and AHT ratios of actual to forecast (raw, and as applied: clamped, 1 until enough intervals)';

-- The projection of every series at a moment: each forecast interval that
-- has not ended and starts within the horizon, projected as loaded and as
-- corrected.
CREATE FUNCTION evmgmt.forecast_projection_at(at timestamptz)
RETURNS TABLE (operation_id text, site_id text, queue_id text, pool evmgmt.pool, interval_start timestamptz,
			   interval_minutes integer, scheduled real, patience_seconds real, target_service_level double precision,
			   target_seconds integer,
			   forecast_offered real, forecast_aht real, traffic double precision,
			   projected_service_level double precision, projected_asa double precision, agents_needed integer,
			   staffing_gap double precision,
			   correction_intervals integer, volume_ratio double precision, aht_ratio double precision,
			   corrected_offered double precision, corrected_aht double precision, corrected_traffic double precision,
			   corrected_service_level double precision, corrected_asa double precision, corrected_agents_needed integer,
			   corrected_staffing_gap double precision,
			   drive text, driving_service_level double precision, driving_agents_needed integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT si.operation_id, f.site_id, f.queue_id, f.pool, f.interval_start, f.interval_minutes, f.scheduled,
		   f.patience_seconds, q.sl_target, q.sl_seconds, f.forecast_offered, f.forecast_aht,
		   p.traffic, p.service_level, p.asa, p.agents_needed, p.agents_needed - f.scheduled,
		   COALESCE(r.intervals, 0), COALESCE(r.volume_ratio, 1), COALESCE(r.aht_ratio, 1),
		   f.forecast_offered * COALESCE(r.volume_ratio, 1), f.forecast_aht * COALESCE(r.aht_ratio, 1),
		   c.traffic, c.service_level, c.asa, c.agents_needed, c.agents_needed - f.scheduled,
		   pol.drive,
		   CASE pol.drive WHEN 'forecast' THEN p.service_level ELSE c.service_level END,
		   CASE pol.drive WHEN 'forecast' THEN p.agents_needed ELSE c.agents_needed END
	FROM evmgmt.interval_forecast f
	JOIN evmgmt.site si ON si.site_id = f.site_id
	JOIN evmgmt.queue q ON q.queue_id = f.queue_id
	JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = si.operation_id
	LEFT JOIN evmgmt.intraday_ratios(forecast_projection_at.at) r
	  ON r.site_id = f.site_id AND r.queue_id = f.queue_id AND r.pool = f.pool
	CROSS JOIN LATERAL evmgmt.project_interval(f.forecast_offered, f.forecast_aht, f.scheduled, f.patience_seconds,
											   f.interval_minutes, q.sl_target, q.sl_seconds) p
	CROSS JOIN LATERAL evmgmt.project_interval(f.forecast_offered * COALESCE(r.volume_ratio, 1),
											   f.forecast_aht * COALESCE(r.aht_ratio, 1), f.scheduled,
											   f.patience_seconds, f.interval_minutes, q.sl_target, q.sl_seconds) c
	WHERE f.interval_start < forecast_projection_at.at + pol.horizon
	  AND f.interval_start > forecast_projection_at.at - interval '1 hour'
	  AND f.interval_start + f.interval_minutes * interval '1 minute' > forecast_projection_at.at
	ORDER BY f.site_id, f.queue_id, f.pool, f.interval_start;
END;
COMMENT ON FUNCTION evmgmt.forecast_projection_at(timestamptz) IS 'Projection of every forecast interval not ended at the given time and starting within the horizon: traffic, service level, ASA, agents needed and the gap to scheduled, as forecast and as corrected by today''s actuals, and which one drives prediction';

CREATE VIEW evmgmt.forecast_projection AS
SELECT p.* FROM evmgmt.forecast_projection_at(pg_catalog.now()) p;
COMMENT ON VIEW evmgmt.forecast_projection IS 'The ROC''s "next two hours" screen: every series'' forecast intervals within the horizon, projected as forecast and as corrected by today''s actuals (service level, ASA, agents needed, gap to scheduled)';

------------------------------------------------------------------------------
-- What prediction knows and did
------------------------------------------------------------------------------

CREATE TABLE evmgmt.prediction_state (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	status			text NOT NULL CONSTRAINT prediction_state_status_known
						CHECK (status IN ('predicted', 'confirmed', 'averted', 'not_confirmed')),
	event_id		bigint NOT NULL,
	severity		evmgmt.severity NOT NULL,
	predicted_at	timestamptz NOT NULL,
	breach_starts_at timestamptz NOT NULL,
	breach_ends_at	timestamptz NOT NULL,
	projected_service_level double precision,
	agents_needed	integer,
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (site_id, queue_id, pool)
);
CREATE INDEX ON evmgmt.prediction_state (event_id);
COMMENT ON TABLE evmgmt.prediction_state IS 'Per series, the latest predicted breach: predicted (event open, breach ahead or under way), confirmed (actuals breached: detection carries the event on), averted (the projection became healthy before the breach began), not_confirmed (the predicted intervals passed and the actuals stayed healthy)';
COMMENT ON COLUMN evmgmt.prediction_state.agents_needed IS 'Agents to add to scheduled so that the worst breaching interval meets the queue''s service-level target';

CREATE TABLE evmgmt.prediction_log (
	prediction_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	recorded_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	site_id			text NOT NULL,
	queue_id		text NOT NULL,
	pool			evmgmt.pool NOT NULL,
	decision		text NOT NULL CONSTRAINT prediction_log_decision_known
						CHECK (decision IN ('predicted', 'joined', 'raised', 'confirmed', 'averted', 'not_confirmed')),
	event_id		bigint,
	severity		evmgmt.severity,
	event_type		evmgmt.event_type,
	subtype			text,
	breach_starts_at timestamptz,
	evidence		jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON evmgmt.prediction_log (event_id);
CREATE INDEX ON evmgmt.prediction_log (site_id, recorded_at);
COMMENT ON TABLE evmgmt.prediction_log IS 'Every prediction decision with the projection behind it: predicted, joined (another pool of a predicted event), raised, confirmed by actuals, averted, not confirmed';

-- The run log of the worker's prediction passes.
CREATE TABLE evmgmt.prediction_run (
	run_id			bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	started_at		timestamptz NOT NULL,
	finished_at		timestamptz NOT NULL,
	full_pass		boolean NOT NULL,
	series			integer NOT NULL,
	intervals		integer NOT NULL,
	breaching		integer NOT NULL,
	decisions		integer NOT NULL,
	failures		integer NOT NULL
);
CREATE INDEX ON evmgmt.prediction_run (started_at);
COMMENT ON TABLE evmgmt.prediction_run IS 'One row per prediction pass of the worker: series and intervals projected, series breaching, decisions taken, series that failed (each in its own subtransaction; the others go on)';

------------------------------------------------------------------------------
-- Acting on a projection
------------------------------------------------------------------------------

-- One series with the projected intervals that breach: open or join, raise,
-- or avert.  p_rows: the projected intervals of the series in time order
-- with the tier each reaches (NULL when the projection is healthy).
CREATE FUNCTION evmgmt.predict_series(p_site text, p_queue text, p_pool evmgmt.pool, p_operation text,
									  p_now timestamptz, p_rows jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	ps evmgmt.prediction_state;
	v_found boolean;
	v_tier evmgmt.severity;
	v_first jsonb;
	v_worst jsonb;
	v_start timestamptz;
	v_end timestamptz;
	v_type evmgmt.event_type;
	v_subtype text;
	v_normal double precision;
	v_offered double precision;
	v_event bigint;
	v_state evmgmt.event_state;
	v_sev evmgmt.severity;
	v_decision text;
	v_evidence jsonb;
	v_pol evmgmt.effective_detection_policy;
	v_title text;
	v_need integer;
	v_follow text;
BEGIN
	SELECT * INTO ps FROM evmgmt.prediction_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool FOR UPDATE;
	v_found := FOUND;
	-- a prediction whose event people resolved or cancelled is over
	IF v_found AND ps.status = 'predicted'
	   AND NOT EXISTS (SELECT FROM evmgmt.pool_condition pc JOIN evmgmt.event e ON e.event_id = pc.event_id
					   WHERE pc.event_id = ps.event_id AND pc.pool = p_pool AND pc.state NOT IN ('resolved', 'cancelled')
						 AND e.closed_at IS NULL AND e.cancelled_at IS NULL) THEN
		-- resolved by a response before the breach began: averted by people
		ps.status := CASE WHEN p_now < ps.breach_starts_at
							   AND EXISTS (SELECT FROM evmgmt.pool_condition pc
										   WHERE pc.event_id = ps.event_id AND pc.pool = p_pool AND pc.state = 'resolved')
						  THEN 'averted' ELSE 'not_confirmed' END;
		UPDATE evmgmt.prediction_state s SET status = ps.status, updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
		INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, breach_starts_at, evidence)
		VALUES (p_site, p_queue, p_pool, ps.status, ps.event_id, ps.severity, ps.breach_starts_at,
				pg_catalog.jsonb_build_object('by', 'people'));
	END IF;

	-- the most severe tier ahead, the first interval that reaches a tier,
	-- the worst interval of the breach
	SELECT pg_catalog.min((x ->> 'tier')::evmgmt.severity) INTO v_tier FROM pg_catalog.jsonb_array_elements(p_rows) x;
	IF v_tier IS NULL THEN
		IF v_found AND ps.status = 'predicted' THEN
			IF p_now < ps.breach_starts_at THEN
				v_decision := 'averted';
			ELSIF p_now >= ps.breach_ends_at THEN
				v_decision := 'not_confirmed';
			END IF;
			IF v_decision IS NOT NULL THEN
				PERFORM evmgmt.avert_pool(ps.event_id, p_pool,
					CASE v_decision WHEN 'averted' THEN pg_catalog.format('rule:prediction: averted, the projection of %s is healthy again before the breach predicted for %s', p_pool, ps.breach_starts_at)
									ELSE pg_catalog.format('rule:prediction: not confirmed, the predicted intervals of %s passed without a breach in the actuals', p_pool) END);
				UPDATE evmgmt.prediction_state s SET status = v_decision, updated_at = pg_catalog.clock_timestamp()
				WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
				INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, breach_starts_at, evidence)
				VALUES (p_site, p_queue, p_pool, v_decision, ps.event_id, ps.severity, ps.breach_starts_at,
						pg_catalog.jsonb_build_object('intervals', p_rows));
				PERFORM evmgmt.detection_note(ps.event_id, p_pool, 'prediction', v_decision || ': ' || p_pool,
											  pg_catalog.jsonb_build_object('decision', v_decision, 'breach_starts_at', ps.breach_starts_at));
			END IF;
		END IF;
		RETURN v_decision;
	END IF;

	SELECT x INTO v_first FROM pg_catalog.jsonb_array_elements(p_rows) x WHERE x ->> 'tier' IS NOT NULL
	ORDER BY (x ->> 'interval_start')::timestamptz LIMIT 1;
	v_start := (v_first ->> 'run_started_at')::timestamptz;
	-- the breach: from its start to the last interval below a threshold
	SELECT pg_catalog.max((x ->> 'interval_start')::timestamptz + (x ->> 'interval_minutes')::integer * interval '1 minute')
	INTO v_end FROM pg_catalog.jsonb_array_elements(p_rows) x
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean;
	SELECT x INTO v_worst FROM pg_catalog.jsonb_array_elements(p_rows) x
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean
	ORDER BY (x ->> 'service_level')::float8, (x ->> 'interval_start')::timestamptz LIMIT 1;
	v_need := GREATEST(0, pg_catalog.ceil((v_worst ->> 'agents_needed')::float8 - pg_catalog.floor((v_worst ->> 'scheduled')::float8)))::integer;

	-- a series detection already follows is the actual condition's business
	SELECT d.status INTO v_follow FROM evmgmt.detection_state d
	WHERE d.site_id = p_site AND d.queue_id = p_queue AND d.pool = p_pool AND d.status <> 'recovered'
	  AND EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = d.event_id AND e.closed_at IS NULL AND e.cancelled_at IS NULL);
	IF FOUND AND NOT (v_found AND ps.status = 'predicted') THEN
		RETURN NULL;
	END IF;

	-- the type: forecast volume well above the series' normal (the mean
	-- actual volume of the same intervals on the days of the last 7 that
	-- have actuals) is
	-- demand, otherwise too few scheduled against required is capacity
	SELECT * INTO v_pol FROM evmgmt.effective_detection_policy p WHERE p.operation_id = p_operation;
	SELECT pg_catalog.sum((x ->> 'offered')::float8) INTO v_offered FROM pg_catalog.jsonb_array_elements(p_rows) x
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean;
	SELECT pg_catalog.sum(h.offered)::float8 / NULLIF(pg_catalog.count(DISTINCT k), 0) INTO v_normal
	FROM pg_catalog.jsonb_array_elements(p_rows) x
	CROSS JOIN pg_catalog.generate_series(1, 7) k
	JOIN evmgmt.interval_stat h
	  ON h.interval_start = (x ->> 'interval_start')::timestamptz - k * interval '1 day'
	 AND h.site_id = p_site AND h.queue_id = p_queue AND h.pool = p_pool
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean;
	IF v_normal > 0 AND v_offered >= v_pol.demand_offered_ratio * v_normal THEN
		v_type := 'demand'; v_subtype := 'volume_spike';
	ELSE
		v_type := 'capacity'; v_subtype := 'staffing_shortfall';
	END IF;

	v_evidence := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'tier', v_tier, 'breach_starts_at', v_start, 'breach_ends_at', v_end,
		'projected_service_level', (v_worst ->> 'service_level')::float8,
		'agents_needed', v_need, 'worst_interval', v_worst ->> 'interval_start',
		'scheduled', (v_worst ->> 'scheduled')::float8, 'required', (v_worst ->> 'agents_needed')::integer,
		'forecast_offered', v_offered, 'normal_offered', v_normal,
		'drive', v_worst ->> 'drive', 'inferred_type', v_type, 'inferred_subtype', v_subtype,
		'lead_minutes', pg_catalog.round((EXTRACT(epoch FROM v_start - p_now) / 60)::numeric, 1),
		'intervals', p_rows));

	IF v_found AND ps.status = 'predicted' THEN
		-- the prediction stands: raise when it got worse, keep its figures current
		v_event := ps.event_id;
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = v_event AND pc.pool = p_pool;
		IF v_sev > v_tier THEN
			PERFORM evmgmt.reclassify_pool(v_event, p_pool, v_tier,
				pg_catalog.format('rule:prediction: projected %s for %s', v_tier, p_pool));
			v_decision := 'raised';
		END IF;
		UPDATE evmgmt.prediction_state s
		SET severity = LEAST(s.severity, v_tier), breach_starts_at = LEAST(s.breach_starts_at, v_start),
			breach_ends_at = GREATEST(v_end, s.breach_ends_at),
			projected_service_level = (v_worst ->> 'service_level')::float8, agents_needed = v_need,
			updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
	ELSE
		-- one event per condition: a predicted event of the same site, queue
		-- and type still open takes this pool too
		SELECT e.event_id INTO v_event FROM evmgmt.event e
		WHERE e.site_id = p_site AND e.queue_id = p_queue AND e.event_type = v_type
		  AND e.detection_source = 'predictive' AND e.closed_at IS NULL AND e.cancelled_at IS NULL
		  AND NOT EXISTS (SELECT FROM evmgmt.pool_condition pc WHERE pc.event_id = e.event_id AND pc.pool = p_pool)
		ORDER BY e.event_id DESC LIMIT 1;
		IF v_event IS NULL THEN
			v_title := pg_catalog.format('Predicted %s at %s %s: service level %s%% from %s',
				pg_catalog.lower((SELECT st.name FROM evmgmt.event_subtype st WHERE st.subtype = v_subtype)),
				p_site, p_queue, pg_catalog.round(((v_worst ->> 'service_level')::float8 * 100)::numeric),
				pg_catalog.to_char(v_start AT TIME ZONE (SELECT s.time_zone FROM evmgmt.site s WHERE s.site_id = p_site), 'HH24:MI'));
			v_event := evmgmt.open_event(v_type, p_site, ARRAY[p_pool], 'predictive', v_title,
										 LEAST(p_now, pg_catalog.now()), p_queue, v_subtype,
										 pg_catalog.format('Predicted from the forecast and schedule: %s agents short in the worst interval; the breach would start at %s.', v_need, v_start));
			v_decision := 'predicted';
		ELSE
			PERFORM evmgmt.add_pool(v_event, p_pool, pg_catalog.format('rule:prediction: %s projected %s', p_pool, v_tier));
			v_decision := 'joined';
		END IF;
		INSERT INTO evmgmt.prediction_state AS s (site_id, queue_id, pool, status, event_id, severity, predicted_at,
												  breach_starts_at, breach_ends_at, projected_service_level, agents_needed)
		VALUES (p_site, p_queue, p_pool, 'predicted', v_event, v_tier, p_now, v_start, v_end,
				(v_worst ->> 'service_level')::float8, v_need)
		ON CONFLICT (site_id, queue_id, pool) DO UPDATE
		SET status = 'predicted', event_id = EXCLUDED.event_id, severity = EXCLUDED.severity,
			predicted_at = EXCLUDED.predicted_at, breach_starts_at = EXCLUDED.breach_starts_at,
			breach_ends_at = EXCLUDED.breach_ends_at, projected_service_level = EXCLUDED.projected_service_level,
			agents_needed = EXCLUDED.agents_needed, updated_at = pg_catalog.clock_timestamp();
		-- classified last: the escalation start and the response rules read
		-- the prediction's facts
		PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
	END IF;
	IF v_decision IS NOT NULL THEN
		INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, event_type, subtype,
										   breach_starts_at, evidence)
		VALUES (p_site, p_queue, p_pool, v_decision, v_event, v_tier, v_type, v_subtype, v_start, v_evidence);
		PERFORM evmgmt.detection_note(v_event, p_pool, 'prediction',
			pg_catalog.format('%s: %s projected %s from %s (service level %s%%, %s agents short)', v_decision, p_pool, v_tier,
							  v_start, pg_catalog.round(((v_worst ->> 'service_level')::float8 * 100)::numeric), v_need),
			pg_catalog.jsonb_build_object('decision', v_decision, 'tier', v_tier, 'breach_starts_at', v_start,
										  'agents_needed', v_need));
	END IF;
	RETURN v_decision;
END
$$;
COMMENT ON FUNCTION evmgmt.predict_series(text, text, evmgmt.pool, text, timestamptz, jsonb) IS 'Prediction for one series from its projected intervals: opens (or joins) a predicted event classified at the projected tier, raises it, or averts it when the projection is healthy before the breach starts (not_confirmed when the predicted intervals passed healthy); logs every decision with its evidence';

-- Actuals confirmed a predicted breach (called by detection when it acts on
-- a series with an open prediction): the event carries on.  A pool whose
-- predicted tier did not page starts paging now, as a detected one would.
CREATE FUNCTION evmgmt.prediction_confirm(p_site text, p_queue text, p_pool evmgmt.pool, p_data_time timestamptz,
										  p_tier evmgmt.severity)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ps evmgmt.prediction_state;
BEGIN
	SELECT * INTO ps FROM evmgmt.prediction_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool AND s.status = 'predicted' FOR UPDATE;
	IF NOT FOUND OR NOT EXISTS (SELECT FROM evmgmt.pool_condition pc JOIN evmgmt.event e ON e.event_id = pc.event_id
								WHERE pc.event_id = ps.event_id AND pc.pool = p_pool
								  AND pc.state NOT IN ('resolved', 'cancelled')
								  AND e.closed_at IS NULL AND e.cancelled_at IS NULL) THEN
		RETURN NULL;
	END IF;
	UPDATE evmgmt.prediction_state s SET status = 'confirmed', updated_at = pg_catalog.clock_timestamp()
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
	INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, breach_starts_at, evidence)
	VALUES (p_site, p_queue, p_pool, 'confirmed', ps.event_id, p_tier, ps.breach_starts_at,
			pg_catalog.jsonb_build_object('data_time', p_data_time, 'predicted_tier', ps.severity, 'actual_tier', p_tier,
										  'lead_minutes', pg_catalog.round((EXTRACT(epoch FROM p_data_time - ps.predicted_at) / 60)::numeric, 1)));
	PERFORM evmgmt.detection_note(ps.event_id, p_pool, 'prediction',
		pg_catalog.format('confirmed: the actuals of %s breached at %s (%s), as predicted at %s', p_pool, p_data_time, p_tier, ps.predicted_at),
		pg_catalog.jsonb_build_object('decision', 'confirmed', 'data_time', p_data_time, 'tier', p_tier));
	-- held back as a prediction: pages now
	IF NOT EXISTS (SELECT FROM evmgmt.escalation x WHERE x.event_id = ps.event_id AND x.pool = p_pool AND x.state = 'active') THEN
		PERFORM evmgmt.escalation_start(ps.event_id, p_pool, 'opened', pg_catalog.clock_timestamp());
	END IF;
	RETURN ps.event_id;
END
$$;
COMMENT ON FUNCTION evmgmt.prediction_confirm(text, text, evmgmt.pool, timestamptz, evmgmt.severity) IS 'Marks the open prediction of a series confirmed by the actuals (timeline and prediction_log), starts the paging a held-back prediction did not, and returns its event (NULL when the series has no open prediction)';

-- Whether a predicted pool condition pages (escalation_start): only at the
-- tiers the operation lets predictions page for, unless actuals confirmed it.
CREATE FUNCTION evmgmt.prediction_pages(p_event_id bigint, p_pool evmgmt.pool) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT COALESCE((SELECT e.detection_source <> 'predictive'
						 OR pc.severity <= pol.page_up_to
						 OR EXISTS (SELECT FROM evmgmt.prediction_state s
									WHERE s.event_id = e.event_id AND s.pool = pc.pool AND s.status = 'confirmed')
					 FROM evmgmt.event e
					 JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id AND pc.pool = p_pool
					 JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = e.operation_id
					 WHERE e.event_id = p_event_id), true);
END;
COMMENT ON FUNCTION evmgmt.prediction_pages(bigint, evmgmt.pool) IS 'False for the pool condition of a predicted event whose tier is less severe than the operation''s page_up_to and that actuals have not confirmed: it notifies the footprint''s audiences only';

-- The prediction pass: the series whose inputs changed (or all series with
-- a forecast when p_full), projected in one query, the tier of each
-- interval by the detection rule over the projected series, then each
-- series that breaches or has an open prediction acted on in its own
-- subtransaction.  Returns the run's id.
CREATE FUNCTION evmgmt.run_predictions(p_now timestamptz, p_full boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_started timestamptz := pg_catalog.clock_timestamp();
	v_series integer;
	v_intervals integer;
	v_breaching integer := 0;
	v_decisions integer := 0;
	v_failures integer := 0;
	v_marked timestamptz := pg_catalog.clock_timestamp();
	v_id bigint;
	c record;
	v_decision text;
BEGIN
	IF p_now IS NULL OR NOT (p_now >= timestamptz '2000-01-01 00:00+00' AND p_now < timestamptz '2200-01-01 00:00+00') THEN
		RAISE EXCEPTION 'the moment of run_predictions must lie between 2000-01-01 and 2200-01-01'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF pg_catalog.to_regclass('pg_temp.evmgmt_predict_series') IS NULL THEN
		CREATE TEMPORARY TABLE evmgmt_predict_series (
			site_id text COLLATE "C", queue_id text COLLATE "C", pool evmgmt.pool, changed_at timestamptz,
			PRIMARY KEY (site_id, queue_id, pool)
		) ON COMMIT DELETE ROWS;
	END IF;
	DELETE FROM pg_temp.evmgmt_predict_series;
	INSERT INTO pg_temp.evmgmt_predict_series
	SELECT s.site_id, s.queue_id, s.pool, s.changed_at FROM evmgmt.forecast_series s
	WHERE p_full OR s.predicted_at IS NULL OR s.predicted_at < s.changed_at
	   OR EXISTS (SELECT FROM evmgmt.prediction_state p
				  WHERE p.site_id = s.site_id AND p.queue_id = s.queue_id AND p.pool = s.pool AND p.status = 'predicted');
	GET DIAGNOSTICS v_series = ROW_COUNT;
	ANALYZE pg_temp.evmgmt_predict_series;

	-- every projected interval of the series with the tier it reaches, once
	IF pg_catalog.to_regclass('pg_temp.evmgmt_predict_tiers') IS NULL THEN
		CREATE TEMPORARY TABLE evmgmt_predict_tiers (
			operation_id text, site_id text COLLATE "C", queue_id text COLLATE "C", pool evmgmt.pool,
			interval_start timestamptz, interval_minutes integer, scheduled real, drive text,
			driving_service_level double precision, driving_agents_needed integer, offered double precision,
			projected_service_level double precision, corrected_service_level double precision,
			volume_ratio double precision, aht_ratio double precision, below boolean, tier evmgmt.severity,
			run_started_at timestamptz
		) ON COMMIT DELETE ROWS;
	END IF;
	DELETE FROM pg_temp.evmgmt_predict_tiers;
	INSERT INTO pg_temp.evmgmt_predict_tiers
	WITH proj AS (
		SELECT p.*,
			   ARRAY[th.sev1_threshold, th.sev2_threshold, th.sev3_threshold] AS thresholds,
			   ARRAY[th.sev1_sustain, th.sev2_sustain, th.sev3_sustain] AS sustains
		FROM evmgmt.forecast_projection_at(p_now) p
		JOIN pg_temp.evmgmt_predict_series k ON k.site_id = p.site_id AND k.queue_id = p.queue_id AND k.pool = p.pool
		JOIN evmgmt.severity_thresholds th ON th.operation_id = p.operation_id
		JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = p.operation_id
		WHERE pol.enabled
	), runs AS (
		SELECT x.*, evmgmt.sustained_runs_below(x.driving_service_level, x.thresholds, x.interval_start, x.interval_minutes)
						OVER (PARTITION BY x.site_id, x.queue_id, x.pool ORDER BY x.interval_start) AS r
		FROM proj x
	), tiers AS (
		SELECT y.*, evmgmt.classify_sustained_runs(y.r[1], y.r[2], y.r[3], y.sustains[1], y.sustains[2], y.sustains[3]) AS tier
		FROM runs y
	)
	SELECT t.operation_id, t.site_id, t.queue_id, t.pool, t.interval_start, t.interval_minutes, t.scheduled, t.drive,
		   t.driving_service_level, t.driving_agents_needed,
		   CASE t.drive WHEN 'forecast' THEN t.forecast_offered::float8 ELSE t.corrected_offered END,
		   t.projected_service_level, t.corrected_service_level, t.volume_ratio, t.aht_ratio,
		   COALESCE(t.driving_service_level < GREATEST(t.thresholds[1], t.thresholds[2], t.thresholds[3])
					OR (t.driving_service_level <= 0 AND 0 = ANY (t.thresholds)), false),
		   t.tier,
		   CASE WHEN t.tier IS NOT NULL THEN
				t.interval_start + t.interval_minutes * interval '1 minute'
				- t.r[CASE t.tier WHEN 'sev1' THEN 1 WHEN 'sev2' THEN 2 ELSE 3 END] * interval '1 minute' END
	FROM tiers t;
	GET DIAGNOSTICS v_intervals = ROW_COUNT;
	SELECT pg_catalog.count(DISTINCT (t.site_id, t.queue_id, t.pool)) INTO v_breaching
	FROM pg_temp.evmgmt_predict_tiers t WHERE t.tier IS NOT NULL;

	-- the series that breach or have an open prediction, each with its
	-- intervals as the evidence, acted on one by one; and open predictions
	-- left without projected intervals, with none
	FOR c IN
		SELECT t.operation_id, t.site_id, t.queue_id, t.pool,
			   pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
				   'interval_start', t.interval_start, 'interval_minutes', t.interval_minutes,
				   'service_level', t.driving_service_level, 'agents_needed', t.driving_agents_needed,
				   'scheduled', t.scheduled, 'drive', t.drive, 'offered', t.offered,
				   'forecast_service_level', t.projected_service_level, 'corrected_service_level', t.corrected_service_level,
				   'volume_ratio', t.volume_ratio, 'aht_ratio', t.aht_ratio, 'below', t.below, 'tier', t.tier,
				   'run_started_at', t.run_started_at))
				   ORDER BY t.interval_start) AS rows
		FROM pg_temp.evmgmt_predict_tiers t
		WHERE (t.site_id, t.queue_id, t.pool) IN (SELECT x.site_id, x.queue_id, x.pool FROM pg_temp.evmgmt_predict_tiers x
												  WHERE x.tier IS NOT NULL
												  UNION
												  SELECT s.site_id, s.queue_id, s.pool FROM evmgmt.prediction_state s
												  WHERE s.status = 'predicted')
		GROUP BY t.operation_id, t.site_id, t.queue_id, t.pool
		UNION ALL
		-- open predictions whose forecast has gone beyond the horizon's reach
		-- (no projected interval left): over once their breach window has passed
		SELECT si.operation_id, s.site_id, s.queue_id, s.pool, '[]'::jsonb
		FROM evmgmt.prediction_state s
		JOIN evmgmt.site si ON si.site_id = s.site_id
		WHERE s.status = 'predicted' AND s.breach_ends_at <= p_now
		  AND NOT EXISTS (SELECT FROM evmgmt.interval_forecast f
						  WHERE f.site_id = s.site_id AND f.queue_id = s.queue_id AND f.pool = s.pool
							AND f.interval_start + f.interval_minutes * interval '1 minute' > p_now
							AND f.interval_start < p_now + interval '1 hour')
		  AND NOT EXISTS (SELECT FROM pg_temp.evmgmt_predict_tiers t
						  WHERE t.site_id = s.site_id AND t.queue_id = s.queue_id AND t.pool = s.pool)
		ORDER BY 2, 3, 4
	LOOP
		BEGIN
			v_decision := evmgmt.predict_series(c.site_id, c.queue_id, c.pool, c.operation_id, p_now, c.rows);
			IF v_decision IS NOT NULL THEN
				v_decisions := v_decisions + 1;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			v_failures := v_failures + 1;
			RAISE WARNING 'evmgmt prediction failed for series % % %: %', c.site_id, c.queue_id, c.pool, SQLERRM
				USING DETAIL = 'SQLSTATE ' || SQLSTATE || '. The other series were predicted; this one is tried again on the next pass.';
		END;
	END LOOP;

	-- done for what this pass saw: a load that changed a series since (its
	-- row is newer than this pass's snapshot, so changed_at differs here)
	-- leaves the series due for the next pass
	UPDATE evmgmt.forecast_series s SET predicted_at = v_marked
	FROM pg_temp.evmgmt_predict_series k
	WHERE k.site_id = s.site_id AND k.queue_id = s.queue_id AND k.pool = s.pool
	  AND s.changed_at = k.changed_at
	  AND (s.predicted_at IS NULL OR s.predicted_at < v_marked);
	-- forecasts of intervals that ended long ago are no longer read
	DELETE FROM evmgmt.interval_forecast f
	WHERE f.interval_start < p_now - evmgmt.setting_interval('evmgmt.forecast_retention', interval '35 days');
	INSERT INTO evmgmt.prediction_run (started_at, finished_at, full_pass, series, intervals, breaching, decisions, failures)
	VALUES (v_started, pg_catalog.clock_timestamp(), p_full, v_series, v_intervals, v_breaching, v_decisions, v_failures)
	RETURNING run_id INTO v_id;
	DELETE FROM evmgmt.prediction_run r WHERE r.started_at < p_now - interval '7 days';
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION evmgmt.run_predictions(timestamptz, boolean) IS 'One prediction pass at the given moment: projects the series whose forecast or actuals changed (all series with a forecast when full), applies the detection rule to the projected series and acts on each series that breaches or has an open prediction in its own subtransaction; records the pass in prediction_run and returns its id';

-- When the worker should run the next pass: now for changed series, else
-- evmgmt.prediction_refresh after the last full pass.
CREATE FUNCTION evmgmt.prediction_due(p_now timestamptz, OUT due_at timestamptz, OUT full_pass boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_last timestamptz;
BEGIN
	-- nothing to project: no forecast interval ahead within the longest
	-- horizon and no open prediction (only old forecasts to forget, maybe)
	IF NOT EXISTS (SELECT FROM evmgmt.interval_forecast f
				   WHERE f.interval_start > p_now - interval '1 hour' AND f.interval_start < p_now + interval '2 days'
					 AND f.interval_start + f.interval_minutes * interval '1 minute' > p_now)
	   AND NOT EXISTS (SELECT FROM evmgmt.prediction_state s WHERE s.status = 'predicted') THEN
		IF EXISTS (SELECT FROM evmgmt.interval_forecast f
				   WHERE f.interval_start < p_now - evmgmt.setting_interval('evmgmt.forecast_retention', interval '35 days')) THEN
			due_at := p_now;
			full_pass := false;
		END IF;
		RETURN;
	END IF;
	SELECT pg_catalog.max(r.started_at) INTO v_last FROM evmgmt.prediction_run r WHERE r.full_pass;
	IF v_last IS NULL OR v_last + evmgmt.setting_interval('evmgmt.prediction_refresh', interval '5 minutes') <= p_now THEN
		due_at := p_now;
		full_pass := true;
	ELSIF EXISTS (SELECT FROM evmgmt.forecast_series s WHERE s.predicted_at IS NULL OR s.predicted_at < s.changed_at) THEN
		due_at := p_now;
		full_pass := false;
	ELSE
		due_at := v_last + evmgmt.setting_interval('evmgmt.prediction_refresh', interval '5 minutes');
		full_pass := true;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.prediction_due(timestamptz) IS 'When the next prediction pass is due and whether it is a full one (NULL when no forecast interval lies ahead within two days, no prediction is open and no forecast is older than evmgmt.forecast_retention)';

-- The outcome of every predicted event and every missed breach, for the
-- maturity figures: predicted events confirmed, averted or not confirmed
-- (and still open), and events detected from actuals that no prediction
-- foresaw.
CREATE VIEW evmgmt.prediction_outcome AS
SELECT e.event_id, e.operation_id, e.site_id, e.queue_id, e.event_type, e.opened_at,
	   'predicted'::text AS source,
	   CASE WHEN pg_catalog.bool_or(s.status = 'confirmed') THEN 'confirmed'
			WHEN pg_catalog.bool_or(s.status = 'predicted') THEN 'open'
			WHEN pg_catalog.bool_or(s.status = 'averted') THEN 'averted'
			ELSE 'not_confirmed' END AS outcome,
	   pg_catalog.min(s.breach_starts_at) AS breach_starts_at,
	   pg_catalog.round((EXTRACT(epoch FROM pg_catalog.min(s.breach_starts_at) - e.opened_at) / 60)::numeric, 1) AS lead_minutes
FROM evmgmt.event e
JOIN evmgmt.prediction_state s ON s.event_id = e.event_id
WHERE e.detection_source = 'predictive'
GROUP BY e.event_id
UNION ALL
SELECT e.event_id, e.operation_id, e.site_id, e.queue_id, e.event_type, e.opened_at, 'rule', 'missed', NULL, NULL
FROM evmgmt.event e
WHERE e.detection_source = 'rule'
  AND EXISTS (SELECT FROM evmgmt.forecast_series f JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
			  WHERE f.site_id = e.site_id AND f.queue_id = e.queue_id AND f.pool = pc.pool);
COMMENT ON VIEW evmgmt.prediction_outcome IS 'Every predicted event with its outcome (confirmed by actuals, averted, not confirmed, or still open) and lead time, and every event detected from actuals on a series with a forecast (missed: no prediction foresaw it)';

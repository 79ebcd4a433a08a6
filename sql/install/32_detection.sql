-- Rule-driven detection: interval data opens, raises and recovers events by
-- itself, set-based, right after each load (docs/detection.md).
--
-- interval_stat's statement trigger hands the series a load touched to
-- detect_loaded().  For each, at the series' latest interval and in data
-- time, the trailing run below each tier's threshold gives the tier (the C
-- classification of 30_classify.sql).  One event per condition: the open
-- event of the same site, queue and type is reused, each pool gets its own
-- condition, a rising tier reclassifies the pool upward.  Every move goes
-- through the lifecycle functions, so the state machine, the audit and the
-- escalation start apply; the timeline says which rule acted.  What each
-- decision saw is kept in detection_log (the evidence).
--
-- Only series whose latest interval is below a threshold, or that detection
-- already follows (detection_state), are evaluated further: a healthy load
-- of 6,000 series costs one key look-up each.

------------------------------------------------------------------------------
-- Per-operation settings
------------------------------------------------------------------------------

CREATE TABLE evmgmt.detection_policy (
	operation_id		text PRIMARY KEY REFERENCES evmgmt.operation ON DELETE CASCADE,
	enabled				boolean NOT NULL DEFAULT true,
	system_handled_ratio double precision NOT NULL DEFAULT 0.10
		CONSTRAINT detection_policy_system_ratio_fraction CHECK (system_handled_ratio >= 0 AND system_handled_ratio < 1),
	capacity_staffed_ratio double precision NOT NULL DEFAULT 0.85
		CONSTRAINT detection_policy_capacity_ratio_fraction CHECK (capacity_staffed_ratio > 0 AND capacity_staffed_ratio < 1),
	demand_offered_ratio double precision NOT NULL DEFAULT 1.3
		CONSTRAINT detection_policy_demand_ratio_above_one CHECK (demand_offered_ratio > 1 AND demand_offered_ratio < 'Infinity'),
	process_aht_ratio	double precision NOT NULL DEFAULT 1.25
		CONSTRAINT detection_policy_aht_ratio_above_one CHECK (process_aht_ratio > 1 AND process_aht_ratio < 'Infinity'),
	process_share_ratio	double precision NOT NULL DEFAULT 2.0
		CONSTRAINT detection_policy_share_ratio_above_one CHECK (process_share_ratio > 1 AND process_share_ratio < 'Infinity'),
	lookback			interval NOT NULL DEFAULT '4 hours'
		CONSTRAINT detection_policy_lookback_range CHECK (lookback >= interval '1 hour' AND lookback <= interval '2 days'),
	auto_resolve_after	integer
		CONSTRAINT detection_policy_auto_resolve_positive CHECK (auto_resolve_after > 0),
	auto_resolve_severities evmgmt.severity[] NOT NULL DEFAULT '{sev3,sev4}',
	flap_window			interval NOT NULL DEFAULT '1 hour'
		CONSTRAINT detection_policy_flap_window_positive CHECK (flap_window > interval '0'),
	flap_transitions	integer NOT NULL DEFAULT 3
		CONSTRAINT detection_policy_flap_transitions_min CHECK (flap_transitions >= 2),
	feed_due_intervals	integer NOT NULL DEFAULT 2
		CONSTRAINT detection_policy_feed_due_positive CHECK (feed_due_intervals >= 1),
	feed_severity		evmgmt.severity NOT NULL DEFAULT 'sev3',
	backfill_after		interval NOT NULL DEFAULT '2 hours'
		CONSTRAINT detection_policy_backfill_positive CHECK (backfill_after > interval '0')
);
COMMENT ON TABLE evmgmt.detection_policy IS 'Detection thresholds and noise control per operation (an operation without a row uses the defaults)';
COMMENT ON COLUMN evmgmt.detection_policy.system_handled_ratio IS 'Type inference: system when handled <= this share of offered in the breaching intervals';
COMMENT ON COLUMN evmgmt.detection_policy.capacity_staffed_ratio IS 'Type inference: capacity when staffed <= this share of scheduled';
COMMENT ON COLUMN evmgmt.detection_policy.demand_offered_ratio IS 'Type inference: demand when offered >= this multiple of forecast_offered';
COMMENT ON COLUMN evmgmt.detection_policy.process_aht_ratio IS 'Type inference: process when AHT >= this multiple of forecast AHT';
COMMENT ON COLUMN evmgmt.detection_policy.process_share_ratio IS 'Type inference: process when the escalated or transferred share >= this multiple of its trailing 7-day mean for the series and interval of day';
COMMENT ON COLUMN evmgmt.detection_policy.lookback IS 'How far back the trailing run of a series is read (a run longer than this is dated from the lookback)';
COMMENT ON COLUMN evmgmt.detection_policy.auto_resolve_after IS 'Healthy intervals after which detection resolves a recovered pool condition of a tier in auto_resolve_severities that a responder has responded to; NULL: a responder resolves';
COMMENT ON COLUMN evmgmt.detection_policy.flap_window IS 'Flapping: a series that changes between breaching and recovering flap_transitions times within this data-time window is held at its tier';
COMMENT ON COLUMN evmgmt.detection_policy.feed_due_intervals IS 'Feed health: a site whose next interval is this many interval lengths past due opens a WFM platform outage event';
COMMENT ON COLUMN evmgmt.detection_policy.backfill_after IS 'Backfill: intervals that ended longer ago than this are stored and classified but open nothing and page nobody';

CREATE VIEW evmgmt.effective_detection_policy AS
SELECT o.operation_id,
	   COALESCE(p.enabled, true) AS enabled,
	   COALESCE(p.system_handled_ratio, 0.10) AS system_handled_ratio,
	   COALESCE(p.capacity_staffed_ratio, 0.85) AS capacity_staffed_ratio,
	   COALESCE(p.demand_offered_ratio, 1.3) AS demand_offered_ratio,
	   COALESCE(p.process_aht_ratio, 1.25) AS process_aht_ratio,
	   COALESCE(p.process_share_ratio, 2.0) AS process_share_ratio,
	   COALESCE(p.lookback, interval '4 hours') AS lookback,
	   p.auto_resolve_after,
	   COALESCE(p.auto_resolve_severities, '{sev3,sev4}'::evmgmt.severity[]) AS auto_resolve_severities,
	   COALESCE(p.flap_window, interval '1 hour') AS flap_window,
	   COALESCE(p.flap_transitions, 3) AS flap_transitions,
	   COALESCE(p.feed_due_intervals, 2) AS feed_due_intervals,
	   COALESCE(p.feed_severity, 'sev3'::evmgmt.severity) AS feed_severity,
	   COALESCE(p.backfill_after, interval '2 hours') AS backfill_after
FROM evmgmt.operation o
LEFT JOIN evmgmt.detection_policy p ON p.operation_id = o.operation_id;
COMMENT ON VIEW evmgmt.effective_detection_policy IS 'Detection settings in force for every operation: its detection_policy row or the defaults';

-- Maintenance windows: detection during them is recorded, opens nothing and
-- pages nobody.  A NULL queue or pool means all of the site's.
CREATE TABLE evmgmt.maintenance_window (
	window_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site ON DELETE CASCADE,
	queue_id		text COLLATE "C" REFERENCES evmgmt.queue ON DELETE CASCADE,
	pool			evmgmt.pool,
	starts_at		timestamptz NOT NULL,
	ends_at			timestamptz NOT NULL,
	reason			text NOT NULL CHECK (reason <> ''),
	created_by		text NOT NULL DEFAULT SESSION_USER,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT maintenance_window_starts_before_ends CHECK (starts_at < ends_at)
);
CREATE INDEX ON evmgmt.maintenance_window (site_id, ends_at);
COMMENT ON TABLE evmgmt.maintenance_window IS 'Planned work per site (and optionally queue and pool) and data-time range: breaches inside are recorded in detection_log but open no event';

------------------------------------------------------------------------------
-- What detection knows and did
------------------------------------------------------------------------------

-- The condition detection follows on each series, in data time.
CREATE TABLE evmgmt.detection_state (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	status			text NOT NULL CONSTRAINT detection_state_status_known
						CHECK (status IN ('breaching', 'recovering', 'flapping', 'recovered')),
	severity		evmgmt.severity,
	event_id		bigint,
	breach_started_at timestamptz,
	evaluated_at	timestamptz NOT NULL,
	healthy_intervals integer NOT NULL DEFAULT 0,
	transitions		timestamptz[] NOT NULL DEFAULT '{}',
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (site_id, queue_id, pool)
);
CREATE INDEX ON evmgmt.detection_state (event_id);
COMMENT ON TABLE evmgmt.detection_state IS 'Per series, the condition detection follows: breaching, recovering (healthy again, event still open), flapping (held at its tier) or recovered; the event it belongs to; data times of the recent changes';

-- Every decision of detection with the figures behind it.
CREATE TABLE evmgmt.detection_log (
	detection_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	recorded_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	recorded_by		text NOT NULL DEFAULT SESSION_USER,
	site_id			text NOT NULL,
	queue_id		text,
	pool			evmgmt.pool,
	data_time		timestamptz NOT NULL,
	rule			text NOT NULL,
	decision		text NOT NULL CONSTRAINT detection_log_decision_known CHECK (decision IN (
						'opened', 'joined', 'raised', 'reopened', 'continued', 'recovering', 'flapping',
						'auto_resolved', 'maintenance', 'inhibited', 'backfill', 'feed_silent', 'feed_resumed')),
	event_id		bigint,
	severity		evmgmt.severity,
	event_type		evmgmt.event_type,
	subtype			text,
	weak_inference	boolean NOT NULL DEFAULT false,
	evidence		jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON evmgmt.detection_log (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX ON evmgmt.detection_log (site_id, data_time);
COMMENT ON TABLE evmgmt.detection_log IS 'Every detection decision with its data time, rule and evidence (intervals and figures): events opened, joined, raised, reopened, recovering; breaches suppressed by a maintenance window, inhibited by an outage, or only recorded as backfill';
COMMENT ON COLUMN evmgmt.detection_log.weak_inference IS 'The type was inferred from the largest deviation relative to its threshold, no rule matched: a suggestion to check';

CREATE VIEW evmgmt.detection_evidence AS
SELECT l.event_id, l.detection_id, l.data_time, l.site_id, l.queue_id, l.pool, l.rule, l.decision, l.severity,
	   l.event_type, l.subtype, l.weak_inference,
	   (l.evidence -> 'figures') AS figures, (l.evidence -> 'intervals') AS intervals, l.recorded_at
FROM evmgmt.detection_log l
WHERE l.event_id IS NOT NULL;
COMMENT ON VIEW evmgmt.detection_evidence IS 'The evidence behind every detection decision on an event: rule, tier, inferred type, the intervals and the figures (service level, offered vs forecast, staffed vs scheduled, AHT vs forecast, minutes below each tier)';

------------------------------------------------------------------------------
-- Type inference
------------------------------------------------------------------------------

-- First match wins (system, capacity, demand, process); otherwise the
-- largest deviation relative to its threshold, marked weak.
CREATE FUNCTION evmgmt.infer_event_type(offered double precision, handled double precision,
										staffed double precision, scheduled double precision,
										forecast_offered double precision, offered_with_forecast double precision,
										aht double precision,
										forecast_aht double precision, escalated_share double precision,
										escalated_baseline double precision, transferred_share double precision,
										transferred_baseline double precision,
										pol evmgmt.effective_detection_policy,
										OUT event_type evmgmt.event_type, OUT subtype text, OUT weak boolean,
										OUT matched text)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s_sys double precision;
	s_cap double precision;
	s_dem double precision;
	s_aht double precision;
	s_esc double precision;
	s_tra double precision;
	best double precision;
BEGIN
	weak := false;
	IF offered > 0 AND handled <= pol.system_handled_ratio * offered THEN
		event_type := 'system'; subtype := 'router_failure';
		matched := pg_catalog.format('handled %s of %s offered <= %s', handled, offered, pol.system_handled_ratio);
		RETURN;
	END IF;
	IF scheduled > 0 AND staffed <= pol.capacity_staffed_ratio * scheduled THEN
		event_type := 'capacity'; subtype := 'staffing_shortfall';
		matched := pg_catalog.format('staffed %s <= %s x scheduled %s', pg_catalog.round(staffed::numeric, 1), pol.capacity_staffed_ratio, pg_catalog.round(scheduled::numeric, 1));
		RETURN;
	END IF;
	IF forecast_offered > 0 AND offered_with_forecast >= pol.demand_offered_ratio * forecast_offered THEN
		event_type := 'demand'; subtype := 'volume_spike';
		matched := pg_catalog.format('offered %s >= %s x forecast %s', offered_with_forecast, pol.demand_offered_ratio, pg_catalog.round(forecast_offered::numeric, 1));
		RETURN;
	END IF;
	IF forecast_aht > 0 AND aht >= pol.process_aht_ratio * forecast_aht THEN
		event_type := 'process'; subtype := 'aht_inflation';
		matched := pg_catalog.format('AHT %s >= %s x forecast %s', pg_catalog.round(aht::numeric), pol.process_aht_ratio, pg_catalog.round(forecast_aht::numeric));
		RETURN;
	END IF;
	IF escalated_baseline > 0 AND escalated_share >= pol.process_share_ratio * escalated_baseline THEN
		event_type := 'process'; subtype := 'escalation_rate_spike';
		matched := pg_catalog.format('escalated share %s >= %s x 7-day mean %s', pg_catalog.round(escalated_share::numeric, 3), pol.process_share_ratio, pg_catalog.round(escalated_baseline::numeric, 3));
		RETURN;
	END IF;
	IF transferred_baseline > 0 AND transferred_share >= pol.process_share_ratio * transferred_baseline THEN
		event_type := 'process'; subtype := 'escalation_rate_spike';
		matched := pg_catalog.format('transferred share %s >= %s x 7-day mean %s', pg_catalog.round(transferred_share::numeric, 3), pol.process_share_ratio, pg_catalog.round(transferred_baseline::numeric, 3));
		RETURN;
	END IF;

	-- no rule matched: the deviation largest relative to its threshold
	weak := true;
	s_sys := CASE WHEN offered > 0 THEN (1 - handled / offered) / (1 - pol.system_handled_ratio) END;
	s_cap := CASE WHEN scheduled > 0 THEN (1 - staffed / scheduled) / (1 - pol.capacity_staffed_ratio) END;
	s_dem := CASE WHEN forecast_offered > 0 THEN (offered_with_forecast / forecast_offered - 1) / (pol.demand_offered_ratio - 1) END;
	s_aht := CASE WHEN forecast_aht > 0 THEN (aht / forecast_aht - 1) / (pol.process_aht_ratio - 1) END;
	s_esc := CASE WHEN escalated_baseline > 0 THEN (escalated_share / escalated_baseline - 1) / (pol.process_share_ratio - 1) END;
	s_tra := CASE WHEN transferred_baseline > 0 THEN (transferred_share / transferred_baseline - 1) / (pol.process_share_ratio - 1) END;
	best := GREATEST(s_sys, s_cap, s_dem, s_aht, s_esc, s_tra);
	IF best IS NULL THEN
		event_type := 'capacity';
		matched := 'no staffing, forecast or handle-time figures: capacity by default';
	ELSIF best = s_cap THEN
		event_type := 'capacity'; subtype := 'staffing_shortfall';
		matched := pg_catalog.format('largest deviation: staffed vs scheduled (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSIF best = s_dem THEN
		event_type := 'demand'; subtype := 'volume_spike';
		matched := pg_catalog.format('largest deviation: offered vs forecast (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSIF best = s_aht THEN
		event_type := 'process'; subtype := 'aht_inflation';
		matched := pg_catalog.format('largest deviation: AHT vs forecast (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSIF best = s_esc OR best = s_tra THEN
		event_type := 'process'; subtype := 'escalation_rate_spike';
		matched := pg_catalog.format('largest deviation: escalated or transferred share vs 7-day mean (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSE
		event_type := 'system';
		matched := pg_catalog.format('largest deviation: handled vs offered (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.infer_event_type(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, evmgmt.effective_detection_policy) IS 'Type and subtype suggested by the figures of the breaching intervals (first match wins: system, capacity, demand, process; else the largest relative deviation, weak)';

------------------------------------------------------------------------------
-- Detection after each load
------------------------------------------------------------------------------

-- One interval of a series under evaluation, with the trailing runs below
-- the three tier thresholds up to it.
CREATE TYPE evmgmt.detection_row AS (
	interval_start	timestamptz,
	interval_minutes integer,
	service_level	double precision,
	runs			double precision[],
	offered			integer,
	handled			integer,
	answered		integer,
	staffed			real,
	scheduled		real,
	forecast_offered real,
	aht				real,
	forecast_aht	real,
	escalated		integer,
	transferred		integer
);
COMMENT ON TYPE evmgmt.detection_row IS 'An interval of a series as detection reads it: service level, trailing minutes below each tier threshold and the figures for type inference';


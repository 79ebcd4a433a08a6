-- evmgmt install script, assembled by make from sql/install/*.sql in name order.
-- Every object is schema-qualified and every function pins its search_path, so
-- a hostile search_path at CREATE EXTENSION time or at call time changes nothing.

\echo Use "CREATE EXTENSION evmgmt" to load this file. \quit

-- Roles are cluster-wide: create them only if missing, never drop them.
DO $roles$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest'] LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$roles$;

COMMENT ON SCHEMA evmgmt IS 'evmgmt: contact-center event management (severity, Erlang math, lifecycles, escalations, notifications)';
REVOKE ALL ON SCHEMA evmgmt FROM PUBLIC;
GRANT USAGE ON SCHEMA evmgmt TO PUBLIC;

CREATE TYPE evmgmt.severity AS ENUM ('sev1', 'sev2', 'sev3', 'sev4');
COMMENT ON TYPE evmgmt.severity IS 'Severity tier: sev1 critical (outage), sev2 high, sev3 medium, sev4 low (request/change)';

CREATE TYPE evmgmt.event_type AS ENUM ('capacity', 'demand', 'system', 'process', 'third_party');
COMMENT ON TYPE evmgmt.event_type IS 'Event type: drives diagnosis and response routing';

CREATE TYPE evmgmt.pool AS ENUM ('aa', 'collab', 'spec');
COMMENT ON TYPE evmgmt.pool IS 'Work pool: aa autonomous AI, collab human-AI collaborative, spec specialist humans';

CREATE TYPE evmgmt.event_state AS ENUM
	('detected', 'classified', 'diagnosed', 'responding', 'resolved', 'closed', 'cancelled');
COMMENT ON TYPE evmgmt.event_state IS 'Protocol state of a pool condition (detected .. resolved, cancelled) and of an event roll-up (adds closed)';

CREATE TYPE evmgmt.channel AS ENUM ('push', 'sms', 'voice', 'email', 'webhook');
COMMENT ON TYPE evmgmt.channel IS 'Notification channel';

CREATE TYPE evmgmt.objective AS ENUM
	('service_level', 'cost', 'customer_experience', 'agent_experience', 'business_value');
COMMENT ON TYPE evmgmt.objective IS 'Objective an event is evaluated against in post-resolution analysis';

-- Does the server know this time zone name?  Used by CHECK constraints; the
-- zone database does not change under a running server, hence IMMUTABLE.
CREATE FUNCTION evmgmt.is_time_zone(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_catalog.pg_timezone_names WHERE pg_timezone_names.name = is_time_zone.name);
COMMENT ON FUNCTION evmgmt.is_time_zone(text) IS 'True when the argument is a time zone name the server knows (IANA names such as Europe/Berlin)';

-- Mask a phone number or e-mail address for logs and reader views:
-- keep the last two digits of a phone, the first letter and domain of an e-mail.
CREATE FUNCTION evmgmt.mask_address(address text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN address ~ '@' THEN pg_catalog.left(address, 1) || '***' || pg_catalog.substr(address, pg_catalog.strpos(address, '@'))
	WHEN address ~ '^\+?[0-9 ().-]{5,}$' THEN pg_catalog.regexp_replace(pg_catalog.left(address, -2), '[0-9]', '*', 'g') || pg_catalog.right(address, 2)
	ELSE '***'
END;
COMMENT ON FUNCTION evmgmt.mask_address(text) IS 'Masks a phone number (all but the last two digits) or e-mail address (all but the first letter and the domain)';
-- Queueing math (src/erlang.c, src/erlang_math.c): Erlang B, C and A.
-- Units: traffic in Erlangs (hours of work per hour), times in seconds,
-- probabilities and occupancy as fractions 0..1.  Reference: docs/erlang.md.
--
-- All are pure functions of their arguments, IMMUTABLE STRICT PARALLEL SAFE,
-- and EXECUTE stays granted to PUBLIC.  They carry no SET search_path: they
-- are C code that resolves no names, and a SET clause would route every call
-- through fmgr_security_definer, which saves and restores the setting per
-- call and costs more than the math itself.
-- Bad arguments raise SQLSTATE 22023 with a message that names the argument.

CREATE FUNCTION evmgmt.erlang_b(traffic float8, agents int) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_erlang_b';
COMMENT ON FUNCTION evmgmt.erlang_b(float8, int) IS 'Erlang B: blocking probability of a loss system with the given traffic (Erlangs) and agents (1..100000)';

CREATE FUNCTION evmgmt.erlang_c(traffic float8, agents int) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_erlang_c';
COMMENT ON FUNCTION evmgmt.erlang_c(float8, int) IS 'Erlang C: probability that a call waits; 1 when agents <= traffic (unstable queue)';

CREATE FUNCTION evmgmt.service_level(traffic float8, agents int, aht_seconds float8, target_seconds float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_service_level';
COMMENT ON FUNCTION evmgmt.service_level(float8, int, float8, float8) IS 'Erlang C service level 0..1: share of calls answered within target_seconds, 1 - C exp(-(agents - traffic) target / aht); 0 when agents <= traffic';

CREATE FUNCTION evmgmt.asa(traffic float8, agents int, aht_seconds float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_asa';
COMMENT ON FUNCTION evmgmt.asa(float8, int, float8) IS 'Erlang C average speed of answer in seconds over all calls, C aht / (agents - traffic); Infinity when agents <= traffic';

CREATE FUNCTION evmgmt.occupancy(traffic float8, agents int) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_occupancy';
COMMENT ON FUNCTION evmgmt.occupancy(float8, int) IS 'Agent occupancy traffic / agents, capped at 1 (agents <= traffic: all agents busy all the time)';

CREATE FUNCTION evmgmt.agents_required(traffic float8, aht_seconds float8, target_sl float8, target_seconds float8,
									   max_occupancy float8 DEFAULT 1, shrinkage float8 DEFAULT 0) RETURNS int
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_agents_required';
COMMENT ON FUNCTION evmgmt.agents_required(float8, float8, float8, float8, float8, float8) IS 'Smallest number of agents whose Erlang C service level reaches target_sl within target_seconds and whose occupancy is at most max_occupancy, grossed up for shrinkage; 0 for zero traffic';

CREATE FUNCTION evmgmt.power_of_one(traffic float8, agents int, aht_seconds float8, target_seconds float8, steps int DEFAULT 5)
RETURNS TABLE (agents int, delta int, service_level float8, asa float8, occupancy float8)
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE ROWS 11
AS 'MODULE_PATHNAME', 'evmgmt_power_of_one';
COMMENT ON FUNCTION evmgmt.power_of_one(float8, int, float8, float8, int) IS 'Power of One: Erlang C service level, ASA and occupancy from agents - steps to agents + steps (counts below 1 or above 100000 skipped), ascending';

CREATE FUNCTION evmgmt.erlang_a(traffic float8, agents int, aht_seconds float8, patience_seconds float8, target_seconds float8,
								OUT p_wait float8, OUT p_abandon float8, OUT service_level float8,
								OUT asa float8, OUT mean_wait float8, OUT occupancy float8)
RETURNS record
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_erlang_a';
COMMENT ON FUNCTION evmgmt.erlang_a(float8, int, float8, float8, float8) IS 'Erlang A (M/M/n+M, exponential patience with mean patience_seconds): probability of waiting, of abandoning, share answered within target_seconds, ASA of answered calls, mean wait of all calls, occupancy';

CREATE FUNCTION evmgmt.traffic(calls float8, interval_seconds float8, aht_seconds float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'evmgmt_traffic';
COMMENT ON FUNCTION evmgmt.traffic(float8, float8, float8) IS 'Offered traffic in Erlangs from an interval: calls * aht_seconds / interval_seconds';
-- Organisation: operations, business calendars, sites, queues.

CREATE TABLE evmgmt.operation (
	operation_id	text PRIMARY KEY CHECK (operation_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE evmgmt.operation IS 'A contact-center operation: owns sites, queues, its calibrated severity policy and notification footprint';

CREATE TABLE evmgmt.calendar (
	calendar_id		text PRIMARY KEY CHECK (calendar_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> '')
);
COMMENT ON TABLE evmgmt.calendar IS 'A business calendar: working hours per weekday and holidays; interpreted in the time zone of the site that uses it';

CREATE TABLE evmgmt.calendar_hours (
	calendar_id		text NOT NULL REFERENCES evmgmt.calendar ON DELETE CASCADE,
	isodow			smallint NOT NULL CHECK (isodow BETWEEN 1 AND 7),
	opens			time NOT NULL,
	closes			time NOT NULL,
	CONSTRAINT calendar_hours_opens_before_closes CHECK (opens < closes),
	PRIMARY KEY (calendar_id, isodow, opens)
);
COMMENT ON TABLE evmgmt.calendar_hours IS 'Working windows of a calendar per ISO weekday (1 = Monday); several windows a day allowed, never overlapping';

-- Working windows of one weekday must not overlap.  The calendar row is locked
-- first so that two sessions adding windows to one calendar are serialised.
CREATE FUNCTION evmgmt.calendar_hours_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM FROM evmgmt.calendar WHERE calendar_id = NEW.calendar_id FOR UPDATE;
	IF EXISTS (SELECT FROM evmgmt.calendar_hours h
			   WHERE h.calendar_id = NEW.calendar_id AND h.isodow = NEW.isodow
				 AND (h.calendar_id, h.isodow, h.opens) IS DISTINCT FROM (OLD.calendar_id, OLD.isodow, OLD.opens)
				 AND h.opens < NEW.closes AND NEW.opens < h.closes) THEN
		RAISE EXCEPTION 'working window % to % overlaps another window of calendar "%" on ISO weekday %',
			NEW.opens, NEW.closes, NEW.calendar_id, NEW.isodow
			USING ERRCODE = 'exclusion_violation',
				  DETAIL = 'Working windows of one weekday must not overlap.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.calendar_hours_check() IS 'Trigger: refuses overlapping working windows on one weekday of a calendar';
CREATE TRIGGER calendar_hours_check BEFORE INSERT OR UPDATE ON evmgmt.calendar_hours
	FOR EACH ROW EXECUTE FUNCTION evmgmt.calendar_hours_check();

CREATE TABLE evmgmt.calendar_holiday (
	calendar_id		text NOT NULL REFERENCES evmgmt.calendar ON DELETE CASCADE,
	day				date NOT NULL,
	name			text NOT NULL CHECK (name <> ''),
	PRIMARY KEY (calendar_id, day)
);
COMMENT ON TABLE evmgmt.calendar_holiday IS 'Whole-day holidays of a calendar: no business time is counted on them';

CREATE TABLE evmgmt.site (
	site_id			text COLLATE "C" PRIMARY KEY CHECK (site_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	operation_id	text NOT NULL REFERENCES evmgmt.operation,
	name			text NOT NULL CHECK (name <> ''),
	time_zone		text NOT NULL CONSTRAINT site_time_zone_known CHECK (evmgmt.is_time_zone(time_zone)),
	calendar_id		text NOT NULL REFERENCES evmgmt.calendar,
	division		text,
	seats			integer CHECK (seats >= 0)
);
CREATE INDEX ON evmgmt.site (operation_id);
ALTER TABLE evmgmt.site ADD UNIQUE (operation_id, site_id);
COMMENT ON TABLE evmgmt.site IS 'A contact-center site: its time zone and business calendar drive business-time targets';

CREATE TABLE evmgmt.queue (
	queue_id		text COLLATE "C" PRIMARY KEY CHECK (queue_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
	operation_id	text NOT NULL REFERENCES evmgmt.operation,
	name			text NOT NULL CHECK (name <> ''),
	channel			text NOT NULL DEFAULT 'voice' CHECK (channel IN ('voice', 'chat', 'email', 'messaging', 'back_office')),
	sl_target		double precision NOT NULL DEFAULT 0.8 CHECK (sl_target > 0 AND sl_target <= 1),
	sl_seconds		integer NOT NULL DEFAULT 20 CHECK (sl_seconds > 0)
);
CREATE INDEX ON evmgmt.queue (operation_id);
COMMENT ON TABLE evmgmt.queue IS 'A contact queue (skill) with its service-level goal, e.g. 80% answered within 20 seconds';

CREATE TABLE evmgmt.pool_info (
	pool			evmgmt.pool PRIMARY KEY,
	name			text NOT NULL,
	description		text NOT NULL,
	response_lead	text NOT NULL
);
COMMENT ON TABLE evmgmt.pool_info IS 'The three pools of the three-pool architecture and who leads the response in each (reference data)';
INSERT INTO evmgmt.pool_info VALUES
	('aa', 'Autonomous AI', 'AI agents handling contacts end to end; events are model regression, content drift, integration failure', 'engineering'),
	('collab', 'Human-AI collaborative', 'Humans supervising AI; events are monitoring overhead, switching cost, AI-handoff regression', 'ROC with supervisors'),
	('spec', 'Specialist humans', 'Specialist agents; events are staffing shortfall, AHT inflation, escalation surge', 'ROC with site WFM');
-- Severity policy and notification footprint, calibrated per operation.
--
-- The *_default tables hold the matrix from the practitioner texts.  They are
-- reference data owned by the extension (not dumped, not editable): a new
-- operation gets a copy of them, and that copy is what the operation calibrates.

CREATE TABLE evmgmt.severity_policy_default (
	severity			evmgmt.severity PRIMARY KEY,
	definition			text NOT NULL,
	sl_threshold		double precision CHECK (sl_threshold >= 0 AND sl_threshold <= 1),
	sustain_minutes		integer CHECK (sustain_minutes >= 0),
	response_target		interval NOT NULL CHECK (response_target > interval '0'),
	resolution_target	interval NOT NULL CHECK (resolution_target > interval '0'),
	business_time		boolean NOT NULL,
	status_cadence		interval CHECK (status_cadence > interval '0'),
	status_at_resolution boolean NOT NULL
);
COMMENT ON TABLE evmgmt.severity_policy_default IS 'The reference severity matrix copied into every new operation''s severity_policy (read-only reference data)';
INSERT INTO evmgmt.severity_policy_default VALUES
	('sev1', 'Total or near-total work outage; routing, network or facility failure', 0.0, 0, '5 minutes', '1 hour', false, '1 hour', true),
	('sev2', 'Significant service-level degradation; routing and network functional but service collapsed', 0.30, 60, '30 minutes', '4 hours', false, '12 hours', true),
	('sev3', 'Service slipping below the acceptable threshold; volume or staffing variance is the cause', 0.60, 30, '1 hour', '1 day', true, NULL, true),
	('sev4', 'No outage; standard request, change or enhancement', NULL, NULL, '2 days', '5 days', true, NULL, false);

CREATE TABLE evmgmt.severity_policy (
	operation_id		text NOT NULL REFERENCES evmgmt.operation ON DELETE CASCADE,
	severity			evmgmt.severity NOT NULL,
	definition			text NOT NULL,
	sl_threshold		double precision CONSTRAINT severity_policy_sl_threshold_fraction CHECK (sl_threshold >= 0 AND sl_threshold <= 1),
	sustain_minutes		integer CONSTRAINT severity_policy_sustain_not_negative CHECK (sustain_minutes >= 0),
	response_target		interval NOT NULL CONSTRAINT severity_policy_response_positive CHECK (response_target > interval '0'),
	resolution_target	interval NOT NULL CONSTRAINT severity_policy_resolution_positive CHECK (resolution_target > interval '0'),
	business_time		boolean NOT NULL,
	status_cadence		interval CONSTRAINT severity_policy_cadence_positive CHECK (status_cadence > interval '0'),
	status_at_resolution boolean NOT NULL,
	PRIMARY KEY (operation_id, severity),
	CONSTRAINT severity_policy_response_within_resolution CHECK (response_target <= resolution_target),
	-- a signal threshold needs a sustain time and the other way round
	CONSTRAINT severity_policy_threshold_with_sustain CHECK ((sl_threshold IS NULL) = (sustain_minutes IS NULL))
);
COMMENT ON TABLE evmgmt.severity_policy IS 'Calibrated severity matrix of an operation: service-level threshold and sustain time that trigger each tier, response and resolution targets (business time when business_time), status cadence';
COMMENT ON COLUMN evmgmt.severity_policy.sl_threshold IS 'Service level (0..1) below which the tier applies; 0 means outage (no contact answered in threshold); NULL: not signal-driven (sev4)';
COMMENT ON COLUMN evmgmt.severity_policy.sustain_minutes IS 'How long the service level must stay below sl_threshold before the tier applies';
COMMENT ON COLUMN evmgmt.severity_policy.business_time IS 'When true the targets count working time of the site calendar: 1 day means one business day, 4 hours means four working hours';
COMMENT ON COLUMN evmgmt.severity_policy.status_cadence IS 'Interval between status updates until the event resolves; NULL for none';

-- Audiences are the roles in the notification footprint (ROC management, site
-- WFM, ...); audience_group maps them to real contact groups per operation/site.
CREATE TABLE evmgmt.audience (
	audience		text PRIMARY KEY,
	name			text NOT NULL
);
COMMENT ON TABLE evmgmt.audience IS 'Recipient audiences of the notification footprint (reference data)';
INSERT INTO evmgmt.audience VALUES
	('roc', 'Resource Optimization Center'),
	('roc_management', 'ROC management'),
	('site_wfm', 'Site workforce management'),
	('site_ops_leadership', 'Site operations leadership'),
	('division_ops_leadership', 'Division operations leadership'),
	('it_leadership', 'IT leadership'),
	('ticketing', 'Ticketing distribution');

CREATE TABLE evmgmt.notification_footprint_default (
	severity		evmgmt.severity NOT NULL,
	audience		text NOT NULL REFERENCES evmgmt.audience,
	on_open			boolean NOT NULL,
	on_status		boolean NOT NULL,
	on_resolve		boolean NOT NULL,
	PRIMARY KEY (severity, audience)
);
COMMENT ON TABLE evmgmt.notification_footprint_default IS 'The reference notification footprint copied into every new operation (read-only reference data)';
INSERT INTO evmgmt.notification_footprint_default VALUES
	('sev1', 'roc_management', true, true, true),
	('sev1', 'site_wfm', true, true, true),
	('sev1', 'site_ops_leadership', true, true, true),
	('sev1', 'division_ops_leadership', true, true, true),
	('sev1', 'it_leadership', true, true, true),
	('sev2', 'roc', true, true, true),
	('sev2', 'site_wfm', true, true, true),
	('sev2', 'site_ops_leadership', true, true, true),
	('sev3', 'roc', false, false, true),
	('sev3', 'site_wfm', false, false, true),
	('sev4', 'ticketing', true, false, true);

CREATE TABLE evmgmt.notification_footprint (
	operation_id	text NOT NULL REFERENCES evmgmt.operation ON DELETE CASCADE,
	severity		evmgmt.severity NOT NULL,
	audience		text NOT NULL REFERENCES evmgmt.audience,
	on_open			boolean NOT NULL,
	on_status		boolean NOT NULL,
	on_resolve		boolean NOT NULL,
	PRIMARY KEY (operation_id, severity, audience),
	CONSTRAINT notification_footprint_notifies_something CHECK (on_open OR on_status OR on_resolve)
);
COMMENT ON TABLE evmgmt.notification_footprint IS 'Who is told about an event of each tier and when: at open, at every status update (severity_policy.status_cadence), at resolution';

-- What applies to an operation: its own calibrated row for a tier where it has
-- one, the reference row otherwise.  (Rows are not copied into an operation by a
-- trigger, because pg_restore would then collide with the restored copies.)
CREATE VIEW evmgmt.effective_severity_policy AS
SELECT o.operation_id, d.severity,
	   COALESCE(p.definition, d.definition) AS definition,
	   CASE WHEN p.operation_id IS NULL THEN d.sl_threshold ELSE p.sl_threshold END AS sl_threshold,
	   CASE WHEN p.operation_id IS NULL THEN d.sustain_minutes ELSE p.sustain_minutes END AS sustain_minutes,
	   COALESCE(p.response_target, d.response_target) AS response_target,
	   COALESCE(p.resolution_target, d.resolution_target) AS resolution_target,
	   COALESCE(p.business_time, d.business_time) AS business_time,
	   CASE WHEN p.operation_id IS NULL THEN d.status_cadence ELSE p.status_cadence END AS status_cadence,
	   COALESCE(p.status_at_resolution, d.status_at_resolution) AS status_at_resolution,
	   p.operation_id IS NOT NULL AS calibrated
FROM evmgmt.operation o
CROSS JOIN evmgmt.severity_policy_default d
LEFT JOIN evmgmt.severity_policy p ON p.operation_id = o.operation_id AND p.severity = d.severity;
COMMENT ON VIEW evmgmt.effective_severity_policy IS 'The severity matrix in force for each operation: its calibrated row per tier, or the reference row (calibrated = false)';

CREATE VIEW evmgmt.effective_notification_footprint AS
SELECT f.operation_id, f.severity, f.audience, f.on_open, f.on_status, f.on_resolve, true AS calibrated
FROM evmgmt.notification_footprint f
UNION ALL
SELECT o.operation_id, d.severity, d.audience, d.on_open, d.on_status, d.on_resolve, false
FROM evmgmt.operation o
CROSS JOIN evmgmt.notification_footprint_default d
WHERE NOT EXISTS (SELECT FROM evmgmt.notification_footprint f
				  WHERE f.operation_id = o.operation_id AND f.severity = d.severity);
COMMENT ON VIEW evmgmt.effective_notification_footprint IS 'The footprint in force: an operation''s own rows for a tier where it has any, the reference rows otherwise';

-- Copy the reference matrix and footprint into an operation so that it can be
-- calibrated row by row.  Existing calibrated rows are kept.
CREATE FUNCTION evmgmt.calibrate_from_defaults(operation_id text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO evmgmt.severity_policy
		SELECT calibrate_from_defaults.operation_id, d.severity, d.definition, d.sl_threshold, d.sustain_minutes,
			   d.response_target, d.resolution_target, d.business_time, d.status_cadence, d.status_at_resolution
		FROM evmgmt.severity_policy_default d
		ON CONFLICT DO NOTHING;
	INSERT INTO evmgmt.notification_footprint
		SELECT calibrate_from_defaults.operation_id, d.severity, d.audience, d.on_open, d.on_status, d.on_resolve
		FROM evmgmt.notification_footprint_default d
		WHERE NOT EXISTS (SELECT FROM evmgmt.notification_footprint f
						  WHERE f.operation_id = calibrate_from_defaults.operation_id AND f.severity = d.severity);
END;
COMMENT ON FUNCTION evmgmt.calibrate_from_defaults(text) IS 'Copies the reference severity matrix and footprint into an operation''s own tables, keeping rows it already has, so they can be edited';
-- Catalogues: event subtypes, detection sources, fishbone cause categories,
-- lever classes and the lever catalogue per pool and type.
--
-- Rows shipped with the extension carry builtin = true: they are not dumped
-- (CREATE EXTENSION recreates them) and cannot be changed or deleted.  Rows an
-- operation adds carry builtin = false and are dumped with the user data.

-- Refuse changes to the rows shipped with the extension.
CREATE FUNCTION evmgmt.protect_builtin() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF (TG_OP = 'INSERT' AND NEW.builtin) OR (TG_OP = 'UPDATE' AND (OLD.builtin OR NEW.builtin)) OR (TG_OP = 'DELETE' AND OLD.builtin) THEN
		RAISE EXCEPTION 'rows shipped with evmgmt cannot be changed'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Table %s holds built-in catalogue rows (builtin = true).', TG_TABLE_NAME),
				  HINT = 'Add a row of your own with builtin = false instead.';
	END IF;
	RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION evmgmt.protect_builtin() IS 'Trigger: refuses INSERT, UPDATE and DELETE of built-in catalogue rows';

CREATE TABLE evmgmt.event_subtype (
	subtype			text PRIMARY KEY CHECK (subtype ~ '^[a-z][a-z0-9_]{0,62}$'),
	event_type		evmgmt.event_type NOT NULL,
	name			text NOT NULL CHECK (name <> ''),
	typical_pools	evmgmt.pool[] NOT NULL DEFAULT '{}',
	builtin			boolean NOT NULL DEFAULT false,
	UNIQUE (subtype, event_type)
);
COMMENT ON TABLE evmgmt.event_subtype IS 'Subtypes of the five event types (staffing shortfall, volume spike, router failure, ...) and the pools they typically hit';
INSERT INTO evmgmt.event_subtype VALUES
	('staffing_shortfall', 'capacity', 'Staffing shortfall', '{spec,collab}', true),
	('attrition_spike', 'capacity', 'Attrition spike', '{spec}', true),
	('schedule_non_adherence', 'capacity', 'Schedule non-adherence', '{spec,collab}', true),
	('training_displacement', 'capacity', 'Training displacement', '{spec}', true),
	('monitoring_overhead_spike', 'capacity', 'Monitoring overhead spike', '{collab}', true),
	('volume_spike', 'demand', 'Volume spike', '{aa,collab,spec}', true),
	('mix_shift', 'demand', 'Mix shift', '{collab,spec}', true),
	('external_surge', 'demand', 'Surge from an external trigger', '{aa,collab,spec}', true),
	('router_failure', 'system', 'Contact-router failure', '{aa,collab,spec}', true),
	('wfm_platform_outage', 'system', 'WFM platform outage', '{collab,spec}', true),
	('telephony_network_incident', 'system', 'Telephony or networking incident', '{aa,collab,spec}', true),
	('model_regression', 'system', 'AI model regression', '{aa}', true),
	('content_drift', 'system', 'AI content drift', '{aa}', true),
	('integration_failure', 'system', 'AI integration failure', '{aa}', true),
	('aht_inflation', 'process', 'Handle-time inflation from a process change', '{spec,collab}', true),
	('escalation_rate_spike', 'process', 'Escalation-rate spike from a content gap', '{spec,collab}', true),
	('switching_cost_inflation', 'process', 'Switching cost inflation', '{collab}', true),
	('ai_handoff_regression', 'process', 'AI-handoff regression overloading supervisors', '{collab}', true),
	('outsourcer_degradation', 'third_party', 'Outsourcer degradation', '{spec}', true),
	('partner_channel_outage', 'third_party', 'Partner channel outage', '{aa,collab,spec}', true),
	('vendor_incident', 'third_party', 'Vendor incident', '{aa,collab,spec}', true);

CREATE TABLE evmgmt.detection_source (
	source			text PRIMARY KEY CHECK (source ~ '^[a-z][a-z0-9_]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	automated		boolean NOT NULL,
	builtin			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE evmgmt.detection_source IS 'How an event was detected: rule-driven or predictive detectors, an analyst on the floor, a site reporting upstream, ...';
INSERT INTO evmgmt.detection_source VALUES
	('rule', 'Rule-driven detection on interval data', true, true),
	('predictive', 'Predictive detection from forecast volume and scheduled staff', true, true),
	('roc_analyst', 'ROC analyst monitoring the floor', false, true),
	('site_report', 'Site reporting upstream', false, true),
	('monitoring', 'Infrastructure or AI monitoring alert', true, true),
	('vendor_notice', 'Vendor or partner notice', false, true);

CREATE TABLE evmgmt.cause_category (
	category		text PRIMARY KEY CHECK (category ~ '^[a-z][a-z0-9_]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	description		text NOT NULL,
	builtin			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE evmgmt.cause_category IS 'Bones of the real-time cause-and-effect fishbone used in fault diagnosis';
INSERT INTO evmgmt.cause_category VALUES
	('people', 'People', 'Staffing, attendance, adherence, skills, attrition', true),
	('process', 'Process', 'Procedures, handling rules, content, escalation paths', true),
	('technology', 'Technology', 'Routing, telephony, network, WFM platform, AI models and integrations', true),
	('demand', 'Demand', 'Arrival volume, contact mix, external triggers', true),
	('measurement', 'Measurement', 'Forecast error, data feeds, reporting defects', true),
	('environment', 'Environment', 'Facility, weather, power, local events', true),
	('third_party', 'Third party', 'Outsourcers, partners, vendors', true);

CREATE TABLE evmgmt.lever_class (
	lever_class		text PRIMARY KEY CHECK (lever_class ~ '^[a-z][a-z0-9_]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	builtin			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE evmgmt.lever_class IS 'Classes of response lever chosen during diagnosis (schedule adjustment, routing, IT escalation, ...)';
INSERT INTO evmgmt.lever_class VALUES
	('schedule_adjustment', 'Real-time schedule adjustment', true),
	('routing', 'Routing and demand shaping', true),
	('it_escalation', 'IT escalation', true),
	('vendor_escalation', 'Vendor escalation', true),
	('ai_engineering', 'AI engineering', true),
	('collaboration_tuning', 'Human-AI collaboration tuning', true);

CREATE TABLE evmgmt.lever (
	lever			text PRIMARY KEY CHECK (lever ~ '^[a-z][a-z0-9_]{0,62}$'),
	lever_class		text NOT NULL REFERENCES evmgmt.lever_class,
	name			text NOT NULL CHECK (name <> ''),
	builtin			boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE evmgmt.lever IS 'The lever catalogue: response actions a responder can activate';
INSERT INTO evmgmt.lever VALUES
	('overtime', 'schedule_adjustment', 'Offer or mandate overtime', true),
	('cancel_offline_activities', 'schedule_adjustment', 'Cancel offline activities (training, coaching, meetings)', true),
	('vto_cancel', 'schedule_adjustment', 'Cancel voluntary time off', true),
	('shift_move', 'schedule_adjustment', 'Move breaks, lunches or shifts', true),
	('cancel_outbound_campaigns', 'routing', 'Cancel outbound campaigns', true),
	('outage_message', 'routing', 'Outage message in queue', true),
	('overflow_channels', 'routing', 'Overflow to other channels or sites', true),
	('routing_change', 'routing', 'Routing change', true),
	('callback_offer', 'routing', 'Offer virtual hold / callback', true),
	('it_escalation', 'it_escalation', 'Escalate to IT', true),
	('vendor_escalation', 'vendor_escalation', 'Escalate to the vendor or outsourcer', true),
	('model_rollback', 'ai_engineering', 'Roll back the AI model', true),
	('model_retrain', 'ai_engineering', 'Retrain and redeploy the AI model', true),
	('deflect_to_humans', 'ai_engineering', 'Route AI-handled contacts to humans', true),
	('nstar_retuning', 'collaboration_tuning', 'Re-tune N* (AI sessions per supervisor)', true),
	('supervisor_capacity', 'collaboration_tuning', 'Add supervisor capacity', true),
	('content_prestaging', 'collaboration_tuning', 'Pre-stage content for supervisors', true);

CREATE TABLE evmgmt.lever_applicability (
	lever			text NOT NULL REFERENCES evmgmt.lever ON DELETE CASCADE,
	pool			evmgmt.pool NOT NULL,
	event_type		evmgmt.event_type NOT NULL,
	builtin			boolean NOT NULL DEFAULT false,
	PRIMARY KEY (lever, pool, event_type)
);
CREATE INDEX ON evmgmt.lever_applicability (pool, event_type);
COMMENT ON TABLE evmgmt.lever_applicability IS 'Which lever may be activated for which pool and event type: a response must use a lever allowed here';
INSERT INTO evmgmt.lever_applicability
SELECT l.lever, p.pool, t.event_type, true
FROM (VALUES
	('overtime', '{spec,collab}', '{capacity,demand,process,third_party,system}'),
	('cancel_offline_activities', '{spec,collab}', '{capacity,demand,process,third_party,system}'),
	('vto_cancel', '{spec,collab}', '{capacity,demand,third_party}'),
	('shift_move', '{spec,collab}', '{capacity,demand}'),
	('cancel_outbound_campaigns', '{spec,collab}', '{capacity,demand,system,third_party}'),
	('outage_message', '{aa,collab,spec}', '{system,demand,third_party}'),
	('overflow_channels', '{aa,collab,spec}', '{capacity,demand,system,third_party,process}'),
	('routing_change', '{aa,collab,spec}', '{capacity,demand,system,third_party,process}'),
	('callback_offer', '{collab,spec}', '{capacity,demand,system}'),
	('it_escalation', '{aa,collab,spec}', '{system}'),
	('vendor_escalation', '{aa,collab,spec}', '{third_party,system}'),
	('model_rollback', '{aa}', '{system,process}'),
	('model_retrain', '{aa}', '{system,process}'),
	('deflect_to_humans', '{aa}', '{system,process,demand}'),
	('nstar_retuning', '{collab}', '{capacity,process,demand}'),
	('supervisor_capacity', '{collab}', '{capacity,process,demand}'),
	('content_prestaging', '{collab}', '{process,capacity,demand}')
) AS l(lever, pools, types)
CROSS JOIN LATERAL pg_catalog.unnest(l.pools::evmgmt.pool[]) AS p(pool)
CROSS JOIN LATERAL pg_catalog.unnest(l.types::evmgmt.event_type[]) AS t(event_type);

CREATE TRIGGER protect_builtin BEFORE INSERT OR UPDATE OR DELETE ON evmgmt.event_subtype FOR EACH ROW EXECUTE FUNCTION evmgmt.protect_builtin();
CREATE TRIGGER protect_builtin BEFORE INSERT OR UPDATE OR DELETE ON evmgmt.detection_source FOR EACH ROW EXECUTE FUNCTION evmgmt.protect_builtin();
CREATE TRIGGER protect_builtin BEFORE INSERT OR UPDATE OR DELETE ON evmgmt.cause_category FOR EACH ROW EXECUTE FUNCTION evmgmt.protect_builtin();
CREATE TRIGGER protect_builtin BEFORE INSERT OR UPDATE OR DELETE ON evmgmt.lever_class FOR EACH ROW EXECUTE FUNCTION evmgmt.protect_builtin();
CREATE TRIGGER protect_builtin BEFORE INSERT OR UPDATE OR DELETE ON evmgmt.lever FOR EACH ROW EXECUTE FUNCTION evmgmt.protect_builtin();
CREATE TRIGGER protect_builtin BEFORE INSERT OR UPDATE OR DELETE ON evmgmt.lever_applicability FOR EACH ROW EXECUTE FUNCTION evmgmt.protect_builtin();
-- Events, their per-pool conditions, the timeline, responses and the
-- post-resolution analysis.
--
-- An event is one underlying condition at one site; each pool it hits has its
-- own pool_condition with its own severity and protocol state.  The floor-level
-- severity and state of an event are roll-ups computed from its conditions
-- (view evmgmt.event_rollup) and are never stored.

CREATE TABLE evmgmt.event (
	event_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	operation_id	text NOT NULL,
	site_id			text NOT NULL,
	queue_id		text REFERENCES evmgmt.queue,
	event_type		evmgmt.event_type NOT NULL,
	subtype			text,
	detection_source text NOT NULL REFERENCES evmgmt.detection_source,
	title			text NOT NULL CHECK (title <> ''),
	description		text,
	detected_at		timestamptz NOT NULL,
	opened_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	opened_by		text NOT NULL DEFAULT SESSION_USER,
	recurrence_of	bigint REFERENCES evmgmt.event DEFERRABLE INITIALLY DEFERRED,
	closed_at		timestamptz,
	closed_by		text,
	cancelled_at	timestamptz,
	cancelled_by	text,
	cancel_reason	text,
	FOREIGN KEY (operation_id, site_id) REFERENCES evmgmt.site (operation_id, site_id),
	-- a subtype must belong to the event's type
	FOREIGN KEY (subtype, event_type) REFERENCES evmgmt.event_subtype (subtype, event_type),
	CONSTRAINT event_detected_before_opened CHECK (detected_at <= opened_at),
	CONSTRAINT event_closed_with_actor CHECK ((closed_at IS NULL) = (closed_by IS NULL)),
	CONSTRAINT event_cancelled_with_actor_and_reason CHECK ((cancelled_at IS NULL) = (cancelled_by IS NULL) AND (cancelled_at IS NULL) = (cancel_reason IS NULL)),
	CONSTRAINT event_not_closed_and_cancelled CHECK (closed_at IS NULL OR cancelled_at IS NULL),
	CONSTRAINT event_not_its_own_predecessor CHECK (recurrence_of <> event_id)
);
CREATE INDEX ON evmgmt.event (site_id, event_type, opened_at);
CREATE INDEX ON evmgmt.event (opened_at);
CREATE INDEX ON evmgmt.event (recurrence_of) WHERE recurrence_of IS NOT NULL;
CREATE INDEX event_open_idx ON evmgmt.event (event_id) WHERE closed_at IS NULL AND cancelled_at IS NULL;
COMMENT ON TABLE evmgmt.event IS 'An event: an unplanned condition that crossed a threshold at a site; its pools are in pool_condition';
COMMENT ON COLUMN evmgmt.event.recurrence_of IS 'The earlier event of the same type, site/queue and cause this one recurs (within the recurrence window)';

CREATE TABLE evmgmt.pool_condition (
	event_id		bigint NOT NULL REFERENCES evmgmt.event ON DELETE CASCADE,
	pool			evmgmt.pool NOT NULL,
	severity		evmgmt.severity,
	state			evmgmt.event_state NOT NULL DEFAULT 'detected',
	opened_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	classified_at	timestamptz,
	response_due	timestamptz,
	resolution_due	timestamptz,
	cause_category	text REFERENCES evmgmt.cause_category,
	proximate_cause	text,
	lever_class		text REFERENCES evmgmt.lever_class,
	diagnosed_at	timestamptz,
	first_response_at timestamptz,
	resolved_at		timestamptz,
	resolution_note	text,
	PRIMARY KEY (event_id, pool),
	CONSTRAINT pool_condition_state_not_closed CHECK (state <> 'closed'),
	CONSTRAINT pool_condition_classified_has_severity CHECK (state IN ('detected', 'cancelled') OR severity IS NOT NULL),
	CONSTRAINT pool_condition_diagnosis_complete CHECK ((diagnosed_at IS NULL) OR (cause_category IS NOT NULL AND lever_class IS NOT NULL)),
	CONSTRAINT pool_condition_resolved_has_time CHECK ((state = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE INDEX ON evmgmt.pool_condition (state) WHERE state NOT IN ('resolved', 'cancelled');
COMMENT ON TABLE evmgmt.pool_condition IS 'How one event hits one pool: its own severity, protocol state, diagnosis and target due times';

CREATE TABLE evmgmt.event_timeline (
	entry_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	event_id		bigint NOT NULL REFERENCES evmgmt.event ON DELETE CASCADE,
	pool			evmgmt.pool,
	at				timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	actor			text NOT NULL DEFAULT SESSION_USER,
	action			text NOT NULL CHECK (action IN ('opened', 'classified', 'reclassified', 'diagnosed', 'responded',
													'resolved', 'analysis', 'closed', 'cancelled', 'reopened',
													'acknowledged', 'status_update', 'note')),
	from_state		evmgmt.event_state,
	to_state		evmgmt.event_state,
	from_severity	evmgmt.severity,
	to_severity		evmgmt.severity,
	lever			text REFERENCES evmgmt.lever,
	reason			text,
	details			jsonb NOT NULL DEFAULT '{}',
	CONSTRAINT event_timeline_reclassified_has_reason CHECK (action <> 'reclassified' OR reason IS NOT NULL),
	CONSTRAINT event_timeline_responded_has_lever CHECK (action <> 'responded' OR lever IS NOT NULL)
);
CREATE INDEX ON evmgmt.event_timeline (event_id, at);
COMMENT ON TABLE evmgmt.event_timeline IS 'Every step of every event: transitions, reclassifications with reason, diagnoses, response levers, with actor and time';

CREATE TABLE evmgmt.response_action (
	action_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	event_id		bigint NOT NULL,
	pool			evmgmt.pool NOT NULL,
	lever			text NOT NULL REFERENCES evmgmt.lever,
	activated_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	actor			text NOT NULL DEFAULT SESSION_USER,
	note			text,
	FOREIGN KEY (event_id, pool) REFERENCES evmgmt.pool_condition ON DELETE CASCADE
);
CREATE INDEX ON evmgmt.response_action (event_id, pool);
COMMENT ON TABLE evmgmt.response_action IS 'Response levers activated for a pool condition, with time and actor';

CREATE TABLE evmgmt.post_resolution_analysis (
	event_id		bigint PRIMARY KEY REFERENCES evmgmt.event ON DELETE CASCADE,
	root_cause		text NOT NULL CHECK (root_cause <> ''),
	contributing_factors text[] NOT NULL DEFAULT '{}',
	action_plan		text NOT NULL CHECK (action_plan <> ''),
	detector_gap	text,
	recorded_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	recorded_by		text NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE evmgmt.post_resolution_analysis IS 'Post-resolution analysis: root cause, contributing factors, action plan; mandatory before closing a sev1 or a recurring sev2';
COMMENT ON COLUMN evmgmt.post_resolution_analysis.detector_gap IS 'A detection blind spot the event revealed, to backlog as a detection investment';

CREATE TABLE evmgmt.action_item (
	item_id			bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	event_id		bigint NOT NULL REFERENCES evmgmt.post_resolution_analysis ON DELETE CASCADE,
	description		text NOT NULL CHECK (description <> ''),
	owner			text NOT NULL CHECK (owner <> ''),
	due_date		date NOT NULL,
	done_at			timestamptz
);
CREATE INDEX ON evmgmt.action_item (event_id);
CREATE INDEX ON evmgmt.action_item (due_date) WHERE done_at IS NULL;
COMMENT ON TABLE evmgmt.action_item IS 'Action items of a post-resolution analysis, each with an owner and a due date';

CREATE TABLE evmgmt.objective_impact (
	event_id		bigint NOT NULL REFERENCES evmgmt.post_resolution_analysis ON DELETE CASCADE,
	objective		evmgmt.objective NOT NULL,
	direction		text NOT NULL CHECK (direction IN ('improved', 'neutral', 'degraded')),
	magnitude		double precision CHECK (magnitude = magnitude AND magnitude NOT IN ('Infinity', '-Infinity')),
	unit			text,
	note			text,
	PRIMARY KEY (event_id, objective),
	CONSTRAINT objective_impact_magnitude_has_unit CHECK (magnitude IS NULL OR unit IS NOT NULL)
);
COMMENT ON TABLE evmgmt.objective_impact IS 'Per-objective impact of an event and its response (service level, cost, customer experience, agent experience, business value)';

-- The floor-level view of an event: derived from its pool conditions, so it can
-- never disagree with them.  Floor severity is the most severe live condition;
-- floor state is the least advanced live condition (an event is only as far
-- along as its slowest pool), closed or cancelled when the event is.
CREATE VIEW evmgmt.event_rollup AS
SELECT e.event_id, e.operation_id, e.site_id, e.queue_id, e.event_type, e.subtype, e.title,
	   e.detected_at, e.opened_at, e.closed_at, e.cancelled_at, e.recurrence_of,
	   c.floor_severity,
	   CASE
		   WHEN e.cancelled_at IS NOT NULL THEN 'cancelled'::evmgmt.event_state
		   WHEN e.closed_at IS NOT NULL THEN 'closed'::evmgmt.event_state
		   ELSE COALESCE(c.live_state, 'cancelled'::evmgmt.event_state)
	   END AS state,
	   c.pools, c.severities
FROM evmgmt.event e
CROSS JOIN LATERAL (
	SELECT pg_catalog.min(pc.severity) FILTER (WHERE pc.state <> 'cancelled') AS floor_severity,
		   pg_catalog.min(pc.state) FILTER (WHERE pc.state <> 'cancelled') AS live_state,
		   pg_catalog.array_agg(pc.pool ORDER BY pc.pool) AS pools,
		   pg_catalog.jsonb_object_agg(pc.pool, pc.severity) AS severities
	FROM evmgmt.pool_condition pc
	WHERE pc.event_id = e.event_id
) c;
COMMENT ON VIEW evmgmt.event_rollup IS 'Floor-level roll-up of each event: most severe live pool severity and least advanced live pool state (never stored)';
-- The event lifecycle: business time, target due times, the transition table
-- (in C, src/state_machine.c), the guard on event tables, the lifecycle
-- functions, the post-resolution analysis check and the SLA clocks.
-- Reference: docs/lifecycle.md.

-- sev4 is never signal-driven (no outage; a request, change or enhancement).
ALTER TABLE evmgmt.severity_policy ADD CONSTRAINT severity_policy_sev4_not_signal_driven
	CHECK (severity <> 'sev4' OR sl_threshold IS NULL);

-- Recurrence look-up (state_machine.c, LinkRecurrence): earlier events of a
-- site and type closed within the window, or still open.
CREATE INDEX event_recurrence_idx ON evmgmt.event (site_id, event_type, closed_at);

------------------------------------------------------------------------------
-- Business time
------------------------------------------------------------------------------

-- The working windows of one local day of a calendar, as absolute times: the
-- day's calendar_hours rows placed in the site's time zone (so a DST change
-- is honoured), none on a holiday.
CREATE FUNCTION evmgmt.business_windows(calendar_id text, time_zone text, day date)
RETURNS TABLE (window_start timestamptz, window_end timestamptz)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- PL/pgSQL rather than SQL so that the plan is cached for the session:
	-- add_business_time calls this once per day it walks
	RETURN QUERY
	SELECT (business_windows.day + h.opens) AT TIME ZONE business_windows.time_zone,
		   (business_windows.day + h.closes) AT TIME ZONE business_windows.time_zone
	FROM evmgmt.calendar_hours h
	WHERE h.calendar_id = business_windows.calendar_id
	  AND h.isodow = pg_catalog.date_part('isodow', business_windows.day)
	  AND NOT EXISTS (SELECT FROM evmgmt.calendar_holiday d
					  WHERE d.calendar_id = business_windows.calendar_id AND d.day = business_windows.day)
	ORDER BY h.opens;
END
$$;
COMMENT ON FUNCTION evmgmt.business_windows(text, text, date) IS 'Working windows of a local day of a calendar in a time zone, as timestamptz (none on holidays)';

-- Add business time: the days part of amount counts business days, the rest
-- counts working time.  See docs/lifecycle.md, "Business time".
CREATE FUNCTION evmgmt.add_business_time(calendar_id text, time_zone text, start timestamptz, amount interval)
RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_months integer := pg_catalog.date_part('year', amount)::integer * 12 + pg_catalog.date_part('month', amount)::integer;
	v_days integer := pg_catalog.date_part('day', amount)::integer;
	v_secs numeric := pg_catalog.date_part('epoch', amount - pg_catalog.make_interval(months => v_months, days => v_days))::numeric;
	v_day date;
	v_cur timestamptz;
	v_pos numeric;
	v_left numeric;
	v_len numeric;
	v_n integer;
	v_guard integer := 0;		-- days walked since the last working time seen
	w record;
BEGIN
	IF v_months <> 0 THEN
		RAISE EXCEPTION 'business time cannot be counted in months or years'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The amount given was %s.', amount),
				  HINT = 'Give business days as days and working time as hours and minutes.';
	END IF;
	IF NOT pg_catalog.isfinite(start) THEN
		RAISE EXCEPTION 'business time cannot start at %', start
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF v_days > 1000 OR v_secs > 1000 * 86400 THEN
		RAISE EXCEPTION 'business time amount % is too large', amount
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'At most 1000 business days and 1000 days of working time can be added.';
	END IF;
	IF v_days < 0 OR v_secs < 0 THEN
		RAISE EXCEPTION 'business time must not be negative'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The amount given was %s.', amount);
	END IF;
	IF NOT EXISTS (SELECT FROM evmgmt.calendar c WHERE c.calendar_id = add_business_time.calendar_id) THEN
		RAISE EXCEPTION 'calendar "%" does not exist', calendar_id
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM evmgmt.calendar_hours h WHERE h.calendar_id = add_business_time.calendar_id) THEN
		RAISE EXCEPTION 'calendar "%" has no working hours', calendar_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Add its working windows to evmgmt.calendar_hours.';
	END IF;
	IF v_days = 0 AND v_secs = 0 THEN
		RETURN start;
	END IF;

	-- 1. the first working instant at or after start
	v_day := (start AT TIME ZONE time_zone)::date;
	LOOP
		SELECT pg_catalog.max(GREATEST(b.window_start, start)) INTO v_cur
		FROM (SELECT * FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b
			  WHERE b.window_end > start ORDER BY b.window_start LIMIT 1) b;
		EXIT WHEN v_cur IS NOT NULL;
		v_day := v_day + 1;
		v_guard := v_guard + 1;
		IF v_guard > 3660 THEN
			RAISE EXCEPTION 'calendar "%" has no working time within ten years of %', calendar_id, start
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;

	-- 2. business days: the same working-time position on the n-th next
	-- business day; a position of zero (at an opening) is the close of the
	-- business day before instead, which is the same business instant
	IF v_days > 0 THEN
		SELECT COALESCE(pg_catalog.sum(pg_catalog.date_part('epoch', LEAST(b.window_end, v_cur) - b.window_start)::numeric), 0)
		INTO v_pos
		FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b
		WHERE b.window_start < v_cur;
		v_n := CASE WHEN v_pos = 0 THEN v_days - 1 ELSE v_days END;
		WHILE v_n > 0 LOOP
			v_day := v_day + 1;
			IF EXISTS (SELECT FROM evmgmt.business_windows(calendar_id, time_zone, v_day)) THEN
				v_n := v_n - 1;
				v_guard := 0;
			END IF;
			v_guard := v_guard + 1;
			IF v_guard > 3660 THEN
				RAISE EXCEPTION 'calendar "%" has no working time within ten years of %', calendar_id, start
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END LOOP;
		v_cur := NULL;
		IF v_pos > 0 THEN
			v_left := v_pos;
			FOR w IN SELECT * FROM evmgmt.business_windows(calendar_id, time_zone, v_day) LOOP
				v_len := pg_catalog.date_part('epoch', w.window_end - w.window_start)::numeric;
				IF v_left <= v_len THEN
					v_cur := w.window_start + pg_catalog.make_interval(secs => v_left::double precision);
					EXIT;
				END IF;
				v_left := v_left - v_len;
			END LOOP;
		END IF;
		IF v_cur IS NULL THEN
			-- position zero, or a shorter day than the start day: its close
			SELECT pg_catalog.max(b.window_end) INTO v_cur
			FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b;
		END IF;
	END IF;

	-- 3. working time: consume the windows from v_cur on
	IF v_secs > 0 THEN
		v_left := v_secs;
		LOOP
			FOR w IN SELECT * FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b
					 WHERE b.window_end > v_cur LOOP
				v_len := pg_catalog.date_part('epoch', w.window_end - GREATEST(w.window_start, v_cur))::numeric;
				IF v_left <= v_len THEN
					RETURN GREATEST(w.window_start, v_cur) + pg_catalog.make_interval(secs => v_left::double precision);
				END IF;
				v_left := v_left - v_len;
				v_guard := 0;
			END LOOP;
			v_day := v_day + 1;
			v_guard := v_guard + 1;
			IF v_guard > 3660 THEN
				RAISE EXCEPTION 'calendar "%" has no working time within ten years of %', calendar_id, start
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END LOOP;
	END IF;
	RETURN v_cur;
END
$$;
COMMENT ON FUNCTION evmgmt.add_business_time(text, text, timestamptz, interval) IS 'start + amount in business time of a calendar in a time zone: days count business days (same working-time position), hours and minutes count working time';

-- A target due time: business time when the tier says so; otherwise days
-- are calendar days in the site's time zone and hours and minutes elapsed time.
CREATE FUNCTION evmgmt.add_target_time(calendar_id text, time_zone text, start timestamptz, amount interval, business_time boolean)
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN business_time THEN evmgmt.add_business_time(calendar_id, time_zone, start, amount)
	WHEN pg_catalog.date_part('year', amount) = 0 AND pg_catalog.date_part('month', amount) = 0
		 AND pg_catalog.date_part('day', amount) = 0 THEN start + amount
	ELSE (((start AT TIME ZONE time_zone) + pg_catalog.justify_hours(pg_catalog.date_trunc('day', amount))) AT TIME ZONE time_zone)
		 + (amount - pg_catalog.date_trunc('day', amount))
END;
COMMENT ON FUNCTION evmgmt.add_target_time(text, text, timestamptz, interval, boolean) IS 'start + a policy target: business time when business_time, else calendar days in the time zone plus elapsed hours and minutes';

-- Response and resolution due times of a tier for an event at a site whose
-- clock starts at start, from the operation's effective severity policy.
CREATE FUNCTION evmgmt.target_due(site_id text, severity evmgmt.severity, start timestamptz,
								  OUT response_due timestamptz, OUT resolution_due timestamptz)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT evmgmt.add_target_time(s.calendar_id, s.time_zone, target_due.start, p.response_target, p.business_time),
		   evmgmt.add_target_time(s.calendar_id, s.time_zone, target_due.start, p.resolution_target, p.business_time)
	FROM evmgmt.site s
	JOIN evmgmt.effective_severity_policy p ON p.operation_id = s.operation_id AND p.severity = target_due.severity
	WHERE s.site_id = target_due.site_id;
END;
COMMENT ON FUNCTION evmgmt.target_due(text, evmgmt.severity, timestamptz) IS 'Response and resolution due times of a severity tier at a site for a clock started at start (effective policy, site calendar and time zone)';

------------------------------------------------------------------------------
-- The transition table and the guard
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.transition_table(OUT from_state text, OUT action text, OUT to_state text, OUT via text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'evmgmt_transition_table'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.transition_table() IS 'The legal transitions of a pool condition as compiled into the C state machine';

CREATE VIEW evmgmt.lifecycle_transitions AS
SELECT p.pool, t.from_state::evmgmt.event_state AS from_state, t.action,
	   t.to_state::evmgmt.event_state AS to_state, t.via
FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::evmgmt.pool)) AS p(pool)
CROSS JOIN evmgmt.transition_table() AS t;
COMMENT ON VIEW evmgmt.lifecycle_transitions IS 'Every legal move of a pool condition per pool: from state, action, to state and the function that performs it';

CREATE FUNCTION evmgmt.refuse_direct_change() RETURNS trigger
AS 'MODULE_PATHNAME', 'evmgmt_refuse_direct_change'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.refuse_direct_change() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE of event tables except by the lifecycle functions (superusers included); INSERTs pass so that pg_restore works';

DO $guard$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['event', 'pool_condition', 'event_timeline', 'response_action',
							 'post_resolution_analysis', 'action_item', 'objective_impact']
	LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER refuse_direct_change BEFORE UPDATE OR DELETE ON evmgmt.%I FOR EACH ROW EXECUTE FUNCTION evmgmt.refuse_direct_change()', t);
		EXECUTE pg_catalog.format('CREATE TRIGGER refuse_direct_truncate BEFORE TRUNCATE ON evmgmt.%I FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.refuse_direct_change()', t);
	END LOOP;
END
$guard$;

------------------------------------------------------------------------------
-- Post-resolution analysis
------------------------------------------------------------------------------

-- What a complete analysis still lacks: the analysis itself (root cause and
-- action plan), at least one action item, an impact row per objective.
CREATE FUNCTION evmgmt.analysis_gaps(event_id bigint) RETURNS text[]
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT COALESCE(pg_catalog.array_agg(g.gap ORDER BY g.k), '{}')
	FROM (
		SELECT 0 AS k, 'root cause and action plan' AS gap
		WHERE NOT EXISTS (SELECT FROM evmgmt.post_resolution_analysis a WHERE a.event_id = analysis_gaps.event_id)
		UNION ALL
		SELECT 1, 'at least one action item'
		WHERE NOT EXISTS (SELECT FROM evmgmt.action_item i WHERE i.event_id = analysis_gaps.event_id)
		UNION ALL
		SELECT 1 + u.n, 'impact on ' || u.o::text
		FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::evmgmt.objective)) WITH ORDINALITY AS u(o, n)
		WHERE NOT EXISTS (SELECT FROM evmgmt.objective_impact i
						  WHERE i.event_id = analysis_gaps.event_id AND i.objective = u.o)
	) g;
END;
COMMENT ON FUNCTION evmgmt.analysis_gaps(bigint) IS 'What the post-resolution analysis of an event lacks to be complete (root cause and action plan, an action item, an impact per objective); empty when complete';

CREATE FUNCTION evmgmt.analysis_complete(event_id bigint) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.cardinality(evmgmt.analysis_gaps(event_id)) = 0;
COMMENT ON FUNCTION evmgmt.analysis_complete(bigint) IS 'True when the event has a complete post-resolution analysis (required to close a sev1 or a recurring sev2)';

------------------------------------------------------------------------------
-- Lifecycle functions (C, SECURITY DEFINER; each writes event_timeline)
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.open_event(event_type evmgmt.event_type, site_id text, pools evmgmt.pool[],
								  detection_source text, title text, detected_at timestamptz DEFAULT NULL,
								  queue_id text DEFAULT NULL, subtype text DEFAULT NULL, description text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_open_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.open_event(evmgmt.event_type, text, evmgmt.pool[], text, text, timestamptz, text, text, text) IS 'Opens an event with one detected condition per pool; returns its event_id';

CREATE FUNCTION evmgmt.add_pool(event_id bigint, pool evmgmt.pool, note text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_add_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.add_pool(bigint, evmgmt.pool, text) IS 'Adds a detected condition for one more pool to an open event';

CREATE FUNCTION evmgmt.classify_pool(event_id bigint, pool evmgmt.pool, severity evmgmt.severity)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_classify_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.classify_pool(bigint, evmgmt.pool, evmgmt.severity) IS 'Classifies one pool condition (detected -> classified) and sets its response and resolution due times';

CREATE FUNCTION evmgmt.reclassify_pool(event_id bigint, pool evmgmt.pool, severity evmgmt.severity, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_reclassify_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reclassify_pool(bigint, evmgmt.pool, evmgmt.severity, text) IS 'Changes the severity of one pool condition with a reason (audited for severity drift); due times recomputed; other pools untouched';

CREATE FUNCTION evmgmt.diagnose_pool(event_id bigint, pool evmgmt.pool, cause_category text, lever_class text,
									 proximate_cause text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_diagnose_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.diagnose_pool(bigint, evmgmt.pool, text, text, text) IS 'Records the diagnosis of one pool condition (fishbone cause category, lever class, proximate cause) and links a recurrence';

CREATE FUNCTION evmgmt.log_response(event_id bigint, pool evmgmt.pool, lever text, note text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_log_response'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.log_response(bigint, evmgmt.pool, text, text) IS 'Logs a response lever (allowed for the pool and event type) for one pool condition; returns the response_action id';

CREATE FUNCTION evmgmt.resolve_pool(event_id bigint, pool evmgmt.pool, note text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_resolve_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.resolve_pool(bigint, evmgmt.pool, text) IS 'Resolves one responding pool condition';

CREATE FUNCTION evmgmt.resolve_event(event_id bigint, note text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_resolve_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.resolve_event(bigint, text) IS 'Resolves every unresolved pool condition of an event at once (each must be responding); returns the roll-up state';

CREATE FUNCTION evmgmt.cancel_pool(event_id bigint, pool evmgmt.pool, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_cancel_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.cancel_pool(bigint, evmgmt.pool, text) IS 'Cancels one pool condition as a false positive (before any response)';

CREATE FUNCTION evmgmt.cancel_event(event_id bigint, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_cancel_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.cancel_event(bigint, text) IS 'Cancels a whole event as a false positive (no pool may have had a response)';

CREATE FUNCTION evmgmt.reopen_pool(event_id bigint, pool evmgmt.pool, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_reopen_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reopen_pool(bigint, evmgmt.pool, text) IS 'Reopens a resolved pool condition of an open event (back to diagnosed) within evmgmt.recurrence_window';

CREATE FUNCTION evmgmt.reopen_event(event_id bigint, reason text, pools evmgmt.pool[] DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_reopen_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reopen_event(bigint, text, evmgmt.pool[]) IS 'Reopens a closed event within evmgmt.recurrence_window; the given resolved pools (all when NULL) go back to diagnosed';

CREATE FUNCTION evmgmt.record_analysis(event_id bigint, root_cause text, action_plan text,
									   contributing_factors text[] DEFAULT '{}', detector_gap text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_record_analysis'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.record_analysis(bigint, text, text, text[], text) IS 'Records or replaces the post-resolution analysis of an event (root cause, action plan, contributing factors, detector gap)';

CREATE FUNCTION evmgmt.add_action_item(event_id bigint, description text, owner text, due_date date)
RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_add_action_item'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.add_action_item(bigint, text, text, date) IS 'Adds an action item (owner, due date) to the post-resolution analysis; returns its item_id';

CREATE FUNCTION evmgmt.complete_action_item(item_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_complete_action_item'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.complete_action_item(bigint) IS 'Marks an action item done';

CREATE FUNCTION evmgmt.record_objective_impact(event_id bigint, objective evmgmt.objective, direction text,
											   magnitude double precision DEFAULT NULL, unit text DEFAULT NULL,
											   note text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_record_objective_impact'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.record_objective_impact(bigint, evmgmt.objective, text, double precision, text, text) IS 'Records or replaces the impact of an event on one objective (improved, neutral, degraded)';

CREATE FUNCTION evmgmt.close_event(event_id bigint)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_close_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.close_event(bigint) IS 'Closes an event whose pools are all resolved or cancelled; a sev1 or a recurring sev2 needs a complete post-resolution analysis';

DO $grants$
DECLARE
	f text;
BEGIN
	FOREACH f IN ARRAY ARRAY[
		'evmgmt.open_event(evmgmt.event_type, text, evmgmt.pool[], text, text, timestamptz, text, text, text)',
		'evmgmt.add_pool(bigint, evmgmt.pool, text)',
		'evmgmt.classify_pool(bigint, evmgmt.pool, evmgmt.severity)',
		'evmgmt.reclassify_pool(bigint, evmgmt.pool, evmgmt.severity, text)',
		'evmgmt.diagnose_pool(bigint, evmgmt.pool, text, text, text)',
		'evmgmt.log_response(bigint, evmgmt.pool, text, text)',
		'evmgmt.resolve_pool(bigint, evmgmt.pool, text)',
		'evmgmt.resolve_event(bigint, text)',
		'evmgmt.cancel_pool(bigint, evmgmt.pool, text)',
		'evmgmt.cancel_event(bigint, text)',
		'evmgmt.reopen_pool(bigint, evmgmt.pool, text)',
		'evmgmt.reopen_event(bigint, text, evmgmt.pool[])',
		'evmgmt.record_analysis(bigint, text, text, text[], text)',
		'evmgmt.add_action_item(bigint, text, text, date)',
		'evmgmt.complete_action_item(bigint)',
		'evmgmt.record_objective_impact(bigint, evmgmt.objective, text, double precision, text, text)',
		'evmgmt.close_event(bigint)']
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO evmgmt_responder, evmgmt_admin', f);
	END LOOP;
END
$grants$;
REVOKE ALL ON FUNCTION evmgmt.refuse_direct_change() FROM PUBLIC;

------------------------------------------------------------------------------
-- Clocks
------------------------------------------------------------------------------

-- Response and resolution clocks of every live pool condition of every open
-- event, as seen at "at".  Response is met by the first logged lever.
CREATE FUNCTION evmgmt.event_clocks(at timestamptz)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, severity evmgmt.severity, state evmgmt.event_state,
			   site_id text, clock_start timestamptz,
			   response_due timestamptz, first_response_at timestamptz, response_time_left interval,
			   response_overdue_by interval, response_breached boolean,
			   resolution_due timestamptz, resolved_at timestamptz, resolution_time_left interval,
			   resolution_overdue_by interval, resolution_breached boolean)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT e.event_id, pc.pool, pc.severity, pc.state, e.site_id, e.detected_at,
		   pc.response_due, pc.first_response_at,
		   CASE WHEN pc.first_response_at IS NULL AND event_clocks.at < pc.response_due
				THEN pc.response_due - event_clocks.at END,
		   CASE WHEN COALESCE(pc.first_response_at, event_clocks.at) > pc.response_due
				THEN COALESCE(pc.first_response_at, event_clocks.at) - pc.response_due END,
		   COALESCE(pc.first_response_at, event_clocks.at) > pc.response_due,
		   pc.resolution_due, pc.resolved_at,
		   CASE WHEN pc.resolved_at IS NULL AND event_clocks.at < pc.resolution_due
				THEN pc.resolution_due - event_clocks.at END,
		   CASE WHEN COALESCE(pc.resolved_at, event_clocks.at) > pc.resolution_due
				THEN COALESCE(pc.resolved_at, event_clocks.at) - pc.resolution_due END,
		   COALESCE(pc.resolved_at, event_clocks.at) > pc.resolution_due
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.closed_at IS NULL AND e.cancelled_at IS NULL AND pc.state <> 'cancelled'
	ORDER BY e.event_id, pc.pool;
END;
COMMENT ON FUNCTION evmgmt.event_clocks(timestamptz) IS 'Response and resolution clocks of every live pool condition of open events as seen at a given time: due, time left, overdue by, breached';

CREATE VIEW evmgmt.open_event_clocks AS
SELECT * FROM evmgmt.event_clocks(pg_catalog.now());
COMMENT ON VIEW evmgmt.open_event_clocks IS 'Response and resolution clocks of every live pool condition of open events, now: due, time left, overdue by, breached';
-- People and how to reach them: contacts and their channels, groups, on-duty
-- rotas, and the audience mapping of the notification footprint.

CREATE TABLE evmgmt.contact (
	contact_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	name			text NOT NULL CHECK (name <> ''),
	role_name		text NOT NULL DEFAULT SESSION_USER,
	time_zone		text NOT NULL DEFAULT 'UTC' CONSTRAINT contact_time_zone_known CHECK (evmgmt.is_time_zone(time_zone)),
	active			boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE evmgmt.contact IS 'A person who can be notified and can acknowledge escalations';
COMMENT ON COLUMN evmgmt.contact.role_name IS 'The database role this person uses, so that acknowledgments can be checked against session_user';

CREATE TABLE evmgmt.contact_channel (
	contact_id		bigint NOT NULL REFERENCES evmgmt.contact ON DELETE CASCADE,
	channel			evmgmt.channel NOT NULL,
	address			text NOT NULL,
	priority		smallint NOT NULL DEFAULT 1 CHECK (priority >= 1),
	PRIMARY KEY (contact_id, channel, address),
	CONSTRAINT contact_channel_not_webhook CHECK (channel <> 'webhook'),
	CONSTRAINT contact_channel_phone_e164 CHECK (channel NOT IN ('sms', 'voice') OR address ~ '^\+[1-9][0-9]{6,14}$'),
	CONSTRAINT contact_channel_email_address CHECK (channel <> 'email' OR address ~ '^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$'),
	CONSTRAINT contact_channel_push_topic CHECK (channel <> 'push' OR address ~ '^[A-Za-z0-9_-]{1,64}$')
);
COMMENT ON TABLE evmgmt.contact_channel IS 'How to reach a contact: E.164 phone for sms and voice, e-mail address, push topic (contact data: masked for readers)';

CREATE VIEW evmgmt.contact_channel_masked AS
SELECT contact_id, channel, evmgmt.mask_address(address) AS address, priority
FROM evmgmt.contact_channel;
COMMENT ON VIEW evmgmt.contact_channel_masked IS 'contact_channel with phone numbers and e-mail addresses masked, for readers';

CREATE TABLE evmgmt.contact_group (
	group_id		text PRIMARY KEY CHECK (group_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> '')
);
COMMENT ON TABLE evmgmt.contact_group IS 'A named group of contacts (e.g. the ROC management team)';

CREATE TABLE evmgmt.group_member (
	group_id		text NOT NULL REFERENCES evmgmt.contact_group ON DELETE CASCADE,
	contact_id		bigint NOT NULL REFERENCES evmgmt.contact ON DELETE CASCADE,
	PRIMARY KEY (group_id, contact_id)
);
COMMENT ON TABLE evmgmt.group_member IS 'Membership of contacts in groups';

CREATE TABLE evmgmt.rota (
	rota_id			text PRIMARY KEY CHECK (rota_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	time_zone		text NOT NULL DEFAULT 'UTC' CONSTRAINT rota_time_zone_known CHECK (evmgmt.is_time_zone(time_zone))
);
COMMENT ON TABLE evmgmt.rota IS 'An on-duty rota: whoever has a shift covering a moment is on duty then';

CREATE TABLE evmgmt.rota_shift (
	shift_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	rota_id			text NOT NULL REFERENCES evmgmt.rota ON DELETE CASCADE,
	contact_id		bigint NOT NULL REFERENCES evmgmt.contact ON DELETE CASCADE,
	during			tstzrange NOT NULL CONSTRAINT rota_shift_bounded CHECK (NOT pg_catalog.isempty(during) AND NOT pg_catalog.lower_inf(during) AND NOT pg_catalog.upper_inf(during))
);
CREATE INDEX ON evmgmt.rota_shift USING gist (during);
CREATE INDEX ON evmgmt.rota_shift (rota_id);
COMMENT ON TABLE evmgmt.rota_shift IS 'On-duty shifts of a rota; overlapping shifts mean several people are on duty at once';

CREATE TABLE evmgmt.audience_group (
	operation_id	text NOT NULL REFERENCES evmgmt.operation ON DELETE CASCADE,
	site_id			text REFERENCES evmgmt.site ON DELETE CASCADE,
	audience		text NOT NULL REFERENCES evmgmt.audience,
	group_id		text NOT NULL REFERENCES evmgmt.contact_group ON DELETE CASCADE,
	channels		evmgmt.channel[] NOT NULL DEFAULT '{email}'
		CONSTRAINT audience_group_person_channels CHECK (pg_catalog.cardinality(channels) >= 1 AND NOT 'webhook' = ANY (channels)),
	UNIQUE NULLS NOT DISTINCT (operation_id, site_id, audience, group_id)
);
COMMENT ON TABLE evmgmt.audience_group IS 'Which contact group is an audience of the footprint, for an operation (site_id NULL) or for one site; site rows of an audience replace the operation-wide rows';
COMMENT ON COLUMN evmgmt.audience_group.channels IS 'Channels on which the group''s members receive footprint messages (opened, status updates, resolution)';
-- Escalation plans and their running instances, channel providers, the
-- notification outbox and its delivery attempts.  The background workers that
-- run escalations and dispatch the outbox read and write these tables.

CREATE TABLE evmgmt.channel_provider (
	provider_id		text PRIMARY KEY CHECK (provider_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	channel			evmgmt.channel NOT NULL,
	kind			text NOT NULL CHECK (kind IN ('webhook', 'smtp', 'twilio', 'ntfy')),
	endpoint		text NOT NULL,
	username		text,
	from_address	text,
	settings		jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(settings) = 'object'),
	active			boolean NOT NULL DEFAULT true,
	CONSTRAINT channel_provider_kind_fits_channel CHECK (
		(kind = 'webhook' AND channel = 'webhook') OR (kind = 'smtp' AND channel = 'email') OR
		(kind = 'twilio' AND channel IN ('sms', 'voice')) OR (kind = 'ntfy' AND channel = 'push')),
	CONSTRAINT channel_provider_endpoint_url CHECK (
		CASE kind WHEN 'smtp' THEN endpoint ~ '^smtps?://[^/\s]+(:[0-9]+)?/?$' ELSE endpoint ~ '^https?://[^/\s]+' END),
	CONSTRAINT channel_provider_email_has_sender CHECK (kind <> 'smtp' OR from_address IS NOT NULL)
);
CREATE UNIQUE INDEX channel_provider_one_active_per_channel ON evmgmt.channel_provider (channel)
	WHERE active AND channel <> 'webhook';
COMMENT ON TABLE evmgmt.channel_provider IS 'Where a channel is delivered: webhook endpoints, the SMTP relay, the Twilio-compatible SMS/voice API, the ntfy-compatible push API (at most one active provider per person channel)';

CREATE TABLE evmgmt.provider_secret (
	provider_id		text PRIMARY KEY REFERENCES evmgmt.channel_provider ON DELETE CASCADE,
	secret			text NOT NULL CHECK (secret <> '')
);
COMMENT ON TABLE evmgmt.provider_secret IS 'Credentials of channel providers (webhook signing secret, SMTP or API password); readable by evmgmt_admin only';

CREATE TABLE evmgmt.escalation_plan (
	plan_id			text PRIMARY KEY CHECK (plan_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	name			text NOT NULL CHECK (name <> ''),
	operation_id	text REFERENCES evmgmt.operation ON DELETE CASCADE,
	severities		evmgmt.severity[],
	event_types		evmgmt.event_type[],
	site_ids		text[],
	pools			evmgmt.pool[],
	priority		integer NOT NULL DEFAULT 100,
	start_reasons	text[] CONSTRAINT escalation_plan_start_reasons_known CHECK (start_reasons <@ ARRAY['opened', 'upgraded', 'response_breach', 'resolution_breach', 'status_overdue', 'manual']),
	repeat_from_step integer CHECK (repeat_from_step >= 1),
	require_all_ack	boolean NOT NULL DEFAULT false,
	active			boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE evmgmt.escalation_plan IS 'An escalation plan and the events it applies to (NULL criteria match anything); the matching active plan with the lowest priority number wins';
COMMENT ON COLUMN evmgmt.escalation_plan.repeat_from_step IS 'After the last step, start again from this step until acknowledged (NULL: stop after the last step)';
COMMENT ON COLUMN evmgmt.escalation_plan.start_reasons IS 'Why an escalation starts for the plan to apply: opened, upgraded, response_breach, resolution_breach, status_overdue, manual (NULL: any)';
COMMENT ON COLUMN evmgmt.escalation_plan.require_all_ack IS 'When true, every paged responder must acknowledge before the escalation stops';

CREATE TABLE evmgmt.escalation_step (
	plan_id			text NOT NULL REFERENCES evmgmt.escalation_plan ON DELETE CASCADE,
	step_no			integer NOT NULL CHECK (step_no >= 1),
	delay			interval NOT NULL CONSTRAINT escalation_step_delay_not_negative CHECK (delay >= interval '0'),
	channel			evmgmt.channel NOT NULL,
	target_kind		text NOT NULL CHECK (target_kind IN ('contact', 'group', 'rota', 'endpoint')),
	contact_id		bigint REFERENCES evmgmt.contact,
	group_id		text REFERENCES evmgmt.contact_group,
	rota_id			text REFERENCES evmgmt.rota,
	provider_id		text REFERENCES evmgmt.channel_provider,
	days_of_week	smallint[] CHECK (days_of_week <@ '{1,2,3,4,5,6,7}'::smallint[]),
	working_hours_only boolean NOT NULL DEFAULT false,
	hold_until_window boolean NOT NULL DEFAULT false,
	time_basis		text NOT NULL DEFAULT 'site' CHECK (time_basis IN ('site', 'recipient')),
	voice_retries	smallint NOT NULL DEFAULT 0 CHECK (voice_retries BETWEEN 0 AND 10),
	PRIMARY KEY (plan_id, step_no),
	CONSTRAINT escalation_step_one_target CHECK (
		(target_kind = 'contact') = (contact_id IS NOT NULL) AND (target_kind = 'group') = (group_id IS NOT NULL) AND
		(target_kind = 'rota') = (rota_id IS NOT NULL) AND (target_kind <> 'endpoint' OR provider_id IS NOT NULL)),
	CONSTRAINT escalation_step_endpoint_is_webhook CHECK ((target_kind = 'endpoint') = (channel = 'webhook'))
);
COMMENT ON TABLE evmgmt.escalation_step IS 'Ordered steps of a plan: step k fires at the escalation start plus the sum of the delays of steps 1..k';

CREATE TABLE evmgmt.escalation (
	escalation_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	event_id		bigint NOT NULL,
	pool			evmgmt.pool NOT NULL,
	plan_id			text NOT NULL,
	plan_snapshot	jsonb NOT NULL,
	started_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	start_reason	text NOT NULL CHECK (start_reason IN ('opened', 'upgraded', 'response_breach', 'resolution_breach', 'status_overdue', 'manual')),
	state			text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'acknowledged', 'resolved', 'cancelled', 'exhausted', 'superseded', 'satisfied')),
	cycle			integer NOT NULL DEFAULT 1 CHECK (cycle >= 1),
	next_step_no	integer,
	next_retry_no	smallint NOT NULL DEFAULT 0 CHECK (next_retry_no >= 0),
	next_due_at		timestamptz,
	hold_shift		interval NOT NULL DEFAULT interval '0' CHECK (hold_shift >= interval '0'),
	acknowledged_at	timestamptz,
	acknowledged_by	bigint REFERENCES evmgmt.contact,
	ack_note		text,
	ended_at		timestamptz,
	end_reason		text,
	resolve_notified_at timestamptz,
	FOREIGN KEY (event_id, pool) REFERENCES evmgmt.pool_condition ON DELETE CASCADE,
	CONSTRAINT escalation_active_is_scheduled CHECK (state <> 'active' OR (next_step_no IS NOT NULL AND next_due_at IS NOT NULL)),
	CONSTRAINT escalation_active_has_next CHECK ((state = 'active') = (ended_at IS NULL)),
	CONSTRAINT escalation_ack_complete CHECK ((state = 'acknowledged') = (acknowledged_at IS NOT NULL AND acknowledged_by IS NOT NULL))
);
CREATE INDEX escalation_due_idx ON evmgmt.escalation (next_due_at) WHERE state = 'active';
CREATE INDEX ON evmgmt.escalation (event_id, pool);
COMMENT ON TABLE evmgmt.escalation IS 'A running (or finished) escalation of one pool condition, with the plan snapshotted at its start';
COMMENT ON COLUMN evmgmt.escalation.state IS 'active; acknowledged; resolved or cancelled (the pool condition ended); exhausted (last step fired, no repeat); superseded (a newer opened/upgraded escalation replaced it); satisfied (the owner posted the overdue status update)';
COMMENT ON COLUMN evmgmt.escalation.next_retry_no IS 'When > 0 the next action is this voice retry of step next_step_no rather than the step itself';
COMMENT ON COLUMN evmgmt.escalation.hold_shift IS 'Total time steps were held until a working window; the steps after a hold keep their delays from the held step';
COMMENT ON COLUMN evmgmt.escalation.resolve_notified_at IS 'When the resolve notifications to everyone paged by this escalation were queued';

CREATE TABLE evmgmt.escalation_ack (
	escalation_id	bigint NOT NULL REFERENCES evmgmt.escalation ON DELETE CASCADE,
	contact_id		bigint NOT NULL REFERENCES evmgmt.contact,
	acked_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	note			text,
	PRIMARY KEY (escalation_id, contact_id)
);
COMMENT ON TABLE evmgmt.escalation_ack IS 'Acknowledgments by responders (several when the plan requires all of them to acknowledge)';

CREATE TABLE evmgmt.notification (
	notification_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	idempotency_key	uuid NOT NULL UNIQUE DEFAULT pg_catalog.gen_random_uuid(),
	event_id		bigint REFERENCES evmgmt.event ON DELETE CASCADE,
	escalation_id	bigint REFERENCES evmgmt.escalation ON DELETE CASCADE,
	kind			text NOT NULL CHECK (kind IN ('escalation_step', 'opened', 'status_update', 'target_warning', 'target_breach', 'resolved', 'digest', 'test')),
	channel			evmgmt.channel NOT NULL,
	provider_id		text NOT NULL REFERENCES evmgmt.channel_provider,
	contact_id		bigint REFERENCES evmgmt.contact,
	recipient		text NOT NULL,
	subject			text,
	body			text NOT NULL,
	payload			jsonb NOT NULL DEFAULT '{}',
	state			text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'retry', 'sent', 'dead', 'cancelled')),
	attempts		integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	next_attempt_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	lease_until		timestamptz,
	sent_at			timestamptz,
	last_status		integer,
	last_error		text,
	CONSTRAINT notification_sending_has_lease CHECK ((state = 'sending') = (lease_until IS NOT NULL)),
	CONSTRAINT notification_sent_has_time CHECK ((state = 'sent') = (sent_at IS NOT NULL)),
	CONSTRAINT notification_dead_has_error CHECK (state <> 'dead' OR last_error IS NOT NULL)
);
CREATE INDEX notification_due_idx ON evmgmt.notification (next_attempt_at) WHERE state IN ('pending', 'retry');
CREATE INDEX notification_lease_idx ON evmgmt.notification (lease_until) WHERE state = 'sending';
CREATE INDEX ON evmgmt.notification (escalation_id) WHERE escalation_id IS NOT NULL;
CREATE INDEX ON evmgmt.notification (event_id);
CREATE INDEX ON evmgmt.notification (created_at);
CREATE INDEX notification_recipient_idx ON evmgmt.notification (channel, recipient, created_at);
COMMENT ON TABLE evmgmt.notification IS 'The transactional outbox: one row per message to one recipient; idempotency_key is sent as webhook-id so receivers can drop duplicates';

CREATE TABLE evmgmt.escalation_step_run (
	run_id			bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	escalation_id	bigint NOT NULL REFERENCES evmgmt.escalation ON DELETE CASCADE,
	cycle			integer NOT NULL,
	step_no			integer NOT NULL,
	retry_no		smallint NOT NULL DEFAULT 0 CHECK (retry_no >= 0),
	scheduled_at	timestamptz NOT NULL,
	due_at			timestamptz NOT NULL,
	fired_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	channel			evmgmt.channel NOT NULL,
	contact_id		bigint REFERENCES evmgmt.contact,
	provider_id		text REFERENCES evmgmt.channel_provider,
	recipient		text,
	notification_id	bigint REFERENCES evmgmt.notification ON DELETE SET NULL,
	outcome			text NOT NULL CHECK (outcome IN ('queued', 'bundled', 'no_channel', 'empty_rota', 'empty_group', 'held',
													 'inactive_contact', 'no_provider', 'outside_hours', 'already_acknowledged')),
	detail			text
);
CREATE INDEX ON evmgmt.escalation_step_run (escalation_id, cycle, step_no);
COMMENT ON TABLE evmgmt.escalation_step_run IS 'History of every step an escalation fired, one row per recipient: when it was due, when it fired (late_by = fired_at - due_at), channel, recipient and typed outcome';
COMMENT ON COLUMN evmgmt.escalation_step_run.scheduled_at IS 'The step''s place in the plan schedule: start + sum of delays (+ whole repeat cycles)';
COMMENT ON COLUMN evmgmt.escalation_step_run.due_at IS 'When the step was due to fire: scheduled_at, earlier after a fall-through, later after a hold until a working window';
COMMENT ON COLUMN evmgmt.escalation_step_run.outcome IS 'queued or bundled (into a digest) when a notification was written; otherwise the typed reason nobody was reached: no_channel, empty_rota, empty_group, inactive_contact, no_provider, outside_hours, already_acknowledged, or held (waiting for a working window)';

CREATE TABLE evmgmt.delivery_attempt (
	attempt_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	notification_id	bigint NOT NULL REFERENCES evmgmt.notification ON DELETE CASCADE,
	attempt_no		integer NOT NULL CHECK (attempt_no >= 1),
	started_at		timestamptz NOT NULL,
	finished_at		timestamptz NOT NULL,
	status_code		integer,
	outcome			text NOT NULL CHECK (outcome IN ('sent', 'retry', 'dead', 'refused')),
	error			text,
	CONSTRAINT delivery_attempt_ordered CHECK (started_at <= finished_at),
	UNIQUE (notification_id, attempt_no)
);
CREATE INDEX ON evmgmt.delivery_attempt (started_at);
COMMENT ON TABLE evmgmt.delivery_attempt IS 'Every delivery attempt of every notification: time, latency, HTTP or SMTP status, outcome and error';
-- The escalation engine: plans running until acknowledged, status cadence and
-- notification footprint, response and resolution target timers, message
-- templates, the per-recipient burst limit, and the reporting views.
--
-- Everything that becomes due is driven by evmgmt.run_due_work(now), which the
-- background worker calls in a loop (and tests call with an explicit now).  It
-- works in the caller's transaction: each due escalation, status schedule and
-- target timer is locked with SKIP LOCKED, so two callers never fire the same
-- thing, and every notification is written to the outbox in the same
-- transaction as the state change that caused it.
--
-- Locking order: like the lifecycle functions (which lock the event row FOR
-- UPDATE, then its pool conditions), every entry point here locks the event
-- row first (FOR NO KEY UPDATE, which does not block the foreign-key checks
-- of inserts), then the escalation, schedule or timer rows.  run_due_work
-- takes the event with SKIP LOCKED and leaves an event that is busy for its
-- next call; acknowledge, post_status_update, escalation_start and
-- escalation_stop wait for it.  So whichever of acknowledge, resolve and a
-- firing step comes first wins, the others see its result, and no two of
-- them can deadlock.
--
-- Times: step k of cycle 1 is due at started_at + the sum of the delays of the
-- steps up to k (delays counted in seconds, so a DST change never stretches a
-- schedule); nothing is shifted by a late run.  Working hours and days of week
-- are evaluated in the site's (or the recipient's) time zone with the site's
-- business calendar, so they follow DST changes.

------------------------------------------------------------------------------
-- Settings
------------------------------------------------------------------------------

-- A duration setting (GUC_UNIT_S) as an interval, with the built-in default
-- when the library is not loaded.
CREATE FUNCTION evmgmt.setting_interval(name text, fallback interval) RETURNS interval
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN COALESCE(NULLIF(pg_catalog.current_setting(name, true), '')::interval, fallback);
END
$$;
COMMENT ON FUNCTION evmgmt.setting_interval(text, interval) IS 'Value of a duration setting as an interval, or the fallback when it is not defined';

-- Lock an event row, first of everything this engine locks (see the header).
-- With wait = false, answer false at once when somebody else holds it.
CREATE FUNCTION evmgmt.lock_event(event_id bigint, wait boolean) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	IF wait THEN
		PERFORM FROM evmgmt.event e WHERE e.event_id = $1 FOR NO KEY UPDATE;
	ELSE
		PERFORM FROM evmgmt.event e WHERE e.event_id = $1 FOR NO KEY UPDATE SKIP LOCKED;
	END IF;
	RETURN FOUND;
END
$$;
COMMENT ON FUNCTION evmgmt.lock_event(bigint, boolean) IS 'Locks an event row FOR NO KEY UPDATE (waiting, or SKIP LOCKED with wait = false); the first lock every engine entry point takes';

------------------------------------------------------------------------------
-- Tables
------------------------------------------------------------------------------

-- Message templates: built-in rows per kind and channel, operation overrides.
CREATE TABLE evmgmt.message_template (
	template_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	operation_id	text REFERENCES evmgmt.operation ON DELETE CASCADE,
	kind			text NOT NULL CHECK (kind IN ('escalation_step', 'opened', 'status_update', 'target_warning',
												  'target_breach', 'resolved', 'digest')),
	channel			evmgmt.channel NOT NULL,
	subject			text,
	body			text NOT NULL CHECK (body <> ''),
	max_length		integer CONSTRAINT message_template_max_length_sane CHECK (max_length >= 40),
	builtin			boolean NOT NULL DEFAULT false,
	CONSTRAINT message_template_builtin_is_reference CHECK (builtin = (operation_id IS NULL)),
	UNIQUE NULLS NOT DISTINCT (operation_id, kind, channel)
);
COMMENT ON TABLE evmgmt.message_template IS 'Message templates per kind and channel: built-in reference rows (operation_id NULL) and per-operation overrides; {{name}} fields are filled from the event';
COMMENT ON COLUMN evmgmt.message_template.max_length IS 'Longest body the channel takes (an SMS 160 characters); longer renderings are cut with an ellipsis';

-- Built-in templates: one text per kind for short channels (push, sms,
-- webhook), one spoken for voice, one long for e-mail.
INSERT INTO evmgmt.message_template (kind, channel, subject, body, max_length, builtin)
SELECT k.kind, c.channel,
	   CASE WHEN c.channel IN ('email', 'push') THEN k.subject END,
	   CASE c.channel WHEN 'voice' THEN k.spoken WHEN 'email' THEN k.long ELSE k.short END,
	   CASE c.channel WHEN 'sms' THEN 160 WHEN 'push' THEN 1024 WHEN 'voice' THEN 1000 END,
	   true
FROM (VALUES
	('escalation_step',
	 '[{{tier}}] {{title}} - please acknowledge',
	 '{{tier}} {{site}} {{type}}: {{title}} #{{event_id}} {{pool_severity}}. Step {{step}}{{retry}}. Ack: escalation {{escalation_id}} {{link}}',
	 'Event {{event_id}} needs you. Tier {{tier}}, {{type}} event at site {{site_name}}.'
	 || E'\nPools: {{pools}}\nTitle: {{title}}\nOpened: {{opened_at}}\nWhy you are paged: {{reason}}, step {{step}}{{retry}} of escalation {{escalation_id}}.'
	 || E'\n{{power_of_one}}\n\nAcknowledge with: SELECT evmgmt.acknowledge({{escalation_id}});\n{{link}}',
	 'This is evmgmt. A {{tier}} {{type}} event at site {{site_name}} needs you: {{title}}. Pools affected: {{pools}}. Please acknowledge escalation {{escalation_id}}.'),
	('opened',
	 '[{{tier}}] Event opened: {{title}}',
	 '{{tier}} opened {{site}} {{type}}: {{title}} #{{event_id}} {{link}}',
	 'Event {{event_id}} was opened at {{opened_at}}.'
	 || E'\nTier: {{tier}}\nType: {{type}} {{subtype}}\nSite: {{site_name}} ({{site}})\nPools: {{pools}}\nTitle: {{title}}\n{{power_of_one}}\n{{link}}',
	 'This is evmgmt. A {{tier}} {{type}} event was opened at site {{site_name}}: {{title}}.'),
	('status_update',
	 '[{{tier}}] Status: {{title}}',
	 '{{tier}} status #{{event_id}} {{site}}: {{status}}',
	 'Status of event {{event_id}} ({{tier}}, {{type}}) at {{site_name}}.'
	 || E'\nState: {{state}}\nPools: {{pools}}\n\n{{status}}\n{{power_of_one}}\n{{link}}',
	 'This is evmgmt with a status update on the {{tier}} event at site {{site_name}}: {{status}}'),
	('target_warning',
	 '[{{tier}}] {{target}} target due {{due}}',
	 '{{tier}} #{{event_id}} {{site}} pool {{pool}}: {{target}} target due {{due}} ({{remaining}} left)',
	 'The {{target}} target of event {{event_id}} ({{tier}}, pool {{pool}}) at {{site_name}} is due at {{due}}, in {{remaining}}.'
	 || E'\nTitle: {{title}}\nPools: {{pools}}\n{{link}}',
	 'This is evmgmt. The {{target}} target of the {{tier}} event at site {{site_name}} is due in {{remaining}}.'),
	('target_breach',
	 '[{{tier}}] {{target}} target breached',
	 '{{tier}} #{{event_id}} {{site}} pool {{pool}}: {{target}} target BREACHED at {{due}}',
	 'The {{target}} target of event {{event_id}} ({{tier}}, pool {{pool}}) at {{site_name}} was breached at {{due}}.'
	 || E'\nTitle: {{title}}\nPools: {{pools}}\n{{link}}',
	 'This is evmgmt. The {{target}} target of the {{tier}} event at site {{site_name}} has been breached.'),
	('resolved',
	 '[{{tier}}] {{outcome}}: {{title}}',
	 '{{tier}} #{{event_id}} {{site}} {{outcome}}: {{title}}',
	 'Event {{event_id}} ({{tier}}, {{type}}) at {{site_name}} is {{outcome}}.'
	 || E'\nTitle: {{title}}\nPools: {{pools}}\nNote: {{why}}\n{{link}}',
	 'This is evmgmt. The {{tier}} event at site {{site_name}} is {{outcome}}. No action is needed.'),
	('digest',
	 '{{count}} evmgmt notifications',
	 '{{count}} evmgmt updates: {{items}}',
	 E'{{count}} notifications were bundled into this message:\n\n{{items}}',
	 'This is evmgmt with {{count}} bundled alerts. {{items}}')
) AS k(kind, subject, short, long, spoken)
CROSS JOIN (SELECT pg_catalog.unnest(pg_catalog.enum_range(NULL::evmgmt.channel)) AS channel) c;
CREATE TRIGGER protect_builtin BEFORE INSERT OR UPDATE OR DELETE ON evmgmt.message_template
	FOR EACH ROW EXECUTE FUNCTION evmgmt.protect_builtin();

-- One row per event that has (had) a live classified pool: the tier its
-- footprint follows, the status cadence clock and who was told at open.
CREATE TABLE evmgmt.status_schedule (
	event_id		bigint PRIMARY KEY REFERENCES evmgmt.event ON DELETE CASCADE,
	severity		evmgmt.severity NOT NULL,
	cadence			interval CHECK (cadence > interval '0'),
	started_at		timestamptz NOT NULL,
	next_status_at	timestamptz,
	last_status_at	timestamptz,
	last_owner_update_at timestamptz,
	told_open		text[] NOT NULL DEFAULT '{}',
	gaps			jsonb NOT NULL DEFAULT '[]',
	ended_at		timestamptz,
	end_reason		text,
	CONSTRAINT status_schedule_cadence_has_next CHECK (ended_at IS NOT NULL OR (cadence IS NULL) = (next_status_at IS NULL))
);
CREATE INDEX status_schedule_due_idx ON evmgmt.status_schedule (next_status_at) WHERE ended_at IS NULL;
COMMENT ON TABLE evmgmt.status_schedule IS 'Status cadence of each event: the tier its notification footprint follows (the most severe live pool), when the next status update is due, the audiences told at open';
COMMENT ON COLUMN evmgmt.status_schedule.next_status_at IS 'When the owner''s next status update is due; if none is posted by then, an automatic status goes to the on_status audiences and a status_overdue escalation starts';
COMMENT ON COLUMN evmgmt.status_schedule.gaps IS 'Audience members who could not be reached at the last footprint message (no channel or no provider), with the reason';

-- Response and resolution timers of the pool conditions.
CREATE TABLE evmgmt.target_timer (
	event_id		bigint NOT NULL,
	pool			evmgmt.pool NOT NULL,
	target			text NOT NULL CHECK (target IN ('response', 'resolution')),
	due_at			timestamptz NOT NULL,
	warn_at			timestamptz NOT NULL,
	warned_at		timestamptz,
	breached_at		timestamptz,
	met_at			timestamptz,
	next_at			timestamptz,
	escalation_id	bigint REFERENCES evmgmt.escalation ON DELETE SET NULL,
	PRIMARY KEY (event_id, pool, target),
	FOREIGN KEY (event_id, pool) REFERENCES evmgmt.pool_condition ON DELETE CASCADE,
	CONSTRAINT target_timer_warn_not_after_due CHECK (warn_at <= due_at)
);
CREATE INDEX target_timer_due_idx ON evmgmt.target_timer (next_at) WHERE next_at IS NOT NULL;
COMMENT ON TABLE evmgmt.target_timer IS 'Live response and resolution timers of each pool condition (from pool_condition.response_due / resolution_due): warning before the breach, escalation at the breach';
COMMENT ON COLUMN evmgmt.target_timer.next_at IS 'When the timer next needs attention: warn_at until warned, then due_at; NULL once met or breached';

------------------------------------------------------------------------------
-- Messages
------------------------------------------------------------------------------

-- Replace every {{name}} in a template by vars->>name; unknown names vanish.
CREATE FUNCTION evmgmt.fill_template_fields(template text, vars jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result text := template;
	k text;
	v text;
BEGIN
	IF template IS NULL THEN
		RETURN NULL;
	END IF;
	FOR k, v IN SELECT key, value FROM pg_catalog.jsonb_each_text(vars) LOOP
		result := pg_catalog.replace(result, '{{' || k || '}}', COALESCE(v, ''));
	END LOOP;
	result := pg_catalog.regexp_replace(result, '\{\{[a-z_]+\}\}', '', 'g');
	-- tidy what empty fields leave behind
	result := pg_catalog.regexp_replace(result, '[ \t]+(\n|$)', '\1', 'g');
	result := pg_catalog.regexp_replace(result, '\n{3,}', E'\n\n', 'g');
	result := pg_catalog.regexp_replace(result, ' {2,}', ' ', 'g');
	RETURN pg_catalog.btrim(result, E' \n');
END
$$;
COMMENT ON FUNCTION evmgmt.fill_template_fields(text, jsonb) IS 'Fills the {{name}} fields of a template from a jsonb object; unknown fields become empty';

-- Cut a text to at most max characters, marking the cut with an ellipsis.
CREATE FUNCTION evmgmt.fit_length(body text, max integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF max IS NULL OR pg_catalog.length(body) <= max THEN
		RETURN body;
	END IF;
	RETURN pg_catalog.rtrim(pg_catalog.left(body, max - 1)) || '…';
END
$$;
COMMENT ON FUNCTION evmgmt.fit_length(text, integer) IS 'The text cut to at most max characters (ellipsis included)';

-- Facts about an event for templates and webhook payloads.
CREATE FUNCTION evmgmt.event_facts(event_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	f jsonb;
	v_queue text;
	v_site text;
	v_pool evmgmt.pool;
	st record;
	po text;
	prefix text := COALESCE(pg_catalog.current_setting('evmgmt.event_link_prefix', true), '');
	v_any evmgmt.severity;
BEGIN
	-- the tier of a cancelled event is the one it had
	SELECT pg_catalog.min(pc.severity) INTO v_any FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event;
	SELECT pg_catalog.jsonb_build_object(
			'event_id', r.event_id, 'operation_id', r.operation_id,
			'tier', COALESCE(r.floor_severity::text, v_any::text, 'unclassified'),
			'severity', COALESCE(r.floor_severity::text, v_any::text, 'unclassified'),
			'type', r.event_type, 'subtype', COALESCE(r.subtype, ''),
			'site', r.site_id, 'site_name', s.name, 'time_zone', s.time_zone, 'queue', COALESCE(r.queue_id, ''),
			'title', r.title, 'state', r.state,
			'pools', (SELECT pg_catalog.string_agg(pc.pool || ' ' || COALESCE(pc.severity::text, 'unclassified'), ', '
												   ORDER BY pc.severity NULLS LAST, pc.pool)
					  FROM evmgmt.pool_condition pc
					  WHERE pc.event_id = r.event_id AND (pc.state <> 'cancelled' OR r.floor_severity IS NULL)),
			'opened_at', pg_catalog.to_char(r.opened_at AT TIME ZONE s.time_zone, 'YYYY-MM-DD HH24:MI') || ' ' || s.time_zone,
			'link', CASE WHEN prefix <> '' THEN prefix || r.event_id END),
		   r.queue_id, r.site_id
	INTO f, v_queue, v_site
	FROM evmgmt.event_rollup r
	JOIN evmgmt.site s ON s.site_id = r.site_id
	WHERE r.event_id = p_event;

	-- Power of One for the queue, when the Erlang functions are there and
	-- the queue has a recent interval with staffing and handle time.
	IF v_queue IS NOT NULL
	   AND pg_catalog.to_regprocedure('evmgmt.power_of_one(double precision,integer,double precision,double precision,integer)') IS NOT NULL THEN
		SELECT pc.pool INTO v_pool FROM evmgmt.pool_condition pc
		WHERE pc.event_id = p_event ORDER BY pc.severity NULLS LAST, pc.pool LIMIT 1;
		SELECT i.offered, i.aht_seconds, i.staffed, i.interval_minutes, i.threshold_seconds INTO st
		FROM evmgmt.interval_stat i
		WHERE i.site_id = v_site AND i.queue_id = v_queue AND i.pool = v_pool
		  AND i.staffed IS NOT NULL AND i.aht_seconds IS NOT NULL
		ORDER BY i.interval_start DESC LIMIT 1;
		IF FOUND AND st.offered > 0 AND pg_catalog.round(st.staffed) >= 2 THEN
			EXECUTE $q$
				SELECT 'Power of One: ' || pg_catalog.string_agg(
						 p.agents || ' agents SL ' || pg_catalog.round((p.service_level * 100)::numeric) || '%', ', '
						 ORDER BY pg_catalog.abs(p.delta), p.delta DESC)
				FROM evmgmt.power_of_one($1, $2, $3, $4, 1) p
				WHERE p.delta BETWEEN -1 AND 1$q$
			INTO po
			USING st.offered * st.aht_seconds / (st.interval_minutes * 60.0), pg_catalog.round(st.staffed)::integer,
				  st.aht_seconds::double precision, st.threshold_seconds::double precision;
			f := f || pg_catalog.jsonb_build_object('power_of_one', po);
		END IF;
	END IF;
	RETURN f;
END
$$;
COMMENT ON FUNCTION evmgmt.event_facts(bigint) IS 'Facts about an event for messages: tier, type, site, pools with severities, title, state, opening time in the site zone, link and, when available, the Power-of-One figures of its queue';

-- Render a message of a kind for a channel: the operation's template when it
-- has one, the built-in one otherwise.
CREATE FUNCTION evmgmt.render_message(kind text, channel evmgmt.channel, operation_id text, vars jsonb,
									  OUT subject text, OUT body text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	t record;
BEGIN
	SELECT m.subject, m.body, m.max_length INTO t
	FROM evmgmt.message_template m
	WHERE m.kind = $1 AND m.channel = $2 AND (m.operation_id = $3 OR m.builtin)
	ORDER BY m.builtin
	LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no message template for kind "%" and channel %', $1, $2
			USING ERRCODE = 'undefined_object',
				  HINT = 'The built-in templates cover every kind and channel; restore them by recreating the extension.';
	END IF;
	subject := evmgmt.fill_template_fields(t.subject, vars);
	body := evmgmt.fit_length(evmgmt.fill_template_fields(t.body, vars), t.max_length);
END
$$;
COMMENT ON FUNCTION evmgmt.render_message(text, evmgmt.channel, text, jsonb) IS 'Renders the subject and body of a message from the operation''s template or the built-in one, cut to the channel''s length';

-- Render a digest of bundled items for a channel.  A digest of one item is
-- just that item.
CREATE FUNCTION evmgmt.render_digest(channel evmgmt.channel, items jsonb, OUT subject text, OUT body text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer := pg_catalog.jsonb_array_length(items);
	lines text;
	m record;
BEGIN
	IF n = 1 THEN
		subject := items -> 0 ->> 'subject';
		body := items -> 0 ->> 'body';
		RETURN;
	END IF;
	SELECT pg_catalog.string_agg(COALESCE(i ->> 'subject', pg_catalog.left(i ->> 'body', 100)),
								 CASE WHEN $1 = 'email' THEN E'\n' ELSE ' | ' END ORDER BY o)
	INTO lines
	FROM pg_catalog.jsonb_array_elements(items) WITH ORDINALITY AS x(i, o);
	IF $1 = 'email' THEN
		SELECT pg_catalog.string_agg(COALESCE(i ->> 'subject', '') || E'\n' || (i ->> 'body'), E'\n\n----\n\n' ORDER BY o)
		INTO lines
		FROM pg_catalog.jsonb_array_elements(items) WITH ORDINALITY AS x(i, o);
	END IF;
	SELECT * INTO m FROM evmgmt.render_message('digest', $1, items -> 0 ->> 'operation_id',
											   pg_catalog.jsonb_build_object('count', n, 'items', lines));
	subject := m.subject;
	body := m.body;
END
$$;
COMMENT ON FUNCTION evmgmt.render_digest(evmgmt.channel, jsonb) IS 'Renders a digest of bundled notifications (the item itself when there is only one)';

------------------------------------------------------------------------------
-- The outbox: enqueue with the per-recipient burst limit, cancel unsent
------------------------------------------------------------------------------

-- Write one notification to the outbox.  Person channels are rate limited per
-- address: when something was already sent or queued to the same channel and
-- address within evmgmt.recipient_burst_window, the message joins a digest
-- that goes out when the window closes, so a storm of events becomes one
-- message per window and address.  Webhooks are never bundled.
CREATE FUNCTION evmgmt.enqueue_notification(p_kind text, p_channel evmgmt.channel, p_provider_id text,
											p_contact_id bigint, p_recipient text, p_event_id bigint,
											p_escalation_id bigint, p_operation_id text, p_subject text,
											p_body text, p_payload jsonb, p_now timestamptz,
											OUT notification_id bigint, OUT bundled boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_window interval := evmgmt.setting_interval('evmgmt.recipient_burst_window', interval '60 seconds');
	v_item jsonb;
	v_id bigint;
	v_payload jsonb;
	v_last timestamptz;
	m record;
BEGIN
	bundled := false;
	IF p_channel <> 'webhook' AND v_window > interval '0' THEN
		-- one writer per address at a time, so a burst builds one digest
		PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('evmgmt.recipient'),
												 pg_catalog.hashtext(p_channel::text || ' ' || p_recipient));
		v_item := pg_catalog.jsonb_build_object('kind', p_kind, 'event_id', p_event_id, 'escalation_id', p_escalation_id,
												'contact_id', p_contact_id, 'operation_id', p_operation_id,
												'subject', p_subject, 'body', p_body, 'at', p_now, 'payload', p_payload);
		SELECT n.notification_id, n.payload INTO v_id, v_payload
		FROM evmgmt.notification n
		WHERE n.channel = p_channel AND n.recipient = p_recipient AND n.kind = 'digest'
		  AND n.state IN ('pending', 'retry') AND n.attempts = 0 AND n.next_attempt_at > p_now
		ORDER BY n.next_attempt_at
		LIMIT 1
		FOR UPDATE SKIP LOCKED;
		IF FOUND THEN
			v_payload := pg_catalog.jsonb_set(v_payload, '{items}', (v_payload -> 'items') || pg_catalog.jsonb_build_array(v_item));
			SELECT * INTO m FROM evmgmt.render_digest(p_channel, v_payload -> 'items');
			UPDATE evmgmt.notification SET payload = v_payload, subject = m.subject, body = m.body
			WHERE notification_id = v_id;
			notification_id := v_id;
			bundled := true;
			RETURN;
		END IF;
		SELECT pg_catalog.max(n.created_at) INTO v_last
		FROM evmgmt.notification n
		WHERE n.channel = p_channel AND n.recipient = p_recipient
		  AND n.created_at > p_now - v_window AND n.created_at <= p_now AND n.state <> 'cancelled';
		IF v_last IS NOT NULL THEN
			SELECT * INTO m FROM evmgmt.render_digest(p_channel, pg_catalog.jsonb_build_array(v_item));
			INSERT INTO evmgmt.notification (event_id, escalation_id, kind, channel, provider_id, contact_id, recipient,
											 subject, body, payload, created_at, next_attempt_at)
			VALUES (NULL, NULL, 'digest', p_channel, p_provider_id, p_contact_id, p_recipient, m.subject, m.body,
					pg_catalog.jsonb_build_object('digest', true, 'tier', p_payload -> 'tier', 'severity', p_payload -> 'severity',
												  'items', pg_catalog.jsonb_build_array(v_item)),
					p_now, v_last + v_window)
			RETURNING notification_id INTO notification_id;
			bundled := true;
			RETURN;
		END IF;
	END IF;
	INSERT INTO evmgmt.notification (event_id, escalation_id, kind, channel, provider_id, contact_id, recipient,
									 subject, body, payload, created_at, next_attempt_at)
	VALUES (p_event_id, p_escalation_id, p_kind, p_channel, p_provider_id, p_contact_id, p_recipient,
			p_subject, p_body, p_payload, p_now, p_now)
	RETURNING notification_id INTO notification_id;
END
$$;
COMMENT ON FUNCTION evmgmt.enqueue_notification(text, evmgmt.channel, text, bigint, text, bigint, bigint, text, text, text, jsonb, timestamptz) IS 'Writes a notification to the outbox, bundling it into a digest when the same address got one within evmgmt.recipient_burst_window';

-- Cancel what an escalation queued and nobody sent yet (optionally only what
-- goes to one contact); bundled items are taken out of their digests.
-- Resolve notices are never cancelled.  Messages already claimed by the
-- dispatcher are in flight and cannot be recalled.
CREATE FUNCTION evmgmt.cancel_unsent(p_escalation_id bigint, p_contact_id bigint DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer;
	d record;
	v_items jsonb;
	m record;
BEGIN
	UPDATE evmgmt.notification
	SET state = 'cancelled'
	WHERE escalation_id = p_escalation_id AND state IN ('pending', 'retry') AND kind <> 'resolved'
	  AND (p_contact_id IS NULL OR contact_id = p_contact_id);
	GET DIAGNOSTICS n = ROW_COUNT;

	FOR d IN SELECT x.notification_id, x.channel, x.payload
			 FROM evmgmt.notification x
			 WHERE x.kind = 'digest' AND x.state IN ('pending', 'retry')
			   AND x.payload -> 'items' @> pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('escalation_id', p_escalation_id))
			   AND (p_contact_id IS NULL OR x.contact_id = p_contact_id)
			 FOR UPDATE
	LOOP
		SELECT COALESCE(pg_catalog.jsonb_agg(i ORDER BY o), '[]') INTO v_items
		FROM pg_catalog.jsonb_array_elements(d.payload -> 'items') WITH ORDINALITY AS x(i, o)
		WHERE (i ->> 'escalation_id') IS DISTINCT FROM p_escalation_id::text OR i ->> 'kind' = 'resolved';
		IF pg_catalog.jsonb_array_length(v_items) = 0 THEN
			UPDATE evmgmt.notification SET state = 'cancelled' WHERE notification_id = d.notification_id;
		ELSE
			SELECT * INTO m FROM evmgmt.render_digest(d.channel, v_items);
			UPDATE evmgmt.notification
			SET payload = pg_catalog.jsonb_set(d.payload, '{items}', v_items), subject = m.subject, body = m.body
			WHERE notification_id = d.notification_id;
		END IF;
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.cancel_unsent(bigint, bigint) IS 'Cancels the not yet sent notifications of an escalation (or of one of its recipients), removing its items from pending digests';

-- A page that was in flight when its escalation was acknowledged or resolved
-- (claimed by the dispatcher, so not cancellable then) and failed is not
-- retried: it is cancelled instead of going back to the queue.
CREATE FUNCTION evmgmt.notification_drop_stale_retry() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NEW.kind = 'escalation_step' AND NEW.escalation_id IS NOT NULL
	   AND EXISTS (SELECT FROM evmgmt.escalation e
				   WHERE e.escalation_id = NEW.escalation_id AND e.state NOT IN ('active', 'exhausted')) THEN
		NEW.state := 'cancelled';
		NEW.lease_until := NULL;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.notification_drop_stale_retry() IS 'Trigger: a failed escalation page whose escalation ended meanwhile is cancelled instead of retried';
CREATE TRIGGER notification_drop_stale_retry BEFORE UPDATE OF state ON evmgmt.notification
	FOR EACH ROW WHEN (OLD.state = 'sending' AND NEW.state = 'retry')
	EXECUTE FUNCTION evmgmt.notification_drop_stale_retry();

-- Reach one contact on one channel: check the contact, find the address and
-- the provider, render and enqueue.  The outcome says why nothing was queued.
CREATE FUNCTION evmgmt.notify_contact(p_kind text, p_contact_id bigint, p_channel evmgmt.channel, p_event_id bigint,
									  p_escalation_id bigint, p_operation_id text, p_vars jsonb, p_now timestamptz,
									  OUT outcome text, OUT notification_id bigint, OUT recipient text, OUT provider_id text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_active boolean;
	m record;
	q record;
BEGIN
	SELECT c.active INTO v_active FROM evmgmt.contact c WHERE c.contact_id = p_contact_id;
	IF NOT COALESCE(v_active, false) THEN
		outcome := 'inactive_contact';
		RETURN;
	END IF;
	SELECT cc.address INTO recipient FROM evmgmt.contact_channel cc
	WHERE cc.contact_id = p_contact_id AND cc.channel = p_channel
	ORDER BY cc.priority, cc.address LIMIT 1;
	IF recipient IS NULL THEN
		outcome := 'no_channel';
		RETURN;
	END IF;
	SELECT p.provider_id INTO provider_id FROM evmgmt.channel_provider p
	WHERE p.channel = p_channel AND p.active ORDER BY p.provider_id LIMIT 1;
	IF provider_id IS NULL THEN
		outcome := 'no_provider';
		RETURN;
	END IF;
	SELECT * INTO m FROM evmgmt.render_message(p_kind, p_channel, p_operation_id, p_vars);
	SELECT * INTO q FROM evmgmt.enqueue_notification(p_kind, p_channel, provider_id, p_contact_id, recipient, p_event_id,
													 p_escalation_id, p_operation_id, m.subject, m.body,
													 p_vars || pg_catalog.jsonb_build_object('kind', p_kind, 'channel', p_channel, 'contact_id', p_contact_id),
													 p_now);
	notification_id := q.notification_id;
	outcome := CASE WHEN q.bundled THEN 'bundled' ELSE 'queued' END;
END
$$;
COMMENT ON FUNCTION evmgmt.notify_contact(text, bigint, evmgmt.channel, bigint, bigint, text, jsonb, timestamptz) IS 'Queues one message to one contact on one channel, or says why it could not (inactive_contact, no_channel, no_provider)';

-- Send to a webhook endpoint (never bundled).
CREATE FUNCTION evmgmt.notify_endpoint(p_kind text, p_provider_id text, p_event_id bigint, p_escalation_id bigint,
									   p_operation_id text, p_vars jsonb, p_now timestamptz,
									   OUT outcome text, OUT notification_id bigint, OUT recipient text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m record;
	q record;
BEGIN
	SELECT p.endpoint INTO recipient FROM evmgmt.channel_provider p
	WHERE p.provider_id = p_provider_id AND p.active AND p.channel = 'webhook';
	IF recipient IS NULL THEN
		outcome := 'no_provider';
		RETURN;
	END IF;
	SELECT * INTO m FROM evmgmt.render_message(p_kind, 'webhook', p_operation_id, p_vars);
	SELECT * INTO q FROM evmgmt.enqueue_notification(p_kind, 'webhook', p_provider_id, NULL, recipient, p_event_id,
													 p_escalation_id, p_operation_id, m.subject, m.body,
													 p_vars || pg_catalog.jsonb_build_object('kind', p_kind, 'channel', 'webhook'), p_now);
	notification_id := q.notification_id;
	outcome := 'queued';
END
$$;
COMMENT ON FUNCTION evmgmt.notify_endpoint(text, text, bigint, bigint, text, jsonb, timestamptz) IS 'Queues one message to a webhook endpoint, or says no_provider when the endpoint is missing or inactive';

------------------------------------------------------------------------------
-- Time conditions
------------------------------------------------------------------------------

-- Is a moment inside the allowed window of a step: on one of the allowed ISO
-- weekdays and, with working_hours, inside a working window of the calendar
-- on a day that is no holiday, all in local time of the given zone.
CREATE FUNCTION evmgmt.in_time_window(at timestamptz, time_zone text, calendar_id text,
									  days_of_week smallint[], working_hours boolean) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t timestamp := at AT TIME ZONE time_zone;
	dow smallint := pg_catalog.date_part('isodow', t)::smallint;
BEGIN
	IF days_of_week IS NOT NULL AND NOT dow = ANY (days_of_week) THEN
		RETURN false;
	END IF;
	IF NOT working_hours THEN
		RETURN true;
	END IF;
	RETURN EXISTS (SELECT FROM evmgmt.calendar_hours h
				   WHERE h.calendar_id = in_time_window.calendar_id AND h.isodow = dow
					 AND h.opens <= t::time AND t::time < h.closes)
		   AND NOT EXISTS (SELECT FROM evmgmt.calendar_holiday d
						   WHERE d.calendar_id = in_time_window.calendar_id AND d.day = t::date);
END
$$;
COMMENT ON FUNCTION evmgmt.in_time_window(timestamptz, text, text, smallint[], boolean) IS 'True when the moment falls on an allowed ISO weekday and, if working_hours, inside a working window of the calendar (no holiday), in local time of the zone';

-- The next moment at or after a given one that is inside the allowed window
-- (NULL when there is none within 400 days).  Local opening times are turned
-- into instants with the zone's rules of that day, so DST changes are right.
CREATE FUNCTION evmgmt.next_time_window(at timestamptz, time_zone text, calendar_id text,
										days_of_week smallint[], working_hours boolean) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d date := (at AT TIME ZONE time_zone)::date;
	i integer;
	v_day date;
	w record;
	s timestamptz;
BEGIN
	IF evmgmt.in_time_window(at, time_zone, calendar_id, days_of_week, working_hours) THEN
		RETURN at;
	END IF;
	FOR i IN 0 .. 400 LOOP
		v_day := d + i;
		CONTINUE WHEN days_of_week IS NOT NULL AND NOT pg_catalog.date_part('isodow', v_day)::smallint = ANY (days_of_week);
		IF NOT working_hours THEN
			s := v_day::timestamp AT TIME ZONE time_zone;
			IF s > at THEN
				RETURN s;
			END IF;
			CONTINUE;
		END IF;
		CONTINUE WHEN EXISTS (SELECT FROM evmgmt.calendar_holiday h WHERE h.calendar_id = next_time_window.calendar_id AND h.day = v_day);
		FOR w IN SELECT h.opens, h.closes FROM evmgmt.calendar_hours h
				 WHERE h.calendar_id = next_time_window.calendar_id AND h.isodow = pg_catalog.date_part('isodow', v_day)
				 ORDER BY h.opens
		LOOP
			s := (v_day + w.opens) AT TIME ZONE time_zone;
			IF s > at THEN
				RETURN s;
			END IF;
		END LOOP;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.next_time_window(timestamptz, text, text, smallint[], boolean) IS 'The first moment at or after the given one inside the allowed weekdays / working windows (local time of the zone, DST-correct); NULL when none within 400 days';

------------------------------------------------------------------------------
-- Plans: validation, snapshot, schedule
------------------------------------------------------------------------------

-- A plan that repeats must repeat something that takes time, or it would page
-- without pause.  Checked at commit so that steps can be edited in any order.
CREATE FUNCTION evmgmt.escalation_plan_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_plan text := CASE WHEN TG_OP = 'DELETE' THEN OLD.plan_id ELSE NEW.plan_id END;
	p record;
	v_steps integer;
	v_cycle interval;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	SELECT * INTO p FROM evmgmt.escalation_plan WHERE plan_id = v_plan;
	IF NOT FOUND OR p.repeat_from_step IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT pg_catalog.count(*), pg_catalog.sum(s.delay) INTO v_steps, v_cycle
	FROM evmgmt.escalation_step s WHERE s.plan_id = v_plan AND s.step_no >= p.repeat_from_step;
	IF v_steps > 0 AND v_cycle <= interval '0' THEN
		RAISE EXCEPTION 'repeat cycle of escalation plan "%" takes no time', v_plan
			USING ERRCODE = 'check_violation',
				  DETAIL = pg_catalog.format('The steps from step %s on have a total delay of zero, so the plan would repeat them without pause.', p.repeat_from_step),
				  HINT = 'Give one of the repeated steps a delay, or set repeat_from_step to NULL.';
	END IF;
	IF EXISTS (SELECT FROM evmgmt.escalation_step s WHERE s.plan_id = v_plan) AND v_steps = 0 THEN
		RAISE EXCEPTION 'escalation plan "%" repeats from step % but has no such step', v_plan, p.repeat_from_step
			USING ERRCODE = 'check_violation',
				  HINT = 'Set repeat_from_step to the number of an existing step.';
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_plan_check() IS 'Constraint trigger: a repeating plan must repeat from an existing step and its repeated steps must take time';
CREATE CONSTRAINT TRIGGER escalation_plan_check AFTER INSERT OR UPDATE ON evmgmt.escalation_plan
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evmgmt.escalation_plan_check();
CREATE CONSTRAINT TRIGGER escalation_plan_check AFTER INSERT OR UPDATE OR DELETE ON evmgmt.escalation_step
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION evmgmt.escalation_plan_check();

-- The plan as it is now, for escalation.plan_snapshot: its settings and its
-- steps with their cumulative offsets from the start in seconds.
CREATE FUNCTION evmgmt.plan_snapshot(plan_id text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (
	SELECT pg_catalog.jsonb_build_object(
		'plan_id', p.plan_id, 'name', p.name, 'priority', p.priority,
		'repeat_from_step', p.repeat_from_step, 'require_all_ack', p.require_all_ack,
		'steps', (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
						'step_no', s.step_no, 'delay', s.delay::text,
						'offset_s', s.offset_s, 'channel', s.channel, 'target_kind', s.target_kind,
						'contact_id', s.contact_id, 'group_id', s.group_id, 'rota_id', s.rota_id, 'provider_id', s.provider_id,
						'days_of_week', s.days_of_week, 'working_hours_only', s.working_hours_only,
						'hold_until_window', s.hold_until_window, 'time_basis', s.time_basis,
						'voice_retries', s.voice_retries) ORDER BY s.step_no)
				  FROM (SELECT st.*, pg_catalog.sum(pg_catalog.date_part('epoch', st.delay)) OVER (ORDER BY st.step_no) AS offset_s
						FROM evmgmt.escalation_step st WHERE st.plan_id = p.plan_id) s))
	FROM evmgmt.escalation_plan p
	WHERE p.plan_id = plan_snapshot.plan_id);
COMMENT ON FUNCTION evmgmt.plan_snapshot(text) IS 'A plan with its steps and their offsets from the start (seconds), as stored in escalation.plan_snapshot';

-- One step of a snapshot.
CREATE FUNCTION evmgmt.snapshot_step(snapshot jsonb, step_no integer) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s jsonb;
BEGIN
	FOR s IN SELECT x FROM pg_catalog.jsonb_array_elements(snapshot -> 'steps') x LOOP
		IF (s ->> 'step_no')::integer = step_no THEN
			RETURN s;
		END IF;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.snapshot_step(jsonb, integer) IS 'The step with the given number from a plan snapshot';

-- The step after a given one in a snapshot (the first step for NULL; with
-- repeat = true the first step of the repeated part).
CREATE FUNCTION evmgmt.snapshot_next_step(snapshot jsonb, after integer, repeat boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s jsonb;
	n integer;
	best integer;
	r integer := (snapshot ->> 'repeat_from_step')::integer;
BEGIN
	FOR s IN SELECT x FROM pg_catalog.jsonb_array_elements(snapshot -> 'steps') x LOOP
		n := (s ->> 'step_no')::integer;
		IF ((repeat AND n >= r) OR (NOT repeat AND (after IS NULL OR n > after))) AND (best IS NULL OR n < best) THEN
			best := n;
		END IF;
	END LOOP;
	RETURN best;
END
$$;
COMMENT ON FUNCTION evmgmt.snapshot_next_step(jsonb, integer, boolean) IS 'Number of the step after the given one (the first for NULL; the first repeated step with repeat = true)';

-- When step k of cycle c is scheduled: cycle 1 at start + offset(k); cycle
-- c >= 2 at start + offset(last) + (c - 2) * cycle length + offset(k) -
-- offset(step before the repeated part).  Seconds, so DST never shifts it.
CREATE FUNCTION evmgmt.escalation_step_due(snapshot jsonb, started_at timestamptz, cycle integer, step_no integer)
	RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s jsonb;
	n integer;
	off float8;
	k_off float8;
	last_off float8 := 0;
	rep_off float8;
	rep_no integer;
	r integer := (snapshot ->> 'repeat_from_step')::integer;
BEGIN
	FOR s IN SELECT x FROM pg_catalog.jsonb_array_elements(snapshot -> 'steps') x LOOP
		n := (s ->> 'step_no')::integer;
		off := (s ->> 'offset_s')::float8;
		IF n = step_no THEN
			k_off := off;
		END IF;
		last_off := GREATEST(last_off, off);
		IF r IS NOT NULL AND n >= r AND (rep_no IS NULL OR n < rep_no) THEN
			rep_no := n;
			rep_off := off - pg_catalog.date_part('epoch', (s ->> 'delay')::interval);
		END IF;
	END LOOP;
	IF cycle = 1 THEN
		RETURN started_at + pg_catalog.make_interval(secs => k_off);
	END IF;
	RETURN started_at + pg_catalog.make_interval(secs => last_off + (cycle - 2) * (last_off - rep_off) + k_off - rep_off);
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_step_due(jsonb, timestamptz, integer, integer) IS 'When a step of a cycle is scheduled: start + sum of delays (+ whole repeat cycles), independent of when anything ran';

------------------------------------------------------------------------------
-- Running escalations
------------------------------------------------------------------------------

-- Who a step reaches at a moment: the contact, every member of the group, or
-- everyone on duty in the rota then; for a webhook endpoint one row without a
-- contact.  A target that resolves to nobody gives one row with the reason.
CREATE FUNCTION evmgmt.step_recipients(step jsonb, at timestamptz)
	RETURNS TABLE (contact_id bigint, time_zone text, empty_reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_kind text := step ->> 'target_kind';
BEGIN
	IF v_kind = 'contact' THEN
		RETURN QUERY SELECT c.contact_id, c.time_zone, NULL::text
					 FROM evmgmt.contact c WHERE c.contact_id = (step ->> 'contact_id')::bigint;
		IF NOT FOUND THEN
			RETURN QUERY SELECT NULL::bigint, NULL::text, 'inactive_contact'::text;
		END IF;
	ELSIF v_kind = 'group' THEN
		RETURN QUERY SELECT c.contact_id, c.time_zone, NULL::text
					 FROM evmgmt.group_member m JOIN evmgmt.contact c ON c.contact_id = m.contact_id
					 WHERE m.group_id = step ->> 'group_id'
					 ORDER BY c.contact_id;
		IF NOT FOUND THEN
			RETURN QUERY SELECT NULL::bigint, NULL::text, 'empty_group'::text;
		END IF;
	ELSIF v_kind = 'rota' THEN
		RETURN QUERY SELECT DISTINCT c.contact_id, c.time_zone, NULL::text
					 FROM evmgmt.rota_shift s JOIN evmgmt.contact c ON c.contact_id = s.contact_id
					 WHERE s.rota_id = step ->> 'rota_id' AND s.during @> at
					 ORDER BY c.contact_id;
		IF NOT FOUND THEN
			RETURN QUERY SELECT NULL::bigint, NULL::text, 'empty_rota'::text;
		END IF;
	ELSE
		RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.step_recipients(jsonb, timestamptz) IS 'Contacts a step reaches at a moment (group members, rota on duty then); one row with empty_group, empty_rota or inactive_contact when nobody';

-- Fire everything of one escalation that is due at p_now, in schedule order,
-- and move it to its next due point.  The caller holds the row lock.
CREATE FUNCTION evmgmt.escalation_advance(p_escalation_id bigint, p_now timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	e evmgmt.escalation;
	ev record;
	st jsonb;
	v_facts jsonb;
	v_vars jsonb;
	v_channel evmgmt.channel;
	v_nominal timestamptz;
	v_due timestamptz;
	v_next integer;
	v_next_nominal timestamptz;
	v_ok boolean;
	v_advance boolean;
	v_cond boolean;
	v_recipient_basis boolean;
	v_days smallint[];
	v_hours boolean;
	v_hold timestamptz;
	v_outside boolean;
	v_retries integer;
	v_spacing interval;
	v_base timestamptz;
	v_cycle integer;
	v_first integer;
	v_skip bigint;
	v_len float8;
	v_outcome text;
	v_provider text;
	v_recipient text;
	v_notification bigint;
	v_loops integer := 0;
	v_fired integer := 0;
	v_guc_spacing interval := evmgmt.setting_interval('evmgmt.voice_retry_interval', interval '120 seconds');
	r record;
	q record;
BEGIN
	SELECT * INTO e FROM evmgmt.escalation WHERE escalation_id = p_escalation_id;
	SELECT x.event_id, x.operation_id, x.site_id, s.time_zone, s.calendar_id, pc.severity
	INTO ev
	FROM evmgmt.event x
	JOIN evmgmt.site s ON s.site_id = x.site_id
	JOIN evmgmt.pool_condition pc ON pc.event_id = x.event_id AND pc.pool = e.pool
	WHERE x.event_id = e.event_id;

	WHILE e.state = 'active' AND e.next_due_at <= p_now LOOP
		v_loops := v_loops + 1;
		IF v_loops > 100000 THEN
			RAISE EXCEPTION 'escalation % does not advance past step %', e.escalation_id, e.next_step_no
				USING ERRCODE = 'internal_error';
		END IF;
		st := evmgmt.snapshot_step(e.plan_snapshot, e.next_step_no);
		v_channel := (st ->> 'channel')::evmgmt.channel;
		v_retries := (st ->> 'voice_retries')::integer;
		v_nominal := evmgmt.escalation_step_due(e.plan_snapshot, e.started_at, e.cycle, e.next_step_no) + e.hold_shift;
		v_due := e.next_due_at;
		v_next := evmgmt.snapshot_next_step(e.plan_snapshot, e.next_step_no);
		v_next_nominal := CASE
			WHEN v_next IS NOT NULL THEN evmgmt.escalation_step_due(e.plan_snapshot, e.started_at, e.cycle, v_next)
			WHEN e.plan_snapshot ->> 'repeat_from_step' IS NOT NULL
				THEN evmgmt.escalation_step_due(e.plan_snapshot, e.started_at, e.cycle + 1,
												evmgmt.snapshot_next_step(e.plan_snapshot, NULL, true))
			END + e.hold_shift;
		IF v_facts IS NULL THEN
			v_facts := evmgmt.event_facts(e.event_id);
		END IF;
		v_vars := v_facts || pg_catalog.jsonb_build_object(
			'escalation_id', e.escalation_id, 'step', e.next_step_no, 'cycle', e.cycle, 'pool', e.pool,
			'pool_severity', e.pool || ' ' || COALESCE(ev.severity::text, 'unclassified'),
			'reason', pg_catalog.replace(e.start_reason, '_', ' '), 'start_reason', e.start_reason,
			'retry', CASE WHEN e.next_retry_no > 0 THEN ' (voice retry ' || e.next_retry_no || ')' ELSE '' END,
			'retry_no', e.next_retry_no);
		v_ok := false;
		v_advance := true;

		IF e.next_retry_no > 0 THEN
			-- An unanswered voice step: call again everyone it reached who has
			-- not acknowledged.
			FOR r IN SELECT DISTINCT x.contact_id
					 FROM evmgmt.escalation_step_run x
					 WHERE x.escalation_id = e.escalation_id AND x.cycle = e.cycle AND x.step_no = e.next_step_no
					   AND x.retry_no = 0 AND x.outcome IN ('queued', 'bundled') AND x.contact_id IS NOT NULL
					   AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a
									   WHERE a.escalation_id = e.escalation_id AND a.contact_id = x.contact_id)
					 ORDER BY x.contact_id
			LOOP
				SELECT * INTO q FROM evmgmt.notify_contact('escalation_step', r.contact_id, 'voice', e.event_id,
														   e.escalation_id, ev.operation_id, v_vars, p_now);
				INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, retry_no, scheduled_at, due_at, fired_at,
														channel, contact_id, provider_id, recipient, notification_id, outcome)
				VALUES (e.escalation_id, e.cycle, e.next_step_no, e.next_retry_no, v_nominal, v_due, p_now,
						'voice', r.contact_id, q.provider_id, q.recipient, q.notification_id, q.outcome);
			END LOOP;
			v_ok := true;
			IF e.next_retry_no < v_retries THEN
				v_spacing := v_guc_spacing;
				IF v_next_nominal IS NOT NULL THEN
					v_spacing := LEAST(v_spacing, (v_next_nominal - v_due) / (v_retries - e.next_retry_no + 1));
				END IF;
				IF v_spacing > interval '0' THEN
					e.next_retry_no := e.next_retry_no + 1;
					e.next_due_at := v_due + v_spacing;
					v_advance := false;
				END IF;
			END IF;
		ELSE
			v_days := CASE WHEN pg_catalog.jsonb_typeof(st -> 'days_of_week') = 'array'
						   THEN ARRAY(SELECT pg_catalog.jsonb_array_elements_text(st -> 'days_of_week'))::smallint[] END;
			v_hours := (st ->> 'working_hours_only')::boolean;
			v_cond := v_days IS NOT NULL OR v_hours;
			v_recipient_basis := st ->> 'time_basis' = 'recipient' AND st ->> 'target_kind' <> 'endpoint';
			v_hold := NULL;
			v_outside := false;
			IF v_cond AND NOT v_recipient_basis
			   AND NOT evmgmt.in_time_window(p_now, ev.time_zone, ev.calendar_id, v_days, v_hours) THEN
				IF (st ->> 'hold_until_window')::boolean THEN
					v_hold := evmgmt.next_time_window(p_now, ev.time_zone, ev.calendar_id, v_days, v_hours);
				END IF;
				IF v_hold IS NULL THEN
					v_outside := true;
					INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, scheduled_at, due_at, fired_at,
															channel, outcome, detail)
					VALUES (e.escalation_id, e.cycle, e.next_step_no, v_nominal, v_due, p_now, v_channel, 'outside_hours',
							pg_catalog.format('outside the step''s days or working hours in %s', ev.time_zone));
				END IF;
			ELSIF v_cond AND v_recipient_basis AND (st ->> 'hold_until_window')::boolean THEN
				-- held while no recipient is inside their own window
				SELECT pg_catalog.min(evmgmt.next_time_window(p_now, x.time_zone, ev.calendar_id, v_days, v_hours))
				INTO v_hold
				FROM evmgmt.step_recipients(st, p_now) x
				JOIN evmgmt.contact c ON c.contact_id = x.contact_id AND c.active;
				IF v_hold <= p_now THEN
					v_hold := NULL;
				END IF;
			END IF;

			IF v_hold IS NOT NULL THEN
				INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, scheduled_at, due_at, fired_at,
														channel, outcome, detail)
				VALUES (e.escalation_id, e.cycle, e.next_step_no, v_nominal, v_due, p_now, v_channel, 'held',
						'held until ' || pg_catalog.to_char(v_hold AT TIME ZONE ev.time_zone, 'YYYY-MM-DD HH24:MI')
						|| ' ' || ev.time_zone || ' (next working window)');
				-- the rest of the plan keeps its delays from the held step
				e.hold_shift := e.hold_shift + (v_hold - v_due);
				e.next_due_at := v_hold;
				v_advance := false;
			ELSIF NOT v_outside THEN
				FOR r IN SELECT * FROM evmgmt.step_recipients(st, p_now) LOOP
					v_provider := NULL;
					v_recipient := NULL;
					v_notification := NULL;
					IF r.empty_reason IS NOT NULL THEN
						v_outcome := r.empty_reason;
					ELSIF st ->> 'target_kind' = 'endpoint' THEN
						SELECT * INTO q FROM evmgmt.notify_endpoint('escalation_step', st ->> 'provider_id', e.event_id,
																	e.escalation_id, ev.operation_id, v_vars, p_now);
						v_outcome := q.outcome;
						v_provider := st ->> 'provider_id';
						v_recipient := q.recipient;
						v_notification := q.notification_id;
					ELSIF (e.plan_snapshot ->> 'require_all_ack')::boolean
						  AND EXISTS (SELECT FROM evmgmt.escalation_ack a
									  WHERE a.escalation_id = e.escalation_id AND a.contact_id = r.contact_id) THEN
						v_outcome := 'already_acknowledged';
					ELSIF v_cond AND v_recipient_basis
						  AND NOT evmgmt.in_time_window(p_now, r.time_zone, ev.calendar_id, v_days, v_hours) THEN
						v_outcome := 'outside_hours';
					ELSE
						SELECT * INTO q FROM evmgmt.notify_contact('escalation_step', r.contact_id, v_channel, e.event_id,
																   e.escalation_id, ev.operation_id, v_vars, p_now);
						v_outcome := q.outcome;
						v_provider := q.provider_id;
						v_recipient := q.recipient;
						v_notification := q.notification_id;
					END IF;
					INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, scheduled_at, due_at, fired_at,
															channel, contact_id, provider_id, recipient, notification_id, outcome, detail)
					VALUES (e.escalation_id, e.cycle, e.next_step_no, v_nominal, v_due, p_now, v_channel, r.contact_id,
							v_provider, v_recipient, v_notification, v_outcome,
							CASE v_outcome WHEN 'outside_hours' THEN 'outside working hours in ' || r.time_zone END);
					IF v_outcome IN ('queued', 'bundled') THEN
						v_ok := true;
					END IF;
				END LOOP;
				IF v_ok AND v_channel = 'voice' AND v_retries > 0 THEN
					v_base := p_now;
					v_spacing := v_guc_spacing;
					IF v_next_nominal IS NOT NULL THEN
						v_spacing := LEAST(v_spacing, (v_next_nominal - v_base) / (v_retries + 1));
					END IF;
					IF v_spacing > interval '0' THEN
						e.next_retry_no := 1;
						e.next_due_at := v_base + v_spacing;
						v_advance := false;
					END IF;
				END IF;
			END IF;
		END IF;
		v_fired := v_fired + 1;

		IF v_advance THEN
			e.next_retry_no := 0;
			IF v_next IS NOT NULL THEN
				-- nobody reached: fall through to the next step at once
				e.next_step_no := v_next;
				e.next_due_at := CASE WHEN v_ok THEN v_next_nominal ELSE LEAST(p_now, v_next_nominal) END;
			ELSIF e.plan_snapshot ->> 'repeat_from_step' IS NOT NULL THEN
				v_cycle := e.cycle + 1;
				v_first := evmgmt.snapshot_next_step(e.plan_snapshot, NULL, true);
				e.next_due_at := evmgmt.escalation_step_due(e.plan_snapshot, e.started_at, v_cycle, v_first) + e.hold_shift;
				IF e.next_due_at <= p_now THEN
					-- after an outage, whole cycles that are over are not replayed
					v_len := pg_catalog.date_part('epoch', evmgmt.escalation_step_due(e.plan_snapshot, e.started_at, v_cycle + 1, v_first)
																	 - e.next_due_at);
					v_skip := pg_catalog.floor(pg_catalog.date_part('epoch', p_now - e.next_due_at) / v_len)::bigint;
					IF v_skip > 0 THEN
						v_cycle := v_cycle + v_skip;
						e.next_due_at := evmgmt.escalation_step_due(e.plan_snapshot, e.started_at, v_cycle, v_first) + e.hold_shift;
						UPDATE evmgmt.escalation_step_run
						SET detail = pg_catalog.concat_ws('; ', detail, pg_catalog.format('skipped %s overdue repeat cycles', v_skip))
						WHERE run_id = (SELECT pg_catalog.max(run_id) FROM evmgmt.escalation_step_run
										WHERE escalation_id = e.escalation_id);
					END IF;
				END IF;
				e.cycle := v_cycle;
				e.next_step_no := v_first;
			ELSE
				e.state := 'exhausted';
				e.ended_at := p_now;
				e.end_reason := 'last step fired without acknowledgment';
				e.next_step_no := NULL;
				e.next_due_at := NULL;
			END IF;
		END IF;
	END LOOP;

	UPDATE evmgmt.escalation
	SET cycle = e.cycle, next_step_no = e.next_step_no, next_retry_no = e.next_retry_no, next_due_at = e.next_due_at,
		hold_shift = e.hold_shift, state = e.state, ended_at = e.ended_at, end_reason = e.end_reason
	WHERE escalation_id = e.escalation_id;
	RETURN v_fired;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_advance(bigint, timestamptz) IS 'Fires every step (and voice retry) of a locked escalation that is due at the given moment, in order, recording each in escalation_step_run, and schedules the next';

-- Start an escalation for a pool condition.
CREATE FUNCTION evmgmt.escalation_start(event_id bigint, pool evmgmt.pool, reason text,
										now timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_pool evmgmt.pool := $2;
	p_reason text := $3;
	p_now timestamptz := $4;
	c record;
	old record;
	v_plan text;
	v_snapshot jsonb;
	v_first integer;
	v_id bigint;
BEGIN
	IF p_reason IS NULL OR p_reason NOT IN ('opened', 'upgraded', 'response_breach', 'resolution_breach', 'status_overdue', 'manual') THEN
		RAISE EXCEPTION 'unknown escalation start reason "%"', p_reason
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use opened, upgraded, response_breach, resolution_breach, status_overdue or manual.';
	END IF;
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	PERFORM evmgmt.lock_event(p_event, true);
	SELECT x.operation_id, x.event_type, x.site_id, pc.severity, pc.state
	INTO c
	FROM evmgmt.pool_condition pc JOIN evmgmt.event x ON x.event_id = pc.event_id
	WHERE pc.event_id = p_event AND pc.pool = p_pool
	FOR UPDATE OF pc;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'event % has no condition in pool %', p_event, p_pool
			USING ERRCODE = 'no_data_found';
	END IF;
	IF c.state IN ('resolved', 'cancelled') THEN
		RAISE EXCEPTION 'cannot start an escalation for pool % of event %', p_pool, p_event
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = pg_catalog.format('The pool condition is %s.', c.state);
	END IF;

	IF p_reason IN ('opened', 'upgraded') THEN
		-- a new classification replaces the escalation that ran for the old one
		FOR old IN SELECT x.escalation_id FROM evmgmt.escalation x
				   WHERE x.event_id = p_event AND x.pool = p_pool AND x.state = 'active'
					 AND x.start_reason IN ('opened', 'upgraded', 'manual')
				   ORDER BY x.escalation_id
				   FOR UPDATE
		LOOP
			UPDATE evmgmt.escalation
			SET state = 'superseded', ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'superseded: ' || p_reason
			WHERE escalation_id = old.escalation_id;
			PERFORM evmgmt.cancel_unsent(old.escalation_id);
		END LOOP;
		PERFORM evmgmt.footprint_open(p_event, p_now);
	ELSE
		SELECT x.escalation_id INTO v_id FROM evmgmt.escalation x
		WHERE x.event_id = p_event AND x.pool = p_pool AND x.state = 'active' AND x.start_reason = p_reason;
		IF FOUND THEN
			RETURN v_id;
		END IF;
	END IF;

	SELECT p.plan_id INTO v_plan
	FROM evmgmt.escalation_plan p
	WHERE p.active
	  AND (p.operation_id IS NULL OR p.operation_id = c.operation_id)
	  AND (p.severities IS NULL OR c.severity = ANY (p.severities))
	  AND (p.event_types IS NULL OR c.event_type = ANY (p.event_types))
	  AND (p.site_ids IS NULL OR c.site_id = ANY (p.site_ids))
	  AND (p.pools IS NULL OR p_pool = ANY (p.pools))
	  AND (p.start_reasons IS NULL OR p_reason = ANY (p.start_reasons))
	  AND EXISTS (SELECT FROM evmgmt.escalation_step s WHERE s.plan_id = p.plan_id)
	ORDER BY p.priority, p.operation_id IS NULL, p.plan_id
	LIMIT 1;
	IF v_plan IS NULL THEN
		RETURN NULL;
	END IF;
	v_snapshot := evmgmt.plan_snapshot(v_plan);
	v_first := evmgmt.snapshot_next_step(v_snapshot, NULL);
	INSERT INTO evmgmt.escalation (event_id, pool, plan_id, plan_snapshot, started_at, start_reason, next_step_no, next_due_at)
	VALUES (p_event, p_pool, v_plan, v_snapshot, p_now, p_reason, v_first,
			evmgmt.escalation_step_due(v_snapshot, p_now, 1, v_first))
	RETURNING escalation_id INTO v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz) IS 'Starts the escalation of a pool condition with the matching plan (lowest priority number; criteria severity, type, site, pool, start reason), snapshotting the plan; opened/upgraded replace the running one and send the footprint''s open messages; returns the escalation id or NULL when no plan matches';

-- Everyone an escalation paged, and the channel to tell them it is over: a
-- channel they were paged on, preferring anything but voice.
CREATE FUNCTION evmgmt.paged_contacts(escalation_ids bigint[])
	RETURNS TABLE (contact_id bigint, channel evmgmt.channel, escalation_id bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT DISTINCT ON (r.contact_id) r.contact_id,
		   CASE WHEN r.channel <> 'voice' THEN r.channel
				ELSE COALESCE((SELECT cc.channel FROM evmgmt.contact_channel cc
							   WHERE cc.contact_id = r.contact_id AND cc.channel IN ('sms', 'push', 'email')
							   ORDER BY pg_catalog.array_position(ARRAY['sms', 'push', 'email']::evmgmt.channel[], cc.channel), cc.priority
							   LIMIT 1), 'voice') END,
		   r.escalation_id
	FROM evmgmt.escalation_step_run r
	WHERE r.escalation_id = ANY (escalation_ids) AND r.contact_id IS NOT NULL AND r.outcome IN ('queued', 'bundled')
	ORDER BY r.contact_id, r.channel = 'voice', r.run_id DESC
$$;
COMMENT ON FUNCTION evmgmt.paged_contacts(bigint[]) IS 'Contacts paged by the given escalations, each with the channel to reach them (one they were paged on, voice only when they have nothing else)';

-- Stop the escalations of a pool condition (or of the whole event for pool
-- NULL) because it resolved or was cancelled: end them at once, cancel what
-- is unsent, tell everyone who was paged, and when no pool of the event is
-- live any more send the footprint's resolution messages and end the status
-- cadence.
CREATE FUNCTION evmgmt.escalation_stop(event_id bigint, pool evmgmt.pool, why text,
									   now timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_pool evmgmt.pool := $2;
	p_why text := COALESCE($3, 'resolved');
	p_now timestamptz := $4;
	v_state text := CASE WHEN COALESCE($3, '') ILIKE 'cancel%' THEN 'cancelled' ELSE 'resolved' END;
	v_all boolean;
	v_ids bigint[] := '{}';
	v_stopped integer := 0;
	v_op text;
	v_facts jsonb;
	v_vars jsonb;
	x record;
	r record;
	q record;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN 0;
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	-- is the event over once this pool is?
	v_all := p_pool IS NULL OR NOT EXISTS (
		SELECT FROM evmgmt.pool_condition pc
		WHERE pc.event_id = p_event AND pc.pool <> p_pool AND pc.state NOT IN ('resolved', 'cancelled'));

	FOR x IN SELECT e.escalation_id, e.state FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND (v_all OR e.pool = p_pool) AND e.resolve_notified_at IS NULL
			 ORDER BY e.escalation_id
			 FOR UPDATE
	LOOP
		IF x.state = 'active' THEN
			UPDATE evmgmt.escalation
			SET state = v_state, ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = p_why
			WHERE escalation_id = x.escalation_id;
			v_stopped := v_stopped + 1;
		END IF;
		-- an exhausted escalation may still have pages waiting: a resolved
		-- event never pages anyone later
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
		v_ids := v_ids || x.escalation_id;
	END LOOP;

	UPDATE evmgmt.target_timer t
	SET met_at = CASE WHEN t.breached_at IS NULL THEN p_now END, next_at = NULL
	WHERE t.event_id = p_event AND (v_all OR t.pool = p_pool) AND t.met_at IS NULL AND t.next_at IS NOT NULL;

	-- everyone who was paged hears that it is over
	IF pg_catalog.cardinality(v_ids) > 0 THEN
		v_facts := evmgmt.event_facts(p_event);
		v_vars := v_facts || pg_catalog.jsonb_build_object('outcome', v_state, 'why', p_why, 'pool', p_pool);
		FOR r IN SELECT * FROM evmgmt.paged_contacts(v_ids) LOOP
			PERFORM evmgmt.notify_contact('resolved', r.contact_id, r.channel, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		FOR r IN SELECT DISTINCT ON (s.provider_id) s.provider_id, s.escalation_id
				 FROM evmgmt.escalation_step_run s
				 WHERE s.escalation_id = ANY (v_ids) AND s.channel = 'webhook' AND s.outcome = 'queued'
				 ORDER BY s.provider_id, s.run_id DESC
		LOOP
			PERFORM evmgmt.notify_endpoint('resolved', r.provider_id, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		UPDATE evmgmt.escalation SET resolve_notified_at = p_now WHERE escalation_id = ANY (v_ids);
	END IF;

	IF v_all THEN
		PERFORM evmgmt.footprint_close(p_event, v_state, p_why, p_now);
	END IF;
	RETURN v_stopped;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz) IS 'Stops the escalations of a pool condition (all pools for NULL) at once: cancels unsent notifications, queues resolve (or cancel) notices to everyone paged; when the event has no live pool left, sends the footprint''s resolution messages and ends the status cadence; returns how many were running';

------------------------------------------------------------------------------
-- Acknowledgment
------------------------------------------------------------------------------

-- The contact acting: the given one, or the active contact whose role_name is
-- the session user.  Only evmgmt_admin may act for somebody else.
CREATE FUNCTION evmgmt.acting_contact(contact_id bigint) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_id bigint;
	v_role text;
	v_active boolean;
	n integer;
BEGIN
	IF $1 IS NULL THEN
		SELECT pg_catalog.count(*), pg_catalog.min(c.contact_id) INTO n, v_id
		FROM evmgmt.contact c WHERE c.role_name = SESSION_USER AND c.active;
		IF n = 0 THEN
			RAISE EXCEPTION 'no active contact for role "%"', SESSION_USER
				USING ERRCODE = 'no_data_found',
					  HINT = 'Pass the contact_id of the person acknowledging, or set contact.role_name to the role they log in with.';
		ELSIF n > 1 THEN
			RAISE EXCEPTION 'several active contacts use role "%"', SESSION_USER
				USING ERRCODE = 'cardinality_violation',
					  HINT = 'Pass the contact_id of the person acknowledging.';
		END IF;
		RETURN v_id;
	END IF;
	SELECT c.role_name, c.active INTO v_role, v_active FROM evmgmt.contact c WHERE c.contact_id = $1;
	IF NOT FOUND OR NOT v_active THEN
		RAISE EXCEPTION 'contact % does not exist or is not active', $1
			USING ERRCODE = 'no_data_found';
	END IF;
	IF v_role <> SESSION_USER AND NOT pg_catalog.pg_has_role(SESSION_USER, 'evmgmt_admin', 'MEMBER') THEN
		RAISE EXCEPTION 'role "%" may not acknowledge for contact %', SESSION_USER, $1
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('Contact %s logs in as role "%s".', $1, v_role),
				  HINT = 'Acknowledge as yourself (leave contact_id NULL); only evmgmt_admin acknowledges for others.';
	END IF;
	RETURN $1;
END
$$;
COMMENT ON FUNCTION evmgmt.acting_contact(bigint) IS 'The contact an acknowledgment is made by: the given one (others than oneself only for evmgmt_admin) or the contact of the session user';

-- Acknowledge an escalation: stops it at once, in this transaction, and
-- cancels what it queued and nobody sent yet.  With require_all_ack it stops
-- only when everyone it paged has acknowledged.
CREATE FUNCTION evmgmt.acknowledge(escalation_id bigint, contact_id bigint DEFAULT NULL, note text DEFAULT NULL)
	RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_id bigint := $1;
	p_note text := $3;
	v_contact bigint := evmgmt.acting_contact($2);
	v_now timestamptz := pg_catalog.clock_timestamp();
	e evmgmt.escalation;
	v_missing integer := 0;
	v_by text;
BEGIN
	-- waits for a step firing or a resolve that holds the event; whoever
	-- comes second sees the first one's result
	PERFORM evmgmt.lock_event((SELECT x.event_id FROM evmgmt.escalation x WHERE x.escalation_id = p_id), true);
	SELECT * INTO e FROM evmgmt.escalation x WHERE x.escalation_id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'escalation % does not exist', p_id USING ERRCODE = 'no_data_found';
	END IF;
	-- an exhausted escalation paged everyone it could and still waits for
	-- somebody to take it
	IF e.state NOT IN ('active', 'exhausted') THEN
		SELECT c.name INTO v_by FROM evmgmt.contact c WHERE c.contact_id = e.acknowledged_by;
		RAISE EXCEPTION 'escalation % is no longer active', p_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = CASE WHEN e.state = 'acknowledged'
							   THEN pg_catalog.format('It was acknowledged by %s at %s.', v_by, e.acknowledged_at)
							   ELSE pg_catalog.format('It ended (%s) at %s.', e.state, e.ended_at) END;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = v_contact) THEN
		RAISE EXCEPTION 'contact % already acknowledged escalation %', v_contact, p_id
			USING ERRCODE = 'unique_violation',
				  DETAIL = 'The plan requires every paged responder to acknowledge; the others have not yet.';
	END IF;
	INSERT INTO evmgmt.escalation_ack (escalation_id, contact_id, acked_at, note) VALUES (p_id, v_contact, v_now, p_note);

	IF (e.plan_snapshot ->> 'require_all_ack')::boolean THEN
		SELECT pg_catalog.count(DISTINCT r.contact_id) INTO v_missing
		FROM evmgmt.escalation_step_run r
		WHERE r.escalation_id = p_id AND r.contact_id IS NOT NULL AND r.outcome IN ('queued', 'bundled')
		  AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = r.contact_id);
	END IF;

	INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, reason, details)
	VALUES (e.event_id, e.pool, v_now, 'acknowledged', p_note,
			pg_catalog.jsonb_build_object('escalation_id', p_id, 'contact_id', v_contact,
										  'contact', (SELECT c.name FROM evmgmt.contact c WHERE c.contact_id = v_contact),
										  'stopped', v_missing = 0, 'awaiting', v_missing));

	IF v_missing > 0 THEN
		-- this responder is done; the others keep being paged
		PERFORM evmgmt.cancel_unsent(p_id, v_contact);
		RETURN e.state;
	END IF;
	UPDATE evmgmt.escalation
	SET state = 'acknowledged', acknowledged_at = v_now, acknowledged_by = v_contact, ack_note = p_note,
		ended_at = v_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'acknowledged'
	WHERE escalation_id = p_id;
	PERFORM evmgmt.cancel_unsent(p_id);
	-- an acknowledgment is a response
	UPDATE evmgmt.target_timer t
	SET met_at = v_now, next_at = NULL
	WHERE t.event_id = e.event_id AND t.pool = e.pool AND t.target = 'response'
	  AND t.met_at IS NULL AND t.breached_at IS NULL;
	RETURN 'acknowledged';
END
$$;
COMMENT ON FUNCTION evmgmt.acknowledge(bigint, bigint, text) IS 'Acknowledges a running (or exhausted) escalation as a named contact (default: the contact of the session user): stops it at once and cancels unsent notifications (with require_all_ack, once every paged responder has acknowledged); returns the resulting state';

-- Acknowledge every running escalation of an event (one pool or all).
CREATE FUNCTION evmgmt.acknowledge_event(event_id bigint, pool evmgmt.pool DEFAULT NULL, contact_id bigint DEFAULT NULL,
										 note text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	x record;
	n integer := 0;
BEGIN
	FOR x IN SELECT e.escalation_id FROM evmgmt.escalation e
			 WHERE e.event_id = $1 AND ($2 IS NULL OR e.pool = $2) AND e.state IN ('active', 'exhausted')
			   AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a
							   WHERE a.escalation_id = e.escalation_id AND a.contact_id = evmgmt.acting_contact($3))
			 ORDER BY e.escalation_id
	LOOP
		PERFORM evmgmt.acknowledge(x.escalation_id, $3, $4);
		n := n + 1;
	END LOOP;
	IF n = 0 THEN
		RAISE EXCEPTION 'event % has no running escalation to acknowledge%', $1,
			CASE WHEN $2 IS NULL THEN '' ELSE ' in pool ' || $2 END
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.acknowledge_event(bigint, evmgmt.pool, bigint, text) IS 'Acknowledges every running escalation of an event (of one pool, or all pools for NULL); returns how many';

------------------------------------------------------------------------------
-- Footprint and status cadence
------------------------------------------------------------------------------

-- Members of the groups that stand for audiences at an event's site, with the
-- channels of each mapping.  Site rows of an audience replace its
-- operation-wide rows.
CREATE FUNCTION evmgmt.audience_members(operation_id text, site_id text, audiences text[])
	RETURNS TABLE (contact_id bigint, channel evmgmt.channel, audience text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT DISTINCT ON (m.contact_id, ch.channel) m.contact_id, ch.channel, ag.audience
	FROM evmgmt.audience_group ag
	JOIN evmgmt.group_member m ON m.group_id = ag.group_id
	CROSS JOIN LATERAL pg_catalog.unnest(ag.channels) AS ch(channel)
	WHERE ag.operation_id = audience_members.operation_id AND ag.audience = ANY (audiences)
	  AND (ag.site_id = audience_members.site_id
		   OR (ag.site_id IS NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.audience_group s
							   WHERE s.operation_id = ag.operation_id AND s.audience = ag.audience
								 AND s.site_id = audience_members.site_id)))
	ORDER BY m.contact_id, ch.channel, ag.audience
$$;
COMMENT ON FUNCTION evmgmt.audience_members(text, text, text[]) IS 'Contacts and channels of the groups mapped to footprint audiences for an operation and site (site-specific mappings win over operation-wide ones)';

-- Send a footprint message to audiences (and optionally to extra contacts);
-- returns the members who could not be reached, with the reason.
CREATE FUNCTION evmgmt.notify_audiences(p_event_id bigint, p_audiences text[], p_kind text, p_vars jsonb,
										p_now timestamptz, p_extra bigint[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	v_site text;
	v_gaps jsonb := '[]';
	r record;
	q record;
BEGIN
	SELECT e.operation_id, e.site_id INTO v_op, v_site FROM evmgmt.event e WHERE e.event_id = p_event_id;
	FOR r IN SELECT a.contact_id, a.channel FROM evmgmt.audience_members(v_op, v_site, p_audiences) a
			 UNION
			 SELECT p.contact_id, p.channel FROM evmgmt.paged_contacts(p_extra) p
			 ORDER BY 1, 2
	LOOP
		-- somebody who is both paged and in an audience hears it once
		CONTINUE WHEN EXISTS (SELECT FROM evmgmt.notification n
							  WHERE n.event_id = p_event_id AND n.kind = p_kind AND n.contact_id = r.contact_id
								AND n.channel = r.channel AND n.created_at = p_now AND n.state <> 'cancelled');
		SELECT * INTO q FROM evmgmt.notify_contact(p_kind, r.contact_id, r.channel, p_event_id, NULL, v_op, p_vars, p_now);
		IF q.outcome NOT IN ('queued', 'bundled') THEN
			v_gaps := v_gaps || pg_catalog.jsonb_build_object('contact_id', r.contact_id, 'channel', r.channel, 'outcome', q.outcome);
		END IF;
	END LOOP;
	RETURN v_gaps;
END
$$;
COMMENT ON FUNCTION evmgmt.notify_audiences(bigint, text[], text, jsonb, timestamptz, bigint[]) IS 'Queues a footprint message to the members of audiences (and to the contacts paged by the given escalations); returns who could not be reached and why';

-- Footprint rows of an operation's tier.
CREATE FUNCTION evmgmt.footprint_audiences(operation_id text, severity evmgmt.severity, moment text) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT COALESCE(pg_catalog.array_agg(f.audience ORDER BY f.audience), '{}')
		FROM evmgmt.effective_notification_footprint f
		WHERE f.operation_id = footprint_audiences.operation_id AND f.severity = footprint_audiences.severity
		  AND CASE moment WHEN 'open' THEN f.on_open WHEN 'status' THEN f.on_status ELSE f.on_resolve END);
COMMENT ON FUNCTION evmgmt.footprint_audiences(text, evmgmt.severity, text) IS 'Audiences of the effective footprint of a tier for a moment: open, status or resolve';

-- Called when a pool is classified or upgraded: the event's footprint follows
-- its most severe live pool.  Audiences of the tier that were not told yet
-- get the opened message; a more severe tier restarts the status cadence.
CREATE FUNCTION evmgmt.footprint_open(p_event_id bigint, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	v_floor evmgmt.severity;
	v_cadence interval;
	s evmgmt.status_schedule;
	v_new text[];
	v_gaps jsonb;
BEGIN
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event_id;
	SELECT pg_catalog.min(pc.severity) INTO v_floor FROM evmgmt.pool_condition pc
	WHERE pc.event_id = p_event_id AND pc.state NOT IN ('resolved', 'cancelled');
	IF v_floor IS NULL THEN
		RETURN;
	END IF;
	SELECT p.status_cadence INTO v_cadence FROM evmgmt.effective_severity_policy p
	WHERE p.operation_id = v_op AND p.severity = v_floor;

	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event_id FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO evmgmt.status_schedule (event_id, severity, cadence, started_at, next_status_at)
		VALUES (p_event_id, v_floor, v_cadence, p_now, p_now + v_cadence)
		RETURNING * INTO s;
	ELSIF s.ended_at IS NOT NULL OR v_floor < s.severity THEN
		UPDATE evmgmt.status_schedule
		SET severity = LEAST(v_floor, CASE WHEN s.ended_at IS NULL THEN s.severity END), cadence = v_cadence,
			next_status_at = p_now + v_cadence, ended_at = NULL, end_reason = NULL
		WHERE event_id = p_event_id
		RETURNING * INTO s;
	END IF;

	SELECT COALESCE(pg_catalog.array_agg(a), '{}') INTO v_new
	FROM pg_catalog.unnest(evmgmt.footprint_audiences(v_op, s.severity, 'open')) a
	WHERE NOT a = ANY (s.told_open);
	IF pg_catalog.cardinality(v_new) > 0 THEN
		v_gaps := evmgmt.notify_audiences(p_event_id, v_new, 'opened', evmgmt.event_facts(p_event_id), p_now);
		UPDATE evmgmt.status_schedule SET told_open = told_open || v_new, gaps = v_gaps WHERE event_id = p_event_id;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.footprint_open(bigint, timestamptz) IS 'Sends the opened message to the tier''s on_open audiences not told yet and (re)starts the status cadence when the event''s tier rises';

-- Called when no pool of the event is live any more.
CREATE FUNCTION evmgmt.footprint_close(p_event_id bigint, p_state text, p_why text, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	s evmgmt.status_schedule;
	v_sev evmgmt.severity;
	v_auds text[];
BEGIN
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event_id;
	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event_id FOR UPDATE;
	IF FOUND AND s.ended_at IS NOT NULL THEN
		RETURN;
	END IF;
	v_sev := COALESCE(s.severity, (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event_id));
	IF v_sev IS NULL THEN
		RETURN;
	END IF;
	IF s.event_id IS NULL THEN
		INSERT INTO evmgmt.status_schedule (event_id, severity, started_at, ended_at, end_reason)
		VALUES (p_event_id, v_sev, p_now, p_now, p_why);
	ELSE
		UPDATE evmgmt.status_schedule SET ended_at = p_now, end_reason = p_why, next_status_at = NULL
		WHERE event_id = p_event_id;
	END IF;
	-- resolved: the tier's on_resolve audiences; cancelled: whoever was told
	-- at open
	v_auds := CASE WHEN p_state = 'resolved' THEN evmgmt.footprint_audiences(v_op, v_sev, 'resolve')
				   ELSE COALESCE(s.told_open, '{}') END;
	IF pg_catalog.cardinality(v_auds) > 0 THEN
		UPDATE evmgmt.status_schedule
		SET gaps = evmgmt.notify_audiences(p_event_id, v_auds, 'resolved',
										   evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object('outcome', p_state, 'why', p_why),
										   p_now)
		WHERE event_id = p_event_id;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.footprint_close(bigint, text, text, timestamptz) IS 'Ends the status cadence of an event and sends the resolution message to the tier''s on_resolve audiences (a cancellation to those told at open)';

-- A status update is due and the owner posted none: the on_status audiences
-- get an automatic status and the overdue update escalates.
CREATE FUNCTION evmgmt.status_tick(p_event_id bigint, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s evmgmt.status_schedule;
	v_op text;
	v_tz text;
	v_pool evmgmt.pool;
	v_last text;
	v_text text;
	v_next timestamptz;
BEGIN
	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event_id;
	SELECT e.operation_id, t.time_zone INTO v_op, v_tz
	FROM evmgmt.event e JOIN evmgmt.site t ON t.site_id = e.site_id WHERE e.event_id = p_event_id;
	SELECT pc.pool INTO v_pool FROM evmgmt.pool_condition pc
	WHERE pc.event_id = p_event_id AND pc.state NOT IN ('resolved', 'cancelled') AND pc.severity IS NOT NULL
	ORDER BY pc.severity, pc.pool LIMIT 1;
	IF v_pool IS NULL THEN
		UPDATE evmgmt.status_schedule SET ended_at = p_now, end_reason = 'no live pool', next_status_at = NULL
		WHERE event_id = p_event_id;
		RETURN;
	END IF;

	SELECT t.reason INTO v_last FROM evmgmt.event_timeline t
	WHERE t.event_id = p_event_id AND t.action = 'status_update' ORDER BY t.at DESC, t.entry_id DESC LIMIT 1;
	v_text := CASE WHEN s.last_owner_update_at IS NULL
				   THEN 'No status update has been posted yet; the owner has been chased.'
				   ELSE 'No new status update since ' || pg_catalog.to_char(s.last_owner_update_at AT TIME ZONE v_tz, 'YYYY-MM-DD HH24:MI')
						|| ' ' || v_tz || '; the owner has been chased. Last update: ' || COALESCE(v_last, '') END;
	UPDATE evmgmt.status_schedule
	SET gaps = evmgmt.notify_audiences(p_event_id, evmgmt.footprint_audiences(v_op, s.severity, 'status'), 'status_update',
									   evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object('status', v_text, 'automatic', true),
									   p_now)
	WHERE event_id = p_event_id;

	IF NOT EXISTS (SELECT FROM evmgmt.escalation x
				   WHERE x.event_id = p_event_id AND x.start_reason = 'status_overdue' AND x.state = 'active') THEN
		PERFORM evmgmt.escalation_start(p_event_id, v_pool, 'status_overdue', p_now);
	END IF;

	-- the next one a cadence later; after an outage, only the latest is sent
	v_next := s.next_status_at + s.cadence;
	IF v_next <= p_now THEN
		v_next := s.next_status_at + s.cadence * (pg_catalog.floor(pg_catalog.date_part('epoch', p_now - s.next_status_at)
																   / pg_catalog.date_part('epoch', s.cadence)) + 1);
	END IF;
	UPDATE evmgmt.status_schedule SET last_status_at = p_now, next_status_at = v_next WHERE event_id = p_event_id;
END
$$;
COMMENT ON FUNCTION evmgmt.status_tick(bigint, timestamptz) IS 'Due status update without a post from the owner: automatic status to the on_status audiences, a status_overdue escalation, next due a cadence later';

-- The owner posts a status update: it goes into the timeline and at once to
-- the tier's on_status audiences, restarts the cadence clock and ends an
-- overdue-status escalation.
CREATE FUNCTION evmgmt.post_status_update(event_id bigint, status text,
										  now timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_text text := pg_catalog.btrim($2);
	p_now timestamptz := $3;
	v_op text;
	v_entry bigint;
	s evmgmt.status_schedule;
	x record;
BEGIN
	IF p_text IS NULL OR p_text = '' THEN
		RAISE EXCEPTION 'a status update needs a text' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	IF NOT EXISTS (SELECT FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event AND pc.state NOT IN ('resolved', 'cancelled'))
	   OR EXISTS (SELECT FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NOT NULL) THEN
		RAISE EXCEPTION 'event % has no live pool condition', p_event
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Status updates are for events that are still unresolved.';
	END IF;
	INSERT INTO evmgmt.event_timeline (event_id, at, action, reason)
	VALUES (p_event, p_now, 'status_update', p_text)
	RETURNING entry_id INTO v_entry;

	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NULL FOR UPDATE;
	IF FOUND THEN
		UPDATE evmgmt.status_schedule
		SET last_owner_update_at = p_now, last_status_at = p_now, next_status_at = p_now + s.cadence,
			gaps = evmgmt.notify_audiences(p_event, evmgmt.footprint_audiences(v_op, s.severity, 'status'), 'status_update',
										   evmgmt.event_facts(p_event) || pg_catalog.jsonb_build_object('status', p_text, 'automatic', false),
										   p_now)
		WHERE event_id = p_event;
	END IF;

	FOR x IN SELECT e.escalation_id FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND e.start_reason = 'status_overdue' AND e.state IN ('active', 'exhausted')
			 FOR UPDATE
	LOOP
		UPDATE evmgmt.escalation
		SET state = 'satisfied', ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'status update posted'
		WHERE escalation_id = x.escalation_id;
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
	END LOOP;
	RETURN v_entry;
END
$$;
COMMENT ON FUNCTION evmgmt.post_status_update(bigint, text, timestamptz) IS 'The owner''s status update: timeline entry status_update, sent at once to the tier''s on_status audiences, restarts the cadence clock and ends an overdue-status escalation; returns the timeline entry id';

------------------------------------------------------------------------------
-- Response and resolution target timers
------------------------------------------------------------------------------

-- Keep the target timers of a pool condition in step with its due times and
-- state.  Nothing is done while evmgmt.restoring is on.
CREATE FUNCTION evmgmt.target_timer_sync() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_lead interval := evmgmt.setting_interval('evmgmt.target_warning_lead', interval '10 minutes');
	-- the lifecycle counts targets from the detection; the condition opened then
	v_base timestamptz := NEW.opened_at;
	v_live boolean := NEW.state NOT IN ('resolved', 'cancelled');
	v_target text;
	v_due timestamptz;
	v_met boolean;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	FOREACH v_target IN ARRAY ARRAY['response', 'resolution'] LOOP
		v_due := CASE v_target WHEN 'response' THEN NEW.response_due ELSE NEW.resolution_due END;
		v_met := NOT v_live OR (v_target = 'response' AND NEW.first_response_at IS NOT NULL);
		IF v_due IS NULL THEN
			DELETE FROM evmgmt.target_timer
			WHERE event_id = NEW.event_id AND pool = NEW.pool AND target = v_target AND breached_at IS NULL;
			CONTINUE;
		END IF;
		INSERT INTO evmgmt.target_timer AS t (event_id, pool, target, due_at, warn_at, met_at)
		VALUES (NEW.event_id, NEW.pool, v_target, v_due,
				v_due - LEAST(v_lead, GREATEST(v_due - v_base, interval '0') / 2),
				CASE WHEN v_met THEN COALESCE(CASE v_target WHEN 'response' THEN NEW.first_response_at END,
											  NEW.resolved_at, pg_catalog.clock_timestamp()) END)
		ON CONFLICT (event_id, pool, target) DO UPDATE
		SET due_at = EXCLUDED.due_at, warn_at = EXCLUDED.warn_at,
			warned_at = CASE WHEN EXCLUDED.due_at > t.due_at THEN NULL ELSE t.warned_at END,
			-- a response stays met (an acknowledgment counts too); a resolution
			-- only while the condition is over (a reopened one runs again)
			met_at = CASE WHEN v_target = 'resolution' AND v_live THEN NULL ELSE COALESCE(t.met_at, EXCLUDED.met_at) END
		WHERE t.breached_at IS NULL;
		UPDATE evmgmt.target_timer t
		SET next_at = CASE WHEN t.met_at IS NOT NULL OR t.breached_at IS NOT NULL THEN NULL
						   WHEN t.warned_at IS NULL AND t.warn_at < t.due_at THEN t.warn_at
						   ELSE t.due_at END
		WHERE t.event_id = NEW.event_id AND t.pool = NEW.pool AND t.target = v_target;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.target_timer_sync() IS 'Trigger: keeps target_timer in step with pool_condition.response_due, resolution_due, first_response_at and state';
-- UPDATE only: the lifecycle sets due times by updating a condition it
-- inserted as detected, while a restore (plain or not) only inserts and
-- brings the timers along in its own COPY of target_timer.
CREATE TRIGGER target_timer_sync AFTER UPDATE OF response_due, resolution_due, first_response_at, state, classified_at
	ON evmgmt.pool_condition FOR EACH ROW EXECUTE FUNCTION evmgmt.target_timer_sync();

-- A target timer is due: warn before the breach, escalate at the breach.
CREATE FUNCTION evmgmt.target_timer_fire(p_event_id bigint, p_pool evmgmt.pool, p_target text, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t evmgmt.target_timer;
	pc evmgmt.pool_condition;
	v_op text;
	v_tz text;
	v_esc bigint;
	v_ids bigint[];
	v_vars jsonb;
BEGIN
	SELECT * INTO t FROM evmgmt.target_timer x WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
	SELECT * INTO pc FROM evmgmt.pool_condition x WHERE x.event_id = p_event_id AND x.pool = p_pool;
	IF pc.state IN ('resolved', 'cancelled') OR (p_target = 'response' AND pc.first_response_at IS NOT NULL) THEN
		UPDATE evmgmt.target_timer x SET met_at = p_now, next_at = NULL
		WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
		RETURN;
	END IF;
	SELECT e.operation_id, s.time_zone INTO v_op, v_tz
	FROM evmgmt.event e JOIN evmgmt.site s ON s.site_id = e.site_id WHERE e.event_id = p_event_id;
	SELECT COALESCE(pg_catalog.array_agg(x.escalation_id), '{}') INTO v_ids
	FROM evmgmt.escalation x WHERE x.event_id = p_event_id AND x.pool = p_pool;
	v_vars := evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object(
		'target', p_target, 'pool', p_pool,
		'due', pg_catalog.to_char(t.due_at AT TIME ZONE v_tz, 'YYYY-MM-DD HH24:MI') || ' ' || v_tz,
		'due_at', t.due_at,
		'remaining', pg_catalog.ceil(GREATEST(pg_catalog.date_part('epoch', t.due_at - p_now), 0) / 60) || ' min');

	IF t.warned_at IS NULL AND p_now < t.due_at THEN
		-- the responders paged so far and the tier's open/status audiences
		PERFORM evmgmt.notify_audiences(p_event_id,
			evmgmt.footprint_audiences(v_op, pc.severity, 'open') || evmgmt.footprint_audiences(v_op, pc.severity, 'status'),
			'target_warning', v_vars, p_now, v_ids);
		UPDATE evmgmt.target_timer x SET warned_at = p_now, next_at = x.due_at
		WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
		RETURN;
	END IF;

	INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, reason, details)
	VALUES (p_event_id, p_pool, p_now, 'note', p_target || ' target breached',
			pg_catalog.jsonb_build_object('target', p_target, 'due_at', t.due_at, 'warned_at', t.warned_at));
	v_esc := evmgmt.escalation_start(p_event_id, p_pool, p_target || '_breach', p_now);
	IF v_esc IS NULL THEN
		-- no plan for breaches: never silent, tell the same people as the warning
		PERFORM evmgmt.notify_audiences(p_event_id,
			evmgmt.footprint_audiences(v_op, pc.severity, 'open') || evmgmt.footprint_audiences(v_op, pc.severity, 'status'),
			'target_breach', v_vars, p_now, v_ids);
	END IF;
	UPDATE evmgmt.target_timer x SET breached_at = p_now, next_at = NULL, escalation_id = v_esc
	WHERE x.event_id = p_event_id AND x.pool = p_pool AND x.target = p_target;
END
$$;
COMMENT ON FUNCTION evmgmt.target_timer_fire(bigint, evmgmt.pool, text, timestamptz) IS 'Handles a due target timer: the warning before the breach, and at the breach a timeline note and an escalation of its own (response_breach / resolution_breach)';

------------------------------------------------------------------------------
-- The driver
------------------------------------------------------------------------------

-- Fire everything that is due at now, in the caller's transaction, and say
-- when something is due next.
CREATE FUNCTION evmgmt.run_due_work(now timestamptz DEFAULT pg_catalog.clock_timestamp()) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_now timestamptz := $1;
	v_batch integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.escalation_batch_size', true), '')::integer, 500);
	v_more boolean := false;
	v_busy boolean := false;
	v_next timestamptz;
	n integer;
	r record;
BEGIN
	IF p_now IS NULL THEN
		RAISE EXCEPTION 'run_due_work needs a moment' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	-- Candidates are read without locks; each is then taken event first
	-- (SKIP LOCKED: a busy event waits for the next call) and re-checked
	-- under its own row lock, so a concurrent caller never fires it twice.
	n := 0;
	FOR r IN SELECT t.event_id, t.pool, t.target FROM evmgmt.target_timer t
			 WHERE t.next_at <= p_now ORDER BY t.next_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.target_timer t
		WHERE t.event_id = r.event_id AND t.pool = r.pool AND t.target = r.target AND t.next_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.target_timer_fire(r.event_id, r.pool, r.target, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT s.event_id FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at <= p_now ORDER BY s.next_status_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.status_schedule s
		WHERE s.event_id = r.event_id AND s.ended_at IS NULL AND s.next_status_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.status_tick(r.event_id, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT e.escalation_id, e.event_id FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at <= p_now ORDER BY e.next_due_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.escalation e
		WHERE e.escalation_id = r.escalation_id AND e.state = 'active' AND e.next_due_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.escalation_advance(r.escalation_id, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	IF v_more THEN
		RETURN p_now;
	END IF;
	v_next := LEAST((SELECT pg_catalog.min(e.next_due_at) FROM evmgmt.escalation e WHERE e.state = 'active'),
					(SELECT pg_catalog.min(s.next_status_at) FROM evmgmt.status_schedule s WHERE s.ended_at IS NULL),
					(SELECT pg_catalog.min(t.next_at) FROM evmgmt.target_timer t WHERE t.next_at IS NOT NULL));
	-- what is left due belongs to events busy elsewhere: look again shortly
	-- rather than at once
	IF v_busy AND v_next <= p_now THEN
		v_next := p_now + interval '1 second';
	END IF;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.run_due_work(timestamptz) IS 'Fires every due target timer, status update and escalation step at the given moment in the caller''s transaction (event, then row, locked with SKIP LOCKED, so concurrent callers never double-fire and never wait) and returns when something is due next (NULL: nothing scheduled; the given moment: more is due than one batch; a second later when what is due belongs to events busy in other transactions)';

------------------------------------------------------------------------------
-- Reporting views
------------------------------------------------------------------------------

-- One row per escalation for BI tools: where it stands.
CREATE VIEW evmgmt.escalation_status AS
SELECT e.escalation_id, e.event_id, e.pool, ev.site_id, e.plan_id, e.plan_snapshot ->> 'name' AS plan_name,
	   e.start_reason, e.state, e.started_at, e.cycle,
	   l.step_no AS current_step, l.fired_at AS current_step_at,
	   GREATEST(e.started_at, l.fired_at, e.acknowledged_at, e.ended_at, a.last_ack_at) AS last_update,
	   e.next_step_no AS next_step, NULLIF(e.next_retry_no, 0) AS next_voice_retry, e.next_due_at,
	   COALESCE(p.contacts_paged, 0) AS contacts_paged, COALESCE(a.acks, 0) AS acks,
	   e.acknowledged_at, e.acknowledged_by, c.name AS acknowledged_by_name, e.ack_note,
	   e.ended_at, e.end_reason
FROM evmgmt.escalation e
JOIN evmgmt.event ev ON ev.event_id = e.event_id
LEFT JOIN evmgmt.contact c ON c.contact_id = e.acknowledged_by
LEFT JOIN LATERAL (SELECT r.step_no, r.fired_at FROM evmgmt.escalation_step_run r
				   WHERE r.escalation_id = e.escalation_id AND r.outcome <> 'held'
				   ORDER BY r.run_id DESC LIMIT 1) l ON true
LEFT JOIN LATERAL (SELECT pg_catalog.count(DISTINCT r.contact_id) AS contacts_paged FROM evmgmt.escalation_step_run r
				   WHERE r.escalation_id = e.escalation_id AND r.outcome IN ('queued', 'bundled')) p ON true
LEFT JOIN LATERAL (SELECT pg_catalog.count(*) AS acks, pg_catalog.max(k.acked_at) AS last_ack_at FROM evmgmt.escalation_ack k
				   WHERE k.escalation_id = e.escalation_id) a ON true;
COMMENT ON VIEW evmgmt.escalation_status IS 'One row per escalation: plan, state, current (last fired) step, last update, next due step and time, acknowledgment (when, by whom)';

-- One row per step firing and recipient for BI tools: what happened.
CREATE VIEW evmgmt.escalation_history AS
SELECT r.run_id, r.escalation_id, e.event_id, e.pool, e.plan_id, e.start_reason, r.cycle, r.step_no, r.retry_no,
	   r.scheduled_at, r.due_at, r.fired_at, r.fired_at - r.due_at AS late_by,
	   r.channel, r.contact_id, c.name AS contact_name,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN r.recipient
			ELSE evmgmt.mask_address(r.recipient) END AS recipient,
	   r.outcome, r.detail, r.notification_id,
	   n.kind AS notification_kind, n.state AS delivery_state, n.attempts AS delivery_attempts, n.sent_at,
	   n.last_status AS delivery_status,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN n.last_error
			WHEN n.last_error IS NOT NULL THEN '(hidden)' END AS delivery_error,
	   d.finished_at AS last_attempt_at, d.finished_at - d.started_at AS last_attempt_latency,
	   k.acked_at AS recipient_acknowledged_at,
	   e.acknowledged_at, ac.name AS acknowledged_by
FROM evmgmt.escalation_step_run r
JOIN evmgmt.escalation e ON e.escalation_id = r.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = r.contact_id
LEFT JOIN evmgmt.notification n ON n.notification_id = r.notification_id
LEFT JOIN LATERAL (SELECT x.started_at, x.finished_at FROM evmgmt.delivery_attempt x
				   WHERE x.notification_id = r.notification_id ORDER BY x.attempt_no DESC LIMIT 1) d ON true
LEFT JOIN evmgmt.escalation_ack k ON k.escalation_id = r.escalation_id AND k.contact_id = r.contact_id
LEFT JOIN evmgmt.contact ac ON ac.contact_id = e.acknowledged_by;
COMMENT ON VIEW evmgmt.escalation_history IS 'Every step an escalation fired, per recipient: scheduled, due and fired time, late_by, channel, recipient (masked unless the reader is a responder), typed outcome, delivery result, acknowledgment';

------------------------------------------------------------------------------
-- Privileges
------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
	evmgmt.fill_template_fields(text, jsonb), evmgmt.event_facts(bigint),
	evmgmt.render_message(text, evmgmt.channel, text, jsonb), evmgmt.render_digest(evmgmt.channel, jsonb),
	evmgmt.enqueue_notification(text, evmgmt.channel, text, bigint, text, bigint, bigint, text, text, text, jsonb, timestamptz),
	evmgmt.cancel_unsent(bigint, bigint), evmgmt.notification_drop_stale_retry(),
	evmgmt.notify_contact(text, bigint, evmgmt.channel, bigint, bigint, text, jsonb, timestamptz),
	evmgmt.notify_endpoint(text, text, bigint, bigint, text, jsonb, timestamptz),
	evmgmt.escalation_plan_check(), evmgmt.plan_snapshot(text), evmgmt.step_recipients(jsonb, timestamptz),
	evmgmt.escalation_advance(bigint, timestamptz), evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.paged_contacts(bigint[]), evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.acting_contact(bigint), evmgmt.acknowledge(bigint, bigint, text),
	evmgmt.acknowledge_event(bigint, evmgmt.pool, bigint, text),
	evmgmt.audience_members(text, text, text[]), evmgmt.notify_audiences(bigint, text[], text, jsonb, timestamptz, bigint[]),
	evmgmt.footprint_open(bigint, timestamptz), evmgmt.footprint_close(bigint, text, text, timestamptz),
	evmgmt.status_tick(bigint, timestamptz), evmgmt.post_status_update(bigint, text, timestamptz),
	evmgmt.target_timer_sync(), evmgmt.target_timer_fire(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.run_due_work(timestamptz), evmgmt.lock_event(bigint, boolean)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.acknowledge(bigint, bigint, text), evmgmt.acknowledge_event(bigint, evmgmt.pool, bigint, text),
	evmgmt.post_status_update(bigint, text, timestamptz)
	TO evmgmt_responder;
GRANT EXECUTE ON FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz), evmgmt.run_due_work(timestamptz),
	evmgmt.render_message(text, evmgmt.channel, text, jsonb), evmgmt.event_facts(bigint), evmgmt.fill_template_fields(text, jsonb)
	TO evmgmt_admin;
-- Background workers and the notification dispatcher (src/launcher.c,
-- src/worker.c, src/dispatch.c): the wake-up on commit, the triggers that
-- call it, the Standard Webhooks signature, and the columns the dispatcher
-- keeps on the outbox.

ALTER TABLE evmgmt.notification ADD COLUMN claimed_at timestamptz;
COMMENT ON COLUMN evmgmt.notification.claimed_at IS 'When the dispatcher last claimed the notification (start of the latest attempt)';
COMMENT ON COLUMN evmgmt.notification.lease_until IS 'While sending: the claim expires then, and a claim left by a crashed worker is retried';
COMMENT ON COLUMN evmgmt.notification.next_attempt_at IS 'When the notification is due (first attempt, or the next retry after backoff or Retry-After)';
COMMENT ON COLUMN evmgmt.notification.last_error IS 'Error of the latest failed attempt (kept when the notification is dead)';

ALTER TABLE evmgmt.delivery_attempt
	ADD COLUMN latency interval GENERATED ALWAYS AS (finished_at - started_at) STORED;
COMMENT ON COLUMN evmgmt.delivery_attempt.latency IS 'Time from the start of the attempt to its result';
COMMENT ON COLUMN evmgmt.delivery_attempt.status_code IS 'HTTP status, or the last SMTP reply code; NULL when no answer came';

-- The retention purge asks whether an escalation's history still points at
-- a notification.
CREATE INDEX escalation_step_run_notification_idx ON evmgmt.escalation_step_run (notification_id)
	WHERE notification_id IS NOT NULL;

CREATE FUNCTION evmgmt.wake_workers() RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_wake_workers';
COMMENT ON FUNCTION evmgmt.wake_workers() IS 'Wake this database''s evmgmt worker when the calling transaction commits (nothing happens on abort)';

CREATE FUNCTION evmgmt.wake_workers_trigger() RETURNS trigger
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_wake_workers_trigger';
COMMENT ON FUNCTION evmgmt.wake_workers_trigger() IS 'Statement trigger: wake the worker at commit when due work was written (not while evmgmt.restoring is on)';

CREATE TRIGGER wake_workers AFTER INSERT OR UPDATE OF state, next_attempt_at ON evmgmt.notification
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.wake_workers_trigger();
CREATE TRIGGER wake_workers AFTER INSERT OR UPDATE OF state, next_due_at ON evmgmt.escalation
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.wake_workers_trigger();

CREATE FUNCTION evmgmt.webhook_signature(secret text, msg_id text, ts bigint, body text) RETURNS text
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_webhook_signature';
COMMENT ON FUNCTION evmgmt.webhook_signature(text, text, bigint, text) IS 'Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of "msg_id.ts.body" (a whsec_ secret is base64-decoded first)';

REVOKE ALL ON FUNCTION evmgmt.wake_workers(), evmgmt.wake_workers_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.wake_workers() TO evmgmt_admin, evmgmt_responder, evmgmt_ingest;
-- Interval statistics loaded by WFM ETL jobs, and the quarantine path.
--
-- interval_stat is built for COPY at volume (20,000 seats, 15-minute intervals,
-- a year kept is on the order of 10^8 rows): fixed-width columns, one primary
-- key led by time (loads append at the right edge), codes in the "C"
-- collation, CHECK constraints instead of triggers.  A bad row makes the whole COPY fail with
-- the named constraint.  ETL jobs that prefer to keep going load into
-- interval_inbox instead: good rows reach interval_stat, bad rows land in
-- interval_quarantine with the reason, nothing is lost.

CREATE TABLE evmgmt.interval_stat (
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site,
	queue_id		text COLLATE "C" NOT NULL REFERENCES evmgmt.queue,
	pool			evmgmt.pool NOT NULL,
	interval_start	timestamptz NOT NULL,
	interval_minutes smallint NOT NULL
		CONSTRAINT interval_stat_length_divides_hour CHECK (interval_minutes > 0 AND 60 % interval_minutes = 0),
	offered			integer NOT NULL CONSTRAINT interval_stat_offered_not_negative CHECK (offered >= 0),
	handled			integer NOT NULL CONSTRAINT interval_stat_handled_not_negative CHECK (handled >= 0),
	abandoned		integer NOT NULL DEFAULT 0 CONSTRAINT interval_stat_abandoned_not_negative CHECK (abandoned >= 0),
	answered_in_threshold integer NOT NULL CONSTRAINT interval_stat_answered_not_negative CHECK (answered_in_threshold >= 0),
	threshold_seconds integer NOT NULL CONSTRAINT interval_stat_threshold_positive CHECK (threshold_seconds > 0),
	aht_seconds		real CONSTRAINT interval_stat_aht_positive CHECK (aht_seconds > 0 AND aht_seconds < 'Infinity'),
	staffed			real CONSTRAINT interval_stat_staffed_not_negative CHECK (staffed >= 0 AND staffed < 'Infinity'),
	scheduled		real CONSTRAINT interval_stat_scheduled_not_negative CHECK (scheduled >= 0 AND scheduled < 'Infinity'),
	forecast_offered real CONSTRAINT interval_stat_forecast_offered_not_negative CHECK (forecast_offered >= 0 AND forecast_offered < 'Infinity'),
	forecast_aht	real CONSTRAINT interval_stat_forecast_aht_positive CHECK (forecast_aht > 0 AND forecast_aht < 'Infinity'),
	-- The relational checks hold vacuously when a count is already wrong on its
	-- own, so that a bad row is reported by the most specific constraint.
	CONSTRAINT interval_stat_handled_not_more_than_offered CHECK (offered < 0 OR handled < 0 OR handled <= offered),
	CONSTRAINT interval_stat_abandoned_not_more_than_offered CHECK (
		offered < 0 OR handled < 0 OR abandoned < 0 OR handled > offered OR abandoned <= offered - handled),
	CONSTRAINT interval_stat_answered_not_more_than_handled CHECK (
		handled < 0 OR answered_in_threshold < 0 OR handled > offered OR answered_in_threshold <= handled),
	-- on a whole minute, aligned to the interval length (at most 15 minutes, so
	-- that sites in zones offset by 30 or 45 minutes keep their local boundaries)
	-- (the epoch of an aligned start divided by the alignment is a whole number,
	-- exactly representable in float8; float arithmetic is much cheaper per row
	-- than numeric)
	CONSTRAINT interval_stat_start_aligned CHECK (
		pg_catalog.date_part('epoch', interval_start) / (60 * pg_catalog.gcd(interval_minutes::integer, 15)) =
		pg_catalog.trunc(pg_catalog.date_part('epoch', interval_start) / (60 * pg_catalog.gcd(interval_minutes::integer, 15)))),
	-- Time leads the key: ETL loads arrive in time order and then append to the
	-- right edge of the index; the recent-window reads of classification are
	-- range scans on it.
	PRIMARY KEY (interval_start, site_id, queue_id, pool)
);
COMMENT ON TABLE evmgmt.interval_stat IS 'Interval statistics per site, queue and pool loaded by WFM ETL (COPY); each bad row is refused with a named constraint';
COMMENT ON COLUMN evmgmt.interval_stat.interval_minutes IS 'Interval length in minutes; must divide the hour (5, 10, 15, 20, 30, 60, ...)';
COMMENT ON COLUMN evmgmt.interval_stat.answered_in_threshold IS 'Contacts answered within threshold_seconds: service level = answered_in_threshold / offered';
COMMENT ON COLUMN evmgmt.interval_stat.staffed IS 'Agents staffed (logged in, average over the interval)';
COMMENT ON COLUMN evmgmt.interval_stat.scheduled IS 'Agents scheduled for the interval';

-- The forgiving entry point: every column is text so that even a value that
-- does not parse is kept.  Rows are never stored here: the trigger moves each
-- one into interval_stat or, with the error, into interval_quarantine.
CREATE TABLE evmgmt.interval_inbox (
	site_id text, queue_id text, pool text, interval_start text, interval_minutes text,
	offered text, handled text, abandoned text, answered_in_threshold text, threshold_seconds text,
	aht_seconds text, staffed text, scheduled text, forecast_offered text, forecast_aht text
);
COMMENT ON TABLE evmgmt.interval_inbox IS 'COPY target that never fails on a bad row: good rows go to interval_stat, bad rows to interval_quarantine with the reason (always empty itself)';

CREATE TABLE evmgmt.interval_quarantine (
	quarantine_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	received_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	received_by		text NOT NULL DEFAULT SESSION_USER,
	row_data		jsonb NOT NULL,
	sqlstate		text NOT NULL,
	reason			text NOT NULL,
	detail			text,
	constraint_name	text
);
CREATE INDEX ON evmgmt.interval_quarantine (received_at);
COMMENT ON TABLE evmgmt.interval_quarantine IS 'Interval rows refused by interval_inbox, kept with the error, so that no loaded row is silently lost';

-- Move one inbox row into interval_stat, or into quarantine with the error.
CREATE FUNCTION evmgmt.interval_inbox_route() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_state text;
	v_msg text;
	v_detail text;
	v_constraint text;
BEGIN
	BEGIN
		INSERT INTO evmgmt.interval_stat
			(site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned,
			 answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
		VALUES (NEW.site_id, NEW.queue_id, NEW.pool::evmgmt.pool, NEW.interval_start::timestamptz,
				NEW.interval_minutes::smallint, NEW.offered::integer, NEW.handled::integer,
				COALESCE(NEW.abandoned, '0')::integer, NEW.answered_in_threshold::integer,
				NEW.threshold_seconds::integer, NEW.aht_seconds::real, NEW.staffed::real, NEW.scheduled::real,
				NEW.forecast_offered::real, NEW.forecast_aht::real);
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
								v_detail = PG_EXCEPTION_DETAIL, v_constraint = CONSTRAINT_NAME;
		INSERT INTO evmgmt.interval_quarantine (row_data, sqlstate, reason, detail, constraint_name)
		VALUES (pg_catalog.to_jsonb(NEW), v_state, v_msg, NULLIF(v_detail, ''), NULLIF(v_constraint, ''));
	END;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_inbox_route() IS 'Trigger: routes an interval_inbox row to interval_stat or, with its error, to interval_quarantine';
CREATE TRIGGER interval_inbox_route BEFORE INSERT ON evmgmt.interval_inbox
	FOR EACH ROW EXECUTE FUNCTION evmgmt.interval_inbox_route();
-- Severity classification from the service-level signal (C: src/classify.c).
--
-- Boundary rules (docs/lifecycle.md, "Classification"): a tier with threshold
-- t and sustain time s applies when the service level is below t (sl < t;
-- for t = 0, an outage, sl = 0) for longer than s minutes (minutes > s; s = 0
-- means at once).  Tiers are tried sev1, sev2, sev3; the first that applies
-- wins; none applies: NULL, no event.

-- Service level of an interval; NULL when nothing was offered (no signal).
CREATE FUNCTION evmgmt.interval_service_level(answered_in_threshold integer, offered integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'evmgmt_interval_service_level'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.interval_service_level(integer, integer) IS 'answered_in_threshold / offered; NULL when offered = 0 (no signal: such an interval breaks a sustained run)';

CREATE FUNCTION evmgmt.classify_severity(service_level double precision, sustained_minutes double precision,
										 sev1_threshold double precision, sev1_sustain integer,
										 sev2_threshold double precision, sev2_sustain integer,
										 sev3_threshold double precision, sev3_sustain integer)
RETURNS evmgmt.severity
AS 'MODULE_PATHNAME', 'evmgmt_classify_severity'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.classify_severity(double precision, double precision, double precision, integer, double precision, integer, double precision, integer) IS 'Tier for a service level held for sustained_minutes under the given thresholds and sustain times (NULL threshold: tier not signal-driven); NULL when no tier applies';

CREATE FUNCTION evmgmt.classify_sustained_runs(sev1_minutes double precision, sev2_minutes double precision,
											   sev3_minutes double precision, sev1_sustain integer,
											   sev2_sustain integer, sev3_sustain integer)
RETURNS evmgmt.severity
AS 'MODULE_PATHNAME', 'evmgmt_classify_sustained_runs'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.classify_sustained_runs(double precision, double precision, double precision, integer, integer, integer) IS 'Tier from the trailing run (minutes) below each tier''s own threshold, as computed by sustained_minutes_below; 0 means not below now';

CREATE FUNCTION evmgmt.sustained_below_transfn(internal, double precision, double precision, timestamptz, integer)
RETURNS internal
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_transfn(internal, double precision, double precision, timestamptz, integer) IS 'Transition function of sustained_minutes_below';

CREATE FUNCTION evmgmt.sustained_below_finalfn(internal)
RETURNS double precision
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_finalfn(internal) IS 'Final function of sustained_minutes_below';

CREATE AGGREGATE evmgmt.sustained_minutes_below(service_level double precision, threshold double precision,
												interval_start timestamptz, interval_minutes integer) (
	SFUNC = evmgmt.sustained_below_transfn,
	STYPE = internal,
	FINALFUNC = evmgmt.sustained_below_finalfn
);
COMMENT ON AGGREGATE evmgmt.sustained_minutes_below(double precision, double precision, timestamptz, integer) IS 'Over the intervals of one series (any input order): minutes of the trailing run of contiguous intervals below the threshold (a gap or a NULL service level breaks it); usable as a window function';

CREATE FUNCTION evmgmt.sustained_below_array_transfn(internal, double precision, double precision[], timestamptz, integer)
RETURNS internal
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_array_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_array_transfn(internal, double precision, double precision[], timestamptz, integer) IS 'Transition function of sustained_runs_below';

CREATE FUNCTION evmgmt.sustained_below_array_finalfn(internal)
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_array_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_array_finalfn(internal) IS 'Final function of sustained_runs_below';

CREATE AGGREGATE evmgmt.sustained_runs_below(service_level double precision, thresholds double precision[],
												interval_start timestamptz, interval_minutes integer) (
	SFUNC = evmgmt.sustained_below_array_transfn,
	STYPE = internal,
	FINALFUNC = evmgmt.sustained_below_array_finalfn
);
COMMENT ON AGGREGATE evmgmt.sustained_runs_below(double precision, double precision[], timestamptz, integer) IS 'sustained_minutes_below for several thresholds in one pass (taken from the first row): the trailing run below each, NULL for a NULL threshold';

-- The signal thresholds of each operation, one row per operation.
CREATE VIEW evmgmt.severity_thresholds AS
SELECT p.operation_id,
	   pg_catalog.max(p.sl_threshold) FILTER (WHERE p.severity = 'sev1') AS sev1_threshold,
	   pg_catalog.max(p.sustain_minutes) FILTER (WHERE p.severity = 'sev1') AS sev1_sustain,
	   pg_catalog.max(p.sl_threshold) FILTER (WHERE p.severity = 'sev2') AS sev2_threshold,
	   pg_catalog.max(p.sustain_minutes) FILTER (WHERE p.severity = 'sev2') AS sev2_sustain,
	   pg_catalog.max(p.sl_threshold) FILTER (WHERE p.severity = 'sev3') AS sev3_threshold,
	   pg_catalog.max(p.sustain_minutes) FILTER (WHERE p.severity = 'sev3') AS sev3_sustain
FROM evmgmt.effective_severity_policy p
GROUP BY p.operation_id;
COMMENT ON VIEW evmgmt.severity_thresholds IS 'Effective service-level thresholds and sustain times of sev1..sev3, one row per operation';

CREATE FUNCTION evmgmt.classify_severity(operation_id text, service_level double precision, sustained_minutes double precision)
RETURNS evmgmt.severity
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT evmgmt.classify_severity(classify_severity.service_level, classify_severity.sustained_minutes,
									t.sev1_threshold, t.sev1_sustain, t.sev2_threshold, t.sev2_sustain,
									t.sev3_threshold, t.sev3_sustain)
	FROM evmgmt.severity_thresholds t
	WHERE t.operation_id = classify_severity.operation_id;
END;
COMMENT ON FUNCTION evmgmt.classify_severity(text, double precision, double precision) IS 'Tier for a service level held for sustained_minutes under the operation''s effective (calibrated) policy';

-- The latest state of every (site, queue, pool) series: the trailing run
-- below each tier's threshold over the complete intervals in
-- (at - lookback, at], and the tier that gives.
CREATE FUNCTION evmgmt.classify_series(at timestamptz DEFAULT pg_catalog.now(), lookback interval DEFAULT '1 day',
									   site_id text DEFAULT NULL, queue_id text DEFAULT NULL,
									   pool evmgmt.pool DEFAULT NULL)
RETURNS TABLE (operation_id text, site_id text, queue_id text, pool evmgmt.pool,
			   last_interval_start timestamptz, last_interval_end timestamptz, service_level double precision,
			   minutes_below_sev1 double precision, minutes_below_sev2 double precision,
			   minutes_below_sev3 double precision, severity evmgmt.severity)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT r.operation_id, r.site_id, r.queue_id, r.pool, r.last_start,
		   r.last_start + l.interval_minutes * interval '1 minute',
		   evmgmt.interval_service_level(l.answered_in_threshold, l.offered),
		   r.runs[1], r.runs[2], r.runs[3],
		   evmgmt.classify_sustained_runs(r.runs[1], r.runs[2], r.runs[3], t.sev1_sustain, t.sev2_sustain, t.sev3_sustain)
	FROM (
		-- no ORDER BY in the aggregate: it orders the intervals itself, so
		-- the groups can be hashed instead of sorting every row
		SELECT si.operation_id, s.site_id, s.queue_id, s.pool,
			   pg_catalog.max(s.interval_start) AS last_start,
			   evmgmt.sustained_runs_below(evmgmt.interval_service_level(s.answered_in_threshold, s.offered),
										   ARRAY[t.sev1_threshold, t.sev2_threshold, t.sev3_threshold],
										   s.interval_start, s.interval_minutes) AS runs
		FROM evmgmt.interval_stat s
		JOIN evmgmt.site si ON si.site_id = s.site_id
		JOIN evmgmt.severity_thresholds t ON t.operation_id = si.operation_id
		WHERE s.interval_start > classify_series.at - classify_series.lookback
		  AND s.interval_start + s.interval_minutes * interval '1 minute' <= classify_series.at
		  AND (classify_series.site_id IS NULL OR s.site_id = classify_series.site_id)
		  AND (classify_series.queue_id IS NULL OR s.queue_id = classify_series.queue_id)
		  AND (classify_series.pool IS NULL OR s.pool = classify_series.pool)
		GROUP BY si.operation_id, s.site_id, s.queue_id, s.pool
	) r
	JOIN evmgmt.severity_thresholds t ON t.operation_id = r.operation_id
	JOIN evmgmt.interval_stat l ON l.interval_start = r.last_start AND l.site_id = r.site_id
							   AND l.queue_id = r.queue_id AND l.pool = r.pool
	ORDER BY r.operation_id, r.site_id, r.queue_id, r.pool;
END;
COMMENT ON FUNCTION evmgmt.classify_series(timestamptz, interval, text, text, evmgmt.pool) IS 'Latest classification of every (site, queue, pool) interval series (or those of one site, queue or pool) at a time, over the complete intervals within lookback: trailing minutes below each tier''s threshold and the tier';

CREATE VIEW evmgmt.series_severity AS
SELECT * FROM evmgmt.classify_series();
COMMENT ON VIEW evmgmt.series_severity IS 'Current classification of every (site, queue, pool) interval series over the last day of complete intervals';
-- The append-only audit trail: who changed which configuration or event row,
-- when, from what to what.  Contact addresses are masked and secrets never
-- recorded.  Nobody, evmgmt_admin included, can change or delete audit rows.

CREATE TABLE evmgmt.audit_log (
	audit_id		uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	at				timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	txid			bigint NOT NULL DEFAULT pg_catalog.txid_current(),
	actor			text NOT NULL DEFAULT SESSION_USER,
	role_used		text NOT NULL,
	action			text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
	table_name		text NOT NULL,
	old_row			jsonb,
	new_row			jsonb
);
CREATE INDEX ON evmgmt.audit_log (at);
CREATE INDEX ON evmgmt.audit_log (table_name, at);
COMMENT ON TABLE evmgmt.audit_log IS 'Append-only audit trail of changes to configuration and event tables (actor = session_user; contact addresses masked, secrets omitted)';
COMMENT ON COLUMN evmgmt.audit_log.role_used IS 'The role taken with SET ROLE when the change was made, or none';

-- Row image fit for the audit trail: secrets dropped, contact addresses masked.
CREATE FUNCTION evmgmt.audit_image(tbl text, r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN r IS NULL THEN NULL
	WHEN tbl = 'provider_secret' THEN r - 'secret' || '{"secret": "***"}'
	-- the plan snapshot is kept in the escalation itself; the plan's edits are audited
	WHEN tbl = 'escalation' THEN r - 'plan_snapshot'
	WHEN tbl IN ('contact_channel', 'notification') THEN r || pg_catalog.jsonb_build_object('address', evmgmt.mask_address(r ->> 'address'), 'recipient', evmgmt.mask_address(r ->> 'recipient')) - CASE WHEN tbl = 'notification' THEN 'address' ELSE 'recipient' END
	ELSE r
END;
COMMENT ON FUNCTION evmgmt.audit_image(text, jsonb) IS 'The row image written to audit_log: secrets replaced by ***, contact addresses masked';

-- Writes one audit row per changed row.  SECURITY DEFINER so that roles without
-- any privilege on audit_log are still audited.  While a superuser restores a
-- dump with evmgmt.restoring = on, the restored rows are not audited again.
CREATE FUNCTION evmgmt.audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	INSERT INTO evmgmt.audit_log (role_used, action, table_name, old_row, new_row)
	VALUES (pg_catalog.current_setting('role') , TG_OP, TG_TABLE_NAME,
			CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN evmgmt.audit_image(TG_TABLE_NAME, pg_catalog.to_jsonb(OLD)) END,
			CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN evmgmt.audit_image(TG_TABLE_NAME, pg_catalog.to_jsonb(NEW)) END);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.audit_row() IS 'Trigger: appends the change to audit_log';

CREATE FUNCTION evmgmt.audit_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO evmgmt.audit_log (role_used, action, table_name)
	VALUES (pg_catalog.current_setting('role'), 'TRUNCATE', TG_TABLE_NAME);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.audit_truncate() IS 'Trigger: records a TRUNCATE in audit_log';

CREATE FUNCTION evmgmt.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'the audit trail is append-only'
		USING ERRCODE = 'insufficient_privilege',
			  DETAIL = pg_catalog.format('%s on evmgmt.audit_log is not allowed.', TG_OP);
END
$$;
COMMENT ON FUNCTION evmgmt.audit_log_append_only() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE on audit_log';
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON evmgmt.audit_log
	FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON evmgmt.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_log_append_only();

DO $audit$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY[
		'operation', 'calendar', 'calendar_hours', 'calendar_holiday', 'site', 'queue',
		'severity_policy', 'notification_footprint', 'event_subtype', 'detection_source',
		'cause_category', 'lever_class', 'lever', 'lever_applicability',
		'event', 'pool_condition', 'response_action', 'post_resolution_analysis', 'action_item', 'objective_impact',
		'contact', 'contact_channel', 'contact_group', 'group_member', 'rota', 'rota_shift', 'audience_group',
		'channel_provider', 'provider_secret', 'escalation_plan', 'escalation_step', 'escalation', 'escalation_ack', 'message_template']
	LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.%I FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row()', t);
		EXECUTE pg_catalog.format('CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.%I FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate()', t);
	END LOOP;
END
$audit$;
-- Least-privilege roles.
--   evmgmt_reader     BI tools and analysts: read events, reports, intervals and
--                     configuration; contact data only masked; no secrets.
--   evmgmt_responder  ROC analysts: what readers have, plus contact details and
--                     the lifecycle and acknowledgment functions.
--   evmgmt_ingest     WFM ETL jobs: load interval rows, nothing else.
--   evmgmt_admin      configuration: everything, secrets included; the audit
--                     trail stays append-only even for it.
-- Event tables are changed only through the lifecycle functions: no role gets
-- INSERT, UPDATE or DELETE on them.

GRANT evmgmt_reader TO evmgmt_responder;
GRANT evmgmt_responder TO evmgmt_admin;

DO $grants$
DECLARE
	t text;
	-- configuration that evmgmt_admin edits directly
	config text[] := ARRAY[
		'operation', 'calendar', 'calendar_hours', 'calendar_holiday', 'site', 'queue',
		'severity_policy', 'notification_footprint', 'event_subtype', 'detection_source',
		'cause_category', 'lever_class', 'lever', 'lever_applicability',
		'contact', 'contact_channel', 'contact_group', 'group_member', 'rota', 'rota_shift', 'audience_group',
		'channel_provider', 'provider_secret', 'escalation_plan', 'escalation_step', 'message_template'];
	-- what readers may not see at all (contact data has masked views)
	hidden text[] := ARRAY['contact_channel', 'provider_secret', 'notification', 'audit_log', 'escalation_step_run'];
BEGIN
	FOR t IN SELECT c.relname FROM pg_catalog.pg_class c
			 WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p')
	LOOP
		IF NOT t = ANY (hidden) THEN
			EXECUTE pg_catalog.format('GRANT SELECT ON evmgmt.%I TO evmgmt_reader', t);
		END IF;
		EXECUTE pg_catalog.format('GRANT SELECT ON evmgmt.%I TO evmgmt_admin', t);
		IF t = ANY (config) THEN
			EXECUTE pg_catalog.format('GRANT INSERT, UPDATE, DELETE ON evmgmt.%I TO evmgmt_admin', t);
		END IF;
	END LOOP;
END
$grants$;

-- Responders need real addresses to call people back, and the outbox to see
-- what was sent to whom.  Never the provider secrets.
GRANT SELECT ON evmgmt.contact_channel, evmgmt.notification, evmgmt.escalation_step_run TO evmgmt_responder;
REVOKE SELECT ON evmgmt.provider_secret FROM evmgmt_responder, evmgmt_reader;

-- Ingest loads intervals, directly or through the quarantine inbox.
GRANT INSERT ON evmgmt.interval_stat, evmgmt.interval_inbox, evmgmt.interval_quarantine TO evmgmt_ingest;
GRANT INSERT, DELETE ON evmgmt.interval_stat TO evmgmt_admin;
GRANT DELETE ON evmgmt.interval_quarantine TO evmgmt_admin;

GRANT USAGE ON ALL SEQUENCES IN SCHEMA evmgmt TO evmgmt_admin;

REVOKE ALL ON FUNCTION evmgmt.calibrate_from_defaults(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.calibrate_from_defaults(text) TO evmgmt_admin;
REVOKE ALL ON FUNCTION evmgmt.audit_row(), evmgmt.audit_truncate() FROM PUBLIC;
-- Register every table that holds user data with pg_dump.  Rows shipped with
-- the extension (builtin = true) are recreated by CREATE EXTENSION and so are
-- filtered out.  This file runs last so that no table is forgotten: a table of
-- the schema that is neither registered nor listed as reference data here
-- makes CREATE EXTENSION fail.

DO $dump$
DECLARE
	t text;
	s text;
	reference text[] := ARRAY['pool_info', 'severity_policy_default', 'notification_footprint_default', 'audience', 'interval_inbox'];
	with_builtin text[] := ARRAY['event_subtype', 'detection_source', 'cause_category', 'lever_class', 'lever', 'lever_applicability', 'message_template'];
BEGIN
	FOR t IN SELECT c.relname FROM pg_catalog.pg_class c
			 WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'p')
			 ORDER BY 1
	LOOP
		CONTINUE WHEN t = ANY (reference);
		PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('evmgmt.%I', t),
			CASE WHEN t = ANY (with_builtin) THEN 'WHERE NOT builtin' ELSE '' END);
	END LOOP;
	FOR s IN SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
			 WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind = 'S'
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(s, '');
	END LOOP;
END
$dump$;

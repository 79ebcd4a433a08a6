-- Catalogues: event subtypes, detection sources, fishbone cause categories,
-- lever classes and the lever catalogue per pool and type.
--
-- Rows shipped with the extension carry builtin = true: they are not dumped
-- (CREATE EXTENSION recreates them) and cannot be changed or deleted.  Rows an
-- operation adds carry builtin = false and are dumped with the user data.

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

-- A small, realistic evmgmt sample: one operation with two sites, their
-- calendars, queues, a day of 15-minute intervals with a service collapse in
-- the afternoon, one event hitting two pools at different severities with its
-- diagnosis, response, analysis and timeline, the people to call, an
-- escalation plan and the history of one escalation.  Used by the demo and by
-- the dump/restore test; every evmgmt user table gets rows.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('ph-std', 'Philippines standard week'), ('us-std', 'US standard week');
INSERT INTO evmgmt.calendar_hours
SELECT c, d, '08:00', '18:00' FROM unnest(ARRAY['ph-std', 'us-std']) AS c, generate_series(1, 5) AS d;
INSERT INTO evmgmt.calendar_hours VALUES ('ph-std', 6, '09:00', '13:00');
INSERT INTO evmgmt.calendar_holiday VALUES
	('ph-std', '2026-04-09', 'Araw ng Kagitingan'), ('ph-std', '2026-12-25', 'Christmas Day'),
	('us-std', '2026-07-03', 'Independence Day (observed)'), ('us-std', '2026-11-26', 'Thanksgiving');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id, division, seats) VALUES
	('MNL1', 'acme', 'Manila Ortigas', 'Asia/Manila', 'ph-std', 'APAC', 1200),
	('AUS1', 'acme', 'Austin Domain', 'America/Chicago', 'us-std', 'Americas', 650);
INSERT INTO evmgmt.queue (queue_id, operation_id, name, channel, sl_target, sl_seconds) VALUES
	('billing', 'acme', 'Billing', 'voice', 0.8, 20),
	('tech', 'acme', 'Technical support', 'voice', 0.8, 30),
	('chat', 'acme', 'Web chat', 'chat', 0.8, 60);
-- the operation calibrates sev3 tighter than the reference matrix
INSERT INTO evmgmt.severity_policy VALUES
	('acme', 'sev3', 'Service slipping below 65% for 30 minutes', 0.65, 30, '1 hour', '1 day', true, NULL, true);
INSERT INTO evmgmt.notification_footprint VALUES
	('acme', 'sev2', 'roc', true, true, true), ('acme', 'sev2', 'site_wfm', true, true, true),
	('acme', 'sev2', 'site_ops_leadership', true, true, true), ('acme', 'sev2', 'division_ops_leadership', false, false, true);
INSERT INTO evmgmt.event_subtype (subtype, event_type, name, typical_pools) VALUES
	('ivr_release_defect', 'system', 'IVR release defect', '{aa,spec}');
INSERT INTO evmgmt.detection_source (source, name, automated) VALUES ('voc_monitor', 'Voice-of-customer monitor', true);
INSERT INTO evmgmt.cause_category (category, name, description) VALUES ('release', 'Release', 'Software or content release defects');
INSERT INTO evmgmt.lever_class (lever_class, name) VALUES ('release_management', 'Release management');
INSERT INTO evmgmt.lever (lever, lever_class, name) VALUES ('hotfix', 'release_management', 'Deploy a hotfix');
INSERT INTO evmgmt.lever_applicability (lever, pool, event_type) VALUES ('hotfix', 'aa', 'system');

-- A day of intervals (Manila, 2 March 2026) for three queues and three pools.
-- Between 14:00 and 16:00 the AI pool of billing collapses (integration
-- failure) and its contacts flood the specialists, whose service slips.
INSERT INTO evmgmt.interval_stat
	(site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold,
	 threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
SELECT 'MNL1', q.queue_id, p.pool, ts, 15,
	   o.offered, o.handled, o.offered - o.handled, o.answered, q.sl_seconds,
	   CASE p.pool WHEN 'aa' THEN 150 ELSE 300 END + (i % 7) * 5,
	   CASE WHEN p.pool = 'aa' THEN NULL ELSE round((o.offered * 300.0 / 900 + 3)::numeric, 1) END,
	   CASE WHEN p.pool = 'aa' THEN NULL ELSE round((o.offered * 300.0 / 900 + 4)::numeric, 1) END,
	   o.base, CASE p.pool WHEN 'aa' THEN 150 ELSE 300 END
FROM evmgmt.queue q
CROSS JOIN unnest(ARRAY['aa', 'collab', 'spec']::evmgmt.pool[]) AS p(pool)
CROSS JOIN generate_series(0, 95) AS i
CROSS JOIN LATERAL (SELECT timestamptz '2026-03-02 00:00+08' + i * interval '15 minutes' AS ts) t
CROSS JOIN LATERAL (SELECT (20 + 60 * sin(pi() * i / 96.0))::integer AS base, (i BETWEEN 56 AND 63) AS collapse) b
CROSS JOIN LATERAL (SELECT CASE WHEN b.collapse AND p.pool = 'spec' THEN b.base * 2 ELSE b.base END AS offered) v
CROSS JOIN LATERAL (
	SELECT b.base, v.offered,
		   CASE WHEN b.collapse AND p.pool = 'aa' THEN 0 ELSE v.offered - v.offered / 20 END AS handled,
		   CASE WHEN b.collapse AND p.pool = 'aa' THEN 0
				WHEN b.collapse AND p.pool = 'spec' THEN (v.offered * 0.45)::integer
				ELSE (v.offered * 0.82)::integer END AS answered
) o;
-- the ETL's quarantine path caught one bad row
INSERT INTO evmgmt.interval_inbox VALUES
	('MNL1', 'billing', 'spec', '2026-03-03 00:00+08', '15', '40', '41', '0', '30', '20', '300', '15', '15', '40', '300');

-- People and how to reach them.
INSERT INTO evmgmt.contact (contact_id, name, role_name, time_zone) VALUES
	(1, 'Dana Cruz', 'dana', 'Asia/Manila'), (2, 'Miguel Santos', 'miguel', 'Asia/Manila'),
	(3, 'Priya Raman', 'priya', 'America/Chicago'), (4, 'Lee Wong', 'lee', 'Asia/Manila');
INSERT INTO evmgmt.contact_channel VALUES
	(1, 'push', 'dana-roc', 1), (1, 'sms', '+639175550101', 1), (1, 'voice', '+639175550101', 1), (1, 'email', 'dana.cruz@acme.example', 1),
	(2, 'push', 'miguel-roc', 1), (2, 'sms', '+639175550102', 1), (2, 'voice', '+639175550102', 1),
	(3, 'email', 'priya.raman@acme.example', 1), (4, 'email', 'lee.wong@acme.example', 1);
INSERT INTO evmgmt.contact_group VALUES ('roc-mgmt', 'ROC management'), ('mnl-wfm', 'Manila WFM'), ('it-leads', 'IT leadership');
INSERT INTO evmgmt.group_member VALUES ('roc-mgmt', 3), ('mnl-wfm', 1), ('mnl-wfm', 2), ('it-leads', 4);
INSERT INTO evmgmt.audience_group VALUES
	('acme', NULL, 'roc_management', 'roc-mgmt'), ('acme', 'MNL1', 'site_wfm', 'mnl-wfm'), ('acme', NULL, 'it_leadership', 'it-leads');
INSERT INTO evmgmt.rota VALUES ('mnl-roc', 'Manila ROC on duty', 'Asia/Manila');
INSERT INTO evmgmt.rota_shift (rota_id, contact_id, during) VALUES
	('mnl-roc', 1, tstzrange('2026-03-02 06:00+08', '2026-03-02 15:00+08')),
	('mnl-roc', 2, tstzrange('2026-03-02 15:00+08', '2026-03-03 00:00+08'));
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address) VALUES
	('pager-hook', 'webhook', 'webhook', 'http://127.0.0.1:8089/hooks/evmgmt', NULL, NULL),
	('ntfy', 'push', 'ntfy', 'http://127.0.0.1:8090', NULL, NULL),
	('twilio-sms', 'sms', 'twilio', 'http://127.0.0.1:8091', 'AC0000000000000000000000000000demo', '+15005550006'),
	('twilio-voice', 'voice', 'twilio', 'http://127.0.0.1:8091', 'AC0000000000000000000000000000demo', '+15005550006'),
	('smtp', 'email', 'smtp', 'smtp://127.0.0.1:2525', NULL, 'roc@acme.example');
INSERT INTO evmgmt.provider_secret VALUES ('pager-hook', 'whsec_ZGVtby1zaWduaW5nLXNlY3JldA=='), ('twilio-sms', 'demo-token'), ('twilio-voice', 'demo-token');

INSERT INTO evmgmt.escalation_plan (plan_id, name, operation_id, severities, pools, priority, repeat_from_step) VALUES
	('sev1-roc', 'Sev 1: ROC on duty, then management', 'acme', '{sev1}', NULL, 10, 2);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, group_id, rota_id, provider_id) VALUES
	('sev1-roc', 1, '0', 'push', 'rota', NULL, NULL, 'mnl-roc', NULL),
	('sev1-roc', 2, '5 minutes', 'sms', 'rota', NULL, NULL, 'mnl-roc', NULL),
	('sev1-roc', 3, '5 minutes', 'voice', 'rota', NULL, NULL, 'mnl-roc', NULL),
	('sev1-roc', 4, '10 minutes', 'email', 'group', NULL, 'roc-mgmt', NULL, NULL),
	('sev1-roc', 5, '0', 'webhook', 'endpoint', NULL, NULL, NULL, 'pager-hook');

-- One event: the AI billing integration fails at 14:00; aa collapses (sev1)
-- and the overflow pushes the specialists below threshold (sev3).
INSERT INTO evmgmt.event (event_id, operation_id, site_id, queue_id, event_type, subtype, detection_source, title,
						  description, detected_at, opened_at, opened_by, closed_at, closed_by)
VALUES (1, 'acme', 'MNL1', 'billing', 'system', 'integration_failure', 'monitoring',
		'Billing AI integration down', 'The billing AI agent cannot reach the account API; contacts fall back to specialists.',
		'2026-03-02 14:02+08', '2026-03-02 14:04+08', 'dana', '2026-03-03 10:00+08', 'dana');
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, opened_at, classified_at, response_due, resolution_due,
								   cause_category, proximate_cause, lever_class, diagnosed_at, first_response_at, resolved_at, resolution_note)
VALUES
	(1, 'aa', 'sev1', 'resolved', '2026-03-02 14:04+08', '2026-03-02 14:05+08', '2026-03-02 14:10+08', '2026-03-02 15:05+08',
	 'technology', 'Expired TLS certificate on the account API gateway', 'it_escalation', '2026-03-02 14:12+08',
	 '2026-03-02 14:13+08', '2026-03-02 15:40+08', 'Certificate renewed, AI agent traffic restored'),
	(1, 'spec', 'sev3', 'resolved', '2026-03-02 14:04+08', '2026-03-02 14:35+08', '2026-03-02 15:35+08', '2026-03-03 14:35+08',
	 'demand', 'AI fallback doubled specialist volume', 'schedule_adjustment', '2026-03-02 14:40+08',
	 '2026-03-02 14:45+08', '2026-03-02 16:10+08', 'Backlog cleared after overtime and offline activities cancelled');
INSERT INTO evmgmt.event_timeline (event_id, pool, at, actor, action, from_state, to_state, from_severity, to_severity, lever, reason) VALUES
	(1, NULL, '2026-03-02 14:04+08', 'dana', 'opened', NULL, 'detected', NULL, NULL, NULL, NULL),
	(1, 'aa', '2026-03-02 14:05+08', 'dana', 'classified', 'detected', 'classified', NULL, 'sev1', NULL, 'AI pool answering 0%'),
	(1, 'aa', '2026-03-02 14:11+08', 'dana', 'acknowledged', NULL, NULL, NULL, NULL, NULL, 'On it'),
	(1, 'aa', '2026-03-02 14:12+08', 'lee', 'diagnosed', 'classified', 'diagnosed', NULL, NULL, NULL, 'Expired certificate'),
	(1, 'aa', '2026-03-02 14:13+08', 'dana', 'responded', 'diagnosed', 'responding', NULL, NULL, 'it_escalation', 'IT bridge opened'),
	(1, 'spec', '2026-03-02 14:35+08', 'dana', 'classified', 'detected', 'classified', NULL, 'sev3', NULL, 'SL 45% for 30 minutes'),
	(1, 'spec', '2026-03-02 14:40+08', 'dana', 'diagnosed', 'classified', 'diagnosed', NULL, NULL, NULL, 'Fallback volume'),
	(1, 'spec', '2026-03-02 14:45+08', 'dana', 'responded', 'diagnosed', 'responding', NULL, NULL, 'overtime', NULL),
	(1, 'spec', '2026-03-02 14:46+08', 'dana', 'responded', 'responding', 'responding', NULL, NULL, 'cancel_offline_activities', NULL),
	(1, 'aa', '2026-03-02 15:40+08', 'lee', 'resolved', 'responding', 'resolved', NULL, NULL, NULL, NULL),
	(1, 'spec', '2026-03-02 16:10+08', 'dana', 'resolved', 'responding', 'resolved', NULL, NULL, NULL, NULL),
	(1, NULL, '2026-03-03 09:30+08', 'dana', 'analysis', NULL, NULL, NULL, NULL, NULL, NULL),
	(1, NULL, '2026-03-03 10:00+08', 'dana', 'closed', 'resolved', 'closed', NULL, NULL, NULL, NULL);
INSERT INTO evmgmt.response_action (event_id, pool, lever, activated_at, actor, note) VALUES
	(1, 'aa', 'it_escalation', '2026-03-02 14:13+08', 'dana', 'IT bridge opened'),
	(1, 'spec', 'overtime', '2026-03-02 14:45+08', 'dana', '12 agents accepted 2 h overtime'),
	(1, 'spec', 'cancel_offline_activities', '2026-03-02 14:46+08', 'dana', 'Coaching sessions moved to Wednesday');
INSERT INTO evmgmt.post_resolution_analysis (event_id, root_cause, contributing_factors, action_plan, detector_gap, recorded_at, recorded_by)
VALUES (1, 'The account API gateway certificate expired; no renewal alert existed.',
		'{"Certificate renewal was manual","AI fallback routed all volume to one specialist queue"}',
		'Automate certificate renewal and spread AI fallback across queues.',
		'No detector for AI pool answer rate dropping to zero within 5 minutes', '2026-03-03 09:30+08', 'dana');
INSERT INTO evmgmt.action_item (event_id, description, owner, due_date, done_at) VALUES
	(1, 'Automate certificate renewal on the API gateway', 'Lee Wong', '2026-03-16', NULL),
	(1, 'Split AI fallback routing across billing and tech specialists', 'Dana Cruz', '2026-03-09', '2026-03-06 17:00+08');
INSERT INTO evmgmt.objective_impact VALUES
	(1, 'service_level', 'degraded', -38.5, 'SL points', 'Billing SL fell to 45% for two hours'),
	(1, 'cost', 'degraded', 4200, 'USD', 'Overtime for 12 agents'),
	(1, 'customer_experience', 'degraded', 312, 'abandoned contacts', NULL),
	(1, 'agent_experience', 'degraded', NULL, NULL, 'Coaching cancelled, overtime requested at short notice'),
	(1, 'business_value', 'neutral', NULL, NULL, 'No measurable revenue loss');

-- The escalation of the aa condition: push to the on-duty analyst, acknowledged after the SMS.
INSERT INTO evmgmt.escalation (escalation_id, event_id, pool, plan_id, plan_snapshot, started_at, start_reason, state, cycle,
							   next_step_no, next_due_at, acknowledged_at, acknowledged_by, ack_note, ended_at)
SELECT 1, 1, 'aa', 'sev1-roc',
	   evmgmt.plan_snapshot(p.plan_id),
	   '2026-03-02 14:05+08', 'opened', 'acknowledged', 1, NULL, NULL, '2026-03-02 14:11+08', 1, 'On it', '2026-03-02 14:11+08'
FROM evmgmt.escalation_plan p WHERE p.plan_id = 'sev1-roc';
INSERT INTO evmgmt.escalation_ack VALUES (1, 1, '2026-03-02 14:11+08', 'On it');
INSERT INTO evmgmt.notification (notification_id, idempotency_key, event_id, escalation_id, kind, channel, provider_id, contact_id,
								 recipient, subject, body, state, attempts, created_at, next_attempt_at, sent_at, last_status)
VALUES
	(1, 'a3c1f1de-8f5e-4f1e-9a59-1c7d2b7c0001', 1, 1, 'escalation_step', 'push', 'ntfy', 1, 'dana-roc',
	 'SEV1 Billing AI integration down', 'SEV1 system at MNL1 (aa): Billing AI integration down', 'sent', 1,
	 '2026-03-02 14:05+08', '2026-03-02 14:05+08', '2026-03-02 14:05:01+08', 200),
	(2, 'a3c1f1de-8f5e-4f1e-9a59-1c7d2b7c0002', 1, 1, 'escalation_step', 'sms', 'twilio-sms', 1, '+639175550101',
	 NULL, 'SEV1 MNL1 aa: Billing AI integration down. Ack: evmgmt.acknowledge(1)', 'sent', 2,
	 '2026-03-02 14:10+08', '2026-03-02 14:10+08', '2026-03-02 14:10:03+08', 201);
INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, scheduled_at, due_at, fired_at, channel, contact_id,
										provider_id, recipient, notification_id, outcome) VALUES
	(1, 1, 1, '2026-03-02 14:05+08', '2026-03-02 14:05+08', '2026-03-02 14:05:00.4+08', 'push', 1, 'ntfy', 'dana-roc', 1, 'queued'),
	(1, 1, 2, '2026-03-02 14:10+08', '2026-03-02 14:10+08', '2026-03-02 14:10:00.3+08', 'sms', 1, 'twilio-sms', '+639175550101', 2, 'queued');
-- The event's status cadence (sev1: hourly) ended when its last pool resolved;
-- the operation words its escalation SMS its own way.
INSERT INTO evmgmt.status_schedule (event_id, severity, cadence, started_at, next_status_at, last_status_at,
									last_owner_update_at, told_open, ended_at, end_reason)
VALUES (1, 'sev1', '1 hour', '2026-03-02 14:05+08', NULL, '2026-03-02 15:05+08', '2026-03-02 15:05+08',
		'{roc_management,site_wfm}', '2026-03-02 16:10+08', 'resolved');
-- Target timers: aa was acknowledged in time but resolved 35 minutes late.
INSERT INTO evmgmt.target_timer (event_id, pool, target, due_at, warn_at, warned_at, breached_at, met_at, next_at) VALUES
	(1, 'aa', 'response', '2026-03-02 14:10+08', '2026-03-02 14:07+08', '2026-03-02 14:07+08', NULL, '2026-03-02 14:11+08', NULL),
	(1, 'aa', 'resolution', '2026-03-02 15:05+08', '2026-03-02 14:55+08', '2026-03-02 14:55+08', '2026-03-02 15:05+08', NULL, NULL),
	(1, 'spec', 'response', '2026-03-02 15:35+08', '2026-03-02 15:25+08', NULL, NULL, '2026-03-02 14:45+08', NULL),
	(1, 'spec', 'resolution', '2026-03-03 14:35+08', '2026-03-03 14:25+08', NULL, NULL, '2026-03-02 16:10+08', NULL);
INSERT INTO evmgmt.message_template (operation_id, kind, channel, body, max_length)
VALUES ('acme', 'escalation_step', 'sms', '{{tier}} {{site}} {{pools}}: {{title}}. Ack: evmgmt.acknowledge({{escalation_id}})', 160);
INSERT INTO evmgmt.delivery_attempt (notification_id, attempt_no, started_at, finished_at, status_code, outcome, error) VALUES
	(1, 1, '2026-03-02 14:05:00.5+08', '2026-03-02 14:05:01+08', 200, 'sent', NULL),
	(2, 1, '2026-03-02 14:10:00.4+08', '2026-03-02 14:10:02.4+08', 503, 'retry', 'HTTP 503 Service Unavailable'),
	(2, 2, '2026-03-02 14:10:02.9+08', '2026-03-02 14:10:03+08', 201, 'sent', NULL);

-- due work that failed and was parked (its item is long gone; kept as
-- history); the table arrived in 0.2.0, and this file also loads into 0.1.0
DO $wf$
BEGIN
	IF pg_catalog.to_regclass('evmgmt.work_failure') IS NOT NULL THEN
		INSERT INTO evmgmt.work_failure (event_id, item, sqlstate, error, attempts, first_failed_at, failed_at, retry_at, parked)
		VALUES (1, 'status', '22008', 'timestamp out of range', 8, '2026-03-02 14:20+08', '2026-03-02 15:05+08', NULL, true);
	END IF;
END
$wf$;

-- the Manila team sees only its own site (row-level security by site, 0.2.0)
DO $sb$
BEGIN
	IF pg_catalog.to_regclass('evmgmt.site_binding') IS NOT NULL THEN
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'acme_mnl1_team') THEN
			CREATE ROLE acme_mnl1_team NOLOGIN IN ROLE evmgmt_responder;
		END IF;
		INSERT INTO evmgmt.site_binding (role_name, site_id) SELECT 'acme_mnl1_team', site_id FROM evmgmt.site ORDER BY 1 LIMIT 1;
	END IF;
END
$sb$;

-- identity columns were given explicit values above: move the sequences past them
SELECT t, setval(pg_get_serial_sequence('evmgmt.' || t, c), 100)
FROM (VALUES ('event', 'event_id'), ('contact', 'contact_id'), ('escalation', 'escalation_id'), ('notification', 'notification_id')) AS v(t, c);

-- Detection settings, a maintenance window, and what detection recorded
-- (0.2.0): one row in each, so that dump and restore cover them.
-- (This file also loads into 0.1.0, which has none of these tables.)
DO $det$
BEGIN
	IF pg_catalog.to_regclass('evmgmt.detection_policy') IS NOT NULL THEN
		INSERT INTO evmgmt.detection_policy (operation_id, auto_resolve_after) SELECT operation_id, 4 FROM evmgmt.operation ORDER BY 1 LIMIT 1;
		INSERT INTO evmgmt.maintenance_window (site_id, starts_at, ends_at, reason)
		SELECT site_id, '2026-03-03 01:00+08', '2026-03-03 03:00+08', 'Telephony patching' FROM evmgmt.site ORDER BY 1 LIMIT 1;
		INSERT INTO evmgmt.detection_state (site_id, queue_id, pool, status, severity, breach_started_at, evaluated_at)
		SELECT site_id, queue_id, pool, 'recovered', 'sev3', first_interval_start, last_interval_start FROM evmgmt.interval_series ORDER BY 1, 2, 3 LIMIT 1;
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, evidence)
		SELECT site_id, queue_id, pool, last_interval_start, 'sustained_service_level', 'backfill', 'sev3', 'capacity', '{"figures": {}}'
		FROM evmgmt.interval_series ORDER BY 1, 2, 3 LIMIT 1;
		INSERT INTO evmgmt.feed_health (site_id, last_interval_end, silent_since, resumed_at)
		SELECT site_id, '2026-03-02 23:45+08', '2026-03-03 00:00+08', '2026-03-03 00:30+08' FROM evmgmt.site ORDER BY 1 LIMIT 1;
	END IF;
END
$det$;

-- The HTTP listener's tables (docs/listener.md, 0.2.0; the upgrade test
-- loads this file into 0.1.0 too): a signing key for action tokens, and one
-- request the listener refused.
DO $listener$
BEGIN
	IF pg_catalog.to_regclass('evmgmt.listener_refusal') IS NOT NULL THEN
		PERFORM evmgmt.rotate_action_key();
		INSERT INTO evmgmt.listener_refusal (method, path, reason, source)
		VALUES ('POST', '/twilio/sms', 'bad or missing X-Twilio-Signature', '127.0.0.1');
	END IF;
	-- a test page confirmed through its channel (67_paging_tests.sql)
	IF pg_catalog.to_regclass('evmgmt.paging_test') IS NOT NULL THEN
		INSERT INTO evmgmt.paging_test (contact_id, channel, address, requested_by, sent_at, expires_at, confirmed_at, confirmed_via)
		SELECT cc.contact_id, cc.channel, cc.address, 'evmgmt_admin', now() - interval '2 hours', now() - interval '1 hour',
			   now() - interval '110 minutes', evmgmt.mask_address(cc.address)
		FROM evmgmt.contact_channel cc WHERE cc.channel = 'sms' ORDER BY cc.contact_id LIMIT 1;
	END IF;
END
$listener$;

-- Prediction and rule-driven response (0.2.0; the upgrade test loads this
-- file into 0.1.0 too): a forecast, a prediction pass and what it recorded,
-- a response rule and a firing held back by the kill switch, a runbook with
-- a step done.
DO $prediction$
DECLARE
	v_event bigint;
BEGIN
	IF pg_catalog.to_regclass('evmgmt.interval_forecast') IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO evmgmt.prediction_policy (operation_id, horizon) SELECT operation_id, '3 hours' FROM evmgmt.operation ORDER BY 1 LIMIT 1;
	INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled)
	SELECT s.site_id, s.queue_id, s.pool, date_trunc('day', now()) - interval '2 days' + k * interval '15 minutes', 15, 40, 300, 20
	FROM (SELECT * FROM evmgmt.interval_series ORDER BY 1, 2, 3 LIMIT 1) s, generate_series(1, 4) k;
	INSERT INTO evmgmt.prediction_run (started_at, finished_at, full_pass, series, intervals, breaching, decisions, failures)
	VALUES ('2026-03-03 00:00+08', '2026-03-03 00:00:01+08', true, 1, 4, 0, 0, 0);
	SELECT e.event_id INTO v_event FROM evmgmt.event e ORDER BY 1 LIMIT 1;
	INSERT INTO evmgmt.prediction_state (site_id, queue_id, pool, status, event_id, severity, predicted_at, breach_starts_at,
										 breach_ends_at, projected_service_level, agents_needed)
	SELECT s.site_id, s.queue_id, s.pool, 'not_confirmed', v_event, 'sev3', '2026-03-02 13:00+08', '2026-03-02 13:30+08',
		   '2026-03-02 14:30+08', 0.41, 3
	FROM (SELECT * FROM evmgmt.interval_series ORDER BY 1, 2, 3 LIMIT 1) s;
	INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, event_type, subtype, breach_starts_at, evidence)
	SELECT site_id, queue_id, pool, 'predicted', event_id, severity, 'capacity', 'staffing_shortfall', breach_starts_at, '{"agents_needed": 3}'
	FROM evmgmt.prediction_state;
	INSERT INTO evmgmt.response_rule (rule_id, operation_id, event_types, least_severe, lever, max_per_hour, instruction)
	SELECT 'sev3-overtime', operation_id, '{capacity}', 'sev3', 'overtime', 5, 'Offer voluntary overtime' FROM evmgmt.operation ORDER BY 1 LIMIT 1;
	PERFORM evmgmt.set_response_rules(true, 'rules in service');
	INSERT INTO evmgmt.response_rule_firing (rule_id, event_id, pool, lever, outcome, fired_at, severity, detail)
	SELECT 'sev3-overtime', pc.event_id, pc.pool, 'overtime', 'switched_off', '2026-03-02 14:06+08', pc.severity, 'response rules are switched off'
	FROM evmgmt.pool_condition pc ORDER BY 1, 2 LIMIT 1;
	INSERT INTO evmgmt.runbook (operation_id, event_type, name) SELECT operation_id, event_type, 'Standard checklist' FROM evmgmt.event WHERE event_id = v_event;
	INSERT INTO evmgmt.runbook_step (runbook_id, step_no, instruction, lever)
	SELECT runbook_id, 1, 'Check adherence and offline activities', 'cancel_offline_activities' FROM evmgmt.runbook;
	INSERT INTO evmgmt.runbook_progress (event_id, pool, runbook_id, step_no, outcome, note, recorded_by, recorded_at)
	SELECT v_event, pc.pool, rb.runbook_id, 1, 'done', 'Training postponed', 'evmgmt_admin', '2026-03-02 14:08+08'
	FROM evmgmt.runbook rb, evmgmt.pool_condition pc WHERE pc.event_id = v_event ORDER BY pc.pool LIMIT 1;
END
$prediction$;

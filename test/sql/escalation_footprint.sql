-- Status cadence and notification footprint per tier, stop at resolution,
-- response and resolution target timers (warning, breach), the per-recipient
-- burst limit, message templates, and privileges.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
-- a clean slate, whatever the tests before left behind
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
BEGIN;
\ir test/fixtures/escalation.psql

-- Audiences: ROC and ROC management are Cleo (e-mail); site WFM is the
-- operation-wide wfm-all group (Ben), but Berlin has its own (Ana, e-mail and
-- push), which wins there; ticketing is the tickets group (Cleo).
INSERT INTO evmgmt.audience_group (operation_id, site_id, audience, group_id, channels) VALUES
	('op1', NULL, 'roc_management', 'roc-mgmt', '{email}'),
	('op1', NULL, 'roc', 'roc-mgmt', '{email}'),
	('op1', NULL, 'site_wfm', 'wfm-all', '{email}'),
	('op1', 'BER', 'site_wfm', 'wfm-ber', '{email,push}'),
	('op1', NULL, 'ticketing', 'tickets', '{email}');
-- The owner (Ana) is chased by e-mail when a status update is overdue;
-- breaches page Ana and Ben by sms; manual escalations push to Ana.
INSERT INTO evmgmt.escalation_plan (plan_id, name, start_reasons) VALUES
	('p-overdue', 'Overdue status', '{status_overdue}'), ('p-breach', 'Target breach', '{response_breach,resolution_breach}'),
	('p-manual', 'Manual', '{manual}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, group_id) VALUES
	('p-overdue', 1, '0', 'email', 'contact', 9001, NULL),
	('p-breach', 1, '0', 'sms', 'group', NULL, 'duo'),
	('p-manual', 1, '0', 'push', 'contact', 9001, NULL);

-- sev1 at Berlin: the opened message goes to ROC management and Berlin's WFM.
SELECT pg_temp.new_event(9301, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9301, 'spec', 'sev1', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9301, 'spec', 'opened', '2026-03-02 08:00Z') IS NULL AS no_paging_plan;
SELECT kind, channel, recipient, state, subject FROM pg_temp.outbox(9301);
SELECT severity, cadence, next_status_at, told_open FROM evmgmt.status_schedule WHERE event_id = 9301;
-- hourly: nothing at 08:59; at 09:00 an automatic status to the on_status
-- audiences, and the overdue owner update escalates
SELECT evmgmt.run_due_work('2026-03-02 08:59Z') AS next_due;
SELECT evmgmt.run_due_work('2026-03-02 09:00Z') AS next_due;
SELECT kind, channel, recipient, created, CASE WHEN kind = 'escalation_step' THEN subject ELSE body END AS text
FROM pg_temp.outbox(9301) WHERE created >= '03-02 09:00:00' AND channel <> 'push';
SELECT start_reason, plan_id, state, contacts_paged FROM evmgmt.escalation_status WHERE event_id = 9301;
-- the owner posts: it goes out at once, the overdue escalation is
-- satisfied, the clock restarts from the post
SELECT evmgmt.post_status_update(9301, 'Router vendor engaged, failover in 20 minutes', '2026-03-02 09:10Z') AS tid \gset
SELECT event_id, at, action, reason FROM evmgmt.event_timeline WHERE entry_id = :tid;
SELECT kind, channel, recipient, body FROM pg_temp.outbox(9301) WHERE created = '03-02 09:10:00' AND channel <> 'push';
SELECT start_reason, state, end_reason FROM evmgmt.escalation_status WHERE event_id = 9301;
SELECT next_status_at, last_owner_update_at FROM evmgmt.status_schedule WHERE event_id = 9301;
SELECT action, reason FROM evmgmt.event_timeline WHERE event_id = 9301 ORDER BY entry_id;
-- resolution (escalation_stop is what the lifecycle's resolve_pool calls):
-- the on_resolve audiences hear it, the cadence ends, nothing more
SELECT evmgmt.escalation_stop(9301, 'spec', 'resolved', '2026-03-02 09:40Z');
SELECT kind, channel, recipient, subject FROM pg_temp.outbox(9301) WHERE kind = 'resolved';
SELECT ended_at, end_reason, next_status_at FROM evmgmt.status_schedule WHERE event_id = 9301;
SELECT evmgmt.run_due_work('2026-03-02 12:00Z') IS NULL AS nothing_due;
SELECT count(*) AS after_resolution FROM evmgmt.notification WHERE event_id = 9301 AND created_at > '2026-03-02 09:40Z';
-- posting on a resolved event is refused
SELECT evmgmt.post_status_update(9301, 'too late', '2026-03-02 10:00Z');

-- sev2: ROC, site WFM and site operations leadership (not mapped) at open,
-- status twice a day.
SELECT pg_temp.new_event(9302, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9302, 'spec', 'sev2', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9302, 'spec', 'opened', '2026-03-02 08:00Z') IS NULL AS no_paging_plan;
SELECT kind, channel, recipient FROM pg_temp.outbox(9302);
SELECT severity, cadence, next_status_at, told_open FROM evmgmt.status_schedule WHERE event_id = 9302;
-- upgraded to sev1 with the lifecycle function (which starts the 'upgraded'
-- escalation now): the new audiences are told, the cadence becomes hourly
SELECT evmgmt.reclassify_pool(9302, 'spec', 'sev1', 'router failover failed');
SELECT kind, channel, recipient FROM pg_temp.outbox(9302) WHERE created > '03-02 08:00:00';
SELECT severity, cadence,
	   next_status_at = (SELECT max(created_at) FROM evmgmt.notification WHERE event_id = 9302) + cadence AS restarted_at_upgrade, told_open
FROM evmgmt.status_schedule WHERE event_id = 9302;

-- sev3: nobody at open, no cadence, ROC and site WFM at resolution.
SELECT pg_temp.new_event(9303, '2026-03-02 08:00Z', 'NYC');
SELECT pg_temp.classify(9303, 'spec', 'sev3', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9303, 'spec', 'opened', '2026-03-02 08:00Z') IS NULL AS no_paging_plan;
SELECT severity, cadence, next_status_at FROM evmgmt.status_schedule WHERE event_id = 9303;
SELECT count(*) AS at_open FROM evmgmt.notification WHERE event_id = 9303;
SELECT evmgmt.escalation_stop(9303, 'spec', 'resolved', '2026-03-02 11:00Z');
-- New York has no site WFM mapping of its own: the operation-wide group (Ben)
SELECT kind, channel, recipient, body FROM pg_temp.outbox(9303);

-- sev4: the ticketing distribution at open and at resolution.
SELECT pg_temp.new_event(9304, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9304, 'aa', 'sev4', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9304, 'aa', 'opened', '2026-03-02 08:00Z') IS NULL AS no_paging_plan;
SELECT evmgmt.escalation_stop(9304, 'aa', 'resolved', '2026-03-03 08:00Z');
SELECT kind, channel, recipient FROM pg_temp.outbox(9304);

-- Cancelling tells those who were told at open.
SELECT pg_temp.new_event(9307, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9307, 'collab', 'sev2', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9307, 'collab', 'opened', '2026-03-02 08:00Z') IS NULL AS no_paging_plan;
SELECT evmgmt.escalation_stop(9307, 'collab', 'cancelled', '2026-03-02 08:30Z');
SELECT kind, channel, recipient, subject FROM pg_temp.outbox(9307) WHERE kind = 'resolved';

-- Target timers: the lifecycle's classify_pool sets the due times from the
-- detection (sev2: response in 30 minutes, resolution in 4 hours).
SELECT pg_temp.new_event(9305, '2026-03-02 08:00Z');
INSERT INTO evmgmt.pool_condition (event_id, pool, opened_at) VALUES (9305, 'collab', '2026-03-02 08:00Z');
SELECT evmgmt.classify_pool(9305, 'collab', 'sev2');
SELECT target, due_at, warn_at, next_at FROM evmgmt.target_timer WHERE event_id = 9305 ORDER BY target;
SELECT evmgmt.run_due_work('2026-03-02 08:19Z') AS next_due;
SELECT count(*) AS warnings FROM evmgmt.notification WHERE event_id = 9305 AND kind = 'target_warning';
-- 10 minutes before: the warning
SELECT evmgmt.run_due_work('2026-03-02 08:20Z') AS next_due;
SELECT kind, channel, recipient, body FROM pg_temp.outbox(9305) WHERE kind = 'target_warning' AND channel = 'push';
SELECT count(*) AS warnings FROM evmgmt.notification WHERE event_id = 9305 AND kind = 'target_warning';
-- at the due time: the breach escalates on its own
SELECT evmgmt.run_due_work('2026-03-02 08:30Z') AS next_due;
SELECT target, warned_at, breached_at, met_at, next_at, escalation_id IS NOT NULL AS escalated FROM evmgmt.target_timer WHERE event_id = 9305 ORDER BY target;
SELECT start_reason, plan_id, state, current_step, contacts_paged FROM evmgmt.escalation_status WHERE event_id = 9305;
SELECT step, contact, channel, outcome FROM pg_temp.history((SELECT escalation_id FROM evmgmt.escalation WHERE event_id = 9305));
SELECT action, reason FROM evmgmt.event_timeline WHERE event_id = 9305;
-- resolving meets the resolution target: no warning, no breach
SELECT evmgmt.escalation_stop(9305, 'collab', 'resolved', '2026-03-02 09:00Z');
SELECT target, warned_at, breached_at, met_at, next_at FROM evmgmt.target_timer WHERE event_id = 9305 ORDER BY target;
SELECT count(*) AS active_escalations FROM evmgmt.escalation WHERE event_id = 9305 AND state = 'active';
-- an acknowledgment counts as the response
SELECT pg_temp.new_event(9306, '2026-03-02 08:00Z');
INSERT INTO evmgmt.pool_condition (event_id, pool, opened_at) VALUES (9306, 'aa', '2026-03-02 08:00Z');
SELECT evmgmt.classify_pool(9306, 'aa', 'sev1');
SELECT target, due_at, warn_at FROM evmgmt.target_timer WHERE event_id = 9306 ORDER BY target;
SELECT evmgmt.escalation_start(9306, 'aa', 'manual', '2026-03-02 08:00Z') AS esc \gset
SELECT evmgmt.run_due_work('2026-03-02 08:00Z') AS next_due;
SELECT evmgmt.acknowledge(:esc, 9003);
SELECT target, met_at IS NOT NULL AS met, next_at FROM evmgmt.target_timer WHERE event_id = 9306 ORDER BY target;
-- a reclassification moves the due times (sev2 from detection: 08:30 and
-- 12:00) and the timers with them; the acknowledged response stays met
SELECT evmgmt.reclassify_pool(9306, 'aa', 'sev2', 'contained');
SELECT target, due_at, warn_at, next_at, met_at IS NOT NULL AS met FROM evmgmt.target_timer WHERE event_id = 9306 ORDER BY target;

-- The burst limit: three pages to Ben's phone within two minutes become one
-- page and one digest sent when the window closes.
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, start_reasons, priority) VALUES
	('p-storm', 'Storm', '{aa}', '{manual}', 1), ('p-hook', 'Pager hook', '{collab}', '{manual}', 1);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, provider_id) VALUES
	('p-storm', 1, '0', 'sms', 'contact', 9002, NULL),
	('p-hook', 1, '0', 'webhook', 'endpoint', NULL, 'pager-hook');
-- (the events so far resolve first, so that only the storm pages Ben)
SELECT count(evmgmt.escalation_stop(event_id, NULL, 'resolved', '2026-03-02 12:00Z')) AS resolved
FROM (SELECT DISTINCT event_id FROM evmgmt.pool_condition WHERE state NOT IN ('resolved', 'cancelled')) e;
SET evmgmt.recipient_burst_window = '2min';
SELECT pg_temp.new_event(9310 + i, '2026-03-02 14:00Z'::timestamptz + i * interval '10 seconds', 'BER', 'Storm ' || i),
	   pg_temp.classify(9310 + i, 'aa', 'sev2', '2026-03-02 14:00Z'::timestamptz + i * interval '10 seconds')
FROM generate_series(1, 3) i;
SELECT evmgmt.escalation_start(9310 + i, 'aa', 'manual', '2026-03-02 14:00Z'::timestamptz + i * interval '10 seconds') IS NOT NULL AS started,
	   evmgmt.run_due_work('2026-03-02 14:00Z'::timestamptz + i * interval '10 seconds') AS next_due
FROM generate_series(1, 3) i;
SELECT event_id, plan_id, start_reason, state, started_at FROM evmgmt.escalation WHERE event_id BETWEEN 9311 AND 9313 ORDER BY event_id;
SELECT n.kind, n.state, to_char(n.created_at, 'HH24:MI:SS') AS created, to_char(n.next_attempt_at, 'HH24:MI:SS') AS not_before,
	   jsonb_array_length(n.payload -> 'items') AS items, pg_temp.no_ids(n.body) AS body
FROM evmgmt.notification n WHERE n.recipient = '+12125550102' AND n.created_at >= '2026-03-02 14:00Z' ORDER BY n.notification_id;
SELECT e.event_id, h.outcome FROM evmgmt.escalation_history h JOIN evmgmt.escalation e USING (escalation_id)
WHERE e.event_id BETWEEN 9311 AND 9313 ORDER BY e.event_id;
-- acknowledging one of the bundled escalations takes its item out
SELECT evmgmt.acknowledge_event(9312, 'aa', 9002);
SELECT n.kind, n.state, jsonb_array_length(n.payload -> 'items') AS items, pg_temp.no_ids(n.body) AS body
FROM evmgmt.notification n WHERE n.recipient = '+12125550102' AND n.kind = 'digest' AND n.created_at >= '2026-03-02 14:00Z';
-- when the last item goes, the digest is cancelled
SELECT evmgmt.acknowledge_event(9313, 'aa', 9002);
SELECT n.kind, n.state FROM evmgmt.notification n WHERE n.recipient = '+12125550102' AND n.kind = 'digest' AND n.created_at >= '2026-03-02 14:00Z';
-- webhooks are never bundled
SELECT pg_temp.new_event(9314 + i, '2026-03-02 14:00Z', 'BER', 'Hook ' || i), pg_temp.classify(9314 + i, 'collab', 'sev2', '2026-03-02 14:00Z')
FROM generate_series(1, 2) i;
SELECT evmgmt.escalation_start(9314 + i, 'collab', 'manual', '2026-03-02 14:00Z') IS NOT NULL AS started FROM generate_series(1, 2) i;
SELECT event_id, plan_id, start_reason, state FROM evmgmt.escalation WHERE event_id IN (9315, 9316) ORDER BY event_id;
SELECT evmgmt.run_due_work('2026-03-02 14:00:30Z') AS next_due;
SELECT n.kind, n.recipient, n.state, n.payload ->> 'title' AS title, n.payload ->> 'tier' AS tier
FROM evmgmt.notification n WHERE n.event_id IN (9315, 9316) ORDER BY n.event_id;
SET evmgmt.recipient_burst_window = 0;

-- Templates: an SMS stays within 160 characters, however long the title.
SELECT pg_temp.new_event(9320, '2026-03-02 08:00Z', 'BER', repeat('Very long title of a routing outage ', 10));
SELECT pg_temp.classify(9320, 'spec', 'sev1', '2026-03-02 08:00Z');
SELECT length(m.body) AS sms_length, right(m.body, 1) AS ends_with
FROM evmgmt.render_message('escalation_step', 'sms', 'op1', evmgmt.event_facts(9320) || '{"escalation_id": 77, "step": 2}') m;
SELECT m.subject, m.body FROM evmgmt.render_message('escalation_step', 'email', 'op1', evmgmt.event_facts(9301) || '{"escalation_id": 77, "step": 2, "reason": "opened"}') m;
-- the Power-of-One figures of the event's queue: 50 Erlangs on 51 agents
-- (detection and feed health off for op1: this interval is only a figure)
INSERT INTO evmgmt.detection_policy (operation_id, enabled) VALUES ('op1', false);
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'op1', 'Billing');
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
								  answered_in_threshold, threshold_seconds, aht_seconds, staffed)
VALUES ('BER', 'billing', 'spec', '2026-03-02 07:45Z', 15, 250, 240, 60, 20, 180, 51);
INSERT INTO evmgmt.event (event_id, operation_id, site_id, queue_id, event_type, detection_source, title, detected_at, opened_at)
VALUES (9321, 'op1', 'BER', 'billing', 'capacity', 'roc_analyst', 'Billing short of agents', '2026-03-02 08:00Z', '2026-03-02 08:00Z');
SELECT pg_temp.classify(9321, 'spec', 'sev2', '2026-03-02 08:00Z');
SELECT evmgmt.event_facts(9321) ->> 'power_of_one' AS power_of_one;
SELECT m.body FROM evmgmt.render_message('opened', 'email', 'op1', evmgmt.event_facts(9321)) m;
-- links and an operation's own template
SET evmgmt.event_link_prefix = 'https://roc.example.com/events/';
INSERT INTO evmgmt.message_template (operation_id, kind, channel, body, max_length)
VALUES ('op1', 'escalation_step', 'sms', '{{tier}} {{site_name}}: {{title}} [{{pools}}] ack {{escalation_id}} {{link}} {{unknown_field}}', 160);
SELECT m.body FROM evmgmt.render_message('escalation_step', 'sms', 'op1', evmgmt.event_facts(9302) || '{"escalation_id": 77}') m;
SELECT m.body FROM evmgmt.render_message('escalation_step', 'voice', 'op1', evmgmt.event_facts(9302) || '{"escalation_id": 77}') m;
SET evmgmt.event_link_prefix = '';
-- built-in templates cannot be edited
UPDATE evmgmt.message_template SET body = 'x' WHERE builtin AND kind = 'opened' AND channel = 'sms';
SELECT kind, count(*) FROM evmgmt.message_template WHERE builtin GROUP BY kind ORDER BY kind;

-- Privileges: a responder acknowledges as themselves; a reader only reads
-- the views, with recipients masked.
CREATE ROLE evm_test_ana;
GRANT evmgmt_responder TO evm_test_ana;
CREATE ROLE evm_test_reader;
GRANT evmgmt_reader TO evm_test_reader;
SELECT pg_temp.new_event(9330, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9330, 'spec', 'sev2', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9330, 'spec', 'manual', '2026-03-02 08:00Z') AS esc \gset
SELECT evmgmt.run_due_work('2026-03-02 08:00Z') AS next_due;
SET SESSION AUTHORIZATION evm_test_reader;
SELECT channel, contact_name, recipient, outcome, delivery_state FROM evmgmt.escalation_history WHERE event_id = 9330;
SELECT state, current_step FROM evmgmt.escalation_status WHERE event_id = 9330;
SELECT count(*) FROM evmgmt.escalation_step_run;
SELECT count(*) FROM evmgmt.notification;
SELECT evmgmt.acknowledge(:esc);
SELECT evmgmt.run_due_work();
SELECT evmgmt.post_status_update(9330, 'reader cannot post');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION evm_test_ana;
SELECT channel, contact_name, recipient, outcome FROM evmgmt.escalation_history WHERE event_id = 9330;
SELECT evmgmt.acknowledge(:esc, 9002);
SELECT evmgmt.escalation_start(9330, 'spec', 'manual');
UPDATE evmgmt.escalation SET state = 'acknowledged' WHERE event_id = 9330;
SELECT evmgmt.acknowledge(:esc, NULL, 'from my phone');
SELECT evmgmt.post_status_update(9330, 'Ana: mitigation under way') AS tid \gset
SELECT event_id, action, reason FROM evmgmt.event_timeline WHERE entry_id = :tid;
RESET SESSION AUTHORIZATION;
SELECT state, acknowledged_by_name, ack_note FROM evmgmt.escalation_status WHERE escalation_id = :esc;
SELECT action, actor, reason FROM evmgmt.event_timeline WHERE event_id = 9330 ORDER BY entry_id;
ROLLBACK;

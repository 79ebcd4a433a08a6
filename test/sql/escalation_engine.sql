-- Escalation engine: push -> sms -> voice at the right offsets, acknowledgment,
-- a second pool running independently, plan snapshots, typed fall-through,
-- repeat, voice retries, require_all_ack, late steps after an outage.
-- Every run_due_work call gets an explicit moment, so the output is exact.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
-- a clean slate, whatever the tests before left behind
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
BEGIN;
\ir test/fixtures/escalation.psql

-- Plan 1: push, sms after 5 minutes, voice 10 minutes later, for sev1 opening.
INSERT INTO evmgmt.escalation_plan (plan_id, name, severities, start_reasons, priority)
VALUES ('p-sev1', 'Sev1 on-call', '{sev1}', '{opened,upgraded}', 10),
	   ('p-any', 'Catch-all', NULL, '{opened,upgraded}', 100);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
	('p-sev1', 1, '0', 'push', 'contact', 9001),
	('p-sev1', 2, '5 min', 'sms', 'contact', 9001),
	('p-sev1', 3, '10 min', 'voice', 'contact', 9001),
	('p-any', 1, '0', 'email', 'contact', 9003),
	('p-any', 2, '30 min', 'email', 'contact', 9002);

SELECT pg_temp.new_event(9101, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9101, 'spec', 'sev1', '2026-03-02 08:00Z');
SELECT pg_temp.classify(9101, 'collab', 'sev2', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9101, 'spec', 'opened', '2026-03-02 08:00Z') AS esc1 \gset
SELECT plan_id, state, cycle, next_step_no, next_due_at FROM evmgmt.escalation WHERE escalation_id = :esc1;
-- the snapshot carries the steps and their offsets from the start
SELECT s ->> 'step_no' AS step, s ->> 'channel' AS channel, s ->> 'offset_s' AS offset_s
FROM evmgmt.escalation e, jsonb_array_elements(e.plan_snapshot -> 'steps') s WHERE e.escalation_id = :esc1;

-- step 1 at the start, nothing more until 08:05, step 2 at 08:05
SELECT evmgmt.run_due_work('2026-03-02 08:00Z') AS next_due;
SELECT evmgmt.run_due_work('2026-03-02 08:04:59Z') AS next_due;
SELECT count(*) AS runs FROM evmgmt.escalation_step_run WHERE escalation_id = :esc1;
SELECT evmgmt.run_due_work('2026-03-02 08:05Z') AS next_due;
SELECT * FROM pg_temp.history(:esc1);
SELECT pool, site_id, plan_id, plan_name, start_reason, state, started_at, cycle, current_step, current_step_at, last_update,
	   next_step, next_voice_retry, next_due_at, contacts_paged, acks, acknowledged_at, acknowledged_by_name
FROM evmgmt.escalation_status WHERE escalation_id = :esc1 \gx

-- the other pool runs its own plan, independently
SELECT evmgmt.escalation_start(9101, 'collab', 'opened', '2026-03-02 08:02Z') AS esc2 \gset
SELECT evmgmt.run_due_work('2026-03-02 08:06Z') AS next_due;
SELECT pool, plan_id, state, next_step_no, next_due_at FROM evmgmt.escalation WHERE event_id = 9101 ORDER BY pool;

-- Ana acknowledges the spec escalation: it stops at once, unsent messages
-- are cancelled, the voice step never fires; collab goes on.
SELECT evmgmt.acknowledge(:esc1, 9001, 'looking at the router');
SELECT state, acknowledged_by_name, ack_note, next_due_at, acks FROM evmgmt.escalation_status WHERE escalation_id = :esc1;
SELECT kind, channel, recipient, state FROM pg_temp.outbox(9101) WHERE recipient LIKE 'ana%' OR recipient LIKE '+49%';
SELECT evmgmt.run_due_work('2026-03-02 08:40Z') AS next_due;
SELECT step, channel, outcome FROM pg_temp.history(:esc1);
SELECT step, channel, contact, outcome FROM pg_temp.history(:esc2);
SELECT action, pool, reason, details ->> 'contact' AS contact, details ->> 'stopped' AS stopped
FROM evmgmt.event_timeline WHERE event_id = 9101;
-- exactly once: a second acknowledgment is refused (object_not_in_prerequisite_state)
\set VERBOSITY sqlstate
SELECT evmgmt.acknowledge(:esc1, 9001);
\set VERBOSITY terse
-- the collab escalation was exhausted after its last step
SELECT state, end_reason FROM evmgmt.escalation WHERE escalation_id = :esc2;

-- Snapshot: editing the plan changes future escalations only.
SELECT pg_temp.new_event(9102, '2026-03-02 09:00Z');
SELECT pg_temp.classify(9102, 'spec', 'sev1', '2026-03-02 09:00Z');
SELECT evmgmt.escalation_start(9102, 'spec', 'opened', '2026-03-02 09:00Z') AS esc3 \gset
UPDATE evmgmt.escalation_step SET delay = '1 hour' WHERE plan_id = 'p-sev1' AND step_no = 2;
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, group_id) VALUES ('p-sev1', 4, '1 min', 'email', 'group', 'ops');
SELECT evmgmt.run_due_work('2026-03-02 09:05Z') AS next_due;
SELECT step, fired, channel FROM pg_temp.history(:esc3);
SELECT pg_temp.new_event(9103, '2026-03-02 09:00Z');
SELECT pg_temp.classify(9103, 'spec', 'sev1', '2026-03-02 09:00Z');
SELECT evmgmt.escalation_start(9103, 'spec', 'opened', '2026-03-02 09:00Z') AS esc4 \gset
SELECT e.escalation_id = :esc4 AS new_one, jsonb_array_length(e.plan_snapshot -> 'steps') AS steps, e.next_due_at,
	   evmgmt.escalation_step_due(e.plan_snapshot, e.started_at, 1, 2) AS step2_due
FROM evmgmt.escalation e WHERE e.escalation_id IN (:esc3, :esc4) ORDER BY e.escalation_id;

-- Upgrade: a new opened/upgraded escalation supersedes the running one.
SELECT evmgmt.escalation_start(9103, 'spec', 'upgraded', '2026-03-02 09:10Z') AS esc5 \gset
SELECT escalation_id = :esc4 AS old, state, end_reason FROM evmgmt.escalation WHERE event_id = 9103 ORDER BY escalation_id;

-- Fall-through: a rota with nobody on duty, a contact without the channel, an
-- empty group and an inactive contact each record their typed reason and the
-- next step fires at once; the group step then reaches Ana and Cleo.
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, start_reasons, priority) VALUES ('p-fall', 'Fall-through', '{aa}', '{opened}', 1);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, group_id, rota_id) VALUES
	('p-fall', 1, '0', 'push', 'rota', NULL, NULL, 'night'),
	('p-fall', 2, '5 min', 'sms', 'contact', 9003, NULL, NULL),
	('p-fall', 3, '5 min', 'push', 'group', NULL, 'nobody', NULL),
	('p-fall', 4, '5 min', 'sms', 'contact', 9004, NULL, NULL),
	('p-fall', 5, '5 min', 'email', 'group', NULL, 'ops', NULL),
	('p-fall', 6, '5 min', 'sms', 'rota', NULL, NULL, 'night');
SELECT pg_temp.new_event(9104, '2026-03-02 10:00Z');
SELECT pg_temp.classify(9104, 'aa', 'sev2', '2026-03-02 10:00Z');
SELECT evmgmt.escalation_start(9104, 'aa', 'opened', '2026-03-02 10:00Z') AS esc6 \gset
SELECT evmgmt.run_due_work('2026-03-02 10:00Z') AS next_due;
SELECT step, scheduled, due, fired, channel, contact, recipient, outcome FROM pg_temp.history(:esc6);
-- step 6 fires late, at 22:00 (as if the workers were down): the rota is
-- resolved at the firing moment, when Ana is on duty
SELECT evmgmt.run_due_work('2026-03-02 22:00Z') AS next_due;
SELECT step, due, fired, late_by, contact, outcome FROM pg_temp.history(:esc6) WHERE step = 6;

-- Repeat from step 2 with no cap, and late steps after an outage: the
-- history shows late_by; whole cycles that passed are not replayed.
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, start_reasons, priority, repeat_from_step)
VALUES ('p-rep', 'Repeat', '{aa}', '{upgraded}', 1, 2);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
	('p-rep', 1, '0', 'push', 'contact', 9001),
	('p-rep', 2, '10 min', 'sms', 'contact', 9001);
SET CONSTRAINTS evmgmt.escalation_plan_check IMMEDIATE;
SELECT pg_temp.new_event(9105, '2026-03-03 08:00Z');
SELECT pg_temp.classify(9105, 'aa', 'sev2', '2026-03-03 08:00Z');
SELECT evmgmt.escalation_start(9105, 'aa', 'upgraded', '2026-03-03 08:00Z') AS esc7 \gset
SELECT evmgmt.run_due_work('2026-03-03 08:00Z'), evmgmt.run_due_work('2026-03-03 08:10Z'),
	   evmgmt.run_due_work('2026-03-03 08:20Z'), evmgmt.run_due_work('2026-03-03 08:30Z');
-- workers down from 08:30 to 09:35
SELECT evmgmt.run_due_work('2026-03-03 09:35Z') AS next_due;
SELECT cyc, step, scheduled, due, fired, late_by, outcome, detail FROM pg_temp.history(:esc7);
SELECT state, cycle, next_step_no, next_due_at FROM evmgmt.escalation WHERE escalation_id = :esc7;
-- a repeat cycle without any delay is refused
UPDATE evmgmt.escalation_step SET delay = '0' WHERE plan_id = 'p-rep' AND step_no = 2;
-- a repeat from a step that does not exist too
UPDATE evmgmt.escalation_plan SET repeat_from_step = 7 WHERE plan_id = 'p-rep';
SET CONSTRAINTS evmgmt.escalation_plan_check DEFERRED;

-- Late steps of a plain plan: all three fire in order on the first run after
-- the outage, each with its own late_by.
SELECT pg_temp.new_event(9106, '2026-03-03 10:00Z');
SELECT pg_temp.classify(9106, 'spec', 'sev1', '2026-03-03 10:00Z');
UPDATE evmgmt.escalation_step SET delay = '5 min' WHERE plan_id = 'p-sev1' AND step_no = 2;
DELETE FROM evmgmt.escalation_step WHERE plan_id = 'p-sev1' AND step_no = 4;
SELECT evmgmt.escalation_start(9106, 'spec', 'opened', '2026-03-03 10:00Z') AS esc8 \gset
SELECT evmgmt.run_due_work('2026-03-03 11:00Z') AS next_due;
SELECT step, due, fired, late_by, channel, outcome FROM pg_temp.history(:esc8);

-- Voice retries: an unanswered call is retried within its step, spaced to
-- fit before the next step (5-minute setting, 9 minutes for 2 retries: 3).
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, start_reasons, priority) VALUES ('p-voice', 'Voice', '{collab}', '{manual}', 1);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, voice_retries) VALUES
	('p-voice', 1, '0', 'voice', 'contact', 9002, 2),
	('p-voice', 2, '9 min', 'sms', 'contact', 9002, 0);
SET evmgmt.voice_retry_interval = '5min';
SELECT pg_temp.new_event(9107, '2026-03-03 12:00Z');
SELECT pg_temp.classify(9107, 'collab', 'sev2', '2026-03-03 12:00Z');
SELECT evmgmt.escalation_start(9107, 'collab', 'manual', '2026-03-03 12:00Z') AS esc9 \gset
SELECT evmgmt.run_due_work('2026-03-03 12:00Z') AS r1, evmgmt.run_due_work('2026-03-03 12:03Z') AS r2,
	   evmgmt.run_due_work('2026-03-03 12:06Z') AS r3, evmgmt.run_due_work('2026-03-03 12:09Z') AS r4;
SELECT step, retry, due, fired, channel, outcome FROM pg_temp.history(:esc9);
-- acknowledging after the first call stops the retries
SELECT pg_temp.new_event(9108, '2026-03-03 12:00Z');
SELECT pg_temp.classify(9108, 'collab', 'sev2', '2026-03-03 12:00Z');
SELECT evmgmt.escalation_start(9108, 'collab', 'manual', '2026-03-03 12:00Z') AS esc10 \gset
SELECT evmgmt.run_due_work('2026-03-03 12:00Z') AS next_due;
SELECT next_step_no, next_retry_no, next_due_at FROM evmgmt.escalation WHERE escalation_id = :esc10;
SELECT evmgmt.acknowledge(:esc10, 9002);
SELECT evmgmt.run_due_work('2026-03-03 12:30Z') AS next_due;
SELECT state, next_due_at FROM evmgmt.escalation WHERE escalation_id = :esc10;
SELECT step, retry, channel, outcome FROM pg_temp.history(:esc10);
SET evmgmt.voice_retry_interval = '2min';

-- require_all_ack: the plan stops only when everyone it paged acknowledged.
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, start_reasons, priority, require_all_ack)
VALUES ('p-all', 'Everyone acknowledges', '{spec}', '{manual}', 1, true);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, group_id) VALUES
	('p-all', 1, '0', 'sms', 'group', 'duo'),
	('p-all', 2, '10 min', 'voice', 'group', 'duo'),
	('p-all', 3, '10 min', 'email', 'group', 'ops');
SELECT pg_temp.new_event(9109, '2026-03-03 13:00Z');
SELECT pg_temp.classify(9109, 'spec', 'sev2', '2026-03-03 13:00Z');
SELECT evmgmt.escalation_start(9109, 'spec', 'manual', '2026-03-03 13:00Z') AS esc11 \gset
SELECT evmgmt.run_due_work('2026-03-03 13:00Z') AS next_due;
SELECT evmgmt.acknowledge(:esc11, 9001, 'Ana here');
SELECT recipient, state FROM pg_temp.outbox(9109);
SELECT evmgmt.run_due_work('2026-03-03 13:10Z') AS next_due;
SELECT step, contact, channel, outcome FROM pg_temp.history(:esc11);
SELECT evmgmt.acknowledge(:esc11, 9002, 'Ben here');
SELECT state, acknowledged_by_name, acks, contacts_paged FROM evmgmt.escalation_status WHERE escalation_id = :esc11;
SELECT recipient, state FROM pg_temp.outbox(9109);
-- an exhausted escalation can still be acknowledged
SELECT pg_temp.new_event(9110, '2026-03-03 13:00Z');
SELECT pg_temp.classify(9110, 'aa', 'sev3', '2026-03-03 13:00Z');
SELECT evmgmt.escalation_start(9110, 'aa', 'opened', '2026-03-03 13:00Z') AS esc12 \gset
SELECT evmgmt.run_due_work('2026-03-03 23:00Z') AS next_due;
SELECT state FROM evmgmt.escalation WHERE escalation_id = :esc12;
SELECT evmgmt.acknowledge_event(9110, 'aa', 9003, 'late but mine');
SELECT state, acknowledged_by_name, ack_note FROM evmgmt.escalation_status WHERE escalation_id = :esc12;
\set VERBOSITY sqlstate
SELECT evmgmt.acknowledge_event(9110, 'aa', 9003);
\set VERBOSITY terse
SELECT details ->> 'contact' AS contact, details ->> 'stopped' AS stopped, details ->> 'awaiting' AS awaiting
FROM evmgmt.event_timeline WHERE event_id = 9109 AND action = 'acknowledged' ORDER BY entry_id;

-- Resolve (what the lifecycle's resolve_pool calls): escalations stop, unsent
-- messages are cancelled, everyone who was paged hears it is over, on a
-- channel they were paged on (not voice).
SELECT evmgmt.escalation_stop(9101, 'spec', 'resolved', '2026-03-03 14:05Z') AS stopped;
SELECT kind, channel, recipient, state, body FROM pg_temp.outbox(9101) WHERE kind = 'resolved';
-- event 9106 paged Ana by push, sms and voice; resolving it after its
-- escalation was exhausted tells her once, by sms
SELECT evmgmt.escalation_stop(9106, 'spec', 'resolved', '2026-03-03 11:01Z') AS stopped;
SELECT kind, channel, recipient, state FROM pg_temp.outbox(9106);
SELECT state, end_reason FROM evmgmt.escalation WHERE event_id = 9106;
-- stopping twice sends nothing twice
SELECT evmgmt.escalation_stop(9101, 'spec', 'resolved', '2026-03-03 14:06Z') AS stopped;
SELECT count(*) AS resolve_notices FROM evmgmt.notification WHERE event_id = 9101 AND kind = 'resolved';
-- an acknowledged or resolved escalation never pages again
SELECT evmgmt.run_due_work('2026-03-05 00:00Z') AS next_due;
SELECT count(*) AS new_pages FROM evmgmt.notification
WHERE event_id IN (9101, 9106) AND kind = 'escalation_step' AND created_at > '2026-03-03 11:01Z';

-- Driven by the lifecycle functions: classify_pool starts the plan,
-- resolve_pool stops it and tells the paged responder (at the calls' clock).
SELECT evmgmt.open_event('system', 'BER', '{spec}', 'rule', 'Lifecycle driven', now(), NULL, 'router_failure') AS lev \gset
SELECT evmgmt.classify_pool(:lev, 'spec', 'sev1');
SELECT plan_id, start_reason, state, next_step_no FROM evmgmt.escalation WHERE event_id = :lev;
SELECT evmgmt.escalation_advance(escalation_id, clock_timestamp()) AS fired FROM evmgmt.escalation WHERE event_id = :lev;
SELECT evmgmt.diagnose_pool(:lev, 'spec', 'technology', 'routing');
SELECT evmgmt.log_response(:lev, 'spec', 'routing_change') AS rid \gset
SELECT event_id = :lev AS same_event, pool, lever FROM evmgmt.response_action WHERE action_id = :rid;
SELECT evmgmt.resolve_pool(:lev, 'spec', 'router replaced');
SELECT start_reason, state, end_reason FROM evmgmt.escalation WHERE event_id = :lev;
SELECT kind, channel, recipient, state FROM evmgmt.notification WHERE event_id = :lev ORDER BY notification_id;
SELECT ended_at IS NOT NULL AS cadence_ended, end_reason FROM evmgmt.status_schedule WHERE event_id = :lev;
-- reopened: paged again from the first step, the status cadence runs again
SELECT evmgmt.reopen_pool(:lev, 'spec', 'router failed again');
SELECT start_reason, state, next_step_no FROM evmgmt.escalation WHERE event_id = :lev ORDER BY escalation_id;
SELECT ended_at IS NULL AS cadence_running, cadence FROM evmgmt.status_schedule WHERE event_id = :lev;
ROLLBACK;

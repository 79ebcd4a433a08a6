-- Poison pills: one bad item of due work never stops the others.  Each entry
-- point of run_due_work (a target timer, a status schedule, an escalation)
-- gets an item that fails (data forced in by a superuser, past every bound
-- at the door); a sev1 elsewhere still pages at its due time, the failures
-- are recorded with their error, retried with backoff and parked after 8.
-- And the bounds at the door: event times and action item dates.
-- Every run_due_work call gets an explicit moment, so the output is exact.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
BEGIN;
\ir test/fixtures/escalation.psql
SET client_min_messages = error;

INSERT INTO evmgmt.escalation_plan (plan_id, name, severities, start_reasons, priority)
VALUES ('p-sev1', 'Sev1 on-call', '{sev1}', '{opened,upgraded}', 10);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
	('p-sev1', 1, '0', 'push', 'contact', 9001),
	('p-sev1', 2, '5 min', 'sms', 'contact', 9001);

-- Poison 1, an escalation: its plan snapshot is garbage.
SELECT pg_temp.new_event(9201, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9201, 'spec', 'sev1', '2026-03-02 08:00Z');
SELECT evmgmt.escalation_start(9201, 'spec', 'opened', '2026-03-02 08:00Z') AS bad_esc \gset
UPDATE evmgmt.escalation SET plan_snapshot = '{"steps": "garbage"}' WHERE escalation_id = :bad_esc;
-- Poison 2, a status schedule whose cadence runs out of the calendar.
SELECT pg_temp.new_event(9202, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9202, 'spec', 'sev2', '2026-03-02 08:00Z');
INSERT INTO evmgmt.status_schedule (event_id, severity, cadence, started_at, next_status_at)
VALUES (9202, 'sev2', interval '300000 years', '2026-03-02 08:00Z', '2026-03-02 08:00Z');
-- Poison 3, a target timer due at infinity (its remaining time is no interval).
SELECT pg_temp.new_event(9203, '2026-03-02 08:00Z');
SELECT pg_temp.classify(9203, 'spec', 'sev2', '2026-03-02 08:00Z');
INSERT INTO evmgmt.target_timer (event_id, pool, target, due_at, warn_at, next_at)
VALUES (9203, 'spec', 'response', 'infinity', '2026-03-02 08:00Z', '2026-03-02 08:00Z');

-- The good sev1, elsewhere, opened a minute later.
SELECT pg_temp.new_event(9204, '2026-03-02 08:01Z', 'NYC');
SELECT pg_temp.classify(9204, 'spec', 'sev1', '2026-03-02 08:01Z');
SELECT evmgmt.escalation_start(9204, 'spec', 'opened', '2026-03-02 08:01Z') AS good_esc \gset

-- One pass at 08:01: the three poisons fail, each alone; the sev1 pages.
SELECT evmgmt.run_due_work('2026-03-02 08:01Z') AS next_due;
SELECT event_id, item ~ '^escalation [0-9]+$' OR item !~ '^escalation' AS item_ok, regexp_replace(item, '[0-9]+', 'N') AS item,
	   sqlstate, attempts, failed_at, retry_at, parked
FROM evmgmt.work_failure ORDER BY event_id;
SELECT step, due, fired, late_by, channel, outcome FROM pg_temp.history(:good_esc);
-- the good one's next step fires on time at 08:06 while the poisons wait for their retry at 08:01:10
SELECT evmgmt.run_due_work('2026-03-02 08:01:05Z') AS next_due;
SELECT evmgmt.run_due_work('2026-03-02 08:06Z') AS next_due;
SELECT step, due, fired, late_by, channel, outcome FROM pg_temp.history(:good_esc);
SELECT event_id, attempts, failed_at, retry_at, parked FROM evmgmt.work_failure ORDER BY event_id;

-- Retries back off (10 s doubling, at most 15 min), the 8th failure parks the item.
CREATE FUNCTION pg_temp.retry_at(t timestamptz) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM evmgmt.run_due_work(t);
	RETURN (SELECT string_agg(attempts || CASE WHEN parked THEN ' parked' ELSE ' next ' || to_char(retry_at, 'HH24:MI:SS') END, ', ' ORDER BY event_id)
			FROM evmgmt.work_failure);
END $$;
SELECT t AS run_at, pg_temp.retry_at(t) AS failures
FROM unnest(ARRAY['2026-03-02 08:06:20Z', '2026-03-02 08:07:00Z', '2026-03-02 08:08:20Z', '2026-03-02 08:11:00Z',
				  '2026-03-02 08:16:20Z', '2026-03-02 08:27:00Z', '2026-03-02 08:43:00Z']::timestamptz[]) t;
-- parked items are not due any more: with nothing else scheduled, no next due time from them
SELECT evmgmt.run_due_work('2026-03-02 09:00Z') AS next_due;
SELECT event_id, attempts, parked, retry_at FROM evmgmt.work_failure ORDER BY event_id;
-- the recorded errors (masked) and the log lines say what failed
SELECT event_id, sqlstate, error FROM evmgmt.work_failure ORDER BY event_id;
SELECT evmgmt.mask_error_text('Key (address)=(+49 151 1234 5601) already exists for ana@example.com') AS masked;

-- An admin fixes the escalation and deletes its row: it runs again at once.
UPDATE evmgmt.escalation SET state = 'cancelled', ended_at = '2026-03-02 09:00Z', next_due_at = NULL, next_step_no = NULL,
	end_reason = 'fixed by hand' WHERE escalation_id = :bad_esc;
SELECT evmgmt.run_due_work('2026-03-02 09:01Z') AS next_due;
-- parked failures stay, as the trace of what failed, even once the item is no
-- longer due (9201, fixed by hand); only an admin's DELETE removes them
SELECT event_id, parked FROM evmgmt.work_failure ORDER BY event_id;
DELETE FROM evmgmt.work_failure WHERE event_id = 9202;
SELECT evmgmt.run_due_work('2026-03-02 09:02Z') AS next_due;
SELECT event_id, attempts, parked FROM evmgmt.work_failure ORDER BY event_id;

-- The moment itself is bounded.
\set VERBOSITY sqlstate
SELECT evmgmt.run_due_work('4714-11-24 00:00+00 BC');
SELECT evmgmt.run_due_work('infinity');
\set VERBOSITY terse
ROLLBACK;

-- Bounds at the door: event times between 2000-01-01 and now.
BEGIN;
\ir test/fixtures/escalation.psql
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'ancient', detected_at => '4714-11-24 00:00+00 BC');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'before 2000', detected_at => '1999-12-31 23:59:59+00');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'far future', detected_at => '294276-12-31 23:45+00');
SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'at 2000', detected_at => '2000-01-01 00:00+00') IS NOT NULL AS opened;
-- what a superuser writes directly is held by the table's constraints
INSERT INTO evmgmt.event (operation_id, site_id, event_type, detection_source, title, detected_at, opened_at)
VALUES ('op1', 'BER', 'system', 'rule', 'direct', '4714-11-24 00:00+00 BC', '2026-03-02 08:00Z');
INSERT INTO evmgmt.event (operation_id, site_id, event_type, detection_source, title, detected_at, opened_at)
VALUES ('op1', 'BER', 'system', 'rule', 'direct', '2026-03-02 08:00Z', 'infinity');
SELECT pg_temp.new_event(9301, '2026-03-02 08:00Z');
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, opened_at, classified_at, response_due)
VALUES (9301, 'spec', 'sev1', 'classified', '2026-03-02 08:00Z', '2026-03-02 08:00Z', '294276-12-31 23:45+00');
-- action item due dates: from 2000-01-01 to ten years ahead (checked
-- before the event is looked up)
SELECT evmgmt.add_action_item(-1, 'fix it', 'ana', '1999-12-31');
SELECT evmgmt.add_action_item(-1, 'fix it', 'ana', 'infinity');
SELECT evmgmt.add_action_item(-1, 'fix it', 'ana', (current_date + interval '11 years')::date);
ROLLBACK;

-- Time conditions of escalation steps: working hours and days of week in the
-- site's or the recipient's time zone, hold until the next working window,
-- across the DST changes of 2026 (EU: 29 March and 25 October; US: 8 March).
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
-- a clean slate, whatever the tests before left behind
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
BEGIN;
\ir test/fixtures/escalation.psql

-- The window functions themselves (calendar: Monday-Friday 09:00-17:00).
SELECT at, evmgmt.in_time_window(at::timestamptz, 'Europe/Berlin', 'cal', NULL, true) AS in_hours,
	   evmgmt.next_time_window(at::timestamptz, 'Europe/Berlin', 'cal', NULL, true) AS next_window
FROM (VALUES ('2026-03-27 15:59Z'), ('2026-03-27 16:00Z'), ('2026-03-30 06:59Z'), ('2026-03-30 07:00Z'),
			 ('2026-10-23 14:59Z'), ('2026-10-23 15:00Z'), ('2026-10-26 07:59Z'), ('2026-10-26 08:00Z')) v(at);
-- days of week only: the next allowed day starts at local midnight
SELECT d AS days, evmgmt.next_time_window('2026-03-26 10:00Z', 'Europe/Berlin', NULL, d, false) AS next_window
FROM (VALUES ('{6}'::smallint[]), ('{7}'), ('{1}')) v(d);
-- New York working hours after the US change, before the EU one
SELECT evmgmt.in_time_window('2026-03-27 13:30Z', 'America/New_York', 'cal', NULL, true) AS ny_0930_edt,
	   evmgmt.in_time_window('2026-03-06 13:30Z', 'America/New_York', 'cal', NULL, true) AS ny_0830_est;
-- a holiday has no working window
INSERT INTO evmgmt.calendar_holiday VALUES ('cal', '2026-04-06', 'Easter Monday');
SELECT evmgmt.next_time_window('2026-04-03 16:00Z', 'Europe/Berlin', 'cal', NULL, true) AS after_good_friday_close;

-- Site basis with hold: push at once, sms after 30 minutes only in working
-- hours (held over the weekend and the DST change), email an hour later.
INSERT INTO evmgmt.escalation_plan (plan_id, name, start_reasons, pools) VALUES ('p-hours', 'Working hours', '{opened}', '{spec}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, working_hours_only, hold_until_window) VALUES
	('p-hours', 1, '0', 'push', 'contact', 9001, false, false),
	('p-hours', 2, '30 min', 'sms', 'contact', 9001, true, true),
	('p-hours', 3, '1 hour', 'email', 'contact', 9001, false, false);
SELECT pg_temp.new_event(9201, '2026-03-27 15:50Z');
SELECT pg_temp.classify(9201, 'spec', 'sev2', '2026-03-27 15:50Z');
SELECT evmgmt.escalation_start(9201, 'spec', 'opened', '2026-03-27 15:50Z') AS esc1 \gset
SELECT evmgmt.run_due_work('2026-03-27 15:50Z') AS next_due;
-- 16:20Z is 17:20 in Berlin: held until Monday 09:00 CEST = 07:00Z
SELECT evmgmt.run_due_work('2026-03-27 16:20Z') AS next_due;
SELECT evmgmt.run_due_work('2026-03-30 06:59Z') AS next_due;
SELECT evmgmt.run_due_work('2026-03-30 07:00Z') AS next_due;
SELECT evmgmt.run_due_work('2026-03-30 08:00Z') AS next_due;
SELECT step, scheduled, due, fired, late_by, channel, outcome, detail FROM pg_temp.history(:esc1);
SELECT state, hold_shift FROM evmgmt.escalation WHERE escalation_id = :esc1;

-- The same in autumn: 15:20Z is 17:20 CEST; Monday 09:00 is CET = 08:00Z.
SELECT pg_temp.new_event(9202, '2026-10-23 14:50Z');
SELECT pg_temp.classify(9202, 'spec', 'sev2', '2026-10-23 14:50Z');
SELECT evmgmt.escalation_start(9202, 'spec', 'opened', '2026-10-23 14:50Z') AS esc2 \gset
SELECT evmgmt.run_due_work('2026-10-23 14:50Z') AS next_due;
SELECT evmgmt.run_due_work('2026-10-23 15:20Z') AS next_due;
SELECT step, due, fired, outcome, detail FROM pg_temp.history(:esc2);
SELECT next_step_no, next_due_at FROM evmgmt.escalation WHERE escalation_id = :esc2;

-- Site basis without hold: outside the window the step records
-- outside_hours and the plan falls through to the next step at once.
UPDATE evmgmt.escalation_step SET hold_until_window = false WHERE plan_id = 'p-hours' AND step_no = 2;
SELECT pg_temp.new_event(9203, '2026-03-28 10:00Z');
SELECT pg_temp.classify(9203, 'spec', 'sev2', '2026-03-28 10:00Z');
SELECT evmgmt.escalation_start(9203, 'spec', 'opened', '2026-03-28 10:00Z') AS esc3 \gset
SELECT evmgmt.run_due_work('2026-03-28 10:30Z') AS next_due;
SELECT step, due, fired, channel, outcome, detail FROM pg_temp.history(:esc3);

-- Recipient basis: each member of the group is checked in their own zone.
INSERT INTO evmgmt.escalation_plan (plan_id, name, start_reasons, pools) VALUES ('p-local', 'Local hours', '{opened}', '{collab}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, group_id, days_of_week, working_hours_only, time_basis) VALUES
	('p-local', 1, '0', 'sms', 'group', 'duo', '{1,2,3,4,5}', true, 'recipient');
-- 07:30Z: 09:30 in Berlin, 03:30 in New York
SELECT pg_temp.new_event(9204, '2026-03-30 07:30Z');
SELECT pg_temp.classify(9204, 'collab', 'sev2', '2026-03-30 07:30Z');
SELECT evmgmt.escalation_start(9204, 'collab', 'opened', '2026-03-30 07:30Z') AS esc4 \gset
SELECT evmgmt.run_due_work('2026-03-30 07:30Z') AS next_due;
SELECT contact, recipient, outcome, detail FROM pg_temp.history(:esc4);
-- 13:30Z: 15:30 in Berlin, 09:30 EDT in New York (08:30 had it still been EST)
SELECT pg_temp.new_event(9205, '2026-03-30 13:30Z');
SELECT pg_temp.classify(9205, 'collab', 'sev2', '2026-03-30 13:30Z');
SELECT evmgmt.escalation_start(9205, 'collab', 'opened', '2026-03-30 13:30Z') AS esc5 \gset
SELECT evmgmt.run_due_work('2026-03-30 13:30Z') AS next_due;
SELECT contact, outcome FROM pg_temp.history(:esc5);
-- Recipient basis with hold: on a Saturday nobody is in their window; held
-- until the first of them starts work (Ana, Monday 09:00 CEST).
UPDATE evmgmt.escalation_step SET hold_until_window = true WHERE plan_id = 'p-local';
SELECT pg_temp.new_event(9206, '2026-03-28 12:00Z');
SELECT pg_temp.classify(9206, 'collab', 'sev2', '2026-03-28 12:00Z');
SELECT evmgmt.escalation_start(9206, 'collab', 'opened', '2026-03-28 12:00Z') AS esc6 \gset
SELECT evmgmt.run_due_work('2026-03-28 12:00Z') AS next_due;
SELECT next_due_at FROM evmgmt.escalation WHERE escalation_id = :esc6;
SELECT evmgmt.run_due_work('2026-03-30 07:00Z') AS next_due;
SELECT step, due, fired, contact, outcome, detail FROM pg_temp.history(:esc6);
ROLLBACK;

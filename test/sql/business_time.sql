-- Business time: due dates across a weekend, holidays and DST changes in two
-- time zones (Europe/Berlin, America/New_York), lunch breaks, short days,
-- round-the-clock calendars, and the target due times of the severity policy.
\set VERBOSITY terse
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
SET timezone = 'UTC';

INSERT INTO evmgmt.calendar VALUES
	('de', 'Germany office hours'), ('de6', 'Germany with Saturday mornings'),
	('lunch', 'Office with a lunch break'), ('us', 'US office hours'), ('allday', 'Round the clock'),
	('empty', 'No hours');
INSERT INTO evmgmt.calendar_hours SELECT 'de', d, '09:00', '17:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.calendar_hours SELECT 'de6', d, '09:00', '17:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.calendar_hours VALUES ('de6', 6, '09:00', '13:00');
INSERT INTO evmgmt.calendar_hours SELECT 'lunch', d, w.o, w.c FROM generate_series(1, 5) d,
	(VALUES ('08:00'::time, '12:00'::time), ('13:00', '17:00')) AS w(o, c);
INSERT INTO evmgmt.calendar_hours SELECT 'us', d, '08:00', '18:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.calendar_hours SELECT 'allday', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.calendar_holiday VALUES
	('de', '2025-10-03', 'Tag der Deutschen Einheit'), ('de', '2025-12-25', 'Christmas Day'),
	('de', '2025-12-26', 'Boxing Day'), ('us', '2025-07-04', 'Independence Day'),
	('us', '2025-11-27', 'Thanksgiving');

-- Each case: start (local wall clock), amount, expected due (local), and the result.
CREATE TEMP TABLE bt_case (n serial, cal text, tz text, start_local timestamp, amount interval, expect_local timestamp, why text);
INSERT INTO bt_case (cal, tz, start_local, amount, expect_local, why) VALUES
	('de', 'Europe/Berlin', '2025-06-04 10:00', '1 hour', '2025-06-04 11:00', 'within a working day'),
	('de', 'Europe/Berlin', '2025-06-06 16:00', '1 hour', '2025-06-06 17:00', 'ends exactly at closing: due at closing'),
	('de', 'Europe/Berlin', '2025-06-06 16:30', '1 hour', '2025-06-09 09:30', 'across the weekend'),
	('de', 'Europe/Berlin', '2025-06-06 17:00', '1 hour', '2025-06-09 10:00', 'starts at closing'),
	('de', 'Europe/Berlin', '2025-06-07 11:00', '1 hour', '2025-06-09 10:00', 'starts on a Saturday'),
	('de', 'Europe/Berlin', '2025-06-04 07:00', '30 minutes', '2025-06-04 09:30', 'starts before opening'),
	('de', 'Europe/Berlin', '2025-06-04 10:00', '20 hours', '2025-06-06 14:00', 'hours beyond one day count working hours'),
	('de', 'Europe/Berlin', '2025-06-06 15:00', '1 day', '2025-06-09 15:00', 'one business day: same position on Monday'),
	('de', 'Europe/Berlin', '2025-06-06 09:00', '1 day', '2025-06-06 17:00', 'from an opening: the close of that day'),
	('de', 'Europe/Berlin', '2025-06-07 10:00', '1 day', '2025-06-09 17:00', 'from a Saturday: end of Monday'),
	('de', 'Europe/Berlin', '2025-06-05 11:00', '5 days', '2025-06-12 11:00', 'five business days'),
	('de', 'Europe/Berlin', '2025-06-06 15:00', '1 day 02:00', '2025-06-09 17:00', 'a day and two hours'),
	('de', 'Europe/Berlin', '2025-06-06 16:00', '2 days 02:00', '2025-06-11 10:00', 'two days and two hours, past closing'),
	('de', 'Europe/Berlin', '2025-10-02 16:00', '2 hours', '2025-10-06 10:00', 'a holiday Friday and the weekend'),
	('de', 'Europe/Berlin', '2025-12-24 15:00', '1 day', '2025-12-29 15:00', 'two holidays and the weekend'),
	('de', 'Europe/Berlin', '2025-10-24 16:00', '2 hours', '2025-10-27 10:00', 'DST ends on the Sunday (CEST to CET)'),
	('de', 'Europe/Berlin', '2025-03-28 16:00', '1 day', '2025-03-31 16:00', 'DST starts on the Sunday (CET to CEST)'),
	('de6', 'Europe/Berlin', '2025-06-06 15:00', '1 day', '2025-06-07 13:00', 'next business day is shorter: its close'),
	('de6', 'Europe/Berlin', '2025-06-06 16:00', '2 hours', '2025-06-07 10:00', 'Saturday morning counts'),
	('lunch', 'Europe/Berlin', '2025-06-02 11:30', '1 hour', '2025-06-02 13:30', 'lunch break skipped'),
	('lunch', 'Europe/Berlin', '2025-06-02 12:15', '1 hour', '2025-06-02 14:00', 'starts in the lunch break'),
	('lunch', 'Europe/Berlin', '2025-06-02 14:00', '1 day', '2025-06-03 14:00', 'position after the break'),
	('us', 'America/New_York', '2025-03-07 17:00', '2 hours', '2025-03-10 09:00', 'DST starts on the Sunday (EST to EDT)'),
	('us', 'America/New_York', '2025-10-31 17:30', '1 day', '2025-11-03 17:30', 'DST ends on the Sunday (EDT to EST)'),
	('us', 'America/New_York', '2025-07-03 17:00', '2 hours', '2025-07-07 09:00', 'Independence Day'),
	('us', 'America/New_York', '2025-11-26 12:00', '1 day', '2025-11-28 12:00', 'Thanksgiving'),
	('us', 'America/New_York', '2025-06-06 17:00', '0', '2025-06-06 17:00', 'nothing to add'),
	('allday', 'Europe/Berlin', '2025-03-29 23:30', '3 hours', '2025-03-30 03:30', 'round the clock over the spring-forward night: 3 real hours'),
	('allday', 'Europe/Berlin', '2025-10-25 23:30', '3 hours', '2025-10-26 02:30', 'round the clock over the fall-back night: 3 real hours (02:30 CEST, before the clocks go back)'),
	('allday', 'America/New_York', '2025-03-08 12:00', '1 day', '2025-03-09 13:00', 'a 23-hour day: same working-time position');
SELECT n, cal, start_local, amount,
	   evmgmt.add_business_time(cal, tz, start_local AT TIME ZONE tz, amount) AT TIME ZONE tz AS due_local,
	   evmgmt.add_business_time(cal, tz, start_local AT TIME ZONE tz, amount) AS due_utc,
	   evmgmt.add_business_time(cal, tz, start_local AT TIME ZONE tz, amount) AT TIME ZONE tz = expect_local AS ok,
	   why
FROM bt_case ORDER BY n;

-- The same wall-clock schedule in two zones lands on different instants, and
-- the offset changes across the DST weekend.
SELECT tz, evmgmt.add_business_time('de', tz, '2025-10-24 16:00'::timestamp AT TIME ZONE tz, '2 hours') AS due_utc
FROM (VALUES ('Europe/Berlin'), ('America/New_York')) AS z(tz);

-- Working windows of a day (absolute times), none on a holiday.
SELECT * FROM evmgmt.business_windows('lunch', 'Europe/Berlin', '2025-06-02');
SELECT count(*) AS holiday_windows FROM evmgmt.business_windows('de', 'Europe/Berlin', '2025-10-03');
SELECT * FROM evmgmt.business_windows('allday', 'Europe/Berlin', '2025-03-30');

-- Bad input.
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', '2025-06-02 10:00+00', '1 month');
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', '2025-06-02 10:00+00', '-1 hour');
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', '2025-06-02 10:00+00', '1 day -1 hour');
SELECT evmgmt.add_business_time('empty', 'Europe/Berlin', '2025-06-02 10:00+00', '1 hour');
SELECT evmgmt.add_business_time('nosuch', 'Europe/Berlin', '2025-06-02 10:00+00', '1 hour');
SELECT evmgmt.add_business_time('de', 'Mars/Olympus', '2025-06-02 10:00+00', '1 hour');
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', NULL, '1 hour') IS NULL AS null_in_null_out;
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', 'infinity', '1 hour');
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', '2025-06-02 10:00+00', '1001 days');
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', '2025-06-02 10:00+00', '24001 hours');
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', '2025-06-02 10:00+00', '1000 days') AT TIME ZONE 'Europe/Berlin' AS thousand_business_days;
SELECT evmgmt.add_business_time('de', 'Europe/Berlin', '2025-06-02 10:00+00', '2000 hours') AT TIME ZONE 'Europe/Berlin' AS two_thousand_working_hours;

-- Non-business targets: hours elapse in real time; days are calendar days in
-- the site's zone (a '1 day' over the fall-back night is 25 real hours).
SELECT evmgmt.add_target_time('de', 'Europe/Berlin', '2025-10-26 00:30+02', '4 hours', false) AS four_hours_over_fall_back,
	   evmgmt.add_target_time('de', 'Europe/Berlin', '2025-10-25 12:00+02', '1 day', false) AS one_day_over_fall_back,
	   evmgmt.add_target_time('de', 'Europe/Berlin', '2025-10-25 12:00+02', '1 day 01:00', false) AS day_and_hour,
	   evmgmt.add_target_time('de', 'Europe/Berlin', '2025-06-06 16:30+02', '1 hour', true) AS business;

-- Policy targets per tier for a site in each zone, clock started on a Friday
-- afternoon before the European DST change.
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('BER', 'acme', 'Berlin', 'Europe/Berlin', 'de'), ('NYC', 'acme', 'New York', 'America/New_York', 'us');
SELECT s.site_id, sev.severity, d.response_due AT TIME ZONE s.time_zone AS response_due_local,
	   d.resolution_due AT TIME ZONE s.time_zone AS resolution_due_local
FROM evmgmt.site s
CROSS JOIN unnest(enum_range(NULL::evmgmt.severity)) AS sev(severity)
CROSS JOIN LATERAL evmgmt.target_due(s.site_id, sev.severity, '2025-10-24 15:00'::timestamp AT TIME ZONE s.time_zone) d
ORDER BY 1, 2;
-- a calibrated policy changes the due times of that operation only
SELECT evmgmt.calibrate_from_defaults('acme');
UPDATE evmgmt.severity_policy SET resolution_target = '2 days' WHERE operation_id = 'acme' AND severity = 'sev3';
SELECT resolution_due AT TIME ZONE 'Europe/Berlin' AS sev3_resolution_calibrated
FROM evmgmt.target_due('BER', 'sev3', '2025-10-24 15:00+02');
SELECT response_due IS NULL AND resolution_due IS NULL AS unknown_site_no_due FROM evmgmt.target_due('nosuch', 'sev1', '2025-10-24 15:00+02');

-- Interval ingest: good rows load, each kind of bad row is refused with a
-- precise, named error, and the inbox path quarantines bad rows with the reason.
\set VERBOSITY default
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- start from an empty extension: tests share one database
DROP EXTENSION evmgmt CASCADE;
CREATE EXTENSION evmgmt;
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Standard week');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('MNL1', 'acme', 'Manila 1', 'Asia/Manila', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'acme', 'Billing');
-- the month partition of the test data, so that errors name it whatever the
-- worker's partition upkeep does meanwhile
SELECT evmgmt.create_interval_partitions(0, '2026-03-02 00:00+00') AS created;

-- a good row
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
	abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:00+08', 15, 120, 110, 10, 90, 20, 300, 40, 42, 118, 295);

-- negative counts
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, -1, 0, 0, 20);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, -2, 0, 20);
-- handled > offered
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 11, 5, 20);
-- handled + abandoned > offered
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 3, 5, 20);
-- answered in threshold > handled
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 9, 20);
-- interval length not dividing the hour
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 25, 10, 8, 5, 20);
-- start not on an interval boundary
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:07+08', 15, 10, 8, 5, 20);
-- unknown site, unknown queue, unknown pool
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('NOPE', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'nope', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'bots', '2026-03-02 09:15+08', 15, 10, 8, 5, 20);
-- the same interval again: a re-delivery replaces the earlier row
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:00+08', 15, 10, 8, 5, 20);
SELECT offered, handled, count(*) OVER () AS copies FROM evmgmt.interval_stat WHERE site_id = 'MNL1';
-- and the original comes back again, within one transaction, by COPY too
BEGIN;
COPY evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht) FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-02 09:00+08,15,120,110,10,90,20,300,40,42,118,295
\.
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:00+08', 15, 120, 110, 10, 90, 20, 300, 40, 42, 118, 295);
COMMIT;
SELECT offered, handled, count(*) OVER () AS copies FROM evmgmt.interval_stat WHERE site_id = 'MNL1';
-- the same interval twice in one statement of a new series is refused at commit
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'aa', '2026-03-02 09:00+08', 15, 10, 8, 5, 20), ('MNL1', 'billing', 'aa', '2026-03-02 09:00+08', 15, 10, 8, 5, 20);
-- the process-health counts are bounded by what was handled or offered
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, escalated)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20, 9);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, transferred)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20, -1);
-- a site that intervals name cannot be deleted
DELETE FROM evmgmt.site WHERE site_id = 'MNL1';
-- AHT not finite
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, aht_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 8, 5, 20, 'NaN');

-- a COPY stops at the first bad row, naming the line
COPY evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds) FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-02 09:15+08,15,100,95,5,80,20
MNL1,billing,spec,2026-03-02 09:30+08,15,100,101,0,80,20
\.
SELECT count(*) AS rows_after_failed_copy FROM evmgmt.interval_stat;

-- 30-minute intervals at a site offset by 45 minutes from UTC keep their local boundaries
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('KTM1', 'acme', 'Kathmandu', 'Asia/Kathmandu', 'std');
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('KTM1', 'billing', 'collab', '2026-03-02 09:30+05:45', 30, 10, 8, 5, 20);

-- the inbox keeps going: good rows land, bad rows are quarantined with the reason
COPY evmgmt.interval_inbox FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-02 09:15+08,15,100,95,5,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 09:30+08,15,100,101,0,80,20,310,38,40,102,300,,,
NOPE,billing,spec,2026-03-02 09:30+08,15,100,90,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 09:45+08,fifteen,100,90,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 09:45+08,15,100,90,10,80,20,310,38,40,102,300,4,3,2
MNL1,billing,bots,2026-03-02 10:00+08,15,100,90,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 25:00+08,15,100,90,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 10:00+08,15,99999999999,90,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 10:00+08,15,100,90,0,80,20,1e99,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 10:00+08,15,100,90,0,80,20,NaN,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 10:00+08,15,,90,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 10:07+08,15,100,90,0,80,20,310,38,40,102,300,,,
MNL1,nope,spec,2026-03-02 10:00+08,15,100,90,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 10:00+08,15,100,90,0,80,20,310,38,40,102,300,91,,
MNL1,billing,spec,1900-03-02 10:00+08,15,100,90,0,80,20,310,38,40,102,300,,,
\.
SELECT count(*) AS inbox_rows_kept FROM evmgmt.interval_inbox;
SELECT site_id, interval_start AT TIME ZONE 'Asia/Manila' AS local_start, offered, handled
FROM evmgmt.interval_stat ORDER BY site_id, interval_start;
SELECT row_data ->> 'site_id' AS site, row_data ->> 'interval_minutes' AS minutes, sqlstate, constraint_name, reason, detail
FROM evmgmt.interval_quarantine ORDER BY row_data ->> 'interval_start', reason;
-- the same file again changes nothing in interval_stat (its bad rows are quarantined again)
SELECT count(*) AS quarantined_before FROM evmgmt.interval_quarantine \gset
COPY evmgmt.interval_inbox FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-02 09:15+08,15,100,95,5,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 09:30+08,15,100,101,0,80,20,310,38,40,102,300,,,
MNL1,billing,spec,2026-03-02 09:45+08,15,100,90,10,80,20,310,38,40,102,300,4,3,2
\.
SELECT site_id, interval_start AT TIME ZONE 'Asia/Manila' AS local_start, offered, handled, transferred, escalated, repeat_contacts
FROM evmgmt.interval_stat ORDER BY site_id, interval_start;
SELECT count(*) - :quarantined_before AS quarantined_again FROM evmgmt.interval_quarantine;
SELECT site_id, queue_id, pool, first_interval_start AT TIME ZONE 'Asia/Manila' AS first_local,
	   last_interval_start AT TIME ZONE 'Asia/Manila' AS last_local
FROM evmgmt.interval_series ORDER BY 1, 2, 3;

-- the forgiving parsers never raise
SELECT v, evmgmt.try_integer(v) AS int, evmgmt.try_real(v) AS real
FROM unnest(ARRAY[' 42 ', '-7', '+3', '4.5', '1e3', 'x', '', '99999999999999999999999', '0x10', 'NaN', '-Infinity', '.5']) v;
SELECT v, evmgmt.try_timestamptz(v) AS ts
FROM unnest(ARRAY['2026-03-02 09:00+08', '2026-02-30 09:00', 'epoch', 'garbage', '4714-11-24 BC', '294277-01-01']) v;
SELECT evmgmt.interval_start_aligned('2026-03-02 09:45+05:45', 30::smallint) AS ktm_half_hour,
	   evmgmt.interval_start_aligned('2026-03-02 09:07+08', 15::smallint) AS off_boundary,
	   evmgmt.interval_start_aligned('2026-03-02 09:00:30+08', 5::smallint) AS half_minute,
	   evmgmt.interval_start_aligned('2026-03-02 09:00+08', 0::smallint) AS zero_length;

-- partitions: rows of a month without partition wait in the default one and
-- are moved when it is created; old months are dropped past the retention
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-01-05 09:00+00', 15, 10, 8, 5, 20);
SELECT evmgmt.create_interval_partitions(1, '2026-03-15 00:00+00') >= 0 AS done;
SELECT partition_name, month, bounds FROM evmgmt.interval_partitions WHERE month < '2026-05-01' ORDER BY 1;
SELECT count(*) AS in_default FROM evmgmt.interval_stat_default;
SELECT evmgmt.drop_interval_partitions('60 days', '2026-04-10 00:00+00') AS dropped;
SELECT partition_name FROM evmgmt.interval_partitions WHERE month < '2026-05-01' ORDER BY 1;
SELECT count(*) AS rows_left FROM evmgmt.interval_stat;
SELECT evmgmt.create_interval_partitions(-1);
SELECT evmgmt.drop_interval_partitions('1 hour');

-- figures no contact center has are refused, so that no series carries a
-- poison value into classification and the Erlang math (docs/intervals
-- bounds: staffed and scheduled up to 1,000,000 agents, AHT, forecast AHT and
-- the threshold up to a day, forecast offered up to 100,000,000)
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, staffed)
VALUES ('MNL1', 'billing', 'spec', '2026-03-03 09:00+08', 15, 10, 8, 5, 20, 1000001);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, aht_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-03 09:00+08', 15, 10, 8, 5, 20, 86401);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-03 09:00+08', 15, 10, 8, 5, 86401);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, forecast_offered)
VALUES ('MNL1', 'billing', 'spec', '2026-03-03 09:00+08', 15, 10, 8, 5, 20, 1e9);
-- the largest accepted values go in
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
VALUES ('MNL1', 'billing', 'spec', '2026-03-03 09:00+08', 15, 10, 8, 5, 86400, 86400, 1000000, 1000000, 100000000, 86400);
-- the inbox quarantines them by the same rules, and the good row of the load lands
COPY evmgmt.interval_inbox FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-03 09:15+08,15,100,95,5,80,20,310,2000000,40,102,300,,,
MNL1,billing,spec,2026-03-03 09:30+08,15,100,95,5,80,20,90000,38,40,102,300,,,
MNL1,billing,spec,2026-03-03 09:45+08,15,100,95,5,80,20,310,38,40,102,300,,,
\.
SELECT row_data ->> 'interval_start' AS interval_start, reason FROM evmgmt.interval_quarantine
WHERE row_data ->> 'interval_start' LIKE '2026-03-03%' ORDER BY 1;
SELECT interval_start, staffed FROM evmgmt.interval_stat WHERE site_id = 'MNL1' AND interval_start >= '2026-03-03 09:15+08' ORDER BY 1;

-- what a load touched is noted per statement (src/load_capture.c): a load
-- that fails inside a savepoint leaves nothing behind for the next one, whose
-- series alone are kept; a re-delivery twice in one transaction keeps the last
BEGIN;
SAVEPOINT s;
COPY evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds) FROM stdin WITH (FORMAT csv);
MNL1,billing,collab,2026-03-04 09:00+08,15,100,95,80,20
MNL1,billing,collab,2026-03-04 09:15+08,15,100,101,80,20
\.
ROLLBACK TO SAVEPOINT s;
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-03 09:45+08', 15, 50, 40, 30, 20);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
VALUES ('MNL1', 'billing', 'spec', '2026-03-03 09:45+08', 15, 60, 50, 30, 20);
COMMIT;
SELECT pool, first_interval_start, last_interval_start FROM evmgmt.interval_series WHERE site_id = 'MNL1' ORDER BY pool;
SELECT offered, count(*) OVER () AS copies FROM evmgmt.interval_stat WHERE site_id = 'MNL1' AND pool = 'spec' AND interval_start = '2026-03-03 09:45+08';
-- an UPDATE is not a load: nothing is noted, the row changes
UPDATE evmgmt.interval_stat SET offered = 70 WHERE site_id = 'MNL1' AND pool = 'spec' AND interval_start = '2026-03-03 09:45+08';
SELECT offered FROM evmgmt.interval_stat WHERE site_id = 'MNL1' AND pool = 'spec' AND interval_start = '2026-03-03 09:45+08';
-- the rules of a row are one CHECK whose error names the rule broken, in the
-- error's fields too; a row breaking several gets the first by name (as
-- PostgreSQL orders CHECK constraints), in both paths; outside a load the
-- function notes nothing; the frame's readers are the trigger's alone
DO $$
DECLARE v_c text; v_t text; v_s text; v_state text;
BEGIN
	INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, aht_seconds)
	VALUES ('MNL1', 'billing', 'spec', '2026-03-05 09:00+08', 15, -1, 0, 0, 20, 0);
EXCEPTION WHEN check_violation THEN
	GET STACKED DIAGNOSTICS v_c = CONSTRAINT_NAME, v_t = TABLE_NAME, v_s = SCHEMA_NAME, v_state = RETURNED_SQLSTATE;
	RAISE WARNING 'sqlstate %, constraint %, table %.%', v_state, v_c, v_s, v_t;
END
$$;
SELECT (evmgmt.interval_inbox_problem('MNL1', 'billing', 'spec', '2026-03-05 09:00+08', '15', '-1', '0', NULL, '0', '20', '0',
									  NULL, NULL, NULL, NULL, NULL, NULL, NULL, true, true))[2] AS inbox_constraint;
SELECT evmgmt.interval_stat_rules('X', 'Y', 'aa', '2026-03-05 09:00+08', 15::smallint, 10, 8, 0, 5, 20,
								  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS holds,
	   evmgmt.interval_stat_rules(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
								  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS holds_on_nulls;
SELECT evmgmt.interval_stat_rules('X', 'Y', 'aa', '2026-03-05 09:00+08', 15::smallint, 10, 8, 0, 5, 20,
								  'Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL) AS infinite_aht;
SET ROLE evmgmt_ingest;
SELECT evmgmt.interval_stat_touched();
RESET ROLE;
-- the inbox parses each row once: a code longer than any code can be is
-- unknown, an empty line of values is refused by its first NOT NULL, the
-- text of a bad row is kept as it came, good rows of the batch land
SELECT COALESCE(max(quarantine_id), 0) AS q0 FROM evmgmt.interval_quarantine \gset
COPY evmgmt.interval_inbox FROM stdin WITH (FORMAT csv);
MNL1,billing,aa,2026-03-04 10:00+08,15,100,95,,80,20,,,,,,,,
MNL1,billing,aa,2026-03-04 10:15+08,15, 100 ,95,5,80,20,300.5,3.5e1,36,101,295,1,2,3
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,billing,aa,2026-03-04 10:30+08,15,100,95,5,80,20,,,,,,,,
,,,,,,,,,,,,,,,,,
MNL1,billing,aa,2026-03-04 10:45+08,15,100,95,5,80,20,,,,,,,,x
\.
SELECT sqlstate, constraint_name, reason, detail, row_data ->> 'repeat_contacts' AS repeat_contacts
FROM evmgmt.interval_quarantine WHERE quarantine_id > :q0 ORDER BY quarantine_id;
SELECT interval_start, offered, abandoned, aht_seconds, staffed, transferred, escalated, repeat_contacts
FROM evmgmt.interval_stat WHERE site_id = 'MNL1' AND pool = 'aa' AND interval_start >= '2026-03-04 00:00+08' ORDER BY 1;
SELECT count(*) AS left_in_inbox FROM evmgmt.interval_inbox;

-- the partition upkeep's settings are server settings, with a range and a unit
SET evmgmt.interval_partitions_ahead = 121;
SET evmgmt.interval_retention = '-1';
SET evmgmt.interval_retention = '400d';
SHOW evmgmt.interval_retention;
SELECT evmgmt.setting_interval('evmgmt.interval_retention', NULL) AS retention;
RESET evmgmt.interval_retention;
SELECT evmgmt.setting_interval('evmgmt.interval_retention', NULL) AS retention_by_default,
	   current_setting('evmgmt.interval_partitions_ahead') AS ahead_by_default;

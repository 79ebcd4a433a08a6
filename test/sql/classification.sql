-- Severity classification: every threshold and sustain boundary, a policy
-- calibrated differently per operation, the sustained-run aggregate over
-- interval series (gaps, offered = 0, order) and the set-wise classification.
\set VERBOSITY terse
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
SET timezone = 'UTC';

-- Reference matrix: sev1 0 / 0 min, sev2 < 0.30 for > 60 min, sev3 < 0.60 for > 30 min.
SELECT sl, minutes,
	   evmgmt.classify_severity(sl, minutes, 0, 0, 0.30, 60, 0.60, 30) AS tier
FROM (VALUES
	(0.0, 0.0),			-- outage: at once
	(0.0, 0.5),
	(0.0, 600.0),
	(0.0001, 0.0),		-- not an outage, not sustained
	(0.0001, 30.0),		-- sev3 sustain boundary: 30 is not > 30
	(0.0001, 30.001),	-- just past it
	(0.0001, 60.0),		-- sev2 sustain boundary: 60 is not > 60, but sev3 holds
	(0.0001, 60.001),
	(0.2999, 61.0),		-- just below the sev2 threshold
	(0.30, 61.0),		-- at the sev2 threshold: not below it
	(0.30, 31.0),
	(0.5999, 30.0),
	(0.5999, 31.0),		-- just below the sev3 threshold
	(0.60, 31.0),		-- at the sev3 threshold: no event
	(0.60, 10000.0),
	(1.0, 10000.0)
) AS v(sl, minutes);

-- NULL signal or duration: no classification; a NULL threshold skips the tier.
SELECT evmgmt.classify_severity(NULL, 10, 0, 0, 0.30, 60, 0.60, 30) AS null_sl,
	   evmgmt.classify_severity(0.1, NULL, 0, 0, 0.30, 60, 0.60, 30) AS null_minutes,
	   evmgmt.classify_severity(0.0, 90, NULL, NULL, 0.30, 60, 0.60, 30) AS no_sev1_tier,
	   evmgmt.classify_severity(0.0, 90, NULL, NULL, NULL, NULL, NULL, NULL) AS no_tiers;

-- Bad input: clear errors, SQLSTATE 22023.
\set VERBOSITY sqlstate
SELECT evmgmt.classify_severity(-0.01, 10, 0, 0, 0.30, 60, 0.60, 30);
SELECT evmgmt.classify_severity(1.01, 10, 0, 0, 0.30, 60, 0.60, 30);
SELECT evmgmt.classify_severity('NaN', 10, 0, 0, 0.30, 60, 0.60, 30);
SELECT evmgmt.classify_severity(0.5, -1, 0, 0, 0.30, 60, 0.60, 30);
SELECT evmgmt.classify_severity(0.5, 'Infinity', 0, 0, 0.30, 60, 0.60, 30);
SELECT evmgmt.classify_severity(0.5, 'NaN', 0, 0, 0.30, 60, 0.60, 30);
SELECT evmgmt.classify_severity(0.5, 10, 0, 0, 1.5, 60, 0.60, 30);
SELECT evmgmt.classify_severity(0.5, 10, 0, 0, 0.30, -5, 0.60, 30);
SELECT evmgmt.classify_severity(0.5, 10, 0, 0, 0.30, NULL, 0.60, 30);
\set VERBOSITY terse
SELECT evmgmt.classify_severity(0.5, 10, 0, 0, 0.30, NULL, 0.60, 30);

-- Two operations: one on the reference matrix, one calibrated tighter
-- (sev1 below 5%, sev2 below 50% for > 30 min, sev3 below 75% for > 15 min).
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme'), ('strict', 'Strict Co');
SELECT evmgmt.calibrate_from_defaults('strict');
UPDATE evmgmt.severity_policy SET sl_threshold = 0.05, sustain_minutes = 0 WHERE operation_id = 'strict' AND severity = 'sev1';
UPDATE evmgmt.severity_policy SET sl_threshold = 0.50, sustain_minutes = 30 WHERE operation_id = 'strict' AND severity = 'sev2';
UPDATE evmgmt.severity_policy SET sl_threshold = 0.75, sustain_minutes = 15 WHERE operation_id = 'strict' AND severity = 'sev3';
SELECT * FROM evmgmt.severity_thresholds ORDER BY operation_id;
SELECT sl, minutes,
	   evmgmt.classify_severity('acme', sl, minutes) AS acme,
	   evmgmt.classify_severity('strict', sl, minutes) AS strict
FROM (VALUES
	(0.0, 0.0), (0.0499, 0.0), (0.05, 0.0), (0.05, 31.0),
	(0.4999, 30.0), (0.4999, 30.5), (0.50, 31.0),
	(0.5999, 15.0), (0.5999, 16.0), (0.5999, 31.0),
	(0.7499, 15.0), (0.7499, 16.0), (0.75, 16.0)
) AS v(sl, minutes);
-- an unknown operation has no policy
SELECT evmgmt.classify_severity('nobody', 0.0, 10) AS unknown_operation;
-- sev4 is never signal-driven
UPDATE evmgmt.severity_policy SET sl_threshold = 0.9, sustain_minutes = 10 WHERE operation_id = 'strict' AND severity = 'sev4';

-- The runs a set of service levels yields (sev1, sev2, sev3 sustain 0/60/30).
SELECT r1, r2, r3, evmgmt.classify_sustained_runs(r1, r2, r3, 0, 60, 30) AS tier
FROM (VALUES (15.0, 75.0, 75.0), (0.0, 75.0, 75.0), (0.0, 60.0, 75.0), (0.0, 0.0, 45.0),
			 (0.0, 0.0, 30.0), (0.0, 0.0, 0.0), (15.0, 15.0, 15.0)) AS v(r1, r2, r3);
SELECT evmgmt.classify_sustained_runs(NULL, 75, 75, NULL, 60, 30) AS sev1_not_signal_driven;

-- The aggregate as a window function: the trailing run below 0.60 at every
-- interval; a gap (10:45 missing) and an interval with nothing offered
-- (NULL service level) break the run.
CREATE TEMP TABLE series (start timestamptz, minutes integer, sl double precision);
INSERT INTO series VALUES
	('2025-06-02 09:00+00', 15, 0.80),
	('2025-06-02 09:15+00', 15, 0.50),
	('2025-06-02 09:30+00', 15, 0.40),
	('2025-06-02 09:45+00', 15, 0.20),
	('2025-06-02 10:00+00', 15, 0.59),
	('2025-06-02 10:15+00', 15, 0.60),
	('2025-06-02 10:30+00', 15, 0.10),
	('2025-06-02 11:00+00', 15, 0.10),
	('2025-06-02 11:15+00', 30, 0.00),
	('2025-06-02 11:45+00', 15, NULL),
	('2025-06-02 12:00+00', 15, 0.00);
SELECT start, minutes, sl,
	   evmgmt.sustained_minutes_below(sl, 0.60, start, minutes) OVER w AS run_below_60,
	   evmgmt.sustained_minutes_below(sl, 0.30, start, minutes) OVER w AS run_below_30,
	   evmgmt.sustained_minutes_below(sl, 0.0, start, minutes) OVER w AS run_outage
FROM series WINDOW w AS (ORDER BY start)
ORDER BY start;
-- as a plain aggregate: the trailing run at the end of the series
SELECT evmgmt.sustained_minutes_below(sl, 0.60, start, minutes ORDER BY start) AS trailing_60,
	   evmgmt.sustained_minutes_below(sl, NULL, start, minutes ORDER BY start) AS no_threshold
FROM series;
SELECT evmgmt.sustained_minutes_below(sl, 0.60, start, minutes ORDER BY start) AS before_the_gap
FROM series WHERE start < '2025-06-02 10:45+00';
-- sustained_runs_below: every threshold in one pass, NULL for a NULL threshold,
-- equal to the scalar form at every row
SELECT start, evmgmt.sustained_runs_below(sl, ARRAY[0.0, 0.30, 0.60, NULL], start, minutes) OVER w AS runs,
	   evmgmt.sustained_runs_below(sl, ARRAY[0.0, 0.30, 0.60, NULL], start, minutes) OVER w
	   = ARRAY[evmgmt.sustained_minutes_below(sl, 0.0, start, minutes) OVER w,
			   evmgmt.sustained_minutes_below(sl, 0.30, start, minutes) OVER w,
			   evmgmt.sustained_minutes_below(sl, 0.60, start, minutes) OVER w, NULL] IS NOT FALSE AS same_as_scalar
FROM series WINDOW w AS (ORDER BY start)
ORDER BY start;
SELECT evmgmt.sustained_runs_below(sl, '{}'::float8[], start, minutes ORDER BY start) AS no_thresholds FROM series;
\set VERBOSITY sqlstate
SELECT evmgmt.sustained_runs_below(sl, NULL::float8[], start, minutes ORDER BY start) FROM series;
SELECT evmgmt.sustained_runs_below(sl, '{{0.3},{0.6}}'::float8[], start, minutes ORDER BY start) FROM series;
SELECT evmgmt.sustained_runs_below(sl, array_fill(0.5::float8, ARRAY[17]), start, minutes ORDER BY start) FROM series;
SELECT evmgmt.sustained_runs_below(sl, ARRAY[0.3, 'NaN'], start, minutes ORDER BY start) FROM series;
\set VERBOSITY terse

-- input order does not matter (the aggregate sorts what came out of order)
SELECT evmgmt.sustained_minutes_below(sl, 0.60, start, minutes ORDER BY start DESC) AS reversed,
	   evmgmt.sustained_minutes_below(sl, 0.60, start, minutes ORDER BY md5(start::text)) AS shuffled,
	   evmgmt.sustained_runs_below(sl, ARRAY[0, 0.3, 0.6], start, minutes ORDER BY md5(start::text)) AS shuffled_runs,
	   evmgmt.sustained_minutes_below(sl, 0.60, start, minutes ORDER BY start DESC)
	   FILTER (WHERE start < '2025-06-02 10:45+00') AS reversed_before_gap,
	   evmgmt.sustained_runs_below(sl, ARRAY[0, 0.3, 0.6], start, minutes ORDER BY md5(start::text))
	   FILTER (WHERE start <= '2025-06-02 10:00+00') AS shuffled_runs_to_10
FROM series;
-- overlapping intervals are refused, in order or not
\set VERBOSITY sqlstate
SELECT evmgmt.sustained_minutes_below(sl, 0.60, start, 30 ORDER BY start) FROM series;
SELECT evmgmt.sustained_minutes_below(sl, 0.60, start, 30 ORDER BY start DESC) FROM series;
SELECT evmgmt.sustained_minutes_below(sl, 0.60, start, minutes) FROM (SELECT * FROM series UNION ALL SELECT * FROM series) twice;
SELECT evmgmt.sustained_minutes_below(1.5, 0.60, start, minutes ORDER BY start) FROM series;
SELECT evmgmt.sustained_minutes_below(sl, 0.60, start, 0 ORDER BY start) FROM series;
SELECT evmgmt.sustained_minutes_below(0.5, 0.60, '294276-12-31 23:00:00+00', 2147483647);
SELECT evmgmt.sustained_minutes_below(0.5, 0.60, 'infinity', 15);
SELECT evmgmt.sustained_minutes_below(0.5, 'NaN', '2025-06-02 10:00+00', 15);
\set VERBOSITY terse

-- Service level of an interval: answered in threshold / offered, NULL when nothing was offered.
SELECT evmgmt.interval_service_level(30, 100) AS sl, evmgmt.interval_service_level(0, 0) AS nothing_offered,
	   evmgmt.interval_service_level(NULL, 100) AS null_in_null_out;
SELECT evmgmt.interval_service_level(101, 100);
SELECT evmgmt.interval_service_level(-1, 100);

-- Set-wise over interval_stat: one site per operation, three series each.
INSERT INTO evmgmt.calendar VALUES ('cal', 'Calendar');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('A1', 'acme', 'Acme 1', 'Europe/Berlin', 'cal'),
	('S1', 'strict', 'Strict 1', 'America/New_York', 'cal');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('qa', 'acme', 'Acme queue'), ('qs', 'strict', 'Strict queue');
-- per series: n contiguous 15-minute intervals ending 12:00 at a given
-- service level (answered of 100 offered), after one healthy interval
CREATE TEMP TABLE plan (site text, queue text, pool evmgmt.pool, n integer, answered integer, offered integer);
INSERT INTO plan VALUES
	('A1', 'qa', 'aa', 4, 29, 100),		-- < 30% for 60 min: not > 60, so sev3
	('A1', 'qa', 'collab', 5, 29, 100),	-- < 30% for 75 min: sev2
	('A1', 'qa', 'spec', 1, 0, 100),		-- outage for 15 min: sev1
	('S1', 'qs', 'aa', 2, 59, 100),		-- < 75% for 30 min: strict sev3 (> 15), acme would say none
	('S1', 'qs', 'collab', 3, 49, 100),	-- < 50% for 45 min: strict sev2 (> 30)
	('S1', 'qs', 'spec', 3, 0, 0);		-- nothing offered: no signal, no event
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
								  answered_in_threshold, threshold_seconds)
SELECT p.site, p.queue, p.pool, '2025-06-02 12:00+00'::timestamptz - (i * 15) * interval '1 minute', 15,
	   CASE WHEN i > p.n THEN 100 ELSE p.offered END, CASE WHEN i > p.n THEN 100 ELSE p.offered END,
	   CASE WHEN i > p.n THEN 90 ELSE p.answered END, 20
FROM plan p CROSS JOIN LATERAL generate_series(1, p.n + 1) AS i;
SELECT site_id, queue_id, pool, last_interval_end, service_level,
	   minutes_below_sev1 AS run1, minutes_below_sev2 AS run2, minutes_below_sev3 AS run3, severity
FROM evmgmt.classify_series('2025-06-02 12:00+00', '1 day');
-- an interval not yet complete at "at" is not counted; the same series a minute earlier
SELECT site_id, pool, last_interval_end, severity
FROM evmgmt.classify_series('2025-06-02 11:59+00', '1 day') WHERE site_id = 'A1';
-- one site, one pool, or one queue and pool
SELECT site_id, pool, severity FROM evmgmt.classify_series('2025-06-02 12:00+00', '1 day', site_id => 'S1');
SELECT site_id, pool, severity FROM evmgmt.classify_series('2025-06-02 12:00+00', '1 day', pool => 'spec');
SELECT site_id, pool, severity FROM evmgmt.classify_series('2025-06-02 12:00+00', '2 hours', queue_id => 'qa', pool => 'collab');
-- runs are counted inside the lookback: 70 minutes hold only four intervals,
-- too few for sev2's "> 60 minutes"; longer than sustain + one interval
-- (76 minutes) the tier is right again, with the run capped at 75
SELECT pool, minutes_below_sev2, severity FROM evmgmt.classify_series('2025-06-02 12:00+00', '70 minutes', site_id => 'A1');
SELECT pool, minutes_below_sev2, severity FROM evmgmt.classify_series('2025-06-02 12:00+00', '76 minutes', site_id => 'A1');
-- a missing interval in the middle of the < 30% run breaks it
DELETE FROM evmgmt.interval_stat WHERE site_id = 'A1' AND pool = 'collab' AND interval_start = '2025-06-02 11:15+00';
SELECT pool, minutes_below_sev2, severity
FROM evmgmt.classify_series('2025-06-02 12:00+00', '1 day') WHERE site_id = 'A1' AND pool = 'collab';
-- the view is the same at now(); these rows are in the past, outside its one-day lookback
SELECT count(*) AS current_rows FROM evmgmt.series_severity;

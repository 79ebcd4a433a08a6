-- Fuzz: the classification, business-time and lifecycle functions with
-- extreme arguments (NaN, +-Infinity, -0, 1e308, INT_MIN/INT_MAX, infinite
-- and extreme timestamps, NULL in every position).  Every call runs in its
-- own exception block; what is printed is, per function, how many calls
-- succeeded and which SQLSTATEs the others raised.  An internal error (XX000)
-- or a crash would show here.  Argument lists are fixed, so the output is
-- deterministic.
\set VERBOSITY terse
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
SET timezone = 'UTC';

CREATE TEMP TABLE ff AS SELECT v FROM unnest(ARRAY[
	'NaN', 'Infinity', '-Infinity', '0', '-0', '1e308', '-1e308', '5e-324', '-5e-324', '1e-300',
	'0.3', '0.29999999999999999', '0.6', '0.5999999', '1', '1.0000001', '-1', '30', '60', '60.0000001', '2147483647'
]::float8[]) v;
CREATE TEMP TABLE fi AS SELECT v FROM unnest(ARRAY[-2147483648, -1, 0, 1, 15, 30, 60, 61, 2147483647]) v;
CREATE TEMP TABLE ft AS SELECT v FROM unnest(ARRAY[
	'-infinity', 'infinity', '4714-11-24 00:00:00+00 BC', '294276-12-31 23:45:00+00', '1970-01-01 00:00+00',
	'2025-03-30 00:45+00', '2025-06-02 10:00+00'
]::timestamptz[]) v;
CREATE TEMP TABLE fa AS SELECT v FROM unnest(ARRAY[
	'0', '1 microsecond', '-1 microsecond', '1 hour', '1 day', '-1 day', '1 mon', '1 year', '1001 days',
	'24001 hours', '1 day -1 hour', '178000000 years', '-178000000 years'
]::interval[]) v;

-- Run each statement of a set, count successes and SQLSTATEs.
CREATE FUNCTION pg_temp.run(stmts text[], OUT calls int, OUT ok int, OUT sqlstates text)
LANGUAGE plpgsql AS $$
DECLARE
	s text;
	st text;
	counts jsonb := '{}';
BEGIN
	calls := 0; ok := 0;
	FOREACH s IN ARRAY stmts LOOP
		calls := calls + 1;
		BEGIN
			EXECUTE s;
			ok := ok + 1;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
			counts := counts || jsonb_build_object(st, COALESCE((counts ->> st)::int, 0) + 1);
		END;
	END LOOP;
	SELECT string_agg(key || ' x' || value, ', ' ORDER BY key) INTO sqlstates FROM jsonb_each_text(counts);
END
$$;

CREATE FUNCTION pg_temp.lit(v anyelement) RETURNS text LANGUAGE sql AS $$ SELECT quote_nullable(v::text) $$;

-- classify_severity: service level x minutes with the reference matrix, then
-- every threshold and sustain argument over its list; the result must be a
-- tier or NULL, checked by the statement itself.
SELECT 'classify_severity' AS fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT 1 / (CASE WHEN evmgmt.classify_severity(%s::float8, %s::float8, 0, 0, 0.3, 60, 0.6, 30) IS DISTINCT FROM ''sev4'' THEN 1 ELSE 0 END)',
				  pg_temp.lit(a.v), pg_temp.lit(b.v))
	FROM ff a, ff b
	UNION ALL
	SELECT format('SELECT evmgmt.classify_severity(0.1, 61, %s::float8, 0, %s::float8, %s::int, 0.6, %s::int)',
				  pg_temp.lit(a.v), pg_temp.lit(a.v), pg_temp.lit(i.v), pg_temp.lit(i.v))
	FROM ff a, fi i
	UNION ALL
	SELECT format('SELECT evmgmt.classify_severity(%s::float8, 10, NULL, NULL, NULL, NULL, NULL, NULL)', pg_temp.lit(a.v)) FROM ff a
))).*;

SELECT 'classify_sustained_runs' AS fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT evmgmt.classify_sustained_runs(%s::float8, %s::float8, 45, %s::int, 60, %s::int)',
				  pg_temp.lit(a.v), pg_temp.lit(a.v), pg_temp.lit(i.v), pg_temp.lit(i.v))
	FROM ff a, fi i
	UNION ALL SELECT 'SELECT evmgmt.classify_sustained_runs(NULL, NULL, NULL, NULL, NULL, NULL)'
))).*;

SELECT 'interval_service_level' AS fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT evmgmt.interval_service_level(%s, %s)', pg_temp.lit(a.v), pg_temp.lit(b.v))
	FROM fi a, fi b
))).*;

-- the aggregate, as a plain aggregate and as a window function
SELECT 'sustained_minutes_below' AS fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT evmgmt.sustained_minutes_below(%s::float8, %s::float8, %s::timestamptz, %s::int)',
				  pg_temp.lit(a.v), pg_temp.lit(b.v), pg_temp.lit(t.v), pg_temp.lit(i.v))
	FROM ff a, (SELECT v FROM ff WHERE v::text IN ('NaN', '0', '0.6', '-1')) b, ft t,
		 (SELECT v FROM fi WHERE v IN (-2147483648, 0, 15, 2147483647)) i
	UNION ALL
	SELECT format('SELECT evmgmt.sustained_minutes_below(x.sl, 0.6, %s::timestamptz + x.k * interval ''15 minutes'', 15) OVER (ORDER BY x.k) FROM (VALUES (0.1::float8, 0), (NULL, 1), (0.0, 2)) x(sl, k)',
				  pg_temp.lit(t.v))
	FROM ft t
	UNION ALL SELECT 'SELECT evmgmt.sustained_minutes_below(0.1, 0.6, NULL, 15)'
	UNION ALL SELECT 'SELECT evmgmt.sustained_minutes_below(0.1, 0.6, now(), NULL)'
))).*;

SELECT 'sustained_runs_below' AS fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT evmgmt.sustained_runs_below(%s::float8, ARRAY[%s::float8, 0.3, NULL], %s::timestamptz, %s::int)',
				  pg_temp.lit(a.v), pg_temp.lit(b.v), pg_temp.lit(t.v), pg_temp.lit(i.v))
	FROM ff a, (SELECT v FROM ff WHERE v::text IN ('NaN', '0', '0.6', '-1')) b, ft t,
		 (SELECT v FROM fi WHERE v IN (-2147483648, 0, 15, 2147483647)) i
	UNION ALL SELECT 'SELECT evmgmt.sustained_runs_below(0.1, NULL, now(), 15)'
	UNION ALL SELECT 'SELECT evmgmt.sustained_runs_below(0.1, ''{}'', now(), 15)'
	UNION ALL SELECT 'SELECT evmgmt.sustained_runs_below(0.1, ''{{0.1}}'', now(), 15)'
	UNION ALL SELECT 'SELECT evmgmt.sustained_runs_below(0.1, array_fill(0.1::float8, ARRAY[100000]), now(), 15)'
))).*;

-- business time: every start x every amount, in a zone with DST; a calendar
-- of one short window a week so that long amounts walk many days
INSERT INTO evmgmt.calendar VALUES ('thin', 'One hour a week'), ('full', 'Office hours');
INSERT INTO evmgmt.calendar_hours VALUES ('thin', 3, '10:00', '11:00');
INSERT INTO evmgmt.calendar_hours SELECT 'full', d, '09:00', '17:00' FROM generate_series(1, 5) d;
SELECT 'add_business_time' AS fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT evmgmt.add_business_time(%L, %L, %s::timestamptz, %s::interval)', c, z, pg_temp.lit(t.v), pg_temp.lit(a.v))
	FROM (VALUES ('full'), ('thin')) cal(c), (VALUES ('Europe/Berlin'), ('Pacific/Chatham')) zone(z), ft t, fa a
	UNION ALL SELECT 'SELECT evmgmt.add_business_time(''full'', ''Europe/Berlin'', ''2025-06-02 10:00+00'', ''1000 days'')'
	UNION ALL SELECT 'SELECT evmgmt.add_business_time(''thin'', ''Europe/Berlin'', ''2025-06-02 10:00+00'', ''1000 hours'')'
	UNION ALL SELECT 'SELECT evmgmt.add_business_time(''full'', ''No/Such_Zone'', now(), ''1 hour'')'
	UNION ALL SELECT 'SELECT evmgmt.add_business_time(''nosuch'', ''UTC'', now(), ''1 hour'')'
))).*;
SELECT 'add_target_time' AS fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT evmgmt.add_target_time(''full'', ''Europe/Berlin'', %s::timestamptz, %s::interval, false)', pg_temp.lit(t.v), pg_temp.lit(a.v))
	FROM ft t, fa a
))).*;

-- lifecycle functions: an open multi-pool event, and every argument NULL or
-- extreme in turn
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'acme', 'Berlin', 'Europe/Berlin', 'full');
SELECT evmgmt.open_event('system', 'BER', '{aa,spec}', 'rule', 'fuzz', '2025-06-02 10:00+00') AS e \gset
CREATE TEMP TABLE calls (fn text, args text[]);
INSERT INTO calls VALUES
	('open_event', ARRAY['''system''', '''BER''', '''{aa}''', '''rule''', '''t''', '''2025-06-02 10:00+00''', 'NULL', 'NULL', 'NULL']),
	('add_pool', ARRAY[:'e', '''collab''', '''n''']),
	('classify_pool', ARRAY[:'e', '''aa''', '''sev1''']),
	('reclassify_pool', ARRAY[:'e', '''aa''', '''sev2''', '''r''']),
	('diagnose_pool', ARRAY[:'e', '''aa''', '''technology''', '''routing''', '''p''']),
	('log_response', ARRAY[:'e', '''aa''', '''routing_change''', '''n''']),
	('resolve_pool', ARRAY[:'e', '''aa''', '''n''']),
	('resolve_event', ARRAY[:'e', '''n''']),
	('cancel_pool', ARRAY[:'e', '''spec''', '''r''']),
	('cancel_event', ARRAY[:'e', '''r''']),
	('reopen_pool', ARRAY[:'e', '''aa''', '''r''']),
	('reopen_event', ARRAY[:'e', '''r''', 'NULL']),
	('record_analysis', ARRAY[:'e', '''rc''', '''ap''', '''{}''', 'NULL']),
	('add_action_item', ARRAY[:'e', '''d''', '''o''', '''2025-07-01''']),
	('complete_action_item', ARRAY['1']),
	('record_objective_impact', ARRAY[:'e', '''cost''', '''neutral''', 'NULL', 'NULL', 'NULL']),
	('close_event', ARRAY[:'e']);
CREATE TEMP TABLE extreme (v text);
INSERT INTO extreme VALUES ('NULL'), ('-9223372036854775808'), ('9223372036854775807'), ('0'), ('''''');
SELECT c.fn, (pg_temp.run(ARRAY(
	SELECT format('SELECT evmgmt.%I(%s)', c.fn, array_to_string(
		   (SELECT array_agg(CASE WHEN k = p THEN x.v ELSE c.args[k] END ORDER BY k)
			FROM generate_subscripts(c.args, 1) k), ', '))
	FROM generate_subscripts(c.args, 1) p, extreme x
	-- an empty string is no bigint: only where the argument is not the id
	WHERE NOT (x.v = '''''' AND c.args[p] ~ '^[0-9]+$')
	  AND NOT (x.v ~ '^-?[0-9]+$' AND c.args[p] !~ '^[0-9]+$')
))).*
FROM calls c ORDER BY c.fn;
-- the event survived all that in a consistent state
SELECT floor_severity, state, pools FROM evmgmt.event_rollup WHERE event_id = :e;
SELECT count(*) FILTER (WHERE action = 'classified') AS classified_rows, count(*) AS timeline_rows
FROM evmgmt.event_timeline WHERE event_id = :e;

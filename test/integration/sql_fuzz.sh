#!/usr/bin/env bash
# SQL fuzz through the server (issue 14, "Must hold"): every SQL-callable
# function of the extension, found in pg_proc through pg_depend (so a new
# function is fuzzed without editing this file), is called with extreme
# values in each argument position in turn (NaN, +-Infinity, 0, negatives,
# INT_MAX/INT_MIN, a 100,000-character text, 4714 BC, 294276 AD, infinity,
# odd JSON, empty and NULL-element arrays), the other arguments ordinary.
# Each call runs in its own subtransaction with a statement timeout.  Only
# documented SQLSTATE classes may come back (22 data exception, 23 integrity,
# 42501 privilege, 42P01/42704 undefined object, 55000 and 55P03 object
# state, P0001/P0002 our own raises, 0A000 not supported, 57014 the timeout,
# 40P01 deadlock); no internal error (XX000), no crash, the server up after.
# Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 4
DB=evmgmt_it_fuzz
new_db $DB
LOG_FROM=$(wc -l <"$EVMGMT_CLUSTER_LOG")

psql -XqAt -v ON_ERROR_STOP=1 -d $DB >"$IT_DIR/fuzz.out" 2>"$IT_DIR/fuzz.err" <<'SQL'
SET client_min_messages = error;
CREATE TEMP TABLE fuzz_result (fn text, arg int, val text, sqlstate text, message text);
DO $fuzz$
DECLARE
	f record;
	types oid[];
	ordinary text[];
	vals text[];
	args text[];
	stmt text;
	st text;
	msg text;
	i int;
	v text;
BEGIN
	FOR f IN
		SELECT p.oid, p.oid::regprocedure::text AS sig, p.proname, p.proargtypes::oid[] AS argtypes, p.prokind
		FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
		JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'evmgmt'
		WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e' AND p.prokind IN ('f', 'a')
		  AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype)
		  AND NOT EXISTS (SELECT FROM unnest(p.proargtypes::oid[]) t
						  WHERE t IN ('internal'::regtype, 'anyelement'::regtype, '"any"'::regtype, 'anyarray'::regtype))
		ORDER BY 2
	LOOP
		-- oidvector casts to an array based at 0: re-base it at 1
		types := ARRAY(SELECT u.t FROM unnest(f.argtypes) WITH ORDINALITY u(t, o) ORDER BY u.o);
		ordinary := ARRAY[]::text[];
		FOR i IN 1 .. COALESCE(array_length(types, 1), 0) LOOP
			ordinary := ordinary || ((CASE
				WHEN types[i] IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN '1'
				WHEN types[i] IN ('float4'::regtype, 'float8'::regtype, 'numeric'::regtype) THEN '0.5'
				WHEN types[i] = 'text'::regtype THEN quote_literal('x')
				WHEN types[i] = 'timestamptz'::regtype THEN quote_literal('2026-03-02 10:00+00')
				WHEN types[i] = 'date'::regtype THEN quote_literal('2026-03-02')
				WHEN types[i] = 'interval'::regtype THEN quote_literal('15 minutes')
				WHEN types[i] = 'boolean'::regtype THEN 'true'
				WHEN types[i] = 'jsonb'::regtype THEN quote_literal('{}')
				WHEN types[i] = 'inet'::regtype THEN quote_literal('192.0.2.1')
				WHEN (SELECT typtype FROM pg_type WHERE oid = types[i]) = 'e'
					THEN quote_literal((SELECT enumlabel FROM pg_enum WHERE enumtypid = types[i] ORDER BY enumsortorder LIMIT 1))
				WHEN (SELECT typcategory FROM pg_type WHERE oid = types[i]) = 'A' THEN quote_literal('{}')
				ELSE 'NULL' END) || '::' || format_type(types[i], NULL))::text;
		END LOOP;
		FOR i IN 1 .. COALESCE(array_length(types, 1), 0) LOOP
			vals := CASE
				WHEN types[i] IN ('int2'::regtype) THEN ARRAY['0', '-1', '32767', '-32768', 'NULL']
				WHEN types[i] IN ('int4'::regtype) THEN ARRAY['0', '-1', '2147483647', '-2147483648', 'NULL']
				WHEN types[i] IN ('int8'::regtype) THEN ARRAY['0', '-1', '9223372036854775807', '-9223372036854775808', 'NULL']
				WHEN types[i] IN ('float4'::regtype, 'float8'::regtype, 'numeric'::regtype)
					THEN ARRAY['''NaN''', '''Infinity''', '''-Infinity''', '0', '-1', '1e300', '2147483647', 'NULL']
				WHEN types[i] = 'text'::regtype THEN ARRAY['''''', 'repeat(''x'', 100000)', '''''''; --''', 'NULL']
				WHEN types[i] = 'timestamptz'::regtype
					THEN ARRAY['''-infinity''', '''infinity''', '''4714-11-24 00:00+00 BC''', '''294276-12-31 23:45+00''', 'NULL']
				WHEN types[i] = 'date'::regtype THEN ARRAY['''infinity''', '''4714-11-24 BC''', '''5874897-12-31''', 'NULL']
				WHEN types[i] = 'interval'::regtype
					THEN ARRAY['''178000000 years''', '''-178000000 years''', '''0''', '''-1 microsecond''', 'NULL']
				WHEN types[i] = 'jsonb'::regtype THEN ARRAY['''[]''', '''"x"''', '''null''', '''{"steps": 1}''', 'NULL']
				WHEN types[i] = 'inet'::regtype THEN ARRAY['''0.0.0.0''', '''::''', '''::ffff:127.0.0.1/96''', 'NULL']
				WHEN (SELECT typcategory FROM pg_type WHERE oid = types[i]) = 'A' THEN ARRAY['''{NULL}''', 'NULL']
				ELSE ARRAY['NULL'] END;
			FOREACH v IN ARRAY vals LOOP
				args := ordinary;
				args[i] := v || '::' || format_type(types[i], NULL);
				stmt := CASE WHEN f.prokind = 'a'
							 THEN format('SELECT %s(%s) FROM generate_series(1, 3)', f.oid::regproc, array_to_string(args, ', '))
							 ELSE format('SELECT %s(%s)', f.oid::regproc, array_to_string(args, ', ')) END;
				BEGIN
					SET LOCAL statement_timeout = '3s';
					EXECUTE 'SELECT count(*) FROM (' || stmt || ') s';
					st := '00000'; msg := NULL;
				EXCEPTION
					WHEN query_canceled THEN st := '57014'; msg := NULL;
					WHEN OTHERS THEN GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
				END;
				INSERT INTO fuzz_result VALUES (f.sig, i, left(v, 40), st, left(msg, 200));
			END LOOP;
		END LOOP;
	END LOOP;
END
$fuzz$;
SELECT 'functions ' || count(DISTINCT fn) || ' calls ' || count(*) FROM fuzz_result;
SELECT 'unexpected ' || fn || ' arg ' || arg || ' = ' || val || ': ' || sqlstate || ' ' || coalesce(message, '')
FROM fuzz_result
WHERE sqlstate <> '00000' AND left(sqlstate, 2) NOT IN ('22', '23')
  AND sqlstate NOT IN ('42501', '42P01', '42704', '55000', '55P03', 'P0001', 'P0002', '0A000', '57014', '40P01')
ORDER BY 1;
SQL
ok $? "every extension function was called with extreme arguments ($(grep '^functions' "$IT_DIR/fuzz.out"))"
[ -s "$IT_DIR/fuzz.err" ] && diag "$(head -5 "$IT_DIR/fuzz.err")"
is "$(grep -q '^functions' "$IT_DIR/fuzz.out" && grep -c '^unexpected' "$IT_DIR/fuzz.out")" 0 "only documented SQLSTATEs came back"
grep '^unexpected' "$IT_DIR/fuzz.out" | head -20 | while read -r l; do diag "$l"; done
server_up
ok $? "the server is still up"
is "$(tail -n +$LOG_FROM "$EVMGMT_CLUSTER_LOG" | grep -c 'terminated by signal')" 0 "no backend was terminated by a signal"

it_done

-- Fuzz: every Erlang function with extreme and pseudo-random arguments
-- (NaN, +-Infinity, 0, -0, negatives, denormals, 1e308, INT_MIN/INT_MAX,
-- agent counts and traffic around the limit of 1,000,000 agents).
-- Each call runs in its own exception block; the only error allowed is
-- SQLSTATE 22023 and every result must be in range.  The argument sets are
-- fixed lists and arithmetic sequences, so the output is deterministic.
\set VERBOSITY terse

CREATE TEMP TABLE fuzz_float AS
SELECT v FROM unnest(ARRAY[
	'NaN', 'Infinity', '-Infinity', '0', '-0', '1e308', '-1e308', '1.7976931348623157e308',
	'5e-324', '-5e-324', '2.2250738585072014e-308', '1e-300', '1e-20', '0.5', '1', '0.999999',
	'20', '180', '49.999999', '50', '99999.99', '100000', '123456.7', '-1', '1e10', '2147483647',
	'999999.99', '1000000', '1000000.5', '1234567.8'
]::float8[]) v
UNION ALL
-- pseudo-random magnitudes from 1e-3 to 1e5
SELECT ((g * 7919) % 1000) / 100.0 * 10.0 ^ ((g * 31) % 9 - 3) FROM generate_series(1, 30) g;

CREATE TEMP TABLE fuzz_int AS
SELECT v FROM unnest(ARRAY[-2147483648, -1, 0, 1, 2, 3, 5, 50, 51, 1000, 99999, 100000, 100001,
						   999999, 1000000, 1000001, 2147483647]) v
UNION ALL
SELECT (g * 7919) % 3000 FROM generate_series(1, 10) g;

-- Call one function many times.  kinds has one letter per argument (f float8,
-- i int); call is the SQL that checks the result, with $1 the float8[] and $2
-- the int[] of arguments in order.  Returns calls, successes, 22023 errors,
-- and the first few violations (another SQLSTATE or a result out of range).
CREATE FUNCTION pg_temp.fuzz(kinds text, base_f float8[], base_i int[], call text, combos int,
	OUT calls int, OUT ok int, OUT errors_22023 int, OUT violations text[])
LANGUAGE plpgsql AS $$
DECLARE
	fl float8[] := ARRAY(SELECT v FROM fuzz_float ORDER BY v::text);
	il int[] := ARRAY(SELECT v FROM fuzz_int ORDER BY v);
	primes int[] := ARRAY[7, 11, 13, 17, 19, 23];
	nargs int := length(kinds);
	fa float8[];
	ia int[];
	res boolean;
	c int;
	p int;
	j int;
	fi int;
	ii int;
	n int;
BEGIN
	calls := 0; ok := 0; errors_22023 := 0; violations := '{}';
	-- sweeps: one argument at a time over its whole list, the others valid;
	-- then pseudo-random combinations of the arguments
	FOR c IN 1 .. nargs * greatest(array_length(fl, 1), array_length(il, 1)) + combos LOOP
		fa := base_f;
		ia := base_i;
		fi := 0;
		ii := 0;
		FOR p IN 1 .. nargs LOOP
			IF substr(kinds, p, 1) = 'f' THEN fi := fi + 1; ELSE ii := ii + 1; END IF;
			IF c <= nargs * greatest(array_length(fl, 1), array_length(il, 1)) THEN
				-- sweep phase: argument (c - 1) / len + 1 varies
				n := greatest(array_length(fl, 1), array_length(il, 1));
				CONTINUE WHEN (c - 1) / n + 1 <> p;
				j := (c - 1) % n;
			ELSE
				j := (c * primes[p] + p * 101) % 1000003;
				-- keep the valid base value for about a third of the arguments
				CONTINUE WHEN (c * primes[p] + p) % 3 = 0;
			END IF;
			IF substr(kinds, p, 1) = 'f' THEN
				fa[fi] := fl[1 + j % array_length(fl, 1)];
			ELSE
				ia[ii] := il[1 + j % array_length(il, 1)];
			END IF;
		END LOOP;
		calls := calls + 1;
		BEGIN
			EXECUTE call INTO res USING fa, ia;
			IF res IS DISTINCT FROM true THEN
				violations := violations || format('out of range: %s %s', fa, ia);
			END IF;
			ok := ok + 1;
		EXCEPTION WHEN OTHERS THEN
			IF SQLSTATE = '22023' THEN
				errors_22023 := errors_22023 + 1;
			ELSE
				violations := violations || format('%s %s: %s %s', fa, ia, SQLSTATE, SQLERRM);
			END IF;
		END;
	END LOOP;
	violations := violations[1:5];
END
$$;

SELECT 'erlang_b' AS fn, * FROM pg_temp.fuzz('fi', '{50}', '{55}',
	$q$SELECT r BETWEEN 0 AND 1 FROM (SELECT evmgmt.erlang_b($1[1], $2[1]) AS r) s$q$, 1500)
UNION ALL
SELECT 'erlang_c', * FROM pg_temp.fuzz('fi', '{50}', '{55}',
	$q$SELECT r BETWEEN 0 AND 1 FROM (SELECT evmgmt.erlang_c($1[1], $2[1]) AS r) s$q$, 1500)
UNION ALL
SELECT 'occupancy', * FROM pg_temp.fuzz('fi', '{50}', '{55}',
	$q$SELECT r BETWEEN 0 AND 1 FROM (SELECT evmgmt.occupancy($1[1], $2[1]) AS r) s$q$, 1500)
UNION ALL
SELECT 'service_level', * FROM pg_temp.fuzz('fiff', '{50,180,20}', '{55}',
	$q$SELECT r BETWEEN 0 AND 1 FROM (SELECT evmgmt.service_level($1[1], $2[1], $1[2], $1[3]) AS r) s$q$, 3000)
UNION ALL
SELECT 'asa', * FROM pg_temp.fuzz('fif', '{50,180}', '{55}',
	$q$SELECT r >= 0 AND r <> 'NaN' FROM (SELECT evmgmt.asa($1[1], $2[1], $1[2]) AS r) s$q$, 3000)
UNION ALL
SELECT 'agents_required', * FROM pg_temp.fuzz('ffffff', '{50,180,0.8,20,1,0}', '{}',
	$q$SELECT r BETWEEN 0 AND 1000000
	   FROM (SELECT evmgmt.agents_required($1[1], $1[2], $1[3], $1[4], $1[5], $1[6]) AS r) s$q$, 3000)
UNION ALL
SELECT 'power_of_one', * FROM pg_temp.fuzz('fiffi', '{50,180,20}', '{53,5}',
	$q$SELECT count(*) <= 2 * $2[2]::bigint + 1
			  AND coalesce(bool_and(agents BETWEEN 1 AND 1000000 AND delta = agents - $2[1]
									AND service_level BETWEEN 0 AND 1 AND asa >= 0 AND asa <> 'NaN'
									AND occupancy BETWEEN 0 AND 1), true)
	   FROM evmgmt.power_of_one($1[1], $2[1], $1[2], $1[3], $2[2])$q$, 2000)
UNION ALL
SELECT 'erlang_a', * FROM pg_temp.fuzz('fifff', '{50,180,120,20}', '{52}',
	$q$SELECT p_wait BETWEEN 0 AND 1 AND p_abandon BETWEEN 0 AND p_wait AND service_level BETWEEN 0 AND 1
			  AND occupancy BETWEEN 0 AND 1 AND asa >= 0 AND asa < 'Infinity'
			  AND mean_wait >= 0 AND mean_wait < 'Infinity'
	   FROM evmgmt.erlang_a($1[1], $2[1], $1[2], $1[3], $1[4])$q$, 3000)
UNION ALL
SELECT 'traffic', * FROM pg_temp.fuzz('fff', '{100,1800,180}', '{}',
	$q$SELECT r >= 0 AND r < 'Infinity' FROM (SELECT evmgmt.traffic($1[1], $1[2], $1[3]) AS r) s$q$, 3000);

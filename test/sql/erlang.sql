-- Behaviour of the queueing math: worked examples, edge cases, limits, errors.
-- Accuracy against high-precision references is in erlang_reference, random
-- and extreme arguments in erlang_fuzz.
\set VERBOSITY terse

-- Catch an error and show its SQLSTATE and message.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Declared as the design says: immutable, strict, parallel safe, commented.
SELECT p.oid::regprocedure AS function, p.provolatile, p.proisstrict, p.proparallel,
	   obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p
WHERE p.pronamespace = 'evmgmt'::regnamespace
  AND p.proname IN ('erlang_b', 'erlang_c', 'service_level', 'asa', 'occupancy', 'agents_required',
					'power_of_one', 'erlang_a', 'traffic')
ORDER BY 1::text;

-- The DESIGN example: 50 Erlangs, AHT 180 s, 20 s target, 55 -> 51 agents.
SELECT agents, delta, round(service_level::numeric, 4) AS sl, round(asa::numeric, 1) AS asa_s,
	   round(occupancy::numeric, 4) AS occupancy
FROM evmgmt.power_of_one(50, 53, 180, 20);
SELECT round(evmgmt.erlang_b(50, 55)::numeric, 6) AS b,
	   round(evmgmt.erlang_c(50, 55)::numeric, 6) AS c,
	   round(evmgmt.service_level(50, 55, 180, 20)::numeric, 6) AS sl,
	   round(evmgmt.asa(50, 55, 180)::numeric, 4) AS asa,
	   round(evmgmt.occupancy(50, 55)::numeric, 6) AS occ;

-- Staffing: 80/20 at 50 Erlangs, with an occupancy cap, with shrinkage.
SELECT evmgmt.agents_required(50, 180, 0.8, 20) AS plain,
	   evmgmt.agents_required(50, 180, 0.8, 20, 0.85) AS occ_cap,
	   evmgmt.agents_required(50, 180, 0.8, 20, 1, 0.3) AS shrinkage,
	   evmgmt.agents_required(50, 180, 0.8, 20, 0.85, 0.3) AS both,
	   evmgmt.agents_required(50, 180, 1, 20) AS target_one,
	   evmgmt.agents_required(20000, 180, 0.8, 20) AS large;

-- The 100,000-Erlang queue that 0.1.0 refused, and the most traffic that
-- 1,000,000 agents serve at 80/20 with AHT 180 s (999985.7 Erlangs need one
-- agent more: see the errors below).
SELECT evmgmt.agents_required(100000, 180, 0.8, 20) AS erlangs_100000,
	   evmgmt.agents_required(999985.6, 180, 0.8, 20) AS most_that_fits;

-- Near the limit agents_required is the smallest count that meets the target
-- too, and power_of_one equals the single-value functions.
SELECT count(*) AS cases,
	   bool_and(evmgmt.service_level(a, r, 180, t) >= sl) AS meets_target,
	   bool_and(evmgmt.service_level(a, r - 1, 180, t) < sl) AS smallest
FROM (SELECT a, sl, t, evmgmt.agents_required(a, 180, sl, t) AS r
	  FROM generate_series(1, 40) g,
		   LATERAL (SELECT 100000 + g * 22499.3 AS a, (ARRAY[0.5, 0.8, 0.95, 0.999])[1 + g % 4] AS sl,
						   (ARRAY[5, 20, 60])[1 + g % 3] AS t) v) s;
SELECT count(*) AS rows,
	   bool_and(p.service_level = evmgmt.service_level(999977.7, p.agents, 200, 15)
				AND p.asa = evmgmt.asa(999977.7, p.agents, 200)
				AND p.occupancy = evmgmt.occupancy(999977.7, p.agents)) AS consistent
FROM evmgmt.power_of_one(999977.7, 999980, 200, 15, 20) p;

-- agents_required is the smallest count that meets the target, for a sweep
-- of traffic, targets and times (checked against service_level itself).
SELECT count(*) AS cases,
	   bool_and(evmgmt.service_level(a, r, aht, t) >= sl) AS meets_target,
	   bool_and(r - 1 <= a OR evmgmt.service_level(a, r - 1, aht, t) < sl) AS smallest
FROM (SELECT a, aht, sl, t, evmgmt.agents_required(a, aht, sl, t) AS r
	  FROM generate_series(1, 400) g,
		   LATERAL (SELECT g * 0.37 + (g % 7) * 1.3 AS a, 60.0 + (g % 5) * 60 AS aht,
						   (ARRAY[0.5, 0.8, 0.9, 0.95, 0.999999, 1])[1 + g % 6] AS sl, (ARRAY[0, 10, 20, 60])[1 + (g / 4) % 4] AS t) v) s;

-- Monotone in agents: B and C fall, service level rises, ASA falls.
SELECT bool_and(b2 < b1) AS b_falls, bool_and(c2 < c1) AS c_falls, bool_and(sl2 >= sl1) AS sl_rises,
	   bool_and(asa2 < asa1) AS asa_falls
FROM (SELECT evmgmt.erlang_b(137.5, n) AS b1, evmgmt.erlang_b(137.5, n + 1) AS b2,
			 evmgmt.erlang_c(137.5, n) AS c1, evmgmt.erlang_c(137.5, n + 1) AS c2,
			 evmgmt.service_level(137.5, n, 240, 30) AS sl1, evmgmt.service_level(137.5, n + 1, 240, 30) AS sl2,
			 evmgmt.asa(137.5, n, 240) AS asa1, evmgmt.asa(137.5, n + 1, 240) AS asa2
	  FROM generate_series(138, 220) n) s;

-- Unstable queues (agents <= traffic): C = 1, SL = 0, ASA = Infinity, occupancy 1.
SELECT a, n, evmgmt.erlang_c(a, n) AS c, evmgmt.service_level(a, n, 180, 20) AS sl,
	   evmgmt.asa(a, n, 180) AS asa, evmgmt.occupancy(a, n) AS occ,
	   evmgmt.erlang_b(a, n) < 1 AS b_below_one
FROM (VALUES (10::float8, 10), (100.5, 100), (1e6, 100000), (1e7, 1000000), (1000000.5, 1000000), (1, 1)) v(a, n);

-- A hair below instability is still stable: finite ASA, small SL.
SELECT evmgmt.erlang_c(100 - 1e-9, 100) < 1 AS c_below_one,
	   evmgmt.service_level(100 - 1e-9, 100, 180, 20) > 0 AS sl_positive,
	   evmgmt.asa(100 - 1e-9, 100, 180) BETWEEN 1e10 AND 1e13 AS asa_huge_but_finite;
SELECT evmgmt.erlang_c(1e6 - 1e-6, 1000000) < 1 AS c_below_one_1e6,
	   evmgmt.service_level(1e6 - 1e-6, 1000000, 180, 20) > 0 AS sl_positive_1e6,
	   evmgmt.asa(1e6 - 1e-6, 1000000, 180) BETWEEN 1e7 AND 1e10 AS asa_huge_but_finite_1e6;

-- Zero traffic (and -0): nothing waits, nobody is needed.
SELECT evmgmt.erlang_b(t, 1) AS b, evmgmt.erlang_c(t, 1) AS c, evmgmt.service_level(t, 1, 180, 20) AS sl,
	   evmgmt.asa(t, 1, 180) AS asa, evmgmt.occupancy(t, 1) AS occ, evmgmt.agents_required(t, 180, 0.8, 20) AS req
FROM (VALUES (0::float8), ('-0'::float8)) v(t);
SELECT evmgmt.traffic('-0', 900, 180) AS traffic_minus_zero;
SELECT * FROM evmgmt.power_of_one(0, 2, 180, 20, 2);
SELECT * FROM evmgmt.erlang_a(0, 3, 180, 60, 20);

-- Tiny and huge traffic stay finite.
SELECT evmgmt.erlang_b(1e-300, 1) AS b_tiny, evmgmt.erlang_b(1e-300, 3) AS b_underflow,
	   evmgmt.erlang_b(1e300, 1000000) AS b_huge, evmgmt.erlang_c(1, 1000000) AS c_underflow,
	   evmgmt.service_level(1, 1000000, 180, 20) AS sl_full, evmgmt.asa(5e-324, 1, 180) AS asa_denormal,
	   evmgmt.erlang_b(1e-300, 1000000) AS b_tiny_1e6, evmgmt.asa(500000, 1000000, 180) AS asa_underflow;

-- Power of One: default 5 steps either side; counts below 1 and above 1000000 skipped.
SELECT count(*) AS rows, min(agents), max(agents), min(delta), max(delta) FROM evmgmt.power_of_one(50, 53, 180, 20);
SELECT agents, delta FROM evmgmt.power_of_one(3, 2, 180, 20, 3);
SELECT agents, delta FROM evmgmt.power_of_one(999990, 999999, 180, 20, 2);
SELECT count(*) FROM evmgmt.power_of_one(10, 12, 180, 20, 0);
-- the rows equal the single-value functions
SELECT bool_and(p.service_level = evmgmt.service_level(777.7, p.agents, 200, 15)
				AND p.asa = evmgmt.asa(777.7, p.agents, 200)
				AND p.occupancy = evmgmt.occupancy(777.7, p.agents)) AS consistent
FROM evmgmt.power_of_one(777.7, 790, 200, 15, 20) p;

-- Erlang A: the DESIGN example with 2 minutes of mean patience.
SELECT round(p_wait::numeric, 6) AS p_wait, round(p_abandon::numeric, 6) AS p_abandon,
	   round(service_level::numeric, 6) AS sl, round(asa::numeric, 3) AS asa,
	   round(mean_wait::numeric, 3) AS mean_wait, round(occupancy::numeric, 6) AS occ
FROM evmgmt.erlang_a(50, 52, 180, 120, 20);
-- it stays stable when agents < traffic (abandonment balances the queue)
SELECT round(p_wait::numeric, 6) AS p_wait, round(p_abandon::numeric, 6) AS p_abandon,
	   round(service_level::numeric, 6) AS sl, round(occupancy::numeric, 6) AS occ
FROM evmgmt.erlang_a(60, 50, 180, 120, 20);
-- very patient callers: Erlang A tends to Erlang C (the gap shrinks about
-- tenfold per tenfold patience)
SELECT r AS patience_per_aht, abs(e.p_wait - evmgmt.erlang_c(50, 55)) < 1 / r AS p_wait_near_c,
	   abs(e.service_level - evmgmt.service_level(50, 55, 180, 20)) < 1 / r AS sl_near_c,
	   abs(e.asa - evmgmt.asa(50, 55, 180)) < 10 / r * evmgmt.asa(50, 55, 180) AS asa_near_c,
	   e.p_abandon < 0.1 / r AS few_abandon
FROM (VALUES (1e2::float8), (1e3), (1e4)) p(r), evmgmt.erlang_a(50, 55, 180, 180 * p.r, 20) e;

-- internal consistency over a sweep
SELECT count(*) AS cases,
	   bool_and(e.p_abandon <= e.p_wait) AS abandon_le_wait,
	   bool_and(e.service_level <= 1 - e.p_abandon + 1e-15) AS sl_le_answered,
	   bool_and(abs(e.mean_wait - e.p_abandon * pat) <= 1e-12 * greatest(e.mean_wait, 1)) AS little_law,
	   bool_and(e.service_level >= 1 - e.p_wait) AS sl_ge_no_wait,
	   bool_and(e.occupancy <= 1 AND e.occupancy > 0) AS occupancy_range
FROM (VALUES (5::float8), (20), (80), (150), (500)) a(a),
	 (VALUES (-10), (-2), (0), (3), (12)) d(d),
	 (VALUES (15::float8), (120), (900)) p(pat),
	 LATERAL evmgmt.erlang_a(a.a, greatest(1, a.a::int + d.d), 200, p.pat, 20) e;
-- the Erlang A service level rises with the target time (up to rounding, as it
-- levels off at the share answered) and with agents
SELECT bool_and(s2 >= s1 - 1e-15) AS rises_with_time
FROM (SELECT (evmgmt.erlang_a(100, 98, 180, 90, t)).service_level AS s1,
			 (evmgmt.erlang_a(100, 98, 180, 90, t + 5)).service_level AS s2
	  FROM generate_series(0, 300, 5) t) s;
SELECT bool_and(s2 > s1) AS rises_with_agents
FROM (SELECT (evmgmt.erlang_a(100, n, 180, 90, 20)).service_level AS s1,
			 (evmgmt.erlang_a(100, n + 1, 180, 90, 20)).service_level AS s2
	  FROM generate_series(60, 140) n) s;

-- Interval counts to traffic.
SELECT evmgmt.traffic(100, 1800, 180) AS ten, evmgmt.traffic(0, 900, 300) AS zero,
	   evmgmt.traffic(1234, 900, 321.5) AS fractional;

-- NULL in, NULL out (STRICT).
SELECT evmgmt.erlang_b(NULL, 5) IS NULL AS b, evmgmt.agents_required(50, 180, 0.8, 20, NULL) IS NULL AS req,
	   (SELECT count(*) FROM evmgmt.power_of_one(50, NULL, 180, 20)) AS p1_rows,
	   (evmgmt.erlang_a(50, 52, 180, NULL, 20)).p_wait IS NULL AS ea;

-- Errors: SQLSTATE 22023 and a message naming the argument.
SELECT q, pg_temp.err(q) FROM (VALUES
	('SELECT evmgmt.erlang_b(''NaN'', 5)'),
	('SELECT evmgmt.erlang_b(''Infinity'', 5)'),
	('SELECT evmgmt.erlang_b(-1, 5)'),
	('SELECT evmgmt.erlang_b(10, 0)'),
	('SELECT evmgmt.erlang_b(10, -3)'),
	('SELECT evmgmt.erlang_b(10, 1000001)'),
	('SELECT evmgmt.erlang_b(1e6, 1000001)'),
	('SELECT evmgmt.erlang_c(''-Infinity'', 5)'),
	('SELECT evmgmt.erlang_c(10, 2147483647)'),
	('SELECT evmgmt.service_level(10, 12, 0, 20)'),
	('SELECT evmgmt.service_level(10, 12, ''NaN'', 20)'),
	('SELECT evmgmt.service_level(10, 12, 180, -1)'),
	('SELECT evmgmt.service_level(10, 12, 180, ''Infinity'')'),
	('SELECT evmgmt.asa(10, 12, -180)'),
	('SELECT evmgmt.occupancy(10, -2147483648)'),
	('SELECT evmgmt.agents_required(10, 180, 0, 20)'),
	('SELECT evmgmt.agents_required(10, 180, 1.01, 20)'),
	('SELECT evmgmt.agents_required(10, 180, ''NaN'', 20)'),
	('SELECT evmgmt.agents_required(10, 180, 0.8, 20, 0)'),
	('SELECT evmgmt.agents_required(10, 180, 0.8, 20, 1.5)'),
	('SELECT evmgmt.agents_required(10, 180, 0.8, 20, 1, 1)'),
	('SELECT evmgmt.agents_required(10, 180, 0.8, 20, 1, -0.1)'),
	('SELECT evmgmt.agents_required(1e308, 180, 0.8, 20)'),
	('SELECT evmgmt.agents_required(999999.5, 180, 0.8, 20)'),
	('SELECT evmgmt.agents_required(999985.7, 180, 0.8, 20)'),
	('SELECT evmgmt.agents_required(10, 180, 0.8, 20, 1e-300)'),
	('SELECT evmgmt.agents_required(1000, 180, 0.8, 20, 1, 0.999)'),
	('SELECT evmgmt.power_of_one(10, 12, 180, 20, -1)'),
	('SELECT evmgmt.power_of_one(10, 12, 180, 20, 1001)'),
	('SELECT evmgmt.power_of_one(10, 0, 180, 20)'),
	('SELECT evmgmt.erlang_a(10, 12, 180, 0, 20)'),
	('SELECT evmgmt.erlang_a(10, 12, 180, ''Infinity'', 20)'),
	('SELECT evmgmt.erlang_a(10, 12, 180, 120, -5)'),
	('SELECT evmgmt.erlang_a(10, 12, 1e-300, 120, 20)'),
	('SELECT evmgmt.erlang_a(50000, 12, 180, 180000, 20)'),
	('SELECT evmgmt.traffic(-1, 1800, 180)'),
	('SELECT evmgmt.traffic(10, 0, 180)'),
	('SELECT evmgmt.traffic(10, 1800, 0)'),
	('SELECT evmgmt.traffic(1e308, 1e-300, 1e10)')
) v(q);
-- the full error report: detail says which value was given
\set VERBOSITY default
SELECT evmgmt.service_level(10, 12, 180, 'NaN');
SELECT evmgmt.agents_required(2e6, 180, 0.8, 20);
SELECT evmgmt.erlang_c(1e6, 1000001);

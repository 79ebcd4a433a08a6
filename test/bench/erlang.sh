#!/usr/bin/env bash
# test/bench/erlang.sh: speed of the Erlang functions from SQL.
#
#   bash test/bench/erlang.sh            (builds, installs into tmp/destdir and
#                                         re-runs itself on a throw-away cluster)
#
# Over 1,000,000 rows of typical traffic (10-200 Erlangs, agents near the
# staffing level) it times, in one run and on one core (no parallel query,
# no JIT):
#   - the floor: the same scan calling a trivial built-in C function (float8pl)
#   - evmgmt.service_level and evmgmt.agents_required
#   - the same math written plainly in PL/pgSQL (Erlang B recurrence, then C,
#     then SL; agents_required as a loop upwards calling it), on fewer rows
#   - evmgmt.agents_required at 20,000 and at 1,000,000 Erlangs, and
#     evmgmt.service_level at 1,000,000 agents (ms per call)
# and prints calls/s and the ratios.  Each timing is the best of 5 rounds
# that run every query in turn.
# Goals (DESIGN.md section 5): within 2x of the floor, >= 50x faster than
# PL/pgSQL net of the floor, agents_required at 20,000 Erlangs under 1 ms; the
# last table says which are met.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${PGHOST:-}" ] || [ -z "${EVMGMT_BENCH_IN_CLUSTER:-}" ]; then
	make -s >/dev/null
	make -s install DESTDIR="$PWD/tmp/destdir" >/dev/null
	exec bash test/tools/cluster.sh env EVMGMT_BENCH_IN_CLUSTER=1 bash test/bench/erlang.sh "$@"
fi

dropdb --if-exists evmgmt_bench
createdb evmgmt_bench
trap 'dropdb --if-exists evmgmt_bench' EXIT

psql -X -q -v ON_ERROR_STOP=1 -d evmgmt_bench <<'SQL'
SET max_parallel_workers_per_gather = 0;
SET jit = off;
CREATE EXTENSION evmgmt;

-- What a WFM analyst would write: the same recurrence and formulas in PL/pgSQL.
CREATE FUNCTION plpgsql_service_level(a float8, n int, aht float8, t float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	b float8 := 1;
	c float8;
	k int;
BEGIN
	IF n <= a THEN
		RETURN 0;
	END IF;
	FOR k IN 1 .. n LOOP
		b := a * b / (k + a * b);
	END LOOP;
	c := n * b / (n - a * (1 - b));
	RETURN 1 - c * exp(-(n - a) * t / aht);
END
$$;

CREATE FUNCTION plpgsql_agents_required(a float8, aht float8, target float8, t float8) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	n int := floor(a)::int + 1;
BEGIN
	WHILE plpgsql_service_level(a, n, aht, t) < target LOOP
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;

-- The built-in service_level behind SET search_path, to show what that costs.
CREATE FUNCTION setpath_service_level(float8, int, float8, float8) RETURNS float8
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS '$libdir/evmgmt', 'evmgmt_service_level';

-- 1,000,000 intervals: 10 .. 200 Erlangs, agents from just stable to +8.
CREATE TABLE bench_in AS
SELECT a, (floor(a) + 1 + g % 8)::int AS n
FROM generate_series(1, 1000000) g, LATERAL (SELECT 10 + (g % 1901) * 0.1 AS a) v;
VACUUM ANALYZE bench_in;

CREATE TABLE results (ord serial, label text, rows int, q text, ms float8 DEFAULT 'Infinity');
INSERT INTO results (label, rows, q) VALUES
	('floor: float8pl(a, 180)', 1000000,
	 'SELECT sum(float8pl(a, 180)) FROM bench_in'),
	('evmgmt.occupancy (no loop: wrapper cost)', 1000000,
	 'SELECT sum(evmgmt.occupancy(a, n)) FROM bench_in'),
	('evmgmt.service_level', 1000000,
	 'SELECT sum(evmgmt.service_level(a, n, 180, 20)) FROM bench_in'),
	('service_level with SET search_path', 1000000,
	 'SELECT sum(setpath_service_level(a, n, 180, 20)) FROM bench_in'),
	('PL/pgSQL service_level', 20000,
	 'SELECT sum(plpgsql_service_level(a, n, 180, 20)) FROM (SELECT * FROM bench_in LIMIT 20000) s'),
	('evmgmt.agents_required', 1000000,
	 'SELECT sum(evmgmt.agents_required(a, 180, 0.8, 20)) FROM bench_in'),
	('PL/pgSQL agents_required', 1000,
	 'SELECT sum(plpgsql_agents_required(a, 180, 0.8, 20)) FROM (SELECT * FROM bench_in LIMIT 1000) s'),
	('agents_required at 20000 Erlangs', 1000,
	 'SELECT sum(evmgmt.agents_required(20000 + g * 0.001, 180, 0.8, 20)) FROM generate_series(1, 1000) g'),
	('agents_required at 1000000 Erlangs', 1000,
	 'SELECT sum(evmgmt.agents_required(999000 + g * 0.5, 180, 0.8, 20)) FROM generate_series(1, 1000) g'),
	('service_level at 1000000 agents', 1000,
	 'SELECT sum(evmgmt.service_level(999000 + g * 0.5, 1000000, 180, 20)) FROM generate_series(1, 1000) g');

-- Five rounds, each running every query once in turn; keep each query's best
-- time, so that load from other processes disturbs all of them alike.
DO $$
DECLARE
	r record;
	t0 timestamptz;
	i int;
BEGIN
	FOR i IN 1 .. 5 LOOP
		FOR r IN SELECT label, q FROM results ORDER BY label LOOP
			t0 := clock_timestamp();
			EXECUTE r.q;
			UPDATE results SET ms = least(ms, extract(epoch FROM clock_timestamp() - t0) * 1000)
			WHERE label = r.label;
		END LOOP;
	END LOOP;
END
$$;

-- the PL/pgSQL versions compute the same numbers
SELECT max(abs(plpgsql_service_level(a, n, 180, 20) - evmgmt.service_level(a, n, 180, 20))) < 1e-9 AS plpgsql_sl_agrees,
	   bool_and(plpgsql_agents_required(a, 180, 0.8, 20) = evmgmt.agents_required(a, 180, 0.8, 20)) AS plpgsql_req_agrees
FROM (SELECT * FROM bench_in LIMIT 200) s;

\pset footer off
SELECT label, rows, round(ms::numeric, 1) AS ms,
	   round((rows / (ms / 1000))::numeric) AS calls_per_s,
	   round((ms / rows * 1e6)::numeric) AS ns_per_row
FROM results ORDER BY ord;

-- x_floor: query time over the floor query's; x_faster_than_plpgsql: per-row
-- query times; _net: the same after subtracting the floor's per-row cost
-- (scan, call overhead, aggregate), i.e. the cost of the math alone.
SELECT fn AS function,
	   round((c.ms / f.ms)::numeric, 2) AS x_floor,
	   round(((p.ms / p.rows) / (c.ms / c.rows))::numeric) AS x_faster_than_plpgsql,
	   round(((p.ms / p.rows - f.ms / f.rows) / (c.ms / c.rows - f.ms / f.rows))::numeric) AS x_faster_than_plpgsql_net
FROM (VALUES ('service_level', 'evmgmt.service_level', 'PL/pgSQL service_level'),
			 ('agents_required', 'evmgmt.agents_required', 'PL/pgSQL agents_required')) v(fn, cl, pl),
	 results f, results c, results p
WHERE f.label LIKE 'floor%' AND c.label = v.cl AND p.label = v.pl
ORDER BY 1 DESC;

SELECT label, round((ms / rows)::numeric, 4) AS ms_per_call
FROM results WHERE label LIKE '% at %' ORDER BY ord;

-- the goals of DESIGN.md section 5, measured in this run
SELECT goal, round(measured::numeric, 3) AS measured,
	   CASE WHEN at_least THEN measured >= bound ELSE measured <= bound END AS met
FROM (SELECT c.ord, c.label || ': query time over the floor (at most 2)' AS goal,
			 c.ms / f.ms AS measured, 2.0 AS bound, false AS at_least
	  FROM results f, results c
	  WHERE f.label LIKE 'floor%' AND c.label IN ('evmgmt.service_level', 'evmgmt.agents_required')
	  UNION ALL
	  SELECT c.ord + 0.5, c.label || ': times faster than PL/pgSQL net of the floor (at least 50)',
			 (p.ms / p.rows - f.ms / f.rows) / (c.ms / c.rows - f.ms / f.rows), 50.0, true
	  FROM results f, results c, results p
	  WHERE f.label LIKE 'floor%'
		AND (c.label, p.label) IN (('evmgmt.service_level', 'PL/pgSQL service_level'),
								   ('evmgmt.agents_required', 'PL/pgSQL agents_required'))
	  UNION ALL
	  SELECT ord, label || ': ms per call (under 1)', ms / rows, 1.0, false
	  FROM results WHERE label = 'agents_required at 20000 Erlangs') g
ORDER BY ord;
SQL

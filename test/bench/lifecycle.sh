#!/usr/bin/env bash
# test/bench/lifecycle.sh: figures for severity classification and the
# lifecycle functions, measured in one run (not part of the suite).
#   bash test/tools/cluster.sh bash test/bench/lifecycle.sh [series] [events]
# 1. sustained_minutes_below (C aggregate) against the same rule written as a
#    PL/pgSQL aggregate, over every interval of every series: time and ratio.
# 2. classify_series over a day of 15-minute intervals for all series.
# 3. a full protocol per event (open, classify, diagnose, respond, resolve,
#    close) for N events: time per event.
set -euo pipefail
series=${1:-2000}
events=${2:-1000}
db="evmgmt_bench_$$"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT
createdb "$db"
psql() { command psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }

psql -c 'CREATE EXTENSION evmgmt'
psql <<SQL
INSERT INTO evmgmt.operation VALUES ('bench', 'Bench');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Calendar');
INSERT INTO evmgmt.calendar_hours SELECT 'cal', d, '08:00', '18:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id)
SELECT 'S' || s, 'bench', 'Site ' || s, 'Europe/Berlin', 'cal' FROM generate_series(1, 20) s;
INSERT INTO evmgmt.queue (queue_id, operation_id, name) SELECT 'Q' || q, 'bench', 'Queue ' || q FROM generate_series(1, 100) q;
-- $series series of 96 intervals (one day), service level wandering between 0 and 1
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
								  answered_in_threshold, threshold_seconds)
SELECT 'S' || (1 + k % 20), 'Q' || (1 + (k / 20) % 100), (ARRAY['aa','collab','spec']::evmgmt.pool[])[1 + k / 2000 % 3],
	   '2025-06-02 00:00+00'::timestamptz + i * interval '15 minutes', 15, 100, 100,
	   (50 + 50 * sin(i / 7.0 + k))::int, 20
FROM generate_series(0, $series - 1) k, generate_series(0, 95) i;
ANALYZE evmgmt.interval_stat;

-- the same rule as a PL/pgSQL aggregate (state: run minutes, end of the last interval)
CREATE SCHEMA bench;
CREATE FUNCTION bench.sb_step(st double precision[], sl double precision, thr double precision,
								start timestamptz, minutes integer) RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE AS \$\$
DECLARE
	below boolean := sl IS NOT NULL AND (CASE WHEN thr <= 0 THEN sl <= 0 ELSE sl < thr END);
	run double precision := COALESCE(st[1], 0);
	last_end double precision := st[2];
	s double precision := extract(epoch FROM start);
BEGIN
	IF last_end IS NOT NULL AND s < last_end THEN
		RAISE EXCEPTION 'unordered';
	END IF;
	IF NOT below THEN run := 0;
	ELSIF last_end IS NOT NULL AND s = last_end THEN run := run + minutes;
	ELSE run := minutes;
	END IF;
	RETURN ARRAY[run, s + minutes * 60];
END
\$\$;
CREATE FUNCTION bench.sb_final(st double precision[]) RETURNS double precision
LANGUAGE sql IMMUTABLE AS 'SELECT st[1]';
CREATE AGGREGATE bench.sb_plpgsql(double precision, double precision, timestamptz, integer)
	(SFUNC = bench.sb_step, STYPE = double precision[], FINALFUNC = bench.sb_final);
SQL

rows=$(psql -At -c 'SELECT count(*) FROM evmgmt.interval_stat')
echo "interval rows: $rows ($series series x 96 intervals)"

ms() { # run SQL 3 times, print the best wall time in ms
	local best="" t
	for _ in 1 2 3; do
		t=$(psql -At <<SQL | tail -n 1
\\timing on
$1
SQL
)
		t=$(echo "$t" | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p')
		if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
	done
	echo "$best"
}

c_ms=$(ms "SELECT sum(r) FROM (SELECT evmgmt.sustained_minutes_below(evmgmt.interval_service_level(answered_in_threshold, offered), 0.6, interval_start, interval_minutes ORDER BY interval_start) AS r FROM evmgmt.interval_stat GROUP BY site_id, queue_id, pool) x;")
p_ms=$(ms "SELECT sum(r) FROM (SELECT bench.sb_plpgsql(evmgmt.interval_service_level(answered_in_threshold, offered), 0.6, interval_start, interval_minutes ORDER BY interval_start) AS r FROM evmgmt.interval_stat GROUP BY site_id, queue_id, pool) x;")
check=$(psql -At -c "SELECT count(*) FROM (SELECT evmgmt.sustained_minutes_below(evmgmt.interval_service_level(answered_in_threshold, offered), 0.6, interval_start, interval_minutes ORDER BY interval_start) AS a, bench.sb_plpgsql(evmgmt.interval_service_level(answered_in_threshold, offered), 0.6, interval_start, interval_minutes ORDER BY interval_start) AS b FROM evmgmt.interval_stat GROUP BY site_id, queue_id, pool) x WHERE a IS DISTINCT FROM b")
echo "sustained_minutes_below over $rows rows: C ${c_ms} ms, PL/pgSQL ${p_ms} ms, ratio $(awk "BEGIN{printf \"%.1f\", $p_ms / $c_ms}")x (series where they differ: $check)"

s_ms=$(ms "SELECT count(*) FROM evmgmt.classify_series('2025-06-03 00:00+00', '1 day');")
tiers=$(psql -At -c "SELECT string_agg(coalesce(severity::text, 'none') || '=' || n, ' ' ORDER BY severity) FROM (SELECT severity, count(*) n FROM evmgmt.classify_series('2025-06-03 00:00+00', '1 day') GROUP BY 1) x")
echo "classify_series over $series series: ${s_ms} ms ($tiers)"

l_ms=$(ms "SELECT count(*) FROM (SELECT evmgmt.close_event(e) FROM (SELECT e, evmgmt.classify_pool(e, 'spec', 'sev3'), evmgmt.diagnose_pool(e, 'spec', 'people', 'schedule_adjustment'), evmgmt.log_response(e, 'spec', 'overtime'), evmgmt.resolve_pool(e, 'spec') FROM (SELECT evmgmt.open_event('capacity', 'S1', '{spec}', 'rule', 'bench', NULL, 'Q1') AS e FROM generate_series(1, $events) OFFSET 0) o OFFSET 0) p) q;")
echo "full protocol (open, classify, diagnose, respond, resolve, close) x $events events: ${l_ms} ms, $(awk "BEGIN{printf \"%.2f\", $l_ms / $events}") ms per event"

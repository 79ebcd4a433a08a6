#!/usr/bin/env bash
# Benchmark: COPY of interval rows into evmgmt.interval_stat (keys, checks,
# foreign keys) against the same COPY into identical plain tables, in one run.
#   bash test/bench/ingest.sh [rows]        (default 1,000,000)
# Prints seconds, rows/s and the ratio to each baseline (best of 3 runs each).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${EVMGMT_IN_CLUSTER:-}" ]; then
	bash test/tools/deps.sh
	make -s >/dev/null && rm -rf tmp/destdir && make -s install DESTDIR="$PWD/tmp/destdir" >/dev/null
	exec bash test/tools/cluster.sh env EVMGMT_IN_CLUSTER=1 bash test/bench/ingest.sh "$@"
fi
rows=${1:-1000000}
db=evmgmt_bench_ingest
createdb "$db"
trap 'dropdb --if-exists "$db" 2>/dev/null' EXIT
q() { psql -X -q -At -d "$db" "$@"; }
q -c 'CREATE EXTENSION evmgmt'
q <<SQL
INSERT INTO evmgmt.operation VALUES ('bench', 'Bench');
INSERT INTO evmgmt.calendar VALUES ('std', 'Std');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id)
SELECT 'S' || i, 'bench', 'Site ' || i, 'UTC', 'std' FROM generate_series(1, 10) i;
INSERT INTO evmgmt.queue (queue_id, operation_id, name) SELECT 'Q' || i, 'bench', 'Queue ' || i FROM generate_series(1, 20) i;
-- rows for 10 sites x 20 queues x 3 pools x n intervals
CREATE TABLE rows_src AS
SELECT 'S' || (1 + i % 10) AS site_id, 'Q' || (1 + (i / 10) % 20) AS queue_id, (ARRAY['aa','collab','spec'])[1 + (i / 200) % 3] AS pool,
	   timestamptz '2026-01-01' + (i / 600) * interval '15 minutes' AS interval_start, 15 AS interval_minutes,
	   100 + i % 50 AS offered, 90 + i % 10 AS handled, 2 AS abandoned, 70 AS answered_in_threshold, 20 AS threshold_seconds,
	   300.0 AS aht_seconds, 35.5 AS staffed, 36.0 AS scheduled, 101.0 AS forecast_offered, 295.0 AS forecast_aht
FROM generate_series(0, $rows - 1) i;
CREATE TABLE plain_heap (LIKE evmgmt.interval_stat INCLUDING DEFAULTS);
CREATE TABLE plain_keyed (LIKE evmgmt.interval_stat INCLUDING DEFAULTS);
ALTER TABLE plain_keyed ADD PRIMARY KEY (interval_start, site_id, queue_id, pool);
SQL
csv=$(mktemp /tmp/evmgmt-ingest.XXXXXX.csv)
chmod 644 "$csv"
trap 'dropdb --if-exists "$db" 2>/dev/null; rm -f "$csv"' EXIT
q -c "\\copy rows_src TO '$csv' WITH (FORMAT csv)"

run() {  # table -> best seconds of 3
	local best=""
	for _ in 1 2 3; do
		q -c "TRUNCATE $1" 2>/dev/null || q -c "DELETE FROM $1"
		q -c 'CHECKPOINT'
		local t0 t1
		t0=$(date +%s.%N)
		q -c "\\copy $1 FROM '$csv' WITH (FORMAT csv)"
		t1=$(date +%s.%N)
		best=$(echo "$t0 $t1 $best" | awk '{d = $2 - $1; if ($3 == "" || d < $3) print d; else print $3}')
	done
	echo "$best"
}
heap=$(run plain_heap)
keyed=$(run plain_keyed)
ours=$(run evmgmt.interval_stat)
printf 'rows: %d\n' "$rows"
printf '%-44s %8.2f s %10.0f rows/s\n' "plain table, no keys (baseline)" "$heap" "$(echo "$rows / $heap" | bc -l)"
printf '%-44s %8.2f s %10.0f rows/s  %.2fx baseline\n' "plain table with the same primary key" "$keyed" "$(echo "$rows / $keyed" | bc -l)" "$(echo "$keyed / $heap" | bc -l)"
printf '%-44s %8.2f s %10.0f rows/s  %.2fx baseline, %.2fx keyed\n' "evmgmt.interval_stat (keys, checks, FKs)" "$ours" "$(echo "$rows / $ours" | bc -l)" "$(echo "$ours / $heap" | bc -l)" "$(echo "$ours / $keyed" | bc -l)"

#!/usr/bin/env bash
# test/bench/reports.sh: time of every post-event report for a month and for
# the year on a synthetic year (not part of the suite).
#   bash test/tools/cluster.sh bash test/bench/reports.sh [events] [timeline_per_event] [notifs_per_event] [sites]
# Defaults: the issue's year, 200,000 events, 2,000,000 timeline rows,
# 5,000,000 notifications, 10 sites with a year of 15-minute intervals each
# (350,400 interval rows), generated set-based by test/tools/synthetic_year.sql.
# Each report is run three times for June 2025 (best time printed, ms) and
# once for the year, with the goal (a month under 1 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
events=${1:-200000}
tl=${2:-10}
nf=${3:-25}
sites=${4:-10}
# The worker is off while the benchmark runs: the synthetic year is in the
# past, and its delivery-history purge and target timers would work on it.
psql -X -q -d postgres -c "ALTER SYSTEM SET evmgmt.worker_enabled = off" -c "SELECT pg_reload_conf()" >/dev/null
worker_back() { psql -X -q -d postgres -c "ALTER SYSTEM RESET evmgmt.worker_enabled" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true; }
# EVMGMT_BENCH_DB=NAME keeps the generated database (and reuses it when it
# exists) for looking at plans afterwards
db=${EVMGMT_BENCH_DB:-evmgmt_bench_reports_$$}
if [ -z "${EVMGMT_BENCH_DB:-}" ]; then
	trap 'worker_back; dropdb --if-exists "$db" >/dev/null 2>&1 || true' EXIT
else
	trap worker_back EXIT
fi
if ! psql -X -qAt -d "$db" -c 'SELECT 1' >/dev/null 2>&1; then
	createdb "$db"
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION evmgmt'
	start=$(date +%s)
	psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v events="$events" -v timeline_per_event="$tl" -v notifs_per_event="$nf" -v sites="$sites" \
		-f test/tools/synthetic_year.sql >/dev/null
	echo "generated in $(( $(date +%s) - start )) s:"
fi
psql -X -qAt -d "$db" -F ' ' -c "SELECT 'events', count(*) FROM evmgmt.event UNION ALL SELECT 'timeline', count(*) FROM evmgmt.event_timeline
	UNION ALL SELECT 'notifications', count(*) FROM evmgmt.notification UNION ALL SELECT 'intervals', count(*) FROM evmgmt.interval_stat"

# one psql per report, so that each line is printed as soon as it is measured
bench_sql=$(cat <<'SQL'
SET TimeZone = 'UTC';
CREATE FUNCTION pg_temp.best_ms(q text, runs integer DEFAULT 3) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	best numeric := NULL;
	ms numeric;
BEGIN
	FOR i IN 1..runs LOOP
		t0 := clock_timestamp();
		EXECUTE 'SELECT count(*) FROM (' || q || ') x';
		ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
		best := LEAST(COALESCE(best, ms), ms);
	END LOOP;
	RETURN round(best, 1);
END $$;
SQL
)
printf '%-30s%12s%12s  %s\n' report 'month (ms)' 'year (ms)' 'month < 1 s'
for r in report_target_compliance report_response_times report_severity_drift report_blind_spots \
		 report_notification_fatigue report_learning_loop report_impact report_maturity; do
	psql -X -qAt -d "$db" -v r="$r" <<SQL
$bench_sql
SELECT rpad(:'r', 30) || lpad(m::text, 12) || lpad(y::text, 12) || '  ' || CASE WHEN m < 1000 THEN 'yes' ELSE 'NO' END
FROM (SELECT pg_temp.best_ms(format('SELECT * FROM evmgmt.%s(%L, %L)', :'r', '2025-06-01', '2025-07-01')) AS m,
			 pg_temp.best_ms(format('SELECT * FROM evmgmt.%s(%L, %L)', :'r', '2025-01-01', '2026-01-01'), 1) AS y) t;
SQL
done
psql -X -qAt -d "$db" <<SQL
$bench_sql
SELECT rpad('event_report (one event)', 30) || lpad(pg_temp.best_ms('SELECT 1 WHERE length(evmgmt.event_report(' || (SELECT max(event_id) / 2 FROM evmgmt.event) || ')) > 0')::text, 12);
SQL

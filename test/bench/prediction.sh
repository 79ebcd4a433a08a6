#!/usr/bin/env bash
# Benchmark of prediction (issue 10), in one run, for SERIES series x 8 future
# intervals (10 sites x SERIES/30 queues x 3 pools; 1 % of the series short
# of agents):
#   1. COPY of the forecast into evmgmt.interval_forecast, against the same
#      COPY into a plain table with the same columns (the ratio);
#   2. the time from that COPY's commit to the predicted events existing,
#      opened by the worker;
#   3. a full prediction pass (run_predictions) with the events already open:
#      time per pass and per series, against the Erlang math alone over the
#      same rows (service_level, asa and agents_required of every interval,
#      twice: as forecast and as corrected), the ratio;
#   4. the projection alone (forecast_projection_at over every series).
#   bash test/bench/prediction.sh [series] [runs]   (defaults 10,000 and 3)
# Figures 3 and 4 are the best of [runs].
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${EVMGMT_IN_CLUSTER:-}" ]; then
	bash test/tools/deps.sh
	make -s >/dev/null && rm -rf tmp/destdir && make -s install DESTDIR="$PWD/tmp/destdir" >/dev/null
	exec bash test/tools/cluster.sh env EVMGMT_IN_CLUSTER=1 bash test/bench/prediction.sh "$@"
fi
want=${1:-10000}
runs=${2:-3}
db=evmgmt_bench_prediction
createdb "$db"
csv=$(mktemp /tmp/evmgmt-forecast.XXXXXX.csv)
chmod 644 "$csv"
trap 'dropdb --if-exists "$db" 2>/dev/null; rm -f "$csv"' EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
now() { date +%s.%N; }
sites=10
queues=$(( (want + sites * 3 - 1) / (sites * 3) ))
series=$((sites * queues * 3))

q -c 'CREATE EXTENSION evmgmt'
q <<SQL
SET client_min_messages = warning;
INSERT INTO evmgmt.operation VALUES ('bench', 'Bench');
INSERT INTO evmgmt.calendar VALUES ('all', 'Round the clock');
INSERT INTO evmgmt.calendar_hours SELECT 'all', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id)
SELECT 'S' || s, 'bench', 'Site ' || s, 'UTC', 'all' FROM generate_series(1, $sites) s;
INSERT INTO evmgmt.queue (queue_id, operation_id, name) SELECT 'q' || k, 'bench', 'Queue ' || k FROM generate_series(1, $queues) k;
CREATE TABLE public.plain_forecast (LIKE evmgmt.interval_forecast INCLUDING DEFAULTS);
SQL
# 8 intervals from the next quarter hour; every 100th series is 9 agents short
q > "$csv" <<SQL
SET TimeZone = 'UTC';
COPY (
	SELECT 'S' || s, 'q' || k, p, date_trunc('hour', now()) + (floor(extract(minute FROM now()) / 15) + 1 + i) * interval '15 minutes',
		   15, 100, 300, CASE WHEN (s * $queues + k) % 100 = 0 THEN 30 ELSE 42 END, NULL
	FROM generate_series(1, $sites) s, generate_series(1, $queues) k, unnest(ARRAY['spec', 'collab', 'aa']) p, generate_series(0, 7) i
) TO STDOUT WITH (FORMAT csv);
SQL
rows=$(wc -l < "$csv")
short=$(q -c "SELECT count(*) FROM generate_series(1, $sites) s, generate_series(1, $queues) k WHERE (s * $queues + k) % 100 = 0")
short=$((short * 3))
cols='site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled, patience_seconds'
echo "series: $series, forecast rows: $rows, series short of agents: $short"

t0=$(now)
q -c "\\copy public.plain_forecast ($cols) FROM '$csv' WITH (FORMAT csv)"
t1=$(now)
q -c "\\copy evmgmt.interval_forecast ($cols) FROM '$csv' WITH (FORMAT csv)"
t2=$(now)
# the worker predicts after the commit
while [ "$(q -c "SELECT count(*) FROM evmgmt.prediction_state WHERE status = 'predicted'")" -lt "$short" ]; do
	sleep 0.05
	if [ "$(echo "$(now) - $t2 > 300" | bc)" = 1 ]; then echo "the predicted events did not all appear within 300 s"; exit 1; fi
done
t3=$(now)
plain=$(echo "$t1 - $t0" | bc)
load=$(echo "$t2 - $t1" | bc)
lag=$(echo "$t3 - $t2" | bc)
printf 'COPY %s forecast rows: plain table %.2f s, interval_forecast %.2f s, ratio %.2f\n' "$rows" "$plain" "$load" "$(echo "$load / $plain" | bc -l)"
printf 'commit of the load to %s predicted events existing (worker): %.2f s\n' "$short" "$lag"
q -c "SELECT 'events: ' || count(*) || ', pools: ' || (SELECT count(*) FROM evmgmt.pool_condition) FROM evmgmt.event"

best_pass=999999; best_math=999999; best_proj=999999
for r in $(seq 1 "$runs"); do
	a=$(now)
	q -c "SELECT evmgmt.run_predictions(now(), true)" >/dev/null
	b=$(now)
	q >/dev/null <<SQL
SELECT sum(evmgmt.service_level(t, floor(f.scheduled)::int, f.forecast_aht, 20) + coalesce(evmgmt.asa(t, floor(f.scheduled)::int, f.forecast_aht), 0)
		   + evmgmt.agents_required(t, f.forecast_aht, 0.8, 20)) * 2
FROM public.plain_forecast f, LATERAL (SELECT f.forecast_offered * f.forecast_aht / 900.0 AS t) x;
SQL
	c=$(now)
	q -c "SELECT count(*) FROM evmgmt.forecast_projection_at(now())" >/dev/null
	d=$(now)
	best_pass=$(echo "if ($b - $a < $best_pass) $b - $a else $best_pass" | bc)
	best_math=$(echo "if ($c - $b < $best_math) $c - $b else $best_math" | bc)
	best_proj=$(echo "if ($d - $c < $best_proj) $d - $c else $best_proj" | bc)
done
q -c "SELECT 'last full pass: ' || series || ' series, ' || intervals || ' intervals, ' || breaching || ' breaching, ' || decisions || ' decisions, ' || failures || ' failures' FROM evmgmt.prediction_run WHERE full_pass ORDER BY run_id DESC LIMIT 1"
printf 'full prediction pass: %.2f s (%.1f us per series); Erlang math alone: %.2f s; ratio %.2f\n' \
	"$best_pass" "$(echo "$best_pass * 1000000 / $series" | bc -l)" "$best_math" "$(echo "$best_pass / $best_math" | bc -l)"
printf 'projection alone (forecast_projection_at, %s intervals): %.2f s\n' "$rows" "$best_proj"

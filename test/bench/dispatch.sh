#!/usr/bin/env bash
# test/bench/dispatch.sh [N]: dispatcher throughput to a local keep-alive
# webhook sink, N notifications (default 100,000), on a throw-away cluster.
#
# Prints, measured in the same run:
#   - the sink's own capacity, driven alone by a keep-alive C client with as
#     many connections as evmgmt.max_concurrency (the ceiling);
#   - the dispatcher's throughput: N signed webhooks, from the first attempt
#     started to the last one settled (delivery_attempt times), and from
#     switching the worker on until every notification is 'sent';
#   - the worker's resident memory after 1,000 and after N notifications.
# EVMGMT_BENCH_PERF=FILE records the worker's profile during the main run.
# Goal: >= 2,000 notifications/s sustained.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}

if [ -z "${EVMGMT_IN_CLUSTER:-}" ]; then
	make -s >/dev/null
	make -s install DESTDIR="$PWD/tmp/destdir" >/dev/null
	exec bash test/tools/cluster.sh env EVMGMT_IN_CLUSTER=1 bash test/bench/dispatch.sh "$@"
fi

WORK=$(mktemp -d /tmp/evmgmt-bench.XXXXXX)
SINK_PID=""
cleanup() {
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
	psql -XqAt -d postgres -c "ALTER SYSTEM RESET ALL" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

CONCURRENCY=32
BATCH=1000
cc -O2 -o "$WORK/sink_fast" test/tools/sink_fast.c
"$WORK/sink_fast" serve "$WORK/port" "$WORK/count" &
SINK_PID=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
PORT=$(cat "$WORK/port")

echo "== sink alone: $N requests, $CONCURRENCY keep-alive connections, 400-byte bodies"
CEILING=$("$WORK/sink_fast" client "$PORT" "$N" "$CONCURRENCY" 400)
echo "sink capacity: $CEILING requests/s"

q() { psql -XqAt -v ON_ERROR_STOP=1 -d evmgmt_bench -c "$1"; }
setting() {
	psql -XqAt -d postgres -c "ALTER SYSTEM SET $1 = '$2'" >/dev/null
}
setting evmgmt.max_concurrency $CONCURRENCY
setting evmgmt.batch_size $BATCH
# one sink: the per-endpoint cap must allow the whole concurrency
setting evmgmt.max_per_endpoint $CONCURRENCY
setting evmgmt.worker_enabled off
setting evmgmt.delivery_retention -1
psql -XqAt -d postgres -c "SELECT pg_reload_conf()" >/dev/null
dropdb --if-exists evmgmt_bench
createdb evmgmt_bench
q "CREATE EXTENSION evmgmt"
q "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('bench', 'webhook', 'webhook', 'http://127.0.0.1:$PORT/hook');
   INSERT INTO evmgmt.provider_secret VALUES ('bench', 'whsec_YmVuY2htYXJrIHNpZ25pbmcga2V5IDEyMzQ1Njc4')"
for _ in $(seq 200); do
	[ -n "$(psql -XqAt -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = 'evmgmt_bench'")" ] && break
	sleep 0.1
done
WPID=$(psql -XqAt -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = 'evmgmt_bench'")
rss() { awk '/^VmRSS/ {print $2}' "/proc/$WPID/status"; }
anon() { awk '/^RssAnon/ {print $2}' "/proc/$WPID/status"; }

# run ROUND COUNT: queue COUNT notifications with the worker off, then switch it on and time it
run() {
	q "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, subject, body, payload)
	   SELECT 'test', 'webhook', 'bench', 'ops', 'bench $1 ' || i, repeat('x', 120) || ' round $1 #' || i,
	          jsonb_build_object('severity', 'sev2', 'i', i)
	   FROM generate_series(1, $2) i"
	q "CHECKPOINT" >/dev/null
	setting evmgmt.worker_enabled on
	START=$(date +%s.%N)
	psql -XqAt -d postgres -c "SELECT pg_reload_conf()" >/dev/null
	while [ "$(q "SELECT count(*) FROM evmgmt.notification WHERE subject LIKE 'bench $1 %' AND state IN ('pending', 'sending', 'retry')")" != 0 ]; do
		sleep 0.2
	done
	END=$(date +%s.%N)
	setting evmgmt.worker_enabled off
	psql -XqAt -d postgres -c "SELECT pg_reload_conf()" >/dev/null
}

echo "== warm-up: 1,000 notifications"
run warm 1000
RSS1=$(rss); ANON1=$(anon)
echo "worker memory after 1,000: VmRSS $RSS1 kB, RssAnon $ANON1 kB"

echo "== dispatch: $N notifications, concurrency $CONCURRENCY, batch $BATCH"
# EVMGMT_BENCH_PERF=FILE: record the worker's profile (perf, call graphs)
# during the main run into FILE, for "perf report -i FILE"
PERF_PID=""
if [ -n "${EVMGMT_BENCH_PERF:-}" ]; then
	perf record -F 1999 -g -p "$WPID" -o "$EVMGMT_BENCH_PERF" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5
fi
run main "$N"
[ -n "$PERF_PID" ] && { kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; }
RSS2=$(rss); ANON2=$(anon)
WALL=$(echo "$END - $START" | bc -l)
read -r SENT DEAD SPAN <<<"$(q "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'dead'),
	extract(epoch FROM (SELECT max(a.finished_at) - min(a.started_at) FROM evmgmt.delivery_attempt a
	                    JOIN evmgmt.notification m USING (notification_id) WHERE m.subject LIKE 'bench main %'))
	FROM evmgmt.notification WHERE subject LIKE 'bench main %'" | tr '|' ' ')"
sleep 0.3
RECEIVED=$(cat "$WORK/count")
RATE=$(echo "$N / $SPAN" | bc -l)
RATE_WALL=$(echo "$N / $WALL" | bc -l)
printf 'sent %d, dead %d; the sink received %d requests in all (including the %d of its own test and 1,000 warm-up)\n' \
	"$SENT" "$DEAD" "$RECEIVED" "$N"
printf 'dispatch throughput: %.0f notifications/s (first attempt to last, %.2f s)\n' "$RATE" "$SPAN"
printf 'dispatch throughput: %.0f notifications/s (worker switched on until all sent, %.2f s, polling every 0.2 s)\n' "$RATE_WALL" "$WALL"
printf 'ratio to the sink ceiling: %.2f\n' "$(echo "$RATE / $CEILING" | bc -l)"
echo "worker memory after $N: VmRSS $RSS2 kB, RssAnon $ANON2 kB (after 1,000: VmRSS $RSS1 kB, RssAnon $ANON1 kB)"
printf 'goal >= 2000 notifications/s: %s\n' "$( (( $(echo "$RATE >= 2000" | bc) )) && echo met || echo missed)"
dropdb evmgmt_bench

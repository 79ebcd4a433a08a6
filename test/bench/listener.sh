#!/usr/bin/env bash
# test/bench/listener.sh [N]: acknowledgments through the HTTP listener, on a
# throw-away cluster.  N open escalations (default 10,000), each with its
# push page's action token; a local load generator (test/tools/ack_load.py:
# 32 keep-alive connections) POSTs every /ack/<token> once.
#
# Prints:
#   - the listener's health check alone (GET /healthz, the same 32
#     connections): the HTTP ceiling of the one-process listener;
#   - acknowledgments per second, and p50/p90/p99 from sending the request to
#     its answer, which comes after the acknowledgment committed (the
#     listener answers only then), with N escalations open at the start;
#   - a check that all N escalations are acknowledged in the database, each
#     once, via push.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}

if [ -z "${EVMGMT_IN_CLUSTER:-}" ]; then
	make -s >/dev/null
	make -s install DESTDIR="$PWD/tmp/destdir" >/dev/null
	exec bash test/tools/cluster.sh env EVMGMT_IN_CLUSTER=1 bash test/bench/listener.sh "$@"
fi

WORK=$(mktemp -d /tmp/evmgmt-bench.XXXXXX)
cleanup() {
	psql -XqAt -d postgres -c "ALTER SYSTEM RESET ALL" >/dev/null 2>&1
	pg_ctlcluster 15 regress restart >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
LP=$(free_port)
BASE="http://127.0.0.1:$LP"
q() { psql -XqAt -v ON_ERROR_STOP=1 -d evmgmt_bench -c "$1"; }

dropdb --if-exists evmgmt_bench
createdb evmgmt_bench
q "CREATE EXTENSION evmgmt"
psql -XqAt -d postgres -c "ALTER SYSTEM SET evmgmt.http_listen = '127.0.0.1:$LP'" \
	-c "ALTER SYSTEM SET evmgmt.http_database = 'evmgmt_bench'" \
	-c "ALTER SYSTEM SET evmgmt.public_base_url = '$BASE'" >/dev/null
pg_ctlcluster 15 regress restart >/dev/null
for _ in $(seq 300); do curl -sf "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

echo "== $N open escalations"
t0=$(date +%s.%N)
q "INSERT INTO evmgmt.operation VALUES ('op', 'Bench');
   INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
   INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op', 'Berlin', 'Europe/Berlin', 'cal');
   INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Dana', 'dana');
   INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES (1, 'push', 'dana');
   INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('spec-plan', 'Spec', '{spec}');
   -- the first page is an hour away: nothing is sent while the benchmark runs
   INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
    ('spec-plan', 1, '1 hour', 'email', 'contact', 1)"
q "DO \$\$
DECLARE ev bigint;
BEGIN
	FOR i IN 1 .. $N LOOP
		ev := evmgmt.open_event('system', 'BER', '{spec}', 'rule', 'Bench ' || i, now(), NULL, 'router_failure');
		PERFORM evmgmt.classify_pool(ev, 'spec', 'sev2');
	END LOOP;
END \$\$"
q "SELECT '$BASE/ack/' || evmgmt.action_token(escalation_id, 1, 'push') FROM evmgmt.escalation WHERE state = 'active' ORDER BY random()" > "$WORK/urls"
t1=$(date +%s.%N)
echo "open: $(q "SELECT count(*) FROM evmgmt.escalation WHERE state = 'active'") escalations, $(wc -l < "$WORK/urls") tokens ($(python3 -c "print(f'{$t1 - $t0:.1f}')") s to set up)"
q "VACUUM ANALYZE"

echo "== GET /healthz alone, 32 keep-alive connections"
python3 -c "import sys; [print(sys.argv[1]) for _ in range($N)]" "$BASE/healthz" > "$WORK/health"
python3 test/tools/ack_load.py GET "$WORK/health" 32

echo "== POST /ack/<token> for each of the $N escalations, 32 keep-alive connections"
python3 test/tools/ack_load.py POST "$WORK/urls" 32

echo "== check"
q "SELECT count(*) FILTER (WHERE e.state = 'acknowledged') || ' acknowledged, ' || count(*) FILTER (WHERE e.state <> 'acknowledged') || ' not; acks: '
          || (SELECT count(*) FROM evmgmt.escalation_ack a WHERE a.channel = 'push') || ' via push'
   FROM evmgmt.escalation e"

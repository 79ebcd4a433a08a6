#!/usr/bin/env bash
# test/bench/step_latency.sh [OPEN] [MEASURED]: latency from an escalation
# step's due time to the webhook sink receiving it, with OPEN (10,000) other
# escalations open, on a throw-away cluster.
#
# OPEN escalations wait for a step an hour away; MEASURED (200) escalations
# get a first step (a signed webhook to a local sink) due at moments spread
# over 10 s starting 3 s from now.  The worker sleeps until each due time
# (run_due_work tells it when), fires the step, dispatches the notification;
# the sink logs the receive time.  Latency = receive time - the step's due_at
# (evmgmt.escalation_step_run).  Prints p50, p95, p99 and max.
# Goal: p99 <= 1 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
OPEN=${1:-10000}
MEASURED=${2:-200}

if [ -z "${EVMGMT_IN_CLUSTER:-}" ]; then
	make -s >/dev/null
	make -s install DESTDIR="$PWD/tmp/destdir" >/dev/null
	exec bash test/tools/cluster.sh env EVMGMT_IN_CLUSTER=1 bash test/bench/step_latency.sh "$@"
fi

WORK=$(mktemp -d /tmp/evmgmt-latency.XXXXXX)
SINK_PID=""
cleanup() {
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null
	psql -XqAt -d postgres -c "ALTER SYSTEM RESET ALL" -c "SELECT pg_reload_conf()" >/dev/null 2>&1
	dropdb --if-exists evmgmt_latency >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT

SECRET='whsec_bGF0ZW5jeSBiZW5jaG1hcmsga2V5'
python3 test/tools/sink_http.py --port-file "$WORK/port" --log "$WORK/sink.log" --secret "$SECRET" &
SINK_PID=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.05; done
PORT=$(cat "$WORK/port")

# every page a message of its own
psql -XqAt -d postgres -c "ALTER SYSTEM SET evmgmt.recipient_burst_window = 0" -c "SELECT pg_reload_conf()" >/dev/null
createdb evmgmt_latency
q() { psql -XqAt -v ON_ERROR_STOP=1 -d evmgmt_latency -c "$1"; }
q "CREATE EXTENSION evmgmt"
q "
INSERT INTO evmgmt.operation VALUES ('op', 'Latency');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('S', 'op', 'Site', 'UTC', 'cal');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$PORT/ok');
INSERT INTO evmgmt.provider_secret VALUES ('hook', '$SECRET');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('later', 'Open, due in an hour', '{aa}'), ('now', 'Measured', '{spec}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, provider_id) VALUES
 ('later', 1, '1 hour', 'webhook', 'endpoint', 'hook'), ('now', 1, '0', 'webhook', 'endpoint', 'hook');
INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at)
SELECT i, 'op', 'S', 'system', 'roc_analyst', 'Latency ' || i, now() FROM generate_series(1, $OPEN + $MEASURED) i;
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at)
SELECT i, CASE WHEN i <= $OPEN THEN 'aa' ELSE 'spec' END::evmgmt.pool, 'sev1', 'classified', now()
FROM generate_series(1, $OPEN + $MEASURED) i;"
echo "== $OPEN open escalations (next step in an hour)"
q "SELECT count(evmgmt.escalation_start(i, 'aa', 'manual')) FROM generate_series(1, $OPEN) i" >/dev/null
echo "== $MEASURED escalations with a step due every $((10000 / MEASURED)) ms over 10 s, from 3 s on"
q "SELECT count(evmgmt.escalation_start(i, 'spec', 'manual',
	clock_timestamp() + interval '3 s' + (i - $OPEN - 1) * (interval '10 s' / $MEASURED)))
   FROM generate_series($OPEN + 1, $OPEN + $MEASURED) i" >/dev/null
echo "open escalations: $(q "SELECT count(*) FROM evmgmt.escalation WHERE state = 'active'")"

for _ in $(seq 600); do
	[ "$(wc -l <"$WORK/sink.log")" -ge "$MEASURED" ] && break
	sleep 0.1
done
q "SELECT n.idempotency_key, extract(epoch FROM r.due_at)
   FROM evmgmt.escalation_step_run r JOIN evmgmt.notification n USING (notification_id)
   WHERE n.provider_id = 'hook' AND r.escalation_id IN (SELECT escalation_id FROM evmgmt.escalation WHERE pool = 'spec')" >"$WORK/due"
python3 - "$WORK/sink.log" "$WORK/due" "$MEASURED" <<'PY'
import json, sys
due = dict(l.strip().split("|") for l in open(sys.argv[2]))
lat = sorted(json.loads(l)["received"] - float(due[json.loads(l)["headers"]["webhook-id"]])
             for l in open(sys.argv[1]) if json.loads(l)["headers"]["webhook-id"] in due)
n = len(lat)
valid = all(json.loads(l)["sig_valid"] for l in open(sys.argv[1]))
def p(q):
    return lat[min(n - 1, int(q * n))]
print("received %d of %d measured steps, signatures valid: %s" % (n, int(sys.argv[3]), valid))
if n:
    print("latency due -> sink: p50 %.3f s, p95 %.3f s, p99 %.3f s, max %.3f s" % (p(0.50), p(0.95), p(0.99), lat[-1]))
    print("goal p99 <= 1 s: %s" % ("met" if p(0.99) <= 1.0 and n == int(sys.argv[3]) else "missed"))
PY

#!/usr/bin/env bash
# At-least-once delivery across crashes: kill -9 of the worker in the middle
# of a batch, then an immediate server stop and restart in the middle of
# dispatch, then kill -9 of the launcher.  The sink's log is the evidence: every notification arrives at
# least once; a notification arrives twice only if its attempt was in flight
# at the crash (its history shows the interrupted attempt), and every copy
# carries the same webhook-id, the notification's idempotency key.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 14
DB=evmgmt_it_crash
SECRET='whsec_c2VjcmV0IGtleSBmb3IgY3Jhc2ggdGVzdHM='
new_db $DB
set_guc evmgmt.max_concurrency 4
set_guc evmgmt.backoff_base 100ms
set_guc evmgmt.batch_size 10
start_http_sink slow --mode slow --slow 0.15 --secret "$SECRET"
q $DB "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('slow', 'webhook', 'webhook', 'http://127.0.0.1:$SINK_PORT/slow/hook');
       INSERT INTO evmgmt.provider_secret VALUES ('slow', '$SECRET')" >/dev/null
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

server_up() { psql -XqAt -d postgres -c "SELECT 1" >/dev/null 2>&1; }

# check ROUND: compare the sink log with the outbox for body LIKE 'ROUND %'
check() {
	q $DB "SELECT notification_id, idempotency_key,
	              EXISTS (SELECT FROM evmgmt.delivery_attempt a WHERE a.notification_id = n.notification_id AND a.error LIKE '%interrupted%')
	       FROM evmgmt.notification n WHERE body LIKE '$1 %'" >"$IT_DIR/$1.outbox"
	python3 - "$IT_DIR/slow.log" "$IT_DIR/$1.outbox" <<'PY'
import collections, json, sys
outbox = {}
for line in open(sys.argv[2]):
    nid, key, interrupted = line.strip().split("|")
    outbox[int(nid)] = (key, interrupted == "t")
seen = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    nid = json.loads(r["body"])["data"]["notification_id"]
    if nid in outbox:
        seen[nid].append((r["headers"]["webhook-id"], r["sig_valid"]))
missing = [n for n in outbox if n not in seen]
dups = [n for n in outbox if len(seen[n]) > 1]
print("all", len(outbox) > 0 and not missing)
print("same_id", all(all(w == outbox[n][0] and s for w, s in seen[n]) for n in seen))
print("dups_in_flight", all(outbox[n][1] for n in dups))
print("count", len(outbox), "dups", len(dups))
PY
}

# Round 1: kill -9 of the worker mid-batch.
q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body)
       SELECT 'test', 'webhook', 'slow', 'ops', 'r1 ' || i FROM generate_series(1, 60) i" >/dev/null
wait_for 20 sink_has slow 12
PID=$(worker_pid $DB)
kill -9 "$PID"
ok $? "kill -9 of the worker (pid $PID) while it sends"
wait_for 60 sql_true $DB "SELECT count(*) = 60 FROM evmgmt.notification WHERE body LIKE 'r1 %' AND state = 'sent'"
ok $? "after the crash restart every notification of round 1 is sent"
check r1 >"$IT_DIR/r1.check"
diag "$(grep '^count' "$IT_DIR/r1.check")"
is "$(grep '^all' "$IT_DIR/r1.check")" "all True" "the sink received every one at least once"
is "$(grep '^same_id' "$IT_DIR/r1.check")" "same_id True" "every copy carries the notification's own webhook-id and a valid signature"
is "$(grep '^dups_in_flight' "$IT_DIR/r1.check")" "dups_in_flight True" "duplicates only where the attempt was in flight at the crash"
is "$(q $DB "SELECT count(*) FROM evmgmt.notification WHERE state = 'sending'")" 0 "no claim is left behind"

# Round 2: immediate stop of the whole server mid-dispatch, then start.
q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body)
       SELECT 'test', 'webhook', 'slow', 'ops', 'r2 ' || i FROM generate_series(1, 60) i" >/dev/null
N=$(log_lines slow)
wait_for 20 sink_has slow $((N + 12))
pg_ctlcluster 15 regress stop -m immediate
ok $? "immediate stop while the worker sends"
pg_ctlcluster 15 regress start
wait_for 30 server_up
ok $? "the server starts again"
wait_for 60 sql_true $DB "SELECT count(*) = 60 FROM evmgmt.notification WHERE body LIKE 'r2 %' AND state = 'sent'"
ok $? "after the restart every notification of round 2 is sent"
check r2 >"$IT_DIR/r2.check"
diag "$(grep '^count' "$IT_DIR/r2.check")"
is "$(grep '^all' "$IT_DIR/r2.check")" "all True" "the sink received every one at least once"
is "$(grep '^same_id' "$IT_DIR/r2.check")" "same_id True" "every copy carries the notification's own webhook-id and a valid signature"
is "$(grep '^dups_in_flight' "$IT_DIR/r2.check")" "dups_in_flight True" "duplicates only where the attempt was in flight at the stop"

# Round 3: kill -9 of the launcher: the server reinitialises, launcher and worker come back.
LPID=$(q postgres "SELECT pid FROM pg_stat_activity WHERE backend_type = 'evmgmt launcher'")
kill -9 "$LPID"
wait_for 30 sql_true postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'evmgmt launcher' AND pid <> $LPID"
ok $? "after kill -9 of the launcher a new launcher runs"
wait_for 30 has_worker $DB
ok $? "and the database has its worker again"

it_done

#!/usr/bin/env bash
# DROP DATABASE by somebody who may not drop the database leaves its worker
# alone: a login that does not own the database runs DROP DATABASE on it
# again and again, and the worker keeps running (same pid) and keeps
# dispatching; so does an owner's DROP DATABASE inside a transaction block
# (which PostgreSQL refuses).  An owner's DROP DATABASE that fails late
# (another session is connected) gives the worker back at once instead of
# keeping it out for the block time (30 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 8
DB=evmgmt_it_ddlperm
ROLE=evmgmt_it_mallory
new_db $DB
q postgres "SET client_min_messages = warning; DROP ROLE IF EXISTS $ROLE; CREATE ROLE $ROLE LOGIN PASSWORD 'mallory'" >/dev/null
IT_CLEANUP+=("psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS $ROLE'")
start_http_sink hook
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }
PID=$(worker_pid $DB)
q $DB "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$SINK_PORT/ok')" >/dev/null

# send N: queue notification N and wait until it is sent
send() {
	q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'n$1')" >/dev/null
	wait_for 10 sql_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'n$1'"
}

errors=""
for i in 1 2 3 4 5; do
	err=$(PGUSER=$ROLE PGPASSWORD=mallory psql -XqAt -d postgres -c "DROP DATABASE $DB" 2>&1)
	errors="$errors$(echo "$err" | grep -c 'must be owner of database')"
	send "$i" || break
done
is "$errors" "11111" "each DROP DATABASE by a non-owner fails with \"must be owner\""
is "$(q $DB "SELECT count(*) FROM evmgmt.notification WHERE state = 'sent'")" "5" \
	"the worker dispatches after every failed DROP DATABASE"
is "$(worker_pid $DB)" "$PID" "the worker is the same process throughout (never stopped)"

# The owner, but inside a transaction block: PostgreSQL refuses the statement.
err=$(psql -XqAt -d postgres -c "BEGIN" -c "DROP DATABASE $DB" -c "ROLLBACK" 2>&1)
echo "$err" | grep -q 'cannot run inside a transaction block'
ok $? "DROP DATABASE in a transaction block is refused"
send 6
ok $? "the worker dispatches after it"
is "$(worker_pid $DB)" "$PID" "and is still the same process"

# The owner, while another session is connected: the drop fails after
# PostgreSQL's 5 s wait for the other session; the worker comes back well
# before the 30 s block would have expired.
psql -XqAt -d $DB -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
HOLDER=$!
IT_PIDS+=($HOLDER)
wait_for 10 sql_true postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = '$DB' AND query ~ 'pg_sleep'"
err=$(psql -XqAt -d postgres -c "DROP DATABASE $DB" 2>&1)
echo "$err" | grep -q 'is being accessed by other users'
ok $? "DROP DATABASE with another session connected fails"
failed_at=$(date +%s)
wait_for 15 has_worker $DB && send 7
ok $? "after the failed DROP the worker is back and dispatching within 15 s (block is 30 s; took $(( $(date +%s) - failed_at )) s)"
kill $HOLDER 2>/dev/null

it_done

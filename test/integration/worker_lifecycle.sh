#!/usr/bin/env bash
# Worker topology and lifecycle: a database that gets the extension gets a
# worker; the worker is idle when nothing is due (no CPU, idle in
# pg_stat_activity); it is woken by a commit, not before; DROP EXTENSION
# stops it and CREATE EXTENSION brings it back; a terminated worker is
# restarted; SIGHUP turns dispatch off and on; DROP DATABASE neither hangs
# nor fails because of the worker.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 21
DB=evmgmt_it_life
new_db $DB
wait_for 20 has_worker $DB
ok $? "CREATE EXTENSION in a new database starts its worker"
PID=$(worker_pid $DB)

start_http_sink hook
q $DB "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$SINK_PORT/ok')" >/dev/null

# Idle: nothing due, so no CPU and no transaction.
wait_for 10 sql_true postgres "SELECT state = 'idle' AND xact_start IS NULL FROM pg_stat_activity WHERE pid = $PID"
ok $? "the idle worker shows as idle in pg_stat_activity"
# idle_window WHAT: over 3 s the worker uses no CPU and reports no activity
idle_window() {
	local t1 t2 s1 s2
	# settled: idle for a second already (not between two steps of a cycle)
	wait_for 10 sql_true postgres "SELECT state = 'idle' AND now() - state_change > interval '1 s' FROM pg_stat_activity WHERE pid = $PID"
	t1=$(cpu_ticks "$PID")
	s1=$(q postgres "SELECT state || ' ' || state_change || ' ' || query FROM pg_stat_activity WHERE pid = $PID")
	sleep 3	# the measuring window, not a wait for something to happen
	t2=$(cpu_ticks "$PID")
	s2=$(q postgres "SELECT state || ' ' || state_change || ' ' || query FROM pg_stat_activity WHERE pid = $PID")
	ok $([ $((t2 - t1)) -le 1 ] && echo 0 || echo 1) "$1: no CPU over 3 s ($t1 -> $t2 ticks)"
	is "$s2" "$s1" "$1: still idle, no statement run meanwhile"
}
idle_window "the new idle worker"

# Woken by the commit, not by the insert: one session holds the inserting
# transaction open until the test commits it (no timing involved).
mkfifo "$IT_DIR/txn.in"
psql -XqAt -v ON_ERROR_STOP=1 -d $DB <"$IT_DIR/txn.in" >"$IT_DIR/txn.out" 2>&1 &
TXN=$!
IT_PIDS+=($TXN)
exec 3>"$IT_DIR/txn.in"
echo "BEGIN; INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'woken by commit'); \\echo INSERTED" >&3
wait_for 30 grep -q INSERTED "$IT_DIR/txn.out" || { echo "Bail out! the inserting session did not insert: $(cat "$IT_DIR/txn.out")"; exit 1; }
sleep 1	# a window in which nothing may be sent
is "$(log_lines hook)" 0 "nothing is sent while the inserting transaction is open"
echo "SELECT 'before_commit ' || extract(epoch FROM clock_timestamp()); COMMIT; \\echo COMMITTED" >&3
exec 3>&-
wait $TXN
BEFORE_COMMIT=$(sed -n 's/^before_commit //p' "$IT_DIR/txn.out")
# With nothing due the worker sleeps until its next purge (5 minutes) unless a
# commit wakes it: a bound of 30 s tells the two apart on any machine.
wait_for 30 sink_has hook 1
ok $? "the commit wakes the worker, which sends"
is "$(q $DB "SELECT count(*) FROM evmgmt.delivery_attempt a JOIN evmgmt.notification n USING (notification_id)
             WHERE n.body = 'woken by commit' AND a.started_at > to_timestamp($BEFORE_COMMIT) AND a.started_at < to_timestamp($BEFORE_COMMIT) + interval '30 s'")" 1 \
	"the delivery started after the commit, without waiting for the next purge"

q $DB "BEGIN; INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'rolled back'); ROLLBACK" >/dev/null
is "$(q $DB "SELECT count(*) FROM evmgmt.notification WHERE body = 'rolled back'")" 0 "a rolled-back insert leaves nothing to send"

# SIGHUP: evmgmt.worker_enabled off holds work back, on releases it.
set_guc evmgmt.worker_enabled off
q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'held while disabled')" >/dev/null
sleep 1	# window in which nothing may happen
is "$(q $DB "SELECT state FROM evmgmt.notification WHERE body = 'held while disabled'")" pending "with evmgmt.worker_enabled = off nothing is sent (reloaded on SIGHUP)"
set_guc evmgmt.worker_enabled on
wait_for 10 sql_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'held while disabled'"
ok $? "turned on again, the held notification is sent"
wait_for 30 sink_has hook 2
is "$(python3 -c 'import json, sys; print(len({json.loads(l)["client"] for l in open(sys.argv[1])}))' "$IT_DIR/hook.log")" 1 \
	"both deliveries, in different cycles, used the same kept-alive connection"
wait_for 10 sql_true postgres "SELECT state = 'idle' FROM pg_stat_activity WHERE pid = $PID"
idle_window "after sending, with nothing due"

# DROP EXTENSION stops the worker, CREATE EXTENSION brings it back.
q $DB "DROP EXTENSION evmgmt" >/dev/null
wait_for 10 no_worker $DB
ok $? "DROP EXTENSION stops the worker"
q $DB "CREATE EXTENSION evmgmt" >/dev/null
wait_for 10 has_worker $DB
ok $? "CREATE EXTENSION again starts it again"

# A worker that dies is restarted by the launcher.
PID=$(worker_pid $DB)
q postgres "SELECT pg_terminate_backend($PID)" >/dev/null
wait_for 15 sql_true postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$DB' AND pid <> $PID"
ok $? "a terminated worker is restarted"

is "$(q postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'evmgmt launcher'")" 1 "one launcher runs"

# ALTER DATABASE ... RENAME needs the database empty too: it works, and the worker comes back.
q postgres "ALTER DATABASE $DB RENAME TO ${DB}_renamed" >/dev/null 2>"$IT_DIR/rename.err"
ok $? "ALTER DATABASE RENAME succeeds despite the worker $(cat "$IT_DIR/rename.err")"
wait_for 15 has_worker "${DB}_renamed"
ok $? "and the renamed database gets its worker back at once"
q postgres "ALTER DATABASE ${DB}_renamed RENAME TO $DB" >/dev/null
wait_for 15 has_worker $DB

# DROP DATABASE with a live worker: quick, and no error.
START=$(date +%s%N)
dropdb $DB 2>"$IT_DIR/dropdb.err"
RC=$?
ELAPSED=$(( ($(date +%s%N) - START) / 1000000 ))
# Without the hook DROP DATABASE fails after waiting 5 s for the worker; 15 s is a failure bound for a hang.
ok $([ $RC -eq 0 ] && [ $ELAPSED -lt 15000 ] && echo 0 || echo 1) "DROP DATABASE succeeds despite the worker ($ELAPSED ms) $(cat "$IT_DIR/dropdb.err")"
wait_for 10 no_worker $DB
ok $? "and its worker is gone"

it_done

#!/usr/bin/env bash
# Shutdown must not hang under synchronous replication: with a synchronous
# standby that never answers, the worker's commits wait in SyncRep; a
# fast shutdown still completes promptly, and after the restart
# (synchronous replication off again) the notification is delivered.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 5
DB=evmgmt_it_syncrep
new_db $DB
start_http_sink hook
q $DB "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$SINK_PORT/ok')" >/dev/null
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }
PID=$(worker_pid $DB)

set_guc synchronous_standby_names nobody_answers
# our own session commits locally; the worker's commits wait for the standby
PGOPTIONS="-c synchronous_commit=local" q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'under sync rep')" >/dev/null
wait_for 15 sql_true postgres "SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE pid = $PID"
ok $? "the worker's commit waits for the synchronous standby that never answers"

START=$(date +%s)
timeout 60 pg_ctlcluster 15 regress stop -m fast
RC=$?
ELAPSED=$(( $(date +%s) - START ))
# a hang would last until the 60 s timeout; 30 s is a failure bound, not a speed target
ok $([ $RC -eq 0 ] && [ $ELAPSED -le 30 ] && echo 0 || echo 1) "a fast shutdown completes anyway (${ELAPSED} s)"

pg_ctlcluster 15 regress start
server_up() { psql -XqAt -d postgres -c "SELECT 1" >/dev/null 2>&1; }
wait_for 30 server_up
ok $? "the server starts again"
q postgres "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
q postgres "SELECT pg_reload_conf()" >/dev/null
wait_for 20 sql_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'under sync rep'"
ok $? "the notification is recorded as sent after the restart"
ok $([ "$(log_lines hook)" -ge 1 ] && echo 0 || echo 1) "and the sink has it ($(log_lines hook) request(s): at least once)"

it_done

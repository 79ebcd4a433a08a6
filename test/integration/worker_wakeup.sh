#!/usr/bin/env bash
# A wake-up is never lost: work committed while the worker waits for a lock
# inside one of its own units (here the dispatcher's settle, blocked by a
# session that holds delivery_attempt) is still picked up on time.  A lock
# wait inside PostgreSQL sleeps on the process latch and resets it, so the
# latch that the committing session set says nothing once the wait ends; the
# worker also compares a per-slot wake-up count in shared memory before it
# sleeps.  Before that count, this script's escalation waited for the purge
# timer (5 minutes) instead of firing at +2 s.  Prints TAP; bounded waits.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 5
DB=evmgmt_it_wakeup
new_db $DB
start_http_sink api
API=$SINK_PORT
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }
WPID=$(worker_pid $DB)

q $DB "
INSERT INTO evmgmt.operation VALUES ('op', 'Wake-up');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$API/ok/hook');
INSERT INTO evmgmt.provider_secret VALUES ('hook', 'whsec_c2VjcmV0');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('now-plan', 'Now', '{spec}'), ('later-plan', 'Later', '{collab}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, provider_id) VALUES
 ('now-plan', 1, '0', 'webhook', 'endpoint', 'hook'),
 ('later-plan', 1, '2 s', 'webhook', 'endpoint', 'hook');" >/dev/null

# Session A holds delivery_attempt until told to let go (its rollback wakes nobody).
mkfifo "$IT_DIR/a.in"
psql -XqAt -d $DB <"$IT_DIR/a.in" >"$IT_DIR/a.out" 2>&1 &
IT_PIDS+=($!)
exec 3>"$IT_DIR/a.in"
IT_CLEANUP+=("exec 3>&-")
echo "BEGIN; LOCK TABLE evmgmt.delivery_attempt IN EXCLUSIVE MODE; SELECT 'locked';" >&3
wait_for 20 grep -q locked "$IT_DIR/a.out"
ok $? "session A holds delivery_attempt"

# A page at once: the worker sends it and then waits for A in its settle.
E1=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{spec}', 'rule', 'First', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($E1, 'spec', 'sev2')" >/dev/null
wait_for 30 sql_true postgres "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $WPID"
ok $? "the worker sent the first page and waits for A's lock while it records the delivery"

# Meanwhile an escalation whose first step is due in 2 s commits: its
# wake-up arrives while the worker sleeps in the lock wait.
E2=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{collab}', 'rule', 'Second', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($E2, 'collab', 'sev2')" >/dev/null
LATER=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $E2 AND pool = 'collab'")
sleep 0.5
is "$(q postgres "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $WPID")" "Lock" \
	"the worker was still waiting for the lock when the escalation committed"
echo "ROLLBACK;" >&3

# The step is due at +2 s; the bound is a failure bound, far below the
# 5-minute purge timer the worker slept to before.
wait_for 60 sql_true $DB "SELECT EXISTS (SELECT FROM evmgmt.escalation_step_run WHERE escalation_id = $LATER AND step_no = 1)"
ok $? "the later escalation's step fires although its wake-up came during the lock wait"
is "$(q $DB "SELECT r.fired_at >= r.due_at AND r.fired_at < r.due_at + interval '50 s' FROM evmgmt.escalation_step_run r WHERE r.escalation_id = $LATER AND r.step_no = 1")" t \
	"it fired at or after it was due and long before the purge timer ($(q $DB "SELECT round(extract(epoch FROM r.fired_at - r.due_at), 2) FROM evmgmt.escalation_step_run r WHERE r.escalation_id = $LATER AND r.step_no = 1") s late)"
it_done

#!/usr/bin/env bash
# Acknowledge vs resolve vs a firing step, with real concurrent sessions.
#
# Session A holds the escalation row (an acknowledgment not yet committed);
# run_due_work in another session must skip it at once (SKIP LOCKED) instead
# of paging; escalation_stop in a third session must wait for A and then see
# the acknowledgment; the reverse order makes the late acknowledgment fail
# with 55000.  Finally two sessions run run_due_work on the same due
# escalations at the same time and every step fires exactly once.
# Prints TAP.  Every wait is bounded; everything started is cleaned up.
set -u
# no burst bundling here: the resolve notice must be a message of its own
export PGOPTIONS="-c evmgmt.recipient_burst_window=0"
db="evm_race_$$"
tmp="$(mktemp -d)"
bg_pids=()
cleanup() {
	for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
	exec 3>&- 2>/dev/null
	wait 2>/dev/null
	dropdb --if-exists "$db" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ -n "${2:-}" ] && echo "# $2"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "expected '$3', got '$2'"; fi; }
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
# wait (at most $2 seconds) until the query $1 returns t
wait_for() {
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(q "$1")" = "t" ] && return 0
		sleep 0.1
	done
	return 1
}

echo "1..10"
createdb "$db" || exit 1
q "CREATE EXTENSION evmgmt" >/dev/null
q "
INSERT INTO evmgmt.operation VALUES ('op1', 'Race');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op1', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Ana', 'ana');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES (1, 'sms', '+4915112345601');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address)
VALUES ('twilio-sms', 'sms', 'twilio', 'http://127.0.0.1:9/twilio', 'AC1', '+15550000000');
INSERT INTO evmgmt.escalation_plan (plan_id, name) VALUES ('p', 'Race plan');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id)
VALUES ('p', 1, '0', 'sms', 'contact', 1), ('p', 2, '10 min', 'sms', 'contact', 1);
INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at)
SELECT i, 'op1', 'BER', 'system', 'roc_analyst', 'Race ' || i, now() FROM generate_series(1, 203) i;
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at)
SELECT i, 'spec', 'sev1', 'classified', now() FROM generate_series(1, 202) i;
INSERT INTO evmgmt.pool_condition (event_id, pool) VALUES (203, 'spec');
" >/dev/null
esc=$(q "SELECT evmgmt.escalation_start(1, 'spec', 'manual', clock_timestamp() - interval '1 minute')")
q "SELECT evmgmt.run_due_work(clock_timestamp())" >/dev/null

# Session A: acknowledge, but do not commit yet.
mkfifo "$tmp/a.in"
psql -X -q -t -A -d "$db" <"$tmp/a.in" >"$tmp/a.out" 2>&1 &
bg_pids+=($!)
exec 3>"$tmp/a.in"
echo "BEGIN; SELECT evmgmt.acknowledge($esc, 1, 'mine'); \\echo A_ACKED" >&3
deadline=$((SECONDS + 10))
until grep -q A_ACKED "$tmp/a.out" || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
if grep -q '^acknowledged$' "$tmp/a.out"; then ok "session A acknowledged (uncommitted)"; else notok "session A acknowledged (uncommitted)" "$(cat "$tmp/a.out")"; fi

# A firing step at the same instant skips the locked row at once: with a
# 20 s statement timeout (it would otherwise wait for ever) it must return, and fire nothing for it.
start=$SECONDS
PGOPTIONS="$PGOPTIONS -c statement_timeout=20s" q "SELECT evmgmt.run_due_work(clock_timestamp() + interval '1 hour')" >/dev/null 2>"$tmp/b.err"
rc=$?
check "run_due_work skips the escalation being acknowledged (no wait)" "$rc" "0"
check "no step fired for it meanwhile" "$(q "SELECT count(*) FROM evmgmt.escalation_step_run WHERE escalation_id = $esc")" "1"

# Resolve in session C: waits for A's lock.
( q "SELECT evmgmt.escalation_stop(1, 'spec', 'resolved')" >"$tmp/c.out" 2>&1 ) &
cpid=$!
bg_pids+=($cpid)
if wait_for "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = '$db' AND wait_event_type = 'Lock' AND query LIKE '%escalation_stop%')" 10; then
	ok "escalation_stop waits for the acknowledgment's row lock"
else
	notok "escalation_stop waits for the acknowledgment's row lock"
fi
echo "COMMIT; \\echo A_DONE" >&3
deadline=$((SECONDS + 10))
while kill -0 "$cpid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
check "after A commits, the escalation is acknowledged by Ana, stop saw it already ended" \
	"$(q "SELECT state || ' ' || acknowledged_by || ' ' || (SELECT count(*) FROM evmgmt.escalation_ack WHERE escalation_id = $esc)
		  FROM evmgmt.escalation WHERE escalation_id = $esc")|$(cat "$tmp/c.out")" "acknowledged 1 1|0"
check "nothing left to page, one resolve notice to the paged responder" \
	"$(q "SELECT count(*) FILTER (WHERE kind = 'escalation_step' AND state IN ('pending', 'retry', 'sending')) || ' ' ||
				 count(*) FILTER (WHERE kind = 'resolved') FROM evmgmt.notification WHERE event_id = 1")" "0 1"
exec 3>&-

# Reverse order: resolve holds the row, the acknowledgment waits, then fails.
esc2=$(q "SELECT evmgmt.escalation_start(2, 'spec', 'manual')")
q "SELECT evmgmt.run_due_work(clock_timestamp())" >/dev/null
mkfifo "$tmp/r.in"
psql -X -q -t -A -d "$db" <"$tmp/r.in" >"$tmp/r.out" 2>&1 &
bg_pids+=($!)
exec 3>"$tmp/r.in"
echo "BEGIN; SELECT evmgmt.escalation_stop(2, 'spec', 'resolved'); \\echo R_STOPPED" >&3
deadline=$((SECONDS + 10))
until grep -q R_STOPPED "$tmp/r.out" || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
( psql -X -q -t -A -d "$db" -c "\\set VERBOSITY sqlstate" -c "SELECT evmgmt.acknowledge($esc2, 1)" >"$tmp/k.out" 2>&1 ) &
kpid=$!
bg_pids+=($kpid)
wait_for "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = '$db' AND wait_event_type = 'Lock' AND query LIKE '%acknowledge%')" 10
echo "COMMIT;" >&3
deadline=$((SECONDS + 10))
while kill -0 "$kpid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
check "an acknowledgment after the resolve fails with 55000 and changes nothing" \
	"$(tr -d '\n' <"$tmp/k.out")|$(q "SELECT state FROM evmgmt.escalation WHERE escalation_id = $esc2")" "ERROR:  55000|resolved"
exec 3>&-

# Two callers at once over 200 due escalations: each step fires once.
q "SELECT count(evmgmt.escalation_start(i, 'spec', 'manual', clock_timestamp() - interval '1 minute')) FROM generate_series(3, 202) i" >/dev/null
( q "SELECT evmgmt.run_due_work(clock_timestamp())" >/dev/null ) &
p1=$!
( q "SELECT evmgmt.run_due_work(clock_timestamp())" >/dev/null ) &
p2=$!
bg_pids+=($p1 $p2)
deadline=$((SECONDS + 60))
while { kill -0 $p1 2>/dev/null || kill -0 $p2 2>/dev/null; } && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
# the background worker is a third caller: wait until whatever it took is committed
wait_for "SELECT count(*) >= 200 FROM evmgmt.escalation_step_run r JOIN evmgmt.escalation e USING (escalation_id)
		  WHERE e.event_id BETWEEN 3 AND 202 AND r.step_no = 1" 20
check "two concurrent run_due_work calls (and the worker) fire each of 200 first steps exactly once" \
	"$(q "SELECT count(*) || ' ' || count(DISTINCT (r.escalation_id, r.cycle, r.step_no, r.retry_no)) FROM evmgmt.escalation_step_run r
		  JOIN evmgmt.escalation e USING (escalation_id) WHERE e.event_id BETWEEN 3 AND 202 AND r.step_no = 1")" "200 200"

# A lifecycle transaction holds the event (cancel_pool: event FOR UPDATE, then
# escalation_stop): run_due_work neither waits nor deadlocks, and leaves the
# event for a later call.
q "SELECT evmgmt.classify_pool(203, 'spec', 'sev1')" >/dev/null
mkfifo "$tmp/l.in"
psql -X -q -t -A -d "$db" <"$tmp/l.in" >"$tmp/l.out" 2>&1 &
bg_pids+=($!)
exec 3>"$tmp/l.in"
echo "BEGIN; SELECT evmgmt.cancel_pool(203, 'spec', 'false positive'); \\echo L_HELD" >&3
deadline=$((SECONDS + 10))
until grep -q L_HELD "$tmp/l.out" || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
PGOPTIONS="$PGOPTIONS -c statement_timeout=20s" q "SELECT evmgmt.run_due_work(clock_timestamp() + interval '1 hour')" >/dev/null 2>"$tmp/w.err"
check "run_due_work does not wait for an event a lifecycle transaction holds" "$?|$(cat "$tmp/w.err")" "0|"
echo "COMMIT; \\echo L_DONE" >&3
deadline=$((SECONDS + 10))
until grep -q L_DONE "$tmp/l.out" || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
exec 3>&-
check "the cancel commits without a deadlock and stops the escalation" \
	"$(grep -c -i deadlock "$tmp/l.out")|$(q "SELECT string_agg(state, ',') FROM evmgmt.escalation WHERE event_id = 203")" "0|cancelled"

#!/usr/bin/env bash
# Escalation engine figures: what run_due_work costs with N open escalations
# when nothing is due (the worker's idle check), and how fast it fires due
# steps (one step, one notification each).  Run inside the cluster:
#   bash test/tools/cluster.sh bash test/bench/escalation_due.sh [N]
# The escalations are scheduled in 2030 and run_due_work is called with
# explicit moments, so the background worker (real time) leaves them alone.
set -euo pipefail
n=${1:-10000}
db="evm_bench_esc_$$"
trap 'dropdb --if-exists "$db" >/dev/null 2>&1' EXIT
# every page a message of its own (all steps page one contact)
export PGOPTIONS="-c evmgmt.recipient_burst_window=0"
createdb "$db"
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$db" -c "$1"; }
q "CREATE EXTENSION evmgmt"
q "
INSERT INTO evmgmt.operation VALUES ('op', 'Bench');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('S', 'op', 'Site', 'UTC', 'cal');
INSERT INTO evmgmt.contact (contact_id, name, role_name) SELECT i, 'c' || i, 'r' || i FROM generate_series(1, 1000) i;
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) SELECT i, 'push', 'topic-' || i FROM generate_series(1, 1000) i;
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('ntfy', 'push', 'ntfy', 'http://127.0.0.1:9/ntfy');
INSERT INTO evmgmt.contact_group VALUES ('g', 'g');
INSERT INTO evmgmt.group_member SELECT 'g', 1;
INSERT INTO evmgmt.escalation_plan (plan_id, name) VALUES ('p', 'Bench plan');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id)
VALUES ('p', 1, '1 min', 'push', 'contact', 1), ('p', 2, '5 min', 'push', 'contact', 2);
INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at, opened_at)
SELECT i, 'op', 'S', 'system', 'roc_analyst', 'Bench ' || i, '2030-01-01', '2030-01-01' FROM generate_series(1, $n) i;
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, opened_at, classified_at)
SELECT i, 'spec', 'sev2', 'classified', '2030-01-01', '2030-01-01' FROM generate_series(1, $n) i;
"
q "SELECT count(evmgmt.escalation_start(i, 'spec', 'manual', '2030-01-01'::timestamptz)) FROM generate_series(1, $n) i" >/dev/null
q "ANALYZE"
[ -n "${PROFILE:-}" ] && q "ALTER DATABASE $db SET track_functions = 'pl'"
echo "open escalations: $(q "SELECT count(*) FROM evmgmt.escalation WHERE state = 'active'")"

# idle: nothing due (first steps at 00:01)
idle_ms=$(q "
DO \$\$
DECLARE t0 timestamptz := clock_timestamp(); i int;
BEGIN
	FOR i IN 1 .. 1000 LOOP PERFORM evmgmt.run_due_work('2030-01-01 00:00:30Z'); END LOOP;
	RAISE NOTICE '%', round(extract(epoch FROM clock_timestamp() - t0) * 1000 / 1000, 4);
END \$\$;" 2>&1 | sed 's/.*NOTICE: *//')
echo "run_due_work with nothing due: ${idle_ms} ms per call (mean of 1000)"

# firing: every first step due at once; each run_due_work call in its own
# transaction, as the worker does, until nothing more is due at that moment
t0=$(date +%s.%N)
calls=0
while :; do
	r=$(q "SELECT coalesce(evmgmt.run_due_work('2030-01-01 00:01:00Z') <= '2030-01-01 00:01:00Z', false)")
	calls=$((calls + 1))
	[ "$r" = "t" ] || break
done
t1=$(date +%s.%N)
steps=$(q "SELECT count(*) FROM evmgmt.escalation_step_run")
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
echo "fired $steps due steps in ${secs} s over $calls run_due_work calls: $(awk -v s="$steps" -v t="$secs" 'BEGIN{printf "%.0f", s/t}') steps/s (one notification each)"
if [ -n "${PROFILE:-}" ]; then
	psql -X -d "$db" -c "SELECT funcname, calls, round(total_time::numeric, 1) AS total_ms, round(self_time::numeric, 1) AS self_ms
	                     FROM pg_stat_user_functions ORDER BY self_time DESC LIMIT 15"
fi

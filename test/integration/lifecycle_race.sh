#!/usr/bin/env bash
# test/integration/lifecycle_race.sh: two real sessions race to transition the
# same event; the row locks of the lifecycle functions serialise them and the
# event ends in one consistent state.  Prints TAP.
#
# In each race session A takes the event's locks inside an open transaction
# and holds them until it sees session B blocked on a lock (bounded wait),
# then commits; B must then fail with 55000 against the state A left, and the
# tables must show exactly A's transition.  Run inside test/tools/cluster.sh.
set -euo pipefail

db="evmgmt_race_$$"
work="$(mktemp -d)"
pids=()

cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	dropdb --if-exists "$db" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

n=0
ok() {
	n=$((n + 1))
	if [ "$1" = "0" ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}

q() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$1"
}

# Wait (at most 20 s) until the SQL condition is true.
wait_for() {
	local i
	for i in $(seq 1 200); do
		if [ "$(q "SELECT ($1)::text")" = "true" ]; then return 0; fi
		sleep 0.1
	done
	return 1
}

# Wait (at most 30 s) for a background process to finish; its exit status.
wait_pid() {
	local pid=$1 i
	for i in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			return $?
		fi
		sleep 0.1
	done
	return 124
}

echo "1..12"

createdb "$db"
q "CREATE EXTENSION evmgmt" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<'SQL'
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme');
INSERT INTO evmgmt.calendar VALUES ('de', 'Germany office hours');
INSERT INTO evmgmt.calendar_hours SELECT 'de', d, '09:00', '17:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'acme', 'Berlin', 'Europe/Berlin', 'de');
SQL

# race NAME EVENT A_SQL B_SQL B_ERROR_PATTERN CHECK_SQL
race() {
	local name=$1 e=$2 a_sql=$3 b_sql=$4 b_pattern=$5 check=$6
	local a_out="$work/$name.a" b_out="$work/$name.b" a_pid b_pid a_rc b_rc

	psql -X -v ON_ERROR_STOP=1 -d "$db" >"$a_out" 2>&1 <<SQL &
SET application_name = 'race_a_$name';
BEGIN;
$a_sql;
DO \$\$
DECLARE
	i integer := 0;
BEGIN
	WHILE NOT EXISTS (SELECT FROM pg_catalog.pg_stat_activity
					  WHERE application_name = 'race_b_$name' AND wait_event_type = 'Lock') LOOP
		PERFORM pg_catalog.pg_sleep(0.05);
		-- activity is cached for the transaction: look again
		PERFORM pg_catalog.pg_stat_clear_snapshot();
		i := i + 1;
		IF i > 400 THEN
			RAISE EXCEPTION 'session B never waited for our lock';
		END IF;
	END LOOP;
END
\$\$;
COMMIT;
SQL
	a_pid=$!
	pids+=("$a_pid")

	# B starts only once A holds the locks (A is in its waiting loop).
	if ! wait_for "EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'race_a_$name' AND query LIKE 'DO %')"; then
		echo "# session A never reached its waiting loop" >&2
	fi

	psql -X -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db" >"$b_out" 2>&1 <<SQL &
\set VERBOSITY verbose
SET application_name = 'race_b_$name';
$b_sql;
SQL
	b_pid=$!
	pids+=("$b_pid")

	set +e
	wait_pid "$a_pid"; a_rc=$?
	wait_pid "$b_pid"; b_rc=$?
	set -e

	sed 's/^/# A: /' "$a_out"
	sed 's/^/# B: /' "$b_out"
	ok "$([ "$a_rc" = 0 ] && grep -q '^COMMIT' "$a_out"; echo $?)" "$name: session A committed after session B had blocked on its lock"
	ok "$([ "$b_rc" != 0 ] && grep -Eq "$b_pattern" "$b_out"; echo $?)" "$name: session B then failed against the state A left"
	ok "$([ "$(q "$check")" = "t" ]; echo $?)" "$name: the event is in one consistent state"
}

# 1. Both classify the same detected pool: only A's tier, one timeline row.
e1=$(q "SELECT evmgmt.open_event('system', 'BER', '{aa,spec}', 'rule', 'race 1')")
race classify "$e1" \
	"SELECT evmgmt.classify_pool($e1, 'spec', 'sev2')" \
	"SELECT evmgmt.classify_pool($e1, 'spec', 'sev3')" \
	"ERROR:  55000: cannot classify pool spec of event $e1: it is classified" \
	"SELECT pc.severity = 'sev2' AND pc.state = 'classified'
	        AND (SELECT count(*) FROM evmgmt.event_timeline t WHERE t.event_id = $e1 AND t.action = 'classified') = 1
	 FROM evmgmt.pool_condition pc WHERE pc.event_id = $e1 AND pc.pool = 'spec'"

# 2. A resolves the pool while B logs a response: B sees it resolved.
e2=$(q "SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'race 2')")
q "SELECT evmgmt.classify_pool($e2, 'spec', 'sev3'), evmgmt.diagnose_pool($e2, 'spec', 'people', 'schedule_adjustment'),
          evmgmt.log_response($e2, 'spec', 'overtime')" >/dev/null
race respond "$e2" \
	"SELECT evmgmt.resolve_pool($e2, 'spec')" \
	"SELECT evmgmt.log_response($e2, 'spec', 'shift_move')" \
	"ERROR:  55000: cannot log a response for pool spec of event $e2: it is resolved" \
	"SELECT pc.state = 'resolved'
	        AND (SELECT count(*) FROM evmgmt.response_action r WHERE r.event_id = $e2) = 1
	        AND (SELECT count(*) FROM evmgmt.event_timeline t WHERE t.event_id = $e2 AND t.action = 'responded') = 1
	 FROM evmgmt.pool_condition pc WHERE pc.event_id = $e2 AND pc.pool = 'spec'"

# 3. A closes the event while B reclassifies a pool: B sees it closed.
e3=$(q "SELECT evmgmt.open_event('demand', 'BER', '{spec}', 'rule', 'race 3')")
q "SELECT evmgmt.classify_pool($e3, 'spec', 'sev3'), evmgmt.diagnose_pool($e3, 'spec', 'demand', 'routing'),
          evmgmt.log_response($e3, 'spec', 'callback_offer'), evmgmt.resolve_event($e3)" >/dev/null
race close "$e3" \
	"SELECT evmgmt.close_event($e3)" \
	"SELECT evmgmt.reclassify_pool($e3, 'spec', 'sev2', 'worse than thought')" \
	"ERROR:  55000: event $e3 is closed" \
	"SELECT r.state = 'closed' AND r.floor_severity = 'sev3'
	        AND NOT EXISTS (SELECT FROM evmgmt.event_timeline t WHERE t.event_id = $e3 AND t.action = 'reclassified')
	 FROM evmgmt.event_rollup r WHERE r.event_id = $e3"

# 4. Both cancel the whole event: one cancellation, one timeline row for it.
e4=$(q "SELECT evmgmt.open_event('demand', 'BER', '{aa,spec}', 'predictive', 'race 4')")
race cancel "$e4" \
	"SELECT evmgmt.cancel_event($e4, 'forecast error')" \
	"SELECT evmgmt.cancel_event($e4, 'duplicate')" \
	"ERROR:  55000: event $e4 is cancelled" \
	"SELECT e.cancel_reason = 'forecast error'
	        AND (SELECT count(*) FROM evmgmt.event_timeline t WHERE t.event_id = $e4 AND t.action = 'cancelled' AND t.pool IS NULL) = 1
	 FROM evmgmt.event e WHERE e.event_id = $e4"

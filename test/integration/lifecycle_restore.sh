#!/usr/bin/env bash
# test/integration/lifecycle_restore.sh: events made by the lifecycle
# functions survive pg_dump/pg_restore (the guard on event tables lets the
# restore's COPY through) and their lifecycle carries on in the restored
# database: a responding event resolves and closes, a recurrence still links
# to a restored predecessor, and direct UPDATEs are still refused.  Prints TAP.
set -euo pipefail

work=$(mktemp -d)
src="evm_lc_src_$$"
dst="evm_lc_dst_$$"
cleanup() {
	dropdb --if-exists "$src" >/dev/null 2>&1 || true
	dropdb --if-exists "$dst" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

n=0
check() {
	n=$((n + 1))
	if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "#   got:  $2"; echo "#   want: $3"; fi
}
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

echo "1..6"
createdb "$src"
q "$src" 'CREATE EXTENSION evmgmt' >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$src" >/dev/null <<'SQL'
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme');
INSERT INTO evmgmt.calendar VALUES ('de', 'Germany office hours');
INSERT INTO evmgmt.calendar_hours SELECT 'de', d, '09:00', '17:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'acme', 'Berlin', 'Europe/Berlin', 'de');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'acme', 'Billing');
-- a closed sev2 diagnosed 'people' (the predecessor), and a live two-pool event
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'closed one', now() - interval '2 hours', 'billing') AS p \gset
SELECT evmgmt.classify_pool(:p, 'spec', 'sev2'), evmgmt.diagnose_pool(:p, 'spec', 'people', 'schedule_adjustment'),
	   evmgmt.log_response(:p, 'spec', 'overtime'), evmgmt.resolve_event(:p), evmgmt.close_event(:p);
SELECT evmgmt.open_event('system', 'BER', '{aa,spec}', 'monitoring', 'live one', now() - interval '10 minutes', 'billing') AS e \gset
SELECT evmgmt.classify_pool(:e, 'aa', 'sev1'), evmgmt.classify_pool(:e, 'spec', 'sev3'),
	   evmgmt.diagnose_pool(:e, 'aa', 'technology', 'it_escalation'), evmgmt.log_response(:e, 'aa', 'it_escalation'),
	   evmgmt.cancel_pool(:e, 'spec', 'not affected after all');
SQL
fp() { q "$1" "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (SELECT t::text AS x FROM evmgmt.event t UNION ALL SELECT c::text FROM evmgmt.pool_condition c UNION ALL SELECT l::text FROM evmgmt.event_timeline l UNION ALL SELECT r::text FROM evmgmt.response_action r) s"; }

pg_dump -Fc -d "$src" -f "$work/dump.pgc" 2>/dev/null
createdb "$dst"
if PGOPTIONS='-c evmgmt.restoring=on' pg_restore --exit-on-error -d "$dst" "$work/dump.pgc" 2> "$work/restore.err"; then rc=0; else rc=1; sed 's/^/#   /' "$work/restore.err"; fi
check "pg_restore loads the event tables despite the guard" "$rc" "0"
check "events, conditions, timeline and responses are identical after restore" "$(fp "$dst")" "$(fp "$src")"

e=$(q "$dst" "SELECT event_id FROM evmgmt.event WHERE title = 'live one'")
p=$(q "$dst" "SELECT event_id FROM evmgmt.event WHERE title = 'closed one'")
check "the restored live event resolves and (after its analysis) closes" \
	"$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$dst" <<SQL
SELECT evmgmt.resolve_event($e, 'fixed');
SELECT evmgmt.record_analysis($e, 'root cause', 'plan');
SELECT evmgmt.add_action_item($e, 'item', 'owner', current_date) AS item \gset
SELECT description || '/' || owner FROM evmgmt.action_item WHERE item_id = :item;
SELECT count(evmgmt.record_objective_impact($e, o, 'neutral')) FROM unnest(enum_range(NULL::evmgmt.objective)) o;
SELECT evmgmt.close_event($e);
SQL
)" "$(printf 'resolved\n\nitem/owner\n5\nclosed')"

n2=$(q "$dst" "SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'it came back', now(), 'billing')")
q "$dst" "SELECT evmgmt.classify_pool($n2, 'spec', 'sev2'), evmgmt.diagnose_pool($n2, 'spec', 'people', 'schedule_adjustment')" >/dev/null
check "a new event links to its restored predecessor" "$(q "$dst" "SELECT recurrence_of FROM evmgmt.event WHERE event_id = $n2")" "$p"

if psql -X -q -d "$dst" -c "UPDATE evmgmt.event SET title = 'x' WHERE event_id = $p" 2> "$work/upd.err"; then rc=0; else rc=1; fi
check "direct UPDATEs are still refused after restore" "$rc $(grep -c 'direct UPDATE of evmgmt.event is not allowed' "$work/upd.err")" "1 1"

check "the restored closed event reopens within the window" "$(q "$dst" "SELECT evmgmt.reopen_event($p, 'it came back')")" "diagnosed"

#!/usr/bin/env bash
# ALTER EXTENSION evmgmt UPDATE from 0.1.0 reaches exactly the schema a fresh
# install of the default version has, and keeps the data working.
#
# One database gets 0.1.0, the sample data (events with timelines, an
# escalation history, notifications, delivery attempts, intervals) and a live
# escalation whose first step has fired, the second due in an hour and a
# third a day later;
# then it is updated.  Another database gets the default version fresh.  The
# two catalogs are compared in the normalized form of
# test/tools/catalog_snapshot.sql (any difference fails and is printed); the
# rows of every table are compared with what they were before the update
# (over the columns 0.1.0 had); and the live escalation carries on: its second
# step fires when run_due_work is called for a moment after it is due, and
# cancelling the event ends it.  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 9
OLD=evmgmt_it_upgrade_old
NEW=evmgmt_it_upgrade_new
for d in $OLD $NEW; do
	IT_DBS+=("$d")
	dropdb --if-exists "$d" >/dev/null 2>&1
	createdb "$d"
done
target=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" evmgmt.control)

# --- 0.1.0 with data -------------------------------------------------------
q $OLD "CREATE EXTENSION evmgmt VERSION '0.1.0'" >/dev/null
is "$(q $OLD "SELECT extversion FROM pg_extension WHERE extname = 'evmgmt'")" "0.1.0" "0.1.0 installs with the current library"
psql -XqAt -v ON_ERROR_STOP=1 -d $OLD -f test/data/sample.sql >"$IT_DIR/sample.out" 2>&1 ||
	{ sed 's/^/# /' "$IT_DIR/sample.out"; echo "Bail out! sample data does not load into 0.1.0"; exit 1; }

# A live escalation: step 1 at once, step 2 an hour later, step 3 a day later.
esc=$(psql -XqAt -v ON_ERROR_STOP=1 -d $OLD <<'SQL'
INSERT INTO evmgmt.escalation_plan (plan_id, name, operation_id, pools, priority)
VALUES ('upgrade-collab', 'Upgrade test: collab pool', 'acme', '{collab}', 20);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
	('upgrade-collab', 1, '0', 'push', 'contact', 2),
	('upgrade-collab', 2, '1 hour', 'sms', 'contact', 2),
	('upgrade-collab', 3, '1 day', 'email', 'contact', 1);
SELECT evmgmt.open_event('system', 'MNL1', '{collab}', 'roc_analyst', 'Upgrade test: router down') AS ev \gset
SELECT evmgmt.classify_pool(:ev, 'collab', 'sev2');
SELECT evmgmt.run_due_work(pg_catalog.clock_timestamp());
SELECT escalation_id FROM evmgmt.escalation WHERE event_id = :ev AND pool = 'collab' AND state = 'active';
SQL
)
esc=$(echo "$esc" | tail -n 1)
ev=$(q $OLD "SELECT event_id FROM evmgmt.escalation WHERE escalation_id = ${esc:-0}")
is "$(q $OLD "SELECT string_agg(step_no || ':' || outcome, ',' ORDER BY step_no) FROM evmgmt.escalation_step_run WHERE escalation_id = ${esc:-0}")" \
	"1:queued" "before the update the live escalation has fired step 1 only"

# Rows of every table over the columns it has in 0.1.0, to compare after.
psql -XqAt -v ON_ERROR_STOP=1 -d $OLD >"$IT_DIR/fingerprint.sql" <<'SQL'
SELECT pg_catalog.format('SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(r, ''|'' ORDER BY r)), ''-'') FROM (SELECT ROW(%s)::text AS r FROM evmgmt.%I) t;',
						 c.relname, string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum), c.relname)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind = 'r'
GROUP BY c.relname ORDER BY c.relname;
SQL
# (the worker may deliver or retry notifications meanwhile: compare the outbox
# and its attempts without the columns the dispatcher keeps changing)
sed -i -E "/^SELECT 'notification' /s/, \"?(state|attempts|next_attempt_at|lease_until|sent_at|last_status|last_error|claimed_at)\"?//g;/^SELECT 'delivery_attempt' /d" "$IT_DIR/fingerprint.sql"
# (0.2.0 ships built-in templates of a kind 0.1.0 did not have: the rows of
# 0.1.0's kinds are compared)
sed -i -E "/^SELECT 'message_template' /s/FROM evmgmt.message_template\)/FROM evmgmt.message_template WHERE kind <> 'response_action')/" "$IT_DIR/fingerprint.sql"
psql -XqAt -v ON_ERROR_STOP=1 -d $OLD -f "$IT_DIR/fingerprint.sql" >"$IT_DIR/rows.before"

# --- the update ------------------------------------------------------------
if psql -XqAt -v ON_ERROR_STOP=1 -d $OLD -c "ALTER EXTENSION evmgmt UPDATE" >"$IT_DIR/update.out" 2>&1; then
	ok 0 "ALTER EXTENSION evmgmt UPDATE succeeds"
else
	ok 1 "ALTER EXTENSION evmgmt UPDATE succeeds"
	sed 's/^/# /' "$IT_DIR/update.out"
fi
is "$(q $OLD "SELECT extversion FROM pg_extension WHERE extname = 'evmgmt'")" "$target" "the update reaches the default version $target"

# --- the catalogs ----------------------------------------------------------
q $NEW "CREATE EXTENSION evmgmt" >/dev/null
psql -XAtq -v ON_ERROR_STOP=1 -d $OLD -f test/tools/catalog_snapshot.sql >"$IT_DIR/upgraded.txt" 2>&1
psql -XAtq -v ON_ERROR_STOP=1 -d $NEW -f test/tools/catalog_snapshot.sql >"$IT_DIR/fresh.txt" 2>&1
lines=$(wc -l <"$IT_DIR/fresh.txt")
if [ "$lines" -gt 1000 ] && diff -U0 "$IT_DIR/fresh.txt" "$IT_DIR/upgraded.txt" >"$IT_DIR/catalog.diff"; then
	ok 0 "the upgraded catalog equals a fresh $target install ($lines facts compared)"
else
	ok 1 "the upgraded catalog equals a fresh $target install ($lines facts compared)"
	diag "--- fresh $target, +++ upgraded from 0.1.0:"
	grep -v -E '^(@@|---|\+\+\+) ' "$IT_DIR/catalog.diff" | head -n 200 | sed 's/^/# /'
fi

# --- the data --------------------------------------------------------------
psql -XqAt -v ON_ERROR_STOP=1 -d $OLD -f "$IT_DIR/fingerprint.sql" >"$IT_DIR/rows.after" 2>&1
if diff -u "$IT_DIR/rows.before" "$IT_DIR/rows.after" >"$IT_DIR/rows.diff"; then
	ok 0 "every row of every table is still there after the update ($(wc -l <"$IT_DIR/rows.before") tables)"
else
	ok 1 "every row of every table is still there after the update"
	sed 's/^/# /' "$IT_DIR/rows.diff" | head -n 40
fi

# --- and it still works ----------------------------------------------------
q $OLD "SELECT evmgmt.run_due_work(pg_catalog.clock_timestamp() + interval '2 hours')" >/dev/null
is "$(q $OLD "SELECT string_agg(step_no || ':' || outcome, ',' ORDER BY step_no) FROM evmgmt.escalation_step_run WHERE escalation_id = ${esc:-0}")" \
	"1:queued,2:queued" "after the update the live escalation fires step 2 when it is due"
is "$(q $OLD "SELECT count(*) FROM evmgmt.notification WHERE escalation_id = ${esc:-0} AND kind = 'escalation_step' AND channel = 'sms'")" \
	"1" "step 2 wrote its sms to the outbox"
q $OLD "SELECT evmgmt.cancel_event(${ev:-0}, 'upgrade test done')" >/dev/null
is "$(q $OLD "SELECT e.state || ' ' || pc.state FROM evmgmt.escalation e JOIN evmgmt.pool_condition pc USING (event_id, pool) WHERE e.escalation_id = ${esc:-0}")" \
	"cancelled cancelled" "cancelling the event through the lifecycle ends the escalation before step 3"

it_done

#!/usr/bin/env bash
# Restored copies must not page anyone (issue 13), with the real worker and a
# real sink:
#  - pg_restore of a database into another one, plainly and with
#    evmgmt.restoring = on: the copy is held (evmgmt.sending_status, a
#    WARNING in the log, the worker's application_name and activity) and
#    sends nothing, though its backlog is due;
#  - evmgmt.resume_sending(): only for evmgmt_admin, 'send' or 'drop' (else
#    22023), audited; 'send' delivers the backlog, 'drop' cancels it;
#  - a clone made with CREATE DATABASE ... TEMPLATE is held too;
#  - the original keeps sending, and a promoted physical standby of the
#    cluster (same system, same database) sends by itself.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 22
A=evmgmt_it_origin
new_db $A
start_http_sink hook
HOOK=$SINK_PORT
q $A "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$HOOK/ok')" >/dev/null
wait_for 20 has_worker $A || { echo "Bail out! no worker"; exit 1; }

is "$(q $A "SELECT held FROM evmgmt.sending_status")" f "a fresh installation sends"
q $A "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'origin 1')" >/dev/null
wait_for 20 sql_true $A "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'origin 1'"
ok $? "the original database delivers"

# A backlog due in 3 s, dumped, then cancelled in the original (the worker
# paused meanwhile): any request carrying one of its ids comes from a copy.
set_guc evmgmt.worker_enabled off
q $A "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body, next_attempt_at)
      SELECT 'test', 'webhook', 'hook', 'ops', 'backlog ' || i, clock_timestamp() + interval '3 s' FROM generate_series(1, 5) i" >/dev/null
KEYS=$(q $A "SELECT string_agg(idempotency_key::text, ',') FROM evmgmt.notification WHERE body LIKE 'backlog %'")
pg_dump -Fc -d $A -f "$IT_DIR/a.pgc"
q $A "UPDATE evmgmt.notification SET state = 'cancelled' WHERE body LIKE 'backlog %'" >/dev/null
set_guc evmgmt.worker_enabled on
# sent_from_copy: requests that carry a backlog id
sent_from_copy() {
	python3 - "$IT_DIR/hook.log" "$KEYS" <<'PY'
import json, sys
keys = set(sys.argv[2].split(","))
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["headers"].get("webhook-id") in keys))
PY
}

B=evmgmt_it_restored
C=evmgmt_it_restored_flag
IT_DBS+=($B $C)
createdb $B
pg_restore --exit-on-error -d $B "$IT_DIR/a.pgc" 2>"$IT_DIR/restore_b.err"
ok $? "pg_restore into another database"
createdb $C
PGOPTIONS='-c evmgmt.restoring=on' pg_restore --exit-on-error -d $C "$IT_DIR/a.pgc" 2>"$IT_DIR/restore_c.err"
ok $? "pg_restore into a third one with evmgmt.restoring = on"
wait_for 30 has_worker $B && wait_for 30 has_worker $C
ok $? "both copies get their worker"

is "$(q $B "SELECT held || ' ' || (reason LIKE 'this database was restored from a dump of installation %') FROM evmgmt.sending_status")" "true true" \
	"the plain restore is held: restored from a dump of another installation"
is "$(q $C "SELECT held || ' ' || (reason LIKE 'this database was restored from a dump of installation %') FROM evmgmt.sending_status")" "true true" \
	"the restore with evmgmt.restoring = on is held the same way"
# the backlog is due 3 s after the dump; give the copies plenty of time past that
sleep 6
q $B "SELECT evmgmt.wake_workers()" >/dev/null
q $C "SELECT evmgmt.wake_workers()" >/dev/null
sleep 2
is "$(sent_from_copy)" 0 "neither copy sent any of its 5 due notifications, even after wake_workers()"
is "$(q $B "SELECT count(*) FROM evmgmt.notification WHERE body LIKE 'backlog %' AND state = 'pending'")" 5 "the copy's backlog waits, untouched"
grep -q "evmgmt holds all sending in database \"$B\": this database was restored from a dump" "$EVMGMT_CLUSTER_LOG" &&
	grep -q "evmgmt holds all sending in database \"$C\": this database was restored from a dump" "$EVMGMT_CLUSTER_LOG"
ok $? "the worker says so in the log (WARNING)"
is "$(q postgres "SELECT application_name || ' | ' || (query LIKE 'evmgmt: sending held: %') FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$B'")" \
	"evmgmt worker (sending held) | true" "and in pg_stat_activity (application_name and activity)"

# resume_sending: admins only, a valid choice, audited
R=it_reader_$$
M=it_admin_$$
q postgres "CREATE ROLE $R IN ROLE evmgmt_reader; CREATE ROLE $M IN ROLE evmgmt_admin" >/dev/null
IT_CLEANUP+=("psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS $R, $M'")
like() { [[ "$1" == *"$2"* ]]; }
ERR=$(psql -XqAt -d $B -c "SET ROLE $R" -c "SELECT evmgmt.resume_sending(backlog => 'send')" 2>&1)
like "$ERR" "permission denied for function resume_sending"; ok $? "a reader may not resume sending"
ERR=$(psql -XqAt -v VERBOSITY=verbose -d $B -c "SET ROLE $M" -c "SELECT evmgmt.resume_sending(backlog => 'later')" 2>&1)
like "$ERR" "22023"; ok $? "backlog must be 'send' or 'drop' (22023): $(echo "$ERR" | head -1)"
is "$(psql -XqAt -d $B -c "SET ROLE $M" -c "SELECT evmgmt.resume_sending(backlog => 'send')")" "resumed; the backlog is sent" "an admin resumes the plain restore, sending the backlog"
wait_for 20 sql_true $B "SELECT count(*) = 5 FROM evmgmt.notification WHERE body LIKE 'backlog %' AND state = 'sent'"
ok $? "then its backlog is delivered"
is "$(q $B "SELECT string_agg(action, ' ' ORDER BY at, action) FROM evmgmt.audit_log WHERE table_name = 'sending_origin' AND role_used = '$M'")" \
	"DELETE DELETE INSERT" "the resumption is in the audit trail (both old origins out, the new one in, by the admin)"
is "$(q $C "SELECT evmgmt.resume_sending(backlog => 'drop')")" "resumed; 5 unsent notification(s) dropped" "the other copy resumes, dropping its backlog"
sleep 2
is "$(q $C "SELECT held || ' ' || count(*) FILTER (WHERE n.state = 'cancelled') FROM evmgmt.sending_status, evmgmt.notification n WHERE n.body LIKE 'backlog %' GROUP BY held")" "false 5" \
	"it sends again, its backlog cancelled"
is "$(sent_from_copy)" 5 "only the 'send' copy's backlog reached the sink, once each"

# A clone: CREATE DATABASE ... TEMPLATE (of a database without a worker: a template)
T=evmgmt_it_template
D=evmgmt_it_clone
IT_DBS+=($D)
new_db $T
q postgres "ALTER DATABASE $T IS_TEMPLATE true" >/dev/null
IT_CLEANUP=("psql -XqAt -d postgres -c 'ALTER DATABASE $T IS_TEMPLATE false'" "${IT_CLEANUP[@]}")
wait_for 20 has_worker $T && q postgres "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$T'" >/dev/null
wait_for 20 no_worker $T
createdb -T $T $D
q $D "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$HOOK/ok');
      INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'clone 1')" >/dev/null
wait_for 30 has_worker $D
sleep 3
is "$(q $D "SELECT held || ' ' || (reason LIKE '%is a copy of database oid%') || ' ' || (SELECT state FROM evmgmt.notification WHERE body = 'clone 1') FROM evmgmt.sending_status")" "true true pending" \
	"a clone (CREATE DATABASE ... TEMPLATE) is held and sends nothing"

# A promoted physical standby is the same database: it sends by itself.
BIN=/usr/lib/postgresql/15/bin
SB=$(mktemp -d /tmp/evmgmt-standby.XXXXXX)
chown postgres: "$SB"
SB_PORT=$(free_port)
IT_CLEANUP+=("runuser -u postgres -- $BIN/pg_ctl -D $SB/data -m immediate stop; rm -rf $SB")
pg_basebackup -h 127.0.0.1 -p "$PGPORT" -U postgres -D "$SB/data" -R -X stream -c fast >/dev/null 2>&1 ||
	{ echo "Bail out! pg_basebackup failed"; exit 1; }
touch "$SB/data/postgresql.conf"
cp "$(q postgres "SHOW hba_file")" "$(q postgres "SHOW ident_file")" "$SB/data/"
chown -R postgres: "$SB/data"
chmod 700 "$SB/data"
OPTS="-p $SB_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SB -c hot_standby=on"
OPTS="$OPTS -c shared_preload_libraries=evmgmt -c max_worker_processes=32"
OPTS="$OPTS -c extension_destdir=$(q postgres "SHOW extension_destdir") -c dynamic_library_path=$(q postgres "SHOW dynamic_library_path")"
# the sink is on loopback, which only an explicit allow-list entry reaches (docs/security.md)
OPTS="$OPTS -c evmgmt.outbound_allow=$(q postgres "SHOW evmgmt.outbound_allow")"
runuser -u postgres -- $BIN/pg_ctl -D "$SB/data" -l "$SB/log" -o "$OPTS" -w -t 60 start >/dev/null ||
	{ echo "Bail out! standby did not start"; cat "$SB/log"; exit 1; }
sq() { psql -XqAt -h 127.0.0.1 -p "$SB_PORT" -d "$1" -c "$2"; }
sb_true() { [ "$(sq "$1" "$2" 2>/dev/null)" = "t" ]; }
wait_for 30 sb_true $A "SELECT true"
runuser -u postgres -- $BIN/pg_ctl -D "$SB/data" -w promote >/dev/null
wait_for 30 sb_true postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$A'"
sq $A "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'from the promoted standby')" >/dev/null
wait_for 20 sb_true $A "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'from the promoted standby'"
ok $? "a promoted standby is the same database: not held, it delivers by itself"
is "$(sq $A "SELECT held FROM evmgmt.sending_status")" f "and its status says it sends"

it_done

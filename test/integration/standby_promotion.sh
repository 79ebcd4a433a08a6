#!/usr/bin/env bash
# Workers run on a primary only: a streaming standby of the test cluster has
# no launcher and no worker and sends nothing (the outbox rows it replays
# are the primary's business); once promoted it starts its launcher and
# workers by itself and delivers what is committed on it.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 6
DB=evmgmt_it_standby
BIN=/usr/lib/postgresql/15/bin
new_db $DB
start_http_sink hook
q $DB "INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$SINK_PORT/ok')" >/dev/null
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

# A standby from a base backup, started as postgres with the same settings.
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
OPTS="$OPTS -c shared_preload_libraries=evmgmt -c max_worker_processes=32 -c evmgmt.outbound_allow=127.0.0.1/32"
OPTS="$OPTS -c extension_destdir=$(q postgres "SHOW extension_destdir") -c dynamic_library_path=$(q postgres "SHOW dynamic_library_path")"
runuser -u postgres -- $BIN/pg_ctl -D "$SB/data" -l "$SB/log" -o "$OPTS" -w -t 60 start >/dev/null ||
	{ echo "Bail out! standby did not start"; cat "$SB/log"; exit 1; }
sq() { psql -XqAt -h 127.0.0.1 -p "$SB_PORT" -d "$1" -c "$2"; }
sb_true() { [ "$(sq "$1" "$2" 2>/dev/null)" = "t" ]; }

is "$(sq postgres "SELECT pg_is_in_recovery()")" t "the standby is in recovery"
q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'from the primary')" >/dev/null
wait_for 20 sb_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'from the primary'"
ok $? "the primary's delivery is replayed on the standby"
is "$(sq postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('evmgmt launcher', 'evmgmt worker')")" 0 \
	"the standby runs no launcher and no worker"
is "$(log_lines hook)" 1 "only the primary sent it"

runuser -u postgres -- $BIN/pg_ctl -D "$SB/data" -w promote >/dev/null
wait_for 30 sb_true postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$DB'"
ok $? "after promotion the launcher starts a worker by itself"
sq $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'hook', 'ops', 'from the promoted standby')" >/dev/null
wait_for 20 sb_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'from the promoted standby'"
ok $? "and it delivers what is committed on it"

it_done

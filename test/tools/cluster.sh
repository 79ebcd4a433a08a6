#!/usr/bin/env bash
# test/tools/cluster.sh CMD...: run CMD against a throw-away PostgreSQL 15
# cluster (pg_virtualenv) that loads evmgmt from the private install tree
# tmp/destdir made by "make install DESTDIR=$PWD/tmp/destdir".
#
# Inside CMD: PGHOST, PGPORT, PGUSER, PGPASSWORD point at the cluster;
# EVMGMT_CLUSTER_LOG is the server log; "pg_ctlcluster 15 regress ..." stops,
# starts and restarts it (integration tests use that for crash tests).
# The test sinks listen on 127.0.0.1, which the default evmgmt.outbound_allow
# refuses (loopback): the cluster allows exactly 127.0.0.1/32.
set -euo pipefail
cd "$(dirname "$0")/../.."

destdir="$PWD/tmp/destdir"
libdir="$(pg_config --pkglibdir)"
[ -f "$destdir$libdir/evmgmt.so" ] || { echo "cluster.sh: $destdir has no evmgmt build; run make install DESTDIR=$destdir" >&2; exit 1; }

# A free port, so that several clusters can run side by side.
port=""
for _ in $(seq 1 50); do
	p=$((20000 + RANDOM % 20000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "cluster.sh: no free port" >&2; exit 1; }

export EVMGMT_DESTDIR="$destdir"
exec pg_virtualenv -t -v 15 \
	-c "-p $port" \
	-o "shared_preload_libraries=evmgmt" \
	-o "extension_destdir=$destdir" \
	-o "dynamic_library_path=$destdir$libdir:$libdir" \
	-o "max_worker_processes=32" \
	-o "log_min_messages=warning" \
	-o "evmgmt.outbound_allow=127.0.0.1/32" \
	bash -c 'export EVMGMT_CLUSTER_LOG=$(ls "$PG_CLUSTER_CONF_ROOT"/../log/*.log 2>/dev/null | head -n 1); exec "$@"' cluster.sh "$@"

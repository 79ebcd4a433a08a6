#!/usr/bin/env bash
# test/tools/cassert_regress.sh PREFIX [PORT]: build evmgmt against the
# PostgreSQL installed in PREFIX (configured with --enable-cassert, which
# wipes freed memory: CLOBBER_FREED_MEMORY), start a throw-away cluster of it
# with evmgmt preloaded and the worker off, and run the regression suite
# (make installcheck).  Not part of test/run.sh: it needs a server built from
# source.  To get one on Debian 12 (deb-src lines in the apt sources):
#   apt-get source --download-only postgresql-15; tar xjf postgresql-15_*.orig.tar.bz2
#   cd postgresql-15.*; ./configure --enable-cassert --enable-debug --prefix=PREFIX \
#       --without-readline --without-zlib --without-icu; make -j2; make install
# Run as root (the cluster runs as the postgres user).  Exits with the
# suite's status; regression.diffs stays in the source tree on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$(realpath "$1")
port=${2:-54999}
pgc="$prefix/bin/pg_config"
"$pgc" --configure | grep -q -- '--enable-cassert' || { echo "$prefix is not built with --enable-cassert" >&2; exit 2; }

make -s clean >/dev/null
make -s PG_CONFIG="$pgc" >/dev/null
make -s PG_CONFIG="$pgc" install >/dev/null

data=$(mktemp -d /tmp/evmgmt-cassert.XXXXXX)
chown postgres "$data"
cleanup() {
	su postgres -c "'$prefix/bin/pg_ctl' -D '$data/db' stop -m immediate" >/dev/null 2>&1 || true
	rm -rf "$data"
}
trap cleanup EXIT
su postgres -c "'$prefix/bin/initdb' -D '$data/db' -A trust" >/dev/null
cat >>"$data/db/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$data'
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'evmgmt'
evmgmt.worker_enabled = off
max_worker_processes = 32
CONF
su postgres -c "'$prefix/bin/pg_ctl' -D '$data/db' -l '$data/log' -w start" >/dev/null
set +e
make -s PG_CONFIG="$pgc" installcheck PGHOST=127.0.0.1 PGPORT="$port" PGUSER=postgres
rc=$?
set -e
grep -E "TRAP|server process .* was terminated" "$data/log" || true
exit $rc

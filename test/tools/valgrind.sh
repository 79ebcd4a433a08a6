#!/usr/bin/env bash
# test/tools/valgrind.sh [TEST...]: run pg_regress suites (default: lifecycle
# lifecycle_fuzz) against a postmaster running under valgrind memcheck, and
# report the memcheck errors seen in any backend.  Not part of the suite
# (slow); a check for memory errors in the C code.
#
# Uses the build in tmp/destdir (make install DESTDIR=$PWD/tmp/destdir).  The
# throw-away cluster is made and run by the postgres user (never root), on a
# Unix socket in its own directory only, with the worker off so that only the
# tested backends run code of ours.  Exits non-zero when a suite fails or
# memcheck reports an error with a frame in evmgmt.so.
#
# Note: Debian's server is not built with USE_VALGRIND, so memcheck sees
# memory freed with free() but not chunks returned to a memory context that
# keeps its block; pfree'd-but-kept memory is caught only by a server built
# with --enable-cassert (CLOBBER_FREED_MEMORY).
set -euo pipefail
cd "$(dirname "$0")/../.."

tests=${*:-lifecycle lifecycle_fuzz}
destdir="$PWD/tmp/destdir"
libdir="$(pg_config --pkglibdir)"
bindir="$(pg_config --bindir)"
[ -f "$destdir$libdir/evmgmt.so" ] || { echo "valgrind.sh: no build in $destdir" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind.sh: apt-get install valgrind" >&2; exit 1; }

work=$(mktemp -d /tmp/evmgmt-valgrind.XXXXXX)
chmod 755 "$work"
as_postgres() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$work"

# Known false positives of an uninstrumented server: padding bytes written
# to files and sockets.
cat >"$work/postgres.supp" <<'EOF'
{
	padding_write
	Memcheck:Param
	write(buf)
	obj:*
	...
}
{
	padding_pwrite
	Memcheck:Param
	pwrite64(buf)
	obj:*
	...
}
{
	padding_send
	Memcheck:Param
	sendto(msg)
	obj:*
	...
}
{
	padding_writev
	Memcheck:Param
	writev(vector[...])
	obj:*
	...
}
EOF

port=$((40000 + RANDOM % 20000))
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		as_postgres "$bindir/pg_ctl" -D "$work/data" stop -m immediate >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

as_postgres "$bindir/initdb" -D "$work/data" -A trust -U postgres >"$work/initdb.log" 2>&1
as_postgres valgrind --quiet --trace-children=yes --leak-check=no --track-origins=no \
	--suppressions="$work/postgres.supp" --log-file="$work/vg.%p.log" \
	"$bindir/postgres" -D "$work/data" -p "$port" -k "$work" -c listen_addresses= \
	-c shared_preload_libraries=evmgmt -c extension_destdir="$destdir" \
	-c dynamic_library_path="$destdir$libdir:$libdir" -c evmgmt.worker_enabled=off \
	-c max_worker_processes=32 >"$work/server.log" 2>&1 &
pid=$!

for _ in $(seq 1 600); do
	"$bindir/pg_isready" -q -h "$work" -p "$port" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 1
done
"$bindir/pg_isready" -q -h "$work" -p "$port" || { echo "valgrind.sh: server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

set +e
PGHOST="$work" PGPORT="$port" PGUSER=postgres make -s installcheck REGRESS="$tests"
rc=$?
set -e
as_postgres "$bindir/pg_ctl" -D "$work/data" stop -m fast >/dev/null
wait "$pid" 2>/dev/null || true
pid=""

# Every memcheck error, and those with a frame in evmgmt.so (ours); the
# uninstrumented server also reports its own known false positives (padding
# in shared invalidation messages and the like), which are counted apart.
awk '
	/^==[0-9]+== (Invalid|Conditional|Use of|Syscall param|Source and destination|Mismatched)/ { inblk = 1; blk = $0 "\n"; ours = 0; total++; next }
	inblk && /^==[0-9]+== *$/ { if (ours) { nours++; printf "%s\n", blk > "/dev/stderr" } inblk = 0; next }
	inblk { blk = blk $0 "\n"; if ($0 ~ /evmgmt\.so|evmgmt_/) ours = 1 }
	END { printf "%d %d\n", total, nours }
' "$work"/vg.*.log >"$work/counts" 2>"$work/ours.txt"
read -r errors ours <"$work/counts"
echo "valgrind.sh: $(ls "$work"/vg.*.log | wc -l) processes traced, $errors memcheck errors, $ours of them with a frame in evmgmt.so (logs in $work)"
if [ "$ours" -gt 0 ]; then
	head -n 120 "$work/ours.txt"
	exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# test/run.sh: the whole evmgmt test suite, from a fresh Debian 12 machine.
#
# Installs the Debian packages it needs, builds and installs the extension,
# starts a throw-away PostgreSQL 15 cluster with shared_preload_libraries =
# 'evmgmt' (pg_virtualenv) and runs, in order:
#   1. pg_regress suites      test/sql/NAME.sql    -> expected/NAME.out
#   2. pgTAP suites           test/pgtap/*.sql     (pg_prove)
#   3. integration scripts    test/integration/*.sh (TAP, run with prove)
# Exits non-zero on any failure; the last line it prints reads "N passed, N failed"
# where N counts test files (regression tests, pgTAP files, integration
# scripts).
#
# Built to hold on a busy machine (test/tools/stress.sh runs it under
# stress-ng):
#   - the regression phase runs with evmgmt.worker_enabled = off, so that no
#     worker cycle races a test's own run_due_work() or outbox queries;
#   - after every integration script the server must still answer, and
#     postgresql.auto.conf and the list of databases must be as before: a
#     script that leaves the server down, a setting or a database (with its
#     worker) behind fails, and the runner repairs all three, so one failure
#     never cascades into the scripts after it;
#   - each integration script's full TAP output and stderr go to
#     tmp/it/NAME.out, printed here when the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${EVMGMT_IN_CLUSTER:-}" ]; then
	bash test/tools/deps.sh
	make -s clean >/dev/null
	make -s >/dev/null
	# Install into a private tree, not the system directories, so that runs from
	# several checkouts never see each other's build.
	destdir="$PWD/tmp/destdir"
	rm -rf "$destdir"
	make -s install DESTDIR="$destdir" >/dev/null
	# pg_virtualenv talks while it drops the cluster; the summary is printed
	# after it so that the closing line is the count.
	rm -f tmp/summary
	set +e
	bash test/tools/cluster.sh env EVMGMT_IN_CLUSTER=1 bash test/run.sh "$@"
	rc=$?
	set -e
	if [ -s tmp/summary ]; then
		cat tmp/summary
	else
		echo "0 passed, 1 failed"
		rc=1
	fi
	exit $rc
fi

passed=0
failed=0
failed_names=()

note_result() {
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failed_names+=("$1")
	fi
}

# set_worker on|off: evmgmt.worker_enabled for the whole cluster, waiting
# until new sessions see it (the postmaster has then signalled the workers)
set_worker() {
	if [ "$1" = on ]; then
		psql -XqAt -d postgres -c "ALTER SYSTEM RESET evmgmt.worker_enabled" >/dev/null
	else
		psql -XqAt -d postgres -c "ALTER SYSTEM SET evmgmt.worker_enabled = $1" >/dev/null
	fi
	psql -XqAt -d postgres -c "SELECT pg_reload_conf()" >/dev/null
	local i
	for i in $(seq 1 100); do
		[ "$(psql -XqAt -d postgres -c "SHOW evmgmt.worker_enabled")" = "$1" ] && return 0
		sleep 0.1
	done
	echo "evmgmt.worker_enabled did not become $1" >&2
	return 1
}

echo "== pg_regress suites (evmgmt.worker_enabled = off)"
set_worker off
set +e
mkdir -p tmp
make -s installcheck 2>&1 | tee tmp/regress.out
set -e
set_worker on
while read -r name status; do
	note_result "regress/$name" "$status"
done < <(sed -nE 's/^(ok|not ok) +[0-9]+ +[-+]? *([a-z0-9_]+) .*/\2 \1/p;s/^test +([a-z0-9_]+) +\.\.\. (ok|FAILED).*/\1 \2/p' tmp/regress.out |
	awk '{print $1, ($2 == "ok") ? 0 : 1}')
if [ -f regression.diffs ]; then
	echo "---- regression.diffs"
	cat regression.diffs
fi

echo "== pgTAP suites"
createdb evmgmt_tap
psql -q -d evmgmt_tap -c 'CREATE EXTENSION pgtap' -c 'CREATE EXTENSION evmgmt'
for f in test/pgtap/*.sql; do
	[ -e "$f" ] || continue
	set +e
	pg_prove -q -d evmgmt_tap "$f"
	rc=$?
	set -e
	note_result "pgtap/$(basename "$f" .sql)" "$rc"
done
dropdb evmgmt_tap

server_up() { psql -XqAt -d postgres -c "SELECT 1" >/dev/null 2>&1; }
# the settings in postgresql.auto.conf (what ALTER SYSTEM changed)
auto_settings() {
	psql -XqAt -d postgres -c "SELECT name || ' = ' || setting FROM pg_file_settings
		WHERE sourcefile LIKE '%/postgresql.auto.conf' ORDER BY name"
}
# repair_server: start the server again if a script left it down
repair_server() {
	local i
	pg_ctlcluster 15 regress stop -m immediate >/dev/null 2>&1
	pg_ctlcluster 15 regress start >/dev/null 2>&1
	for i in $(seq 1 600); do
		server_up && return 0
		sleep 0.1
	done
	return 1
}

# the databases of the cluster
databases() { psql -XqAt -d postgres -c "SELECT datname FROM pg_database ORDER BY datname"; }

echo "== integration scripts"
mkdir -p tmp/it
settings_before=$(auto_settings)
databases_before=$(databases)
for f in test/integration/*.sh; do
	[ -e "$f" ] || continue
	name=$(basename "$f" .sh)
	out="tmp/it/$name.out"
	start=$SECONDS
	set +e
	prove -v -e bash "$f" >"$out" 2>&1
	rc=$?
	set -e
	why=""
	if ! server_up; then
		why="$why; left the server down (restarted)"
		rc=1
		repair_server || { echo "the server does not start again: stopping"; cat "$out"; exit 1; }
	fi
	settings_now=$(auto_settings)
	if [ "$settings_now" != "$settings_before" ]; then
		why="$why; left settings behind: $(comm -13 <(echo "$settings_before") <(echo "$settings_now") | tr '\n' ' ')(reset)"
		rc=1
		comm -13 <(echo "$settings_before" | sed 's/ = .*//') <(echo "$settings_now" | sed 's/ = .*//') |
			while read -r s; do psql -XqAt -d postgres -c "ALTER SYSTEM RESET $s" >/dev/null; done
		psql -XqAt -d postgres -c "SELECT pg_reload_conf()" >/dev/null
	fi
	left=$(comm -13 <(echo "$databases_before") <(databases))
	if [ -n "$left" ]; then
		# a database left behind keeps a worker running into the next scripts
		why="$why; left databases behind: $(echo "$left" | tr '\n' ' ')(dropped)"
		rc=1
		echo "$left" | while read -r d; do dropdb --if-exists --force "$d" >/dev/null 2>&1; done
	fi
	if [ "$rc" -eq 0 ]; then
		echo "$f .. ok ($((SECONDS - start)) s)"
	else
		echo "$f .. FAILED ($((SECONDS - start)) s)${why}"
		sed 's/^/    /' "$out"
	fi
	note_result "integration/$name" "$rc"
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed" > tmp/summary
[ "$failed" -eq 0 ]

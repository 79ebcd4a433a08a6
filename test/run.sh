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

echo "== pg_regress suites"
set +e
make -s installcheck 2>&1 | tee /tmp/evmgmt-regress.out
set -e
while read -r name status; do
	note_result "regress/$name" "$status"
done < <(sed -nE 's/^(ok|not ok) +[0-9]+ +[-+]? *([a-z0-9_]+) .*/\2 \1/p;s/^test +([a-z0-9_]+) +\.\.\. (ok|FAILED).*/\1 \2/p' /tmp/evmgmt-regress.out |
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

echo "== integration scripts"
for f in test/integration/*.sh; do
	[ -e "$f" ] || continue
	set +e
	prove -e bash "$f"
	rc=$?
	set -e
	note_result "integration/$(basename "$f" .sh)" "$rc"
done

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$passed passed, $failed failed" > tmp/summary
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# test/demo.sh: the evmgmt demo, from a fresh Debian 12 machine.
#
# Installs what it needs, builds, starts a throw-away PostgreSQL 15 cluster
# with evmgmt preloaded, loads a small realistic sample (test/data/sample.sql)
# and shows the schema at work: the calibrated severity matrix, a day of
# interval data with its afternoon collapse, an event that hit two pools at
# different severities with its timeline and analysis, the people and
# escalation plan behind it, and the quarantine path of the ingest; then a
# second event walked through the lifecycle, and a live escalation that the
# background worker delivers to local sinks until someone acknowledges; last,
# the complete day of test/demo/40_complete.sh (detection, prediction, a
# response rule, paging, an SMS-reply acknowledgment through the listener,
# resolution, analysis and the post-event report as HTML).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${EVMGMT_IN_CLUSTER:-}" ]; then
	bash test/tools/deps.sh
	make -s >/dev/null
	destdir="$PWD/tmp/destdir"
	rm -rf "$destdir"
	make -s install DESTDIR="$destdir" >/dev/null
	# (the cluster's own start-up and shutdown chatter is filtered out)
	set +e
	bash test/tools/cluster.sh env EVMGMT_IN_CLUSTER=1 bash test/demo.sh "$@" 2>&1 |
		grep -v -E '^(Creating new PostgreSQL cluster|Dropping cluster|[0-9]{4}-[0-9]{2}-[0-9]{2} |\*\*\* .*log \(last)'
	exit "${PIPESTATUS[0]}"
fi

createdb evmgmt_demo
psql() { command psql -X -q -d evmgmt_demo -P pager=off "$@"; }
psql -c 'CREATE EXTENSION evmgmt'
psql -f test/data/sample.sql >/dev/null

for part in test/demo/*; do
	case "$part" in
		*.sql) psql -f "$part" ;;
		*.sh) bash "$part" ;;
	esac
done

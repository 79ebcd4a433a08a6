#!/usr/bin/env bash
# Regenerates docs/schema.md from the catalog (run inside test/tools/cluster.sh).
# With --check, only compares and exits non-zero when docs/schema.md is stale.
set -euo pipefail
cd "$(dirname "$0")/../.."
db=evmgmt_schema_doc
dropdb --if-exists "$db" 2>/dev/null
createdb "$db"
trap 'dropdb --if-exists "$db"' EXIT
psql -X -q -d "$db" -c 'CREATE EXTENSION evmgmt'
out=$(mktemp)
psql -X -q -d "$db" -f test/tools/schema_doc.sql > "$out"
if [ "${1:-}" = "--check" ]; then
	diff -u docs/schema.md "$out" > "$out.diff" && status=0 || status=1
	[ $status -eq 0 ] || head -n 40 "$out.diff"
	rm -f "$out" "$out.diff"
	exit $status
fi
mv "$out" docs/schema.md
echo "docs/schema.md regenerated"

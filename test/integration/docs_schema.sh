#!/usr/bin/env bash
# docs/schema.md is generated from the catalog; it must describe the schema as
# it is now (regenerate with: bash test/tools/cluster.sh bash test/tools/schema_doc.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
echo "1..2"
if out=$(bash test/tools/schema_doc.sh --check 2>&1); then
	echo "ok 1 - docs/schema.md matches the installed schema"
else
	echo "not ok 1 - docs/schema.md matches the installed schema"
	echo "$out" | sed 's/^/# /'
fi

# docs/architecture.md: its concerns tables name every file of sql/install/ and src/, and no other
missing=""
for f in sql/install/*.sql src/*.c src/*.h; do
	grep -qF "\`$(basename "$f")\`" docs/architecture.md || missing="$missing $(basename "$f")"
done
stale=""
for f in $(grep -oE '^\| `[0-9a-z_]+\.(sql|c|h)`(, `[0-9a-z_]+\.(c|h)`)?' docs/architecture.md | grep -oE '[0-9a-z_]+\.(sql|c|h)'); do
	[ -f "sql/install/$f" ] || [ -f "src/$f" ] || stale="$stale $f"
done
if [ -z "$missing$stale" ]; then
	echo "ok 2 - docs/architecture.md lists every file of sql/install/ and src/, and only those"
else
	echo "not ok 2 - docs/architecture.md lists every file of sql/install/ and src/, and only those"
	[ -z "$missing" ] || echo "# not listed:$missing"
	[ -z "$stale" ] || echo "# listed but absent:$stale"
fi

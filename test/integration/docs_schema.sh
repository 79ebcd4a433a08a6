#!/usr/bin/env bash
# docs/schema.md is generated from the catalog; it must describe the schema as
# it is now (regenerate with: bash test/tools/cluster.sh bash test/tools/schema_doc.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
echo "1..1"
if out=$(bash test/tools/schema_doc.sh --check 2>&1); then
	echo "ok 1 - docs/schema.md matches the installed schema"
else
	echo "not ok 1 - docs/schema.md matches the installed schema"
	echo "$out" | sed 's/^/# /'
fi

#!/usr/bin/env bash
# test/integration/symbols.sh: the installed evmgmt.so exports nothing but
# what PostgreSQL looks up (Pg_magic_func, pg_finfo_*, _PG_init) and names
# that carry the project's prefix (Evmgmt*, evmgmt_*), so that it cannot
# clash with the server or with another extension's library (TAP).
# Needs no database.
set -uo pipefail
cd "$(dirname "$0")/../.."

echo "1..2"
so="${EVMGMT_DESTDIR:-}$(pg_config --pkglibdir)/evmgmt.so"
if [ -f "$so" ] && nm -D --defined-only "$so" >/dev/null 2>&1; then
	echo "ok 1 - $so has a dynamic symbol table"
else
	echo "not ok 1 - $so has a dynamic symbol table"
	exit 1
fi
# text and data symbols the library defines (T, D, B, R), whatever the linker adds aside
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' |
	grep -v -E '^(Evmgmt|evmgmt_|pg_finfo_|Pg_magic_func$|_PG_init$|_init$|_fini$|_edata$|_end$|__bss_start$)' || true)
if [ -z "$bad" ]; then
	echo "ok 2 - every exported symbol is prefixed Evmgmt or evmgmt_ (or is one PostgreSQL looks up)"
else
	echo "not ok 2 - every exported symbol is prefixed Evmgmt or evmgmt_ (or is one PostgreSQL looks up)"
	echo "$bad" | sed 's/^/#   unprefixed: /'
fi
[ -z "$bad" ]

#!/usr/bin/env bash
# pg_dump of a database with the sample data, restored into new databases,
# keeps every row of every evmgmt table: identical row counts and identical
# contents.  Restored with the documented procedure (evmgmt.restoring = on) the
# audit trail is identical too; restored plainly, everything still loads and
# only the audit trail gains the restore's own rows.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d)
cleanup() {
	for db in evm_dump_src evm_dump_dst evm_dump_plain; do dropdb --if-exists "$db" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "1..7"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   got:  $2"; echo "#   want: $3"; fi; }

# one line per user table: name, row count, md5 of its rows in a stable order
# (a partitioned table as a whole: which partition holds a row is the
# worker's partition upkeep's business)
fingerprint() {
	psql -X -At -d "$1" <<'SQL'
SELECT format('SELECT %L || '' '' || count(*) || '' '' || coalesce(md5(string_agg(t::text, ''|'' ORDER BY t::text)), ''-'') FROM evmgmt.%I t', c.relname, c.relname)
FROM pg_class c WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
-- the installation identity is not dumped and the copy's own origin of sending
-- comes beside the restored one: that is how a copy knows it is one (restored_copy.sh)
  AND c.relname NOT IN ('installation', 'sending_origin')
ORDER BY c.relname
\gexec
SQL
}

createdb evm_dump_src
psql -X -q -d evm_dump_src -c 'CREATE EXTENSION evmgmt'
psql -X -q -d evm_dump_src -f test/data/sample.sql >/dev/null
# a raw-line load (0.2.0; the sample also loads into 0.1.0): one good line, one malformed
psql -X -q -d evm_dump_src -c "INSERT INTO evmgmt.interval_inbox_raw (line) VALUES
	('MNL1,billing,spec,2026-03-03 00:15+08,15,40,35,0,30,20,300,15,15,40,300'), ('MNL1,billing,spec,2026-03-03 00:30+08')" >/dev/null
fingerprint evm_dump_src > "$work/src.txt"
empty=$(awk '$2 == 0 && $1 != "interval_inbox" && $1 != "interval_inbox_raw" && $1 != "forecast_inbox" {print $1}' "$work/src.txt" | grep -v -x -f <(psql -X -At -d evm_dump_src -c "SELECT unnest(ARRAY['pool_info','severity_policy_default','notification_footprint_default','audience'])") || true)
check "the sample fills every user table" "$empty" ""

# (pg_dump warns that event.recurrence_of refers to its own table: that key is
# deferred, so a full restore loads the rows in any order.)
pg_dump -Fc -d evm_dump_src -f "$work/dump.pgc" 2> "$work/dump.err"
createdb evm_dump_dst
if PGOPTIONS='-c evmgmt.restoring=on' pg_restore --exit-on-error -d evm_dump_dst "$work/dump.pgc" 2> "$work/restore.err"; then
	ok "pg_restore with evmgmt.restoring = on succeeds"
else
	not_ok "pg_restore with evmgmt.restoring = on succeeds"; sed 's/^/#   /' "$work/restore.err"
fi
fingerprint evm_dump_dst > "$work/dst.txt"
check "every table has identical row counts after restore" \
	"$(awk '{print $1, $2}' "$work/dst.txt")" "$(awk '{print $1, $2}' "$work/src.txt")"
check "every table has identical contents after restore" "$(cat "$work/dst.txt")" "$(cat "$work/src.txt")"

# sequences came along: new rows do not collide with restored ones
seqs() { psql -X -At -d "$1" -c "SELECT string_agg(sequencename || '=' || coalesce(last_value::text, '-'), ' ' ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'evmgmt'"; }
want=$(seqs evm_dump_src)
case "$want" in *event_event_id_seq=[0-9]*) ;; *) want="the source's sequences, event_event_id_seq among them (got: $want)" ;; esac
check "identity sequences are restored to where they were" "$(seqs evm_dump_dst)" "$want"

# a plain restore (procedure forgotten) still loads everything
createdb evm_dump_plain
if pg_restore --exit-on-error -d evm_dump_plain "$work/dump.pgc" 2> "$work/restore-plain.err"; then
	fingerprint evm_dump_plain > "$work/plain.txt"
	# (its forecast load also marks the restored series for prediction, as
	# any load does: forecast_series.changed_at)
	check "a plain pg_restore keeps every row outside the audit trail" \
		"$(grep -v -E '^(audit_log|forecast_series) ' "$work/plain.txt")" "$(grep -v -E '^(audit_log|forecast_series) ' "$work/src.txt")"
else
	not_ok "a plain pg_restore keeps every row outside the audit trail"; sed 's/^/#   /' "$work/restore-plain.err"
fi
# every audit row of the source is there, unchanged; the restore only added rows of its own
audit_rows() { psql -X -At -d "$1" -c "SELECT a::text FROM evmgmt.audit_log a ORDER BY 1"; }
audit_rows evm_dump_src >"$work/audit.src"
audit_rows evm_dump_plain >"$work/audit.plain"
check "a plain restore only adds to the audit trail" \
	"$(comm -23 "$work/audit.src" "$work/audit.plain" | wc -l) $([ "$(wc -l <"$work/audit.plain")" -ge "$(wc -l <"$work/audit.src")" ] && echo kept)" "0 kept"

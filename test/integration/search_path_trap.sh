#!/usr/bin/env bash
# Issue 14's privilege-escalation attacks, end to end.  A database owner who is
# not a superuser lays traps and a superuser (and the real worker) then uses
# evmgmt there; the owner must not become superuser.
#   1. The owner pre-creates schema evmgmt holding evmgmt.%(integer, smallint)
#      (it outranks pg_catalog's integer % integer in the interval alignment
#      check): CREATE EXTENSION is refused (42501) and the trap never runs.
#      A schema the extension created but which later got a foreign object
#      stops ALTER EXTENSION UPDATE from 0.1.0 the same way.
#   2. The owner creates traps in public for %, *, =, <, || over the common
#      operand types (every pair pg_catalog has no exact operator for, the
#      dispatcher's *(integer, interval) among them) and sets the database's
#      search_path to public, evmgmt.  Each trap records that it ran and runs
#      ALTER ROLE <owner> SUPERUSER when its caller is a superuser.  Then a
#      superuser ingests intervals (good and bad rows), runs an event through
#      its whole lifecycle with escalations, and the real worker fires the
#      steps and delivers them to a local HTTP sink.  No trap ran, the owner
#      is no superuser.
# Prints TAP; bounded waits; everything cleaned up.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 14
OWNER=evmgmt_it_trap_owner
DB=evmgmt_it_trap
IT_DBS+=("$DB" "${DB}_old")
IT_CLEANUP+=("dropdb --if-exists $DB" "dropdb --if-exists ${DB}_old" "psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS $OWNER'")
dropdb --if-exists "$DB" >/dev/null 2>&1
dropdb --if-exists "${DB}_old" >/dev/null 2>&1
q postgres "DROP ROLE IF EXISTS $OWNER" >/dev/null
q postgres "CREATE ROLE $OWNER LOGIN PASSWORD '${PGPASSWORD:-x}'" >/dev/null
createdb -O "$OWNER" "$DB"
createdb -O "$OWNER" "${DB}_old"

# as_owner DB SQL, as_super DB SQL: psql as the owner / as the superuser
as_owner() { PGUSER=$OWNER psql -XqAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
# the superuser's own checking queries run with a safe search_path
check() { PGOPTIONS="-c search_path=pg_catalog" psql -XqAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
owner_is_super() { check postgres "SELECT rolsuper FROM pg_roles WHERE rolname = '$OWNER'"; }

# the trap body: record the call, and escalate when the caller is a superuser
trap_body="BEGIN
	INSERT INTO public.trap_hit (op, caller) VALUES (TG_ARGV_OP, current_user);
	IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
		EXECUTE 'ALTER ROLE $OWNER SUPERUSER';
	END IF;
	RETURN NULL;
END"
trap_table="CREATE TABLE public.trap_hit (op text, caller name, at timestamptz DEFAULT pg_catalog.now());
GRANT INSERT, SELECT ON public.trap_hit TO PUBLIC;"

# --- 1. a pre-created schema -------------------------------------------------
mod_name="'%(integer, smallint)'"
as_owner "$DB" "$trap_table" >/dev/null
as_owner "$DB" "CREATE SCHEMA evmgmt;
CREATE FUNCTION evmgmt.trap_mod(integer, smallint) RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog
AS \$\$${trap_body//TG_ARGV_OP/$mod_name}\$\$;
CREATE OPERATOR evmgmt.% (function = evmgmt.trap_mod, leftarg = integer, rightarg = smallint);" >/dev/null
out=$(psql -XqAt -d "$DB" -v VERBOSITY=verbose -c "CREATE EXTENSION evmgmt" 2>&1)
echo "$out" | grep -q 'ERROR:  42501: schema "evmgmt" is owned by role "'$OWNER'", which is not a superuser'
ok $? "CREATE EXTENSION refuses the schema the database owner pre-created (42501)"
[ -n "$out" ] && diag "$(echo "$out" | head -n 1)"
is "$(check "$DB" "SELECT count(*) FROM pg_extension WHERE extname = 'evmgmt'")" 0 "nothing was installed"
# the owner hands the schema to a superuser, keeping the trap in it: still refused
q postgres "SELECT 1" >/dev/null
psql -XqAt -d "$DB" -c "ALTER SCHEMA evmgmt OWNER TO CURRENT_USER" >/dev/null
out=$(psql -XqAt -d "$DB" -c "CREATE EXTENSION evmgmt" 2>&1)
echo "$out" | grep -q 'schema "evmgmt" holds objects that are not part of the extension'
ok $? "a superuser-owned schema holding the trap is refused too ($(echo "$out" | sed -n 's/^DETAIL: *//p'))"
is "$(check "$DB" "SELECT count(*) FROM public.trap_hit")/$(owner_is_super)" "0/f" "the trap never ran; the owner is no superuser"

# an installation of 0.1.0 whose schema got a foreign object: the update is refused
psql -XqAt -d "${DB}_old" -c "CREATE EXTENSION evmgmt VERSION '0.1.0'" -c "GRANT CREATE ON SCHEMA evmgmt TO $OWNER" >/dev/null
as_owner "${DB}_old" "CREATE FUNCTION evmgmt.trap_mod(integer, smallint) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE OPERATOR evmgmt.% (function = evmgmt.trap_mod, leftarg = integer, rightarg = smallint);" >/dev/null
out=$(psql -XqAt -d "${DB}_old" -c "ALTER EXTENSION evmgmt UPDATE" 2>&1)
echo "$out" | grep -q 'roles other than superusers may create objects in schema "evmgmt"'
ok $? "ALTER EXTENSION UPDATE refuses a schema others may create in"
psql -XqAt -d "${DB}_old" -c "REVOKE CREATE ON SCHEMA evmgmt FROM $OWNER" >/dev/null
out=$(psql -XqAt -d "${DB}_old" -c "ALTER EXTENSION evmgmt UPDATE" 2>&1)
echo "$out" | grep -q 'DETAIL:  Foreign objects: function trap_mod(integer,smallint), operator %(integer,smallint).'
ok $? "ALTER EXTENSION UPDATE refuses a schema holding the owner's operator and names it"
is "$(check "${DB}_old" "SELECT extversion FROM pg_extension WHERE extname = 'evmgmt'")" 0.1.0 "the installation stays at 0.1.0"

# --- 2. traps in public, a hostile database search_path ------------------------
psql -XqAt -d "$DB" -c "DROP SCHEMA evmgmt CASCADE" >/dev/null 2>&1
psql -XqAt -d "$DB" -c "CREATE EXTENSION evmgmt" >/dev/null
ok $? "CREATE EXTENSION creates its own schema once the trap is gone"
# for each operator and ordered pair of types without an exact pg_catalog
# operator, a trap in public returning the type the built-in would
as_owner "$DB" "DO \$gen\$
DECLARE
	types text[] := ARRAY['smallint', 'integer', 'bigint', 'numeric', 'double precision', 'real', 'text', 'interval',
		'timestamptz', 'jsonb', 'boolean', 'evmgmt.severity', 'evmgmt.pool', 'evmgmt.channel', 'evmgmt.event_state'];
	ops text[] := ARRAY['%', '*', '=', '<', '||'];
	rank text[] := ARRAY['interval', 'double precision', 'real', 'numeric', 'bigint', 'integer', 'smallint'];
	a text; b text; op text; ret text; n int := 0;
BEGIN
	FOREACH op IN ARRAY ops LOOP
		FOREACH a IN ARRAY types LOOP
			FOREACH b IN ARRAY types LOOP
				CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_operator o
					WHERE o.oprname OPERATOR(pg_catalog.=) op AND o.oprleft OPERATOR(pg_catalog.=) a::regtype
					  AND o.oprright OPERATOR(pg_catalog.=) b::regtype AND o.oprnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::regnamespace);
				ret := CASE
					WHEN op IN ('=', '<') THEN 'boolean'
					WHEN op = '||' AND 'jsonb' IN (a, b) THEN 'jsonb'
					WHEN op = '||' THEN 'text'
					ELSE COALESCE((SELECT r FROM pg_catalog.unnest(rank) WITH ORDINALITY AS x(r, i) WHERE r IN (a, b) ORDER BY i LIMIT 1), 'text')
				END;
				n := n + 1;
				EXECUTE pg_catalog.format('CREATE FUNCTION public.trap_%s(%s, %s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog AS %L',
					n, a, b, ret, pg_catalog.replace(\$t\$${trap_body}\$t\$, 'TG_ARGV_OP', pg_catalog.quote_literal(op || '(' || a || ', ' || b || ')')));
				EXECUTE pg_catalog.format('CREATE OPERATOR public.%s (function = public.trap_%s, leftarg = %s, rightarg = %s)', op, n, a, b);
			END LOOP;
		END LOOP;
	END LOOP;
	RAISE NOTICE 'traps: %', n;
END
\$gen\$;
ALTER DATABASE $DB SET search_path = public, evmgmt;" >/dev/null 2>"$IT_DIR/gen.err"
traps=$(check "$DB" "SELECT count(*) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace")
is "$(check "$DB" "SELECT count(*) > 300 AND bool_or(oprname = '*' AND oprleft = 'integer'::regtype AND oprright = 'interval'::regtype) FROM pg_operator WHERE oprnamespace = 'public'::regnamespace")" t \
	"the owner laid $traps traps in public, *(integer, interval) among them"
diag "$(cat "$IT_DIR/gen.err")"

# the worker reconnects with the database's new search_path
start_http_sink api
API=$SINK_PORT
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }
set_guc evmgmt.recipient_burst_window 0
old_worker=$(worker_pid $DB)
[ -n "$old_worker" ] && q postgres "SELECT pg_terminate_backend($old_worker)" >/dev/null
wait_for 60 bash -c "p=\$(psql -XqAt -d postgres -c \"SELECT pid FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$DB'\"); [ -n \"\$p\" ] && [ \"\$p\" != \"$old_worker\" ]"
ok $? "a new worker runs in the database"

# the superuser's session has the hostile search_path; the fixture uses no
# operator of its own, only the extension's tables and functions
hostile() { psql -XqAt -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
{
hostile "SHOW search_path"
hostile "
INSERT INTO evmgmt.operation VALUES ('op', 'Trap');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'op', 'Billing');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address) VALUES
 ('sms', 'sms', 'twilio', 'http://127.0.0.1:$API/ok', 'AC1', '+15550100'),
 ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$API/ok/hook', NULL, NULL);
INSERT INTO evmgmt.provider_secret VALUES ('sms', 't'), ('hook', 'whsec_c2VjcmV0');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Ana', 'ana');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES (1, 'sms', '+15550111');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('spec-plan', 'Spec', '{spec}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, provider_id) VALUES
 ('spec-plan', 1, '0', 'webhook', 'endpoint', NULL, 'hook'),
 ('spec-plan', 2, '1 s', 'sms', 'contact', 1, NULL);"
# ingest: direct rows and the forgiving inbox, one bad row among them
hostile "INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
	abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled)
	SELECT 'BER', 'billing', 'spec', t, 15, 100, 90, 10, 20, 20, 300, 20, 25
	FROM pg_catalog.generate_series('2026-03-02 07:00Z'::timestamptz, '2026-03-02 08:45Z', '15 min') AS t"
hostile "INSERT INTO evmgmt.interval_inbox VALUES
	('BER', 'billing', 'collab', '2026-03-02 09:00Z', '15', '50', '45', '5', '40', '20', '240', '12', '12', NULL, NULL),
	('BER', 'billing', 'collab', '2026-03-02 09:07Z', '15', '50', '45', '5', '40', '20', '240', '12', '12', NULL, NULL)"
hostile "SELECT pg_catalog.count(*) FROM evmgmt.classify_series('2026-03-02 10:00Z')"
} >"$IT_DIR/fixture.out" 2>&1
EV=$(hostile "SELECT evmgmt.open_event('system', 'BER', '{spec}', 'roc_analyst', 'Router down', pg_catalog.now(), NULL, 'router_failure')")
hostile "SELECT evmgmt.classify_pool($EV, 'spec', 'sev1')" >>"$IT_DIR/fixture.out" 2>&1
ESC=$(check "$DB" "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV")
sent_both() { sql_true $DB "SELECT count(*) = 2 FROM evmgmt.notification WHERE escalation_id = $ESC AND state = 'sent'"; }
wait_for 30 sent_both
ok $? "the real worker fired both steps and delivered them to the sink"
{
hostile "SELECT evmgmt.acknowledge($ESC, 1, 'on it')"
hostile "SELECT evmgmt.diagnose_pool($EV, 'spec', 'technology', 'it_escalation', 'router firmware')"
hostile "SELECT evmgmt.log_response($EV, 'spec', 'it_escalation', 'paged the network team')"
hostile "SELECT evmgmt.resolve_event($EV, 'router replaced')"
hostile "SELECT evmgmt.record_analysis($EV, 'router firmware', 'staged rollout', ARRAY['no canary'], NULL)"
hostile "SELECT evmgmt.add_action_item($EV, 'canary for router firmware', 'network', '2026-04-01')"
for o in service_level cost customer_experience agent_experience business_value; do
	hostile "SELECT evmgmt.record_objective_impact($EV, '$o', 'degraded')"
done
hostile "SELECT evmgmt.close_event($EV)"
hostile "SELECT * FROM evmgmt.escalation_history" >/dev/null
hostile "SELECT * FROM evmgmt.event_rollup" >/dev/null
hostile "SELECT evmgmt.run_due_work()"
} >>"$IT_DIR/fixture.out" 2>&1
is "$(check "$DB" "SELECT state FROM evmgmt.event_rollup WHERE event_id = $EV")" closed "the event went through its whole lifecycle to closed"
diag "event $EV: $(check "$DB" "SELECT string_agg(pool || ':' || state, ' ') FROM evmgmt.pool_condition WHERE event_id = $EV"); interval rows $(check "$DB" "SELECT count(*) FROM evmgmt.interval_stat"), quarantined $(check "$DB" "SELECT count(*) FROM evmgmt.interval_quarantine")"
is "$(check "$DB" "SELECT count(*) FROM public.trap_hit")" 0 "no trap ran ($(check "$DB" "SELECT coalesce(string_agg(DISTINCT op || ' by ' || caller, '; '), 'none') FROM public.trap_hit"))"
is "$(owner_is_super)" f "the database owner is no superuser afterwards"
[ "$IT_FAILED" -eq 0 ] || sed 's/^/# /' "$IT_DIR/fixture.out"
it_done

#!/usr/bin/env bash
# The worker runs with least privilege (issue 14): a database owner who is
# not a superuser lays the traps of the issue (public.*(integer, interval),
# operators shadowing = <= || and ALTER DATABASE ... SET search_path =
# public, pg_catalog), a notification and an escalation step are dispatched
# through them, and afterwards the owner is still no superuser and no trap
# ever ran; the worker's backend runs as evmgmt_worker, which can read no
# contact data; the purge works through its SECURITY DEFINER entry point; a
# database that evmgmt_worker may not connect to is skipped with one log
# line instead of a worker failing every second.  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 12
DB=evmgmt_it_priv
NOCONN=evmgmt_it_noconn
IT_DBS+=("$DB" "$NOCONN")
IT_CLEANUP+=("dropdb --if-exists $DB; psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS evmgmt_it_evil'")
# the test's own sessions must not walk into the traps either
export PGOPTIONS='-c search_path=pg_catalog,pg_temp'

q postgres "DROP ROLE IF EXISTS evmgmt_it_evil; CREATE ROLE evmgmt_it_evil LOGIN PASSWORD 'evil'" >/dev/null
dropdb --if-exists $DB >/dev/null 2>&1
createdb -O evmgmt_it_evil $DB
q $DB "CREATE EXTENSION evmgmt" >/dev/null
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

# The owner's traps: each records who ran it and tries to make the owner a superuser.
PGUSER=evmgmt_it_evil PGPASSWORD=evil psql -XqAt -v ON_ERROR_STOP=1 -d $DB >/dev/null <<'SQL'
CREATE TABLE public.trap_hits (who text, what text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT ON public.trap_hits TO PUBLIC;
CREATE FUNCTION public.trap_hit(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.trap_hits (who, what) VALUES (current_user, what);
	BEGIN
		ALTER ROLE evmgmt_it_evil SUPERUSER;
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
END $$;
CREATE FUNCTION public.trap_mul(integer, interval) RETURNS interval LANGUAGE plpgsql AS $$
BEGIN PERFORM public.trap_hit('*(integer, interval)'); RETURN $2 OPERATOR(pg_catalog.*) $1::float8; END $$;
CREATE OPERATOR public.* (LEFTARG = integer, RIGHTARG = interval, FUNCTION = public.trap_mul);
CREATE FUNCTION public.trap_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.trap_hit('=(text, text)'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap_eq);
CREATE FUNCTION public.trap_le(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.trap_hit('<=(timestamptz, timestamptz)'); RETURN $1 OPERATOR(pg_catalog.<=) $2; END $$;
CREATE OPERATOR public.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.trap_le);
CREATE FUNCTION public.trap_cat(text, text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.trap_hit('||(text, text)'); RETURN $1 OPERATOR(pg_catalog.||) $2; END $$;
CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = public.trap_cat);
ALTER DATABASE evmgmt_it_priv SET search_path = public, pg_catalog;
SQL
ok $? "the database owner lays the traps"
# a new worker session picks up the database's settings: restart it
OLD=$(worker_pid $DB)
q postgres "SELECT pg_terminate_backend($OLD)" >/dev/null
wait_for 20 eval '[ -n "$(worker_pid $DB)" ] && [ "$(worker_pid $DB)" != "$OLD" ]' || { echo "Bail out! no new worker"; exit 1; }

is "$(q postgres "SELECT usename FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$DB'")" \
	evmgmt_worker "the worker's backend runs as evmgmt_worker"

start_http_sink api
API=$SINK_PORT
# both steps page the same endpoint: no burst merging
set_guc evmgmt.recipient_burst_window 0
q $DB "
INSERT INTO evmgmt.operation VALUES ('op', 'Priv');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$API/ok/hook');
INSERT INTO evmgmt.provider_secret VALUES ('hook', 'whsec_c2VjcmV0');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('spec-plan', 'Spec', '{spec}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, provider_id) VALUES
 ('spec-plan', 1, '0', 'webhook', 'endpoint', 'hook'), ('spec-plan', 2, '2 s', 'webhook', 'endpoint', 'hook');
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, subject, body, payload)
VALUES ('test', 'webhook', 'hook', 'ops', 'direct', 'a notification through the traps', '{}');" >/dev/null
EV=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{spec}', 'rule', 'Router down')")
q $DB "SELECT evmgmt.classify_pool($EV, 'spec', 'sev1')" >/dev/null
ESC=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV")

wait_for 60 sql_true $DB "SELECT count(*) = 2 FROM evmgmt.escalation_step_run WHERE escalation_id = $ESC"
R=$?
ok $R "the worker fires both steps of the escalation (run_due_work)"
[ $R -eq 0 ] || diag "$(q $DB "SELECT string_agg(concat_ws(' ', step_no, outcome, detail), '; ') FROM evmgmt.escalation_step_run WHERE escalation_id = $ESC") /
	$(q $DB "SELECT concat_ws(' ', state, next_step_no, next_due_at, end_reason, now()) FROM evmgmt.escalation WHERE escalation_id = $ESC") /
	$(q $DB "SELECT string_agg(concat_ws(' ', item, sqlstate, error), '; ') FROM evmgmt.work_failure")"
wait_for 30 sql_true $DB "SELECT count(*) = 0 FROM evmgmt.notification WHERE state <> 'sent'"
ok $? "and dispatches every notification (claim and settle)"
is "$(log_lines api)" 3 "the sink received the direct notification and both steps"
is "$(q $DB "SELECT count(*) FROM public.trap_hits")" 0 "no trap ever ran"
is "$(q postgres "SELECT rolsuper FROM pg_roles WHERE rolname = 'evmgmt_it_evil'")" f "the database owner is not a superuser"
is "$(q $DB "SELECT has_table_privilege('evmgmt_worker', 'evmgmt.contact_channel', 'SELECT') OR has_table_privilege('evmgmt_worker', 'evmgmt.event', 'UPDATE')
	OR has_table_privilege('evmgmt_worker', 'evmgmt.notification', 'DELETE')")" f "evmgmt_worker reads no contact data and changes no event"

# The purge, through its SECURITY DEFINER entry point: history older than the retention goes.
q $DB "
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body, payload, state, created_at, sent_at)
VALUES ('test', 'webhook', 'hook', 'ops', 'old history', '{}', 'sent', now() - interval '3 days', now() - interval '3 days');
INSERT INTO evmgmt.delivery_attempt (notification_id, attempt_no, started_at, finished_at, outcome)
SELECT notification_id, 1, now() - interval '3 days', now() - interval '3 days', 'sent' FROM evmgmt.notification WHERE body = 'old history';" >/dev/null
set_guc evmgmt.delivery_retention 1d
wait_for 30 sql_true $DB "SELECT NOT EXISTS (SELECT FROM evmgmt.notification WHERE body = 'old history')"
ok $? "the worker purges old delivery history (evmgmt.purge_delivery_history)"

# A database evmgmt_worker may not connect to: skipped, logged once, no worker failing in a loop.
dropdb --if-exists $NOCONN >/dev/null 2>&1
createdb $NOCONN
q postgres "REVOKE CONNECT ON DATABASE $NOCONN FROM PUBLIC" >/dev/null
LOG_FROM=$(wc -l <"$EVMGMT_CLUSTER_LOG")
# CREATE EXTENSION anywhere asks the launcher to probe again
q $DB "DROP EXTENSION evmgmt CASCADE; CREATE EXTENSION evmgmt" >/dev/null
wait_for 20 eval "tail -n +$LOG_FROM \"$EVMGMT_CLUSTER_LOG\" | grep -q 'evmgmt does not run in database \"$NOCONN\": role evmgmt_worker has no CONNECT privilege there'"
ok $? "the launcher says why it skips a database evmgmt_worker may not connect to"
sleep 3
is "$(tail -n +$LOG_FROM "$EVMGMT_CLUSTER_LOG" | grep -c "permission denied for database \"$NOCONN\"")" 0 \
	"and starts no worker there to fail"
q $NOCONN "CREATE EXTENSION evmgmt" >/dev/null
wait_for 20 has_worker $NOCONN
ok $? "CREATE EXTENSION there grants CONNECT, and the database gets its worker"

it_done

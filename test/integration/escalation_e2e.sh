#!/usr/bin/env bash
# End to end with the real worker and a local HTTP sink: an event hits two
# pools; the spec plan pages Ana by push at once, sms after 3 s and voice
# after 6 s; the collab plan calls a webhook at once and texts Ben after 9 s.
# Ana acknowledges after the sms: her voice call never comes, while the
# collab plan runs on independently.  Cancelling the event tells everyone
# who was paged.  Offsets are measured from each escalation's start to the
# sink's receive time.  Prints TAP; bounded waits; everything cleaned up.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 9
DB=evmgmt_it_escalation
new_db $DB
start_http_sink api
API=$SINK_PORT
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }
set_guc evmgmt.recipient_burst_window 0

q $DB "
INSERT INTO evmgmt.operation VALUES ('op', 'E2E');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address) VALUES
 ('sms', 'sms', 'twilio', 'http://127.0.0.1:$API/ok', 'AC1', '+15550100'),
 ('voice', 'voice', 'twilio', 'http://127.0.0.1:$API/ok', 'AC1', '+15550100'),
 ('push', 'push', 'ntfy', 'http://127.0.0.1:$API/ok', NULL, NULL),
 ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$API/ok/hook', NULL, NULL);
INSERT INTO evmgmt.provider_secret VALUES ('sms', 't'), ('voice', 't'), ('hook', 'whsec_c2VjcmV0');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Ana', 'ana'), (2, 'Ben', 'ben');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES
 (1, 'push', 'ana'), (1, 'sms', '+15550111'), (1, 'voice', '+15550111'), (2, 'sms', '+15550122');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('spec-plan', 'Spec', '{spec}'), ('collab-plan', 'Collab', '{collab}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, provider_id) VALUES
 ('spec-plan', 1, '0', 'push', 'contact', 1, NULL),
 ('spec-plan', 2, '3 s', 'sms', 'contact', 1, NULL),
 ('spec-plan', 3, '3 s', 'voice', 'contact', 1, NULL),
 ('collab-plan', 1, '0', 'webhook', 'endpoint', NULL, 'hook'),
 ('collab-plan', 2, '9 s', 'sms', 'contact', 2, NULL);" >/dev/null

EV=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{spec,collab}', 'rule', 'Router down', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV, 'spec', 'sev1'), evmgmt.classify_pool($EV, 'collab', 'sev2')" >/dev/null
SPEC=$(q $DB "SELECT escalation_id || ' ' || extract(epoch FROM started_at) FROM evmgmt.escalation WHERE event_id = $EV AND pool = 'spec'")
COLLAB=$(q $DB "SELECT escalation_id || ' ' || extract(epoch FROM started_at) FROM evmgmt.escalation WHERE event_id = $EV AND pool = 'collab'")
read -r SPEC_ID SPEC_T0 <<<"$SPEC"
read -r COLLAB_ID COLLAB_T0 <<<"$COLLAB"

# offset PATH_REGEX BODY_REGEX T0: seconds from T0 to the first matching request (empty if none)
offset() {
	python3 - "$IT_DIR/api.log" "$1" "$2" "$3" <<'PY'
import json, re, sys
log, path_re, body_re, t0 = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
for line in open(log):
    r = json.loads(line)
    if re.search(path_re, r["path"]) and re.search(body_re, r["body"]):
        print("%.2f" % (r["received"] - t0))
        break
PY
}
has() { [ -n "$(offset "$1" "$2" 0)" ]; }
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x <= hi) }'; }

wait_for 10 has '/ok/ana$' '.'
o=$(offset '/ok/ana$' '.' "$SPEC_T0"); within "$o" 0 2; ok $? "spec step 1: push to Ana at once (${o} s)"
wait_for 10 has 'Messages.json' 'To=%2B15550111'
o=$(offset 'Messages.json' 'To=%2B15550111' "$SPEC_T0"); within "$o" 3 5; ok $? "spec step 2: sms to Ana after 3 s (${o} s)"
is "$(q $DB "SELECT evmgmt.acknowledge($SPEC_ID, 1, 'on it')")" acknowledged "Ana acknowledges before the voice step"

o=$(offset '/ok/hook$' '.' "$COLLAB_T0"); within "$o" 0 2; ok $? "collab step 1: webhook at once, independently (${o} s)"
wait_for 15 has 'Messages.json' 'To=%2B15550122'
o=$(offset 'Messages.json' 'To=%2B15550122' "$COLLAB_T0"); within "$o" 9 11; ok $? "collab step 2: sms to Ben after 9 s although spec was acknowledged (${o} s)"
# Ben's sms came after the moment Ana's voice step was due (6 s): none came
is "$(offset 'Calls.json' '.' 0)" "" "no voice call after the acknowledgment"

is "$(q $DB "SELECT string_agg(step_no || ':' || channel || ':' || outcome || ':' || delivery_state, ' ' ORDER BY run_id)
             FROM evmgmt.escalation_history WHERE escalation_id = $SPEC_ID")" "1:push:queued:sent 2:sms:queued:sent" \
	"the history of the spec escalation: two steps, both delivered"

# cancelling the event tells everyone who was paged (Ana, Ben, the webhook)
q $DB "SELECT evmgmt.cancel_event($EV, 'false alarm')" >/dev/null
wait_for 15 sql_true $DB "SELECT count(*) = 3 FROM evmgmt.notification WHERE event_id = $EV AND kind = 'resolved' AND state = 'sent'"
ok $? "the cancel notices to Ana, Ben and the webhook are delivered"
is "$(q $DB "SELECT string_agg(pool || ':' || state, ' ' ORDER BY pool) FROM evmgmt.escalation WHERE event_id = $EV")" \
	"collab:exhausted spec:acknowledged" "no escalation is left running"
it_done

#!/usr/bin/env bash
# End to end with the real worker and a local HTTP sink: an event hits two
# pools; the spec plan pages Ana by push at once, sms after 3 s and voice
# 7 s later (+10 s); the collab plan calls a webhook at once and texts Ben
# after 12 s.  Ana acknowledges after the sms: her voice call never comes,
# while the collab plan runs on independently.  Cancelling the event tells
# everyone who was paged.  Schedule and order come from the escalation
# history (scheduled, due and fired times recorded by the worker), not from
# the sink's receive times, which a busy machine delays; the sink shows what
# arrived.  Prints TAP; bounded waits (failure bounds, not speed targets);
# everything cleaned up.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 12
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
 ('spec-plan', 3, '7 s', 'voice', 'contact', 1, NULL),
 ('collab-plan', 1, '0', 'webhook', 'endpoint', NULL, 'hook'),
 ('collab-plan', 2, '12 s', 'sms', 'contact', 2, NULL);" >/dev/null

EV=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{spec,collab}', 'rule', 'Router down', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV, 'spec', 'sev1'), evmgmt.classify_pool($EV, 'collab', 'sev2')" >/dev/null
SPEC_ID=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV AND pool = 'spec'")
COLLAB_ID=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV AND pool = 'collab'")

# fired ESC STEP: the worker has fired step STEP of escalation ESC
fired() { sql_true $DB "SELECT EXISTS (SELECT FROM evmgmt.escalation_step_run WHERE escalation_id = $1 AND step_no = $2)"; }
# history ESC: step:channel:offset of its schedule from the start:outcome:delivery state, in step order
history() {
	q $DB "SELECT string_agg(h.step_no || ':' || h.channel || ':+' || (h.scheduled_at - e.started_at) || ':' || h.outcome || ':' || h.delivery_state,
	                         ' ' ORDER BY h.step_no)
	       FROM evmgmt.escalation_history h JOIN evmgmt.escalation e USING (escalation_id) WHERE h.escalation_id = $1"
}
# in_order ESC: every step was due on its schedule, fired at or after it, and the steps fired in plan order
in_order() {
	q $DB "SELECT bool_and(due_at = scheduled_at AND fired_at >= due_at)
	              AND array_agg(step_no ORDER BY fired_at, run_id) = array_agg(step_no ORDER BY step_no)
	       FROM evmgmt.escalation_step_run WHERE escalation_id = $1"
}
# sent ESC N: the first N step notifications of ESC are sent
sent() { sql_true $DB "SELECT count(*) FILTER (WHERE delivery_state = 'sent') = $2 FROM evmgmt.escalation_history WHERE escalation_id = $1"; }
# sink_count PATH_REGEX BODY_REGEX: requests the sink logged that match
sink_count() {
	python3 - "$IT_DIR/api.log" "$1" "$2" <<'PY'
import json, re, sys
print(sum(1 for line in open(sys.argv[1])
          if re.search(sys.argv[2], json.loads(line)["path"]) and re.search(sys.argv[3], json.loads(line)["body"])))
PY
}

wait_for 60 fired "$SPEC_ID" 2
ok $? "the worker fires spec steps 1 (push) and 2 (sms)"
is "$(q $DB "SELECT evmgmt.acknowledge($SPEC_ID, 1, 'on it')")" acknowledged "Ana acknowledges before the voice step"
is "$(q $DB "SELECT acknowledged_at < started_at + interval '10 s' FROM evmgmt.escalation WHERE escalation_id = $SPEC_ID")" t \
	"the acknowledgment committed before the voice step was due (+$(q $DB "SELECT round(extract(epoch FROM acknowledged_at - started_at), 2) FROM evmgmt.escalation WHERE escalation_id = $SPEC_ID") s; due at +10 s)"

wait_for 60 fired "$COLLAB_ID" 2
ok $? "collab step 2 fires although spec was acknowledged"
wait_for 60 sent "$SPEC_ID" 2 && wait_for 60 sent "$COLLAB_ID" 2
is "$(history "$SPEC_ID")" "1:push:+00:00:00:queued:sent 2:sms:+00:00:03:queued:sent" \
	"the spec history: push at once, sms at +3 s, both delivered, no voice step"
is "$(in_order "$SPEC_ID")" t "spec steps were due on schedule, fired no earlier, in order"
is "$(history "$COLLAB_ID")" "1:webhook:+00:00:00:queued:sent 2:sms:+00:00:12:queued:sent" \
	"the collab history: webhook at once, sms to Ben at +12 s, both delivered"
is "$(in_order "$COLLAB_ID")" t "collab steps were due on schedule, fired no earlier, in order"
# Ben's sms fired after Ana's voice step was due: had the acknowledgment not stopped it, it would have fired first
is "$(q $DB "SELECT r.fired_at > s.started_at + interval '10 s' FROM evmgmt.escalation_step_run r, evmgmt.escalation s
             WHERE r.escalation_id = $COLLAB_ID AND r.step_no = 2 AND s.escalation_id = $SPEC_ID")" t \
	"Ben's sms fired after Ana's voice step was due (+10 s)"
is "$(sink_count '/ok/ana$' '.') $(sink_count 'Messages.json' 'To=%2B15550111') $(sink_count '/ok/hook$' '.') $(sink_count 'Messages.json' 'To=%2B15550122') $(sink_count 'Calls.json' '.')" \
	"1 1 1 1 0" "the sink received Ana's push and sms, the webhook and Ben's sms once each, and no voice call"

# cancelling the event tells everyone who was paged (Ana, Ben, the webhook)
q $DB "SELECT evmgmt.cancel_event($EV, 'false alarm')" >/dev/null
wait_for 60 sql_true $DB "SELECT count(*) = 3 FROM evmgmt.notification WHERE event_id = $EV AND kind = 'resolved' AND state = 'sent'"
ok $? "the cancel notices to Ana, Ben and the webhook are delivered"
is "$(q $DB "SELECT string_agg(pool || ':' || state, ' ' ORDER BY pool) FROM evmgmt.escalation WHERE event_id = $EV")" \
	"collab:exhausted spec:acknowledged" "no escalation is left running"
it_done

#!/usr/bin/env bash
# Escalation plans delivered end to end by the worker: a plan of push -> sms
# -> voice (scaled-down delays: steps due at +0, +2 and +10 s) reaches the
# ntfy and Twilio sinks and stops once acknowledged; a second plan for the
# same event on another pool (due at +0, +3 and +12 s) runs on
# independently.
#
# Schedule and order are checked from the escalation history the worker
# records (scheduled, due and fired time of every step), not from when the
# sink happened to see a request: on a busy machine a request can reach the
# sink late although the step fired on time.  The waits are failure bounds;
# the acknowledgment only has to come before +10 s (step 3 of the first
# plan), which leaves 8 s after step 2 for it.  The sink shows what arrived.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 12
DB=evmgmt_it_escalation
new_db $DB
set_guc evmgmt.recipient_burst_window 0
start_http_sink api
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

q $DB "
INSERT INTO evmgmt.operation VALUES ('op1', 'Delivery');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op1', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Ana', 'ana'), (2, 'Bo', 'bo');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES
 (1, 'push', 'ana-topic'), (1, 'sms', '+4915100000001'), (1, 'voice', '+4915100000001'),
 (2, 'push', 'bo-topic'), (2, 'sms', '+4915100000002');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address) VALUES
 ('ntfy', 'push', 'ntfy', 'http://127.0.0.1:$SINK_PORT/ok/ntfy', NULL, NULL),
 ('sms', 'sms', 'twilio', 'http://127.0.0.1:$SINK_PORT/ok', 'AC1', '+15550000000'),
 ('voice', 'voice', 'twilio', 'http://127.0.0.1:$SINK_PORT/ok', 'AC1', '+15550000000');
INSERT INTO evmgmt.provider_secret VALUES ('sms', 'tok'), ('voice', 'tok');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('spec-plan', 'Specialists', '{spec}'), ('collab-plan', 'Collaborative', '{collab}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
 ('spec-plan', 1, '0', 'push', 'contact', 1), ('spec-plan', 2, '2 s', 'sms', 'contact', 1), ('spec-plan', 3, '8 s', 'voice', 'contact', 1),
 ('collab-plan', 1, '0', 'push', 'contact', 2), ('collab-plan', 2, '3 s', 'sms', 'contact', 2), ('collab-plan', 3, '9 s', 'push', 'contact', 2);
INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at)
VALUES (1, 'op1', 'BER', 'system', 'roc_analyst', 'Telephony down', now());
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at)
VALUES (1, 'spec', 'sev1', 'classified', now()), (1, 'collab', 'sev1', 'classified', now());" >/dev/null

# Both escalations start in one committed transaction; the commit wakes the worker.
read -r SPEC COLLAB <<<"$(q $DB "SELECT evmgmt.escalation_start(1, 'spec', 'manual'), evmgmt.escalation_start(1, 'collab', 'manual')" | tr '|' ' ')"
diag "escalations $SPEC (spec) and $COLLAB (collab) started"

# fired ESC STEP: the worker has fired step STEP of escalation ESC
fired() { sql_true $DB "SELECT EXISTS (SELECT FROM evmgmt.escalation_step_run WHERE escalation_id = $1 AND step_no = $2)"; }
# schedule ESC: each fired step as step:channel:offset of its schedule from the start:outcome
schedule() {
	q $DB "SELECT string_agg(r.step_no || ':' || r.channel || ':+' || (r.scheduled_at - e.started_at) || ':' || r.outcome, ' ' ORDER BY r.step_no)
	       FROM evmgmt.escalation_step_run r JOIN evmgmt.escalation e USING (escalation_id) WHERE r.escalation_id = $1"
}
# in_order ESC: every step was due on its schedule, fired at or after it, and the steps fired in plan order
in_order() {
	q $DB "SELECT bool_and(due_at = scheduled_at AND fired_at >= due_at)
	              AND array_agg(step_no ORDER BY fired_at, run_id) = array_agg(step_no ORDER BY step_no)
	       FROM evmgmt.escalation_step_run WHERE escalation_id = $1"
}

wait_for 60 fired "$SPEC" 2
ok $? "the worker fires the specialist plan's steps 1 and 2"
# Ana acknowledges once step 2 (the sms) has fired, before the voice call of step 3.
is "$(q $DB "SELECT evmgmt.acknowledge($SPEC, 1, 'on it')")" acknowledged "Ana acknowledges the specialist escalation"
is "$(q $DB "SELECT acknowledged_at < started_at + interval '10 s' FROM evmgmt.escalation WHERE escalation_id = $SPEC")" t \
	"the acknowledgment committed before step 3 was due (+$(q $DB "SELECT round(extract(epoch FROM acknowledged_at - started_at), 2) FROM evmgmt.escalation WHERE escalation_id = $SPEC") s; due at +10 s)"

# The collaborative plan goes on; its step 3 (+12 s) is due after Ana's voice call would have been (+10 s).
wait_for 60 fired "$COLLAB" 3
ok $? "the other pool's plan runs on to its step 3"
is "$(schedule "$SPEC")" "1:push:+00:00:00:queued 2:sms:+00:00:02:queued" \
	"the specialist history: push at +0 s, sms at +2 s, and no step 3 after the acknowledgment"
is "$(in_order "$SPEC")" t "its steps were due on schedule, fired no earlier, in order"
is "$(schedule "$COLLAB")" "1:push:+00:00:00:queued 2:sms:+00:00:03:queued 3:push:+00:00:12:queued" \
	"the collaborative history: push at +0 s, sms at +3 s, push at +12 s"
is "$(in_order "$COLLAB")" t "its steps were due on schedule, fired no earlier, in order"
is "$(q $DB "SELECT bool_and(r.fired_at > s.started_at + interval '10 s') FROM evmgmt.escalation_step_run r, evmgmt.escalation s
             WHERE r.escalation_id = $COLLAB AND r.step_no = 3 AND s.escalation_id = $SPEC")" t \
	"the collaborative step 3 fired after the specialist step 3 was due: that one would have fired by then"
# A failure bound, far wider than anything measured (typically a few ms); it catches a missed wake-up.
LATE=$(q $DB "SELECT round(extract(epoch FROM max(fired_at - due_at)), 3) FROM evmgmt.escalation_step_run WHERE escalation_id IN ($SPEC, $COLLAB)")
ok $(awk -v l="$LATE" 'BEGIN { exit !(l != "" && l < 10) }'; echo $?) "no step fired more than 10 s after it was due (latest: $LATE s)"

wait_for 60 sql_true $DB "SELECT count(*) FILTER (WHERE n.state = 'sent') = 5 FROM evmgmt.notification n WHERE escalation_id IN ($SPEC, $COLLAB) AND kind = 'escalation_step'"
is "$(q $DB "SELECT count(*) FILTER (WHERE n.state = 'sent') || '/' || count(*) FROM evmgmt.notification n WHERE escalation_id IN ($SPEC, $COLLAB) AND kind = 'escalation_step'")" \
	"5/5" "every step notification of both plans was sent"
# what reached the sink: per recipient, once each; no voice call
python3 - "$IT_DIR/api.log" <<'PY' >"$IT_DIR/seen"
import json, sys, urllib.parse
seen = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    p = r["path"]
    if p.endswith("Calls.json"):
        seen.append("voice:" + urllib.parse.parse_qs(r["body"])["To"][0])
    elif p.endswith("Messages.json"):
        seen.append("sms:" + urllib.parse.parse_qs(r["body"])["To"][0])
    else:
        seen.append("push:" + p.rsplit("/", 1)[1])
print(" ".join(sorted(seen)))
PY
is "$(cat "$IT_DIR/seen")" "push:ana-topic push:bo-topic push:bo-topic sms:+4915100000001 sms:+4915100000002" \
	"the sinks received each page once, and no voice call for Ana"

it_done

#!/usr/bin/env bash
# Escalation plans delivered end to end by the worker: a plan of push -> sms
# -> voice (scaled-down delays of 2 and 4 s) reaches the ntfy and Twilio sinks at
# the right offsets from the escalation's start, and stops once
# acknowledged; a second plan for the same event on another pool runs on
# independently.  The sink's log gives the receive times.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 8
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
 ('spec-plan', 1, '0', 'push', 'contact', 1), ('spec-plan', 2, '2 s', 'sms', 'contact', 1), ('spec-plan', 3, '4 s', 'voice', 'contact', 1),
 ('collab-plan', 1, '0', 'push', 'contact', 2), ('collab-plan', 2, '3 s', 'sms', 'contact', 2), ('collab-plan', 3, '5 s', 'push', 'contact', 2);
INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at)
VALUES (1, 'op1', 'BER', 'system', 'roc_analyst', 'Telephony down', now());
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at)
VALUES (1, 'spec', 'sev1', 'classified', now()), (1, 'collab', 'sev1', 'classified', now());" >/dev/null

# Both escalations start in one committed transaction; the commit wakes the worker.
read -r SPEC COLLAB T0 <<<"$(q $DB "SELECT evmgmt.escalation_start(1, 'spec', 'manual'), evmgmt.escalation_start(1, 'collab', 'manual'),
	extract(epoch FROM clock_timestamp())" | tr '|' ' ')"
diag "escalations $SPEC (spec) and $COLLAB (collab) started at $T0"

# offsets PATTERN: receive times (s after T0) of the sink requests whose path and body match
offsets() {
	python3 - "$IT_DIR/api.log" "$T0" "$1" <<'PY'
import json, re, sys
out = []
for l in open(sys.argv[1]):
    r = json.loads(l)
    if re.search(sys.argv[3], r["path"] + " " + r["body"]):
        out.append("%.1f" % (r["received"] - float(sys.argv[2])))
print(" ".join(out))
PY
}
near() { python3 -c "import sys; sys.exit(0 if all(abs(float(x) - float(sys.argv[2])) <= 1.0 for x in sys.argv[1].split()) and sys.argv[1] else 1)" "$1" "$2"; }

wait_for 10 sink_has api 3
PUSH=$(offsets 'ntfy/ana-topic')
near "$PUSH" 0; ok $? "step 1: push to Ana at +0 s (got +$PUSH s)"
wait_for 10 eval '[ -n "$(offsets "Messages.json .*4915100000001")" ]'
SMS=$(offsets 'Messages.json .*4915100000001')
near "$SMS" 2; ok $? "step 2: sms to Ana at +2 s (got +$SMS s)"

# Ana acknowledges before the voice call of step 3 (due at +6 s).
is "$(q $DB "SELECT evmgmt.acknowledge($SPEC, 1, 'on it')")" acknowledged "Ana acknowledges the specialist escalation"
ACKED=$(python3 -c "import time; print('%.1f' % (time.time() - $T0))")

# The collaborative plan goes on: sms at +3 s, push at +8 s (after Ana's voice call would have come).
wait_for 15 eval '[ -n "$(offsets "ntfy/bo-topic")" ] && [ "$(offsets "ntfy/bo-topic" | wc -w)" -ge 2 ]'
BO_PUSH=$(offsets 'ntfy/bo-topic')
BO_SMS=$(offsets 'Messages.json .*4915100000002')
near "$BO_SMS" 3; ok $? "the other pool's plan runs on independently: sms to Bo at +3 s (got +$BO_SMS s)"
near "$(echo "$BO_PUSH" | awk '{print $2}')" 8; ok $? "and its step 3 push at +8 s (got +$BO_PUSH s)"
is "$(offsets 'Calls.json')" "" "no voice call for Ana after her acknowledgment at +$ACKED s (step 3 was due at +6 s)"
is "$(q $DB "SELECT string_agg(step_no || ':' || outcome, ',' ORDER BY step_no) FROM evmgmt.escalation_step_run WHERE escalation_id = $SPEC")" \
	"1:queued,2:queued" "the specialist escalation's history shows steps 1 and 2 only"
is "$(q $DB "SELECT count(*) FILTER (WHERE n.state = 'sent') || '/' || count(*) FROM evmgmt.notification n WHERE escalation_id IN ($SPEC, $COLLAB) AND kind = 'escalation_step'")" \
	"5/5" "every step notification of both plans was sent"

it_done

#!/usr/bin/env bash
# Finality of an acknowledgment (issue 13): nothing of an acknowledged
# escalation is claimed after acknowledge() ran, whatever the interleaving.
#
# Each round starts an escalation whose first page (push) goes to an
# endpoint that answers 503 after 1 s, so the page is in flight when the
# acknowledgment comes.  acknowledge() runs in a transaction that stays open
# (idle) for 0 to 4 s, entered at different moments of the attempt: while
# it is open the failed attempt is settled and its retry comes due; after it
# committed the retry is due too.  Evidence: no delivery attempt of the page
# starts, and the sink receives no request for it, after the moment
# acknowledge() returned inside the transaction, and the page ends
# cancelled.  The retry backoff (300 ms) is much shorter than the longest
# hold, so a retry that was not held back would be seen.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

ROUNDS=8
plan $((ROUNDS * 3 + 1))
DB=evmgmt_it_ackfinal
new_db $DB
set_guc evmgmt.recipient_burst_window 0
set_guc evmgmt.backoff_base 300ms
set_guc evmgmt.max_attempts 20
start_http_sink api --slow 1
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

q $DB "
INSERT INTO evmgmt.operation VALUES ('op1', 'Delivery');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op1', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Ana', 'ana');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES (1, 'push', 'ana-topic');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES
 ('ntfy', 'push', 'ntfy', 'http://127.0.0.1:$SINK_PORT/slow503/ntfy');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('spec-plan', 'Specialists', '{spec}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
 ('spec-plan', 1, '0', 'push', 'contact', 1), ('spec-plan', 2, '10 min', 'push', 'contact', 1);" >/dev/null
ok $? "set-up: a plan paging Ana by push, to an endpoint answering 503 after 1 s"

# hold (s) the acknowledgment's transaction stays open; lead (s) after the request reached the sink
HOLDS=(0 0.5 1 2 3 4 1.5 2.5)
LEADS=(0 0.2 0.5 0.9 1.2 0 0.7 1.5)
for r in $(seq 1 $ROUNDS); do
	hold=${HOLDS[$((r - 1))]}
	lead=${LEADS[$((r - 1))]}
	before=$(log_lines api)
	ESC=$(q $DB "
	  INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at)
	  VALUES ($r, 'op1', 'BER', 'system', 'roc_analyst', 'Round $r', now());
	  INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at) VALUES ($r, 'spec', 'sev1', 'classified', now());
	  SELECT evmgmt.escalation_start($r, 'spec', 'manual');")
	wait_for 20 sink_has api $((before + 1))
	NID=$(q $DB "SELECT notification_id FROM evmgmt.notification WHERE escalation_id = $ESC AND kind = 'escalation_step'")
	sleep "$lead"
	# the acknowledgment, its transaction left open (idle) for $hold s
	T_ACK=$(psql -XqAt -v ON_ERROR_STOP=1 -d $DB <<SQL | tail -1
BEGIN;
SELECT evmgmt.acknowledge($ESC, 1, 'round $r') \g /dev/null
\! sleep $hold
SELECT extract(epoch FROM clock_timestamp());
COMMIT;
SQL
)
	T_IN=$(q $DB "SELECT extract(epoch FROM acknowledged_at) FROM evmgmt.escalation WHERE escalation_id = $ESC")
	# time for a retry that was not held back: several backoffs
	sleep 3
	wait_for 10 sql_true $DB "SELECT state IN ('cancelled', 'dead', 'sent') FROM evmgmt.notification WHERE notification_id = $NID"
	is "$(q $DB "SELECT state FROM evmgmt.notification WHERE notification_id = $NID")" cancelled \
		"round $r (hold ${hold} s, lead ${lead} s): the page ends cancelled"
	is "$(q $DB "SELECT count(*) FROM evmgmt.delivery_attempt WHERE notification_id = $NID AND started_at > to_timestamp($T_IN)")" 0 \
		"round $r: no attempt of the page started after acknowledge() ran (attempts: $(q $DB "SELECT count(*) FROM evmgmt.delivery_attempt WHERE notification_id = $NID"))"
	is "$(python3 - "$IT_DIR/api.log" "$T_IN" "$NID" <<'PY'
import json, sys
t = float(sys.argv[2])
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["received"] > t + 0.05 and r["headers"].get("x-evmgmt-notification", "") in ("", sys.argv[3]):
        n += 1
print(n)
PY
)" 0 "round $r: the sink received nothing after the acknowledgment (committed $(python3 -c "print(round($T_ACK - $T_IN, 2))") s after it ran)"
done

it_done

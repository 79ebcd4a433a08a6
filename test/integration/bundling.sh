#!/usr/bin/env bash
# What people receive (issue 13), with the real worker and a real sink, the
# default 60 s burst window:
#  - a sev1 page right after a sev3 page to the same person is not bundled:
#    it is its own message and goes out at once;
#  - a sev3 after that one is bundled, and a sev2 coming while it waits goes
#    out at once and takes the waiting digest with it;
#  - an event with three pools, each paging the same person, sends that
#    person one resolve notice when its pools resolve one after the other;
#  - a page queued before the transaction classified another pool says what
#    is true at commit (the event's tier then);
#  - a digest in flight when one of its items' escalation is acknowledged,
#    and that then fails, is retried without that item; once every item's
#    escalation ended, it is cancelled (acknowledgment finality).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 13
DB=evmgmt_it_bundling
new_db $DB
start_http_sink api
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

q $DB "
INSERT INTO evmgmt.operation VALUES ('op1', 'Delivery');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op1', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Ana', 'ana');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES (1, 'push', 'ana-topic');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('ntfy', 'push', 'ntfy', 'http://127.0.0.1:$SINK_PORT/ok/ntfy');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('all', 'All pools', '{aa,collab,spec}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES
 ('all', 1, '0', 'push', 'contact', 1), ('all', 2, '1 hour', 'push', 'contact', 1);" >/dev/null

# event N SEVERITY POOL...: an event whose pools are classified, escalations started
event() {
	local n=$1 sev=$2 p
	shift 2
	q $DB "INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at)
	       VALUES ($n, 'op1', 'BER', 'system', 'roc_analyst', 'Event $n', now())" >/dev/null
	for p in "$@"; do
		q $DB "INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at) VALUES ($n, '$p', '$sev', 'classified', now());
		       SELECT evmgmt.escalation_start($n, '$p', 'manual')" >/dev/null
	done
}
outcome() { q $DB "SELECT string_agg(r.outcome, ',' ORDER BY r.run_id) FROM evmgmt.escalation_step_run r JOIN evmgmt.escalation e USING (escalation_id) WHERE e.event_id = $1"; }

event 1 sev3 spec
wait_for 20 sql_true $DB "SELECT count(*) = 1 FROM evmgmt.notification WHERE event_id = 1 AND state = 'sent'"
ok $? "a sev3 page goes out"
event 2 sev1 spec
is "$(outcome 2)" queued "a sev1 page right after it is not bundled (step outcome queued)"
wait_for 10 sql_true $DB "SELECT count(*) = 1 FROM evmgmt.notification WHERE event_id = 2 AND kind = 'escalation_step' AND state = 'sent'"
ok $? "and it is sent at once, as its own message"
event 3 sev3 spec
is "$(outcome 3)" bundled "a sev3 within the window is bundled into a digest"
event 4 sev2 spec
is "$(outcome 4)" queued "a sev2 while that digest waits is not bundled"
wait_for 10 sql_true $DB "SELECT count(*) = 2 FROM evmgmt.notification WHERE (event_id = 4 AND kind = 'escalation_step' OR kind = 'digest') AND state = 'sent'"
ok $? "it goes out at once and takes the waiting digest with it"

# three pools, one person: resolved one pool after the other
event 5 sev3 aa collab spec
for p in aa collab spec; do q $DB "SELECT evmgmt.escalation_stop(5, '$p', 'resolved')" >/dev/null; done
resolved_for_ana() {
	q $DB "SELECT count(*) FILTER (WHERE kind = 'resolved' AND event_id = 5)
	            + coalesce(sum((SELECT count(*) FROM jsonb_array_elements(payload -> 'items') i
	                            WHERE i ->> 'kind' = 'resolved' AND (i ->> 'event_id')::bigint = 5)) FILTER (WHERE kind = 'digest'), 0)
	       FROM evmgmt.notification WHERE contact_id = 1 AND state <> 'cancelled'"
}
is "$(resolved_for_ana)" 1 "a three-pool event sends its person one resolve notice (alone or in a digest)"
is "$(q $DB "SELECT count(*) FROM evmgmt.escalation WHERE event_id = 5 AND resolve_notified_at IS NOT NULL")" 3 "all three escalations count as notified"

# rendered at commit: the page was queued while the event was sev3, then the
# same transaction classified another pool sev1 (no bundling here)
set_guc evmgmt.recipient_burst_window 0
q $DB "BEGIN;
       INSERT INTO evmgmt.event (event_id, operation_id, site_id, event_type, detection_source, title, detected_at)
       VALUES (6, 'op1', 'BER', 'system', 'roc_analyst', 'Event 6', now());
       INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at) VALUES (6, 'spec', 'sev3', 'classified', now());
       SELECT evmgmt.escalation_start(6, 'spec', 'manual');
       INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, classified_at) VALUES (6, 'aa', 'sev1', 'classified', now());
       COMMIT;" >/dev/null
wait_for 10 sql_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE event_id = 6 AND kind = 'escalation_step'"
is "$(q $DB "SELECT split_part(body, ' ', 1) || ' ' || (payload ->> 'pools') FROM evmgmt.notification WHERE event_id = 6 AND kind = 'escalation_step'")" \
	"sev1 aa sev1, spec sev3" "a page says what is true at commit: tier sev1, both pools classified"


# a digest in flight (slow 503) when the escalation of one of its items is
# acknowledged: the retry does not carry the acknowledged item
event 7 sev3 spec
event 8 sev3 spec
wait_for 10 sql_true $DB "SELECT count(*) = 2 FROM evmgmt.notification WHERE event_id IN (7, 8) AND state = 'sent'"
E7=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = 7")
E8=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = 8")
q $DB "UPDATE evmgmt.channel_provider SET endpoint = 'http://127.0.0.1:$SINK_PORT/slow503/ntfy' WHERE provider_id = 'ntfy';
       WITH items AS (SELECT jsonb_build_array(
	        jsonb_build_object('kind', 'escalation_step', 'event_id', 7, 'escalation_id', $E7, 'contact_id', 1, 'subject', 'ITEM-SEVEN', 'body', 'ITEM-SEVEN', 'payload', jsonb_build_object('severity', 'sev3')),
	        jsonb_build_object('kind', 'escalation_step', 'event_id', 8, 'escalation_id', $E8, 'contact_id', 1, 'subject', 'ITEM-EIGHT', 'body', 'ITEM-EIGHT', 'payload', jsonb_build_object('severity', 'sev3'))) AS i)
       INSERT INTO evmgmt.notification (kind, channel, provider_id, contact_id, recipient, subject, body, payload)
       SELECT 'digest', 'push', 'ntfy', 1, 'ana-topic', m.subject, m.body, jsonb_build_object('digest', true, 'severity', 'sev3', 'items', items.i, 'flaky', true)
       FROM items, evmgmt.render_digest('push', items.i) m" >/dev/null
wait_for 10 sql_true $DB "SELECT state = 'sending' FROM evmgmt.notification WHERE payload ? 'flaky'"
ok $? "the digest is in flight"
q $DB "SELECT evmgmt.acknowledge($E7, 1, 'on it')" >/dev/null
flaky_requests() { grep -c '/slow503/ntfy' "$IT_DIR/api.log"; }
wait_for 20 sql_true $DB "SELECT (SELECT count(*) FROM evmgmt.delivery_attempt a JOIN evmgmt.notification n USING (notification_id) WHERE n.payload ? 'flaky') >= 2"
second=$(grep '/slow503/ntfy' "$IT_DIR/api.log" | sed -n 2p)
is "$(echo "$second" | grep -c ITEM-SEVEN),$(echo "$second" | grep -c ITEM-EIGHT)" "0,1" \
	"its retry carries the item still running and not the acknowledged one"
is "$(q $DB "SELECT string_agg(i ->> 'escalation_id', ',') FROM evmgmt.notification, jsonb_array_elements(payload -> 'items') i WHERE payload ? 'flaky'")" "$E8" \
	"the digest now holds only that item"
q $DB "SELECT evmgmt.acknowledge($E8, 1, 'on it')" >/dev/null
wait_for 20 sql_true $DB "SELECT state = 'cancelled' FROM evmgmt.notification WHERE payload ? 'flaky'"
ok $? "once every item's escalation is acknowledged, the digest is cancelled instead of retried"

it_done

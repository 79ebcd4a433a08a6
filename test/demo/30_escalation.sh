#!/usr/bin/env bash
# Demo part 3: escalations delivered for real.  Local sinks stand in for the
# providers (an HTTP sink for the webhook, ntfy push and Twilio SMS/voice
# APIs, an SMTP sink for e-mail).  A sev1 on the AI pool starts the plan
# push -> sms (after 4 s) -> voice (after 4 s more); the background worker
# delivers; Dana acknowledges after the SMS, so the voice call never comes.
# Run by test/demo.sh inside the demo cluster (PG* variables set).
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/demo/lib.bash
start_sinks 'whsec_ZGVtby1zaWduaW5nLXNlY3JldA=='

echo
echo "== Escalation, live: local sinks on 127.0.0.1:$http (HTTP APIs) and :$smtp (SMTP) stand in for the providers"
# Pages to one address within evmgmt.recipient_burst_window are bundled into a
# digest sent when the window closes (default 60 s); 5 s keeps the demo short.
q -c "ALTER SYSTEM SET evmgmt.recipient_burst_window = '5s'" -c "SELECT pg_reload_conf()" >/dev/null
q <<SQL
UPDATE evmgmt.channel_provider SET endpoint = CASE kind WHEN 'smtp' THEN 'smtp://127.0.0.1:$smtp' ELSE 'http://127.0.0.1:$http' END;
INSERT INTO evmgmt.escalation_plan (plan_id, name, operation_id, severities, pools, priority)
VALUES ('demo-aa-sev1', 'AI pool sev1: Dana by push, SMS, then a call; the pager webhook at once', 'acme', '{sev1}', '{aa}', 1);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, provider_id) VALUES
	('demo-aa-sev1', 1, '0', 'push', 'contact', 1, NULL),
	('demo-aa-sev1', 2, '0', 'webhook', 'endpoint', NULL, 'pager-hook'),
	('demo-aa-sev1', 3, '4 seconds', 'sms', 'contact', 1, NULL),
	('demo-aa-sev1', 4, '4 seconds', 'voice', 'contact', 1, NULL);
SQL
ev=$(q -c "SELECT evmgmt.open_event('system', 'MNL1', '{aa,spec}', 'monitoring', 'Billing AI agent returns errors', now(), 'billing', 'model_regression')")
q -c "SELECT evmgmt.classify_pool($ev, 'aa', 'sev1'), evmgmt.classify_pool($ev, 'spec', 'sev3')" >/dev/null
echo "event $ev opened; aa classified sev1, spec sev3: the plan started in the same transaction"
wait_until 30 "SELECT count(*) >= 2 FROM evmgmt.notification WHERE event_id = $ev AND kind = 'escalation_step' AND state = 'sent'"
echo "push and webhook delivered; waiting for the SMS step ..."
wait_until 30 "SELECT EXISTS (SELECT FROM evmgmt.notification WHERE event_id = $ev AND channel = 'sms' AND state = 'sent')"
echo "SMS delivered; Dana acknowledges:"
show -c "SELECT evmgmt.acknowledge(escalation_id, 1, 'Dana on it: rolling back the model') AS acknowledged FROM evmgmt.escalation WHERE event_id = $ev AND pool = 'aa' AND state = 'active'"
sleep 5   # longer than the voice step's delay: show that it never fires
show -c "SELECT escalation_id, pool, plan_id, state, current_step, next_step, acknowledged_by_name, ack_note FROM evmgmt.escalation_status WHERE event_id = $ev ORDER BY pool"
show -c "SELECT h.pool, h.step_no, h.channel, h.contact_name, h.recipient, h.outcome,
                round(extract(epoch FROM h.fired_at - s.started_at)::numeric, 1) AS s_after_start, h.delivery_state, h.delivery_status
         FROM evmgmt.escalation_history h JOIN evmgmt.escalation_status s USING (escalation_id)
         WHERE h.event_id = $ev ORDER BY h.fired_at, h.step_no"
echo "What the provider sinks received (the webhook's Standard Webhooks signature checked by the sink):"
python3 - "$work/http.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    h = {k.lower(): v for k, v in r["headers"].items()}
    kind = ("webhook (signature valid)" if r.get("sig_valid") else "webhook") if "webhook-id" in h else \
           ("twilio voice" if r["path"].endswith("Calls.json") else "twilio sms" if r["path"].endswith("Messages.json") else "ntfy push")
    print("  %-26s %s" % (kind, r["path"]))
PY
echo
echo "The analyst resolves both pools; everyone who was paged is told:"
q -c "SELECT evmgmt.diagnose_pool($ev, p, 'technology', 'ai_engineering', 'Model release regressed intent matching') FROM unnest('{aa,spec}'::evmgmt.pool[]) p" >/dev/null
q -c "SELECT evmgmt.log_response($ev, 'aa', 'model_rollback', 'Rolled back to the previous model'), evmgmt.log_response($ev, 'spec', 'overtime', 'Six agents on overtime')" >/dev/null
q -c "SELECT evmgmt.resolve_event($ev, 'Previous model restored')" >/dev/null
echo "(messages to an address paged within the last 5 s would be bundled into one digest: evmgmt.recipient_burst_window)"
wait_until 30 "SELECT NOT EXISTS (SELECT FROM evmgmt.notification WHERE (event_id = $ev OR kind = 'digest') AND state IN ('pending', 'sending', 'retry'))"
show -c "SELECT kind, channel, state, count(*) FROM evmgmt.notification WHERE event_id = $ev OR kind = 'digest' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
echo "E-mails the SMTP sink received: $(grep -c . "$work/smtp.log" || true)"

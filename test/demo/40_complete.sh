#!/usr/bin/env bash
# Demo part 4: the whole product on one day of one operation, Fabrikam.
#   1. A day of 15-minute intervals (96 per series) loaded by COPY as a login
#      that has only evmgmt_ingest: detection opens a demand event when the
#      billing specialists' service level collapses in the last 90 minutes.
#   2. Its escalation plan pages Kim by push, e-mail and SMS and the pager
#      webhook; the worker delivers to local sinks (HTTP for ntfy, Twilio and
#      webhooks; SMTP for e-mail).
#   3. The WFM forecast of the next two hours, loaded by the same login,
#      has too few sales agents: prediction opens a predicted event before
#      the breach; a response rule logs overtime and sends the signed webhook
#      to the WFM sink.
#   4. Kim acknowledges by replying 1 to the SMS: a Twilio-signed request to
#      the extension's own HTTP listener.
#   5. The analyst responds and resolves; WFM's re-forecast with the overtime
#      agents averts the prediction (handled without ROC intervention); the
#      analyst records the analysis, action items and impacts and closes.
#   6. The post-event report: a summary from the report functions, and the
#      HTML page written to a file whose path is printed.
# Run by test/demo.sh inside the demo cluster (PG* variables set); the
# listener needs a restart of that cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/demo/lib.bash
trap 'demo_cleanup; command psql -X -q -d postgres -c "DROP ROLE IF EXISTS fabrikam_etl" >/dev/null 2>&1 || true' EXIT
started=$SECONDS
start_sinks 'whsec_bm9ydGh3aW5kLXdmbQ=='
lport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$lport"

echo
echo "== The complete day: Fabrikam, site FB1 (Europe/Berlin), queues billing and sales"
echo "   (local sinks 127.0.0.1:$http for the HTTP APIs and :$smtp for SMTP; the listener on $base)"
command psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER SYSTEM SET evmgmt.http_listen = '127.0.0.1:$lport';
ALTER SYSTEM SET evmgmt.http_database = '$db';
ALTER SYSTEM SET evmgmt.public_base_url = '$base';
ALTER SYSTEM SET evmgmt.recipient_burst_window = 0;
SQL
pg_ctlcluster 15 regress restart >/dev/null 2>&1
for _ in $(seq 150); do curl -sf "$base/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "$base/healthz" >/dev/null || { echo "demo: the listener did not come up" >&2; exit 1; }
wait_until 30 "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$db')"

q >/dev/null <<SQL
INSERT INTO evmgmt.operation VALUES ('fabrikam', 'Fabrikam Care');
INSERT INTO evmgmt.calendar VALUES ('fb-24x7', 'Round the clock');
INSERT INTO evmgmt.calendar_hours SELECT 'fb-24x7', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('FB1', 'fabrikam', 'Fabrikam Berlin', 'Europe/Berlin', 'fb-24x7');
INSERT INTO evmgmt.queue (queue_id, operation_id, name, sl_target, sl_seconds) VALUES
	('fb-billing', 'fabrikam', 'Billing', 0.8, 20), ('fb-sales', 'fabrikam', 'Sales', 0.8, 20);
-- the whole day is live (not a backfill); the feed is not watched in the demo
INSERT INTO evmgmt.detection_policy (operation_id, backfill_after, feed_due_intervals) VALUES ('fabrikam', '30 hours', 500);
-- the person channels use the operation-wide providers of the sample (one
-- active per channel), pointed at this part's sinks; two webhooks of its own
UPDATE evmgmt.channel_provider SET endpoint = CASE kind WHEN 'smtp' THEN 'smtp://127.0.0.1:$smtp' ELSE 'http://127.0.0.1:$http' END
WHERE provider_id IN ('twilio-sms', 'twilio-voice', 'ntfy', 'smtp');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES
	('fb-pager', 'webhook', 'webhook', 'http://127.0.0.1:$http/pager'),
	('fb-wfm', 'webhook', 'webhook', 'http://127.0.0.1:$http/wfm/levers');
INSERT INTO evmgmt.provider_secret (provider_id, secret) VALUES
	('fb-pager', 'whsec_bm9ydGh3aW5kLXdmbQ=='), ('fb-wfm', 'whsec_bm9ydGh3aW5kLXdmbQ==');
INSERT INTO evmgmt.contact (contact_id, name, role_name, time_zone) VALUES (901, 'Kim Berg', 'kim', 'Europe/Berlin');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES
	(901, 'push', 'kim-phone'), (901, 'email', 'kim@fabrikam.example'), (901, 'sms', '+4915112345678');
INSERT INTO evmgmt.escalation_plan (plan_id, name, operation_id, severities, pools, start_reasons, priority)
VALUES ('fb-spec', 'Specialists sev1-sev2: Kim by push, e-mail, the pager; SMS after 3 s', 'fabrikam', '{sev1,sev2}', '{spec}', '{opened,upgraded}', 1);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, provider_id) VALUES
	('fb-spec', 1, '0', 'push', 'contact', 901, NULL),
	('fb-spec', 2, '0', 'email', 'contact', 901, NULL),
	('fb-spec', 3, '0', 'webhook', 'endpoint', NULL, 'fb-pager'),
	('fb-spec', 4, '3 seconds', 'sms', 'contact', 901, NULL);
-- level 3: WFM offers overtime for predicted capacity shortfalls in sales
INSERT INTO evmgmt.response_rule (rule_id, operation_id, event_types, most_severe, least_severe, queue_ids, source, lever,
								  provider_id, max_per_hour, instruction)
VALUES ('fb-overtime', 'fabrikam', '{capacity}', 'sev3', 'sev3', '{fb-sales}', 'predicted', 'overtime', 'fb-wfm', 4,
		'Offer one hour of overtime to the next shift');
INSERT INTO evmgmt.runbook (runbook_id, operation_id, event_type, subtype, name)
VALUES (901, 'fabrikam', 'demand', 'volume_spike', 'Volume spike');
INSERT INTO evmgmt.runbook_step (runbook_id, step_no, instruction, lever) VALUES
	(901, 1, 'Cancel coaching and training in the affected intervals', 'cancel_offline_activities'),
	(901, 2, 'Offer callbacks to waiting customers', 'callback_offer'),
	(901, 3, 'Play the high-volume message', 'outage_message');
SQL
command psql -X -q -d postgres -c "CREATE ROLE fabrikam_etl LOGIN PASSWORD 'fabrikam' IN ROLE evmgmt_ingest" >/dev/null
etl() { PGUSER=fabrikam_etl PGPASSWORD=fabrikam command psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -d "$db" "$@"; }

# the day: 96 intervals per series ending at the last full quarter hour;
# billing's specialists collapse in the last six (160 offered against 100
# forecast, 20 % answered in 20 s)
t0=$(q -c "SELECT to_char((date_trunc('hour', now()) + floor(extract(minute FROM now()) / 15) * interval '15 minutes' - interval '24 hours') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00')")
python3 - "$t0" > "$work/day.csv" <<'PY'
import datetime, sys
t0 = datetime.datetime.fromisoformat(sys.argv[1])
for k in range(96):
    t = (t0 + datetime.timedelta(minutes=15 * k)).isoformat()
    for queue in ("fb-billing", "fb-sales"):
        offered, answered, abandoned, handled = 100, 86, 2, 98
        if queue == "fb-billing" and k >= 90:
            offered, answered, abandoned, handled = 160, 32, 20, 140
        # site, queue, pool, start, minutes, offered, handled, abandoned, answered in threshold,
        # threshold, aht, staffed, scheduled, forecast offered, forecast aht
        print(f"FB1,{queue},spec,{t},15,{offered},{handled},{abandoned},{answered},20,300,40,40,100,300")
PY
cols="site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht"
etl -c "\\copy evmgmt.interval_stat ($cols) FROM '$work/day.csv' WITH (FORMAT csv)"
echo
echo "-- 1. $(wc -l < "$work/day.csv") intervals loaded by COPY as fabrikam_etl (evmgmt_ingest only); detection, in the loading statement:"
echo "   (the whole day arrives at once here, so the event's clocks start at the data time of its intervals, an hour ago)"
ev=$(q -c "SELECT event_id FROM evmgmt.event WHERE operation_id = 'fabrikam' AND detection_source = 'rule'")
show -c "SELECT e.event_id, e.event_type, e.subtype, e.detection_source, r.floor_severity, e.title FROM evmgmt.event e JOIN evmgmt.event_rollup r USING (event_id) WHERE e.event_id = $ev"
show -c "SELECT to_char(at AT TIME ZONE 'Europe/Berlin', 'HH24:MI:SS') AS at, source, action, actor, from_severity, to_severity, detail
         FROM evmgmt.bi_event_timeline WHERE event_id = $ev AND source IN ('lifecycle', 'automatic') ORDER BY at, action"

echo "-- 2. the plan pages Kim; the worker delivers:"
wait_until 30 "SELECT count(*) >= 3 FROM evmgmt.notification WHERE event_id = $ev AND kind = 'escalation_step' AND state = 'sent'"
wait_until 30 "SELECT EXISTS (SELECT FROM evmgmt.notification WHERE event_id = $ev AND channel = 'sms' AND state = 'sent')"
show -c "SELECT channel, contact_name, recipient, outcome, to_char(sent_at AT TIME ZONE 'Europe/Berlin', 'HH24:MI:SS') AS sent
         FROM evmgmt.bi_notification_delivery WHERE event_id = $ev AND kind = 'escalation_step' ORDER BY created_at, channel"

# the forecast of the next two hours: sales scheduled 36 instead of 40 from
# the third to the sixth interval (39 are needed)
f0=$(q -c "SELECT to_char((date_trunc('hour', now()) + ceil((extract(minute FROM now()) + 1) / 15) * interval '15 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00')")
forecast() {  # scheduled agents in the short intervals
	python3 - "$f0" "$1" <<'PY'
import datetime, sys
f0 = datetime.datetime.fromisoformat(sys.argv[1])
for k in range(8):
    t = (f0 + datetime.timedelta(minutes=15 * k)).isoformat()
    print(f"FB1,fb-billing,spec,{t},15,100,300,60,")
    print(f"FB1,fb-sales,spec,{t},15,100,300,{sys.argv[2] if 2 <= k <= 5 else 40},")
PY
}
forecast 36 > "$work/forecast.csv"
fcols="site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled, patience_seconds"
etl -c "\\copy evmgmt.forecast_inbox ($fcols) FROM '$work/forecast.csv' WITH (FORMAT csv)"
echo
echo "-- 3. WFM's forecast of the next two hours loaded (16 intervals); the projection, sales:"
show -c "SELECT to_char(interval_start AT TIME ZONE 'Europe/Berlin', 'HH24:MI') AS starts, scheduled, round(traffic::numeric, 1) AS erlangs,
                round(corrected_service_level::numeric, 3) AS projected_sl, corrected_agents_needed AS needed, volume_ratio
         FROM evmgmt.forecast_projection WHERE queue_id = 'fb-sales' ORDER BY interval_start"
wait_until 30 "SELECT EXISTS (SELECT FROM evmgmt.event WHERE operation_id = 'fabrikam' AND detection_source = 'predictive')"
pev=$(q -c "SELECT event_id FROM evmgmt.event WHERE operation_id = 'fabrikam' AND detection_source = 'predictive'")
echo "   the worker's prediction pass opened event $pev before the breach:"
show -c "SELECT e.event_id, e.event_type, e.subtype, f.severity, f.state, e.title,
                evmgmt.event_facts(e.event_id) ->> 'agents_needed' AS agents_needed,
                evmgmt.event_facts(e.event_id) ->> 'breach_starts' AS breach_starts
         FROM evmgmt.event e JOIN evmgmt.pool_condition f USING (event_id) WHERE e.event_id = $pev"
wait_until 30 "SELECT EXISTS (SELECT FROM evmgmt.notification WHERE event_id = $pev AND kind = 'response_action' AND state = 'sent')"
echo "   the response rule logged the lever and WFM received the signed webhook (a sev3 prediction pages nobody):"
show -c "SELECT rule_id, lever, outcome, to_char(fired_at AT TIME ZONE 'Europe/Berlin', 'HH24:MI:SS') AS fired FROM evmgmt.response_rule_firing WHERE event_id = $pev"
python3 - "$work/http.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"].startswith("/wfm"):
        d = json.loads(r["body"])["data"]
        print("   WFM sink: %s %s, signature %s: lever %s for pool %s of event %s, %s agents needed" % (
            r["method"], r["path"], "valid" if r.get("sig_valid") else "INVALID", d["lever"], d["pool"], d["event_id"], d.get("agents_needed")))
PY

# Kim's SMS page says how to acknowledge; she replies 1
echo
echo "-- 4. Kim's SMS and her reply:"
python3 - "$work/http.log" <<'PY'
import json, sys, urllib.parse
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["path"].endswith("Messages.json"):
        print("   SMS to Kim: " + urllib.parse.parse_qs(r["body"])["Body"][0][:150])
PY
reply=$(python3 test/tools/listener_client.py twilio "$base/twilio/sms" demo-token From=+4915112345678 Body=1 MessageSid=SMfabrikam1)
echo "   listener answered: ${reply:0:3} $(sed 's/<[^>]*>//g' <<<"${reply:4}" | head -c 120)"
wait_until 10 "SELECT EXISTS (SELECT FROM evmgmt.escalation WHERE event_id = $ev AND state = 'acknowledged')"
show -c "SELECT escalation_id, pool, state, acknowledged_by_name, ack_note FROM evmgmt.escalation_status WHERE event_id = $ev"
show -c "SELECT a.channel, a.source FROM evmgmt.escalation_ack a JOIN evmgmt.escalation e USING (escalation_id) WHERE e.event_id = $ev"

echo "-- 5. the analyst works the runbook, responds and resolves; WFM re-forecasts with the overtime agents:"
q >/dev/null <<SQL
SELECT evmgmt.runbook_step_done($ev, 'spec', 1, 'done', 'coaching cancelled until 18:00');
SELECT evmgmt.diagnose_pool($ev, 'spec', 'demand', 'routing', 'Invoice run sent a day early');
SELECT evmgmt.log_response($ev, 'spec', 'callback_offer', 'Callbacks offered in the queue');
SELECT evmgmt.runbook_step_done($ev, 'spec', 2, 'done', NULL);
SELECT evmgmt.runbook_step_done($ev, 'spec', 3, 'skipped', 'callbacks were enough');
SELECT evmgmt.resolve_pool($ev, 'spec', 'Queue back under target after callbacks');
SQL
forecast 40 > "$work/forecast.csv"
etl -c "\\copy evmgmt.forecast_inbox ($fcols) FROM '$work/forecast.csv' WITH (FORMAT csv)"
wait_until 30 "SELECT status = 'averted' FROM evmgmt.prediction_state WHERE event_id = $pev"
show -c "SELECT event_id, queue_id, source, outcome, lead_minutes FROM evmgmt.prediction_outcome WHERE operation_id = 'fabrikam' ORDER BY event_id"
show -c "SELECT event_id, pool, severity, rules, levers, handled_without_roc FROM evmgmt.rule_handled_conditions WHERE operation_id = 'fabrikam'"
q >/dev/null <<SQL
SELECT evmgmt.record_analysis($ev, 'The invoice run went out a day early without telling the ROC',
							  'Add the billing calendar to the WFM forecast inputs', '{no notice from billing,no volume alert upstream}',
							  'no rule on the invoice-run calendar');
SELECT evmgmt.add_action_item($ev, 'Billing calendar feed into WFM', 'wfm-team', current_date + 14);
SELECT evmgmt.record_objective_impact($ev, 'service_level', 'degraded', 90, 'minutes below target', NULL);
SELECT evmgmt.record_objective_impact($ev, 'customer_experience', 'degraded', NULL, NULL, 'callbacks instead of waits');
SELECT evmgmt.record_objective_impact($ev, 'cost', 'neutral', NULL, NULL, 'no overtime needed');
SELECT evmgmt.record_objective_impact($ev, 'agent_experience', 'neutral', NULL, NULL, NULL);
SELECT evmgmt.record_objective_impact($ev, 'business_value', 'degraded', 4, 'lost upsells', NULL);
SELECT evmgmt.close_event($ev);
SQL
wait_until 30 "SELECT NOT EXISTS (SELECT FROM evmgmt.notification n JOIN evmgmt.event e USING (event_id) WHERE e.operation_id = 'fabrikam' AND n.state IN ('pending', 'sending', 'retry'))"

echo
echo "-- 6. The post-event report"
from="now() - interval '2 days'"; to="now() + interval '1 hour'"
show -c "SELECT severity, conditions, acknowledged, mtta, resolved, mttr FROM evmgmt.report_response_times($from, $to, site_filter => 'FB1') WHERE pool IS NULL"
show -c "SELECT event_id, pool, intervals, service_level_minutes_lost AS sl_minutes_lost, contacts_abandoned, contacts_beyond_threshold,
                estimated_cost FROM evmgmt.report_impact($from, $to, site_filter => 'FB1', cost_per_outage_hour => 1200, cost_per_overtime_hour => 45)
         WHERE event_id = $ev OR event_id IS NULL"
show -c "SELECT contact_name, channel, notifications, interruptions, business_hours, off_hours, sleep_hours, acknowledged
         FROM evmgmt.report_notification_fatigue($from, $to, site_filter => 'FB1') ORDER BY channel NULLS LAST"
show -c "SELECT finding, event_id, detail FROM evmgmt.report_blind_spots($from, $to, site_filter => 'FB1') WHERE finding <> 'detection_share'"
show -x -c "SELECT events, share_automated, predictions, predicted_averted, share_predicted, sev3_conditions, sev3_handled_by_rules, maturity_level, reason
            FROM evmgmt.report_maturity($from, $to, site_filter => 'FB1')"
mkdir -p tmp
report="$PWD/tmp/evmgmt-event-$ev.html"
q -c "SELECT evmgmt.event_report($ev)" > "$report"
echo "The post-event report of event $ev as HTML (open it in a browser; it needs nothing else): $report"
echo "(this part took $((SECONDS - started)) s)"

command psql -X -q -d postgres >/dev/null <<SQL
ALTER SYSTEM RESET evmgmt.http_listen;
ALTER SYSTEM RESET evmgmt.http_database;
ALTER SYSTEM RESET evmgmt.public_base_url;
ALTER SYSTEM RESET evmgmt.recipient_burst_window;
SQL

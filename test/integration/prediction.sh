#!/usr/bin/env bash
# Prediction and rule-driven response with the real worker.  A login that has
# only evmgmt_ingest loads a forecast by COPY through forecast_inbox (a bad
# row is quarantined); the worker, woken by the load's commit, opens one
# predicted event per short-staffed series before its first breaching
# interval, with the projected tier and the agents needed, and none for the
# healthy series.  A response rule fires its signed webhook to a local WFM
# sink exactly once per event, pool and lever, stops at its rate cap and at
# the kill switch, logs the lever, and is on the timeline and in the audit
# trail.  A sev1 prediction pages; a sev3 one does not, until the actuals
# confirm it, and then the same event carries on.  A re-forecast with enough
# agents averts a prediction.  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 18
DB=evmgmt_it_prediction
new_db $DB
start_http_sink wfm --secret whsec_cHJlZGljdGlvbi10ZXN0
WFM_PORT=$SINK_PORT
start_http_sink page
PAGE_PORT=$SINK_PORT
ETL=evm_it_forecaster
psql -XqAt -d postgres -c "DROP ROLE IF EXISTS $ETL" -c "CREATE ROLE $ETL LOGIN PASSWORD 'etl' IN ROLE evmgmt_ingest" >/dev/null
IT_CLEANUP+=("psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS $ETL'")
etl() { PGUSER=$ETL PGPASSWORD=etl psql -XqAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -d $DB "$@"; }

# the forecast starts at the quarter hour after the next one: every
# breaching interval is ahead when the worker predicts
F0=$(q $DB "SELECT to_char(date_trunc('hour', now()) + floor(extract(minute FROM now()) / 15) * interval '15 minutes' + interval '30 minutes', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00') FROM (SELECT set_config('TimeZone', 'UTC', false)) z")
diag "forecast starts at $F0"
psql -XqAt -v ON_ERROR_STOP=1 -d $DB >/dev/null <<SQL
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('all', 'Round the clock');
INSERT INTO evmgmt.calendar_hours SELECT 'all', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('S1', 'acme', 'Site one', 'UTC', 'all');
INSERT INTO evmgmt.queue (queue_id, operation_id, name, sl_target, sl_seconds)
SELECT q, 'acme', q, 0.8, 20 FROM unnest(ARRAY['qshort', 'qok', 'qconf', 'qthird', 'qkill']) q;
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES
	('page', 'webhook', 'webhook', 'http://127.0.0.1:$PAGE_PORT/page'),
	('wfm', 'webhook', 'webhook', 'http://127.0.0.1:$WFM_PORT/wfm');
INSERT INTO evmgmt.provider_secret VALUES ('wfm', 'whsec_cHJlZGljdGlvbi10ZXN0');
INSERT INTO evmgmt.escalation_plan (plan_id, name) VALUES ('all', 'Page everything');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, provider_id) VALUES ('all', 1, '0', 'webhook', 'endpoint', 'page');
-- the WFM system offers overtime for predicted capacity shortfalls, at most twice an hour
INSERT INTO evmgmt.response_rule (rule_id, operation_id, event_types, most_severe, least_severe, source, lever, provider_id, max_per_hour, instruction)
VALUES ('wfm-overtime', 'acme', '{capacity}', 'sev1', 'sev3', 'predicted', 'overtime', 'wfm', 2, 'Offer voluntary overtime');
SQL

# forecast rows: queue, k, offered, scheduled (100 contacts of 300 s in 15
# minutes need 39 agents: 30 answer nothing in time (sev1), 34 about 17 %
# (sev3 after more than 30 minutes), 40 about 88 %)
frow() { echo "S1,$1,spec,$(q $DB "SELECT '$F0'::timestamptz + $2 * interval '15 minutes'"),15,$3,300,$4,"; }
{
	for k in 0 1 2 3; do frow qshort $k 100 30; frow qok $k 100 40; done
	for k in 0 1 2; do frow qconf $k 100 34; done
	frow qconf 3 100 40
	echo "S1,qok,spec,$F0,15,100,0,40,"
} > "$IT_DIR/forecast.csv"
etl -c "\\copy evmgmt.forecast_inbox FROM '$IT_DIR/forecast.csv' WITH (FORMAT csv)"
is "$(etl -c "SELECT constraint_name FROM evmgmt.my_interval_quarantine WHERE target_table = 'interval_forecast'")" \
	"interval_forecast_aht_positive" "a bad forecast row is quarantined with the constraint it breaks"

# the worker predicts
wait_for 60 sql_true $DB "SELECT count(*) = 2 FROM evmgmt.prediction_state WHERE status = 'predicted'" ||
	diag "predictions: $(q $DB "SELECT string_agg(queue_id || ' ' || status, ', ') FROM evmgmt.prediction_state")"
is "$(q $DB "SELECT string_agg(e.queue_id || ' ' || e.detection_source || ' ' || e.event_type || ' ' || pc.severity || ' ' || ps.agents_needed, ', ' ORDER BY e.queue_id)
			 FROM evmgmt.event e JOIN evmgmt.pool_condition pc USING (event_id) JOIN evmgmt.prediction_state ps ON ps.event_id = e.event_id")" \
	"qconf predictive capacity sev3 5, qshort predictive capacity sev1 9" \
	"the worker opens one predicted event per short series with the projected tier and the agents needed"
is "$(q $DB "SELECT bool_and(e.opened_at < ps.breach_starts_at AND ps.breach_starts_at = '$F0') FROM evmgmt.event e JOIN evmgmt.prediction_state ps USING (event_id)")" \
	"t" "each opened before its first breaching interval starts"
is "$(q $DB "SELECT count(*) FROM evmgmt.event WHERE queue_id = 'qok'")" "0" "the healthy forecast opens nothing"
is "$(q $DB "SELECT (f ->> 'projected_service_level_pct') || ' ' || (f ->> 'agents_needed') || ' ' || ((f ->> 'breach_starts_at')::timestamptz = '$F0')
			 FROM evmgmt.event e, evmgmt.event_facts(e.event_id) f WHERE e.queue_id = 'qshort'")" "0% 9 true" \
	"the event's facts carry the projected service level, agents needed and breach start"

# paging: the sev1 prediction pages, the sev3 one does not
wait_for 30 sink_has page 1
is "$(grep -c '"/page"' "$IT_DIR/page.log")" "1" "the sev1 prediction pages (one page to the sink)"
is "$(q $DB "SELECT count(*) FROM evmgmt.escalation x JOIN evmgmt.event e USING (event_id) WHERE e.queue_id = 'qconf'")" "0" \
	"the sev3 prediction pages nobody"

# the response rule: one signed webhook per event, pool and lever
wait_for 30 sink_has wfm 2
is "$(python3 - "$IT_DIR/wfm.log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join(sorted("%s:%s:%s:%s" % (json.loads(r["body"])["data"]["queue"], json.loads(r["body"])["data"]["lever"],
                                      json.loads(r["body"])["data"]["pool"], r["sig_valid"]) for r in rows)))
PY
)" "qconf:overtime:spec:True qshort:overtime:spec:True" "the rule sends one signed webhook per predicted event with its lever and pool"
is "$(q $DB "SELECT string_agg(e.queue_id || ' ' || pc.state || ' ' || a.lever, ', ' ORDER BY e.queue_id)
			 FROM evmgmt.response_action a JOIN evmgmt.pool_condition pc USING (event_id, pool) JOIN evmgmt.event e USING (event_id)")" \
	"qconf responding overtime, qshort responding overtime" "the lever is logged on each condition"
is "$(q $DB "SELECT count(*) FROM evmgmt.event_timeline WHERE actor = 'rule:response:wfm-overtime' AND lever = 'overtime'")
$(q $DB "SELECT count(*) FROM evmgmt.audit_log WHERE table_name = 'response_rule_firing' AND action = 'INSERT' AND new_row ->> 'outcome' = 'fired'")" \
	"2
2" "every firing is on the timeline and in the audit trail"

# a third prediction meets the cap; further passes fire nothing again
{ for k in 0 1; do frow qthird $k 100 30; done; } > "$IT_DIR/third.csv"
etl -c "\\copy evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled, patience_seconds) FROM '$IT_DIR/third.csv' WITH (FORMAT csv)"
wait_for 60 sql_true $DB "SELECT EXISTS (SELECT FROM evmgmt.response_rule_firing WHERE outcome = 'rate_capped')"
is "$(q $DB "SELECT string_agg(e.queue_id || ' ' || f.outcome, ', ' ORDER BY e.queue_id) FROM evmgmt.response_rule_firing f JOIN evmgmt.event e USING (event_id)")" \
	"qconf fired, qshort fired, qthird rate_capped" "the third firing within the hour is held back by the rate cap"
set_guc evmgmt.prediction_refresh 10s
runs=$(q $DB "SELECT count(*) FROM evmgmt.prediction_run WHERE full_pass")
wait_for 60 sql_true $DB "SELECT count(*) > $runs + 1 FROM evmgmt.prediction_run WHERE full_pass"
sleep 1
is "$(log_lines wfm) $(q $DB "SELECT count(*) FROM evmgmt.response_rule_firing WHERE outcome = 'fired'")" "2 2" \
	"two more full passes fire nothing again (exactly once per event, pool and lever)"

# the kill switch
q $DB "SELECT evmgmt.set_response_rules(false, 'WFM change freeze')" >/dev/null
q $DB "UPDATE evmgmt.response_rule SET max_per_hour = 100" >/dev/null
{ for k in 0 1; do frow qkill $k 100 30; done; } > "$IT_DIR/kill.csv"
etl -c "\\copy evmgmt.forecast_inbox FROM '$IT_DIR/kill.csv' WITH (FORMAT csv)"
wait_for 60 sql_true $DB "SELECT EXISTS (SELECT FROM evmgmt.response_rule_firing WHERE outcome = 'switched_off')"
is "$(q $DB "SELECT f.outcome FROM evmgmt.response_rule_firing f JOIN evmgmt.event e USING (event_id) WHERE e.queue_id = 'qkill'") $(log_lines wfm)" \
	"switched_off 2" "with the kill switch off no rule fires"

# a re-forecast with enough agents averts qshort before its breach
{ for k in 0 1 2 3; do frow qshort $k 100 40; done; } > "$IT_DIR/reforecast.csv"
etl -c "\\copy evmgmt.forecast_inbox FROM '$IT_DIR/reforecast.csv' WITH (FORMAT csv)"
wait_for 60 sql_true $DB "SELECT status = 'averted' FROM evmgmt.prediction_state WHERE queue_id = 'qshort'"
is "$(q $DB "SELECT ps.status || ' ' || pc.state || ' ' || (SELECT count(*) FROM evmgmt.escalation x WHERE x.event_id = ps.event_id AND x.state = 'active')
			 FROM evmgmt.prediction_state ps JOIN evmgmt.pool_condition pc ON pc.event_id = ps.event_id AND pc.pool = ps.pool WHERE ps.queue_id = 'qshort'")" \
	"averted resolved 0" "a re-forecast with enough agents averts the prediction and ends its escalation"

# actuals of qconf's predicted intervals breach: the same event carries on and pages
rows=""
for k in 0 1 2; do
	rows+="S1,qconf,spec,$(q $DB "SELECT '$F0'::timestamptz + $k * interval '15 minutes'"),15,100,100,0,45,20,300,30,34,100,300"$'\n'
done
printf '%s' "$rows" > "$IT_DIR/actuals.csv"
etl -c "\\copy evmgmt.interval_inbox (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht) FROM '$IT_DIR/actuals.csv' WITH (FORMAT csv)"
wait_for 30 sql_true $DB "SELECT status = 'confirmed' FROM evmgmt.prediction_state WHERE queue_id = 'qconf'"
is "$(q $DB "SELECT count(*) || ' ' || min(e.detection_source) || ' ' || bool_and(d.event_id = e.event_id) FROM evmgmt.event e
			 JOIN evmgmt.detection_state d ON d.site_id = e.site_id AND d.queue_id = e.queue_id WHERE e.queue_id = 'qconf'")" \
	"1 predictive true" "actuals that confirm the prediction continue the same event"
pages_of() {
	python3 - "$IT_DIR/page.log" "$1" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(json.loads(line)["body"])["data"]
    n += d.get("queue") == sys.argv[2] and d.get("kind") == "escalation_step"
print(n)
PY
}
qconf_paged() { [ "$(pages_of qconf)" -ge 1 ]; }
wait_for 30 qconf_paged
is "$(pages_of qconf)" "1" "once confirmed, the sev3 condition pages"
is "$(q $DB "SELECT outcome FROM evmgmt.prediction_outcome WHERE queue_id = 'qconf'") $(q $DB "SELECT outcome FROM evmgmt.prediction_outcome WHERE queue_id = 'qshort'")" \
	"confirmed averted" "prediction_outcome counts the confirmed and the averted prediction"
is "$(q $DB "SELECT count(*) FROM evmgmt.prediction_run WHERE failures > 0")" "0" "no prediction pass had a failing series"

it_done

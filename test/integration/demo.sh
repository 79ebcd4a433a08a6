#!/usr/bin/env bash
# The complete demo (README, "The two commands") run inside the suite's
# cluster: every part of test/demo.sh against the real worker, local sinks
# and the HTTP listener.  Checks what it left in the database (a detected
# event paged on push, e-mail, SMS and webhook and acknowledged by an SMS
# reply through the listener; a predicted event a response rule handled and
# a re-forecast averted, without the ROC; the analysis; the HTML report it
# wrote parses in headless Chromium) and prints how long it took.  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 9
DB=evmgmt_demo
IT_DBS+=("$DB")
dropdb --if-exists --force "$DB" >/dev/null 2>&1
IT_SETTINGS+=(evmgmt.http_listen evmgmt.http_database evmgmt.public_base_url evmgmt.recipient_burst_window)
# the listener is switched off again by a restart at exit
IT_CLEANUP+=("pg_ctlcluster 15 regress restart && sleep 1")
start=$SECONDS
EVMGMT_IN_CLUSTER=1 bash test/demo.sh >"$IT_DIR/demo.out" 2>&1
rc=$?
took=$((SECONDS - start))
[ $rc -eq 0 ] || sed 's/^/# /' "$IT_DIR/demo.out" | tail -40
ok $rc "the demo runs to the end (exit $rc, $took s; the README promises under two minutes)"
diag "demo took $took s"

q1() { q $DB "$1" 2>/dev/null; }
EV=$(q1 "SELECT event_id FROM evmgmt.event WHERE operation_id = 'fabrikam' AND detection_source = 'rule'")
PEV=$(q1 "SELECT event_id FROM evmgmt.event WHERE operation_id = 'fabrikam' AND detection_source = 'predictive'")
is "$(q1 "SELECT event_type || ' ' || subtype || ' ' || floor_severity FROM evmgmt.event_rollup WHERE event_id = ${EV:-0}")" \
	"demand volume_spike sev2" "the day of intervals opened one detected demand event, sev2"
is "$(q1 "SELECT string_agg(DISTINCT channel::text, ' ' ORDER BY channel::text) FROM evmgmt.notification
          WHERE event_id = ${EV:-0} AND kind = 'escalation_step' AND state = 'sent'")" "email push sms webhook" \
	"its pages reached the push, SMS, e-mail and webhook sinks"
is "$(q1 "SELECT e.state || ' via ' || a.channel FROM evmgmt.escalation e JOIN evmgmt.escalation_ack a USING (escalation_id) WHERE e.event_id = ${EV:-0}")" \
	"acknowledged via sms" "Kim acknowledged by an SMS reply through the listener"
is "$(q1 "SELECT e.event_type || ' ' || pc.severity || ' ' || o.outcome FROM evmgmt.event e JOIN evmgmt.pool_condition pc USING (event_id)
          JOIN evmgmt.prediction_outcome o USING (event_id) WHERE e.event_id = ${PEV:-0}")" "capacity sev3 averted" \
	"the forecast opened a predicted capacity sev3, which the re-forecast averted"
is "$(q1 "SELECT count(*) FILTER (WHERE f.outcome = 'fired') || ' ' || count(*) FILTER (WHERE n.state = 'sent') || ' ' || bool_and(h.handled_without_roc)
          FROM evmgmt.response_rule_firing f LEFT JOIN evmgmt.notification n USING (notification_id)
          JOIN evmgmt.rule_handled_conditions h ON h.event_id = f.event_id AND h.pool = f.pool WHERE f.event_id = ${PEV:-0}")" "1 1 true" \
	"the response rule fired once, its webhook was delivered, and the condition was handled without ROC intervention"
is "$(q1 "SELECT (closed_at IS NOT NULL) || ' ' || evmgmt.analysis_complete(event_id) FROM evmgmt.event WHERE event_id = ${EV:-0}")" "true true" \
	"the detected event is closed with a complete analysis"
report=$(sed -n 's/^The post-event report of event [0-9]* as HTML.*: \(.*\)$/\1/p' "$IT_DIR/demo.out")
ok $([ -n "$report" ] && [ -s "$report" ]; echo $?) "the demo printed the path of the HTML report it wrote ($report)"
dom=$(timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$IT_DIR/chrome" \
	--dump-dom "file://$report" 2>/dev/null)
is "$(grep -o '<title>[^<]*</title>' <<<"$dom" | head -n 1 | sed 's/<[^>]*>//g; s/:.*//')" "Event $EV" "the report renders in headless Chromium"
rm -f "$report"
it_done

#!/usr/bin/env bash
# evmgmt.event_report(event_id) renders in headless Chromium: the report
# fixture (test/fixtures/reports.psql) plus an escalation step for E1 and an
# event whose title, description and notes hold <script>, & and quotes.  The
# HTML is written to a file, loaded with --dump-dom (the DOM as Chromium
# parsed it) and checked for the expected figures; a screenshot is taken
# (left in tmp/event_report.png for a look) and must be a non-empty PNG.
# The page must need nothing from outside: no <script>, no src=/href= to
# another file.  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 18
DB=evmgmt_it_event_report
export PGTZ=UTC
new_db $DB
command -v chromium >/dev/null || { echo "Bail out! chromium is not installed (test/tools/deps.sh)"; exit 1; }

psql -XqAt -v ON_ERROR_STOP=1 -d $DB >"$IT_DIR/fixture.out" 2>&1 <<'SQL' || { sed 's/^/# /' "$IT_DIR/fixture.out"; echo "Bail out! fixture"; exit 1; }
\ir test/fixtures/reports.psql
INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, scheduled_at, due_at, fired_at, channel, contact_id,
										provider_id, recipient, outcome)
VALUES (11, 1, 1, '2025-01-06 10:00', '2025-01-06 10:00', '2025-01-06 10:00:00', 'sms', 1, 'sms', '+4915112345601', 'queued');
INSERT INTO evmgmt.event (event_id, operation_id, site_id, queue_id, event_type, detection_source, title, description,
						  detected_at, opened_at, opened_by)
VALUES (8, 'op', 'S1', 'q1', 'demand', 'roc_analyst', '<script>alert("x")</script> & ''quoted'' "title"',
		'</td></tr></table><img src=x onerror=alert(1)>', '2025-01-29 10:00', '2025-01-29 10:00', 'analyst');
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, opened_at, classified_at, response_due, resolution_due, first_response_at)
VALUES (8, 'collab', 'sev3', 'responding', '2025-01-29 10:00', '2025-01-29 10:00', '2025-01-29 11:00', '2025-01-30 10:00', '2025-01-29 10:10');
INSERT INTO evmgmt.response_action (event_id, pool, lever, activated_at, actor, note)
VALUES (8, 'collab', 'nstar_retuning', '2025-01-29 10:10', 'analyst', '<script>document.title="pwned"</script>');
SQL

html="$IT_DIR/e1.html"
psql -XqAt -v ON_ERROR_STOP=1 -d $DB -c "SELECT evmgmt.event_report(1)" >"$html"
psql -XqAt -v ON_ERROR_STOP=1 -d $DB -c "SELECT evmgmt.event_report(8)" >"$IT_DIR/e8.html"
psql -XqAt -v ON_ERROR_STOP=1 -d $DB -c "SELECT evmgmt.event_report(5)" >"$IT_DIR/e5.html"
psql -XqAt -v ON_ERROR_STOP=1 -d $DB -c "SELECT evmgmt.event_report(3)" >"$IT_DIR/e3.html"

# --dump-dom prints the DOM after parsing (and after scripts, if any ran)
dom() {
	timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$IT_DIR/chrome" \
		--dump-dom "file://$1" 2>/dev/null
}
dom1=$(dom "$html")
dom8=$(dom "$IT_DIR/e8.html")
ok $([ -n "$dom1" ] && [ -n "$dom8" ]; echo $?) "Chromium parses both reports"

# self-contained: no scripts, no external resources
ok $(! grep -qiE '<script|src=|href=|url\(' "$html"; echo $?) "E1's report loads nothing from outside and has no script"
is "$(grep -o '<title>[^<]*</title>' <<<"$dom1" | head -n 1)" "<title>Event 1: Router down</title>" "title"
is "$(grep -o '<td id="floor-severity"[^>]*>[^<]*' <<<"$dom1" | sed 's/.*>//')" "sev1" "floor severity"
# one chart for the spec pool with the sev1-sev3 thresholds and the target
is "$(grep -o '<svg[^>]*class="sl-chart"[^>]*data-pool="spec"' <<<"$dom1" | wc -l)" "1" "one inline SVG chart for pool spec"
is "$(grep -o 'class="threshold" data-label="[a-z0-9]*"' <<<"$dom1" | sed 's/.*label="//; s/"//' | sort | tr '\n' ' ')" \
	"sev1 sev2 sev3 target " "tier thresholds and the queue target drawn"
# six intervals with offered contacts in the window (10:00-11:15), an hour either side
is "$(grep -o 'class="sl-point"' <<<"$dom1" | wc -l)" "6" "six service-level points"
is "$(grep -o 'data-mark="[^"]*"' <<<"$dom1" | sed 's/data-mark=//' | tr '\n' ' ')" \
	'"detected" "classified" "acknowledged" "response: it_escalation" "resolved" ' "marks in time order"
# worst interval 10:00, SL 0 %; Power of One 7..13 agents around the 10 staffed
is "$(grep -o 'class="worst-sl">[^<]*' <<<"$dom1" | sed 's/.*>//')" "0.0%" "worst interval service level"
is "$(grep -o '<table class="power-of-one">.*</table>' <<<"$dom1" | grep -o '<tr[^>]*><td>[0-9]*</td>' | grep -o '[0-9]*</td>' | tr -d '</td>' | tr '\n' ' ')" \
	"7 8 9 10 11 12 13 " "Power of One rows from 7 to 13 agents"
# escalation timeline: the sms page to Ana, then her acknowledgment; no address
is "$(grep -o '<table id="escalations">.*</table>' <<<"$dom1" | grep -o '<tr class="[a-z]*"><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td>' | sed 's/<tr class="\([a-z]*\)">/\1 /; s/<\/td><td>/|/g; s/<td>//; s/<\/td>//')" \
	"page 2025-01-06 10:00:00|spec|step 1|sms|Ana
ack 2025-01-06 10:03:00|spec|acknowledged|sms|Ana" "escalation timeline: the page and the acknowledgment with its channel"
ok $(! grep -q '4915112345601' "$html"; echo $?) "no phone number in the report"
# the response note with markup is text, not markup
ok $(grep -q 'vendor &lt;b&gt;ticket&lt;/b&gt; &amp; "P1"' <<<"$dom1"; echo $?) "markup in a note is shown as text"

# E8: the hostile title and notes stay text; no element came from them
is "$(grep -o '<title>[^<]*</title>' <<<"$dom8" | head -n 1)" \
	"<title>Event 8: &lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'quoted' \"title\"</title>" "hostile title is text"
ok $(! grep -qiE '<script|<img' <<<"$dom8"; echo $?) "no script or img element in E8's DOM"

# E5 was predicted and averted: the prediction table; E3's lever came from a
# response rule: the automatic responses table
dom5=$(dom "$IT_DIR/e5.html")
dom3=$(dom "$IT_DIR/e3.html")
is "$(perl -ne 'print "$1\n" while /<table id="prediction">.*?<\/tr>(.*?)<\/table>/g' <<<"$dom5" | sed 's/<\/td><td>/|/g; s/<[^>]*>//g')" \
	"spec|2025-01-15 08:00|sev3|2025-01-15 09:00|42.0%|3|averted" "E5: what prediction foresaw (tier, breach start, projected service level, agents to add) and its outcome"
is "$(perl -ne 'print "$1\n" while /<table id="rules">.*?<\/tr>(.*?)<\/table>/g' <<<"$dom3" | sed 's/<\/td><td>/|/g; s/<[^>]*>//g')" \
	"2025-01-20 09:10:00|spec|auto-ot|overtime|fired" "E3: the response rule that pulled its lever"

# a screenshot, for a person to look at
mkdir -p tmp
rm -f tmp/event_report.png
timeout 60 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$IT_DIR/chrome" \
	--hide-scrollbars --window-size=1000,1800 --screenshot="$PWD/tmp/event_report.png" "file://$html" >/dev/null 2>&1
ok $([ -s tmp/event_report.png ] && [ "$(head -c 8 tmp/event_report.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; echo $?) \
	"screenshot written (tmp/event_report.png)"
cp "$html" tmp/event_report.html 2>/dev/null
it_done

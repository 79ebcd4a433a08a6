#!/usr/bin/env bash
# The HTTP listener with the real worker and a local HTTP sink (issue 11):
# off by default it opens no port; on, a push page reaches the sink with its
# ack link, GET of the link changes nothing, POST acknowledges and stops the
# plan, a second POST answers "already acknowledged by"; forged tokens are
# refused (404) and recorded; an SMS page carries its reply hint and a
# Twilio-signed "1" acknowledges (a changed parameter or URL is refused,
# 403); history shows who and how; a signed webhook callback acknowledges;
# oversized bodies, malformed requests, 1,000 held connections and a client
# sending one byte per second leave the listener serving and the worker
# dispatching.  Prints TAP; bounded waits only.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 63
DB=evmgmt_it_listener
new_db $DB
start_http_sink api
API=$SINK_PORT
start_smtp_sink mail
SMTP=$SINK_PORT
LP=$(free_port)
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

listening() { ss -Hltn "sport = :$1" | grep -q .; }

# --- off by default: no process, no port -----------------------------------
is "$(q postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'evmgmt listener'")" "0" "with evmgmt.http_listen empty no listener process runs"
listening "$LP"; ok $((! $?)) "and nothing listens on the port"

# --- on -----------------------------------------------------------------------
IT_SETTINGS+=(evmgmt.public_base_url)
IT_CLEANUP+=("psql -XqAt -d postgres -c 'ALTER SYSTEM RESET evmgmt.http_listen' -c 'ALTER SYSTEM RESET evmgmt.http_database' && pg_ctlcluster 15 regress restart && sleep 1")
q postgres "ALTER SYSTEM SET evmgmt.http_listen = '127.0.0.1:$LP'" >/dev/null
q postgres "ALTER SYSTEM SET evmgmt.http_database = '$DB'" >/dev/null
q postgres "ALTER SYSTEM SET evmgmt.public_base_url = 'http://127.0.0.1:$LP'" >/dev/null
q postgres "ALTER SYSTEM SET evmgmt.recipient_burst_window = 0" >/dev/null
IT_SETTINGS+=(evmgmt.recipient_burst_window)
q postgres "ALTER SYSTEM SET evmgmt.voice_retry_interval = 3" >/dev/null
IT_SETTINGS+=(evmgmt.voice_retry_interval)
pg_ctlcluster 15 regress restart >/dev/null 2>&1
wait_for 30 server_up || { echo "Bail out! server did not come back"; exit 1; }
BASE="http://127.0.0.1:$LP"
wait_for 30 curl -sf "$BASE/healthz"
ok $? "with evmgmt.http_listen set the listener answers /healthz"
wait_for 20 has_worker $DB || { echo "Bail out! no worker after restart"; exit 1; }

q $DB "
INSERT INTO evmgmt.operation VALUES ('op', 'Listener');
INSERT INTO evmgmt.calendar VALUES ('cal', 'Always');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('BER', 'op', 'Berlin', 'Europe/Berlin', 'cal');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address) VALUES
 ('sms', 'sms', 'twilio', 'http://127.0.0.1:$API/ok', 'AC1', '+15550100'),
 ('voice', 'voice', 'twilio', 'http://127.0.0.1:$API/ok', 'AC1', '+15550100'),
 ('push', 'push', 'ntfy', 'http://127.0.0.1:$API/ok', NULL, NULL),
 ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$API/ok/hook', NULL, NULL),
 ('mail', 'email', 'smtp', 'smtp://127.0.0.1:$SMTP', NULL, 'roc@example.com');
INSERT INTO evmgmt.provider_secret VALUES ('sms', 'smstoken'), ('voice', 'voicetoken'), ('hook', 'whsec_c2VjcmV0');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Dana', 'dana'), (2, 'Eli', 'eli');
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES
 (1, 'push', 'dana'), (1, 'sms', '+15550111'), (2, 'sms', '+15550122'), (2, 'voice', '+15550122'),
 (1, 'email', 'dana@example.com');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('spec-plan', 'Spec', '{spec}'), ('collab-plan', 'Collab', '{collab}'),
 ('aa-plan', 'AA', '{aa}');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, severities, priority) VALUES ('voice-plan', 'Voice', '{spec}', '{sev2}', 50);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, provider_id) VALUES
 ('spec-plan', 1, '0', 'push', 'contact', 1, NULL),
 ('spec-plan', 2, '1 min', 'sms', 'contact', 1, NULL),
 ('collab-plan', 1, '0', 'sms', 'contact', 1, NULL),
 ('collab-plan', 2, '1 min', 'sms', 'contact', 2, NULL),
 ('aa-plan', 1, '0', 'webhook', 'endpoint', NULL, 'hook'),
 ('aa-plan', 2, '1 min', 'sms', 'contact', 2, NULL);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, voice_retries) VALUES
 ('voice-plan', 1, '0', 'voice', 'contact', 2, 3),
 ('voice-plan', 2, '10 min', 'sms', 'contact', 2, 0);" >/dev/null

EV=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{spec}', 'rule', 'Router <down>', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV, 'spec', 'sev1')" >/dev/null
ESC=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV AND pool = 'spec'")

# sink_body PATTERN: the body of the last sink request whose body matches
sink_token() { python3 -c '
import json, re, sys
tok = None
for line in open(sys.argv[1]):
    e = json.loads(line)
    m = re.search(sys.argv[2] + r"/ack/([A-Za-z0-9_-]+)", e.get("body", ""))
    if m: tok = m.group(1)
if tok is None: sys.exit(1)
print(tok)' "$IT_DIR/api.log" "$BASE"; }
wait_for 30 sink_token
ok $? "the push page reaches the sink with its ack link"
TOKEN=$(sink_token)

# --- ack link -----------------------------------------------------------------
page=$(curl -s "$BASE/ack/$TOKEN")
echo "$page" | grep -q '<form method="post"' && echo "$page" | grep -q 'Router &lt;down&gt;'
ok $? "GET shows a confirmation page with a form, the title escaped"
is "$(q $DB "SELECT state || ' ' || (SELECT count(*) FROM evmgmt.escalation_ack WHERE escalation_id = $ESC) FROM evmgmt.escalation WHERE escalation_id = $ESC")" \
	"active 0" "the GET acknowledged nothing"
FORGED=$(python3 -c 'import sys; t = sys.argv[1]; i = 40; print(t[:i] + ("B" if t[i] != "B" else "C") + t[i+1:])' "$TOKEN")
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/ack/$FORGED")" "404" "a forged token is answered 404"
is "$(q $DB "SELECT reason FROM evmgmt.listener_refusal ORDER BY refusal_id DESC LIMIT 1")" "token bad_signature" "and recorded with its reason"
is "$(q $DB "SELECT state FROM evmgmt.escalation WHERE escalation_id = $ESC")" "active" "the forged POST changed nothing"
curl -s -X POST "$BASE/ack/$TOKEN" | grep -q "Thank you, Dana"
ok $? "POST acknowledges"
is "$(q $DB "SELECT e.state || ' ' || a.channel || ' ' || (e.next_due_at IS NULL) FROM evmgmt.escalation e JOIN evmgmt.escalation_ack a USING (escalation_id) WHERE e.escalation_id = $ESC")" \
	"acknowledged push true" "the escalation is acknowledged via push and nothing more is due"
curl -s -X POST "$BASE/ack/$TOKEN" | grep -q "already acknowledged by Dana via push"
ok $? "a second POST answers already acknowledged by Dana via push"

# --- SMS reply ----------------------------------------------------------------
EV2=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{collab}', 'rule', 'Queue spike', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV2, 'collab', 'sev2')" >/dev/null
ESC2=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV2 AND pool = 'collab'")
# the Twilio request is form-encoded: decode its Body
sms_hint() { python3 -c '
import json, re, sys, urllib.parse
for line in open(sys.argv[1]):
    e = json.loads(line)
    b = urllib.parse.parse_qs(e.get("body", "")).get("Body", [""])[0]
    if re.match(r"Reply 1 to ack, 2 to pass \(ACK [0-9]{6}\)\. .*Queue spike", b): sys.exit(0)
sys.exit(1)' "$IT_DIR/api.log"; }
wait_for 30 sms_hint
ok $? "the SMS page reaches the sink with its reply hint and code"
r=$(python3 test/tools/listener_client.py twilio --tamper Body=2 "$BASE/twilio/sms" smstoken From=+15550111 Body=1 MessageSid=SM1)
is "${r%% *}" "403" "a changed parameter breaks the Twilio signature (403)"
r=$(python3 test/tools/listener_client.py twilio --sign-url "http://evil.example/twilio/sms" "$BASE/twilio/sms" smstoken From=+15550111 Body=1 MessageSid=SM2)
is "${r%% *}" "403" "a signature for another URL is refused (403)"
r=$(python3 test/tools/listener_client.py twilio "$BASE/twilio/sms" smstoken From=+15559999 Body=1 MessageSid=SM3)
is "${r%% *}" "403" "a reply from a number that was never paged is refused (403)"
is "$(q $DB "SELECT state FROM evmgmt.escalation WHERE escalation_id = $ESC2")" "active" "refused replies changed nothing"
r=$(python3 test/tools/listener_client.py twilio "$BASE/twilio/sms" smstoken From=+15550111 Body=' ack ' MessageSid=SM4)
echo "$r" | grep -q "^200 .*<Response><Message>Acknowledged escalation $ESC2"
ok $? "a signed reply ACK acknowledges and is answered with TwiML"
is "$(q $DB "SELECT a.channel || ' ' || a.source FROM evmgmt.escalation_ack a WHERE a.escalation_id = $ESC2")" "sms +******11" \
	"escalation_ack keeps the channel and the masked number"
q $DB "SELECT acknowledgment FROM evmgmt.escalation_history WHERE escalation_id = $ESC2 LIMIT 1" | grep -Eq '^acknowledged by Dana via sms at [0-9]{2}:[0-9]{2}:[0-9]{2}$'
ok $? "escalation_history shows acknowledged by Dana via sms at HH:MI:SS"

# --- signed webhook callback ----------------------------------------------------
EV3=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'Bot drift', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV3, 'aa', 'sev2')" >/dev/null
ESC3=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV3 AND pool = 'aa'")
hook_token() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["path"].endswith("/hook"):
        t = json.loads(e["body"]).get("data", {}).get("ack_token")
        if t: print(t); sys.exit(0)
sys.exit(1)' "$IT_DIR/api.log"; }
wait_for 30 hook_token
ok $? "the webhook payload carries an ack token"
HT=$(hook_token)
r=$(python3 test/tools/listener_client.py callback "$BASE/callback" whsec_d3Jvbmc= "{\"token\": \"$HT\", \"action\": \"acknowledge\", \"contact_id\": 2}")
is "${r%% *}" "403" "a callback signed with another secret is refused"
r=$(python3 test/tools/listener_client.py callback "$BASE/callback" whsec_c2VjcmV0 "{\"token\": \"$HT\", \"action\": \"acknowledge\", \"contact_id\": 2}")
is "$(q $DB "SELECT e.state || ' ' || a.channel FROM evmgmt.escalation e JOIN evmgmt.escalation_ack a USING (escalation_id) WHERE e.escalation_id = $ESC3")" \
	"acknowledged webhook" "a signed callback acknowledges via webhook"
# a callback may resolve the pool condition its escalation was for
EV7=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{aa}', 'rule', 'Bot loop', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV7, 'aa', 'sev2')" >/dev/null
esc7() { ESC7=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV7 AND pool = 'aa'"); [ -n "$ESC7" ]; }
wait_for 10 esc7
hook_token_for() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["path"].endswith("/hook"):
        d = json.loads(e["body"]).get("data", {})
        if str(d.get("escalation_id")) == sys.argv[2] and d.get("ack_token"): print(d["ack_token"]); sys.exit(0)
sys.exit(1)' "$IT_DIR/api.log" "$1"; }
wait_for 30 hook_token_for "$ESC7"
HT7=$(hook_token_for "$ESC7")
r=$(python3 test/tools/listener_client.py callback "$BASE/callback" whsec_c2VjcmV0 "{\"token\": \"$HT7\", \"action\": \"resolve\"}")
echo "$r" | grep -q '^409 .*cannot resolve pool aa of event [0-9]*: it is classified'
ok $? "a resolve callback for a pool nobody is responding to yet is answered 409 with the reason"
q $DB "SELECT evmgmt.diagnose_pool($EV7, 'aa', 'technology', 'routing', 'loop in the bot flow'); SELECT evmgmt.log_response($EV7, 'aa', 'outage_message', 'flow rolled back')" >/dev/null
r=$(python3 test/tools/listener_client.py callback "$BASE/callback" whsec_c2VjcmV0 "{\"token\": \"$HT7\", \"action\": \"resolve\"}")
is "${r%% *} $(q $DB "SELECT state FROM evmgmt.pool_condition WHERE event_id = $EV7 AND pool = 'aa'")" "200 resolved" \
	"once responding, a signed resolve callback resolves the pool condition it was sent for"

# --- the push page's action button ------------------------------------------------
push_actions() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["path"].endswith("/dana"):
        a = e["headers"].get("actions")
        if a: print(a); sys.exit(0)
sys.exit(1)' "$IT_DIR/api.log"; }
is "$(push_actions)" "http, Acknowledge, $BASE/ack/$TOKEN, method=POST, clear=true" \
	"the push page carries an Acknowledge button that POSTs to its ack link"

# --- voice: the call gathers one digit and posts it to the listener ----------------
EV5=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{spec}', 'rule', 'Voice & ring', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV5, 'spec', 'sev2')" >/dev/null
ESC5=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV5 AND pool = 'spec'")
# calls count | calls last: how many calls to Eli about this event, or the TwiML of the last one
calls() { python3 -c '
import json, sys, urllib.parse
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["path"].endswith("/Calls.json"):
        f = urllib.parse.parse_qs(e.get("body", ""))
        if f.get("To") == ["+15550122"] and "Voice &amp; ring" in f.get("Twiml", [""])[0]:
            n += 1
            last = f["Twiml"][0]
if sys.argv[2] == "count": print(n)
elif n: print(last)
else: sys.exit(1)' "$IT_DIR/api.log" "$1"; }
two_calls() { [ "$(calls count)" -ge 2 ]; }
wait_for 30 two_calls
ok $? "the voice step calls, and calls again after evmgmt.voice_retry_interval while nobody answers"
TW=$(calls last)
GATHER=$(python3 -c 'import re, sys, html; m = re.search(r"<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"10\" action=\"([^\"]+)\" method=\"POST\"><Say>([^<]*)</Say></Gather>", sys.argv[1]); print(html.unescape(m.group(1)) if m else "")' "$TW")
echo "$GATHER" | grep -Eq "^$BASE/twilio/voice\?token=[A-Za-z0-9_-]{63}$"
ok $? "its TwiML says the message inside a one-digit <Gather> that posts to /twilio/voice with the page's token"
r=$(python3 test/tools/listener_client.py twilio --tamper Digits=2 "$GATHER" voicetoken CallSid=CA1 From=+15550100 To=+15550122 Digits=1)
is "${r%% *}" "403" "a keypress with a changed digit breaks the signature (403)"
r=$(python3 test/tools/listener_client.py twilio "$BASE/twilio/voice?token=$TOKEN" voicetoken CallSid=CA1 From=+15550100 To=+15550122 Digits=1)
is "${r%% *}" "403" "a push page's token cannot act through the voice path (403)"
r=$(python3 test/tools/listener_client.py twilio "$GATHER" voicetoken CallSid=CA1 From=+15550100 To=+15550122 Digits=1)
echo "$r" | grep -q "^200 .*<Response><Say>Acknowledged escalation $ESC5 (Voice &amp; ring). Thank you, Eli.</Say>"
ok $? "pressing 1 acknowledges and is answered with <Say>"
n_calls=$(calls count)
is "$(q $DB "SELECT e.state || ' ' || a.channel || ' ' || a.source FROM evmgmt.escalation e JOIN evmgmt.escalation_ack a USING (escalation_id) WHERE e.escalation_id = $ESC5")" \
	"acknowledged voice +******22" "the escalation is acknowledged via voice with the masked number"
sleep 7
is "$(calls count)" "$n_calls" "no further voice retry is placed after the keypress (two intervals later)"

# --- Twilio's documented example ------------------------------------------------------
is "$(q $DB "SELECT evmgmt.twilio_signature('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2',
	ARRAY['CallSid', 'CA1234567890ABCDE', 'Caller', '+14158675309', 'Digits', '1234', 'From', '+14158675309', 'To', '+18005551212'])")" \
	"RSOYDt4T1cUTdK1PDd93/VVr8B8=" "the example from Twilio's request validation docs verifies"

# --- continuous testing of the paging path ---------------------------------------------
ready() { q $DB "SELECT string_agg(plan_id || '/' || step_no || ' ' || problem, ', ' ORDER BY plan_id, step_no, problem) FROM evmgmt.paging_readiness WHERE contact_id = 2"; }
ready | grep -q "voice-plan/1 unverified_channel"
ok $? "paging_readiness flags Eli's never-tested voice number for the voice step"
TEST_SMS=$(q $DB "SELECT evmgmt.send_test_page(2, 'sms')")
test_sms() { python3 -c '
import json, sys, urllib.parse
for line in open(sys.argv[1]):
    e = json.loads(line)
    b = urllib.parse.parse_qs(e.get("body", "")).get("Body", [""])[0]
    if b.startswith("evmgmt test page for Eli. Reply 1"): sys.exit(0)
sys.exit(1)' "$IT_DIR/api.log"; }
wait_for 30 test_sms
ok $? "a test page reaches the sink as an SMS asking for a reply"
r=$(python3 test/tools/listener_client.py twilio "$BASE/twilio/sms" smstoken From=+15550122 Body=1 MessageSid=SM9)
echo "$r" | grep -q "^200 .*This phone is confirmed for pages"
ok $? "replying 1 confirms it"
is "$(q $DB "SELECT (verified_at IS NOT NULL) || ' ' || address FROM evmgmt.channel_verification WHERE contact_id = 2 AND channel = 'sms'")" \
	"true +******22" "channel_verification shows Eli's SMS number verified (masked)"
TEST_VOICE=$(q $DB "SELECT evmgmt.send_test_page(2, 'voice')")
test_call() { python3 -c '
import json, re, sys, html, urllib.parse
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["path"].endswith("/Calls.json"):
        t = urllib.parse.parse_qs(e.get("body", "")).get("Twiml", [""])[0]
        m = re.search(r"action=\"([^\"]+)\".*<Say>Press 1 to confirm", t)
        if "test page from evmgmt for Eli" in t and m: print(html.unescape(m.group(1))); sys.exit(0)
sys.exit(1)' "$IT_DIR/api.log"; }
wait_for 30 test_call
ok $? "a voice test page calls with a <Gather> for the confirmation"
r=$(python3 test/tools/listener_client.py twilio "$(test_call)" voicetoken CallSid=CA9 From=+15550100 To=+15550122 Digits=1)
echo "$r" | grep -q "This phone is confirmed for pages"
ok $? "pressing 1 confirms the voice number"
is "$(q $DB "SELECT count(*) FROM evmgmt.paging_readiness WHERE plan_id = 'voice-plan' AND step_no = 1 AND contact_id = 2")" "0" \
	"and paging_readiness no longer flags it"
TEST_PUSH=$(q $DB "SELECT evmgmt.send_test_page(1, 'push')")
push_test() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    a = e["headers"].get("actions", "")
    if e["path"].endswith("/dana") and a.startswith("http, Confirm, "): print(a.split(", ")[2]); sys.exit(0)
sys.exit(1)' "$IT_DIR/api.log"; }
wait_for 30 push_test
ok $? "a push test page carries a Confirm button"
PT_URL=$(push_test)
# a real browser opens the link, sees what it confirms, and presses the button
out=$(timeout 60 python3 test/tools/browser.py "$PT_URL" 2>&1)
echo "$out" | head -1 | grep -q '"title": "Confirm test page?".*Test page [0-9]* for Dana on push (\*\*\*)'
r=$?; ok $r "headless Chromium shows the test page's confirmation page"; [ $r -eq 0 ] || echo "$out" | sed 's/^/# /' 
echo "$out" | tail -1 | grep -q '"title": "Confirmed".*This channel is verified for pages'
r=$?; ok $r "pressing its Confirm button confirms"; [ $r -eq 0 ] || echo "$out" | sed 's/^/# /' 
is "$(q $DB "SELECT count(*) FROM evmgmt.paging_test WHERE confirmed_at IS NOT NULL")" "3" "three test pages confirmed, each through its own channel"
is "$(q $DB "SELECT evmgmt.send_test_page(2, 'push')" 2>&1 | grep -o 'contact 2 has no push address')" "contact 2 has no push address" \
	"a test page to a channel the contact lacks is refused"
# a contact tests their own channels from their own role; at most 5 an hour
IT_CLEANUP+=("psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS evm_it_eli'")
q postgres "DROP ROLE IF EXISTS evm_it_eli; CREATE ROLE evm_it_eli IN ROLE evmgmt_responder" >/dev/null
q $DB "UPDATE evmgmt.contact SET role_name = 'evm_it_eli' WHERE contact_id = 2" >/dev/null
as_eli() { psql -XqAt -v ON_ERROR_STOP=1 -d $DB -c "SET ROLE evm_it_eli" -c "$1" 2>&1; }
r1=$(as_eli "SELECT evmgmt.send_test_page(2, 'sms') > 0")
r2=$(as_eli "SELECT evmgmt.send_test_page(1, 'sms')" | grep -o 'permission denied to send a test page to contact 1')
is "$r1 / $r2" "t / permission denied to send a test page to contact 1" "a contact sends test pages to their own channels, not to others'"
as_eli "SELECT evmgmt.send_test_page(2, 'sms')" >/dev/null
as_eli "SELECT evmgmt.send_test_page(2, 'sms')" >/dev/null
r=$(as_eli "SELECT evmgmt.send_test_page(2, 'sms')" | grep -o 'contact 2 had 5 test pages in the last hour')
is "$r" "contact 2 had 5 test pages in the last hour" "the sixth test page within an hour is refused"
# --- e-mail: the link in a real message, opened in a real browser -------------------------
q $DB "INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, severities, priority) VALUES ('mail-plan', 'Mail', '{collab}', '{sev2}', 50);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES ('mail-plan', 1, '0', 'email', 'contact', 1),
 ('mail-plan', 2, '10 min', 'sms', 'contact', 1)" >/dev/null
EV6=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{collab}', 'rule', 'Browser check', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV6, 'collab', 'sev2')" >/dev/null
esc6() { ESC6=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV6 AND pool = 'collab'"); [ -n "$ESC6" ]; }
wait_for 10 esc6
mail_link() { python3 -c '
import json, re, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    t = (e.get("parsed") or {}).get("text") or ""
    m = re.search(r"Acknowledge: (\S+/ack/[A-Za-z0-9_-]{63})", t)
    if "Browser check" in t and m and e["rcpt"] == ["<dana@example.com>"]: print(m.group(1)); sys.exit(0)
sys.exit(1)' "$IT_DIR/mail.log"; }
wait_for 30 mail_link
r=$?; ok $r "the e-mail page reaches the SMTP sink with its ack link"
[ $r -eq 0 ] || { tail -c 1500 "$IT_DIR/mail.log" | sed 's/^/# /'; q $DB "SELECT notification_id, kind, channel, state, last_error FROM evmgmt.notification WHERE escalation_id = $ESC6" | sed 's/^/# /'; }
MAIL_URL=$(mail_link)
# a token with only the test bit naming this escalation's id is a test token: it acknowledges nothing
T8=$(q $DB "SELECT evmgmt.action_token($ESC6, 1, 'email', 8)")
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/ack/$T8")" "404" "a test page's token cannot acknowledge an escalation (404)"
TEXP=$(q $DB "SELECT evmgmt.action_token($ESC6, 1, 'email', 3, now() - interval '1 minute')")
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/ack/$TEXP")" "404" "an expired token is refused (404)"
is "$(q $DB "SELECT reason FROM evmgmt.listener_refusal ORDER BY refusal_id DESC LIMIT 1")" "token expired" "and recorded as expired"
# a token made by another database (its own key, its own name in the MAC) is refused here
q postgres "DROP DATABASE IF EXISTS ${DB}_other" >/dev/null 2>&1
IT_CLEANUP+=("psql -XqAt -d postgres -c 'DROP DATABASE IF EXISTS ${DB}_other'")
q postgres "CREATE DATABASE ${DB}_other" >/dev/null
q ${DB}_other "CREATE EXTENSION evmgmt" >/dev/null
TOTHER=$(q ${DB}_other "SELECT evmgmt.action_token($ESC6, 1, 'email')")
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/ack/$TOTHER")" "404" "a token of another database naming the same escalation is refused (404)"
# even with this database's key copied there, the database name inside the MAC differs
KEY=$(q $DB "SELECT key_id || ' ' || encode(secret, 'hex') FROM evmgmt.action_key WHERE retired_at IS NULL")
q ${DB}_other "DELETE FROM evmgmt.action_key; INSERT INTO evmgmt.action_key (key_id, secret) VALUES (${KEY%% *}, decode('${KEY#* }', 'hex'))" >/dev/null
TOTHER2=$(q ${DB}_other "SELECT evmgmt.action_token($ESC6, 1, 'email')")
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/ack/$TOTHER2")" "404" "and so is one signed with a copy of this database's key there"
is "$(q $DB "SELECT state FROM evmgmt.escalation WHERE escalation_id = $ESC6")" "active" "the escalation stays active through all of them"
# a rotated key: the old token still works for the grace, not after
q $DB "SELECT evmgmt.rotate_action_key()" >/dev/null
is "$(curl -s -o /dev/null -w '%{http_code}' "$MAIL_URL")" "200" "after rotate_action_key a page's token of the previous key still opens its page"
out=$(timeout 60 python3 test/tools/browser.py "$MAIL_URL" 2>&1)
echo "$out" | head -1 | grep -q '"title": "Acknowledge?".*Browser check'
r=$?; ok $r "headless Chromium shows the e-mail link's confirmation page"; [ $r -eq 0 ] || echo "$out" | sed 's/^/# /'
echo "$out" | tail -1 | grep -q '"title": "Acknowledged".*Thank you, Dana'
r=$?; ok $r "and pressing Acknowledge acknowledges"; [ $r -eq 0 ] || echo "$out" | sed 's/^/# /'
is "$(q $DB "SELECT e.state || ' ' || a.channel FROM evmgmt.escalation e JOIN evmgmt.escalation_ack a USING (escalation_id) WHERE e.escalation_id = $ESC6")" \
	"acknowledged email" "the escalation is acknowledged via the e-mail link"
q $DB "UPDATE evmgmt.action_key SET retired_at = now() - interval '2 days' WHERE retired_at IS NOT NULL" >/dev/null
is "$(curl -s -o /dev/null -w '%{http_code}' "$MAIL_URL")" "404" "once the previous key is retired longer than the grace, its tokens are refused"

# --- abuse: the listener keeps serving, the worker keeps dispatching ------------------
big=$(head -c 100000 /dev/zero | tr '\0' 'a')
code=$(printf '%s' "$big" | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- "$BASE/ack/$TOKEN")
python3 test/tools/listener_client.py raw 127.0.0.1 "$LP" "474554202f00ff20485454502f312e310d0a0d0a" >/dev/null
python3 test/tools/listener_client.py slow 127.0.0.1 "$LP" 8 >/dev/null &
slow=$!
python3 test/tools/listener_client.py hold 127.0.0.1 "$LP" 1000 8 >"$IT_DIR/hold.out" &
hold=$!
wait_for 20 grep -q "open 1000" "$IT_DIR/hold.out"
held=$?
# meanwhile a page is dispatched and acknowledged through the listener
EV4=$(q $DB "SELECT evmgmt.open_event('system', 'BER', '{spec}', 'rule', 'During the storm', now(), NULL, 'router_failure')")
q $DB "SELECT evmgmt.classify_pool($EV4, 'spec', 'sev1')" >/dev/null
ESC4=$(q $DB "SELECT escalation_id FROM evmgmt.escalation WHERE event_id = $EV4 AND pool = 'spec'")
page4() { [ "$(sink_token)" != "$TOKEN" ]; }
wait_for 30 page4
dispatched=$?
T4=$(sink_token)
curl -s -m 10 -X POST "$BASE/ack/$T4" | grep -q "Thank you, Dana"
acked=$?
[ "$code" = 413 ] && [ $held -eq 0 ] && [ $dispatched -eq 0 ] && [ $acked -eq 0 ]
ok $? "a 100 kB body gets 413 and, with 1,000 held connections, a 1 byte/s client and a malformed request, a page is dispatched and acknowledged (413=$code held=$held dispatched=$dispatched acked=$acked)"
wait "$slow" "$hold" 2>/dev/null
is "$(q $DB "SELECT state FROM evmgmt.escalation WHERE escalation_id = $ESC4")" "acknowledged" "that escalation is acknowledged"
is "$(q postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'evmgmt listener'")" "1" "the listener process is still the one running"

it_done

#!/usr/bin/env bash
# The person channels against local sinks: e-mail through SMTP (a
# well-formed RFC 5322 message, checked with Python's email parser; AUTH), sms and
# a 3,000-character line and non-ASCII names arrive as a 7-bit message with short
# lines (quoted-printable, RFC 2047) and decode back to the original; sms and
# voice through a Twilio-compatible API (form POST, basic auth, idempotency
# token), push through an ntfy-compatible API (title, priority and tags from
# the severity, bearer token).
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 16
DB=evmgmt_it_channels
new_db $DB
start_smtp_sink mail
SMTP=$SINK_PORT
start_http_sink api
API=$SINK_PORT
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }

q $DB "
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address, settings) VALUES
 ('mail', 'email', 'smtp', 'smtp://127.0.0.1:$SMTP', NULL, 'roc@example.com', '{\"from_name\": \"ROC Zürich\"}'),
 ('sms', 'sms', 'twilio', 'http://127.0.0.1:$API/ok/', 'AC0123', '+15550100', '{}'),
 ('voice', 'voice', 'twilio', 'http://127.0.0.1:$API/ok', 'AC0123', '+15550100', '{}'),
 ('push', 'push', 'ntfy', 'http://127.0.0.1:$API/ok', NULL, NULL, '{}');
INSERT INTO evmgmt.provider_secret VALUES ('sms', 'token-1'), ('voice', 'token-1'), ('push', 'tk_push');
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, subject, body, payload) VALUES
 ('test', 'email', 'mail', 'alice@example.com', 'Sev1 — queue “billing” down', E'First line\n.starts with a dot\nlast line ünïcode', '{\"severity\": \"sev1\"}'),
 ('test', 'sms', 'sms', '+15550111', NULL, 'SEV1 billing down & 30% abandon', '{\"severity\": \"sev1\"}'),
 ('test', 'voice', 'voice', '+15550112', NULL, 'Severity one <billing> down', '{\"severity\": \"sev1\"}'),
 ('test', 'push', 'push', 'roc-alerts', 'Sev2 — Ärger', 'billing degraded', '{\"severity\": \"sev2\"}');" >/dev/null

wait_for 15 sql_true $DB "SELECT count(*) = 4 FROM evmgmt.notification WHERE state = 'sent'"
ok $? "e-mail, sms, voice and push are all sent"

q $DB "SELECT channel, idempotency_key FROM evmgmt.notification" >"$IT_DIR/keys"
python3 - "$IT_DIR/mail.log" "$IT_DIR/api.log" "$IT_DIR/keys" <<'PY' >"$IT_DIR/check"
import base64, json, sys, urllib.parse
keys = dict(l.strip().split("|") for l in open(sys.argv[3]))
mail = [json.loads(l) for l in open(sys.argv[1])]
api = [json.loads(l) for l in open(sys.argv[2])]
m = mail[0]
p = m["parsed"]
h = p["headers"]
print("envelope", m["mail_from"] == "<roc@example.com>" and m["rcpt"] == ["<alice@example.com>"])
print("headers", all(k in h for k in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type")))
print("subject", p["subject"] == "Sev1 — queue “billing” down")
print("from", h["From"] == "ROC Zürich <roc@example.com>" and h["To"] == "alice@example.com")
print("msgid", h["Message-ID"] == "<%s@example.com>" % keys["email"])
import email, email.policy
raw = email.message_from_string(m["raw"], policy=email.policy.default)
part = raw.get_body(preferencelist=("plain",))
print("body", part.get_content_type() == "text/plain" and part.get_content_charset() == "utf-8"
      and p["text"].replace("\r\n", "\n").rstrip("\n") == "First line\n.starts with a dot\nlast line ünïcode" and not p["defects"])
by = {}
for r in api:
    by["voice" if r["path"].endswith("Calls.json") else "sms" if r["path"].endswith("Messages.json") else "push"] = r
auth = "Basic " + base64.b64encode(b"AC0123:token-1").decode()
s = by["sms"]
f = urllib.parse.parse_qs(s["body"])
print("sms", s["path"] == "/ok/2010-04-01/Accounts/AC0123/Messages.json" and s["headers"]["authorization"] == auth
      and f == {"To": ["+15550111"], "From": ["+15550100"], "Body": ["SEV1 billing down & 30% abandon"]}
      and s["headers"]["i-twilio-idempotency-token"] == keys["sms"]
      and s["headers"]["content-type"] == "application/x-www-form-urlencoded")
v = by["voice"]
f = urllib.parse.parse_qs(v["body"])
print("voice", v["path"] == "/ok/2010-04-01/Accounts/AC0123/Calls.json" and v["headers"]["authorization"] == auth
      and f["To"] == ["+15550112"] and f["Twiml"] == ["<Response><Say>Severity one &lt;billing&gt; down</Say></Response>"])
u = by["push"]
import email.header
title = str(email.header.make_header(email.header.decode_header(u["headers"]["title"])))
print("push", u["path"] == "/ok/roc-alerts" and u["body"] == "billing degraded" and title == "Sev2 — Ärger")
print("push_meta", u["headers"]["priority"] == "4" and u["headers"]["tags"] == "warning,sev2"
      and u["headers"]["authorization"] == "Bearer tk_push")
PY
for c in envelope headers subject from msgid body sms voice push push_meta; do
	case $c in
		envelope) d="SMTP envelope: MAIL FROM the provider's address, RCPT TO the recipient" ;;
		headers) d="the message has Date, From, To, Subject, Message-ID, MIME-Version, Content-Type" ;;
		subject) d="a non-ASCII subject survives RFC 2047 encoding" ;;
		from) d="From carries the provider's display name" ;;
		msgid) d="Message-ID is derived from the idempotency key" ;;
		body) d="text/plain UTF-8 body, dot-stuffing undone, no parser defects" ;;
		sms) d="sms: Twilio Messages.json form POST with basic auth and idempotency token" ;;
		voice) d="voice: Twilio Calls.json with escaped TwiML <Say>" ;;
		push) d="push: ntfy POST to the topic with the title" ;;
		push_meta) d="push: priority and tags from the severity, bearer token" ;;
	esac
	is "$(grep "^$c " "$IT_DIR/check")" "$c True" "$d"
done

# A 3,000-character line and non-ASCII names: a 7-bit message whose lines are
# short, and that decodes back to the original (Python's email package).
q $DB "UPDATE evmgmt.channel_provider SET settings = '{\"from_name\": \"Équipe ROC — Zürich, Île-de-France\"}' WHERE provider_id = 'mail';
       INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, subject, body) VALUES
       ('test', 'email', 'mail', 'dora@example.com', repeat('Störung „Abrechnung“ – ', 8) || 'Ende',
        'Kopf' || chr(10) || repeat('Warteschlange überlastet, ', 115) || 'Schlußwort' || chr(10) || '.Fuß')" >/dev/null
wait_for 15 sql_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE recipient = 'dora@example.com'"
python3 - "$IT_DIR/mail.log" <<'PY' >"$IT_DIR/long"
import email, email.policy, json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if '"<dora@example.com>"' in l][0]
raw = r["raw"]
msg = email.message_from_string(raw, policy=email.policy.default)
body = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n").rstrip("\n")
want = "Kopf\n" + "Warteschlange überlastet, " * 115 + "Schlußwort\n.Fuß"
print("long", len(want.split("\n")[1]) == 3000 and body == want
      and str(msg["Subject"]) == "Störung „Abrechnung“ – " * 8 + "Ende"
      and msg["From"].addresses[0].display_name == "Équipe ROC — Zürich, Île-de-France"
      and msg["From"].addresses[0].addr_spec == "roc@example.com" and not msg.defects)
lines = raw.split("\r\n")
print("sevenbit", raw.isascii() and max(len(l) for l in lines) <= 998
      and all(len(l) <= 78 for l in lines if not l.startswith("Content-Type: multipart/mixed; boundary=")))
PY
is "$(grep "^long " "$IT_DIR/long")" "long True" "a 3,000-character line and non-ASCII subject and From name decode back to the original"
is "$(grep "^sevenbit " "$IT_DIR/long")" "sevenbit True" "the message is 7-bit, no line over 78 characters but libcurl's boundary header, none over 998 (quoted-printable, RFC 2047)"

# SMTP AUTH with the provider's username and secret.
q $DB "UPDATE evmgmt.channel_provider SET username = 'roc-relay' WHERE provider_id = 'mail';
       INSERT INTO evmgmt.provider_secret VALUES ('mail', 's3cret');
       INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'email', 'mail', 'carol@example.com', 'with auth')" >/dev/null
wait_for 10 sql_true $DB "SELECT state = 'sent' FROM evmgmt.notification WHERE body = 'with auth'"
is "$(python3 -c 'import json, sys; r = [json.loads(l) for l in open(sys.argv[1])][-1]; print(r["rcpt"][0], r["auth"]["user"], r["auth"]["password"])' "$IT_DIR/mail.log")" \
	"<carol@example.com> roc-relay s3cret" "SMTP AUTH uses the provider's username and secret"

# A relay that is down: retried, not lost.
q $DB "UPDATE evmgmt.channel_provider SET endpoint = 'smtp://127.0.0.1:$(free_port)' WHERE provider_id = 'mail';
       INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'email', 'mail', 'bob@example.com', 'relay down')" >/dev/null
wait_for 10 sql_true $DB "SELECT state = 'retry' AND last_error ~ 'onnect' FROM evmgmt.notification WHERE body = 'relay down'"
ok $? "an unreachable SMTP relay leads to a retry with the error kept"
q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'email', 'mail', 'not an address', 'bad address')" >/dev/null
wait_for 10 sql_true $DB "SELECT state = 'dead' AND last_error = '\"not an address\" is not an e-mail address' FROM evmgmt.notification WHERE body = 'bad address'"
ok $? "an invalid e-mail address is dead at once with a clear error"

it_done

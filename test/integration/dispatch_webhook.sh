#!/usr/bin/env bash
# Webhook dispatch end to end: notifications written to the outbox reach a
# healthy sink with valid Standard Webhooks signatures (checked by the sink's
# own HMAC code); a sink answering 500, one that hangs and a port that
# refuses connections are retried with backoff and end dead with their error
# kept, without delaying the healthy deliveries of the same batch beyond the
# request timeout; 4xx is not retried; 429 honours Retry-After; the outbound
# allow-list refuses an address with a clear error.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 21
DB=evmgmt_it_webhook
SECRET='whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'
new_db $DB
set_guc evmgmt.request_timeout 2s
set_guc evmgmt.connect_timeout 1s
set_guc evmgmt.max_attempts 3
set_guc evmgmt.backoff_base 300ms
set_guc evmgmt.backoff_cap 2s

wait_for 20 has_worker $DB
ok $? "the new database gets its worker"

start_http_sink good --secret "$SECRET"
GOOD=$SINK_PORT
start_http_sink bad --secret "$SECRET" --retry-after 1
BAD=$SINK_PORT
REFUSED=$(free_port)

q $DB "
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES
 ('good', 'webhook', 'webhook', 'http://127.0.0.1:$GOOD/ok/hook'),
 ('e500', 'webhook', 'webhook', 'http://127.0.0.1:$BAD/500/hook'),
 ('hang', 'webhook', 'webhook', 'http://127.0.0.1:$BAD/hang/hook'),
 ('refused', 'webhook', 'webhook', 'http://127.0.0.1:$REFUSED/hook'),
 ('e400', 'webhook', 'webhook', 'http://127.0.0.1:$BAD/400/hook'),
 ('e429', 'webhook', 'webhook', 'http://127.0.0.1:$BAD/429/hook');
INSERT INTO evmgmt.provider_secret SELECT provider_id, '$SECRET' FROM evmgmt.channel_provider;" >/dev/null

# One transaction: the failing endpoints first, so they share the batch.
q $DB "
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, subject, body, payload)
SELECT 'test', 'webhook', p, 'ops', 'subject ' || p, 'body of ' || p, '{\"severity\": \"sev2\"}'
FROM unnest(ARRAY['e500', 'hang', 'refused', 'e400', 'e429']) p;
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, subject, body, payload)
SELECT 'test', 'webhook', 'good', 'ops', 'subject ' || i, 'body ' || i || ' ünïcode', jsonb_build_object('i', i)
FROM generate_series(1, 20) i;" >/dev/null
T0=$(q $DB "SELECT extract(epoch FROM max(created_at)) FROM evmgmt.notification")

wait_for 30 sql_true $DB "SELECT count(*) = 20 FROM evmgmt.notification WHERE provider_id = 'good' AND state = 'sent'"
ok $? "20 notifications to the healthy sink are sent"
is "$(log_lines good)" 20 "the healthy sink received each exactly once"

python3 - "$IT_DIR/good.log" "$T0" "$(q $DB "SELECT string_agg(idempotency_key::text, ',') FROM evmgmt.notification WHERE provider_id = 'good'")" <<'PY' >"$IT_DIR/check.out"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = set(sys.argv[3].split(","))
print("sig", all(r["sig_valid"] is True for r in rows))
print("ids", {r["headers"]["webhook-id"] for r in rows} == keys)
body = json.loads(rows[0]["body"])
print("shape", body["type"] == "evmgmt.test" and "ünïcode" in body["data"]["body"] and body["data"]["channel"] == "webhook"
      and rows[0]["headers"]["content-type"] == "application/json")
PY
is "$(grep '^sig ' "$IT_DIR/check.out")" "sig True" "every signature verifies with the sink's independent HMAC"
is "$(grep '^ids ' "$IT_DIR/check.out")" "ids True" "webhook-id is the notification's idempotency key"
# Order, from the recorded attempts: every healthy delivery finished before the hanging one's first attempt timed out.
# (a hanging attempt that has not timed out yet has no finished_at: it counts as later than all of them)
is "$(q $DB "SELECT max(a.finished_at) FILTER (WHERE n.provider_id = 'good') < COALESCE(min(a.finished_at) FILTER (WHERE n.provider_id = 'hang' AND a.attempt_no = 1), 'infinity')
             FROM evmgmt.delivery_attempt a JOIN evmgmt.notification n USING (notification_id)")" t \
	"healthy deliveries are not held up by the hanging sink (all finished before its timeout)"
is "$(grep '^shape ' "$IT_DIR/check.out")" "shape True" "the JSON payload carries type, data and UTF-8 text"

wait_for 60 sql_true $DB "SELECT count(*) = 3 FROM evmgmt.notification WHERE provider_id IN ('e500', 'hang', 'refused') AND state = 'dead'"
ok $? "500, hang and refused end dead"
is "$(q $DB "SELECT string_agg(provider_id || ':' || attempts, ',' ORDER BY provider_id) FROM evmgmt.notification WHERE provider_id IN ('e500', 'hang', 'refused')")" \
	"e500:3,hang:3,refused:3" "each after the retry budget of 3 attempts"
is "$(q $DB "SELECT count(*) FROM evmgmt.delivery_attempt a JOIN evmgmt.notification n USING (notification_id) WHERE provider_id IN ('e500', 'hang', 'refused')")" \
	9 "every attempt is recorded"
like_err() { sql_true $DB "SELECT last_error ~ '$2' FROM evmgmt.notification WHERE provider_id = '$1'"; }
like_err e500 '^HTTP 500: response body of [0-9]+ bytes not stored.*gave up after 3 attempts'; ok $? "the 500 keeps its status and the length of its body as last_error, never the body"
like_err hang '^timed out'; ok $? "the hang keeps a timeout as last_error"
like_err refused 'onnect'; ok $? "the refused connection keeps the connect error"
# Backoff: base 300 ms doubling with equal jitter: gaps >= 150 ms then >= 300 ms.
is "$(q $DB "SELECT bool_and(gap >= make_interval(secs => 0.15 * 2 ^ (attempt_no - 2))) FROM (
	SELECT attempt_no, started_at - lag(finished_at) OVER (PARTITION BY notification_id ORDER BY attempt_no) AS gap
	FROM evmgmt.delivery_attempt JOIN evmgmt.notification USING (notification_id) WHERE provider_id = 'e500') g WHERE gap IS NOT NULL")" \
	t "retries wait the exponential backoff"
# at least the 2 s timeout, and well short of two of them (a busy machine records the end late)
is "$(q $DB "SELECT bool_and(latency >= interval '1.9 s' AND latency < interval '3.5 s') FROM evmgmt.delivery_attempt JOIN evmgmt.notification USING (notification_id) WHERE provider_id = 'hang'")" \
	t "a hanging attempt lasts the request timeout, no longer"

wait_for 10 sql_true $DB "SELECT state = 'dead' FROM evmgmt.notification WHERE provider_id = 'e400'"
is "$(q $DB "SELECT attempts || ' ' || last_status FROM evmgmt.notification WHERE provider_id = 'e400'")" "1 400" "a 400 is not retried"

wait_for 30 sql_true $DB "SELECT state = 'dead' FROM evmgmt.notification WHERE provider_id = 'e429'"
is "$(q $DB "SELECT bool_and(gap >= interval '0.95 s') FROM (
	SELECT started_at - lag(finished_at) OVER (ORDER BY attempt_no) AS gap
	FROM evmgmt.delivery_attempt JOIN evmgmt.notification USING (notification_id) WHERE provider_id = 'e429') g WHERE gap IS NOT NULL")" \
	t "a 429 is retried after its Retry-After (1 s), not the shorter backoff"

# The allow-list: only 10.0.0.0/8 allowed, 127.0.0.1 is refused.
set_guc evmgmt.outbound_allow "10.0.0.0/8, ::1/128"
q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body) VALUES ('test', 'webhook', 'good', 'ops', 'refused by the allow-list')" >/dev/null
wait_for 10 sql_true $DB "SELECT state = 'dead' FROM evmgmt.notification WHERE body = 'refused by the allow-list'"
ok $? "a notification to an address not on the allow-list is dead"
is "$(q $DB "SELECT attempts || ' ' || last_error FROM evmgmt.notification WHERE body = 'refused by the allow-list'")" \
	"1 connection to 127.0.0.1 refused: the address is not in evmgmt.outbound_allow" "with a clear error, after one attempt"
is "$(q $DB "SELECT outcome FROM evmgmt.delivery_attempt JOIN evmgmt.notification USING (notification_id) WHERE body = 'refused by the allow-list'")" \
	refused "the attempt is recorded as refused"
is "$(log_lines good)" 20 "and nothing reached the sink"

it_done

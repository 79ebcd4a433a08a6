#!/usr/bin/env bash
# Delivery-history retention: the worker purges delivery attempts and
# finished notifications older than evmgmt.delivery_retention (in small
# batches), keeps what is younger, what is still to be sent, and what an
# escalation's history points at; -1 keeps everything.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 7
# the server log is shared with the suite's other tests: look only at what
# is logged from here on
log_from=$(($(wc -c <"$EVMGMT_CLUSTER_LOG") + 1))
DB=evmgmt_it_retention
new_db $DB
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }
PID=$(worker_pid $DB)
set_guc evmgmt.delivery_retention -1

q $DB "
ALTER TABLE evmgmt.notification DISABLE TRIGGER wake_workers;
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('old', 'webhook', 'webhook', 'http://127.0.0.1:9/');
UPDATE evmgmt.channel_provider SET active = false WHERE provider_id = 'old';
-- 2,500 sent notifications of two days ago with one attempt each, and 10 of today
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body, state, attempts, created_at, next_attempt_at, sent_at)
SELECT 'test', 'webhook', 'old', 'ops', CASE WHEN i <= 2500 THEN 'old ' ELSE 'new ' END || i, 'sent', 1,
       now() - CASE WHEN i <= 2500 THEN interval '2 days' ELSE interval '1 hour' END, now() - interval '2 days', now()
FROM generate_series(1, 2510) i;
-- an old one that is still to be retried far in the future
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body, state, attempts, created_at, next_attempt_at)
VALUES ('test', 'webhook', 'old', 'ops', 'old but pending', 'retry', 1, now() - interval '2 days', now() + interval '1 day');
INSERT INTO evmgmt.delivery_attempt (notification_id, attempt_no, started_at, finished_at, status_code, outcome)
SELECT notification_id, 1, created_at, created_at, 200, 'sent' FROM evmgmt.notification;
ALTER TABLE evmgmt.notification ENABLE TRIGGER wake_workers;" >/dev/null

sleep 1	# a window in which nothing may be purged
is "$(q $DB "SELECT count(*) FROM evmgmt.delivery_attempt")" 2511 "with retention -1 nothing is purged"

set_guc evmgmt.delivery_retention 1d
wait_for 20 sql_true $DB "SELECT count(*) = 11 FROM evmgmt.notification"
ok $? "setting the retention purges at once: the old finished notifications are gone"
is "$(q $DB "SELECT string_agg(DISTINCT split_part(body, ' ', 1), ',') FROM evmgmt.notification WHERE state = 'sent'")" new "the young ones stay"
is "$(q $DB "SELECT state FROM evmgmt.notification WHERE body = 'old but pending'")" retry "an old notification still to be sent stays"
is "$(q $DB "SELECT count(*) FROM evmgmt.delivery_attempt")" 10 "old delivery attempts are gone, young ones stay"
is "$(worker_pid $DB)" "$PID" "the worker that purged is still the same process (no error)"
is "$(tail -c +"$log_from" "$EVMGMT_CLUSTER_LOG" | grep -c 'DELETE FROM evmgmt')" 0 "the purge statements logged no error"

it_done

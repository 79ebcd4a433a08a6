#!/usr/bin/env bash
# Detection with the real worker on a synthetic day (test/data/synthetic_day.py)
# loaded by COPY into the forgiving path by a login that has only
# evmgmt_ingest: hourly chunks, then interval by interval.  Exactly the
# expected events (types, subtypes, pools, tiers); the same file re-delivered
# changes nothing; bad rows quarantined with reasons; a maintenance window
# suppresses; an outage inhibits; a flapping series pages once (notifications
# counted, delivered by the worker to a local sink); a silent feed opens a
# feed-health event and recovers when data resumes; a backfill pages nobody.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 17
DB=evmgmt_it_detection
new_db $DB
start_http_sink hook
ETL=evm_it_etl
psql -XqAt -d postgres -c "DROP ROLE IF EXISTS $ETL" -c "CREATE ROLE $ETL LOGIN PASSWORD 'etl' IN ROLE evmgmt_ingest" >/dev/null
IT_CLEANUP+=("psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS $ETL'")
etl() { PGUSER=$ETL PGPASSWORD=etl psql -XqAt -v ON_ERROR_STOP=1 -h 127.0.0.1 -d $DB "$@"; }

# the day: 96 intervals ending at the last full quarter hour
T0=$(q $DB "SELECT to_char(date_trunc('hour', now()) + floor(extract(minute FROM now()) / 15) * interval '15 minutes' - interval '24 hours', 'YYYY-MM-DD\"T\"HH24:MI:SS+00:00') FROM (SELECT set_config('TimeZone', 'UTC', false)) z")
diag "day starts at $T0"
k() { q $DB "SELECT '$T0'::timestamptz + $1 * interval '15 minutes'"; }
psql -XqAt -v ON_ERROR_STOP=1 -d $DB >/dev/null <<SQL
INSERT INTO evmgmt.operation VALUES ('day', 'Synthetic day'), ('feed', 'Feed watch'), ('late', 'Late loads');
INSERT INTO evmgmt.calendar VALUES ('all', 'Round the clock');
INSERT INTO evmgmt.calendar_hours SELECT 'all', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('S1', 'day', 'Site one', 'UTC', 'all'), ('S2', 'feed', 'Site two', 'UTC', 'all'), ('S3', 'late', 'Site three', 'UTC', 'all');
INSERT INTO evmgmt.queue (queue_id, operation_id, name)
SELECT q, 'day', q FROM unnest(ARRAY['qout', 'qvol', 'qstaff', 'qaht', 'qesc', 'qblip', 'qdip', 'qmaint', 'qflap', 'qfeed', 'qold']) q;
-- the whole synthetic day is live for this operation; its feed is not watched
INSERT INTO evmgmt.detection_policy (operation_id, backfill_after, feed_due_intervals) VALUES ('day', '30 hours', 500);
INSERT INTO evmgmt.maintenance_window (site_id, queue_id, starts_at, ends_at, reason)
VALUES ('S1', 'qmaint', '$T0'::timestamptz + 83 * interval '15 minutes', '$T0'::timestamptz + 91 * interval '15 minutes', 'Router firmware');
-- every page is a webhook to the local sink
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:$SINK_PORT/page');
INSERT INTO evmgmt.escalation_plan (plan_id, name, start_reasons) VALUES ('page', 'Page on open and upgrade', '{opened,upgraded}');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, provider_id) VALUES ('page', 1, '0', 'webhook', 'endpoint', 'hook');
SQL
# a week of history for the escalation-rate baseline
for d in 1 2 3 4 5 6 7; do python3 test/data/synthetic_day.py "$T0" 0 0 --history $d; done > "$IT_DIR/history.csv"
etl -c "\\copy evmgmt.interval_inbox FROM '$IT_DIR/history.csv' WITH (FORMAT csv)"
is "$(q $DB "SELECT count(*) FROM evmgmt.event")" 0 "a week of healthy history opens nothing"

# hourly chunks k0..k79, then interval by interval k80..k95
for h in $(seq 0 19); do
	first=$((h * 4))
	python3 test/data/synthetic_day.py "$T0" $first $((first + 3)) $([ $h -eq 0 ] && echo --bad) > "$IT_DIR/chunk.csv"
	cat "$IT_DIR/chunk.csv" >> "$IT_DIR/day.csv"
	etl -c "\\copy evmgmt.interval_inbox FROM '$IT_DIR/chunk.csv' WITH (FORMAT csv)" || diag "chunk $h failed"
done
for i in $(seq 80 95); do
	python3 test/data/synthetic_day.py "$T0" $i $i > "$IT_DIR/chunk.csv"
	cat "$IT_DIR/chunk.csv" >> "$IT_DIR/day.csv"
	etl -c "\\copy evmgmt.interval_inbox FROM '$IT_DIR/chunk.csv' WITH (FORMAT csv)" || diag "interval $i failed"
done
is "$(q $DB "SELECT count(*) FROM evmgmt.interval_stat WHERE site_id = 'S1' AND interval_start >= '$T0'")" $((96 * 11)) "every good row of the day is stored"

EVENTS="$(q $DB "SELECT string_agg(e.queue_id || ' ' || e.event_type || '/' || COALESCE(e.subtype, '-') || ' ' || r.severities::text || ' ' || e.detection_source, '; ' ORDER BY e.queue_id, e.event_id) FROM evmgmt.event e JOIN evmgmt.event_rollup r USING (event_id) WHERE e.site_id = 'S1'")"
is "$EVENTS" 'qaht process/aht_inflation {"collab": "sev3"} rule; qesc process/escalation_rate_spike {"spec": "sev3"} rule; qflap system/router_failure {"collab": "sev1"} rule; qout system/router_failure {"spec": "sev1", "collab": "sev1"} rule; qstaff capacity/staffing_shortfall {"spec": "sev2"} rule; qvol demand/volume_spike {"spec": "sev3"} rule' \
	"exactly the expected events: types, subtypes, pools and tiers"
is "$(q $DB "SELECT string_agg(e.queue_id || ' ' || (e.detected_at - '$T0'::timestamptz)::text, ', ' ORDER BY e.queue_id) FROM evmgmt.event e WHERE e.site_id = 'S1'")" \
	"qaht 12:30:00, qesc 15:00:00, qflap 22:00:00, qout 05:00:00, qstaff 10:00:00, qvol 07:30:00" "detected_at is the start of the run that crossed the threshold (data time)"
is "$(q $DB "SELECT string_agg(DISTINCT queue_id || ' ' || decision, ', ') FROM evmgmt.detection_log WHERE site_id = 'S1' AND decision IN ('inhibited', 'maintenance')")" \
	"qmaint maintenance, qout inhibited" "the maintenance window suppresses and the outage inhibits its lower-tier breach"
is "$(q $DB "SELECT count(*) FROM evmgmt.detection_log WHERE queue_id IN ('qblip', 'qdip')")" 0 "single-interval blips and a dip exactly as long as the sustain time open nothing"
is "$(q $DB "SELECT string_agg(row_data ->> 'site_id' || ' ' || sqlstate || ' ' || COALESCE(constraint_name, '-'), ', ' ORDER BY sqlstate, row_data ->> 'site_id') FROM evmgmt.interval_quarantine")" \
	"S1 22007 -, S9 23503 interval_stat_site_id_fkey, S1 23514 interval_stat_handled_not_more_than_offered" "the bad rows are quarantined with their reasons"
is "$(q $DB "SELECT string_agg(DISTINCT t.details ->> 'session_user', ',') FROM evmgmt.event_timeline t WHERE t.actor LIKE 'rule:%'")" $ETL "the timeline names the rule and the ingest login"

# pages: delivered by the worker, one per opened or raised condition; the
# flapping series paged once
wait_for 30 sql_true $DB "SELECT count(*) = (SELECT count(*) FROM evmgmt.escalation) AND count(*) > 0 FROM evmgmt.notification WHERE state = 'sent'"
ok $? "the worker delivered every page"
is "$(q $DB "SELECT string_agg(e.queue_id || ' ' || x.pool || ' ' || x.start_reason, ', ' ORDER BY e.queue_id, x.pool, x.escalation_id) FROM evmgmt.escalation x JOIN evmgmt.event e USING (event_id) WHERE e.site_id = 'S1'")" \
	"qaht collab opened, qesc spec opened, qflap collab opened, qout collab opened, qout spec opened, qstaff spec opened, qstaff spec upgraded, qvol spec opened" \
	"one page per condition and one for the raise"
is "$(q $DB "SELECT count(*) FROM evmgmt.notification n JOIN evmgmt.escalation x USING (escalation_id) JOIN evmgmt.event e ON e.event_id = x.event_id WHERE e.queue_id = 'qflap'")" 1 \
	"the flapping series paged once"
is "$(q $DB "SELECT status FROM evmgmt.detection_state WHERE queue_id = 'qflap'")" flapping "it is held as flapping at its tier"

# the same file again changes nothing
before="$(q $DB "SELECT (SELECT count(*) FROM evmgmt.event) || '/' || (SELECT count(*) FROM evmgmt.detection_log) || '/' || (SELECT count(*) FROM evmgmt.escalation) || '/' || (SELECT count(*) FROM evmgmt.interval_stat)")"
etl -c "\\copy evmgmt.interval_inbox FROM '$IT_DIR/day.csv' WITH (FORMAT csv)"
is "$(q $DB "SELECT (SELECT count(*) FROM evmgmt.event) || '/' || (SELECT count(*) FROM evmgmt.detection_log) || '/' || (SELECT count(*) FROM evmgmt.escalation) || '/' || (SELECT count(*) FROM evmgmt.interval_stat)")" "$before" \
	"re-delivering the whole day changes no event, decision, page or interval count"

# a silent feed: S2 sends k88..k90, then nothing; the worker opens the event
python3 - "$T0" > "$IT_DIR/feed.csv" <<'PY'
import sys; from datetime import datetime, timedelta
t0 = datetime.fromisoformat(sys.argv[1])
for k in range(88, 91):
    print('S2,qfeed,spec,%s,15,100,100,0,85,20,300,40,40,100,300,2,5,3' % (t0 + timedelta(minutes=15 * k)).isoformat())
PY
etl -c "\\copy evmgmt.interval_inbox FROM '$IT_DIR/feed.csv' WITH (FORMAT csv)"
wait_for 30 sql_true $DB "SELECT count(*) = 1 FROM evmgmt.event WHERE site_id = 'S2' AND subtype = 'wfm_platform_outage'"
ok $? "a site whose feed went silent gets a WFM platform outage event from the worker"
is "$(q $DB "SELECT string_agg(pc.pool || ' ' || pc.severity || ' ' || pc.state || ' ' || pc.cause_category, ',') FROM evmgmt.pool_condition pc JOIN evmgmt.event e USING (event_id) WHERE e.site_id = 'S2'")" \
	"spec sev3 diagnosed measurement" "classified and diagnosed with cause measurement"
python3 -c "
import sys; from datetime import datetime, timedelta
t0 = datetime.fromisoformat('$T0')
print('S2,qfeed,spec,%s,15,100,100,0,85,20,300,40,40,100,300,2,5,3' % (t0 + timedelta(minutes=15 * 95)).isoformat())" > "$IT_DIR/feed2.csv"
etl -c "\\copy evmgmt.interval_inbox FROM '$IT_DIR/feed2.csv' WITH (FORMAT csv)"
is "$(q $DB "SELECT string_agg(decision, ',' ORDER BY detection_id) FROM evmgmt.detection_log WHERE site_id = 'S2'")" "feed_silent,feed_resumed" "data resuming marks the feed event recovering"

# backfill: yesterday's breach at S3 is recorded and pages nobody
q $DB "INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds) SELECT 'S3', 'qold', 'spec', '$T0'::timestamptz - interval '1 day' + k * interval '15 minutes', 15, 100, 100, 10, 20 FROM generate_series(0, 7) k" >/dev/null
is "$(q $DB "SELECT (SELECT string_agg(decision, ',') FROM evmgmt.detection_log WHERE site_id = 'S3') || ' ' || (SELECT count(*) FROM evmgmt.event WHERE site_id = 'S3')")" "backfill 0" "a backfill is classified and recorded but opens nothing and pages nobody"
exit $IT_FAILED

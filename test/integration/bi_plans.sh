#!/usr/bin/env bash
# The open-events, timeline and delivery views use indexes on 1,000,000
# events (issue 12): a synthetic year (test/tools/synthetic_year.sql:
# 1,000,000 events with their pool conditions and timeline rows, 200,000
# escalations with their steps, 100,000 response levers,
# 1,000,000 notifications) and the plans (EXPLAIN, not times) of the
# queries a BI tool sends: all open events; one event's timeline; one
# event's deliveries.  A big table read by a sequential scan fails.  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 6
DB=evmgmt_it_bi_plans
new_db $DB
psql -XqAt -v ON_ERROR_STOP=1 -d $DB -v events=1000000 -v timeline_per_event=1 -v notifs_per_event=1 -v sites=0 \
	-f test/tools/synthetic_year.sql >"$IT_DIR/gen.out" 2>&1 ||
	{ sed 's/^/# /' "$IT_DIR/gen.out"; echo "Bail out! synthetic data"; exit 1; }
is "$(q $DB "SELECT count(*) FROM evmgmt.event")" "1000000" "1,000,000 events"

# explain NAME SQL: the plan, kept for the log
explain() {
	# (the whole plan goes to the TAP output as comments)
	psql -XqAt -v ON_ERROR_STOP=1 -d $DB -c "EXPLAIN (COSTS OFF) $2" >"$IT_DIR/$1.plan" 2>&1
	sed 's/^/# /' "$IT_DIR/$1.plan"
}
big='Seq Scan on (event|pool_condition|event_timeline|notification|response_action|escalation_step_run|escalation)( |$)'

explain open "SELECT * FROM evmgmt.bi_open_events"
ok $(grep -q 'event_open_idx' "$IT_DIR/open.plan"; echo $?) "open events: the partial index of open events"
ok $(! grep -qE "$big" "$IT_DIR/open.plan"; echo $?) "open events: no sequential scan of a big table"

explain timeline "SELECT * FROM evmgmt.bi_event_timeline WHERE event_id = 424242 ORDER BY at"
ok $(! grep -qE "$big" "$IT_DIR/timeline.plan" && grep -q 'event_timeline_event_id_at_idx' "$IT_DIR/timeline.plan"; echo $?) \
	"timeline of one event: index scans only"

explain delivery "SELECT * FROM evmgmt.bi_notification_delivery WHERE event_id = 424242"
ok $(! grep -qE "$big" "$IT_DIR/delivery.plan" && grep -q 'notification_event_id_idx' "$IT_DIR/delivery.plan"; echo $?) \
	"deliveries of one event: the notification index on event_id"

explain delivery_range "SELECT * FROM evmgmt.bi_notification_delivery WHERE created_at >= '2025-06-01' AND created_at < '2025-06-02'"
ok $(! grep -qE "$big" "$IT_DIR/delivery_range.plan"; echo $?) "deliveries of one day: no sequential scan"
it_done

-- Post-event reports against a hand-computed fixture (January 2025, site S1
-- in UTC, queue target 80%, all intervals 15 minutes, AHT 300 s).  Rows are
-- inserted directly (as pg_restore does: the event guard lets INSERTs pass)
-- so that every time is fixed.  Each expected figure is derived in the
-- comment above the query that shows it.
--
-- The fixture:
--   E1 system, rule, q1, sev1 (classified sev2 at 10:01, reclassified up to
--      sev1 at 10:02), detected Mon 2025-01-06 10:00, first response 10:04
--      (due 10:05), acknowledged 10:03 by Ana, resolved 11:30 (due 11:00),
--      closed 12:00.  Analysis with a detector gap, one customer-experience
--      impact, an overdue and an open action item.
--      Intervals q1 10:00-10:45: offered 40, handled 30, abandoned 10,
--      answered 0 (SL 0); 11:00: 40/35/5/20 (SL 0.5), staffed 12 of 10
--      scheduled; 11:15: 40/40/0/36 (SL 0.9), staffed 12 of 10.
--   E2 demand, roc_analyst (a person), q1, sev3, detected Tue 2025-01-07
--      14:00, first response 15:30 (due 15:00), acknowledged 14:20 by Bob,
--      resolved 18:00 (due next day), event still open.
--      Intervals q1 14:00-15:45: 40/40/0/10 (SL 0.25); 16:00-17:45:
--      40/40/0/36 (SL 0.9).
--   E3 capacity, rule, q2, sev3, touched only by the detector role: first
--      response 09:10 (due 10:00), resolved 12:00, closed 12:30 on
--      2025-01-20.  Analysis recorded 13:00, its one action item done
--      2025-01-22.  Intervals q2 2025-01-20 09:00-11:45: 20/18/2/10 (SL 0.5);
--      2025-01-23 09:00-09:45: 20/20/0/18 (SL 0.9).
--   E4 capacity, rule, q2, recurs E3, classified sev1 then reclassified down
--      to sev2, detected 2025-01-27 09:00, first response 09:20 (due 09:30),
--      acknowledged 09:10 by Ana, unresolved (resolution due 13:00), no
--      analysis.
--   E5 demand, predictive, q1, sev4 (the breach never came), detected
--      2025-01-15 08:00, first response 08:30, resolved 09:00, closed.
--   E6 system, rule, cancelled (false positive): in no report.
--   E7 demand, rule, q1, sev3, 2025-02-03: outside January.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
BEGIN;
\ir test/fixtures/reports.psql

-- Bad periods: 22023 (empty or backwards, infinite), 22004 (NULL).
SELECT * FROM evmgmt.report_target_compliance('2025-02-01', '2025-01-01');
SELECT * FROM evmgmt.report_maturity('2025-01-01', 'infinity');
SELECT * FROM evmgmt.report_impact(NULL, '2025-01-01');
SELECT * FROM evmgmt.report_impact('2025-01-01', '2025-02-01', cost_per_outage_hour => -1);

-- Target compliance, January.  One row per (month, site, type, pool, tier):
--   capacity sev2 (E4): response 09:20 <= 09:30 met; unresolved and past
--     13:00: breached.  capacity sev3 (E3): both met.  demand sev3 (E2):
--     response 15:30 > 15:00 breached, resolution met.  demand sev4 (E5):
--     both met.  system sev1 (E1): response met, resolved 11:30 > 11:00
--     breached.  E6 (cancelled) and E7 (February) are not counted.
--   sev3 and sev4 are business-time tiers in the reference policy.
SELECT month, event_type, pool, severity, business_time, conditions, closed, open,
	   response_met, response_breached, response_pending, response_compliance,
	   resolution_met, resolution_breached, resolution_pending, resolution_compliance
FROM evmgmt.report_target_compliance('2025-01-01', '2025-02-01');
-- filters: type capacity leaves E3 and E4; tier sev3 leaves E2 and E3
SELECT event_type, severity, conditions FROM evmgmt.report_target_compliance('2025-01-01', '2025-02-01', type_filter => 'capacity');
SELECT event_type, severity, conditions FROM evmgmt.report_target_compliance('2025-01-01', '2025-02-01', site_filter => 'S1', severity_filter => 'sev3');

-- MTTA / MTTR, January.
--   TTA (detection to acknowledgment): E1 3 min, E4 10 min, E2 20 min;
--     mean 33/3 = 11 min; p50 10 min; p90 at rank 0.9 x 2 = 1.8: 10 + 0.8 x
--     10 = 18 min; p95 at 1.9: 19 min.
--   time to first response: 4, 90, 10, 20, 30 min: mean 154/5 = 30 min 48 s.
--   TTR: E5 60, E1 90, E3 180, E2 240 min (E4 unresolved): mean 570/4 =
--     142.5 min = 02:22:30; p50 at 1.5: 90 + 0.5 x 90 = 135 min (02:15);
--     p90 at 2.7: 180 + 0.7 x 60 = 222 min (03:42); p95 at 2.85: 231 min
--     (03:51).
--   sev3 rows (E2, E3): TTA 20 min; TTR (180 + 240)/2 = 210 min (03:30).
SELECT severity, pool, conditions, acknowledged, mtta, tta_p50, tta_p90, tta_p95, responded, mean_time_to_respond,
	   resolved, mttr, ttr_p50, ttr_p90, ttr_p95
FROM evmgmt.report_response_times('2025-01-01', '2025-02-01');

-- Severity drift, January (5 classified conditions: E1 sev1, E4 sev2, E2
-- and E3 sev3, E5 sev4).
--   tier mix: sev1 1/5 = 0.2, sev2 0.2, sev3 2/5 = 0.4, sev4 0.2.
--   reclassification: E1 up (sev2 -> sev1), E4 down (sev1 -> sev2): one
--     condition each, 1/5 = 0.2.
--   disagreement: E2 was held at SL 0.25 for 14:00-15:45 = 120 min (< 0.30
--     for more than sev2's 60 min): implied sev2, assigned sev3, so
--     under_classified.  E1: SL 0 for 60 min > 0: sev1 as assigned.  E3:
--     0.5 < 0.6 for 180 min > 30: sev3 as assigned.  E4 has no intervals.
SELECT finding, month, severity, conditions, share, direction, event_id, pool, assigned_severity, implied_severity, detail
FROM evmgmt.report_severity_drift('2025-01-01', '2025-02-01');

-- Blind spots, January (E6 cancelled left out).
--   capacity: E3, E4 by rule (2 of 2 automated); demand: E2 by a person, E5
--   by prediction (1/2 each); system: E1 by rule.
--   undetected: E2 (no automated demand event at S1 from 13:00 to its
--   resolution at 18:00; E5 came a week later).
--   detector_gap: E1's analysis.
SELECT finding, event_type, events, by_rule, by_prediction, by_other_automated, by_people, share_automated, share_people,
	   event_id, detected_at, detection_source, detail
FROM evmgmt.report_blind_spots('2025-01-01', '2025-02-01');

-- Notification fatigue, January to March.
--   Ana (UTC), January: sms 10:00:00, push 10:00:30 (within a minute of the
--   sms: same interruption), e-mail 10:00:40 (e-mail apart: its own), sms
--   10:05 (new) on Monday 6th at 10:00 = business hours; push Sat 11th
--   12:00 = off hours; sms Sun 12th 23:30 = sleep; the cancelled sms at
--   23:40 is not counted.  6 notifications, 5 interruptions (3 business, 1
--   off, 1 sleep).  Per channel: sms 3 (2 business, 1 sleep), push 2 of which
--   1 interruption (off), e-mail 1 (business).  Escalations that paged Ana:
--   E1's, acknowledged 3 min after the first page: share 1.
--   Bob (America/New_York, UTC-5), January: sms 14:00Z = 09:00 Tue
--   (business), voice 03:30Z = 22:30 (sleep), sms Jan 27 09:00Z = 04:00
--   (sleep): 3 interruptions.  Escalations: E2's (acknowledged after 20 min)
--   and E4's (acknowledged by Ana, not Bob): share 1/2.  February: E7's
--   dead sms, not acknowledged: share 0, change -0.5, one fall only so not
--   trending away.
SELECT month, contact_name, time_zone, channel, notifications, interruptions, business_hours, off_hours, sleep_hours,
	   escalations, acknowledged, ack_share, median_time_to_ack, ack_share_change, trending_away
FROM evmgmt.report_notification_fatigue('2025-01-01', '2025-04-01');

-- Learning loop, January.
--   missing_analysis: E1 (sev1: analysis and action items, but only one of
--   the five objective impacts) and E4 (recurring sev2, no analysis).
--   action items: item 1 of E1 due 2025-02-01 not done (overdue; the days
--   depend on today, shown as > 300), item 2 due 2999 (open); E3's item is done.
--   recurrence: E4 recurs E3: chain root 3, length 2.
--   process health of E3 (all items done, q2): before (28 days up to the
--   analysis at 2025-01-20 13:00): 12 intervals of 20 offered, 10 answered,
--   2 abandoned: SL 0.5, abandonment 24/240 = 0.1, AHT 300; after (from
--   2025-01-22): 4 intervals of 20 offered, 18 answered: SL 0.9,
--   abandonment 0, AHT 300.  Repeat contacts per offered 4/20 = 0.2 before,
--   1/20 = 0.05 after; escalations per handled 3/18 = 0.1667 before, 1/20 =
--   0.05 after; transfers 6/18 = 0.3333 before, 2/20 = 0.1 after.
SELECT finding, event_id, event_type, severity, detail, gaps, item_id, owner, due_date, overdue_days > 300 AS long_overdue,
	   chain_root, chain_length, metric, round(before_value::numeric, 4) AS before_value, round(after_value::numeric, 4) AS after_value
FROM evmgmt.report_learning_loop('2025-01-01', '2025-02-01');

-- Impact, January, at 1000 per outage hour and 50 per overtime hour.
--   E1 (10:00-11:30, 6 intervals): below the 0.8 target 10:00-11:00 = 5 x
--     15 = 75 min; abandoned 4 x 10 + 5 = 45; beyond threshold 4 x 30 + (35
--     - 20) + (40 - 36) = 139; outage (offered, none in threshold) 4 x 15 min
--     = 1 h; overtime 2 agents x 15 min x 2 = 1 h; cost 1000 + 50 = 1050;
--     customer experience as recorded.
--   E2 (14:00-18:00, 16 intervals): 8 below target = 120 min; beyond 8 x 30
--     + 8 x 4 = 272.
--   E3 (09:00-12:00, 12 intervals): all below = 180 min; abandoned 12 x 2 =
--     24; beyond 12 x (18 - 10) = 96.
--   E4, E5: no intervals.  Total: 34 intervals, 375 min, 69, 507, 1 h, 1 h,
--   1050.
SELECT event_id, pool, event_type, severity, intervals, service_level_minutes_lost, contacts_abandoned, contacts_beyond_threshold,
	   outage_hours, overtime_hours, estimated_cost, customer_experience, agent_experience, business_value, cost_recorded
FROM evmgmt.report_impact('2025-01-01', '2025-02-01', cost_per_outage_hour => 1000, cost_per_overtime_hour => 50);

-- Maturity, January: 5 events (E6 cancelled left out), all classified;
-- 4 automated (E1, E3, E4 rule, E5 predictive) = 0.8.  Predictions: E5,
-- averted (1); missed: E1 (rule, on S1 q1 spec, which has a forecast).
-- Foreseen breaches 1 (E5) of 1 + 1 missed: share predicted 0.5; averted
-- 1 of the 1 foreseen: 1.0.  sev3 conditions E2, E3; E3 handled by the rule
-- auto-ot without the ROC: 0.5.  L2 (90 % classified) met; L3 (50 %
-- automated, 25 % of sev3 by rules) met; L4 (50 % predicted, 50 % averted)
-- met; L5 needs 80 % predicted: level 4.  February alone: E7 (rule, q1,
-- missed): 1 event, automated, no sev3 handled by rules: level 2.
SELECT * FROM evmgmt.report_maturity('2025-01-01', '2025-02-01');
SELECT events, breaches_missed, share_predicted, maturity_level, reason FROM evmgmt.report_maturity('2025-02-01', '2025-03-01');

-- BI views on the fixture
SELECT event_id, pool, severity, state, response_breached, resolution_breached, floor_severity
FROM evmgmt.bi_open_events ORDER BY event_id;
SELECT at, source, pool, action, actor, channel, contact_name, lever, detail
FROM evmgmt.bi_event_timeline WHERE event_id = 1 ORDER BY at, source;
SELECT notification_id > 0 AS has_id, event_id, kind, channel, contact_name, recipient, outcome, time_to_send
FROM evmgmt.bi_notification_delivery WHERE event_id = 2 ORDER BY created_at;
SELECT interval_start, service_level, traffic, agents, round(erlang_sl_minus_one::numeric, 4) AS minus_one,
	   round(erlang_sl::numeric, 4) AS sl, round(erlang_sl_plus_one::numeric, 4) AS plus_one
FROM evmgmt.bi_interval_service_level WHERE interval_start = '2025-01-06 11:00';

-- A reader sees masked recipients, and can run every report.
SET LOCAL ROLE evmgmt_reader;
SELECT DISTINCT recipient FROM evmgmt.bi_notification_delivery WHERE event_id = 7;
SELECT last_status, failed_attempts FROM evmgmt.bi_notification_delivery WHERE event_id = 7;
SELECT count(*) FROM evmgmt.report_notification_fatigue('2025-01-01', '2025-04-01');
SELECT maturity_level FROM evmgmt.report_maturity('2025-01-01', '2025-02-01');
RESET ROLE;

-- A reader bound to another site of the operation sees nothing of S1 in
-- the views, the reports (the fatigue report reads the outbox as the
-- extension's owner) and the HTML report
CREATE ROLE evm_report_s2 IN ROLE evmgmt_reader;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('S2', 'op', 'Site two', 'UTC', 'cal');
INSERT INTO evmgmt.site_binding (role_name, site_id) VALUES ('evm_report_s2', 'S2');
SET LOCAL ROLE evm_report_s2;
SELECT (SELECT count(*) FROM evmgmt.bi_open_events) AS open_events, (SELECT count(*) FROM evmgmt.bi_event_timeline) AS timeline,
	   (SELECT count(*) FROM evmgmt.bi_notification_delivery) AS delivery, (SELECT count(*) FROM evmgmt.bi_interval_service_level) AS intervals,
	   (SELECT count(*) FROM evmgmt.report_notification_fatigue('2025-01-01', '2025-04-01')) AS fatigue,
	   (SELECT events FROM evmgmt.report_maturity('2025-01-01', '2025-02-01')) AS maturity_events,
	   (SELECT count(*) FROM evmgmt.report_target_compliance('2025-01-01', '2025-02-01')) AS compliance;
SELECT evmgmt.event_report(1);
RESET ROLE;
ROLLBACK;

-- Predictive detection and rule-driven response with an explicit clock:
-- forecast loads (direct, inbox, quarantine), the projection as forecast and
-- as corrected by today's actuals (a hand-computed case), predicted events
-- (opened before the breach, healthy series untouched, averted by a
-- re-forecast, confirmed by actuals as the same event), paging held back for
-- sev3 predictions, response rules (once per event, pool and lever, rate cap,
-- kill switch, timeline and audit), runbooks in facts and pages.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION evmgmt CASCADE;
CREATE EXTENSION evmgmt;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
-- the site's clock reads about noon, so that "today" holds the morning's
-- actuals whenever the test runs
SELECT (12 - extract(hour FROM now() AT TIME ZONE 'UTC'))::int AS h \gset
SELECT CASE WHEN :h >= 0 THEN 'Etc/GMT-' || :h ELSE 'Etc/GMT+' || (-(:h)) END AS tz \gset
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Round the clock');
INSERT INTO evmgmt.calendar_hours SELECT 'std', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('S1', 'acme', 'Site one', :'tz', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name, sl_target, sl_seconds)
SELECT q, 'acme', initcap(q), 0.8, 20 FROM unnest(ARRAY['qshort', 'qok', 'qconf', 'qcorr', 'qsev3', 'qdem']) q;
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:9/hook'),
	('wfm', 'webhook', 'webhook', 'http://127.0.0.1:9/wfm');
INSERT INTO evmgmt.escalation_plan (plan_id, name) VALUES ('all', 'Everything');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, provider_id) VALUES ('all', 1, '0', 'webhook', 'endpoint', 'hook');

-- the clock of prediction: an hour ago; the forecast intervals k = 0.. start
-- at the quarter hour 30 minutes from then (f0)
SELECT date_trunc('hour', now()) + floor(extract(minute FROM now()) / 15) * interval '15 minutes' - interval '60 minutes' AS p0 \gset
SELECT :'p0'::timestamptz + interval '30 minutes' AS f0 \gset
CREATE FUNCTION pg_temp.f(queue text, k int, offered real, scheduled real, aht real DEFAULT 300, pool text DEFAULT 'spec')
RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(',', 'S1', queue, pool, (current_setting('test.f0')::timestamptz + k * interval '15 minutes')::text, 15, offered, aht, scheduled, '') $$;
SELECT set_config('test.f0', :'f0', false) IS NOT NULL AS f0_set;

-- Erlang C at 100 calls of 300 s in 15 minutes (33.3 Erlangs): the staffing
-- the target needs, and what 34 and 36 agents give.  The policy: sev1 below
-- 0 % at once, sev2 below 30 % for longer than 60 minutes, sev3 below 60 %
-- for longer than 30 minutes (three 15-minute intervals)
SELECT evmgmt.agents_required(100 * 300 / 900.0, 300, 0.8, 20) AS needed,
	   round(evmgmt.service_level(100 * 300 / 900.0, 34, 300, 20)::numeric, 3) AS sl_34,
	   round(evmgmt.service_level(100 * 300 / 900.0, 36, 300, 20)::numeric, 3) AS sl_36;

------------------------------------------------------------------------------
-- Loading: a login with only evmgmt_ingest, through the inbox; bad rows
-- quarantined with the constraint a direct insert would name
------------------------------------------------------------------------------
DROP ROLE IF EXISTS pred_loader;
CREATE ROLE pred_loader LOGIN IN ROLE evmgmt_ingest;
SET ROLE pred_loader;
INSERT INTO evmgmt.forecast_inbox (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled, patience_seconds)
SELECT (string_to_array(l, ','))[1], (string_to_array(l, ','))[2], (string_to_array(l, ','))[3], (string_to_array(l, ','))[4],
	   (string_to_array(l, ','))[5], (string_to_array(l, ','))[6], (string_to_array(l, ','))[7], (string_to_array(l, ','))[8],
	   NULLIF((string_to_array(l, ','))[9], '')
FROM (SELECT pg_temp.f('qshort', k, 100, 30) AS l FROM generate_series(0, 3) k
	  UNION ALL SELECT pg_temp.f('qok', k, 100, 40) FROM generate_series(0, 3) k
	  UNION ALL SELECT pg_temp.f('qconf', k, 100, CASE WHEN k <= 2 THEN 34 ELSE 40 END) FROM generate_series(0, 3) k
	  UNION ALL SELECT pg_temp.f('qsev3', k, 100, CASE WHEN k <= 2 THEN 34 ELSE 40 END) FROM generate_series(0, 3) k) x;
INSERT INTO evmgmt.forecast_inbox VALUES
	('S1', 'qok', 'spec', 'not a time', '15', '1', '300', '1', NULL),
	('S1', 'qok', 'nope', '2026-01-01 00:00+00', '15', '1', '300', '1', NULL),
	('S1', 'qok', 'spec', '2026-01-01 00:00+00', '15', '1', '0', '1', NULL),
	('S1', 'qok', 'spec', '2026-01-01 00:07+00', '15', '1', '300', '1', NULL),
	('S1', 'qok', 'spec', '2026-01-01 00:00+00', '7', '1', '300', '1', NULL),
	('S1', 'qok', 'spec', '2026-01-01 00:00+00', '15', 'NaN', '300', '1', NULL),
	('S1', 'qok', 'spec', '2026-01-01 00:00+00', '15', '1', '300', '-1', NULL),
	('S1', 'qok', 'spec', '2026-01-01 00:00+00', '15', '1', '300', '1', '0'),
	('S1', 'qok', 'spec', '2026-01-01 00:00+00', '15', '1e39', '300', '1', NULL),
	('S1', 'qok', 'spec', '2026-01-01 00:00+00', '15', NULL, '300', '1', NULL),
	('S9', 'qok', 'spec', '2026-01-01 00:00+00', '15', '1', '300', '1', NULL),
	('S1', 'q9', 'spec', '2026-01-01 00:00+00', '15', '1', '300', '1', NULL);
SELECT target_table, sqlstate, constraint_name, reason, detail FROM evmgmt.my_interval_quarantine ORDER BY quarantine_id;
-- a direct insert refuses the same rows with the same names
INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled)
VALUES ('S1', 'qok', 'spec', '2026-01-01 00:07+00', 15, 1, 300, 1);
INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled)
VALUES ('S9', 'qok', 'spec', '2026-01-01 00:00+00', 15, 1, 300, 1);
-- the loader cannot read what it loaded, only its own quarantine
SELECT count(*) FROM evmgmt.interval_forecast;
RESET ROLE;
SELECT count(*) AS stored, count(DISTINCT queue_id) AS series FROM evmgmt.interval_forecast;
SELECT count(*) AS inbox_left FROM evmgmt.forecast_inbox;

------------------------------------------------------------------------------
-- The projection at p0
------------------------------------------------------------------------------
SELECT queue_id, (extract(epoch FROM interval_start - :'f0'::timestamptz) / 900)::int AS k, scheduled,
	   round(traffic::numeric, 2) AS traffic, round(projected_service_level::numeric, 3) AS sl,
	   round(projected_asa::numeric, 1) AS asa, agents_needed, staffing_gap, drive
FROM evmgmt.forecast_projection_at(:'p0') WHERE queue_id IN ('qshort', 'qconf') ORDER BY 1, 2;

------------------------------------------------------------------------------
-- Prediction at p0
------------------------------------------------------------------------------
SELECT evmgmt.run_predictions(:'p0', true) AS run \gset
SELECT series, intervals, breaching, decisions, failures FROM evmgmt.prediction_run WHERE run_id = :run;
SELECT e.queue_id, e.detection_source, e.event_type, e.subtype, pc.pool, pc.severity, pc.state,
	   (extract(epoch FROM ps.breach_starts_at - :'f0'::timestamptz) / 900)::int AS breach_k,
	   ps.breach_starts_at > :'p0'::timestamptz AS before_breach, ps.agents_needed, round(ps.projected_service_level::numeric, 3) AS sl
FROM evmgmt.event e JOIN evmgmt.pool_condition pc USING (event_id) JOIN evmgmt.prediction_state ps ON ps.event_id = e.event_id
ORDER BY e.queue_id;
-- the healthy series opened nothing
SELECT count(*) AS qok_events FROM evmgmt.event WHERE queue_id = 'qok';
-- the facts carry the prediction
SELECT e.queue_id, f ->> 'projected_service_level_pct' AS sl, f ->> 'agents_needed' AS agents_needed,
	   (f ->> 'breach_starts_at')::timestamptz = :'f0'::timestamptz AS breach_at_f0, f ->> 'prediction' AS prediction
FROM evmgmt.event e, evmgmt.event_facts(e.event_id) f ORDER BY e.queue_id;
-- sev1 and sev2 predictions page; the sev3 one only told the footprint
SELECT e.queue_id, pc.severity, count(x.escalation_id) AS escalations
FROM evmgmt.event e JOIN evmgmt.pool_condition pc USING (event_id) LEFT JOIN evmgmt.escalation x ON x.event_id = e.event_id
GROUP BY 1, 2 ORDER BY 1;
-- a second pass changes nothing
SELECT evmgmt.run_predictions(:'p0'::timestamptz + interval '1 minute', true) AS run \gset
SELECT decisions FROM evmgmt.prediction_run WHERE run_id = :run;
SELECT count(*) AS events FROM evmgmt.event;

------------------------------------------------------------------------------
-- A re-forecast with enough agents averts qshort
------------------------------------------------------------------------------
INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled)
SELECT 'S1', 'qshort', 'spec', :'f0'::timestamptz + k * interval '15 minutes', 15, 100, 300, 40 FROM generate_series(0, 3) k;
SELECT count(*) AS qshort_rows FROM evmgmt.interval_forecast WHERE queue_id = 'qshort';
SELECT evmgmt.run_predictions(:'p0'::timestamptz + interval '5 minutes', false) AS run \gset
SELECT decisions FROM evmgmt.prediction_run WHERE run_id = :run;
SELECT ps.queue_id, ps.status, pc.state, left(pc.resolution_note, 24) AS note FROM evmgmt.prediction_state ps
JOIN evmgmt.pool_condition pc ON pc.event_id = ps.event_id AND pc.pool = ps.pool ORDER BY 1;
SELECT count(*) FILTER (WHERE x.state = 'active') AS active_escalations
FROM evmgmt.event e JOIN evmgmt.escalation x ON x.event_id = e.event_id WHERE e.queue_id = 'qshort';

------------------------------------------------------------------------------
-- Actuals confirm qconf: the same event carries on
------------------------------------------------------------------------------
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold,
								  threshold_seconds, aht_seconds, staffed, scheduled)
SELECT 'S1', 'qconf', 'spec', :'f0'::timestamptz + k * interval '15 minutes', 15, 100, 100, 45, 20, 300, 30, 34 FROM generate_series(0, 2) k;
SELECT e.queue_id, e.detection_source, pc.severity, ps.status, (SELECT count(*) FROM evmgmt.event x WHERE x.queue_id = 'qconf') AS events,
	   d.event_id = e.event_id AS detection_follows_it
FROM evmgmt.event e JOIN evmgmt.pool_condition pc USING (event_id) JOIN evmgmt.prediction_state ps ON ps.event_id = e.event_id
JOIN evmgmt.detection_state d ON d.site_id = e.site_id AND d.queue_id = e.queue_id AND d.pool = pc.pool
WHERE e.queue_id = 'qconf';
SELECT CASE WHEN actor LIKE 'rule:%' THEN actor ELSE '<session user>' END AS actor, action,
	   regexp_replace(reason, '\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00', '<time>', 'g') AS reason
FROM evmgmt.event_timeline t JOIN evmgmt.event e USING (event_id)
WHERE e.queue_id = 'qconf' ORDER BY entry_id;

------------------------------------------------------------------------------
-- The intraday correction, by hand: this morning qcorr ran 20 % above its
-- volume forecast and 10 % above its AHT forecast
------------------------------------------------------------------------------
INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled)
SELECT 'S1', 'qcorr', 'spec'::evmgmt.pool, :'p0'::timestamptz - k * interval '15 minutes', 15, 100, 300, 40 FROM generate_series(1, 3) k
UNION ALL SELECT 'S1', 'qcorr', 'spec', :'f0'::timestamptz, 15, 100, 300, 40;
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold,
								  threshold_seconds, aht_seconds, staffed, scheduled)
VALUES ('S1', 'qcorr', 'spec', :'p0'::timestamptz - interval '45 minutes', 15, 110, 100, 90, 20, 330, 40, 40),
	   ('S1', 'qcorr', 'spec', :'p0'::timestamptz - interval '30 minutes', 15, 130, 100, 90, 20, 330, 40, 40);
-- two intervals with a forecast: volume (110 + 130) / (100 + 100) = 1.2,
-- AHT (330 x 100 + 330 x 100) / (300 x 100 + 300 x 100) = 1.1
SELECT intervals, volume_ratio, round(aht_ratio::numeric, 6) AS aht_ratio FROM evmgmt.intraday_ratios(:'p0') WHERE queue_id = 'qcorr';
-- f0: 100 x 1.2 = 120 contacts of 300 x 1.1 = 330 s: 120 x 330 / 900 = 44 Erlangs at 40 agents
SELECT forecast_offered, round(traffic::numeric, 3) AS traffic, round(projected_service_level::numeric, 3) AS sl, agents_needed,
	   round(corrected_offered::numeric, 3) AS c_offered, round(corrected_aht::numeric, 3) AS c_aht,
	   round(corrected_traffic::numeric, 3) AS c_traffic, round(corrected_service_level::numeric, 3) AS c_sl,
	   corrected_agents_needed, round(corrected_staffing_gap::numeric, 1) AS c_gap,
	   round(driving_service_level::numeric, 3) = round(corrected_service_level::numeric, 3) AS corrected_drives
FROM evmgmt.forecast_projection_at(:'p0') WHERE queue_id = 'qcorr';
SELECT evmgmt.agents_required(44, 330, 0.8, 20) AS by_hand_needed, round(evmgmt.service_level(44, 40, 330, 20)::numeric, 3) AS by_hand_sl;
-- one actual interval only: not enough to correct (correction_min_intervals 2)
SELECT intervals, volume_ratio, aht_ratio, round(raw_volume_ratio::numeric, 2) AS raw FROM evmgmt.intraday_ratios(:'p0'::timestamptz - interval '30 minutes') WHERE queue_id = 'qcorr';
-- the operation may let the forecast drive
INSERT INTO evmgmt.prediction_policy (operation_id, drive) VALUES ('acme', 'forecast');
SELECT round(driving_service_level::numeric, 3) = round(projected_service_level::numeric, 3) AS forecast_drives
FROM evmgmt.forecast_projection_at(:'p0') WHERE queue_id = 'qcorr';
DELETE FROM evmgmt.prediction_policy;

------------------------------------------------------------------------------
-- Response rules
------------------------------------------------------------------------------
INSERT INTO evmgmt.response_rule (rule_id, operation_id, event_types, most_severe, least_severe, source, lever, provider_id, max_per_hour, instruction)
VALUES ('cap-overtime', 'acme', '{capacity}', 'sev1', 'sev3', 'predicted', 'overtime', 'wfm', 1, 'Offer voluntary overtime to the pool');
INSERT INTO evmgmt.response_rule (rule_id, operation_id, most_severe, least_severe, lever) VALUES ('bad-range', 'acme', 'sev3', 'sev1', 'overtime');
-- two new predictions: the first fires, the second meets the cap of one an hour
INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled)
SELECT 'S1', q, 'spec', :'f0'::timestamptz + interval '1 hour' + k * interval '15 minutes', 15, 100, 300, 30
FROM generate_series(0, 1) k, unnest(ARRAY['qok', 'qdem']) q;
SELECT evmgmt.run_predictions(:'p0'::timestamptz + interval '10 minutes', false) AS run \gset
SELECT decisions FROM evmgmt.prediction_run WHERE run_id = :run;
SELECT f.rule_id, e.queue_id, f.pool, f.lever, f.outcome, f.response_id IS NOT NULL AS lever_logged,
	   f.notification_id IS NOT NULL AS webhook_queued, f.detail
FROM evmgmt.response_rule_firing f JOIN evmgmt.event e USING (event_id) ORDER BY f.firing_id;
SELECT e.queue_id, pc.state, pc.cause_category, pc.lever_class, a.lever, a.note
FROM evmgmt.response_action a JOIN evmgmt.pool_condition pc USING (event_id, pool) JOIN evmgmt.event e USING (event_id) ORDER BY a.action_id;
SELECT n.kind, n.channel, n.provider_id, n.payload ->> 'rule' AS rule, n.payload ->> 'lever' AS lever, n.payload ->> 'lever_name' AS lever_name,
	   n.payload ->> 'pool' AS pool, n.payload ->> 'agents_needed' AS agents_needed, n.payload ? 'breach_starts_at' AS has_breach, n.body
FROM evmgmt.notification n WHERE n.kind = 'response_action';
SELECT t.actor, t.action, t.lever, t.reason FROM evmgmt.event_timeline t WHERE t.actor LIKE 'rule:response:%' ORDER BY t.entry_id;
SELECT a.table_name, a.action, a.new_row ->> 'rule_id' AS rule, a.new_row ->> 'outcome' AS outcome
FROM evmgmt.audit_log a WHERE a.table_name = 'response_rule_firing' ORDER BY a.at;
-- once per event, pool and lever: further passes and raises do not fire again
SELECT evmgmt.apply_response_rules(event_id, 'spec') FROM evmgmt.event WHERE queue_id = 'qok';
SELECT count(*) FILTER (WHERE outcome = 'fired') AS fired, count(*) AS firings FROM evmgmt.response_rule_firing;
-- the kill switch
SELECT evmgmt.set_response_rules(false, 'WFM integration under maintenance');
SELECT evmgmt.set_response_rules(true, '');
UPDATE evmgmt.response_rule SET max_per_hour = 100;
INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered, forecast_aht, scheduled)
SELECT 'S1', 'qok', 'collab', :'f0'::timestamptz + interval '1 hour' + k * interval '15 minutes', 15, 100, 300, 30 FROM generate_series(0, 1) k;
SELECT evmgmt.run_predictions(:'p0'::timestamptz + interval '11 minutes', false) AS run \gset
SELECT decisions FROM evmgmt.prediction_run WHERE run_id = :run;
SELECT f.rule_id, f.pool, f.outcome, f.detail FROM evmgmt.response_rule_firing f WHERE f.outcome = 'switched_off';
SELECT enabled, reason FROM evmgmt.response_switch;
SELECT evmgmt.set_response_rules(true, 'maintenance over');

------------------------------------------------------------------------------
-- Runbooks
------------------------------------------------------------------------------
INSERT INTO evmgmt.runbook (runbook_id, operation_id, event_type, name) VALUES (1, 'acme', 'capacity', 'Capacity shortfall');
INSERT INTO evmgmt.runbook (runbook_id, operation_id, event_type, subtype, pool, name) VALUES (2, 'acme', 'capacity', 'staffing_shortfall', 'spec', 'Specialist staffing shortfall');
INSERT INTO evmgmt.runbook_step VALUES (1, 1, 'Check adherence', NULL),
	(2, 1, 'Cancel offline activities for the pool', 'cancel_offline_activities'),
	(2, 2, 'Offer voluntary overtime', 'overtime'), (2, 3, 'Open callback offers', 'callback_offer');
SELECT e.queue_id, evmgmt.runbook_for(e.event_id, 'spec') AS runbook FROM evmgmt.event e WHERE e.queue_id = 'qsev3';
SELECT f ->> 'runbook' AS runbook, f ->> 'runbook_short' AS short FROM evmgmt.event e, evmgmt.event_facts(e.event_id) f WHERE e.queue_id = 'qsev3';
-- pages carry it: in full by e-mail, the first step and how many more by SMS
SELECT substring(m.body FROM 'Runbook:.*') AS email_tail FROM evmgmt.event e,
	evmgmt.render_message('escalation_step', 'email', 'acme', evmgmt.event_facts(e.event_id)) m WHERE e.queue_id = 'qsev3';
SELECT substring(m.body FROM 'Runbook:.*') AS sms_tail, length(m.body) <= 160 AS fits FROM evmgmt.event e,
	evmgmt.render_message('escalation_step', 'sms', 'acme', evmgmt.event_facts(e.event_id)) m WHERE e.queue_id = 'qsev3';
SELECT evmgmt.runbook_step_done(e.event_id, 'spec', 1) IS NOT NULL AS step1 FROM evmgmt.event e WHERE e.queue_id = 'qsev3';
SELECT evmgmt.runbook_step_done(e.event_id, 'spec', 2, 'skipped', 'No overtime budget this week') IS NOT NULL AS step2 FROM evmgmt.event e WHERE e.queue_id = 'qsev3';
SELECT evmgmt.runbook_step_done(e.event_id, 'spec', 9) FROM evmgmt.event e WHERE e.queue_id = 'qsev3';
SELECT evmgmt.runbook_step_done(e.event_id, 'spec', 1, 'maybe') FROM evmgmt.event e WHERE e.queue_id = 'qsev3';
SELECT step_no, instruction, lever, outcome, note FROM evmgmt.runbook_checklist c JOIN evmgmt.event e USING (event_id)
WHERE e.queue_id = 'qsev3' ORDER BY step_no;
SELECT t.action, t.lever, t.reason FROM evmgmt.event_timeline t JOIN evmgmt.event e USING (event_id)
WHERE e.queue_id = 'qsev3' AND t.reason LIKE 'runbook%' ORDER BY t.entry_id;

------------------------------------------------------------------------------
-- Averting by hand is for predicted events only; outcomes for the maturity figures
------------------------------------------------------------------------------
SELECT evmgmt.open_event('capacity', 'S1', '{aa}', 'roc_analyst', 'Seen on the floor') AS manual \gset
SELECT evmgmt.classify_pool(:manual, 'aa', 'sev3');
SELECT evmgmt.avert_pool(:manual, 'aa', 'no');
SELECT queue_id, source, outcome FROM evmgmt.prediction_outcome ORDER BY queue_id, outcome;
SELECT * FROM evmgmt.lifecycle_transitions WHERE action = 'avert' AND pool = 'spec' ORDER BY from_state;
DROP ROLE pred_loader;

-- Rule-driven detection on interval loads: type inference, evidence,
-- recovery, noise control (maintenance, inhibition, flapping), backfill,
-- re-delivery, a load by a login with only evmgmt_ingest, feed health and
-- partition maintenance with explicit data-time arguments.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION evmgmt CASCADE;
CREATE EXTENSION evmgmt;
SET TimeZone = 'UTC';
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Round the clock');
INSERT INTO evmgmt.calendar_hours SELECT 'std', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('S1', 'acme', 'Site one', 'UTC', 'std'), ('S2', 'acme', 'Site two', 'UTC', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name)
SELECT q, 'acme', initcap(q) FROM unnest(ARRAY['qdemand', 'qcap', 'qsys', 'qaht', 'qesc', 'qblip', 'qdip', 'qmaint', 'qold', 'qflap', 'qweak']) q;
-- a plan with one webhook step, so that every escalation (page) is counted
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:9/hook');
INSERT INTO evmgmt.escalation_plan (plan_id, name) VALUES ('all', 'Everything');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, provider_id) VALUES ('all', 1, '0', 'webhook', 'endpoint', 'hook');

-- the live window: six 15-minute intervals ending at the last full quarter hour
SELECT date_trunc('hour', now()) + floor(extract(minute FROM now()) / 15) * interval '15 minutes' - interval '90 minutes' AS t0 \gset
SELECT set_config('test.t0', :'t0', false) IS NOT NULL AS t0_set;
CREATE FUNCTION pg_temp.k(t timestamptz) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN t IS NULL THEN NULL ELSE 'k' || (extract(epoch FROM t - current_setting('test.t0')::timestamptz) / 900)::int END $$;
-- one interval row: k = index from t0, service level sl of offered contacts
CREATE FUNCTION pg_temp.row(site text, queue text, pool text, k int, sl float8, offered int DEFAULT 100,
							handled int DEFAULT NULL, staffed real DEFAULT 40, scheduled real DEFAULT 40,
							forecast real DEFAULT 100, aht real DEFAULT 300, forecast_aht real DEFAULT 300,
							escalated int DEFAULT 5)
RETURNS text LANGUAGE sql AS $$
	SELECT concat_ws(',', site, queue, pool, (current_setting('test.t0')::timestamptz + k * interval '15 minutes')::text, 15, offered,
					 COALESCE(handled, offered), 0, round(sl * COALESCE(handled, offered)), 20, aht, staffed, scheduled,
					 forecast, forecast_aht, LEAST(2, COALESCE(handled, offered)), LEAST(escalated, COALESCE(handled, offered)), 0) $$;

-- an hourly chunk (k0..k3) by COPY through the inbox: every scenario at once
CREATE TEMP TABLE chunk (line text);
INSERT INTO chunk
SELECT pg_temp.row('S1', 'qdemand', 'spec', k, CASE WHEN k >= 1 THEN 0.5 ELSE 0.9 END, offered => CASE WHEN k >= 1 THEN 150 ELSE 100 END) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qcap', 'spec', k, CASE WHEN k >= 1 THEN 0.25 ELSE 0.9 END, staffed => CASE WHEN k >= 1 THEN 30 ELSE 40 END) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qsys', p, k, CASE WHEN k >= 2 THEN 0 ELSE 0.9 END, handled => CASE WHEN k >= 2 THEN 0 END) FROM generate_series(0, 3) k, unnest(ARRAY['spec', 'collab']) p
UNION ALL SELECT pg_temp.row('S1', 'qsys', 'aa', k, CASE WHEN k >= 1 THEN 0.5 ELSE 0.9 END) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qaht', 'collab', k, CASE WHEN k >= 1 THEN 0.5 ELSE 0.9 END, aht => CASE WHEN k >= 1 THEN 400 ELSE 300 END) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qesc', 'spec', k, CASE WHEN k >= 1 THEN 0.5 ELSE 0.9 END, escalated => CASE WHEN k >= 1 THEN 30 ELSE 5 END) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qblip', 'spec', k, CASE WHEN k = 2 THEN 0.3 ELSE 0.9 END) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qdip', 'spec', k, CASE WHEN k IN (2, 3) THEN 0.5 ELSE 0.9 END) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qmaint', 'spec', k, CASE WHEN k >= 1 THEN 0.5 ELSE 0.9 END, offered => 200) FROM generate_series(0, 3) k
UNION ALL SELECT pg_temp.row('S1', 'qweak', 'spec', k, CASE WHEN k >= 1 THEN 0.5 ELSE 0.9 END, staffed => 36, offered => 125) FROM generate_series(0, 3) k
UNION ALL SELECT 'S1,qdemand,spec,not a time,15,100,90,0,80,20,300,40,40,100,300,,,'
UNION ALL SELECT 'S9,qdemand,spec,' || (:'t0'::timestamptz)::text || ',15,100,90,0,80,20,300,40,40,100,300,,,';
-- the escalation-rate series has a history: the same intervals of day, 7 days back, 5 % escalated
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, escalated)
SELECT 'S1', 'qesc', 'spec', :'t0'::timestamptz + k * interval '15 minutes' - d * interval '1 day', 15, 100, 100, 90, 20, 5
FROM generate_series(0, 5) k, generate_series(1, 7) d;
-- planned work on qmaint
INSERT INTO evmgmt.maintenance_window (site_id, queue_id, starts_at, ends_at, reason)
VALUES ('S1', 'qmaint', :'t0'::timestamptz, :'t0'::timestamptz + interval '2 hours', 'Router firmware upgrade');

-- the load is done by a login that has only evmgmt_ingest
CREATE ROLE evm_test_etl LOGIN IN ROLE evmgmt_ingest;
\copy (SELECT line FROM chunk) TO '/tmp/evmgmt_detection_chunk.csv'
SET SESSION AUTHORIZATION evm_test_etl;
\copy evmgmt.interval_inbox FROM '/tmp/evmgmt_detection_chunk.csv' WITH (FORMAT csv)
SELECT count(*) FROM evmgmt.event;  -- the ingest login may not read events
RESET SESSION AUTHORIZATION;

-- what was opened: type, subtype, pools and tiers, opened by the rule
SELECT e.queue_id, e.event_type, e.subtype, e.detection_source, pg_temp.k(e.detected_at) AS detected,
	   r.severities, r.state
FROM evmgmt.event e JOIN evmgmt.event_rollup r USING (event_id)
ORDER BY e.queue_id, e.event_id;
-- the timeline says which rule acted and who loaded the data
SELECT e.queue_id, t.pool, t.action, t.actor, t.details ->> 'session_user' AS loaded_by, t.details ->> 'decision' AS decision
FROM evmgmt.event_timeline t JOIN evmgmt.event e USING (event_id)
WHERE t.actor LIKE 'rule:%' ORDER BY e.queue_id, t.entry_id;
-- every decision, also those that opened nothing
SELECT queue_id, pool, pg_temp.k(data_time) AS at, rule, decision, severity, event_type, subtype, weak_inference,
	   event_id IS NOT NULL AS has_event
FROM evmgmt.detection_log ORDER BY queue_id, pool, detection_id;
-- the evidence behind the demand event, and in its facts
SELECT figures ->> 'inferred_type' AS type, figures ->> 'inference' AS inference, figures ->> 'offered' AS offered,
	   figures ->> 'forecast_offered' AS forecast, figures ->> 'run_minutes' AS run_minutes,
	   figures ->> 'minutes_below_sev3' AS below_sev3, jsonb_array_length(intervals) AS n_intervals
FROM evmgmt.detection_evidence WHERE queue_id = 'qdemand';
SELECT evmgmt.event_facts(e.event_id) -> 'evidence' -> 0 ->> 'rule' AS rule,
	   evmgmt.event_facts(e.event_id) -> 'evidence' -> 0 -> 'figures' ->> 'tier' AS tier
FROM evmgmt.event e WHERE e.queue_id = 'qdemand';
-- the bad rows of the chunk are in quarantine with their reasons
SELECT row_data ->> 'site_id' AS site, sqlstate, constraint_name, reason FROM evmgmt.interval_quarantine ORDER BY reason;

-- the same chunk re-delivered changes nothing
SELECT count(*) AS log_rows FROM evmgmt.detection_log \gset
\copy evmgmt.interval_inbox FROM '/tmp/evmgmt_detection_chunk.csv' WITH (FORMAT csv)
SELECT count(*) AS events, (SELECT count(*) FROM evmgmt.detection_log) - :log_rows AS new_decisions,
	   (SELECT count(*) FROM evmgmt.interval_stat WHERE interval_start >= :'t0') AS rows_live
FROM evmgmt.event;

-- interval by interval: k4, k5.  qdemand recovers; qcap stays below 30 % and
-- is raised to sev2 once that lasted longer than 60 minutes (k5); qflap
-- flaps (sev1 outages at once, healthy in between)
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, staffed, scheduled, forecast_offered)
VALUES ('S1', 'qdemand', 'spec', :'t0'::timestamptz + interval '60 minutes', 15, 100, 100, 90, 20, 40, 40, 100),
	   ('S1', 'qcap', 'spec', :'t0'::timestamptz + interval '60 minutes', 15, 100, 100, 20, 20, 25, 40, 100),
	   ('S1', 'qflap', 'collab', :'t0'::timestamptz + interval '0 minutes', 15, 100, 100, 0, 20, 40, 40, 100),
	   ('S1', 'qflap', 'collab', :'t0'::timestamptz + interval '15 minutes', 15, 100, 100, 90, 20, 40, 40, 100),
	   ('S1', 'qflap', 'collab', :'t0'::timestamptz + interval '30 minutes', 15, 100, 100, 0, 20, 40, 40, 100),
	   ('S1', 'qflap', 'collab', :'t0'::timestamptz + interval '45 minutes', 15, 100, 100, 90, 20, 40, 40, 100),
	   ('S1', 'qflap', 'collab', :'t0'::timestamptz + interval '60 minutes', 15, 100, 100, 0, 20, 40, 40, 100);
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, staffed, scheduled, forecast_offered)
VALUES ('S1', 'qdemand', 'spec', :'t0'::timestamptz + interval '75 minutes', 15, 100, 100, 90, 20, 40, 40, 100),
	   ('S1', 'qcap', 'spec', :'t0'::timestamptz + interval '75 minutes', 15, 100, 100, 20, 20, 25, 40, 100),
	   ('S1', 'qflap', 'collab', :'t0'::timestamptz + interval '75 minutes', 15, 100, 100, 90, 20, 40, 40, 100);
SELECT queue_id, pool, status, severity, healthy_intervals, condition_state, condition_severity
FROM evmgmt.detection_conditions ORDER BY queue_id, pool;
SELECT e.queue_id, t.pool, t.action, t.from_severity, t.to_severity, t.reason
FROM evmgmt.event_timeline t JOIN evmgmt.event e USING (event_id)
WHERE e.queue_id IN ('qdemand', 'qcap', 'qflap')
  AND (t.action = 'reclassified' OR (t.action = 'note' AND t.actor LIKE 'rule:%'))
ORDER BY e.queue_id, t.entry_id;
-- pages: one escalation per pool condition, a raise starts the upgraded one;
-- the flapping series paged once (target breaches, fired by the worker on
-- its own clock, are left out)
SELECT e.queue_id, x.pool, x.start_reason FROM evmgmt.escalation x JOIN evmgmt.event e USING (event_id)
WHERE x.start_reason IN ('opened', 'upgraded')
ORDER BY e.queue_id, x.pool, x.escalation_id;

-- backfill: yesterday's breach is classified and recorded, opens nothing
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
SELECT 'S1', 'qold', 'spec', :'t0'::timestamptz - interval '1 day' + k * interval '15 minutes', 15, 100, 100, 10, 20
FROM generate_series(0, 7) k;
SELECT queue_id, decision, severity, event_type, event_id FROM evmgmt.detection_log WHERE queue_id = 'qold';
SELECT count(*) AS events_at_qold FROM evmgmt.event WHERE queue_id = 'qold';

-- a responder resolves the demand event: detection stops following it; a
-- new breach within the recurrence window reopens the same event
SELECT evmgmt.diagnose_pool(e.event_id, 'spec', 'demand', 'routing') FROM evmgmt.event e WHERE e.queue_id = 'qdemand';
SELECT evmgmt.log_response(e.event_id, 'spec', 'overflow_channels') > 0 FROM evmgmt.event e WHERE e.queue_id = 'qdemand';
SELECT evmgmt.resolve_event(e.event_id) FROM evmgmt.event e WHERE e.queue_id = 'qdemand';
SELECT evmgmt.close_event(e.event_id) FROM evmgmt.event e WHERE e.queue_id = 'qdemand';
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds, forecast_offered)
SELECT 'S1', 'qdemand', 'spec', :'t0'::timestamptz + k * interval '15 minutes', 15, 150, 150, 60, 20, 100
FROM generate_series(6, 8) k;
SELECT count(*) AS qdemand_events, max(r.state::text) AS state, max(r.severities::text) AS severities
FROM evmgmt.event e JOIN evmgmt.event_rollup r USING (event_id) WHERE e.queue_id = 'qdemand';
SELECT decision FROM evmgmt.detection_log WHERE queue_id = 'qdemand' ORDER BY detection_id DESC LIMIT 1;

-- the type inference on its own: first match wins, weak otherwise
SELECT (i).event_type, (i).subtype, (i).weak FROM (
	SELECT evmgmt.infer_event_type(o, h, st, sc, fo, fo2, a, fa, es, eb, ts, tb, p) AS i
	FROM (VALUES (100, 5, 40, 40, 100, 100, 300, 300, NULL, NULL, NULL, NULL),
				 (100, 90, 30, 40, 150, 150, 300, 300, NULL, NULL, NULL, NULL),
				 (150, 140, 40, 40, 100, 150, 300, 300, NULL, NULL, NULL, NULL),
				 (100, 90, 40, 40, 100, 100, 380, 300, NULL, NULL, NULL, NULL),
				 (100, 90, 40, 40, 100, 100, 300, 300, 0.3, 0.1, NULL, NULL),
				 (100, 90, 40, 40, 100, 100, 300, 300, NULL, NULL, 0.25, 0.1),
				 (100, 90, 36, 40, 120, 120, 330, 300, NULL, NULL, NULL, NULL),
				 (100, 90, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL))
		 AS v(o, h, st, sc, fo, fo2, a, fa, es, eb, ts, tb),
		 evmgmt.effective_detection_policy p WHERE p.operation_id = 'acme') x;

-- Power of One at the latest interval of a series: 40 staffed, 100 contacts
-- of 300 s in 15 minutes (33.3 Erlangs)
SELECT delta, agents, round(service_level::numeric, 3) AS sl, round(asa::numeric, 1) AS asa, staffed_agents, agents_needed
FROM evmgmt.live_power_of_one WHERE queue_id = 'qblip' ORDER BY delta;

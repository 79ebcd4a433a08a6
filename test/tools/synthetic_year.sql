-- test/tools/synthetic_year.sql: a synthetic year of events for the plan
-- test (test/integration/bi_plans.sh) and the report benchmark
-- (test/bench/reports.sh), generated set-based.  psql variables:
--   events              number of events spread evenly over 2025
--   timeline_per_event  event_timeline rows per event
--   notifs_per_event    notifications per event (contacts 1..200, four channels)
--   sites               sites (each with one queue and a year of 15-minute
--                       intervals for pool spec; 0 for none)
-- Rows are inserted the way pg_restore does (evmgmt.restoring on: no
-- timers, no wake-ups; the event guard lets INSERTs pass).  About 1 % of the
-- events are open; tiers 5 % sev1, 15 % sev2, 60 % sev3, 20 % sev4; sources
-- 60 % rule, 10 % predictive, 30 % people.
\set ON_ERROR_STOP on
SET evmgmt.restoring = on;
SET TimeZone = 'UTC';
SET synchronous_commit = off;
INSERT INTO evmgmt.operation VALUES ('syn', 'Synthetic');
INSERT INTO evmgmt.calendar VALUES ('syn', 'Weekdays');
INSERT INTO evmgmt.calendar_hours SELECT 'syn', d, '08:00', '18:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id)
SELECT 'S' || s, 'syn', 'Site ' || s, (ARRAY['UTC', 'Europe/Berlin', 'America/New_York'])[1 + s % 3], 'syn'
FROM generate_series(0, GREATEST(:sites, 1) - 1) s;
INSERT INTO evmgmt.queue (queue_id, operation_id, name)
SELECT 'Q' || s, 'syn', 'Queue ' || s FROM generate_series(0, GREATEST(:sites, 1) - 1) s;
INSERT INTO evmgmt.contact (contact_id, name, role_name, time_zone)
SELECT c, 'Contact ' || c, 'role' || c, (ARRAY['UTC', 'Europe/Berlin', 'America/New_York'])[1 + c % 3]
FROM generate_series(1, 200) c;
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, from_address) VALUES
	('sms', 'sms', 'twilio', 'http://127.0.0.1:9/sms', NULL), ('voice', 'voice', 'twilio', 'http://127.0.0.1:9/voice', NULL),
	('push', 'push', 'ntfy', 'http://127.0.0.1:9/push', NULL), ('mail', 'email', 'smtp', 'smtp://127.0.0.1:9', 'roc@example.com');

CREATE TEMP TABLE syn AS
SELECT i AS event_id, 'S' || (i % GREATEST(:sites, 1)) AS site_id, 'Q' || (i % GREATEST(:sites, 1)) AS queue_id,
	   (ARRAY['capacity', 'demand', 'system', 'process', 'third_party'])[1 + i % 5]::evmgmt.event_type AS event_type,
	   CASE WHEN i % 10 < 6 THEN 'rule' WHEN i % 10 = 6 THEN 'predictive' ELSE 'roc_analyst' END AS source,
	   CASE WHEN i % 20 = 0 THEN 'sev1' WHEN i % 20 < 4 THEN 'sev2' WHEN i % 20 < 16 THEN 'sev3' ELSE 'sev4' END::evmgmt.severity AS severity,
	   timestamptz '2025-01-01' + (i - 1) * (interval '365 days' / :events) AS detected_at,
	   i % 100 = 7 AS is_open
FROM generate_series(1, :events) i;

INSERT INTO evmgmt.event (event_id, operation_id, site_id, queue_id, event_type, detection_source, title, detected_at, opened_at,
						  opened_by, closed_at, closed_by)
SELECT event_id, 'syn', site_id, queue_id, event_type, source, 'Synthetic event ' || event_id, detected_at, detected_at, 'detector',
	   CASE WHEN NOT is_open THEN detected_at + interval '5 hours' END, CASE WHEN NOT is_open THEN 'analyst' END
FROM syn;
INSERT INTO evmgmt.pool_condition (event_id, pool, severity, state, opened_at, classified_at, response_due, resolution_due,
								   first_response_at, resolved_at)
SELECT event_id, 'spec', severity, CASE WHEN is_open THEN 'responding' ELSE 'resolved' END::evmgmt.event_state,
	   detected_at, detected_at + interval '1 minute',
	   detected_at + CASE severity WHEN 'sev1' THEN interval '5 minutes' WHEN 'sev2' THEN interval '30 minutes' WHEN 'sev3' THEN interval '1 hour' ELSE interval '2 days' END,
	   detected_at + CASE severity WHEN 'sev1' THEN interval '1 hour' WHEN 'sev2' THEN interval '4 hours' WHEN 'sev3' THEN interval '1 day' ELSE interval '5 days' END,
	   detected_at + (event_id % 70) * interval '1 minute',
	   CASE WHEN NOT is_open THEN detected_at + (30 + event_id % 240) * interval '1 minute' END
FROM syn;
INSERT INTO evmgmt.event_timeline (event_id, pool, at, actor, action, from_severity, to_severity, reason)
SELECT s.event_id, 'spec', s.detected_at + j * interval '1 minute', CASE WHEN j = 0 THEN 'detector' ELSE 'analyst' END,
	   CASE WHEN j = 0 THEN 'opened' WHEN j = 1 AND s.event_id % 13 = 0 THEN 'reclassified' ELSE 'note' END,
	   CASE WHEN j = 1 AND s.event_id % 13 = 0 THEN 'sev4'::evmgmt.severity END,
	   CASE WHEN j = 1 AND s.event_id % 13 = 0 THEN s.severity END,
	   CASE WHEN j > 0 THEN 'synthetic note ' || j END
FROM syn s CROSS JOIN generate_series(0, :timeline_per_event - 1) j;
-- an acknowledged escalation for every sev1 and sev2
INSERT INTO evmgmt.escalation (escalation_id, event_id, pool, plan_id, plan_snapshot, started_at, start_reason, state,
							   acknowledged_at, acknowledged_by, ended_at, end_reason)
SELECT event_id, event_id, 'spec', 'syn', '{}', detected_at, 'opened', 'acknowledged',
	   detected_at + (1 + event_id % 25) * interval '1 minute', 1 + event_id % 200,
	   detected_at + (1 + event_id % 25) * interval '1 minute', 'acknowledged'
FROM syn WHERE severity <= 'sev2';
INSERT INTO evmgmt.escalation_ack (escalation_id, contact_id, acked_at)
SELECT escalation_id, acknowledged_by, acknowledged_at FROM evmgmt.escalation;
INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, scheduled_at, due_at, fired_at, channel, contact_id,
										provider_id, recipient, outcome)
SELECT escalation_id, 1, 1, started_at, started_at, started_at, 'sms', acknowledged_by, 'sms', '+491510000000', 'queued'
FROM evmgmt.escalation;
-- a logged lever for every tenth event
INSERT INTO evmgmt.response_action (event_id, pool, lever, activated_at, actor)
SELECT event_id, 'spec', 'overtime', detected_at + (event_id % 70) * interval '1 minute', 'analyst'
FROM syn WHERE event_id % 10 = 0;
INSERT INTO evmgmt.notification (event_id, escalation_id, kind, channel, provider_id, contact_id, recipient, body, state,
								 created_at, sent_at)
SELECT s.event_id, CASE WHEN s.severity <= 'sev2' THEN s.event_id END,
	   CASE WHEN s.severity <= 'sev2' THEN 'escalation_step' ELSE 'status_update' END,
	   (ARRAY['sms', 'push', 'email', 'voice'])[1 + j % 4]::evmgmt.channel,
	   (ARRAY['sms', 'push', 'mail', 'voice'])[1 + j % 4],
	   CASE WHEN s.severity <= 'sev2' AND j % 4 = 0 THEN 1 + s.event_id % 200 ELSE 1 + (s.event_id + j * 7) % 200 END,
	   '+4915100000' || pg_catalog.lpad(((s.event_id + j) % 1000)::text, 3, '0'), 'synthetic', 'sent',
	   s.detected_at + j * interval '20 seconds', s.detected_at + j * interval '20 seconds' + interval '1 second'
FROM syn s CROSS JOIN generate_series(0, :notifs_per_event - 1) j;
-- a year of 15-minute intervals per site: service level mostly fine, low
-- for an hour after each event's detection at the site
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned,
								  answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled)
SELECT 'S' || s, 'Q' || s, 'spec', t, 15, 100, 95, 5, 80 - (pg_catalog.date_part('hour', t)::integer % 4) * 15, 20, 300, 35, 34
FROM generate_series(0, :sites - 1) s
CROSS JOIN generate_series(timestamptz '2025-01-01', timestamptz '2025-12-31 23:45', interval '15 minutes') t;
SELECT setval(pg_get_serial_sequence('evmgmt.event', 'event_id'), :events);
ANALYZE;

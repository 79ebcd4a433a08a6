-- Row-level security by site (sql/install/86_site_scope.sql), both sides: a
-- reader and a responder bound to one site of an operation see and change
-- only that site's events, intervals, escalations and report rows (and all
-- of an operation they are not bound in); unbound roles see everything; only
-- admins set bindings; the ETL role's strict COPY still loads.
BEGIN;
SELECT plan(42);
SET client_min_messages = warning;

INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care'), ('beta', 'Beta Support');
INSERT INTO evmgmt.calendar VALUES ('std', 'Standard week');
INSERT INTO evmgmt.calendar_hours SELECT 'std', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('MNL1', 'acme', 'Manila 1', 'Asia/Manila', 'std'), ('CEB1', 'acme', 'Cebu 1', 'Asia/Manila', 'std'),
	('DAL1', 'beta', 'Dallas 1', 'America/Chicago', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'acme', 'Billing'), ('care', 'beta', 'Care');

-- one event per site, with an escalation, a page and an attempt each; intervals per site
CREATE TEMP TABLE ev ON COMMIT DROP AS
SELECT evmgmt.open_event('capacity', s, '{aa}', 'roc_analyst', 'staffing ' || s, now() - interval '10 minutes', q) AS event_id,
	   s AS site_id
FROM (VALUES ('MNL1', 'billing'), ('CEB1', 'billing'), ('DAL1', 'care')) v(s, q);
GRANT SELECT ON ev TO PUBLIC;
INSERT INTO evmgmt.escalation_plan (plan_id, name, start_reasons, priority) VALUES ('rls', 'RLS plan', '{opened}', 1);
INSERT INTO evmgmt.escalation (event_id, pool, plan_id, plan_snapshot, start_reason, next_step_no, next_due_at)
SELECT event_id, 'aa', 'rls', '{}', 'opened', 1, now() + interval '1 day' FROM ev;
ALTER TABLE ev ADD COLUMN escalation_id bigint;
UPDATE ev SET escalation_id = x.escalation_id FROM evmgmt.escalation x WHERE x.event_id = ev.event_id;
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'https://example.invalid/h');
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, subject, body, event_id, escalation_id)
SELECT 'escalation_step', 'webhook', 'hook', 'ops', 'page ' || ev.site_id, 'x', ev.event_id, x.escalation_id
FROM ev JOIN evmgmt.escalation x USING (event_id);
INSERT INTO evmgmt.delivery_attempt (notification_id, attempt_no, started_at, finished_at, status_code, outcome)
SELECT notification_id, 1, now(), now(), 200, 'sent' FROM evmgmt.notification;
-- a step run per escalation and a parked work failure per event, so that the
-- filters on them have something to keep out
INSERT INTO evmgmt.escalation_step_run (escalation_id, cycle, step_no, scheduled_at, due_at, channel, outcome)
SELECT escalation_id, 1, 1, now(), now(), 'webhook', 'no_channel' FROM ev;
INSERT INTO evmgmt.work_failure (event_id, item, sqlstate, error, attempts, first_failed_at, failed_at, retry_at, parked)
SELECT event_id, 'status', '22008', 'timestamp out of range', 8, now(), now(), NULL, true FROM ev;
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
								  answered_in_threshold, threshold_seconds, aht_seconds, staffed)
SELECT s, q, 'aa', date_trunc('hour', now()) - interval '1 hour', 15, 100, 95, 80, 20, 300, 40
FROM (VALUES ('MNL1', 'billing'), ('CEB1', 'billing'), ('DAL1', 'care')) v(s, q);

INSERT INTO evmgmt.contact (contact_id, name) VALUES (900, 'Responder on call');
CREATE ROLE evm_rls_reader IN ROLE evmgmt_reader;
CREATE ROLE evm_rls_responder IN ROLE evmgmt_responder;
CREATE ROLE evm_rls_free IN ROLE evmgmt_reader;
CREATE ROLE evm_rls_admin IN ROLE evmgmt_admin;
CREATE ROLE evm_rls_etl LOGIN IN ROLE evmgmt_ingest;

-- only admins bind; a binding names an existing role that is not a superuser
SET LOCAL ROLE evm_rls_reader;
SELECT throws_ok($$INSERT INTO evmgmt.site_binding (role_name, site_id) VALUES ('evm_rls_reader', 'DAL1')$$,
				 '42501', NULL, 'a reader cannot bind itself to sites');
SET LOCAL ROLE evm_rls_admin;
SELECT lives_ok($$INSERT INTO evmgmt.site_binding (role_name, site_id) VALUES
	('evm_rls_reader', 'MNL1'), ('evm_rls_responder', 'MNL1'), ('evm_rls_etl', 'CEB1')$$, 'an admin binds roles to sites');
SELECT throws_ok($$INSERT INTO evmgmt.site_binding (role_name, site_id) VALUES ('evm_rls_nobody', 'MNL1')$$,
				 '42704', NULL, 'a binding of an unknown role is refused (it would restrict nobody)');
SELECT throws_ok($$INSERT INTO evmgmt.site_binding (role_name, site_id) VALUES ('evmgmt_worker', 'MNL1')$$,
				 '22023', NULL, 'the worker cannot be bound (it always sees every site)');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM evmgmt.audit_log WHERE table_name = 'site_binding'), 3, 'bindings are audited');

-- the bound reader: its site of acme, all of beta
SET LOCAL ROLE evm_rls_reader;
SELECT is(evmgmt.site_scope(), '{DAL1,MNL1}', 'the bound reader''s scope: its site of acme and every site of beta');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.event ORDER BY 1), '{DAL1,MNL1}', 'events: only the sites in scope');
SELECT is(ARRAY(SELECT e.site_id FROM evmgmt.pool_condition pc JOIN ev e USING (event_id) ORDER BY 1), '{DAL1,MNL1}',
		  'pool conditions: only those of visible events');
SELECT is((SELECT count(DISTINCT t.event_id)::int FROM evmgmt.event_timeline t), 2, 'timeline: only visible events');
SELECT is(ARRAY(SELECT e.site_id FROM evmgmt.escalation x JOIN ev e USING (event_id) ORDER BY 1), '{DAL1,MNL1}',
		  'escalations: only those of visible events');
SELECT is((SELECT count(*)::int FROM evmgmt.delivery_attempt), 2, 'delivery attempts: only pages of visible events');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.interval_stat ORDER BY 1), '{DAL1,MNL1}', 'intervals: only the sites in scope');
SELECT throws_ok('SELECT * FROM evmgmt.interval_stat_default', '42501', NULL,
				 'the default partition is not read directly (its rows are read through interval_stat)');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.event_rollup ORDER BY 1), '{DAL1,MNL1}', 'view event_rollup: only the sites in scope');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.open_event_clocks ORDER BY 1), '{DAL1,MNL1}', 'view open_event_clocks: only the sites in scope');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.escalation_status ORDER BY 1), '{DAL1,MNL1}', 'view escalation_status: only the sites in scope');
SELECT is((SELECT count(*)::int FROM evmgmt.delivery_attempt_redacted), 2, 'view delivery_attempt_redacted: only pages of visible events');
SELECT is(ARRAY(SELECT DISTINCT site_id FROM evmgmt.series_severity ORDER BY 1), '{DAL1,MNL1}', 'view series_severity: only the sites in scope');
SELECT is(ARRAY(SELECT DISTINCT site_id FROM evmgmt.live_power_of_one ORDER BY 1), '{DAL1,MNL1}', 'view live_power_of_one: only the sites in scope');

-- an unbound reader sees everything
SET LOCAL ROLE evm_rls_free;
SELECT is(evmgmt.site_scope(), NULL, 'an unbound reader: no scope');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.event ORDER BY 1), '{CEB1,DAL1,MNL1}', 'the unbound reader sees every event');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.interval_stat ORDER BY 1), '{CEB1,DAL1,MNL1}', 'and every interval');
SELECT is(ARRAY(SELECT site_id FROM evmgmt.event_rollup ORDER BY 1), '{CEB1,DAL1,MNL1}', 'and every row of the views');

-- the bound responder changes only its site's events
SET LOCAL ROLE evm_rls_responder;
SELECT is(ARRAY(SELECT ev.site_id FROM evmgmt.escalation_history h JOIN ev USING (event_id) ORDER BY 1), '{DAL1,MNL1}',
		  'view escalation_history: only the steps of the sites in scope');
SELECT is((SELECT count(*)::int FROM evmgmt.escalation_step_run), 2, 'step runs: only those of visible escalations');
SELECT throws_ok(format('SELECT evmgmt.classify_pool(%s, ''aa'', ''sev3'')', (SELECT event_id FROM ev WHERE site_id = 'CEB1')),
				 '42501', 'permission denied for event ' || (SELECT event_id FROM ev WHERE site_id = 'CEB1'),
				 'the bound responder cannot classify another site''s event');
SELECT lives_ok(format('SELECT evmgmt.classify_pool(%s, ''aa'', ''sev3'')', (SELECT event_id FROM ev WHERE site_id = 'MNL1')),
				'it classifies its own site''s event');
SELECT lives_ok(format('SELECT evmgmt.classify_pool(%s, ''aa'', ''sev3'')', (SELECT event_id FROM ev WHERE site_id = 'DAL1')),
				'and an event of the operation it is not bound in');
SELECT throws_ok($$SELECT evmgmt.open_event('demand', 'CEB1', '{aa}', 'roc_analyst', 'surge', NULL, 'billing')$$,
				 '42501', 'permission denied for site CEB1', 'it cannot open an event at another site');
SELECT throws_ok(format('SELECT evmgmt.resolve_event(%s, ''done'')', (SELECT event_id FROM ev WHERE site_id = 'CEB1')),
				 '42501', NULL, 'nor resolve one');
SELECT throws_ok(format('SELECT evmgmt.acknowledge(%s, 900)', (SELECT escalation_id FROM ev WHERE site_id = 'CEB1')),
				 '42501', 'permission denied for escalation ' || (SELECT escalation_id FROM ev WHERE site_id = 'CEB1'),
				 'nor acknowledge its escalation');
SELECT throws_ok(format('SELECT evmgmt.post_status_update(%s, ''on it'')', (SELECT event_id FROM ev WHERE site_id = 'CEB1')),
				 '42501', NULL, 'nor post its status');
SELECT is(ARRAY(SELECT ev.site_id FROM evmgmt.work_failure w JOIN ev USING (event_id) ORDER BY 1), '{DAL1,MNL1}',
		  'work failures: only those of visible events');
RESET ROLE;
SELECT is((SELECT pc.severity::text FROM evmgmt.pool_condition pc JOIN ev USING (event_id) WHERE ev.site_id = 'CEB1'), NULL,
		  'the other site''s event is unchanged');

-- acknowledging by event goes through each escalation's own check
SET LOCAL ROLE evm_rls_responder;
SELECT throws_ok(format('SELECT evmgmt.acknowledge_event(%s, NULL, 900)', (SELECT event_id FROM ev WHERE site_id = 'CEB1')),
				 '42501', NULL, 'nor acknowledge all of another site''s event at once');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM evmgmt.escalation_ack), 0, 'and nothing was acknowledged');

-- the ETL role bound to a site still loads every site, and detection acts
-- for the operation (the strict COPY runs under row security)
SET LOCAL ROLE evm_rls_etl;
COPY evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds) FROM stdin WITH (FORMAT csv);
MNL1,billing,spec,2026-03-02 09:00+08,15,100,95,80,20
DAL1,care,spec,2026-03-02 09:00+08,15,100,95,80,20
\.
SELECT throws_ok($$COPY evmgmt.interval_stat (site_id) FROM '/etc/passwd'$$, '42501', NULL,
				 'a COPY from a server file is not run as the owner');
SELECT throws_ok($$SELECT count(*) FROM evmgmt.interval_stat$$, '42501', NULL, 'the ETL role still cannot read intervals');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM evmgmt.interval_stat WHERE pool = 'spec'), 2, 'the ETL role''s COPY loaded both sites');
SELECT is((SELECT count(*)::int FROM evmgmt.interval_series WHERE pool = 'spec'), 2, 'and its statement trigger ran');
SELECT is((SELECT evmgmt.site_scope_exempted()), false, 'detection''s exemption ended with the load');

-- a table of the same name first on the caller's search_path is loaded as
-- the caller (only evmgmt.interval_stat itself is ever loaded as the owner)
CREATE SCHEMA evm_rls_trap;
CREATE TABLE evm_rls_trap.interval_stat (site_id text, loaded_by name DEFAULT current_user);
GRANT USAGE ON SCHEMA evm_rls_trap TO evm_rls_etl;
GRANT INSERT ON evm_rls_trap.interval_stat TO evm_rls_etl;
SET LOCAL ROLE evm_rls_etl;
SET LOCAL search_path = evm_rls_trap, evmgmt, pg_catalog;
COPY interval_stat (site_id) FROM stdin;
MNL1
\.
RESET search_path;
RESET ROLE;
SELECT is((SELECT loaded_by::text FROM evm_rls_trap.interval_stat), 'evm_rls_etl',
		  'a same-named table on the caller''s search_path is loaded as the caller');

SELECT * FROM finish();
ROLLBACK;

-- pgTAP: what each role may do, and nothing more.
BEGIN;
SELECT plan(61);

SELECT has_role(r) FROM unnest(ARRAY['evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest']) AS r;
SELECT is((SELECT bool_or(rolcanlogin) FROM pg_roles WHERE rolname LIKE 'evmgmt\_%' AND rolname <> 'evmgmt_worker'), false, 'the evmgmt roles cannot log in (but the workers'' role)');
SELECT is_member_of('evmgmt_reader', 'evmgmt_responder');
SELECT is_member_of('evmgmt_responder', 'evmgmt_admin');
SELECT isnt_member_of('evmgmt_reader', 'evmgmt_ingest');

-- granted privileges, exactly
SELECT table_privs_are('evmgmt', 'event', 'evmgmt_reader', ARRAY['SELECT']);
SELECT table_privs_are('evmgmt', 'event', 'evmgmt_admin', ARRAY['SELECT'], 'admins change events only through the lifecycle functions');
SELECT table_privs_are('evmgmt', 'pool_condition', 'evmgmt_admin', ARRAY['SELECT']);
SELECT table_privs_are('evmgmt', 'event_timeline', 'evmgmt_admin', ARRAY['SELECT']);
SELECT table_privs_are('evmgmt', 'provider_secret', 'evmgmt_reader', ARRAY[]::text[]);
SELECT table_privs_are('evmgmt', 'provider_secret', 'evmgmt_responder', ARRAY[]::text[]);
SELECT table_privs_are('evmgmt', 'provider_secret', 'evmgmt_admin', ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']);
SELECT table_privs_are('evmgmt', 'contact_channel', 'evmgmt_reader', ARRAY[]::text[]);
SELECT table_privs_are('evmgmt', 'contact_channel', 'evmgmt_responder', ARRAY['SELECT']);
SELECT table_privs_are('evmgmt', 'contact_channel_masked', 'evmgmt_reader', ARRAY['SELECT']);
SELECT table_privs_are('evmgmt', 'audit_log', 'evmgmt_admin', ARRAY['SELECT'], 'even admins only read the audit trail');
SELECT table_privs_are('evmgmt', 'audit_log', 'evmgmt_reader', ARRAY[]::text[]);
SELECT table_privs_are('evmgmt', 'interval_stat', 'evmgmt_ingest', ARRAY['INSERT']);
SELECT table_privs_are('evmgmt', 'interval_inbox', 'evmgmt_ingest', ARRAY['INSERT']);
SELECT table_privs_are('evmgmt', 'interval_forecast', 'evmgmt_ingest', ARRAY['INSERT']);
SELECT table_privs_are('evmgmt', 'forecast_inbox', 'evmgmt_ingest', ARRAY['INSERT']);
SELECT table_privs_are('evmgmt', 'interval_forecast', 'evmgmt_reader', ARRAY[]::text[], 'readers read forecasts through forecast_projection, by site');
SELECT table_privs_are('evmgmt', 'interval_stat', 'evmgmt_reader', ARRAY['SELECT']);
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p')
	  AND c.relname NOT IN ('interval_stat', 'interval_inbox', 'interval_quarantine', 'interval_inbox_raw', 'my_ingest_load', 'my_interval_quarantine',
							'interval_forecast', 'forecast_inbox')
	  AND (has_table_privilege('evmgmt_ingest', c.oid, 'SELECT') OR has_table_privilege('evmgmt_ingest', c.oid, 'INSERT')
		   OR has_table_privilege('evmgmt_ingest', c.oid, 'UPDATE') OR has_table_privilege('evmgmt_ingest', c.oid, 'DELETE'))$$,
	'ingest has no privilege outside the interval tables');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p')
	  AND (has_table_privilege('evmgmt_reader', c.oid, 'INSERT') OR has_table_privilege('evmgmt_reader', c.oid, 'UPDATE')
		   OR has_table_privilege('evmgmt_reader', c.oid, 'DELETE') OR has_table_privilege('evmgmt_reader', c.oid, 'TRUNCATE'))$$,
	'readers cannot write anything');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p')
	  AND (has_table_privilege('evmgmt_responder', c.oid, 'INSERT') OR has_table_privilege('evmgmt_responder', c.oid, 'UPDATE')
		   OR has_table_privilege('evmgmt_responder', c.oid, 'DELETE'))$$,
	'responders write only through functions');
SELECT ok(NOT has_function_privilege('evmgmt_reader', 'evmgmt.calibrate_from_defaults(text)', 'EXECUTE'), 'readers cannot calibrate');
SELECT ok(has_function_privilege('evmgmt_admin', 'evmgmt.calibrate_from_defaults(text)', 'EXECUTE'), 'admins can calibrate');

-- and in practice, as each role
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Standard week');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('MNL1', 'acme', 'Manila 1', 'Asia/Manila', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'acme', 'Billing');
INSERT INTO evmgmt.contact (contact_id, name) VALUES (1, 'Dana Cruz');
INSERT INTO evmgmt.contact_channel VALUES (1, 'sms', '+639175551234');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('hook', 'webhook', 'webhook', 'http://127.0.0.1:9/hook');
INSERT INTO evmgmt.provider_secret VALUES ('hook', 'whsec_c2VjcmV0');

SET LOCAL ROLE evmgmt_ingest;
SELECT lives_ok($$INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
				  VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:00+08', 15, 100, 90, 70, 20)$$, 'ingest loads intervals');
SELECT lives_ok($$INSERT INTO evmgmt.interval_inbox (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold, threshold_seconds)
				  VALUES ('MNL1', 'billing', 'spec', '2026-03-02 09:15+08', 15, 10, 90, 70, 20)$$, 'ingest loads through the quarantine inbox');
SELECT throws_ok($$SELECT count(*) FROM evmgmt.interval_stat$$, '42501', NULL, 'ingest cannot read intervals back');
SELECT throws_ok($$SELECT count(*) FROM evmgmt.event$$, '42501', NULL, 'ingest cannot read events');
SELECT throws_ok($$UPDATE evmgmt.interval_stat SET offered = 0$$, '42501', NULL, 'ingest cannot rewrite intervals');
RESET ROLE;

SET LOCAL ROLE evmgmt_reader;
SELECT lives_ok($$SELECT count(*) FROM evmgmt.event_rollup$$, 'readers read the roll-up');
SELECT is((SELECT address FROM evmgmt.contact_channel_masked WHERE contact_id = 1), '+**********34', 'readers see masked phone numbers');
SELECT throws_ok($$SELECT address FROM evmgmt.contact_channel$$, '42501', NULL, 'readers cannot read contact addresses');
SELECT throws_ok($$SELECT secret FROM evmgmt.provider_secret$$, '42501', NULL, 'readers cannot read provider secrets');
SELECT throws_ok($$INSERT INTO evmgmt.operation VALUES ('x', 'X')$$, '42501', NULL, 'readers cannot configure');
RESET ROLE;

SET LOCAL ROLE evmgmt_responder;
SELECT is((SELECT address FROM evmgmt.contact_channel WHERE contact_id = 1), '+639175551234', 'responders see real phone numbers');
SELECT throws_ok($$SELECT secret FROM evmgmt.provider_secret$$, '42501', NULL, 'responders cannot read provider secrets');
SELECT throws_ok($$INSERT INTO evmgmt.event (operation_id, site_id, event_type, detection_source, title, detected_at)
				   VALUES ('acme', 'MNL1', 'demand', 'roc_analyst', 'x', now())$$, '42501', NULL, 'responders cannot insert events directly');
SELECT throws_ok($$SELECT evmgmt.post_status_update(1, 'all quiet', '2100-01-01')$$, '42501', NULL,
				 'responders cannot post a status update at a time of their choosing');
SELECT ok(has_function_privilege('evmgmt.post_status_update(bigint, text)', 'EXECUTE'),
		  'responders post status updates at the current time');
RESET ROLE;

SET LOCAL ROLE evmgmt_admin;
SELECT is((SELECT secret FROM evmgmt.provider_secret WHERE provider_id = 'hook'), 'whsec_c2VjcmV0', 'admins manage provider secrets');
SELECT lives_ok($$INSERT INTO evmgmt.severity_policy SELECT 'acme', severity, definition, sl_threshold, sustain_minutes,
				  response_target, resolution_target, business_time, status_cadence, status_at_resolution
				  FROM evmgmt.severity_policy_default WHERE severity = 'sev3'$$, 'admins calibrate the severity policy');
SELECT throws_ok($$DELETE FROM evmgmt.audit_log$$, '42501', NULL, 'admins cannot delete audit rows');
SELECT throws_ok($$SELECT evmgmt.run_due_work('2100-01-01')$$, '42501', NULL, 'admins cannot run due work at a time of their choosing');
SELECT throws_ok($$SELECT evmgmt.escalation_start(1, 'aa', 'manual', '2100-01-01')$$, '42501', NULL, 'admins cannot start an escalation in the future');
SELECT throws_ok($$SELECT evmgmt.escalation_stop(1, 'aa', 'resolved', '2100-01-01')$$, '42501', NULL, 'admins cannot stop an escalation in the future');
SELECT lives_ok($$SELECT evmgmt.run_due_work()$$, 'admins run due work at the current time');
RESET ROLE;

-- clock arguments are for tests and the worker (superuser) only
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text || ' by ' || r
	  FROM pg_proc p, unnest(ARRAY['evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest']) AS r
	  WHERE p.pronamespace = 'evmgmt'::regnamespace AND p.proargnames && ARRAY['now', 'p_now']
		AND has_function_privilege(r, p.oid, 'EXECUTE')$$,
	'no role may pass a clock to a function that acts');

SELECT is((SELECT new_row ->> 'secret' FROM evmgmt.audit_log WHERE table_name = 'provider_secret'), '***', 'the audit trail never records secrets');

-- The workers' role: LOGIN (PostgreSQL 15 needs it for a background worker)
-- with no password, no superuser, no inheritance, no membership; it runs
-- the entry points and reads and settles the outbox, nothing else.
SELECT is((SELECT format('login=%s super=%s inherit=%s createrole=%s createdb=%s replication=%s bypassrls=%s password=%s',
						 rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolpassword IS NOT NULL)
		   FROM pg_authid WHERE rolname = 'evmgmt_worker'),
		  'login=t super=f inherit=f createrole=f createdb=f replication=f bypassrls=f password=f',
		  'evmgmt_worker logs in without a password and holds no special attribute');
SELECT is((SELECT count(*)::int FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'evmgmt_worker'), 0,
		  'evmgmt_worker is a member of no role');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
				WHERE p.pronamespace = 'evmgmt'::regnamespace AND has_function_privilege('evmgmt_worker', p.oid, 'EXECUTE')
				  AND NOT has_function_privilege('public', p.oid, 'EXECUTE') ORDER BY 1),
		  ARRAY['evmgmt.claim_digest_verdict(jsonb)', 'evmgmt.claim_verdict(bigint)',
				'evmgmt.digest_without_ended(evmgmt.channel,jsonb)', 'evmgmt.escalation_in_scope(bigint)', 'evmgmt.event_in_scope(bigint)',
				'evmgmt.listener_handle(text,text,text,text[],text[],text[],text,text)',
				'evmgmt.notification_in_scope(bigint)', 'evmgmt.purge_delivery_history(boolean,integer,integer)',
				'evmgmt.run_due_work()', 'evmgmt.sending_hold_reason()', 'evmgmt.site_scope()'],
		  'evmgmt_worker executes exactly the five worker entry points beyond what everybody may (due work, purge, the sending hold, the claim verdicts and a digest''s trim, the listener), and the site-scope checks its queries'' row security asks');
SELECT is(ARRAY(SELECT format('%s:%s', c.relname, string_agg(pr, ',' ORDER BY pr)) FROM pg_class c,
				unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) pr
				WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p')
				  AND has_table_privilege('evmgmt_worker', c.oid, pr)
				GROUP BY c.relname ORDER BY c.relname),
		  ARRAY['channel_provider:SELECT', 'delivery_attempt:INSERT', 'escalation:SELECT', 'notification:SELECT,UPDATE', 'provider_secret:SELECT'],
		  'evmgmt_worker reads and settles the outbox, reads providers and escalations, nothing else');
SELECT ok(has_database_privilege('evmgmt_worker', current_database(), 'CONNECT'), 'evmgmt_worker may connect to the database');
SELECT is((SELECT prosecdef FROM pg_proc WHERE oid = 'evmgmt.purge_delivery_history(boolean,integer,integer)'::regprocedure), true,
		  'the purge runs as the extension owner (evmgmt_worker has no DELETE)');

SELECT * FROM finish();
ROLLBACK;

-- pgTAP: readers can read every BI view and run every report, and read
-- nothing that holds credentials or unmasked contact data (issue 12).
BEGIN;
SELECT plan(24);

-- every BI view, SELECT for readers (and nothing more)
SELECT table_privs_are('evmgmt', v, 'evmgmt_reader', ARRAY['SELECT'])
FROM unnest(ARRAY['bi_open_events', 'bi_event_timeline', 'bi_notification_delivery', 'bi_interval_service_level',
				  'escalation_status', 'escalation_history', 'open_event_clocks', 'event_rollup']) AS v;

-- every report and the HTML event report: readers may execute them, PUBLIC not
SELECT ok(has_function_privilege('evmgmt_reader', f, 'EXECUTE') AND NOT EXISTS (
			  SELECT FROM pg_proc p, aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
			  WHERE p.oid = f::regprocedure AND a.grantee = 0),
		  'readers, not PUBLIC, may run ' || f)
FROM unnest(ARRAY[
	'evmgmt.report_target_compliance(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity)',
	'evmgmt.report_response_times(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity)',
	'evmgmt.report_severity_drift(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool)',
	'evmgmt.report_blind_spots(timestamptz, timestamptz, text, evmgmt.event_type)',
	'evmgmt.report_notification_fatigue(timestamptz, timestamptz, text, bigint)',
	'evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type)',
	'evmgmt.report_impact(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity, double precision, double precision)',
	'evmgmt.report_maturity(timestamptz, timestamptz, text)',
	'evmgmt.event_report(bigint)']) AS f;

-- the reports that read the outbox and step history as their owner return
-- names, never an address column
SELECT is_empty(
	$$SELECT p.proname, a.n FROM pg_proc p, unnest(p.proargnames) AS a(n)
	  WHERE p.pronamespace = 'evmgmt'::regnamespace AND p.prosecdef AND p.proname LIKE 'report\_%'
		AND a.n IN ('recipient', 'address', 'phone', 'email')$$,
	'no SECURITY DEFINER report returns an address column');

-- Enumeration: every relation a reader can SELECT that has a column holding
-- credentials or contact addresses is one of the masking views.
SELECT set_eq(
	$$SELECT DISTINCT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	  WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm')
		AND has_table_privilege('evmgmt_reader', c.oid, 'SELECT')
		AND a.attname IN ('address', 'recipient', 'secret', 'password', 'token', 'username', 'endpoint', 'last_error', 'body', 'payload')$$,
	ARRAY['bi_event_timeline', 'bi_notification_delivery', 'contact_channel_masked', 'escalation_history', 'channel_verification',
		  'channel_provider_redacted', 'message_template'],
	'readable relations with contact or credential columns are exactly the masking views (channel_verification masks addresses, channel_provider_redacted endpoints; message_template''s body is a template)');
SELECT table_privs_are('evmgmt', t, 'evmgmt_reader', ARRAY[]::text[])
FROM unnest(ARRAY['provider_secret', 'contact_channel', 'notification', 'escalation_step_run', 'audit_log']) AS t;

SELECT * FROM finish();
ROLLBACK;

-- pgTAP: the schema's objects, keys and constraints, pg_dump registration and
-- search_path safety.
BEGIN;
SELECT plan(89);

SELECT has_schema('evmgmt');
SELECT has_extension('evmgmt');

-- enums of the public contract
SELECT enum_has_labels('evmgmt', 'severity', ARRAY['sev1', 'sev2', 'sev3', 'sev4']);
SELECT enum_has_labels('evmgmt', 'event_type', ARRAY['capacity', 'demand', 'system', 'process', 'third_party']);
SELECT enum_has_labels('evmgmt', 'pool', ARRAY['aa', 'collab', 'spec']);
SELECT enum_has_labels('evmgmt', 'channel', ARRAY['push', 'sms', 'voice', 'email', 'webhook']);
SELECT has_enum('evmgmt'::name, 'event_state'::name, 'enum evmgmt.event_state exists');
SELECT enum_has_labels('evmgmt', 'objective', ARRAY['service_level', 'cost', 'customer_experience', 'agent_experience', 'business_value']);

-- every entity of the domain model has its table
SELECT has_table('evmgmt', t, 'table evmgmt.' || t || ' exists')
FROM unnest(ARRAY[
	'operation', 'site', 'queue', 'pool_info', 'calendar', 'calendar_hours', 'calendar_holiday',
	'severity_policy', 'severity_policy_default', 'notification_footprint', 'notification_footprint_default', 'audience',
	'event_subtype', 'detection_source', 'cause_category', 'lever_class', 'lever', 'lever_applicability',
	'event', 'pool_condition', 'event_timeline', 'response_action', 'post_resolution_analysis', 'action_item', 'objective_impact',
	'contact', 'contact_channel', 'contact_group', 'group_member', 'rota', 'rota_shift', 'audience_group',
	'escalation_plan', 'escalation_step', 'escalation', 'escalation_ack', 'escalation_step_run',
	'notification', 'delivery_attempt', 'channel_provider', 'provider_secret',
	'interval_stat', 'interval_inbox', 'interval_quarantine', 'audit_log']) AS t;

SELECT has_view('evmgmt', v, 'view evmgmt.' || v || ' exists')
FROM unnest(ARRAY['effective_severity_policy', 'effective_notification_footprint', 'event_rollup', 'contact_channel_masked']) AS v;

-- keys
SELECT col_is_pk('evmgmt', 'pool_condition', ARRAY['event_id', 'pool']::name[], 'primary key of pool_condition');
SELECT col_is_pk('evmgmt', 'interval_stat_default', ARRAY['interval_start', 'site_id', 'queue_id', 'pool']::name[], 'primary key of interval_stat (declared per partition)');
SELECT col_is_pk('evmgmt', 'severity_policy', ARRAY['operation_id', 'severity']::name[], 'primary key of severity_policy');
SELECT fk_ok('evmgmt', 'pool_condition', 'event_id', 'evmgmt', 'event', 'event_id');
-- interval_stat's codes are checked per statement (interval_stat_loaded), not by foreign keys
SELECT has_trigger('evmgmt', 'interval_stat', 'interval_stat_loaded', 'interval_stat checks its codes per statement');
SELECT has_trigger('evmgmt', 'site', 'interval_site_in_use', 'a site that interval series use cannot go');
SELECT fk_ok('evmgmt', 'event', ARRAY['operation_id', 'site_id']::name[], 'evmgmt', 'site', ARRAY['operation_id', 'site_id']::name[]);
SELECT fk_ok('evmgmt', 'event', ARRAY['subtype', 'event_type']::name[], 'evmgmt', 'event_subtype', ARRAY['subtype', 'event_type']::name[]);
SELECT fk_ok('evmgmt', 'escalation', ARRAY['event_id', 'pool']::name[], 'evmgmt', 'pool_condition', ARRAY['event_id', 'pool']::name[]);
SELECT fk_ok('evmgmt', 'delivery_attempt', 'notification_id', 'evmgmt', 'notification', 'notification_id');
SELECT col_not_null('evmgmt', 'interval_stat', c, 'interval_stat.' || c || ' is NOT NULL')
FROM unnest(ARRAY['site_id', 'queue_id', 'pool', 'interval_start', 'interval_minutes', 'offered', 'handled',
				  'abandoned', 'answered_in_threshold', 'threshold_seconds']) AS c;
-- every rule of a row is checked by one CHECK constraint, each rule by its name of 0.1.0
SELECT is((SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
		   WHERE c.conrelid = 'evmgmt.interval_stat'::regclass AND c.conname = 'interval_stat_rules' AND c.contype = 'c'),
		  'CHECK (evmgmt.interval_stat_rules(site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht, transferred, escalated, repeat_contacts))',
		  'interval_stat checks every rule of a row in CHECK interval_stat_rules');
SELECT col_is_unique('evmgmt', 'notification', ARRAY['idempotency_key']::name[], 'idempotency keys are unique');
SELECT has_index('evmgmt', 'notification', 'notification_due_idx', 'index notification_due_idx exists');
SELECT has_index('evmgmt', 'escalation', 'escalation_due_idx', 'index escalation_due_idx exists');

-- every table holding user data is registered for pg_dump, reference data is not
SELECT set_eq(
	$$SELECT c.relname::text FROM pg_extension e, unnest(e.extconfig) AS r(oid) JOIN pg_class c ON c.oid = r.oid
	  WHERE e.extname = 'evmgmt' AND c.relkind IN ('r', 'p')$$,
	$$SELECT relname::text FROM pg_class WHERE relnamespace = 'evmgmt'::regnamespace AND relkind IN ('r', 'p')
	  AND relname !~ '^interval_stat_p[0-9]{4}_[0-9]{2}$'  -- month partitions: ordinary tables made at run time
	  EXCEPT SELECT unnest(ARRAY['pool_info', 'severity_policy_default', 'notification_footprint_default', 'audience', 'interval_inbox', 'interval_inbox_raw', 'forecast_inbox',
	                          'installation'])$$,
	'every user-data table is registered with pg_extension_config_dump');
SELECT set_eq(
	$$SELECT c.relname::text FROM pg_extension e, unnest(e.extconfig) AS r(oid) JOIN pg_class c ON c.oid = r.oid
	  WHERE e.extname = 'evmgmt' AND c.relkind = 'S'$$,
	$$SELECT relname::text FROM pg_class WHERE relnamespace = 'evmgmt'::regnamespace AND relkind = 'S'$$,
	'every sequence is registered with pg_extension_config_dump');
SELECT is(
	(SELECT extcondition[array_position(extconfig, 'evmgmt.lever'::regclass::oid)] FROM pg_extension WHERE extname = 'evmgmt'),
	'WHERE NOT builtin', 'built-in catalogue rows are left to CREATE EXTENSION');
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'p')
	  AND c.relname !~ '^interval_stat_p[0-9]{4}_[0-9]{2}$'
	  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')$$,
	'every table belongs to the extension (month partitions of interval_stat are made at run time)');

-- no SQL or PL/pgSQL function relies on the caller's search_path (a
-- BEGIN ATOMIC body is bound to its objects when the function is created:
-- one without a SET clause can be inlined, 49_prediction.sql)
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	  WHERE p.pronamespace = 'evmgmt'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
	  AND NOT (l.lanname = 'sql' AND p.prosqlbody IS NOT NULL AND NOT p.prosecdef)
	  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%')$$,
	'every SQL and PL/pgSQL function pins its search_path');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p
	  WHERE p.pronamespace = 'evmgmt'::regnamespace AND p.prosecdef
	  AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%pg_temp%')$$,
	'every SECURITY DEFINER function puts pg_temp on its search_path explicitly');

-- every object is documented
SELECT is_empty(
	$$SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'p', 'v')
	  AND obj_description(c.oid, 'pg_class') IS NULL$$,
	'every table and view has a comment');
SELECT is_empty(
	$$SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'evmgmt'::regnamespace
	  AND obj_description(p.oid, 'pg_proc') IS NULL$$,
	'every function has a comment');

SELECT * FROM finish();
ROLLBACK;

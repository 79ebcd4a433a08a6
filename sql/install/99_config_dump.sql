-- Register every table that holds user data with pg_dump.  Rows shipped with
-- the extension (builtin = true) are recreated by CREATE EXTENSION and so are
-- filtered out.  This file runs last so that no table is forgotten: a table of
-- the schema that is neither registered nor listed as reference data here
-- makes CREATE EXTENSION fail.  Provider secrets are dumped (in clear: the
-- dump restores a working installation) unless the dumping session has
-- evmgmt.dump_secrets = off (docs/security.md).

DO $dump$
DECLARE
	t text;
	s text;
	reference text[] := ARRAY['pool_info', 'severity_policy_default', 'notification_footprint_default', 'audience', 'interval_inbox', 'interval_inbox_raw', 'forecast_inbox',
		-- the identity of this installation: a restored copy must not bring it (06_installation.sql)
		'installation'];
	with_builtin text[] := ARRAY['event_subtype', 'detection_source', 'cause_category', 'lever_class', 'lever', 'lever_applicability', 'message_template'];
BEGIN
	FOR t IN SELECT c.relname FROM pg_catalog.pg_class c
			 WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'p')
			 ORDER BY 1
	LOOP
		CONTINUE WHEN t = ANY (reference);
		PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('evmgmt.%I', t),
			CASE WHEN t = ANY (with_builtin) THEN 'WHERE NOT builtin'
				 WHEN t = 'provider_secret' THEN 'WHERE pg_catalog.current_setting(''evmgmt.dump_secrets'', true) IS DISTINCT FROM ''off'''
				 ELSE '' END);
	END LOOP;
	FOR s IN SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
			 WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind = 'S'
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump(s, '');
	END LOOP;
END
$dump$;

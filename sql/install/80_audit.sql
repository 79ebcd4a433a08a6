-- The append-only audit trail: who changed which configuration or event row,
-- when, from what to what.  Contact addresses are masked and secrets never
-- recorded.  Nobody, evmgmt_admin included, can change or delete audit rows.
--
-- Rule: this file attaches the audit triggers to an explicit list of tables
-- (configuration and event tables), and every other table of the schema must
-- be listed as not audited (reference data, the outbox and run history the
-- workers write, interval loads, the audit trail itself): a new table that is
-- in neither list makes CREATE EXTENSION fail, so none is forgotten.

CREATE TABLE evmgmt.audit_log (
	audit_id		uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	at				timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	txid			bigint NOT NULL DEFAULT pg_catalog.txid_current(),
	actor			text NOT NULL DEFAULT SESSION_USER,
	role_used		text NOT NULL,
	action			text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
	table_name		text NOT NULL,
	old_row			jsonb,
	new_row			jsonb
);
CREATE INDEX ON evmgmt.audit_log (at);
CREATE INDEX ON evmgmt.audit_log (table_name, at);
COMMENT ON TABLE evmgmt.audit_log IS 'Append-only audit trail of changes to configuration and event tables (actor = session_user; contact addresses masked, secrets omitted)';
COMMENT ON COLUMN evmgmt.audit_log.role_used IS 'The role taken with SET ROLE when the change was made, or none';

-- Row image fit for the audit trail: secrets dropped, contact addresses masked.
CREATE FUNCTION evmgmt.audit_image(tbl text, r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN r IS NULL THEN NULL
	WHEN tbl IN ('provider_secret', 'action_key') THEN r - 'secret' || '{"secret": "***"}'
	-- the plan snapshot is kept in the escalation itself; the plan's edits are audited
	WHEN tbl = 'escalation' THEN r - 'plan_snapshot'
	WHEN tbl IN ('contact_channel', 'notification') THEN r || pg_catalog.jsonb_build_object('address', evmgmt.mask_address(r ->> 'address'), 'recipient', evmgmt.mask_address(r ->> 'recipient')) - CASE WHEN tbl = 'notification' THEN 'address' ELSE 'recipient' END
	ELSE r
END;
COMMENT ON FUNCTION evmgmt.audit_image(text, jsonb) IS 'The row image written to audit_log: secrets replaced by ***, contact addresses masked';

-- Writes one audit row per changed row.  SECURITY DEFINER so that roles without
-- any privilege on audit_log are still audited.  While a superuser restores a
-- dump with evmgmt.restoring = on, the restored rows are not audited again.
CREATE FUNCTION evmgmt.audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	INSERT INTO evmgmt.audit_log (role_used, action, table_name, old_row, new_row)
	VALUES (pg_catalog.current_setting('role') , TG_OP, TG_TABLE_NAME,
			CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN evmgmt.audit_image(TG_TABLE_NAME, pg_catalog.to_jsonb(OLD)) END,
			CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN evmgmt.audit_image(TG_TABLE_NAME, pg_catalog.to_jsonb(NEW)) END);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.audit_row() IS 'Trigger: appends the change to audit_log';

CREATE FUNCTION evmgmt.audit_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO evmgmt.audit_log (role_used, action, table_name)
	VALUES (pg_catalog.current_setting('role'), 'TRUNCATE', TG_TABLE_NAME);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.audit_truncate() IS 'Trigger: records a TRUNCATE in audit_log';

CREATE FUNCTION evmgmt.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'the audit trail is append-only'
		USING ERRCODE = 'insufficient_privilege',
			  DETAIL = pg_catalog.format('%s on evmgmt.audit_log is not allowed.', TG_OP);
END
$$;
COMMENT ON FUNCTION evmgmt.audit_log_append_only() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE on audit_log';
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON evmgmt.audit_log
	FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON evmgmt.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_log_append_only();
-- Guards and audit triggers fire with session_replication_role = replica too:
-- setting it is no way around the audit trail (docs/security.md says what
-- that means for logical replication).
ALTER TABLE evmgmt.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only, ENABLE ALWAYS TRIGGER audit_log_no_truncate;

-- Quarantined rows carry who loaded them and when: set here, never taken from
-- a loader that is not a superuser (a superuser's restore keeps the dumped
-- values).
CREATE FUNCTION evmgmt.interval_quarantine_stamp() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- a superuser (restoring a dump, say) keeps what it loads
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r
				   WHERE r.rolname OPERATOR(pg_catalog.=) SESSION_USER AND r.rolsuper) THEN
		NEW.received_by := SESSION_USER;
		NEW.received_at := pg_catalog.clock_timestamp();
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_quarantine_stamp() IS 'Trigger: sets received_by to session_user and received_at to the clock on every quarantined row written by a role that is not a superuser';
CREATE TRIGGER interval_quarantine_stamp BEFORE INSERT OR UPDATE ON evmgmt.interval_quarantine
	FOR EACH ROW EXECUTE FUNCTION evmgmt.interval_quarantine_stamp();
ALTER TABLE evmgmt.interval_quarantine ENABLE ALWAYS TRIGGER interval_quarantine_stamp;

DO $audit$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY[
		'operation', 'calendar', 'calendar_hours', 'calendar_holiday', 'site', 'queue',
		'severity_policy', 'notification_footprint', 'event_subtype', 'detection_source',
		'cause_category', 'lever_class', 'lever', 'lever_applicability',
		'event', 'pool_condition', 'response_action', 'post_resolution_analysis', 'action_item', 'objective_impact',
		'contact', 'contact_channel', 'contact_group', 'group_member', 'rota', 'rota_shift', 'audience_group',
		'channel_provider', 'provider_secret', 'escalation_plan', 'escalation_step', 'escalation', 'escalation_ack', 'message_template',
		'detection_policy', 'maintenance_window', 'sending_origin', 'site_binding',
		'action_key', 'prediction_policy', 'response_rule', 'response_rule_firing', 'response_switch',
		'runbook', 'runbook_step']
	LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.%I FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row()', t);
		EXECUTE pg_catalog.format('CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.%I FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate()', t);
	END LOOP;
	-- operational state kept apart from its own history: every change audited
	-- (status_schedule), and the removal of quarantined rows (their loading is
	-- the quarantine row itself)
	CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.status_schedule FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
	CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.status_schedule FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();
	CREATE TRIGGER audit AFTER UPDATE OR DELETE ON evmgmt.interval_quarantine FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
	CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.interval_quarantine FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();
	FOR t IN SELECT c.relname FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tg.tgrelid
			 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'evmgmt'::regnamespace AND tg.tgname OPERATOR(pg_catalog.=) 'audit'
	LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ALWAYS TRIGGER audit, ENABLE ALWAYS TRIGGER audit_truncate', t);
	END LOOP;
END
$audit$;

DO $audit_check$
DECLARE
	not_audited text[] := ARRAY[
		'pool_info', 'severity_policy_default', 'notification_footprint_default', 'audience',
		'interval_stat', 'interval_stat_default', 'interval_inbox', 'interval_inbox_raw', 'ingest_load', 'interval_series', 'detection_state', 'detection_log', 'feed_health', 'event_timeline',
		'notification', 'delivery_attempt', 'escalation_step_run', 'target_timer', 'audit_log',
		'work_failure', 'installation', 'listener_refusal',
		-- its own record (requested_by, confirmed_at, confirmed_via), written only by SECURITY DEFINER functions
		'paging_test',
		-- loaded data and what prediction derives from it (prediction_log is its history)
		'interval_forecast', 'forecast_inbox', 'forecast_series', 'prediction_state', 'prediction_log', 'prediction_run',
		-- its own record (who, when, what), written only by runbook_step_done
		'runbook_progress'];
	missing text;
BEGIN
	SELECT pg_catalog.string_agg(c.relname, ', ' ORDER BY c.relname) INTO missing
	FROM pg_catalog.pg_class c
	WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'p')
	  AND c.relname <> ALL (not_audited)
	  AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger tg WHERE tg.tgrelid = c.oid AND tg.tgname = 'audit');
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'tables neither audited nor listed as not audited: %', missing
			USING ERRCODE = 'invalid_object_definition',
				  HINT = 'Add them to one of the two lists in sql/install/80_audit.sql.';
	END IF;
END
$audit_check$;

-- Whether this database may send (sql/install/06_installation.sql explains
-- the identity): the hold check the worker runs, the status view, and the
-- admin's evmgmt.resume_sending(backlog => 'send' | 'drop') (audited: the
-- change of sending_origin goes to the audit trail).  A held database sends
-- nothing and fires no escalation step until then.

-- Why sending is held in this database, or NULL when it may go on.
CREATE FUNCTION evmgmt.sending_hold_reason() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	i record;
	v_oid oid;
	v_other text;
BEGIN
	SELECT d.oid INTO v_oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
	SELECT * INTO i FROM evmgmt.installation;
	IF NOT FOUND THEN
		RETURN 'this database has no installation identity (evmgmt.installation is empty)';
	END IF;
	IF i.database_oid <> v_oid THEN
		RETURN pg_catalog.format('this database (oid %s) is a copy of database oid %s (CREATE DATABASE ... TEMPLATE or a file copy)',
								 v_oid, i.database_oid);
	END IF;
	SELECT pg_catalog.string_agg(o.install_id::text || ' (enabled ' || o.enabled_at || ')', ', ' ORDER BY o.enabled_at)
	INTO v_other
	FROM evmgmt.sending_origin o WHERE o.install_id <> i.install_id;
	IF v_other IS NOT NULL THEN
		RETURN 'this database was restored from a dump of installation ' || v_other
			|| '; sending was enabled there, not here';
	END IF;
	IF NOT EXISTS (SELECT FROM evmgmt.sending_origin o WHERE o.install_id = i.install_id) THEN
		RETURN 'sending was never enabled for this installation (evmgmt.sending_origin has no row for it)';
	END IF;
	-- a restore under way: its origin row may not be in yet
	IF EXISTS (SELECT FROM pg_catalog.pg_stat_activity a
			   WHERE a.datid = v_oid AND a.pid <> pg_catalog.pg_backend_pid() AND a.application_name LIKE 'pg\_restore%') THEN
		RETURN 'pg_restore is restoring into this database';
	END IF;
	IF EXISTS (SELECT FROM evmgmt.notification n
			   WHERE n.state IN ('pending', 'retry', 'sending')
				 AND (n.origin < i.install_id OR n.origin > i.install_id OR n.origin IS NULL)) THEN
		RETURN 'unsent notifications of another installation are in the outbox (restored data)';
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.sending_hold_reason() IS 'Why the worker holds all sending in this database (a restored copy, a clone), or NULL when it may send';

CREATE VIEW evmgmt.sending_status AS
SELECT r.reason IS NOT NULL AS held,
	   r.reason,
	   i.install_id,
	   i.database_oid AS recorded_database_oid,
	   (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()) AS database_oid,
	   i.system_identifier AS recorded_system_identifier,
	   (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s) AS system_identifier,
	   (SELECT pg_catalog.count(*) FROM evmgmt.notification n WHERE n.state IN ('pending', 'retry', 'sending')) AS backlog,
	   (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(o) ORDER BY o.enabled_at) FROM evmgmt.sending_origin o) AS origins
FROM (SELECT evmgmt.sending_hold_reason() AS reason) r
LEFT JOIN evmgmt.installation i ON true;
COMMENT ON VIEW evmgmt.sending_status IS 'Whether this database sends (held: a restored copy or a clone waits for evmgmt.resume_sending), why, its identity and the unsent backlog';

-- The admin's decision that this database sends: it becomes the origin, and
-- what was waiting is sent or dropped (cancelled).
CREATE FUNCTION evmgmt.resume_sending(backlog text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_reason text := evmgmt.sending_hold_reason();
	v_dropped integer := 0;
	v_oid oid;
	v_id uuid;
BEGIN
	IF backlog IS NULL OR backlog NOT IN ('send', 'drop') THEN
		RAISE EXCEPTION 'backlog must be ''send'' or ''drop'''
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('Got %L.', backlog),
				  HINT = 'Use backlog => ''send'' to deliver what was waiting, or backlog => ''drop'' to cancel it.';
	END IF;
	IF v_reason IS NULL THEN
		RAISE NOTICE 'sending is not held in this database: nothing to resume';
		RETURN 'not held';
	END IF;
	PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('evmgmt.resume_sending'));
	SELECT d.oid INTO v_oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
	DELETE FROM evmgmt.installation;
	INSERT INTO evmgmt.installation (system_identifier, database_oid)
	SELECT s.system_identifier, v_oid FROM pg_catalog.pg_control_system() s
	RETURNING install_id INTO v_id;
	IF backlog = 'drop' THEN
		UPDATE evmgmt.notification
		SET state = 'cancelled', lease_until = NULL,
			last_error = 'dropped by evmgmt.resume_sending(backlog => ''drop'') in a copy of the database'
		WHERE state IN ('pending', 'retry', 'sending');
		GET DIAGNOSTICS v_dropped = ROW_COUNT;
	ELSE
		-- the backlog becomes this installation's; what was in flight in the source is due again
		UPDATE evmgmt.notification
		SET origin = v_id,
			state = CASE WHEN state = 'sending' THEN 'retry' ELSE state END,
			lease_until = NULL
		WHERE state IN ('pending', 'retry', 'sending');
	END IF;
	-- audited: the old origins' DELETE and the new one's INSERT
	DELETE FROM evmgmt.sending_origin;
	INSERT INTO evmgmt.sending_origin (install_id, how, dropped) VALUES (v_id, 'resume: ' || backlog, v_dropped);
	PERFORM evmgmt.wake_workers();
	RETURN CASE WHEN backlog = 'drop' THEN pg_catalog.format('resumed; %s unsent notification(s) dropped', v_dropped)
				ELSE 'resumed; the backlog is sent' END;
END
$$;
COMMENT ON FUNCTION evmgmt.resume_sending(text) IS 'Makes this database (a restored copy or a clone) the one that sends: backlog => ''send'' delivers what waited, ''drop'' cancels it; audited through sending_origin';

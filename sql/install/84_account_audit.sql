-- The periodic account audit (issue 14; the seed's least privilege and named
-- accounts): dormant contacts, contacts whose database role is missing or
-- cannot act, and every login that holds an evmgmt role, with what it holds
-- and when it last left a trace.

-- One row per finding.  Activity is what the extension records: changes in
-- the audit trail (actor), acknowledgments and pages (contacts).  PostgreSQL
-- keeps no last-login time; log_connections is the place for that.
CREATE FUNCTION evmgmt.report_account_audit(dormant_after interval DEFAULT '90 days',
											at timestamptz DEFAULT pg_catalog.now())
RETURNS TABLE (subject_kind text, subject text, finding text, roles text[], last_activity timestamptz, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF dormant_after IS NULL OR dormant_after <= interval '0' THEN
		RAISE EXCEPTION 'dormant_after must be a positive interval'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = pg_catalog.format('Got %s.', dormant_after);
	END IF;
	RETURN QUERY
	WITH evm_roles AS (
		SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r
		WHERE r.rolname IN ('evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest')),
	holders AS (
		SELECT l.rolname::text AS login, l.rolsuper, l.rolvaliduntil,
			   pg_catalog.array_agg(e.rolname::text ORDER BY e.rolname) AS held
		FROM pg_catalog.pg_roles l JOIN evm_roles e ON pg_catalog.pg_has_role(l.oid, e.oid, 'MEMBER')
		WHERE l.rolcanlogin
		GROUP BY l.rolname, l.rolsuper, l.rolvaliduntil),
	seen AS (
		SELECT a.actor, pg_catalog.max(a.at) AS last_at FROM evmgmt.audit_log a GROUP BY a.actor),
	contact_seen AS (
		SELECT c.contact_id,
			   GREATEST((SELECT pg_catalog.max(k.acked_at) FROM evmgmt.escalation_ack k WHERE k.contact_id = c.contact_id),
						(SELECT s.last_at FROM seen s WHERE s.actor = c.role_name)) AS last_at,
			   (SELECT pg_catalog.count(*) FROM evmgmt.contact_channel cc WHERE cc.contact_id = c.contact_id) AS channels
		FROM evmgmt.contact c)
	SELECT 'login', h.login,
		   CASE WHEN h.rolsuper THEN 'superuser login'
				WHEN h.rolvaliduntil IS NOT NULL AND h.rolvaliduntil < at THEN 'expired login holds evmgmt roles'
				WHEN s.last_at IS NULL OR s.last_at < at - dormant_after THEN 'dormant login holds evmgmt roles'
				ELSE 'login holds evmgmt roles' END,
		   h.held, s.last_at,
		   pg_catalog.format('valid until %s', COALESCE(h.rolvaliduntil::text, 'forever'))
	FROM holders h LEFT JOIN seen s ON s.actor = h.login
	UNION ALL
	SELECT 'contact', c.name || ' (' || c.contact_id || ')',
		   CASE WHEN r.oid IS NULL THEN 'contact''s role does not exist'
				WHEN NOT r.rolcanlogin THEN 'contact''s role cannot log in'
				WHEN NOT pg_catalog.pg_has_role(r.oid, 'evmgmt_responder', 'MEMBER') THEN 'contact''s role cannot acknowledge (not an evmgmt_responder)'
				WHEN cs.channels = 0 THEN 'contact has no channel'
				ELSE 'dormant contact' END,
		   CASE WHEN r.oid IS NULL THEN NULL
				ELSE ARRAY(SELECT e.rolname::text FROM evm_roles e WHERE pg_catalog.pg_has_role(r.oid, e.oid, 'MEMBER') ORDER BY 1) END,
		   cs.last_at,
		   pg_catalog.format('role %s, %s channel(s)', c.role_name, cs.channels)
	FROM evmgmt.contact c
	JOIN contact_seen cs ON cs.contact_id = c.contact_id
	LEFT JOIN pg_catalog.pg_roles r ON r.rolname = c.role_name
	WHERE c.active AND (r.oid IS NULL OR NOT r.rolcanlogin OR NOT pg_catalog.pg_has_role(r.oid, 'evmgmt_responder', 'MEMBER')
						OR cs.channels = 0 OR cs.last_at IS NULL OR cs.last_at < at - dormant_after)
	ORDER BY 1, 2;
END
$$;
COMMENT ON FUNCTION evmgmt.report_account_audit(interval, timestamptz) IS 'Account audit: every login holding an evmgmt role (superuser, expired, dormant: no audited change within dormant_after) and every active contact that is dormant (no acknowledgment or change), has no channel, or whose role is missing, cannot log in or cannot acknowledge';

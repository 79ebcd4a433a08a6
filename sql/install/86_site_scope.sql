-- Row-level security by site (optional per operation).
--
-- An admin binds roles to sites (evmgmt.site_binding, 10_organisation.sql).
-- A role bound to some sites of an operation sees and changes only those
-- sites' events (with their pool conditions, timeline, responses, analyses,
-- action items, impacts, clocks, escalations, acknowledgments, pages and
-- delivery attempts), their intervals and detection records, and what the
-- views and reports show of them; of an operation it has no binding in, it
-- sees everything.  Bindings apply to the roles a login is a member of.
-- Superusers, the table owner and evmgmt_worker are never restricted.
--
-- The policies ask site_scope() once per statement (an InitPlan): NULL for a
-- role that nothing restricts (then every policy is true at once), else the
-- sites it may see.  Tables that hang off an event (or an escalation, or a
-- page) are visible when their parent row is: the policy looks the parent up
-- through a SECURITY DEFINER helper (event_in_scope and the like).  The views are owned by the installer,
-- which row security does not restrict, so each view that shows site data
-- filters by site_scope() itself; the lifecycle functions (SECURITY DEFINER)
-- check the event's site against it (src/lifecycle.c, 62_acknowledgment.sql).
--
-- interval_stat: PostgreSQL refuses COPY FROM into a table with row-level
-- security for the roles it applies to; src/site_scope.c runs the ETL role's
-- COPY FROM STDIN into interval_stat as the table's owner, and inserts are not
-- restricted by site (INSERT policy true), so loading works as before.

-- The role the session acts as (login or SET ROLE), also inside SECURITY
-- DEFINER functions (C, src/site_scope.c).
CREATE FUNCTION evmgmt.acting_role() RETURNS oid
AS 'MODULE_PATHNAME', 'evmgmt_acting_role'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.acting_role() IS 'OID of the role the session acts as (login or SET ROLE), unchanged inside SECURITY DEFINER functions';

-- Detection acts for the operation, not for the login whose load it evaluates
-- (C, src/site_scope.c; the exemption is entered only by interval_stat's own
-- trigger and ends with the transaction at the latest).
CREATE FUNCTION evmgmt.site_scope_exempt(exempt boolean) RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_site_scope_exempt'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION evmgmt.site_scope_exempt(boolean) IS 'Enters (true) or leaves (false) the exemption from site bindings under which detection runs; for the interval_stat trigger only';
CREATE FUNCTION evmgmt.site_scope_exempted() RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_site_scope_exempted'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION evmgmt.site_scope_exempted() IS 'Whether detection is running (site bindings restrict nobody meanwhile)';

-- NULL when nothing restricts the acting role, else the sites it may see:
-- in every operation where one of its roles is bound, the bound sites; all
-- sites of the other operations (C, src/site_scope.c: superusers, the worker
-- and detection are answered without a query, everyone else from a plan
-- kept per backend).
CREATE FUNCTION evmgmt.site_scope() RETURNS text[]
AS 'MODULE_PATHNAME', 'evmgmt_site_scope'
LANGUAGE C STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.site_scope() IS 'The sites the acting role may see and change (row-level security by site), NULL when no site binding restricts it';

CREATE FUNCTION evmgmt.site_in_scope(site_id text) RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_site_in_scope'
LANGUAGE C STABLE STRICT
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.site_in_scope(text) IS 'Whether the acting role may see and change data of this site (row-level security by site)';

-- For the lifecycle functions: refuse an event outside the acting role's sites.
CREATE FUNCTION evmgmt.require_site_in_scope(site_id text, what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT evmgmt.site_in_scope(site_id) THEN
		RAISE EXCEPTION 'permission denied for %', what
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Its site is not one of the sites the role is bound to (evmgmt.site_binding).';
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.require_site_in_scope(text, text) IS 'Raises 42501 when the acting role may not change data of this site';

-- Whether a parent row is in scope, for the policies of the tables that hang
-- off it: SECURITY DEFINER, so that the policy of a table a role may read
-- does not need the role to read the parent (readers may not read pages).
CREATE FUNCTION evmgmt.event_in_scope(event_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT FROM evmgmt.event e
				   WHERE e.event_id = $1 AND e.site_id = ANY ((SELECT evmgmt.site_scope())::text[]))
$$;
COMMENT ON FUNCTION evmgmt.event_in_scope(bigint) IS 'Whether the event is at one of the acting role''s sites (for row-level security policies)';
CREATE FUNCTION evmgmt.escalation_in_scope(escalation_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT FROM evmgmt.escalation x JOIN evmgmt.event e ON e.event_id = x.event_id
				   WHERE x.escalation_id = $1 AND e.site_id = ANY ((SELECT evmgmt.site_scope())::text[]))
$$;
COMMENT ON FUNCTION evmgmt.escalation_in_scope(bigint) IS 'Whether the escalation''s event is at one of the acting role''s sites (for row-level security policies)';
CREATE FUNCTION evmgmt.notification_in_scope(notification_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT FROM evmgmt.notification n JOIN evmgmt.event e ON e.event_id = n.event_id
				   WHERE n.notification_id = $1 AND e.site_id = ANY ((SELECT evmgmt.site_scope())::text[]))
$$;
COMMENT ON FUNCTION evmgmt.notification_in_scope(bigint) IS 'Whether the page''s event is at one of the acting role''s sites (for row-level security policies)';

-- The policies.  One per table, for every command; a table gets row security
-- enabled (not forced: the owner, that is the extension's own SECURITY
-- DEFINER code, is not restricted).
DO $policies$
DECLARE
	t text;
	scope_null constant text := '(SELECT evmgmt.site_scope()) IS NULL';
	in_scope constant text := 'site_id = ANY ((SELECT evmgmt.site_scope())::text[])';
BEGIN
	-- tables with a site
	FOREACH t IN ARRAY ARRAY['event', 'detection_state', 'detection_log', 'feed_health', 'interval_series',
							 'forecast_series', 'prediction_state', 'prediction_log'] LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE pg_catalog.format('CREATE POLICY site_scope ON evmgmt.%I USING (%s OR %s)', t, scope_null, in_scope);
	END LOOP;
	-- maintenance windows: those of the role's sites
	ALTER TABLE evmgmt.maintenance_window ENABLE ROW LEVEL SECURITY;
	EXECUTE pg_catalog.format('CREATE POLICY site_scope ON evmgmt.maintenance_window USING (%s OR %s)', scope_null, in_scope);
	-- intervals: read, change and delete by site; loading is not restricted
	ALTER TABLE evmgmt.interval_stat ENABLE ROW LEVEL SECURITY;
	EXECUTE pg_catalog.format('CREATE POLICY site_scope_read ON evmgmt.interval_stat FOR SELECT USING (%s OR %s)', scope_null, in_scope);
	EXECUTE pg_catalog.format('CREATE POLICY site_scope_update ON evmgmt.interval_stat FOR UPDATE USING (%s OR %s)', scope_null, in_scope);
	EXECUTE pg_catalog.format('CREATE POLICY site_scope_delete ON evmgmt.interval_stat FOR DELETE USING (%s OR %s)', scope_null, in_scope);
	CREATE POLICY load ON evmgmt.interval_stat FOR INSERT WITH CHECK (true);
	-- tables that hang off an event
	FOREACH t IN ARRAY ARRAY['pool_condition', 'event_timeline', 'response_action', 'post_resolution_analysis',
							 'action_item', 'objective_impact', 'status_schedule', 'target_timer', 'escalation',
							 'work_failure', 'notification', 'response_rule_firing', 'runbook_progress'] LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE pg_catalog.format(
			'CREATE POLICY site_scope ON evmgmt.%I USING (%s OR evmgmt.event_in_scope(event_id))', t, scope_null);
	END LOOP;
	-- off an escalation, off a page
	FOREACH t IN ARRAY ARRAY['escalation_ack', 'escalation_step_run'] LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE pg_catalog.format(
			'CREATE POLICY site_scope ON evmgmt.%I USING (%s OR evmgmt.escalation_in_scope(escalation_id))', t, scope_null);
	END LOOP;
	ALTER TABLE evmgmt.delivery_attempt ENABLE ROW LEVEL SECURITY;
	EXECUTE pg_catalog.format(
		'CREATE POLICY site_scope ON evmgmt.delivery_attempt USING (%s OR evmgmt.notification_in_scope(notification_id))', scope_null);
END
$policies$;

-- The views run as their owner, whom row security does not restrict: each
-- view that shows site data keeps only the acting role's sites itself.  The
-- view's query is kept as it is and filtered on its site (or its event's,
-- or its page's event's site); a role nothing restricts passes at once.
-- Run after every view is final (also at the end of the upgrade script).
CREATE FUNCTION evmgmt.restrict_view_to_site_scope(view_name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v regclass := pg_catalog.format('evmgmt.%I', view_name)::regclass;
	def text := pg_catalog.rtrim(pg_catalog.pg_get_viewdef(v), ';' || E' \n');
	cols text[];
	filter text;
	comment text := pg_catalog.obj_description(v, 'pg_class');
BEGIN
	SELECT pg_catalog.array_agg(a.attname::text) INTO cols FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = v AND a.attnum > 0 AND NOT a.attisdropped;
	filter := CASE
		WHEN 'site_id' = ANY (cols) THEN 'x.site_id = ANY ((SELECT evmgmt.site_scope())::text[])'
		WHEN 'event_id' = ANY (cols) THEN
			'EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = x.event_id AND e.site_id = ANY ((SELECT evmgmt.site_scope())::text[]))'
		WHEN 'notification_id' = ANY (cols) THEN
			'EXISTS (SELECT FROM evmgmt.notification n JOIN evmgmt.event e ON e.event_id = n.event_id '
			'WHERE n.notification_id = x.notification_id AND e.site_id = ANY ((SELECT evmgmt.site_scope())::text[]))'
		END;
	IF filter IS NULL THEN
		RAISE EXCEPTION 'view % has no site, event or notification column to filter on', v;
	END IF;
	EXECUTE pg_catalog.format('CREATE OR REPLACE VIEW %s AS SELECT x.* FROM (%s) x WHERE (SELECT evmgmt.site_scope()) IS NULL OR %s',
							  v, def, filter);
	EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', v, comment);
END
$$;
COMMENT ON FUNCTION evmgmt.restrict_view_to_site_scope(text) IS 'Install helper: makes a view keep only the rows of the acting role''s sites (row-level security by site)';
SELECT evmgmt.restrict_view_to_site_scope(v)
FROM pg_catalog.unnest(ARRAY['detection_conditions', 'detection_evidence', 'escalation_history', 'escalation_status',
							 'event_rollup', 'live_power_of_one', 'delivery_attempt_redacted', 'open_event_clocks',
							 'series_severity', 'notification_redacted', 'forecast_projection', 'prediction_outcome',
							 'rule_handled_conditions', 'runbook_checklist',
							 'bi_open_events', 'bi_event_timeline', 'bi_notification_delivery', 'bi_interval_service_level']) v;

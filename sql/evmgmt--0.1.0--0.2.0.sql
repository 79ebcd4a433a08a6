-- evmgmt upgrade script 0.1.0 -> 0.2.0, maintained by hand.
--
-- Every change to tables, types, functions, views, triggers, grants or dump
-- registration that the 0.2.0 install script (assembled from sql/install/)
-- makes must be made here too, in the same commit: the upgrade test
-- (test/integration/upgrade.sh) compares a catalog upgraded from 0.1.0 with a
-- fresh 0.2.0 one and fails on any difference.

--
-- Layout of sql/install/ (0.2.0), numbered along the data path; each file
-- creates its own objects and no file alters another file's tables.  Gaps are
-- left for later work (forecast/prediction 35-39, HTTP listener and action
-- tokens 65-67, reports 71-79).
--   00_foundation.sql        roles, schema comment, types
--   02_helpers.sql           is_time_zone, mask_address, protect_builtin,
--                            setting_interval, wake_workers(_trigger)
--   05_erlang.sql            Erlang B, C, A and friends
--   10_organisation.sql      operation, calendar, site, queue, pool_info
--   12_policy.sql            severity policy, audiences, footprint, effective views
--   15_catalogue.sql         subtypes, detection sources, causes, levers
--   20_intervals.sql         interval_stat, interval_inbox, interval_quarantine
--   30_classify.sql          severity classification from the service level
--   40_events.sql            event tables, event_rollup, the guard on event tables
--   45_business_time.sql     business windows, business time, target due times
--   46_lifecycle.sql         transition table, lifecycle functions, analysis, clocks
--   50_contacts.sql          contacts, channels, groups, rotas, audience groups
--   52_providers.sql         channel_provider, provider_secret
--   54_templates.sql         message_template, filling and rendering messages
--   55_time_windows.sql      in_time_window, next_time_window
--   56_plans.sql             escalation_plan, escalation_step, check, snapshot, schedule
--   58_escalation.sql        escalation table, its wake-up trigger, lock_event
--   59_outbox.sql            notification, delivery_attempt, enqueue, notify, signature
--   60_runs.sql              escalation_step_run, advance, start, stop
--   62_acknowledgment.sql    escalation_ack, acknowledge
--   63_footprint.sql         status_schedule, footprint messages, status cadence
--   64_target_timers.sql     target_timer, its sync trigger on pool_condition, firing
--   68_run_due_work.sql      run_due_work, the driver
--   70_escalation_reports.sql escalation_status, escalation_history
--   80_audit.sql             audit_log, audit triggers on an explicit table list
--   90_privileges.sql        every GRANT and REVOKE
--   99_config_dump.sql       pg_extension_config_dump registrations
--
-- Sections below: one per concern, each with a comment header, appended in
-- the order they were written.

\echo Use "ALTER EXTENSION evmgmt UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------
-- Issue 14: schema guard (first, before anything is created or replaced)
------------------------------------------------------------------------------

-- Schema guard (issue 14): the install and upgrade scripts bind operators and
-- functions into constraints, defaults, indexes, views and BEGIN ATOMIC
-- bodies while the search_path is the extension's schema (pg_catalog
-- implicitly first).  That is safe only if nothing but the extension's own
-- objects is in that schema, and nobody else can put anything there while
-- the script runs.  A schema pre-created by a database owner (holding, say,
-- an operator evmgmt.%(integer, smallint) that would outrank pg_catalog's
-- integer % integer) is refused here, before any object is created.  Every
-- comparison below names its pg_catalog operator, so this block itself
-- cannot be trapped.
DO $guard$
DECLARE
	nsp oid;
	ext oid;
	owner_name name;
	owner_super boolean;
	creators text;
	foreign_objects text;
BEGIN
	SELECT n.oid, r.rolname, r.rolsuper INTO nsp, owner_name, owner_super
	FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	WHERE n.nspname OPERATOR(pg_catalog.=) 'evmgmt'::name;
	SELECT e.oid INTO ext FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'evmgmt'::name;
	IF nsp IS NULL OR ext IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'evmgmt scripts must be run by CREATE EXTENSION or ALTER EXTENSION';
	END IF;
	IF NOT owner_super THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = pg_catalog.format('schema "evmgmt" is owned by role "%s", which is not a superuser', owner_name),
			DETAIL = 'evmgmt installs into a schema that CREATE EXTENSION creates; a schema another role created or owns can hold objects that the installation would bind into its constraints and functions, and run with the installer''s privileges.',
			HINT = 'Check what the schema holds, drop it (or, for an update, make a superuser its owner and remove what is not part of the extension) and run the command again.';
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g.rolname), ', ' ORDER BY g.rolname) INTO creators
	FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
	LEFT JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) a.grantee
	WHERE n.oid OPERATOR(pg_catalog.=) nsp AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
	  AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner AND NOT COALESCE(g.rolsuper, false);
	IF creators IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = 'roles other than superusers may create objects in schema "evmgmt"',
			DETAIL = pg_catalog.format('CREATE on the schema is granted to %s.', creators),
			HINT = 'REVOKE CREATE ON SCHEMA evmgmt from those roles (and PUBLIC) and run the command again.';
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), ', '
								 ORDER BY pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)) INTO foreign_objects
	FROM pg_catalog.pg_depend d
	WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
	  AND d.refobjid OPERATOR(pg_catalog.=) nsp
	  AND NOT (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
			   AND d.objid OPERATOR(pg_catalog.=) ext)
	  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend m
					  WHERE m.classid OPERATOR(pg_catalog.=) d.classid AND m.objid OPERATOR(pg_catalog.=) d.objid
						AND m.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
						AND m.refobjid OPERATOR(pg_catalog.=) ext AND m.deptype OPERATOR(pg_catalog.=) 'e');
	IF foreign_objects IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = 'schema "evmgmt" holds objects that are not part of the extension',
			DETAIL = pg_catalog.format('Foreign objects: %s.', foreign_objects),
			HINT = 'An operator or function there would be bound into the extension''s constraints and functions: check who created them, drop them and run the command again.';
	END IF;
END
$guard$;

------------------------------------------------------------------------------
-- Issue 8: fill_template_fields substitutes in one pass
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION evmgmt.fill_template_fields(template text, vars jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	field constant text := '\{\{([^{}]*)\}\}';
	parts text[];
	names text[];
	fld text;
	result text;
BEGIN
	IF template IS NULL THEN
		RETURN NULL;
	END IF;
	-- the literal text around the fields, and the field names, both in order
	parts := pg_catalog.regexp_split_to_array(template, field);
	SELECT pg_catalog.array_agg(m[1] ORDER BY n) INTO names
	FROM pg_catalog.regexp_matches(template, field, 'g') WITH ORDINALITY AS x(m, n);
	result := parts[1];
	FOR i IN 1 .. COALESCE(pg_catalog.array_length(names, 1), 0) LOOP
		fld := names[i];
		result := result || CASE
			WHEN vars ? fld THEN COALESCE(vars ->> fld, '')
			WHEN fld ~ '^[a-z_]+$' THEN ''
			ELSE '{{' || fld || '}}'
		END || parts[i + 1];
	END LOOP;
	-- tidy what empty fields leave behind
	result := pg_catalog.regexp_replace(result, '[ \t]+(\n|$)', '\1', 'g');
	result := pg_catalog.regexp_replace(result, '\n{3,}', E'\n\n', 'g');
	result := pg_catalog.regexp_replace(result, ' {2,}', ' ', 'g');
	RETURN pg_catalog.btrim(result, E' \n');
END
$$;
COMMENT ON FUNCTION evmgmt.fill_template_fields(text, jsonb) IS 'Fills the {{name}} fields of a template from a jsonb object in one pass (substituted text is never expanded again); unknown fields become empty';

------------------------------------------------------------------------------
-- Issue 8: clock arguments are for tests and the worker only
--
-- The forms with a clock argument lose its default (else a call without it
-- would be ambiguous with the new clock-free forms), which needs DROP and
-- CREATE; roles get the clock-free forms, the clocked ones stay superuser's.
------------------------------------------------------------------------------

DROP FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz);
CREATE FUNCTION evmgmt.escalation_start(event_id bigint, pool evmgmt.pool, reason text,
										now timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_pool evmgmt.pool := $2;
	p_reason text := $3;
	p_now timestamptz := $4;
	c record;
	old record;
	v_plan text;
	v_snapshot jsonb;
	v_first integer;
	v_id bigint;
BEGIN
	IF p_reason IS NULL OR p_reason NOT IN ('opened', 'upgraded', 'response_breach', 'resolution_breach', 'status_overdue', 'manual') THEN
		RAISE EXCEPTION 'unknown escalation start reason "%"', p_reason
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use opened, upgraded, response_breach, resolution_breach, status_overdue or manual.';
	END IF;
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	PERFORM evmgmt.lock_event(p_event, true);
	SELECT x.operation_id, x.event_type, x.site_id, pc.severity, pc.state
	INTO c
	FROM evmgmt.pool_condition pc JOIN evmgmt.event x ON x.event_id = pc.event_id
	WHERE pc.event_id = p_event AND pc.pool = p_pool
	FOR UPDATE OF pc;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'event % has no condition in pool %', p_event, p_pool
			USING ERRCODE = 'no_data_found';
	END IF;
	IF c.state IN ('resolved', 'cancelled') THEN
		RAISE EXCEPTION 'cannot start an escalation for pool % of event %', p_pool, p_event
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = pg_catalog.format('The pool condition is %s.', c.state);
	END IF;

	IF p_reason IN ('opened', 'upgraded') THEN
		-- a new classification replaces the escalation that ran for the old one
		FOR old IN SELECT x.escalation_id FROM evmgmt.escalation x
				   WHERE x.event_id = p_event AND x.pool = p_pool AND x.state = 'active'
					 AND x.start_reason IN ('opened', 'upgraded', 'manual')
				   ORDER BY x.escalation_id
				   FOR UPDATE
		LOOP
			UPDATE evmgmt.escalation
			SET state = 'superseded', ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'superseded: ' || p_reason
			WHERE escalation_id = old.escalation_id;
			PERFORM evmgmt.cancel_unsent(old.escalation_id);
		END LOOP;
		PERFORM evmgmt.footprint_open(p_event, p_now);
	ELSE
		SELECT x.escalation_id INTO v_id FROM evmgmt.escalation x
		WHERE x.event_id = p_event AND x.pool = p_pool AND x.state = 'active' AND x.start_reason = p_reason;
		IF FOUND THEN
			RETURN v_id;
		END IF;
	END IF;

	SELECT p.plan_id INTO v_plan
	FROM evmgmt.escalation_plan p
	WHERE p.active
	  AND (p.operation_id IS NULL OR p.operation_id = c.operation_id)
	  AND (p.severities IS NULL OR c.severity = ANY (p.severities))
	  AND (p.event_types IS NULL OR c.event_type = ANY (p.event_types))
	  AND (p.site_ids IS NULL OR c.site_id = ANY (p.site_ids))
	  AND (p.pools IS NULL OR p_pool = ANY (p.pools))
	  AND (p.start_reasons IS NULL OR p_reason = ANY (p.start_reasons))
	  AND EXISTS (SELECT FROM evmgmt.escalation_step s WHERE s.plan_id = p.plan_id)
	ORDER BY p.priority, p.operation_id IS NULL, p.plan_id
	LIMIT 1;
	IF v_plan IS NULL THEN
		RETURN NULL;
	END IF;
	v_snapshot := evmgmt.plan_snapshot(v_plan);
	v_first := evmgmt.snapshot_next_step(v_snapshot, NULL);
	INSERT INTO evmgmt.escalation (event_id, pool, plan_id, plan_snapshot, started_at, start_reason, next_step_no, next_due_at)
	VALUES (p_event, p_pool, v_plan, v_snapshot, p_now, p_reason, v_first,
			evmgmt.escalation_step_due(v_snapshot, p_now, 1, v_first))
	RETURNING escalation_id INTO v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz) IS 'Starts the escalation of a pool condition with the matching plan (lowest priority number; criteria severity, type, site, pool, start reason), snapshotting the plan; opened/upgraded replace the running one and send the footprint''s open messages; returns the escalation id or NULL when no plan matches';
CREATE FUNCTION evmgmt.escalation_start(event_id bigint, pool evmgmt.pool, reason text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.escalation_start($1, $2, $3, pg_catalog.clock_timestamp());
COMMENT ON FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text) IS 'escalation_start at the current time (clock_timestamp()); the form with a clock argument is for tests and the worker';

DROP FUNCTION evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz);
CREATE FUNCTION evmgmt.escalation_stop(event_id bigint, pool evmgmt.pool, why text,
									   now timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_pool evmgmt.pool := $2;
	p_why text := COALESCE($3, 'resolved');
	p_now timestamptz := $4;
	v_state text := CASE WHEN COALESCE($3, '') ILIKE 'cancel%' THEN 'cancelled' ELSE 'resolved' END;
	v_all boolean;
	v_ids bigint[] := '{}';
	v_stopped integer := 0;
	v_op text;
	v_facts jsonb;
	v_vars jsonb;
	x record;
	r record;
	q record;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN 0;
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	-- is the event over once this pool is?
	v_all := p_pool IS NULL OR NOT EXISTS (
		SELECT FROM evmgmt.pool_condition pc
		WHERE pc.event_id = p_event AND pc.pool <> p_pool AND pc.state NOT IN ('resolved', 'cancelled'));

	FOR x IN SELECT e.escalation_id, e.state FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND (v_all OR e.pool = p_pool) AND e.resolve_notified_at IS NULL
			 ORDER BY e.escalation_id
			 FOR UPDATE
	LOOP
		IF x.state = 'active' THEN
			UPDATE evmgmt.escalation
			SET state = v_state, ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = p_why
			WHERE escalation_id = x.escalation_id;
			v_stopped := v_stopped + 1;
		END IF;
		-- an exhausted escalation may still have pages waiting: a resolved
		-- event never pages anyone later
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
		v_ids := v_ids || x.escalation_id;
	END LOOP;

	UPDATE evmgmt.target_timer t
	SET met_at = CASE WHEN t.breached_at IS NULL THEN p_now END, next_at = NULL
	WHERE t.event_id = p_event AND (v_all OR t.pool = p_pool) AND t.met_at IS NULL AND t.next_at IS NOT NULL;

	-- everyone who was paged hears that it is over
	IF pg_catalog.cardinality(v_ids) > 0 THEN
		v_facts := evmgmt.event_facts(p_event);
		v_vars := v_facts || pg_catalog.jsonb_build_object('outcome', v_state, 'why', p_why, 'pool', p_pool);
		FOR r IN SELECT * FROM evmgmt.paged_contacts(v_ids) LOOP
			PERFORM evmgmt.notify_contact('resolved', r.contact_id, r.channel, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		FOR r IN SELECT DISTINCT ON (s.provider_id) s.provider_id, s.escalation_id
				 FROM evmgmt.escalation_step_run s
				 WHERE s.escalation_id = ANY (v_ids) AND s.channel = 'webhook' AND s.outcome = 'queued'
				 ORDER BY s.provider_id, s.run_id DESC
		LOOP
			PERFORM evmgmt.notify_endpoint('resolved', r.provider_id, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		UPDATE evmgmt.escalation SET resolve_notified_at = p_now WHERE escalation_id = ANY (v_ids);
	END IF;

	IF v_all THEN
		PERFORM evmgmt.footprint_close(p_event, v_state, p_why, p_now);
	END IF;
	RETURN v_stopped;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz) IS 'Stops the escalations of a pool condition (all pools for NULL) at once: cancels unsent notifications, queues resolve (or cancel) notices to everyone paged; when the event has no live pool left, sends the footprint''s resolution messages and ends the status cadence; returns how many were running';
CREATE FUNCTION evmgmt.escalation_stop(event_id bigint, pool evmgmt.pool, why text) RETURNS integer
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.escalation_stop($1, $2, $3, pg_catalog.clock_timestamp());
COMMENT ON FUNCTION evmgmt.escalation_stop(bigint, evmgmt.pool, text) IS 'escalation_stop at the current time (clock_timestamp()); the form with a clock argument is for tests and the worker';

DROP FUNCTION evmgmt.post_status_update(bigint, text, timestamptz);
CREATE FUNCTION evmgmt.post_status_update(event_id bigint, status text,
										  now timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_text text := pg_catalog.btrim($2);
	p_now timestamptz := $3;
	v_op text;
	v_entry bigint;
	s evmgmt.status_schedule;
	x record;
BEGIN
	IF p_text IS NULL OR p_text = '' THEN
		RAISE EXCEPTION 'a status update needs a text' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	IF NOT EXISTS (SELECT FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event AND pc.state NOT IN ('resolved', 'cancelled'))
	   OR EXISTS (SELECT FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NOT NULL) THEN
		RAISE EXCEPTION 'event % has no live pool condition', p_event
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Status updates are for events that are still unresolved.';
	END IF;
	INSERT INTO evmgmt.event_timeline (event_id, at, action, reason)
	VALUES (p_event, p_now, 'status_update', p_text)
	RETURNING entry_id INTO v_entry;

	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NULL FOR UPDATE;
	IF FOUND THEN
		UPDATE evmgmt.status_schedule
		SET last_owner_update_at = p_now, last_status_at = p_now, next_status_at = p_now + s.cadence,
			gaps = evmgmt.notify_audiences(p_event, evmgmt.footprint_audiences(v_op, s.severity, 'status'), 'status_update',
										   evmgmt.event_facts(p_event) || pg_catalog.jsonb_build_object('status', p_text, 'automatic', false),
										   p_now)
		WHERE event_id = p_event;
	END IF;

	FOR x IN SELECT e.escalation_id FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND e.start_reason = 'status_overdue' AND e.state IN ('active', 'exhausted')
			 FOR UPDATE
	LOOP
		UPDATE evmgmt.escalation
		SET state = 'satisfied', ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'status update posted'
		WHERE escalation_id = x.escalation_id;
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
	END LOOP;
	RETURN v_entry;
END
$$;
COMMENT ON FUNCTION evmgmt.post_status_update(bigint, text, timestamptz) IS 'The owner''s status update: timeline entry status_update, sent at once to the tier''s on_status audiences, restarts the cadence clock and ends an overdue-status escalation; returns the timeline entry id';
CREATE FUNCTION evmgmt.post_status_update(event_id bigint, status text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.post_status_update($1, $2, pg_catalog.clock_timestamp());
COMMENT ON FUNCTION evmgmt.post_status_update(bigint, text) IS 'post_status_update at the current time (clock_timestamp()): the form responders may call; the form with a clock argument is for tests and the worker';

DROP FUNCTION evmgmt.run_due_work(timestamptz);
CREATE FUNCTION evmgmt.run_due_work(now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_now timestamptz := $1;
	v_batch integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.escalation_batch_size', true), '')::integer, 500);
	v_more boolean := false;
	v_busy boolean := false;
	v_next timestamptz;
	n integer;
	r record;
BEGIN
	IF p_now IS NULL THEN
		RAISE EXCEPTION 'run_due_work needs a moment' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	-- Candidates are read without locks; each is then taken event first
	-- (SKIP LOCKED: a busy event waits for the next call) and re-checked
	-- under its own row lock, so a concurrent caller never fires it twice.
	n := 0;
	FOR r IN SELECT t.event_id, t.pool, t.target FROM evmgmt.target_timer t
			 WHERE t.next_at <= p_now ORDER BY t.next_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.target_timer t
		WHERE t.event_id = r.event_id AND t.pool = r.pool AND t.target = r.target AND t.next_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.target_timer_fire(r.event_id, r.pool, r.target, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT s.event_id FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at <= p_now ORDER BY s.next_status_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.status_schedule s
		WHERE s.event_id = r.event_id AND s.ended_at IS NULL AND s.next_status_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.status_tick(r.event_id, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT e.escalation_id, e.event_id FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at <= p_now ORDER BY e.next_due_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.escalation e
		WHERE e.escalation_id = r.escalation_id AND e.state = 'active' AND e.next_due_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.escalation_advance(r.escalation_id, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	IF v_more THEN
		RETURN p_now;
	END IF;
	v_next := LEAST((SELECT pg_catalog.min(e.next_due_at) FROM evmgmt.escalation e WHERE e.state = 'active'),
					(SELECT pg_catalog.min(s.next_status_at) FROM evmgmt.status_schedule s WHERE s.ended_at IS NULL),
					(SELECT pg_catalog.min(t.next_at) FROM evmgmt.target_timer t WHERE t.next_at IS NOT NULL));
	-- what is left due belongs to events busy elsewhere: look again shortly
	-- rather than at once
	IF v_busy AND v_next <= p_now THEN
		v_next := p_now + interval '1 second';
	END IF;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.run_due_work(timestamptz) IS 'Fires every due target timer, status update and escalation step at the given moment in the caller''s transaction (event, then row, locked with SKIP LOCKED, so concurrent callers never double-fire and never wait) and returns when something is due next (NULL: nothing scheduled; the given moment: more is due than one batch; a second later when what is due belongs to events busy in other transactions)';
CREATE FUNCTION evmgmt.run_due_work() RETURNS timestamptz
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.run_due_work(pg_catalog.clock_timestamp());
COMMENT ON FUNCTION evmgmt.run_due_work() IS 'run_due_work at the current time (clock_timestamp()): what the worker calls; the form with a clock argument is for tests';

REVOKE ALL ON FUNCTION
	evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz), evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.post_status_update(bigint, text, timestamptz), evmgmt.run_due_work(timestamptz),
	evmgmt.escalation_start(bigint, evmgmt.pool, text), evmgmt.escalation_stop(bigint, evmgmt.pool, text),
	evmgmt.post_status_update(bigint, text), evmgmt.run_due_work()
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.post_status_update(bigint, text) TO evmgmt_responder;
GRANT EXECUTE ON FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text),
	evmgmt.escalation_stop(bigint, evmgmt.pool, text), evmgmt.run_due_work()
	TO evmgmt_admin;
-- Queueing math (src/erlang_math.c): the Erlang functions accept and return
-- up to 1,000,000 agents (0.1.0: 100,000).  The C entry points and SQL
-- signatures are unchanged; only the comments that name the limit change.
COMMENT ON FUNCTION evmgmt.erlang_b(float8, int) IS 'Erlang B: blocking probability of a loss system with the given traffic (Erlangs) and agents (1..1000000)';
COMMENT ON FUNCTION evmgmt.power_of_one(float8, int, float8, float8, int) IS 'Power of One: Erlang C service level, ASA and occupancy from agents - steps to agents + steps (counts below 1 or above 1000000 skipped), ascending';

------------------------------------------------------------------------------
-- Ingest at volume and rule-driven detection (issue 9)
--   20_intervals.sql, 25_partitions.sql, 30_classify.sql (classify_series
--   re-bound), 32_detection.sql, 47_detection_actions.sql,
--   48_feed_health.sql, 54_templates.sql (event_facts evidence),
--   68_run_due_work.sql (partition upkeep, feed health), 80/90/99 (audit,
--   grants, dump registration of the new tables).
------------------------------------------------------------------------------

-- 0.1.0's interval_stat (foreign keys, row CHECKs, not partitioned) makes way
-- for the partitioned table; its rows move over below and it is dropped.
ALTER TABLE evmgmt.interval_stat RENAME TO interval_stat_0_1_0;
ALTER TABLE evmgmt.interval_stat_0_1_0 RENAME CONSTRAINT interval_stat_pkey TO interval_stat_0_1_0_pkey;

-- Whether an interval start lies on a boundary of gcd(minutes, 15) minutes
-- (C: one integer remainder on the timestamp, src/detect.c).
CREATE FUNCTION evmgmt.interval_start_aligned(interval_start timestamptz, interval_minutes smallint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_interval_start_aligned'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.interval_start_aligned(timestamptz, smallint) IS 'True when the start is on a whole minute aligned to the interval length, at most to 15 minutes (sites offset by 30 or 45 minutes keep their local boundaries); NULL for a length that is not positive';

-- Text parsers of the forgiving path: NULL instead of an error (src/detect.c).
CREATE FUNCTION evmgmt.try_integer(value text) RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_try_integer'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.try_integer(text) IS 'The decimal integer the text holds (clamped to the bigint range), NULL when it is none; never raises';
CREATE FUNCTION evmgmt.try_real(value text) RETURNS double precision
AS 'MODULE_PATHNAME', 'evmgmt_try_real'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.try_real(text) IS 'The number the text holds as float8in reads it, NULL when it does not parse; never raises';
CREATE FUNCTION evmgmt.try_timestamptz(value text) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'evmgmt_try_timestamptz'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.try_timestamptz(text) IS 'The timestamp the text holds as timestamptz_in reads it (session DateStyle and TimeZone), NULL when it does not parse or is out of range; never raises';

-- The rules of a row, in one CHECK constraint (C, src/detect.c): PostgreSQL
-- evaluates each CHECK constraint as an expression of its own, and 21 of
-- them cost a fifth of a plain COPY.  Each rule keeps its name of 0.1.0: a
-- row that breaks one is refused with SQLSTATE 23514 and that name as the
-- constraint, in the order PostgreSQL would evaluate them (by name):
--   interval_stat_abandoned_not_more_than_offered   handled + abandoned <= offered
--   interval_stat_abandoned_not_negative            abandoned >= 0
--   interval_stat_aht_positive                      0 < aht_seconds <= 86400
--   interval_stat_answered_not_more_than_handled    answered_in_threshold <= handled
--   interval_stat_answered_not_negative             answered_in_threshold >= 0
--   interval_stat_escalated_not_more_than_handled   escalated <= handled
--   interval_stat_escalated_not_negative            escalated >= 0
--   interval_stat_forecast_aht_positive             0 < forecast_aht <= 86400
--   interval_stat_forecast_offered_not_negative     0 <= forecast_offered <= 100,000,000
--   interval_stat_handled_not_more_than_offered     handled <= offered
--   interval_stat_handled_not_negative              handled >= 0
--   interval_stat_length_divides_hour               interval_minutes > 0 and divides 60
--   interval_stat_offered_not_negative              offered >= 0
--   interval_stat_repeat_contacts_not_more_than_offered  repeat_contacts <= offered
--   interval_stat_repeat_contacts_not_negative      repeat_contacts >= 0
--   interval_stat_scheduled_not_negative            0 <= scheduled <= 1,000,000
--   interval_stat_staffed_not_negative              0 <= staffed <= 1,000,000
--   interval_stat_start_aligned                     interval_start_aligned(interval_start, interval_minutes)
--   interval_stat_start_plausible                   2000-01-01 <= interval_start < 2200-01-01 UTC
--   interval_stat_threshold_positive                0 < threshold_seconds <= 86400
--   interval_stat_transferred_not_more_than_handled transferred <= handled
--   interval_stat_transferred_not_negative          transferred >= 0
-- A relation between two counts holds while a count is wrong on its own (the
-- more specific rule reports the row); an absent optional value breaks
-- nothing.  A row that keeps every rule is noted for the statement trigger
-- (src/load_capture.c).
CREATE FUNCTION evmgmt.interval_stat_rules(site_id text, queue_id text, pool evmgmt.pool, interval_start timestamptz,
										   interval_minutes smallint, offered integer, handled integer,
										   abandoned integer, answered_in_threshold integer,
										   threshold_seconds integer, aht_seconds real, staffed real, scheduled real,
										   forecast_offered real, forecast_aht real, transferred integer,
										   escalated integer, repeat_contacts integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_rules'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION evmgmt.interval_stat_rules(text, text, evmgmt.pool, timestamptz, smallint, integer, integer, integer, integer, integer, real, real, real, real, real, integer, integer, integer) IS 'The rules of an interval_stat row (CHECK interval_stat_rules): raises 23514 naming the rule a row breaks (the constraint names of 0.1.0), else notes the row for its load''s statement trigger and returns true';

CREATE TABLE evmgmt.interval_stat (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	interval_start	timestamptz NOT NULL,
	interval_minutes smallint NOT NULL,
	offered			integer NOT NULL,
	handled			integer NOT NULL,
	abandoned		integer NOT NULL DEFAULT 0,
	answered_in_threshold integer NOT NULL,
	threshold_seconds integer NOT NULL,
	aht_seconds		real,
	staffed			real,
	scheduled		real,
	forecast_offered real,
	forecast_aht	real,
	-- process-health counts (optional): contacts transferred, escalated to a
	-- supervisor or tier 2, and contacts from customers who had contacted before
	transferred		integer,
	escalated		integer,
	repeat_contacts	integer,
	-- every rule of the row, each by its own name (above); every value that
	-- enters is bounded: a start in 4714 BC from one row must not make
	-- partitions or classification reach across the calendar
	CONSTRAINT interval_stat_rules CHECK (evmgmt.interval_stat_rules(site_id, queue_id, pool, interval_start,
			interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds,
			staffed, scheduled, forecast_offered, forecast_aht, transferred, escalated, repeat_contacts))
	-- The key, (interval_start, site_id, queue_id, pool), is declared on each
	-- partition (interval_stat_default_pkey below, the month partitions'
	-- by create_interval_partitions), not on this table: a key of an
	-- extension-owned partitioned table would make pg_restore create the key
	-- of every run-time partition twice.  The partitions split on
	-- interval_start, so the per-partition keys are one key.  Time leads it:
	-- ETL loads arrive in time order and append to the right edge of the
	-- index; the recent-window reads of classification are range scans on it.
	-- Deferred, so that a re-delivered interval can land next to the row it
	-- replaces until the statement trigger removes that row (no probe per
	-- row, no subtransaction); the same interval twice in one statement of a
	-- new series is refused at commit.
) PARTITION BY RANGE (interval_start);
COMMENT ON TABLE evmgmt.interval_stat IS 'Interval statistics per site, queue and pool loaded by WFM ETL (COPY), partitioned by month; each bad row is refused with a named constraint; a re-delivered interval replaces the earlier row';
COMMENT ON COLUMN evmgmt.interval_stat.interval_minutes IS 'Interval length in minutes; must divide the hour (5, 10, 15, 20, 30, 60, ...)';
COMMENT ON COLUMN evmgmt.interval_stat.answered_in_threshold IS 'Contacts answered within threshold_seconds: service level = answered_in_threshold / offered';
COMMENT ON COLUMN evmgmt.interval_stat.staffed IS 'Agents staffed (logged in, average over the interval)';
COMMENT ON COLUMN evmgmt.interval_stat.scheduled IS 'Agents scheduled for the interval';
COMMENT ON COLUMN evmgmt.interval_stat.transferred IS 'Contacts transferred to another queue or team (optional process-health count)';
COMMENT ON COLUMN evmgmt.interval_stat.escalated IS 'Contacts escalated to a supervisor or tier 2 (optional process-health count)';
COMMENT ON COLUMN evmgmt.interval_stat.repeat_contacts IS 'Contacts from customers who had contacted before within the operation''s repeat window (optional process-health count)';

-- Rows outside every month partition; create_interval_partitions moves them
-- into the month partitions it creates.
CREATE TABLE evmgmt.interval_stat_default PARTITION OF evmgmt.interval_stat (
	CONSTRAINT interval_stat_default_pkey PRIMARY KEY (interval_start, site_id, queue_id, pool) DEFERRABLE INITIALLY DEFERRED
) DEFAULT;
COMMENT ON TABLE evmgmt.interval_stat_default IS 'Default partition of interval_stat: rows of months that have no partition yet (create_interval_partitions moves them out)';

-- Per series: what has been loaded so far.  The high-water mark lets the
-- statement trigger skip the re-delivery check for rows beyond it (the usual
-- live load), and feed health reads the last arrival per site from it.
CREATE TABLE evmgmt.interval_series (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	first_interval_start timestamptz NOT NULL,
	last_interval_start timestamptz NOT NULL,
	last_loaded_at	timestamptz NOT NULL,
	PRIMARY KEY (site_id, queue_id, pool),
	CONSTRAINT interval_series_first_not_after_last CHECK (first_interval_start <= last_interval_start)
);
COMMENT ON TABLE evmgmt.interval_series IS 'Every (site, queue, pool) interval series: first and last interval start loaded and when the last load committed work on it (kept by the interval_stat statement trigger)';

-- Statement-level work of every load into interval_stat: the set-based
-- replacement of foreign-key probes and per-row triggers.
CREATE TYPE evmgmt.interval_touch AS (
	site_id			text COLLATE "C",
	queue_id		text COLLATE "C",
	pool			evmgmt.pool,
	first_start		timestamptz,
	last_start		timestamptz,
	n_rows			bigint,
	min_service_level double precision,
	prev_last_start	timestamptz
);
COMMENT ON TYPE evmgmt.interval_touch IS 'One series touched by a load: its first and last interval start in the load, the number of rows, the lowest service level among them and the series'' last interval start before the load (NULL for a new series)';

-- What the statement trigger knows of the rows of its statement, noted row
-- by row by the CHECK constraint interval_stat_rules into a frame
-- that a BEFORE STATEMENT trigger opens (C, src/load_capture.c).  No
-- transition table: PostgreSQL 15 gives up multi-row inserts into a
-- partitioned table that has one.
CREATE FUNCTION evmgmt.interval_stat_load_begin() RETURNS trigger
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_load_begin'
LANGUAGE C;
COMMENT ON FUNCTION evmgmt.interval_stat_load_begin() IS 'BEFORE INSERT statement trigger of interval_stat: opens the frame in which the statement''s rows are noted';
CREATE FUNCTION evmgmt.interval_stat_touched() RETURNS evmgmt.interval_touch[]
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_touched'
LANGUAGE C STABLE;
COMMENT ON FUNCTION evmgmt.interval_stat_touched() IS 'The series the rows of the statement being loaded into interval_stat touched (NULL when none); for its statement trigger';
CREATE FUNCTION evmgmt.interval_stat_redelivered()
RETURNS TABLE (site_id text, queue_id text, pool evmgmt.pool, interval_start timestamptz)
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_redelivered'
LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION evmgmt.interval_stat_redelivered() IS 'The keys of the statement''s rows at or before their series'' high-water mark (intervals that may have been delivered before); for the statement trigger of interval_stat';
CREATE FUNCTION evmgmt.interval_stat_load_end() RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_load_end'
LANGUAGE C;
COMMENT ON FUNCTION evmgmt.interval_stat_load_end() IS 'Closes the frame of the statement being loaded into interval_stat; for its statement trigger';
CREATE FUNCTION evmgmt.stored_by_this_transaction(row_xmin xid) RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_stored_by_this_transaction'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION evmgmt.stored_by_this_transaction(xid) IS 'Whether a row with this xmin was stored by the current transaction (or one of its open subtransactions)';

CREATE FUNCTION evmgmt.interval_stat_loaded() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_touch evmgmt.interval_touch[] := evmgmt.interval_stat_touched();
	v_bad text;
BEGIN
	IF v_touch IS NULL THEN
		PERFORM evmgmt.interval_stat_load_end();
		RETURN NULL;
	END IF;

	-- Codes, once per statement.  The sites and queues named are locked as a
	-- foreign key would (KEY SHARE), so that they cannot go away before commit.
	PERFORM FROM evmgmt.site s WHERE s.site_id IN (SELECT t.site_id FROM pg_catalog.unnest(v_touch) t) FOR KEY SHARE;
	PERFORM FROM evmgmt.queue q WHERE q.queue_id IN (SELECT t.queue_id FROM pg_catalog.unnest(v_touch) t) FOR KEY SHARE;
	SELECT t.site_id INTO v_bad FROM pg_catalog.unnest(v_touch) t
	WHERE NOT EXISTS (SELECT FROM evmgmt.site s WHERE s.site_id = t.site_id) ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'insert or update on table "interval_stat" violates foreign key constraint "interval_stat_site_id_fkey"'
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'interval_stat_site_id_fkey',
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat', COLUMN = 'site_id',
				  DETAIL = pg_catalog.format('Key (site_id)=(%s) is not present in table "site".', v_bad);
	END IF;
	SELECT t.queue_id INTO v_bad FROM pg_catalog.unnest(v_touch) t
	WHERE NOT EXISTS (SELECT FROM evmgmt.queue q WHERE q.queue_id = t.queue_id) ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'insert or update on table "interval_stat" violates foreign key constraint "interval_stat_queue_id_fkey"'
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'interval_stat_queue_id_fkey',
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat', COLUMN = 'queue_id',
				  DETAIL = pg_catalog.format('Key (queue_id)=(%s) is not present in table "queue".', v_bad);
	END IF;

	-- Re-delivery: only rows at or before a series' high-water mark can meet
	-- an earlier row (the deferred key lets both stand until here); the
	-- frame noted exactly those keys.  Of the copies of such a key one is
	-- kept: the one this transaction stored last.
	IF EXISTS (SELECT FROM pg_catalog.unnest(v_touch) t WHERE t.first_start <= t.prev_last_start) THEN
		WITH cand AS (
			SELECT DISTINCT r.interval_start, r.site_id, r.queue_id, r.pool
			FROM evmgmt.interval_stat_redelivered() r
		), copies AS (
			SELECT x.tableoid AS rel, x.ctid AS tid,
				   pg_catalog.row_number() OVER (
					   PARTITION BY x.interval_start, x.site_id, x.queue_id, x.pool
					   ORDER BY evmgmt.stored_by_this_transaction(x.xmin) DESC,
								CASE WHEN evmgmt.stored_by_this_transaction(x.xmin)
									 THEN x.cmin::text::bigint END DESC NULLS LAST,
								x.tableoid DESC, x.ctid DESC) AS rank
			FROM evmgmt.interval_stat x
			JOIN cand c ON x.interval_start = c.interval_start AND x.site_id = c.site_id
					   AND x.queue_id = c.queue_id AND x.pool = c.pool
		)
		DELETE FROM evmgmt.interval_stat x USING copies c
		WHERE c.rank > 1 AND x.tableoid = c.rel AND x.ctid = c.tid;
	END IF;
	PERFORM evmgmt.interval_stat_load_end();

	INSERT INTO evmgmt.interval_series AS s (site_id, queue_id, pool, first_interval_start, last_interval_start, last_loaded_at)
	SELECT t.site_id, t.queue_id, t.pool, t.first_start, t.last_start, pg_catalog.clock_timestamp()
	FROM pg_catalog.unnest(v_touch) t
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE
	SET first_interval_start = LEAST(s.first_interval_start, EXCLUDED.first_interval_start),
		last_interval_start = GREATEST(s.last_interval_start, EXCLUDED.last_interval_start),
		last_loaded_at = EXCLUDED.last_loaded_at;

	-- Detection over the series this statement touched (47_detection_actions.sql),
	-- not for rows a restore brings back; the worker is woken at commit
	-- (feed health depends on what arrived).
	IF pg_catalog.current_setting('evmgmt.restoring', true) IS DISTINCT FROM 'on' THEN
		-- for the operation, whatever sites the loading role is bound to
		PERFORM evmgmt.site_scope_exempt(true);
		PERFORM evmgmt.detect_loaded(v_touch);
		PERFORM evmgmt.site_scope_exempt(false);
		PERFORM evmgmt.wake_workers();
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_stat_loaded() IS 'Statement trigger of interval_stat: checks site and queue codes set-based (foreign-key wording and names), replaces re-delivered intervals, keeps interval_series and runs detection on the series the statement touched';
CREATE TRIGGER interval_stat_load_begin BEFORE INSERT ON evmgmt.interval_stat
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_stat_load_begin();
CREATE TRIGGER interval_stat_loaded AFTER INSERT ON evmgmt.interval_stat
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_stat_loaded();

-- What a foreign key would refuse on the referenced side: a site or queue
-- that interval rows name cannot be deleted or renamed.
CREATE FUNCTION evmgmt.interval_code_in_use() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_col text := TG_ARGV[0];
	v_old text := pg_catalog.to_jsonb(OLD) ->> v_col;
BEGIN
	IF TG_OP = 'UPDATE' AND v_old = (pg_catalog.to_jsonb(NEW) ->> v_col) THEN
		RETURN NEW;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.interval_series s
			   WHERE (v_col = 'site_id' AND s.site_id = v_old) OR (v_col = 'queue_id' AND s.queue_id = v_old)) THEN
		RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "interval_stat_%_fkey" on table "interval_stat"',
			TG_TABLE_NAME, v_col
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = pg_catalog.format('interval_stat_%s_fkey', v_col),
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat',
				  DETAIL = pg_catalog.format('Key (%s)=(%s) is still referenced from table "interval_stat".', v_col, v_old);
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_code_in_use() IS 'Trigger on site and queue: refuses to delete or rename a code that interval series use (what a foreign key from interval_stat would refuse)';
CREATE TRIGGER interval_site_in_use BEFORE DELETE OR UPDATE OF site_id ON evmgmt.site
	FOR EACH ROW EXECUTE FUNCTION evmgmt.interval_code_in_use('site_id');
CREATE TRIGGER interval_queue_in_use BEFORE DELETE OR UPDATE OF queue_id ON evmgmt.queue
	FOR EACH ROW EXECUTE FUNCTION evmgmt.interval_code_in_use('queue_id');

-- interval_inbox: three more columns, unlogged, routed per statement
DROP TRIGGER interval_inbox_route ON evmgmt.interval_inbox;
ALTER TABLE evmgmt.interval_inbox ADD COLUMN transferred text, ADD COLUMN escalated text, ADD COLUMN repeat_contacts text;
ALTER TABLE evmgmt.interval_inbox SET UNLOGGED;
COMMENT ON TABLE evmgmt.interval_inbox IS 'COPY target that never fails on a bad row: good rows go to interval_stat, bad rows to interval_quarantine with the reason (empty after every statement)';
-- Why one inbox row cannot become an interval_stat row, as the SQLSTATE, the
-- constraint and the message that inserting it would raise (C, src/detect.c):
-- input syntax and range column by column, NOT NULL, each CHECK of
-- interval_stat, then the codes, so each bad row gets its most specific
-- reason.  NULL when the row can be stored.
CREATE OR REPLACE FUNCTION evmgmt.interval_inbox_problem(site_id text, queue_id text, pool text, interval_start text,
											  interval_minutes text, offered text, handled text, abandoned text,
											  answered_in_threshold text, threshold_seconds text, aht_seconds text,
											  staffed text, scheduled text, forecast_offered text, forecast_aht text,
											  transferred text, escalated text, repeat_contacts text,
											  site_known boolean, queue_known boolean)
RETURNS text[]
AS 'MODULE_PATHNAME', 'evmgmt_interval_inbox_problem'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.interval_inbox_problem(text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, boolean, boolean) IS 'Why an inbox row cannot be stored in interval_stat: {sqlstate, constraint, message[, detail]} as inserting it would raise (input syntax, NOT NULL, CHECK constraints, codes, in that order), NULL when it can; never raises';

-- Route one statement's inbox rows (C, src/detect.c): each row parsed once;
-- bad rows to quarantine with their reason, good rows to interval_stat, each
-- set with one INSERT; then empty the inbox of them.
CREATE OR REPLACE FUNCTION evmgmt.interval_inbox_route() RETURNS trigger
AS 'MODULE_PATHNAME', 'evmgmt_interval_inbox_route'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off;
COMMENT ON FUNCTION evmgmt.interval_inbox_route() IS 'Statement trigger of interval_inbox: parses each row of the batch once, quarantines each bad row with its most specific reason and loads the good rows into interval_stat with one INSERT (no subtransaction per row)';
CREATE TRIGGER interval_inbox_route AFTER INSERT ON evmgmt.interval_inbox
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_inbox_route();
-- the rows of 0.1.0, without detection on them (they are history), and the
-- series they make
ALTER TABLE evmgmt.interval_stat DISABLE TRIGGER interval_stat_load_begin, DISABLE TRIGGER interval_stat_loaded;
INSERT INTO evmgmt.interval_stat
	(site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold,
	 threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
SELECT site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned, answered_in_threshold,
	   threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht
FROM evmgmt.interval_stat_0_1_0;
ALTER TABLE evmgmt.interval_stat ENABLE TRIGGER interval_stat_load_begin, ENABLE TRIGGER interval_stat_loaded;
INSERT INTO evmgmt.interval_series (site_id, queue_id, pool, first_interval_start, last_interval_start, last_loaded_at)
SELECT site_id, queue_id, pool, pg_catalog.min(interval_start), pg_catalog.max(interval_start), pg_catalog.now()
FROM evmgmt.interval_stat_0_1_0
GROUP BY site_id, queue_id, pool;

-- classification reads the new table
CREATE OR REPLACE FUNCTION evmgmt.classify_series(at timestamptz DEFAULT pg_catalog.now(), lookback interval DEFAULT '1 day',
									   site_id text DEFAULT NULL, queue_id text DEFAULT NULL,
									   pool evmgmt.pool DEFAULT NULL)
RETURNS TABLE (operation_id text, site_id text, queue_id text, pool evmgmt.pool,
			   last_interval_start timestamptz, last_interval_end timestamptz, service_level double precision,
			   minutes_below_sev1 double precision, minutes_below_sev2 double precision,
			   minutes_below_sev3 double precision, severity evmgmt.severity)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT r.operation_id, r.site_id, r.queue_id, r.pool, r.last_start,
		   r.last_start + l.interval_minutes * interval '1 minute',
		   evmgmt.interval_service_level(l.answered_in_threshold, l.offered),
		   r.runs[1], r.runs[2], r.runs[3],
		   evmgmt.classify_sustained_runs(r.runs[1], r.runs[2], r.runs[3], t.sev1_sustain, t.sev2_sustain, t.sev3_sustain)
	FROM (
		-- no ORDER BY in the aggregate: it orders the intervals itself, so
		-- the groups can be hashed instead of sorting every row
		SELECT si.operation_id, s.site_id, s.queue_id, s.pool,
			   pg_catalog.max(s.interval_start) AS last_start,
			   evmgmt.sustained_runs_below(evmgmt.interval_service_level(s.answered_in_threshold, s.offered),
										   ARRAY[t.sev1_threshold, t.sev2_threshold, t.sev3_threshold],
										   s.interval_start, s.interval_minutes) AS runs
		FROM evmgmt.interval_stat s
		JOIN evmgmt.site si ON si.site_id = s.site_id
		JOIN evmgmt.severity_thresholds t ON t.operation_id = si.operation_id
		WHERE s.interval_start > classify_series.at - classify_series.lookback
		  AND s.interval_start + s.interval_minutes * interval '1 minute' <= classify_series.at
		  AND (classify_series.site_id IS NULL OR s.site_id = classify_series.site_id)
		  AND (classify_series.queue_id IS NULL OR s.queue_id = classify_series.queue_id)
		  AND (classify_series.pool IS NULL OR s.pool = classify_series.pool)
		GROUP BY si.operation_id, s.site_id, s.queue_id, s.pool
	) r
	JOIN evmgmt.severity_thresholds t ON t.operation_id = r.operation_id
	JOIN evmgmt.interval_stat l ON l.interval_start = r.last_start AND l.site_id = r.site_id
							   AND l.queue_id = r.queue_id AND l.pool = r.pool
	ORDER BY r.operation_id, r.site_id, r.queue_id, r.pool;
END;
COMMENT ON FUNCTION evmgmt.classify_series(timestamptz, interval, text, text, evmgmt.pool) IS 'Latest classification of every (site, queue, pool) interval series (or those of one site, queue or pool) at a time, over the complete intervals within lookback: trailing minutes below each tier''s threshold and the tier';

ALTER EXTENSION evmgmt DROP TABLE evmgmt.interval_stat_0_1_0;
DROP TABLE evmgmt.interval_stat_0_1_0;

CREATE FUNCTION evmgmt.interval_partition_month(relname text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN relname ~ '^interval_stat_p[0-9]{4}_[0-9]{2}$'
			THEN pg_catalog.to_date(pg_catalog.substr(relname, 16), 'YYYY_MM') END;
COMMENT ON FUNCTION evmgmt.interval_partition_month(text) IS 'The UTC month an interval_stat month partition holds, from its name interval_stat_pYYYY_MM (NULL for any other name)';

CREATE VIEW evmgmt.interval_partitions AS
SELECT c.relname AS partition_name, evmgmt.interval_partition_month(c.relname) AS month,
	   pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bounds,
	   c.reltuples::bigint AS approximate_rows, pg_catalog.pg_total_relation_size(c.oid) AS total_bytes
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'evmgmt.interval_stat'::regclass;
COMMENT ON VIEW evmgmt.interval_partitions IS 'The partitions of interval_stat (month partitions and the default one) with their bounds and size';

-- Create the month partitions from the current month to ahead months after
-- at and, with default_months, one for every month the default partition has
-- rows of (those rows are moved into it: run that by hand, in a quiet
-- moment, since a query already running may miss rows that change
-- partition under it).  Returns how many were created.
CREATE FUNCTION evmgmt.create_interval_partitions(ahead integer DEFAULT 2, at timestamptz DEFAULT pg_catalog.now(),
												  default_months boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m date;
	v_name text;
	v_from timestamptz;
	v_to timestamptz;
	n integer := 0;
BEGIN
	IF ahead IS NULL OR ahead < 0 OR ahead > 120 THEN
		RAISE EXCEPTION 'ahead must be between 0 and 120 months'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = pg_catalog.format('ahead is %s.', ahead);
	END IF;
	IF at IS NULL OR NOT pg_catalog.isfinite(at) THEN
		RAISE EXCEPTION 'at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR m IN
		SELECT x.month FROM (
			SELECT pg_catalog.generate_series(pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC'),
											  pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC') + ahead * interval '1 month',
											  interval '1 month')::date AS month
			UNION
			SELECT DISTINCT pg_catalog.date_trunc('month', d.interval_start AT TIME ZONE 'UTC')::date
			FROM evmgmt.interval_stat_default d
			WHERE default_months
		) x
		WHERE NOT EXISTS (SELECT FROM evmgmt.interval_partitions p WHERE p.month = x.month)
		ORDER BY x.month
	LOOP
		-- no load or DELETE may run while rows change partition: they would
		-- miss the rows being moved
		LOCK TABLE evmgmt.interval_stat IN SHARE ROW EXCLUSIVE MODE;
		v_name := 'interval_stat_p' || pg_catalog.to_char(m, 'YYYY_MM');
		v_from := m::timestamp AT TIME ZONE 'UTC';
		v_to := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
		IF EXISTS (SELECT FROM evmgmt.interval_stat_default d WHERE d.interval_start >= v_from AND d.interval_start < v_to) THEN
			-- the default partition holds rows of this month: move them into a
			-- new table first, then attach it
			EXECUTE pg_catalog.format('CREATE TABLE evmgmt.%I (LIKE evmgmt.interval_stat INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
			EXECUTE pg_catalog.format(
				'WITH moved AS (DELETE FROM evmgmt.interval_stat_default WHERE interval_start >= $1 AND interval_start < $2 RETURNING *) '
				'INSERT INTO evmgmt.%I SELECT * FROM moved', v_name) USING v_from, v_to;
			EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ADD CONSTRAINT %I PRIMARY KEY (interval_start, site_id, queue_id, pool) DEFERRABLE INITIALLY DEFERRED',
									  v_name, v_name || '_pkey');
			EXECUTE pg_catalog.format('ALTER TABLE evmgmt.interval_stat ATTACH PARTITION evmgmt.%I FOR VALUES FROM (%L) TO (%L)',
									  v_name, v_from, v_to);
		ELSE
			EXECUTE pg_catalog.format('CREATE TABLE evmgmt.%I PARTITION OF evmgmt.interval_stat (CONSTRAINT %I PRIMARY KEY (interval_start, site_id, queue_id, pool) DEFERRABLE INITIALLY DEFERRED) FOR VALUES FROM (%L) TO (%L)',
									  v_name, v_name || '_pkey', v_from, v_to);
		END IF;
		EXECUTE pg_catalog.format('COMMENT ON TABLE evmgmt.%I IS %L', v_name,
								  'Month partition of interval_stat (' || pg_catalog.to_char(m, 'YYYY-MM') || ', UTC)');
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.create_interval_partitions(integer, timestamptz, boolean) IS 'Creates the month partitions of interval_stat from the month of at to ahead months later and, with default_months, one for each month the default partition has rows of (moving them in); returns how many were created';

-- Drop the month partitions that ended retention or longer before at, and
-- delete rows that old from the default partition.  Returns how many
-- partitions were dropped.
CREATE FUNCTION evmgmt.drop_interval_partitions(retention interval, at timestamptz DEFAULT pg_catalog.now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	p record;
	n integer := 0;
	v_cut timestamptz;
BEGIN
	IF retention IS NULL OR retention < interval '1 day' THEN
		RAISE EXCEPTION 'retention must be at least 1 day'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = pg_catalog.format('retention is %s.', retention);
	END IF;
	IF at IS NULL OR NOT pg_catalog.isfinite(at) THEN
		RAISE EXCEPTION 'at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v_cut := at - retention;
	FOR p IN SELECT x.partition_name, x.month FROM evmgmt.interval_partitions x
			 WHERE x.month IS NOT NULL
			   AND (x.month + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= v_cut
			 ORDER BY x.month
	LOOP
		EXECUTE pg_catalog.format('DROP TABLE evmgmt.%I', p.partition_name);
		n := n + 1;
	END LOOP;
	DELETE FROM evmgmt.interval_stat_default d WHERE d.interval_start < v_cut;
	-- series with nothing left no longer hold their site and queue codes
	DELETE FROM evmgmt.interval_series s WHERE s.last_interval_start < v_cut;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.drop_interval_partitions(interval, timestamptz) IS 'Drops the month partitions of interval_stat that ended at least retention before at, deletes default-partition rows that old and forgets series with nothing newer; returns how many partitions were dropped';

-- What the worker calls from run_due_work: partitions for this month and
-- evmgmt.interval_partitions_ahead months ahead (default 2) and, when
-- evmgmt.interval_retention is set (not 0), drops past it.  It moves no rows
-- out of the default partition (see create_interval_partitions).  Cheap when there is
-- nothing to do (catalog look-ups); a lock that cannot be had at once is left
-- for a later call.
CREATE FUNCTION evmgmt.maintain_interval_partitions(at timestamptz DEFAULT pg_catalog.now()) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_ahead integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.interval_partitions_ahead', true), '')::integer, 2);
	v_retention interval := NULLIF(evmgmt.setting_interval('evmgmt.interval_retention', NULL), interval '0');
	v_lock text := pg_catalog.current_setting('lock_timeout');
BEGIN
	-- a setting out of range must not stop the worker's loop
	IF v_ahead NOT BETWEEN 0 AND 120 THEN
		RAISE WARNING 'evmgmt.interval_partitions_ahead = % is out of range (0 to 120): 2 is used', v_ahead;
		v_ahead := 2;
	END IF;
	IF v_retention < interval '1 day' THEN
		RAISE WARNING 'evmgmt.interval_retention = % is shorter than a day: nothing is dropped', v_retention;
		v_retention := NULL;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.interval_partitions p
			   WHERE p.month = (pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC') + v_ahead * interval '1 month')::date)
	   AND (v_retention IS NULL OR NOT EXISTS (
			SELECT FROM evmgmt.interval_partitions p
			WHERE (p.month + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= at - v_retention)) THEN
		RETURN;
	END IF;
	BEGIN
		PERFORM pg_catalog.set_config('lock_timeout', '100ms', true);
		PERFORM evmgmt.create_interval_partitions(v_ahead, at, false);
		IF v_retention IS NOT NULL THEN
			PERFORM evmgmt.drop_interval_partitions(v_retention, at);
		END IF;
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
	EXCEPTION WHEN lock_not_available THEN
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
		RAISE WARNING 'interval partition maintenance postponed: a lock on interval_stat was not available';
	END;
END
$$;
COMMENT ON FUNCTION evmgmt.maintain_interval_partitions(timestamptz) IS 'Partition upkeep for the worker: month partitions up to evmgmt.interval_partitions_ahead months ahead (default 2), partitions past evmgmt.interval_retention dropped (when set); moves no rows; postponed when interval_stat is locked';
CREATE TABLE evmgmt.detection_policy (
	operation_id		text PRIMARY KEY REFERENCES evmgmt.operation ON DELETE CASCADE,
	enabled				boolean NOT NULL DEFAULT true,
	system_handled_ratio double precision NOT NULL DEFAULT 0.10
		CONSTRAINT detection_policy_system_ratio_fraction CHECK (system_handled_ratio >= 0 AND system_handled_ratio < 1),
	capacity_staffed_ratio double precision NOT NULL DEFAULT 0.85
		CONSTRAINT detection_policy_capacity_ratio_fraction CHECK (capacity_staffed_ratio > 0 AND capacity_staffed_ratio < 1),
	demand_offered_ratio double precision NOT NULL DEFAULT 1.3
		CONSTRAINT detection_policy_demand_ratio_above_one CHECK (demand_offered_ratio > 1 AND demand_offered_ratio < 'Infinity'),
	process_aht_ratio	double precision NOT NULL DEFAULT 1.25
		CONSTRAINT detection_policy_aht_ratio_above_one CHECK (process_aht_ratio > 1 AND process_aht_ratio < 'Infinity'),
	process_share_ratio	double precision NOT NULL DEFAULT 2.0
		CONSTRAINT detection_policy_share_ratio_above_one CHECK (process_share_ratio > 1 AND process_share_ratio < 'Infinity'),
	lookback			interval NOT NULL DEFAULT '4 hours'
		CONSTRAINT detection_policy_lookback_range CHECK (lookback >= interval '1 hour' AND lookback <= interval '2 days'),
	auto_resolve_after	integer
		CONSTRAINT detection_policy_auto_resolve_positive CHECK (auto_resolve_after > 0),
	auto_resolve_severities evmgmt.severity[] NOT NULL DEFAULT '{sev3,sev4}',
	flap_window			interval NOT NULL DEFAULT '1 hour'
		CONSTRAINT detection_policy_flap_window_positive CHECK (flap_window > interval '0'),
	flap_transitions	integer NOT NULL DEFAULT 3
		CONSTRAINT detection_policy_flap_transitions_min CHECK (flap_transitions >= 2),
	feed_due_intervals	integer NOT NULL DEFAULT 2
		CONSTRAINT detection_policy_feed_due_positive CHECK (feed_due_intervals >= 1),
	feed_severity		evmgmt.severity NOT NULL DEFAULT 'sev3',
	backfill_after		interval NOT NULL DEFAULT '2 hours'
		CONSTRAINT detection_policy_backfill_positive CHECK (backfill_after > interval '0')
);
COMMENT ON TABLE evmgmt.detection_policy IS 'Detection thresholds and noise control per operation (an operation without a row uses the defaults)';
COMMENT ON COLUMN evmgmt.detection_policy.system_handled_ratio IS 'Type inference: system when handled <= this share of offered in the breaching intervals';
COMMENT ON COLUMN evmgmt.detection_policy.capacity_staffed_ratio IS 'Type inference: capacity when staffed <= this share of scheduled';
COMMENT ON COLUMN evmgmt.detection_policy.demand_offered_ratio IS 'Type inference: demand when offered >= this multiple of forecast_offered';
COMMENT ON COLUMN evmgmt.detection_policy.process_aht_ratio IS 'Type inference: process when AHT >= this multiple of forecast AHT';
COMMENT ON COLUMN evmgmt.detection_policy.process_share_ratio IS 'Type inference: process when the escalated or transferred share >= this multiple of its trailing 7-day mean for the series and interval of day';
COMMENT ON COLUMN evmgmt.detection_policy.lookback IS 'How far back the trailing run of a series is read (a run longer than this is dated from the lookback)';
COMMENT ON COLUMN evmgmt.detection_policy.auto_resolve_after IS 'Healthy intervals after which detection resolves a recovered pool condition of a tier in auto_resolve_severities that a responder has responded to; NULL: a responder resolves';
COMMENT ON COLUMN evmgmt.detection_policy.flap_window IS 'Flapping: a series that changes between breaching and recovering flap_transitions times within this data-time window is held at its tier';
COMMENT ON COLUMN evmgmt.detection_policy.feed_due_intervals IS 'Feed health: a site whose next interval is this many interval lengths past due opens a WFM platform outage event';
COMMENT ON COLUMN evmgmt.detection_policy.backfill_after IS 'Backfill: intervals that ended longer ago than this are stored and classified but open nothing and page nobody';

CREATE VIEW evmgmt.effective_detection_policy AS
SELECT o.operation_id,
	   COALESCE(p.enabled, true) AS enabled,
	   COALESCE(p.system_handled_ratio, 0.10) AS system_handled_ratio,
	   COALESCE(p.capacity_staffed_ratio, 0.85) AS capacity_staffed_ratio,
	   COALESCE(p.demand_offered_ratio, 1.3) AS demand_offered_ratio,
	   COALESCE(p.process_aht_ratio, 1.25) AS process_aht_ratio,
	   COALESCE(p.process_share_ratio, 2.0) AS process_share_ratio,
	   COALESCE(p.lookback, interval '4 hours') AS lookback,
	   p.auto_resolve_after,
	   COALESCE(p.auto_resolve_severities, '{sev3,sev4}'::evmgmt.severity[]) AS auto_resolve_severities,
	   COALESCE(p.flap_window, interval '1 hour') AS flap_window,
	   COALESCE(p.flap_transitions, 3) AS flap_transitions,
	   COALESCE(p.feed_due_intervals, 2) AS feed_due_intervals,
	   COALESCE(p.feed_severity, 'sev3'::evmgmt.severity) AS feed_severity,
	   COALESCE(p.backfill_after, interval '2 hours') AS backfill_after
FROM evmgmt.operation o
LEFT JOIN evmgmt.detection_policy p ON p.operation_id = o.operation_id;
COMMENT ON VIEW evmgmt.effective_detection_policy IS 'Detection settings in force for every operation: its detection_policy row or the defaults';

-- Maintenance windows: detection during them is recorded, opens nothing and
-- pages nobody.  A NULL queue or pool means all of the site's.
CREATE TABLE evmgmt.maintenance_window (
	window_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site ON DELETE CASCADE,
	queue_id		text COLLATE "C" REFERENCES evmgmt.queue ON DELETE CASCADE,
	pool			evmgmt.pool,
	starts_at		timestamptz NOT NULL,
	ends_at			timestamptz NOT NULL,
	reason			text NOT NULL CHECK (reason <> ''),
	created_by		text NOT NULL DEFAULT SESSION_USER,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT maintenance_window_starts_before_ends CHECK (starts_at < ends_at)
);
CREATE INDEX ON evmgmt.maintenance_window (site_id, ends_at);
COMMENT ON TABLE evmgmt.maintenance_window IS 'Planned work per site (and optionally queue and pool) and data-time range: breaches inside are recorded in detection_log but open no event';

------------------------------------------------------------------------------
-- What detection knows and did
------------------------------------------------------------------------------

-- The condition detection follows on each series, in data time.
CREATE TABLE evmgmt.detection_state (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	status			text NOT NULL CONSTRAINT detection_state_status_known
						CHECK (status IN ('breaching', 'recovering', 'flapping', 'recovered')),
	severity		evmgmt.severity,
	event_id		bigint,
	breach_started_at timestamptz,
	evaluated_at	timestamptz NOT NULL,
	healthy_intervals integer NOT NULL DEFAULT 0,
	transitions		timestamptz[] NOT NULL DEFAULT '{}',
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (site_id, queue_id, pool)
);
CREATE INDEX ON evmgmt.detection_state (event_id);
COMMENT ON TABLE evmgmt.detection_state IS 'Per series, the condition detection follows: breaching, recovering (healthy again, event still open), flapping (held at its tier) or recovered; the event it belongs to; data times of the recent changes';

-- Every decision of detection with the figures behind it.
CREATE TABLE evmgmt.detection_log (
	detection_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	recorded_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	recorded_by		text NOT NULL DEFAULT SESSION_USER,
	site_id			text NOT NULL,
	queue_id		text,
	pool			evmgmt.pool,
	data_time		timestamptz NOT NULL,
	rule			text NOT NULL,
	decision		text NOT NULL CONSTRAINT detection_log_decision_known CHECK (decision IN (
						'opened', 'joined', 'raised', 'reopened', 'continued', 'recovering', 'flapping',
						'auto_resolved', 'maintenance', 'inhibited', 'backfill', 'feed_silent', 'feed_resumed')),
	event_id		bigint,
	severity		evmgmt.severity,
	event_type		evmgmt.event_type,
	subtype			text,
	weak_inference	boolean NOT NULL DEFAULT false,
	evidence		jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON evmgmt.detection_log (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX ON evmgmt.detection_log (site_id, data_time);
COMMENT ON TABLE evmgmt.detection_log IS 'Every detection decision with its data time, rule and evidence (intervals and figures): events opened, joined, raised, reopened, recovering; breaches suppressed by a maintenance window, inhibited by an outage, or only recorded as backfill';
COMMENT ON COLUMN evmgmt.detection_log.weak_inference IS 'The type was inferred from the largest deviation relative to its threshold, no rule matched: a suggestion to check';

CREATE VIEW evmgmt.detection_evidence AS
SELECT l.event_id, l.detection_id, l.data_time, l.site_id, l.queue_id, l.pool, l.rule, l.decision, l.severity,
	   l.event_type, l.subtype, l.weak_inference,
	   (l.evidence -> 'figures') AS figures, (l.evidence -> 'intervals') AS intervals, l.recorded_at
FROM evmgmt.detection_log l
WHERE l.event_id IS NOT NULL;
COMMENT ON VIEW evmgmt.detection_evidence IS 'The evidence behind every detection decision on an event: rule, tier, inferred type, the intervals and the figures (service level, offered vs forecast, staffed vs scheduled, AHT vs forecast, minutes below each tier)';

------------------------------------------------------------------------------
-- Type inference
------------------------------------------------------------------------------

-- First match wins (system, capacity, demand, process); otherwise the
-- largest deviation relative to its threshold, marked weak.
CREATE FUNCTION evmgmt.infer_event_type(offered double precision, handled double precision,
										staffed double precision, scheduled double precision,
										forecast_offered double precision, offered_with_forecast double precision,
										aht double precision,
										forecast_aht double precision, escalated_share double precision,
										escalated_baseline double precision, transferred_share double precision,
										transferred_baseline double precision,
										pol evmgmt.effective_detection_policy,
										OUT event_type evmgmt.event_type, OUT subtype text, OUT weak boolean,
										OUT matched text)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s_sys double precision;
	s_cap double precision;
	s_dem double precision;
	s_aht double precision;
	s_esc double precision;
	s_tra double precision;
	best double precision;
BEGIN
	weak := false;
	IF offered > 0 AND handled <= pol.system_handled_ratio * offered THEN
		event_type := 'system'; subtype := 'router_failure';
		matched := pg_catalog.format('handled %s of %s offered <= %s', handled, offered, pol.system_handled_ratio);
		RETURN;
	END IF;
	IF scheduled > 0 AND staffed <= pol.capacity_staffed_ratio * scheduled THEN
		event_type := 'capacity'; subtype := 'staffing_shortfall';
		matched := pg_catalog.format('staffed %s <= %s x scheduled %s', pg_catalog.round(staffed::numeric, 1), pol.capacity_staffed_ratio, pg_catalog.round(scheduled::numeric, 1));
		RETURN;
	END IF;
	IF forecast_offered > 0 AND offered_with_forecast >= pol.demand_offered_ratio * forecast_offered THEN
		event_type := 'demand'; subtype := 'volume_spike';
		matched := pg_catalog.format('offered %s >= %s x forecast %s', offered_with_forecast, pol.demand_offered_ratio, pg_catalog.round(forecast_offered::numeric, 1));
		RETURN;
	END IF;
	IF forecast_aht > 0 AND aht >= pol.process_aht_ratio * forecast_aht THEN
		event_type := 'process'; subtype := 'aht_inflation';
		matched := pg_catalog.format('AHT %s >= %s x forecast %s', pg_catalog.round(aht::numeric), pol.process_aht_ratio, pg_catalog.round(forecast_aht::numeric));
		RETURN;
	END IF;
	IF escalated_baseline > 0 AND escalated_share >= pol.process_share_ratio * escalated_baseline THEN
		event_type := 'process'; subtype := 'escalation_rate_spike';
		matched := pg_catalog.format('escalated share %s >= %s x 7-day mean %s', pg_catalog.round(escalated_share::numeric, 3), pol.process_share_ratio, pg_catalog.round(escalated_baseline::numeric, 3));
		RETURN;
	END IF;
	IF transferred_baseline > 0 AND transferred_share >= pol.process_share_ratio * transferred_baseline THEN
		event_type := 'process'; subtype := 'escalation_rate_spike';
		matched := pg_catalog.format('transferred share %s >= %s x 7-day mean %s', pg_catalog.round(transferred_share::numeric, 3), pol.process_share_ratio, pg_catalog.round(transferred_baseline::numeric, 3));
		RETURN;
	END IF;

	-- no rule matched: the deviation largest relative to its threshold
	weak := true;
	s_sys := CASE WHEN offered > 0 THEN (1 - handled / offered) / (1 - pol.system_handled_ratio) END;
	s_cap := CASE WHEN scheduled > 0 THEN (1 - staffed / scheduled) / (1 - pol.capacity_staffed_ratio) END;
	s_dem := CASE WHEN forecast_offered > 0 THEN (offered_with_forecast / forecast_offered - 1) / (pol.demand_offered_ratio - 1) END;
	s_aht := CASE WHEN forecast_aht > 0 THEN (aht / forecast_aht - 1) / (pol.process_aht_ratio - 1) END;
	s_esc := CASE WHEN escalated_baseline > 0 THEN (escalated_share / escalated_baseline - 1) / (pol.process_share_ratio - 1) END;
	s_tra := CASE WHEN transferred_baseline > 0 THEN (transferred_share / transferred_baseline - 1) / (pol.process_share_ratio - 1) END;
	best := GREATEST(s_sys, s_cap, s_dem, s_aht, s_esc, s_tra);
	IF best IS NULL THEN
		event_type := 'capacity';
		matched := 'no staffing, forecast or handle-time figures: capacity by default';
	ELSIF best = s_cap THEN
		event_type := 'capacity'; subtype := 'staffing_shortfall';
		matched := pg_catalog.format('largest deviation: staffed vs scheduled (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSIF best = s_dem THEN
		event_type := 'demand'; subtype := 'volume_spike';
		matched := pg_catalog.format('largest deviation: offered vs forecast (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSIF best = s_aht THEN
		event_type := 'process'; subtype := 'aht_inflation';
		matched := pg_catalog.format('largest deviation: AHT vs forecast (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSIF best = s_esc OR best = s_tra THEN
		event_type := 'process'; subtype := 'escalation_rate_spike';
		matched := pg_catalog.format('largest deviation: escalated or transferred share vs 7-day mean (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	ELSE
		event_type := 'system';
		matched := pg_catalog.format('largest deviation: handled vs offered (%s of the threshold)', pg_catalog.round(best::numeric, 2));
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.infer_event_type(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, evmgmt.effective_detection_policy) IS 'Type and subtype suggested by the figures of the breaching intervals (first match wins: system, capacity, demand, process; else the largest relative deviation, weak)';

------------------------------------------------------------------------------
-- Detection after each load
------------------------------------------------------------------------------

-- One interval of a series under evaluation, with the trailing runs below
-- the three tier thresholds up to it.
CREATE TYPE evmgmt.detection_row AS (
	interval_start	timestamptz,
	interval_minutes integer,
	service_level	double precision,
	runs			double precision[],
	offered			integer,
	handled			integer,
	answered		integer,
	staffed			real,
	scheduled		real,
	forecast_offered real,
	aht				real,
	forecast_aht	real,
	escalated		integer,
	transferred		integer
);
COMMENT ON TYPE evmgmt.detection_row IS 'An interval of a series as detection reads it: service level, trailing minutes below each tier threshold and the figures for type inference';

CREATE VIEW evmgmt.detection_conditions AS
SELECT d.site_id, d.queue_id, d.pool, d.status, d.severity, d.event_id, d.breach_started_at, d.evaluated_at,
	   d.healthy_intervals, pc.state AS condition_state, pc.severity AS condition_severity
FROM evmgmt.detection_state d
LEFT JOIN evmgmt.pool_condition pc ON pc.event_id = d.event_id AND pc.pool = d.pool;
COMMENT ON VIEW evmgmt.detection_conditions IS 'Each series detection follows with its status (breaching, recovering, flapping, recovered) next to the state of its pool condition';

-- Note on an event's timeline that a rule acted, with who loaded the data.
CREATE FUNCTION evmgmt.detection_note(p_event_id bigint, p_pool evmgmt.pool, p_rule text, p_reason text, p_details jsonb)
RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	INSERT INTO evmgmt.event_timeline (event_id, pool, actor, action, reason, details)
	VALUES (p_event_id, p_pool, 'rule:' || p_rule, 'note', p_reason,
			p_details || pg_catalog.jsonb_build_object('session_user', SESSION_USER::text, 'rule', p_rule));
END;
COMMENT ON FUNCTION evmgmt.detection_note(bigint, evmgmt.pool, text, text, jsonb) IS 'Timeline note by a detection rule (actor rule:<name>; the loading session user in the details)';

-- Evaluate one series at one interval (data time) and act: open, join,
-- raise, reopen, mark recovering, or only record why not (maintenance,
-- inhibition, backfill).  Called in data order for each new interval.
CREATE FUNCTION evmgmt.detect_point(p_site text, p_queue text, p_pool evmgmt.pool, p_operation text,
									pol evmgmt.effective_detection_policy, sustains integer[],
									thresholds double precision[], pt evmgmt.detection_row,
									buf evmgmt.detection_row[], backfill boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_rule constant text := 'sustained_service_level';
	v_end timestamptz := pt.interval_start + pt.interval_minutes * interval '1 minute';
	v_tier evmgmt.severity;
	v_k integer;
	v_run_start timestamptz;
	v_healthy boolean;
	d evmgmt.detection_state;
	v_found boolean;
	f record;
	v_esc_base double precision;
	v_tra_base double precision;
	inf record;
	v_figures jsonb;
	v_intervals jsonb;
	v_evidence jsonb;
	v_event bigint;
	v_inhibitor bigint;
	v_decision text;
	v_status text;
	v_transitions timestamptz[];
	v_closed timestamptz;
	v_state evmgmt.event_state;
	v_sev evmgmt.severity;
	v_title text;
	v_reason text;
BEGIN
	v_tier := evmgmt.classify_sustained_runs(pt.runs[1], pt.runs[2], pt.runs[3], sustains[1], sustains[2], sustains[3]);
	v_healthy := pt.service_level IS NOT NULL
				 AND COALESCE(pt.runs[1], 0) = 0 AND COALESCE(pt.runs[2], 0) = 0 AND COALESCE(pt.runs[3], 0) = 0;

	SELECT * INTO d FROM evmgmt.detection_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool FOR UPDATE;
	v_found := FOUND;
	-- an event a responder resolved, closed or cancelled is no longer followed
	IF v_found AND d.status <> 'recovered' THEN
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = d.event_id AND pc.pool = p_pool;
		IF v_state IS NULL OR v_state IN ('resolved', 'cancelled')
		   OR EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = d.event_id
					  AND (e.closed_at IS NOT NULL OR e.cancelled_at IS NOT NULL)) THEN
			d.status := 'recovered';
		END IF;
	END IF;

	-- a point evaluated before (a re-delivery): only a breach worse than the
	-- one recorded acts again; nothing else is replayed
	IF v_found AND v_end <= d.evaluated_at
	   AND (v_tier IS NULL OR (d.status <> 'recovered' AND d.severity <= v_tier)) THEN
		RETURN;
	END IF;

	IF v_tier IS NULL THEN
		IF NOT v_found OR backfill THEN
			RETURN;
		END IF;
		IF d.status = 'recovered' THEN
			UPDATE evmgmt.detection_state s SET status = 'recovered', evaluated_at = v_end, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool AND s.status <> 'recovered';
			RETURN;
		END IF;
		v_status := d.status;
		v_transitions := ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x WHERE x > v_end - pol.flap_window ORDER BY x);
		IF NOT v_healthy THEN
			-- below a threshold again, not (yet) for long enough
			UPDATE evmgmt.detection_state s SET evaluated_at = v_end, healthy_intervals = 0, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
			RETURN;
		END IF;
		IF d.status = 'breaching' THEN
			v_transitions := v_transitions || v_end;
			v_status := CASE WHEN pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN 'flapping' ELSE 'recovering' END;
			d.healthy_intervals := 1;
		ELSIF d.status = 'flapping' THEN
			d.healthy_intervals := d.healthy_intervals + 1;
			-- held until healthy for a whole flap window
			IF d.healthy_intervals * pt.interval_minutes * interval '1 minute' >= pol.flap_window THEN
				v_status := 'recovering';
			END IF;
		ELSE
			d.healthy_intervals := d.healthy_intervals + 1;
		END IF;
		v_evidence := pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object(
						  'service_level', pt.service_level, 'healthy_intervals', d.healthy_intervals));
		IF v_status <> d.status THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', v_status, d.event_id, d.severity, v_evidence);
			PERFORM evmgmt.detection_note(d.event_id, p_pool, 'recovery',
				CASE v_status WHEN 'flapping' THEN pg_catalog.format('%s flapping: held at %s', p_pool, d.severity)
							  ELSE pg_catalog.format('%s recovering: service level %s%%', p_pool,
													 pg_catalog.round((pt.service_level * 100)::numeric)) END,
				pg_catalog.jsonb_build_object('status', v_status, 'data_time', pt.interval_start));
		END IF;
		-- opt-in auto-resolve (routine tiers, after a response was logged)
		IF v_status = 'recovering' AND pol.auto_resolve_after IS NOT NULL
		   AND d.healthy_intervals >= pol.auto_resolve_after AND v_sev = ANY (pol.auto_resolve_severities)
		   AND v_state = 'responding' THEN
			PERFORM evmgmt.resolve_pool(d.event_id, p_pool,
				pg_catalog.format('rule:recovery: healthy for %s intervals', d.healthy_intervals));
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', 'auto_resolved', d.event_id, d.severity, v_evidence);
			v_status := 'recovered';
		END IF;
		UPDATE evmgmt.detection_state s
		SET status = v_status, evaluated_at = v_end, healthy_intervals = d.healthy_intervals,
			transitions = v_transitions, updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- a sustained breach at this interval: what it looks like
	------------------------------------------------------------------
	v_k := CASE v_tier WHEN 'sev1' THEN 1 WHEN 'sev2' THEN 2 ELSE 3 END;
	v_run_start := v_end - pt.runs[v_k] * interval '1 minute';
	SELECT pg_catalog.sum(x.offered)::float8 AS offered, pg_catalog.sum(x.handled)::float8 AS handled,
		   pg_catalog.avg(x.staffed) FILTER (WHERE x.scheduled IS NOT NULL) AS staffed,
		   pg_catalog.avg(x.scheduled) FILTER (WHERE x.staffed IS NOT NULL) AS scheduled,
		   pg_catalog.sum(x.offered) FILTER (WHERE x.forecast_offered IS NOT NULL)::float8 AS offered_fc,
		   pg_catalog.sum(x.forecast_offered)::float8 AS forecast_offered,
		   pg_catalog.sum(x.aht * x.handled) FILTER (WHERE x.forecast_aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS aht,
		   pg_catalog.sum(x.forecast_aht * x.handled) FILTER (WHERE x.aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS forecast_aht,
		   pg_catalog.sum(x.escalated)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.escalated IS NOT NULL), 0) AS escalated_share,
		   pg_catalog.sum(x.transferred)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.transferred IS NOT NULL), 0) AS transferred_share,
		   pg_catalog.sum(x.answered)::float8 / NULLIF(pg_catalog.sum(x.offered), 0) AS service_level,
		   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
			   'interval_start', x.interval_start, 'minutes', x.interval_minutes, 'service_level', x.service_level,
			   'offered', x.offered, 'handled', x.handled, 'forecast_offered', x.forecast_offered,
			   'staffed', x.staffed, 'scheduled', x.scheduled, 'aht', x.aht, 'forecast_aht', x.forecast_aht,
			   'escalated', x.escalated, 'transferred', x.transferred) ORDER BY x.interval_start) AS intervals
	INTO f
	FROM pg_catalog.unnest(buf) x
	WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	-- process shares against the same series and interval of day, 7 days back
	IF f.escalated_share IS NOT NULL OR f.transferred_share IS NOT NULL THEN
		SELECT pg_catalog.sum(h.escalated)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.escalated IS NOT NULL), 0),
			   pg_catalog.sum(h.transferred)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.transferred IS NOT NULL), 0)
		INTO v_esc_base, v_tra_base
		FROM pg_catalog.unnest(buf) x
		CROSS JOIN pg_catalog.generate_series(1, 7) k
		JOIN evmgmt.interval_stat h
		  ON h.interval_start = x.interval_start - k * interval '1 day'
		 AND h.site_id = p_site AND h.queue_id = p_queue AND h.pool = p_pool
		WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	END IF;
	SELECT * INTO inf FROM evmgmt.infer_event_type(f.offered, f.handled, f.staffed, f.scheduled,
		f.forecast_offered, f.offered_fc, f.aht, f.forecast_aht,
		f.escalated_share, v_esc_base, f.transferred_share, v_tra_base, pol) i;
	v_figures := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'tier', v_tier, 'service_level', f.service_level, 'latest_service_level', pt.service_level,
		'run_started_at', v_run_start, 'run_minutes', pt.runs[v_k],
		'minutes_below_sev1', pt.runs[1], 'minutes_below_sev2', pt.runs[2], 'minutes_below_sev3', pt.runs[3],
		'thresholds', pg_catalog.to_jsonb(thresholds), 'sustain_minutes', pg_catalog.to_jsonb(sustains),
		'offered', f.offered, 'handled', f.handled, 'forecast_offered', f.forecast_offered,
		'staffed', f.staffed, 'scheduled', f.scheduled, 'aht', f.aht, 'forecast_aht', f.forecast_aht,
		'escalated_share', f.escalated_share, 'escalated_share_7d_mean', v_esc_base,
		'transferred_share', f.transferred_share, 'transferred_share_7d_mean', v_tra_base,
		'inferred_type', inf.event_type, 'inferred_subtype', inf.subtype, 'inference', inf.matched,
		'weak_inference', inf.weak));
	v_evidence := pg_catalog.jsonb_build_object('figures', v_figures, 'intervals', f.intervals);

	IF backfill THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'backfill', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'backfill' AND l.severity = v_tier);
		RETURN;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.maintenance_window w
			   WHERE w.site_id = p_site AND (w.queue_id IS NULL OR w.queue_id = p_queue)
				 AND (w.pool IS NULL OR w.pool = p_pool)
				 AND w.starts_at <= pt.interval_start AND w.ends_at > pt.interval_start) THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'maintenance', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'maintenance' AND l.severity = v_tier);
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- which event the condition belongs to
	------------------------------------------------------------------
	IF v_found AND d.status <> 'recovered' THEN
		v_event := d.event_id;
	END IF;
	-- an open sev1 outage at the site/queue absorbs the lower tiers it explains
	SELECT e.event_id INTO v_inhibitor
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.site_id = p_site AND (e.queue_id IS NULL OR e.queue_id = p_queue) AND e.event_type = 'system'
	  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
	  AND pc.severity = 'sev1' AND pc.state NOT IN ('resolved', 'cancelled')
	  AND e.event_id IS DISTINCT FROM v_event
	ORDER BY e.event_id LIMIT 1;
	IF v_inhibitor IS NOT NULL THEN
		IF v_tier = 'sev1' AND inf.event_type = 'system' THEN
			v_event := v_inhibitor;
		ELSIF v_event IS NULL THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
			SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'inhibited', v_inhibitor, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
			WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
							  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
								AND l.data_time = pt.interval_start AND l.decision = 'inhibited' AND l.severity = v_tier);
			RETURN;
		END IF;
	END IF;
	v_reason := pg_catalog.format('%s %s: service level below %s%% for %s min (tier %s)', v_rule, p_pool,
								  pg_catalog.round((thresholds[v_k] * 100)::numeric), pt.runs[v_k], v_tier);
	-- the same series breaching again within the recurrence window: its event
	IF v_event IS NULL AND v_found AND d.event_id IS NOT NULL THEN
		SELECT e.closed_at INTO v_closed FROM evmgmt.event e
		WHERE e.event_id = d.event_id AND e.cancelled_at IS NULL;
		IF v_closed IS NULL AND FOUND THEN
			v_event := d.event_id;
		ELSIF v_closed >= pg_catalog.now() - evmgmt.setting_interval('evmgmt.recurrence_window', interval '7 days') THEN
			PERFORM evmgmt.reopen_event(d.event_id, 'rule:' || v_reason, ARRAY[p_pool]);
			v_event := d.event_id;
			v_decision := 'reopened';
		END IF;
	END IF;
	-- one event per condition: the open event of the site, queue and type
	IF v_event IS NULL THEN
		SELECT e.event_id INTO v_event FROM evmgmt.event e
		WHERE e.site_id = p_site AND e.queue_id = p_queue AND e.event_type = inf.event_type
		  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
		ORDER BY e.event_id DESC LIMIT 1;
	END IF;
	IF v_event IS NULL THEN
		v_title := pg_catalog.format('%s at %s %s: service level %s%% for %s min',
			COALESCE((SELECT st.name FROM evmgmt.event_subtype st WHERE st.subtype = inf.subtype), pg_catalog.initcap(inf.event_type::text)),
			p_site, p_queue, pg_catalog.round((COALESCE(f.service_level, 0) * 100)::numeric), pt.runs[v_k]);
		v_event := evmgmt.open_event(inf.event_type, p_site, ARRAY[p_pool], 'rule', v_title,
									 LEAST(v_run_start, pg_catalog.now()), p_queue, inf.subtype,
									 'Opened by rule ' || v_rule || ': ' || inf.matched
									 || CASE WHEN inf.weak THEN ' (weak inference: check the type)' ELSE '' END);
		PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
		v_decision := 'opened';
	ELSE
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = v_event AND pc.pool = p_pool;
		IF NOT FOUND THEN
			PERFORM evmgmt.add_pool(v_event, p_pool, 'rule:' || v_reason);
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := 'joined';
		ELSIF v_state = 'detected' THEN
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := COALESCE(v_decision, 'joined');
		ELSIF v_state = 'cancelled' THEN
			v_decision := NULL;		-- a responder called it a false positive
		ELSE
			IF v_state = 'resolved' THEN
				PERFORM evmgmt.reopen_pool(v_event, p_pool, 'rule:' || v_reason);
				v_decision := 'reopened';
			END IF;
			IF v_sev > v_tier THEN
				PERFORM evmgmt.reclassify_pool(v_event, p_pool, v_tier, 'rule:' || v_reason);
				v_decision := COALESCE(v_decision, 'raised');
			END IF;
		END IF;
	END IF;

	-- the series' own state; a breach after recovering is a transition
	v_transitions := CASE WHEN v_found THEN ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x
												  WHERE x > v_end - pol.flap_window ORDER BY x)
					 ELSE '{}' END;
	v_status := 'breaching';
	IF v_found AND d.status IN ('recovering', 'recovered') AND d.event_id = v_event THEN
		v_transitions := v_transitions || v_end;
		v_decision := COALESCE(v_decision, 'continued');
	END IF;
	IF v_found AND d.status = 'flapping' AND d.event_id = v_event THEN
		v_status := 'flapping';
	ELSIF pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN
		IF d.status IS DISTINCT FROM 'flapping' THEN
			v_decision := COALESCE(v_decision, 'flapping');
		END IF;
		v_status := 'flapping';
	END IF;
	INSERT INTO evmgmt.detection_state AS s (site_id, queue_id, pool, status, severity, event_id, breach_started_at,
											 evaluated_at, healthy_intervals, transitions)
	VALUES (p_site, p_queue, p_pool, v_status, v_tier, v_event, v_run_start, v_end, 0, v_transitions)
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE
	SET status = EXCLUDED.status,
		severity = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN LEAST(s.severity, EXCLUDED.severity)
						ELSE EXCLUDED.severity END,
		event_id = EXCLUDED.event_id,
		breach_started_at = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN s.breach_started_at
								 ELSE EXCLUDED.breach_started_at END,
		evaluated_at = EXCLUDED.evaluated_at, healthy_intervals = 0, transitions = EXCLUDED.transitions,
		updated_at = pg_catalog.clock_timestamp();

	IF v_decision IS NOT NULL THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
		VALUES (p_site, p_queue, p_pool, pt.interval_start, v_rule, v_decision, v_event, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence);
		PERFORM evmgmt.detection_note(v_event, p_pool, v_rule, v_decision || ': ' || v_reason,
			pg_catalog.jsonb_build_object('decision', v_decision, 'data_time', pt.interval_start, 'tier', v_tier,
										  'suggested_type', inf.event_type, 'suggested_subtype', inf.subtype,
										  'weak_inference', inf.weak));
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.detect_point(text, text, evmgmt.pool, text, evmgmt.effective_detection_policy, integer[], double precision[], evmgmt.detection_row, evmgmt.detection_row[], boolean) IS 'Detection for one series at one interval in data time: opens, joins, raises or reopens through the lifecycle functions, marks recovering or flapping, or records a suppressed breach (maintenance, inhibition, backfill) with its evidence';

-- Evaluate the series one load touched (called by interval_stat's statement
-- trigger).  Only series whose new intervals dip below a threshold, or that
-- detection already follows, are read further; their intervals in one
-- range scan on the key, then each new interval in data order.
CREATE FUNCTION evmgmt.detect_loaded(touched evmgmt.interval_touch[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_now timestamptz := pg_catalog.now();
	v_from timestamptz;
	v_to timestamptz;
	c record;
	v_nestloop text;
BEGIN
	-- a silent site that sends data again (48_feed_health.sql)
	IF EXISTS (SELECT FROM evmgmt.feed_health f WHERE f.resumed_at IS NULL) THEN
		PERFORM evmgmt.feed_resumed(touched);
	END IF;
	IF pg_catalog.to_regclass('pg_temp.evmgmt_detect_cand') IS NULL THEN
		CREATE TEMPORARY TABLE evmgmt_detect_cand (
			n integer, site_id text COLLATE "C", queue_id text COLLATE "C", pool evmgmt.pool, operation_id text,
			first_start timestamptz, last_start timestamptz, prev_last_start timestamptz,
			eval_from timestamptz, backfill boolean, read_from timestamptz, rows evmgmt.detection_row[],
			followed boolean, first_tiered timestamptz
		) ON COMMIT DELETE ROWS;
	END IF;
	DELETE FROM pg_temp.evmgmt_detect_cand;

	-- The points to evaluate are the intervals new to the series (all of
	-- the load when it only re-delivered), the live ones only; when nothing
	-- of it is live, its latest interval once, as backfill.
	INSERT INTO pg_temp.evmgmt_detect_cand (n, site_id, queue_id, pool, operation_id, first_start, last_start,
											prev_last_start, eval_from, backfill, read_from, followed)
	SELECT pg_catalog.row_number() OVER (), t.site_id, t.queue_id, t.pool, si.operation_id, t.first_start,
		   t.last_start, t.prev_last_start, e.eval_from, e.backfill,
		   CASE WHEN e.backfill THEN t.last_start ELSE GREATEST(e.eval_from, v_now - pol.backfill_after - interval '1 hour') END
			   - pol.lookback,
		   d.site_id IS NOT NULL AND d.status <> 'recovered'
	FROM pg_catalog.unnest(touched) t
	JOIN evmgmt.site si ON si.site_id = t.site_id
	JOIN evmgmt.severity_thresholds th ON th.operation_id = si.operation_id
	JOIN evmgmt.effective_detection_policy pol ON pol.operation_id = si.operation_id
	LEFT JOIN evmgmt.detection_state d ON d.site_id = t.site_id AND d.queue_id = t.queue_id AND d.pool = t.pool
	CROSS JOIN LATERAL (
		SELECT CASE WHEN t.prev_last_start IS NULL OR t.last_start <= t.prev_last_start THEN t.first_start
					ELSE t.prev_last_start + interval '1 microsecond' END AS eval_from,
			   -- an interval is live when it ended less than backfill_after ago
			   -- (here bounded by the longest interval, an hour; exact below)
			   t.last_start + interval '1 hour' < v_now - pol.backfill_after AS backfill
	) e
	WHERE pol.enabled
	  AND ((d.site_id IS NOT NULL AND d.status <> 'recovered')
		   OR t.min_service_level < GREATEST(th.sev1_threshold, th.sev2_threshold, th.sev3_threshold)
		   OR (t.min_service_level <= 0 AND 0 IN (th.sev1_threshold, th.sev2_threshold, th.sev3_threshold)));
	IF NOT FOUND THEN
		RETURN;
	END IF;
	ANALYZE pg_temp.evmgmt_detect_cand;
	SELECT pg_catalog.min(k.read_from), pg_catalog.max(GREATEST(k.last_start, k.prev_last_start))
	INTO v_from, v_to
	FROM pg_temp.evmgmt_detect_cand k;

	-- The candidates' intervals come from one range scan on the key, hashed
	-- against the candidates: a nested loop would rescan the whole range for
	-- every candidate (the key leads with time), so it is ruled out here.
	v_nestloop := pg_catalog.current_setting('enable_nestloop');
	PERFORM pg_catalog.set_config('enable_nestloop', 'off', true);

	-- one range scan on the key for all candidates, the runs as a window
	UPDATE pg_temp.evmgmt_detect_cand cd SET rows = agg.rows
	FROM (SELECT x.n,
				 pg_catalog.array_agg(ROW(x.interval_start, x.interval_minutes, x.sl, x.runs, x.offered, x.handled,
										  x.answered_in_threshold, x.staffed, x.scheduled, x.forecast_offered,
										  x.aht_seconds, x.forecast_aht, x.escalated, x.transferred)::evmgmt.detection_row
									  ORDER BY x.interval_start) AS rows
		  FROM (SELECT d.*, evmgmt.interval_service_level(d.answered_in_threshold, d.offered) AS sl,
					   evmgmt.sustained_runs_below(evmgmt.interval_service_level(d.answered_in_threshold, d.offered),
												   ARRAY[th2.sev1_threshold, th2.sev2_threshold, th2.sev3_threshold],
												   d.interval_start, d.interval_minutes)
						   OVER (PARTITION BY d.n ORDER BY d.interval_start) AS runs
				FROM (-- the same interval twice in one statement is read once
					  -- here (the deferred key refuses it at commit)
					  SELECT DISTINCT ON (cd2.n, s.interval_start) cd2.n, cd2.operation_id, s.*
					  FROM evmgmt.interval_stat s
					  JOIN pg_temp.evmgmt_detect_cand cd2
						ON cd2.site_id = s.site_id AND cd2.queue_id = s.queue_id AND cd2.pool = s.pool
					  WHERE s.interval_start > v_from AND s.interval_start <= v_to
						AND s.interval_start > cd2.read_from
					  ORDER BY cd2.n, s.interval_start) d
				JOIN evmgmt.severity_thresholds th2 ON th2.operation_id = d.operation_id) x
		  GROUP BY x.n) agg
	WHERE agg.n = cd.n;
	PERFORM pg_catalog.set_config('enable_nestloop', v_nestloop, true);

	-- backfill exactly: no new interval of the series is live; and the first
	-- new point below a tier's threshold for long enough (a series detection
	-- did not follow before the load has nothing to do before it: such a
	-- point opens nothing and records nothing, see detect_point)
	UPDATE pg_temp.evmgmt_detect_cand cd
	SET backfill = NOT EXISTS (SELECT FROM pg_catalog.unnest(cd.rows) x
							   WHERE x.interval_start >= cd.eval_from
								 AND x.interval_start + x.interval_minutes * interval '1 minute' >= v_now - pol.backfill_after),
		first_tiered = (SELECT pg_catalog.min(x.interval_start) FROM pg_catalog.unnest(cd.rows) x
						WHERE x.interval_start >= cd.eval_from
						  AND evmgmt.classify_sustained_runs(x.runs[1], x.runs[2], x.runs[3], th.sev1_sustain,
															 th.sev2_sustain, th.sev3_sustain) IS NOT NULL)
	FROM evmgmt.effective_detection_policy pol, evmgmt.severity_thresholds th
	WHERE pol.operation_id = cd.operation_id AND th.operation_id = cd.operation_id;

	-- every point in data order across series (at one time the worst
	-- service level first, so an outage is open before what it explains)
	FOR c IN
		SELECT cd.site_id, cd.queue_id, cd.pool, cd.operation_id, cd.backfill, cd.rows, pol AS policy,
			   ARRAY[th.sev1_sustain, th.sev2_sustain, th.sev3_sustain] AS sustains,
			   ARRAY[th.sev1_threshold, th.sev2_threshold, th.sev3_threshold] AS thresholds,
			   ROW(pt.*)::evmgmt.detection_row AS pt
		FROM pg_temp.evmgmt_detect_cand cd
		JOIN evmgmt.severity_thresholds th ON th.operation_id = cd.operation_id
		JOIN evmgmt.effective_detection_policy pol ON pol.operation_id = cd.operation_id
		CROSS JOIN LATERAL pg_catalog.unnest(cd.rows) pt
		WHERE pt.interval_start >= cd.eval_from
		  AND (cd.followed OR pt.interval_start >= cd.first_tiered)
		  AND CASE WHEN cd.backfill THEN pt.interval_start = (SELECT pg_catalog.max(y.interval_start) FROM pg_catalog.unnest(cd.rows) y)
				   ELSE pt.interval_start + pt.interval_minutes * interval '1 minute' >= v_now - pol.backfill_after END
		ORDER BY pt.interval_start, pt.service_level NULLS LAST, cd.site_id, cd.queue_id, cd.pool
	LOOP
		PERFORM evmgmt.detect_point(c.site_id, c.queue_id, c.pool, c.operation_id, c.policy, c.sustains,
									c.thresholds, c.pt, c.rows, c.backfill);
	END LOOP;
END
$$;
COMMENT ON FUNCTION evmgmt.detect_loaded(evmgmt.interval_touch[]) IS 'Detection over the series a load touched: each new live interval of a series below a threshold (or followed by detection) is evaluated in data order by detect_point';
CREATE TABLE evmgmt.feed_health (
	site_id			text COLLATE "C" PRIMARY KEY REFERENCES evmgmt.site ON DELETE CASCADE,
	event_id		bigint,
	last_interval_end timestamptz NOT NULL,
	silent_since	timestamptz NOT NULL,
	opened_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	resumed_at		timestamptz
);
COMMENT ON TABLE evmgmt.feed_health IS 'Sites whose interval feed went silent: since when the next interval was due, the feed-health event, and when data resumed';

-- Open a feed-health event for every live site that went silent by at (a
-- site whose latest data ended more than backfill_after ago is catching up,
-- not live); say when the next site would (for the worker's next wake-up).
CREATE FUNCTION evmgmt.check_feed_health(at timestamptz DEFAULT pg_catalog.now()) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	v_event bigint;
	v_pool evmgmt.pool;
	v_next timestamptz;
BEGIN
	IF at IS NULL OR NOT pg_catalog.isfinite(at) THEN
		RAISE EXCEPTION 'at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR r IN
		SELECT l.site_id, l.last_end, l.minutes, l.pools, pol.feed_due_intervals, pol.feed_severity,
			   l.last_end + l.minutes * (1 + pol.feed_due_intervals) * interval '1 minute' AS silent_at,
			   l.last_end + l.minutes * interval '1 minute' AS due_at, fh.site_id IS NOT NULL AS known,
			   fh.resumed_at, fh.last_interval_end AS known_end
		FROM (SELECT s.site_id, si.operation_id,
					 pg_catalog.max(s.last_interval_start) AS last_start,
					 pg_catalog.array_agg(DISTINCT s.pool ORDER BY s.pool) AS pools,
					 pg_catalog.max(s.last_interval_start) + pg_catalog.max(x.interval_minutes) * interval '1 minute' AS last_end,
					 pg_catalog.max(x.interval_minutes) AS minutes
			  FROM evmgmt.interval_series s
			  JOIN evmgmt.site si ON si.site_id = s.site_id
			  LEFT JOIN LATERAL (SELECT i.interval_minutes FROM evmgmt.interval_stat i
								 WHERE i.interval_start = s.last_interval_start AND i.site_id = s.site_id
								   AND i.queue_id = s.queue_id AND i.pool = s.pool) x ON true
			  GROUP BY s.site_id, si.operation_id) l
		JOIN evmgmt.effective_detection_policy pol ON pol.operation_id = l.operation_id
		LEFT JOIN evmgmt.feed_health fh ON fh.site_id = l.site_id
		-- a feed whose latest data is older than backfill_after is catching
		-- up (backfill), not live
		WHERE pol.enabled AND l.minutes IS NOT NULL AND l.last_end >= at - pol.backfill_after
	LOOP
		IF r.silent_at > at THEN
			v_next := LEAST(v_next, r.silent_at);
			CONTINUE;
		END IF;
		-- silent: once per silence (a site already opened for this last interval waits for data)
		CONTINUE WHEN r.known AND r.known_end = r.last_end;
		v_event := evmgmt.open_event('system', r.site_id, r.pools, 'rule',
			pg_catalog.format('WFM feed silent at %s: no intervals since %s', r.site_id,
							  pg_catalog.to_char(r.last_end AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'),
			LEAST(r.due_at, pg_catalog.now()), NULL, 'wfm_platform_outage',
			pg_catalog.format('Opened by rule feed_health: the interval due at %s is %s intervals past due.',
							  r.due_at, r.feed_due_intervals));
		FOREACH v_pool IN ARRAY r.pools
		LOOP
			PERFORM evmgmt.classify_pool(v_event, v_pool, r.feed_severity);
			PERFORM evmgmt.diagnose_pool(v_event, v_pool, 'measurement', 'it_escalation', 'interval feed stopped arriving');
		END LOOP;
		INSERT INTO evmgmt.feed_health AS f (site_id, event_id, last_interval_end, silent_since)
		VALUES (r.site_id, v_event, r.last_end, r.due_at)
		ON CONFLICT (site_id) DO UPDATE
		SET event_id = EXCLUDED.event_id, last_interval_end = EXCLUDED.last_interval_end,
			silent_since = EXCLUDED.silent_since, opened_at = pg_catalog.clock_timestamp(), resumed_at = NULL;
		INSERT INTO evmgmt.detection_log (site_id, data_time, rule, decision, event_id, severity, event_type, subtype, evidence)
		VALUES (r.site_id, r.due_at, 'feed_health', 'feed_silent', v_event, r.feed_severity, 'system', 'wfm_platform_outage',
				pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object(
					'last_interval_end', r.last_end, 'interval_minutes', r.minutes, 'due_at', r.due_at,
					'silent_at', r.silent_at, 'checked_at', at)));
		PERFORM evmgmt.detection_note(v_event, NULL, 'feed_health', 'feed silent since ' || r.due_at,
									  pg_catalog.jsonb_build_object('last_interval_end', r.last_end));
	END LOOP;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.check_feed_health(timestamptz) IS 'Opens a system event (wfm_platform_outage, cause measurement) for every site whose next interval is feed_due_intervals past due at the given moment; returns when the next site would go silent';

-- Data arrived for these sites: a silent feed has resumed.  Called by
-- interval_stat's statement trigger through detect_loaded.
CREATE FUNCTION evmgmt.feed_resumed(touched evmgmt.interval_touch[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	pc record;
BEGIN
	FOR r IN
		SELECT f.site_id, f.event_id, pg_catalog.max(t.last_start) AS last_start
		FROM evmgmt.feed_health f
		JOIN pg_catalog.unnest(touched) t ON t.site_id = f.site_id
		WHERE f.resumed_at IS NULL AND t.last_start >= f.last_interval_end
		GROUP BY f.site_id, f.event_id
	LOOP
		UPDATE evmgmt.feed_health SET resumed_at = pg_catalog.clock_timestamp() WHERE site_id = r.site_id;
		INSERT INTO evmgmt.detection_log (site_id, data_time, rule, decision, event_id, event_type, subtype, evidence)
		VALUES (r.site_id, r.last_start, 'feed_health', 'feed_resumed', r.event_id, 'system', 'wfm_platform_outage',
				pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object('first_interval_start', r.last_start)));
		IF NOT EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = r.event_id AND e.closed_at IS NULL AND e.cancelled_at IS NULL) THEN
			CONTINUE;
		END IF;
		PERFORM evmgmt.detection_note(r.event_id, NULL, 'feed_health', 'feed resumed: recovering',
									  pg_catalog.jsonb_build_object('status', 'recovering', 'data_time', r.last_start));
		FOR pc IN SELECT p.pool FROM evmgmt.pool_condition p WHERE p.event_id = r.event_id AND p.state = 'responding'
		LOOP
			PERFORM evmgmt.resolve_pool(r.event_id, pc.pool, 'rule:feed_health: data resumed');
		END LOOP;
	END LOOP;
END
$$;
COMMENT ON FUNCTION evmgmt.feed_resumed(evmgmt.interval_touch[]) IS 'Marks the feed-health events of sites that receive data again as recovering (timeline note; conditions a responder responded to are resolved)';

-- Power of One on live intervals: for the latest interval of each series,
-- service level and ASA now (Erlang C from offered, AHT and staffed) and with
-- 1, 2, 3 agents more and fewer, and the agents the queue's target needs.
CREATE VIEW evmgmt.live_power_of_one AS
SELECT s.site_id, s.queue_id, s.pool, i.interval_start, i.interval_minutes, w.traffic, w.agents AS staffed_agents,
	   evmgmt.agents_required(w.traffic, i.aht_seconds, q.sl_target, q.sl_seconds) AS agents_needed,
	   q.sl_target, q.sl_seconds, p.delta, p.agents, p.service_level, p.asa, p.occupancy
FROM evmgmt.interval_series s
JOIN evmgmt.interval_stat i ON i.interval_start = s.last_interval_start AND i.site_id = s.site_id
						   AND i.queue_id = s.queue_id AND i.pool = s.pool
JOIN evmgmt.queue q ON q.queue_id = s.queue_id
CROSS JOIN LATERAL (SELECT i.offered * i.aht_seconds / (i.interval_minutes * 60.0) AS traffic,
						   pg_catalog.round(i.staffed)::integer AS agents) w
CROSS JOIN LATERAL evmgmt.power_of_one(w.traffic, w.agents, i.aht_seconds, q.sl_seconds, 3) p
WHERE i.offered > 0 AND i.aht_seconds IS NOT NULL AND i.staffed IS NOT NULL AND w.agents >= 1
  AND p.agents >= 1;
COMMENT ON VIEW evmgmt.live_power_of_one IS 'Power of One for the latest interval of every series: traffic, staffed agents, agents needed for the queue target, and service level, ASA and occupancy with 3, 2, 1 agents fewer, as staffed, and 1, 2, 3 more (Erlang C)';
-- event_facts shows detection's evidence
CREATE OR REPLACE FUNCTION evmgmt.event_facts(event_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	f jsonb;
	v_queue text;
	v_site text;
	v_pool evmgmt.pool;
	st record;
	po text;
	prefix text := COALESCE(pg_catalog.current_setting('evmgmt.event_link_prefix', true), '');
	v_any evmgmt.severity;
BEGIN
	-- the tier of a cancelled event is the one it had
	SELECT pg_catalog.min(pc.severity) INTO v_any FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event;
	SELECT pg_catalog.jsonb_build_object(
			'event_id', r.event_id, 'operation_id', r.operation_id,
			'tier', COALESCE(r.floor_severity::text, v_any::text, 'unclassified'),
			'severity', COALESCE(r.floor_severity::text, v_any::text, 'unclassified'),
			'type', r.event_type, 'subtype', COALESCE(r.subtype, ''),
			'site', r.site_id, 'site_name', s.name, 'time_zone', s.time_zone, 'queue', COALESCE(r.queue_id, ''),
			'title', r.title, 'state', r.state,
			'pools', (SELECT pg_catalog.string_agg(pc.pool || ' ' || COALESCE(pc.severity::text, 'unclassified'), ', '
												   ORDER BY pc.severity NULLS LAST, pc.pool)
					  FROM evmgmt.pool_condition pc
					  WHERE pc.event_id = r.event_id AND (pc.state <> 'cancelled' OR r.floor_severity IS NULL)),
			'opened_at', pg_catalog.to_char(r.opened_at AT TIME ZONE s.time_zone, 'YYYY-MM-DD HH24:MI') || ' ' || s.time_zone,
			'link', CASE WHEN prefix <> '' THEN prefix || r.event_id END),
		   r.queue_id, r.site_id
	INTO f, v_queue, v_site
	FROM evmgmt.event_rollup r
	JOIN evmgmt.site s ON s.site_id = r.site_id
	WHERE r.event_id = p_event;

	-- Power of One for the queue, when the Erlang functions are there and
	-- the queue has a recent interval with staffing and handle time.
	IF v_queue IS NOT NULL
	   AND pg_catalog.to_regprocedure('evmgmt.power_of_one(double precision,integer,double precision,double precision,integer)') IS NOT NULL THEN
		SELECT pc.pool INTO v_pool FROM evmgmt.pool_condition pc
		WHERE pc.event_id = p_event ORDER BY pc.severity NULLS LAST, pc.pool LIMIT 1;
		SELECT i.offered, i.aht_seconds, i.staffed, i.interval_minutes, i.threshold_seconds INTO st
		FROM evmgmt.interval_stat i
		WHERE i.site_id = v_site AND i.queue_id = v_queue AND i.pool = v_pool
		  AND i.staffed IS NOT NULL AND i.aht_seconds IS NOT NULL
		ORDER BY i.interval_start DESC LIMIT 1;
		IF FOUND AND st.offered > 0 AND pg_catalog.round(st.staffed) >= 2 THEN
			EXECUTE $q$
				SELECT 'Power of One: ' || pg_catalog.string_agg(
						 p.agents || ' agents SL ' || pg_catalog.round((p.service_level * 100)::numeric) || '%', ', '
						 ORDER BY pg_catalog.abs(p.delta), p.delta DESC)
				FROM evmgmt.power_of_one($1, $2, $3, $4, 1) p
				WHERE p.delta BETWEEN -1 AND 1$q$
			INTO po
			USING st.offered * st.aht_seconds / (st.interval_minutes * 60.0), pg_catalog.round(st.staffed)::integer,
				  st.aht_seconds::double precision, st.threshold_seconds::double precision;
			f := f || pg_catalog.jsonb_build_object('power_of_one', po);
		END IF;
	END IF;
	-- what rule-driven detection saw for each of its decisions on the event
	-- (detection_log, 32_detection.sql): rule, tier, inferred type, figures
	f := f || COALESCE((
		SELECT pg_catalog.jsonb_build_object('evidence', pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
				   'decision', l.decision, 'rule', l.rule, 'pool', l.pool, 'data_time', l.data_time,
				   'figures', l.evidence -> 'figures') ORDER BY l.detection_id))
		FROM evmgmt.detection_log l
		WHERE l.event_id = p_event
		HAVING pg_catalog.count(*) > 0), '{}');
	RETURN f;
END
$$;
-- run_due_work keeps partitions ahead and checks feeds
CREATE OR REPLACE FUNCTION evmgmt.run_due_work(now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_now timestamptz := $1;
	v_batch integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.escalation_batch_size', true), '')::integer, 500);
	v_more boolean := false;
	v_busy boolean := false;
	v_next timestamptz;
	v_feed timestamptz;
	v_lock text;
	n integer;
	r record;
BEGIN
	IF p_now IS NULL THEN
		RAISE EXCEPTION 'run_due_work needs a moment' USING ERRCODE = 'null_value_not_allowed';
	END IF;

	-- Candidates are read without locks; each is then taken event first
	-- (SKIP LOCKED: a busy event waits for the next call) and re-checked
	-- under its own row lock, so a concurrent caller never fires it twice.
	n := 0;
	FOR r IN SELECT t.event_id, t.pool, t.target FROM evmgmt.target_timer t
			 WHERE t.next_at <= p_now ORDER BY t.next_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.target_timer t
		WHERE t.event_id = r.event_id AND t.pool = r.pool AND t.target = r.target AND t.next_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.target_timer_fire(r.event_id, r.pool, r.target, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT s.event_id FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at <= p_now ORDER BY s.next_status_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.status_schedule s
		WHERE s.event_id = r.event_id AND s.ended_at IS NULL AND s.next_status_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.status_tick(r.event_id, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT e.escalation_id, e.event_id FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at <= p_now ORDER BY e.next_due_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.escalation e
		WHERE e.escalation_id = r.escalation_id AND e.state = 'active' AND e.next_due_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		PERFORM evmgmt.escalation_advance(r.escalation_id, p_now);
	END LOOP;
	v_more := v_more OR n >= v_batch;

	-- Interval upkeep (25_partitions.sql, 48_feed_health.sql): partitions
	-- ahead of time, and sites whose feed went silent.  Last, and never
	-- waiting for a lock (a load or DDL holding one; the locks it took are
	-- given back when it gives up): it is tried again on the next call.
	v_lock := pg_catalog.current_setting('lock_timeout');
	BEGIN
		PERFORM pg_catalog.set_config('lock_timeout', '200ms', true);
		PERFORM evmgmt.maintain_interval_partitions(p_now);
		v_feed := evmgmt.check_feed_health(p_now);
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
	EXCEPTION WHEN lock_not_available THEN
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
		v_feed := p_now + interval '1 second';
	END;

	IF v_more THEN
		RETURN p_now;
	END IF;
	v_next := LEAST((SELECT pg_catalog.min(e.next_due_at) FROM evmgmt.escalation e WHERE e.state = 'active'),
					(SELECT pg_catalog.min(s.next_status_at) FROM evmgmt.status_schedule s WHERE s.ended_at IS NULL),
					(SELECT pg_catalog.min(t.next_at) FROM evmgmt.target_timer t WHERE t.next_at IS NOT NULL),
					v_feed);
	-- what is left due belongs to events busy elsewhere: look again shortly
	-- rather than at once
	IF v_busy AND v_next <= p_now THEN
		v_next := p_now + interval '1 second';
	END IF;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.run_due_work(timestamptz) IS 'Keeps interval partitions ahead and opens feed-health events for silent sites, then fires every due target timer, status update and escalation step at the given moment in the caller''s transaction (event, then row, locked with SKIP LOCKED, so concurrent callers never double-fire and never wait) and returns when something is due next (NULL: nothing scheduled; the given moment: more is due than one batch; a second later when what is due belongs to events busy in other transactions)';
-- audit of the new configuration tables (80_audit.sql)
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.detection_policy FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.detection_policy FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.maintenance_window FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.maintenance_window FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();

-- grants (90_privileges.sql): readers and admins read every new relation,
-- admins edit the detection settings and maintenance windows
GRANT SELECT ON evmgmt.interval_stat, evmgmt.interval_stat_default, evmgmt.interval_series,
	evmgmt.interval_partitions, evmgmt.detection_policy, evmgmt.effective_detection_policy,
	evmgmt.maintenance_window, evmgmt.detection_state, evmgmt.detection_log, evmgmt.detection_evidence,
	evmgmt.detection_conditions, evmgmt.feed_health, evmgmt.live_power_of_one
	TO evmgmt_reader, evmgmt_admin;
GRANT INSERT, UPDATE, DELETE ON evmgmt.detection_policy, evmgmt.maintenance_window TO evmgmt_admin;
GRANT INSERT ON evmgmt.interval_stat TO evmgmt_ingest;
GRANT INSERT, DELETE ON evmgmt.interval_stat TO evmgmt_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA evmgmt TO evmgmt_admin;

-- dump registration (99_config_dump.sql)
-- (one call per statement: each updates the extension's catalog row)
DO $dump$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['interval_stat', 'interval_stat_default', 'interval_series', 'detection_policy',
							 'maintenance_window', 'detection_state', 'detection_log', 'feed_health',
							 'maintenance_window_window_id_seq', 'detection_log_detection_id_seq']
	LOOP
		PERFORM pg_catalog.pg_extension_config_dump('evmgmt.' || t, '');
	END LOOP;
END
$dump$;


------------------------------------------------------------------------------
-- Issue 14 (H9): least-privilege worker, per-item isolation of due work,
-- bounded event times
------------------------------------------------------------------------------

-- The role the background workers connect as (docs/security.md, "The worker's
-- role"): no superuser, no inherited privileges, no password.  PostgreSQL 15
-- lets a background worker connect only as a role with LOGIN; without a
-- password no password method admits it, and docs/security.md gives the
-- pg_hba.conf reject lines for trust and peer setups.  An existing role of
-- that name is brought back to these attributes.
DO $worker_role$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'evmgmt_worker') THEN
		CREATE ROLE evmgmt_worker LOGIN NOINHERIT PASSWORD NULL;
	END IF;
	ALTER ROLE evmgmt_worker LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
		CONNECTION LIMIT -1 PASSWORD NULL;
END
$worker_role$;

-- Event times are bounded (docs/security.md, "Bounds").  Rows from 0.1.0
-- outside the bounds stop the upgrade with their ids: cancel or correct them
-- first (as a superuser) and run the update again.
DO $bounds$
DECLARE
	bad text;
BEGIN
	SELECT pg_catalog.string_agg(e.event_id::text, ', ' ORDER BY e.event_id) INTO bad
	FROM evmgmt.event e
	WHERE NOT (e.detected_at >= timestamptz '2000-01-01 00:00+00' AND e.opened_at < timestamptz '2200-01-01 00:00+00'
			   AND e.detected_at < timestamptz '2200-01-01 00:00+00' AND e.opened_at >= timestamptz '2000-01-01 00:00+00')
	   OR e.closed_at < timestamptz '2000-01-01 00:00+00' OR e.closed_at >= timestamptz '2200-01-01 00:00+00'
	   OR e.cancelled_at < timestamptz '2000-01-01 00:00+00' OR e.cancelled_at >= timestamptz '2200-01-01 00:00+00'
	   OR EXISTS (SELECT FROM evmgmt.pool_condition pc
				  WHERE pc.event_id = e.event_id
					AND (LEAST(pc.opened_at, pc.classified_at, pc.response_due, pc.resolution_due, pc.diagnosed_at,
							   pc.first_response_at, pc.resolved_at) < timestamptz '2000-01-01 00:00+00'
						 OR GREATEST(pc.opened_at, pc.classified_at, pc.response_due, pc.resolution_due, pc.diagnosed_at,
									 pc.first_response_at, pc.resolved_at) >= timestamptz '2200-01-01 00:00+00'));
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'events with times outside 2000-01-01 .. 2200-01-01: %', bad
			USING ERRCODE = 'check_violation',
				  HINT = 'Correct or remove these events, then run ALTER EXTENSION evmgmt UPDATE again.';
	END IF;
END
$bounds$;
ALTER TABLE evmgmt.event ADD CONSTRAINT event_times_in_range CHECK ((detected_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND detected_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00')
		 AND (opened_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND opened_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00')
		 AND (closed_at IS NULL OR (closed_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND closed_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00'))
		 AND (cancelled_at IS NULL OR (cancelled_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND cancelled_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00')));
ALTER TABLE evmgmt.pool_condition ADD CONSTRAINT pool_condition_times_in_range CHECK ((opened_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND opened_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00')
		 AND (classified_at IS NULL OR (classified_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND classified_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00'))
		 AND (response_due IS NULL OR (response_due OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND response_due OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00'))
		 AND (resolution_due IS NULL OR (resolution_due OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND resolution_due OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00'))
		 AND (diagnosed_at IS NULL OR (diagnosed_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND diagnosed_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00'))
		 AND (first_response_at IS NULL OR (first_response_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND first_response_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00'))
		 AND (resolved_at IS NULL OR (resolved_at OPERATOR(pg_catalog.>=) timestamptz '2000-01-01 00:00+00' AND resolved_at OPERATOR(pg_catalog.<) timestamptz '2200-01-01 00:00+00')));

CREATE TABLE evmgmt.work_failure (
	event_id		bigint NOT NULL REFERENCES evmgmt.event ON DELETE CASCADE,
	item			text NOT NULL CHECK (item OPERATOR(pg_catalog.~) '^(status|escalation [0-9]+|timer (aa|collab|spec) (response|resolution))$'),
	sqlstate		text NOT NULL CHECK (sqlstate OPERATOR(pg_catalog.~) '^[0-9A-Z]{5}$'),
	error			text NOT NULL,
	attempts		integer NOT NULL CHECK (attempts OPERATOR(pg_catalog.>=) 1),
	first_failed_at	timestamptz NOT NULL,
	failed_at		timestamptz NOT NULL,
	retry_at		timestamptz,
	parked			boolean NOT NULL DEFAULT false,
	PRIMARY KEY (event_id, item),
	CONSTRAINT work_failure_parked_or_retried CHECK (parked OPERATOR(pg_catalog.=) (retry_at IS NULL))
);
COMMENT ON TABLE evmgmt.work_failure IS 'Due work that failed: one row per item (status schedule, escalation, target timer of an event) with its last error (masked), the failures in a row, and when it is tried again; parked after 8 failures until an admin deletes the row';
COMMENT ON COLUMN evmgmt.work_failure.item IS 'status, escalation <escalation_id> or timer <pool> <target>';
COMMENT ON COLUMN evmgmt.work_failure.sqlstate IS 'SQLSTATE of the last failure';
COMMENT ON COLUMN evmgmt.work_failure.error IS 'Message of the last failure, with e-mail addresses and phone-like numbers masked';
COMMENT ON COLUMN evmgmt.work_failure.attempts IS 'Failures in a row';
COMMENT ON COLUMN evmgmt.work_failure.first_failed_at IS 'First failure of this run of failures';
COMMENT ON COLUMN evmgmt.work_failure.failed_at IS 'Last failure';
COMMENT ON COLUMN evmgmt.work_failure.retry_at IS 'When the item is tried again (NULL: parked)';
COMMENT ON COLUMN evmgmt.work_failure.parked IS 'Given up after 8 failures in a row; deleting the row makes the item due again';

-- An error message fit for the server log and for work_failure: e-mail
-- addresses and phone-like digit runs (7 or more digits and separators)
-- masked.
CREATE FUNCTION evmgmt.mask_error_text(message text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.regexp_replace(
	pg_catalog.regexp_replace(message, '[^\s@<>"'',;:()]+@[^\s@<>"'',;:()]+', '***@***', 'g'),
	'\+?[0-9][0-9 ./()-]{5,}[0-9]', '***', 'g');
COMMENT ON FUNCTION evmgmt.mask_error_text(text) IS 'Masks e-mail addresses and phone-like numbers (7 or more digits and separators) in an error message';

-- Record that one item failed: count it, back off or park, log it masked.
CREATE FUNCTION evmgmt.work_failure_record(p_event_id bigint, p_item text, p_sqlstate text, p_error text, p_now timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	max_failures constant integer := 8;
	f evmgmt.work_failure;
	v_error text := pg_catalog.left(evmgmt.mask_error_text(COALESCE(p_error, '')), 1000);
BEGIN
	INSERT INTO evmgmt.work_failure AS w (event_id, item, sqlstate, error, attempts, first_failed_at, failed_at, retry_at)
	VALUES (p_event_id, p_item, p_sqlstate, v_error, 1, p_now, p_now, p_now + interval '10 seconds')
	ON CONFLICT (event_id, item) DO UPDATE
	SET sqlstate = EXCLUDED.sqlstate, error = EXCLUDED.error,
		attempts = w.attempts + 1, failed_at = EXCLUDED.failed_at,
		parked = w.attempts + 1 >= max_failures,
		retry_at = CASE WHEN w.attempts + 1 >= max_failures THEN NULL
						ELSE EXCLUDED.failed_at + LEAST(interval '10 seconds' * pg_catalog.power(2, w.attempts), interval '15 minutes') END
	RETURNING * INTO f;
	IF f.parked THEN
		RAISE WARNING 'evmgmt: % of event % parked after % failures: % (SQLSTATE %)', p_item, p_event_id, f.attempts, v_error, p_sqlstate
			USING HINT = 'Fix the cause, then delete its row from evmgmt.work_failure to run it again.';
	ELSE
		RAISE WARNING 'evmgmt: % of event % failed (% in a row): % (SQLSTATE %)', p_item, p_event_id, f.attempts, v_error, p_sqlstate
			USING DETAIL = 'It is skipped and tried again at ' || f.retry_at || '; other due work goes on.';
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.work_failure_record(bigint, text, text, text, timestamptz) IS 'Records a failed item of due work in work_failure (backoff 10 s doubling to 15 min, parked after 8 failures) and logs it masked';

-- Fire everything that is due at now, in the caller's transaction, and say
-- when something is due next.
CREATE OR REPLACE FUNCTION evmgmt.run_due_work(now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_now timestamptz := $1;
	v_batch integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.escalation_batch_size', true), '')::integer, 500);
	v_more boolean := false;
	v_busy boolean := false;
	v_failures boolean;
	v_next timestamptz;
	n integer;
	r record;
BEGIN
	IF p_now IS NULL THEN
		RAISE EXCEPTION 'run_due_work needs a moment' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NOT (p_now >= timestamptz '2000-01-01 00:00+00' AND p_now < timestamptz '2200-01-01 00:00+00') THEN
		RAISE EXCEPTION 'the moment of run_due_work must lie between 2000-01-01 and 2200-01-01'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'It is ' || p_now || '.';
	END IF;
	IF v_batch < 1 OR v_batch > 100000 THEN
		v_batch := 500;
	END IF;

	-- Failures of items that are no longer due (acknowledged, resolved,
	-- rescheduled away) are forgotten.
	v_failures := EXISTS (SELECT FROM evmgmt.work_failure);
	IF v_failures THEN
		DELETE FROM evmgmt.work_failure f
		WHERE NOT CASE
			WHEN f.item = 'status' THEN
				EXISTS (SELECT FROM evmgmt.status_schedule s
						WHERE s.event_id = f.event_id AND s.ended_at IS NULL AND s.next_status_at IS NOT NULL)
			WHEN f.item LIKE 'escalation %' THEN
				EXISTS (SELECT FROM evmgmt.escalation e
						WHERE e.event_id = f.event_id AND f.item = 'escalation ' || e.escalation_id AND e.state = 'active')
			ELSE
				EXISTS (SELECT FROM evmgmt.target_timer t
						WHERE t.event_id = f.event_id AND t.next_at IS NOT NULL
						  AND f.item = 'timer ' || t.pool || ' ' || t.target)
			END;
	END IF;

	-- Candidates are read without locks; each is then taken event first
	-- (SKIP LOCKED: a busy event waits for the next call) and re-checked
	-- under its own row lock, so a concurrent caller never fires it twice.
	n := 0;
	FOR r IN SELECT t.event_id, t.pool, t.target, 'timer ' || t.pool || ' ' || t.target AS item
			 FROM evmgmt.target_timer t
			 WHERE t.next_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = t.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target
								 AND (f.parked OR f.retry_at > p_now))
			 ORDER BY t.next_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.target_timer t
		WHERE t.event_id = r.event_id AND t.pool = r.pool AND t.target = r.target AND t.next_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.target_timer_fire(r.event_id, r.pool, r.target, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT s.event_id, 'status' AS item FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = s.event_id AND f.item = 'status' AND (f.parked OR f.retry_at > p_now))
			 ORDER BY s.next_status_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.status_schedule s
		WHERE s.event_id = r.event_id AND s.ended_at IS NULL AND s.next_status_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.status_tick(r.event_id, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT e.escalation_id, e.event_id, 'escalation ' || e.escalation_id AS item
			 FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = e.event_id AND f.item = 'escalation ' || e.escalation_id
								 AND (f.parked OR f.retry_at > p_now))
			 ORDER BY e.next_due_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.escalation e
		WHERE e.escalation_id = r.escalation_id AND e.state = 'active' AND e.next_due_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.escalation_advance(r.escalation_id, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	IF v_more THEN
		RETURN p_now;
	END IF;
	v_failures := v_failures OR EXISTS (SELECT FROM evmgmt.work_failure);
	IF NOT v_failures THEN
		v_next := LEAST((SELECT pg_catalog.min(e.next_due_at) FROM evmgmt.escalation e WHERE e.state = 'active'),
						(SELECT pg_catalog.min(s.next_status_at) FROM evmgmt.status_schedule s WHERE s.ended_at IS NULL),
						(SELECT pg_catalog.min(t.next_at) FROM evmgmt.target_timer t WHERE t.next_at IS NOT NULL));
	ELSE
		-- items that failed count at their retry time, parked ones not at all
		v_next := LEAST(
			(SELECT e.next_due_at FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = e.event_id AND f.item = 'escalation ' || e.escalation_id)
			 ORDER BY e.next_due_at LIMIT 1),
			(SELECT s.next_status_at FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f WHERE f.event_id = s.event_id AND f.item = 'status')
			 ORDER BY s.next_status_at LIMIT 1),
			(SELECT t.next_at FROM evmgmt.target_timer t
			 WHERE t.next_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = t.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target)
			 ORDER BY t.next_at LIMIT 1),
			(SELECT pg_catalog.min(GREATEST(f.retry_at,
				CASE WHEN f.item = 'status' THEN
						(SELECT s.next_status_at FROM evmgmt.status_schedule s WHERE s.event_id = f.event_id AND s.ended_at IS NULL)
					 WHEN f.item LIKE 'escalation %' THEN
						(SELECT e.next_due_at FROM evmgmt.escalation e
						 WHERE e.event_id = f.event_id AND f.item = 'escalation ' || e.escalation_id AND e.state = 'active')
					 ELSE
						(SELECT t.next_at FROM evmgmt.target_timer t
						 WHERE t.event_id = f.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target) END))
			 FROM evmgmt.work_failure f WHERE NOT f.parked));
	END IF;
	-- what is left due belongs to events busy elsewhere: look again shortly
	-- rather than at once
	IF v_busy AND v_next <= p_now THEN
		v_next := p_now + interval '1 second';
	END IF;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.run_due_work(timestamptz) IS 'Fires every due target timer, status update and escalation step at the given moment in the caller''s transaction (event, then row, locked with SKIP LOCKED, so concurrent callers never double-fire and never wait; each item in its own subtransaction, a failing one recorded in work_failure, retried with backoff or parked, the others fired on time) and returns when something is due next (NULL: nothing scheduled; the given moment: more is due than one batch; a second later when what is due belongs to events busy in other transactions)';

-- Purge delivery history older than the retention: what the worker calls in
-- small batches (worker.c), attempts first, then finished notifications that
-- no escalation step run refers to.  Returns the rows removed.
CREATE FUNCTION evmgmt.purge_delivery_history(notifications boolean, older_than_minutes integer, batch integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_before timestamptz;
	n integer;
BEGIN
	IF notifications IS NULL OR older_than_minutes IS NULL OR older_than_minutes < 0
	   OR batch IS NULL OR batch < 1 OR batch > 100000 THEN
		RAISE EXCEPTION 'purge_delivery_history needs a choice, a retention of 0 minutes or more and a batch of 1 to 100000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v_before := pg_catalog.now() - pg_catalog.make_interval(mins => older_than_minutes);
	IF NOT notifications THEN
		DELETE FROM evmgmt.delivery_attempt WHERE attempt_id IN (
			SELECT a.attempt_id FROM evmgmt.delivery_attempt a WHERE a.started_at < v_before LIMIT batch);
	ELSE
		DELETE FROM evmgmt.notification WHERE notification_id IN (
			SELECT x.notification_id FROM evmgmt.notification x
			WHERE x.created_at < v_before AND x.state IN ('sent', 'dead', 'cancelled')
			  AND NOT EXISTS (SELECT FROM evmgmt.escalation_step_run r WHERE r.notification_id = x.notification_id)
			LIMIT batch);
	END IF;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.purge_delivery_history(boolean, integer, integer) IS 'Deletes at most batch delivery attempts (notifications = false) or finished notifications that no step run refers to (true) older than the given minutes; returns the rows removed (what the worker calls)';

SELECT pg_catalog.pg_extension_config_dump('evmgmt.work_failure', '');

-- The workers' role (docs/security.md, "The worker's role"): the entry points
-- of due work and of the purge (SECURITY DEFINER, owned by the extension's
-- owner), and what the dispatcher reads and writes directly: the outbox
-- (claim, settle, reclaim: SELECT and UPDATE), delivery attempts (INSERT,
-- and SELECT of the key that ON CONFLICT names),
-- the providers with their secrets (to send and sign), and the escalation
-- state that the outbox trigger notification_drop_stale_retry reads.
-- Nothing else: no DELETE, no event tables, no contacts, no configuration.
REVOKE ALL ON FUNCTION evmgmt.work_failure_record(bigint, text, text, text, timestamptz),
	evmgmt.purge_delivery_history(boolean, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.run_due_work(), evmgmt.purge_delivery_history(boolean, integer, integer)
	TO evmgmt_worker;
GRANT SELECT, UPDATE ON evmgmt.notification TO evmgmt_worker;
GRANT INSERT, SELECT (notification_id, attempt_no) ON evmgmt.delivery_attempt TO evmgmt_worker;
GRANT SELECT ON evmgmt.channel_provider, evmgmt.provider_secret, evmgmt.escalation TO evmgmt_worker;
DO $worker_grants$
BEGIN
	EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %s TO evmgmt_worker',
							  pg_catalog.pg_get_serial_sequence('evmgmt.delivery_attempt', 'attempt_id'));
	-- a database whose owner revoked CONNECT from PUBLIC still gets its worker
	EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO evmgmt_worker', pg_catalog.current_database());
END
$worker_grants$;

-- Failed due work: admins see it and un-park items by deleting their row;
-- responders see it; readers do not (error texts).
GRANT SELECT ON evmgmt.work_failure TO evmgmt_responder, evmgmt_admin;
GRANT DELETE ON evmgmt.work_failure TO evmgmt_admin;

------------------------------------------------------------------------------
-- Issue 14 (H9): outbound allow-list check for admins
------------------------------------------------------------------------------
-- The outbound allow-list (src/allowlist.c): would the dispatcher connect to
-- this address?  For admins checking an endpoint before they use it.
CREATE FUNCTION evmgmt.outbound_allowed(address inet) RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_outbound_allowed'
LANGUAGE C STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.outbound_allowed(inet) IS 'Whether evmgmt.outbound_allow lets the dispatcher connect to the address: "*" allows public addresses only; loopback, private, link-local (metadata), CGNAT, multicast and other special-purpose ranges must be listed explicitly';
REVOKE ALL ON FUNCTION evmgmt.outbound_allowed(inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.outbound_allowed(inet) TO evmgmt_admin;

-- ---------------------------------------------------------------------------
-- run_due_work, merged: per-item isolation (above) and the interval upkeep
-- (detection), whose failure no longer holds up the escalations
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION evmgmt.run_due_work(now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_now timestamptz := $1;
	v_batch integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.escalation_batch_size', true), '')::integer, 500);
	v_more boolean := false;
	v_busy boolean := false;
	v_failures boolean;
	v_next timestamptz;
	v_feed timestamptz;
	v_lock text;
	n integer;
	r record;
BEGIN
	IF p_now IS NULL THEN
		RAISE EXCEPTION 'run_due_work needs a moment' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NOT (p_now >= timestamptz '2000-01-01 00:00+00' AND p_now < timestamptz '2200-01-01 00:00+00') THEN
		RAISE EXCEPTION 'the moment of run_due_work must lie between 2000-01-01 and 2200-01-01'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'It is ' || p_now || '.';
	END IF;
	IF v_batch < 1 OR v_batch > 100000 THEN
		v_batch := 500;
	END IF;

	-- Failures of items that are no longer due (acknowledged, resolved,
	-- rescheduled away) are forgotten, unless they were parked: those stay
	-- until an admin deletes them.
	v_failures := EXISTS (SELECT FROM evmgmt.work_failure);
	IF v_failures THEN
		DELETE FROM evmgmt.work_failure f
		WHERE NOT f.parked AND NOT CASE
			WHEN f.item = 'status' THEN
				EXISTS (SELECT FROM evmgmt.status_schedule s
						WHERE s.event_id = f.event_id AND s.ended_at IS NULL AND s.next_status_at IS NOT NULL)
			WHEN f.item LIKE 'escalation %' THEN
				EXISTS (SELECT FROM evmgmt.escalation e
						WHERE e.event_id = f.event_id AND f.item = 'escalation ' || e.escalation_id AND e.state = 'active')
			ELSE
				EXISTS (SELECT FROM evmgmt.target_timer t
						WHERE t.event_id = f.event_id AND t.next_at IS NOT NULL
						  AND f.item = 'timer ' || t.pool || ' ' || t.target)
			END;
	END IF;

	-- Candidates are read without locks; each is then taken event first
	-- (SKIP LOCKED: a busy event waits for the next call) and re-checked
	-- under its own row lock, so a concurrent caller never fires it twice.
	n := 0;
	FOR r IN SELECT t.event_id, t.pool, t.target, 'timer ' || t.pool || ' ' || t.target AS item
			 FROM evmgmt.target_timer t
			 WHERE t.next_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = t.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target
								 AND (f.parked OR f.retry_at > p_now))
			 ORDER BY t.next_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.target_timer t
		WHERE t.event_id = r.event_id AND t.pool = r.pool AND t.target = r.target AND t.next_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.target_timer_fire(r.event_id, r.pool, r.target, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT s.event_id, 'status' AS item FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = s.event_id AND f.item = 'status' AND (f.parked OR f.retry_at > p_now))
			 ORDER BY s.next_status_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.status_schedule s
		WHERE s.event_id = r.event_id AND s.ended_at IS NULL AND s.next_status_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.status_tick(r.event_id, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT e.escalation_id, e.event_id, 'escalation ' || e.escalation_id AS item
			 FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = e.event_id AND f.item = 'escalation ' || e.escalation_id
								 AND (f.parked OR f.retry_at > p_now))
			 ORDER BY e.next_due_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.escalation e
		WHERE e.escalation_id = r.escalation_id AND e.state = 'active' AND e.next_due_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.escalation_advance(r.escalation_id, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	-- Interval upkeep (25_partitions.sql, 48_feed_health.sql): partitions
	-- ahead of time, and sites whose feed went silent.  Last, and never
	-- waiting for a lock (a load or DDL holding one; the locks it took are
	-- given back when it gives up): it is tried again on the next call.
	v_lock := pg_catalog.current_setting('lock_timeout');
	BEGIN
		PERFORM pg_catalog.set_config('lock_timeout', '200ms', true);
		PERFORM evmgmt.maintain_interval_partitions(p_now);
		v_feed := evmgmt.check_feed_health(p_now);
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
	EXCEPTION
		WHEN lock_not_available THEN
			PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
			v_feed := p_now + interval '1 second';
		WHEN OTHERS THEN
			-- never a poison pill: the steps fired above still commit
			PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
			RAISE WARNING 'evmgmt interval upkeep failed: %', SQLERRM
				USING DETAIL = 'SQLSTATE ' || SQLSTATE || '. It is tried again in 10 seconds; escalations are not held up.';
			v_feed := p_now + interval '10 seconds';
	END;

	IF v_more THEN
		RETURN p_now;
	END IF;
	v_failures := v_failures OR EXISTS (SELECT FROM evmgmt.work_failure);
	IF NOT v_failures THEN
		v_next := LEAST((SELECT pg_catalog.min(e.next_due_at) FROM evmgmt.escalation e WHERE e.state = 'active'),
						(SELECT pg_catalog.min(s.next_status_at) FROM evmgmt.status_schedule s WHERE s.ended_at IS NULL),
						(SELECT pg_catalog.min(t.next_at) FROM evmgmt.target_timer t WHERE t.next_at IS NOT NULL),
						v_feed);
	ELSE
		-- items that failed count at their retry time, parked ones not at all
		v_next := LEAST(
			(SELECT e.next_due_at FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = e.event_id AND f.item = 'escalation ' || e.escalation_id)
			 ORDER BY e.next_due_at LIMIT 1),
			(SELECT s.next_status_at FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f WHERE f.event_id = s.event_id AND f.item = 'status')
			 ORDER BY s.next_status_at LIMIT 1),
			(SELECT t.next_at FROM evmgmt.target_timer t
			 WHERE t.next_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = t.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target)
			 ORDER BY t.next_at LIMIT 1),
			(SELECT pg_catalog.min(GREATEST(f.retry_at,
				CASE WHEN f.item = 'status' THEN
						(SELECT s.next_status_at FROM evmgmt.status_schedule s WHERE s.event_id = f.event_id AND s.ended_at IS NULL)
					 WHEN f.item LIKE 'escalation %' THEN
						(SELECT e.next_due_at FROM evmgmt.escalation e
						 WHERE e.event_id = f.event_id AND f.item = 'escalation ' || e.escalation_id AND e.state = 'active')
					 ELSE
						(SELECT t.next_at FROM evmgmt.target_timer t
						 WHERE t.event_id = f.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target) END))
			 FROM evmgmt.work_failure f WHERE NOT f.parked),
			v_feed);
	END IF;
	-- what is left due belongs to events busy elsewhere: look again shortly
	-- rather than at once
	IF v_busy AND v_next <= p_now THEN
		v_next := p_now + interval '1 second';
	END IF;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.run_due_work(timestamptz) IS 'Fires every due target timer, status update and escalation step at the given moment in the caller''s transaction (event, then row, locked with SKIP LOCKED, so concurrent callers never double-fire and never wait; each item in its own subtransaction, a failing one recorded in work_failure, retried with backoff or parked, the others fired on time), then keeps interval partitions ahead and opens feed-health events for silent sites, and returns when something is due next (NULL: nothing scheduled; the given moment: more is due than one batch; a second later when what is due belongs to events busy in other transactions)';


------------------------------------------------------------------------------
-- Issue 14: security hardening, SQL side (redaction, contact data out of the
-- log, audit of quarantine and status_schedule, guards that hold with
-- session_replication_role = replica, account audit, secrets out of a dump)
------------------------------------------------------------------------------

-- Scrub credentials from a free text (an error message or response body):
-- Authorization schemes and their tokens, key=value secrets, URL user
-- information; with mask_contacts also phone numbers and e-mail addresses.
CREATE FUNCTION evmgmt.redact_text(t text, mask_contacts boolean DEFAULT true) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r text := t;
BEGIN
	IF r IS NULL THEN
		RETURN NULL;
	END IF;
	-- Authorization: Bearer/Basic/Token <credential>
	r := pg_catalog.regexp_replace(r, '(bearer|basic|token|digest)(\s+)[A-Za-z0-9._~+/=:-]{4,}', '\1\2[redacted]', 'gi');
	-- key=value and "key": "value" pairs whose key names a secret
	r := pg_catalog.regexp_replace(r,
		'((?:access_?token|api_?key|apikey|auth_?token|token|secret|password|passwd|pwd|signature|sig|key|client_secret)["'']?\s*[:=]\s*["'']?)[^"''&\s,;}]+',
		'\1[redacted]', 'gi');
	-- user information in URLs
	r := pg_catalog.regexp_replace(r, '([a-z][a-z0-9+.-]*://)[^/@\s]+@', '\1[redacted]@', 'gi');
	-- Twilio-style account and key ids (AC..., SK... followed by 32 hex digits)
	r := pg_catalog.regexp_replace(r, '\m(AC|SK|MG|PN)[0-9a-fA-F]{32}\M', '\1[redacted]', 'g');
	IF mask_contacts THEN
		r := pg_catalog.regexp_replace(r, '[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.[A-Za-z0-9.-]+)', '***@\1', 'g');
		-- runs of 6 or more digits (phone numbers, also written +1 212-555-0102)
		r := pg_catalog.regexp_replace(r, '\+?[0-9][0-9 ().-]{4,}[0-9]', '[number]', 'g');
	END IF;
	RETURN r;
END
$$;
COMMENT ON FUNCTION evmgmt.redact_text(text, boolean) IS 'Free text with credentials removed (Authorization tokens, key=value secrets, URL user information, provider account ids) and, unless mask_contacts is false, phone numbers and e-mail addresses masked';

-- An endpoint URL fit to show: no user information, no query values, no
-- fragment; account ids in the path replaced.
CREATE FUNCTION evmgmt.redact_url(u text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.regexp_replace(
	pg_catalog.regexp_replace(
		pg_catalog.regexp_replace(
			pg_catalog.regexp_replace(u, '^([a-z][a-z0-9+.-]*://)[^/@]*@', '\1[redacted]@', 'i'),
			'([?&][^=&#]+)=[^&#]*', '\1=[redacted]', 'g'),
		'#.*$', ''),
	'\m(AC|SK|MG|PN)[0-9a-fA-F]{32}\M', '\1[redacted]', 'g');
COMMENT ON FUNCTION evmgmt.redact_url(text) IS 'A URL without user information, query values, fragment or provider account ids';

CREATE VIEW evmgmt.delivery_attempt_redacted AS
SELECT attempt_id, notification_id, attempt_no, started_at, finished_at, status_code, outcome,
	   evmgmt.redact_text(error, NOT pg_catalog.pg_has_role('evmgmt_responder', 'USAGE')) AS error, latency
FROM evmgmt.delivery_attempt;
COMMENT ON VIEW evmgmt.delivery_attempt_redacted IS 'delivery_attempt with credentials scrubbed from the error (and contact data masked unless the reader is a responder)';

CREATE VIEW evmgmt.channel_provider_redacted AS
SELECT provider_id, channel, kind, evmgmt.redact_url(endpoint) AS endpoint,
	   CASE WHEN username IS NOT NULL THEN '[redacted]' END AS username,
	   from_address, active
FROM evmgmt.channel_provider;
COMMENT ON VIEW evmgmt.channel_provider_redacted IS 'channel_provider without credentials: endpoint without user information and query values, account id (username) hidden, settings left out';

-- Contact data out of errors and the server log: the rules of contact_channel
-- (not null, channel formats, the primary key) are checked here first, with
-- the address masked in what is raised.  Concurrent writers of the same key
-- are serialized on an advisory lock so that the second sees the first's row
-- (READ COMMITTED); a REPEATABLE READ writer can still reach the primary key
-- itself.
CREATE FUNCTION evmgmt.contact_channel_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	masked text := evmgmt.mask_address(NEW.address);
	rule text;
BEGIN
	IF NEW.contact_id IS NULL OR NEW.channel IS NULL OR NEW.address IS NULL OR NEW.priority IS NULL THEN
		RAISE EXCEPTION 'contact channels need a contact, a channel, an address and a priority'
			USING ERRCODE = 'not_null_violation', TABLE = 'contact_channel', SCHEMA = 'evmgmt',
				  DETAIL = pg_catalog.format('Contact %s, channel %s, address %s.', COALESCE(NEW.contact_id::text, 'missing'),
										   COALESCE(NEW.channel::text, 'missing'), COALESCE(masked, 'missing'));
	END IF;
	rule := CASE
		WHEN NEW.channel = 'webhook' THEN 'contact_channel_not_webhook'
		WHEN NEW.channel IN ('sms', 'voice') AND NEW.address !~ '^\+[1-9][0-9]{6,14}$' THEN 'contact_channel_phone_e164'
		WHEN NEW.channel = 'email' AND NEW.address !~ '^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$' THEN 'contact_channel_email_address'
		WHEN NEW.channel = 'push' AND NEW.address !~ '^[A-Za-z0-9_-]{1,64}$' THEN 'contact_channel_push_topic'
		WHEN NEW.priority < 1 THEN 'contact_channel_priority_check'
	END;
	IF rule IS NOT NULL THEN
		RAISE EXCEPTION 'contact channel violates check constraint "%"', rule
			USING ERRCODE = 'check_violation', CONSTRAINT = rule, TABLE = 'contact_channel', SCHEMA = 'evmgmt',
				  DETAIL = pg_catalog.format('Contact %s, channel %s, address %s.', NEW.contact_id, NEW.channel, masked),
				  HINT = CASE rule
					WHEN 'contact_channel_not_webhook' THEN 'Webhooks are endpoints (channel_provider), not contact channels.'
					WHEN 'contact_channel_phone_e164' THEN 'Phone numbers are in E.164 form: + and 7 to 15 digits, no spaces.'
					WHEN 'contact_channel_email_address' THEN 'Give a plain address such as name@example.com.'
					WHEN 'contact_channel_push_topic' THEN 'A push topic is 1 to 64 letters, digits, _ or -.'
					ELSE 'Priorities start at 1.' END;
	END IF;
	IF TG_OP = 'INSERT' OR (NEW.contact_id, NEW.channel, NEW.address) IS DISTINCT FROM (OLD.contact_id, OLD.channel, OLD.address) THEN
		PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('evmgmt.contact_channel'),
												 pg_catalog.hashtext(NEW.contact_id::text || ' ' || NEW.channel::text || ' ' || NEW.address));
		IF EXISTS (SELECT FROM evmgmt.contact_channel c
				   WHERE c.contact_id = NEW.contact_id AND c.channel = NEW.channel AND c.address = NEW.address) THEN
			RAISE EXCEPTION 'duplicate key value violates unique constraint "contact_channel_pkey"'
				USING ERRCODE = 'unique_violation', CONSTRAINT = 'contact_channel_pkey', TABLE = 'contact_channel', SCHEMA = 'evmgmt',
					  DETAIL = pg_catalog.format('Key (contact_id, channel, address)=(%s, %s, %s) already exists.', NEW.contact_id, NEW.channel, masked);
		END IF;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.contact_channel_check() IS 'Trigger: checks contact_channel''s rules and key before the constraints do, so that errors and the server log show the address masked';
CREATE TRIGGER contact_channel_check BEFORE INSERT OR UPDATE ON evmgmt.contact_channel
	FOR EACH ROW EXECUTE FUNCTION evmgmt.contact_channel_check();

CREATE OR REPLACE VIEW evmgmt.escalation_history AS
SELECT r.run_id, r.escalation_id, e.event_id, e.pool, e.plan_id, e.start_reason, r.cycle, r.step_no, r.retry_no,
	   r.scheduled_at, r.due_at, r.fired_at, r.fired_at - r.due_at AS late_by,
	   r.channel, r.contact_id, c.name AS contact_name,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN r.recipient
			ELSE evmgmt.mask_address(r.recipient) END AS recipient,
	   r.outcome, r.detail, r.notification_id,
	   n.kind AS notification_kind, n.state AS delivery_state, n.attempts AS delivery_attempts, n.sent_at,
	   n.last_status AS delivery_status,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_admin', 'USAGE') THEN n.last_error
			WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN evmgmt.redact_text(n.last_error, false)
			WHEN n.last_error IS NOT NULL THEN '(hidden)' END AS delivery_error,
	   d.finished_at AS last_attempt_at, d.finished_at - d.started_at AS last_attempt_latency,
	   k.acked_at AS recipient_acknowledged_at,
	   e.acknowledged_at, ac.name AS acknowledged_by
FROM evmgmt.escalation_step_run r
JOIN evmgmt.escalation e ON e.escalation_id = r.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = r.contact_id
LEFT JOIN evmgmt.notification n ON n.notification_id = r.notification_id
LEFT JOIN LATERAL (SELECT x.started_at, x.finished_at FROM evmgmt.delivery_attempt x
				   WHERE x.notification_id = r.notification_id ORDER BY x.attempt_no DESC LIMIT 1) d ON true
LEFT JOIN evmgmt.escalation_ack k ON k.escalation_id = r.escalation_id AND k.contact_id = r.contact_id
LEFT JOIN evmgmt.contact ac ON ac.contact_id = e.acknowledged_by;
COMMENT ON VIEW evmgmt.escalation_history IS 'Every step an escalation fired, per recipient: scheduled, due and fired time, late_by, channel, recipient (masked unless the reader is a responder), typed outcome, delivery result (the error raw for admins, with credentials scrubbed for responders, hidden from readers), acknowledgment';

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

ALTER TABLE evmgmt.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only, ENABLE ALWAYS TRIGGER audit_log_no_truncate;

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

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.status_schedule FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.status_schedule FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();
CREATE TRIGGER audit AFTER UPDATE OR DELETE ON evmgmt.interval_quarantine FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.interval_quarantine FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();
DO $always$
DECLARE
	t text;
BEGIN
	FOR t IN SELECT c.relname FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tg.tgrelid
			 WHERE c.relnamespace OPERATOR(pg_catalog.=) 'evmgmt'::regnamespace AND tg.tgname OPERATOR(pg_catalog.=) 'audit'
	LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ALWAYS TRIGGER audit, ENABLE ALWAYS TRIGGER audit_truncate', t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['event', 'pool_condition', 'event_timeline', 'response_action',
							 'post_resolution_analysis', 'action_item', 'objective_impact']
	LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ALWAYS TRIGGER refuse_direct_change, ENABLE ALWAYS TRIGGER refuse_direct_truncate', t);
	END LOOP;
END
$always$;

GRANT SELECT ON evmgmt.delivery_attempt_redacted, evmgmt.channel_provider_redacted TO evmgmt_reader, evmgmt_admin;
-- Issue 14, redaction: provider responses (delivery_attempt.error,
-- notification.last_error) and provider endpoints and account ids
-- (channel_provider.endpoint, username, settings) are for admins only;
-- readers and responders read every other column, and the *_redacted views.
REVOKE SELECT ON evmgmt.delivery_attempt, evmgmt.channel_provider FROM evmgmt_reader;
GRANT SELECT (attempt_id, notification_id, attempt_no, started_at, finished_at, status_code, outcome, latency)
	ON evmgmt.delivery_attempt TO evmgmt_reader;
GRANT SELECT (provider_id, channel, kind, from_address, active) ON evmgmt.channel_provider TO evmgmt_reader;
REVOKE SELECT ON evmgmt.notification FROM evmgmt_responder;
GRANT SELECT (notification_id, event_id, escalation_id, kind, channel, provider_id, contact_id, recipient, subject, body,
			  payload, idempotency_key, state, attempts, created_at, sent_at, last_status, claimed_at, lease_until, next_attempt_at)
	ON evmgmt.notification TO evmgmt_responder;
REVOKE ALL ON FUNCTION evmgmt.contact_channel_check() FROM PUBLIC;

-- Issue 14, audit: the account audit is for admins.
REVOKE ALL ON FUNCTION evmgmt.report_account_audit(interval, timestamptz), evmgmt.interval_quarantine_stamp() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.report_account_audit(interval, timestamptz) TO evmgmt_admin;

SELECT pg_catalog.pg_extension_config_dump('evmgmt.provider_secret',
	'WHERE pg_catalog.current_setting(''evmgmt.dump_secrets'', true) IS DISTINCT FROM ''off''');

------------------------------------------------------------------------------
-- Issue 14: the raw-line ingest path (interval_inbox_raw, ingest_load, the
-- loader's own views)
------------------------------------------------------------------------------

CREATE TABLE evmgmt.interval_inbox_raw (
	line_no			bigint GENERATED ALWAYS AS IDENTITY,
	line			text
);
COMMENT ON TABLE evmgmt.interval_inbox_raw IS 'COPY target for whole lines of interval data (one text value per line); lines are parsed and routed at the end of each statement and never kept here';

CREATE TABLE evmgmt.ingest_load (
	load_id			bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	loaded_by		text NOT NULL DEFAULT SESSION_USER,
	started_at		timestamptz NOT NULL,
	finished_at		timestamptz NOT NULL,
	lines			integer NOT NULL CHECK (lines >= 0),
	skipped			integer NOT NULL CHECK (skipped >= 0),
	malformed		integer NOT NULL CHECK (malformed >= 0),
	routed			integer NOT NULL CHECK (routed >= 0),
	quarantined		integer NOT NULL CHECK (quarantined >= 0),
	accepted		integer NOT NULL CHECK (accepted >= 0)
);
CREATE INDEX ON evmgmt.ingest_load (loaded_by, started_at);
COMMENT ON TABLE evmgmt.ingest_load IS 'One row per statement into interval_inbox_raw: lines read, header lines skipped, lines with the wrong number of fields (quarantined), lines routed into interval_inbox, of those quarantined for their values and accepted into interval_stat';

-- Parse the statement's lines set-based and route them.  SECURITY DEFINER:
-- the loader may insert lines but not read or delete them, nor read the
-- quarantine it is counted against; the loader's identity is session_user.
CREATE FUNCTION evmgmt.interval_inbox_raw_route() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_started timestamptz := pg_catalog.clock_timestamp();
	v_lines integer;
	v_skipped integer;
	v_malformed integer;
	v_routed integer;
	v_before bigint;
	v_quarantined integer;
BEGIN
	SELECT pg_catalog.count(*)::integer,
		   pg_catalog.count(*) FILTER (WHERE n.line IS NULL OR pg_catalog.btrim(n.line, E' \t\r') = '' OR n.line ~* '^\s*site_id\s*,')::integer
	INTO v_lines, v_skipped FROM new_lines n;
	SELECT pg_catalog.count(*) INTO v_before FROM evmgmt.interval_quarantine q
	WHERE q.received_by = SESSION_USER AND q.received_at >= v_started;
	-- split every line of the statement at once
	WITH parsed AS MATERIALIZED (
		SELECT n.line_no - (SELECT pg_catalog.min(m.line_no) FROM new_lines m) + 1 AS line_no, n.line,
			   pg_catalog.string_to_array(pg_catalog.rtrim(n.line, E'\r'), ',', '') AS f
		FROM new_lines n
		WHERE n.line IS NOT NULL AND pg_catalog.btrim(n.line, E' \t\r') <> '' AND n.line !~* '^\s*site_id\s*,'),
	malformed AS (
		INSERT INTO evmgmt.interval_quarantine (row_data, sqlstate, reason, detail)
		SELECT pg_catalog.jsonb_build_object('line_no', p.line_no, 'line', p.line), '22P04',
			   pg_catalog.format('line has %s fields, 15 expected', pg_catalog.cardinality(p.f)),
			   'Lines of interval_inbox_raw hold the 15 columns of interval_inbox, separated by commas.'
		FROM parsed p WHERE pg_catalog.cardinality(p.f) <> 15
		RETURNING 1)
	SELECT (SELECT pg_catalog.count(*) FROM malformed)::integer,
		   (SELECT pg_catalog.count(*) FROM parsed p WHERE pg_catalog.cardinality(p.f) = 15)::integer
	INTO v_malformed, v_routed;
	-- the well-formed lines take the inbox's own path, in line order
	INSERT INTO evmgmt.interval_inbox (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned,
									   answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled,
									   forecast_offered, forecast_aht)
	SELECT NULLIF(pg_catalog.btrim(f[1]), ''), NULLIF(pg_catalog.btrim(f[2]), ''), NULLIF(pg_catalog.btrim(f[3]), ''),
		   NULLIF(pg_catalog.btrim(f[4]), ''), NULLIF(pg_catalog.btrim(f[5]), ''), NULLIF(pg_catalog.btrim(f[6]), ''),
		   NULLIF(pg_catalog.btrim(f[7]), ''), NULLIF(pg_catalog.btrim(f[8]), ''), NULLIF(pg_catalog.btrim(f[9]), ''),
		   NULLIF(pg_catalog.btrim(f[10]), ''), NULLIF(pg_catalog.btrim(f[11]), ''), NULLIF(pg_catalog.btrim(f[12]), ''),
		   NULLIF(pg_catalog.btrim(f[13]), ''), NULLIF(pg_catalog.btrim(f[14]), ''), NULLIF(pg_catalog.btrim(f[15]), '')
	FROM (SELECT n.line_no, pg_catalog.string_to_array(pg_catalog.rtrim(n.line, E'\r'), ',') AS f
		  FROM new_lines n
		  WHERE n.line IS NOT NULL AND pg_catalog.btrim(n.line, E' \t\r') <> '' AND n.line !~* '^\s*site_id\s*,') p
	WHERE pg_catalog.cardinality(p.f) = 15
	ORDER BY p.line_no;
	SELECT (pg_catalog.count(*) - v_before)::integer - v_malformed INTO v_quarantined FROM evmgmt.interval_quarantine q
	WHERE q.received_by = SESSION_USER AND q.received_at >= v_started;
	DELETE FROM evmgmt.interval_inbox_raw r WHERE r.line_no IN (SELECT n.line_no FROM new_lines n);
	INSERT INTO evmgmt.ingest_load (started_at, finished_at, lines, skipped, malformed, routed, quarantined, accepted)
	VALUES (v_started, pg_catalog.clock_timestamp(), v_lines, v_skipped, v_malformed, v_routed, GREATEST(v_quarantined, 0),
			GREATEST(v_routed - GREATEST(v_quarantined, 0), 0));
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_inbox_raw_route() IS 'Statement trigger: splits the lines of interval_inbox_raw, quarantines lines with the wrong number of fields, routes the others into interval_inbox and records the load in ingest_load';
CREATE TRIGGER interval_inbox_raw_route AFTER INSERT ON evmgmt.interval_inbox_raw
	REFERENCING NEW TABLE AS new_lines
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_inbox_raw_route();

CREATE VIEW evmgmt.my_ingest_load WITH (security_barrier) AS
SELECT l.load_id, l.started_at, l.finished_at, l.lines, l.skipped, l.malformed, l.routed, l.quarantined, l.accepted
FROM evmgmt.ingest_load l
WHERE l.loaded_by = SESSION_USER;
COMMENT ON VIEW evmgmt.my_ingest_load IS 'The loads of interval_inbox_raw made by the current session user, with their counts';

CREATE VIEW evmgmt.my_interval_quarantine WITH (security_barrier) AS
SELECT q.quarantine_id, q.received_at, q.row_data, q.sqlstate, q.reason, q.detail, q.constraint_name
FROM evmgmt.interval_quarantine q
WHERE q.received_by = SESSION_USER;
COMMENT ON VIEW evmgmt.my_interval_quarantine IS 'The quarantined interval rows the current session user loaded, with the reason';

GRANT SELECT ON evmgmt.interval_inbox_raw, evmgmt.ingest_load, evmgmt.my_ingest_load, evmgmt.my_interval_quarantine
	TO evmgmt_reader, evmgmt_admin;
-- Issue 14, ingest: whole lines through interval_inbox_raw, and the loader's
-- own loads and quarantined rows.
GRANT INSERT ON evmgmt.interval_inbox_raw TO evmgmt_ingest;
GRANT SELECT ON evmgmt.my_ingest_load, evmgmt.my_interval_quarantine TO evmgmt_ingest;
REVOKE ALL ON FUNCTION evmgmt.interval_inbox_raw_route() FROM PUBLIC;

GRANT USAGE ON SEQUENCE evmgmt.ingest_load_load_id_seq, evmgmt.interval_inbox_raw_line_no_seq TO evmgmt_admin;
SELECT pg_catalog.pg_extension_config_dump('evmgmt.ingest_load', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('evmgmt.ingest_load', 'load_id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('evmgmt.interval_inbox_raw', 'line_no'), '');

-- ---------------------------------------------------------------------------
-- Privileges of the partition and detection functions (issue 14 review)
-- ---------------------------------------------------------------------------

-- Interval partitions and detection (25_partitions.sql, 32_detection.sql,
-- 47_detection_actions.sql, 48_feed_health.sql) are SECURITY DEFINER: they
-- create and drop tables and open events.  Partition upkeep by hand is for
-- admins (who may delete intervals anyway); the feed check with its clock
-- argument and the detection internals are reached only through
-- run_due_work and the interval_stat trigger, which run as the extension's
-- owner.
REVOKE ALL ON FUNCTION evmgmt.create_interval_partitions(integer, timestamptz, boolean),
	evmgmt.drop_interval_partitions(interval, timestamptz),
	evmgmt.maintain_interval_partitions(timestamptz),
	evmgmt.check_feed_health(timestamptz),
	evmgmt.detect_loaded(evmgmt.interval_touch[]),
	evmgmt.detect_point(text, text, evmgmt.pool, text, evmgmt.effective_detection_policy, integer[], double precision[],
						evmgmt.detection_row, evmgmt.detection_row[], boolean),
	evmgmt.detection_note(bigint, evmgmt.pool, text, text, jsonb),
	evmgmt.feed_resumed(evmgmt.interval_touch[]) FROM PUBLIC;
-- their triggers (a trigger function needs no EXECUTE privilege to fire)
REVOKE ALL ON FUNCTION evmgmt.interval_stat_loaded(), evmgmt.interval_inbox_route(), evmgmt.interval_code_in_use() FROM PUBLIC;
-- the capture frame of a load into interval_stat is its statement trigger's
-- business; the CHECK's own function stays executable by every inserter (a
-- CHECK runs with the inserting role's privileges, and only ever notes)
REVOKE ALL ON FUNCTION evmgmt.interval_stat_load_begin(), evmgmt.interval_stat_touched(),
	evmgmt.interval_stat_redelivered(), evmgmt.interval_stat_load_end(),
	evmgmt.stored_by_this_transaction(xid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.create_interval_partitions(integer, timestamptz, boolean),
	evmgmt.drop_interval_partitions(interval, timestamptz),
	evmgmt.maintain_interval_partitions(timestamptz) TO evmgmt_admin;


-- ---------------------------------------------------------------------------
-- Delivery under faults (issue 13): the dispatcher claims per endpoint
-- (provider), round-robin by due time; this index serves that claim.
-- ---------------------------------------------------------------------------
CREATE INDEX notification_provider_due_idx ON evmgmt.notification (provider_id, next_attempt_at, notification_id)
	WHERE state IN ('pending', 'retry');

-- ---------------------------------------------------------------------------
-- Restored copies must not page anyone (issue 13): the installation identity
-- (not dumped) and the dumped origin of sending (06_installation.sql), the
-- origin stamped on every notification, the hold check, the status view and
-- resume_sending (69_sending_status.sql).  An upgraded database is the
-- database it was: its origin is recorded as 'upgrade' and its notifications
-- are stamped with its install_id.
-- ---------------------------------------------------------------------------
CREATE TABLE evmgmt.installation (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	install_id		uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	system_identifier bigint NOT NULL,
	database_oid	oid NOT NULL,
	installed_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE evmgmt.installation IS 'Identity of this installation (not dumped): random install_id, system_identifier and database oid where it lives; written by CREATE EXTENSION, updated by resume_sending';

CREATE TABLE evmgmt.sending_origin (
	install_id		uuid PRIMARY KEY,
	enabled_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	enabled_by		text NOT NULL DEFAULT SESSION_USER,
	how				text NOT NULL CHECK (how IN ('create extension', 'upgrade', 'resume: send', 'resume: drop')),
	dropped			integer NOT NULL DEFAULT 0 CHECK (dropped >= 0)
);
COMMENT ON TABLE evmgmt.sending_origin IS 'The installation where sending is enabled (dumped, so a restored copy brings the source''s row and is held); exactly this installation''s row means sending may go on';

INSERT INTO evmgmt.installation (system_identifier, database_oid)
SELECT s.system_identifier, d.oid
FROM pg_catalog.pg_control_system() s, pg_catalog.pg_database d
WHERE d.datname = pg_catalog.current_database();
INSERT INTO evmgmt.sending_origin (install_id, how)
SELECT install_id, 'upgrade' FROM evmgmt.installation;

-- The install_id of this installation (what new notifications are stamped with).
CREATE FUNCTION evmgmt.installation_id() RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT i.install_id FROM evmgmt.installation i);
COMMENT ON FUNCTION evmgmt.installation_id() IS 'The install_id of this installation: the origin stamped on new notifications';

ALTER TABLE evmgmt.notification ADD COLUMN origin uuid DEFAULT evmgmt.installation_id();
COMMENT ON COLUMN evmgmt.notification.origin IS 'install_id of the installation that wrote it: the dispatcher sends only its own installation''s rows, so a restored copy''s backlog waits for evmgmt.resume_sending';
CREATE INDEX notification_origin_idx ON evmgmt.notification (origin) WHERE state IN ('pending', 'retry', 'sending');

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

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.sending_origin FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.sending_origin FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();
SELECT pg_catalog.pg_extension_config_dump('evmgmt.sending_origin', '');
GRANT SELECT ON evmgmt.installation, evmgmt.sending_origin, evmgmt.sending_status TO evmgmt_reader, evmgmt_admin;
REVOKE ALL ON FUNCTION evmgmt.resume_sending(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.resume_sending(text) TO evmgmt_admin;

-- ---------------------------------------------------------------------------
-- What people receive (issue 13): a sev1, or anything more urgent than what
-- waits in the digest or what the address just got, is never bundled and
-- takes the waiting digest with it; one resolve notice per person and event.
-- ---------------------------------------------------------------------------
CREATE FUNCTION evmgmt.tier_rank(payload jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE COALESCE(payload ->> 'severity', payload ->> 'tier')
	WHEN 'sev1' THEN 1 WHEN 'sev2' THEN 2 WHEN 'sev3' THEN 3 WHEN 'sev4' THEN 4 ELSE 5 END;
COMMENT ON FUNCTION evmgmt.tier_rank(jsonb) IS 'Urgency of a message from its payload severity (or tier): 1 = sev1 ... 4 = sev4, 5 = other';

CREATE OR REPLACE FUNCTION evmgmt.enqueue_notification(p_kind text, p_channel evmgmt.channel, p_provider_id text,
											p_contact_id bigint, p_recipient text, p_event_id bigint,
											p_escalation_id bigint, p_operation_id text, p_subject text,
											p_body text, p_payload jsonb, p_now timestamptz,
											OUT notification_id bigint, OUT bundled boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_window interval := evmgmt.setting_interval('evmgmt.recipient_burst_window', interval '60 seconds');
	v_item jsonb;
	v_id bigint;
	v_payload jsonb;
	v_last timestamptz;
	v_rank integer := evmgmt.tier_rank(p_payload);
	v_recent integer;
	m record;
BEGIN
	bundled := false;
	IF p_channel <> 'webhook' AND v_window > interval '0' THEN
		-- one writer per address at a time, so a burst builds one digest
		PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('evmgmt.recipient'),
												 pg_catalog.hashtext(p_channel::text || ' ' || p_recipient));
		v_item := pg_catalog.jsonb_build_object('kind', p_kind, 'event_id', p_event_id, 'escalation_id', p_escalation_id,
												'contact_id', p_contact_id, 'operation_id', p_operation_id,
												'subject', p_subject, 'body', p_body, 'at', p_now, 'payload', p_payload);
		SELECT n.notification_id, n.payload INTO v_id, v_payload
		FROM evmgmt.notification n
		WHERE n.channel = p_channel AND n.recipient = p_recipient AND n.kind = 'digest'
		  AND n.state IN ('pending', 'retry') AND n.attempts = 0 AND n.next_attempt_at > p_now
		ORDER BY n.next_attempt_at
		LIMIT 1
		FOR UPDATE SKIP LOCKED;
		IF FOUND AND (v_rank = 1 OR v_rank < COALESCE((SELECT pg_catalog.min(evmgmt.tier_rank(i -> 'payload'))
													  FROM pg_catalog.jsonb_array_elements(v_payload -> 'items') i), 5)) THEN
			-- more urgent than what waits: it goes out now, and the digest with it
			UPDATE evmgmt.notification SET next_attempt_at = p_now WHERE notification_id = v_id;
		ELSIF FOUND THEN
			v_payload := pg_catalog.jsonb_set(v_payload, '{items}', (v_payload -> 'items') || pg_catalog.jsonb_build_array(v_item));
			SELECT * INTO m FROM evmgmt.render_digest(p_channel, v_payload -> 'items');
			UPDATE evmgmt.notification SET payload = v_payload, subject = m.subject, body = m.body
			WHERE notification_id = v_id;
			notification_id := v_id;
			bundled := true;
			RETURN;
		ELSE
			SELECT pg_catalog.max(n.created_at), pg_catalog.min(evmgmt.tier_rank(n.payload)) INTO v_last, v_recent
			FROM evmgmt.notification n
			WHERE n.channel = p_channel AND n.recipient = p_recipient
			  AND n.created_at > p_now - v_window AND n.created_at <= p_now AND n.state <> 'cancelled';
		END IF;
		IF v_last IS NOT NULL AND v_rank > 1 AND v_rank >= v_recent THEN
			SELECT * INTO m FROM evmgmt.render_digest(p_channel, pg_catalog.jsonb_build_array(v_item));
			INSERT INTO evmgmt.notification (event_id, escalation_id, kind, channel, provider_id, contact_id, recipient,
											 subject, body, payload, created_at, next_attempt_at)
			VALUES (NULL, NULL, 'digest', p_channel, p_provider_id, p_contact_id, p_recipient, m.subject, m.body,
					pg_catalog.jsonb_build_object('digest', true, 'tier', p_payload -> 'tier', 'severity', p_payload -> 'severity',
												  'items', pg_catalog.jsonb_build_array(v_item)),
					p_now, v_last + v_window)
			RETURNING notification_id INTO notification_id;
			bundled := true;
			RETURN;
		END IF;
	END IF;
	INSERT INTO evmgmt.notification (event_id, escalation_id, kind, channel, provider_id, contact_id, recipient,
									 subject, body, payload, created_at, next_attempt_at)
	VALUES (p_event_id, p_escalation_id, p_kind, p_channel, p_provider_id, p_contact_id, p_recipient,
			p_subject, p_body, p_payload, p_now, p_now)
	RETURNING notification_id INTO notification_id;
END
$$;
COMMENT ON FUNCTION evmgmt.enqueue_notification(text, evmgmt.channel, text, bigint, text, bigint, bigint, text, text, text, jsonb, timestamptz) IS 'Writes a notification to the outbox, bundling it into a digest when the same address got one within evmgmt.recipient_burst_window';

CREATE FUNCTION evmgmt.resolve_notice_queued(p_event_id bigint, p_contact_id bigint) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM evmgmt.notification n
			   WHERE n.contact_id = p_contact_id AND n.kind IN ('resolved', 'digest') AND n.state <> 'cancelled'
				 AND ((n.kind = 'resolved' AND n.event_id = p_event_id)
					  OR (n.kind = 'digest' AND n.payload -> 'items' @> pg_catalog.jsonb_build_array(
							pg_catalog.jsonb_build_object('kind', 'resolved', 'event_id', p_event_id)))));
COMMENT ON FUNCTION evmgmt.resolve_notice_queued(bigint, bigint) IS 'Whether the contact already has the resolution of the event (sent or queued, alone or in a digest)';

CREATE OR REPLACE FUNCTION evmgmt.notify_contact(p_kind text, p_contact_id bigint, p_channel evmgmt.channel, p_event_id bigint,
									  p_escalation_id bigint, p_operation_id text, p_vars jsonb, p_now timestamptz,
									  OUT outcome text, OUT notification_id bigint, OUT recipient text, OUT provider_id text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_active boolean;
	m record;
	q record;
BEGIN
	SELECT c.active INTO v_active FROM evmgmt.contact c WHERE c.contact_id = p_contact_id;
	IF NOT COALESCE(v_active, false) THEN
		outcome := 'inactive_contact';
		RETURN;
	END IF;
	IF p_kind = 'resolved' AND p_event_id IS NOT NULL AND evmgmt.resolve_notice_queued(p_event_id, p_contact_id) THEN
		outcome := 'already_notified';
		RETURN;
	END IF;
	SELECT cc.address INTO recipient FROM evmgmt.contact_channel cc
	WHERE cc.contact_id = p_contact_id AND cc.channel = p_channel
	ORDER BY cc.priority, cc.address LIMIT 1;
	IF recipient IS NULL THEN
		outcome := 'no_channel';
		RETURN;
	END IF;
	SELECT p.provider_id INTO provider_id FROM evmgmt.channel_provider p
	WHERE p.channel = p_channel AND p.active ORDER BY p.provider_id LIMIT 1;
	IF provider_id IS NULL THEN
		outcome := 'no_provider';
		RETURN;
	END IF;
	SELECT * INTO m FROM evmgmt.render_message(p_kind, p_channel, p_operation_id, p_vars);
	SELECT * INTO q FROM evmgmt.enqueue_notification(p_kind, p_channel, provider_id, p_contact_id, recipient, p_event_id,
													 p_escalation_id, p_operation_id, m.subject, m.body,
													 p_vars || pg_catalog.jsonb_build_object('kind', p_kind, 'channel', p_channel, 'contact_id', p_contact_id),
													 p_now);
	notification_id := q.notification_id;
	outcome := CASE WHEN q.bundled THEN 'bundled' ELSE 'queued' END;
END
$$;
COMMENT ON FUNCTION evmgmt.notify_contact(text, bigint, evmgmt.channel, bigint, bigint, text, jsonb, timestamptz) IS 'Queues one message to one contact on one channel, or says why it could not (inactive_contact, no_channel, no_provider, already_notified: the contact has the event''s resolution already)';

CREATE OR REPLACE FUNCTION evmgmt.notify_audiences(p_event_id bigint, p_audiences text[], p_kind text, p_vars jsonb,
										p_now timestamptz, p_extra bigint[] DEFAULT '{}') RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	v_site text;
	v_gaps jsonb := '[]';
	r record;
	q record;
BEGIN
	SELECT e.operation_id, e.site_id INTO v_op, v_site FROM evmgmt.event e WHERE e.event_id = p_event_id;
	FOR r IN SELECT a.contact_id, a.channel FROM evmgmt.audience_members(v_op, v_site, p_audiences) a
			 UNION
			 SELECT p.contact_id, p.channel FROM evmgmt.paged_contacts(p_extra) p
			 ORDER BY 1, 2
	LOOP
		-- somebody who is both paged and in an audience hears it once
		CONTINUE WHEN EXISTS (SELECT FROM evmgmt.notification n
							  WHERE n.event_id = p_event_id AND n.kind = p_kind AND n.contact_id = r.contact_id
								AND n.channel = r.channel AND n.created_at = p_now AND n.state <> 'cancelled');
		SELECT * INTO q FROM evmgmt.notify_contact(p_kind, r.contact_id, r.channel, p_event_id, NULL, v_op, p_vars, p_now);
		IF q.outcome NOT IN ('queued', 'bundled', 'already_notified') THEN
			v_gaps := v_gaps || pg_catalog.jsonb_build_object('contact_id', r.contact_id, 'channel', r.channel, 'outcome', q.outcome);
		END IF;
	END LOOP;
	RETURN v_gaps;
END
$$;
COMMENT ON FUNCTION evmgmt.notify_audiences(bigint, text[], text, jsonb, timestamptz, bigint[]) IS 'Queues a footprint message to the members of audiences (and to the contacts paged by the given escalations); returns who could not be reached and why';

CREATE OR REPLACE FUNCTION evmgmt.escalation_stop(event_id bigint, pool evmgmt.pool, why text,
									   now timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_pool evmgmt.pool := $2;
	p_why text := COALESCE($3, 'resolved');
	p_now timestamptz := $4;
	v_state text := CASE WHEN COALESCE($3, '') ILIKE 'cancel%' THEN 'cancelled' ELSE 'resolved' END;
	v_all boolean;
	v_ids bigint[] := '{}';
	v_stopped integer := 0;
	v_op text;
	v_facts jsonb;
	v_vars jsonb;
	x record;
	r record;
	q record;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN 0;
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	-- is the event over once this pool is?
	v_all := p_pool IS NULL OR NOT EXISTS (
		SELECT FROM evmgmt.pool_condition pc
		WHERE pc.event_id = p_event AND pc.pool <> p_pool AND pc.state NOT IN ('resolved', 'cancelled'));

	FOR x IN SELECT e.escalation_id, e.state FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND (v_all OR e.pool = p_pool) AND e.resolve_notified_at IS NULL
			 ORDER BY e.escalation_id
			 FOR UPDATE
	LOOP
		IF x.state = 'active' THEN
			UPDATE evmgmt.escalation
			SET state = v_state, ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = p_why
			WHERE escalation_id = x.escalation_id;
			v_stopped := v_stopped + 1;
		END IF;
		-- an exhausted escalation may still have pages waiting: a resolved
		-- event never pages anyone later
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
		v_ids := v_ids || x.escalation_id;
	END LOOP;

	UPDATE evmgmt.target_timer t
	SET met_at = CASE WHEN t.breached_at IS NULL THEN p_now END, next_at = NULL
	WHERE t.event_id = p_event AND (v_all OR t.pool = p_pool) AND t.met_at IS NULL AND t.next_at IS NOT NULL;

	-- everyone who was paged hears that it is over
	IF pg_catalog.cardinality(v_ids) > 0 THEN
		v_facts := evmgmt.event_facts(p_event);
		v_vars := v_facts || pg_catalog.jsonb_build_object('outcome', v_state, 'why', p_why, 'pool', p_pool);
		-- one notice per person and event: who is still paged for a live pool
		-- of the event hears it when that one ends too
		FOR r IN SELECT * FROM evmgmt.paged_contacts(v_ids) p
				 WHERE NOT EXISTS (SELECT FROM evmgmt.paged_contacts(ARRAY(
									   SELECT e.escalation_id FROM evmgmt.escalation e
									   WHERE e.event_id = p_event AND e.resolve_notified_at IS NULL
										 AND e.escalation_id <> ALL (v_ids))) o
								   WHERE o.contact_id = p.contact_id)
		LOOP
			PERFORM evmgmt.notify_contact('resolved', r.contact_id, r.channel, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		FOR r IN SELECT DISTINCT ON (s.provider_id) s.provider_id, s.escalation_id
				 FROM evmgmt.escalation_step_run s
				 WHERE s.escalation_id = ANY (v_ids) AND s.channel = 'webhook' AND s.outcome = 'queued'
				 ORDER BY s.provider_id, s.run_id DESC
		LOOP
			PERFORM evmgmt.notify_endpoint('resolved', r.provider_id, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		UPDATE evmgmt.escalation SET resolve_notified_at = p_now WHERE escalation_id = ANY (v_ids);
	END IF;

	IF v_all THEN
		PERFORM evmgmt.footprint_close(p_event, v_state, p_why, p_now);
	END IF;
	RETURN v_stopped;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz) IS 'Stops the escalations of a pool condition (all pools for NULL) at once: cancels unsent notifications, queues resolve (or cancel) notices to everyone paged; when the event has no live pool left, sends the footprint''s resolution messages and ends the status cadence; returns how many were running';

CREATE INDEX notification_contact_resolved_idx ON evmgmt.notification (contact_id) WHERE kind IN ('resolved', 'digest');

-- ---------------------------------------------------------------------------
-- Messages say what is true (issue 13): event messages are rendered again at
-- commit from the facts then; a resolve notice carries the resolution note.
-- ---------------------------------------------------------------------------
CREATE FUNCTION evmgmt.notification_render_at_commit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n record;
	f jsonb;
	v jsonb;
	m record;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	SELECT x.* INTO n FROM evmgmt.notification x
	WHERE x.notification_id = NEW.notification_id AND x.state = 'pending' AND x.attempts = 0;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	f := evmgmt.event_facts(n.event_id);
	IF f IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT n.payload || COALESCE(pg_catalog.jsonb_object_agg(e.key, e.value), '{}') INTO v
	FROM pg_catalog.jsonb_each(f) e WHERE n.payload ? e.key;
	IF v = n.payload THEN
		RETURN NULL;
	END IF;
	SELECT * INTO m FROM evmgmt.render_message(n.kind, n.channel, COALESCE(v ->> 'operation_id', f ->> 'operation_id'), v);
	UPDATE evmgmt.notification SET payload = v, subject = m.subject, body = m.body
	WHERE notification_id = n.notification_id;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.notification_render_at_commit() IS 'Trigger (deferred to commit): renders a queued event message again from the event''s facts at commit, so it says what is true then';
CREATE CONSTRAINT TRIGGER notification_render_at_commit AFTER INSERT ON evmgmt.notification
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW WHEN (NEW.event_id IS NOT NULL AND NEW.kind <> 'digest' AND NEW.kind <> 'test')
	EXECUTE FUNCTION evmgmt.notification_render_at_commit();
REVOKE ALL ON FUNCTION evmgmt.notification_render_at_commit() FROM PUBLIC;

CREATE OR REPLACE FUNCTION evmgmt.escalation_stop(event_id bigint, pool evmgmt.pool, why text,
									   now timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_pool evmgmt.pool := $2;
	p_why text := COALESCE($3, 'resolved');
	p_now timestamptz := $4;
	v_state text := CASE WHEN COALESCE($3, '') ILIKE 'cancel%' THEN 'cancelled' ELSE 'resolved' END;
	v_all boolean;
	v_ids bigint[] := '{}';
	v_stopped integer := 0;
	v_op text;
	v_note text;
	v_facts jsonb;
	v_vars jsonb;
	x record;
	r record;
	q record;
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN 0;
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	-- is the event over once this pool is?
	v_all := p_pool IS NULL OR NOT EXISTS (
		SELECT FROM evmgmt.pool_condition pc
		WHERE pc.event_id = p_event AND pc.pool <> p_pool AND pc.state NOT IN ('resolved', 'cancelled'));

	FOR x IN SELECT e.escalation_id, e.state FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND (v_all OR e.pool = p_pool) AND e.resolve_notified_at IS NULL
			 ORDER BY e.escalation_id
			 FOR UPDATE
	LOOP
		IF x.state = 'active' THEN
			UPDATE evmgmt.escalation
			SET state = v_state, ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = p_why
			WHERE escalation_id = x.escalation_id;
			v_stopped := v_stopped + 1;
		END IF;
		-- an exhausted escalation may still have pages waiting: a resolved
		-- event never pages anyone later
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
		v_ids := v_ids || x.escalation_id;
	END LOOP;

	UPDATE evmgmt.target_timer t
	SET met_at = CASE WHEN t.breached_at IS NULL THEN p_now END, next_at = NULL
	WHERE t.event_id = p_event AND (v_all OR t.pool = p_pool) AND t.met_at IS NULL AND t.next_at IS NOT NULL;

	-- messages carry the note given with the resolution, not the word "resolved"
	v_note := p_why;
	IF v_state = 'resolved' THEN
		v_note := COALESCE((SELECT pg_catalog.string_agg(DISTINCT pc.resolution_note, '; ')
						   FROM evmgmt.pool_condition pc
						   WHERE pc.event_id = p_event AND (p_pool IS NULL OR pc.pool = p_pool)
							 AND pc.resolution_note IS NOT NULL AND pc.resolution_note <> ''), p_why);
	END IF;

	-- everyone who was paged hears that it is over
	IF pg_catalog.cardinality(v_ids) > 0 THEN
		v_facts := evmgmt.event_facts(p_event);
		v_vars := v_facts || pg_catalog.jsonb_build_object('outcome', v_state, 'why', v_note, 'pool', p_pool);
		-- one notice per person and event: who is still paged for a live pool
		-- of the event hears it when that one ends too
		FOR r IN SELECT * FROM evmgmt.paged_contacts(v_ids) p
				 WHERE NOT EXISTS (SELECT FROM evmgmt.paged_contacts(ARRAY(
									   SELECT e.escalation_id FROM evmgmt.escalation e
									   WHERE e.event_id = p_event AND e.resolve_notified_at IS NULL
										 AND e.escalation_id <> ALL (v_ids))) o
								   WHERE o.contact_id = p.contact_id)
		LOOP
			PERFORM evmgmt.notify_contact('resolved', r.contact_id, r.channel, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		FOR r IN SELECT DISTINCT ON (s.provider_id) s.provider_id, s.escalation_id
				 FROM evmgmt.escalation_step_run s
				 WHERE s.escalation_id = ANY (v_ids) AND s.channel = 'webhook' AND s.outcome = 'queued'
				 ORDER BY s.provider_id, s.run_id DESC
		LOOP
			PERFORM evmgmt.notify_endpoint('resolved', r.provider_id, p_event, r.escalation_id, v_op, v_vars, p_now);
		END LOOP;
		UPDATE evmgmt.escalation SET resolve_notified_at = p_now WHERE escalation_id = ANY (v_ids);
	END IF;

	IF v_all THEN
		PERFORM evmgmt.footprint_close(p_event, v_state, p_why, p_now);
	END IF;
	RETURN v_stopped;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz) IS 'Stops the escalations of a pool condition (all pools for NULL) at once: cancels unsent notifications, queues resolve (or cancel) notices to everyone paged; when the event has no live pool left, sends the footprint''s resolution messages and ends the status cadence; returns how many were running';

CREATE OR REPLACE FUNCTION evmgmt.footprint_close(p_event_id bigint, p_state text, p_why text, p_now timestamptz) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_op text;
	s evmgmt.status_schedule;
	v_sev evmgmt.severity;
	v_auds text[];
	v_note text := p_why;
BEGIN
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event_id;
	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event_id FOR UPDATE;
	-- the message carries the resolution notes given, not the word "resolved"
	IF p_state = 'resolved' THEN
		v_note := COALESCE((SELECT pg_catalog.string_agg(DISTINCT pc.resolution_note, '; ')
						   FROM evmgmt.pool_condition pc
						   WHERE pc.event_id = p_event_id AND pc.resolution_note IS NOT NULL AND pc.resolution_note <> ''), p_why);
	END IF;
	IF FOUND AND s.ended_at IS NOT NULL THEN
		RETURN;
	END IF;
	v_sev := COALESCE(s.severity, (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event_id));
	IF v_sev IS NULL THEN
		RETURN;
	END IF;
	IF s.event_id IS NULL THEN
		INSERT INTO evmgmt.status_schedule (event_id, severity, started_at, ended_at, end_reason)
		VALUES (p_event_id, v_sev, p_now, p_now, p_why);
	ELSE
		UPDATE evmgmt.status_schedule SET ended_at = p_now, end_reason = p_why, next_status_at = NULL
		WHERE event_id = p_event_id;
	END IF;
	-- resolved: the tier's on_resolve audiences; cancelled: whoever was told
	-- at open
	v_auds := CASE WHEN p_state = 'resolved' THEN evmgmt.footprint_audiences(v_op, v_sev, 'resolve')
				   ELSE COALESCE(s.told_open, '{}') END;
	IF pg_catalog.cardinality(v_auds) > 0 THEN
		UPDATE evmgmt.status_schedule
		SET gaps = evmgmt.notify_audiences(p_event_id, v_auds, 'resolved',
										   evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object('outcome', p_state, 'why', v_note),
										   p_now)
		WHERE event_id = p_event_id;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.footprint_close(bigint, text, text, timestamptz) IS 'Ends the status cadence of an event and sends the resolution message to the tier''s on_resolve audiences (a cancellation to those told at open)';

-- ---------------------------------------------------------------------------
-- Merged: the audit triggers of sending_origin (delivery) fire with
-- session_replication_role = replica too, like every other audit trigger
-- (security section above)
-- ---------------------------------------------------------------------------
ALTER TABLE evmgmt.sending_origin ENABLE ALWAYS TRIGGER audit, ENABLE ALWAYS TRIGGER audit_truncate;

-- ---------------------------------------------------------------------------
-- Merged: privileges of the sending hold (delivery) under the worker's role
-- ---------------------------------------------------------------------------

-- A restored copy holds its sending (06_installation.sql,
-- 69_sending_status.sql): the worker asks why before it dispatches; admins
-- may ask too (readers see it through sending_status).
REVOKE ALL ON FUNCTION evmgmt.sending_hold_reason() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.sending_hold_reason() TO evmgmt_worker, evmgmt_admin;
-- the dispatcher claims and reclaims only this installation's notifications
GRANT SELECT (install_id) ON evmgmt.installation TO evmgmt_worker;
-- ---------------------------------------------------------------------------
-- Detection: a responder corrects the suggested type (reclassify_type), and
-- detection keeps reusing the retyped event for series of the old type
-- ---------------------------------------------------------------------------

CREATE FUNCTION evmgmt.reclassify_type(event_id bigint, event_type evmgmt.event_type, subtype text, reason text)
RETURNS evmgmt.event_type
AS 'MODULE_PATHNAME', 'evmgmt_reclassify_type'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reclassify_type(bigint, evmgmt.event_type, text, text) IS 'Changes the type (and subtype, NULL for none) of an open event with a reason, such as the type detection suggested: an event-level reclassified row in the timeline with from_type/to_type, audited; detection keeps reusing the event for series of the old type';
REVOKE ALL ON FUNCTION evmgmt.reclassify_type(bigint, evmgmt.event_type, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.reclassify_type(bigint, evmgmt.event_type, text, text) TO evmgmt_responder, evmgmt_admin;

CREATE OR REPLACE FUNCTION evmgmt.detect_point(p_site text, p_queue text, p_pool evmgmt.pool, p_operation text, pol evmgmt.effective_detection_policy, sustains integer[], thresholds double precision[], pt evmgmt.detection_row, buf evmgmt.detection_row[], backfill boolean)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET jit TO 'off'
AS $function$
DECLARE
	v_rule constant text := 'sustained_service_level';
	v_end timestamptz := pt.interval_start + pt.interval_minutes * interval '1 minute';
	v_tier evmgmt.severity;
	v_k integer;
	v_run_start timestamptz;
	v_healthy boolean;
	d evmgmt.detection_state;
	v_found boolean;
	f record;
	v_esc_base double precision;
	v_tra_base double precision;
	inf record;
	v_figures jsonb;
	v_intervals jsonb;
	v_evidence jsonb;
	v_event bigint;
	v_inhibitor bigint;
	v_decision text;
	v_status text;
	v_transitions timestamptz[];
	v_closed timestamptz;
	v_state evmgmt.event_state;
	v_sev evmgmt.severity;
	v_title text;
	v_reason text;
BEGIN
	v_tier := evmgmt.classify_sustained_runs(pt.runs[1], pt.runs[2], pt.runs[3], sustains[1], sustains[2], sustains[3]);
	v_healthy := pt.service_level IS NOT NULL
				 AND COALESCE(pt.runs[1], 0) = 0 AND COALESCE(pt.runs[2], 0) = 0 AND COALESCE(pt.runs[3], 0) = 0;

	SELECT * INTO d FROM evmgmt.detection_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool FOR UPDATE;
	v_found := FOUND;
	-- an event a responder resolved, closed or cancelled is no longer followed
	IF v_found AND d.status <> 'recovered' THEN
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = d.event_id AND pc.pool = p_pool;
		IF v_state IS NULL OR v_state IN ('resolved', 'cancelled')
		   OR EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = d.event_id
					  AND (e.closed_at IS NOT NULL OR e.cancelled_at IS NOT NULL)) THEN
			d.status := 'recovered';
		END IF;
	END IF;

	-- a point evaluated before (a re-delivery): only a breach worse than the
	-- one recorded acts again; nothing else is replayed
	IF v_found AND v_end <= d.evaluated_at
	   AND (v_tier IS NULL OR (d.status <> 'recovered' AND d.severity <= v_tier)) THEN
		RETURN;
	END IF;

	IF v_tier IS NULL THEN
		IF NOT v_found OR backfill THEN
			RETURN;
		END IF;
		IF d.status = 'recovered' THEN
			UPDATE evmgmt.detection_state s SET status = 'recovered', evaluated_at = v_end, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool AND s.status <> 'recovered';
			RETURN;
		END IF;
		v_status := d.status;
		v_transitions := ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x WHERE x > v_end - pol.flap_window ORDER BY x);
		IF NOT v_healthy THEN
			-- below a threshold again, not (yet) for long enough
			UPDATE evmgmt.detection_state s SET evaluated_at = v_end, healthy_intervals = 0, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
			RETURN;
		END IF;
		IF d.status = 'breaching' THEN
			v_transitions := v_transitions || v_end;
			v_status := CASE WHEN pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN 'flapping' ELSE 'recovering' END;
			d.healthy_intervals := 1;
		ELSIF d.status = 'flapping' THEN
			d.healthy_intervals := d.healthy_intervals + 1;
			-- held until healthy for a whole flap window
			IF d.healthy_intervals * pt.interval_minutes * interval '1 minute' >= pol.flap_window THEN
				v_status := 'recovering';
			END IF;
		ELSE
			d.healthy_intervals := d.healthy_intervals + 1;
		END IF;
		v_evidence := pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object(
						  'service_level', pt.service_level, 'healthy_intervals', d.healthy_intervals));
		IF v_status <> d.status THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', v_status, d.event_id, d.severity, v_evidence);
			PERFORM evmgmt.detection_note(d.event_id, p_pool, 'recovery',
				CASE v_status WHEN 'flapping' THEN pg_catalog.format('%s flapping: held at %s', p_pool, d.severity)
							  ELSE pg_catalog.format('%s recovering: service level %s%%', p_pool,
													 pg_catalog.round((pt.service_level * 100)::numeric)) END,
				pg_catalog.jsonb_build_object('status', v_status, 'data_time', pt.interval_start));
		END IF;
		-- opt-in auto-resolve (routine tiers, after a response was logged)
		IF v_status = 'recovering' AND pol.auto_resolve_after IS NOT NULL
		   AND d.healthy_intervals >= pol.auto_resolve_after AND v_sev = ANY (pol.auto_resolve_severities)
		   AND v_state = 'responding' THEN
			PERFORM evmgmt.resolve_pool(d.event_id, p_pool,
				pg_catalog.format('rule:recovery: healthy for %s intervals', d.healthy_intervals));
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', 'auto_resolved', d.event_id, d.severity, v_evidence);
			v_status := 'recovered';
		END IF;
		UPDATE evmgmt.detection_state s
		SET status = v_status, evaluated_at = v_end, healthy_intervals = d.healthy_intervals,
			transitions = v_transitions, updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- a sustained breach at this interval: what it looks like
	------------------------------------------------------------------
	v_k := CASE v_tier WHEN 'sev1' THEN 1 WHEN 'sev2' THEN 2 ELSE 3 END;
	v_run_start := v_end - pt.runs[v_k] * interval '1 minute';
	SELECT pg_catalog.sum(x.offered)::float8 AS offered, pg_catalog.sum(x.handled)::float8 AS handled,
		   pg_catalog.avg(x.staffed) FILTER (WHERE x.scheduled IS NOT NULL) AS staffed,
		   pg_catalog.avg(x.scheduled) FILTER (WHERE x.staffed IS NOT NULL) AS scheduled,
		   pg_catalog.sum(x.offered) FILTER (WHERE x.forecast_offered IS NOT NULL)::float8 AS offered_fc,
		   pg_catalog.sum(x.forecast_offered)::float8 AS forecast_offered,
		   pg_catalog.sum(x.aht * x.handled) FILTER (WHERE x.forecast_aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS aht,
		   pg_catalog.sum(x.forecast_aht * x.handled) FILTER (WHERE x.aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS forecast_aht,
		   pg_catalog.sum(x.escalated)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.escalated IS NOT NULL), 0) AS escalated_share,
		   pg_catalog.sum(x.transferred)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.transferred IS NOT NULL), 0) AS transferred_share,
		   pg_catalog.sum(x.answered)::float8 / NULLIF(pg_catalog.sum(x.offered), 0) AS service_level,
		   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
			   'interval_start', x.interval_start, 'minutes', x.interval_minutes, 'service_level', x.service_level,
			   'offered', x.offered, 'handled', x.handled, 'forecast_offered', x.forecast_offered,
			   'staffed', x.staffed, 'scheduled', x.scheduled, 'aht', x.aht, 'forecast_aht', x.forecast_aht,
			   'escalated', x.escalated, 'transferred', x.transferred) ORDER BY x.interval_start) AS intervals
	INTO f
	FROM pg_catalog.unnest(buf) x
	WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	-- process shares against the same series and interval of day, 7 days back
	IF f.escalated_share IS NOT NULL OR f.transferred_share IS NOT NULL THEN
		SELECT pg_catalog.sum(h.escalated)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.escalated IS NOT NULL), 0),
			   pg_catalog.sum(h.transferred)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.transferred IS NOT NULL), 0)
		INTO v_esc_base, v_tra_base
		FROM pg_catalog.unnest(buf) x
		CROSS JOIN pg_catalog.generate_series(1, 7) k
		JOIN evmgmt.interval_stat h
		  ON h.interval_start = x.interval_start - k * interval '1 day'
		 AND h.site_id = p_site AND h.queue_id = p_queue AND h.pool = p_pool
		WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	END IF;
	SELECT * INTO inf FROM evmgmt.infer_event_type(f.offered, f.handled, f.staffed, f.scheduled,
		f.forecast_offered, f.offered_fc, f.aht, f.forecast_aht,
		f.escalated_share, v_esc_base, f.transferred_share, v_tra_base, pol) i;
	v_figures := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'tier', v_tier, 'service_level', f.service_level, 'latest_service_level', pt.service_level,
		'run_started_at', v_run_start, 'run_minutes', pt.runs[v_k],
		'minutes_below_sev1', pt.runs[1], 'minutes_below_sev2', pt.runs[2], 'minutes_below_sev3', pt.runs[3],
		'thresholds', pg_catalog.to_jsonb(thresholds), 'sustain_minutes', pg_catalog.to_jsonb(sustains),
		'offered', f.offered, 'handled', f.handled, 'forecast_offered', f.forecast_offered,
		'staffed', f.staffed, 'scheduled', f.scheduled, 'aht', f.aht, 'forecast_aht', f.forecast_aht,
		'escalated_share', f.escalated_share, 'escalated_share_7d_mean', v_esc_base,
		'transferred_share', f.transferred_share, 'transferred_share_7d_mean', v_tra_base,
		'inferred_type', inf.event_type, 'inferred_subtype', inf.subtype, 'inference', inf.matched,
		'weak_inference', inf.weak));
	v_evidence := pg_catalog.jsonb_build_object('figures', v_figures, 'intervals', f.intervals);

	IF backfill THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'backfill', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'backfill' AND l.severity = v_tier);
		RETURN;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.maintenance_window w
			   WHERE w.site_id = p_site AND (w.queue_id IS NULL OR w.queue_id = p_queue)
				 AND (w.pool IS NULL OR w.pool = p_pool)
				 AND w.starts_at <= pt.interval_start AND w.ends_at > pt.interval_start) THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'maintenance', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'maintenance' AND l.severity = v_tier);
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- which event the condition belongs to
	------------------------------------------------------------------
	IF v_found AND d.status <> 'recovered' THEN
		v_event := d.event_id;
	END IF;
	-- an open sev1 outage at the site/queue absorbs the lower tiers it explains
	SELECT e.event_id INTO v_inhibitor
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.site_id = p_site AND (e.queue_id IS NULL OR e.queue_id = p_queue) AND e.event_type = 'system'
	  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
	  AND pc.severity = 'sev1' AND pc.state NOT IN ('resolved', 'cancelled')
	  AND e.event_id IS DISTINCT FROM v_event
	ORDER BY e.event_id LIMIT 1;
	IF v_inhibitor IS NOT NULL THEN
		IF v_tier = 'sev1' AND inf.event_type = 'system' THEN
			v_event := v_inhibitor;
		ELSIF v_event IS NULL THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
			SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'inhibited', v_inhibitor, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
			WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
							  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
								AND l.data_time = pt.interval_start AND l.decision = 'inhibited' AND l.severity = v_tier);
			RETURN;
		END IF;
	END IF;
	v_reason := pg_catalog.format('%s %s: service level below %s%% for %s min (tier %s)', v_rule, p_pool,
								  pg_catalog.round((thresholds[v_k] * 100)::numeric), pt.runs[v_k], v_tier);
	-- the same series breaching again within the recurrence window: its event
	IF v_event IS NULL AND v_found AND d.event_id IS NOT NULL THEN
		SELECT e.closed_at INTO v_closed FROM evmgmt.event e
		WHERE e.event_id = d.event_id AND e.cancelled_at IS NULL;
		IF v_closed IS NULL AND FOUND THEN
			v_event := d.event_id;
		ELSIF v_closed >= pg_catalog.now() - evmgmt.setting_interval('evmgmt.recurrence_window', interval '7 days') THEN
			PERFORM evmgmt.reopen_event(d.event_id, 'rule:' || v_reason, ARRAY[p_pool]);
			v_event := d.event_id;
			v_decision := 'reopened';
		END IF;
	END IF;
	-- one event per condition: the open event of the site, queue and type
	-- (also one a responder retyped from that type: reclassify_type)
	IF v_event IS NULL THEN
		SELECT e.event_id INTO v_event FROM evmgmt.event e
		WHERE e.site_id = p_site AND e.queue_id = p_queue
		  AND (e.event_type = inf.event_type
			   OR EXISTS (SELECT FROM evmgmt.event_timeline t
						  WHERE t.event_id = e.event_id AND t.action = 'reclassified' AND t.pool IS NULL
							AND t.details ->> 'from_type' = inf.event_type::text))
		  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
		ORDER BY e.event_id DESC LIMIT 1;
	END IF;
	IF v_event IS NULL THEN
		v_title := pg_catalog.format('%s at %s %s: service level %s%% for %s min',
			COALESCE((SELECT st.name FROM evmgmt.event_subtype st WHERE st.subtype = inf.subtype), pg_catalog.initcap(inf.event_type::text)),
			p_site, p_queue, pg_catalog.round((COALESCE(f.service_level, 0) * 100)::numeric), pt.runs[v_k]);
		v_event := evmgmt.open_event(inf.event_type, p_site, ARRAY[p_pool], 'rule', v_title,
									 LEAST(v_run_start, pg_catalog.now()), p_queue, inf.subtype,
									 'Opened by rule ' || v_rule || ': ' || inf.matched
									 || CASE WHEN inf.weak THEN ' (weak inference: check the type)' ELSE '' END);
		PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
		v_decision := 'opened';
	ELSE
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = v_event AND pc.pool = p_pool;
		IF NOT FOUND THEN
			PERFORM evmgmt.add_pool(v_event, p_pool, 'rule:' || v_reason);
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := 'joined';
		ELSIF v_state = 'detected' THEN
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := COALESCE(v_decision, 'joined');
		ELSIF v_state = 'cancelled' THEN
			v_decision := NULL;		-- a responder called it a false positive
		ELSE
			IF v_state = 'resolved' THEN
				PERFORM evmgmt.reopen_pool(v_event, p_pool, 'rule:' || v_reason);
				v_decision := 'reopened';
			END IF;
			IF v_sev > v_tier THEN
				PERFORM evmgmt.reclassify_pool(v_event, p_pool, v_tier, 'rule:' || v_reason);
				v_decision := COALESCE(v_decision, 'raised');
			END IF;
		END IF;
	END IF;

	-- the series' own state; a breach after recovering is a transition
	v_transitions := CASE WHEN v_found THEN ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x
												  WHERE x > v_end - pol.flap_window ORDER BY x)
					 ELSE '{}' END;
	v_status := 'breaching';
	IF v_found AND d.status IN ('recovering', 'recovered') AND d.event_id = v_event THEN
		v_transitions := v_transitions || v_end;
		v_decision := COALESCE(v_decision, 'continued');
	END IF;
	IF v_found AND d.status = 'flapping' AND d.event_id = v_event THEN
		v_status := 'flapping';
	ELSIF pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN
		IF d.status IS DISTINCT FROM 'flapping' THEN
			v_decision := COALESCE(v_decision, 'flapping');
		END IF;
		v_status := 'flapping';
	END IF;
	INSERT INTO evmgmt.detection_state AS s (site_id, queue_id, pool, status, severity, event_id, breach_started_at,
											 evaluated_at, healthy_intervals, transitions)
	VALUES (p_site, p_queue, p_pool, v_status, v_tier, v_event, v_run_start, v_end, 0, v_transitions)
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE
	SET status = EXCLUDED.status,
		severity = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN LEAST(s.severity, EXCLUDED.severity)
						ELSE EXCLUDED.severity END,
		event_id = EXCLUDED.event_id,
		breach_started_at = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN s.breach_started_at
								 ELSE EXCLUDED.breach_started_at END,
		evaluated_at = EXCLUDED.evaluated_at, healthy_intervals = 0, transitions = EXCLUDED.transitions,
		updated_at = pg_catalog.clock_timestamp();

	IF v_decision IS NOT NULL THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
		VALUES (p_site, p_queue, p_pool, pt.interval_start, v_rule, v_decision, v_event, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence);
		PERFORM evmgmt.detection_note(v_event, p_pool, v_rule, v_decision || ': ' || v_reason,
			pg_catalog.jsonb_build_object('decision', v_decision, 'data_time', pt.interval_start, 'tier', v_tier,
										  'suggested_type', inf.event_type, 'suggested_subtype', inf.subtype,
										  'weak_inference', inf.weak));
	END IF;
END
$function$
;
COMMENT ON FUNCTION evmgmt.detect_point(text,text,evmgmt.pool,text,evmgmt.effective_detection_policy,integer[],double precision[],evmgmt.detection_row,evmgmt.detection_row[],boolean) IS 'Detection for one series at one interval in data time: opens, joins, raises or reopens through the lifecycle functions, marks recovering or flapping, or records a suppressed breach (maintenance, inhibition, backfill) with its evidence';

-- Merged: the claim's verdict as the worker's role (delivery with least privilege)
-- The dispatcher's claim asks, for each page of an escalation step, whether
-- it may go (src/dispatch.c): "go" when the escalation is still running and
-- not being acknowledged right now (a FOR SHARE lock, held until the claim
-- commits, so an acknowledgment that commits later finds the page in
-- flight), "wait" while an acknowledgment holds the row, "ended" when it
-- ended.  SECURITY DEFINER: the worker's role may read escalations but may
-- not lock them (row locks need UPDATE).
CREATE FUNCTION evmgmt.claim_verdict(escalation_id bigint) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM FROM evmgmt.escalation e
	WHERE e.escalation_id = claim_verdict.escalation_id AND e.state IN ('active', 'exhausted')
	FOR SHARE OF e SKIP LOCKED;
	IF FOUND THEN
		RETURN 'go';
	END IF;
	PERFORM FROM evmgmt.escalation e
	WHERE e.escalation_id = claim_verdict.escalation_id AND e.state IN ('active', 'exhausted');
	RETURN CASE WHEN FOUND THEN 'wait' ELSE 'ended' END;
END
$$;
COMMENT ON FUNCTION evmgmt.claim_verdict(bigint) IS 'For the dispatcher''s claim: go (the escalation runs; it is share-locked until the claim commits), wait (an acknowledgment holds it) or ended';

-- the claim's per-page verdict (59_outbox.sql), for the dispatcher only
REVOKE ALL ON FUNCTION evmgmt.claim_verdict(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.claim_verdict(bigint) TO evmgmt_worker;

-- Row-level security by site (issue 14): bindings (10_organisation.sql), the
-- scope and its policies and view filters (86_site_scope.sql), the checks of
-- the acknowledgment and the status update, their privileges (90_privileges.sql)
-- Which roles see and change which sites (row-level security by site,
-- 86_site_scope.sql).  A role with no binding in an operation sees all of that
-- operation; a role bound to some of its sites sees only those.  Bindings
-- apply to the roles a login is a member of.  Admins set them.
CREATE TABLE evmgmt.site_binding (
	role_name		name NOT NULL,
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site ON UPDATE CASCADE ON DELETE CASCADE,
	bound_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	bound_by		name NOT NULL DEFAULT SESSION_USER,
	PRIMARY KEY (role_name, site_id)
);
CREATE INDEX ON evmgmt.site_binding (site_id);
COMMENT ON TABLE evmgmt.site_binding IS 'Row-level security by site: a role bound to some sites of an operation sees and changes only the events, intervals, escalations and reports of those sites (other operations are unaffected)';

-- A binding names a role that exists (a typo would restrict nobody).
CREATE FUNCTION evmgmt.site_binding_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.to_regrole(pg_catalog.quote_ident(NEW.role_name)) IS NULL THEN
		RAISE EXCEPTION 'role "%" does not exist', NEW.role_name
			USING ERRCODE = 'undefined_object',
				  HINT = 'Bind an existing role (CREATE ROLE first); a binding of an unknown role would restrict nobody.';
	END IF;
	IF NEW.role_name = 'evmgmt_worker' OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = NEW.role_name) THEN
		RAISE EXCEPTION 'role "%" cannot be bound to sites', NEW.role_name
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Superusers and the worker role always see every site.';
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.site_binding_check() IS 'Trigger: a site binding names an existing role that is neither a superuser nor the worker';
CREATE TRIGGER site_binding_check BEFORE INSERT OR UPDATE ON evmgmt.site_binding
	FOR EACH ROW EXECUTE FUNCTION evmgmt.site_binding_check();

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.site_binding FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.site_binding FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();
ALTER TABLE evmgmt.site_binding ENABLE ALWAYS TRIGGER audit, ENABLE ALWAYS TRIGGER audit_truncate;
SELECT pg_catalog.pg_extension_config_dump('evmgmt.site_binding', '');
GRANT SELECT ON evmgmt.site_binding TO evmgmt_reader, evmgmt_admin;
GRANT INSERT, UPDATE, DELETE ON evmgmt.site_binding TO evmgmt_admin;

CREATE OR REPLACE FUNCTION evmgmt.acknowledge(escalation_id bigint, contact_id bigint DEFAULT NULL, note text DEFAULT NULL)
	RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_id bigint := $1;
	p_note text := $3;
	v_contact bigint := evmgmt.acting_contact($2);
	v_now timestamptz := pg_catalog.clock_timestamp();
	e evmgmt.escalation;
	v_missing integer := 0;
	v_by text;
BEGIN
	-- waits for a step firing or a resolve that holds the event; whoever
	-- comes second sees the first one's result
	PERFORM evmgmt.lock_event((SELECT x.event_id FROM evmgmt.escalation x WHERE x.escalation_id = p_id), true);
	SELECT * INTO e FROM evmgmt.escalation x WHERE x.escalation_id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'escalation % does not exist', p_id USING ERRCODE = 'no_data_found';
	END IF;
	-- row-level security by site (86_site_scope.sql)
	PERFORM evmgmt.require_site_in_scope((SELECT ev.site_id FROM evmgmt.event ev WHERE ev.event_id = e.event_id),
										 pg_catalog.format('escalation %s', p_id));
	-- an exhausted escalation paged everyone it could and still waits for
	-- somebody to take it
	IF e.state NOT IN ('active', 'exhausted') THEN
		SELECT c.name INTO v_by FROM evmgmt.contact c WHERE c.contact_id = e.acknowledged_by;
		RAISE EXCEPTION 'escalation % is no longer active', p_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = CASE WHEN e.state = 'acknowledged'
							   THEN pg_catalog.format('It was acknowledged by %s at %s.', v_by, e.acknowledged_at)
							   ELSE pg_catalog.format('It ended (%s) at %s.', e.state, e.ended_at) END;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = v_contact) THEN
		RAISE EXCEPTION 'contact % already acknowledged escalation %', v_contact, p_id
			USING ERRCODE = 'unique_violation',
				  DETAIL = 'The plan requires every paged responder to acknowledge; the others have not yet.';
	END IF;
	INSERT INTO evmgmt.escalation_ack (escalation_id, contact_id, acked_at, note) VALUES (p_id, v_contact, v_now, p_note);

	IF (e.plan_snapshot ->> 'require_all_ack')::boolean THEN
		SELECT pg_catalog.count(DISTINCT r.contact_id) INTO v_missing
		FROM evmgmt.escalation_step_run r
		WHERE r.escalation_id = p_id AND r.contact_id IS NOT NULL AND r.outcome IN ('queued', 'bundled')
		  AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = r.contact_id);
	END IF;

	INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, reason, details)
	VALUES (e.event_id, e.pool, v_now, 'acknowledged', p_note,
			pg_catalog.jsonb_build_object('escalation_id', p_id, 'contact_id', v_contact,
										  'contact', (SELECT c.name FROM evmgmt.contact c WHERE c.contact_id = v_contact),
										  'stopped', v_missing = 0, 'awaiting', v_missing));

	IF v_missing > 0 THEN
		-- this responder is done; the others keep being paged
		PERFORM evmgmt.cancel_unsent(p_id, v_contact);
		RETURN e.state;
	END IF;
	UPDATE evmgmt.escalation
	SET state = 'acknowledged', acknowledged_at = v_now, acknowledged_by = v_contact, ack_note = p_note,
		ended_at = v_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'acknowledged'
	WHERE escalation_id = p_id;
	PERFORM evmgmt.cancel_unsent(p_id);
	-- an acknowledgment is a response
	UPDATE evmgmt.target_timer t
	SET met_at = v_now, next_at = NULL
	WHERE t.event_id = e.event_id AND t.pool = e.pool AND t.target = 'response'
	  AND t.met_at IS NULL AND t.breached_at IS NULL;
	RETURN 'acknowledged';
END
$$;

CREATE OR REPLACE FUNCTION evmgmt.post_status_update(event_id bigint, status text,
										  now timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_text text := pg_catalog.btrim($2);
	p_now timestamptz := $3;
	v_op text;
	v_entry bigint;
	s evmgmt.status_schedule;
	x record;
BEGIN
	IF p_text IS NULL OR p_text = '' THEN
		RAISE EXCEPTION 'a status update needs a text' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT evmgmt.lock_event(p_event, true) THEN
		RAISE EXCEPTION 'event % does not exist', p_event USING ERRCODE = 'no_data_found';
	END IF;
	-- row-level security by site (86_site_scope.sql)
	PERFORM evmgmt.require_site_in_scope((SELECT e.site_id FROM evmgmt.event e WHERE e.event_id = p_event),
										 pg_catalog.format('event %s', p_event));
	SELECT e.operation_id INTO v_op FROM evmgmt.event e WHERE e.event_id = p_event;
	IF NOT EXISTS (SELECT FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event AND pc.state NOT IN ('resolved', 'cancelled'))
	   OR EXISTS (SELECT FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NOT NULL) THEN
		RAISE EXCEPTION 'event % has no live pool condition', p_event
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'Status updates are for events that are still unresolved.';
	END IF;
	INSERT INTO evmgmt.event_timeline (event_id, at, action, reason)
	VALUES (p_event, p_now, 'status_update', p_text)
	RETURNING entry_id INTO v_entry;

	SELECT * INTO s FROM evmgmt.status_schedule x WHERE x.event_id = p_event AND x.ended_at IS NULL FOR UPDATE;
	IF FOUND THEN
		UPDATE evmgmt.status_schedule
		SET last_owner_update_at = p_now, last_status_at = p_now, next_status_at = p_now + s.cadence,
			gaps = evmgmt.notify_audiences(p_event, evmgmt.footprint_audiences(v_op, s.severity, 'status'), 'status_update',
										   evmgmt.event_facts(p_event) || pg_catalog.jsonb_build_object('status', p_text, 'automatic', false),
										   p_now)
		WHERE event_id = p_event;
	END IF;

	FOR x IN SELECT e.escalation_id FROM evmgmt.escalation e
			 WHERE e.event_id = p_event AND e.start_reason = 'status_overdue' AND e.state IN ('active', 'exhausted')
			 FOR UPDATE
	LOOP
		UPDATE evmgmt.escalation
		SET state = 'satisfied', ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'status update posted'
		WHERE escalation_id = x.escalation_id;
		PERFORM evmgmt.cancel_unsent(x.escalation_id);
	END LOOP;
	RETURN v_entry;
END
$$;

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
	FOREACH t IN ARRAY ARRAY['event', 'detection_state', 'detection_log', 'feed_health', 'interval_series'] LOOP
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
							 'work_failure', 'notification'] LOOP
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
							 'series_severity']) v;

-- row-level security by site (86_site_scope.sql): every role whose queries
-- meet a policy asks site_scope(); the exemption is detection's alone; the
-- view helper ran at install; intervals are read through interval_stat,
-- whose policies the default partition read directly would bypass
REVOKE ALL ON FUNCTION evmgmt.site_scope(), evmgmt.site_scope_exempt(boolean),
	evmgmt.restrict_view_to_site_scope(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION evmgmt.event_in_scope(bigint), evmgmt.escalation_in_scope(bigint),
	evmgmt.notification_in_scope(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.site_scope(), evmgmt.event_in_scope(bigint), evmgmt.escalation_in_scope(bigint),
	evmgmt.notification_in_scope(bigint) TO evmgmt_reader, evmgmt_worker, evmgmt_ingest;
REVOKE SELECT ON evmgmt.interval_stat_default FROM evmgmt_reader, evmgmt_admin;

-- Merged: a digest's retry carries nothing of an acknowledged escalation (issue 13)
-- The same for a digest (issue 13, finality): a digest claimed before an
-- acknowledgment is in flight, but when it fails, its retry must not carry
-- the acknowledged item.  claim_verdict for each item's escalation: "go" when
-- every such escalation still runs (share-locked until the claim commits),
-- "wait" while an acknowledgment holds one, "trim" when some ended (the claim
-- then drops them with digest_without_ended, and the digest goes out on the
-- next claim), "ended" when nothing is left to send.  Resolve notices and
-- items without an escalation always stay.
CREATE FUNCTION evmgmt.claim_digest_verdict(items jsonb) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	i jsonb;
	n_left integer := 0;
	n_ended integer := 0;
BEGIN
	FOR i IN SELECT x FROM pg_catalog.jsonb_array_elements(COALESCE(items, '[]')) x LOOP
		IF i ->> 'escalation_id' IS NULL OR i ->> 'kind' = 'resolved' THEN
			n_left := n_left + 1;
			CONTINUE;
		END IF;
		CASE evmgmt.claim_verdict((i ->> 'escalation_id')::bigint)
			WHEN 'wait' THEN RETURN 'wait';
			WHEN 'go' THEN n_left := n_left + 1;
			ELSE n_ended := n_ended + 1;
		END CASE;
	END LOOP;
	RETURN CASE WHEN n_ended = 0 THEN 'go' WHEN n_left = 0 THEN 'ended' ELSE 'trim' END;
END
$$;
COMMENT ON FUNCTION evmgmt.claim_digest_verdict(jsonb) IS 'For the dispatcher''s claim of a digest: go (every item''s escalation runs; share-locked until the claim commits), wait (an acknowledgment holds one), trim (some ended: drop them first) or ended (nothing left)';

-- A digest's payload, subject and body without the items whose escalation
-- ended (what claim_digest_verdict called "trim").
CREATE FUNCTION evmgmt.digest_without_ended(p_channel evmgmt.channel, p_payload jsonb,
											OUT payload jsonb, OUT subject text, OUT body text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_items jsonb;
	m record;
BEGIN
	SELECT COALESCE(pg_catalog.jsonb_agg(i ORDER BY o), '[]') INTO v_items
	FROM pg_catalog.jsonb_array_elements(p_payload -> 'items') WITH ORDINALITY AS x(i, o)
	WHERE i ->> 'escalation_id' IS NULL OR i ->> 'kind' = 'resolved'
	   OR EXISTS (SELECT FROM evmgmt.escalation e
				  WHERE e.escalation_id = (i ->> 'escalation_id')::bigint AND e.state IN ('active', 'exhausted'));
	SELECT * INTO m FROM evmgmt.render_digest(p_channel, v_items);
	payload := pg_catalog.jsonb_set(p_payload, '{items}', v_items);
	subject := m.subject;
	body := m.body;
END
$$;
COMMENT ON FUNCTION evmgmt.digest_without_ended(evmgmt.channel, jsonb) IS 'For the dispatcher''s claim: a digest''s payload, subject and body without the items whose escalation ended';

REVOKE ALL ON FUNCTION evmgmt.claim_digest_verdict(jsonb), evmgmt.digest_without_ended(evmgmt.channel, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.claim_digest_verdict(jsonb), evmgmt.digest_without_ended(evmgmt.channel, jsonb) TO evmgmt_worker;


-- ===========================================================================
-- HTTP listener and action tokens (issue 11): acknowledge from where the
-- page lands.  escalation_ack gets the channel and source of each
-- acknowledgment; action tokens (65_action_tokens.sql) and the listener's SQL
-- side (66_listener.sql) are new; acknowledge goes through acknowledge_via;
-- render_message adds the ack hint to pages; notify_contact and
-- notify_endpoint add the {{ack_url}}/{{ack_code}} fields; escalation_history
-- shows who acknowledged, via which channel, when.
-- ===========================================================================
ALTER TABLE evmgmt.escalation_ack
	ADD COLUMN channel text NOT NULL DEFAULT 'sql' CONSTRAINT escalation_ack_channel_known CHECK (channel IN ('sms', 'voice', 'push', 'email', 'webhook', 'sql')),
	ADD COLUMN source text;
COMMENT ON COLUMN evmgmt.escalation_ack.channel IS 'How the acknowledgment came: sms, voice, push, email or webhook through the HTTP listener, sql from a session';
COMMENT ON COLUMN evmgmt.escalation_ack.source IS 'Where it came from: the masked phone number or the client address (NULL from a SQL session)';

-- Action tokens: what a page carries so that its recipient can act on it
-- from the channel that reached them (sql/install/66_listener.sql serves
-- them; docs/listener.md describes the whole path).
--
-- A token is base64url (no padding) of 47 bytes:
--   version (1) = 1, key_id (int4), escalation_id (int8), contact_id (int8),
--   channel (1: position in evmgmt.channel), actions (1: bit 1 acknowledge,
--   2 pass, 4 resolve), expires (int8, Unix seconds),
--   mac (16) = the first 16 bytes of HMAC-SHA256(key, the 31 bytes before
--   || the database name)
-- The key is per database and random (action_key, readable by evmgmt_admin
-- and the workers only); naming the database in the MAC keeps a token of a
-- restored copy from acting on another database that got the same key.
-- Verification compares MACs in constant time, accepts the current key and
-- keys retired less than evmgmt.action_token_grace ago, and refuses tokens
-- past their expiry; the listener also refuses a token whose escalation
-- ended longer than that grace ago.
--
-- {{ack_code}} is a 6-digit code derived from the same key, for SMS replies
-- ("ACK 123456") and voice; it only tells apart several escalations that
-- paged the same phone, which the provider's signature already vouches for.

CREATE FUNCTION evmgmt.hmac_sha256(key bytea, msg bytea) RETURNS bytea
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_hmac_sha256';
COMMENT ON FUNCTION evmgmt.hmac_sha256(bytea, bytea) IS 'HMAC-SHA256 of msg keyed by key';

CREATE FUNCTION evmgmt.constant_time_equal(a bytea, b bytea) RETURNS boolean
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_constant_time_equal';
COMMENT ON FUNCTION evmgmt.constant_time_equal(bytea, bytea) IS 'true when a and b are equal, in a time that does not depend on where they differ';

CREATE FUNCTION evmgmt.random_bytes(n integer) RETURNS bytea
	LANGUAGE c VOLATILE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_random_bytes';
COMMENT ON FUNCTION evmgmt.random_bytes(integer) IS 'n (1 to 1024) cryptographically strong random bytes';

CREATE FUNCTION evmgmt.twilio_signature(secret text, url text, params text[]) RETURNS text
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_twilio_signature';
COMMENT ON FUNCTION evmgmt.twilio_signature(text, text, text[]) IS 'X-Twilio-Signature of a request: base64 HMAC-SHA1 keyed by the auth token over the full URL and the form parameters (name, value, name, value, ...) sorted by name';

CREATE TABLE evmgmt.action_key (
	key_id			integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	secret			bytea NOT NULL DEFAULT evmgmt.random_bytes(32) CONSTRAINT action_key_secret_long CHECK (pg_catalog.length(secret) >= 32),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	retired_at		timestamptz
);
CREATE UNIQUE INDEX action_key_one_current ON evmgmt.action_key ((true)) WHERE retired_at IS NULL;
COMMENT ON TABLE evmgmt.action_key IS 'Keys that sign action tokens: one current (retired_at NULL), retired ones accepted for evmgmt.action_token_grace; readable by evmgmt_admin only';

-- The current key, made on first use.
CREATE FUNCTION evmgmt.current_action_key(OUT key_id integer, OUT secret bytea)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	SELECT k.key_id, k.secret INTO key_id, secret FROM evmgmt.action_key k WHERE k.retired_at IS NULL;
	IF NOT FOUND THEN
		INSERT INTO evmgmt.action_key DEFAULT VALUES ON CONFLICT DO NOTHING;
		SELECT k.key_id, k.secret INTO key_id, secret FROM evmgmt.action_key k WHERE k.retired_at IS NULL;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.current_action_key() IS 'The key new action tokens are signed with (created on first use)';

-- Rotate: a new current key; the previous one stays accepted for the grace.
CREATE FUNCTION evmgmt.rotate_action_key() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id integer;
BEGIN
	UPDATE evmgmt.action_key SET retired_at = pg_catalog.now() WHERE retired_at IS NULL;
	INSERT INTO evmgmt.action_key DEFAULT VALUES RETURNING key_id INTO v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION evmgmt.rotate_action_key() IS 'Makes a new action-token key current; tokens signed with the previous one stay valid for evmgmt.action_token_grace; returns the new key_id';

-- The grace period of tokens and retired keys.
CREATE FUNCTION evmgmt.action_token_grace() RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.setting_interval('evmgmt.action_token_grace', interval '1 day');
COMMENT ON FUNCTION evmgmt.action_token_grace() IS 'evmgmt.action_token_grace as an interval (1 day when the library is not loaded)';

-- The MAC of a token's first 31 bytes.
CREATE FUNCTION evmgmt.action_token_mac(secret bytea, payload bytea) RETURNS bytea
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.substring(evmgmt.hmac_sha256(secret, payload || pg_catalog.convert_to(pg_catalog.current_database(), 'UTF8')), 1, 16);
COMMENT ON FUNCTION evmgmt.action_token_mac(bytea, bytea) IS 'The 16-byte MAC of an action token payload, bound to this database';

-- Make a token for a contact paged by an escalation on a channel.
CREATE FUNCTION evmgmt.action_token(escalation_id bigint, contact_id bigint, channel evmgmt.channel,
									actions integer DEFAULT 3, expires timestamptz DEFAULT pg_catalog.now() + interval '30 days')
	RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k record;
	payload bytea;
BEGIN
	IF $4 IS NULL OR $4 < 1 OR $4 > 7 THEN
		RAISE EXCEPTION 'actions must be between 1 and 7' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'Bit 1 is acknowledge, 2 pass, 4 resolve.';
	END IF;
	SELECT * INTO k FROM evmgmt.current_action_key();
	payload := '\x01'::bytea || pg_catalog.int4send(k.key_id) || pg_catalog.int8send($1) || pg_catalog.int8send(COALESCE($2, 0))
			   || pg_catalog.set_byte('\x00'::bytea, 0, pg_catalog.array_position(pg_catalog.enum_range(NULL::evmgmt.channel), $3))
			   || pg_catalog.set_byte('\x00'::bytea, 0, $4)
			   || pg_catalog.int8send(pg_catalog.floor(pg_catalog.date_part('epoch', $5))::bigint);
	RETURN pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(payload || evmgmt.action_token_mac(k.secret, payload), 'base64'),
												 E'+/\n', '-_'), '=');
END
$$;
COMMENT ON FUNCTION evmgmt.action_token(bigint, bigint, evmgmt.channel, integer, timestamptz) IS 'A signed action token naming an escalation, a contact, the channel it is sent on and the allowed actions (bits: 1 acknowledge, 2 pass, 4 resolve), valid until expires';

-- Read and check a token.  ok false with a reason (for the audit trail only,
-- never for the client): malformed, unknown_key, bad_signature, expired.
CREATE FUNCTION evmgmt.read_action_token(token text, now timestamptz DEFAULT pg_catalog.now(),
										 OUT ok boolean, OUT reason text, OUT escalation_id bigint, OUT contact_id bigint,
										 OUT channel evmgmt.channel, OUT actions integer, OUT expires timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	raw bytea;
	b64 text;
	k record;
	v_key integer;
BEGIN
	ok := false;
	IF token IS NULL OR token !~ '^[A-Za-z0-9_-]{63}$' THEN
		reason := 'malformed';
		RETURN;
	END IF;
	b64 := pg_catalog.translate(token, '-_', '+/') || '=';
	raw := pg_catalog.decode(b64, 'base64');
	IF pg_catalog.length(raw) <> 47 OR pg_catalog.get_byte(raw, 0) <> 1 THEN
		reason := 'malformed';
		RETURN;
	END IF;
	v_key := ('x' || pg_catalog.encode(pg_catalog.substring(raw, 2, 4), 'hex'))::bit(32)::integer;
	SELECT a.secret, a.retired_at INTO k FROM evmgmt.action_key a WHERE a.key_id = v_key;
	IF NOT FOUND OR (k.retired_at IS NOT NULL AND k.retired_at < $2 - evmgmt.action_token_grace()) THEN
		reason := 'unknown_key';
		RETURN;
	END IF;
	IF NOT evmgmt.constant_time_equal(evmgmt.action_token_mac(k.secret, pg_catalog.substring(raw, 1, 31)),
									  pg_catalog.substring(raw, 32, 16)) THEN
		reason := 'bad_signature';
		RETURN;
	END IF;
	escalation_id := ('x' || pg_catalog.encode(pg_catalog.substring(raw, 6, 8), 'hex'))::bit(64)::bigint;
	contact_id := NULLIF(('x' || pg_catalog.encode(pg_catalog.substring(raw, 14, 8), 'hex'))::bit(64)::bigint, 0);
	channel := (pg_catalog.enum_range(NULL::evmgmt.channel))[pg_catalog.get_byte(raw, 21)];
	actions := pg_catalog.get_byte(raw, 22);
	expires := pg_catalog.to_timestamp(('x' || pg_catalog.encode(pg_catalog.substring(raw, 24, 8), 'hex'))::bit(64)::bigint);
	IF channel IS NULL THEN
		reason := 'malformed';
		RETURN;
	END IF;
	IF expires < $2 THEN
		reason := 'expired';
		RETURN;
	END IF;
	ok := true;
END
$$;
COMMENT ON FUNCTION evmgmt.read_action_token(text, timestamptz) IS 'Checks an action token (format, key, MAC in constant time, expiry) and returns what it names; ok false with the reason otherwise';

-- The short code of an escalation for a contact (SMS and voice).
CREATE FUNCTION evmgmt.ack_code(escalation_id bigint, contact_id bigint) RETURNS text
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.lpad((('x' || pg_catalog.encode(pg_catalog.substring(
		evmgmt.hmac_sha256((SELECT k.secret FROM evmgmt.current_action_key() k),
						   pg_catalog.convert_to('ack_code', 'UTF8') || pg_catalog.int8send($1) || pg_catalog.int8send(COALESCE($2, 0))),
		1, 4), 'hex'))::bit(32)::bigint & 2147483647) % 1000000 || '', 6, '0');
COMMENT ON FUNCTION evmgmt.ack_code(bigint, bigint) IS 'The 6-digit code a contact can reply with ("ACK 123456") to acknowledge one escalation among several that paged the same phone';

-- The template fields of a page: {{ack_url}} and {{ack_code}} (empty when no
-- evmgmt.public_base_url is set or the message belongs to no escalation).
CREATE FUNCTION evmgmt.action_fields(escalation_id bigint, contact_id bigint, channel evmgmt.channel) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	base text := pg_catalog.rtrim(COALESCE(pg_catalog.current_setting('evmgmt.public_base_url', true), ''), '/');
	v_token text;
	v_code text;
BEGIN
	IF $1 IS NULL OR base = '' THEN
		RETURN '{}';
	END IF;
	v_token := evmgmt.action_token($1, $2, $3, CASE WHEN $3 = 'webhook' THEN 5 ELSE 3 END);
	v_code := evmgmt.ack_code($1, $2);
	RETURN pg_catalog.jsonb_build_object('ack_url', base || '/ack/' || v_token, 'ack_token', v_token, 'ack_code', v_code,
		'ack_hint', CASE $3
			WHEN 'sms' THEN 'Reply 1 to ack, 2 to pass (ACK ' || v_code || ').'
			WHEN 'voice' THEN 'Press 1 to acknowledge, 2 to pass it on.'
			WHEN 'webhook' THEN ''
			ELSE 'Acknowledge: ' || base || '/ack/' || v_token END);
END
$$;
COMMENT ON FUNCTION evmgmt.action_fields(bigint, bigint, evmgmt.channel) IS 'The template fields ack_url (evmgmt.public_base_url/ack/<token>), ack_token, ack_code and ack_hint (how to acknowledge on that channel) of a message to a contact, or {} when there is no base URL or escalation';

-- The acknowledgment itself, by a contact already authenticated (by
-- acting_contact for SQL sessions, by an action token or a provider
-- signature for the HTTP listener), with the channel and source it came by.
-- It stops the escalation at once, in this transaction, and cancels what it
-- queued and nobody sent yet.  With require_all_ack it stops only when
-- everyone it paged has acknowledged.
CREATE FUNCTION evmgmt.acknowledge_via(escalation_id bigint, contact_id bigint, channel text, source text, note text)
	RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_id bigint := $1;
	p_note text := $5;
	p_channel text := $3;
	p_source text := $4;
	v_contact bigint := $2;
	v_now timestamptz := pg_catalog.clock_timestamp();
	e evmgmt.escalation;
	v_missing integer := 0;
	v_by text;
BEGIN
	-- waits for a step firing or a resolve that holds the event; whoever
	-- comes second sees the first one's result
	PERFORM evmgmt.lock_event((SELECT x.event_id FROM evmgmt.escalation x WHERE x.escalation_id = p_id), true);
	SELECT * INTO e FROM evmgmt.escalation x WHERE x.escalation_id = p_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'escalation % does not exist', p_id USING ERRCODE = 'no_data_found';
	END IF;
	-- row-level security by site (86_site_scope.sql)
	PERFORM evmgmt.require_site_in_scope((SELECT ev.site_id FROM evmgmt.event ev WHERE ev.event_id = e.event_id),
										 pg_catalog.format('escalation %s', p_id));
	-- an exhausted escalation paged everyone it could and still waits for
	-- somebody to take it
	IF e.state NOT IN ('active', 'exhausted') THEN
		SELECT c.name INTO v_by FROM evmgmt.contact c WHERE c.contact_id = e.acknowledged_by;
		RAISE EXCEPTION 'escalation % is no longer active', p_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = CASE WHEN e.state = 'acknowledged'
							   THEN pg_catalog.format('It was acknowledged by %s at %s.', v_by, e.acknowledged_at)
							   ELSE pg_catalog.format('It ended (%s) at %s.', e.state, e.ended_at) END;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = v_contact) THEN
		RAISE EXCEPTION 'contact % already acknowledged escalation %', v_contact, p_id
			USING ERRCODE = 'unique_violation',
				  DETAIL = 'The plan requires every paged responder to acknowledge; the others have not yet.';
	END IF;
	INSERT INTO evmgmt.escalation_ack (escalation_id, contact_id, acked_at, note, channel, source)
	VALUES (p_id, v_contact, v_now, p_note, p_channel, p_source);

	IF (e.plan_snapshot ->> 'require_all_ack')::boolean THEN
		SELECT pg_catalog.count(DISTINCT r.contact_id) INTO v_missing
		FROM evmgmt.escalation_step_run r
		WHERE r.escalation_id = p_id AND r.contact_id IS NOT NULL AND r.outcome IN ('queued', 'bundled')
		  AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = p_id AND a.contact_id = r.contact_id);
	END IF;

	INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, reason, details)
	VALUES (e.event_id, e.pool, v_now, 'acknowledged', p_note,
			pg_catalog.jsonb_build_object('escalation_id', p_id, 'contact_id', v_contact,
										  'contact', (SELECT c.name FROM evmgmt.contact c WHERE c.contact_id = v_contact),
										  'stopped', v_missing = 0, 'awaiting', v_missing,
										  'channel', p_channel, 'source', p_source));

	IF v_missing > 0 THEN
		-- this responder is done; the others keep being paged
		PERFORM evmgmt.cancel_unsent(p_id, v_contact);
		RETURN e.state;
	END IF;
	UPDATE evmgmt.escalation
	SET state = 'acknowledged', acknowledged_at = v_now, acknowledged_by = v_contact, ack_note = p_note,
		ended_at = v_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'acknowledged'
	WHERE escalation_id = p_id;
	PERFORM evmgmt.cancel_unsent(p_id);
	-- an acknowledgment is a response
	UPDATE evmgmt.target_timer t
	SET met_at = v_now, next_at = NULL
	WHERE t.event_id = e.event_id AND t.pool = e.pool AND t.target = 'response'
	  AND t.met_at IS NULL AND t.breached_at IS NULL;
	RETURN 'acknowledged';
END
$$;
COMMENT ON FUNCTION evmgmt.acknowledge_via(bigint, bigint, text, text, text) IS 'Acknowledges an escalation for an authenticated contact, recording the channel (sms, voice, push, email, webhook, sql) and source it came by; called by acknowledge and by the HTTP listener';

-- Acknowledge an escalation from a SQL session, as oneself (or, for
-- evmgmt_admin, for somebody else).
CREATE OR REPLACE FUNCTION evmgmt.acknowledge(escalation_id bigint, contact_id bigint DEFAULT NULL, note text DEFAULT NULL)
	RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.acknowledge_via($1, evmgmt.acting_contact($2), 'sql', NULL, $3);
COMMENT ON FUNCTION evmgmt.acknowledge(bigint, bigint, text) IS 'Acknowledges a running (or exhausted) escalation as a named contact (default: the contact of the session user): stops it at once and cancels unsent notifications (with require_all_ack, once every paged responder has acknowledged); returns the resulting state';

-- Render a message of a kind for a channel: the operation's template when it
-- has one, the built-in one otherwise.
CREATE OR REPLACE FUNCTION evmgmt.render_message(kind text, channel evmgmt.channel, operation_id text, vars jsonb,
									  OUT subject text, OUT body text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	t record;
BEGIN
	SELECT m.subject, m.body, m.max_length INTO t
	FROM evmgmt.message_template m
	WHERE m.kind = $1 AND m.channel = $2 AND (m.operation_id = $3 OR m.builtin)
	ORDER BY m.builtin
	LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no message template for kind "%" and channel %', $1, $2
			USING ERRCODE = 'undefined_object',
				  HINT = 'The built-in templates cover every kind and channel; restore them by recreating the extension.';
	END IF;
	subject := evmgmt.fill_template_fields(t.subject, vars);
	body := evmgmt.fill_template_fields(t.body, vars);
	-- A page that can be acknowledged from where it lands says how, even when
	-- its template has no {{ack_...}} field: first on SMS (so that cutting
	-- keeps it), last elsewhere.
	IF $1 = 'escalation_step' AND COALESCE(vars ->> 'ack_hint', '') <> '' AND t.body !~ '\{\{ack_' THEN
		body := CASE WHEN $2 = 'sms' THEN (vars ->> 'ack_hint') || ' ' || body
					 ELSE body || CASE WHEN $2 = 'email' THEN E'\n\n' ELSE ' ' END || (vars ->> 'ack_hint') END;
	END IF;
	body := evmgmt.fit_length(body, t.max_length);
END
$$;
COMMENT ON FUNCTION evmgmt.render_message(text, evmgmt.channel, text, jsonb) IS 'Renders the subject and body of a message from the operation''s template or the built-in one (with the ack hint of a page whose template has no {{ack_...}} field), cut to the channel''s length';

-- Reach one contact on one channel: check the contact, find the address and
-- the provider, render and enqueue.  The outcome says why nothing was queued.
CREATE OR REPLACE FUNCTION evmgmt.notify_contact(p_kind text, p_contact_id bigint, p_channel evmgmt.channel, p_event_id bigint,
									  p_escalation_id bigint, p_operation_id text, p_vars jsonb, p_now timestamptz,
									  OUT outcome text, OUT notification_id bigint, OUT recipient text, OUT provider_id text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_active boolean;
	m record;
	q record;
BEGIN
	SELECT c.active INTO v_active FROM evmgmt.contact c WHERE c.contact_id = p_contact_id;
	IF NOT COALESCE(v_active, false) THEN
		outcome := 'inactive_contact';
		RETURN;
	END IF;
	SELECT cc.address INTO recipient FROM evmgmt.contact_channel cc
	WHERE cc.contact_id = p_contact_id AND cc.channel = p_channel
	ORDER BY cc.priority, cc.address LIMIT 1;
	IF recipient IS NULL THEN
		outcome := 'no_channel';
		RETURN;
	END IF;
	SELECT p.provider_id INTO provider_id FROM evmgmt.channel_provider p
	WHERE p.channel = p_channel AND p.active ORDER BY p.provider_id LIMIT 1;
	IF provider_id IS NULL THEN
		outcome := 'no_provider';
		RETURN;
	END IF;
	-- {{ack_url}}, {{ack_code}} (sql/install/65_action_tokens.sql)
	p_vars := p_vars || evmgmt.action_fields(p_escalation_id, p_contact_id, p_channel);
	SELECT * INTO m FROM evmgmt.render_message(p_kind, p_channel, p_operation_id, p_vars);
	SELECT * INTO q FROM evmgmt.enqueue_notification(p_kind, p_channel, provider_id, p_contact_id, recipient, p_event_id,
													 p_escalation_id, p_operation_id, m.subject, m.body,
													 p_vars || pg_catalog.jsonb_build_object('kind', p_kind, 'channel', p_channel, 'contact_id', p_contact_id),
													 p_now);
	notification_id := q.notification_id;
	outcome := CASE WHEN q.bundled THEN 'bundled' ELSE 'queued' END;
END
$$;
COMMENT ON FUNCTION evmgmt.notify_contact(text, bigint, evmgmt.channel, bigint, bigint, text, jsonb, timestamptz) IS 'Queues one message to one contact on one channel, or says why it could not (inactive_contact, no_channel, no_provider)';

-- Send to a webhook endpoint (never bundled).
CREATE OR REPLACE FUNCTION evmgmt.notify_endpoint(p_kind text, p_provider_id text, p_event_id bigint, p_escalation_id bigint,
									   p_operation_id text, p_vars jsonb, p_now timestamptz,
									   OUT outcome text, OUT notification_id bigint, OUT recipient text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	m record;
	q record;
BEGIN
	SELECT p.endpoint INTO recipient FROM evmgmt.channel_provider p
	WHERE p.provider_id = p_provider_id AND p.active AND p.channel = 'webhook';
	IF recipient IS NULL THEN
		outcome := 'no_provider';
		RETURN;
	END IF;
	-- ack_url, ack_token for signed callbacks (sql/install/66_listener.sql)
	p_vars := p_vars || evmgmt.action_fields(p_escalation_id, NULL, 'webhook');
	SELECT * INTO m FROM evmgmt.render_message(p_kind, 'webhook', p_operation_id, p_vars);
	SELECT * INTO q FROM evmgmt.enqueue_notification(p_kind, 'webhook', p_provider_id, NULL, recipient, p_event_id,
													 p_escalation_id, p_operation_id, m.subject, m.body,
													 p_vars || pg_catalog.jsonb_build_object('kind', p_kind, 'channel', 'webhook'), p_now);
	notification_id := q.notification_id;
	outcome := 'queued';
END
$$;
COMMENT ON FUNCTION evmgmt.notify_endpoint(text, text, bigint, bigint, text, jsonb, timestamptz) IS 'Queues one message to a webhook endpoint, or says no_provider when the endpoint is missing or inactive';

-- The HTTP listener's side in SQL: every request the listener process
-- (src/listener.c) accepts is answered by evmgmt.listener_handle() in one
-- short transaction.  Paths, relative to evmgmt.public_base_url:
--
--   GET  /ack/<token>    a confirmation page; changes nothing (link scanners
--                        and chat previews fetch every URL)
--   POST /ack/<token>    acknowledge (the page's form, the push action button)
--   POST /twilio/sms     inbound SMS (Twilio's webhook, X-Twilio-Signature):
--                        1, ACK, ACK <code> acknowledge; 2, PASS, PASS <code> pass
--   POST /twilio/voice   the digit gathered by an outbound call: 1 acknowledge, 2 pass
--   POST /callback       a signed webhook callback (Standard Webhooks headers,
--                        the endpoint's secret): {"token", "action": acknowledge
--                        | resolve, "contact_id"}
--   GET  /healthz        "ok"
--
-- A refused request (bad token or signature, expired, unknown number, an
-- action the token does not allow) is recorded in listener_refusal with the
-- reason, and answered 404 (token paths) or 403 (signed paths) with a body
-- that never says which part was wrong.

CREATE TABLE evmgmt.listener_refusal (
	refusal_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	at				timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	method			text NOT NULL,
	path			text NOT NULL,
	reason			text NOT NULL,
	source			text,
	escalation_id	bigint
);
CREATE INDEX ON evmgmt.listener_refusal (at);
COMMENT ON TABLE evmgmt.listener_refusal IS 'Append-only record of requests the HTTP listener refused, with the reason (the client is told only 403 or 404); tokens are never stored';
CREATE FUNCTION evmgmt.listener_refusal_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'listener_refusal is append-only'
		USING ERRCODE = 'insufficient_privilege',
			  DETAIL = pg_catalog.format('%s on evmgmt.listener_refusal is not allowed.', TG_OP);
END
$$;
COMMENT ON FUNCTION evmgmt.listener_refusal_append_only() IS 'Trigger: refuses UPDATE and DELETE on listener_refusal';
CREATE TRIGGER listener_refusal_append_only BEFORE UPDATE OR DELETE ON evmgmt.listener_refusal
	FOR EACH ROW EXECUTE FUNCTION evmgmt.listener_refusal_append_only();

-- The first value of a name in a name, value, name, value, ... array.
CREATE FUNCTION evmgmt.listener_param(params text[], name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT params[i + 1] FROM pg_catalog.generate_subscripts(params, 1) AS i
		WHERE i % 2 = 1 AND pg_catalog.lower(params[i]) = pg_catalog.lower(name) ORDER BY i LIMIT 1);
COMMENT ON FUNCTION evmgmt.listener_param(text[], text) IS 'The first value of a parameter (or header, case-insensitive) in a name/value array';

-- HTML-escape a text.
CREATE FUNCTION evmgmt.html_escape(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
	t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');
COMMENT ON FUNCTION evmgmt.html_escape(text) IS 'Text with & < > " and '' replaced by HTML entities';

-- XML-escape a text for TwiML.
CREATE FUNCTION evmgmt.twiml(verb text, t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN '<?xml version="1.0" encoding="UTF-8"?><Response><' || verb || '>'
	|| pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')
	|| '</' || verb || '></Response>';
COMMENT ON FUNCTION evmgmt.twiml(text, text) IS 'A TwiML response with one verb (Message, Say) around the escaped text';

-- A small HTML page.
CREATE FUNCTION evmgmt.listener_page(title text, body_html text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
	|| '<meta name="robots" content="noindex"><title>' || evmgmt.html_escape(title) || '</title>'
	|| '<style>body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em}button{font-size:1.2em;padding:.5em 1.5em}</style>'
	|| '</head><body><h1>' || evmgmt.html_escape(title) || '</h1>' || body_html || '</body></html>';
COMMENT ON FUNCTION evmgmt.listener_page(text, text) IS 'A minimal HTML page (title escaped, body given as HTML)';

-- Record a refused request; answer the status given with a neutral body.
CREATE FUNCTION evmgmt.listener_refuse(answer integer, method text, path text, reason text, source text,
									   escalation_id bigint DEFAULT NULL,
									   OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	INSERT INTO evmgmt.listener_refusal (method, path, reason, source, escalation_id)
	VALUES ($2, pg_catalog.regexp_replace($3, '^/ack/.*', '/ack/(token)'), $4, $5, $6);
	status := $1;
	content_type := 'text/plain; charset=utf-8';
	body := CASE WHEN $1 = 404 THEN E'not found\n' ELSE E'forbidden\n' END;
END
$$;
COMMENT ON FUNCTION evmgmt.listener_refuse(integer, text, text, text, text, bigint) IS 'Records a refused listener request with its reason and answers 403 or 404 without details';

-- What happened to an escalation, in words: "acknowledged by Dana via sms at
-- 10:04:12" (in the acknowledger's time zone), or how it ended.
CREATE FUNCTION evmgmt.escalation_outcome_text(escalation_id bigint) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT CASE
			WHEN e.state = 'acknowledged' THEN
				'acknowledged by ' || c.name || COALESCE(' via ' || k.channel, '') || ' at '
				|| pg_catalog.to_char(e.acknowledged_at AT TIME ZONE c.time_zone, 'YYYY-MM-DD HH24:MI:SS') || ' ' || c.time_zone
			WHEN e.state IN ('active', 'exhausted') THEN 'still waiting for an acknowledgment'
			ELSE e.state || ' at ' || pg_catalog.to_char(e.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
		END
		FROM evmgmt.escalation e
		LEFT JOIN evmgmt.contact c ON c.contact_id = e.acknowledged_by
		LEFT JOIN evmgmt.escalation_ack k ON k.escalation_id = e.escalation_id AND k.contact_id = e.acknowledged_by
		WHERE e.escalation_id = $1);
COMMENT ON FUNCTION evmgmt.escalation_outcome_text(bigint) IS 'How an escalation stands, in words: acknowledged by whom, via which channel and when; or how it ended';

-- Pass an escalation to its next step at once (an SMS "2" or "PASS", a
-- voice keypress 2): the next step (not a voice retry of this one) becomes
-- due now, and the passing contact's unsent messages are cancelled.
CREATE FUNCTION evmgmt.pass_escalation(escalation_id bigint, contact_id bigint, channel text, source text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	e evmgmt.escalation;
	v_next integer;
	v_now timestamptz := pg_catalog.clock_timestamp();
BEGIN
	PERFORM evmgmt.lock_event((SELECT x.event_id FROM evmgmt.escalation x WHERE x.escalation_id = $1), true);
	SELECT * INTO e FROM evmgmt.escalation x WHERE x.escalation_id = $1 FOR UPDATE;
	IF NOT FOUND OR e.state <> 'active' THEN
		RETURN COALESCE(e.state, 'missing');
	END IF;
	IF e.next_retry_no > 0 THEN
		v_next := evmgmt.snapshot_next_step(e.plan_snapshot, e.next_step_no);
		IF v_next IS NOT NULL THEN
			UPDATE evmgmt.escalation x SET next_step_no = v_next, next_retry_no = 0, next_due_at = v_now
			WHERE x.escalation_id = $1;
		ELSE
			UPDATE evmgmt.escalation x SET next_due_at = LEAST(x.next_due_at, v_now) WHERE x.escalation_id = $1;
		END IF;
	ELSE
		UPDATE evmgmt.escalation x SET next_due_at = LEAST(x.next_due_at, v_now) WHERE x.escalation_id = $1;
	END IF;
	PERFORM evmgmt.cancel_unsent($1, $2);
	INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, reason, details)
	VALUES (e.event_id, e.pool, v_now, 'note', 'passed to the next step',
			pg_catalog.jsonb_build_object('escalation_id', $1, 'contact_id', $2, 'passed', true,
										  'contact', (SELECT c.name FROM evmgmt.contact c WHERE c.contact_id = $2),
										  'channel', $3, 'source', $4));
	RETURN 'passed';
END
$$;
COMMENT ON FUNCTION evmgmt.pass_escalation(bigint, bigint, text, text) IS 'Passes a running escalation to its next step at once (skipping remaining voice retries of the current one) for a contact who cannot take it';

-- Acknowledge for the listener: state first, then the acknowledgment;
-- "already" when somebody else came first.  Returns acknowledged, waiting
-- (require_all_ack and others still to come), already or ended.
CREATE FUNCTION evmgmt.listener_acknowledge(escalation_id bigint, contact_id bigint, channel text, source text, note text)
	RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r text;
BEGIN
	BEGIN
		r := evmgmt.acknowledge_via($1, $2, $3, $4, $5);
	EXCEPTION WHEN object_not_in_prerequisite_state OR unique_violation THEN
		RETURN 'already';
	END;
	RETURN CASE WHEN r = 'acknowledged' THEN 'acknowledged' ELSE 'waiting' END;
END
$$;
COMMENT ON FUNCTION evmgmt.listener_acknowledge(bigint, bigint, text, text, text) IS 'Acknowledges for the listener; already instead of an error when the escalation was acknowledged or ended meanwhile';

-- GET and POST of /ack/<token>.
CREATE FUNCTION evmgmt.listener_ack_link(method text, token text, source text, path text,
										 OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	e record;
	v_name text;
	v_result text;
	v_what text;
BEGIN
	SELECT * INTO t FROM evmgmt.read_action_token(token);
	IF NOT t.ok THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'token ' || t.reason, source);
		RETURN;
	END IF;
	SELECT x.escalation_id, x.state, x.ended_at, x.event_id, x.pool, ev.title, ev.site_id, pc.severity
	INTO e
	FROM evmgmt.escalation x
	JOIN evmgmt.event ev ON ev.event_id = x.event_id
	JOIN evmgmt.pool_condition pc ON pc.event_id = x.event_id AND pc.pool = x.pool
	WHERE x.escalation_id = t.escalation_id;
	IF NOT FOUND THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'unknown escalation', source, t.escalation_id);
		RETURN;
	END IF;
	IF e.ended_at IS NOT NULL AND e.ended_at < pg_catalog.now() - evmgmt.action_token_grace() THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'escalation ended before the grace period', source, t.escalation_id);
		RETURN;
	END IF;
	SELECT c.name INTO v_name FROM evmgmt.contact c WHERE c.contact_id = t.contact_id AND c.active;
	IF NOT FOUND THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'contact unknown or inactive', source, t.escalation_id);
		RETURN;
	END IF;
	v_what := 'Escalation ' || e.escalation_id || ' of event ' || e.event_id || ': ' || e.title
			  || ' (' || COALESCE(e.severity::text, 'unclassified') || ', site ' || e.site_id || ', pool ' || e.pool || ')';
	status := 200;
	content_type := 'text/html; charset=utf-8';

	IF method = 'POST' THEN
		IF t.actions & 1 = 0 THEN
			SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, method, path, 'action not allowed by the token', source, t.escalation_id);
			RETURN;
		END IF;
		IF e.state IN ('active', 'exhausted') THEN
			v_result := evmgmt.listener_acknowledge(e.escalation_id, t.contact_id, t.channel::text, source, 'acknowledged via ' || t.channel || ' link');
		ELSE
			v_result := 'already';
		END IF;
		IF v_result = 'acknowledged' THEN
			body := evmgmt.listener_page('Acknowledged', '<p>' || evmgmt.html_escape(v_what) || '</p><p>Thank you, '
										 || evmgmt.html_escape(v_name) || '. The escalation is stopped.</p>');
		ELSIF v_result = 'waiting' THEN
			body := evmgmt.listener_page('Acknowledged', '<p>' || evmgmt.html_escape(v_what) || '</p><p>Thank you, '
										 || evmgmt.html_escape(v_name) || '. The plan waits for the other responders too.</p>');
		ELSE
			body := evmgmt.listener_page('Already ' || pg_catalog.split_part(evmgmt.escalation_outcome_text(e.escalation_id), ' ', 1),
										 '<p>' || evmgmt.html_escape(v_what) || '</p><p>This escalation was already '
										 || evmgmt.html_escape(evmgmt.escalation_outcome_text(e.escalation_id)) || '.</p>');
		END IF;
		RETURN;
	END IF;

	-- GET: a confirmation page, nothing changes
	IF e.state IN ('active', 'exhausted')
	   AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = e.escalation_id AND a.contact_id = t.contact_id) THEN
		body := evmgmt.listener_page('Acknowledge?', '<p>' || evmgmt.html_escape(v_what) || '</p><p>Paged: '
									 || evmgmt.html_escape(v_name) || ' via ' || t.channel || '.</p>'
									 || '<form method="post"><button type="submit">Acknowledge</button></form>');
	ELSE
		body := evmgmt.listener_page('Already ' || pg_catalog.split_part(evmgmt.escalation_outcome_text(e.escalation_id), ' ', 1),
									 '<p>' || evmgmt.html_escape(v_what) || '</p><p>This escalation was already '
									 || evmgmt.html_escape(evmgmt.escalation_outcome_text(e.escalation_id)) || '.</p>');
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.listener_ack_link(text, text, text, text) IS 'The ack link: GET shows a confirmation page (changes nothing), POST acknowledges; an escalation acknowledged or ended says what happened and by whom';

-- Check X-Twilio-Signature against the active Twilio provider of a channel.
CREATE FUNCTION evmgmt.twilio_request_valid(channel evmgmt.channel, uri text, form text[], signature text) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	base text := pg_catalog.rtrim(COALESCE(pg_catalog.current_setting('evmgmt.public_base_url', true), ''), '/');
	v_secret text;
BEGIN
	IF base = '' OR COALESCE(signature, '') = '' THEN
		RETURN false;
	END IF;
	SELECT s.secret INTO v_secret
	FROM evmgmt.channel_provider p JOIN evmgmt.provider_secret s ON s.provider_id = p.provider_id
	WHERE p.kind = 'twilio' AND p.channel = $1 AND p.active;
	IF v_secret IS NULL THEN
		RETURN false;
	END IF;
	RETURN evmgmt.constant_time_equal(pg_catalog.convert_to(evmgmt.twilio_signature(v_secret, base || uri, COALESCE(form, '{}')), 'UTF8'),
									  pg_catalog.convert_to(signature, 'UTF8'));
END
$$;
COMMENT ON FUNCTION evmgmt.twilio_request_valid(evmgmt.channel, text, text[], text) IS 'Whether a request carries the X-Twilio-Signature of the channel''s active Twilio provider for evmgmt.public_base_url || uri and its form parameters';

-- The escalation a phone reply is about: the one whose code matches, or the
-- most recently paged running one; running_only false also finds ended ones
-- (to say what happened).
CREATE FUNCTION evmgmt.phone_reply_target(phone text, code text, running_only boolean,
										  OUT escalation_id bigint, OUT contact_id bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT r.escalation_id, r.contact_id
	FROM evmgmt.escalation_step_run r
	JOIN evmgmt.escalation e ON e.escalation_id = r.escalation_id
	JOIN evmgmt.contact c ON c.contact_id = r.contact_id AND c.active
	WHERE r.recipient = phone AND r.channel IN ('sms', 'voice') AND r.outcome IN ('queued', 'bundled')
	  AND (NOT running_only OR e.state IN ('active', 'exhausted'))
	  AND (running_only OR e.ended_at IS NULL OR e.ended_at > pg_catalog.now() - evmgmt.action_token_grace())
	  AND (code IS NULL OR evmgmt.ack_code(r.escalation_id, r.contact_id) = code)
	ORDER BY r.fired_at DESC, r.run_id DESC
	LIMIT 1;
END;
COMMENT ON FUNCTION evmgmt.phone_reply_target(text, text, boolean) IS 'The escalation and contact a phone reply is about: the code''s, or the most recently paged running one';

-- Act on a phone reply: acknowledge or pass; the answer to say or send back.
CREATE FUNCTION evmgmt.phone_reply(phone text, code text, act text, channel text, OUT status integer, OUT answer text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	x record;
	v_title text;
	v_name text;
	v_result text;
BEGIN
	status := 200;
	SELECT * INTO x FROM evmgmt.phone_reply_target(phone, code, true);
	IF x.escalation_id IS NULL THEN
		SELECT * INTO x FROM evmgmt.phone_reply_target(phone, code, false);
		IF x.escalation_id IS NULL THEN
			answer := CASE WHEN code IS NULL THEN 'Nothing is waiting for you to acknowledge.'
						   ELSE 'No escalation matches code ' || code || '.' END;
		ELSE
			answer := 'Escalation ' || x.escalation_id || ' was already ' || evmgmt.escalation_outcome_text(x.escalation_id) || '.';
		END IF;
		RETURN;
	END IF;
	SELECT ev.title INTO v_title FROM evmgmt.escalation e JOIN evmgmt.event ev ON ev.event_id = e.event_id
	WHERE e.escalation_id = x.escalation_id;
	SELECT c.name INTO v_name FROM evmgmt.contact c WHERE c.contact_id = x.contact_id;
	IF act = 'pass' THEN
		v_result := evmgmt.pass_escalation(x.escalation_id, x.contact_id, channel, evmgmt.mask_address(phone));
		answer := CASE WHEN v_result = 'passed' THEN 'Passed escalation ' || x.escalation_id || ' (' || v_title || ') to the next step.'
					   ELSE 'Escalation ' || x.escalation_id || ' is ' || evmgmt.escalation_outcome_text(x.escalation_id) || '.' END;
		RETURN;
	END IF;
	v_result := evmgmt.listener_acknowledge(x.escalation_id, x.contact_id, channel, evmgmt.mask_address(phone),
											'acknowledged by ' || channel || ' reply');
	answer := CASE v_result
		WHEN 'acknowledged' THEN 'Acknowledged escalation ' || x.escalation_id || ' (' || v_title || '). Thank you, ' || v_name || '.'
		WHEN 'waiting' THEN 'Acknowledged escalation ' || x.escalation_id || '; the others paged are still asked too. Thank you, ' || v_name || '.'
		ELSE 'Escalation ' || x.escalation_id || ' was already ' || evmgmt.escalation_outcome_text(x.escalation_id) || '.' END;
END
$$;
COMMENT ON FUNCTION evmgmt.phone_reply(text, text, text, text) IS 'Acknowledges or passes the escalation a phone reply is about (by code, or the most recent) and returns the answer for the caller';

-- POST /twilio/sms and /twilio/voice.
CREATE FUNCTION evmgmt.listener_twilio(kind evmgmt.channel, uri text, form text[], headers text[], source text, path text,
									   OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_phone text;
	v_text text;
	v_code text;
	v_act text;
	m text[];
	r record;
BEGIN
	IF NOT evmgmt.twilio_request_valid(kind, uri, form, evmgmt.listener_param(headers, 'X-Twilio-Signature')) THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'bad or missing X-Twilio-Signature', source);
		RETURN;
	END IF;
	-- an inbound SMS comes From the contact; a gathered digit of our outbound call goes To them
	v_phone := evmgmt.listener_param(form, CASE WHEN kind = 'sms' THEN 'From' ELSE 'To' END);
	IF v_phone IS NULL OR NOT EXISTS (SELECT FROM evmgmt.contact_channel cc JOIN evmgmt.contact c ON c.contact_id = cc.contact_id AND c.active
									  WHERE cc.channel IN ('sms', 'voice') AND cc.address = v_phone) THEN
		SELECT * INTO status, content_type, body
		FROM evmgmt.listener_refuse(403, 'POST', path, 'unknown number ' || COALESCE(evmgmt.mask_address(v_phone), '(none)'), source);
		RETURN;
	END IF;
	v_text := pg_catalog.upper(pg_catalog.btrim(COALESCE(evmgmt.listener_param(form, CASE WHEN kind = 'sms' THEN 'Body' ELSE 'Digits' END), ''), E' \t\r\n.!'));
	m := pg_catalog.regexp_match(v_text, '^(1|ACK|YES|OK|2|PASS)(\s+([0-9]{6}))?$');
	IF m IS NULL THEN
		status := 200;
		content_type := 'text/xml; charset=utf-8';
		body := evmgmt.twiml(CASE WHEN kind = 'sms' THEN 'Message' ELSE 'Say' END,
							 CASE WHEN kind = 'sms' THEN 'Reply 1 or ACK to acknowledge, 2 or PASS to pass it on (ACK 123456 with the code for one page among several).'
								  ELSE 'Goodbye.' END);
		RETURN;
	END IF;
	v_act := CASE WHEN m[1] IN ('2', 'PASS') THEN 'pass' ELSE 'ack' END;
	v_code := m[3];
	SELECT * INTO r FROM evmgmt.phone_reply(v_phone, v_code, v_act, kind::text);
	status := r.status;
	content_type := 'text/xml; charset=utf-8';
	body := evmgmt.twiml(CASE WHEN kind = 'sms' THEN 'Message' ELSE 'Say' END, r.answer);
END
$$;
COMMENT ON FUNCTION evmgmt.listener_twilio(evmgmt.channel, text, text[], text[], text, text) IS 'Inbound SMS (sms) and gathered voice digits (voice) from a Twilio-compatible provider: signature checked, the number must be a contact''s; acknowledges or passes, answers TwiML';

-- POST /callback: a Standard Webhooks-signed JSON body from a webhook
-- receiver, {"token": <ack_token of the payload>, "action": "acknowledge" or
-- "resolve", "contact_id": <who>}, signed with the secret of an endpoint the
-- escalation sent to, the timestamp within 5 minutes.
CREATE FUNCTION evmgmt.listener_callback(headers text[], payload text, source text, path text,
										 OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_id text := evmgmt.listener_param(headers, 'webhook-id');
	v_ts text := evmgmt.listener_param(headers, 'webhook-timestamp');
	v_sig text := evmgmt.listener_param(headers, 'webhook-signature');
	j jsonb;
	t record;
	v_ok boolean := false;
	v_secret text;
	v_contact bigint;
	v_action text;
	v_result text;
	e record;
BEGIN
	content_type := 'application/json';
	IF COALESCE(v_id, '') = '' OR COALESCE(v_ts, '') !~ '^[0-9]{1,12}$' OR COALESCE(v_sig, '') = ''
	   OR pg_catalog.abs(v_ts::bigint - pg_catalog.date_part('epoch', pg_catalog.now())::bigint) > 300 THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'missing or stale webhook signature headers', source);
		RETURN;
	END IF;
	BEGIN
		j := payload::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		j := NULL;
	END;
	IF j IS NULL OR pg_catalog.jsonb_typeof(j) <> 'object' THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'body is not a JSON object', source);
		RETURN;
	END IF;
	SELECT * INTO t FROM evmgmt.read_action_token(j ->> 'token');
	IF NOT t.ok THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'token ' || t.reason, source);
		RETURN;
	END IF;
	-- the secret of an endpoint this escalation sent to
	FOR v_secret IN SELECT DISTINCT s.secret FROM evmgmt.notification n
					JOIN evmgmt.provider_secret s ON s.provider_id = n.provider_id
					WHERE n.escalation_id = t.escalation_id AND n.channel = 'webhook'
	LOOP
		IF EXISTS (SELECT FROM pg_catalog.regexp_split_to_table(v_sig, ' ') AS x(sig)
				   WHERE evmgmt.constant_time_equal(pg_catalog.convert_to(x.sig, 'UTF8'),
													pg_catalog.convert_to(evmgmt.webhook_signature(v_secret, v_id, v_ts::bigint, payload), 'UTF8'))) THEN
			v_ok := true;
			EXIT;
		END IF;
	END LOOP;
	IF NOT v_ok THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'bad webhook signature', source, t.escalation_id);
		RETURN;
	END IF;
	v_action := COALESCE(j ->> 'action', 'acknowledge');
	v_contact := CASE WHEN j ->> 'contact_id' ~ '^[0-9]{1,18}$' THEN (j ->> 'contact_id')::bigint END;
	IF v_action NOT IN ('acknowledge', 'resolve')
	   OR (v_action = 'acknowledge' AND t.actions & 1 = 0) OR (v_action = 'resolve' AND t.actions & 4 = 0) THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'action not allowed: ' || pg_catalog.left(v_action, 40), source, t.escalation_id);
		RETURN;
	END IF;
	SELECT x.event_id, x.pool, x.state INTO e FROM evmgmt.escalation x WHERE x.escalation_id = t.escalation_id;
	IF v_action = 'resolve' THEN
		-- the lifecycle decides: a pool not yet responding (or already
		-- resolved) is answered 409 with the reason, and stays as it is
		BEGIN
			PERFORM evmgmt.resolve_pool(e.event_id, e.pool, 'resolved by webhook callback ' || pg_catalog.left(v_id, 100));
		EXCEPTION WHEN object_not_in_prerequisite_state THEN
			status := 409;
			body := pg_catalog.jsonb_build_object('escalation_id', t.escalation_id, 'result', 'refused', 'reason', SQLERRM)::text;
			RETURN;
		END;
		status := 200;
		body := pg_catalog.jsonb_build_object('escalation_id', t.escalation_id, 'result', 'resolved')::text;
		RETURN;
	END IF;
	IF v_contact IS NULL OR NOT EXISTS (SELECT FROM evmgmt.contact c WHERE c.contact_id = v_contact AND c.active) THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'callback names no active contact', source, t.escalation_id);
		RETURN;
	END IF;
	v_result := evmgmt.listener_acknowledge(t.escalation_id, v_contact, 'webhook', source, 'acknowledged by webhook callback');
	status := 200;
	body := pg_catalog.jsonb_build_object('escalation_id', t.escalation_id, 'result', v_result,
										  'outcome', evmgmt.escalation_outcome_text(t.escalation_id))::text;
END
$$;
COMMENT ON FUNCTION evmgmt.listener_callback(text[], text, text, text) IS 'A signed webhook callback (Standard Webhooks headers, the secret of an endpoint the escalation sent to): acknowledge for a contact, or resolve the pool condition';

-- The one entry point of the listener process.
CREATE FUNCTION evmgmt.listener_handle(method text, uri text, path text, query text[], form text[], headers text[],
									   request_body text, client text,
									   OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_fwd text := pg_catalog.btrim(pg_catalog.split_part(COALESCE(evmgmt.listener_param(headers, 'X-Forwarded-For'), ''), ',', 1));
	v_source text := client || CASE WHEN v_fwd <> '' THEN ' for ' || pg_catalog.left(v_fwd, 64) ELSE '' END;
	m text[];
	v_body text := $7;
BEGIN
	m := pg_catalog.regexp_match(path, '^/ack/([A-Za-z0-9_-]{1,200})/?$');
	IF m IS NOT NULL THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_ack_link(method, m[1], v_source, path);
	ELSIF path = '/twilio/sms' AND method = 'POST' THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_twilio('sms', uri, form, headers, v_source, path);
	ELSIF path = '/twilio/voice' AND method = 'POST' THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_twilio('voice', uri, form, headers, v_source, path);
	ELSIF path = '/callback' AND method = 'POST' THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_callback(headers, v_body, v_source, path);
	ELSIF path = '/healthz' AND method = 'GET' THEN
		status := 200;
		content_type := 'text/plain; charset=utf-8';
		body := E'ok\n';
	ELSE
		status := 404;
		content_type := 'text/plain; charset=utf-8';
		body := E'not found\n';
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.listener_handle(text, text, text, text[], text[], text[], text, text) IS 'Answers one HTTP request of the listener (status, content type, body): ack links, Twilio SMS and voice, webhook callbacks, health';

-- One row per step firing and recipient for BI tools: what happened.
CREATE OR REPLACE VIEW evmgmt.escalation_history AS
SELECT r.run_id, r.escalation_id, e.event_id, e.pool, e.plan_id, e.start_reason, r.cycle, r.step_no, r.retry_no,
	   r.scheduled_at, r.due_at, r.fired_at, r.fired_at - r.due_at AS late_by,
	   r.channel, r.contact_id, c.name AS contact_name,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN r.recipient
			ELSE evmgmt.mask_address(r.recipient) END AS recipient,
	   r.outcome, r.detail, r.notification_id,
	   n.kind AS notification_kind, n.state AS delivery_state, n.attempts AS delivery_attempts, n.sent_at,
	   n.last_status AS delivery_status,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN n.last_error
			WHEN n.last_error IS NOT NULL THEN '(hidden)' END AS delivery_error,
	   d.finished_at AS last_attempt_at, d.finished_at - d.started_at AS last_attempt_latency,
	   k.acked_at AS recipient_acknowledged_at,
	   e.acknowledged_at, ac.name AS acknowledged_by,
	   ka.channel AS acknowledged_via,
	   CASE WHEN e.state = 'acknowledged' THEN 'acknowledged by ' || ac.name || ' via ' || COALESCE(ka.channel, 'sql') || ' at '
			|| pg_catalog.to_char(e.acknowledged_at AT TIME ZONE ac.time_zone, 'HH24:MI:SS') END AS acknowledgment
FROM evmgmt.escalation_step_run r
JOIN evmgmt.escalation e ON e.escalation_id = r.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = r.contact_id
LEFT JOIN evmgmt.notification n ON n.notification_id = r.notification_id
LEFT JOIN LATERAL (SELECT x.started_at, x.finished_at FROM evmgmt.delivery_attempt x
				   WHERE x.notification_id = r.notification_id ORDER BY x.attempt_no DESC LIMIT 1) d ON true
LEFT JOIN evmgmt.escalation_ack k ON k.escalation_id = r.escalation_id AND k.contact_id = r.contact_id
LEFT JOIN evmgmt.contact ac ON ac.contact_id = e.acknowledged_by
LEFT JOIN evmgmt.escalation_ack ka ON ka.escalation_id = e.escalation_id AND ka.contact_id = e.acknowledged_by;
COMMENT ON VIEW evmgmt.escalation_history IS 'Every step an escalation fired, per recipient: scheduled, due and fired time, late_by, channel, recipient (masked unless the reader is a responder), typed outcome, delivery result, acknowledgment (who, the channel it came by, when in the acknowledger''s time zone)';

-- Row image fit for the audit trail: secrets dropped, contact addresses masked.
CREATE OR REPLACE FUNCTION evmgmt.audit_image(tbl text, r jsonb) RETURNS jsonb
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

CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.action_key FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row();
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.action_key FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate();

GRANT SELECT ON evmgmt.action_key, evmgmt.listener_refusal TO evmgmt_admin;
GRANT USAGE ON SEQUENCE evmgmt.action_key_key_id_seq, evmgmt.listener_refusal_refusal_id_seq TO evmgmt_admin;
-- HTTP listener and action tokens (65_action_tokens.sql, 66_listener.sql):
-- the keys are readable by evmgmt_admin only (SELECT above), rotated through
-- rotate_action_key; refused requests are visible to admins (SELECT above);
-- the token and listener functions are for the workers and the listener
-- (superuser sessions), not for any role.
REVOKE ALL ON FUNCTION evmgmt.rotate_action_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.rotate_action_key() TO evmgmt_admin;
REVOKE ALL ON FUNCTION evmgmt.current_action_key(), evmgmt.action_token(bigint, bigint, evmgmt.channel, integer, timestamptz),
	evmgmt.read_action_token(text, timestamptz), evmgmt.ack_code(bigint, bigint), evmgmt.action_fields(bigint, bigint, evmgmt.channel),
	evmgmt.acknowledge_via(bigint, bigint, text, text, text), evmgmt.pass_escalation(bigint, bigint, text, text),
	evmgmt.listener_acknowledge(bigint, bigint, text, text, text), evmgmt.listener_refuse(integer, text, text, text, text, bigint),
	evmgmt.listener_ack_link(text, text, text, text), evmgmt.twilio_request_valid(evmgmt.channel, text, text[], text),
	evmgmt.phone_reply_target(text, text, boolean), evmgmt.phone_reply(text, text, text, text),
	evmgmt.listener_twilio(evmgmt.channel, text, text[], text[], text, text), evmgmt.listener_callback(text[], text, text, text),
	evmgmt.listener_handle(text, text, text, text[], text[], text[], text, text) FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('evmgmt.action_key', '');
SELECT pg_catalog.pg_extension_config_dump('evmgmt.listener_refusal', '');
SELECT pg_catalog.pg_extension_config_dump('evmgmt.action_key_key_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('evmgmt.listener_refusal_refusal_id_seq', '');

-- ---------------------------------------------------------------------------
-- Merged: functions that both the listener (above) and the security and
-- delivery sections redefined, as the install script has them now
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION evmgmt.acknowledge(escalation_id bigint, contact_id bigint DEFAULT NULL::bigint, note text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
RETURN evmgmt.acknowledge_via(escalation_id, evmgmt.acting_contact(contact_id), 'sql'::text, NULL::text, note)
;
COMMENT ON FUNCTION evmgmt.acknowledge(bigint,bigint,text) IS 'Acknowledges a running (or exhausted) escalation as a named contact (default: the contact of the session user): stops it at once and cancels unsent notifications (with require_all_ack, once every paged responder has acknowledged); returns the resulting state';

CREATE OR REPLACE FUNCTION evmgmt.audit_image(tbl text, r jsonb)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
RETURN CASE WHEN (r IS NULL) THEN NULL::jsonb WHEN (tbl = ANY (ARRAY['provider_secret'::text, 'action_key'::text])) THEN ((r - 'secret'::text) || '{"secret": "***"}'::jsonb) WHEN (tbl = 'escalation'::text) THEN (r - 'plan_snapshot'::text) WHEN (tbl = ANY (ARRAY['contact_channel'::text, 'notification'::text])) THEN (r || (jsonb_build_object('address', evmgmt.mask_address((r ->> 'address'::text)), 'recipient', evmgmt.mask_address((r ->> 'recipient'::text))) - CASE WHEN (tbl = 'notification'::text) THEN 'address'::text ELSE 'recipient'::text END)) ELSE r END
;
COMMENT ON FUNCTION evmgmt.audit_image(text,jsonb) IS 'The row image written to audit_log: secrets replaced by ***, contact addresses masked';

CREATE OR REPLACE FUNCTION evmgmt.notify_contact(p_kind text, p_contact_id bigint, p_channel evmgmt.channel, p_event_id bigint, p_escalation_id bigint, p_operation_id text, p_vars jsonb, p_now timestamp with time zone, OUT outcome text, OUT notification_id bigint, OUT recipient text, OUT provider_id text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
	v_active boolean;
	m record;
	q record;
BEGIN
	SELECT c.active INTO v_active FROM evmgmt.contact c WHERE c.contact_id = p_contact_id;
	IF NOT COALESCE(v_active, false) THEN
		outcome := 'inactive_contact';
		RETURN;
	END IF;
	IF p_kind = 'resolved' AND p_event_id IS NOT NULL AND evmgmt.resolve_notice_queued(p_event_id, p_contact_id) THEN
		outcome := 'already_notified';
		RETURN;
	END IF;
	SELECT cc.address INTO recipient FROM evmgmt.contact_channel cc
	WHERE cc.contact_id = p_contact_id AND cc.channel = p_channel
	ORDER BY cc.priority, cc.address LIMIT 1;
	IF recipient IS NULL THEN
		outcome := 'no_channel';
		RETURN;
	END IF;
	SELECT p.provider_id INTO provider_id FROM evmgmt.channel_provider p
	WHERE p.channel = p_channel AND p.active ORDER BY p.provider_id LIMIT 1;
	IF provider_id IS NULL THEN
		outcome := 'no_provider';
		RETURN;
	END IF;
	-- {{ack_url}}, {{ack_code}} (sql/install/65_action_tokens.sql)
	p_vars := p_vars || evmgmt.action_fields(p_escalation_id, p_contact_id, p_channel);
	SELECT * INTO m FROM evmgmt.render_message(p_kind, p_channel, p_operation_id, p_vars);
	SELECT * INTO q FROM evmgmt.enqueue_notification(p_kind, p_channel, provider_id, p_contact_id, recipient, p_event_id,
													 p_escalation_id, p_operation_id, m.subject, m.body,
													 p_vars || pg_catalog.jsonb_build_object('kind', p_kind, 'channel', p_channel, 'contact_id', p_contact_id),
													 p_now);
	notification_id := q.notification_id;
	outcome := CASE WHEN q.bundled THEN 'bundled' ELSE 'queued' END;
END
$function$
;
COMMENT ON FUNCTION evmgmt.notify_contact(text,bigint,evmgmt.channel,bigint,bigint,text,jsonb,timestamp with time zone) IS 'Queues one message to one contact on one channel, or says why it could not (inactive_contact, no_channel, no_provider, already_notified: the contact has the event''s resolution already)';

CREATE OR REPLACE FUNCTION evmgmt.notify_endpoint(p_kind text, p_provider_id text, p_event_id bigint, p_escalation_id bigint, p_operation_id text, p_vars jsonb, p_now timestamp with time zone, OUT outcome text, OUT notification_id bigint, OUT recipient text)
 RETURNS record
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
	m record;
	q record;
BEGIN
	SELECT p.endpoint INTO recipient FROM evmgmt.channel_provider p
	WHERE p.provider_id = p_provider_id AND p.active AND p.channel = 'webhook';
	IF recipient IS NULL THEN
		outcome := 'no_provider';
		RETURN;
	END IF;
	-- ack_url, ack_token for signed callbacks (sql/install/66_listener.sql)
	p_vars := p_vars || evmgmt.action_fields(p_escalation_id, NULL, 'webhook');
	SELECT * INTO m FROM evmgmt.render_message(p_kind, 'webhook', p_operation_id, p_vars);
	SELECT * INTO q FROM evmgmt.enqueue_notification(p_kind, 'webhook', p_provider_id, NULL, recipient, p_event_id,
													 p_escalation_id, p_operation_id, m.subject, m.body,
													 p_vars || pg_catalog.jsonb_build_object('kind', p_kind, 'channel', 'webhook'), p_now);
	notification_id := q.notification_id;
	outcome := 'queued';
END
$function$
;
COMMENT ON FUNCTION evmgmt.notify_endpoint(text,text,bigint,bigint,text,jsonb,timestamp with time zone) IS 'Queues one message to a webhook endpoint, or says no_provider when the endpoint is missing or inactive';

CREATE OR REPLACE FUNCTION evmgmt.render_message(kind text, channel evmgmt.channel, operation_id text, vars jsonb, OUT subject text, OUT body text)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
	t record;
BEGIN
	SELECT m.subject, m.body, m.max_length INTO t
	FROM evmgmt.message_template m
	WHERE m.kind = $1 AND m.channel = $2 AND (m.operation_id = $3 OR m.builtin)
	ORDER BY m.builtin
	LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no message template for kind "%" and channel %', $1, $2
			USING ERRCODE = 'undefined_object',
				  HINT = 'The built-in templates cover every kind and channel; restore them by recreating the extension.';
	END IF;
	subject := evmgmt.fill_template_fields(t.subject, vars);
	body := evmgmt.fill_template_fields(t.body, vars);
	-- A page that can be acknowledged from where it lands says how, even when
	-- its template has no {{ack_...}} field: first on SMS (so that cutting
	-- keeps it), last elsewhere.
	IF $1 = 'escalation_step' AND COALESCE(vars ->> 'ack_hint', '') <> '' AND t.body !~ '\{\{ack_' THEN
		body := CASE WHEN $2 = 'sms' THEN (vars ->> 'ack_hint') || ' ' || body
					 ELSE body || CASE WHEN $2 = 'email' THEN E'\n\n' ELSE ' ' END || (vars ->> 'ack_hint') END;
	END IF;
	body := evmgmt.fit_length(body, t.max_length);
END
$function$
;
COMMENT ON FUNCTION evmgmt.render_message(text,evmgmt.channel,text,jsonb) IS 'Renders the subject and body of a message from the operation''s template or the built-in one (with the ack hint of a page whose template has no {{ack_...}} field), cut to the channel''s length';

CREATE OR REPLACE VIEW evmgmt.escalation_history AS
 SELECT r.run_id,
    r.escalation_id,
    e.event_id,
    e.pool,
    e.plan_id,
    e.start_reason,
    r.cycle,
    r.step_no,
    r.retry_no,
    r.scheduled_at,
    r.due_at,
    r.fired_at,
    (r.fired_at - r.due_at) AS late_by,
    r.channel,
    r.contact_id,
    c.name AS contact_name,
        CASE
            WHEN pg_has_role('evmgmt_responder'::name, 'USAGE'::text) THEN r.recipient
            ELSE evmgmt.mask_address(r.recipient)
        END AS recipient,
    r.outcome,
    r.detail,
    r.notification_id,
    n.kind AS notification_kind,
    n.state AS delivery_state,
    n.attempts AS delivery_attempts,
    n.sent_at,
    n.last_status AS delivery_status,
        CASE
            WHEN pg_has_role('evmgmt_admin'::name, 'USAGE'::text) THEN n.last_error
            WHEN pg_has_role('evmgmt_responder'::name, 'USAGE'::text) THEN evmgmt.redact_text(n.last_error, false)
            WHEN (n.last_error IS NOT NULL) THEN '(hidden)'::text
            ELSE NULL::text
        END AS delivery_error,
    d.finished_at AS last_attempt_at,
    (d.finished_at - d.started_at) AS last_attempt_latency,
    k.acked_at AS recipient_acknowledged_at,
    e.acknowledged_at,
    ac.name AS acknowledged_by,
    ka.channel AS acknowledged_via,
        CASE
            WHEN (e.state = 'acknowledged'::text) THEN ((((('acknowledged by '::text || ac.name) || ' via '::text) || COALESCE(ka.channel, 'sql'::text)) || ' at '::text) || to_char((e.acknowledged_at AT TIME ZONE ac.time_zone), 'HH24:MI:SS'::text))
            ELSE NULL::text
        END AS acknowledgment
   FROM (((((((evmgmt.escalation_step_run r
     JOIN evmgmt.escalation e ON ((e.escalation_id = r.escalation_id)))
     LEFT JOIN evmgmt.contact c ON ((c.contact_id = r.contact_id)))
     LEFT JOIN evmgmt.notification n ON ((n.notification_id = r.notification_id)))
     LEFT JOIN LATERAL ( SELECT x.started_at,
            x.finished_at
           FROM evmgmt.delivery_attempt x
          WHERE (x.notification_id = r.notification_id)
          ORDER BY x.attempt_no DESC
         LIMIT 1) d ON (true))
     LEFT JOIN evmgmt.escalation_ack k ON (((k.escalation_id = r.escalation_id) AND (k.contact_id = r.contact_id))))
     LEFT JOIN evmgmt.contact ac ON ((ac.contact_id = e.acknowledged_by)))
     LEFT JOIN evmgmt.escalation_ack ka ON (((ka.escalation_id = e.escalation_id) AND (ka.contact_id = e.acknowledged_by))));
COMMENT ON VIEW evmgmt.escalation_history IS 'Every step an escalation fired, per recipient: scheduled, due and fired time, late_by, channel, recipient (masked unless the reader is a responder), typed outcome, delivery result (the error raw for admins, with credentials scrubbed for responders, hidden from readers), acknowledgment (who, the channel it came by, when in the acknowledger''s time zone)';


-- the listener's audit triggers and its append-only guard hold under session_replication_role = replica
ALTER TABLE evmgmt.action_key ENABLE ALWAYS TRIGGER audit, ENABLE ALWAYS TRIGGER audit_truncate;
ALTER TABLE evmgmt.listener_refusal ENABLE ALWAYS TRIGGER listener_refusal_append_only;

-- The listener runs as evmgmt_worker too (security section above): its one
-- entry point runs as the extension's owner, and is the only listener
-- function the role may execute
ALTER FUNCTION evmgmt.listener_handle(text, text, text, text[], text[], text[], text, text) SECURITY DEFINER;
GRANT EXECUTE ON FUNCTION evmgmt.listener_handle(text, text, text, text[], text[], text[], text, text) TO evmgmt_worker;

-- escalation_history was defined again above (the acknowledgment columns):
-- it keeps only the acting role's sites again (86_site_scope.sql)
SELECT evmgmt.restrict_view_to_site_scope('escalation_history');


-- ===========================================================================
-- Voice keypress, the push button and continuous testing of the paging path
-- (issue 11): tokens may carry bit 8 (confirm a test page); voice pages get
-- a <Gather> URL (action_fields: gather_url); the listener confirms test
-- pages and takes a call's keypress by its token (listener_ack_link,
-- listener_twilio, escalation_reply); paging_test, channel_verification,
-- paging_readiness and send_test_page are new (67_paging_tests.sql).
-- ===========================================================================
CREATE OR REPLACE FUNCTION evmgmt.action_token(escalation_id bigint, contact_id bigint, channel evmgmt.channel,
									actions integer DEFAULT 3, expires timestamptz DEFAULT pg_catalog.now() + interval '30 days')
	RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k record;
	payload bytea;
BEGIN
	IF $4 IS NULL OR $4 < 1 OR $4 > 15 THEN
		RAISE EXCEPTION 'actions must be between 1 and 15' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'Bit 1 is acknowledge, 2 pass, 4 resolve, 8 confirm a test page (67_paging_tests.sql).';
	END IF;
	SELECT * INTO k FROM evmgmt.current_action_key();
	payload := '\x01'::bytea || pg_catalog.int4send(k.key_id) || pg_catalog.int8send($1) || pg_catalog.int8send(COALESCE($2, 0))
			   || pg_catalog.set_byte('\x00'::bytea, 0, pg_catalog.array_position(pg_catalog.enum_range(NULL::evmgmt.channel), $3))
			   || pg_catalog.set_byte('\x00'::bytea, 0, $4)
			   || pg_catalog.int8send(pg_catalog.floor(pg_catalog.date_part('epoch', $5))::bigint);
	RETURN pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(payload || evmgmt.action_token_mac(k.secret, payload), 'base64'),
												 E'+/\n', '-_'), '=');
END
$$;
COMMENT ON FUNCTION evmgmt.action_token(bigint, bigint, evmgmt.channel, integer, timestamptz) IS 'A signed action token naming an escalation, a contact, the channel it is sent on and the allowed actions (bits: 1 acknowledge, 2 pass, 4 resolve, 8 confirm a test page: the id is then the test''s), valid until expires';

CREATE OR REPLACE FUNCTION evmgmt.action_fields(escalation_id bigint, contact_id bigint, channel evmgmt.channel) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	base text := pg_catalog.rtrim(COALESCE(pg_catalog.current_setting('evmgmt.public_base_url', true), ''), '/');
	v_token text;
	v_code text;
BEGIN
	IF $1 IS NULL OR base = '' THEN
		RETURN '{}';
	END IF;
	v_token := evmgmt.action_token($1, $2, $3, CASE WHEN $3 = 'webhook' THEN 5 ELSE 3 END);
	v_code := evmgmt.ack_code($1, $2);
	RETURN pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('ack_url', base || '/ack/' || v_token, 'ack_token', v_token, 'ack_code', v_code,
		-- where an outbound call's <Gather> posts its digit (src/http.c)
		'gather_url', CASE WHEN $3 = 'voice' THEN base || '/twilio/voice?token=' || v_token END,
		'ack_hint', CASE $3
			WHEN 'sms' THEN 'Reply 1 to ack, 2 to pass (ACK ' || v_code || ').'
			WHEN 'voice' THEN 'Press 1 to acknowledge, 2 to pass it on.'
			WHEN 'webhook' THEN ''
			ELSE 'Acknowledge: ' || base || '/ack/' || v_token END));
END
$$;
COMMENT ON FUNCTION evmgmt.action_fields(bigint, bigint, evmgmt.channel) IS 'The template fields ack_url (evmgmt.public_base_url/ack/<token>), ack_token, ack_code and ack_hint (how to acknowledge on that channel) of a message to a contact, and for voice gather_url (where the call''s keypress is posted), or {} when there is no base URL or escalation';

CREATE OR REPLACE FUNCTION evmgmt.listener_ack_link(method text, token text, source text, path text,
										 OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	e record;
	v_name text;
	v_result text;
	v_what text;
BEGIN
	SELECT * INTO t FROM evmgmt.read_action_token(token);
	IF NOT t.ok THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'token ' || t.reason, source);
		RETURN;
	END IF;
	IF t.actions & 8 <> 0 THEN
		-- a test page's link (67_paging_tests.sql)
		SELECT * INTO status, content_type, body FROM evmgmt.listener_test_link(method, t.escalation_id, t.contact_id, source, path);
		RETURN;
	END IF;
	SELECT x.escalation_id, x.state, x.ended_at, x.event_id, x.pool, ev.title, ev.site_id, pc.severity
	INTO e
	FROM evmgmt.escalation x
	JOIN evmgmt.event ev ON ev.event_id = x.event_id
	JOIN evmgmt.pool_condition pc ON pc.event_id = x.event_id AND pc.pool = x.pool
	WHERE x.escalation_id = t.escalation_id;
	IF NOT FOUND THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'unknown escalation', source, t.escalation_id);
		RETURN;
	END IF;
	IF e.ended_at IS NOT NULL AND e.ended_at < pg_catalog.now() - evmgmt.action_token_grace() THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'escalation ended before the grace period', source, t.escalation_id);
		RETURN;
	END IF;
	SELECT c.name INTO v_name FROM evmgmt.contact c WHERE c.contact_id = t.contact_id AND c.active;
	IF NOT FOUND THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'contact unknown or inactive', source, t.escalation_id);
		RETURN;
	END IF;
	v_what := 'Escalation ' || e.escalation_id || ' of event ' || e.event_id || ': ' || e.title
			  || ' (' || COALESCE(e.severity::text, 'unclassified') || ', site ' || e.site_id || ', pool ' || e.pool || ')';
	status := 200;
	content_type := 'text/html; charset=utf-8';

	IF method = 'POST' THEN
		IF t.actions & 1 = 0 THEN
			SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, method, path, 'action not allowed by the token', source, t.escalation_id);
			RETURN;
		END IF;
		IF e.state IN ('active', 'exhausted') THEN
			v_result := evmgmt.listener_acknowledge(e.escalation_id, t.contact_id, t.channel::text, source, 'acknowledged via ' || t.channel || ' link');
		ELSE
			v_result := 'already';
		END IF;
		IF v_result = 'acknowledged' THEN
			body := evmgmt.listener_page('Acknowledged', '<p>' || evmgmt.html_escape(v_what) || '</p><p>Thank you, '
										 || evmgmt.html_escape(v_name) || '. The escalation is stopped.</p>');
		ELSIF v_result = 'waiting' THEN
			body := evmgmt.listener_page('Acknowledged', '<p>' || evmgmt.html_escape(v_what) || '</p><p>Thank you, '
										 || evmgmt.html_escape(v_name) || '. The plan waits for the other responders too.</p>');
		ELSE
			body := evmgmt.listener_page('Already ' || pg_catalog.split_part(evmgmt.escalation_outcome_text(e.escalation_id), ' ', 1),
										 '<p>' || evmgmt.html_escape(v_what) || '</p><p>This escalation was already '
										 || evmgmt.html_escape(evmgmt.escalation_outcome_text(e.escalation_id)) || '.</p>');
		END IF;
		RETURN;
	END IF;

	-- GET: a confirmation page, nothing changes
	IF e.state IN ('active', 'exhausted')
	   AND NOT EXISTS (SELECT FROM evmgmt.escalation_ack a WHERE a.escalation_id = e.escalation_id AND a.contact_id = t.contact_id) THEN
		body := evmgmt.listener_page('Acknowledge?', '<p>' || evmgmt.html_escape(v_what) || '</p><p>Paged: '
									 || evmgmt.html_escape(v_name) || ' via ' || t.channel || '.</p>'
									 || '<form method="post"><button type="submit">Acknowledge</button></form>');
	ELSE
		body := evmgmt.listener_page('Already ' || pg_catalog.split_part(evmgmt.escalation_outcome_text(e.escalation_id), ' ', 1),
									 '<p>' || evmgmt.html_escape(v_what) || '</p><p>This escalation was already '
									 || evmgmt.html_escape(evmgmt.escalation_outcome_text(e.escalation_id)) || '.</p>');
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.listener_ack_link(text, text, text, text) IS 'The ack link: GET shows a confirmation page (changes nothing), POST acknowledges; an escalation acknowledged or ended says what happened and by whom';

CREATE OR REPLACE FUNCTION evmgmt.escalation_reply(escalation_id bigint, contact_id bigint, phone text, act text, channel text,
										OUT answer text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_title text;
	v_name text;
	v_result text;
BEGIN
	SELECT ev.title INTO v_title FROM evmgmt.escalation e JOIN evmgmt.event ev ON ev.event_id = e.event_id
	WHERE e.escalation_id = $1;
	SELECT c.name INTO v_name FROM evmgmt.contact c WHERE c.contact_id = $2;
	IF v_title IS NULL THEN
		answer := 'That escalation no longer exists.';
		RETURN;
	END IF;
	IF act = 'pass' THEN
		v_result := evmgmt.pass_escalation($1, $2, channel, evmgmt.mask_address(phone));
		answer := CASE WHEN v_result = 'passed' THEN 'Passed escalation ' || $1 || ' (' || v_title || ') to the next step.'
					   ELSE 'Escalation ' || $1 || ' is ' || evmgmt.escalation_outcome_text($1) || '.' END;
		RETURN;
	END IF;
	v_result := evmgmt.listener_acknowledge($1, $2, channel, evmgmt.mask_address(phone), 'acknowledged by ' || channel || ' reply');
	answer := CASE v_result
		WHEN 'acknowledged' THEN 'Acknowledged escalation ' || $1 || ' (' || v_title || '). Thank you, ' || v_name || '.'
		WHEN 'waiting' THEN 'Acknowledged escalation ' || $1 || '; the others paged are still asked too. Thank you, ' || v_name || '.'
		ELSE 'Escalation ' || $1 || ' was already ' || evmgmt.escalation_outcome_text($1) || '.' END;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_reply(bigint, bigint, text, text, text) IS 'Acknowledges (act ack) or passes (act pass) one escalation for a contact who answered by phone, and returns the answer to send or say';

CREATE OR REPLACE FUNCTION evmgmt.phone_reply(phone text, code text, act text, channel text, OUT status integer, OUT answer text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	x record;
BEGIN
	status := 200;
	SELECT * INTO x FROM evmgmt.phone_reply_target(phone, code, true);
	IF x.escalation_id IS NULL THEN
		SELECT * INTO x FROM evmgmt.phone_reply_target(phone, code, false);
		IF x.escalation_id IS NULL THEN
			answer := CASE WHEN code IS NULL THEN 'Nothing is waiting for you to acknowledge.'
						   ELSE 'No escalation matches code ' || code || '.' END;
		ELSE
			answer := 'Escalation ' || x.escalation_id || ' was already ' || evmgmt.escalation_outcome_text(x.escalation_id) || '.';
		END IF;
		RETURN;
	END IF;
	answer := evmgmt.escalation_reply(x.escalation_id, x.contact_id, phone, act, channel);
END
$$;
COMMENT ON FUNCTION evmgmt.phone_reply(text, text, text, text) IS 'Acknowledges or passes the escalation a phone reply is about (by code, or the most recent) and returns the answer for the caller';

CREATE OR REPLACE FUNCTION evmgmt.listener_twilio(kind evmgmt.channel, uri text, form text[], headers text[], source text, path text,
									   OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_phone text;
	v_text text;
	v_code text;
	v_act text;
	v_token text;
	m text[];
	r record;
	t record;
	x record;
BEGIN
	IF NOT evmgmt.twilio_request_valid(kind, uri, form, evmgmt.listener_param(headers, 'X-Twilio-Signature')) THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(403, 'POST', path, 'bad or missing X-Twilio-Signature', source);
		RETURN;
	END IF;
	-- an inbound SMS comes From the contact; a gathered digit of our outbound call goes To them
	v_phone := evmgmt.listener_param(form, CASE WHEN kind = 'sms' THEN 'From' ELSE 'To' END);
	IF v_phone IS NULL OR NOT EXISTS (SELECT FROM evmgmt.contact_channel cc JOIN evmgmt.contact c ON c.contact_id = cc.contact_id AND c.active
									  WHERE cc.channel IN ('sms', 'voice') AND cc.address = v_phone) THEN
		SELECT * INTO status, content_type, body
		FROM evmgmt.listener_refuse(403, 'POST', path, 'unknown number ' || COALESCE(evmgmt.mask_address(v_phone), '(none)'), source);
		RETURN;
	END IF;
	v_text := pg_catalog.upper(pg_catalog.btrim(COALESCE(evmgmt.listener_param(form, CASE WHEN kind = 'sms' THEN 'Body' ELSE 'Digits' END), ''), E' \t\r\n.!'));
	m := pg_catalog.regexp_match(v_text, '^(1|ACK|YES|OK|2|PASS)(\s+([0-9]{6}))?$');
	IF m IS NULL THEN
		status := 200;
		content_type := 'text/xml; charset=utf-8';
		body := evmgmt.twiml(CASE WHEN kind = 'sms' THEN 'Message' ELSE 'Say' END,
							 CASE WHEN kind = 'sms' THEN 'Reply 1 or ACK to acknowledge, 2 or PASS to pass it on (ACK 123456 with the code for one page among several).'
								  ELSE 'Goodbye.' END);
		RETURN;
	END IF;
	v_act := CASE WHEN m[1] IN ('2', 'PASS') THEN 'pass' ELSE 'ack' END;
	v_code := m[3];
	content_type := 'text/xml; charset=utf-8';
	status := 200;
	-- the keypress of a call: its <Gather> URL carries the page's (or test's) token
	v_token := pg_catalog.substring(uri, '[?&]token=([A-Za-z0-9_-]{1,200})');
	IF kind = 'voice' AND v_token IS NOT NULL THEN
		SELECT * INTO t FROM evmgmt.read_action_token(v_token);
		IF NOT t.ok OR t.channel <> 'voice' THEN
			SELECT * INTO status, content_type, body
			FROM evmgmt.listener_refuse(403, 'POST', path, 'voice token ' || COALESCE(t.reason, 'for another channel'), source);
			RETURN;
		END IF;
		IF t.actions & 8 <> 0 THEN
			body := evmgmt.twiml('Say', CASE evmgmt.confirm_test_page(t.escalation_id, t.contact_id, evmgmt.mask_address(v_phone))
				WHEN 'confirmed' THEN 'Thank you. This phone is confirmed for pages. Goodbye.'
				WHEN 'already' THEN 'This test page was already confirmed. Goodbye.'
				ELSE 'This test page has expired. Goodbye.' END);
			RETURN;
		END IF;
		SELECT * INTO r FROM evmgmt.escalation_reply(t.escalation_id, t.contact_id, v_phone, v_act, 'voice');
		body := evmgmt.twiml('Say', r.answer);
		RETURN;
	END IF;
	-- a reply to a test page (newer than any page to the number) confirms it
	IF v_act = 'ack' AND v_code IS NULL THEN
		SELECT * INTO x FROM evmgmt.phone_test_target(v_phone, kind);
		IF x.test_id IS NOT NULL THEN
			PERFORM evmgmt.confirm_test_page(x.test_id, x.contact_id, evmgmt.mask_address(v_phone));
			body := evmgmt.twiml(CASE WHEN kind = 'sms' THEN 'Message' ELSE 'Say' END,
								 'Thank you. This phone is confirmed for pages.');
			RETURN;
		END IF;
	END IF;
	SELECT * INTO r FROM evmgmt.phone_reply(v_phone, v_code, v_act, kind::text);
	status := r.status;
	content_type := 'text/xml; charset=utf-8';
	body := evmgmt.twiml(CASE WHEN kind = 'sms' THEN 'Message' ELSE 'Say' END, r.answer);
END
$$;
COMMENT ON FUNCTION evmgmt.listener_twilio(evmgmt.channel, text, text[], text[], text, text) IS 'Inbound SMS (sms) and gathered voice digits (voice) from a Twilio-compatible provider: signature checked, the number must be a contact''s; acknowledges or passes, answers TwiML';

-- Continuous testing of the paging path (issue 11): a test page on one of a
-- contact's channels, confirmed through that same channel (the ack link's
-- page or the push button, an SMS reply, the call's keypress), marks the
-- channel verified; paging_readiness shows, for the next 7 days, the plan
-- steps that would reach nobody, before a real event finds out.
--
-- A test page's token carries the test's id where a page's names its
-- escalation, and only the action bit 8 ("confirm a test page"), so that a
-- test token can never acknowledge an escalation and a page's token never
-- confirms a test (65_action_tokens.sql).

CREATE TABLE evmgmt.paging_test (
	test_id			bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	contact_id		bigint NOT NULL REFERENCES evmgmt.contact ON DELETE CASCADE,
	channel			evmgmt.channel NOT NULL CONSTRAINT paging_test_person_channel CHECK (channel <> 'webhook'),
	address			text NOT NULL,
	requested_by	text NOT NULL,
	sent_at			timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	expires_at		timestamptz NOT NULL,
	notification_id	bigint REFERENCES evmgmt.notification ON DELETE SET NULL,
	confirmed_at	timestamptz,
	confirmed_via	text,
	CONSTRAINT paging_test_expires_after_sent CHECK (expires_at > sent_at)
);
CREATE INDEX ON evmgmt.paging_test (contact_id, channel, address, confirmed_at);
CREATE INDEX ON evmgmt.paging_test (address) WHERE confirmed_at IS NULL;
COMMENT ON TABLE evmgmt.paging_test IS 'Test pages sent to a contact''s channel and when (and how) they were confirmed through that channel (contact data: admins only; readers see channel_verification)';
COMMENT ON COLUMN evmgmt.paging_test.confirmed_via IS 'Where the confirmation came from: the masked phone number or the client address';

-- Whether each of a contact's addresses has been confirmed by a test page
-- (a changed address is a new row of contact_channel, so it starts
-- unverified).
CREATE VIEW evmgmt.channel_verification AS
SELECT cc.contact_id, c.name AS contact_name, cc.channel, evmgmt.mask_address(cc.address) AS address, cc.priority,
	   v.confirmed_at AS verified_at, t.sent_at AS last_test_at,
	   (t.sent_at IS NOT NULL AND t.confirmed_at IS NULL AND t.expires_at < pg_catalog.now()) AS last_test_unconfirmed
FROM evmgmt.contact_channel cc
JOIN evmgmt.contact c ON c.contact_id = cc.contact_id
LEFT JOIN LATERAL (SELECT pg_catalog.max(p.confirmed_at) AS confirmed_at FROM evmgmt.paging_test p
				   WHERE p.contact_id = cc.contact_id AND p.channel = cc.channel AND p.address = cc.address) v ON true
LEFT JOIN LATERAL (SELECT p.sent_at, p.confirmed_at, p.expires_at FROM evmgmt.paging_test p
				   WHERE p.contact_id = cc.contact_id AND p.channel = cc.channel AND p.address = cc.address
				   ORDER BY p.sent_at DESC LIMIT 1) t ON true;
COMMENT ON VIEW evmgmt.channel_verification IS 'Every contact channel (address masked) with the last time a test page on it was confirmed (verified_at, NULL: never), the last test sent, and whether that test expired unconfirmed';

-- Send a test page: an admin for any contact, a contact for themselves.
CREATE FUNCTION evmgmt.send_test_page(contact_id bigint, channel evmgmt.channel) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	base text := pg_catalog.rtrim(COALESCE(pg_catalog.current_setting('evmgmt.public_base_url', true), ''), '/');
	v_role name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = evmgmt.acting_role());
	c record;
	v_address text;
	v_provider text;
	v_id bigint;
	v_expires timestamptz := pg_catalog.now() + interval '1 hour';
	v_token text;
	v_url text;
	v_gather text;
	v_subject text;
	v_body text;
	v_nid bigint;
BEGIN
	SELECT x.contact_id, x.name, x.role_name, x.active INTO c FROM evmgmt.contact x WHERE x.contact_id = send_test_page.contact_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'contact % does not exist', contact_id USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT pg_catalog.pg_has_role(evmgmt.acting_role(), 'evmgmt_admin', 'USAGE') AND c.role_name IS DISTINCT FROM v_role THEN
		RAISE EXCEPTION 'permission denied to send a test page to contact %', contact_id
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Members of evmgmt_admin may test any contact''s channels; a contact may test their own.';
	END IF;
	IF channel IS NULL OR channel = 'webhook' THEN
		RAISE EXCEPTION 'test pages go to a person''s channel (sms, voice, push or email)' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT c.active THEN
		RAISE EXCEPTION 'contact % is inactive', contact_id USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF base = '' THEN
		RAISE EXCEPTION 'test pages need evmgmt.public_base_url' USING ERRCODE = 'object_not_in_prerequisite_state',
			HINT = 'A test page is confirmed through the HTTP listener (docs/listener.md); set evmgmt.public_base_url and evmgmt.http_listen.';
	END IF;
	SELECT cc.address INTO v_address FROM evmgmt.contact_channel cc
	WHERE cc.contact_id = send_test_page.contact_id AND cc.channel = send_test_page.channel
	ORDER BY cc.priority, cc.address LIMIT 1;
	IF v_address IS NULL THEN
		RAISE EXCEPTION 'contact % has no % address', contact_id, channel USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	SELECT p.provider_id INTO v_provider FROM evmgmt.channel_provider p
	WHERE p.channel = send_test_page.channel AND p.active ORDER BY p.provider_id LIMIT 1;
	IF v_provider IS NULL THEN
		RAISE EXCEPTION 'no active provider for channel %', channel USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	-- a test page is a real message to a real person: a few an hour at most
	IF (SELECT pg_catalog.count(*) FROM evmgmt.paging_test p
		WHERE p.contact_id = send_test_page.contact_id AND p.sent_at > pg_catalog.now() - interval '1 hour') >= 5 THEN
		RAISE EXCEPTION 'contact % had 5 test pages in the last hour', contact_id USING ERRCODE = 'program_limit_exceeded',
			HINT = 'Wait for the earlier test pages to be confirmed or to expire.';
	END IF;

	INSERT INTO evmgmt.paging_test (contact_id, channel, address, requested_by, expires_at)
	VALUES (c.contact_id, channel, v_address, v_role, v_expires)
	RETURNING test_id INTO v_id;
	v_token := evmgmt.action_token(v_id, c.contact_id, channel, 8, v_expires);
	v_url := base || '/ack/' || v_token;
	v_gather := CASE WHEN channel = 'voice' THEN base || '/twilio/voice?token=' || v_token END;
	v_subject := 'evmgmt test page for ' || c.name;
	v_body := CASE channel
		WHEN 'sms' THEN 'evmgmt test page for ' || c.name || '. Reply 1 to confirm this phone receives pages.'
		WHEN 'voice' THEN 'This is a test page from evmgmt for ' || c.name || '.'
		WHEN 'push' THEN 'Test page for ' || c.name || ': press Confirm, or open ' || v_url
		ELSE 'This is a test page for ' || c.name || '. Open this link and press Confirm, so that the ROC knows this address '
			 || 'receives pages: ' || v_url || E'\n\nThe link is valid for an hour.' END;
	INSERT INTO evmgmt.notification (kind, channel, provider_id, contact_id, recipient, subject, body, payload)
	VALUES ('test', channel, v_provider, c.contact_id, v_address, v_subject, v_body,
			pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
				'kind', 'test', 'test_id', v_id, 'channel', channel, 'contact_id', c.contact_id,
				'ack_url', v_url, 'ack_label', 'Confirm', 'gather_url', v_gather,
				'gather_prompt', 'Press 1 to confirm that this phone receives pages.')))
	RETURNING notification_id INTO v_nid;
	UPDATE evmgmt.paging_test SET notification_id = v_nid WHERE test_id = v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION evmgmt.send_test_page(bigint, evmgmt.channel) IS 'Sends a test page to a contact''s channel (admins for anyone, a contact for themselves; at most 5 per contact an hour); confirming it through the same channel within an hour marks the channel verified. Returns the test id';

-- Confirm a test page (the listener, after checking the token or number).
CREATE FUNCTION evmgmt.confirm_test_page(test_id bigint, contact_id bigint, source text) RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t record;
BEGIN
	SELECT p.* INTO t FROM evmgmt.paging_test p
	WHERE p.test_id = confirm_test_page.test_id AND p.contact_id = confirm_test_page.contact_id FOR UPDATE;
	IF NOT FOUND THEN
		RETURN 'unknown';
	ELSIF t.confirmed_at IS NOT NULL THEN
		RETURN 'already';
	ELSIF t.expires_at < pg_catalog.now() THEN
		RETURN 'expired';
	END IF;
	UPDATE evmgmt.paging_test p SET confirmed_at = pg_catalog.clock_timestamp(), confirmed_via = pg_catalog.left(source, 200)
	WHERE p.test_id = confirm_test_page.test_id;
	RETURN 'confirmed';
END
$$;
COMMENT ON FUNCTION evmgmt.confirm_test_page(bigint, bigint, text) IS 'Marks a test page confirmed (its channel verified): confirmed, already, expired or unknown';

-- The unconfirmed test page an SMS reply or a call answers: the newest one to
-- that number within its hour, when it is newer than any page of an
-- escalation to the number (a reply then is about the page).
CREATE FUNCTION evmgmt.phone_test_target(phone text, channel evmgmt.channel, OUT test_id bigint, OUT contact_id bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT p.test_id, p.contact_id FROM evmgmt.paging_test p
	WHERE p.address = phone AND p.channel = phone_test_target.channel AND p.confirmed_at IS NULL
	  AND p.expires_at > pg_catalog.now()
	  AND NOT EXISTS (SELECT FROM evmgmt.escalation_step_run r
					  WHERE r.recipient = phone AND r.channel IN ('sms', 'voice') AND r.fired_at > p.sent_at)
	ORDER BY p.sent_at DESC LIMIT 1;
END;
COMMENT ON FUNCTION evmgmt.phone_test_target(text, evmgmt.channel) IS 'The unconfirmed test page a phone reply is about: the newest one to the number within its hour and newer than any escalation page to it';

-- What each active plan step would reach over the next 7 days, and where it
-- would reach nobody.  One row per finding:
--   inactive_provider   no active provider for the step's channel (or its endpoint is inactive)
--   window_never_opens  the step's weekdays and working hours do not open within 7 days at a site the plan covers
--   rota_gap            a stretch with nobody (active) on shift in the step's rota
--   empty_group         the step's group has no active member
--   inactive_contact    the step names an inactive contact
--   no_channel          a target contact has no address for the step's channel
--   unverified_channel  a target contact's addresses for the channel were never confirmed by a test page
CREATE VIEW evmgmt.paging_readiness AS
WITH horizon AS (
	SELECT pg_catalog.now() AS from_at, pg_catalog.now() + interval '7 days' AS until
),
steps AS (
	SELECT s.*, p.name AS plan_name, p.operation_id, p.site_ids
	FROM evmgmt.escalation_step s JOIN evmgmt.escalation_plan p ON p.plan_id = s.plan_id
	WHERE p.active
),
-- the contacts a step reaches (rota: anyone with a shift in the horizon)
targets AS (
	SELECT s.plan_id, s.step_no, s.channel, s.contact_id FROM steps s WHERE s.target_kind = 'contact'
	UNION
	SELECT s.plan_id, s.step_no, s.channel, m.contact_id
	FROM steps s JOIN evmgmt.group_member m ON m.group_id = s.group_id
	JOIN evmgmt.contact c ON c.contact_id = m.contact_id AND c.active
	WHERE s.target_kind = 'group'
	UNION
	SELECT s.plan_id, s.step_no, s.channel, r.contact_id
	FROM steps s CROSS JOIN horizon h JOIN evmgmt.rota_shift r ON r.rota_id = s.rota_id
	JOIN evmgmt.contact c ON c.contact_id = r.contact_id AND c.active
	WHERE s.target_kind = 'rota' AND r.during && pg_catalog.tstzrange(h.from_at, h.until)
),
findings AS (
	SELECT s.plan_id, s.step_no, s.channel, s.target_kind, NULL::bigint AS contact_id,
		   'inactive_provider' AS problem,
		   CASE WHEN s.target_kind = 'endpoint' THEN 'endpoint ' || s.provider_id || ' is inactive or missing'
				ELSE 'no active ' || s.channel || ' provider' END AS detail,
		   h.from_at AS starts_at, h.until AS ends_at
	FROM steps s CROSS JOIN horizon h
	WHERE CASE WHEN s.target_kind = 'endpoint'
			   THEN NOT EXISTS (SELECT FROM evmgmt.channel_provider p WHERE p.provider_id = s.provider_id AND p.active)
			   ELSE NOT EXISTS (SELECT FROM evmgmt.channel_provider p WHERE p.channel = s.channel AND p.active) END
	UNION ALL
	SELECT s.plan_id, s.step_no, s.channel, s.target_kind, NULL, 'window_never_opens',
		   'at site ' || st.site_id || ' (' || st.time_zone || ') the step''s '
		   || CASE WHEN s.working_hours_only THEN 'working hours' ELSE 'weekdays' END || ' do not open within 7 days',
		   h.from_at, h.until
	FROM steps s CROSS JOIN horizon h
	JOIN evmgmt.site st ON (s.site_ids IS NULL OR st.site_id = ANY (s.site_ids))
					   AND (s.operation_id IS NULL OR st.operation_id = s.operation_id)
	WHERE (s.days_of_week IS NOT NULL OR s.working_hours_only)
	  AND COALESCE(evmgmt.next_time_window(h.from_at, st.time_zone, st.calendar_id, s.days_of_week, s.working_hours_only)
				   >= h.until, true)
	UNION ALL
	SELECT s.plan_id, s.step_no, s.channel, s.target_kind, NULL, 'rota_gap',
		   'nobody is on shift in rota ' || s.rota_id, pg_catalog.lower(g.gap), pg_catalog.upper(g.gap)
	FROM steps s CROSS JOIN horizon h
	CROSS JOIN LATERAL pg_catalog.unnest(
		pg_catalog.tstzmultirange(pg_catalog.tstzrange(h.from_at, h.until))
		- COALESCE((SELECT pg_catalog.range_agg(r.during) FROM evmgmt.rota_shift r
					JOIN evmgmt.contact c ON c.contact_id = r.contact_id AND c.active
					WHERE r.rota_id = s.rota_id), '{}'::tstzmultirange)) AS g(gap)
	WHERE s.target_kind = 'rota'
	UNION ALL
	SELECT s.plan_id, s.step_no, s.channel, s.target_kind, NULL, 'empty_group',
		   'group ' || s.group_id || ' has no active member', h.from_at, h.until
	FROM steps s CROSS JOIN horizon h
	WHERE s.target_kind = 'group'
	  AND NOT EXISTS (SELECT FROM evmgmt.group_member m JOIN evmgmt.contact c ON c.contact_id = m.contact_id AND c.active
					  WHERE m.group_id = s.group_id)
	UNION ALL
	SELECT t.plan_id, t.step_no, t.channel, 'contact', t.contact_id, 'inactive_contact',
		   'contact ' || c.name || ' is inactive', h.from_at, h.until
	FROM targets t CROSS JOIN horizon h JOIN evmgmt.contact c ON c.contact_id = t.contact_id
	WHERE NOT c.active
	UNION ALL
	SELECT t.plan_id, t.step_no, t.channel, s.target_kind, t.contact_id,
		   CASE WHEN a.addresses = 0 THEN 'no_channel' ELSE 'unverified_channel' END,
		   c.name || CASE WHEN a.addresses = 0 THEN ' has no ' || t.channel || ' address'
						  ELSE '''s ' || t.channel || ' address was never confirmed by a test page' END,
		   h.from_at, h.until
	FROM targets t CROSS JOIN horizon h
	JOIN steps s ON s.plan_id = t.plan_id AND s.step_no = t.step_no
	JOIN evmgmt.contact c ON c.contact_id = t.contact_id AND c.active
	-- the contact's addresses for the channel, and whether a test page confirmed any
	CROSS JOIN LATERAL (
		SELECT pg_catalog.count(*) AS addresses,
			   COALESCE(pg_catalog.bool_or(EXISTS (SELECT FROM evmgmt.paging_test p
												   WHERE p.contact_id = cc.contact_id AND p.channel = cc.channel
													 AND p.address = cc.address AND p.confirmed_at IS NOT NULL)), false) AS verified
		FROM evmgmt.contact_channel cc WHERE cc.contact_id = t.contact_id AND cc.channel = t.channel) a
	WHERE t.channel <> 'webhook' AND NOT a.verified
)
SELECT f.plan_id, f.step_no, f.channel, f.target_kind, f.contact_id, f.problem, f.detail, f.starts_at, f.ends_at
FROM findings f;
COMMENT ON VIEW evmgmt.paging_readiness IS 'For the next 7 days, the steps of active escalation plans that would reach nobody, one row per finding: inactive_provider, window_never_opens, rota_gap (starts_at/ends_at: the gap), empty_group, inactive_contact, no_channel, unverified_channel';

-- GET and POST of a test page's /ack/<token> (listener_ack_link hands it
-- over): GET shows what is being confirmed and changes nothing, POST
-- confirms.
CREATE FUNCTION evmgmt.listener_test_link(method text, test_id bigint, contact_id bigint, source text, path text,
										  OUT status integer, OUT content_type text, OUT body text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	t record;
	v_result text;
	v_what text;
BEGIN
	SELECT p.channel, p.address, p.confirmed_at, p.expires_at, c.name INTO t
	FROM evmgmt.paging_test p JOIN evmgmt.contact c ON c.contact_id = p.contact_id AND c.active
	WHERE p.test_id = listener_test_link.test_id AND p.contact_id = listener_test_link.contact_id;
	IF NOT FOUND THEN
		SELECT * INTO status, content_type, body FROM evmgmt.listener_refuse(404, method, path, 'unknown test page', source);
		RETURN;
	END IF;
	status := 200;
	content_type := 'text/html; charset=utf-8';
	v_what := 'Test page ' || test_id || ' for ' || t.name || ' on ' || t.channel || ' (' || evmgmt.mask_address(t.address) || ')';
	IF method = 'POST' THEN
		v_result := evmgmt.confirm_test_page(test_id, contact_id, source);
		body := evmgmt.listener_page(CASE v_result WHEN 'confirmed' THEN 'Confirmed' WHEN 'already' THEN 'Already confirmed' ELSE 'Expired' END,
			'<p>' || evmgmt.html_escape(v_what) || '</p><p>' || CASE v_result
				WHEN 'confirmed' THEN 'Thank you, ' || evmgmt.html_escape(t.name) || '. This channel is verified for pages.'
				WHEN 'already' THEN 'This test page was already confirmed.'
				ELSE 'This test page has expired; ask for a new one.' END || '</p>');
		RETURN;
	END IF;
	IF t.confirmed_at IS NOT NULL THEN
		body := evmgmt.listener_page('Already confirmed', '<p>' || evmgmt.html_escape(v_what) || '</p><p>This test page was already confirmed.</p>');
	ELSIF t.expires_at < pg_catalog.now() THEN
		body := evmgmt.listener_page('Expired', '<p>' || evmgmt.html_escape(v_what) || '</p><p>This test page has expired; ask for a new one.</p>');
	ELSE
		body := evmgmt.listener_page('Confirm test page?', '<p>' || evmgmt.html_escape(v_what) || '</p>'
									 || '<form method="post"><button type="submit">Confirm</button></form>');
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.listener_test_link(text, bigint, bigint, text, text) IS 'The listener''s answer to a test page''s link: GET a confirmation page (nothing changes), POST confirms the channel';

REVOKE ALL ON FUNCTION evmgmt.send_test_page(bigint, evmgmt.channel) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.send_test_page(bigint, evmgmt.channel) TO evmgmt_responder;
REVOKE ALL ON FUNCTION evmgmt.confirm_test_page(bigint, bigint, text), evmgmt.phone_test_target(text, evmgmt.channel),
	evmgmt.listener_test_link(text, bigint, bigint, text, text), evmgmt.escalation_reply(bigint, bigint, text, text, text) FROM PUBLIC;
GRANT SELECT ON evmgmt.paging_test TO evmgmt_responder, evmgmt_admin;
GRANT SELECT ON evmgmt.channel_verification, evmgmt.paging_readiness TO evmgmt_reader, evmgmt_admin;
GRANT USAGE ON SEQUENCE evmgmt.paging_test_test_id_seq TO evmgmt_admin;
SELECT pg_catalog.pg_extension_config_dump('evmgmt.paging_test', '');
SELECT pg_catalog.pg_extension_config_dump('evmgmt.paging_test_test_id_seq', '');

-- Responders read the outbox without the action tokens (82_redaction.sql):
-- body and payload only through notification_redacted.
-- Pages carry action tokens (65_action_tokens.sql): in the body (the ack
-- link) and the payload (ack_token, ack_url, gather_url; a digest's items
-- too).  A token acts as the contact it names, so responders, who read the
-- outbox, see the body and payload only with every token replaced (issue 11:
-- a responder must not acknowledge as somebody else).  ack_code stays: it
-- works only in a reply from the paged phone, signed by the provider.
CREATE FUNCTION evmgmt.redact_action_tokens(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.regexp_replace(
		pg_catalog.regexp_replace(t, '(/ack/|token=)[A-Za-z0-9_-]{63}', '\1[token]', 'g'),
		'("ack_token": ")[A-Za-z0-9_-]{63}"', '\1[token]"', 'g');
COMMENT ON FUNCTION evmgmt.redact_action_tokens(text) IS 'A text (or jsonb text) with every action token replaced by [token]';

CREATE VIEW evmgmt.notification_redacted AS
SELECT notification_id, event_id, escalation_id, kind, channel, provider_id, contact_id, recipient, subject,
	   evmgmt.redact_action_tokens(body) AS body, evmgmt.redact_action_tokens(payload::text)::jsonb AS payload,
	   idempotency_key, state, attempts, created_at, sent_at, last_status, claimed_at, lease_until, next_attempt_at
FROM evmgmt.notification;
COMMENT ON VIEW evmgmt.notification_redacted IS 'The outbox for responders: every column but last_error, with the action tokens in body and payload replaced by [token]';

SELECT evmgmt.restrict_view_to_site_scope('notification_redacted');
REVOKE SELECT (body, payload) ON evmgmt.notification FROM evmgmt_responder;
GRANT SELECT ON evmgmt.notification_redacted TO evmgmt_responder, evmgmt_admin;

-- ---------------------------------------------------------------------------
-- Issue 10: predictive detection and rule-driven response
-- (22_forecast.sql, 49_prediction.sql, 72_response_rules.sql,
-- 74_runbooks.sql; the avert move of the lifecycle; detection continuing a
-- predicted event; prediction in run_due_work; prediction and runbook facts
-- in messages; paging held back for predictions below page_up_to).
-- ---------------------------------------------------------------------------

-- Quarantined rows say which table they were meant for.
ALTER TABLE evmgmt.interval_quarantine ADD COLUMN target_table text NOT NULL DEFAULT 'interval_stat'
	CONSTRAINT interval_quarantine_target_known CHECK (target_table IN ('interval_stat', 'interval_forecast'));
CREATE OR REPLACE VIEW evmgmt.my_interval_quarantine WITH (security_barrier) AS
SELECT q.quarantine_id, q.received_at, q.row_data, q.sqlstate, q.reason, q.detail, q.constraint_name, q.target_table
FROM evmgmt.interval_quarantine q
WHERE q.received_by = SESSION_USER;
COMMENT ON VIEW evmgmt.my_interval_quarantine IS 'The quarantined interval and forecast rows the current session user loaded, with the reason and the table they were meant for';

-- New message and notification kind: the webhook of a response rule.
ALTER TABLE evmgmt.message_template DROP CONSTRAINT message_template_kind_check;
ALTER TABLE evmgmt.message_template ADD CONSTRAINT message_template_kind_check
	CHECK (kind IN ('escalation_step', 'opened', 'status_update', 'target_warning', 'target_breach', 'resolved', 'digest', 'response_action'));
ALTER TABLE evmgmt.notification DROP CONSTRAINT notification_kind_check;
ALTER TABLE evmgmt.notification ADD CONSTRAINT notification_kind_check
	CHECK (kind IN ('escalation_step', 'opened', 'status_update', 'target_warning', 'target_breach', 'resolved', 'digest', 'test', 'response_action'));
-- (as a fresh install ships them: without audit rows)
ALTER TABLE evmgmt.message_template DISABLE TRIGGER protect_builtin, DISABLE TRIGGER audit;
INSERT INTO evmgmt.message_template (kind, channel, subject, body, max_length, builtin)
SELECT k.kind, c.channel,
	   CASE WHEN c.channel IN ('email', 'push') THEN k.subject END,
	   CASE c.channel WHEN 'voice' THEN k.spoken WHEN 'email' THEN k.long ELSE k.short END,
	   CASE c.channel WHEN 'sms' THEN 160 WHEN 'push' THEN 1024 WHEN 'voice' THEN 1000 END,
	   true
FROM (VALUES
	('response_action',
	 '[{{tier}}] Rule {{rule}}: {{lever_name}}',
	 '{{tier}} #{{event_id}} {{site}} {{queue}} pool {{pool}}: rule {{rule}} activates {{lever}} ({{lever_name}})',
	 'Response rule {{rule}} activated the lever {{lever_name}} ({{lever}}) for pool {{pool}} of event {{event_id}} ({{tier}}, {{type}}) at {{site_name}}.'
	 || E'\nTitle: {{title}}\nInstruction: {{instruction}}\n{{link}}',
	 'This is evmgmt. Response rule {{rule}} activated {{lever_name}} for the {{tier}} event at site {{site_name}}.')
) AS k(kind, subject, short, long, spoken)
CROSS JOIN (SELECT pg_catalog.unnest(pg_catalog.enum_range(NULL::evmgmt.channel)) AS channel) c;
ALTER TABLE evmgmt.message_template ENABLE TRIGGER protect_builtin, ENABLE ALWAYS TRIGGER audit;

-- The lifecycle's avert move (src/lifecycle.c, src/state_machine.c).
CREATE FUNCTION evmgmt.avert_pool(event_id bigint, pool evmgmt.pool, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_avert_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.avert_pool(bigint, evmgmt.pool, text) IS 'Resolves one pool condition of a predicted event whose breach was prevented before it began (from classified, diagnosed or responding), with what prevented it';

-- Forecast and schedule per interval, loaded by WFM ETL jobs (evmgmt_ingest),
-- and its quarantine path.  What prediction reads (49_prediction.sql).
--
-- WFM re-forecasts and re-schedules intraday: a re-delivered interval
-- replaces the earlier row, the last one delivered wins (within one
-- statement, the row loaded last).  Each bad row is refused with a named
-- constraint, as interval_stat refuses its rows; forecast_inbox takes rows as
-- text and routes each bad one to interval_quarantine with its most specific
-- reason, set-based, without a subtransaction per row.
--
-- Volume is small next to interval_stat (the next days of every series), so
-- the table is a plain one with real foreign keys and row-level CHECKs.

CREATE TABLE evmgmt.interval_forecast (
	site_id			text COLLATE "C" NOT NULL
		CONSTRAINT interval_forecast_site_id_fkey REFERENCES evmgmt.site (site_id) ON DELETE CASCADE ON UPDATE CASCADE,
	queue_id		text COLLATE "C" NOT NULL
		CONSTRAINT interval_forecast_queue_id_fkey REFERENCES evmgmt.queue (queue_id) ON DELETE CASCADE ON UPDATE CASCADE,
	pool			evmgmt.pool NOT NULL,
	interval_start	timestamptz NOT NULL,
	interval_minutes smallint NOT NULL,
	forecast_offered real NOT NULL,
	forecast_aht	real NOT NULL,
	scheduled		real NOT NULL,
	patience_seconds real,
	loaded_at		timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
	loaded_by		text NOT NULL DEFAULT SESSION_USER,
	CONSTRAINT interval_forecast_aht_positive CHECK (forecast_aht > 0 AND forecast_aht <= 86400),
	CONSTRAINT interval_forecast_length_divides_hour CHECK (interval_minutes > 0 AND 60 % interval_minutes = 0),
	CONSTRAINT interval_forecast_offered_not_negative CHECK (forecast_offered >= 0 AND forecast_offered <= 100000000),
	CONSTRAINT interval_forecast_patience_positive CHECK (patience_seconds > 0 AND patience_seconds <= 86400),
	CONSTRAINT interval_forecast_scheduled_not_negative CHECK (scheduled >= 0 AND scheduled <= 1000000),
	CONSTRAINT interval_forecast_start_aligned CHECK (evmgmt.interval_start_aligned(interval_start, interval_minutes)),
	CONSTRAINT interval_forecast_start_plausible CHECK (interval_start >= timestamptz '2000-01-01 00:00+00'
														AND interval_start < timestamptz '2200-01-01 00:00+00')
);
CREATE INDEX interval_forecast_series_idx ON evmgmt.interval_forecast (site_id, queue_id, pool, interval_start);
CREATE INDEX interval_forecast_start_idx ON evmgmt.interval_forecast (interval_start);
COMMENT ON TABLE evmgmt.interval_forecast IS 'Forecast volume and handle time and scheduled agents per site, queue, pool and future interval, loaded by WFM ETL (COPY or INSERT); a re-delivered interval replaces the earlier forecast';
COMMENT ON COLUMN evmgmt.interval_forecast.forecast_offered IS 'Contacts forecast to arrive in the interval';
COMMENT ON COLUMN evmgmt.interval_forecast.forecast_aht IS 'Forecast average handle time, seconds';
COMMENT ON COLUMN evmgmt.interval_forecast.scheduled IS 'Agents scheduled for the interval (on the phones, after planned shrinkage)';
COMMENT ON COLUMN evmgmt.interval_forecast.patience_seconds IS 'Mean customer patience, seconds: when given, the projection uses Erlang A (abandonment) instead of Erlang C';
COMMENT ON COLUMN evmgmt.interval_forecast.loaded_at IS 'When the statement that loaded the row started (of two deliveries of an interval the later one is kept)';

-- Per series: when its forecast last changed and when prediction last
-- looked at it (the worker predicts changed series at once, every series
-- with a forecast again every evmgmt.prediction_refresh).
CREATE TABLE evmgmt.forecast_series (
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site (site_id) ON DELETE CASCADE ON UPDATE CASCADE,
	queue_id		text COLLATE "C" NOT NULL REFERENCES evmgmt.queue (queue_id) ON DELETE CASCADE ON UPDATE CASCADE,
	pool			evmgmt.pool NOT NULL,
	changed_at		timestamptz NOT NULL,
	predicted_at	timestamptz,
	PRIMARY KEY (site_id, queue_id, pool)
);
CREATE INDEX forecast_series_changed_idx ON evmgmt.forecast_series (changed_at) WHERE predicted_at IS NULL OR predicted_at < changed_at;
COMMENT ON TABLE evmgmt.forecast_series IS 'Every series with a forecast: when a load (of the forecast, or of actual intervals) last changed what prediction sees, and when prediction last ran on it';

-- After each load: the later of two deliveries of an interval stays, the
-- series are marked for prediction, the worker is woken at commit.
CREATE FUNCTION evmgmt.interval_forecast_loaded() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
	-- a restore brings back rows and series as they were dumped
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	DELETE FROM evmgmt.interval_forecast f
	USING (SELECT DISTINCT n.site_id, n.queue_id, n.pool, n.interval_start FROM new_rows n) k
	WHERE f.site_id = k.site_id AND f.queue_id = k.queue_id AND f.pool = k.pool AND f.interval_start = k.interval_start
	  AND EXISTS (SELECT FROM evmgmt.interval_forecast g
				  WHERE g.site_id = f.site_id AND g.queue_id = f.queue_id AND g.pool = f.pool
					AND g.interval_start = f.interval_start
					AND (g.loaded_at, g.ctid) > (f.loaded_at, f.ctid));
	INSERT INTO evmgmt.forecast_series AS s (site_id, queue_id, pool, changed_at)
	SELECT k.site_id, k.queue_id, k.pool, pg_catalog.clock_timestamp()
	FROM (SELECT DISTINCT n.site_id, n.queue_id, n.pool FROM new_rows n) k
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE SET changed_at = EXCLUDED.changed_at;
	PERFORM evmgmt.wake_workers();
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_forecast_loaded() IS 'Statement trigger of interval_forecast: keeps the later delivery of each interval, marks the series for prediction and wakes the worker at commit';
CREATE TRIGGER interval_forecast_loaded AFTER INSERT ON evmgmt.interval_forecast
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_forecast_loaded();

-- The forgiving entry point, as interval_inbox: every column text, nothing
-- stays here after its statement.
CREATE UNLOGGED TABLE evmgmt.forecast_inbox (
	site_id text, queue_id text, pool text, interval_start text, interval_minutes text,
	forecast_offered text, forecast_aht text, scheduled text, patience_seconds text
);
COMMENT ON TABLE evmgmt.forecast_inbox IS 'COPY target for forecasts that never fails on a bad row: good rows go to interval_forecast, bad rows to interval_quarantine with the reason (empty after every statement)';

-- Why one inbox row cannot become an interval_forecast row, as inserting it
-- would say: input syntax and range column by column, NOT NULL, the CHECK
-- constraints in name order (the order PostgreSQL evaluates them in), then
-- the codes.  {sqlstate, constraint, message[, detail]}, NULL when it can be
-- stored; never raises.
CREATE FUNCTION evmgmt.interval_forecast_problem(site_id text, queue_id text, pool text, interval_start text,
												 interval_minutes text, forecast_offered text, forecast_aht text,
												 scheduled text, patience_seconds text,
												 site_known boolean, queue_known boolean)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_start timestamptz;
	v_minutes bigint;
	v_offered double precision;
	v_aht double precision;
	v_scheduled double precision;
	v_patience double precision;
	v_col text;
	v_val text;
	v_real text[] := ARRAY['forecast_offered', 'forecast_aht', 'scheduled', 'patience_seconds'];
	v_vals text[] := ARRAY[forecast_offered, forecast_aht, scheduled, patience_seconds];
	v_chk text;
BEGIN
	-- input syntax and range, in column order
	IF pool IS NOT NULL AND NOT pool = ANY (pg_catalog.enum_range(NULL::evmgmt.pool)::text[]) THEN
		RETURN ARRAY['22P02', NULL, pg_catalog.format('invalid input value for enum evmgmt.pool: "%s"', pool)];
	END IF;
	IF interval_start IS NOT NULL THEN
		v_start := evmgmt.try_timestamptz(interval_start);
		IF v_start IS NULL THEN
			RETURN ARRAY['22007', NULL, pg_catalog.format('invalid input syntax for type timestamp with time zone: "%s"', interval_start)];
		END IF;
	END IF;
	IF interval_minutes IS NOT NULL THEN
		v_minutes := evmgmt.try_integer(interval_minutes);
		IF v_minutes IS NULL THEN
			RETURN ARRAY['22P02', NULL, pg_catalog.format('invalid input syntax for type smallint: "%s"', interval_minutes)];
		ELSIF v_minutes < -32768 OR v_minutes > 32767 THEN
			RETURN ARRAY['22003', NULL, pg_catalog.format('value "%s" is out of range for type smallint', interval_minutes)];
		END IF;
	END IF;
	FOR i IN 1 .. 4 LOOP
		v_val := v_vals[i];
		CONTINUE WHEN v_val IS NULL;
		IF evmgmt.try_real(v_val) IS NULL THEN
			RETURN ARRAY['22P02', NULL, pg_catalog.format('invalid input syntax for type real: "%s"', v_val)];
		END IF;
		-- float8 reads it; real must hold it
		IF pg_catalog.abs(evmgmt.try_real(v_val)) > 3.4028234663852886e38
		   AND evmgmt.try_real(v_val) NOT IN ('Infinity', '-Infinity', 'NaN') THEN
			RETURN ARRAY['22003', NULL, pg_catalog.format('"%s" is out of range for type real', v_val)];
		END IF;
	END LOOP;
	v_offered := evmgmt.try_real(forecast_offered);
	v_aht := evmgmt.try_real(forecast_aht);
	v_scheduled := evmgmt.try_real(scheduled);
	v_patience := evmgmt.try_real(patience_seconds);

	-- NOT NULL, in column order
	v_col := CASE WHEN site_id IS NULL THEN 'site_id' WHEN queue_id IS NULL THEN 'queue_id' WHEN pool IS NULL THEN 'pool'
				  WHEN interval_start IS NULL THEN 'interval_start' WHEN interval_minutes IS NULL THEN 'interval_minutes'
				  WHEN forecast_offered IS NULL THEN 'forecast_offered' WHEN forecast_aht IS NULL THEN 'forecast_aht'
				  WHEN scheduled IS NULL THEN 'scheduled' END;
	IF v_col IS NOT NULL THEN
		RETURN ARRAY['23502', NULL, pg_catalog.format('null value in column "%s" of relation "interval_forecast" violates not-null constraint', v_col)];
	END IF;

	-- the CHECK constraints, in name order
	v_chk := CASE
		WHEN NOT (v_aht > 0 AND v_aht <= 86400) THEN 'interval_forecast_aht_positive'
		WHEN NOT (v_minutes > 0 AND 60 % v_minutes = 0) THEN 'interval_forecast_length_divides_hour'
		WHEN NOT (v_offered >= 0 AND v_offered <= 100000000) THEN 'interval_forecast_offered_not_negative'
		WHEN v_patience IS NOT NULL AND NOT (v_patience > 0 AND v_patience <= 86400) THEN 'interval_forecast_patience_positive'
		WHEN NOT (v_scheduled >= 0 AND v_scheduled <= 1000000) THEN 'interval_forecast_scheduled_not_negative'
		WHEN NOT evmgmt.interval_start_aligned(v_start, v_minutes::smallint) THEN 'interval_forecast_start_aligned'
		WHEN NOT (v_start >= timestamptz '2000-01-01 00:00+00' AND v_start < timestamptz '2200-01-01 00:00+00') THEN 'interval_forecast_start_plausible'
	END;
	IF v_chk IS NOT NULL THEN
		RETURN ARRAY['23514', v_chk, pg_catalog.format('new row for relation "interval_forecast" violates check constraint "%s"', v_chk)];
	END IF;

	-- the codes
	IF NOT site_known THEN
		RETURN ARRAY['23503', 'interval_forecast_site_id_fkey',
					 'insert or update on table "interval_forecast" violates foreign key constraint "interval_forecast_site_id_fkey"',
					 pg_catalog.format('Key (site_id)=(%s) is not present in table "site".', site_id)];
	END IF;
	IF NOT queue_known THEN
		RETURN ARRAY['23503', 'interval_forecast_queue_id_fkey',
					 'insert or update on table "interval_forecast" violates foreign key constraint "interval_forecast_queue_id_fkey"',
					 pg_catalog.format('Key (queue_id)=(%s) is not present in table "queue".', queue_id)];
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_forecast_problem(text, text, text, text, text, text, text, text, text, boolean, boolean) IS 'Why a forecast_inbox row cannot be stored in interval_forecast: {sqlstate, constraint, message[, detail]} as inserting it would raise (input syntax, NOT NULL, CHECK constraints in name order, codes), NULL when it can; never raises';

-- Route one statement's inbox rows: bad ones to quarantine with their
-- reason, good ones to interval_forecast, one INSERT each; then empty the
-- inbox of them.
CREATE FUNCTION evmgmt.forecast_inbox_route() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
	CREATE TEMPORARY TABLE IF NOT EXISTS evmgmt_forecast_routed (
		n bigint, site_id text, queue_id text, pool text, interval_start text, interval_minutes text,
		forecast_offered text, forecast_aht text, scheduled text, patience_seconds text, problem text[]
	) ON COMMIT DROP;
	DELETE FROM pg_temp.evmgmt_forecast_routed;
	INSERT INTO pg_temp.evmgmt_forecast_routed
	SELECT pg_catalog.row_number() OVER (), r.*,
		   evmgmt.interval_forecast_problem(r.site_id, r.queue_id, r.pool, r.interval_start, r.interval_minutes,
											r.forecast_offered, r.forecast_aht, r.scheduled, r.patience_seconds,
											EXISTS (SELECT FROM evmgmt.site s WHERE s.site_id = r.site_id),
											EXISTS (SELECT FROM evmgmt.queue q WHERE q.queue_id = r.queue_id))
	FROM new_rows r;
	INSERT INTO evmgmt.interval_quarantine (target_table, row_data, sqlstate, reason, detail, constraint_name)
	SELECT 'interval_forecast',
		   pg_catalog.jsonb_build_object('site_id', x.site_id, 'queue_id', x.queue_id, 'pool', x.pool,
			   'interval_start', x.interval_start, 'interval_minutes', x.interval_minutes,
			   'forecast_offered', x.forecast_offered, 'forecast_aht', x.forecast_aht, 'scheduled', x.scheduled,
			   'patience_seconds', x.patience_seconds),
		   x.problem[1], x.problem[3], x.problem[4], x.problem[2]
	FROM pg_temp.evmgmt_forecast_routed x WHERE x.problem IS NOT NULL ORDER BY x.n;
	INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered,
										  forecast_aht, scheduled, patience_seconds)
	SELECT x.site_id, x.queue_id, x.pool::evmgmt.pool, x.interval_start::timestamptz, x.interval_minutes::smallint,
		   x.forecast_offered::real, x.forecast_aht::real, x.scheduled::real, x.patience_seconds::real
	FROM pg_temp.evmgmt_forecast_routed x WHERE x.problem IS NULL ORDER BY x.n;
	-- what this transaction put into the inbox (earlier statements' rows
	-- are gone already; other sessions' rows are theirs)
	DELETE FROM evmgmt.forecast_inbox i WHERE evmgmt.stored_by_this_transaction(i.xmin);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.forecast_inbox_route() IS 'Statement trigger of forecast_inbox: quarantines each bad row with its most specific reason and loads the good rows into interval_forecast with one INSERT';
CREATE TRIGGER forecast_inbox_route AFTER INSERT ON evmgmt.forecast_inbox
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.forecast_inbox_route();

-- Predictive detection: forecast and schedule in, projected service level
-- out, and predicted events before the breach (docs/prediction.md).
--
-- For every series with a forecast (22_forecast.sql) and every interval that
-- has not ended and starts within the operation's horizon, the projection
-- computes the traffic, the service level and the ASA at the scheduled
-- agents with Erlang C (Erlang A where the forecast gives a patience), and
-- the agents needed to meet the queue's target (agents_required).  It does so
-- twice: on the forecast as loaded, and corrected by today's actuals of the
-- same series (the intraday correction, below).  The operation chooses which
-- projection drives prediction.
--
-- Prediction applies the detection rule of 30_classify.sql (the trailing
-- run below each tier's threshold, classify_sustained_runs) to the projected
-- series.  A series whose projection crosses a tier for longer than its
-- sustain time gets a predicted event (detection_source 'predictive') before
-- the first breaching interval starts; a re-forecast or schedule change that
-- makes the projection healthy before the breach starts averts it
-- (avert_pool); actuals that confirm it continue the same event (detection,
-- 47_detection_actions.sql).  The worker runs it (run_due_work) right after
-- a load changed what a series' projection depends on, and every series
-- again every evmgmt.prediction_refresh as the horizon moves on.

CREATE TABLE evmgmt.prediction_policy (
	operation_id		text PRIMARY KEY REFERENCES evmgmt.operation ON DELETE CASCADE,
	enabled				boolean NOT NULL DEFAULT true,
	horizon				interval NOT NULL DEFAULT '2 hours'
		CONSTRAINT prediction_policy_horizon_range CHECK (horizon >= interval '15 minutes' AND horizon <= interval '2 days'),
	drive				text NOT NULL DEFAULT 'corrected'
		CONSTRAINT prediction_policy_drive_known CHECK (drive IN ('corrected', 'forecast')),
	page_up_to			evmgmt.severity NOT NULL DEFAULT 'sev2',
	correction_min_intervals integer NOT NULL DEFAULT 2
		CONSTRAINT prediction_policy_min_intervals_range CHECK (correction_min_intervals BETWEEN 1 AND 96),
	correction_min_ratio double precision NOT NULL DEFAULT 0.5
		CONSTRAINT prediction_policy_min_ratio_range CHECK (correction_min_ratio > 0 AND correction_min_ratio <= 1),
	correction_max_ratio double precision NOT NULL DEFAULT 2.0
		CONSTRAINT prediction_policy_max_ratio_range CHECK (correction_max_ratio >= 1 AND correction_max_ratio <= 10)
);
COMMENT ON TABLE evmgmt.prediction_policy IS 'Prediction settings per operation (an operation without a row uses the defaults)';
COMMENT ON COLUMN evmgmt.prediction_policy.horizon IS 'How far ahead intervals are projected and predicted (from now; the interval in progress included)';
COMMENT ON COLUMN evmgmt.prediction_policy.drive IS 'Which projection drives predicted events: corrected (by today''s actual-to-forecast ratios) or forecast (as loaded)';
COMMENT ON COLUMN evmgmt.prediction_policy.page_up_to IS 'Predicted pool conditions of this tier or a more severe one page as detected ones do; less severe ones notify only the footprint''s audiences (the ROC)';
COMMENT ON COLUMN evmgmt.prediction_policy.correction_min_intervals IS 'Intraday correction: actual intervals of the series today needed before the ratios apply (before that the corrected projection equals the forecast one)';
COMMENT ON COLUMN evmgmt.prediction_policy.correction_min_ratio IS 'Intraday correction: lowest volume or AHT ratio applied (a smaller one is clamped to it)';
COMMENT ON COLUMN evmgmt.prediction_policy.correction_max_ratio IS 'Intraday correction: highest volume or AHT ratio applied (a larger one is clamped to it)';

CREATE VIEW evmgmt.effective_prediction_policy AS
SELECT o.operation_id,
	   COALESCE(p.enabled, true) AS enabled,
	   COALESCE(p.horizon, interval '2 hours') AS horizon,
	   COALESCE(p.drive, 'corrected') AS drive,
	   COALESCE(p.page_up_to, 'sev2'::evmgmt.severity) AS page_up_to,
	   COALESCE(p.correction_min_intervals, 2) AS correction_min_intervals,
	   COALESCE(p.correction_min_ratio, 0.5) AS correction_min_ratio,
	   COALESCE(p.correction_max_ratio, 2.0) AS correction_max_ratio
FROM evmgmt.operation o
LEFT JOIN evmgmt.prediction_policy p ON p.operation_id = o.operation_id;
COMMENT ON VIEW evmgmt.effective_prediction_policy IS 'Prediction settings in force for every operation: its prediction_policy row or the defaults';

------------------------------------------------------------------------------
-- The projection
------------------------------------------------------------------------------

-- One interval at given volume, handle time and agents.  Fractional
-- scheduled agents count down (7.6 scheduled are 7 on the phones all
-- interval long); no volume meets the target; no agents for some volume
-- answers nothing.  Agents needed are those of Erlang C also where Erlang A
-- projects the service level (patience lets some callers go, which the
-- staffing should not count on).  No SET clause: PostgreSQL inlines the
-- function into the projection's query (a SET would make it a call per row,
-- 15 times slower), and its BEGIN ATOMIC body was bound to evmgmt's and
-- pg_catalog's objects when it was created, so no search_path reaches it.
CREATE FUNCTION evmgmt.project_interval(offered double precision, aht double precision, scheduled double precision,
										patience double precision, interval_minutes integer,
										target_sl double precision, target_seconds double precision)
RETURNS TABLE (traffic double precision, service_level double precision, asa double precision, agents_needed integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT t.traffic,
		   CASE WHEN project_interval.offered <= 0 THEN 1
				WHEN pg_catalog.floor(project_interval.scheduled) < 1 THEN 0
				WHEN project_interval.patience IS NULL
					THEN evmgmt.service_level(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer,
											  project_interval.aht, project_interval.target_seconds)
				ELSE (evmgmt.erlang_a(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer, project_interval.aht,
									  project_interval.patience, project_interval.target_seconds)).service_level END,
		   CASE WHEN project_interval.offered <= 0 THEN 0
				WHEN pg_catalog.floor(project_interval.scheduled) < 1 THEN NULL
				WHEN project_interval.patience IS NULL
					THEN NULLIF(evmgmt.asa(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer, project_interval.aht),
								'Infinity'::double precision)
				ELSE (evmgmt.erlang_a(t.traffic, pg_catalog.floor(project_interval.scheduled)::integer, project_interval.aht,
									  project_interval.patience, project_interval.target_seconds)).asa END,
		   CASE WHEN project_interval.offered <= 0 THEN 0
				ELSE evmgmt.agents_required(t.traffic, project_interval.aht, project_interval.target_sl,
											project_interval.target_seconds) END
	FROM (SELECT project_interval.offered * project_interval.aht / (project_interval.interval_minutes * 60)::double precision AS traffic) t;
END;
COMMENT ON FUNCTION evmgmt.project_interval(double precision, double precision, double precision, double precision, integer, double precision, double precision) IS 'Traffic (Erlangs), projected service level and ASA at the scheduled agents (whole agents; Erlang A when a patience is given, else Erlang C) and the agents Erlang C needs for the target';

-- Today's actual-to-forecast ratios of each series (the intraday
-- correction): over the actual intervals of the series since the site's
-- local midnight that ended by "at" and have a forecast (interval_forecast
-- for the same interval, else the forecast columns of interval_stat),
--   volume ratio = sum(offered) / sum(forecast offered)
--   AHT ratio    = sum(aht x handled) / sum(forecast aht x handled)
-- applied once the series has correction_min_intervals of them, clamped to
-- [correction_min_ratio, correction_max_ratio]; 1 otherwise.
CREATE FUNCTION evmgmt.intraday_ratios(at timestamptz)
RETURNS TABLE (site_id text, queue_id text, pool evmgmt.pool, intervals integer,
			   volume_ratio double precision, aht_ratio double precision,
			   raw_volume_ratio double precision, raw_aht_ratio double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT r.site_id, r.queue_id, r.pool, r.n,
		   CASE WHEN r.n >= pol.correction_min_intervals AND r.vol IS NOT NULL
				THEN GREATEST(pol.correction_min_ratio, LEAST(pol.correction_max_ratio, r.vol)) ELSE 1 END,
		   CASE WHEN r.n >= pol.correction_min_intervals AND r.aht IS NOT NULL
				THEN GREATEST(pol.correction_min_ratio, LEAST(pol.correction_max_ratio, r.aht)) ELSE 1 END,
		   r.vol, r.aht
	FROM (SELECT s.site_id, s.queue_id, s.pool, si.operation_id,
				 pg_catalog.count(*)::integer AS n,
				 pg_catalog.sum(a.offered)::float8 / NULLIF(pg_catalog.sum(COALESCE(f.forecast_offered, a.forecast_offered)), 0) AS vol,
				 pg_catalog.sum(a.aht_seconds::float8 * a.handled) FILTER (WHERE a.aht_seconds IS NOT NULL AND COALESCE(f.forecast_aht, a.forecast_aht) IS NOT NULL)
					 / NULLIF(pg_catalog.sum(COALESCE(f.forecast_aht, a.forecast_aht)::float8 * a.handled)
								  FILTER (WHERE a.aht_seconds IS NOT NULL AND COALESCE(f.forecast_aht, a.forecast_aht) IS NOT NULL), 0) AS aht
		  FROM evmgmt.forecast_series s
		  JOIN evmgmt.site si ON si.site_id = s.site_id
		  JOIN evmgmt.interval_stat a
			ON a.site_id = s.site_id AND a.queue_id = s.queue_id AND a.pool = s.pool
		   AND a.interval_start >= (pg_catalog.date_trunc('day', intraday_ratios.at AT TIME ZONE si.time_zone) AT TIME ZONE si.time_zone)
		   AND a.interval_start < intraday_ratios.at
		   AND a.interval_start + a.interval_minutes * interval '1 minute' <= intraday_ratios.at
		  LEFT JOIN evmgmt.interval_forecast f
			ON f.site_id = a.site_id AND f.queue_id = a.queue_id AND f.pool = a.pool AND f.interval_start = a.interval_start
		  WHERE COALESCE(f.forecast_offered, a.forecast_offered) IS NOT NULL
		  GROUP BY s.site_id, s.queue_id, s.pool, si.operation_id) r
	JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = r.operation_id;
END;
COMMENT ON FUNCTION evmgmt.intraday_ratios(timestamptz) IS 'Per series with a forecast and actuals today (site-local day, intervals ended by the given time): the number of actual intervals with a forecast, the volume and AHT ratios of actual to forecast (raw, and as applied: clamped, 1 until enough intervals)';

-- The projection of every series at a moment: each forecast interval that
-- has not ended and starts within the horizon, projected as loaded and as
-- corrected.
CREATE FUNCTION evmgmt.forecast_projection_at(at timestamptz)
RETURNS TABLE (operation_id text, site_id text, queue_id text, pool evmgmt.pool, interval_start timestamptz,
			   interval_minutes integer, scheduled real, patience_seconds real, target_service_level double precision,
			   target_seconds integer,
			   forecast_offered real, forecast_aht real, traffic double precision,
			   projected_service_level double precision, projected_asa double precision, agents_needed integer,
			   staffing_gap double precision,
			   correction_intervals integer, volume_ratio double precision, aht_ratio double precision,
			   corrected_offered double precision, corrected_aht double precision, corrected_traffic double precision,
			   corrected_service_level double precision, corrected_asa double precision, corrected_agents_needed integer,
			   corrected_staffing_gap double precision,
			   drive text, driving_service_level double precision, driving_agents_needed integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT si.operation_id, f.site_id, f.queue_id, f.pool, f.interval_start, f.interval_minutes, f.scheduled,
		   f.patience_seconds, q.sl_target, q.sl_seconds, f.forecast_offered, f.forecast_aht,
		   p.traffic, p.service_level, p.asa, p.agents_needed, p.agents_needed - f.scheduled,
		   COALESCE(r.intervals, 0), COALESCE(r.volume_ratio, 1), COALESCE(r.aht_ratio, 1),
		   f.forecast_offered * COALESCE(r.volume_ratio, 1), f.forecast_aht * COALESCE(r.aht_ratio, 1),
		   c.traffic, c.service_level, c.asa, c.agents_needed, c.agents_needed - f.scheduled,
		   pol.drive,
		   CASE pol.drive WHEN 'forecast' THEN p.service_level ELSE c.service_level END,
		   CASE pol.drive WHEN 'forecast' THEN p.agents_needed ELSE c.agents_needed END
	FROM evmgmt.interval_forecast f
	JOIN evmgmt.site si ON si.site_id = f.site_id
	JOIN evmgmt.queue q ON q.queue_id = f.queue_id
	JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = si.operation_id
	LEFT JOIN evmgmt.intraday_ratios(forecast_projection_at.at) r
	  ON r.site_id = f.site_id AND r.queue_id = f.queue_id AND r.pool = f.pool
	CROSS JOIN LATERAL evmgmt.project_interval(f.forecast_offered, f.forecast_aht, f.scheduled, f.patience_seconds,
											   f.interval_minutes, q.sl_target, q.sl_seconds) p
	CROSS JOIN LATERAL evmgmt.project_interval(f.forecast_offered * COALESCE(r.volume_ratio, 1),
											   f.forecast_aht * COALESCE(r.aht_ratio, 1), f.scheduled,
											   f.patience_seconds, f.interval_minutes, q.sl_target, q.sl_seconds) c
	WHERE f.interval_start < forecast_projection_at.at + pol.horizon
	  AND f.interval_start > forecast_projection_at.at - interval '1 hour'
	  AND f.interval_start + f.interval_minutes * interval '1 minute' > forecast_projection_at.at
	ORDER BY f.site_id, f.queue_id, f.pool, f.interval_start;
END;
COMMENT ON FUNCTION evmgmt.forecast_projection_at(timestamptz) IS 'Projection of every forecast interval not ended at the given time and starting within the horizon: traffic, service level, ASA, agents needed and the gap to scheduled, as forecast and as corrected by today''s actuals, and which one drives prediction';

CREATE VIEW evmgmt.forecast_projection AS
SELECT p.* FROM evmgmt.forecast_projection_at(pg_catalog.now()) p;
COMMENT ON VIEW evmgmt.forecast_projection IS 'The ROC''s "next two hours" screen: every series'' forecast intervals within the horizon, projected as forecast and as corrected by today''s actuals (service level, ASA, agents needed, gap to scheduled)';

------------------------------------------------------------------------------
-- What prediction knows and did
------------------------------------------------------------------------------

CREATE TABLE evmgmt.prediction_state (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	status			text NOT NULL CONSTRAINT prediction_state_status_known
						CHECK (status IN ('predicted', 'confirmed', 'averted', 'not_confirmed')),
	event_id		bigint NOT NULL,
	severity		evmgmt.severity NOT NULL,
	predicted_at	timestamptz NOT NULL,
	breach_starts_at timestamptz NOT NULL,
	breach_ends_at	timestamptz NOT NULL,
	projected_service_level double precision,
	agents_needed	integer,
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (site_id, queue_id, pool)
);
CREATE INDEX ON evmgmt.prediction_state (event_id);
COMMENT ON TABLE evmgmt.prediction_state IS 'Per series, the latest predicted breach: predicted (event open, breach ahead or under way), confirmed (actuals breached: detection carries the event on), averted (the projection became healthy before the breach began), not_confirmed (the predicted intervals passed and the actuals stayed healthy)';
COMMENT ON COLUMN evmgmt.prediction_state.agents_needed IS 'Agents to add to scheduled so that the worst breaching interval meets the queue''s service-level target';

CREATE TABLE evmgmt.prediction_log (
	prediction_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	recorded_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	site_id			text NOT NULL,
	queue_id		text NOT NULL,
	pool			evmgmt.pool NOT NULL,
	decision		text NOT NULL CONSTRAINT prediction_log_decision_known
						CHECK (decision IN ('predicted', 'joined', 'raised', 'confirmed', 'averted', 'not_confirmed')),
	event_id		bigint,
	severity		evmgmt.severity,
	event_type		evmgmt.event_type,
	subtype			text,
	breach_starts_at timestamptz,
	evidence		jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON evmgmt.prediction_log (event_id);
CREATE INDEX ON evmgmt.prediction_log (site_id, recorded_at);
COMMENT ON TABLE evmgmt.prediction_log IS 'Every prediction decision with the projection behind it: predicted, joined (another pool of a predicted event), raised, confirmed by actuals, averted, not confirmed';

-- The run log of the worker's prediction passes.
CREATE TABLE evmgmt.prediction_run (
	run_id			bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	started_at		timestamptz NOT NULL,
	finished_at		timestamptz NOT NULL,
	full_pass		boolean NOT NULL,
	series			integer NOT NULL,
	intervals		integer NOT NULL,
	breaching		integer NOT NULL,
	decisions		integer NOT NULL,
	failures		integer NOT NULL
);
CREATE INDEX ON evmgmt.prediction_run (started_at);
COMMENT ON TABLE evmgmt.prediction_run IS 'One row per prediction pass of the worker: series and intervals projected, series breaching, decisions taken, series that failed (each in its own subtransaction; the others go on)';

------------------------------------------------------------------------------
-- Acting on a projection
------------------------------------------------------------------------------

-- One series with the projected intervals that breach: open or join, raise,
-- or avert.  p_rows: the projected intervals of the series in time order
-- with the tier each reaches (NULL when the projection is healthy).
CREATE FUNCTION evmgmt.predict_series(p_site text, p_queue text, p_pool evmgmt.pool, p_operation text,
									  p_now timestamptz, p_rows jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	ps evmgmt.prediction_state;
	v_found boolean;
	v_tier evmgmt.severity;
	v_first jsonb;
	v_worst jsonb;
	v_start timestamptz;
	v_end timestamptz;
	v_type evmgmt.event_type;
	v_subtype text;
	v_normal double precision;
	v_offered double precision;
	v_event bigint;
	v_state evmgmt.event_state;
	v_sev evmgmt.severity;
	v_decision text;
	v_evidence jsonb;
	v_pol evmgmt.effective_detection_policy;
	v_title text;
	v_need integer;
	v_follow text;
BEGIN
	SELECT * INTO ps FROM evmgmt.prediction_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool FOR UPDATE;
	v_found := FOUND;
	-- a prediction whose event people resolved or cancelled is over
	IF v_found AND ps.status = 'predicted'
	   AND NOT EXISTS (SELECT FROM evmgmt.pool_condition pc JOIN evmgmt.event e ON e.event_id = pc.event_id
					   WHERE pc.event_id = ps.event_id AND pc.pool = p_pool AND pc.state NOT IN ('resolved', 'cancelled')
						 AND e.closed_at IS NULL AND e.cancelled_at IS NULL) THEN
		-- resolved by a response before the breach began: averted by people
		ps.status := CASE WHEN p_now < ps.breach_starts_at
							   AND EXISTS (SELECT FROM evmgmt.pool_condition pc
										   WHERE pc.event_id = ps.event_id AND pc.pool = p_pool AND pc.state = 'resolved')
						  THEN 'averted' ELSE 'not_confirmed' END;
		UPDATE evmgmt.prediction_state s SET status = ps.status, updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
		INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, breach_starts_at, evidence)
		VALUES (p_site, p_queue, p_pool, ps.status, ps.event_id, ps.severity, ps.breach_starts_at,
				pg_catalog.jsonb_build_object('by', 'people'));
	END IF;

	-- the most severe tier ahead, the first interval that reaches a tier,
	-- the worst interval of the breach
	SELECT pg_catalog.min((x ->> 'tier')::evmgmt.severity) INTO v_tier FROM pg_catalog.jsonb_array_elements(p_rows) x;
	IF v_tier IS NULL THEN
		IF v_found AND ps.status = 'predicted' THEN
			IF p_now < ps.breach_starts_at THEN
				v_decision := 'averted';
			ELSIF p_now >= ps.breach_ends_at THEN
				v_decision := 'not_confirmed';
			END IF;
			IF v_decision IS NOT NULL THEN
				PERFORM evmgmt.avert_pool(ps.event_id, p_pool,
					CASE v_decision WHEN 'averted' THEN pg_catalog.format('rule:prediction: averted, the projection of %s is healthy again before the breach predicted for %s', p_pool, ps.breach_starts_at)
									ELSE pg_catalog.format('rule:prediction: not confirmed, the predicted intervals of %s passed without a breach in the actuals', p_pool) END);
				UPDATE evmgmt.prediction_state s SET status = v_decision, updated_at = pg_catalog.clock_timestamp()
				WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
				INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, breach_starts_at, evidence)
				VALUES (p_site, p_queue, p_pool, v_decision, ps.event_id, ps.severity, ps.breach_starts_at,
						pg_catalog.jsonb_build_object('intervals', p_rows));
				PERFORM evmgmt.detection_note(ps.event_id, p_pool, 'prediction', v_decision || ': ' || p_pool,
											  pg_catalog.jsonb_build_object('decision', v_decision, 'breach_starts_at', ps.breach_starts_at));
			END IF;
		END IF;
		RETURN v_decision;
	END IF;

	SELECT x INTO v_first FROM pg_catalog.jsonb_array_elements(p_rows) x WHERE x ->> 'tier' IS NOT NULL
	ORDER BY (x ->> 'interval_start')::timestamptz LIMIT 1;
	v_start := (v_first ->> 'run_started_at')::timestamptz;
	-- the breach: from its start to the last interval below a threshold
	SELECT pg_catalog.max((x ->> 'interval_start')::timestamptz + (x ->> 'interval_minutes')::integer * interval '1 minute')
	INTO v_end FROM pg_catalog.jsonb_array_elements(p_rows) x
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean;
	SELECT x INTO v_worst FROM pg_catalog.jsonb_array_elements(p_rows) x
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean
	ORDER BY (x ->> 'service_level')::float8, (x ->> 'interval_start')::timestamptz LIMIT 1;
	v_need := GREATEST(0, pg_catalog.ceil((v_worst ->> 'agents_needed')::float8 - pg_catalog.floor((v_worst ->> 'scheduled')::float8)))::integer;

	-- a series detection already follows is the actual condition's business
	SELECT d.status INTO v_follow FROM evmgmt.detection_state d
	WHERE d.site_id = p_site AND d.queue_id = p_queue AND d.pool = p_pool AND d.status <> 'recovered'
	  AND EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = d.event_id AND e.closed_at IS NULL AND e.cancelled_at IS NULL);
	IF FOUND AND NOT (v_found AND ps.status = 'predicted') THEN
		RETURN NULL;
	END IF;

	-- the type: forecast volume well above the series' normal (the mean
	-- actual volume of the same intervals on the days of the last 7 that
	-- have actuals) is
	-- demand, otherwise too few scheduled against required is capacity
	SELECT * INTO v_pol FROM evmgmt.effective_detection_policy p WHERE p.operation_id = p_operation;
	SELECT pg_catalog.sum((x ->> 'offered')::float8) INTO v_offered FROM pg_catalog.jsonb_array_elements(p_rows) x
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean;
	SELECT pg_catalog.sum(h.offered)::float8 / NULLIF(pg_catalog.count(DISTINCT k), 0) INTO v_normal
	FROM pg_catalog.jsonb_array_elements(p_rows) x
	CROSS JOIN pg_catalog.generate_series(1, 7) k
	JOIN evmgmt.interval_stat h
	  ON h.interval_start = (x ->> 'interval_start')::timestamptz - k * interval '1 day'
	 AND h.site_id = p_site AND h.queue_id = p_queue AND h.pool = p_pool
	WHERE (x ->> 'interval_start')::timestamptz >= v_start AND (x ->> 'below')::boolean;
	IF v_normal > 0 AND v_offered >= v_pol.demand_offered_ratio * v_normal THEN
		v_type := 'demand'; v_subtype := 'volume_spike';
	ELSE
		v_type := 'capacity'; v_subtype := 'staffing_shortfall';
	END IF;

	v_evidence := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'tier', v_tier, 'breach_starts_at', v_start, 'breach_ends_at', v_end,
		'projected_service_level', (v_worst ->> 'service_level')::float8,
		'agents_needed', v_need, 'worst_interval', v_worst ->> 'interval_start',
		'scheduled', (v_worst ->> 'scheduled')::float8, 'required', (v_worst ->> 'agents_needed')::integer,
		'forecast_offered', v_offered, 'normal_offered', v_normal,
		'drive', v_worst ->> 'drive', 'inferred_type', v_type, 'inferred_subtype', v_subtype,
		'lead_minutes', pg_catalog.round((EXTRACT(epoch FROM v_start - p_now) / 60)::numeric, 1),
		'intervals', p_rows));

	IF v_found AND ps.status = 'predicted' THEN
		-- the prediction stands: raise when it got worse, keep its figures current
		v_event := ps.event_id;
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = v_event AND pc.pool = p_pool;
		IF v_sev > v_tier THEN
			PERFORM evmgmt.reclassify_pool(v_event, p_pool, v_tier,
				pg_catalog.format('rule:prediction: projected %s for %s', v_tier, p_pool));
			v_decision := 'raised';
		END IF;
		UPDATE evmgmt.prediction_state s
		SET severity = LEAST(s.severity, v_tier), breach_starts_at = LEAST(s.breach_starts_at, v_start),
			breach_ends_at = GREATEST(v_end, s.breach_ends_at),
			projected_service_level = (v_worst ->> 'service_level')::float8, agents_needed = v_need,
			updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
	ELSE
		-- one event per condition: a predicted event of the same site, queue
		-- and type still open takes this pool too
		SELECT e.event_id INTO v_event FROM evmgmt.event e
		WHERE e.site_id = p_site AND e.queue_id = p_queue AND e.event_type = v_type
		  AND e.detection_source = 'predictive' AND e.closed_at IS NULL AND e.cancelled_at IS NULL
		  AND NOT EXISTS (SELECT FROM evmgmt.pool_condition pc WHERE pc.event_id = e.event_id AND pc.pool = p_pool)
		ORDER BY e.event_id DESC LIMIT 1;
		IF v_event IS NULL THEN
			v_title := pg_catalog.format('Predicted %s at %s %s: service level %s%% from %s',
				pg_catalog.lower((SELECT st.name FROM evmgmt.event_subtype st WHERE st.subtype = v_subtype)),
				p_site, p_queue, pg_catalog.round(((v_worst ->> 'service_level')::float8 * 100)::numeric),
				pg_catalog.to_char(v_start AT TIME ZONE (SELECT s.time_zone FROM evmgmt.site s WHERE s.site_id = p_site), 'HH24:MI'));
			v_event := evmgmt.open_event(v_type, p_site, ARRAY[p_pool], 'predictive', v_title,
										 LEAST(p_now, pg_catalog.now()), p_queue, v_subtype,
										 pg_catalog.format('Predicted from the forecast and schedule: %s agents short in the worst interval; the breach would start at %s.', v_need, v_start));
			v_decision := 'predicted';
		ELSE
			PERFORM evmgmt.add_pool(v_event, p_pool, pg_catalog.format('rule:prediction: %s projected %s', p_pool, v_tier));
			v_decision := 'joined';
		END IF;
		INSERT INTO evmgmt.prediction_state AS s (site_id, queue_id, pool, status, event_id, severity, predicted_at,
												  breach_starts_at, breach_ends_at, projected_service_level, agents_needed)
		VALUES (p_site, p_queue, p_pool, 'predicted', v_event, v_tier, p_now, v_start, v_end,
				(v_worst ->> 'service_level')::float8, v_need)
		ON CONFLICT (site_id, queue_id, pool) DO UPDATE
		SET status = 'predicted', event_id = EXCLUDED.event_id, severity = EXCLUDED.severity,
			predicted_at = EXCLUDED.predicted_at, breach_starts_at = EXCLUDED.breach_starts_at,
			breach_ends_at = EXCLUDED.breach_ends_at, projected_service_level = EXCLUDED.projected_service_level,
			agents_needed = EXCLUDED.agents_needed, updated_at = pg_catalog.clock_timestamp();
		-- classified last: the escalation start and the response rules read
		-- the prediction's facts
		PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
	END IF;
	IF v_decision IS NOT NULL THEN
		INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, event_type, subtype,
										   breach_starts_at, evidence)
		VALUES (p_site, p_queue, p_pool, v_decision, v_event, v_tier, v_type, v_subtype, v_start, v_evidence);
		PERFORM evmgmt.detection_note(v_event, p_pool, 'prediction',
			pg_catalog.format('%s: %s projected %s from %s (service level %s%%, %s agents short)', v_decision, p_pool, v_tier,
							  v_start, pg_catalog.round(((v_worst ->> 'service_level')::float8 * 100)::numeric), v_need),
			pg_catalog.jsonb_build_object('decision', v_decision, 'tier', v_tier, 'breach_starts_at', v_start,
										  'agents_needed', v_need));
	END IF;
	RETURN v_decision;
END
$$;
COMMENT ON FUNCTION evmgmt.predict_series(text, text, evmgmt.pool, text, timestamptz, jsonb) IS 'Prediction for one series from its projected intervals: opens (or joins) a predicted event classified at the projected tier, raises it, or averts it when the projection is healthy before the breach starts (not_confirmed when the predicted intervals passed healthy); logs every decision with its evidence';

-- Actuals confirmed a predicted breach (called by detection when it acts on
-- a series with an open prediction): the event carries on.  A pool whose
-- predicted tier did not page starts paging now, as a detected one would.
CREATE FUNCTION evmgmt.prediction_confirm(p_site text, p_queue text, p_pool evmgmt.pool, p_data_time timestamptz,
										  p_tier evmgmt.severity)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	ps evmgmt.prediction_state;
BEGIN
	SELECT * INTO ps FROM evmgmt.prediction_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool AND s.status = 'predicted' FOR UPDATE;
	IF NOT FOUND OR NOT EXISTS (SELECT FROM evmgmt.pool_condition pc JOIN evmgmt.event e ON e.event_id = pc.event_id
								WHERE pc.event_id = ps.event_id AND pc.pool = p_pool
								  AND pc.state NOT IN ('resolved', 'cancelled')
								  AND e.closed_at IS NULL AND e.cancelled_at IS NULL) THEN
		RETURN NULL;
	END IF;
	UPDATE evmgmt.prediction_state s SET status = 'confirmed', updated_at = pg_catalog.clock_timestamp()
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
	INSERT INTO evmgmt.prediction_log (site_id, queue_id, pool, decision, event_id, severity, breach_starts_at, evidence)
	VALUES (p_site, p_queue, p_pool, 'confirmed', ps.event_id, p_tier, ps.breach_starts_at,
			pg_catalog.jsonb_build_object('data_time', p_data_time, 'predicted_tier', ps.severity, 'actual_tier', p_tier,
										  'lead_minutes', pg_catalog.round((EXTRACT(epoch FROM p_data_time - ps.predicted_at) / 60)::numeric, 1)));
	PERFORM evmgmt.detection_note(ps.event_id, p_pool, 'prediction',
		pg_catalog.format('confirmed: the actuals of %s breached at %s (%s), as predicted at %s', p_pool, p_data_time, p_tier, ps.predicted_at),
		pg_catalog.jsonb_build_object('decision', 'confirmed', 'data_time', p_data_time, 'tier', p_tier));
	-- held back as a prediction: pages now
	IF NOT EXISTS (SELECT FROM evmgmt.escalation x WHERE x.event_id = ps.event_id AND x.pool = p_pool AND x.state = 'active') THEN
		PERFORM evmgmt.escalation_start(ps.event_id, p_pool, 'opened', pg_catalog.clock_timestamp());
	END IF;
	RETURN ps.event_id;
END
$$;
COMMENT ON FUNCTION evmgmt.prediction_confirm(text, text, evmgmt.pool, timestamptz, evmgmt.severity) IS 'Marks the open prediction of a series confirmed by the actuals (timeline and prediction_log), starts the paging a held-back prediction did not, and returns its event (NULL when the series has no open prediction)';

-- Whether a predicted pool condition pages (escalation_start): only at the
-- tiers the operation lets predictions page for, unless actuals confirmed it.
CREATE FUNCTION evmgmt.prediction_pages(p_event_id bigint, p_pool evmgmt.pool) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT COALESCE((SELECT e.detection_source <> 'predictive'
						 OR pc.severity <= pol.page_up_to
						 OR EXISTS (SELECT FROM evmgmt.prediction_state s
									WHERE s.event_id = e.event_id AND s.pool = pc.pool AND s.status = 'confirmed')
					 FROM evmgmt.event e
					 JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id AND pc.pool = p_pool
					 JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = e.operation_id
					 WHERE e.event_id = p_event_id), true);
END;
COMMENT ON FUNCTION evmgmt.prediction_pages(bigint, evmgmt.pool) IS 'False for the pool condition of a predicted event whose tier is less severe than the operation''s page_up_to and that actuals have not confirmed: it notifies the footprint''s audiences only';

-- The prediction pass: the series whose inputs changed (or all series with
-- a forecast when p_full), projected in one query, the tier of each
-- interval by the detection rule over the projected series, then each
-- series that breaches or has an open prediction acted on in its own
-- subtransaction.  Returns the run's id.
CREATE FUNCTION evmgmt.run_predictions(p_now timestamptz, p_full boolean) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_started timestamptz := pg_catalog.clock_timestamp();
	v_series integer;
	v_intervals integer;
	v_breaching integer := 0;
	v_decisions integer := 0;
	v_failures integer := 0;
	v_marked timestamptz := pg_catalog.clock_timestamp();
	v_id bigint;
	c record;
	v_decision text;
BEGIN
	IF p_now IS NULL OR NOT (p_now >= timestamptz '2000-01-01 00:00+00' AND p_now < timestamptz '2200-01-01 00:00+00') THEN
		RAISE EXCEPTION 'the moment of run_predictions must lie between 2000-01-01 and 2200-01-01'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF pg_catalog.to_regclass('pg_temp.evmgmt_predict_series') IS NULL THEN
		CREATE TEMPORARY TABLE evmgmt_predict_series (
			site_id text COLLATE "C", queue_id text COLLATE "C", pool evmgmt.pool, changed_at timestamptz,
			PRIMARY KEY (site_id, queue_id, pool)
		) ON COMMIT DELETE ROWS;
	END IF;
	DELETE FROM pg_temp.evmgmt_predict_series;
	INSERT INTO pg_temp.evmgmt_predict_series
	SELECT s.site_id, s.queue_id, s.pool, s.changed_at FROM evmgmt.forecast_series s
	WHERE p_full OR s.predicted_at IS NULL OR s.predicted_at < s.changed_at
	   OR EXISTS (SELECT FROM evmgmt.prediction_state p
				  WHERE p.site_id = s.site_id AND p.queue_id = s.queue_id AND p.pool = s.pool AND p.status = 'predicted');
	GET DIAGNOSTICS v_series = ROW_COUNT;
	ANALYZE pg_temp.evmgmt_predict_series;

	-- every projected interval of the series with the tier it reaches, once
	IF pg_catalog.to_regclass('pg_temp.evmgmt_predict_tiers') IS NULL THEN
		CREATE TEMPORARY TABLE evmgmt_predict_tiers (
			operation_id text, site_id text COLLATE "C", queue_id text COLLATE "C", pool evmgmt.pool,
			interval_start timestamptz, interval_minutes integer, scheduled real, drive text,
			driving_service_level double precision, driving_agents_needed integer, offered double precision,
			projected_service_level double precision, corrected_service_level double precision,
			volume_ratio double precision, aht_ratio double precision, below boolean, tier evmgmt.severity,
			run_started_at timestamptz
		) ON COMMIT DELETE ROWS;
	END IF;
	DELETE FROM pg_temp.evmgmt_predict_tiers;
	INSERT INTO pg_temp.evmgmt_predict_tiers
	WITH proj AS (
		SELECT p.*,
			   ARRAY[th.sev1_threshold, th.sev2_threshold, th.sev3_threshold] AS thresholds,
			   ARRAY[th.sev1_sustain, th.sev2_sustain, th.sev3_sustain] AS sustains
		FROM evmgmt.forecast_projection_at(p_now) p
		JOIN pg_temp.evmgmt_predict_series k ON k.site_id = p.site_id AND k.queue_id = p.queue_id AND k.pool = p.pool
		JOIN evmgmt.severity_thresholds th ON th.operation_id = p.operation_id
		JOIN evmgmt.effective_prediction_policy pol ON pol.operation_id = p.operation_id
		WHERE pol.enabled
	), runs AS (
		SELECT x.*, evmgmt.sustained_runs_below(x.driving_service_level, x.thresholds, x.interval_start, x.interval_minutes)
						OVER (PARTITION BY x.site_id, x.queue_id, x.pool ORDER BY x.interval_start) AS r
		FROM proj x
	), tiers AS (
		SELECT y.*, evmgmt.classify_sustained_runs(y.r[1], y.r[2], y.r[3], y.sustains[1], y.sustains[2], y.sustains[3]) AS tier
		FROM runs y
	)
	SELECT t.operation_id, t.site_id, t.queue_id, t.pool, t.interval_start, t.interval_minutes, t.scheduled, t.drive,
		   t.driving_service_level, t.driving_agents_needed,
		   CASE t.drive WHEN 'forecast' THEN t.forecast_offered::float8 ELSE t.corrected_offered END,
		   t.projected_service_level, t.corrected_service_level, t.volume_ratio, t.aht_ratio,
		   COALESCE(t.driving_service_level < GREATEST(t.thresholds[1], t.thresholds[2], t.thresholds[3])
					OR (t.driving_service_level <= 0 AND 0 = ANY (t.thresholds)), false),
		   t.tier,
		   CASE WHEN t.tier IS NOT NULL THEN
				t.interval_start + t.interval_minutes * interval '1 minute'
				- t.r[CASE t.tier WHEN 'sev1' THEN 1 WHEN 'sev2' THEN 2 ELSE 3 END] * interval '1 minute' END
	FROM tiers t;
	GET DIAGNOSTICS v_intervals = ROW_COUNT;
	SELECT pg_catalog.count(DISTINCT (t.site_id, t.queue_id, t.pool)) INTO v_breaching
	FROM pg_temp.evmgmt_predict_tiers t WHERE t.tier IS NOT NULL;

	-- the series that breach or have an open prediction, each with its
	-- intervals as the evidence, acted on one by one; and open predictions
	-- left without projected intervals, with none
	FOR c IN
		SELECT t.operation_id, t.site_id, t.queue_id, t.pool,
			   pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
				   'interval_start', t.interval_start, 'interval_minutes', t.interval_minutes,
				   'service_level', t.driving_service_level, 'agents_needed', t.driving_agents_needed,
				   'scheduled', t.scheduled, 'drive', t.drive, 'offered', t.offered,
				   'forecast_service_level', t.projected_service_level, 'corrected_service_level', t.corrected_service_level,
				   'volume_ratio', t.volume_ratio, 'aht_ratio', t.aht_ratio, 'below', t.below, 'tier', t.tier,
				   'run_started_at', t.run_started_at))
				   ORDER BY t.interval_start) AS rows
		FROM pg_temp.evmgmt_predict_tiers t
		WHERE (t.site_id, t.queue_id, t.pool) IN (SELECT x.site_id, x.queue_id, x.pool FROM pg_temp.evmgmt_predict_tiers x
												  WHERE x.tier IS NOT NULL
												  UNION
												  SELECT s.site_id, s.queue_id, s.pool FROM evmgmt.prediction_state s
												  WHERE s.status = 'predicted')
		GROUP BY t.operation_id, t.site_id, t.queue_id, t.pool
		UNION ALL
		-- open predictions whose forecast has gone beyond the horizon's reach
		-- (no projected interval left): over once their breach window has passed
		SELECT si.operation_id, s.site_id, s.queue_id, s.pool, '[]'::jsonb
		FROM evmgmt.prediction_state s
		JOIN evmgmt.site si ON si.site_id = s.site_id
		WHERE s.status = 'predicted' AND s.breach_ends_at <= p_now
		  AND NOT EXISTS (SELECT FROM evmgmt.interval_forecast f
						  WHERE f.site_id = s.site_id AND f.queue_id = s.queue_id AND f.pool = s.pool
							AND f.interval_start + f.interval_minutes * interval '1 minute' > p_now
							AND f.interval_start < p_now + interval '1 hour')
		  AND NOT EXISTS (SELECT FROM pg_temp.evmgmt_predict_tiers t
						  WHERE t.site_id = s.site_id AND t.queue_id = s.queue_id AND t.pool = s.pool)
		ORDER BY 2, 3, 4
	LOOP
		BEGIN
			v_decision := evmgmt.predict_series(c.site_id, c.queue_id, c.pool, c.operation_id, p_now, c.rows);
			IF v_decision IS NOT NULL THEN
				v_decisions := v_decisions + 1;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			v_failures := v_failures + 1;
			RAISE WARNING 'evmgmt prediction failed for series % % %: %', c.site_id, c.queue_id, c.pool, SQLERRM
				USING DETAIL = 'SQLSTATE ' || SQLSTATE || '. The other series were predicted; this one is tried again on the next pass.';
		END;
	END LOOP;

	-- done for what this pass saw: a load that changed a series since (its
	-- row is newer than this pass's snapshot, so changed_at differs here)
	-- leaves the series due for the next pass
	UPDATE evmgmt.forecast_series s SET predicted_at = v_marked
	FROM pg_temp.evmgmt_predict_series k
	WHERE k.site_id = s.site_id AND k.queue_id = s.queue_id AND k.pool = s.pool
	  AND s.changed_at = k.changed_at
	  AND (s.predicted_at IS NULL OR s.predicted_at < v_marked);
	-- forecasts of intervals that ended long ago are no longer read
	DELETE FROM evmgmt.interval_forecast f
	WHERE f.interval_start < p_now - evmgmt.setting_interval('evmgmt.forecast_retention', interval '35 days');
	INSERT INTO evmgmt.prediction_run (started_at, finished_at, full_pass, series, intervals, breaching, decisions, failures)
	VALUES (v_started, pg_catalog.clock_timestamp(), p_full, v_series, v_intervals, v_breaching, v_decisions, v_failures)
	RETURNING run_id INTO v_id;
	DELETE FROM evmgmt.prediction_run r WHERE r.started_at < p_now - interval '7 days';
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION evmgmt.run_predictions(timestamptz, boolean) IS 'One prediction pass at the given moment: projects the series whose forecast or actuals changed (all series with a forecast when full), applies the detection rule to the projected series and acts on each series that breaches or has an open prediction in its own subtransaction; records the pass in prediction_run and returns its id';

-- When the worker should run the next pass: now for changed series, else
-- evmgmt.prediction_refresh after the last full pass.
CREATE FUNCTION evmgmt.prediction_due(p_now timestamptz, OUT due_at timestamptz, OUT full_pass boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_last timestamptz;
BEGIN
	-- nothing to project: no forecast interval ahead within the longest
	-- horizon and no open prediction (only old forecasts to forget, maybe)
	IF NOT EXISTS (SELECT FROM evmgmt.interval_forecast f
				   WHERE f.interval_start > p_now - interval '1 hour' AND f.interval_start < p_now + interval '2 days'
					 AND f.interval_start + f.interval_minutes * interval '1 minute' > p_now)
	   AND NOT EXISTS (SELECT FROM evmgmt.prediction_state s WHERE s.status = 'predicted') THEN
		IF EXISTS (SELECT FROM evmgmt.interval_forecast f
				   WHERE f.interval_start < p_now - evmgmt.setting_interval('evmgmt.forecast_retention', interval '35 days')) THEN
			due_at := p_now;
			full_pass := false;
		END IF;
		RETURN;
	END IF;
	SELECT pg_catalog.max(r.started_at) INTO v_last FROM evmgmt.prediction_run r WHERE r.full_pass;
	IF v_last IS NULL OR v_last + evmgmt.setting_interval('evmgmt.prediction_refresh', interval '5 minutes') <= p_now THEN
		due_at := p_now;
		full_pass := true;
	ELSIF EXISTS (SELECT FROM evmgmt.forecast_series s WHERE s.predicted_at IS NULL OR s.predicted_at < s.changed_at) THEN
		due_at := p_now;
		full_pass := false;
	ELSE
		due_at := v_last + evmgmt.setting_interval('evmgmt.prediction_refresh', interval '5 minutes');
		full_pass := true;
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.prediction_due(timestamptz) IS 'When the next prediction pass is due and whether it is a full one (NULL when no forecast interval lies ahead within two days, no prediction is open and no forecast is older than evmgmt.forecast_retention)';

-- The outcome of every predicted event and every missed breach, for the
-- maturity figures: predicted events confirmed, averted or not confirmed
-- (and still open), and events detected from actuals that no prediction
-- foresaw.
CREATE VIEW evmgmt.prediction_outcome AS
SELECT e.event_id, e.operation_id, e.site_id, e.queue_id, e.event_type, e.opened_at,
	   'predicted'::text AS source,
	   CASE WHEN pg_catalog.bool_or(s.status = 'confirmed') THEN 'confirmed'
			WHEN pg_catalog.bool_or(s.status = 'predicted') THEN 'open'
			WHEN pg_catalog.bool_or(s.status = 'averted') THEN 'averted'
			ELSE 'not_confirmed' END AS outcome,
	   pg_catalog.min(s.breach_starts_at) AS breach_starts_at,
	   pg_catalog.round((EXTRACT(epoch FROM pg_catalog.min(s.breach_starts_at) - e.opened_at) / 60)::numeric, 1) AS lead_minutes
FROM evmgmt.event e
JOIN evmgmt.prediction_state s ON s.event_id = e.event_id
WHERE e.detection_source = 'predictive'
GROUP BY e.event_id
UNION ALL
SELECT e.event_id, e.operation_id, e.site_id, e.queue_id, e.event_type, e.opened_at, 'rule', 'missed', NULL, NULL
FROM evmgmt.event e
WHERE e.detection_source = 'rule'
  AND EXISTS (SELECT FROM evmgmt.forecast_series f JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
			  WHERE f.site_id = e.site_id AND f.queue_id = e.queue_id AND f.pool = pc.pool);
COMMENT ON VIEW evmgmt.prediction_outcome IS 'Every predicted event with its outcome (confirmed by actuals, averted, not confirmed, or still open) and lead time, and every event detected from actuals on a series with a forecast (missed: no prediction foresaw it)';

-- Detection continues a predicted event (47_detection_actions.sql).
CREATE OR REPLACE FUNCTION evmgmt.detect_point(p_site text, p_queue text, p_pool evmgmt.pool, p_operation text,
									pol evmgmt.effective_detection_policy, sustains integer[],
									thresholds double precision[], pt evmgmt.detection_row,
									buf evmgmt.detection_row[], backfill boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_rule constant text := 'sustained_service_level';
	v_end timestamptz := pt.interval_start + pt.interval_minutes * interval '1 minute';
	v_tier evmgmt.severity;
	v_k integer;
	v_run_start timestamptz;
	v_healthy boolean;
	d evmgmt.detection_state;
	v_found boolean;
	f record;
	v_esc_base double precision;
	v_tra_base double precision;
	inf record;
	v_figures jsonb;
	v_intervals jsonb;
	v_evidence jsonb;
	v_event bigint;
	v_inhibitor bigint;
	v_decision text;
	v_status text;
	v_transitions timestamptz[];
	v_closed timestamptz;
	v_state evmgmt.event_state;
	v_sev evmgmt.severity;
	v_title text;
	v_reason text;
BEGIN
	v_tier := evmgmt.classify_sustained_runs(pt.runs[1], pt.runs[2], pt.runs[3], sustains[1], sustains[2], sustains[3]);
	v_healthy := pt.service_level IS NOT NULL
				 AND COALESCE(pt.runs[1], 0) = 0 AND COALESCE(pt.runs[2], 0) = 0 AND COALESCE(pt.runs[3], 0) = 0;

	SELECT * INTO d FROM evmgmt.detection_state s
	WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool FOR UPDATE;
	v_found := FOUND;
	-- an event a responder resolved, closed or cancelled is no longer followed
	IF v_found AND d.status <> 'recovered' THEN
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = d.event_id AND pc.pool = p_pool;
		IF v_state IS NULL OR v_state IN ('resolved', 'cancelled')
		   OR EXISTS (SELECT FROM evmgmt.event e WHERE e.event_id = d.event_id
					  AND (e.closed_at IS NOT NULL OR e.cancelled_at IS NOT NULL)) THEN
			d.status := 'recovered';
		END IF;
	END IF;

	-- a point evaluated before (a re-delivery): only a breach worse than the
	-- one recorded acts again; nothing else is replayed
	IF v_found AND v_end <= d.evaluated_at
	   AND (v_tier IS NULL OR (d.status <> 'recovered' AND d.severity <= v_tier)) THEN
		RETURN;
	END IF;

	IF v_tier IS NULL THEN
		IF NOT v_found OR backfill THEN
			RETURN;
		END IF;
		IF d.status = 'recovered' THEN
			UPDATE evmgmt.detection_state s SET status = 'recovered', evaluated_at = v_end, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool AND s.status <> 'recovered';
			RETURN;
		END IF;
		v_status := d.status;
		v_transitions := ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x WHERE x > v_end - pol.flap_window ORDER BY x);
		IF NOT v_healthy THEN
			-- below a threshold again, not (yet) for long enough
			UPDATE evmgmt.detection_state s SET evaluated_at = v_end, healthy_intervals = 0, updated_at = pg_catalog.clock_timestamp()
			WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
			RETURN;
		END IF;
		IF d.status = 'breaching' THEN
			v_transitions := v_transitions || v_end;
			v_status := CASE WHEN pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN 'flapping' ELSE 'recovering' END;
			d.healthy_intervals := 1;
		ELSIF d.status = 'flapping' THEN
			d.healthy_intervals := d.healthy_intervals + 1;
			-- held until healthy for a whole flap window
			IF d.healthy_intervals * pt.interval_minutes * interval '1 minute' >= pol.flap_window THEN
				v_status := 'recovering';
			END IF;
		ELSE
			d.healthy_intervals := d.healthy_intervals + 1;
		END IF;
		v_evidence := pg_catalog.jsonb_build_object('figures', pg_catalog.jsonb_build_object(
						  'service_level', pt.service_level, 'healthy_intervals', d.healthy_intervals));
		IF v_status <> d.status THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', v_status, d.event_id, d.severity, v_evidence);
			PERFORM evmgmt.detection_note(d.event_id, p_pool, 'recovery',
				CASE v_status WHEN 'flapping' THEN pg_catalog.format('%s flapping: held at %s', p_pool, d.severity)
							  ELSE pg_catalog.format('%s recovering: service level %s%%', p_pool,
													 pg_catalog.round((pt.service_level * 100)::numeric)) END,
				pg_catalog.jsonb_build_object('status', v_status, 'data_time', pt.interval_start));
		END IF;
		-- opt-in auto-resolve (routine tiers, after a response was logged)
		IF v_status = 'recovering' AND pol.auto_resolve_after IS NOT NULL
		   AND d.healthy_intervals >= pol.auto_resolve_after AND v_sev = ANY (pol.auto_resolve_severities)
		   AND v_state = 'responding' THEN
			PERFORM evmgmt.resolve_pool(d.event_id, p_pool,
				pg_catalog.format('rule:recovery: healthy for %s intervals', d.healthy_intervals));
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, evidence)
			VALUES (p_site, p_queue, p_pool, pt.interval_start, 'recovery', 'auto_resolved', d.event_id, d.severity, v_evidence);
			v_status := 'recovered';
		END IF;
		UPDATE evmgmt.detection_state s
		SET status = v_status, evaluated_at = v_end, healthy_intervals = d.healthy_intervals,
			transitions = v_transitions, updated_at = pg_catalog.clock_timestamp()
		WHERE s.site_id = p_site AND s.queue_id = p_queue AND s.pool = p_pool;
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- a sustained breach at this interval: what it looks like
	------------------------------------------------------------------
	v_k := CASE v_tier WHEN 'sev1' THEN 1 WHEN 'sev2' THEN 2 ELSE 3 END;
	v_run_start := v_end - pt.runs[v_k] * interval '1 minute';
	SELECT pg_catalog.sum(x.offered)::float8 AS offered, pg_catalog.sum(x.handled)::float8 AS handled,
		   pg_catalog.avg(x.staffed) FILTER (WHERE x.scheduled IS NOT NULL) AS staffed,
		   pg_catalog.avg(x.scheduled) FILTER (WHERE x.staffed IS NOT NULL) AS scheduled,
		   pg_catalog.sum(x.offered) FILTER (WHERE x.forecast_offered IS NOT NULL)::float8 AS offered_fc,
		   pg_catalog.sum(x.forecast_offered)::float8 AS forecast_offered,
		   pg_catalog.sum(x.aht * x.handled) FILTER (WHERE x.forecast_aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS aht,
		   pg_catalog.sum(x.forecast_aht * x.handled) FILTER (WHERE x.aht IS NOT NULL)
			   / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.aht IS NOT NULL AND x.forecast_aht IS NOT NULL), 0) AS forecast_aht,
		   pg_catalog.sum(x.escalated)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.escalated IS NOT NULL), 0) AS escalated_share,
		   pg_catalog.sum(x.transferred)::float8 / NULLIF(pg_catalog.sum(x.handled) FILTER (WHERE x.transferred IS NOT NULL), 0) AS transferred_share,
		   pg_catalog.sum(x.answered)::float8 / NULLIF(pg_catalog.sum(x.offered), 0) AS service_level,
		   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
			   'interval_start', x.interval_start, 'minutes', x.interval_minutes, 'service_level', x.service_level,
			   'offered', x.offered, 'handled', x.handled, 'forecast_offered', x.forecast_offered,
			   'staffed', x.staffed, 'scheduled', x.scheduled, 'aht', x.aht, 'forecast_aht', x.forecast_aht,
			   'escalated', x.escalated, 'transferred', x.transferred) ORDER BY x.interval_start) AS intervals
	INTO f
	FROM pg_catalog.unnest(buf) x
	WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	-- process shares against the same series and interval of day, 7 days back
	IF f.escalated_share IS NOT NULL OR f.transferred_share IS NOT NULL THEN
		SELECT pg_catalog.sum(h.escalated)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.escalated IS NOT NULL), 0),
			   pg_catalog.sum(h.transferred)::float8 / NULLIF(pg_catalog.sum(h.handled) FILTER (WHERE h.transferred IS NOT NULL), 0)
		INTO v_esc_base, v_tra_base
		FROM pg_catalog.unnest(buf) x
		CROSS JOIN pg_catalog.generate_series(1, 7) k
		JOIN evmgmt.interval_stat h
		  ON h.interval_start = x.interval_start - k * interval '1 day'
		 AND h.site_id = p_site AND h.queue_id = p_queue AND h.pool = p_pool
		WHERE x.interval_start >= v_run_start AND x.interval_start <= pt.interval_start;
	END IF;
	SELECT * INTO inf FROM evmgmt.infer_event_type(f.offered, f.handled, f.staffed, f.scheduled,
		f.forecast_offered, f.offered_fc, f.aht, f.forecast_aht,
		f.escalated_share, v_esc_base, f.transferred_share, v_tra_base, pol) i;
	v_figures := pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'tier', v_tier, 'service_level', f.service_level, 'latest_service_level', pt.service_level,
		'run_started_at', v_run_start, 'run_minutes', pt.runs[v_k],
		'minutes_below_sev1', pt.runs[1], 'minutes_below_sev2', pt.runs[2], 'minutes_below_sev3', pt.runs[3],
		'thresholds', pg_catalog.to_jsonb(thresholds), 'sustain_minutes', pg_catalog.to_jsonb(sustains),
		'offered', f.offered, 'handled', f.handled, 'forecast_offered', f.forecast_offered,
		'staffed', f.staffed, 'scheduled', f.scheduled, 'aht', f.aht, 'forecast_aht', f.forecast_aht,
		'escalated_share', f.escalated_share, 'escalated_share_7d_mean', v_esc_base,
		'transferred_share', f.transferred_share, 'transferred_share_7d_mean', v_tra_base,
		'inferred_type', inf.event_type, 'inferred_subtype', inf.subtype, 'inference', inf.matched,
		'weak_inference', inf.weak));
	v_evidence := pg_catalog.jsonb_build_object('figures', v_figures, 'intervals', f.intervals);

	IF backfill THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'backfill', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'backfill' AND l.severity = v_tier);
		RETURN;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.maintenance_window w
			   WHERE w.site_id = p_site AND (w.queue_id IS NULL OR w.queue_id = p_queue)
				 AND (w.pool IS NULL OR w.pool = p_pool)
				 AND w.starts_at <= pt.interval_start AND w.ends_at > pt.interval_start) THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, severity, event_type, subtype, weak_inference, evidence)
		SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'maintenance', v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
		WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
						  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
							AND l.data_time = pt.interval_start AND l.decision = 'maintenance' AND l.severity = v_tier);
		RETURN;
	END IF;

	------------------------------------------------------------------
	-- which event the condition belongs to
	------------------------------------------------------------------
	IF v_found AND d.status <> 'recovered' THEN
		v_event := d.event_id;
	END IF;
	-- a breach prediction foresaw (49_prediction.sql): its event carries on
	IF v_event IS NULL AND EXISTS (SELECT FROM evmgmt.prediction_state ps
								   WHERE ps.site_id = p_site AND ps.queue_id = p_queue AND ps.pool = p_pool
									 AND ps.status = 'predicted') THEN
		v_event := evmgmt.prediction_confirm(p_site, p_queue, p_pool, pt.interval_start, v_tier);
		IF v_event IS NOT NULL THEN
			v_decision := 'continued';
		END IF;
	END IF;
	-- an open sev1 outage at the site/queue absorbs the lower tiers it explains
	SELECT e.event_id INTO v_inhibitor
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.site_id = p_site AND (e.queue_id IS NULL OR e.queue_id = p_queue) AND e.event_type = 'system'
	  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
	  AND pc.severity = 'sev1' AND pc.state NOT IN ('resolved', 'cancelled')
	  AND e.event_id IS DISTINCT FROM v_event
	ORDER BY e.event_id LIMIT 1;
	IF v_inhibitor IS NOT NULL THEN
		IF v_tier = 'sev1' AND inf.event_type = 'system' THEN
			v_event := v_inhibitor;
		ELSIF v_event IS NULL THEN
			INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
			SELECT p_site, p_queue, p_pool, pt.interval_start, v_rule, 'inhibited', v_inhibitor, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence
			WHERE NOT EXISTS (SELECT FROM evmgmt.detection_log l
							  WHERE l.site_id = p_site AND l.queue_id = p_queue AND l.pool = p_pool
								AND l.data_time = pt.interval_start AND l.decision = 'inhibited' AND l.severity = v_tier);
			RETURN;
		END IF;
	END IF;
	v_reason := pg_catalog.format('%s %s: service level below %s%% for %s min (tier %s)', v_rule, p_pool,
								  pg_catalog.round((thresholds[v_k] * 100)::numeric), pt.runs[v_k], v_tier);
	-- the same series breaching again within the recurrence window: its event
	IF v_event IS NULL AND v_found AND d.event_id IS NOT NULL THEN
		SELECT e.closed_at INTO v_closed FROM evmgmt.event e
		WHERE e.event_id = d.event_id AND e.cancelled_at IS NULL;
		IF v_closed IS NULL AND FOUND THEN
			v_event := d.event_id;
		ELSIF v_closed >= pg_catalog.now() - evmgmt.setting_interval('evmgmt.recurrence_window', interval '7 days') THEN
			PERFORM evmgmt.reopen_event(d.event_id, 'rule:' || v_reason, ARRAY[p_pool]);
			v_event := d.event_id;
			v_decision := 'reopened';
		END IF;
	END IF;
	-- one event per condition: the open event of the site, queue and type
	-- (also one a responder retyped from that type: reclassify_type)
	IF v_event IS NULL THEN
		SELECT e.event_id INTO v_event FROM evmgmt.event e
		WHERE e.site_id = p_site AND e.queue_id = p_queue
		  AND (e.event_type = inf.event_type
			   OR EXISTS (SELECT FROM evmgmt.event_timeline t
						  WHERE t.event_id = e.event_id AND t.action = 'reclassified' AND t.pool IS NULL
							AND t.details ->> 'from_type' = inf.event_type::text))
		  AND e.closed_at IS NULL AND e.cancelled_at IS NULL
		ORDER BY e.event_id DESC LIMIT 1;
	END IF;
	IF v_event IS NULL THEN
		v_title := pg_catalog.format('%s at %s %s: service level %s%% for %s min',
			COALESCE((SELECT st.name FROM evmgmt.event_subtype st WHERE st.subtype = inf.subtype), pg_catalog.initcap(inf.event_type::text)),
			p_site, p_queue, pg_catalog.round((COALESCE(f.service_level, 0) * 100)::numeric), pt.runs[v_k]);
		v_event := evmgmt.open_event(inf.event_type, p_site, ARRAY[p_pool], 'rule', v_title,
									 LEAST(v_run_start, pg_catalog.now()), p_queue, inf.subtype,
									 'Opened by rule ' || v_rule || ': ' || inf.matched
									 || CASE WHEN inf.weak THEN ' (weak inference: check the type)' ELSE '' END);
		PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
		v_decision := 'opened';
	ELSE
		SELECT pc.state, pc.severity INTO v_state, v_sev FROM evmgmt.pool_condition pc
		WHERE pc.event_id = v_event AND pc.pool = p_pool;
		IF NOT FOUND THEN
			PERFORM evmgmt.add_pool(v_event, p_pool, 'rule:' || v_reason);
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := 'joined';
		ELSIF v_state = 'detected' THEN
			PERFORM evmgmt.classify_pool(v_event, p_pool, v_tier);
			v_decision := COALESCE(v_decision, 'joined');
		ELSIF v_state = 'cancelled' THEN
			v_decision := NULL;		-- a responder called it a false positive
		ELSE
			IF v_state = 'resolved' THEN
				PERFORM evmgmt.reopen_pool(v_event, p_pool, 'rule:' || v_reason);
				v_decision := 'reopened';
			END IF;
			IF v_sev > v_tier THEN
				PERFORM evmgmt.reclassify_pool(v_event, p_pool, v_tier, 'rule:' || v_reason);
				v_decision := COALESCE(v_decision, 'raised');
			END IF;
		END IF;
	END IF;

	-- the series' own state; a breach after recovering is a transition
	v_transitions := CASE WHEN v_found THEN ARRAY(SELECT x FROM pg_catalog.unnest(d.transitions) x
												  WHERE x > v_end - pol.flap_window ORDER BY x)
					 ELSE '{}' END;
	v_status := 'breaching';
	IF v_found AND d.status IN ('recovering', 'recovered') AND d.event_id = v_event THEN
		v_transitions := v_transitions || v_end;
		v_decision := COALESCE(v_decision, 'continued');
	END IF;
	IF v_found AND d.status = 'flapping' AND d.event_id = v_event THEN
		v_status := 'flapping';
	ELSIF pg_catalog.cardinality(v_transitions) >= pol.flap_transitions THEN
		IF d.status IS DISTINCT FROM 'flapping' THEN
			v_decision := COALESCE(v_decision, 'flapping');
		END IF;
		v_status := 'flapping';
	END IF;
	INSERT INTO evmgmt.detection_state AS s (site_id, queue_id, pool, status, severity, event_id, breach_started_at,
											 evaluated_at, healthy_intervals, transitions)
	VALUES (p_site, p_queue, p_pool, v_status, v_tier, v_event, v_run_start, v_end, 0, v_transitions)
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE
	SET status = EXCLUDED.status,
		severity = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN LEAST(s.severity, EXCLUDED.severity)
						ELSE EXCLUDED.severity END,
		event_id = EXCLUDED.event_id,
		breach_started_at = CASE WHEN s.event_id = EXCLUDED.event_id AND s.status <> 'recovered' THEN s.breach_started_at
								 ELSE EXCLUDED.breach_started_at END,
		evaluated_at = EXCLUDED.evaluated_at, healthy_intervals = 0, transitions = EXCLUDED.transitions,
		updated_at = pg_catalog.clock_timestamp();

	IF v_decision IS NOT NULL THEN
		INSERT INTO evmgmt.detection_log (site_id, queue_id, pool, data_time, rule, decision, event_id, severity, event_type, subtype, weak_inference, evidence)
		VALUES (p_site, p_queue, p_pool, pt.interval_start, v_rule, v_decision, v_event, v_tier, inf.event_type, inf.subtype, inf.weak, v_evidence);
		PERFORM evmgmt.detection_note(v_event, p_pool, v_rule, v_decision || ': ' || v_reason,
			pg_catalog.jsonb_build_object('decision', v_decision, 'data_time', pt.interval_start, 'tier', v_tier,
										  'suggested_type', inf.event_type, 'suggested_subtype', inf.subtype,
										  'weak_inference', inf.weak));
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.detect_point(text, text, evmgmt.pool, text, evmgmt.effective_detection_policy, integer[], double precision[], evmgmt.detection_row, evmgmt.detection_row[], boolean) IS 'Detection for one series at one interval in data time: opens, joins, raises or reopens through the lifecycle functions, marks recovering or flapping, or records a suppressed breach (maintenance, inhibition, backfill) with its evidence';

-- Actuals mark a forecast series for prediction (20_intervals.sql).
CREATE OR REPLACE FUNCTION evmgmt.interval_stat_loaded() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_touch evmgmt.interval_touch[] := evmgmt.interval_stat_touched();
	v_bad text;
BEGIN
	IF v_touch IS NULL THEN
		PERFORM evmgmt.interval_stat_load_end();
		RETURN NULL;
	END IF;

	-- Codes, once per statement.  The sites and queues named are locked as a
	-- foreign key would (KEY SHARE), so that they cannot go away before commit.
	PERFORM FROM evmgmt.site s WHERE s.site_id IN (SELECT t.site_id FROM pg_catalog.unnest(v_touch) t) FOR KEY SHARE;
	PERFORM FROM evmgmt.queue q WHERE q.queue_id IN (SELECT t.queue_id FROM pg_catalog.unnest(v_touch) t) FOR KEY SHARE;
	SELECT t.site_id INTO v_bad FROM pg_catalog.unnest(v_touch) t
	WHERE NOT EXISTS (SELECT FROM evmgmt.site s WHERE s.site_id = t.site_id) ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'insert or update on table "interval_stat" violates foreign key constraint "interval_stat_site_id_fkey"'
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'interval_stat_site_id_fkey',
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat', COLUMN = 'site_id',
				  DETAIL = pg_catalog.format('Key (site_id)=(%s) is not present in table "site".', v_bad);
	END IF;
	SELECT t.queue_id INTO v_bad FROM pg_catalog.unnest(v_touch) t
	WHERE NOT EXISTS (SELECT FROM evmgmt.queue q WHERE q.queue_id = t.queue_id) ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'insert or update on table "interval_stat" violates foreign key constraint "interval_stat_queue_id_fkey"'
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'interval_stat_queue_id_fkey',
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat', COLUMN = 'queue_id',
				  DETAIL = pg_catalog.format('Key (queue_id)=(%s) is not present in table "queue".', v_bad);
	END IF;

	-- Re-delivery: only rows at or before a series' high-water mark can meet
	-- an earlier row (the deferred key lets both stand until here); the
	-- frame noted exactly those keys.  Of the copies of such a key one is
	-- kept: the one this transaction stored last.
	IF EXISTS (SELECT FROM pg_catalog.unnest(v_touch) t WHERE t.first_start <= t.prev_last_start) THEN
		WITH cand AS (
			SELECT DISTINCT r.interval_start, r.site_id, r.queue_id, r.pool
			FROM evmgmt.interval_stat_redelivered() r
		), copies AS (
			SELECT x.tableoid AS rel, x.ctid AS tid,
				   pg_catalog.row_number() OVER (
					   PARTITION BY x.interval_start, x.site_id, x.queue_id, x.pool
					   ORDER BY evmgmt.stored_by_this_transaction(x.xmin) DESC,
								CASE WHEN evmgmt.stored_by_this_transaction(x.xmin)
									 THEN x.cmin::text::bigint END DESC NULLS LAST,
								x.tableoid DESC, x.ctid DESC) AS rank
			FROM evmgmt.interval_stat x
			JOIN cand c ON x.interval_start = c.interval_start AND x.site_id = c.site_id
					   AND x.queue_id = c.queue_id AND x.pool = c.pool
		)
		DELETE FROM evmgmt.interval_stat x USING copies c
		WHERE c.rank > 1 AND x.tableoid = c.rel AND x.ctid = c.tid;
	END IF;
	PERFORM evmgmt.interval_stat_load_end();

	INSERT INTO evmgmt.interval_series AS s (site_id, queue_id, pool, first_interval_start, last_interval_start, last_loaded_at)
	SELECT t.site_id, t.queue_id, t.pool, t.first_start, t.last_start, pg_catalog.clock_timestamp()
	FROM pg_catalog.unnest(v_touch) t
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE
	SET first_interval_start = LEAST(s.first_interval_start, EXCLUDED.first_interval_start),
		last_interval_start = GREATEST(s.last_interval_start, EXCLUDED.last_interval_start),
		last_loaded_at = EXCLUDED.last_loaded_at;

	-- Detection over the series this statement touched (47_detection_actions.sql),
	-- not for rows a restore brings back; the worker is woken at commit
	-- (feed health depends on what arrived).
	IF pg_catalog.current_setting('evmgmt.restoring', true) IS DISTINCT FROM 'on' THEN
		-- for the operation, whatever sites the loading role is bound to
		PERFORM evmgmt.site_scope_exempt(true);
		PERFORM evmgmt.detect_loaded(v_touch);
		PERFORM evmgmt.site_scope_exempt(false);
		-- actuals change the intraday correction of a forecast series: the
		-- worker predicts it again (49_prediction.sql)
		UPDATE evmgmt.forecast_series f SET changed_at = pg_catalog.clock_timestamp()
		FROM pg_catalog.unnest(v_touch) t
		WHERE f.site_id = t.site_id AND f.queue_id = t.queue_id AND f.pool = t.pool;
		PERFORM evmgmt.wake_workers();
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_stat_loaded() IS 'Statement trigger of interval_stat: checks site and queue codes set-based (foreign-key wording and names), replaces re-delivered intervals, keeps interval_series and runs detection on the series the statement touched';

-- Prediction and runbook facts; runbooks in pages (54_templates.sql).
CREATE OR REPLACE FUNCTION evmgmt.event_facts(event_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	f jsonb;
	v_queue text;
	v_site text;
	v_pool evmgmt.pool;
	st record;
	po text;
	prefix text := COALESCE(pg_catalog.current_setting('evmgmt.event_link_prefix', true), '');
	v_any evmgmt.severity;
BEGIN
	-- the tier of a cancelled event is the one it had
	SELECT pg_catalog.min(pc.severity) INTO v_any FROM evmgmt.pool_condition pc WHERE pc.event_id = p_event;
	SELECT pg_catalog.jsonb_build_object(
			'event_id', r.event_id, 'operation_id', r.operation_id,
			'tier', COALESCE(r.floor_severity::text, v_any::text, 'unclassified'),
			'severity', COALESCE(r.floor_severity::text, v_any::text, 'unclassified'),
			'type', r.event_type, 'subtype', COALESCE(r.subtype, ''),
			'site', r.site_id, 'site_name', s.name, 'time_zone', s.time_zone, 'queue', COALESCE(r.queue_id, ''),
			'title', r.title, 'state', r.state,
			'pools', (SELECT pg_catalog.string_agg(pc.pool || ' ' || COALESCE(pc.severity::text, 'unclassified'), ', '
												   ORDER BY pc.severity NULLS LAST, pc.pool)
					  FROM evmgmt.pool_condition pc
					  WHERE pc.event_id = r.event_id AND (pc.state <> 'cancelled' OR r.floor_severity IS NULL)),
			'opened_at', pg_catalog.to_char(r.opened_at AT TIME ZONE s.time_zone, 'YYYY-MM-DD HH24:MI') || ' ' || s.time_zone,
			'link', CASE WHEN prefix <> '' THEN prefix || r.event_id END),
		   r.queue_id, r.site_id
	INTO f, v_queue, v_site
	FROM evmgmt.event_rollup r
	JOIN evmgmt.site s ON s.site_id = r.site_id
	WHERE r.event_id = p_event;

	-- Power of One for the queue, when the Erlang functions are there and
	-- the queue has a recent interval with staffing and handle time.
	IF v_queue IS NOT NULL
	   AND pg_catalog.to_regprocedure('evmgmt.power_of_one(double precision,integer,double precision,double precision,integer)') IS NOT NULL THEN
		SELECT pc.pool INTO v_pool FROM evmgmt.pool_condition pc
		WHERE pc.event_id = p_event ORDER BY pc.severity NULLS LAST, pc.pool LIMIT 1;
		SELECT i.offered, i.aht_seconds, i.staffed, i.interval_minutes, i.threshold_seconds INTO st
		FROM evmgmt.interval_stat i
		WHERE i.site_id = v_site AND i.queue_id = v_queue AND i.pool = v_pool
		  AND i.staffed IS NOT NULL AND i.aht_seconds IS NOT NULL
		ORDER BY i.interval_start DESC LIMIT 1;
		IF FOUND AND st.offered > 0 AND pg_catalog.round(st.staffed) >= 2 THEN
			EXECUTE $q$
				SELECT 'Power of One: ' || pg_catalog.string_agg(
						 p.agents || ' agents SL ' || pg_catalog.round((p.service_level * 100)::numeric) || '%', ', '
						 ORDER BY pg_catalog.abs(p.delta), p.delta DESC)
				FROM evmgmt.power_of_one($1, $2, $3, $4, 1) p
				WHERE p.delta BETWEEN -1 AND 1$q$
			INTO po
			USING st.offered * st.aht_seconds / (st.interval_minutes * 60.0), pg_catalog.round(st.staffed)::integer,
				  st.aht_seconds::double precision, st.threshold_seconds::double precision;
			f := f || pg_catalog.jsonb_build_object('power_of_one', po);
		END IF;
	END IF;
	-- what rule-driven detection saw for each of its decisions on the event
	-- (detection_log, 32_detection.sql): rule, tier, inferred type, figures
	f := f || COALESCE((
		SELECT pg_catalog.jsonb_build_object('evidence', pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
				   'decision', l.decision, 'rule', l.rule, 'pool', l.pool, 'data_time', l.data_time,
				   'figures', l.evidence -> 'figures') ORDER BY l.detection_id))
		FROM evmgmt.detection_log l
		WHERE l.event_id = p_event
		HAVING pg_catalog.count(*) > 0), '{}');
	-- what prediction foresaw (49_prediction.sql): the projected service
	-- level of the worst breaching interval, when the breach starts and the
	-- agents to add to the schedule
	f := f || COALESCE((
		SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
				   'prediction', pg_catalog.string_agg(ps.pool || ' ' || ps.status, ', ' ORDER BY ps.pool),
				   'projected_service_level', pg_catalog.min(ps.projected_service_level),
				   'projected_service_level_pct', pg_catalog.round((pg_catalog.min(ps.projected_service_level) * 100)::numeric) || '%',
				   'breach_starts_at', pg_catalog.min(ps.breach_starts_at),
				   'breach_starts', pg_catalog.to_char(pg_catalog.min(ps.breach_starts_at) AT TIME ZONE (f ->> 'time_zone'), 'YYYY-MM-DD HH24:MI')
									|| ' ' || (f ->> 'time_zone'),
				   'agents_needed', pg_catalog.max(ps.agents_needed)))
		FROM evmgmt.prediction_state ps
		WHERE ps.event_id = p_event
		HAVING pg_catalog.count(*) > 0), '{}');
	-- the runbook for the event's type, subtype and pool (74_runbooks.sql)
	f := f || COALESCE(evmgmt.runbook_facts(p_event), '{}');
	RETURN f;
END
$$;
COMMENT ON FUNCTION evmgmt.event_facts(bigint) IS 'Facts about an event for messages: tier, type, site, pools with severities, title, state, opening time in the site zone, link and, when available, the Power-of-One figures of its queue, detection''s evidence, what prediction foresaw (projected_service_level, breach_starts_at, agents_needed) and the runbook (runbook, runbook_short)';

CREATE OR REPLACE FUNCTION evmgmt.render_message(kind text, channel evmgmt.channel, operation_id text, vars jsonb,
									  OUT subject text, OUT body text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	t record;
BEGIN
	SELECT m.subject, m.body, m.max_length INTO t
	FROM evmgmt.message_template m
	WHERE m.kind = $1 AND m.channel = $2 AND (m.operation_id = $3 OR m.builtin)
	ORDER BY m.builtin
	LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no message template for kind "%" and channel %', $1, $2
			USING ERRCODE = 'undefined_object',
				  HINT = 'The built-in templates cover every kind and channel; restore them by recreating the extension.';
	END IF;
	subject := evmgmt.fill_template_fields(t.subject, vars);
	body := evmgmt.fill_template_fields(t.body, vars);
	-- A page that can be acknowledged from where it lands says how, even when
	-- its template has no {{ack_...}} field: first on SMS (so that cutting
	-- keeps it), last elsewhere.
	IF $1 = 'escalation_step' AND COALESCE(vars ->> 'ack_hint', '') <> '' AND t.body !~ '\{\{ack_' THEN
		body := CASE WHEN $2 = 'sms' THEN (vars ->> 'ack_hint') || ' ' || body
					 ELSE body || CASE WHEN $2 = 'email' THEN E'\n\n' ELSE ' ' END || (vars ->> 'ack_hint') END;
	END IF;
	-- A page or an opening message carries the event's runbook (74_runbooks.sql)
	-- when its template does not place it: in full by e-mail, else its first
	-- step and a link to the rest.
	IF $1 IN ('escalation_step', 'opened') AND COALESCE(vars ->> 'runbook', '') <> '' AND t.body !~ '\{\{runbook' THEN
		body := body || CASE $2 WHEN 'email' THEN E'\n\nRunbook:\n' || (vars ->> 'runbook')
								WHEN 'voice' THEN ''
								ELSE ' ' || (vars ->> 'runbook_short') END;
	END IF;
	body := evmgmt.fit_length(body, t.max_length);
END
$$;
COMMENT ON FUNCTION evmgmt.render_message(text, evmgmt.channel, text, jsonb) IS 'Renders the subject and body of a message from the operation''s template or the built-in one (with the ack hint of a page whose template has no {{ack_...}} field), cut to the channel''s length';

-- Predictions below page_up_to page nobody (60_runs.sql).
CREATE OR REPLACE FUNCTION evmgmt.escalation_start(event_id bigint, pool evmgmt.pool, reason text,
										now timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_event bigint := $1;
	p_pool evmgmt.pool := $2;
	p_reason text := $3;
	p_now timestamptz := $4;
	c record;
	old record;
	v_plan text;
	v_snapshot jsonb;
	v_first integer;
	v_id bigint;
BEGIN
	IF p_reason IS NULL OR p_reason NOT IN ('opened', 'upgraded', 'response_breach', 'resolution_breach', 'status_overdue', 'manual') THEN
		RAISE EXCEPTION 'unknown escalation start reason "%"', p_reason
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use opened, upgraded, response_breach, resolution_breach, status_overdue or manual.';
	END IF;
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	PERFORM evmgmt.lock_event(p_event, true);
	SELECT x.operation_id, x.event_type, x.site_id, pc.severity, pc.state
	INTO c
	FROM evmgmt.pool_condition pc JOIN evmgmt.event x ON x.event_id = pc.event_id
	WHERE pc.event_id = p_event AND pc.pool = p_pool
	FOR UPDATE OF pc;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'event % has no condition in pool %', p_event, p_pool
			USING ERRCODE = 'no_data_found';
	END IF;
	IF c.state IN ('resolved', 'cancelled') THEN
		RAISE EXCEPTION 'cannot start an escalation for pool % of event %', p_pool, p_event
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = pg_catalog.format('The pool condition is %s.', c.state);
	END IF;

	IF p_reason IN ('opened', 'upgraded') THEN
		-- a new classification replaces the escalation that ran for the old one
		FOR old IN SELECT x.escalation_id FROM evmgmt.escalation x
				   WHERE x.event_id = p_event AND x.pool = p_pool AND x.state = 'active'
					 AND x.start_reason IN ('opened', 'upgraded', 'manual')
				   ORDER BY x.escalation_id
				   FOR UPDATE
		LOOP
			UPDATE evmgmt.escalation
			SET state = 'superseded', ended_at = p_now, next_due_at = NULL, next_step_no = NULL, next_retry_no = 0, end_reason = 'superseded: ' || p_reason
			WHERE escalation_id = old.escalation_id;
			PERFORM evmgmt.cancel_unsent(old.escalation_id);
		END LOOP;
		PERFORM evmgmt.footprint_open(p_event, p_now);
	ELSE
		SELECT x.escalation_id INTO v_id FROM evmgmt.escalation x
		WHERE x.event_id = p_event AND x.pool = p_pool AND x.state = 'active' AND x.start_reason = p_reason;
		IF FOUND THEN
			RETURN v_id;
		END IF;
	END IF;

	-- a prediction below the tiers the operation lets predictions page for
	-- told the footprint's audiences (above) and pages nobody
	IF NOT evmgmt.prediction_pages(p_event, p_pool) THEN
		RETURN NULL;
	END IF;

	SELECT p.plan_id INTO v_plan
	FROM evmgmt.escalation_plan p
	WHERE p.active
	  AND (p.operation_id IS NULL OR p.operation_id = c.operation_id)
	  AND (p.severities IS NULL OR c.severity = ANY (p.severities))
	  AND (p.event_types IS NULL OR c.event_type = ANY (p.event_types))
	  AND (p.site_ids IS NULL OR c.site_id = ANY (p.site_ids))
	  AND (p.pools IS NULL OR p_pool = ANY (p.pools))
	  AND (p.start_reasons IS NULL OR p_reason = ANY (p.start_reasons))
	  AND EXISTS (SELECT FROM evmgmt.escalation_step s WHERE s.plan_id = p.plan_id)
	ORDER BY p.priority, p.operation_id IS NULL, p.plan_id
	LIMIT 1;
	IF v_plan IS NULL THEN
		RETURN NULL;
	END IF;
	v_snapshot := evmgmt.plan_snapshot(v_plan);
	v_first := evmgmt.snapshot_next_step(v_snapshot, NULL);
	INSERT INTO evmgmt.escalation (event_id, pool, plan_id, plan_snapshot, started_at, start_reason, next_step_no, next_due_at)
	VALUES (p_event, p_pool, v_plan, v_snapshot, p_now, p_reason, v_first,
			evmgmt.escalation_step_due(v_snapshot, p_now, 1, v_first))
	RETURNING escalation_id INTO v_id;
	RETURN v_id;
END
$$;
COMMENT ON FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz) IS 'Starts the escalation of a pool condition with the matching plan (lowest priority number; criteria severity, type, site, pool, start reason), snapshotting the plan; opened/upgraded replace the running one and send the footprint''s open messages; returns the escalation id or NULL when no plan matches or the condition is a prediction below the tiers predictions page for (prediction_pages)';

-- The prediction pass in due work (68_run_due_work.sql).
CREATE OR REPLACE FUNCTION evmgmt.run_due_work(now timestamptz) RETURNS timestamptz
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	p_now timestamptz := $1;
	v_batch integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.escalation_batch_size', true), '')::integer, 500);
	v_more boolean := false;
	v_busy boolean := false;
	v_failures boolean;
	v_next timestamptz;
	v_feed timestamptz;
	v_pred timestamptz;
	v_lock text;
	n integer;
	r record;
BEGIN
	IF p_now IS NULL THEN
		RAISE EXCEPTION 'run_due_work needs a moment' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NOT (p_now >= timestamptz '2000-01-01 00:00+00' AND p_now < timestamptz '2200-01-01 00:00+00') THEN
		RAISE EXCEPTION 'the moment of run_due_work must lie between 2000-01-01 and 2200-01-01'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'It is ' || p_now || '.';
	END IF;
	IF v_batch < 1 OR v_batch > 100000 THEN
		v_batch := 500;
	END IF;

	-- Failures of items that are no longer due (acknowledged, resolved,
	-- rescheduled away) are forgotten, unless they were parked: those stay
	-- until an admin deletes them.
	v_failures := EXISTS (SELECT FROM evmgmt.work_failure);
	IF v_failures THEN
		DELETE FROM evmgmt.work_failure f
		WHERE NOT f.parked AND NOT CASE
			WHEN f.item = 'status' THEN
				EXISTS (SELECT FROM evmgmt.status_schedule s
						WHERE s.event_id = f.event_id AND s.ended_at IS NULL AND s.next_status_at IS NOT NULL)
			WHEN f.item LIKE 'escalation %' THEN
				EXISTS (SELECT FROM evmgmt.escalation e
						WHERE e.event_id = f.event_id AND f.item = 'escalation ' || e.escalation_id AND e.state = 'active')
			ELSE
				EXISTS (SELECT FROM evmgmt.target_timer t
						WHERE t.event_id = f.event_id AND t.next_at IS NOT NULL
						  AND f.item = 'timer ' || t.pool || ' ' || t.target)
			END;
	END IF;

	-- Candidates are read without locks; each is then taken event first
	-- (SKIP LOCKED: a busy event waits for the next call) and re-checked
	-- under its own row lock, so a concurrent caller never fires it twice.
	n := 0;
	FOR r IN SELECT t.event_id, t.pool, t.target, 'timer ' || t.pool || ' ' || t.target AS item
			 FROM evmgmt.target_timer t
			 WHERE t.next_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = t.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target
								 AND (f.parked OR f.retry_at > p_now))
			 ORDER BY t.next_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.target_timer t
		WHERE t.event_id = r.event_id AND t.pool = r.pool AND t.target = r.target AND t.next_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.target_timer_fire(r.event_id, r.pool, r.target, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT s.event_id, 'status' AS item FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = s.event_id AND f.item = 'status' AND (f.parked OR f.retry_at > p_now))
			 ORDER BY s.next_status_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.status_schedule s
		WHERE s.event_id = r.event_id AND s.ended_at IS NULL AND s.next_status_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.status_tick(r.event_id, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	n := 0;
	FOR r IN SELECT e.escalation_id, e.event_id, 'escalation ' || e.escalation_id AS item
			 FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at <= p_now
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = e.event_id AND f.item = 'escalation ' || e.escalation_id
								 AND (f.parked OR f.retry_at > p_now))
			 ORDER BY e.next_due_at LIMIT v_batch
	LOOP
		n := n + 1;
		IF NOT evmgmt.lock_event(r.event_id, false) THEN
			v_busy := true;
			CONTINUE;
		END IF;
		PERFORM FROM evmgmt.escalation e
		WHERE e.escalation_id = r.escalation_id AND e.state = 'active' AND e.next_due_at <= p_now
		FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		BEGIN
			PERFORM evmgmt.escalation_advance(r.escalation_id, p_now);
			IF v_failures THEN
				DELETE FROM evmgmt.work_failure f WHERE f.event_id = r.event_id AND f.item = r.item;
			END IF;
		EXCEPTION WHEN OTHERS THEN
			PERFORM evmgmt.work_failure_record(r.event_id, r.item, SQLSTATE, SQLERRM, p_now);
		END;
	END LOOP;
	v_more := v_more OR n >= v_batch;

	-- Interval upkeep (25_partitions.sql, 48_feed_health.sql): partitions
	-- ahead of time, and sites whose feed went silent.  Last, and never
	-- waiting for a lock (a load or DDL holding one; the locks it took are
	-- given back when it gives up): it is tried again on the next call.
	v_lock := pg_catalog.current_setting('lock_timeout');
	BEGIN
		PERFORM pg_catalog.set_config('lock_timeout', '200ms', true);
		PERFORM evmgmt.maintain_interval_partitions(p_now);
		v_feed := evmgmt.check_feed_health(p_now);
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
	EXCEPTION
		WHEN lock_not_available THEN
			PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
			v_feed := p_now + interval '1 second';
		WHEN OTHERS THEN
			-- never a poison pill: the steps fired above still commit
			PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
			RAISE WARNING 'evmgmt interval upkeep failed: %', SQLERRM
				USING DETAIL = 'SQLSTATE ' || SQLSTATE || '. It is tried again in 10 seconds; escalations are not held up.';
			v_feed := p_now + interval '10 seconds';
	END;

	-- Prediction (49_prediction.sql): a pass when a load changed a series'
	-- inputs, and every evmgmt.prediction_refresh; never a poison pill (each
	-- series has its own subtransaction inside, and a failing pass is
	-- reported and tried again in 10 seconds)
	SELECT d.due_at, d.full_pass INTO r FROM evmgmt.prediction_due(p_now) d;
	v_pred := r.due_at;
	IF v_pred <= p_now THEN
		BEGIN
			PERFORM evmgmt.run_predictions(p_now, r.full_pass);
			SELECT d.due_at INTO v_pred FROM evmgmt.prediction_due(p_now) d;
			IF v_pred <= p_now THEN
				v_pred := p_now + interval '1 second';
			END IF;
		EXCEPTION WHEN OTHERS THEN
			RAISE WARNING 'evmgmt prediction pass failed: %', SQLERRM
				USING DETAIL = 'SQLSTATE ' || SQLSTATE || '. It is tried again in 10 seconds; escalations are not held up.';
			v_pred := p_now + interval '10 seconds';
		END;
	END IF;
	v_feed := LEAST(v_feed, v_pred);

	IF v_more THEN
		RETURN p_now;
	END IF;
	v_failures := v_failures OR EXISTS (SELECT FROM evmgmt.work_failure);
	IF NOT v_failures THEN
		v_next := LEAST((SELECT pg_catalog.min(e.next_due_at) FROM evmgmt.escalation e WHERE e.state = 'active'),
						(SELECT pg_catalog.min(s.next_status_at) FROM evmgmt.status_schedule s WHERE s.ended_at IS NULL),
						(SELECT pg_catalog.min(t.next_at) FROM evmgmt.target_timer t WHERE t.next_at IS NOT NULL),
						v_feed);
	ELSE
		-- items that failed count at their retry time, parked ones not at all
		v_next := LEAST(
			(SELECT e.next_due_at FROM evmgmt.escalation e
			 WHERE e.state = 'active' AND e.next_due_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = e.event_id AND f.item = 'escalation ' || e.escalation_id)
			 ORDER BY e.next_due_at LIMIT 1),
			(SELECT s.next_status_at FROM evmgmt.status_schedule s
			 WHERE s.ended_at IS NULL AND s.next_status_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f WHERE f.event_id = s.event_id AND f.item = 'status')
			 ORDER BY s.next_status_at LIMIT 1),
			(SELECT t.next_at FROM evmgmt.target_timer t
			 WHERE t.next_at IS NOT NULL
			   AND NOT EXISTS (SELECT FROM evmgmt.work_failure f
							   WHERE f.event_id = t.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target)
			 ORDER BY t.next_at LIMIT 1),
			(SELECT pg_catalog.min(GREATEST(f.retry_at,
				CASE WHEN f.item = 'status' THEN
						(SELECT s.next_status_at FROM evmgmt.status_schedule s WHERE s.event_id = f.event_id AND s.ended_at IS NULL)
					 WHEN f.item LIKE 'escalation %' THEN
						(SELECT e.next_due_at FROM evmgmt.escalation e
						 WHERE e.event_id = f.event_id AND f.item = 'escalation ' || e.escalation_id AND e.state = 'active')
					 ELSE
						(SELECT t.next_at FROM evmgmt.target_timer t
						 WHERE t.event_id = f.event_id AND f.item = 'timer ' || t.pool || ' ' || t.target) END))
			 FROM evmgmt.work_failure f WHERE NOT f.parked),
			v_feed);
	END IF;
	-- what is left due belongs to events busy elsewhere: look again shortly
	-- rather than at once
	IF v_busy AND v_next <= p_now THEN
		v_next := p_now + interval '1 second';
	END IF;
	RETURN v_next;
END
$$;
COMMENT ON FUNCTION evmgmt.run_due_work(timestamptz) IS 'Fires every due target timer, status update and escalation step at the given moment in the caller''s transaction (event, then row, locked with SKIP LOCKED, so concurrent callers never double-fire and never wait; each item in its own subtransaction, a failing one recorded in work_failure, retried with backoff or parked, the others fired on time), then keeps interval partitions ahead and opens feed-health events for silent sites, and returns when something is due next (NULL: nothing scheduled; the given moment: more is due than one batch; a second later when what is due belongs to events busy in other transactions)';

-- Rule-driven response (docs/prediction.md, "Response rules"): routine
-- conditions handled without the ROC.
--
-- A response rule of an operation names a condition (event types, subtypes,
-- a tier range, pools, sites, queues, predicted or actual) and a lever of the
-- catalogue.  When a pool condition that matches is classified or raised,
-- the rule logs the lever on it (diagnosing a classified condition with the
-- cause category of its type and the lever's class first) and sends a signed
-- webhook with the lever and the event's facts to the operation's WFM or
-- routing system, through the outbox.  A rule fires at most once per event,
-- pool and lever; each rule has a cap of actions per hour; one switch stops
-- every rule at once.  Every firing and every firing held back is in
-- response_rule_firing (audited) and on the event's timeline (actor
-- rule:response:<rule_id>).  Rules never stop an escalation: a sev1 pages
-- people whatever the rules do.

CREATE TABLE evmgmt.response_rule (
	rule_id			text PRIMARY KEY CHECK (rule_id ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
	operation_id	text NOT NULL REFERENCES evmgmt.operation ON DELETE CASCADE,
	enabled			boolean NOT NULL DEFAULT true,
	event_types		evmgmt.event_type[],
	subtypes		text[],
	most_severe		evmgmt.severity NOT NULL DEFAULT 'sev1',
	least_severe	evmgmt.severity NOT NULL DEFAULT 'sev4',
	pools			evmgmt.pool[],
	site_ids		text[],
	queue_ids		text[],
	source			text NOT NULL DEFAULT 'any'
		CONSTRAINT response_rule_source_known CHECK (source IN ('predicted', 'actual', 'any')),
	lever			text NOT NULL REFERENCES evmgmt.lever,
	provider_id		text REFERENCES evmgmt.channel_provider ON DELETE SET NULL,
	max_per_hour	integer NOT NULL DEFAULT 10
		CONSTRAINT response_rule_rate_range CHECK (max_per_hour BETWEEN 1 AND 10000),
	instruction		text CONSTRAINT response_rule_instruction_length CHECK (pg_catalog.length(instruction) <= 2000),
	created_by		text NOT NULL DEFAULT SESSION_USER,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT response_rule_tier_range CHECK (most_severe <= least_severe),
	CONSTRAINT response_rule_lists_not_empty CHECK (
		COALESCE(pg_catalog.cardinality(event_types), 1) > 0 AND COALESCE(pg_catalog.cardinality(subtypes), 1) > 0
		AND COALESCE(pg_catalog.cardinality(pools), 1) > 0 AND COALESCE(pg_catalog.cardinality(site_ids), 1) > 0
		AND COALESCE(pg_catalog.cardinality(queue_ids), 1) > 0)
);
CREATE INDEX ON evmgmt.response_rule (operation_id) WHERE enabled;
COMMENT ON TABLE evmgmt.response_rule IS 'Automatic responses per operation: a condition (types, subtypes, tier range, pools, sites, queues, predicted or actual; NULL lists match all) and a lever that is logged and sent as a signed webhook to provider_id';
COMMENT ON COLUMN evmgmt.response_rule.source IS 'predicted: only predicted events; actual: only events not predicted; any: both';
COMMENT ON COLUMN evmgmt.response_rule.provider_id IS 'Webhook provider of the WFM or routing system that acts on the lever (NULL: the lever is only logged)';
COMMENT ON COLUMN evmgmt.response_rule.max_per_hour IS 'Most firings of this rule in any hour; a firing beyond it is held back and recorded as rate_capped';

-- The global kill switch: one row.
CREATE TABLE evmgmt.response_switch (
	single			boolean PRIMARY KEY DEFAULT true CONSTRAINT response_switch_single CHECK (single),
	enabled			boolean NOT NULL DEFAULT true,
	reason			text,
	changed_by		text NOT NULL DEFAULT SESSION_USER,
	changed_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE evmgmt.response_switch IS 'The kill switch of rule-driven response (no row: on): while enabled is false no rule fires (each firing held back is recorded as switched_off)';

CREATE FUNCTION evmgmt.set_response_rules(enabled boolean, reason text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF enabled IS NULL THEN
		RAISE EXCEPTION 'enabled must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF reason IS NULL OR pg_catalog.btrim(reason) = '' OR pg_catalog.length(reason) > 500 THEN
		RAISE EXCEPTION 'the kill switch needs a reason'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = 'Give why the rules are switched on or off, in at most 500 characters.';
	END IF;
	INSERT INTO evmgmt.response_switch AS s (single, enabled, reason, changed_by, changed_at)
	VALUES (true, set_response_rules.enabled, set_response_rules.reason, SESSION_USER, pg_catalog.clock_timestamp())
	ON CONFLICT (single) DO UPDATE
	SET enabled = EXCLUDED.enabled, reason = EXCLUDED.reason, changed_by = EXCLUDED.changed_by, changed_at = EXCLUDED.changed_at;
END
$$;
COMMENT ON FUNCTION evmgmt.set_response_rules(boolean, text) IS 'The kill switch: switches every response rule off (false) or on again (true), with the reason (audited)';

CREATE TABLE evmgmt.response_rule_firing (
	firing_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	rule_id			text NOT NULL,
	event_id		bigint NOT NULL REFERENCES evmgmt.event ON DELETE CASCADE,
	pool			evmgmt.pool NOT NULL,
	lever			text NOT NULL,
	outcome			text NOT NULL CONSTRAINT response_rule_firing_outcome_known
						CHECK (outcome IN ('fired', 'rate_capped', 'switched_off', 'not_applicable')),
	fired_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	severity		evmgmt.severity,
	response_id		bigint,			-- response_action.action_id
	notification_id	bigint,
	detail			text
);
-- at most once per event, pool and lever
CREATE UNIQUE INDEX response_rule_firing_once ON evmgmt.response_rule_firing (event_id, pool, lever) WHERE outcome = 'fired';
-- a held-back firing is recorded once per rule, event, pool and reason
CREATE UNIQUE INDEX response_rule_firing_held_once ON evmgmt.response_rule_firing (rule_id, event_id, pool, outcome) WHERE outcome <> 'fired';
CREATE INDEX ON evmgmt.response_rule_firing (rule_id, fired_at) WHERE outcome = 'fired';
COMMENT ON TABLE evmgmt.response_rule_firing IS 'Every action a response rule took (fired: the lever logged as response_id, the webhook queued as notification_id) and every one it held back (rate_capped, switched_off, not_applicable for the pool and type)';

-- Whether a rule matches a pool condition.
CREATE FUNCTION evmgmt.response_rule_matches(r evmgmt.response_rule, e evmgmt.event, pool evmgmt.pool,
											 severity evmgmt.severity)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT r.enabled AND r.operation_id = e.operation_id
		   AND response_rule_matches.severity BETWEEN r.most_severe AND r.least_severe
		   AND (r.event_types IS NULL OR e.event_type = ANY (r.event_types))
		   AND (r.subtypes IS NULL OR e.subtype = ANY (r.subtypes))
		   AND (r.pools IS NULL OR response_rule_matches.pool = ANY (r.pools))
		   AND (r.site_ids IS NULL OR e.site_id = ANY (r.site_ids))
		   AND (r.queue_ids IS NULL OR e.queue_id = ANY (r.queue_ids))
		   AND CASE r.source WHEN 'predicted' THEN e.detection_source = 'predictive'
							 WHEN 'actual' THEN e.detection_source <> 'predictive' ELSE true END;
END;
COMMENT ON FUNCTION evmgmt.response_rule_matches(evmgmt.response_rule, evmgmt.event, evmgmt.pool, evmgmt.severity) IS 'Whether a response rule''s condition covers a pool condition of an event at a tier';

-- The cause category a rule's diagnosis names for an event type.
CREATE FUNCTION evmgmt.type_cause_category(event_type evmgmt.event_type) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT CASE type_cause_category.event_type WHEN 'capacity' THEN 'people' WHEN 'demand' THEN 'demand'
		   WHEN 'system' THEN 'technology' WHEN 'process' THEN 'process' ELSE 'third_party' END;
END;
COMMENT ON FUNCTION evmgmt.type_cause_category(evmgmt.event_type) IS 'The fishbone bone of an event type (capacity: people, demand: demand, system: technology, process: process, third_party: third party): what a rule diagnoses a classified condition with';

-- Apply the rules to one pool condition.  Returns the firings made.
CREATE FUNCTION evmgmt.apply_response_rules(p_event_id bigint, p_pool evmgmt.pool) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	e evmgmt.event;
	pc evmgmt.pool_condition;
	r evmgmt.response_rule;
	v_on boolean;
	v_outcome text;
	v_response bigint;
	v_notification bigint;
	v_firing bigint;
	v_detail text;
	v_vars jsonb;
	v_n integer := 0;
	q record;
BEGIN
	SELECT * INTO e FROM evmgmt.event x WHERE x.event_id = p_event_id;
	SELECT * INTO pc FROM evmgmt.pool_condition x WHERE x.event_id = p_event_id AND x.pool = p_pool;
	IF e.event_id IS NULL OR pc.severity IS NULL OR pc.state NOT IN ('classified', 'diagnosed', 'responding')
	   OR e.closed_at IS NOT NULL OR e.cancelled_at IS NOT NULL THEN
		RETURN 0;
	END IF;
	SELECT s.enabled INTO v_on FROM evmgmt.response_switch s;
	FOR r IN SELECT x.* FROM evmgmt.response_rule x
			 WHERE x.operation_id = e.operation_id AND x.enabled
			 ORDER BY x.rule_id
	LOOP
		CONTINUE WHEN NOT evmgmt.response_rule_matches(r, e, p_pool, pc.severity);
		-- once per event, pool and lever
		CONTINUE WHEN EXISTS (SELECT FROM evmgmt.response_rule_firing f
							  WHERE f.event_id = p_event_id AND f.pool = p_pool AND f.lever = r.lever AND f.outcome = 'fired');
		v_outcome := CASE
			WHEN NOT COALESCE(v_on, true) THEN 'switched_off'
			WHEN NOT EXISTS (SELECT FROM evmgmt.lever_applicability a
							 WHERE a.lever = r.lever AND a.pool = p_pool AND a.event_type = e.event_type) THEN 'not_applicable'
			-- the rule's firings in the last hour, counted under a lock on
			-- the rule so that two sessions cannot both take the last one
			WHEN (SELECT pg_catalog.count(*) FROM evmgmt.response_rule_firing f
				  WHERE f.rule_id = r.rule_id AND f.outcome = 'fired'
					AND f.fired_at > pg_catalog.clock_timestamp() - interval '1 hour') >= r.max_per_hour THEN 'rate_capped'
			ELSE 'fired' END;
		IF v_outcome = 'fired' THEN
			PERFORM FROM evmgmt.response_rule x WHERE x.rule_id = r.rule_id FOR UPDATE;
			IF (SELECT pg_catalog.count(*) FROM evmgmt.response_rule_firing f
				WHERE f.rule_id = r.rule_id AND f.outcome = 'fired'
				  AND f.fired_at > pg_catalog.clock_timestamp() - interval '1 hour') >= r.max_per_hour THEN
				v_outcome := 'rate_capped';
			END IF;
		END IF;
		IF v_outcome <> 'fired' THEN
			INSERT INTO evmgmt.response_rule_firing (rule_id, event_id, pool, lever, outcome, severity, detail)
			VALUES (r.rule_id, p_event_id, p_pool, r.lever, v_outcome, pc.severity,
					CASE v_outcome WHEN 'rate_capped' THEN pg_catalog.format('%s firings in the last hour', r.max_per_hour)
								   WHEN 'switched_off' THEN 'response rules are switched off (evmgmt.set_response_rules)'
								   ELSE pg_catalog.format('lever %s is not allowed for pool %s and type %s', r.lever, p_pool, e.event_type) END)
			ON CONFLICT DO NOTHING
			RETURNING firing_id INTO v_firing;
			IF v_firing IS NOT NULL THEN
				INSERT INTO evmgmt.event_timeline (event_id, pool, actor, action, reason, details)
				VALUES (p_event_id, p_pool, 'rule:response:' || r.rule_id, 'note',
						pg_catalog.format('response rule %s held back (%s): lever %s', r.rule_id, v_outcome, r.lever),
						pg_catalog.jsonb_build_object('rule', r.rule_id, 'lever', r.lever, 'outcome', v_outcome,
													  'session_user', SESSION_USER::text));
			END IF;
			CONTINUE;
		END IF;

		-- the lever, through the lifecycle (a classified condition is
		-- diagnosed first with its type's cause and the lever's class)
		v_detail := pg_catalog.format('rule:response:%s: %s', r.rule_id, COALESCE(r.instruction, 'automatic response'));
		IF pc.state = 'classified' THEN
			PERFORM evmgmt.diagnose_pool(p_event_id, p_pool, evmgmt.type_cause_category(e.event_type),
										 (SELECT l.lever_class FROM evmgmt.lever l WHERE l.lever = r.lever), v_detail);
		END IF;
		v_response := evmgmt.log_response(p_event_id, p_pool, r.lever, v_detail);
		SELECT * INTO pc FROM evmgmt.pool_condition x WHERE x.event_id = p_event_id AND x.pool = p_pool;
		INSERT INTO evmgmt.response_rule_firing (rule_id, event_id, pool, lever, outcome, severity, response_id)
		VALUES (r.rule_id, p_event_id, p_pool, r.lever, 'fired', pc.severity, v_response)
		RETURNING firing_id INTO v_firing;
		-- the receiving system acts on the lever
		IF r.provider_id IS NOT NULL THEN
			v_vars := evmgmt.event_facts(p_event_id) || pg_catalog.jsonb_build_object(
				'rule', r.rule_id, 'lever', r.lever, 'lever_name', (SELECT l.name FROM evmgmt.lever l WHERE l.lever = r.lever),
				'lever_class', (SELECT l.lever_class FROM evmgmt.lever l WHERE l.lever = r.lever),
				'pool', p_pool, 'pool_severity', pc.severity, 'firing_id', v_firing, 'response_id', v_response,
				'instruction', COALESCE(r.instruction, ''), 'predicted', e.detection_source = 'predictive');
			SELECT * INTO q FROM evmgmt.notify_endpoint('response_action', r.provider_id, p_event_id, NULL, e.operation_id,
														v_vars, pg_catalog.clock_timestamp());
			v_notification := q.notification_id;
			UPDATE evmgmt.response_rule_firing f SET notification_id = v_notification,
				detail = CASE WHEN q.outcome <> 'queued' THEN 'webhook not sent: ' || q.outcome END
			WHERE f.firing_id = v_firing;
		END IF;
		INSERT INTO evmgmt.event_timeline (event_id, pool, actor, action, lever, reason, details)
		VALUES (p_event_id, p_pool, 'rule:response:' || r.rule_id, 'note', r.lever,
				pg_catalog.format('response rule %s fired: lever %s', r.rule_id, r.lever),
				pg_catalog.jsonb_build_object('rule', r.rule_id, 'lever', r.lever, 'outcome', 'fired', 'firing_id', v_firing,
											  'response_id', v_response, 'notification_id', v_notification,
											  'session_user', SESSION_USER::text));
		v_n := v_n + 1;
	END LOOP;
	RETURN v_n;
END
$$;
COMMENT ON FUNCTION evmgmt.apply_response_rules(bigint, evmgmt.pool) IS 'Applies the operation''s response rules to one pool condition: logs each matching rule''s lever once per event, pool and lever (diagnosing a classified condition first), queues its webhook, and records every firing and every one held back (rate cap, kill switch, lever not applicable) with a timeline note';

-- Rules act when a condition is classified or raised; a condition a rule
-- handled that resolves without anyone from the ROC is recorded as such.
CREATE FUNCTION evmgmt.response_rules_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on'
	   OR pg_catalog.current_setting('evmgmt_internal.applying_response_rules', true) = 'on' THEN
		RETURN NULL;
	END IF;
	IF NEW.state = 'resolved' AND OLD.state IS DISTINCT FROM 'resolved' THEN
		-- the level-3 share: every response a rule's, nobody acknowledged,
		-- resolved by a rule
		IF EXISTS (SELECT FROM evmgmt.response_rule_firing f
				   WHERE f.event_id = NEW.event_id AND f.pool = NEW.pool AND f.outcome = 'fired')
		   AND NOT EXISTS (SELECT FROM evmgmt.response_action a
						   WHERE a.event_id = NEW.event_id AND a.pool = NEW.pool
							 AND NOT EXISTS (SELECT FROM evmgmt.response_rule_firing f WHERE f.response_id = a.action_id))
		   AND NOT EXISTS (SELECT FROM evmgmt.escalation x JOIN evmgmt.escalation_ack k ON k.escalation_id = x.escalation_id
						   WHERE x.event_id = NEW.event_id AND x.pool = NEW.pool)
		   AND NEW.resolution_note LIKE 'rule:%' THEN
			INSERT INTO evmgmt.event_timeline (event_id, pool, actor, action, reason, details)
			VALUES (NEW.event_id, NEW.pool, 'rule:response', 'note',
					pg_catalog.format('%s handled without ROC intervention', NEW.pool),
					pg_catalog.jsonb_build_object('handled_without_roc', true, 'severity', NEW.severity,
						'rules', (SELECT pg_catalog.jsonb_agg(DISTINCT f.rule_id) FROM evmgmt.response_rule_firing f
								  WHERE f.event_id = NEW.event_id AND f.pool = NEW.pool AND f.outcome = 'fired')));
		END IF;
		RETURN NULL;
	END IF;
	IF NEW.severity IS NULL OR NEW.state NOT IN ('classified', 'diagnosed', 'responding')
	   OR (TG_OP = 'UPDATE' AND OLD.severity IS NOT DISTINCT FROM NEW.severity AND OLD.state IS NOT DISTINCT FROM NEW.state) THEN
		RETURN NULL;
	END IF;
	IF NOT EXISTS (SELECT FROM evmgmt.response_rule r JOIN evmgmt.event e ON e.operation_id = r.operation_id
				   WHERE e.event_id = NEW.event_id AND r.enabled) THEN
		RETURN NULL;
	END IF;
	PERFORM pg_catalog.set_config('evmgmt_internal.applying_response_rules', 'on', true);
	BEGIN
		PERFORM evmgmt.apply_response_rules(NEW.event_id, NEW.pool);
	EXCEPTION WHEN OTHERS THEN
		-- a broken rule (a lever retired, a provider gone) never stops the
		-- classification that triggered it
		PERFORM pg_catalog.set_config('evmgmt_internal.applying_response_rules', 'off', true);
		RAISE WARNING 'evmgmt response rules failed for event % pool %: %', NEW.event_id, NEW.pool, SQLERRM
			USING DETAIL = 'SQLSTATE ' || SQLSTATE || '. The classification stands; the rules are applied again when the condition next changes.';
		RETURN NULL;
	END;
	PERFORM pg_catalog.set_config('evmgmt_internal.applying_response_rules', 'off', true);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.response_rules_trigger() IS 'Trigger on pool_condition: applies the response rules when a condition is classified, raised or moves on; records a condition a rule handled that resolved without ROC intervention';
CREATE TRIGGER response_rules AFTER INSERT OR UPDATE OF severity, state ON evmgmt.pool_condition
	FOR EACH ROW EXECUTE FUNCTION evmgmt.response_rules_trigger();

-- The level-3 share: conditions rules handled without the ROC.
CREATE VIEW evmgmt.rule_handled_conditions AS
SELECT pc.event_id, pc.pool, e.operation_id, e.site_id, e.queue_id, e.event_type, e.subtype, pc.severity,
	   e.detection_source, pc.state, pc.resolved_at,
	   (SELECT pg_catalog.array_agg(DISTINCT f.rule_id ORDER BY f.rule_id) FROM evmgmt.response_rule_firing f
		WHERE f.event_id = pc.event_id AND f.pool = pc.pool AND f.outcome = 'fired') AS rules,
	   (SELECT pg_catalog.array_agg(DISTINCT f.lever ORDER BY f.lever) FROM evmgmt.response_rule_firing f
		WHERE f.event_id = pc.event_id AND f.pool = pc.pool AND f.outcome = 'fired') AS levers,
	   EXISTS (SELECT FROM evmgmt.event_timeline t
			   WHERE t.event_id = pc.event_id AND t.pool = pc.pool AND t.actor = 'rule:response'
				 AND (t.details ->> 'handled_without_roc')::boolean) AS handled_without_roc
FROM evmgmt.pool_condition pc
JOIN evmgmt.event e ON e.event_id = pc.event_id
WHERE EXISTS (SELECT FROM evmgmt.response_rule_firing f
			  WHERE f.event_id = pc.event_id AND f.pool = pc.pool AND f.outcome = 'fired');
COMMENT ON VIEW evmgmt.rule_handled_conditions IS 'Every pool condition a response rule acted on, with the rules and levers, and whether it resolved without ROC intervention (the maturity model''s level-3 share)';

-- Runbooks: the "preparation" stage of incident management, for the people
-- (docs/prediction.md, "Runbooks").
--
-- Per operation, event type and optionally subtype and pool, an ordered
-- checklist of steps, each an instruction and optionally a lever of the
-- catalogue.  The most specific runbook for an event's type, subtype and
-- most severe pool appears in its facts ({{runbook}}, {{runbook_short}}) and
-- so in its pages (render_message: in full by e-mail, else the first step
-- and a link); each step a responder completes or skips is recorded
-- (runbook_progress) and noted on the timeline, so that the analysis sees
-- what was done, in what order, next to what the rules did.

CREATE TABLE evmgmt.runbook (
	runbook_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	operation_id	text NOT NULL REFERENCES evmgmt.operation ON DELETE CASCADE,
	event_type		evmgmt.event_type NOT NULL,
	subtype			text,
	pool			evmgmt.pool,
	name			text NOT NULL CHECK (name <> '' AND pg_catalog.length(name) <= 200),
	FOREIGN KEY (subtype, event_type) REFERENCES evmgmt.event_subtype (subtype, event_type),
	CONSTRAINT runbook_one_per_condition UNIQUE NULLS NOT DISTINCT (operation_id, event_type, subtype, pool)
);
COMMENT ON TABLE evmgmt.runbook IS 'A checklist per operation, event type and optionally subtype and pool (NULL: any); the most specific one applies to an event';

CREATE TABLE evmgmt.runbook_step (
	runbook_id		bigint NOT NULL REFERENCES evmgmt.runbook ON DELETE CASCADE,
	step_no			integer NOT NULL CHECK (step_no BETWEEN 1 AND 100),
	instruction		text NOT NULL CHECK (instruction <> '' AND pg_catalog.length(instruction) <= 1000),
	lever			text REFERENCES evmgmt.lever,
	PRIMARY KEY (runbook_id, step_no)
);
COMMENT ON TABLE evmgmt.runbook_step IS 'The ordered steps of a runbook: an instruction and, where the step is a lever of the catalogue, that lever';

CREATE TABLE evmgmt.runbook_progress (
	event_id		bigint NOT NULL REFERENCES evmgmt.event ON DELETE CASCADE,
	pool			evmgmt.pool NOT NULL,
	runbook_id		bigint NOT NULL,
	step_no			integer NOT NULL,
	outcome			text NOT NULL CONSTRAINT runbook_progress_outcome_known CHECK (outcome IN ('done', 'skipped')),
	note			text CHECK (pg_catalog.length(note) <= 1000),
	recorded_by		text NOT NULL DEFAULT SESSION_USER,
	recorded_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (event_id, pool, runbook_id, step_no)
);
COMMENT ON TABLE evmgmt.runbook_progress IS 'Each runbook step a responder completed or skipped on a pool condition, by whom and when (also on the timeline)';

-- The runbook for a pool condition: same type, the subtype and the pool
-- where the runbook names them, the most specific first.
CREATE FUNCTION evmgmt.runbook_for(p_event_id bigint, p_pool evmgmt.pool) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT rb.runbook_id
	FROM evmgmt.event e
	JOIN evmgmt.runbook rb ON rb.operation_id = e.operation_id AND rb.event_type = e.event_type
	WHERE e.event_id = p_event_id
	  AND (rb.subtype IS NULL OR rb.subtype = e.subtype)
	  AND (rb.pool IS NULL OR rb.pool = p_pool)
	  AND EXISTS (SELECT FROM evmgmt.runbook_step st WHERE st.runbook_id = rb.runbook_id)
	ORDER BY rb.subtype IS NULL, rb.pool IS NULL, rb.runbook_id
	LIMIT 1;
END;
COMMENT ON FUNCTION evmgmt.runbook_for(bigint, evmgmt.pool) IS 'The runbook that applies to a pool condition (type, then subtype and pool where named; the most specific first), NULL for none';

-- Template fields: runbook (every step on its own line), runbook_short (the
-- first step and, when there are more, how many and the event link).
CREATE FUNCTION evmgmt.runbook_facts(p_event_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_pool evmgmt.pool;
	v_rb bigint;
	v_name text;
	v_steps text[];
	v_link text;
BEGIN
	SELECT pc.pool INTO v_pool FROM evmgmt.pool_condition pc
	WHERE pc.event_id = p_event_id ORDER BY pc.severity NULLS LAST, pc.pool LIMIT 1;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	v_rb := evmgmt.runbook_for(p_event_id, v_pool);
	IF v_rb IS NULL THEN
		RETURN NULL;
	END IF;
	SELECT rb.name INTO v_name FROM evmgmt.runbook rb WHERE rb.runbook_id = v_rb;
	SELECT pg_catalog.array_agg(st.step_no || '. ' || st.instruction
								|| CASE WHEN st.lever IS NOT NULL THEN ' [' || st.lever || ']' ELSE '' END
								|| CASE WHEN p.outcome IS NOT NULL THEN ' (' || p.outcome || ')' ELSE '' END
								ORDER BY st.step_no)
	INTO v_steps
	FROM evmgmt.runbook_step st
	LEFT JOIN evmgmt.runbook_progress p ON p.event_id = p_event_id AND p.pool = v_pool AND p.runbook_id = st.runbook_id
									   AND p.step_no = st.step_no
	WHERE st.runbook_id = v_rb;
	v_link := NULLIF(pg_catalog.current_setting('evmgmt.event_link_prefix', true), '') || p_event_id;
	RETURN pg_catalog.jsonb_build_object(
		'runbook_id', v_rb, 'runbook_name', v_name, 'runbook_steps', pg_catalog.cardinality(v_steps),
		'runbook', v_name || E'\n' || pg_catalog.array_to_string(v_steps, E'\n'),
		'runbook_short', 'Runbook: ' || evmgmt.fit_length(v_steps[1], 80)
						 || CASE WHEN pg_catalog.cardinality(v_steps) > 1
								 THEN pg_catalog.format(' (+%s more%s)', pg_catalog.cardinality(v_steps) - 1,
														COALESCE(': ' || v_link, ''))
								 ELSE '' END);
END
$$;
COMMENT ON FUNCTION evmgmt.runbook_facts(bigint) IS 'Template fields of the runbook that applies to an event''s most severe pool: runbook (name and every step, with the progress made), runbook_short (the first step, how many more and the event link), runbook_id, runbook_name, runbook_steps; NULL when none applies';

-- A responder completed or skipped a step.
CREATE FUNCTION evmgmt.runbook_step_done(event_id bigint, pool evmgmt.pool, step_no integer, outcome text DEFAULT 'done',
										 note text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
	v_rb bigint;
	st evmgmt.runbook_step;
	e evmgmt.event;
	v_entry bigint;
BEGIN
	IF event_id IS NULL OR pool IS NULL OR step_no IS NULL THEN
		RAISE EXCEPTION 'event_id, pool and step_no must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF outcome IS NULL OR outcome NOT IN ('done', 'skipped') THEN
		RAISE EXCEPTION 'unknown runbook step outcome "%"', outcome
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Use done or skipped.';
	END IF;
	IF pg_catalog.length(note) > 1000 THEN
		RAISE EXCEPTION 'the note of a runbook step is longer than 1000 characters' USING ERRCODE = 'string_data_right_truncation';
	END IF;
	SELECT * INTO e FROM evmgmt.event x WHERE x.event_id = runbook_step_done.event_id;
	-- the acting role's sites only (issue 14): an event elsewhere is not found
	IF NOT FOUND OR NOT (evmgmt.site_scope() IS NULL OR e.site_id = ANY (evmgmt.site_scope())) THEN
		RAISE EXCEPTION 'event % does not exist', event_id USING ERRCODE = 'no_data_found';
	END IF;
	IF e.closed_at IS NOT NULL OR e.cancelled_at IS NOT NULL THEN
		RAISE EXCEPTION 'event % is %', event_id, CASE WHEN e.closed_at IS NOT NULL THEN 'closed' ELSE 'cancelled' END
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	IF NOT EXISTS (SELECT FROM evmgmt.pool_condition pc WHERE pc.event_id = e.event_id AND pc.pool = runbook_step_done.pool) THEN
		RAISE EXCEPTION 'event % has no condition in pool %', event_id, pool USING ERRCODE = 'no_data_found';
	END IF;
	v_rb := evmgmt.runbook_for(e.event_id, pool);
	SELECT * INTO st FROM evmgmt.runbook_step x WHERE x.runbook_id = v_rb AND x.step_no = runbook_step_done.step_no;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the runbook of event % pool % has no step %', event_id, pool, step_no
			USING ERRCODE = 'no_data_found',
				  HINT = CASE WHEN v_rb IS NULL THEN 'No runbook applies to this condition.' ELSE 'See evmgmt.runbook_step for its steps.' END;
	END IF;
	INSERT INTO evmgmt.runbook_progress AS p (event_id, pool, runbook_id, step_no, outcome, note)
	VALUES (e.event_id, pool, v_rb, step_no, outcome, note)
	ON CONFLICT ON CONSTRAINT runbook_progress_pkey DO UPDATE
	SET outcome = EXCLUDED.outcome, note = EXCLUDED.note, recorded_by = SESSION_USER, recorded_at = pg_catalog.clock_timestamp();
	INSERT INTO evmgmt.event_timeline (event_id, pool, action, lever, reason, details)
	VALUES (e.event_id, pool, 'note', st.lever,
			pg_catalog.format('runbook step %s %s: %s', step_no, outcome, st.instruction),
			pg_catalog.jsonb_build_object('runbook_id', v_rb, 'step_no', step_no, 'outcome', outcome, 'note', note))
	RETURNING entry_id INTO v_entry;
	RETURN v_entry;
END
$$;
COMMENT ON FUNCTION evmgmt.runbook_step_done(bigint, evmgmt.pool, integer, text, text) IS 'Records that a responder completed (done) or skipped a step of the runbook of a pool condition, on the timeline and in runbook_progress; returns the timeline entry';

-- Steps in order with their progress per pool condition.
CREATE VIEW evmgmt.runbook_checklist AS
SELECT pc.event_id, pc.pool, rb.runbook_id, rb.name AS runbook_name, st.step_no, st.instruction, st.lever,
	   p.outcome, p.note, p.recorded_by, p.recorded_at
FROM evmgmt.pool_condition pc
CROSS JOIN LATERAL (SELECT evmgmt.runbook_for(pc.event_id, pc.pool) AS runbook_id) r
JOIN evmgmt.runbook rb ON rb.runbook_id = r.runbook_id
JOIN evmgmt.runbook_step st ON st.runbook_id = rb.runbook_id
LEFT JOIN evmgmt.runbook_progress p ON p.event_id = pc.event_id AND p.pool = pc.pool AND p.runbook_id = rb.runbook_id
								   AND p.step_no = st.step_no;
COMMENT ON VIEW evmgmt.runbook_checklist IS 'The runbook of every pool condition step by step, with what was done or skipped, by whom and when';

-- Audit, privileges, row-level security, views by site and dump
-- registration of the new objects (80_audit.sql, 90_privileges.sql,
-- 86_site_scope.sql, 99_config_dump.sql).
DO $issue10$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['prediction_policy', 'response_rule', 'response_rule_firing', 'response_switch', 'runbook', 'runbook_step'] LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON evmgmt.%I FOR EACH ROW EXECUTE FUNCTION evmgmt.audit_row()', t);
		EXECUTE pg_catalog.format('CREATE TRIGGER audit_truncate AFTER TRUNCATE ON evmgmt.%I FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.audit_truncate()', t);
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ALWAYS TRIGGER audit, ENABLE ALWAYS TRIGGER audit_truncate', t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['interval_forecast', 'forecast_series', 'prediction_policy', 'prediction_state', 'prediction_log',
							 'prediction_run', 'response_rule', 'response_switch', 'response_rule_firing', 'runbook',
							 'runbook_step', 'runbook_progress', 'effective_prediction_policy', 'forecast_projection',
							 'prediction_outcome', 'rule_handled_conditions', 'runbook_checklist', 'forecast_inbox'] LOOP
		IF t NOT IN ('interval_forecast', 'forecast_inbox') THEN
			EXECUTE pg_catalog.format('GRANT SELECT ON evmgmt.%I TO evmgmt_reader', t);
		END IF;
		EXECUTE pg_catalog.format('GRANT SELECT ON evmgmt.%I TO evmgmt_admin', t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['prediction_policy', 'response_rule', 'runbook', 'runbook_step'] LOOP
		EXECUTE pg_catalog.format('GRANT INSERT, UPDATE, DELETE ON evmgmt.%I TO evmgmt_admin', t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['forecast_series', 'prediction_state', 'prediction_log'] LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE pg_catalog.format('CREATE POLICY site_scope ON evmgmt.%I USING ((SELECT evmgmt.site_scope()) IS NULL OR site_id = ANY ((SELECT evmgmt.site_scope())::text[]))', t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['response_rule_firing', 'runbook_progress'] LOOP
		EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE pg_catalog.format('CREATE POLICY site_scope ON evmgmt.%I USING ((SELECT evmgmt.site_scope()) IS NULL OR evmgmt.event_in_scope(event_id))', t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['forecast_projection', 'prediction_outcome', 'rule_handled_conditions', 'runbook_checklist'] LOOP
		PERFORM evmgmt.restrict_view_to_site_scope(t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['interval_forecast', 'forecast_series', 'prediction_policy', 'prediction_state', 'prediction_log',
							 'prediction_run', 'response_rule', 'response_switch', 'response_rule_firing', 'runbook',
							 'runbook_step', 'runbook_progress'] LOOP
		PERFORM pg_catalog.pg_extension_config_dump(pg_catalog.format('evmgmt.%I', t), '');
	END LOOP;
	FOR t IN SELECT c.oid::regclass::text FROM pg_catalog.pg_class c
			 WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind = 'S'
			   AND c.relname IN ('prediction_log_prediction_id_seq', 'prediction_run_run_id_seq',
								 'response_rule_firing_firing_id_seq', 'runbook_runbook_id_seq') LOOP
		PERFORM pg_catalog.pg_extension_config_dump(t, '');
		EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %s TO evmgmt_admin', t);
	END LOOP;
END
$issue10$;
-- Prediction and rule-driven response (22_forecast.sql, 49_prediction.sql,
-- 72_response_rules.sql, 74_runbooks.sql).  Ingest loads forecasts, directly
-- or through the inbox; readers see projections, predictions, firings and
-- runbooks by site; admins configure policies, rules and runbooks and throw
-- the kill switch; responders avert a predicted event by hand and record
-- runbook steps.  Prediction runs only inside run_due_work, the rules only
-- from their trigger.
GRANT INSERT ON evmgmt.interval_forecast, evmgmt.forecast_inbox TO evmgmt_ingest;
GRANT DELETE ON evmgmt.interval_forecast TO evmgmt_admin;
REVOKE ALL ON FUNCTION evmgmt.interval_forecast_loaded(), evmgmt.forecast_inbox_route(),
	evmgmt.interval_forecast_problem(text, text, text, text, text, text, text, text, text, boolean, boolean),
	evmgmt.intraday_ratios(timestamptz), evmgmt.forecast_projection_at(timestamptz),
	evmgmt.predict_series(text, text, evmgmt.pool, text, timestamptz, jsonb),
	evmgmt.prediction_confirm(text, text, evmgmt.pool, timestamptz, evmgmt.severity),
	evmgmt.prediction_pages(bigint, evmgmt.pool), evmgmt.run_predictions(timestamptz, boolean),
	evmgmt.prediction_due(timestamptz),
	evmgmt.apply_response_rules(bigint, evmgmt.pool), evmgmt.response_rules_trigger(),
	evmgmt.set_response_rules(boolean, text),
	evmgmt.runbook_step_done(bigint, evmgmt.pool, integer, text, text),
	evmgmt.avert_pool(bigint, evmgmt.pool, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.intraday_ratios(timestamptz), evmgmt.forecast_projection_at(timestamptz),
	evmgmt.set_response_rules(boolean, text) TO evmgmt_admin;
GRANT EXECUTE ON FUNCTION evmgmt.avert_pool(bigint, evmgmt.pool, text),
	evmgmt.runbook_step_done(bigint, evmgmt.pool, integer, text, text) TO evmgmt_responder, evmgmt_admin;

-- ---------------------------------------------------------------------------
-- Issue 12: views for BI tools, post-event reports, the HTML event report
-- (76_bi_views.sql, 77_reports.sql, 78_event_report.sql, whole; their
-- grants from 90_privileges.sql; the views kept to the acting role's sites,
-- 86_site_scope.sql).  No tables: nothing to audit or register for dumps.
-- ---------------------------------------------------------------------------

-- Views for BI tools (Grafana, Metabase, Power BI, psql): open events with
-- their clocks, the full timeline of an event, notification delivery and
-- interval service level with the Power-of-One figures.  Column names are a
-- contract (docs/views.md); contact data is masked unless the reader is a
-- responder.  Each view is written so that the usual filters (open events,
-- one event_id, a time range) reach an index (test/integration/bi_plans.sh).
-- Row-level security by site applies to them as to every view
-- (86_site_scope.sql).

-- Contact data as the caller may see it: real for responders, masked for
-- everybody else.
CREATE FUNCTION evmgmt.visible_address(address text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN address
			ELSE evmgmt.mask_address(address) END;
COMMENT ON FUNCTION evmgmt.visible_address(text) IS 'A phone number or e-mail address as the caller may see it: unmasked for evmgmt_responder members, masked otherwise';

-- One row per live pool condition of every open event.
CREATE VIEW evmgmt.bi_open_events AS
SELECT e.event_id, e.operation_id, e.site_id, e.queue_id, e.event_type, e.subtype, e.title, e.detection_source,
	   e.detected_at, e.opened_at, pg_catalog.now() - e.detected_at AS age,
	   f.floor_severity, pc.pool, pc.severity, pc.state,
	   pc.response_due, pc.first_response_at,
	   CASE WHEN pc.first_response_at IS NULL AND pg_catalog.now() < pc.response_due
			THEN pc.response_due - pg_catalog.now() END AS response_time_left,
	   COALESCE(pc.first_response_at, pg_catalog.now()) > pc.response_due AS response_breached,
	   pc.resolution_due, pc.resolved_at,
	   CASE WHEN pc.resolved_at IS NULL AND pg_catalog.now() < pc.resolution_due
			THEN pc.resolution_due - pg_catalog.now() END AS resolution_time_left,
	   COALESCE(pc.resolved_at, pg_catalog.now()) > pc.resolution_due AS resolution_breached
FROM evmgmt.event e
-- each open event probes its own conditions by primary key (OFFSET 0 keeps
-- the planner from turning this into a hash join over every condition)
CROSS JOIN LATERAL (SELECT x.* FROM evmgmt.pool_condition x
					WHERE x.event_id = e.event_id AND x.state <> 'cancelled' OFFSET 0) pc
CROSS JOIN LATERAL (SELECT pg_catalog.min(x.severity) AS floor_severity FROM evmgmt.pool_condition x
					WHERE x.event_id = e.event_id AND x.state <> 'cancelled') f
WHERE e.closed_at IS NULL AND e.cancelled_at IS NULL;
COMMENT ON VIEW evmgmt.bi_open_events IS 'One row per live pool condition of every open event: floor and pool severity, state, age, response and resolution clocks (time left, breached) as of now()';

-- Everything that happened to an event, in one stream: lifecycle entries
-- (transitions, reclassifications, responses, acknowledgments, status
-- updates, notes), every escalation step per recipient, every acknowledgment
-- and every logged response lever.
CREATE VIEW evmgmt.bi_event_timeline AS
SELECT t.event_id, t.at,
	   CASE WHEN t.actor LIKE 'rule:%' THEN 'automatic' ELSE 'lifecycle' END::text AS source, t.pool, t.action, t.actor,
	   NULL::text AS channel, NULL::bigint AS contact_id, NULL::text AS contact_name, NULL::text AS recipient,
	   t.from_state, t.to_state, t.from_severity, t.to_severity, t.lever, t.reason AS detail
FROM evmgmt.event_timeline t
UNION ALL
SELECT e.event_id, r.fired_at, 'escalation_step', e.pool, 'step ' || r.step_no || CASE WHEN r.retry_no > 0 THEN ' retry ' || r.retry_no ELSE '' END,
	   'escalation ' || r.escalation_id, r.channel::text, r.contact_id, c.name, evmgmt.visible_address(r.recipient),
	   NULL, NULL, NULL, NULL, NULL, r.outcome
FROM evmgmt.escalation e
JOIN evmgmt.escalation_step_run r ON r.escalation_id = e.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = r.contact_id
UNION ALL
SELECT e.event_id, k.acked_at, 'acknowledgment', e.pool, 'acknowledged', c.role_name,
	   k.channel, k.contact_id, c.name, k.source, NULL, NULL, NULL, NULL, NULL, k.note
FROM evmgmt.escalation e
JOIN evmgmt.escalation_ack k ON k.escalation_id = e.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = k.contact_id
UNION ALL
SELECT a.event_id, a.activated_at, 'response', a.pool, 'lever', a.actor,
	   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, a.lever, a.note
FROM evmgmt.response_action a;
COMMENT ON VIEW evmgmt.bi_event_timeline IS 'The full timeline of every event: lifecycle entries and status updates (source lifecycle), what detection, prediction and response rules did (source automatic), escalation steps per recipient (address masked for readers), acknowledgments with their channel (sms, voice, push, email, webhook, sql) and response levers; filter on event_id';

-- One row per notification: who (masked), how, what became of it.
CREATE VIEW evmgmt.bi_notification_delivery AS
SELECT n.notification_id, n.event_id, n.escalation_id, n.kind, n.channel, n.provider_id,
	   n.contact_id, c.name AS contact_name, evmgmt.visible_address(n.recipient) AS recipient,
	   n.state AS outcome, n.attempts, n.created_at, n.sent_at, n.sent_at - n.created_at AS time_to_send,
	   n.last_status, n.last_error IS NOT NULL AS failed_attempts
FROM evmgmt.notification n
LEFT JOIN evmgmt.contact c ON c.contact_id = n.contact_id;
COMMENT ON VIEW evmgmt.bi_notification_delivery IS 'Every notification: event, escalation, kind, channel, recipient (masked for readers), outcome (pending, sending, retry, sent, dead, cancelled), attempts, time to send, last provider status (error texts are for admins: delivery_attempt)';

-- Interval service level and what one agent more or less would have done.
-- Traffic = offered x AHT / interval length; the Erlang figures are at the
-- staffed count rounded down, and at one agent fewer and more.
CREATE VIEW evmgmt.bi_interval_service_level AS
SELECT s.site_id, s.queue_id, s.pool, s.interval_start, s.interval_minutes,
	   s.offered, s.handled, s.abandoned, s.answered_in_threshold, s.threshold_seconds,
	   evmgmt.interval_service_level(s.answered_in_threshold, s.offered) AS service_level,
	   q.sl_target, s.aht_seconds, s.staffed, s.scheduled, s.forecast_offered,
	   p.traffic, p.agents,
	   CASE WHEN p.agents > 1 THEN evmgmt.service_level(p.traffic, p.agents - 1, s.aht_seconds, s.threshold_seconds) END AS erlang_sl_minus_one,
	   CASE WHEN p.agents >= 1 THEN evmgmt.service_level(p.traffic, p.agents, s.aht_seconds, s.threshold_seconds) END AS erlang_sl,
	   CASE WHEN p.agents >= 0 AND p.agents < 1000000 THEN evmgmt.service_level(p.traffic, p.agents + 1, s.aht_seconds, s.threshold_seconds) END AS erlang_sl_plus_one,
	   CASE WHEN p.agents >= 0 AND p.agents < 1000000 THEN evmgmt.asa(p.traffic, p.agents + 1, s.aht_seconds) END AS erlang_asa_plus_one
FROM evmgmt.interval_stat s
JOIN evmgmt.queue q ON q.queue_id = s.queue_id
CROSS JOIN LATERAL (SELECT CASE WHEN s.aht_seconds IS NOT NULL
								THEN s.offered * s.aht_seconds::float8 / (s.interval_minutes * 60.0) END AS traffic,
						   CASE WHEN s.staffed IS NOT NULL AND s.staffed < 1000000
								THEN pg_catalog.floor(s.staffed)::integer END AS agents) p;
COMMENT ON VIEW evmgmt.bi_interval_service_level IS 'Interval statistics with the measured service level, the queue target, the offered traffic in Erlangs and the Erlang C service level at the staffed count and at one agent fewer and more (Power of One); filter on interval_start';

-- Post-event reports: set-returning functions with the period first
-- (from_at inclusive, to_at exclusive, on the events' detected_at unless a
-- report says otherwise), then optional filters site_filter, type_filter, pool_filter,
-- severity_filter (contact_filter for fatigue), NULL meaning all.  Columns and how
-- each figure is computed: docs/reports.md; hand-computed fixture:
-- test/sql/reports.sql.  PL/pgSQL (DESIGN.md section 3: Citus cannot plan
-- parameterized SQL functions over distributed tables).

-- The period every report takes, checked once.
CREATE FUNCTION evmgmt.report_check_period(from_at timestamptz, to_at timestamptz) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF from_at IS NULL OR to_at IS NULL THEN
		RAISE EXCEPTION 'report period must have both from_at and to_at'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a period such as from_at => ''2026-01-01'', to_at => ''2026-02-01''.';
	END IF;
	IF NOT from_at < to_at OR from_at IN ('-infinity', 'infinity') OR to_at IN ('-infinity', 'infinity') THEN
		RAISE EXCEPTION 'report period must be finite and from_at must be before to_at'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The period given was [%s, %s).', from_at, to_at);
	END IF;
END
$$;
COMMENT ON FUNCTION evmgmt.report_check_period(timestamptz, timestamptz) IS 'Raises 22023 unless from_at < to_at, both finite (22004 when either is NULL); used by every report';


-- The interval evidence of every pool condition of the events detected in
-- a period (or of one event), set-based: the reports over a month or a year
-- read each condition's intervals in one join and one window pass instead
-- of one query per condition.  The window of a condition: its site's (and
-- queue's, when the event has one) intervals of its pool that overlap
-- detection to resolution (or until, while unresolved).
CREATE FUNCTION evmgmt.condition_window_stats(from_at timestamptz, to_at timestamptz, only_event bigint DEFAULT NULL,
											 until timestamptz DEFAULT NULL)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, intervals integer, minutes_below_target double precision,
			   abandoned bigint, beyond_threshold bigint, outage_minutes double precision, overtime_hours double precision,
			   worst_service_level double precision, worst_interval timestamptz,
			   sev1_run double precision, sev2_run double precision, sev3_run double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
BEGIN ATOMIC
	WITH c AS (
		SELECT e.event_id, pc.pool, e.site_id, e.queue_id, e.detected_at AS w_from,
			   COALESCE(pc.resolved_at, e.closed_at, e.cancelled_at, condition_window_stats.until, condition_window_stats.to_at) AS w_to,
			   th.sev1_threshold AS t1, th.sev2_threshold AS t2, th.sev3_threshold AS t3
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		JOIN evmgmt.severity_thresholds th ON th.operation_id = e.operation_id
		WHERE e.detected_at >= condition_window_stats.from_at AND e.detected_at < condition_window_stats.to_at
		  AND (condition_window_stats.only_event IS NULL OR e.event_id = condition_window_stats.only_event)
		  AND (condition_window_stats.only_event IS NOT NULL OR (e.cancelled_at IS NULL AND pc.state <> 'cancelled'))
	), w AS (
		SELECT c.event_id, c.pool, c.t1, c.t2, c.t3, s.queue_id, s.interval_start, s.interval_minutes,
			   s.interval_minutes::double precision AS m, s.offered,
			   s.handled, s.abandoned, s.answered_in_threshold, s.staffed, s.scheduled, q.sl_target,
			   evmgmt.interval_service_level(s.answered_in_threshold, s.offered) AS sl
		FROM c
		-- each condition probes its own intervals by the key (time leads it);
		-- OFFSET 0 keeps the planner from joining every interval of a site
		-- with every condition there
		CROSS JOIN LATERAL (SELECT x.* FROM evmgmt.interval_stat x
							WHERE x.interval_start >= c.w_from - interval '1 hour' AND x.interval_start < c.w_to
							  AND x.interval_start + x.interval_minutes * interval '1 minute' > c.w_from
							  AND x.site_id = c.site_id AND (c.queue_id IS NULL OR x.queue_id = c.queue_id)
							  AND x.pool = c.pool
							OFFSET 0) s
		JOIN evmgmt.queue q ON q.queue_id = s.queue_id
	), r AS (
		-- the trailing run below each tier's threshold at every interval, by
		-- the C aggregate detection uses (a missing interval breaks a run),
		-- per series: one sort for the three tiers
		SELECT w.*, evmgmt.sustained_runs_below(w.sl, ARRAY[w.t1, w.t2, w.t3], w.interval_start, w.interval_minutes)
						OVER (PARTITION BY w.event_id, w.pool, w.queue_id ORDER BY w.interval_start) AS run
		FROM w
	), agg AS (
		SELECT w.event_id, w.pool, pg_catalog.count(*)::integer AS n,
			   pg_catalog.max(w.run[1]) AS r1, pg_catalog.max(w.run[2]) AS r2, pg_catalog.max(w.run[3]) AS r3,
			   COALESCE(pg_catalog.sum(w.m) FILTER (WHERE w.sl < w.sl_target), 0) AS below_target,
			   COALESCE(pg_catalog.sum(w.abandoned), 0) AS abandoned,
			   COALESCE(pg_catalog.sum(w.handled - w.answered_in_threshold), 0) AS beyond,
			   COALESCE(pg_catalog.sum(w.m) FILTER (WHERE w.offered > 0 AND w.answered_in_threshold = 0), 0) AS outage,
			   COALESCE(pg_catalog.sum(GREATEST(w.staffed - w.scheduled, 0) * w.m / 60.0), 0) AS overtime,
			   pg_catalog.min(w.sl) AS worst,
			   -- the earliest interval at the lowest service level, without a sort per group
			   pg_catalog.to_timestamp((pg_catalog.min(ARRAY[w.sl, EXTRACT(epoch FROM w.interval_start)::double precision])
										FILTER (WHERE w.sl IS NOT NULL))[2]) AS worst_at
		FROM r w GROUP BY w.event_id, w.pool
	)
	SELECT c.event_id, c.pool, COALESCE(a.n, 0), COALESCE(a.below_target, 0), COALESCE(a.abandoned, 0)::bigint,
		   COALESCE(a.beyond, 0)::bigint, COALESCE(a.outage, 0), COALESCE(a.overtime, 0), a.worst, a.worst_at,
		   COALESCE(a.r1, 0), COALESCE(a.r2, 0), COALESCE(a.r3, 0)
	FROM c
	LEFT JOIN agg a ON a.event_id = c.event_id AND a.pool = c.pool;
END;
COMMENT ON FUNCTION evmgmt.condition_window_stats(timestamptz, timestamptz, bigint, timestamptz) IS 'Interval evidence of every pool condition (not cancelled) of the events detected in [from_at, to_at), in one pass (or of one event''s conditions, cancelled ones too): intervals, minutes below the queue target, abandoned, answered beyond threshold, outage minutes, overtime hours (staffed above scheduled), worst interval, longest run below each tier threshold (minutes, per series, a missing interval breaking a run); an unresolved condition counts up to until (default to_at)';

-- The interval evidence of one pool condition: the intervals of the event's
-- site (and queue, when the event has one) and pool that overlap the window
-- from detection to resolution (or until, while unresolved).
CREATE FUNCTION evmgmt.event_window_stats(event_id bigint, pool evmgmt.pool, until timestamptz,
	OUT intervals integer, OUT minutes_below_target double precision, OUT abandoned bigint,
	OUT beyond_threshold bigint, OUT outage_minutes double precision, OUT overtime_hours double precision,
	OUT worst_service_level double precision, OUT worst_interval timestamptz,
	OUT sev1_run double precision, OUT sev2_run double precision, OUT sev3_run double precision)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT w.intervals, w.minutes_below_target, w.abandoned, w.beyond_threshold, w.outage_minutes, w.overtime_hours,
		   w.worst_service_level, w.worst_interval, w.sev1_run, w.sev2_run, w.sev3_run
	FROM evmgmt.event e
	CROSS JOIN LATERAL evmgmt.condition_window_stats(e.detected_at, e.detected_at + interval '1 microsecond',
													 e.event_id, event_window_stats.until) w
	WHERE e.event_id = event_window_stats.event_id AND w.pool = event_window_stats.pool;
END;
COMMENT ON FUNCTION evmgmt.event_window_stats(bigint, evmgmt.pool, timestamptz) IS 'Interval evidence of one pool condition from detection to resolution (or until): condition_window_stats for one condition';

------------------------------------------------------------------------------
-- Response and resolution target compliance
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_target_compliance(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL,
	pool_filter evmgmt.pool DEFAULT NULL, severity_filter evmgmt.severity DEFAULT NULL)
RETURNS TABLE (month date, site_id text, event_type evmgmt.event_type, pool evmgmt.pool, severity evmgmt.severity,
			   business_time boolean, conditions bigint, closed bigint, open bigint,
			   response_met bigint, response_breached bigint, response_pending bigint, response_compliance double precision,
			   resolution_met bigint, resolution_breached bigint, resolution_pending bigint, resolution_compliance double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_target_compliance.from_at, report_target_compliance.to_at);
	RETURN QUERY
	WITH c AS (
		SELECT pg_catalog.date_trunc('month', e.detected_at, 'UTC')::date AS month, e.site_id, e.event_type, pc.pool, pc.severity,
			   p.business_time, e.closed_at IS NOT NULL AS is_closed,
			   CASE WHEN pc.first_response_at <= pc.response_due THEN 'met'
					WHEN COALESCE(pc.first_response_at, pg_catalog.now()) > pc.response_due THEN 'breached'
					ELSE 'pending' END AS resp,
			   CASE WHEN pc.resolved_at <= pc.resolution_due THEN 'met'
					WHEN COALESCE(pc.resolved_at, pg_catalog.now()) > pc.resolution_due THEN 'breached'
					ELSE 'pending' END AS resol
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		JOIN evmgmt.effective_severity_policy p ON p.operation_id = e.operation_id AND p.severity = pc.severity
		WHERE e.detected_at >= report_target_compliance.from_at AND e.detected_at < report_target_compliance.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
		  AND (report_target_compliance.site_filter IS NULL OR e.site_id = report_target_compliance.site_filter)
		  AND (report_target_compliance.type_filter IS NULL OR e.event_type = report_target_compliance.type_filter)
		  AND (report_target_compliance.pool_filter IS NULL OR pc.pool = report_target_compliance.pool_filter)
		  AND (report_target_compliance.severity_filter IS NULL OR pc.severity = report_target_compliance.severity_filter)
	)
	SELECT c.month, c.site_id, c.event_type, c.pool, c.severity, c.business_time,
		   pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE c.is_closed), pg_catalog.count(*) FILTER (WHERE NOT c.is_closed),
		   pg_catalog.count(*) FILTER (WHERE c.resp = 'met'), pg_catalog.count(*) FILTER (WHERE c.resp = 'breached'),
		   pg_catalog.count(*) FILTER (WHERE c.resp = 'pending'),
		   (pg_catalog.count(*) FILTER (WHERE c.resp = 'met'))::double precision
			/ NULLIF(pg_catalog.count(*) FILTER (WHERE c.resp <> 'pending'), 0),
		   pg_catalog.count(*) FILTER (WHERE c.resol = 'met'), pg_catalog.count(*) FILTER (WHERE c.resol = 'breached'),
		   pg_catalog.count(*) FILTER (WHERE c.resol = 'pending'),
		   (pg_catalog.count(*) FILTER (WHERE c.resol = 'met'))::double precision
			/ NULLIF(pg_catalog.count(*) FILTER (WHERE c.resol <> 'pending'), 0)
	FROM c
	GROUP BY c.month, c.site_id, c.event_type, c.pool, c.severity, c.business_time
	ORDER BY c.month, c.site_id, c.event_type, c.pool, c.severity;
END
$$;
COMMENT ON FUNCTION evmgmt.report_target_compliance(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity) IS 'Response and resolution target compliance of classified pool conditions (closed and open events) per month (UTC), site, type, pool and tier: met, breached, still pending and the share met among decided ones; due times are the stored ones, in business time where the tier says so';

------------------------------------------------------------------------------
-- MTTA and MTTR
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_response_times(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL,
	pool_filter evmgmt.pool DEFAULT NULL, severity_filter evmgmt.severity DEFAULT NULL)
RETURNS TABLE (severity evmgmt.severity, pool evmgmt.pool, conditions bigint,
			   acknowledged bigint, mtta interval, tta_p50 interval, tta_p90 interval, tta_p95 interval,
			   responded bigint, mean_time_to_respond interval,
			   resolved bigint, mttr interval, ttr_p50 interval, ttr_p90 interval, ttr_p95 interval)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_response_times.from_at, report_response_times.to_at);
	RETURN QUERY
	WITH c AS (
		SELECT pc.severity, pc.pool,
			   pg_catalog.date_part('epoch', ack.first_ack - e.detected_at) AS tta,
			   pg_catalog.date_part('epoch', pc.first_response_at - e.detected_at) AS ttresp,
			   pg_catalog.date_part('epoch', pc.resolved_at - e.detected_at) AS ttr
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		LEFT JOIN LATERAL (SELECT pg_catalog.min(x.acknowledged_at) AS first_ack FROM evmgmt.escalation x
						   WHERE x.event_id = e.event_id AND x.pool = pc.pool) ack ON true
		WHERE e.detected_at >= report_response_times.from_at AND e.detected_at < report_response_times.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
		  AND (report_response_times.site_filter IS NULL OR e.site_id = report_response_times.site_filter)
		  AND (report_response_times.type_filter IS NULL OR e.event_type = report_response_times.type_filter)
		  AND (report_response_times.pool_filter IS NULL OR pc.pool = report_response_times.pool_filter)
		  AND (report_response_times.severity_filter IS NULL OR pc.severity = report_response_times.severity_filter)
	)
	SELECT c.severity, c.pool, pg_catalog.count(*),
		   pg_catalog.count(c.tta), pg_catalog.avg(c.tta) * interval '1 second',
		   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY c.tta) * interval '1 second',
		   pg_catalog.percentile_cont(0.9) WITHIN GROUP (ORDER BY c.tta) * interval '1 second',
		   pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY c.tta) * interval '1 second',
		   pg_catalog.count(c.ttresp), pg_catalog.avg(c.ttresp) * interval '1 second',
		   pg_catalog.count(c.ttr), pg_catalog.avg(c.ttr) * interval '1 second',
		   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY c.ttr) * interval '1 second',
		   pg_catalog.percentile_cont(0.9) WITHIN GROUP (ORDER BY c.ttr) * interval '1 second',
		   pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY c.ttr) * interval '1 second'
	FROM c
	GROUP BY GROUPING SETS ((c.severity, c.pool), (c.severity), ())
	ORDER BY c.severity NULLS LAST, c.pool NULLS LAST;
END
$$;
COMMENT ON FUNCTION evmgmt.report_response_times(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity) IS 'MTTA (detection to first escalation acknowledgment of the pool) and MTTR (detection to resolution) with p50, p90 and p95 (linear interpolation), and mean time to the first response lever, per tier and pool, per tier (pool NULL) and overall (both NULL)';

------------------------------------------------------------------------------
-- Severity calibration audit
------------------------------------------------------------------------------

-- The classified pool conditions a drift report looks at, with the month
-- (UTC) of their detection.  No SET clause: each of the report's queries
-- inlines it (its BEGIN ATOMIC body was bound at creation).
CREATE FUNCTION evmgmt.drift_conditions(from_at timestamptz, to_at timestamptz, site_filter text,
										type_filter evmgmt.event_type, pool_filter evmgmt.pool)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, severity evmgmt.severity, month date, operation_id text)
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT e.event_id, pc.pool, pc.severity, pg_catalog.date_trunc('month', e.detected_at, 'UTC')::date, e.operation_id
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.detected_at >= drift_conditions.from_at AND e.detected_at < drift_conditions.to_at
	  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
	  AND (drift_conditions.site_filter IS NULL OR e.site_id = drift_conditions.site_filter)
	  AND (drift_conditions.type_filter IS NULL OR e.event_type = drift_conditions.type_filter)
	  AND (drift_conditions.pool_filter IS NULL OR pc.pool = drift_conditions.pool_filter);
END;
COMMENT ON FUNCTION evmgmt.drift_conditions(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool) IS 'The classified pool conditions (not cancelled) of the events detected in [from_at, to_at), of the site, type and pool when given, with the UTC month of detection: what a severity-drift report counts';

CREATE FUNCTION evmgmt.report_severity_drift(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL, pool_filter evmgmt.pool DEFAULT NULL)
RETURNS TABLE (finding text, month date, severity evmgmt.severity, conditions bigint, share double precision,
			   direction text, event_id bigint, pool evmgmt.pool, assigned_severity evmgmt.severity,
			   implied_severity evmgmt.severity, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_severity_drift.from_at, report_severity_drift.to_at);
	-- tier mix per month: conditions per current tier and their share of the month
	RETURN QUERY
	WITH c AS (
		SELECT * FROM evmgmt.drift_conditions(report_severity_drift.from_at, report_severity_drift.to_at,
											  report_severity_drift.site_filter, report_severity_drift.type_filter,
											  report_severity_drift.pool_filter)
	)
	SELECT 'tier_mix'::text, c.month, c.severity, pg_catalog.count(*),
		   pg_catalog.count(*)::double precision / pg_catalog.sum(pg_catalog.count(*)) OVER (PARTITION BY c.month),
		   NULL::text, NULL::bigint, NULL::evmgmt.pool, NULL::evmgmt.severity, NULL::evmgmt.severity, NULL::text
	FROM c
	GROUP BY c.month, c.severity
	ORDER BY c.month, c.severity;

	-- reclassifications: how many conditions were reclassified at least once
	-- in each direction (up = more severe), as a share of all conditions
	RETURN QUERY
	WITH c AS (
		SELECT * FROM evmgmt.drift_conditions(report_severity_drift.from_at, report_severity_drift.to_at,
											  report_severity_drift.site_filter, report_severity_drift.type_filter,
											  report_severity_drift.pool_filter)
	)
	SELECT 'reclassification'::text, NULL::date, NULL::evmgmt.severity, pg_catalog.count(DISTINCT (t.event_id, t.pool)),
		   pg_catalog.count(DISTINCT (t.event_id, t.pool))::double precision / NULLIF((SELECT pg_catalog.count(*) FROM c), 0),
		   d.direction, NULL::bigint, NULL::evmgmt.pool, NULL::evmgmt.severity, NULL::evmgmt.severity,
		   pg_catalog.count(*) || ' reclassification(s)'
	FROM evmgmt.event_timeline t
	JOIN c ON c.event_id = t.event_id AND c.pool = t.pool
	CROSS JOIN LATERAL (SELECT CASE WHEN t.to_severity < t.from_severity THEN 'up' ELSE 'down' END AS direction) d
	WHERE t.action = 'reclassified' AND t.from_severity IS DISTINCT FROM t.to_severity
	GROUP BY d.direction
	ORDER BY d.direction DESC;

	-- disagreements: the tier the condition's own evidence window implies
	-- (the longest run below each tier threshold against its sustain time,
	-- the rule detection uses) differs from the assigned tier
	RETURN QUERY
	WITH c AS (
		SELECT * FROM evmgmt.drift_conditions(report_severity_drift.from_at, report_severity_drift.to_at,
											  report_severity_drift.site_filter, report_severity_drift.type_filter,
											  report_severity_drift.pool_filter)
	)
	SELECT 'disagreement'::text, c.month, NULL::evmgmt.severity, NULL::bigint, NULL::double precision,
		   CASE WHEN x.implied IS NULL OR x.implied > c.severity THEN 'over_classified' ELSE 'under_classified' END,
		   c.event_id, c.pool, c.severity, x.implied,
		   pg_catalog.format('%s interval(s); longest run below the sev1/sev2/sev3 thresholds: %s/%s/%s min',
							 w.intervals, w.sev1_run, w.sev2_run, w.sev3_run)
	FROM c
	JOIN evmgmt.condition_window_stats(report_severity_drift.from_at, report_severity_drift.to_at) w
	  ON w.event_id = c.event_id AND w.pool = c.pool
	JOIN evmgmt.severity_thresholds th ON th.operation_id = c.operation_id
	CROSS JOIN LATERAL (SELECT evmgmt.classify_sustained_runs(w.sev1_run, w.sev2_run, w.sev3_run,
															  th.sev1_sustain, th.sev2_sustain, th.sev3_sustain) AS implied) x
	WHERE w.intervals > 0 AND c.severity <> 'sev4' AND x.implied IS DISTINCT FROM c.severity
	ORDER BY c.event_id, c.pool;
END
$$;
COMMENT ON FUNCTION evmgmt.report_severity_drift(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool) IS 'Severity calibration audit: tier_mix rows (conditions per month and tier, share of the month), reclassification rows (conditions reclassified up or down, share of all), disagreement rows (assigned tier differs from the tier the condition''s interval evidence implies: over_classified or under_classified)';

------------------------------------------------------------------------------
-- Detection blind spots
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_blind_spots(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL)
RETURNS TABLE (finding text, event_type evmgmt.event_type, events bigint, by_rule bigint, by_prediction bigint,
			   by_other_automated bigint, by_people bigint, share_automated double precision,
			   share_people double precision, event_id bigint, site_id text, detected_at timestamptz,
			   detection_source text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_blind_spots.from_at, report_blind_spots.to_at);
	RETURN QUERY
	WITH ev AS (
		SELECT e.*, ds.automated
		FROM evmgmt.event e JOIN evmgmt.detection_source ds ON ds.source = e.detection_source
		WHERE e.detected_at >= report_blind_spots.from_at AND e.detected_at < report_blind_spots.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_blind_spots.site_filter IS NULL OR e.site_id = report_blind_spots.site_filter)
		  AND (report_blind_spots.type_filter IS NULL OR e.event_type = report_blind_spots.type_filter)
	)
	SELECT 'detection_share'::text, ev.event_type, pg_catalog.count(*),
		   pg_catalog.count(*) FILTER (WHERE ev.detection_source = 'rule'),
		   pg_catalog.count(*) FILTER (WHERE ev.detection_source = 'predictive'),
		   pg_catalog.count(*) FILTER (WHERE ev.automated AND ev.detection_source NOT IN ('rule', 'predictive')),
		   pg_catalog.count(*) FILTER (WHERE NOT ev.automated),
		   (pg_catalog.count(*) FILTER (WHERE ev.automated))::double precision / pg_catalog.count(*),
		   (pg_catalog.count(*) FILTER (WHERE NOT ev.automated))::double precision / pg_catalog.count(*),
		   NULL::bigint, NULL::text, NULL::timestamptz, NULL::text, NULL::text
	FROM ev
	GROUP BY ev.event_type
	ORDER BY ev.event_type;

	-- found by people with no automated detection of the same site and type
	-- from an hour before detection until the event was resolved (or to_at)
	RETURN QUERY
	SELECT 'undetected'::text, e.event_type, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
		   NULL::double precision, NULL::double precision, e.event_id, e.site_id, e.detected_at, e.detection_source,
		   e.title
	FROM evmgmt.event e JOIN evmgmt.detection_source ds ON ds.source = e.detection_source
	WHERE e.detected_at >= report_blind_spots.from_at AND e.detected_at < report_blind_spots.to_at
	  AND e.cancelled_at IS NULL AND NOT ds.automated
	  AND (report_blind_spots.site_filter IS NULL OR e.site_id = report_blind_spots.site_filter)
	  AND (report_blind_spots.type_filter IS NULL OR e.event_type = report_blind_spots.type_filter)
	  AND NOT EXISTS (SELECT FROM evmgmt.event o JOIN evmgmt.detection_source ods ON ods.source = o.detection_source
					  WHERE ods.automated AND o.site_id = e.site_id AND o.event_type = e.event_type
						AND o.event_id <> e.event_id
						AND o.detected_at >= e.detected_at - interval '1 hour'
						AND o.detected_at < COALESCE((SELECT pg_catalog.max(pc.resolved_at) FROM evmgmt.pool_condition pc
													  WHERE pc.event_id = e.event_id),
													 e.closed_at, report_blind_spots.to_at))
	ORDER BY e.detected_at, e.event_id;

	RETURN QUERY
	SELECT 'detector_gap'::text, e.event_type, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
		   NULL::double precision, NULL::double precision, e.event_id, e.site_id, e.detected_at, e.detection_source,
		   a.detector_gap
	FROM evmgmt.event e JOIN evmgmt.post_resolution_analysis a ON a.event_id = e.event_id
	WHERE e.detected_at >= report_blind_spots.from_at AND e.detected_at < report_blind_spots.to_at
	  AND a.detector_gap IS NOT NULL AND a.detector_gap <> ''
	  AND (report_blind_spots.site_filter IS NULL OR e.site_id = report_blind_spots.site_filter)
	  AND (report_blind_spots.type_filter IS NULL OR e.event_type = report_blind_spots.type_filter)
	ORDER BY e.detected_at, e.event_id;
END
$$;
COMMENT ON FUNCTION evmgmt.report_blind_spots(timestamptz, timestamptz, text, evmgmt.event_type) IS 'Detection blind spots: detection_share rows per type (found by rules, prediction, other automated sources, people), undetected rows (found by people with no automated event of that site and type detected from an hour before until the event was resolved), detector_gap rows from analyses';

------------------------------------------------------------------------------
-- Notification fatigue
------------------------------------------------------------------------------

-- PagerDuty's hours: business 08:00-18:00 Monday to Friday, sleep 22:00-08:00
-- every day, off hours the rest (evenings and weekend days), local time.
-- No SET clause and not STRICT, so that PostgreSQL inlines it into the
-- fatigue report's query (once per notification); its body was bound to
-- pg_catalog's functions when it was created.
CREATE FUNCTION evmgmt.hours_class(at timestamptz, time_zone text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
	WHEN at IS NULL OR time_zone IS NULL THEN NULL
	WHEN pg_catalog.date_part('hour', pg_catalog.timezone(time_zone, at)) >= 22
	  OR pg_catalog.date_part('hour', pg_catalog.timezone(time_zone, at)) < 8 THEN 'sleep'
	WHEN pg_catalog.date_part('isodow', pg_catalog.timezone(time_zone, at)) <= 5
	 AND pg_catalog.date_part('hour', pg_catalog.timezone(time_zone, at)) < 18 THEN 'business'
	ELSE 'off'
END;
COMMENT ON FUNCTION evmgmt.hours_class(timestamptz, text) IS 'business (08:00-18:00 Monday to Friday), sleep (22:00-08:00) or off (the rest) hours of a moment in a time zone';

CREATE FUNCTION evmgmt.report_notification_fatigue(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, contact_filter bigint DEFAULT NULL)
RETURNS TABLE (month date, contact_id bigint, contact_name text, time_zone text, channel evmgmt.channel,
			   notifications bigint, interruptions bigint, business_hours bigint, off_hours bigint, sleep_hours bigint,
			   escalations bigint, acknowledged bigint, ack_share double precision, median_time_to_ack interval,
			   ack_share_change double precision, trending_away boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_notification_fatigue.from_at, report_notification_fatigue.to_at);
	RETURN QUERY
	WITH n AS (
		SELECT n.notification_id, n.contact_id, n.channel, n.created_at, n.escalation_id, c.name, c.time_zone,
			   pg_catalog.date_trunc('month', n.created_at, c.time_zone)::date AS month
		FROM evmgmt.notification n
		JOIN evmgmt.contact c ON c.contact_id = n.contact_id
		LEFT JOIN evmgmt.event e ON e.event_id = n.event_id
		WHERE n.created_at >= report_notification_fatigue.from_at AND n.created_at < report_notification_fatigue.to_at
		  AND n.state <> 'cancelled' AND n.kind <> 'test'
		  AND (report_notification_fatigue.site_filter IS NULL OR e.site_id = report_notification_fatigue.site_filter)
		  -- SECURITY DEFINER reads past row security: the acting role's sites only
		  AND ((SELECT evmgmt.site_scope()) IS NULL OR e.site_id = ANY ((SELECT evmgmt.site_scope())::text[]))
		  AND (report_notification_fatigue.contact_filter IS NULL OR n.contact_id = report_notification_fatigue.contact_filter)
	),
	-- an interruption: a page (any channel but e-mail) more than a minute
	-- after the previous page to the same person; each e-mail is its own
	p AS (
		SELECT n.*,
			   n.channel = 'email'
			   OR n.created_at - pg_catalog.lag(n.created_at) OVER (PARTITION BY n.contact_id, n.channel = 'email'
																	  ORDER BY n.created_at, n.notification_id) <= interval '1 minute'
				  IS NOT TRUE AS opens
		FROM n
	),
	i AS (
		SELECT p.*, CASE WHEN p.opens THEN evmgmt.hours_class(p.created_at, p.time_zone) END AS hours
		FROM p
	),
	-- escalations that paged the person in the month and whether (and how
	-- soon after the first page) the person acknowledged them
	esc AS (
		SELECT x.month, x.contact_id, x.escalation_id, pg_catalog.min(x.created_at) AS first_page, k.acked_at
		FROM n x
		LEFT JOIN evmgmt.escalation_ack k ON k.escalation_id = x.escalation_id AND k.contact_id = x.contact_id
		WHERE x.escalation_id IS NOT NULL
		GROUP BY x.month, x.contact_id, x.escalation_id, k.acked_at
	),
	ack AS (
		SELECT esc.month, esc.contact_id, pg_catalog.count(*) AS escalations,
			   pg_catalog.count(esc.acked_at) AS acknowledged,
			   pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_catalog.date_part('epoch', esc.acked_at - esc.first_page)) * interval '1 second' AS median_tta
		FROM esc GROUP BY esc.month, esc.contact_id
	),
	g AS (
		SELECT i.month, i.contact_id, pg_catalog.min(i.name) AS name, pg_catalog.min(i.time_zone) AS tz, i.channel,
			   GROUPING(i.channel) AS all_channels,
			   pg_catalog.count(*) AS notifications, pg_catalog.count(*) FILTER (WHERE i.opens) AS interruptions,
			   pg_catalog.count(*) FILTER (WHERE i.hours = 'business') AS business_hours,
			   pg_catalog.count(*) FILTER (WHERE i.hours = 'off') AS off_hours,
			   pg_catalog.count(*) FILTER (WHERE i.hours = 'sleep') AS sleep_hours
		FROM i
		GROUP BY GROUPING SETS ((i.month, i.contact_id, i.channel), (i.month, i.contact_id))
	),
	t AS (
		SELECT g.*, a.escalations, a.acknowledged, a.median_tta,
			   a.acknowledged::double precision / NULLIF(a.escalations, 0) AS share
		FROM g LEFT JOIN ack a ON a.month = g.month AND a.contact_id = g.contact_id AND g.all_channels = 1
	)
	SELECT t.month, t.contact_id, t.name, t.tz, t.channel, t.notifications, t.interruptions,
		   t.business_hours, t.off_hours, t.sleep_hours, t.escalations, t.acknowledged, t.share, t.median_tta,
		   t.share - pg_catalog.lag(t.share) OVER w,
		   (t.share - pg_catalog.lag(t.share) OVER w) < 0
			AND (pg_catalog.lag(t.share) OVER w - pg_catalog.lag(t.share, 2) OVER w) < 0 IS TRUE
	FROM t
	WINDOW w AS (PARTITION BY t.contact_id, t.all_channels, t.channel ORDER BY t.month)
	ORDER BY t.contact_id, t.month, t.channel NULLS LAST;
END
$$;
COMMENT ON FUNCTION evmgmt.report_notification_fatigue(timestamptz, timestamptz, text, bigint) IS 'Notifications and interruptions per person, month (recipient''s time zone) and channel (channel NULL: all channels): pages within a minute of the previous page to the same person count as one interruption, each e-mail apart; interruptions split into business, off and sleep hours in the recipient''s time zone; escalations acknowledged, share, median time to acknowledge, change from the previous month, trending_away after two falls in a row';

------------------------------------------------------------------------------
-- Learning loop
------------------------------------------------------------------------------

-- The events a learning-loop report looks at: detected in the period, not
-- cancelled, with the most severe live tier.  No SET clause: each of the
-- report's queries inlines it (its BEGIN ATOMIC body was bound at creation).
CREATE FUNCTION evmgmt.learning_loop_events(from_at timestamptz, to_at timestamptz, site_filter text,
											type_filter evmgmt.event_type)
RETURNS TABLE (event_id bigint, site_id text, queue_id text, event_type evmgmt.event_type, severity evmgmt.severity,
			   recurrence_of bigint, detected_at timestamptz, closed_at timestamptz)
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT e.event_id, e.site_id, e.queue_id, e.event_type,
		   (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc
			WHERE pc.event_id = e.event_id AND pc.state <> 'cancelled'),
		   e.recurrence_of, e.detected_at, e.closed_at
	FROM evmgmt.event e
	WHERE e.detected_at >= learning_loop_events.from_at AND e.detected_at < learning_loop_events.to_at
	  AND e.cancelled_at IS NULL
	  AND (learning_loop_events.site_filter IS NULL OR e.site_id = learning_loop_events.site_filter)
	  AND (learning_loop_events.type_filter IS NULL OR e.event_type = learning_loop_events.type_filter);
END;
COMMENT ON FUNCTION evmgmt.learning_loop_events(timestamptz, timestamptz, text, evmgmt.event_type) IS 'The events of a learning-loop report: detected in [from_at, to_at), not cancelled, of the site and type when given, with their most severe live tier';

CREATE FUNCTION evmgmt.report_learning_loop(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL)
RETURNS TABLE (finding text, event_id bigint, site_id text, event_type evmgmt.event_type, severity evmgmt.severity,
			   detail text, gaps text[], item_id bigint, owner text, due_date date, overdue_days integer,
			   chain_root bigint, chain_length integer, metric text, before_value double precision,
			   after_value double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_learning_loop.from_at, report_learning_loop.to_at);
	-- sev1 and recurring sev2 whose analysis is missing or incomplete
	RETURN QUERY
	WITH e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	)
	SELECT 'missing_analysis'::text, e.event_id, e.site_id, e.event_type, e.severity,
		   CASE WHEN e.severity = 'sev1' THEN 'sev1' ELSE 'recurring sev2' END
			|| CASE WHEN e.closed_at IS NULL THEN ', open' ELSE ', closed' END,
		   g.gaps, NULL::bigint, NULL::text, NULL::date, NULL::integer,
		   NULL::bigint, NULL::integer, NULL::text, NULL::double precision, NULL::double precision
	-- what the analysis lacks, asked once per sev1 or recurring sev2 (empty:
	-- complete; OFFSET 0 keeps the call from being repeated in the filter)
	FROM (SELECT x.*, evmgmt.analysis_gaps(x.event_id) AS gaps FROM e x
		  WHERE x.severity = 'sev1' OR (x.severity = 'sev2' AND x.recurrence_of IS NOT NULL) OFFSET 0) e
	CROSS JOIN LATERAL (SELECT e.gaps) g
	WHERE pg_catalog.cardinality(g.gaps) > 0
	ORDER BY e.event_id;

	-- action items not done, overdue ones with their days overdue
	RETURN QUERY
	WITH e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	)
	SELECT CASE WHEN i.due_date < CURRENT_DATE THEN 'overdue_action_item' ELSE 'open_action_item' END,
		   e.event_id, e.site_id, e.event_type, e.severity, i.description, NULL::text[], i.item_id, i.owner, i.due_date,
		   CASE WHEN i.due_date < CURRENT_DATE THEN CURRENT_DATE - i.due_date END,
		   NULL::bigint, NULL::integer, NULL::text, NULL::double precision, NULL::double precision
	FROM e
	JOIN evmgmt.action_item i ON i.event_id = e.event_id
	WHERE i.done_at IS NULL
	ORDER BY i.due_date, i.item_id;

	-- recurrence chains: every event of the period that recurs an earlier one,
	-- with the first event of its chain and its place in it
	RETURN QUERY
	WITH RECURSIVE e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	),
	up AS (
		SELECT e.event_id AS start_id, e.recurrence_of AS prev, 1 AS depth
		FROM e WHERE e.recurrence_of IS NOT NULL
		UNION ALL
		SELECT up.start_id, p.recurrence_of, up.depth + 1
		FROM up JOIN evmgmt.event p ON p.event_id = up.prev
		WHERE p.recurrence_of IS NOT NULL AND up.depth < 1000
	)
	SELECT 'recurrence'::text, e.event_id, e.site_id, e.event_type, e.severity,
		   pg_catalog.format('recurs event %s', e.recurrence_of), NULL::text[], NULL::bigint, NULL::text, NULL::date,
		   NULL::integer, r.root, r.len, NULL::text, NULL::double precision, NULL::double precision
	FROM e
	JOIN (SELECT up.start_id, (pg_catalog.array_agg(up.prev ORDER BY up.depth DESC))[1] AS root,
				 (pg_catalog.max(up.depth) + 1)::integer AS len
		  FROM up GROUP BY up.start_id) r ON r.start_id = e.event_id
	ORDER BY r.root, e.event_id;

	-- process health of the affected series in the 28 days before the
	-- analysis was recorded and the 28 days after its last action item was
	-- done (service level, abandonment rate, AHT, and the process-health
	-- figures: repeat contacts per offered, escalations and transfers per
	-- handled; events whose items are all done)
	RETURN QUERY
	WITH e AS (
		SELECT * FROM evmgmt.learning_loop_events(report_learning_loop.from_at, report_learning_loop.to_at,
												  report_learning_loop.site_filter, report_learning_loop.type_filter)
	),
	done AS (
		SELECT e.event_id, e.site_id, e.queue_id, e.event_type, e.severity, a.recorded_at,
			   pg_catalog.max(i.done_at) AS done_at
		FROM e
		JOIN evmgmt.post_resolution_analysis a ON a.event_id = e.event_id
		JOIN evmgmt.action_item i ON i.event_id = e.event_id
		GROUP BY e.event_id, e.site_id, e.queue_id, e.event_type, e.severity, a.recorded_at
		HAVING pg_catalog.bool_and(i.done_at IS NOT NULL)
	),
	m AS (
		SELECT d.event_id, s.interval_start >= d.done_at AS after,
			   pg_catalog.sum(s.answered_in_threshold)::double precision / NULLIF(pg_catalog.sum(s.offered), 0) AS sl,
			   pg_catalog.sum(s.abandoned)::double precision / NULLIF(pg_catalog.sum(s.offered), 0) AS abandon_rate,
			   pg_catalog.sum(s.aht_seconds * s.handled) / NULLIF(pg_catalog.sum(s.handled) FILTER (WHERE s.aht_seconds IS NOT NULL), 0) AS aht,
			   -- the process-health columns where the feed carries them
			   pg_catalog.sum(s.repeat_contacts)::double precision
				/ NULLIF(pg_catalog.sum(s.offered) FILTER (WHERE s.repeat_contacts IS NOT NULL), 0) AS repeat_rate,
			   pg_catalog.sum(s.escalated)::double precision
				/ NULLIF(pg_catalog.sum(s.handled) FILTER (WHERE s.escalated IS NOT NULL), 0) AS escalation_rate,
			   pg_catalog.sum(s.transferred)::double precision
				/ NULLIF(pg_catalog.sum(s.handled) FILTER (WHERE s.transferred IS NOT NULL), 0) AS transfer_rate
		FROM done d
		JOIN evmgmt.interval_stat s ON s.site_id = d.site_id AND (d.queue_id IS NULL OR s.queue_id = d.queue_id)
			AND ((s.interval_start >= d.recorded_at - interval '28 days' AND s.interval_start < d.recorded_at)
				 OR (s.interval_start >= d.done_at AND s.interval_start < d.done_at + interval '28 days'))
		GROUP BY d.event_id, s.interval_start >= d.done_at
	)
	SELECT 'process_health'::text, d.event_id, d.site_id, d.event_type, d.severity,
		   pg_catalog.format('28 days before the analysis (%s) and after the last action item was done (%s)',
							 d.recorded_at, d.done_at),
		   NULL::text[], NULL::bigint, NULL::text, NULL::date, NULL::integer, NULL::bigint, NULL::integer,
		   k.metric, k.before_value, k.after_value
	FROM done d
	LEFT JOIN m b ON b.event_id = d.event_id AND NOT b.after
	LEFT JOIN m a ON a.event_id = d.event_id AND a.after
	CROSS JOIN LATERAL (VALUES ('service_level'::text, b.sl, a.sl, 1), ('abandon_rate', b.abandon_rate, a.abandon_rate, 2),
							   ('aht_seconds', b.aht, a.aht, 3), ('repeat_contact_rate', b.repeat_rate, a.repeat_rate, 4),
							   ('escalation_rate', b.escalation_rate, a.escalation_rate, 5),
							   ('transfer_rate', b.transfer_rate, a.transfer_rate, 6)) AS k(metric, before_value, after_value, o)
	WHERE b.event_id IS NOT NULL OR a.event_id IS NOT NULL
	ORDER BY d.event_id, k.o;
END
$$;
COMMENT ON FUNCTION evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type) IS 'Learning loop: missing_analysis rows (sev1 and recurring sev2 without a complete analysis, with its gaps), open_action_item and overdue_action_item rows, recurrence rows (chain root and length), process_health rows (service level, abandonment rate, AHT, repeat-contact, escalation and transfer rates of the affected series 28 days before the analysis and 28 days after its last action item was done)';

------------------------------------------------------------------------------
-- Multi-objective impact
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.report_impact(from_at timestamptz, to_at timestamptz,
	site_filter text DEFAULT NULL, type_filter evmgmt.event_type DEFAULT NULL, pool_filter evmgmt.pool DEFAULT NULL,
	severity_filter evmgmt.severity DEFAULT NULL,
	cost_per_outage_hour double precision DEFAULT 0, cost_per_overtime_hour double precision DEFAULT 0)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, site_id text, event_type evmgmt.event_type, severity evmgmt.severity,
			   intervals bigint, service_level_minutes_lost double precision, contacts_abandoned bigint,
			   contacts_beyond_threshold bigint, outage_hours double precision, overtime_hours double precision,
			   estimated_cost double precision, customer_experience text, agent_experience text, business_value text,
			   cost_recorded text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
	PERFORM evmgmt.report_check_period(report_impact.from_at, report_impact.to_at);
	IF cost_per_outage_hour IS NULL OR cost_per_overtime_hour IS NULL
	   OR NOT (cost_per_outage_hour >= 0 AND cost_per_outage_hour < 'Infinity')
	   OR NOT (cost_per_overtime_hour >= 0 AND cost_per_overtime_hour < 'Infinity') THEN
		RAISE EXCEPTION 'costs per hour must be finite and not negative'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('cost_per_outage_hour was %s, cost_per_overtime_hour %s.',
											 cost_per_outage_hour, cost_per_overtime_hour);
	END IF;
	RETURN QUERY
	WITH c AS (
		SELECT e.event_id, pc.pool, e.site_id, e.event_type, pc.severity, w.intervals, w.minutes_below_target, w.abandoned,
			   w.beyond_threshold, w.outage_minutes, w.overtime_hours
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		JOIN evmgmt.condition_window_stats(report_impact.from_at, report_impact.to_at) w
		  ON w.event_id = e.event_id AND w.pool = pc.pool
		WHERE e.detected_at >= report_impact.from_at AND e.detected_at < report_impact.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled'
		  AND (report_impact.site_filter IS NULL OR e.site_id = report_impact.site_filter)
		  AND (report_impact.type_filter IS NULL OR e.event_type = report_impact.type_filter)
		  AND (report_impact.pool_filter IS NULL OR pc.pool = report_impact.pool_filter)
		  AND (report_impact.severity_filter IS NULL OR pc.severity = report_impact.severity_filter)
	),
	o AS (
		SELECT oi.event_id,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'customer_experience') AS cx,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'agent_experience') AS ax,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'business_value') AS bv,
			   pg_catalog.max(oi.direction || COALESCE(' ' || oi.magnitude || ' ' || oi.unit, '') || COALESCE(': ' || oi.note, ''))
				FILTER (WHERE oi.objective = 'cost') AS co
		FROM evmgmt.objective_impact oi
		WHERE oi.event_id IN (SELECT c.event_id FROM c)
		GROUP BY oi.event_id
	)
	SELECT c.event_id, c.pool, c.site_id, c.event_type, c.severity, c.intervals::bigint, c.minutes_below_target,
		   c.abandoned, c.beyond_threshold, c.outage_minutes / 60.0, c.overtime_hours,
		   c.outage_minutes / 60.0 * report_impact.cost_per_outage_hour + c.overtime_hours * report_impact.cost_per_overtime_hour,
		   o.cx, o.ax, o.bv, o.co
	FROM c LEFT JOIN o ON o.event_id = c.event_id
	UNION ALL
	SELECT NULL, NULL, NULL, NULL, NULL, pg_catalog.sum(c.intervals)::bigint, pg_catalog.sum(c.minutes_below_target),
		   pg_catalog.sum(c.abandoned)::bigint, pg_catalog.sum(c.beyond_threshold)::bigint,
		   pg_catalog.sum(c.outage_minutes) / 60.0, pg_catalog.sum(c.overtime_hours),
		   pg_catalog.sum(c.outage_minutes) / 60.0 * report_impact.cost_per_outage_hour
			+ pg_catalog.sum(c.overtime_hours) * report_impact.cost_per_overtime_hour,
		   pg_catalog.count(o.cx) || ' event(s) recorded', pg_catalog.count(o.ax) || ' event(s) recorded',
		   pg_catalog.count(o.bv) || ' event(s) recorded', pg_catalog.count(o.co) || ' event(s) recorded'
	FROM c LEFT JOIN o ON o.event_id = c.event_id
	ORDER BY 1 NULLS LAST, 2;
END
$$;
COMMENT ON FUNCTION evmgmt.report_impact(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity, double precision, double precision) IS 'Multi-objective impact per pool condition and in aggregate (event_id NULL): interval minutes below the queue target, contacts abandoned and answered beyond threshold, outage hours (intervals with offered contacts and none answered in threshold), overtime hours (staffed above scheduled), estimated cost at the given cost per outage and overtime hour, and the recorded customer, agent, business-value and cost impacts';

------------------------------------------------------------------------------
-- Maturity
------------------------------------------------------------------------------

-- The maturity model of the practitioner texts, read off the operation's own
-- data: automatic detection (level 3), sev3 handled by response rules
-- without the ROC (level 3), breaches predicted and prevented (level 4),
-- routine conditions absorbed by automation (level 5).  Thresholds:
-- docs/reports.md.
CREATE FUNCTION evmgmt.report_maturity(from_at timestamptz, to_at timestamptz, site_filter text DEFAULT NULL)
RETURNS TABLE (events bigint, classified bigint, classified_share double precision,
			   detected_automatically bigint, share_automated double precision,
			   predictions bigint, predicted_confirmed bigint, predicted_averted bigint, predicted_not_confirmed bigint,
			   predicted_open bigint, breaches_missed bigint, share_predicted double precision, share_averted double precision,
			   sev3_conditions bigint, sev3_handled_by_rules bigint, share_sev3_by_rules double precision,
			   maturity_level integer, reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	r record;
	p record;
	v_foreseen bigint;
BEGIN
	PERFORM evmgmt.report_check_period(report_maturity.from_at, report_maturity.to_at);
	WITH ev AS (
		SELECT e.event_id, ds.automated,
			   pg_catalog.bool_or(pc.severity IS NOT NULL) AS is_classified
		FROM evmgmt.event e
		JOIN evmgmt.detection_source ds ON ds.source = e.detection_source
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		WHERE e.detected_at >= report_maturity.from_at AND e.detected_at < report_maturity.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_maturity.site_filter IS NULL OR e.site_id = report_maturity.site_filter)
		GROUP BY e.event_id, ds.automated
	),
	-- the level-3 share: sev3 conditions a response rule handled and that
	-- resolved without ROC intervention (72_response_rules.sql)
	s3 AS (
		SELECT pc.event_id, pc.pool,
			   EXISTS (SELECT FROM evmgmt.rule_handled_conditions h
					   WHERE h.event_id = pc.event_id AND h.pool = pc.pool AND h.handled_without_roc) AS by_rules
		FROM ev JOIN evmgmt.pool_condition pc ON pc.event_id = ev.event_id
		WHERE pc.severity = 'sev3' AND pc.state <> 'cancelled'
	)
	SELECT pg_catalog.count(*) AS events,
		   pg_catalog.count(*) FILTER (WHERE ev.is_classified) AS classified,
		   pg_catalog.count(*) FILTER (WHERE ev.automated) AS auto,
		   (SELECT pg_catalog.count(*) FROM s3) AS s3n,
		   (SELECT pg_catalog.count(*) FROM s3 WHERE s3.by_rules) AS s3r
	INTO r
	FROM ev;
	-- predictions and missed breaches (49_prediction.sql): predicted events
	-- by outcome, and events detected from actuals on series with a forecast
	SELECT pg_catalog.count(*) FILTER (WHERE o.source = 'predicted') AS n,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'confirmed') AS confirmed,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'averted') AS averted,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'not_confirmed') AS not_confirmed,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'open') AS open,
		   pg_catalog.count(*) FILTER (WHERE o.outcome = 'missed') AS missed
	INTO p
	FROM evmgmt.prediction_outcome o
	JOIN evmgmt.event e ON e.event_id = o.event_id
	WHERE e.detected_at >= report_maturity.from_at AND e.detected_at < report_maturity.to_at
	  AND e.cancelled_at IS NULL
	  AND (report_maturity.site_filter IS NULL OR e.site_id = report_maturity.site_filter);

	events := r.events;
	classified := r.classified;
	classified_share := r.classified::double precision / NULLIF(r.events, 0);
	detected_automatically := r.auto;
	share_automated := r.auto::double precision / NULLIF(r.events, 0);
	predictions := p.n;
	predicted_confirmed := p.confirmed;
	predicted_averted := p.averted;
	predicted_not_confirmed := p.not_confirmed;
	predicted_open := p.open;
	breaches_missed := p.missed;
	-- a breach foreseen: a prediction the actuals confirmed or that was averted
	v_foreseen := p.confirmed + p.averted;
	share_predicted := v_foreseen::double precision / NULLIF(v_foreseen + p.missed, 0);
	share_averted := p.averted::double precision / NULLIF(v_foreseen, 0);
	sev3_conditions := r.s3n;
	sev3_handled_by_rules := r.s3r;
	share_sev3_by_rules := r.s3r::double precision / NULLIF(r.s3n, 0);

	IF r.events = 0 THEN
		maturity_level := NULL;
		reason := 'no events in the period';
	ELSIF COALESCE(classified_share, 0) < 0.9 THEN
		maturity_level := 1;
		reason := pg_catalog.format('L1: only %s%% of events were classified (L2 needs 90%%)',
									pg_catalog.round((100 * classified_share)::numeric, 1));
	ELSIF COALESCE(share_automated, 0) < 0.5 OR COALESCE(share_sev3_by_rules, 0) < 0.25 THEN
		maturity_level := 2;
		reason := pg_catalog.format('L2: events classified and documented; %s%% detected automatically and %s%% of sev3 handled by rules without the ROC (L3 needs 50%% and 25%%)',
									pg_catalog.round((100 * COALESCE(share_automated, 0))::numeric, 1),
									pg_catalog.round((100 * COALESCE(share_sev3_by_rules, 0))::numeric, 1));
	ELSIF COALESCE(share_predicted, 0) < 0.5 OR COALESCE(share_averted, 0) < 0.5 THEN
		maturity_level := 3;
		reason := pg_catalog.format('L3: automatic detection and rule-driven response; %s%% of breaches predicted and %s%% of foreseen breaches averted (L4 needs 50%% of each)',
									pg_catalog.round((100 * COALESCE(share_predicted, 0))::numeric, 1),
									pg_catalog.round((100 * COALESCE(share_averted, 0))::numeric, 1));
	ELSIF share_predicted < 0.8 OR COALESCE(share_sev3_by_rules, 0) < 0.8 THEN
		maturity_level := 4;
		reason := pg_catalog.format('L4: %s%% of breaches predicted, %s%% of them averted; %s%% of sev3 handled by rules (L5 needs 80%% predicted and 80%% of sev3 by rules)',
									pg_catalog.round((100 * share_predicted)::numeric, 1),
									pg_catalog.round((100 * share_averted)::numeric, 1),
									pg_catalog.round((100 * COALESCE(share_sev3_by_rules, 0))::numeric, 1));
	ELSE
		maturity_level := 5;
		reason := pg_catalog.format('L5: %s%% of breaches predicted and %s%% of sev3 handled by rules without ROC intervention',
									pg_catalog.round((100 * share_predicted)::numeric, 1),
									pg_catalog.round((100 * share_sev3_by_rules)::numeric, 1));
	END IF;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION evmgmt.report_maturity(timestamptz, timestamptz, text) IS 'Maturity figures of the period: events classified and detected automatically, predictions by outcome (confirmed, averted, not confirmed, open) and breaches missed by prediction, the share of breaches predicted and of foreseen ones averted, sev3 conditions handled by rules without ROC intervention, and the maturity level (1-5) they support with the reason';

-- The post-event report as a page: evmgmt.event_report(event_id) returns one
-- self-contained HTML document (inline CSS and SVG, no scripts, no external
-- files) that an analyst can save and mail.  Every value taken from the
-- database goes through html_escape, so titles and notes cannot inject
-- markup.  Checked in headless Chromium by test/integration/event_report.sh.

-- (html_escape: 66_listener.sql)

-- The service level of one pool across the event window as an SVG chart:
-- the measured service level per interval, the tier thresholds and the
-- queue target as horizontal lines, the event's marks as vertical lines.
CREATE FUNCTION evmgmt.event_report_chart(event_id bigint, pool evmgmt.pool) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	e record;
	pc record;
	v_from timestamptz;
	v_to timestamptz;
	v_span double precision;
	w constant integer := 760;
	h constant integer := 260;
	l constant integer := 50;		-- left margin
	t constant integer := 20;		-- top margin
	pw constant integer := 690;		-- plot width
	ph constant integer := 200;		-- plot height
	v_svg text;
	v_points text;
	r record;
	x double precision;
BEGIN
	SELECT * INTO e FROM evmgmt.event x WHERE x.event_id = event_report_chart.event_id;
	SELECT * INTO pc FROM evmgmt.pool_condition x WHERE x.event_id = event_report_chart.event_id AND x.pool = event_report_chart.pool;
	v_from := e.detected_at - interval '1 hour';
	v_to := COALESCE(pc.resolved_at, e.closed_at, e.cancelled_at, pg_catalog.now()) + interval '1 hour';
	v_span := GREATEST(pg_catalog.date_part('epoch', v_to - v_from), 1);

	v_svg := pg_catalog.format('<svg xmlns="http://www.w3.org/2000/svg" class="sl-chart" data-pool="%s" width="%s" height="%s" viewBox="0 0 %s %s" role="img" aria-label="Service level of pool %s">',
							   pc.pool, w, h, w, h, pc.pool)
		|| pg_catalog.format('<rect x="%s" y="%s" width="%s" height="%s" fill="#fafafa" stroke="#999"/>', l, t, pw, ph);
	-- y axis: 0, 50 and 100 %
	FOR r IN SELECT v FROM (VALUES (0.0), (0.5), (1.0)) AS y(v) LOOP
		v_svg := v_svg || pg_catalog.format('<text x="%s" y="%s" font-size="10" text-anchor="end">%s%%</text>',
											l - 4, t + ph - r.v * ph + 3, (r.v * 100)::integer);
	END LOOP;
	-- tier thresholds and the queue target
	FOR r IN
		SELECT th.severity::text AS label, th.sl_threshold AS v, '#c0392b' AS colour
		FROM evmgmt.effective_severity_policy th
		WHERE th.operation_id = e.operation_id AND th.sl_threshold IS NOT NULL
		UNION ALL
		SELECT 'target', q.sl_target, '#27ae60' FROM evmgmt.queue q WHERE q.queue_id = e.queue_id
	LOOP
		v_svg := v_svg || pg_catalog.format('<line class="threshold" data-label="%s" x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-dasharray="4 3"/><text x="%s" y="%s" font-size="10" fill="%s">%s %s%%</text>',
											r.label, l, l + pw, t + ph - r.v * ph, t + ph - r.v * ph, r.colour,
											l + pw - 60, t + ph - r.v * ph - 2, r.colour, r.label, pg_catalog.round((r.v * 100)::numeric));
	END LOOP;
	-- the measured service level, one point per interval (at its middle)
	v_points := '';
	FOR r IN
		SELECT s.interval_start + s.interval_minutes * interval '30 seconds' AS mid,
			   evmgmt.interval_service_level(s.answered_in_threshold, s.offered) AS sl
		FROM evmgmt.interval_stat s
		WHERE s.interval_start >= v_from AND s.interval_start < v_to AND s.site_id = e.site_id
		  AND (e.queue_id IS NULL OR s.queue_id = e.queue_id) AND s.pool = pc.pool
		  AND s.offered > 0
		ORDER BY s.interval_start
	LOOP
		x := l + pw * pg_catalog.date_part('epoch', r.mid - v_from) / v_span;
		v_points := v_points || pg_catalog.format('%s,%s ', pg_catalog.round(x::numeric, 1), pg_catalog.round((t + ph - r.sl * ph)::numeric, 1));
		v_svg := v_svg || pg_catalog.format('<circle class="sl-point" cx="%s" cy="%s" r="2.5" fill="#2c3e50"><title>%s: %s%%</title></circle>',
											pg_catalog.round(x::numeric, 1), pg_catalog.round((t + ph - r.sl * ph)::numeric, 1),
											pg_catalog.to_char(r.mid, 'YYYY-MM-DD HH24:MI'), pg_catalog.round((r.sl * 100)::numeric, 1));
	END LOOP;
	IF v_points <> '' THEN
		v_svg := v_svg || pg_catalog.format('<polyline points="%s" fill="none" stroke="#2c3e50" stroke-width="1.5"/>', pg_catalog.rtrim(v_points));
	ELSE
		v_svg := v_svg || pg_catalog.format('<text x="%s" y="%s" font-size="12" text-anchor="middle">no interval data</text>', l + pw / 2, t + ph / 2);
	END IF;
	-- marks
	FOR r IN
		SELECT m.kind, m.at, m.colour FROM (
			SELECT 'detected' AS kind, e.detected_at AS at, '#8e44ad' AS colour
			UNION ALL SELECT 'classified', pc.classified_at, '#2980b9'
			UNION ALL SELECT 'acknowledged', k.acked_at, '#16a085'
				FROM evmgmt.escalation x JOIN evmgmt.escalation_ack k ON k.escalation_id = x.escalation_id
				WHERE x.event_id = e.event_id AND x.pool = pc.pool
			UNION ALL SELECT 'response: ' || a.lever, a.activated_at, '#d35400'
				FROM evmgmt.response_action a WHERE a.event_id = e.event_id AND a.pool = pc.pool
			UNION ALL SELECT 'resolved', pc.resolved_at, '#27ae60') m
		WHERE m.at IS NOT NULL
		ORDER BY m.at
	LOOP
		x := l + pw * pg_catalog.date_part('epoch', r.at - v_from) / v_span;
		v_svg := v_svg || pg_catalog.format('<line class="mark" data-mark="%s" x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s"/><text x="%s" y="%s" font-size="9" fill="%s" transform="rotate(90 %s %s)">%s</text>',
											evmgmt.html_escape(r.kind), pg_catalog.round(x::numeric, 1), pg_catalog.round(x::numeric, 1),
											t, t + ph, r.colour, pg_catalog.round((x + 3)::numeric, 1), t + 4, r.colour,
											pg_catalog.round((x + 3)::numeric, 1), t + 4, evmgmt.html_escape(r.kind));
		-- the label runs down beside the line, inside the plot
	END LOOP;
	-- time axis: start and end
	v_svg := v_svg || pg_catalog.format('<text x="%s" y="%s" font-size="10">%s</text><text x="%s" y="%s" font-size="10" text-anchor="end">%s</text></svg>',
										l, t + ph + 14, pg_catalog.to_char(v_from, 'YYYY-MM-DD HH24:MI'),
										l + pw, t + ph + 14, pg_catalog.to_char(v_to, 'YYYY-MM-DD HH24:MI'));
	RETURN v_svg;
END
$$;
COMMENT ON FUNCTION evmgmt.event_report_chart(bigint, evmgmt.pool) IS 'Inline SVG chart of one pool''s service level across the event window (an hour either side), with the tier thresholds, the queue target and the marks detected, classified, acknowledged, each response and resolved';

CREATE FUNCTION evmgmt.event_report(event_id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	e record;
	r record;
	a record;
	q record;
	v_html text;
	v_rows text;
	v_floor evmgmt.severity;
	w record;
BEGIN
	IF event_id IS NULL THEN
		RAISE EXCEPTION 'event_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	-- SECURITY DEFINER reads past row security: an event at a site the
	-- acting role is not bound to does not exist for it (86_site_scope.sql)
	SELECT * INTO e FROM evmgmt.event x WHERE x.event_id = event_report.event_id
	  AND (evmgmt.site_scope() IS NULL OR x.site_id = ANY (evmgmt.site_scope()));
	IF NOT FOUND THEN
		RAISE EXCEPTION 'event % does not exist', event_report.event_id
			USING ERRCODE = 'no_data_found', HINT = 'Look the event up in evmgmt.event_rollup.';
	END IF;
	SELECT pg_catalog.min(x.severity) FILTER (WHERE x.state <> 'cancelled') INTO v_floor
	FROM evmgmt.pool_condition x WHERE x.event_id = e.event_id;

	v_html := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
		|| '<title>' || evmgmt.html_escape(pg_catalog.format('Event %s: %s', e.event_id, e.title)) || '</title>'
		|| '<style>body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}'
		|| 'table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}'
		|| 'th{background:#eee}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ccc}'
		|| '.sev1{color:#c0392b;font-weight:bold}.sev2{color:#d35400;font-weight:bold}.muted{color:#777}</style></head><body>'
		|| '<h1 id="title">' || evmgmt.html_escape(pg_catalog.format('Event %s: %s', e.event_id, e.title)) || '</h1>'
		|| '<table id="summary">'
		|| '<tr><th>Type</th><td>' || evmgmt.html_escape(e.event_type::text || COALESCE(' / ' || e.subtype, '')) || '</td></tr>'
		|| '<tr><th>Site / queue</th><td>' || evmgmt.html_escape(e.site_id || COALESCE(' / ' || e.queue_id, '')) || '</td></tr>'
		|| '<tr><th>Detected</th><td>' || evmgmt.html_escape(pg_catalog.to_char(e.detected_at, 'YYYY-MM-DD HH24:MI TZ') || ' by ' || e.detection_source) || '</td></tr>'
		|| '<tr><th>Floor severity</th><td id="floor-severity" class="' || COALESCE(v_floor::text, '') || '">' || COALESCE(v_floor::text, 'none') || '</td></tr>'
		|| '<tr><th>State</th><td>' || CASE WHEN e.cancelled_at IS NOT NULL THEN 'cancelled: ' || evmgmt.html_escape(e.cancel_reason)
											 WHEN e.closed_at IS NOT NULL THEN 'closed ' || pg_catalog.to_char(e.closed_at, 'YYYY-MM-DD HH24:MI TZ')
											 ELSE 'open' END || '</td></tr>'
		|| CASE WHEN e.description IS NOT NULL THEN '<tr><th>Description</th><td>' || evmgmt.html_escape(e.description) || '</td></tr>' ELSE '' END
		|| '</table>';

	-- per pool: its condition, the chart, Power of One at the worst interval
	FOR r IN SELECT * FROM evmgmt.pool_condition x WHERE x.event_id = e.event_id ORDER BY x.pool LOOP
		v_html := v_html || pg_catalog.format('<section class="pool" id="pool-%s"><h2>Pool %s: %s, %s</h2>', r.pool, r.pool,
											  COALESCE(r.severity::text, 'unclassified'), r.state)
			|| '<table class="pool-facts"><tr><th>Response</th><td>'
			|| COALESCE('due ' || pg_catalog.to_char(r.response_due, 'YYYY-MM-DD HH24:MI'), 'no target')
			|| COALESCE(', first lever ' || pg_catalog.to_char(r.first_response_at, 'YYYY-MM-DD HH24:MI'), ', no lever yet')
			|| CASE WHEN COALESCE(r.first_response_at, pg_catalog.now()) > r.response_due THEN ' <b class="sev1">breached</b>' ELSE '' END
			|| '</td></tr><tr><th>Resolution</th><td>'
			|| COALESCE('due ' || pg_catalog.to_char(r.resolution_due, 'YYYY-MM-DD HH24:MI'), 'no target')
			|| COALESCE(', resolved ' || pg_catalog.to_char(r.resolved_at, 'YYYY-MM-DD HH24:MI'), ', unresolved')
			|| CASE WHEN COALESCE(r.resolved_at, pg_catalog.now()) > r.resolution_due THEN ' <b class="sev1">breached</b>' ELSE '' END
			|| '</td></tr>'
			|| CASE WHEN r.cause_category IS NOT NULL THEN '<tr><th>Diagnosis</th><td>' || evmgmt.html_escape(r.cause_category || ' / ' || r.lever_class || COALESCE(': ' || r.proximate_cause, '')) || '</td></tr>' ELSE '' END
			|| CASE WHEN r.resolution_note IS NOT NULL THEN '<tr><th>Resolution note</th><td>' || evmgmt.html_escape(r.resolution_note) || '</td></tr>' ELSE '' END
			|| '</table>'
			|| evmgmt.event_report_chart(e.event_id, r.pool);

		SELECT * INTO w FROM evmgmt.event_window_stats(e.event_id, r.pool, pg_catalog.now());
		IF w.worst_interval IS NOT NULL THEN
			SELECT s.*, s.offered * s.aht_seconds::float8 / (s.interval_minutes * 60.0) AS traffic INTO a
			FROM evmgmt.interval_stat s
			WHERE s.interval_start = w.worst_interval AND s.site_id = e.site_id AND s.pool = r.pool
			  AND (e.queue_id IS NULL OR s.queue_id = e.queue_id)
			ORDER BY evmgmt.interval_service_level(s.answered_in_threshold, s.offered) NULLS LAST LIMIT 1;
			v_html := v_html || pg_catalog.format('<h3>Power of One at the worst interval (%s, queue %s, service level <span class="worst-sl">%s%%</span>)</h3>',
												  pg_catalog.to_char(a.interval_start, 'YYYY-MM-DD HH24:MI'), evmgmt.html_escape(a.queue_id),
												  pg_catalog.round((100 * w.worst_service_level)::numeric, 1));
			IF a.aht_seconds IS NOT NULL AND a.staffed IS NOT NULL AND a.staffed >= 1 AND a.staffed < 1000000 THEN
				v_rows := '';
				FOR q IN SELECT p.*
						 FROM evmgmt.power_of_one(a.traffic, pg_catalog.floor(a.staffed)::integer, a.aht_seconds, a.threshold_seconds, 3) p
				LOOP
					v_rows := v_rows || pg_catalog.format('<tr%s><td>%s</td><td>%s</td><td>%s%%</td><td>%s</td><td>%s%%</td></tr>',
						CASE WHEN q.delta = 0 THEN ' class="staffed"' ELSE '' END, q.agents,
						CASE WHEN q.delta > 0 THEN '+' ELSE '' END || q.delta,
						pg_catalog.round((100 * q.service_level)::numeric, 1),
						CASE WHEN q.asa = 'Infinity' THEN 'unbounded' ELSE pg_catalog.round(q.asa::numeric, 1) || ' s' END,
						pg_catalog.round((100 * q.occupancy)::numeric, 1));
				END LOOP;
				v_html := v_html || '<table class="power-of-one"><tr><th>Agents</th><th>Change</th><th>Service level (Erlang C)</th><th>ASA</th><th>Occupancy</th></tr>'
					|| v_rows || '</table>';
			ELSE
				v_html := v_html || '<p class="muted">No staffing or handle time recorded for that interval.</p>';
			END IF;
		END IF;
		v_html := v_html || '</section>';
	END LOOP;

	-- what prediction foresaw and how it turned out (49_prediction.sql)
	v_rows := '';
	FOR r IN SELECT ps.* FROM evmgmt.prediction_state ps WHERE ps.event_id = e.event_id ORDER BY ps.pool LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s%%</td><td>%s</td><td>%s</td></tr>',
			r.pool, pg_catalog.to_char(r.predicted_at, 'YYYY-MM-DD HH24:MI'), r.severity,
			pg_catalog.to_char(r.breach_starts_at, 'YYYY-MM-DD HH24:MI'),
			COALESCE(pg_catalog.round((100 * r.projected_service_level)::numeric, 1)::text, '-'),
			COALESCE(r.agents_needed::text, '-'), evmgmt.html_escape(r.status));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Prediction</h2><table id="prediction"><tr><th>Pool</th><th>Predicted</th><th>Tier</th>'
			|| '<th>Breach from</th><th>Projected service level</th><th>Agents to add</th><th>Outcome</th></tr>' || v_rows || '</table>';
	END IF;

	-- what response rules did (72_response_rules.sql)
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.response_rule_firing f WHERE f.event_id = e.event_id ORDER BY f.fired_at, f.firing_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr class="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			evmgmt.html_escape(r.outcome), pg_catalog.to_char(r.fired_at, 'YYYY-MM-DD HH24:MI:SS'), r.pool,
			evmgmt.html_escape(r.rule_id), evmgmt.html_escape(r.lever), evmgmt.html_escape(r.outcome || COALESCE(': ' || r.detail, '')));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Automatic responses</h2><table id="rules"><tr><th>Time</th><th>Pool</th><th>Rule</th>'
			|| '<th>Lever</th><th>Outcome</th></tr>' || v_rows || '</table>';
	END IF;

	-- escalation timeline: who was paged how and when, who acknowledged
	v_rows := '';
	FOR r IN
		SELECT x.at, x.pool, x.what, x.channel, x.who, x.outcome FROM (
			SELECT sr.fired_at AS at, esc.pool, 'step ' || sr.step_no || CASE WHEN sr.retry_no > 0 THEN ' retry ' || sr.retry_no ELSE '' END AS what,
				   sr.channel::text AS channel, c.name AS who, sr.outcome || COALESCE(' / ' || n.state, '') AS outcome
			FROM evmgmt.escalation esc
			JOIN evmgmt.escalation_step_run sr ON sr.escalation_id = esc.escalation_id
			LEFT JOIN evmgmt.contact c ON c.contact_id = sr.contact_id
			LEFT JOIN evmgmt.notification n ON n.notification_id = sr.notification_id
			WHERE esc.event_id = e.event_id
			UNION ALL
			SELECT k.acked_at, esc.pool, 'acknowledged', k.channel, c.name, k.note
			FROM evmgmt.escalation esc
			JOIN evmgmt.escalation_ack k ON k.escalation_id = esc.escalation_id
			LEFT JOIN evmgmt.contact c ON c.contact_id = k.contact_id
			WHERE esc.event_id = e.event_id
		) x ORDER BY x.at, x.what
	LOOP
		v_rows := v_rows || pg_catalog.format('<tr class="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			CASE WHEN r.what = 'acknowledged' THEN 'ack' ELSE 'page' END,
			pg_catalog.to_char(r.at, 'YYYY-MM-DD HH24:MI:SS'), r.pool, evmgmt.html_escape(r.what),
			COALESCE(evmgmt.html_escape(r.channel), ''), COALESCE(evmgmt.html_escape(r.who), ''), COALESCE(evmgmt.html_escape(r.outcome), ''));
	END LOOP;
	v_html := v_html || '<h2>Escalation timeline</h2>'
		|| CASE WHEN v_rows = '' THEN '<p class="muted">No escalation steps.</p>'
				ELSE '<table id="escalations"><tr><th>Time</th><th>Pool</th><th>Step</th><th>Channel</th><th>Who</th><th>Outcome / note</th></tr>' || v_rows || '</table>' END;

	-- the event's own timeline
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.event_timeline x WHERE x.event_id = e.event_id ORDER BY x.at, x.entry_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			pg_catalog.to_char(r.at, 'YYYY-MM-DD HH24:MI:SS'), COALESCE(r.pool::text, ''), evmgmt.html_escape(r.action),
			evmgmt.html_escape(r.actor),
			evmgmt.html_escape(pg_catalog.concat_ws(' ', CASE WHEN r.from_severity IS NOT NULL OR r.to_severity IS NOT NULL
															   THEN COALESCE(r.from_severity::text, '') || ' -> ' || COALESCE(r.to_severity::text, '') END,
													r.lever, r.reason)));
	END LOOP;
	v_html := v_html || '<h2>Timeline</h2><table id="timeline"><tr><th>Time</th><th>Pool</th><th>Action</th><th>Actor</th><th>Detail</th></tr>'
		|| v_rows || '</table>';

	-- responses
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.response_action x WHERE x.event_id = e.event_id ORDER BY x.activated_at, x.action_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			pg_catalog.to_char(r.activated_at, 'YYYY-MM-DD HH24:MI:SS'), r.pool, evmgmt.html_escape(r.lever),
			evmgmt.html_escape(r.actor), COALESCE(evmgmt.html_escape(r.note), ''));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Responses</h2><table id="responses"><tr><th>Time</th><th>Pool</th><th>Lever</th><th>Actor</th><th>Note</th></tr>' || v_rows || '</table>';
	END IF;

	-- analysis, action items, objective impacts
	SELECT * INTO a FROM evmgmt.post_resolution_analysis x WHERE x.event_id = e.event_id;
	IF FOUND THEN
		v_html := v_html || '<h2>Post-resolution analysis</h2><table id="analysis">'
			|| '<tr><th>Root cause</th><td>' || evmgmt.html_escape(a.root_cause) || '</td></tr>'
			|| '<tr><th>Contributing factors</th><td>' || COALESCE(evmgmt.html_escape(pg_catalog.array_to_string(a.contributing_factors, '; ')), '') || '</td></tr>'
			|| '<tr><th>Action plan</th><td>' || evmgmt.html_escape(a.action_plan) || '</td></tr>'
			|| CASE WHEN a.detector_gap IS NOT NULL THEN '<tr><th>Detector gap</th><td>' || evmgmt.html_escape(a.detector_gap) || '</td></tr>' ELSE '' END
			|| '<tr><th>Recorded</th><td>' || evmgmt.html_escape(pg_catalog.to_char(a.recorded_at, 'YYYY-MM-DD HH24:MI') || ' by ' || a.recorded_by) || '</td></tr>'
			|| '</table>';
	ELSE
		v_html := v_html || '<h2>Post-resolution analysis</h2><p class="muted" id="analysis">No analysis recorded.</p>';
	END IF;
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.action_item x WHERE x.event_id = e.event_id ORDER BY x.due_date, x.item_id LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			evmgmt.html_escape(r.description), evmgmt.html_escape(r.owner), r.due_date,
			CASE WHEN r.done_at IS NOT NULL THEN 'done ' || pg_catalog.to_char(r.done_at, 'YYYY-MM-DD')
				 WHEN r.due_date < CURRENT_DATE THEN '<b class="sev1">overdue</b>' ELSE 'open' END);
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Action items</h2><table id="action-items"><tr><th>Item</th><th>Owner</th><th>Due</th><th>Status</th></tr>' || v_rows || '</table>';
	END IF;
	v_rows := '';
	FOR r IN SELECT * FROM evmgmt.objective_impact x WHERE x.event_id = e.event_id ORDER BY x.objective LOOP
		v_rows := v_rows || pg_catalog.format('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
			r.objective, evmgmt.html_escape(r.direction), COALESCE(r.magnitude || ' ' || evmgmt.html_escape(r.unit), ''),
			COALESCE(evmgmt.html_escape(r.note), ''));
	END LOOP;
	IF v_rows <> '' THEN
		v_html := v_html || '<h2>Objective impacts</h2><table id="impacts"><tr><th>Objective</th><th>Direction</th><th>Magnitude</th><th>Note</th></tr>' || v_rows || '</table>';
	END IF;
	RETURN v_html || pg_catalog.format('<p class="muted">Generated by evmgmt at %s.</p></body></html>',
									   pg_catalog.to_char(pg_catalog.now(), 'YYYY-MM-DD HH24:MI TZ'));
END
$$;
COMMENT ON FUNCTION evmgmt.event_report(bigint) IS 'The post-event report of one event as a self-contained HTML document (inline SVG service-level chart per pool with thresholds and marks, what prediction foresaw, what response rules did, escalation timeline with names and acknowledgment channels but no addresses, Power of One at the worst interval, timeline, responses, analysis, action items, objective impacts); every database value HTML-escaped';

DO $issue12$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['bi_open_events', 'bi_event_timeline', 'bi_notification_delivery', 'bi_interval_service_level'] LOOP
		EXECUTE pg_catalog.format('GRANT SELECT ON evmgmt.%I TO evmgmt_reader, evmgmt_admin', t);
		PERFORM evmgmt.restrict_view_to_site_scope(t);
	END LOOP;
END
$issue12$;

-- Views and reports (76_bi_views.sql, 77_reports.sql, 78_event_report.sql):
-- the BI views are granted to readers by the loop above; every report and the
-- HTML event report to readers (and so to responders and admins).  The
-- fatigue report and the event report are SECURITY DEFINER because they read
-- the outbox and the step history, which readers cannot: they return names,
-- never addresses, and keep to the acting role's sites themselves.
DO $reports$
DECLARE
	f text;
BEGIN
	FOREACH f IN ARRAY ARRAY[
		'evmgmt.visible_address(text)',
		'evmgmt.report_check_period(timestamptz, timestamptz)',
		'evmgmt.event_window_stats(bigint, evmgmt.pool, timestamptz)',
		'evmgmt.condition_window_stats(timestamptz, timestamptz, bigint, timestamptz)',
		'evmgmt.hours_class(timestamptz, text)',
		'evmgmt.report_target_compliance(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity)',
		'evmgmt.report_response_times(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity)',
		'evmgmt.drift_conditions(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool)',
		'evmgmt.report_severity_drift(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool)',
		'evmgmt.report_blind_spots(timestamptz, timestamptz, text, evmgmt.event_type)',
		'evmgmt.report_notification_fatigue(timestamptz, timestamptz, text, bigint)',
		'evmgmt.learning_loop_events(timestamptz, timestamptz, text, evmgmt.event_type)',
		'evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type)',
		'evmgmt.report_impact(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity, double precision, double precision)',
		'evmgmt.report_maturity(timestamptz, timestamptz, text)',
		'evmgmt.event_report_chart(bigint, evmgmt.pool)',
		'evmgmt.event_report(bigint)'] LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO evmgmt_reader', f);
	END LOOP;
END
$reports$;

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

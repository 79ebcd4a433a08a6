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

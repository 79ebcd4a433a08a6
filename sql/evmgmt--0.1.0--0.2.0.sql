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

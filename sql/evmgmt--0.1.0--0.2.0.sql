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
--   71_bi_views.sql          BI views: open events, timeline, delivery, interval SL
--   72_reports.sql           the post-event report functions
--   74_event_report.sql      event_report(event_id): the HTML page
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
-- Views and reports (issue 12): 71_bi_views.sql, 72_reports.sql,
-- 74_event_report.sql and their block in 90_privileges.sql.
------------------------------------------------------------------------------

-- Views for BI tools (Grafana, Metabase, Power BI, psql): open events with
-- their clocks, the full timeline of an event, notification delivery and
-- interval service level with the Power-of-One figures.  Column names are a
-- contract (docs/views.md); contact data is masked unless the reader is a
-- responder.  Each view is written so that the usual filters (open events,
-- one event_id, a time range) reach an index (test/integration/bi_plans.sh).

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
SELECT t.event_id, t.at, 'lifecycle'::text AS source, t.pool, t.action, t.actor,
	   NULL::evmgmt.channel AS channel, NULL::bigint AS contact_id, NULL::text AS contact_name, NULL::text AS recipient,
	   t.from_state, t.to_state, t.from_severity, t.to_severity, t.lever, t.reason AS detail
FROM evmgmt.event_timeline t
UNION ALL
SELECT e.event_id, r.fired_at, 'escalation_step', e.pool, 'step ' || r.step_no || CASE WHEN r.retry_no > 0 THEN ' retry ' || r.retry_no ELSE '' END,
	   'escalation ' || r.escalation_id, r.channel, r.contact_id, c.name, evmgmt.visible_address(r.recipient),
	   NULL, NULL, NULL, NULL, NULL, r.outcome
FROM evmgmt.escalation e
JOIN evmgmt.escalation_step_run r ON r.escalation_id = e.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = r.contact_id
UNION ALL
SELECT e.event_id, k.acked_at, 'acknowledgment', e.pool, 'acknowledged', c.role_name,
	   NULL, k.contact_id, c.name, NULL, NULL, NULL, NULL, NULL, NULL, k.note
FROM evmgmt.escalation e
JOIN evmgmt.escalation_ack k ON k.escalation_id = e.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = k.contact_id
UNION ALL
SELECT a.event_id, a.activated_at, 'response', a.pool, 'lever', a.actor,
	   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, a.lever, a.note
FROM evmgmt.response_action a;
COMMENT ON VIEW evmgmt.bi_event_timeline IS 'The full timeline of every event: lifecycle entries, escalation steps per recipient (address masked for readers), acknowledgments and response levers; filter on event_id';

-- One row per notification: who (masked), how, what became of it.
CREATE VIEW evmgmt.bi_notification_delivery AS
SELECT n.notification_id, n.event_id, n.escalation_id, n.kind, n.channel, n.provider_id,
	   n.contact_id, c.name AS contact_name, evmgmt.visible_address(n.recipient) AS recipient,
	   n.state AS outcome, n.attempts, n.created_at, n.sent_at, n.sent_at - n.created_at AS time_to_send,
	   n.last_status,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN n.last_error
			WHEN n.last_error IS NOT NULL THEN '(hidden)' END AS last_error
FROM evmgmt.notification n
LEFT JOIN evmgmt.contact c ON c.contact_id = n.contact_id;
COMMENT ON VIEW evmgmt.bi_notification_delivery IS 'Every notification: event, escalation, kind, channel, recipient (masked for readers), outcome (pending, sending, retry, sent, dead, cancelled), attempts, time to send';

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

-- The interval evidence of one pool condition: the intervals of the event's
-- site (and queue, when the event has one) and pool that overlap the window
-- from detection to resolution (or to_at while unresolved).
CREATE FUNCTION evmgmt.event_window_stats(event_id bigint, pool evmgmt.pool, until timestamptz,
	OUT intervals integer, OUT minutes_below_target double precision, OUT abandoned bigint,
	OUT beyond_threshold bigint, OUT outage_minutes double precision, OUT overtime_hours double precision,
	OUT worst_service_level double precision, OUT worst_interval timestamptz,
	OUT sev1_run double precision, OUT sev2_run double precision, OUT sev3_run double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	v_from timestamptz;
	v_to timestamptz;
	v_site text;
	v_queue text;
	v_op text;
	t1 double precision;
	t2 double precision;
	t3 double precision;
BEGIN
	SELECT e.detected_at, COALESCE(pc.resolved_at, e.closed_at, e.cancelled_at, event_window_stats.until),
		   e.site_id, e.queue_id, e.operation_id
	INTO v_from, v_to, v_site, v_queue, v_op
	FROM evmgmt.event e JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id AND pc.pool = event_window_stats.pool
	WHERE e.event_id = event_window_stats.event_id;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	SELECT th.sev1_threshold, th.sev2_threshold, th.sev3_threshold INTO t1, t2, t3
	FROM evmgmt.severity_thresholds th WHERE th.operation_id = v_op;

	WITH w AS (
		SELECT s.interval_start, s.interval_minutes::double precision AS m, s.offered, s.handled, s.abandoned,
			   s.answered_in_threshold, s.staffed, s.scheduled, q.sl_target,
			   evmgmt.interval_service_level(s.answered_in_threshold, s.offered) AS sl
		FROM evmgmt.interval_stat s
		JOIN evmgmt.queue q ON q.queue_id = s.queue_id
		WHERE s.interval_start >= v_from - interval '1 hour' AND s.interval_start < v_to
		  AND s.interval_start + s.interval_minutes * interval '1 minute' > v_from
		  AND s.site_id = v_site AND (v_queue IS NULL OR s.queue_id = v_queue)
		  AND s.pool = event_window_stats.pool
	),
	-- per threshold: consecutive runs of intervals below it (a gap or an
	-- interval without signal ends a run)
	b AS (
		SELECT w.*, tier, thr,
			   w.sl IS NOT NULL AND (CASE WHEN thr <= 0 THEN w.sl <= 0 ELSE w.sl < thr END) AS below
		FROM w CROSS JOIN (VALUES (1, t1), (2, t2), (3, t3)) AS x(tier, thr)
		WHERE thr IS NOT NULL
	),
	r AS (
		SELECT b.*, pg_catalog.sum(CASE WHEN b.below THEN 0 ELSE 1 END)
					OVER (PARTITION BY b.tier ORDER BY b.interval_start) AS grp
		FROM b
	),
	runs AS (
		SELECT r.tier, pg_catalog.max(s.minutes) AS longest
		FROM (SELECT r.tier, r.grp, pg_catalog.sum(r.m) AS minutes FROM r WHERE r.below GROUP BY r.tier, r.grp) s
		JOIN (SELECT DISTINCT r.tier FROM r) r ON r.tier = s.tier
		GROUP BY r.tier
	)
	SELECT pg_catalog.count(*)::integer,
		   COALESCE(pg_catalog.sum(w.m) FILTER (WHERE w.sl < w.sl_target), 0),
		   COALESCE(pg_catalog.sum(w.abandoned), 0),
		   COALESCE(pg_catalog.sum(w.handled - w.answered_in_threshold), 0),
		   COALESCE(pg_catalog.sum(w.m) FILTER (WHERE w.offered > 0 AND w.answered_in_threshold = 0), 0),
		   COALESCE(pg_catalog.sum(GREATEST(w.staffed - w.scheduled, 0) * w.m / 60.0), 0),
		   pg_catalog.min(w.sl),
		   (SELECT w2.interval_start FROM w w2 WHERE w2.sl IS NOT NULL ORDER BY w2.sl, w2.interval_start LIMIT 1),
		   COALESCE((SELECT runs.longest FROM runs WHERE runs.tier = 1), 0),
		   COALESCE((SELECT runs.longest FROM runs WHERE runs.tier = 2), 0),
		   COALESCE((SELECT runs.longest FROM runs WHERE runs.tier = 3), 0)
	INTO intervals, minutes_below_target, abandoned, beyond_threshold, outage_minutes, overtime_hours,
		 worst_service_level, worst_interval, sev1_run, sev2_run, sev3_run
	FROM w;
	-- an overlapping interval from before detection belongs to the window; the
	-- hour of slack above only lets the index range start early enough
	RETURN;
END
$$;
COMMENT ON FUNCTION evmgmt.event_window_stats(bigint, evmgmt.pool, timestamptz) IS 'Interval evidence of one pool condition from detection to resolution (or until): intervals, minutes below the queue target, abandoned, answered beyond threshold, outage minutes, overtime hours (staffed above scheduled), worst interval, longest run below each tier threshold (minutes)';

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
		SELECT e.event_id, pc.pool, pc.severity, pg_catalog.date_trunc('month', e.detected_at, 'UTC')::date AS month, e.operation_id
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		WHERE e.detected_at >= report_severity_drift.from_at AND e.detected_at < report_severity_drift.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
		  AND (report_severity_drift.site_filter IS NULL OR e.site_id = report_severity_drift.site_filter)
		  AND (report_severity_drift.type_filter IS NULL OR e.event_type = report_severity_drift.type_filter)
		  AND (report_severity_drift.pool_filter IS NULL OR pc.pool = report_severity_drift.pool_filter)
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
		SELECT e.event_id, pc.pool, pc.severity, pg_catalog.date_trunc('month', e.detected_at, 'UTC')::date AS month, e.operation_id
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		WHERE e.detected_at >= report_severity_drift.from_at AND e.detected_at < report_severity_drift.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
		  AND (report_severity_drift.site_filter IS NULL OR e.site_id = report_severity_drift.site_filter)
		  AND (report_severity_drift.type_filter IS NULL OR e.event_type = report_severity_drift.type_filter)
		  AND (report_severity_drift.pool_filter IS NULL OR pc.pool = report_severity_drift.pool_filter)
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
		SELECT e.event_id, pc.pool, pc.severity, pg_catalog.date_trunc('month', e.detected_at, 'UTC')::date AS month, e.operation_id
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		WHERE e.detected_at >= report_severity_drift.from_at AND e.detected_at < report_severity_drift.to_at
		  AND e.cancelled_at IS NULL AND pc.state <> 'cancelled' AND pc.severity IS NOT NULL
		  AND (report_severity_drift.site_filter IS NULL OR e.site_id = report_severity_drift.site_filter)
		  AND (report_severity_drift.type_filter IS NULL OR e.event_type = report_severity_drift.type_filter)
		  AND (report_severity_drift.pool_filter IS NULL OR pc.pool = report_severity_drift.pool_filter)
	)
	SELECT 'disagreement'::text, c.month, NULL::evmgmt.severity, NULL::bigint, NULL::double precision,
		   CASE WHEN x.implied IS NULL OR x.implied > c.severity THEN 'over_classified' ELSE 'under_classified' END,
		   c.event_id, c.pool, c.severity, x.implied,
		   pg_catalog.format('%s interval(s); longest run below the sev1/sev2/sev3 thresholds: %s/%s/%s min',
							 w.intervals, w.sev1_run, w.sev2_run, w.sev3_run)
	FROM c
	CROSS JOIN LATERAL evmgmt.event_window_stats(c.event_id, c.pool, report_severity_drift.to_at) w
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
CREATE FUNCTION evmgmt.hours_class(at timestamptz, time_zone text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
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
		SELECT e.event_id, e.site_id, e.queue_id, e.event_type,
			   (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc
				WHERE pc.event_id = e.event_id AND pc.state <> 'cancelled') AS severity,
			   e.recurrence_of, e.detected_at, e.closed_at
		FROM evmgmt.event e
		WHERE e.detected_at >= report_learning_loop.from_at AND e.detected_at < report_learning_loop.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_learning_loop.site_filter IS NULL OR e.site_id = report_learning_loop.site_filter)
		  AND (report_learning_loop.type_filter IS NULL OR e.event_type = report_learning_loop.type_filter)
	)
	SELECT 'missing_analysis'::text, e.event_id, e.site_id, e.event_type, e.severity,
		   CASE WHEN e.severity = 'sev1' THEN 'sev1' ELSE 'recurring sev2' END
			|| CASE WHEN e.closed_at IS NULL THEN ', open' ELSE ', closed' END,
		   evmgmt.analysis_gaps(e.event_id), NULL::bigint, NULL::text, NULL::date, NULL::integer,
		   NULL::bigint, NULL::integer, NULL::text, NULL::double precision, NULL::double precision
	FROM e
	WHERE (e.severity = 'sev1' OR (e.severity = 'sev2' AND e.recurrence_of IS NOT NULL))
	  AND NOT evmgmt.analysis_complete(e.event_id)
	ORDER BY e.event_id;

	-- action items not done, overdue ones with their days overdue
	RETURN QUERY
	WITH e AS (
		SELECT e.event_id, e.site_id, e.queue_id, e.event_type,
			   (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc
				WHERE pc.event_id = e.event_id AND pc.state <> 'cancelled') AS severity,
			   e.recurrence_of, e.detected_at, e.closed_at
		FROM evmgmt.event e
		WHERE e.detected_at >= report_learning_loop.from_at AND e.detected_at < report_learning_loop.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_learning_loop.site_filter IS NULL OR e.site_id = report_learning_loop.site_filter)
		  AND (report_learning_loop.type_filter IS NULL OR e.event_type = report_learning_loop.type_filter)
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
		SELECT e.event_id, e.site_id, e.queue_id, e.event_type,
			   (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc
				WHERE pc.event_id = e.event_id AND pc.state <> 'cancelled') AS severity,
			   e.recurrence_of, e.detected_at, e.closed_at
		FROM evmgmt.event e
		WHERE e.detected_at >= report_learning_loop.from_at AND e.detected_at < report_learning_loop.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_learning_loop.site_filter IS NULL OR e.site_id = report_learning_loop.site_filter)
		  AND (report_learning_loop.type_filter IS NULL OR e.event_type = report_learning_loop.type_filter)
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
	-- done (service level, abandonment rate, AHT; events whose items are all done)
	RETURN QUERY
	WITH e AS (
		SELECT e.event_id, e.site_id, e.queue_id, e.event_type,
			   (SELECT pg_catalog.min(pc.severity) FROM evmgmt.pool_condition pc
				WHERE pc.event_id = e.event_id AND pc.state <> 'cancelled') AS severity,
			   e.recurrence_of, e.detected_at, e.closed_at
		FROM evmgmt.event e
		WHERE e.detected_at >= report_learning_loop.from_at AND e.detected_at < report_learning_loop.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_learning_loop.site_filter IS NULL OR e.site_id = report_learning_loop.site_filter)
		  AND (report_learning_loop.type_filter IS NULL OR e.event_type = report_learning_loop.type_filter)
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
			   pg_catalog.sum(s.aht_seconds * s.handled) / NULLIF(pg_catalog.sum(s.handled) FILTER (WHERE s.aht_seconds IS NOT NULL), 0) AS aht
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
	CROSS JOIN LATERAL (
		SELECT 'service_level'::text AS metric, b.sl AS before_value, a.sl AS after_value, 1 AS o
		FROM (SELECT * FROM m WHERE m.event_id = d.event_id AND NOT m.after) b
		FULL JOIN (SELECT * FROM m WHERE m.event_id = d.event_id AND m.after) a ON true
		UNION ALL
		SELECT 'abandon_rate', b.abandon_rate, a.abandon_rate, 2
		FROM (SELECT * FROM m WHERE m.event_id = d.event_id AND NOT m.after) b
		FULL JOIN (SELECT * FROM m WHERE m.event_id = d.event_id AND m.after) a ON true
		UNION ALL
		SELECT 'aht_seconds', b.aht, a.aht, 3
		FROM (SELECT * FROM m WHERE m.event_id = d.event_id AND NOT m.after) b
		FULL JOIN (SELECT * FROM m WHERE m.event_id = d.event_id AND m.after) a ON true
	) k
	ORDER BY d.event_id, k.o;
END
$$;
COMMENT ON FUNCTION evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type) IS 'Learning loop: missing_analysis rows (sev1 and recurring sev2 without a complete analysis, with its gaps), open_action_item and overdue_action_item rows, recurrence rows (chain root and length), process_health rows (service level, abandonment rate, AHT of the affected series 28 days before the analysis and 28 days after its last action item was done)';

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
		SELECT e.event_id, pc.pool, e.site_id, e.event_type, pc.severity, w.*
		FROM evmgmt.event e
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		CROSS JOIN LATERAL evmgmt.event_window_stats(e.event_id, pc.pool, report_impact.to_at) w
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

CREATE FUNCTION evmgmt.report_maturity(from_at timestamptz, to_at timestamptz, site_filter text DEFAULT NULL)
RETURNS TABLE (events bigint, detected_automatically bigint, share_automated double precision,
			   breaches bigint, breaches_predicted bigint, share_predicted double precision,
			   predicted_averted bigint, breaches_missed bigint,
			   share_averted double precision, share_missed double precision,
			   classified_share double precision, sev3_conditions bigint, sev3_handled_by_rules bigint,
			   share_sev3_by_rules double precision, maturity_level integer, reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	r record;
	v_level integer;
	v_reason text;
BEGIN
	PERFORM evmgmt.report_check_period(report_maturity.from_at, report_maturity.to_at);
	WITH ev AS (
		SELECT e.event_id, e.detection_source, e.opened_by, ds.automated,
			   pg_catalog.min(pc.severity) FILTER (WHERE pc.state <> 'cancelled') AS sev,
			   pg_catalog.bool_or(pc.severity IS NOT NULL) AS classified
		FROM evmgmt.event e
		JOIN evmgmt.detection_source ds ON ds.source = e.detection_source
		JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
		WHERE e.detected_at >= report_maturity.from_at AND e.detected_at < report_maturity.to_at
		  AND e.cancelled_at IS NULL
		  AND (report_maturity.site_filter IS NULL OR e.site_id = report_maturity.site_filter)
		GROUP BY e.event_id, e.detection_source, e.opened_by, ds.automated
	),
	-- a sev3 condition is handled by rules when the event was opened by rule
	-- detection and nobody but the role that opened it touched its timeline
	s3 AS (
		SELECT pc.event_id, pc.pool,
			   ev.detection_source = 'rule'
			   AND NOT EXISTS (SELECT FROM evmgmt.event_timeline t
							   WHERE t.event_id = pc.event_id AND t.actor <> ev.opened_by
								 AND (t.pool IS NULL OR t.pool = pc.pool)) AS by_rules
		FROM ev JOIN evmgmt.pool_condition pc ON pc.event_id = ev.event_id
		WHERE pc.severity = 'sev3' AND pc.state <> 'cancelled'
	)
	SELECT pg_catalog.count(*) AS events,
		   pg_catalog.count(*) FILTER (WHERE ev.automated) AS auto,
		   pg_catalog.count(*) FILTER (WHERE ev.sev <= 'sev3') AS breaches,
		   pg_catalog.count(*) FILTER (WHERE ev.sev <= 'sev3' AND ev.detection_source = 'predictive') AS predicted,
		   pg_catalog.count(*) FILTER (WHERE ev.detection_source = 'predictive' AND (ev.sev IS NULL OR ev.sev = 'sev4')) AS averted,
		   pg_catalog.count(*) FILTER (WHERE ev.sev <= 'sev3' AND ev.detection_source <> 'predictive') AS missed,
		   pg_catalog.count(*) FILTER (WHERE ev.detection_source = 'predictive') AS predictions,
		   pg_catalog.count(*) FILTER (WHERE ev.classified) AS classified,
		   (SELECT pg_catalog.count(*) FROM s3) AS s3n,
		   (SELECT pg_catalog.count(*) FROM s3 WHERE s3.by_rules) AS s3r
	INTO r
	FROM ev;

	events := r.events;
	detected_automatically := r.auto;
	share_automated := r.auto::double precision / NULLIF(r.events, 0);
	breaches := r.breaches;
	breaches_predicted := r.predicted;
	share_predicted := r.predicted::double precision / NULLIF(r.breaches, 0);
	predicted_averted := r.averted;
	breaches_missed := r.missed;
	share_averted := r.averted::double precision / NULLIF(r.predictions, 0);
	share_missed := r.missed::double precision / NULLIF(r.breaches, 0);
	classified_share := r.classified::double precision / NULLIF(r.events, 0);
	sev3_conditions := r.s3n;
	sev3_handled_by_rules := r.s3r;
	share_sev3_by_rules := r.s3r::double precision / NULLIF(r.s3n, 0);

	-- The seed's levels, read off the figures (thresholds in docs/reports.md).
	IF r.events = 0 THEN
		v_level := NULL;
		v_reason := 'no events in the period';
	ELSIF COALESCE(classified_share, 0) < 0.9 THEN
		v_level := 1;
		v_reason := pg_catalog.format('L1: only %s%% of events went through classification (L2 needs 90%%)',
									  pg_catalog.round((100 * classified_share)::numeric, 1));
	ELSIF COALESCE(share_automated, 0) < 0.5 OR COALESCE(share_sev3_by_rules, 0) < 0.5 THEN
		v_level := 2;
		v_reason := pg_catalog.format('L2: documented protocol followed; %s%% detected automatically and %s%% of sev3 handled by rules (L3 needs 50%% of each)',
									  pg_catalog.round((100 * COALESCE(share_automated, 0))::numeric, 1),
									  pg_catalog.round((100 * COALESCE(share_sev3_by_rules, 0))::numeric, 1));
	ELSIF COALESCE(share_predicted, 0) < 0.5 THEN
		v_level := 3;
		v_reason := pg_catalog.format('L3: rule-driven detection and response; %s%% of breaches predicted (L4 needs 50%%)',
									  pg_catalog.round((100 * COALESCE(share_predicted, 0))::numeric, 1));
	ELSIF COALESCE(share_sev3_by_rules, 0) < 0.9 OR COALESCE(share_predicted, 0) < 0.8 THEN
		v_level := 4;
		v_reason := pg_catalog.format('L4: %s%% of breaches predicted; %s%% of sev3 handled by rules (L5 needs 80%% predicted and 90%% of sev3 by rules)',
									  pg_catalog.round((100 * share_predicted)::numeric, 1),
									  pg_catalog.round((100 * share_sev3_by_rules)::numeric, 1));
	ELSE
		v_level := 5;
		v_reason := pg_catalog.format('L5: %s%% of breaches predicted and %s%% of sev3 handled by rules without ROC intervention',
									  pg_catalog.round((100 * share_predicted)::numeric, 1),
									  pg_catalog.round((100 * share_sev3_by_rules)::numeric, 1));
	END IF;
	maturity_level := v_level;
	reason := v_reason;
	RETURN NEXT;
END
$$;
COMMENT ON FUNCTION evmgmt.report_maturity(timestamptz, timestamptz, text) IS 'Maturity figures of the period: share of events detected automatically, of breaches (events with a sev1-sev3 condition) predicted, predictions averted (never above sev4), breaches missed by prediction, sev3 handled by rules without ROC intervention, and the maturity level (1-5) they support with the reason';

-- The post-event report as a page: evmgmt.event_report(event_id) returns one
-- self-contained HTML document (inline CSS and SVG, no scripts, no external
-- files) that an analyst can save and mail.  Every value taken from the
-- database goes through html_escape, so titles and notes cannot inject
-- markup.  Checked in headless Chromium by test/integration/event_report.sh.

-- Text as HTML element content or a double- or single-quoted attribute value.
CREATE FUNCTION evmgmt.html_escape(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
	value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;');
COMMENT ON FUNCTION evmgmt.html_escape(text) IS 'Escapes & < > " and '' for HTML content and attribute values';

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
	SELECT * INTO e FROM evmgmt.event x WHERE x.event_id = event_report.event_id;
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
			SELECT k.acked_at, esc.pool, 'acknowledged', NULL, c.name, k.note
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
COMMENT ON FUNCTION evmgmt.event_report(bigint) IS 'The post-event report of one event as a self-contained HTML document (inline SVG service-level chart per pool with thresholds and marks, escalation timeline with names but no addresses, Power of One at the worst interval, timeline, responses, analysis, action items, objective impacts); every database value HTML-escaped';

GRANT SELECT ON evmgmt.bi_open_events, evmgmt.bi_event_timeline, evmgmt.bi_notification_delivery,
	evmgmt.bi_interval_service_level TO evmgmt_reader, evmgmt_admin;
-- Views and reports (71_bi_views.sql, 72_reports.sql, 74_event_report.sql):
-- the BI views are granted to readers by the loop above; every report and the
-- HTML event report to readers (and so to responders and admins).  The
-- fatigue report and the event report are SECURITY DEFINER because they read
-- the outbox and the step history, which readers cannot: they return names,
-- never addresses.
REVOKE ALL ON FUNCTION
	evmgmt.report_check_period(timestamptz, timestamptz),
	evmgmt.event_window_stats(bigint, evmgmt.pool, timestamptz),
	evmgmt.report_target_compliance(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity),
	evmgmt.report_response_times(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity),
	evmgmt.report_severity_drift(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool),
	evmgmt.report_blind_spots(timestamptz, timestamptz, text, evmgmt.event_type),
	evmgmt.report_notification_fatigue(timestamptz, timestamptz, text, bigint),
	evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type),
	evmgmt.report_impact(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity, double precision, double precision),
	evmgmt.report_maturity(timestamptz, timestamptz, text),
	evmgmt.event_report_chart(bigint, evmgmt.pool),
	evmgmt.event_report(bigint)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	evmgmt.report_check_period(timestamptz, timestamptz),
	evmgmt.event_window_stats(bigint, evmgmt.pool, timestamptz),
	evmgmt.report_target_compliance(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity),
	evmgmt.report_response_times(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity),
	evmgmt.report_severity_drift(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool),
	evmgmt.report_blind_spots(timestamptz, timestamptz, text, evmgmt.event_type),
	evmgmt.report_notification_fatigue(timestamptz, timestamptz, text, bigint),
	evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type),
	evmgmt.report_impact(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity, double precision, double precision),
	evmgmt.report_maturity(timestamptz, timestamptz, text),
	evmgmt.event_report_chart(bigint, evmgmt.pool),
	evmgmt.event_report(bigint)
TO evmgmt_reader;

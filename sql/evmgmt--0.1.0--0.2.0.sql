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
--   62_acknowledgment.sql    escalation_ack, acknowledge_via, acknowledge
--   63_footprint.sql         status_schedule, footprint messages, status cadence
--   64_target_timers.sql     target_timer, its sync trigger on pool_condition, firing
--   65_action_tokens.sql     action_key, token signing and checking, ack codes, template fields
--   66_listener.sql          listener_refusal, listener_handle and the ack-link, Twilio, callback handlers
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
		PERFORM evmgmt.resolve_pool(e.event_id, e.pool, 'resolved by webhook callback ' || pg_catalog.left(v_id, 100));
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

-- The driver: everything that becomes due is fired by run_due_work(now),
-- which the background worker calls in a loop (and tests with an explicit now).

-- Fire everything that is due at now, in the caller's transaction, and say
-- when something is due next.
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

-- The same at the current time: what the worker calls and the form granted
-- to evmgmt_admin.
CREATE FUNCTION evmgmt.run_due_work() RETURNS timestamptz
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.run_due_work(pg_catalog.clock_timestamp());
COMMENT ON FUNCTION evmgmt.run_due_work() IS 'run_due_work at the current time (clock_timestamp()): what the worker calls; the form with a clock argument is for tests';

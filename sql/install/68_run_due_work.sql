-- The driver: everything that becomes due is fired by run_due_work(now),
-- which the background worker calls in a loop (and tests with an explicit now).
--
-- One bad item never stops the others: every due item (a target timer, a
-- status schedule, an escalation) is fired in its own subtransaction.  An item
-- that fails is rolled back alone, recorded in evmgmt.work_failure with its
-- error, logged (masked) and skipped; it is tried again after a backoff
-- (10 s, doubling, at most 15 min) and parked after 8 failures in a row,
-- while every other item proceeds on time.  A success, or the item ending
-- (the escalation acknowledged, the event resolved), clears its record; an
-- admin deleting the row un-parks it at once.
--
-- This file also holds the worker's other entry point (purging old delivery
-- history): with run_due_work(), what the role evmgmt_worker may execute.

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

-- The same at the current time: what the worker calls and the form granted
-- to evmgmt_admin.
CREATE FUNCTION evmgmt.run_due_work() RETURNS timestamptz
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
RETURN evmgmt.run_due_work(pg_catalog.clock_timestamp());
COMMENT ON FUNCTION evmgmt.run_due_work() IS 'run_due_work at the current time (clock_timestamp()): what the worker calls; the form with a clock argument is for tests';

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

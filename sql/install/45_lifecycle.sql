-- The event lifecycle: business time, target due times, the transition table
-- (in C, src/state_machine.c), the guard on event tables, the lifecycle
-- functions, the post-resolution analysis check and the SLA clocks.
-- Reference: docs/lifecycle.md.

-- sev4 is never signal-driven (no outage; a request, change or enhancement).
ALTER TABLE evmgmt.severity_policy ADD CONSTRAINT severity_policy_sev4_not_signal_driven
	CHECK (severity <> 'sev4' OR sl_threshold IS NULL);

-- Recurrence look-up (state_machine.c, LinkRecurrence): earlier events of a
-- site and type closed within the window, or still open.
CREATE INDEX event_recurrence_idx ON evmgmt.event (site_id, event_type, closed_at);

------------------------------------------------------------------------------
-- Business time
------------------------------------------------------------------------------

-- The working windows of one local day of a calendar, as absolute times: the
-- day's calendar_hours rows placed in the site's time zone (so a DST change
-- is honoured), none on a holiday.
CREATE FUNCTION evmgmt.business_windows(calendar_id text, time_zone text, day date)
RETURNS TABLE (window_start timestamptz, window_end timestamptz)
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	-- PL/pgSQL rather than SQL so that the plan is cached for the session:
	-- add_business_time calls this once per day it walks
	RETURN QUERY
	SELECT (business_windows.day + h.opens) AT TIME ZONE business_windows.time_zone,
		   (business_windows.day + h.closes) AT TIME ZONE business_windows.time_zone
	FROM evmgmt.calendar_hours h
	WHERE h.calendar_id = business_windows.calendar_id
	  AND h.isodow = pg_catalog.date_part('isodow', business_windows.day)
	  AND NOT EXISTS (SELECT FROM evmgmt.calendar_holiday d
					  WHERE d.calendar_id = business_windows.calendar_id AND d.day = business_windows.day)
	ORDER BY h.opens;
END
$$;
COMMENT ON FUNCTION evmgmt.business_windows(text, text, date) IS 'Working windows of a local day of a calendar in a time zone, as timestamptz (none on holidays)';

-- Add business time: the days part of amount counts business days, the rest
-- counts working time.  See docs/lifecycle.md, "Business time".
CREATE FUNCTION evmgmt.add_business_time(calendar_id text, time_zone text, start timestamptz, amount interval)
RETURNS timestamptz
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_months integer := pg_catalog.date_part('year', amount)::integer * 12 + pg_catalog.date_part('month', amount)::integer;
	v_days integer := pg_catalog.date_part('day', amount)::integer;
	v_secs numeric := pg_catalog.date_part('epoch', amount - pg_catalog.make_interval(months => v_months, days => v_days))::numeric;
	v_day date;
	v_cur timestamptz;
	v_pos numeric;
	v_left numeric;
	v_len numeric;
	v_n integer;
	v_guard integer := 0;		-- days walked since the last working time seen
	w record;
BEGIN
	IF v_months <> 0 THEN
		RAISE EXCEPTION 'business time cannot be counted in months or years'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The amount given was %s.', amount),
				  HINT = 'Give business days as days and working time as hours and minutes.';
	END IF;
	IF NOT pg_catalog.isfinite(start) THEN
		RAISE EXCEPTION 'business time cannot start at %', start
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF v_days > 1000 OR v_secs > 1000 * 86400 THEN
		RAISE EXCEPTION 'business time amount % is too large', amount
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'At most 1000 business days and 1000 days of working time can be added.';
	END IF;
	IF v_days < 0 OR v_secs < 0 THEN
		RAISE EXCEPTION 'business time must not be negative'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The amount given was %s.', amount);
	END IF;
	IF NOT EXISTS (SELECT FROM evmgmt.calendar c WHERE c.calendar_id = add_business_time.calendar_id) THEN
		RAISE EXCEPTION 'calendar "%" does not exist', calendar_id
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM evmgmt.calendar_hours h WHERE h.calendar_id = add_business_time.calendar_id) THEN
		RAISE EXCEPTION 'calendar "%" has no working hours', calendar_id
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Add its working windows to evmgmt.calendar_hours.';
	END IF;
	IF v_days = 0 AND v_secs = 0 THEN
		RETURN start;
	END IF;

	-- 1. the first working instant at or after start
	v_day := (start AT TIME ZONE time_zone)::date;
	LOOP
		SELECT pg_catalog.max(GREATEST(b.window_start, start)) INTO v_cur
		FROM (SELECT * FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b
			  WHERE b.window_end > start ORDER BY b.window_start LIMIT 1) b;
		EXIT WHEN v_cur IS NOT NULL;
		v_day := v_day + 1;
		v_guard := v_guard + 1;
		IF v_guard > 3660 THEN
			RAISE EXCEPTION 'calendar "%" has no working time within ten years of %', calendar_id, start
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;

	-- 2. business days: the same working-time position on the n-th next
	-- business day; a position of zero (at an opening) is the close of the
	-- business day before instead, which is the same business instant
	IF v_days > 0 THEN
		SELECT COALESCE(pg_catalog.sum(pg_catalog.date_part('epoch', LEAST(b.window_end, v_cur) - b.window_start)::numeric), 0)
		INTO v_pos
		FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b
		WHERE b.window_start < v_cur;
		v_n := CASE WHEN v_pos = 0 THEN v_days - 1 ELSE v_days END;
		WHILE v_n > 0 LOOP
			v_day := v_day + 1;
			IF EXISTS (SELECT FROM evmgmt.business_windows(calendar_id, time_zone, v_day)) THEN
				v_n := v_n - 1;
				v_guard := 0;
			END IF;
			v_guard := v_guard + 1;
			IF v_guard > 3660 THEN
				RAISE EXCEPTION 'calendar "%" has no working time within ten years of %', calendar_id, start
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END LOOP;
		v_cur := NULL;
		IF v_pos > 0 THEN
			v_left := v_pos;
			FOR w IN SELECT * FROM evmgmt.business_windows(calendar_id, time_zone, v_day) LOOP
				v_len := pg_catalog.date_part('epoch', w.window_end - w.window_start)::numeric;
				IF v_left <= v_len THEN
					v_cur := w.window_start + pg_catalog.make_interval(secs => v_left::double precision);
					EXIT;
				END IF;
				v_left := v_left - v_len;
			END LOOP;
		END IF;
		IF v_cur IS NULL THEN
			-- position zero, or a shorter day than the start day: its close
			SELECT pg_catalog.max(b.window_end) INTO v_cur
			FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b;
		END IF;
	END IF;

	-- 3. working time: consume the windows from v_cur on
	IF v_secs > 0 THEN
		v_left := v_secs;
		LOOP
			FOR w IN SELECT * FROM evmgmt.business_windows(calendar_id, time_zone, v_day) b
					 WHERE b.window_end > v_cur LOOP
				v_len := pg_catalog.date_part('epoch', w.window_end - GREATEST(w.window_start, v_cur))::numeric;
				IF v_left <= v_len THEN
					RETURN GREATEST(w.window_start, v_cur) + pg_catalog.make_interval(secs => v_left::double precision);
				END IF;
				v_left := v_left - v_len;
				v_guard := 0;
			END LOOP;
			v_day := v_day + 1;
			v_guard := v_guard + 1;
			IF v_guard > 3660 THEN
				RAISE EXCEPTION 'calendar "%" has no working time within ten years of %', calendar_id, start
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		END LOOP;
	END IF;
	RETURN v_cur;
END
$$;
COMMENT ON FUNCTION evmgmt.add_business_time(text, text, timestamptz, interval) IS 'start + amount in business time of a calendar in a time zone: days count business days (same working-time position), hours and minutes count working time';

-- A target due time: business time when the tier says so; otherwise days
-- are calendar days in the site's time zone and hours and minutes elapsed time.
CREATE FUNCTION evmgmt.add_target_time(calendar_id text, time_zone text, start timestamptz, amount interval, business_time boolean)
RETURNS timestamptz
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN business_time THEN evmgmt.add_business_time(calendar_id, time_zone, start, amount)
	WHEN pg_catalog.date_part('year', amount) = 0 AND pg_catalog.date_part('month', amount) = 0
		 AND pg_catalog.date_part('day', amount) = 0 THEN start + amount
	ELSE (((start AT TIME ZONE time_zone) + pg_catalog.justify_hours(pg_catalog.date_trunc('day', amount))) AT TIME ZONE time_zone)
		 + (amount - pg_catalog.date_trunc('day', amount))
END;
COMMENT ON FUNCTION evmgmt.add_target_time(text, text, timestamptz, interval, boolean) IS 'start + a policy target: business time when business_time, else calendar days in the time zone plus elapsed hours and minutes';

-- Response and resolution due times of a tier for an event at a site whose
-- clock starts at start, from the operation's effective severity policy.
CREATE FUNCTION evmgmt.target_due(site_id text, severity evmgmt.severity, start timestamptz,
								  OUT response_due timestamptz, OUT resolution_due timestamptz)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT evmgmt.add_target_time(s.calendar_id, s.time_zone, target_due.start, p.response_target, p.business_time),
		   evmgmt.add_target_time(s.calendar_id, s.time_zone, target_due.start, p.resolution_target, p.business_time)
	FROM evmgmt.site s
	JOIN evmgmt.effective_severity_policy p ON p.operation_id = s.operation_id AND p.severity = target_due.severity
	WHERE s.site_id = target_due.site_id;
END;
COMMENT ON FUNCTION evmgmt.target_due(text, evmgmt.severity, timestamptz) IS 'Response and resolution due times of a severity tier at a site for a clock started at start (effective policy, site calendar and time zone)';

------------------------------------------------------------------------------
-- The transition table and the guard
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.transition_table(OUT from_state text, OUT action text, OUT to_state text, OUT via text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'evmgmt_transition_table'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.transition_table() IS 'The legal transitions of a pool condition as compiled into the C state machine';

CREATE VIEW evmgmt.lifecycle_transitions AS
SELECT p.pool, t.from_state::evmgmt.event_state AS from_state, t.action,
	   t.to_state::evmgmt.event_state AS to_state, t.via
FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::evmgmt.pool)) AS p(pool)
CROSS JOIN evmgmt.transition_table() AS t;
COMMENT ON VIEW evmgmt.lifecycle_transitions IS 'Every legal move of a pool condition per pool: from state, action, to state and the function that performs it';

CREATE FUNCTION evmgmt.refuse_direct_change() RETURNS trigger
AS 'MODULE_PATHNAME', 'evmgmt_refuse_direct_change'
LANGUAGE C
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.refuse_direct_change() IS 'Trigger: refuses UPDATE, DELETE and TRUNCATE of event tables except by the lifecycle functions (superusers included); INSERTs pass so that pg_restore works';

DO $guard$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['event', 'pool_condition', 'event_timeline', 'response_action',
							 'post_resolution_analysis', 'action_item', 'objective_impact']
	LOOP
		EXECUTE pg_catalog.format('CREATE TRIGGER refuse_direct_change BEFORE UPDATE OR DELETE ON evmgmt.%I FOR EACH ROW EXECUTE FUNCTION evmgmt.refuse_direct_change()', t);
		EXECUTE pg_catalog.format('CREATE TRIGGER refuse_direct_truncate BEFORE TRUNCATE ON evmgmt.%I FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.refuse_direct_change()', t);
	END LOOP;
END
$guard$;

------------------------------------------------------------------------------
-- Post-resolution analysis
------------------------------------------------------------------------------

-- What a complete analysis still lacks: the analysis itself (root cause and
-- action plan), at least one action item, an impact row per objective.
CREATE FUNCTION evmgmt.analysis_gaps(event_id bigint) RETURNS text[]
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT COALESCE(pg_catalog.array_agg(g.gap ORDER BY g.k), '{}')
	FROM (
		SELECT 0 AS k, 'root cause and action plan' AS gap
		WHERE NOT EXISTS (SELECT FROM evmgmt.post_resolution_analysis a WHERE a.event_id = analysis_gaps.event_id)
		UNION ALL
		SELECT 1, 'at least one action item'
		WHERE NOT EXISTS (SELECT FROM evmgmt.action_item i WHERE i.event_id = analysis_gaps.event_id)
		UNION ALL
		SELECT 1 + u.n, 'impact on ' || u.o::text
		FROM pg_catalog.unnest(pg_catalog.enum_range(NULL::evmgmt.objective)) WITH ORDINALITY AS u(o, n)
		WHERE NOT EXISTS (SELECT FROM evmgmt.objective_impact i
						  WHERE i.event_id = analysis_gaps.event_id AND i.objective = u.o)
	) g;
END;
COMMENT ON FUNCTION evmgmt.analysis_gaps(bigint) IS 'What the post-resolution analysis of an event lacks to be complete (root cause and action plan, an action item, an impact per objective); empty when complete';

CREATE FUNCTION evmgmt.analysis_complete(event_id bigint) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.cardinality(evmgmt.analysis_gaps(event_id)) = 0;
COMMENT ON FUNCTION evmgmt.analysis_complete(bigint) IS 'True when the event has a complete post-resolution analysis (required to close a sev1 or a recurring sev2)';

------------------------------------------------------------------------------
-- Lifecycle functions (C, SECURITY DEFINER; each writes event_timeline)
------------------------------------------------------------------------------

CREATE FUNCTION evmgmt.open_event(event_type evmgmt.event_type, site_id text, pools evmgmt.pool[],
								  detection_source text, title text, detected_at timestamptz DEFAULT NULL,
								  queue_id text DEFAULT NULL, subtype text DEFAULT NULL, description text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_open_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.open_event(evmgmt.event_type, text, evmgmt.pool[], text, text, timestamptz, text, text, text) IS 'Opens an event with one detected condition per pool; returns its event_id';

CREATE FUNCTION evmgmt.add_pool(event_id bigint, pool evmgmt.pool, note text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_add_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.add_pool(bigint, evmgmt.pool, text) IS 'Adds a detected condition for one more pool to an open event';

CREATE FUNCTION evmgmt.classify_pool(event_id bigint, pool evmgmt.pool, severity evmgmt.severity)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_classify_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.classify_pool(bigint, evmgmt.pool, evmgmt.severity) IS 'Classifies one pool condition (detected -> classified) and sets its response and resolution due times';

CREATE FUNCTION evmgmt.reclassify_pool(event_id bigint, pool evmgmt.pool, severity evmgmt.severity, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_reclassify_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reclassify_pool(bigint, evmgmt.pool, evmgmt.severity, text) IS 'Changes the severity of one pool condition with a reason (audited for severity drift); due times recomputed; other pools untouched';

CREATE FUNCTION evmgmt.diagnose_pool(event_id bigint, pool evmgmt.pool, cause_category text, lever_class text,
									 proximate_cause text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_diagnose_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.diagnose_pool(bigint, evmgmt.pool, text, text, text) IS 'Records the diagnosis of one pool condition (fishbone cause category, lever class, proximate cause) and links a recurrence';

CREATE FUNCTION evmgmt.log_response(event_id bigint, pool evmgmt.pool, lever text, note text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_log_response'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.log_response(bigint, evmgmt.pool, text, text) IS 'Logs a response lever (allowed for the pool and event type) for one pool condition; returns the response_action id';

CREATE FUNCTION evmgmt.resolve_pool(event_id bigint, pool evmgmt.pool, note text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_resolve_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.resolve_pool(bigint, evmgmt.pool, text) IS 'Resolves one responding pool condition';

CREATE FUNCTION evmgmt.resolve_event(event_id bigint, note text DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_resolve_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.resolve_event(bigint, text) IS 'Resolves every unresolved pool condition of an event at once (each must be responding); returns the roll-up state';

CREATE FUNCTION evmgmt.cancel_pool(event_id bigint, pool evmgmt.pool, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_cancel_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.cancel_pool(bigint, evmgmt.pool, text) IS 'Cancels one pool condition as a false positive (before any response)';

CREATE FUNCTION evmgmt.cancel_event(event_id bigint, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_cancel_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.cancel_event(bigint, text) IS 'Cancels a whole event as a false positive (no pool may have had a response)';

CREATE FUNCTION evmgmt.reopen_pool(event_id bigint, pool evmgmt.pool, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_reopen_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reopen_pool(bigint, evmgmt.pool, text) IS 'Reopens a resolved pool condition of an open event (back to diagnosed) within evmgmt.recurrence_window';

CREATE FUNCTION evmgmt.reopen_event(event_id bigint, reason text, pools evmgmt.pool[] DEFAULT NULL)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_reopen_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reopen_event(bigint, text, evmgmt.pool[]) IS 'Reopens a closed event within evmgmt.recurrence_window; the given resolved pools (all when NULL) go back to diagnosed';

CREATE FUNCTION evmgmt.record_analysis(event_id bigint, root_cause text, action_plan text,
									   contributing_factors text[] DEFAULT '{}', detector_gap text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_record_analysis'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.record_analysis(bigint, text, text, text[], text) IS 'Records or replaces the post-resolution analysis of an event (root cause, action plan, contributing factors, detector gap)';

CREATE FUNCTION evmgmt.add_action_item(event_id bigint, description text, owner text, due_date date)
RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_add_action_item'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.add_action_item(bigint, text, text, date) IS 'Adds an action item (owner, due date) to the post-resolution analysis; returns its item_id';

CREATE FUNCTION evmgmt.complete_action_item(item_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_complete_action_item'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.complete_action_item(bigint) IS 'Marks an action item done';

CREATE FUNCTION evmgmt.record_objective_impact(event_id bigint, objective evmgmt.objective, direction text,
											   magnitude double precision DEFAULT NULL, unit text DEFAULT NULL,
											   note text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_record_objective_impact'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.record_objective_impact(bigint, evmgmt.objective, text, double precision, text, text) IS 'Records or replaces the impact of an event on one objective (improved, neutral, degraded)';

CREATE FUNCTION evmgmt.close_event(event_id bigint)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_close_event'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.close_event(bigint) IS 'Closes an event whose pools are all resolved or cancelled; a sev1 or a recurring sev2 needs a complete post-resolution analysis';

DO $grants$
DECLARE
	f text;
BEGIN
	FOREACH f IN ARRAY ARRAY[
		'evmgmt.open_event(evmgmt.event_type, text, evmgmt.pool[], text, text, timestamptz, text, text, text)',
		'evmgmt.add_pool(bigint, evmgmt.pool, text)',
		'evmgmt.classify_pool(bigint, evmgmt.pool, evmgmt.severity)',
		'evmgmt.reclassify_pool(bigint, evmgmt.pool, evmgmt.severity, text)',
		'evmgmt.diagnose_pool(bigint, evmgmt.pool, text, text, text)',
		'evmgmt.log_response(bigint, evmgmt.pool, text, text)',
		'evmgmt.resolve_pool(bigint, evmgmt.pool, text)',
		'evmgmt.resolve_event(bigint, text)',
		'evmgmt.cancel_pool(bigint, evmgmt.pool, text)',
		'evmgmt.cancel_event(bigint, text)',
		'evmgmt.reopen_pool(bigint, evmgmt.pool, text)',
		'evmgmt.reopen_event(bigint, text, evmgmt.pool[])',
		'evmgmt.record_analysis(bigint, text, text, text[], text)',
		'evmgmt.add_action_item(bigint, text, text, date)',
		'evmgmt.complete_action_item(bigint)',
		'evmgmt.record_objective_impact(bigint, evmgmt.objective, text, double precision, text, text)',
		'evmgmt.close_event(bigint)']
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO evmgmt_responder, evmgmt_admin', f);
	END LOOP;
END
$grants$;
REVOKE ALL ON FUNCTION evmgmt.refuse_direct_change() FROM PUBLIC;

------------------------------------------------------------------------------
-- Clocks
------------------------------------------------------------------------------

-- Response and resolution clocks of every live pool condition of every open
-- event, as seen at "at".  Response is met by the first logged lever.
CREATE FUNCTION evmgmt.event_clocks(at timestamptz)
RETURNS TABLE (event_id bigint, pool evmgmt.pool, severity evmgmt.severity, state evmgmt.event_state,
			   site_id text, clock_start timestamptz,
			   response_due timestamptz, first_response_at timestamptz, response_time_left interval,
			   response_overdue_by interval, response_breached boolean,
			   resolution_due timestamptz, resolved_at timestamptz, resolution_time_left interval,
			   resolution_overdue_by interval, resolution_breached boolean)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT e.event_id, pc.pool, pc.severity, pc.state, e.site_id, e.detected_at,
		   pc.response_due, pc.first_response_at,
		   CASE WHEN pc.first_response_at IS NULL AND event_clocks.at < pc.response_due
				THEN pc.response_due - event_clocks.at END,
		   CASE WHEN COALESCE(pc.first_response_at, event_clocks.at) > pc.response_due
				THEN COALESCE(pc.first_response_at, event_clocks.at) - pc.response_due END,
		   COALESCE(pc.first_response_at, event_clocks.at) > pc.response_due,
		   pc.resolution_due, pc.resolved_at,
		   CASE WHEN pc.resolved_at IS NULL AND event_clocks.at < pc.resolution_due
				THEN pc.resolution_due - event_clocks.at END,
		   CASE WHEN COALESCE(pc.resolved_at, event_clocks.at) > pc.resolution_due
				THEN COALESCE(pc.resolved_at, event_clocks.at) - pc.resolution_due END,
		   COALESCE(pc.resolved_at, event_clocks.at) > pc.resolution_due
	FROM evmgmt.event e
	JOIN evmgmt.pool_condition pc ON pc.event_id = e.event_id
	WHERE e.closed_at IS NULL AND e.cancelled_at IS NULL AND pc.state <> 'cancelled'
	ORDER BY e.event_id, pc.pool;
END;
COMMENT ON FUNCTION evmgmt.event_clocks(timestamptz) IS 'Response and resolution clocks of every live pool condition of open events as seen at a given time: due, time left, overdue by, breached';

CREATE VIEW evmgmt.open_event_clocks AS
SELECT * FROM evmgmt.event_clocks(pg_catalog.now());
COMMENT ON VIEW evmgmt.open_event_clocks IS 'Response and resolution clocks of every live pool condition of open events, now: due, time left, overdue by, breached';

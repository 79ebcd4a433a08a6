-- Business time and target due times: working windows of a site calendar in
-- the site's time zone, adding business time, the response and resolution
-- due times of a tier.  Used by the lifecycle (targets) and by escalation
-- time windows.  Reference: docs/lifecycle.md, "Business time".

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

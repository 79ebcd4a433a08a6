-- Time conditions of escalation steps: allowed weekdays and working hours in
-- the site's (or the recipient's) time zone with the site's business calendar.

-- Is a moment inside the allowed window of a step: on one of the allowed ISO
-- weekdays and, with working_hours, inside a working window of the calendar
-- on a day that is no holiday, all in local time of the given zone.
CREATE FUNCTION evmgmt.in_time_window(at timestamptz, time_zone text, calendar_id text,
									  days_of_week smallint[], working_hours boolean) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t timestamp := at AT TIME ZONE time_zone;
	dow smallint := pg_catalog.date_part('isodow', t)::smallint;
BEGIN
	IF days_of_week IS NOT NULL AND NOT dow = ANY (days_of_week) THEN
		RETURN false;
	END IF;
	IF NOT working_hours THEN
		RETURN true;
	END IF;
	RETURN EXISTS (SELECT FROM evmgmt.calendar_hours h
				   WHERE h.calendar_id = in_time_window.calendar_id AND h.isodow = dow
					 AND h.opens <= t::time AND t::time < h.closes)
		   AND NOT EXISTS (SELECT FROM evmgmt.calendar_holiday d
						   WHERE d.calendar_id = in_time_window.calendar_id AND d.day = t::date);
END
$$;
COMMENT ON FUNCTION evmgmt.in_time_window(timestamptz, text, text, smallint[], boolean) IS 'True when the moment falls on an allowed ISO weekday and, if working_hours, inside a working window of the calendar (no holiday), in local time of the zone';

-- The next moment at or after a given one that is inside the allowed window
-- (NULL when there is none within 400 days).  Local opening times are turned
-- into instants with the zone's rules of that day, so DST changes are right.
CREATE FUNCTION evmgmt.next_time_window(at timestamptz, time_zone text, calendar_id text,
										days_of_week smallint[], working_hours boolean) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d date := (at AT TIME ZONE time_zone)::date;
	i integer;
	v_day date;
	w record;
	s timestamptz;
BEGIN
	IF evmgmt.in_time_window(at, time_zone, calendar_id, days_of_week, working_hours) THEN
		RETURN at;
	END IF;
	FOR i IN 0 .. 400 LOOP
		v_day := d + i;
		CONTINUE WHEN days_of_week IS NOT NULL AND NOT pg_catalog.date_part('isodow', v_day)::smallint = ANY (days_of_week);
		IF NOT working_hours THEN
			s := v_day::timestamp AT TIME ZONE time_zone;
			IF s > at THEN
				RETURN s;
			END IF;
			CONTINUE;
		END IF;
		CONTINUE WHEN EXISTS (SELECT FROM evmgmt.calendar_holiday h WHERE h.calendar_id = next_time_window.calendar_id AND h.day = v_day);
		FOR w IN SELECT h.opens, h.closes FROM evmgmt.calendar_hours h
				 WHERE h.calendar_id = next_time_window.calendar_id AND h.isodow = pg_catalog.date_part('isodow', v_day)
				 ORDER BY h.opens
		LOOP
			s := (v_day + w.opens) AT TIME ZONE time_zone;
			IF s > at THEN
				RETURN s;
			END IF;
		END LOOP;
	END LOOP;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.next_time_window(timestamptz, text, text, smallint[], boolean) IS 'The first moment at or after the given one inside the allowed weekdays / working windows (local time of the zone, DST-correct); NULL when none within 400 days';

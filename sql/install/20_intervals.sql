-- Interval statistics loaded by WFM ETL jobs, and the quarantine path.
--
-- interval_stat is built for COPY at volume (20,000 seats, 15-minute intervals,
-- a year kept is on the order of 10^8 rows): fixed-width columns, one primary
-- key led by time (loads append at the right edge), codes in the "C"
-- collation, CHECK constraints instead of triggers.  A bad row makes the whole COPY fail with
-- the named constraint.  ETL jobs that prefer to keep going load into
-- interval_inbox instead: good rows reach interval_stat, bad rows land in
-- interval_quarantine with the reason, nothing is lost.

CREATE TABLE evmgmt.interval_stat (
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site,
	queue_id		text COLLATE "C" NOT NULL REFERENCES evmgmt.queue,
	pool			evmgmt.pool NOT NULL,
	interval_start	timestamptz NOT NULL,
	interval_minutes smallint NOT NULL
		CONSTRAINT interval_stat_length_divides_hour CHECK (interval_minutes > 0 AND 60 % interval_minutes = 0),
	offered			integer NOT NULL CONSTRAINT interval_stat_offered_not_negative CHECK (offered >= 0),
	handled			integer NOT NULL CONSTRAINT interval_stat_handled_not_negative CHECK (handled >= 0),
	abandoned		integer NOT NULL DEFAULT 0 CONSTRAINT interval_stat_abandoned_not_negative CHECK (abandoned >= 0),
	answered_in_threshold integer NOT NULL CONSTRAINT interval_stat_answered_not_negative CHECK (answered_in_threshold >= 0),
	threshold_seconds integer NOT NULL CONSTRAINT interval_stat_threshold_positive CHECK (threshold_seconds > 0),
	aht_seconds		real CONSTRAINT interval_stat_aht_positive CHECK (aht_seconds > 0 AND aht_seconds < 'Infinity'),
	staffed			real CONSTRAINT interval_stat_staffed_not_negative CHECK (staffed >= 0 AND staffed < 'Infinity'),
	scheduled		real CONSTRAINT interval_stat_scheduled_not_negative CHECK (scheduled >= 0 AND scheduled < 'Infinity'),
	forecast_offered real CONSTRAINT interval_stat_forecast_offered_not_negative CHECK (forecast_offered >= 0 AND forecast_offered < 'Infinity'),
	forecast_aht	real CONSTRAINT interval_stat_forecast_aht_positive CHECK (forecast_aht > 0 AND forecast_aht < 'Infinity'),
	-- The relational checks hold vacuously when a count is already wrong on its
	-- own, so that a bad row is reported by the most specific constraint.
	CONSTRAINT interval_stat_handled_not_more_than_offered CHECK (offered < 0 OR handled < 0 OR handled <= offered),
	CONSTRAINT interval_stat_abandoned_not_more_than_offered CHECK (
		offered < 0 OR handled < 0 OR abandoned < 0 OR handled > offered OR abandoned <= offered - handled),
	CONSTRAINT interval_stat_answered_not_more_than_handled CHECK (
		handled < 0 OR answered_in_threshold < 0 OR handled > offered OR answered_in_threshold <= handled),
	-- on a whole minute, aligned to the interval length (at most 15 minutes, so
	-- that sites in zones offset by 30 or 45 minutes keep their local boundaries)
	-- (the epoch of an aligned start divided by the alignment is a whole number,
	-- exactly representable in float8; float arithmetic is much cheaper per row
	-- than numeric)
	CONSTRAINT interval_stat_start_aligned CHECK (
		pg_catalog.date_part('epoch', interval_start) / (60 * pg_catalog.gcd(interval_minutes::integer, 15)) =
		pg_catalog.trunc(pg_catalog.date_part('epoch', interval_start) / (60 * pg_catalog.gcd(interval_minutes::integer, 15)))),
	-- Time leads the key: ETL loads arrive in time order and then append to the
	-- right edge of the index; the recent-window reads of classification are
	-- range scans on it.
	PRIMARY KEY (interval_start, site_id, queue_id, pool)
);
COMMENT ON TABLE evmgmt.interval_stat IS 'Interval statistics per site, queue and pool loaded by WFM ETL (COPY); each bad row is refused with a named constraint';
COMMENT ON COLUMN evmgmt.interval_stat.interval_minutes IS 'Interval length in minutes; must divide the hour (5, 10, 15, 20, 30, 60, ...)';
COMMENT ON COLUMN evmgmt.interval_stat.answered_in_threshold IS 'Contacts answered within threshold_seconds: service level = answered_in_threshold / offered';
COMMENT ON COLUMN evmgmt.interval_stat.staffed IS 'Agents staffed (logged in, average over the interval)';
COMMENT ON COLUMN evmgmt.interval_stat.scheduled IS 'Agents scheduled for the interval';

-- The forgiving entry point: every column is text so that even a value that
-- does not parse is kept.  Rows are never stored here: the trigger moves each
-- one into interval_stat or, with the error, into interval_quarantine.
CREATE TABLE evmgmt.interval_inbox (
	site_id text, queue_id text, pool text, interval_start text, interval_minutes text,
	offered text, handled text, abandoned text, answered_in_threshold text, threshold_seconds text,
	aht_seconds text, staffed text, scheduled text, forecast_offered text, forecast_aht text
);
COMMENT ON TABLE evmgmt.interval_inbox IS 'COPY target that never fails on a bad row: good rows go to interval_stat, bad rows to interval_quarantine with the reason (always empty itself)';

CREATE TABLE evmgmt.interval_quarantine (
	quarantine_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	received_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	received_by		text NOT NULL DEFAULT SESSION_USER,
	row_data		jsonb NOT NULL,
	sqlstate		text NOT NULL,
	reason			text NOT NULL,
	detail			text,
	constraint_name	text
);
CREATE INDEX ON evmgmt.interval_quarantine (received_at);
COMMENT ON TABLE evmgmt.interval_quarantine IS 'Interval rows refused by interval_inbox, kept with the error, so that no loaded row is silently lost';

-- Move one inbox row into interval_stat, or into quarantine with the error.
CREATE FUNCTION evmgmt.interval_inbox_route() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_state text;
	v_msg text;
	v_detail text;
	v_constraint text;
BEGIN
	BEGIN
		INSERT INTO evmgmt.interval_stat
			(site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, abandoned,
			 answered_in_threshold, threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
		VALUES (NEW.site_id, NEW.queue_id, NEW.pool::evmgmt.pool, NEW.interval_start::timestamptz,
				NEW.interval_minutes::smallint, NEW.offered::integer, NEW.handled::integer,
				COALESCE(NEW.abandoned, '0')::integer, NEW.answered_in_threshold::integer,
				NEW.threshold_seconds::integer, NEW.aht_seconds::real, NEW.staffed::real, NEW.scheduled::real,
				NEW.forecast_offered::real, NEW.forecast_aht::real);
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
								v_detail = PG_EXCEPTION_DETAIL, v_constraint = CONSTRAINT_NAME;
		INSERT INTO evmgmt.interval_quarantine (row_data, sqlstate, reason, detail, constraint_name)
		VALUES (pg_catalog.to_jsonb(NEW), v_state, v_msg, NULLIF(v_detail, ''), NULLIF(v_constraint, ''));
	END;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_inbox_route() IS 'Trigger: routes an interval_inbox row to interval_stat or, with its error, to interval_quarantine';
CREATE TRIGGER interval_inbox_route BEFORE INSERT ON evmgmt.interval_inbox
	FOR EACH ROW EXECUTE FUNCTION evmgmt.interval_inbox_route();

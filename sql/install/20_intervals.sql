-- Interval statistics loaded by WFM ETL jobs, and the quarantine path.
--
-- interval_stat is built for COPY at volume (20,000 seats, 15-minute intervals,
-- a year kept is on the order of 10^8 rows): partitioned by month of
-- interval_start (a default partition takes what no month partition holds, so
-- a load never fails for lack of one), fixed-width columns, one primary key
-- led by time (loads append at the right edge), codes in the "C" collation,
-- CHECK constraints that cost one comparison each.  What a per-row trigger or
-- a foreign-key probe would cost is done once per statement instead, by the
-- AFTER INSERT statement trigger over the statement's rows
-- (interval_stat_loaded): site and queue codes are checked with one anti-join
-- and refused with the foreign-key wording and constraint names of 0.1.0;
-- re-delivered intervals replace the earlier rows; the per-series high-water
-- mark (interval_series) is kept; detection runs on the series touched.
--
-- A bad row makes the whole COPY fail with the named constraint.  ETL jobs
-- that prefer to keep going load into interval_inbox instead: good rows reach
-- interval_stat, bad rows land in interval_quarantine with the reason, nothing
-- is lost, and no subtransaction is spent per row.

-- Whether an interval start lies on a boundary of gcd(minutes, 15) minutes
-- (C: one integer remainder on the timestamp, src/detect.c).
CREATE FUNCTION evmgmt.interval_start_aligned(interval_start timestamptz, interval_minutes smallint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_interval_start_aligned'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.interval_start_aligned(timestamptz, smallint) IS 'True when the start is on a whole minute aligned to the interval length, at most to 15 minutes (sites offset by 30 or 45 minutes keep their local boundaries); NULL for a length that is not positive';

-- Text parsers of the forgiving path: NULL instead of an error (src/detect.c).
CREATE FUNCTION evmgmt.try_integer(value text) RETURNS bigint
AS 'MODULE_PATHNAME', 'evmgmt_try_integer'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.try_integer(text) IS 'The decimal integer the text holds (clamped to the bigint range), NULL when it is none; never raises';
CREATE FUNCTION evmgmt.try_real(value text) RETURNS double precision
AS 'MODULE_PATHNAME', 'evmgmt_try_real'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.try_real(text) IS 'The number the text holds as float8in reads it, NULL when it does not parse; never raises';
CREATE FUNCTION evmgmt.try_timestamptz(value text) RETURNS timestamptz
AS 'MODULE_PATHNAME', 'evmgmt_try_timestamptz'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.try_timestamptz(text) IS 'The timestamp the text holds as timestamptz_in reads it (session DateStyle and TimeZone), NULL when it does not parse or is out of range; never raises';

-- The rules of a row, in one CHECK constraint (C, src/detect.c): PostgreSQL
-- evaluates each CHECK constraint as an expression of its own, and 21 of
-- them cost a fifth of a plain COPY.  Each rule keeps its name of 0.1.0: a
-- row that breaks one is refused with SQLSTATE 23514 and that name as the
-- constraint, in the order PostgreSQL would evaluate them (by name):
--   interval_stat_abandoned_not_more_than_offered   handled + abandoned <= offered
--   interval_stat_abandoned_not_negative            abandoned >= 0
--   interval_stat_aht_positive                      0 < aht_seconds <= 86400
--   interval_stat_answered_not_more_than_handled    answered_in_threshold <= handled
--   interval_stat_answered_not_negative             answered_in_threshold >= 0
--   interval_stat_escalated_not_more_than_handled   escalated <= handled
--   interval_stat_escalated_not_negative            escalated >= 0
--   interval_stat_forecast_aht_positive             0 < forecast_aht <= 86400
--   interval_stat_forecast_offered_not_negative     0 <= forecast_offered <= 100,000,000
--   interval_stat_handled_not_more_than_offered     handled <= offered
--   interval_stat_handled_not_negative              handled >= 0
--   interval_stat_length_divides_hour               interval_minutes > 0 and divides 60
--   interval_stat_offered_not_negative              offered >= 0
--   interval_stat_repeat_contacts_not_more_than_offered  repeat_contacts <= offered
--   interval_stat_repeat_contacts_not_negative      repeat_contacts >= 0
--   interval_stat_scheduled_not_negative            0 <= scheduled <= 1,000,000
--   interval_stat_staffed_not_negative              0 <= staffed <= 1,000,000
--   interval_stat_start_aligned                     interval_start_aligned(interval_start, interval_minutes)
--   interval_stat_start_plausible                   2000-01-01 <= interval_start < 2200-01-01 UTC
--   interval_stat_threshold_positive                0 < threshold_seconds <= 86400
--   interval_stat_transferred_not_more_than_handled transferred <= handled
--   interval_stat_transferred_not_negative          transferred >= 0
-- A relation between two counts holds while a count is wrong on its own (the
-- more specific rule reports the row); an absent optional value breaks
-- nothing.  A row that keeps every rule is noted for the statement trigger
-- (src/load_capture.c).
CREATE FUNCTION evmgmt.interval_stat_rules(site_id text, queue_id text, pool evmgmt.pool, interval_start timestamptz,
										   interval_minutes smallint, offered integer, handled integer,
										   abandoned integer, answered_in_threshold integer,
										   threshold_seconds integer, aht_seconds real, staffed real, scheduled real,
										   forecast_offered real, forecast_aht real, transferred integer,
										   escalated integer, repeat_contacts integer)
RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_rules'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION evmgmt.interval_stat_rules(text, text, evmgmt.pool, timestamptz, smallint, integer, integer, integer, integer, integer, real, real, real, real, real, integer, integer, integer) IS 'The rules of an interval_stat row (CHECK interval_stat_rules): raises 23514 naming the rule a row breaks (the constraint names of 0.1.0), else notes the row for its load''s statement trigger and returns true';

CREATE TABLE evmgmt.interval_stat (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	interval_start	timestamptz NOT NULL,
	interval_minutes smallint NOT NULL,
	offered			integer NOT NULL,
	handled			integer NOT NULL,
	abandoned		integer NOT NULL DEFAULT 0,
	answered_in_threshold integer NOT NULL,
	threshold_seconds integer NOT NULL,
	aht_seconds		real,
	staffed			real,
	scheduled		real,
	forecast_offered real,
	forecast_aht	real,
	-- process-health counts (optional): contacts transferred, escalated to a
	-- supervisor or tier 2, and contacts from customers who had contacted before
	transferred		integer,
	escalated		integer,
	repeat_contacts	integer,
	-- every rule of the row, each by its own name (above); every value that
	-- enters is bounded: a start in 4714 BC from one row must not make
	-- partitions or classification reach across the calendar
	CONSTRAINT interval_stat_rules CHECK (evmgmt.interval_stat_rules(site_id, queue_id, pool, interval_start,
			interval_minutes, offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds,
			staffed, scheduled, forecast_offered, forecast_aht, transferred, escalated, repeat_contacts))
	-- The key, (interval_start, site_id, queue_id, pool), is declared on each
	-- partition (interval_stat_default_pkey below, the month partitions'
	-- by create_interval_partitions), not on this table: a key of an
	-- extension-owned partitioned table would make pg_restore create the key
	-- of every run-time partition twice.  The partitions split on
	-- interval_start, so the per-partition keys are one key.  Time leads it:
	-- ETL loads arrive in time order and append to the right edge of the
	-- index; the recent-window reads of classification are range scans on it.
	-- Deferred, so that a re-delivered interval can land next to the row it
	-- replaces until the statement trigger removes that row (no probe per
	-- row, no subtransaction); the same interval twice in one statement of a
	-- new series is refused at commit.
) PARTITION BY RANGE (interval_start);
COMMENT ON TABLE evmgmt.interval_stat IS 'Interval statistics per site, queue and pool loaded by WFM ETL (COPY), partitioned by month; each bad row is refused with a named constraint; a re-delivered interval replaces the earlier row';
COMMENT ON COLUMN evmgmt.interval_stat.interval_minutes IS 'Interval length in minutes; must divide the hour (5, 10, 15, 20, 30, 60, ...)';
COMMENT ON COLUMN evmgmt.interval_stat.answered_in_threshold IS 'Contacts answered within threshold_seconds: service level = answered_in_threshold / offered';
COMMENT ON COLUMN evmgmt.interval_stat.staffed IS 'Agents staffed (logged in, average over the interval)';
COMMENT ON COLUMN evmgmt.interval_stat.scheduled IS 'Agents scheduled for the interval';
COMMENT ON COLUMN evmgmt.interval_stat.transferred IS 'Contacts transferred to another queue or team (optional process-health count)';
COMMENT ON COLUMN evmgmt.interval_stat.escalated IS 'Contacts escalated to a supervisor or tier 2 (optional process-health count)';
COMMENT ON COLUMN evmgmt.interval_stat.repeat_contacts IS 'Contacts from customers who had contacted before within the operation''s repeat window (optional process-health count)';

-- Rows outside every month partition; create_interval_partitions moves them
-- into the month partitions it creates.
CREATE TABLE evmgmt.interval_stat_default PARTITION OF evmgmt.interval_stat (
	CONSTRAINT interval_stat_default_pkey PRIMARY KEY (interval_start, site_id, queue_id, pool) DEFERRABLE INITIALLY DEFERRED
) DEFAULT;
COMMENT ON TABLE evmgmt.interval_stat_default IS 'Default partition of interval_stat: rows of months that have no partition yet (create_interval_partitions moves them out)';

-- Per series: what has been loaded so far.  The high-water mark lets the
-- statement trigger skip the re-delivery check for rows beyond it (the usual
-- live load), and feed health reads the last arrival per site from it.
CREATE TABLE evmgmt.interval_series (
	site_id			text COLLATE "C" NOT NULL,
	queue_id		text COLLATE "C" NOT NULL,
	pool			evmgmt.pool NOT NULL,
	first_interval_start timestamptz NOT NULL,
	last_interval_start timestamptz NOT NULL,
	last_loaded_at	timestamptz NOT NULL,
	PRIMARY KEY (site_id, queue_id, pool),
	CONSTRAINT interval_series_first_not_after_last CHECK (first_interval_start <= last_interval_start)
);
COMMENT ON TABLE evmgmt.interval_series IS 'Every (site, queue, pool) interval series: first and last interval start loaded and when the last load committed work on it (kept by the interval_stat statement trigger)';

-- Statement-level work of every load into interval_stat: the set-based
-- replacement of foreign-key probes and per-row triggers.
CREATE TYPE evmgmt.interval_touch AS (
	site_id			text COLLATE "C",
	queue_id		text COLLATE "C",
	pool			evmgmt.pool,
	first_start		timestamptz,
	last_start		timestamptz,
	n_rows			bigint,
	min_service_level double precision,
	prev_last_start	timestamptz
);
COMMENT ON TYPE evmgmt.interval_touch IS 'One series touched by a load: its first and last interval start in the load, the number of rows, the lowest service level among them and the series'' last interval start before the load (NULL for a new series)';

-- What the statement trigger knows of the rows of its statement, noted row
-- by row by the CHECK constraint interval_stat_rules into a frame
-- that a BEFORE STATEMENT trigger opens (C, src/load_capture.c).  No
-- transition table: PostgreSQL 15 gives up multi-row inserts into a
-- partitioned table that has one.
CREATE FUNCTION evmgmt.interval_stat_load_begin() RETURNS trigger
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_load_begin'
LANGUAGE C;
COMMENT ON FUNCTION evmgmt.interval_stat_load_begin() IS 'BEFORE INSERT statement trigger of interval_stat: opens the frame in which the statement''s rows are noted';
CREATE FUNCTION evmgmt.interval_stat_touched() RETURNS evmgmt.interval_touch[]
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_touched'
LANGUAGE C STABLE;
COMMENT ON FUNCTION evmgmt.interval_stat_touched() IS 'The series the rows of the statement being loaded into interval_stat touched (NULL when none); for its statement trigger';
CREATE FUNCTION evmgmt.interval_stat_redelivered()
RETURNS TABLE (site_id text, queue_id text, pool evmgmt.pool, interval_start timestamptz)
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_redelivered'
LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION evmgmt.interval_stat_redelivered() IS 'The keys of the statement''s rows at or before their series'' high-water mark (intervals that may have been delivered before); for the statement trigger of interval_stat';
CREATE FUNCTION evmgmt.interval_stat_load_end() RETURNS void
AS 'MODULE_PATHNAME', 'evmgmt_interval_stat_load_end'
LANGUAGE C;
COMMENT ON FUNCTION evmgmt.interval_stat_load_end() IS 'Closes the frame of the statement being loaded into interval_stat; for its statement trigger';
CREATE FUNCTION evmgmt.stored_by_this_transaction(row_xmin xid) RETURNS boolean
AS 'MODULE_PATHNAME', 'evmgmt_stored_by_this_transaction'
LANGUAGE C STABLE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION evmgmt.stored_by_this_transaction(xid) IS 'Whether a row with this xmin was stored by the current transaction (or one of its open subtransactions)';

CREATE FUNCTION evmgmt.interval_stat_loaded() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
	v_touch evmgmt.interval_touch[] := evmgmt.interval_stat_touched();
	v_bad text;
BEGIN
	IF v_touch IS NULL THEN
		PERFORM evmgmt.interval_stat_load_end();
		RETURN NULL;
	END IF;

	-- Codes, once per statement.  The sites and queues named are locked as a
	-- foreign key would (KEY SHARE), so that they cannot go away before commit.
	PERFORM FROM evmgmt.site s WHERE s.site_id IN (SELECT t.site_id FROM pg_catalog.unnest(v_touch) t) FOR KEY SHARE;
	PERFORM FROM evmgmt.queue q WHERE q.queue_id IN (SELECT t.queue_id FROM pg_catalog.unnest(v_touch) t) FOR KEY SHARE;
	SELECT t.site_id INTO v_bad FROM pg_catalog.unnest(v_touch) t
	WHERE NOT EXISTS (SELECT FROM evmgmt.site s WHERE s.site_id = t.site_id) ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'insert or update on table "interval_stat" violates foreign key constraint "interval_stat_site_id_fkey"'
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'interval_stat_site_id_fkey',
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat', COLUMN = 'site_id',
				  DETAIL = pg_catalog.format('Key (site_id)=(%s) is not present in table "site".', v_bad);
	END IF;
	SELECT t.queue_id INTO v_bad FROM pg_catalog.unnest(v_touch) t
	WHERE NOT EXISTS (SELECT FROM evmgmt.queue q WHERE q.queue_id = t.queue_id) ORDER BY 1 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'insert or update on table "interval_stat" violates foreign key constraint "interval_stat_queue_id_fkey"'
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'interval_stat_queue_id_fkey',
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat', COLUMN = 'queue_id',
				  DETAIL = pg_catalog.format('Key (queue_id)=(%s) is not present in table "queue".', v_bad);
	END IF;

	-- Re-delivery: only rows at or before a series' high-water mark can meet
	-- an earlier row (the deferred key lets both stand until here); the
	-- frame noted exactly those keys.  Of the copies of such a key one is
	-- kept: the one this transaction stored last.
	IF EXISTS (SELECT FROM pg_catalog.unnest(v_touch) t WHERE t.first_start <= t.prev_last_start) THEN
		WITH cand AS (
			SELECT DISTINCT r.interval_start, r.site_id, r.queue_id, r.pool
			FROM evmgmt.interval_stat_redelivered() r
		), copies AS (
			SELECT x.tableoid AS rel, x.ctid AS tid,
				   pg_catalog.row_number() OVER (
					   PARTITION BY x.interval_start, x.site_id, x.queue_id, x.pool
					   ORDER BY evmgmt.stored_by_this_transaction(x.xmin) DESC,
								CASE WHEN evmgmt.stored_by_this_transaction(x.xmin)
									 THEN x.cmin::text::bigint END DESC NULLS LAST,
								x.tableoid DESC, x.ctid DESC) AS rank
			FROM evmgmt.interval_stat x
			JOIN cand c ON x.interval_start = c.interval_start AND x.site_id = c.site_id
					   AND x.queue_id = c.queue_id AND x.pool = c.pool
		)
		DELETE FROM evmgmt.interval_stat x USING copies c
		WHERE c.rank > 1 AND x.tableoid = c.rel AND x.ctid = c.tid;
	END IF;
	PERFORM evmgmt.interval_stat_load_end();

	INSERT INTO evmgmt.interval_series AS s (site_id, queue_id, pool, first_interval_start, last_interval_start, last_loaded_at)
	SELECT t.site_id, t.queue_id, t.pool, t.first_start, t.last_start, pg_catalog.clock_timestamp()
	FROM pg_catalog.unnest(v_touch) t
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE
	SET first_interval_start = LEAST(s.first_interval_start, EXCLUDED.first_interval_start),
		last_interval_start = GREATEST(s.last_interval_start, EXCLUDED.last_interval_start),
		last_loaded_at = EXCLUDED.last_loaded_at;

	-- Detection over the series this statement touched (47_detection_actions.sql),
	-- not for rows a restore brings back; the worker is woken at commit
	-- (feed health depends on what arrived).
	IF pg_catalog.current_setting('evmgmt.restoring', true) IS DISTINCT FROM 'on' THEN
		-- for the operation, whatever sites the loading role is bound to
		PERFORM evmgmt.site_scope_exempt(true);
		PERFORM evmgmt.detect_loaded(v_touch);
		PERFORM evmgmt.site_scope_exempt(false);
		-- actuals change the intraday correction of a forecast series: the
		-- worker predicts it again (49_prediction.sql)
		UPDATE evmgmt.forecast_series f SET changed_at = pg_catalog.clock_timestamp()
		FROM pg_catalog.unnest(v_touch) t
		WHERE f.site_id = t.site_id AND f.queue_id = t.queue_id AND f.pool = t.pool;
		PERFORM evmgmt.wake_workers();
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_stat_loaded() IS 'Statement trigger of interval_stat: checks site and queue codes set-based (foreign-key wording and names), replaces re-delivered intervals, keeps interval_series and runs detection on the series the statement touched';
CREATE TRIGGER interval_stat_load_begin BEFORE INSERT ON evmgmt.interval_stat
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_stat_load_begin();
CREATE TRIGGER interval_stat_loaded AFTER INSERT ON evmgmt.interval_stat
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_stat_loaded();

-- What a foreign key would refuse on the referenced side: a site or queue
-- that interval rows name cannot be deleted or renamed.
CREATE FUNCTION evmgmt.interval_code_in_use() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_col text := TG_ARGV[0];
	v_old text := pg_catalog.to_jsonb(OLD) ->> v_col;
BEGIN
	IF TG_OP = 'UPDATE' AND v_old = (pg_catalog.to_jsonb(NEW) ->> v_col) THEN
		RETURN NEW;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.interval_series s
			   WHERE (v_col = 'site_id' AND s.site_id = v_old) OR (v_col = 'queue_id' AND s.queue_id = v_old)) THEN
		RAISE EXCEPTION 'update or delete on table "%" violates foreign key constraint "interval_stat_%_fkey" on table "interval_stat"',
			TG_TABLE_NAME, v_col
			USING ERRCODE = 'foreign_key_violation', CONSTRAINT = pg_catalog.format('interval_stat_%s_fkey', v_col),
				  SCHEMA = 'evmgmt', TABLE = 'interval_stat',
				  DETAIL = pg_catalog.format('Key (%s)=(%s) is still referenced from table "interval_stat".', v_col, v_old);
	END IF;
	RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_code_in_use() IS 'Trigger on site and queue: refuses to delete or rename a code that interval series use (what a foreign key from interval_stat would refuse)';
CREATE TRIGGER interval_site_in_use BEFORE DELETE OR UPDATE OF site_id ON evmgmt.site
	FOR EACH ROW EXECUTE FUNCTION evmgmt.interval_code_in_use('site_id');
CREATE TRIGGER interval_queue_in_use BEFORE DELETE OR UPDATE OF queue_id ON evmgmt.queue
	FOR EACH ROW EXECUTE FUNCTION evmgmt.interval_code_in_use('queue_id');

-- The forgiving entry point: every column is text so that even a value that
-- does not parse is kept.  Rows live here only for the statement that brings
-- them: its statement trigger classifies the batch set-based, moves the bad
-- rows with their reason into interval_quarantine and the good ones into
-- interval_stat (one INSERT each, no subtransaction per row), then empties
-- the table again.  Unlogged: nothing in it outlives its statement.
CREATE UNLOGGED TABLE evmgmt.interval_inbox (
	site_id text, queue_id text, pool text, interval_start text, interval_minutes text,
	offered text, handled text, abandoned text, answered_in_threshold text, threshold_seconds text,
	aht_seconds text, staffed text, scheduled text, forecast_offered text, forecast_aht text,
	transferred text, escalated text, repeat_contacts text
);
COMMENT ON TABLE evmgmt.interval_inbox IS 'COPY target that never fails on a bad row: good rows go to interval_stat, bad rows to interval_quarantine with the reason (empty after every statement)';

CREATE TABLE evmgmt.interval_quarantine (
	quarantine_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	received_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	received_by		text NOT NULL DEFAULT SESSION_USER,
	row_data		jsonb NOT NULL,
	sqlstate		text NOT NULL,
	reason			text NOT NULL,
	detail			text,
	constraint_name	text,
	-- where the row was going: interval_stat (interval_inbox, interval_inbox_raw)
	-- or interval_forecast (forecast_inbox)
	target_table	text NOT NULL DEFAULT 'interval_stat'
		CONSTRAINT interval_quarantine_target_known CHECK (target_table IN ('interval_stat', 'interval_forecast'))
);
CREATE INDEX ON evmgmt.interval_quarantine (received_at);
COMMENT ON TABLE evmgmt.interval_quarantine IS 'Interval rows refused by interval_inbox, kept with the error, so that no loaded row is silently lost';

-- Why one inbox row cannot become an interval_stat row, as the SQLSTATE, the
-- constraint and the message that inserting it would raise (C, src/detect.c):
-- input syntax and range column by column, NOT NULL, each CHECK of
-- interval_stat, then the codes, so each bad row gets its most specific
-- reason.  NULL when the row can be stored.
CREATE FUNCTION evmgmt.interval_inbox_problem(site_id text, queue_id text, pool text, interval_start text,
											  interval_minutes text, offered text, handled text, abandoned text,
											  answered_in_threshold text, threshold_seconds text, aht_seconds text,
											  staffed text, scheduled text, forecast_offered text, forecast_aht text,
											  transferred text, escalated text, repeat_contacts text,
											  site_known boolean, queue_known boolean)
RETURNS text[]
AS 'MODULE_PATHNAME', 'evmgmt_interval_inbox_problem'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.interval_inbox_problem(text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, text, boolean, boolean) IS 'Why an inbox row cannot be stored in interval_stat: {sqlstate, constraint, message[, detail]} as inserting it would raise (input syntax, NOT NULL, CHECK constraints, codes, in that order), NULL when it can; never raises';

-- Route one statement's inbox rows (C, src/detect.c): each row parsed once;
-- bad rows to quarantine with their reason, good rows to interval_stat, each
-- set with one INSERT; then empty the inbox of them.
CREATE FUNCTION evmgmt.interval_inbox_route() RETURNS trigger
AS 'MODULE_PATHNAME', 'evmgmt_interval_inbox_route'
LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off;
COMMENT ON FUNCTION evmgmt.interval_inbox_route() IS 'Statement trigger of interval_inbox: parses each row of the batch once, quarantines each bad row with its most specific reason and loads the good rows into interval_stat with one INSERT (no subtransaction per row)';
CREATE TRIGGER interval_inbox_route AFTER INSERT ON evmgmt.interval_inbox
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_inbox_route();

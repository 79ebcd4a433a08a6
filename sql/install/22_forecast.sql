-- Forecast and schedule per interval, loaded by WFM ETL jobs (evmgmt_ingest),
-- and its quarantine path.  What prediction reads (49_prediction.sql).
--
-- WFM re-forecasts and re-schedules intraday: a re-delivered interval
-- replaces the earlier row, the last one delivered wins (within one
-- statement, the row loaded last).  Each bad row is refused with a named
-- constraint, as interval_stat refuses its rows; forecast_inbox takes rows as
-- text and routes each bad one to interval_quarantine with its most specific
-- reason, set-based, without a subtransaction per row.
--
-- Volume is small next to interval_stat (the next days of every series), so
-- the table is a plain one with real foreign keys and row-level CHECKs.

CREATE TABLE evmgmt.interval_forecast (
	site_id			text COLLATE "C" NOT NULL
		CONSTRAINT interval_forecast_site_id_fkey REFERENCES evmgmt.site (site_id) ON DELETE CASCADE ON UPDATE CASCADE,
	queue_id		text COLLATE "C" NOT NULL
		CONSTRAINT interval_forecast_queue_id_fkey REFERENCES evmgmt.queue (queue_id) ON DELETE CASCADE ON UPDATE CASCADE,
	pool			evmgmt.pool NOT NULL,
	interval_start	timestamptz NOT NULL,
	interval_minutes smallint NOT NULL,
	forecast_offered real NOT NULL,
	forecast_aht	real NOT NULL,
	scheduled		real NOT NULL,
	patience_seconds real,
	loaded_at		timestamptz NOT NULL DEFAULT pg_catalog.statement_timestamp(),
	loaded_by		text NOT NULL DEFAULT SESSION_USER,
	CONSTRAINT interval_forecast_aht_positive CHECK (forecast_aht > 0 AND forecast_aht <= 86400),
	CONSTRAINT interval_forecast_length_divides_hour CHECK (interval_minutes > 0 AND 60 % interval_minutes = 0),
	CONSTRAINT interval_forecast_offered_not_negative CHECK (forecast_offered >= 0 AND forecast_offered <= 100000000),
	CONSTRAINT interval_forecast_patience_positive CHECK (patience_seconds > 0 AND patience_seconds <= 86400),
	CONSTRAINT interval_forecast_scheduled_not_negative CHECK (scheduled >= 0 AND scheduled <= 1000000),
	CONSTRAINT interval_forecast_start_aligned CHECK (evmgmt.interval_start_aligned(interval_start, interval_minutes)),
	CONSTRAINT interval_forecast_start_plausible CHECK (interval_start >= timestamptz '2000-01-01 00:00+00'
														AND interval_start < timestamptz '2200-01-01 00:00+00')
);
CREATE INDEX interval_forecast_series_idx ON evmgmt.interval_forecast (site_id, queue_id, pool, interval_start);
CREATE INDEX interval_forecast_start_idx ON evmgmt.interval_forecast (interval_start);
COMMENT ON TABLE evmgmt.interval_forecast IS 'Forecast volume and handle time and scheduled agents per site, queue, pool and future interval, loaded by WFM ETL (COPY or INSERT); a re-delivered interval replaces the earlier forecast';
COMMENT ON COLUMN evmgmt.interval_forecast.forecast_offered IS 'Contacts forecast to arrive in the interval';
COMMENT ON COLUMN evmgmt.interval_forecast.forecast_aht IS 'Forecast average handle time, seconds';
COMMENT ON COLUMN evmgmt.interval_forecast.scheduled IS 'Agents scheduled for the interval (on the phones, after planned shrinkage)';
COMMENT ON COLUMN evmgmt.interval_forecast.patience_seconds IS 'Mean customer patience, seconds: when given, the projection uses Erlang A (abandonment) instead of Erlang C';
COMMENT ON COLUMN evmgmt.interval_forecast.loaded_at IS 'When the statement that loaded the row started (of two deliveries of an interval the later one is kept)';

-- Per series: when its forecast last changed and when prediction last
-- looked at it (the worker predicts changed series at once, every series
-- with a forecast again every evmgmt.prediction_refresh).
CREATE TABLE evmgmt.forecast_series (
	site_id			text COLLATE "C" NOT NULL REFERENCES evmgmt.site (site_id) ON DELETE CASCADE ON UPDATE CASCADE,
	queue_id		text COLLATE "C" NOT NULL REFERENCES evmgmt.queue (queue_id) ON DELETE CASCADE ON UPDATE CASCADE,
	pool			evmgmt.pool NOT NULL,
	changed_at		timestamptz NOT NULL,
	predicted_at	timestamptz,
	PRIMARY KEY (site_id, queue_id, pool)
);
CREATE INDEX forecast_series_changed_idx ON evmgmt.forecast_series (changed_at) WHERE predicted_at IS NULL OR predicted_at < changed_at;
COMMENT ON TABLE evmgmt.forecast_series IS 'Every series with a forecast: when a load (of the forecast, or of actual intervals) last changed what prediction sees, and when prediction last ran on it';

-- After each load: the later of two deliveries of an interval stays, the
-- series are marked for prediction, the worker is woken at commit.
CREATE FUNCTION evmgmt.interval_forecast_loaded() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
	-- a restore brings back rows and series as they were dumped
	IF pg_catalog.current_setting('evmgmt.restoring', true) = 'on' THEN
		RETURN NULL;
	END IF;
	DELETE FROM evmgmt.interval_forecast f
	USING (SELECT DISTINCT n.site_id, n.queue_id, n.pool, n.interval_start FROM new_rows n) k
	WHERE f.site_id = k.site_id AND f.queue_id = k.queue_id AND f.pool = k.pool AND f.interval_start = k.interval_start
	  AND EXISTS (SELECT FROM evmgmt.interval_forecast g
				  WHERE g.site_id = f.site_id AND g.queue_id = f.queue_id AND g.pool = f.pool
					AND g.interval_start = f.interval_start
					AND (g.loaded_at, g.ctid) > (f.loaded_at, f.ctid));
	INSERT INTO evmgmt.forecast_series AS s (site_id, queue_id, pool, changed_at)
	SELECT k.site_id, k.queue_id, k.pool, pg_catalog.clock_timestamp()
	FROM (SELECT DISTINCT n.site_id, n.queue_id, n.pool FROM new_rows n) k
	ON CONFLICT (site_id, queue_id, pool) DO UPDATE SET changed_at = EXCLUDED.changed_at;
	PERFORM evmgmt.wake_workers();
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_forecast_loaded() IS 'Statement trigger of interval_forecast: keeps the later delivery of each interval, marks the series for prediction and wakes the worker at commit';
CREATE TRIGGER interval_forecast_loaded AFTER INSERT ON evmgmt.interval_forecast
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.interval_forecast_loaded();

-- The forgiving entry point, as interval_inbox: every column text, nothing
-- stays here after its statement.
CREATE UNLOGGED TABLE evmgmt.forecast_inbox (
	site_id text, queue_id text, pool text, interval_start text, interval_minutes text,
	forecast_offered text, forecast_aht text, scheduled text, patience_seconds text
);
COMMENT ON TABLE evmgmt.forecast_inbox IS 'COPY target for forecasts that never fails on a bad row: good rows go to interval_forecast, bad rows to interval_quarantine with the reason (empty after every statement)';

-- Why one inbox row cannot become an interval_forecast row, as inserting it
-- would say: input syntax and range column by column, NOT NULL, the CHECK
-- constraints in name order (the order PostgreSQL evaluates them in), then
-- the codes.  {sqlstate, constraint, message[, detail]}, NULL when it can be
-- stored; never raises.
CREATE FUNCTION evmgmt.interval_forecast_problem(site_id text, queue_id text, pool text, interval_start text,
												 interval_minutes text, forecast_offered text, forecast_aht text,
												 scheduled text, patience_seconds text,
												 site_known boolean, queue_known boolean)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_start timestamptz;
	v_minutes bigint;
	v_offered double precision;
	v_aht double precision;
	v_scheduled double precision;
	v_patience double precision;
	v_col text;
	v_val text;
	v_real text[] := ARRAY['forecast_offered', 'forecast_aht', 'scheduled', 'patience_seconds'];
	v_vals text[] := ARRAY[forecast_offered, forecast_aht, scheduled, patience_seconds];
	v_chk text;
BEGIN
	-- input syntax and range, in column order
	IF pool IS NOT NULL AND NOT pool = ANY (pg_catalog.enum_range(NULL::evmgmt.pool)::text[]) THEN
		RETURN ARRAY['22P02', NULL, pg_catalog.format('invalid input value for enum evmgmt.pool: "%s"', pool)];
	END IF;
	IF interval_start IS NOT NULL THEN
		v_start := evmgmt.try_timestamptz(interval_start);
		IF v_start IS NULL THEN
			RETURN ARRAY['22007', NULL, pg_catalog.format('invalid input syntax for type timestamp with time zone: "%s"', interval_start)];
		END IF;
	END IF;
	IF interval_minutes IS NOT NULL THEN
		v_minutes := evmgmt.try_integer(interval_minutes);
		IF v_minutes IS NULL THEN
			RETURN ARRAY['22P02', NULL, pg_catalog.format('invalid input syntax for type smallint: "%s"', interval_minutes)];
		ELSIF v_minutes < -32768 OR v_minutes > 32767 THEN
			RETURN ARRAY['22003', NULL, pg_catalog.format('value "%s" is out of range for type smallint', interval_minutes)];
		END IF;
	END IF;
	FOR i IN 1 .. 4 LOOP
		v_val := v_vals[i];
		CONTINUE WHEN v_val IS NULL;
		IF evmgmt.try_real(v_val) IS NULL THEN
			RETURN ARRAY['22P02', NULL, pg_catalog.format('invalid input syntax for type real: "%s"', v_val)];
		END IF;
		-- float8 reads it; real must hold it
		IF pg_catalog.abs(evmgmt.try_real(v_val)) > 3.4028234663852886e38
		   AND evmgmt.try_real(v_val) NOT IN ('Infinity', '-Infinity', 'NaN') THEN
			RETURN ARRAY['22003', NULL, pg_catalog.format('"%s" is out of range for type real', v_val)];
		END IF;
	END LOOP;
	v_offered := evmgmt.try_real(forecast_offered);
	v_aht := evmgmt.try_real(forecast_aht);
	v_scheduled := evmgmt.try_real(scheduled);
	v_patience := evmgmt.try_real(patience_seconds);

	-- NOT NULL, in column order
	v_col := CASE WHEN site_id IS NULL THEN 'site_id' WHEN queue_id IS NULL THEN 'queue_id' WHEN pool IS NULL THEN 'pool'
				  WHEN interval_start IS NULL THEN 'interval_start' WHEN interval_minutes IS NULL THEN 'interval_minutes'
				  WHEN forecast_offered IS NULL THEN 'forecast_offered' WHEN forecast_aht IS NULL THEN 'forecast_aht'
				  WHEN scheduled IS NULL THEN 'scheduled' END;
	IF v_col IS NOT NULL THEN
		RETURN ARRAY['23502', NULL, pg_catalog.format('null value in column "%s" of relation "interval_forecast" violates not-null constraint', v_col)];
	END IF;

	-- the CHECK constraints, in name order
	v_chk := CASE
		WHEN NOT (v_aht > 0 AND v_aht <= 86400) THEN 'interval_forecast_aht_positive'
		WHEN NOT (v_minutes > 0 AND 60 % v_minutes = 0) THEN 'interval_forecast_length_divides_hour'
		WHEN NOT (v_offered >= 0 AND v_offered <= 100000000) THEN 'interval_forecast_offered_not_negative'
		WHEN v_patience IS NOT NULL AND NOT (v_patience > 0 AND v_patience <= 86400) THEN 'interval_forecast_patience_positive'
		WHEN NOT (v_scheduled >= 0 AND v_scheduled <= 1000000) THEN 'interval_forecast_scheduled_not_negative'
		WHEN NOT evmgmt.interval_start_aligned(v_start, v_minutes::smallint) THEN 'interval_forecast_start_aligned'
		WHEN NOT (v_start >= timestamptz '2000-01-01 00:00+00' AND v_start < timestamptz '2200-01-01 00:00+00') THEN 'interval_forecast_start_plausible'
	END;
	IF v_chk IS NOT NULL THEN
		RETURN ARRAY['23514', v_chk, pg_catalog.format('new row for relation "interval_forecast" violates check constraint "%s"', v_chk)];
	END IF;

	-- the codes
	IF NOT site_known THEN
		RETURN ARRAY['23503', 'interval_forecast_site_id_fkey',
					 'insert or update on table "interval_forecast" violates foreign key constraint "interval_forecast_site_id_fkey"',
					 pg_catalog.format('Key (site_id)=(%s) is not present in table "site".', site_id)];
	END IF;
	IF NOT queue_known THEN
		RETURN ARRAY['23503', 'interval_forecast_queue_id_fkey',
					 'insert or update on table "interval_forecast" violates foreign key constraint "interval_forecast_queue_id_fkey"',
					 pg_catalog.format('Key (queue_id)=(%s) is not present in table "queue".', queue_id)];
	END IF;
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.interval_forecast_problem(text, text, text, text, text, text, text, text, text, boolean, boolean) IS 'Why a forecast_inbox row cannot be stored in interval_forecast: {sqlstate, constraint, message[, detail]} as inserting it would raise (input syntax, NOT NULL, CHECK constraints in name order, codes), NULL when it can; never raises';

-- Route one statement's inbox rows: bad ones to quarantine with their
-- reason, good ones to interval_forecast, one INSERT each; then empty the
-- inbox of them.
CREATE FUNCTION evmgmt.forecast_inbox_route() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
BEGIN
	CREATE TEMPORARY TABLE IF NOT EXISTS evmgmt_forecast_routed (
		n bigint, site_id text, queue_id text, pool text, interval_start text, interval_minutes text,
		forecast_offered text, forecast_aht text, scheduled text, patience_seconds text, problem text[]
	) ON COMMIT DROP;
	DELETE FROM pg_temp.evmgmt_forecast_routed;
	INSERT INTO pg_temp.evmgmt_forecast_routed
	SELECT pg_catalog.row_number() OVER (), r.*,
		   evmgmt.interval_forecast_problem(r.site_id, r.queue_id, r.pool, r.interval_start, r.interval_minutes,
											r.forecast_offered, r.forecast_aht, r.scheduled, r.patience_seconds,
											EXISTS (SELECT FROM evmgmt.site s WHERE s.site_id = r.site_id),
											EXISTS (SELECT FROM evmgmt.queue q WHERE q.queue_id = r.queue_id))
	FROM new_rows r;
	INSERT INTO evmgmt.interval_quarantine (target_table, row_data, sqlstate, reason, detail, constraint_name)
	SELECT 'interval_forecast',
		   pg_catalog.jsonb_build_object('site_id', x.site_id, 'queue_id', x.queue_id, 'pool', x.pool,
			   'interval_start', x.interval_start, 'interval_minutes', x.interval_minutes,
			   'forecast_offered', x.forecast_offered, 'forecast_aht', x.forecast_aht, 'scheduled', x.scheduled,
			   'patience_seconds', x.patience_seconds),
		   x.problem[1], x.problem[3], x.problem[4], x.problem[2]
	FROM pg_temp.evmgmt_forecast_routed x WHERE x.problem IS NOT NULL ORDER BY x.n;
	INSERT INTO evmgmt.interval_forecast (site_id, queue_id, pool, interval_start, interval_minutes, forecast_offered,
										  forecast_aht, scheduled, patience_seconds)
	SELECT x.site_id, x.queue_id, x.pool::evmgmt.pool, x.interval_start::timestamptz, x.interval_minutes::smallint,
		   x.forecast_offered::real, x.forecast_aht::real, x.scheduled::real, x.patience_seconds::real
	FROM pg_temp.evmgmt_forecast_routed x WHERE x.problem IS NULL ORDER BY x.n;
	-- what this transaction put into the inbox (earlier statements' rows
	-- are gone already; other sessions' rows are theirs)
	DELETE FROM evmgmt.forecast_inbox i WHERE evmgmt.stored_by_this_transaction(i.xmin);
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION evmgmt.forecast_inbox_route() IS 'Statement trigger of forecast_inbox: quarantines each bad row with its most specific reason and loads the good rows into interval_forecast with one INSERT';
CREATE TRIGGER forecast_inbox_route AFTER INSERT ON evmgmt.forecast_inbox
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.forecast_inbox_route();

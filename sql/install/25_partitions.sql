-- Month partitions of interval_stat: created ahead of time, dropped past a
-- retention; rows of the default partition moved into the months they belong
-- to when an admin asks.  The worker keeps them ahead through run_due_work
-- (maintain_interval_partitions); the functions can be called by hand with
-- explicit arguments too.
--
-- Partitions are named interval_stat_pYYYY_MM and bounded by UTC months.
-- They are created at run time, so they are ordinary tables (not members of
-- the extension): pg_dump keeps them with their rows.  Each has its own key
-- (interval_start, site_id, queue_id, pool), deferred, named <partition>_pkey.

-- The UTC month a partition holds, from its name; NULL for other names.
CREATE FUNCTION evmgmt.interval_partition_month(relname text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN relname ~ '^interval_stat_p[0-9]{4}_[0-9]{2}$'
			THEN pg_catalog.to_date(pg_catalog.substr(relname, 16), 'YYYY_MM') END;
COMMENT ON FUNCTION evmgmt.interval_partition_month(text) IS 'The UTC month an interval_stat month partition holds, from its name interval_stat_pYYYY_MM (NULL for any other name)';

CREATE VIEW evmgmt.interval_partitions AS
SELECT c.relname AS partition_name, evmgmt.interval_partition_month(c.relname) AS month,
	   pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bounds,
	   c.reltuples::bigint AS approximate_rows, pg_catalog.pg_total_relation_size(c.oid) AS total_bytes
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'evmgmt.interval_stat'::regclass;
COMMENT ON VIEW evmgmt.interval_partitions IS 'The partitions of interval_stat (month partitions and the default one) with their bounds and size';

-- Create the month partitions from the current month to ahead months after
-- at and, with default_months, one for every month the default partition has
-- rows of (those rows are moved into it: run that by hand, in a quiet
-- moment, since a query already running may miss rows that change
-- partition under it).  Returns how many were created.
CREATE FUNCTION evmgmt.create_interval_partitions(ahead integer DEFAULT 2, at timestamptz DEFAULT pg_catalog.now(),
												  default_months boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	m date;
	v_name text;
	v_from timestamptz;
	v_to timestamptz;
	n integer := 0;
BEGIN
	IF ahead IS NULL OR ahead < 0 OR ahead > 120 THEN
		RAISE EXCEPTION 'ahead must be between 0 and 120 months'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = pg_catalog.format('ahead is %s.', ahead);
	END IF;
	IF at IS NULL OR NOT pg_catalog.isfinite(at) THEN
		RAISE EXCEPTION 'at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR m IN
		SELECT x.month FROM (
			SELECT pg_catalog.generate_series(pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC'),
											  pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC') + ahead * interval '1 month',
											  interval '1 month')::date AS month
			UNION
			SELECT DISTINCT pg_catalog.date_trunc('month', d.interval_start AT TIME ZONE 'UTC')::date
			FROM evmgmt.interval_stat_default d
			WHERE default_months
		) x
		WHERE NOT EXISTS (SELECT FROM evmgmt.interval_partitions p WHERE p.month = x.month)
		ORDER BY x.month
	LOOP
		-- no load or DELETE may run while rows change partition: they would
		-- miss the rows being moved
		LOCK TABLE evmgmt.interval_stat IN SHARE ROW EXCLUSIVE MODE;
		v_name := 'interval_stat_p' || pg_catalog.to_char(m, 'YYYY_MM');
		v_from := m::timestamp AT TIME ZONE 'UTC';
		v_to := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
		IF EXISTS (SELECT FROM evmgmt.interval_stat_default d WHERE d.interval_start >= v_from AND d.interval_start < v_to) THEN
			-- the default partition holds rows of this month: move them into a
			-- new table first, then attach it
			EXECUTE pg_catalog.format('CREATE TABLE evmgmt.%I (LIKE evmgmt.interval_stat INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
			EXECUTE pg_catalog.format(
				'WITH moved AS (DELETE FROM evmgmt.interval_stat_default WHERE interval_start >= $1 AND interval_start < $2 RETURNING *) '
				'INSERT INTO evmgmt.%I SELECT * FROM moved', v_name) USING v_from, v_to;
			EXECUTE pg_catalog.format('ALTER TABLE evmgmt.%I ADD CONSTRAINT %I PRIMARY KEY (interval_start, site_id, queue_id, pool) DEFERRABLE INITIALLY DEFERRED',
									  v_name, v_name || '_pkey');
			EXECUTE pg_catalog.format('ALTER TABLE evmgmt.interval_stat ATTACH PARTITION evmgmt.%I FOR VALUES FROM (%L) TO (%L)',
									  v_name, v_from, v_to);
		ELSE
			EXECUTE pg_catalog.format('CREATE TABLE evmgmt.%I PARTITION OF evmgmt.interval_stat (CONSTRAINT %I PRIMARY KEY (interval_start, site_id, queue_id, pool) DEFERRABLE INITIALLY DEFERRED) FOR VALUES FROM (%L) TO (%L)',
									  v_name, v_name || '_pkey', v_from, v_to);
		END IF;
		EXECUTE pg_catalog.format('COMMENT ON TABLE evmgmt.%I IS %L', v_name,
								  'Month partition of interval_stat (' || pg_catalog.to_char(m, 'YYYY-MM') || ', UTC)');
		n := n + 1;
	END LOOP;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.create_interval_partitions(integer, timestamptz, boolean) IS 'Creates the month partitions of interval_stat from the month of at to ahead months later and, with default_months, one for each month the default partition has rows of (moving them in); returns how many were created';

-- Drop the month partitions that ended retention or longer before at, and
-- delete rows that old from the default partition.  Returns how many
-- partitions were dropped.
CREATE FUNCTION evmgmt.drop_interval_partitions(retention interval, at timestamptz DEFAULT pg_catalog.now())
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	p record;
	n integer := 0;
	v_cut timestamptz;
BEGIN
	IF retention IS NULL OR retention < interval '1 day' THEN
		RAISE EXCEPTION 'retention must be at least 1 day'
			USING ERRCODE = 'invalid_parameter_value', DETAIL = pg_catalog.format('retention is %s.', retention);
	END IF;
	IF at IS NULL OR NOT pg_catalog.isfinite(at) THEN
		RAISE EXCEPTION 'at must be a finite time' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	v_cut := at - retention;
	FOR p IN SELECT x.partition_name, x.month FROM evmgmt.interval_partitions x
			 WHERE x.month IS NOT NULL
			   AND (x.month + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= v_cut
			 ORDER BY x.month
	LOOP
		EXECUTE pg_catalog.format('DROP TABLE evmgmt.%I', p.partition_name);
		n := n + 1;
	END LOOP;
	DELETE FROM evmgmt.interval_stat_default d WHERE d.interval_start < v_cut;
	-- series with nothing left no longer hold their site and queue codes
	DELETE FROM evmgmt.interval_series s WHERE s.last_interval_start < v_cut;
	RETURN n;
END
$$;
COMMENT ON FUNCTION evmgmt.drop_interval_partitions(interval, timestamptz) IS 'Drops the month partitions of interval_stat that ended at least retention before at, deletes default-partition rows that old and forgets series with nothing newer; returns how many partitions were dropped';

-- What the worker calls from run_due_work: partitions for this month and
-- evmgmt.interval_partitions_ahead months ahead (default 2) and, when
-- evmgmt.interval_retention is set (not 0), drops past it.  It moves no rows
-- out of the default partition (see create_interval_partitions).  Cheap when there is
-- nothing to do (catalog look-ups); a lock that cannot be had at once is left
-- for a later call.
CREATE FUNCTION evmgmt.maintain_interval_partitions(at timestamptz DEFAULT pg_catalog.now()) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_ahead integer := COALESCE(NULLIF(pg_catalog.current_setting('evmgmt.interval_partitions_ahead', true), '')::integer, 2);
	v_retention interval := NULLIF(evmgmt.setting_interval('evmgmt.interval_retention', NULL), interval '0');
	v_lock text := pg_catalog.current_setting('lock_timeout');
BEGIN
	-- a setting out of range must not stop the worker's loop
	IF v_ahead NOT BETWEEN 0 AND 120 THEN
		RAISE WARNING 'evmgmt.interval_partitions_ahead = % is out of range (0 to 120): 2 is used', v_ahead;
		v_ahead := 2;
	END IF;
	IF v_retention < interval '1 day' THEN
		RAISE WARNING 'evmgmt.interval_retention = % is shorter than a day: nothing is dropped', v_retention;
		v_retention := NULL;
	END IF;
	IF EXISTS (SELECT FROM evmgmt.interval_partitions p
			   WHERE p.month = (pg_catalog.date_trunc('month', at AT TIME ZONE 'UTC') + v_ahead * interval '1 month')::date)
	   AND (v_retention IS NULL OR NOT EXISTS (
			SELECT FROM evmgmt.interval_partitions p
			WHERE (p.month + interval '1 month')::timestamp AT TIME ZONE 'UTC' <= at - v_retention)) THEN
		RETURN;
	END IF;
	BEGIN
		PERFORM pg_catalog.set_config('lock_timeout', '100ms', true);
		PERFORM evmgmt.create_interval_partitions(v_ahead, at, false);
		IF v_retention IS NOT NULL THEN
			PERFORM evmgmt.drop_interval_partitions(v_retention, at);
		END IF;
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
	EXCEPTION WHEN lock_not_available THEN
		PERFORM pg_catalog.set_config('lock_timeout', v_lock, true);
		RAISE WARNING 'interval partition maintenance postponed: a lock on interval_stat was not available';
	END;
END
$$;
COMMENT ON FUNCTION evmgmt.maintain_interval_partitions(timestamptz) IS 'Partition upkeep for the worker: month partitions up to evmgmt.interval_partitions_ahead months ahead (default 2), partitions past evmgmt.interval_retention dropped (when set); moves no rows; postponed when interval_stat is locked';

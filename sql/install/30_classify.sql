-- Severity classification from the service-level signal (C: src/classify.c).
--
-- Boundary rules (docs/lifecycle.md, "Classification"): a tier with threshold
-- t and sustain time s applies when the service level is below t (sl < t;
-- for t = 0, an outage, sl = 0) for longer than s minutes (minutes > s; s = 0
-- means at once).  Tiers are tried sev1, sev2, sev3; the first that applies
-- wins; none applies: NULL, no event.

-- Service level of an interval; NULL when nothing was offered (no signal).
CREATE FUNCTION evmgmt.interval_service_level(answered_in_threshold integer, offered integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'evmgmt_interval_service_level'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.interval_service_level(integer, integer) IS 'answered_in_threshold / offered; NULL when offered = 0 (no signal: such an interval breaks a sustained run)';

CREATE FUNCTION evmgmt.classify_severity(service_level double precision, sustained_minutes double precision,
										 sev1_threshold double precision, sev1_sustain integer,
										 sev2_threshold double precision, sev2_sustain integer,
										 sev3_threshold double precision, sev3_sustain integer)
RETURNS evmgmt.severity
AS 'MODULE_PATHNAME', 'evmgmt_classify_severity'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.classify_severity(double precision, double precision, double precision, integer, double precision, integer, double precision, integer) IS 'Tier for a service level held for sustained_minutes under the given thresholds and sustain times (NULL threshold: tier not signal-driven); NULL when no tier applies';

CREATE FUNCTION evmgmt.classify_sustained_runs(sev1_minutes double precision, sev2_minutes double precision,
											   sev3_minutes double precision, sev1_sustain integer,
											   sev2_sustain integer, sev3_sustain integer)
RETURNS evmgmt.severity
AS 'MODULE_PATHNAME', 'evmgmt_classify_sustained_runs'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.classify_sustained_runs(double precision, double precision, double precision, integer, integer, integer) IS 'Tier from the trailing run (minutes) below each tier''s own threshold, as computed by sustained_minutes_below; 0 means not below now';

CREATE FUNCTION evmgmt.sustained_below_transfn(internal, double precision, double precision, timestamptz, integer)
RETURNS internal
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_transfn(internal, double precision, double precision, timestamptz, integer) IS 'Transition function of sustained_minutes_below';

CREATE FUNCTION evmgmt.sustained_below_finalfn(internal)
RETURNS double precision
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_finalfn(internal) IS 'Final function of sustained_minutes_below';

CREATE AGGREGATE evmgmt.sustained_minutes_below(service_level double precision, threshold double precision,
												interval_start timestamptz, interval_minutes integer) (
	SFUNC = evmgmt.sustained_below_transfn,
	STYPE = internal,
	FINALFUNC = evmgmt.sustained_below_finalfn
);
COMMENT ON AGGREGATE evmgmt.sustained_minutes_below(double precision, double precision, timestamptz, integer) IS 'Over the intervals of one series (any input order): minutes of the trailing run of contiguous intervals below the threshold (a gap or a NULL service level breaks it); usable as a window function';

CREATE FUNCTION evmgmt.sustained_below_array_transfn(internal, double precision, double precision[], timestamptz, integer)
RETURNS internal
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_array_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_array_transfn(internal, double precision, double precision[], timestamptz, integer) IS 'Transition function of sustained_runs_below';

CREATE FUNCTION evmgmt.sustained_below_array_finalfn(internal)
RETURNS double precision[]
AS 'MODULE_PATHNAME', 'evmgmt_sustained_below_array_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION evmgmt.sustained_below_array_finalfn(internal) IS 'Final function of sustained_runs_below';

CREATE AGGREGATE evmgmt.sustained_runs_below(service_level double precision, thresholds double precision[],
												interval_start timestamptz, interval_minutes integer) (
	SFUNC = evmgmt.sustained_below_array_transfn,
	STYPE = internal,
	FINALFUNC = evmgmt.sustained_below_array_finalfn
);
COMMENT ON AGGREGATE evmgmt.sustained_runs_below(double precision, double precision[], timestamptz, integer) IS 'sustained_minutes_below for several thresholds in one pass (taken from the first row): the trailing run below each, NULL for a NULL threshold';

-- The signal thresholds of each operation, one row per operation.
CREATE VIEW evmgmt.severity_thresholds AS
SELECT p.operation_id,
	   pg_catalog.max(p.sl_threshold) FILTER (WHERE p.severity = 'sev1') AS sev1_threshold,
	   pg_catalog.max(p.sustain_minutes) FILTER (WHERE p.severity = 'sev1') AS sev1_sustain,
	   pg_catalog.max(p.sl_threshold) FILTER (WHERE p.severity = 'sev2') AS sev2_threshold,
	   pg_catalog.max(p.sustain_minutes) FILTER (WHERE p.severity = 'sev2') AS sev2_sustain,
	   pg_catalog.max(p.sl_threshold) FILTER (WHERE p.severity = 'sev3') AS sev3_threshold,
	   pg_catalog.max(p.sustain_minutes) FILTER (WHERE p.severity = 'sev3') AS sev3_sustain
FROM evmgmt.effective_severity_policy p
GROUP BY p.operation_id;
COMMENT ON VIEW evmgmt.severity_thresholds IS 'Effective service-level thresholds and sustain times of sev1..sev3, one row per operation';

CREATE FUNCTION evmgmt.classify_severity(operation_id text, service_level double precision, sustained_minutes double precision)
RETURNS evmgmt.severity
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT evmgmt.classify_severity(classify_severity.service_level, classify_severity.sustained_minutes,
									t.sev1_threshold, t.sev1_sustain, t.sev2_threshold, t.sev2_sustain,
									t.sev3_threshold, t.sev3_sustain)
	FROM evmgmt.severity_thresholds t
	WHERE t.operation_id = classify_severity.operation_id;
END;
COMMENT ON FUNCTION evmgmt.classify_severity(text, double precision, double precision) IS 'Tier for a service level held for sustained_minutes under the operation''s effective (calibrated) policy';

-- The latest state of every (site, queue, pool) series: the trailing run
-- below each tier's threshold over the complete intervals in
-- (at - lookback, at], and the tier that gives.
CREATE FUNCTION evmgmt.classify_series(at timestamptz DEFAULT pg_catalog.now(), lookback interval DEFAULT '1 day',
									   site_id text DEFAULT NULL, queue_id text DEFAULT NULL,
									   pool evmgmt.pool DEFAULT NULL)
RETURNS TABLE (operation_id text, site_id text, queue_id text, pool evmgmt.pool,
			   last_interval_start timestamptz, last_interval_end timestamptz, service_level double precision,
			   minutes_below_sev1 double precision, minutes_below_sev2 double precision,
			   minutes_below_sev3 double precision, severity evmgmt.severity)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
	SELECT r.operation_id, r.site_id, r.queue_id, r.pool, r.last_start,
		   r.last_start + l.interval_minutes * interval '1 minute',
		   evmgmt.interval_service_level(l.answered_in_threshold, l.offered),
		   r.runs[1], r.runs[2], r.runs[3],
		   evmgmt.classify_sustained_runs(r.runs[1], r.runs[2], r.runs[3], t.sev1_sustain, t.sev2_sustain, t.sev3_sustain)
	FROM (
		-- no ORDER BY in the aggregate: it orders the intervals itself, so
		-- the groups can be hashed instead of sorting every row
		SELECT si.operation_id, s.site_id, s.queue_id, s.pool,
			   pg_catalog.max(s.interval_start) AS last_start,
			   evmgmt.sustained_runs_below(evmgmt.interval_service_level(s.answered_in_threshold, s.offered),
										   ARRAY[t.sev1_threshold, t.sev2_threshold, t.sev3_threshold],
										   s.interval_start, s.interval_minutes) AS runs
		FROM evmgmt.interval_stat s
		JOIN evmgmt.site si ON si.site_id = s.site_id
		JOIN evmgmt.severity_thresholds t ON t.operation_id = si.operation_id
		WHERE s.interval_start > classify_series.at - classify_series.lookback
		  AND s.interval_start + s.interval_minutes * interval '1 minute' <= classify_series.at
		  AND (classify_series.site_id IS NULL OR s.site_id = classify_series.site_id)
		  AND (classify_series.queue_id IS NULL OR s.queue_id = classify_series.queue_id)
		  AND (classify_series.pool IS NULL OR s.pool = classify_series.pool)
		GROUP BY si.operation_id, s.site_id, s.queue_id, s.pool
	) r
	JOIN evmgmt.severity_thresholds t ON t.operation_id = r.operation_id
	JOIN evmgmt.interval_stat l ON l.interval_start = r.last_start AND l.site_id = r.site_id
							   AND l.queue_id = r.queue_id AND l.pool = r.pool
	ORDER BY r.operation_id, r.site_id, r.queue_id, r.pool;
END;
COMMENT ON FUNCTION evmgmt.classify_series(timestamptz, interval, text, text, evmgmt.pool) IS 'Latest classification of every (site, queue, pool) interval series (or those of one site, queue or pool) at a time, over the complete intervals within lookback: trailing minutes below each tier''s threshold and the tier';

CREATE VIEW evmgmt.series_severity AS
SELECT * FROM evmgmt.classify_series();
COMMENT ON VIEW evmgmt.series_severity IS 'Current classification of every (site, queue, pool) interval series over the last day of complete intervals';

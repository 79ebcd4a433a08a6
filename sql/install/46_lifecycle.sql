-- The event lifecycle: the transition table (in C, src/state_machine.c), the
-- lifecycle functions, the post-resolution analysis check and the SLA clocks.
-- The guard on event tables is in 40_events.sql, business time in
-- 45_business_time.sql, the grants in 90_privileges.sql.
-- Reference: docs/lifecycle.md.

------------------------------------------------------------------------------
-- The transition table
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

CREATE FUNCTION evmgmt.reclassify_type(event_id bigint, event_type evmgmt.event_type, subtype text, reason text)
RETURNS evmgmt.event_type
AS 'MODULE_PATHNAME', 'evmgmt_reclassify_type'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.reclassify_type(bigint, evmgmt.event_type, text, text) IS 'Changes the type (and subtype, NULL for none) of an open event with a reason, such as the type detection suggested: an event-level reclassified row in the timeline with from_type/to_type, audited; detection keeps reusing the event for series of the old type';

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

CREATE FUNCTION evmgmt.avert_pool(event_id bigint, pool evmgmt.pool, reason text)
RETURNS evmgmt.event_state
AS 'MODULE_PATHNAME', 'evmgmt_avert_pool'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION evmgmt.avert_pool(bigint, evmgmt.pool, text) IS 'Resolves one pool condition of a predicted event whose breach was prevented before it began (from classified, diagnosed or responding), with what prevented it';

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

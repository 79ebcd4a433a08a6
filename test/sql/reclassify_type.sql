-- A responder corrects the type detection suggested (reclassify_type):
-- checked arguments, an event-level timeline row, the audit trail, and
-- detection that keeps reusing the retyped event for series of the old type.
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP EXTENSION evmgmt CASCADE;
CREATE EXTENSION evmgmt;
SET TimeZone = 'UTC';
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Round the clock');
INSERT INTO evmgmt.calendar_hours SELECT 'std', d, '00:00', '24:00' FROM generate_series(1, 7) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('S1', 'acme', 'Site one', 'UTC', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('qcap', 'acme', 'Capacity');

-- four live 15-minute intervals of one pool below 30 % with staffed 30 of 40 scheduled: a capacity breach
SELECT date_trunc('hour', now()) + floor(extract(minute FROM now()) / 15) * interval '15 minutes' - interval '60 minutes' AS t0 \gset
CREATE FUNCTION pg_temp.load(p text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled, answered_in_threshold,
									  threshold_seconds, aht_seconds, staffed, scheduled, forecast_offered, forecast_aht)
	SELECT 'S1', 'qcap', p::evmgmt.pool, current_setting('test.t0')::timestamptz + k * interval '15 minutes', 15, 100, 100,
		   CASE WHEN k >= 1 THEN 25 ELSE 90 END, 20, 300, CASE WHEN k >= 1 THEN 30 ELSE 40 END, 40, 100, 300
	FROM generate_series(0, 3) k $$;
SELECT set_config('test.t0', :'t0', false) IS NOT NULL AS t0_set;
SELECT pg_temp.load('spec');
SELECT event_id AS ev, event_type, subtype, detection_source FROM evmgmt.event \gset
SELECT :'event_type' AS suggested_type, :'subtype' AS suggested_subtype, :'detection_source' AS source;

-- the responder knows better: a process change inflated handle time
SELECT evmgmt.reclassify_type(:ev, 'process', 'aht_inflation', 'the new knowledge base doubled wrap-up');
SELECT event_type, subtype FROM evmgmt.event WHERE event_id = :ev;
SELECT action, pool, reason, details FROM evmgmt.event_timeline WHERE event_id = :ev AND action = 'reclassified';
SELECT action, old_row ->> 'event_type' AS old_type, new_row ->> 'event_type' AS new_type, new_row ->> 'subtype' AS new_subtype
FROM evmgmt.audit_log WHERE table_name = 'event' AND action = 'UPDATE' AND new_row ->> 'event_type' = 'process';

-- another pool of the same queue breaching the same way joins that event
-- instead of opening a second capacity event
SELECT pg_temp.load('collab');
SELECT count(DISTINCT e.event_id) AS events, max(e.event_type::text) AS event_type, string_agg(pc.pool::text, ',' ORDER BY pc.pool) AS pools
FROM evmgmt.event e JOIN evmgmt.pool_condition pc USING (event_id);

-- what it refuses
SELECT evmgmt.reclassify_type(:ev, 'process', 'aht_inflation', 'again');
SELECT evmgmt.reclassify_type(:ev, 'demand', 'aht_inflation', 'a subtype of another type');
SELECT evmgmt.reclassify_type(:ev, 'demand', NULL, NULL);
SELECT evmgmt.reclassify_type(:ev, 'demand', NULL, '  ');
SELECT evmgmt.reclassify_type(:ev, NULL, NULL, 'no type');
SELECT evmgmt.reclassify_type(-1, 'demand', NULL, 'no such event');
-- the subtype alone may change, and may be cleared
SELECT evmgmt.reclassify_type(:ev, 'process', NULL, 'not sure which process yet');
SELECT event_type, subtype FROM evmgmt.event WHERE event_id = :ev;
-- a cancelled event keeps its type
SELECT evmgmt.cancel_event(:ev, 'false alarm');
SELECT evmgmt.reclassify_type(:ev, 'demand', NULL, 'too late');
-- responders may call it; readers may not
SELECT has_function_privilege('evmgmt_responder', 'evmgmt.reclassify_type(bigint, evmgmt.event_type, text, text)', 'EXECUTE') AS responder,
	   has_function_privilege('evmgmt_reader', 'evmgmt.reclassify_type(bigint, evmgmt.event_type, text, text)', 'EXECUTE') AS reader;

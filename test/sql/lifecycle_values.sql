-- Values through the lifecycle functions: ids returned after SPI_finish()
-- (log_response, add_action_item) are exactly the stored ones, also beyond
-- 32 bits; the JSON details built in C equal what jsonb_build_object makes
-- of the same values (time zones with odd offsets, fractional seconds,
-- characters JSON escapes); reopen_event's pool list with NULL elements.
\set VERBOSITY terse
DROP EXTENSION evmgmt;
CREATE EXTENSION evmgmt;
SET timezone = 'America/St_Johns';

INSERT INTO evmgmt.operation VALUES ('acme', 'Acme');
INSERT INTO evmgmt.calendar VALUES ('de', 'Germany office hours');
INSERT INTO evmgmt.calendar_hours SELECT 'de', d, '09:00', '17:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('BER', 'acme', 'Berlin', 'Europe/Berlin', 'de');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('sales', 'acme', 'Sales');

-- ids beyond 32 bits
ALTER TABLE evmgmt.event ALTER COLUMN event_id RESTART WITH 5000000001;
ALTER TABLE evmgmt.response_action ALTER COLUMN action_id RESTART WITH 7000000001;
ALTER TABLE evmgmt.action_item ALTER COLUMN item_id RESTART WITH 9000000001;

------------------------------------------------------------------------------
-- open_event: the returned id and the details of its timeline row
------------------------------------------------------------------------------
SELECT evmgmt.open_event('capacity', 'BER', '{spec,aa}', 'rule', 'Title with "quotes", \backslash and ü',
						 '2025-06-02 10:00:00.123456+02', 'sales') AS e \gset
SELECT :e AS event_id, (SELECT max(event_id) FROM evmgmt.event) = :e AS is_the_row;
SELECT t.details,
	   t.details = jsonb_build_object('pools', to_jsonb('{spec,aa}'::evmgmt.pool[]), 'detection_source', 'rule',
									  'detected_at', e.detected_at) AS as_sql_builds_it,
	   e.detected_at = '2025-06-02 10:00:00.123456+02' AS detected_at_exact
FROM evmgmt.event_timeline t JOIN evmgmt.event e USING (event_id)
WHERE t.event_id = :e AND t.action = 'opened';
SELECT pool, state FROM evmgmt.pool_condition WHERE event_id = :e ORDER BY pool;

------------------------------------------------------------------------------
-- classify, diagnose (strings JSON escapes, a NULL left out)
------------------------------------------------------------------------------
SELECT evmgmt.classify_pool(:e, 'spec', 'sev3'), evmgmt.classify_pool(:e, 'aa', 'sev3');
SELECT evmgmt.reclassify_pool(:e, 'spec', 'sev2', 'worse');
SELECT t.details = jsonb_build_object('response_due', pc.response_due, 'resolution_due', pc.resolution_due,
									  'direction', 'up') AS reclassified_details
FROM evmgmt.event_timeline t JOIN evmgmt.pool_condition pc USING (event_id, pool)
WHERE t.event_id = :e AND t.action = 'reclassified';
SELECT evmgmt.diagnose_pool(:e, 'spec', 'people', 'schedule_adjustment', E'"quoted"\ttab\\ and \u00e9');
SELECT evmgmt.diagnose_pool(:e, 'aa', 'technology', 'it_escalation');
SELECT pool, details,
	   details = jsonb_strip_nulls(jsonb_build_object('cause_category', pc.cause_category,
													  'lever_class', pc.lever_class,
													  'proximate_cause', pc.proximate_cause)) AS as_sql_builds_it
FROM evmgmt.event_timeline t JOIN evmgmt.pool_condition pc USING (event_id, pool)
WHERE t.event_id = :e AND t.action = 'diagnosed' ORDER BY pool;

------------------------------------------------------------------------------
-- log_response returns the action_id it stored, every time
------------------------------------------------------------------------------
SELECT evmgmt.log_response(:e, 'spec', 'overtime', 'first lever') AS a1 \gset
SELECT :a1 AS action_id, action_id = :a1 AS is_the_row FROM evmgmt.response_action WHERE note = 'first lever';
SELECT evmgmt.log_response(:e, 'aa', 'overflow_channels') AS a2 \gset
SELECT :a2 - :a1 AS next_id;
-- 200 more responses: each returned id is the id of the row it wrote
CREATE TEMP TABLE returned AS
SELECT i, evmgmt.log_response(:e, 'spec', 'routing_change', 'lever ' || i) AS action_id
FROM generate_series(1, 200) i;
SELECT count(*) AS responses,
	   count(*) FILTER (WHERE r.action_id = a.action_id) AS ids_match
FROM returned r JOIN evmgmt.response_action a ON a.note = 'lever ' || r.i;
SELECT count(*) AS timeline_rows,
	   count(*) FILTER (WHERE t.details = jsonb_build_object('action_id', a.action_id, 'lever_class', l.lever_class))
		   AS details_match
FROM evmgmt.event_timeline t
JOIN evmgmt.response_action a ON a.action_id = (t.details ->> 'action_id')::bigint
JOIN evmgmt.lever l ON l.lever = a.lever
WHERE t.event_id = :e AND t.action = 'responded';

------------------------------------------------------------------------------
-- add_action_item returns the item_id it stored; complete_action_item
------------------------------------------------------------------------------
SELECT evmgmt.resolve_event(:e, 'recovered');
SELECT evmgmt.record_analysis(:e, 'Attrition', 'Hire');
SELECT evmgmt.add_action_item(:e, 'Open requisitions', 'Site WFM', '2025-08-01') AS i1 \gset
SELECT :i1 AS item_id, item_id = :i1 AS is_the_row FROM evmgmt.action_item WHERE description = 'Open requisitions';
CREATE TEMP TABLE items AS
SELECT i, evmgmt.add_action_item(:e, 'item ' || i, 'owner ' || i, DATE '2025-08-01' + i) AS item_id
FROM generate_series(1, 50) i;
SELECT count(*) AS items, count(*) FILTER (WHERE r.item_id = a.item_id AND a.owner = 'owner ' || r.i) AS ids_match
FROM items r JOIN evmgmt.action_item a ON a.description = 'item ' || r.i;
SELECT evmgmt.complete_action_item(:i1);
SELECT reason, details = jsonb_build_object('action_item_done', :i1::bigint) AS done_details
FROM evmgmt.event_timeline WHERE event_id = :e AND action = 'note';
SELECT evmgmt.record_analysis(:e, 'Attrition in sales', 'Hire and cross-skill');
SELECT details FROM evmgmt.event_timeline WHERE event_id = :e AND action = 'analysis' AND details ? 'analysis'
ORDER BY entry_id;

------------------------------------------------------------------------------
-- reopen_event with a pool list: NULL elements match no pool
------------------------------------------------------------------------------
SELECT evmgmt.close_event(:e);
SELECT evmgmt.reopen_event(:e, 'back', '{aa,NULL}');
SELECT pool, state FROM evmgmt.pool_condition WHERE event_id = :e ORDER BY pool;
SELECT evmgmt.log_response(:e, 'aa', 'overflow_channels') > :a2 AS logged, evmgmt.resolve_pool(:e, 'aa');
SELECT evmgmt.close_event(:e);
SELECT evmgmt.reopen_event(:e, 'back again', '{NULL}');
SELECT evmgmt.reopen_event(:e, 'back again', '{}');

------------------------------------------------------------------------------
-- recurrence note: the window as to_jsonb(interval) writes it
------------------------------------------------------------------------------
SET evmgmt.recurrence_window = '90min';
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'first', now() - interval '1 hour', 'sales') AS r1 \gset
SELECT evmgmt.classify_pool(:r1, 'spec', 'sev3'), evmgmt.diagnose_pool(:r1, 'spec', 'people', 'schedule_adjustment'),
	   evmgmt.log_response(:r1, 'spec', 'overtime') > 0, evmgmt.resolve_pool(:r1, 'spec'), evmgmt.close_event(:r1);
SELECT evmgmt.open_event('capacity', 'BER', '{spec}', 'rule', 'again', now() - interval '10 minutes', 'sales') AS r2 \gset
SELECT evmgmt.classify_pool(:r2, 'spec', 'sev3'), evmgmt.diagnose_pool(:r2, 'spec', 'people', 'schedule_adjustment');
SELECT recurrence_of = :r1 AS linked FROM evmgmt.event WHERE event_id = :r2;
SELECT reason = 'recurrence of event ' || :r1 AS reason_names_it,
	   details = jsonb_build_object('recurrence_of', :r1::bigint, 'cause_category', 'people',
									'recurrence_window', '90 minutes'::interval) AS as_sql_builds_it,
	   details ->> 'recurrence_window' AS window
FROM evmgmt.event_timeline WHERE event_id = :r2 AND action = 'note';
RESET evmgmt.recurrence_window;

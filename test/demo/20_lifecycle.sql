-- test/demo/20_lifecycle.sql: one multi-pool event through the whole protocol.
--
-- An AI integration failure takes the autonomous-AI pool (aa) down (sev1) and
-- spills contacts onto the specialists (spec), whose service level slips
-- (sev3).  The script walks detection, classification from the interval
-- signal, diagnosis, response levers, resolution, the post-resolution
-- analysis and closure, and prints the clocks and the event's timeline.
-- Self-contained: it adds its own operation, site and queue (idempotent), so
-- it runs on an empty database or after the sample data.
--   psql -X -d DB -f test/demo/20_lifecycle.sql
\set ON_ERROR_STOP on
\pset pager off

INSERT INTO evmgmt.operation VALUES ('northwind', 'Northwind Care') ON CONFLICT DO NOTHING;
INSERT INTO evmgmt.calendar VALUES ('northwind-de', 'Northwind Germany office hours') ON CONFLICT DO NOTHING;
INSERT INTO evmgmt.calendar_hours SELECT 'northwind-de', d, '08:00', '18:00' FROM generate_series(1, 5) d
WHERE NOT EXISTS (SELECT FROM evmgmt.calendar_hours WHERE calendar_id = 'northwind-de');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id)
VALUES ('NW-BER', 'northwind', 'Northwind Berlin', 'Europe/Berlin', 'northwind-de') ON CONFLICT DO NOTHING;
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('nw-orders', 'northwind', 'Orders')
ON CONFLICT DO NOTHING;

-- Detection: the last 45 minutes of interval data (a rule detector fired two
-- minutes ago).  aa answers nothing for
-- the last two intervals; spec answers half of its calls in threshold.
SELECT date_trunc('hour', now()) + floor(date_part('minute', now()) / 15) * interval '15 minutes' AS q_end \gset
INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, offered, handled,
								  abandoned, answered_in_threshold, threshold_seconds)
SELECT 'NW-BER', 'nw-orders', p.pool, :'q_end'::timestamptz - i * interval '15 minutes', 15,
	   p.offered, p.handled, p.offered - p.handled, p.answered, 20
FROM (VALUES ('aa'::evmgmt.pool, 1, 400, 380, 370), ('aa', 2, 400, 120, 0), ('aa', 3, 400, 0, 0),
			 ('spec', 1, 100, 98, 50), ('spec', 2, 100, 95, 50), ('spec', 3, 100, 92, 50)) AS p(pool, k, offered, handled, answered)
CROSS JOIN LATERAL (SELECT 4 - p.k AS i) s;

\echo
\echo == What the interval signal says (evmgmt.classify_series)
SELECT pool, service_level AS latest_sl, minutes_below_sev1 AS outage_min, minutes_below_sev3 AS below_60_min, severity
FROM evmgmt.classify_series(:'q_end'::timestamptz, '1 hour')
WHERE site_id = 'NW-BER' ORDER BY pool;

\echo == Detection: the event is opened with one condition per pool
SELECT evmgmt.open_event('system', 'NW-BER', '{aa,spec}', 'rule', 'AI agents cannot reach the order system',
						 now() - interval '2 minutes', 'nw-orders', 'integration_failure',
						 'Autonomous AI pool fails every order lookup; contacts deflect to specialists') AS e \gset

\echo == Assessment and classification: each pool gets its own tier and clocks
SELECT evmgmt.classify_pool(:e, 'aa', 'sev1') AS aa, evmgmt.classify_pool(:e, 'spec', 'sev3') AS spec;
SELECT event_id, floor_severity, state, severities FROM evmgmt.event_rollup WHERE event_id = :e;
SELECT pool, severity, state, response_due, response_time_left, response_breached, resolution_due, resolution_time_left
FROM evmgmt.open_event_clocks WHERE event_id = :e ORDER BY pool;

\echo == A move out of order is refused, and the hint lists the legal next states
SELECT set_config('demo.event_id', :'e', false) \gset
DO $$
DECLARE
	v_hint text;
BEGIN
	PERFORM evmgmt.log_response(current_setting('demo.event_id')::bigint, 'aa', 'model_rollback');
EXCEPTION WHEN object_not_in_prerequisite_state THEN
	GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
	RAISE NOTICE E'refused (%): %\n%', SQLSTATE, SQLERRM, v_hint;
END
$$;

\echo == Fault diagnosis per pool (fishbone cause category and lever class)
SELECT evmgmt.diagnose_pool(:e, 'aa', 'technology', 'ai_engineering', 'order-system API token expired') AS aa,
	   evmgmt.diagnose_pool(:e, 'spec', 'demand', 'schedule_adjustment', 'deflected AI contacts flood the specialists') AS spec;

\echo == Response: levers from the catalogue allowed for each pool and type
SELECT evmgmt.log_response(:e, 'aa', 'deflect_to_humans', 'AI intake paused, callers routed to humans') AS action_id
UNION ALL SELECT evmgmt.log_response(:e, 'spec', 'cancel_offline_activities', 'coaching and training cancelled')
UNION ALL SELECT evmgmt.log_response(:e, 'spec', 'overtime', '12 agents accepted one hour overtime')
UNION ALL SELECT evmgmt.log_response(:e, 'aa', 'it_escalation', 'token rotated by the integration team');

\echo == Resolution, pool by pool
SELECT evmgmt.resolve_pool(:e, 'aa', 'token rotated, AI intake resumed') AS aa;
SELECT evmgmt.resolve_pool(:e, 'spec', 'service level back above 80%') AS spec;
SELECT event_id, floor_severity, state FROM evmgmt.event_rollup WHERE event_id = :e;

\echo == A sev1 cannot close without a complete post-resolution analysis
SELECT evmgmt.analysis_gaps(:e) AS missing;
SELECT evmgmt.record_analysis(:e, 'API token of the order system expired; no rotation reminder',
							  'Automate token rotation; alert 14 days before expiry',
							  '{"no expiry monitoring","AI intake has no fallback message"}',
							  'No detector on AI integration error rate');
SELECT evmgmt.add_action_item(:e, 'Automate order-system token rotation', 'AI platform team', current_date + 14) AS item_1,
	   evmgmt.add_action_item(:e, 'Detector on AI integration error rate', 'ROC analytics', current_date + 7) AS item_2;
SELECT evmgmt.record_objective_impact(:e, o.objective, o.direction, o.magnitude, o.unit, o.note)
FROM (VALUES ('service_level'::evmgmt.objective, 'degraded', -38::float8, 'points SL', 'aa at 0% for 30 minutes'),
			 ('cost', 'degraded', 1450, 'EUR', 'overtime'),
			 ('customer_experience', 'degraded', NULL, NULL, 'order lookups failed'),
			 ('agent_experience', 'degraded', NULL, NULL, 'coaching cancelled, overtime'),
			 ('business_value', 'neutral', NULL, NULL, 'orders recovered by specialists')) AS o(objective, direction, magnitude, unit, note);
SELECT evmgmt.analysis_gaps(:e) AS missing, evmgmt.analysis_complete(:e) AS complete;

\echo == Closure
SELECT evmgmt.close_event(:e);
SELECT event_id, floor_severity, state, pools, severities FROM evmgmt.event_rollup WHERE event_id = :e;

\echo == The event timeline
SELECT to_char(t.at, 'HH24:MI:SS') AS at, t.actor, COALESCE(t.pool::text, '(event)') AS pool, t.action,
	   CASE WHEN t.from_state IS NOT NULL OR t.to_state IS NOT NULL
			THEN COALESCE(t.from_state::text, '') || ' -> ' || COALESCE(t.to_state::text, '') END AS transition,
	   CASE WHEN t.to_severity IS NOT NULL THEN COALESCE(t.from_severity::text || ' -> ', '') || t.to_severity END AS severity,
	   t.lever, left(t.reason, 50) AS reason
FROM evmgmt.event_timeline t WHERE t.event_id = :e ORDER BY t.entry_id;

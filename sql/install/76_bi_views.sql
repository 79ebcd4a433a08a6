-- Views for BI tools (Grafana, Metabase, Power BI, psql): open events with
-- their clocks, the full timeline of an event, notification delivery and
-- interval service level with the Power-of-One figures.  Column names are a
-- contract (docs/views.md); contact data is masked unless the reader is a
-- responder.  Each view is written so that the usual filters (open events,
-- one event_id, a time range) reach an index (test/integration/bi_plans.sh).
-- Row-level security by site applies to them as to every view
-- (86_site_scope.sql).

-- Contact data as the caller may see it: real for responders, masked for
-- everybody else.
CREATE FUNCTION evmgmt.visible_address(address text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN address
			ELSE evmgmt.mask_address(address) END;
COMMENT ON FUNCTION evmgmt.visible_address(text) IS 'A phone number or e-mail address as the caller may see it: unmasked for evmgmt_responder members, masked otherwise';

-- One row per live pool condition of every open event.
CREATE VIEW evmgmt.bi_open_events AS
SELECT e.event_id, e.operation_id, e.site_id, e.queue_id, e.event_type, e.subtype, e.title, e.detection_source,
	   e.detected_at, e.opened_at, pg_catalog.now() - e.detected_at AS age,
	   f.floor_severity, pc.pool, pc.severity, pc.state,
	   pc.response_due, pc.first_response_at,
	   CASE WHEN pc.first_response_at IS NULL AND pg_catalog.now() < pc.response_due
			THEN pc.response_due - pg_catalog.now() END AS response_time_left,
	   COALESCE(pc.first_response_at, pg_catalog.now()) > pc.response_due AS response_breached,
	   pc.resolution_due, pc.resolved_at,
	   CASE WHEN pc.resolved_at IS NULL AND pg_catalog.now() < pc.resolution_due
			THEN pc.resolution_due - pg_catalog.now() END AS resolution_time_left,
	   COALESCE(pc.resolved_at, pg_catalog.now()) > pc.resolution_due AS resolution_breached
FROM evmgmt.event e
-- each open event probes its own conditions by primary key (OFFSET 0 keeps
-- the planner from turning this into a hash join over every condition)
CROSS JOIN LATERAL (SELECT x.* FROM evmgmt.pool_condition x
					WHERE x.event_id = e.event_id AND x.state <> 'cancelled' OFFSET 0) pc
CROSS JOIN LATERAL (SELECT pg_catalog.min(x.severity) AS floor_severity FROM evmgmt.pool_condition x
					WHERE x.event_id = e.event_id AND x.state <> 'cancelled') f
WHERE e.closed_at IS NULL AND e.cancelled_at IS NULL;
COMMENT ON VIEW evmgmt.bi_open_events IS 'One row per live pool condition of every open event: floor and pool severity, state, age, response and resolution clocks (time left, breached) as of now()';

-- Everything that happened to an event, in one stream: lifecycle entries
-- (transitions, reclassifications, responses, acknowledgments, status
-- updates, notes), every escalation step per recipient, every acknowledgment
-- and every logged response lever.
CREATE VIEW evmgmt.bi_event_timeline AS
SELECT t.event_id, t.at,
	   CASE WHEN t.actor LIKE 'rule:%' THEN 'automatic' ELSE 'lifecycle' END::text AS source, t.pool, t.action, t.actor,
	   NULL::text AS channel, NULL::bigint AS contact_id, NULL::text AS contact_name, NULL::text AS recipient,
	   t.from_state, t.to_state, t.from_severity, t.to_severity, t.lever, t.reason AS detail
FROM evmgmt.event_timeline t
UNION ALL
SELECT e.event_id, r.fired_at, 'escalation_step', e.pool, 'step ' || r.step_no || CASE WHEN r.retry_no > 0 THEN ' retry ' || r.retry_no ELSE '' END,
	   'escalation ' || r.escalation_id, r.channel::text, r.contact_id, c.name, evmgmt.visible_address(r.recipient),
	   NULL, NULL, NULL, NULL, NULL, r.outcome
FROM evmgmt.escalation e
JOIN evmgmt.escalation_step_run r ON r.escalation_id = e.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = r.contact_id
UNION ALL
SELECT e.event_id, k.acked_at, 'acknowledgment', e.pool, 'acknowledged', c.role_name,
	   k.channel, k.contact_id, c.name, k.source, NULL, NULL, NULL, NULL, NULL, k.note
FROM evmgmt.escalation e
JOIN evmgmt.escalation_ack k ON k.escalation_id = e.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = k.contact_id
UNION ALL
SELECT a.event_id, a.activated_at, 'response', a.pool, 'lever', a.actor,
	   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, a.lever, a.note
FROM evmgmt.response_action a;
COMMENT ON VIEW evmgmt.bi_event_timeline IS 'The full timeline of every event: lifecycle entries and status updates (source lifecycle), what detection, prediction and response rules did (source automatic), escalation steps per recipient (address masked for readers), acknowledgments with their channel (sms, voice, push, email, webhook, sql) and response levers; filter on event_id';

-- One row per notification: who (masked), how, what became of it.
CREATE VIEW evmgmt.bi_notification_delivery AS
SELECT n.notification_id, n.event_id, n.escalation_id, n.kind, n.channel, n.provider_id,
	   n.contact_id, c.name AS contact_name, evmgmt.visible_address(n.recipient) AS recipient,
	   n.state AS outcome, n.attempts, n.created_at, n.sent_at, n.sent_at - n.created_at AS time_to_send,
	   n.last_status, n.last_error IS NOT NULL AS failed_attempts
FROM evmgmt.notification n
LEFT JOIN evmgmt.contact c ON c.contact_id = n.contact_id;
COMMENT ON VIEW evmgmt.bi_notification_delivery IS 'Every notification: event, escalation, kind, channel, recipient (masked for readers), outcome (pending, sending, retry, sent, dead, cancelled), attempts, time to send, last provider status (error texts are for admins: delivery_attempt)';

-- Interval service level and what one agent more or less would have done.
-- Traffic = offered x AHT / interval length; the Erlang figures are at the
-- staffed count rounded down, and at one agent fewer and more.
CREATE VIEW evmgmt.bi_interval_service_level AS
SELECT s.site_id, s.queue_id, s.pool, s.interval_start, s.interval_minutes,
	   s.offered, s.handled, s.abandoned, s.answered_in_threshold, s.threshold_seconds,
	   evmgmt.interval_service_level(s.answered_in_threshold, s.offered) AS service_level,
	   q.sl_target, s.aht_seconds, s.staffed, s.scheduled, s.forecast_offered,
	   p.traffic, p.agents,
	   CASE WHEN p.agents > 1 THEN evmgmt.service_level(p.traffic, p.agents - 1, s.aht_seconds, s.threshold_seconds) END AS erlang_sl_minus_one,
	   CASE WHEN p.agents >= 1 THEN evmgmt.service_level(p.traffic, p.agents, s.aht_seconds, s.threshold_seconds) END AS erlang_sl,
	   CASE WHEN p.agents >= 0 AND p.agents < 1000000 THEN evmgmt.service_level(p.traffic, p.agents + 1, s.aht_seconds, s.threshold_seconds) END AS erlang_sl_plus_one,
	   CASE WHEN p.agents >= 0 AND p.agents < 1000000 THEN evmgmt.asa(p.traffic, p.agents + 1, s.aht_seconds) END AS erlang_asa_plus_one
FROM evmgmt.interval_stat s
JOIN evmgmt.queue q ON q.queue_id = s.queue_id
CROSS JOIN LATERAL (SELECT CASE WHEN s.aht_seconds IS NOT NULL
								THEN s.offered * s.aht_seconds::float8 / (s.interval_minutes * 60.0) END AS traffic,
						   CASE WHEN s.staffed IS NOT NULL AND s.staffed < 1000000
								THEN pg_catalog.floor(s.staffed)::integer END AS agents) p;
COMMENT ON VIEW evmgmt.bi_interval_service_level IS 'Interval statistics with the measured service level, the queue target, the offered traffic in Erlangs and the Erlang C service level at the staffed count and at one agent fewer and more (Power of One); filter on interval_start';

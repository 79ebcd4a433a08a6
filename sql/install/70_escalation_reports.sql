-- Reporting views of escalations for BI tools.

-- One row per escalation for BI tools: where it stands.
CREATE VIEW evmgmt.escalation_status AS
SELECT e.escalation_id, e.event_id, e.pool, ev.site_id, e.plan_id, e.plan_snapshot ->> 'name' AS plan_name,
	   e.start_reason, e.state, e.started_at, e.cycle,
	   l.step_no AS current_step, l.fired_at AS current_step_at,
	   GREATEST(e.started_at, l.fired_at, e.acknowledged_at, e.ended_at, a.last_ack_at) AS last_update,
	   e.next_step_no AS next_step, NULLIF(e.next_retry_no, 0) AS next_voice_retry, e.next_due_at,
	   COALESCE(p.contacts_paged, 0) AS contacts_paged, COALESCE(a.acks, 0) AS acks,
	   e.acknowledged_at, e.acknowledged_by, c.name AS acknowledged_by_name, e.ack_note,
	   e.ended_at, e.end_reason
FROM evmgmt.escalation e
JOIN evmgmt.event ev ON ev.event_id = e.event_id
LEFT JOIN evmgmt.contact c ON c.contact_id = e.acknowledged_by
LEFT JOIN LATERAL (SELECT r.step_no, r.fired_at FROM evmgmt.escalation_step_run r
				   WHERE r.escalation_id = e.escalation_id AND r.outcome <> 'held'
				   ORDER BY r.run_id DESC LIMIT 1) l ON true
LEFT JOIN LATERAL (SELECT pg_catalog.count(DISTINCT r.contact_id) AS contacts_paged FROM evmgmt.escalation_step_run r
				   WHERE r.escalation_id = e.escalation_id AND r.outcome IN ('queued', 'bundled')) p ON true
LEFT JOIN LATERAL (SELECT pg_catalog.count(*) AS acks, pg_catalog.max(k.acked_at) AS last_ack_at FROM evmgmt.escalation_ack k
				   WHERE k.escalation_id = e.escalation_id) a ON true;
COMMENT ON VIEW evmgmt.escalation_status IS 'One row per escalation: plan, state, current (last fired) step, last update, next due step and time, acknowledgment (when, by whom)';

-- One row per step firing and recipient for BI tools: what happened.
CREATE VIEW evmgmt.escalation_history AS
SELECT r.run_id, r.escalation_id, e.event_id, e.pool, e.plan_id, e.start_reason, r.cycle, r.step_no, r.retry_no,
	   r.scheduled_at, r.due_at, r.fired_at, r.fired_at - r.due_at AS late_by,
	   r.channel, r.contact_id, c.name AS contact_name,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN r.recipient
			ELSE evmgmt.mask_address(r.recipient) END AS recipient,
	   r.outcome, r.detail, r.notification_id,
	   n.kind AS notification_kind, n.state AS delivery_state, n.attempts AS delivery_attempts, n.sent_at,
	   n.last_status AS delivery_status,
	   CASE WHEN pg_catalog.pg_has_role('evmgmt_admin', 'USAGE') THEN n.last_error
			WHEN pg_catalog.pg_has_role('evmgmt_responder', 'USAGE') THEN evmgmt.redact_text(n.last_error, false)
			WHEN n.last_error IS NOT NULL THEN '(hidden)' END AS delivery_error,
	   d.finished_at AS last_attempt_at, d.finished_at - d.started_at AS last_attempt_latency,
	   k.acked_at AS recipient_acknowledged_at,
	   e.acknowledged_at, ac.name AS acknowledged_by,
	   ka.channel AS acknowledged_via,
	   CASE WHEN e.state = 'acknowledged' THEN 'acknowledged by ' || ac.name || ' via ' || COALESCE(ka.channel, 'sql') || ' at '
			|| pg_catalog.to_char(e.acknowledged_at AT TIME ZONE ac.time_zone, 'HH24:MI:SS') END AS acknowledgment
FROM evmgmt.escalation_step_run r
JOIN evmgmt.escalation e ON e.escalation_id = r.escalation_id
LEFT JOIN evmgmt.contact c ON c.contact_id = r.contact_id
LEFT JOIN evmgmt.notification n ON n.notification_id = r.notification_id
LEFT JOIN LATERAL (SELECT x.started_at, x.finished_at FROM evmgmt.delivery_attempt x
				   WHERE x.notification_id = r.notification_id ORDER BY x.attempt_no DESC LIMIT 1) d ON true
LEFT JOIN evmgmt.escalation_ack k ON k.escalation_id = r.escalation_id AND k.contact_id = r.contact_id
LEFT JOIN evmgmt.contact ac ON ac.contact_id = e.acknowledged_by
LEFT JOIN evmgmt.escalation_ack ka ON ka.escalation_id = e.escalation_id AND ka.contact_id = e.acknowledged_by;
COMMENT ON VIEW evmgmt.escalation_history IS 'Every step an escalation fired, per recipient: scheduled, due and fired time, late_by, channel, recipient (masked unless the reader is a responder), typed outcome, delivery result (the error raw for admins, with credentials scrubbed for responders, hidden from readers), acknowledgment (who, the channel it came by, when in the acknowledger''s time zone)';

\echo
\echo '== The severity matrix in force for operation acme (sev3 calibrated to 65%)'
SELECT severity, sl_threshold, sustain_minutes, response_target, resolution_target, business_time, status_cadence, calibrated
FROM evmgmt.effective_severity_policy WHERE operation_id = 'acme' ORDER BY severity;

\echo '== Who hears about each tier'
SELECT severity, string_agg(audience || CASE WHEN on_status THEN ' (+status)' ELSE '' END, ', ' ORDER BY audience) AS footprint
FROM evmgmt.effective_notification_footprint WHERE operation_id = 'acme' GROUP BY severity ORDER BY severity;

\echo '== Billing at Manila, 2 March 2026, hourly service level per pool (the AI integration failed at 14:00)'
SELECT to_char(date_trunc('hour', interval_start AT TIME ZONE 'Asia/Manila'), 'HH24:MI') AS hour,
	   round(100.0 * sum(answered_in_threshold) FILTER (WHERE pool = 'aa') / nullif(sum(offered) FILTER (WHERE pool = 'aa'), 0)) AS aa_sl,
	   round(100.0 * sum(answered_in_threshold) FILTER (WHERE pool = 'collab') / nullif(sum(offered) FILTER (WHERE pool = 'collab'), 0)) AS collab_sl,
	   round(100.0 * sum(answered_in_threshold) FILTER (WHERE pool = 'spec') / nullif(sum(offered) FILTER (WHERE pool = 'spec'), 0)) AS spec_sl,
	   sum(offered) AS offered
FROM evmgmt.interval_stat
WHERE site_id = 'MNL1' AND queue_id = 'billing'
  AND interval_start >= '2026-03-02 11:00+08' AND interval_start < '2026-03-02 18:00+08'
GROUP BY 1 ORDER BY 1;

\echo '== The event, rolled up from its pool conditions'
SELECT event_id, title, event_type, site_id, floor_severity, state, severities FROM evmgmt.event_rollup;
SELECT pool, severity, state, cause_category, lever_class, proximate_cause FROM evmgmt.pool_condition ORDER BY pool;

\echo '== Its timeline (Manila time)'
SELECT to_char(at AT TIME ZONE 'Asia/Manila', 'MM-DD HH24:MI') AS at, actor, action, coalesce(pool::text, '-') AS pool,
	   coalesce(to_severity::text, '') AS severity, coalesce(lever, '') AS lever, coalesce(reason, '') AS reason
FROM evmgmt.event_timeline WHERE event_id = 1 ORDER BY at, entry_id;

\echo '== Post-resolution analysis and its per-objective impact'
SELECT root_cause, array_to_string(contributing_factors, '; ') AS contributing_factors, detector_gap FROM evmgmt.post_resolution_analysis;
SELECT description, owner, due_date, done_at IS NOT NULL AS done FROM evmgmt.action_item ORDER BY due_date;
SELECT objective, direction, magnitude, unit, coalesce(note, '') AS note FROM evmgmt.objective_impact ORDER BY objective;

\echo '== The escalation plan and what happened (addresses masked as readers see them)'
SELECT step_no, delay, channel, target_kind, coalesce(rota_id, group_id, provider_id) AS target FROM evmgmt.escalation_step WHERE plan_id = 'sev1-roc' ORDER BY step_no;
SELECT r.step_no, to_char(r.due_at AT TIME ZONE 'Asia/Manila', 'HH24:MI:SS') AS due, r.fired_at - r.due_at AS late_by, r.channel,
	   evmgmt.mask_address(n.recipient) AS recipient, n.state, n.attempts
FROM evmgmt.escalation_step_run r JOIN evmgmt.notification n USING (notification_id) ORDER BY r.step_no;
SELECT e.state, to_char(e.acknowledged_at AT TIME ZONE 'Asia/Manila', 'HH24:MI') AS acknowledged_at, c.name AS acknowledged_by, e.ack_note
FROM evmgmt.escalation e JOIN evmgmt.contact c ON c.contact_id = e.acknowledged_by;

\echo '== Ingest quarantine: the bad row the ETL sent, kept with its reason'
SELECT row_data ->> 'interval_start' AS interval_start, row_data ->> 'offered' AS offered, row_data ->> 'handled' AS handled, constraint_name
FROM evmgmt.interval_quarantine;

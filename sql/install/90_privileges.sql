-- Least-privilege roles.
--   evmgmt_reader     BI tools and analysts: read events, reports, intervals and
--                     configuration; contact data only masked; no secrets.
--   evmgmt_responder  ROC analysts: what readers have, plus contact details and
--                     the lifecycle and acknowledgment functions.
--   evmgmt_ingest     WFM ETL jobs: load interval rows, nothing else.
--   evmgmt_admin      configuration: everything, secrets included; the audit
--                     trail stays append-only even for it.
-- Event tables are changed only through the lifecycle functions: no role gets
-- INSERT, UPDATE or DELETE on them.

REVOKE ALL ON SCHEMA evmgmt FROM PUBLIC;
GRANT USAGE ON SCHEMA evmgmt TO PUBLIC;

GRANT evmgmt_reader TO evmgmt_responder;
GRANT evmgmt_responder TO evmgmt_admin;

DO $grants$
DECLARE
	t text;
	-- configuration that evmgmt_admin edits directly
	config text[] := ARRAY[
		'operation', 'calendar', 'calendar_hours', 'calendar_holiday', 'site', 'queue',
		'severity_policy', 'notification_footprint', 'event_subtype', 'detection_source',
		'cause_category', 'lever_class', 'lever', 'lever_applicability',
		'contact', 'contact_channel', 'contact_group', 'group_member', 'rota', 'rota_shift', 'audience_group',
		'channel_provider', 'provider_secret', 'escalation_plan', 'escalation_step', 'message_template',
		'detection_policy', 'maintenance_window', 'site_binding',
		'prediction_policy', 'response_rule', 'runbook', 'runbook_step'];
	-- what readers may not see at all (contact data has masked views)
	hidden text[] := ARRAY['contact_channel', 'provider_secret', 'notification', 'audit_log', 'escalation_step_run', 'action_key',
						   'listener_refusal', 'paging_test', 'notification_redacted',
						   -- forecasts are read through forecast_projection, by site
						   'interval_forecast', 'forecast_inbox'];
BEGIN
	FOR t IN SELECT c.relname FROM pg_catalog.pg_class c
			 WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p')
	LOOP
		IF NOT t = ANY (hidden) THEN
			EXECUTE pg_catalog.format('GRANT SELECT ON evmgmt.%I TO evmgmt_reader', t);
		END IF;
		EXECUTE pg_catalog.format('GRANT SELECT ON evmgmt.%I TO evmgmt_admin', t);
		IF t = ANY (config) THEN
			EXECUTE pg_catalog.format('GRANT INSERT, UPDATE, DELETE ON evmgmt.%I TO evmgmt_admin', t);
		END IF;
	END LOOP;
END
$grants$;

-- Responders need real addresses to call people back, and the outbox to see
-- what was sent to whom.  Never the provider secrets.
GRANT SELECT ON evmgmt.contact_channel, evmgmt.notification, evmgmt.escalation_step_run TO evmgmt_responder;
REVOKE SELECT ON evmgmt.provider_secret FROM evmgmt_responder, evmgmt_reader;

-- Ingest loads intervals, directly or through the quarantine inbox.
GRANT INSERT ON evmgmt.interval_stat, evmgmt.interval_inbox, evmgmt.interval_quarantine TO evmgmt_ingest;
GRANT INSERT, DELETE ON evmgmt.interval_stat TO evmgmt_admin;
GRANT DELETE ON evmgmt.interval_quarantine TO evmgmt_admin;

GRANT USAGE ON ALL SEQUENCES IN SCHEMA evmgmt TO evmgmt_admin;

REVOKE ALL ON FUNCTION evmgmt.calibrate_from_defaults(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.calibrate_from_defaults(text) TO evmgmt_admin;
REVOKE ALL ON FUNCTION evmgmt.audit_row(), evmgmt.audit_truncate() FROM PUBLIC;
REVOKE ALL ON FUNCTION evmgmt.refuse_direct_change() FROM PUBLIC;

-- Restored copies: only an admin lets a held copy send.
REVOKE ALL ON FUNCTION evmgmt.resume_sending(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION evmgmt.notification_render_at_commit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.resume_sending(text) TO evmgmt_admin;

-- Workers: the wake-up may be asked for by anybody who writes due work.
REVOKE ALL ON FUNCTION evmgmt.wake_workers(), evmgmt.wake_workers_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.wake_workers() TO evmgmt_admin, evmgmt_responder, evmgmt_ingest;

-- Lifecycle functions (SECURITY DEFINER): responders and admins.
DO $lifecycle$
DECLARE
	f text;
BEGIN
	FOREACH f IN ARRAY ARRAY[
		'evmgmt.open_event(evmgmt.event_type, text, evmgmt.pool[], text, text, timestamptz, text, text, text)',
		'evmgmt.add_pool(bigint, evmgmt.pool, text)',
		'evmgmt.classify_pool(bigint, evmgmt.pool, evmgmt.severity)',
		'evmgmt.reclassify_pool(bigint, evmgmt.pool, evmgmt.severity, text)',
		'evmgmt.reclassify_type(bigint, evmgmt.event_type, text, text)',
		'evmgmt.diagnose_pool(bigint, evmgmt.pool, text, text, text)',
		'evmgmt.log_response(bigint, evmgmt.pool, text, text)',
		'evmgmt.resolve_pool(bigint, evmgmt.pool, text)',
		'evmgmt.resolve_event(bigint, text)',
		'evmgmt.cancel_pool(bigint, evmgmt.pool, text)',
		'evmgmt.cancel_event(bigint, text)',
		'evmgmt.reopen_pool(bigint, evmgmt.pool, text)',
		'evmgmt.reopen_event(bigint, text, evmgmt.pool[])',
		'evmgmt.record_analysis(bigint, text, text, text[], text)',
		'evmgmt.add_action_item(bigint, text, text, date)',
		'evmgmt.complete_action_item(bigint)',
		'evmgmt.record_objective_impact(bigint, evmgmt.objective, text, double precision, text, text)',
		'evmgmt.close_event(bigint)']
	LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO evmgmt_responder, evmgmt_admin', f);
	END LOOP;
END
$lifecycle$;

-- Escalation engine: internals closed; responders acknowledge and post
-- status; admins start, stop and drive.
REVOKE ALL ON FUNCTION
	evmgmt.fill_template_fields(text, jsonb), evmgmt.event_facts(bigint),
	evmgmt.render_message(text, evmgmt.channel, text, jsonb), evmgmt.render_digest(evmgmt.channel, jsonb),
	evmgmt.enqueue_notification(text, evmgmt.channel, text, bigint, text, bigint, bigint, text, text, text, jsonb, timestamptz),
	evmgmt.cancel_unsent(bigint, bigint), evmgmt.notification_drop_stale_retry(),
	evmgmt.notify_contact(text, bigint, evmgmt.channel, bigint, bigint, text, jsonb, timestamptz),
	evmgmt.notify_endpoint(text, text, bigint, bigint, text, jsonb, timestamptz),
	evmgmt.escalation_plan_check(), evmgmt.plan_snapshot(text), evmgmt.step_recipients(jsonb, timestamptz),
	evmgmt.escalation_advance(bigint, timestamptz), evmgmt.escalation_start(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.paged_contacts(bigint[]), evmgmt.escalation_stop(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.acting_contact(bigint), evmgmt.acknowledge(bigint, bigint, text),
	evmgmt.acknowledge_event(bigint, evmgmt.pool, bigint, text),
	evmgmt.audience_members(text, text, text[]), evmgmt.notify_audiences(bigint, text[], text, jsonb, timestamptz, bigint[]),
	evmgmt.footprint_open(bigint, timestamptz), evmgmt.footprint_close(bigint, text, text, timestamptz),
	evmgmt.status_tick(bigint, timestamptz), evmgmt.post_status_update(bigint, text, timestamptz),
	evmgmt.target_timer_sync(), evmgmt.target_timer_fire(bigint, evmgmt.pool, text, timestamptz),
	evmgmt.run_due_work(timestamptz), evmgmt.lock_event(bigint, boolean),
	evmgmt.escalation_start(bigint, evmgmt.pool, text), evmgmt.escalation_stop(bigint, evmgmt.pool, text),
	evmgmt.post_status_update(bigint, text), evmgmt.run_due_work()
FROM PUBLIC;
-- Clock arguments are for tests and the worker (superuser) only: roles get
-- the forms that act at the current time.
GRANT EXECUTE ON FUNCTION evmgmt.acknowledge(bigint, bigint, text), evmgmt.acknowledge_event(bigint, evmgmt.pool, bigint, text),
	evmgmt.post_status_update(bigint, text)
	TO evmgmt_responder;
GRANT EXECUTE ON FUNCTION evmgmt.escalation_start(bigint, evmgmt.pool, text),
	evmgmt.escalation_stop(bigint, evmgmt.pool, text), evmgmt.run_due_work(),
	evmgmt.render_message(text, evmgmt.channel, text, jsonb), evmgmt.event_facts(bigint), evmgmt.fill_template_fields(text, jsonb)
	TO evmgmt_admin;

-- The workers' role (docs/security.md, "The worker's role"): the entry points
-- of due work and of the purge (SECURITY DEFINER, owned by the extension's
-- owner), and what the dispatcher reads and writes directly: the outbox
-- (claim, settle, reclaim: SELECT and UPDATE), delivery attempts (INSERT,
-- and SELECT of the key that ON CONFLICT names),
-- the providers with their secrets (to send and sign), and the escalation
-- state that the outbox trigger notification_drop_stale_retry reads.
-- Nothing else: no DELETE, no event tables, no contacts, no configuration.
REVOKE ALL ON FUNCTION evmgmt.work_failure_record(bigint, text, text, text, timestamptz),
	evmgmt.purge_delivery_history(boolean, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.run_due_work(), evmgmt.purge_delivery_history(boolean, integer, integer)
	TO evmgmt_worker;
GRANT SELECT, UPDATE ON evmgmt.notification TO evmgmt_worker;
GRANT INSERT, SELECT (notification_id, attempt_no) ON evmgmt.delivery_attempt TO evmgmt_worker;
GRANT SELECT ON evmgmt.channel_provider, evmgmt.provider_secret, evmgmt.escalation TO evmgmt_worker;
DO $worker_grants$
BEGIN
	EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %s TO evmgmt_worker',
							  pg_catalog.pg_get_serial_sequence('evmgmt.delivery_attempt', 'attempt_id'));
	-- a database whose owner revoked CONNECT from PUBLIC still gets its worker
	EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO evmgmt_worker', pg_catalog.current_database());
END
$worker_grants$;

-- Failed due work: admins see it and un-park items by deleting their row;
-- responders see it; readers do not (error texts).
REVOKE SELECT ON evmgmt.work_failure FROM evmgmt_reader;
GRANT SELECT ON evmgmt.work_failure TO evmgmt_responder;
GRANT DELETE ON evmgmt.work_failure TO evmgmt_admin;

-- The allow-list check: admins, who configure endpoints.
REVOKE ALL ON FUNCTION evmgmt.outbound_allowed(inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.outbound_allowed(inet) TO evmgmt_admin;

-- Issue 14, redaction: provider responses (delivery_attempt.error,
-- notification.last_error) and provider endpoints and account ids
-- (channel_provider.endpoint, username, settings) are for admins only;
-- readers and responders read every other column, and the *_redacted views.
REVOKE SELECT ON evmgmt.delivery_attempt, evmgmt.channel_provider FROM evmgmt_reader;
GRANT SELECT (attempt_id, notification_id, attempt_no, started_at, finished_at, status_code, outcome, latency)
	ON evmgmt.delivery_attempt TO evmgmt_reader;
GRANT SELECT (provider_id, channel, kind, from_address, active) ON evmgmt.channel_provider TO evmgmt_reader;
REVOKE SELECT ON evmgmt.notification FROM evmgmt_responder;
-- (body and payload carry action tokens: responders read them through
-- notification_redacted, 82_redaction.sql)
GRANT SELECT (notification_id, event_id, escalation_id, kind, channel, provider_id, contact_id, recipient, subject,
			  idempotency_key, state, attempts, created_at, sent_at, last_status, claimed_at, lease_until, next_attempt_at)
	ON evmgmt.notification TO evmgmt_responder;
GRANT SELECT ON evmgmt.notification_redacted TO evmgmt_responder;
REVOKE ALL ON FUNCTION evmgmt.contact_channel_check() FROM PUBLIC;

-- Issue 14, audit: the account audit is for admins.
REVOKE ALL ON FUNCTION evmgmt.report_account_audit(interval, timestamptz), evmgmt.interval_quarantine_stamp() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.report_account_audit(interval, timestamptz) TO evmgmt_admin;

-- Issue 14, ingest: whole lines through interval_inbox_raw, and the loader's
-- own loads and quarantined rows.
GRANT INSERT ON evmgmt.interval_inbox_raw TO evmgmt_ingest;
GRANT SELECT ON evmgmt.my_ingest_load, evmgmt.my_interval_quarantine TO evmgmt_ingest;
REVOKE ALL ON FUNCTION evmgmt.interval_inbox_raw_route() FROM PUBLIC;

-- Interval partitions and detection (25_partitions.sql, 32_detection.sql,
-- 47_detection_actions.sql, 48_feed_health.sql) are SECURITY DEFINER: they
-- create and drop tables and open events.  Partition upkeep by hand is for
-- admins (who may delete intervals anyway); the feed check with its clock
-- argument and the detection internals are reached only through
-- run_due_work and the interval_stat trigger, which run as the extension's
-- owner.
REVOKE ALL ON FUNCTION evmgmt.create_interval_partitions(integer, timestamptz, boolean),
	evmgmt.drop_interval_partitions(interval, timestamptz),
	evmgmt.maintain_interval_partitions(timestamptz),
	evmgmt.check_feed_health(timestamptz),
	evmgmt.detect_loaded(evmgmt.interval_touch[]),
	evmgmt.detect_point(text, text, evmgmt.pool, text, evmgmt.effective_detection_policy, integer[], double precision[],
						evmgmt.detection_row, evmgmt.detection_row[], boolean),
	evmgmt.detection_note(bigint, evmgmt.pool, text, text, jsonb),
	evmgmt.feed_resumed(evmgmt.interval_touch[]) FROM PUBLIC;
-- row-level security by site (86_site_scope.sql): every role whose queries
-- meet a policy asks site_scope(); the exemption is detection's alone; the
-- view helper ran at install; intervals are read through interval_stat,
-- whose policies the default partition read directly would bypass
REVOKE ALL ON FUNCTION evmgmt.site_scope(), evmgmt.site_scope_exempt(boolean),
	evmgmt.restrict_view_to_site_scope(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION evmgmt.event_in_scope(bigint), evmgmt.escalation_in_scope(bigint),
	evmgmt.notification_in_scope(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.site_scope(), evmgmt.event_in_scope(bigint), evmgmt.escalation_in_scope(bigint),
	evmgmt.notification_in_scope(bigint) TO evmgmt_reader, evmgmt_worker, evmgmt_ingest;
REVOKE SELECT ON evmgmt.interval_stat_default FROM evmgmt_reader, evmgmt_admin;
-- their triggers (a trigger function needs no EXECUTE privilege to fire)
REVOKE ALL ON FUNCTION evmgmt.interval_stat_loaded(), evmgmt.interval_inbox_route(), evmgmt.interval_code_in_use() FROM PUBLIC;
-- the capture frame of a load into interval_stat is its statement trigger's
-- business; the CHECK's own function stays executable by every inserter (a
-- CHECK runs with the inserting role's privileges, and only ever notes)
REVOKE ALL ON FUNCTION evmgmt.interval_stat_load_begin(), evmgmt.interval_stat_touched(),
	evmgmt.interval_stat_redelivered(), evmgmt.interval_stat_load_end(),
	evmgmt.stored_by_this_transaction(xid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.create_interval_partitions(integer, timestamptz, boolean),
	evmgmt.drop_interval_partitions(interval, timestamptz),
	evmgmt.maintain_interval_partitions(timestamptz) TO evmgmt_admin;

-- A restored copy holds its sending (06_installation.sql,
-- 69_sending_status.sql): the worker asks why before it dispatches; admins
-- may ask too (readers see it through sending_status).
REVOKE ALL ON FUNCTION evmgmt.sending_hold_reason() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.sending_hold_reason() TO evmgmt_worker, evmgmt_admin;
-- the dispatcher claims and reclaims only this installation's notifications
GRANT SELECT (install_id) ON evmgmt.installation TO evmgmt_worker;

-- the claim's per-page verdict (59_outbox.sql), for the dispatcher only
REVOKE ALL ON FUNCTION evmgmt.claim_verdict(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.claim_verdict(bigint) TO evmgmt_worker;
REVOKE ALL ON FUNCTION evmgmt.claim_digest_verdict(jsonb), evmgmt.digest_without_ended(evmgmt.channel, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.claim_digest_verdict(jsonb), evmgmt.digest_without_ended(evmgmt.channel, jsonb) TO evmgmt_worker;

-- HTTP listener and action tokens (65_action_tokens.sql, 66_listener.sql):
-- the keys are readable by evmgmt_admin only (SELECT above), rotated through
-- rotate_action_key; refused requests are visible to admins (SELECT above);
-- the token and listener functions are for the workers and the listener,
-- not for any role.
REVOKE ALL ON FUNCTION evmgmt.rotate_action_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.rotate_action_key() TO evmgmt_admin;
REVOKE ALL ON FUNCTION evmgmt.current_action_key(), evmgmt.action_token(bigint, bigint, evmgmt.channel, integer, timestamptz),
	evmgmt.read_action_token(text, timestamptz), evmgmt.ack_code(bigint, bigint), evmgmt.action_fields(bigint, bigint, evmgmt.channel),
	evmgmt.acknowledge_via(bigint, bigint, text, text, text), evmgmt.pass_escalation(bigint, bigint, text, text),
	evmgmt.listener_acknowledge(bigint, bigint, text, text, text), evmgmt.listener_refuse(integer, text, text, text, text, bigint),
	evmgmt.listener_ack_link(text, text, text, text), evmgmt.twilio_request_valid(evmgmt.channel, text, text[], text),
	evmgmt.phone_reply_target(text, text, boolean), evmgmt.phone_reply(text, text, text, text),
	evmgmt.listener_twilio(evmgmt.channel, text, text[], text[], text, text), evmgmt.listener_callback(text[], text, text, text),
	evmgmt.listener_handle(text, text, text, text[], text[], text[], text, text) FROM PUBLIC;
-- The listener connects as evmgmt_worker (docs/security.md) and runs one
-- statement: listener_handle (SECURITY DEFINER), which does the rest.
GRANT EXECUTE ON FUNCTION evmgmt.listener_handle(text, text, text, text[], text[], text[], text, text) TO evmgmt_worker;

-- Test pages (67_paging_tests.sql): a contact sends them to themselves and an
-- admin to anyone (send_test_page checks which); they are confirmed only
-- through the listener.  Responders see the tests with their addresses.
REVOKE ALL ON FUNCTION evmgmt.send_test_page(bigint, evmgmt.channel) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.send_test_page(bigint, evmgmt.channel) TO evmgmt_responder;
REVOKE ALL ON FUNCTION evmgmt.confirm_test_page(bigint, bigint, text), evmgmt.phone_test_target(text, evmgmt.channel),
	evmgmt.listener_test_link(text, bigint, bigint, text, text), evmgmt.escalation_reply(bigint, bigint, text, text, text) FROM PUBLIC;
GRANT SELECT ON evmgmt.paging_test TO evmgmt_responder;

-- Prediction and rule-driven response (22_forecast.sql, 49_prediction.sql,
-- 72_response_rules.sql, 74_runbooks.sql).  Ingest loads forecasts, directly
-- or through the inbox; readers see projections, predictions, firings and
-- runbooks by site; admins configure policies, rules and runbooks and throw
-- the kill switch; responders avert a predicted event by hand and record
-- runbook steps.  Prediction runs only inside run_due_work, the rules only
-- from their trigger.
GRANT INSERT ON evmgmt.interval_forecast, evmgmt.forecast_inbox TO evmgmt_ingest;
GRANT DELETE ON evmgmt.interval_forecast TO evmgmt_admin;
REVOKE ALL ON FUNCTION evmgmt.interval_forecast_loaded(), evmgmt.forecast_inbox_route(),
	evmgmt.interval_forecast_problem(text, text, text, text, text, text, text, text, text, boolean, boolean),
	evmgmt.intraday_ratios(timestamptz), evmgmt.forecast_projection_at(timestamptz),
	evmgmt.predict_series(text, text, evmgmt.pool, text, timestamptz, jsonb),
	evmgmt.prediction_confirm(text, text, evmgmt.pool, timestamptz, evmgmt.severity),
	evmgmt.prediction_pages(bigint, evmgmt.pool), evmgmt.run_predictions(timestamptz, boolean),
	evmgmt.prediction_due(timestamptz),
	evmgmt.apply_response_rules(bigint, evmgmt.pool), evmgmt.response_rules_trigger(),
	evmgmt.set_response_rules(boolean, text),
	evmgmt.runbook_step_done(bigint, evmgmt.pool, integer, text, text),
	evmgmt.avert_pool(bigint, evmgmt.pool, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.intraday_ratios(timestamptz), evmgmt.forecast_projection_at(timestamptz),
	evmgmt.set_response_rules(boolean, text) TO evmgmt_admin;
GRANT EXECUTE ON FUNCTION evmgmt.avert_pool(bigint, evmgmt.pool, text),
	evmgmt.runbook_step_done(bigint, evmgmt.pool, integer, text, text) TO evmgmt_responder, evmgmt_admin;

-- Views and reports (76_bi_views.sql, 77_reports.sql, 78_event_report.sql):
-- the BI views are granted to readers by the loop above; every report and the
-- HTML event report to readers (and so to responders and admins).  The
-- fatigue report and the event report are SECURITY DEFINER because they read
-- the outbox and the step history, which readers cannot: they return names,
-- never addresses, and keep to the acting role's sites themselves.
DO $reports$
DECLARE
	f text;
BEGIN
	FOREACH f IN ARRAY ARRAY[
		'evmgmt.visible_address(text)',
		'evmgmt.report_check_period(timestamptz, timestamptz)',
		'evmgmt.event_window_stats(bigint, evmgmt.pool, timestamptz)',
		'evmgmt.condition_window_stats(timestamptz, timestamptz, bigint, timestamptz)',
		'evmgmt.hours_class(timestamptz, text)',
		'evmgmt.report_target_compliance(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity)',
		'evmgmt.report_response_times(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity)',
		'evmgmt.drift_conditions(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool)',
		'evmgmt.report_severity_drift(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool)',
		'evmgmt.report_blind_spots(timestamptz, timestamptz, text, evmgmt.event_type)',
		'evmgmt.report_notification_fatigue(timestamptz, timestamptz, text, bigint)',
		'evmgmt.learning_loop_events(timestamptz, timestamptz, text, evmgmt.event_type)',
		'evmgmt.report_learning_loop(timestamptz, timestamptz, text, evmgmt.event_type)',
		'evmgmt.report_impact(timestamptz, timestamptz, text, evmgmt.event_type, evmgmt.pool, evmgmt.severity, double precision, double precision)',
		'evmgmt.report_maturity(timestamptz, timestamptz, text)',
		'evmgmt.event_report_chart(bigint, evmgmt.pool)',
		'evmgmt.event_report(bigint)'] LOOP
		EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO evmgmt_reader', f);
	END LOOP;
END
$reports$;

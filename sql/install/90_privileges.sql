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
		'channel_provider', 'provider_secret', 'escalation_plan', 'escalation_step', 'message_template'];
	-- what readers may not see at all (contact data has masked views)
	hidden text[] := ARRAY['contact_channel', 'provider_secret', 'notification', 'audit_log', 'escalation_step_run', 'action_key',
						   'listener_refusal'];
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

-- HTTP listener and action tokens (65_action_tokens.sql, 66_listener.sql):
-- the keys are readable by evmgmt_admin only (SELECT above), rotated through
-- rotate_action_key; refused requests are visible to admins (SELECT above);
-- the token and listener functions are for the workers and the listener
-- (superuser sessions), not for any role.
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

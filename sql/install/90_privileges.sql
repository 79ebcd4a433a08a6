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
	hidden text[] := ARRAY['contact_channel', 'provider_secret', 'notification', 'audit_log', 'escalation_step_run'];
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

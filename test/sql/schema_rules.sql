-- Constraints of the organisation, catalogue, event and escalation tables.
\set VERBOSITY default
SET client_min_messages = warning;
-- start from an empty extension: tests share one database
DROP EXTENSION evmgmt CASCADE;
CREATE EXTENSION evmgmt;
INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Standard week');
-- time zones are checked
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('X1', 'acme', 'Nowhere', 'Mars/Olympus', 'std');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('MNL1', 'acme', 'Manila 1', 'Asia/Manila', 'std');
-- working windows: closes after opens, no overlap on one weekday
INSERT INTO evmgmt.calendar_hours VALUES ('std', 1, '09:00', '12:00'), ('std', 1, '13:00', '18:00');
INSERT INTO evmgmt.calendar_hours VALUES ('std', 1, '11:00', '14:00');
INSERT INTO evmgmt.calendar_hours VALUES ('std', 2, '18:00', '09:00');
INSERT INTO evmgmt.calendar_hours VALUES ('std', 8, '09:00', '17:00');
-- calibrated policy: constraints, and the effective view falls back to the reference row
INSERT INTO evmgmt.severity_policy VALUES ('acme', 'sev3', 'Slipping', 0.7, 45, '2 hours', '1 hour', true, NULL, true);
INSERT INTO evmgmt.severity_policy VALUES ('acme', 'sev3', 'Slipping', 0.7, NULL, '30 minutes', '1 day', true, NULL, true);
INSERT INTO evmgmt.severity_policy VALUES ('acme', 'sev3', 'Slipping', 1.5, 45, '30 minutes', '1 day', true, NULL, true);
INSERT INTO evmgmt.severity_policy VALUES ('acme', 'sev3', 'Slipping', 0.7, 45, '30 minutes', '1 day', true, NULL, true);
SELECT severity, sl_threshold, sustain_minutes, response_target, calibrated
FROM evmgmt.effective_severity_policy WHERE operation_id = 'acme' ORDER BY severity;
SELECT evmgmt.calibrate_from_defaults('acme');
SELECT severity, sl_threshold, calibrated FROM evmgmt.effective_severity_policy WHERE operation_id = 'acme' ORDER BY severity;
SELECT severity, count(*) FROM evmgmt.effective_notification_footprint WHERE operation_id = 'acme' GROUP BY 1 ORDER BY 1;
-- built-in catalogue rows cannot be changed; own rows can be added
UPDATE evmgmt.lever SET name = 'More overtime' WHERE lever = 'overtime';
DELETE FROM evmgmt.cause_category WHERE category = 'people';
INSERT INTO evmgmt.lever VALUES ('surge_team', 'schedule_adjustment', 'Activate the surge team', true);
INSERT INTO evmgmt.lever VALUES ('surge_team', 'schedule_adjustment', 'Activate the surge team');
INSERT INTO evmgmt.lever_applicability (lever, pool, event_type) VALUES ('surge_team', 'spec', 'demand');
-- an event's subtype must belong to its type; site must belong to the operation
INSERT INTO evmgmt.event (operation_id, site_id, event_type, subtype, detection_source, title, detected_at, opened_at)
VALUES ('acme', 'MNL1', 'demand', 'router_failure', 'roc_analyst', 'Mismatch', '2026-03-02 09:00+08', '2026-03-02 09:05+08');
INSERT INTO evmgmt.operation VALUES ('other', 'Other Co');
INSERT INTO evmgmt.event (operation_id, site_id, event_type, detection_source, title, detected_at, opened_at)
VALUES ('other', 'MNL1', 'demand', 'roc_analyst', 'Wrong operation', '2026-03-02 09:00+08', '2026-03-02 09:05+08');
INSERT INTO evmgmt.event (operation_id, site_id, event_type, detection_source, title, detected_at, opened_at)
VALUES ('acme', 'MNL1', 'demand', 'roc_analyst', 'Detected after opening', '2026-03-02 09:10+08', '2026-03-02 09:05+08');
-- contact channels are validated and masked for readers
INSERT INTO evmgmt.contact (contact_id, name) VALUES (1, 'Dana Cruz');
INSERT INTO evmgmt.contact_channel VALUES (1, 'sms', '0917 555 1234');
INSERT INTO evmgmt.contact_channel VALUES (1, 'email', 'not-an-address');
INSERT INTO evmgmt.contact_channel VALUES (1, 'sms', '+639175551234'), (1, 'email', 'dana.cruz@example.com'), (1, 'push', 'dana-roc');
SELECT channel, address FROM evmgmt.contact_channel_masked ORDER BY channel;
-- providers: the kind must fit the channel; SMTP needs a sender
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('bad', 'sms', 'ntfy', 'http://127.0.0.1:1');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('mail', 'email', 'smtp', 'smtp://127.0.0.1:2525');
-- escalation steps need exactly the target their kind names
INSERT INTO evmgmt.escalation_plan (plan_id, name) VALUES ('p1', 'Default');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind) VALUES ('p1', 1, '0', 'push', 'contact');
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES ('p1', 1, '-5 minutes', 'push', 'contact', 1);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id) VALUES ('p1', 1, '0', 'push', 'contact', 1);
-- rota shifts must be bounded
INSERT INTO evmgmt.rota VALUES ('roc', 'ROC on duty', 'Asia/Manila');
INSERT INTO evmgmt.rota_shift (rota_id, contact_id, during) VALUES ('roc', 1, tstzrange('2026-03-02 08:00+08', NULL));
-- the audit trail saw all of it, with masked addresses, and cannot be rewritten
SELECT table_name, action, count(*) FROM evmgmt.audit_log GROUP BY 1, 2 ORDER BY 1, 2;
SELECT new_row ->> 'address' AS audited_address FROM evmgmt.audit_log WHERE table_name = 'contact_channel' ORDER BY 1;
UPDATE evmgmt.audit_log SET actor = 'someone else';
DELETE FROM evmgmt.audit_log;
TRUNCATE evmgmt.audit_log;

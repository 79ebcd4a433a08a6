-- pgTAP: issue 14, SQL side.  What readers and responders see of provider
-- responses, endpoints and account ids; contact data kept out of errors
-- (and so out of the server log); quarantine rows stamped with who loaded
-- them; removals of quarantined rows and status_schedule changes audited;
-- guards and audit that hold with session_replication_role = replica; the
-- account audit; provider secrets kept out of a dump on request.
BEGIN;
SELECT plan(39);

INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Standard week');
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES ('MNL1', 'acme', 'Manila 1', 'Asia/Manila', 'std');
INSERT INTO evmgmt.queue (queue_id, operation_id, name) VALUES ('billing', 'acme', 'Billing');
INSERT INTO evmgmt.contact (contact_id, name, role_name) VALUES (1, 'Dana Cruz', 'evm_tap_dana'), (2, 'Eli Ong', 'evm_tap_nobody');
INSERT INTO evmgmt.contact_channel VALUES (1, 'sms', '+639175551234');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address) VALUES
	('hook', 'webhook', 'webhook', 'https://ops:hunter2@hooks.example.com/in?token=s3cr3t', NULL, NULL),
	('sms', 'sms', 'twilio', 'https://api.example.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json', 'AC0123456789abcdef0123456789abcdef', '+15550100');
INSERT INTO evmgmt.notification (notification_id, kind, channel, provider_id, contact_id, recipient, body, state, attempts, last_error)
VALUES (1, 'test', 'sms', 'sms', 1, '+639175551234', 'test', 'dead', 1,
		'HTTP 400: {"message": "To +639175551234 is not reachable", "auth": "Bearer sk_live_0123456789"}');
-- a push page with its action token in the body and the payload (issue 11)
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('push', 'push', 'ntfy', 'https://ntfy.example.com');
INSERT INTO evmgmt.notification (notification_id, kind, channel, provider_id, contact_id, recipient, body, payload)
VALUES (2, 'test', 'push', 'push', 1, 'dana', 'Sev1 opened. Acknowledge: https://roc.example.com/evmgmt/ack/' || repeat('Ab1_-', 12) || 'xyz',
		jsonb_build_object('ack_token', repeat('Ab1_-', 12) || 'xyz', 'ack_url', 'https://roc.example.com/evmgmt/ack/' || repeat('Ab1_-', 12) || 'xyz',
						   'gather_url', 'https://roc.example.com/evmgmt/twilio/voice?token=' || repeat('Ab1_-', 12) || 'xyz', 'ack_code', '123456'));
INSERT INTO evmgmt.delivery_attempt (notification_id, attempt_no, started_at, finished_at, status_code, outcome, error)
VALUES (1, 1, now(), now(), 400, 'dead', 'HTTP 400: {"message": "To +639175551234 is not reachable", "auth": "Bearer sk_live_0123456789"}');

-- redaction, as each role
SET LOCAL ROLE evmgmt_reader;
SELECT throws_ok('SELECT error FROM evmgmt.delivery_attempt', '42501', NULL, 'readers cannot read raw delivery errors');
SELECT throws_ok('SELECT endpoint FROM evmgmt.channel_provider', '42501', NULL, 'readers cannot read raw endpoints');
SELECT throws_ok('SELECT username FROM evmgmt.channel_provider', '42501', NULL, 'readers cannot read the SMS account id');
SELECT is((SELECT outcome || ' ' || status_code FROM evmgmt.delivery_attempt), 'dead 400', 'readers still read the other attempt columns');
SELECT is((SELECT error FROM evmgmt.delivery_attempt_redacted),
	'HTTP 400: {"message": "To [number] is not reachable", "auth": "Bearer [redacted]"}',
	'readers see the error without the token and the phone number');
SELECT is((SELECT string_agg(endpoint || ' ' || coalesce(username, '-'), ', ' ORDER BY provider_id) FROM evmgmt.channel_provider_redacted),
	'https://[redacted]@hooks.example.com/in?token=[redacted] -, https://ntfy.example.com -, https://api.example.com/2010-04-01/Accounts/AC[redacted]/Messages.json [redacted]',
	'readers see endpoints without credentials or account ids');
RESET ROLE;
SET LOCAL ROLE evmgmt_responder;
SELECT throws_ok('SELECT last_error FROM evmgmt.notification', '42501', NULL, 'responders cannot read raw provider responses in the outbox');
SELECT is((SELECT recipient FROM evmgmt.notification WHERE notification_id = 1), '+639175551234', 'responders still read whom the outbox wrote to');
SELECT throws_ok('SELECT body FROM evmgmt.notification', '42501', NULL, 'responders cannot read page bodies with action tokens in the outbox');
SELECT throws_ok('SELECT payload FROM evmgmt.notification', '42501', NULL, 'nor payloads');
SELECT is((SELECT body FROM evmgmt.notification_redacted WHERE notification_id = 2), 'Sev1 opened. Acknowledge: https://roc.example.com/evmgmt/ack/[token]',
	'notification_redacted shows the body with the token replaced');
SELECT is((SELECT payload::text FROM evmgmt.notification_redacted WHERE notification_id = 2),
	'{"ack_url": "https://roc.example.com/evmgmt/ack/[token]", "ack_code": "123456", "ack_token": "[token]", "gather_url": "https://roc.example.com/evmgmt/twilio/voice?token=[token]"}',
	'and the payload without any token (a responder cannot act as the contact paged)');
SELECT is((SELECT error FROM evmgmt.delivery_attempt_redacted),
	'HTTP 400: {"message": "To +639175551234 is not reachable", "auth": "Bearer [redacted]"}',
	'responders see contact data but no token in delivery errors');
RESET ROLE;
SET LOCAL ROLE evmgmt_admin;
SELECT alike((SELECT error FROM evmgmt.delivery_attempt), '%sk_live_0123456789%', 'admins read the raw error');
RESET ROLE;

-- contact data out of errors: the unique key and the formats
SELECT throws_ok($$INSERT INTO evmgmt.contact_channel VALUES (1, 'sms', '+639175551234')$$, '23505',
	'duplicate key value violates unique constraint "contact_channel_pkey"', 'a duplicate channel is refused as by the primary key');
CREATE FUNCTION pg_temp.error_detail(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text; c text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, c = CONSTRAINT_NAME;
	RETURN c || ': ' || d;
END $$;
SELECT is(pg_temp.error_detail($$INSERT INTO evmgmt.contact_channel VALUES (1, 'sms', '+639175551234')$$),
	'contact_channel_pkey: Key (contact_id, channel, address)=(1, sms, +**********34) already exists.',
	'the duplicate''s detail shows the number masked');
SELECT is(pg_temp.error_detail($$INSERT INTO evmgmt.contact_channel VALUES (1, 'sms', '639175551234')$$),
	'contact_channel_phone_e164: Contact 1, channel sms, address **********34.', 'a malformed number is refused with the number masked');
SELECT is(pg_temp.error_detail($$INSERT INTO evmgmt.contact_channel VALUES (1, 'email', 'dana.cruz@@example.com')$$),
	'contact_channel_email_address: Contact 1, channel email, address d***@@example.com.', 'a malformed address is refused masked');
SELECT is(pg_temp.error_detail($$INSERT INTO evmgmt.contact_channel VALUES (NULL, 'sms', '+639175550000')$$),
	': Contact missing, channel sms, address +**********00.', 'a missing contact is refused with the number masked');
SELECT is(pg_temp.error_detail($$UPDATE evmgmt.contact_channel SET priority = 0$$),
	'contact_channel_priority_check: Contact 1, channel sms, address +**********34.', 'a bad priority on update is refused masked');
SELECT lives_ok($$UPDATE evmgmt.contact_channel SET priority = 2 WHERE contact_id = 1$$, 'an update that keeps the key passes');

-- quarantine: stamped by the extension, removals audited
CREATE ROLE evm_tap_etl LOGIN IN ROLE evmgmt_ingest;
SET LOCAL SESSION AUTHORIZATION evm_tap_etl;
INSERT INTO evmgmt.interval_quarantine (received_at, received_by, row_data, sqlstate, reason)
VALUES ('2000-01-01', 'somebody_else', '{}', '22P02', 'forged');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT received_by || ' ' || (received_at > now() - interval '1 hour') FROM evmgmt.interval_quarantine WHERE reason = 'forged'),
	'evm_tap_etl true', 'a quarantine row names the session that loaded it, and when, whatever the loader wrote');
SET LOCAL ROLE evmgmt_admin;
DELETE FROM evmgmt.interval_quarantine WHERE reason = 'forged';
RESET ROLE;
SELECT is((SELECT action || ' ' || role_used || ' ' || (old_row ->> 'reason') FROM evmgmt.audit_log WHERE table_name = 'interval_quarantine'),
	'DELETE evmgmt_admin forged', 'an admin deleting a quarantined row is audited with the row');

-- status_schedule changes are audited
SELECT evmgmt.open_event('system', 'MNL1', '{spec}', 'roc_analyst', 'Router down', now(), 'billing') AS ev \gset
SELECT evmgmt.classify_pool(:ev, 'spec', 'sev1');
SELECT cmp_ok((SELECT count(*) FROM evmgmt.audit_log WHERE table_name = 'status_schedule' AND (new_row ->> 'event_id')::bigint = :ev),
	'>=', 1::bigint, 'the status cadence of an event is audited when it starts');

-- session_replication_role = replica bypasses nothing
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$DELETE FROM evmgmt.audit_log$$, '42501', NULL, 'audit rows cannot be deleted with session_replication_role = replica');
SELECT throws_ok($$UPDATE evmgmt.event SET title = 'rewritten'$$, '42501', NULL, 'events cannot be rewritten with session_replication_role = replica');
UPDATE evmgmt.site SET name = 'Manila One' WHERE site_id = 'MNL1';
SELECT is((SELECT new_row ->> 'name' FROM evmgmt.audit_log WHERE table_name = 'site' AND action = 'UPDATE'), 'Manila One',
	'a configuration change with session_replication_role = replica is audited');
RESET session_replication_role;
SELECT is_empty($$SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
	WHERE c.relnamespace = 'evmgmt'::regnamespace AND t.tgname IN ('audit', 'audit_truncate', 'refuse_direct_change', 'refuse_direct_truncate',
		'audit_log_append_only', 'audit_log_no_truncate', 'interval_quarantine_stamp') AND t.tgenabled <> 'A'$$,
	'every guard and audit trigger is enabled always');

-- the account audit
CREATE ROLE evm_tap_dana LOGIN IN ROLE evmgmt_responder;
CREATE ROLE evm_tap_idle LOGIN VALID UNTIL '2001-01-01' IN ROLE evmgmt_reader;
SELECT is((SELECT finding FROM evmgmt.report_account_audit() WHERE subject = 'evm_tap_idle'), 'expired login holds evmgmt roles',
	'the account audit names an expired login that holds an evmgmt role');
SELECT is((SELECT finding || ' ' || roles::text FROM evmgmt.report_account_audit() WHERE subject = 'evm_tap_dana'),
	'dormant login holds evmgmt roles {evmgmt_reader,evmgmt_responder}', 'and a login with no audited activity, with what it holds');
SELECT is((SELECT string_agg(subject || ': ' || finding, '; ' ORDER BY subject) FROM evmgmt.report_account_audit() WHERE subject_kind = 'contact'),
	'Dana Cruz (1): dormant contact; Eli Ong (2): contact''s role does not exist',
	'contacts: one never active, one whose role does not exist');
SELECT throws_ok($$SELECT * FROM evmgmt.report_account_audit('-1 day')$$, '22023', NULL, 'the dormancy window must be positive');
SET LOCAL ROLE evmgmt_reader;
SELECT throws_ok($$SELECT * FROM evmgmt.report_account_audit()$$, '42501', NULL, 'the account audit is for admins');
RESET ROLE;

-- raw lines: structural errors quarantined, the rest routed, the load counted
SET LOCAL SESSION AUTHORIZATION evm_tap_etl;
SELECT lives_ok($$INSERT INTO evmgmt.interval_inbox_raw (line) VALUES
	('site_id,queue_id,pool,interval_start,interval_minutes,offered,handled,abandoned,answered_in_threshold,threshold_seconds,aht_seconds,staffed,scheduled,forecast_offered,forecast_aht'),
	('MNL1,billing,collab,2026-03-02 09:00+08,15,100,90,10,80,20,300,20,20,,'),
	('MNL1,billing,collab,2026-03-02 09:15+08,15,100'),
	('MNL1,billing,collab,2026-03-02 09:30+08,15,100,90,10,80,20,300,20,20,,,,extra'),
	('MNL1,billing,collab,2026-03-02 09:45+08,15,10,90,0,80,20,300,20,20,,'),
	(''),
	('MNL1,billing,collab,2026-03-02 10:00+08,15,100,90,10,80,20,300,20,20,,')$$,
	'a load with lines of too few and too many fields goes through');
SELECT is((SELECT array[lines, skipped, malformed, routed, quarantined, accepted] FROM evmgmt.my_ingest_load), ARRAY[7, 2, 2, 3, 1, 2],
	'the loader sees its load: 7 lines, header and empty line skipped, 2 malformed, 3 routed, 1 refused for its values, 2 accepted');
SELECT is((SELECT string_agg(sqlstate || ' ' || COALESCE(row_data ->> 'line_no', '-') || ' ' || reason, '; ' ORDER BY quarantine_id) FROM evmgmt.my_interval_quarantine),
	'22P04 3 line has 6 fields, 15 expected; 22P04 4 line has 17 fields, 15 expected; 23514 - new row for relation "interval_stat" violates check constraint "interval_stat_handled_not_more_than_offered"',
	'and its own quarantined rows, malformed lines with their number in the load');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM evmgmt.interval_stat WHERE pool = 'collab'), 2::bigint, 'the good lines reached interval_stat');
SELECT is((SELECT count(*) FROM evmgmt.interval_inbox_raw), 0::bigint, 'no raw line is kept');

-- provider secrets and pg_dump
SELECT is((SELECT extcondition[array_position(extconfig, 'evmgmt.provider_secret'::regclass::oid)] FROM pg_extension WHERE extname = 'evmgmt'),
	$$WHERE pg_catalog.current_setting('evmgmt.dump_secrets', true) IS DISTINCT FROM 'off'$$,
	'pg_dump keeps provider secrets only while evmgmt.dump_secrets is on in its session');

SELECT * FROM finish();
ROLLBACK;

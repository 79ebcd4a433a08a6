-- Continuous testing of the paging path (sql/install/67_paging_tests.sql):
-- paging_readiness finds each way a plan step would reach nobody over the
-- next 7 days, and only those; send_test_page is for admins (any contact)
-- and contacts (themselves), bounded, and refuses what cannot be confirmed.
-- (Sending and confirming through real channels: test/integration/listener.sh.)
BEGIN;
SELECT plan(20);
SET client_min_messages = warning;

INSERT INTO evmgmt.operation VALUES ('acme', 'Acme Care');
INSERT INTO evmgmt.calendar VALUES ('std', 'Standard week'), ('closed', 'Never open');
INSERT INTO evmgmt.calendar_hours SELECT 'std', d, '08:00', '18:00' FROM generate_series(1, 5) d;
INSERT INTO evmgmt.calendar_hours VALUES ('closed', 1, '08:00', '09:00');
-- every Monday of the coming weeks is a holiday in 'closed'
INSERT INTO evmgmt.calendar_holiday (calendar_id, day, name)
SELECT 'closed', d::date, 'Closed Monday' FROM generate_series(date_trunc('week', now()), now() + interval '21 days', interval '1 week') d;
INSERT INTO evmgmt.site (site_id, operation_id, name, time_zone, calendar_id) VALUES
	('MNL1', 'acme', 'Manila 1', 'Asia/Manila', 'std'), ('SHUT', 'acme', 'Shut site', 'UTC', 'closed');
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint, username, from_address, active) VALUES
	('sms', 'sms', 'twilio', 'https://example.invalid', 'AC1', '+15550100', true),
	('push', 'push', 'ntfy', 'https://example.invalid', NULL, NULL, false),
	('hook', 'webhook', 'webhook', 'https://example.invalid/h', NULL, NULL, false);
CREATE ROLE evm_rd_dana IN ROLE evmgmt_responder;
CREATE ROLE evm_rd_eli IN ROLE evmgmt_responder;
CREATE ROLE evm_rd_admin IN ROLE evmgmt_admin;
CREATE ROLE evm_rd_reader IN ROLE evmgmt_reader;
INSERT INTO evmgmt.contact (contact_id, name, role_name, active) VALUES
	(901, 'Dana', 'evm_rd_dana', true), (902, 'Eli', 'evm_rd_eli', true), (903, 'Gone', 'nobody', false);
INSERT INTO evmgmt.contact_channel (contact_id, channel, address) VALUES
	(901, 'sms', '+15550111'), (902, 'sms', '+15550122'), (903, 'sms', '+15550133');
INSERT INTO evmgmt.contact_group VALUES ('empty', 'Nobody active'), ('duty', 'Duty');
INSERT INTO evmgmt.group_member VALUES ('empty', 903), ('duty', 901), ('duty', 902);
INSERT INTO evmgmt.rota VALUES ('night', 'Night rota');
-- Dana covers the first two days only: the rest of the week is a gap
INSERT INTO evmgmt.rota_shift (rota_id, contact_id, during) VALUES
	('night', 901, tstzrange(now() - interval '1 hour', now() + interval '2 days'));
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools) VALUES ('p', 'Plan', '{spec}');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, site_ids) VALUES ('shut', 'Shut site plan', '{spec}', '{SHUT}');
INSERT INTO evmgmt.escalation_plan (plan_id, name, pools, active) VALUES ('off', 'Inactive plan', '{spec}', false);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, group_id, rota_id, provider_id) VALUES
	('p', 1, '0', 'sms', 'contact', 901, NULL, NULL, NULL),
	('p', 2, '1 min', 'push', 'contact', 901, NULL, NULL, NULL),
	('p', 3, '2 min', 'sms', 'group', NULL, 'empty', NULL, NULL),
	('p', 4, '3 min', 'sms', 'rota', NULL, NULL, 'night', NULL),
	('p', 5, '4 min', 'sms', 'contact', 903, NULL, NULL, NULL),
	('p', 6, '5 min', 'webhook', 'endpoint', NULL, NULL, NULL, 'hook'),
	('p', 7, '6 min', 'sms', 'group', NULL, 'duty', NULL, NULL),
	('off', 1, '0', 'push', 'contact', 902, NULL, NULL, NULL);
INSERT INTO evmgmt.escalation_step (plan_id, step_no, delay, channel, target_kind, contact_id, working_hours_only) VALUES
	('shut', 1, '0', 'sms', 'contact', 902, true);

CREATE TEMP TABLE f ON COMMIT DROP AS SELECT * FROM evmgmt.paging_readiness WHERE plan_id IN ('p', 'shut', 'off');

SELECT is((SELECT string_agg(problem || ' ' || COALESCE(contact_id::text, '-'), ', ' ORDER BY problem, contact_id) FROM f WHERE plan_id = 'p' AND step_no = 1),
		  'unverified_channel 901', 'a contact whose SMS number was never confirmed is flagged');
SELECT is((SELECT string_agg(problem || ' ' || COALESCE(contact_id::text, '-'), ', ' ORDER BY problem, contact_id) FROM f WHERE plan_id = 'p' AND step_no = 2),
		  'inactive_provider -, no_channel 901', 'a push step: no active push provider, and the contact has no push topic');
SELECT is((SELECT string_agg(problem, ', ' ORDER BY problem) FROM f WHERE plan_id = 'p' AND step_no = 3),
		  'empty_group', 'a group with no active member is flagged');
SELECT is((SELECT string_agg(problem, ', ' ORDER BY problem) FROM f WHERE plan_id = 'p' AND step_no = 4),
		  'rota_gap, unverified_channel', 'a rota covered for two of seven days: the gap, and the one on shift is unverified');
SELECT ok((SELECT abs(extract(epoch FROM starts_at - (now() + interval '2 days'))) < 1 AND abs(extract(epoch FROM ends_at - (now() + interval '7 days'))) < 1
		   FROM f WHERE plan_id = 'p' AND step_no = 4 AND problem = 'rota_gap'),
		  'the rota gap runs from the end of the last shift to the end of the 7 days');
SELECT is((SELECT string_agg(problem || ' ' || contact_id, ', ' ORDER BY problem) FROM f WHERE plan_id = 'p' AND step_no = 5),
		  'inactive_contact 903', 'a step naming an inactive contact is flagged');
SELECT is((SELECT string_agg(problem || ': ' || detail, ', ') FROM f WHERE plan_id = 'p' AND step_no = 6),
		  'inactive_provider: endpoint hook is inactive or missing', 'an inactive webhook endpoint is flagged');
SELECT is((SELECT string_agg(problem || ' ' || contact_id, ', ' ORDER BY contact_id) FROM f WHERE plan_id = 'p' AND step_no = 7),
		  'unverified_channel 901, unverified_channel 902', 'each active member of a group is checked');
SELECT is((SELECT string_agg(problem, ', ' ORDER BY problem) FROM f WHERE plan_id = 'shut'),
		  'unverified_channel, window_never_opens', 'working hours that never open within 7 days at the plan''s site are flagged');
SELECT alike((SELECT detail FROM f WHERE plan_id = 'shut' AND problem = 'window_never_opens'), 'at site SHUT (UTC)%', 'naming the site');
SELECT is((SELECT count(*)::int FROM f WHERE plan_id = 'off'), 0, 'inactive plans are not checked');

-- a confirmed test page clears the unverified finding (the listener confirms; here the row is written as it would)
INSERT INTO evmgmt.paging_test (contact_id, channel, address, requested_by, sent_at, expires_at, confirmed_at, confirmed_via)
VALUES (901, 'sms', '+15550111', 'evm_rd_admin', now() - interval '5 minutes', now() + interval '55 minutes', now(), '+******11');
SELECT is((SELECT count(*)::int FROM evmgmt.paging_readiness WHERE plan_id = 'p' AND step_no = 1), 0,
		  'after a confirmed test page the step is ready');
SELECT is((SELECT (verified_at IS NOT NULL) || ' ' || address FROM evmgmt.channel_verification WHERE contact_id = 901 AND channel = 'sms'),
		  'true +******11', 'channel_verification shows the number verified, masked');
-- a changed number is unverified again
UPDATE evmgmt.contact_channel SET address = '+15550119' WHERE contact_id = 901 AND channel = 'sms';
SELECT is((SELECT problem FROM evmgmt.paging_readiness WHERE plan_id = 'p' AND step_no = 1), 'unverified_channel',
		  'a changed number needs a new test');

-- send_test_page: who may (sending and confirming with a base URL: test/integration/listener.sh)
SET ROLE evm_rd_reader;
SELECT throws_ok($$SELECT evmgmt.send_test_page(901, 'sms')$$, '42501', NULL, 'a reader cannot send test pages');
RESET ROLE;
SET ROLE evm_rd_eli;
SELECT throws_ok($$SELECT evmgmt.send_test_page(901, 'sms')$$, '42501', 'permission denied to send a test page to contact 901',
				 'a responder cannot test another contact''s channels');
SELECT throws_ok($$SELECT evmgmt.send_test_page(902, 'sms')$$, '55000', 'test pages need evmgmt.public_base_url',
				 'a contact may test their own channel, but not without the listener''s public URL');
SELECT throws_ok($$SELECT evmgmt.send_test_page(902, 'webhook')$$, '22023', NULL, 'webhooks are not a person''s channel');
RESET ROLE;
SELECT throws_ok($$SELECT evmgmt.send_test_page(999, 'sms')$$, 'P0002', 'contact 999 does not exist', 'an unknown contact');
SELECT is((SELECT count(*)::int FROM evmgmt.paging_test WHERE confirmed_at IS NULL), 0, 'refused requests leave no test behind');

SELECT * FROM finish();
ROLLBACK;

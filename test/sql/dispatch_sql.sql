-- SQL surface of the workers and the dispatcher: the Standard Webhooks
-- signature, the wake-up function and triggers, the settings, privileges.
\set VERBOSITY terse

-- The test vector published with the Standard Webhooks libraries.
SELECT evmgmt.webhook_signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
                                1614265330, '{"test": 2432232314}')
       = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' AS standard_vector;
-- A secret without the whsec_ prefix is used as it is (value from Python's hmac).
SELECT evmgmt.webhook_signature('plain-secret', 'msg_1', 1700000000, '{"a":1}');
-- Bad secrets.
SELECT evmgmt.webhook_signature('', 'msg_1', 1, 'x');
SELECT evmgmt.webhook_signature('whsec_***', 'msg_1', 1, 'x');
SELECT evmgmt.webhook_signature(NULL, 'msg_1', 1, 'x') IS NULL AS strict;

-- wake_workers() is callable in any transaction, also one that rolls back.
BEGIN;
SELECT evmgmt.wake_workers();
ROLLBACK;
SELECT evmgmt.wake_workers();

-- The statement triggers that wake the worker at commit.
SELECT tgrelid::regclass, tgname, tgtype, tgfoid::regprocedure
FROM pg_trigger WHERE tgname = 'wake_workers' ORDER BY 1;
SELECT evmgmt.wake_workers_trigger();

-- Who may call what.
SELECT r, has_function_privilege(r, 'evmgmt.wake_workers()', 'EXECUTE') AS wake,
       has_function_privilege(r, 'evmgmt.webhook_signature(text, text, bigint, text)', 'EXECUTE') AS sign
FROM unnest(ARRAY['evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest']) r ORDER BY 1;

-- Settings and their defaults.
SELECT name, boot_val, unit, context, vartype
FROM pg_settings
WHERE name IN ('evmgmt.worker_enabled', 'evmgmt.max_databases', 'evmgmt.max_concurrency', 'evmgmt.connect_timeout',
               'evmgmt.request_timeout', 'evmgmt.batch_size', 'evmgmt.max_attempts', 'evmgmt.backoff_base',
               'evmgmt.backoff_cap', 'evmgmt.lease_time', 'evmgmt.outbound_allow', 'evmgmt.delivery_retention')
ORDER BY name;
-- The allow-list is validated.
ALTER SYSTEM SET evmgmt.outbound_allow = '10.0.0.0/8, 300.1.1.1';
ALTER SYSTEM SET evmgmt.outbound_allow = '10.0.0.0/33';
ALTER SYSTEM SET evmgmt.outbound_allow = '10.0.0.0/8, 192.168.1.7, ::1/128, fd00::/8';
ALTER SYSTEM RESET evmgmt.outbound_allow;

-- The outbox columns the dispatcher adds.
SELECT attname, format_type(atttypid, atttypmod), attgenerated
FROM pg_attribute
WHERE attrelid IN ('evmgmt.notification'::regclass, 'evmgmt.delivery_attempt'::regclass)
  AND attname IN ('claimed_at', 'latency')
ORDER BY 1;

-- Background workers and the notification dispatcher (src/launcher.c,
-- src/worker.c, src/dispatch.c): the wake-up on commit, the triggers that
-- call it, the Standard Webhooks signature, and the columns the dispatcher
-- keeps on the outbox.

ALTER TABLE evmgmt.notification ADD COLUMN claimed_at timestamptz;
COMMENT ON COLUMN evmgmt.notification.claimed_at IS 'When the dispatcher last claimed the notification (start of the latest attempt)';
COMMENT ON COLUMN evmgmt.notification.lease_until IS 'While sending: the claim expires then, and a claim left by a crashed worker is retried';
COMMENT ON COLUMN evmgmt.notification.next_attempt_at IS 'When the notification is due (first attempt, or the next retry after backoff or Retry-After)';
COMMENT ON COLUMN evmgmt.notification.last_error IS 'Error of the latest failed attempt (kept when the notification is dead)';

ALTER TABLE evmgmt.delivery_attempt
	ADD COLUMN latency interval GENERATED ALWAYS AS (finished_at - started_at) STORED;
COMMENT ON COLUMN evmgmt.delivery_attempt.latency IS 'Time from the start of the attempt to its result';
COMMENT ON COLUMN evmgmt.delivery_attempt.status_code IS 'HTTP status, or the last SMTP reply code; NULL when no answer came';

-- The retention purge asks whether an escalation's history still points at
-- a notification.
CREATE INDEX escalation_step_run_notification_idx ON evmgmt.escalation_step_run (notification_id)
	WHERE notification_id IS NOT NULL;

CREATE FUNCTION evmgmt.wake_workers() RETURNS void
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_wake_workers';
COMMENT ON FUNCTION evmgmt.wake_workers() IS 'Wake this database''s evmgmt worker when the calling transaction commits (nothing happens on abort)';

CREATE FUNCTION evmgmt.wake_workers_trigger() RETURNS trigger
	LANGUAGE c VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_wake_workers_trigger';
COMMENT ON FUNCTION evmgmt.wake_workers_trigger() IS 'Statement trigger: wake the worker at commit when due work was written (not while evmgmt.restoring is on)';

CREATE TRIGGER wake_workers AFTER INSERT OR UPDATE OF state, next_attempt_at ON evmgmt.notification
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.wake_workers_trigger();
CREATE TRIGGER wake_workers AFTER INSERT OR UPDATE OF state, next_due_at ON evmgmt.escalation
	FOR EACH STATEMENT EXECUTE FUNCTION evmgmt.wake_workers_trigger();

CREATE FUNCTION evmgmt.webhook_signature(secret text, msg_id text, ts bigint, body text) RETURNS text
	LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'evmgmt_webhook_signature';
COMMENT ON FUNCTION evmgmt.webhook_signature(text, text, bigint, text) IS 'Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of "msg_id.ts.body" (a whsec_ secret is base64-decoded first)';

REVOKE ALL ON FUNCTION evmgmt.wake_workers(), evmgmt.wake_workers_trigger() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evmgmt.wake_workers() TO evmgmt_admin, evmgmt_responder, evmgmt_ingest;

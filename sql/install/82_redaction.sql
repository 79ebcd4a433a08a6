-- Redaction (issue 14): what readers and responders see of provider
-- responses and endpoints, and contact data kept out of the server log.
--
-- delivery_attempt.error and notification.last_error carry providers'
-- response bodies (a phone number, an echoed Bearer token); channel_provider
-- holds endpoints that may embed credentials (https://user:pass@host,
-- ?token=...) and the SMS provider's account id.  Readers and responders get
-- the *_redacted views; the raw columns are granted to evmgmt_admin only
-- (column privileges in 90_privileges.sql).
--
-- A unique-key or CHECK error on contact_channel would print the address in
-- the server log and to the client (DETAIL: Key (...)=(...), Failing row
-- contains (...)): the trigger below checks the same rules first and raises
-- errors whose detail shows the address masked.

CREATE VIEW evmgmt.delivery_attempt_redacted AS
SELECT attempt_id, notification_id, attempt_no, started_at, finished_at, status_code, outcome,
	   evmgmt.redact_text(error, NOT pg_catalog.pg_has_role('evmgmt_responder', 'USAGE')) AS error, latency
FROM evmgmt.delivery_attempt;
COMMENT ON VIEW evmgmt.delivery_attempt_redacted IS 'delivery_attempt with credentials scrubbed from the error (and contact data masked unless the reader is a responder)';

CREATE VIEW evmgmt.channel_provider_redacted AS
SELECT provider_id, channel, kind, evmgmt.redact_url(endpoint) AS endpoint,
	   CASE WHEN username IS NOT NULL THEN '[redacted]' END AS username,
	   from_address, active
FROM evmgmt.channel_provider;
COMMENT ON VIEW evmgmt.channel_provider_redacted IS 'channel_provider without credentials: endpoint without user information and query values, account id (username) hidden, settings left out';

-- Pages carry action tokens (65_action_tokens.sql): in the body (the ack
-- link) and the payload (ack_token, ack_url, gather_url; a digest's items
-- too).  A token acts as the contact it names, so responders, who read the
-- outbox, see the body and payload only with every token replaced (issue 11:
-- a responder must not acknowledge as somebody else).  ack_code stays: it
-- works only in a reply from the paged phone, signed by the provider.
CREATE FUNCTION evmgmt.redact_action_tokens(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.regexp_replace(
		pg_catalog.regexp_replace(t, '(/ack/|token=)[A-Za-z0-9_-]{63}', '\1[token]', 'g'),
		'("ack_token": ")[A-Za-z0-9_-]{63}"', '\1[token]"', 'g');
COMMENT ON FUNCTION evmgmt.redact_action_tokens(text) IS 'A text (or jsonb text) with every action token replaced by [token]';

CREATE VIEW evmgmt.notification_redacted AS
SELECT notification_id, event_id, escalation_id, kind, channel, provider_id, contact_id, recipient, subject,
	   evmgmt.redact_action_tokens(body) AS body, evmgmt.redact_action_tokens(payload::text)::jsonb AS payload,
	   idempotency_key, state, attempts, created_at, sent_at, last_status, claimed_at, lease_until, next_attempt_at
FROM evmgmt.notification;
COMMENT ON VIEW evmgmt.notification_redacted IS 'The outbox for responders: every column but last_error, with the action tokens in body and payload replaced by [token]';

-- Contact data out of errors and the server log: the rules of contact_channel
-- (not null, channel formats, the primary key) are checked here first, with
-- the address masked in what is raised.  Concurrent writers of the same key
-- are serialized on an advisory lock so that the second sees the first's row
-- (READ COMMITTED); a REPEATABLE READ writer can still reach the primary key
-- itself.
CREATE FUNCTION evmgmt.contact_channel_check() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	masked text := evmgmt.mask_address(NEW.address);
	rule text;
BEGIN
	IF NEW.contact_id IS NULL OR NEW.channel IS NULL OR NEW.address IS NULL OR NEW.priority IS NULL THEN
		RAISE EXCEPTION 'contact channels need a contact, a channel, an address and a priority'
			USING ERRCODE = 'not_null_violation', TABLE = 'contact_channel', SCHEMA = 'evmgmt',
				  DETAIL = pg_catalog.format('Contact %s, channel %s, address %s.', COALESCE(NEW.contact_id::text, 'missing'),
										   COALESCE(NEW.channel::text, 'missing'), COALESCE(masked, 'missing'));
	END IF;
	rule := CASE
		WHEN NEW.channel = 'webhook' THEN 'contact_channel_not_webhook'
		WHEN NEW.channel IN ('sms', 'voice') AND NEW.address !~ '^\+[1-9][0-9]{6,14}$' THEN 'contact_channel_phone_e164'
		WHEN NEW.channel = 'email' AND NEW.address !~ '^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$' THEN 'contact_channel_email_address'
		WHEN NEW.channel = 'push' AND NEW.address !~ '^[A-Za-z0-9_-]{1,64}$' THEN 'contact_channel_push_topic'
		WHEN NEW.priority < 1 THEN 'contact_channel_priority_check'
	END;
	IF rule IS NOT NULL THEN
		RAISE EXCEPTION 'contact channel violates check constraint "%"', rule
			USING ERRCODE = 'check_violation', CONSTRAINT = rule, TABLE = 'contact_channel', SCHEMA = 'evmgmt',
				  DETAIL = pg_catalog.format('Contact %s, channel %s, address %s.', NEW.contact_id, NEW.channel, masked),
				  HINT = CASE rule
					WHEN 'contact_channel_not_webhook' THEN 'Webhooks are endpoints (channel_provider), not contact channels.'
					WHEN 'contact_channel_phone_e164' THEN 'Phone numbers are in E.164 form: + and 7 to 15 digits, no spaces.'
					WHEN 'contact_channel_email_address' THEN 'Give a plain address such as name@example.com.'
					WHEN 'contact_channel_push_topic' THEN 'A push topic is 1 to 64 letters, digits, _ or -.'
					ELSE 'Priorities start at 1.' END;
	END IF;
	IF TG_OP = 'INSERT' OR (NEW.contact_id, NEW.channel, NEW.address) IS DISTINCT FROM (OLD.contact_id, OLD.channel, OLD.address) THEN
		PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('evmgmt.contact_channel'),
												 pg_catalog.hashtext(NEW.contact_id::text || ' ' || NEW.channel::text || ' ' || NEW.address));
		IF EXISTS (SELECT FROM evmgmt.contact_channel c
				   WHERE c.contact_id = NEW.contact_id AND c.channel = NEW.channel AND c.address = NEW.address) THEN
			RAISE EXCEPTION 'duplicate key value violates unique constraint "contact_channel_pkey"'
				USING ERRCODE = 'unique_violation', CONSTRAINT = 'contact_channel_pkey', TABLE = 'contact_channel', SCHEMA = 'evmgmt',
					  DETAIL = pg_catalog.format('Key (contact_id, channel, address)=(%s, %s, %s) already exists.', NEW.contact_id, NEW.channel, masked);
		END IF;
	END IF;
	RETURN NEW;
END
$$;
COMMENT ON FUNCTION evmgmt.contact_channel_check() IS 'Trigger: checks contact_channel''s rules and key before the constraints do, so that errors and the server log show the address masked';
CREATE TRIGGER contact_channel_check BEFORE INSERT OR UPDATE ON evmgmt.contact_channel
	FOR EACH ROW EXECUTE FUNCTION evmgmt.contact_channel_check();

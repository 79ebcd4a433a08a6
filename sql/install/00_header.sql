-- evmgmt install script, assembled by make from sql/install/*.sql in name order.
-- Every object is schema-qualified and every function pins its search_path, so
-- a hostile search_path at CREATE EXTENSION time or at call time changes nothing.

\echo Use "CREATE EXTENSION evmgmt" to load this file. \quit

-- Roles are cluster-wide: create them only if missing, never drop them.
DO $roles$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest'] LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$roles$;

COMMENT ON SCHEMA evmgmt IS 'evmgmt: contact-center event management (severity, Erlang math, lifecycles, escalations, notifications)';
REVOKE ALL ON SCHEMA evmgmt FROM PUBLIC;
GRANT USAGE ON SCHEMA evmgmt TO PUBLIC;

CREATE TYPE evmgmt.severity AS ENUM ('sev1', 'sev2', 'sev3', 'sev4');
COMMENT ON TYPE evmgmt.severity IS 'Severity tier: sev1 critical (outage), sev2 high, sev3 medium, sev4 low (request/change)';

CREATE TYPE evmgmt.event_type AS ENUM ('capacity', 'demand', 'system', 'process', 'third_party');
COMMENT ON TYPE evmgmt.event_type IS 'Event type: drives diagnosis and response routing';

CREATE TYPE evmgmt.pool AS ENUM ('aa', 'collab', 'spec');
COMMENT ON TYPE evmgmt.pool IS 'Work pool: aa autonomous AI, collab human-AI collaborative, spec specialist humans';

CREATE TYPE evmgmt.event_state AS ENUM
	('detected', 'classified', 'diagnosed', 'responding', 'resolved', 'closed', 'cancelled');
COMMENT ON TYPE evmgmt.event_state IS 'Protocol state of a pool condition (detected .. resolved, cancelled) and of an event roll-up (adds closed)';

CREATE TYPE evmgmt.channel AS ENUM ('push', 'sms', 'voice', 'email', 'webhook');
COMMENT ON TYPE evmgmt.channel IS 'Notification channel';

CREATE TYPE evmgmt.objective AS ENUM
	('service_level', 'cost', 'customer_experience', 'agent_experience', 'business_value');
COMMENT ON TYPE evmgmt.objective IS 'Objective an event is evaluated against in post-resolution analysis';

-- Does the server know this time zone name?  Used by CHECK constraints; the
-- zone database does not change under a running server, hence IMMUTABLE.
CREATE FUNCTION evmgmt.is_time_zone(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_catalog.pg_timezone_names WHERE pg_timezone_names.name = is_time_zone.name);
COMMENT ON FUNCTION evmgmt.is_time_zone(text) IS 'True when the argument is a time zone name the server knows (IANA names such as Europe/Berlin)';

-- Mask a phone number or e-mail address for logs and reader views:
-- keep the last two digits of a phone, the first letter and domain of an e-mail.
CREATE FUNCTION evmgmt.mask_address(address text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN CASE
	WHEN address ~ '@' THEN pg_catalog.left(address, 1) || '***' || pg_catalog.substr(address, pg_catalog.strpos(address, '@'))
	WHEN address ~ '^\+?[0-9 ().-]{5,}$' THEN pg_catalog.regexp_replace(pg_catalog.left(address, -2), '[0-9]', '*', 'g') || pg_catalog.right(address, 2)
	ELSE '***'
END;
COMMENT ON FUNCTION evmgmt.mask_address(text) IS 'Masks a phone number (all but the last two digits) or e-mail address (all but the first letter and the domain)';

-- evmgmt install script, assembled by make from sql/install/*.sql in name order
-- (the numbering follows the data path; see docs/architecture.md).
-- Every object is schema-qualified and every function pins its search_path, so
-- a hostile search_path at CREATE EXTENSION time or at call time changes nothing.

\echo Use "CREATE EXTENSION evmgmt" to load this file. \quit

-- Foundation: the roles, the schema and the types every concern uses.

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

-- The role the background workers connect as (docs/security.md, "The worker's
-- role"): no superuser, no inherited privileges, no password.  PostgreSQL 15
-- lets a background worker connect only as a role with LOGIN; without a
-- password no password method admits it, and docs/security.md gives the
-- pg_hba.conf reject lines for trust and peer setups.  An existing role of
-- that name is brought back to these attributes.
DO $worker_role$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'evmgmt_worker') THEN
		CREATE ROLE evmgmt_worker LOGIN NOINHERIT PASSWORD NULL;
	END IF;
	ALTER ROLE evmgmt_worker LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
		CONNECTION LIMIT -1 PASSWORD NULL;
END
$worker_role$;

COMMENT ON SCHEMA evmgmt IS 'evmgmt: contact-center event management (severity, Erlang math, lifecycles, escalations, notifications)';

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

-- evmgmt install script, assembled by make from sql/install/*.sql in name order
-- (the numbering follows the data path; see docs/architecture.md).
-- Every object is schema-qualified and every function pins its search_path, so
-- a hostile search_path at CREATE EXTENSION time or at call time changes nothing.

\echo Use "CREATE EXTENSION evmgmt" to load this file. \quit

-- Schema guard (issue 14): the install and upgrade scripts bind operators and
-- functions into constraints, defaults, indexes, views and BEGIN ATOMIC
-- bodies while the search_path is the extension's schema (pg_catalog
-- implicitly first).  That is safe only if nothing but the extension's own
-- objects is in that schema, and nobody else can put anything there while
-- the script runs.  A schema pre-created by a database owner (holding, say,
-- an operator evmgmt.%(integer, smallint) that would outrank pg_catalog's
-- integer % integer) is refused here, before any object is created.  Every
-- comparison below names its pg_catalog operator, so this block itself
-- cannot be trapped.
DO $guard$
DECLARE
	nsp oid;
	ext oid;
	owner_name name;
	owner_super boolean;
	creators text;
	foreign_objects text;
BEGIN
	SELECT n.oid, r.rolname, r.rolsuper INTO nsp, owner_name, owner_super
	FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	WHERE n.nspname OPERATOR(pg_catalog.=) 'evmgmt'::name;
	SELECT e.oid INTO ext FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'evmgmt'::name;
	IF nsp IS NULL OR ext IS NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
			MESSAGE = 'evmgmt scripts must be run by CREATE EXTENSION or ALTER EXTENSION';
	END IF;
	IF NOT owner_super THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = pg_catalog.format('schema "evmgmt" is owned by role "%s", which is not a superuser', owner_name),
			DETAIL = 'evmgmt installs into a schema that CREATE EXTENSION creates; a schema another role created or owns can hold objects that the installation would bind into its constraints and functions, and run with the installer''s privileges.',
			HINT = 'Check what the schema holds, drop it (or, for an update, make a superuser its owner and remove what is not part of the extension) and run the command again.';
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.quote_ident(g.rolname), ', ' ORDER BY g.rolname) INTO creators
	FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
	LEFT JOIN pg_catalog.pg_roles g ON g.oid OPERATOR(pg_catalog.=) a.grantee
	WHERE n.oid OPERATOR(pg_catalog.=) nsp AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
	  AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner AND NOT COALESCE(g.rolsuper, false);
	IF creators IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = 'roles other than superusers may create objects in schema "evmgmt"',
			DETAIL = pg_catalog.format('CREATE on the schema is granted to %s.', creators),
			HINT = 'REVOKE CREATE ON SCHEMA evmgmt from those roles (and PUBLIC) and run the command again.';
	END IF;
	SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), ', '
								 ORDER BY pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)) INTO foreign_objects
	FROM pg_catalog.pg_depend d
	WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
	  AND d.refobjid OPERATOR(pg_catalog.=) nsp
	  AND NOT (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
			   AND d.objid OPERATOR(pg_catalog.=) ext)
	  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend m
					  WHERE m.classid OPERATOR(pg_catalog.=) d.classid AND m.objid OPERATOR(pg_catalog.=) d.objid
						AND m.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
						AND m.refobjid OPERATOR(pg_catalog.=) ext AND m.deptype OPERATOR(pg_catalog.=) 'e');
	IF foreign_objects IS NOT NULL THEN
		RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
			MESSAGE = 'schema "evmgmt" holds objects that are not part of the extension',
			DETAIL = pg_catalog.format('Foreign objects: %s.', foreign_objects),
			HINT = 'An operator or function there would be bound into the extension''s constraints and functions: check who created them, drop them and run the command again.';
	END IF;
END
$guard$;

-- Foundation: the roles, the schema and the types every concern uses.

-- Roles are cluster-wide: create them only if missing, never drop them.
DO $roles$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['evmgmt_admin', 'evmgmt_responder', 'evmgmt_reader', 'evmgmt_ingest'] LOOP
		IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) r) THEN
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

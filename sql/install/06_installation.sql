-- Which database this is, so that a copy of it never pages anyone by itself.
--
-- evmgmt.installation (NOT dumped) holds the identity written by CREATE
-- EXTENSION: a random install_id, the cluster's system_identifier and the
-- database's oid.  evmgmt.sending_origin (dumped) holds the install_id of the
-- installation where sending is enabled.  What each copy looks like:
--   pg_dump / pg_restore (another database or cluster, with or without
--     evmgmt.restoring): CREATE EXTENSION writes a new identity and enables it,
--     then the restored sending_origin row of the source comes in beside it:
--     a second origin => held;
--   CREATE DATABASE ... TEMPLATE (or a file copy of one database): the
--     installation row is copied with the source's database oid => held;
--   a physical standby, once promoted, a restart, a PITR restore of the whole
--     cluster: same rows, same oid => the same database, sending goes on;
--   pg_upgrade: keeps the database oid (PostgreSQL 15 and later) and the
--     files of both tables, only system_identifier changes (new initdb) => the
--     same database; system_identifier is recorded and shown, never decisive.
-- Every notification is stamped with the install_id of the installation that
-- wrote it (notification.origin): the dispatcher claims only this
-- installation's rows, so a restored backlog is never sent before an admin
-- decides, however the restore and the worker interleave.
-- The hold check, the status view and resume_sending are in
-- 69_sending_status.sql.

CREATE TABLE evmgmt.installation (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	install_id		uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	system_identifier bigint NOT NULL,
	database_oid	oid NOT NULL,
	installed_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE evmgmt.installation IS 'Identity of this installation (not dumped): random install_id, system_identifier and database oid where it lives; written by CREATE EXTENSION, updated by resume_sending';

CREATE TABLE evmgmt.sending_origin (
	install_id		uuid PRIMARY KEY,
	enabled_at		timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	enabled_by		text NOT NULL DEFAULT SESSION_USER,
	how				text NOT NULL CHECK (how IN ('create extension', 'upgrade', 'resume: send', 'resume: drop')),
	dropped			integer NOT NULL DEFAULT 0 CHECK (dropped >= 0)
);
COMMENT ON TABLE evmgmt.sending_origin IS 'The installation where sending is enabled (dumped, so a restored copy brings the source''s row and is held); exactly this installation''s row means sending may go on';

INSERT INTO evmgmt.installation (system_identifier, database_oid)
SELECT s.system_identifier, d.oid
FROM pg_catalog.pg_control_system() s, pg_catalog.pg_database d
WHERE d.datname = pg_catalog.current_database();
INSERT INTO evmgmt.sending_origin (install_id, how)
SELECT install_id, 'create extension' FROM evmgmt.installation;

-- The install_id of this installation (what new notifications are stamped with).
CREATE FUNCTION evmgmt.installation_id() RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT i.install_id FROM evmgmt.installation i);
COMMENT ON FUNCTION evmgmt.installation_id() IS 'The install_id of this installation: the origin stamped on new notifications';

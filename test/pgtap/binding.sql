-- pgTAP: every operator, function, type and relation that the extension's
-- constraints, defaults, indexes, views, triggers, policies and BEGIN ATOMIC
-- function bodies were bound to at CREATE EXTENSION (or ALTER EXTENSION
-- UPDATE) time is in pg_catalog or is part of the extension itself, so a
-- trap created elsewhere (public.%, evmgmt.% in a pre-created schema) was
-- never picked up; and the schema guard that makes this hold by
-- construction refuses a schema that someone else created or fills.
BEGIN;
SELECT plan(6);

-- foreign_bindings: each (dependent, referenced) pair whose dependent belongs
-- to the extension (directly, or through the table, type or function it
-- hangs off) and whose referenced operator, function, type, collation or
-- relation lives neither in pg_catalog nor in the extension
CREATE TEMP VIEW foreign_bindings AS
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'evmgmt'),
member AS (
	SELECT d.classid, d.objid FROM pg_depend d, ext
	WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
dependent AS (
	-- the object a bound expression belongs to, and the member object owning it
	SELECT 'pg_constraint'::regclass AS classid, c.oid AS objid,
		   CASE WHEN c.conrelid <> 0 THEN 'pg_class'::regclass ELSE 'pg_type'::regclass END AS owner_class,
		   CASE WHEN c.conrelid <> 0 THEN c.conrelid ELSE c.contypid END AS owner_id
	FROM pg_constraint c
	UNION ALL SELECT 'pg_attrdef'::regclass, a.oid, 'pg_class'::regclass, a.adrelid FROM pg_attrdef a
	UNION ALL SELECT 'pg_class'::regclass, i.indexrelid, 'pg_class'::regclass, i.indrelid FROM pg_index i
	UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, 'pg_class'::regclass, r.ev_class FROM pg_rewrite r
	UNION ALL SELECT 'pg_trigger'::regclass, t.oid, 'pg_class'::regclass, t.tgrelid FROM pg_trigger t
	UNION ALL SELECT 'pg_policy'::regclass, p.oid, 'pg_class'::regclass, p.polrelid FROM pg_policy p
	UNION ALL SELECT 'pg_proc'::regclass, p.oid, 'pg_proc'::regclass, p.oid FROM pg_proc p WHERE p.prosqlbody IS NOT NULL
	UNION ALL SELECT 'pg_class'::regclass, c.oid, 'pg_class'::regclass, c.oid FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm')),
referenced AS (
	SELECT 'pg_operator'::regclass AS classid, o.oid AS objid, o.oprnamespace AS nsp FROM pg_operator o
	UNION ALL SELECT 'pg_proc'::regclass, p.oid, p.pronamespace FROM pg_proc p
	UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typnamespace FROM pg_type t
	UNION ALL SELECT 'pg_collation'::regclass, c.oid, c.collnamespace FROM pg_collation c
	UNION ALL SELECT 'pg_class'::regclass, c.oid, c.relnamespace FROM pg_class c)
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS bound_in,
	   pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) AS bound_to, r.nsp::regnamespace::text AS bound_to_schema
FROM pg_depend d
JOIN dependent x ON x.classid = d.classid AND x.objid = d.objid
JOIN referenced r ON r.classid = d.refclassid AND r.objid = d.refobjid
WHERE EXISTS (SELECT FROM member m WHERE m.classid = x.owner_class AND m.objid = x.owner_id)
  AND r.nsp <> 'pg_catalog'::regnamespace
  AND NOT EXISTS (SELECT FROM member m WHERE m.classid = d.refclassid AND m.objid = d.refobjid)
  -- a table's own row type, index or column belongs to it
  AND NOT EXISTS (SELECT FROM pg_type t JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = t.typrelid
				  WHERE d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid)
  AND NOT EXISTS (SELECT FROM pg_type t JOIN member m ON m.classid = 'pg_type'::regclass AND m.objid = t.typelem
				  WHERE d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid AND t.typcategory = 'A')
  AND NOT EXISTS (SELECT FROM pg_index i JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = i.indrelid
				  WHERE d.refclassid = 'pg_class'::regclass AND i.indexrelid = d.refobjid);

-- built-in objects are pinned and never recorded in pg_depend; what is
-- recorded are the bindings to anything else, such as the extension's own
-- functions
SELECT ok(EXISTS (SELECT FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
				  WHERE r.ev_class = 'evmgmt.contact_channel_masked'::regclass
				  AND d.refclassid = 'pg_proc'::regclass AND d.refobjid = 'evmgmt.mask_address(text)'::regprocedure),
	'the catalogue records what a view was bound to (contact_channel_masked on evmgmt.mask_address)');
SELECT is_empty('SELECT * FROM foreign_bindings',
	'every operator, function, type and relation bound into the extension is in pg_catalog or part of the extension');

-- the check sees a binding to a trap: a member view built on a public operator
CREATE FUNCTION public.tap_trap_mod(integer, smallint) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE OPERATOR public.% (function = public.tap_trap_mod, leftarg = integer, rightarg = smallint);
SET LOCAL search_path = public, evmgmt;
CREATE VIEW evmgmt.tap_probe AS SELECT 7 % 2::smallint AS r;
RESET search_path;
ALTER EXTENSION evmgmt ADD VIEW evmgmt.tap_probe;
SELECT results_eq('SELECT bound_in, bound_to, bound_to_schema FROM foreign_bindings',
	$$VALUES ('rule _RETURN on view evmgmt.tap_probe', 'operator %(integer,smallint)', 'public')$$,
	'a view of the extension bound to public.% is reported');
ALTER EXTENSION evmgmt DROP VIEW evmgmt.tap_probe;
DROP VIEW evmgmt.tap_probe;

-- what the schema guard (first in both scripts) checks holds after installation
SELECT is(
	(SELECT r.rolsuper FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'evmgmt'),
	true, 'the schema is owned by a superuser');
SELECT is_empty(
	$$SELECT a.grantee::regrole::text FROM pg_namespace n, aclexplode(n.nspacl) a
	  WHERE n.nspname = 'evmgmt' AND a.privilege_type = 'CREATE' AND a.grantee <> n.nspowner$$,
	'nobody but the owner may create objects in the schema');
SELECT is_empty(
	$$SELECT pg_describe_object(d.classid, d.objid, d.objsubid) FROM pg_depend d
	  WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = 'evmgmt'::regnamespace AND d.classid <> 'pg_extension'::regclass
	  AND NOT EXISTS (SELECT FROM pg_depend m WHERE m.classid = d.classid AND m.objid = d.objid AND m.deptype = 'e')
	  -- the month partitions of interval_stat, made at run time by the extension's own upkeep
	  AND NOT EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
					  WHERE d.classid = 'pg_class'::regclass AND c.oid = d.objid
					    AND i.inhparent = 'evmgmt.interval_stat'::regclass
					    AND c.relname ~ '^interval_stat_p[0-9]{4}_[0-9]{2}$'
					    AND c.relowner = (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'evmgmt'))$$,
	'everything in the schema is part of the extension (or a month partition of interval_stat it made)');

SELECT * FROM finish();
ROLLBACK;

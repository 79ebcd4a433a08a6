-- test/tools/security_decisions.sql: the security decisions of every object
-- of the extension (pg_depend deptype 'e', plus the column privileges of its
-- tables), in the form test/pgtap/enumeration.sql holds them: object, kind,
-- grants other than the owner's (grantee=privileges, aclitem letters; a
-- function without an ACL shows PUBLIC=X), SECURITY DEFINER, proconfig.
-- A new object fails that test until its row is added there, by hand, as a
-- decision: psql -XAt -d DB -f test/tools/security_decisions.sql prints the
-- rows as they are now, to compare with the table, never to paste blindly.
CREATE OR REPLACE TEMP VIEW evmgmt_security_now AS
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'evmgmt'),
obj AS (
	SELECT pg_describe_object(d.classid, d.objid, 0) AS object,
		   CASE d.classid WHEN 'pg_class'::regclass THEN 'relation' WHEN 'pg_proc'::regclass THEN 'function'
						  WHEN 'pg_type'::regclass THEN 'type' ELSE d.classid::regclass::text END AS kind,
		   d.classid, d.objid
	FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
acl AS (
	SELECT o.object, o.kind,
		   CASE o.classid
			WHEN 'pg_class'::regclass THEN (SELECT COALESCE(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)) FROM pg_class c WHERE c.oid = o.objid)
			WHEN 'pg_proc'::regclass THEN (SELECT COALESCE(p.proacl, acldefault('f'::"char", p.proowner)) FROM pg_proc p WHERE p.oid = o.objid)
			WHEN 'pg_type'::regclass THEN (SELECT COALESCE(t.typacl, acldefault('T'::"char", t.typowner)) FROM pg_type t WHERE t.oid = o.objid)
		   END AS acl,
		   CASE o.classid
			WHEN 'pg_class'::regclass THEN (SELECT c.relowner FROM pg_class c WHERE c.oid = o.objid)
			WHEN 'pg_proc'::regclass THEN (SELECT p.proowner FROM pg_proc p WHERE p.oid = o.objid)
			WHEN 'pg_type'::regclass THEN (SELECT t.typowner FROM pg_type t WHERE t.oid = o.objid)
		   END AS owner,
		   (SELECT p.prosecdef FROM pg_proc p WHERE o.classid = 'pg_proc'::regclass AND p.oid = o.objid) AS secdef,
		   (SELECT array_to_string(p.proconfig, ' ') FROM pg_proc p WHERE o.classid = 'pg_proc'::regclass AND p.oid = o.objid) AS config
	FROM obj o
	UNION ALL
	SELECT pg_describe_object('pg_class'::regclass, a.attrelid, a.attnum), 'column', a.attacl, c.relowner, NULL, NULL
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN obj o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid
	WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped)
SELECT a.object, a.kind,
	   COALESCE((SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END || '=' || x.privs, ' '
									ORDER BY CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE x.grantee::regrole::text END)
				 FROM (SELECT e.grantee, string_agg(CASE e.privilege_type
							WHEN 'SELECT' THEN 'r' WHEN 'INSERT' THEN 'a' WHEN 'UPDATE' THEN 'w' WHEN 'DELETE' THEN 'd'
							WHEN 'TRUNCATE' THEN 'D' WHEN 'REFERENCES' THEN 'x' WHEN 'TRIGGER' THEN 't' WHEN 'EXECUTE' THEN 'X'
							WHEN 'USAGE' THEN 'U' ELSE '?' END, '' ORDER BY e.privilege_type) AS privs
					   FROM aclexplode(a.acl) e WHERE e.grantee <> a.owner GROUP BY e.grantee) x), '') AS grants,
	   a.secdef, a.config, a.owner
FROM acl a;
\if :{?decisions_quiet}
\else
SELECT format('(%L, %L, %L, %s, %L),', object, kind, grants, COALESCE(secdef::text, 'NULL'), config)
FROM evmgmt_security_now ORDER BY kind, object;
\endif

-- test/tools/catalog_snapshot.sql: the catalog of the evmgmt extension in a
-- normalized, sorted, one-fact-per-line form, so that two databases (one
-- upgraded from 0.1.0, one installed fresh) can be compared with diff.
--
-- Run with: psql -XAtq -v ON_ERROR_STOP=1 -f test/tools/catalog_snapshot.sql
--
-- Column order is deliberately not compared (columns by name); everything else
-- that describes the schema is: columns with type, default, collation, NOT
-- NULL, identity and generation; constraints; indexes; functions and
-- aggregates with their attributes, settings, grants and a hash of their
-- definition; views; triggers; types and enum labels in order; table and
-- column grants; row security and policies; pg_extension_config_dump
-- registrations; sequences; comments; the members of the extension; the
-- schema's grants and the memberships among the evmgmt roles.

WITH rel AS (
	SELECT c.oid, c.relname, c.relkind, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relpersistence
	FROM pg_catalog.pg_class c
	WHERE c.relnamespace = 'evmgmt'::regnamespace
	  -- month partitions of interval_stat are data, made at run time by the
	  -- worker's partition upkeep (sql/install/25_partitions.sql)
	  AND c.relname !~ '^interval_stat_p[0-9]{4}_[0-9]{2}(_pkey)?$'
),
fn AS (
	SELECT p.oid::regprocedure::text AS sig, p.*
	FROM pg_catalog.pg_proc p
	WHERE p.pronamespace = 'evmgmt'::regnamespace
),
acl(oid, txt) AS (
	-- a normalized ACL: the items sorted, NULL (default) shown as such
	SELECT x.oid, COALESCE((SELECT pg_catalog.string_agg(i, ',' ORDER BY i COLLATE "C")
							FROM pg_catalog.unnest(x.a::text[]) i), 'default')
	FROM (SELECT oid, relacl AS a FROM rel
		  UNION ALL SELECT oid, proacl FROM fn
		  UNION ALL SELECT oid, typacl FROM pg_catalog.pg_type WHERE typnamespace = 'evmgmt'::regnamespace
		  UNION ALL SELECT oid, nspacl FROM pg_catalog.pg_namespace WHERE nspname = 'evmgmt') x
),
line(l) AS (
	-- relations
	SELECT pg_catalog.format('relation %s kind=%s persistence=%s rls=%s force_rls=%s acl=%s',
							 r.relname, r.relkind, r.relpersistence, r.relrowsecurity, r.relforcerowsecurity, a.txt)
	FROM rel r JOIN acl a USING (oid)
	UNION ALL
	-- columns, by name
	SELECT pg_catalog.format('column %s.%s type=%s default=%s collation=%s notnull=%s identity=%s generated=%s acl=%s',
							 r.relname, t.attname, pg_catalog.format_type(t.atttypid, t.atttypmod),
							 COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '-'),
							 COALESCE((SELECT co.collname FROM pg_catalog.pg_collation co
									   WHERE co.oid = t.attcollation AND t.attcollation <> 0), '-'),
							 t.attnotnull, NULLIF(t.attidentity, ''), NULLIF(t.attgenerated, ''),
							 COALESCE(t.attacl::text, 'default'))
	FROM rel r
	JOIN pg_catalog.pg_attribute t ON t.attrelid = r.oid AND t.attnum > 0 AND NOT t.attisdropped
	LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = t.attrelid AND d.adnum = t.attnum
	WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
	UNION ALL
	-- constraints of tables and domains
	SELECT pg_catalog.format('constraint %s %s type=%s deferrable=%s deferred=%s validated=%s: %s',
							 COALESCE(r.relname, ty.typname), k.conname, k.contype, k.condeferrable, k.condeferred,
							 k.convalidated, pg_catalog.pg_get_constraintdef(k.oid))
	FROM pg_catalog.pg_constraint k
	LEFT JOIN rel r ON r.oid = k.conrelid
	LEFT JOIN pg_catalog.pg_type ty ON ty.oid = k.contypid
	WHERE k.connamespace = 'evmgmt'::regnamespace
	  AND (k.conrelid = 0 OR r.oid IS NOT NULL)	-- not of a month partition (left out above)
	UNION ALL
	-- indexes
	SELECT pg_catalog.format('index %s: %s', r.relname, pg_catalog.pg_get_indexdef(i.indexrelid))
	FROM pg_catalog.pg_index i JOIN rel r ON r.oid = i.indrelid
	UNION ALL
	-- functions, procedures and aggregates
	SELECT pg_catalog.format('function %s kind=%s returns=%s lang=%s volatility=%s strict=%s secdef=%s leakproof=%s parallel=%s cost=%s rows=%s config=%s acl=%s body_md5=%s',
							 f.sig, f.prokind, pg_catalog.pg_get_function_result(f.oid),
							 (SELECT lanname FROM pg_catalog.pg_language WHERE oid = f.prolang),
							 f.provolatile, f.proisstrict, f.prosecdef, f.proleakproof, f.proparallel,
							 f.procost, f.prorows, COALESCE(f.proconfig::text, '-'), a.txt,
							 pg_catalog.md5(COALESCE(f.prosrc, '') || '|' || COALESCE(f.probin, '') || '|' ||
											COALESCE(pg_catalog.pg_get_function_sqlbody(f.oid), '') || '|' ||
											pg_catalog.pg_get_function_arguments(f.oid)))
	FROM fn f JOIN acl a USING (oid)
	UNION ALL
	SELECT pg_catalog.format('aggregate %s transfn=%s finalfn=%s combinefn=%s stype=%s kind=%s init=%s',
							 g.aggfnoid::regprocedure, g.aggtransfn, g.aggfinalfn, g.aggcombinefn,
							 pg_catalog.format_type(g.aggtranstype, NULL), g.aggkind, COALESCE(g.agginitval, '-'))
	FROM pg_catalog.pg_aggregate g JOIN fn f ON f.oid = g.aggfnoid
	UNION ALL
	-- views
	SELECT pg_catalog.format('view %s: %s', r.relname,
							 pg_catalog.regexp_replace(pg_catalog.pg_get_viewdef(r.oid), '\s+', ' ', 'g'))
	FROM rel r WHERE r.relkind IN ('v', 'm')
	UNION ALL
	-- triggers
	SELECT pg_catalog.format('trigger %s %s enabled=%s: %s', r.relname, tg.tgname, tg.tgenabled,
							 pg_catalog.pg_get_triggerdef(tg.oid))
	FROM pg_catalog.pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid
	WHERE NOT tg.tgisinternal
	UNION ALL
	-- types; enum labels in their order
	SELECT pg_catalog.format('type %s kind=%s acl=%s labels=%s', ty.typname, ty.typtype, a.txt,
							 COALESCE((SELECT pg_catalog.string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
									   FROM pg_catalog.pg_enum e WHERE e.enumtypid = ty.oid), '-'))
	FROM pg_catalog.pg_type ty JOIN acl a USING (oid)
	WHERE ty.typnamespace = 'evmgmt'::regnamespace
	  AND (ty.typtype IN ('e', 'd', 'r', 'm')
		   OR (ty.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = ty.typrelid) = 'c'))
	UNION ALL
	-- row security policies
	SELECT pg_catalog.format('policy %s %s cmd=%s permissive=%s roles=%s using=%s check=%s',
							 p.tablename, p.policyname, p.cmd, p.permissive, p.roles, p.qual, p.with_check)
	FROM pg_catalog.pg_policies p WHERE p.schemaname = 'evmgmt'
	UNION ALL
	-- sequences
	SELECT pg_catalog.format('sequence %s type=%s start=%s inc=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
							 r.relname, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
							 s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
							 COALESCE((SELECT pg_catalog.format('%s.%s', oc.relname, oa.attname)
									   FROM pg_catalog.pg_depend d
									   JOIN pg_catalog.pg_class oc ON oc.oid = d.refobjid
									   JOIN pg_catalog.pg_attribute oa ON oa.attrelid = d.refobjid AND oa.attnum = d.refobjsubid
									   WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
										 AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), '-'))
	FROM pg_catalog.pg_sequence s JOIN rel r ON r.oid = s.seqrelid
	UNION ALL
	-- pg_dump registrations
	SELECT pg_catalog.format('config_dump %s condition=%s', c.oid::regclass, x.cond)
	FROM pg_catalog.pg_extension e,
		 LATERAL unnest(e.extconfig, e.extcondition) AS x(tbl, cond)
		 JOIN pg_catalog.pg_class c ON c.oid = x.tbl
	WHERE e.extname = 'evmgmt'
	UNION ALL
	-- comments on everything that belongs to the extension (and its columns)
	SELECT pg_catalog.format('comment %s: %s',
							 pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid),
							 pg_catalog.regexp_replace(d.description, '\s+', ' ', 'g'))
	FROM pg_catalog.pg_description d
	WHERE (d.classoid, d.objoid) IN (SELECT dp.classid, dp.objid FROM pg_catalog.pg_depend dp
									 JOIN pg_catalog.pg_extension e ON e.oid = dp.refobjid
									 WHERE dp.refclassid = 'pg_extension'::regclass AND dp.deptype = 'e'
									   AND e.extname = 'evmgmt')
	   OR (d.classoid = 'pg_namespace'::regclass AND d.objoid = 'evmgmt'::regnamespace)
	UNION ALL
	-- members of the extension
	SELECT pg_catalog.format('member %s', pg_catalog.pg_describe_object(dp.classid, dp.objid, dp.objsubid))
	FROM pg_catalog.pg_depend dp JOIN pg_catalog.pg_extension e ON e.oid = dp.refobjid
	WHERE dp.refclassid = 'pg_extension'::regclass AND dp.deptype = 'e' AND e.extname = 'evmgmt'
	UNION ALL
	-- the schema, the extension, the roles
	SELECT pg_catalog.format('schema evmgmt acl=%s', a.txt)
	FROM acl a WHERE a.oid = 'evmgmt'::regnamespace
	UNION ALL
	SELECT pg_catalog.format('extension evmgmt version=%s relocatable=%s', e.extversion, e.extrelocatable)
	FROM pg_catalog.pg_extension e WHERE e.extname = 'evmgmt'
	UNION ALL
	SELECT pg_catalog.format('role_member %s in %s admin=%s', m.rolname, g.rolname, am.admin_option)
	FROM pg_catalog.pg_auth_members am
	JOIN pg_catalog.pg_roles m ON m.oid = am.member
	JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
	WHERE g.rolname LIKE 'evmgmt\_%' AND m.rolname LIKE 'evmgmt\_%'
)
SELECT s.l
FROM (SELECT pg_catalog.regexp_replace(line.l, '\s+', ' ', 'g') AS l FROM line) s
ORDER BY s.l COLLATE "C";

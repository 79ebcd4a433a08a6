-- Prints docs/schema.md from the catalog: every table and view of the evmgmt
-- schema with its comment, columns and constraints, and every type.
-- Regenerate with:  bash test/tools/cluster.sh bash test/tools/schema_doc.sh
\pset format unaligned
\pset tuples_only on
SELECT E'# evmgmt schema reference\n\n'
	|| E'Generated from the catalog comments by `test/tools/schema_doc.sh`; a test fails when it is stale.\n'
	|| E'Every table holding user data is dumped by `pg_dump` (see README, Backup and restore).\n';
SELECT E'\n## Types\n\n| type | values | description |\n|---|---|---|\n'
	|| string_agg(format('| `%s` | %s | %s |', t.typname,
		(SELECT string_agg('`' || e.enumlabel || '`', ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
		coalesce(obj_description(t.oid, 'pg_type'), '')), E'\n' ORDER BY t.typname)
FROM pg_type t WHERE t.typnamespace = 'evmgmt'::regnamespace AND t.typtype = 'e';
SELECT E'\n## ' || CASE c.relkind WHEN 'v' THEN 'View' ELSE 'Table' END || ' `evmgmt.' || c.relname || E'`\n\n'
	|| coalesce(obj_description(c.oid, 'pg_class'), '') || E'\n\n'
	|| E'| column | type | null | description |\n|---|---|---|---|\n'
	|| (SELECT string_agg(format('| `%s` | `%s` | %s | %s |', a.attname, format_type(a.atttypid, a.atttypmod),
							   CASE WHEN a.attnotnull THEN 'not null' ELSE '' END,
							   replace(coalesce(col_description(c.oid, a.attnum), ''), '|', '\|')), E'\n' ORDER BY a.attnum)
		FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
	|| coalesce(E'\n\nConstraints:\n\n' || (SELECT string_agg(format('- `%s`: `%s`', co.conname, replace(pg_get_constraintdef(co.oid), '|', '\|')), E'\n' ORDER BY co.contype, co.conname)
		FROM pg_constraint co WHERE co.conrelid = c.oid), '')
	|| E'\n'
FROM pg_class c WHERE c.relnamespace = 'evmgmt'::regnamespace AND c.relkind IN ('r', 'v', 'p')
  AND c.relname !~ '^interval_stat_p[0-9]{4}_[0-9]{2}$'  -- month partitions: data, made at run time
ORDER BY CASE c.relkind WHEN 'v' THEN 1 ELSE 0 END, c.relname;
SELECT E'\n## Functions\n\n| function | returns | description |\n|---|---|---|\n'
	|| string_agg(format('| `%s(%s)` | `%s` | %s |', p.proname, replace(pg_get_function_identity_arguments(p.oid), '|', '\|'),
						 pg_get_function_result(p.oid), replace(coalesce(obj_description(p.oid, 'pg_proc'), ''), '|', '\|')),
				  E'\n' ORDER BY p.proname, pg_get_function_identity_arguments(p.oid))
FROM pg_proc p WHERE p.pronamespace = 'evmgmt'::regnamespace;

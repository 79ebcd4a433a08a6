/*-------------------------------------------------------------------------
 *
 * site_scope.c
 *	  Row-level security by site: who is acting, and the one COPY that row
 *	  security would refuse.
 *
 * The policies of sql/install/86_site_scope.sql restrict a role bound to
 * some sites (evmgmt.site_binding) to those sites.  They ask
 * evmgmt.site_scope(), which must answer for the role the session acts as
 * even inside the extension's SECURITY DEFINER functions (where current_user
 * is the owner): acting_role() is GetOuterUserId(), the role set by login or
 * SET ROLE, which function calls do not change.
 *
 * PostgreSQL refuses COPY FROM into a table with row-level security for any
 * role the security applies to, so the ETL role's strict COPY into the
 * partitioned interval_stat would fail once it has policies.  The utility
 * hook runs exactly that statement - COPY FROM STDIN into evmgmt.interval_stat,
 * without a WHERE clause, by a role that holds INSERT on the table - as the
 * table's owner (SECURITY_LOCAL_USERID_CHANGE), with the table named by its
 * schema in the statement that runs (src/ddl_hook.c), so that nothing found
 * on the caller's search_path meanwhile is loaded.  Nothing the caller chooses
 * is evaluated with the owner's rights: no file or program is opened, no
 * expression of theirs is run; the column types are built-in, and the
 * constraints and triggers are the extension's own.  Row security does not
 * restrict inserts into interval_stat for anyone (its INSERT policy is
 * true), so the COPY loads exactly what an INSERT by the caller would.
 *
 * IDENTIFICATION
 *	  src/site_scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "evmgmt.h"

PG_FUNCTION_INFO_V1(evmgmt_acting_role);
PG_FUNCTION_INFO_V1(evmgmt_site_scope_exempt);
PG_FUNCTION_INFO_V1(evmgmt_site_scope_exempted);
PG_FUNCTION_INFO_V1(evmgmt_site_scope);
PG_FUNCTION_INFO_V1(evmgmt_site_in_scope);

/*
 * Detection acts for the operation, not for the login whose load it
 * evaluates: while it runs (site_scope_exempt(true) .. (false), called only
 * by the extension's own trigger) site_scope() restricts nobody.  Reset at
 * the end of every transaction.
 */
static int	scope_exempt_depth = 0;
static bool scope_callback_registered = false;

static void
ScopeXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		scope_exempt_depth = 0;
}

/* site_scope_exempt(on boolean): enter (true) or leave (false) the exemption. */
Datum
evmgmt_site_scope_exempt(PG_FUNCTION_ARGS)
{
	if (!scope_callback_registered)
	{
		RegisterXactCallback(ScopeXactCallback, NULL);
		scope_callback_registered = true;
	}
	if (PG_ARGISNULL(0) || PG_GETARG_BOOL(0))
		scope_exempt_depth++;
	else if (scope_exempt_depth > 0)
		scope_exempt_depth--;
	PG_RETURN_VOID();
}

/* site_scope_exempted() -> whether detection is running (see above). */
Datum
evmgmt_site_scope_exempted(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(scope_exempt_depth > 0);
}

/*
 * acting_role() -> oid
 *
 * The role the session acts as (login or SET ROLE), also inside SECURITY
 * DEFINER functions.
 */
Datum
evmgmt_acting_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/*
 * Whether this utility statement is the strict interval COPY that row
 * security would refuse, to be run as *owner.
 */
bool
EvmgmtCopyNeedsOwner(Node *parsetree, Oid *owner)
{
	CopyStmt   *stmt;
	Oid			relid;

	if (!IsA(parsetree, CopyStmt))
		return false;
	stmt = (CopyStmt *) parsetree;
	if (!stmt->is_from || stmt->relation == NULL || stmt->query != NULL ||
		stmt->filename != NULL || stmt->is_program || stmt->whereClause != NULL)
		return false;
	if (!IsTransactionState())
		return false;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || relid != EvmgmtRelationOid("interval_stat", true))
		return false;
	if (check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED)
		return false;
	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		return false;
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

		if (!HeapTupleIsValid(tup))
			return false;
		*owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
	}
	return OidIsValid(*owner);
}

/*
 * site_scope() -> text[]
 *
 * NULL when nothing restricts the acting role, else the sites it may see: in
 * every operation where one of its roles is bound, the bound sites; all
 * sites of the other operations.  Every policy asks once per statement, so
 * this answers superusers, the worker and detection without a query, and
 * runs the one query of everyone else from a plan kept for the backend.
 */
static SPIPlanPtr scope_plan = NULL;

static const char *const scope_sql =
"WITH bound AS ("
"  SELECT b.site_id, s.operation_id"
"  FROM evmgmt.site_binding b"
"  JOIN evmgmt.site s ON s.site_id = b.site_id"
"  JOIN pg_catalog.pg_roles r ON r.rolname = b.role_name"
"  WHERE pg_catalog.pg_has_role($1, r.oid, 'MEMBER'))"
" SELECT CASE WHEN NOT EXISTS (SELECT FROM bound) THEN NULL"
"  ELSE ARRAY(SELECT s.site_id::text FROM evmgmt.site s"
"   WHERE s.site_id IN (SELECT bound.site_id FROM bound)"
"      OR s.operation_id NOT IN (SELECT bound.operation_id FROM bound)"
"   ORDER BY 1) END";

/* Whether nothing can restrict the acting role (no query needed). */
static bool
ScopeUnrestricted(Oid role)
{
	return scope_exempt_depth > 0 || superuser_arg(role) || role == get_role_oid("evmgmt_worker", true);
}

/* The scope of the acting role (NULL: unrestricted) in the caller's memory context. */
static Datum
ComputeScope(Oid role, bool *isnull)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	Datum		result;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (scope_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(scope_sql, 1, argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		scope_plan = plan;
	}
	args[0] = ObjectIdGetDatum(role);
	rc = SPI_execute_plan(scope_plan, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "site scope query failed: %s", SPI_result_code_string(rc));
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
	if (!*isnull)
		result = SPI_datumTransfer(result, false, -1);
	SPI_finish();
	return result;
}

/*
 * Whether the acting role may see and change data of this site: for the
 * lifecycle functions (src/lifecycle.c), which run as the owner.  True at
 * once for superusers, the worker and detection, and in a database whose
 * extension predates site bindings (0.1.0, before ALTER EXTENSION UPDATE).
 */
bool
EvmgmtSiteInScope(Datum site_id)
{
	Oid			role = GetOuterUserId();
	bool		isnull;
	Datum		scope;
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	text	   *site = DatumGetTextPP(site_id);

	if (ScopeUnrestricted(role))
		return true;
	if (!OidIsValid(EvmgmtRelationOid("site_binding", true)))
		return true;
	scope = ComputeScope(role, &isnull);
	if (isnull)
		return true;
	arr = DatumGetArrayTypeP(scope);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		text	   *t = DatumGetTextPP(elems[i]);

		if (!nulls[i] && VARSIZE_ANY_EXHDR(t) == VARSIZE_ANY_EXHDR(site) &&
			memcmp(VARDATA_ANY(t), VARDATA_ANY(site), VARSIZE_ANY_EXHDR(site)) == 0)
			return true;
	}
	return false;
}

Datum
evmgmt_site_scope(PG_FUNCTION_ARGS)
{
	Oid			role = GetOuterUserId();
	bool		isnull;
	Datum		result;

	if (ScopeUnrestricted(role))
		PG_RETURN_NULL();
	result = ComputeScope(role, &isnull);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

/* site_in_scope(site_id) -> boolean: EvmgmtSiteInScope() for SQL. */
Datum
evmgmt_site_in_scope(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(EvmgmtSiteInScope(PG_GETARG_DATUM(0)));
}

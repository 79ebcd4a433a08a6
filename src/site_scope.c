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
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"

#include "evmgmt.h"

PG_FUNCTION_INFO_V1(evmgmt_acting_role);
PG_FUNCTION_INFO_V1(evmgmt_site_scope_exempt);
PG_FUNCTION_INFO_V1(evmgmt_site_scope_exempted);

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
	Oid			nsp;
	Oid			relid;

	if (!IsA(parsetree, CopyStmt))
		return false;
	stmt = (CopyStmt *) parsetree;
	if (!stmt->is_from || stmt->relation == NULL || stmt->query != NULL ||
		stmt->filename != NULL || stmt->is_program || stmt->whereClause != NULL)
		return false;
	if (!IsTransactionState())
		return false;
	nsp = get_namespace_oid("evmgmt", true);
	if (!OidIsValid(nsp))
		return false;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (!OidIsValid(relid) || relid != get_relname_relid("interval_stat", nsp))
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

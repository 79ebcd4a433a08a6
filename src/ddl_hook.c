/*-------------------------------------------------------------------------
 *
 * ddl_hook.c
 *	  A ProcessUtility hook that keeps the workers in step with DDL that
 *	  concerns them.
 *
 *	  - CREATE EXTENSION evmgmt, CREATE DATABASE: the launcher is asked, at
 *		commit, to look again for databases that have the extension.
 *	  - DROP EXTENSION evmgmt: the database's worker is woken at commit; it
 *		finds the extension gone and exits.
 *	  - ALTER EXTENSION evmgmt UPDATE: the worker is woken at commit; it
 *		finds the new version and, if it was idling on an older one, resumes.
 *	  - DROP DATABASE, ALTER DATABASE ... RENAME and ... SET TABLESPACE: these
 *		need the database to have no other connections, so the worker there
 *		is terminated and the launcher is kept from starting a new one for a
 *		while.  DROP DATABASE neither hangs nor fails because of evmgmt.
 *
 * The worker is stopped only for a statement that will get past the
 * command's own checks (the database exists and is not the current one, the
 * user owns it, DROP DATABASE runs outside a transaction block, a rename
 * has the CREATEDB privilege): otherwise any login could keep a database's
 * escalations down by repeating a DROP DATABASE that fails.  If the
 * statement fails later anyway (another session is connected), the block
 * is lifted at once and the launcher brings the worker back.
 *
 * IDENTIFICATION
 *	  src/ddl_hook.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/syscache.h"

#include "evmgmt.h"
#include "workers.h"

/* Seconds a database stays closed to workers after DROP DATABASE starts. */
#define DROP_BLOCK_SECONDS 30

static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* Does a DROP EXTENSION statement name evmgmt? */
static bool
DropNamesEvmgmt(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *obj = lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), "evmgmt") == 0)
			return true;
	}
	return false;
}

/* Does ALTER DATABASE move the database to another tablespace? */
static bool
MovesTablespace(AlterDatabaseStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "tablespace") == 0)
			return true;
	}
	return false;
}

/*
 * May the current user create databases (what RENAME and the like require
 * besides ownership)?  The server's have_createdb_privilege() is exported
 * only from PostgreSQL 15.19 on, so the same test is made here.
 */
static bool
MayCreateDatabases(void)
{
	HeapTuple	tup;
	bool		result = false;

	if (superuser())
		return true;
	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(GetUserId()));
	if (HeapTupleIsValid(tup))
	{
		result = ((Form_pg_authid) GETSTRUCT(tup))->rolcreatedb;
		ReleaseSysCache(tup);
	}
	return result;
}

/*
 * Close a database to workers before a statement that needs it empty, if
 * the statement will pass the checks the command itself makes first.
 * Returns the database closed, InvalidOid if none.
 */
static Oid
CloseDatabaseToWorkers(const char *dbname, bool needs_createdb)
{
	Oid			dboid = get_database_oid(dbname, true);

	if (!OidIsValid(dboid) || dboid == MyDatabaseId)
		return InvalidOid;
	if (!pg_database_ownercheck(dboid, GetUserId()))
		return InvalidOid;
	if (needs_createdb && !MayCreateDatabases())
		return InvalidOid;
	EvmgmtBlockDatabase(dboid, DROP_BLOCK_SECONDS);
	return dboid;
}

/* The hook itself. */
static void
EvmgmtProcessUtility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	volatile Oid closed = InvalidOid;
	volatile bool reopen = false;
	Oid			copy_owner = InvalidOid;
	PlannedStmt *volatile run_stmt = pstmt;
	volatile bool run_read_only = readOnlyTree;
	Oid			save_userid = InvalidOid;
	int			save_sec_context = 0;

	if (evmgmt_shared != NULL)
	{
		switch (nodeTag(parsetree))
		{
			case T_DropdbStmt:
				/* PreventInTransactionBlock would refuse it */
				if (context == PROCESS_UTILITY_TOPLEVEL && !IsTransactionBlock())
					closed = CloseDatabaseToWorkers(((DropdbStmt *) parsetree)->dbname, false);
				break;
			case T_RenameStmt:
				if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				{
					closed = CloseDatabaseToWorkers(((RenameStmt *) parsetree)->subname, true);
					reopen = true;
				}
				break;
			case T_AlterDatabaseStmt:
				if (MovesTablespace((AlterDatabaseStmt *) parsetree))
				{
					closed = CloseDatabaseToWorkers(((AlterDatabaseStmt *) parsetree)->dbname, false);
					reopen = true;
				}
				break;
			case T_CreateExtensionStmt:
				if (strcmp(((CreateExtensionStmt *) parsetree)->extname, "evmgmt") == 0)
					EvmgmtWakeWorkerAtCommit(true);
				break;
			case T_AlterExtensionStmt:
				if (strcmp(((AlterExtensionStmt *) parsetree)->extname, "evmgmt") == 0)
					EvmgmtWakeWorkerAtCommit(false);
				break;
			case T_DropStmt:
				if (DropNamesEvmgmt((DropStmt *) parsetree))
					EvmgmtWakeWorkerAtCommit(false);
				break;
			case T_CreatedbStmt:
				EvmgmtWakeWorkerAtCommit(true);
				break;
			default:
				break;
		}
	}

	/* the strict interval COPY under row security (src/site_scope.c) */
	if (EvmgmtCopyNeedsOwner(parsetree, &copy_owner))
	{
		CopyStmt   *copy;

		/*
		 * The statement run as the owner names evmgmt.interval_stat itself:
		 * a table of the same name that appears on the caller's search_path
		 * meanwhile is never the one loaded.
		 */
		run_stmt = copyObject(pstmt);
		run_read_only = false;
		copy = (CopyStmt *) run_stmt->utilityStmt;
		copy->relation->schemaname = pstrdup("evmgmt");
		copy->relation->catalogname = NULL;
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(copy_owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	}

	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(run_stmt, queryString, run_read_only, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(run_stmt, queryString, run_read_only, context,
									params, queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		if (OidIsValid(copy_owner))
			SetUserIdAndSecContext(save_userid, save_sec_context);
		/* the statement failed: the database keeps its worker after all */
		if (OidIsValid(closed))
		{
			EvmgmtUnblockDatabase(closed);
			EvmgmtWakeLauncher(true);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (OidIsValid(copy_owner))
		SetUserIdAndSecContext(save_userid, save_sec_context);

	/*
	 * A renamed or moved database gets its worker back at once; a dropped one
	 * is forgotten by the launcher's rescan.
	 */
	if (OidIsValid(closed))
	{
		if (reopen)
			EvmgmtUnblockDatabase(closed);
		EvmgmtWakeLauncher(true);
	}
}

/* Install the hook (every backend that loads the library). */
void
EvmgmtInstallDdlHook(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = EvmgmtProcessUtility;
}

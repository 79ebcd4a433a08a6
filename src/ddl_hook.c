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
 *	  - DROP DATABASE, ALTER DATABASE ... RENAME and ... SET TABLESPACE: these
 *		need the database to have no other connections, so the worker there is terminated and the
 *		launcher is kept from starting a new one for a while.  DROP DATABASE
 *		neither hangs nor fails because of evmgmt.
 *
 * IDENTIFICATION
 *	  src/ddl_hook.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

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

/* Close a database to workers before a statement that needs it empty. */
static Oid
CloseDatabaseToWorkers(const char *dbname)
{
	Oid			dboid = get_database_oid(dbname, true);

	if (OidIsValid(dboid))
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
	Oid			reopen = InvalidOid;

	if (evmgmt_shared != NULL)
	{
		switch (nodeTag(parsetree))
		{
			case T_DropdbStmt:
				(void) CloseDatabaseToWorkers(((DropdbStmt *) parsetree)->dbname);
				break;
			case T_RenameStmt:
				if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
					reopen = CloseDatabaseToWorkers(((RenameStmt *) parsetree)->subname);
				break;
			case T_AlterDatabaseStmt:
				if (MovesTablespace((AlterDatabaseStmt *) parsetree))
					reopen = CloseDatabaseToWorkers(((AlterDatabaseStmt *) parsetree)->dbname);
				break;
			case T_CreateExtensionStmt:
				if (strcmp(((CreateExtensionStmt *) parsetree)->extname, "evmgmt") == 0)
					EvmgmtWakeWorkerAtCommit(true);
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

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
							params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/*
	 * A reopen or moved database gets its worker back at once; a dropped one is
	 * forgotten by the launcher's rescan.  (If the statement fails, the block
	 * simply expires.)
	 */
	if (OidIsValid(reopen))
		EvmgmtBlockDatabase(reopen, 0);
	if (evmgmt_shared != NULL &&
		(OidIsValid(reopen) || IsA(parsetree, DropdbStmt)))
		EvmgmtWakeLauncher(true);
}

/* Install the hook (every backend that loads the library). */
void
EvmgmtInstallDdlHook(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = EvmgmtProcessUtility;
}

/*-------------------------------------------------------------------------
 *
 * work_unit.c
 *	  The transaction bracket of every unit of background work: the
 *	  launcher's scan of pg_database, and the worker's due escalation work,
 *	  claims, settlements, reclaims and purges.
 *
 * A unit is short and never spans network I/O:
 *
 *		EvmgmtBeginUnit("evmgmt: doing X");
 *		... SPI ...
 *		EvmgmtEndUnit();
 *
 * Begin sets the statement start time, starts a transaction, connects SPI
 * and pushes a snapshot; End disconnects SPI, pops the snapshot, commits,
 * reports statistics and sets the activity back to idle.  An error inside a unit
 * is handled by the caller (a subtransaction), or ends the process, whose
 * work the launcher restarts.
 *
 * IDENTIFICATION
 *	  src/work_unit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/snapmgr.h"

#include "workers.h"

/* Start a unit of work: a transaction with SPI and a snapshot. */
void
EvmgmtBeginUnit(const char *activity)
{
	pgstat_report_activity(STATE_RUNNING, activity);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "evmgmt: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
}

/* Finish a unit of work: commit it and report its statistics. */
void
EvmgmtEndUnit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database evmgmt worker: runs due escalation work, dispatches
 *	  the notification outbox, purges old delivery history, and otherwise
 *	  sleeps on its latch until the next due time.
 *
 * One cycle:
 *	  1. a short transaction: check that the extension is still installed
 *		 (exit quietly if not) and call evmgmt.run_due_work(), which fires due
 *		 escalation steps, status updates and target timers and returns when
 *		 it next has something to do;
 *	  2. dispatch every due notification (dispatch.c), calling run_due_work
 *		 again whenever it comes due or the latch is set meanwhile;
 *	  3. purge delivery history older than evmgmt.delivery_retention, in
 *		 small batches, at most every few minutes;
 *	  4. sleep until the earliest of: the next run_due_work time, the next
 *		 notification retry, the earliest lease expiry, the next purge; or
 *		 until a committing transaction sets the latch
 *		 (evmgmt.wake_workers()).
 *
 * The escalation work runs in a subtransaction: if it fails, the error is
 * logged, deliveries go on and it is tried again a little later.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "workers.h"

/* Delay before retrying escalation work that failed. */
#define DUE_WORK_RETRY_MS	10000
/* Rows purged per transaction, and the pause between purges. */
#define PURGE_BATCH			1000
#define PURGE_INTERVAL_MS	(5 * 60 * 1000)

static int	my_slot = -1;
static MemoryContext cycle_cxt = NULL;
static TimestampTz next_purge = 0;

/* Before shmem exit: leave the slot so that backends stop waking us. */
static void
WorkerDetach(int code, Datum arg)
{
	SpinLockAcquire(&evmgmt_shared->mutex);
	evmgmt_shared->slots[my_slot].pid = 0;
	evmgmt_shared->slots[my_slot].latch = NULL;
	evmgmt_shared->slots[my_slot].detached = true;
	SpinLockRelease(&evmgmt_shared->mutex);
}

/* Take our slot; false if the launcher gave it away meanwhile. */
static bool
WorkerAttach(int slotno, Oid dboid)
{
	bool		ok = true;

	SpinLockAcquire(&evmgmt_shared->mutex);
	if (slotno < 0 || slotno >= evmgmt_shared->nslots ||
		evmgmt_shared->slots[slotno].dboid != dboid ||
		evmgmt_shared->slots[slotno].pid != 0)
		ok = false;
	for (int i = 0; ok && i < evmgmt_shared->nslots; i++)
	{
		/* never two workers for one database */
		if (i != slotno && evmgmt_shared->slots[i].dboid == dboid &&
			evmgmt_shared->slots[i].pid != 0)
			ok = false;
	}
	if (ok)
	{
		evmgmt_shared->slots[slotno].pid = MyProcPid;
		evmgmt_shared->slots[slotno].latch = MyLatch;
		evmgmt_shared->slots[slotno].exit_reason = WORKER_EXIT_NONE;
	}
	SpinLockRelease(&evmgmt_shared->mutex);
	return ok;
}

/* The extension is gone (or was never here): say so and exit. */
static void
ExitNoExtension(void)
{
	SpinLockAcquire(&evmgmt_shared->mutex);
	evmgmt_shared->slots[my_slot].exit_reason = WORKER_EXIT_NO_EXTENSION;
	SpinLockRelease(&evmgmt_shared->mutex);
	AbortOutOfAnyTransaction();
	proc_exit(0);
}

/* Process a pending SIGHUP and any other interrupt. */
void
WorkerHandleInterrupts(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		int			old_retention = evmgmt_delivery_retention_min;

		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		/* a new retention applies at once */
		if (evmgmt_delivery_retention_min != old_retention)
			next_purge = 0;
	}
}

/*
 * Call evmgmt.run_due_work() (escalation engine, sql/install/65_escalation_
 * engine.sql) in a subtransaction; return its next due time.
 */
static TimestampTz
CallRunDueWork(void)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile TimestampTz result = DT_NOEND;
	int			rc;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		rc = SPI_execute("SELECT evmgmt.run_due_work()", false, 1);
		if (rc != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "evmgmt: evmgmt.run_due_work() returned no row");
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
				result = DatumGetTimestampTz(d);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("evmgmt escalation work failed: %s", edata->message),
				 errdetail("It is tried again in %d seconds; notifications are dispatched meanwhile.",
						   DUE_WORK_RETRY_MS / 1000)));
		FreeErrorData(edata);
		result = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), DUE_WORK_RETRY_MS);
	}
	PG_END_TRY();
	return result;
}

/*
 * One short transaction: make sure the extension is still there, then run
 * the due escalation work.  *escalation_due receives its next due time.
 */
void
WorkerRunDueWork(TimestampTz *escalation_due)
{
	TimestampTz due;

	pgstat_report_activity(STATE_RUNNING, "evmgmt: running due escalation work");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("evmgmt", true)))
		ExitNoExtension();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	due = CallRunDueWork();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	*escalation_due = due;
}

/* Earliest time the outbox needs us again: a retry or an expiring lease. */
static TimestampTz
NextNotificationDue(void)
{
	TimestampTz result = DT_NOEND;
	int			rc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	rc = SPI_execute("SELECT LEAST("
					 "(SELECT pg_catalog.min(next_attempt_at) FROM evmgmt.notification WHERE state IN ('pending', 'retry')),"
					 "(SELECT pg_catalog.min(lease_until) FROM evmgmt.notification WHERE state = 'sending'))",
					 true, 1);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			result = DatumGetTimestampTz(d);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return result;
}

/* Run one purge statement in its own transaction; return the rows removed. */
static uint64
PurgeOnce(const char *sql)
{
	Datum		args[2];
	Oid			types[2] = {INT4OID, INT4OID};
	uint64		n = 0;

	args[0] = Int32GetDatum(evmgmt_delivery_retention_min);
	args[1] = Int32GetDatum(PURGE_BATCH);
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute_with_args(sql, 2, types, args, NULL, false, 0) == SPI_OK_DELETE)
		n = SPI_processed;
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	return n;
}

/*
 * Purge delivery history older than evmgmt.delivery_retention: attempts
 * first, then finished notifications, PURGE_BATCH rows per transaction so
 * that no long transaction or big lock builds up.
 */
static void
PurgeHistory(void)
{
	static const char *const attempts_sql =
		"DELETE FROM evmgmt.delivery_attempt WHERE attempt_id IN ("
		" SELECT attempt_id FROM evmgmt.delivery_attempt"
		" WHERE started_at < pg_catalog.now() - pg_catalog.make_interval(mins => $1)"
		" LIMIT $2)";
	static const char *const notifications_sql =
		"DELETE FROM evmgmt.notification WHERE notification_id IN ("
		" SELECT notification_id FROM evmgmt.notification"
		" WHERE created_at < pg_catalog.now() - pg_catalog.make_interval(mins => $1)"
		" AND state IN ('sent', 'dead', 'cancelled')"
		" AND NOT EXISTS (SELECT FROM evmgmt.escalation_step_run r WHERE r.notification_id = notification.notification_id)"
		" LIMIT $2)";

	if (evmgmt_delivery_retention_min < 0)
		return;
	pgstat_report_activity(STATE_RUNNING, "evmgmt: purging old delivery history");
	for (int i = 0; i < 100; i++)
	{
		WorkerHandleInterrupts();
		if (PurgeOnce(attempts_sql) < PURGE_BATCH)
			break;
	}
	for (int i = 0; i < 100; i++)
	{
		WorkerHandleInterrupts();
		if (PurgeOnce(notifications_sql) < PURGE_BATCH)
			break;
	}
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Entry point of a per-database worker. */
void
EvmgmtWorkerMain(Datum main_arg)
{
	Oid			dboid;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	evmgmt_am_worker = true;
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	my_slot = DatumGetInt32(main_arg);
	if (evmgmt_shared == NULL || !WorkerAttach(my_slot, dboid))
		proc_exit(0);
	before_shmem_exit(WorkerDetach, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("evmgmt worker");

	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "evmgmt worker cycle",
									  ALLOCSET_DEFAULT_SIZES);

	/* Quietly leave a database that has no extension. */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("evmgmt", true)))
		ExitNoExtension();
	ereport(LOG, (errmsg("evmgmt worker started for database \"%s\"",
						 get_database_name(dboid))));
	CommitTransactionCommand();

	DispatchInit();
	/* Nobody else dispatches here: whatever is still claimed was lost. */
	DispatchReclaimAll();
	next_purge = 0;				/* purge in the first cycle */

	for (;;)
	{
		TimestampTz escalation_due = DT_NOEND;
		TimestampTz wake_at;
		TimestampTz now;
		long		timeout;
		int			rc;

		WorkerHandleInterrupts();
		MemoryContextReset(cycle_cxt);
		MemoryContextSwitchTo(cycle_cxt);

		if (evmgmt_worker_enabled)
		{
			WorkerRunDueWork(&escalation_due);
			if (DispatchRun(&escalation_due))
			{
#ifdef __GLIBC__
				/* hand the memory of big batches back before sleeping */
				malloc_trim(0);
#endif
			}

			now = GetCurrentTimestamp();
			if (now >= next_purge)
			{
				PurgeHistory();
				next_purge = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PURGE_INTERVAL_MS);
			}

			wake_at = NextNotificationDue();
			if (escalation_due < wake_at)
				wake_at = escalation_due;
			if (evmgmt_delivery_retention_min >= 0 && next_purge < wake_at)
				wake_at = next_purge;
			pgstat_report_activity(STATE_IDLE, NULL);

			now = GetCurrentTimestamp();
			if (escalation_due <= now)
				continue;		/* more escalation work than one batch */
			if (wake_at == DT_NOEND)
				timeout = -1;
			else if (wake_at <= now)
			{
				/* due but not claimable yet (a row locked by someone else) */
				timeout = 10;
			}
			else
			{
				/* round up, so that we never wake a hair too early and spin */
				timeout = (long) Min((wake_at - now + 999) / 1000, (TimestampTz) INT_MAX);
			}
		}
		else
			timeout = -1;

		MemoryContextSwitchTo(TopMemoryContext);
		rc = WaitLatch(MyLatch,
					   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (timeout > 0 ? WL_TIMEOUT : 0),
					   timeout, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
}

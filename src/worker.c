/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The per-database evmgmt worker and its one wait loop.
 *
 * The worker owns the only WaitEventSet of the process: its latch,
 * postmaster death, and one socket per step that has sockets (today the
 * dispatcher's epoll set of libcurl's sockets).  Each pass of the loop runs
 * the steps that are due, each of which does what it can without sleeping
 * and says when it wants to run next:
 *
 *	  due work	 evmgmt.run_due_work() in one unit (fires due escalation
 *				 steps, status updates and target timers; returns its next
 *				 due time), on every wake-up by the latch and when it is due;
 *	  dispatch	 EvmgmtDispatchStep() (dispatch.c): claim, start, drive and
 *				 settle deliveries; returns its next wake-up;
 *	  purge		 delete delivery history older than
 *				 evmgmt.delivery_retention, a few small batches per pass,
 *				 every few minutes.
 *
 * Then the loop sleeps in WaitEventSetWait until the earliest wake-up, a
 * ready socket, or the latch (a committing transaction that queued work,
 * SIGHUP, SIGTERM).  Steps never call back into the loop.
 *
 * Every pass starts with the extension check: if evmgmt is gone the worker
 * exits quietly; if the installed version is older than the one this
 * library serves (a database still at 0.1.0 before ALTER EXTENSION UPDATE),
 * it logs once and idles until its latch is set, then checks again.
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

#include <stdlib.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
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
#include "utils/timestamp.h"

#include "evmgmt.h"
#include "workers.h"

/* Delay before retrying escalation work that failed. */
#define DUE_WORK_RETRY_MS	10000
/* While sending is held (a restored copy), look again this often. */
#define HOLD_CHECK_MS		60000
/* Rows purged per transaction, transactions per pass, and the pause between purges. */
#define PURGE_BATCH			1000
#define PURGE_BATCHES_PER_PASS 10
#define PURGE_INTERVAL_MS	(5 * 60 * 1000)

/* What the extension check found. */
typedef enum SchemaState
{
	SCHEMA_READY,				/* installed at (or above) the library's version */
	SCHEMA_OLD					/* installed at an older version: idle */
} SchemaState;

static int	my_slot = -1;
static MemoryContext cycle_cxt = NULL;
static WaitEventSet *wait_set = NULL;
static TimestampTz next_purge = 0;
static bool purging_notifications = false;
static bool told_old_version = false;
static bool reclaimed = false;
static bool probing_as_superuser = false;

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

/*
 * How many wake-ups backends have sent us so far (shmem.c counts them before
 * setting our latch).  The latch alone can lose one: any lock wait inside a
 * unit sleeps on the process latch and resets it when the lock is granted, so
 * a commit that set it meanwhile would go unnoticed until the next timeout.
 */
static uint64
WakeupsSent(void)
{
	uint64		n;

	SpinLockAcquire(&evmgmt_shared->mutex);
	n = evmgmt_shared->slots[my_slot].wakeups;
	SpinLockRelease(&evmgmt_shared->mutex);
	return n;
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

/*
 * Connect to the database as the role evmgmt_worker and pin the session's
 * search_path, so that nothing a database owner creates (a public.* operator,
 * ALTER DATABASE ... SET search_path) is ever resolved by the worker's SQL.
 * The value is set at session level after the connection's own settings
 * (per database and per role, which come lower in GUC priority), and
 * SECURITY DEFINER functions still pin their own.  roleoid is InvalidOid
 * only while the cluster has no evmgmt_worker yet (no database at 0.2.0):
 * the worker then connects as the bootstrap superuser just to read
 * pg_extension, and leaves the database for the launcher to probe again if
 * it finds a version it would have to serve (see CheckExtension).
 */
static void
ConnectAsWorkerRole(Oid dboid, Oid roleoid)
{
	BackgroundWorkerInitializeConnectionByOid(dboid, roleoid, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	probing_as_superuser = !OidIsValid(roleoid);
}

/*
 * Inside the first unit: a worker that serves the database must not be a
 * superuser (CREATE EXTENSION makes evmgmt_worker NOSUPERUSER; somebody may
 * have changed it since).
 */
static void
CheckWorkerRole(void)
{
	if (!probing_as_superuser && superuser())
		ereport(FATAL,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role %s must not be a superuser", EVMGMT_WORKER_ROLE),
				 errdetail("The evmgmt workers run with least privilege; see docs/security.md."),
				 errhint("Run ALTER ROLE %s NOSUPERUSER.", EVMGMT_WORKER_ROLE)));
}

/*
 * A worker probing without evmgmt_worker found a version it would serve
 * (the role was created meanwhile): leave, so that the launcher starts it
 * again as evmgmt_worker.
 */
static void
ExitNeedsRole(void)
{
	SpinLockAcquire(&evmgmt_shared->mutex);
	evmgmt_shared->slots[my_slot].exit_reason = WORKER_EXIT_NEEDS_ROLE;
	SpinLockRelease(&evmgmt_shared->mutex);
	AbortOutOfAnyTransaction();
	proc_exit(0);
}

/* Process a pending SIGHUP and any other interrupt. */
static void
HandleInterrupts(void)
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
 * Call evmgmt.run_due_work() (sql/install/68_run_due_work.sql, which fires
 * each due item in its own subtransaction and records the ones that fail)
 * in a subtransaction of its own, for what fails outside any item; return
 * its next due time.
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

/* Compare dotted version strings numerically: <0, 0, >0. */
static int
CompareVersions(const char *a, const char *b)
{
	while (*a || *b)
	{
		long		x = strtol(a, (char **) &a, 10);
		long		y = strtol(b, (char **) &b, 10);

		if (x != y)
			return x < y ? -1 : 1;
		if (*a == '.')
			a++;
		if (*b == '.')
			b++;
		if ((*a && !(*a >= '0' && *a <= '9')) || (*b && !(*b >= '0' && *b <= '9')))
			return strcmp(a, b);
	}
	return 0;
}

/*
 * Inside a unit: look up the installed version of evmgmt.  Exit quietly if
 * it is not installed; SCHEMA_OLD if it is older than this library's.
 */
static SchemaState
CheckExtension(void)
{
	char	   *version;

	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension"
					" WHERE extname OPERATOR(pg_catalog.=) 'evmgmt'::pg_catalog.name",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "evmgmt: reading pg_extension failed");
	if (SPI_processed == 0)
		ExitNoExtension();
	version = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (version != NULL && CompareVersions(version, EVMGMT_LIBRARY_VERSION) < 0)
	{
		if (!told_old_version)
			ereport(LOG,
					(errmsg("evmgmt worker for database \"%s\" is idle: the extension is at version %s, the library at %s",
							get_database_name(MyDatabaseId), version, EVMGMT_LIBRARY_VERSION),
					 errhint("Run ALTER EXTENSION evmgmt UPDATE in that database.")));
		told_old_version = true;
		return SCHEMA_OLD;
	}
	if (probing_as_superuser)
		ExitNeedsRole();
	if (told_old_version)
		ereport(LOG,
				(errmsg("evmgmt worker for database \"%s\" resumes: the extension is at version %s",
						get_database_name(MyDatabaseId), version ? version : "?")));
	told_old_version = false;
	return SCHEMA_READY;
}

/*
 * The due-work step, one unit: make sure the extension is still there and
 * recent enough, then run the due escalation work.  *due receives its next
 * due time; the result says whether the schema is ready for the other steps.
 */
static SchemaState
StepDueWork(TimestampTz *due)
{
	SchemaState state;

	EvmgmtBeginUnit("evmgmt: running due escalation work");
	state = CheckExtension();
	if (state == SCHEMA_READY && EvmgmtCheckSendingHeld())
		*due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), HOLD_CHECK_MS);
	else if (state == SCHEMA_READY)
		*due = CallRunDueWork();
	else
		*due = DT_NOEND;
	EvmgmtEndUnit();
	return state;
}

/*
 * Purge one batch in its own unit, through evmgmt.purge_delivery_history
 * (SECURITY DEFINER: evmgmt_worker has no DELETE on the outbox); return the
 * rows removed.
 */
static uint64
PurgeOnce(bool notifications)
{
	Datum		args[3];
	Oid			types[3] = {BOOLOID, INT4OID, INT4OID};
	uint64		n = 0;

	args[0] = BoolGetDatum(notifications);
	args[1] = Int32GetDatum(evmgmt_delivery_retention_min);
	args[2] = Int32GetDatum(PURGE_BATCH);
	EvmgmtBeginUnit("evmgmt: purging old delivery history");
	if (SPI_execute_with_args("SELECT evmgmt.purge_delivery_history($1, $2, $3)",
							  3, types, args, NULL, false, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			n = (uint64) DatumGetInt32(d);
	}
	EvmgmtEndUnit();
	return n;
}

/*
 * The purge step: delete delivery history older than
 * evmgmt.delivery_retention, attempts first, then finished notifications,
 * PURGE_BATCH rows per unit and at most PURGE_BATCHES_PER_PASS units per
 * pass, so that no long transaction, big lock or long pass builds up.
 * Returns when it wants to run next.
 */
static TimestampTz
StepPurge(void)
{
	for (int i = 0; i < PURGE_BATCHES_PER_PASS; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (PurgeOnce(purging_notifications) < PURGE_BATCH)
		{
			if (purging_notifications)
			{
				/* all done until the next interval */
				purging_notifications = false;
				return TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PURGE_INTERVAL_MS);
			}
			purging_notifications = true;
		}
	}
	/* more to delete: go on in the next pass, after the other steps */
	return GetCurrentTimestamp();
}

/* Milliseconds from now until ts for WaitEventSetWait (-1: no timeout). */
static long
TimeoutUntil(TimestampTz now, TimestampTz ts)
{
	if (ts == DT_NOEND)
		return -1;
	if (ts <= now)
		return 0;
	/* round up, so that we never wake a hair too early and spin */
	return (long) Min((ts - now + 999) / 1000, (TimestampTz) INT_MAX);
}

/* Entry point of a per-database worker. */
void
EvmgmtWorkerMain(Datum main_arg)
{
	Oid			dboid;
	Oid			roleoid;
	TimestampTz due_work_at = 0;
	bool		woken = true;
	uint64		wakeups_seen = 0;	/* the count when due work last ran */

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	evmgmt_am_worker = true;
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	my_slot = DatumGetInt32(main_arg);
	if (evmgmt_shared == NULL || !WorkerAttach(my_slot, dboid))
		proc_exit(0);
	before_shmem_exit(WorkerDetach, (Datum) 0);

	memcpy(&roleoid, MyBgworkerEntry->bgw_extra + sizeof(Oid), sizeof(Oid));
	ConnectAsWorkerRole(dboid, roleoid);
	pgstat_report_appname("evmgmt worker");

	cycle_cxt = AllocSetContextCreate(TopMemoryContext, "evmgmt worker cycle",
									  ALLOCSET_DEFAULT_SIZES);

	/* Quietly leave a database that has no extension. */
	EvmgmtBeginUnit("evmgmt: starting");
	CheckWorkerRole();
	(void) CheckExtension();
	ereport(LOG, (errmsg("evmgmt worker started for database \"%s\"",
						 get_database_name(dboid))));
	EvmgmtEndUnit();

	/* The one wait set: latch, postmaster death, and the steps' sockets. */
	EvmgmtDispatchInit();
	wait_set = CreateWaitEventSet(TopMemoryContext, 3);
	AddWaitEventToSet(wait_set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(wait_set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(wait_set, WL_SOCKET_READABLE, EvmgmtDispatchSocket(), NULL, NULL);

	next_purge = 0;				/* purge in the first pass */

	for (;;)
	{
		TimestampTz wake_at = DT_NOEND;
		TimestampTz now;
		WaitEvent	events[3];
		int			nevents;

		HandleInterrupts();
		MemoryContextReset(cycle_cxt);
		MemoryContextSwitchTo(cycle_cxt);

		if (evmgmt_worker_enabled)
		{
			SchemaState schema = SCHEMA_READY;
			uint64		wakeups = WakeupsSent();

			now = GetCurrentTimestamp();
			/* a wake-up whose latch a lock wait used up still counts */
			if (wakeups != wakeups_seen)
				woken = true;
			if (woken || due_work_at <= now)
			{
				/*
				 * Read before the unit starts: whatever commits after this
				 * read changes the count again and brings us back.
				 */
				wakeups_seen = wakeups;
				schema = StepDueWork(&due_work_at);
				/* it may have queued notifications (our own writes set no latch) */
				woken = true;
			}
			if (schema == SCHEMA_READY && EvmgmtSendingHeld())
			{
				/* a restored copy or a clone: send nothing until resumed */
				if (due_work_at > TimestampTzPlusMilliseconds(now, HOLD_CHECK_MS))
					due_work_at = TimestampTzPlusMilliseconds(now, HOLD_CHECK_MS);
				if (EvmgmtDispatchBusy())
					wake_at = Min(wake_at, EvmgmtDispatchStep(false, false));
				wake_at = Min(wake_at, due_work_at);
				EvmgmtReportSendingHeld();
			}
			else if (schema == SCHEMA_READY)
			{
				TimestampTz dispatch_at;

				if (!reclaimed)
				{
					/* Nobody else dispatches here: whatever is still claimed was lost. */
					EvmgmtDispatchReclaimAll();
					reclaimed = true;
				}
				wake_at = Min(wake_at, due_work_at);
				/* not inside Min(): the macro would run the step twice */
				dispatch_at = EvmgmtDispatchStep(woken, true);
				wake_at = Min(wake_at, dispatch_at);
				if (evmgmt_delivery_retention_min >= 0)
				{
					if (GetCurrentTimestamp() >= next_purge)
						next_purge = StepPurge();
					wake_at = Min(wake_at, next_purge);
				}
			}
			else
				due_work_at = DT_NOEND; /* idle until the latch is set */
		}
		else if (EvmgmtDispatchBusy())
		{
			/* turned off: let what is in flight finish, claim nothing */
			wake_at = EvmgmtDispatchStep(false, false);
		}
		woken = false;

		MemoryContextSwitchTo(TopMemoryContext);
		/* while deliveries are in flight, the dispatcher's activity stays shown */
		if (!EvmgmtDispatchBusy())
			pgstat_report_activity(STATE_IDLE, NULL);
		now = GetCurrentTimestamp();
		/*
		 * Sleep only if nobody woke us since due work last ran: a wake-up
		 * sent during a lock wait in this pass left no latch set.  One sent
		 * after this check sets the latch, and the wait returns at once.
		 */
		if (evmgmt_worker_enabled && WakeupsSent() != wakeups_seen)
			wake_at = now;
		nevents = WaitEventSetWait(wait_set, TimeoutUntil(now, wake_at), events,
								   lengthof(events), PG_WAIT_EXTENSION);
		for (int i = 0; i < nevents; i++)
		{
			if (events[i].events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				/* new work may have been committed: notifications or escalations */
				woken = true;
			}
			/* a ready socket needs nothing here: the step drains it */
		}
	}
}

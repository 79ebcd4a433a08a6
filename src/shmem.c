/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory of the evmgmt workers, and the wake-up on commit.
 *
 * The shared state holds one slot per running per-database worker (its
 * database, pid and latch) and the launcher's latch.  It is requested in
 * _PG_init through shmem_request_hook and created in shmem_startup_hook, so
 * it exists only when evmgmt is in shared_preload_libraries; every function
 * here is a harmless no-op otherwise.
 *
 * evmgmt.wake_workers() does not wake anybody at once: it records in the
 * backend that the current transaction wants the worker of this database
 * woken, and a transaction callback sets the worker's latch when (and only
 * when) the transaction commits.  A worker woken before the commit would
 * look for work it cannot see yet and go back to sleep.
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "evmgmt.h"
#include "workers.h"

PG_FUNCTION_INFO_V1(evmgmt_wake_workers);
PG_FUNCTION_INFO_V1(evmgmt_wake_workers_trigger);

EvmgmtShared *evmgmt_shared = NULL;

/* true in a per-database worker: its own writes need not wake it */
bool		evmgmt_am_worker = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* what the current transaction asked for at commit */
static bool wake_worker_at_commit = false;
static bool wake_launcher_at_commit = false;
static bool xact_callback_registered = false;

/* Size of the shared state for evmgmt.max_databases slots. */
static Size
EvmgmtShmemSize(void)
{
	return add_size(offsetof(EvmgmtShared, slots),
					mul_size(sizeof(WorkerSlot), evmgmt_max_databases));
}

/* shmem_request_hook: reserve our shared memory. */
static void
EvmgmtShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(EvmgmtShmemSize());
}

/* shmem_startup_hook: create or attach to the shared state. */
static void
EvmgmtShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	evmgmt_shared = ShmemInitStruct("evmgmt workers", EvmgmtShmemSize(), &found);
	if (!found)
	{
		memset(evmgmt_shared, 0, EvmgmtShmemSize());
		SpinLockInit(&evmgmt_shared->mutex);
		evmgmt_shared->nslots = evmgmt_max_databases;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Install the shared memory hooks (called from _PG_init when preloading). */
void
EvmgmtShmemInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = EvmgmtShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = EvmgmtShmemStartup;
}

/* Set the launcher's latch, optionally asking it to re-probe databases. */
void
EvmgmtWakeLauncher(bool rescan)
{
	Latch	   *latch;

	if (evmgmt_shared == NULL)
		return;
	SpinLockAcquire(&evmgmt_shared->mutex);
	if (rescan)
		evmgmt_shared->rescan_requested = true;
	latch = evmgmt_shared->launcher_latch;
	SpinLockRelease(&evmgmt_shared->mutex);
	if (latch)
		SetLatch(latch);
}

/* Set the latch of this database's worker; wake the launcher if there is none. */
static void
WakeDatabaseWorkerNow(bool also_launcher)
{
	Latch	   *latch = NULL;
	int			i;

	if (evmgmt_shared == NULL || !OidIsValid(MyDatabaseId))
		return;
	SpinLockAcquire(&evmgmt_shared->mutex);
	for (i = 0; i < evmgmt_shared->nslots; i++)
	{
		WorkerSlot *slot = &evmgmt_shared->slots[i];

		if (slot->dboid == MyDatabaseId && slot->latch != NULL)
		{
			slot->wakeups++;
			latch = slot->latch;
			break;
		}
	}
	SpinLockRelease(&evmgmt_shared->mutex);
	if (latch)
		SetLatch(latch);
	if (latch == NULL || also_launcher)
		EvmgmtWakeLauncher(also_launcher);
}

/* Transaction callback: act on the wishes of the transaction that ends. */
static void
EvmgmtXactCallback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_worker_at_commit || wake_launcher_at_commit)
				WakeDatabaseWorkerNow(wake_launcher_at_commit);
			wake_worker_at_commit = false;
			wake_launcher_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's COMMIT PREPARED runs no callback of ours */
			wake_worker_at_commit = false;
			wake_launcher_at_commit = false;
			break;
		default:
			break;
	}
}

/* Ask for this database's worker (and maybe the launcher) to be woken at commit. */
void
EvmgmtWakeWorkerAtCommit(bool also_launcher)
{
	if (evmgmt_shared == NULL)
		return;
	if (!xact_callback_registered)
	{
		RegisterXactCallback(EvmgmtXactCallback, NULL);
		xact_callback_registered = true;
	}
	wake_worker_at_commit = true;
	if (also_launcher)
		wake_launcher_at_commit = true;
}

/* Is a worker for this database forbidden for now (DROP DATABASE under way)? */
bool
EvmgmtDatabaseIsBlocked(Oid dboid, TimestampTz now, TimestampTz *until)
{
	bool		blocked = false;
	int			i;

	if (evmgmt_shared == NULL)
		return false;
	SpinLockAcquire(&evmgmt_shared->mutex);
	for (i = 0; i < EVMGMT_MAX_BLOCKED; i++)
	{
		BlockedDatabase *b = &evmgmt_shared->blocked[i];

		if (b->dboid == dboid && b->until > now)
		{
			blocked = true;
			if (until)
				*until = b->until;
		}
	}
	SpinLockRelease(&evmgmt_shared->mutex);
	return blocked;
}

/* Forbid workers in a database for some seconds, and stop the one running. */
void
EvmgmtBlockDatabase(Oid dboid, int seconds)
{
	TimestampTz now = GetCurrentTimestamp();
	int			oldest = 0;
	int			i;
	pid_t		pid = 0;

	if (evmgmt_shared == NULL)
		return;
	SpinLockAcquire(&evmgmt_shared->mutex);
	for (i = 0; i < EVMGMT_MAX_BLOCKED; i++)
	{
		BlockedDatabase *b = &evmgmt_shared->blocked[i];

		if (b->dboid == dboid || b->until <= now)
		{
			oldest = i;
			break;
		}
		if (b->until < evmgmt_shared->blocked[oldest].until)
			oldest = i;
	}
	evmgmt_shared->blocked[oldest].dboid = dboid;
	evmgmt_shared->blocked[oldest].until = TimestampTzPlusMilliseconds(now, seconds * 1000);
	for (i = 0; i < evmgmt_shared->nslots; i++)
	{
		if (evmgmt_shared->slots[i].dboid == dboid && evmgmt_shared->slots[i].pid != 0)
			pid = evmgmt_shared->slots[i].pid;
	}
	SpinLockRelease(&evmgmt_shared->mutex);

	if (pid == 0)
		return;

	/* Terminate the worker and wait (bounded) until it has left its slot. */
	kill(pid, SIGTERM);
	for (i = 0; i < 1000; i++)
	{
		bool		gone;

		SpinLockAcquire(&evmgmt_shared->mutex);
		gone = true;
		for (int j = 0; j < evmgmt_shared->nslots; j++)
		{
			if (evmgmt_shared->slots[j].pid == pid)
				gone = false;
		}
		SpinLockRelease(&evmgmt_shared->mutex);
		if (gone)
			break;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/* Lift the block of a database (its statement failed or is done). */
void
EvmgmtUnblockDatabase(Oid dboid)
{
	if (evmgmt_shared == NULL)
		return;
	SpinLockAcquire(&evmgmt_shared->mutex);
	for (int i = 0; i < EVMGMT_MAX_BLOCKED; i++)
	{
		if (evmgmt_shared->blocked[i].dboid == dboid)
		{
			evmgmt_shared->blocked[i].dboid = InvalidOid;
			evmgmt_shared->blocked[i].until = 0;
		}
	}
	SpinLockRelease(&evmgmt_shared->mutex);
}

/*
 * evmgmt.wake_workers(): wake this database's worker when the calling
 * transaction commits.
 */
Datum
evmgmt_wake_workers(PG_FUNCTION_ARGS)
{
	EvmgmtWakeWorkerAtCommit(false);
	PG_RETURN_VOID();
}

/*
 * evmgmt.wake_workers_trigger(): the statement-level trigger form, on the
 * outbox and on escalations.  Rows restored from a dump (evmgmt.restoring
 * on) wake nobody, and neither do the worker's own writes: it looks for
 * more work after each of its transactions anyway.
 */
Datum
evmgmt_wake_workers_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "evmgmt_wake_workers_trigger: not called by trigger manager");
	if (!evmgmt_restoring && !evmgmt_am_worker)
		EvmgmtWakeWorkerAtCommit(false);
	return PointerGetDatum(NULL);
}

/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The evmgmt launcher: one background worker, registered from
 *	  shared_preload_libraries, that starts one worker per database having
 *	  the extension and restarts the ones that stop unexpectedly.
 *
 * The launcher is connected to no database; it reads the shared catalog
 * pg_database.  Whether a database has the extension is something only a
 * process connected to it can see, so the launcher simply starts a worker
 * there: a worker that finds no extension says so in its slot and exits,
 * and the launcher remembers the database as "absent" until CREATE
 * EXTENSION (or CREATE DATABASE) asks for a rescan.  Template databases are
 * skipped: a worker connected to one would make CREATE DATABASE fail.
 *
 * Workers connect as the role evmgmt_worker (created by CREATE EXTENSION,
 * see docs/security.md), never as the bootstrap superuser: the launcher looks
 * the role up at every scan of pg_database and hands its OID to each worker
 * in bgw_extra.  A database evmgmt_worker may not connect to is skipped (it
 * cannot be served) and logged once.  Only while no evmgmt_worker exists in
 * the cluster (no database has evmgmt 0.2.0 or later yet) does a worker
 * connect without it, to probe a database's version and idle; it runs no
 * SQL but a catalog read with a pinned search_path (worker.c).
 *
 * The launcher starts only once recovery is finished (BgWorkerStart_
 * RecoveryFinished), so workers run on a primary only and start by
 * themselves after a promotion.  Workers are dynamic background workers
 * with bgw_notify_pid set to the launcher, so their exit sets its latch.
 *
 * IDENTIFICATION
 *	  src/launcher.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "workers.h"

/* How long to wait before restarting a worker that stopped unexpectedly. */
#define WORKER_RESTART_DELAY_MS		1000
/* How often to look for new databases without being asked. */
#define LAUNCHER_RESCAN_MS			(5 * 60 * 1000)

/* What the launcher knows about one database. */
typedef enum KnownState
{
	DB_PROBE,					/* start a worker as soon as possible */
	DB_RUNNING,					/* a worker was started */
	DB_ABSENT,					/* no extension there */
	DB_WAIT						/* start a worker at retry_at */
} KnownState;

typedef struct KnownDb
{
	Oid			dboid;
	KnownState	state;
	TimestampTz retry_at;
	int			slot;
	BackgroundWorkerHandle *handle;
	bool		seen;
	bool		no_connect;		/* evmgmt_worker lacks CONNECT there */
	bool		told_no_connect;	/* ... and that was logged */
	bool		needs_role;		/* its worker asked for evmgmt_worker */
} KnownDb;

static KnownDb *known = NULL;
static int	nknown = 0;
static int	maxknown = 0;

/* The OID of the role evmgmt_worker at the last scan (InvalidOid: none yet). */
static Oid	worker_role = InvalidOid;

/* Register the launcher (called from _PG_init while preloading). */
void
EvmgmtRegisterLauncher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "evmgmt");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "EvmgmtLauncherMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "evmgmt launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "evmgmt launcher");
	RegisterBackgroundWorker(&worker);
}

/* Find or add the entry of a database. */
static KnownDb *
KnownLookup(Oid dboid, bool add)
{
	for (int i = 0; i < nknown; i++)
	{
		if (known[i].dboid == dboid)
			return &known[i];
	}
	if (!add)
		return NULL;
	if (nknown == maxknown)
	{
		maxknown = Max(16, maxknown * 2);
		if (known == NULL)
			known = MemoryContextAlloc(TopMemoryContext, sizeof(KnownDb) * maxknown);
		else
			known = repalloc(known, sizeof(KnownDb) * maxknown);
	}
	memset(&known[nknown], 0, sizeof(KnownDb));
	known[nknown].dboid = dboid;
	known[nknown].state = DB_PROBE;
	known[nknown].slot = -1;
	return &known[nknown++];
}

/*
 * May evmgmt_worker connect to the database of this pg_database tuple?  Read
 * from the tuple the scan just returned, not through the syscache: the
 * launcher is woken by a committing CREATE EXTENSION (which grants CONNECT)
 * before that transaction's cache invalidations are sent.
 */
static bool
WorkerRoleMayConnect(Relation rel, HeapTuple tup, Form_pg_database db)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_pg_database_datacl, RelationGetDescr(rel), &isnull);
	Acl		   *acl;

	if (isnull)
		acl = acldefault(OBJECT_DATABASE, db->datdba);
	else
		acl = DatumGetAclP(d);
	return aclmask(acl, worker_role, db->datdba, ACL_CONNECT, ACLMASK_ANY) != 0;
}

/* Read pg_database: add new databases, forget dropped ones. */
static void
ScanDatabases(bool reprobe_absent)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	int			i,
				j;

	for (i = 0; i < nknown; i++)
		known[i].seen = false;

	EvmgmtBeginUnit("evmgmt: scanning pg_database");
	worker_role = get_role_oid(EVMGMT_WORKER_ROLE, true);
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		KnownDb    *k;

		if (!db->datallowconn || db->datistemplate || database_is_invalid_form(db))
			continue;
		k = KnownLookup(db->oid, true);
		k->seen = true;
		if (reprobe_absent && k->state == DB_ABSENT)
			k->state = DB_PROBE;
		k->no_connect = OidIsValid(worker_role) &&
			!WorkerRoleMayConnect(rel, tup, db);
		if (k->no_connect && k->state != DB_RUNNING)
		{
			if (!k->told_no_connect)
				ereport(LOG,
						(errmsg("evmgmt does not run in database \"%s\": role %s has no CONNECT privilege there",
								NameStr(db->datname), EVMGMT_WORKER_ROLE),
						 errhint("Run GRANT CONNECT ON DATABASE %s TO %s, or CREATE EXTENSION evmgmt there, which grants it.",
								 quote_identifier(NameStr(db->datname)), EVMGMT_WORKER_ROLE)));
			k->told_no_connect = true;
			k->state = DB_ABSENT;
		}
		else if (!k->no_connect)
			k->told_no_connect = false;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	EvmgmtEndUnit();

	/* Forget databases that are gone (a running worker is watched until it stops). */
	for (i = 0, j = 0; i < nknown; i++)
	{
		if (known[i].seen || known[i].state == DB_RUNNING)
			known[j++] = known[i];
	}
	nknown = j;
}

/* Start a worker for a database; false if no slot or no worker was free. */
static bool
LaunchWorker(KnownDb *k)
{
	BackgroundWorker worker;
	int			slotno = -1;
	int			i;

	SpinLockAcquire(&evmgmt_shared->mutex);
	for (i = 0; i < evmgmt_shared->nslots; i++)
	{
		if (!OidIsValid(evmgmt_shared->slots[i].dboid))
		{
			slotno = i;
			memset(&evmgmt_shared->slots[i], 0, sizeof(WorkerSlot));
			evmgmt_shared->slots[i].dboid = k->dboid;
			break;
		}
	}
	SpinLockRelease(&evmgmt_shared->mutex);
	if (slotno < 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("no free evmgmt worker slot for database %u", k->dboid),
				 errhint("Raise evmgmt.max_databases and restart the server.")));
		return false;
	}

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "evmgmt");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "EvmgmtWorkerMain");
	snprintf(worker.bgw_name, BGW_MAXLEN, "evmgmt worker for database %u", k->dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "evmgmt worker");
	worker.bgw_main_arg = Int32GetDatum(slotno);
	memcpy(worker.bgw_extra, &k->dboid, sizeof(Oid));
	memcpy(worker.bgw_extra + sizeof(Oid), &worker_role, sizeof(Oid));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &k->handle))
	{
		SpinLockAcquire(&evmgmt_shared->mutex);
		evmgmt_shared->slots[slotno].dboid = InvalidOid;
		SpinLockRelease(&evmgmt_shared->mutex);
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the evmgmt worker for database %u", k->dboid),
				 errhint("Raise max_worker_processes.")));
		k->handle = NULL;
		return false;
	}
	k->slot = slotno;
	k->state = DB_RUNNING;
	return true;
}

/* Notice workers that stopped, and decide whether they come back. */
static void
ReapWorkers(TimestampTz now)
{
	for (int i = 0; i < nknown; i++)
	{
		KnownDb    *k = &known[i];
		pid_t		pid;
		WorkerExitReason reason;
		TimestampTz until;

		if (k->state != DB_RUNNING)
			continue;
		if (GetBackgroundWorkerPid(k->handle, &pid) != BGWH_STOPPED)
			continue;

		SpinLockAcquire(&evmgmt_shared->mutex);
		reason = evmgmt_shared->slots[k->slot].exit_reason;
		evmgmt_shared->slots[k->slot].dboid = InvalidOid;
		evmgmt_shared->slots[k->slot].pid = 0;
		evmgmt_shared->slots[k->slot].latch = NULL;
		SpinLockRelease(&evmgmt_shared->mutex);
		pfree(k->handle);
		k->handle = NULL;
		k->slot = -1;

		if (reason == WORKER_EXIT_NO_EXTENSION)
			k->state = DB_ABSENT;
		else if (reason == WORKER_EXIT_NEEDS_ROLE)
		{
			/* start it again as evmgmt_worker after the next scan */
			k->needs_role = true;
			k->state = DB_WAIT;
			k->retry_at = now;
		}
		else if (EvmgmtDatabaseIsBlocked(k->dboid, now, &until))
		{
			k->state = DB_WAIT;
			k->retry_at = until;
		}
		else
		{
			ereport(LOG,
					(errmsg("evmgmt worker for database %u stopped; restarting it", k->dboid)));
			k->state = DB_WAIT;
			k->retry_at = TimestampTzPlusMilliseconds(now, WORKER_RESTART_DELAY_MS);
		}
	}
}

/* Before shmem exit: the launcher leaves the shared state. */
static void
LauncherDetach(int code, Datum arg)
{
	SpinLockAcquire(&evmgmt_shared->mutex);
	evmgmt_shared->launcher_pid = 0;
	evmgmt_shared->launcher_latch = NULL;
	SpinLockRelease(&evmgmt_shared->mutex);
}

/* Stop workers left by a previous launcher that we hold no handles for. */
static void
StopOrphanWorkers(void)
{
	for (int tries = 0; tries < 1000; tries++)
	{
		bool		any = false;

		SpinLockAcquire(&evmgmt_shared->mutex);
		for (int i = 0; i < evmgmt_shared->nslots; i++)
		{
			WorkerSlot *slot = &evmgmt_shared->slots[i];

			if (slot->pid != 0)
			{
				any = true;
				if (tries == 0)
					kill(slot->pid, SIGTERM);
			}
			else
				slot->dboid = InvalidOid;
		}
		SpinLockRelease(&evmgmt_shared->mutex);
		if (!any)
			return;
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/* Entry point of the launcher. */
void
EvmgmtLauncherMain(Datum main_arg)
{
	TimestampTz last_scan = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (evmgmt_shared == NULL)
		proc_exit(0);

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("evmgmt launcher");

	SpinLockAcquire(&evmgmt_shared->mutex);
	evmgmt_shared->launcher_pid = MyProcPid;
	evmgmt_shared->launcher_latch = MyLatch;
	evmgmt_shared->rescan_requested = false;
	SpinLockRelease(&evmgmt_shared->mutex);
	before_shmem_exit(LauncherDetach, (Datum) 0);

	StopOrphanWorkers();

	for (;;)
	{
		TimestampTz now;
		TimestampTz wake_at;
		bool		rescan;
		bool		rescan_due = false;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		SpinLockAcquire(&evmgmt_shared->mutex);
		rescan = evmgmt_shared->rescan_requested;
		evmgmt_shared->rescan_requested = false;
		SpinLockRelease(&evmgmt_shared->mutex);

		now = GetCurrentTimestamp();
		ReapWorkers(now);
		for (int i = 0; i < nknown; i++)
		{
			/* before restarting anything, make sure its database still exists */
			if (known[i].state == DB_WAIT && known[i].retry_at <= now)
				rescan_due = true;
		}
		if (rescan || rescan_due || last_scan == 0 ||
			TimestampDifferenceExceeds(last_scan, now, LAUNCHER_RESCAN_MS))
		{
			ScanDatabases(rescan);
			last_scan = now;
		}
		if (rescan)
		{
			/* asked to look again: a database no longer blocked need not wait */
			for (int i = 0; i < nknown; i++)
			{
				if (known[i].state == DB_WAIT && !EvmgmtDatabaseIsBlocked(known[i].dboid, now, NULL))
					known[i].state = DB_PROBE;
			}
		}

		wake_at = TimestampTzPlusMilliseconds(last_scan, LAUNCHER_RESCAN_MS);
		for (int i = 0; i < nknown; i++)
		{
			KnownDb    *k = &known[i];
			TimestampTz until;

			if (k->state == DB_WAIT && k->retry_at <= now)
				k->state = DB_PROBE;
			if (k->state == DB_PROBE && k->needs_role)
			{
				k->needs_role = false;
				if (!OidIsValid(worker_role))
				{
					ereport(WARNING,
							(errcode(ERRCODE_UNDEFINED_OBJECT),
							 errmsg("evmgmt does not run in database %u: role %s does not exist",
									k->dboid, EVMGMT_WORKER_ROLE),
							 errhint("Run ALTER EXTENSION evmgmt UPDATE there, or create the role as docs/security.md says.")));
					k->state = DB_ABSENT;
				}
			}
			if (k->state == DB_PROBE)
			{
				if (EvmgmtDatabaseIsBlocked(k->dboid, now, &until))
				{
					k->state = DB_WAIT;
					k->retry_at = until;
				}
				else if (!LaunchWorker(k))
				{
					k->state = DB_WAIT;
					k->retry_at = TimestampTzPlusMilliseconds(now, 10000);
				}
			}
			if (k->state == DB_WAIT && k->retry_at < wake_at)
				wake_at = k->retry_at;
		}

		timeout = TimestampDifferenceMilliseconds(now, wake_at);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(timeout, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

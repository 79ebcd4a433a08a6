/*-------------------------------------------------------------------------
 *
 * workers.h
 *	  Declarations shared by the background workers of evmgmt: the launcher,
 *	  the per-database workers, the shared-memory slots that connect them,
 *	  and the notification dispatcher with its channels.
 *
 * IDENTIFICATION
 *	  src/workers.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVMGMT_WORKERS_H
#define EVMGMT_WORKERS_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/guc.h"

#include "guc.h"

/* The role the per-database workers connect as (docs/security.md). */
#define EVMGMT_WORKER_ROLE "evmgmt_worker"

/* Why a worker left its slot (read by the launcher). */
typedef enum WorkerExitReason
{
	WORKER_EXIT_NONE = 0,		/* still running, or died without saying */
	WORKER_EXIT_NO_EXTENSION,	/* the database has no evmgmt extension */
	WORKER_EXIT_NEEDS_ROLE		/* probed without evmgmt_worker and found work */
} WorkerExitReason;

/* One per-database worker, as seen by every backend. */
typedef struct WorkerSlot
{
	Oid			dboid;			/* database served, InvalidOid if free */
	pid_t		pid;			/* worker process, 0 until attached */
	Latch	   *latch;			/* its latch, NULL until attached */
	WorkerExitReason exit_reason;
	bool		detached;		/* worker attached once and has left */
	uint64		wakeups;		/* wake-ups sent to it, counted before each
								 * SetLatch (a lock wait inside the worker
								 * resets the latch; the count survives) */
} WorkerSlot;

/* A database that DROP DATABASE is about to remove: start no worker in it. */
typedef struct BlockedDatabase
{
	Oid			dboid;
	TimestampTz until;
} BlockedDatabase;

#define EVMGMT_MAX_BLOCKED 8

/* The whole shared state. */
typedef struct EvmgmtShared
{
	slock_t		mutex;			/* protects everything below */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan_requested;	/* re-probe databases (CREATE EXTENSION...) */
	BlockedDatabase blocked[EVMGMT_MAX_BLOCKED];
	int			nslots;
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} EvmgmtShared;

/* shmem.c: shared state and wake-up on commit */
extern EvmgmtShared *evmgmt_shared;
extern bool evmgmt_am_worker;
extern void EvmgmtShmemInit(void);
extern void EvmgmtWakeLauncher(bool rescan);
extern void EvmgmtWakeWorkerAtCommit(bool also_launcher);
extern bool EvmgmtDatabaseIsBlocked(Oid dboid, TimestampTz now, TimestampTz *until);
extern void EvmgmtBlockDatabase(Oid dboid, int seconds);
extern void EvmgmtUnblockDatabase(Oid dboid);

/* launcher.c: the launcher and worker registration */
extern void EvmgmtRegisterLauncher(void);
extern PGDLLEXPORT void EvmgmtLauncherMain(Datum main_arg);

/* ddl_hook.c: CREATE/DROP/ALTER EXTENSION, CREATE/DROP/ALTER DATABASE */
extern void EvmgmtInstallDdlHook(void);

/* worker.c: the per-database worker and its one wait loop */
extern PGDLLEXPORT void EvmgmtWorkerMain(Datum main_arg);

/* work_unit.c: the transaction bracket of every unit of background work */
extern void EvmgmtBeginUnit(const char *activity);
extern void EvmgmtEndUnit(void);

/* allowlist.c: the outbound address allow-list */
struct sockaddr;
extern uint64 evmgmt_allowlist_generation;
extern bool EvmgmtAllowListPermits(const struct sockaddr *addr, char *textbuf, size_t textlen);
extern bool evmgmt_check_outbound_allow(char **newval, void **extra, GucSource source);
extern void evmgmt_assign_outbound_allow(const char *newval, void *extra);

/* signing.c: Standard Webhooks signatures */
extern char *EvmgmtWebhookSignature(const char *secret, const char *msg_id, int64 timestamp,
									const char *body, size_t bodylen);

/*
 * dispatch.c: the dispatcher, a non-blocking step of the worker's loop.
 * EvmgmtDispatchSocket is a socket (an epoll set of libcurl's sockets) that
 * the worker watches for readability in its one WaitEventSet; each call of
 * EvmgmtDispatchStep claims, starts, drives and settles what it can without
 * sleeping and returns when it wants to run next (DT_NOEND: only when the
 * socket is ready or the latch is set).  woken says that new work may have
 * been committed (the latch was set, or escalation work just ran);
 * may_claim false lets what is in hand finish without claiming more.
 * EvmgmtDispatchBusy: something is claimed and not yet settled.
 */
extern void EvmgmtDispatchInit(void);
extern pgsocket EvmgmtDispatchSocket(void);
extern void EvmgmtDispatchReclaimAll(void);
extern TimestampTz EvmgmtDispatchStep(bool woken, bool may_claim);
extern bool EvmgmtDispatchBusy(void);

/* installation.c: hold all sending in a restored copy or a clone */
extern bool EvmgmtCheckSendingHeld(void);
extern bool EvmgmtSendingHeld(void);
extern void EvmgmtReportSendingHeld(void);

#endif							/* EVMGMT_WORKERS_H */

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

/* Why a worker left its slot (read by the launcher). */
typedef enum WorkerExitReason
{
	WORKER_EXIT_NONE = 0,		/* still running, or died without saying */
	WORKER_EXIT_NO_EXTENSION	/* the database has no evmgmt extension */
} WorkerExitReason;

/* One per-database worker, as seen by every backend. */
typedef struct WorkerSlot
{
	Oid			dboid;			/* database served, InvalidOid if free */
	pid_t		pid;			/* worker process, 0 until attached */
	Latch	   *latch;			/* its latch, NULL until attached */
	WorkerExitReason exit_reason;
	bool		detached;		/* worker attached once and has left */
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
extern void WakeLauncher(bool rescan);
extern void WakeDatabaseWorkerAtCommit(bool also_launcher);
extern bool DatabaseIsBlocked(Oid dboid, TimestampTz now, TimestampTz *until);
extern void BlockDatabase(Oid dboid, int seconds);

/* launcher.c: the launcher and worker registration */
extern void RegisterLauncher(void);
extern PGDLLEXPORT void EvmgmtLauncherMain(Datum main_arg);

/* ddl_hook.c: CREATE/DROP EXTENSION, CREATE/DROP DATABASE */
extern void InstallDdlHook(void);

/* worker.c: the per-database worker */
extern PGDLLEXPORT void EvmgmtWorkerMain(Datum main_arg);

/* worker_guc.c: settings of the workers */
extern bool evmgmt_worker_enabled;
extern int	evmgmt_max_databases;
extern int	evmgmt_max_concurrency;
extern int	evmgmt_connect_timeout_ms;
extern int	evmgmt_request_timeout_ms;
extern int	evmgmt_batch_size;
extern int	evmgmt_max_attempts;
extern int	evmgmt_backoff_base_ms;
extern int	evmgmt_backoff_cap_ms;
extern int	evmgmt_lease_time_s;
extern char *evmgmt_outbound_allow;
extern int	evmgmt_delivery_retention_min;
extern void DefineWorkerSettings(bool preload);

/* allowlist.c: the outbound address allow-list */
struct sockaddr;
extern uint64 allowlist_generation;
extern bool AllowListPermits(const struct sockaddr *addr, char *textbuf, size_t textlen);
extern bool check_outbound_allow(char **newval, void **extra, GucSource source);
extern void assign_outbound_allow(const char *newval, void *extra);

/* signing.c: Standard Webhooks signatures */
extern char *WebhookSignature(const char *secret, const char *msg_id, int64 timestamp,
							  const char *body, size_t bodylen);

/* dispatch.c: claim, send, settle */
extern void DispatchInit(void);
extern void DispatchReclaimAll(void);
extern bool DispatchRun(TimestampTz *escalation_due);

/* worker.c: helpers the dispatcher calls between batches */
extern void WorkerRunDueWork(TimestampTz *escalation_due);
extern void WorkerHandleInterrupts(void);

#endif							/* EVMGMT_WORKERS_H */

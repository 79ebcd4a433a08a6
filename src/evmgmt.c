/*-------------------------------------------------------------------------
 *
 * evmgmt.c
 *	  Module entry point of evmgmt: _PG_init, the evmgmt.* settings and
 *	  the check that the library was preloaded.
 *
 * Settings that size shared memory or start workers are PGC_POSTMASTER and
 * may only be defined while shared_preload_libraries is being processed;
 * everything else is defined whenever the library is loaded, so that a
 * backend that loads it on first use still sees every setting.
 *
 * IDENTIFICATION
 *	  src/evmgmt.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "evmgmt.h"
#include "workers.h"

PG_MODULE_MAGIC;

/* true once _PG_init ran inside shared_preload_libraries processing */
bool		evmgmt_loaded_via_preload = false;

/* evmgmt.restoring: set by a superuser while restoring a dump */
bool		evmgmt_restoring = false;

void		_PG_init(void);

/* Define every setting and remember whether we were preloaded. */
void
_PG_init(void)
{
	if (process_shared_preload_libraries_in_progress)
		evmgmt_loaded_via_preload = true;

	DefineCustomBoolVariable("evmgmt.restoring",
							 gettext_noop("Marks a session that restores an evmgmt dump."),
							 gettext_noop("While on, restored rows are not written to the audit trail a second time."),
							 &evmgmt_restoring,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	EscalationDefineSettings();
	LifecycleInit();

	/* background workers and dispatcher (worker_guc.c, launcher.c, shmem.c) */
	DefineWorkerSettings(process_shared_preload_libraries_in_progress);
	InstallDdlHook();
	if (process_shared_preload_libraries_in_progress)
	{
		EvmgmtShmemInit();
		RegisterLauncher();
	}

	MarkGUCPrefixReserved("evmgmt");
}

/* Raise an error unless the library was loaded via shared_preload_libraries. */
void
EnsurePreloaded(void)
{
	if (!evmgmt_loaded_via_preload)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("evmgmt must be loaded via shared_preload_libraries"),
				 errhint("Add evmgmt to shared_preload_libraries in postgresql.conf and restart the server.")));
}

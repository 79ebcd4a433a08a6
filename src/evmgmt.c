/*-------------------------------------------------------------------------
 *
 * evmgmt.c
 *	  Module entry point of evmgmt: _PG_init and the check that the library
 *	  was preloaded.  The settings themselves are in guc.c.
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
#include "listener.h"
#include "workers.h"

PG_MODULE_MAGIC;

/* true once _PG_init ran inside shared_preload_libraries processing */
bool		evmgmt_loaded_via_preload = false;

void		_PG_init(void);

/* Define every setting and remember whether we were preloaded. */
void
_PG_init(void)
{
	if (process_shared_preload_libraries_in_progress)
		evmgmt_loaded_via_preload = true;

	EvmgmtDefineSettings(process_shared_preload_libraries_in_progress);
	EvmgmtInstallDdlHook();
	if (process_shared_preload_libraries_in_progress)
	{
		EvmgmtShmemInit();
		EvmgmtRegisterLauncher();
		EvmgmtRegisterListener();
	}

	MarkGUCPrefixReserved("evmgmt");
}

/* Raise an error unless the library was loaded via shared_preload_libraries. */
void
EvmgmtEnsurePreloaded(void)
{
	if (!evmgmt_loaded_via_preload)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("evmgmt must be loaded via shared_preload_libraries"),
				 errhint("Add evmgmt to shared_preload_libraries in postgresql.conf and restart the server.")));
}

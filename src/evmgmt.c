/*-------------------------------------------------------------------------
 *
 * evmgmt.c
 *	  Module entry point of evmgmt: _PG_init, the check that the library
 *	  was preloaded, and the lookup of the extension's own relations.  The
 *	  settings themselves are in guc.c.
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

#include "catalog/namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

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

/*
 * The OID of the extension's relation evmgmt.NAME: InvalidOid when it does
 * not exist (yet: a database still at an older version) and missing_ok,
 * else an error naming it.
 */
Oid
EvmgmtRelationOid(const char *name, bool missing_ok)
{
	Oid			nsp = get_namespace_oid("evmgmt", missing_ok);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;

	if (!OidIsValid(relid) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"evmgmt.%s\" does not exist", name)));
	return relid;
}

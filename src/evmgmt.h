/*-------------------------------------------------------------------------
 *
 * evmgmt.h
 *	  Shared declarations of the evmgmt extension.
 *
 * Each .c file in src/ owns one concern; this header holds the extern
 * declarations that cross file boundaries, grouped by the file that
 * defines them.
 *
 * IDENTIFICATION
 *	  src/evmgmt.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef EVMGMT_H
#define EVMGMT_H

#include "fmgr.h"
#include "nodes/nodes.h"

/* every evmgmt.* setting (guc.c) */
#include "guc.h"

/* The extension version whose SQL objects this library's workers use. */
#define EVMGMT_LIBRARY_VERSION "0.2.0"

/* evmgmt.c: module load */
extern bool evmgmt_loaded_via_preload;

extern void EvmgmtEnsurePreloaded(void);
extern Oid	EvmgmtRelationOid(const char *name, bool missing_ok);

/* load_capture.c: what a load into interval_stat touched */
extern void EvmgmtLoadCaptureNote(struct varlena *site, struct varlena *queue, Oid pool, int64 start,
								  bool has_sl_counts, int32 answered, int32 offered);

/* site_scope.c: row-level security by site */
extern bool EvmgmtCopyNeedsOwner(Node *parsetree, Oid *owner);
extern bool EvmgmtSiteInScope(Datum site_id);

/* sql_values.c: values returned to SQL, shared by several concerns */
extern Datum EvmgmtEnumDatumForReturn(FunctionCallInfo fcinfo, const char *label);

#endif							/* EVMGMT_H */

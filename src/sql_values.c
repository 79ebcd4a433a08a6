/*-------------------------------------------------------------------------
 *
 * sql_values.c
 *	  Values that C functions hand back to SQL, shared by several concerns
 *	  (classification returns severities, the lifecycle returns states).
 *
 * IDENTIFICATION
 *	  src/sql_values.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "evmgmt.h"

/*
 * The enum value for a label, as a Datum of the calling function's declared
 * return type (an evmgmt enum); the type's OID is looked up once per call
 * site and kept in fn_extra.
 */
Datum
EvmgmtEnumDatumForReturn(FunctionCallInfo fcinfo, const char *label)
{
	Oid		   *typoid = (Oid *) fcinfo->flinfo->fn_extra;

	if (typoid == NULL)
	{
		typoid = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(Oid));
		*typoid = get_func_rettype(fcinfo->flinfo->fn_oid);
		fcinfo->flinfo->fn_extra = typoid;
	}
	return DirectFunctionCall2(enum_in, CStringGetDatum(label), ObjectIdGetDatum(*typoid));
}

/*-------------------------------------------------------------------------
 *
 * state_machine.c
 *	  The rules of the pool-aware event lifecycle: the transition table,
 *	  the messages built from it, and the guard that refuses direct changes
 *	  to event tables.  The SQL-callable lifecycle functions that apply
 *	  these rules are in lifecycle.c.
 *
 * Every pool an event hits has its own pool_condition with a protocol state:
 *
 *	 detected -> classified -> diagnosed -> responding -> resolved
 *
 * plus cancelled (a false positive) and a way back from resolved to
 * diagnosed (reopen, within the recurrence window).  The event itself only
 * stores whether it was closed or cancelled; its floor state and severity
 * are roll-ups of the conditions (view evmgmt.event_rollup).  The table is
 * the same for every pool; what differs per pool are the prerequisites
 * (which levers the catalogue allows for the pool and event type), checked
 * in lifecycle.c.
 *
 * Guard: event tables refuse UPDATE, DELETE and TRUNCATE unless the change
 * is made by lifecycle.c while it is executing one of its own statements
 * (evmgmt_lifecycle_write_depth > 0); superusers included.  INSERTs are not
 * refused so that a plain pg_restore of a dump still loads the rows.
 *
 * IDENTIFICATION
 *	  src/state_machine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "evmgmt.h"
#include "lifecycle.h"

PG_FUNCTION_INFO_V1(evmgmt_transition_table);
PG_FUNCTION_INFO_V1(evmgmt_refuse_direct_change);

/* > 0 while lifecycle.c executes one of its own writes to an event table */
int			evmgmt_lifecycle_write_depth = 0;

#define S_DET PS_DETECTED
#define S_CLA PS_CLASSIFIED
#define S_DIA PS_DIAGNOSED
#define S_RSP PS_RESPONDING
#define S_RES PS_RESOLVED
#define S_CAN PS_CANCELLED
#define S_ILL PS_ILLEGAL

/*
 * The transition table: the state a pool condition in state "from" moves to
 * when "action" is applied, or PS_ILLEGAL.  The same for every pool.
 * Columns: classify, reclassify, diagnose, respond, resolve, cancel, reopen,
 * avert.  A diagnosed condition can be diagnosed again (a revised
 * diagnosis), a responding one can log another lever; a false positive is
 * final.  Avert resolves the condition of a predicted event whose breach was
 * prevented before it began (lifecycle.c allows it on predictive events
 * only): nobody had to respond to something that did not happen.
 */
static const int next_state[PS_COUNT][PA_COUNT] = {
	/* detected */ {S_CLA, S_ILL, S_ILL, S_ILL, S_ILL, S_CAN, S_ILL, S_ILL},
	/* classified */ {S_ILL, S_CLA, S_DIA, S_ILL, S_ILL, S_CAN, S_ILL, S_RES},
	/* diagnosed */ {S_ILL, S_DIA, S_DIA, S_RSP, S_ILL, S_CAN, S_ILL, S_RES},
	/* responding */ {S_ILL, S_RSP, S_ILL, S_RSP, S_RES, S_ILL, S_ILL, S_RES},
	/* resolved */ {S_ILL, S_ILL, S_ILL, S_ILL, S_ILL, S_ILL, S_DIA, S_ILL},
	/* cancelled */ {S_ILL, S_ILL, S_ILL, S_ILL, S_ILL, S_ILL, S_ILL, S_ILL},
};

static const char *const state_names[PS_COUNT] = {
	"detected", "classified", "diagnosed", "responding", "resolved", "cancelled"
};

static const char *const action_names[PA_COUNT] = {
	"classify", "reclassify", "diagnose", "respond", "resolve", "cancel", "reopen", "avert"
};

/* How an action reads in "cannot ... pool x" messages. */
static const char *const action_verbs[PA_COUNT] = {
	"classify", "reclassify", "diagnose", "log a response for", "resolve", "cancel", "reopen", "avert"
};

static const char *const action_functions[PA_COUNT] = {
	"evmgmt.classify_pool",
	"evmgmt.reclassify_pool",
	"evmgmt.diagnose_pool",
	"evmgmt.log_response",
	"evmgmt.resolve_pool or evmgmt.resolve_event",
	"evmgmt.cancel_pool or evmgmt.cancel_event",
	"evmgmt.reopen_pool, within the recurrence window",
	"evmgmt.avert_pool, for a predicted event"
};

/* The state "from" moves to under "action", or PS_ILLEGAL. */
int
EvmgmtNextPoolState(PoolState from, PoolAction action)
{
	if ((int) from < 0 || from >= PS_COUNT || (int) action < 0 || action >= PA_COUNT)
		elog(ERROR, "unknown pool condition state %d or action %d", (int) from, (int) action);
	return next_state[from][action];
}

/* The evmgmt.event_state label of a pool condition state. */
const char *
EvmgmtPoolStateName(PoolState state)
{
	Assert(state >= 0 && state < PS_COUNT);
	return state_names[state];
}

/* The name of an action, as in evmgmt.transition_table(). */
const char *
EvmgmtPoolActionName(PoolAction action)
{
	return action_names[action];
}

/* How an action reads in "cannot ... pool x" messages. */
const char *
EvmgmtPoolActionVerb(PoolAction action)
{
	return action_verbs[action];
}

/* Errhint text listing the legal next states from a state. */
char *
EvmgmtLegalMovesHint(PoolState from)
{
	StringInfoData buf;
	int			to;
	bool		any = false;

	initStringInfo(&buf);
	appendStringInfo(&buf, "Legal next states from %s:", state_names[from]);
	for (to = 0; to < PS_COUNT; to++)
	{
		int			a;
		bool		first = true;

		for (a = 0; a < PA_COUNT; a++)
		{
			if (next_state[from][a] != to)
				continue;
			if (first)
				appendStringInfo(&buf, "%s%s (", any ? "; " : " ", state_names[to]);
			else
				appendStringInfoString(&buf, ", ");
			appendStringInfoString(&buf, action_functions[a]);
			first = false;
			any = true;
		}
		if (!first)
			appendStringInfoChar(&buf, ')');
	}
	if (!any)
	{
		resetStringInfo(&buf);
		appendStringInfo(&buf, "None: %s is final.", state_names[from]);
	}
	else
		appendStringInfoChar(&buf, '.');
	return buf.data;
}

/* The states from which an action is legal, for error details. */
char *
EvmgmtStatesAllowing(PoolAction action)
{
	StringInfoData buf;
	int			s;

	initStringInfo(&buf);
	for (s = 0; s < PS_COUNT; s++)
		if (next_state[s][action] != PS_ILLEGAL)
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", state_names[s]);
	return buf.data;
}

/* Map a state name to the enum. */
PoolState
EvmgmtParsePoolState(const char *name)
{
	int			s;

	for (s = 0; s < PS_COUNT; s++)
		if (strcmp(name, state_names[s]) == 0)
			return (PoolState) s;
	elog(ERROR, "unexpected pool condition state \"%s\"", name);
	return PS_DETECTED;			/* keep compiler quiet */
}

/*
 * transition_table(): every legal (from_state, action, to_state) of a pool
 * condition, with the function that performs it.
 */
Datum
evmgmt_transition_table(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			s;
	int			a;

	InitMaterializedSRF(fcinfo, 0);
	for (s = 0; s < PS_COUNT; s++)
		for (a = 0; a < PA_COUNT; a++)
		{
			int			to = next_state[s][a];
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			if (to == PS_ILLEGAL)
				continue;
			values[0] = CStringGetTextDatum(state_names[s]);
			values[1] = CStringGetTextDatum(action_names[a]);
			values[2] = CStringGetTextDatum(state_names[to]);
			values[3] = CStringGetTextDatum(action_functions[a]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	return (Datum) 0;
}

/*
 * Trigger: refuses UPDATE, DELETE and TRUNCATE of event tables unless the
 * lifecycle code is executing its own statement.
 */
Datum
evmgmt_refuse_direct_change(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	const char *op;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "evmgmt_refuse_direct_change: not called by trigger manager");

	if (evmgmt_lifecycle_write_depth > 0 || TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		if (TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event))
			return PointerGetDatum(NULL);
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : trigdata->tg_trigtuple);
	}

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		op = "DELETE";
	else
		op = "TRUNCATE";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("direct %s of evmgmt.%s is not allowed", op,
					SPI_getrelname(trigdata->tg_relation)),
			 errdetail("Event tables change only through the lifecycle functions, for every role including superusers."),
			 errhint("Use evmgmt.classify_pool, evmgmt.diagnose_pool, evmgmt.log_response, evmgmt.resolve_pool, evmgmt.close_event and the other lifecycle functions.")));
	return (Datum) 0;			/* keep compiler quiet */
}

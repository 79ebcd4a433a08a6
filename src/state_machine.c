/*-------------------------------------------------------------------------
 *
 * state_machine.c
 *	  The pool-aware event lifecycle: the transition table, its
 *	  prerequisites, the lifecycle functions and the guard that refuses
 *	  direct changes to event tables.
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
 * (which levers the catalogue allows for the pool and event type).
 *
 * Locking: every function locks the event row first and then its
 * conditions in pool order (SELECT ... FOR UPDATE), so that two sessions
 * acting on one event serialise, and never deadlock, whatever they do.
 * The state is read only after the locks are held.
 *
 * Guard: event tables refuse UPDATE, DELETE and TRUNCATE unless the change
 * is made by this file while it is executing one of its own statements
 * (lifecycle_write_depth > 0); superusers included.  INSERTs are not
 * refused so that a plain pg_restore of a dump still loads the rows.
 *
 * Statements: every SQL statement here is a fixed text with text
 * parameters that the statement casts; each is prepared once per session
 * and kept (SPI_keepplan), so a call costs execution only.
 *
 * IDENTIFICATION
 *	  src/state_machine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "evmgmt.h"

PG_FUNCTION_INFO_V1(evmgmt_transition_table);
PG_FUNCTION_INFO_V1(evmgmt_refuse_direct_change);
PG_FUNCTION_INFO_V1(evmgmt_open_event);
PG_FUNCTION_INFO_V1(evmgmt_add_pool);
PG_FUNCTION_INFO_V1(evmgmt_classify_pool);
PG_FUNCTION_INFO_V1(evmgmt_reclassify_pool);
PG_FUNCTION_INFO_V1(evmgmt_diagnose_pool);
PG_FUNCTION_INFO_V1(evmgmt_log_response);
PG_FUNCTION_INFO_V1(evmgmt_resolve_pool);
PG_FUNCTION_INFO_V1(evmgmt_resolve_event);
PG_FUNCTION_INFO_V1(evmgmt_cancel_pool);
PG_FUNCTION_INFO_V1(evmgmt_cancel_event);
PG_FUNCTION_INFO_V1(evmgmt_reopen_pool);
PG_FUNCTION_INFO_V1(evmgmt_reopen_event);
PG_FUNCTION_INFO_V1(evmgmt_record_analysis);
PG_FUNCTION_INFO_V1(evmgmt_add_action_item);
PG_FUNCTION_INFO_V1(evmgmt_complete_action_item);
PG_FUNCTION_INFO_V1(evmgmt_record_objective_impact);
PG_FUNCTION_INFO_V1(evmgmt_close_event);


/* > 0 while this file executes one of its own writes to an event table */
static int	lifecycle_write_depth = 0;

/* Protocol state of a pool condition. */
typedef enum PoolState
{
	PS_DETECTED,
	PS_CLASSIFIED,
	PS_DIAGNOSED,
	PS_RESPONDING,
	PS_RESOLVED,
	PS_CANCELLED,
	PS_COUNT
} PoolState;

/* What a lifecycle function does to a pool condition. */
typedef enum PoolAction
{
	PA_CLASSIFY,
	PA_RECLASSIFY,
	PA_DIAGNOSE,
	PA_RESPOND,
	PA_RESOLVE,
	PA_CANCEL,
	PA_REOPEN,
	PA_COUNT
} PoolAction;

#define PS_ILLEGAL (-1)

static const char *const state_names[PS_COUNT] = {
	"detected", "classified", "diagnosed", "responding", "resolved", "cancelled"
};

static const char *const action_names[PA_COUNT] = {
	"classify", "reclassify", "diagnose", "respond", "resolve", "cancel", "reopen"
};

/* How an action reads in "cannot ... pool x" messages. */
static const char *const action_verbs[PA_COUNT] = {
	"classify", "reclassify", "diagnose", "log a response for", "resolve", "cancel", "reopen"
};

static const char *const action_functions[PA_COUNT] = {
	"evmgmt.classify_pool",
	"evmgmt.reclassify_pool",
	"evmgmt.diagnose_pool",
	"evmgmt.log_response",
	"evmgmt.resolve_pool or evmgmt.resolve_event",
	"evmgmt.cancel_pool or evmgmt.cancel_event",
	"evmgmt.reopen_pool, within the recurrence window"
};

/* Most pools an event can have (the evmgmt.pool enum has three). */
#define MAX_CONDITIONS 16
/* Most parameters of one SPI statement here. */
#define MAX_SQL_ARGS 16

typedef struct Condition
{
	char	   *pool;
	PoolState	state;
	char	   *severity;		/* NULL until classified */
	char	   *resolved_at;	/* NULL unless resolved */
} Condition;

typedef struct EventRow
{
	int64		event_id;
	char		id[32];
	char	   *operation_id;
	char	   *site_id;
	char	   *queue_id;
	char	   *event_type;
	char	   *detected_at;
	char	   *closed_at;
	char	   *cancelled_at;
	char	   *recurrence_of;
	int			ncond;
	Condition	cond[MAX_CONDITIONS];
} EventRow;

/*
 * The transition table: the state a pool condition in state "from" moves to
 * when "action" is applied, or PS_ILLEGAL.  The same for every pool.
 */
static int
NextPoolState(PoolState from, PoolAction action)
{
	switch (from)
	{
		case PS_DETECTED:
			switch (action)
			{
				case PA_CLASSIFY:
					return PS_CLASSIFIED;
				case PA_CANCEL:
					return PS_CANCELLED;
				default:
					return PS_ILLEGAL;
			}
		case PS_CLASSIFIED:
			switch (action)
			{
				case PA_RECLASSIFY:
					return PS_CLASSIFIED;
				case PA_DIAGNOSE:
					return PS_DIAGNOSED;
				case PA_CANCEL:
					return PS_CANCELLED;
				default:
					return PS_ILLEGAL;
			}
		case PS_DIAGNOSED:
			switch (action)
			{
				case PA_RECLASSIFY:
					return PS_DIAGNOSED;
				case PA_DIAGNOSE:
					return PS_DIAGNOSED;	/* revised diagnosis */
				case PA_RESPOND:
					return PS_RESPONDING;
				case PA_CANCEL:
					return PS_CANCELLED;
				default:
					return PS_ILLEGAL;
			}
		case PS_RESPONDING:
			switch (action)
			{
				case PA_RECLASSIFY:
					return PS_RESPONDING;
				case PA_RESPOND:
					return PS_RESPONDING;	/* another lever */
				case PA_RESOLVE:
					return PS_RESOLVED;
				default:
					return PS_ILLEGAL;
			}
		case PS_RESOLVED:
			switch (action)
			{
				case PA_REOPEN:
					return PS_DIAGNOSED;
				default:
					return PS_ILLEGAL;
			}
		case PS_CANCELLED:
			return PS_ILLEGAL;	/* a false positive is final */
		case PS_COUNT:
			break;
	}
	elog(ERROR, "unknown pool condition state %d", (int) from);
	return PS_ILLEGAL;			/* keep compiler quiet */
}

/* Errhint text listing the legal next states from a state. */
static char *
LegalMovesHint(PoolState from)
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
			if (NextPoolState(from, (PoolAction) a) != to)
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
static char *
StatesAllowing(PoolAction action)
{
	StringInfoData buf;
	int			s;

	initStringInfo(&buf);
	for (s = 0; s < PS_COUNT; s++)
		if (NextPoolState((PoolState) s, action) != PS_ILLEGAL)
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", state_names[s]);
	return buf.data;
}

/* Map a state name to the enum. */
static PoolState
ParseState(const char *name)
{
	int			s;

	for (s = 0; s < PS_COUNT; s++)
		if (strcmp(name, state_names[s]) == 0)
			return (PoolState) s;
	elog(ERROR, "unexpected pool condition state \"%s\"", name);
	return PS_DETECTED;			/* keep compiler quiet */
}

/* A prepared lifecycle statement, kept for the life of the backend. */
typedef struct CachedStatement
{
	char	   *sql;
	int			nargs;
	SPIPlanPtr	plan;
} CachedStatement;

/* The statements prepared so far (a few dozen distinct texts at most). */
static List *statement_cache = NIL;

/*
 * The saved plan of a statement with nargs text parameters, prepared on
 * first use.  The plan cache revalidates it after DDL (even after the
 * extension is dropped and created again).  Not inlined: inlined into
 * RunSQL, its locals would sit beside a PG_TRY.
 */
static pg_noinline SPIPlanPtr
PreparedStatement(const char *sql, int nargs)
{
	ListCell   *lc;
	Oid			types[MAX_SQL_ARGS];
	CachedStatement *entry;
	SPIPlanPtr	plan;
	MemoryContext old;
	int			i;

	foreach(lc, statement_cache)
	{
		entry = (CachedStatement *) lfirst(lc);
		if (entry->nargs == nargs && strcmp(entry->sql, sql) == 0)
			return entry->plan;
	}
	for (i = 0; i < nargs; i++)
		types[i] = TEXTOID;
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	old = MemoryContextSwitchTo(TopMemoryContext);
	entry = palloc(sizeof(CachedStatement));
	entry->sql = pstrdup(sql);
	entry->nargs = nargs;
	entry->plan = plan;
	statement_cache = lappend(statement_cache, entry);
	MemoryContextSwitchTo(old);
	return plan;
}

/*
 * Run one SQL statement through SPI with text parameters (NULL for SQL
 * NULL); the statement casts them.  With "write", the statement may change
 * event tables: the guard lets it through.
 */
static uint64
RunSQL(bool write, const char *sql, int nargs, const char **args)
{
	Datum		values[MAX_SQL_ARGS];
	char		nulls[MAX_SQL_ARGS];
	SPIPlanPtr	plan;
	int			rc = 0;
	int			i;

	Assert(nargs <= MAX_SQL_ARGS);
	for (i = 0; i < nargs; i++)
	{
		values[i] = args[i] ? CStringGetTextDatum(args[i]) : (Datum) 0;
		nulls[i] = args[i] ? ' ' : 'n';
	}
	plan = PreparedStatement(sql, nargs);
	if (write)
	{
		lifecycle_write_depth++;
		PG_TRY();
		{
			rc = SPI_execute_plan(plan, values, nulls, false, 0);
		}
		PG_FINALLY();
		{
			lifecycle_write_depth--;
		}
		PG_END_TRY();
	}
	else
		rc = SPI_execute_plan(plan, values, nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column "col" (1-based) of row "row" of the last result, as text or NULL. */
static char *
Val(uint64 row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/* Argument "argno" of the current call as text (its type's output), or NULL. */
static char *
ArgText(FunctionCallInfo fcinfo, int argno)
{
	Oid		   *argtypes;
	int			nargs;
	Oid			outfn;
	bool		varlena;

	if (PG_ARGISNULL(argno))
		return NULL;
	get_func_signature(fcinfo->flinfo->fn_oid, &argtypes, &nargs);
	if (argno >= nargs)
		elog(ERROR, "argument %d out of range", argno);
	getTypeOutputInfo(argtypes[argno], &outfn, &varlena);
	return OidOutputFunctionCall(outfn, PG_GETARG_DATUM(argno));
}

/* Raise an error when a required argument is NULL or blank. */
static void
RequireText(const char *value, const char *what, const char *why)
{
	const char *p;

	if (value != NULL)
		for (p = value; *p; p++)
			if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
				return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s must not be empty", what),
			 errdetail("%s", why)));
}

/* The bigint first argument of the call (an id), which must not be NULL. */
static int64
RequireId(FunctionCallInfo fcinfo, const char *what)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return PG_GETARG_INT64(0);
}

/* The timestamp this call stamps on everything it writes, as text. */
static char *
CallTime(void)
{
	RunSQL(false, "SELECT pg_catalog.clock_timestamp()::text", 0, NULL);
	return Val(0, 1);
}

/* A jsonb object (as text) from key/value pairs; NULL values are dropped. */
static char *
JsonObject(int npairs, const char **kv)
{
	StringInfoData sql;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(");
	for (i = 0; i < npairs; i++)
		appendStringInfo(&sql, "%s$%d, $%d", i ? ", " : "", 2 * i + 1, 2 * i + 2);
	appendStringInfoString(&sql, "))::text");
	RunSQL(false, sql.data, 2 * npairs, kv);
	return Val(0, 1);
}

/*
 * Lock the event row and then its pool conditions in pool order, and read
 * them.  This is the only place that takes row locks on events, so the lock
 * order is the same in every lifecycle function.
 */
static void
LockEvent(int64 event_id, EventRow *ev)
{
	const char *args[1];
	uint64		n;
	uint64		i;

	memset(ev, 0, sizeof(EventRow));
	ev->event_id = event_id;
	snprintf(ev->id, sizeof(ev->id), INT64_FORMAT, event_id);
	args[0] = ev->id;
	if (RunSQL(false,
			  "SELECT operation_id, site_id, queue_id, event_type::text, detected_at::text,"
			  "       closed_at::text, cancelled_at::text, recurrence_of::text"
			  "  FROM evmgmt.event WHERE event_id = $1::bigint FOR UPDATE", 1, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("event %s does not exist", ev->id)));
	ev->operation_id = Val(0, 1);
	ev->site_id = Val(0, 2);
	ev->queue_id = Val(0, 3);
	ev->event_type = Val(0, 4);
	ev->detected_at = Val(0, 5);
	ev->closed_at = Val(0, 6);
	ev->cancelled_at = Val(0, 7);
	ev->recurrence_of = Val(0, 8);

	n = RunSQL(false,
			  "SELECT pool::text, state::text, severity::text, resolved_at::text"
			  "  FROM evmgmt.pool_condition WHERE event_id = $1::bigint ORDER BY pool FOR UPDATE",
			  1, args);
	if (n > MAX_CONDITIONS)
		elog(ERROR, "event %s has too many pool conditions", ev->id);
	for (i = 0; i < n; i++)
	{
		ev->cond[i].pool = Val(i, 1);
		ev->cond[i].state = ParseState(Val(i, 2));
		ev->cond[i].severity = Val(i, 3);
		ev->cond[i].resolved_at = Val(i, 4);
	}
	ev->ncond = (int) n;
}

/* Comma-separated pools of an event, for messages. */
static char *
PoolList(EventRow *ev)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < ev->ncond; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", ev->cond[i].pool);
	return buf.data;
}

/* Refuse any change to a closed or cancelled event. */
static void
CheckEventOpen(EventRow *ev)
{
	if (ev->cancelled_at)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s is cancelled", ev->id),
				 errdetail("It was cancelled as a false positive at %s.", ev->cancelled_at),
				 errhint("None: cancelled is final.")));
	if (ev->closed_at)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s is closed", ev->id),
				 errdetail("It was closed at %s.", ev->closed_at),
				 errhint("Legal next states from closed: open (evmgmt.reopen_event, within the recurrence window).")));
}

/* The condition of one pool of the event, or an error. */
static Condition *
FindCondition(EventRow *ev, const char *pool)
{
	int			i;

	if (pool == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pool must not be null")));
	for (i = 0; i < ev->ncond; i++)
		if (strcmp(ev->cond[i].pool, pool) == 0)
			return &ev->cond[i];
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("event %s has no condition in pool %s", ev->id, pool),
			 errdetail("Its pools are: %s.", PoolList(ev))));
	return NULL;				/* keep compiler quiet */
}

/*
 * The state the condition moves to under the action, or an error whose hint
 * lists the legal next states.
 */
static PoolState
CheckTransition(EventRow *ev, Condition *c, PoolAction action)
{
	int			to = NextPoolState(c->state, action);

	if (to == PS_ILLEGAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s pool %s of event %s: it is %s",
						action_verbs[action], c->pool, ev->id, state_names[c->state]),
				 errdetail("The action %s is legal only from: %s.", action_names[action],
						   StatesAllowing(action)),
				 errhint("%s", LegalMovesHint(c->state))));
	return (PoolState) to;
}

/*
 * The common start of every pool-level move: connect to SPI, lock the event
 * and its conditions, and return the condition of "pool" once "action" is
 * known to be legal from its state; *to receives the state it moves to.
 */
static Condition *
BeginPoolMove(int64 event_id, const char *pool, PoolAction action, EventRow *ev, PoolState *to)
{
	Condition  *c;

	SPI_connect();
	LockEvent(event_id, ev);
	CheckEventOpen(ev);
	c = FindCondition(ev, pool);
	*to = CheckTransition(ev, c, action);
	return c;
}

/* Append one row to the event's timeline. */
static void
AddTimeline(EventRow *ev, const char *pool, const char *at, const char *action,
			const char *from_state, const char *to_state,
			const char *from_severity, const char *to_severity,
			const char *lever, const char *reason, const char *details)
{
	const char *args[11];

	args[0] = ev->id;
	args[1] = pool;
	args[2] = at;
	args[3] = action;
	args[4] = from_state;
	args[5] = to_state;
	args[6] = from_severity;
	args[7] = to_severity;
	args[8] = lever;
	args[9] = reason;
	args[10] = details;
	RunSQL(true,
		  "INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, from_state, to_state,"
		  "       from_severity, to_severity, lever, reason, details)"
		  " VALUES ($1::bigint, $2::evmgmt.pool, $3::timestamptz, $4, $5::evmgmt.event_state,"
		  "         $6::evmgmt.event_state, $7::evmgmt.severity, $8::evmgmt.severity, $9, $10,"
		  "         COALESCE($11::jsonb, '{}'))",
		  11, args);
}

/* The floor state of an event from its (locked) conditions and flags. */
static const char *
RollupState(EventRow *ev)
{
	int			i;
	int			least = PS_COUNT;

	if (ev->cancelled_at)
		return "cancelled";
	if (ev->closed_at)
		return "closed";
	for (i = 0; i < ev->ncond; i++)
		if (ev->cond[i].state != PS_CANCELLED && (int) ev->cond[i].state < least)
			least = ev->cond[i].state;
	return least == PS_COUNT ? "cancelled" : state_names[least];
}

/* Re-read the conditions after a change, keeping the lock order. */
static void
RefreshEvent(EventRow *ev)
{
	LockEvent(ev->event_id, ev);
}

/* The recurrence window as an interval literal. */
static char *
WindowText(void)
{
	return psprintf("%d minutes", evmgmt_recurrence_window);
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
			int			to = NextPoolState((PoolState) s, (PoolAction) a);
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

	if (lifecycle_write_depth > 0 || TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
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

/*
 * open_event(event_type, site_id, pools, detection_source, title,
 * detected_at, queue_id, subtype, description): a new event with one
 * detected condition per pool; returns its event_id.
 */
Datum
evmgmt_open_event(PG_FUNCTION_ARGS)
{
	char	   *event_type = ArgText(fcinfo, 0);
	char	   *site_id = ArgText(fcinfo, 1);
	char	   *pools = ArgText(fcinfo, 2);
	char	   *source = ArgText(fcinfo, 3);
	char	   *title = ArgText(fcinfo, 4);
	char	   *detected_at = ArgText(fcinfo, 5);
	char	   *queue_id = ArgText(fcinfo, 6);
	char	   *subtype = ArgText(fcinfo, 7);
	char	   *description = ArgText(fcinfo, 8);
	const char *args[10];
	char	   *operation_id;
	char	   *at;
	EventRow	ev;
	int64		event_id;

	if (event_type == NULL || site_id == NULL || source == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event type, site and detection source must not be null")));
	RequireText(title, "title", "An event needs a title that says what is happening.");

	SPI_connect();
	at = CallTime();

	args[0] = pools;
	RunSQL(false,
		  "SELECT pg_catalog.count(*), pg_catalog.count(p), pg_catalog.count(DISTINCT p)"
		  "  FROM pg_catalog.unnest($1::evmgmt.pool[]) AS p", 1, args);
	if (pools == NULL || strcmp(Val(0, 1), "0") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an event needs at least one pool"),
				 errhint("Give the pools it hits, e.g. '{aa,spec}'.")));
	if (strcmp(Val(0, 1), Val(0, 2)) != 0 || strcmp(Val(0, 1), Val(0, 3)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pools must be distinct and not null"),
				 errdetail("The pools given were %s.", pools)));

	if (detected_at)
	{
		args[0] = detected_at;
		args[1] = at;
		RunSQL(false,
			   "SELECT $1::timestamptz > $2::timestamptz OR NOT pg_catalog.isfinite($1::timestamptz)",
			   2, args);
		if (strcmp(Val(0, 1), "t") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("detected_at must be a finite time, not in the future"),
					 errdetail("It is %s.", detected_at)));
	}

	args[0] = site_id;
	if (RunSQL(false, "SELECT operation_id FROM evmgmt.site WHERE site_id = $1", 1, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("site \"%s\" does not exist", site_id)));
	operation_id = Val(0, 1);

	if (queue_id)
	{
		char	   *queue_operation;

		args[0] = queue_id;
		if (RunSQL(false, "SELECT operation_id FROM evmgmt.queue WHERE queue_id = $1", 1, args) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("queue \"%s\" does not exist", queue_id)));
		queue_operation = Val(0, 1);
		if (strcmp(queue_operation, operation_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("queue \"%s\" belongs to operation \"%s\", site \"%s\" to operation \"%s\"",
							queue_id, queue_operation, site_id, operation_id)));
	}

	args[0] = operation_id;
	args[1] = site_id;
	args[2] = queue_id;
	args[3] = event_type;
	args[4] = subtype;
	args[5] = source;
	args[6] = title;
	args[7] = description;
	args[8] = detected_at ? detected_at : at;
	args[9] = at;
	RunSQL(true,
		  "INSERT INTO evmgmt.event (operation_id, site_id, queue_id, event_type, subtype,"
		  "       detection_source, title, description, detected_at, opened_at)"
		  " VALUES ($1, $2, $3, $4::evmgmt.event_type, $5, $6, $7, $8, $9::timestamptz, $10::timestamptz)"
		  " RETURNING event_id",
		  10, args);
	event_id = DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(Val(0, 1))));

	memset(&ev, 0, sizeof(ev));
	ev.event_id = event_id;
	snprintf(ev.id, sizeof(ev.id), INT64_FORMAT, event_id);
	args[0] = ev.id;
	args[1] = pools;
	args[2] = at;
	RunSQL(true,
		  "INSERT INTO evmgmt.pool_condition (event_id, pool, opened_at)"
		  " SELECT $1::bigint, p, $3::timestamptz FROM pg_catalog.unnest($2::evmgmt.pool[]) AS p ORDER BY p",
		  3, args);

	args[0] = pools;
	args[1] = source;
	args[2] = detected_at ? detected_at : at;
	RunSQL(false,
		   "SELECT pg_catalog.jsonb_build_object('pools', pg_catalog.to_jsonb($1::evmgmt.pool[]),"
		   "       'detection_source', $2, 'detected_at', $3::timestamptz)::text",
		   3, args);
	AddTimeline(&ev, NULL, at, "opened", NULL, "detected", NULL, NULL, NULL, NULL, Val(0, 1));

	SPI_finish();
	PG_RETURN_INT64(event_id);
}

/*
 * add_pool(event_id, pool, note): the event turns out to hit one more pool;
 * a new detected condition for it.
 */
Datum
evmgmt_add_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *note = ArgText(fcinfo, 2);
	EventRow	ev;
	char	   *at;
	const char *args[3];
	int			i;

	if (pool == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pool must not be null")));
	SPI_connect();
	LockEvent(event_id, &ev);
	CheckEventOpen(&ev);
	for (i = 0; i < ev.ncond; i++)
		if (strcmp(ev.cond[i].pool, pool) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("event %s already has a condition in pool %s", ev.id, pool),
					 errdetail("It is %s.", state_names[ev.cond[i].state])));
	at = CallTime();
	args[0] = ev.id;
	args[1] = pool;
	args[2] = at;
	RunSQL(true,
		   "INSERT INTO evmgmt.pool_condition (event_id, pool, opened_at)"
		   " VALUES ($1::bigint, $2::evmgmt.pool, $3::timestamptz)",
		   3, args);
	AddTimeline(&ev, pool, at, "opened", NULL, "detected", NULL, NULL, NULL, note, NULL);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, "detected");
}

/*
 * Set the severity of a condition and its due times from the effective
 * policy, counted from the event's detection; returns the due times.
 */
static void
SetSeverity(EventRow *ev, Condition *c, const char *severity, const char *state,
			const char *at, bool first, char **details)
{
	const char *args[6];

	args[0] = ev->id;
	args[1] = c->pool;
	args[2] = severity;
	args[3] = state;
	args[4] = at;
	args[5] = first ? "t" : "f";
	RunSQL(true,
		  "UPDATE evmgmt.pool_condition pc"
		  "   SET severity = $3::evmgmt.severity, state = $4::evmgmt.event_state,"
		  "       classified_at = CASE WHEN $6::boolean THEN $5::timestamptz ELSE pc.classified_at END,"
		  "       response_due = d.response_due, resolution_due = d.resolution_due"
		  "  FROM evmgmt.event e, evmgmt.target_due(e.site_id, $3::evmgmt.severity, e.detected_at) d"
		  " WHERE e.event_id = pc.event_id AND pc.event_id = $1::bigint AND pc.pool = $2::evmgmt.pool"
		  " RETURNING pg_catalog.jsonb_build_object('response_due', pc.response_due,"
		  "           'resolution_due', pc.resolution_due)::text",
		  6, args);
	*details = Val(0, 1);
}

/*
 * Hand a pool condition to the escalation engine at the call's time
 * (sql/install/65_escalation_engine.sql): "opened" (classified or reopened)
 * and "upgraded" start its escalation and the footprint's open messages and
 * status cadence, "resolved" and "cancelled" stop its escalations at once
 * and tell everyone who was paged.
 */
static void
NotifyEscalation(EventRow *ev, Condition *c, const char *what, const char *at)
{
	const char *args[4];

	args[0] = ev->id;
	args[1] = c->pool;
	args[2] = what;
	args[3] = at;
	if (strcmp(what, "opened") == 0 || strcmp(what, "upgraded") == 0)
		RunSQL(false, "SELECT evmgmt.escalation_start($1::bigint, $2::evmgmt.pool, $3, $4::timestamptz)", 4, args);
	else
		RunSQL(false, "SELECT evmgmt.escalation_stop($1::bigint, $2::evmgmt.pool, $3, $4::timestamptz)", 4, args);
}

/* classify_pool(event_id, pool, severity): detected -> classified. */
Datum
evmgmt_classify_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *severity = ArgText(fcinfo, 2);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	char	   *at;
	char	   *details;

	if (severity == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("severity must not be null")));
	c = BeginPoolMove(event_id, pool, PA_CLASSIFY, &ev, &to);
	at = CallTime();
	SetSeverity(&ev, c, severity, state_names[to], at, true, &details);
	AddTimeline(&ev, c->pool, at, "classified", state_names[c->state], state_names[to],
				NULL, severity, NULL, NULL, details);
	NotifyEscalation(&ev, c, "opened", at);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, state_names[to]);
}

/* reclassify_pool(event_id, pool, severity, reason): a new tier for one pool. */
Datum
evmgmt_reclassify_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *severity = ArgText(fcinfo, 2);
	char	   *reason = ArgText(fcinfo, 3);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	char	   *at;
	char	   *details;
	const char *args[2];

	if (severity == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("severity must not be null")));
	RequireText(reason, "reason", "Every reclassification is recorded with its reason so that severity drift can be audited.");
	c = BeginPoolMove(event_id, pool, PA_RECLASSIFY, &ev, &to);
	if (strcmp(c->severity, severity) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pool %s of event %s is already %s", c->pool, ev.id, severity)));
	at = CallTime();
	SetSeverity(&ev, c, severity, state_names[to], at, false, &details);
	args[0] = details;
	args[1] = strcmp(severity, c->severity) < 0 ? "up" : "down";
	RunSQL(false, "SELECT ($1::jsonb || pg_catalog.jsonb_build_object('direction', $2))::text", 2, args);
	AddTimeline(&ev, c->pool, at, "reclassified", state_names[c->state], state_names[to],
				c->severity, severity, NULL, reason, Val(0, 1));
	/* a more severe tier restarts the escalation; a lower one keeps it */
	if (strcmp(severity, c->severity) < 0)
		NotifyEscalation(&ev, c, "upgraded", at);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, state_names[to]);
}

/*
 * Link the event to its predecessor: the latest earlier event of the same
 * type, site and queue, diagnosed with the same cause category, that was
 * resolved (or closed) no longer than the recurrence window before this
 * one was detected.
 */
static char *
LinkRecurrence(EventRow *ev, const char *cause, const char *at)
{
	const char *args[7];
	char	   *predecessor;

	if (ev->recurrence_of)
		return NULL;
	args[0] = ev->id;
	args[1] = ev->event_type;
	args[2] = ev->site_id;
	args[3] = ev->queue_id;
	args[4] = ev->detected_at;
	args[5] = cause;
	args[6] = WindowText();
	if (RunSQL(false,
			  "SELECT p.event_id::text FROM evmgmt.event p"
			  " WHERE p.event_id <> $1::bigint AND p.event_type = $2::evmgmt.event_type"
			  "   AND p.site_id = $3 AND p.queue_id IS NOT DISTINCT FROM $4"
			  "   AND p.cancelled_at IS NULL AND p.detected_at < $5::timestamptz"
			  "   AND EXISTS (SELECT FROM evmgmt.pool_condition c WHERE c.event_id = p.event_id"
			  "                  AND c.cause_category = $6 AND c.state <> 'cancelled')"
			  "   AND (p.closed_at >= $5::timestamptz - $7::interval"
			  "        OR (p.closed_at IS NULL"
			  "            AND (SELECT pg_catalog.max(c.resolved_at) FROM evmgmt.pool_condition c"
			  "                 WHERE c.event_id = p.event_id) >= $5::timestamptz - $7::interval))"
			  " ORDER BY p.detected_at DESC, p.event_id DESC LIMIT 1",
			  7, args) == 0)
		return NULL;
	predecessor = Val(0, 1);
	args[1] = predecessor;
	RunSQL(true, "UPDATE evmgmt.event SET recurrence_of = $2::bigint WHERE event_id = $1::bigint", 2, args);
	args[2] = cause;
	args[3] = WindowText();
	RunSQL(false,
		   "SELECT pg_catalog.jsonb_build_object('recurrence_of', $2::bigint, 'cause_category', $3,"
		   "       'recurrence_window', $4::interval)::text",
		   4, args);
	AddTimeline(ev, NULL, at, "note", NULL, NULL, NULL, NULL, NULL,
				psprintf("recurrence of event %s", predecessor), Val(0, 1));
	ev->recurrence_of = predecessor;
	return predecessor;
}

/*
 * diagnose_pool(event_id, pool, cause_category, lever_class,
 * proximate_cause): classified -> diagnosed (or a revised diagnosis).
 */
Datum
evmgmt_diagnose_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *cause = ArgText(fcinfo, 2);
	char	   *lever_class = ArgText(fcinfo, 3);
	char	   *proximate = ArgText(fcinfo, 4);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	char	   *at;
	const char *args[6];
	const char *kv[6];

	if (cause == NULL || lever_class == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a diagnosis needs a cause category and a lever class"),
				 errhint("Cause categories are in evmgmt.cause_category, lever classes in evmgmt.lever_class.")));
	c = BeginPoolMove(event_id, pool, PA_DIAGNOSE, &ev, &to);

	args[0] = cause;
	if (RunSQL(false, "SELECT FROM evmgmt.cause_category WHERE category = $1", 1, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown cause category \"%s\"", cause),
				 errhint("Cause categories are in evmgmt.cause_category.")));
	args[0] = lever_class;
	if (RunSQL(false, "SELECT FROM evmgmt.lever_class WHERE lever_class = $1", 1, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown lever class \"%s\"", lever_class),
				 errhint("Lever classes are in evmgmt.lever_class.")));

	at = CallTime();
	args[0] = ev.id;
	args[1] = c->pool;
	args[2] = cause;
	args[3] = lever_class;
	args[4] = proximate;
	args[5] = at;
	RunSQL(true,
		  "UPDATE evmgmt.pool_condition SET state = 'diagnosed', cause_category = $3,"
		  "       lever_class = $4, proximate_cause = $5, diagnosed_at = $6::timestamptz"
		  " WHERE event_id = $1::bigint AND pool = $2::evmgmt.pool",
		  6, args);
	kv[0] = "cause_category";
	kv[1] = cause;
	kv[2] = "lever_class";
	kv[3] = lever_class;
	kv[4] = "proximate_cause";
	kv[5] = proximate;
	AddTimeline(&ev, c->pool, at, "diagnosed", state_names[c->state], state_names[to],
				NULL, NULL, NULL, NULL, JsonObject(3, kv));
	LinkRecurrence(&ev, cause, at);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, state_names[to]);
}

/*
 * log_response(event_id, pool, lever, note): activates a lever from the
 * catalogue allowed for the pool and event type; returns the action_id.
 */
Datum
evmgmt_log_response(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *lever = ArgText(fcinfo, 2);
	char	   *note = ArgText(fcinfo, 3);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	char	   *at;
	char	   *action_id;
	const char *args[5];
	const char *kv[2];

	if (lever == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a response needs a lever"),
				 errhint("Levers are in evmgmt.lever; evmgmt.lever_applicability says which apply to a pool and event type.")));
	c = BeginPoolMove(event_id, pool, PA_RESPOND, &ev, &to);

	args[0] = lever;
	if (RunSQL(false, "SELECT lever_class FROM evmgmt.lever WHERE lever = $1", 1, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown lever \"%s\"", lever),
				 errhint("Levers are in evmgmt.lever.")));
	kv[0] = "lever_class";
	kv[1] = Val(0, 1);
	args[1] = c->pool;
	args[2] = ev.event_type;
	if (RunSQL(false,
			  "SELECT FROM evmgmt.lever_applicability"
			  " WHERE lever = $1 AND pool = $2::evmgmt.pool AND event_type = $3::evmgmt.event_type",
			  3, args) == 0)
	{
		char	   *allowed;

		RunSQL(false,
			  "SELECT COALESCE(pg_catalog.string_agg(lever, ', ' ORDER BY lever), 'none')"
			  "  FROM evmgmt.lever_applicability WHERE pool = $2::evmgmt.pool AND event_type = $3::evmgmt.event_type",
			  3, args);
		allowed = Val(0, 1);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lever \"%s\" is not allowed for pool %s and event type %s", lever, c->pool, ev.event_type),
				 errdetail("The lever catalogue (evmgmt.lever_applicability) allows for this pool and type: %s.", allowed)));
	}

	at = CallTime();
	args[0] = ev.id;
	args[1] = c->pool;
	args[2] = lever;
	args[3] = at;
	args[4] = note;
	RunSQL(true,
		  "INSERT INTO evmgmt.response_action (event_id, pool, lever, activated_at, note)"
		  " VALUES ($1::bigint, $2::evmgmt.pool, $3, $4::timestamptz, $5) RETURNING action_id::text",
		  5, args);
	action_id = Val(0, 1);
	RunSQL(true,
		  "UPDATE evmgmt.pool_condition SET state = 'responding',"
		  "       first_response_at = COALESCE(first_response_at, $4::timestamptz)"
		  " WHERE event_id = $1::bigint AND pool = $2::evmgmt.pool",
		  4, args);
	args[0] = action_id;
	args[1] = kv[1];
	RunSQL(false,
		   "SELECT pg_catalog.jsonb_build_object('action_id', $1::bigint, 'lever_class', $2)::text",
		   2, args);
	AddTimeline(&ev, c->pool, at, "responded", state_names[c->state], state_names[to],
				NULL, NULL, lever, note, Val(0, 1));
	SPI_finish();
	PG_RETURN_INT64(DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(action_id))));
}

/* Resolve one (locked, checked) condition. */
static void
ResolveCondition(EventRow *ev, Condition *c, const char *note, const char *at)
{
	const char *args[4];

	args[0] = ev->id;
	args[1] = c->pool;
	args[2] = at;
	args[3] = note;
	RunSQL(true,
		  "UPDATE evmgmt.pool_condition SET state = 'resolved', resolved_at = $3::timestamptz,"
		  "       resolution_note = $4"
		  " WHERE event_id = $1::bigint AND pool = $2::evmgmt.pool",
		  4, args);
	AddTimeline(ev, c->pool, at, "resolved", state_names[c->state], "resolved",
				NULL, NULL, NULL, note, NULL);
	NotifyEscalation(ev, c, "resolved", at);
}

/* resolve_pool(event_id, pool, note): responding -> resolved. */
Datum
evmgmt_resolve_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *note = ArgText(fcinfo, 2);
	EventRow	ev;
	Condition  *c;
	PoolState	to;

	c = BeginPoolMove(event_id, pool, PA_RESOLVE, &ev, &to);
	ResolveCondition(&ev, c, note, CallTime());
	SPI_finish();
	return EnumDatumForReturn(fcinfo, state_names[to]);
}

/*
 * resolve_event(event_id, note): resolves every condition that is neither
 * resolved nor cancelled, all or none; each must be responding.
 */
Datum
evmgmt_resolve_event(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *note = ArgText(fcinfo, 1);
	EventRow	ev;
	char	   *at;
	int			i;
	int			pending = 0;

	SPI_connect();
	LockEvent(event_id, &ev);
	CheckEventOpen(&ev);
	for (i = 0; i < ev.ncond; i++)
	{
		Condition  *c = &ev.cond[i];

		if (c->state == PS_RESOLVED || c->state == PS_CANCELLED)
			continue;
		pending++;
		if (NextPoolState(c->state, PA_RESOLVE) == PS_ILLEGAL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot resolve event %s: pool %s is %s", ev.id, c->pool, state_names[c->state]),
					 errdetail("Resolving an event resolves every pool condition, and a condition can be resolved only when it is responding."),
					 errhint("%s", LegalMovesHint(c->state))));
	}
	if (pending == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s has no unresolved pool condition", ev.id),
				 errhint("Close it with evmgmt.close_event.")));
	at = CallTime();
	for (i = 0; i < ev.ncond; i++)
		if (ev.cond[i].state == PS_RESPONDING)
			ResolveCondition(&ev, &ev.cond[i], note, at);
	RefreshEvent(&ev);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, RollupState(&ev));
}

/* Cancel one (locked, checked) condition as a false positive. */
static void
CancelCondition(EventRow *ev, Condition *c, const char *reason, const char *at)
{
	const char *args[2];

	args[0] = ev->id;
	args[1] = c->pool;
	RunSQL(true,
		  "UPDATE evmgmt.pool_condition SET state = 'cancelled'"
		  " WHERE event_id = $1::bigint AND pool = $2::evmgmt.pool",
		  2, args);
	AddTimeline(ev, c->pool, at, "cancelled", state_names[c->state], "cancelled",
				NULL, NULL, NULL, reason, NULL);
	NotifyEscalation(ev, c, "cancelled", at);
}

/* cancel_pool(event_id, pool, reason): one pool was a false positive. */
Datum
evmgmt_cancel_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *reason = ArgText(fcinfo, 2);
	EventRow	ev;
	Condition  *c;
	PoolState	to;

	RequireText(reason, "reason", "A false positive is cancelled with the reason it is one.");
	c = BeginPoolMove(event_id, pool, PA_CANCEL, &ev, &to);
	CancelCondition(&ev, c, reason, CallTime());
	SPI_finish();
	return EnumDatumForReturn(fcinfo, state_names[to]);
}

/*
 * cancel_event(event_id, reason): the whole event was a false positive;
 * every live condition is cancelled, all or none.
 */
Datum
evmgmt_cancel_event(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *reason = ArgText(fcinfo, 1);
	EventRow	ev;
	char	   *at;
	int			i;
	const char *args[3];

	RequireText(reason, "reason", "A false positive is cancelled with the reason it is one.");
	SPI_connect();
	LockEvent(event_id, &ev);
	CheckEventOpen(&ev);
	for (i = 0; i < ev.ncond; i++)
	{
		Condition  *c = &ev.cond[i];

		if (c->state != PS_CANCELLED && NextPoolState(c->state, PA_CANCEL) == PS_ILLEGAL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot cancel event %s: pool %s is %s", ev.id, c->pool, state_names[c->state]),
					 errdetail("Only an event none of whose pools has had a response can be cancelled as a false positive."),
					 errhint("%s", LegalMovesHint(c->state))));
	}
	at = CallTime();
	for (i = 0; i < ev.ncond; i++)
		if (ev.cond[i].state != PS_CANCELLED)
			CancelCondition(&ev, &ev.cond[i], reason, at);
	args[0] = ev.id;
	args[1] = at;
	args[2] = reason;
	RunSQL(true,
		  "UPDATE evmgmt.event SET cancelled_at = $2::timestamptz, cancelled_by = SESSION_USER,"
		  "       cancel_reason = $3 WHERE event_id = $1::bigint",
		  3, args);
	AddTimeline(&ev, NULL, at, "cancelled", RollupState(&ev), "cancelled",
				NULL, NULL, NULL, reason, NULL);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, "cancelled");
}

/* Raise an error unless "since" lies within the recurrence window before "at". */
static void
CheckWithinWindow(EventRow *ev, const char *what, const char *since, const char *at)
{
	const char *args[3];

	args[0] = since;
	args[1] = at;
	args[2] = WindowText();
	RunSQL(false,
		  "SELECT $2::timestamptz - $1::timestamptz <= $3::interval,"
		  "       pg_catalog.justify_hours($2::timestamptz - $1::timestamptz)::text,"
		  "       pg_catalog.justify_hours($3::interval)::text",
		  3, args);
	if (strcmp(Val(0, 1), "t") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s of event %s is outside the recurrence window", what, ev->id),
				 errdetail("It ended %s ago; the recurrence window (evmgmt.recurrence_window) is %s.",
						   Val(0, 2), Val(0, 3)),
				 errhint("Open a new event: once diagnosed with the same cause it is linked to this one as a recurrence.")));
}

/* Reopen one (locked, checked) resolved condition. */
static void
ReopenCondition(EventRow *ev, Condition *c, const char *reason, const char *at)
{
	const char *args[2];

	args[0] = ev->id;
	args[1] = c->pool;
	RunSQL(true,
		  "UPDATE evmgmt.pool_condition SET state = 'diagnosed', resolved_at = NULL, resolution_note = NULL"
		  " WHERE event_id = $1::bigint AND pool = $2::evmgmt.pool",
		  2, args);
	AddTimeline(ev, c->pool, at, "reopened", state_names[c->state], "diagnosed",
				NULL, NULL, NULL, reason, NULL);
	/* the condition is live again: page and report on it as when opened */
	NotifyEscalation(ev, c, "opened", at);
}

/* reopen_pool(event_id, pool, reason): resolved -> diagnosed, within the window. */
Datum
evmgmt_reopen_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *pool = ArgText(fcinfo, 1);
	char	   *reason = ArgText(fcinfo, 2);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	char	   *at;

	RequireText(reason, "reason", "A reopened condition is recorded with the reason it came back.");
	c = BeginPoolMove(event_id, pool, PA_REOPEN, &ev, &to);
	at = CallTime();
	CheckWithinWindow(&ev, psprintf("the resolution of pool %s", c->pool), c->resolved_at, at);
	ReopenCondition(&ev, c, reason, at);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, state_names[to]);
}

/*
 * reopen_event(event_id, reason, pools): a closed event back to open, within
 * the window; the given resolved pools (all resolved ones when NULL) go back
 * to diagnosed.
 */
Datum
evmgmt_reopen_event(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *reason = ArgText(fcinfo, 1);
	char	   *pools = ArgText(fcinfo, 2);
	EventRow	ev;
	char	   *at;
	int			i;
	int			reopened = 0;
	const char *args[2];

	RequireText(reason, "reason", "A reopened event is recorded with the reason it came back.");
	SPI_connect();
	LockEvent(event_id, &ev);
	if (ev.cancelled_at)
		CheckEventOpen(&ev);
	if (ev.closed_at == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s is not closed", ev.id),
				 errhint("To reopen one resolved pool of an open event use evmgmt.reopen_pool.")));
	at = CallTime();
	CheckWithinWindow(&ev, "the closure", ev.closed_at, at);

	for (i = 0; i < ev.ncond; i++)
	{
		Condition  *c = &ev.cond[i];
		bool		wanted = true;

		if (pools)
		{
			args[0] = pools;
			args[1] = c->pool;
			RunSQL(false, "SELECT $2::evmgmt.pool = ANY ($1::evmgmt.pool[])", 2, args);
			wanted = strcmp(Val(0, 1), "t") == 0;
		}
		if (!wanted)
			continue;
		if (c->state != PS_RESOLVED)
		{
			if (pools)
				CheckTransition(&ev, c, PA_REOPEN);
			continue;
		}
		ReopenCondition(&ev, c, reason, at);
		reopened++;
	}
	if (reopened == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no pool of event %s to reopen", ev.id),
				 errdetail("Its pools are: %s.", PoolList(&ev))));
	args[0] = ev.id;
	RunSQL(true, "UPDATE evmgmt.event SET closed_at = NULL, closed_by = NULL WHERE event_id = $1::bigint", 1, args);
	ev.closed_at = NULL;
	RefreshEvent(&ev);
	AddTimeline(&ev, NULL, at, "reopened", "closed", RollupState(&ev), NULL, NULL, NULL, reason, NULL);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, RollupState(&ev));
}

/* Refuse analysis changes on a cancelled event. */
static void
CheckNotCancelled(EventRow *ev)
{
	if (ev->cancelled_at)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s is cancelled", ev->id),
				 errdetail("A false positive has no post-resolution analysis."),
				 errhint("None: cancelled is final.")));
}

/*
 * record_analysis(event_id, root_cause, action_plan, contributing_factors,
 * detector_gap): records or replaces the post-resolution analysis.
 */
Datum
evmgmt_record_analysis(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *root_cause = ArgText(fcinfo, 1);
	char	   *action_plan = ArgText(fcinfo, 2);
	char	   *factors = ArgText(fcinfo, 3);
	char	   *detector_gap = ArgText(fcinfo, 4);
	EventRow	ev;
	char	   *at;
	const char *args[6];
	const char *kv[2];

	RequireText(root_cause, "root cause", "A post-resolution analysis names the root cause.");
	RequireText(action_plan, "action plan", "A post-resolution analysis has an action plan to reduce recurrence.");
	SPI_connect();
	LockEvent(event_id, &ev);
	CheckNotCancelled(&ev);
	at = CallTime();
	args[0] = ev.id;
	args[1] = root_cause;
	args[2] = action_plan;
	args[3] = factors;
	args[4] = detector_gap;
	args[5] = at;
	RunSQL(true,
		  "INSERT INTO evmgmt.post_resolution_analysis AS a (event_id, root_cause, action_plan,"
		  "       contributing_factors, detector_gap, recorded_at)"
		  " VALUES ($1::bigint, $2, $3, COALESCE($4::text[], '{}'), $5, $6::timestamptz)"
		  " ON CONFLICT (event_id) DO UPDATE SET root_cause = EXCLUDED.root_cause,"
		  "       action_plan = EXCLUDED.action_plan, contributing_factors = EXCLUDED.contributing_factors,"
		  "       detector_gap = EXCLUDED.detector_gap, recorded_at = EXCLUDED.recorded_at,"
		  "       recorded_by = SESSION_USER"
		  " RETURNING (a.xmax::text <> '0')::text",
		  6, args);
	kv[0] = "analysis";
	kv[1] = strcmp(Val(0, 1), "true") == 0 ? "replaced" : "recorded";
	AddTimeline(&ev, NULL, at, "analysis", NULL, NULL, NULL, NULL, NULL, root_cause, JsonObject(1, kv));
	SPI_finish();
	PG_RETURN_VOID();
}

/* Raise an error unless the event has a post-resolution analysis. */
static void
RequireAnalysis(EventRow *ev)
{
	const char *args[1];

	args[0] = ev->id;
	if (RunSQL(false, "SELECT FROM evmgmt.post_resolution_analysis WHERE event_id = $1::bigint", 1, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s has no post-resolution analysis", ev->id),
				 errhint("Record it first with evmgmt.record_analysis.")));
}

/*
 * add_action_item(event_id, description, owner, due_date): an action item
 * of the analysis; returns its item_id.
 */
Datum
evmgmt_add_action_item(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *description = ArgText(fcinfo, 1);
	char	   *owner = ArgText(fcinfo, 2);
	char	   *due = ArgText(fcinfo, 3);
	EventRow	ev;
	char	   *at;
	char	   *item_id;
	const char *args[4];

	RequireText(description, "description", "An action item says what is to be done.");
	RequireText(owner, "owner", "An action item has an owner.");
	if (due == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an action item needs a due date")));
	SPI_connect();
	LockEvent(event_id, &ev);
	CheckNotCancelled(&ev);
	RequireAnalysis(&ev);
	at = CallTime();
	args[0] = ev.id;
	args[1] = description;
	args[2] = owner;
	args[3] = due;
	RunSQL(true,
		  "INSERT INTO evmgmt.action_item (event_id, description, owner, due_date)"
		  " VALUES ($1::bigint, $2, $3, $4::date) RETURNING item_id::text,"
		  "        pg_catalog.jsonb_build_object('action_item', item_id, 'owner', owner, 'due_date', due_date)::text",
		  4, args);
	item_id = Val(0, 1);
	AddTimeline(&ev, NULL, at, "analysis", NULL, NULL, NULL, NULL, NULL, description, Val(0, 2));
	SPI_finish();
	PG_RETURN_INT64(DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(item_id))));
}

/* complete_action_item(item_id): marks an action item done. */
Datum
evmgmt_complete_action_item(PG_FUNCTION_ARGS)
{
	int64		item_id = RequireId(fcinfo, "item_id");
	char		id[32];
	EventRow	ev;
	char	   *at;
	const char *args[2];
	int64		event_id;

	snprintf(id, sizeof(id), INT64_FORMAT, item_id);
	args[0] = id;
	SPI_connect();
	if (RunSQL(false, "SELECT event_id::text FROM evmgmt.action_item WHERE item_id = $1::bigint", 1, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("action item %s does not exist", id)));
	event_id = DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(Val(0, 1))));
	LockEvent(event_id, &ev);
	at = CallTime();
	args[1] = at;
	if (RunSQL(true,
			  "UPDATE evmgmt.action_item SET done_at = $2::timestamptz"
			  " WHERE item_id = $1::bigint AND done_at IS NULL", 2, args) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("action item %s is already done", id)));
	RunSQL(false, "SELECT pg_catalog.jsonb_build_object('action_item_done', $1::bigint)::text", 1, args);
	AddTimeline(&ev, NULL, at, "note", NULL, NULL, NULL, NULL, NULL,
				psprintf("action item %s done", id), Val(0, 1));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * record_objective_impact(event_id, objective, direction, magnitude, unit,
 * note): records or replaces the impact on one objective.
 */
Datum
evmgmt_record_objective_impact(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *objective = ArgText(fcinfo, 1);
	char	   *direction = ArgText(fcinfo, 2);
	char	   *magnitude = ArgText(fcinfo, 3);
	char	   *unit = ArgText(fcinfo, 4);
	char	   *note = ArgText(fcinfo, 5);
	EventRow	ev;
	char	   *at;
	const char *args[6];

	if (objective == NULL || direction == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("objective and direction must not be null"),
				 errhint("Direction is improved, neutral or degraded.")));
	SPI_connect();
	LockEvent(event_id, &ev);
	CheckNotCancelled(&ev);
	RequireAnalysis(&ev);
	at = CallTime();
	args[0] = ev.id;
	args[1] = objective;
	args[2] = direction;
	args[3] = magnitude;
	args[4] = unit;
	args[5] = note;
	RunSQL(true,
		  "INSERT INTO evmgmt.objective_impact (event_id, objective, direction, magnitude, unit, note)"
		  " VALUES ($1::bigint, $2::evmgmt.objective, $3, $4::double precision, $5, $6)"
		  " ON CONFLICT (event_id, objective) DO UPDATE SET direction = EXCLUDED.direction,"
		  "       magnitude = EXCLUDED.magnitude, unit = EXCLUDED.unit, note = EXCLUDED.note"
		  " RETURNING pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('objective', objective,"
		  "           'direction', direction, 'magnitude', magnitude, 'unit', unit))::text",
		  6, args);
	AddTimeline(&ev, NULL, at, "analysis", NULL, NULL, NULL, NULL, NULL, note, Val(0, 1));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * close_event(event_id): every condition resolved or cancelled (at least one
 * resolved); a sev1, or a recurring sev2, needs a complete analysis.
 */
Datum
evmgmt_close_event(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	EventRow	ev;
	char	   *at;
	int			i;
	int			resolved = 0;
	const char *worst = NULL;
	const char *args[2];
	char	   *gaps;

	SPI_connect();
	LockEvent(event_id, &ev);
	CheckEventOpen(&ev);
	for (i = 0; i < ev.ncond; i++)
	{
		Condition  *c = &ev.cond[i];

		if (c->state == PS_CANCELLED)
			continue;
		if (c->state != PS_RESOLVED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot close event %s: pool %s is %s", ev.id, c->pool, state_names[c->state]),
					 errdetail("An event closes only when every pool condition is resolved or cancelled."),
					 errhint("%s", LegalMovesHint(c->state))));
		resolved++;
		if (worst == NULL || strcmp(c->severity, worst) < 0)
			worst = c->severity;
	}
	if (resolved == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot close event %s: every pool condition is cancelled", ev.id),
				 errhint("Cancel the event as a false positive with evmgmt.cancel_event.")));

	if (strcmp(worst, "sev1") == 0 || (strcmp(worst, "sev2") == 0 && ev.recurrence_of))
	{
		args[0] = ev.id;
		RunSQL(false, "SELECT pg_catalog.array_to_string(evmgmt.analysis_gaps($1::bigint), ', ')", 1, args);
		gaps = Val(0, 1);
		if (gaps != NULL && gaps[0] != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("event %s needs a complete post-resolution analysis before it can close", ev.id),
					 strcmp(worst, "sev1") == 0 ?
					 errdetail("It is a sev1 event. Missing: %s.", gaps) :
					 errdetail("It is a recurring sev2 event (recurrence of event %s). Missing: %s.",
							   ev.recurrence_of, gaps),
					 errhint("Record them with evmgmt.record_analysis, evmgmt.add_action_item and evmgmt.record_objective_impact.")));
	}

	at = CallTime();
	args[0] = ev.id;
	args[1] = at;
	RunSQL(true,
		  "UPDATE evmgmt.event SET closed_at = $2::timestamptz, closed_by = SESSION_USER"
		  " WHERE event_id = $1::bigint",
		  2, args);
	AddTimeline(&ev, NULL, at, "closed", RollupState(&ev), "closed", NULL, NULL, NULL, NULL, NULL);
	SPI_finish();
	return EnumDatumForReturn(fcinfo, "closed");
}

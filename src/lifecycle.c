/*-------------------------------------------------------------------------
 *
 * lifecycle.c
 *	  The SQL-callable lifecycle functions: they lock an event, check the
 *	  rules of state_machine.c and the prerequisites (catalogue, recurrence
 *	  window, analysis), and write the conditions, the event and its
 *	  timeline.
 *
 * Locking: every function locks the event row first and then its
 * conditions in pool order (SELECT ... FOR UPDATE), so that two sessions
 * acting on one event serialise, and never deadlock, whatever they do.
 * The state is read only after the locks are held.
 *
 * Statements: every SQL statement here is a fixed text with typed
 * parameters; each is prepared once per session with its parameter types
 * and kept (SPI_keepplan), so a call costs execution only.  Values go in
 * and come out as Datums (SPI_execute_plan, SPI_getbinval), never through
 * their text form.  What C already has is computed in C: the call's time
 * (GetCurrentTimestamp, as clock_timestamp() in SQL), constant-shape JSON
 * details, array membership and the recurrence-window arithmetic.  The
 * extension's enum types (evmgmt.pool, ...) are looked up by name on every
 * call; a plan is kept per text and parameter types, so a re-created
 * extension gets new plans.
 *
 * Results read from SPI live in the SPI procedure context: anything a
 * function returns is copied or read as a by-value Datum before
 * SPI_finish().
 *
 * Movers: resolving, cancelling and reopening a condition differ only in
 * the row in move_effects (the UPDATE, the timeline word, what the
 * escalation engine is told); MovePool and MoveEvent apply them to one
 * pool or to every pool of an event.
 *
 * IDENTIFICATION
 *	  src/lifecycle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "evmgmt.h"
#include "lifecycle.h"

PG_FUNCTION_INFO_V1(evmgmt_open_event);
PG_FUNCTION_INFO_V1(evmgmt_add_pool);
PG_FUNCTION_INFO_V1(evmgmt_classify_pool);
PG_FUNCTION_INFO_V1(evmgmt_reclassify_pool);
PG_FUNCTION_INFO_V1(evmgmt_reclassify_type);
PG_FUNCTION_INFO_V1(evmgmt_diagnose_pool);
PG_FUNCTION_INFO_V1(evmgmt_log_response);
PG_FUNCTION_INFO_V1(evmgmt_avert_pool);
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

#define StateName(s) EvmgmtPoolStateName(s)

/* Most pools an event can have (the evmgmt.pool enum has three). */
#define MAX_CONDITIONS 16
/* Most parameters of one SPI statement here. */
#define MAX_SQL_ARGS 12

/* The extension's types, looked up by name in schema evmgmt. */
typedef struct LifecycleTypes
{
	Oid			nsp;			/* schema evmgmt */
	Oid			pool;
	Oid			pool_array;
	Oid			severity;
	Oid			event_state;
	Oid			event_type;
	Oid			objective;
} LifecycleTypes;

static LifecycleTypes types;

typedef struct Condition
{
	Oid			pool;			/* evmgmt.pool value */
	const char *pool_name;
	PoolState	state;
	Oid			severity;		/* InvalidOid until classified */
	const char *severity_name;	/* NULL until classified */
	bool		resolved;		/* resolved_at is set */
	TimestampTz resolved_at;
} Condition;

typedef struct EventRow
{
	int64		event_id;
	char		id[32];
	Datum		operation_id;	/* text, in the SPI context */
	Datum		site_id;		/* text */
	NullableDatum queue_id;		/* text */
	Oid			event_type;
	TimestampTz detected_at;
	bool		closed;
	TimestampTz closed_at;
	bool		cancelled;
	TimestampTz cancelled_at;
	bool		recurring;
	int64		recurrence_of;
	int			ncond;
	Condition	cond[MAX_CONDITIONS];
} EventRow;

/* The typed parameters of one statement. */
typedef struct SqlArgs
{
	int			n;
	Oid			types[MAX_SQL_ARGS];
	Datum		values[MAX_SQL_ARGS];
	char		nulls[MAX_SQL_ARGS];
} SqlArgs;

/* A prepared lifecycle statement, kept for the life of the backend. */
typedef struct CachedStatement
{
	const char *sql;
	int			nargs;
	Oid			types[MAX_SQL_ARGS];
	SPIPlanPtr	plan;
} CachedStatement;

/* The statements prepared so far (a few dozen distinct texts at most). */
static List *statement_cache = NIL;

/* Look up one type of schema evmgmt. */
static Oid
EvmgmtType(const char *name, Oid nsp)
{
	Oid			typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										PointerGetDatum(name), ObjectIdGetDatum(nsp));

	if (!OidIsValid(typid))
		elog(ERROR, "type evmgmt.%s does not exist", name);
	return typid;
}

/*
 * Make "types" describe the extension as it is installed now.  Looked up
 * on every call (a few syscache probes): a dropped and re-created extension
 * may keep its schema but not its types.
 */
static void
LoadTypes(void)
{
	Oid			nsp = get_namespace_oid("evmgmt", false);

	types.pool = EvmgmtType("pool", nsp);
	types.pool_array = get_array_type(types.pool);
	types.severity = EvmgmtType("severity", nsp);
	types.event_state = EvmgmtType("event_state", nsp);
	types.event_type = EvmgmtType("event_type", nsp);
	types.objective = EvmgmtType("objective", nsp);
	types.nsp = nsp;
}

/* The label of an enum value. */
static const char *
EnumLabel(Oid value)
{
	return DatumGetCString(DirectFunctionCall1(enum_out, ObjectIdGetDatum(value)));
}

/* The value of an enum label (a label this file names). */
static Oid
EnumValue(Oid type, const char *label)
{
	return DatumGetObjectId(OidInputFunctionCall(F_ENUM_IN, (char *) label, type, -1));
}

/* A timestamptz as text, for messages. */
static char *
TimeText(TimestampTz t)
{
	return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t)));
}

static NullableDatum
Value(Datum d)
{
	NullableDatum v;

	v.value = d;
	v.isnull = false;
	return v;
}

static NullableDatum
NoValue(void)
{
	NullableDatum v;

	v.value = (Datum) 0;
	v.isnull = true;
	return v;
}

/* A C string as a text value; NULL for SQL NULL. */
static NullableDatum
TextValue(const char *s)
{
	return s ? Value(CStringGetTextDatum(s)) : NoValue();
}

/* An enum value; InvalidOid for SQL NULL. */
static NullableDatum
EnumOrNull(Oid value)
{
	return OidIsValid(value) ? Value(ObjectIdGetDatum(value)) : NoValue();
}

/* Argument "argno" of the current call as it came. */
static NullableDatum
FuncArg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NoValue() : Value(PG_GETARG_DATUM(argno));
}

/* A text argument of the current call as a C string, or NULL. */
static char *
TextArg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* Append one parameter. */
static void
Bind(SqlArgs *a, Oid type, NullableDatum v)
{
	if (a->n >= MAX_SQL_ARGS)
		elog(ERROR, "too many parameters for one lifecycle statement");
	a->types[a->n] = type;
	a->values[a->n] = v.value;
	a->nulls[a->n] = v.isnull ? 'n' : ' ';
	a->n++;
}

/*
 * The saved plan of a statement with the given parameter types, prepared
 * on first use.  The plan cache revalidates it after DDL.  Not inlined:
 * inlined into RunSQL, its locals would sit beside a PG_TRY.
 */
static pg_noinline SPIPlanPtr
PreparedStatement(const char *sql, int nargs, const Oid *argtypes)
{
	ListCell   *lc;
	CachedStatement *entry;
	SPIPlanPtr	plan;
	MemoryContext old;

	foreach(lc, statement_cache)
	{
		entry = (CachedStatement *) lfirst(lc);
		if (entry->nargs == nargs &&
			(entry->sql == sql || strcmp(entry->sql, sql) == 0) &&
			memcmp(entry->types, argtypes, nargs * sizeof(Oid)) == 0)
			return entry->plan;
	}
	plan = SPI_prepare(sql, nargs, (Oid *) argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	old = MemoryContextSwitchTo(TopMemoryContext);
	entry = palloc0(sizeof(CachedStatement));
	entry->sql = pstrdup(sql);
	entry->nargs = nargs;
	memcpy(entry->types, argtypes, nargs * sizeof(Oid));
	entry->plan = plan;
	statement_cache = lappend(statement_cache, entry);
	MemoryContextSwitchTo(old);
	return plan;
}

/*
 * Execute a prepared statement that may change event tables: the guard lets
 * it through while evmgmt_lifecycle_write_depth is raised.  Apart from
 * RunSQL, so that nothing of the caller lives across the setjmp.
 */
static int
ExecuteWriting(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	volatile int rc = 0;

	evmgmt_lifecycle_write_depth++;
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		evmgmt_lifecycle_write_depth--;
	}
	PG_END_TRY();
	return rc;
}

/*
 * Run one SQL statement through SPI with typed parameters ("a" may be
 * NULL for none).  With "write", the statement may change event tables:
 * the guard lets it through.
 */
static uint64
RunSQL(bool write, const char *sql, SqlArgs *a)
{
	static SqlArgs none;
	SPIPlanPtr	plan;
	int			rc;

	if (a == NULL)
		a = &none;
	plan = PreparedStatement(sql, a->n, a->types);
	if (write)
		rc = ExecuteWriting(plan, a->values, a->nulls);
	else
		rc = SPI_execute_plan(plan, a->values, a->nulls, false, 0);
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column "col" (1-based) of row "row" of the last result. */
static Datum
Col(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

/* A column that is never NULL. */
static Datum
ColValue(uint64 row, int col)
{
	bool		isnull;
	Datum		d = Col(row, col, &isnull);

	if (isnull)
		elog(ERROR, "unexpected null in column %d of a lifecycle statement", col);
	return d;
}

/* A column as a NullableDatum. */
static NullableDatum
ColNullable(uint64 row, int col)
{
	bool		isnull;
	Datum		d = Col(row, col, &isnull);

	return isnull ? NoValue() : Value(d);
}

/* A text column as a C string, or NULL. */
static char *
ColCString(uint64 row, int col)
{
	bool		isnull;
	Datum		d = Col(row, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* An enum column, InvalidOid when NULL. */
static Oid
ColEnum(uint64 row, int col)
{
	bool		isnull;
	Datum		d = Col(row, col, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/* A timestamptz column; *isset is false when NULL. */
static TimestampTz
ColTime(uint64 row, int col, bool *isset)
{
	bool		isnull;
	Datum		d = Col(row, col, &isnull);

	*isset = !isnull;
	return isnull ? 0 : DatumGetTimestampTz(d);
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

/* The timestamp this call stamps on everything it writes (clock_timestamp()). */
static TimestampTz
CallTime(void)
{
	return GetCurrentTimestamp();
}

/*
 * JSON details of a constant shape, built in C and read as jsonb (which
 * orders keys as jsonb_build_object does).  Values are encoded the way
 * to_jsonb encodes them.
 */
static void
JsonBegin(StringInfo buf)
{
	initStringInfo(buf);
	appendStringInfoChar(buf, '{');
}

static void
JsonKey(StringInfo buf, const char *key)
{
	if (buf->len > 1)
		appendStringInfoString(buf, ", ");
	escape_json(buf, key);
	appendStringInfoString(buf, ": ");
}

/* A string member; none when "value" is NULL (as jsonb_strip_nulls). */
static void
JsonText(StringInfo buf, const char *key, const char *value)
{
	if (value == NULL)
		return;
	JsonKey(buf, key);
	escape_json(buf, value);
}

static void
JsonInt8(StringInfo buf, const char *key, int64 value)
{
	JsonKey(buf, key);
	appendStringInfo(buf, INT64_FORMAT, value);
}

static void
JsonTime(StringInfo buf, const char *key, TimestampTz t)
{
	char		text[MAXDATELEN + 1];

	JsonKey(buf, key);
	JsonEncodeDateTime(text, TimestampTzGetDatum(t), TIMESTAMPTZOID, NULL);
	appendStringInfoChar(buf, '"');
	appendStringInfoString(buf, text);
	appendStringInfoChar(buf, '"');
}

static NullableDatum
JsonEnd(StringInfo buf)
{
	appendStringInfoChar(buf, '}');
	return Value(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf->data)));
}

/* The recurrence window (evmgmt.recurrence_window) as an interval. */
static Interval *
RecurrenceWindow(void)
{
	Interval   *w = palloc0(sizeof(Interval));

	w->time = (int64) evmgmt_recurrence_window * USECS_PER_MINUTE;
	return w;
}

/* An interval as text, justified to days and hours. */
static char *
IntervalText(Interval *i)
{
	Datum		j = DirectFunctionCall1(interval_justify_hours, IntervalPGetDatum(i));

	return DatumGetCString(DirectFunctionCall1(interval_out, j));
}

/*
 * Row-level security by site (sql/install/86_site_scope.sql): the lifecycle
 * functions run as the extension's owner, whom row security does not
 * restrict, so they refuse an event (or a new event's site) outside the
 * sites the acting role is bound to themselves.
 */
static void
CheckSiteInScope(Datum site_id, const char *what)
{
	if (!EvmgmtSiteInScope(site_id))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for %s", what),
				 errdetail("Its site is not one of the sites the role is bound to (evmgmt.site_binding).")));
}

/*
 * Lock the event row and then its pool conditions in pool order, and read
 * them.  This is the only place that takes row locks on events, so the lock
 * order is the same in every lifecycle function.
 */
static void
LockEvent(int64 event_id, EventRow *ev)
{
	SqlArgs		a = {0};
	uint64		n;
	uint64		i;
	bool		isset;

	memset(ev, 0, sizeof(EventRow));
	ev->event_id = event_id;
	snprintf(ev->id, sizeof(ev->id), INT64_FORMAT, event_id);
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	if (RunSQL(false,
			   "SELECT operation_id, site_id, queue_id, event_type, detected_at,"
			   "       closed_at, cancelled_at, recurrence_of"
			   "  FROM evmgmt.event WHERE event_id = $1 FOR UPDATE", &a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("event %s does not exist", ev->id)));
	ev->operation_id = ColValue(0, 1);
	ev->site_id = ColValue(0, 2);
	ev->queue_id = ColNullable(0, 3);
	ev->event_type = DatumGetObjectId(ColValue(0, 4));
	ev->detected_at = DatumGetTimestampTz(ColValue(0, 5));
	ev->closed_at = ColTime(0, 6, &ev->closed);
	ev->cancelled_at = ColTime(0, 7, &ev->cancelled);
	{
		bool		isnull;
		Datum		d = Col(0, 8, &isnull);

		ev->recurring = !isnull;
		ev->recurrence_of = isnull ? 0 : DatumGetInt64(d);
	}

	CheckSiteInScope(ev->site_id, psprintf("event %s", ev->id));

	n = RunSQL(false,
			   "SELECT pool, state, severity, resolved_at"
			   "  FROM evmgmt.pool_condition WHERE event_id = $1 ORDER BY pool FOR UPDATE",
			   &a);
	if (n > MAX_CONDITIONS)
		elog(ERROR, "event %s has too many pool conditions", ev->id);
	for (i = 0; i < n; i++)
	{
		Condition  *c = &ev->cond[i];

		c->pool = DatumGetObjectId(ColValue(i, 1));
		c->pool_name = EnumLabel(c->pool);
		c->state = EvmgmtParsePoolState(EnumLabel(DatumGetObjectId(ColValue(i, 2))));
		c->severity = ColEnum(i, 3);
		c->severity_name = OidIsValid(c->severity) ? EnumLabel(c->severity) : NULL;
		c->resolved_at = ColTime(i, 4, &isset);
		c->resolved = isset;
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
		appendStringInfo(&buf, "%s%s", i ? ", " : "", ev->cond[i].pool_name);
	return buf.data;
}

/* Refuse any change to a closed or cancelled event. */
static void
CheckEventOpen(EventRow *ev)
{
	if (ev->cancelled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s is cancelled", ev->id),
				 errdetail("It was cancelled as a false positive at %s.", TimeText(ev->cancelled_at)),
				 errhint("None: cancelled is final.")));
	if (ev->closed)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s is closed", ev->id),
				 errdetail("It was closed at %s.", TimeText(ev->closed_at)),
				 errhint("Legal next states from closed: open (evmgmt.reopen_event, within the recurrence window).")));
}

/* The condition of one pool (an evmgmt.pool argument) of the event, or an error. */
static Condition *
FindCondition(EventRow *ev, NullableDatum pool)
{
	int			i;

	if (pool.isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pool must not be null")));
	for (i = 0; i < ev->ncond; i++)
		if (ev->cond[i].pool == DatumGetObjectId(pool.value))
			return &ev->cond[i];
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("event %s has no condition in pool %s", ev->id,
					EnumLabel(DatumGetObjectId(pool.value))),
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
	int			to = EvmgmtNextPoolState(c->state, action);

	if (to == PS_ILLEGAL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s pool %s of event %s: it is %s",
						EvmgmtPoolActionVerb(action), c->pool_name, ev->id, StateName(c->state)),
				 errdetail("The action %s is legal only from: %s.", EvmgmtPoolActionName(action),
						   EvmgmtStatesAllowing(action)),
				 errhint("%s", EvmgmtLegalMovesHint(c->state))));
	return (PoolState) to;
}

/*
 * The common start of every pool-level move: connect to SPI, lock the event
 * and its conditions, and return the condition of "pool" once "action" is
 * known to be legal from its state; *to receives the state it moves to.
 */
static Condition *
BeginPoolMove(int64 event_id, NullableDatum pool, PoolAction action, EventRow *ev, PoolState *to)
{
	Condition  *c;

	SPI_connect();
	LoadTypes();
	LockEvent(event_id, ev);
	CheckEventOpen(ev);
	c = FindCondition(ev, pool);
	*to = CheckTransition(ev, c, action);
	return c;
}

/*
 * Append one row to the event's timeline: pool and severities are
 * evmgmt.pool and evmgmt.severity values (InvalidOid for none), states are
 * evmgmt.event_state labels (NULL for none).
 */
static void
AddTimeline(EventRow *ev, Oid pool, TimestampTz at, const char *action,
			const char *from_state, const char *to_state,
			Oid from_severity, Oid to_severity,
			NullableDatum lever, NullableDatum reason, NullableDatum details)
{
	SqlArgs		a = {0};

	Bind(&a, INT8OID, Value(Int64GetDatum(ev->event_id)));
	Bind(&a, types.pool, EnumOrNull(pool));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	Bind(&a, TEXTOID, TextValue(action));
	Bind(&a, types.event_state,
		 EnumOrNull(from_state ? EnumValue(types.event_state, from_state) : InvalidOid));
	Bind(&a, types.event_state,
		 EnumOrNull(to_state ? EnumValue(types.event_state, to_state) : InvalidOid));
	Bind(&a, types.severity, EnumOrNull(from_severity));
	Bind(&a, types.severity, EnumOrNull(to_severity));
	Bind(&a, TEXTOID, lever);
	Bind(&a, TEXTOID, reason);
	Bind(&a, JSONBOID, details);
	RunSQL(true,
		   "INSERT INTO evmgmt.event_timeline (event_id, pool, at, action, from_state, to_state,"
		   "       from_severity, to_severity, lever, reason, details)"
		   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, COALESCE($11, '{}'))",
		   &a);
}

/* The floor state of an event from its (locked) conditions and flags. */
static const char *
RollupState(EventRow *ev)
{
	int			i;
	int			least = PS_COUNT;

	if (ev->cancelled)
		return "cancelled";
	if (ev->closed)
		return "closed";
	for (i = 0; i < ev->ncond; i++)
		if (ev->cond[i].state != PS_CANCELLED && (int) ev->cond[i].state < least)
			least = ev->cond[i].state;
	return least == PS_COUNT ? "cancelled" : StateName(least);
}

/* The pools of an evmgmt.pool[] value, NULL elements included. */
static int
PoolArray(Datum array, Datum **pools, bool **nulls)
{
	ArrayType  *arr = DatumGetArrayTypeP(array);
	int			n;

	deconstruct_array(arr, ARR_ELEMTYPE(arr), sizeof(Oid), true, TYPALIGN_INT, pools, nulls, &n);
	return n;
}

/*
 * open_event(event_type, site_id, pools, detection_source, title,
 * detected_at, queue_id, subtype, description): a new event with one
 * detected condition per pool; returns its event_id.
 */
Datum
evmgmt_open_event(PG_FUNCTION_ARGS)
{
	char	   *site_id = TextArg(fcinfo, 1);
	char	   *title = TextArg(fcinfo, 4);
	char	   *queue_id = TextArg(fcinfo, 6);
	NullableDatum detected = FuncArg(fcinfo, 5);
	Datum	   *pools = NULL;
	bool	   *pool_nulls = NULL;
	int			npools = 0;
	int			i;
	int			j;
	TimestampTz at;
	TimestampTz detected_at;
	SqlArgs		a = {0};
	StringInfoData json;
	EventRow	ev;
	int64		event_id;

	if (PG_ARGISNULL(0) || site_id == NULL || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event type, site and detection source must not be null")));
	RequireText(title, "title", "An event needs a title that says what is happening.");

	SPI_connect();
	LoadTypes();
	at = CallTime();

	if (!PG_ARGISNULL(2))
		npools = PoolArray(PG_GETARG_DATUM(2), &pools, &pool_nulls);
	if (npools == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an event needs at least one pool"),
				 errhint("Give the pools it hits, e.g. '{aa,spec}'.")));
	for (i = 0; i < npools; i++)
		for (j = 0; j <= i; j++)
			if (pool_nulls[i] || (j < i && pools[j] == pools[i]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("pools must be distinct and not null"),
						 errdetail("The pools given were %s.",
								   OidOutputFunctionCall(F_ARRAY_OUT, PG_GETARG_DATUM(2)))));

	detected_at = detected.isnull ? at : DatumGetTimestampTz(detected.value);
	if (!detected.isnull &&
		(TIMESTAMP_NOT_FINITE(detected_at) || detected_at > at || detected_at < EVMGMT_EARLIEST_TIME))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("detected_at must lie between 2000-01-01 and now"),
				 errdetail("It is %s.", TimeText(detected_at)),
				 errhint("Event times are bounded so that one bad value never breaks the due-time arithmetic of the workers.")));

	/* a role bound to other sites opens nothing here */
	CheckSiteInScope(FuncArg(fcinfo, 1).value, psprintf("site %s", site_id));

	/* the site and the queue, and the operations they belong to */
	Bind(&a, TEXTOID, FuncArg(fcinfo, 1));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 6));
	if (RunSQL(false,
			   "SELECT s.operation_id, q.operation_id"
			   "  FROM evmgmt.site s LEFT JOIN evmgmt.queue q ON q.queue_id = $2"
			   " WHERE s.site_id = $1", &a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("site \"%s\" does not exist", site_id)));
	if (queue_id)
	{
		char	   *operation_id = ColCString(0, 1);
		char	   *queue_operation = ColCString(0, 2);

		if (queue_operation == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("queue \"%s\" does not exist", queue_id)));
		if (strcmp(queue_operation, operation_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("queue \"%s\" belongs to operation \"%s\", site \"%s\" to operation \"%s\"",
							queue_id, queue_operation, site_id, operation_id)));
	}

	memset(&a, 0, sizeof(a));
	Bind(&a, TEXTOID, Value(ColValue(0, 1)));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 1));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 6));
	Bind(&a, types.event_type, FuncArg(fcinfo, 0));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 7));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 3));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 4));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 8));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(detected_at)));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	RunSQL(true,
		   "INSERT INTO evmgmt.event (operation_id, site_id, queue_id, event_type, subtype,"
		   "       detection_source, title, description, detected_at, opened_at)"
		   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
		   " RETURNING event_id",
		   &a);
	event_id = DatumGetInt64(ColValue(0, 1));

	memset(&ev, 0, sizeof(ev));
	ev.event_id = event_id;
	snprintf(ev.id, sizeof(ev.id), INT64_FORMAT, event_id);
	memset(&a, 0, sizeof(a));
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, types.pool_array, FuncArg(fcinfo, 2));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	RunSQL(true,
		   "INSERT INTO evmgmt.pool_condition (event_id, pool, opened_at)"
		   " SELECT $1, p, $3 FROM pg_catalog.unnest($2) AS p ORDER BY p",
		   &a);

	/* {"pools": [...], "detection_source": ..., "detected_at": ...} */
	JsonBegin(&json);
	JsonKey(&json, "pools");
	appendStringInfoChar(&json, '[');
	for (i = 0; i < npools; i++)
	{
		if (i > 0)
			appendStringInfoString(&json, ", ");
		escape_json(&json, EnumLabel(DatumGetObjectId(pools[i])));
	}
	appendStringInfoChar(&json, ']');
	JsonText(&json, "detection_source", TextArg(fcinfo, 3));
	JsonTime(&json, "detected_at", detected_at);
	AddTimeline(&ev, InvalidOid, at, "opened", NULL, "detected", InvalidOid, InvalidOid,
				NoValue(), NoValue(), JsonEnd(&json));

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
	EventRow	ev;
	TimestampTz at;
	SqlArgs		a = {0};
	Oid			pool;
	int			i;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pool must not be null")));
	pool = PG_GETARG_OID(1);
	SPI_connect();
	LoadTypes();
	LockEvent(event_id, &ev);
	CheckEventOpen(&ev);
	for (i = 0; i < ev.ncond; i++)
		if (ev.cond[i].pool == pool)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("event %s already has a condition in pool %s", ev.id, ev.cond[i].pool_name),
					 errdetail("It is %s.", StateName(ev.cond[i].state))));
	at = CallTime();
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, types.pool, Value(ObjectIdGetDatum(pool)));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	RunSQL(true,
		   "INSERT INTO evmgmt.pool_condition (event_id, pool, opened_at) VALUES ($1, $2, $3)",
		   &a);
	AddTimeline(&ev, pool, at, "opened", NULL, "detected", InvalidOid, InvalidOid,
				NoValue(), FuncArg(fcinfo, 2), NoValue());
	SPI_finish();
	return EvmgmtEnumDatumForReturn(fcinfo, "detected");
}

/*
 * Set the severity of a condition and its due times from the effective
 * policy, counted from the event's detection; returns the due times as
 * jsonb, with the direction of a reclassification when one is given.
 */
static NullableDatum
SetSeverity(EventRow *ev, Condition *c, Oid severity, PoolState state,
			TimestampTz at, bool first, const char *direction)
{
	SqlArgs		a = {0};

	Bind(&a, INT8OID, Value(Int64GetDatum(ev->event_id)));
	Bind(&a, types.pool, Value(ObjectIdGetDatum(c->pool)));
	Bind(&a, types.severity, Value(ObjectIdGetDatum(severity)));
	Bind(&a, types.event_state, Value(ObjectIdGetDatum(EnumValue(types.event_state, StateName(state)))));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	Bind(&a, BOOLOID, Value(BoolGetDatum(first)));
	Bind(&a, TEXTOID, TextValue(direction));
	RunSQL(true,
		   "UPDATE evmgmt.pool_condition pc"
		   "   SET severity = $3, state = $4,"
		   "       classified_at = CASE WHEN $6 THEN $5 ELSE pc.classified_at END,"
		   "       response_due = d.response_due, resolution_due = d.resolution_due"
		   "  FROM evmgmt.event e, evmgmt.target_due(e.site_id, $3, e.detected_at) d"
		   " WHERE e.event_id = pc.event_id AND pc.event_id = $1 AND pc.pool = $2"
		   " RETURNING pg_catalog.jsonb_build_object('response_due', pc.response_due,"
		   "           'resolution_due', pc.resolution_due)"
		   "        || CASE WHEN $7 IS NULL THEN '{}'::jsonb"
		   "                ELSE pg_catalog.jsonb_build_object('direction', $7) END",
		   &a);
	return Value(ColValue(0, 1));
}

/*
 * Hand a pool condition to the escalation engine at the call's time
 * (sql/install/65_escalation_engine.sql): "opened" (classified or reopened)
 * and "upgraded" start its escalation and the footprint's open messages and
 * status cadence, "resolved" and "cancelled" stop its escalations at once
 * and tell everyone who was paged.
 */
static void
NotifyEscalation(EventRow *ev, Condition *c, const char *what, TimestampTz at)
{
	SqlArgs		a = {0};

	Bind(&a, INT8OID, Value(Int64GetDatum(ev->event_id)));
	Bind(&a, types.pool, Value(ObjectIdGetDatum(c->pool)));
	Bind(&a, TEXTOID, TextValue(what));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	if (strcmp(what, "opened") == 0 || strcmp(what, "upgraded") == 0)
		RunSQL(false, "SELECT evmgmt.escalation_start($1, $2, $3, $4)", &a);
	else
		RunSQL(false, "SELECT evmgmt.escalation_stop($1, $2, $3, $4)", &a);
}

/* The severity argument "argno", which must not be NULL. */
static Oid
SeverityArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("severity must not be null")));
	return PG_GETARG_OID(argno);
}

/* classify_pool(event_id, pool, severity): detected -> classified. */
Datum
evmgmt_classify_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	Oid			severity = SeverityArg(fcinfo, 2);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	TimestampTz at;
	NullableDatum details;

	c = BeginPoolMove(event_id, FuncArg(fcinfo, 1), PA_CLASSIFY, &ev, &to);
	at = CallTime();
	details = SetSeverity(&ev, c, severity, to, at, true, NULL);
	AddTimeline(&ev, c->pool, at, "classified", StateName(c->state), StateName(to),
				InvalidOid, severity, NoValue(), NoValue(), details);
	NotifyEscalation(&ev, c, "opened", at);
	SPI_finish();
	return EvmgmtEnumDatumForReturn(fcinfo, StateName(to));
}

/* reclassify_pool(event_id, pool, severity, reason): a new tier for one pool. */
Datum
evmgmt_reclassify_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	Oid			severity = SeverityArg(fcinfo, 2);
	char	   *reason = TextArg(fcinfo, 3);
	const char *severity_name;
	bool		upgrade;
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	TimestampTz at;
	NullableDatum details;

	RequireText(reason, "reason", "Every reclassification is recorded with its reason so that severity drift can be audited.");
	c = BeginPoolMove(event_id, FuncArg(fcinfo, 1), PA_RECLASSIFY, &ev, &to);
	severity_name = EnumLabel(severity);
	if (strcmp(c->severity_name, severity_name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pool %s of event %s is already %s", c->pool_name, ev.id, severity_name)));
	upgrade = strcmp(severity_name, c->severity_name) < 0;
	at = CallTime();
	details = SetSeverity(&ev, c, severity, to, at, false, upgrade ? "up" : "down");
	AddTimeline(&ev, c->pool, at, "reclassified", StateName(c->state), StateName(to),
				c->severity, severity, NoValue(), FuncArg(fcinfo, 3), details);
	/* a more severe tier restarts the escalation; a lower one keeps it */
	if (upgrade)
		NotifyEscalation(&ev, c, "upgraded", at);
	SPI_finish();
	return EvmgmtEnumDatumForReturn(fcinfo, StateName(to));
}

/*
 * reclassify_type(event_id, event_type, subtype, reason): a responder
 * corrects the type (and subtype) of an open event, most often the one that
 * detection inferred and suggested.  Recorded in the timeline as an
 * event-level "reclassified" row with the old and new type in its details
 * (from_type, to_type, from_subtype, to_subtype)
 * (detection reads it to keep reusing this event for series that still
 * look like the old type), and in the audit trail by the event's trigger.
 */
Datum
evmgmt_reclassify_type(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *reason = TextArg(fcinfo, 3);
	char	   *subtype = TextArg(fcinfo, 2);
	const char *from_type;
	const char *to_type;
	char	   *from_subtype;
	EventRow	ev;
	SqlArgs		a = {0};
	StringInfoData json;
	TimestampTz at;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("event_type must not be null"),
				 errhint("Event types are system, capacity, demand and process.")));
	RequireText(reason, "reason", "Every change of an event's type is recorded with its reason.");
	SPI_connect();
	LoadTypes();
	LockEvent(event_id, &ev);
	CheckEventOpen(&ev);

	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, types.event_type, FuncArg(fcinfo, 1));
	RunSQL(false,
		   "SELECT e.subtype,"
		   "       $2 IS NULL OR EXISTS (SELECT FROM evmgmt.event_subtype st WHERE st.subtype = $2 AND st.event_type = $3),"
		   "       e.event_type = $3 AND e.subtype IS NOT DISTINCT FROM $2"
		   "  FROM evmgmt.event e WHERE e.event_id = $1", &a);
	from_subtype = ColCString(0, 1);
	from_type = EnumLabel(ev.event_type);
	to_type = EnumLabel(DatumGetObjectId(PG_GETARG_DATUM(1)));
	if (!DatumGetBool(ColValue(0, 2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subtype \"%s\" is not a subtype of %s", subtype, to_type),
				 errhint("The subtypes of each type are in evmgmt.event_subtype; pass NULL for none.")));
	if (DatumGetBool(ColValue(0, 3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event %s is already of type %s%s%s", ev.id, to_type,
						subtype ? " and subtype " : "", subtype ? subtype : "")));

	at = CallTime();
	RunSQL(true, "UPDATE evmgmt.event SET event_type = $3, subtype = $2 WHERE event_id = $1", &a);

	JsonBegin(&json);
	JsonText(&json, "from_type", from_type);
	JsonText(&json, "to_type", to_type);
	JsonText(&json, "from_subtype", from_subtype);
	JsonText(&json, "to_subtype", subtype);
	AddTimeline(&ev, InvalidOid, at, "reclassified", NULL, NULL, InvalidOid, InvalidOid,
				NoValue(), FuncArg(fcinfo, 3), JsonEnd(&json));
	SPI_finish();
	/* the new type, as given (to_type lived in the SPI context) */
	PG_RETURN_DATUM(PG_GETARG_DATUM(1));
}

/*
 * Link the event to its predecessor: the latest earlier event of the same
 * type, site and queue, diagnosed with the same cause category, that was
 * resolved (or closed) no longer than the recurrence window before this
 * one was detected.  One statement finds and links it.
 */
static void
LinkRecurrence(EventRow *ev, const char *cause, TimestampTz at)
{
	SqlArgs		a = {0};
	Interval   *window = RecurrenceWindow();
	StringInfoData json;
	int64		predecessor;

	if (ev->recurring)
		return;
	Bind(&a, INT8OID, Value(Int64GetDatum(ev->event_id)));
	Bind(&a, types.event_type, Value(ObjectIdGetDatum(ev->event_type)));
	Bind(&a, TEXTOID, Value(ev->site_id));
	Bind(&a, TEXTOID, ev->queue_id);
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(ev->detected_at)));
	Bind(&a, TEXTOID, TextValue(cause));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(ev->detected_at - window->time)));
	if (RunSQL(true,
			   "UPDATE evmgmt.event e SET recurrence_of = p.event_id"
			   "  FROM (SELECT p.event_id FROM evmgmt.event p"
			   "         WHERE p.event_id <> $1 AND p.event_type = $2"
			   "           AND p.site_id = $3 AND p.queue_id IS NOT DISTINCT FROM $4"
			   "           AND p.cancelled_at IS NULL AND p.detected_at < $5"
			   "           AND EXISTS (SELECT FROM evmgmt.pool_condition c WHERE c.event_id = p.event_id"
			   "                          AND c.cause_category = $6 AND c.state <> 'cancelled')"
			   "           AND (p.closed_at >= $7"
			   "                OR (p.closed_at IS NULL"
			   "                    AND (SELECT pg_catalog.max(c.resolved_at) FROM evmgmt.pool_condition c"
			   "                         WHERE c.event_id = p.event_id) >= $7))"
			   "         ORDER BY p.detected_at DESC, p.event_id DESC LIMIT 1) p"
			   " WHERE e.event_id = $1"
			   " RETURNING p.event_id",
			   &a) == 0)
		return;
	predecessor = DatumGetInt64(ColValue(0, 1));

	JsonBegin(&json);
	JsonInt8(&json, "recurrence_of", predecessor);
	JsonText(&json, "cause_category", cause);
	JsonText(&json, "recurrence_window",
			 DatumGetCString(DirectFunctionCall1(interval_out, IntervalPGetDatum(window))));
	AddTimeline(ev, InvalidOid, at, "note", NULL, NULL, InvalidOid, InvalidOid, NoValue(),
				TextValue(psprintf("recurrence of event " INT64_FORMAT, predecessor)),
				JsonEnd(&json));
	ev->recurring = true;
	ev->recurrence_of = predecessor;
}

/*
 * diagnose_pool(event_id, pool, cause_category, lever_class,
 * proximate_cause): classified -> diagnosed (or a revised diagnosis).
 */
Datum
evmgmt_diagnose_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *cause = TextArg(fcinfo, 2);
	char	   *lever_class = TextArg(fcinfo, 3);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	TimestampTz at;
	SqlArgs		a = {0};
	StringInfoData json;

	if (cause == NULL || lever_class == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a diagnosis needs a cause category and a lever class"),
				 errhint("Cause categories are in evmgmt.cause_category, lever classes in evmgmt.lever_class.")));
	c = BeginPoolMove(event_id, FuncArg(fcinfo, 1), PA_DIAGNOSE, &ev, &to);

	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 3));
	RunSQL(false,
		   "SELECT EXISTS (SELECT FROM evmgmt.cause_category WHERE category = $1),"
		   "       EXISTS (SELECT FROM evmgmt.lever_class WHERE lever_class = $2)", &a);
	if (!DatumGetBool(ColValue(0, 1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown cause category \"%s\"", cause),
				 errhint("Cause categories are in evmgmt.cause_category.")));
	if (!DatumGetBool(ColValue(0, 2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown lever class \"%s\"", lever_class),
				 errhint("Lever classes are in evmgmt.lever_class.")));

	at = CallTime();
	memset(&a, 0, sizeof(a));
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, types.pool, Value(ObjectIdGetDatum(c->pool)));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 3));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 4));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	RunSQL(true,
		   "UPDATE evmgmt.pool_condition SET state = 'diagnosed', cause_category = $3,"
		   "       lever_class = $4, proximate_cause = $5, diagnosed_at = $6"
		   " WHERE event_id = $1 AND pool = $2",
		   &a);
	JsonBegin(&json);
	JsonText(&json, "cause_category", cause);
	JsonText(&json, "lever_class", lever_class);
	JsonText(&json, "proximate_cause", TextArg(fcinfo, 4));
	AddTimeline(&ev, c->pool, at, "diagnosed", StateName(c->state), StateName(to),
				InvalidOid, InvalidOid, NoValue(), NoValue(), JsonEnd(&json));
	LinkRecurrence(&ev, cause, at);
	SPI_finish();
	return EvmgmtEnumDatumForReturn(fcinfo, StateName(to));
}

/*
 * log_response(event_id, pool, lever, note): activates a lever from the
 * catalogue allowed for the pool and event type; returns the action_id.
 */
Datum
evmgmt_log_response(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	char	   *lever = TextArg(fcinfo, 2);
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	TimestampTz at;
	int64		action_id;
	char	   *lever_class;
	SqlArgs		a = {0};
	StringInfoData json;

	if (lever == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a response needs a lever"),
				 errhint("Levers are in evmgmt.lever; evmgmt.lever_applicability says which apply to a pool and event type.")));
	c = BeginPoolMove(event_id, FuncArg(fcinfo, 1), PA_RESPOND, &ev, &to);

	/* the lever, whether it applies, and (only when not) what does */
	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, types.pool, Value(ObjectIdGetDatum(c->pool)));
	Bind(&a, types.event_type, Value(ObjectIdGetDatum(ev.event_type)));
	if (RunSQL(false,
			   "SELECT l.lever_class, x.applies,"
			   "       CASE WHEN NOT x.applies THEN"
			   "            (SELECT COALESCE(pg_catalog.string_agg(o.lever, ', ' ORDER BY o.lever), 'none')"
			   "               FROM evmgmt.lever_applicability o WHERE o.pool = $2 AND o.event_type = $3)"
			   "       END"
			   "  FROM evmgmt.lever l,"
			   "       LATERAL (SELECT EXISTS (SELECT FROM evmgmt.lever_applicability"
			   "                                WHERE lever = l.lever AND pool = $2 AND event_type = $3)"
			   "                AS applies) x"
			   " WHERE l.lever = $1", &a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown lever \"%s\"", lever),
				 errhint("Levers are in evmgmt.lever.")));
	if (!DatumGetBool(ColValue(0, 2)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lever \"%s\" is not allowed for pool %s and event type %s", lever, c->pool_name,
						EnumLabel(ev.event_type)),
				 errdetail("The lever catalogue (evmgmt.lever_applicability) allows for this pool and type: %s.",
						   ColCString(0, 3))));
	lever_class = ColCString(0, 1);

	at = CallTime();
	memset(&a, 0, sizeof(a));
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, types.pool, Value(ObjectIdGetDatum(c->pool)));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 3));
	RunSQL(true,
		   "INSERT INTO evmgmt.response_action (event_id, pool, lever, activated_at, note)"
		   " VALUES ($1, $2, $3, $4, $5) RETURNING action_id",
		   &a);
	/* by value: still valid after SPI_finish() frees the result */
	action_id = DatumGetInt64(ColValue(0, 1));
	RunSQL(true,
		   "UPDATE evmgmt.pool_condition SET state = 'responding',"
		   "       first_response_at = COALESCE(first_response_at, $4)"
		   " WHERE event_id = $1 AND pool = $2",
		   &a);
	JsonBegin(&json);
	JsonInt8(&json, "action_id", action_id);
	JsonText(&json, "lever_class", lever_class);
	AddTimeline(&ev, c->pool, at, "responded", StateName(c->state), StateName(to),
				InvalidOid, InvalidOid, FuncArg(fcinfo, 2), FuncArg(fcinfo, 3), JsonEnd(&json));
	SPI_finish();
	PG_RETURN_INT64(action_id);
}

/*
 * What resolving, cancelling and reopening do: the UPDATE of the condition
 * ($1 event, $2 pool, $3 the call's time, $4 the note or reason), the word
 * on the timeline, what the escalation engine is told, and for the
 * event-level form, what happens to the event row ($1 event, $2 time, $3
 * reason) and which states a condition may be in to be left alone.
 */
typedef struct MoveEffect
{
	PoolAction	action;
	const char *timeline;
	const char *escalation;
	const char *condition_sql;
	const char *event_sql;		/* NULL: the event row does not change */
	bits32		left_alone;		/* states (1 << s) an event-level move skips */
	const char *pool_reason;	/* errdetail when the reason is missing; NULL: optional */
	const char *event_reason;
	const char *event_detail;	/* errdetail when a condition cannot move */
} MoveEffect;

#define STATE_BIT(s) ((bits32) 1 << (s))

static const MoveEffect move_effects[] = {
	{
		PA_RESOLVE, "resolved", "resolved",
		"UPDATE evmgmt.pool_condition SET state = 'resolved', resolved_at = $3, resolution_note = $4"
		" WHERE event_id = $1 AND pool = $2",
		NULL,
		STATE_BIT(PS_RESOLVED) | STATE_BIT(PS_CANCELLED),
		NULL, NULL,
		"Resolving an event resolves every pool condition, and a condition can be resolved only when it is responding."
	},
	{
		PA_CANCEL, "cancelled", "cancelled",
		"UPDATE evmgmt.pool_condition SET state = 'cancelled'"
		" WHERE event_id = $1 AND pool = $2",
		"UPDATE evmgmt.event SET cancelled_at = $2, cancelled_by = SESSION_USER, cancel_reason = $3"
		" WHERE event_id = $1",
		STATE_BIT(PS_CANCELLED),
		"A false positive is cancelled with the reason it is one.",
		"A false positive is cancelled with the reason it is one.",
		"Only an event none of whose pools has had a response can be cancelled as a false positive."
	},
	{
		PA_REOPEN, "reopened", "opened",	/* live again: page and report as when opened */
		"UPDATE evmgmt.pool_condition SET state = 'diagnosed', resolved_at = NULL, resolution_note = NULL"
		" WHERE event_id = $1 AND pool = $2",
		"UPDATE evmgmt.event SET closed_at = NULL, closed_by = NULL WHERE event_id = $1",
		~STATE_BIT(PS_RESOLVED),
		"A reopened condition is recorded with the reason it came back.",
		"A reopened event is recorded with the reason it came back.",
		NULL
	},
	{
		PA_AVERT, "resolved", "resolved",
		"UPDATE evmgmt.pool_condition SET state = 'resolved', resolved_at = $3, resolution_note = $4"
		" WHERE event_id = $1 AND pool = $2",
		NULL,
		STATE_BIT(PS_RESOLVED) | STATE_BIT(PS_CANCELLED),
		"An averted condition is recorded with what prevented the breach.",
		NULL,
		NULL
	},
};

/* The effects of a mover action. */
static const MoveEffect *
EffectOf(PoolAction action)
{
	int			i;

	for (i = 0; i < lengthof(move_effects); i++)
		if (move_effects[i].action == action)
			return &move_effects[i];
	elog(ERROR, "action %d is not a mover", (int) action);
	return NULL;				/* keep compiler quiet */
}

/* Raise an error unless "since" lies within the recurrence window before "at". */
static void
CheckWithinWindow(EventRow *ev, const char *what, TimestampTz since, TimestampTz at)
{
	Interval   *window = RecurrenceWindow();
	Interval	ended;

	if (at - since <= window->time)
		return;
	memset(&ended, 0, sizeof(ended));
	ended.time = at - since;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s of event %s is outside the recurrence window", what, ev->id),
			 errdetail("It ended %s ago; the recurrence window (evmgmt.recurrence_window) is %s.",
					   IntervalText(&ended), IntervalText(window)),
			 errhint("Open a new event: once diagnosed with the same cause it is linked to this one as a recurrence.")));
}

/* Apply a mover to one (locked, checked) condition. */
static void
MoveCondition(EventRow *ev, Condition *c, const MoveEffect *m, NullableDatum reason, TimestampTz at)
{
	PoolState	to = (PoolState) EvmgmtNextPoolState(c->state, m->action);
	SqlArgs		a = {0};

	Assert((int) to != PS_ILLEGAL);
	Bind(&a, INT8OID, Value(Int64GetDatum(ev->event_id)));
	Bind(&a, types.pool, Value(ObjectIdGetDatum(c->pool)));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	Bind(&a, TEXTOID, reason);
	RunSQL(true, m->condition_sql, &a);
	AddTimeline(ev, c->pool, at, m->timeline, StateName(c->state), StateName(to),
				InvalidOid, InvalidOid, NoValue(), reason, NoValue());
	NotifyEscalation(ev, c, m->escalation, at);
	c->state = to;
}

/* resolve_pool, cancel_pool, reopen_pool (event_id, pool, note or reason). */
static Datum
MovePool(FunctionCallInfo fcinfo, PoolAction action)
{
	const MoveEffect *m = EffectOf(action);
	int64		event_id = RequireId(fcinfo, "event_id");
	EventRow	ev;
	Condition  *c;
	PoolState	to;
	TimestampTz at;

	if (m->pool_reason)
		RequireText(TextArg(fcinfo, 2), "reason", m->pool_reason);
	c = BeginPoolMove(event_id, FuncArg(fcinfo, 1), action, &ev, &to);
	at = CallTime();
	if (action == PA_REOPEN)
		CheckWithinWindow(&ev, psprintf("the resolution of pool %s", c->pool_name), c->resolved_at, at);
	MoveCondition(&ev, c, m, FuncArg(fcinfo, 2), at);
	SPI_finish();
	return EvmgmtEnumDatumForReturn(fcinfo, StateName(to));
}

/*
 * resolve_event, cancel_event (event_id, note or reason) and reopen_event
 * (event_id, reason, pools): the mover applied to every condition of the
 * event it concerns, all or none; returns the event's roll-up state.
 */
static Datum
MoveEvent(FunctionCallInfo fcinfo, PoolAction action)
{
	const MoveEffect *m = EffectOf(action);
	int64		event_id = RequireId(fcinfo, "event_id");
	NullableDatum reason = FuncArg(fcinfo, 1);
	bool		named = action == PA_REOPEN && !PG_ARGISNULL(2);
	bool		moves[MAX_CONDITIONS];
	Datum	   *pools = NULL;
	bool	   *pool_nulls = NULL;
	int			npools = 0;
	int			nmoves = 0;
	const char *before;
	EventRow	ev;
	TimestampTz at = 0;
	int			i;
	int			j;

	if (m->event_reason)
		RequireText(TextArg(fcinfo, 1), "reason", m->event_reason);
	SPI_connect();
	LoadTypes();
	LockEvent(event_id, &ev);
	if (action != PA_REOPEN)
		CheckEventOpen(&ev);
	else
	{
		if (ev.cancelled)
			CheckEventOpen(&ev);
		if (!ev.closed)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("event %s is not closed", ev.id),
					 errhint("To reopen one resolved pool of an open event use evmgmt.reopen_pool.")));
		at = CallTime();
		CheckWithinWindow(&ev, "the closure", ev.closed_at, at);
		if (named)
			npools = PoolArray(PG_GETARG_DATUM(2), &pools, &pool_nulls);
	}

	/* which conditions move; every one that should and cannot is an error */
	for (i = 0; i < ev.ncond; i++)
	{
		Condition  *c = &ev.cond[i];

		moves[i] = false;
		if (named)
		{
			bool		wanted = false;

			for (j = 0; j < npools && !wanted; j++)
				wanted = !pool_nulls[j] && DatumGetObjectId(pools[j]) == c->pool;
			if (!wanted)
				continue;
			CheckTransition(&ev, c, action);
		}
		else if (m->left_alone & STATE_BIT(c->state))
			continue;
		if (EvmgmtNextPoolState(c->state, action) == PS_ILLEGAL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot %s event %s: pool %s is %s", EvmgmtPoolActionVerb(action),
							ev.id, c->pool_name, StateName(c->state)),
					 errdetail("%s", m->event_detail),
					 errhint("%s", EvmgmtLegalMovesHint(c->state))));
		moves[i] = true;
		nmoves++;
	}
	if (nmoves == 0 && action == PA_RESOLVE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event %s has no unresolved pool condition", ev.id),
				 errhint("Close it with evmgmt.close_event.")));
	if (nmoves == 0 && action == PA_REOPEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no pool of event %s to reopen", ev.id),
				 errdetail("Its pools are: %s.", PoolList(&ev))));

	if (action != PA_REOPEN)
		at = CallTime();
	before = RollupState(&ev);
	for (i = 0; i < ev.ncond; i++)
		if (moves[i])
			MoveCondition(&ev, &ev.cond[i], m, reason, at);

	if (m->event_sql)
	{
		SqlArgs		a = {0};

		Bind(&a, INT8OID, Value(Int64GetDatum(ev.event_id)));
		Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
		Bind(&a, TEXTOID, reason);
		RunSQL(true, m->event_sql, &a);
		ev.cancelled = action == PA_CANCEL;
		ev.closed = false;
		AddTimeline(&ev, InvalidOid, at, m->timeline, before, RollupState(&ev),
					InvalidOid, InvalidOid, NoValue(), reason, NoValue());
	}
	SPI_finish();
	return EvmgmtEnumDatumForReturn(fcinfo, RollupState(&ev));
}

/* resolve_pool(event_id, pool, note): responding -> resolved. */
Datum
evmgmt_resolve_pool(PG_FUNCTION_ARGS)
{
	return MovePool(fcinfo, PA_RESOLVE);
}

/*
 * resolve_event(event_id, note): resolves every condition that is neither
 * resolved nor cancelled, all or none; each must be responding.
 */
Datum
evmgmt_resolve_event(PG_FUNCTION_ARGS)
{
	return MoveEvent(fcinfo, PA_RESOLVE);
}

/* cancel_pool(event_id, pool, reason): one pool was a false positive. */
Datum
evmgmt_cancel_pool(PG_FUNCTION_ARGS)
{
	return MovePool(fcinfo, PA_CANCEL);
}

/*
 * cancel_event(event_id, reason): the whole event was a false positive;
 * every live condition is cancelled, all or none.
 */
Datum
evmgmt_cancel_event(PG_FUNCTION_ARGS)
{
	return MoveEvent(fcinfo, PA_CANCEL);
}

/*
 * avert_pool(event_id, pool, reason): the breach a predicted event foresaw
 * did not happen (a re-forecast or a schedule change made the projection
 * healthy before it began); the condition resolves from classified,
 * diagnosed or responding.  Only events with detection_source 'predictive'.
 */
Datum
evmgmt_avert_pool(PG_FUNCTION_ARGS)
{
	int64		event_id = RequireId(fcinfo, "event_id");
	SqlArgs		a = {0};
	bool		found;
	bool		predicted = false;
	bool		isnull;

	SPI_connect();
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	RunSQL(false, "SELECT detection_source = 'predictive' FROM evmgmt.event WHERE event_id = $1", &a);
	found = SPI_processed == 1;
	if (found)
		predicted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	/* an unknown event is reported by the mover, as for every function */
	if (found && !predicted)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("event " INT64_FORMAT " was not predicted", event_id),
				 errdetail("Only a predicted event (detection_source predictive) can be averted."),
				 errhint("Resolve it with evmgmt.resolve_pool once a response is logged, or cancel a false positive.")));
	return MovePool(fcinfo, PA_AVERT);
}

/* reopen_pool(event_id, pool, reason): resolved -> diagnosed, within the window. */
Datum
evmgmt_reopen_pool(PG_FUNCTION_ARGS)
{
	return MovePool(fcinfo, PA_REOPEN);
}

/*
 * reopen_event(event_id, reason, pools): a closed event back to open, within
 * the window; the given resolved pools (all resolved ones when NULL) go back
 * to diagnosed.
 */
Datum
evmgmt_reopen_event(PG_FUNCTION_ARGS)
{
	return MoveEvent(fcinfo, PA_REOPEN);
}

/* Refuse analysis changes on a cancelled event. */
static void
CheckNotCancelled(EventRow *ev)
{
	if (ev->cancelled)
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
	EventRow	ev;
	TimestampTz at;
	SqlArgs		a = {0};
	StringInfoData json;

	RequireText(TextArg(fcinfo, 1), "root cause", "A post-resolution analysis names the root cause.");
	RequireText(TextArg(fcinfo, 2), "action plan", "A post-resolution analysis has an action plan to reduce recurrence.");
	SPI_connect();
	LoadTypes();
	LockEvent(event_id, &ev);
	CheckNotCancelled(&ev);
	at = CallTime();
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 1));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, TEXTARRAYOID, FuncArg(fcinfo, 3));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 4));
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	RunSQL(true,
		   "INSERT INTO evmgmt.post_resolution_analysis AS a (event_id, root_cause, action_plan,"
		   "       contributing_factors, detector_gap, recorded_at)"
		   " VALUES ($1, $2, $3, COALESCE($4, '{}'), $5, $6)"
		   " ON CONFLICT (event_id) DO UPDATE SET root_cause = EXCLUDED.root_cause,"
		   "       action_plan = EXCLUDED.action_plan, contributing_factors = EXCLUDED.contributing_factors,"
		   "       detector_gap = EXCLUDED.detector_gap, recorded_at = EXCLUDED.recorded_at,"
		   "       recorded_by = SESSION_USER"
		   " RETURNING a.xmax::text <> '0'",
		   &a);
	JsonBegin(&json);
	JsonText(&json, "analysis", DatumGetBool(ColValue(0, 1)) ? "replaced" : "recorded");
	AddTimeline(&ev, InvalidOid, at, "analysis", NULL, NULL, InvalidOid, InvalidOid, NoValue(),
				FuncArg(fcinfo, 1), JsonEnd(&json));
	SPI_finish();
	PG_RETURN_VOID();
}

/* Raise an error unless the event has a post-resolution analysis. */
static void
RequireAnalysis(EventRow *ev)
{
	SqlArgs		a = {0};

	Bind(&a, INT8OID, Value(Int64GetDatum(ev->event_id)));
	if (RunSQL(false, "SELECT FROM evmgmt.post_resolution_analysis WHERE event_id = $1", &a) == 0)
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
	EventRow	ev;
	TimestampTz at;
	int64		item_id;
	SqlArgs		a = {0};

	RequireText(TextArg(fcinfo, 1), "description", "An action item says what is to be done.");
	RequireText(TextArg(fcinfo, 2), "owner", "An action item has an owner.");
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("an action item needs a due date")));
	{
		DateADT		due = PG_GETARG_DATEADT(3);
		DateADT		today = DatumGetDateADT(DirectFunctionCall1(timestamptz_date,
																TimestampTzGetDatum(GetCurrentTimestamp())));

		/* date 0 is 2000-01-01; ten years ahead, leap days included */
		if (DATE_NOT_FINITE(due) || due < 0 || due > today + 3653)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("due_date must lie between 2000-01-01 and ten years from today"),
					 errdetail("It is %s.", DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(due))))));
	}
	SPI_connect();
	LoadTypes();
	LockEvent(event_id, &ev);
	CheckNotCancelled(&ev);
	RequireAnalysis(&ev);
	at = CallTime();
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 1));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, DATEOID, FuncArg(fcinfo, 3));
	RunSQL(true,
		   "INSERT INTO evmgmt.action_item (event_id, description, owner, due_date)"
		   " VALUES ($1, $2, $3, $4) RETURNING item_id,"
		   "        pg_catalog.jsonb_build_object('action_item', item_id, 'owner', owner, 'due_date', due_date)",
		   &a);
	/* by value: still valid after SPI_finish() frees the result */
	item_id = DatumGetInt64(ColValue(0, 1));
	AddTimeline(&ev, InvalidOid, at, "analysis", NULL, NULL, InvalidOid, InvalidOid, NoValue(),
				FuncArg(fcinfo, 1), Value(ColValue(0, 2)));
	SPI_finish();
	PG_RETURN_INT64(item_id);
}

/* complete_action_item(item_id): marks an action item done. */
Datum
evmgmt_complete_action_item(PG_FUNCTION_ARGS)
{
	int64		item_id = RequireId(fcinfo, "item_id");
	EventRow	ev;
	TimestampTz at;
	SqlArgs		a = {0};
	StringInfoData json;

	SPI_connect();
	LoadTypes();
	Bind(&a, INT8OID, Value(Int64GetDatum(item_id)));
	if (RunSQL(false, "SELECT event_id FROM evmgmt.action_item WHERE item_id = $1", &a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("action item " INT64_FORMAT " does not exist", item_id)));
	LockEvent(DatumGetInt64(ColValue(0, 1)), &ev);
	at = CallTime();
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	if (RunSQL(true,
			   "UPDATE evmgmt.action_item SET done_at = $2"
			   " WHERE item_id = $1 AND done_at IS NULL", &a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("action item " INT64_FORMAT " is already done", item_id)));
	JsonBegin(&json);
	JsonInt8(&json, "action_item_done", item_id);
	AddTimeline(&ev, InvalidOid, at, "note", NULL, NULL, InvalidOid, InvalidOid, NoValue(),
				TextValue(psprintf("action item " INT64_FORMAT " done", item_id)), JsonEnd(&json));
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
	EventRow	ev;
	TimestampTz at;
	SqlArgs		a = {0};

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("objective and direction must not be null"),
				 errhint("Direction is improved, neutral or degraded.")));
	SPI_connect();
	LoadTypes();
	LockEvent(event_id, &ev);
	CheckNotCancelled(&ev);
	RequireAnalysis(&ev);
	at = CallTime();
	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	Bind(&a, types.objective, FuncArg(fcinfo, 1));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 2));
	Bind(&a, FLOAT8OID, FuncArg(fcinfo, 3));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 4));
	Bind(&a, TEXTOID, FuncArg(fcinfo, 5));
	RunSQL(true,
		   "INSERT INTO evmgmt.objective_impact (event_id, objective, direction, magnitude, unit, note)"
		   " VALUES ($1, $2, $3, $4, $5, $6)"
		   " ON CONFLICT (event_id, objective) DO UPDATE SET direction = EXCLUDED.direction,"
		   "       magnitude = EXCLUDED.magnitude, unit = EXCLUDED.unit, note = EXCLUDED.note"
		   " RETURNING pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('objective', objective,"
		   "           'direction', direction, 'magnitude', magnitude, 'unit', unit))",
		   &a);
	AddTimeline(&ev, InvalidOid, at, "analysis", NULL, NULL, InvalidOid, InvalidOid, NoValue(),
				FuncArg(fcinfo, 5), Value(ColValue(0, 1)));
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
	TimestampTz at;
	int			i;
	int			resolved = 0;
	const char *worst = NULL;
	SqlArgs		a = {0};

	SPI_connect();
	LoadTypes();
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
					 errmsg("cannot close event %s: pool %s is %s", ev.id, c->pool_name, StateName(c->state)),
					 errdetail("An event closes only when every pool condition is resolved or cancelled."),
					 errhint("%s", EvmgmtLegalMovesHint(c->state))));
		resolved++;
		if (worst == NULL || strcmp(c->severity_name, worst) < 0)
			worst = c->severity_name;
	}
	if (resolved == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot close event %s: every pool condition is cancelled", ev.id),
				 errhint("Cancel the event as a false positive with evmgmt.cancel_event.")));

	Bind(&a, INT8OID, Value(Int64GetDatum(event_id)));
	if (strcmp(worst, "sev1") == 0 || (strcmp(worst, "sev2") == 0 && ev.recurring))
	{
		char	   *gaps;

		RunSQL(false, "SELECT pg_catalog.array_to_string(evmgmt.analysis_gaps($1), ', ')", &a);
		gaps = ColCString(0, 1);
		if (gaps != NULL && gaps[0] != '\0')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("event %s needs a complete post-resolution analysis before it can close", ev.id),
					 strcmp(worst, "sev1") == 0 ?
					 errdetail("It is a sev1 event. Missing: %s.", gaps) :
					 errdetail("It is a recurring sev2 event (recurrence of event " INT64_FORMAT "). Missing: %s.",
							   ev.recurrence_of, gaps),
					 errhint("Record them with evmgmt.record_analysis, evmgmt.add_action_item and evmgmt.record_objective_impact.")));
	}

	at = CallTime();
	Bind(&a, TIMESTAMPTZOID, Value(TimestampTzGetDatum(at)));
	RunSQL(true,
		   "UPDATE evmgmt.event SET closed_at = $2, closed_by = SESSION_USER WHERE event_id = $1",
		   &a);
	AddTimeline(&ev, InvalidOid, at, "closed", RollupState(&ev), "closed", InvalidOid, InvalidOid,
				NoValue(), NoValue(), NoValue());
	SPI_finish();
	return EvmgmtEnumDatumForReturn(fcinfo, "closed");
}

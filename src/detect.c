/*-------------------------------------------------------------------------
 *
 * detect.c
 *	  Per-row checks of the interval ingest path that must cost next to
 *	  nothing at COPY speed.
 *
 * interval_stat refuses a start that is not on an interval boundary (a whole
 * minute, aligned to the interval length but at most to 15 minutes, so that
 * sites in zones offset by 30 or 45 minutes keep their local boundaries).
 * A timestamptz is an int64 count of microseconds since 2000-01-01 UTC,
 * which is itself aligned to every such boundary, so the check is one
 * integer remainder: no float conversion, no date_part per row.
 *
 * The forgiving path's parsers (try_integer, try_real, try_timestamptz)
 * live here too: they read text the way the input functions do but return
 * NULL instead of raising, which is what lets interval_inbox classify a
 * whole batch without a subtransaction per row.
 *
 * IDENTIFICATION
 *	  src/detect.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "evmgmt.h"

PG_FUNCTION_INFO_V1(evmgmt_interval_start_aligned);

/* Greatest common divisor of two positive integers. */
static int
Gcd(int a, int b)
{
	while (b != 0)
	{
		int			t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * interval_start_aligned(start timestamptz, minutes smallint) -> boolean
 *
 * True when start lies on a boundary of gcd(minutes, 15) minutes.  A length
 * that is not positive yields NULL, so that the CHECK on the length itself
 * reports that row rather than this one.
 */
/* Whether start lies on a boundary of gcd(minutes, 15) minutes (minutes > 0). */
static bool
StartAligned(TimestampTz start, int minutes)
{
	if (TIMESTAMP_NOT_FINITE(start))
		return false;
	return start % ((int64) Gcd(minutes, 15) * USECS_PER_MINUTE) == 0;
}

Datum
evmgmt_interval_start_aligned(PG_FUNCTION_ARGS)
{
	TimestampTz start = PG_GETARG_TIMESTAMPTZ(0);
	int			minutes = PG_GETARG_INT16(1);

	if (minutes <= 0)
		PG_RETURN_NULL();
	PG_RETURN_BOOL(StartAligned(start, minutes));
}

/*
 * The forgiving ingest path (interval_inbox) takes every column as text and
 * must tell a value that does not parse from one that does, for a whole batch
 * at once and without a subtransaction per row.  These parsers never raise:
 * they return NULL for text the matching input function would refuse, so a
 * set-based classifier can give each bad row its reason and load the rest.
 */

PG_FUNCTION_INFO_V1(evmgmt_try_integer);
PG_FUNCTION_INFO_V1(evmgmt_try_real);
PG_FUNCTION_INFO_V1(evmgmt_try_timestamptz);

/* Parse a decimal integer as int2in/int4in accept it; false when it is none. */
static bool
ParseInteger(const char *p, const char *end, int64 *result)
{
	bool		neg = false;
	bool		digits = false;
	bool		overflow = false;
	uint64		v = 0;

	while (p < end && isspace((unsigned char) *p))
		p++;
	if (p < end && (*p == '-' || *p == '+'))
		neg = (*p++ == '-');
	while (p < end && isdigit((unsigned char) *p))
	{
		digits = true;
		if (v > (PG_UINT64_MAX - 9) / 10)
			overflow = true;
		else
			v = v * 10 + (*p - '0');
		p++;
	}
	while (p < end && isspace((unsigned char) *p))
		p++;
	if (!digits || p != end)
		return false;
	if (overflow || v > (uint64) PG_INT64_MAX)
		*result = neg ? PG_INT64_MIN : PG_INT64_MAX;
	else
		*result = neg ? -(int64) v : (int64) v;
	return true;
}

/* Parse a number as float8in reads it; false when it does not parse. */
static bool
ParseReal(const char *s, double *result)
{
	const char *p = s;
	char	   *endp;
	double		v;

	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
		return false;
	if (pg_strncasecmp(p, "NaN", 3) == 0)
	{
		v = get_float8_nan();
		endp = (char *) p + 3;
	}
	else if (pg_strncasecmp(p, "Infinity", 8) == 0 || pg_strncasecmp(p, "+Infinity", 9) == 0)
	{
		v = get_float8_infinity();
		endp = (char *) p + (*p == '+' ? 9 : 8);
	}
	else if (pg_strncasecmp(p, "-Infinity", 9) == 0)
	{
		v = -get_float8_infinity();
		endp = (char *) p + 9;
	}
	else
	{
		/* strtod also takes hex floats and "inf", which float8in does not */
		const char *q = p;

		if (*q == '+' || *q == '-')
			q++;
		if (!(isdigit((unsigned char) *q) || (*q == '.' && isdigit((unsigned char) q[1]))))
			return false;
		if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
			return false;
		errno = 0;
		v = strtod(p, &endp);
		if (endp == p)
			return false;
	}
	while (*endp && isspace((unsigned char) *endp))
		endp++;
	if (*endp != '\0')
		return false;
	*result = v;
	return true;
}

/* Parse a timestamp as timestamptz_in reads it; false when it does not. */
static bool
ParseTimestamptz(const char *str, TimestampTz *result)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tt,
			   *tm = &tt;
	fsec_t		fsec;
	int			tz;

	if (strlen(str) >= MAXDATELEN)
		return false;
	if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0)
		return false;
	if (DecodeDateTime(field, ftype, nf, &dtype, tm, &fsec, &tz) != 0)
		return false;
	if (dtype != DTK_DATE)
		return false;			/* epoch, infinity, now: not an interval start */
	if (tm2timestamp(tm, fsec, &tz, result) != 0 || !IS_VALID_TIMESTAMP(*result))
		return false;
	return true;
}

/*
 * try_integer(text) -> bigint
 *
 * The value of a decimal integer with optional sign and surrounding blanks,
 * as int2in/int4in accept it; NULL when the text is no such integer.  A
 * value beyond the bigint range comes back clamped, so that the caller's
 * range check reports it as out of range rather than as a syntax error.
 */
Datum
evmgmt_try_integer(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int64		v;

	if (!ParseInteger(VARDATA_ANY(t), VARDATA_ANY(t) + VARSIZE_ANY_EXHDR(t), &v))
		PG_RETURN_NULL();
	PG_RETURN_INT64(v);
}

/*
 * try_real(text) -> double precision
 *
 * The value of the text as float4in/float8in read it (decimal or exponent
 * notation, NaN, Infinity); NULL when it does not parse.  The caller checks
 * the real range.
 */
Datum
evmgmt_try_real(PG_FUNCTION_ARGS)
{
	double		v;

	if (!ParseReal(text_to_cstring(PG_GETARG_TEXT_PP(0)), &v))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(v);
}

/*
 * try_timestamptz(text) -> timestamptz
 *
 * The text read as timestamptz_in reads it (DateStyle and TimeZone of the
 * session), NULL when it does not parse or is out of range.  The date/time
 * parser reports its errors as return codes, so nothing is raised here.
 */
Datum
evmgmt_try_timestamptz(PG_FUNCTION_ARGS)
{
	TimestampTz v;

	if (!ParseTimestamptz(text_to_cstring(PG_GETARG_TEXT_PP(0)), &v))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(v);
}

/*
 * The classifier of the forgiving path.  interval_inbox_problem() takes the
 * eighteen text columns of an inbox row and whether its site and queue codes
 * are known, and returns why the row cannot become an interval_stat row as
 * {sqlstate, constraint, message[, detail]}, or NULL when it can.  It checks
 * what an INSERT would meet, in that order: input syntax and range column by
 * column, NOT NULL, each CHECK constraint of interval_stat (a column on its
 * own first, then the relations between columns), then the codes.  It must
 * stay in step with the declaration in sql/install/20_intervals.sql; the
 * intervals regression test has a row for every check.
 */
PG_FUNCTION_INFO_V1(evmgmt_interval_inbox_problem);

#define INBOX_COLUMNS 18

enum InboxColumn
{
	C_SITE, C_QUEUE, C_POOL, C_START, C_MINUTES, C_OFFERED, C_HANDLED, C_ABANDONED, C_ANSWERED,
	C_THRESHOLD, C_AHT, C_STAFFED, C_SCHEDULED, C_FC_OFFERED, C_FC_AHT, C_TRANSFERRED, C_ESCALATED,
	C_REPEAT
};

static const char *const inbox_column_names[INBOX_COLUMNS] = {
	"site_id", "queue_id", "pool", "interval_start", "interval_minutes", "offered", "handled", "abandoned",
	"answered_in_threshold", "threshold_seconds", "aht_seconds", "staffed", "scheduled", "forecast_offered",
	"forecast_aht", "transferred", "escalated", "repeat_contacts"
};

/* {sqlstate, constraint, message[, detail]} as a text[] Datum. */
static Datum
Problem(const char *sqlstate, const char *constraint, char *message, char *detail)
{
	Datum		elems[4];
	bool		nulls[4] = {false, constraint == NULL, false, detail == NULL};
	int			dims[1] = {detail ? 4 : 3};
	int			lbs[1] = {1};

	elems[0] = CStringGetTextDatum(sqlstate);
	elems[1] = constraint ? CStringGetTextDatum(constraint) : (Datum) 0;
	elems[2] = CStringGetTextDatum(message);
	elems[3] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
CheckProblem(const char *constraint)
{
	return Problem("23514", constraint,
				   psprintf("new row for relation \"interval_stat\" violates check constraint \"%s\"", constraint),
				   NULL);
}

static Datum
NotNullProblem(int col)
{
	return Problem("23502", NULL,
				   psprintf("null value in column \"%s\" of relation \"interval_stat\" violates not-null constraint",
							inbox_column_names[col]),
				   NULL);
}

/*
 * One inbox row: the text of each column (NULL when absent) and, once
 * InboxRowProblem() has accepted it, the values it parsed.
 */
typedef struct InboxRow
{
	char	   *v[INBOX_COLUMNS];
	bool		has[INBOX_COLUMNS];
	int64		iv[INBOX_COLUMNS];
	double		rv[INBOX_COLUMNS];
	TimestampTz start;
} InboxRow;


/*
 * The rules of an interval_stat row, by constraint name, as the CHECK
 * constraints of 0.1.0 stated them; the first one (in name order, the order
 * in which PostgreSQL evaluates CHECK constraints) that the row breaks, or
 * NULL.  A relation between two counts holds vacuously while a count is
 * wrong on its own, so that the most specific rule is the one reported; an
 * optional column that is absent breaks nothing.  Reals compare as float4,
 * as the column stores them; NaN and infinities break every real's rule.
 * Required columns are present (NOT NULL is checked before).
 */
static const char *
RowRuleViolated(const InboxRow *r)
{
	const int64 *iv = r->iv;
	const double *rv = r->rv;
	const bool *has = r->has;
	int64		offered = iv[C_OFFERED];
	int64		handled = iv[C_HANDLED];
	int64		abandoned = iv[C_ABANDONED];
	int64		answered = iv[C_ANSWERED];
	int64		minutes = iv[C_MINUTES];

	const float4 bound_aht = 86400.0f;
	const float4 bound_fc_aht = 86400.0f;
	const float4 bound_fc_offered = 100000000.0f;
	const float4 bound_staffed = 1000000.0f;
	const float4 bound_scheduled = 1000000.0f;

	if (!(offered < 0 || handled < 0 || abandoned < 0 || handled > offered || abandoned <= offered - handled))
		return "interval_stat_abandoned_not_more_than_offered";
	if (!(abandoned >= 0))
		return "interval_stat_abandoned_not_negative";
	if (has[C_AHT] && !((float4) rv[C_AHT] > 0 && (float4) rv[C_AHT] <= bound_aht))
		return "interval_stat_aht_positive";
	if (!(handled < 0 || answered < 0 || handled > offered || answered <= handled))
		return "interval_stat_answered_not_more_than_handled";
	if (!(answered >= 0))
		return "interval_stat_answered_not_negative";
	if (has[C_ESCALATED] && !(handled < 0 || iv[C_ESCALATED] < 0 || iv[C_ESCALATED] <= handled))
		return "interval_stat_escalated_not_more_than_handled";
	if (has[C_ESCALATED] && !(iv[C_ESCALATED] >= 0))
		return "interval_stat_escalated_not_negative";
	if (has[C_FC_AHT] && !((float4) rv[C_FC_AHT] > 0 && (float4) rv[C_FC_AHT] <= bound_fc_aht))
		return "interval_stat_forecast_aht_positive";
	if (has[C_FC_OFFERED] && !((float4) rv[C_FC_OFFERED] >= 0 && (float4) rv[C_FC_OFFERED] <= bound_fc_offered))
		return "interval_stat_forecast_offered_not_negative";
	if (!(offered < 0 || handled < 0 || handled <= offered))
		return "interval_stat_handled_not_more_than_offered";
	if (!(handled >= 0))
		return "interval_stat_handled_not_negative";
	if (!(minutes > 0 && 60 % minutes == 0))
		return "interval_stat_length_divides_hour";
	if (!(offered >= 0))
		return "interval_stat_offered_not_negative";
	if (has[C_REPEAT] && !(offered < 0 || iv[C_REPEAT] < 0 || iv[C_REPEAT] <= offered))
		return "interval_stat_repeat_contacts_not_more_than_offered";
	if (has[C_REPEAT] && !(iv[C_REPEAT] >= 0))
		return "interval_stat_repeat_contacts_not_negative";
	if (has[C_SCHEDULED] && !((float4) rv[C_SCHEDULED] >= 0 && (float4) rv[C_SCHEDULED] <= bound_scheduled))
		return "interval_stat_scheduled_not_negative";
	if (has[C_STAFFED] && !((float4) rv[C_STAFFED] >= 0 && (float4) rv[C_STAFFED] <= bound_staffed))
		return "interval_stat_staffed_not_negative";
	/* NULL (holds) for a length that is not positive, as interval_start_aligned() */
	if (minutes > 0 && !StartAligned(r->start, (int) minutes))
		return "interval_stat_start_aligned";
	/* 2000-01-01 and 2200-01-01 UTC in microseconds since 2000-01-01 */
	if (r->start < 0 || r->start >= INT64CONST(6311433600000000))
		return "interval_stat_start_plausible";
	if (!(iv[C_THRESHOLD] > 0 && iv[C_THRESHOLD] <= 86400))
		return "interval_stat_threshold_positive";
	if (has[C_TRANSFERRED] && !(handled < 0 || iv[C_TRANSFERRED] < 0 || iv[C_TRANSFERRED] <= handled))
		return "interval_stat_transferred_not_more_than_handled";
	if (has[C_TRANSFERRED] && !(iv[C_TRANSFERRED] >= 0))
		return "interval_stat_transferred_not_negative";
	return NULL;
}

/*
 * Why the row cannot be stored, as a problem Datum, or 0 when it can.  The
 * callback says whether a site or queue code is known; it is asked only
 * when everything else about the row holds, so the codes cost nothing for
 * the rows refused for their values.
 */
typedef bool (*CodeKnownFn) (const char *code, bool is_site, void *arg);

static Datum
InboxRowProblem(InboxRow *r, CodeKnownFn known, void *arg)
{
	char	  **v = r->v;
	bool	   *has = r->has;
	int64	   *iv = r->iv;
	double	   *rv = r->rv;
	int			i;

	r->start = 0;
	/* abandoned defaults to 0 */
	if (!has[C_ABANDONED])
	{
		has[C_ABANDONED] = true;
		v[C_ABANDONED] = "0";
	}

	/* input syntax and range, in column order */
	if (has[C_POOL] && strcmp(v[C_POOL], "aa") != 0 && strcmp(v[C_POOL], "collab") != 0 &&
		strcmp(v[C_POOL], "spec") != 0)
		return Problem("22P02", NULL, psprintf("invalid input value for enum evmgmt.pool: \"%s\"", v[C_POOL]), NULL);
	if (has[C_START] && !ParseTimestamptz(v[C_START], &r->start))
		return Problem("22007", NULL,
					   psprintf("invalid input syntax for type timestamp with time zone: \"%s\"", v[C_START]), NULL);
	for (i = C_MINUTES; i < INBOX_COLUMNS; i++)
	{
		bool		is_real = (i >= C_AHT && i <= C_FC_AHT);

		if (!has[i])
			continue;
		if (is_real)
		{
			if (!ParseReal(v[i], &rv[i]))
				return Problem("22P02", NULL, psprintf("invalid input syntax for type real: \"%s\"", v[i]), NULL);
			if (!isnan(rv[i]) && !isinf(rv[i]) &&
				(isinf((float4) rv[i]) || (rv[i] != 0 && (float4) rv[i] == 0)))
				return Problem("22003", NULL, psprintf("\"%s\" is out of range for type real", v[i]), NULL);
		}
		else
		{
			const char *type = (i == C_MINUTES) ? "smallint" : "integer";
			int64		lo = (i == C_MINUTES) ? PG_INT16_MIN : PG_INT32_MIN;
			int64		hi = (i == C_MINUTES) ? PG_INT16_MAX : PG_INT32_MAX;

			if (!ParseInteger(v[i], v[i] + strlen(v[i]), &iv[i]))
				return Problem("22P02", NULL, psprintf("invalid input syntax for type %s: \"%s\"", type, v[i]), NULL);
			if (iv[i] < lo || iv[i] > hi)
				return Problem("22003", NULL, psprintf("value \"%s\" is out of range for type %s", v[i], type), NULL);
		}
	}

	/* NOT NULL, in column order */
	for (i = C_SITE; i <= C_THRESHOLD; i++)
		if (!has[i])
			return NotNullProblem(i);

	{
		const char *violated = RowRuleViolated(r);

		if (violated)
			return CheckProblem(violated);
	}

	/* the codes */
	if (!known(v[C_SITE], true, arg))
		return Problem("23503", "interval_stat_site_id_fkey",
					   "insert or update on table \"interval_stat\" violates foreign key constraint \"interval_stat_site_id_fkey\"",
					   psprintf("Key (site_id)=(%s) is not present in table \"site\".", v[C_SITE]));
	if (!known(v[C_QUEUE], false, arg))
		return Problem("23503", "interval_stat_queue_id_fkey",
					   "insert or update on table \"interval_stat\" violates foreign key constraint \"interval_stat_queue_id_fkey\"",
					   psprintf("Key (queue_id)=(%s) is not present in table \"queue\".", v[C_QUEUE]));
	return (Datum) 0;
}

/* The answers of interval_inbox_problem()'s two boolean arguments. */
static bool
KnownFromArguments(const char *code, bool is_site, void *arg)
{
	bool	   *known = arg;

	return known[is_site ? 0 : 1];
}

Datum
evmgmt_interval_inbox_problem(PG_FUNCTION_ARGS)
{
	InboxRow	r;
	bool		known[2];
	Datum		problem;
	int			i;

	known[0] = !PG_ARGISNULL(INBOX_COLUMNS) && PG_GETARG_BOOL(INBOX_COLUMNS);
	known[1] = !PG_ARGISNULL(INBOX_COLUMNS + 1) && PG_GETARG_BOOL(INBOX_COLUMNS + 1);
	for (i = 0; i < INBOX_COLUMNS; i++)
	{
		r.has[i] = !PG_ARGISNULL(i);
		r.v[i] = r.has[i] ? text_to_cstring(PG_GETARG_TEXT_PP(i)) : NULL;
	}
	problem = InboxRowProblem(&r, KnownFromArguments, known);
	if (problem == (Datum) 0)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(problem);
}

/*
 * interval_inbox_route(): the AFTER INSERT ... FOR EACH STATEMENT trigger of
 * interval_inbox.  Each row of the statement's transition table is read
 * once: parsed by the same InboxRowProblem() as interval_inbox_problem(), a
 * good row becomes typed values for interval_stat, a bad row keeps its text
 * with its reason.  The two sets are handed to SQL as ephemeral named
 * relations and stored with one INSERT each (no subtransaction, no second
 * parse, no cast per row); then the inbox is emptied of the statement's
 * rows.  Site and queue codes are looked up once per distinct code.
 */
PG_FUNCTION_INFO_V1(evmgmt_interval_inbox_route);

/* Site and queue codes are at most 63 characters (10_organisation.sql). */
#define CODE_KEY_LEN 64

typedef struct CodeEntry
{
	char		code[CODE_KEY_LEN];
	bool		known;
} CodeEntry;

typedef struct CodeLookup
{
	HTAB	   *codes[2];		/* sites, queues */
	SPIPlanPtr	plans[2];
} CodeLookup;

static bool
KnownFromTables(const char *code, bool is_site, void *arg)
{
	CodeLookup *l = arg;
	int			which = is_site ? 0 : 1;
	CodeEntry  *e;
	bool		found;

	if (strlen(code) >= CODE_KEY_LEN)
		return false;			/* no code is that long */
	e = hash_search(l->codes[which], code, HASH_ENTER, &found);
	if (!found)
	{
		Datum		arg_datum = CStringGetTextDatum(code);
		int			rc = SPI_execute_plan(l->plans[which], &arg_datum, NULL, true, 1);

		if (rc != SPI_OK_SELECT)
			elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
		e->known = (SPI_processed > 0);
		SPI_freetuptable(SPI_tuptable);
	}
	return e->known;
}

static HTAB *
CodeTable(const char *name)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = CODE_KEY_LEN;
	ctl.entrysize = sizeof(CodeEntry);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 256, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}

/* The columns of interval_stat that an inbox row fills, in inbox order. */
static const Oid good_types[INBOX_COLUMNS] = {
	TEXTOID, TEXTOID, InvalidOid /* pool */ , TIMESTAMPTZOID, INT2OID, INT4OID, INT4OID, INT4OID, INT4OID,
	INT4OID, FLOAT4OID, FLOAT4OID, FLOAT4OID, FLOAT4OID, FLOAT4OID, INT4OID, INT4OID, INT4OID
};

#define BAD_EXTRA 4
static const char *const bad_extra_names[BAD_EXTRA] = {
	"problem_sqlstate", "problem_constraint", "problem_message", "problem_detail"
};

static void
RegisterTuplestore(const char *name, TupleDesc desc, Tuplestorestate *store, int64 ntuples)
{
	EphemeralNamedRelation enr = palloc0(sizeof(EphemeralNamedRelationData));
	int			rc;

	enr->md.name = pstrdup(name);
	enr->md.reliddesc = InvalidOid;
	enr->md.tupdesc = desc;
	enr->md.enrtype = ENR_NAMED_TUPLESTORE;
	enr->md.enrtuples = (double) ntuples;
	enr->reldata = store;
	rc = SPI_register_relation(enr);
	if (rc != SPI_OK_REL_REGISTER)
		elog(ERROR, "SPI_register_relation failed: %s", SPI_result_code_string(rc));
}

static void
RunSQL(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
}

Datum
evmgmt_interval_inbox_route(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	inbox_desc;
	int			attnum[INBOX_COLUMNS];
	TupleDesc	good_desc;
	TupleDesc	bad_desc;
	Tuplestorestate *good;
	Tuplestorestate *bad;
	int64		n_good = 0;
	int64		n_bad = 0;
	TupleTableSlot *slot;
	MemoryContext row_cxt;
	CodeLookup	lookup;
	Oid			pool_type;
	Oid			pool_oids[3];
	static const char *const pool_labels[3] = {"aa", "collab", "spec"};
	Oid			text_arg = TEXTOID;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("interval_inbox_route() must be fired after insert for each statement with a new table")));

	/* the inbox's columns by name, whatever their position */
	inbox_desc = RelationGetDescr(trigdata->tg_relation);
	for (i = 0; i < INBOX_COLUMNS; i++)
	{
		int			a;

		attnum[i] = -1;
		for (a = 0; a < inbox_desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(inbox_desc, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), inbox_column_names[i]) == 0)
				attnum[i] = a;
		}
		if (attnum[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation \"interval_inbox\" does not exist", inbox_column_names[i])));
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	pool_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("pool"),
								ObjectIdGetDatum(get_namespace_oid("evmgmt", false)));
	if (!OidIsValid(pool_type))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("type \"evmgmt.pool\" does not exist")));
	for (i = 0; i < 3; i++)
		pool_oids[i] = DatumGetObjectId(DirectFunctionCall2(enum_in, CStringGetDatum(pool_labels[i]),
															ObjectIdGetDatum(pool_type)));

	good_desc = CreateTemplateTupleDesc(INBOX_COLUMNS);
	bad_desc = CreateTemplateTupleDesc(INBOX_COLUMNS + BAD_EXTRA);
	for (i = 0; i < INBOX_COLUMNS; i++)
	{
		TupleDescInitEntry(good_desc, i + 1, inbox_column_names[i], i == C_POOL ? pool_type : good_types[i], -1, 0);
		TupleDescInitEntry(bad_desc, i + 1, inbox_column_names[i], TEXTOID, -1, 0);
	}
	for (i = 0; i < BAD_EXTRA; i++)
		TupleDescInitEntry(bad_desc, INBOX_COLUMNS + i + 1, bad_extra_names[i], TEXTOID, -1, 0);
	good = tuplestore_begin_heap(false, false, work_mem);
	bad = tuplestore_begin_heap(false, false, work_mem);

	lookup.codes[0] = CodeTable("evmgmt inbox sites");
	lookup.codes[1] = CodeTable("evmgmt inbox queues");
	lookup.plans[0] = SPI_prepare("SELECT FROM evmgmt.site s WHERE s.site_id = $1", 1, &text_arg);
	lookup.plans[1] = SPI_prepare("SELECT FROM evmgmt.queue q WHERE q.queue_id = $1", 1, &text_arg);
	if (lookup.plans[0] == NULL || lookup.plans[1] == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));

	slot = MakeSingleTupleTableSlot(inbox_desc, &TTSOpsMinimalTuple);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "evmgmt inbox row", ALLOCSET_DEFAULT_SIZES);
	while (tuplestore_gettupleslot(trigdata->tg_newtable, true, false, slot))
	{
		MemoryContext outer = MemoryContextSwitchTo(row_cxt);
		InboxRow	r;
		Datum		problem;

		slot_getallattrs(slot);
		for (i = 0; i < INBOX_COLUMNS; i++)
		{
			r.has[i] = !slot->tts_isnull[attnum[i]];
			r.v[i] = r.has[i] ? TextDatumGetCString(slot->tts_values[attnum[i]]) : NULL;
		}
		problem = InboxRowProblem(&r, KnownFromTables, &lookup);
		if (problem == (Datum) 0)
		{
			Datum		values[INBOX_COLUMNS];
			bool		nulls[INBOX_COLUMNS];

			for (i = 0; i < INBOX_COLUMNS; i++)
			{
				nulls[i] = !r.has[i];
				if (nulls[i])
				{
					values[i] = (Datum) 0;
					continue;
				}
				switch (i)
				{
					case C_SITE:
					case C_QUEUE:
						values[i] = slot->tts_values[attnum[i]];
						break;
					case C_POOL:
						values[i] = ObjectIdGetDatum(strcmp(r.v[i], "aa") == 0 ? pool_oids[0] :
													 strcmp(r.v[i], "collab") == 0 ? pool_oids[1] : pool_oids[2]);
						break;
					case C_START:
						values[i] = TimestampTzGetDatum(r.start);
						break;
					case C_MINUTES:
						values[i] = Int16GetDatum((int16) r.iv[i]);
						break;
					case C_AHT:
					case C_STAFFED:
					case C_SCHEDULED:
					case C_FC_OFFERED:
					case C_FC_AHT:
						values[i] = Float4GetDatum((float4) r.rv[i]);
						break;
					default:
						values[i] = Int32GetDatum((int32) r.iv[i]);
						break;
				}
			}
			tuplestore_putvalues(good, good_desc, values, nulls);
			n_good++;
		}
		else
		{
			Datum		values[INBOX_COLUMNS + BAD_EXTRA];
			bool		nulls[INBOX_COLUMNS + BAD_EXTRA];
			Datum	   *elems;
			bool	   *elem_nulls;
			int			n_elems;

			for (i = 0; i < INBOX_COLUMNS; i++)
			{
				nulls[i] = slot->tts_isnull[attnum[i]];
				values[i] = nulls[i] ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_PACKED(slot->tts_values[attnum[i]]));
			}
			deconstruct_array(DatumGetArrayTypeP(problem), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &elem_nulls, &n_elems);
			for (i = 0; i < BAD_EXTRA; i++)
			{
				nulls[INBOX_COLUMNS + i] = (i >= n_elems || elem_nulls[i]);
				values[INBOX_COLUMNS + i] = nulls[INBOX_COLUMNS + i] ? (Datum) 0 : elems[i];
			}
			tuplestore_putvalues(bad, bad_desc, values, nulls);
			n_bad++;
		}
		MemoryContextSwitchTo(outer);
		MemoryContextReset(row_cxt);
	}
	ExecDropSingleTupleTableSlot(slot);

	if (n_bad > 0)
	{
		RegisterTuplestore("evmgmt_inbox_bad", bad_desc, bad, n_bad);
		RunSQL("INSERT INTO evmgmt.interval_quarantine (row_data, sqlstate, reason, detail, constraint_name) "
			   "SELECT pg_catalog.to_jsonb(ROW(b.site_id, b.queue_id, b.pool, b.interval_start, b.interval_minutes, "
			   "b.offered, b.handled, b.abandoned, b.answered_in_threshold, b.threshold_seconds, b.aht_seconds, "
			   "b.staffed, b.scheduled, b.forecast_offered, b.forecast_aht, b.transferred, b.escalated, "
			   "b.repeat_contacts)::evmgmt.interval_inbox), "
			   "b.problem_sqlstate, b.problem_message, b.problem_detail, b.problem_constraint "
			   "FROM evmgmt_inbox_bad b");
	}
	if (n_good > 0)
	{
		RegisterTuplestore("evmgmt_inbox_good", good_desc, good, n_good);
		RunSQL("INSERT INTO evmgmt.interval_stat (site_id, queue_id, pool, interval_start, interval_minutes, "
			   "offered, handled, abandoned, answered_in_threshold, threshold_seconds, aht_seconds, staffed, "
			   "scheduled, forecast_offered, forecast_aht, transferred, escalated, repeat_contacts) "
			   "SELECT g.site_id, g.queue_id, g.pool, g.interval_start, g.interval_minutes, g.offered, g.handled, "
			   "g.abandoned, g.answered_in_threshold, g.threshold_seconds, g.aht_seconds, g.staffed, g.scheduled, "
			   "g.forecast_offered, g.forecast_aht, g.transferred, g.escalated, g.repeat_contacts "
			   "FROM evmgmt_inbox_good g");
	}
	/* the rows of this statement (and of nobody else: others' are not visible) */
	RunSQL("DELETE FROM evmgmt.interval_inbox");
	tuplestore_end(good);
	tuplestore_end(bad);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * interval_stat_rules(the eighteen columns of an interval_stat row) -> true
 *
 * The expression of CHECK interval_stat_rules: one call per row instead of
 * one CHECK constraint per rule (each CHECK costs PostgreSQL an expression
 * evaluation of its own, a fifth of a plain COPY for 21 rules).  A row that
 * breaks a rule is refused as the CHECK constraint of that name would refuse
 * it: SQLSTATE 23514, the rule's name as the constraint, the failing row in
 * the detail for a role that may read the table.  A row that keeps every
 * rule is noted in the capture frame of its load (src/load_capture.c).
 */
PG_FUNCTION_INFO_V1(evmgmt_interval_stat_rules);

/* The failing row as PostgreSQL's CHECK errors show it; each value clipped to 64 bytes. */
static char *
FailingRow(FunctionCallInfo fcinfo)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (i = 0; i < INBOX_COLUMNS; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (PG_ARGISNULL(i))
			appendStringInfoString(&buf, "null");
		else
		{
			Oid			type = get_fn_expr_argtype(fcinfo->flinfo, i);
			Oid			out;
			bool		varlena;
			char	   *val;
			int			len;

			getTypeOutputInfo(type, &out, &varlena);
			val = OidOutputFunctionCall(out, PG_GETARG_DATUM(i));
			len = strlen(val);
			if (len <= 64)
				appendStringInfoString(&buf, val);
			else
			{
				appendBinaryStringInfo(&buf, val, pg_mbcliplen(val, len, 64));
				appendStringInfoString(&buf, "...");
			}
		}
	}
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

Datum
evmgmt_interval_stat_rules(PG_FUNCTION_ARGS)
{
	InboxRow	r;
	const char *violated;
	int			i;

	/* NOT NULL is checked before any CHECK; a direct call with NULLs holds */
	for (i = C_SITE; i <= C_THRESHOLD; i++)
		if (PG_ARGISNULL(i))
			PG_RETURN_BOOL(true);
	for (i = 0; i < INBOX_COLUMNS; i++)
	{
		r.has[i] = !PG_ARGISNULL(i);
		r.v[i] = NULL;
		r.iv[i] = 0;
		r.rv[i] = 0;
		if (!r.has[i] || i <= C_START)
			continue;
		if (i == C_MINUTES)
			r.iv[i] = PG_GETARG_INT16(i);
		else if (i >= C_AHT && i <= C_FC_AHT)
			r.rv[i] = PG_GETARG_FLOAT4(i);
		else
			r.iv[i] = PG_GETARG_INT32(i);
	}
	r.start = PG_GETARG_TIMESTAMPTZ(C_START);

	violated = RowRuleViolated(&r);
	if (violated != NULL)
	{
		Oid			relid = EvmgmtRelationOid("interval_stat", false);
		Relation	rel = table_open(relid, NoLock);
		bool		may_read = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK;

		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("new row for relation \"%s\" violates check constraint \"%s\"",
						RelationGetRelationName(rel), violated),
				 may_read ? errdetail("Failing row contains %s.", FailingRow(fcinfo)) : 0,
				 errtableconstraint(rel, violated)));
	}

	EvmgmtLoadCaptureNote(PG_GETARG_TEXT_PP(C_SITE), PG_GETARG_TEXT_PP(C_QUEUE), PG_GETARG_OID(C_POOL), r.start,
						  true, (int32) r.iv[C_ANSWERED], (int32) r.iv[C_OFFERED]);
	PG_RETURN_BOOL(true);
}

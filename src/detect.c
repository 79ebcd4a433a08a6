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

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/float.h"
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
Datum
evmgmt_interval_start_aligned(PG_FUNCTION_ARGS)
{
	TimestampTz start = PG_GETARG_TIMESTAMPTZ(0);
	int			minutes = PG_GETARG_INT16(1);
	int64		step;

	if (minutes <= 0)
		PG_RETURN_NULL();
	if (TIMESTAMP_NOT_FINITE(start))
		PG_RETURN_BOOL(false);
	step = (int64) Gcd(minutes, 15) * USECS_PER_MINUTE;
	PG_RETURN_BOOL(start % step == 0);
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

Datum
evmgmt_interval_inbox_problem(PG_FUNCTION_ARGS)
{
	char	   *v[INBOX_COLUMNS];
	bool		has[INBOX_COLUMNS];
	int64		iv[INBOX_COLUMNS];
	double		rv[INBOX_COLUMNS];
	TimestampTz start = 0;
	bool		site_known = !PG_ARGISNULL(INBOX_COLUMNS) && PG_GETARG_BOOL(INBOX_COLUMNS);
	bool		queue_known = !PG_ARGISNULL(INBOX_COLUMNS + 1) && PG_GETARG_BOOL(INBOX_COLUMNS + 1);
	int			i;

	for (i = 0; i < INBOX_COLUMNS; i++)
	{
		has[i] = !PG_ARGISNULL(i);
		v[i] = has[i] ? text_to_cstring(PG_GETARG_TEXT_PP(i)) : NULL;
	}
	/* abandoned defaults to 0 */
	if (!has[C_ABANDONED])
	{
		has[C_ABANDONED] = true;
		v[C_ABANDONED] = "0";
	}

	/* input syntax and range, in column order */
	if (has[C_POOL] && strcmp(v[C_POOL], "aa") != 0 && strcmp(v[C_POOL], "collab") != 0 &&
		strcmp(v[C_POOL], "spec") != 0)
		PG_RETURN_DATUM(Problem("22P02", NULL, psprintf("invalid input value for enum evmgmt.pool: \"%s\"", v[C_POOL]), NULL));
	if (has[C_START] && !ParseTimestamptz(v[C_START], &start))
		PG_RETURN_DATUM(Problem("22007", NULL,
								psprintf("invalid input syntax for type timestamp with time zone: \"%s\"", v[C_START]), NULL));
	for (i = C_MINUTES; i < INBOX_COLUMNS; i++)
	{
		bool		is_real = (i >= C_AHT && i <= C_FC_AHT);

		if (!has[i])
			continue;
		if (is_real)
		{
			if (!ParseReal(v[i], &rv[i]))
				PG_RETURN_DATUM(Problem("22P02", NULL, psprintf("invalid input syntax for type real: \"%s\"", v[i]), NULL));
			if (!isnan(rv[i]) && !isinf(rv[i]) &&
				(isinf((float4) rv[i]) || (rv[i] != 0 && (float4) rv[i] == 0)))
				PG_RETURN_DATUM(Problem("22003", NULL, psprintf("\"%s\" is out of range for type real", v[i]), NULL));
		}
		else
		{
			const char *type = (i == C_MINUTES) ? "smallint" : "integer";
			int64		lo = (i == C_MINUTES) ? PG_INT16_MIN : PG_INT32_MIN;
			int64		hi = (i == C_MINUTES) ? PG_INT16_MAX : PG_INT32_MAX;

			if (!ParseInteger(v[i], v[i] + strlen(v[i]), &iv[i]))
				PG_RETURN_DATUM(Problem("22P02", NULL, psprintf("invalid input syntax for type %s: \"%s\"", type, v[i]), NULL));
			if (iv[i] < lo || iv[i] > hi)
				PG_RETURN_DATUM(Problem("22003", NULL, psprintf("value \"%s\" is out of range for type %s", v[i], type), NULL));
		}
	}

	/* NOT NULL, in column order */
	for (i = C_SITE; i <= C_THRESHOLD; i++)
		if (!has[i])
			PG_RETURN_DATUM(NotNullProblem(i));

#define IV(c) iv[c]
#define RV(c) rv[c]
#define HAS(c) has[c]
	/* each column on its own */
	if (!(IV(C_MINUTES) > 0 && 60 % IV(C_MINUTES) == 0))
		PG_RETURN_DATUM(CheckProblem("interval_stat_length_divides_hour"));
	if (!(IV(C_OFFERED) >= 0))
		PG_RETURN_DATUM(CheckProblem("interval_stat_offered_not_negative"));
	if (!(IV(C_HANDLED) >= 0))
		PG_RETURN_DATUM(CheckProblem("interval_stat_handled_not_negative"));
	if (!(IV(C_ABANDONED) >= 0))
		PG_RETURN_DATUM(CheckProblem("interval_stat_abandoned_not_negative"));
	if (!(IV(C_ANSWERED) >= 0))
		PG_RETURN_DATUM(CheckProblem("interval_stat_answered_not_negative"));
	if (!(IV(C_THRESHOLD) > 0 && IV(C_THRESHOLD) <= 86400))
		PG_RETURN_DATUM(CheckProblem("interval_stat_threshold_positive"));
	/* reals as float4, as the column stores them; NaN compares false */
	if (HAS(C_AHT) && !((float4) RV(C_AHT) > 0 && (float4) RV(C_AHT) <= 86400.0f))
		PG_RETURN_DATUM(CheckProblem("interval_stat_aht_positive"));
	if (HAS(C_STAFFED) && !((float4) RV(C_STAFFED) >= 0 && (float4) RV(C_STAFFED) <= 1000000.0f))
		PG_RETURN_DATUM(CheckProblem("interval_stat_staffed_not_negative"));
	if (HAS(C_SCHEDULED) && !((float4) RV(C_SCHEDULED) >= 0 && (float4) RV(C_SCHEDULED) <= 1000000.0f))
		PG_RETURN_DATUM(CheckProblem("interval_stat_scheduled_not_negative"));
	if (HAS(C_FC_OFFERED) && !((float4) RV(C_FC_OFFERED) >= 0 && (float4) RV(C_FC_OFFERED) <= 100000000.0f))
		PG_RETURN_DATUM(CheckProblem("interval_stat_forecast_offered_not_negative"));
	if (HAS(C_FC_AHT) && !((float4) RV(C_FC_AHT) > 0 && (float4) RV(C_FC_AHT) <= 86400.0f))
		PG_RETURN_DATUM(CheckProblem("interval_stat_forecast_aht_positive"));
	if (HAS(C_TRANSFERRED) && IV(C_TRANSFERRED) < 0)
		PG_RETURN_DATUM(CheckProblem("interval_stat_transferred_not_negative"));
	if (HAS(C_ESCALATED) && IV(C_ESCALATED) < 0)
		PG_RETURN_DATUM(CheckProblem("interval_stat_escalated_not_negative"));
	if (HAS(C_REPEAT) && IV(C_REPEAT) < 0)
		PG_RETURN_DATUM(CheckProblem("interval_stat_repeat_contacts_not_negative"));
	/* the relations (every count is not negative by now) */
	if (IV(C_HANDLED) > IV(C_OFFERED))
		PG_RETURN_DATUM(CheckProblem("interval_stat_handled_not_more_than_offered"));
	if (IV(C_ABANDONED) > IV(C_OFFERED) - IV(C_HANDLED))
		PG_RETURN_DATUM(CheckProblem("interval_stat_abandoned_not_more_than_offered"));
	if (IV(C_ANSWERED) > IV(C_HANDLED))
		PG_RETURN_DATUM(CheckProblem("interval_stat_answered_not_more_than_handled"));
	if (HAS(C_TRANSFERRED) && IV(C_TRANSFERRED) > IV(C_HANDLED))
		PG_RETURN_DATUM(CheckProblem("interval_stat_transferred_not_more_than_handled"));
	if (HAS(C_ESCALATED) && IV(C_ESCALATED) > IV(C_HANDLED))
		PG_RETURN_DATUM(CheckProblem("interval_stat_escalated_not_more_than_handled"));
	if (HAS(C_REPEAT) && IV(C_REPEAT) > IV(C_OFFERED))
		PG_RETURN_DATUM(CheckProblem("interval_stat_repeat_contacts_not_more_than_offered"));
	if (start % ((int64) Gcd((int) IV(C_MINUTES), 15) * USECS_PER_MINUTE) != 0)
		PG_RETURN_DATUM(CheckProblem("interval_stat_start_aligned"));
	/* 2000-01-01 and 2200-01-01 UTC in microseconds since 2000-01-01 */
	if (start < 0 || start >= INT64CONST(6311433600000000))
		PG_RETURN_DATUM(CheckProblem("interval_stat_start_plausible"));
#undef IV
#undef RV
#undef HAS

	/* the codes */
	if (!site_known)
		PG_RETURN_DATUM(Problem("23503", "interval_stat_site_id_fkey",
								"insert or update on table \"interval_stat\" violates foreign key constraint \"interval_stat_site_id_fkey\"",
								psprintf("Key (site_id)=(%s) is not present in table \"site\".", v[C_SITE])));
	if (!queue_known)
		PG_RETURN_DATUM(Problem("23503", "interval_stat_queue_id_fkey",
								"insert or update on table \"interval_stat\" violates foreign key constraint \"interval_stat_queue_id_fkey\"",
								psprintf("Key (queue_id)=(%s) is not present in table \"queue\".", v[C_QUEUE])));
	PG_RETURN_NULL();
}

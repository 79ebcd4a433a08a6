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
#include <stdlib.h>

#include "fmgr.h"
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
	const char *p = VARDATA_ANY(t);
	const char *end = p + VARSIZE_ANY_EXHDR(t);
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
		PG_RETURN_NULL();
	if (overflow || v > (uint64) PG_INT64_MAX)
		PG_RETURN_INT64(neg ? PG_INT64_MIN : PG_INT64_MAX);
	PG_RETURN_INT64(neg ? -(int64) v : (int64) v);
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
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *p = s;
	char	   *endp;
	double		v;

	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
		PG_RETURN_NULL();
	if (pg_strncasecmp(p, "NaN", 3) == 0)
	{
		v = get_float8_nan();
		endp = p + 3;
	}
	else if (pg_strncasecmp(p, "Infinity", 8) == 0 || pg_strncasecmp(p, "+Infinity", 9) == 0)
	{
		v = get_float8_infinity();
		endp = p + (*p == '+' ? 9 : 8);
	}
	else if (pg_strncasecmp(p, "-Infinity", 9) == 0)
	{
		v = -get_float8_infinity();
		endp = p + 9;
	}
	else
	{
		/* strtod also takes hex floats and "inf", which float8in does not */
		const char *q = p;

		if (*q == '+' || *q == '-')
			q++;
		if (!(isdigit((unsigned char) *q) || (*q == '.' && isdigit((unsigned char) q[1]))))
			PG_RETURN_NULL();
		if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
			PG_RETURN_NULL();
		errno = 0;
		v = strtod(p, &endp);
		if (endp == p)
			PG_RETURN_NULL();
		/* an overflow gives HUGE_VAL: left to the caller's range check */
	}
	while (*endp && isspace((unsigned char) *endp))
		endp++;
	if (*endp != '\0')
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
	char	   *str = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tt,
			   *tm = &tt;
	fsec_t		fsec;
	int			tz;
	TimestampTz result;

	if (strlen(str) >= MAXDATELEN)
		PG_RETURN_NULL();
	if (ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0)
		PG_RETURN_NULL();
	if (DecodeDateTime(field, ftype, nf, &dtype, tm, &fsec, &tz) != 0)
		PG_RETURN_NULL();
	if (dtype != DTK_DATE)
		PG_RETURN_NULL();		/* epoch, infinity, now: not an interval start */
	if (tm2timestamp(tm, fsec, &tz, &result) != 0 || !IS_VALID_TIMESTAMP(result))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(result);
}

/*-------------------------------------------------------------------------
 *
 * classify.c
 *	  Severity classification from a service-level signal: the boundary
 *	  rules, the pure classifier and the sustained-duration aggregate.
 *
 * A tier with threshold t and sustain time s applies when the service level
 * is "below" t and has been so for "longer than" s:
 *
 *	 below		sl < t, except that t = 0 (outage) means sl = 0 (sl <= 0)
 *	 sustained	minutes > s, except that s = 0 means at once (minutes >= 0)
 *
 * Tiers are tried from sev1 to sev3 and the first that applies wins; a tier
 * whose threshold is NULL is not signal-driven and never applies.  Both
 * predicates live in exactly one place (SignalBelow, SustainMet) so that the
 * scalar classifier and the set-wise path over interval data cannot drift
 * apart.
 *
 * The aggregate sustained_minutes_below() walks intervals ordered by start
 * and keeps the length of the trailing run of contiguous intervals below a
 * threshold.  A missing interval (the next start is later than the previous
 * end) breaks the run, and so does an interval without a signal (NULL
 * service level, which is what an interval with offered = 0 yields).  It is
 * a plain aggregate, so it works as a window function with the default
 * frame, giving the trailing run up to each row.
 *
 * IDENTIFICATION
 *	  src/classify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "evmgmt.h"

PG_FUNCTION_INFO_V1(evmgmt_interval_service_level);
PG_FUNCTION_INFO_V1(evmgmt_classify_severity);
PG_FUNCTION_INFO_V1(evmgmt_classify_sustained_runs);
PG_FUNCTION_INFO_V1(evmgmt_sustained_below_transfn);
PG_FUNCTION_INFO_V1(evmgmt_sustained_below_finalfn);

/* Number of signal-driven tiers (sev1 .. sev3); sev4 is never signal-driven. */
#define SIGNAL_TIERS 3

static const char *const tier_labels[SIGNAL_TIERS] = {"sev1", "sev2", "sev3"};

/* State of sustained_minutes_below(). */
typedef struct SustainState
{
	double		run_minutes;	/* trailing run below the threshold */
	TimestampTz last_end;		/* end of the previous interval */
	bool		have_last;		/* last_end is set */
	bool		no_threshold;	/* threshold was NULL: result is NULL */
} SustainState;

/* Is the service level below the threshold (t = 0 means an outage, sl = 0)? */
bool
SignalBelow(double service_level, double threshold)
{
	if (threshold <= 0.0)
		return service_level <= 0.0;
	return service_level < threshold;
}

/* Has the signal been sustained long enough (s = 0 means at once)? */
bool
SustainMet(double minutes, int sustain_minutes)
{
	if (sustain_minutes <= 0)
		return minutes >= 0.0;
	return minutes > (double) sustain_minutes;
}

/* Raise an error unless v is a fraction in [0, 1]. */
static void
CheckFraction(double v, const char *what)
{
	if (isnan(v) || v < 0.0 || v > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 0 and 1", what),
				 errdetail("The value given was %g.", v),
				 errhint("Service levels and thresholds are fractions: 0.3 means 30%%.")));
}

/* Raise an error unless v is a finite number of minutes, not negative. */
static void
CheckMinutes(double v, const char *what)
{
	if (isnan(v) || isinf(v) || v < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number of minutes, not negative", what),
				 errdetail("The value given was %g.", v)));
}

/*
 * The severity enum value for a tier, as a Datum of the function's declared
 * return type; the type's OID is looked up once per call site.
 */
Datum
EnumDatumForReturn(FunctionCallInfo fcinfo, const char *label)
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

/*
 * interval_service_level(answered_in_threshold, offered): the service level
 * of an interval, NULL when nothing was offered (no signal).  In C rather
 * than SQL because it runs once per interval row in set-wise classification.
 */
Datum
evmgmt_interval_service_level(PG_FUNCTION_ARGS)
{
	int32		answered = PG_GETARG_INT32(0);
	int32		offered = PG_GETARG_INT32(1);

	if (answered < 0 || offered < 0 || answered > offered)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("answered in threshold must be between 0 and offered"),
				 errdetail("Answered in threshold is %d, offered is %d.", answered, offered)));
	if (offered == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8((double) answered / (double) offered);
}

/*
 * classify_severity(service_level, sustained_minutes, sev1_threshold,
 * sev1_sustain, sev2_threshold, sev2_sustain, sev3_threshold, sev3_sustain):
 * the tier that applies when the service level has stayed at or below
 * service_level for sustained_minutes, NULL when none does.
 */
Datum
evmgmt_classify_severity(PG_FUNCTION_ARGS)
{
	double		sl;
	double		minutes;
	int			tier;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	sl = PG_GETARG_FLOAT8(0);
	minutes = PG_GETARG_FLOAT8(1);
	CheckFraction(sl, "service level");
	CheckMinutes(minutes, "sustained minutes");

	for (tier = 0; tier < SIGNAL_TIERS; tier++)
	{
		int			targ = 2 + 2 * tier;
		double		threshold;
		int			sustain;

		if (PG_ARGISNULL(targ))
			continue;			/* tier not signal-driven */
		threshold = PG_GETARG_FLOAT8(targ);
		CheckFraction(threshold, "threshold");
		if (PG_ARGISNULL(targ + 1))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s has a threshold but no sustain time", tier_labels[tier]),
					 errhint("Give a sustain time in minutes (0 for at once).")));
		sustain = PG_GETARG_INT32(targ + 1);
		if (sustain < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sustain minutes must not be negative"),
					 errdetail("%s has sustain time %d.", tier_labels[tier], sustain)));
		if (SignalBelow(sl, threshold) && SustainMet(minutes, sustain))
			return EnumDatumForReturn(fcinfo, tier_labels[tier]);
	}
	PG_RETURN_NULL();
}

/*
 * classify_sustained_runs(sev1_minutes, sev2_minutes, sev3_minutes,
 * sev1_sustain, sev2_sustain, sev3_sustain): the tier from the trailing run
 * below each tier's own threshold (as computed by sustained_minutes_below);
 * a run of 0 means the latest interval is not below that threshold.
 */
Datum
evmgmt_classify_sustained_runs(PG_FUNCTION_ARGS)
{
	int			tier;

	for (tier = 0; tier < SIGNAL_TIERS; tier++)
	{
		double		run;
		int			sustain;

		if (PG_ARGISNULL(tier) || PG_ARGISNULL(tier + SIGNAL_TIERS))
			continue;			/* tier not signal-driven */
		run = PG_GETARG_FLOAT8(tier);
		sustain = PG_GETARG_INT32(tier + SIGNAL_TIERS);
		CheckMinutes(run, "sustained minutes");
		if (sustain < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("sustain minutes must not be negative"),
					 errdetail("%s has sustain time %d.", tier_labels[tier], sustain)));
		/* a run of 0 means the signal is not below the threshold now */
		if (run > 0.0 && SustainMet(run, sustain))
			return EnumDatumForReturn(fcinfo, tier_labels[tier]);
	}
	PG_RETURN_NULL();
}

/*
 * Transition of sustained_minutes_below(service_level, threshold,
 * interval_start, interval_minutes): extend, restart or break the run.
 */
Datum
evmgmt_sustained_below_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SustainState *state;
	TimestampTz start;
	int32		minutes;
	TimestampTz end;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "evmgmt_sustained_below_transfn called in non-aggregate context");

	if (PG_ARGISNULL(0))
	{
		state = MemoryContextAllocZero(aggcontext, sizeof(SustainState));
		state->no_threshold = PG_ARGISNULL(2);
	}
	else
		state = (SustainState *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("interval start and interval minutes must not be null")));
	start = PG_GETARG_TIMESTAMPTZ(3);
	minutes = PG_GETARG_INT32(4);
	if (minutes <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interval minutes must be positive"),
				 errdetail("The value given was %d.", minutes)));
	if (TIMESTAMP_NOT_FINITE(start))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interval start must be finite")));
	if (state->have_last && start < state->last_end)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("intervals must be ordered by start and must not overlap"),
				 errdetail("An interval starting at %s came after one ending at %s.",
						   timestamptz_to_str(start), timestamptz_to_str(state->last_end)),
				 errhint("Call the aggregate with ORDER BY interval_start, one series per group.")));
	if (pg_add_s64_overflow(start, (int64) minutes * USECS_PER_MINUTE, &end) || !IS_VALID_TIMESTAMP(end))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("interval end out of range"),
				 errdetail("An interval of %d minutes starting at %s ends beyond the last representable time.",
						   minutes, timestamptz_to_str(start))));

	if (!state->no_threshold)
	{
		double		threshold = PG_GETARG_FLOAT8(2);
		bool		below = false;

		CheckFraction(threshold, "threshold");
		if (!PG_ARGISNULL(1))
		{
			double		sl = PG_GETARG_FLOAT8(1);

			CheckFraction(sl, "service level");
			below = SignalBelow(sl, threshold);
		}

		if (!below)
			state->run_minutes = 0.0;	/* no signal or not below: breaks */
		else if (state->have_last && start == state->last_end)
			state->run_minutes += minutes;	/* contiguous: extends */
		else
			state->run_minutes = minutes;	/* first, or after a gap */
	}
	state->last_end = end;
	state->have_last = true;

	PG_RETURN_POINTER(state);
}

/* Final function of sustained_minutes_below(): the trailing run in minutes. */
Datum
evmgmt_sustained_below_finalfn(PG_FUNCTION_ARGS)
{
	SustainState *state;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SustainState *) PG_GETARG_POINTER(0);
	if (state->no_threshold)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(state->run_minutes);
}

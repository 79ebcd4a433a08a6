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
 * The aggregate sustained_minutes_below() gives the length of the trailing
 * run of contiguous intervals below a threshold; sustained_runs_below() does
 * the same for several thresholds in one pass.  A missing interval (the
 * next start is later than the previous end) breaks the run, and so does an
 * interval without a signal (NULL service level, which is what an interval
 * with offered = 0 yields).  Input order does not matter: while rows come
 * in time order (ORDER BY in the call, or a window) the runs are kept as
 * they come; otherwise the final function sorts the intervals and replays
 * them.  So a GROUP BY needs no sort and can hash, and the aggregate works
 * as a window function with the default frame, giving the trailing run up
 * to each row.  Overlapping intervals of one series are an error.
 *
 * IDENTIFICATION
 *	  src/classify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "evmgmt.h"

PG_FUNCTION_INFO_V1(evmgmt_interval_service_level);
PG_FUNCTION_INFO_V1(evmgmt_classify_severity);
PG_FUNCTION_INFO_V1(evmgmt_classify_sustained_runs);
PG_FUNCTION_INFO_V1(evmgmt_sustained_below_transfn);
PG_FUNCTION_INFO_V1(evmgmt_sustained_below_finalfn);
PG_FUNCTION_INFO_V1(evmgmt_sustained_below_array_transfn);
PG_FUNCTION_INFO_V1(evmgmt_sustained_below_array_finalfn);

/* Number of signal-driven tiers (sev1 .. sev3); sev4 is never signal-driven. */
#define SIGNAL_TIERS 3

static const char *const tier_labels[SIGNAL_TIERS] = {"sev1", "sev2", "sev3"};

/* Most thresholds sustained_runs_below() takes. */
#define MAX_THRESHOLDS 16

/* State of sustained_minutes_below() and sustained_runs_below(). */
/* One interval seen by the aggregate. */
typedef struct SustainInterval
{
	TimestampTz start;
	TimestampTz end;
	int32		minutes;
	bool		has_sl;			/* false: no signal (offered = 0) */
	double		sl;
} SustainInterval;

typedef struct SustainState
{
	MemoryContext context;		/* the aggregate's context, for growth */
	int			nthresholds;	/* 1 for the scalar form */
	double		threshold[MAX_THRESHOLDS];
	bool		threshold_null[MAX_THRESHOLDS]; /* tier not signal-driven */
	/* runs kept as rows come, valid while they come in time order */
	bool		in_order;
	double		run_minutes[MAX_THRESHOLDS];	/* trailing run below each */
	TimestampTz last_end;		/* end of the previous interval */
	bool		have_last;		/* last_end is set */
	/* every interval, to sort and replay when they did not come in order */
	SustainInterval *items;
	int			nitems;
	int			maxitems;
} SustainState;

/* Is the service level below the threshold (t = 0 means an outage, sl = 0)? */
static bool
SignalBelow(double service_level, double threshold)
{
	if (threshold <= 0.0)
		return service_level <= 0.0;
	return service_level < threshold;
}

/* Has the signal been sustained long enough (s = 0 means at once)? */
static bool
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
			return EvmgmtEnumDatumForReturn(fcinfo, tier_labels[tier]);
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
			return EvmgmtEnumDatumForReturn(fcinfo, tier_labels[tier]);
	}
	PG_RETURN_NULL();
}

/* Advance every run by one interval that follows the previous one in time. */
static void
StepRuns(SustainState *state, double *runs, const SustainInterval *it, bool contiguous)
{
	int			i;

	for (i = 0; i < state->nthresholds; i++)
	{
		if (state->threshold_null[i])
			continue;
		if (!it->has_sl || !SignalBelow(it->sl, state->threshold[i]))
			runs[i] = 0.0;		/* no signal or not below: breaks */
		else if (contiguous)
			runs[i] += it->minutes; /* follows on: extends */
		else
			runs[i] = it->minutes;	/* first, or after a gap */
	}
}

/*
 * Record the interval of the current row (arguments 1, 3 and 4) and, while
 * rows come in time order, advance the runs by it at once.
 */
static void
AddInterval(FunctionCallInfo fcinfo, SustainState *state)
{
	SustainInterval it;

	if (PG_ARGISNULL(3) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("interval start and interval minutes must not be null")));
	it.start = PG_GETARG_TIMESTAMPTZ(3);
	it.minutes = PG_GETARG_INT32(4);
	if (it.minutes <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interval minutes must be positive"),
				 errdetail("The value given was %d.", it.minutes)));
	if (TIMESTAMP_NOT_FINITE(it.start))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("interval start must be finite")));
	if (pg_add_s64_overflow(it.start, (int64) it.minutes * USECS_PER_MINUTE, &it.end) ||
		!IS_VALID_TIMESTAMP(it.end))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("interval end out of range"),
				 errdetail("An interval of %d minutes starting at %s ends beyond the last representable time.",
						   it.minutes, timestamptz_to_str(it.start))));
	it.has_sl = !PG_ARGISNULL(1);
	it.sl = it.has_sl ? PG_GETARG_FLOAT8(1) : 0.0;
	if (it.has_sl)
		CheckFraction(it.sl, "service level");

	if (state->nitems == state->maxitems)
	{
		state->maxitems = state->maxitems ? state->maxitems * 2 : 32;
		if (state->items == NULL)
			state->items = MemoryContextAlloc(state->context, state->maxitems * sizeof(SustainInterval));
		else
			state->items = repalloc(state->items, state->maxitems * sizeof(SustainInterval));
	}
	state->items[state->nitems++] = it;

	if (state->in_order && state->have_last && it.start < state->last_end)
		state->in_order = false;	/* replayed in order by the final function */
	if (state->in_order)
		StepRuns(state, state->run_minutes, &it, state->have_last && it.start == state->last_end);
	state->last_end = it.end;
	state->have_last = true;
}

/* A new state in the aggregate's context. */
static SustainState *
NewSustainState(MemoryContext aggcontext)
{
	SustainState *state = MemoryContextAllocZero(aggcontext, sizeof(SustainState));

	state->context = aggcontext;
	state->in_order = true;
	return state;
}

/* qsort comparator: intervals by start. */
static int
CompareIntervals(const void *a, const void *b)
{
	TimestampTz sa = ((const SustainInterval *) a)->start;
	TimestampTz sb = ((const SustainInterval *) b)->start;

	return (sa > sb) - (sa < sb);
}

/*
 * The trailing runs of a state into runs[]: as kept when the rows came in
 * time order, else by sorting a copy of the intervals and replaying them
 * (overlapping intervals are an error either way).  Leaves the state as it
 * is, so that it works as a window function too.
 */
static void
FinalRuns(SustainState *state, double *runs)
{
	SustainInterval *sorted;
	int			i;

	if (state->in_order)
	{
		memcpy(runs, state->run_minutes, sizeof(double) * state->nthresholds);
		return;
	}
	sorted = palloc(state->nitems * sizeof(SustainInterval));
	memcpy(sorted, state->items, state->nitems * sizeof(SustainInterval));
	qsort(sorted, state->nitems, sizeof(SustainInterval), CompareIntervals);
	memset(runs, 0, sizeof(double) * state->nthresholds);
	for (i = 0; i < state->nitems; i++)
	{
		if (i > 0 && sorted[i].start < sorted[i - 1].end)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("intervals of one series must not overlap"),
					 errdetail("An interval starting at %s overlaps one ending at %s.",
							   timestamptz_to_str(sorted[i].start), timestamptz_to_str(sorted[i - 1].end)),
					 errhint("Aggregate one (site, queue, pool) series per group.")));
		StepRuns(state, runs, &sorted[i], i > 0 && sorted[i].start == sorted[i - 1].end);
	}
	pfree(sorted);
}

/*
 * Transition of sustained_minutes_below(service_level, threshold,
 * interval_start, interval_minutes): one run.
 */
Datum
evmgmt_sustained_below_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SustainState *state;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "evmgmt_sustained_below_transfn called in non-aggregate context");
	if (PG_ARGISNULL(0))
	{
		state = NewSustainState(aggcontext);
		state->nthresholds = 1;
		state->threshold_null[0] = PG_ARGISNULL(2);
		if (!state->threshold_null[0])
		{
			state->threshold[0] = PG_GETARG_FLOAT8(2);
			CheckFraction(state->threshold[0], "threshold");
		}
	}
	else
		state = (SustainState *) PG_GETARG_POINTER(0);
	AddInterval(fcinfo, state);
	PG_RETURN_POINTER(state);
}

/*
 * Transition of sustained_runs_below(service_level, thresholds[],
 * interval_start, interval_minutes): one run per threshold, in one pass;
 * the thresholds are taken from the first row.
 */
Datum
evmgmt_sustained_below_array_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	SustainState *state;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "evmgmt_sustained_below_array_transfn called in non-aggregate context");
	if (PG_ARGISNULL(0))
	{
		ArrayType  *arr;
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		if (PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("thresholds must not be null"),
					 errhint("Give NULL elements for tiers that are not signal-driven.")));
		arr = PG_GETARG_ARRAYTYPE_P(2);
		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("thresholds must be a one-dimensional array")));
		deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
						  &elems, &nulls, &n);
		if (n > MAX_THRESHOLDS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("at most %d thresholds are supported", MAX_THRESHOLDS),
					 errdetail("%d were given.", n)));
		state = NewSustainState(aggcontext);
		state->nthresholds = n;
		for (i = 0; i < n; i++)
		{
			state->threshold_null[i] = nulls[i];
			if (!nulls[i])
			{
				state->threshold[i] = DatumGetFloat8(elems[i]);
				CheckFraction(state->threshold[i], "threshold");
			}
		}
	}
	else
		state = (SustainState *) PG_GETARG_POINTER(0);
	AddInterval(fcinfo, state);
	PG_RETURN_POINTER(state);
}

/* Final function of sustained_minutes_below(): the trailing run in minutes. */
Datum
evmgmt_sustained_below_finalfn(PG_FUNCTION_ARGS)
{
	SustainState *state;
	double		runs[1];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SustainState *) PG_GETARG_POINTER(0);
	if (state->threshold_null[0])
		PG_RETURN_NULL();
	FinalRuns(state, runs);
	PG_RETURN_FLOAT8(runs[0]);
}

/* Final function of sustained_runs_below(): the trailing run per threshold. */
Datum
evmgmt_sustained_below_array_finalfn(PG_FUNCTION_ARGS)
{
	SustainState *state;
	Datum		elems[MAX_THRESHOLDS];
	bool		nulls[MAX_THRESHOLDS];
	int			dims[1];
	int			lbs[1] = {1};
	int			i;
	double		runs[MAX_THRESHOLDS];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (SustainState *) PG_GETARG_POINTER(0);
	FinalRuns(state, runs);
	for (i = 0; i < state->nthresholds; i++)
	{
		elems[i] = Float8GetDatum(runs[i]);
		nulls[i] = state->threshold_null[i];
	}
	dims[0] = state->nthresholds;
	if (state->nthresholds == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(FLOAT8OID));
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, nulls, 1, dims, lbs, FLOAT8OID,
											 sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*-------------------------------------------------------------------------
 *
 * erlang.c
 *	  SQL-callable queueing math: evmgmt.erlang_b, evmgmt_math_erlang_c, service_level,
 *	  asa, occupancy, agents_required, power_of_one, evmgmt_math_erlang_a and traffic.
 *
 * These are thin fmgr wrappers: they check every argument (SQLSTATE 22023
 * with a message naming the argument), then call the PostgreSQL-free math
 * in erlang_math.c.  All functions are IMMUTABLE STRICT PARALLEL SAFE and
 * allocate nothing but their result.
 *
 * IDENTIFICATION
 *	  src/erlang.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/float.h"
#include "utils/tuplestore.h"

#include "erlang_math.h"

PG_FUNCTION_INFO_V1(evmgmt_erlang_b);
PG_FUNCTION_INFO_V1(evmgmt_erlang_c);
PG_FUNCTION_INFO_V1(evmgmt_service_level);
PG_FUNCTION_INFO_V1(evmgmt_asa);
PG_FUNCTION_INFO_V1(evmgmt_occupancy);
PG_FUNCTION_INFO_V1(evmgmt_agents_required);
PG_FUNCTION_INFO_V1(evmgmt_power_of_one);
PG_FUNCTION_INFO_V1(evmgmt_erlang_a);
PG_FUNCTION_INFO_V1(evmgmt_traffic);

/* Raise the 22023 error for a float argument that failed its check. */
static void
CheckFloatArgument(const char *message, double value)
{
	if (message != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", message),
				 errdetail("The value given was %s.", float8out_internal(value))));
}

/* Raise the 22023 error for an integer argument that failed its check. */
static void
CheckIntArgument(const char *message, long long value)
{
	if (message != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", message),
				 errdetail("The value given was %lld.", value)));
}

/* Fetch and check the (traffic, agents) pair every Erlang C function takes. */
static void
GetTrafficAndAgents(FunctionCallInfo fcinfo, double *traffic, int *agents)
{
	*traffic = PG_GETARG_FLOAT8(0);
	*agents = PG_GETARG_INT32(1);
	CheckFloatArgument(evmgmt_check_traffic(*traffic), *traffic);
	CheckIntArgument(evmgmt_check_agents(*agents), *agents);
}

/* evmgmt.erlang_b(traffic, agents): blocking probability of a loss system. */
Datum
evmgmt_erlang_b(PG_FUNCTION_ARGS)
{
	double		traffic;
	int			agents;

	GetTrafficAndAgents(fcinfo, &traffic, &agents);
	PG_RETURN_FLOAT8(evmgmt_math_erlang_b(traffic, agents));
}

/* evmgmt.erlang_c(traffic, agents): probability that a call waits. */
Datum
evmgmt_erlang_c(PG_FUNCTION_ARGS)
{
	double		traffic;
	int			agents;

	GetTrafficAndAgents(fcinfo, &traffic, &agents);
	PG_RETURN_FLOAT8(evmgmt_math_erlang_c(traffic, agents));
}

/* evmgmt.service_level(traffic, agents, aht, target): share answered in time. */
Datum
evmgmt_service_level(PG_FUNCTION_ARGS)
{
	double		traffic;
	int			agents;
	double		aht = PG_GETARG_FLOAT8(2);
	double		target = PG_GETARG_FLOAT8(3);

	GetTrafficAndAgents(fcinfo, &traffic, &agents);
	CheckFloatArgument(evmgmt_check_aht(aht), aht);
	CheckFloatArgument(evmgmt_check_target_seconds(target), target);
	PG_RETURN_FLOAT8(evmgmt_math_service_level(traffic, agents, aht, target));
}

/* evmgmt.asa(traffic, agents, aht): average speed of answer in seconds. */
Datum
evmgmt_asa(PG_FUNCTION_ARGS)
{
	double		traffic;
	int			agents;
	double		aht = PG_GETARG_FLOAT8(2);

	GetTrafficAndAgents(fcinfo, &traffic, &agents);
	CheckFloatArgument(evmgmt_check_aht(aht), aht);
	PG_RETURN_FLOAT8(evmgmt_math_asa(traffic, agents, aht));
}

/* evmgmt.occupancy(traffic, agents): traffic / agents, at most 1. */
Datum
evmgmt_occupancy(PG_FUNCTION_ARGS)
{
	double		traffic;
	int			agents;

	GetTrafficAndAgents(fcinfo, &traffic, &agents);
	PG_RETURN_FLOAT8(evmgmt_math_occupancy(traffic, agents));
}

/* evmgmt.agents_required(...): smallest staffing that meets the target. */
Datum
evmgmt_agents_required(PG_FUNCTION_ARGS)
{
	double		traffic = PG_GETARG_FLOAT8(0);
	double		aht = PG_GETARG_FLOAT8(1);
	double		target_sl = PG_GETARG_FLOAT8(2);
	double		target = PG_GETARG_FLOAT8(3);
	double		max_occupancy = PG_GETARG_FLOAT8(4);
	double		shrinkage = PG_GETARG_FLOAT8(5);
	int			agents;

	CheckFloatArgument(evmgmt_check_traffic(traffic), traffic);
	CheckFloatArgument(evmgmt_check_aht(aht), aht);
	CheckFloatArgument(evmgmt_check_target_sl(target_sl), target_sl);
	CheckFloatArgument(evmgmt_check_target_seconds(target), target);
	CheckFloatArgument(evmgmt_check_max_occupancy(max_occupancy), max_occupancy);
	CheckFloatArgument(evmgmt_check_shrinkage(shrinkage), shrinkage);

	if (evmgmt_math_agents_required(traffic, aht, target_sl, target,
							   max_occupancy, shrinkage, &agents) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("agents required exceeds the limit of %d", ERLANG_MAX_AGENTS),
				 errdetail("Traffic %s Erlangs with the given target, occupancy cap and shrinkage needs more than %d agents.",
						   float8out_internal(traffic), ERLANG_MAX_AGENTS),
				 errhint("Split the traffic into smaller queues or relax the target.")));
	PG_RETURN_INT32(agents);
}

/*
 * evmgmt.power_of_one(traffic, agents, aht, target, steps): the Erlang C
 * figures from agents - steps to agents + steps, materialized at once.
 */
Datum
evmgmt_power_of_one(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	double		traffic;
	int			agents;
	double		aht = PG_GETARG_FLOAT8(2);
	double		target = PG_GETARG_FLOAT8(3);
	int			steps = PG_GETARG_INT32(4);
	ErlangRow  *rows;
	int			count;
	int			i;

	GetTrafficAndAgents(fcinfo, &traffic, &agents);
	CheckFloatArgument(evmgmt_check_aht(aht), aht);
	CheckFloatArgument(evmgmt_check_target_seconds(target), target);
	CheckIntArgument(evmgmt_check_steps(steps), steps);

	InitMaterializedSRF(fcinfo, 0);

	rows = palloc(sizeof(ErlangRow) * (2 * steps + 1));
	count = evmgmt_math_power_of_one(traffic, agents, aht, target, steps, rows);
	for (i = 0; i < count; i++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = Int32GetDatum(rows[i].agents);
		values[1] = Int32GetDatum(rows[i].agents - agents);
		values[2] = Float8GetDatum(rows[i].service_level);
		values[3] = Float8GetDatum(rows[i].asa);
		values[4] = Float8GetDatum(rows[i].occupancy);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(rows);
	return (Datum) 0;
}

/* evmgmt.erlang_a(...): Erlang A figures as one composite row. */
Datum
evmgmt_erlang_a(PG_FUNCTION_ARGS)
{
	double		traffic;
	int			agents;
	double		aht = PG_GETARG_FLOAT8(2);
	double		patience = PG_GETARG_FLOAT8(3);
	double		target = PG_GETARG_FLOAT8(4);
	ErlangAResult res;
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	GetTrafficAndAgents(fcinfo, &traffic, &agents);
	CheckFloatArgument(evmgmt_check_aht(aht), aht);
	CheckFloatArgument(evmgmt_check_patience(patience), patience);
	CheckFloatArgument(evmgmt_check_target_seconds(target), target);
	if (evmgmt_check_erlang_a_load(traffic, aht, patience) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", evmgmt_check_erlang_a_load(traffic, aht, patience)),
				 errdetail("The values given were traffic %s, aht_seconds %s and patience_seconds %s.",
						   float8out_internal(traffic), float8out_internal(aht),
						   float8out_internal(patience))));

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "evmgmt.erlang_a must be declared to return a composite type");
	tupdesc = BlessTupleDesc(tupdesc);

	if (evmgmt_math_erlang_a(traffic, agents, aht, patience, target, &res) != 0)
		elog(ERROR, "Erlang A series did not converge for traffic %g, agents %d",
			 traffic, agents);

	values[0] = Float8GetDatum(res.p_wait);
	values[1] = Float8GetDatum(res.p_abandon);
	values[2] = Float8GetDatum(res.service_level);
	values[3] = Float8GetDatum(res.asa);
	values[4] = Float8GetDatum(res.mean_wait);
	values[5] = Float8GetDatum(res.occupancy);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* evmgmt.traffic(calls, interval_seconds, aht_seconds): Erlangs offered. */
Datum
evmgmt_traffic(PG_FUNCTION_ARGS)
{
	double		calls = PG_GETARG_FLOAT8(0);
	double		interval = PG_GETARG_FLOAT8(1);
	double		aht = PG_GETARG_FLOAT8(2);
	double		result;

	CheckFloatArgument(evmgmt_check_calls(calls), calls);
	CheckFloatArgument(evmgmt_check_interval(interval), interval);
	CheckFloatArgument(evmgmt_check_aht(aht), aht);
	result = evmgmt_math_traffic(calls, interval, aht);
	if (!isfinite(result))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("traffic computed from calls, interval_seconds and aht_seconds is out of range"),
				 errdetail("The result of calls * aht_seconds / interval_seconds is not a finite number.")));
	PG_RETURN_FLOAT8(result);
}

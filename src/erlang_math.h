/*-------------------------------------------------------------------------
 *
 * erlang_math.h
 *	  Queueing math of evmgmt (Erlang B, C and A), free of PostgreSQL.
 *
 * These routines use only the C library, so that the same code is linked
 * into evmgmt.so (through the fmgr wrappers in erlang.c) and into the
 * standalone sanitizer driver test/tools/erlang_driver.c.
 *
 * Units: traffic in Erlangs, times in seconds, probabilities in 0..1.
 * Every argument is expected to have passed the matching erlang_check_*
 * function; those return NULL for a valid value and otherwise the error
 * message to show.
 *
 * IDENTIFICATION
 *	  src/erlang_math.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ERLANG_MATH_H
#define ERLANG_MATH_H

/*
 * largest number of agents the functions accept or return; the same figure
 * is spelled out in the argument-check messages of erlang_math.c
 */
#define ERLANG_MAX_AGENTS 1000000

/* largest power_of_one step count */
#define ERLANG_MAX_STEPS 1000

/* Erlang A limits: traffic * patience / aht, and patience / aht */
#define ERLANG_A_MAX_LOAD 1.0e7
#define ERLANG_A_MIN_RATIO 1.0e-6
#define ERLANG_A_MAX_RATIO 1.0e6

/*
 * 1/B(a, n), the inverse Erlang B blocking probability, kept as
 * inv * exp(log_scale) so that it never overflows.  inv_m1 is 1/B - 1 on the
 * same scale (computed without cancellation) and one is exp(-log_scale);
 * log_scale is infinite once B is too small to matter (saturated).  The
 * recurrence for n agents starts at origin (0, or a few sqrt(a) agents
 * below the traffic, see erlang_b_origin_below); all n >= hi_from share the
 * start hi_origin (-1 until known).  The ck_ fields hold the state at the
 * last multiple of four agents, where the unrolled recurrence in
 * evmgmt_math_erlang_b_advance checkpoints.
 */
typedef struct ErlangBState
{
	double		a;
	int			n;
	int			origin;
	int			hi_from;
	int			hi_origin;
	double		inv;
	double		inv_m1;
	double		one;
	double		log_scale;
	int			ck_n;
	double		ck_inv;
	double		ck_one;
	double		ck_log_scale;
} ErlangBState;

/* one row of power_of_one */
typedef struct ErlangRow
{
	int			agents;
	double		erlang_c;
	double		service_level;
	double		asa;
	double		occupancy;
} ErlangRow;

/* Erlang A (M/M/n+M) results */
typedef struct ErlangAResult
{
	double		p_wait;
	double		p_abandon;
	double		service_level;
	double		asa;
	double		mean_wait;
	double		occupancy;
} ErlangAResult;

/* argument checks: NULL when valid, else the error message */
extern const char *evmgmt_check_traffic(double traffic);
extern const char *evmgmt_check_agents(long long agents);
extern const char *evmgmt_check_aht(double aht_seconds);
extern const char *evmgmt_check_target_seconds(double target_seconds);
extern const char *evmgmt_check_target_sl(double target_sl);
extern const char *evmgmt_check_max_occupancy(double max_occupancy);
extern const char *evmgmt_check_shrinkage(double shrinkage);
extern const char *evmgmt_check_patience(double patience_seconds);
extern const char *evmgmt_check_erlang_a_load(double traffic, double aht_seconds,
											  double patience_seconds);
extern const char *evmgmt_check_steps(long long steps);
extern const char *evmgmt_check_calls(double calls);
extern const char *evmgmt_check_interval(double interval_seconds);

/* the inverse Erlang B recurrence */
extern void evmgmt_math_erlang_b_start(ErlangBState *st, double a);
extern void evmgmt_math_erlang_b_step(ErlangBState *st);
extern void evmgmt_math_erlang_b_advance(ErlangBState *st, int n);

/* single values */
extern double evmgmt_math_erlang_b(double a, int n);
extern double evmgmt_math_erlang_c(double a, int n);
extern double evmgmt_math_service_level(double a, int n, double aht, double t);
extern double evmgmt_math_asa(double a, int n, double aht);
extern double evmgmt_math_occupancy(double a, int n);
extern void evmgmt_math_row(const ErlangBState *st, double aht, double t, ErlangRow *row);

/* staffing: 0 on success, -1 when the answer exceeds ERLANG_MAX_AGENTS */
extern int	evmgmt_math_agents_required(double a, double aht, double target_sl, double t,
								   double max_occupancy, double shrinkage, int *agents);

/* power_of_one: fills rows[] (room for 2 * steps + 1), returns the count */
extern int	evmgmt_math_power_of_one(double a, int agents, double aht, double t, int steps,
								ErlangRow *rows);

/* Erlang A: 0 on success, -1 if the series failed to converge (a bug) */
extern int	evmgmt_math_erlang_a(double a, int n, double aht, double patience, double t,
					 ErlangAResult *res);

/* interval counts to Erlangs: calls * aht / interval (may be infinite) */
extern double evmgmt_math_traffic(double calls, double interval_seconds, double aht_seconds);

#endif							/* ERLANG_MATH_H */

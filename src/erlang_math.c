/*-------------------------------------------------------------------------
 *
 * erlang_math.c
 *	  Queueing math of evmgmt: Erlang B, Erlang C (service level, ASA,
 *	  occupancy, agents required, Power of One) and Erlang A (M/M/n+M).
 *
 * This file deliberately uses nothing but the C library: the fmgr wrappers
 * live in erlang.c, and test/tools/erlang_driver.c links this file alone to
 * run the fuzz values under AddressSanitizer and UBSan.
 *
 * Numerical design (see docs/erlang.md for the derivations):
 *
 * Erlang B uses the classic forward recurrence on the inverse,
 *		1/B(a, n) = 1 + (n / a) / B(a, n - 1),	 1/B(a, 0) = 1,
 * which only adds and multiplies positive numbers, so there is no
 * cancellation and the relative error of a step is damped by the factor
 * (1/B - 1) / (1/B) < 1; after n steps the error is a few n ulps at most.
 * The inverse grows without bound once n > a, so it is kept as a mantissa
 * times 2^(500 k): the scaling is exact in binary and nothing overflows.
 * The same damping lets the recurrence start about sqrt(74 a) agents below
 * the traffic from the guess 1/B = 1, whose error it then shrinks below
 * 2^-53 (erlang_b_origin_below), and it stops once 1/B passes e^4000, where
 * every figure that uses B underflows (erlang_b_saturate): O(sqrt(a)) steps
 * per call near the traffic, up to the limit of 1,000,000 agents.
 * Erlang C, 1 - C and the service level are then formed from 1/B and
 * 1/B - 1 without subtracting nearly equal numbers:
 *		C	  = n / ((n - a) / B + a)
 *		1 - C = (n - a) (1/B - 1) / ((n - a) / B + a)
 *		SL	  = (1 - C) - C expm1(-(n - a) t / aht)
 *
 * Erlang A sums the birth-death chain of the waiting customers directly
 * (all terms positive, scaled against overflow) together with the
 * negative-binomial weights that give the probability of being answered
 * within the target; the loop length is bounded by the documented limit
 * on traffic * patience / aht.
 *
 * IDENTIFICATION
 *	  src/erlang_math.c
 *
 *-------------------------------------------------------------------------
 */
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "erlang_math.h"

/* exact binary scaling of the running products */
#define SCALE_UP	0x1p500
#define SCALE_DOWN	0x1p-500
#define LOG_SCALE	(500.0 * 0.69314718055994530942)

/* below this traffic n / a could overflow in the fast recurrence */
#define FAST_MIN_TRAFFIC 1.0e-90

/* below this traffic (n / a)^4 could overflow in the unrolled recurrence */
#define UNROLL_MIN_TRAFFIC 1.0e-20

/* relative size of a series tail that is dropped */
#define TAIL_EPS	1.0e-17

/* e^-START_DAMP < 2^-53: damping that hides a started recurrence's guess */
#define START_DAMP	37.0

/* 1/B beyond e^SATURATE_LOG: B, C and ASA underflow, the recurrence stops */
#define SATURATE_LOG 4000.0

/* hard stop of the Erlang A series; the limits keep it far below this */
#define ERLANG_A_MAX_TERMS 400000000L


/* Check traffic in Erlangs. */
const char *
evmgmt_check_traffic(double traffic)
{
	return (isfinite(traffic) && traffic >= 0) ? NULL :
		"traffic must be a finite number not less than 0";
}

/* Check an agent count. */
const char *
evmgmt_check_agents(long long agents)
{
	return (agents >= 1 && agents <= ERLANG_MAX_AGENTS) ? NULL :
		"agents must be between 1 and 1000000";
}

/* Check an average handling time. */
const char *
evmgmt_check_aht(double aht_seconds)
{
	return (isfinite(aht_seconds) && aht_seconds > 0) ? NULL :
		"aht_seconds must be a finite number greater than 0";
}

/* Check a service-level target time. */
const char *
evmgmt_check_target_seconds(double target_seconds)
{
	return (isfinite(target_seconds) && target_seconds >= 0) ? NULL :
		"target_seconds must be a finite number not less than 0";
}

/* Check a service-level target fraction. */
const char *
evmgmt_check_target_sl(double target_sl)
{
	return (target_sl > 0 && target_sl <= 1) ? NULL :
		"target_sl must be greater than 0 and at most 1";
}

/* Check a maximum occupancy. */
const char *
evmgmt_check_max_occupancy(double max_occupancy)
{
	return (max_occupancy > 0 && max_occupancy <= 1) ? NULL :
		"max_occupancy must be greater than 0 and at most 1";
}

/* Check a shrinkage fraction. */
const char *
evmgmt_check_shrinkage(double shrinkage)
{
	return (shrinkage >= 0 && shrinkage < 1) ? NULL :
		"shrinkage must be at least 0 and less than 1";
}

/* Check a mean patience. */
const char *
evmgmt_check_patience(double patience_seconds)
{
	return (isfinite(patience_seconds) && patience_seconds > 0) ? NULL :
		"patience_seconds must be a finite number greater than 0";
}

/* Check the combined Erlang A limits (arguments already checked alone). */
const char *
evmgmt_check_erlang_a_load(double traffic, double aht_seconds, double patience_seconds)
{
	double		ratio = patience_seconds / aht_seconds;

	if (!(ratio >= ERLANG_A_MIN_RATIO && ratio <= ERLANG_A_MAX_RATIO))
		return "patience_seconds / aht_seconds must be between 0.000001 and 1000000";
	if (!(traffic * ratio <= ERLANG_A_MAX_LOAD))
		return "traffic * patience_seconds / aht_seconds must not exceed 10000000";
	return NULL;
}

/* Check a power_of_one step count. */
const char *
evmgmt_check_steps(long long steps)
{
	return (steps >= 0 && steps <= ERLANG_MAX_STEPS) ? NULL :
		"steps must be between 0 and 1000";
}

/* Check a call count. */
const char *
evmgmt_check_calls(double calls)
{
	return (isfinite(calls) && calls >= 0) ? NULL :
		"calls must be a finite number not less than 0";
}

/* Check an interval length. */
const char *
evmgmt_check_interval(double interval_seconds)
{
	return (isfinite(interval_seconds) && interval_seconds > 0) ? NULL :
		"interval_seconds must be a finite number greater than 0";
}

/*
 * Where the recurrence for n agents starts, given top = min(n, floor(a)):
 * a multiple of four, so that the blocks of evmgmt_math_erlang_b_advance stay aligned.
 *
 * Started at m from the guess 1/B(a, m) = 1 instead of from 0 agents, the
 * relative error of the guess, which lies in (-1, 0], is multiplied at step
 * k exactly by (1/B(a, k) - 1) / (1/B(a, k)), and for k < a that factor is
 * below k / a (by induction 1/B(a, k) < a / (a - k)).  Over the steps
 * m + 1 .. top, with j = a - top and L = top - m, the product is therefore
 * below exp(-(L j + L (L - 1) / 2) / a), which is under
 * e^-START_DAMP < 2^-53 for L >= L* + 1, L* the positive root of
 * L^2 + 2 j L = 2 START_DAMP a.  The guess is then invisible in the result,
 * and the recurrence costs about sqrt(74 a) steps before the last agent
 * below the traffic instead of a.  Every n >= floor(a) shares the start for
 * top = floor(a) (that is where power_of_one and agents_required step agent
 * by agent); below floor(a) the start moves with n.
 */
static int
erlang_b_origin_below(double a, int top)
{
	double		j = a - (double) top;
	double		r,
				u,
				len;

	/* near the traffic L* is about sqrt(74 a): nothing to skip */
	if (j < 1.0 && (double) top * (double) top <= 2.0 * START_DAMP * a)
		return 0;
	/* L* = r / (u + sqrt(u^2 + 1)), r = sqrt(74 a), u = j / r: no overflow */
	r = sqrt(2.0 * START_DAMP) * sqrt(a);
	u = j / r;
	len = r / (u + sqrt(u * u + 1.0)) + 2.0;
	if (!(len < (double) top))
		return 0;
	return ((int) ((double) top - len)) & ~3;
}

/* The start of the recurrence for n agents (see erlang_b_origin_below). */
static inline int
erlang_b_origin(ErlangBState *st, int n)
{
	if (n < st->hi_from)
		return erlang_b_origin_below(st->a, n);
	if (st->hi_origin < 0)
		st->hi_origin = erlang_b_origin_below(st->a, st->hi_from);
	return st->hi_origin;
}

/* Restart the recurrence at origin agents from the guess 1/B = 1. */
static void
erlang_b_reset(ErlangBState *st, int origin)
{
	st->n = origin;
	st->origin = origin;
	st->inv = 1.0;
	st->inv_m1 = 0.0;
	st->one = 1.0;
	st->log_scale = 0.0;
	st->ck_n = origin;
	st->ck_inv = 1.0;
	st->ck_one = 1.0;
	st->ck_log_scale = 0.0;
}

/*
 * 1/B has passed e^SATURATE_LOG: B, C and ASA are 0 in double precision
 * whatever the other arguments, so the recurrence stops.  The state is the
 * same however it got here (inv 1, inv_m1 1, one 0, log_scale infinite), so
 * stepping and computing from the start still agree to the bit.
 */
static void
erlang_b_saturate(ErlangBState *st, int n)
{
	st->n = n;
	st->inv = 1.0;
	st->inv_m1 = 1.0;
	st->one = 0.0;
	st->log_scale = INFINITY;
	st->ck_n = n;
	st->ck_inv = 1.0;
	st->ck_one = 0.0;
	st->ck_log_scale = INFINITY;
}

/* Set up the recurrence at zero agents: 1/B(a, 0) = 1. */
void
evmgmt_math_erlang_b_start(ErlangBState *st, double a)
{
	st->a = a;
	st->hi_from = a >= 1.0 ? (a < (double) INT_MAX ? (int) a : INT_MAX) : 0;
	st->hi_origin = -1;
	erlang_b_reset(st, 0);
}

/* One step of the recurrence for tiny traffic, done in logarithms. */
static void
erlang_b_step_log(ErlangBState *st)
{
	int			n = st->n + 1;
	double		lv;

	/* log of (n / a) / B(a, n - 1), which is 1/B(a, n) - 1 */
	lv = log(st->inv) + st->log_scale + log((double) n) - log(st->a);
	if (lv > SATURATE_LOG)
		erlang_b_saturate(st, n);
	else if (lv < 700.0)
	{
		st->inv_m1 = exp(lv);
		st->inv = 1.0 + st->inv_m1;
		st->one = 1.0;
		st->log_scale = 0.0;
	}
	else
	{
		st->log_scale = lv;
		st->one = exp(-lv);
		st->inv_m1 = 1.0;
		st->inv = 1.0 + st->one;
	}
	st->n = n;
}

/*
 * Four agents at once, kd .. kd + 3, from the value at kd - 1:
 *		x(k+3) = one * alpha + beta * x(k-1),
 *		alpha = 1 + c4 (1 + c3 (1 + c2)),  beta = c1 c2 c3 c4,  c(j) = j / a,
 * as polynomials in 1/a with the products of kd .. kd + 3 formed outside the
 * dependency chain, which is one multiply-add per four agents.
 */
static inline double
erlang_b_block(double inv, double one, double kd, double inva, double inva4)
{
	double		p43 = (kd + 3.0) * (kd + 2.0);
	double		p432 = p43 * (kd + 1.0);
	double		alpha = 1.0 + inva * ((kd + 3.0) + inva * (p43 + inva * p432));
	double		beta = (p432 * kd) * inva4;

	return one * alpha + beta * inv;
}

/*
 * Advance the recurrence to n agents (n >= st->n).
 *
 * Blocks of four agents (erlang_b_block); every term is positive, and
 * beta <= (n/a)^4 stays far from overflow for a >= UNROLL_MIN_TRAFFIC.  The
 * blocks always cover agents origin + 4m + 1 .. origin + 4m + 4 up to the
 * checkpoint 4 * floor((n - 1) / 4), and the last one to four agents are
 * single steps from that checkpoint, so the value for n is bit for bit the
 * same whether it was computed from the start or reached by single steps
 * (power_of_one and agents_required rely on that).
 */
void
evmgmt_math_erlang_b_advance(ErlangBState *st, int n)
{
	double		a = st->a;
	double		inv,
				inv_m1,
				one,
				log_scale;
	int			origin;
	int			k;

	if (n <= st->n)
		return;
	if (a == 0)
	{
		/* no traffic: B = 0 for every n >= 1, represented by inv = inf */
		st->n = n;
		st->inv = INFINITY;
		st->inv_m1 = INFINITY;
		return;
	}

	origin = erlang_b_origin(st, n);
	if (origin != st->origin)
		erlang_b_reset(st, origin);
	else if (isinf(st->log_scale))
	{
		erlang_b_saturate(st, n);
		return;
	}

	if (a < FAST_MIN_TRAFFIC)
	{
		while (st->n < n && !isinf(st->log_scale))
			erlang_b_step_log(st);
		if (st->n < n)
			erlang_b_saturate(st, n);
		return;
	}

	inv = st->inv;
	inv_m1 = st->inv_m1;
	one = st->one;
	log_scale = st->log_scale;
	k = st->n + 1;

	if (a >= UNROLL_MIN_TRAFFIC && ((n - 1) / 4) * 4 > st->ck_n)
	{
		double		inva = 1.0 / a;
		double		inva4 = (inva * inva) * (inva * inva);
		int			target_ck = ((n - 1) / 4) * 4;
		double		kd;

		/* blocks from the last checkpoint */
		inv = st->ck_inv;
		one = st->ck_one;
		log_scale = st->ck_log_scale;
		for (k = st->ck_n + 1, kd = (double) k; k + 3 <= target_ck; k += 4, kd += 4.0)
		{
			inv = erlang_b_block(inv, one, kd, inva, inva4);
			if (inv > SCALE_UP)
			{
				inv *= SCALE_DOWN;
				one *= SCALE_DOWN;
				log_scale += LOG_SCALE;
				if (log_scale > SATURATE_LOG)
				{
					erlang_b_saturate(st, n);
					return;
				}
			}
		}
		st->ck_n = target_ck;
		st->ck_inv = inv;
		st->ck_one = one;
		st->ck_log_scale = log_scale;
	}

	for (; k <= n; k++)
	{
		inv_m1 = inv * ((double) k / a);
		inv = one + inv_m1;
		if (inv > SCALE_UP)
		{
			inv *= SCALE_DOWN;
			inv_m1 *= SCALE_DOWN;
			one *= SCALE_DOWN;
			log_scale += LOG_SCALE;
			/* with blocks only their checkpoints saturate (same bits either way) */
			if (log_scale > SATURATE_LOG && a < UNROLL_MIN_TRAFFIC)
			{
				erlang_b_saturate(st, n);
				return;
			}
		}
	}
	st->inv = inv;
	st->inv_m1 = inv_m1;
	st->one = one;
	st->log_scale = log_scale;
	st->n = n;
}

/*
 * evmgmt_math_erlang_b_advance(st, st->n + 1), inline for the common case of walking up
 * from the traffic (at most one block from the checkpoint, then one single
 * step: the same operations in the same order, hence the same bits).
 */
static inline void
erlang_b_next(ErlangBState *st)
{
	double		a = st->a;
	double		inv,
				inv_m1,
				one,
				log_scale;
	int			n = st->n + 1;

	if (st->n < st->hi_from || !(a >= UNROLL_MIN_TRAFFIC) || isinf(st->log_scale))
	{
		evmgmt_math_erlang_b_advance(st, n);
		return;
	}
	if (((n - 1) / 4) * 4 > st->ck_n)
	{
		double		inva,
					inva4;

		if (st->ck_n + 4 != n - 1)
		{
			evmgmt_math_erlang_b_advance(st, n);
			return;
		}
		inva = 1.0 / a;
		inva4 = (inva * inva) * (inva * inva);
		inv = erlang_b_block(st->ck_inv, st->ck_one, (double) (st->ck_n + 1), inva, inva4);
		one = st->ck_one;
		log_scale = st->ck_log_scale;
		if (inv > SCALE_UP)
		{
			if (log_scale + LOG_SCALE > SATURATE_LOG)
			{
				evmgmt_math_erlang_b_advance(st, n);
				return;
			}
			inv *= SCALE_DOWN;
			one *= SCALE_DOWN;
			log_scale += LOG_SCALE;
		}
		st->ck_n = n - 1;
		st->ck_inv = inv;
		st->ck_one = one;
		st->ck_log_scale = log_scale;
	}
	else
	{
		inv = st->inv;
		one = st->one;
		log_scale = st->log_scale;
	}
	inv_m1 = inv * ((double) n / a);
	inv = one + inv_m1;
	if (inv > SCALE_UP)
	{
		inv *= SCALE_DOWN;
		inv_m1 *= SCALE_DOWN;
		one *= SCALE_DOWN;
		log_scale += LOG_SCALE;
	}
	st->inv = inv;
	st->inv_m1 = inv_m1;
	st->one = one;
	st->log_scale = log_scale;
	st->n = n;
}

/* Advance the recurrence by one agent. */
void
evmgmt_math_erlang_b_step(ErlangBState *st)
{
	erlang_b_next(st);
}

/* Erlang B blocking probability of a loss system with n agents. */
double
evmgmt_math_erlang_b(double a, int n)
{
	ErlangBState st;

	if (a == 0)
		return 0.0;
	evmgmt_math_erlang_b_start(&st, a);
	evmgmt_math_erlang_b_advance(&st, n);
	return st.one / st.inv;
}

/* Erlang C figures of an unstable queue (agents <= traffic). */
static void
erlang_unstable_row(int agents, ErlangRow *row)
{
	row->agents = agents;
	row->erlang_c = 1.0;
	row->service_level = 0.0;
	row->asa = INFINITY;
	row->occupancy = 1.0;
}

/*
 * Erlang C figures for the agent count the state has reached.  Unstable
 * queues (n <= a) give C = 1, SL = 0, ASA = infinity, occupancy 1.
 */
void
evmgmt_math_row(const ErlangBState *st, double aht, double t, ErlangRow *row)
{
	double		a = st->a;
	double		n = (double) st->n;
	double		d,
				den,
				c,
				omc,
				sl;

	row->agents = st->n;
	if (a == 0)
	{
		row->erlang_c = 0.0;
		row->service_level = 1.0;
		row->asa = 0.0;
		row->occupancy = 0.0;
		return;
	}
	if (n <= a)
	{
		erlang_unstable_row(st->n, row);
		return;
	}

	d = n - a;					/* exact when a > n / 2 (Sterbenz) */
	den = d * st->inv + a * st->one;
	c = n * st->one / den;
	/* 1 - C: subtracting is exact enough once C < 1/2, and rounds to 1 */
	omc = c < 0.5 ? 1.0 - c : d * st->inv_m1 / den;
	if (c > 1.0)
		c = 1.0;
	if (omc > 1.0)
		omc = 1.0;

	/* t / aht first: d * (t / aht) is never 0 * inf */
	sl = omc - c * expm1(-(d * (t / aht)));
	if (sl > 1.0)
		sl = 1.0;
	if (sl < 0.0)
		sl = 0.0;

	row->erlang_c = c;
	row->service_level = sl;
	row->asa = c * aht / d;
	row->occupancy = a / n;
}

/* Erlang C probability of waiting. */
double
evmgmt_math_erlang_c(double a, int n)
{
	ErlangBState st;
	ErlangRow	row;

	evmgmt_math_erlang_b_start(&st, a);
	evmgmt_math_erlang_b_advance(&st, n);
	evmgmt_math_row(&st, 1.0, 0.0, &row);
	return row.erlang_c;
}

/* Erlang C service level: share of calls answered within t seconds. */
double
evmgmt_math_service_level(double a, int n, double aht, double t)
{
	ErlangBState st;
	ErlangRow	row;

	evmgmt_math_erlang_b_start(&st, a);
	evmgmt_math_erlang_b_advance(&st, n);
	evmgmt_math_row(&st, aht, t, &row);
	return row.service_level;
}

/* Erlang C average speed of answer in seconds (over all calls). */
double
evmgmt_math_asa(double a, int n, double aht)
{
	ErlangBState st;
	ErlangRow	row;

	evmgmt_math_erlang_b_start(&st, a);
	evmgmt_math_erlang_b_advance(&st, n);
	evmgmt_math_row(&st, aht, 0.0, &row);
	return row.asa;
}

/* Agent occupancy a / n, capped at 1. */
double
evmgmt_math_occupancy(double a, int n)
{
	double		occ = a / (double) n;

	if (occ == 0.0)
		return 0.0;				/* no -0 for traffic -0 */
	return occ > 1.0 ? 1.0 : occ;
}

/*
 * Cheap staffing test: true when n agents clearly miss the target, that is
 * when C e exceeds 1 - target (plus 2^-51, for a service level that rounds
 * up to the target, as 1 does) by a relative margin of 1e-9, far above the
 * rounding of the test; e = exp(-(n - a) t / aht), inv and one the scaled
 * 1/B at n.  Where it does not clearly fail, the exact evmgmt_math_row decides.
 * C e falls with n, so a count that clearly fails also rules out every
 * smaller one.
 */
static inline bool
erlang_clearly_short(double a, int n, double inv, double one, double e, double target_c)
{
	double		den = ((double) n - a) * inv + a * one;

	return target_c * den < (double) n * one * e * (1.0 - 1e-9);
}

/*
 * Smallest agent count meeting the service-level target and the occupancy
 * cap, grossed up for shrinkage.  The search starts at the first stable
 * count (floor(a) + 1, or a / max_occupancy if larger) and reaches it with
 * one pass of the recurrence.  From there it strides four agents at a time
 * over counts that clearly fail (erlang_clearly_short on the values at the
 * checkpoints of the unrolled recurrence), then walks up one agent at a
 * time with the exact values, so the answer agrees with
 * evmgmt.service_level to the last bit.  O(sqrt(a) + answer - a) work.
 */
int
evmgmt_math_agents_required(double a, double aht, double target_sl, double t,
					   double max_occupancy, double shrinkage, int *agents)
{
	ErlangBState st;
	ErlangRow	row;
	double		lo,
				occ_lo,
				h,
				keep,
				tau,
				decay,
				target_c,
				e;
	int			n;

	if (a == 0)
	{
		*agents = 0;
		return 0;
	}

	lo = floor(a) + 1.0;
	occ_lo = ceil(a / max_occupancy);
	if (occ_lo > lo)
		lo = occ_lo;
	if (!(lo <= ERLANG_MAX_AGENTS))
		return -1;

	n = (int) lo;
	evmgmt_math_erlang_b_start(&st, a);
	evmgmt_math_erlang_b_advance(&st, n);

	/* t / aht first: (n - a) * tau is never 0 * inf */
	tau = t / aht;
	decay = exp(-tau);
	e = exp(-(((double) n - a) * tau));
	target_c = (1.0 - target_sl) + 0x1p-51;

	if (erlang_clearly_short(a, n, st.inv, st.one, e, target_c))
	{
		/*
		 * Stride over the checkpoints while they clearly fail.  The blocks
		 * are the ones evmgmt_math_erlang_b_advance computes, so the state left at the
		 * last failing checkpoint c continues exactly: the value at c + 1 is
		 * one single step from it.
		 */
		if (a >= UNROLL_MIN_TRAFFIC && !isinf(st.log_scale))
		{
			double		inva = 1.0 / a;
			double		inva4 = (inva * inva) * (inva * inva);
			double		decay2 = decay * decay;
			double		decay4 = decay2 * decay2;
			int			c = st.ck_n;
			double		inv = st.ck_inv,
						one = st.ck_one,
						log_scale = st.ck_log_scale,
						ec = e,
						e_c = e;
			int			k;
			bool		moved = false;

			/* e at the first candidate checkpoint c + 4 >= n */
			for (k = n; k < c + 4; k++)
				ec *= decay;
			while (c + 4 <= ERLANG_MAX_AGENTS)
			{
				double		ninv = erlang_b_block(inv, one, (double) (c + 1), inva, inva4);
				double		none = one,
							nls = log_scale;

				if (ninv > SCALE_UP)
				{
					if (nls + LOG_SCALE > SATURATE_LOG)
						break;
					ninv *= SCALE_DOWN;
					none *= SCALE_DOWN;
					nls += LOG_SCALE;
				}
				if (!erlang_clearly_short(a, c + 4, ninv, none, ec, target_c))
					break;
				c += 4;
				inv = ninv;
				one = none;
				log_scale = nls;
				e_c = ec;
				ec *= decay4;
				moved = true;
			}
			if (moved)
			{
				st.n = c;
				st.ck_n = c;
				st.ck_inv = st.inv = inv;
				st.ck_one = st.one = one;
				st.ck_log_scale = st.log_scale = log_scale;
				n = c;
				e = e_c;
			}
		}

		/* walk up from the last count that clearly failed */
		for (;;)
		{
			if (n >= ERLANG_MAX_AGENTS)
				return -1;
			erlang_b_next(&st);
			n++;
			e *= decay;
			if (!erlang_clearly_short(a, n, st.inv, st.one, e, target_c))
			{
				evmgmt_math_row(&st, aht, t, &row);
				if (row.service_level >= target_sl)
					break;
			}
		}
	}
	else
	{
		evmgmt_math_row(&st, aht, t, &row);
		if (row.service_level < target_sl)
		{
			/* rare: lo is short only by the margin of the cheap test */
			for (;;)
			{
				if (n >= ERLANG_MAX_AGENTS)
					return -1;
				erlang_b_next(&st);
				n++;
				evmgmt_math_row(&st, aht, t, &row);
				if (row.service_level >= target_sl)
					break;
			}
		}
	}

	/* smallest h with h * (1 - shrinkage) >= n */
	keep = 1.0 - shrinkage;
	h = ceil((double) n / keep);
	if (!(h <= ERLANG_MAX_AGENTS))
		return -1;
	while (h > n && (h - 1.0) * keep >= (double) n)
		h -= 1.0;
	*agents = (int) h;
	return 0;
}

/*
 * Power of One: Erlang C figures for agents - steps .. agents + steps.  The
 * unstable rows need no recurrence; the stable ones are one pass to the
 * first and a step each after it.
 */
int
evmgmt_math_power_of_one(double a, int agents, double aht, double t, int steps,
					ErlangRow *rows)
{
	ErlangBState st;
	int			lo = agents - steps;
	int			hi = agents + steps;
	int			first;
	int			count = 0;
	int			n;

	if (lo < 1)
		lo = 1;
	if (hi > ERLANG_MAX_AGENTS)
		hi = ERLANG_MAX_AGENTS;

	/* first stable count: floor(a) + 1, or past the end */
	first = lo;
	if (a > 0 && (double) first <= a)
		first = a < (double) hi ? (int) a + 1 : hi + 1;
	for (n = lo; n < first && n <= hi; n++)
		erlang_unstable_row(n, &rows[count++]);
	if (first > hi)
		return count;

	evmgmt_math_erlang_b_start(&st, a);
	evmgmt_math_erlang_b_advance(&st, first);
	for (n = first; n <= hi; n++)
	{
		if (n > first)
			erlang_b_next(&st);
		evmgmt_math_row(&st, aht, t, &rows[count++]);
	}
	return count;
}

/*
 * Erlang A (Palm's M/M/n+M queue): Poisson arrivals at a / aht per second,
 * exponential handling with mean aht, exponential patience with mean
 * patience; n agents.  In units of the abandonment rate theta = 1/patience,
 * x = n * patience / aht and y = a * patience / aht.
 *
 * A caller who finds j others waiting ahead has, relative to a caller who
 * finds n - 1 agents busy, the weight q_j = prod_{i=1..j} y / (x + i).
 * Its offered wait V (time to reach an agent if it were infinitely patient)
 * is a sum of exponentials with rates theta (x + i), i = 0..j, so that
 * exp(-theta V) ~ Beta(x, j + 1).  Hence
 *		P(answered | j)				  = x / (x + j + 1)
 *		E[wait; answered | j]		  = x / (x + j + 1) * sum_{i=1..j+1} 1 / (theta (x + i))
 *		P(answered within t | j)	  = x / (x + j + 1) * P(Beta(x + 1, j + 1) >= u0),
 * u0 = exp(-theta t).  The beta tail is the upper tail of a negative
 * binomial with weights d_i (r = x + 1, p = u0), so summing by parts
 *		sum_j w_j P(NB > j) = sum_i d_i W_{i-1},  W_i = w_0 + ... + w_i,
 * turns the service level into one pass with only positive terms.  The
 * probability of waiting joins the chain to Erlang B:
 *		P(wait) = 1 / (1 + (1/B - 1) / S),	S = sum_j q_j.
 */
int
evmgmt_math_erlang_a(double a, int n, double aht, double patience, double t,
		 ErlangAResult *res)
{
	ErlangBState bst;
	double		ratio = patience / aht;
	double		x = (double) n * ratio;
	double		y = a * ratio;
	double		q = 1.0,
				log_q = 0.0;
	double		sum_q = 0.0,
				sum_served = 0.0,
				sum_aband = 0.0,
				sum_wait = 0.0,
				harmonic = 0.0,
				prefix_w = 0.0,
				sum_sl = 0.0;
	bool		use_d = (t > 0);
	bool		q_done = false,
				d_done = !use_d;
	double		om = 0.0,
				ds = 1.0,
				log_d = 0.0,
				d_factor = 0.0,
				d_sum = 0.0;
	double		k_ratio,
				p_wait,
				p_nowait,
				p_served;
	long		i;

	if (a == 0)
	{
		res->p_wait = 0.0;
		res->p_abandon = 0.0;
		res->service_level = 1.0;
		res->asa = 0.0;
		res->mean_wait = 0.0;
		res->occupancy = 0.0;
		return 0;
	}

	if (use_d)
	{
		double		tau = t / patience;

		om = -expm1(-tau);		/* 1 - u0 */
		log_d = -(x + 1.0) * tau;	/* log d_0 = (x + 1) log u0 */
		d_factor = exp(log_d);
	}

	for (i = 0;; i++)
	{
		double		inv_den = 1.0 / (x + (double) i + 1.0);
		double		w = 0.0;

		if (!q_done)
		{
			/* x / (x + i + 1), written to stay finite for huge x */
			w = q / (1.0 + ((double) i + 1.0) / x);
			sum_q += q;
			sum_served += w;
			sum_aband += q * ((double) i + 1.0) * inv_den;
			harmonic += inv_den;
			sum_wait += w * harmonic;
		}
		if (!d_done)
		{
			double		d = ds * d_factor;

			sum_sl += d * prefix_w;
			d_sum += d;
		}
		if (!q_done)
		{
			double		r = y * inv_den;

			prefix_w += w;
			if (r < 1.0 && q * r <= TAIL_EPS * (1.0 - r) * sum_q)
				q_done = true;
			else
			{
				q *= r;
				if (q > SCALE_UP)
				{
					q *= SCALE_DOWN;
					sum_q *= SCALE_DOWN;
					sum_served *= SCALE_DOWN;
					sum_aband *= SCALE_DOWN;
					sum_wait *= SCALE_DOWN;
					prefix_w *= SCALE_DOWN;
					sum_sl *= SCALE_DOWN;
					log_q += LOG_SCALE;
				}
			}
		}
		if (!d_done)
		{
			double		d = ds * d_factor;
			double		rd = om * (x + (double) i + 1.0) / ((double) i + 1.0);

			if (q_done && d_sum <= 0.5)
			{
				/* every later d_k meets the final prefix sum: no cancellation */
				sum_sl += prefix_w * (1.0 - d_sum);
				d_done = true;
			}
			else if (q_done && (d == 0.0 ||
								(rd < 1.0 &&
								 prefix_w * d * rd <= TAIL_EPS * (1.0 - rd) * sum_sl)))
				d_done = true;
			else
			{
				ds *= rd;
				if (ds > SCALE_UP || (ds < SCALE_DOWN && ds > 0.0))
				{
					double		f = ds > SCALE_UP ? SCALE_DOWN : SCALE_UP;

					ds *= f;
					log_d += (f == SCALE_DOWN) ? LOG_SCALE : -LOG_SCALE;
					d_factor = exp(log_d);
				}
			}
		}
		if (q_done && d_done)
			break;
		if (i >= ERLANG_A_MAX_TERMS)
			return -1;
	}

	/* K = (1/B - 1) / S, both kept scaled */
	evmgmt_math_erlang_b_start(&bst, a);
	evmgmt_math_erlang_b_advance(&bst, n);
	if (bst.log_scale == 0.0 && log_q == 0.0)
		k_ratio = bst.inv_m1 / sum_q;
	else
		k_ratio = exp(log(bst.inv_m1) + bst.log_scale - log(sum_q) - log_q);

	p_wait = 1.0 / (1.0 + k_ratio);
	p_nowait = k_ratio > 1.0 ? 1.0 / (1.0 + 1.0 / k_ratio) : k_ratio / (1.0 + k_ratio);
	p_served = p_nowait + p_wait * (sum_served / sum_q);

	res->p_wait = p_wait;
	res->p_abandon = p_wait * (sum_aband / sum_q);
	res->service_level = use_d ? p_nowait + p_wait * (sum_sl / sum_q) : p_nowait;
	if (res->service_level > 1.0)
		res->service_level = 1.0;
	res->asa = p_served > 0.0 ?
		p_wait * (sum_wait / sum_q) * patience / p_served : 0.0;
	res->mean_wait = res->p_abandon * patience;
	res->occupancy = a * p_served / (double) n;
	if (res->occupancy > 1.0)
		res->occupancy = 1.0;
	return 0;
}

/* Interval counts to Erlangs. */
double
evmgmt_math_traffic(double calls, double interval_seconds, double aht_seconds)
{
	double		traffic = calls * (aht_seconds / interval_seconds);

	return traffic == 0.0 ? 0.0 : traffic;	/* no -0 for calls -0 */
}

/*-------------------------------------------------------------------------
 *
 * erlang_driver.c
 *	  Standalone fuzz driver for the PostgreSQL-free Erlang math.
 *
 * Linked with src/erlang_math.c only, built with AddressSanitizer and
 * UndefinedBehaviorSanitizer by test/integration/erlang_sanitizer.sh.  It
 * calls every routine the SQL functions reach with the same extreme and
 * pseudo-random arguments as test/sql/erlang_fuzz.sql (plus many more
 * combinations), validating them first exactly as src/erlang.c does, and
 * checks that every result is in range.  Exit status 1 on a range
 * violation; the sanitizers abort on memory errors or undefined behaviour.
 *
 * "erlang_driver --inject asan" writes past an array and "--inject ubsan"
 * overflows a signed integer, so the test can show that the sanitizers
 * would catch a real fault.
 *
 * IDENTIFICATION
 *	  test/tools/erlang_driver.c
 *
 *-------------------------------------------------------------------------
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erlang_math.h"

static double floats[200];
static int	nfloats;
static long long ints[64];
static int	nints;

static long calls,
			oks,
			rejected,
			skipped,
			violations;

/* Record a result that is out of range. */
static void
violation(const char *fn, int arg_index)
{
	violations++;
	if (violations <= 20)
		fprintf(stderr, "violation in %s (combination %d)\n", fn, arg_index);
}

/* True when v is a probability. */
static int
is_prob(double v)
{
	return v >= 0.0 && v <= 1.0;
}

/* Fill the argument lists: extremes, then pseudo-random magnitudes. */
static void
fill_values(void)
{
	const double extremes[] = {
		NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e308, -1e308, DBL_MAX,
		5e-324, -5e-324, DBL_MIN, 1e-300, 1e-20, 0.5, 1.0, 0.999999,
		20.0, 180.0, 49.999999, 50.0, 99999.99, 100000.0, 123456.7, -1.0, 1e10,
		2147483647.0, 1e-90, 1.1e-90, 0.9e-90, 1e200, 1e-200,
		999999.99, 1000000.0, 1000000.5, 1234567.8, 1e-20, 0.9e-20
	};
	const long long iextremes[] = {
		INT_MIN, -1, 0, 1, 2, 3, 5, 50, 51, 1000, 99999, 100000, 100001,
		999999, 1000000, 1000001, INT_MAX
	};
	unsigned long long s = 88172645463325252ULL;
	int			i;

	for (i = 0; i < (int) (sizeof(extremes) / sizeof(extremes[0])); i++)
		floats[nfloats++] = extremes[i];
	while (nfloats < 120)
	{
		/* xorshift64: deterministic magnitudes from 1e-6 to 1e7 */
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		floats[nfloats++] = (double) (s % 100000) / 1000.0 * pow(10.0, (double) ((s >> 20) % 12) - 6.0);
	}
	for (i = 0; i < (int) (sizeof(iextremes) / sizeof(iextremes[0])); i++)
		ints[nints++] = iextremes[i];
	while (nints < 40)
	{
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		/* mostly small counts, every fourth up to 1,100,000 */
		ints[nints] = (long long) (s % (nints % 4 == 0 ? 1100000 : 5000));
		nints++;
	}
}

/* Pick argument p of combination c: sweeps first, then pseudo-random. */
static double
pick_float(long c, int p, double base)
{
	static const int primes[] = {7, 11, 13, 17, 19, 23};
	long		j = (c * primes[p] + p * 101) % 1000003;

	if (c < 6L * nfloats)
		return (c / nfloats == p) ? floats[c % nfloats] : base;
	if ((c * primes[p] + p) % 3 == 0)
		return base;
	return floats[j % nfloats];
}

/* Same for an integer argument. */
static long long
pick_int(long c, int p, long long base)
{
	static const int primes[] = {7, 11, 13, 17, 19, 23};
	long		j = (c * primes[p] + p * 101) % 1000003;

	if (c < 6L * nfloats)
		return (c / nfloats == p) ? ints[c % nints] : base;
	if ((c * primes[p] + p) % 3 == 0)
		return base;
	return ints[j % nints];
}

/*
 * The recurrence must give the same bits for n whether computed from zero or
 * reached by single steps from a few agents below (power_of_one and
 * agents_required depend on it).
 */
static int
same_when_stepped(double a, int n)
{
	ErlangBState direct,
				stepped;
	int			k;

	evmgmt_math_erlang_b_start(&direct, a);
	evmgmt_math_erlang_b_advance(&direct, n);
	evmgmt_math_erlang_b_start(&stepped, a);
	evmgmt_math_erlang_b_advance(&stepped, n > 6 ? n - 6 : 0);
	for (k = stepped.n; k < n; k++)
		evmgmt_math_erlang_b_step(&stepped);
	return memcmp(&direct.inv, &stepped.inv, sizeof(double)) == 0 &&
		memcmp(&direct.inv_m1, &stepped.inv_m1, sizeof(double)) == 0 &&
		memcmp(&direct.one, &stepped.one, sizeof(double)) == 0 &&
		direct.log_scale == stepped.log_scale;
}

/* The two-argument functions: evmgmt_math_erlang_b, evmgmt_math_erlang_c, occupancy. */
static void
fuzz_traffic_agents(long combos)
{
	long		c;

	for (c = 0; c < combos; c++)
	{
		double		a = pick_float(c, 0, 50.0);
		long long	n = pick_int(c, 1, 55);

		calls++;
		if (evmgmt_check_traffic(a) || evmgmt_check_agents(n))
		{
			rejected++;
			continue;
		}
		oks++;
		if (!is_prob(evmgmt_math_erlang_b(a, (int) n)))
			violation("evmgmt_math_erlang_b", (int) c);
		if (!is_prob(evmgmt_math_erlang_c(a, (int) n)))
			violation("evmgmt_math_erlang_c", (int) c);
		if (!is_prob(evmgmt_math_occupancy(a, (int) n)))
			violation("occupancy", (int) c);
		if (!same_when_stepped(a, (int) n))
			violation("evmgmt_math_erlang_b_advance", (int) c);
	}
}

/* service_level and asa. */
static void
fuzz_service_level(long combos)
{
	long		c;

	for (c = 0; c < combos; c++)
	{
		double		a = pick_float(c, 0, 50.0);
		long long	n = pick_int(c, 1, 55);
		double		aht = pick_float(c, 2, 180.0);
		double		t = pick_float(c, 3, 20.0);
		double		asa;

		calls++;
		if (evmgmt_check_traffic(a) || evmgmt_check_agents(n) ||
			evmgmt_check_aht(aht) || evmgmt_check_target_seconds(t))
		{
			rejected++;
			continue;
		}
		oks++;
		if (!is_prob(evmgmt_math_service_level(a, (int) n, aht, t)))
			violation("service_level", (int) c);
		asa = evmgmt_math_asa(a, (int) n, aht);
		if (!(asa >= 0.0))
			violation("asa", (int) c);
	}
}

/* agents_required. */
static void
fuzz_agents_required(long combos)
{
	long		c;

	for (c = 0; c < combos; c++)
	{
		double		a = pick_float(c, 0, 50.0);
		double		aht = pick_float(c, 1, 180.0);
		double		sl = pick_float(c, 2, 0.8);
		double		t = pick_float(c, 3, 20.0);
		double		occ = pick_float(c, 4, 1.0);
		double		shr = pick_float(c, 5, 0.0);
		int			agents = -1;

		calls++;
		if (evmgmt_check_traffic(a) || evmgmt_check_aht(aht) ||
			evmgmt_check_target_sl(sl) || evmgmt_check_target_seconds(t) ||
			evmgmt_check_max_occupancy(occ) || evmgmt_check_shrinkage(shr))
		{
			rejected++;
			continue;
		}
		if (evmgmt_math_agents_required(a, aht, sl, t, occ, shr, &agents) != 0)
		{
			rejected++;			/* over the documented limit: 22023 */
			continue;
		}
		oks++;
		if (agents < 0 || agents > ERLANG_MAX_AGENTS)
			violation("agents_required", (int) c);
	}
}

/* power_of_one, with an exactly sized result array. */
static void
fuzz_power_of_one(long combos)
{
	long		c;

	for (c = 0; c < combos; c++)
	{
		double		a = pick_float(c, 0, 50.0);
		long long	n = pick_int(c, 1, 53);
		double		aht = pick_float(c, 2, 180.0);
		double		t = pick_float(c, 3, 20.0);
		long long	steps = pick_int(c, 4, 5);
		ErlangRow  *rows;
		int			count,
					i;

		calls++;
		if (evmgmt_check_traffic(a) || evmgmt_check_agents(n) ||
			evmgmt_check_aht(aht) || evmgmt_check_target_seconds(t) ||
			evmgmt_check_steps(steps))
		{
			rejected++;
			continue;
		}
		oks++;
		rows = malloc(sizeof(ErlangRow) * (2 * steps + 1));
		if (rows == NULL)
			abort();
		count = evmgmt_math_power_of_one(a, (int) n, aht, t, (int) steps, rows);
		if (count < 1 || count > 2 * steps + 1)
			violation("power_of_one", (int) c);
		for (i = 0; i < count; i++)
			if (rows[i].agents < 1 || rows[i].agents > ERLANG_MAX_AGENTS ||
				!is_prob(rows[i].service_level) || !(rows[i].asa >= 0.0) ||
				!is_prob(rows[i].occupancy))
				violation("power_of_one", (int) c);
		free(rows);
	}
}

/*
 * evmgmt_math_erlang_a.  Its series runs about (traffic - agents) * patience / aht
 * terms, up to the load limit of 10,000,000; only the first 40 calls that
 * long (a few seconds under the sanitizers) are run, the other ones count
 * as skipped, so that the run stays short.
 */
static void
fuzz_erlang_a(long combos)
{
	long		c;
	int			long_runs = 0;

	for (c = 0; c < combos; c++)
	{
		double		a = pick_float(c, 0, 50.0);
		long long	n = pick_int(c, 1, 52);
		double		aht = pick_float(c, 2, 180.0);
		double		pat = pick_float(c, 3, 120.0);
		double		t = pick_float(c, 4, 20.0);
		ErlangAResult r;

		calls++;
		if (evmgmt_check_traffic(a) || evmgmt_check_agents(n) ||
			evmgmt_check_aht(aht) || evmgmt_check_patience(pat) ||
			evmgmt_check_target_seconds(t) ||
			evmgmt_check_erlang_a_load(a, aht, pat))
		{
			rejected++;
			continue;
		}
		if ((a - (double) n) * (pat / aht) > 1e6 && ++long_runs > 40)
		{
			skipped++;
			continue;
		}
		oks++;
		if (evmgmt_math_erlang_a(a, (int) n, aht, pat, t, &r) != 0 ||
			!is_prob(r.p_wait) || !(r.p_abandon >= 0.0 && r.p_abandon <= r.p_wait) ||
			!is_prob(r.service_level) || !is_prob(r.occupancy) ||
			!(r.asa >= 0.0 && r.asa < INFINITY) ||
			!(r.mean_wait >= 0.0 && r.mean_wait < INFINITY))
			violation("evmgmt_math_erlang_a", (int) c);
	}
}

/* traffic. */
static void
fuzz_traffic(long combos)
{
	long		c;

	for (c = 0; c < combos; c++)
	{
		double		calls_in = pick_float(c, 0, 100.0);
		double		interval = pick_float(c, 1, 1800.0);
		double		aht = pick_float(c, 2, 180.0);
		double		r;

		calls++;
		if (evmgmt_check_calls(calls_in) || evmgmt_check_interval(interval) ||
			evmgmt_check_aht(aht))
		{
			rejected++;
			continue;
		}
		r = evmgmt_math_traffic(calls_in, interval, aht);
		if (!isfinite(r))
		{
			rejected++;			/* out of range: 22023 */
			continue;
		}
		oks++;
		if (!(r >= 0.0) || signbit(r))
			violation("traffic", (int) c);
	}
}

/*
 * Erlang B by the plain recurrence from zero agents in long double, for
 * counts near the traffic (no scaling needed there): what the started and
 * unrolled recurrence of erlang_math.c must agree with.
 */
static double
plain_erlang_b(double a, int n)
{
	long double inv = 1.0L;
	int			k;

	for (k = 1; k <= n; k++)
		inv = 1.0L + inv * (long double) k / (long double) a;
	return (double) (1.0L / inv);
}

/*
 * The range that 0.2.0 opened, 100,000 to 1,000,000 agents, with traffic a
 * few sqrt(a) either side of the agent count (stable, near-unstable and
 * unstable queues): results in range and monotone in agents, Erlang B
 * within 1e-12 of the plain recurrence from zero, the recurrence the same
 * when stepped, power_of_one equal to the single values
 * bit for bit, and agents_required the smallest count that meets its target
 * according to service_level.
 */
static void
fuzz_large(long combos)
{
	unsigned long long s = 0x9E3779B97F4A7C15ULL;
	long		c;

	for (c = 0; c < combos; c++)
	{
		double		a;
		int			spread,
					n,
					i,
					count;
		ErlangRow	rows[7];

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		a = 100000.0 + (double) (s % 900001000ULL) / 1000.0;
		spread = (int) (4.0 * sqrt(a));
		n = (int) a - spread + (int) ((s >> 32) % (unsigned long long) (2 * spread + 1));
		if (n > ERLANG_MAX_AGENTS - 1)
			n = ERLANG_MAX_AGENTS - 1;
		calls++;
		oks++;

		if (!is_prob(evmgmt_math_erlang_b(a, n)) || !(evmgmt_math_erlang_b(a, n + 1) < evmgmt_math_erlang_b(a, n)))
			violation("large evmgmt_math_erlang_b", (int) c);
		if (!is_prob(evmgmt_math_erlang_c(a, n)) ||
			!(n <= a ? evmgmt_math_erlang_c(a, n) == 1.0 : evmgmt_math_erlang_c(a, n + 1) < evmgmt_math_erlang_c(a, n)))
			violation("large evmgmt_math_erlang_c", (int) c);
		/* rounding may put the service level an ulp or two down near 1 */
		if (!is_prob(evmgmt_math_service_level(a, n, 180.0, 20.0)) ||
			!(evmgmt_math_service_level(a, n + 1, 180.0, 20.0) >= evmgmt_math_service_level(a, n, 180.0, 20.0) - 1e-15))
			violation("large service_level", (int) c);
		if (!(evmgmt_math_asa(a, n, 180.0) >= 0.0) ||
			!(n <= a ? isinf(evmgmt_math_asa(a, n, 180.0)) : evmgmt_math_asa(a, n + 1, 180.0) < evmgmt_math_asa(a, n, 180.0)))
			violation("large asa", (int) c);
		if (!same_when_stepped(a, n))
			violation("large evmgmt_math_erlang_b_advance", (int) c);
		if (c % 20 == 0 && !(fabs(evmgmt_math_erlang_b(a, n) / plain_erlang_b(a, n) - 1.0) <= 1e-12))
			violation("large evmgmt_math_erlang_b against the plain recurrence", (int) c);

		count = evmgmt_math_power_of_one(a, n, 180.0, 20.0, 3, rows);
		if (count != (n + 3 < ERLANG_MAX_AGENTS ? n + 3 : ERLANG_MAX_AGENTS) - (n - 3) + 1)
			violation("large power_of_one", (int) c);
		for (i = 0; i < count; i++)
			if (rows[i].agents != n - 3 + i ||
				rows[i].service_level != evmgmt_math_service_level(a, rows[i].agents, 180.0, 20.0) ||
				rows[i].asa != evmgmt_math_asa(a, rows[i].agents, 180.0))
				violation("large power_of_one", (int) c);

		if (c % 4 == 1)
		{
			ErlangAResult r;

			if (evmgmt_math_erlang_a(a, n, 180.0, 120.0, 20.0, &r) != 0 ||
				!is_prob(r.p_wait) || !(r.p_abandon >= 0.0 && r.p_abandon <= r.p_wait) ||
				!is_prob(r.service_level) || !is_prob(r.occupancy) ||
				!(r.asa >= 0.0 && r.asa < INFINITY))
				violation("large evmgmt_math_erlang_a", (int) c);
		}
		if (c % 4 == 0)
		{
			double		sl = 0.5 + (double) ((s >> 40) % 499) / 1000.0;
			int			r;

			if (evmgmt_math_agents_required(a, 180.0, sl, 20.0, 1.0, 0.0, &r) != 0)
			{
				if (a < ERLANG_MAX_AGENTS - 100.0)
					violation("large agents_required refused", (int) c);
			}
			else if (!(evmgmt_math_service_level(a, r, 180.0, 20.0) >= sl) ||
					 !(r - 1 <= a || evmgmt_math_service_level(a, r - 1, 180.0, 20.0) < sl))
				violation("large agents_required", (int) c);
		}
	}
}

/* Deliberate faults, to show the sanitizers are live. */
static int
inject(const char *what, int argc)
{
	if (strcmp(what, "asan") == 0)
	{
		ErlangRow  *rows = malloc(sizeof(ErlangRow) * 3);
		int			count;

		if (rows == NULL)
			abort();
		/* five steps need 11 rows: heap-buffer-overflow */
		count = evmgmt_math_power_of_one(50.0, 53, 180.0, 20.0, 5, rows);
		free(rows);
		return count == 0;
	}
	if (strcmp(what, "ubsan") == 0)
	{
		volatile int x = INT_MAX - 1;
		int			y = x;

		y += argc;				/* signed overflow when argc >= 2 */
		printf("%d\n", y);
		return 0;
	}
	fprintf(stderr, "unknown fault %s\n", what);
	return 2;
}

/* Run every fuzz group and report. */
int
main(int argc, char **argv)
{
	long		combos = 20000;

	if (argc >= 3 && strcmp(argv[1], "--inject") == 0)
		return inject(argv[2], argc);
	if (argc >= 3 && strcmp(argv[1], "--combos") == 0)
		combos = atol(argv[2]);

	fill_values();
	fuzz_traffic_agents(combos);
	fuzz_service_level(combos);
	fuzz_agents_required(combos);
	fuzz_power_of_one(combos);
	fuzz_erlang_a(combos);
	fuzz_traffic(combos);
	fuzz_large(combos / 10);

	printf("calls %ld, valid %ld, rejected %ld, skipped %ld, violations %ld\n",
		   calls, oks, rejected, skipped, violations);
	return violations == 0 ? 0 : 1;
}

#!/usr/bin/python3
"""Reference values for the evmgmt queueing math, computed with mpmath.

Writes test/sql/erlang_reference.sql, the regression test that compares
every evmgmt Erlang function with these values (relative error, printed
only as pass/fail so that the expected output is stable).

Regenerate with (Debian package python3-mpmath):

    /usr/bin/python3 test/tools/erlang_reference.py

then run the regression test once and check that results/erlang_reference.out
is unchanged (it lists failures, and there must be none).

The formulas here are deliberately different from the C code (src/erlang_math.c):

* Erlang B from the incomplete gamma function,
  B(a, n) = a^n e^-a / Gamma(n + 1, a), evaluated at 60 significant digits;
  the C code uses the forward recurrence on 1/B in double precision.
* Erlang A from closed forms in incomplete gamma functions (see docs/erlang.md),
  and for small cases additionally from a brute-force sum over the states of
  the birth-death chain, where the waiting time of a caller with j callers
  ahead is a hypoexponential variable (explicit density, no Beta-function
  identity); the script stops if the two disagree.
* agents_required from a bisection on the reference service level.

Inputs are Python floats; mpmath converts them exactly, so the reference is
for the very double the SQL test passes.
"""

import math
import os
import sys

import mpmath
from mpmath import mp, mpf

mp.dps = 60

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "sql", "erlang_reference.sql"))

TOL = 1e-9

# the agent limit of the C code (ERLANG_MAX_AGENTS in src/erlang_math.h)
MAX_AGENTS = 1000000


def erlang_b(a, n):
    """Erlang B via the upper incomplete gamma function."""
    a = mpf(a)
    if a == 0:
        return mpf(0)
    return mp.exp(n * mp.log(a) - a - mp.log(mp.gammainc(n + 1, a)))


def erlang_b_recurrence(a, n):
    """Erlang B by the forward recurrence, at 80 digits (cross-check only)."""
    with mp.workdps(80):
        a = mpf(a)
        inv = mpf(1)
        for k in range(1, n + 1):
            inv = 1 + inv * k / a
        return 1 / inv


def erlang_c(a, n):
    a = mpf(a)
    if n <= a:
        return mpf(1)
    b = erlang_b(a, n)
    return n * b / (n - a * (1 - b))


def service_level(a, n, aht, t):
    a = mpf(a)
    if n <= a:
        return mpf(0)
    return 1 - erlang_c(a, n) * mp.exp(-(n - a) * mpf(t) / mpf(aht))


def asa(a, n, aht):
    a = mpf(a)
    if n <= a:
        return mp.inf
    return erlang_c(a, n) * mpf(aht) / (n - a)


def occupancy(a, n):
    return min(mpf(a) / n, mpf(1))


def agents_required(a, aht, target_sl, t, max_occ=1.0, shrinkage=0.0):
    """Smallest n with SL >= target and a / n <= max_occ, then shrinkage."""
    a = mpf(a)
    lo = int(mp.floor(a)) + 1
    lo = max(lo, int(mp.ceil(a / mpf(max_occ))))
    hi = lo
    while service_level(a, hi, aht, t) < target_sl:
        hi = lo + 2 * (hi - lo + 1)
    # invariant: SL(hi) >= target; find the smallest such n in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if service_level(a, mid, aht, t) >= target_sl:
            hi = mid
        else:
            lo = mid + 1
    n = hi
    margin = abs(service_level(a, n, aht, t) - target_sl)
    if n > int(mp.floor(a)) + 1:
        margin = min(margin, abs(service_level(a, n - 1, aht, t) - target_sl))
    if margin < 1e-9:
        sys.exit("agents_required case %r too close to the target to be a stable test" % ((a, aht, target_sl, t),))
    keep = 1 - mpf(shrinkage)
    return int(mp.ceil(n / keep))


def incomplete_gamma(s, lo, hi):
    """Integral of u^(s-1) e^-u from lo to hi.

    mpmath's series for it gives up for some large s (about a million) near
    the peak; there the difference of the two upper tails, at twice the
    precision, which absorbs any cancellation of up to 60 digits.
    """
    try:
        return mp.gammainc(s, lo, hi)
    except mpmath.libmp.NoConvergence:
        with mp.workdps(2 * mp.dps):
            v = mp.gammainc(s, lo) - mp.gammainc(s, hi)
        return +v


def erlang_a(a, n, aht, patience, t, sums=False):
    """Erlang A (M/M/n+M) via incomplete gamma closed forms.

    x = n mu / theta, y = lambda / theta, u0 = exp(-theta t); with
    G(s, lo) = integral_lo^1 u^s e^{-y u} du = y^-(s+1) gamma-inc(s+1, y lo, y):
      S  = x e^y G(x - 1, 0)         sum of the waiting-state weights
      R  = x e^y G(x, 0)             of which answered
      Rt = x e^y G(x, u0)            of which answered within t
      Ws = x e^y (-dG/ds)(x, 0)      theta * E[wait; answered]
    """
    a, aht, patience, t = mpf(a), mpf(aht), mpf(patience), mpf(t)
    if a == 0:
        return dict(p_wait=mpf(0), p_abandon=mpf(0), service_level=mpf(1),
                    asa=mpf(0), mean_wait=mpf(0), occupancy=mpf(0))
    theta = 1 / patience
    x = n * patience / aht
    y = a * patience / aht
    u0 = mp.exp(-theta * t)

    def G(s, lo):
        return y ** (-(s + 1)) * incomplete_gamma(s + 1, y * lo, y)

    pre = x * mp.exp(y)
    S = pre * G(x - 1, 0)
    R = pre * G(x, 0)
    Rt = pre * G(x, u0)
    Ws = pre * -mp.diff(lambda s: G(s, 0), x)
    inv_b = mp.gammainc(n + 1, a) * mp.exp(a) / a ** n
    p_wait = S / (inv_b - 1 + S)
    p_served = 1 - p_wait + p_wait * R / S
    p_ab = p_wait * (S - R) / S
    if sums:
        return S, R, Ws
    return dict(
        p_wait=p_wait,
        p_abandon=p_ab,
        service_level=1 - p_wait + p_wait * Rt / S,
        asa=p_wait * Ws / S / theta / p_served,
        mean_wait=p_ab / theta,
        occupancy=a * p_served / n,
    )


def erlang_a_series(a, n, aht, patience, t):
    """S, R and Ws of erlang_a() summed term by term (cross-check for large cases).

    q_j = prod_{i=1..j} y / (x + i); S = sum q_j, R = sum q_j x / (x + j + 1),
    Ws = sum q_j x / (x + j + 1) * sum_{i=1..j+1} 1 / (x + i).
    """
    a, aht, patience = mpf(a), mpf(aht), mpf(patience)
    x = n * patience / aht
    y = a * patience / aht
    q = mpf(1)
    S = R = Ws = mpf(0)
    h = mpf(0)
    j = 0
    while True:
        w = q * x / (x + j + 1)
        h += 1 / (x + j + 1)
        S += q
        R += w
        Ws += w * h
        r = y / (x + j + 1)
        if r < 1 and q * r / (1 - r) < mpf(10) ** -45 * S:
            return S, R, Ws
        q *= r
        j += 1


def erlang_a_brute(a, n, aht, patience, t, depth):
    """Erlang A by brute force over the birth-death states 0 .. n + depth."""
    with mp.workdps(200):
        return _erlang_a_brute(mpf(a), n, mpf(aht), mpf(patience), mpf(t), depth)


def _erlang_a_brute(a, n, aht, patience, t, depth):
    lam, mu, theta = a / aht, 1 / aht, 1 / patience
    pi = [mpf(1)]
    for k in range(1, n + depth + 1):
        death = k * mu if k <= n else n * mu + (k - n) * theta
        pi.append(pi[-1] * lam / death)
    total = mp.fsum(pi)
    pi = [p / total for p in pi]
    p_wait = mp.fsum(pi[n:])
    queue = mp.fsum((k - n) * pi[k] for k in range(n, len(pi)))
    p_ab = theta * queue / lam            # Little's law on abandonments
    answered_in_t = mp.fsum(pi[:n])       # callers that do not wait
    answered = mp.fsum(pi[:n])
    wait_answered = mpf(0)
    for j in range(depth):
        # j callers ahead: the caller advances at rates n mu + i theta
        rates = [n * mu + i * theta for i in range(j + 1)]
        p_in_t = mpf(0)
        p_ans = mpf(0)
        w_ans = mpf(0)
        for i, li in enumerate(rates):
            c = mpf(1)
            for k, lk in enumerate(rates):
                if k != i:
                    c *= lk / (lk - li)
            # density of the offered wait: sum c_i li e^{-li v}; answered
            # if the caller's own patience (rate theta) outlasts it
            p_in_t += c * li / (li + theta) * (1 - mp.exp(-(li + theta) * t))
            p_ans += c * li / (li + theta)
            w_ans += c * li / (li + theta) ** 2
        answered_in_t += pi[n + j] * p_in_t
        answered += pi[n + j] * p_ans
        wait_answered += pi[n + j] * w_ans
    return dict(p_wait=p_wait, p_abandon=p_ab, service_level=answered_in_t,
                asa=wait_answered / answered, mean_wait=queue / lam,
                occupancy=a * (1 - p_ab) / n)


def lit(v):
    """SQL literal of a double."""
    v = float(v)
    if math.isinf(v):
        return "'Infinity'"
    return repr(v)


def main():
    rows = []

    def add(fn, traffic, agents, aht, target, patience, delta, expected):
        rows.append("('%s', %s, %s, %s, %s, %s, %s, %s)" % (
            fn, lit(traffic), agents, lit(aht), lit(target), lit(patience), delta, lit(expected)))

    # Erlang B alone, including overload and tiny traffic
    b_cases = [(1.0, 1), (1.0, 5), (0.5, 1), (10.0, 5), (10.0, 10), (10.0, 20), (100.0, 80), (100.0, 100),
               (100.0, 130), (1000.0, 1000), (1000.0, 1100), (10000.0, 9000), (10000.0, 10200),
               (50000.0, 50000), (50000.0, 51000), (100000.0, 100000), (1000000.0, 100000),
               (1.0, 100), (42.42, 60), (1e-100, 1), (1e-100, 2), (1e-200, 1), (3e-5, 3),
               # 200,000 to 1,000,000 agents: at, above and below the traffic,
               # far below (overload), and B down to 1e-200 or underflowing to 0
               (200000.0, 200000), (200000.0, 201000), (200000.0, 198000), (199999.5, 200000),
               (500000.0, 500000), (500000.0, 502000), (500000.0, 450000), (500000.0, 1000000),
               (1000000.0, 1000000), (999999.5, 1000000), (990000.0, 1000000), (970000.0, 1000000),
               (1000000.0, 999000), (1000000.0, 700000), (2000000.0, 1000000), (1e7, 1000000),
               (1.0, 1000000), (1e-100, 1000000), (0.25, 1000000)]
    for a, n in b_cases:
        add("erlang_b", a, n, 0, 0, 0, 0, erlang_b(a, n))
    # the reference itself, checked against the recurrence at 80 digits
    for a, n in [(200000.0, 201000), (999999.5, 1000000), (970000.0, 1000000)]:
        if abs(erlang_b_recurrence(a, n) / erlang_b(a, n) - 1) > mpf(10) ** -40:
            sys.exit("Erlang B reference and recurrence disagree for %r" % ((a, n),))

    # Erlang C, service level, ASA, occupancy: 1 .. 50,000 Erlangs,
    # a hair below instability, non-integer traffic, several targets
    c_cases = [(1.0, 2), (1.0, 3), (1.0, 5), (0.5, 1), (10.0, 11), (10.0, 12), (10.0, 15), (10.0, 20),
               (100.0, 101), (100.0, 105), (100.0, 110), (100.0, 120), (100.0, 150),
               (1000.0, 1001), (1000.0, 1010), (1000.0, 1030), (1000.0, 1100),
               (10000.0, 10001), (10000.0, 10050), (10000.0, 10100), (10000.0, 10300),
               (50000.0, 50001), (50000.0, 50100), (50000.0, 50300), (50000.0, 51000),
               (12.345, 15), (777.77, 800), (33333.3, 33600), (0.001, 1), (0.001, 2), (2.5, 3),
               # a hair below instability: agents just above traffic
               (10 - 1e-6, 10), (100 - 1e-9, 100), (10000 - 1e-6, 10000), (50000 - 1e-4, 50000),
               (math.nextafter(100.0, 0.0), 100), (99.99, 100),
               # unstable: exact 1 / 0 / Infinity
               (10.0, 10), (100.5, 100), (60000.0, 50000),
               # 200,000 to 1,000,000 agents: staffed for service, a hair
               # above the traffic (down to one ulp), non-integer traffic,
               # generous staffing (C tiny or underflowing), and unstable
               (200000.0, 200001), (200000.0, 200100), (200000.0, 200500), (199999.9999, 200000),
               (500000.0, 500001), (500000.0, 500200), (500000.0, 501000), (499999.99, 500000),
               (123456.789, 124000), (777777.7, 778000), (400000.0, 1000000),
               (999999.0, 1000000), (999999.999, 1000000), (math.nextafter(1000000.0, 0.0), 1000000),
               (999990.0, 1000000), (999900.0, 1000000), (999000.0, 1000000), (996000.0, 1000000),
               (1000000.0, 1000000), (1000000.5, 1000000), (1000001.0, 999999)]
    targets = [(180.0, 20.0), (180.0, 0.0), (300.0, 60.0), (30.0, 10.0)]
    for a, n in c_cases:
        add("erlang_c", a, n, 0, 0, 0, 0, erlang_c(a, n))
        add("occupancy", a, n, 0, 0, 0, 0, occupancy(a, n))
        for aht, t in targets:
            add("service_level", a, n, aht, t, 0, 0, service_level(a, n, aht, t))
        add("asa", a, n, 180.0, 0, 0, 0, asa(a, n, 180.0))
        add("asa", a, n, 45.5, 0, 0, 0, asa(a, n, 45.5))

    # agents_required: (traffic, aht, target_sl, target_seconds, max_occ, shrinkage)
    req_cases = [(1.0, 180.0, 0.8, 20.0, 1.0, 0.0), (10.0, 180.0, 0.8, 20.0, 1.0, 0.0),
                 (50.0, 180.0, 0.8, 20.0, 1.0, 0.0), (100.0, 240.0, 0.9, 15.0, 1.0, 0.0),
                 (1000.0, 180.0, 0.8, 20.0, 1.0, 0.0), (10000.0, 300.0, 0.95, 10.0, 1.0, 0.0),
                 (20000.0, 180.0, 0.8, 20.0, 1.0, 0.0), (50000.0, 180.0, 0.8, 20.0, 1.0, 0.0),
                 (12.345, 200.0, 0.7, 30.0, 1.0, 0.0), (50.0, 180.0, 0.8, 20.0, 0.85, 0.0),
                 (50.0, 180.0, 0.8, 20.0, 1.0, 0.3), (1000.0, 180.0, 0.8, 20.0, 0.9, 0.35),
                 (5.0, 180.0, 0.99, 0.0, 1.0, 0.0), (0.01, 180.0, 0.5, 20.0, 1.0, 0.0),
                 # the 100,000-Erlang queue that 0.1.0 refused, and up to what
                 # 1,000,000 agents serve
                 (100000.0, 180.0, 0.8, 20.0, 1.0, 0.0), (100000.0, 300.0, 0.95, 5.0, 1.0, 0.0),
                 (200000.0, 180.0, 0.8, 20.0, 1.0, 0.0), (500000.0, 240.0, 0.9, 15.0, 1.0, 0.0),
                 (500000.0, 180.0, 0.8, 20.0, 0.9, 0.3), (777777.7, 180.0, 0.5, 10.0, 1.0, 0.0),
                 (999000.0, 180.0, 0.8, 20.0, 1.0, 0.0), (999980.0, 180.0, 0.8, 20.0, 1.0, 0.0),
                 (999990.0, 60.0, 0.3, 20.0, 1.0, 0.0)]
    req_rows = []
    for a, aht, sl, t, occ, shr in req_cases:
        req_rows.append("(%s, %s, %s, %s, %s, %s, %d)" % (
            lit(a), lit(aht), lit(sl), lit(t), lit(occ), lit(shr), agents_required(a, aht, sl, t, occ, shr)))

    # power_of_one: the DESIGN example and a large operation
    for a, n, aht, t, steps in [(50.0, 53, 180.0, 20.0, 5), (10000.0, 10040, 180.0, 20.0, 3), (2.0, 2, 180.0, 20.0, 4),
                                (500000.0, 500040, 180.0, 20.0, 5), (999993.5, 999997, 180.0, 20.0, 5)]:
        for k in range(max(1, n - steps), min(MAX_AGENTS, n + steps) + 1):
            add("power_of_one.service_level", a, n, aht, t, 0, k - n, service_level(a, k, aht, t))
            add("power_of_one.asa", a, n, aht, t, 0, k - n, asa(a, k, aht))
            add("power_of_one.occupancy", a, n, aht, t, 0, k - n, occupancy(a, k))

    # Erlang A: (traffic, agents, aht, patience, target)
    a_cases = [(10.0, 10, 180.0, 120.0, 20.0), (50.0, 52, 180.0, 120.0, 20.0), (50.0, 45, 180.0, 300.0, 20.0),
               (100.0, 95, 240.0, 60.0, 30.0), (1000.0, 980, 180.0, 90.0, 20.0), (1000.0, 1020, 180.0, 600.0, 20.0),
               (10000.0, 9900, 180.0, 180.0, 20.0), (10000.0, 10050, 300.0, 60.0, 10.0),
               (50000.0, 49000, 180.0, 30.0, 20.0), (2.5, 3, 200.0, 50.0, 0.0), (5.0, 1, 180.0, 1800.0, 60.0),
               (0.3, 1, 180.0, 10.0, 20.0), (3.7, 4, 100.0, 100.0, 15.0), (1.0, 2, 60.0, 6000.0, 5.0),
               # 200,000 to 1,000,000 agents, over- and understaffed
               (200000.0, 200000, 180.0, 120.0, 20.0), (500000.0, 499000, 180.0, 60.0, 20.0),
               (500000.0, 501000, 300.0, 600.0, 30.0), (1000000.0, 1000000, 180.0, 120.0, 20.0),
               (1000000.0, 990000, 180.0, 300.0, 20.0), (999000.0, 1000000, 300.0, 30.0, 10.0)]
    brute_depth = {(3.7, 4): 90, (0.3, 1): 40, (2.5, 3): 60, (10.0, 10): 60}
    for a, n, aht, pat, t in a_cases:
        ref = erlang_a(a, n, aht, pat, t)
        if (a, n) in brute_depth:
            brute = erlang_a_brute(a, n, aht, pat, t, brute_depth[(a, n)])
            for k, v in ref.items():
                if abs(brute[k] - v) > mpf(10) ** -25 * abs(v):
                    sys.exit("Erlang A closed form and brute force disagree on %s for %r: %s vs %s"
                             % (k, (a, n, aht, pat, t), mpmath.nstr(v, 20), mpmath.nstr(brute[k], 20)))
        if n >= 100000:
            for name, closed, summed in zip(("S", "R", "Ws"), erlang_a(a, n, aht, pat, t, sums=True),
                                            erlang_a_series(a, n, aht, pat, t)):
                if abs(closed / summed - 1) > mpf(10) ** -30:
                    sys.exit("Erlang A closed form and series disagree on %s for %r: %s vs %s"
                             % (name, (a, n, aht, pat, t), mpmath.nstr(closed, 20), mpmath.nstr(summed, 20)))
        for k, v in ref.items():
            add("erlang_a." + k, a, n, aht, t, pat, 0, v)

    with open(OUT, "w") as f:
        f.write("""-- Generated by test/tools/erlang_reference.py (mpmath, %d digits); do not edit.
-- Compares every evmgmt Erlang function with high-precision reference values:
-- relative error at most %g (exact match for 0, 1 and Infinity).
CREATE TEMP TABLE erlang_ref (
	fn text, traffic float8, agents int, aht float8, target float8, patience float8, delta int, expected float8);
INSERT INTO erlang_ref VALUES
%s;

CREATE TEMP TABLE erlang_got AS
SELECT r.*,
	CASE r.fn
		WHEN 'erlang_b' THEN evmgmt.erlang_b(r.traffic, r.agents)
		WHEN 'erlang_c' THEN evmgmt.erlang_c(r.traffic, r.agents)
		WHEN 'occupancy' THEN evmgmt.occupancy(r.traffic, r.agents)
		WHEN 'service_level' THEN evmgmt.service_level(r.traffic, r.agents, r.aht, r.target)
		WHEN 'asa' THEN evmgmt.asa(r.traffic, r.agents, r.aht)
		WHEN 'power_of_one.service_level' THEN
			(SELECT p.service_level FROM evmgmt.power_of_one(r.traffic, r.agents, r.aht, r.target, 5) p WHERE p.delta = r.delta)
		WHEN 'power_of_one.asa' THEN
			(SELECT p.asa FROM evmgmt.power_of_one(r.traffic, r.agents, r.aht, r.target, 5) p WHERE p.delta = r.delta)
		WHEN 'power_of_one.occupancy' THEN
			(SELECT p.occupancy FROM evmgmt.power_of_one(r.traffic, r.agents, r.aht, r.target, 5) p WHERE p.delta = r.delta)
		WHEN 'erlang_a.p_wait' THEN (evmgmt.erlang_a(r.traffic, r.agents, r.aht, r.patience, r.target)).p_wait
		WHEN 'erlang_a.p_abandon' THEN (evmgmt.erlang_a(r.traffic, r.agents, r.aht, r.patience, r.target)).p_abandon
		WHEN 'erlang_a.service_level' THEN (evmgmt.erlang_a(r.traffic, r.agents, r.aht, r.patience, r.target)).service_level
		WHEN 'erlang_a.asa' THEN (evmgmt.erlang_a(r.traffic, r.agents, r.aht, r.patience, r.target)).asa
		WHEN 'erlang_a.mean_wait' THEN (evmgmt.erlang_a(r.traffic, r.agents, r.aht, r.patience, r.target)).mean_wait
		WHEN 'erlang_a.occupancy' THEN (evmgmt.erlang_a(r.traffic, r.agents, r.aht, r.patience, r.target)).occupancy
	END AS got
FROM erlang_ref r;

CREATE TEMP VIEW erlang_cmp AS
SELECT fn, traffic, agents, aht, target, patience, delta, expected, got,
	CASE WHEN got = expected THEN 0
		 WHEN expected = 0 OR got IS NULL THEN 'Infinity'
		 ELSE abs(got - expected) / abs(expected) END AS rel_err
FROM erlang_got;

-- one line per function: is the largest relative error within tolerance?
-- (a NULL result counts as an infinite error, NaN sorts above every number)
SELECT fn, count(*) AS cases, max(agents) AS max_agents, max(rel_err) <= %g AS max_rel_err_within_tolerance
FROM erlang_cmp GROUP BY fn ORDER BY fn;

-- the cases outside tolerance, with the figures (expected: none)
SELECT * FROM erlang_cmp WHERE NOT rel_err <= %g ORDER BY fn, traffic, agents;

-- agents_required: exact agent counts
CREATE TEMP TABLE erlang_req (traffic float8, aht float8, target_sl float8, target float8,
	max_occupancy float8, shrinkage float8, expected int);
INSERT INTO erlang_req VALUES
%s;
SELECT count(*) AS cases, bool_and(evmgmt.agents_required(traffic, aht, target_sl, target, max_occupancy, shrinkage) = expected) AS all_exact
FROM erlang_req;
SELECT r.*, evmgmt.agents_required(traffic, aht, target_sl, target, max_occupancy, shrinkage) AS got
FROM erlang_req r
WHERE evmgmt.agents_required(traffic, aht, target_sl, target, max_occupancy, shrinkage) <> expected;
""" % (mp.dps, TOL, ",\n".join(rows), TOL, TOL, ",\n".join(req_rows)))
    print("wrote %s: %d function values, %d agents_required cases" % (OUT, len(rows), len(req_rows)))


if __name__ == "__main__":
    main()

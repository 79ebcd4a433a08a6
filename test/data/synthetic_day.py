#!/usr/bin/env python3
"""Synthetic day of interval data for the detection tests (deterministic).

    python3 test/data/synthetic_day.py T0 FIRST LAST [--bad]

prints CSV rows for interval_inbox (18 columns) of site S1 for the 15-minute
intervals FIRST..LAST (0..95) of the day starting at T0 (ISO timestamp), with
these conditions (k = interval index):

  qout    spec, collab: outage k20-23 (nothing handled)       -> system sev1
          aa: service level 50 % k21-25                        -> inhibited by it
  qvol    spec: 160 offered against 100 forecast k30-35        -> demand sev3
  qstaff  spec: 28 of 40 scheduled staffed, 20 % k40-47        -> capacity sev3, raised to sev2
  qaht    collab: AHT 420 s against 300 forecast k50-53        -> process sev3 (aht_inflation)
  qesc    spec: 30 % escalated against 5 % k60-63              -> process sev3 (escalation_rate_spike)
  qblip   spec: single intervals at 30 % k10 and k70           -> nothing
  qdip    spec: 50 % for exactly the sev3 sustain time, k80-81 -> nothing
  qmaint  spec: 40 % k84-87 inside a maintenance window        -> recorded only
  qflap   collab: outage every other interval from k88          -> system sev1, flapping, paged once

--bad adds three rows the inbox must quarantine (bad time, handled > offered,
unknown site).  --history D prints instead the qesc series D days earlier
(every interval, 5 % escalated), the baseline of the escalation-rate rule.
"""
import sys
from datetime import datetime, timedelta

QUEUES = [('qout', 'spec'), ('qout', 'collab'), ('qout', 'aa'), ('qvol', 'spec'), ('qstaff', 'spec'),
          ('qaht', 'collab'), ('qesc', 'spec'), ('qblip', 'spec'), ('qdip', 'spec'), ('qmaint', 'spec'),
          ('qflap', 'collab')]


def row(site, queue, pool, start, sl=0.85, offered=100, handled=None, staffed=40, aht=300, escalated=5):
    handled = offered if handled is None else handled
    answered = round(sl * handled)
    return ','.join(str(v) for v in (
        site, queue, pool, start.isoformat(), 15, offered, handled, 0, answered, 20, aht, staffed, 40, 100, 300,
        min(2, handled), min(escalated, handled), 3))


def interval(queue, pool, k, start):
    if queue == 'qout' and pool in ('spec', 'collab') and 20 <= k <= 23:
        return row('S1', queue, pool, start, sl=0, handled=0)
    if queue == 'qout' and pool == 'aa' and 21 <= k <= 25:
        return row('S1', queue, pool, start, sl=0.5)
    if queue == 'qvol' and 30 <= k <= 35:
        return row('S1', queue, pool, start, sl=0.45, offered=160)
    if queue == 'qstaff' and 40 <= k <= 47:
        return row('S1', queue, pool, start, sl=0.2, staffed=28)
    if queue == 'qaht' and 50 <= k <= 53:
        return row('S1', queue, pool, start, sl=0.5, aht=420)
    if queue == 'qesc' and 60 <= k <= 63:
        return row('S1', queue, pool, start, sl=0.5, escalated=30)
    if queue == 'qblip' and k in (10, 70):
        return row('S1', queue, pool, start, sl=0.3)
    if queue == 'qdip' and k in (80, 81):
        return row('S1', queue, pool, start, sl=0.5)
    if queue == 'qmaint' and 84 <= k <= 87:
        return row('S1', queue, pool, start, sl=0.4)
    if queue == 'qflap' and k >= 88 and k % 2 == 0:
        return row('S1', queue, pool, start, sl=0, handled=0)
    return row('S1', queue, pool, start)


def main():
    t0 = datetime.fromisoformat(sys.argv[1])
    if '--history' in sys.argv:
        days = int(sys.argv[sys.argv.index('--history') + 1])
        for k in range(96):
            print(row('S1', 'qesc', 'spec', t0 - timedelta(days=days) + timedelta(minutes=15 * k)))
        return
    first, last = int(sys.argv[2]), int(sys.argv[3])
    for k in range(first, last + 1):
        start = t0 + timedelta(minutes=15 * k)
        for queue, pool in QUEUES:
            print(interval(queue, pool, k, start))
    if '--bad' in sys.argv:
        start = t0 + timedelta(minutes=15 * first)
        print('S1,qvol,spec,not-a-time,15,100,100,0,85,20,300,40,40,100,300,2,5,3')
        print('S1,qvol,spec,%s,15,100,120,0,85,20,300,40,40,100,300,2,5,3' % start.isoformat())
        print('S9,qvol,spec,%s,15,100,100,0,85,20,300,40,40,100,300,2,5,3' % start.isoformat())


if __name__ == '__main__':
    main()

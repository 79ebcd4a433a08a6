#!/usr/bin/env bash
# test/tools/stress.sh [run.sh args]: the whole test suite (bash test/run.sh)
# on a busy machine: stress-ng --cpu 2 (Debian's stress-ng) keeps two cores
# busy for the whole run, as a shared CI machine would.  stress-ng is stopped
# at the end whatever happens (failure, Ctrl-C, kill).  The exit status and
# the closing "N passed, N failed" line are the suite's; the line before it
# gives the duration and the load.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash test/tools/deps.sh
workers=${STRESS_CPU:-2}

stress_pid=""
stop_stress() {
	if [ -n "$stress_pid" ] && kill -0 "$stress_pid" 2>/dev/null; then
		# stress-ng's parent stops its workers on SIGTERM
		kill -TERM "$stress_pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$stress_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$stress_pid" 2>/dev/null || true
		wait "$stress_pid" 2>/dev/null || true
	fi
	stress_pid=""
}
trap stop_stress EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

stress-ng --cpu "$workers" --cpu-method all --timeout 0 --quiet &
stress_pid=$!
sleep 1
kill -0 "$stress_pid" 2>/dev/null || { echo "stress.sh: stress-ng did not start" >&2; exit 1; }
load_before=$(cut -d' ' -f1 /proc/loadavg)

start=$SECONDS
set +e
bash test/run.sh "$@"
rc=$?
set -e
elapsed=$((SECONDS - start))
load_after=$(cut -d' ' -f1 /proc/loadavg)
stop_stress
echo "stress.sh: the suite under stress-ng --cpu $workers took ${elapsed} s (load average ${load_before} at start, ${load_after} at end)"
# the closing line stays the suite's count
[ -s tmp/summary ] && cat tmp/summary
exit $rc

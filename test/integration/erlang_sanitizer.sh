#!/usr/bin/env bash
# test/integration/erlang_sanitizer.sh: the Erlang math under AddressSanitizer
# and UndefinedBehaviorSanitizer (TAP).
#
# Builds src/erlang_math.c (the exact code inside evmgmt.so, free of
# PostgreSQL) with test/tools/erlang_driver.c and -fsanitize=address,undefined
# -fno-sanitize-recover=all, runs 122,000 fuzz calls with extreme and
# pseudo-random arguments (2,000 of them from 100,000 to 1,000,000 agents,
# checked also against the plain recurrence and for bit-identical stepping),
# and fails on any sanitizer report or out-of-range result.  Two further checks inject a heap overflow and a signed overflow
# and require the sanitizers to catch them, so this test can fail.
# Needs no database; takes a few seconds.
set -uo pipefail
cd "$(dirname "$0")/../.."

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "1..4"

cc="${CC:-gcc}"
if "$cc" -std=gnu11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -Wall -Wextra -Werror -Isrc \
	test/tools/erlang_driver.c src/erlang_math.c -lm -o "$tmp/driver" 2>"$tmp/build.log"; then
	echo "ok 1 - driver builds with -fsanitize=address,undefined"
else
	echo "not ok 1 - driver builds with -fsanitize=address,undefined"
	sed 's/^/# /' "$tmp/build.log"
fi

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

if [ -x "$tmp/driver" ]; then
	"$tmp/driver" >"$tmp/run.out" 2>"$tmp/run.err"
	rc=$?
else
	rc=127
fi
if [ "$rc" -eq 0 ] && ! grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' "$tmp/run.err"; then
	echo "ok 2 - fuzz run clean under the sanitizers: $(cat "$tmp/run.out")"
else
	echo "not ok 2 - fuzz run clean under the sanitizers (exit $rc)"
	sed 's/^/# /' "$tmp/run.out" "$tmp/run.err" | head -n 40
fi

# The harness must be able to fail: a heap overflow and a signed overflow.
"$tmp/driver" --inject asan >/dev/null 2>"$tmp/asan.err"
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'AddressSanitizer: heap-buffer-overflow' "$tmp/asan.err"; then
	echo "ok 3 - an injected heap overflow is reported"
else
	echo "not ok 3 - an injected heap overflow is reported (exit $rc)"
	sed 's/^/# /' "$tmp/asan.err" | head -n 20
fi

"$tmp/driver" --inject ubsan >/dev/null 2>"$tmp/ubsan.err"
rc=$?
if [ "$rc" -ne 0 ] && grep -q 'runtime error: signed integer overflow' "$tmp/ubsan.err"; then
	echo "ok 4 - an injected signed overflow is reported"
else
	echo "not ok 4 - an injected signed overflow is reported (exit $rc)"
	sed 's/^/# /' "$tmp/ubsan.err" | head -n 20
fi

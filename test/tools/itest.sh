# test/tools/itest.sh: helpers for the integration scripts (sourced, bash).
#
# TAP output (plan, ok, is), bounded polling (wait_for), the HTTP and SMTP
# test sinks started on free ports of 127.0.0.1, a scratch database with
# the extension, evmgmt.* settings changed with ALTER SYSTEM and undone at
# exit, and one trap that stops everything the script started.
#
# The trap also leaves the server as the script found it: a script that
# stops, kills or restarts the server (crash tests) and fails half-way
# would otherwise leave it down for every script after it.  If the server
# answered when this file was sourced and does not answer at exit, the trap
# stops what is left of it (immediate) and starts it again, waiting until it
# answers, before it resets settings and drops databases.

IT_DIR=$(mktemp -d /tmp/evmgmt-it.XXXXXX)
IT_PIDS=()
IT_DBS=()
IT_SETTINGS=()
IT_CLEANUP=()
IT_N=0
IT_FAILED=0

# server_up: the server accepts connections and runs queries
server_up() { psql -XqAt -d postgres -c "SELECT 1" >/dev/null 2>&1; }
IT_SERVER_WAS_UP=0
server_up && IT_SERVER_WAS_UP=1

# it_restore_server: bring the server back if the script left it down
it_restore_server() {
	local i
	[ "$IT_SERVER_WAS_UP" -eq 1 ] || return 0
	server_up && return 0
	echo "# the server does not answer at exit: restarting it" >&2
	# a stop that hung (or a server half down) first goes away for good
	pg_ctlcluster 15 regress stop -m immediate >/dev/null 2>&1
	pg_ctlcluster 15 regress start >/dev/null 2>&1
	for i in $(seq 1 600); do
		server_up && return 0
		sleep 0.1
	done
	echo "# the server did not come back within 60 s" >&2
	return 1
}

it_cleanup() {
	local p d s c
	it_restore_server
	for c in "${IT_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1; done
	for p in "${IT_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${IT_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for s in "${IT_SETTINGS[@]}"; do psql -XqAt -d postgres -c "ALTER SYSTEM RESET $s" >/dev/null 2>&1; done
	psql -XqAt -d postgres -c "SELECT pg_reload_conf()" >/dev/null 2>&1
	# --force: a session of the script's own (a client killed mid-query whose
	# backend still runs) must not keep its database alive for the next scripts
	for d in "${IT_DBS[@]}"; do dropdb --if-exists --force "$d" >/dev/null 2>&1; done
	rm -rf "$IT_DIR"
}
trap it_cleanup EXIT
# a signal still runs the cleanup (the EXIT trap), so nothing is left behind
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

plan() { echo "1..$1"; }

# ok COND_EXIT_STATUS DESCRIPTION
ok() {
	IT_N=$((IT_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $IT_N - $2"
	else
		echo "not ok $IT_N - $2"
		IT_FAILED=$((IT_FAILED + 1))
	fi
}

# is GOT EXPECTED DESCRIPTION
is() {
	if [ "$1" == "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		echo "#   got:      '$1'"
		echo "#   expected: '$2'"
	fi
}

diag() { echo "# $*"; }

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds.
wait_for() {
	local limit=$1 t=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		t=$((t + 1))
		[ $t -ge $((limit * 10)) ] && return 1
		sleep 0.1
	done
	return 0
}

# q DB SQL: one value
q() { psql -XqAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

# sql_true DB SQL: succeeds when SQL returns t
sql_true() { [ "$(psql -XqAt -d "$1" -c "$2" 2>/dev/null)" = "t" ]; }

# new_db NAME: a database with the extension, dropped at exit
new_db() {
	IT_DBS+=("$1")
	dropdb --if-exists "$1" >/dev/null 2>&1
	createdb "$1"
	q "$1" "CREATE EXTENSION evmgmt" >/dev/null
}

# set_guc NAME VALUE: ALTER SYSTEM + reload, waiting until new sessions see
# it (then the postmaster has already signalled the workers).  VALUE must be
# in the canonical form SHOW prints (2s, 200ms, 3, on).
set_guc() {
	IT_SETTINGS+=("$1")
	q postgres "ALTER SYSTEM SET $1 = '$2'" >/dev/null
	q postgres "SELECT pg_reload_conf()" >/dev/null
	wait_for 10 sql_true postgres "SELECT current_setting('$1') = '$2'" ||
		{ echo "Bail out! $1 did not become $2"; exit 1; }
}

# worker_pid DB: pid of the evmgmt worker of DB (empty if none)
worker_pid() {
	q postgres "SELECT pid FROM pg_stat_activity WHERE backend_type = 'evmgmt worker' AND datname = '$1'"
}
has_worker() { [ -n "$(worker_pid "$1")" ]; }
no_worker() { [ -z "$(worker_pid "$1")" ]; }

# start_http_sink NAME [sink_http.py options]: sets SINK_PORT, log in $IT_DIR/NAME.log
start_http_sink() {
	local name=$1
	shift
	rm -f "$IT_DIR/$name.port"
	python3 test/tools/sink_http.py --port-file "$IT_DIR/$name.port" --log "$IT_DIR/$name.log" "$@" &
	IT_PIDS+=($!)
	wait_for 10 test -s "$IT_DIR/$name.port" || { echo "Bail out! sink $name did not start"; exit 1; }
	SINK_PORT=$(cat "$IT_DIR/$name.port")
	touch "$IT_DIR/$name.log"
}

# start_smtp_sink NAME: sets SINK_PORT
start_smtp_sink() {
	local name=$1
	rm -f "$IT_DIR/$name.port"
	python3 test/tools/sink_smtp.py --port-file "$IT_DIR/$name.port" --log "$IT_DIR/$name.log" &
	IT_PIDS+=($!)
	wait_for 10 test -s "$IT_DIR/$name.port" || { echo "Bail out! sink $name did not start"; exit 1; }
	SINK_PORT=$(cat "$IT_DIR/$name.port")
	touch "$IT_DIR/$name.log"
}

# free_port: a port on 127.0.0.1 that nobody listens on
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# log_lines NAME: number of requests a sink logged
log_lines() { wc -l <"$IT_DIR/$1.log"; }

# cpu_ticks PID: user + system CPU time of a process, in clock ticks
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

it_done() {
	[ "$IT_FAILED" -eq 0 ]
}

# sink_has NAME N: the sink logged at least N requests
sink_has() { [ "$(log_lines "$1")" -ge "$2" ]; }

# test/demo/lib.bash: what the shell parts of the demo share (sourced; not a
# part itself: test/demo.sh runs only *.sql and *.sh).  The demo database,
# a scratch directory and the processes to stop at exit, psql helpers, a
# bounded wait, and the local HTTP and SMTP sinks.
db=evmgmt_demo
work=$(mktemp -d)
pids=()
demo_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap demo_cleanup EXIT
q() { command psql -X -q -At -d "$db" -v ON_ERROR_STOP=1 "$@"; }
show() { command psql -X -q -d "$db" -P pager=off -v ON_ERROR_STOP=1 "$@"; }
wait_until() {  # seconds sql: poll until the query returns t
	local end=$((SECONDS + $1))
	until [ "$(q -c "$2" 2>/dev/null)" = "t" ]; do
		[ $SECONDS -lt $end ] || { echo "demo: timed out waiting for: $2" >&2; exit 1; }
		sleep 0.2
	done
}
# start_sinks SECRET: an HTTP sink (checking Standard Webhooks signatures
# with SECRET) and an SMTP sink on free ports; sets http and smtp
start_sinks() {
	python3 test/tools/sink_http.py --port-file "$work/http.port" --log "$work/http.log" --secret "$1" & pids+=($!)
	python3 test/tools/sink_smtp.py --port-file "$work/smtp.port" --log "$work/smtp.log" & pids+=($!)
	for f in http smtp; do
		for _ in $(seq 50); do [ -s "$work/$f.port" ] && break; sleep 0.1; done
	done
	http=$(cat "$work/http.port")
	smtp=$(cat "$work/smtp.port")
}

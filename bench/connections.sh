#!/usr/bin/env bash
# Measures what idle client connections cost a `sluice serve` process:
# resident memory and Go stack/heap per connection, and the broker's CPU
# while they idle. Each run starts a fresh broker on free loopback ports,
# reads its memory, opens N connections that each do one ApiVersions round
# trip (what every client sends first) and then idle, waits for the broker
# to settle, reads its memory again and its CPU time over IDLE seconds.
#
# The per-connection figures are (after - before) / N: the broker's own
# memory, not the kernel's socket buffers, which no process's RSS counts.
#
# Usage: bench/connections.sh
# Env: RUNS (3), CONNECTIONS (10000), SETTLE (5, seconds after the last
#      connection opened), IDLE (10, seconds of CPU sampling), SLUICE_SET
#      (key=value), SLUICE_BIN (a sluice binary to measure instead of
#      building this tree's, for before/after figures).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${RUNS:-3}
conns=${CONNECTIONS:-10000}
settle=${SETTLE:-5}
idle=${IDLE:-10}

log() { printf 'connections: %s\n' "$*" >&2; }

. "$here/lib.sh"
bench_workdir connections

# Both sides hold N descriptors: the broker (plus its own files) and the
# client. Go raises the soft limit to the hard one; the hard one must do.
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((conns + 1000)) ]; then
	log "ulimit -Hn is $(ulimit -Hn); $conns connections need $((conns + 1000))"
	exit 1
fi
ulimit -n "$(ulimit -Hn)"

build_binaries


sets=(--set "max.connections=$((conns + 100))")
[ -n "${SLUICE_SET:-}" ] && sets+=(--set "$SLUICE_SET")
hz=$(getconf CLK_TCK)
echo "run connections rss_before_kib rss_after_kib rss_per_conn_bytes stack_per_conn_bytes heap_per_conn_bytes goroutines_per_conn idle_cpu_pct"
for i in $(seq 1 "$runs"); do
	rm -rf "$work/data"
	env -u SLUICE_BROKERS "$work/sluice" serve --data-dir "$work/data" --listen 127.0.0.1:0 --http 127.0.0.1:0 \
		"${sets[@]}" >/dev/null 2>"$work/sluice.log" &
	broker=$!
	pids+=("$broker")
	addr=$(wait_line "$work/sluice.log" 'accepting Kafka clients on ')
	http=$(wait_line "$work/sluice.log" 'on http:\/\/' | tr -d '/')
	http="http://$http"
	sleep "$settle"
	rss0=$(rss_kib "$broker")
	stack0=$(metric "$http" go_memstats_stack_inuse_bytes)
	heap0=$(metric "$http" go_memstats_heap_inuse_bytes)
	g0=$(metric "$http" go_goroutines)

	# The client holds its connections until its stdin closes.
	mkfifo "$work/hold"
	"$work/manyclients" connections -brokers "$addr" -n "$conns" <"$work/hold" >"$work/client.out" &
	client=$!
	pids+=("$client")
	exec 3>"$work/hold"
	wait_line "$work/client.out" 'open ' >/dev/null
	sleep "$settle"
	rss1=$(rss_kib "$broker")
	stack1=$(metric "$http" go_memstats_stack_inuse_bytes)
	heap1=$(metric "$http" go_memstats_heap_inuse_bytes)
	g1=$(metric "$http" go_goroutines)
	t0=$(cpu_ticks "$broker")
	sleep "$idle"
	t1=$(cpu_ticks "$broker")
	exec 3>&-
	wait "$client"
	rm -f "$work/hold"
	kill -TERM "$broker"
	wait "$broker" || true
	pids=()

	awk -v i="$i" -v n="$conns" -v r0="$rss0" -v r1="$rss1" -v s0="$stack0" -v s1="$stack1" \
		-v h0="$heap0" -v h1="$heap1" -v g0="$g0" -v g1="$g1" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v idle="$idle" \
		'BEGIN { printf "%d %d %d %d %.0f %.0f %.0f %.2f %.2f\n", i, n, r0, r1, (r1-r0)*1024/n, (s1-s0)/n, (h1-h0)/n, (g1-g0)/n, (t1-t0)*100/hz/idle }'
done

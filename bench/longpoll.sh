#!/usr/bin/env bash
# Measures what caught-up consumers cost a `sluice serve` process while
# nothing is produced: CONSUMERS connections, each long-polling its own
# empty partition (Fetch at the log end, min bytes 1, max wait MAX_WAIT,
# the Java client's default 500 ms; franz-go's is 5 s). Each run starts a
# fresh broker on free loopback ports, creates one topic of CONSUMERS
# partitions, starts the consumers, waits SETTLE seconds and reads the
# broker's CPU time over IDLE seconds; the client reports the fetches
# answered per second (each one a long poll that expired).
#
# Usage: bench/longpoll.sh
# Env: RUNS (3), CONSUMERS (1000), MAX_WAIT (500ms), SETTLE (5), IDLE (10),
#      SLUICE_SET (key=value), SLUICE_BIN (a sluice binary to
#      measure instead of building this tree's, for before/after figures).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${RUNS:-3}
consumers=${CONSUMERS:-1000}
max_wait=${MAX_WAIT:-500ms}
settle=${SETTLE:-5}
idle=${IDLE:-10}

log() { printf 'longpoll: %s\n' "$*" >&2; }

. "$here/lib.sh"
bench_workdir longpoll

build_binaries


sets=()
[ -n "${SLUICE_SET:-}" ] && sets=(--set "$SLUICE_SET")
hz=$(getconf CLK_TCK)
echo "run consumers max_wait fetches_per_sec idle_cpu_pct"
for i in $(seq 1 "$runs"); do
	rm -rf "$work/data"
	env -u SLUICE_BROKERS "$work/sluice" serve --data-dir "$work/data" --listen 127.0.0.1:0 --http 127.0.0.1:0 \
		"${sets[@]}" >/dev/null 2>"$work/sluice.log" &
	broker=$!
	pids+=("$broker")
	addr=$(wait_line "$work/sluice.log" 'accepting Kafka clients on ')

	mkfifo "$work/hold"
	"$work/manyclients" longpoll -brokers "$addr" -consumers "$consumers" -max-wait "$max_wait" \
		<"$work/hold" >"$work/client.out" &
	client=$!
	pids+=("$client")
	exec 3>"$work/hold"
	wait_line "$work/client.out" 'polling ' >/dev/null
	sleep "$settle"
	t0=$(cpu_ticks "$broker")
	sleep "$idle"
	t1=$(cpu_ticks "$broker")
	exec 3>&-
	wait "$client"
	rm -f "$work/hold"
	kill -TERM "$broker"
	wait "$broker" || true
	pids=()
	rate=$(wait_line "$work/client.out" 'fetches_per_sec ')
	awk -v i="$i" -v n="$consumers" -v w="$max_wait" -v r="$rate" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v idle="$idle" \
		'BEGIN { printf "%d %d %s %s %.2f\n", i, n, w, r, (t1-t0)*100/hz/idle }'
done

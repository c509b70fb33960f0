#!/usr/bin/env bash
# Measures how fast a `sluice serve` process that holds many consumer
# groups starts, and what the idle groups cost it. One broker on free
# loopback ports gets NUM_GROUPS groups, each committing offsets for
# PARTITIONS partitions (simple groups: generation -1, no member), then
# is restarted RUNS times after a clean stop and RUNS times after kill -9.
# Each restart is timed from the moment the process is started to the
# first group's offsets answering and to every group's offsets answering
# right (OffsetFetch v8, 500 groups a request): the broker serves only
# once its group coordinator has replayed __consumer_offsets. The
# replay's own time is groups_stage_ms: how long /readyz named that
# start-up stage (polled every millisecond; -1 when shorter than a poll).
# After kill -9 the other figures also include the wait for the old
# broker session to expire, which comes before the replay.
#
# Memory per idle group is the broker's RSS and Go heap after a clean
# restart, minus the same figures of the fresh broker before the groups
# existed, over NUM_GROUPS; idle CPU is sampled over IDLE seconds.
#
# Usage: bench/groups.sh
# Env: RUNS (3), NUM_GROUPS (10000; bash owns $GROUPS), PARTITIONS (4),
#      SETTLE (5, seconds before memory is read), IDLE (10), SLUICE_SET
#      (key=value), SLUICE_BIN (a sluice binary to measure instead of
#      building this tree's, for before/after figures).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${RUNS:-3}
groups=${NUM_GROUPS:-10000}
partitions=${PARTITIONS:-4}
settle=${SETTLE:-5}
idle=${IDLE:-10}

log() { printf 'groups: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-groups.XXXXXX")
broker=
cleanup() {
	[ -n "$broker" ] && { kill -TERM "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; }
	[ -n "${KEEP:-}" ] && { log "kept $work"; return; }
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$here/lib.sh"
build_binaries


# Fixed ports, so that clients and restarts find the broker where it was.
read -r port http_port < <(python3 -c '
import socket
s1, s2 = socket.socket(), socket.socket()
s1.bind(("127.0.0.1", 0)); s2.bind(("127.0.0.1", 0))
print(s1.getsockname()[1], s2.getsockname()[1])')
addr=127.0.0.1:$port
http=http://127.0.0.1:$http_port
sets=()
[ -n "${SLUICE_SET:-}" ] && sets=(--set "$SLUICE_SET")

# start: launches the broker and sets broker and start_ns (taken just
# before the process exists, so the timings include everything).
start() {
	: >"$work/sluice.log"
	start_ns=$(date +%s%N)
	env -u SLUICE_BROKERS "$work/sluice" serve --data-dir "$work/data" --listen "$addr" --http "127.0.0.1:$http_port" \
		"${sets[@]}" >/dev/null 2>>"$work/sluice.log" &
	broker=$!
}
wait_groups() {
	"$work/manyclients" groups-wait -brokers "$addr" -groups "$groups" -partitions "$partitions" -start "$start_ns" \
		-http "127.0.0.1:$http_port"
}

start
wait_line "$work/sluice.log" 'accepting Kafka clients on ' >/dev/null
sleep "$settle"
rss0=$(rss_kib "$broker")
heap0=$(metric "$http" go_memstats_heap_inuse_bytes)
"$work/manyclients" groups-create -brokers "$addr" -groups "$groups" -partitions "$partitions"

echo "restart run first_group_ms all_groups_ms groups_stage_ms"
for i in $(seq 1 "$runs"); do
	for how in clean kill9; do
		if [ "$how" = clean ]; then kill -TERM "$broker"; else kill -KILL "$broker"; fi
		wait "$broker" 2>/dev/null || true
		start
		wait_groups | python3 -c "import json,sys; d=json.load(sys.stdin); print('$how', $i, d['first_group_ms'], d['all_groups_ms'], d['groups_stage_ms'])"
	done
done

# Memory and CPU of the groups, after one more clean restart.
kill -TERM "$broker"
wait "$broker" 2>/dev/null || true
start
wait_groups >/dev/null
sleep "$settle"
rss1=$(rss_kib "$broker")
heap1=$(metric "$http" go_memstats_heap_inuse_bytes)
t0=$(cpu_ticks "$broker")
sleep "$idle"
t1=$(cpu_ticks "$broker")
awk -v g="$groups" -v r0="$rss0" -v r1="$rss1" -v h0="$heap0" -v h1="$heap1" -v t0="$t0" -v t1="$t1" \
	-v hz="$(getconf CLK_TCK)" -v idle="$idle" \
	'BEGIN { printf "groups %d rss_before_kib %d rss_after_kib %d rss_per_group_bytes %.0f heap_per_group_bytes %.0f idle_cpu_pct %.2f\n",
		g, r0, r1, (r1-r0)*1024/g, (h1-h0)/g, (t1-t0)*100/hz/idle }'

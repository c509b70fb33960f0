#!/usr/bin/env bash
# Measures what replication costs and how fast it fails over, on three
# `sluice serve` processes on this machine: produce MB/s at full speed and
# produce latency at a fixed rate, RF=1 against RF=3 with acks=all
# (alternating runs, medians, the RF=3/RF=1 ratio), then the time from
# kill -9 of a partition leader to the first acks=all produce that succeeds
# on that partition.
#
# All three nodes share this machine's cores and disk, so RF=3 pays three
# times the writes and copies of RF=1 here; on separate machines each node
# pays a third of that. DATA_DIR on a tmpfs (e.g. /dev/shm) takes the disk
# out of the comparison.
#
# Usage: bench/replication.sh
# Env: RUNS (3), RECORDS (200000), RECORD_SIZE (1024), RATE (10000
#      records/s), DURATION (10s, for the fixed-rate run), PARTITIONS (8),
#      DATA_DIR (a temporary directory), SLUICE_SET (key=value for every node).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${RUNS:-3}
records=${RECORDS:-200000}
size=${RECORD_SIZE:-1024}
rate=${RATE:-10000}
duration=${DURATION:-10s}
partitions=${PARTITIONS:-8}

log() { printf 'replication: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-replication.XXXXXX")
data=${DATA_DIR:-$work}
data=$(mktemp -d "$data/sluice-replication-data.XXXXXX")
declare -A pid_of
cleanup() {
	for pid in "${pid_of[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pid_of[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work" "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building sluice"
(cd "$root" && go build -o "$work/sluice" ./cmd/sluice)

# Six free loopback ports: three for clients, three for the quorum.
read -r -a ports < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
voters="1@127.0.0.1:${ports[3]},2@127.0.0.1:${ports[4]},3@127.0.0.1:${ports[5]}"
brokers="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
sets=()
[ -n "${SLUICE_SET:-}" ] && sets=(--set "$SLUICE_SET")

for i in 1 2 3; do
	env -u SLUICE_BROKERS "$work/sluice" serve --data-dir "$data/node-$i" --listen "127.0.0.1:${ports[$((i - 1))]}" --http 127.0.0.1:0 \
		--set "node.id=$i" --set "controller.listener=127.0.0.1:${ports[$((i + 2))]}" \
		--set "controller.quorum.voters=$voters" "${sets[@]}" >/dev/null 2>"$work/node-$i.log" &
	pid_of[$i]=$!
done
for i in 1 2 3; do
	for _ in $(seq 1 300); do
		grep -q "accepting Kafka clients on 127.0.0.1:${ports[$((i - 1))]}" "$work/node-$i.log" && continue 2
		sleep 0.1
	done
	log "node $i did not start:"
	cat "$work/node-$i.log" >&2
	exit 1
done
log "three nodes on $brokers"

sl() { "$work/sluice" "$@" --brokers "$brokers"; }
sl topic create rf1 -p "$partitions" -r 1 >/dev/null
sl topic create rf3 -p "$partitions" -r 3 >/dev/null
bench() { sl bench produce --json --record-size "$size" "$@"; }

for i in $(seq 1 "$runs"); do
	for topic in rf1 rf3; do
		log "run $i/$runs: $topic"
		bench --topic "$topic" --records "$records" >"$work/$topic-max-$i.json"
		bench --topic "$topic" --rate "$rate" --duration "$duration" >"$work/$topic-rate-$i.json"
	done
done

# Failover: kill -9 the leader of rf3/0, then produce one record at a time
# to that partition until one is acknowledged with acks=all.
leader=$(sl topic describe rf3 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["partition_details"][0]["leader"])')
log "kill -9 of node $leader, the leader of rf3/0"
start=$(date +%s.%N)
kill -KILL "${pid_of[$leader]}"
wait "${pid_of[$leader]}" 2>/dev/null || true # reaped here, quietly
unset "pid_of[$leader]"
until echo failover | sl produce rf3 -p 0 --acks all --timeout 2s >/dev/null 2>&1; do sleep 0.05; done
failover=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")

python3 - "$work" "$runs" "$records" "$size" "$rate" "$duration" "$failover" "${SLUICE_SET:-defaults}" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
records, size, rate, duration, failover, cfg = sys.argv[3:9]
def med(topic, load, pick):
    return statistics.median(pick(json.load(open(f"{work}/{topic}-{load}-{i}.json"))) for i in range(1, runs + 1))
rows = [
    ("produce MB/s (max rate)", "max", lambda d: d["mb_per_sec"]),
    (f"produce p50 ms at {rate}/s", "rate", lambda d: d["latency_ms"]["p50"]),
    (f"produce p99 ms at {rate}/s", "rate", lambda d: d["latency_ms"]["p99"]),
]
print(f"medians of {runs} alternating runs; {records} records of {size} B; fixed rate {rate}/s for {duration}; nodes: {cfg}")
print(f"{'figure':<28} {'RF=1':>10} {'RF=3':>10} {'RF=3/RF=1':>10}")
for name, load, pick in rows:
    one, three = med("rf1", load, pick), med("rf3", load, pick)
    print(f"{name:<28} {one:>10.2f} {three:>10.2f} {three / one if one else float('nan'):>10.2f}")
print(f"failover: kill -9 of a leader to the first acks=all produce on its partition: {failover} s")
PY

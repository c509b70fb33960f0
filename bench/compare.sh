#!/usr/bin/env bash
# Runs the same `sluice bench` loads against Sluice and against franz-go's
# kfake (an in-memory fake Kafka, the reference), alternating runs so
# machine noise hits both alike, and prints the median of each figure and
# the sluice/kfake ratio: produce and consume MB/s at full speed, and p99
# produce latency at a fixed rate.
#
# Each round also produces to bench/nullbroker, a broker that stores
# nothing, so the load generator's own ceiling on this machine is measured
# in the same run; the last row is Sluice's produce MB/s as a share of it.
#
# All brokers listen on free loopback ports and are stopped on exit.
# Sluice runs with its defaults (every acknowledged record fsynced) unless
# SLUICE_SET is given, e.g. SLUICE_SET=log.flush.policy=never for kfake's
# no-fsync footing.
#
# Usage: bench/compare.sh
# Env: RUNS (3), RECORDS (200000), RECORD_SIZE (1024), RATE (5000 records/s),
#      DURATION (10s, for the fixed-rate runs), E2E_RATE (10000 records/s),
#      E2E_PARTITIONS (8), SLUICE_SET (key=value).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${RUNS:-3}
records=${RECORDS:-200000}
size=${RECORD_SIZE:-1024}
rate=${RATE:-5000}
duration=${DURATION:-10s}
e2e_rate=${E2E_RATE:-10000}
e2e_partitions=${E2E_PARTITIONS:-8}

log() { printf 'compare: %s\n' "$*" >&2; }

. "$here/lib.sh"
bench_workdir compare

log "building sluice and the kfake runner"
(cd "$root" && go build -o "$work/sluice" ./cmd/sluice)
(cd "$here" && go build -o "$work/kfake" ./kfake && go build -o "$work/nullbroker" ./nullbroker)

# start NAME CMD...: runs CMD in the background with stderr to NAME.log and
# sets addr from its "accepting Kafka clients on ADDR" line.
start() {
	local name=$1
	shift
	"$@" >/dev/null 2>"$work/$name.log" &
	pids+=($!)
	for _ in $(seq 1 300); do
		addr=$(sed -n 's/.*accepting Kafka clients on //p' "$work/$name.log" | head -1)
		[ -n "$addr" ] && return
		sleep 0.1
	done
	log "$name did not start:"
	cat "$work/$name.log" >&2
	exit 1
}

sets=()
[ -n "${SLUICE_SET:-}" ] && sets=(--set "$SLUICE_SET")
start sluice env -u SLUICE_BROKERS "$work/sluice" serve --data-dir "$work/data" --listen 127.0.0.1:0 --http 127.0.0.1:0 "${sets[@]}"
sluice_addr=$addr
start kfake "$work/kfake"
kfake_addr=$addr
start nullbroker "$work/nullbroker"
null_addr=$addr
log "sluice on $sluice_addr${SLUICE_SET:+ ($SLUICE_SET)}, kfake on $kfake_addr"

bench() { "$work/sluice" bench "$@" --json --record-size "$size"; }

for i in $(seq 1 "$runs"); do
	log "run $i/$runs: null broker (the ceiling)"
	bench produce --brokers "$null_addr" --topic "cmp-produce-$i" --records "$records" >"$work/null-produce-$i.json"
	for target in sluice kfake; do
		addr=$sluice_addr
		[ "$target" = kfake ] && addr=$kfake_addr
		log "run $i/$runs: $target"
		bench produce --brokers "$addr" --topic "cmp-produce-$i" --records "$records" >"$work/$target-produce-$i.json"
		bench consume --brokers "$addr" --topic cmp-consume --records "$records" >"$work/$target-consume-$i.json" 2>/dev/null
		bench produce --brokers "$addr" --topic "cmp-rate-$i" --rate "$rate" --duration "$duration" >"$work/$target-rate-$i.json"
		bench e2e --brokers "$addr" --topic "cmp-e2e-$i" --partitions "$e2e_partitions" --rate "$e2e_rate" --duration "$duration" \
			--linger 0 >"$work/$target-e2e-$i.json"
	done
done

python3 - "$work" "$runs" "$records" "$size" "$rate" "$duration" "${SLUICE_SET:-defaults}" "$e2e_rate" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
records, size, rate, duration, sluice_cfg, e2e_rate = sys.argv[3:9]
def med(target, load, pick):
    return statistics.median(pick(json.load(open(f"{work}/{target}-{load}-{i}.json"))) for i in range(1, runs + 1))
rows = [
    ("produce MB/s (max rate)", "produce", lambda d: d["mb_per_sec"], "higher is better"),
    ("consume MB/s", "consume", lambda d: d["mb_per_sec"], "higher is better"),
    (f"produce p99 ms at {rate}/s", "rate", lambda d: d["latency_ms"]["p99"], "lower is better"),
    (f"produce p50 ms at {rate}/s", "rate", lambda d: d["latency_ms"]["p50"], "lower is better"),
    (f"e2e p50 ms at {e2e_rate}/s", "e2e", lambda d: d["latency_ms"]["p50"], "linger 0; lower is better"),
    (f"e2e p99 ms at {e2e_rate}/s", "e2e", lambda d: d["latency_ms"]["p99"], "linger 0; lower is better"),
]
print(f"medians of {runs} alternating runs; {records} records of {size} B; fixed rate {rate}/s for {duration}; sluice: {sluice_cfg}")
print(f"{'figure':<28} {'sluice':>10} {'kfake':>10} {'sluice/kfake':>13}")
for name, load, pick, better in rows:
    s, k = med("sluice", load, pick), med("kfake", load, pick)
    ratio = s / k if k else float("nan")
    print(f"{name:<28} {s:>10.2f} {k:>10.2f} {ratio:>13.2f}  ({better})")
ceiling = med("null", "produce", lambda d: d["mb_per_sec"])
s = med("sluice", "produce", lambda d: d["mb_per_sec"])
print(f"null-broker ceiling MB/s {ceiling:.2f}; sluice produce is {s / ceiling:.2f} of it")
PY

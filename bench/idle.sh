#!/usr/bin/env bash
# Measures what an idle single node costs: CPU (% of one core, from
# /proc/PID/stat) and bytes written to disk (/proc/PID/io write_bytes)
# over SECONDS, after a few seconds past its start-up.
#
# Usage: bench/idle.sh [SECONDS]   (default 30)
# Env: SLUICE_BIN (a built binary; default: build ./cmd/sluice).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-30}
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-idle.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=${SLUICE_BIN:-}
if [ -z "$bin" ]; then
	(cd "$root" && go build -o "$work/sluice" ./cmd/sluice)
	bin=$work/sluice
fi
env -u SLUICE_BIN "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --http "" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q "accepting Kafka clients" "$work/log" && break; sleep 0.05; done
sleep 5 # past start-up
tck=$(getconf CLK_TCK)
read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
w0=$(awk '/^write_bytes/{print $2}' "/proc/$pid/io")
sleep "$secs"
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
w1=$(awk '/^write_bytes/{print $2}' "/proc/$pid/io")
ticks=$(((u1 - u0) + (s1 - s0)))
awk -v t="$ticks" -v c="$tck" -v s="$secs" -v w=$((w1 - w0)) \
	'BEGIN { printf "idle %ds: CPU %.2f%% of one core (%d ticks), %d bytes written\n", s, 100 * t / c / s, t, w }'

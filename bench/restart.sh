#!/usr/bin/env bash
# Measures how soon a restarted node serves again: the time from the exec
# of the new `sluice serve` process to the first acks=all produce that
# succeeds through it, after kill -9 and after a clean stop (SIGTERM), for
# a single node and for one node of a three-node cluster (each node a
# voter and a broker). In the cluster the restarted node is the leader of
# the measured partition (rf3/0, min.insync.replicas=2), and the producer
# is given only the restarted node as bootstrap, so the figure includes
# the node's registration, its Metadata answer and the partition's new
# leader.
#
# The producer is `sluice produce --acks all --timeout 2s`, run in a loop
# from the exec on; each try is a process start, so the figures include
# up to one try's start-up (printed as "one produce, node up").
#
# Usage: bench/restart.sh
# Env: RUNS (3 per case), DATA_DIR (a temporary directory), SLUICE_BIN (a
#      built binary; default: build ./cmd/sluice).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
runs=${RUNS:-3}

log() { printf 'restart: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-restart.XXXXXX")
data=$(mktemp -d "${DATA_DIR:-$work}/sluice-restart-data.XXXXXX")
declare -A pid_of
cleanup() {
	for pid in "${pid_of[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pid_of[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work" "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=${SLUICE_BIN:-}
if [ -z "$bin" ]; then
	log "building sluice"
	(cd "$root" && go build -o "$work/sluice" ./cmd/sluice)
	bin=$work/sluice
fi

read -r -a ports < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')

# start_node I ARGS...: node I's client port is ports[I-1].
start_node() {
	local i=$1
	shift
	env -u SLUICE_BROKERS -u SLUICE_BIN "$bin" serve --data-dir "$data/node-$i" --listen "127.0.0.1:${ports[$((i - 1))]}" --http "" \
		--set "node.id=$i" "$@" >/dev/null 2>>"$work/node-$i.log" &
	pid_of[$i]=$!
}

# wait_ready I [N]: waits until node I's log says it serves more than N
# times (N: the count before this start).
wait_ready() {
	local i=$1
	for _ in $(seq 1 600); do
		[ "$(grep -c "accepting Kafka clients" "$work/node-$i.log" || true)" -gt "${2:-0}" ] && return 0
		sleep 0.05
	done
	log "node $i did not start:"
	tail -20 "$work/node-$i.log" >&2
	exit 1
}

stop_node() { # stop_node I kill9|clean
	local i=$1 sig=KILL
	[ "$2" = clean ] && sig=TERM
	kill -"$sig" "${pid_of[$i]}"
	wait "${pid_of[$i]}" 2>/dev/null || true
	unset "pid_of[$i]"
}

# restart_once I HOW TOPIC ARGS...: sets took to the seconds from exec to
# the first acknowledged produce through node I. (Not run in a $(...)
# subshell: it must update pid_of.)
restart_once() {
	local i=$1 how=$2 topic=$3
	shift 3
	local ready_before start end
	ready_before=$(grep -c "accepting Kafka clients" "$work/node-$i.log" || true)
	stop_node "$i" "$how"
	start=$(date +%s.%N)
	start_node "$i" "$@"
	until echo restart | env -u SLUICE_BROKERS -u SLUICE_BIN "$bin" produce "$topic" -p 0 --acks all --timeout 2s \
		--brokers "127.0.0.1:${ports[$((i - 1))]}" >/dev/null 2>&1; do sleep 0.01; done
	end=$(date +%s.%N)
	wait_ready "$i" "$ready_before"
	took=$(python3 -c "print(f'{$end - $start:.2f}')")
}

# One produce against a node that is up: the loop's own overhead.
produce_cost() {
	local i=$1 topic=$2 start end
	start=$(date +%s.%N)
	echo up | env -u SLUICE_BROKERS -u SLUICE_BIN "$bin" produce "$topic" -p 0 --acks all --timeout 2s --brokers "127.0.0.1:${ports[$((i - 1))]}" >/dev/null 2>&1
	end=$(date +%s.%N)
	python3 -c "print(f'{$end - $start:.2f}')"
}

results=()
# Single node.
start_node 1
wait_ready 1
env -u SLUICE_BROKERS -u SLUICE_BIN "$bin" topic create solo -p 1 -r 1 --brokers "127.0.0.1:${ports[0]}" >/dev/null
results+=("single node, one produce, node up: $(produce_cost 1 solo) s")
for how in kill9 clean; do
	figures=()
	for _ in $(seq 1 "$runs"); do
		restart_once 1 "$how" solo
		figures+=("$took")
	done
	results+=("single node, $how: ${figures[*]} s")
done
stop_node 1 clean

# Three nodes.
voters="1@127.0.0.1:${ports[3]},2@127.0.0.1:${ports[4]},3@127.0.0.1:${ports[5]}"
cluster_args() { echo "--set controller.listener=127.0.0.1:${ports[$(($1 + 2))]} --set controller.quorum.voters=$voters"; }
for i in 1 2 3; do
	# shellcheck disable=SC2046
	start_node "$i" $(cluster_args "$i")
done
for i in 1 2 3; do wait_ready "$i"; done
brokers="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
env -u SLUICE_BROKERS -u SLUICE_BIN "$bin" topic create rf3 -p 1 -r 3 -c min.insync.replicas=2 --brokers "$brokers" >/dev/null
leader_of() {
	env -u SLUICE_BROKERS -u SLUICE_BIN "$bin" topic describe rf3 --json --brokers "$brokers" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["partition_details"][0]["leader"])'
}
results+=("cluster node, one produce, node up: $(produce_cost 1 rf3) s")
for how in kill9 clean; do
	figures=()
	for _ in $(seq 1 "$runs"); do
		i=$(leader_of)
		# shellcheck disable=SC2046
		restart_once "$i" "$how" rf3 $(cluster_args "$i")
		figures+=("$took")
		# Let the restarted node catch up and rejoin the ISR before the
		# next run, so each run restarts an in-sync leader.
		sleep 3
	done
	results+=("cluster node (leader of rf3/0), $how: ${figures[*]} s")
done

echo "exec of the restarted process to the first acks=all produce through it ($runs runs each):"
printf '  %s\n' "${results[@]}"

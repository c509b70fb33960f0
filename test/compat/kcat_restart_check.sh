#!/usr/bin/env bash
# kcat (librdkafka) across a crash: on a `sluice serve` of its own, produce
# records with acks=all, kill -9 the broker, restart it on the same data
# directory and port, and start `kcat -C -e` one second after the exec,
# while the broker is still starting. kcat must read every acknowledged
# record: its connection waits in the listen backlog until the broker
# serves, and the broker registers at once (it names its crashed
# incarnation) instead of waiting out the old broker session, which used
# to make kcat give up with "Broker transport failure".
#
# Usage: kcat_restart_check.sh SLUICE_BIN
set -euo pipefail

bin=${1:?usage: kcat_restart_check.sh SLUICE_BIN}
# The broker reads SLUICE_* variables as configuration; this check states
# its own.
for v in $(compgen -e | grep '^SLUICE_' || true); do unset "$v"; done
n=200
topic=compat-kcat-restart
work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
start_broker() {
	"$bin" serve --data-dir "$work/data" --listen "$addr" --http "" >>"$work/serve.log" 2>&1 &
	pid=$!
}

start_broker
for _ in $(seq 1 300); do
	grep -q "accepting Kafka clients" "$work/serve.log" && break
	sleep 0.1
done
grep -q "accepting Kafka clients" "$work/serve.log" || {
	echo "kcat restart: the broker did not start:" >&2
	tail -5 "$work/serve.log" >&2
	exit 1
}
for ((i = 0; i < n; i++)); do printf 'acked-%04d\n' "$i"; done >"$work/want"
timeout 60 kcat -P -b "$addr" -t "$topic" -X acks=all -X message.timeout.ms=30000 -l "$work/want"

kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
start_broker
sleep 1
if ! timeout 60 kcat -C -b "$addr" -t "$topic" -o beginning -e -q >"$work/got" 2>"$work/consume.err"; then
	echo "kcat restart: kcat -C -e started 1 s after the restart failed: $(tail -3 "$work/consume.err")" >&2
	exit 1
fi
sort "$work/got" >"$work/got.sorted"
if ! cmp -s "$work/want" "$work/got.sorted"; then
	echo "kcat restart: records differ (want $n, got $(wc -l <"$work/got.sorted")):" >&2
	diff "$work/want" "$work/got.sorted" | head -5 >&2 || true
	exit 1
fi
if grep -q "waiting for the previous run's broker session to expire" "$work/serve.log"; then
	echo "kcat restart: the restarted broker waited for its crashed run's session to expire" >&2
	exit 1
fi
echo "kcat restart: kcat -C -e started 1 s after a kill -9 restart read all $n acknowledged records"

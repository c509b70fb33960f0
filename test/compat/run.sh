#!/usr/bin/env bash
# Client compatibility: real third-party Kafka clients against a fresh
# `sluice serve` process. Installs what it needs if missing (Debian: kcat,
# python3-kafka, python3-confluent-kafka and the codec modules; npm:
# kafkajs into test/compat/node_modules from the pinned lock file), builds
# sluice, starts it on a free loopback port, runs one check per client
# (create topic or auto-create, produce keyed records with compression,
# consume them back, compare) and one group check per client (consume in a
# consumer group, commit, and a second run of the group resumes after the
# commits), prints PASS/FAIL per check and exits non-zero on any failure.
#
# Usage (from anywhere): test/compat/run.sh [check...]
#   checks: kcat kafka-python confluent-kafka kafkajs
#           kcat-group kafka-python-group confluent-kafka-group kafkajs-group
#           (default: all)
# Env: SLUICE_BIN=path uses a prebuilt binary; SLUICE_COMPAT_NO_INSTALL=1
# skips installing (a missing client then fails).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
client_timeout=${SLUICE_COMPAT_CLIENT_TIMEOUT:-240}
py=/usr/bin/python3

log() { printf 'compat: %s\n' "$*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_debian() {
	local need=()
	command -v kcat >/dev/null 2>&1 || need+=(kcat)
	[ -x "$py" ] || need+=(python3)
	"$py" -c 'import kafka' 2>/dev/null || need+=(python3-kafka)
	"$py" -c 'import confluent_kafka' 2>/dev/null || need+=(python3-confluent-kafka)
	# kafka-python's optional codecs.
	"$py" -c 'import snappy' 2>/dev/null || need+=(python3-snappy)
	"$py" -c 'import lz4.frame' 2>/dev/null || need+=(python3-lz4)
	"$py" -c 'import zstandard' 2>/dev/null || need+=(python3-zstandard)
	command -v node >/dev/null 2>&1 || need+=(nodejs)
	command -v npm >/dev/null 2>&1 || need+=(npm)
	if [ ${#need[@]} -gt 0 ]; then
		log "installing Debian packages: ${need[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

install_node() {
	if [ -f "$here/node_modules/kafkajs/package.json" ] && [ -f "$here/node_modules/kafkajs-snappy/package.json" ]; then
		return
	fi
	log "installing kafkajs (npm ci)"
	(cd "$here" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
}

if [ "${SLUICE_COMPAT_NO_INSTALL:-}" != 1 ]; then
	install_debian
	install_node
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compat.XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "sluice did not stop within 20 s of SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=${SLUICE_BIN:-}
if [ -z "$bin" ]; then
	bin="$work/sluice"
	log "building sluice"
	(cd "$root" && timeout 600 go build -o "$bin" ./cmd/sluice)
fi

# SLUICE_* variables are broker configuration: start it without ours.
unset_sluice=()
while IFS= read -r name; do unset_sluice+=(-u "$name"); done < <(env | sed -n 's/^\(SLUICE_[A-Za-z0-9_]*\)=.*/\1/p')
env "${unset_sluice[@]}" "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 2>"$work/sluice.log" &
pid=$!
addr=""
for _ in $(seq 1 300); do
	addr=$(sed -n 's/^sluice: accepting Kafka clients on //p' "$work/sluice.log" | head -1)
	[ -n "$addr" ] && break
	if ! kill -0 "$pid" 2>/dev/null; then
		log "sluice exited before accepting clients:"
		cat "$work/sluice.log" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$addr" ]; then
	log "sluice printed no ready line within 30 s:"
	tail -20 "$work/sluice.log" >&2
	exit 1
fi
log "sluice (pid $pid) accepting Kafka clients on $addr"

run_client() {
	local name=$1
	shift
	local out="$work/$name.out"
	local start=$SECONDS rc=0
	timeout "$client_timeout" "$@" >"$out" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		echo "PASS $name ($((SECONDS - start))s): $(tail -1 "$out")"
		return 0
	fi
	if [ "$rc" = 124 ]; then
		echo "FAIL $name: timed out after ${client_timeout}s"
	else
		echo "FAIL $name (exit $rc):"
	fi
	sed 's/^/    /' "$out" | tail -25
	return 1
}

clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(kcat kafka-python confluent-kafka kafkajs
	kcat-group kafka-python-group confluent-kafka-group kafkajs-group)
passed=0
failed=0
for c in "${clients[@]}"; do
	case "$c" in
	kcat) cmd=(bash "$here/kcat_check.sh" "$addr") ;;
	kafka-python) cmd=("$py" "$here/kafka_python_check.py" "$addr") ;;
	confluent-kafka) cmd=("$py" "$here/confluent_check.py" "$addr") ;;
	kafkajs) cmd=(node "$here/kafkajs_check.js" "$addr") ;;
	kcat-group) cmd=(bash "$here/kcat_group_check.sh" "$addr") ;;
	kafka-python-group) cmd=("$py" "$here/kafka_python_group_check.py" "$addr") ;;
	confluent-kafka-group) cmd=("$py" "$here/confluent_group_check.py" "$addr") ;;
	kafkajs-group) cmd=(node "$here/kafkajs_group_check.js" "$addr") ;;
	*)
		echo "FAIL $c: unknown client"
		failed=$((failed + 1))
		continue
		;;
	esac
	if run_client "$c" "${cmd[@]}"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
done

if ! kill -0 "$pid" 2>/dev/null; then
	echo "FAIL sluice: the broker died during the checks"
	tail -20 "$work/sluice.log" | sed 's/^/    /'
	failed=$((failed + 1))
fi
if [ "$failed" -gt 0 ]; then
	log "broker log tail:"
	tail -30 "$work/sluice.log" | sed 's/^/    /' >&2
fi
echo "compat: $passed passed, $failed failed"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# Client compatibility: real third-party Kafka clients against a fresh
# `sluice serve` process, then against a fresh three-node cluster.
# Installs what it needs if missing (Debian: kcat, python3-kafka,
# python3-confluent-kafka and the codec modules; npm: kafkajs into
# test/compat/node_modules from the pinned lock file), builds sluice, and
# runs one check per client (create topic or auto-create, produce keyed
# records with compression, consume them back, compare) and one group
# check per client (consume in a consumer group, commit, and a second run
# of the group resumes after the commits), a transaction check for
# librdkafka and kafkajs (commit and abort transactions; read_committed
# reads exactly the committed records), and kcat reading a compacted
# topic from offset 0 across the cleaner's gaps, and kcat -C -e started
# while a killed broker restarts (it must read every acknowledged record);
# prints PASS/FAIL per check and exits non-zero on any failure.
#
# Three passes, each on fresh brokers on free loopback ports:
#   single   one `sluice serve`; topics with replication factor 1.
#   secure   one `sluice serve` whose only listeners are SASL_SSL and SSL
#            (ssl.client.auth=required), with a CA, broker and client
#            certificates made by openssl in the work directory at run time
#            (no key is ever committed) and the admin's SCRAM-SHA-512
#            credential created offline (`sluice user create --data-dir`).
#            Each client (not the group variants) round-trips records over
#            SASL_SSL with SCRAM-SHA-512 and over mutual TLS
#            (*_secure_check.*). Its lines are marked [secure].
#   cluster  three `sluice serve` nodes (each a voter and a broker), the
#            bootstrap list naming all three; topics created with
#            replication factor 3 and min.insync.replicas=2 (auto-created
#            ones get both from the nodes: default.replication.factor=3,
#            min.insync.replicas=2), offsets.topic.replication.factor=3,
#            producers with acks=all. After each check, isr_check.py
#            verifies with sluice's own client that the check's topics
#            (and __consumer_offsets after a group check) have every
#            replica in sync. Its lines are marked [cluster].
# The last line, "compat: N passed, M failed", counts both passes.
#
# Usage (from anywhere): test/compat/run.sh [check...]
#   checks: kcat kafka-python confluent-kafka kafkajs
#           kcat-group kafka-python-group confluent-kafka-group kafkajs-group
#           confluent-kafka-txn kafkajs-txn
#           kcat-compact
#           kcat-restart (single pass only: it runs a broker of its own,
#           kills it with kill -9 and starts kcat -C -e while it restarts)
#           (default: all)
# Env: SLUICE_BIN=path uses a prebuilt binary; SLUICE_COMPAT_NO_INSTALL=1
# skips installing (a missing client then fails);
# SLUICE_COMPAT_MODES: a comma-separated list of single, secure and cluster
# (default single,secure,cluster, in that order); SLUICE_COMPAT_KEEP_WORK=1 keeps the work directory (broker logs,
# client output) and prints where it is.
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

modes=()
IFS=, read -r -a mode_list <<<"${SLUICE_COMPAT_MODES:-single,secure,cluster}"
for m in "${mode_list[@]}"; do
	case "$m" in
	single | secure | cluster) modes+=("$m") ;;
	"") ;;
	*)
		log "SLUICE_COMPAT_MODES: unknown mode '$m' (want single, secure, cluster, comma-separated)"
		exit 2
		;;
	esac
done
if [ ${#modes[@]} = 0 ]; then
	log "SLUICE_COMPAT_MODES names no mode"
	exit 2
fi

if [ "${SLUICE_COMPAT_NO_INSTALL:-}" != 1 ]; then
	install_debian
	install_node
fi

# The cluster pass: every topic replicated three ways, two replicas needed
# to accept a write.
cluster_nodes=3
cluster_rf=3
cluster_min_isr=2

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compat.XXXXXX")
# shellcheck source=../lib.sh
. "$root/test/lib.sh"
pids=()      # every sluice process running now, all started by this script
client_pid="" # the check running now (its timeout(1) process)

# stop_brokers stops every broker still running (sluice_stop).
stop_brokers() {
	sluice_stop "${pids[@]}"
	pids=()
}
cleanup() {
	if [ -n "$client_pid" ]; then
		kill -TERM "$client_pid" 2>/dev/null || true # timeout(1) passes it on
		wait "$client_pid" 2>/dev/null || true
	fi
	stop_brokers
	if [ "${SLUICE_COMPAT_KEEP_WORK:-}" = 1 ]; then
		log "kept the work directory: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -n "${SLUICE_BIN:-}" ] || log "building sluice"
bin=$(sluice_bin)

sluice_cmd() { env "${unset_sluice[@]}" "$bin" "$@"; }

# start_node LOG ARGS...: starts `sluice serve ARGS...` with its output in
# LOG. A plain command, not sluice_cmd: the background job then execs env,
# which execs sluice, so $! is sluice's own pid (a function would leave a
# subshell in between, and stopping that would leave sluice running).
# Each node's HTTP listener takes a free port: several run on one host.
start_node() {
	local logf=$1
	shift
	env "${unset_sluice[@]}" "$bin" serve --http 127.0.0.1:0 "$@" >"$logf" 2>&1 &
	pids+=($!)
}

# free_ports N: N distinct free loopback ports (held together while chosen,
# so distinct; a race with another process is caught by a failed start).
free_ports() {
	"$py" -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()' "$1"
}

# Set by start_single/start_cluster: the bootstrap list and broker logs.
bootstrap=""
broker_logs=()

start_single() {
	mkdir -p "$work/single"
	broker_logs=("$work/single/sluice.log")
	start_node "${broker_logs[0]}" --data-dir "$work/single/data" --listen 127.0.0.1:0
	bootstrap=$(sluice_wait_ready "${broker_logs[0]}" "${pids[0]}") || return 1
	log "sluice (pid ${pids[0]}) accepting Kafka clients on $bootstrap"
}

# make_pki DIR: a CA, a broker certificate for localhost and 127.0.0.1, and
# a client certificate, EC P-256, valid for a day, made now.
make_pki() {
	local dir=$1
	mkdir -p "$dir"
	(
		cd "$dir"
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >ext.cnf
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem \
			-days 1 -subj "/CN=sluice compat CA" 2>/dev/null
		for name in broker client; do
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$name.key" -out "$name.csr" \
				-subj "/CN=compat-$name/OU=compat" 2>/dev/null
			openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" \
				-days 1 -extfile ext.cnf 2>/dev/null
		done
	)
}

# Set by start_secure: the SSL listener's address and the clients' settings.
secure_env=()

# start_secure starts one node whose only listeners are SASL_SSL (the
# bootstrap) and SSL with client certificates required, after creating the
# admin's credential offline in its data dir.
start_secure() {
	local dir="$work/secure" ports sasl_addr
	mkdir -p "$dir"
	make_pki "$dir/pki" || return 1
	printf 'compat-admin-secret\n' >"$dir/admin.pass"
	sluice_cmd user create compat-admin --password-file "$dir/admin.pass" --mechanism SCRAM-SHA-512 \
		--data-dir "$dir/data" >/dev/null || return 1
	read -r -a ports <<<"$(free_ports 2)"
	broker_logs=("$dir/sluice.log")
	start_node "${broker_logs[0]}" --data-dir "$dir/data" \
		--set listeners="SASL_SSL://127.0.0.1:${ports[0]},SSL://127.0.0.1:${ports[1]}" \
		--set ssl.certificate.location="$dir/pki/broker.pem" --set ssl.key.location="$dir/pki/broker.key" \
		--set ssl.ca.location="$dir/pki/ca.pem" --set listener.name.ssl.ssl.client.auth=required
	sasl_addr=$(sluice_wait_ready "${broker_logs[0]}" "${pids[0]}") || return 1
	bootstrap=$sasl_addr
	secure_env=(SLUICE_COMPAT_MTLS_BOOTSTRAP="127.0.0.1:${ports[1]}" SLUICE_COMPAT_CA="$dir/pki/ca.pem"
		SLUICE_COMPAT_CERT="$dir/pki/client.pem" SLUICE_COMPAT_KEY="$dir/pki/client.key"
		SLUICE_COMPAT_USER=compat-admin SLUICE_COMPAT_PASSWORD=compat-admin-secret)
	log "sluice (pid ${pids[0]}) accepting SASL_SSL clients on $bootstrap, mTLS on 127.0.0.1:${ports[1]}"
}

# start_cluster starts the nodes as `sluice dev cluster` does (each a voter
# and a broker), but as direct children on ports picked free one by one,
# so this script knows every pid. It is ready once every node accepts
# clients and `sluice cluster health` is happy (a controller, every broker
# registered). A start that fails (a port taken meanwhile) is retried on
# other ports.
start_cluster() {
	local attempt i ports voters addrs addr dir
	for attempt in 1 2 3; do
		dir="$work/cluster-$attempt"
		mkdir -p "$dir"
		read -r -a ports <<<"$(free_ports $((2 * cluster_nodes)))"
		voters=""
		for ((i = 1; i <= cluster_nodes; i++)); do
			voters+="${voters:+,}$i@127.0.0.1:${ports[cluster_nodes + i - 1]}"
		done
		broker_logs=()
		for ((i = 1; i <= cluster_nodes; i++)); do
			broker_logs+=("$dir/node-$i.log")
			start_node "$dir/node-$i.log" --data-dir "$dir/node-$i" --listen "127.0.0.1:${ports[i - 1]}" \
				--set node.id=$i --set process.roles=broker,controller \
				--set controller.listener=127.0.0.1:${ports[cluster_nodes + i - 1]} \
				--set controller.quorum.voters="$voters" \
				--set default.replication.factor=$cluster_rf \
				--set offsets.topic.replication.factor=$cluster_rf \
				--set min.insync.replicas=$cluster_min_isr
		done
		addrs=()
		for ((i = 1; i <= cluster_nodes; i++)); do
			addr=$(sluice_wait_ready "${broker_logs[i - 1]}" "${pids[i - 1]}") || break
			addrs+=("$addr")
		done
		if [ ${#addrs[@]} = "$cluster_nodes" ]; then
			bootstrap=$(IFS=,; echo "${addrs[*]}")
			local deadline=$((SECONDS + 30))
			while [ "$SECONDS" -lt "$deadline" ]; do
				if sluice_cmd cluster health --brokers "$bootstrap" --timeout 5s >"$dir/health.out" 2>&1; then
					log "cluster of $cluster_nodes nodes (pids ${pids[*]}) ready on $bootstrap"
					return 0
				fi
				sleep 0.5
			done
			log "the cluster did not become healthy within 30 s:"
			sed 's/^/    /' "$dir/health.out" >&2
		fi
		log "cluster start attempt $attempt failed; stopping its nodes"
		stop_brokers
	done
	return 1
}

run_client() {
	local name=$1
	shift
	local out="$work/$name.out"
	local start=$SECONDS rc=0
	out=${out// /}
	# In the background and waited for: a signal to this script then runs
	# its traps at once (not after the client), and cleanup stops it.
	timeout "$client_timeout" "$@" >"$out" 2>&1 &
	client_pid=$!
	wait "$client_pid" || rc=$?
	client_pid=""
	if [ "$rc" = 0 ]; then
		client_line="($((SECONDS - start))s): $(tail -1 "$out")"
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

# isr_pattern CHECK: the topics the check works on (a regex, matched whole
# by isr_check.py); group checks add __consumer_offsets, transaction
# checks __transaction_state.
isr_pattern() {
	local prefix=compat-${1%-group}
	prefix=${prefix/confluent-kafka/confluent} # its topics are compat-confluent-*
	case "$1" in
	kcat-compact) echo "compat-kcat-compact" ;;
	*-group) echo "$prefix-group|__consumer_offsets" ;;
	*-txn) echo "$prefix|__transaction_state" ;;
	*) echo "$prefix-(?!group\$).*" ;;
	esac
}

clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(kcat kafka-python confluent-kafka kafkajs
	kcat-group kafka-python-group confluent-kafka-group kafkajs-group
	confluent-kafka-txn kafkajs-txn kcat-compact kcat-restart)
passed=0
failed=0

# run_pass MODE: runs every check against the brokers already started.
run_pass() {
	local mode=$1 c name cmd client_env=() pattern isr_out i p dead=0
	local marker=""
	if [ "$mode" = cluster ]; then
		marker=" [cluster]"
		client_env=(SLUICE_COMPAT_REPLICATION_FACTOR=$cluster_rf SLUICE_COMPAT_MIN_INSYNC_REPLICAS=$cluster_min_isr)
	fi
	if [ "$mode" = secure ]; then
		marker=" [secure]"
		client_env=("${secure_env[@]}")
	fi
	for c in "${clients[@]}"; do
		name="$c$marker"
		if [ "$mode" = secure ]; then
			case "$c" in
			kcat) cmd=(bash "$here/kcat_secure_check.sh" "$bootstrap") ;;
			kafka-python) cmd=("$py" "$here/kafka_python_secure_check.py" "$bootstrap") ;;
			confluent-kafka) cmd=("$py" "$here/confluent_secure_check.py" "$bootstrap") ;;
			kafkajs) cmd=(node "$here/kafkajs_secure_check.js" "$bootstrap") ;;
			*) continue ;; # the group checks run in the other passes
			esac
			if run_client "$name" env "${client_env[@]}" "${cmd[@]}"; then
				echo "PASS $name $client_line"
				passed=$((passed + 1))
			else
				failed=$((failed + 1))
			fi
			continue
		fi
		case "$c" in
		kcat) cmd=(bash "$here/kcat_check.sh" "$bootstrap") ;;
		kafka-python) cmd=("$py" "$here/kafka_python_check.py" "$bootstrap") ;;
		confluent-kafka) cmd=("$py" "$here/confluent_check.py" "$bootstrap") ;;
		kafkajs) cmd=(node "$here/kafkajs_check.js" "$bootstrap") ;;
		kcat-group) cmd=(bash "$here/kcat_group_check.sh" "$bootstrap") ;;
		kcat-compact) cmd=(bash "$here/kcat_compact_check.sh" "$bin" "$bootstrap") ;;
		kcat-restart)
			[ "$mode" = single ] || continue
			cmd=(bash "$here/kcat_restart_check.sh" "$bin")
			;;
		kafka-python-group) cmd=("$py" "$here/kafka_python_group_check.py" "$bootstrap") ;;
		confluent-kafka-group) cmd=("$py" "$here/confluent_group_check.py" "$bootstrap") ;;
		kafkajs-group) cmd=(node "$here/kafkajs_group_check.js" "$bootstrap") ;;
		confluent-kafka-txn) cmd=("$py" "$here/confluent_txn_check.py" "$bootstrap") ;;
		kafkajs-txn) cmd=(node "$here/kafkajs_txn_check.js" "$bootstrap") ;;
		*)
			echo "FAIL $name: unknown client"
			failed=$((failed + 1))
			continue
			;;
		esac
		if ! run_client "$name" env "${client_env[@]}" "${cmd[@]}"; then
			failed=$((failed + 1))
			continue
		fi
		if [ "$mode" = cluster ]; then
			pattern=$(isr_pattern "$c")
			if ! isr_out=$(timeout 120 env "${unset_sluice[@]}" "$py" "$here/isr_check.py" "$bin" "$bootstrap" "$pattern" \
				"$cluster_rf" "$cluster_min_isr" 2>&1); then
				echo "FAIL $name: the client passed $client_line"
				echo "    but the ISR check of /$pattern/ failed:"
				printf '%s\n' "$isr_out" | sed 's/^/    /' | tail -25
				failed=$((failed + 1))
				continue
			fi
			client_line+="; $isr_out"
		fi
		echo "PASS $name $client_line"
		passed=$((passed + 1))
	done

	for i in "${!pids[@]}"; do
		p=${pids[i]}
		if ! kill -0 "$p" 2>/dev/null; then
			if [ "$mode" != cluster ]; then
				echo "FAIL sluice$marker: the broker died during the checks"
			else
				echo "FAIL sluice$marker: node $((i + 1)) (pid $p) died during the checks"
			fi
			tail -20 "${broker_logs[i]}" | sed 's/^/    /'
			dead=1
		fi
	done
	if [ "$dead" = 1 ]; then failed=$((failed + 1)); fi
}

pass_failed_before=0
for mode in "${modes[@]}"; do
	pass_start=$SECONDS
	pass_failed_before=$failed
	case "$mode" in
	single) started=start_single ;;
	secure) started=start_secure ;;
	*) started=start_cluster ;;
	esac
	if ! "$started"; then
		if [ "$mode" != cluster ]; then
			echo "FAIL sluice ($mode): the broker did not start"
		else
			echo "FAIL sluice [cluster]: the $cluster_nodes-node cluster did not start"
		fi
		failed=$((failed + 1))
		stop_brokers
		continue
	fi
	run_pass "$mode"
	if [ "$failed" -gt "$pass_failed_before" ]; then
		for f in "${broker_logs[@]}"; do
			log "broker log tail ($mode: ${f#"$work"/}):"
			tail -30 "$f" | sed 's/^/    /' >&2
		done
	fi
	stop_brokers
	log "$mode pass took $((SECONDS - pass_start))s"
done
echo "compat: $passed passed, $failed failed"
[ "$failed" = 0 ]

# Shared by the scripts that run a real `sluice serve` for a test
# (test/compat/run.sh, test/compat/kgo-suite.sh, test/tour/run.sh): source it
# after setting `root` (the checkout) and `work` (the script's temp dir).

# sluice_bin prints the binary to test: SLUICE_BIN if set, otherwise this
# checkout built into $work.
sluice_bin() {
	if [ -n "${SLUICE_BIN:-}" ]; then
		printf '%s\n' "$SLUICE_BIN"
		return
	fi
	(cd "$root" && timeout 600 go build -o "$work/sluice" ./cmd/sluice) || return 1
	printf '%s\n' "$work/sluice"
}

# SLUICE_* variables are broker configuration (and SLUICE_BROKERS that of
# sluice's client commands): `env "${unset_sluice[@]}" ...` runs sluice
# without the caller's.
unset_sluice=()
while IFS= read -r name; do unset_sluice+=(-u "$name"); done < <(env | sed -n 's/^\(SLUICE_[A-Za-z0-9_]*\)=.*/\1/p')

# sluice_stop PID...: SIGTERM to each, 20 s for all of them to stop, then
# SIGKILL to the rest; reaps them. A process that needed SIGKILL is named
# on stderr, as a broker that ignores SIGTERM is a bug worth seeing.
sluice_stop() {
	local p alive
	for p in "$@"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for _ in $(seq 1 100); do
		alive=0
		for p in "$@"; do
			if kill -0 "$p" 2>/dev/null; then alive=1; fi
		done
		[ "$alive" = 1 ] || break
		sleep 0.2
	done
	for p in "$@"; do
		if kill -0 "$p" 2>/dev/null; then
			printf 'sluice (pid %s) did not stop within 20 s of SIGTERM; killing it\n' "$p" >&2
			kill -KILL "$p" 2>/dev/null || true
		fi
		wait "$p" 2>/dev/null || true
	done
}

# sluice_wait_ready LOG PID: prints the address once the sluice writing LOG
# accepts Kafka clients; fails, with LOG's tail on stderr, if it exits
# first or takes over 30 s.
sluice_wait_ready() {
	local logf=$1 p=$2 addr=""
	for _ in $(seq 1 300); do
		addr=$(sed -n 's/^sluice: accepting Kafka clients on //p' "$logf" | head -1)
		if [ -n "$addr" ]; then
			echo "$addr"
			return 0
		fi
		if ! kill -0 "$p" 2>/dev/null; then
			printf 'sluice (pid %s) exited before accepting clients:\n' "$p" >&2
			tail -20 "$logf" | sed 's/^/    /' >&2
			return 1
		fi
		sleep 0.1
	done
	printf 'sluice (pid %s) printed no ready line within 30 s:\n' "$p" >&2
	tail -20 "$logf" | sed 's/^/    /' >&2
	return 1
}

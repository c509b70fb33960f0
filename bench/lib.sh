# Shared by the bench scripts that measure a real `sluice serve`. Source
# it after setting here, root and a log function; bench_workdir sets work.

# bench_workdir NAME makes a fresh $work directory and an empty $pids
# list; on exit every process in pids is stopped and waited for, so no
# broker outlives its script (holding a bench lock it inherited), and
# $work is removed.
bench_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$1.XXXXXX")
	pids=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}

# build_binaries puts sluice (SLUICE_BIN if set, for before/after
# figures; else this tree's) and the manyclients client in $work.
build_binaries() {
	log "building sluice and the client"
	if [ -n "${SLUICE_BIN:-}" ]; then
		cp "$SLUICE_BIN" "$work/sluice"
	else
		(cd "$root" && go build -o "$work/sluice" ./cmd/sluice)
	fi
	(cd "$here" && go build -o "$work/manyclients" ./manyclients)
}

# wait_line FILE PATTERN: prints what follows PATTERN on its first line,
# waiting up to two minutes for it to appear.
wait_line() {
	for _ in $(seq 1 2400); do
		v=$(sed -n "s/.*$2//p" "$1" | head -1)
		[ -n "$v" ] && { echo "$v"; return; }
		sleep 0.05
	done
	log "no '$2' in $1:"
	cat "$1" >&2
	exit 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# metric URL NAME: one unlabelled gauge from /metrics.
metric() { curl -fsS "$1/metrics" | awk -v m="$2" '$1 == m {printf "%.0f\n", $2}'; }

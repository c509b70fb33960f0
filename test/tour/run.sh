#!/usr/bin/env bash
# The README's five-minute tour, run as a test: every command between the
# `tour:begin` and `tour:end` markers in README.md is run in order against a
# fresh `sluice serve` on a free loopback port, exactly as written except
# that ./bin/sluice is this checkout's build and localhost:9092 is that
# broker's address (SLUICE_BROKERS points the CLI at it). Each command must
# exit 0 and its output is checked; a command the script has no check for
# fails the run, so the README cannot grow an untested step.
#
# Usage: test/tour/run.sh     Env: SLUICE_BIN=path uses a prebuilt binary.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

log() { printf 'tour: %s\n' "$*" >&2; }

if ! command -v kcat >/dev/null 2>&1; then
	log "installing kcat"
	as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
	as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends kcat >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-tour.XXXXXX")
# shellcheck source=../lib.sh
. "$root/test/lib.sh"
pid=""
cleanup() {
	if [ -n "$pid" ]; then sluice_stop "$pid"; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=$(sluice_bin)

# The tour's commands, in order.
mapfile -t steps < <(awk '/<!-- tour:begin -->/{on=1; next} /<!-- tour:end -->/{on=0} on' "$root/README.md" |
	grep -v '^```' | grep -v '^[[:space:]]*#' | grep -v '^[[:space:]]*$')
if [ ${#steps[@]} -eq 0 ]; then
	log "README.md has no tour between <!-- tour:begin --> and <!-- tour:end -->"
	exit 1
fi

env "${unset_sluice[@]}" "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --http 127.0.0.1:0 2>"$work/sluice.log" &
pid=$!
addr=$(sluice_wait_ready "$work/sluice.log" "$pid")
export SLUICE_BROKERS=$addr

# want_lines FILE LINE...: FILE holds exactly these lines, in any order.
want_lines() {
	local file=$1
	shift
	if ! diff <(printf '%s\n' "$@" | sort) <(sort "$file") >"$work/diff"; then
		echo "output differs from what the tour promises (< want, > got):"
		cat "$work/diff"
		return 1
	fi
}

# want_grep FILE PATTERN: FILE has a line matching the extended regex.
want_grep() {
	grep -Eq -- "$2" "$1" || { echo "no line matches /$2/ in:"; cat "$1"; return 1; }
}

# check_step N CMD: the output checks for the tour's command CMD, in
# $work/out (stdout) and $work/err (stderr).
check_step() {
	local cmd=$1 out=$work/out err=$work/err
	case "$cmd" in
	"./bin/sluice topic create orders -p 3")
		want_grep "$out" 'orders' ;;
	"./bin/sluice topic list")
		want_grep "$out" '^orders +3 +1( |$)' ;;
	"printf 'alice:1 book\nbob:2 pens\nalice:3 ink\n' | ./bin/sluice produce orders -K :")
		want_grep "$err" 'wrote 3 records' ;;
	"./bin/sluice consume orders -g billing -e -f '%k => %s (partition %p, offset %o)\n'")
		sed 's/ (partition [0-9], offset [0-9]*)$//' "$out" >"$work/kv"
		want_lines "$work/kv" 'alice => 1 book' 'bob => 2 pens' 'alice => 3 ink' ;;
	"echo 'carol:4 paper' | ./bin/sluice produce orders -K :")
		want_grep "$err" 'wrote 1 record' ;;
	"./bin/sluice group describe billing")
		want_grep "$out" 'orders' &&
			"$bin" group describe billing --json >"$work/json" &&
			python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["total_lag"]==1 else "total_lag %r, want 1" % d["total_lag"])' "$work/json" ;;
	"kcat -b localhost:9092 -C -t orders -e -q -f '%k %s\n'")
		want_lines "$out" 'alice 1 book' 'bob 2 pens' 'alice 3 ink' 'carol 4 paper' ;;
	"./bin/sluice bench produce --topic bench --records 50000 --record-size 1024")
		want_grep "$out" 'records/s' ;;
	*)
		echo "the tour has a command this script does not check; add a case for it to test/tour/run.sh"
		return 1 ;;
	esac
}

passed=0
failed=0
for cmd in "${steps[@]}"; do
	run=${cmd//.\/bin\/sluice/\"$bin\"}
	run=${run//localhost:9092/$addr}
	rc=0
	(cd "$work" && timeout 120 bash -c "$run") >"$work/out" 2>"$work/err" || rc=$?
	if [ "$rc" != 0 ]; then
		echo "FAIL $cmd: exit $rc"
		sed 's/^/    /' "$work/err" | tail -15
		failed=$((failed + 1))
		continue
	fi
	if check_step "$cmd" >"$work/why" 2>&1; then
		echo "PASS $cmd"
		passed=$((passed + 1))
	else
		echo "FAIL $cmd"
		sed 's/^/    /' "$work/why" | tail -25
		failed=$((failed + 1))
	fi
done
if [ "$failed" -gt 0 ]; then
	log "broker log tail:"
	tail -20 "$work/sluice.log" | sed 's/^/    /' >&2
fi
echo "tour: $passed passed, $failed failed"
[ "$failed" = 0 ]

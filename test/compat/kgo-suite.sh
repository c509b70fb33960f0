#!/usr/bin/env bash
# franz-go's own client test suite (github.com/twmb/franz-go/pkg/kgo, at the
# version go.mod pins) against a fresh `sluice serve` process. The suite is
# written against real Kafka: it creates and deletes topics, runs chained
# produce/consume ETLs through classic and KIP-848 consumer groups and share
# groups, transactions, and admin requests, and checks every record. What
# it skips is decided by the broker's ApiVersions (KIP-848 needs
# ConsumerGroupHeartbeat v1, share groups need ShareFetch and
# ShareAcknowledge v2), so the summary lists every skipped test: a feature
# that stops being advertised shows up as a new skip, not as silence.
#
# The broker listens on 127.0.0.1 port 0 and the address is read from its
# own log, so the suite can only talk to the broker this script started.
# The broker is always stopped on exit.
#
# Usage (from anywhere): test/compat/kgo-suite.sh [go test args, e.g. -run TestGroupETL]
# Env: SLUICE_BIN=path uses a prebuilt binary; KGO_TEST_RECORDS (default
# 50000: records per ETL; the run takes about 80 s from 5000 to 200000,
# the ETLs' rebalances and waits dominate, not the records);
# SLUICE_KGO_TIMEOUT (default 6m: go test -timeout); SLUICE_KGO_KEEP_WORK=1
# keeps the work directory (broker log, go test output).
# A clean clone needs nothing beyond what `go build` fetches: the suite's
# imports (kmsg, kerr, kversion, sasl/scram, klauspost/compress,
# pierrec/lz4) are all modules go.mod requires and go.sum covers (checked
# with an empty GOMODCACHE and the default -mod=readonly).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
log() { printf 'kgo-suite: %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-kgo.XXXXXX")
# shellcheck source=../lib.sh
. "$root/test/lib.sh"
pid=""
cleanup() {
	if [ -n "$pid" ]; then sluice_stop "$pid"; fi
	if [ "${SLUICE_KGO_KEEP_WORK:-}" = 1 ]; then
		log "kept the work directory: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=$(sluice_bin)

# A plain command, not a function: $! is then sluice's own pid (env execs it).
env "${unset_sluice[@]}" "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --http "" >"$work/sluice.log" 2>&1 &
pid=$!
addr=$(sluice_wait_ready "$work/sluice.log" "$pid")
log "sluice (pid $pid) accepting Kafka clients on $addr"

records=${KGO_TEST_RECORDS:-50000}
gotimeout=${SLUICE_KGO_TIMEOUT:-6m}
log "go test github.com/twmb/franz-go/pkg/kgo (KGO_TEST_RECORDS=$records, -timeout $gotimeout)"
start=$SECONDS
status=0
# The outer timeout is a backstop for a test binary that ignores -timeout
# (a hung build or download); go test's own -timeout prints the stuck
# goroutines, which is what a failure report needs.
(cd "$root" && KGO_SEEDS=$addr KGO_TEST_RF=1 KGO_TEST_RECORDS=$records \
	timeout 900 go test -count=1 -v -timeout "$gotimeout" "$@" github.com/twmb/franz-go/pkg/kgo) \
	>"$work/go-test.out" 2>&1 || status=$?
elapsed=$((SECONDS - start))

# Top-level and subtest results; -v prints them as "--- PASS: Name (..)".
count() { grep -cE "^ *--- $1: " "$work/go-test.out" || true; }
pass=$(count PASS)
fail=$(count FAIL)
skip=$(count SKIP)
# A skip's reason is the last "file_test.go:N: ..." line logged before
# its "--- SKIP" line (parallel tests interleave, but t.Skip logs and ends
# the test at once, so the two lines are adjacent in practice).
log "skipped tests and their reasons:"
awk '/^ +[a-z0-9_]+_test\.go:[0-9]+: / { reason = $0; sub(/^ +/, "", reason) }
	/^ *--- SKIP: / { name = $3; printf "    %s: %s\n", name, reason }' "$work/go-test.out" >&2
log "KIP-848 variants (a missing or skipped one means the broker stopped advertising ConsumerGroupHeartbeat v1):"
grep -E '^ *--- [A-Z]+: [^ ]*848' "$work/go-test.out" | sed 's/^ */    /' >&2 || true
if [ "$fail" != 0 ] || [ "$status" != 0 ]; then
	log "failures (go test exit $status):"
	grep -E '^ *--- FAIL: |^panic:|^FAIL|test timed out' "$work/go-test.out" | sed 's/^/    /' >&2 || true
	log "last lines of the go test output:"
	tail -40 "$work/go-test.out" | sed 's/^/    /' >&2
	log "last lines of the broker log:"
	tail -20 "$work/sluice.log" | sed 's/^/    /' >&2
	log "FAIL: $pass passed, $fail failed, $skip skipped in ${elapsed}s"
	exit 1
fi
# A full run (no go test arguments) must have run these, not skipped them:
# they are the features this suite is in CI to guard (KIP-848 groups;
# share groups, which franz-go runs only against ShareFetch and
# ShareAcknowledge v2).
if [ $# = 0 ]; then
	missing=0
	for name in TestGroupETL/range/848 TestGroupETL/sticky/848 TestGroupETL/sticky/848/static \
		TestShareGroup TestShareGroupETL TestShareGroupAckOnClose TestShareGroupOffsetsAdmin; do
		if ! grep -qE "^ *--- PASS: $name " "$work/go-test.out"; then
			log "FAIL: $name did not run and pass"
			missing=1
		fi
	done
	[ "$missing" = 0 ] || exit 1
fi
if [ "$pass" = 0 ]; then
	log "FAIL: no test ran"
	exit 1
fi
log "PASS: $pass passed, $fail failed, $skip skipped in ${elapsed}s (tests and subtests)"

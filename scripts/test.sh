#!/usr/bin/env bash
# Runs every check CI runs, in order of cost: formatting, go vet, the whole
# test suite under the race detector, then real third-party clients (kcat,
# kafka-python, confluent-kafka, kafkajs) against a `sluice serve` process
# (test/compat/run.sh installs them with apt-get and npm when missing), then
# franz-go's own pkg/kgo test suite against a `sluice serve` process
# (test/compat/kgo-suite.sh), then the README's five-minute tour, command
# by command (test/tour/run.sh).
# Before the Go tests it installs Chromium (scripts/install-chromium.sh) for
# the console's headless-browser test in test/console.
# Extra arguments go to `go test` and skip the client and tour checks, e.g.
# ./scripts/test.sh -run 'TestLog' -v
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== gofmt"
# testdata may hold deliberately malformed Go (fuzz corpora, parser fixtures).
unformatted=$(find . \( -name .git -o -name testdata -o -name vendor -o -name bin \) -prune -o \
	-name '*.go' -type f -print0 | xargs -0 -r gofmt -l)
if [[ -n "$unformatted" ]]; then
	echo "these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== chromium for test/console (scripts/install-chromium.sh)"
scripts/install-chromium.sh

echo "== go test -race"
go test -race -count=1 "$@" ./...

if [[ $# -eq 0 ]]; then
	echo "== real clients (test/compat/run.sh)"
	test/compat/run.sh
	echo "== franz-go's own test suite (test/compat/kgo-suite.sh)"
	test/compat/kgo-suite.sh
	echo "== the README tour (test/tour/run.sh)"
	test/tour/run.sh
fi

#!/usr/bin/env bash
# kcat (librdkafka) against a running Sluice broker: for each codec,
# produce keyed records with a header to a topic that does not exist yet
# (auto-creation is kcat's normal path: it has no create-topic command),
# read them back from the beginning, compare exactly.
# acks=all is spelled out (idempotence implies it already): against a
# cluster the produce waits for the ISR. The replication factor of an
# auto-created topic is the broker's default.replication.factor.
#
# Usage: kcat_check.sh HOST:PORT
set -euo pipefail

bootstrap=${1:?usage: kcat_check.sh HOST:PORT}
n=200
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail=0
for codec in none gzip snappy lz4 zstd; do
	topic="compat-kcat-$codec"
	: >"$work/want"
	for ((i = 0; i < n; i++)); do
		printf 'kcat-%s-key-%03d\tvalue %d %s\n' "$codec" "$i" "$i" "$(printf 'x%.0s' $(seq 1 $((1 + i % 30))))" >>"$work/want"
	done
	if ! timeout 60 kcat -P -b "$bootstrap" -t "$topic" -K $'\t' -z "$codec" -H client=kcat \
		-X message.timeout.ms=30000 -X enable.idempotence=true -X acks=all -l "$work/want" 2>"$work/produce.err"; then
		echo "kcat $codec: produce failed: $(tail -3 "$work/produce.err")" >&2
		fail=1
		continue
	fi
	if ! timeout 60 kcat -C -b "$bootstrap" -t "$topic" -o beginning -e -q -c "$n" \
		-f '%k\t%s\t%h\n' >"$work/got.raw" 2>"$work/consume.err"; then
		echo "kcat $codec: consume failed: $(tail -3 "$work/consume.err")" >&2
		fail=1
		continue
	fi
	# Every record carries the header; strip it after checking.
	if grep -vq $'\tclient=kcat$' "$work/got.raw"; then
		echo "kcat $codec: a record lost its header: $(grep -v $'\tclient=kcat$' "$work/got.raw" | head -1)" >&2
		fail=1
	fi
	sed $'s/\tclient=kcat$//' "$work/got.raw" | sort >"$work/got"
	sort "$work/want" >"$work/want.sorted"
	if ! cmp -s "$work/want.sorted" "$work/got"; then
		echo "kcat $codec: records differ (want $(wc -l <"$work/want.sorted"), got $(wc -l <"$work/got")):" >&2
		diff "$work/want.sorted" "$work/got" | head -5 >&2 || true
		fail=1
	fi
done
if [ "$fail" = 0 ]; then
	echo "kcat: codecs none,gzip,snappy,lz4,zstd x $n records round-tripped"
fi
exit "$fail"

#!/usr/bin/env bash
# kcat (librdkafka) consumer groups against a running Sluice broker:
# produce records, read them with the balanced consumer (-G), which commits
# on exit; produce more and check that a second -G run of the same group
# reads exactly the new records, and a third reads nothing.
#
# Usage: kcat_group_check.sh HOST:PORT
set -euo pipefail

bootstrap=${1:?usage: kcat_group_check.sh HOST:PORT}
topic=compat-kcat-group
group=compat-kcat-g
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# -G takes librdkafka consumer properties with -X.
group_opts=(-X auto.offset.reset=earliest -X session.timeout.ms=10000 -X heartbeat.interval.ms=1000
	-X fetch.wait.max.ms=200 -X enable.partition.eof=true)

produce() { # prefix n
	: >"$work/want"
	for ((i = 0; i < $2; i++)); do printf 'k%d\t%s-%d\n' "$i" "$1" "$i" >>"$work/want"; done
	# The topic is auto-created by the first produce (num.partitions).
	timeout 60 kcat -P -b "$bootstrap" -t "$topic" -K $'\t' -X message.timeout.ms=30000 -X topic.acks=all \
		-l "$work/want" 2>"$work/produce.err" || {
		echo "kcat group: produce failed: $(tail -3 "$work/produce.err")" >&2
		return 1
	}
	cut -f2 "$work/want" | sort >"$work/want.values"
}

# consume N: a -G run that exits after N records (kcat commits on close).
consume() {
	timeout 60 kcat -b "$bootstrap" -G "$group" "${group_opts[@]}" -c "$1" -q -f '%s\n' "$topic" \
		>"$work/got.raw" 2>"$work/consume.err" || {
		echo "kcat group: -G consume of $1 records failed (exit $?; got $(wc -l <"$work/got.raw")): $(tail -3 "$work/consume.err")" >&2
		return 1
	}
	sort "$work/got.raw" >"$work/got"
}

fail=0
produce first 90
consume 90 || exit 1
if ! cmp -s "$work/want.values" "$work/got"; then
	echo "kcat group: run 1 read other records than produced:" >&2
	diff "$work/want.values" "$work/got" | head -5 >&2 || true
	fail=1
fi
produce second 30
consume 30 || exit 1
if [ "$fail" = 0 ] && ! cmp -s "$work/want.values" "$work/got"; then
	echo "kcat group: run 2 did not resume after the committed offsets:" >&2
	diff "$work/want.values" "$work/got" | head -5 >&2 || true
	fail=1
fi
# Run 3: -e exits once every assigned partition is at its end; it must
# read nothing, all having been committed.
if [ "$fail" = 0 ]; then
	if ! timeout 60 kcat -b "$bootstrap" -G "$group" "${group_opts[@]}" -e -q -f '%s\n' "$topic" \
		>"$work/got.raw" 2>"$work/consume.err"; then
		echo "kcat group: run 3 (-e) failed: $(tail -3 "$work/consume.err")" >&2
		fail=1
	elif [ -s "$work/got.raw" ]; then
		echo "kcat group: run 3 re-read $(wc -l <"$work/got.raw") committed records, e.g. $(head -1 "$work/got.raw")" >&2
		fail=1
	fi
fi
if [ "$fail" = 0 ]; then
	echo "kcat group: -G consumed and committed 90 records, a second run resumed with exactly 30 new, a third read none"
fi
exit "$fail"

#!/usr/bin/env bash
# kcat (librdkafka) reading a compacted topic from offset 0, across the
# gaps the log cleaner leaves: keys are overwritten many times into small
# segments, and once the cleaner has run a read from the beginning must
# return fewer records than were written, offsets still increasing, and
# exactly the latest value of every key (the active segment is never
# cleaned, so a key may also appear with older values there, but its last
# value read is the latest written).
#
# Usage: kcat_compact_check.sh SLUICE_BINARY HOST:PORT
set -euo pipefail

bin=${1:?usage: kcat_compact_check.sh SLUICE_BINARY HOST:PORT}
bootstrap=${2:?usage: kcat_compact_check.sh SLUICE_BINARY HOST:PORT}
rf=${SLUICE_COMPAT_REPLICATION_FACTOR:-1}
keys=40
versions=25
topic=compat-kcat-compact
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Small segments so most of the log is in closed, cleanable segments; any
# dirty share makes a log cleanable; tombstones and lag play no part.
"$bin" topic create "$topic" --brokers "$bootstrap" -p 1 -r "$rf" \
	-c cleanup.policy=compact -c segment.bytes=8192 -c min.cleanable.dirty.ratio=0.01 >/dev/null

: >"$work/in"
# Keys stop being updated at different versions, so their latest values
# lie all over the log and the cleaned log has gaps inside it too.
for ((v = 0; v < versions; v++)); do
	for ((k = 0; k < keys; k++)); do
		[ "$v" -lt $((5 + k % 21)) ] || continue
		printf 'key-%02d\tv%02d-%s\n' "$k" "$v" "$(printf 'x%.0s' $(seq 1 40))" >>"$work/in"
	done
done
written=$(wc -l <"$work/in")
timeout 60 kcat -P -b "$bootstrap" -t "$topic" -K $'\t' -X acks=all -X enable.idempotence=true -X batch.size=4096 -l "$work/in"

# The latest value per key, as written.
awk -F'\t' '{last[$1]=$2} END {for (k in last) print k "\t" last[k]}' "$work/in" | sort >"$work/want"

# The cleaner wakes every log.cleaner.backoff.ms (15 s by default).
deadline=$((SECONDS + 100))
while :; do
	timeout 60 kcat -C -b "$bootstrap" -t "$topic" -o beginning -e -q -f '%o\t%k\t%s\n' >"$work/got" 2>"$work/consume.err"
	read_count=$(wc -l <"$work/got")
	if [ "$read_count" -lt "$written" ]; then
		break
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "kcat compact: still $read_count of $written records after 100 s: the cleaner did not compact" >&2
		exit 1
	fi
	sleep 2
done
if ! awk -F'\t' 'NR > 1 && $1 <= prev { exit 1 } { prev = $1 }' "$work/got"; then
	echo "kcat compact: offsets are not increasing" >&2
	exit 1
fi
# Offset 0 is the log start (compaction keeps it), so a first record past
# it is a gap too.
gaps=$(awk -F'\t' 'BEGIN { prev = -1 } $1 > prev + 1 { n++ } { prev = $1 } END { print n + 0 }' "$work/got")
first=$(head -1 "$work/got" | cut -f1)
if [ "$gaps" = 0 ]; then
	echo "kcat compact: $read_count of $written records read but no offset is missing" >&2
	exit 1
fi
awk -F'\t' '{last[$2]=$3} END {for (k in last) print k "\t" last[k]}' "$work/got" | sort >"$work/latest"
if ! cmp -s "$work/want" "$work/latest"; then
	echo "kcat compact: the latest value per key differs from what was written:" >&2
	diff "$work/want" "$work/latest" | head -5 >&2 || true
	exit 1
fi
echo "kcat compact: $written written, $read_count read from offset 0 (first at $first) across $gaps gaps, latest value of all $keys keys"

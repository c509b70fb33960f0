#!/usr/bin/env bash
# kcat (librdkafka) against a secured Sluice broker: keyed records produced
# and read back over SASL_SSL with SCRAM-SHA-512, then over SSL with a
# client certificate (mutual TLS); and a wrong password must be refused.
#
# Usage: kcat_secure_check.sh SASL_SSL_HOST:PORT
# Env (run.sh's secure pass sets them): SLUICE_COMPAT_MTLS_BOOTSTRAP,
# SLUICE_COMPAT_CA, SLUICE_COMPAT_CERT, SLUICE_COMPAT_KEY,
# SLUICE_COMPAT_USER, SLUICE_COMPAT_PASSWORD.
set -euo pipefail

bootstrap=${1:?usage: kcat_secure_check.sh HOST:PORT}
n=100
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sasl=(-b "$bootstrap" -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512
	-X sasl.username="$SLUICE_COMPAT_USER" -X sasl.password="$SLUICE_COMPAT_PASSWORD" -X ssl.ca.location="$SLUICE_COMPAT_CA")
mtls=(-b "$SLUICE_COMPAT_MTLS_BOOTSTRAP" -X security.protocol=SSL -X ssl.ca.location="$SLUICE_COMPAT_CA"
	-X ssl.certificate.location="$SLUICE_COMPAT_CERT" -X ssl.key.location="$SLUICE_COMPAT_KEY")

fail=0
roundtrip() {
	local mode=$1
	shift
	local topic="compat-secure-kcat-$mode"
	: >"$work/want"
	for ((i = 0; i < n; i++)); do
		printf 'kcat-%s-key-%03d\tvalue %d\n' "$mode" "$i" "$i" >>"$work/want"
	done
	if ! timeout 60 kcat -P "$@" -t "$topic" -K $'\t' -X acks=all -X message.timeout.ms=30000 -l "$work/want" 2>"$work/produce.err"; then
		echo "kcat $mode: produce failed: $(tail -3 "$work/produce.err")" >&2
		fail=1
		return
	fi
	if ! timeout 60 kcat -C "$@" -t "$topic" -o beginning -e -q -c "$n" -f '%k\t%s\n' >"$work/got.raw" 2>"$work/consume.err"; then
		echo "kcat $mode: consume failed: $(tail -3 "$work/consume.err")" >&2
		fail=1
		return
	fi
	sort "$work/got.raw" >"$work/got"
	sort "$work/want" >"$work/want.sorted"
	if ! cmp -s "$work/want.sorted" "$work/got"; then
		echo "kcat $mode: records differ (want $n, got $(wc -l <"$work/got"))" >&2
		fail=1
	fi
}
roundtrip sasl "${sasl[@]}"
roundtrip mtls "${mtls[@]}"

wrong=(-b "$bootstrap" -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512
	-X sasl.username="$SLUICE_COMPAT_USER" -X sasl.password=not-the-password -X ssl.ca.location="$SLUICE_COMPAT_CA")
if echo x | timeout 30 kcat -P "${wrong[@]}" -t compat-secure-kcat-wrong -X message.timeout.ms=5000 2>"$work/wrong.err"; then
	echo "kcat: a wrong password was accepted" >&2
	fail=1
elif ! grep -q "Authentication failure\|authentication failed" "$work/wrong.err"; then
	echo "kcat: a wrong password failed, but not with an authentication error: $(tail -2 "$work/wrong.err")" >&2
	fail=1
fi
if [ "$fail" = 0 ]; then
	echo "kcat: SASL_SSL SCRAM-SHA-512 and mTLS x $n records round-tripped; wrong password refused"
fi
exit "$fail"

#!/usr/bin/env bash
# Installs Debian's chromium for the console's browser test (test/console),
# unless a Chromium is already on PATH. Runs as root or through sudo, like
# test/compat/run.sh's installs. SLUICE_NO_INSTALL=1 skips it (the test
# then skips without a browser, or fails under CI=true).
set -euo pipefail

log() { printf 'install-chromium: %s\n' "$*" >&2; }

for name in chromium chromium-browser google-chrome google-chrome-stable; do
	if command -v "$name" >/dev/null 2>&1; then
		exit 0
	fi
done
if [ "${SLUICE_NO_INSTALL:-}" = 1 ]; then
	log "no Chromium on PATH and SLUICE_NO_INSTALL=1: not installing"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	log "no Chromium on PATH and no apt-get: install Chromium by hand for test/console"
	exit 0
fi

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

log "installing Debian package chromium"
as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends chromium >/dev/null

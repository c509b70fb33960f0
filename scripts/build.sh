#!/usr/bin/env bash
# Builds the static binary bin/sluice, stamped with the version and commit
# that `sluice version` prints. Outside a git checkout (or before the first
# commit) the binary falls back to "dev".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=$(git describe --tags --always --dirty 2>/dev/null || true)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || true)
# Same meaning of dirty as git describe: tracked files changed.
if [[ -n "$commit" && -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
	commit="$commit-dirty"
fi

ldflags="-s -w"
if [[ -n "$version" ]]; then ldflags+=" -X main.version=$version"; fi
if [[ -n "$commit" ]]; then ldflags+=" -X main.commit=$commit"; fi

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o bin/sluice ./cmd/sluice
echo "built bin/sluice ${version:-dev}"

#!/usr/bin/env bash
# Builds golangci-lint from the Go module proxy (no release downloads here) into a cache outside the repository, keyed
# by version, and links it into DEST. A cold build takes about 10 CPU-minutes; later calls only link.
#
# Usage: hack/golangci-lint-bin.sh DEST_FILE
#   GOLANGCI_LINT_VERSION (default v2.15.0) and FIW_CACHE_DIR override the defaults.
set -euo pipefail

dest=${1:?usage: golangci-lint-bin.sh DEST_FILE}
version=${GOLANGCI_LINT_VERSION:-v2.15.0}
cache_root=${FIW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-identity-webhook}
cache="$cache_root/golangci-lint/$version"
mkdir -p "$cache" "$(dirname "$dest")"

if [ ! -x "$cache/golangci-lint" ]; then
  printf 'golangci-lint-bin: building golangci-lint %s from the module proxy (about 10 CPU-minutes cold; cached afterwards)\n' \
    "$version" >&2
  # The version stamp golangci-lint's own release build sets, so `golangci-lint version` names it.
  GOBIN="$cache/.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w -X main.version=${version#v}" \
    "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
  mv "$cache/.tmp/golangci-lint" "$cache/golangci-lint"
  rmdir "$cache/.tmp"
fi
ln -sf "$cache/golangci-lint" "$dest"

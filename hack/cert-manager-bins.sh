#!/usr/bin/env bash
# Builds cert-manager's controllers and CA injector from the github.com/cert-manager/cert-manager module for the
# end-to-end suite. cert-manager's own main packages (cmd/controller, cmd/cainjector) are nested modules the Go module
# proxy does not serve ("404 Not Found"), so hack/cert-manager/main.go wires the same registered controllers and
# injector setup; it is built in a scratch module that requires only cert-manager (its own dependency versions, none
# of the project's), cached outside the repository by version.
#
# Usage: CERT_MANAGER_VERSION=v1.21.2 hack/cert-manager-bins.sh DEST_FILE
#   FIW_CACHE_DIR overrides the cache root.
set -euo pipefail

dest=${1:?usage: cert-manager-bins.sh DEST_FILE}
version=${CERT_MANAGER_VERSION:?set CERT_MANAGER_VERSION}
root=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${FIW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-identity-webhook}
# The source's digest is part of the key: a change to main.go rebuilds.
key=$(sha256sum "$root/hack/cert-manager/main.go" | cut -c1-12)
cache="$cache_root/cert-manager/$version-$key"
mkdir -p "$cache" "$(dirname "$dest")"

if [ ! -x "$cache/cert-manager" ]; then
  printf 'cert-manager-bins: building cert-manager %s controllers and cainjector (a few minutes cold; cached)\n' "$version" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  sed '/^\/\/go:build ignore$/d' "$root/hack/cert-manager/main.go" >"$work/main.go"
  (
    cd "$work"
    go mod init fiw.local/cert-manager >/dev/null 2>&1
    go mod edit -require "github.com/cert-manager/cert-manager@$version"
    GOFLAGS=-mod=mod go mod tidy >/dev/null
    CGO_ENABLED=0 go build -trimpath -o "$cache/cert-manager.tmp" .
  )
  mv "$cache/cert-manager.tmp" "$cache/cert-manager"
fi
ln -sf "$cache/cert-manager" "$dest"

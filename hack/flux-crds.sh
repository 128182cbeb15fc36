#!/usr/bin/env bash
# Copies Flux's real CustomResourceDefinitions for the test API server out of the source-controller module (the same
# version as the Go API types in go.mod), so the API server validates objects exactly as a Flux cluster does.
#
# Usage: FLUX_SOURCE_VERSION=v1.9.6 hack/flux-crds.sh DEST_DIR
set -euo pipefail

dest=${1:?usage: flux-crds.sh DEST_DIR}
version=${FLUX_SOURCE_VERSION:?set FLUX_SOURCE_VERSION}

# Outside any module, so the download does not touch the project's go.mod / go.sum.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dir=$(cd "$scratch" && GOFLAGS=-mod=mod go mod download -json "github.com/fluxcd/source-controller@$version" |
  sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$dir/config/crd/bases" ] || { echo "flux-crds: no CRDs in $dir" >&2; exit 1; }

rm -rf "$dest" && mkdir -p "$dest"
cp "$dir"/config/crd/bases/*.yaml "$dest/"
chmod u+w "$dest"/*.yaml
echo "flux-crds: $(ls "$dest" | wc -l) CRDs from source-controller $version in $dest" >&2

#!/usr/bin/env bash
# Generates the CustomResourceDefinitions of the Flux kinds whose controller module the Go module proxy does not serve
# at the pinned version ("403 This module version is not available": image-reflector-controller,
# helm-controller v1.6.5, notification-controller v1.9.4, image-automation-controller v1.2.5). Their API modules (the
# versions in go.mod) are served and carry the kubebuilder markers the real CRDs are generated from; controller-gen
# (pinned, built from the proxy, cached outside the repository) turns the served packages into the CRDs, with the same
# schema, defaults, CEL rules and served versions as Flux's release (test/harness checks the served versions).
#
# Usage: CONTROLLER_GEN_VERSION=v0.23.0 hack/api-crds.sh DEST_DIR MODULE@VERSION:PACKAGES[:PACKAGES...] ...
#   e.g. github.com/fluxcd/notification-controller/api@v1.9.4:./v1/...:./v1beta3/...
#   FIW_CACHE_DIR overrides the cache root.
set -euo pipefail

dest=${1:?usage: api-crds.sh DEST_DIR MODULE@VERSION:PACKAGES...}
shift
cg_version=${CONTROLLER_GEN_VERSION:?set CONTROLLER_GEN_VERSION}
cache_root=${FIW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-identity-webhook}
cg_dir="$cache_root/tools/controller-gen-$cg_version"
controller_gen="$cg_dir/controller-gen"

log() { printf 'api-crds: %s\n' "$*" >&2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if [ ! -x "$controller_gen" ]; then
  log "building controller-gen $cg_version from the module proxy (about a minute cold)"
  mkdir -p "$cg_dir"
  # From outside any module, so the install does not touch the project's go.mod / go.sum.
  (cd "$scratch" && GOBIN="$cg_dir" GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$cg_version")
fi

mkdir -p "$dest"
for spec in "$@"; do
  module=${spec%%:*}
  IFS=: read -r -a packages <<<"${spec#*:}"
  dir=$(cd "$scratch" && GOFLAGS=-mod=mod go mod download -json "$module" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { echo "api-crds: cannot download $module" >&2; exit 1; }
  # The module cache is read-only; controller-gen loads the packages from a writable copy.
  work="$scratch/$(echo "$module" | tr '/@' '__')"
  cp -r "$dir" "$work"
  chmod -R u+w "$work"
  paths=$(IFS=';'; echo "${packages[*]}")
  (cd "$work" && GOFLAGS=-mod=mod "$controller_gen" crd paths="$paths" output:crd:dir="$work/out")
  n=$(find "$work/out" -name '*.yaml' | wc -l)
  [ "$n" -gt 0 ] || { echo "api-crds: controller-gen produced no CRD from $spec" >&2; exit 1; }
  cp "$work"/out/*.yaml "$dest/"
  log "$n CRDs from $module ($paths, controller-gen $cg_version) in $dest"
done

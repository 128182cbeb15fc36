#!/usr/bin/env bash
# Generates the ImageRepository CustomResourceDefinition for the test API server. The CRD YAML ships only in the
# module github.com/fluxcd/image-reflector-controller, which the Go module proxy does not serve; its API module
# (github.com/fluxcd/image-reflector-controller/api, the same version as in go.mod) does, and carries the kubebuilder
# markers the real CRD is generated from. controller-gen (pinned, built from the proxy, cached outside the repository)
# turns the v1 package into the CRD, with the same schema, defaults and validation as Flux's release.
#
# Usage: IMAGE_REFLECTOR_VERSION=v1.1.0 CONTROLLER_GEN_VERSION=v0.23.0 hack/image-crds.sh DEST_DIR
#   FIW_CACHE_DIR overrides the cache root.
set -euo pipefail

dest=${1:?usage: image-crds.sh DEST_DIR}
version=${IMAGE_REFLECTOR_VERSION:?set IMAGE_REFLECTOR_VERSION}
cg_version=${CONTROLLER_GEN_VERSION:?set CONTROLLER_GEN_VERSION}
cache_root=${FIW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-identity-webhook}
cg_dir="$cache_root/tools/controller-gen-$cg_version"
controller_gen="$cg_dir/controller-gen"

log() { printf 'image-crds: %s\n' "$*" >&2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if [ ! -x "$controller_gen" ]; then
  log "building controller-gen $cg_version from the module proxy (about a minute cold)"
  mkdir -p "$cg_dir"
  # From outside any module, so the install does not touch the project's go.mod / go.sum.
  (cd "$scratch" && GOBIN="$cg_dir" GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$cg_version")
fi

dir=$(cd "$scratch" && GOFLAGS=-mod=mod go mod download -json "github.com/fluxcd/image-reflector-controller/api@$version" |
  sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$dir/v1" ] || { echo "image-crds: no v1 package in $dir" >&2; exit 1; }

# The module cache is read-only; controller-gen loads the package from a writable copy.
cp -r "$dir" "$scratch/api"
chmod -R u+w "$scratch/api"
(cd "$scratch/api" && GOFLAGS=-mod=mod "$controller_gen" crd paths=./v1/... output:crd:dir="$scratch/out")
crd="$scratch/out/image.toolkit.fluxcd.io_imagerepositories.yaml"
[ -s "$crd" ] || { echo "image-crds: controller-gen produced no ImageRepository CRD" >&2; exit 1; }

mkdir -p "$dest"
cp "$crd" "$dest/"
log "ImageRepository CRD from image-reflector-controller/api $version (controller-gen $cg_version) in $dest"

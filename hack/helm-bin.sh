#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy (no release downloads here) into a cache outside the repository,
# keyed by version, and links it into DEST. A cold build takes about 5 minutes; later calls only link.
#
# Usage: hack/helm-bin.sh DEST_FILE
#   HELM_VERSION (default v3.22.0) and FIW_CACHE_DIR override the defaults.
set -euo pipefail

dest=${1:?usage: helm-bin.sh DEST_FILE}
version=${HELM_VERSION:-v3.22.0}
cache_root=${FIW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-identity-webhook}
cache="$cache_root/helm/$version"
mkdir -p "$cache" "$(dirname "$dest")"

if [ ! -x "$cache/helm" ]; then
  printf 'helm-bin: building helm %s from the module proxy (about 5 minutes cold; cached afterwards)\n' "$version" >&2
  # The same -X flags as Helm's own release build: without them `helm version` is empty and helm assumes
  # Kubernetes 1.20 for .Capabilities and kubeVersion checks. The Kubernetes version is one minor ahead of Helm's
  # client-go (v0.37.x -> 1.37), as in Helm's Makefile.
  gomod=$(go mod download -json "helm.sh/helm/v3@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  client_go=$(sed -n 's|^\s*k8s.io/client-go v\([0-9.]*\).*|\1|p' "$gomod")
  k8s_major=$((${client_go%%.*} + 1))
  k8s_minor=$(echo "$client_go" | cut -d. -f2)
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags="$ldflags -X $pkg.k8sVersionMajor=$k8s_major -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  GOBIN="$cache/.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version"
  mv "$cache/.tmp/helm" "$cache/helm"
  rmdir "$cache/.tmp"
fi
ln -sf "$cache/helm" "$dest"

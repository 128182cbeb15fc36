#!/usr/bin/env bash
# Copies, for the end-to-end suite, what the real projects ship, out of their Go modules (the proxy is the only source
# here): Flux's controller Deployments (config/manager of source-controller and kustomize-controller), Flux's whole
# distribution as Flux Operator bundles it (config/data/flux/<newest>: the six controllers' ServiceAccounts and
# Deployments, and Flux's RBAC, for the doctor suite), cert-manager's
# CustomResourceDefinitions (deploy/crds) and the Prometheus operator's ServiceMonitor and PrometheusRule CRDs, so the
# test cluster runs Flux's own manifests and validates the chart's Issuers, Certificates, ServiceMonitor and
# PrometheusRule with their projects' own schemas.
#
# Usage: FLUX_SOURCE_VERSION=v1.9.6 KUSTOMIZE_CONTROLLER_VERSION=v1.9.6 CERT_MANAGER_VERSION=v1.21.2 \
#          PROMETHEUS_OPERATOR_VERSION=v0.85.0 FLUX_OPERATOR_VERSION=v0.58.1 hack/e2e-manifests.sh DEST_DIR
# DEST_DIR gets source-controller/, kustomize-controller/ (each a kustomization), flux-distribution/ (with a VERSION
# file naming the Flux release), cert-manager-crds/ and monitoring-crds/.
set -euo pipefail

dest=${1:?usage: e2e-manifests.sh DEST_DIR}
source_version=${FLUX_SOURCE_VERSION:?set FLUX_SOURCE_VERSION}
kustomize_version=${KUSTOMIZE_CONTROLLER_VERSION:?set KUSTOMIZE_CONTROLLER_VERSION}
cm_version=${CERT_MANAGER_VERSION:?set CERT_MANAGER_VERSION}
po_version=${PROMETHEUS_OPERATOR_VERSION:?set PROMETHEUS_OPERATOR_VERSION}
fo_version=${FLUX_OPERATOR_VERSION:?set FLUX_OPERATOR_VERSION}

# Outside any module, so the downloads do not touch the project's go.mod / go.sum.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
module_dir() {
  (cd "$scratch" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
}

rm -rf "$dest" && mkdir -p "$dest"
for pair in "source-controller@$source_version" "kustomize-controller@$kustomize_version"; do
  name=${pair%@*}
  dir=$(module_dir "github.com/fluxcd/$pair")
  [ -f "$dir/config/manager/kustomization.yaml" ] || { echo "e2e-manifests: no config/manager in $dir" >&2; exit 1; }
  cp -r "$dir/config/manager" "$dest/$name"
done
dir=$(module_dir "github.com/controlplaneio-fluxcd/flux-operator@$fo_version")
flux=$(find "$dir/config/data/flux" -mindepth 1 -maxdepth 1 -type d -name 'v*' -printf '%f\n' | sort -V | tail -n 1)
[ -n "$flux" ] && [ -f "$dir/config/data/flux/$flux/rbac.yaml" ] || {
  echo "e2e-manifests: no Flux distribution in $dir/config/data/flux" >&2; exit 1; }
mkdir -p "$dest/flux-distribution"
cp "$dir/config/data/flux/$flux/"*.yaml "$dest/flux-distribution/"
echo "$flux" > "$dest/flux-distribution/VERSION"
dir=$(module_dir "github.com/cert-manager/cert-manager@$cm_version")
[ -d "$dir/deploy/crds" ] || { echo "e2e-manifests: no deploy/crds in $dir" >&2; exit 1; }
mkdir -p "$dest/cert-manager-crds"
cp "$dir"/deploy/crds/*.yaml "$dest/cert-manager-crds/"
dir=$(module_dir "github.com/prometheus-operator/prometheus-operator@$po_version")
mkdir -p "$dest/monitoring-crds"
for crd in servicemonitors prometheusrules; do
  cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" "$dest/monitoring-crds/"
done
chmod -R u+w "$dest"
echo "e2e-manifests: Flux source-controller $source_version, kustomize-controller $kustomize_version," \
  "Flux $flux as Flux Operator $fo_version bundles it," \
  "cert-manager $cm_version and Prometheus operator $po_version CRDs in $dest" >&2

#!/usr/bin/env bash
# Copies the CustomResourceDefinitions of the report formats `audit` writes out of the modules that publish them, so
# the test API server validates reports exactly as a cluster with Kyverno or the Open Reports CRDs does:
#   wgpolicyk8s.io/v1alpha2 PolicyReport  from github.com/kyverno/kyverno (config/crds/policyreport; the Policy WG's
#                                         own module, sigs.k8s.io/wg-policy-prototypes, is not on the module proxy)
#   openreports.io/v1alpha1 Report        from github.com/openreports/reports-api (config/crd; the Go types audit uses)
#
# Usage: KYVERNO_VERSION=v1.19.1 OPENREPORTS_VERSION=v0.2.1 hack/report-crds.sh DEST_DIR
set -euo pipefail

dest=${1:?usage: report-crds.sh DEST_DIR}
kyverno=${KYVERNO_VERSION:?set KYVERNO_VERSION}
openreports=${OPENREPORTS_VERSION:?set OPENREPORTS_VERSION}

# Outside any module, so the download does not touch the project's go.mod / go.sum.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
moddir() {
  (cd "$scratch" && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
}
kdir=$(moddir "github.com/kyverno/kyverno@$kyverno")
odir=$(moddir "github.com/openreports/reports-api@$openreports")

rm -rf "$dest" && mkdir -p "$dest"
cp "$kdir"/config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml \
  "$kdir"/config/crds/policyreport/wgpolicyk8s.io_clusterpolicyreports.yaml \
  "$odir"/config/crd/openreports.io_reports.yaml "$odir"/config/crd/openreports.io_clusterreports.yaml "$dest/"
chmod u+w "$dest"/*.yaml
echo "report-crds: PolicyReport CRDs from kyverno $kyverno, Report CRDs from reports-api $openreports in $dest" >&2

#!/usr/bin/env bash
# Builds the control-plane binaries envtest needs (kube-apiserver, etcd), and kube-controller-manager for the
# end-to-end suite, from the Go module proxy, because nothing can be downloaded as a release asset here. The result is
# cached outside the repository, keyed by version, so a fresh clone on the same machine only links it: the
# kube-apiserver build costs about 20 CPU-minutes the first time, kube-controller-manager about 1.5 minutes after it
# (both come from one scratch module and -trimpath, so they share the Go build cache).
#
# Usage: hack/envtest-bins.sh DEST_DIR
#   KUBE_VERSION (default 1.37.2), ETCD_VERSION (default 3.6.16) and FIW_CACHE_DIR override the defaults.
set -euo pipefail

dest=${1:?usage: envtest-bins.sh DEST_DIR}
kube_version=${KUBE_VERSION:-1.37.2}
etcd_version=${ETCD_VERSION:-3.6.16}
cache_root=${FIW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-identity-webhook}
# "stamped": kube-apiserver reports its real version (Helm's kubeVersion check refuses v0.0.0-master).
cache="$cache_root/envtest/kube-$kube_version-stamped-etcd-$etcd_version"
mkdir -p "$cache" "$dest"

log() { printf 'envtest-bins: %s\n' "$*" >&2; }

# build_etcd compiles etcd's server module; `go install` refuses it because of its replace directives.
build_etcd() {
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building etcd v$etcd_version (about 2 minutes cold)"
  (
    cd "$work"
    go mod init fiw.local/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@v$etcd_version" >/dev/null 2>&1
    go build -trimpath -o "$cache/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$cache/etcd.tmp" "$cache/etcd"
}

# version_ldflags stamps the binary with its real version: a build from the module proxy otherwise reports
# v0.0.0-master, which Helm's kubeVersion constraints refuse. client-go carries its own copy of the version variables.
version_ldflags() {
  local pkg flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=v$kube_version -X $pkg.gitMajor=${kube_version%%.*}"
    flags+=" -X $pkg.gitMinor=$(echo "$kube_version" | cut -d. -f2) -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}

# build_kube COMPONENT compiles k8s.io/kubernetes/cmd/COMPONENT (kube-apiserver, kube-controller-manager). Its
# go.mod points every staging module at a local path, so a scratch module repeats those replace lines with the
# published staging versions (v0.x.y). The module imports both commands, so both builds select the same module
# versions and reuse each other's compiled packages.
build_kube() {
  local component=$1 work kdir staging
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building $component v$kube_version (kube-apiserver: about 20 CPU-minutes cold; cached afterwards)"
  kdir=$(go mod download -json "k8s.io/kubernetes@v$kube_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  staging="v0.${kube_version#1.}"
  {
    echo "module fiw.local/kube-apiserver"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes v$kube_version"
    echo
    echo "replace ("
    sed -n '/^replace (/,/^)/p' "$kdir/go.mod" | awk -v v="$staging" '$2 == "=>" { printf "\t%s => %s %s\n", $1, $1, v }'
    echo ")"
  } >"$work/go.mod"
  printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n)\n' >"$work/tools.go"
  (
    cd "$work"
    go mod tidy >/dev/null 2>&1
    go build -trimpath -ldflags "$(version_ldflags)" -o "$cache/$component.tmp" "k8s.io/kubernetes/cmd/$component"
  )
  mv "$cache/$component.tmp" "$cache/$component"
}

[ -x "$cache/etcd" ] || build_etcd
[ -x "$cache/kube-apiserver" ] || build_kube kube-apiserver
[ -x "$cache/kube-controller-manager" ] || build_kube kube-controller-manager

for b in etcd kube-apiserver kube-controller-manager; do
  ln -sf "$cache/$b" "$dest/$b"
done
log "ready in $dest"

#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy and caches them under the user's cache
# directory, so every checkout on this machine shares them and envtest can start a real control
# plane without downloading prebuilt binaries (which cannot be fetched here).
#
# Usage: hack/build-control-plane.sh            build what is missing, print the asset directory
#        hack/build-control-plane.sh --print    only print the asset directory
#
# The asset directory is what KUBEBUILDER_ASSETS must point at.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE_ROOT="${EDGETWIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgetwin}"
ASSETS="${CACHE_ROOT}/k8s/${K8S_VERSION}"

if [[ "${1:-}" == "--print" ]]; then
  echo "${ASSETS}"
  exit 0
fi

log() { printf '[control-plane] %s\n' "$*" >&2; }

have() {
  [[ -x "${ASSETS}/$1" ]] && "${ASSETS}/$1" --version >/dev/null 2>&1
}

if have kube-apiserver && have etcd; then
  echo "${ASSETS}"
  exit 0
fi

mkdir -p "${ASSETS}"
# The tools module lives outside the checkout, keyed by version, so a fresh clone reuses it.
WORK="${CACHE_ROOT}/build/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
mkdir -p "${WORK}/apiserver" "${WORK}/etcd"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

# heartbeat prints a line every 30 s while a long step runs, so nobody stares at a silent terminal.
heartbeat() {
  local what="$1" start
  start=$(date +%s)
  while sleep 30; do log "still ${what} ($(elapsed "${start}") so far)"; done
}

build_apiserver() {
  local dir="${WORK}/apiserver" start
  start=$(date +%s)
  log "building kube-apiserver v${K8S_VERSION} (about 9 minutes on 2 cores the first time)"
  cd "${dir}"
  if [[ ! -f go.mod ]]; then
    cat > go.mod <<GOMOD
module edgetwin.dev/tools/kube-apiserver

go 1.26.0

require k8s.io/kubernetes v${K8S_VERSION}
GOMOD
    cat > tools.go <<'GOSRC'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GOSRC
    log "resolving k8s.io/kubernetes v${K8S_VERSION} and its staging modules"
    go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" > /dev/null
    local kmod
    kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v${K8S_VERSION}.mod"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
    # directories; a consumer must map each of them to the published v0.<minor>.<patch>.
    local staging_version="v0.${K8S_VERSION#1.}"
    grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "${kmod}" | awk '{print $1}' | while read -r m; do
      go mod edit -replace "${m}=${m}@${staging_version}"
    done
  fi
  go mod tidy -e >/dev/null 2>&1 || true
  local pkg=k8s.io/component-base/version
  local cpkg=k8s.io/client-go/pkg/version
  local minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w"
  for p in "${pkg}" "${cpkg}"; do
    ld+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor}"
    ld+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=${date} -X ${p}.gitCommit=edgetwin-built"
  done
  heartbeat "building kube-apiserver" & local hb=$!
  # shellcheck disable=SC2064
  trap "kill ${hb} 2>/dev/null || true" RETURN
  go build -trimpath -ldflags "${ld}" -o "${ASSETS}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "${ASSETS}/kube-apiserver.tmp" "${ASSETS}/kube-apiserver"
  log "kube-apiserver built in $(elapsed "${start}")"
}

build_etcd() {
  local dir="${WORK}/etcd" start
  start=$(date +%s)
  log "building etcd v${ETCD_VERSION} (about 1 minute)"
  cd "${dir}"
  if [[ ! -f go.mod ]]; then
    cat > go.mod <<GOMOD
module edgetwin.dev/tools/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v${ETCD_VERSION}
GOMOD
    # etcd's own main package lives in the repository root module; its body is this one call.
    cat > main.go <<'GOSRC'
// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 for edgetwin's tests.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GOSRC
    go mod tidy >/dev/null
  fi
  local v=go.etcd.io/etcd/api/v3/version
  heartbeat "building etcd" & local hb=$!
  # shellcheck disable=SC2064
  trap "kill ${hb} 2>/dev/null || true" RETURN
  go build -trimpath -ldflags "-s -w -X ${v}.GitSHA=edgetwin-built" -o "${ASSETS}/etcd.tmp" .
  mv "${ASSETS}/etcd.tmp" "${ASSETS}/etcd"
  log "etcd built in $(elapsed "${start}")"
}

have etcd || build_etcd
have kube-apiserver || build_apiserver

# envtest looks for kubectl beside the other assets; link the machine's one if there is one.
if [[ ! -e "${ASSETS}/kubectl" ]] && command -v kubectl >/dev/null 2>&1; then
  ln -sf "$(command -v kubectl)" "${ASSETS}/kubectl"
fi

"${ASSETS}/kube-apiserver" --version >&2
"${ASSETS}/etcd" --version | head -1 >&2
echo "${ASSETS}"

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

if have kube-apiserver && have etcd && [[ -e "${ASSETS}/kubectl" ]]; then
  echo "${ASSETS}"
  exit 0
fi

# Stop any heartbeat when the script ends, including on a failed build.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

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

# version_ldflags stamps the Kubernetes version into a binary, so that 'kubectl version' reports
# v${K8S_VERSION} rather than a development build.
version_ldflags() {
  local minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X ${p}.gitVersion=v${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor}"
    ld+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=${date} -X ${p}.gitCommit=edgetwin-built"
  done
  echo "${ld}"
}

# ensure_k8s_module writes (once) the tools module that builds binaries of k8s.io/kubernetes.
ensure_k8s_module() {
  cd "${WORK}/apiserver"
  # The marker is written last, so a module left half-made by an interrupted run is redone.
  [[ -f .resolved ]] && return 0
  rm -f go.mod go.sum
  log "resolving k8s.io/kubernetes v${K8S_VERSION} and its staging modules"
  cat > go.mod <<GOMOD
module edgetwin.dev/tools/kube-apiserver

go 1.26.0

require k8s.io/kubernetes v${K8S_VERSION}
GOMOD
  cat > tools.go <<'GOSRC'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GOSRC
  go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" > /dev/null
  local kmod m
  kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v${K8S_VERSION}.mod"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
  # directories; a consumer must map each of them to the published v0.<minor>.<patch>.
  local staging_version="v0.${K8S_VERSION#1.}"
  for m in $(grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "${kmod}" | awk '{print $1}'); do
    go mod edit -replace "${m}=${m}@${staging_version}"
  done
  go mod tidy
  touch .resolved
}

build_apiserver() {
  local start
  start=$(date +%s)
  log "building kube-apiserver v${K8S_VERSION} (about 9 minutes on 2 cores the first time)"
  ensure_k8s_module
  heartbeat "building kube-apiserver" & local hb=$!
  # shellcheck disable=SC2064
  trap "kill ${hb} 2>/dev/null || true" RETURN
  go build -trimpath -ldflags "$(version_ldflags)" -o "${ASSETS}/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
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

build_kubectl() {
  local start
  start=$(date +%s)
  log "no kubectl on PATH: building kubectl v${K8S_VERSION} (a few minutes)"
  ensure_k8s_module
  heartbeat "building kubectl" & local hb=$!
  # shellcheck disable=SC2064
  trap "kill ${hb} 2>/dev/null || true" RETURN
  go build -trimpath -ldflags "$(version_ldflags)" -o "${ASSETS}/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl
  mv "${ASSETS}/kubectl.tmp" "${ASSETS}/kubectl"
  log "kubectl built in $(elapsed "${start}")"
}

have etcd || build_etcd
have kube-apiserver || build_apiserver

# The tests run real kubectl. Use the machine's one; on a machine without kubectl, build the
# matching one from the same module (a couple of minutes) so the tests do not fail for want of it.
if [[ ! -e "${ASSETS}/kubectl" ]]; then
  if command -v kubectl >/dev/null 2>&1; then
    ln -sf "$(command -v kubectl)" "${ASSETS}/kubectl"
  else
    build_kubectl
  fi
fi

"${ASSETS}/kube-apiserver" --version >&2
"${ASSETS}/etcd" --version | head -1 >&2
echo "${ASSETS}"

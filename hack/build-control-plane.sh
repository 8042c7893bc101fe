#!/usr/bin/env bash
# Builds kube-apiserver, kube-scheduler, kube-controller-manager and etcd from the Go module proxy
# and caches them under the user's cache directory, so every checkout on this machine shares them
# and envtest can start a real control plane without downloading prebuilt binaries (which cannot
# be fetched here). Only what is missing is built: a cache made before kube-scheduler and
# kube-controller-manager were added gets just those two.
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

# The Kubernetes binaries built from k8s.io/kubernetes/cmd/<name>, with a rough cold build time on
# 2 cores for the progress line (later ones reuse most of the compiled packages of earlier ones).
K8S_BINARIES=(kube-apiserver kube-scheduler kube-controller-manager)
declare -A K8S_BUILD_HINT=(
  [kube-apiserver]="about 9 minutes on 2 cores the first time"
  [kube-scheduler]="a few minutes"
  [kube-controller-manager]="a few minutes"
  [kubectl]="a few minutes"
)

have_all() {
  local b
  for b in "${K8S_BINARIES[@]}" etcd; do have "${b}" || return 1; done
  [[ -e "${ASSETS}/kubectl" ]]
}

if have_all; then
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
  # The marker is written last and names the commands the module was resolved for, so a module
  # left half-made by an interrupted run, or made for fewer commands, is redone.
  local cmds=("${K8S_BINARIES[@]}" kubectl) c
  [[ -f .resolved && "$(cat .resolved)" == "${cmds[*]}" ]] && return 0
  rm -f go.mod go.sum .resolved
  log "resolving k8s.io/kubernetes v${K8S_VERSION} and its staging modules"
  cat > go.mod <<GOMOD
module edgetwin.dev/tools/kube-apiserver

go 1.26.0

require k8s.io/kubernetes v${K8S_VERSION}
GOMOD
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${cmds[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "${c}"; done
    printf ')\n'
  } > tools.go
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
  echo "${cmds[*]}" > .resolved
}

# build_k8s builds k8s.io/kubernetes/cmd/$1 from the tools module into the asset directory.
build_k8s() {
  local name="$1" start
  start=$(date +%s)
  log "building ${name} v${K8S_VERSION} (${K8S_BUILD_HINT[${name}]})"
  ensure_k8s_module
  heartbeat "building ${name}" & local hb=$!
  # shellcheck disable=SC2064
  trap "kill ${hb} 2>/dev/null || true; trap - RETURN" RETURN
  go build -trimpath -ldflags "$(version_ldflags)" -o "${ASSETS}/${name}.tmp" "k8s.io/kubernetes/cmd/${name}"
  mv "${ASSETS}/${name}.tmp" "${ASSETS}/${name}"
  log "${name} built in $(elapsed "${start}")"
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
  trap "kill ${hb} 2>/dev/null || true; trap - RETURN" RETURN
  go build -trimpath -ldflags "-s -w -X ${v}.GitSHA=edgetwin-built" -o "${ASSETS}/etcd.tmp" .
  mv "${ASSETS}/etcd.tmp" "${ASSETS}/etcd"
  log "etcd built in $(elapsed "${start}")"
}

have etcd || build_etcd
for b in "${K8S_BINARIES[@]}"; do
  have "${b}" || build_k8s "${b}"
done

# The tests run real kubectl. Use the machine's one; on a machine without kubectl, build the
# matching one from the same module (a couple of minutes) so the tests do not fail for want of it.
if [[ ! -e "${ASSETS}/kubectl" ]]; then
  if command -v kubectl >/dev/null 2>&1; then
    ln -sf "$(command -v kubectl)" "${ASSETS}/kubectl"
  else
    log "no kubectl on PATH"
    build_k8s kubectl
  fi
fi

for b in "${K8S_BINARIES[@]}"; do
  printf '%s: %s\n' "${b}" "$("${ASSETS}/${b}" --version)" >&2
done
# Not '| head -1': etcd dies of SIGPIPE writing its later lines, which pipefail makes fatal.
etcd_version="$("${ASSETS}/etcd" --version)"
echo "${etcd_version%%$'\n'*}" >&2
echo "${ASSETS}"

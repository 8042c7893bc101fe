#!/usr/bin/env bash
# Generates the typed clientset, listers, informers and apply configurations for
# edgetwin.dev/v1alpha1 under pkg/client, with k8s.io/code-generator's kube_codegen.sh taken
# from the module cache at the pinned version.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CODE_GENERATOR_VERSION="${CODE_GENERATOR_VERSION:-v0.37.2}"

CODEGEN_PKG="$(cd "${ROOT}" && GOFLAGS= go mod download -json "k8s.io/code-generator@${CODE_GENERATOR_VERSION}" \
  | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "${CODEGEN_PKG}" || ! -f "${CODEGEN_PKG}/kube_codegen.sh" ]]; then
  echo "cannot find kube_codegen.sh of k8s.io/code-generator@${CODE_GENERATOR_VERSION}" >&2
  exit 1
fi

# The generators are installed into the cache's tool directory, never into the checkout.
export GOBIN="${EDGETWIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edgetwin}/tools/code-generator-${CODE_GENERATOR_VERSION}"
mkdir -p "${GOBIN}"

# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

BOILERPLATE="${ROOT}/hack/boilerplate.go.txt"

cd "${ROOT}"
# kube_codegen.sh greps these for stale files before it writes; make them exist so it stays quiet.
mkdir -p pkg/client/{applyconfiguration,clientset,listers,informers}
kube::codegen::gen_client \
  --with-watch \
  --with-applyconfig \
  --output-dir "${ROOT}/pkg/client" \
  --output-pkg "github.com/edgetwin/edgetwin/pkg/client" \
  --boilerplate "${BOILERPLATE}" \
  --one-input-api api \
  "${ROOT}"

#!/usr/bin/env bash
# Writes a kustomize overlay of config/default into DIR that sets cloudcore's image and, when
# given, the addresses edge nodes dial CloudHub at (comma-separated; they replace the in-cluster
# defaults). 'make deploy' applies it; 'kubectl kustomize DIR' shows it.
#
#   hack/deploy-overlay.sh DIR IMAGE[:TAG] [ADVERTISE_ADDRESSES]
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 DIR IMAGE[:TAG] [ADVERTISE_ADDRESSES]" >&2
  exit 2
fi
dir="$1" img="$2" addresses="${3:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "${img}" in *@*) echo "the image must be NAME[:TAG], not a digest: ${img}" >&2; exit 2 ;; esac
name="${img%:*}" tag="${img##*:}"
# No tag, or the last colon is a registry's port (reg:5000/x/cloudcore).
case "${tag}" in "${img}"|*/*) name="${img}" tag=latest ;; esac
if [[ "${addresses}" =~ [[:space:]] ]]; then
  echo "advertise addresses are comma-separated, without spaces: ${addresses}" >&2
  exit 2
fi

mkdir -p "${dir}"
{
  echo "# Written by hack/deploy-overlay.sh."
  echo "resources:"
  echo "- $(realpath --relative-to="${dir}" "${root}/config/default")"
  echo "images:"
  echo "- name: edgetwin/cloudcore"
  echo "  newName: ${name}"
  echo "  newTag: \"${tag}\""
  if [[ -n "${addresses}" ]]; then
    echo "configMapGenerator:"
    echo "- name: cloudhub"
    echo "  behavior: merge"
    echo "  literals:"
    echo "  - advertise-addresses=${addresses}"
  fi
} >"${dir}/kustomization.yaml"

#!/usr/bin/env bash
# Builds container image tarballs without Docker: the static binaries, then hack/imagebuild
# packs each into OUTDIR/<name>.tar (an OCI layout with a Docker manifest.json: 'ctr images
# import', 'docker load' and 'podman load' read it).
#
#   hack/build-images.sh OUTDIR REPOSITORY_PREFIX VERSION cloudcore edgecore
set -euo pipefail

if (($# < 4)); then
  echo "usage: $0 OUTDIR REPOSITORY_PREFIX VERSION IMAGE..." >&2
  exit 2
fi
out="$(realpath -m "$1")" prefix="$2" version="$3"
shift 3
cd "$(dirname "${BASH_SOURCE[0]}")/.."

arch="$(go env GOARCH)"
bins="$(mktemp -d)"
trap 'rm -rf "${bins}"' EXIT
mkdir -p "${out}"
go build -o "${bins}/imagebuild" ./hack/imagebuild
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
for image in "$@"; do
  dirs=()
  case "${image}" in
    cloudcore)
      mkdir -p "${bins}/linux_${arch}"
      echo "building cloudcore ${version} for linux/${arch} (static, no cgo)" >&2
      CGO_ENABLED=0 GOOS=linux GOARCH="${arch}" go build -trimpath -ldflags "-s -w" \
        -o "${bins}/linux_${arch}/cloudcore" ./cmd/cloudcore
      ;;
    edgecore)
      hack/build-edge.sh "${bins}" "${version}" "${arch}"
      dirs=(--dir /var/lib/edgecore)
      ;;
    *) echo "unknown image ${image} (want cloudcore or edgecore)" >&2; exit 2 ;;
  esac
  "${bins}/imagebuild" --binary "${bins}/linux_${arch}/${image}" --arch "${arch}" \
    --name "${prefix}${image}:${version}" --created "${epoch}" "${dirs[@]}" \
    --output "${out}/${image}.tar"
  echo "wrote ${out}/${image}.tar (${prefix}${image}:${version})" >&2
done

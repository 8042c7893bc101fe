#!/usr/bin/env bash
# Builds the test images Edged's tests and 'make dev' run, as OCI tarballs (hack/imagebuild),
# from the static Go programs under test/images/:
#   OUTDIR/pause.tar     edgetwin.dev/pause:1     the sandbox image of the project's containerd
#   OUTDIR/workload.tar  edgetwin.dev/workload:1  a workload that prints its args, env and files
# OUTDIR defaults to the user's cache ($EDGETWIN_CACHE/test-images), outside the checkout. The
# tarballs depend only on the sources, so rebuilding is cheap and changes nothing when nothing
# changed. Import them with 'ctr -n k8s.io images import' (pkg/containerd does).
#
#   hack/build-test-images.sh [OUTDIR]
set -euo pipefail

cache="${EDGETWIN_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/edgetwin}"
out="$(realpath -m "${1:-${cache}/test-images}")"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

arch="$(go env GOARCH)"
bins="$(mktemp -d)"
trap 'rm -rf "${bins}"' EXIT
mkdir -p "${out}" "${bins}/linux_${arch}"
go build -o "${bins}/imagebuild" ./hack/imagebuild
for image in pause workload; do
  CGO_ENABLED=0 GOOS=linux GOARCH="${arch}" go build -trimpath -ldflags "-s -w" \
    -o "${bins}/linux_${arch}/${image}" "./test/images/${image}"
  "${bins}/imagebuild" --binary "${bins}/linux_${arch}/${image}" --arch "${arch}" \
    --name "edgetwin.dev/${image}:1" --created 0 --output "${out}/${image}.tar"
done
echo "${out}"

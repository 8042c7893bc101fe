#!/usr/bin/env bash
# Builds static edgecore binaries for Linux edge machines: one per architecture named, into
# OUTDIR/linux_<arch>/edgecore. edgecore links SQLite through cgo, so each architecture needs a
# C cross-compiler (Debian's gcc-aarch64-linux-gnu for arm64) and the C library is linked
# statically: the binary runs on any Linux of that architecture, with nothing else installed.
#
#   hack/build-edge.sh OUTDIR VERSION amd64 arm64
set -euo pipefail

if (($# < 3)); then
  echo "usage: $0 OUTDIR VERSION ARCH..." >&2
  exit 2
fi
out="$(realpath -m "$1")" version="$2"
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shift 2

host_arch="$(go env GOHOSTARCH)"
for arch in "$@"; do
  case "${arch}" in
    "${host_arch}") cc="${CC:-gcc}" ;;
    arm64) cc=aarch64-linux-gnu-gcc ;;
    amd64) cc=x86_64-linux-gnu-gcc ;;
    *) echo "no C cross-compiler known for ${arch}" >&2; exit 1 ;;
  esac
  if ! command -v "${cc}" >/dev/null; then
    echo "${cc} is missing: edgecore for ${arch} needs it (Debian: apt-get install gcc-$([[ ${arch} == arm64 ]] && echo aarch64 || echo x86-64)-linux-gnu; make build-edge installs it)" >&2
    exit 1
  fi
  mkdir -p "${out}/linux_${arch}"
  echo "building edgecore ${version} for linux/${arch} (static, CC=${cc})" >&2
  # netgo and osusergo keep glibc's NSS (which cannot be linked statically) out;
  # sqlite_omit_load_extension keeps dlopen out.
  # edgecore-noedged is the device-only build (docs/benchmarks.md: a smaller binary and less
  # memory, for gateways that run no pods).
  for variant in edgecore:"" edgecore-noedged:",noedged"; do
    CGO_ENABLED=1 GOOS=linux GOARCH="${arch}" CC="${cc}" go build -trimpath \
      -tags "osusergo,netgo,sqlite_omit_load_extension${variant#*:}" \
      -ldflags "-s -w -X github.com/edgetwin/edgetwin/edge/agent.Version=${version} -linkmode external -extldflags -static" \
      -o "${out}/linux_${arch}/${variant%%:*}" ./cmd/edgecore
  done
done

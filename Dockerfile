# Builds edgetwin's images with Docker, for those who have it ('make images' builds the same
# images without Docker, see docs/install.md):
#
#   docker build -t edgetwin/cloudcore:TAG .                      # cloudcore (the default target)
#   docker build --target edgecore -t edgetwin/edgecore:TAG .     # edgecore
#
# Override BASE_IMAGE to build from another registry (BASE_IMAGE=REGISTRY/golang:1.26). The
# binaries are static, so the runtime image is empty: no shell, no package manager, a numeric
# non-root user.
ARG BASE_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=scratch

FROM ${BASE_IMAGE} AS builder
ARG VERSION=v0.0.0-dev
WORKDIR /workspace
# The modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# cloudcore needs no cgo: a static binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/cloudcore ./cmd/cloudcore
# edgecore links SQLite through cgo; hack/build-edge.sh links it statically (the golang image has gcc).
RUN hack/build-edge.sh /out/edge "${VERSION}" "$(go env GOARCH)" && cp "/out/edge/linux_$(go env GOARCH)/edgecore" /out/edgecore \
    && mkdir -p /out/var/lib/edgecore

# edgecore: run 'edgecore join' then 'edgecore run' with a volume on /var/lib/edgecore.
FROM ${RUNTIME_IMAGE} AS edgecore
COPY --from=builder /out/edgecore /edgecore
COPY --from=builder --chown=65532:65532 /out/var/lib/edgecore /var/lib/edgecore
USER 65532:65532
ENTRYPOINT ["/edgecore"]

# cloudcore, the default target.
FROM ${RUNTIME_IMAGE} AS cloudcore
WORKDIR /
COPY --from=builder /out/cloudcore /cloudcore
USER 65532:65532
ENTRYPOINT ["/cloudcore"]

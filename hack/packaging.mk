# Packaging: the kustomize install, the Helm chart, the operator bundle, container images and
# edge binaries. Included by the Makefile after its own variables and targets, so it uses
# CACHE_DIR, TOOLS_DIR, KUBECTL and CONTROLLER_GEN, and extends TEST_PACKAGES, test and
# verify-gen. See docs/install.md.

## Versions
# The version stamped into binaries and image tags.
VERSION ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || echo v0.0.0-dev)
# The operator bundle's version (semver without the v).
BUNDLE_VERSION ?= 0.1.0
HELM_VERSION ?= v3.22.0

## Tools
HELM ?= $(TOOLS_DIR)/helm-$(HELM_VERSION)
# test/packaging finds helm here.
export EDGETWIN_HELM := $(HELM)

## Images: make images writes dist/images/<name>.tar, tagged $(IMAGE_PREFIX)<name>:$(VERSION).
IMAGE_PREFIX ?= edgetwin/
# The cloudcore image make deploy sets in the Deployment (push it where your cluster pulls from).
IMG ?= $(IMAGE_PREFIX)cloudcore:$(VERSION)
# The addresses edge nodes dial CloudHub at (comma-separated), for make deploy; empty keeps the
# in-cluster names of config/default.
ADVERTISE_ADDRESS ?=

## Edge binaries: make build-edge writes bin/edge/linux_<arch>/edgecore.
EDGE_ARCHES ?= amd64 arm64
EDGE_PACKAGES = gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross

# make test: the arm64 cross-compiler and qemu-user for the arm64 edgecore test, helm for the
# chart's tests, and the static builds test/packaging makes done once beforehand, so that go
# test's timeout measures the tests rather than a cold build cache.
TEST_PACKAGES += gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
test: helm packaging-build-cache

# make verify-gen also checks the chart's and the bundle's copies of generated files.
verify-gen: verify-packaging

##@ Packaging

.PHONY: helm
helm: $(HELM) ## Build helm into the tool cache.

$(HELM):
	$(call go-install-tool,$@,helm.sh/helm/v3/cmd/helm,$(HELM_VERSION))

tools: $(HELM)

.PHONY: chart
chart: manifests ## Copy the generated CRDs and RBAC into charts/edgetwin (crds/, files/).
	@mkdir -p charts/edgetwin/crds charts/edgetwin/files
	@rm -f charts/edgetwin/crds/*.yaml
	cp config/crd/bases/*.yaml charts/edgetwin/crds/
	cp config/rbac/role.yaml config/rbac/leader_election_role.yaml config/rbac/metrics_auth_role.yaml \
		config/rbac/metrics_reader_role.yaml charts/edgetwin/files/

.PHONY: helm-lint
helm-lint: chart $(HELM) ## Lint the chart and render it.
	"$(HELM)" lint --strict charts/edgetwin
	"$(HELM)" template edgetwin charts/edgetwin --namespace edgetwin-system >/dev/null

.PHONY: bundle
bundle: manifests ## Write the operator bundle (bundle/, bundle.Dockerfile) from config/ and the samples.
	"$(KUBECTL)" kustomize config/default | go run ./hack/bundlegen --version $(BUNDLE_VERSION)

.PHONY: verify-packaging
verify-packaging: chart bundle ## Fail if the chart's or the bundle's copies differ from what is committed.
	@changed="$$(git status --porcelain -- charts bundle bundle.Dockerfile)"; \
	if [ -n "$$changed" ]; then \
		echo "The chart or the bundle differs from what is committed; run 'make chart bundle' and commit:"; \
		echo "$$changed"; git --no-pager diff --stat -- charts bundle bundle.Dockerfile; exit 1; \
	fi; echo "the chart and the bundle are up to date"

# Builds what test/packaging builds, with the same scripts, and throws the result away: only go's
# build cache keeps it. Quick when nothing changed.
.PHONY: packaging-build-cache
packaging-build-cache: packages-test
	@out="$$(mktemp -d)"; trap 'rm -rf "$$out"' EXIT; \
	hack/build-edge.sh "$$out" v0.0.0 amd64 arm64 && hack/build-images.sh "$$out" edgetwin/ v0.0.0 cloudcore >/dev/null

.PHONY: images
images: packages-dev ## Build the cloudcore and edgecore image tarballs into dist/images, without Docker.
	hack/build-images.sh dist/images "$(IMAGE_PREFIX)" "$(VERSION)" cloudcore edgecore

.PHONY: build-edge
build-edge: ## Build static edgecore binaries for Linux amd64 and arm64 into bin/edge.
	@hack/ensure-packages.sh $(EDGE_PACKAGES)
	hack/build-edge.sh bin/edge "$(VERSION)" $(EDGE_ARCHES)

##@ Deployment

# deploy renders config/default through a throwaway overlay (hack/deploy-overlay.sh) that sets
# the image and, when given, the advertised addresses.
.PHONY: deploy
deploy: manifests ## Install cloudcore and the CRDs into the cluster in KUBECONFIG (IMG=..., ADVERTISE_ADDRESS=a.example.org,...).
	@overlay="$$(mktemp -d)"; trap 'rm -rf "$$overlay"' EXIT; \
	hack/deploy-overlay.sh "$$overlay" "$(IMG)" "$(ADVERTISE_ADDRESS)"; \
	"$(KUBECTL)" apply --server-side -k "$$overlay"

.PHONY: undeploy
undeploy: ## Remove cloudcore and the CRDs (with every Device, DeviceModel and EdgeNode) from the cluster in KUBECONFIG.
	"$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -k config/default

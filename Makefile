# edgetwin — build, generate, test.
#
# Everything heavy (the control-plane binaries, code generators, linters) is cached under the
# user's cache directory, outside the checkout, so every clone on a machine shares it.

# kustomize is the one built into kubectl.

# Setting SHELL to bash allows bash commands to be executed by recipes.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec


CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/edgetwin
TOOLS_DIR ?= $(CACHE_DIR)/tools
export EDGETWIN_CACHE := $(CACHE_DIR)

## Versions
K8S_VERSION ?= 1.37.2
ETCD_VERSION ?= 3.6.16
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CODE_GENERATOR_VERSION ?= v0.37.2
GOLANGCI_LINT_VERSION ?= v2.15.0

## Tools, built from the Go module proxy into TOOLS_DIR with their version in the name.
CONTROLLER_GEN ?= $(TOOLS_DIR)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
GOLANGCI_LINT ?= $(TOOLS_DIR)/golangci-lint-$(GOLANGCI_LINT_VERSION)
KUBECTL ?= kubectl

## The control plane for tests: kube-apiserver, etcd, kube-scheduler and kube-controller-manager,
## built by hack/build-control-plane.sh.
ENVTEST_ASSETS := $(CACHE_DIR)/k8s/$(K8S_VERSION)
export KUBEBUILDER_ASSETS ?= $(ENVTEST_ASSETS)

## Test settings. Every go test has a timeout; hub, edge and wire packages run with -race.
TEST_TIMEOUT ?= 15m
GO_TEST_FLAGS ?= -race
UNIT_PKGS = $(shell go list ./... | grep -v -e /test/e2e -e /test/integration -e /test/harness)

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from the API types and the reconcilers' markers.
	"$(CONTROLLER_GEN)" rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy methods, and the clientset, listers and informers under pkg/client.
	"$(CONTROLLER_GEN)" object:headerFile="hack/boilerplate.go.txt" paths="./api/..."
	CODE_GENERATOR_VERSION=$(CODE_GENERATOR_VERSION) hack/update-codegen.sh

.PHONY: verify-gen
verify-gen: manifests generate ## Regenerate everything and fail if a generated file differs from what is committed.
	@changed="$$(git status --porcelain -- api config pkg/client PROJECT)"; \
	if [ -n "$$changed" ]; then \
		echo "Generated files differ from what is committed; run 'make manifests generate' and commit:"; \
		echo "$$changed"; git --no-pager diff --stat -- api config pkg/client; exit 1; \
	fi; echo "generated files are up to date"

.PHONY: fmt
fmt: ## Run go fmt against code.
	go fmt ./...

.PHONY: vet
vet: ## Run go vet against code.
	go vet -tags e2e ./...

.PHONY: control-plane
control-plane: ## Build (once) kube-apiserver, etcd, kube-scheduler and kube-controller-manager into the cache for envtest.
	@hack/build-control-plane.sh >/dev/null

# Debian packages: gcc for cgo (SQLite) and the race detector; mosquitto for the tests of the
# external broker mode.
DEV_PACKAGES = gcc libc6-dev ca-certificates
TEST_PACKAGES = $(DEV_PACKAGES) mosquitto

.PHONY: packages-dev packages-test
packages-dev:
	@hack/ensure-packages.sh $(DEV_PACKAGES)
packages-test:
	@hack/ensure-packages.sh $(TEST_PACKAGES)

.PHONY: test
test: packages-test control-plane ## Run unit and integration tests (a real API server through envtest; not e2e), then the fuzz targets briefly.
	go test -timeout $(TEST_TIMEOUT) $(GO_TEST_FLAGS) $(UNIT_PKGS)
	@# The device-only edgecore (build tag noedged): its own wiring and refusals.
	go vet -tags noedged ./edge/... ./cmd/edgecore
	go test -timeout 5m $(GO_TEST_FLAGS) -tags noedged ./edge/agent ./cmd/edgecore
	@# The integration suite builds cloudcore and edgecore itself, which go test's result cache
	@# cannot see: a change to the binaries alone would replay an old pass. -count=1 runs it always.
	go test -count=1 -timeout $(TEST_TIMEOUT) $(GO_TEST_FLAGS) ./test/integration
	$(MAKE) --no-print-directory fuzz

.PHONY: test-e2e
test-e2e: packages-test control-plane ## Run the end-to-end suite: real processes (API server, cloudcore, edgecore, mosquitto, simulator) checked through kubectl.
	go test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v ./test/e2e

E2E_TIMEOUT ?= 15m

# FUZZ_TARGETS lists package:FuzzFunc pairs; make test runs each for FUZZ_TIME.
FUZZ_TARGETS = ./pkg/wire:FuzzDecode ./pkg/property:FuzzCheckValue ./cloud/join:FuzzDecodeRequest \
	./cloud/renew:FuzzDecodeRequest ./edge/twin:FuzzParsePayload ./pkg/sim:FuzzHandleMessage
# A count, not a duration: when a duration runs out while a worker is mid-input, go test fails the
# run with "context deadline exceeded" (seen in CI twice); 20000 inputs take 1-5 s per target here.
FUZZ_TIME ?= 20000x

# -fuzzminimizetime 100x: go's default (60 s) minimizes each new input for up to a minute, which
# stalls a 10 s run and can fail it with "context deadline exceeded" (seen in CI).
.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZ_TIME (default 20000 inputs) each.
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzzing $$fn in $$pkg for $(FUZZ_TIME)"; \
		go test -timeout 5m -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) -fuzzminimizetime 100x "$$pkg" || exit 1; \
	done

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	"$(GOLANGCI_LINT)" run --timeout 10m --build-tags e2e ./...

.PHONY: lint-fix
lint-fix: $(GOLANGCI_LINT) ## Run golangci-lint and apply its fixes.
	"$(GOLANGCI_LINT)" run --fix --build-tags e2e ./...

##@ Build

.PHONY: build
build: ## Build cloudcore, edgecore (and the device-only edgecore-noedged), edgetwin and edgetwin-sim into bin/.
	@mkdir -p bin
	go build -o bin/ ./cmd/cloudcore ./cmd/edgecore ./cmd/edgetwin ./cmd/edgetwin-sim
	go build -tags noedged -o bin/edgecore-noedged ./cmd/edgecore

DEV_FLAGS ?=

.PHONY: dev
dev: packages-dev control-plane build ## Run everything locally: control plane, cloudcore, 2 edge nodes, simulated devices (DEV_FLAGS="--fresh --edges 3 ...").
	bin/edgetwin dev $(DEV_FLAGS)

.PHONY: run
run: manifests generate ## Run cloudcore from your host against the cluster in KUBECONFIG.
	go run ./cmd/cloudcore

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml with the CRDs and cloudcore's deployment (IMG=, ADVERTISE_ADDRESS= as for deploy).
	mkdir -p dist
	tmp=$$(mktemp -d); hack/deploy-overlay.sh $$tmp "$(IMG)" "$(ADVERTISE_ADDRESS)"; \
		"$(KUBECTL)" kustomize $$tmp > dist/install.yaml; rm -rf $$tmp
	@echo "wrote dist/install.yaml"

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests ## Install the CRDs into the cluster in KUBECONFIG.
	"$(KUBECTL)" apply --server-side -k config/crd

.PHONY: uninstall
uninstall: ## Remove the CRDs from the cluster in KUBECONFIG.
	"$(KUBECTL)" delete --ignore-not-found=$(ignore-not-found) -k config/crd

##@ Tools

# go-install-tool builds $(2)@$(3) with the Go module proxy and moves it to $(1).
define go-install-tool
@echo "building $(notdir $(1)) from $(2)@$(3)"
@mkdir -p "$(TOOLS_DIR)"
@tmp=$$(mktemp -d); GOBIN="$$tmp" GOFLAGS= go install "$(2)@$(3)" && mv "$$tmp"/* "$(1)"; rm -rf "$$tmp"
endef

$(CONTROLLER_GEN):
	$(call go-install-tool,$@,sigs.k8s.io/controller-tools/cmd/controller-gen,$(CONTROLLER_TOOLS_VERSION))

$(GOLANGCI_LINT):
	$(call go-install-tool,$@,github.com/golangci/golangci-lint/v2/cmd/golangci-lint,$(GOLANGCI_LINT_VERSION))

.PHONY: tools
tools: $(CONTROLLER_GEN) $(GOLANGCI_LINT) ## Build the code generators and the linter into the cache.

# Areas with many targets of their own (packaging, benchmarks) keep them in hack/*.mk. Included
# last, so they can extend the variables above (TEST_PACKAGES += ...) and add prerequisites to
# targets above (test: ..., verify-gen: ...).
-include $(sort $(wildcard hack/*.mk))

# flux-identity-webhook — every tool the project needs is built from the Go module proxy into bin/ (gitignored).
# Slow builds (kube-apiserver, etcd) are cached outside the repository, so a fresh clone only links them.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/bin
CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/flux-identity-webhook

KUBE_VERSION   ?= 1.37.2
ETCD_VERSION   ?= 3.6.16
FLUX_SOURCE_VERSION := $(shell sed -n 's|^\s*github.com/fluxcd/source-controller/api \(v[^ ]*\).*|\1|p' go.mod)
IMAGE_REFLECTOR_VERSION := $(shell sed -n 's|^\s*github.com/fluxcd/image-reflector-controller/api \(v[^ ]*\).*|\1|p' go.mod)
gomod_version = $(shell sed -n 's|^\s*$(1) \(v[^ ]*\).*|\1|p' go.mod)
KUSTOMIZE_API_VERSION        := $(call gomod_version,github.com/fluxcd/kustomize-controller/api)
HELM_API_VERSION             := $(call gomod_version,github.com/fluxcd/helm-controller/api)
NOTIFICATION_API_VERSION     := $(call gomod_version,github.com/fluxcd/notification-controller/api)
IMAGE_AUTOMATION_API_VERSION := $(call gomod_version,github.com/fluxcd/image-automation-controller/api)
FLUX_OPERATOR_VERSION        := $(call gomod_version,github.com/controlplaneio-fluxcd/flux-operator)
CONTROLLER_GEN_VERSION ?= v0.23.0
HELM_VERSION ?= v3.22.0
GOLANGCI_LINT_VERSION ?= v2.15.0
CERT_MANAGER_VERSION := $(shell sed -n 's|^\s*github.com/cert-manager/cert-manager \(v[^ ]*\).*|\1|p' go.mod)
KUSTOMIZE_CONTROLLER_VERSION ?= v1.9.6
PROMETHEUS_OPERATOR_VERSION ?= v0.85.0
# The report CRDs (hack/report-crds.sh): PolicyReport from Kyverno's module, Report from the module whose types audit uses.
KYVERNO_VERSION ?= v1.19.1
OPENREPORTS_VERSION := $(shell sed -n 's|^\s*github.com/openreports/reports-api \(v[^ ]*\).*|\1|p' go.mod)

# Build stamp: the binary's `version`, the server's start-up log and fluxidentity_build_info, the image's labels.
VERSION ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || echo v$$(sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/flux-identity-webhook/Chart.yaml)-dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
VERSION_PKG := github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app
LDFLAGS := -s -w -X $(VERSION_PKG).version=$(VERSION) -X $(VERSION_PKG).commit=$(COMMIT)
IMAGE_REPOSITORY ?= ghcr.io/fluxidentity/flux-identity-webhook
IMAGE_PLATFORMS  ?= linux/amd64,linux/arm64
IMAGE_DIR        := $(BIN)/image
E2E_MANIFESTS    := $(BIN)/e2e-manifests
RELEASE_DIR      ?= $(BIN)/release
CHART_REPOSITORY ?= ghcr.io/fluxidentity/charts/flux-identity-webhook
# The key release-verify signs its throwaway release with (generated; never a real release key).
RELEASE_VERIFY_KEY := $(BIN)/release-verify-key
CERT_MANAGER_BIN := $(BIN)/cert-manager

ENVTEST_BINS := $(BIN)/k8s
FLUX_CRDS    := $(BIN)/crds
REPORT_CRDS  := $(BIN)/report-crds
# After FLUX_CRDS: a simple assignment expands it now (before, the stamp landed in /).
FLUX_CRDS_STAMP := $(FLUX_CRDS)/.$(FLUX_SOURCE_VERSION)-$(KUSTOMIZE_API_VERSION)-$(FLUX_OPERATOR_VERSION)-$(IMAGE_REFLECTOR_VERSION)-$(HELM_API_VERSION)-$(NOTIFICATION_API_VERSION)-$(IMAGE_AUTOMATION_API_VERSION)
export KUBEBUILDER_ASSETS := $(ENVTEST_BINS)
export FLUX_CRDS_DIR      := $(FLUX_CRDS)
export REPORT_CRDS_DIR    := $(REPORT_CRDS)
export HELM               := $(BIN)/helm
export FIW_IMAGE_DIR      := $(IMAGE_DIR)
export FIW_E2E_MANIFESTS  := $(E2E_MANIFESTS)
export FIW_CERT_MANAGER_BIN := $(CERT_MANAGER_BIN)

# -count=1: CI runs on the machine that built the Go test cache, and every suite must really run.
GO_TEST_FLAGS ?= -count=1
# One way of compiling for everything but the race detector and the fuzzer: the image's (static, -trimpath). The tools,
# vet, the integration suites, the binaries they start, the demo and the image then share what they have in common in
# the Go build cache (kube-apiserver 1.37 and this module use the same Kubernetes libraries); a cold `make test` used to
# compile them once per set of flags.
export CGO_ENABLED ?= 0
export GOFLAGS += -trimpath
FUZZTIME       ?= 5m
# A count, not a duration: Go 1.26's fuzz coordinator can report a spurious "context deadline exceeded" when a
# duration-based -fuzztime expires mid-execution (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME_SHORT ?= 10000x
# Every package of the module with a fuzz target, found rather than listed: a list went stale when the layout step
# moved FuzzSourceValidator and FuzzListScanner into webhook/fluxobjects and webhook/pods.
FUZZ_PKGS      := $(sort $(patsubst %/,./%,$(dir $(shell grep -rl --include='*_test.go' '^func Fuzz' policy webhook internal cmd hack))))

##@ Everyday

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: run
run: envtest-bins flux-crds ## Start a local control plane with the webhook and the sample policy (Ctrl-C stops).
	$(GO) build -o $(BIN)/fiw-devenv ./test/devenv
	$(BIN)/fiw-devenv --policy config/samples/policy.yaml --workdir $(BIN)/devenv

.PHONY: demo
demo: envtest-bins flux-crds ## Run the `make run` walkthrough non-interactively; fails unless every step behaves.
	$(GO) build -o $(BIN)/fiw-devenv ./test/devenv
	$(BIN)/fiw-devenv --demo --policy config/samples/policy.yaml --workdir $(BIN)/demo

.PHONY: test
test: ## Run every test: lint, unit, integration (the chart, the image, the suites on a real API server, the compat modules, the demo) and the end-to-end install.
	$(MAKE) --no-print-directory tools
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration
	$(MAKE) --no-print-directory e2e

.PHONY: tools
tools: envtest-bins flux-crds report-crds helm e2e-manifests cert-manager-bins golangci-lint ## Build every tool the tests use, one after another: they share dependencies (grpc, the Kubernetes libraries), which builds side by side would each compile.

.PHONY: unit
unit: ## Unit tests under the race detector, and every fuzz target for 10,000 executions; no control plane needed.
	CGO_ENABLED=1 $(GO) test -race $(GO_TEST_FLAGS) ./policy/... ./webhook/... ./internal/... ./cmd/... ./hack/...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)

# The test-only modules, each with its own go.mod (compared against other projects' code).
TEST_MODULES := test/fluxcompat test/azurecompat test/reportcompat test/release

.PHONY: lint
lint: golangci-lint ## go vet, gofmt and golangci-lint (.golangci.yml) over the module and its test-only modules.
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(BIN)/golangci-lint run ./...
	@for m in $(TEST_MODULES); do echo "lint $$m"; (cd $$m && $(GO) vet ./... && $(BIN)/golangci-lint run --config $(CURDIR)/.golangci.yml ./...) || exit 1; done

# The suites under test/ but the end-to-end one, the longest (reliability, three minutes) first: go test starts
# packages in the order given, two at a time, so the others run beside it rather than after it.
INTEGRATION_PKGS = ./test/reliability/ $$($(GO) list ./test/... | grep -v '/test/e2e$$\|/test/reliability$$')

.PHONY: integration
integration: envtest-bins flux-crds report-crds helm image e2e-manifests ## The suites on a real kube-apiserver + etcd, the chart, the image, the compat modules and the demo.
	$(GO) test $(GO_TEST_FLAGS) $(INTEGRATION_PKGS)
	$(MAKE) --no-print-directory fluxcompat
	$(MAKE) --no-print-directory azurecompat
	$(MAKE) --no-print-directory reportcompat
	$(MAKE) --no-print-directory demo

.PHONY: e2e
e2e: envtest-bins flux-crds helm image e2e-manifests cert-manager-bins ## helm install on kube-apiserver + kube-controller-manager, the image's binary behind the chart's Service, Flux's own Deployments; upgrade, uninstall, an outage (needs root).
	$(GO) test $(GO_TEST_FLAGS) -timeout 15m ./test/e2e/ -args -ginkgo.v

.PHONY: fluxcompat
fluxcompat: envtest-bins flux-crds ## Hold the webhook to Flux's own code (pkg/auth, pkg/git) and Google's oauth2 library (a test-only module).
	cd test/fluxcompat && $(GO) vet ./... && $(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: azurecompat
azurecompat: ## Hold full Azure injection to the Azure webhook's own mutator on generated pods (a test-only module).
	cd test/azurecompat && $(GO) vet ./... && $(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: reportcompat
reportcompat: ## Hold the PolicyReports audit writes to Kyverno's own types and its conversion to Open Reports (a test-only module).
	cd test/reportcompat && $(GO) vet ./... && $(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: envtest-bins flux-crds ## Benchmarks, the load harness against the floor, and pod-create latency via the API server.
	$(GO) test -run '^$$' -bench . -benchmem ./policy/... ./webhook/... | tee $(BIN)/bench-go.txt
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/flux-identity-webhook ./cmd/flux-identity-webhook
	$(GO) build -o $(BIN)/perf-floor ./test/perf/floor
	$(GO) build -o $(BIN)/perf-loadtest ./test/perf/loadtest
	$(BIN)/perf-loadtest --webhook-bin $(BIN)/flux-identity-webhook --floor-bin $(BIN)/perf-floor \
	  --out $(BIN)/bench-load.md
	$(GO) test -run '^$$' -bench PodCreateLatency -benchtime 1x ./test/perf/e2e/ | tee $(BIN)/bench-e2e.txt
	FIW_BIN=$(BIN)/flux-identity-webhook $(GO) test -run '^$$' -bench BigCluster -benchtime 1x -timeout 30m ./test/perf/cli/ | tee $(BIN)/bench-cli.txt
	@echo "results: $(BIN)/bench-go.txt $(BIN)/bench-load.md $(BIN)/bench-e2e.txt (copy the figures into docs/performance.md)"

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (5m here, 10000 executions inside make test); new failing inputs land in testdata/fuzz.
	@for pkg in $(FUZZ_PKGS); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

.PHONY: soak
soak: envtest-bins flux-crds ## Long reliability runs: 1000 policy swaps and 500 certificate rotations under heavier load.
	$(GO) test -count=1 -v -timeout 60m -run 'UnderLoad' ./test/reliability/ -soak

.PHONY: build
build: ## Build the binary into bin/, stamped with VERSION and COMMIT.
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/flux-identity-webhook ./cmd/flux-identity-webhook

.PHONY: image
image: ## Build the container image (IMAGE_PLATFORMS) without Docker: an OCI layout in bin/image/oci, a tarball per platform.
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./hack/image build --out $(IMAGE_DIR) --repository $(IMAGE_REPOSITORY) \
	  --version $(VERSION) --commit $(COMMIT) --platforms $(IMAGE_PLATFORMS)

.PHONY: image-push
image-push: image ## Push the image, every platform, to IMAGE (e.g. IMAGE=ghcr.io/org/flux-identity-webhook:v0.1.0).
	@if [ -z "$(IMAGE)" ]; then echo "set IMAGE=registry/repository:tag"; exit 2; fi
	$(GO) run ./hack/image push --from $(IMAGE_DIR)/oci --to $(IMAGE)

.PHONY: release
release: helm ## Every release artifact into bin/release/ (README "Release"), signed with RELEASE_KEY=PEM: the CLI for linux/darwin x amd64/arm64, the image, the chart (.tgz, OCI layout), SBOMs, provenance, SHA256SUMS, signatures.
	@if [ -z "$(RELEASE_KEY)" ]; then echo "set RELEASE_KEY=FILE: an ECDSA P-256 private key, PEM (go run ./hack/release keygen --out DIR makes one)"; exit 2; fi
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./hack/release build --out $(RELEASE_DIR) --key $(RELEASE_KEY) \
	  --version $(VERSION) --commit $(COMMIT) --repository $(IMAGE_REPOSITORY) --chart-repository $(CHART_REPOSITORY) \
	  --helm $(BIN)/helm

.PHONY: release-verify
release-verify: helm ## make release with a throwaway key, then verify every artifact with sigstore, in-toto, CycloneDX and helm, and rebuild it byte for byte (test/release).
	rm -rf $(RELEASE_VERIFY_KEY) && $(GO) run ./hack/release keygen --out $(RELEASE_VERIFY_KEY)
	$(MAKE) --no-print-directory release RELEASE_KEY=$(RELEASE_VERIFY_KEY)/cosign.key
	cd test/release && $(GO) vet ./... && RELEASE_DIR=$(RELEASE_DIR) RELEASE_KEY=$(RELEASE_VERIFY_KEY)/cosign.key \
	  RELEASE_PUBLIC_KEY=$(RELEASE_VERIFY_KEY)/cosign.pub $(GO) test $(GO_TEST_FLAGS) -timeout 30m -v ./...

.PHONY: lint-policy
lint-policy: build ## Lint the sample policies.
	$(BIN)/flux-identity-webhook policy lint config/samples/policy*.yaml

##@ Tools

.PHONY: envtest-bins
envtest-bins: $(ENVTEST_BINS)/kube-apiserver $(ENVTEST_BINS)/etcd $(ENVTEST_BINS)/kube-controller-manager ## Build kube-apiserver, etcd and kube-controller-manager from the module proxy (cached).

$(ENVTEST_BINS)/kube-apiserver $(ENVTEST_BINS)/etcd $(ENVTEST_BINS)/kube-controller-manager:
	KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) FIW_CACHE_DIR=$(CACHE_DIR) hack/envtest-bins.sh $(ENVTEST_BINS)

.PHONY: flux-crds
flux-crds: $(FLUX_CRDS_STAMP) ## Copy Flux's real CRDs from the controller modules the proxy serves; generate the others from their API modules.

$(FLUX_CRDS_STAMP):
	hack/flux-crds.sh $(FLUX_CRDS) github.com/fluxcd/source-controller@$(FLUX_SOURCE_VERSION) \
	  github.com/fluxcd/kustomize-controller@$(KUSTOMIZE_API_VERSION) \
	  github.com/controlplaneio-fluxcd/flux-operator@$(FLUX_OPERATOR_VERSION)
	CONTROLLER_GEN_VERSION=$(CONTROLLER_GEN_VERSION) FIW_CACHE_DIR=$(CACHE_DIR) hack/api-crds.sh $(FLUX_CRDS) \
	  github.com/fluxcd/image-reflector-controller/api@$(IMAGE_REFLECTOR_VERSION):./v1/... \
	  github.com/fluxcd/helm-controller/api@$(HELM_API_VERSION):./v2/... \
	  github.com/fluxcd/notification-controller/api@$(NOTIFICATION_API_VERSION):./v1/...:./v1beta3/... \
	  github.com/fluxcd/image-automation-controller/api@$(IMAGE_AUTOMATION_API_VERSION):./v1/...
	@touch $@

.PHONY: report-crds
report-crds: $(REPORT_CRDS)/.$(KYVERNO_VERSION)-$(OPENREPORTS_VERSION) ## Copy the PolicyReport (Kyverno's module) and Report (reports-api) CRDs for the report tests.

$(REPORT_CRDS)/.$(KYVERNO_VERSION)-$(OPENREPORTS_VERSION):
	KYVERNO_VERSION=$(KYVERNO_VERSION) OPENREPORTS_VERSION=$(OPENREPORTS_VERSION) hack/report-crds.sh $(REPORT_CRDS)
	@touch $@

.PHONY: e2e-manifests
e2e-manifests: $(E2E_MANIFESTS)/.$(FLUX_SOURCE_VERSION)-$(KUSTOMIZE_CONTROLLER_VERSION)-$(CERT_MANAGER_VERSION)-$(PROMETHEUS_OPERATOR_VERSION)-$(FLUX_OPERATOR_VERSION) ## Copy Flux's controller Deployments and distribution, cert-manager's and the Prometheus operator's CRDs from their modules.

$(E2E_MANIFESTS)/.$(FLUX_SOURCE_VERSION)-$(KUSTOMIZE_CONTROLLER_VERSION)-$(CERT_MANAGER_VERSION)-$(PROMETHEUS_OPERATOR_VERSION)-$(FLUX_OPERATOR_VERSION):
	FLUX_SOURCE_VERSION=$(FLUX_SOURCE_VERSION) KUSTOMIZE_CONTROLLER_VERSION=$(KUSTOMIZE_CONTROLLER_VERSION) \
	  CERT_MANAGER_VERSION=$(CERT_MANAGER_VERSION) PROMETHEUS_OPERATOR_VERSION=$(PROMETHEUS_OPERATOR_VERSION) \
	  FLUX_OPERATOR_VERSION=$(FLUX_OPERATOR_VERSION) \
	  hack/e2e-manifests.sh $(E2E_MANIFESTS)
	@touch $@

.PHONY: cert-manager-bins
cert-manager-bins: ## Build cert-manager's controllers and CA injector from its module (cached) for the end-to-end suite.
	CERT_MANAGER_VERSION=$(CERT_MANAGER_VERSION) FIW_CACHE_DIR=$(CACHE_DIR) hack/cert-manager-bins.sh $(CERT_MANAGER_BIN)

.PHONY: golangci-lint
golangci-lint: $(BIN)/.golangci-lint-$(GOLANGCI_LINT_VERSION) ## Build golangci-lint from the module proxy (cached) for make lint.

$(BIN)/.golangci-lint-$(GOLANGCI_LINT_VERSION):
	GOLANGCI_LINT_VERSION=$(GOLANGCI_LINT_VERSION) FIW_CACHE_DIR=$(CACHE_DIR) hack/golangci-lint-bin.sh $(BIN)/golangci-lint
	@touch $@

.PHONY: helm
helm: $(BIN)/.helm-$(HELM_VERSION) ## Build helm from the module proxy (cached) for the chart tests.

$(BIN)/.helm-$(HELM_VERSION):
	HELM_VERSION=$(HELM_VERSION) FIW_CACHE_DIR=$(CACHE_DIR) hack/helm-bin.sh $(BIN)/helm
	@touch $@

.PHONY: clean
clean: ## Remove bin/ (the cache outside the repository stays).
	rm -rf $(BIN)

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
CONTROLLER_GEN_VERSION ?= v0.23.0
HELM_VERSION ?= v3.22.0

ENVTEST_BINS := $(BIN)/k8s
FLUX_CRDS    := $(BIN)/crds
export KUBEBUILDER_ASSETS := $(ENVTEST_BINS)
export FLUX_CRDS_DIR      := $(FLUX_CRDS)
export HELM               := $(BIN)/helm

# -count=1: CI runs on the machine that built the Go test cache, and every suite must really run.
GO_TEST_FLAGS ?= -count=1
FUZZTIME       ?= 5m
# A count, not a duration: Go 1.26's fuzz coordinator can report a spurious "context deadline exceeded" when a
# duration-based -fuzztime expires mid-execution (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME_SHORT ?= 10000x
FUZZ_PKGS      := ./policy ./webhook

##@ Everyday

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: run
run: envtest-bins flux-crds ## Start a local control plane with the webhook and the sample policy (Ctrl-C stops).
	$(GO) build -o $(BIN)/fiw-devenv ./test/devenv
	$(BIN)/fiw-devenv --policy config/samples/policy.yaml --workdir $(BIN)/devenv

.PHONY: demo
demo: envtest-bins flux-crds ## Run the `make run` walkthrough non-interactively; fails unless every step behaves.
	$(GO) build -o $(BIN)/fiw-devenv ./test/devenv
	$(BIN)/fiw-devenv --demo --policy config/samples/policy.yaml --workdir $(BIN)/demo

.PHONY: test
test: envtest-bins flux-crds helm ## Run every test: unit, fuzz seeds, the chart, the integration suites on a real API server, and the demo.
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test -race $(GO_TEST_FLAGS) ./policy/... ./webhook/... ./cmd/...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZTIME_SHORT)
	$(GO) test $(GO_TEST_FLAGS) ./test/...
	$(MAKE) --no-print-directory fluxcompat
	$(MAKE) --no-print-directory demo

.PHONY: fluxcompat
fluxcompat: flux-crds ## Hold the credential model to Flux's own code (a test-only module importing pkg/auth and pkg/git).
	cd test/fluxcompat && $(GO) vet ./... && $(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: bench
bench: envtest-bins flux-crds ## Benchmarks, the load harness against the floor, and pod-create latency via the API server.
	$(GO) test -run '^$$' -bench . -benchmem ./policy/... ./webhook/... | tee $(BIN)/bench-go.txt
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/flux-identity-webhook ./cmd/flux-identity-webhook
	$(GO) build -o $(BIN)/perf-floor ./test/perf/floor
	$(GO) build -o $(BIN)/perf-loadtest ./test/perf/loadtest
	$(BIN)/perf-loadtest --webhook-bin $(BIN)/flux-identity-webhook --floor-bin $(BIN)/perf-floor \
	  --out $(BIN)/bench-load.md
	$(GO) test -run '^$$' -bench PodCreateLatency -benchtime 1x ./test/perf/e2e/ | tee $(BIN)/bench-e2e.txt
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
build: ## Build the binary into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/flux-identity-webhook ./cmd/flux-identity-webhook

.PHONY: lint-policy
lint-policy: build ## Lint the sample policies.
	$(BIN)/flux-identity-webhook policy lint config/samples/policy*.yaml

##@ Tools

.PHONY: envtest-bins
envtest-bins: $(ENVTEST_BINS)/kube-apiserver $(ENVTEST_BINS)/etcd $(ENVTEST_BINS)/kube-controller-manager ## Build kube-apiserver, etcd and kube-controller-manager from the module proxy (cached).

$(ENVTEST_BINS)/kube-apiserver $(ENVTEST_BINS)/etcd $(ENVTEST_BINS)/kube-controller-manager:
	KUBE_VERSION=$(KUBE_VERSION) ETCD_VERSION=$(ETCD_VERSION) FIW_CACHE_DIR=$(CACHE_DIR) hack/envtest-bins.sh $(ENVTEST_BINS)

.PHONY: flux-crds
flux-crds: $(FLUX_CRDS)/.$(FLUX_SOURCE_VERSION)-$(IMAGE_REFLECTOR_VERSION) ## Copy Flux's real CRDs from the source-controller module; generate ImageRepository's.

$(FLUX_CRDS)/.$(FLUX_SOURCE_VERSION)-$(IMAGE_REFLECTOR_VERSION):
	FLUX_SOURCE_VERSION=$(FLUX_SOURCE_VERSION) hack/flux-crds.sh $(FLUX_CRDS)
	IMAGE_REFLECTOR_VERSION=$(IMAGE_REFLECTOR_VERSION) CONTROLLER_GEN_VERSION=$(CONTROLLER_GEN_VERSION) \
	  FIW_CACHE_DIR=$(CACHE_DIR) hack/image-crds.sh $(FLUX_CRDS)
	@touch $@

.PHONY: helm
helm: $(BIN)/.helm-$(HELM_VERSION) ## Build helm from the module proxy (cached) for the chart tests.

$(BIN)/.helm-$(HELM_VERSION):
	HELM_VERSION=$(HELM_VERSION) FIW_CACHE_DIR=$(CACHE_DIR) hack/helm-bin.sh $(BIN)/helm
	@touch $@

.PHONY: clean
clean: ## Remove bin/ (the cache outside the repository stays).
	rm -rf $(BIN)

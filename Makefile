# Takumo Aegis. `make` lists the targets; `make check` is what a change
# must pass (CI runs `make test` through .ci/run).

SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/takumo/aegis/cli.Version=$(VERSION)
FUZZTIME  ?= 10s
# Tools pinned in tools/go.mod, run with `go tool`.
GOTOOL    := $(GO) tool -modfile=tools/go.mod

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/takumo-aegis
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/takumo-aegis ./cmd/takumo-aegis

.PHONY: run
run: build ## build, then start the local gateway (gateway --dev): paste the export lines it prints
	@# Provider keys come from TAKUMO_ANTHROPIC_API_KEY etc.; TAKUMO_DEV_KEY keeps the dev key across runs.
	./$(BIN)/takumo-aegis gateway --dev

.PHONY: test
test: ## run the tests with the race detector (with the real Claude Code when npm is there), and every benchmark once so they keep compiling
	@# e2e TestClaudeCode runs the Claude Code binary named by TAKUMO_E2E_CLAUDE; if that is unset and
	@# npm is there, scripts/install-claude-code.sh installs the pinned release once into ~/.cache.
	@# Without it the test skips (and fails under CI=true).
	claude=$${TAKUMO_E2E_CLAUDE:-}; \
	if [ -z "$$claude" ] && command -v npm >/dev/null 2>&1; then \
	  claude=$$(bash scripts/install-claude-code.sh) || { echo "make test: Claude Code is not installed; TestClaudeCode will skip" >&2; claude=; }; \
	fi; \
	TAKUMO_E2E_CLAUDE=$$claude $(GO) test -race ./...
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...
	$(MAKE) --no-print-directory chart-test

.PHONY: chart-test
chart-test: ## the Helm chart and Dockerfile tests (module helm/charttest) and helm lint (helm pinned there)
	cd helm/charttest && $(GO) test -race ./...
	cd helm/charttest && $(GO) tool helm lint ../takumo --strict
	cd helm/charttest && for f in ../takumo/ci/*.yaml; do $(GO) tool helm lint ../takumo --strict -f $$f; done

.PHONY: check
check: vet lint test-race chart-test fmt-check tidy-check generate-check ## everything a change must pass

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...
	cd helm/charttest && $(GO) vet ./...

.PHONY: lint
lint: ## golangci-lint, the version pinned in tools/go.mod
	$(GOTOOL) golangci-lint run ./...
	cd helm/charttest && $(GO) tool -modfile=../../tools/go.mod golangci-lint run ./...

.PHONY: test-race
test-race: ## the tests with the race detector
	$(GO) test -race ./...

.PHONY: fmt-check
fmt-check: ## fail if any file is not gofmt-clean
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: tidy-check
tidy-check: ## fail if go.mod or go.sum are not tidy (the product's module and the chart tests')
	$(GO) mod tidy -diff
	cd helm/charttest && $(GO) mod tidy -diff

.PHONY: generate
generate: ## regenerate generated code (protos under api/ with buf, pinned in tools/proto/go.mod)
	$(GO) generate ./...

.PHONY: generate-check
generate-check: ## fail if go generate changes any file
	@before=$$(git status --porcelain=v1 --untracked-files=all | sort; git diff | sha256sum); \
	$(GO) generate ./...; \
	after=$$(git status --porcelain=v1 --untracked-files=all | sort; git diff | sha256sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "go generate changed files (generated code is out of date): run go generate ./... and commit"; \
	  git status --short; exit 1; \
	fi

.PHONY: bench
bench: ## Go benchmarks with allocations, then the comparison with gitleaks
	$(GO) test -run '^$$' -bench . -benchmem ./...
	@[ -f scripts/bench-vs-gitleaks.sh ] || { echo "scripts/bench-vs-gitleaks.sh is missing"; exit 1; }
	bash scripts/bench-vs-gitleaks.sh

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	  done; \
	done

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN) dist coverage*

# Warden. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
# The real Vault server the tests start (testdata/vaultdev, its own module).
VAULTDEV ?= $(HOME)/.cache/warden/vaultdev
export WARDEN_VAULTDEV := $(VAULTDEV)

.PHONY: help build test test-short bench lint demo fuzz vaultdev clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/warden
	$(GO) build -o bin/warden ./cmd/warden

test: vaultdev ## vet, then every test (race detector on) against real sshd, ssh, scp, sftp, Vault, SQLite, asciinema
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short: ## fast unit tests only
	$(GO) test -short -count=1 $(PKGS)

bench: ## benchmarks: Warden vs direct OpenSSH ratios (throughput, setup, echo latency)
	WARDEN_BENCH=1 $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 30m ./gateway/
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./recorder/ ./evidence/

lint: ## go vet and gofmt
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))"

demo: build ## run the zero-setup demo
	./bin/warden demo

fuzz: ## run each fuzz target for 20s
	@for t in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/func //'); do \
		pkg=$$(grep -rlE "^func $$t\(" --include='*_test.go' . | xargs -n1 dirname | head -1); \
		echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime 20s $$pkg || exit 1; done

# The binary is rebuilt only when the sources' content changes (a stamp of
# their SHA-256), not their mtimes: a fresh clone must not cost a rebuild.
VAULTDEV_SRC := testdata/vaultdev/go.mod testdata/vaultdev/go.sum $(wildcard testdata/vaultdev/*.go)

vaultdev: ## build the Vault v1.14 test server (once; ~6 min on 2 cores)
	@mkdir -p $(dir $(VAULTDEV))
	@sum=$$(cat $(VAULTDEV_SRC) | sha256sum | cut -c1-64); \
	if [ -x $(VAULTDEV) ] && [ "$$(cat $(VAULTDEV).src 2>/dev/null)" = "$$sum" ]; then \
		echo "vaultdev up to date: $(VAULTDEV)"; \
	else \
		echo "building vaultdev (Vault v1.14.1, MPL) into $(VAULTDEV)"; \
		(cd testdata/vaultdev && nice $(GO) build -trimpath -o $(VAULTDEV) .) && echo "$$sum" > $(VAULTDEV).src; \
	fi

clean: ## remove build output
	rm -rf bin

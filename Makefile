# Warden. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
# The real Vault server the tests start (testdata/vaultdev, its own module).
VAULTDEV ?= $(HOME)/.cache/warden/vaultdev
export WARDEN_VAULTDEV := $(VAULTDEV)
# The real OpenID Provider the sign-in tests start (testdata/testop, its own module).
TESTOP ?= $(HOME)/.cache/warden/testop
export WARDEN_TESTOP := $(TESTOP)
# The real S3 server the recording tests start (testdata/s3dev: versitygw).
S3DEV ?= $(HOME)/.cache/warden/s3dev
export WARDEN_S3DEV := $(S3DEV)

.PHONY: help build test test-short bench soak lint demo fuzz fuzz-short vaultdev testop s3dev assets clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

build: ## build bin/warden
	$(GO) build -o bin/warden ./cmd/warden

test: vaultdev testop s3dev ## vet, every test (race detector on) against real sshd, ssh, scp, sftp, Vault, SQLite, asciinema, the store-backed ones again on PostgreSQL, then fuzz-short
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@$(MAKE) --no-print-directory test-postgres
	# The patched x/crypto (third_party/xcrypto, its own module) is not in ./...:
	# its ssh package's tests, the Warden patches' among them, run here too.
	cd third_party/xcrypto && $(GO) test -race -count=1 -timeout 10m ./ssh/
	@$(MAKE) --no-print-directory fuzz-short

# The store-backed suites, run a second time in make test with every store
# they open on PostgreSQL (internal/pgtest starts Debian's server;
# WARDEN_STORE is the harness switch, see internal/storetest). They are found,
# not listed: every package whose tests install the switch, with
# storetest.Main in their TestMain (package audit, which storetest imports,
# with audit.SetTestBackend), so a new store-backed package joins without
# editing this file. The few tests of SQLite itself skip on PostgreSQL with
# storetest.SQLiteOnly, which prints why.
PG_PKGS = $(shell grep -rlE --include='*_test.go' 'storetest\.Main\b|SetTestBackend\b' . | \
	grep -v -e '/testdata/' -e '^./third_party/' | xargs -r -n1 dirname | sort -u | sed 's|$$|/|')

test-postgres: ## the store-backed suites again, on PostgreSQL (WARDEN_STORE=postgres); part of make test
	@test -n "$(PG_PKGS)" || { echo "test-postgres: no package installs the harness switch"; exit 1; }
	WARDEN_STORE=postgres $(GO) test -race -count=1 -timeout 30m $(PG_PKGS)

test-short: ## fast unit tests only
	$(GO) test -short -count=1 $(PKGS)

# The cluster's figures (issue 12) come from the same lines: BenchmarkClusterSetup
# in ./gateway/ and BenchmarkClusterAppend in ./audit/.
bench: ## benchmarks: Warden vs direct OpenSSH and ssh -J (throughput per cipher, CPU per GB vs sshd, echo, setup), memory of 1,000 sessions, 1/2/4 nodes on PostgreSQL vs SQLite
	WARDEN_BENCH=1 $(GO) test -run '^$$' -bench . -benchtime 1x -count 1 -timeout 45m ./gateway/
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./recorder/ ./evidence/ ./scim/ ./metrics/ ./audit/
	WARDEN_BENCH=1 $(GO) test -run '^$$' -bench . -benchtime 10x -count 1 -timeout 20m ./console/

SOAK ?= 10m

soak: ## SOAK (10m) of mixed load through one gateway: shells, exec, sftp, JIT churn; bytes, goroutines, fds, RSS checked
	WARDEN_SOAK=$(SOAK) $(GO) test -run '^TestSoak$$' -count=1 -v -timeout 60m ./internal/cli/

lint: ## go vet and gofmt
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))"

demo: build ## run the zero-setup demo
	./bin/warden demo

# Fuzzing. Targets are found, not listed: every directory whose test files
# declare `func FuzzX(f *testing.F)` is built once as a test binary with the
# fuzzing instrumentation (vet is left to test and lint), and the binary
# lists its own targets, so a new target, or a package with several, joins
# without editing this file. Each target runs on its own, since a fuzzing
# run takes exactly one, with go test's corpus cache. A crash stops nothing
# else; its input is written to PKG/testdata/fuzz/TARGET/, to become a
# table-test case. The last line counts the targets: "fuzz: N passed, M
# failed".
#
# Go 1.26 may fail a run at the -fuzztime deadline with a bare "context
# deadline exceeded" and no failing input (go.dev/issue/75804, fixed in Go
# 1.27). Such a run did fuzz for its whole time and found nothing, so it
# counts as passed, and is named. A run that wrote a failing input, or
# failed in any other way, fails.
FUZZTIME       ?= 20s
FUZZTIME_SHORT ?= 1s

define fuzz_each
	@set -uo pipefail; \
	bin=$$(mktemp -d) || exit 1; trap 'rm -rf "$$bin"' EXIT; \
	cache="$$($(GO) env GOCACHE)/fuzz"; mod=$$($(GO) list -m) || exit 1; pass=0; fail=0; \
	dirs=$$(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' . | \
		grep -v '/testdata/' | xargs -r -n1 dirname | sort -u); \
	for dir in $$dirs; do \
		pkg="$$mod$${dir#.}"; \
		if ! $(GO) test -c -vet=off -fuzz . -o "$$bin/fuzz.test" "$$dir"; then echo "== FAIL $$pkg: build"; fail=$$((fail+1)); continue; fi; \
		targets=$$(cd "$$dir" && "$$bin/fuzz.test" -test.list '^Fuzz') || { echo "== FAIL $$pkg: list"; fail=$$((fail+1)); continue; }; \
		for t in $$targets; do \
			echo "== $$pkg $$t ($(1))"; \
			if (cd "$$dir" && "$$bin/fuzz.test" -test.run '^$$' -test.fuzz "^$$t$$" -test.fuzztime $(1) \
				-test.fuzzcachedir "$$cache/$$pkg" </dev/null 2>&1) | tee "$$bin/out"; then \
				pass=$$((pass+1)); \
			elif grep -qx '    context deadline exceeded' "$$bin/out" && ! grep -q 'Failing input written to' "$$bin/out"; then \
				pass=$$((pass+1)); echo "== $$pkg $$t: stopped by go.dev/issue/75804 at its deadline, no failing input: passed"; \
			else \
				fail=$$((fail+1)); echo "== FAIL $$pkg $$t"; \
			fi; \
		done; \
	done; \
	echo "fuzz: $$pass passed, $$fail failed"; \
	[ "$$pass" -gt 0 ] && [ "$$fail" -eq 0 ]
endef

fuzz: ## run every fuzz target for FUZZTIME (20s) each
	$(call fuzz_each,$(FUZZTIME))

fuzz-short: ## run every fuzz target for FUZZTIME_SHORT (1s) each; part of make test
	$(call fuzz_each,$(FUZZTIME_SHORT))

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

TESTOP_SRC := testdata/testop/go.mod testdata/testop/go.sum $(wildcard testdata/testop/*.go)

testop: ## build the OpenID Provider for the sign-in tests (zitadel/oidc op; once, ~30s)
	@mkdir -p $(dir $(TESTOP))
	@sum=$$(cat $(TESTOP_SRC) | sha256sum | cut -c1-64); \
	if [ -x $(TESTOP) ] && [ "$$(cat $(TESTOP).src 2>/dev/null)" = "$$sum" ]; then \
		echo "testop up to date: $(TESTOP)"; \
	else \
		echo "building testop (zitadel/oidc v3 op) into $(TESTOP)"; \
		(cd testdata/testop && nice $(GO) build -trimpath -o $(TESTOP) .) && echo "$$sum" > $(TESTOP).src; \
	fi

S3DEV_SRC := testdata/s3dev/go.mod testdata/s3dev/go.sum

s3dev: ## build the S3 test server (versitygw v1.8.0, Apache-2.0; once, ~3 min)
	@mkdir -p $(dir $(S3DEV))
	@sum=$$(cat $(S3DEV_SRC) | sha256sum | cut -c1-64); \
	if [ -x $(S3DEV) ] && [ "$$(cat $(S3DEV).src 2>/dev/null)" = "$$sum" ]; then \
		echo "s3dev up to date: $(S3DEV)"; \
	else \
		echo "building s3dev (versitygw v1.8.0) into $(S3DEV)"; \
		(cd testdata/s3dev && nice $(GO) build -trimpath -o $(S3DEV) github.com/versity/versitygw/cmd/versitygw) && echo "$$sum" > $(S3DEV).src; \
	fi

# The console's session player: asciinema-player from npm, pinned by
# version and by the SHA-256 of its registry tarball. Its browser bundle,
# stylesheet and licence are committed under console/static/player/ and
# embedded in the binary, so building or running Warden needs no npm; this
# target only refreshes them (change both pins together).
PLAYER_VERSION ?= 3.17.0
PLAYER_SHA256  ?= d03ef67fc2f32a7aa5177c0b64650c7c8fd234ef2d3e4b34886632bb3dd58c5c
PLAYER_DIR     := console/static/player

assets: ## refresh the console's asciinema-player files from npm (pinned version and SHA-256)
	@set -euo pipefail; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd "$$tmp" && npm pack --silent asciinema-player@$(PLAYER_VERSION) >/dev/null); \
	tgz="$$tmp/asciinema-player-$(PLAYER_VERSION).tgz"; \
	got=$$(sha256sum "$$tgz" | cut -c1-64); \
	if [ "$$got" != "$(PLAYER_SHA256)" ]; then echo "assets: asciinema-player $(PLAYER_VERSION) tarball SHA-256 $$got, want $(PLAYER_SHA256)"; exit 1; fi; \
	tar -xzf "$$tgz" -C "$$tmp"; \
	grep -q '"license": "Apache-2.0"' "$$tmp/package/package.json" || { echo "assets: licence is no longer Apache-2.0"; exit 1; }; \
	mkdir -p $(PLAYER_DIR); \
	cp "$$tmp/package/dist/bundle/asciinema-player.min.js" "$$tmp/package/dist/bundle/asciinema-player.css" $(PLAYER_DIR)/; \
	cp "$$tmp/package/LICENSE" $(PLAYER_DIR)/LICENSE; \
	echo "$(PLAYER_VERSION)" > $(PLAYER_DIR)/VERSION; \
	echo "assets: asciinema-player $(PLAYER_VERSION) (sha256 $(PLAYER_SHA256)) in $(PLAYER_DIR)"

clean: ## remove build output
	rm -rf bin

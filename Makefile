# inopipe — real-time file replication as five Unix filters.
# `make demo` and `make test` are the two commands a newcomer needs.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(DESTDIR)$(PREFIX)/bin
MANDIR   = $(DESTDIR)$(PREFIX)/share/man
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO      ?= go
LDFLAGS  = -X github.com/inopipe/inopipe/internal/base.Version=$(VERSION) $(LDEXTRA)
# urfave/cli without its man/markdown generators (the man pages are
# written by hand): each binary 0.45 MB smaller, 0.5 MiB less resident;
# Go's own resolver for net (pulled in by inowait's log/syslog), so that
# inowait links no libc: 1.4 MiB less resident.
TAGS     = urfave_cli_no_docs,netgo
# Stretch every bounded wait in the tests on a slow machine, e.g. 2m.
INOWAIT_TEST_TIMEOUT ?= 60s
export INOWAIT_TEST_TIMEOUT

.PHONY: all build deps test unit e2e fuzz vet lint cover bench install deb demo man clean

all: build

build:
	@mkdir -p bin
	$(GO) build -trimpath -tags $(TAGS) -ldflags "$(LDFLAGS)" -o bin/ $(addprefix ./cmd/,$(wildcard-tools))

wildcard-tools = $(patsubst cmd/%/main.go,%,$(wildcard cmd/*/main.go))

deps:
	@scripts/deps.sh rsync inotify-tools lsyncd openssh-server shellcheck

# Everything a contributor must pass: vet and lint, unit/golden/fuzz-seed
# tests (with the race detector), the man page checks and the end-to-end
# pipeline tests.
test: deps vet lint man unit e2e

vet:
	@test -z "$$(gofmt -l cmd internal e2e)" || { gofmt -l cmd internal e2e; echo "run gofmt -w on these"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...

# staticcheck at a pinned version (fetched by the go command), go.mod tidy,
# shellcheck on every script, and the tools that are not Linux-specific
# build for another OS.
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2
SCRIPTS     = scripts/*.sh bench/*.sh bench/solutions/*.sh .ci/run
PORTABLE    = ./cmd/evfilter ./cmd/evbatch ./cmd/rpush ./cmd/failreplay ./cmd/sersync2inopipe
lint:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./e2e/...
	$(GO) mod tidy -diff
	shellcheck $(SCRIPTS)
	GOOS=darwin $(GO) build $(PORTABLE)
	GOOS=freebsd $(GO) build $(PORTABLE)

unit:
	$(GO) test -race -count=1 ./...

# Statement coverage of the in-process tests, per package (the e2e tests run
# binaries and are not counted).
cover:
	$(GO) test -count=1 -coverprofile=cover.out ./... | sed 's/^ok *//'
	@$(GO) tool cover -func=cover.out | tail -1
	@rm -f cover.out

e2e: build
	$(GO) test -tags e2e -count=1 -timeout 20m ./e2e/...

# Coverage-guided fuzzing of every decoder and parser, FUZZTIME each (their
# seed corpora run in `make test`).
FUZZTIME ?= 60s
FUZZ = ./internal/event:FuzzDecode ./internal/event:FuzzEventRoundTrip ./internal/event:FuzzDecodeDifferential \
	./internal/batch:FuzzConverges ./internal/rsync:FuzzNormalize ./internal/rsync:FuzzSplitOpts \
	./internal/rsync:FuzzParseTarget ./internal/rsync:FuzzStatNumber ./internal/spool:FuzzEntry ./internal/spool:FuzzPairs \
	./internal/filter:FuzzPatterns ./internal/filter:FuzzTranslate ./cmd/inowait:FuzzFormat ./cmd/sersync2inopipe:FuzzConvert \
	./internal/runconfig:FuzzParse
fuzz:
	@for f in $(FUZZ); do \
		echo "fuzz: $${f#*:} ($${f%%:*}) for $(FUZZTIME)"; \
		$(GO) test $${f%%:*} -run '^$$' -fuzz "^$${f#*:}$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# Long runs: Go benchmarks and the comparisons against inotifywait, lsyncd
# and a single ideal rsync (results in bench/RESULTS.md).
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	bench/inowait.sh
	bench/solutions.sh
	@echo "bench: results go in bench/RESULTS.md (RESULTS=1 bench/inowait.sh appends) and bench/SOLUTIONS.md"

UNITDIR  = $(DESTDIR)$(PREFIX)/lib/systemd/system
BASHCOMP = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHCOMP  = $(DESTDIR)$(PREFIX)/share/zsh/site-functions

# Binaries (inopipe-run among them), man pages, systemd units (their paths rewritten
# to PREFIX) and bash/zsh completions. DESTDIR for packaging.
install: build
	install -d $(BINDIR) $(MANDIR)/man1 $(MANDIR)/man7 $(MANDIR)/man8 $(UNITDIR) $(BASHCOMP) $(ZSHCOMP)
	for t in $(wildcard-tools); do install -m 0755 bin/$$t $(BINDIR)/$$t; done
	for m in man/*.1; do install -m 0644 $$m $(MANDIR)/man1/; done
	for m in man/*.7; do install -m 0644 $$m $(MANDIR)/man7/; done
	for m in man/*.8; do install -m 0644 $$m $(MANDIR)/man8/; done
	for u in scripts/systemd/*; do \
		sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' $$u > $(UNITDIR)/$$(basename $$u) && chmod 0644 $(UNITDIR)/$$(basename $$u); done
	for t in $(wildcard-tools); do install -m 0644 completions/inopipe.bash $(BASHCOMP)/$$t; done
	install -m 0644 completions/_inopipe $(ZSHCOMP)/_inopipe

# A Debian package (dpkg-deb), checked with lintian: inopipe_VERSION_ARCH.deb
deb:
	@command -v lintian >/dev/null || scripts/deps.sh lintian
	scripts/deb.sh

demo: deps build
	scripts/demo.sh

# Check that every man page renders without a roff warning, and fits an
# 80-column terminal.
man:
	@for m in man/*.[178]; do groff -t -ww -z -man $$m || exit 1; done
	@if command -v man >/dev/null; then for m in man/*.[178]; do \
		w=$$(MANWIDTH=80 man -l $$m 2>/dev/null | wc -L); \
		[ "$$w" -le 80 ] || { echo "$$m: a line is $$w columns wide (80 at most)"; exit 1; }; done; fi

clean:
	rm -rf bin

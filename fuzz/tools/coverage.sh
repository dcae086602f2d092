#!/usr/bin/env bash
# Line coverage of the core reached by the fuzz corpora (committed + fuzz/corpus-work):
# `cargo fuzz coverage` per target, profiles merged, one llvm-cov report over all targets,
# restricted to rust/textsecure-core/src. Needs llvm-profdata / llvm-cov of rustc's LLVM
# (rustc 1.95: LLVM 22; Debian: apt-get install llvm-22). LLVM_BIN overrides the directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RUSTC_BOOTSTRAP=1
LLVM_BIN=${LLVM_BIN:-/usr/lib/llvm-$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')/bin}
ALL=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^textsecure-fuzz$')
TARGETS=${FUZZ_TARGETS:-$ALL}
HOST=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p fuzz/coverage
objects=()
profiles=()
for t in $TARGETS; do
    dirs=("fuzz/corpus/$t")
    [ -d "fuzz/corpus-work/$t" ] && dirs+=("fuzz/corpus-work/$t")
    cargo fuzz coverage -s none --llvm-path "$LLVM_BIN" "$t" "${dirs[@]}" >"fuzz/coverage/$t.log" 2>&1 ||
        { echo "coverage of $t failed (fuzz/coverage/$t.log)"; continue; }
    profiles+=("fuzz/coverage/$t/coverage.profdata")
    objects+=(-object "target/$HOST/coverage/$HOST/release/$t")
    echo "$t: done"
done
"$LLVM_BIN/llvm-profdata" merge -sparse "${profiles[@]}" -o fuzz/coverage/all.profdata
"$LLVM_BIN/llvm-cov" report -instr-profile fuzz/coverage/all.profdata "${objects[@]:1}" \
    -ignore-filename-regex='(/rustc/|\.cargo/|/fuzz/|/tests/)' | tee fuzz/coverage/report.txt

#!/usr/bin/env bash
# Line coverage of the core reached by the fuzz corpora (committed + fuzz/corpus-work):
# `cargo fuzz coverage` per target, profiles merged, one llvm-cov report over all targets,
# restricted to rust/textsecure-core/src. Needs llvm-profdata / llvm-cov of rustc's LLVM
# (rustc 1.95: LLVM 22; Debian: apt-get install llvm-22). LLVM_BIN overrides the directory.
# Branch coverage too (`-Zcoverage-options=branch`). CORPUS_WORK names the directory of extra
# inputs (default fuzz/corpus-work, what `make fuzz` found). The last line sums the decoding and
# ratchet modules (DECODING below).
set -euo pipefail
cd "$(dirname "$0")/../.."
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="${RUSTFLAGS:-} -Zcoverage-options=branch"
WORK=${CORPUS_WORK:-fuzz/corpus-work}
# Every module that decodes hostile bytes or runs the ratchets over them.
DECODING='^(message|proto|session|state|prekey|store|curve|kem|ratchet|group|sealed_sender|spqr/[a-z]+|attachments/(signal|whatsapp|cbc_stream|padding))\.rs$'
LLVM_BIN=${LLVM_BIN:-/usr/lib/llvm-$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')/bin}
ALL=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^textsecure-fuzz$')
TARGETS=${FUZZ_TARGETS:-$ALL}
HOST=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p fuzz/coverage
objects=()
profiles=()
for t in $TARGETS; do
    dirs=("fuzz/corpus/$t")
    [ -d "$WORK/$t" ] && dirs+=("$WORK/$t")
    cargo fuzz coverage -s none --llvm-path "$LLVM_BIN" "$t" "${dirs[@]}" >"fuzz/coverage/$t.log" 2>&1 ||
        { echo "coverage of $t failed (fuzz/coverage/$t.log)"; continue; }
    profiles+=("fuzz/coverage/$t/coverage.profdata")
    objects+=(-object "target/$HOST/coverage/$HOST/release/$t")
    echo "$t: done"
done
"$LLVM_BIN/llvm-profdata" merge -sparse "${profiles[@]}" -o fuzz/coverage/all.profdata
"$LLVM_BIN/llvm-cov" report -instr-profile fuzz/coverage/all.profdata "${objects[@]:1}" \
    -ignore-filename-regex='(/rustc/|\.cargo/|/fuzz/|/tests/)' | tee fuzz/coverage/report.txt
awk -v re="$DECODING" '$1 ~ re {
        lines += $8; lmiss += $9; br += $11; bmiss += $12 }
    END { printf "decoding and ratchet modules: lines %d, %.2f%% covered; branches %d, %.2f%% covered\n",
          lines, 100 * (lines - lmiss) / lines, br, 100 * (br - bmiss) / br }' fuzz/coverage/report.txt |
    tee -a fuzz/coverage/report.txt

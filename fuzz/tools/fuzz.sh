#!/usr/bin/env bash
# Runs the fuzz targets (cargo-fuzz / libFuzzer on stable Rust with RUSTC_BOOTSTRAP=1) and the
# deterministic conversation runner. Used by `make fuzz`, `make fuzz-ci`, `make fuzz-cmin`.
#
#   fuzz/tools/fuzz.sh run  [seconds-per-target]   every target, then the conversation runner
#   fuzz/tools/fuzz.sh ci                           short and bounded; fails only on a finding
#   fuzz/tools/fuzz.sh cmin                         merge fuzz/corpus-work into fuzz/corpus, minimized
#
# Env: FUZZ_TARGETS (default: all), FUZZ_SANITIZER (none|address, default none: the core is
# forbid(unsafe_code)), FUZZ_SECONDS, CONVERSATION_FUZZ_{SEED,RUNS,STEPS,JUMPS},
# CONVERSATION_UOW_FUZZ_{SEED,RUNS,STEPS} (the unit-of-work runner on failing stores).
# New corpus entries go to fuzz/corpus-work/<target> (ignored by git); crashes to
# fuzz/artifacts/<target>/. A summary with executions per target is printed at the end and
# written to fuzz/artifacts/summary.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-run}
export RUSTC_BOOTSTRAP=1
SAN=${FUZZ_SANITIZER:-none}
ALL=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^textsecure-fuzz$')
TARGETS=${FUZZ_TARGETS:-$ALL}
mkdir -p fuzz/artifacts fuzz/corpus-work
SUMMARY=fuzz/artifacts/summary.txt

have_cargo_fuzz() {
    command -v cargo-fuzz >/dev/null 2>&1 && return 0
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --version "${CARGO_FUZZ_VERSION:-0.13.2}" --locked --quiet
    command -v cargo-fuzz >/dev/null 2>&1
}

build() {
    echo "== building fuzz targets (sanitizer: $SAN)"
    cargo fuzz build -s "$SAN" 2>&1 | tail -n 3
    return "${PIPESTATUS[0]}"
}

# run_target NAME SECONDS -> prints "NAME execs"; returns 1 on a crash, 0 otherwise.
run_target() {
    local t=$1 secs=$2 log="fuzz/artifacts/$1.log"
    mkdir -p "fuzz/corpus-work/$t" "fuzz/artifacts/$t"
    local before
    before=$(ls "fuzz/artifacts/$t" | sort)
    cargo fuzz run -s "$SAN" "$t" "fuzz/corpus-work/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=60 -rss_limit_mb=4096 \
        -max_len=65536 -close_fd_mask=1 >"$log" 2>&1
    local rc=$?
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    local new
    new=$(comm -13 <(echo "$before") <(ls "fuzz/artifacts/$t" | sort))
    printf '%-24s %12s execs  %6s s  rc %s\n' "$t" "${execs:-0}" "$secs" "$rc" | tee -a "$SUMMARY"
    if echo "$new" | grep -q '^crash-'; then
        echo "!! $t: crash: $(echo "$new" | grep '^crash-' | head -n 1)"
        grep -m 20 -E 'panicked|invariant|ERROR' "$log" | head -n 20
        echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $t fuzz/artifacts/$t/<file>"
        echo "   then keep it: cp fuzz/artifacts/$t/<file> fuzz/regressions/$t/"
        return 1
    fi
    if [ -n "$new" ]; then
        echo "   (note: $t left $(echo "$new" | tr '\n' ' ')- timeouts/OOM on a loaded machine are reported, not failed)"
    fi
    return 0
}

conversation_runner() {
    local runs=$1 steps=$2 uow_runs=$3
    echo "== corpus replay (all inputs) and conversation runners: $runs runs x $steps steps; unit of work on failing stores: $uow_runs runs (optimized build)"
    CONVERSATION_FUZZ_RUNS=$runs CONVERSATION_FUZZ_STEPS=$steps CONVERSATION_UOW_FUZZ_RUNS=$uow_runs \
        cargo test -q -p textsecure-core --test conversation_fuzz --test conversation_uow_fuzz --test fuzz_corpus \
        --config 'profile.fuzzrun.inherits="release"' --config 'profile.fuzzrun.lto="off"' \
        --config 'profile.fuzzrun.codegen-units=16' --profile fuzzrun \
        -- --nocapture 2>&1 | grep -E 'conversation fuzz|conversation_uow fuzz|replayed|panicked|violated|test result|error' | tee -a "$SUMMARY"
    return "${PIPESTATUS[0]}"
}

case "$mode" in
run)
    secs=${2:-${FUZZ_SECONDS:-110}}
    : >"$SUMMARY"
    have_cargo_fuzz || { echo "cargo-fuzz is not available"; exit 1; }
    build || exit 1
    fail=0
    for t in $TARGETS; do run_target "$t" "$secs" || fail=1; done
    conversation_runner "${CONVERSATION_FUZZ_RUNS:-20}" "${CONVERSATION_FUZZ_STEPS:-5000}" \
        "${CONVERSATION_UOW_FUZZ_RUNS:-20}" || fail=1
    awk '/execs/ {s += $2} END {printf "total: %d executions\n", s}' "$SUMMARY" | tee -a "$SUMMARY"
    exit $fail
    ;;
ci)
    # Bounded (about 3 minutes on two cores plus build time). Fails only on a finding: a crash
    # or an invariant violation. Missing tooling falls back to the corpus replay and runner.
    secs=${FUZZ_SECONDS:-8}
    : >"$SUMMARY"
    fail=0
    if have_cargo_fuzz && build; then
        for t in $TARGETS; do run_target "$t" "$secs" || fail=1; done
    else
        echo "!! WARNING: cargo-fuzz unavailable or the build failed in this environment;"
        echo "!! running the corpus replay without libFuzzer instead (no coverage guidance)."
        cargo test -q -p textsecure-core --test fuzz_corpus || fail=1
        # In CI (TEXTSECURE_STRICT=1) losing coverage guidance is a failure, like a skipped test.
        [ "${TEXTSECURE_STRICT:-0}" = 1 ] && fail=1
    fi
    conversation_runner "${CONVERSATION_FUZZ_RUNS:-4}" "${CONVERSATION_FUZZ_STEPS:-3000}" \
        "${CONVERSATION_UOW_FUZZ_RUNS:-4}" || fail=1
    awk '/execs/ {s += $2} END {printf "total: %d executions\n", s}' "$SUMMARY" | tee -a "$SUMMARY"
    exit $fail
    ;;
cmin)
    have_cargo_fuzz || exit 1
    build || exit 1
    for t in $TARGETS; do
        tmp=$(mktemp -d)
        cargo fuzz run -s "$SAN" "$t" "$tmp" "fuzz/corpus/$t" "fuzz/corpus-work/$t" -- \
            -merge=1 -max_len=65536 >/dev/null 2>&1 && rm -rf "fuzz/corpus/$t" && mv "$tmp" "fuzz/corpus/$t"
        echo "$t: $(ls "fuzz/corpus/$t" | wc -l) files, $(du -sh "fuzz/corpus/$t" | cut -f1)"
    done
    ;;
*)
    echo "usage: $0 run [seconds] | ci | cmin" >&2
    exit 2
    ;;
esac

//! The deterministic, seedable runner of the unit-of-work conversation fuzzer (the same logic
//! as the libFuzzer target `conversation_uow`, `fuzz/src/targets/conversation_uow.rs`): 1:1,
//! sealed-sender and sender-key group traffic over a hostile network, every operation through
//! `uow::plan` and a compare-and-swap commit on a store whose commits fail, whose connection
//! drops after a commit and whose commits lose races (`fuzz/src/targets/flaky_store.rs`).
//!
//! Bounded for `cargo test`; `make fuzz-ci` / `make fuzz` run it in release with more steps:
//! `CONVERSATION_UOW_FUZZ_SEED=<u64> CONVERSATION_UOW_FUZZ_RUNS=<n>
//! CONVERSATION_UOW_FUZZ_STEPS=<n>`. A failure names its seed; rerun that seed with
//! `CONVERSATION_UOW_FUZZ_RUNS=1` to reproduce the schedule (key bytes come from the OS RNG;
//! no invariant depends on them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    dead_code
)]

#[path = "../../../fuzz/src/targets/mod.rs"]
mod targets;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn conversation_uow_fuzz() {
    let debug = cfg!(debug_assertions);
    let seed = env_u64("CONVERSATION_UOW_FUZZ_SEED", 0x0f1a);
    let runs = env_u64("CONVERSATION_UOW_FUZZ_RUNS", if debug { 2 } else { 8 });
    let steps = env_u64(
        "CONVERSATION_UOW_FUZZ_STEPS",
        if debug { 300 } else { 2_000 },
    ) as usize;
    let config = targets::conversation_uow::Config { max_steps: steps };
    let t = std::time::Instant::now();
    let stats = targets::conversation_uow::run_seeded(seed, runs, &config);
    eprintln!(
        "conversation_uow fuzz: seed {seed}, {runs} runs, {:.1} s: {stats:?}",
        t.elapsed().as_secs_f64()
    );
    assert!(stats.steps >= runs * steps as u64 / 2);
    assert!(stats.delivered > 0 && stats.duplicates_refused > 0);
    let f = &stats.faults;
    assert!(f.commit_failures > 0 && f.dropped_after_commit > 0 && f.conflicts > 0);
    assert!(stats.sent_sealed > 0 && stats.sent_group > 0 && stats.distributions > 0);
}

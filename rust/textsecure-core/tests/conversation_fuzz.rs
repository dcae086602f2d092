//! The deterministic, seedable conversation fuzzer (the same logic as the libFuzzer target
//! `conversation`, `fuzz/src/targets/conversation.rs`): two or three parties, a hostile
//! network, invariants checked after every step, the network healed every 500 steps.
//!
//! Bounded for `cargo test`; `make fuzz-ci` / `make fuzz` run it in release with more steps:
//! `CONVERSATION_FUZZ_SEED=<u64> CONVERSATION_FUZZ_RUNS=<n> CONVERSATION_FUZZ_STEPS=<n>
//! CONVERSATION_FUZZ_JUMPS=<messages a run may encrypt and drop to jump a chain ahead>`.
//! A failure names its seed; rerun that seed with `CONVERSATION_FUZZ_RUNS=1` to reproduce the
//! schedule (keys come from the OS RNG, so key bytes differ, but no invariant depends on them).

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
fn conversation_fuzz() {
    // Debug builds are slow: a short default (one jump past the limit at most); release runs
    // go far longer.
    let debug = cfg!(debug_assertions);
    let seed = env_u64("CONVERSATION_FUZZ_SEED", 0x7e57);
    let runs = env_u64("CONVERSATION_FUZZ_RUNS", if debug { 2 } else { 4 });
    let steps = env_u64("CONVERSATION_FUZZ_STEPS", if debug { 500 } else { 5_000 }) as usize;
    let config = targets::conversation::Config {
        max_steps: steps,
        jump_budget: env_u64(
            "CONVERSATION_FUZZ_JUMPS",
            if debug { 26_000 } else { 200_000 },
        ),
        heal_every: 500,
    };
    let t = std::time::Instant::now();
    let stats = targets::conversation::run_seeded(seed, runs, &config);
    eprintln!(
        "conversation fuzz: seed {seed}, {runs} runs, {:.1} s: {stats:?}",
        t.elapsed().as_secs_f64()
    );
    assert!(stats.steps >= runs * steps as u64 / 2);
    assert!(stats.delivered > 0 && stats.rejected > 0);
}

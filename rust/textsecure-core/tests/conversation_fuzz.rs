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

/// Secrets never show in Rust `Debug` output of the stores, nor in error messages: a fuzzed
/// conversation leaves stores with archived sessions, skipped keys and prekeys; every secret
/// is collected from their serialized forms and the text is scanned for it.
#[test]
fn secrets_never_in_debug_or_errors() {
    use targets::conversation::{run_keeping_stores, Config};
    use targets::support::SplitMix;
    let config = Config {
        max_steps: 400,
        jump_budget: 3_000,
        heal_every: 0,
    };
    let (_stats, stores, errors) = run_keeping_stores(&mut SplitMix(99), 3, &config);
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    let mut text = errors.join("\n");
    for store in &stores {
        text.push_str(&format!("{store:?}\n{store:#?}\n"));
        secrets.push(store.identity().private_key.serialize().to_vec());
        for r in store.prekeys.values() {
            secrets.push(r.key_pair.private_key.serialize().to_vec());
        }
        for r in store.signed_prekeys.values() {
            secrets.push(r.key_pair.private_key.serialize().to_vec());
        }
        for (r, _) in store.kyber_prekeys.values() {
            secrets.push(r.key_pair.secret_key.serialize()[1..].to_vec());
        }
        for rec in store.sessions.values() {
            text.push_str(&format!("{rec:?}"));
            // Root, chain and message keys, ratchet private keys and the SPQR secrets.
            secrets.extend(targets::support::session_secrets(rec).0);
        }
    }
    secrets.retain(|s| s.len() >= 16);
    assert!(
        secrets.len() > 20,
        "too few secrets collected: {}",
        secrets.len()
    );
    for s in &secrets {
        let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !text.contains(&hex),
            "a secret in hex in Debug or error output"
        );
        let window = format!("{:?}", &s[..8]);
        let window = window.trim_start_matches('[').trim_end_matches(']');
        assert!(
            !text.contains(window),
            "secret bytes in Debug or error output"
        );
    }
}

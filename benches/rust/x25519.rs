//! X25519 and Ed25519-verify candidates under one criterion bench (docs/curve.md):
//! `cargo bench -p textsecure-core --bench x25519`.
//!
//! * `x25519_agree/*`: the variable-base scalar multiplication of an agreement, from 32 raw
//!   private bytes and a peer's 32-byte u-coordinate, as `PrivateKey::agree` gets them.
//!   `aws-lc-rs` imports the raw key first (`EVP_PKEY_new_raw_private_key`, which also computes
//!   the public key: one fixed-base multiplication); `aws-lc-rs-prepared` measures the
//!   agreement alone with the key already imported (what a cache of imported keys would cost).
//!   `ring` cannot import a private key (ephemeral keys only): `ring-ephemeral` is generate +
//!   agree with a fresh key, to be compared with `x25519_keygen/ring-ephemeral`.
//! * `x25519_keygen/*`: the public key of 32 raw private bytes (fixed base).
//! * `ed25519_verify/*`: an XEdDSA signature of the core checked by the core (dalek), and the
//!   same signature checked as an Ed25519 signature (sign bit cleared from `S`) under the
//!   Edwards form of the Montgomery key by aws-lc-rs and ring; `*-with-conversion` includes
//!   the Montgomery to Edwards conversion the core would have to do per key.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches abort on a broken setup

use aws_lc_rs::agreement as lc_agreement;
use aws_lc_rs::signature as lc_signature;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ring::agreement as ring_agreement;
use ring::rand::SystemRandom;
use ring::signature as ring_signature;
use textsecure_core::curve::{KeyPair, VerifyingKey};

fn x25519(c: &mut Criterion) {
    let k1 = KeyPair::generate();
    let k2 = KeyPair::generate();
    let sk = k1.private_key.serialize();
    let peer = *k2.public_key.djb_bytes();
    let expected = MontgomeryPoint(peer).mul_clamped(sk).to_bytes();

    // Every candidate must compute the same secret and public key before it is timed.
    let lc_key = lc_agreement::PrivateKey::from_private_key(&lc_agreement::X25519, &sk).unwrap();
    let lc_peer = lc_agreement::UnparsedPublicKey::new(&lc_agreement::X25519, peer);
    let lc_secret = lc_agreement::agree(&lc_key, lc_peer, (), |s| Ok(s.to_vec())).unwrap();
    assert_eq!(lc_secret, expected);
    assert_eq!(
        lc_key.compute_public_key().unwrap().as_ref(),
        k1.public_key.djb_bytes()
    );
    let mut hacl = [0u8; 32];
    assert!(libcrux_curve25519::ecdh(&mut hacl, &peer, &sk).is_ok());
    assert_eq!(hacl, expected);
    libcrux_curve25519::secret_to_public(&mut hacl, &sk);
    assert_eq!(&hacl, k1.public_key.djb_bytes());

    let mut g = c.benchmark_group("x25519_agree");
    g.bench_function("dalek", |b| {
        b.iter(|| MontgomeryPoint(black_box(peer)).mul_clamped(black_box(sk)))
    });
    g.bench_function("core-PrivateKey::agree", |b| {
        b.iter(|| k1.private_key.agree(black_box(&k2.public_key)).unwrap())
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| {
            let key =
                lc_agreement::PrivateKey::from_private_key(&lc_agreement::X25519, black_box(&sk))
                    .unwrap();
            let their =
                lc_agreement::UnparsedPublicKey::new(&lc_agreement::X25519, black_box(peer));
            lc_agreement::agree(&key, their, (), |s| {
                let mut out = [0u8; 32];
                out.copy_from_slice(s);
                Ok(out)
            })
            .unwrap()
        })
    });
    g.bench_function("aws-lc-rs-prepared", |b| {
        b.iter(|| {
            let their =
                lc_agreement::UnparsedPublicKey::new(&lc_agreement::X25519, black_box(peer));
            lc_agreement::agree(&lc_key, their, (), |s| {
                let mut out = [0u8; 32];
                out.copy_from_slice(s);
                Ok(out)
            })
            .unwrap()
        })
    });
    g.bench_function("libcrux-hacl", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            let ok = libcrux_curve25519::ecdh(&mut out, black_box(&peer), black_box(&sk)).is_ok();
            assert!(ok);
            out
        })
    });
    let rng = SystemRandom::new();
    let ring_peer = ring_agreement::UnparsedPublicKey::new(&ring_agreement::X25519, peer);
    g.bench_function("ring-ephemeral", |b| {
        b.iter(|| {
            let key = ring_agreement::EphemeralPrivateKey::generate(&ring_agreement::X25519, &rng)
                .unwrap();
            ring_agreement::agree_ephemeral(key, black_box(&ring_peer), |s| {
                let mut out = [0u8; 32];
                out.copy_from_slice(s);
                out
            })
            .unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("x25519_keygen");
    g.bench_function("dalek", |b| {
        b.iter(|| MontgomeryPoint::mul_base_clamped(black_box(sk)))
    });
    g.bench_function("core-KeyPair::generate", |b| b.iter(KeyPair::generate));
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| {
            let key =
                lc_agreement::PrivateKey::from_private_key(&lc_agreement::X25519, black_box(&sk))
                    .unwrap();
            let mut out = [0u8; 32];
            out.copy_from_slice(key.compute_public_key().unwrap().as_ref());
            out
        })
    });
    g.bench_function("libcrux-hacl", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            libcrux_curve25519::secret_to_public(&mut out, black_box(&sk));
            out
        })
    });
    g.bench_function("ring-ephemeral", |b| {
        b.iter(|| {
            let key = ring_agreement::EphemeralPrivateKey::generate(&ring_agreement::X25519, &rng)
                .unwrap();
            key.compute_public_key().unwrap()
        })
    });
    g.bench_function("ring-ephemeral-no-public", |b| {
        b.iter(|| {
            ring_agreement::EphemeralPrivateKey::generate(&ring_agreement::X25519, &rng).unwrap()
        })
    });
    g.finish();
}

fn ed25519_verify(c: &mut Criterion) {
    let k = KeyPair::generate();
    let msg = [0x42u8; 100];
    let sig = k.private_key.sign(&msg);
    let montgomery = *k.public_key.djb_bytes();
    let to_ed25519 = |sig: &[u8; 64]| {
        let a = MontgomeryPoint(montgomery)
            .to_edwards(sig[63] >> 7)
            .unwrap()
            .compress()
            .to_bytes();
        let mut s = *sig;
        s[63] &= 0x7f;
        (a, s)
    };
    let (a, ed_sig) = to_ed25519(&sig);
    let verifier = VerifyingKey::new(k.public_key);
    assert!(k.public_key.verify_signature(&msg, &sig));
    let lc_key = lc_signature::UnparsedPublicKey::new(&lc_signature::ED25519, a);
    lc_key.verify(&msg, &ed_sig).unwrap();
    let ring_key = ring_signature::UnparsedPublicKey::new(&ring_signature::ED25519, a);
    ring_key.verify(&msg, &ed_sig).unwrap();

    let mut g = c.benchmark_group("ed25519_verify");
    g.bench_function("core-xeddsa-dalek", |b| {
        b.iter(|| assert!(k.public_key.verify_signature(black_box(&msg), &sig)))
    });
    g.bench_function("core-xeddsa-dalek-cached-key", |b| {
        b.iter(|| assert!(verifier.verify_multipart(&[black_box(&msg)], &sig)))
    });
    g.bench_function("aws-lc-rs", |b| {
        b.iter(|| lc_key.verify(black_box(&msg), &ed_sig).unwrap())
    });
    g.bench_function("aws-lc-rs-with-conversion", |b| {
        b.iter(|| {
            let (a, s) = to_ed25519(black_box(&sig));
            lc_signature::UnparsedPublicKey::new(&lc_signature::ED25519, a)
                .verify(black_box(&msg), &s)
                .unwrap()
        })
    });
    g.bench_function("ring", |b| {
        b.iter(|| ring_key.verify(black_box(&msg), &ed_sig).unwrap())
    });
    g.finish();
}

criterion_group!(benches, x25519, ed25519_verify);
criterion_main!(benches);

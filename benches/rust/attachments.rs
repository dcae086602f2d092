//! Criterion benches of attachment / media encryption throughput (one core).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use textsecure_core::attachments::{signal, whatsapp, MediaType};

fn bench(c: &mut Criterion) {
    let key = [7u8; 64];
    let iv = [1u8; 16];
    let mt = MediaType::from_name("video").unwrap();
    let mut g = c.benchmark_group("attachments");
    g.sample_size(10);
    for size in [1usize << 20, 16 << 20] {
        let pt: Vec<u8> = (0..size).map(|i| i as u8).collect();
        g.throughput(Throughput::Bytes(size as u64));
        // The primitives alone, for the floors.
        g.bench_with_input(BenchmarkId::new("sha256_only", size), &pt, |b, pt| {
            use sha2::Digest;
            b.iter(|| sha2::Sha256::digest(black_box(pt)))
        });
        g.bench_with_input(
            BenchmarkId::new("aes_cbc_encrypt_only", size),
            &pt,
            |b, pt| {
                b.iter(|| {
                    let mut e =
                        textsecure_core::attachments::cbc_stream::CbcEncStream::new(&[1; 32], &iv);
                    let mut out = Vec::with_capacity(pt.len() + 16);
                    e.update(black_box(pt), &mut out);
                    out
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("aes_cbc_decrypt_only", size),
            &pt,
            |b, pt| {
                let mut buf = pt.clone();
                b.iter(|| {
                    let mut d =
                        textsecure_core::attachments::cbc_stream::CbcDecStream::new(&[1; 32], &iv);
                    d.decrypt_in_place(black_box(&mut buf));
                })
            },
        );
        let (blob, r) = signal::encrypt(&key, &iv, &pt).unwrap();
        let (wa, w) = whatsapp::encrypt(&key[..32], mt, &pt).unwrap();
        g.bench_with_input(BenchmarkId::new("signal_encrypt", size), &pt, |b, pt| {
            b.iter(|| signal::encrypt(&key, &iv, black_box(pt)).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("signal_decrypt", size),
            &blob,
            |b, blob| {
                b.iter(|| {
                    signal::decrypt(&key, black_box(blob), Some(&r.digest), size as u64, None)
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("whatsapp_encrypt", size), &pt, |b, pt| {
            b.iter(|| whatsapp::encrypt(&key[..32], mt, black_box(pt)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("whatsapp_decrypt", size), &wa, |b, wa| {
            b.iter(|| whatsapp::decrypt(&key[..32], mt, black_box(wa), None, None).unwrap())
        });
        g.bench_with_input(
            BenchmarkId::new("whatsapp_decrypt_hashes", size),
            &wa,
            |b, wa| {
                b.iter(|| {
                    whatsapp::decrypt(
                        &key[..32],
                        mt,
                        black_box(wa),
                        Some(&w.file_sha256),
                        Some(&w.file_enc_sha256),
                    )
                    .unwrap()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Profiling driver for single curve operations
//! (`valgrind --tool=callgrind target/release/examples/profile_curve agree 1000`).

use textsecure_core::curve::KeyPair;

fn main() -> Result<(), textsecure_core::Error> {
    let op = std::env::args().nth(1).unwrap_or_else(|| "agree".into());
    let n: u32 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let a = KeyPair::generate();
    let b = KeyPair::generate();
    let sig = a.private_key.sign(b"m");
    let mut acc = 0u8;
    for _ in 0..n {
        match op.as_str() {
            "agree" => acc ^= a.private_key.agree(&b.public_key)?[0],
            "keygen" => acc ^= KeyPair::generate().public_key.djb_bytes()[0],
            "verify" => acc ^= u8::from(a.public_key.verify_signature(b"m", &sig)),
            "canonical" => acc ^= u8::from(b.public_key.is_canonical()),
            _ => {}
        }
    }
    println!("{acc}");
    Ok(())
}

//! Signal attachment blobs (`attachments::signal`): hostile blobs, digests, incremental MACs,
//! sizes, chunk sizes and read sizes. Never panics; one-shot and streaming decryption agree,
//! including the bindings' path (`decrypt_into` on one or two threads into a buffer of `size`
//! bytes when `size` fits the blob, else `decrypt_streaming`);
//! anything that decrypts round-trips through encryption with the same key.
//!
//! Input: flags (1: digest given, 2: incremental MAC given, 4: streaming knows the blob length,
//! 8: the bindings' one-shot runs on two threads, 16: its buffer starts as 0xff not zeros),
//! plaintext size (u32), chunk size (u16, + 1), read size (u16, + 1), then a digest field if
//! flag 1, an incremental MAC field if flag 2, and the blob.

use textsecure_core::attachments::signal::{self, SignalDecryptor};
use textsecure_core::attachments::Threads;

use super::support::{put_field, Input};

/// The fixed key (AES ‖ HMAC) of every blob this target decrypts.
pub const KEY: [u8; 64] = [0x5a; 64];

/// This target's input for a blob made with [`KEY`].
pub fn encode(plaintext: &[u8], iv: &[u8; 16], with_incremental: bool) -> Vec<u8> {
    let Ok((blob, r)) = signal::encrypt(&KEY, iv, plaintext) else {
        return Vec::new();
    };
    let mut out = vec![1 | if with_incremental { 2 } else { 0 } | 4];
    out.extend_from_slice(&(plaintext.len() as u32).to_le_bytes());
    out.extend_from_slice(&((r.chunk_size.min(65_536) - 1) as u16).to_le_bytes());
    out.extend_from_slice(&100u16.to_le_bytes());
    put_field(&mut out, &r.digest);
    if with_incremental {
        put_field(&mut out, &r.incremental_mac);
    }
    out.extend_from_slice(&blob);
    out
}

fn streaming(
    blob: &[u8],
    size: u64,
    digest: Option<&[u8]>,
    inc: Option<(&[u8], usize)>,
    blob_len: Option<u64>,
    step: usize,
) -> Result<Vec<u8>, textsecure_core::Error> {
    let mut d = match inc {
        Some((list, chunk)) => SignalDecryptor::new(&KEY, size, digest, list, chunk, blob_len)?,
        None => SignalDecryptor::new_releasing_unverified(&KEY, size, digest, blob_len)?,
    };
    let mut out = Vec::new();
    for piece in blob.chunks(step) {
        d.update(piece, &mut out)?;
        assert_eq!(d.released(), out.len() as u64);
    }
    d.finalize(&mut out)?;
    Ok(out)
}

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let size = u64::from(input.u32());
    let chunk = usize::from(input.u16()) + 1;
    let step = usize::from(input.u16()) + 1;
    let digest = (flags & 1 != 0).then(|| input.field());
    let inc = (flags & 2 != 0).then(|| (input.field(), chunk));
    let blob = input.rest();

    let one_shot = signal::decrypt(&KEY, blob, digest, size, inc);
    let blob_len = (flags & 4 != 0).then_some(blob.len() as u64);
    let streamed = streaming(blob, size, digest, inc, blob_len, step);
    match (&one_shot, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "one-shot and streaming plaintexts differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("one-shot {one_shot:?} and streaming {streamed:?} disagree"),
    }
    // What the Python bindings call.
    let threads = if flags & 8 != 0 {
        Threads::Two
    } else {
        Threads::One
    };
    let bindings = match usize::try_from(size) {
        Ok(len) if len <= blob.len() => {
            let mut out = vec![if flags & 16 != 0 { 0xff } else { 0 }; len];
            signal::decrypt_into(&KEY, blob, digest, size, inc, &mut out, threads).map(|()| out)
        }
        _ => signal::decrypt_streaming(&KEY, blob, digest, size, inc),
    };
    match (&bindings, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "bindings' one-shot ({threads:?}) and streaming differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("bindings' one-shot ({threads:?}) {bindings:?} and streaming {streamed:?} disagree"),
    }
    if let Ok(pt) = one_shot {
        assert_eq!(pt.len() as u64, size);
    }

    // Round trip of arbitrary plaintext (the blob bytes) with an IV from the input.
    let pt = &blob[..blob.len().min(4096)];
    let mut iv = [0u8; 16];
    for (d, s) in iv.iter_mut().zip(data) {
        *d = *s;
    }
    let (enc, r) = signal::encrypt(&KEY, &iv, pt).expect("encrypt");
    assert_eq!(enc.len() as u64, r.blob_len);
    let inc = Some((&r.incremental_mac[..], r.chunk_size));
    let dec = signal::decrypt(&KEY, &enc, Some(&r.digest), pt.len() as u64, inc);
    assert_eq!(dec.as_deref().ok(), Some(pt), "round trip failed");

    // The streaming encryptor, fed in pieces and padded in steps the input chooses, writes
    // exactly the one-shot blob and the same digest and incremental MAC.
    let piece = usize::from(data.get(16).copied().unwrap_or(0)) + 1;
    let pad_step = usize::from(data.get(17).copied().unwrap_or(0)) * 97;
    let mut stream =
        signal::SignalEncryptor::new(&KEY, &iv, r.chunk_size).expect("streaming encryptor");
    let mut out = Vec::new();
    for p in pt.chunks(piece) {
        stream.update(p, &mut out).expect("update");
    }
    while !stream.pad(&mut out, pad_step) {}
    assert!(stream.update(b"x", &mut Vec::new()).is_err(), "update after padding");
    let sr = stream.finalize(&mut out);
    assert_eq!(out, enc, "streaming and one-shot blobs differ");
    assert_eq!(
        (sr.digest, &sr.incremental_mac, sr.chunk_size, sr.plaintext_size, sr.blob_len),
        (r.digest, &r.incremental_mac, r.chunk_size, r.plaintext_size, r.blob_len),
        "streaming and one-shot results differ"
    );
}

//! WhatsApp media files (`attachments::whatsapp`): hostile files, hashes, media types and read
//! sizes. Never panics; one-shot and streaming decryption agree, including the bindings' path
//! (`verify` on one or two threads, then `VerifiedMedia::decrypt_into`); round trips hold.
//!
//! Input: media type index, flags (1: fileSha256 given, 2: fileEncSha256 given, 4: streaming
//! knows the length, 8: media key from the input, 16: the bindings' one-shot on two threads,
//! 32: its buffer starts as 0xff not zeros), read size (u16, + 1), then the fields that
//! the flags announce (hashes, media key) and the file.

use textsecure_core::attachments::whatsapp::{self, MediaType, WhatsAppDecryptor};
use textsecure_core::attachments::Threads;

use super::support::{put_field, Input};

/// The default media key.
pub const MEDIA_KEY: [u8; 32] = [0x3c; 32];

fn media_type(i: u8) -> MediaType {
    let names: Vec<&str> = MediaType::names().collect();
    let name = names[usize::from(i) % names.len()];
    MediaType::from_name(name).expect("a listed media type")
}

/// This target's input for a file made with [`MEDIA_KEY`].
pub fn encode(type_index: u8, plaintext: &[u8]) -> Vec<u8> {
    let Ok((file, r)) = whatsapp::encrypt(&MEDIA_KEY, media_type(type_index), plaintext) else {
        return Vec::new();
    };
    let mut out = vec![type_index, 1 | 2 | 4];
    out.extend_from_slice(&63u16.to_le_bytes());
    put_field(&mut out, &r.file_sha256);
    put_field(&mut out, &r.file_enc_sha256);
    out.extend_from_slice(&file);
    out
}

/// Target entry point.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mt = media_type(input.u8());
    let flags = input.u8();
    let step = usize::from(input.u16()) + 1;
    let sha = (flags & 1 != 0).then(|| input.field());
    let enc_sha = (flags & 2 != 0).then(|| input.field());
    let key = if flags & 8 != 0 { input.field() } else { &MEDIA_KEY[..] };
    let file = input.rest();

    let one_shot = whatsapp::decrypt(key, mt, file, sha, enc_sha);
    let streamed = (|| {
        let enc_len = (flags & 4 != 0).then_some(file.len() as u64);
        let mut d = WhatsAppDecryptor::new(key, mt, sha, enc_sha, enc_len)?;
        let mut out = Vec::new();
        for piece in file.chunks(step) {
            d.update(piece, &mut out)?;
        }
        let n = d.finalize(&mut out)?;
        assert_eq!(n, out.len() as u64);
        Ok::<_, textsecure_core::Error>(out)
    })();
    match (&one_shot, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "one-shot and streaming plaintexts differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("one-shot {one_shot:?} and streaming {streamed:?} disagree"),
    }

    // What the Python bindings call.
    let threads = if flags & 16 != 0 {
        Threads::Two
    } else {
        Threads::One
    };
    let bindings = whatsapp::verify(key, mt, file, sha, enc_sha, threads).and_then(|v| {
        let mut out = vec![if flags & 32 != 0 { 0xff } else { 0 }; v.len()];
        v.decrypt_into(&mut out).map(|()| out)
    });
    match (&bindings, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "bindings' one-shot ({threads:?}) and streaming differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("bindings' one-shot ({threads:?}) {bindings:?} and streaming {streamed:?} disagree"),
    }

    let pt = &file[..file.len().min(4096)];
    let (enc, r) = whatsapp::encrypt(&MEDIA_KEY, mt, pt).expect("encrypt");
    assert_eq!(enc.len() as u64, whatsapp::enc_len(pt.len() as u64));
    let dec = whatsapp::decrypt(
        &MEDIA_KEY,
        mt,
        &enc,
        Some(&r.file_sha256),
        Some(&r.file_enc_sha256),
    );
    assert_eq!(dec.as_deref().ok(), Some(pt), "round trip failed");

    // The streaming encryptor, fed in pieces the input chooses, writes exactly the one-shot
    // file and the same hashes.
    let piece = usize::from(data.get(2).copied().unwrap_or(0)) + 1;
    let mut stream = whatsapp::WhatsAppEncryptor::new(&MEDIA_KEY, mt).expect("streaming encryptor");
    let mut out = Vec::new();
    for p in pt.chunks(piece) {
        stream.update(p, &mut out);
    }
    let sr = stream.finalize(&mut out);
    assert_eq!(out, enc, "streaming and one-shot files differ");
    assert_eq!(sr, r, "streaming and one-shot results differ");
}

//! Sealed sender v2 in the sent form (`0x22` / `0x23`, what a server parses and splits per
//! recipient): `SentMessage::parse`, `received_message_for`,
//! `received_message_for_single_recipient` and the service-id codec behind them.
//!
//! Checked: never panics; a parsed message lists each service id once, every included
//! recipient with 1..=127 devices of 14-bit registration ids; each service id round-trips
//! through its fixed-width form; extraction is deterministic, gives the received form
//! (`0x22 ‖ C ‖ AT ‖ shared`) for included recipients and fails for excluded or unknown ones;
//! the single-recipient shortcut agrees with it; re-encoding the parsed message (an encoder
//! independent of the core's) parses to the same message and is a fixed point; every extracted
//! message opened by the fixed Bob either fails or gives content that re-parses to the same
//! fields.
//!
//! Input: the sent-form message, as is.

use textsecure_core::sealed_sender::{
    decrypt_to_usmc, parse_uuid, service_id_fixed_width, service_id_string, SentMessage,
    UnidentifiedSenderMessageContent, MAX_DEVICE_ID, REGISTRATION_ID_MASK, V2_SERVICE_ID_VERSION,
    V2_UUID_VERSION,
};

use super::support::{fixed_bob, pb_varint};

/// The fixed Bob's ACI in seeds.
pub const BOB_ACI: &str = "b0b00000-0000-4000-8000-000000000b0b";

/// Most recipients whose extracted message is opened per input (each open is a few scalar
/// multiplications).
const MAX_OPENS: usize = 4;

/// Encodes a parsed message back into the sent form (`version` may differ from the parsed
/// one: `0x22` needs every service id to be an ACI). The per-recipient `C ‖ AT` and the shared
/// part come from the received forms. `None` if a service id cannot be written in `version`.
pub fn encode(m: &SentMessage, version: u8) -> Option<Vec<u8>> {
    let mut out = vec![version];
    pb_varint(&mut out, m.recipients.len() as u64);
    let mut shared = None;
    for r in &m.recipients {
        if version == V2_UUID_VERSION {
            out.extend_from_slice(&parse_uuid(&r.service_id)?);
        } else {
            out.extend_from_slice(&service_id_fixed_width(&r.service_id).ok()?);
        }
        if r.devices.is_empty() {
            out.push(0);
            continue;
        }
        for (i, d) in r.devices.iter().enumerate() {
            let more = if i + 1 < r.devices.len() { 0x8000 } else { 0 };
            out.push(d.device_id as u8);
            out.extend_from_slice(&((d.registration_id as u16) | more).to_be_bytes());
        }
        let received = m.received_message_for(&r.service_id).ok()?;
        out.extend_from_slice(&received[1..49]);
        shared = Some(received[49..].to_vec());
    }
    // With no included recipient the shared part cannot be extracted: such a message has
    // nothing to re-encode.
    out.extend_from_slice(&shared?);
    Some(out)
}

/// Target entry point.
pub fn run(data: &[u8]) {
    // The service-id codec on the input's first bytes as text.
    let s = String::from_utf8_lossy(&data[..data.len().min(40)]);
    if let Ok(fixed) = service_id_fixed_width(&s) {
        let back = service_id_string(&fixed).expect("a parsed service id formats");
        assert!(back.eq_ignore_ascii_case(&s), "service id {s:?} came back as {back:?}");
    }

    let Ok(m) = SentMessage::parse(data) else {
        assert!(
            SentMessage::received_message_for_single_recipient(data).is_err(),
            "single-recipient extraction of an unparseable message"
        );
        return;
    };
    assert!(m.version == V2_UUID_VERSION || m.version == V2_SERVICE_ID_VERSION);
    let mut shared: Option<Vec<u8>> = None;
    for (i, r) in m.recipients.iter().enumerate() {
        assert!(
            m.recipients[..i].iter().all(|o| o.service_id != r.service_id),
            "service id {} listed twice",
            r.service_id
        );
        let fixed = service_id_fixed_width(&r.service_id).expect("parsed service id re-encodes");
        assert_eq!(service_id_string(&fixed).as_deref(), Ok(&*r.service_id));
        if m.version == V2_UUID_VERSION {
            assert_eq!(fixed[0], 0, "a 0x22 message names a PNI");
        }
        for d in &r.devices {
            assert!((1..=MAX_DEVICE_ID).contains(&d.device_id));
            assert_eq!(d.registration_id & !u32::from(REGISTRATION_ID_MASK), 0);
        }
        let got = m.received_message_for(&r.service_id);
        assert_eq!(
            got,
            m.received_message_for(&r.service_id),
            "extraction is not deterministic"
        );
        if r.devices.is_empty() {
            assert!(got.is_err(), "an excluded recipient got a message");
            continue;
        }
        let got = got.expect("an included recipient gets its message");
        assert!(got.len() >= 1 + 48 + 32);
        assert_eq!(got[0], V2_UUID_VERSION);
        match &shared {
            None => shared = Some(got[49..].to_vec()),
            Some(s) => assert_eq!(s[..], got[49..], "recipients got different shared parts"),
        }
        if i < MAX_OPENS {
            if let Ok(u) = decrypt_to_usmc(&got, fixed_bob().store.identity()) {
                let back = UnidentifiedSenderMessageContent::deserialize(u.serialized())
                    .expect("decrypted content re-parses");
                assert_eq!(back.msg_type(), u.msg_type());
                assert_eq!(back.contents(), u.contents());
                assert_eq!(back.content_hint(), u.content_hint());
                assert_eq!(back.group_id(), u.group_id());
                assert_eq!(back.sender().serialized(), u.sender().serialized());
            }
        }
    }
    assert!(
        m.received_message_for("00000000-0000-0000-0000-000000000000x").is_err(),
        "a message for a service id that is not there"
    );

    let single = SentMessage::received_message_for_single_recipient(data);
    match m.recipients.as_slice() {
        [only] if !only.devices.is_empty() => {
            assert_eq!(single, m.received_message_for(&only.service_id));
        }
        _ => assert!(single.is_err(), "single-recipient extraction of another message"),
    }

    // Re-encoding: same message, and a fixed point.
    if let Some(enc) = encode(&m, m.version) {
        let again = SentMessage::parse(&enc).expect("re-encoded message parses");
        assert_eq!(again.version, m.version);
        assert_eq!(again.recipients, m.recipients, "re-encoding changed the recipients");
        for r in m.recipients.iter().filter(|r| !r.devices.is_empty()) {
            assert_eq!(
                again.received_message_for(&r.service_id),
                m.received_message_for(&r.service_id),
                "re-encoding changed a recipient's message"
            );
        }
        assert_eq!(encode(&again, again.version).as_deref(), Some(&*enc));
    }
}

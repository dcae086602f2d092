//! `State` <-> `PqRatchetState` protobuf (notes §11). Parsing validates every size and required
//! sub-message; writing follows libsignal's encoder (defaults omitted, parameters equal to the
//! defaults written as 0, parameter sub-messages always present).

use std::sync::Arc;

use prost::Message as _;
use zeroize::{Zeroize, Zeroizing};

use super::auth::Authenticator;
use super::braid::{Braid, St, CT2_MSG_LEN, HDR_MSG_LEN};
use super::chain::{Chain, Dir, Link, DEFAULT_MAX_JUMP, DEFAULT_MAX_OOO, HIST_ENTRY};
use super::erasure::{Decoder, Encoder};
use super::errors::bad_state;
use super::kem::{self, CT1_LEN, DK_LEN, EK_LEN, ES_LEN, HDR_LEN};
use super::proto as pb;
use super::proto::v1_state::InnerState as IS;
use super::{Direction, Negotiation, State, Version};
use crate::error::Result;

fn dir_to(d: Direction) -> i32 {
    match d {
        Direction::A2B => 0,
        Direction::B2A => 1,
    }
}

fn dir_from(d: i32) -> Result<Direction> {
    match d {
        0 => Ok(Direction::A2B),
        1 => Ok(Direction::B2A),
        _ => Err(bad_state("SPQR state: bad direction")),
    }
}

fn params_to(max_jump: u32, max_ooo: u32) -> pb::ChainParams {
    pb::ChainParams {
        max_jump: if max_jump == DEFAULT_MAX_JUMP {
            0
        } else {
            max_jump
        },
        max_ooo_keys: if max_ooo == DEFAULT_MAX_OOO {
            0
        } else {
            max_ooo
        },
    }
}

fn params_from(p: &Option<pb::ChainParams>) -> (u32, u32) {
    let p = p.clone().unwrap_or_default();
    (
        if p.max_jump == 0 {
            DEFAULT_MAX_JUMP
        } else {
            p.max_jump
        },
        if p.max_ooo_keys == 0 {
            DEFAULT_MAX_OOO
        } else {
            p.max_ooo_keys
        },
    )
}

fn fixed<const N: usize>(v: &[u8], what: &'static str) -> Result<[u8; N]> {
    v.try_into().map_err(|_| bad_state(what))
}

/// Zeroizes every secret held by a protobuf state (after encoding or decoding).
fn wipe(p: &mut pb::PqRatchetState) {
    if let Some(n) = &mut p.version_negotiation {
        n.auth_key.zeroize();
    }
    if let Some(c) = &mut p.chain {
        c.next_root.zeroize();
        for l in &mut c.links {
            for d in [&mut l.send, &mut l.recv].into_iter().flatten() {
                d.next.zeroize();
                d.prev.zeroize();
            }
        }
    }
    if let Some(pb::pq_ratchet_state::Inner::V1(v)) = &mut p.inner {
        let uc = match &mut v.inner_state {
            Some(IS::KeysUnsampled(x)) => x.uc.as_mut(),
            Some(
                IS::KeysSampled(x)
                | IS::Ct1Received(x)
                | IS::EkReceivedCt1Sampled(x)
                | IS::Ct2Sampled(x),
            ) => x.uc.as_mut(),
            Some(IS::HeaderSent(x) | IS::Ct1Sampled(x)) => x.uc.as_mut(),
            Some(IS::EkSentCt1Received(x)) => x.uc.as_mut(),
            Some(IS::NoHeaderReceived(x) | IS::HeaderReceived(x) | IS::Ct1Acknowledged(x)) => {
                x.uc.as_mut()
            }
            None => None,
        };
        if let Some(u) = uc {
            if let Some(a) = &mut u.auth {
                a.root_key.zeroize();
                a.mac_key.zeroize();
            }
            u.f3.zeroize();
            u.f4.zeroize();
            u.f5.zeroize();
        }
    }
}

// ---------- writing ----------

fn enc_to(e: &Encoder) -> Option<pb::PolynomialEncoder> {
    let (idx, pts, polys) = e.to_parts();
    Some(pb::PolynomialEncoder { idx, pts, polys })
}

fn dec_to(d: &Decoder) -> Option<pb::PolynomialDecoder> {
    let (pts_needed, polys, pts, is_complete) = d.to_parts();
    Some(pb::PolynomialDecoder {
        pts_needed,
        polys,
        pts,
        is_complete,
    })
}

fn uc(b: &Braid, f3: &[u8], f4: &[u8], f5: &[u8]) -> Option<pb::Unchunked> {
    Some(pb::Unchunked {
        epoch: b.epoch,
        auth: Some(pb::Authenticator {
            root_key: b.auth.root_key.to_vec(),
            mac_key: b.auth.mac_key.to_vec(),
        }),
        f3: f3.to_vec(),
        f4: f4.to_vec(),
        f5: f5.to_vec(),
    })
}

fn braid_to(b: &Braid) -> pb::V1State {
    let inner = match &b.st {
        St::KeysUnsampled => IS::KeysUnsampled(pb::ChunkedUc {
            uc: uc(b, &[], &[], &[]),
        }),
        St::KeysSampled { ek, dk, hdr_enc } => IS::KeysSampled(pb::ChunkedEnc2 {
            uc: uc(b, &ek[..], &dk[..], &[]),
            enc: enc_to(hdr_enc),
        }),
        St::HeaderSent {
            dk,
            ek_enc,
            ct1_dec,
        } => IS::HeaderSent(pb::ChunkedEncDec {
            uc: uc(b, &dk[..], &[], &[]),
            enc: enc_to(ek_enc),
            dec: dec_to(ct1_dec),
        }),
        St::Ct1Received { dk, ct1, ek_enc } => IS::Ct1Received(pb::ChunkedEnc2 {
            uc: uc(b, &dk[..], &ct1[..], &[]),
            enc: enc_to(ek_enc),
        }),
        St::EkSentCt1Received { dk, ct1, ct2_dec } => IS::EkSentCt1Received(pb::ChunkedDec3 {
            uc: uc(b, &dk[..], &ct1[..], &[]),
            dec: dec_to(ct2_dec),
        }),
        St::NoHeaderReceived { hdr_dec } => IS::NoHeaderReceived(pb::ChunkedDec2 {
            uc: uc(b, &[], &[], &[]),
            dec: dec_to(hdr_dec),
        }),
        St::HeaderReceived { hdr, ek_dec } => IS::HeaderReceived(pb::ChunkedDec2 {
            uc: uc(b, &hdr[..], &[], &[]),
            dec: dec_to(ek_dec),
        }),
        St::Ct1Sampled {
            hdr,
            es,
            ct1,
            ct1_enc,
            ek_dec,
        } => IS::Ct1Sampled(pb::ChunkedEncDec {
            uc: uc(b, &hdr[..], &es[..], &ct1[..]),
            enc: enc_to(ct1_enc),
            dec: dec_to(ek_dec),
        }),
        St::EkReceivedCt1Sampled {
            es,
            ek,
            ct1,
            ct1_enc,
        } => IS::EkReceivedCt1Sampled(pb::ChunkedEnc2 {
            uc: uc(b, &es[..], &ek[..], &ct1[..]),
            enc: enc_to(ct1_enc),
        }),
        St::Ct1Acknowledged {
            hdr,
            es,
            ct1,
            ek_dec,
        } => IS::Ct1Acknowledged(pb::ChunkedDec2 {
            uc: uc(b, &hdr[..], &es[..], &ct1[..]),
            dec: dec_to(ek_dec),
        }),
        St::Ct2Sampled { ct2_enc } => IS::Ct2Sampled(pb::ChunkedEnc2 {
            uc: uc(b, &[], &[], &[]),
            enc: enc_to(ct2_enc),
        }),
    };
    pb::V1State {
        inner_state: Some(inner),
    }
}

fn edir_to(d: &Dir) -> pb::EpochDirection {
    pb::EpochDirection {
        ctr: d.ctr,
        next: d.next.as_ref().map(|k| k.to_vec()).unwrap_or_default(),
        prev: d.prev.to_vec(),
    }
}

fn chain_to(c: &Chain) -> pb::Chain {
    pb::Chain {
        direction: dir_to(c.direction),
        current_epoch: c.current_epoch,
        links: c
            .links
            .iter()
            .map(|l| pb::Epoch {
                send: Some(edir_to(&l.send)),
                recv: Some(edir_to(&l.recv)),
            })
            .collect(),
        next_root: c.next_root.to_vec(),
        send_epoch: c.send_epoch,
        params: Some(params_to(c.max_jump, c.max_ooo)),
    }
}

impl State {
    /// Serializes the state as libsignal's `PqRatchetState` (SessionStructure field 15); a V0
    /// state is empty.
    pub fn to_bytes(&self) -> Vec<u8> {
        let Some(b) = &self.braid else {
            return Vec::new();
        };
        let mut p = pb::PqRatchetState {
            version_negotiation: self.neg.as_ref().map(|n| pb::VersionNegotiation {
                auth_key: n.auth_key.to_vec(),
                direction: dir_to(n.direction),
                min_version: match n.min_version {
                    Version::V0 => 0,
                    Version::V1 => 1,
                },
                chain_params: Some(params_to(n.max_jump, n.max_ooo)),
            }),
            chain: self.chain.as_ref().map(chain_to),
            inner: Some(pb::pq_ratchet_state::Inner::V1(braid_to(b))),
        };
        let out = p.encode_to_vec();
        wipe(&mut p);
        out
    }

    /// Parses a serialized `PqRatchetState` (empty bytes = V0).
    pub fn from_bytes(bytes: &[u8]) -> Result<State> {
        if bytes.is_empty() {
            return Ok(State::v0());
        }
        let mut p =
            pb::PqRatchetState::decode(bytes).map_err(|_| bad_state("SPQR state: bad protobuf"))?;
        let r = state_from(&mut p);
        wipe(&mut p);
        r
    }
}

fn state_from(p: &mut pb::PqRatchetState) -> Result<State> {
    let Some(pb::pq_ratchet_state::Inner::V1(v1)) = p.inner.take() else {
        return Ok(State::v0());
    };
    let neg = match p.version_negotiation.take() {
        None => None,
        Some(mut n) => {
            let (max_jump, max_ooo) = params_from(&n.chain_params);
            Some(Arc::new(Negotiation {
                auth_key: Zeroizing::new(core::mem::take(&mut n.auth_key)),
                direction: dir_from(n.direction)?,
                min_version: match n.min_version {
                    0 => Version::V0,
                    1 => Version::V1,
                    _ => return Err(bad_state("SPQR state: bad min_version")),
                },
                max_jump,
                max_ooo,
            }))
        }
    };
    let chain = p.chain.as_ref().map(chain_from).transpose()?;
    let braid = braid_from(v1)?;
    Ok(State {
        neg,
        chain,
        braid: Some(braid),
    })
}

// ---------- reading ----------

fn edir_from(d: &Option<pb::EpochDirection>) -> Result<Dir> {
    let d = d
        .as_ref()
        .ok_or_else(|| bad_state("SPQR state: missing chain direction"))?;
    let next = match d.next.len() {
        0 => None,
        32 => Some(Zeroizing::new(fixed::<32>(
            &d.next,
            "SPQR state: bad chain key",
        )?)),
        _ => return Err(bad_state("SPQR state: bad chain key")),
    };
    if d.prev.len() % HIST_ENTRY != 0 {
        return Err(bad_state("SPQR state: bad key history"));
    }
    Ok(Dir {
        ctr: d.ctr,
        next,
        prev: Arc::new(Zeroizing::new(d.prev.clone())),
    })
}

fn chain_from(c: &pb::Chain) -> Result<Chain> {
    let (max_jump, max_ooo) = params_from(&c.params);
    let links = c
        .links
        .iter()
        .map(|l| {
            Ok(Link {
                send: edir_from(&l.send)?,
                recv: edir_from(&l.recv)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if links.is_empty() || (links.len() as u64).saturating_sub(1) > c.current_epoch {
        return Err(bad_state("SPQR state: bad chain links"));
    }
    if c.send_epoch > c.current_epoch {
        return Err(bad_state("SPQR state: bad send epoch"));
    }
    Ok(Chain {
        direction: dir_from(c.direction)?,
        current_epoch: c.current_epoch,
        links,
        next_root: Zeroizing::new(fixed::<32>(&c.next_root, "SPQR state: bad root key")?),
        send_epoch: c.send_epoch,
        max_jump,
        max_ooo,
    })
}

fn enc_from(len: usize, e: Option<pb::PolynomialEncoder>) -> Result<Encoder> {
    let e = e.ok_or_else(|| bad_state("SPQR state: missing encoder"))?;
    Encoder::from_parts(len, e.idx, &e.pts, &e.polys)
        .ok_or_else(|| bad_state("SPQR state: bad encoder"))
}

fn dec_from(len: usize, d: Option<pb::PolynomialDecoder>) -> Result<Decoder> {
    let d = d.ok_or_else(|| bad_state("SPQR state: missing decoder"))?;
    Decoder::from_parts(len, d.pts_needed, d.polys, &d.pts, d.is_complete)
        .ok_or_else(|| bad_state("SPQR state: bad decoder"))
}

struct Uc {
    epoch: u64,
    auth: Authenticator,
    f3: Zeroizing<Vec<u8>>,
    f4: Zeroizing<Vec<u8>>,
    f5: Zeroizing<Vec<u8>>,
}

fn uc_from(u: Option<pb::Unchunked>) -> Result<Uc> {
    let u = u.ok_or_else(|| bad_state("SPQR state: missing core state"))?;
    let (f3, f4, f5) = (
        Zeroizing::new(u.f3),
        Zeroizing::new(u.f4),
        Zeroizing::new(u.f5),
    );
    let a = u
        .auth
        .ok_or_else(|| bad_state("SPQR state: missing authenticator"))?;
    let (rk, mk) = (Zeroizing::new(a.root_key), Zeroizing::new(a.mac_key));
    if u.epoch == 0 {
        return Err(bad_state("SPQR state: epoch 0"));
    }
    Ok(Uc {
        epoch: u.epoch,
        auth: Authenticator {
            root_key: fixed(&rk, "SPQR state: bad authenticator")?,
            mac_key: fixed(&mk, "SPQR state: bad authenticator")?,
        },
        f3,
        f4,
        f5,
    })
}

fn dk(v: &[u8]) -> Result<Arc<Zeroizing<[u8; DK_LEN]>>> {
    let k = Zeroizing::new(fixed(v, "SPQR state: bad dk")?);
    if !kem::dk_ok(&k) {
        return Err(bad_state("SPQR state: bad dk"));
    }
    Ok(Arc::new(k))
}
fn es(v: &[u8]) -> Result<Arc<Zeroizing<[u8; ES_LEN]>>> {
    let e = Zeroizing::new(fixed(v, "SPQR state: bad es")?);
    if !kem::es_ok(&e) {
        return Err(bad_state("SPQR state: bad es"));
    }
    Ok(Arc::new(e))
}
fn ek(v: &[u8]) -> Result<Arc<[u8; EK_LEN]>> {
    let k: [u8; EK_LEN] = fixed(v, "SPQR state: bad ek")?;
    if !kem::coeffs_below_q(&k) {
        return Err(bad_state("SPQR state: bad ek"));
    }
    Ok(Arc::new(k))
}
fn ct1(v: &[u8]) -> Result<Arc<[u8; CT1_LEN]>> {
    Ok(Arc::new(fixed(v, "SPQR state: bad ct1")?))
}
fn hdr(v: &[u8]) -> Result<Arc<[u8; HDR_LEN]>> {
    Ok(Arc::new(fixed(v, "SPQR state: bad header")?))
}

fn braid_from(v: pb::V1State) -> Result<Braid> {
    let inner = v
        .inner_state
        .ok_or_else(|| bad_state("SPQR state: missing braid state"))?;
    let (u, st) = match inner {
        IS::KeysUnsampled(s) => (uc_from(s.uc)?, St::KeysUnsampled),
        IS::KeysSampled(s) => {
            let u = uc_from(s.uc)?;
            let st = St::KeysSampled {
                ek: ek(&u.f3)?,
                dk: dk(&u.f4)?,
                hdr_enc: enc_from(HDR_MSG_LEN, s.enc)?,
            };
            (u, st)
        }
        IS::HeaderSent(s) => {
            let u = uc_from(s.uc)?;
            let st = St::HeaderSent {
                dk: dk(&u.f3)?,
                ek_enc: enc_from(EK_LEN, s.enc)?,
                ct1_dec: dec_from(CT1_LEN, s.dec)?,
            };
            (u, st)
        }
        IS::Ct1Received(s) => {
            let u = uc_from(s.uc)?;
            let st = St::Ct1Received {
                dk: dk(&u.f3)?,
                ct1: ct1(&u.f4)?,
                ek_enc: enc_from(EK_LEN, s.enc)?,
            };
            (u, st)
        }
        IS::EkSentCt1Received(s) => {
            let u = uc_from(s.uc)?;
            let st = St::EkSentCt1Received {
                dk: dk(&u.f3)?,
                ct1: ct1(&u.f4)?,
                ct2_dec: dec_from(CT2_MSG_LEN, s.dec)?,
            };
            (u, st)
        }
        IS::NoHeaderReceived(s) => {
            let u = uc_from(s.uc)?;
            let st = St::NoHeaderReceived {
                hdr_dec: dec_from(HDR_MSG_LEN, s.dec)?,
            };
            (u, st)
        }
        IS::HeaderReceived(s) => {
            let u = uc_from(s.uc)?;
            let st = St::HeaderReceived {
                hdr: hdr(&u.f3)?,
                ek_dec: dec_from(EK_LEN, s.dec)?,
            };
            (u, st)
        }
        IS::Ct1Sampled(s) => {
            let u = uc_from(s.uc)?;
            let st = St::Ct1Sampled {
                hdr: hdr(&u.f3)?,
                es: es(&u.f4)?,
                ct1: ct1(&u.f5)?,
                ct1_enc: enc_from(CT1_LEN, s.enc)?,
                ek_dec: dec_from(EK_LEN, s.dec)?,
            };
            (u, st)
        }
        IS::EkReceivedCt1Sampled(s) => {
            let u = uc_from(s.uc)?;
            let st = St::EkReceivedCt1Sampled {
                es: es(&u.f3)?,
                ek: ek(&u.f4)?,
                ct1: ct1(&u.f5)?,
                ct1_enc: enc_from(CT1_LEN, s.enc)?,
            };
            (u, st)
        }
        IS::Ct1Acknowledged(s) => {
            let u = uc_from(s.uc)?;
            let st = St::Ct1Acknowledged {
                hdr: hdr(&u.f3)?,
                es: es(&u.f4)?,
                ct1: ct1(&u.f5)?,
                ek_dec: dec_from(EK_LEN, s.dec)?,
            };
            (u, st)
        }
        IS::Ct2Sampled(s) => {
            let u = uc_from(s.uc)?;
            let st = St::Ct2Sampled {
                ct2_enc: enc_from(CT2_MSG_LEN, s.enc)?,
            };
            (u, st)
        }
    };
    Ok(Braid {
        epoch: u.epoch,
        auth: u.auth,
        st,
    })
}

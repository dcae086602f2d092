//! The ML-KEM Braid: the 11-state machine that moves an ML-KEM-768 key one way and a ciphertext
//! the other, in erasure-coded chunks, and yields an epoch secret per epoch (notes §5).
//!
//! Both [`Braid::send`] and [`Braid::recv`] are pure: they return the next state.

use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::auth::Authenticator;
use super::erasure::{Decoder, Encoder};
use super::errors::{err, EPOCH_OUT_OF_RANGE, ERRONEOUS_DATA, INTERNAL, MAC_VERIFY_FAILED};
use super::kem::{self, CT1_LEN, CT2_LEN, DK_LEN, EK_LEN, ES_LEN, HDR_LEN};
use super::wire::{Message, Payload};
use crate::error::Result;

/// Length of `header ‖ MAC`.
pub const HDR_MSG_LEN: usize = HDR_LEN + 32;
/// Length of `ct2 ‖ MAC`.
pub const CT2_MSG_LEN: usize = CT2_LEN + 32;

/// Shared, immutable decapsulation key.
pub type Dk = Arc<Zeroizing<[u8; DK_LEN]>>;
/// Shared, immutable encapsulation state.
pub type Es = Arc<Zeroizing<[u8; ES_LEN]>>;
/// Shared header.
pub type Hdr = Arc<[u8; HDR_LEN]>;
/// Shared encapsulation key vector.
pub type Ek = Arc<[u8; EK_LEN]>;
/// Shared ct1.
pub type Ct1 = Arc<[u8; CT1_LEN]>;

/// An epoch secret with its epoch.
pub type EpochSecret = (u64, Zeroizing<[u8; 32]>);

/// The 11 states (notes §5.2). Large values are shared (`Arc`) so clones are cheap.
#[derive(Clone)]
#[allow(missing_docs)]
pub enum St {
    /// EK side, nothing generated yet.
    KeysUnsampled,
    /// EK side, sending header chunks.
    KeysSampled { ek: Ek, dk: Dk, hdr_enc: Encoder },
    /// EK side, sending ek chunks, receiving ct1.
    HeaderSent {
        dk: Dk,
        ek_enc: Encoder,
        ct1_dec: Decoder,
    },
    /// EK side, ct1 complete, still sending ek chunks (as EkCt1Ack).
    Ct1Received { dk: Dk, ct1: Ct1, ek_enc: Encoder },
    /// EK side, receiving ct2.
    EkSentCt1Received { dk: Dk, ct1: Ct1, ct2_dec: Decoder },
    /// CT side, receiving the header.
    NoHeaderReceived { hdr_dec: Decoder },
    /// CT side, header complete; the next send encapsulates.
    HeaderReceived { hdr: Hdr, ek_dec: Decoder },
    /// CT side, sending ct1, receiving ek.
    Ct1Sampled {
        hdr: Hdr,
        es: Es,
        ct1: Ct1,
        ct1_enc: Encoder,
        ek_dec: Decoder,
    },
    /// CT side, ek complete, still sending ct1 until acknowledged.
    EkReceivedCt1Sampled {
        es: Es,
        ek: Ek,
        ct1: Ct1,
        ct1_enc: Encoder,
    },
    /// CT side, ct1 acknowledged, receiving ek.
    Ct1Acknowledged {
        hdr: Hdr,
        es: Es,
        ct1: Ct1,
        ek_dec: Decoder,
    },
    /// CT side, sending ct2 chunks.
    Ct2Sampled { ct2_enc: Encoder },
}

impl St {
    /// The state's name (for Debug and tests).
    pub fn name(&self) -> &'static str {
        match self {
            St::KeysUnsampled => "KeysUnsampled",
            St::KeysSampled { .. } => "KeysSampled",
            St::HeaderSent { .. } => "HeaderSent",
            St::Ct1Received { .. } => "Ct1Received",
            St::EkSentCt1Received { .. } => "EkSentCt1Received",
            St::NoHeaderReceived { .. } => "NoHeaderReceived",
            St::HeaderReceived { .. } => "HeaderReceived",
            St::Ct1Sampled { .. } => "Ct1Sampled",
            St::EkReceivedCt1Sampled { .. } => "EkReceivedCt1Sampled",
            St::Ct1Acknowledged { .. } => "Ct1Acknowledged",
            St::Ct2Sampled { .. } => "Ct2Sampled",
        }
    }
}

/// Braid state: epoch, authenticator and the state proper.
#[derive(Clone)]
pub struct Braid {
    /// Epoch being negotiated (≥ 1).
    pub epoch: u64,
    /// Authenticator.
    pub auth: Authenticator,
    /// State.
    pub st: St,
}

fn arr<const N: usize>(v: &[u8]) -> Result<[u8; N]> {
    v.try_into().map_err(|_| err(INTERNAL))
}

impl Braid {
    /// Initial state: `KeysUnsampled(1)` for the initiator (A2B), `NoHeaderReceived(1)` for the
    /// responder.
    pub fn initial(auth_key: &[u8], initiator: bool) -> Result<Self> {
        Ok(Braid {
            epoch: 1,
            auth: Authenticator::new(auth_key, 1)?,
            st: if initiator {
                St::KeysUnsampled
            } else {
                St::NoHeaderReceived {
                    hdr_dec: Decoder::new(HDR_MSG_LEN),
                }
            },
        })
    }

    fn with(&self, st: St) -> Braid {
        Braid {
            epoch: self.epoch,
            auth: self.auth.clone(),
            st,
        }
    }

    /// One send: `(next state, payload, epoch secret)`. The payload goes out tagged with
    /// `self.epoch`. Randomness: 64 bytes in KeysUnsampled, 32 bytes in HeaderReceived.
    pub fn send<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
    ) -> Result<(Braid, Payload, Option<EpochSecret>)> {
        let e = self.epoch;
        Ok(match &self.st {
            St::KeysUnsampled => {
                let mut seed = Zeroizing::new([0u8; 64]);
                rng.fill_bytes(&mut seed[..]);
                let kp = kem::generate(&seed);
                let mac = self.auth.mac_hdr(e, &kp.hdr);
                let mut data = [0u8; HDR_MSG_LEN];
                data[..HDR_LEN].copy_from_slice(&kp.hdr);
                data[HDR_LEN..].copy_from_slice(&mac);
                let mut hdr_enc = Encoder::new(&data);
                let c = hdr_enc.next_chunk();
                let st = St::KeysSampled {
                    ek: Arc::new(kp.ek),
                    dk: Arc::new(kp.dk),
                    hdr_enc,
                };
                (self.with(st), Payload::Hdr(c), None)
            }
            St::KeysSampled { ek, dk, hdr_enc } => {
                let mut hdr_enc = hdr_enc.clone();
                let c = hdr_enc.next_chunk();
                let st = St::KeysSampled {
                    ek: ek.clone(),
                    dk: dk.clone(),
                    hdr_enc,
                };
                (self.with(st), Payload::Hdr(c), None)
            }
            St::HeaderSent {
                dk,
                ek_enc,
                ct1_dec,
            } => {
                let mut ek_enc = ek_enc.clone();
                let c = ek_enc.next_chunk();
                let st = St::HeaderSent {
                    dk: dk.clone(),
                    ek_enc,
                    ct1_dec: ct1_dec.clone(),
                };
                (self.with(st), Payload::Ek(c), None)
            }
            St::Ct1Received { dk, ct1, ek_enc } => {
                let mut ek_enc = ek_enc.clone();
                let c = ek_enc.next_chunk();
                let st = St::Ct1Received {
                    dk: dk.clone(),
                    ct1: ct1.clone(),
                    ek_enc,
                };
                (self.with(st), Payload::EkCt1Ack(c), None)
            }
            St::EkSentCt1Received { .. } => (self.clone(), Payload::Ct1Ack, None),
            St::NoHeaderReceived { .. } | St::Ct1Acknowledged { .. } => {
                (self.clone(), Payload::None, None)
            }
            St::HeaderReceived { hdr, ek_dec } => {
                let mut m = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(&mut m[..]);
                let (ct1, es, ss) = kem::encaps1(hdr, &m)?;
                let secret = kem::epoch_secret(&ss[..], e)?;
                let mut auth = self.auth.clone();
                auth.update(e, &secret[..])?;
                let mut ct1_enc = Encoder::new(&ct1);
                let c = ct1_enc.next_chunk();
                let st = St::Ct1Sampled {
                    hdr: hdr.clone(),
                    es: Arc::new(es),
                    ct1: Arc::new(ct1),
                    ct1_enc,
                    ek_dec: ek_dec.clone(),
                };
                (
                    Braid { epoch: e, auth, st },
                    Payload::Ct1(c),
                    Some((e, secret)),
                )
            }
            St::Ct1Sampled {
                hdr,
                es,
                ct1,
                ct1_enc,
                ek_dec,
            } => {
                let mut ct1_enc = ct1_enc.clone();
                let c = ct1_enc.next_chunk();
                let st = St::Ct1Sampled {
                    hdr: hdr.clone(),
                    es: es.clone(),
                    ct1: ct1.clone(),
                    ct1_enc,
                    ek_dec: ek_dec.clone(),
                };
                (self.with(st), Payload::Ct1(c), None)
            }
            St::EkReceivedCt1Sampled {
                es,
                ek,
                ct1,
                ct1_enc,
            } => {
                let mut ct1_enc = ct1_enc.clone();
                let c = ct1_enc.next_chunk();
                let st = St::EkReceivedCt1Sampled {
                    es: es.clone(),
                    ek: ek.clone(),
                    ct1: ct1.clone(),
                    ct1_enc,
                };
                (self.with(st), Payload::Ct1(c), None)
            }
            St::Ct2Sampled { ct2_enc } => {
                let mut ct2_enc = ct2_enc.clone();
                let c = ct2_enc.next_chunk();
                (self.with(St::Ct2Sampled { ct2_enc }), Payload::Ct2(c), None)
            }
        })
    }

    /// Computes ct2 and its MAC and starts sending them.
    fn ct2_sampled(&self, es: &Es, ek: &[u8; EK_LEN], ct1: &Ct1) -> Braid {
        let ct2 = kem::encaps2(es, ek);
        let mac = self.auth.mac_ct(self.epoch, &ct1[..], &ct2);
        let mut data = [0u8; CT2_MSG_LEN];
        data[..CT2_LEN].copy_from_slice(&ct2);
        data[CT2_LEN..].copy_from_slice(&mac);
        self.with(St::Ct2Sampled {
            ct2_enc: Encoder::new(&data),
        })
    }

    /// One receive: `(next state, epoch secret)`.
    pub fn recv(&self, msg: &Message) -> Result<(Braid, Option<EpochSecret>)> {
        let e = self.epoch;
        if msg.epoch > e {
            if let St::Ct2Sampled { .. } = self.st {
                if Some(msg.epoch) == e.checked_add(1) {
                    let next = Braid {
                        epoch: msg.epoch,
                        auth: self.auth.clone(),
                        st: St::KeysUnsampled,
                    };
                    return Ok((next, None));
                }
            }
            return Err(err(EPOCH_OUT_OF_RANGE));
        }
        if msg.epoch < e {
            return Ok((self.clone(), None));
        }
        let unchanged = || Ok((self.clone(), None));
        match (&self.st, &msg.payload) {
            (St::KeysSampled { ek, dk, .. }, Payload::Ct1((ci, data))) => {
                let mut ct1_dec = Decoder::new(CT1_LEN);
                ct1_dec.add(*ci, data);
                let ek_enc = Encoder::new(&ek[..]);
                Ok((
                    self.with(St::HeaderSent {
                        dk: dk.clone(),
                        ek_enc,
                        ct1_dec,
                    }),
                    None,
                ))
            }
            (
                St::HeaderSent {
                    dk,
                    ek_enc,
                    ct1_dec,
                },
                Payload::Ct1((ci, data)),
            ) => {
                let mut ct1_dec = ct1_dec.clone();
                ct1_dec.add(*ci, data);
                let st = match ct1_dec.decoded() {
                    Some(ct1) => St::Ct1Received {
                        dk: dk.clone(),
                        ct1: Arc::new(arr(&ct1)?),
                        ek_enc: ek_enc.clone(),
                    },
                    None => St::HeaderSent {
                        dk: dk.clone(),
                        ek_enc: ek_enc.clone(),
                        ct1_dec,
                    },
                };
                Ok((self.with(st), None))
            }
            (St::Ct1Received { dk, ct1, .. }, Payload::Ct2((ci, data))) => {
                let mut ct2_dec = Decoder::new(CT2_MSG_LEN);
                ct2_dec.add(*ci, data);
                let st = St::EkSentCt1Received {
                    dk: dk.clone(),
                    ct1: ct1.clone(),
                    ct2_dec,
                };
                Ok((self.with(st), None))
            }
            (St::EkSentCt1Received { dk, ct1, ct2_dec }, Payload::Ct2((ci, data))) => {
                let mut ct2_dec = ct2_dec.clone();
                ct2_dec.add(*ci, data);
                match ct2_dec.decoded() {
                    None => {
                        let st = St::EkSentCt1Received {
                            dk: dk.clone(),
                            ct1: ct1.clone(),
                            ct2_dec,
                        };
                        Ok((self.with(st), None))
                    }
                    Some(v) => {
                        let ct2: [u8; CT2_LEN] = arr(v.get(..CT2_LEN).unwrap_or(&[]))?;
                        let mac = v.get(CT2_LEN..).unwrap_or(&[]);
                        let ss = kem::decaps(dk, ct1, &ct2);
                        let secret = kem::epoch_secret(&ss[..], e)?;
                        let mut auth = self.auth.clone();
                        auth.update(e, &secret[..])?;
                        if !auth.verify_ct(e, &ct1[..], &ct2, mac) {
                            return Err(err(MAC_VERIFY_FAILED));
                        }
                        let next = Braid {
                            epoch: e.checked_add(1).ok_or_else(|| err(INTERNAL))?,
                            auth,
                            st: St::NoHeaderReceived {
                                hdr_dec: Decoder::new(HDR_MSG_LEN),
                            },
                        };
                        Ok((next, Some((e, secret))))
                    }
                }
            }
            (St::NoHeaderReceived { hdr_dec }, Payload::Hdr((ci, data))) => {
                let mut hdr_dec = hdr_dec.clone();
                hdr_dec.add(*ci, data);
                match hdr_dec.decoded() {
                    None => Ok((self.with(St::NoHeaderReceived { hdr_dec }), None)),
                    Some(v) => {
                        let hdr: [u8; HDR_LEN] = arr(v.get(..HDR_LEN).unwrap_or(&[]))?;
                        let mac = v.get(HDR_LEN..).unwrap_or(&[]);
                        if !self.auth.verify_hdr(e, &hdr, mac) {
                            return Err(err(MAC_VERIFY_FAILED));
                        }
                        let st = St::HeaderReceived {
                            hdr: Arc::new(hdr),
                            ek_dec: Decoder::new(EK_LEN),
                        };
                        Ok((self.with(st), None))
                    }
                }
            }
            (
                St::Ct1Sampled {
                    hdr,
                    es,
                    ct1,
                    ct1_enc,
                    ek_dec,
                },
                Payload::Ek((ci, data)) | Payload::EkCt1Ack((ci, data)),
            ) => {
                let ack = matches!(msg.payload, Payload::EkCt1Ack(_));
                let mut ek_dec = ek_dec.clone();
                ek_dec.add(*ci, data);
                match ek_dec.decoded() {
                    Some(v) => {
                        let ek: [u8; EK_LEN] = arr(&v)?;
                        if !kem::validate(hdr, &ek) {
                            return Err(err(ERRONEOUS_DATA));
                        }
                        if ack {
                            Ok((self.ct2_sampled(es, &ek, ct1), None))
                        } else {
                            let st = St::EkReceivedCt1Sampled {
                                es: es.clone(),
                                ek: Arc::new(ek),
                                ct1: ct1.clone(),
                                ct1_enc: ct1_enc.clone(),
                            };
                            Ok((self.with(st), None))
                        }
                    }
                    None => {
                        let st = if ack {
                            St::Ct1Acknowledged {
                                hdr: hdr.clone(),
                                es: es.clone(),
                                ct1: ct1.clone(),
                                ek_dec,
                            }
                        } else {
                            St::Ct1Sampled {
                                hdr: hdr.clone(),
                                es: es.clone(),
                                ct1: ct1.clone(),
                                ct1_enc: ct1_enc.clone(),
                                ek_dec,
                            }
                        };
                        Ok((self.with(st), None))
                    }
                }
            }
            (
                St::EkReceivedCt1Sampled { es, ek, ct1, .. },
                Payload::Ct1Ack | Payload::EkCt1Ack(_),
            ) => Ok((self.ct2_sampled(es, ek, ct1), None)),
            (
                St::Ct1Acknowledged {
                    hdr,
                    es,
                    ct1,
                    ek_dec,
                },
                Payload::Ek((ci, data)) | Payload::EkCt1Ack((ci, data)),
            ) => {
                let mut ek_dec = ek_dec.clone();
                ek_dec.add(*ci, data);
                match ek_dec.decoded() {
                    Some(v) => {
                        let ek: [u8; EK_LEN] = arr(&v)?;
                        if !kem::validate(hdr, &ek) {
                            return Err(err(ERRONEOUS_DATA));
                        }
                        Ok((self.ct2_sampled(es, &ek, ct1), None))
                    }
                    None => {
                        let st = St::Ct1Acknowledged {
                            hdr: hdr.clone(),
                            es: es.clone(),
                            ct1: ct1.clone(),
                            ek_dec,
                        };
                        Ok((self.with(st), None))
                    }
                }
            }
            _ => unchanged(),
        }
    }
}

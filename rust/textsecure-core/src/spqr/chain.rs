//! The symmetric chain (notes §9): a root key and per-epoch send/receive hash chains; every
//! message gets the next key of the sender's chain for epoch `msg.epoch - 1`.

use std::sync::Arc;

use zeroize::{Zeroize, Zeroizing};

use super::errors::{
    err, EPOCH_OUT_OF_RANGE, INTERNAL, KEY_ALREADY_REQUESTED, KEY_TRIMMED, SEND_KEY_EPOCH_DECREASED,
};
use super::kdf::{hkdf, hkdf_z32};
use super::Direction;
use crate::error::Result;

const START: &[u8] = b"Signal PQ Ratchet V1 Chain  Start";
const ADD_EPOCH: &[u8] = b"Signal PQ Ratchet V1 Chain Add Epoch";
const NEXT: &[u8] = b"Signal PQ Ratchet V1 Chain Next";

/// Default `max_jump`.
pub const DEFAULT_MAX_JUMP: u32 = 25_000;
/// Default `max_ooo_keys`.
pub const DEFAULT_MAX_OOO: u32 = 2_000;
/// The largest forward jump we ever perform, whatever a (possibly imported or tampered)
/// stored state says: libsignal writes `u32::MAX` for sessions with oneself, and a stored row
/// is untrusted input, so receiving must not step a chain billions of times. The value is the
/// Double Ratchet's own limit. The stored parameter itself is kept (records re-encode as read).
pub const MAX_ACCEPTED_JUMP: u32 = 25_000;
/// Likewise for the out-of-order window.
pub const MAX_ACCEPTED_OOO: u32 = 2_000;
/// Epochs kept before the send epoch.
const EPOCHS_KEPT: usize = 1;
/// Bytes per key-history entry: `BE32(index) ‖ key`.
pub const HIST_ENTRY: usize = 36;

/// One direction of one epoch.
#[derive(Clone)]
pub struct Dir {
    /// Counter of the last key produced.
    pub ctr: u32,
    /// Next chain key; `None` = erased.
    pub next: Option<Zeroizing<[u8; 32]>>,
    /// Key history: 36-byte entries `BE32(index) ‖ key` (shared until modified).
    pub prev: Arc<Zeroizing<Vec<u8>>>,
}

impl Dir {
    fn new(key: &[u8]) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(key.get(..32).unwrap_or(&[0; 32]));
        Dir {
            ctr: 0,
            next: Some(k),
            prev: Arc::new(Zeroizing::new(Vec::new())),
        }
    }

    /// One chain step: returns `(ctr, message key)`.
    fn step(&mut self) -> Result<(u32, Zeroizing<[u8; 32]>)> {
        let ctr = self.ctr.checked_add(1).ok_or_else(|| err(INTERNAL))?;
        let next = self.next.as_mut().ok_or_else(|| err(INTERNAL))?;
        let mut g = Zeroizing::new([0u8; 64]);
        hkdf_z32(&next[..], &[&ctr.to_be_bytes(), NEXT], &mut g[..])?;
        next.copy_from_slice(&g[..32]);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&g[32..]);
        self.ctr = ctr;
        Ok((ctr, key))
    }
}

/// Chain of one epoch.
#[derive(Clone)]
pub struct Link {
    /// Our sending chain.
    pub send: Dir,
    /// Our receiving chain.
    pub recv: Dir,
}

/// The chain state.
#[derive(Clone)]
pub struct Chain {
    /// Our direction.
    pub direction: Direction,
    /// Newest epoch with a link.
    pub current_epoch: u64,
    /// Links, oldest first, ending at `current_epoch`.
    pub links: Vec<Link>,
    /// Root for the next epoch.
    pub next_root: Zeroizing<[u8; 32]>,
    /// Epoch we currently send in.
    pub send_epoch: u64,
    /// `max_jump` (actual value, not 0).
    pub max_jump: u32,
    /// `max_ooo_keys` (actual value, not 0).
    pub max_ooo: u32,
}

fn link_from(direction: Direction, g: &[u8]) -> Link {
    let a2b = g.get(32..64).unwrap_or(&[]);
    let b2a = g.get(64..96).unwrap_or(&[]);
    match direction {
        Direction::A2B => Link {
            send: Dir::new(a2b),
            recv: Dir::new(b2a),
        },
        Direction::B2A => Link {
            send: Dir::new(b2a),
            recv: Dir::new(a2b),
        },
    }
}

impl Chain {
    /// `Chain::new(auth_key, direction)` (epoch 0).
    pub fn new(auth_key: &[u8], direction: Direction, max_jump: u32, max_ooo: u32) -> Result<Self> {
        let mut g = Zeroizing::new([0u8; 96]);
        hkdf_z32(auth_key, &[START], &mut g[..])?;
        let mut next_root = Zeroizing::new([0u8; 32]);
        next_root.copy_from_slice(&g[..32]);
        Ok(Chain {
            direction,
            current_epoch: 0,
            links: vec![link_from(direction, &g[..])],
            next_root,
            send_epoch: 0,
            max_jump: if max_jump == 0 {
                DEFAULT_MAX_JUMP
            } else {
                max_jump
            },
            max_ooo: if max_ooo == 0 {
                DEFAULT_MAX_OOO
            } else {
                max_ooo
            },
        })
    }

    /// Adds the secret of epoch `current_epoch + 1`.
    pub fn add_epoch(&mut self, epoch: u64, secret: &[u8; 32]) -> Result<()> {
        if Some(epoch) != self.current_epoch.checked_add(1) {
            return Err(err(EPOCH_OUT_OF_RANGE));
        }
        let mut g = Zeroizing::new([0u8; 96]);
        hkdf(&self.next_root[..], secret, &[ADD_EPOCH], &mut g[..])?;
        self.next_root.copy_from_slice(&g[..32]);
        self.links.push(link_from(self.direction, &g[..]));
        self.current_epoch = epoch;
        Ok(())
    }

    /// Index into `links` of `epoch`, if kept.
    fn pos(&self, epoch: u64) -> Option<usize> {
        if epoch > self.current_epoch {
            return None;
        }
        let back = usize::try_from(self.current_epoch - epoch).ok()?;
        let last = self.links.len().checked_sub(1)?;
        last.checked_sub(back)
    }

    /// Next send key for chain epoch `epoch`: `(index, key)`.
    pub fn send_key(&mut self, epoch: u64) -> Result<(u32, Zeroizing<[u8; 32]>)> {
        if epoch < self.send_epoch {
            return Err(err(SEND_KEY_EPOCH_DECREASED));
        }
        let mut pos = self.pos(epoch).ok_or_else(|| err(EPOCH_OUT_OF_RANGE))?;
        if epoch != self.send_epoch {
            self.send_epoch = epoch;
            if pos > EPOCHS_KEPT {
                let drop = pos - EPOCHS_KEPT;
                self.links.drain(..drop);
                pos = EPOCHS_KEPT;
            }
            for l in self.links.iter_mut().take(pos) {
                l.send.next = None;
            }
        }
        let link = self
            .links
            .get_mut(pos)
            .ok_or_else(|| err(EPOCH_OUT_OF_RANGE))?;
        link.send.step()
    }

    /// Receive key of chain epoch `epoch` at index `at`.
    pub fn recv_key(&mut self, epoch: u64, at: u32) -> Result<Zeroizing<[u8; 32]>> {
        let pos = self.pos(epoch).ok_or_else(|| err(EPOCH_OUT_OF_RANGE))?;
        let max_jump = self.max_jump.min(MAX_ACCEPTED_JUMP);
        let max_ooo = u64::from(self.max_ooo.min(MAX_ACCEPTED_OOO));
        let dir = &mut self
            .links
            .get_mut(pos)
            .ok_or_else(|| err(EPOCH_OUT_OF_RANGE))?
            .recv;
        let ctr = dir.ctr;
        if at == ctr {
            return Err(err(KEY_ALREADY_REQUESTED));
        }
        if at < ctr {
            if u64::from(at) + max_ooo < u64::from(ctr) {
                return Err(err(KEY_TRIMMED));
            }
            let found = dir
                .prev
                .chunks_exact(HIST_ENTRY)
                .position(|e| e.get(..4) == Some(&at.to_be_bytes()[..]));
            let i = found.ok_or_else(|| err(KEY_ALREADY_REQUESTED))?;
            let hist = Arc::make_mut(&mut dir.prev);
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(
                hist.get(i * HIST_ENTRY + 4..(i + 1) * HIST_ENTRY)
                    .ok_or_else(|| err(INTERNAL))?,
            );
            swap_remove(hist, i);
            return Ok(key);
        }
        if at - ctr > max_jump {
            // Typed like the Double Ratchet's own limit, so callers see one error class.
            return Err(crate::error::Error::MessageGapTooLarge {
                jump: at - ctr,
                limit: max_jump,
            });
        }
        if u64::from(at) > u64::from(ctr) + max_ooo && !dir.prev.is_empty() {
            let hist = Arc::make_mut(&mut dir.prev);
            hist.zeroize();
            hist.clear();
        }
        while dir.ctr.checked_add(1).is_some_and(|c| c < at) {
            let (i, k) = dir.step()?;
            if u64::from(i) + max_ooo >= u64::from(at) {
                let hist = Arc::make_mut(&mut dir.prev);
                hist.extend_from_slice(&i.to_be_bytes());
                hist.extend_from_slice(&k[..]);
            }
        }
        gc(dir, max_ooo);
        let (_, key) = dir.step()?;
        Ok(key)
    }
}

fn swap_remove(hist: &mut Vec<u8>, i: usize) {
    let n = hist.len() / HIST_ENTRY;
    if i >= n {
        return;
    }
    let last = n - 1;
    if i != last {
        let (head, tail) = hist.split_at_mut(last * HIST_ENTRY);
        if let (Some(dst), Some(src)) = (
            head.get_mut(i * HIST_ENTRY..(i + 1) * HIST_ENTRY),
            tail.get(..HIST_ENTRY),
        ) {
            dst.copy_from_slice(src);
        }
    }
    if let Some(t) = hist.get_mut(last * HIST_ENTRY..) {
        t.zeroize();
    }
    hist.truncate(last * HIST_ENTRY);
}

fn gc(dir: &mut Dir, max_ooo: u64) {
    let trim_size = max_ooo * 11 / 10 + 1;
    let n = (dir.prev.len() / HIST_ENTRY) as u64;
    if n < trim_size {
        return;
    }
    let bound = u64::from(dir.ctr).saturating_sub(max_ooo);
    let hist = Arc::make_mut(&mut dir.prev);
    let mut i = 0;
    while (i + 1) * HIST_ENTRY <= hist.len() {
        let idx = hist
            .get(i * HIST_ENTRY..i * HIST_ENTRY + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .unwrap_or(0);
        if u64::from(idx) < bound {
            swap_remove(hist, i);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn stored_max_jump_is_capped() {
        // A state that claims u32::MAX (as libsignal writes for sessions with oneself, or a
        // tampered row) still refuses a jump beyond the accepted limit, at once.
        let mut c = Chain::new(&[7u8; 32], Direction::B2A, u32::MAX, u32::MAX).unwrap();
        assert_eq!(c.max_jump, u32::MAX);
        let e = c.recv_key(0, MAX_ACCEPTED_JUMP + 5).unwrap_err();
        assert!(matches!(
            e,
            crate::error::Error::MessageGapTooLarge {
                limit: MAX_ACCEPTED_JUMP,
                ..
            }
        ));
        assert!(c.recv_key(0, 10).is_ok());
    }
}

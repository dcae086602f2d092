//! Running the passes of a one-shot encryption or decryption on one thread or two.
//!
//! Each format needs several passes over the data (AES-CBC, HMAC-SHA256, one or two
//! SHA-256). On one thread they are interleaved piece by piece so every piece is still in cache
//! for the next pass. On two threads the calling thread runs the "front" passes and a scoped
//! helper thread the "back" passes; CBC encryption and the hashes are each inherently serial,
//! but different passes run at the same time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::OnceLock;

/// Piece size of the one-thread interleaving: a piece of input and of output stay in L2.
pub const PIECE: usize = 64 * 1024;
/// Piece size handed between the two threads (fewer hand-offs, still cache resident).
pub const PIECE_2T: usize = 256 * 1024;
/// Pieces in flight between the two threads.
const DEPTH: usize = 8;
/// Below this many bytes a second thread costs more than it saves.
pub const PARALLEL_MIN: usize = 4 << 20;

/// How many threads a one-shot call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// Everything on the calling thread.
    One,
    /// The calling thread and one helper.
    Two,
    /// Two for blobs of at least [`PARALLEL_MIN`] bytes on a machine with more than one CPU,
    /// else one.
    Auto,
}

impl Threads {
    /// From a count: `None` is [`Threads::Auto`], 1 is one thread, anything above is two.
    pub fn from_count(n: Option<usize>) -> Self {
        match n {
            None => Self::Auto,
            Some(0 | 1) => Self::One,
            Some(_) => Self::Two,
        }
    }

    /// Whether a job of `len` bytes runs on two threads.
    pub fn two(self, len: usize) -> bool {
        match self {
            Self::One => false,
            Self::Two => true,
            Self::Auto => len >= PARALLEL_MIN && cpus() > 1,
        }
    }

    /// The piece size for a job of `len` bytes.
    pub fn piece(self, len: usize) -> usize {
        if self.two(len) {
            PIECE_2T
        } else {
            PIECE
        }
    }
}

fn cpus() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match h.join() {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// Output pieces: `front` fills each piece (in order), then `back` reads it. With `two`, `back`
/// runs on a helper thread, receiving each piece once `front` is done with it.
pub(crate) fn handoff<'a>(
    two: bool,
    pieces: impl Iterator<Item = &'a mut [u8]>,
    mut front: impl FnMut(&mut [u8]),
    mut back: impl FnMut(&[u8]) + Send,
) {
    if !two {
        for p in pieces {
            front(p);
            back(p);
        }
        return;
    }
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<&'a [u8]>(DEPTH);
        let h = s.spawn(move || {
            for p in rx {
                back(p);
            }
        });
        for p in pieces {
            front(p);
            // The helper only stops early by panicking, which `join` passes on.
            if tx.send(p).is_err() {
                break;
            }
        }
        drop(tx);
        join(h);
    });
}

/// `count` independent pieces: `front(i)` and `back(i)` for every `i` in order. With `two`,
/// `back` runs on a helper thread concurrently with `front`. `front` returning `false` stops
/// both early.
pub(crate) fn split(
    two: bool,
    count: usize,
    mut front: impl FnMut(usize) -> bool,
    mut back: impl FnMut(usize) + Send,
) {
    if !two {
        for i in 0..count {
            back(i);
            if !front(i) {
                return;
            }
        }
        return;
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let stop = &stop;
        let h = s.spawn(move || {
            for i in 0..count {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                back(i);
            }
        });
        for i in 0..count {
            if !front(i) {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        join(h);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_sees_every_piece_after_front() {
        for two in [false, true] {
            let mut buf = vec![0u8; 1000];
            let mut n = 0u8;
            let mut seen = Vec::new();
            handoff(
                two,
                buf.chunks_mut(64),
                |p| {
                    n += 1;
                    p.fill(n);
                },
                |p| seen.extend_from_slice(p),
            );
            let want: Vec<u8> = (0..1000).map(|i| (i / 64 + 1) as u8).collect();
            assert_eq!(seen, want);
            assert_eq!(buf, want);
        }
    }

    #[test]
    fn split_runs_both_and_stops() {
        for two in [false, true] {
            let mut f = Vec::new();
            let mut b = Vec::new();
            split(
                two,
                10,
                |i| {
                    f.push(i);
                    true
                },
                |i| b.push(i),
            );
            assert_eq!(f, (0..10).collect::<Vec<_>>());
            assert_eq!(b, (0..10).collect::<Vec<_>>());
            let mut f = Vec::new();
            split(
                two,
                10,
                |i| {
                    f.push(i);
                    i < 3
                },
                |_| {},
            );
            assert_eq!(f, vec![0, 1, 2, 3]);
        }
        assert!(!Threads::One.two(1 << 30));
        assert!(Threads::Two.two(0));
        assert!(!Threads::Auto.two(PARALLEL_MIN - 1));
        assert_eq!(Threads::from_count(Some(1)), Threads::One);
        assert_eq!(Threads::from_count(Some(2)), Threads::Two);
        assert_eq!(Threads::from_count(None), Threads::Auto);
    }
}

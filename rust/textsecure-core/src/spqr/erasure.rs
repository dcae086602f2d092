//! The systematic Reed–Solomon erasure code over GF(2^16) that cuts a value into 32-byte chunks
//! (notes §7).
//!
//! A value of `L` bytes (a multiple of 32) is read as `L/2` big-endian 16-bit field elements; the
//! element `16k + j` is the value at `x = k` of polynomial `j` (16 polynomials, one per 2-byte
//! column, each of degree `< n = L/32`). Chunk `c` is the 16 polynomials evaluated at `x = c`:
//! chunks `0..n` are the data itself, later ones are parity. Any `n` distinct chunks recover the
//! value.

use std::sync::Arc;

use super::gf::{tables, Tables};

/// Chunk size in bytes.
pub const CHUNK: usize = 32;
/// Number of polynomials (2-byte columns of a chunk).
pub const COLS: usize = 16;

#[inline]
fn be16(b: &[u8], i: usize) -> u16 {
    match (b.get(i), b.get(i + 1)) {
        (Some(&h), Some(&l)) => u16::from_be_bytes([h, l]),
        _ => 0,
    }
}

/// `M(X) = prod_{m in xs} (X + m)`, coefficients constant term first (degree `xs.len()`).
fn master(t: &Tables, xs: &[u16]) -> Vec<u16> {
    let mut m = vec![0u16; xs.len() + 1];
    if let Some(f) = m.first_mut() {
        *f = 1;
    }
    for (deg, &x) in xs.iter().enumerate() {
        // multiply by (X + x): new[i] = old[i-1] + x * old[i]
        for i in (0..=deg + 1).rev() {
            let hi = if i > 0 {
                m.get(i - 1).copied().unwrap_or(0)
            } else {
                0
            };
            let lo = m.get(i).copied().unwrap_or(0);
            if let Some(s) = m.get_mut(i) {
                *s = hi ^ t.mul(x, lo);
            }
        }
    }
    m
}

/// Horner evaluation of `coeffs` (constant term first) at `x`.
#[inline]
fn eval(t: &Tables, coeffs: &[u16], x: u16) -> u16 {
    let mut acc = 0u16;
    if x == 0 {
        return coeffs.first().copied().unwrap_or(0);
    }
    let lx = t.log_of(x);
    for &c in coeffs.iter().rev() {
        acc = t.mul_log(acc, lx) ^ c;
    }
    acc
}

/// Coefficients (constant first, `n` per column) of the 16 polynomials through the data points
/// `x = 0..n`. Output layout: column `j` at `[j*n .. (j+1)*n]`.
fn interpolate_data(data: &[u8]) -> Vec<u16> {
    let t = tables();
    let n = data.len() / CHUNK;
    let xs: Vec<u16> = (0..n).map(|k| k as u16).collect();
    let m = master(t, &xs);
    let mut out = vec![0u16; COLS * n];
    let mut q = vec![0u16; n];
    for (k, &xk) in xs.iter().enumerate() {
        // q = M / (X + xk)
        let mut carry = m.get(n).copied().unwrap_or(0);
        for i in (0..n).rev() {
            if let Some(s) = q.get_mut(i) {
                *s = carry;
            }
            carry = m.get(i).copied().unwrap_or(0) ^ t.mul(xk, carry);
        }
        let denom = eval(t, &q, xk);
        let dinv = t.inv(denom);
        for j in 0..COLS {
            let y = be16(data, k * CHUNK + 2 * j);
            let s = t.mul(y, dinv);
            if s == 0 {
                continue;
            }
            let ls = t.log_of(s);
            if let Some(col) = out.get_mut(j * n..(j + 1) * n) {
                for (o, &qc) in col.iter_mut().zip(q.iter()) {
                    *o ^= t.mul_log(qc, ls);
                }
            }
        }
    }
    out
}

/// Encoder of one value: emits chunk 0, 1, 2, … one per call.
#[derive(Clone)]
pub struct Encoder {
    data: Arc<[u8]>,
    idx: u32,
    /// Column polynomials, computed (and then kept, as libsignal does) once a parity chunk is
    /// emitted.
    polys: Option<Arc<[u16]>>,
}

impl Encoder {
    /// A fresh encoder over `data` (length a non-zero multiple of 32).
    pub fn new(data: &[u8]) -> Self {
        Encoder {
            data: Arc::from(data),
            idx: 0,
            polys: None,
        }
    }

    /// Number of data chunks `n`.
    pub fn n(&self) -> usize {
        self.data.len() / CHUNK
    }

    /// The encoded value.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Index of the next chunk to emit.
    pub fn idx(&self) -> u32 {
        self.idx
    }

    /// Whether the encoder is in polynomial (coefficient) form.
    pub fn in_poly_form(&self) -> bool {
        self.polys.is_some()
    }

    /// The chunk at index `c` (data or parity), without changing the encoder.
    pub fn chunk_at(&self, c: u16) -> [u8; CHUNK] {
        let n = self.n();
        let mut out = [0u8; CHUNK];
        if usize::from(c) < n {
            let s = usize::from(c) * CHUNK;
            if let Some(src) = self.data.get(s..s + CHUNK) {
                out.copy_from_slice(src);
            }
            return out;
        }
        let t = tables();
        let owned;
        let polys: &[u16] = match &self.polys {
            Some(p) => p,
            None => {
                owned = interpolate_data(&self.data);
                &owned
            }
        };
        for j in 0..COLS {
            let v = polys
                .get(j * n..(j + 1) * n)
                .map(|col| eval(t, col, c))
                .unwrap_or(0);
            if let Some(o) = out.get_mut(2 * j..2 * j + 2) {
                o.copy_from_slice(&v.to_be_bytes());
            }
        }
        out
    }

    /// Emits the next chunk: `(chunk index, data)`.
    pub fn next_chunk(&mut self) -> (u16, [u8; CHUNK]) {
        let c = (self.idx & 0xFFFF) as u16;
        if usize::from(c) >= self.n() && self.polys.is_none() {
            self.polys = Some(Arc::from(interpolate_data(&self.data)));
        }
        let chunk = self.chunk_at(c);
        self.idx = self.idx.wrapping_add(1);
        (c, chunk)
    }

    /// Serialized form (protobuf `PolynomialEncoder` fields): `(idx, pts, polys)`.
    pub fn to_parts(&self) -> (u32, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let n = self.n();
        match &self.polys {
            Some(p) => {
                let polys = (0..COLS)
                    .map(|j| {
                        p.get(j * n..(j + 1) * n)
                            .unwrap_or(&[])
                            .iter()
                            .flat_map(|v| v.to_be_bytes())
                            .collect()
                    })
                    .collect();
                (self.idx, Vec::new(), polys)
            }
            None => {
                let pts = (0..COLS)
                    .map(|j| {
                        let mut col = Vec::with_capacity(2 * n);
                        for k in 0..n {
                            let s = k * CHUNK + 2 * j;
                            col.extend_from_slice(self.data.get(s..s + 2).unwrap_or(&[0, 0]));
                        }
                        col
                    })
                    .collect();
                (self.idx, pts, Vec::new())
            }
        }
    }

    /// Rebuilds an encoder of a `len`-byte value from its serialized form; `None` when the form
    /// does not describe such a value.
    pub fn from_parts(len: usize, idx: u32, pts: &[Vec<u8>], polys: &[Vec<u8>]) -> Option<Self> {
        if len == 0 || len % CHUNK != 0 {
            return None;
        }
        let n = len / CHUNK;
        let col_ok = |cols: &[Vec<u8>]| cols.len() == COLS && cols.iter().all(|c| c.len() == 2 * n);
        if polys.is_empty() && col_ok(pts) {
            let mut data = vec![0u8; len];
            for (j, col) in pts.iter().enumerate() {
                for k in 0..n {
                    let d = k * CHUNK + 2 * j;
                    if let (Some(dst), Some(src)) =
                        (data.get_mut(d..d + 2), col.get(2 * k..2 * k + 2))
                    {
                        dst.copy_from_slice(src);
                    }
                }
            }
            Some(Encoder {
                data: Arc::from(data),
                idx,
                polys: None,
            })
        } else if pts.is_empty() && col_ok(polys) {
            let t = tables();
            let coeffs: Vec<u16> = polys
                .iter()
                .flat_map(|c| c.chunks_exact(2).map(|b| be16(b, 0)))
                .collect();
            let mut data = vec![0u8; len];
            for j in 0..COLS {
                let col = coeffs.get(j * n..(j + 1) * n)?;
                for k in 0..n {
                    let v = eval(t, col, k as u16);
                    let d = k * CHUNK + 2 * j;
                    if let Some(dst) = data.get_mut(d..d + 2) {
                        dst.copy_from_slice(&v.to_be_bytes());
                    }
                }
            }
            Some(Encoder {
                data: Arc::from(data),
                idx,
                polys: Some(Arc::from(coeffs)),
            })
        } else {
            None
        }
    }
}

/// Decoder of one value of a known length.
#[derive(Clone)]
pub struct Decoder {
    len: usize,
    /// Received chunks sorted by index (every column has the same x set).
    pts: Arc<Vec<(u16, [u8; CHUNK])>>,
    is_complete: bool,
}

impl Decoder {
    /// A decoder of a `len`-byte value (a non-zero multiple of 32).
    pub fn new(len: usize) -> Self {
        Decoder {
            len,
            pts: Arc::new(Vec::new()),
            is_complete: false,
        }
    }

    /// Expected value length.
    pub fn value_len(&self) -> usize {
        self.len
    }

    /// Number of chunks needed (`n`).
    pub fn needed(&self) -> usize {
        self.len / CHUNK
    }

    /// Number of distinct chunks held.
    pub fn count(&self) -> usize {
        self.pts.len()
    }

    /// Adds chunk `c`. A chunk index already held is ignored (the first copy is kept).
    pub fn add(&mut self, c: u16, data: &[u8; CHUNK]) {
        let needed = self.needed();
        match self.pts.binary_search_by_key(&c, |p| p.0) {
            Ok(_) => {}
            Err(pos) => {
                if usize::from(c) < needed || self.pts.len() < needed {
                    Arc::make_mut(&mut self.pts).insert(pos, (c, *data));
                }
            }
        }
    }

    /// The value, once `n` distinct chunks are held.
    pub fn decoded(&self) -> Option<Vec<u8>> {
        let n = self.needed();
        if self.pts.len() < n || n == 0 {
            return None;
        }
        let t = tables();
        let mut out = vec![0u8; self.len];
        let basis = self.pts.get(..n)?;
        for k in 0..n {
            let dst = out.get_mut(k * CHUNK..(k + 1) * CHUNK)?;
            if let Ok(pos) = self.pts.binary_search_by_key(&(k as u16), |p| p.0) {
                dst.copy_from_slice(&self.pts.get(pos)?.1);
                continue;
            }
            // Lagrange weights at x = k over the first n points.
            let x = k as u16;
            let mut acc = [0u16; COLS];
            for (i, (xi, yi)) in basis.iter().enumerate() {
                let mut num = 1u16;
                let mut den = 1u16;
                for (m, (xm, _)) in basis.iter().enumerate() {
                    if m != i {
                        num = t.mul(num, x ^ xm);
                        den = t.mul(den, xi ^ xm);
                    }
                }
                let w = t.div(num, den);
                if w == 0 {
                    continue;
                }
                let lw = t.log_of(w);
                for (j, a) in acc.iter_mut().enumerate() {
                    *a ^= t.mul_log(be16(yi, 2 * j), lw);
                }
            }
            for (j, a) in acc.iter().enumerate() {
                if let Some(o) = dst.get_mut(2 * j..2 * j + 2) {
                    o.copy_from_slice(&a.to_be_bytes());
                }
            }
        }
        Some(out)
    }

    /// Serialized form (protobuf `PolynomialDecoder`): `(pts_needed, polys, pts, is_complete)`.
    pub fn to_parts(&self) -> (u32, u32, Vec<Vec<u8>>, bool) {
        let pts = (0..COLS)
            .map(|j| {
                let mut col = Vec::with_capacity(4 * self.pts.len());
                for (x, y) in self.pts.iter() {
                    col.extend_from_slice(&x.to_be_bytes());
                    col.extend_from_slice(y.get(2 * j..2 * j + 2).unwrap_or(&[0, 0]));
                }
                col
            })
            .collect();
        ((self.len / 2) as u32, COLS as u32, pts, self.is_complete)
    }

    /// Rebuilds a decoder of a `len`-byte value; `None` if the form is inconsistent (wrong
    /// `pts_needed`, not 16 columns, unsorted points, or columns with different x sets).
    pub fn from_parts(
        len: usize,
        pts_needed: u32,
        polys: u32,
        pts: &[Vec<u8>],
        is_complete: bool,
    ) -> Option<Self> {
        if len == 0 || len % CHUNK != 0 || pts_needed as usize != len / 2 || polys as usize != COLS
        {
            return None;
        }
        if pts.len() != COLS {
            return None;
        }
        let first = pts.first()?;
        if first.len() % 4 != 0 || pts.iter().any(|c| c.len() != first.len()) {
            return None;
        }
        let count = first.len() / 4;
        let mut out: Vec<(u16, [u8; CHUNK])> = Vec::with_capacity(count);
        for p in 0..count {
            let x = be16(first, 4 * p);
            let mut y = [0u8; CHUNK];
            for (j, col) in pts.iter().enumerate() {
                if be16(col, 4 * p) != x {
                    return None;
                }
                let src = col.get(4 * p + 2..4 * p + 4)?;
                y.get_mut(2 * j..2 * j + 2)?.copy_from_slice(src);
            }
            if let Some(last) = out.last() {
                if last.0 >= x {
                    return None;
                }
            }
            out.push((x, y));
        }
        Some(Decoder {
            len,
            pts: Arc::new(out),
            is_complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn any_n_chunks_decode() {
        for &len in &[96usize, 160, 960, 1152] {
            let v = value(len, 7);
            let enc = Encoder::new(&v);
            let n = len / CHUNK;
            // Parity-only and mixed subsets.
            for start in [0u16, 1, 5, n as u16, 3 * n as u16, 65000] {
                let mut dec = Decoder::new(len);
                let mut c = start;
                while dec.decoded().is_none() {
                    dec.add(c, &enc.chunk_at(c));
                    c = c.wrapping_add(3);
                }
                assert_eq!(dec.decoded().unwrap(), v, "len {len} start {start}");
            }
        }
    }

    #[test]
    fn encoder_roundtrips_both_forms() {
        let v = value(96, 3);
        let mut enc = Encoder::new(&v);
        for _ in 0..5 {
            enc.next_chunk();
        }
        assert!(enc.in_poly_form());
        let (idx, pts, polys) = enc.to_parts();
        let back = Encoder::from_parts(96, idx, &pts, &polys).unwrap();
        assert_eq!(back.data(), &v[..]);
        assert_eq!(back.chunk_at(9), enc.chunk_at(9));
    }
}

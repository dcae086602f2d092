//! Arithmetic in GF(2^16) with the reduction polynomial x^16 + x^12 + x^3 + x + 1 (`0x1100B`).
//!
//! Elements are `u16` whose bit `i` is the coefficient of `x^i`; addition is XOR. Multiplication
//! uses log/exp tables built once (lazily) from a generator found at start-up.

use std::sync::OnceLock;

/// The reduction polynomial.
pub const POLY: u32 = 0x1100B;

const ORDER: usize = 65535;

/// Log/exp tables of the multiplicative group.
pub struct Tables {
    exp: Box<[u16]>, // 2 * ORDER + 2 entries, exp[i] = g^i
    log: Box<[u16]>, // 65536 entries, log[0] unused
}

/// Carry-less multiplication reduced modulo [`POLY`] (slow, bit by bit; used to build tables and
/// by tests).
pub fn mul_slow(a: u16, b: u16) -> u16 {
    let mut acc: u32 = 0;
    let a = u32::from(a);
    for i in 0..16 {
        if (b >> i) & 1 == 1 {
            acc ^= a << i;
        }
    }
    for bit in (16..32).rev() {
        if (acc >> bit) & 1 == 1 {
            acc ^= POLY << (bit - 16);
        }
    }
    (acc & 0xFFFF) as u16
}

fn build() -> Tables {
    let mut g: u16 = 2;
    loop {
        let mut exp = vec![0u16; 2 * ORDER + 2];
        let mut log = vec![0u16; 65536];
        let mut x: u16 = 1;
        let mut ok = true;
        for (i, e) in exp.iter_mut().take(ORDER).enumerate() {
            if x == 1 && i != 0 {
                ok = false;
                break;
            }
            *e = x;
            if let Some(l) = log.get_mut(usize::from(x)) {
                *l = i as u16;
            }
            x = mul_slow(x, g);
        }
        if ok && x == 1 {
            for i in ORDER..exp.len() {
                let v = exp.get(i - ORDER).copied().unwrap_or(0);
                if let Some(e) = exp.get_mut(i) {
                    *e = v;
                }
            }
            return Tables {
                exp: exp.into_boxed_slice(),
                log: log.into_boxed_slice(),
            };
        }
        g = g.wrapping_add(1);
    }
}

/// The shared tables.
pub fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(build)
}

impl Tables {
    #[inline]
    fn lg(&self, a: u16) -> usize {
        usize::from(self.log.get(usize::from(a)).copied().unwrap_or(0))
    }
    #[inline]
    fn ex(&self, i: usize) -> u16 {
        self.exp.get(i).copied().unwrap_or(0)
    }
    /// Product.
    #[inline]
    pub fn mul(&self, a: u16, b: u16) -> u16 {
        if a == 0 || b == 0 {
            0
        } else {
            self.ex(self.lg(a) + self.lg(b))
        }
    }
    /// Multiplicative inverse (0 for 0).
    #[inline]
    pub fn inv(&self, a: u16) -> u16 {
        if a == 0 {
            0
        } else {
            self.ex(ORDER - self.lg(a))
        }
    }
    /// Quotient `a / b` (0 when `b` is 0).
    #[inline]
    pub fn div(&self, a: u16, b: u16) -> u16 {
        if a == 0 || b == 0 {
            0
        } else {
            self.ex(self.lg(a) + ORDER - self.lg(b))
        }
    }
    /// `log(a)` for a non-zero `a` (0 for 0); exposed for multiply-by-constant loops.
    #[inline]
    pub fn log_of(&self, a: u16) -> usize {
        self.lg(a)
    }
    /// `a * g^l` where `l` is a log from [`Tables::log_of`] of a non-zero constant.
    #[inline]
    pub fn mul_log(&self, a: u16, l: usize) -> u16 {
        if a == 0 {
            0
        } else {
            self.ex(self.lg(a) + l)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_agree_with_slow_multiplication() {
        let t = tables();
        let mut x: u32 = 12345;
        for _ in 0..20000 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let a = (x >> 8) as u16;
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let b = (x >> 8) as u16;
            assert_eq!(t.mul(a, b), mul_slow(a, b));
            if a != 0 {
                assert_eq!(t.mul(a, t.inv(a)), 1);
                assert_eq!(t.mul(t.div(b, a), a), b);
            }
        }
    }
}

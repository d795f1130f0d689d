//! Keyed bijections that make unique numbers (identity numbers, record ids) without remembering
//! the ones handed out.

use super::*;

/// A keyed bijection of `0..100_000` (affine, digit reversal, affine), invertible.
#[derive(Debug, Clone)]
pub(super) struct Perm5 {
    pub(super) a: u64,
    pub(super) b: u64,
    pub(super) c: u64,
    pub(super) d: u64,
    pub(super) a_inv: u64,
    pub(super) c_inv: u64,
}

pub(super) const M5: u64 = 100_000;

impl Perm5 {
    pub(super) fn new(rng: &mut Rng) -> Self {
        let (a, a_inv) = unit_mod(rng, M5);
        let (c, c_inv) = unit_mod(rng, M5);
        Perm5 { a, b: rng.below(M5), c, d: rng.below(M5), a_inv, c_inv }
    }

    pub(super) fn apply(&self, x: u64) -> u64 {
        let x = (self.a * x + self.b) % M5;
        let x = reverse5(x);
        (self.c * x + self.d) % M5
    }

    pub(super) fn invert(&self, y: u64) -> u64 {
        let x = ((y + M5 - self.d) % M5) * self.c_inv % M5;
        let x = reverse5(x);
        ((x + M5 - self.b) % M5) * self.a_inv % M5
    }
}

pub(super) fn reverse5(mut x: u64) -> u64 {
    let mut r = 0;
    for _ in 0..5 {
        r = r * 10 + x % 10;
        x /= 10;
    }
    r
}

/// A random unit of `Z/m` (coprime with `m`) and its inverse.
pub(super) fn unit_mod(rng: &mut Rng, m: u64) -> (u64, u64) {
    loop {
        let a = 1 + rng.below(m - 1);
        if let Some(inv) = inverse_mod(a, m) {
            return (a, inv);
        }
    }
}

pub(super) fn inverse_mod(a: u64, m: u64) -> Option<u64> {
    let (mut old_r, mut r) = (i128::from(a), i128::from(m));
    let (mut old_s, mut s) = (1_i128, 0_i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    (old_r == 1).then(|| old_s.rem_euclid(i128::from(m)) as u64)
}

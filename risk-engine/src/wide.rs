//! Wide multiplication and division with an explicit rounding direction.
//!
//! Why this exists: the engine must run inside a Solana program, and the BPF backend of stock
//! LLVM cannot lower 128-bit multiply or divide (`__multi3`, `__udivti3`), signed 64-bit
//! division, or `checked_mul` on `u64`. Every product and quotient that needs more than 64 bits
//! is therefore built here from 32-bit halves and 64-bit unsigned division, using only
//! operations that lower on every target: wrapping `u64` multiply, `u64` divide, 128-bit
//! add/sub/compare and constant shifts.
//!
//! Each helper states its rounding. [`Rounding::Down`] rounds towards negative infinity and
//! [`Rounding::Up`] towards positive infinity, so a caller can always round against the
//! account being checked (requirements up, equity down). The property tests at the bottom check
//! these helpers bit for bit against `fixed`'s own `I32F32`/`I80F48` operations and against
//! native 128-bit arithmetic.

use fixed::types::{I32F32, I80F48};

/// Direction in which a result that is not exactly representable is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Towards negative infinity (floor).
    Down,
    /// Towards positive infinity (ceiling).
    Up,
}

impl Rounding {
    /// The opposite direction (used when a value is negated after rounding).
    pub const fn flip(self) -> Rounding {
        match self {
            Rounding::Down => Rounding::Up,
            Rounding::Up => Rounding::Down,
        }
    }
}

const LO32: u64 = 0xffff_ffff;

/// Exact unsigned 64 x 64 -> 128-bit product, from four 32 x 32 -> 64-bit products.
#[inline]
pub fn mul_u64_wide(a: u64, b: u64) -> u128 {
    let (a1, a0) = (a >> 32, a & LO32);
    let (b1, b0) = (b >> 32, b & LO32);
    // Each partial product of two 32-bit halves fits in 64 bits, so wrapping is exact.
    let p00 = a0.wrapping_mul(b0);
    let p01 = a0.wrapping_mul(b1);
    let p10 = a1.wrapping_mul(b0);
    let p11 = a1.wrapping_mul(b1);
    // mid < 3 * 2^32: no overflow.
    let mid = (p00 >> 32) + (p01 & LO32) + (p10 & LO32);
    let lo = (mid << 32) | (p00 & LO32);
    let hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    ((hi as u128) << 64) | lo as u128
}

/// Exact signed 64 x 64 -> 128-bit product.
#[inline]
pub fn mul_i64_wide(a: i64, b: i64) -> i128 {
    let magnitude = mul_u64_wide(a.unsigned_abs(), b.unsigned_abs()) as i128;
    if (a < 0) != (b < 0) {
        -magnitude
    } else {
        magnitude
    }
}

/// Divides the 128-bit number `hi:lo` by `divisor`, returning `(quotient, remainder)`, or
/// `None` when the divisor is zero or the quotient does not fit in 64 bits (`hi >= divisor`).
///
/// Two-digit long division in base 2^32 with a normalised divisor (Knuth's algorithm D
/// specialised to a two-word divisor), using only 64-bit operations.
pub fn div_u128_by_u64(hi: u64, lo: u64, divisor: u64) -> Option<(u64, u64)> {
    if divisor == 0 || hi >= divisor {
        return None;
    }
    const BASE: u64 = 1 << 32;
    let shift = divisor.leading_zeros();
    let v = divisor << shift;
    let (vn1, vn0) = (v >> 32, v & LO32);
    let un32 = if shift == 0 { hi } else { (hi << shift) | (lo >> (64 - shift)) };
    let un10 = lo << shift;
    let (un1, un0) = (un10 >> 32, un10 & LO32);

    let mut q1 = un32 / vn1;
    let mut rhat = un32 - q1.wrapping_mul(vn1);
    while q1 >= BASE || q1.wrapping_mul(vn0) > (rhat << 32) + un1 {
        q1 -= 1;
        rhat += vn1;
        if rhat >= BASE {
            break;
        }
    }
    let un21 = (un32 << 32).wrapping_add(un1).wrapping_sub(q1.wrapping_mul(v));

    let mut q0 = un21 / vn1;
    let mut rhat = un21 - q0.wrapping_mul(vn1);
    while q0 >= BASE || q0.wrapping_mul(vn0) > (rhat << 32) + un0 {
        q0 -= 1;
        rhat += vn1;
        if rhat >= BASE {
            break;
        }
    }
    let rem = ((un21 << 32).wrapping_add(un0).wrapping_sub(q0.wrapping_mul(v))) >> shift;
    Some(((q1 << 32) | q0, rem))
}

/// Divides a non-negative 128-bit numerator by a non-zero `u64`, rounding the magnitude down
/// (`round_up == false`) or up. `None` if the quotient does not fit in 64 bits.
#[inline]
fn div_u128_round(numerator: u128, divisor: u64, round_up: bool) -> Option<u64> {
    let (q, r) = div_u128_by_u64((numerator >> 64) as u64, numerator as u64, divisor)?;
    if round_up && r != 0 {
        q.checked_add(1)
    } else {
        Some(q)
    }
}

/// Applies a sign to a magnitude quotient computed with the right magnitude rounding, and checks
/// that it fits in `i64`.
#[inline]
fn signed_i64(magnitude: u64, negative: bool) -> Option<i64> {
    if negative {
        if magnitude <= i64::MAX as u64 + 1 {
            Some((magnitude as i64).wrapping_neg())
        } else {
            None
        }
    } else if magnitude <= i64::MAX as u64 {
        Some(magnitude as i64)
    } else {
        None
    }
}

/// Magnitude rounding that realises `rounding` for a result of the given sign: rounding a
/// negative number down makes its magnitude larger.
#[inline]
const fn magnitude_up(negative: bool, rounding: Rounding) -> bool {
    matches!((negative, rounding), (false, Rounding::Up) | (true, Rounding::Down))
}

/// Signed 128-bit numerator divided by a signed 64-bit divisor, rounded as asked, as `i64`.
/// `None` on a zero divisor or when the result does not fit.
pub fn div_i128_by_i64(numerator: i128, divisor: i64, rounding: Rounding) -> Option<i64> {
    if divisor == 0 {
        return None;
    }
    let negative = (numerator < 0) != (divisor < 0) && numerator != 0;
    let q = div_u128_round(numerator.unsigned_abs(), divisor.unsigned_abs(), magnitude_up(negative, rounding))?;
    signed_i64(q, negative)
}

/// Arithmetic right shift of a signed 128-bit value by the constant `SHIFT` (< 128), rounded
/// as asked. A const parameter, because the BPF backend cannot shift 128-bit values by a
/// run-time amount.
#[inline]
pub fn shr_i128<const SHIFT: u32>(value: i128, rounding: Rounding) -> i128 {
    let floor = value >> SHIFT;
    match rounding {
        Rounding::Down => floor,
        Rounding::Up => {
            let mask = (1i128 << SHIFT) - 1;
            if value & mask != 0 {
                floor + 1
            } else {
                floor
            }
        }
    }
}

/// Narrows an `i128` to `i64`, `None` if it does not fit.
#[inline]
pub fn to_i64(value: i128) -> Option<i64> {
    if value > i64::MAX as i128 || value < i64::MIN as i128 {
        None
    } else {
        Some(value as i64)
    }
}

/// `a * b` for Q32.32 numbers, rounded as asked; `None` on overflow.
/// With [`Rounding::Down`] this equals `fixed`'s `I32F32::checked_mul` bit for bit.
#[inline]
pub fn mul_q32(a: I32F32, b: I32F32, rounding: Rounding) -> Option<I32F32> {
    let product = mul_i64_wide(a.to_bits(), b.to_bits());
    to_i64(shr_i128::<32>(product, rounding)).map(I32F32::from_bits)
}

/// `a * b` for non-negative Q32.32 numbers, rounded as asked: bit for bit
/// `mul_q32(a, b, rounding)` (a negative operand takes that path), from four 32-bit products in
/// native 64-bit arithmetic instead of a signed 128-bit product and shift: about a third of the
/// cost on SBF, where a refresh takes several per scenario. `None` on overflow.
#[inline]
pub fn mul_q32_nonneg(a: I32F32, b: I32F32, rounding: Rounding) -> Option<I32F32> {
    let (a, b) = (a.to_bits(), b.to_bits());
    if a < 0 || b < 0 {
        return mul_q32(I32F32::from_bits(a), I32F32::from_bits(b), rounding);
    }
    let (a, b) = (a as u64, b as u64);
    let (a1, a0, b1, b0) = (a >> 32, a & LO32, b >> 32, b & LO32);
    // a b / 2^32 = a1 b1 2^32 + a1 b0 + a0 b1 + a0 b0 / 2^32: only the last term has a fraction.
    let high = a1 * b1; // < 2^62
    if high > (i64::MAX as u64) >> 32 {
        return None;
    }
    let low = a0 * b0;
    let carry = u64::from(matches!(rounding, Rounding::Up) && low & LO32 != 0);
    let total = (high << 32).checked_add(a1 * b0)?.checked_add(a0 * b1)?.checked_add((low >> 32) + carry)?;
    i64::try_from(total).ok().map(I32F32::from_bits)
}

/// `a / b` for Q32.32 numbers, rounded as asked; `None` on a zero divisor or overflow.
/// `fixed`'s `I32F32::checked_div` truncates towards zero, so it equals [`Rounding::Down`] for
/// non-negative quotients and [`Rounding::Up`] for negative ones.
#[inline]
pub fn div_q32(a: I32F32, b: I32F32, rounding: Rounding) -> Option<I32F32> {
    let numerator = (a.to_bits() as i128) << 32;
    div_i128_by_i64(numerator, b.to_bits(), rounding).map(I32F32::from_bits)
}

/// Multiplies a Q32.32 number by an integer, exactly, into a wide Q32.32 accumulator value.
#[inline]
pub fn mul_q32_by_int(value: I32F32, integer: i64) -> i128 {
    mul_i64_wide(value.to_bits(), integer)
}

/// Like [`mul_q32_by_int`] for an integer that fits in 32 bits (|integer| < 2^31, e.g. a
/// position in lots): two 64-bit products instead of four, for the scenario sums of a health
/// check. Exact.
#[inline(always)]
pub fn mul_q32_by_i32(value: I32F32, integer: i32) -> i128 {
    let bits = value.to_bits();
    let (high, low) = (bits >> 32, bits & 0xffff_ffff); // bits = high 2^32 + low, low >= 0
    let integer = integer as i64;
    // |high x integer| < 2^62 and |low x integer| < 2^63: both fit in i64.
    (((high * integer) as i128) << 32) + (low * integer) as i128
}

/// Exact product of two unsigned 128-bit numbers as four 64-bit limbs, least significant first.
/// Partial products of zero limbs are skipped: balances, prices and weights usually fit in 64
/// bits, and then this is a single 64 x 64-bit product.
fn mul_u128_wide(a: u128, b: u128) -> [u64; 4] {
    let (a1, a0) = ((a >> 64) as u64, a as u64);
    let (b1, b0) = ((b >> 64) as u64, b as u64);
    if a1 == 0 && b1 == 0 {
        let p = mul_u64_wide(a0, b0);
        return [p as u64, (p >> 64) as u64, 0, 0];
    }
    let p00 = mul_u64_wide(a0, b0);
    let p01 = mul_u64_wide(a0, b1);
    let p10 = mul_u64_wide(a1, b0);
    let p11 = mul_u64_wide(a1, b1);
    // Column sums with carries; every intermediate fits in u128.
    let c0 = p00 as u64;
    let col1 = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
    let c1 = col1 as u64;
    let col2 = (col1 >> 64) + (p01 >> 64) + (p10 >> 64) + (p11 as u64 as u128);
    let c2 = col2 as u64;
    let c3 = ((col2 >> 64) + (p11 >> 64)) as u64;
    [c0, c1, c2, c3]
}

/// `a * b` for I80F48 numbers, rounded as asked; `None` on overflow.
/// With [`Rounding::Down`] this equals `fixed`'s `I80F48::checked_mul` bit for bit.
#[inline(always)]
pub fn mul_i80f48(a: I80F48, b: I80F48, rounding: Rounding) -> Option<I80F48> {
    let mut operands = [a.to_bits(), b.to_bits()];
    if mul_i80f48_in_place(&mut operands, rounding) {
        Some(I80F48::from_bits(operands[0]))
    } else {
        None
    }
}

/// The body of [`mul_i80f48`]: multiplies `operands[0] x operands[1]` into `operands[0]`.
/// The operands travel by (mutable) reference because the BPF backend allows at most five
/// argument registers per call and cannot pass arguments on the stack: two `i128`s by value
/// plus a rounding and a returned `Option<i128>` would need six.
#[inline(never)]
fn mul_i80f48_in_place(operands: &mut [i128; 2], rounding: Rounding) -> bool {
    let (a, b) = (operands[0], operands[1]);
    let negative = (a < 0) != (b < 0) && a != 0 && b != 0;
    let limbs = mul_u128_wide(a.unsigned_abs(), b.unsigned_abs());
    // Shift the 256-bit magnitude right by 48 bits.
    let low_bits_nonzero = (limbs[0] & ((1u64 << 48) - 1)) != 0;
    let r0 = (limbs[0] >> 48) | (limbs[1] << 16);
    let r1 = (limbs[1] >> 48) | (limbs[2] << 16);
    let r2 = (limbs[2] >> 48) | (limbs[3] << 16);
    let r3 = limbs[3] >> 48;
    if r2 != 0 || r3 != 0 {
        return false;
    }
    let mut magnitude = ((r1 as u128) << 64) | r0 as u128;
    if low_bits_nonzero && magnitude_up(negative, rounding) {
        match magnitude.checked_add(1) {
            Some(m) => magnitude = m,
            None => return false,
        }
    }
    operands[0] = if negative {
        if magnitude > i128::MAX as u128 + 1 {
            return false;
        }
        (magnitude as i128).wrapping_neg()
    } else {
        if magnitude > i128::MAX as u128 {
            return false;
        }
        magnitude as i128
    };
    true
}

/// `a x b` for an I80F48 `a` and a Q32.32 `b` (rates, factors, prices per lot), rounded as
/// asked, as I80F48; `None` on overflow. One or two 64 x 64-bit products instead of the four
/// an I80F48 x I80F48 product may need.
#[inline]
pub fn mul_i80f48_by_q32(a: I80F48, b: I32F32, rounding: Rounding) -> Option<I80F48> {
    let (a, b) = (a.to_bits(), b.to_bits());
    let negative = (a < 0) != (b < 0) && a != 0 && b != 0;
    let (magnitude, b_abs) = (a.unsigned_abs(), b.unsigned_abs());
    let (a1, a0) = ((magnitude >> 64) as u64, magnitude as u64);
    // a x b = (a1 2^64 + a0) b; the result is that over 2^32.
    let low = mul_u64_wide(a0, b_abs);
    let high = if a1 == 0 { 0 } else { mul_u64_wide(a1, b_abs) };
    // (high 2^64 + low) >> 32, checking it fits in 127 bits.
    if high >> 95 != 0 {
        return None;
    }
    let shifted = (high << 32) + (low >> 32);
    let inexact = low & 0xffff_ffff != 0;
    let magnitude = if inexact && magnitude_up(negative, rounding) { shifted.checked_add(1)? } else { shifted };
    if magnitude > i128::MAX as u128 {
        return None;
    }
    Some(I80F48::from_bits(if negative { -(magnitude as i128) } else { magnitude as i128 }))
}

/// Widens a Q32.32 value held in an `i128` accumulator (2^32 scale) to I80F48 (2^48 scale).
#[inline]
pub fn q32_wide_to_i80f48(value: i128) -> Option<I80F48> {
    let limit = i128::MAX >> 16;
    if value > limit || value < -limit {
        None
    } else {
        Some(I80F48::from_bits(value << 16))
    }
}

/// Narrows an I80F48 value to Q32.32, rounded as asked; `None` if out of range.
#[inline]
pub fn i80f48_to_q32(value: I80F48, rounding: Rounding) -> Option<I32F32> {
    to_i64(shr_i128::<16>(value.to_bits(), rounding)).map(I32F32::from_bits)
}

/// Rounds an I80F48 value to an integer (e.g. native token units), as asked.
#[inline]
pub fn i80f48_to_int(value: I80F48, rounding: Rounding) -> Option<i64> {
    to_i64(shr_i128::<48>(value.to_bits(), rounding))
}

/// Rounds a Q32.32 value to an integer, as asked.
#[inline]
pub fn q32_to_int(value: I32F32, rounding: Rounding) -> i64 {
    shr_i128::<32>(value.to_bits() as i128, rounding) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn i80(bits: i128) -> I80F48 {
        I80F48::from_bits(bits)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn nonnegative_product_matches_the_signed_one(a in any::<i64>(), b in any::<i64>(), small in 0i64..(1 << 40)) {
            for (x, y) in [(a, b), (a.wrapping_abs().max(0), small), (small, b.wrapping_abs().max(0)), (a >> 20, b >> 20)] {
                let (x, y) = (I32F32::from_bits(x), I32F32::from_bits(y));
                for rounding in [Rounding::Down, Rounding::Up] {
                    prop_assert_eq!(mul_q32_nonneg(x, y, rounding), mul_q32(x, y, rounding));
                }
            }
        }

        #[test]
        fn u64_wide_product_is_exact(a: u64, b: u64) {
            prop_assert_eq!(mul_u64_wide(a, b), a as u128 * b as u128);
        }

        #[test]
        fn i64_wide_product_is_exact(a: i64, b: i64) {
            prop_assert_eq!(mul_i64_wide(a, b), a as i128 * b as i128);
        }

        #[test]
        fn q32_by_i32_product_is_exact(a: i64, b in -(i32::MAX)..=i32::MAX) {
            prop_assert_eq!(mul_q32_by_i32(I32F32::from_bits(a), b), a as i128 * b as i128);
        }

        #[test]
        fn wide_division_matches_native(hi: u64, lo: u64, d in 1u64..) {
            let n = ((hi as u128) << 64) | lo as u128;
            let expected = n / d as u128;
            match div_u128_by_u64(hi, lo, d) {
                Some((q, r)) => {
                    prop_assert_eq!(q as u128, expected);
                    prop_assert_eq!(r as u128, n % d as u128);
                }
                None => prop_assert!(expected > u64::MAX as u128),
            }
        }

        #[test]
        fn wide_division_small_divisors(hi in 0u64..1000, lo: u64, d in 1001u64..100_000) {
            let n = ((hi as u128) << 64) | lo as u128;
            let (q, r) = div_u128_by_u64(hi, lo, d).unwrap();
            prop_assert_eq!(q as u128, n / d as u128);
            prop_assert_eq!(r as u128, n % d as u128);
        }

        #[test]
        fn q32_mul_down_equals_fixed(a: i64, b: i64) {
            let (fa, fb) = (I32F32::from_bits(a), I32F32::from_bits(b));
            prop_assert_eq!(mul_q32(fa, fb, Rounding::Down), fa.checked_mul(fb));
        }

        #[test]
        fn q32_mul_moderate_values_equal_fixed(a in -(1i64 << 45)..(1i64 << 45), b in -(1i64 << 45)..(1i64 << 45)) {
            let (fa, fb) = (I32F32::from_bits(a), I32F32::from_bits(b));
            let down = mul_q32(fa, fb, Rounding::Down);
            prop_assert_eq!(down, fa.checked_mul(fb));
            let up = mul_q32(fa, fb, Rounding::Up).unwrap();
            let exact = a as i128 * b as i128;
            let expected_up = if exact % (1i128 << 32) == 0 { exact >> 32 } else { (exact >> 32) + 1 };
            prop_assert_eq!(up.to_bits() as i128, expected_up);
        }

        #[test]
        fn q32_div_matches_fixed_truncation(a: i64, b in any::<i64>().prop_filter("non-zero", |b| *b != 0)) {
            let (fa, fb) = (I32F32::from_bits(a), I32F32::from_bits(b));
            let truncated = fa.checked_div(fb);
            let negative = (a < 0) != (b < 0);
            let ours = div_q32(fa, fb, if negative { Rounding::Up } else { Rounding::Down });
            prop_assert_eq!(ours, truncated);
        }

        #[test]
        fn q32_div_rounding_brackets_exact(a in -(1i64 << 50)..(1i64 << 50), b in any::<i64>().prop_filter("non-zero", |b| b.unsigned_abs() > 1 << 20)) {
            let (fa, fb) = (I32F32::from_bits(a), I32F32::from_bits(b));
            let n = (a as i128) << 32;
            let q = n / b as i128;
            let exact_floor = if n % b as i128 != 0 && ((n < 0) != (b < 0)) { q - 1 } else { q };
            let down = div_q32(fa, fb, Rounding::Down).unwrap().to_bits() as i128;
            let up = div_q32(fa, fb, Rounding::Up).unwrap().to_bits() as i128;
            prop_assert_eq!(down, exact_floor);
            prop_assert_eq!(up, if n % b as i128 == 0 { exact_floor } else { exact_floor + 1 });
        }

        #[test]
        fn i80f48_mul_down_equals_fixed(a: i128, b: i128) {
            prop_assert_eq!(mul_i80f48(i80(a), i80(b), Rounding::Down), i80(a).checked_mul(i80(b)));
        }

        #[test]
        fn i80f48_mul_moderate_equals_fixed(a in -(1i128 << 90)..(1i128 << 90), b in -(1i128 << 70)..(1i128 << 70)) {
            let down = mul_i80f48(i80(a), i80(b), Rounding::Down);
            prop_assert_eq!(down, i80(a).checked_mul(i80(b)));
            let up = mul_i80f48(i80(a), i80(b), Rounding::Up).unwrap();
            let down = down.unwrap();
            prop_assert!(up.to_bits() == down.to_bits() || up.to_bits() == down.to_bits() + 1);
        }
    }

    proptest! {
        #[test]
        fn i80f48_by_q32_matches_the_general_product(a in -(1i128 << 110)..(1i128 << 110), b: i64) {
            let (fa, fb) = (I80F48::from_bits(a), I32F32::from_bits(b));
            for rounding in [Rounding::Down, Rounding::Up] {
                prop_assert_eq!(mul_i80f48_by_q32(fa, fb, rounding), mul_i80f48(fa, I80F48::from_num(fb), rounding));
            }
        }
    }

    #[test]
    fn i80f48_up_rounds_only_inexact_products() {
        let third = I80F48::from_num(1) / I80F48::from_num(3);
        let three = I80F48::from_num(3);
        let down = mul_i80f48(third, third, Rounding::Down).unwrap();
        let up = mul_i80f48(third, third, Rounding::Up).unwrap();
        assert_eq!(Some(down), third.checked_mul(third));
        assert_eq!(up.to_bits(), down.to_bits() + 1);
        let exact = mul_i80f48(I80F48::from_num(2), three, Rounding::Up).unwrap();
        assert_eq!(exact, I80F48::from_num(6));
        // A negative inexact product rounds down to the more negative neighbour.
        let neg = mul_i80f48(-third, third, Rounding::Down).unwrap();
        assert_eq!(neg.to_bits(), -up.to_bits());
    }

    #[test]
    fn overflow_is_reported() {
        assert_eq!(mul_q32(I32F32::MAX, I32F32::from_num(2), Rounding::Down), None);
        assert_eq!(div_q32(I32F32::ONE, I32F32::ZERO, Rounding::Down), None);
        assert_eq!(div_q32(I32F32::MAX, I32F32::from_bits(1), Rounding::Down), None);
        assert_eq!(mul_i80f48(I80F48::MAX, I80F48::from_num(2), Rounding::Up), None);
        assert_eq!(div_i128_by_i64(i128::MAX, 1, Rounding::Down), None);
        // i64::MIN is representable as a negative quotient.
        assert_eq!(div_i128_by_i64(i64::MIN as i128, 1, Rounding::Down), Some(i64::MIN));
    }
}

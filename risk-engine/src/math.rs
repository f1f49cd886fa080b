//! Transcendental functions in fixed point: `exp`, `ln`, `sqrt` and the standard normal CDF.
//!
//! Inputs and outputs are Q32.32 ([`I32F32`]: range ±2^31, resolution 2^-32 ≈ 2.3e-10).
//! Internally the polynomial kernels run in Q2.62 (an `i64` with 62 fractional bits, range ±2)
//! so that the only error visible in Q32.32 is the final rounding plus the documented
//! truncation of each series. Error bounds (checked by the tests below against `f64`):
//!
//! | function | domain | error |
//! |---|---|---|
//! | [`exp`] | x <= 21.48 (above: overflow, `None`) | relative 1e-9, or 1 ulp (2.3e-10) absolute |
//! | [`ln`] / [`ln_q62`] | x > 0 | 2 ulp absolute (5e-10) / 1e-17 absolute |
//! | [`sqrt`] | x >= 0 | exact floor or ceiling of the true root (directed) |
//! | [`norm_cdf`] | all x | 2e-9 absolute |

use crate::wide::{div_u128_by_u64, mul_i64_wide, to_i64, Rounding};
use fixed::types::I32F32;

/// ln 2 at 2^-62 scale.
pub(crate) const LN2_Q62: i64 = 3_196_577_161_300_663_915;
/// 1 / ln 2 at 2^-32 scale.
const INV_LN2_Q32: i64 = 6_196_328_019;
/// sqrt(2) at 2^-62 scale.
const SQRT2_Q62: i64 = 6_521_908_912_666_391_106;
/// One at 2^-62 scale.
pub(crate) const ONE_Q62: i64 = 1 << 62;

/// 1/n! at 2^-62 scale, n = 0..=12 (Taylor coefficients of e^r).
const INV_FACTORIAL_Q62: [i64; 13] = [
    4_611_686_018_427_387_904,
    4_611_686_018_427_387_904,
    2_305_843_009_213_693_952,
    768_614_336_404_564_651,
    192_153_584_101_141_163,
    38_430_716_820_228_233,
    6_405_119_470_038_039,
    915_017_067_148_291,
    114_377_133_393_536,
    12_708_570_377_060,
    1_270_857_037_706,
    115_532_457_973,
    9_627_704_831,
];

/// 1/(2k+1) at 2^-62 scale, k = 0..=9 (series of atanh).
const INV_ODD_Q62: [i64; 10] = [
    4_611_686_018_427_387_904,
    1_537_228_672_809_129_301,
    922_337_203_685_477_581,
    658_812_288_346_769_701,
    512_409_557_603_043_100,
    419_244_183_493_398_900,
    354_745_078_340_568_300,
    307_445_734_561_825_860,
    271_275_648_142_787_524,
    242_720_316_759_336_205,
];

/// Q2.62 product, rounded down. Both factors and the product must lie in (-2, 2).
#[inline]
pub(crate) fn mul_q62(a: i64, b: i64) -> i64 {
    (mul_i64_wide(a, b) >> 62) as i64
}

/// Rounds a value at 2^-62 scale held in an `i128` to Q32.32, to nearest.
#[inline]
pub(crate) fn q62_to_q32_nearest(value: i128) -> Option<I32F32> {
    to_i64((value + (1 << 29)) >> 30).map(I32F32::from_bits)
}

/// e^x. `None` when the result exceeds the Q32.32 range (x > 21.48); results below half an ulp
/// (x < -22.9) are 0.
pub fn exp(x: I32F32) -> Option<I32F32> {
    let x_bits = x.to_bits();
    // ln(2^31) = 21.487: anything above overflows Q32.32.
    if x_bits > 92_288_378_000 {
        return None;
    }
    // e^-23 = 1.0e-10 is below half an ulp.
    if x_bits < -(23i64 << 32) {
        return Some(I32F32::ZERO);
    }
    // x = k ln2 + r with k = round(x / ln2), |r| <= ln2 / 2 (plus a rounding sliver).
    let k = ((mul_i64_wide(x_bits, INV_LN2_Q32) + (1i128 << 63)) >> 64) as i64;
    let r = ((x_bits as i128) << 30) - mul_i64_wide(k, LN2_Q62);
    let r = r as i64;
    // e^r by Horner on the Taylor series; truncation after r^12/12! is below 2^-62 * 0.01.
    let mut p = INV_FACTORIAL_Q62[12];
    for &c in INV_FACTORIAL_Q62[..12].iter().rev() {
        p = mul_q62(p, r) + c;
    }
    // e^x = e^r * 2^k; e^r at 2^-62 scale becomes Q32.32 by a shift of 30 - k.
    let shift = 30 - k;
    let bits = if shift > 0 {
        if shift >= 64 {
            0
        } else {
            ((p >> (shift - 1)) + 1) >> 1
        }
    } else {
        p.checked_shl((-shift) as u32).filter(|v| v >> (-shift) as u32 == p)?
    };
    Some(I32F32::from_bits(bits))
}

/// ln x at 2^-62 scale (an `i128`), for callers that subtract logarithms and need the extra
/// precision (Black-Scholes' ln(S/K) when vol * sqrt(T) is tiny). `None` for x <= 0.
pub fn ln_q62(x: I32F32) -> Option<i128> {
    let raw = x.to_bits();
    if raw <= 0 {
        return None;
    }
    let raw = raw as u64;
    let msb = 63 - raw.leading_zeros() as i64; // 0..=62
    // Mantissa m in [1, 2) at 2^-62 scale; x = m * 2^(msb - 32).
    let mut m = (raw << (62 - msb)) as i64;
    let mut exponent = msb - 32;
    if m > SQRT2_Q62 {
        m >>= 1;
        exponent += 1;
    }
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716.
    let numerator = m - ONE_Q62;
    let denominator = (m as u64) + (ONE_Q62 as u64);
    let magnitude = (numerator.unsigned_abs() as u128) << 62;
    let (s_mag, _) = div_u128_by_u64((magnitude >> 64) as u64, magnitude as u64, denominator)?;
    let s = if numerator < 0 { -(s_mag as i64) } else { s_mag as i64 };
    let z = mul_q62(s, s);
    let mut q = INV_ODD_Q62[9];
    for &c in INV_ODD_Q62[..9].iter().rev() {
        q = mul_q62(q, z) + c;
    }
    let ln_m = (mul_q62(s, q) as i128) << 1;
    Some(mul_i64_wide(exponent, LN2_Q62) + ln_m)
}

/// Natural logarithm, rounded to nearest. `None` for x <= 0.
pub fn ln(x: I32F32) -> Option<I32F32> {
    q62_to_q32_nearest(ln_q62(x)?)
}

/// Integer square root of a `u128` and the remainder `n - root^2`, using only constant shifts
/// (no 128-bit multiply).
fn isqrt_u128(n: u128) -> (u128, u128) {
    let mut remainder = n;
    let mut root: u128 = 0;
    let mut bit: u128 = 1 << 126;
    while bit > remainder {
        bit >>= 2;
    }
    while bit != 0 {
        if remainder >= root + bit {
            remainder -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    (root, remainder)
}

/// Square root, rounded in the given direction. `None` for negative input.
pub fn sqrt(x: I32F32, rounding: Rounding) -> Option<I32F32> {
    let raw = x.to_bits();
    if raw < 0 {
        return None;
    }
    let scaled = (raw as u128) << 32;
    let (root, remainder) = isqrt_u128(scaled);
    let root = if rounding == Rounding::Up && remainder != 0 { root + 1 } else { root };
    Some(I32F32::from_bits(root as i64))
}

/// Coefficients of Hart's rational approximation (algorithm 5666, as given by West, 2005) in
/// Q32.32, numerator a0..a6 and denominator b0..b7.
const HART_A: [i64; 7] = [
    945_781_296_038,
    950_105_160_980,
    481_376_891_542,
    145_654_650_720,
    27_375_959_210,
    3_008_122_356,
    151_451_270,
];
const HART_B: [i64; 8] = [
    1_891_562_592_076,
    3_409_458_909_971,
    2_737_327_112_003,
    1_273_733_749_672,
    372_720_406_735,
    68_995_117_340,
    7_540_533_049,
    379_625_062,
];
/// Beyond |x| = 10 / sqrt(2) the tail probability is below 8e-13, under one Q32.32 ulp.
const HART_CUTOFF: i64 = 30_370_005_000;

/// Horner evaluation of a Q32.32 polynomial with coefficients lowest degree first.
fn horner_q32(coefficients: &[i64], x: I32F32) -> Option<I32F32> {
    let mut acc = I32F32::from_bits(*coefficients.last()?);
    for &c in coefficients[..coefficients.len() - 1].iter().rev() {
        acc = crate::wide::mul_q32(acc, x, Rounding::Down)?.checked_add(I32F32::from_bits(c))?;
    }
    Some(acc)
}

/// Standard normal cumulative distribution function N(x), in [0, 1].
pub fn norm_cdf(x: I32F32) -> I32F32 {
    let z = x.abs();
    let tail = if z.to_bits() >= HART_CUTOFF {
        I32F32::ZERO
    } else {
        // N(-z) = e^(-z^2/2) P(z) / Q(z). All steps are in range for z < 7.08.
        let half_square: I32F32 = crate::wide::mul_q32(z, z, Rounding::Down).unwrap_or(I32F32::MAX) >> 1;
        let e = exp(-half_square).unwrap_or(I32F32::ZERO);
        let p = horner_q32(&HART_A, z).unwrap_or(I32F32::ZERO);
        let q = horner_q32(&HART_B, z).unwrap_or(I32F32::MAX);
        let numerator = crate::wide::mul_i64_wide(e.to_bits(), p.to_bits());
        // e * P / Q at 2^-32 scale: (e_bits * p_bits) has scale 2^-64, divide by q_bits (2^-32).
        let magnitude = numerator.unsigned_abs();
        let (tail, _) =
            div_u128_by_u64((magnitude >> 64) as u64, magnitude as u64, q.to_bits() as u64).unwrap_or((0, 0));
        I32F32::from_bits(tail as i64)
    };
    if x.to_bits() > 0 {
        I32F32::ONE - tail
    } else {
        tail
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(x: f64) -> I32F32 {
        I32F32::from_num(x)
    }
    fn f(x: I32F32) -> f64 {
        x.to_num::<f64>()
    }
    fn reference_cdf(x: f64) -> f64 {
        0.5 * libm::erfc(-x / core::f64::consts::SQRT_2)
    }
    const ULP: f64 = 1.0 / 4_294_967_296.0;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn exp_is_accurate(x in -30.0f64..21.4) {
            let qx = q(x);
            let ours = f(exp(qx).unwrap());
            let reference = f(qx).exp();
            let tolerance = (reference * 1e-9).max(ULP);
            prop_assert!((ours - reference).abs() <= tolerance, "exp({}) = {} vs {}", x, ours, reference);
        }

        #[test]
        fn ln_is_accurate(bits in 1i64..i64::MAX) {
            let x = I32F32::from_bits(bits);
            let ours = f(ln(x).unwrap());
            let reference = f(x).ln();
            prop_assert!((ours - reference).abs() <= 2.0 * ULP + reference.abs() * 1e-15, "ln({}) = {} vs {}", f(x), ours, reference);
        }

        #[test]
        fn sqrt_is_directed(bits in 0i64..i64::MAX) {
            let x = I32F32::from_bits(bits);
            let down = sqrt(x, Rounding::Down).unwrap().to_bits() as u128;
            let up = sqrt(x, Rounding::Up).unwrap().to_bits() as u128;
            let scaled = (bits as u128) << 32;
            prop_assert!(down * down <= scaled && (down + 1) * (down + 1) > scaled);
            prop_assert!(up * up >= scaled && (up == 0 || (up - 1) * (up - 1) < scaled));
        }

        #[test]
        fn norm_cdf_is_accurate(x in -12.0f64..12.0) {
            let qx = q(x);
            let ours = f(norm_cdf(qx));
            let reference = reference_cdf(f(qx));
            prop_assert!((ours - reference).abs() <= 2e-9, "N({}) = {} vs {}", x, ours, reference);
        }
    }

    #[test]
    fn exp_edges() {
        assert_eq!(exp(I32F32::ZERO), Some(I32F32::ONE));
        assert_eq!(exp(q(21.5)), None);
        assert!(exp(q(21.48)).is_some());
        assert_eq!(exp(q(-40.0)), Some(I32F32::ZERO));
        assert_eq!(exp(I32F32::MIN), Some(I32F32::ZERO));
        assert_eq!(exp(I32F32::MAX), None);
    }

    #[test]
    fn ln_edges() {
        assert_eq!(ln(I32F32::ZERO), None);
        assert_eq!(ln(q(-1.0)), None);
        assert_eq!(ln(I32F32::ONE), Some(I32F32::ZERO));
        assert!((f(ln(I32F32::MAX).unwrap()) - 31.0 * core::f64::consts::LN_2).abs() < 1e-9);
        assert!((f(ln(I32F32::from_bits(1)).unwrap()) + 32.0 * core::f64::consts::LN_2).abs() < 1e-9);
    }

    #[test]
    fn cdf_symmetry_and_limits() {
        assert_eq!(norm_cdf(I32F32::ZERO), q(0.5));
        assert_eq!(norm_cdf(q(9.0)), I32F32::ONE);
        assert_eq!(norm_cdf(q(-9.0)), I32F32::ZERO);
        for x in [0.1, 0.5, 1.0, 2.5, 4.0] {
            let sum = norm_cdf(q(x)) + norm_cdf(q(-x));
            assert_eq!(sum, I32F32::ONE);
        }
    }
}

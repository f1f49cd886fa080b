//! Black-Scholes value and delta of European options with zero interest rate, in Q32.32.
//!
//! The value is computed per unit of spot, `c/S = N(d1) - (K/S) N(d2)`, and scaled by spot at
//! the end, so the absolute error is a fixed fraction of spot whatever the price level
//! (tested: within 1e-6 x spot of a double-precision reference, delta within 1e-6, over spot
//! 0.01..1e5, strike/spot 0.2..5, vol 0.05..5 and 0.01..730 days). Time is taken in days and
//! converted with sqrt(T) = sqrt(days) / sqrt(365), which keeps short expiries precise.
//! Prices may be in any unit (quote units per underlying unit, or quote native units per lot):
//! the formula is homogeneous in spot and strike.

use crate::math::{ln_q62, norm_cdf, sqrt};
use crate::wide::{div_q32, div_u128_by_u64, mul_q32, mul_q32_nonneg, Rounding};
use fixed::types::I32F32;

/// Call or put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// Right to buy at the strike.
    Call,
    /// Right to sell at the strike.
    Put,
}

/// Inputs of one valuation. All prices in the same unit.
#[derive(Clone, Copy, Debug)]
pub struct OptionInputs {
    /// Underlying price, > 0.
    pub spot: I32F32,
    /// Strike price, > 0.
    pub strike: I32F32,
    /// Annualised implied volatility (0.6 = 60%), >= 0.
    pub vol: I32F32,
    /// Time to expiry in days (365 per year), >= 0.
    pub days_to_expiry: I32F32,
    /// Call or put.
    pub kind: OptionKind,
}

/// Value and delta of one option on one unit of the underlying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionValue {
    /// Premium, in the unit of the spot price.
    pub value: I32F32,
    /// dV/dS: in [0, 1] for calls, [-1, 0] for puts.
    pub delta: I32F32,
}

/// Why a valuation could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PricingError {
    /// Spot or strike is not positive.
    NonPositivePrice,
    /// Vol or time is negative.
    NegativeInput,
    /// An intermediate left the Q32.32 range.
    Overflow,
}

/// 1 / sqrt(365) in Q32.32.
const INV_SQRT_365: I32F32 = I32F32::from_bits(224_808_863);
/// |d| beyond which N(d) is 0 or 1 to Q32.32 precision.
const D_SATURATION: i64 = 40;

/// Intrinsic value and the limiting delta (used at expiry or zero vol).
fn intrinsic(inputs: &OptionInputs) -> OptionValue {
    let (spot, strike) = (inputs.spot, inputs.strike);
    match inputs.kind {
        OptionKind::Call if spot > strike => OptionValue { value: spot - strike, delta: I32F32::ONE },
        OptionKind::Put if strike > spot => OptionValue { value: strike - spot, delta: -I32F32::ONE },
        _ => OptionValue { value: I32F32::ZERO, delta: I32F32::ZERO },
    }
}

/// `numerator / denominator` where the numerator is at 2^-62 scale, giving Q32.32, saturated at
/// ±`D_SATURATION` (N(d) does not change beyond it).
fn ratio_saturating(numerator_q62: i128, denominator: I32F32) -> I32F32 {
    let limit = I32F32::from_num(D_SATURATION);
    // (n * 2^-62) / (d * 2^-32) at 2^-32 scale = n * 2^2 / d.
    let magnitude = numerator_q62.unsigned_abs() << 2;
    let quotient = div_u128_by_u64((magnitude >> 64) as u64, magnitude as u64, denominator.to_bits() as u64)
        .map(|(q, _)| q)
        .filter(|q| *q <= limit.to_bits() as u64)
        .map(|q| I32F32::from_bits(q as i64))
        .unwrap_or(limit);
    if numerator_q62 < 0 {
        -quotient
    } else {
        quotient
    }
}

/// `ln(S/K) / (sigma sqrt(T))` from `ln(S/K)` at 2^-62 scale and the reciprocal at 2^-48
/// scale, Q32.32, magnitude rounded down and saturated at ±`D_SATURATION` like
/// [`ratio_saturating`], within 3 ulp of it and never above it in magnitude (`mulhi` drops up
/// to 2; `ln` truncated to 2^-48, times a reciprocal below 2^16, under 1 more).
fn ratio_by_inverse(numerator_q62: i128, inverse_q48: u64) -> I32F32 {
    let limit = D_SATURATION << 32;
    // |ln(S/K)| < 64 for Q32.32 prices, so the magnitude at 2^-48 scale fits in 54 bits.
    let magnitude_q48 = (numerator_q62.unsigned_abs() >> 14) as u64;
    // 2^-48 x 2^-48 = 2^-96 scale; the high word is at 2^-32 (`mulhi`: three 32-bit products,
    // where LLVM would turn an exact wide product into a 128-bit multiply SBF lacks).
    let quotient = crate::math::mulhi(magnitude_q48, inverse_q48).min(limit as u64) as i64;
    I32F32::from_bits(if numerator_q62 < 0 { -quotient } else { quotient })
}

/// An option's strike-and-tenor terms, computed once and reused across many spots and vols
/// (a risk-array refresh prices the same option in every scenario).
#[derive(Clone, Copy, Debug)]
pub struct OptionPricer {
    kind: OptionKind,
    strike: I32F32,
    ln_strike_q62: i128,
    sqrt_t: I32F32,
}

/// A spot's terms for one pricer: ln(S/K) and K/S, shared by every vol at that spot.
#[derive(Clone, Copy, Debug)]
pub struct SpotTerms {
    spot: I32F32,
    ln_moneyness_q62: i128,
    strike_over_spot: I32F32,
}

/// A vol's terms for one pricer: `sigma sqrt(T)` and its reciprocal, shared by every spot at
/// that vol (a refresh prices each of its few vol states at many spots): `d1` then takes a
/// product instead of a 128-bit division.
#[derive(Clone, Copy, Debug)]
pub struct VolTerms {
    /// The pricer's `sqrt(T)` these terms were made with (checked in debug builds).
    sqrt_t: I32F32,
    vol: I32F32,
    sigma_sqrt_t: I32F32,
    /// `2^80 / sigma_sqrt_t` (as bits): `1 / (sigma sqrt(T))` at 2^-48 scale, rounded down; 0
    /// when `sigma sqrt(T) <= 2^-16` (it would not fit), where the division is used instead.
    inverse_q48: u64,
}

impl SpotTerms {
    /// The spot these terms were prepared at.
    pub fn spot(&self) -> I32F32 {
        self.spot
    }
}

impl OptionPricer {
    /// Prepares an option with `strike` (> 0) and `days_to_expiry` (>= 0).
    pub fn new(kind: OptionKind, strike: I32F32, days_to_expiry: I32F32) -> Result<Self, PricingError> {
        if strike <= 0 {
            return Err(PricingError::NonPositivePrice);
        }
        if days_to_expiry < 0 {
            return Err(PricingError::NegativeInput);
        }
        let sqrt_days = sqrt(days_to_expiry, Rounding::Down).ok_or(PricingError::NegativeInput)?;
        let sqrt_t = mul_q32(sqrt_days, INV_SQRT_365, Rounding::Down).ok_or(PricingError::Overflow)?;
        let ln_strike_q62 = ln_q62(strike).ok_or(PricingError::NonPositivePrice)?;
        Ok(OptionPricer { kind, strike, ln_strike_q62, sqrt_t })
    }

    /// The terms of `spot` (> 0).
    pub fn spot_terms(&self, spot: I32F32) -> Result<SpotTerms, PricingError> {
        if spot <= 0 {
            return Err(PricingError::NonPositivePrice);
        }
        let ln_spot = ln_q62(spot).ok_or(PricingError::NonPositivePrice)?;
        let strike_over_spot = div_q32(self.strike, spot, Rounding::Down).ok_or(PricingError::Overflow)?;
        Ok(SpotTerms { spot, ln_moneyness_q62: ln_spot - self.ln_strike_q62, strike_over_spot })
    }

    /// The terms of `vol` (>= 0).
    pub fn vol_terms(&self, vol: I32F32) -> Result<VolTerms, PricingError> {
        if vol < 0 {
            return Err(PricingError::NegativeInput);
        }
        let sigma_sqrt_t = mul_q32(vol, self.sqrt_t, Rounding::Down).ok_or(PricingError::Overflow)?;
        let inverse_q48 = div_u128_by_u64(1 << 16, 0, sigma_sqrt_t.to_bits() as u64).map_or(0, |(q, _)| q);
        Ok(VolTerms { sqrt_t: self.sqrt_t, vol, sigma_sqrt_t, inverse_q48 })
    }

    /// Value and delta at a prepared spot and `vol` (>= 0).
    pub fn price(&self, terms: &SpotTerms, vol: I32F32) -> Result<OptionValue, PricingError> {
        self.price_at(terms, &self.vol_terms(vol)?)
    }

    /// Value and delta at a prepared spot and vol (`vol` from this pricer's
    /// [`OptionPricer::vol_terms`]: terms of another tenor would price at the wrong time).
    pub fn price_at(&self, terms: &SpotTerms, vol: &VolTerms) -> Result<OptionValue, PricingError> {
        debug_assert_eq!(vol.sqrt_t, self.sqrt_t, "vol terms of another pricer");
        let sigma_sqrt_t = vol.sigma_sqrt_t;
        if sigma_sqrt_t == 0 {
            return Ok(intrinsic(&OptionInputs {
                spot: terms.spot,
                strike: self.strike,
                vol: vol.vol,
                days_to_expiry: I32F32::ZERO,
                kind: self.kind,
            }));
        }
        let ratio = if vol.inverse_q48 == 0 {
            ratio_saturating(terms.ln_moneyness_q62, sigma_sqrt_t)
        } else {
            ratio_by_inverse(terms.ln_moneyness_q62, vol.inverse_q48)
        };
        let d1 = ratio.checked_add(sigma_sqrt_t >> 1).ok_or(PricingError::Overflow)?;
        let d2 = d1.checked_sub(sigma_sqrt_t).ok_or(PricingError::Overflow)?;
        let n_d1 = norm_cdf(d1);
        let n_d2 = norm_cdf(d2);
        // Per unit of spot: call = N(d1) - k N(d2); put = k (1 - N(d2)) - (1 - N(d1)).
        let k = terms.strike_over_spot;
        let (per_spot, delta) = match self.kind {
            OptionKind::Call => {
                let strike_leg = mul_q32_nonneg(k, n_d2, Rounding::Down).ok_or(PricingError::Overflow)?;
                (n_d1 - strike_leg, n_d1)
            }
            OptionKind::Put => {
                let strike_leg = mul_q32_nonneg(k, I32F32::ONE - n_d2, Rounding::Down).ok_or(PricingError::Overflow)?;
                (strike_leg - (I32F32::ONE - n_d1), n_d1 - I32F32::ONE)
            }
        };
        let per_spot = per_spot.max(I32F32::ZERO);
        let value = mul_q32_nonneg(per_spot, terms.spot, Rounding::Down).ok_or(PricingError::Overflow)?;
        Ok(OptionValue { value, delta })
    }
}

/// Black-Scholes value and delta (r = 0).
pub fn price_option(inputs: &OptionInputs) -> Result<OptionValue, PricingError> {
    if inputs.spot <= 0 || inputs.strike <= 0 {
        return Err(PricingError::NonPositivePrice);
    }
    if inputs.vol < 0 || inputs.days_to_expiry < 0 {
        return Err(PricingError::NegativeInput);
    }
    let pricer = OptionPricer::new(inputs.kind, inputs.strike, inputs.days_to_expiry)?;
    pricer.price(&pricer.spot_terms(inputs.spot)?, inputs.vol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(spot: f64, strike: f64, vol: f64, days: f64, kind: OptionKind) -> (f64, f64) {
        let n = |x: f64| 0.5 * libm::erfc(-x / core::f64::consts::SQRT_2);
        let t = days / 365.0;
        let sst = vol * t.sqrt();
        let d1 = (spot / strike).ln() / sst + sst / 2.0;
        let d2 = d1 - sst;
        match kind {
            OptionKind::Call => (spot * n(d1) - strike * n(d2), n(d1)),
            OptionKind::Put => (strike * n(-d2) - spot * n(-d1), n(d1) - 1.0),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn matches_double_precision_reference(
            log_spot in (0.01f64).ln()..(1e5f64).ln(),
            log_moneyness in (0.2f64).ln()..(5.0f64).ln(),
            vol in 0.05f64..5.0,
            log_days in (0.01f64).ln()..(730.0f64).ln(),
            is_call: bool,
        ) {
            let kind = if is_call { OptionKind::Call } else { OptionKind::Put };
            let inputs = OptionInputs {
                spot: I32F32::from_num(log_spot.exp()),
                strike: I32F32::from_num(log_spot.exp() * log_moneyness.exp()),
                vol: I32F32::from_num(vol),
                days_to_expiry: I32F32::from_num(log_days.exp()),
                kind,
            };
            // The reference prices the same quantised inputs.
            let (s, k, v, d) = (
                inputs.spot.to_num::<f64>(),
                inputs.strike.to_num::<f64>(),
                inputs.vol.to_num::<f64>(),
                inputs.days_to_expiry.to_num::<f64>(),
            );
            let (ref_value, ref_delta) = reference(s, k, v, d, kind);
            let ours = price_option(&inputs).unwrap();
            let value_error = (ours.value.to_num::<f64>() - ref_value).abs();
            let delta_error = (ours.delta.to_num::<f64>() - ref_delta).abs();
            prop_assert!(value_error <= 1e-6 * s, "value {} vs {} (S={} K={} v={} d={})", ours.value, ref_value, s, k, v, d);
            prop_assert!(delta_error <= 1e-6, "delta {} vs {} (S={} K={} v={} d={})", ours.delta, ref_delta, s, k, v, d);
        }
    }

    #[test]
    fn put_call_parity_holds() {
        let base = OptionInputs {
            spot: I32F32::from_num(150),
            strike: I32F32::from_num(160),
            vol: I32F32::from_num(0.6),
            days_to_expiry: I32F32::from_num(30),
            kind: OptionKind::Call,
        };
        let call = price_option(&base).unwrap();
        let put = price_option(&OptionInputs { kind: OptionKind::Put, ..base }).unwrap();
        // C - P = S - K with r = 0.
        let parity = (call.value - put.value) - (base.spot - base.strike);
        assert!(parity.abs() < I32F32::from_num(1e-6));
        assert_eq!(call.delta - put.delta, I32F32::ONE);
    }

    #[test]
    fn expiry_and_zero_vol_give_intrinsic() {
        let inputs = OptionInputs {
            spot: I32F32::from_num(150),
            strike: I32F32::from_num(140),
            vol: I32F32::from_num(0.6),
            days_to_expiry: I32F32::ZERO,
            kind: OptionKind::Call,
        };
        assert_eq!(price_option(&inputs).unwrap(), OptionValue { value: I32F32::from_num(10), delta: I32F32::ONE });
        let put = OptionInputs { kind: OptionKind::Put, vol: I32F32::ZERO, days_to_expiry: I32F32::ONE, ..inputs };
        assert_eq!(price_option(&put).unwrap(), OptionValue { value: I32F32::ZERO, delta: I32F32::ZERO });
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let good = OptionInputs {
            spot: I32F32::from_num(1),
            strike: I32F32::from_num(1),
            vol: I32F32::from_num(0.5),
            days_to_expiry: I32F32::from_num(1),
            kind: OptionKind::Call,
        };
        assert_eq!(price_option(&OptionInputs { spot: I32F32::ZERO, ..good }), Err(PricingError::NonPositivePrice));
        assert_eq!(price_option(&OptionInputs { strike: -I32F32::ONE, ..good }), Err(PricingError::NonPositivePrice));
        assert_eq!(price_option(&OptionInputs { vol: -I32F32::ONE, ..good }), Err(PricingError::NegativeInput));
        assert_eq!(
            price_option(&OptionInputs { days_to_expiry: -I32F32::ONE, ..good }),
            Err(PricingError::NegativeInput)
        );
    }
}

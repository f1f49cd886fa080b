//! Perp funding: a time-weighted mark premium that one small trade cannot move far.
//!
//! - **Mark premium** `P` (ppm of the oracle price, within +-`max_funding_rate_ppm`): each fill
//!   of `L` lots at a premium `q` over the oracle (clamped to the same range) moves it to
//!   `P + (q - P) x min(L, depth) / depth`, where `depth = funding_depth_lots`. Without fills,
//!   `P` decays linearly to zero over one funding period.
//! - **Accrual**: the funding index grows by `spot x integral of P(t) dt / period` over the time
//!   since the last accrual, exactly (closed form of the linear decay) in whole quote native
//!   units per lot, the fraction carried. Every fill accrues first, so a position opened at `t`
//!   pays only for time after `t`; `update_funding` accrues on demand (the keeper calls it on a
//!   schedule).
//! - **Bound**: a fill of `L` lots changes `P` by at most `2 x max_rate x min(L, depth) / depth`;
//!   that change, decaying at least as fast as `exp(-t / period)` however later fills refresh
//!   it, moves the funding any one lot pays over all time by at most
//!   `2 x max_rate x min(L, depth) / depth x spot`. A one-lot wash trade on a market with a depth
//!   of 10,000 lots and a 1% cap moves any position's funding by at most 0.0002% of its notional.

use crate::error::MarginError;
use crate::state::{Market, PPM};
use anchor_lang::prelude::*;
use fixed::types::I32F32;

/// Premium of a fill at `price_per_lot_native` over spot per lot, ppm, clamped to the market's cap.
pub fn fill_premium_ppm(market: &Market, spot: I32F32, price_per_lot_native: i64) -> i64 {
    let spot_bits = spot.to_bits() as i128;
    if spot_bits <= 0 {
        return 0;
    }
    let premium = (((price_per_lot_native as i128) << 32) - spot_bits) * PPM as i128 / spot_bits;
    let cap = market.max_funding_rate_ppm as i128;
    premium.clamp(-cap, cap) as i64
}

/// The mark premium at `now`, after linear decay since it was last set (towards zero).
pub fn decayed_premium_ppm(market: &Market, now: i64) -> i64 {
    let period = market.funding_period_seconds.max(1) as i128;
    let age = (now.saturating_sub(market.funding_premium_ts).max(0) as i128).min(period);
    (market.funding_premium_ppm as i128 * (period - age) / period) as i64
}

/// New (index, carry) after accruing the decaying premium from `from_ts` to `to_ts` with spot per
/// lot `spot_bits` (Q32.32). Pure, so tests and clients can follow the arithmetic.
#[allow(clippy::too_many_arguments)]
pub fn accrue_index(
    index: i64,
    carry_bits: i64,
    premium_ppm: i64,
    premium_ts: i64,
    spot_bits: i64,
    from_ts: i64,
    to_ts: i64,
    period_seconds: u32,
) -> Result<(i64, i64)> {
    let overflow = || error!(MarginError::MathOverflow);
    let period = period_seconds.max(1) as i128;
    // Seconds since the premium was set at both ends, the far end capped where it reaches zero.
    let start = (from_ts.saturating_sub(premium_ts).max(0) as i128).min(period);
    let end = (to_ts.saturating_sub(premium_ts).max(0) as i128).min(period);
    if end <= start || premium_ppm == 0 {
        return Ok((index, carry_bits));
    }
    // integral of (1 - s / T) ds from start to end = (2T(end - start) - (end^2 - start^2)) / 2T;
    // the index grows by P / 1e6 x spot x integral / T.
    let seconds_sq = 2 * period * (end - start) - (end * end - start * start);
    let numerator = (premium_ppm as i128)
        .checked_mul(spot_bits as i128)
        .and_then(|v| v.checked_mul(seconds_sq))
        .ok_or_else(overflow)?;
    let denominator = PPM as i128 * 2 * period * period;
    let increment_bits = numerator.div_euclid(denominator) + carry_bits as i128;
    let whole = increment_bits >> 32; // floor
    let carry = increment_bits - (whole << 32);
    let index = (index as i128).checked_add(whole).ok_or_else(overflow)?;
    Ok((i64::try_from(index).map_err(|_| overflow())?, carry as i64))
}

/// Accrues a perp's funding index up to `now` at spot per lot `spot` (no-op for options and
/// when already accrued at `now`).
pub fn accrue(market: &mut Market, spot: I32F32, now: i64) -> Result<()> {
    if !market.is_perp() || now <= market.funding_last_ts {
        return Ok(());
    }
    let (index, carry) = accrue_index(
        market.funding_index_native,
        market.funding_carry_bits,
        market.funding_premium_ppm,
        market.funding_premium_ts,
        spot.to_bits(),
        market.funding_last_ts,
        now,
        market.funding_period_seconds,
    )?;
    market.funding_index_native = index;
    market.funding_carry_bits = carry;
    market.funding_last_ts = now;
    Ok(())
}

/// Moves the mark premium towards a fill's premium by the fill's share of the market depth.
/// Call after [`accrue`] at the same `now`.
pub fn record_fill(market: &mut Market, spot: I32F32, price_per_lot_native: i64, lots: i64, now: i64) {
    if !market.is_perp() {
        return;
    }
    let current = decayed_premium_ppm(market, now) as i128;
    let observed = fill_premium_ppm(market, spot, price_per_lot_native) as i128;
    let depth = market.funding_depth_lots.max(1) as i128;
    let weight = (lots.unsigned_abs() as i128).min(depth);
    let cap = market.max_funding_rate_ppm as i128;
    market.funding_premium_ppm = (current + (observed - current) * weight / depth).clamp(-cap, cap) as i64;
    market.funding_premium_ts = now;
}

#[cfg(test)]
mod tests {
    use super::accrue_index;

    const SPOT_BITS: i64 = 150_000i64 << 32; // $150 per lot of 0.001 at 6 decimals

    #[test]
    fn a_premium_held_for_a_whole_decay_pays_half_a_period() {
        // P = 1% set at t = 0, period 3600 s: over [0, 3600] the average is 0.5%, so one lot pays
        // 0.5% x 150,000 = 750 native units.
        let (index, carry) = accrue_index(0, 0, 10_000, 0, SPOT_BITS, 0, 3_600, 3_600).unwrap();
        assert_eq!((index, carry), (750, 0));
        // Nothing more after it decayed, however long.
        assert_eq!(accrue_index(index, carry, 10_000, 0, SPOT_BITS, 3_600, 3 * 86_400, 3_600).unwrap(), (750, 0));
    }

    #[test]
    fn splitting_the_interval_changes_nothing() {
        let whole = accrue_index(0, 0, -7_777, 100, SPOT_BITS, 100, 3_000, 3_600).unwrap();
        let mut state = (0, 0);
        for (from, to) in [(100, 101), (101, 777), (777, 2_999), (2_999, 3_000)] {
            state = accrue_index(state.0, state.1, -7_777, 100, SPOT_BITS, from, to, 3_600).unwrap();
        }
        // Each piece floors its fraction into the carry: at most one unit of Q32.32 per piece.
        let total = |(index, carry): (i64, i64)| ((index as i128) << 32) + carry as i128;
        assert!((total(whole) - total(state)).abs() <= 4, "{whole:?} vs {state:?}");
    }
}

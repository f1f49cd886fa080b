//! Rules every liquidation step follows (the instructions are `liquidate_position` and
//! `liquidate_token`).
//!
//! - An account becomes liquidatable when its maintenance health is negative; the first step
//!   marks it `being_liquidated`.
//! - While marked, steps continue until its liquidation-end health (init weights, oracle
//!   prices, initial requirement) is >= 0, and never beyond. The liquidator states the most it
//!   will take; the program **chooses the size** ([`choose_step`]): the smallest size that
//!   brings liquidation-end health to zero when the stated maximum reaches it (so a small change
//!   of state, a dust deposit, never turns an exact step into a refusal), otherwise the maximum
//!   itself, which is accepted only if its last unit still raised health (it is not past the
//!   size that maximises health: over-liquidation of hedged books is refused).
//! - Every step must strictly improve the liquidatee's liquidation-end health.
//! - The flag clears as soon as the account is verified healthy again: by a step reaching the
//!   target, by `health_check` seeing maintenance health >= 0 (anyone may call it), or by a
//!   bankruptcy resolution.
//! - The liquidator acts with its own margin account, cannot be the liquidatee, and must have
//!   init health >= 0 afterwards.
//! - The liquidatee pays the group's liquidation fee; the insurance share of it goes to the
//!   insurance fund, the rest to the liquidator as a price improvement.

use crate::error::MarginError;
use crate::health::HealthInputs;
use crate::state::{Group, MarginAccount, PPM};
use anchor_lang::prelude::*;
use fixed::types::{I32F32, I80F48};
use risk_engine::health::HealthKind;
use risk_engine::wide::Rounding;

/// Checks that `liquidatee` may be liquidated now and returns its liquidation-end health
/// (`inputs` must cover it; the instructions load them once for every state they evaluate).
pub fn start(inputs: &HealthInputs, group: &Group, liquidatee: &MarginAccount) -> Result<I80F48> {
    if liquidatee.being_liquidated == 0 {
        let maint = inputs.health(group, liquidatee, HealthKind::Maint)?.health;
        require!(maint < 0, MarginError::NotLiquidatable);
    }
    let end = inputs.health(group, liquidatee, HealthKind::LiquidationEnd)?.health;
    require!(end < 0, MarginError::LiquidationComplete);
    Ok(end)
}

/// Most liquidatee health evaluations [`choose_step`] spends searching for the smallest size
/// (each is one health computation; the search is exact long before this on every book tried).
pub const MAX_STEP_SEARCH: u32 = 24;

/// Where the line from `(0, low)` to `(span, high)` crosses zero, rounded up: the regula-falsi
/// offset ([`choose_step`]); `None` when `high <= low` or it cannot be computed.
fn interpolated_offset(span: i64, low: I80F48, high: I80F48) -> Option<i64> {
    let denominator = high.saturating_sub(low);
    if denominator <= 0 {
        return None;
    }
    I80F48::from_num(span).checked_mul(low.saturating_neg())?.checked_div(denominator)?.checked_ceil()?.checked_to_num::<i64>()
}

/// Chooses a step size in `1..=max` from `end(n)`, the liquidatee's liquidation-end health after
/// a step of `n`, and `before` (its health now, < 0). Liquidation-end health is concave in the
/// size (a requirement that is a maximum of linear scenario losses, weights that count assets
/// below liabilities), which the search relies on only for speed, never for correctness: every
/// size it returns was evaluated.
///
/// - If `end(max) >= 0`: the smallest `n` with `end(n) >= 0`: `max` itself when `end(max - 1)`
///   falls short and the interpolated size between now and `max` does too (three evaluations:
///   a keeper sizing its step exactly), otherwise bracketed by
///   regula falsi (Illinois) between a size that falls short and one that reaches zero; if the
///   bracket has not closed after [`MAX_STEP_SEARCH`] evaluations, the smallest reaching size
///   found.
/// - Otherwise `max`, if `end(max) > end(max - 1)` (its last unit still improved health);
///   `LiquidationPastPeak` if not.
///
/// The chosen step must improve health: `LiquidationDoesNotImprove` otherwise.
pub fn choose_step(before: I80F48, max: i64, mut end: impl FnMut(i64) -> Result<I80F48>) -> Result<(i64, I80F48)> {
    require!(max > 0, MarginError::ZeroQuantity);
    let at_max = end(max)?;
    if at_max < 0 {
        if max > 1 {
            require!(at_max > end(max - 1)?, MarginError::LiquidationPastPeak);
        }
        require!(at_max > before, MarginError::LiquidationDoesNotImprove);
        return Ok((max, at_max));
    }
    // A maximum one unit above the last size short of zero is the smallest reaching size when
    // health is concave in the size: what a keeper that sizes its step exactly sends, settled
    // in two or three evaluations instead of a search (a liquidation step stays within compute
    // limits for books whose health is expensive).
    if max > 1 && end(max - 1)? < 0 {
        // Unless the interpolated size already reaches it: health need not be concave in the
        // size (a correlation group's credit, a token step's rounding), and a liquidator must
        // not pick a later crossing of zero by stating it as its maximum (review finding).
        let guess = interpolated_offset(max, before, at_max).filter(|g| (1..max - 1).contains(g));
        let earlier = match guess {
            Some(g) => end(g)? >= 0,
            None => false,
        };
        if !earlier {
            require!(at_max > before, MarginError::LiquidationDoesNotImprove);
            return Ok((max, at_max));
        }
    }
    // Bracket: end(lo) < 0 <= end(hi). Interpolation values (halved on a repeated side, the
    // Illinois rule) are kept apart from the true ones.
    let (mut lo, mut hi, mut end_hi) = (0i64, max, at_max);
    let (mut weight_lo, mut weight_hi) = (before, at_max);
    let mut last_side = 0i8;
    for _ in 0..MAX_STEP_SEARCH {
        if hi - lo <= 1 {
            break;
        }
        // Interpolated offset; bisection whenever it cannot be computed.
        let offset = interpolated_offset(hi - lo, weight_lo, weight_hi).unwrap_or((hi - lo) / 2);
        let candidate = (lo + offset).clamp(lo + 1, hi - 1);
        let at = end(candidate)?;
        if at >= 0 {
            hi = candidate;
            end_hi = at;
            weight_hi = at;
            if last_side == 1 {
                weight_lo /= 2;
            }
            last_side = 1;
        } else {
            lo = candidate;
            weight_lo = at;
            if last_side == -1 {
                weight_hi /= 2;
            }
            last_side = -1;
        }
    }
    require!(end_hi > before, MarginError::LiquidationDoesNotImprove);
    Ok((hi, end_hi))
}

/// Adjusts a step chosen by [`choose_step`] so that it leaves no position under the market's
/// minimum: `held` is the liquidatee's position (absolute lots), `max` the liquidator's
/// maximum (already clamped to `held`), `min_lots` the market's `min_position_lots`, and
/// `(chosen, chosen_end)` the step and the liquidation-end health after it. When the remainder
/// `held - chosen` is zero or at least the minimum, the step stands. Otherwise:
///
/// - the whole position, when `max` allows it and it improves health (it may go past the
///   target by fewer than `min_lots` lots: a remainder nobody would be paid to liquidate is
///   worse than a slightly larger step);
/// - else, for a position above the minimum, the largest step that leaves exactly the minimum,
///   if it improves health;
/// - else, for a position already at or under the minimum (possible only in a liquidator's
///   account, or in a market listed before the minimum existed), the chosen step;
/// - else `LiquidationLeavesDust`.
pub fn avoid_dust(
    before: I80F48,
    held: i64,
    max: i64,
    min_lots: i64,
    (chosen, chosen_end): (i64, I80F48),
    mut end: impl FnMut(i64) -> Result<I80F48>,
) -> Result<(i64, I80F48)> {
    let remainder = held - chosen;
    if remainder == 0 || remainder >= min_lots {
        return Ok((chosen, chosen_end));
    }
    if max >= held {
        let at = end(held)?;
        if at > before {
            return Ok((held, at));
        }
    }
    if held > min_lots {
        let leave_min = held - min_lots;
        let at = end(leave_min)?;
        require!(at > before, MarginError::LiquidationLeavesDust);
        return Ok((leave_min, at));
    }
    Ok((chosen, chosen_end))
}

/// Checks the liquidator after the chosen step: init health >= 0.
pub fn check_liquidator(inputs: &HealthInputs, group: &Group, liquidator: &MarginAccount) -> Result<()> {
    let liquidator_init = inputs.health(group, liquidator, HealthKind::Init)?.health;
    require!(liquidator_init >= 0, MarginError::InitHealthNegative);
    Ok(())
}

/// A health in quote native units, rounded down, for events (saturated at the `i64` range).
pub fn health_native_floor(health: I80F48) -> i64 {
    risk_engine::wide::i80f48_to_int(health, risk_engine::wide::Rounding::Down).unwrap_or(if health < 0 { i64::MIN } else { i64::MAX })
}

/// A liquidation fee and who gets it, quote native units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeSplit {
    /// What the liquidatee pays.
    pub total_native: i64,
    /// The liquidator's part (a price improvement for positions, collateral for tokens).
    pub liquidator_native: i64,
    /// The insurance fund's part.
    pub insurance_native: i64,
}

/// The liquidation fee policy every liquidation path follows: the liquidatee pays
/// `liquidation_fee_ppm` of what a step moves, and each amount that moves is rounded once,
/// against the liquidatee; the insurance fund takes `insurance_share_ppm` of the fee, rounded
/// down, the liquidator the rest.
///
/// - A position step: the fee per lot on its risk per lot ([`risk_per_lot`]), rounded up and at
///   least one native unit ([`liquidation_fee`]); the liquidator's part moves the price.
/// - A token step: collateral worth the debt repaid plus the fee on it, rounded up once as a
///   whole ([`asset_for_liability`]; rounding the fee on its own first made about 2% of step
///   sizes lower health and be refused, review finding); the insurance part is the share of
///   the exact fee, rounded down ([`token_insurance_fee`]).
pub fn liquidation_fee(group: &Group, base: I80F48) -> Result<FeeSplit> {
    let scale = (PPM as i128) << 48; // base is I80F48: 48 fractional bits
    let numerator = base.to_bits().max(0).checked_mul(group.liquidation_fee_ppm as i128).ok_or(MarginError::MathOverflow)?;
    let rounded = numerator.checked_add(scale - 1).ok_or(MarginError::MathOverflow)? / scale;
    let total = i64::try_from(rounded).map_err(|_| MarginError::MathOverflow)?.max(1);
    let insurance = ((total as i128 * group.insurance_share_ppm as i128) / PPM as i128) as i64;
    Ok(FeeSplit { total_native: total, liquidator_native: total - insurance, insurance_native: insurance })
}

/// Price and fees of taking over a position, per lot, whole quote native units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PositionTerms {
    /// Price the fill executes at: the mark moved by the liquidator's part of the fee.
    pub price_per_lot_native: i64,
    /// Insurance part of the fee, paid by the liquidatee per lot.
    pub insurance_fee_per_lot_native: i64,
    /// Whether the liquidatee is long (it sells) or short (it buys back).
    pub liquidatee_long: bool,
}

/// Risk of one lot of a position taken over, quote native units per lot (Q32.32), which the
/// liquidation fee is charged on: the spot per lot for a perp; for an option, the larger of its
/// mark and its worst scenario loss (for the direction held) scaled to the perp's (divided by
/// the grid's price range), so a perp and a deep in-the-money option pay about the same, and a
/// long option never pays a fee larger than a fee-rate share of what it can lose.
pub fn risk_per_lot(market: &crate::state::Market, held_lots: i64, mark: I32F32, spot: I32F32, price_range: I32F32) -> Result<I32F32> {
    if market.market_kind()?.option_kind().is_none() {
        return Ok(spot);
    }
    let len = (market.array_len as usize).min(market.risk_array_bits.len());
    let cells = &market.risk_array_bits[..len];
    let worst_bits = if held_lots > 0 {
        cells.iter().copied().min().unwrap_or(0).min(0).checked_neg().ok_or(MarginError::MathOverflow)?
    } else {
        cells.iter().copied().max().unwrap_or(0).max(0)
    };
    require!(price_range > 0, MarginError::InvalidGridParams);
    let scaled = risk_engine::wide::div_q32(I32F32::from_bits(worst_bits), price_range, Rounding::Up).ok_or(MarginError::MathOverflow)?;
    Ok(scaled.max(mark))
}

/// Terms for a position of `held_lots` with mark `mark` per lot and risk `risk` per lot (see
/// [`risk_per_lot`]): the fee per lot is [`liquidation_fee`] on the risk; prices round against
/// the liquidatee.
pub fn position_terms(group: &Group, held_lots: i64, mark: I32F32, risk: I32F32) -> Result<PositionTerms> {
    let fee = liquidation_fee(group, I80F48::from(risk))?;
    let liquidatee_long = held_lots > 0;
    let price = if liquidatee_long {
        (mark.floor().to_num::<i64>() - fee.liquidator_native).max(0)
    } else {
        mark.ceil().to_num::<i64>() + fee.liquidator_native
    };
    Ok(PositionTerms { price_per_lot_native: price, insurance_fee_per_lot_native: fee.insurance_native, liquidatee_long })
}

/// Applies a takeover of `lots` on copies of both accounts. Returns (liquidator, liquidatee,
/// change of long open interest).
#[allow(clippy::too_many_arguments)]
pub fn simulate_position(
    liquidator: &MarginAccount,
    liquidatee: &MarginAccount,
    market_key: &Pubkey,
    market: &crate::state::Market,
    quote_bank: &Pubkey,
    quote_bank_index: u16,
    terms: &PositionTerms,
    lots: i64,
) -> Result<(Box<MarginAccount>, Box<MarginAccount>, i64)> {
    let (mut taker, mut victim) = (crate::state::boxed_copy(liquidator), crate::state::boxed_copy(liquidatee));
    let victim_lots = if terms.liquidatee_long { -lots } else { lots };
    let price = terms.price_per_lot_native;
    let taker_fill = crate::positions::apply_fill(&mut taker, market_key, market, quote_bank, quote_bank_index, -victim_lots, price)?;
    let victim_fill = crate::positions::apply_fill(&mut victim, market_key, market, quote_bank, quote_bank_index, victim_lots, price)?;
    let paid = lots.checked_mul(terms.insurance_fee_per_lot_native).ok_or(MarginError::MathOverflow)?;
    victim.add_to_balance(quote_bank, quote_bank_index, -paid)?;
    Ok((taker, victim, taker_fill.long_interest_change() + victim_fill.long_interest_change()))
}

/// The token side of a liquidation: which banks, at which oracle prices per native unit.
#[derive(Clone, Copy, Debug)]
pub struct TokenTerms {
    pub quote_bank: Pubkey,
    pub quote_bank_index: u16,
    pub quote_price: I80F48,
    pub asset_bank: Pubkey,
    pub asset_bank_index: u16,
    pub asset_price: I80F48,
}

/// Collateral (asset native units) given for `liability_native` of quote debt: the debt plus
/// the fee on it (`x (1 + fee)`, exact), valued at the oracle prices, rounded up once (against
/// the liquidatee; see [`liquidation_fee`]).
pub fn asset_for_liability(group: &Group, terms: &TokenTerms, liability_native: i64) -> Result<i64> {
    let scaled = (liability_native as i128).checked_mul((PPM + group.liquidation_fee_ppm) as i128).ok_or(MarginError::MathOverflow)?;
    // One division: x (1e6 + fee ppm) qp / (1e6 ap).
    let value = I80F48::checked_from_num(scaled).and_then(|v| v.checked_mul(terms.quote_price)).ok_or(MarginError::MathOverflow)?;
    let per_unit = terms.asset_price.checked_mul(I80F48::from_num(PPM)).ok_or(MarginError::MathOverflow)?;
    let units = value.checked_div(per_unit).ok_or(MarginError::MathOverflow)?;
    // Checked: a wrap would hand the liquidatee collateral and the liquidator an unpayable debt.
    units.checked_ceil().and_then(|u| u.checked_to_num::<i64>()).ok_or(error!(MarginError::MathOverflow))
}

/// The insurance fund's part of a token step's fee: `insurance_share x fee x liability`,
/// rounded down (see [`liquidation_fee`]).
pub fn token_insurance_fee(group: &Group, liability_native: i64) -> i64 {
    let product = liability_native.max(0) as i128 * group.liquidation_fee_ppm as i128 * group.insurance_share_ppm as i128;
    (product / (PPM as i128 * PPM as i128)) as i64
}

/// Applies a token liquidation of `liability_native` on copies of both accounts. Returns
/// (liquidator, liquidatee, insurance fee).
pub fn simulate_token(
    group: &Group,
    terms: &TokenTerms,
    liquidator: &MarginAccount,
    liquidatee: &MarginAccount,
    liability_native: i64,
) -> Result<(Box<MarginAccount>, Box<MarginAccount>, i64)> {
    let asset = asset_for_liability(group, terms, liability_native)?;
    let collateral =
        liquidatee.balance_index(&terms.asset_bank).map(|i| liquidatee.balances[i].balance_native).unwrap_or(0);
    require!(asset <= collateral, MarginError::LiquidationAmountTooLarge);
    let insurance = token_insurance_fee(group, liability_native);
    let (mut taker, mut victim) = (crate::state::boxed_copy(liquidator), crate::state::boxed_copy(liquidatee));
    victim.add_to_balance(&terms.quote_bank, terms.quote_bank_index, liability_native)?;
    victim.add_to_balance(&terms.asset_bank, terms.asset_bank_index, -asset)?;
    taker.add_to_balance(&terms.quote_bank, terms.quote_bank_index, -(liability_native + insurance))?;
    taker.add_to_balance(&terms.asset_bank, terms.asset_bank_index, asset)?;
    Ok((taker, victim, insurance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Market, MarketKind};
    use risk_engine::risk_array::{compute_risk_array, MarketState};
    use risk_engine::scenario::GridParams;

    const SPOT: i64 = 150_000; // $150 per lot of 0.001 at 6 decimals

    fn group() -> Group {
        let mut group: Group = bytemuck::Zeroable::zeroed();
        group.liquidation_fee_ppm = 20_000;
        group.insurance_share_ppm = 250_000;
        group
    }

    fn market(kind: MarketKind, strike: i64, seconds_to_expiry: i64) -> Market {
        let mut market: Market = bytemuck::Zeroable::zeroed();
        market.kind = kind as u8;
        market.strike_per_lot_native = strike;
        market.expiry_ts = seconds_to_expiry;
        let params = GridParams::default();
        let spot = I32F32::from_num(SPOT);
        let vol = I32F32::from_num(0.6);
        let state = MarketState { instrument: market.instrument(0).unwrap(), spot, vol };
        let array = compute_risk_array(&state, &params, &params.scenarios().unwrap()).unwrap();
        market.store_risk_array(&array, I32F32::ZERO, spot, vol, 0);
        market
    }

    fn fee_per_lot(market: &Market, held: i64) -> (i64, i64) {
        let spot = I32F32::from_num(SPOT);
        let mark = if market.is_option() { I32F32::from_bits(market.array_value_bits) } else { spot };
        let risk = risk_per_lot(market, held, mark, spot, GridParams::default().price_range).unwrap();
        let terms = position_terms(&group(), held, mark, risk).unwrap();
        let fee = if held > 0 { mark.floor().to_num::<i64>() - terms.price_per_lot_native } else { terms.price_per_lot_native - mark.ceil().to_num::<i64>() };
        (fee + terms.insurance_fee_per_lot_native, mark.to_num::<i64>())
    }

    #[test]
    fn a_perp_pays_the_fee_on_spot() {
        let (fee, _) = fee_per_lot(&market(MarketKind::Perp, 0, 0), 10);
        assert_eq!(fee, SPOT * 2 / 100);
    }

    #[test]
    fn a_long_one_hour_option_pays_a_share_of_its_value_not_of_spot() {
        // ATM call, one hour to expiry: worth about 0.33% of spot. The old fee (2% of spot) was
        // six times its value: the liquidator got it for nothing.
        let call = market(MarketKind::Call, SPOT, 3_600);
        let (fee, value) = fee_per_lot(&call, 10);
        assert!(value > 0 && value < SPOT / 100, "value {value}");
        // Its worst loss is its value, scaled by 1 / 16%: the fee is 2% / 16% = 12.5% of value.
        assert!(fee * 100 <= value * 13, "fee {fee} vs value {value}");
        assert!(fee * 8 < SPOT * 2 / 100, "fee {fee} is far below the perp's");
    }

    #[test]
    fn a_short_deep_in_the_money_option_pays_about_a_perps_fee_and_a_worthless_one_goes_for_its_value() {
        let call = market(MarketKind::Call, SPOT / 2, 30 * 86_400);
        let (fee, _) = fee_per_lot(&call, -10);
        let perp_fee = SPOT * 2 / 100;
        assert!(fee >= perp_fee * 9 / 10 && fee <= perp_fee * 11 / 10, "fee {fee} vs perp {perp_fee}");
        let wing = market(MarketKind::Call, SPOT * 3, 3_600);
        let (fee, value) = fee_per_lot(&wing, 10);
        assert_eq!(value, 0);
        assert!(fee <= 1, "a worthless long is taken at its value (0), the fee floored there");
    }

    /// Liquidation-end health after `n` lots of a 100-lot position: -95 before, +10 per lot up
    /// to a peak at 90 lots, then falling (a hedge beyond it).
    fn end(n: i64) -> Result<I80F48> {
        Ok(I80F48::from_num((10 * n - 95).min(805 - (n - 90) * 20)))
    }

    /// A maximum sized exactly (one unit above the last size short of the target) is taken in
    /// two evaluations; a larger one is searched down to the same size.
    #[test]
    fn an_exact_maximum_is_settled_without_a_search() {
        let calls = core::cell::Cell::new(0);
        let end = |n: i64| {
            calls.set(calls.get() + 1);
            Ok(I80F48::from_num(n - 1_000))
        };
        assert_eq!(choose_step(I80F48::from_num(-1_000), 1_000, end).unwrap().0, 1_000);
        assert!(calls.get() <= 3, "{} evaluations", calls.get());
        calls.set(0);
        assert_eq!(choose_step(I80F48::from_num(-1_000), 5_000, end).unwrap().0, 1_000);
        assert!(calls.get() > 3);
        // Not concave: health reaches zero at 100, falls back below it from 700, and crosses
        // again at 1,000. Stating 1,000 does not take 1,000 when the interpolated size (667)
        // already reaches.
        let bumpy = |n: i64| {
            Ok(I80F48::from_num(match n {
                100..700 => 10,
                1_000.. => 500,
                _ => n - 1_000,
            }))
        };
        let (size, _) = choose_step(I80F48::from_num(-1_000), 1_000, bumpy).unwrap();
        assert!(size < 1_000, "{size}");
    }

    #[test]
    fn a_step_leaving_at_least_the_minimum_stands() {
        let before = end(0).unwrap();
        let chosen = choose_step(before, 100, end).unwrap();
        assert_eq!(chosen.0, 10);
        assert_eq!(avoid_dust(before, 100, 100, 10, chosen, end).unwrap(), chosen);
        // Taking everything leaves nothing: no dust either.
        assert_eq!(avoid_dust(before, 100, 100, 10, (100, end(100).unwrap()), end).unwrap().0, 100);
    }

    #[test]
    fn a_step_leaving_dust_takes_the_whole_position_when_the_maximum_allows() {
        let before = end(0).unwrap();
        // A 15-lot position, minimum 10: the target step (10 lots) would leave 5.
        let chosen = choose_step(before, 15, end).unwrap();
        assert_eq!(chosen.0, 10);
        assert_eq!(avoid_dust(before, 15, 15, 10, chosen, end).unwrap(), (15, end(15).unwrap()));
        // The liquidator would take only 12: the step leaves exactly the minimum instead.
        let chosen = choose_step(before, 12, end).unwrap();
        assert_eq!(avoid_dust(before, 15, 12, 10, chosen, end).unwrap(), (5, end(5).unwrap()));
    }

    #[test]
    fn a_step_that_must_leave_dust_and_cannot_improve_otherwise_is_refused() {
        // 95 lots, minimum 10: the chosen 90 (the peak) leaves 5; the whole position is past
        // the peak but still better than before, so it is taken.
        let before = end(0).unwrap();
        assert_eq!(avoid_dust(before, 95, 95, 10, (90, end(90).unwrap()), end).unwrap().0, 95);
        // Health after the whole position no better than before, and leaving the minimum
        // (85 lots) no better either: refused.
        let flat = |n: i64| -> Result<I80F48> { Ok(I80F48::from_num(if n == 90 { 1 } else { -95 })) };
        let result = avoid_dust(I80F48::from_num(-95), 95, 95, 10, (90, I80F48::from_num(1)), flat);
        assert_eq!(result.unwrap_err(), error!(MarginError::LiquidationLeavesDust));
    }

    #[test]
    fn a_position_already_under_the_minimum_is_taken_whole_or_as_chosen() {
        let before = end(0).unwrap();
        assert_eq!(avoid_dust(before, 8, 8, 10, (3, end(3).unwrap()), end).unwrap().0, 8);
        assert_eq!(avoid_dust(before, 8, 5, 10, (5, end(5).unwrap()), end).unwrap().0, 5);
    }
}

#[cfg(test)]
mod conversion_tests {
    use super::*;

    /// The one fee policy: rounded up, at least one native unit, the insurance share rounded
    /// down; a position's fee per lot is the same policy on its risk per lot, and a token
    /// step's collateral is the debt plus that fee at the oracle prices, rounded up.
    #[test]
    fn every_path_charges_the_same_fee_rounded_against_the_liquidatee() {
        let mut group: Group = bytemuck::Zeroable::zeroed();
        group.liquidation_fee_ppm = 20_000;
        group.insurance_share_ppm = 250_000;
        let fee = |base: f64| liquidation_fee(&group, I80F48::from_num(base)).unwrap();
        assert_eq!(fee(135_000.0), FeeSplit { total_native: 2_700, liquidator_native: 2_025, insurance_native: 675 });
        assert_eq!(fee(135_000.5).total_native, 2_701, "a fraction of a unit of fee rounds up");
        assert_eq!(fee(1.0), FeeSplit { total_native: 1, liquidator_native: 1, insurance_native: 0 });
        assert_eq!(fee(0.0).total_native, 1, "at least one native unit");
        let terms = position_terms(&group, 10, I32F32::from_num(135_000), I32F32::from_num(135_000)).unwrap();
        assert_eq!((terms.price_per_lot_native, terms.insurance_fee_per_lot_native), (135_000 - 2_025, 675));
        let short = position_terms(&group, -10, I32F32::from_num(135_000), I32F32::from_num(135_000)).unwrap();
        assert_eq!(short.price_per_lot_native, 135_000 + 2_025);
        let tokens = TokenTerms {
            quote_bank: Pubkey::new_unique(),
            quote_bank_index: 0,
            quote_price: I80F48::ONE,
            asset_bank: Pubkey::new_unique(),
            asset_bank_index: 1,
            asset_price: I80F48::from_num(0.375),
        };
        // 1,000 of debt: fee 20, collateral 1,020 / 0.375 = 2,720.
        assert_eq!(asset_for_liability(&group, &tokens, 1_000).unwrap(), 2_720);
        // 1,001: 1,021.02 / 0.375 = 2,722.72, rounded up once (not the fee first: 1,022 would
        // give 2,726, and one more unit of debt would cost the liquidatee 2 units of value).
        assert_eq!(asset_for_liability(&group, &tokens, 1_001).unwrap(), 2_723);
        // The insurance part: 25% of 2% of the debt, rounded down.
        assert_eq!((token_insurance_fee(&group, 1_000), token_insurance_fee(&group, 1_001), token_insurance_fee(&group, 199)), (5, 5, 0));
        // Every extra unit of debt costs the liquidatee at most 1.02 units of value plus the
        // rounding of one asset unit: never two units for one.
        let value = |x: i64| asset_for_liability(&group, &tokens, x).unwrap() as f64 * 0.375;
        for x in 1..3_000 {
            assert!(value(x) - value(x - 1) <= 1.02 + 0.375 + 1e-9, "{x}");
        }
        group.liquidation_fee_ppm = 100_000;
        assert!(liquidation_fee(&group, I80F48::from_num(i64::MAX / 4)).is_ok());
        assert!(liquidation_fee(&group, I80F48::MAX).is_err(), "overflow is an error, not a wrap");
    }

    #[test]
    fn a_collateral_amount_beyond_i64_is_an_error_not_a_wrap() {
        // A 9-decimal token at $0.000001 (1e-9 quote native units per native unit) against
        // 10,000 USDC of debt: 1.02e19 native units, beyond i64. It used to wrap to -8.25e18,
        // which passed `asset <= collateral` and credited the liquidatee.
        let mut group: Group = bytemuck::Zeroable::zeroed();
        group.liquidation_fee_ppm = 20_000;
        let terms = TokenTerms {
            quote_bank: Pubkey::new_unique(),
            quote_bank_index: 0,
            quote_price: I80F48::ONE,
            asset_bank: Pubkey::new_unique(),
            asset_bank_index: 1,
            asset_price: I80F48::from_num(1e-9),
        };
        assert!(asset_for_liability(&group, &terms, 10_000_000_000).is_err());
        // At the edge: the largest liability whose price still fits is fine and positive.
        let ok = asset_for_liability(&group, &terms, 9_000_000_000).unwrap();
        assert!(ok > 0);
    }
}

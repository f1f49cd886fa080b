//! Portfolio margin per underlying, and "standard margin" for comparison.
//!
//! For one underlying, with positions `lots_i` in markets with risk arrays `A_i`:
//!
//! - scenario P&L `P_s = sum_i lots_i x A_i[s]` (exact: integer x Q32.32 into `i128`);
//! - scenario loss `L = max(0, -min_s P_s)`, and the worst scenario `argmin_s P_s`;
//! - minimum delta requirement `D = (min_delta_net x |net delta| + min_delta_hedged x hedged
//!   delta) x spot`, where net delta = long delta - short delta and hedged delta =
//!   min(long delta, short delta), in lots;
//! - short-option contingency `C = short_option_contingency x spot x sum |lots|` over net short
//!   option positions (one position per market, so per strike, expiry and kind);
//! - maintenance `MM = max(L, D) + C`, initial `IM = MM x im_factor`.
//!
//! The portfolio requirement sums underlyings (no credit across underlyings in v1). Standard
//! margin applies the same computation to each position alone and sums: the ratio of the two is
//! the capital-efficiency figure. All requirements are I80F48 quote units rounded up.

use crate::risk_array::{RiskArray, RiskError, MAX_LOTS};
use crate::scenario::{GridParams, MAX_SCENARIOS};
use crate::wide::{mul_i80f48, q32_wide_to_i80f48, Rounding};
use fixed::types::{I32F32, I80F48};

/// A position in one market: whole lots (negative = short) and its market's risk-array data,
/// borrowed (on-chain, straight from the market account: no copy).
#[derive(Clone, Copy, Debug)]
pub struct Exposure<'a> {
    /// Position size in lots, |lots| <= [`MAX_LOTS`].
    pub lots: i64,
    /// Per-lot scenario P&L, one cell per scenario of the underlying's grid.
    pub cells: &'a [I32F32],
    /// Per-lot delta, in lots of the underlying.
    pub delta: I32F32,
    /// Whether the market is an option (short options carry a contingency).
    pub is_option: bool,
}

impl RiskArray {
    /// This array as the exposure of a `lots` position.
    pub fn exposure(&self, lots: i64) -> Exposure<'_> {
        Exposure { lots, cells: &self.pnl[..self.len as usize], delta: self.delta, is_option: self.is_option }
    }
}

/// The requirement of one underlying, with the pieces users want to see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnderlyingMargin {
    /// max(0, -worst scenario P&L), quote units.
    pub scenario_loss: I80F48,
    /// Index of the worst scenario in the grid.
    pub worst_scenario: usize,
    /// Minimum delta requirement, quote units.
    pub min_delta: I80F48,
    /// Short-option contingency, quote units.
    pub contingency: I80F48,
    /// Maintenance requirement, quote units.
    pub maintenance: I80F48,
    /// Initial requirement, quote units.
    pub initial: I80F48,
    /// Net delta in lots of the underlying.
    pub net_delta: I80F48,
}

/// Computes the requirement of one underlying's positions.
pub fn underlying_margin(
    exposures: &[Exposure<'_>],
    spot: I32F32,
    params: &GridParams,
    scenario_count: usize,
) -> Result<UnderlyingMargin, RiskError> {
    let mut sums = [0i128; MAX_SCENARIOS];
    let (mut long_delta, mut short_delta, mut short_option_lots) = (0i128, 0i128, 0i128);
    for exposure in exposures {
        if exposure.lots.unsigned_abs() > MAX_LOTS as u64 {
            return Err(RiskError::QuantityTooLarge);
        }
        if exposure.cells.len() != scenario_count {
            return Err(RiskError::GridMismatch);
        }
        for (sum, cell) in sums.iter_mut().zip(exposure.cells) {
            *sum += crate::wide::mul_q32_by_int(*cell, exposure.lots);
        }
        let delta = crate::wide::mul_q32_by_int(exposure.delta, exposure.lots);
        if delta >= 0 {
            long_delta += delta;
        } else {
            short_delta -= delta;
        }
        if exposure.is_option && exposure.lots < 0 {
            short_option_lots += -(exposure.lots as i128);
        }
    }
    let (worst_scenario, worst) = sums[..scenario_count]
        .iter()
        .copied()
        .enumerate()
        .fold((0, i128::MAX), |best, (i, v)| if v < best.1 { (i, v) } else { best });
    let worst = if scenario_count == 0 { 0 } else { worst };
    let scenario_loss = q32_wide_to_i80f48((-worst).max(0)).ok_or(RiskError::Overflow)?;

    let spot = I80F48::from_num(spot);
    let net_delta = q32_wide_to_i80f48(long_delta - short_delta).ok_or(RiskError::Overflow)?;
    let hedged_delta = q32_wide_to_i80f48(long_delta.min(short_delta)).ok_or(RiskError::Overflow)?;
    let up = |a: I80F48, b: I80F48| mul_i80f48(a, b, Rounding::Up).ok_or(RiskError::Overflow);
    let delta_rate_sum = up(I80F48::from_num(params.min_delta_net), net_delta.abs())?
        .checked_add(up(I80F48::from_num(params.min_delta_hedged), hedged_delta)?)
        .ok_or(RiskError::Overflow)?;
    let min_delta = up(delta_rate_sum, spot)?;
    let contingency_per_lot = up(I80F48::from_num(params.short_option_contingency), spot)?;
    let short_lots = I80F48::checked_from_num(short_option_lots).ok_or(RiskError::Overflow)?;
    let contingency = up(contingency_per_lot, short_lots)?;
    let maintenance = scenario_loss.max(min_delta).checked_add(contingency).ok_or(RiskError::Overflow)?;
    let initial = up(maintenance, I80F48::from_num(params.im_factor))?;
    Ok(UnderlyingMargin { scenario_loss, worst_scenario, min_delta, contingency, maintenance, initial, net_delta })
}

/// One underlying's part of an account: its spot, grid, positions and their marks.
#[derive(Clone, Copy, Debug)]
pub struct UnderlyingBook<'a> {
    /// Spot per lot, quote units.
    pub spot: I32F32,
    /// The underlying's grid.
    pub params: &'a GridParams,
    /// Number of scenarios of that grid.
    pub scenario_count: usize,
    /// Positions (and collateral entering the grid).
    pub exposures: &'a [Exposure<'a>],
    /// Sum of the positions' positive marks (unrealized gains, long option value), >= 0.
    pub positive_equity: I80F48,
    /// Sum of the positions' negative marks (unrealized losses, short option value), <= 0.
    pub negative_equity: I80F48,
}

/// Aggregates the derivatives side of an account over its underlyings: requirements summed
/// (no credit across underlyings in v1) and marks split by sign, ready for
/// [`crate::health::compute_health`].
pub fn derivatives_risk(books: &[UnderlyingBook<'_>]) -> Result<crate::health::DerivativesRisk, RiskError> {
    let mut risk = crate::health::DerivativesRisk::default();
    for book in books {
        let margin = underlying_margin(book.exposures, book.spot, book.params, book.scenario_count)?;
        let add = |a: I80F48, b: I80F48| a.checked_add(b).ok_or(RiskError::Overflow);
        risk.maintenance = add(risk.maintenance, margin.maintenance)?;
        risk.initial = add(risk.initial, margin.initial)?;
        risk.positive_equity = add(risk.positive_equity, book.positive_equity)?;
        risk.negative_equity = add(risk.negative_equity, book.negative_equity)?;
    }
    Ok(risk)
}

/// Standard margin of one underlying's positions: each position margined alone, summed.
/// Returns `(maintenance, initial)` in quote units.
pub fn standard_margin(
    exposures: &[Exposure<'_>],
    spot: I32F32,
    params: &GridParams,
    scenario_count: usize,
) -> Result<(I80F48, I80F48), RiskError> {
    let mut maintenance = I80F48::ZERO;
    let mut initial = I80F48::ZERO;
    for exposure in exposures {
        let alone = underlying_margin(core::slice::from_ref(exposure), spot, params, scenario_count)?;
        maintenance = maintenance.checked_add(alone.maintenance).ok_or(RiskError::Overflow)?;
        initial = initial.checked_add(alone.initial).ok_or(RiskError::Overflow)?;
    }
    Ok((maintenance, initial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::black_scholes::OptionKind;
    use crate::risk_array::{compute_risk_array, Instrument, MarketState};
    use proptest::prelude::*;

    fn arrays(spot: f64, specs: &[(Option<(OptionKind, f64)>, f64)]) -> Vec<RiskArray> {
        let params = GridParams::default();
        let scenarios = params.scenarios().unwrap();
        specs
            .iter()
            .map(|(option, _)| {
                let instrument = match option {
                    None => Instrument::Linear,
                    Some((kind, strike)) => Instrument::Option {
                        kind: *kind,
                        strike: I32F32::from_num(*strike),
                        days_to_expiry: I32F32::from_num(30),
                    },
                };
                let state = MarketState { instrument, spot: I32F32::from_num(spot), vol: I32F32::from_num(0.6) };
                compute_risk_array(&state, &params, &scenarios).unwrap()
            })
            .collect()
    }

    fn margin(spot: f64, specs: &[(Option<(OptionKind, f64)>, f64)], lots: &[i64]) -> (UnderlyingMargin, I80F48) {
        let arrays = arrays(spot, specs);
        let exposures: Vec<_> = arrays.iter().zip(lots).map(|(array, &lots)| array.exposure(lots)).collect();
        let params = GridParams::default();
        let pm = underlying_margin(&exposures, I32F32::from_num(spot), &params, 35).unwrap();
        let (sm, _) = standard_margin(&exposures, I32F32::from_num(spot), &params, 35).unwrap();
        (pm, sm)
    }

    #[test]
    fn naked_perp_is_charged_the_full_range() {
        let (pm, sm) = margin(150.0, &[(None, 0.0)], &[-10]);
        assert!((pm.scenario_loss.to_num::<f64>() - 240.0).abs() < 1e-6);
        assert_eq!(pm.maintenance, sm);
        assert_eq!(pm.contingency, I80F48::ZERO);
        assert!((pm.net_delta.to_num::<f64>() + 10.0).abs() < 1e-9);
        // IM = 1.25 MM, rounded up.
        assert!(pm.initial >= pm.maintenance * I80F48::from_num(1.25));
    }

    #[test]
    fn offsetting_perps_cost_only_min_delta_hedged() {
        let (pm, sm) = margin(150.0, &[(None, 0.0), (None, 0.0)], &[10, -10]);
        assert_eq!(pm.scenario_loss, I80F48::ZERO);
        // 1% x 10 hedged x 150.
        assert!((pm.maintenance.to_num::<f64>() - 15.0).abs() < 1e-6);
        assert!(sm > pm.maintenance * I80F48::from_num(10));
    }

    #[test]
    fn covered_call_needs_less_than_its_parts() {
        let (pm, sm) = margin(150.0, &[(None, 0.0), (Some((OptionKind::Call, 160.0)), 0.0)], &[10, -10]);
        assert!(pm.maintenance < sm);
        assert!(pm.contingency > I80F48::ZERO);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn portfolio_properties(
            lots in proptest::collection::vec(-1000i64..1000, 4),
            k in 2i64..50,
        ) {
            let specs = [
                (None, 0.0),
                (Some((OptionKind::Call, 160.0)), 0.0),
                (Some((OptionKind::Put, 130.0)), 0.0),
                (Some((OptionKind::Call, 140.0)), 0.0),
            ];
            let (pm, sm) = margin(150.0, &specs, &lots);
            // Never negative, never above standard margin.
            prop_assert!(pm.maintenance >= 0 && pm.initial >= pm.maintenance);
            prop_assert!(pm.maintenance <= sm);
            // Scaling every quantity by k scales the requirement by k (within rounding).
            let scaled: Vec<i64> = lots.iter().map(|l| l * k).collect();
            let (pm_k, _) = margin(150.0, &specs, &scaled);
            let expected = pm.maintenance.to_num::<f64>() * k as f64;
            prop_assert!((pm_k.maintenance.to_num::<f64>() - expected).abs() <= 1e-9 * expected.max(1.0) * k as f64);
            // Splitting a position into two pieces in the same market changes nothing.
            let arrays = arrays(150.0, &specs);
            let mut exposures: Vec<_> = arrays.iter().zip(&lots).map(|(array, &lots)| array.exposure(lots)).collect();
            let first = exposures[0];
            exposures[0] = Exposure { lots: first.lots / 3, ..first };
            exposures.push(Exposure { lots: first.lots - first.lots / 3, ..first });
            let split = underlying_margin(&exposures, I32F32::from_num(150.0), &GridParams::default(), 35).unwrap();
            // Contingency nets per position, so compare scenario loss and delta parts exactly.
            prop_assert_eq!(split.scenario_loss, pm.scenario_loss);
            prop_assert_eq!(split.net_delta, pm.net_delta);
        }
    }

    #[test]
    fn oversized_and_mismatched_positions_are_refused() {
        let arrays = arrays(150.0, &[(None, 0.0)]);
        let params = GridParams::default();
        let too_big = [arrays[0].exposure(MAX_LOTS + 1)];
        assert_eq!(underlying_margin(&too_big, I32F32::from_num(150), &params, 35), Err(RiskError::QuantityTooLarge));
        let ok = [arrays[0].exposure(1)];
        assert_eq!(underlying_margin(&ok, I32F32::from_num(150), &params, 27), Err(RiskError::GridMismatch));
    }
}

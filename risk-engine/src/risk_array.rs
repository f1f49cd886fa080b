//! Risk arrays: the per-lot P&L of one market in every scenario of the grid.
//!
//! Pricing an option across the whole grid costs tens of thousands of compute units, so it is
//! done once per market (by a permissionless refresh on-chain) at a reference spot and vol. A
//! health check then only sums `lots x array[scenario]` per position (exact integer products
//! into 128-bit accumulators), which is what keeps it cheap.
//!
//! ## Units
//! Prices are in "quote units per lot" (on-chain: quote native units per base lot; in the
//! command line: the same scale, see `pm`), so an array cell is the P&L of one long lot in quote
//! units, Q32.32. Quantities are whole lots, `|lots| <= MAX_LOTS`.
//!
//! ## Refresh tolerance
//! An array computed at spot `S0` and vol `v0` is used while the current spot is within
//! `price_tolerance` (relative) of `S0` and the current vol within `vol_tolerance` (absolute) of
//! `v0`. Within that band every cell differs from a freshly computed one by at most
//! `staleness_error_bound` (in the tests): the P&L of one lot is at most 1 x spot-move sensitive per unit of
//! spot (|delta| <= 1 at both ends of each scenario), and at most `vega <= 0.4 S sqrt(T)` per
//! unit of vol at the shocked vols, which are at most `(1 + vol_up x scale)` times the base vol.
//! The property test in this module checks the bound on random markets.

use crate::black_scholes::{OptionKind, OptionPricer, PricingError, SpotTerms};
use crate::scenario::{GridError, GridParams, ScenarioSet, VolShock, MAX_PRICE_STEPS, MAX_SCENARIOS, MAX_VOL_STATES};
use crate::wide::{mul_q32, mul_q32_nonneg, Rounding};
use fixed::types::I32F32;

/// Largest position size in lots (keeps every `lots x cell` product in a cheap range).
pub const MAX_LOTS: i64 = (1 << 31) - 1;

/// Number of core price intervals an array can carry interpolation gaps for.
pub const MAX_GAP_INTERVALS: usize = MAX_PRICE_STEPS - 1;

/// Interpolation error tolerated per long option lot, as a right shift of the spot per lot
/// (2^-8: 0.39% of spot). An array whose largest gap stays within it carries none (health
/// then costs nothing extra); beyond it every gap is carried. With the default grid, options
/// carry gaps up to about 40 days from expiry at 10% vol, 24 at 20%, 7 at 50%, 3.4 at 80% and
/// 1.9 at 150% (the lower the vol, the sharper the bend near the strike).
pub const GAP_TOLERANCE_SHIFT: u32 = 8;

/// What a market's contract pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instrument {
    /// Delta-one exposure: a perpetual future, or spot collateral entering the grid.
    Linear,
    /// A European option.
    Option {
        /// Call or put.
        kind: OptionKind,
        /// Strike, in the same unit as spot.
        strike: I32F32,
        /// Time to expiry in days.
        days_to_expiry: I32F32,
    },
}

/// Market state an array is computed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketState {
    /// The contract.
    pub instrument: Instrument,
    /// Reference spot, quote units per lot.
    pub spot: I32F32,
    /// Reference implied vol (ignored for linear instruments).
    pub vol: I32F32,
}

/// The per-lot scenario P&L of one market, plus the per-lot delta and mark value at reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RiskArray {
    /// P&L of one lot in each scenario, quote units (Q32.32), valued now: what a SHORT
    /// position is stressed on (times its negative size); first `len` cells used.
    pub pnl: [I32F32; MAX_SCENARIOS],
    /// The same P&L valued `horizon_days` later (intrinsic from expiry on): what a LONG position
    /// is stressed on. Never above `pnl` (an option loses value with time at zero rates), so
    /// each side is stressed on the valuation that is worse for it: a long is charged its time
    /// decay, a short is not credited its own. Equal to `pnl` for linear instruments.
    pub long_pnl: [I32F32; MAX_SCENARIOS],
    /// Number of scenarios.
    pub len: u8,
    /// Delta of one lot, in lots of the underlying (1 for linear instruments).
    pub delta: I32F32,
    /// Mark value of one long lot (option premium; 0 for linear instruments), quote units.
    pub value: I32F32,
    /// Whether the instrument is an option (short options carry a contingency charge).
    pub is_option: bool,
    /// Change of one long lot's value if the vol moved to its "up" state today (at the
    /// reference spot and today's tenor, no look-ahead), quote units: marks shock positions
    /// by it while the posted vol is stale. 0 for linear instruments.
    pub vol_up_shock: I32F32,
    /// The same for the "down" state (<= 0).
    pub vol_down_shock: I32F32,
    /// Largest |cell| of both arrays: bounds every `lots x cell` product, so a health check can skip per-cell
    /// overflow checks when the bound allows.
    pub max_abs_cell: I32F32,
    /// Per core price interval `j` (between moves `j` and `j + 1`), how far one long lot's
    /// value after the horizon can fall below the chord between its two node values, in any
    /// vol state, quote units, rounded up (first `gap_intervals`): a long option's loss between
    /// two nodes exceeds the interpolation of its node losses by at most this (see
    /// `crate::margin`, "interpolation bound"). Bounded without extra valuations from the
    /// values and deltas at the nodes (`chord_gap`: the triangle of the two tangents).
    pub long_gaps: [I32F32; MAX_GAP_INTERVALS],
    /// Bit `j` set: in interval `j` a long lot's loss is bounded by its premium instead (its
    /// worst node loss plus its gap there exceeds the premium), so that buying an option never
    /// raises a requirement by more than its price.
    pub premium_bound_mask: u16,
    /// Number of intervals with gaps: `price_steps - 1`, or 0 when every gap is within
    /// [`GAP_TOLERANCE_SHIFT`] of the spot (and for linear instruments).
    pub gap_intervals: u8,
    /// Which expiry the instrument belongs to, for the vega-offset contingency: the days to
    /// expiry's bits here (options of one snapshot with the same days share an expiry); the
    /// program uses the market's expiry timestamp. 0 for linear instruments.
    pub expiry_key: i64,
}

/// Why an array or a requirement could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskError {
    /// Grid parameters are invalid.
    Grid(GridError),
    /// Option inputs are invalid.
    Pricing(PricingError),
    /// A value left the fixed-point range.
    Overflow,
    /// A position exceeds [`MAX_LOTS`].
    QuantityTooLarge,
    /// An array was built for a different grid (scenario count mismatch).
    GridMismatch,
}

impl From<GridError> for RiskError {
    fn from(e: GridError) -> Self {
        RiskError::Grid(e)
    }
}
impl From<PricingError> for RiskError {
    fn from(e: PricingError) -> Self {
        RiskError::Pricing(e)
    }
}

impl RiskArray {
    /// An array with no cells (what [`compute_risk_array_into`] starts from).
    pub const EMPTY: RiskArray = RiskArray {
        pnl: [I32F32::ZERO; MAX_SCENARIOS],
        long_pnl: [I32F32::ZERO; MAX_SCENARIOS],
        len: 0,
        delta: I32F32::ONE,
        value: I32F32::ZERO,
        is_option: false,
        vol_up_shock: I32F32::ZERO,
        vol_down_shock: I32F32::ZERO,
        max_abs_cell: I32F32::ZERO,
        long_gaps: [I32F32::ZERO; MAX_GAP_INTERVALS],
        premium_bound_mask: 0,
        gap_intervals: 0,
        expiry_key: 0,
    };
}

/// Computes the risk array of a market over a scenario set built from `params`. An array is
/// about 1.6 KB: on SBF (4 KB stack frames) use [`compute_risk_array_into`] with an array on the
/// heap or in account data.
pub fn compute_risk_array(
    state: &MarketState,
    params: &GridParams,
    scenarios: &ScenarioSet,
) -> Result<RiskArray, RiskError> {
    let mut array = RiskArray::EMPTY;
    compute_risk_array_into(state, params, scenarios, &mut array)?;
    Ok(array)
}

/// [`compute_risk_array`] into `array` (overwritten whole; unchanged cells past `len` are
/// zero). On an error `array` holds a partial result and must not be used.
pub fn compute_risk_array_into(
    state: &MarketState,
    params: &GridParams,
    scenarios: &ScenarioSet,
    array: &mut RiskArray,
) -> Result<(), RiskError> {
    if state.spot <= 0 {
        return Err(RiskError::Pricing(PricingError::NonPositivePrice));
    }
    // Field by field: a whole-struct assignment may build a 1.6 KB temporary on the stack.
    array.pnl.fill(I32F32::ZERO);
    array.long_pnl.fill(I32F32::ZERO);
    array.len = scenarios.len() as u8;
    array.delta = I32F32::ONE;
    array.value = I32F32::ZERO;
    array.is_option = false;
    array.vol_up_shock = I32F32::ZERO;
    array.vol_down_shock = I32F32::ZERO;
    array.max_abs_cell = I32F32::ZERO;
    array.long_gaps = [I32F32::ZERO; MAX_GAP_INTERVALS];
    array.premium_bound_mask = 0;
    array.gap_intervals = 0;
    array.expiry_key = 0;
    match state.instrument {
        Instrument::Linear => {
            linear_cells(state.spot, scenarios, &mut array.pnl)?;
            array.long_pnl.copy_from_slice(&array.pnl);
        }
        Instrument::Option { kind, strike, days_to_expiry } => {
            // The premium and delta today; each scenario valued now (for shorts) and after the
            // horizon (for longs). Strike and tenor terms once per pricer; ln(S'/K) once per
            // price move (shared by its vol states and both pricers); the vol of each state
            // once per market; then two normal CDFs per valuation. Past expiry within the
            // horizon the later valuation is intrinsic (no CDF); with no horizon it is the same.
            let pricer = OptionPricer::new(kind, strike, days_to_expiry)?;
            let reference = pricer.spot_terms(state.spot)?;
            let base = pricer.price(&reference, state.vol)?;
            array.delta = base.delta;
            array.value = base.value;
            array.is_option = true;
            array.expiry_key = days_to_expiry.to_bits();
            // ln(K / S) as a difference of logs (no ratio to overflow); the skew clamps it.
            let ln = |x: I32F32| crate::math::ln(x).ok_or(RiskError::Pricing(PricingError::NonPositivePrice));
            let log_moneyness = ln(strike)?.saturating_sub(ln(state.spot)?);
            let vols = params.state_vols(state.vol, days_to_expiry, log_moneyness)?;
            let shock = |shock: VolShock| -> Result<I32F32, RiskError> {
                let value = pricer.price(&reference, vols[shock as usize])?.value;
                value.checked_sub(base.value).ok_or(RiskError::Overflow)
            };
            array.vol_up_shock = shock(VolShock::Up)?;
            array.vol_down_shock = shock(VolShock::Down)?;
            let later_days = days_to_expiry.saturating_sub(params.horizon_days).max(I32F32::ZERO);
            let later = if later_days < days_to_expiry { Some(OptionPricer::new(kind, strike, later_days)?) } else { None };
            // Each vol state's terms once per pricer (a reciprocal each), not once per cell.
            let mut now_vols = [pricer.vol_terms(I32F32::ZERO)?; MAX_VOL_STATES];
            let mut later_vols = now_vols;
            for state_index in 0..MAX_VOL_STATES {
                now_vols[state_index] = pricer.vol_terms(vols[state_index])?;
                if let Some(later) = &later {
                    later_vols[state_index] = later.vol_terms(vols[state_index])?;
                }
            }
            let mut terms: Option<(I32F32, SpotTerms)> = None;
            // For the interpolation gaps: the long valuation's delta at the previous core node in
            // each vol state, that node's spot, and each node's worst long loss per lot.
            let states = params.vol_state_count();
            let core_cells = params.price_steps as usize * states;
            let mut previous = [(I32F32::ZERO, I32F32::ZERO); MAX_VOL_STATES];
            let mut node_spots = [I32F32::ZERO; MAX_PRICE_STEPS];
            let mut node_losses = [I32F32::MIN; MAX_PRICE_STEPS];
            let cells = array.pnl.iter_mut().zip(array.long_pnl.iter_mut());
            for (index, ((cell, long_cell), scenario)) in cells.zip(scenarios.iter()).enumerate() {
                let spot_terms = match terms {
                    Some((price_move, t)) if price_move == scenario.price_move => t,
                    _ => {
                        let factor = I32F32::ONE.checked_add(scenario.price_move).ok_or(RiskError::Overflow)?;
                        let spot = mul_q32_nonneg(state.spot, factor, Rounding::Down).ok_or(RiskError::Overflow)?;
                        let t = pricer.spot_terms(spot)?;
                        terms = Some((scenario.price_move, t));
                        t
                    }
                };
                let vol_index = scenario.vol_shock as usize;
                let weighted = |value: I32F32| -> Result<I32F32, RiskError> {
                    let pnl = value.checked_sub(base.value).ok_or(RiskError::Overflow)?;
                    // Core scenarios weigh one: the product would return `pnl` bit for bit.
                    if scenario.weight == I32F32::ONE {
                        return Ok(pnl);
                    }
                    mul_q32(pnl, scenario.weight, Rounding::Down).ok_or(RiskError::Overflow)
                };
                let now = pricer.price_at(&spot_terms, &now_vols[vol_index])?;
                *cell = weighted(now.value)?;
                let later_value = match &later {
                    Some(later) => later.price_at(&spot_terms, &later_vols[vol_index])?,
                    None => now,
                };
                // Rounded down like the cell, and never above it.
                *long_cell = weighted(later_value.value)?.min(*cell);
                if index < core_cells {
                    let (node, state_index) = (index / states, index % states);
                    node_spots[node] = spot_terms.spot();
                    node_losses[node] = node_losses[node].max(-*long_cell);
                    if node > 0 {
                        let width = spot_terms.spot().checked_sub(node_spots[node - 1]).ok_or(RiskError::Overflow)?;
                        let (value_a, slope_a) = previous[state_index];
                        // The triangle's largest height first (one product): within the
                        // tolerance it is kept as is (a valid, looser bound) and the divisions
                        // of the exact height are spared, as they are for most arrays.
                        let turn = later_value.delta.checked_sub(slope_a).ok_or(RiskError::Overflow)?.max(I32F32::ZERO);
                        let quick = mul_q32_nonneg(width, turn, Rounding::Up).ok_or(RiskError::Overflow)?;
                        let quick = I32F32::from_bits((quick.to_bits() + 3) >> 2);
                        let gap = if quick <= state.spot >> GAP_TOLERANCE_SHIFT {
                            quick
                        } else {
                            chord_gap(width, value_a, slope_a, later_value.value, later_value.delta).ok_or(RiskError::Overflow)?
                        };
                        array.long_gaps[node - 1] = array.long_gaps[node - 1].max(gap);
                    }
                    previous[state_index] = (later_value.value, later_value.delta);
                }
            }
            finish_gaps(array, &node_losses, params.price_steps as usize, state.spot)?;
        }
    }
    let len = array.len as usize;
    array.max_abs_cell = array.pnl[..len].iter().chain(&array.long_pnl[..len]).map(|c| c.abs()).max().unwrap_or(I32F32::ZERO);
    Ok(())
}

/// How far a convex function with values `value_a`, `value_b` and one-sided slopes `slope_a`
/// (at most its right slope at `a`) and `slope_b` (at least its left slope at `b`) at the ends
/// of an interval of `width` can lie below its chord, rounded up. It lies above both tangent
/// lines, so at most the height of the triangle they make with the chord: with chord slope
/// `m` clamped to `[slope_a, slope_b]`, `width (slope_b - m)(m - slope_a) / (slope_b - slope_a)`
/// (at most `width (slope_b - slope_a) / 4`, when the kink sits mid-interval).
fn chord_gap(width: I32F32, value_a: I32F32, slope_a: I32F32, value_b: I32F32, slope_b: I32F32) -> Option<I32F32> {
    if width <= 0 || slope_b <= slope_a {
        return Some(I32F32::ZERO);
    }
    let chord = crate::wide::div_q32(value_b.checked_sub(value_a)?, width, Rounding::Down)?.clamp(slope_a, slope_b);
    let (above, below, turn) = (slope_b.checked_sub(chord)?, chord.checked_sub(slope_a)?, slope_b.checked_sub(slope_a)?);
    // Rounding the chord slope moves the product by at most width x 2^-32 x turn: the slack
    // added in `finish_gaps` covers it.
    let height = crate::wide::div_q32(mul_q32(above, below, Rounding::Up)?, turn, Rounding::Up)?;
    mul_q32(width, height, Rounding::Up)
}

/// Keeps the gaps of an option array only if one exceeds the tolerance, each plus the
/// valuations' fixed-point error, and marks the intervals bounded by the premium.
fn finish_gaps(array: &mut RiskArray, node_losses: &[I32F32; MAX_PRICE_STEPS], steps: usize, spot: I32F32) -> Result<(), RiskError> {
    let intervals = steps.saturating_sub(1).min(MAX_GAP_INTERVALS);
    let tolerance = spot >> GAP_TOLERANCE_SHIFT;
    if array.long_gaps[..intervals].iter().all(|g| *g <= tolerance) {
        array.long_gaps = [I32F32::ZERO; MAX_GAP_INTERVALS];
        return Ok(());
    }
    // The valuations behind a gap (values and deltas at two nodes) are each within 1e-6 of the
    // spot as tested in `black_scholes` (within about 1e-9 measured): 2^-18 of the spot (3.8e-6)
    // covers two of them.
    let slack = spot >> 18;
    for j in 0..intervals {
        let gap = array.long_gaps[j].checked_add(slack).ok_or(RiskError::Overflow)?;
        array.long_gaps[j] = gap;
        let worst = node_losses[j].max(node_losses[j + 1]);
        // Bounded by the premium where the loss with the gap could exceed it.
        if worst.saturating_add(gap) > array.value {
            array.premium_bound_mask |= 1 << j;
        }
    }
    array.gap_intervals = intervals as u8;
    Ok(())
}

/// The per-lot scenario P&L of a delta-one position at `spot` (`spot x move x weight`, the
/// same for both sides) into the first `scenarios.len()` of `cells`; returns the largest |cell|.
/// What a linear risk array holds, and what collateral entering the grid needs without the
/// rest of an array.
pub fn linear_cells(spot: I32F32, scenarios: &ScenarioSet, cells: &mut [I32F32]) -> Result<I32F32, RiskError> {
    if spot <= 0 {
        return Err(RiskError::Pricing(PricingError::NonPositivePrice));
    }
    let mut max_abs_cell = I32F32::ZERO;
    for (cell, scenario) in cells.iter_mut().zip(scenarios.iter()) {
        let move_value = mul_q32(spot, scenario.price_move, Rounding::Down).ok_or(RiskError::Overflow)?;
        *cell = mul_q32(move_value, scenario.weight, Rounding::Down).ok_or(RiskError::Overflow)?;
        max_abs_cell = max_abs_cell.max(cell.abs());
    }
    Ok(max_abs_cell)
}

/// How much a first-order mark (`value + delta x (spot - reference)`, floored at 0, from
/// `array`, the market's array computed from `state`) can understate one long lot's true value, for any spot within `price_tolerance` (relative) of
/// the reference and any vol up to `vol_tolerance` (absolute) above the reference vol, at
/// today's tenor: a short position's liability is marked this much higher, so health never
/// overstates a short option. Quote units per lot, rounded up; 0 for linear instruments.
///
/// Why two valuations suffice: at a fixed vol an option's value is convex in spot, so its
/// excess over the tangent line is convex too and largest at an end of the price band; and the
/// value only grows with vol. So the excess at the two ends of the band, valued at the highest
/// vol in the band, bounds the excess everywhere in it. (Time only lowers an option's value at
/// zero rates: an array aged within its maximum age errs on the safe side for shorts.)
pub fn short_mark_buffer(state: &MarketState, array: &RiskArray, price_tolerance: I32F32, vol_tolerance: I32F32) -> Result<I32F32, RiskError> {
    let Instrument::Option { kind, strike, days_to_expiry } = state.instrument else {
        return Ok(I32F32::ZERO);
    };
    if price_tolerance < 0 || vol_tolerance < 0 {
        return Err(RiskError::Pricing(PricingError::NegativeInput));
    }
    let o = RiskError::Overflow;
    let pricer = OptionPricer::new(kind, strike, days_to_expiry)?;
    // The tangent the mark itself uses: the array's reference value and delta.
    let (base_value, base_delta) = (array.value, array.delta);
    let high_vol = state.vol.checked_add(vol_tolerance).ok_or(o)?;
    let mut buffer = I32F32::ZERO;
    for move_up in [true, false] {
        let factor = if move_up { I32F32::ONE + price_tolerance } else { I32F32::ONE - price_tolerance };
        let spot = mul_q32(state.spot, factor.max(I32F32::DELTA), Rounding::Down).ok_or(o)?;
        let value = pricer.price(&pricer.spot_terms(spot)?, high_vol)?.value;
        // Against the tangent itself, rounded down as the mark rounds it: the excess over the
        // tangent is convex on the whole band, and the mark (the tangent floored at 0) is never
        // below the tangent, so this bounds the mark's error too.
        let moved = spot.checked_sub(state.spot).ok_or(o)?;
        let tangent = base_value.checked_add(mul_q32(base_delta, moved, Rounding::Down).ok_or(o)?).ok_or(o)?;
        buffer = buffer.max(value.checked_sub(tangent).ok_or(o)?);
    }
    // Plus the fixed-point error of the valuations (within 1e-6 x spot each, tested in
    // `black_scholes`): 2^-19 of the spot covers two.
    buffer.checked_add(state.spot >> 19).ok_or(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Largest difference, per lot and scenario, between an array computed at `(spot0, vol0)` and
    /// one computed at a spot within `price_tolerance x spot0` and a vol within `vol_tolerance` of
    /// `vol0` (see the module documentation for the derivation). In quote units per lot.
    fn staleness_error_bound(
        state: &MarketState,
        params: &GridParams,
        price_tolerance: f64,
        vol_tolerance: f64,
    ) -> f64 {
        let spot = state.spot.to_num::<f64>();
        let (max_factor, max_weighted_factor) = {
            let core = 1.0 + params.price_range.to_num::<f64>();
            let tail = params.extended_moves[..params.extended_count as usize]
                .iter()
                .map(|m| (1.0 + m.to_num::<f64>()) * params.extended_weight_numerator.to_num::<f64>() / m.to_num::<f64>().abs())
                .fold(0.0, f64::max);
            (core, core.max(tail))
        };
        // Price: d/dS [w (V(S(1+m)) - V(S))] <= w ((1+m) + 1) per unit of S.
        let price_term = spot * price_tolerance * (max_weighted_factor + max_factor.max(1.0));
        let vega_term = match state.instrument {
            Instrument::Linear => 0.0,
            Instrument::Option { days_to_expiry, .. } => {
                let t = days_to_expiry.to_num::<f64>() / 365.0;
                let scale = params.vol_shock_scale(days_to_expiry).map(|s| s.to_num::<f64>()).unwrap_or(1.0);
                // The largest factor any vol state applies (skew at |log-moneyness| <= 1).
                let shock_factor = 1.0
                    + (params.vol_up.to_num::<f64>() * scale)
                        .max(params.skew.to_num::<f64>() * scale)
                        .max(params.twist.to_num::<f64>());
                // vega <= 0.4 S' sqrt(T) at the shocked spot S' <= max_weighted_factor x S.
                0.4 * t.sqrt() * vol_tolerance * spot * (shock_factor * max_weighted_factor + 1.0)
            }
        };
        // Plus the fixed-point error of two valuations (~1e-9 x spot each).
        price_term + vega_term + 1e-8 * spot * max_weighted_factor
    }


    fn option_state(spot: f64, strike: f64, vol: f64, days: f64, kind: OptionKind) -> MarketState {
        MarketState {
            instrument: Instrument::Option {
                kind,
                strike: I32F32::from_num(strike),
                days_to_expiry: I32F32::from_num(days),
            },
            spot: I32F32::from_num(spot),
            vol: I32F32::from_num(vol),
        }
    }

    #[test]
    fn linear_array_is_spot_times_move() {
        let params = GridParams::default();
        let scenarios = params.scenarios().unwrap();
        let state = MarketState { instrument: Instrument::Linear, spot: I32F32::from_num(150), vol: I32F32::ZERO };
        let array = compute_risk_array(&state, &params, &scenarios).unwrap();
        assert_eq!(array.len, 71);
        assert!((array.pnl[0].to_num::<f64>() + 24.0).abs() < 1e-7);
        assert!((array.pnl[62].to_num::<f64>() - 24.0).abs() < 1e-7);
        // Tail scenarios never lose more than the core range for a linear position.
        for cell in &array.pnl[63..71] {
            assert!(cell.to_num::<f64>().abs() <= 24.0 + 1e-6);
        }
    }

    #[test]
    fn short_otm_call_is_hit_hardest_in_the_tail() {
        let params = GridParams::default();
        let scenarios = params.scenarios().unwrap();
        let array = compute_risk_array(&option_state(100.0, 200.0, 0.8, 30.0, OptionKind::Call), &params, &scenarios)
            .unwrap();
        let core_worst = array.pnl[..63].iter().max().unwrap().to_num::<f64>();
        let tail_worst = array.pnl[63..71].iter().max().unwrap().to_num::<f64>();
        assert!(tail_worst > core_worst, "tail {tail_worst} core {core_worst}");
    }

    /// Black-Scholes (r = 0) in double precision.
    fn bs(spot: f64, strike: f64, vol: f64, days: f64, kind: OptionKind) -> f64 {
        let intrinsic = match kind {
            OptionKind::Call => (spot - strike).max(0.0),
            OptionKind::Put => (strike - spot).max(0.0),
        };
        let sst = vol * (days / 365.0).sqrt();
        if sst <= 0.0 {
            return intrinsic;
        }
        let n = |x: f64| 0.5 * libm::erfc(-x / core::f64::consts::SQRT_2);
        let d1 = (spot / strike).ln() / sst + sst / 2.0;
        let d2 = d1 - sst;
        match kind {
            OptionKind::Call => spot * n(d1) - strike * n(d2),
            OptionKind::Put => strike * n(-d2) - spot * n(-d1),
        }
    }

    /// Every cell of an option's array against an independent double-precision copy of the
    /// model: the seven vol states, the tail; valued now and one day later.
    #[test]
    fn option_arrays_match_a_double_precision_model() {
        let params = GridParams::default();
        let scenarios = params.scenarios().unwrap();
        for &(strike, days, vol, kind) in &[
            (150.0, 30.0, 0.6, OptionKind::Call),
            (135.0, 30.0, 0.7, OptionKind::Put),
            (170.0, 90.0, 0.55, OptionKind::Call),
            (150.0, 1.0 / 24.0, 0.8, OptionKind::Call),
            (145.0, 3.0, 0.9, OptionKind::Put),
            (150.0, 400.0, 0.5, OptionKind::Put),
        ] {
            let spot = 150.0;
            let array = compute_risk_array(&option_state(spot, strike, vol, days, kind), &params, &scenarios).unwrap();
            let today = bs(spot, strike, vol, days, kind);
            let vols = crate::scenario::tests::reference_state_vols(vol, days, (strike / spot).ln());
            for (i, scenario) in scenarios.iter().enumerate() {
                let moved = spot * (1.0 + scenario.price_move.to_num::<f64>());
                let vol = vols[scenario.vol_shock as usize];
                let weight = scenario.weight.to_num::<f64>();
                let now = (bs(moved, strike, vol, days, kind) - today) * weight;
                let later = (bs(moved, strike, vol, (days - 1.0).max(0.0), kind) - today) * weight;
                let (got, got_later) = (array.pnl[i].to_num::<f64>(), array.long_pnl[i].to_num::<f64>());
                assert!((got - now).abs() < 2e-6 * spot, "K {strike} days {days} cell {i}: {got} vs {now}");
                assert!((got_later - later).abs() < 2e-6 * spot, "K {strike} days {days} long cell {i}: {got_later} vs {later}");
                assert!(array.long_pnl[i] <= array.pnl[i]);
            }
        }
    }

    /// The short-mark buffer bounds the first-order mark's error over the whole band, on a
    /// fine sweep of spots and vols, in double precision; and is small far from expiry.
    #[test]
    fn short_mark_buffer_bounds_the_first_order_error() {
        let params = GridParams::default();
        let scenarios = params.scenarios().unwrap();
        for &(strike, days, vol, kind) in &[
            (150.0, 1.0 / 24.0, 0.8, OptionKind::Call),
            (150.0, 1.0 / 24.0, 0.8, OptionKind::Put),
            (152.0, 0.5, 1.2, OptionKind::Call),
            (140.0, 7.0, 0.6, OptionKind::Put),
            (170.0, 30.0, 0.6, OptionKind::Call),
            (150.0, 365.0, 0.5, OptionKind::Put),
        ] {
            for &(tol, vol_tol) in &[(0.01, 0.02), (0.05, 0.1), (0.001, 0.0)] {
                let state = option_state(150.0, strike, vol, days, kind);
                let array = compute_risk_array(&state, &params, &scenarios).unwrap();
                let buffer = short_mark_buffer(&state, &array, I32F32::from_num(tol), I32F32::from_num(vol_tol)).unwrap().to_num::<f64>();
                let value = bs(150.0, strike, vol, days, kind);
                let h = 1e-4;
                let delta = (bs(150.0 + h, strike, vol, days, kind) - bs(150.0 - h, strike, vol, days, kind)) / (2.0 * h);
                let mut worst: f64 = 0.0;
                for i in 0..=200 {
                    let spot = 150.0 * (1.0 - tol + 2.0 * tol * i as f64 / 200.0);
                    for j in 0..=4 {
                        let v = vol + vol_tol * j as f64 / 4.0;
                        let mark = (value + delta * (spot - 150.0)).max(0.0);
                        worst = worst.max(bs(spot, strike, v, days, kind) - mark);
                    }
                }
                assert!(buffer >= worst - 1e-9, "K {strike} days {days} tol {tol}: buffer {buffer} < error {worst}");
                // Tight unless the tangent crosses zero in the band (far out of the money).
                if (value - delta * tol * 150.0).min(value + delta * tol * 150.0) > 0.0 {
                    assert!(buffer <= worst + 1e-3, "K {strike} days {days} tol {tol}: buffer {buffer} far above {worst}");
                }
            }
        }
        // An ATM option an hour from expiry, 1% band: about 0.2% of spot (61% of its premium).
        let hour = option_state(150.0, 150.0, 0.8, 1.0 / 24.0, OptionKind::Call);
        let hour_array = compute_risk_array(&hour, &params, &scenarios).unwrap();
        let buffer = short_mark_buffer(&hour, &hour_array, I32F32::from_num(0.01), I32F32::ZERO).unwrap().to_num::<f64>();
        assert!(buffer > 0.0015 * 150.0 && buffer < 0.0035 * 150.0, "{buffer}");
        // Perps need none.
        let perp = MarketState { instrument: Instrument::Linear, spot: I32F32::from_num(150), vol: I32F32::ZERO };
        let perp_array = compute_risk_array(&perp, &params, &scenarios).unwrap();
        assert_eq!(short_mark_buffer(&perp, &perp_array, I32F32::from_num(0.05), I32F32::ONE).unwrap(), I32F32::ZERO);
    }

    /// The stale-vol shocks are today's (no look-ahead): an option expiring within the horizon
    /// still has them, and they match a double-precision valuation.
    #[test]
    fn vol_shocks_are_valued_today() {
        let params = GridParams::default();
        let scenarios = params.scenarios().unwrap();
        let hours = compute_risk_array(&option_state(150.0, 150.0, 0.8, 0.5, OptionKind::Put), &params, &scenarios).unwrap();
        let s = (30.0f64 / 1.0).powf(0.30);
        let today = bs(150.0, 150.0, 0.8, 0.5, OptionKind::Put);
        let up = bs(150.0, 150.0, 0.8 * (1.0 + 0.4 * s), 0.5, OptionKind::Put) - today;
        let down = bs(150.0, 150.0, 0.8 * (1.0 - 0.22 * s), 0.5, OptionKind::Put) - today;
        assert!((hours.vol_up_shock.to_num::<f64>() - up).abs() < 1e-6 * 150.0);
        assert!((hours.vol_down_shock.to_num::<f64>() - down).abs() < 1e-6 * 150.0);
        assert!(up > 1.0 && down < -0.5, "{up} {down}");
    }

    /// The look-ahead: a long lot's zero-move cell is a day of time decay for a 30-day option,
    /// the whole premium for an at-the-money option expiring within the day; with no horizon
    /// the two arrays are the same.
    #[test]
    fn look_ahead_charges_longs_their_time_decay() {
        let params = GridParams::default();
        let scenarios = params.scenarios().unwrap();
        let same = params.zero_move_scenario() + 1;
        let month = compute_risk_array(&option_state(150.0, 150.0, 0.6, 30.0, OptionKind::Call), &params, &scenarios).unwrap();
        let theta = bs(150.0, 150.0, 0.6, 29.0, OptionKind::Call) - bs(150.0, 150.0, 0.6, 30.0, OptionKind::Call);
        assert!((month.long_pnl[same].to_num::<f64>() - theta).abs() < 1e-6 * 150.0);
        assert!(theta < -0.1 && month.pnl[same].abs() < I32F32::from_num(1e-6));
        let hour = compute_risk_array(&option_state(150.0, 150.0, 0.8, 1.0 / 24.0, OptionKind::Call), &params, &scenarios).unwrap();
        assert_eq!(hour.long_pnl[same], -hour.value);
        let none = GridParams { horizon_days: I32F32::ZERO, ..params };
        let flat = compute_risk_array(&option_state(150.0, 150.0, 0.6, 30.0, OptionKind::Call), &none, &none.scenarios().unwrap()).unwrap();
        assert_eq!(flat.long_pnl, flat.pnl);
        let perp = MarketState { instrument: Instrument::Linear, spot: I32F32::from_num(150), vol: I32F32::ZERO };
        let linear = compute_risk_array(&perp, &params, &scenarios).unwrap();
        assert_eq!(linear.long_pnl, linear.pnl);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn stale_array_error_is_within_documented_bound(
            spot in 10.0f64..1000.0,
            moneyness in 0.5f64..2.0,
            vol in 0.1f64..2.0,
            days in 1.0f64..365.0,
            is_call: bool,
            price_shift in -1.0f64..1.0,
            vol_shift in -1.0f64..1.0,
        ) {
            const PRICE_TOLERANCE: f64 = 0.01;
            const VOL_TOLERANCE: f64 = 0.02;
            let kind = if is_call { OptionKind::Call } else { OptionKind::Put };
            let params = GridParams::default();
            let scenarios = params.scenarios().unwrap();
            let reference = option_state(spot, spot * moneyness, vol, days, kind);
            let moved = option_state(spot * (1.0 + PRICE_TOLERANCE * price_shift), spot * moneyness, vol + VOL_TOLERANCE * vol_shift, days, kind);
            let a = compute_risk_array(&reference, &params, &scenarios).unwrap();
            let b = compute_risk_array(&moved, &params, &scenarios).unwrap();
            let bound = staleness_error_bound(&reference, &params, PRICE_TOLERANCE, VOL_TOLERANCE);
            for i in 0..a.len as usize {
                let error = (a.pnl[i].to_num::<f64>() - b.pnl[i].to_num::<f64>()).abs();
                prop_assert!(error <= bound, "cell {} error {} bound {}", i, error, bound);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Every stored gap bounds how far one long lot's value after the horizon falls below
        /// the chord of its node values, in every vol state, across its interval (a fine sweep
        /// in double precision); an array without gaps stays within the tolerance.
        #[test]
        fn stored_gaps_bound_the_distance_below_the_chord(
            call: bool,
            strike in 80.0f64..120.0,
            log_days in (1.0f64 / 1440.0).ln()..(60.0f64).ln(),
            vol in 0.1f64..2.0,
        ) {
            let (spot, params) = (100.0, GridParams::default());
            let days = log_days.exp();
            let kind = if call { OptionKind::Call } else { OptionKind::Put };
            let state = option_state(spot, strike, vol, days, kind);
            let array = compute_risk_array(&state, &params, &params.scenarios().unwrap()).unwrap();
            let later = (days - params.horizon_days.to_num::<f64>()).max(0.0);
            let log_m = I32F32::from_num((strike / spot).ln());
            let vols = params.state_vols(I32F32::from_num(vol), I32F32::from_num(days), log_m).unwrap();
            let (states, count) = params.vol_states();
            let half = (params.price_steps as i64 - 1) / 2;
            let range = params.price_range.to_num::<f64>();
            let node = |k: i64| spot * (1.0 + range * (k - half) as f64 / half as f64);
            let n = |x: f64| 0.5 * libm::erfc(-x / core::f64::consts::SQRT_2);
            let value = |s: f64, v: f64| {
                if later <= 0.0 || v <= 0.0 {
                    return if call { (s - strike).max(0.0) } else { (strike - s).max(0.0) };
                }
                let sst = v * (later / 365.0).sqrt();
                let d1 = (s / strike).ln() / sst + sst / 2.0;
                let c = s * n(d1) - strike * n(d1 - sst);
                if call { c } else { c - s + strike }
            };
            for j in 0..2 * half {
                let (a, b) = (node(j), node(j + 1));
                let mut worst = 0.0f64;
                for state in &states[..count] {
                    let v = vols[*state as usize].to_num::<f64>();
                    let (va, vb) = (value(a, v), value(b, v));
                    for i in 1..400 {
                        let p = a + (b - a) * i as f64 / 400.0;
                        let chord = va + (vb - va) * i as f64 / 400.0;
                        worst = worst.max(chord - value(p, v));
                    }
                }
                let stored = if array.gap_intervals > 0 { array.long_gaps[j as usize].to_num::<f64>() } else { spot / 256.0 };
                prop_assert!(worst <= stored + 1e-6 * spot, "interval {j}: {worst} above {stored}");
            }
        }
    }
}

//! The scenario grid: which price and volatility moves a portfolio is stressed under.
//!
//! Core scenarios: `price_steps` evenly spaced price moves across `[-price_range, +price_range]`
//! (including 0), each in every vol state of [`GridParams::vol_states`]: vol up, unchanged and
//! down; with `twist > 0` a term-structure twist each way (short tenors up while long ones fall,
//! and the reverse); with `skew > 0` a skew move each way (vol change proportional to
//! log-moneyness: puts up and calls down, and the reverse). Each scenario values options now
//! (what shorts are stressed on) and `horizon_days` later (what longs are stressed on: the
//! look-ahead; `RiskArray::long_pnl`, `crate::margin`). Extended scenarios: large moves
//! (default -66%, -33%, +50%, +100%, +200%, +300%, +400%, +500%) at vol up, each P&L scaled by a
//! weight `extended_weight_numerator / |move|`, so a linear position loses no more than in the
//! core range, while convex short-option books (far out-of-the-money short calls) are charged
//! for their tail. Vol shocks scale with time to expiry: `(reference_days / max(days, 1))^p`,
//! with `p = vol_power_short` below `reference_days` and `vol_power_long` from there on. The
//! formulas of each vol state are in [`GridParams::state_vols`].

use crate::math::{exp, ln};
use crate::wide::{mul_q32, Rounding};
use fixed::types::I32F32;

/// Largest number of core price steps.
pub const MAX_PRICE_STEPS: usize = 13;
/// Largest number of extended (tail) scenarios.
pub const MAX_EXTENDED: usize = 8;
/// Largest number of vol states per core price move.
pub const MAX_VOL_STATES: usize = 7;
/// Largest number of scenarios in a grid (every vol state per core step plus the tail).
pub const MAX_SCENARIOS: usize = MAX_PRICE_STEPS * MAX_VOL_STATES + MAX_EXTENDED;

/// The implied-vol state of a scenario (formulas in [`GridParams::state_vols`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolShock {
    /// Vol shocked up by `vol_up * scale`.
    Up = 0,
    /// Vol unchanged.
    Same = 1,
    /// Vol shocked down by `vol_down * scale`.
    Down = 2,
    /// Term-structure twist: short tenors up, long tenors down.
    TwistFrontUp = 3,
    /// Term-structure twist: short tenors down, long tenors up.
    TwistFrontDown = 4,
    /// Skew: vol up below the reference spot's strike (puts), down above (calls).
    SkewPutsUp = 5,
    /// Skew: vol up above the reference spot's strike (calls), down below (puts).
    SkewCallsUp = 6,
}

impl VolShock {
    /// Every vol state, in grid order.
    pub const ALL: [VolShock; MAX_VOL_STATES] = [
        VolShock::Up,
        VolShock::Same,
        VolShock::Down,
        VolShock::TwistFrontUp,
        VolShock::TwistFrontDown,
        VolShock::SkewPutsUp,
        VolShock::SkewCallsUp,
    ];

    /// Short name, as `pm margin` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            VolShock::Up => "up",
            VolShock::Same => "same",
            VolShock::Down => "down",
            VolShock::TwistFrontUp => "twist-front-up",
            VolShock::TwistFrontDown => "twist-front-down",
            VolShock::SkewPutsUp => "skew-puts-up",
            VolShock::SkewCallsUp => "skew-calls-up",
        }
    }
}

/// The vols of one option in every vol state, indexed by `VolShock as usize`.
pub type StateVols = [I32F32; MAX_VOL_STATES];

/// One scenario: a relative price move, a vol state and a weight on the resulting P&L.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Relative price move (-0.16 = 16% down).
    pub price_move: I32F32,
    /// Vol state.
    pub vol_shock: VolShock,
    /// Multiplier on the scenario P&L (1 for core scenarios).
    pub weight: I32F32,
}

/// Every parameter of the grid and of the requirements built on it. See [`GridParams::default`]
/// for the defaults and their sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridParams {
    /// Largest core price move as a fraction of spot.
    pub price_range: I32F32,
    /// Number of core price moves, odd (so 0 is included), 3..=[`MAX_PRICE_STEPS`].
    pub price_steps: u8,
    /// Relative vol increase in the "up" state at the reference tenor (0.40 = +40%).
    pub vol_up: I32F32,
    /// Relative vol decrease in the "down" state at the reference tenor (0.22 = -22%).
    pub vol_down: I32F32,
    /// Tenor, in days, at which vol shocks are unscaled.
    pub vol_reference_days: I32F32,
    /// Exponent of the tenor scaling below the reference tenor.
    pub vol_power_short: I32F32,
    /// Exponent of the tenor scaling from the reference tenor on.
    pub vol_power_long: I32F32,
    /// Floor of a shocked-down vol.
    pub min_shocked_vol: I32F32,
    /// Number of extended scenarios used, 0..=[`MAX_EXTENDED`].
    pub extended_count: u8,
    /// Extended price moves (each > -1).
    pub extended_moves: [I32F32; MAX_EXTENDED],
    /// Extended weight numerator: weight = numerator / |move|.
    pub extended_weight_numerator: I32F32,
    /// Minimum-delta requirement per unit of |net delta| x spot.
    pub min_delta_net: I32F32,
    /// Minimum-delta requirement per unit of hedged delta x spot.
    pub min_delta_hedged: I32F32,
    /// Contingency per net short option contract, as a fraction of spot.
    pub short_option_contingency: I32F32,
    /// Initial requirement = maintenance x this factor (> 1).
    pub im_factor: I32F32,
    /// Look-ahead, days (>= 0): long options are stressed on their value this many days later
    /// (intrinsic past expiry), so their time decay is charged; shorts on their value now, so
    /// theirs is not credited.
    pub horizon_days: I32F32,
    /// Relative size of the term-structure twist at the ends of the curve, in [0, 1); 0 turns
    /// the two twist states off.
    pub twist: I32F32,
    /// Tenor, in days, that the twist pivots around (unchanged there), > 0.
    pub twist_pivot_days: I32F32,
    /// Ratio of tenors over which the twist goes from 0 to full: tenors at or below
    /// `pivot / width` move by the full `twist`, those at or above `pivot x width` by the full
    /// opposite, log-linear between; > 1.
    pub twist_width: I32F32,
    /// Skew move: relative vol change per unit of log-moneyness `ln(strike / reference spot)`,
    /// times the tenor scale of the vol shocks; >= 0, 0 turns the two skew states off.
    pub skew: I32F32,
    /// Concentration add-on to the initial requirement, >= 0: `initial += maintenance x
    /// concentration x sqrt(maintenance / (liquidity_lots x spot))` (see `crate::margin`).
    pub concentration: I32F32,
    /// What the market can absorb in a day, in lots of the underlying, >= 0; 0 turns the
    /// concentration add-on off (it is set per underlying: lots differ between underlyings).
    pub liquidity_lots: I32F32,
    /// Vega-offset contingency, >= 0: this fraction of the vega offset across expiries, the
    /// vol-up value change of the expiries net long vega against that of those net short
    /// (`crate::margin`); 0 turns it off.
    pub vega_offset: I32F32,
}

/// Why a parameter set was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridError {
    /// `price_range` must be in (0, 1).
    PriceRange,
    /// `price_steps` must be odd and within 3..=MAX_PRICE_STEPS.
    PriceSteps,
    /// Vol shocks must be >= 0 and `vol_down` < 1; the reference tenor > 0; powers >= 0.
    VolShock,
    /// `extended_count` too large or an extended move <= -1 or 0.
    ExtendedMoves,
    /// Requirement rates and the concentration parameters must be >= 0 and `im_factor` >= 1.
    Requirement,
    /// `horizon_days` must be >= 0.
    Horizon,
    /// `twist` must be in [0, 1), `twist_pivot_days` > 0, `twist_width` > 1, `skew` >= 0.
    Surface,
    /// A derived quantity left the fixed-point range.
    Overflow,
}

/// `numerator / denominator` as Q32.32, evaluated at compile time in constants.
const fn ratio(numerator: i64, denominator: i64) -> I32F32 {
    I32F32::from_bits((numerator << 32) / denominator)
}

/// The default grid. Follows the published Deribit / Paradex portfolio-margin parameters: 9
/// moves across ±16%, vol +40% / -22% with tenor power 0.30 / 0.13 around 30 days, the Deribit
/// tail table weighted by 16% / |move|, minimum delta 2% of net + 1% of hedged delta, 0.5% of
/// spot per net short option, and IM = 1.25 x MM. Look-ahead one day (SPAN values scenarios
/// after the margin period; here longs are, shorts are valued now, see `crate::margin`). The vol surface moves are sized by judgement against
/// crypto option surfaces (docs/risk-model.md): a twist of 40% at the ends, pivoting at the
/// 30-day reference tenor over a factor 3 of tenor each way (10 days and shorter: +40%, 90 days
/// and longer: -40%), and a skew move of 1.0 per unit of log-moneyness (a 10%-out-of-the-money
/// 30-day put: +10.5% of its vol). No vega-offset contingency by default: Deribit published
/// 25% of offsetting vega and later 0%, and the twist states stress exactly that offset here
/// (docs/risk-model.md); an underlying may set one.
pub const DEFAULT_GRID: GridParams = GridParams {
    price_range: ratio(16, 100),
    price_steps: 9,
    vol_up: ratio(40, 100),
    vol_down: ratio(22, 100),
    vol_reference_days: ratio(30, 1),
    vol_power_short: ratio(30, 100),
    vol_power_long: ratio(13, 100),
    min_shocked_vol: ratio(1, 100),
    extended_count: 8,
    extended_moves: [
        ratio(-66, 100),
        ratio(-33, 100),
        ratio(50, 100),
        ratio(1, 1),
        ratio(2, 1),
        ratio(3, 1),
        ratio(4, 1),
        ratio(5, 1),
    ],
    extended_weight_numerator: ratio(16, 100),
    min_delta_net: ratio(2, 100),
    min_delta_hedged: ratio(1, 100),
    short_option_contingency: ratio(5, 1000),
    im_factor: ratio(125, 100),
    horizon_days: ratio(1, 1),
    twist: ratio(40, 100),
    twist_pivot_days: ratio(30, 1),
    twist_width: ratio(3, 1),
    skew: ratio(1, 1),
    concentration: ratio(1, 1),
    liquidity_lots: I32F32::ZERO,
    vega_offset: I32F32::ZERO,
};

impl Default for GridParams {
    /// [`DEFAULT_GRID`].
    fn default() -> Self {
        DEFAULT_GRID
    }
}

/// `skew x scale x min(|m|, 1)`, rounded up, clamping after the products: a product with
/// an operand the compiler knows to be at most 1 becomes, on stock LLVM's SBF backend, a
/// 128-bit multiply it cannot lower.
#[inline(never)]
fn skew_size(skew: I32F32, scale: I32F32, log_moneyness: I32F32) -> Option<I32F32> {
    let per_moneyness = mul_q32(skew, scale, Rounding::Up)?;
    Some(mul_q32(per_moneyness, log_moneyness.abs(), Rounding::Up)?.min(per_moneyness))
}

/// The scenarios of a grid, stored compactly (price moves, tail weights and vol states; each
/// scenario is built on demand), so that a refresh keeps well within SBF's 4 KB stack frame.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioSet {
    /// Core moves, then tail moves.
    moves: [I32F32; MAX_PRICE_STEPS + MAX_EXTENDED],
    /// Tail weights.
    weights: [I32F32; MAX_EXTENDED],
    states: [VolShock; MAX_VOL_STATES],
    core_moves: u8,
    state_count: u8,
    tail: u8,
}

impl ScenarioSet {
    /// Scenario `index`: core first (for each move, every vol state of
    /// [`GridParams::vol_states`] in order), then the tail. `index` must be below
    /// [`ScenarioSet::len`].
    pub fn get(&self, index: usize) -> Scenario {
        let core = self.core_moves as usize * self.state_count as usize;
        if index < core {
            let states = self.state_count as usize;
            Scenario { price_move: self.moves[index / states], vol_shock: self.states[index % states], weight: I32F32::ONE }
        } else {
            let t = index - core;
            debug_assert!(t < self.tail as usize);
            Scenario { price_move: self.moves[self.core_moves as usize + t], vol_shock: VolShock::Up, weight: self.weights[t] }
        }
    }
    /// The scenarios in grid order.
    pub fn iter(&self) -> impl Iterator<Item = Scenario> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
    /// Number of scenarios.
    pub fn len(&self) -> usize {
        self.core_moves as usize * self.state_count as usize + self.tail as usize
    }
    /// Whether there are none (never true for validated parameters).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl GridParams {
    /// Checks every parameter; the grid is only built from validated parameters.
    pub fn validate(&self) -> Result<(), GridError> {
        if self.price_range <= 0 || self.price_range >= 1 {
            return Err(GridError::PriceRange);
        }
        let steps = self.price_steps as usize;
        if !(3..=MAX_PRICE_STEPS).contains(&steps) || steps.is_multiple_of(2) {
            return Err(GridError::PriceSteps);
        }
        if self.vol_up < 0
            || self.vol_down < 0
            || self.vol_down >= 1
            || self.vol_reference_days <= 0
            || self.vol_power_short < 0
            || self.vol_power_long < 0
            || self.min_shocked_vol < 0
        {
            return Err(GridError::VolShock);
        }
        if self.extended_count as usize > MAX_EXTENDED
            || self.extended_weight_numerator < 0
            || self.extended_moves[..self.extended_count as usize].iter().any(|m| *m <= -1 || *m == 0)
        {
            return Err(GridError::ExtendedMoves);
        }
        if self.min_delta_net < 0 || self.min_delta_hedged < 0 || self.short_option_contingency < 0 || self.im_factor < 1
        {
            return Err(GridError::Requirement);
        }
        if self.horizon_days < 0 {
            return Err(GridError::Horizon);
        }
        if self.twist < 0 || self.twist >= 1 || self.twist_pivot_days <= 0 || self.twist_width <= 1 || self.skew < 0 {
            return Err(GridError::Surface);
        }
        if self.concentration < 0 || self.liquidity_lots < 0 || self.vega_offset < 0 {
            return Err(GridError::Requirement);
        }
        Ok(())
    }

    /// Number of vol states per core price move: 3, plus 2 with a twist, plus 2 with a skew.
    pub const fn vol_state_count(&self) -> usize {
        3 + if self.twist.to_bits() > 0 { 2 } else { 0 } + if self.skew.to_bits() > 0 { 2 } else { 0 }
    }

    /// The vol states of each core price move, in grid order (first `vol_state_count()`).
    pub fn vol_states(&self) -> ([VolShock; MAX_VOL_STATES], usize) {
        let mut states = [VolShock::Same; MAX_VOL_STATES];
        let mut n = 0;
        for shock in VolShock::ALL {
            let on = match shock {
                VolShock::Up | VolShock::Same | VolShock::Down => true,
                VolShock::TwistFrontUp | VolShock::TwistFrontDown => self.twist > 0,
                VolShock::SkewPutsUp | VolShock::SkewCallsUp => self.skew > 0,
            };
            if on {
                states[n] = shock;
                n += 1;
            }
        }
        (states, n)
    }

    /// Number of scenarios of this grid, without building them (health checks only need the
    /// count to match the risk arrays).
    pub const fn scenario_count(&self) -> usize {
        self.price_steps as usize * self.vol_state_count() + self.extended_count as usize
    }

    /// Index of the "no price move, vol up" scenario; the other vol states of the zero move
    /// follow it in [`GridParams::vol_states`] order ("vol unchanged" is the next one).
    pub const fn zero_move_scenario(&self) -> usize {
        (self.price_steps.saturating_sub(1) as usize / 2) * self.vol_state_count()
    }

    /// The scenarios of this grid.
    pub fn scenarios(&self) -> Result<ScenarioSet, GridError> {
        self.validate()?;
        let (states, count) = self.vol_states();
        let mut set = ScenarioSet {
            moves: [I32F32::ZERO; MAX_PRICE_STEPS + MAX_EXTENDED],
            weights: [I32F32::ONE; MAX_EXTENDED],
            states,
            core_moves: self.price_steps,
            state_count: count as u8,
            tail: self.extended_count,
        };
        let half = ((self.price_steps - 1) >> 1) as i64;
        for (slot, step) in set.moves.iter_mut().zip(-half..=half) {
            // move = range * step / half, rounded away from zero so the grid reaches ±range.
            *slot = I32F32::from_bits(
                crate::wide::div_i128_by_i64(
                    crate::wide::mul_i64_wide(self.price_range.to_bits(), step),
                    half,
                    if step < 0 { Rounding::Down } else { Rounding::Up },
                )
                .ok_or(GridError::Overflow)?,
            );
        }
        let tail = &self.extended_moves[..self.extended_count as usize];
        for (t, &price_move) in tail.iter().enumerate() {
            set.moves[self.price_steps as usize + t] = price_move;
            set.weights[t] = crate::wide::div_q32(self.extended_weight_numerator, price_move.abs(), Rounding::Up)
                .ok_or(GridError::Overflow)?;
        }
        Ok(set)
    }

    /// Tenor scale of the vol shocks, `(reference_days / max(days, 1))^p`.
    pub fn vol_shock_scale(&self, days_to_expiry: I32F32) -> Result<I32F32, GridError> {
        let days = days_to_expiry.max(I32F32::ONE);
        let power = if days < self.vol_reference_days { self.vol_power_short } else { self.vol_power_long };
        let ratio = crate::wide::div_q32(self.vol_reference_days, days, Rounding::Up).ok_or(GridError::Overflow)?;
        let log = ln(ratio).ok_or(GridError::Overflow)?;
        let exponent = mul_q32(log, power, Rounding::Up).ok_or(GridError::Overflow)?;
        exp(exponent).ok_or(GridError::Overflow)
    }

    /// The vol of an option with reference vol `vol`, `days_to_expiry` and log-moneyness
    /// `ln(strike / reference spot)` in every vol state, each floored at `min_shocked_vol`
    /// (states turned off are left at `vol`). With `s` the tenor scale
    /// ([`GridParams::vol_shock_scale`]):
    ///
    /// - up: `vol x (1 + vol_up x s)`; down: `vol x (1 - vol_down x s)`;
    /// - twist, front up: `vol x (1 + twist x g)`, front down: `vol x (1 - twist x g)`, where
    ///   `g = clamp(-ln(max(days, 1) / twist_pivot_days) / ln(twist_width), -1, 1)` is +1 for short
    ///   tenors and -1 for long ones;
    /// - skew, puts up: `vol x (1 - skew x s x m)`, calls up: `vol x (1 + skew x s x m)`, where
    ///   `m` is the log-moneyness clamped to [-1, 1] (the moneyness of the reference spot: a
    ///   scenario moves the price, the skew moves the vol of each strike).
    pub fn state_vols(&self, vol: I32F32, days_to_expiry: I32F32, log_moneyness: I32F32) -> Result<StateVols, GridError> {
        let o = GridError::Overflow;
        let mul = |a: I32F32, b: I32F32, r: Rounding| mul_q32(a, b, r).ok_or(o);
        let floor = self.min_shocked_vol;
        let shocked = |factor: I32F32| -> Result<I32F32, GridError> {
            Ok(mul(vol, factor.max(I32F32::ZERO), Rounding::Down)?.max(floor))
        };
        let mut vols = [vol; MAX_VOL_STATES];
        let scale = self.vol_shock_scale(days_to_expiry)?;
        vols[VolShock::Up as usize] = shocked(I32F32::ONE + mul(self.vol_up, scale, Rounding::Up)?)?;
        vols[VolShock::Down as usize] = shocked(I32F32::ONE - mul(self.vol_down, scale, Rounding::Up)?)?;
        if self.twist > 0 {
            let g = self.twist_position(days_to_expiry)?;
            let change = mul(self.twist, g, Rounding::Up)?;
            vols[VolShock::TwistFrontUp as usize] = shocked(I32F32::ONE + change)?;
            vols[VolShock::TwistFrontDown as usize] = shocked(I32F32::ONE - change)?;
        }
        if self.skew > 0 {
            // The size of the move from non-negative factors, its sign applied after.
            let size = skew_size(self.skew, scale, log_moneyness).ok_or(o)?;
            let m = log_moneyness;
            let (low_strikes, high_strikes) = (I32F32::ONE + size, I32F32::ONE - size);
            let (puts_up, calls_up) = if m < 0 { (low_strikes, high_strikes) } else { (high_strikes, low_strikes) };
            vols[VolShock::SkewPutsUp as usize] = shocked(puts_up)?;
            vols[VolShock::SkewCallsUp as usize] = shocked(calls_up)?;
        }
        Ok(vols)
    }

    /// Where a tenor sits on the twist, in [-1, 1]: +1 at or below `pivot / width`, -1 at or
    /// above `pivot x width`, log-linear between (0 at the pivot).
    pub fn twist_position(&self, days_to_expiry: I32F32) -> Result<I32F32, GridError> {
        let o = GridError::Overflow;
        let days = days_to_expiry.max(I32F32::ONE);
        let log_ratio = ln(crate::wide::div_q32(days, self.twist_pivot_days, Rounding::Down).ok_or(o)?).ok_or(o)?;
        let log_width = ln(self.twist_width).ok_or(o)?;
        if log_ratio.abs() >= log_width {
            return Ok(if log_ratio > 0 { -I32F32::ONE } else { I32F32::ONE });
        }
        let position = crate::wide::div_q32(log_ratio, log_width, Rounding::Down).ok_or(o)?;
        Ok(-position.clamp(-I32F32::ONE, I32F32::ONE))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn default_grid_has_71_scenarios_reaching_the_range() {
        let params = GridParams::default();
        let set = params.scenarios().unwrap();
        assert_eq!(set.len(), 71);
        assert_eq!(params.scenario_count(), 71);
        assert_eq!(params.vol_state_count(), 7);
        let first = set.get(0);
        assert_eq!(first.price_move, -I32F32::from_num(0.16));
        assert_eq!(set.get(56).price_move, I32F32::from_num(0.16));
        let zero = params.zero_move_scenario();
        assert_eq!(zero, 28);
        assert_eq!(set.get(zero).price_move, I32F32::ZERO);
        assert_eq!(set.get(zero).vol_shock, VolShock::Up);
        assert_eq!(set.get(zero + 1).vol_shock, VolShock::Same);
        // Each move carries every state in order.
        for (i, s) in set.iter().take(63).enumerate() {
            assert_eq!(s.vol_shock, VolShock::ALL[i % 7]);
        }
        // Tail: weights 16% / |move|, vol up.
        let tail: Vec<Scenario> = set.iter().skip(63).collect();
        assert_eq!(tail[0].price_move, I32F32::from_num(-0.66));
        assert!((tail[0].weight.to_num::<f64>() - 0.16 / 0.66).abs() < 1e-9);
        assert!(tail.iter().all(|s| s.vol_shock == VolShock::Up));
    }

    #[test]
    fn surface_states_can_be_turned_off() {
        let flat = GridParams { twist: I32F32::ZERO, skew: I32F32::ZERO, ..GridParams::default() };
        assert_eq!(flat.scenario_count(), 35);
        assert_eq!(flat.zero_move_scenario(), 12);
        let twist_only = GridParams { skew: I32F32::ZERO, ..GridParams::default() };
        assert_eq!(twist_only.scenario_count(), 53);
        let (states, n) = twist_only.vol_states();
        assert_eq!(&states[..n], &[VolShock::Up, VolShock::Same, VolShock::Down, VolShock::TwistFrontUp, VolShock::TwistFrontDown]);
    }

    /// The default grid's vol states in double precision, written out independently of the
    /// fixed-point code (shared with the risk-array tests): vol, days to expiry, ln(K/S).
    pub(crate) fn reference_state_vols(vol: f64, days: f64, log_moneyness: f64) -> [f64; 7] {
        let d = days.max(1.0);
        let s = if d < 30.0 { (30.0 / d).powf(0.30) } else { (30.0 / d).powf(0.13) };
        let g = (-(d / 30.0).ln() / 3f64.ln()).clamp(-1.0, 1.0);
        let m = log_moneyness.clamp(-1.0, 1.0);
        [
            vol * (1.0 + 0.4 * s),
            vol,
            vol * (1.0 - 0.22 * s),
            vol * (1.0 + 0.4 * g),
            vol * (1.0 - 0.4 * g),
            (vol * (1.0 - s * m)).max(0.01),
            (vol * (1.0 + s * m)).max(0.01),
        ]
    }

    /// The surface states against a double-precision copy of their formulas.
    #[test]
    fn state_vols_follow_their_formulas() {
        let p = GridParams::default();
        for &(vol, days, m) in &[(0.6f64, 30.0f64, -0.105f64), (0.8, 1.0, 0.2), (0.5, 365.0, -0.5), (0.6, 60.0, 3.0), (1.2, 0.01, 0.0)] {
            let v = p.state_vols(I32F32::from_num(vol), I32F32::from_num(days), I32F32::from_num(m)).unwrap();
            let expect = reference_state_vols(vol, days, m);
            for (i, e) in expect.iter().enumerate() {
                let got = v[i].to_num::<f64>();
                assert!((got - e).abs() < 1e-6, "state {i} vol {vol} days {days} m {m}: {got} vs {e}");
            }
        }
        // Short tenors take the full twist one way, long ones the other.
        assert_eq!(p.twist_position(I32F32::from_num(9)).unwrap(), I32F32::ONE);
        assert_eq!(p.twist_position(I32F32::from_num(100)).unwrap(), -I32F32::ONE);
        assert!(p.twist_position(I32F32::from_num(30)).unwrap().abs() < I32F32::from_num(1e-6));
    }

    #[test]
    fn vol_scale_follows_tenor() {
        let params = GridParams::default();
        let at_ref = params.vol_shock_scale(I32F32::from_num(30)).unwrap();
        assert!((at_ref.to_num::<f64>() - 1.0).abs() < 1e-8);
        let short = params.vol_shock_scale(I32F32::from_num(3)).unwrap().to_num::<f64>();
        assert!((short - 10f64.powf(0.30)).abs() < 1e-7);
        let long = params.vol_shock_scale(I32F32::from_num(240)).unwrap().to_num::<f64>();
        assert!((long - (30.0f64 / 240.0).powf(0.13)).abs() < 1e-7);
        // Below one day the scale stops growing.
        assert_eq!(params.vol_shock_scale(I32F32::from_num(0.1)), params.vol_shock_scale(I32F32::ONE));
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let base = GridParams::default();
        assert_eq!(GridParams { price_steps: 8, ..base }.validate(), Err(GridError::PriceSteps));
        assert_eq!(GridParams { price_steps: 15, ..base }.validate(), Err(GridError::PriceSteps));
        assert_eq!(GridParams { price_range: I32F32::ZERO, ..base }.validate(), Err(GridError::PriceRange));
        assert_eq!(GridParams { vol_down: I32F32::ONE, ..base }.validate(), Err(GridError::VolShock));
        let mut moves = base.extended_moves;
        moves[0] = -I32F32::ONE;
        assert_eq!(GridParams { extended_moves: moves, ..base }.validate(), Err(GridError::ExtendedMoves));
        assert_eq!(GridParams { im_factor: I32F32::from_num(0.9), ..base }.validate(), Err(GridError::Requirement));
        assert_eq!(GridParams { horizon_days: -I32F32::DELTA, ..base }.validate(), Err(GridError::Horizon));
        assert_eq!(GridParams { twist: I32F32::ONE, ..base }.validate(), Err(GridError::Surface));
        assert_eq!(GridParams { twist_width: I32F32::ONE, ..base }.validate(), Err(GridError::Surface));
        assert_eq!(GridParams { twist_pivot_days: I32F32::ZERO, ..base }.validate(), Err(GridError::Surface));
        assert_eq!(GridParams { skew: -I32F32::DELTA, ..base }.validate(), Err(GridError::Surface));
    }
}

//! The scenario grid: which price and volatility moves a portfolio is stressed under.
//!
//! Core scenarios: `price_steps` evenly spaced price moves across `[-price_range, +price_range]`
//! (including 0), each at vol up, vol unchanged and vol down. Extended scenarios: large moves
//! (default -66%, -33%, +50%, +100%, +200%, +300%, +400%, +500%) at vol up, each P&L scaled by a
//! weight `extended_weight_numerator / |move|`, so a linear position loses no more than in the
//! core range, while convex short-option books (far out-of-the-money short calls) are charged
//! for their tail. Vol shocks scale with time to expiry: `(reference_days / max(days, 1))^p`,
//! with `p = vol_power_short` below `reference_days` and `vol_power_long` from there on.

use crate::math::{exp, ln};
use crate::wide::{mul_q32, Rounding};
use fixed::types::I32F32;

/// Largest number of core price steps.
pub const MAX_PRICE_STEPS: usize = 13;
/// Largest number of extended (tail) scenarios.
pub const MAX_EXTENDED: usize = 8;
/// Largest number of scenarios in a grid (3 vol states per core step plus the tail).
pub const MAX_SCENARIOS: usize = MAX_PRICE_STEPS * 3 + MAX_EXTENDED;

/// The implied-vol state of a scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolShock {
    /// Vol shocked up by `vol_up * scale`.
    Up,
    /// Vol unchanged.
    Same,
    /// Vol shocked down by `vol_down * scale`.
    Down,
}

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
    /// Requirement rates must be >= 0 and `im_factor` >= 1.
    Requirement,
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
/// spot per net short option, and IM = 1.25 x MM.
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
};

impl Default for GridParams {
    /// [`DEFAULT_GRID`].
    fn default() -> Self {
        DEFAULT_GRID
    }
}

/// A fixed-capacity list of scenarios.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioSet {
    scenarios: [Scenario; MAX_SCENARIOS],
    len: usize,
}

impl ScenarioSet {
    /// The scenarios, core first (for each move: up, same, down), then the tail.
    pub fn as_slice(&self) -> &[Scenario] {
        &self.scenarios[..self.len]
    }
    /// Number of scenarios.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether there are none (never true for validated parameters).
    pub fn is_empty(&self) -> bool {
        self.len == 0
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
        Ok(())
    }

    /// Number of scenarios of this grid, without building them (health checks only need the
    /// count to match the risk arrays).
    pub const fn scenario_count(&self) -> usize {
        self.price_steps as usize * 3 + self.extended_count as usize
    }

    /// The scenarios of this grid.
    pub fn scenarios(&self) -> Result<ScenarioSet, GridError> {
        self.validate()?;
        let blank = Scenario { price_move: I32F32::ZERO, vol_shock: VolShock::Same, weight: I32F32::ONE };
        let mut set = ScenarioSet { scenarios: [blank; MAX_SCENARIOS], len: 0 };
        let half = ((self.price_steps - 1) >> 1) as i64;
        for step in -half..=half {
            // move = range * step / half, rounded away from zero so the grid reaches ±range.
            let price_move = I32F32::from_bits(
                crate::wide::div_i128_by_i64(
                    crate::wide::mul_i64_wide(self.price_range.to_bits(), step),
                    half,
                    if step < 0 { Rounding::Down } else { Rounding::Up },
                )
                .ok_or(GridError::Overflow)?,
            );
            for vol_shock in [VolShock::Up, VolShock::Same, VolShock::Down] {
                set.scenarios[set.len] = Scenario { price_move, vol_shock, weight: I32F32::ONE };
                set.len += 1;
            }
        }
        for &price_move in &self.extended_moves[..self.extended_count as usize] {
            let weight = crate::wide::div_q32(self.extended_weight_numerator, price_move.abs(), Rounding::Up)
                .ok_or(GridError::Overflow)?;
            set.scenarios[set.len] = Scenario { price_move, vol_shock: VolShock::Up, weight };
            set.len += 1;
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

    /// The vol in a scenario's vol state for an option with the given tenor.
    pub fn shocked_vol(&self, vol: I32F32, shock: VolShock, scale: I32F32) -> Result<I32F32, GridError> {
        let factor = match shock {
            VolShock::Same => return Ok(vol),
            VolShock::Up => I32F32::ONE + mul_q32(self.vol_up, scale, Rounding::Up).ok_or(GridError::Overflow)?,
            VolShock::Down => I32F32::ONE - mul_q32(self.vol_down, scale, Rounding::Up).ok_or(GridError::Overflow)?,
        };
        let shocked = mul_q32(vol, factor, Rounding::Down).ok_or(GridError::Overflow)?;
        Ok(shocked.max(self.min_shocked_vol))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_has_35_scenarios_reaching_the_range() {
        let set = GridParams::default().scenarios().unwrap();
        assert_eq!(set.len(), 35);
        assert_eq!(GridParams::default().scenario_count(), 35);
        let first = set.as_slice()[0];
        assert_eq!(first.price_move, -I32F32::from_num(0.16));
        assert_eq!(set.as_slice()[26].price_move, I32F32::from_num(0.16));
        assert_eq!(set.as_slice()[12].price_move, I32F32::ZERO);
        // Tail: weights 16% / |move|, vol up.
        let tail = &set.as_slice()[27..];
        assert_eq!(tail[0].price_move, I32F32::from_num(-0.66));
        assert!((tail[0].weight.to_num::<f64>() - 0.16 / 0.66).abs() < 1e-9);
        assert!(tail.iter().all(|s| s.vol_shock == VolShock::Up));
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
    }
}

//! An underlying: the asset derivatives are written on, with its oracle and scenario grid.

use anchor_lang::prelude::*;
use fixed::types::I32F32;
use risk_engine::scenario::{GridParams, MAX_EXTENDED};

/// Seed prefix of underlying PDAs: `["underlying", group, index (u16 LE)]`.
pub const UNDERLYING_SEED: &[u8] = b"underlying";

/// `numerator / denominator` as Q32.32, for the bounds below.
const fn q32_ratio(numerator: i64, denominator: i64) -> I32F32 {
    I32F32::from_bits((numerator << 32) / denominator)
}

/// Smallest core price range of a grid (1%): a narrower grid charges almost nothing for price
/// risk. It must also exceed the group's liquidation fee (see [`GridConfig::validate_bounds`]).
pub const MIN_GRID_PRICE_RANGE: I32F32 = q32_ratio(1, 100);
/// Largest core price range of a grid (50%); the tail scenarios cover larger moves.
pub const MAX_GRID_PRICE_RANGE: I32F32 = q32_ratio(1, 2);
/// Largest relative vol-up shock at the reference tenor (+200%).
pub const MAX_GRID_VOL_UP: I32F32 = q32_ratio(2, 1);
/// Shortest reference tenor of the vol shocks, days.
pub const MIN_GRID_VOL_REFERENCE_DAYS: I32F32 = q32_ratio(1, 1);
/// Longest reference tenor of the vol shocks, days.
pub const MAX_GRID_VOL_REFERENCE_DAYS: I32F32 = q32_ratio(365, 1);
/// Largest exponent of the tenor scaling of the vol shocks (short and long side).
pub const MAX_GRID_VOL_POWER: I32F32 = q32_ratio(1, 1);
/// Largest vol-up shock at the shortest tenor (one day), `vol_up x scale(1 day)` (+1000%):
/// keeps shocked vols, and the option prices computed from them, in range.
pub const MAX_GRID_VOL_UP_SHOCK: I32F32 = q32_ratio(10, 1);
/// Smallest floor of a shocked-down vol (1 vol point): an option is never priced at zero vol.
pub const MIN_GRID_MIN_SHOCKED_VOL: I32F32 = q32_ratio(1, 100);
/// Largest floor of a shocked-down vol (100 vol points).
pub const MAX_GRID_MIN_SHOCKED_VOL: I32F32 = q32_ratio(1, 1);
/// Largest tail (extended) fall (-90%): the engine allows any move above -100%, but a spot
/// shocked to a sliver of itself puts `strike / spot` out of range and the risk array cannot be
/// computed.
pub const MIN_GRID_EXTENDED_MOVE: I32F32 = q32_ratio(-9, 10);
/// Largest tail (extended) price move (+1000%). Tail moves must also be at least the core
/// price range in size (they lie beyond it), which bounds their weights.
pub const MAX_GRID_EXTENDED_MOVE: I32F32 = q32_ratio(10, 1);
/// Largest tail weight numerator (a tail scenario weighs `numerator / |move|`).
pub const MAX_GRID_EXTENDED_WEIGHT_NUMERATOR: I32F32 = q32_ratio(1, 1);
/// Largest minimum-delta and short-option contingency rate, fraction of spot (100%).
pub const MAX_GRID_REQUIREMENT_RATE: I32F32 = q32_ratio(1, 1);
/// Largest ratio of initial to maintenance requirement (4x).
pub const MAX_GRID_IM_FACTOR: I32F32 = q32_ratio(4, 1);
/// Largest concentration add-on factor (the add-on is `maintenance x concentration x
/// sqrt(maintenance / liquidity notional)`).
pub const MAX_GRID_CONCENTRATION: I32F32 = q32_ratio(4, 1);
/// Largest vega-offset contingency rate (the whole offsetting vol-up value change).
pub const MAX_GRID_VEGA_OFFSET: I32F32 = q32_ratio(1, 1);
/// Longest look-ahead, days (a week: SPAN's margin periods are one to a few days).
pub const MAX_GRID_HORIZON_DAYS: I32F32 = q32_ratio(7, 1);
/// Largest term-structure twist at the ends of the curve (90%: a factor stays above 0.1).
pub const MAX_GRID_TWIST: I32F32 = q32_ratio(9, 10);
/// Shortest and longest twist pivot, days.
pub const MIN_GRID_TWIST_PIVOT_DAYS: I32F32 = q32_ratio(1, 1);
/// Longest twist pivot, days.
pub const MAX_GRID_TWIST_PIVOT_DAYS: I32F32 = q32_ratio(365, 1);
/// Largest twist width (a ratio of tenors; the smallest is anything above 1).
pub const MAX_GRID_TWIST_WIDTH: I32F32 = q32_ratio(100, 1);
/// Largest skew move per unit of log-moneyness.
pub const MAX_GRID_SKEW: I32F32 = q32_ratio(3, 1);
/// Largest skew move at the shortest tenor, `skew x scale(1 day)`: with log-moneyness clamped to
/// [-1, 1], a skewed vol stays within 11x the posted vol, which keeps option prices in range.
pub const MAX_GRID_SKEW_SHOCK: I32F32 = q32_ratio(10, 1);

/// The scenario grid as stored on-chain: every field of `risk_engine::scenario::GridParams`,
/// Q32.32 values as raw `i64` bits.
#[zero_copy]
#[repr(C)]
#[derive(Debug, PartialEq, Eq, AnchorSerialize, AnchorDeserialize)]
pub struct GridConfig {
    pub price_range_bits: i64,
    pub vol_up_bits: i64,
    pub vol_down_bits: i64,
    pub vol_reference_days_bits: i64,
    pub vol_power_short_bits: i64,
    pub vol_power_long_bits: i64,
    pub min_shocked_vol_bits: i64,
    pub extended_moves_bits: [i64; MAX_EXTENDED],
    pub extended_weight_numerator_bits: i64,
    pub min_delta_net_bits: i64,
    pub min_delta_hedged_bits: i64,
    pub short_option_contingency_bits: i64,
    pub im_factor_bits: i64,
    pub horizon_days_bits: i64,
    pub twist_bits: i64,
    pub twist_pivot_days_bits: i64,
    pub twist_width_bits: i64,
    pub skew_bits: i64,
    pub concentration_bits: i64,
    pub liquidity_lots_bits: i64,
    pub vega_offset_bits: i64,
    pub price_steps: u8,
    pub extended_count: u8,
    pub padding: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<GridConfig>() == 28 * 8 + 8);

impl From<&GridParams> for GridConfig {
    fn from(p: &GridParams) -> Self {
        let mut extended = [0i64; MAX_EXTENDED];
        for (slot, m) in extended.iter_mut().zip(p.extended_moves.iter()) {
            *slot = m.to_bits();
        }
        GridConfig {
            price_range_bits: p.price_range.to_bits(),
            vol_up_bits: p.vol_up.to_bits(),
            vol_down_bits: p.vol_down.to_bits(),
            vol_reference_days_bits: p.vol_reference_days.to_bits(),
            vol_power_short_bits: p.vol_power_short.to_bits(),
            vol_power_long_bits: p.vol_power_long.to_bits(),
            min_shocked_vol_bits: p.min_shocked_vol.to_bits(),
            extended_moves_bits: extended,
            extended_weight_numerator_bits: p.extended_weight_numerator.to_bits(),
            min_delta_net_bits: p.min_delta_net.to_bits(),
            min_delta_hedged_bits: p.min_delta_hedged.to_bits(),
            short_option_contingency_bits: p.short_option_contingency.to_bits(),
            im_factor_bits: p.im_factor.to_bits(),
            horizon_days_bits: p.horizon_days.to_bits(),
            twist_bits: p.twist.to_bits(),
            twist_pivot_days_bits: p.twist_pivot_days.to_bits(),
            twist_width_bits: p.twist_width.to_bits(),
            skew_bits: p.skew.to_bits(),
            concentration_bits: p.concentration.to_bits(),
            liquidity_lots_bits: p.liquidity_lots.to_bits(),
            vega_offset_bits: p.vega_offset.to_bits(),
            price_steps: p.price_steps,
            extended_count: p.extended_count,
            padding: [0; 6],
        }
    }
}

impl GridConfig {
    /// Checks the bounds the program adds to the engine's own validation
    /// (`GridParams::validate`, `InvalidGridParams`): each class has its own error.
    /// `liquidation_fee_ppm` is the group's: the core price range must exceed it, so that
    /// liquidating a perp releases more requirement than the fee costs.
    pub fn validate_bounds(&self, liquidation_fee_ppm: u32) -> Result<()> {
        use crate::error::MarginError;
        let p = self.params();
        p.validate().map_err(|_| error!(MarginError::InvalidGridParams))?;
        let fee = q32_ratio(liquidation_fee_ppm as i64, crate::state::PPM as i64);
        require!(
            MIN_GRID_PRICE_RANGE <= p.price_range && p.price_range <= MAX_GRID_PRICE_RANGE && p.price_range > fee,
            MarginError::GridPriceRangeOutOfBounds
        );
        let vol_ok = p.vol_up <= MAX_GRID_VOL_UP
            && (MIN_GRID_VOL_REFERENCE_DAYS..=MAX_GRID_VOL_REFERENCE_DAYS).contains(&p.vol_reference_days)
            && p.vol_power_short <= MAX_GRID_VOL_POWER
            && p.vol_power_long <= MAX_GRID_VOL_POWER
            && (MIN_GRID_MIN_SHOCKED_VOL..=MAX_GRID_MIN_SHOCKED_VOL).contains(&p.min_shocked_vol);
        require!(vol_ok, MarginError::GridVolShockOutOfBounds);
        let shortest = p.vol_shock_scale(I32F32::ONE).map_err(|_| error!(MarginError::GridVolShockOutOfBounds))?;
        let up_shock = risk_engine::wide::mul_q32(p.vol_up, shortest, risk_engine::wide::Rounding::Up);
        require!(up_shock.is_some_and(|s| s <= MAX_GRID_VOL_UP_SHOCK), MarginError::GridVolShockOutOfBounds);
        // Tail moves lie beyond the core range, and each weighs at most 1 (|move| >= the
        // numerator): then no scenario loses more than a position's value, which is what keeps
        // a long option's requirement within its premium.
        let moves = &p.extended_moves[..p.extended_count as usize];
        require!(
            p.extended_weight_numerator <= MAX_GRID_EXTENDED_WEIGHT_NUMERATOR
                && moves.iter().all(|m| {
                    (MIN_GRID_EXTENDED_MOVE..=MAX_GRID_EXTENDED_MOVE).contains(m)
                        && m.abs() >= p.price_range
                        && m.abs() >= p.extended_weight_numerator
                }),
            MarginError::GridTailOutOfBounds
        );
        require!(
            (I32F32::ZERO..=MAX_GRID_HORIZON_DAYS).contains(&p.horizon_days),
            MarginError::GridHorizonOutOfBounds
        );
        let skew_shock = risk_engine::wide::mul_q32(p.skew, shortest, risk_engine::wide::Rounding::Up);
        require!(
            (I32F32::ZERO..=MAX_GRID_TWIST).contains(&p.twist)
                && (MIN_GRID_TWIST_PIVOT_DAYS..=MAX_GRID_TWIST_PIVOT_DAYS).contains(&p.twist_pivot_days)
                && p.twist_width > I32F32::ONE
                && p.twist_width <= MAX_GRID_TWIST_WIDTH
                && (I32F32::ZERO..=MAX_GRID_SKEW).contains(&p.skew)
                && skew_shock.is_some_and(|s| s <= MAX_GRID_SKEW_SHOCK),
            MarginError::GridSurfaceOutOfBounds
        );
        require!(
            p.min_delta_net <= MAX_GRID_REQUIREMENT_RATE
                && p.min_delta_hedged <= MAX_GRID_REQUIREMENT_RATE
                && p.short_option_contingency <= MAX_GRID_REQUIREMENT_RATE
                && p.im_factor <= MAX_GRID_IM_FACTOR
                && p.concentration <= MAX_GRID_CONCENTRATION
                && p.vega_offset <= MAX_GRID_VEGA_OFFSET,
            MarginError::GridRequirementOutOfBounds
        );
        Ok(())
    }

    /// The engine's parameters.
    pub fn params(&self) -> GridParams {
        let f = I32F32::from_bits;
        let mut moves = [I32F32::ZERO; MAX_EXTENDED];
        for (m, bits) in moves.iter_mut().zip(self.extended_moves_bits.iter()) {
            *m = f(*bits);
        }
        GridParams {
            price_range: f(self.price_range_bits),
            price_steps: self.price_steps,
            vol_up: f(self.vol_up_bits),
            vol_down: f(self.vol_down_bits),
            vol_reference_days: f(self.vol_reference_days_bits),
            vol_power_short: f(self.vol_power_short_bits),
            vol_power_long: f(self.vol_power_long_bits),
            min_shocked_vol: f(self.min_shocked_vol_bits),
            extended_count: self.extended_count,
            extended_moves: moves,
            extended_weight_numerator: f(self.extended_weight_numerator_bits),
            min_delta_net: f(self.min_delta_net_bits),
            min_delta_hedged: f(self.min_delta_hedged_bits),
            short_option_contingency: f(self.short_option_contingency_bits),
            im_factor: f(self.im_factor_bits),
            horizon_days: f(self.horizon_days_bits),
            twist: f(self.twist_bits),
            twist_pivot_days: f(self.twist_pivot_days_bits),
            twist_width: f(self.twist_width_bits),
            skew: f(self.skew_bits),
            concentration: f(self.concentration_bits),
            liquidity_lots: f(self.liquidity_lots_bits),
            vega_offset: f(self.vega_offset_bits),
        }
    }
}

/// An underlying asset with its oracle, grid and risk-array tolerances.
#[account(zero_copy)]
#[repr(C)]
pub struct Underlying {
    /// Group of the underlying.
    pub group: Pubkey,
    /// Pyth `PriceUpdateV2` account of the underlying's price in the quote currency.
    pub oracle: Pubkey,
    /// Pyth feed id.
    pub feed_id: [u8; 32],
    /// Collateral bank whose token is this underlying (enters the grid as delta-one exposure);
    /// `Pubkey::default()` if none.
    pub collateral_bank: Pubkey,
    /// Scenario grid.
    pub grid: GridConfig,
    /// Oldest oracle price accepted, seconds.
    pub max_price_age_seconds: u32,
    /// Largest oracle confidence accepted, ppm of the price.
    pub max_confidence_ppm: u32,
    /// Relative spot move (ppm) from a risk array's reference before it must be refreshed.
    pub array_price_tolerance_ppm: u32,
    /// Absolute vol move (ppm of vol units: 20_000 = 2 vol points) before a refresh is needed.
    pub array_vol_tolerance_ppm: u32,
    /// Oldest risk array accepted, seconds.
    pub array_max_age_seconds: u32,
    /// Index in the group (PDA seed).
    pub underlying_index: u16,
    /// A lot is 10^lot_size_exponent units of the underlying (e.g. -3: 0.001 SOL).
    pub lot_size_exponent: i8,
    /// PDA bump.
    pub bump: u8,
    /// Correlation group (1..=8, its correlation in `Group::correlation_ppm`); 0 = none.
    pub correlation_group: u8,
    /// Space for future fields.
    pub reserved: [u8; 55],
}

const _: () = assert!(core::mem::size_of::<Underlying>() == 4 * 32 + 232 + 5 * 4 + 2 + 1 + 1 + 56);

#[cfg(test)]
mod tests {
    use super::*;
    use risk_engine::black_scholes::OptionKind;
    use risk_engine::risk_array::{compute_risk_array, Instrument, MarketState};

    /// Grids at the corners of the bounds: the widest core range, the largest shocks and tail,
    /// the highest requirement rates; and the steepest one-day vol shock the bounds allow.
    fn extreme_grids() -> [GridParams; 3] {
        let mut widest = GridParams::default();
        widest.price_range = MAX_GRID_PRICE_RANGE;
        widest.vol_up = MAX_GRID_VOL_UP;
        widest.vol_down = I32F32::from_bits(I32F32::ONE.to_bits() - 1);
        widest.vol_reference_days = MIN_GRID_VOL_REFERENCE_DAYS;
        widest.vol_power_short = MAX_GRID_VOL_POWER;
        widest.vol_power_long = MAX_GRID_VOL_POWER;
        widest.min_shocked_vol = MIN_GRID_MIN_SHOCKED_VOL;
        widest.extended_moves = [
            MIN_GRID_EXTENDED_MOVE,
            -MAX_GRID_PRICE_RANGE,
            MAX_GRID_PRICE_RANGE,
            q32_ratio(1, 1),
            q32_ratio(2, 1),
            q32_ratio(5, 1),
            q32_ratio(8, 1),
            MAX_GRID_EXTENDED_MOVE,
        ];
        // Every tail move at least the numerator in size (weights <= 1).
        widest.extended_weight_numerator = MAX_GRID_PRICE_RANGE;
        widest.min_delta_net = MAX_GRID_REQUIREMENT_RATE;
        widest.min_delta_hedged = MAX_GRID_REQUIREMENT_RATE;
        widest.short_option_contingency = MAX_GRID_REQUIREMENT_RATE;
        widest.im_factor = MAX_GRID_IM_FACTOR;
        widest.concentration = MAX_GRID_CONCENTRATION;
        widest.vega_offset = MAX_GRID_VEGA_OFFSET;
        widest.liquidity_lots = I32F32::DELTA;
        widest.price_steps = risk_engine::scenario::MAX_PRICE_STEPS as u8;
        widest.horizon_days = MAX_GRID_HORIZON_DAYS;
        widest.twist = MAX_GRID_TWIST;
        widest.twist_pivot_days = MAX_GRID_TWIST_PIVOT_DAYS;
        widest.twist_width = I32F32::ONE + I32F32::DELTA;
        // skew x scale(1 day) = 3 x 1 (reference tenor 1 day) within the shock bound.
        widest.skew = MAX_GRID_SKEW;
        let mut steep = GridParams::default();
        steep.vol_reference_days = MAX_GRID_VOL_REFERENCE_DAYS;
        steep.vol_power_short = q32_ratio(39, 100); // 365^0.39 = 9.98
        steep.vol_up = I32F32::ONE;
        steep.min_shocked_vol = MAX_GRID_MIN_SHOCKED_VOL;
        // The steepest skew the shock bound allows at that tenor scale (10 / 9.98), the
        // narrowest twist pivot and the widest twist.
        steep.skew = q32_ratio(1, 1);
        steep.twist = MAX_GRID_TWIST;
        steep.twist_pivot_days = MIN_GRID_TWIST_PIVOT_DAYS;
        steep.twist_width = MAX_GRID_TWIST_WIDTH;
        [GridParams::default(), widest, steep]
    }

    #[test]
    fn the_extreme_grids_are_within_the_bounds() {
        for p in extreme_grids() {
            GridConfig::from(&p).validate_bounds(0).unwrap();
        }
    }

    /// Options listed under the bounds (vol 0.01..=10, up to two years, strikes a tenth to ten
    /// times the spot; expired ones at no vol, as `refresh_risk_array` computes them) get a risk array on every extreme grid: a market within the bounds can always be
    /// refreshed, so health never fails on its parameters.
    #[test]
    fn risk_arrays_compute_at_the_extremes_of_the_bounds() {
        let vols = [q32_ratio(1, 100), q32_ratio(60, 100), q32_ratio(10, 1)];
        let days = [I32F32::ZERO, q32_ratio(1, 86_400), I32F32::ONE, q32_ratio(30, 1), q32_ratio(730, 1)];
        for p in extreme_grids() {
            let scenarios = p.scenarios().unwrap();
            for spot in [1_000i64, 150_000, 10_000_000] {
                let state = MarketState { instrument: Instrument::Linear, spot: I32F32::from_num(spot), vol: I32F32::ZERO };
                compute_risk_array(&state, &p, &scenarios).unwrap();
                for strike in [spot / 10, spot, spot * 10] {
                    for kind in [OptionKind::Call, OptionKind::Put] {
                        for vol in vols {
                            for d in days {
                                // From expiry on, arrays are intrinsic values at no vol.
                                let vol = if d == I32F32::ZERO { I32F32::ZERO } else { vol };
                                let instrument = Instrument::Option { kind, strike: I32F32::from_num(strike), days_to_expiry: d };
                                let state = MarketState { instrument, spot: I32F32::from_num(spot), vol };
                                let result = compute_risk_array(&state, &p, &scenarios);
                                assert!(result.is_ok(), "spot {spot} strike {strike} {kind:?} vol {vol} days {d}: {result:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}

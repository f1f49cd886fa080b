//! An underlying: the asset derivatives are written on, with its oracle and scenario grid.

use anchor_lang::prelude::*;
use fixed::types::I32F32;
use risk_engine::scenario::{GridParams, MAX_EXTENDED};

/// Seed prefix of underlying PDAs: `["underlying", group, index (u16 LE)]`.
pub const UNDERLYING_SEED: &[u8] = b"underlying";

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
    pub price_steps: u8,
    pub extended_count: u8,
    pub padding: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<GridConfig>() == 20 * 8 + 8);

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
            price_steps: p.price_steps,
            extended_count: p.extended_count,
            padding: [0; 6],
        }
    }
}

impl GridConfig {
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
    /// Space for future fields.
    pub reserved: [u8; 64],
}

const _: () = assert!(core::mem::size_of::<Underlying>() == 4 * 32 + 168 + 5 * 4 + 2 + 1 + 1 + 64);

//! A derivatives market: a perpetual future or a European option on an underlying, with its
//! posted volatility, funding state and risk array.

use anchor_lang::prelude::*;
use fixed::types::I32F32;
use risk_engine::black_scholes::OptionKind;
use risk_engine::risk_array::{Instrument, RiskArray};
use risk_engine::scenario::MAX_SCENARIOS;

/// Seed prefix of market PDAs: `["market", group, index (u16 LE)]`.
pub const MARKET_SEED: &[u8] = b"market";
/// Seconds per day, for option tenors.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// What a market trades.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]

pub enum MarketKind {
    /// Linear perpetual future, quote-settled, with funding.
    Perp,
    /// European call, cash-settled in quote at expiry.
    Call,
    /// European put, cash-settled in quote at expiry.
    Put,
}

impl MarketKind {
    /// Decodes the stored byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(MarketKind::Perp),
            1 => Some(MarketKind::Call),
            2 => Some(MarketKind::Put),
            _ => None,
        }
    }
}

/// A market's static and dynamic state. Prices are per lot of the underlying in quote native
/// units, Q32.32 (`*_bits`).
#[account(zero_copy)]
#[repr(C)]
pub struct Market {
    /// Group of the market.
    pub group: Pubkey,
    /// Underlying of the market.
    pub underlying: Pubkey,
    /// Per-lot P&L of one long lot in each scenario (Q32.32 bits, quote native units).
    pub risk_array_bits: [i64; MAX_SCENARIOS],
    /// Delta of one lot at the array's reference (Q32.32 bits, lots of underlying).
    pub array_delta_bits: i64,
    /// Value of one long lot at the reference (Q32.32 bits; 0 for perps).
    pub array_value_bits: i64,
    /// Spot per lot the array was computed at (Q32.32 bits).
    pub array_spot_bits: i64,
    /// Vol the array was computed at (Q32.32 bits).
    pub array_vol_bits: i64,
    /// Unix time of the last refresh (0 = never).
    pub array_updated_ts: i64,
    /// Largest |cell| of the array (Q32.32 bits).
    pub array_max_abs_cell_bits: i64,
    /// Option strike per lot, whole quote native units; 0 for perps.
    pub strike_per_lot_native: i64,
    /// Option expiry, unix seconds; 0 for perps.
    pub expiry_ts: i64,
    /// Posted implied vol (Q32.32 bits); options only.
    pub vol_bits: i64,
    /// When the vol was posted, unix seconds.
    pub vol_updated_ts: i64,
    /// Lowest vol the risk authority may post (Q32.32 bits).
    pub min_vol_bits: i64,
    /// Highest vol the risk authority may post (Q32.32 bits).
    pub max_vol_bits: i64,
    /// Largest change of vol in one update (Q32.32 bits).
    pub max_vol_change_bits: i64,
    /// Cumulative funding per long lot, whole quote native units; longs pay when it rises.
    /// Whole units make every payment `lots x index change` exact, so funding paid by one side
    /// equals funding received by the other to the native unit.
    pub funding_index_native: i64,
    /// Fraction of a native unit per lot not yet added to the index (Q32.32 bits), carried so
    /// the long-run rate is exact.
    pub funding_carry_bits: i64,
    /// Last funding update, unix seconds.
    pub funding_last_ts: i64,
    /// Sum of (trade price - oracle) / oracle in ppm over trades since the last funding update.
    pub funding_premium_sum_ppm: i64,
    /// Settlement price per lot, whole quote native units (rounded down), set once after expiry.
    pub settlement_price_native: i64,
    /// Long open interest in lots (equals short open interest).
    pub open_interest_lots: i64,
    /// Trades since the last funding update.
    pub funding_trade_count: u32,
    /// Funding period: the premium is charged in full over this many seconds.
    pub funding_period_seconds: u32,
    /// Largest funding rate per period, ppm of the price.
    pub max_funding_rate_ppm: u32,
    /// Trades must be within this band (ppm) of the oracle (perps) or model value (options).
    pub price_band_ppm: u32,
    /// Oldest posted vol accepted, seconds.
    pub vol_max_age_seconds: u32,
    /// Window after expiry in which a settlement price may be published, seconds.
    pub settlement_window_seconds: u32,
    /// Index in the group (PDA seed).
    pub market_index: u16,
    /// Underlying's index in the group.
    pub underlying_index: u16,
    /// `MarketKind` as a byte.
    pub kind: u8,
    /// Number of scenarios in the risk array.
    pub array_len: u8,
    /// 1 once the settlement price is set.
    pub settled: u8,
    /// PDA bump.
    pub bump: u8,
    /// Socialised loss per lot, whole quote native units, cumulative: every position, long or
    /// short, pays `|lots| x increase` (see `resolve_bankruptcy`).
    pub loss_per_lot_native: i64,
    /// Space for future fields.
    pub reserved: [u8; 48],
}

const _: () =
    assert!(core::mem::size_of::<Market>() == 2 * 32 + MAX_SCENARIOS * 8 + 20 * 8 + 6 * 4 + 2 * 2 + 4 + 48);

impl Market {
    /// The market's kind.
    pub fn market_kind(&self) -> MarketKind {
        MarketKind::from_u8(self.kind).unwrap_or(MarketKind::Perp)
    }

    /// Whether the market is an option.
    pub fn is_option(&self) -> bool {
        self.market_kind() != MarketKind::Perp
    }

    /// Whether an option has expired at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.is_option() && now >= self.expiry_ts
    }

    /// Days to expiry at `now` (0 after expiry), Q32.32.
    pub fn days_to_expiry(&self, now: i64) -> I32F32 {
        let seconds = (self.expiry_ts - now).max(0);
        I32F32::from_num(seconds) / I32F32::from_num(SECONDS_PER_DAY)
    }

    /// The engine's instrument at `now`.
    pub fn instrument(&self, now: i64) -> Instrument {
        match self.market_kind() {
            MarketKind::Perp => Instrument::Linear,
            kind => Instrument::Option {
                kind: if kind == MarketKind::Call { OptionKind::Call } else { OptionKind::Put },
                strike: I32F32::from_num(self.strike_per_lot_native),
                days_to_expiry: self.days_to_expiry(now),
            },
        }
    }

    /// This market's risk array as the exposure of a `lots` position, borrowing the cells from
    /// the account data (no copy).
    pub fn exposure(&self, lots: i64) -> risk_engine::margin::Exposure<'_> {
        let len = (self.array_len as usize).min(MAX_SCENARIOS);
        // SAFETY: I32F32 is a transparent wrapper over i64 with the same size and alignment.
        let cells: &[I32F32] = unsafe { core::slice::from_raw_parts(self.risk_array_bits.as_ptr() as *const I32F32, len) };
        risk_engine::margin::Exposure {
            lots,
            cells,
            delta: I32F32::from_bits(self.array_delta_bits),
            is_option: self.is_option(),
            max_abs_cell: I32F32::from_bits(self.array_max_abs_cell_bits),
        }
    }

    /// Stores a freshly computed array.
    pub fn store_risk_array(&mut self, array: &RiskArray, spot: I32F32, vol: I32F32, now: i64) {
        for (bits, cell) in self.risk_array_bits.iter_mut().zip(array.pnl.iter()) {
            *bits = cell.to_bits();
        }
        self.array_len = array.len;
        self.array_delta_bits = array.delta.to_bits();
        self.array_value_bits = array.value.to_bits();
        self.array_spot_bits = spot.to_bits();
        self.array_vol_bits = vol.to_bits();
        self.array_updated_ts = now;
        self.array_max_abs_cell_bits = array.max_abs_cell.to_bits();
    }
}

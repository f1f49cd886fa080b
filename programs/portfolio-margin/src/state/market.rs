//! A derivatives market: a perpetual future or a European option on an underlying, with its
//! posted volatility, funding state and risk array.

use anchor_lang::prelude::*;
use fixed::types::I32F32;
use risk_engine::black_scholes::OptionKind;
use risk_engine::risk_array::{Instrument, RiskArray, MAX_GAP_INTERVALS};
use risk_engine::scenario::MAX_SCENARIOS;

/// Seed prefix of market PDAs: `["market", group, index (u16 LE)]`.
pub const MARKET_SEED: &[u8] = b"market";
/// Seconds per day, for option tenors.
pub const SECONDS_PER_DAY: i64 = 86_400;
/// If no update published within the settlement window has been proposed by
/// `expiry + window + SETTLEMENT_FALLBACK_SECONDS`, any update published at or after expiry
/// qualifies (earliest still wins during the challenge period): settlement is always possible.
pub const SETTLEMENT_FALLBACK_SECONDS: i64 = 86_400;
/// Window of the per-position `settle_pnl` limit, seconds.
pub const PNL_SETTLE_WINDOW_SECONDS: i64 = 86_400;
/// Largest `min_position_lots` a market may be listed with: a minimum above it would keep
/// ordinary traders out (with 0.001 SOL lots it is 1,000 SOL).
pub const MIN_POSITION_LOTS_MAX: i64 = 1_000_000;
/// Longest funding period a perp may have (keeps the funding arithmetic in range), seconds.
pub const MAX_FUNDING_PERIOD_SECONDS: u32 = 30 * 86_400;

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
    /// Decodes the stored byte (`None` for a byte no kind has).
    pub fn from_u8(value: u8) -> Option<Self> {
        match value {
            0 => Some(MarketKind::Perp),
            1 => Some(MarketKind::Call),
            2 => Some(MarketKind::Put),
            _ => None,
        }
    }

    /// The option it is, or `None` for a perp. Every question about a kind is an exhaustive
    /// `match`: a new kind must answer each of them.
    pub fn option_kind(self) -> Option<OptionKind> {
        match self {
            MarketKind::Perp => None,
            MarketKind::Call => Some(OptionKind::Call),
            MarketKind::Put => Some(OptionKind::Put),
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
    /// Mark premium of trade prices over the oracle, ppm, as of `funding_premium_ts`: each fill
    /// moves it towards its own premium by `min(lots, funding_depth_lots) / funding_depth_lots`
    /// of the gap, and it decays linearly to zero over one funding period without fills. Always
    /// within +-`max_funding_rate_ppm`.
    pub funding_premium_ppm: i64,
    /// When `funding_premium_ppm` was last set, unix seconds.
    pub funding_premium_ts: i64,
    /// Fill size, in lots, that moves the mark premium all the way to the fill's own premium.
    pub funding_depth_lots: i64,
    /// Settlement price per lot, whole quote native units (rounded down), set once after expiry.
    pub settlement_price_native: i64,
    /// Long open interest in lots (equals short open interest).
    pub open_interest_lots: i64,
    /// Most perp gain a position may realise through `settle_pnl` per window of
    /// `PNL_SETTLE_WINDOW_SECONDS`, ppm of its notional at the oracle.
    pub pnl_settle_limit_ppm: u32,
    /// Funding period: the premium is charged in full over this many seconds.
    pub funding_period_seconds: u32,
    /// Largest funding rate per period, ppm of the price.
    pub max_funding_rate_ppm: u32,
    /// Trades must be within this band (ppm) of the oracle (perps) or model value (options).
    pub price_band_ppm: u32,
    /// Oldest posted vol accepted, seconds.
    pub vol_max_age_seconds: u32,
    /// A settlement price must be published within this many seconds after expiry (until the
    /// fallback opens, see `SETTLEMENT_FALLBACK_SECONDS`).
    pub settlement_window_seconds: u32,
    /// A proposed settlement price becomes final this many seconds after it was proposed; until
    /// then anyone may replace it by an update published earlier (but not before expiry).
    pub settlement_challenge_seconds: u32,
    /// Explicit padding.
    pub padding: [u8; 4],
    /// Index in the group (PDA seed).
    pub market_index: u16,
    /// Underlying's index in the group.
    pub underlying_index: u16,
    /// `MarketKind` as a byte.
    pub kind: u8,
    /// Number of scenarios in the risk array.
    pub array_len: u8,
    /// 1 once the settlement price is final and recorded by `settle_expired_option` (see
    /// [`Market::is_settled`], which also counts a proposal past its challenge period).
    pub settled: u8,
    /// PDA bump.
    pub bump: u8,
    /// Socialised loss per lot, whole quote native units, cumulative: every position, long or
    /// short, pays `|lots| x increase` (see `resolve_bankruptcy`).
    pub loss_per_lot_native: i64,
    /// When the current settlement proposal was made, unix seconds (0 = none).
    pub settlement_proposed_ts: i64,
    /// Publish time of the update behind the current settlement proposal, unix seconds.
    pub settlement_publish_ts: i64,
    /// The vol before the posts made at `vol_updated_ts` (several posts with one timestamp count
    /// as one change from this value), Q32.32 bits.
    pub vol_previous_bits: i64,
    /// When `vol_previous_bits` was posted, unix seconds.
    pub vol_previous_ts: i64,
    /// Smallest non-zero position, lots, set at listing: no fill may leave a position with
    /// `0 < |lots| < min_position_lots` and a liquidation step never leaves such a remainder
    /// (see `MIN_POSITION_LOTS_MAX` and README "Dust"). 0 in markets listed before the field
    /// existed, which behaves as 1.
    pub min_position_lots: i64,
    /// Value change of one long lot under the grid's vol-up shock today, at the array's
    /// reference (Q32.32 bits): marks shock positions by it while the posted vol is stale.
    pub array_vol_up_shock_bits: i64,
    /// The same under the vol-down shock (<= 0).
    pub array_vol_down_shock_bits: i64,
    /// How much the first-order mark can understate one long lot within the underlying's
    /// price and vol tolerances (`risk_engine::risk_array::short_mark_buffer`, Q32.32 bits):
    /// short positions are marked this much higher.
    pub array_short_buffer_bits: i64,
    /// Largest open interest (sum of long positions), lots, set at listing; 0: no cap. A fill
    /// that raises open interest above it is refused (`OpenInterestCapExceeded`); reducing
    /// fills, liquidations and settlements never are.
    pub max_open_interest_lots: i64,
    /// Space for future fields.
    pub reserved: [u8; 8],
    /// The risk array valued after the grid's look-ahead horizon (`RiskArray::long_pnl`),
    /// Q32.32 bits: long positions are stressed on it, shorts on `risk_array_bits`.
    pub risk_array_long_bits: [i64; MAX_SCENARIOS],
    /// Per core price interval, how far one long lot's value after the horizon can fall below
    /// the chord of its node values (`RiskArray::long_gaps`, Q32.32 bits): long positions'
    /// losses between nodes are bounded by it (first `array_gap_intervals`).
    pub array_long_gap_bits: [i64; MAX_GAP_INTERVALS],
    /// Intervals where a long lot's loss is bounded by its premium instead
    /// (`RiskArray::premium_bound_mask`).
    pub array_premium_bound_mask: u16,
    /// Number of intervals with gaps (0: within tolerance, nothing to add).
    pub array_gap_intervals: u8,
    /// Explicit padding.
    pub padding_gaps: [u8; 5],
}

const _: () = assert!(
    core::mem::size_of::<Market>()
        == 2 * 32 + MAX_SCENARIOS * 8 + 23 * 8 + 8 * 4 + 2 * 2 + 4 + 8 * 8 + 8 + MAX_SCENARIOS * 8 + MAX_GAP_INTERVALS * 8 + 8
);

impl Market {
    /// The market's kind; a stored byte no kind has is an error (`UnknownMarketKind`), never
    /// read as some kind. Every health computation and every refresh asks for it, so such a
    /// market can be neither margined nor refreshed.
    pub fn market_kind(&self) -> Result<MarketKind> {
        MarketKind::from_u8(self.kind).ok_or_else(|| error!(crate::error::MarginError::UnknownMarketKind))
    }

    /// Whether the market is an option (a call or a put); false for a perp and for an unknown
    /// kind byte, which is also not a perp ([`Market::is_perp`]): instructions for one kind
    /// refuse it.
    pub fn is_option(&self) -> bool {
        MarketKind::from_u8(self.kind).and_then(MarketKind::option_kind).is_some()
    }

    /// Whether the market is a perpetual future (false for an unknown kind byte).
    pub fn is_perp(&self) -> bool {
        MarketKind::from_u8(self.kind) == Some(MarketKind::Perp)
    }

    /// Whether a position of `lots` is dust here: not zero, but smaller than the market's
    /// minimum position.
    pub fn is_dust(&self, lots: i64) -> bool {
        lots != 0 && (lots.unsigned_abs() as i64) < self.min_position_lots
    }

    /// Whether an option has expired at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.is_option() && now >= self.expiry_ts
    }

    /// Whether an option's settlement price is final at `now`: recorded, or proposed and past
    /// its challenge period. From then on positions are worth their intrinsic value at
    /// `settlement_price_native`.
    pub fn is_settled(&self, now: i64) -> bool {
        self.is_option()
            && (self.settled == 1
                || (self.settlement_proposed_ts != 0
                    && now >= self.settlement_proposed_ts.saturating_add(self.settlement_challenge_seconds as i64)))
    }

    /// Whether an expired option has a settlement price proposed but not yet final at `now`.
    pub fn settlement_is_proposed(&self, now: i64) -> bool {
        self.is_option() && self.settlement_proposed_ts != 0 && !self.is_settled(now)
    }

    /// Whether the posted vol is too old to use at `now`.
    pub fn vol_is_stale(&self, now: i64) -> bool {
        self.vol_updated_ts == 0 || now.saturating_sub(self.vol_updated_ts) > self.vol_max_age_seconds as i64
    }

    /// Days to expiry at `now` (0 after expiry), Q32.32.
    pub fn days_to_expiry(&self, now: i64) -> I32F32 {
        let seconds = (self.expiry_ts - now).max(0);
        I32F32::from_num(seconds) / I32F32::from_num(SECONDS_PER_DAY)
    }

    /// The engine's instrument at `now`.
    pub fn instrument(&self, now: i64) -> Result<Instrument> {
        Ok(match self.market_kind()?.option_kind() {
            None => Instrument::Linear,
            Some(kind) => Instrument::Option {
                kind,
                strike: I32F32::from_num(self.strike_per_lot_native),
                days_to_expiry: self.days_to_expiry(now),
            },
        })
    }

    /// This market's risk array as the exposure of a `lots` position, borrowing the cells from
    /// the account data (no copy): a long on the cells valued after the look-ahead horizon, a
    /// short on those valued now (as `RiskArray::exposure`).
    pub fn exposure(&self, lots: i64) -> risk_engine::margin::Exposure<'_> {
        let len = (self.array_len as usize).min(MAX_SCENARIOS);
        let bits = if lots > 0 { &self.risk_array_long_bits } else { &self.risk_array_bits };
        // SAFETY: I32F32 is a transparent wrapper over i64 with the same size and alignment.
        let cells: &[I32F32] = unsafe { core::slice::from_raw_parts(bits.as_ptr() as *const I32F32, len) };
        risk_engine::margin::Exposure {
            lots,
            cells,
            delta: I32F32::from_bits(self.array_delta_bits),
            is_option: self.is_option(),
            value: I32F32::from_bits(self.array_value_bits),
            max_abs_cell: I32F32::from_bits(self.array_max_abs_cell_bits),
            long_gaps: if lots > 0 {
                let gaps = (self.array_gap_intervals as usize).min(MAX_GAP_INTERVALS);
                // SAFETY: as for the cells.
                unsafe { core::slice::from_raw_parts(self.array_long_gap_bits.as_ptr() as *const I32F32, gaps) }
            } else {
                &[]
            },
            premium_bound_mask: self.array_premium_bound_mask,
            expiry_key: self.expiry_ts,
            vega_shock: I32F32::from_bits(self.array_vol_up_shock_bits),
        }
    }

    /// Stores a freshly computed array.
    pub fn store_risk_array(&mut self, array: &RiskArray, short_buffer: I32F32, spot: I32F32, vol: I32F32, now: i64) {
        self.array_short_buffer_bits = short_buffer.to_bits();
        for (bits, gap) in self.array_long_gap_bits.iter_mut().zip(array.long_gaps.iter()) {
            *bits = gap.to_bits();
        }
        self.array_premium_bound_mask = array.premium_bound_mask;
        self.array_gap_intervals = array.gap_intervals;
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
        self.array_vol_up_shock_bits = array.vol_up_shock.to_bits();
        self.array_vol_down_shock_bits = array.vol_down_shock.to_bits();
        for (bits, cell) in self.risk_array_long_bits.iter_mut().zip(array.long_pnl.iter()) {
            *bits = cell.to_bits();
        }
    }
}

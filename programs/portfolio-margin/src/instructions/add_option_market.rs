//! `add_option_market` (admin): a European call or put on an underlying, cash-settled in the
//! quote token at the oracle price at expiry. The risk authority then posts its vol.

use crate::error::MarginError;
use crate::instructions::add_perp_market::{init_market, AddMarket, MarketLimits};
use crate::state::MarketKind;
use anchor_lang::prelude::*;

/// Largest strike per lot, quote native units (exclusive; keeps option prices per lot in Q32.32).
pub const MAX_STRIKE_PER_LOT_NATIVE: i64 = 1 << 30;
/// Longest time from listing to expiry, seconds (two years).
pub const MAX_OPTION_TENOR_SECONDS: i64 = 2 * 365 * 86_400;
/// Lowest vol a market's band may start at (1 vol point, Q32.32 bits): option prices at a
/// vanishing vol are degenerate.
pub const MIN_VOL_BITS: i64 = (1i64 << 32) / 100;
/// Highest vol a market's band may reach (1000 vol points, Q32.32 bits).
pub const MAX_VOL_BITS: i64 = 10i64 << 32;
/// Largest `max_vol_change` (100 vol points per `vol_max_age_seconds`, Q32.32 bits).
pub const MAX_VOL_CHANGE_BITS: i64 = 1i64 << 32;
/// Shortest `vol_max_age_seconds` (one minute).
pub const MIN_VOL_MAX_AGE_SECONDS: u32 = 60;
/// Longest `vol_max_age_seconds` (one day): an older vol is stale and marks shock it against each
/// position.
pub const MAX_VOL_MAX_AGE_SECONDS: u32 = 86_400;
/// Longest settlement window, seconds (one day; the fallback opens a day after it).
pub const MAX_SETTLEMENT_WINDOW_SECONDS: u32 = 86_400;
/// Longest settlement challenge period, seconds (one day).
pub const MAX_SETTLEMENT_CHALLENGE_SECONDS: u32 = 86_400;

/// Parameters of a new option market (no instruction changes them later).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionConfig {
    /// Call or put (`MarketKind::Perp` is refused).
    pub kind: MarketKind,
    /// Strike per lot, whole quote native units (e.g. $160 x 0.001 SOL = 160_000):
    /// `1..MAX_STRIKE_PER_LOT_NATIVE`.
    pub strike_per_lot_native: i64,
    /// Expiry, unix seconds: after now and at most `MAX_OPTION_TENOR_SECONDS` away.
    pub expiry_ts: i64,
    /// Trades must be within this band (ppm) of (model value + 1% of spot):
    /// `MIN_PRICE_BAND_PPM..=MAX_PRICE_BAND_PPM`.
    pub price_band_ppm: u32,
    /// Lowest vol the risk authority may post (Q32.32 bits): `>= MIN_VOL_BITS`.
    pub min_vol_bits: i64,
    /// Highest vol the risk authority may post (Q32.32 bits): `min_vol_bits..=MAX_VOL_BITS`.
    pub max_vol_bits: i64,
    /// Largest vol change per `vol_max_age_seconds` (Q32.32 bits): `1..=MAX_VOL_CHANGE_BITS`.
    pub max_vol_change_bits: i64,
    /// Oldest posted vol accepted, seconds: `MIN_VOL_MAX_AGE_SECONDS..=MAX_VOL_MAX_AGE_SECONDS`.
    pub vol_max_age_seconds: u32,
    /// A settlement update must be published within this many seconds after expiry (until the
    /// fallback opens a day later), seconds: `1..=MAX_SETTLEMENT_WINDOW_SECONDS`.
    pub settlement_window_seconds: u32,
    /// A proposed settlement price is final this many seconds after the proposal; until then an
    /// earlier qualifying update replaces it: `1..=MAX_SETTLEMENT_CHALLENGE_SECONDS`.
    pub settlement_challenge_seconds: u32,
    /// Smallest non-zero position, lots (1..=`MIN_POSITION_LOTS_MAX`), as for perps.
    pub min_position_lots: i64,
    /// Largest open interest, lots, as for perps (0: no cap).
    pub max_open_interest_lots: i64,
}

impl OptionConfig {
    /// The limits every market has, as `init_market` checks them.
    pub fn limits(&self) -> MarketLimits {
        MarketLimits {
            price_band_ppm: self.price_band_ppm,
            min_position_lots: self.min_position_lots,
            max_open_interest_lots: self.max_open_interest_lots,
        }
    }

    /// Checks every parameter but the price band (checked for every market by `init_market`)
    /// at `now`.
    pub fn validate(&self, now: i64) -> Result<()> {
        require!(self.kind != MarketKind::Perp, MarginError::InvalidMarketParams);
        require!(
            self.strike_per_lot_native > 0 && self.strike_per_lot_native < MAX_STRIKE_PER_LOT_NATIVE,
            MarginError::InvalidStrike
        );
        require!(self.expiry_ts > now, MarginError::ExpiryInPast);
        require!(self.expiry_ts - now <= MAX_OPTION_TENOR_SECONDS, MarginError::OptionTenorTooLong);
        require!(
            0 < self.min_vol_bits
                && self.min_vol_bits <= self.max_vol_bits
                && self.max_vol_bits <= MAX_VOL_BITS
                && self.max_vol_change_bits > 0
                && self.vol_max_age_seconds > 0
                && self.settlement_window_seconds > 0
                && (1..=MAX_SETTLEMENT_CHALLENGE_SECONDS).contains(&self.settlement_challenge_seconds),
            MarginError::InvalidMarketParams
        );
        require!(
            self.min_vol_bits >= MIN_VOL_BITS
                && self.max_vol_change_bits <= MAX_VOL_CHANGE_BITS
                && (MIN_VOL_MAX_AGE_SECONDS..=MAX_VOL_MAX_AGE_SECONDS).contains(&self.vol_max_age_seconds),
            MarginError::InvalidVolParams
        );
        require!(self.settlement_window_seconds <= MAX_SETTLEMENT_WINDOW_SECONDS, MarginError::InvalidSettlementWindow);
        Ok(())
    }
}

pub fn add_option_market(ctx: Context<AddMarket>, config: OptionConfig) -> Result<()> {
    config.validate(Clock::get()?.unix_timestamp)?;
    let loader = ctx.accounts.market.clone();
    let mut market = loader.load_init()?;
    init_market(&ctx, &mut market, config.kind, config.limits())?;
    market.strike_per_lot_native = config.strike_per_lot_native;
    market.expiry_ts = config.expiry_ts;
    market.min_vol_bits = config.min_vol_bits;
    market.max_vol_bits = config.max_vol_bits;
    market.max_vol_change_bits = config.max_vol_change_bits;
    market.vol_max_age_seconds = config.vol_max_age_seconds;
    market.settlement_window_seconds = config.settlement_window_seconds;
    market.settlement_challenge_seconds = config.settlement_challenge_seconds;
    Ok(())
}

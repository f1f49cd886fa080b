//! `add_option_market` (admin): a European call or put on an underlying, cash-settled in the
//! quote token at the oracle price at expiry. The risk authority then posts its vol.

use crate::error::MarginError;
use crate::instructions::add_perp_market::{init_market, AddMarket};
use crate::state::MarketKind;
use anchor_lang::prelude::*;

/// Parameters of a new option market.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionConfig {
    /// Call or put (`MarketKind::Perp` is refused).
    pub kind: MarketKind,
    /// Strike per lot, whole quote native units (e.g. $160 x 0.001 SOL = 160_000).
    pub strike_per_lot_native: i64,
    /// Expiry, unix seconds.
    pub expiry_ts: i64,
    /// Trades must be within this band (ppm) of (model value + 1% of spot).
    pub price_band_ppm: u32,
    /// Vol band the risk authority may post in (Q32.32 bits).
    pub min_vol_bits: i64,
    pub max_vol_bits: i64,
    /// Largest vol change in one update (Q32.32 bits).
    pub max_vol_change_bits: i64,
    /// Oldest posted vol accepted, seconds.
    pub vol_max_age_seconds: u32,
    /// A settlement update must be published within this many seconds after expiry (until the
    /// fallback opens a day later), seconds.
    pub settlement_window_seconds: u32,
    /// A proposed settlement price is final this many seconds after the proposal; until then an
    /// earlier qualifying update replaces it (1..=86400).
    pub settlement_challenge_seconds: u32,
    /// Smallest non-zero position, lots (1..=`MIN_POSITION_LOTS_MAX`), as for perps.
    pub min_position_lots: i64,
}

pub fn add_option_market(ctx: Context<AddMarket>, config: OptionConfig) -> Result<()> {
    require!(config.kind != MarketKind::Perp, MarginError::InvalidMarketParams);
    require!(config.strike_per_lot_native > 0 && config.strike_per_lot_native < (1 << 30), MarginError::InvalidStrike);
    require!(config.expiry_ts > Clock::get()?.unix_timestamp, MarginError::ExpiryInPast);
    require!(
        0 < config.min_vol_bits
            && config.min_vol_bits <= config.max_vol_bits
            && config.max_vol_bits <= (10i64 << 32)
            && config.max_vol_change_bits > 0
            && config.vol_max_age_seconds > 0
            && config.settlement_window_seconds > 0
            && (1..=86_400).contains(&config.settlement_challenge_seconds),
        MarginError::InvalidMarketParams
    );
    let loader = ctx.accounts.market.clone();
    let mut market = loader.load_init()?;
    init_market(&ctx, &mut market, config.kind, config.price_band_ppm, config.min_position_lots)?;
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

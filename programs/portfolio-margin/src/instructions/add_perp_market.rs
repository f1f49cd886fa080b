//! `add_perp_market` (admin): a linear perpetual future on an underlying, quote-settled, with
//! funding from the premium of trade prices over the oracle.

use crate::error::MarginError;
use crate::state::{Group, Market, MarketKind, Underlying, MARKET_SEED, MAX_FUNDING_PERIOD_SECONDS, MIN_POSITION_LOTS_MAX, PPM};
use risk_engine::risk_array::MAX_LOTS;
use anchor_lang::prelude::*;

/// Narrowest trade price band of a market, ppm (0.1%): a narrower one (fixed at listing)
/// would refuse most fills, so positions could not be closed by trading.
pub const MIN_PRICE_BAND_PPM: u32 = 1_000;
/// Widest trade price band of a market, ppm (20%).
pub const MAX_PRICE_BAND_PPM: u32 = 200_000;
/// Shortest funding period, seconds: with a shorter one the rate cap would be charged many times
/// a minute.
pub const MIN_FUNDING_PERIOD_SECONDS: u32 = 60;
/// Largest funding rate per period, ppm of the price (10%).
pub const MAX_FUNDING_RATE_PPM: u32 = 100_000;
/// Largest funding a position can pay per hour at the rate cap, ppm of the price (1% an hour):
/// `max_funding_rate_ppm x 3600 / funding_period_seconds` may not exceed it, so a short period
/// cannot turn the cap into a drain that liquidates every position within hours.
pub const MAX_FUNDING_RATE_PPM_PER_HOUR: u32 = 10_000;
/// Smallest daily `settle_pnl` limit, ppm of a position's notional.
pub const MIN_PNL_SETTLE_LIMIT_PPM: u32 = 1;
/// Largest daily `settle_pnl` limit, ppm of a position's notional (100%).
pub const MAX_PNL_SETTLE_LIMIT_PPM: u32 = PPM;

/// Parameters of a new perpetual market (no instruction changes them later).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerpConfig {
    /// Trades must be within this band of the oracle, ppm (e.g. 20_000 = 2%):
    /// `MIN_PRICE_BAND_PPM..=MAX_PRICE_BAND_PPM`.
    pub price_band_ppm: u32,
    /// The average premium is charged in full over this many seconds (e.g. 3600):
    /// `MIN_FUNDING_PERIOD_SECONDS..=MAX_FUNDING_PERIOD_SECONDS`.
    pub funding_period_seconds: u32,
    /// Largest funding rate per period, ppm of the price: `<= MAX_FUNDING_RATE_PPM` and at most
    /// `MAX_FUNDING_RATE_PPM_PER_HOUR` per hour.
    pub max_funding_rate_ppm: u32,
    /// Fill size, in lots, that moves the mark premium all the way to the fill's own premium
    /// (smaller fills move it pro rata): what one small trade can do to funding. `1..=MAX_LOTS`.
    pub funding_depth_lots: i64,
    /// Most gain a position may realise through `settle_pnl` per day, ppm of its notional:
    /// `MIN_PNL_SETTLE_LIMIT_PPM..=MAX_PNL_SETTLE_LIMIT_PPM`.
    pub pnl_settle_limit_ppm: u32,
    /// Smallest non-zero position, lots (1..=`MIN_POSITION_LOTS_MAX`): large enough that the
    /// liquidator's part of the fee on it pays for a liquidation transaction.
    pub min_position_lots: i64,
    /// Largest open interest, lots (0: no cap; otherwise at least `min_position_lots`): bounds
    /// how much of the market one crowd can build before liquidations would have to unwind it.
    pub max_open_interest_lots: i64,
}

impl PerpConfig {
    /// The limits every market has, as `init_market` checks them.
    pub fn limits(&self) -> MarketLimits {
        MarketLimits {
            price_band_ppm: self.price_band_ppm,
            min_position_lots: self.min_position_lots,
            max_open_interest_lots: self.max_open_interest_lots,
        }
    }

    /// Checks every parameter but the price band (checked for every market by `init_market`).
    pub fn validate(&self) -> Result<()> {
        require!(
            self.funding_period_seconds <= MAX_FUNDING_PERIOD_SECONDS
                && self.max_funding_rate_ppm <= MAX_FUNDING_RATE_PPM
                && (1..=MAX_LOTS).contains(&self.funding_depth_lots)
                && (MIN_PNL_SETTLE_LIMIT_PPM..=MAX_PNL_SETTLE_LIMIT_PPM).contains(&self.pnl_settle_limit_ppm),
            MarginError::InvalidMarketParams
        );
        require!(
            self.funding_period_seconds >= MIN_FUNDING_PERIOD_SECONDS
                && self.max_funding_rate_ppm as u64 * 3_600
                    <= MAX_FUNDING_RATE_PPM_PER_HOUR as u64 * self.funding_period_seconds as u64,
            MarginError::FundingRateTooFast
        );
        Ok(())
    }
}

#[derive(Accounts)]
pub struct AddMarket<'info> {
    #[account(mut, has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
    #[account(has_one = group @ MarginError::WrongGroup)]
    pub underlying: AccountLoader<'info, Underlying>,
    #[account(
        init,
        payer = payer,
        space = 8 + core::mem::size_of::<Market>(),
        seeds = [MARKET_SEED, group.key().as_ref(), &group.load()?.market_count.to_le_bytes()],
        bump,
    )]
    pub market: AccountLoader<'info, Market>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

/// The limits every market has: price band, minimum position and open-interest cap.
#[derive(Clone, Copy, Debug)]
pub struct MarketLimits {
    pub price_band_ppm: u32,
    pub min_position_lots: i64,
    pub max_open_interest_lots: i64,
}

/// Fills the fields every market has and counts it in the group.
pub fn init_market(ctx: &Context<AddMarket>, market: &mut Market, kind: MarketKind, limits: MarketLimits) -> Result<()> {
    let MarketLimits { price_band_ppm, min_position_lots, max_open_interest_lots } = limits;
    require!((MIN_PRICE_BAND_PPM..=MAX_PRICE_BAND_PPM).contains(&price_band_ppm), MarginError::InvalidMarketParams);
    require!((1..=MIN_POSITION_LOTS_MAX).contains(&min_position_lots), MarginError::InvalidMarketParams);
    require!(
        max_open_interest_lots == 0 || max_open_interest_lots >= min_position_lots,
        MarginError::InvalidMarketParams
    );
    let mut group = ctx.accounts.group.load_mut()?;
    let underlying = ctx.accounts.underlying.load()?;
    market.group = ctx.accounts.group.key();
    market.underlying = ctx.accounts.underlying.key();
    market.kind = kind as u8;
    market.price_band_ppm = price_band_ppm;
    market.min_position_lots = min_position_lots;
    market.max_open_interest_lots = max_open_interest_lots;
    market.market_index = group.market_count;
    market.underlying_index = underlying.underlying_index;
    market.bump = ctx.bumps.market;
    market.funding_last_ts = Clock::get()?.unix_timestamp;
    group.market_count = group.market_count.checked_add(1).ok_or(MarginError::MathOverflow)?;
    Ok(())
}

pub fn add_perp_market(ctx: Context<AddMarket>, config: PerpConfig) -> Result<()> {
    config.validate()?;
    let loader = ctx.accounts.market.clone();
    let mut market = loader.load_init()?;
    init_market(&ctx, &mut market, MarketKind::Perp, config.limits())?;
    market.funding_period_seconds = config.funding_period_seconds;
    market.max_funding_rate_ppm = config.max_funding_rate_ppm;
    market.funding_depth_lots = config.funding_depth_lots;
    market.pnl_settle_limit_ppm = config.pnl_settle_limit_ppm;
    market.funding_premium_ts = market.funding_last_ts;
    let mut group = ctx.accounts.group.load_mut()?;
    group.perp_market_count = group.perp_market_count.checked_add(1).ok_or(MarginError::MathOverflow)?;
    Ok(())
}

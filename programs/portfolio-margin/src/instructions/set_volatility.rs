//! `set_volatility` (risk authority): posts an option market's implied vol with a timestamp.
//!
//! The vol must lie within the market's band and, after the first post, move no faster than
//! `max_vol_change` per `vol_max_age_seconds`: a post may move it by at most
//! `max_vol_change x min(elapsed, vol_max_age) / vol_max_age` from the vol posted before the
//! current timestamp, where `elapsed` is the time since that post. Several posts at one
//! timestamp count as one change, so splitting a move gains nothing: over any interval the vol
//! moves by at most `max_vol_change x (1 + interval / vol_max_age)`.
//!
//! A vol older than `vol_max_age_seconds` is stale: trades in the market stop until a fresh one
//! is posted, while health and liquidation go on with marks shocked against each position.

use crate::error::MarginError;
use crate::state::{Group, Market};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct SetVolatility<'info> {
    #[account(has_one = risk_authority @ MarginError::NotRiskAuthority)]
    pub group: AccountLoader<'info, Group>,
    pub risk_authority: Signer<'info>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub market: AccountLoader<'info, Market>,
}

/// Largest vol change allowed `elapsed_seconds` after the reference post (Q32.32 bits).
pub fn allowed_vol_change_bits(market: &Market, elapsed_seconds: i64) -> i128 {
    let period = market.vol_max_age_seconds.max(1) as i128;
    let elapsed = (elapsed_seconds.max(0) as i128).min(period);
    market.max_vol_change_bits as i128 * elapsed / period
}

pub fn set_volatility(ctx: Context<SetVolatility>, vol_bits: i64) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let mut market = ctx.accounts.market.load_mut()?;
    require!(market.is_option(), MarginError::NotAnOptionMarket);
    require!(market.min_vol_bits <= vol_bits && vol_bits <= market.max_vol_bits, MarginError::VolatilityOutOfBounds);
    if market.vol_updated_ts == 0 {
        // The first post ever is free within the band; it is also the reference for any other
        // post at the same timestamp.
        market.vol_previous_bits = vol_bits;
        market.vol_previous_ts = now;
    } else {
        if now > market.vol_updated_ts {
            // The first post at this timestamp: the last one becomes the reference.
            market.vol_previous_bits = market.vol_bits;
            market.vol_previous_ts = market.vol_updated_ts;
        }
        let change = (vol_bits as i128 - market.vol_previous_bits as i128).abs();
        let allowed = allowed_vol_change_bits(&market, now - market.vol_previous_ts);
        require!(change <= allowed, MarginError::VolatilityChangeTooLarge);
    }
    market.vol_bits = vol_bits;
    market.vol_updated_ts = now;
    Ok(())
}

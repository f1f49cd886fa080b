//! `set_volatility` (risk authority): posts an option market's implied vol with a timestamp.
//! The vol must lie within the market's band and, after the first post, move by at most the
//! market's maximum change; a vol older than the market's maximum age is stale and blocks risk
//! arrays and health like a stale price.

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

pub fn set_volatility(ctx: Context<SetVolatility>, vol_bits: i64) -> Result<()> {
    let mut market = ctx.accounts.market.load_mut()?;
    require!(market.is_option(), MarginError::NotAnOptionMarket);
    require!(market.min_vol_bits <= vol_bits && vol_bits <= market.max_vol_bits, MarginError::VolatilityOutOfBounds);
    if market.vol_updated_ts != 0 {
        let change = (vol_bits as i128 - market.vol_bits as i128).abs();
        require!(change <= market.max_vol_change_bits as i128, MarginError::VolatilityChangeTooLarge);
    }
    market.vol_bits = vol_bits;
    market.vol_updated_ts = Clock::get()?.unix_timestamp;
    Ok(())
}

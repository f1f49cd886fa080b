//! `update_funding` (permissionless): accrues a perp's funding index up to now from its
//! time-weighted mark premium (see `crate::funding` for the rule and the bound on what one fill
//! can move). Fills accrue on their own; this keeps the index current for idle markets and is
//! what the keeper calls on a schedule. Positions settle lazily: each pays `lots x index
//! change` when touched, so the longs' payments equal the shorts' receipts exactly.

use crate::error::MarginError;
use crate::health::spot_per_lot;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{Group, Market, Underlying};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct UpdateFunding<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
}

pub fn update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let group = ctx.accounts.group.load()?;
    let underlying = ctx.accounts.underlying.load()?;
    let mut market = ctx.accounts.market.load_mut()?;
    require!(market.is_perp(), MarginError::NotAPerpMarket);
    require!(now > market.funding_last_ts, MarginError::FundingUpToDate);
    let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), &ctx.accounts.oracle, now)?;
    let spot = spot_per_lot(&reading, &group, &underlying)?;
    crate::funding::accrue(&mut market, spot, now)?;
    crate::events::emit_event(&crate::events::FundingUpdated {
        market: ctx.accounts.market.key(),
        funding_index_native: market.funding_index_native,
        premium_ppm: market.funding_premium_ppm,
        timestamp: now,
    });
    Ok(())
}

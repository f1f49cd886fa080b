//! `clear_liquidation_flag` (permissionless): clears `being_liquidated` on an account whose
//! liquidation-end health is back at or above zero (its owner deposited, or prices recovered).
//! Without it, a flagged account that recovered on its own could later be liquidated while
//! maintenance-healthy, which an identical account never flagged cannot be. The flag also
//! clears by itself in every instruction that verifies init health >= 0 (trades, withdrawals).
//! Health accounts go in `remaining_accounts`.

use crate::error::MarginError;
use crate::health::account_health;
use crate::state::{Group, MarginAccount};
use anchor_lang::prelude::*;
use risk_engine::health::HealthKind;

#[derive(Accounts)]
pub struct ClearLiquidationFlag<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
}

pub fn clear_liquidation_flag<'info>(ctx: Context<'info, ClearLiquidationFlag<'info>>) -> Result<()> {
    let group = ctx.accounts.group.load()?;
    let mut account = ctx.accounts.margin_account.load_mut()?;
    require!(account.being_liquidated == 1, MarginError::NotBeingLiquidated);
    let end = account_health(&group, &ctx.accounts.group.key(), &account, ctx.remaining_accounts, HealthKind::LiquidationEnd)?;
    require!(end.health >= 0, MarginError::LiquidationNotComplete);
    account.being_liquidated = 0;
    Ok(())
}

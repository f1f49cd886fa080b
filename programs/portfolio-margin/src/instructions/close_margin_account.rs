//! `close_margin_account` (owner): closes an empty account and returns its rent to the owner.

use crate::error::MarginError;
use crate::state::MarginAccount;
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct CloseMarginAccount<'info> {
    #[account(mut, has_one = owner @ MarginError::NotOwner, close = owner)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(mut)]
    pub owner: Signer<'info>,
}

pub fn close_margin_account(ctx: Context<CloseMarginAccount>) -> Result<()> {
    require!(ctx.accounts.margin_account.load()?.is_empty(), MarginError::AccountNotEmpty);
    Ok(())
}

//! `approve_venue` (owner): the venue program allowed to submit fills for this account
//! (`Pubkey::default()` revokes).

use crate::error::MarginError;
use crate::state::MarginAccount;
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct ApproveVenue<'info> {
    #[account(mut, has_one = owner @ MarginError::NotOwner)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub owner: Signer<'info>,
}

pub fn approve_venue(ctx: Context<ApproveVenue>, venue_program: Pubkey) -> Result<()> {
    ctx.accounts.margin_account.load_mut()?.approved_venue = venue_program;
    Ok(())
}

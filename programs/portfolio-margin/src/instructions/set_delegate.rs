//! `set_delegate` (owner): a key that may trade for the account but never withdraw or close.
//! `Pubkey::default()` removes the delegate.

use crate::error::MarginError;
use crate::events::DelegateSet;
use crate::state::MarginAccount;
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct SetDelegate<'info> {
    #[account(mut, has_one = owner @ MarginError::NotOwner)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub owner: Signer<'info>,
}

pub fn set_delegate(ctx: Context<SetDelegate>, delegate: Pubkey) -> Result<()> {
    ctx.accounts.margin_account.load_mut()?.delegate = delegate;
    emit!(DelegateSet { margin_account: ctx.accounts.margin_account.key(), delegate });
    Ok(())
}

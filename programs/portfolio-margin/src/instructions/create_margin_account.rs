//! `create_margin_account`: a PDA per (group, owner, index) holding balances and positions.

use crate::state::{Group, MarginAccount, MARGIN_ACCOUNT_SEED, MARGIN_ACCOUNT_SIZE};
use anchor_lang::prelude::*;

#[derive(Accounts)]
#[instruction(account_index: u32)]
pub struct CreateMarginAccount<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(
        init,
        payer = payer,
        space = MARGIN_ACCOUNT_SIZE,
        seeds = [MARGIN_ACCOUNT_SEED, group.key().as_ref(), owner.key().as_ref(), &account_index.to_le_bytes()],
        bump,
    )]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub owner: Signer<'info>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

pub fn create_margin_account(ctx: Context<CreateMarginAccount>, account_index: u32) -> Result<()> {
    let mut account = ctx.accounts.margin_account.load_init()?;
    account.group = ctx.accounts.group.key();
    account.owner = ctx.accounts.owner.key();
    account.account_index = account_index;
    account.bump = ctx.bumps.margin_account;
    Ok(())
}

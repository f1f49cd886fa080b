//! `update_collateral_bank` (admin): replaces a bank's oracle, weights and limits.

use crate::error::MarginError;
use crate::instructions::add_collateral_bank::configured_event;
use crate::state::{BankConfig, CollateralBank, Group};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct UpdateCollateralBank<'info> {
    #[account(has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub bank: AccountLoader<'info, CollateralBank>,
}

pub fn update_collateral_bank(ctx: Context<UpdateCollateralBank>, config: BankConfig) -> Result<()> {
    config.validate()?;
    let mut bank = ctx.accounts.bank.load_mut()?;
    bank.apply_config(&config);
    emit!(configured_event(&bank, ctx.accounts.bank.key()));
    Ok(())
}

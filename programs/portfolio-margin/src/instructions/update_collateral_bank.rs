//! `update_collateral_bank` (admin): replaces a bank's oracle, weights and limits, within the
//! bounds of [`BankConfig::validate`]. The quote bank's weights stay 1; a bank linked to an
//! underlying keeps the underlying's oracle account and feed id (its balances are priced in that
//! underlying's grid, whose oracle cannot change).

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
    let group = ctx.accounts.group.load()?;
    let mut bank = ctx.accounts.bank.load_mut()?;
    config.validate(bank.mint == group.quote_mint, group.liquidation_fee_ppm)?;
    if bank.underlying != Pubkey::default() {
        require!(
            config.oracle == bank.oracle && config.feed_id == bank.feed_id,
            MarginError::LinkedBankOracleChange
        );
    }
    bank.apply_config(&config);
    crate::events::emit_event(&configured_event(&bank, ctx.accounts.bank.key(), config));
    Ok(())
}

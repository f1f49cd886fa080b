//! `fund_insurance` (anyone): moves quote tokens into the quote bank's vault on behalf of the
//! group's insurance fund.

use crate::error::MarginError;
use crate::state::{CollateralBank, Group};
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[derive(Accounts)]
pub struct FundInsurance<'info> {
    #[account(mut)]
    pub group: AccountLoader<'info, Group>,
    #[account(
        mut,
        has_one = group @ MarginError::WrongGroup,
        has_one = vault @ MarginError::WrongVault,
        has_one = mint @ MarginError::WrongMint,
        has_one = token_program @ MarginError::WrongTokenProgram,
    )]
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut)]
    pub vault: InterfaceAccount<'info, TokenAccount>,
    pub mint: InterfaceAccount<'info, Mint>,
    #[account(mut, token::mint = mint, token::token_program = token_program)]
    pub source: InterfaceAccount<'info, TokenAccount>,
    pub funder: Signer<'info>,
    pub token_program: Interface<'info, TokenInterface>,
}

pub fn fund_insurance(mut ctx: Context<FundInsurance>, amount_native: u64) -> Result<()> {
    require!(amount_native > 0, MarginError::ZeroAmount);
    ctx.accounts.group.load()?.require_quote_bank(&ctx.accounts.quote_bank.key())?;
    let a = &mut ctx.accounts;
    let received = crate::vault::receive(&a.token_program, &a.source, &a.mint, &mut a.vault, &a.funder, amount_native)?;
    let credit = i64::try_from(received).map_err(|_| MarginError::MathOverflow)?;
    let mut group = ctx.accounts.group.load_mut()?;
    group.insurance_fund_native = group.insurance_fund_native.checked_add(credit).ok_or(MarginError::MathOverflow)?;
    let mut bank = ctx.accounts.quote_bank.load_mut()?;
    bank.total_deposits_native = bank.total_deposits_native.checked_add(received).ok_or(MarginError::MathOverflow)?;
    Ok(())
}

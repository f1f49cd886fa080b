//! `deposit`: moves tokens from the signer's token account into the bank's vault and credits
//! the margin account with what the vault actually received (Token-2022 transfer fees are
//! borne by the depositor). Owner or delegate may deposit. Needs no health accounts: a deposit
//! can only raise health.

use crate::error::MarginError;
use crate::events::Deposited;
use crate::state::{CollateralBank, MarginAccount};
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[derive(Accounts)]
pub struct Deposit<'info> {
    #[account(mut, constraint = margin_account.load()?.group == bank.load()?.group @ MarginError::WrongGroup)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(
        mut,
        has_one = vault @ MarginError::WrongVault,
        has_one = mint @ MarginError::WrongMint,
        has_one = token_program @ MarginError::WrongTokenProgram,
    )]
    pub bank: AccountLoader<'info, CollateralBank>,
    #[account(mut)]
    pub vault: InterfaceAccount<'info, TokenAccount>,
    pub mint: InterfaceAccount<'info, Mint>,
    /// The depositor's token account (its owner must sign).
    #[account(mut, token::mint = mint, token::token_program = token_program)]
    pub source: InterfaceAccount<'info, TokenAccount>,
    pub authority: Signer<'info>,
    pub token_program: Interface<'info, TokenInterface>,
}

pub fn deposit(mut ctx: Context<Deposit>, amount_native: u64) -> Result<()> {
    require!(amount_native > 0, MarginError::ZeroAmount);
    {
        let account = ctx.accounts.margin_account.load()?;
        require!(account.is_owner_or_delegate(&ctx.accounts.authority.key(), Clock::get()?.unix_timestamp), MarginError::NotOwnerOrDelegate);
    }
    let a = &mut ctx.accounts;
    let received = crate::vault::receive(&a.token_program, &a.source, &a.mint, &mut a.vault, &a.authority, amount_native)?;

    let mut bank = ctx.accounts.bank.load_mut()?;
    let total = bank.total_deposits_native.checked_add(received).ok_or(MarginError::MathOverflow)?;
    require!(total <= bank.deposit_limit_native, MarginError::DepositLimitExceeded);
    bank.total_deposits_native = total;

    let mut account = ctx.accounts.margin_account.load_mut()?;
    let index = account.balance_index_or_insert(&ctx.accounts.bank.key(), bank.bank_index)?;
    let slot = &mut account.balances[index];
    let credit = i64::try_from(received).map_err(|_| MarginError::MathOverflow)?;
    slot.balance_native = slot.balance_native.checked_add(credit).ok_or(MarginError::MathOverflow)?;
    crate::events::emit_event(&Deposited {
        margin_account: ctx.accounts.margin_account.key(),
        bank: ctx.accounts.bank.key(),
        amount_native: received,
        balance_after_native: slot.balance_native,
    });
    Ok(())
}

//! `withdraw` (owner only): pays tokens from the bank's vault to the owner's token account.
//! The account must hold the amount (no borrowing), and its init health must be >= 0 after
//! the withdrawal, computed from the health accounts in `remaining_accounts` (see
//! `crate::health`). Any failure reverts the whole instruction: nothing changes.

use crate::error::MarginError;
use crate::events::Withdrawn;
use crate::health::require_init_health;
use crate::state::{CollateralBank, Group, MarginAccount, BANK_SEED};
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{self, Mint, TokenAccount, TokenInterface, TransferChecked};

#[derive(Accounts)]
pub struct Withdraw<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = owner @ MarginError::NotOwner)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(
        mut,
        has_one = group @ MarginError::WrongGroup,
        has_one = vault @ MarginError::WrongVault,
        has_one = mint @ MarginError::WrongMint,
        has_one = token_program @ MarginError::WrongTokenProgram,
    )]
    pub bank: AccountLoader<'info, CollateralBank>,
    #[account(mut)]
    pub vault: InterfaceAccount<'info, TokenAccount>,
    pub mint: InterfaceAccount<'info, Mint>,
    /// Where the tokens go (any token account of this mint chosen by the owner).
    #[account(mut, token::mint = mint, token::token_program = token_program)]
    pub destination: InterfaceAccount<'info, TokenAccount>,
    pub owner: Signer<'info>,
    pub token_program: Interface<'info, TokenInterface>,
}

pub fn withdraw<'info>(ctx: Context<'info, Withdraw<'info>>, amount_native: u64) -> Result<()> {
    require!(amount_native > 0, MarginError::ZeroAmount);
    let bank_key = ctx.accounts.bank.key();
    let debit = i64::try_from(amount_native).map_err(|_| MarginError::InsufficientBalance)?;
    let balance_after;
    {
        let mut account = ctx.accounts.margin_account.load_mut()?;
        let index = account.balance_index(&bank_key).ok_or(MarginError::InsufficientBalance)?;
        let slot = &mut account.balances[index];
        require!(slot.balance_native >= debit, MarginError::InsufficientBalance);
        slot.balance_native = slot.balance_native.checked_sub(debit).ok_or(MarginError::MathOverflow)?;
        balance_after = slot.balance_native;
        account.release_if_zero(index);
    }
    let (group_key, mint_key, bump) = {
        let mut bank = ctx.accounts.bank.load_mut()?;
        bank.total_deposits_native = bank.total_deposits_native.checked_sub(amount_native).ok_or(MarginError::MathOverflow)?;
        (bank.group, bank.mint, bank.bump)
    };
    let seeds: &[&[u8]] = &[BANK_SEED, group_key.as_ref(), mint_key.as_ref(), &[bump]];
    token_interface::transfer_checked(
        CpiContext::new_with_signer(
            ctx.accounts.token_program.key(),
            TransferChecked {
                from: ctx.accounts.vault.to_account_info(),
                mint: ctx.accounts.mint.to_account_info(),
                to: ctx.accounts.destination.to_account_info(),
                authority: ctx.accounts.bank.to_account_info(),
            },
            &[seeds],
        ),
        amount_native,
        ctx.accounts.mint.decimals,
    )?;

    let group = ctx.accounts.group.load()?;
    let account = ctx.accounts.margin_account.load()?;
    // The withdrawn bank is among the named accounts: health may read it from there.
    let mut infos = ctx.remaining_accounts.to_vec();
    infos.push(ctx.accounts.bank.to_account_info());
    require_init_health(&group, &ctx.accounts.group.key(), &account, &infos)?;
    drop(account);
    // Init health >= 0 implies liquidation-end health >= 0: any liquidation is over.
    ctx.accounts.margin_account.load_mut()?.being_liquidated = 0;
    crate::events::emit_event(&Withdrawn {
        margin_account: ctx.accounts.margin_account.key(),
        bank: bank_key,
        amount_native,
        balance_after_native: balance_after,
    });
    Ok(())
}

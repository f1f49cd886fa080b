//! Moving tokens into and out of a bank's vault, shared by deposits, withdrawals and the
//! insurance fund.

use crate::error::MarginError;
use anchor_lang::prelude::*;
use anchor_spl::token_interface::{self, Mint, TokenAccount, TokenInterface, TransferChecked};

/// Transfers `amount_native` from `source` (signed by `authority`) into `vault` and returns
/// what the vault actually received (less than the amount for Token-2022 transfer-fee mints).
pub fn receive<'info>(
    token_program: &Interface<'info, TokenInterface>,
    source: &InterfaceAccount<'info, TokenAccount>,
    mint: &InterfaceAccount<'info, Mint>,
    vault: &mut InterfaceAccount<'info, TokenAccount>,
    authority: &Signer<'info>,
    amount_native: u64,
) -> Result<u64> {
    let before = vault.amount;
    token_interface::transfer_checked(
        CpiContext::new(
            token_program.key(),
            TransferChecked {
                from: source.to_account_info(),
                mint: mint.to_account_info(),
                to: vault.to_account_info(),
                authority: authority.to_account_info(),
            },
        ),
        amount_native,
        mint.decimals,
    )?;
    vault.reload()?;
    let received = vault.amount.checked_sub(before).ok_or(MarginError::MathOverflow)?;
    require!(received > 0, MarginError::ZeroAmount);
    Ok(received)
}

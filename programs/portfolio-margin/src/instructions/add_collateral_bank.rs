//! `add_collateral_bank` (admin): lists an SPL mint as collateral with a PDA-owned vault.
//!
//! Token-2022 mints are inspected and refused, with an error naming the extension, when an
//! extension would break vault accounting: a permanent delegate (can move vault funds), a
//! transfer hook (can block withdrawals and liquidations), non-transferable tokens,
//! confidential transfers (hidden balances), a mint close authority (the mint can be
//! recreated), a frozen default account state, pausable mints, and mints whose UI amount is not
//! the raw amount (scaled UI amount, interest-bearing), since oracle prices are per UI unit and
//! balances are raw. Transfer fees are accepted:
//! a deposit credits what the vault actually received.

use crate::error::MarginError;
use crate::events::CollateralBankConfigured;
use crate::state::{BankConfig, CollateralBank, Group, BANK_SEED, MAX_COLLATERAL_BANKS, VAULT_SEED};
use anchor_lang::prelude::*;
use anchor_spl::token_2022::spl_token_2022::extension::{BaseStateWithExtensions, ExtensionType, StateWithExtensions};
use anchor_spl::token_2022::spl_token_2022::state::Mint as MintState;
use anchor_spl::token_interface::{Mint, TokenAccount, TokenInterface};

#[derive(Accounts)]
pub struct AddCollateralBank<'info> {
    #[account(mut, has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
    #[account(mint::token_program = token_program)]
    pub mint: InterfaceAccount<'info, Mint>,
    #[account(
        init,
        payer = payer,
        space = 8 + core::mem::size_of::<CollateralBank>(),
        seeds = [BANK_SEED, group.key().as_ref(), mint.key().as_ref()],
        bump,
    )]
    pub bank: AccountLoader<'info, CollateralBank>,
    #[account(
        init,
        payer = payer,
        seeds = [VAULT_SEED, bank.key().as_ref()],
        bump,
        token::mint = mint,
        token::authority = bank,
        token::token_program = token_program,
    )]
    pub vault: InterfaceAccount<'info, TokenAccount>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub token_program: Interface<'info, TokenInterface>,
    pub system_program: Program<'info, System>,
}

/// Refuses Token-2022 mints whose extensions break vault accounting.
pub fn check_mint_extensions(mint: &AccountInfo) -> Result<()> {
    if *mint.owner != anchor_spl::token_2022::ID {
        return Ok(());
    }
    let data = mint.try_borrow_data()?;
    let state = StateWithExtensions::<MintState>::unpack(&data)?;
    for extension in state.get_extension_types()? {
        let refused = match extension {
            ExtensionType::PermanentDelegate => Some(MarginError::MintHasPermanentDelegate),
            ExtensionType::TransferHook => Some(MarginError::MintHasTransferHook),
            ExtensionType::NonTransferable => Some(MarginError::MintIsNonTransferable),
            ExtensionType::ConfidentialTransferMint | ExtensionType::ConfidentialTransferFeeConfig => {
                Some(MarginError::MintHasConfidentialTransfers)
            }
            ExtensionType::MintCloseAuthority => Some(MarginError::MintHasCloseAuthority),
            ExtensionType::DefaultAccountState => Some(MarginError::MintDefaultFrozen),
            ExtensionType::Pausable => Some(MarginError::MintIsPausable),
            ExtensionType::ScaledUiAmount => Some(MarginError::MintHasScaledUiAmount),
            ExtensionType::InterestBearingConfig => Some(MarginError::MintIsInterestBearing),
            _ => None,
        };
        if let Some(error) = refused {
            return Err(error.into());
        }
    }
    Ok(())
}

pub fn add_collateral_bank(ctx: Context<AddCollateralBank>, config: BankConfig) -> Result<()> {
    let mut group = ctx.accounts.group.load_mut()?;
    config.validate(ctx.accounts.mint.key() == group.quote_mint, group.liquidation_fee_ppm)?;
    check_mint_extensions(&ctx.accounts.mint.to_account_info())?;
    require!(group.bank_count < MAX_COLLATERAL_BANKS, MarginError::TooManyBanks);
    let mut bank = ctx.accounts.bank.load_init()?;
    bank.group = ctx.accounts.group.key();
    bank.mint = ctx.accounts.mint.key();
    bank.vault = ctx.accounts.vault.key();
    bank.token_program = ctx.accounts.token_program.key();
    bank.mint_decimals = ctx.accounts.mint.decimals;
    bank.bank_index = group.bank_count;
    bank.bump = ctx.bumps.bank;
    bank.vault_bump = ctx.bumps.vault;
    bank.apply_config(&config);
    group.bank_count = group.bank_count.checked_add(1).ok_or(MarginError::MathOverflow)?;
    if bank.mint == group.quote_mint {
        group.quote_bank = ctx.accounts.bank.key();
    }
    crate::events::emit_event(&configured_event(&bank, ctx.accounts.bank.key(), config));
    Ok(())
}

/// The configuration event for a bank.
pub fn configured_event(bank: &CollateralBank, bank_key: Pubkey, config: BankConfig) -> CollateralBankConfigured {
    CollateralBankConfigured { group: bank.group, bank: bank_key, mint: bank.mint, config }
}

//! # covered-call-vault (example)
//!
//! A program that owns a portfolio-margin account through its PDA and composes with it by CPI:
//! it deposits the vault's tokens, sells calls against them (the buyer co-signs the trade), and
//! asserts the margin account's health with `health_check`, reading the returned breakdown.
//! It shows what an integrating protocol needs: PDA ownership, signed CPIs, pass-through health
//! accounts and return data.

use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::program::invoke_signed;
use anchor_lang::{InstructionData, ToAccountMetas};
use portfolio_margin::health::HealthReport;

declare_id!("Cqzu8jtZ4jCLBCdA2YQgxtAMcDxvbedZuiccLP4y7HvQ");

/// Seed prefix of vault PDAs: `["vault", manager]`. The vault PDA owns the margin account.
pub const VAULT_SEED: &[u8] = b"vault";

/// A vault: who manages it, its margin account, and the last health it saw.
#[account]
pub struct Vault {
    pub manager: Pubkey,
    pub margin_account: Pubkey,
    pub bump: u8,
    /// Maintenance health (quote native units) returned by the last `check_health`.
    pub last_maint_health_native: i64,
}

impl Vault {
    pub const SIZE: usize = 8 + 32 + 32 + 1 + 8;
}

#[error_code]
pub enum VaultError {
    #[msg("Only the vault's manager can do this")]
    NotManager,
    #[msg("portfolio-margin did not return a health report")]
    NoHealthReport,
}

fn signer_seeds<'a>(manager: &'a Pubkey, bump: &'a [u8; 1]) -> [&'a [u8]; 3] {
    [VAULT_SEED, manager.as_ref(), bump]
}

/// Invokes portfolio-margin with the vault PDA signing.
fn invoke_margin<'info>(
    accounts: impl ToAccountMetas,
    data: impl InstructionData,
    remaining: &[AccountInfo<'info>],
    infos: &[AccountInfo<'info>],
    vault: &Vault,
) -> Result<()> {
    let mut metas = accounts.to_account_metas(None);
    metas.extend(remaining.iter().map(|a| AccountMeta { pubkey: a.key(), is_signer: false, is_writable: a.is_writable }));
    let ix = Instruction { program_id: portfolio_margin::ID, accounts: metas, data: data.data() };
    let mut all = infos.to_vec();
    all.extend_from_slice(remaining);
    let bump = [vault.bump];
    invoke_signed(&ix, &all, &[&signer_seeds(&vault.manager, &bump)])?;
    Ok(())
}

#[program]
pub mod covered_call_vault {
    use super::*;

    /// Creates the vault and its margin account (index 0), owned by the vault PDA.
    pub fn init_vault(ctx: Context<InitVault>) -> Result<()> {
        let vault = &mut ctx.accounts.vault;
        vault.manager = ctx.accounts.manager.key();
        vault.margin_account = ctx.accounts.margin_account.key();
        vault.bump = ctx.bumps.vault;
        let a = &ctx.accounts;
        invoke_margin(
            portfolio_margin::accounts::CreateMarginAccount {
                group: a.group.key(),
                margin_account: a.margin_account.key(),
                owner: a.vault.key(),
                payer: a.manager.key(),
                system_program: a.system_program.key(),
            },
            portfolio_margin::instruction::CreateMarginAccount { account_index: 0 },
            &[],
            &[a.group.to_account_info(), a.margin_account.to_account_info(), a.vault.to_account_info(), a.manager.to_account_info(), a.system_program.to_account_info()],
            &a.vault,
        )
    }

    /// Deposits `amount_native` from the vault's token account (owned by the vault PDA).
    pub fn deposit(ctx: Context<VaultDeposit>, amount_native: u64) -> Result<()> {
        let a = &ctx.accounts;
        invoke_margin(
            portfolio_margin::accounts::Deposit {
                margin_account: a.margin_account.key(),
                bank: a.bank.key(),
                vault: a.bank_vault.key(),
                mint: a.mint.key(),
                source: a.vault_tokens.key(),
                authority: a.vault.key(),
                token_program: a.token_program.key(),
            },
            portfolio_margin::instruction::Deposit { amount_native },
            &[],
            &[
                a.margin_account.to_account_info(),
                a.bank.to_account_info(),
                a.bank_vault.to_account_info(),
                a.mint.to_account_info(),
                a.vault_tokens.to_account_info(),
                a.vault.to_account_info(),
                a.token_program.to_account_info(),
            ],
            &a.vault,
        )
    }

    /// Sells `lots` calls to `buyer` at `price_per_lot_native`: the vault PDA signs as seller,
    /// the buyer's authority signs the transaction. Health accounts pass through.
    pub fn sell_calls<'info>(ctx: Context<'info, SellCalls<'info>>, lots: i64, price_per_lot_native: i64) -> Result<()> {
        let a = &ctx.accounts;
        invoke_margin(
            portfolio_margin::accounts::Trade {
                group: a.group.key(),
                market: a.market.key(),
                underlying: a.underlying.key(),
                oracle: a.oracle.key(),
                quote_bank: a.quote_bank.key(),
                buyer: a.buyer.key(),
                buyer_authority: a.buyer_authority.key(),
                seller: a.margin_account.key(),
                seller_authority: a.vault.key(),
            },
            portfolio_margin::instruction::Trade { lots, price_per_lot_native },
            ctx.remaining_accounts,
            &[
                a.group.to_account_info(),
                a.market.to_account_info(),
                a.underlying.to_account_info(),
                a.oracle.to_account_info(),
                a.quote_bank.to_account_info(),
                a.buyer.to_account_info(),
                a.buyer_authority.to_account_info(),
                a.margin_account.to_account_info(),
                a.vault.to_account_info(),
            ],
            &a.vault,
        )
    }

    /// Asserts maintenance health >= `min_health_native` via `health_check` and records the
    /// returned health in the vault.
    pub fn check_health<'info>(ctx: Context<'info, CheckHealth<'info>>, min_health_native: i64) -> Result<()> {
        let a = &ctx.accounts;
        let vault: &Vault = &a.vault;
        invoke_margin(
            portfolio_margin::accounts::HealthCheck { group: a.group.key(), margin_account: a.margin_account.key() },
            portfolio_margin::instruction::HealthCheck { min_health_native, kind: 1 },
            ctx.remaining_accounts,
            &[a.group.to_account_info(), a.margin_account.to_account_info()],
            vault,
        )?;
        let (program, data) = portfolio_margin::get_return_data_everywhere().ok_or(VaultError::NoHealthReport)?;
        require_keys_eq!(program, portfolio_margin::ID, VaultError::NoHealthReport);
        let report = HealthReport::deserialize(&mut &data[..]).map_err(|_| error!(VaultError::NoHealthReport))?;
        ctx.accounts.vault.last_maint_health_native = report.health_native;
        Ok(())
    }
}

#[derive(Accounts)]
pub struct InitVault<'info> {
    #[account(init, payer = manager, space = Vault::SIZE, seeds = [VAULT_SEED, manager.key().as_ref()], bump)]
    pub vault: Account<'info, Vault>,
    #[account(mut)]
    pub manager: Signer<'info>,
    /// CHECK: portfolio-margin group; checked by portfolio-margin.
    pub group: UncheckedAccount<'info>,
    /// CHECK: the margin account PDA portfolio-margin creates.
    #[account(mut)]
    pub margin_account: UncheckedAccount<'info>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

#[derive(Accounts)]
pub struct VaultDeposit<'info> {
    #[account(has_one = manager @ VaultError::NotManager, has_one = margin_account)]
    pub vault: Account<'info, Vault>,
    pub manager: Signer<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub margin_account: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub bank: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub bank_vault: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub mint: UncheckedAccount<'info>,
    /// CHECK: the vault PDA's token account; checked by the token program.
    #[account(mut)]
    pub vault_tokens: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub token_program: UncheckedAccount<'info>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
}

#[derive(Accounts)]
pub struct SellCalls<'info> {
    #[account(has_one = manager @ VaultError::NotManager, has_one = margin_account)]
    pub vault: Account<'info, Vault>,
    pub manager: Signer<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub margin_account: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub group: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub market: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub underlying: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub oracle: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub quote_bank: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub buyer: UncheckedAccount<'info>,
    pub buyer_authority: Signer<'info>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
}

#[derive(Accounts)]
pub struct CheckHealth<'info> {
    #[account(mut, has_one = margin_account)]
    pub vault: Account<'info, Vault>,
    /// CHECK: checked by portfolio-margin.
    pub margin_account: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub group: UncheckedAccount<'info>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
}

//! # covered-call-vault (example)
//!
//! A program that owns a portfolio-margin account through its PDA and pools depositors' SOL in
//! it. A manager sells fully covered calls on SOL against that collateral; depositors hold
//! shares and get their pro-rata part of the account back, premiums included. It shows what an
//! integrating protocol needs (PDA ownership, signed CPIs, pass-through health accounts, return
//! data) and what a pooled product has to add on top: share accounting and limits on the
//! manager.
//!
//! ## Rounds
//! The vault works in rounds. Deposits and withdrawals happen only while the margin account is
//! **flat** (no position slot in use): after the round's calls expired and someone settled them
//! through portfolio-margin (`propose_settlement_price`, `settle_expired_option` are
//! permissionless). The manager cannot start a new round (calls of another expiry) until
//! `withdrawal_window_seconds` after the previous round's expiry, so every round ends with a
//! window in which depositors can leave.
//!
//! ## Valuation
//! Shares are priced from the net asset value of the margin account, read directly from its
//! balances and priced with portfolio-margin's own oracle functions (`read_oracle_account`,
//! `scale_decimal`) rather than from `health_check`: health values are haircut by collateral
//! weights (SOL at 0.98 under maintenance, USDC at 1.0), so a mix of SOL and premium USDC would
//! be mispriced against a SOL deposit. While flat the account holds only token balances, so no
//! option model enters the price at all. Every price choice goes against the depositor: the
//! deposit is valued at min(price, EMA), the vault's assets at max(price, EMA) (its debts at the
//! min), values rounded in the vault's favour.
//!
//! Withdrawals are in kind: a holder of `s` shares out of `T` receives `floor(balance * s /
//! (T + V))` of each positive balance (SOL, and USDC premium) and, if the USDC balance is
//! negative after calls settled in the money, repays `ceil(debt * s / (T + V))` USDC first. No
//! price is involved, so a withdrawal is exact to the native unit.
//!
//! ## Inflation attack
//! `V = VIRTUAL_SHARES` shares and `VIRTUAL_ASSETS_NATIVE` of value are added to supply and NAV
//! when pricing deposits (and the `V` shares keep their part of the assets on withdrawal). A
//! donation to the vault is then shared with the virtual shares: an attacker holding `a` units
//! of value loses `D / (a + 1)`-ish of a donation `D` to them while the victim's rounding loss is
//! at most one share, `D / (V (a + 1))`-ish, so the attack costs ~`V` times what it can steal.
//! Unlike shares burned by a first depositor, the offset also holds after the vault empties
//! and is refilled. Depositors can also set `min_shares_out`.
//!
//! ## Manager
//! The manager may only sell calls of the configured underlying (never buy, never perps or
//! puts), fully covered (short call lots <= whole SOL lots of the balance), at no less than the
//! model value minus `price_band_ppm`, with expiry at most `max_tenor_seconds` away. It has no
//! path to the funds: withdrawals pay the shareholder that burns shares.

use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::program::invoke_signed;
use anchor_lang::{Discriminator, InstructionData, ToAccountMetas, ZeroCopy};
use anchor_spl::token_interface::{self, Mint, TokenAccount, TokenInterface, TransferChecked};
use fixed::types::I80F48;
use portfolio_margin::health::{collateral_lots, option_value_per_lot, spot_per_lot, HealthReport};
use portfolio_margin::oracle::{read_oracle_account, scale_decimal, OracleConfig};
use portfolio_margin::state::{CollateralBank, Group, MarginAccount, Market, MarketKind, Underlying, PPM};
use risk_engine::wide::{i80f48_to_int, mul_i80f48, Rounding};

declare_id!("Cqzu8jtZ4jCLBCdA2YQgxtAMcDxvbedZuiccLP4y7HvQ");

/// Seed prefix of vault PDAs: `["vault", manager]`. The vault PDA owns the margin account.
pub const VAULT_SEED: &[u8] = b"vault";
/// Seed prefix of shareholder records: `["shareholder", vault, owner]`.
pub const SHAREHOLDER_SEED: &[u8] = b"shareholder";
/// Virtual shares added to the supply when pricing deposits and withdrawals.
pub const VIRTUAL_SHARES: u64 = 1_000;
/// Virtual value (quote native units) added to NAV when pricing deposits.
pub const VIRTUAL_ASSETS_NATIVE: u64 = 1;

/// Limits on the manager, fixed at creation.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct VaultParams {
    /// Lowest sale price accepted, as a discount from the model value (ppm).
    pub price_band_ppm: u32,
    /// Longest time to expiry of a call sold.
    pub max_tenor_seconds: u32,
    /// Time after a round's expiry before calls of another expiry may be sold.
    pub withdrawal_window_seconds: u32,
}

/// A vault: its manager, the portfolio-margin accounts it uses, its limits and its share supply.
#[account]
pub struct Vault {
    pub manager: Pubkey,
    pub group: Pubkey,
    pub margin_account: Pubkey,
    /// The underlying whose calls may be sold (linked to `collateral_bank`).
    pub underlying: Pubkey,
    /// The bank of the deposited token (SOL).
    pub collateral_bank: Pubkey,
    /// The group's quote bank (premiums and settlement).
    pub quote_bank: Pubkey,
    /// Token accounts of the vault PDA that deposits pass through (SOL) and debt repayments
    /// pass through (quote); anything else sent there is ignored.
    pub collateral_staging: Pubkey,
    pub quote_staging: Pubkey,
    pub params: VaultParams,
    /// Expiry of the calls sold in the current (or last) round; 0 before the first.
    pub round_expiry_ts: i64,
    pub total_shares: u64,
    pub bump: u8,
}

impl Vault {
    pub const SIZE: usize = 8 + 8 * 32 + 12 + 8 + 8 + 1;
}

/// One depositor's shares in one vault.
#[account]
pub struct Shareholder {
    pub vault: Pubkey,
    pub owner: Pubkey,
    pub shares: u64,
    pub bump: u8,
}

impl Shareholder {
    pub const SIZE: usize = 8 + 32 + 32 + 8 + 1;
}

#[error_code]
pub enum VaultError {
    #[msg("Only the vault's manager can do this")]
    NotManager,
    #[msg("portfolio-margin did not return a health report")]
    NoHealthReport,
    #[msg("Invalid vault parameters or accounts")]
    InvalidVaultSetup,
    #[msg("The vault only sells: lots must be positive")]
    NotASale,
    #[msg("Only calls on the vault's underlying may be sold")]
    OnlyCallsOnUnderlying,
    #[msg("Calls sold would exceed the collateral held (not covered)")]
    NotCovered,
    #[msg("Price below the vault's band under the model value")]
    PriceBelowBand,
    #[msg("Expiry beyond the vault's maximum tenor")]
    TenorTooLong,
    #[msg("The previous round's calls are still open")]
    PreviousRoundOpen,
    #[msg("The withdrawal window after the last round is still open")]
    WithdrawalWindowOpen,
    #[msg("Deposits and withdrawals need the vault flat (no open position)")]
    VaultNotFlat,
    #[msg("Amount must be positive")]
    ZeroAmount,
    #[msg("The deposit would mint no shares")]
    ZeroShares,
    #[msg("Fewer shares than the minimum asked")]
    SharesBelowMinimum,
    #[msg("Not enough shares")]
    InsufficientShares,
    #[msg("The share record belongs to another owner or vault")]
    NotShareholder,
    #[msg("The withdrawal would pay nothing")]
    NothingToWithdraw,
    #[msg("The vault's net asset value is not positive")]
    VaultInsolvent,
    #[msg("A bank or oracle needed for valuation was not passed")]
    MissingValuationAccount,
    #[msg("Math overflow")]
    MathOverflow,
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

/// Transfers `amount` from the signer's token account to an account of the vault PDA.
fn pull_tokens<'info>(
    token_program: &Interface<'info, TokenInterface>,
    from: AccountInfo<'info>,
    mint: &InterfaceAccount<'info, Mint>,
    to: AccountInfo<'info>,
    authority: AccountInfo<'info>,
    amount: u64,
) -> Result<()> {
    let accounts = TransferChecked { from, mint: mint.to_account_info(), to, authority };
    token_interface::transfer_checked(CpiContext::new(token_program.key(), accounts), amount, mint.decimals)
}

/// A copy of a portfolio-margin zero-copy account, checking owner and discriminator.
fn read_core<T: ZeroCopy + Discriminator>(info: &AccountInfo) -> Result<T> {
    require_keys_eq!(*info.owner, portfolio_margin::ID, VaultError::MissingValuationAccount);
    let data = info.try_borrow_data()?;
    let size = core::mem::size_of::<T>();
    require!(data.len() >= 8 + size && data[..8] == *T::DISCRIMINATOR, VaultError::MissingValuationAccount);
    Ok(bytemuck::pod_read_unaligned(&data[8..8 + size]))
}

fn balance_of(account: &MarginAccount, bank: &Pubkey) -> i64 {
    account.balance_index(bank).map(|i| account.balances[i].balance_native).unwrap_or(0)
}

fn is_flat(account: &MarginAccount) -> bool {
    account.positions.iter().all(|p| p.in_use == 0)
}

/// `bank`'s token priced from its oracle: (min(price, EMA) rounded down, max(price, EMA)
/// rounded up), quote native units per token native unit.
fn price_bounds(group: &Group, bank: &CollateralBank, infos: &[AccountInfo], now: i64) -> Result<(I80F48, I80F48)> {
    let oracle = infos.iter().find(|i| *i.key == bank.oracle).ok_or(VaultError::MissingValuationAccount)?;
    let reading = read_oracle_account(&OracleConfig::of_bank(bank), oracle, now)?;
    let exponent = reading.exponent + group.quote_decimals as i32 - bank.mint_decimals as i32;
    let low = scale_decimal(reading.price.min(reading.ema_price) as i128, exponent, false)?;
    let high = scale_decimal(reading.price.max(reading.ema_price) as i128, exponent, true)?;
    Ok((low, high))
}

/// `amount * price` in whole quote native units, rounded as asked.
fn value_native(amount: i64, price: I80F48, rounding: Rounding) -> Result<i64> {
    let value = mul_i80f48(I80F48::from_num(amount), price, rounding).ok_or(VaultError::MathOverflow)?;
    Ok(i80f48_to_int(value, rounding).ok_or(VaultError::MathOverflow)?)
}

/// Net asset value of a flat margin account in quote native units, every balance valued in the
/// vault's favour (assets at max(price, EMA), debts at min, rounded up). `infos` must hold each
/// balance's bank and its oracle.
fn net_asset_value(group: &Group, group_key: &Pubkey, account: &MarginAccount, infos: &[AccountInfo], now: i64) -> Result<i128> {
    let mut nav = 0i128;
    for balance in account.active_balances() {
        let info = infos.iter().find(|i| *i.key == balance.bank).ok_or(VaultError::MissingValuationAccount)?;
        let bank: CollateralBank = read_core(info)?;
        require_keys_eq!(bank.group, *group_key, VaultError::MissingValuationAccount);
        let (low, high) = price_bounds(group, &bank, infos, now)?;
        let price = if balance.balance_native >= 0 { high } else { low };
        nav += value_native(balance.balance_native, price, Rounding::Up)? as i128;
    }
    Ok(nav)
}

/// Shares for a deposit worth `value_in`: `floor(value_in * (T + V) / (NAV + A))`.
pub fn shares_for_deposit(value_in: u64, nav: i128, total_shares: u64) -> Result<u64> {
    let denominator = nav.checked_add(VIRTUAL_ASSETS_NATIVE as i128).ok_or(VaultError::MathOverflow)?;
    require!(nav >= 0 && denominator > 0, VaultError::VaultInsolvent);
    let numerator = (value_in as u128) * (total_shares as u128 + VIRTUAL_SHARES as u128);
    u64::try_from(numerator / denominator as u128).map_err(|_| error!(VaultError::MathOverflow))
}

/// `amount * shares / (T + V)`, rounded down (payouts) or up (debts owed).
pub fn pro_rata(amount: u64, shares: u64, total_shares: u64, round_up: bool) -> u64 {
    let denominator = total_shares as u128 + VIRTUAL_SHARES as u128;
    let numerator = amount as u128 * shares as u128;
    let mut out = numerator / denominator;
    if round_up && !numerator.is_multiple_of(denominator) {
        out += 1;
    }
    // shares <= total_shares, so out <= amount.
    out as u64
}

#[program]
pub mod covered_call_vault {
    use super::*;

    /// Creates the vault and its margin account (index 0), owned by the vault PDA, with the
    /// manager's limits.
    pub fn init_vault(ctx: Context<InitVault>, params: VaultParams) -> Result<()> {
        let a = &ctx.accounts;
        require!(params.price_band_ppm < PPM && params.max_tenor_seconds > 0, VaultError::InvalidVaultSetup);
        {
            let group = a.group.load()?;
            let underlying = a.underlying.load()?;
            let collateral = a.collateral_bank.load()?;
            require_keys_eq!(underlying.group, a.group.key(), VaultError::InvalidVaultSetup);
            // Calls are covered by collateral the margin model knows hedges them.
            require_keys_eq!(underlying.collateral_bank, a.collateral_bank.key(), VaultError::InvalidVaultSetup);
            require_keys_eq!(group.quote_bank, a.quote_bank.key(), VaultError::InvalidVaultSetup);
            let quote = a.quote_bank.load()?;
            for (staging, mint) in [(&a.collateral_staging, collateral.mint), (&a.quote_staging, quote.mint)] {
                require_keys_eq!(staging.owner, a.vault.key(), VaultError::InvalidVaultSetup);
                require_keys_eq!(staging.mint, mint, VaultError::InvalidVaultSetup);
            }
        }
        let vault = &mut ctx.accounts.vault;
        vault.manager = ctx.accounts.manager.key();
        vault.group = ctx.accounts.group.key();
        vault.margin_account = ctx.accounts.margin_account.key();
        vault.underlying = ctx.accounts.underlying.key();
        vault.collateral_bank = ctx.accounts.collateral_bank.key();
        vault.quote_bank = ctx.accounts.quote_bank.key();
        vault.collateral_staging = ctx.accounts.collateral_staging.key();
        vault.quote_staging = ctx.accounts.quote_staging.key();
        vault.params = params;
        vault.round_expiry_ts = 0;
        vault.total_shares = 0;
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

    /// Creates the signer's share record in the vault.
    pub fn open_shareholder(ctx: Context<OpenShareholder>) -> Result<()> {
        let record = &mut ctx.accounts.shareholder;
        record.vault = ctx.accounts.vault.key();
        record.owner = ctx.accounts.owner.key();
        record.shares = 0;
        record.bump = ctx.bumps.shareholder;
        Ok(())
    }

    /// Deposits `amount_native` of the collateral token from the signer's token account into
    /// the margin account (through the vault's staging account) and mints shares at NAV.
    /// `remaining_accounts`: the bank and oracle of every balance of the margin account (the
    /// collateral bank is named already; its oracle is needed).
    pub fn deposit<'info>(ctx: Context<'info, VaultDeposit<'info>>, amount_native: u64, min_shares_out: u64) -> Result<()> {
        require!(amount_native > 0, VaultError::ZeroAmount);
        let now = Clock::get()?.unix_timestamp;
        let a = &ctx.accounts;
        let group: Group = *a.group.load()?;
        let bank: CollateralBank = *a.collateral_bank.load()?;
        let mut infos = ctx.remaining_accounts.to_vec();
        infos.push(a.collateral_bank.to_account_info());
        let (nav, before) = {
            let account = a.margin_account.load()?;
            require!(is_flat(&account), VaultError::VaultNotFlat);
            (net_asset_value(&group, &a.group.key(), &account, &infos, now)?, balance_of(&account, &a.vault.collateral_bank))
        };
        let (low, _) = price_bounds(&group, &bank, &infos, now)?;

        pull_tokens(&a.token_program, a.source.to_account_info(), &a.mint, a.collateral_staging.to_account_info(), a.depositor.to_account_info(), amount_native)?;
        invoke_margin(
            portfolio_margin::accounts::Deposit {
                margin_account: a.margin_account.key(),
                bank: a.collateral_bank.key(),
                vault: a.bank_vault.key(),
                mint: a.mint.key(),
                source: a.collateral_staging.key(),
                authority: a.vault.key(),
                token_program: a.token_program.key(),
            },
            portfolio_margin::instruction::Deposit { amount_native },
            &[],
            &[
                a.margin_account.to_account_info(),
                a.collateral_bank.to_account_info(),
                a.bank_vault.to_account_info(),
                a.mint.to_account_info(),
                a.collateral_staging.to_account_info(),
                a.vault.to_account_info(),
                a.token_program.to_account_info(),
            ],
            &a.vault,
        )?;
        // What the margin account was credited (a transfer fee would make it less).
        let credited = balance_of(&*a.margin_account.load()?, &a.vault.collateral_bank) - before;
        let value_in = value_native(credited, low, Rounding::Down)?;
        let shares = shares_for_deposit(value_in.max(0) as u64, nav, a.vault.total_shares)?;
        require!(shares > 0, VaultError::ZeroShares);
        require!(shares >= min_shares_out, VaultError::SharesBelowMinimum);
        let vault = &mut ctx.accounts.vault;
        vault.total_shares = vault.total_shares.checked_add(shares).ok_or(VaultError::MathOverflow)?;
        let record = &mut ctx.accounts.shareholder;
        record.shares = record.shares.checked_add(shares).ok_or(VaultError::MathOverflow)?;
        Ok(())
    }

    /// Burns `shares` of the signer and pays their part of each balance of the flat margin
    /// account: `floor(balance * shares / (T + V))` of the collateral and of a positive quote
    /// balance, to the signer's token accounts. A negative quote balance (calls settled in the
    /// money for more than their premium) is repaid first, `ceil(debt * shares / (T + V))` from
    /// the signer's quote account. `remaining_accounts`: the health accounts of the margin
    /// account (portfolio-margin's `withdraw` checks init health).
    pub fn withdraw<'info>(ctx: Context<'info, VaultWithdraw<'info>>, shares: u64) -> Result<()> {
        require!(shares > 0, VaultError::ZeroAmount);
        let a = &ctx.accounts;
        require!(shares <= a.shareholder.shares, VaultError::InsufficientShares);
        let total = a.vault.total_shares;
        let (collateral, quote) = {
            let account = a.margin_account.load()?;
            require!(is_flat(&account), VaultError::VaultNotFlat);
            (balance_of(&account, &a.vault.collateral_bank), balance_of(&account, &a.vault.quote_bank))
        };
        let collateral_out = pro_rata(collateral.max(0) as u64, shares, total, false);
        let quote_out = pro_rata(quote.max(0) as u64, shares, total, false);
        let quote_repay = pro_rata(quote.min(0).unsigned_abs(), shares, total, true);
        require!(collateral_out > 0 || quote_out > 0, VaultError::NothingToWithdraw);

        if quote_repay > 0 {
            pull_tokens(&a.token_program, a.quote_account.to_account_info(), &a.quote_mint, a.quote_staging.to_account_info(), a.owner.to_account_info(), quote_repay)?;
            invoke_margin(
                portfolio_margin::accounts::Deposit {
                    margin_account: a.margin_account.key(),
                    bank: a.quote_bank.key(),
                    vault: a.quote_bank_vault.key(),
                    mint: a.quote_mint.key(),
                    source: a.quote_staging.key(),
                    authority: a.vault.key(),
                    token_program: a.token_program.key(),
                },
                portfolio_margin::instruction::Deposit { amount_native: quote_repay },
                &[],
                &[
                    a.margin_account.to_account_info(),
                    a.quote_bank.to_account_info(),
                    a.quote_bank_vault.to_account_info(),
                    a.quote_mint.to_account_info(),
                    a.quote_staging.to_account_info(),
                    a.vault.to_account_info(),
                    a.token_program.to_account_info(),
                ],
                &a.vault,
            )?;
        }
        let payouts = [
            (collateral_out, &a.collateral_bank, &a.collateral_bank_vault, a.collateral_mint.to_account_info(), &a.collateral_account),
            (quote_out, &a.quote_bank, &a.quote_bank_vault, a.quote_mint.to_account_info(), &a.quote_account),
        ];
        for (amount, bank, bank_vault, mint, destination) in payouts {
            if amount == 0 {
                continue;
            }
            invoke_margin(
                portfolio_margin::accounts::Withdraw {
                    group: a.group.key(),
                    margin_account: a.margin_account.key(),
                    bank: bank.key(),
                    vault: bank_vault.key(),
                    mint: mint.key(),
                    destination: destination.key(),
                    owner: a.vault.key(),
                    token_program: a.token_program.key(),
                },
                portfolio_margin::instruction::Withdraw { amount_native: amount },
                ctx.remaining_accounts,
                &[
                    a.group.to_account_info(),
                    a.margin_account.to_account_info(),
                    bank.to_account_info(),
                    bank_vault.to_account_info(),
                    mint,
                    destination.to_account_info(),
                    a.vault.to_account_info(),
                    a.token_program.to_account_info(),
                ],
                &a.vault,
            )?;
        }
        ctx.accounts.shareholder.shares -= shares;
        ctx.accounts.vault.total_shares -= shares;
        Ok(())
    }

    /// Sells `lots` calls to `buyer` at `price_per_lot_native`: the vault PDA signs as seller,
    /// the buyer's authority signs the transaction. Only calls on the vault's underlying, fully
    /// covered, within the vault's tenor and price band, and only one expiry per round. Health
    /// accounts of both sides pass through in `remaining_accounts`.
    pub fn sell_calls<'info>(ctx: Context<'info, SellCalls<'info>>, lots: i64, price_per_lot_native: i64) -> Result<()> {
        require!(lots > 0, VaultError::NotASale);
        let now = Clock::get()?.unix_timestamp;
        let a = &ctx.accounts;
        let params = a.vault.params;
        let expiry = {
            let market = a.market.load()?;
            require!(
                market.group == a.vault.group && market.underlying == a.vault.underlying && market.market_kind().ok() == Some(MarketKind::Call),
                VaultError::OnlyCallsOnUnderlying
            );
            require!(market.expiry_ts.saturating_sub(now) <= params.max_tenor_seconds as i64, VaultError::TenorTooLong);
            let account = a.margin_account.load()?;
            if market.expiry_ts != a.vault.round_expiry_ts {
                require!(is_flat(&account), VaultError::PreviousRoundOpen);
                let window_end = a.vault.round_expiry_ts.saturating_add(params.withdrawal_window_seconds as i64);
                require!(a.vault.round_expiry_ts == 0 || now >= window_end, VaultError::WithdrawalWindowOpen);
            }
            // Covered: every short lot (the vault holds nothing else) backed by a whole lot of
            // collateral; withdrawals cannot lower it while positions are open.
            let underlying = a.underlying.load()?;
            let bank = a.collateral_bank.load()?;
            let covered = collateral_lots(balance_of(&account, &a.vault.collateral_bank), &bank, &underlying)?;
            let short: i64 = account.positions.iter().filter(|p| p.in_use == 1).map(|p| (-p.base_lots).max(0)).sum();
            require!(short.checked_add(lots).ok_or(VaultError::MathOverflow)? <= covered, VaultError::NotCovered);
            // Price band: no less than the model value (the same reference the core bands
            // trades around) minus the vault's band, so the manager cannot give premium away.
            let group = a.group.load()?;
            let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), &a.oracle, now)?;
            let spot = spot_per_lot(&reading, &group, &underlying)?;
            let value = option_value_per_lot(&market, spot)?;
            let price_scaled = ((price_per_lot_native as i128) << 32) * PPM as i128;
            require!(price_scaled >= value.to_bits() as i128 * (PPM - params.price_band_ppm) as i128, VaultError::PriceBelowBand);
            market.expiry_ts
        };
        ctx.accounts.vault.round_expiry_ts = expiry;
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

    /// A view: asserts health of `kind` >= `min_health_native` via `health_check` and returns
    /// portfolio-margin's breakdown as this program's return data. Stores nothing: a recorded
    /// snapshot would be taken at a moment the caller chooses and say nothing later.
    pub fn check_health<'info>(ctx: Context<'info, CheckHealth<'info>>, min_health_native: i64, kind: u8) -> Result<HealthReport> {
        let a = &ctx.accounts;
        invoke_margin(
            portfolio_margin::accounts::HealthCheck { group: a.group.key(), margin_account: a.margin_account.key() },
            portfolio_margin::instruction::HealthCheck { min_health_native, kind },
            ctx.remaining_accounts,
            &[a.group.to_account_info(), a.margin_account.to_account_info()],
            &a.vault,
        )?;
        let (program, data) = portfolio_margin::get_return_data_everywhere().ok_or(VaultError::NoHealthReport)?;
        require_keys_eq!(program, portfolio_margin::ID, VaultError::NoHealthReport);
        let report = HealthReport::deserialize(&mut &data[..]).map_err(|_| error!(VaultError::NoHealthReport))?;
        portfolio_margin::set_return_data_everywhere(&report)?;
        Ok(report)
    }
}

#[derive(Accounts)]
pub struct InitVault<'info> {
    #[account(init, payer = manager, space = Vault::SIZE, seeds = [VAULT_SEED, manager.key().as_ref()], bump)]
    pub vault: Box<Account<'info, Vault>>,
    #[account(mut)]
    pub manager: Signer<'info>,
    pub group: AccountLoader<'info, Group>,
    /// CHECK: the margin account PDA portfolio-margin creates.
    #[account(mut)]
    pub margin_account: UncheckedAccount<'info>,
    pub underlying: AccountLoader<'info, Underlying>,
    pub collateral_bank: AccountLoader<'info, CollateralBank>,
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    pub collateral_staging: Box<InterfaceAccount<'info, TokenAccount>>,
    pub quote_staging: Box<InterfaceAccount<'info, TokenAccount>>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

#[derive(Accounts)]
pub struct OpenShareholder<'info> {
    pub vault: Account<'info, Vault>,
    #[account(init, payer = owner, space = Shareholder::SIZE, seeds = [SHAREHOLDER_SEED, vault.key().as_ref(), owner.key().as_ref()], bump)]
    pub shareholder: Account<'info, Shareholder>,
    #[account(mut)]
    pub owner: Signer<'info>,
    pub system_program: Program<'info, System>,
}

#[derive(Accounts)]
pub struct VaultDeposit<'info> {
    #[account(mut, has_one = group, has_one = margin_account, has_one = collateral_bank, has_one = collateral_staging)]
    pub vault: Box<Account<'info, Vault>>,
    #[account(mut, has_one = vault @ VaultError::NotShareholder, constraint = shareholder.owner == depositor.key() @ VaultError::NotShareholder)]
    pub shareholder: Box<Account<'info, Shareholder>>,
    pub depositor: Signer<'info>,
    pub group: AccountLoader<'info, Group>,
    #[account(mut)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    #[account(mut)]
    pub collateral_bank: AccountLoader<'info, CollateralBank>,
    /// CHECK: the bank's token vault; checked by portfolio-margin.
    #[account(mut)]
    pub bank_vault: UncheckedAccount<'info>,
    pub mint: Box<InterfaceAccount<'info, Mint>>,
    /// The depositor's token account.
    #[account(mut)]
    pub source: Box<InterfaceAccount<'info, TokenAccount>>,
    /// CHECK: the vault PDA's token account recorded at creation.
    #[account(mut)]
    pub collateral_staging: UncheckedAccount<'info>,
    pub token_program: Interface<'info, TokenInterface>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
}

#[derive(Accounts)]
pub struct VaultWithdraw<'info> {
    #[account(
        mut,
        has_one = group,
        has_one = margin_account,
        has_one = collateral_bank,
        has_one = quote_bank,
        has_one = quote_staging,
    )]
    pub vault: Box<Account<'info, Vault>>,
    #[account(mut, has_one = vault @ VaultError::NotShareholder, has_one = owner @ VaultError::NotShareholder)]
    pub shareholder: Box<Account<'info, Shareholder>>,
    pub owner: Signer<'info>,
    /// CHECK: checked by portfolio-margin.
    pub group: UncheckedAccount<'info>,
    #[account(mut)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub collateral_bank: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub collateral_bank_vault: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub collateral_mint: UncheckedAccount<'info>,
    /// CHECK: where the collateral goes; checked by portfolio-margin (mint).
    #[account(mut)]
    pub collateral_account: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub quote_bank: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub quote_bank_vault: UncheckedAccount<'info>,
    pub quote_mint: Box<InterfaceAccount<'info, Mint>>,
    /// CHECK: the owner's quote token account: receives a quote payout or pays a debt share
    /// (the token program checks the owner's signature).
    #[account(mut)]
    pub quote_account: UncheckedAccount<'info>,
    /// CHECK: the vault PDA's quote token account recorded at creation.
    #[account(mut)]
    pub quote_staging: UncheckedAccount<'info>,
    pub token_program: Interface<'info, TokenInterface>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
}

#[derive(Accounts)]
pub struct SellCalls<'info> {
    #[account(
        mut,
        has_one = manager @ VaultError::NotManager,
        has_one = margin_account,
        has_one = group,
        has_one = underlying,
        has_one = collateral_bank,
        has_one = quote_bank,
    )]
    pub vault: Box<Account<'info, Vault>>,
    pub manager: Signer<'info>,
    #[account(mut)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub group: AccountLoader<'info, Group>,
    #[account(mut)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
    pub collateral_bank: AccountLoader<'info, CollateralBank>,
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
    #[account(has_one = margin_account)]
    pub vault: Account<'info, Vault>,
    /// CHECK: checked by portfolio-margin.
    pub margin_account: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub group: UncheckedAccount<'info>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
}

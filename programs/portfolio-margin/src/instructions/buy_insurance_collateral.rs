//! `buy_insurance_collateral(amount_native)` (anyone, with a margin account): buys collateral the
//! insurance fund took from bankrupt accounts (`insurance_native` of a non-quote bank) at the
//! bank's conservative liability price (the higher of price and EMA plus the confidence multiple,
//! so a dumped print cannot buy the fund's tokens cheap) less the group's liquidation fee, paid
//! from the buyer's quote balance into the insurance fund. It is how the fund turns what it took in kind back into quote: the
//! tokens stay in the vault and move to the buyer's balance; the buyer needs init health >= 0
//! afterwards. Health accounts of the buyer go in `remaining_accounts`.

use crate::error::MarginError;
use crate::health::require_init_health;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{CollateralBank, Group, MarginAccount, PPM};
use anchor_lang::prelude::*;
use fixed::types::I80F48;

#[derive(Accounts)]
pub struct BuyInsuranceCollateral<'info> {
    #[account(mut)]
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub bank: AccountLoader<'info, CollateralBank>,
    /// CHECK: checked against the bank's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
    #[account(has_one = group @ MarginError::WrongGroup)]
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub buyer: AccountLoader<'info, MarginAccount>,
    pub buyer_authority: Signer<'info>,
}

/// Quote native units paid for `amount_native` at `price` (quote native per native unit) less
/// a discount of `discount_ppm`, rounded up (against the buyer).
pub fn insurance_collateral_cost(amount_native: u64, price: I80F48, discount_ppm: u32) -> Result<i64> {
    let factor = I80F48::from_num(PPM - discount_ppm.min(PPM)) / I80F48::from_num(PPM);
    let cost = I80F48::from_num(amount_native)
        .checked_mul(price)
        .and_then(|v| v.checked_mul(factor))
        .and_then(|v| v.checked_ceil())
        .and_then(|v| v.checked_to_num::<i64>())
        .ok_or(MarginError::MathOverflow)?;
    Ok(cost)
}

pub fn buy_insurance_collateral<'info>(ctx: Context<'info, BuyInsuranceCollateral<'info>>, amount_native: u64) -> Result<()> {
    let a = &ctx.accounts;
    require!(amount_native > 0, MarginError::ZeroAmount);
    let now = Clock::get()?.unix_timestamp;
    let group_key = a.group.key();
    let bank_key = a.bank.key();
    let quote_key = a.quote_bank.key();
    let (cost, bank_index, quote_index) = {
        let group = a.group.load()?;
        group.require_quote_bank(&quote_key)?;
        require_keys_neq!(bank_key, quote_key, MarginError::InsuranceCollateralIsQuote);
        let bank = a.bank.load()?;
        require!(amount_native <= bank.insurance_native, MarginError::InsuranceCollateralTooLarge);
        let prices = read_oracle_account(&OracleConfig::of_bank(&bank), &a.oracle, now)?.token_prices(&group, bank.mint_decimals)?;
        let price = prices.init_liability;
        let cost = insurance_collateral_cost(amount_native, price, group.liquidation_fee_ppm)?;
        (cost, bank.bank_index, a.quote_bank.load()?.bank_index)
    };
    {
        let mut buyer = a.buyer.load_mut()?;
        require!(buyer.is_owner_or_delegate(&a.buyer_authority.key(), now), MarginError::NotOwnerOrDelegate);
        let amount = i64::try_from(amount_native).map_err(|_| MarginError::MathOverflow)?;
        buyer.add_to_balance(&bank_key, bank_index, amount)?;
        buyer.add_to_balance(&quote_key, quote_index, cost.checked_neg().ok_or(MarginError::MathOverflow)?)?;
    }
    {
        let mut bank = a.bank.load_mut()?;
        bank.insurance_native = bank.insurance_native.checked_sub(amount_native).ok_or(MarginError::MathOverflow)?;
        bank.total_deposits_native = bank.total_deposits_native.checked_add(amount_native).ok_or(MarginError::MathOverflow)?;
        let mut group = a.group.load_mut()?;
        group.insurance_fund_native = group.insurance_fund_native.checked_add(cost).ok_or(MarginError::MathOverflow)?;
    }
    // The bank, its oracle and the quote bank are named: health may read them from there.
    let mut infos = ctx.remaining_accounts.to_vec();
    infos.extend([a.bank.to_account_info(), a.oracle.to_account_info(), a.quote_bank.to_account_info()]);
    let group = a.group.load()?;
    let buyer = a.buyer.load()?;
    require_init_health(&group, &group_key, &buyer, &infos)?;
    drop(buyer);
    a.buyer.load_mut()?.being_liquidated = 0;
    msg!("bought {} native units of insurance collateral for {} quote native units", amount_native, cost);
    Ok(())
}

//! `liquidate_token(max_liability_native)` (permissionless): a liquidator pays part of an
//! unhealthy account's negative quote balance and receives that value of the account's
//! collateral in `asset_bank`, at the oracle prices plus the liquidation fee. The amount is at
//! most the stated maximum and what the collateral can pay for; within that the program chooses
//! it (`crate::liquidation::choose_step`). The insurance share of the fee is paid by the
//! liquidator out of its discount. Health accounts of both sides go in `remaining_accounts`.

use crate::error::MarginError;
use crate::health::find;
use crate::state::{boxed_copy, write_account};
use crate::health::HealthInputs;
use crate::liquidation::{asset_for_liability, check_liquidator, choose_step, simulate_token, start, TokenTerms};
use risk_engine::health::HealthKind;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{CollateralBank, Group, MarginAccount};
use anchor_lang::prelude::*;
use fixed::types::I80F48;

#[derive(Accounts)]
pub struct LiquidateToken<'info> {
    #[account(mut)]
    pub group: AccountLoader<'info, Group>,
    #[account(has_one = group @ MarginError::WrongGroup)]
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(has_one = group @ MarginError::WrongGroup)]
    pub asset_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub liquidator: AccountLoader<'info, MarginAccount>,
    pub liquidator_authority: Signer<'info>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub liquidatee: AccountLoader<'info, MarginAccount>,
}

/// Oracle price of one native unit of `bank`'s token in quote native units.
fn oracle_price(group: &Group, bank: &CollateralBank, infos: &[AccountInfo], now: i64) -> Result<I80F48> {
    let config = OracleConfig::of_bank(bank);
    let info = find(infos, &config.oracle).ok_or(MarginError::OracleKeyMismatch)?;
    Ok(read_oracle_account(&config, info, now)?.token_prices(group, bank.mint_decimals)?.oracle)
}

/// Largest quote liability whose price in collateral (fee included) fits in `collateral_native`.
fn largest_liability_for(group: &Group, terms: &TokenTerms, collateral_native: i64) -> Result<i64> {
    if collateral_native <= 0 {
        return Ok(0);
    }
    // x (1 + fee) quote units must fit in the collateral's value V: the estimate floors
    // V / (1 + fee); rounding leaves it within a unit or two.
    let value = I80F48::from_num(collateral_native).checked_mul(terms.asset_price).ok_or(MarginError::MathOverflow)?;
    let quote_units = value.checked_div(terms.quote_price).ok_or(MarginError::MathOverflow)?;
    let whole = quote_units.checked_floor().and_then(|v| v.checked_to_num::<i64>()).unwrap_or(i64::MAX);
    let ppm = crate::state::PPM as i128;
    let estimate = (whole as i128 * ppm / (ppm + group.liquidation_fee_ppm as i128)) as i64;
    let fits = |x: i64| -> Result<bool> { Ok(asset_for_liability(group, terms, x)? <= collateral_native) };
    // Fixed-point rounding can leave the estimate a unit or two high; beyond a few steps down,
    // bisect (each step costs a valuation, and one unit of an expensive asset covers many).
    let mut x = estimate;
    for _ in 0..3 {
        if x == 0 || fits(x)? {
            // The estimate may be a unit or two low: take what still fits.
            for _ in 0..2 {
                if x == i64::MAX || !fits(x + 1)? {
                    break;
                }
                x += 1;
            }
            return Ok(x);
        }
        x -= 1;
    }
    let (mut low, mut high) = (0i64, x); // fits(low), not yet known for high
    while low < high {
        let mid = low + (high - low + 1) / 2;
        if fits(mid)? {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    Ok(low)
}

pub fn liquidate_token<'info>(ctx: Context<'info, LiquidateToken<'info>>, max_liability_native: i64) -> Result<()> {
    let a = &ctx.accounts;
    require_keys_neq!(a.liquidator.key(), a.liquidatee.key(), MarginError::LiquidatorIsLiquidatee);
    require!(max_liability_native > 0, MarginError::ZeroAmount);
    let now = Clock::get()?.unix_timestamp;
    let group_key = a.group.key();
    let group = *a.group.load()?;
    group.require_quote_bank(&a.quote_bank.key())?;
    require_keys_neq!(a.asset_bank.key(), group.quote_bank, MarginError::AssetIsQuote);
    let quote_bank = *a.quote_bank.load()?;
    let asset_bank = *a.asset_bank.load()?;
    let liquidator = boxed_copy(&*a.liquidator.load()?);
    require!(liquidator.is_owner_or_delegate(&a.liquidator_authority.key(), now), MarginError::NotOwnerOrDelegate);
    let liquidatee = boxed_copy(&*a.liquidatee.load()?);

    let mut infos = ctx.remaining_accounts.to_vec();
    infos.extend([a.quote_bank.to_account_info(), a.asset_bank.to_account_info()]);
    // Every state evaluated below (the liquidatee and the liquidator, before and after) holds
    // balances only in banks these two already hold (the step moves quote and the asset, both
    // held by a liquidatable liquidatee): loaded and priced once.
    let inputs = HealthInputs::load_many(&group, &group_key, &[&liquidatee, &liquidator], &infos)?;
    let before_end = start(&inputs, &group, &liquidatee)?;
    let quote_price = oracle_price(&group, &quote_bank, &infos, now)?;
    let asset_price = oracle_price(&group, &asset_bank, &infos, now)?;

    let terms = TokenTerms {
        quote_bank: a.quote_bank.key(),
        quote_bank_index: quote_bank.bank_index,
        quote_price,
        asset_bank: a.asset_bank.key(),
        asset_bank_index: asset_bank.bank_index,
        asset_price,
    };
    let liability = liquidatee.balance_index(&terms.quote_bank).map(|i| liquidatee.balances[i].balance_native).unwrap_or(0);
    require!(liability < 0, MarginError::NoLiability);
    // No more than the debt, nor than the collateral in the asset bank can pay for.
    let collateral = liquidatee.balance_index(&terms.asset_bank).map(|i| liquidatee.balances[i].balance_native).unwrap_or(0);
    let max = max_liability_native.min(-liability).min(largest_liability_for(&group, &terms, collateral)?);
    require!(max > 0, MarginError::LiquidationAmountTooLarge);
    let simulate = |x: i64| simulate_token(&group, &terms, &liquidator, &liquidatee, x);
    let end_after = |x: i64| inputs.health(&group, &simulate(x)?.1, HealthKind::LiquidationEnd).map(|h| h.health);
    let (liability_native, after_end) = choose_step(before_end, max, end_after)?;
    let (taker, mut victim, insurance) = simulate(liability_native)?;
    check_liquidator(&inputs, &group, &taker)?;

    victim.being_liquidated = u8::from(after_end < 0);
    write_account(&a.liquidator, &taker)?;
    write_account(&a.liquidatee, &victim)?;
    // What the step took: the collateral it moved (already priced by the simulation).
    let held_after = victim.balance_index(&terms.asset_bank).map(|i| victim.balances[i].balance_native).unwrap_or(0);
    let asset_native = collateral - held_after;
    let mut group = a.group.load_mut()?;
    group.insurance_fund_native = group.insurance_fund_native.checked_add(insurance).ok_or(MarginError::MathOverflow)?;
    crate::events::emit_event(&crate::events::TokenLiquidated {
        liquidator: a.liquidator.key(),
        liquidatee: a.liquidatee.key(),
        asset_bank: terms.asset_bank,
        liability_native,
        asset_native,
        insurance_fee_native: insurance,
        liquidatee_end_health_native: crate::liquidation::health_native_floor(after_end),
    });
    Ok(())
}

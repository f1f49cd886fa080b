//! `settle_pnl` (permissionless): realises perp P&L between two accounts, moving quote from
//! the loser's balance to the winner's and out of both positions' quote amounts. Nothing is
//! created: a gain can only be realised against a matching loss. The amount is the smallest of:
//!
//! - the winner's gain at the **conservative** price (for a long, the lower of oracle and EMA
//!   minus the group's confidence multiple; for a short, the higher plus it), so a pumped print
//!   cannot be turned into withdrawable cash before the EMA follows;
//! - the loser's loss at the oracle, rounded towards zero;
//! - what is left of the winner position's limit for the current day,
//!   `pnl_settle_limit_ppm x |lots| x spot` (Mango v4 has settle limits for the same reason);
//! - what the loser can pay without going below maintenance health (its maintenance health
//!   before, over its quote liability weight above one); a loser at or below maintenance pays
//!   nothing (liquidate it instead), and its maintenance health is checked again afterwards.
//!
//! The loser's health accounts go in `remaining_accounts`.

use crate::error::MarginError;
use crate::health::{conservative_spot_per_lot, spot_per_lot, HealthInputs};
use crate::state::boxed_copy;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::positions::settle_funding;
use crate::state::{CollateralBank, Group, MarginAccount, Market, Underlying, PNL_SETTLE_WINDOW_SECONDS, PPM};
use anchor_lang::prelude::*;
use fixed::types::I32F32;
use risk_engine::health::HealthKind;
use risk_engine::wide::mul_q32_by_int;

#[derive(Accounts)]
pub struct SettlePnl<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub winner: AccountLoader<'info, MarginAccount>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub loser: AccountLoader<'info, MarginAccount>,
}

/// Unrealised P&L of a perp position at `spot`, whole quote native units rounded down, after
/// moving its funding into its quote amount.
fn pnl_native(account: &mut MarginAccount, index: usize, market: &Market, spot: I32F32) -> Result<i64> {
    let position = &mut account.positions[index];
    settle_funding(position, market)?;
    let wide = mul_q32_by_int(spot, position.base_lots) + ((position.quote_native as i128) << 32);
    i64::try_from(wide >> 32).map_err(|_| error!(MarginError::MathOverflow))
}

/// What is left of a position's settle limit at `now` (opening a new window when the last one
/// ended), quote native units.
fn limit_left(account: &mut MarginAccount, index: usize, market: &Market, spot: I32F32, now: i64) -> Result<i64> {
    let position = &mut account.positions[index];
    if now >= position.pnl_window_start_ts.saturating_add(PNL_SETTLE_WINDOW_SECONDS) {
        position.pnl_window_start_ts = now;
        position.pnl_settled_in_window_native = 0;
    }
    let notional = mul_q32_by_int(spot, position.base_lots.checked_abs().ok_or(MarginError::MathOverflow)?) >> 32;
    let limit = notional.checked_mul(market.pnl_settle_limit_ppm as i128).ok_or(MarginError::MathOverflow)? / PPM as i128;
    let left = (limit - position.pnl_settled_in_window_native as i128).max(0);
    Ok(left.min(i64::MAX as i128) as i64)
}

/// Most the loser can pay from a maintenance health of `maint_native`: paying `x` lowers its
/// maintenance health by at most `x x (quote maint liability weight - 1)`.
fn loser_capacity(maint_native: i64, quote_bank: &CollateralBank) -> i64 {
    let excess_ppm = quote_bank.maint_liability_weight_ppm.saturating_sub(PPM) as i128;
    if excess_ppm == 0 {
        return i64::MAX;
    }
    (maint_native as i128 * PPM as i128 / excess_ppm).min(i64::MAX as i128) as i64
}

pub fn settle_pnl<'info>(ctx: Context<'info, SettlePnl<'info>>) -> Result<()> {
    let a = &ctx.accounts;
    require_keys_neq!(a.winner.key(), a.loser.key(), MarginError::SameAccountBothSides);
    let now = Clock::get()?.unix_timestamp;
    let group_key = a.group.key();
    let group = a.group.load()?;
    group.require_quote_bank(&a.quote_bank.key())?;
    let quote_bank = a.quote_bank.load()?;
    let underlying = a.underlying.load()?;
    let market = a.market.load()?;
    require!(market.is_perp(), MarginError::NotAPerpMarket);
    let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), &a.oracle, now)?;
    let spot = spot_per_lot(&reading, &group, &underlying)?;
    let market_key = a.market.key();
    let mut winner = a.winner.load_mut()?;
    let mut loser = a.loser.load_mut()?;
    let wi = winner.position_index(&market_key).ok_or(MarginError::NoPosition)?;
    let li = loser.position_index(&market_key).ok_or(MarginError::NoPosition)?;
    let winner_long = winner.positions[wi].base_lots > 0;
    let conservative = conservative_spot_per_lot(&reading, &group, &underlying, winner_long)?;
    let gain = pnl_native(&mut winner, wi, &market, conservative)?;
    // The loser's loss rounded towards zero, so it is never charged more than it lost.
    let loss = -pnl_native(&mut loser, li, &market, spot)? - 1;
    require!(gain > 0 && loss > 0, MarginError::PnlNotSettleable);
    let left = limit_left(&mut winner, wi, &market, spot, now)?;
    require!(left > 0, MarginError::PnlSettleLimitReached);

    // The loser's maintenance health before (funding moved into its position changes nothing).
    let mut infos = ctx.remaining_accounts.to_vec();
    infos.extend([a.market.to_account_info(), a.underlying.to_account_info(), a.oracle.to_account_info(), a.quote_bank.to_account_info()]);
    let loser_before = boxed_copy(&loser);
    // The loser after paying holds a quote balance: load its bank as well.
    let mut loser_paying = boxed_copy(&loser);
    loser_paying.add_to_balance(&group.quote_bank, quote_bank.bank_index, -1)?;
    let inputs = HealthInputs::load_many(&group, &group_key, &[&loser_before, &loser_paying], &infos)?;
    let maint_before = inputs.health(&group, &loser_before, HealthKind::Maint)?.health;
    let maint_native = risk_engine::wide::i80f48_to_int(maint_before, risk_engine::wide::Rounding::Down).ok_or(MarginError::MathOverflow)?;
    require!(maint_native > 0, MarginError::PnlLoserBelowMaintenance);
    let amount = gain.min(loss).min(left).min(loser_capacity(maint_native, &quote_bank));
    require!(amount > 0, MarginError::PnlNotSettleable);

    let winner_cash = &mut winner.positions[wi].quote_native;
    *winner_cash = winner_cash.checked_sub(amount).ok_or(MarginError::MathOverflow)?;
    let settled = &mut winner.positions[wi].pnl_settled_in_window_native;
    *settled = settled.checked_add(amount).ok_or(MarginError::MathOverflow)?;
    let loser_cash = &mut loser.positions[li].quote_native;
    *loser_cash = loser_cash.checked_add(amount).ok_or(MarginError::MathOverflow)?;
    winner.add_to_balance(&group.quote_bank, quote_bank.bank_index, amount)?;
    loser.add_to_balance(&group.quote_bank, quote_bank.bank_index, -amount)?;
    let maint_after = inputs.health(&group, &loser, HealthKind::Maint)?.health;
    require!(maint_after >= 0, MarginError::PnlLoserBelowMaintenance);
    crate::events::emit_event(&crate::events::PnlSettled { market: market_key, winner: a.winner.key(), loser: a.loser.key(), amount_native: amount });
    Ok(())
}

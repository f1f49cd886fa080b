//! `settle_pnl` (permissionless): realises perp P&L between two accounts. The first account's
//! position must be in profit and the second's at a loss at the oracle price (funding
//! included); the smaller of the two amounts, in whole quote native units, moves from the
//! loser's quote balance to the winner's and out of both positions' quote amounts. Nothing is
//! created: a gain can only be realised against a matching loss.

use crate::error::MarginError;
use crate::health::spot_per_lot;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::positions::settle_funding;
use crate::state::{CollateralBank, Group, MarginAccount, Market, Underlying};
use anchor_lang::prelude::*;
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

/// Unrealised P&L of a perp position at `spot_bits`, whole quote native units rounded down.
fn pnl_native(account: &mut MarginAccount, index: usize, market: &Market, spot: fixed::types::I32F32) -> Result<i64> {
    let position = &mut account.positions[index];
    settle_funding(position, market)?;
    let wide = mul_q32_by_int(spot, position.base_lots) + ((position.quote_native as i128) << 32);
    i64::try_from(wide >> 32).map_err(|_| error!(MarginError::MathOverflow))
}

pub fn settle_pnl(ctx: Context<SettlePnl>) -> Result<()> {
    require_keys_neq!(ctx.accounts.winner.key(), ctx.accounts.loser.key(), MarginError::SameAccountBothSides);
    let now = Clock::get()?.unix_timestamp;
    let group = ctx.accounts.group.load()?;
    group.require_quote_bank(&ctx.accounts.quote_bank.key())?;
    let quote_bank_index = ctx.accounts.quote_bank.load()?.bank_index;
    let underlying = ctx.accounts.underlying.load()?;
    let market = ctx.accounts.market.load()?;
    require!(!market.is_option(), MarginError::NotAPerpMarket);
    let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), &ctx.accounts.oracle, now)?;
    let spot = spot_per_lot(&reading, &group, &underlying)?;
    let market_key = ctx.accounts.market.key();
    let mut winner = ctx.accounts.winner.load_mut()?;
    let mut loser = ctx.accounts.loser.load_mut()?;
    let wi = winner.position_index(&market_key).ok_or(MarginError::NoPosition)?;
    let li = loser.position_index(&market_key).ok_or(MarginError::NoPosition)?;
    let gain = pnl_native(&mut winner, wi, &market, spot)?;
    // The loser's loss rounded towards zero, so it is never charged more than it lost.
    let loss = -pnl_native(&mut loser, li, &market, spot)? - 1;
    let amount = gain.min(loss);
    require!(amount > 0, MarginError::PnlNotSettleable);
    let winner_cash = &mut winner.positions[wi].quote_native;
    *winner_cash = winner_cash.checked_sub(amount).ok_or(MarginError::MathOverflow)?;
    let loser_cash = &mut loser.positions[li].quote_native;
    *loser_cash = loser_cash.checked_add(amount).ok_or(MarginError::MathOverflow)?;
    winner.add_to_balance(&group.quote_bank, quote_bank_index, amount)?;
    loser.add_to_balance(&group.quote_bank, quote_bank_index, -amount)?;
    Ok(())
}

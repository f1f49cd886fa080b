//! How fills, funding and settlements change a margin account. Every amount moved is a whole
//! number of quote native units and is moved between two accounts (or between a position and
//! its own quote balance), so the sum over all accounts never changes.

use crate::error::MarginError;
use crate::state::{CollateralBalance, MarginAccount, Market, PositionSlot};
use anchor_lang::prelude::*;
use risk_engine::risk_array::MAX_LOTS;

impl MarginAccount {
    /// Slot of the position in `market`, if any.
    pub fn position_index(&self, market: &Pubkey) -> Option<usize> {
        self.positions.iter().position(|p| p.in_use == 1 && p.market == *market)
    }

    /// Slot of the position in `market`, opening an empty one if needed.
    pub fn position_index_or_insert(&mut self, market_key: &Pubkey, market: &Market) -> Result<usize> {
        if let Some(i) = self.position_index(market_key) {
            return Ok(i);
        }
        let i = self.positions.iter().position(|p| p.in_use == 0).ok_or(MarginError::PositionSlotsFull)?;
        self.positions[i] = PositionSlot {
            market: *market_key,
            funding_index_native: market.funding_index_native,
            loss_per_lot_native: market.loss_per_lot_native,
            market_index: market.market_index,
            underlying_index: market.underlying_index,
            in_use: 1,
            ..PositionSlot::default()
        };
        Ok(i)
    }

    /// Adds `amount_native` (may be negative) to the balance of `bank`, opening a slot if
    /// needed and releasing it at zero.
    pub fn add_to_balance(&mut self, bank: &Pubkey, bank_index: u16, amount_native: i64) -> Result<()> {
        if amount_native == 0 {
            return Ok(());
        }
        let i = self.balance_index_or_insert(bank, bank_index)?;
        let slot: &mut CollateralBalance = &mut self.balances[i];
        slot.balance_native = slot.balance_native.checked_add(amount_native).ok_or(MarginError::MathOverflow)?;
        self.release_if_zero(i);
        Ok(())
    }
}

/// What a perp position owes since its snapshots: funding (`lots x index change`: longs pay,
/// shorts receive) plus its share of socialised losses (`|lots| x loss change`: both sides
/// pay). Whole quote native units.
pub fn perp_cash_owed(position: &PositionSlot, market: &Market) -> Result<i64> {
    if market.is_option() {
        return Ok(0);
    }
    let funding_change = market.funding_index_native.checked_sub(position.funding_index_native).ok_or(MarginError::MathOverflow)?;
    let loss_change = market.loss_per_lot_native.checked_sub(position.loss_per_lot_native).ok_or(MarginError::MathOverflow)?;
    let funding = position.base_lots.checked_mul(funding_change).ok_or(MarginError::MathOverflow)?;
    let loss = (position.base_lots.unsigned_abs() as i64).checked_mul(loss_change).ok_or(MarginError::MathOverflow)?;
    funding.checked_add(loss).ok_or(error!(MarginError::MathOverflow))
}

/// Moves what a perp position owes (funding and socialised losses) into its quote amount.
pub fn settle_funding(position: &mut PositionSlot, market: &Market) -> Result<()> {
    let owed = perp_cash_owed(position, market)?;
    position.quote_native = position.quote_native.checked_sub(owed).ok_or(MarginError::MathOverflow)?;
    position.funding_index_native = market.funding_index_native;
    position.loss_per_lot_native = market.loss_per_lot_native;
    Ok(())
}

/// What a fill did to one account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillOutcome {
    /// Position before, lots.
    pub old_base_lots: i64,
    /// Position after, lots.
    pub new_base_lots: i64,
}

impl FillOutcome {
    /// Whether the fill only reduced the position (same side, smaller, or closed).
    pub fn only_reduces(&self) -> bool {
        self.old_base_lots != 0
            && self.new_base_lots.signum() != -self.old_base_lots.signum()
            && self.new_base_lots.unsigned_abs() < self.old_base_lots.unsigned_abs()
    }

    /// Change of this account's contribution to long open interest.
    pub fn long_interest_change(&self) -> i64 {
        self.new_base_lots.max(0) - self.old_base_lots.max(0)
    }
}

/// Applies a fill of `lots` (positive = buy) at `price_per_lot_native` to `account`.
/// Perps: the cost goes into the position's quote amount (and, when the position closes, its
/// realised P&L into the quote balance). Options: the premium is paid from / into the quote
/// balance at once.
pub fn apply_fill(
    account: &mut MarginAccount,
    market_key: &Pubkey,
    market: &Market,
    quote_bank: &Pubkey,
    quote_bank_index: u16,
    lots: i64,
    price_per_lot_native: i64,
) -> Result<FillOutcome> {
    let index = account.position_index_or_insert(market_key, market)?;
    let cost = lots.checked_mul(price_per_lot_native).ok_or(MarginError::MathOverflow)?;
    let position = &mut account.positions[index];
    settle_funding(position, market)?;
    let old = position.base_lots;
    let new = old.checked_add(lots).ok_or(MarginError::PositionTooLarge)?;
    require!(new.unsigned_abs() <= MAX_LOTS as u64, MarginError::PositionTooLarge);
    position.base_lots = new;
    let mut to_balance = 0i64;
    if market.is_option() {
        to_balance = -cost;
    } else {
        position.quote_native = position.quote_native.checked_sub(cost).ok_or(MarginError::MathOverflow)?;
        if new == 0 {
            to_balance = position.quote_native;
            position.quote_native = 0;
        }
    }
    if new == 0 {
        account.positions[index] = PositionSlot::default();
    }
    account.add_to_balance(quote_bank, quote_bank_index, to_balance)?;
    Ok(FillOutcome { old_base_lots: old, new_base_lots: new })
}

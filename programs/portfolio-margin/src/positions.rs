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
    if !market.is_perp() {
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
    match market.market_kind()?.option_kind() {
        Some(_) => to_balance = -cost,
        None => {
            position.quote_native = position.quote_native.checked_sub(cost).ok_or(MarginError::MathOverflow)?;
            if new == 0 {
                to_balance = position.quote_native;
                position.quote_native = 0;
            }
        }
    }
    if new == 0 {
        account.positions[index] = PositionSlot::default();
    }
    account.add_to_balance(quote_bank, quote_bank_index, to_balance)?;
    Ok(FillOutcome { old_base_lots: old, new_base_lots: new })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::MarketKind;

    fn account() -> Box<MarginAccount> {
        Box::new(bytemuck::Zeroable::zeroed())
    }

    fn market(kind: MarketKind) -> Market {
        let mut market: Market = bytemuck::Zeroable::zeroed();
        market.kind = kind as u8;
        market
    }

    fn quote(account: &MarginAccount, bank: &Pubkey) -> i64 {
        account.balance_index(bank).map(|i| account.balances[i].balance_native).unwrap_or(0)
    }

    /// Both sides of every fill, so that conservation can be checked.
    fn fill(buyer: &mut MarginAccount, seller: &mut MarginAccount, key: &Pubkey, market: &Market, bank: &Pubkey, lots: i64, price: i64) {
        apply_fill(buyer, key, market, bank, 0, lots, price).unwrap();
        apply_fill(seller, key, market, bank, 0, -lots, price).unwrap();
    }

    #[test]
    fn a_perp_round_trip_realises_its_pnl_exactly_and_frees_the_slot() {
        let (key, bank, perp) = (Pubkey::new_unique(), Pubkey::new_unique(), market(MarketKind::Perp));
        let (mut long, mut short) = (account(), account());
        fill(&mut long, &mut short, &key, &perp, &bank, 3_000, 150_000);
        // Cost stays in the position until it closes.
        assert_eq!((quote(&long, &bank), quote(&short, &bank)), (0, 0));
        fill(&mut long, &mut short, &key, &perp, &bank, 1_000, 151_000);
        // Partly closed by selling 2,500 at 149,000, then closed at 152,000.
        fill(&mut short, &mut long, &key, &perp, &bank, 2_500, 149_000);
        assert_eq!(quote(&long, &bank), 0, "still open: nothing realised");
        fill(&mut short, &mut long, &key, &perp, &bank, 1_500, 152_000);
        // Paid 3,000 x 150,000 + 1,000 x 151,000 = 601,000,000; received 2,500 x 149,000 +
        // 1,500 x 152,000 = 600,500,000.
        assert_eq!(quote(&long, &bank), -500_000);
        assert_eq!(quote(&long, &bank) + quote(&short, &bank), 0, "a fill moves quote, never creates it");
        assert!(long.position_index(&key).is_none() && short.position_index(&key).is_none());
        assert!(long.positions.iter().all(|p| p.in_use == 0));
    }

    #[test]
    fn an_option_premium_moves_at_once() {
        let (key, bank, call) = (Pubkey::new_unique(), Pubkey::new_unique(), market(MarketKind::Call));
        let (mut buyer, mut writer) = (account(), account());
        fill(&mut buyer, &mut writer, &key, &call, &bank, 10, 4_321);
        assert_eq!((quote(&buyer, &bank), quote(&writer, &bank)), (-43_210, 43_210));
        let slot = buyer.positions[buyer.position_index(&key).unwrap()];
        assert_eq!((slot.base_lots, slot.quote_native), (10, 0));
    }

    #[test]
    fn funding_and_socialised_losses_are_owed_by_the_right_side() {
        let (key, bank) = (Pubkey::new_unique(), Pubkey::new_unique());
        let mut perp = market(MarketKind::Perp);
        let (mut long, mut short) = (account(), account());
        fill(&mut long, &mut short, &key, &perp, &bank, 100, 150_000);
        // Longs pay 7 a lot of funding; every lot, long or short, pays 2 of socialised loss.
        perp.funding_index_native += 7;
        perp.loss_per_lot_native += 2;
        let owed = |a: &MarginAccount| perp_cash_owed(&a.positions[a.position_index(&key).unwrap()], &perp).unwrap();
        assert_eq!((owed(&long), owed(&short)), (900, -500));
        // Settled into the position's quote amount, then nothing more is owed.
        let i = long.position_index(&key).unwrap();
        settle_funding(&mut long.positions[i], &perp).unwrap();
        assert_eq!(long.positions[i].quote_native, -15_000_000 - 900);
        assert_eq!(owed(&long), 0);
        // Options owe neither.
        let call = market(MarketKind::Call);
        assert_eq!(perp_cash_owed(&long.positions[i], &call).unwrap(), 0);
    }

    #[test]
    fn fills_report_reduction_and_open_interest_and_refuse_impossible_sizes() {
        let outcome = |old: i64, new: i64| FillOutcome { old_base_lots: old, new_base_lots: new };
        assert!(outcome(10, 4).only_reduces() && outcome(-10, 0).only_reduces());
        assert!(!outcome(10, -4).only_reduces(), "a flip is not a reduction");
        assert!(!outcome(0, 5).only_reduces() && !outcome(5, 6).only_reduces());
        assert_eq!((outcome(10, -4).long_interest_change(), outcome(-3, 5).long_interest_change()), (-10, 5));
        let (key, bank, perp) = (Pubkey::new_unique(), Pubkey::new_unique(), market(MarketKind::Perp));
        let mut a = account();
        apply_fill(&mut a, &key, &perp, &bank, 0, MAX_LOTS, 1).unwrap();
        let before = *a;
        let code = |r: Result<FillOutcome>| match r {
            Err(Error::AnchorError(e)) => e.error_code_number,
            other => panic!("{other:?}"),
        };
        let too_large = anchor_lang::error::ERROR_CODE_OFFSET + MarginError::PositionTooLarge as u32;
        assert_eq!(code(apply_fill(&mut a, &key, &perp, &bank, 0, 1, 1)), too_large);
        // Sixteen markets fill every slot; a seventeenth is refused.
        let mut b = account();
        for _ in 0..16 {
            apply_fill(&mut b, &Pubkey::new_unique(), &perp, &bank, 0, 1, 1).unwrap();
        }
        let full = anchor_lang::error::ERROR_CODE_OFFSET + MarginError::PositionSlotsFull as u32;
        assert_eq!(code(apply_fill(&mut b, &Pubkey::new_unique(), &perp, &bank, 0, 1, 1)), full);
        assert_eq!(a.positions, before.positions);
    }
}

//! `settle_expired_option` (permissionless): once an expired option's settlement price is final
//! (see `propose_settlement_price`), pays every margin account passed in `remaining_accounts`
//! its position's intrinsic value in the quote balance and closes the position (accounts
//! without the position are skipped). Holders receive
//! exactly what writers pay: the settlement price and the strike are whole quote native units
//! per lot.

use crate::error::MarginError;
use crate::state::{CollateralBank, Group, MarginAccount, Market, PositionSlot};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct SettleExpiredOption<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub market: AccountLoader<'info, Market>,
    pub quote_bank: AccountLoader<'info, CollateralBank>,
}

pub fn settle_expired_option<'info>(ctx: Context<'info, SettleExpiredOption<'info>>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let group = ctx.accounts.group.load()?;
    group.require_quote_bank(&ctx.accounts.quote_bank.key())?;
    let quote_bank_index = ctx.accounts.quote_bank.load()?.bank_index;
    let mut market = ctx.accounts.market.load_mut()?;
    require!(market.is_option(), MarginError::NotAnOptionMarket);
    require!(now >= market.expiry_ts, MarginError::OptionNotExpired);
    require!(market.is_settled(now), MarginError::SettlementNotFinal);
    market.settled = 1;
    let intrinsic = crate::health::intrinsic_per_lot(&market);
    let market_key = ctx.accounts.market.key();
    let mut accounts_settled = 0u32;
    for info in ctx.remaining_accounts {
        let loader = AccountLoader::<MarginAccount>::try_from(info)?;
        let mut account = loader.load_mut()?;
        require_keys_eq!(account.group, ctx.accounts.group.key(), MarginError::WrongGroup);
        // Already settled (or never held): nothing to pay, so a batch racing another settler
        // still goes through.
        let Some(index) = account.position_index(&market_key) else { continue };
        let lots = account.positions[index].base_lots;
        let payout = lots.checked_mul(intrinsic).ok_or(MarginError::MathOverflow)?;
        account.positions[index] = PositionSlot::default();
        account.add_to_balance(&group.quote_bank, quote_bank_index, payout)?;
        market.open_interest_lots = market.open_interest_lots.checked_sub(lots.max(0)).ok_or(MarginError::MathOverflow)?;
        accounts_settled += 1;
    }
    crate::events::emit_event(&crate::events::OptionPositionsSettled {
        market: market_key,
        settlement_price_native: market.settlement_price_native,
        intrinsic_per_lot_native: intrinsic,
        accounts_settled,
        open_interest_after_lots: market.open_interest_lots,
    });
    Ok(())
}

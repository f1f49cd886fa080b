//! `trade` (RFQ / block trade): moves `lots` of a market from the seller to the buyer at an
//! agreed price, signed by both accounts' owners or delegates.
//!
//! Checks, in order: the market is live (options: not expired), the two accounts differ, the
//! price lies within the market's band around the oracle (perps) or the model value (options)
//! so colluding accounts cannot move value at off-market prices, both accounts have a free
//! position slot, and afterwards both satisfy init health, except that a fill that only reduces
//! an account's position is allowed when it does not lower that account's init health.
//! Health accounts of both sides go in `remaining_accounts` (any order).

use crate::error::MarginError;
use crate::events::Traded;
use crate::health::{check_array_fresh, option_value_per_lot, spot_per_lot, HealthInputs};
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::positions::{apply_fill, FillOutcome};
use crate::state::{CollateralBank, Group, MarginAccount, Market, Underlying, PPM};
use anchor_lang::prelude::*;
use fixed::types::I32F32;
use risk_engine::health::HealthKind;

#[derive(Accounts)]
pub struct Trade<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
    /// The group's quote bank (premiums and realised P&L are paid in its balance).
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub buyer: AccountLoader<'info, MarginAccount>,
    pub buyer_authority: Signer<'info>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub seller: AccountLoader<'info, MarginAccount>,
    pub seller_authority: Signer<'info>,
}

/// The accounts a fill needs, shared by `trade` and `venue_trade`.
pub struct FillAccounts<'a, 'info> {
    pub group: &'a AccountLoader<'info, Group>,
    pub market: &'a AccountLoader<'info, Market>,
    pub underlying: &'a AccountLoader<'info, Underlying>,
    pub oracle: &'a AccountInfo<'info>,
    pub quote_bank: &'a AccountLoader<'info, CollateralBank>,
    pub buyer: &'a AccountLoader<'info, MarginAccount>,
    pub seller: &'a AccountLoader<'info, MarginAccount>,
    pub remaining: &'a [AccountInfo<'info>],
}

/// Checks that `price_per_lot_native` is within the market's band.
fn check_price_band(market_key: &Pubkey, market: &Market, underlying: &Underlying, spot: I32F32, price_per_lot_native: i64, now: i64) -> Result<()> {
    let band = market.price_band_ppm as i128;
    let price = (price_per_lot_native as i128) << 32;
    let (reference, scale) = if market.is_option() {
        check_array_fresh(market_key, market, underlying, spot, now)?;
        let value = option_value_per_lot(market, spot)?;
        // Options: band x (model value + 1% of spot), so cheap wings still have a usable band.
        (value.to_bits() as i128, value.to_bits() as i128 + spot.to_bits() as i128 / 100)
    } else {
        (spot.to_bits() as i128, spot.to_bits() as i128)
    };
    let distance = (price - reference).abs();
    if distance * PPM as i128 > band * scale {
        msg!("price {} per lot vs reference {} per lot", price_per_lot_native, I32F32::from_bits(reference as i64));
        return err!(MarginError::TradePriceOffMarket);
    }
    Ok(())
}

/// Init health of one side after the fill, with the reduce-only exception (the state before
/// the fill is only loaded when that exception is needed).
fn check_side_health(
    after_inputs: &HealthInputs,
    group: &Group,
    group_key: &Pubkey,
    before: &MarginAccount,
    after: &MarginAccount,
    fill: &FillOutcome,
    infos: &[AccountInfo],
) -> Result<()> {
    let health_after = after_inputs.health(group, after, HealthKind::Init)?;
    if health_after.health >= 0 {
        return Ok(());
    }
    if fill.only_reduces() {
        let health_before = HealthInputs::load(group, group_key, before, infos)?.health(group, before, HealthKind::Init)?;
        if health_after.health >= health_before.health {
            return Ok(());
        }
    }
    err!(MarginError::InitHealthNegative)
}

/// Executes a fill after the caller checked who may trade for the two accounts.
pub fn execute_fill(accounts: FillAccounts, lots: i64, price_per_lot_native: i64, venue: Pubkey) -> Result<()> {
    require!(lots > 0, MarginError::ZeroQuantity);
    require!(price_per_lot_native >= 0, MarginError::InvalidTradePrice);
    require_keys_neq!(accounts.buyer.key(), accounts.seller.key(), MarginError::SameAccountBothSides);
    let now = Clock::get()?.unix_timestamp;
    let group_key = accounts.group.key();
    let market_key = accounts.market.key();
    let group = accounts.group.load()?;
    group.require_quote_bank(&accounts.quote_bank.key())?;
    let quote_bank_index = accounts.quote_bank.load()?.bank_index;
    let (buyer_before, seller_before, buyer_fill, seller_fill, buyer_after, seller_after);
    {
        let underlying = accounts.underlying.load()?;
        let mut market = accounts.market.load_mut()?;
        require!(market.settled == 0 && !market.is_expired(now), MarginError::MarketExpired);
        require!(market.is_option() || price_per_lot_native > 0, MarginError::InvalidTradePrice);
        let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), accounts.oracle, now)?;
        let spot = spot_per_lot(&reading, &group, &underlying)?;
        check_price_band(&market_key, &market, &underlying, spot, price_per_lot_native, now)?;

        let mut buyer = accounts.buyer.load_mut()?;
        let mut seller = accounts.seller.load_mut()?;
        buyer_before = *buyer;
        seller_before = *seller;
        buyer_fill = apply_fill(&mut buyer, &market_key, &market, &group.quote_bank, quote_bank_index, lots, price_per_lot_native)?;
        seller_fill = apply_fill(&mut seller, &market_key, &market, &group.quote_bank, quote_bank_index, -lots, price_per_lot_native)?;
        market.open_interest_lots = market
            .open_interest_lots
            .checked_add(buyer_fill.long_interest_change() + seller_fill.long_interest_change())
            .ok_or(MarginError::MathOverflow)?;
        if !market.is_option() {
            // Premium of this fill over the oracle, ppm, for the next funding update.
            let spot_bits = spot.to_bits() as i128;
            let premium = (((price_per_lot_native as i128) << 32) - spot_bits) * PPM as i128 / spot_bits;
            market.funding_premium_sum_ppm = market
                .funding_premium_sum_ppm
                .checked_add(premium.clamp(-(PPM as i128), PPM as i128) as i64)
                .ok_or(MarginError::MathOverflow)?;
            market.funding_trade_count = market.funding_trade_count.saturating_add(1);
        }
        buyer_after = *buyer;
        seller_after = *seller;
    }
    // Health reads the named market, underlying, oracle and quote bank from here as well.
    let mut infos = accounts.remaining.to_vec();
    infos.extend([
        accounts.market.to_account_info(),
        accounts.underlying.to_account_info(),
        accounts.oracle.clone(),
        accounts.quote_bank.to_account_info(),
    ]);
    // Both sides after the fill, loaded and priced once.
    let inputs = HealthInputs::load_many(&group, &group_key, &[&buyer_after, &seller_after], &infos)?;
    check_side_health(&inputs, &group, &group_key, &buyer_before, &buyer_after, &buyer_fill, &infos)?;
    check_side_health(&inputs, &group, &group_key, &seller_before, &seller_after, &seller_fill, &infos)?;
    emit!(Traded {
        market: market_key,
        buyer: accounts.buyer.key(),
        seller: accounts.seller.key(),
        lots,
        price_per_lot_native,
        venue,
    });
    Ok(())
}

pub fn trade<'info>(ctx: Context<'info, Trade<'info>>, lots: i64, price_per_lot_native: i64) -> Result<()> {
    let a = &ctx.accounts;
    require!(a.buyer.load()?.is_owner_or_delegate(&a.buyer_authority.key()), MarginError::NotOwnerOrDelegate);
    require!(a.seller.load()?.is_owner_or_delegate(&a.seller_authority.key()), MarginError::NotOwnerOrDelegate);
    execute_fill(
        FillAccounts {
            group: &a.group,
            market: &a.market,
            underlying: &a.underlying,
            oracle: &a.oracle,
            quote_bank: &a.quote_bank,
            buyer: &a.buyer,
            seller: &a.seller,
            remaining: ctx.remaining_accounts,
        },
        lots,
        price_per_lot_native,
        Pubkey::default(),
    )
}

//! `trade` (RFQ / block trade): moves `lots` of a market from the seller to the buyer at an
//! agreed price, signed for each account by its owner or an active delegate.
//!
//! Checks, in order: the market is live (options: not expired, posted vol fresh), the two
//! accounts differ, the price lies within the market's band around the reference price (the
//! oracle for perps, the model value for options) so colluding accounts cannot move value at
//! off-market prices, a side signed by a delegate stays within the owner's limits (see
//! `set_delegate`), both accounts have a free position slot, and afterwards both satisfy init
//! health. A fill that only reduces an account's position may leave it below init health when
//! it does not lower its init health and the account stays at or above maintenance (below it,
//! liquidation takes over). No fill leaves either side with a position of
//! `0 < |lots| < min_position_lots` (`PositionBelowMinimum`).
//! Perp fills accrue funding first and then move the market's mark premium (`crate::funding`).
//! Health accounts of both sides go in `remaining_accounts` (any order).

use crate::error::MarginError;
use crate::events::Traded;
use crate::health::{check_array_fresh, option_value_per_lot, require_fresh_vol, spot_per_lot, HealthInputs};
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::positions::{apply_fill, FillOutcome};
use crate::state::{boxed_copy, CollateralBank, Group, MarginAccount, Market, Underlying, PPM};
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

/// The accounts a fill needs, shared by `trade` and `venue_trade`, and the key that consented
/// for each side (a signer in `trade`, the key the venue verified in `venue_trade`).
pub struct FillAccounts<'a, 'info> {
    pub group: &'a AccountLoader<'info, Group>,
    pub market: &'a AccountLoader<'info, Market>,
    pub underlying: &'a AccountLoader<'info, Underlying>,
    pub oracle: &'a AccountInfo<'info>,
    pub quote_bank: &'a AccountLoader<'info, CollateralBank>,
    pub buyer: &'a AccountLoader<'info, MarginAccount>,
    pub seller: &'a AccountLoader<'info, MarginAccount>,
    pub buyer_consent: Pubkey,
    pub seller_consent: Pubkey,
    pub remaining: &'a [AccountInfo<'info>],
}

/// A market's reference price per lot (oracle for perps, model value for options) and the
/// scale its bands are measured against (the price for perps; model value + 1% of spot for
/// options, so cheap wings still have a usable band), both Q32.32 bits.
pub struct Reference {
    pub price_bits: i128,
    pub scale_bits: i128,
}

impl Reference {
    /// The reference of a live market at `spot`, checking that it may be used.
    pub fn of(market_key: &Pubkey, market: &Market, underlying: &Underlying, spot: I32F32, now: i64) -> Result<Self> {
        match market.market_kind()?.option_kind() {
            Some(_) => {
                require_fresh_vol(market_key, market, now)?;
                check_array_fresh(market_key, market, underlying, spot, now)?;
                let value = option_value_per_lot(market, spot)?;
                Ok(Reference { price_bits: value.to_bits() as i128, scale_bits: value.to_bits() as i128 + spot.to_bits() as i128 / 100 })
            }
            None => Ok(Reference { price_bits: spot.to_bits() as i128, scale_bits: spot.to_bits() as i128 }),
        }
    }

    /// Whether `price_per_lot_native` is within `band_ppm` of the reference.
    pub fn within(&self, price_per_lot_native: i64, band_ppm: u32) -> bool {
        let distance = (((price_per_lot_native as i128) << 32) - self.price_bits).abs();
        distance * PPM as i128 <= band_ppm as i128 * self.scale_bits
    }

    /// Value a side gives away against the reference by buying (`lots > 0`) or selling
    /// (`lots < 0`) `|lots|` at `price_per_lot_native`, quote native units rounded up; 0 when
    /// the price is at or better than the reference for that side.
    pub fn given_away_native(&self, price_per_lot_native: i64, lots: i64) -> i64 {
        let per_lot = ((price_per_lot_native as i128) << 32) - self.price_bits;
        let lost = per_lot.saturating_mul(lots as i128);
        if lost <= 0 {
            return 0;
        }
        let native = (lost + (1 << 32) - 1) >> 32;
        native.min(i64::MAX as i128) as i64
    }
}

/// The limits on a side whose consent came from its delegate (not its owner): the delegation
/// is current, the counterparty is not an account the delegate controls, an option's reference
/// was computed in this very second (an older array does not decay with time: an hour-old
/// reference minutes before expiry is far above the option's worth), the price is within the
/// owner's band, and the value given away stays within the remaining budget (which this fill
/// then uses). No-op for the owner.
#[allow(clippy::too_many_arguments)]
fn check_delegate_side(
    market: &Market,
    account: &mut MarginAccount,
    consent: &Pubkey,
    counterparty: &MarginAccount,
    reference: &Reference,
    price_per_lot_native: i64,
    signed_lots: i64,
    now: i64,
) -> Result<()> {
    if *consent == account.owner {
        return Ok(());
    }
    require!(account.is_active_delegate(consent, now), MarginError::NotOwnerOrDelegate);
    require!(!counterparty.is_controlled_by(consent), MarginError::DelegateCounterpartyControlled);
    require!(!market.is_option() || market.array_updated_ts == now, MarginError::OptionArrayNotCurrent);
    require!(reference.within(price_per_lot_native, account.delegate_price_band_ppm), MarginError::DelegatePriceOutsideBand);
    let used = account
        .delegate_slippage_used_native
        .checked_add(reference.given_away_native(price_per_lot_native, signed_lots))
        .ok_or(MarginError::MathOverflow)?;
    require!(used <= account.delegate_max_slippage_native, MarginError::DelegateSlippageExceeded);
    account.delegate_slippage_used_native = used;
    Ok(())
}

/// Health of one side after the fill: init >= 0, or the reduce-only exception (init not lower
/// than before and maintenance >= 0 after; the state before is only priced when the exception
/// is needed). Returns whether init health is >= 0.
fn check_side_health(inputs: &HealthInputs, group: &Group, before: &MarginAccount, after: &MarginAccount, fill: &FillOutcome) -> Result<bool> {
    let health_after = inputs.health(group, after, HealthKind::Init)?;
    if health_after.health >= 0 {
        return Ok(true);
    }
    require!(fill.only_reduces(), MarginError::InitHealthNegative);
    let health_before = inputs.health(group, before, HealthKind::Init)?;
    require!(health_after.health >= health_before.health, MarginError::InitHealthNegative);
    // Below init health an account may only reduce while it stays at or above maintenance:
    // under it, liquidation takes over. Otherwise a short marked at a pumped conservative price
    // could buy back at the pump from an accomplice (its init health does not fall) and leave
    // the accomplice's gain as bad debt.
    let maint_after = inputs.health(group, after, HealthKind::Maint)?;
    require!(maint_after.health >= 0, MarginError::ReduceBelowMaintenance);
    Ok(false)
}

/// Executes a fill after the caller established who consented for the two accounts.
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
    let (buyer_before, seller_before, buyer_after, seller_after);
    let (buyer_fill, seller_fill, reference);
    {
        let underlying = accounts.underlying.load()?;
        let mut market = accounts.market.load_mut()?;
        require!(!market.is_settled(now) && !market.is_expired(now), MarginError::MarketExpired);
        require!(market.is_option() || price_per_lot_native > 0, MarginError::InvalidTradePrice);
        let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), accounts.oracle, now)?;
        let spot = spot_per_lot(&reading, &group, &underlying)?;
        reference = Reference::of(&market_key, &market, &underlying, spot, now)?;
        if !reference.within(price_per_lot_native, market.price_band_ppm) {
            msg!("price {} per lot vs reference {} per lot", price_per_lot_native, I32F32::from_bits(reference.price_bits as i64));
            return err!(MarginError::TradePriceOffMarket);
        }

        let mut buyer = accounts.buyer.load_mut()?;
        let mut seller = accounts.seller.load_mut()?;
        buyer_before = boxed_copy(&buyer);
        seller_before = boxed_copy(&seller);
        check_delegate_side(&market, &mut buyer, &accounts.buyer_consent, &seller_before, &reference, price_per_lot_native, lots, now)?;
        check_delegate_side(&market, &mut seller, &accounts.seller_consent, &buyer_before, &reference, price_per_lot_native, -lots, now)?;
        crate::funding::accrue(&mut market, spot, now)?;
        buyer_fill = apply_fill(&mut buyer, &market_key, &market, &group.quote_bank, quote_bank_index, lots, price_per_lot_native)?;
        seller_fill = apply_fill(&mut seller, &market_key, &market, &group.quote_bank, quote_bank_index, -lots, price_per_lot_native)?;
        // No side may be left with a position under the market's minimum (closing to zero is
        // always allowed): a position too small to pay for its own liquidation is never opened.
        for fill in [&buyer_fill, &seller_fill] {
            if market.is_dust(fill.new_base_lots) {
                msg!("position of {} lots left, minimum {}", fill.new_base_lots, market.min_position_lots);
                return err!(MarginError::PositionBelowMinimum);
            }
        }
        let interest_change = buyer_fill.long_interest_change() + seller_fill.long_interest_change();
        market.open_interest_lots = market.open_interest_lots.checked_add(interest_change).ok_or(MarginError::MathOverflow)?;
        // A fill that raises open interest past the market's cap is refused; one that lowers it
        // (or leaves it) is always allowed, even above a cap.
        if interest_change > 0 && market.max_open_interest_lots > 0 && market.open_interest_lots > market.max_open_interest_lots {
            msg!("open interest {} lots, cap {}", market.open_interest_lots, market.max_open_interest_lots);
            return err!(MarginError::OpenInterestCapExceeded);
        }
        crate::funding::record_fill(&mut market, spot, price_per_lot_native, lots, now);
        buyer_after = boxed_copy(&buyer);
        seller_after = boxed_copy(&seller);
    }
    // Health reads the named market, underlying, oracle and quote bank from here as well.
    let mut infos = accounts.remaining.to_vec();
    infos.extend([
        accounts.market.to_account_info(),
        accounts.underlying.to_account_info(),
        accounts.oracle.clone(),
        accounts.quote_bank.to_account_info(),
    ]);
    // Both sides before and after the fill, loaded and priced once (the states share almost all
    // their accounts).
    let inputs = HealthInputs::load_many(&group, &group_key, &[&buyer_after, &seller_after, &buyer_before, &seller_before], &infos)?;
    let buyer_healthy = check_side_health(&inputs, &group, &buyer_before, &buyer_after, &buyer_fill)?;
    let seller_healthy = check_side_health(&inputs, &group, &seller_before, &seller_after, &seller_fill)?;
    // Init health >= 0 implies liquidation-end health >= 0: any liquidation is over.
    if buyer_healthy {
        accounts.buyer.load_mut()?.being_liquidated = 0;
    }
    if seller_healthy {
        accounts.seller.load_mut()?.being_liquidated = 0;
    }
    crate::events::emit_event(&Traded {
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
    let now = Clock::get()?.unix_timestamp;
    require!(a.buyer.load()?.is_owner_or_delegate(&a.buyer_authority.key(), now), MarginError::NotOwnerOrDelegate);
    require!(a.seller.load()?.is_owner_or_delegate(&a.seller_authority.key(), now), MarginError::NotOwnerOrDelegate);
    execute_fill(
        FillAccounts {
            group: &a.group,
            market: &a.market,
            underlying: &a.underlying,
            oracle: &a.oracle,
            quote_bank: &a.quote_bank,
            buyer: &a.buyer,
            seller: &a.seller,
            buyer_consent: a.buyer_authority.key(),
            seller_consent: a.seller_authority.key(),
            remaining: ctx.remaining_accounts,
        },
        lots,
        price_per_lot_native,
        Pubkey::default(),
    )
}

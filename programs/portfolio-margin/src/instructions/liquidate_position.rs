//! `liquidate_position(max_lots)` (permissionless): a liquidator takes over part of an
//! unhealthy account's position in one market at the mark price (oracle for perps, model value
//! for options, intrinsic value once expired) adjusted by the liquidation fee in the
//! liquidator's favour. The liquidator states the most it will take; the program chooses the
//! size (`crate::liquidation::choose_step`): the smallest that brings the liquidatee's
//! liquidation-end health to zero, or `max_lots` when none does and it is not past the size that
//! maximises health; a step that would leave the liquidatee a position under the market's
//! minimum takes the whole position instead when `max_lots` allows, or leaves exactly the
//! minimum (`crate::liquidation::avoid_dust`). The liquidator must keep init health >= 0. Health accounts of both sides go
//! in `remaining_accounts`.

use crate::error::MarginError;
use crate::health::{check_array_fresh, mark_per_lot, spot_per_lot};
use crate::state::{boxed_copy, write_account};
use crate::health::HealthInputs;
use crate::liquidation::{avoid_dust, check_liquidator, choose_step, position_terms, risk_per_lot, simulate_position, start};
use risk_engine::health::HealthKind;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{CollateralBank, Group, MarginAccount, Market, Underlying};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct LiquidatePosition<'info> {
    #[account(mut)]
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub liquidator: AccountLoader<'info, MarginAccount>,
    pub liquidator_authority: Signer<'info>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub liquidatee: AccountLoader<'info, MarginAccount>,
}

pub fn liquidate_position<'info>(ctx: Context<'info, LiquidatePosition<'info>>, max_lots: i64) -> Result<()> {
    let a = &ctx.accounts;
    require_keys_neq!(a.liquidator.key(), a.liquidatee.key(), MarginError::LiquidatorIsLiquidatee);
    require!(max_lots > 0, MarginError::ZeroQuantity);
    let now = Clock::get()?.unix_timestamp;
    let group_key = a.group.key();
    let market_key = a.market.key();
    let group = *a.group.load()?;
    group.require_quote_bank(&a.quote_bank.key())?;
    let quote_bank_index = a.quote_bank.load()?.bank_index;
    let liquidator = boxed_copy(&*a.liquidator.load()?);
    require!(liquidator.is_owner_or_delegate(&a.liquidator_authority.key(), now), MarginError::NotOwnerOrDelegate);
    let liquidatee = boxed_copy(&*a.liquidatee.load()?);

    // Mark price per lot: the oracle for perps; for options the model value (shocked against
    // the liquidatee if the posted vol is stale), or the intrinsic value once expired and until
    // the settlement price is final (then the position is settled, not liquidated).
    let underlying = *a.underlying.load()?;
    let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), &a.oracle, now)?;
    let spot = spot_per_lot(&reading, &group, &underlying)?;
    let market = {
        let mut market = a.market.load_mut()?;
        require!(!market.is_settled(now), MarginError::MarketExpired);
        crate::funding::accrue(&mut market, spot, now)?;
        *market
    };
    let index = liquidatee.position_index(&market_key).ok_or(MarginError::NoPosition)?;
    let held = liquidatee.positions[index].base_lots;
    let grid = underlying.grid.params();
    let mark = match market.market_kind()?.option_kind() {
        Some(_) => {
            if !market.settlement_is_proposed(now) {
                // The option changes hands at its current model value: an array from earlier
                // in the hour would not show the time value lost since.
                require!(market.array_updated_ts == now, MarginError::OptionArrayNotCurrent);
                check_array_fresh(&market_key, &market, &underlying, spot, now)?;
            }
            mark_per_lot(&market, spot, held, now, true)?
        }
        None => spot,
    };
    let mut infos = ctx.remaining_accounts.to_vec();
    infos.extend([a.market.to_account_info(), a.underlying.to_account_info(), a.oracle.to_account_info(), a.quote_bank.to_account_info()]);
    // No more than the position (a maximum beyond it is clamped, so a race that shrank the
    // position does not refuse the step).
    let max_lots = max_lots.min(held.checked_abs().ok_or(MarginError::MathOverflow)?);
    let terms = position_terms(&group, held, mark, risk_per_lot(&market, held, mark, spot, grid.price_range)?)?;
    let quote_bank = group.quote_bank;
    let simulate =
        |n: i64| simulate_position(&liquidator, &liquidatee, &market_key, &market, &quote_bank, quote_bank_index, &terms, n);
    // Every state the checks and the search evaluate uses the accounts of these three: loaded
    // and priced once. They borrow the market's data: dropped before it is written.
    let (lots, after_end) = {
        let (taker_max, victim_max, _) = simulate(max_lots)?;
        let inputs = HealthInputs::load_many(&group, &group_key, &[&liquidatee, &victim_max, &taker_max], &infos)?;
        let before_end = start(&inputs, &group, &liquidatee)?;
        let end_after = |n: i64| inputs.health(&group, &simulate(n)?.1, HealthKind::LiquidationEnd).map(|h| h.health);
        let chosen = choose_step(before_end, max_lots, &end_after)?;
        let held_abs = held.checked_abs().ok_or(MarginError::MathOverflow)?;
        let (lots, after_end) = avoid_dust(before_end, held_abs, max_lots, market.min_position_lots, chosen, &end_after)?;
        check_liquidator(&inputs, &group, &simulate(lots)?.0)?;
        (lots, after_end)
    };
    let (taker, mut victim, interest_change) = simulate(lots)?;

    victim.being_liquidated = u8::from(after_end < 0);
    write_account(&a.liquidator, &taker)?;
    write_account(&a.liquidatee, &victim)?;
    let mut market = a.market.load_mut()?;
    market.open_interest_lots = market.open_interest_lots.checked_add(interest_change).ok_or(MarginError::MathOverflow)?;
    let mut group = a.group.load_mut()?;
    let insurance_fee_native = lots.checked_mul(terms.insurance_fee_per_lot_native).ok_or(MarginError::MathOverflow)?;
    group.insurance_fund_native = group.insurance_fund_native.checked_add(insurance_fee_native).ok_or(MarginError::MathOverflow)?;
    crate::events::emit_event(&crate::events::PositionLiquidated {
        market: market_key,
        liquidator: a.liquidator.key(),
        liquidatee: a.liquidatee.key(),
        lots,
        liquidatee_long: terms.liquidatee_long,
        price_per_lot_native: terms.price_per_lot_native,
        insurance_fee_native,
        liquidatee_end_health_native: crate::liquidation::health_native_floor(after_end),
    });
    Ok(())
}

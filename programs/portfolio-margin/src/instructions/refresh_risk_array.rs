//! `refresh_risk_array` (permissionless): recomputes a market's per-lot scenario P&L, delta
//! and value at the current oracle price and posted vol. Health checks use the array while the
//! price and vol stay within the underlying's tolerances and the array is young enough; a
//! client prepends this instruction when one is stale.
//!
//! It also stores the short-mark buffer: how much the first-order option mark health uses can
//! understate an option's value anywhere within the underlying's price and vol tolerances
//! (`risk_engine::risk_array::short_mark_buffer`); short positions are marked that much higher.
//!
//! A stale posted vol does not block a refresh (the array is computed at the last posted vol,
//! and health then shocks option marks against each position): no health computation depends on
//! the risk authority staying alive. From expiry on, the array holds intrinsic values (time to
//! expiry zero) and needs no vol at all.

use crate::error::MarginError;
use crate::health::spot_per_lot;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{Group, Market, Underlying};
use anchor_lang::prelude::*;
use fixed::types::I32F32;
use risk_engine::risk_array::{compute_risk_array_into, short_mark_buffer, MarketState, RiskArray};

#[derive(Accounts)]
pub struct RefreshRiskArray<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration by `read_oracle_account`.
    pub oracle: UncheckedAccount<'info>,
}

pub fn refresh_risk_array(ctx: Context<RefreshRiskArray>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let group = ctx.accounts.group.load()?;
    let underlying = ctx.accounts.underlying.load()?;
    let mut market = ctx.accounts.market.load_mut()?;
    let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), &ctx.accounts.oracle, now)?;
    let spot = spot_per_lot(&reading, &group, &underlying)?;
    refresh_market(&mut market, &underlying, spot, now).inspect_err(|_| {
        msg!("risk array of market {} failed", ctx.accounts.market.key());
    })
}

/// Recomputes `market`'s risk array at `spot` (quote native units per lot) and time `now`: the
/// whole of `refresh_risk_array` after the accounts are read. Clients call it to see the array
/// a transaction that refreshes first will use (the keeper plans liquidations on it).
pub fn refresh_market(market: &mut Market, underlying: &Underlying, spot: I32F32, now: i64) -> Result<()> {
    let vol = if market.is_option() && !market.is_expired(now) {
        // Never posted: there is no vol to compute at (and nobody can hold the market yet).
        require!(market.vol_updated_ts != 0, MarginError::VolatilityStale);
        I32F32::from_bits(market.vol_bits)
    } else {
        I32F32::ZERO
    };
    let params = underlying.grid.params();
    let scenarios = params.scenarios().map_err(|_| error!(MarginError::InvalidGridParams))?;
    let state = MarketState { instrument: market.instrument(now)?, spot, vol };
    // On the heap: an array is about 1.6 KB, too much for a 4 KB SBF stack frame.
    let mut array = Box::new(RiskArray::EMPTY);
    compute_risk_array_into(&state, &params, &scenarios, &mut array).map_err(crate::error::risk_engine_error)?;
    // Tolerances as Q32.32 fractions, rounded up (a wider band only raises the buffer).
    let fraction = |ppm: u32| I32F32::from_bits((((ppm as u64) << 32).div_ceil(crate::state::PPM as u64)) as i64);
    let short_buffer = short_mark_buffer(&state, &array, fraction(underlying.array_price_tolerance_ppm), fraction(underlying.array_vol_tolerance_ppm))
        .map_err(crate::error::risk_engine_error)?;
    market.store_risk_array(&array, short_buffer, spot, vol, now);
    Ok(())
}

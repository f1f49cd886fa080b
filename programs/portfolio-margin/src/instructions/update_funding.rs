//! `update_funding` (permissionless): accrues a perp's funding index.
//!
//! Rate per period = the average premium of trade prices over the oracle since the last update,
//! clamped to the market's maximum; the index (whole quote native units per lot) grows by
//! `rate x oracle price per lot x elapsed / period`. The fraction of a native unit is carried to
//! the next update. Positions settle lazily: each pays `lots x index change` when touched, so
//! the longs' payments equal the shorts' receipts exactly.

use crate::error::MarginError;
use crate::health::spot_per_lot;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{Group, Market, Underlying, PPM};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct UpdateFunding<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
}

/// New (index, carry) after `elapsed_seconds` at `rate_ppm` per period with spot per lot
/// `spot_bits` (Q32.32). Pure, so tests and clients can follow the arithmetic.
pub fn accrue(index: i64, carry_bits: i64, rate_ppm: i64, spot_bits: i64, elapsed_seconds: i64, period_seconds: u32) -> Result<(i64, i64)> {
    let overflow = || error!(MarginError::MathOverflow);
    // increment (Q32.32) = spot x rate / 1e6 x elapsed / period; exact integer arithmetic, floor.
    let numerator = (spot_bits as i128)
        .checked_mul(rate_ppm as i128)
        .and_then(|v| v.checked_mul(elapsed_seconds as i128))
        .ok_or_else(overflow)?;
    let denominator = PPM as i128 * period_seconds as i128;
    let increment_bits = numerator.div_euclid(denominator) + carry_bits as i128;
    let whole = increment_bits >> 32; // floor
    let carry = increment_bits - (whole << 32);
    let index = (index as i128).checked_add(whole).ok_or_else(overflow)?;
    Ok((i64::try_from(index).map_err(|_| overflow())?, carry as i64))
}

pub fn update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let group = ctx.accounts.group.load()?;
    let underlying = ctx.accounts.underlying.load()?;
    let mut market = ctx.accounts.market.load_mut()?;
    require!(!market.is_option(), MarginError::NotAPerpMarket);
    let elapsed = now - market.funding_last_ts;
    require!(elapsed > 0, MarginError::FundingUpToDate);
    let reading = read_oracle_account(&OracleConfig::of_underlying(&underlying), &ctx.accounts.oracle, now)?;
    let spot = spot_per_lot(&reading, &group, &underlying)?;
    let average = if market.funding_trade_count == 0 {
        0
    } else {
        market.funding_premium_sum_ppm / market.funding_trade_count as i64
    };
    let limit = market.max_funding_rate_ppm as i64;
    let rate = average.clamp(-limit, limit);
    let (index, carry) = accrue(
        market.funding_index_native,
        market.funding_carry_bits,
        rate,
        spot.to_bits(),
        elapsed,
        market.funding_period_seconds,
    )?;
    market.funding_index_native = index;
    market.funding_carry_bits = carry;
    market.funding_last_ts = now;
    market.funding_premium_sum_ppm = 0;
    market.funding_trade_count = 0;
    Ok(())
}

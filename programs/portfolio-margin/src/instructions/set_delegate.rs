//! `set_delegate` (owner): a key that may trade (and deposit) for the account but never
//! withdraw or close, within limits the owner sets:
//!
//! - an expiry, after which the key has no rights;
//! - a price band: every fill the delegate consents to is within `price_band_ppm` of the
//!   reference price (the oracle for perps, the model value for options);
//! - a slippage budget: the value the delegate's fills give away against the reference, summed
//!   over all of them, never exceeds `max_slippage_native` (quote native units). This is the
//!   most a dishonest delegate can move out of the account by trading against itself, whatever
//!   the number of round trips;
//! - it never fills against an account it owns or is delegate of.
//!
//! Setting a delegate (or the same one again) resets the budget used. `Pubkey::default()`
//! removes the delegate.

use crate::error::MarginError;
use crate::events::DelegateSet;
use crate::state::MarginAccount;
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct SetDelegate<'info> {
    #[account(mut, has_one = owner @ MarginError::NotOwner)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub owner: Signer<'info>,
}

/// What the owner allows a delegate to do.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelegateLimits {
    /// The delegate's fills must be within this band of the reference price, ppm (1..=200000).
    pub price_band_ppm: u32,
    /// Total value the delegate's fills may give away against the reference, quote native (>= 0).
    pub max_slippage_native: i64,
    /// The delegation ends at this unix time (in the future).
    pub expiry_ts: i64,
}

pub fn set_delegate(ctx: Context<SetDelegate>, delegate: Pubkey, limits: DelegateLimits) -> Result<()> {
    let mut account = ctx.accounts.margin_account.load_mut()?;
    if delegate == Pubkey::default() {
        account.delegate = Pubkey::default();
        account.delegate_expiry_ts = 0;
        account.delegate_max_slippage_native = 0;
        account.delegate_price_band_ppm = 0;
    } else {
        let now = Clock::get()?.unix_timestamp;
        require!(
            (1..=200_000).contains(&limits.price_band_ppm) && limits.max_slippage_native >= 0 && limits.expiry_ts > now,
            MarginError::InvalidDelegateLimits
        );
        account.delegate = delegate;
        account.delegate_expiry_ts = limits.expiry_ts;
        account.delegate_max_slippage_native = limits.max_slippage_native;
        account.delegate_price_band_ppm = limits.price_band_ppm;
    }
    account.delegate_slippage_used_native = 0;
    crate::events::emit_event(&DelegateSet { margin_account: ctx.accounts.margin_account.key(), delegate });
    Ok(())
}

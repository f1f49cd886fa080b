//! `approve_venue` (owner): the venue program allowed to submit fills for this account, with
//! the owner's limits: the largest fill in lots and when the approval ends. `Pubkey::default()`
//! revokes. The venue itself must show, for every fill, the consent of the owner or of an
//! active delegate (see `venue_trade`).

use crate::error::MarginError;
use crate::state::MarginAccount;
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct ApproveVenue<'info> {
    #[account(mut, has_one = owner @ MarginError::NotOwner)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
    pub owner: Signer<'info>,
}

/// What the owner allows an approved venue to do.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct VenueLimits {
    /// Largest fill, in lots, the venue may submit for this account (> 0).
    pub max_fill_lots: i64,
    /// The approval ends at this unix time (in the future).
    pub expiry_ts: i64,
}

pub fn approve_venue(ctx: Context<ApproveVenue>, venue_program: Pubkey, limits: VenueLimits) -> Result<()> {
    let mut account = ctx.accounts.margin_account.load_mut()?;
    if venue_program == Pubkey::default() {
        account.approved_venue = Pubkey::default();
        account.venue_max_fill_lots = 0;
        account.venue_expiry_ts = 0;
        return Ok(());
    }
    let now = Clock::get()?.unix_timestamp;
    require!(limits.max_fill_lots > 0 && limits.expiry_ts > now, MarginError::InvalidVenueLimits);
    account.approved_venue = venue_program;
    account.venue_max_fill_lots = limits.max_fill_lots;
    account.venue_expiry_ts = limits.expiry_ts;
    Ok(())
}

//! `set_correlation_group` (admin): sets the correlation of one of the group's correlation
//! groups. Underlyings assigned to it (`assign_correlation_group`) are margined on joint moves
//! with that correlation (`risk_engine::correlation`): a hedge across them is credited, never
//! more than the correlation supports, and a member's tail move alone takes credit back.
//! Lowering a correlation raises the requirement of every account holding a hedge across the
//! group at once (an admin power, like weights).

use crate::error::MarginError;
use crate::events::CorrelationGroupSet;
use crate::state::{Group, MAX_CORRELATION_GROUPS, MAX_CORRELATION_PPM};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct SetCorrelationGroup<'info> {
    #[account(mut, has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
}

/// Checks a correlation group id (`1..=MAX_CORRELATION_GROUPS`, or 0 where "none" is allowed).
pub fn check_correlation_group(id: u8, allow_none: bool) -> Result<()> {
    require!((id == 0 && allow_none) || (1..=MAX_CORRELATION_GROUPS).contains(&(id as usize)), MarginError::InvalidCorrelationGroup);
    Ok(())
}

pub fn set_correlation_group(ctx: Context<SetCorrelationGroup>, correlation_group: u8, correlation_ppm: u32) -> Result<()> {
    check_correlation_group(correlation_group, false)?;
    require!(correlation_ppm <= MAX_CORRELATION_PPM, MarginError::CorrelationOutOfBounds);
    let mut group = ctx.accounts.group.load_mut()?;
    group.correlation_ppm[correlation_group as usize - 1] = correlation_ppm;
    crate::events::emit_event(&CorrelationGroupSet { group: ctx.accounts.group.key(), correlation_group, correlation_ppm });
    Ok(())
}

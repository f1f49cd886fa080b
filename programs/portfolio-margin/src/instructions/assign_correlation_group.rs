//! `assign_correlation_group` (admin): puts an underlying in a correlation group (1..=8), or
//! takes it out (0). Its positions and linked collateral are then margined jointly with the
//! group's other members at the group's correlation (`set_correlation_group`).

use crate::error::MarginError;
use crate::events::UnderlyingCorrelationAssigned;
use crate::instructions::set_correlation_group::check_correlation_group;
use crate::state::{Group, Underlying};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct AssignCorrelationGroup<'info> {
    #[account(has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub underlying: AccountLoader<'info, Underlying>,
}

pub fn assign_correlation_group(ctx: Context<AssignCorrelationGroup>, correlation_group: u8) -> Result<()> {
    check_correlation_group(correlation_group, true)?;
    let mut underlying = ctx.accounts.underlying.load_mut()?;
    underlying.correlation_group = correlation_group;
    crate::events::emit_event(&UnderlyingCorrelationAssigned { underlying: ctx.accounts.underlying.key(), correlation_group });
    Ok(())
}

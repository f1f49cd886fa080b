//! `health_check(min_health_native, kind)`: fails unless the account's health of `kind` is at
//! least `min_health_native` (quote native units), and returns a `HealthReport` (borsh) as
//! return data. Clients and other programs append it to a transaction to assert the outcome.
//! Health accounts are passed in `remaining_accounts` (see `crate::health`).

use crate::error::MarginError;
use crate::health::{account_health, HealthReport};
use crate::state::{Group, MarginAccount};
use anchor_lang::prelude::*;
use risk_engine::health::HealthKind;

#[derive(Accounts)]
pub struct HealthCheck<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(has_one = group @ MarginError::WrongGroup)]
    pub margin_account: AccountLoader<'info, MarginAccount>,
}

pub fn health_check<'info>(
    ctx: Context<'info, HealthCheck<'info>>,
    min_health_native: i64,
    kind: u8,
) -> Result<HealthReport> {
    let kind = HealthKind::from_u8(kind).ok_or(MarginError::InvalidHealthKind)?;
    let group = ctx.accounts.group.load()?;
    let account = ctx.accounts.margin_account.load()?;
    let breakdown = account_health(&group, &ctx.accounts.group.key(), &account, ctx.remaining_accounts, kind)?;
    let report = HealthReport::from_breakdown(&breakdown)?;
    require!(report.health_native >= min_health_native, MarginError::HealthBelowMinimum);
    crate::set_return_data_everywhere(&report)?;
    Ok(report)
}

//! `update_group` (admin): changes the group's parameters within their bounds and rotates its
//! risk authority (the key that posts option vols), so a lost or compromised key can be
//! replaced without listing a new group.
//!
//! The liquidation fee may be lowered, never raised: each bank's init asset weight and each
//! underlying's price range were checked against the fee when listed (so that a liquidation
//! always raises health), and a higher fee could break that for every one of them at once. It
//! may not be lowered to zero (liquidators would go unpaid), and the insurance share stays at
//! most half of it. Changes take effect at once (no timelock): the unrealized-P&L weight and the
//! confidence multiple move every account's init health, and so the liquidation target.

use crate::error::MarginError;
use crate::events::GroupUpdated;
use crate::state::GroupParams;
use crate::state::Group;
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct UpdateGroup<'info> {
    #[account(mut, has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
}

pub fn update_group(ctx: Context<UpdateGroup>, params: GroupParams, risk_authority: Pubkey) -> Result<()> {
    params.validate()?;
    require_keys_neq!(risk_authority, Pubkey::default(), MarginError::InvalidRiskAuthority);
    let mut group = ctx.accounts.group.load_mut()?;
    require!(params.liquidation_fee_ppm <= group.liquidation_fee_ppm, MarginError::LiquidationFeeRaised);
    // A paid liquidation stays paid: a fee lowered to zero would leave nobody a reason to act.
    require!(params.liquidation_fee_ppm > 0 || group.liquidation_fee_ppm == 0, MarginError::LiquidationFeeRemoved);
    let before = group.params();
    group.set_params(&params);
    let previous_risk_authority = group.risk_authority;
    group.risk_authority = risk_authority;
    crate::events::emit_event(&GroupUpdated { group: ctx.accounts.group.key(), before, after: params, previous_risk_authority, risk_authority });
    Ok(())
}

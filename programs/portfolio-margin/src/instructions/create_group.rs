//! `create_group`: a new group with its admin, risk authority, quote mint and parameters.

use crate::error::MarginError;
use crate::events::GroupCreated;
use crate::state::{Group, GROUP_SEED, PPM};
use anchor_lang::prelude::*;
use anchor_spl::token_interface::Mint;

/// Group-wide parameters chosen at creation.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupParams {
    /// Weight (ppm, <= 1e6) on positive unrealized P&L and long option value under init health.
    pub unrealized_init_weight_ppm: u32,
    /// Confidence multiple (ppm, <= 1e7) applied to conservative init prices.
    pub conf_multiplier_ppm: u32,
    /// Liquidation fee (ppm, <= 100_000), paid by the liquidatee.
    pub liquidation_fee_ppm: u32,
    /// Share of the liquidation fee going to the insurance fund (ppm, <= 1e6).
    pub insurance_share_ppm: u32,
}

#[derive(Accounts)]
#[instruction(group_index: u32)]
pub struct CreateGroup<'info> {
    #[account(
        init,
        payer = admin,
        space = 8 + core::mem::size_of::<Group>(),
        seeds = [GROUP_SEED, admin.key().as_ref(), &group_index.to_le_bytes()],
        bump,
    )]
    pub group: AccountLoader<'info, Group>,
    #[account(mut)]
    pub admin: Signer<'info>,
    /// CHECK: any key; stored as the risk authority.
    pub risk_authority: UncheckedAccount<'info>,
    pub quote_mint: InterfaceAccount<'info, Mint>,
    pub system_program: Program<'info, System>,
}

pub fn create_group(ctx: Context<CreateGroup>, group_index: u32, params: GroupParams) -> Result<()> {
    require!(
        params.unrealized_init_weight_ppm <= PPM
            && params.conf_multiplier_ppm <= 10 * PPM
            && params.liquidation_fee_ppm <= 100_000
            && params.insurance_share_ppm <= PPM,
        MarginError::InvalidGroupParams
    );
    require!(ctx.accounts.quote_mint.decimals <= 12, MarginError::InvalidQuoteMint);
    let mut group = ctx.accounts.group.load_init()?;
    group.admin = ctx.accounts.admin.key();
    group.risk_authority = ctx.accounts.risk_authority.key();
    group.quote_mint = ctx.accounts.quote_mint.key();
    group.group_index = group_index;
    group.unrealized_init_weight_ppm = params.unrealized_init_weight_ppm;
    group.conf_multiplier_ppm = params.conf_multiplier_ppm;
    group.liquidation_fee_ppm = params.liquidation_fee_ppm;
    group.insurance_share_ppm = params.insurance_share_ppm;
    group.quote_decimals = ctx.accounts.quote_mint.decimals;
    group.bump = ctx.bumps.group;
    emit!(GroupCreated {
        group: ctx.accounts.group.key(),
        admin: group.admin,
        risk_authority: group.risk_authority,
        quote_mint: group.quote_mint,
    });
    Ok(())
}

//! `create_group`: a new group with its admin, risk authority, quote mint and parameters.

use crate::error::MarginError;
use crate::events::GroupCreated;
use crate::state::{Group, GROUP_SEED};
use anchor_lang::prelude::*;
use anchor_spl::token_interface::Mint;

pub use crate::state::group::{
    GroupParams, MAX_CONF_MULTIPLIER_PPM, MAX_INSURANCE_SHARE_PPM, MAX_LIQUIDATION_FEE_PPM, MAX_QUOTE_DECIMALS, MAX_UNREALIZED_INIT_WEIGHT_PPM,
};

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
    /// CHECK: any key but the default one (nobody could sign for it); stored as the risk
    /// authority (`update_group` rotates it).
    pub risk_authority: UncheckedAccount<'info>,
    pub quote_mint: InterfaceAccount<'info, Mint>,
    pub system_program: Program<'info, System>,
}

pub fn create_group(ctx: Context<CreateGroup>, group_index: u32, params: GroupParams) -> Result<()> {
    params.validate()?;
    require!(ctx.accounts.quote_mint.decimals <= MAX_QUOTE_DECIMALS, MarginError::InvalidQuoteMint);
    require_keys_neq!(ctx.accounts.risk_authority.key(), Pubkey::default(), MarginError::InvalidRiskAuthority);
    let mut group = ctx.accounts.group.load_init()?;
    group.admin = ctx.accounts.admin.key();
    group.risk_authority = ctx.accounts.risk_authority.key();
    group.quote_mint = ctx.accounts.quote_mint.key();
    group.group_index = group_index;
    group.set_params(&params);
    group.quote_decimals = ctx.accounts.quote_mint.decimals;
    group.bump = ctx.bumps.group;
    crate::events::emit_event(&GroupCreated {
        group: ctx.accounts.group.key(),
        admin: group.admin,
        risk_authority: group.risk_authority,
        quote_mint: group.quote_mint,
    });
    Ok(())
}

//! `create_group`: a new group with its admin, risk authority, quote mint and parameters.

use crate::error::MarginError;
use crate::events::GroupCreated;
use crate::state::{Group, GROUP_SEED, PPM};
use anchor_lang::prelude::*;
use anchor_spl::token_interface::Mint;

/// Largest weight on positive unrealized P&L under init health, ppm (1.0: a gain never counts
/// for more than itself).
pub const MAX_UNREALIZED_INIT_WEIGHT_PPM: u32 = PPM;
/// Largest confidence multiple, ppm (10 x the confidence interval; conservative asset prices
/// floor at zero, so a large multiple only makes init health harsher).
pub const MAX_CONF_MULTIPLIER_PPM: u32 = 10 * PPM;
/// Largest liquidation fee, ppm (10%). Each bank's init asset weight and each underlying's grid
/// price range are checked against the group's fee so that liquidation always raises health.
pub const MAX_LIQUIDATION_FEE_PPM: u32 = 100_000;
/// Largest share of the liquidation fee paid to the insurance fund, ppm (all of it).
pub const MAX_INSURANCE_SHARE_PPM: u32 = PPM;
/// Most decimals the quote mint may have (values are quote native units in I80F48).
pub const MAX_QUOTE_DECIMALS: u8 = 12;

/// Group-wide parameters chosen at creation (no instruction changes them later).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupParams {
    /// Weight (ppm, `<= MAX_UNREALIZED_INIT_WEIGHT_PPM`) on positive unrealized P&L and long
    /// option value under init health.
    pub unrealized_init_weight_ppm: u32,
    /// Confidence multiple (ppm, `<= MAX_CONF_MULTIPLIER_PPM`) applied to conservative init prices.
    pub conf_multiplier_ppm: u32,
    /// Liquidation fee (ppm, `<= MAX_LIQUIDATION_FEE_PPM`), paid by the liquidatee.
    pub liquidation_fee_ppm: u32,
    /// Share of the liquidation fee going to the insurance fund (ppm, `<= MAX_INSURANCE_SHARE_PPM`).
    pub insurance_share_ppm: u32,
}

impl GroupParams {
    /// Checks every parameter's range (`InvalidGroupParams` names them all).
    pub fn validate(&self) -> Result<()> {
        require!(
            self.unrealized_init_weight_ppm <= MAX_UNREALIZED_INIT_WEIGHT_PPM
                && self.conf_multiplier_ppm <= MAX_CONF_MULTIPLIER_PPM
                && self.liquidation_fee_ppm <= MAX_LIQUIDATION_FEE_PPM
                && self.insurance_share_ppm <= MAX_INSURANCE_SHARE_PPM,
            MarginError::InvalidGroupParams
        );
        Ok(())
    }
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
    /// CHECK: any key but the default one (nobody could sign for it, and no instruction changes
    /// it); stored as the risk authority.
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

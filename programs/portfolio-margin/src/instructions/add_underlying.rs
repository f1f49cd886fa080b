//! `add_underlying` (admin): an asset derivatives are written on, with its Pyth oracle, its
//! scenario grid and its risk-array tolerances. Optionally linked to the collateral bank of the
//! same token, whose balances then enter this underlying's grid as delta-one exposure (spot
//! hedges derivatives; the bank's weights then only need to cover slippage and oracle risk).

use crate::error::MarginError;
use crate::state::{CollateralBank, GridConfig, Group, Underlying, UNDERLYING_SEED};
use anchor_lang::prelude::*;

/// Parameters of a new underlying.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnderlyingConfig {
    pub oracle: Pubkey,
    pub feed_id: [u8; 32],
    pub max_price_age_seconds: u32,
    pub max_confidence_ppm: u32,
    /// A lot is 10^lot_size_exponent units of the underlying.
    pub lot_size_exponent: i8,
    pub grid: GridConfig,
    pub array_price_tolerance_ppm: u32,
    pub array_vol_tolerance_ppm: u32,
    pub array_max_age_seconds: u32,
}

impl UnderlyingConfig {
    /// Checks every parameter.
    pub fn validate(&self) -> Result<()> {
        require!((1..=3600).contains(&self.max_price_age_seconds), MarginError::InvalidMaxPriceAge);
        require!((1..=200_000).contains(&self.max_confidence_ppm), MarginError::InvalidMaxConfidence);
        require!((-12..=6).contains(&self.lot_size_exponent), MarginError::InvalidLotSize);
        self.grid.params().validate().map_err(|_| error!(MarginError::InvalidGridParams))?;
        require!(
            self.array_price_tolerance_ppm <= 50_000
                && self.array_vol_tolerance_ppm <= 100_000
                && (1..=86_400).contains(&self.array_max_age_seconds),
            MarginError::InvalidArrayTolerance
        );
        Ok(())
    }
}

#[derive(Accounts)]
pub struct AddUnderlying<'info> {
    #[account(mut, has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
    #[account(
        init,
        payer = payer,
        space = 8 + core::mem::size_of::<Underlying>(),
        seeds = [UNDERLYING_SEED, group.key().as_ref(), &group.load()?.underlying_count.to_le_bytes()],
        bump,
    )]
    pub underlying: AccountLoader<'info, Underlying>,
    /// The collateral bank of the same token, if its balances should hedge in the grid.
    #[account(mut)]
    pub collateral_bank: Option<AccountLoader<'info, CollateralBank>>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

pub fn add_underlying(ctx: Context<AddUnderlying>, config: UnderlyingConfig) -> Result<()> {
    config.validate()?;
    let mut group = ctx.accounts.group.load_mut()?;
    let mut underlying = ctx.accounts.underlying.load_init()?;
    underlying.group = ctx.accounts.group.key();
    underlying.oracle = config.oracle;
    underlying.feed_id = config.feed_id;
    underlying.max_price_age_seconds = config.max_price_age_seconds;
    underlying.max_confidence_ppm = config.max_confidence_ppm;
    underlying.lot_size_exponent = config.lot_size_exponent;
    underlying.grid = config.grid;
    underlying.array_price_tolerance_ppm = config.array_price_tolerance_ppm;
    underlying.array_vol_tolerance_ppm = config.array_vol_tolerance_ppm;
    underlying.array_max_age_seconds = config.array_max_age_seconds;
    underlying.underlying_index = group.underlying_count;
    underlying.bump = ctx.bumps.underlying;
    if let Some(bank_loader) = &ctx.accounts.collateral_bank {
        let mut bank = bank_loader.load_mut()?;
        require!(
            bank.group == ctx.accounts.group.key() && bank.underlying == Pubkey::default(),
            MarginError::BankAlreadyLinked
        );
        // A lot must be a whole number of native units of the token.
        require!(bank.mint_decimals as i32 + config.lot_size_exponent as i32 >= 0, MarginError::InvalidLotSize);
        bank.underlying = ctx.accounts.underlying.key();
        underlying.collateral_bank = bank_loader.key();
    }
    group.underlying_count = group.underlying_count.checked_add(1).ok_or(MarginError::MathOverflow)?;
    Ok(())
}

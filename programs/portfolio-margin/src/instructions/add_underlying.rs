//! `add_underlying` (admin): an asset derivatives are written on, with its Pyth oracle, its
//! scenario grid and its risk-array tolerances. Optionally linked to the collateral bank of the
//! same token, whose balances then enter this underlying's grid as delta-one exposure (spot
//! hedges derivatives; the bank's weights then only need to cover slippage and oracle risk).

use crate::error::MarginError;
use crate::state::{validate_oracle_limits, CollateralBank, GridConfig, Group, Underlying, UNDERLYING_SEED};
use anchor_lang::prelude::*;

/// Smallest lot size exponent (a lot of 10^-12 units).
pub const MIN_LOT_SIZE_EXPONENT: i8 = -12;
/// Largest lot size exponent (a lot of 10^6 units).
pub const MAX_LOT_SIZE_EXPONENT: i8 = 6;
/// Largest spot move from a risk array's reference before it must be refreshed, ppm (5%; 0
/// means every refresh is only good at its own price, which still works within one transaction).
pub const MAX_ARRAY_PRICE_TOLERANCE_PPM: u32 = 50_000;
/// Largest vol move from a risk array's vol before it must be refreshed, ppm of vol units
/// (10 vol points).
pub const MAX_ARRAY_VOL_TOLERANCE_PPM: u32 = 100_000;
/// Youngest maximum risk-array age, seconds.
pub const MIN_ARRAY_MAX_AGE_SECONDS: u32 = 1;
/// Oldest maximum risk-array age, seconds (one day).
pub const MAX_ARRAY_MAX_AGE_SECONDS: u32 = 86_400;

/// Parameters of a new underlying (no instruction changes them later).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnderlyingConfig {
    /// Pyth `PriceUpdateV2` account; the linked bank's own oracle account if one is linked.
    pub oracle: Pubkey,
    /// Pyth feed id; the linked bank's own feed id if one is linked.
    pub feed_id: [u8; 32],
    /// Oldest oracle price accepted, seconds (the banks' bounds).
    pub max_price_age_seconds: u32,
    /// Widest oracle confidence accepted, ppm of the price (the banks' bounds).
    pub max_confidence_ppm: u32,
    /// A lot is 10^lot_size_exponent units of the underlying:
    /// `MIN_LOT_SIZE_EXPONENT..=MAX_LOT_SIZE_EXPONENT`, and a whole number of native units of
    /// the linked token.
    pub lot_size_exponent: i8,
    /// Scenario grid: the engine's validation plus [`GridConfig::validate_bounds`].
    pub grid: GridConfig,
    /// `<= MAX_ARRAY_PRICE_TOLERANCE_PPM`.
    pub array_price_tolerance_ppm: u32,
    /// `<= MAX_ARRAY_VOL_TOLERANCE_PPM`.
    pub array_vol_tolerance_ppm: u32,
    /// `MIN_ARRAY_MAX_AGE_SECONDS..=MAX_ARRAY_MAX_AGE_SECONDS`.
    pub array_max_age_seconds: u32,
}

impl UnderlyingConfig {
    /// Checks every parameter; `liquidation_fee_ppm` is the group's (the grid's price range
    /// must exceed it).
    pub fn validate(&self, liquidation_fee_ppm: u32) -> Result<()> {
        validate_oracle_limits(self.max_price_age_seconds, self.max_confidence_ppm)?;
        require!(
            (MIN_LOT_SIZE_EXPONENT..=MAX_LOT_SIZE_EXPONENT).contains(&self.lot_size_exponent),
            MarginError::InvalidLotSize
        );
        self.grid.validate_bounds(liquidation_fee_ppm)?;
        require!(
            self.array_price_tolerance_ppm <= MAX_ARRAY_PRICE_TOLERANCE_PPM
                && self.array_vol_tolerance_ppm <= MAX_ARRAY_VOL_TOLERANCE_PPM
                && (MIN_ARRAY_MAX_AGE_SECONDS..=MAX_ARRAY_MAX_AGE_SECONDS).contains(&self.array_max_age_seconds),
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
    let mut group = ctx.accounts.group.load_mut()?;
    config.validate(group.liquidation_fee_ppm)?;
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
        // The bank's balances are priced in this grid at this underlying's oracle: the same
        // account and feed as the bank's own (update_collateral_bank keeps them).
        require!(bank.oracle == config.oracle && bank.feed_id == config.feed_id, MarginError::LinkedBankOracleMismatch);
        // A lot must be a whole number of native units of the token.
        require!(bank.mint_decimals as i32 + config.lot_size_exponent as i32 >= 0, MarginError::InvalidLotSize);
        bank.underlying = ctx.accounts.underlying.key();
        underlying.collateral_bank = bank_loader.key();
    }
    group.underlying_count = group.underlying_count.checked_add(1).ok_or(MarginError::MathOverflow)?;
    Ok(())
}

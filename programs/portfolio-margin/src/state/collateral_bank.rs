//! A collateral bank: one SPL mint (Token or Token-2022), its vault, its oracle and its weights.

use anchor_lang::prelude::*;
use fixed::types::I80F48;

/// Seed prefix of bank PDAs: `["bank", group, mint]`.
pub const BANK_SEED: &[u8] = b"bank";
/// Seed prefix of vault PDAs: `["vault", bank]`. The vault's token authority is the bank PDA.
pub const VAULT_SEED: &[u8] = b"vault";

/// Collateral configuration and totals for one mint.
#[account(zero_copy)]
#[repr(C)]
pub struct CollateralBank {
    /// Group this bank belongs to.
    pub group: Pubkey,
    /// The collateral mint.
    pub mint: Pubkey,
    /// Token account holding every deposit; its authority is this bank's PDA.
    pub vault: Pubkey,
    /// Token program owning the mint (SPL Token or Token-2022).
    pub token_program: Pubkey,
    /// Pyth `PriceUpdateV2` account read for this token's price.
    pub oracle: Pubkey,
    /// Pyth feed id the oracle account must carry (price of one token in quote currency).
    pub feed_id: [u8; 32],
    /// Sum of all margin accounts' balances in this bank, native units.
    pub total_deposits_native: u64,
    /// Largest `total_deposits_native` allowed.
    pub deposit_limit_native: u64,
    /// Oldest oracle price accepted, seconds.
    pub max_price_age_seconds: u32,
    /// Largest confidence interval accepted, ppm of the price.
    pub max_confidence_ppm: u32,
    /// Asset weight under init and liquidation-end health, ppm (<= maint).
    pub init_asset_weight_ppm: u32,
    /// Asset weight under maintenance health, ppm (<= 1_000_000).
    pub maint_asset_weight_ppm: u32,
    /// Liability weight under init and liquidation-end health, ppm (>= maint).
    pub init_liability_weight_ppm: u32,
    /// Liability weight under maintenance health, ppm (>= 1_000_000).
    pub maint_liability_weight_ppm: u32,
    /// Position of this bank in the group's listing order.
    pub bank_index: u16,
    /// Decimals of the mint.
    pub mint_decimals: u8,
    /// PDA bump of the bank.
    pub bump: u8,
    /// PDA bump of the vault.
    pub vault_bump: u8,
    /// Explicit padding.
    pub padding: [u8; 3],
    /// Underlying this token is (its balances enter that underlying's scenario grid);
    /// `Pubkey::default()` if none. Set by `add_underlying`.
    pub underlying: Pubkey,
    /// Tokens in the vault that belong to the insurance fund, native units: collateral worth
    /// less than its account's debt, taken when the bankruptcy was resolved. The vault holds
    /// `total_deposits_native + insurance_native`.
    pub insurance_native: u64,
    /// Space for future fields.
    pub reserved: [u8; 24],
}

const _: () = assert!(core::mem::size_of::<CollateralBank>() == 6 * 32 + 2 * 8 + 6 * 4 + 2 + 3 + 3 + 32 + 8 + 24);

/// Largest asset weight, ppm (1.0: collateral never counts for more than its price).
pub const MAX_ASSET_WEIGHT_PPM: u32 = crate::state::PPM;
/// Smallest liability weight, ppm (1.0: a debt never counts for less than its price).
pub const MIN_LIABILITY_WEIGHT_PPM: u32 = crate::state::PPM;
/// Largest initial liability weight, ppm (10x).
pub const MAX_INIT_LIABILITY_WEIGHT_PPM: u32 = 10 * crate::state::PPM;
/// Weight every field of the quote bank must have, ppm: values and requirements are in quote
/// native units, so a quote balance is worth exactly itself (a quote weight below or above 1
/// would let the admin make every account with quote collateral or quote debt liquidatable).
pub const QUOTE_WEIGHT_PPM: u32 = crate::state::PPM;
/// Shortest oracle max age, seconds: Pyth publishes about every 400 ms but updates reach the
/// chain seconds apart; a one-second age would let the admin freeze every account holding the
/// token (no health check, no liquidation).
pub const MIN_PRICE_AGE_SECONDS: u32 = 10;
/// Longest oracle max age, seconds (one hour; banks and underlyings).
pub const MAX_PRICE_AGE_SECONDS: u32 = 3_600;
/// Smallest oracle confidence bound, ppm of the price (0.1%): a tighter bound than real feeds'
/// confidence would refuse every price and so freeze every account holding the token.
pub const MIN_CONFIDENCE_PPM: u32 = 1_000;
/// Largest oracle confidence bound, ppm of the price (20%; banks and underlyings).
pub const MAX_CONFIDENCE_PPM: u32 = 200_000;
/// Largest deposit limit, native units: balances are `i64`, so total deposits must stay
/// representable as one.
pub const MAX_DEPOSIT_LIMIT_NATIVE: u64 = i64::MAX as u64;

/// Validated risk configuration of a bank, as passed to `add_collateral_bank` and
/// `update_collateral_bank`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankConfig {
    /// Pyth `PriceUpdateV2` account. While the bank is linked to an underlying it must stay the
    /// underlying's oracle.
    pub oracle: Pubkey,
    /// Pyth feed id. While the bank is linked to an underlying it must stay the underlying's.
    pub feed_id: [u8; 32],
    /// Asset weight under init and liquidation-end health, ppm: `<= maint_asset_weight_ppm`;
    /// for a non-quote bank `init x (1 + liquidation fee) < 1`, so that paying a quote debt with
    /// this collateral plus the fee always raises health.
    pub init_asset_weight_ppm: u32,
    /// Asset weight under maintenance health, ppm: `<= MAX_ASSET_WEIGHT_PPM`.
    pub maint_asset_weight_ppm: u32,
    /// Liability weight under init and liquidation-end health, ppm:
    /// `maint..=MAX_INIT_LIABILITY_WEIGHT_PPM`.
    pub init_liability_weight_ppm: u32,
    /// Liability weight under maintenance health, ppm: `>= MIN_LIABILITY_WEIGHT_PPM`.
    pub maint_liability_weight_ppm: u32,
    /// Largest total deposits, native units: `<= MAX_DEPOSIT_LIMIT_NATIVE` (0 stops deposits).
    pub deposit_limit_native: u64,
    /// Oldest oracle price accepted, seconds: `MIN_PRICE_AGE_SECONDS..=MAX_PRICE_AGE_SECONDS`.
    pub max_price_age_seconds: u32,
    /// Widest oracle confidence accepted, ppm of the price:
    /// `MIN_CONFIDENCE_PPM..=MAX_CONFIDENCE_PPM`.
    pub max_confidence_ppm: u32,
}

/// Checks an oracle's max age and confidence bound (banks and underlyings share them).
pub fn validate_oracle_limits(max_price_age_seconds: u32, max_confidence_ppm: u32) -> Result<()> {
    use crate::error::MarginError;
    require!(
        (MIN_PRICE_AGE_SECONDS..=MAX_PRICE_AGE_SECONDS).contains(&max_price_age_seconds),
        MarginError::InvalidMaxPriceAge
    );
    require!((MIN_CONFIDENCE_PPM..=MAX_CONFIDENCE_PPM).contains(&max_confidence_ppm), MarginError::InvalidMaxConfidence);
    Ok(())
}

impl BankConfig {
    /// Checks the parameter ranges; each violation has its own error. `is_quote`: the bank is
    /// (or lists) the group's quote mint; `liquidation_fee_ppm`: the group's.
    pub fn validate(&self, is_quote: bool, liquidation_fee_ppm: u32) -> Result<()> {
        use crate::error::MarginError;
        require!(
            self.init_asset_weight_ppm <= self.maint_asset_weight_ppm && self.maint_asset_weight_ppm <= MAX_ASSET_WEIGHT_PPM,
            MarginError::InvalidAssetWeights
        );
        require!(
            MIN_LIABILITY_WEIGHT_PPM <= self.maint_liability_weight_ppm
                && self.maint_liability_weight_ppm <= self.init_liability_weight_ppm
                && self.init_liability_weight_ppm <= MAX_INIT_LIABILITY_WEIGHT_PPM,
            MarginError::InvalidLiabilityWeights
        );
        validate_oracle_limits(self.max_price_age_seconds, self.max_confidence_ppm)?;
        require!(self.deposit_limit_native <= MAX_DEPOSIT_LIMIT_NATIVE, MarginError::InvalidDepositLimit);
        if is_quote {
            let weights = [
                self.init_asset_weight_ppm,
                self.maint_asset_weight_ppm,
                self.init_liability_weight_ppm,
                self.maint_liability_weight_ppm,
            ];
            require!(weights.iter().all(|w| *w == QUOTE_WEIGHT_PPM), MarginError::QuoteBankWeightsNotOne);
        } else {
            // Token liquidation gives `(1 + fee) x` the debt paid in this collateral, valued at the
            // init asset weight, for a quote debt valued at a weight >= 1: it raises health only if
            // init_asset_weight x (1 + fee) < 1.
            let ppm = crate::state::PPM as u64;
            require!(
                (self.init_asset_weight_ppm as u64) * (ppm + liquidation_fee_ppm as u64) < ppm * ppm,
                MarginError::AssetWeightBlocksLiquidation
            );
        }
        Ok(())
    }
}

impl CollateralBank {
    /// Writes a validated configuration.
    pub fn apply_config(&mut self, config: &BankConfig) {
        self.oracle = config.oracle;
        self.feed_id = config.feed_id;
        self.init_asset_weight_ppm = config.init_asset_weight_ppm;
        self.maint_asset_weight_ppm = config.maint_asset_weight_ppm;
        self.init_liability_weight_ppm = config.init_liability_weight_ppm;
        self.maint_liability_weight_ppm = config.maint_liability_weight_ppm;
        self.deposit_limit_native = config.deposit_limit_native;
        self.max_price_age_seconds = config.max_price_age_seconds;
        self.max_confidence_ppm = config.max_confidence_ppm;
    }

    /// The bank's weights in the engine's representation.
    pub fn weights(&self) -> risk_engine::health::TokenWeights {
        risk_engine::health::TokenWeights {
            init_asset: ppm_to_fixed(self.init_asset_weight_ppm),
            maint_asset: ppm_to_fixed(self.maint_asset_weight_ppm),
            init_liability: ppm_to_fixed(self.init_liability_weight_ppm),
            maint_liability: ppm_to_fixed(self.maint_liability_weight_ppm),
        }
    }
}

/// Converts a ppm ratio to I80F48 exactly enough (division rounds towards zero, < 3.6e-15).
pub fn ppm_to_fixed(ppm: u32) -> I80F48 {
    I80F48::from_num(ppm) / I80F48::from_num(crate::state::PPM)
}

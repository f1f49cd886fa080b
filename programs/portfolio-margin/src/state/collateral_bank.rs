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

/// Validated risk configuration of a bank, as passed to `add_collateral_bank` and
/// `update_collateral_bank`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankConfig {
    /// Pyth `PriceUpdateV2` account.
    pub oracle: Pubkey,
    /// Pyth feed id.
    pub feed_id: [u8; 32],
    pub init_asset_weight_ppm: u32,
    pub maint_asset_weight_ppm: u32,
    pub init_liability_weight_ppm: u32,
    pub maint_liability_weight_ppm: u32,
    pub deposit_limit_native: u64,
    pub max_price_age_seconds: u32,
    pub max_confidence_ppm: u32,
}

impl BankConfig {
    /// Checks the parameter ranges; each violation has its own error.
    pub fn validate(&self) -> Result<()> {
        use crate::error::MarginError;
        use crate::state::PPM;
        require!(
            self.init_asset_weight_ppm <= self.maint_asset_weight_ppm && self.maint_asset_weight_ppm <= PPM,
            MarginError::InvalidAssetWeights
        );
        require!(
            PPM <= self.maint_liability_weight_ppm
                && self.maint_liability_weight_ppm <= self.init_liability_weight_ppm
                && self.init_liability_weight_ppm <= 10 * PPM,
            MarginError::InvalidLiabilityWeights
        );
        require!((1..=3600).contains(&self.max_price_age_seconds), MarginError::InvalidMaxPriceAge);
        require!((1..=200_000).contains(&self.max_confidence_ppm), MarginError::InvalidMaxConfidence);
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

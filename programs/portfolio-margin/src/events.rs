//! Events for deposits, withdrawals and configuration changes (emitted with `emit!`).

use anchor_lang::prelude::*;

/// A group was created.
#[event]
pub struct GroupCreated {
    pub group: Pubkey,
    pub admin: Pubkey,
    pub risk_authority: Pubkey,
    pub quote_mint: Pubkey,
}

/// A collateral bank was listed or its configuration changed.
#[event]
pub struct CollateralBankConfigured {
    pub group: Pubkey,
    pub bank: Pubkey,
    pub mint: Pubkey,
    pub oracle: Pubkey,
    pub init_asset_weight_ppm: u32,
    pub maint_asset_weight_ppm: u32,
    pub init_liability_weight_ppm: u32,
    pub maint_liability_weight_ppm: u32,
    pub deposit_limit_native: u64,
    pub max_price_age_seconds: u32,
    pub max_confidence_ppm: u32,
}

/// A margin account's delegate changed.
#[event]
pub struct DelegateSet {
    pub margin_account: Pubkey,
    pub delegate: Pubkey,
}

/// Tokens entered a bank's vault for a margin account.
#[event]
pub struct Deposited {
    pub margin_account: Pubkey,
    pub bank: Pubkey,
    /// Native units credited (what the vault actually received).
    pub amount_native: u64,
    pub balance_after_native: i64,
}

/// Tokens left a bank's vault for a margin account's owner.
#[event]
pub struct Withdrawn {
    pub margin_account: Pubkey,
    pub bank: Pubkey,
    pub amount_native: u64,
    pub balance_after_native: i64,
}

/// A fill between two margin accounts.
#[event]
pub struct Traded {
    pub market: Pubkey,
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub lots: i64,
    pub price_per_lot_native: i64,
    /// Venue program that submitted the fill, or `Pubkey::default()` for a signed block trade.
    pub venue: Pubkey,
}

/// A correlation group's correlation was set.
#[event]
pub struct CorrelationGroupSet {
    pub group: Pubkey,
    pub correlation_group: u8,
    pub correlation_ppm: u32,
}

/// An underlying joined a correlation group (or left its group: 0).
#[event]
pub struct UnderlyingCorrelationAssigned {
    pub underlying: Pubkey,
    pub correlation_group: u8,
}

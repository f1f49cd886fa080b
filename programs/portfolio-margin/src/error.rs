//! Every way an instruction can fail, each with its own code and a message saying what to do.

use anchor_lang::prelude::*;

/// Errors of the portfolio-margin program.
#[error_code]
pub enum MarginError {
    // --- parameters ---
    #[msg("Asset weights must satisfy 0 <= init <= maint <= 1 (in parts per million)")]
    InvalidAssetWeights,
    #[msg("Liability weights must satisfy 1 <= maint <= init (in parts per million)")]
    InvalidLiabilityWeights,
    #[msg("max_price_age_seconds must be between 1 and 3600")]
    InvalidMaxPriceAge,
    #[msg("max_confidence_ppm must be between 1 and 200000 (20%)")]
    InvalidMaxConfidence,
    #[msg("unrealized_init_weight_ppm must be at most 1000000 and conf_multiplier_ppm at most 10000000")]
    InvalidGroupParams,
    #[msg("The quote mint must have between 0 and 12 decimals")]
    InvalidQuoteMint,
    #[msg("The group already lists the maximum number of collateral banks")]
    TooManyBanks,
    #[msg("Only the group admin can do this: sign with the admin key")]
    NotGroupAdmin,
    // --- Token-2022 extensions refused at listing ---
    #[msg("Mint has a permanent delegate that could move vault funds: it cannot be collateral")]
    MintHasPermanentDelegate,
    #[msg("Mint has a transfer hook that could block withdrawals or liquidations: it cannot be collateral")]
    MintHasTransferHook,
    #[msg("Mint is non-transferable: it cannot be collateral")]
    MintIsNonTransferable,
    #[msg("Mint has confidential transfers, which hide vault balances: it cannot be collateral")]
    MintHasConfidentialTransfers,
    #[msg("Mint has a close authority and could be closed and recreated: it cannot be collateral")]
    MintHasCloseAuthority,
    #[msg("Mint has a default account state of frozen: it cannot be collateral")]
    MintDefaultFrozen,
    #[msg("Mint is pausable: it cannot be collateral")]
    MintIsPausable,
    // --- oracle ---
    #[msg("Oracle account is not owned by the Pyth receiver program")]
    OracleWrongOwner,
    #[msg("Oracle account is not the one configured for this bank")]
    OracleKeyMismatch,
    #[msg("Oracle account data is not a Pyth PriceUpdateV2")]
    OracleInvalidData,
    #[msg("Oracle price update is for a different Pyth feed id than the bank's")]
    OracleFeedMismatch,
    #[msg("Oracle price update is only partially verified: post a fully verified update")]
    OracleNotFullyVerified,
    #[msg("Oracle price (or EMA price) is zero or negative")]
    OracleNonPositivePrice,
    #[msg("Oracle price is older than the bank's max_price_age_seconds: post a fresh update first")]
    OracleStale,
    #[msg("Oracle confidence interval is wider than the bank's max_confidence_ppm of the price")]
    OracleConfidenceTooWide,
    #[msg("Oracle price is out of the range the program can represent")]
    OraclePriceOutOfRange,
    // --- accounts ---
    #[msg("Signer is neither the margin account's owner nor its delegate")]
    NotOwnerOrDelegate,
    #[msg("Only the margin account's owner can withdraw or close it; delegates may only trade")]
    NotOwner,
    #[msg("Vault passed is not this bank's vault")]
    WrongVault,
    #[msg("Mint passed is not this bank's mint")]
    WrongMint,
    #[msg("Bank belongs to another group")]
    WrongGroup,
    #[msg("Token program passed is not the one that owns this bank's mint")]
    WrongTokenProgram,
    #[msg("Margin account has no free collateral slot: withdraw a token fully to free one")]
    CollateralSlotsFull,
    #[msg("Margin account still holds balances or positions: withdraw and close everything first")]
    AccountNotEmpty,
    // --- amounts ---
    #[msg("Amount must be greater than zero")]
    ZeroAmount,
    #[msg("Deposit would exceed the bank's deposit limit")]
    DepositLimitExceeded,
    #[msg("Withdrawal exceeds the account's balance of this token")]
    InsufficientBalance,
    #[msg("Arithmetic overflow: amounts or prices out of range")]
    MathOverflow,
    // --- health ---
    #[msg("Health accounts missing or out of order: pass (bank, oracle) for every active balance in slot order")]
    HealthAccountsMismatch,
    #[msg("Initial health would be negative after this action: deposit more or withdraw less")]
    InitHealthNegative,
    #[msg("Health is below the minimum requested by health_check")]
    HealthBelowMinimum,
    #[msg("Unknown health kind: use 0 (init), 1 (maint) or 2 (liquidation-end)")]
    InvalidHealthKind,
}

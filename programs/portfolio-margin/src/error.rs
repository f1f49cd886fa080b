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
    #[msg("Group parameters out of range: unrealized weight <= 1e6 ppm, conf multiplier <= 1e7 ppm, liquidation fee <= 1e5 ppm, insurance share <= 5e5 ppm")]
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
    #[msg("Mint has a scaled UI amount (multiplier): raw amounts would be valued at UI prices, so it cannot be collateral")]
    MintHasScaledUiAmount,
    #[msg("Mint is interest-bearing: raw amounts would be valued at UI prices, so it cannot be collateral")]
    MintIsInterestBearing,
    // --- oracle ---
    #[msg("Oracle account is not owned by the Pyth receiver program")]
    OracleWrongOwner,
    #[msg("The oracle account configured for this bank or underlying was not passed (another oracle account does not count)")]
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
    #[msg("An account (bank, market, underlying, venue or margin account) belongs to another group")]
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
    #[msg("A health account is missing: pass the bank and oracle of every balance, and the market, underlying and oracle of every position (the log names the missing key)")]
    HealthAccountsMismatch,
    #[msg("Initial health would be negative after this action: deposit more or withdraw less")]
    InitHealthNegative,
    #[msg("Health is below the minimum requested by health_check")]
    HealthBelowMinimum,
    #[msg("Unknown health kind: use 0 (init), 1 (maint) or 2 (liquidation-end)")]
    InvalidHealthKind,
    // --- underlyings and markets ---
    #[msg("Scenario grid parameters are invalid (see risk_engine::scenario::GridParams::validate)")]
    InvalidGridParams,
    #[msg("Lot size is invalid: 10^lot_size_exponent units must be at least one native unit of the linked token")]
    InvalidLotSize,
    #[msg("Risk-array tolerances are invalid: price <= 50000 ppm, vol <= 100000 ppm, max age 1..=86400 s")]
    InvalidArrayTolerance,
    #[msg("The collateral bank is already linked to an underlying or belongs to another group")]
    BankAlreadyLinked,
    #[msg("Market parameters are invalid (band 1..=200000 ppm; perps: funding period 1 s..=30 days, max rate <= 100000 ppm, depth 1..=2^31-1 lots, settle limit 1..=1000000 ppm; options: vol bounds ordered, windows > 0, challenge 1..=86400 s)")]
    InvalidMarketParams,
    #[msg("Option strike must be a positive whole number of quote native units per lot")]
    InvalidStrike,
    #[msg("Option expiry must be in the future")]
    ExpiryInPast,
    #[msg("Only the group's risk authority can post volatilities")]
    NotRiskAuthority,
    #[msg("Volatility is outside the market's [min_vol, max_vol] band")]
    VolatilityOutOfBounds,
    #[msg("Volatility moved faster than allowed: at most max_vol_change per vol_max_age_seconds, pro rata to the time since the last post (several posts at one timestamp count as one)")]
    VolatilityChangeTooLarge,
    #[msg("Posted volatility is older than the market's vol_max_age_seconds: the risk authority must post a fresh one")]
    VolatilityStale,
    #[msg("Risk array is stale (price, vol or age beyond tolerance): prepend refresh_risk_array for the market named in the log")]
    RiskArrayStale,
    #[msg("Market does not belong to this underlying")]
    WrongUnderlying,
    #[msg("This instruction needs a perpetual market")]
    NotAPerpMarket,
    #[msg("This instruction needs an option market")]
    NotAnOptionMarket,
    // --- trades ---
    #[msg("Trade price is outside the market's band around the oracle (perps) or model value (options)")]
    TradePriceOffMarket,
    #[msg("Market has expired: it accepts no trades")]
    MarketExpired,
    #[msg("The same margin account cannot be on both sides of a trade")]
    SameAccountBothSides,
    #[msg("All 16 position slots are used: close a position first")]
    PositionSlotsFull,
    #[msg("Position would exceed the largest allowed size in lots")]
    PositionTooLarge,
    #[msg("Quantity must be greater than zero")]
    ZeroQuantity,
    #[msg("Trade price per lot must be positive (options may trade at 0)")]
    InvalidTradePrice,
    #[msg("The group has no quote bank yet: list the quote mint as collateral first")]
    NoQuoteBank,
    #[msg("The bank passed is not the group's quote bank")]
    WrongQuoteBank,
    // --- venues ---
    #[msg("Venue is not registered in this group")]
    VenueNotRegistered,
    #[msg("The margin account's owner has not approved this venue")]
    VenueNotApproved,
    #[msg("Signer is not the venue program's venue-authority PDA")]
    VenueAuthorityMismatch,
    #[msg("The account's approval of this venue has expired: the owner must approve it again")]
    VenueApprovalExpired,
    #[msg("Fill is larger than the venue_max_fill_lots the owner approved for this venue")]
    VenueFillTooLarge,
    #[msg("The venue did not show the consent of the account's owner or an active delegate for this fill")]
    VenueConsentMissing,
    #[msg("Venue approval limits are invalid: max fill lots > 0 and expiry in the future")]
    InvalidVenueLimits,
    // --- delegates ---
    #[msg("Delegate limits are invalid: price band 1..=200000 ppm, slippage budget >= 0, expiry in the future")]
    InvalidDelegateLimits,
    #[msg("A delegate's fill must be within the owner's delegate_price_band_ppm of the reference price")]
    DelegatePriceOutsideBand,
    #[msg("This fill would take the delegate past the slippage budget the owner set")]
    DelegateSlippageExceeded,
    #[msg("A delegate cannot fill against an account it owns or is delegate of")]
    DelegateCounterpartyControlled,
    #[msg("This option fill prices at the current model value: prepend refresh_risk_array in the same transaction")]
    OptionArrayNotCurrent,
    // --- funding, P&L and settlement ---
    #[msg("Funding was already updated at this timestamp")]
    FundingUpToDate,
    #[msg("settle_pnl needs an account with positive P&L first and one with negative P&L second")]
    PnlNotSettleable,
    #[msg("The winner's position already realised its settle_pnl limit for this window")]
    PnlSettleLimitReached,
    #[msg("The loser cannot pay without going below maintenance health: liquidate it instead")]
    PnlLoserBelowMaintenance,
    #[msg("A reducing fill that leaves the account below initial health must leave it at or above maintenance: below it, liquidation takes over")]
    ReduceBelowMaintenance,
    #[msg("The account has no position in this market")]
    NoPosition,
    #[msg("Option has not expired yet")]
    OptionNotExpired,
    #[msg("Settlement price must come from a Pyth update published at or after expiry")]
    SettlementPriceBeforeExpiry,
    #[msg("Settlement update was published after expiry + settlement window (the fallback opens one day later)")]
    SettlementWindowPassed,
    #[msg("A settlement price is already proposed from an update published at or before this one: only an earlier update can replace it")]
    SettlementNotEarlier,
    #[msg("The settlement price is already final")]
    SettlementAlreadyFinal,
    #[msg("No final settlement price yet: propose one with propose_settlement_price and wait out the challenge period")]
    SettlementNotFinal,
    // --- liquidation and bankruptcy ---
    #[msg("Account is not liquidatable: its maintenance health is not negative")]
    NotLiquidatable,
    #[msg("Liquidation is complete: the account's liquidation-end health is not negative")]
    LiquidationComplete,
    #[msg("Liquidation step goes past the size that maximises the liquidatee's health (no size reaches the target): take less")]
    LiquidationPastPeak,
    #[msg("Liquidation step would not improve the liquidatee's liquidation-end health")]
    LiquidationDoesNotImprove,
    #[msg("The account is not being liquidated: there is no flag to clear")]
    NotBeingLiquidated,
    #[msg("The account's liquidation-end health is still negative: the liquidation flag stays")]
    LiquidationNotComplete,
    #[msg("The liquidator cannot be the liquidatee")]
    LiquidatorIsLiquidatee,
    #[msg("Amount exceeds the liquidatee's position, liability or collateral")]
    LiquidationAmountTooLarge,
    #[msg("Token liquidation swaps a quote liability for another token: pass a non-quote asset bank")]
    AssetIsQuote,
    #[msg("Account still holds assets or positions: liquidate them before resolving bankruptcy")]
    NotBankrupt,
    #[msg("Account has no quote liability to cover")]
    NoLiability,
    #[msg("Every perp market of the group must be passed (writable) to socialise a loss")]
    PerpMarketsMissing,
    #[msg("No open interest to socialise the remaining loss over: fund the insurance fund")]
    NothingToSocialize,
    #[msg("The insurance fund holds less of this token than the amount asked for")]
    InsuranceCollateralTooLarge,
    #[msg("The insurance fund's quote is not for sale: pass the bank of the token it holds in kind")]
    InsuranceCollateralIsQuote,
    // --- account creation ---
    #[msg("Only a funded, empty, system-owned address at the program address described can be released")]
    AddressNotReleasable,
    // --- admin parameter bounds (see the constants next to each configuration struct) ---
    #[msg("The risk authority cannot be the default key: nobody could sign for it")]
    InvalidRiskAuthority,
    #[msg("deposit_limit_native must be at most i64::MAX (balances are i64)")]
    InvalidDepositLimit,
    #[msg("The quote bank's four weights must all be 1000000 ppm: quote is the unit every value is counted in")]
    QuoteBankWeightsNotOne,
    #[msg("init_asset_weight_ppm x (1 + liquidation fee) must be below 1 for a non-quote bank, or token liquidation could not raise health")]
    AssetWeightBlocksLiquidation,
    #[msg("A linked bank's oracle account and feed id must be the underlying's: pass the bank's own oracle and feed id")]
    LinkedBankOracleMismatch,
    #[msg("This bank is linked to an underlying: its oracle account and feed id cannot change")]
    LinkedBankOracleChange,
    #[msg("Grid price_range must be within 1%..=50% and above the group's liquidation fee")]
    GridPriceRangeOutOfBounds,
    #[msg("Grid vol shocks out of bounds: vol_up <= 2, reference days 1..=365, powers <= 1, min shocked vol 0.01..=1, vol_up shock at one day <= 10")]
    GridVolShockOutOfBounds,
    #[msg("Grid tail out of bounds: extended moves within -90%..=+1000% and at least price_range and the weight numerator in size (weights <= 1), weight numerator <= 1")]
    GridTailOutOfBounds,
    #[msg("Grid requirement rates out of bounds: minimum-delta and contingency rates <= 1, im_factor <= 4, concentration <= 4, vega_offset <= 1")]
    GridRequirementOutOfBounds,
    #[msg("Funding too fast: funding_period_seconds >= 60 and max_funding_rate_ppm at most 10000 ppm (1%) per hour")]
    FundingRateTooFast,
    #[msg("Option expiry is more than two years away")]
    OptionTenorTooLong,
    #[msg("Vol parameters out of bounds: min_vol >= 0.01, max_vol_change <= 1.0, vol_max_age_seconds 60..=86400")]
    InvalidVolParams,
    #[msg("settlement_window_seconds must be at most 86400 (one day)")]
    InvalidSettlementWindow,
    #[msg("A venue program cannot be the default key or portfolio-margin itself")]
    InvalidVenueProgram,
    #[msg("The fill would leave a position smaller than the market's minimum position (min_position_lots): close it to zero or keep at least the minimum")]
    PositionBelowMinimum,
    #[msg("This liquidation step would leave a position smaller than the market's minimum and no step that avoids it improves health")]
    LiquidationLeavesDust,
    #[msg("Grid look-ahead out of bounds: horizon_days within 0..=7")]
    GridHorizonOutOfBounds,
    #[msg("Grid vol surface out of bounds: twist 0..=0.9, twist pivot 1..=365 days, twist width above 1 and at most 100, skew 0..=3 and skew x one-day tenor scale <= 10")]
    GridSurfaceOutOfBounds,
    #[msg("The fill would raise the market's open interest above its cap (max_open_interest_lots); reducing fills always pass (to flip a position at the cap, close it first)")]
    OpenInterestCapExceeded,
    #[msg("Correlation group id must be 1..=8 (0 takes an underlying out of its group)")]
    InvalidCorrelationGroup,
    #[msg("A correlation group's correlation must be at most 990000 ppm (0.99)")]
    CorrelationOutOfBounds,
    #[msg("update_group may lower the liquidation fee, never raise it (banks and underlyings were checked against the fee they were listed with)")]
    LiquidationFeeRaised,
    #[msg("A health account passed as a bank, market or underlying is not owned by this program")]
    HealthAccountWrongOwner,
    #[msg("A health account passed as a bank, market or underlying is of another type (its discriminator or size differs)")]
    HealthAccountWrongType,
    #[msg("Risk engine: a value left the fixed-point range (a price, size or requirement too large to margin)")]
    RiskEngineOverflow,
    #[msg("Risk engine: a price (spot or strike) that is not positive")]
    RiskEngineNonPositivePrice,
    #[msg("Risk engine: a negative vol or time to expiry")]
    RiskEngineNegativeInput,
    #[msg("Risk engine: a risk array computed for another grid (its scenario count differs from the underlying's grid)")]
    RiskArrayGridMismatch,
    #[msg("update_group cannot lower a positive liquidation fee to zero (liquidators would go unpaid)")]
    LiquidationFeeRemoved,
    #[msg("The market's stored kind byte is not a known kind (perp, call or put)")]
    UnknownMarketKind,
}

/// The program's error for a risk-engine failure, each kind with its own code: never the
/// generic `MathOverflow`, so a client sees which input the engine refused.
pub fn risk_engine_error(error: risk_engine::risk_array::RiskError) -> anchor_lang::error::Error {
    use risk_engine::black_scholes::PricingError;
    use risk_engine::risk_array::RiskError;
    match error {
        RiskError::Grid(_) => error!(MarginError::InvalidGridParams),
        RiskError::Pricing(PricingError::NonPositivePrice) => error!(MarginError::RiskEngineNonPositivePrice),
        RiskError::Pricing(PricingError::NegativeInput) => error!(MarginError::RiskEngineNegativeInput),
        RiskError::Pricing(PricingError::Overflow) | RiskError::Overflow => error!(MarginError::RiskEngineOverflow),
        RiskError::QuantityTooLarge => error!(MarginError::PositionTooLarge),
        RiskError::GridMismatch => error!(MarginError::RiskArrayGridMismatch),
    }
}
//! # portfolio-margin
//!
//! One account per trader holding SPL collateral and derivatives positions, margined on the
//! net risk of the whole portfolio. This file only dispatches: each instruction lives in
//! `instructions/<name>.rs` with its accounts, checks and handler; account layouts in
//! `state/`; oracle reads in `oracle`; health in `health` (the model itself is documented in
//! the `risk-engine` crate's `health` module).

use anchor_lang::prelude::*;

pub mod error;
pub mod events;
pub mod funding;
pub mod health;
pub mod liquidation;
pub mod instructions;
pub mod oracle;
pub mod positions;
pub mod state;
pub mod vault;

use instructions::*;
use state::BankConfig;

declare_id!("8eFKNJYfA7YSfgKvPiejWuJmU5gktthgMZ53Qv66fvyW");

/// Makes a handler's return data visible when the program runs natively (tests, the embedded
/// demo bank), where Anchor's own path is a no-op. On-chain, Anchor sets return data from the
/// handler's return value and this does nothing.
pub fn set_return_data_everywhere<T: AnchorSerialize>(value: &T) -> Result<()> {
    #[cfg(not(target_os = "solana"))]
    solana_sysvar::program_stubs::sol_set_return_data(&anchor_lang::prelude::borsh::to_vec(value)?);
    #[cfg(target_os = "solana")]
    let _ = value;
    Ok(())
}

/// Reads the return data of the last CPI, also when programs run natively (tests, the
/// embedded demo bank), where `get_return_data` is otherwise a no-op. For composing programs.
pub fn get_return_data_everywhere() -> Option<(Pubkey, Vec<u8>)> {
    #[cfg(not(target_os = "solana"))]
    return solana_sysvar::program_stubs::sol_get_return_data();
    #[cfg(target_os = "solana")]
    return anchor_lang::solana_program::program::get_return_data();
}

#[program]
pub mod portfolio_margin {
    use super::*;

    /// Creates a group (admin signs and pays).
    pub fn create_group(ctx: Context<CreateGroup>, group_index: u32, params: GroupParams) -> Result<()> {
        instructions::create_group(ctx, group_index, params)
    }

    /// Lists a collateral mint with its vault, oracle and weights (admin).
    pub fn add_collateral_bank(ctx: Context<AddCollateralBank>, config: BankConfig) -> Result<()> {
        instructions::add_collateral_bank(ctx, config)
    }

    /// Changes a bank's oracle, weights and limits (admin).
    pub fn update_collateral_bank(ctx: Context<UpdateCollateralBank>, config: BankConfig) -> Result<()> {
        instructions::update_collateral_bank(ctx, config)
    }

    /// Changes the group's parameters within their bounds (the liquidation fee only downwards)
    /// and rotates its risk authority (admin).
    pub fn update_group(ctx: Context<UpdateGroup>, params: GroupParams, risk_authority: Pubkey) -> Result<()> {
        instructions::update_group(ctx, params, risk_authority)
    }

    /// Sets the correlation of a correlation group, ppm (admin).
    pub fn set_correlation_group(ctx: Context<SetCorrelationGroup>, correlation_group: u8, correlation_ppm: u32) -> Result<()> {
        instructions::set_correlation_group(ctx, correlation_group, correlation_ppm)
    }

    /// Puts an underlying in a correlation group, or takes it out with 0 (admin).
    pub fn assign_correlation_group(ctx: Context<AssignCorrelationGroup>, correlation_group: u8) -> Result<()> {
        instructions::assign_correlation_group(ctx, correlation_group)
    }

    /// Creates a margin account for the signer.
    pub fn create_margin_account(ctx: Context<CreateMarginAccount>, account_index: u32) -> Result<()> {
        instructions::create_margin_account(ctx, account_index)
    }

    /// Sets or clears the account's delegate and its limits (owner).
    pub fn set_delegate(ctx: Context<SetDelegate>, delegate: Pubkey, limits: DelegateLimits) -> Result<()> {
        instructions::set_delegate(ctx, delegate, limits)
    }

    /// Closes an empty account, returning rent to the owner.
    pub fn close_margin_account(ctx: Context<CloseMarginAccount>) -> Result<()> {
        instructions::close_margin_account(ctx)
    }

    /// Deposits collateral (owner or delegate).
    pub fn deposit(ctx: Context<Deposit>, amount_native: u64) -> Result<()> {
        instructions::deposit(ctx, amount_native)
    }

    /// Withdraws collateral (owner); init health must stay >= 0.
    pub fn withdraw<'info>(ctx: Context<'info, Withdraw<'info>>, amount_native: u64) -> Result<()> {
        instructions::withdraw(ctx, amount_native)
    }

    /// Lists an underlying with its oracle, grid and risk-array tolerances (admin).
    pub fn add_underlying(ctx: Context<AddUnderlying>, config: UnderlyingConfig) -> Result<()> {
        instructions::add_underlying(ctx, config)
    }

    /// Lists a perpetual future (admin).
    pub fn add_perp_market(ctx: Context<AddMarket>, config: PerpConfig) -> Result<()> {
        instructions::add_perp_market(ctx, config)
    }

    /// Lists a European option (admin).
    pub fn add_option_market(ctx: Context<AddMarket>, config: OptionConfig) -> Result<()> {
        instructions::add_option_market(ctx, config)
    }

    /// Posts an option market's implied vol (risk authority).
    pub fn set_volatility(ctx: Context<SetVolatility>, vol_bits: i64) -> Result<()> {
        instructions::set_volatility(ctx, vol_bits)
    }

    /// Recomputes a market's risk array at the current price and vol (permissionless).
    pub fn refresh_risk_array(ctx: Context<RefreshRiskArray>) -> Result<()> {
        instructions::refresh_risk_array(ctx)
    }

    /// Block trade between two accounts signed by both (owner or delegate).
    pub fn trade<'info>(ctx: Context<'info, Trade<'info>>, lots: i64, price_per_lot_native: i64) -> Result<()> {
        instructions::trade(ctx, lots, price_per_lot_native)
    }

    /// Registers a venue program (admin).
    pub fn register_venue(ctx: Context<RegisterVenue>, venue_program: Pubkey) -> Result<()> {
        instructions::register_venue(ctx, venue_program)
    }

    /// Approves (or revokes with the default key) a venue for the account, with limits (owner).
    pub fn approve_venue(ctx: Context<ApproveVenue>, venue_program: Pubkey, limits: VenueLimits) -> Result<()> {
        instructions::approve_venue(ctx, venue_program, limits)
    }

    /// Fill submitted by a registered venue via CPI, naming the key that consented for each side.
    pub fn venue_trade<'info>(
        ctx: Context<'info, VenueTrade<'info>>,
        lots: i64,
        price_per_lot_native: i64,
        buyer_consent: Pubkey,
        seller_consent: Pubkey,
    ) -> Result<()> {
        instructions::venue_trade(ctx, lots, price_per_lot_native, buyer_consent, seller_consent)
    }

    /// Accrues a perp's funding index (permissionless).
    pub fn update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
        instructions::update_funding(ctx)
    }

    /// Realises perp P&L between a winning and a losing account (permissionless).
    pub fn settle_pnl<'info>(ctx: Context<'info, SettlePnl<'info>>) -> Result<()> {
        instructions::settle_pnl(ctx)
    }

    /// Proposes (or replaces by an earlier one) an expired option's settlement price from a Pyth
    /// update published at or after expiry (permissionless).
    pub fn propose_settlement_price(ctx: Context<ProposeSettlementPrice>) -> Result<()> {
        instructions::propose_settlement_price(ctx)
    }

    /// Pays the accounts passed their expired option positions at the final settlement price
    /// (permissionless).
    pub fn settle_expired_option<'info>(ctx: Context<'info, SettleExpiredOption<'info>>) -> Result<()> {
        instructions::settle_expired_option(ctx)
    }

    /// Adds quote tokens to the insurance fund (anyone).
    pub fn fund_insurance(ctx: Context<FundInsurance>, amount_native: u64) -> Result<()> {
        instructions::fund_insurance(ctx, amount_native)
    }

    /// Takes over at most `max_lots` of an unhealthy account's position at the mark minus the
    /// fee (the program chooses the size).
    pub fn liquidate_position<'info>(ctx: Context<'info, LiquidatePosition<'info>>, max_lots: i64) -> Result<()> {
        instructions::liquidate_position(ctx, max_lots)
    }

    /// Pays at most `max_liability_native` of an unhealthy account's quote debt for its
    /// collateral plus the fee (the program chooses the amount).
    pub fn liquidate_token<'info>(ctx: Context<'info, LiquidateToken<'info>>, max_liability_native: i64) -> Result<()> {
        instructions::liquidate_token(ctx, max_liability_native)
    }

    /// Buys collateral the insurance fund took in kind, at the oracle less the liquidation fee.
    pub fn buy_insurance_collateral<'info>(ctx: Context<'info, BuyInsuranceCollateral<'info>>, amount_native: u64) -> Result<()> {
        instructions::buy_insurance_collateral(ctx, amount_native)
    }

    /// Clears the liquidation flag of an account healthy again (permissionless).
    pub fn clear_liquidation_flag<'info>(ctx: Context<'info, ClearLiquidationFlag<'info>>) -> Result<()> {
        instructions::clear_liquidation_flag(ctx)
    }

    /// Covers a bankrupt account from the insurance fund, then socialises the rest.
    pub fn resolve_bankruptcy<'info>(ctx: Context<'info, ResolveBankruptcy<'info>>) -> Result<()> {
        instructions::resolve_bankruptcy(ctx)
    }

    /// Moves the lamports out of a program address funded before its account was created, so
    /// that it can be created (permissionless).
    pub fn release_prefunded_address(ctx: Context<ReleasePrefundedAddress>, address: ProgramAddress) -> Result<()> {
        instructions::release_prefunded_address(ctx, address)
    }

    /// Fails unless health of `kind` >= `min_health_native`; returns the breakdown.
    pub fn health_check<'info>(
        ctx: Context<'info, HealthCheck<'info>>,
        min_health_native: i64,
        kind: u8,
    ) -> Result<health::HealthReport> {
        instructions::health_check(ctx, min_health_native, kind)
    }
}

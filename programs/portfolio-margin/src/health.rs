//! Health of a margin account inside an instruction.
//!
//! The model itself (three kinds, weights, conservative prices, requirements) is defined and
//! documented in one place, `risk_engine::health`; this module gathers the account's balances,
//! checks the bank and oracle accounts passed for them and calls the engine.
//!
//! Health accounts are passed as `remaining_accounts`: for every active collateral balance, in
//! slot order, the bank and then its oracle (2 accounts per collateral token).

use crate::error::MarginError;
use crate::oracle::read_oracle;
use crate::state::{CollateralBank, Group, MarginAccount, MAX_COLLATERAL_BALANCES};
use anchor_lang::prelude::*;
use risk_engine::health::{
    compute_health, DerivativesRisk, HealthBreakdown, HealthKind, HealthParams, TokenBalance,
};

/// Health breakdown returned by `health_check` (borsh), all in quote native units, each
/// rounded down to an integer (against the account).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// 0 init, 1 maint, 2 liquidation-end.
    pub kind: u8,
    /// Weighted collateral value.
    pub token_value_native: i64,
    /// Weighted derivatives equity.
    pub position_equity_native: i64,
    /// Requirement.
    pub requirement_native: i64,
    /// token value + position equity - requirement.
    pub health_native: i64,
}

impl HealthReport {
    /// Rounds a breakdown to whole quote native units (values down, requirement up).
    pub fn from_breakdown(b: &HealthBreakdown) -> Result<Self> {
        use risk_engine::wide::{i80f48_to_int, Rounding};
        let down = |v| i80f48_to_int(v, Rounding::Down).ok_or(error!(MarginError::MathOverflow));
        Ok(HealthReport {
            kind: b.kind as u8,
            token_value_native: down(b.token_value)?,
            position_equity_native: down(b.position_equity)?,
            requirement_native: i80f48_to_int(b.requirement, Rounding::Up).ok_or(error!(MarginError::MathOverflow))?,
            health_native: down(b.health)?,
        })
    }
}

/// Computes the account's health of `kind` from the health accounts in `remaining`.
pub fn account_health<'info>(
    group: &Group,
    account: &MarginAccount,
    group_key: &Pubkey,
    remaining: &'info [AccountInfo<'info>],
    kind: HealthKind,
) -> Result<HealthBreakdown> {
    let now = Clock::get()?.unix_timestamp;
    let active: Vec<_> = account.active_balances().collect();
    require!(remaining.len() == 2 * active.len(), MarginError::HealthAccountsMismatch);
    let mut tokens = [TokenBalance {
        native: 0,
        prices: risk_engine::health::TokenPrices {
            oracle: Default::default(),
            init_asset: Default::default(),
            init_liability: Default::default(),
        },
        weights: risk_engine::health::TokenWeights {
            init_asset: Default::default(),
            maint_asset: Default::default(),
            init_liability: Default::default(),
            maint_liability: Default::default(),
        },
    }; MAX_COLLATERAL_BALANCES];
    for (i, balance) in active.iter().enumerate() {
        let bank_info = &remaining[2 * i];
        require_keys_eq!(bank_info.key(), balance.bank, MarginError::HealthAccountsMismatch);
        let loader = AccountLoader::<CollateralBank>::try_from(bank_info)?;
        let bank = loader.load()?;
        require_keys_eq!(bank.group, *group_key, MarginError::WrongGroup);
        let reading = read_oracle(&bank, &remaining[2 * i + 1], now)?;
        tokens[i] = TokenBalance {
            native: balance.balance_native,
            prices: reading.token_prices(group, bank.mint_decimals)?,
            weights: bank.weights(),
        };
    }
    let params = HealthParams {
        unrealized_init_weight: crate::state::ppm_to_fixed(group.unrealized_init_weight_ppm),
    };
    compute_health(&tokens[..active.len()], &DerivativesRisk::default(), &params, kind)
        .map_err(|_| error!(MarginError::MathOverflow))
}

/// Fails with [`MarginError::InitHealthNegative`] unless init health is >= 0.
pub fn require_init_health<'info>(
    group: &Group,
    account: &MarginAccount,
    group_key: &Pubkey,
    remaining: &'info [AccountInfo<'info>],
) -> Result<HealthBreakdown> {
    let health = account_health(group, account, group_key, remaining, HealthKind::Init)?;
    require!(health.health >= 0, MarginError::InitHealthNegative);
    Ok(health)
}

//! Health: what an account is worth beyond what its risk requires.
//!
//! A margin account holds token balances (collateral deposits, and negative quote balances
//! from settlement, fees, funding or liquidation) and derivatives positions. Its health is
//!
//! ```text
//! health(kind) = token value(kind) + position equity(kind) - requirement(kind)
//! ```
//!
//! measured in quote native units (I80F48), with three kinds:
//!
//! | kind | prices | token weights | positive P&L and long option value | requirement |
//! |---|---|---|---|---|
//! | [`HealthKind::Init`] | conservative: assets at min(price, ema) - k conf, liabilities at max(price, ema) + k conf | init | x `unrealized_init_weight` | IM |
//! | [`HealthKind::LiquidationEnd`] | oracle | init | x `unrealized_init_weight` | IM |
//! | [`HealthKind::Maint`] | oracle | maint | full | MM |
//!
//! Since init weights are harsher than maint weights, conservative prices harsher than the
//! oracle and IM >= MM, the kinds are ordered `init <= liquidation-end <= maint`.
//!
//! - Opening risk or withdrawing requires `health(Init) >= 0` afterwards.
//! - An account is liquidatable when `health(Maint) < 0`; liquidation then continues until
//!   `health(LiquidationEnd) >= 0`, and never beyond.
//!
//! A token's value is `balance x price x weight`, with the asset weight (< 1) for a positive
//! balance and the liability weight (> 1) for a negative one. Tokens that are also underlyings
//! enter that underlying's scenario grid as delta-one exposure (see [`crate::margin`]); their
//! weights then only cover liquidation slippage and oracle risk. Every product rounds down, so
//! equity is never overstated, and requirements round up.

use crate::wide::{mul_i80f48, Rounding};
use fixed::types::I80F48;

/// Which health is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthKind {
    /// Gate for opening risk and withdrawing: conservative prices, init weights, IM.
    Init = 0,
    /// Gate for liquidation: oracle prices, maint weights, MM.
    Maint = 1,
    /// Target at which liquidation stops: oracle prices, init weights, IM.
    LiquidationEnd = 2,
}

impl HealthKind {
    /// Decodes the on-wire byte.
    pub fn from_u8(value: u8) -> Option<HealthKind> {
        match value {
            0 => Some(HealthKind::Init),
            1 => Some(HealthKind::Maint),
            2 => Some(HealthKind::LiquidationEnd),
            _ => None,
        }
    }
}

/// Prices of one token in quote native units per token native unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenPrices {
    /// Oracle price (maintenance and liquidation-end).
    pub oracle: I80F48,
    /// Conservative price for assets under Init: min(price, ema) - k x conf.
    pub init_asset: I80F48,
    /// Conservative price for liabilities under Init: max(price, ema) + k x conf.
    pub init_liability: I80F48,
}

/// Collateral weights of one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenWeights {
    /// Asset weight under Init and LiquidationEnd (<= maint).
    pub init_asset: I80F48,
    /// Asset weight under Maint (<= 1).
    pub maint_asset: I80F48,
    /// Liability weight under Init and LiquidationEnd (>= maint).
    pub init_liability: I80F48,
    /// Liability weight under Maint (>= 1).
    pub maint_liability: I80F48,
}

/// One token balance of an account with its prices and weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBalance {
    /// Balance in native token units (negative = owed).
    pub native: i64,
    /// Prices.
    pub prices: TokenPrices,
    /// Weights.
    pub weights: TokenWeights,
}

/// Derivatives side of an account, already aggregated (see [`crate::margin`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DerivativesRisk {
    /// Sum of positive unrealized P&L and long option value, quote native units (>= 0).
    pub positive_equity: I80F48,
    /// Sum of negative unrealized P&L and short option value, quote native units (<= 0).
    pub negative_equity: I80F48,
    /// Maintenance requirement, quote native units.
    pub maintenance: I80F48,
    /// Initial requirement, quote native units.
    pub initial: I80F48,
    /// The initial requirement without the concentration add-on and without correlation
    /// credit: what a liquidation restores (`LiquidationEnd`), so the add-on decides how large
    /// a book may grow, not how much of one is liquidated, and every leg of a credited hedge
    /// can be liquidated on its own.
    pub liquidation_end: I80F48,
}

/// Health parameters set per group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthParams {
    /// Weight (< 1) on positive derivatives equity under Init and LiquidationEnd.
    pub unrealized_init_weight: I80F48,
}

/// Health and its parts, quote native units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthBreakdown {
    /// The kind computed.
    pub kind: HealthKind,
    /// Weighted value of token balances (negative when liabilities dominate).
    pub token_value: I80F48,
    /// Weighted derivatives equity.
    pub position_equity: I80F48,
    /// Requirement subtracted.
    pub requirement: I80F48,
    /// token_value + position_equity - requirement.
    pub health: I80F48,
}

/// Health arithmetic overflowed (a balance or price far outside any real market).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthOverflow;

/// `integer x value`, exact (an integer times a fixed-point number needs no rounding); one
/// 64 x 64-bit product when the value's bits fit in 64 bits, as prices per native unit do.
fn integer_times(integer: i64, value: I80F48) -> Option<I80F48> {
    let bits = value.to_bits();
    if let Ok(small) = i64::try_from(bits) {
        Some(I80F48::from_bits(crate::wide::mul_i64_wide(integer, small)))
    } else {
        mul_i80f48(I80F48::from_num(integer), value, Rounding::Down)
    }
}

/// Weighted value of one token balance under `kind`, rounded down.
pub fn token_value(balance: &TokenBalance, kind: HealthKind) -> Result<I80F48, HealthOverflow> {
    let (price, weight) = match (kind, balance.native >= 0) {
        (HealthKind::Init, true) => (balance.prices.init_asset, balance.weights.init_asset),
        (HealthKind::Init, false) => (balance.prices.init_liability, balance.weights.init_liability),
        (HealthKind::LiquidationEnd, true) => (balance.prices.oracle, balance.weights.init_asset),
        (HealthKind::LiquidationEnd, false) => (balance.prices.oracle, balance.weights.init_liability),
        (HealthKind::Maint, true) => (balance.prices.oracle, balance.weights.maint_asset),
        (HealthKind::Maint, false) => (balance.prices.oracle, balance.weights.maint_liability),
    };
    let value = integer_times(balance.native, price).ok_or(HealthOverflow)?;
    mul_i80f48(value, weight, Rounding::Down).ok_or(HealthOverflow)
}

/// Computes health of the given kind.
pub fn compute_health(
    tokens: &[TokenBalance],
    derivatives: &DerivativesRisk,
    params: &HealthParams,
    kind: HealthKind,
) -> Result<HealthBreakdown, HealthOverflow> {
    let mut token_total = I80F48::ZERO;
    for balance in tokens {
        token_total = token_total.checked_add(token_value(balance, kind)?).ok_or(HealthOverflow)?;
    }
    let (positive, requirement) = match kind {
        HealthKind::Maint => (derivatives.positive_equity, derivatives.maintenance),
        HealthKind::Init | HealthKind::LiquidationEnd => (
            mul_i80f48(derivatives.positive_equity, params.unrealized_init_weight, Rounding::Down).ok_or(HealthOverflow)?,
            if kind == HealthKind::Init { derivatives.initial } else { derivatives.liquidation_end },
        ),
    };
    let position_equity = positive.checked_add(derivatives.negative_equity).ok_or(HealthOverflow)?;
    let health = token_total
        .checked_add(position_equity)
        .and_then(|v| v.checked_sub(requirement))
        .ok_or(HealthOverflow)?;
    Ok(HealthBreakdown { kind, token_value: token_total, position_equity, requirement, health })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(x: f64) -> I80F48 {
        I80F48::from_num(x)
    }

    fn sol(native: i64) -> TokenBalance {
        TokenBalance {
            native,
            // 150 USD per SOL: 1 lamport = 0.15 micro-USD.
            prices: TokenPrices { oracle: i(0.15), init_asset: i(0.149), init_liability: i(0.151) },
            weights: TokenWeights {
                init_asset: i(0.8),
                maint_asset: i(0.9),
                init_liability: i(1.2),
                maint_liability: i(1.1),
            },
        }
    }

    #[test]
    fn kinds_are_ordered() {
        let tokens = [sol(10_000_000_000), sol(-2_000_000_000)];
        let derivatives =
            DerivativesRisk { positive_equity: i(5e6), negative_equity: i(-1e6), maintenance: i(1e8), initial: i(1.25e8), liquidation_end: i(1.25e8) };
        let params = HealthParams { unrealized_init_weight: i(0.5) };
        let init = compute_health(&tokens, &derivatives, &params, HealthKind::Init).unwrap().health;
        let end = compute_health(&tokens, &derivatives, &params, HealthKind::LiquidationEnd).unwrap().health;
        let maint = compute_health(&tokens, &derivatives, &params, HealthKind::Maint).unwrap().health;
        assert!(init <= end && end <= maint, "{init} {end} {maint}");
    }

    #[test]
    fn token_value_rounds_down_for_assets_and_liabilities() {
        let one_third = TokenBalance {
            native: 1,
            prices: TokenPrices { oracle: i(1.0) / i(3.0), init_asset: i(0.0), init_liability: i(0.0) },
            weights: TokenWeights { init_asset: i(1.0), maint_asset: i(1.0) / i(3.0), init_liability: i(1.0), maint_liability: i(1.0) / i(3.0) },
        };
        let asset = token_value(&one_third, HealthKind::Maint).unwrap();
        let liability = token_value(&TokenBalance { native: -1, ..one_third }, HealthKind::Maint).unwrap();
        // (1/3)^2 is not representable: the asset rounds down, the liability away from zero.
        let exact = (1.0f64 / 3.0) * (1.0 / 3.0);
        assert!(asset.to_num::<f64>() <= exact);
        assert!(-liability.to_num::<f64>() >= exact - 1e-15);
        assert_eq!(asset.to_bits() + liability.to_bits(), -1);
    }

    #[test]
    fn overflow_is_an_error() {
        let huge = TokenBalance { native: i64::MAX, prices: TokenPrices { oracle: I80F48::MAX, ..sol(0).prices }, ..sol(0) };
        assert_eq!(token_value(&huge, HealthKind::Maint), Err(HealthOverflow));
    }
}

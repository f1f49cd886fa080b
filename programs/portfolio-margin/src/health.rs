//! Health of a margin account inside an instruction.
//!
//! The model itself (three kinds, weights, conservative prices, requirements) is defined and
//! documented in one place, `risk_engine::health`; the requirement per underlying in
//! `risk_engine::margin`. This module gathers what they need from the account and the accounts
//! passed, in two steps:
//!
//! 1. [`HealthInputs::load`] finds, among the accounts passed (any order; extras are ignored),
//!    every account health depends on and checks it: for each active collateral balance its
//!    bank and the bank's oracle; for each position its market; for each underlying of a
//!    position or of a collateral token linked to an underlying, the underlying and its oracle.
//!    So a health check takes `2 x collateral tokens + positions + 2 x underlyings` accounts.
//! 2. [`compute_health`] is pure: the client calls the same function on the same data, so it
//!    predicts to the native unit what the chain enforces.
//!
//! Risk arrays are used only while fresh: the underlying's spot within the underlying's price
//! tolerance of the array's reference, the market's posted vol within the vol tolerance, the
//! array younger than the maximum age, and (options) the posted vol itself fresh. Otherwise the
//! instruction fails with `RiskArrayStale` (or `VolatilityStale`) and the log names the market.

use crate::error::MarginError;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{CollateralBank, Group, MarginAccount, Market, Underlying, PPM};
use anchor_lang::prelude::*;
use std::cell::Ref;
use fixed::types::{I32F32, I80F48};
use risk_engine::black_scholes::OptionKind;
use risk_engine::health::{HealthBreakdown, HealthKind, HealthParams, TokenBalance, TokenPrices};
use risk_engine::margin::{Exposure, UnderlyingBook};
use risk_engine::risk_array::{linear_cells, RiskError};
use risk_engine::wide::{mul_q32, mul_q32_by_int, q32_wide_to_i80f48, Rounding};

/// Health breakdown returned by `health_check` (borsh), all in quote native units, each
/// rounded against the account (values down, requirement up).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthReport {
    /// 0 init, 1 maint, 2 liquidation-end.
    pub kind: u8,
    /// Weighted collateral value.
    pub token_value_native: i64,
    /// Weighted derivatives equity (unrealized P&L, funding, option value).
    pub position_equity_native: i64,
    /// Requirement (initial or maintenance margin of all underlyings).
    pub requirement_native: i64,
    /// token value + position equity - requirement.
    pub health_native: i64,
}

impl HealthReport {
    /// Rounds a breakdown to whole quote native units (values down, requirement up).
    pub fn from_breakdown(b: &HealthBreakdown) -> Result<Self> {
        use risk_engine::wide::i80f48_to_int;
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

/// A collateral bank with its checked prices.
#[derive(Clone, Copy)]
pub struct PricedBank<'a> {
    pub key: Pubkey,
    pub bank: &'a CollateralBank,
    pub prices: TokenPrices,
}

/// An underlying with its checked prices per lot (quote native units, Q32.32).
#[derive(Clone, Copy)]
pub struct PricedUnderlying<'a> {
    pub key: Pubkey,
    pub underlying: &'a Underlying,
    pub spot_per_lot: I32F32,
    /// Conservative spots marks use under init health: positions that gain when the price
    /// rises are marked at `prices.init_low`, those that lose at `prices.init_high`.
    pub prices: UnderlyingPrices,
}

/// An underlying's oracle spot per lot and the conservative spots init-health marks use (the
/// lower of price and EMA minus the group's confidence multiple, the higher plus it), Q32.32.
/// A pumped print moves the oracle spot, not the EMA: a long bought at the pump is marked at
/// the EMA under init health, so the loss a reversal would bring is collateralised up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnderlyingPrices {
    pub spot: I32F32,
    pub init_low: I32F32,
    pub init_high: I32F32,
    /// The higher of the oracle spot and the EMA per lot (no confidence): the spot the initial
    /// requirement is scaled up to when a print is below its EMA (see [`compute_health`]).
    pub requirement_spot: I32F32,
}

/// The prices of an underlying from a checked oracle reading (one place for chain and client).
pub fn underlying_prices(reading: &crate::oracle::OracleReading, group: &Group, underlying: &Underlying) -> Result<UnderlyingPrices> {
    let spot = spot_per_lot(reading, group, underlying)?;
    // Out of the representable range the bound saturates (health must always compute).
    let init_low = conservative_spot_per_lot(reading, group, underlying, true).unwrap_or(I32F32::ZERO).min(spot);
    let init_high = conservative_spot_per_lot(reading, group, underlying, false).unwrap_or(I32F32::MAX).max(spot);
    let ema_reading = crate::oracle::OracleReading { price: reading.ema_price, ..*reading };
    let requirement_spot = spot_per_lot(&ema_reading, group, underlying).unwrap_or(I32F32::MAX).max(spot);
    Ok(UnderlyingPrices { spot, init_low, init_high, requirement_spot })
}

/// A market account.
#[derive(Clone, Copy)]
pub struct MarketRef<'a> {
    pub key: Pubkey,
    pub market: &'a Market,
}

/// Everything health depends on, already checked. Built on-chain by [`HealthInputs::load`] and
/// off-chain by the client from the same account data.
pub struct HealthView<'a> {
    pub group: &'a Group,
    pub banks: &'a [PricedBank<'a>],
    pub markets: &'a [MarketRef<'a>],
    pub underlyings: &'a [PricedUnderlying<'a>],
    /// Unix time the freshness checks use.
    pub now: i64,
}

/// The underlyings an account's health needs, in a canonical order: those of its positions
/// (slot order), then those of its collateral tokens linked to an underlying (slot order).
pub fn required_underlyings(
    account: &MarginAccount,
    market_underlying: impl Fn(&Pubkey) -> Option<Pubkey>,
    bank_underlying: impl Fn(&Pubkey) -> Option<Pubkey>,
) -> Result<Vec<Pubkey>> {
    let mut out: Vec<Pubkey> = Vec::new();
    for position in account.positions.iter().filter(|p| p.in_use == 1) {
        let underlying = market_underlying(&position.market).ok_or(MarginError::HealthAccountsMismatch)?;
        if !out.contains(&underlying) {
            out.push(underlying);
        }
    }
    for balance in account.active_balances() {
        let linked = bank_underlying(&balance.bank).ok_or(MarginError::HealthAccountsMismatch)?;
        if linked != Pubkey::default() && !out.contains(&linked) {
            out.push(linked);
        }
    }
    Ok(out)
}

/// Spot price of one lot of `underlying` in quote native units, from a checked oracle reading.
pub fn spot_per_lot(reading: &crate::oracle::OracleReading, group: &Group, underlying: &Underlying) -> Result<I32F32> {
    let exponent = reading.exponent + group.quote_decimals as i32 + underlying.lot_size_exponent as i32;
    let price = crate::oracle::scale_decimal(reading.price as i128, exponent, false)?;
    risk_engine::wide::i80f48_to_q32(price, Rounding::Down).ok_or(error!(MarginError::OraclePriceOutOfRange))
}

/// Conservative spot price of one lot for valuing a gain (`for_long`: the lower of price and EMA
/// minus the group's confidence multiple; otherwise the higher plus it), Q32.32: the price a
/// pumped or dumped oracle print cannot reach before the EMA follows.
pub fn conservative_spot_per_lot(reading: &crate::oracle::OracleReading, group: &Group, underlying: &Underlying, for_long: bool) -> Result<I32F32> {
    let (low, high) = reading.conservative_mantissas_ppm(group);
    let mantissa = if for_long { low.max(0) } else { high };
    let exponent = reading.exponent + group.quote_decimals as i32 + underlying.lot_size_exponent as i32 - 6;
    let price = crate::oracle::scale_decimal(mantissa, exponent, !for_long)?;
    let rounding = if for_long { Rounding::Down } else { Rounding::Up };
    risk_engine::wide::i80f48_to_q32(price, rounding).ok_or(error!(MarginError::OraclePriceOutOfRange))
}

/// Checks that a market's risk array may be used at `spot` and `now`: spot within the price
/// tolerance of the array's reference and the array young enough; for live options, the posted
/// vol within the vol tolerance of the array's (a stale posted vol does not block: marks then
/// shock it against the position, see [`mark_per_lot`]); for expired options, an array computed
/// at or after expiry (intrinsic values: no vol needed).
pub fn check_array_fresh(market_key: &Pubkey, market: &Market, underlying: &Underlying, spot: I32F32, now: i64) -> Result<()> {
    let reference = I32F32::from_bits(market.array_spot_bits);
    let moved = (spot - reference).abs();
    // |spot - ref| / ref <= tolerance, in integers: |d| x 1e6 <= tol x ref.
    let price_ok = reference > 0
        && (moved.to_bits() as i128) * (PPM as i128)
            <= (underlying.array_price_tolerance_ppm as i128) * (reference.to_bits() as i128);
    let expired = market.is_expired(now);
    let vol_moved = (market.vol_bits as i128 - market.array_vol_bits as i128).abs();
    let vol_ok = !market.is_option()
        || if expired {
            market.array_updated_ts >= market.expiry_ts
        } else {
            vol_moved * (PPM as i128) <= (underlying.array_vol_tolerance_ppm as i128) << 32
        };
    let age_ok = market.array_updated_ts > 0 && now.saturating_sub(market.array_updated_ts) <= underlying.array_max_age_seconds as i64;
    if !(price_ok && vol_ok && age_ok) {
        msg!(
            "risk array of market {} is stale (price ok: {}, vol or expiry ok: {}, age ok: {}): refresh it",
            market_key,
            price_ok,
            vol_ok,
            age_ok
        );
        return err!(MarginError::RiskArrayStale);
    }
    Ok(())
}

/// Fails with `VolatilityStale` if an option's posted vol is stale: trades need a fresh
/// reference price; health and liquidation do not (they fall back to shocked marks).
pub fn require_fresh_vol(market_key: &Pubkey, market: &Market, now: i64) -> Result<()> {
    if market.is_option() && !market.is_expired(now) && market.vol_is_stale(now) {
        msg!("posted vol of market {} is stale", market_key);
        return err!(MarginError::VolatilityStale);
    }
    Ok(())
}

/// Lots of an underlying held as collateral that enter its scenario grid: whole lots of the
/// balance, rounded down (towards negative infinity for a negative balance), and at most `MAX_LOTS` either way. What is left out (dust
/// below a lot, and any excess beyond `MAX_LOTS` lots) is valued by the bank's weights only,
/// like collateral that is not linked to an underlying.
pub fn collateral_lots(balance_native: i64, bank: &CollateralBank, underlying: &Underlying) -> Result<i64> {
    let exponent = bank.mint_decimals as i32 + underlying.lot_size_exponent as i32;
    require!((0..=18).contains(&exponent), MarginError::InvalidLotSize);
    let native_per_lot = 10i64.pow(exponent as u32);
    Ok(balance_native.div_euclid(native_per_lot).clamp(-risk_engine::risk_array::MAX_LOTS, risk_engine::risk_array::MAX_LOTS))
}

/// Model value of one long option lot at `spot` from the market's risk array: the reference
/// value moved by the reference delta, floored at 0 (valid within the array tolerance), Q32.32.
/// The reference price trades are banded around.
pub fn option_value_per_lot(market: &Market, spot: I32F32) -> Result<I32F32> {
    let value = I32F32::from_bits(market.array_value_bits);
    let delta = I32F32::from_bits(market.array_delta_bits);
    let moved = spot.checked_sub(I32F32::from_bits(market.array_spot_bits)).ok_or(MarginError::MathOverflow)?;
    let shift = mul_q32(delta, moved, Rounding::Down).ok_or(MarginError::MathOverflow)?;
    Ok(value.checked_add(shift).ok_or(MarginError::MathOverflow)?.max(I32F32::ZERO))
}

/// Intrinsic value of one long lot at the settlement price, whole quote native units (the
/// settlement price and the strike are whole units, so the value is exact): what
/// `settle_expired_option` pays.
pub fn intrinsic_per_lot(market: &Market) -> i64 {
    let at_settlement = intrinsic_at(market, I32F32::from_num(market.settlement_price_native));
    risk_engine::wide::q32_to_int(at_settlement, risk_engine::wide::Rounding::Down)
}

/// Intrinsic value of one long option lot at `spot`, Q32.32 (0 for perps).
pub fn intrinsic_at(market: &Market, spot: I32F32) -> I32F32 {
    let strike = I32F32::from_num(market.strike_per_lot_native);
    // An unknown kind byte is worth nothing here; health and refresh refuse such a market.
    match crate::state::MarketKind::from_u8(market.kind).and_then(crate::state::MarketKind::option_kind) {
        Some(OptionKind::Call) => (spot - strike).max(I32F32::ZERO),
        Some(OptionKind::Put) => (strike - spot).max(I32F32::ZERO),
        None => I32F32::ZERO,
    }
}

/// Mark of one lot of an option held as `lots` (the sign matters) at `spot` and `now`, Q32.32:
///
/// - expired with a settlement price proposed: intrinsic value at the proposed price (with
///   `use_proposal`; otherwise the worse of it and the intrinsic value at `spot`);
/// - expired, nothing proposed yet: intrinsic value at `spot`, no vol needed;
/// - live with a fresh posted vol: [`option_value_per_lot`], plus for a short the array's
///   short-mark buffer (the largest amount that first-order value can understate the option
///   within the array's price and vol tolerances), so health never overstates a short; none at
///   the array's own spot and vol, where the first-order value is exact;
/// - live with a stale posted vol: that value moved by the grid's vol-up or vol-down shock
///   (valued today at the array's reference, stored with the array), whichever is worse for
///   the holder (long: the lower; short: the higher), so a risk authority that stops posting
///   never blocks health or liquidation and never makes a position look better than under a
///   vol shock.
pub fn mark_per_lot(market: &Market, spot: I32F32, lots: i64, now: i64, use_proposal: bool) -> Result<I32F32> {
    if market.settlement_is_proposed(now) {
        // The proposal can only be replaced by an earlier update at or after expiry: it is the
        // best estimate of what the position will be paid, whatever the live price does. Until
        // it is final it may still be replaced, so init health (withdrawals, new risk) takes the
        // worse of it and the live intrinsic value.
        let proposed = I32F32::from_num(intrinsic_per_lot(market));
        if use_proposal {
            return Ok(proposed);
        }
        let live = intrinsic_at(market, spot);
        return Ok(if lots >= 0 { proposed.min(live) } else { proposed.max(live) });
    }
    if market.is_expired(now) {
        return Ok(intrinsic_at(market, spot));
    }
    let value = option_value_per_lot(market, spot)?;
    // A short is marked at the first-order value plus the array's short-mark buffer: within the
    // array's tolerances that is never below the option's true value. At the array's own spot
    // and vol the first-order value is exact and needs none (a liquidation, which refreshes the
    // array in the same second, must not charge the liquidatee a buffer: second review).
    let exact = spot.to_bits() == market.array_spot_bits && market.vol_bits == market.array_vol_bits;
    let value = if lots < 0 && !exact {
        value.checked_add(I32F32::from_bits(market.array_short_buffer_bits)).ok_or(MarginError::MathOverflow)?
    } else {
        value
    };
    if !market.vol_is_stale(now) {
        return Ok(value);
    }
    let up = I32F32::from_bits(market.array_vol_up_shock_bits);
    let down = I32F32::from_bits(market.array_vol_down_shock_bits);
    let shock = if lots >= 0 { up.min(down).min(I32F32::ZERO) } else { up.max(down).max(I32F32::ZERO) };
    Ok(value.checked_add(shock).ok_or(MarginError::MathOverflow)?.max(I32F32::ZERO))
}

/// Mark-to-market of one position in quote native units (I80F48, exact up to the Q32.32 spot).
pub fn position_equity(
    position: &crate::state::PositionSlot,
    market: &Market,
    spot: I32F32,
    now: i64,
    use_proposal: bool,
) -> Result<I80F48> {
    let overflow = || error!(MarginError::MathOverflow);
    let wide = if market.is_settled(now) {
        let intrinsic = intrinsic_per_lot(market);
        (position.base_lots as i128).checked_mul(intrinsic as i128).ok_or_else(overflow)? << 32
    } else if market.market_kind()?.option_kind().is_some() {
        mul_q32_by_int(mark_per_lot(market, spot, position.base_lots, now, use_proposal)?, position.base_lots)
    } else {
        let owed = crate::positions::perp_cash_owed(position, market)?;
        let cash = (position.quote_native as i128 - owed as i128) << 32;
        mul_q32_by_int(spot, position.base_lots).checked_add(cash).ok_or_else(overflow)?
    };
    q32_wide_to_i80f48(wide).ok_or_else(overflow)
}

/// Health of `kind` for `account` over checked inputs. Pure: the client runs it too.
pub fn compute_health(view: &HealthView, account: &MarginAccount, kind: HealthKind) -> Result<HealthBreakdown> {
    let overflow = || error!(MarginError::MathOverflow);
    let mut tokens = Vec::with_capacity(crate::state::MAX_COLLATERAL_BALANCES);
    for balance in account.active_balances() {
        let bank = view.banks.iter().find(|b| b.key == balance.bank).ok_or(MarginError::HealthAccountsMismatch)?;
        tokens.push(TokenBalance { native: balance.balance_native, prices: bank.prices, weights: bank.bank.weights() });
    }
    let market_of = |key: &Pubkey| view.markets.iter().find(|m| m.key == *key);
    let needed = required_underlyings(
        account,
        |m| market_of(m).map(|m| m.market.underlying),
        |b| view.banks.iter().find(|x| x.key == *b).map(|x| x.bank.underlying),
    )?;

    // Per underlying: its grid and the collateral that enters it (first, so the exposures
    // below can borrow the collateral's array), then the positions' exposures, which borrow the
    // markets' arrays straight from account data, and their marks. The engine aggregates.
    struct Prepared<'p> {
        priced: &'p PricedUnderlying<'p>,
        params: risk_engine::scenario::GridParams,
        scenario_count: usize,
        collateral: Option<(i64, Vec<I32F32>, I32F32)>,
    }
    let mut prepared = Vec::with_capacity(needed.len());
    for underlying_key in &needed {
        let priced = view.underlyings.iter().find(|u| u.key == *underlying_key).ok_or(MarginError::HealthAccountsMismatch)?;
        let params = priced.underlying.grid.params();
        let mut collateral = None;
        let linked = priced.underlying.collateral_bank;
        if let Some(balance) = account.balance_index(&linked).filter(|_| linked != Pubkey::default()).map(|i| account.balances[i]) {
            let bank = view.banks.iter().find(|b| b.key == balance.bank).ok_or(MarginError::HealthAccountsMismatch)?;
            let lots = collateral_lots(balance.balance_native, bank.bank, priced.underlying)?;
            let scenarios = params.scenarios().map_err(|_| error!(MarginError::InvalidGridParams))?;
            // Only the cells a delta-one exposure needs (not a whole two-sided array): this
            // runs in every health evaluation, and a liquidation step makes many.
            let mut cells = vec![I32F32::ZERO; scenarios.len()];
            let max_abs_cell = linear_cells(priced.spot_per_lot, &scenarios, &mut cells).map_err(|_| overflow())?;
            collateral = Some((lots, cells, max_abs_cell));
        }
        prepared.push(Prepared { priced, params, scenario_count: params.scenario_count(), collateral });
    }
    let mut exposure_lists: Vec<Vec<Exposure>> = Vec::with_capacity(prepared.len());
    let mut marks = Vec::with_capacity(prepared.len());
    for p in &prepared {
        let (underlying, spot) = (p.priced.underlying, p.priced.spot_per_lot);
        let (mut positive, mut negative) = (I80F48::ZERO, I80F48::ZERO);
        let mut exposures = Vec::new();
        for position in account.positions.iter().filter(|x| x.in_use == 1) {
            let market = market_of(&position.market).ok_or(MarginError::HealthAccountsMismatch)?;
            if market.market.underlying != p.priced.key {
                continue;
            }
            // Under init health, marked at the conservative spot against the position.
            let mark_spot = if kind == HealthKind::Init {
                let gains_when_up = match market.market.market_kind()?.option_kind() {
                    Some(OptionKind::Put) => position.base_lots < 0,
                    Some(OptionKind::Call) | None => position.base_lots > 0,
                };
                if gains_when_up { p.priced.prices.init_low } else { p.priced.prices.init_high }
            } else {
                spot
            };
            // A proposed settlement price counts for maintenance and liquidation; init health,
            // the gate for withdrawals, waits until it is final.
            let use_proposal = kind != HealthKind::Init;
            let equity = position_equity(position, market.market, mark_spot, view.now, use_proposal)?;
            if equity >= 0 {
                positive = positive.checked_add(equity).ok_or_else(overflow)?;
            } else {
                negative = negative.checked_add(equity).ok_or_else(overflow)?;
            }
            if market.market.is_settled(view.now) || (use_proposal && market.market.settlement_is_proposed(view.now)) {
                continue; // paid at the (proposed) settlement price: no price risk left
            }
            check_array_fresh(&market.key, market.market, underlying, spot, view.now)?;
            exposures.push(market.market.exposure(position.base_lots));
        }
        if let Some((lots, cells, max_abs_cell)) = &p.collateral {
            exposures.push(Exposure::linear(*lots, cells, *max_abs_cell));
        }
        exposure_lists.push(exposures);
        marks.push((positive, negative));
    }
    let books: Vec<UnderlyingBook> = prepared
        .iter()
        .zip(&exposure_lists)
        .zip(&marks)
        .map(|((p, exposures), (positive, negative))| UnderlyingBook {
            spot: p.priced.spot_per_lot,
            params: &p.params,
            scenario_count: p.scenario_count,
            exposures,
            positive_equity: *positive,
            negative_equity: *negative,
            correlation: view.group.correlation_of(p.priced.underlying),
        })
        .collect();
    // The engine sums the underlyings and credits correlation groups. Under init health, a
    // requirement computed at a print below its EMA is scaled up to the EMA (linear exposure
    // scales with spot): otherwise a dumped print would shrink a short's requirement while its
    // mark stays at the EMA, and withdrawing in the same slot would free more than the EMA
    // allows. Unchanged when the print is at or above it.
    let derivatives = risk_engine::margin::derivatives_risk_scaled(&books, |index, initial| {
        let p = &prepared[index];
        let (spot, high) = (p.priced.prices.spot, p.priced.prices.requirement_spot);
        if kind == HealthKind::Init && high > spot && spot > 0 {
            let ratio = I80F48::from(high).checked_div(I80F48::from(spot)).ok_or(RiskError::Overflow)? + I80F48::DELTA;
            initial.checked_mul(ratio).ok_or(RiskError::Overflow)
        } else {
            Ok(initial)
        }
    })
    .map_err(|e| {
        msg!("portfolio margin failed: {:?}", e);
        crate::error::risk_engine_error(e)
    })?;
    let params = HealthParams { unrealized_init_weight: crate::state::ppm_to_fixed(view.group.unrealized_init_weight_ppm) };
    risk_engine::health::compute_health(&tokens, &derivatives, &params, kind).map_err(|_| error!(MarginError::RiskEngineOverflow))
}

/// Account data loaded from the accounts passed to an instruction.
pub struct HealthInputs<'a> {
    banks: Vec<(Pubkey, Ref<'a, CollateralBank>, TokenPrices)>,
    markets: Vec<(Pubkey, Ref<'a, Market>)>,
    underlyings: Vec<(Pubkey, Ref<'a, Underlying>, UnderlyingPrices)>,
    now: i64,
}

pub fn find<'a, 'info>(infos: &'a [AccountInfo<'info>], key: &Pubkey) -> Option<&'a AccountInfo<'info>> {
    infos.iter().find(|i| i.key == key)
}

fn load_typed<'a, T: anchor_lang::ZeroCopy + anchor_lang::Owner>(info: &'a AccountInfo) -> Result<Ref<'a, T>> {
    require_keys_eq!(*info.owner, crate::ID, MarginError::HealthAccountWrongOwner);
    let data = info.try_borrow_data()?;
    require!(data.len() >= 8 + core::mem::size_of::<T>() && &data[..8] == T::DISCRIMINATOR, MarginError::HealthAccountWrongType);
    Ok(Ref::map(data, |d| bytemuck::from_bytes(&d[8..8 + core::mem::size_of::<T>()])))
}

/// The oracle account configured as `configured` for something named `what`, checked.
fn oracle_reading(infos: &[AccountInfo], config: &OracleConfig, what: &Pubkey, now: i64) -> Result<crate::oracle::OracleReading> {
    let Some(info) = find(infos, &config.oracle) else {
        msg!("oracle {} configured for {} was not passed", config.oracle, what);
        return err!(MarginError::OracleKeyMismatch);
    };
    read_oracle_account(config, info, now)
}

impl<'a> HealthInputs<'a> {
    /// Finds and checks every account `account`'s health depends on among `infos`.
    pub fn load(group: &Group, group_key: &Pubkey, account: &MarginAccount, infos: &'a [AccountInfo]) -> Result<Self> {
        Self::load_many(group, group_key, &[account], infos)
    }

    /// Like [`HealthInputs::load`] for several accounts (or states of one account) at once:
    /// each bank, market and underlying is loaded and priced once.
    pub fn load_many(group: &Group, group_key: &Pubkey, accounts: &[&MarginAccount], infos: &'a [AccountInfo]) -> Result<Self> {
        let now = Clock::get()?.unix_timestamp;
        let mut inputs = HealthInputs { banks: Vec::new(), markets: Vec::new(), underlyings: Vec::new(), now };
        for account in accounts {
            for balance in account.active_balances() {
                if inputs.banks.iter().any(|(k, _, _)| *k == balance.bank) {
                    continue;
                }
                let info = find(infos, &balance.bank).ok_or_else(|| {
                    msg!("bank {} of an active balance was not passed", balance.bank);
                    error!(MarginError::HealthAccountsMismatch)
                })?;
                let bank = load_typed::<CollateralBank>(info)?;
                require_keys_eq!(bank.group, *group_key, MarginError::WrongGroup);
                let reading = oracle_reading(infos, &OracleConfig::of_bank(&bank), &balance.bank, now)?;
                let prices = reading.token_prices(group, bank.mint_decimals)?;
                inputs.banks.push((balance.bank, bank, prices));
            }
            for position in account.positions.iter().filter(|p| p.in_use == 1) {
                if inputs.markets.iter().any(|(k, _)| *k == position.market) {
                    continue;
                }
                let info = find(infos, &position.market).ok_or_else(|| {
                    msg!("market {} of a position was not passed", position.market);
                    error!(MarginError::HealthAccountsMismatch)
                })?;
                let market = load_typed::<Market>(info)?;
                require_keys_eq!(market.group, *group_key, MarginError::WrongGroup);
                market.market_kind()?;
                inputs.markets.push((position.market, market));
            }
        }
        for account in accounts {
            let needed = required_underlyings(
                account,
                |m| inputs.markets.iter().find(|(k, _)| k == m).map(|(_, m)| m.underlying),
                |b| inputs.banks.iter().find(|(k, _, _)| k == b).map(|(_, b, _)| b.underlying),
            )?;
            for key in needed {
                if inputs.underlyings.iter().any(|(k, _, _)| *k == key) {
                    continue;
                }
                let info = find(infos, &key).ok_or_else(|| {
                    msg!("underlying {} was not passed", key);
                    error!(MarginError::HealthAccountsMismatch)
                })?;
                let underlying = load_typed::<Underlying>(info)?;
                require_keys_eq!(underlying.group, *group_key, MarginError::WrongGroup);
                let reading = oracle_reading(infos, &OracleConfig::of_underlying(&underlying), &key, now)?;
                let prices = underlying_prices(&reading, group, &underlying)?;
                inputs.underlyings.push((key, underlying, prices));
            }
        }
        Ok(inputs)
    }

    /// Health of `kind` for `account` (which may be a modified copy, e.g. before a trade).
    pub fn health(&self, group: &Group, account: &MarginAccount, kind: HealthKind) -> Result<HealthBreakdown> {
        let banks: Vec<PricedBank> = self.banks.iter().map(|(key, bank, prices)| PricedBank { key: *key, bank, prices: *prices }).collect();
        let markets: Vec<MarketRef> = self.markets.iter().map(|(key, market)| MarketRef { key: *key, market }).collect();
        let underlyings: Vec<PricedUnderlying> = self
            .underlyings
            .iter()
            .map(|(key, underlying, prices)| PricedUnderlying { key: *key, underlying, spot_per_lot: prices.spot, prices: *prices })
            .collect();
        let view = HealthView { group, banks: &banks, markets: &markets, underlyings: &underlyings, now: self.now };
        compute_health(&view, account, kind)
    }
}

/// Health of `kind` for `account`, loading what it needs from `infos`.
pub fn account_health(
    group: &Group,
    group_key: &Pubkey,
    account: &MarginAccount,
    infos: &[AccountInfo],
    kind: HealthKind,
) -> Result<HealthBreakdown> {
    HealthInputs::load(group, group_key, account, infos)?.health(group, account, kind)
}

/// Fails with [`MarginError::InitHealthNegative`] unless init health is >= 0.
pub fn require_init_health(
    group: &Group,
    group_key: &Pubkey,
    account: &MarginAccount,
    infos: &[AccountInfo],
) -> Result<HealthBreakdown> {
    let health = account_health(group, group_key, account, infos, HealthKind::Init)?;
    require!(health.health >= 0, MarginError::InitHealthNegative);
    Ok(health)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::refresh_risk_array::refresh_market;
    use crate::state::{GridConfig, MarketKind};
    use risk_engine::black_scholes::{price_option, OptionInputs, OptionKind};
    use risk_engine::scenario::GridParams;

    /// An option market refreshed by the program's own refresh at `spot`, with a fresh vol, on
    /// an underlying with a 1% price and 2-vol-point tolerance.
    fn refreshed(kind: MarketKind, strike: i64, seconds: i64, vol: f64, spot: I32F32, now: i64) -> Market {
        let mut underlying: Underlying = bytemuck::Zeroable::zeroed();
        underlying.grid = GridConfig::from(&GridParams::default());
        underlying.array_price_tolerance_ppm = 10_000;
        underlying.array_vol_tolerance_ppm = 20_000;
        let mut market: Market = bytemuck::Zeroable::zeroed();
        market.kind = kind as u8;
        market.strike_per_lot_native = strike;
        market.expiry_ts = now + seconds;
        market.vol_bits = I32F32::from_num(vol).to_bits();
        market.vol_updated_ts = now;
        market.vol_max_age_seconds = 3_600;
        refresh_market(&mut market, &underlying, spot, now).unwrap();
        market
    }

    /// Within the array's price and vol tolerances a short option is never marked below its
    /// true value (the short-mark buffer; none needed, and none charged, at the array's own spot
    /// and vol), and a long one never above it.
    #[test]
    fn marks_never_flatter_a_short_option_within_the_tolerances() {
        let now = 1_000_000;
        let reference = 150_000i64;
        for (kind, strike, seconds, vol) in [
            (MarketKind::Call, 150_000, 3_600, 0.8),
            (MarketKind::Put, 150_000, 3_600, 0.8),
            (MarketKind::Call, 153_000, 6 * 3_600, 1.2),
            (MarketKind::Put, 140_000, 7 * 86_400, 0.6),
        ] {
            let market = refreshed(kind, strike, seconds, vol, I32F32::from_num(reference), now);
            assert!(market.array_short_buffer_bits > 0);
            for step in -10..=10i64 {
                let spot = I32F32::from_num(reference + reference * step / 1_000); // within 1%
                for vol_bump in [0.0, 0.01, 0.02] {
                    // The risk authority posts the new vol; the array is not refreshed.
                    let mut market = market;
                    market.vol_bits = I32F32::from_num(vol + vol_bump).to_bits();
                    let inputs = OptionInputs {
                        spot,
                        strike: I32F32::from_num(strike),
                        vol: I32F32::from_num(vol + vol_bump),
                        days_to_expiry: market.days_to_expiry(now),
                        kind: if kind == MarketKind::Call { OptionKind::Call } else { OptionKind::Put },
                    };
                    let truth = price_option(&inputs).unwrap().value;
                    let short = mark_per_lot(&market, spot, -1, now, false).unwrap();
                    assert!(short >= truth, "{kind:?} K {strike} spot {spot} vol +{vol_bump}: short mark {short} < value {truth}");
                    if step == 0 && vol_bump == 0.0 {
                        // At the array's own spot and vol (a liquidation's case): exact, no buffer.
                        assert_eq!(short, option_value_per_lot(&market, spot).unwrap());
                    }
                    if vol_bump == 0.0 {
                        let long = mark_per_lot(&market, spot, 1, now, false).unwrap();
                        assert!(long <= truth + I32F32::from_num(0.01), "{kind:?} spot {spot}: long mark {long} > value {truth}");
                    }
                }
            }
        }
    }
}

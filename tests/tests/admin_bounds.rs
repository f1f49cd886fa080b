//! Every admin and risk-authority parameter is bounded: for each bound, the value just outside
//! is refused with its own error and leaves every touched account byte-for-byte unchanged (a new
//! account is not created), and the value at the bound is accepted. A key other than the admin
//! (or the risk authority) is refused by every privileged instruction.
//!
//! The bounds are the constants next to each configuration struct (`GroupParams`, `BankConfig`,
//! `UnderlyingConfig` and `GridConfig`, `PerpConfig`, `OptionConfig`); the tests read them
//! there, so a changed bound is tested where it is defined.

use anchor_lang::prelude::Pubkey;
use anchor_spl::token::spl_token;
use fixed::types::I32F32;
use pm_client::world::{option_config, setup_derivatives, underlying_config, Derivatives};
use pm_client::local_bank::LocalBank;
use pm_client::pyth::feed_id_for;
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::*;
use portfolio_margin::state::*;
use risk_engine::risk_array::MAX_LOTS;
use risk_engine::scenario::GridParams;
use risk_engine::wide::{div_q32, mul_q32, Rounding};
use solana_keypair::Keypair;
use solana_signer::Signer;
use anchor_lang::solana_program::instruction::Instruction;

/// A parameter change applied to a valid configuration.
type Mutate<T> = Box<dyn Fn(&mut T)>;

/// One bound: the value just outside (refused with `error`) and the value at the bound (accepted).
struct Bound<T> {
    name: &'static str,
    outside: Mutate<T>,
    error: MarginError,
    at: Mutate<T>,
}

fn bound<T>(name: &'static str, outside: impl Fn(&mut T) + 'static, error: MarginError, at: impl Fn(&mut T) + 'static) -> Bound<T> {
    Bound { name, outside: Box::new(outside), error, at: Box::new(at) }
}

/// `x` plus or minus one Q32.32 bit.
fn up(x: I32F32) -> I32F32 {
    I32F32::from_bits(x.to_bits() + 1)
}
fn down(x: I32F32) -> I32F32 {
    I32F32::from_bits(x.to_bits() - 1)
}
fn ratio(numerator: i64, denominator: i64) -> I32F32 {
    I32F32::from_bits((numerator << 32) / denominator)
}

/// Runs `bounds` against `base` for an instruction of `group`: `build` makes the instruction
/// from the group's current state and a configuration, `touched` lists the accounts it may
/// write (snapshotted around each refusal).
async fn check_bounds<T: Copy>(
    bank: &mut LocalBank,
    group: Pubkey,
    base: T,
    bounds: Vec<Bound<T>>,
    touched: impl Fn(&Group) -> Vec<Pubkey>,
    build: impl Fn(&Group, T) -> Instruction,
) {
    for b in bounds {
        let state: Group = bank.load(&group).await;
        let keys = touched(&state);
        let before = snapshot(bank, &keys).await;
        let mut outside = base;
        (b.outside)(&mut outside);
        let result = bank.send(&[build(&state, outside)], &[]).await;
        assert_eq!(custom_code(&result), Some(code_of(b.error)), "{}: expected {:?}, got {result:?}", b.name, b.error);
        assert_eq!(before, snapshot(bank, &keys).await, "{}: a refused configuration changed an account", b.name);
        let mut at = base;
        (b.at)(&mut at);
        let result = bank.send(&[build(&state, at)], &[]).await;
        assert!(result.is_ok(), "{}: the value at the bound was refused: {result:?}", b.name);
    }
}

async fn setup() -> (LocalBank, DemoMarket, Derivatives) {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let d = setup_derivatives(&mut bank, &market).await.unwrap();
    (bank, market, d)
}

const DEMO_PARAMS: GroupParams =
    GroupParams { unrealized_init_weight_ppm: 500_000, conf_multiplier_ppm: 2 * PPM, liquidation_fee_ppm: 20_000, insurance_share_ppm: 250_000 };

/// `update_group`: only the admin; every parameter within the bounds `create_group` enforces;
/// the liquidation fee only downwards; the risk authority rotates (the old key can no longer
/// post vols, the new one can); each refusal leaves the group unchanged byte for byte.
#[tokio::test]
async fn group_updates_are_bounded_and_rotate_the_risk_authority() {
    let (mut bank, market, d) = setup().await;
    let admin = market.admin.pubkey();
    let keys = [market.group];
    let new_authority = Keypair::new();
    let stranger = Keypair::new();
    let refusals: Vec<(&str, GroupParams, Pubkey, MarginError)> = vec![
        ("unrealized weight", GroupParams { unrealized_init_weight_ppm: MAX_UNREALIZED_INIT_WEIGHT_PPM + 1, ..DEMO_PARAMS }, new_authority.pubkey(), MarginError::InvalidGroupParams),
        ("conf multiplier", GroupParams { conf_multiplier_ppm: MAX_CONF_MULTIPLIER_PPM + 1, ..DEMO_PARAMS }, new_authority.pubkey(), MarginError::InvalidGroupParams),
        ("insurance share", GroupParams { insurance_share_ppm: MAX_INSURANCE_SHARE_PPM + 1, ..DEMO_PARAMS }, new_authority.pubkey(), MarginError::InvalidGroupParams),
        ("fee raised", GroupParams { liquidation_fee_ppm: DEMO_PARAMS.liquidation_fee_ppm + 1, ..DEMO_PARAMS }, new_authority.pubkey(), MarginError::LiquidationFeeRaised),
        ("default authority", DEMO_PARAMS, Pubkey::default(), MarginError::InvalidRiskAuthority),
        ("fee removed", GroupParams { liquidation_fee_ppm: 0, ..DEMO_PARAMS }, new_authority.pubkey(), MarginError::LiquidationFeeRemoved),
    ];
    for (name, params, authority, error) in refusals {
        let before = snapshot(&mut bank, &keys).await;
        let result = bank.send(&[sdk::update_group(&market.group, &admin, params, &authority)], &[&market.admin]).await;
        assert_eq!(custom_code(&result), Some(code_of(error)), "{name}: {result:?}");
        assert_eq!(before, snapshot(&mut bank, &keys).await, "{name}");
    }
    let before = snapshot(&mut bank, &keys).await;
    let result = bank.send(&[sdk::update_group(&market.group, &stranger.pubkey(), DEMO_PARAMS, &stranger.pubkey())], &[&stranger]).await;
    assert_eq!(custom_code(&result), Some(code_of(MarginError::NotGroupAdmin)), "{result:?}");
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // Accepted: a lower fee, other parameters at their bounds, a new risk authority.
    let params = GroupParams {
        unrealized_init_weight_ppm: MAX_UNREALIZED_INIT_WEIGHT_PPM,
        conf_multiplier_ppm: MAX_CONF_MULTIPLIER_PPM,
        liquidation_fee_ppm: DEMO_PARAMS.liquidation_fee_ppm - 5_000,
        insurance_share_ppm: MAX_INSURANCE_SHARE_PPM,
    };
    let (outcome, logs) = bank.send_logged(&[sdk::update_group(&market.group, &admin, params, &new_authority.pubkey())], &[&market.admin]).await;
    outcome.unwrap();
    let group: Group = bank.load(&market.group).await;
    assert_eq!(
        (group.unrealized_init_weight_ppm, group.conf_multiplier_ppm, group.liquidation_fee_ppm, group.insurance_share_ppm),
        (params.unrealized_init_weight_ppm, params.conf_multiplier_ppm, params.liquidation_fee_ppm, params.insurance_share_ppm)
    );
    assert_eq!(group.risk_authority, new_authority.pubkey());
    let events = sdk::events::<portfolio_margin::events::GroupUpdated>(&logs);
    assert_eq!(events.len(), 1, "{logs:?}");
    assert_eq!((events[0].before, events[0].after, events[0].previous_risk_authority), (DEMO_PARAMS, params, admin));
    // The old risk authority (the demo's admin) can no longer post a vol; the new one can.
    let vol = I32F32::from_num(0.6).to_bits();
    let old = sdk::set_volatility(&market.group, &admin, &d.call.keys.market, vol);
    assert_margin_error(bank.send(&[old], &[&market.admin]).await, MarginError::NotRiskAuthority);
    let new = sdk::set_volatility(&market.group, &new_authority.pubkey(), &d.call.keys.market, vol);
    bank.send(&[new], &[&new_authority]).await.unwrap();
}

/// Review finding, kept as a regression: events were kept per thread, and a multi-threaded
/// runtime (the CLI's) runs transactions on worker threads, so none reached the logs. They are
/// now in each transaction's own log, inside the program's invoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_logs_under_a_multi_threaded_runtime() {
    let (mut bank, market, _) = setup().await;
    for round in 0..4u32 {
        let params = GroupParams { liquidation_fee_ppm: DEMO_PARAMS.liquidation_fee_ppm - round, ..DEMO_PARAMS };
        let ix = sdk::update_group(&market.group, &market.admin.pubkey(), params, &market.admin.pubkey());
        let (outcome, logs) = bank.send_logged(&[ix], &[&market.admin]).await;
        outcome.unwrap();
        let events = sdk::events::<portfolio_margin::events::GroupUpdated>(&logs);
        assert_eq!(events.len(), 1, "round {round}: {logs:?}");
        assert_eq!(events[0].after.liquidation_fee_ppm, DEMO_PARAMS.liquidation_fee_ppm - round);
    }
}

#[tokio::test]
async fn group_parameters_are_bounded() {
    let (mut bank, market, _) = setup().await;
    let admin = market.admin.pubkey();
    let bounds = vec![
        bound("unrealized_init_weight_ppm", |p: &mut GroupParams| p.unrealized_init_weight_ppm = MAX_UNREALIZED_INIT_WEIGHT_PPM + 1, MarginError::InvalidGroupParams, |p| p.unrealized_init_weight_ppm = MAX_UNREALIZED_INIT_WEIGHT_PPM),
        bound("conf_multiplier_ppm", |p: &mut GroupParams| p.conf_multiplier_ppm = MAX_CONF_MULTIPLIER_PPM + 1, MarginError::InvalidGroupParams, |p| p.conf_multiplier_ppm = MAX_CONF_MULTIPLIER_PPM),
        bound("liquidation_fee_ppm", |p: &mut GroupParams| p.liquidation_fee_ppm = MAX_LIQUIDATION_FEE_PPM + 1, MarginError::InvalidGroupParams, |p| p.liquidation_fee_ppm = MAX_LIQUIDATION_FEE_PPM),
        bound("insurance_share_ppm", |p: &mut GroupParams| p.insurance_share_ppm = MAX_INSURANCE_SHARE_PPM + 1, MarginError::InvalidGroupParams, |p| p.insurance_share_ppm = MAX_INSURANCE_SHARE_PPM),
    ];
    // A refused attempt creates nothing; an accepted one the group at that index.
    let mut index = 100u32;
    for b in bounds {
        let keys = [sdk::group_address(&admin, index)];
        let before = snapshot(&mut bank, &keys).await;
        let mut outside = DEMO_PARAMS;
        (b.outside)(&mut outside);
        let result = bank.send(&[sdk::create_group(&admin, &admin, &market.usdc.mint, index, outside)], &[]).await;
        assert_eq!(custom_code(&result), Some(code_of(b.error)), "{}: {result:?}", b.name);
        assert_eq!(before, snapshot(&mut bank, &keys).await, "{}", b.name);
        let mut at = DEMO_PARAMS;
        (b.at)(&mut at);
        let result = bank.send(&[sdk::create_group(&admin, &admin, &market.usdc.mint, index, at)], &[]).await;
        assert!(result.is_ok(), "{}: {result:?}", b.name);
        index += 1;
    }

    // The quote mint's decimals.
    for (decimals, expected) in [(MAX_QUOTE_DECIMALS + 1, Some(MarginError::InvalidQuoteMint)), (MAX_QUOTE_DECIMALS, None)] {
        let mint = bank.create_mint(&spl_token::ID, decimals, &[]).await.unwrap().pubkey();
        index += 1;
        let keys = [sdk::group_address(&admin, index)];
        let before = snapshot(&mut bank, &keys).await;
        let result = bank.send(&[sdk::create_group(&admin, &admin, &mint, index, DEMO_PARAMS)], &[]).await;
        match expected {
            Some(error) => {
                assert_margin_error(result, error);
                assert_eq!(before, snapshot(&mut bank, &keys).await);
            }
            None => assert!(result.is_ok(), "{result:?}"),
        }
    }

    // The risk authority: never the default key (nobody could post vols, and it cannot change).
    index += 1;
    let keys = [sdk::group_address(&admin, index)];
    let before = snapshot(&mut bank, &keys).await;
    let ix = sdk::create_group(&admin, &Pubkey::default(), &market.usdc.mint, index, DEMO_PARAMS);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::InvalidRiskAuthority);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    let ix = sdk::create_group(&admin, &Pubkey::new_unique(), &market.usdc.mint, index, DEMO_PARAMS);
    bank.send(&[ix], &[]).await.unwrap();
}

#[tokio::test]
async fn bank_parameters_are_bounded() {
    let (mut bank, market, _) = setup().await;
    let admin = market.admin.pubkey();
    let group: Group = bank.load(&market.group).await;
    let sol: CollateralBank = bank.load(&market.sol.bank).await;
    // The SOL bank as the demo leaves it (linked to the SOL underlying).
    let base = bank_config(sol.oracle, sol.feed_id, (950_000, 980_000), (1_050_000, 1_020_000));
    // The largest init asset weight with `weight x (1 + fee) < 1`.
    let ppm = PPM as u64;
    let largest_init_asset = ((ppm * ppm - 1) / (ppm + group.liquidation_fee_ppm as u64)) as u32;
    let bounds = vec![
        bound("maint_asset_weight_ppm <= 1", |c: &mut BankConfig| c.maint_asset_weight_ppm = MAX_ASSET_WEIGHT_PPM + 1, MarginError::InvalidAssetWeights, |c| c.maint_asset_weight_ppm = MAX_ASSET_WEIGHT_PPM),
        bound("init_asset_weight_ppm <= maint", |c: &mut BankConfig| c.init_asset_weight_ppm = c.maint_asset_weight_ppm + 1, MarginError::InvalidAssetWeights, |c| c.init_asset_weight_ppm = c.maint_asset_weight_ppm),
        bound(
            "init_asset_weight_ppm x (1 + fee) < 1",
            move |c: &mut BankConfig| (c.init_asset_weight_ppm, c.maint_asset_weight_ppm) = (largest_init_asset + 1, PPM),
            MarginError::AssetWeightBlocksLiquidation,
            move |c| (c.init_asset_weight_ppm, c.maint_asset_weight_ppm) = (largest_init_asset, PPM),
        ),
        bound("maint_liability_weight_ppm >= 1", |c: &mut BankConfig| c.maint_liability_weight_ppm = MIN_LIABILITY_WEIGHT_PPM - 1, MarginError::InvalidLiabilityWeights, |c| c.maint_liability_weight_ppm = MIN_LIABILITY_WEIGHT_PPM),
        bound("init_liability_weight_ppm >= maint", |c: &mut BankConfig| c.init_liability_weight_ppm = c.maint_liability_weight_ppm - 1, MarginError::InvalidLiabilityWeights, |c| c.init_liability_weight_ppm = c.maint_liability_weight_ppm),
        bound("init_liability_weight_ppm <= 10", |c: &mut BankConfig| c.init_liability_weight_ppm = MAX_INIT_LIABILITY_WEIGHT_PPM + 1, MarginError::InvalidLiabilityWeights, |c| c.init_liability_weight_ppm = MAX_INIT_LIABILITY_WEIGHT_PPM),
        bound("max_price_age_seconds >= 10", |c: &mut BankConfig| c.max_price_age_seconds = MIN_PRICE_AGE_SECONDS - 1, MarginError::InvalidMaxPriceAge, |c| c.max_price_age_seconds = MIN_PRICE_AGE_SECONDS),
        bound("max_price_age_seconds <= 3600", |c: &mut BankConfig| c.max_price_age_seconds = MAX_PRICE_AGE_SECONDS + 1, MarginError::InvalidMaxPriceAge, |c| c.max_price_age_seconds = MAX_PRICE_AGE_SECONDS),
        bound("max_confidence_ppm >= 0.1%", |c: &mut BankConfig| c.max_confidence_ppm = MIN_CONFIDENCE_PPM - 1, MarginError::InvalidMaxConfidence, |c| c.max_confidence_ppm = MIN_CONFIDENCE_PPM),
        bound("max_confidence_ppm <= 20%", |c: &mut BankConfig| c.max_confidence_ppm = MAX_CONFIDENCE_PPM + 1, MarginError::InvalidMaxConfidence, |c| c.max_confidence_ppm = MAX_CONFIDENCE_PPM),
        bound("deposit_limit_native <= i64::MAX", |c: &mut BankConfig| c.deposit_limit_native = MAX_DEPOSIT_LIMIT_NATIVE + 1, MarginError::InvalidDepositLimit, |c| c.deposit_limit_native = MAX_DEPOSIT_LIMIT_NATIVE),
        bound("a linked bank keeps its oracle account", |c: &mut BankConfig| c.oracle = Pubkey::new_unique(), MarginError::LinkedBankOracleChange, |_| {}),
        bound("a linked bank keeps its feed id", |c: &mut BankConfig| c.feed_id = feed_id_for("BTC/USD"), MarginError::LinkedBankOracleChange, |_| {}),
    ];
    let (group_key, sol_bank) = (market.group, market.sol.bank);
    check_bounds(&mut bank, group_key, base, bounds, |_| vec![group_key, sol_bank], |_, config| {
        sdk::update_collateral_bank(&group_key, &admin, &sol_bank, config)
    })
    .await;

    // The quote bank: each of its weights must stay 1.
    let usdc: CollateralBank = bank.load(&market.usdc.bank).await;
    let quote = bank_config(usdc.oracle, usdc.feed_id, (PPM, PPM), (PPM, PPM));
    let bounds = vec![
        bound("quote init_asset_weight_ppm", |c: &mut BankConfig| c.init_asset_weight_ppm = QUOTE_WEIGHT_PPM - 1, MarginError::QuoteBankWeightsNotOne, |_| {}),
        bound("quote maint_asset_weight_ppm", |c: &mut BankConfig| (c.init_asset_weight_ppm, c.maint_asset_weight_ppm) = (0, 0), MarginError::QuoteBankWeightsNotOne, |_| {}),
        bound("quote init_liability_weight_ppm", |c: &mut BankConfig| c.init_liability_weight_ppm = QUOTE_WEIGHT_PPM + 1, MarginError::QuoteBankWeightsNotOne, |_| {}),
        bound("quote maint_liability_weight_ppm", |c: &mut BankConfig| (c.init_liability_weight_ppm, c.maint_liability_weight_ppm) = (10 * PPM, 10 * PPM), MarginError::QuoteBankWeightsNotOne, |_| {}),
    ];
    let usdc_bank = market.usdc.bank;
    check_bounds(&mut bank, group_key, quote, bounds, |_| vec![group_key, usdc_bank], |_, config| {
        sdk::update_collateral_bank(&group_key, &admin, &usdc_bank, config)
    })
    .await;

    // `add_collateral_bank` runs the same checks: a new (unlinked) bank may take any oracle.
    let payer = bank.payer().pubkey();
    let bounds = vec![
        bound(
            "listing: init_asset_weight_ppm x (1 + fee) < 1",
            move |c: &mut BankConfig| (c.init_asset_weight_ppm, c.maint_asset_weight_ppm) = (largest_init_asset + 1, PPM),
            MarginError::AssetWeightBlocksLiquidation,
            move |c| (c.init_asset_weight_ppm, c.maint_asset_weight_ppm) = (largest_init_asset, PPM),
        ),
        bound("listing: deposit_limit_native", |c: &mut BankConfig| c.deposit_limit_native = u64::MAX, MarginError::InvalidDepositLimit, |c| c.deposit_limit_native = MAX_DEPOSIT_LIMIT_NATIVE),
    ];
    let other = bank_config(Pubkey::new_unique(), feed_id_for("OTHER/USD"), (800_000, 900_000), (1_200_000, 1_100_000));
    for b in bounds {
        // A refused listing creates nothing; the accepted one uses up the mint.
        let mint = bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
        let bank_key = sdk::bank_address(&group_key, &mint);
        let keys = [group_key, bank_key, sdk::vault_address(&bank_key)];
        let before = snapshot(&mut bank, &keys).await;
        let mut outside = other;
        (b.outside)(&mut outside);
        let result = bank.send(&[sdk::add_collateral_bank(&group_key, &admin, &payer, &mint, &spl_token::ID, outside)], &[]).await;
        assert_eq!(custom_code(&result), Some(code_of(b.error)), "{}: {result:?}", b.name);
        assert_eq!(before, snapshot(&mut bank, &keys).await, "{}", b.name);
        let mut at = other;
        (b.at)(&mut at);
        let result = bank.send(&[sdk::add_collateral_bank(&group_key, &admin, &payer, &mint, &spl_token::ID, at)], &[]).await;
        assert!(result.is_ok(), "{}: {result:?}", b.name);
    }
    // And the quote weights: a second group lists its quote mint.
    let index = 50;
    bank.send(&[sdk::create_group(&admin, &admin, &market.usdc.mint, index, DEMO_PARAMS)], &[]).await.unwrap();
    let other_group = sdk::group_address(&admin, index);
    let other_bank = sdk::bank_address(&other_group, &market.usdc.mint);
    let keys = [other_group, other_bank, sdk::vault_address(&other_bank)];
    let before = snapshot(&mut bank, &keys).await;
    let below_one = bank_config(usdc.oracle, usdc.feed_id, (PPM - 1, PPM), (PPM, PPM));
    let ix = sdk::add_collateral_bank(&other_group, &admin, &payer, &market.usdc.mint, &spl_token::ID, below_one);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::QuoteBankWeightsNotOne);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    let ix = sdk::add_collateral_bank(&other_group, &admin, &payer, &market.usdc.mint, &spl_token::ID, quote);
    bank.send(&[ix], &[]).await.unwrap();
}

/// The default grid with `change` applied.
fn grid(change: impl Fn(&mut GridParams)) -> GridConfig {
    let mut p = GridParams::default();
    change(&mut p);
    GridConfig::from(&p)
}

/// Mutates the grid of an underlying configuration.
fn with_grid(change: impl Fn(&mut GridParams) + 'static) -> impl Fn(&mut UnderlyingConfig) + 'static {
    move |c: &mut UnderlyingConfig| {
        let mut p = c.grid.params();
        change(&mut p);
        c.grid = GridConfig::from(&p);
    }
}

/// The largest `vol_up` whose shock at the one-day tenor stays within `MAX_GRID_VOL_UP_SHOCK`
/// for the grid `p` (exactly as the program computes it).
fn largest_vol_up(p: &GridParams) -> I32F32 {
    let scale = p.vol_shock_scale(I32F32::ONE).unwrap();
    let shock = |v: I32F32| mul_q32(v, scale, Rounding::Up).unwrap();
    let mut v = div_q32(MAX_GRID_VOL_UP_SHOCK, scale, Rounding::Down).unwrap();
    while shock(up(v)) <= MAX_GRID_VOL_UP_SHOCK {
        v = up(v);
    }
    while shock(v) > MAX_GRID_VOL_UP_SHOCK {
        v = down(v);
    }
    v
}

#[tokio::test]
async fn underlying_parameters_are_bounded() {
    let (mut bank, market, _) = setup().await;
    let admin = market.admin.pubkey();
    let group: Group = bank.load(&market.group).await;
    let fee = ratio(group.liquidation_fee_ppm as i64, PPM as i64);
    let base = underlying_config(Pubkey::new_unique(), feed_id_for("ETH/USD"));
    // A grid whose one-day vol-up shock is about 10 x vol_up (reference 10 days, power 1).
    let mut steep = GridParams::default();
    steep.vol_reference_days = ratio(10, 1);
    steep.vol_power_short = I32F32::ONE;
    let steep_vol_up = largest_vol_up(&steep);
    let bounds: Vec<Bound<UnderlyingConfig>> = vec![
        bound("max_price_age_seconds >= 10", |c: &mut UnderlyingConfig| c.max_price_age_seconds = MIN_PRICE_AGE_SECONDS - 1, MarginError::InvalidMaxPriceAge, |c| c.max_price_age_seconds = MIN_PRICE_AGE_SECONDS),
        bound("max_price_age_seconds <= 3600", |c: &mut UnderlyingConfig| c.max_price_age_seconds = MAX_PRICE_AGE_SECONDS + 1, MarginError::InvalidMaxPriceAge, |c| c.max_price_age_seconds = MAX_PRICE_AGE_SECONDS),
        bound("max_confidence_ppm >= 0.1%", |c: &mut UnderlyingConfig| c.max_confidence_ppm = MIN_CONFIDENCE_PPM - 1, MarginError::InvalidMaxConfidence, |c| c.max_confidence_ppm = MIN_CONFIDENCE_PPM),
        bound("max_confidence_ppm <= 20%", |c: &mut UnderlyingConfig| c.max_confidence_ppm = MAX_CONFIDENCE_PPM + 1, MarginError::InvalidMaxConfidence, |c| c.max_confidence_ppm = MAX_CONFIDENCE_PPM),
        bound("lot_size_exponent >= -12", |c: &mut UnderlyingConfig| c.lot_size_exponent = MIN_LOT_SIZE_EXPONENT - 1, MarginError::InvalidLotSize, |c| c.lot_size_exponent = MIN_LOT_SIZE_EXPONENT),
        bound("lot_size_exponent <= 6", |c: &mut UnderlyingConfig| c.lot_size_exponent = MAX_LOT_SIZE_EXPONENT + 1, MarginError::InvalidLotSize, |c| c.lot_size_exponent = MAX_LOT_SIZE_EXPONENT),
        bound("array_price_tolerance_ppm <= 5%", |c: &mut UnderlyingConfig| c.array_price_tolerance_ppm = MAX_ARRAY_PRICE_TOLERANCE_PPM + 1, MarginError::InvalidArrayTolerance, |c| c.array_price_tolerance_ppm = MAX_ARRAY_PRICE_TOLERANCE_PPM),
        bound("array_vol_tolerance_ppm <= 10 vol points", |c: &mut UnderlyingConfig| c.array_vol_tolerance_ppm = MAX_ARRAY_VOL_TOLERANCE_PPM + 1, MarginError::InvalidArrayTolerance, |c| c.array_vol_tolerance_ppm = MAX_ARRAY_VOL_TOLERANCE_PPM),
        bound("array_max_age_seconds >= 1", |c: &mut UnderlyingConfig| c.array_max_age_seconds = MIN_ARRAY_MAX_AGE_SECONDS - 1, MarginError::InvalidArrayTolerance, |c| c.array_max_age_seconds = MIN_ARRAY_MAX_AGE_SECONDS),
        bound("array_max_age_seconds <= 1 day", |c: &mut UnderlyingConfig| c.array_max_age_seconds = MAX_ARRAY_MAX_AGE_SECONDS + 1, MarginError::InvalidArrayTolerance, |c| c.array_max_age_seconds = MAX_ARRAY_MAX_AGE_SECONDS),
        // The engine's own validation (`GridParams::validate`).
        bound("grid.price_steps odd", with_grid(|p| p.price_steps = 8), MarginError::InvalidGridParams, with_grid(|p| p.price_steps = 9)),
        bound("grid.price_steps >= 3", with_grid(|p| p.price_steps = 1), MarginError::InvalidGridParams, with_grid(|p| p.price_steps = 3)),
        bound("grid.price_steps <= 13", with_grid(|p| p.price_steps = 15), MarginError::InvalidGridParams, with_grid(|p| p.price_steps = 13)),
        bound("grid.vol_up >= 0", with_grid(|p| p.vol_up = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.vol_up = I32F32::ZERO)),
        bound("grid.vol_down >= 0", with_grid(|p| p.vol_down = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.vol_down = I32F32::ZERO)),
        bound("grid.vol_down < 1", with_grid(|p| p.vol_down = I32F32::ONE), MarginError::InvalidGridParams, with_grid(|p| p.vol_down = down(I32F32::ONE))),
        bound("grid.vol_power_short >= 0", with_grid(|p| p.vol_power_short = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.vol_power_short = I32F32::ZERO)),
        bound("grid.vol_power_long >= 0", with_grid(|p| p.vol_power_long = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.vol_power_long = I32F32::ZERO)),
        bound("grid.extended_count <= 8", with_grid(|p| p.extended_count = 9), MarginError::InvalidGridParams, with_grid(|p| p.extended_count = 8)),
        bound("grid.extended_moves > -1", with_grid(|p| p.extended_moves[0] = -I32F32::ONE), MarginError::InvalidGridParams, with_grid(|p| p.extended_moves[0] = MIN_GRID_EXTENDED_MOVE)),
        bound("grid.extended_moves >= -90%", with_grid(|p| p.extended_moves[0] = down(MIN_GRID_EXTENDED_MOVE)), MarginError::GridTailOutOfBounds, with_grid(|p| p.extended_moves[0] = MIN_GRID_EXTENDED_MOVE)),
        bound("grid.extended_weight_numerator >= 0", with_grid(|p| p.extended_weight_numerator = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.extended_weight_numerator = I32F32::ZERO)),
        bound("grid.min_delta_net >= 0", with_grid(|p| p.min_delta_net = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.min_delta_net = I32F32::ZERO)),
        bound("grid.min_delta_hedged >= 0", with_grid(|p| p.min_delta_hedged = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.min_delta_hedged = I32F32::ZERO)),
        bound("grid.short_option_contingency >= 0", with_grid(|p| p.short_option_contingency = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.short_option_contingency = I32F32::ZERO)),
        bound("grid.im_factor >= 1", with_grid(|p| p.im_factor = down(I32F32::ONE)), MarginError::InvalidGridParams, with_grid(|p| p.im_factor = I32F32::ONE)),
        // The program's bounds (`GridConfig::validate_bounds`).
        bound("grid.price_range > liquidation fee", with_grid(move |p| p.price_range = fee), MarginError::GridPriceRangeOutOfBounds, with_grid(move |p| p.price_range = up(fee))),
        bound(
            "grid.price_range <= 50%",
            with_grid(|p| (p.price_range, p.extended_moves[0], p.extended_moves[1]) = (up(MAX_GRID_PRICE_RANGE), -ratio(66, 100), -ratio(60, 100))),
            MarginError::GridPriceRangeOutOfBounds,
            with_grid(|p| (p.price_range, p.extended_moves[0], p.extended_moves[1]) = (MAX_GRID_PRICE_RANGE, -ratio(66, 100), -ratio(60, 100))),
        ),
        bound("grid.vol_up <= 2", with_grid(|p| p.vol_up = up(MAX_GRID_VOL_UP)), MarginError::GridVolShockOutOfBounds, with_grid(|p| p.vol_up = MAX_GRID_VOL_UP)),
        bound("grid.vol_reference_days >= 1", with_grid(|p| p.vol_reference_days = down(MIN_GRID_VOL_REFERENCE_DAYS)), MarginError::GridVolShockOutOfBounds, with_grid(|p| p.vol_reference_days = MIN_GRID_VOL_REFERENCE_DAYS)),
        bound("grid.vol_reference_days <= 365", with_grid(|p| p.vol_reference_days = up(MAX_GRID_VOL_REFERENCE_DAYS)), MarginError::GridVolShockOutOfBounds, with_grid(|p| p.vol_reference_days = MAX_GRID_VOL_REFERENCE_DAYS)),
        bound(
            "grid.vol_power_short <= 1",
            with_grid(|p| (p.vol_power_short, p.vol_up, p.skew) = (up(MAX_GRID_VOL_POWER), ratio(3, 10), ratio(3, 10))),
            MarginError::GridVolShockOutOfBounds,
            with_grid(|p| (p.vol_power_short, p.vol_up, p.skew) = (MAX_GRID_VOL_POWER, ratio(3, 10), ratio(3, 10))),
        ),
        bound("grid.vol_power_long <= 1", with_grid(|p| p.vol_power_long = up(MAX_GRID_VOL_POWER)), MarginError::GridVolShockOutOfBounds, with_grid(|p| p.vol_power_long = MAX_GRID_VOL_POWER)),
        bound(
            "grid: vol_up shock at one day <= 10",
            with_grid(move |p| (p.vol_reference_days, p.vol_power_short, p.vol_up, p.skew) = (steep.vol_reference_days, steep.vol_power_short, up(steep_vol_up), ratio(3, 10))),
            MarginError::GridVolShockOutOfBounds,
            with_grid(move |p| (p.vol_reference_days, p.vol_power_short, p.vol_up, p.skew) = (steep.vol_reference_days, steep.vol_power_short, steep_vol_up, ratio(3, 10))),
        ),
        bound("grid.min_shocked_vol >= 0.01", with_grid(|p| p.min_shocked_vol = down(MIN_GRID_MIN_SHOCKED_VOL)), MarginError::GridVolShockOutOfBounds, with_grid(|p| p.min_shocked_vol = MIN_GRID_MIN_SHOCKED_VOL)),
        bound("grid.min_shocked_vol <= 1", with_grid(|p| p.min_shocked_vol = up(MAX_GRID_MIN_SHOCKED_VOL)), MarginError::GridVolShockOutOfBounds, with_grid(|p| p.min_shocked_vol = MAX_GRID_MIN_SHOCKED_VOL)),
        bound("grid.extended_moves <= +1000%", with_grid(|p| p.extended_moves[7] = up(MAX_GRID_EXTENDED_MOVE)), MarginError::GridTailOutOfBounds, with_grid(|p| p.extended_moves[7] = MAX_GRID_EXTENDED_MOVE)),
        bound("grid.extended_moves beyond the price range", with_grid(|p| p.extended_moves[1] = -down(p.price_range)), MarginError::GridTailOutOfBounds, with_grid(|p| p.extended_moves[1] = -p.price_range)),
        bound(
            "grid.extended_weight_numerator <= 1",
            with_grid(|p| {
                // Tail moves of +100%..+500%, so a numerator of 1 keeps every weight <= 1.
                p.extended_count = 5;
                p.extended_moves[..5].copy_from_slice(&[1, 2, 3, 4, 5].map(|m| ratio(m, 1)));
                p.extended_weight_numerator = up(MAX_GRID_EXTENDED_WEIGHT_NUMERATOR);
            }),
            MarginError::GridTailOutOfBounds,
            with_grid(|p| {
                p.extended_count = 5;
                p.extended_moves[..5].copy_from_slice(&[1, 2, 3, 4, 5].map(|m| ratio(m, 1)));
                p.extended_weight_numerator = MAX_GRID_EXTENDED_WEIGHT_NUMERATOR;
            }),
        ),
        // Tail weights <= 1: every tail move at least the numerator in size (-33% is the
        // default's smallest).
        bound("grid tail weights <= 1", with_grid(|p| p.extended_weight_numerator = up(-p.extended_moves[1])), MarginError::GridTailOutOfBounds, with_grid(|p| p.extended_weight_numerator = -p.extended_moves[1])),
        bound("grid.horizon_days >= 0", with_grid(|p| p.horizon_days = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.horizon_days = I32F32::ZERO)),
        bound("grid.horizon_days <= 7", with_grid(|p| p.horizon_days = up(MAX_GRID_HORIZON_DAYS)), MarginError::GridHorizonOutOfBounds, with_grid(|p| p.horizon_days = MAX_GRID_HORIZON_DAYS)),
        bound("grid.twist >= 0", with_grid(|p| p.twist = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.twist = I32F32::ZERO)),
        bound("grid.twist <= 0.9", with_grid(|p| p.twist = up(MAX_GRID_TWIST)), MarginError::GridSurfaceOutOfBounds, with_grid(|p| p.twist = MAX_GRID_TWIST)),
        bound("grid.twist_pivot_days >= 1", with_grid(|p| p.twist_pivot_days = down(MIN_GRID_TWIST_PIVOT_DAYS)), MarginError::GridSurfaceOutOfBounds, with_grid(|p| p.twist_pivot_days = MIN_GRID_TWIST_PIVOT_DAYS)),
        bound("grid.twist_pivot_days <= 365", with_grid(|p| p.twist_pivot_days = up(MAX_GRID_TWIST_PIVOT_DAYS)), MarginError::GridSurfaceOutOfBounds, with_grid(|p| p.twist_pivot_days = MAX_GRID_TWIST_PIVOT_DAYS)),
        bound("grid.twist_width > 1", with_grid(|p| p.twist_width = I32F32::ONE), MarginError::InvalidGridParams, with_grid(|p| p.twist_width = up(I32F32::ONE))),
        bound("grid.twist_width <= 100", with_grid(|p| p.twist_width = up(MAX_GRID_TWIST_WIDTH)), MarginError::GridSurfaceOutOfBounds, with_grid(|p| p.twist_width = MAX_GRID_TWIST_WIDTH)),
        bound("grid.skew <= 3", with_grid(|p| p.skew = up(MAX_GRID_SKEW)), MarginError::GridSurfaceOutOfBounds, with_grid(|p| p.skew = MAX_GRID_SKEW)),
        bound(
            "grid: skew shock at one day <= 10",
            with_grid(move |p| (p.vol_reference_days, p.vol_power_short, p.skew) = (steep.vol_reference_days, steep.vol_power_short, up(steep_vol_up))),
            MarginError::GridSurfaceOutOfBounds,
            with_grid(move |p| (p.vol_reference_days, p.vol_power_short, p.skew) = (steep.vol_reference_days, steep.vol_power_short, steep_vol_up)),
        ),
        bound("grid.min_delta_net <= 1", with_grid(|p| p.min_delta_net = up(MAX_GRID_REQUIREMENT_RATE)), MarginError::GridRequirementOutOfBounds, with_grid(|p| p.min_delta_net = MAX_GRID_REQUIREMENT_RATE)),
        bound("grid.min_delta_hedged <= 1", with_grid(|p| p.min_delta_hedged = up(MAX_GRID_REQUIREMENT_RATE)), MarginError::GridRequirementOutOfBounds, with_grid(|p| p.min_delta_hedged = MAX_GRID_REQUIREMENT_RATE)),
        bound("grid.short_option_contingency <= 1", with_grid(|p| p.short_option_contingency = up(MAX_GRID_REQUIREMENT_RATE)), MarginError::GridRequirementOutOfBounds, with_grid(|p| p.short_option_contingency = MAX_GRID_REQUIREMENT_RATE)),
        bound("grid.im_factor <= 4", with_grid(|p| p.im_factor = up(MAX_GRID_IM_FACTOR)), MarginError::GridRequirementOutOfBounds, with_grid(|p| p.im_factor = MAX_GRID_IM_FACTOR)),
        bound("grid.concentration <= 4", with_grid(|p| p.concentration = up(MAX_GRID_CONCENTRATION)), MarginError::GridRequirementOutOfBounds, with_grid(|p| p.concentration = MAX_GRID_CONCENTRATION)),
        bound("grid.vega_offset <= 1", with_grid(|p| p.vega_offset = up(MAX_GRID_VEGA_OFFSET)), MarginError::GridRequirementOutOfBounds, with_grid(|p| p.vega_offset = MAX_GRID_VEGA_OFFSET)),
        bound("grid.vega_offset >= 0", with_grid(|p| p.vega_offset = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.vega_offset = I32F32::ZERO)),
        bound("grid.concentration >= 0", with_grid(|p| p.concentration = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.concentration = I32F32::ZERO)),
        bound("grid.liquidity_lots >= 0", with_grid(|p| p.liquidity_lots = -I32F32::DELTA), MarginError::InvalidGridParams, with_grid(|p| p.liquidity_lots = I32F32::from_num(1_000_000))),
    ];
    let group_key = market.group;
    let payer = bank.payer().pubkey();
    check_bounds(
        &mut bank,
        group_key,
        base,
        bounds,
        |g| vec![group_key, sdk::underlying_address(&group_key, g.underlying_count)],
        |g, config| sdk::add_underlying(&group_key, &admin, &payer, g.underlying_count, None, config),
    )
    .await;

    // The 1% floor of the price range, in a group whose fee is below it.
    let params = GroupParams { liquidation_fee_ppm: 0, ..DEMO_PARAMS };
    bank.send(&[sdk::create_group(&admin, &admin, &market.usdc.mint, 60, params)], &[]).await.unwrap();
    let no_fee_group = sdk::group_address(&admin, 60);
    let keys = [no_fee_group, sdk::underlying_address(&no_fee_group, 0)];
    let before = snapshot(&mut bank, &keys).await;
    let config = UnderlyingConfig { grid: grid(|p| p.price_range = down(MIN_GRID_PRICE_RANGE)), ..base };
    let ix = sdk::add_underlying(&no_fee_group, &admin, &payer, 0, None, config);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::GridPriceRangeOutOfBounds);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    let config = UnderlyingConfig { grid: grid(|p| p.price_range = MIN_GRID_PRICE_RANGE), ..base };
    bank.send(&[sdk::add_underlying(&no_fee_group, &admin, &payer, 0, None, config)], &[]).await.unwrap();

    // A linked bank: its oracle account and feed id are the underlying's, and a lot is a whole
    // number of its native units.
    let mint = bank.create_mint(&spl_token::ID, 2, &[]).await.unwrap().pubkey();
    let (oracle, feed) = (Pubkey::new_unique(), feed_id_for("LINK/USD"));
    let linked = list_bank(&mut bank, &market.admin, &market.group, &mint, &spl_token::ID, bank_config(oracle, feed, (800_000, 900_000), (1_200_000, 1_100_000)))
        .await
        .unwrap();
    let linked_base = UnderlyingConfig { lot_size_exponent: -2, ..underlying_config(oracle, feed) };
    let bounds = vec![
        bound("linked: oracle account", |c: &mut UnderlyingConfig| c.oracle = Pubkey::new_unique(), MarginError::LinkedBankOracleMismatch, |_| {}),
        bound("linked: feed id", |c: &mut UnderlyingConfig| c.feed_id = feed_id_for("SOL/USD"), MarginError::LinkedBankOracleMismatch, |_| {}),
        bound("linked: a lot is whole native units", |c: &mut UnderlyingConfig| c.lot_size_exponent = -3, MarginError::InvalidLotSize, |_| {}),
    ];
    // Only the last case's accepted attempt links the bank: run the refusals first.
    for b in &bounds {
        let group_state: Group = bank.load(&market.group).await;
        let i = group_state.underlying_count;
        let keys = [market.group, sdk::underlying_address(&market.group, i), linked.bank];
        let before = snapshot(&mut bank, &keys).await;
        let mut config = linked_base;
        (b.outside)(&mut config);
        let ix = sdk::add_underlying(&market.group, &admin, &payer, i, Some(linked.bank), config);
        let result = bank.send(&[ix], &[]).await;
        assert_eq!(custom_code(&result), Some(code_of(b.error)), "{}: {result:?}", b.name);
        assert_eq!(before, snapshot(&mut bank, &keys).await, "{}", b.name);
    }
    let group_state: Group = bank.load(&market.group).await;
    let ix = sdk::add_underlying(&market.group, &admin, &payer, group_state.underlying_count, Some(linked.bank), linked_base);
    bank.send(&[ix], &[]).await.unwrap();
}

#[tokio::test]
async fn perp_parameters_are_bounded() {
    let (mut bank, market, d) = setup().await;
    let base = pm_client::world::perp_config();
    // At the per-hour cap, the largest rate per period is the period's share of it.
    let hourly = |period: u32| (MAX_FUNDING_RATE_PPM_PER_HOUR as u64 * period as u64 / 3_600) as u32;
    let bounds = vec![
        bound("price_band_ppm >= 0.1%", |c: &mut PerpConfig| c.price_band_ppm = MIN_PRICE_BAND_PPM - 1, MarginError::InvalidMarketParams, |c| c.price_band_ppm = MIN_PRICE_BAND_PPM),
        bound("price_band_ppm <= 20%", |c: &mut PerpConfig| c.price_band_ppm = MAX_PRICE_BAND_PPM + 1, MarginError::InvalidMarketParams, |c| c.price_band_ppm = MAX_PRICE_BAND_PPM),
        bound("funding_period_seconds >= 60", |c: &mut PerpConfig| (c.funding_period_seconds, c.max_funding_rate_ppm) = (MIN_FUNDING_PERIOD_SECONDS - 1, 0), MarginError::FundingRateTooFast, |c| (c.funding_period_seconds, c.max_funding_rate_ppm) = (MIN_FUNDING_PERIOD_SECONDS, 0)),
        bound("funding_period_seconds <= 30 days", |c: &mut PerpConfig| c.funding_period_seconds = MAX_FUNDING_PERIOD_SECONDS + 1, MarginError::InvalidMarketParams, |c| c.funding_period_seconds = MAX_FUNDING_PERIOD_SECONDS),
        bound(
            "max_funding_rate_ppm <= 10%",
            move |c: &mut PerpConfig| (c.funding_period_seconds, c.max_funding_rate_ppm) = (MAX_FUNDING_PERIOD_SECONDS, MAX_FUNDING_RATE_PPM + 1),
            MarginError::InvalidMarketParams,
            move |c| (c.funding_period_seconds, c.max_funding_rate_ppm) = (MAX_FUNDING_PERIOD_SECONDS, MAX_FUNDING_RATE_PPM),
        ),
        bound("max_funding_rate_ppm <= 1% per hour", move |c: &mut PerpConfig| c.max_funding_rate_ppm = hourly(3_600) + 1, MarginError::FundingRateTooFast, move |c| c.max_funding_rate_ppm = hourly(3_600)),
        bound(
            "max_funding_rate_ppm <= 1% per hour (60 s period)",
            move |c: &mut PerpConfig| (c.funding_period_seconds, c.max_funding_rate_ppm) = (60, hourly(60) + 1),
            MarginError::FundingRateTooFast,
            move |c| (c.funding_period_seconds, c.max_funding_rate_ppm) = (60, hourly(60)),
        ),
        bound("funding_depth_lots >= 1", |c: &mut PerpConfig| c.funding_depth_lots = 0, MarginError::InvalidMarketParams, |c| c.funding_depth_lots = 1),
        bound("funding_depth_lots <= MAX_LOTS", |c: &mut PerpConfig| c.funding_depth_lots = MAX_LOTS + 1, MarginError::InvalidMarketParams, |c| c.funding_depth_lots = MAX_LOTS),
        bound("pnl_settle_limit_ppm >= 1", |c: &mut PerpConfig| c.pnl_settle_limit_ppm = MIN_PNL_SETTLE_LIMIT_PPM - 1, MarginError::InvalidMarketParams, |c| c.pnl_settle_limit_ppm = MIN_PNL_SETTLE_LIMIT_PPM),
        bound("pnl_settle_limit_ppm <= 100%", |c: &mut PerpConfig| c.pnl_settle_limit_ppm = MAX_PNL_SETTLE_LIMIT_PPM + 1, MarginError::InvalidMarketParams, |c| c.pnl_settle_limit_ppm = MAX_PNL_SETTLE_LIMIT_PPM),
    ];
    market_bounds(&mut bank, &market, &d, base, bounds, sdk::add_perp_market).await;
}

/// Runs `bounds` for a market listing instruction on the demo's SOL underlying; the touched
/// accounts are the group and the market at the group's next index.
async fn market_bounds<T: Copy>(
    bank: &mut LocalBank,
    market: &DemoMarket,
    d: &Derivatives,
    base: T,
    bounds: Vec<Bound<T>>,
    build: fn(&Pubkey, &Pubkey, &Pubkey, &Pubkey, u16, T) -> Instruction,
) {
    let (group, admin, payer, underlying) = (market.group, market.admin.pubkey(), bank.payer().pubkey(), d.sol);
    check_bounds(
        bank,
        group,
        base,
        bounds,
        |g| vec![group, sdk::market_address(&group, g.market_count)],
        |g, config| build(&group, &admin, &payer, &underlying, g.market_count, config),
    )
    .await;
}

#[tokio::test]
async fn option_parameters_are_bounded() {
    let (mut bank, market, d) = setup().await;
    let now = bank.now().await;
    let base = option_config(MarketKind::Call, 160, now + 7 * 86_400);
    let bounds = vec![
        bound("kind is an option", |c: &mut OptionConfig| c.kind = MarketKind::Perp, MarginError::InvalidMarketParams, |c| c.kind = MarketKind::Put),
        bound("strike_per_lot_native >= 1", |c: &mut OptionConfig| c.strike_per_lot_native = 0, MarginError::InvalidStrike, |c| c.strike_per_lot_native = 1),
        bound("strike_per_lot_native < 2^30", |c: &mut OptionConfig| c.strike_per_lot_native = MAX_STRIKE_PER_LOT_NATIVE, MarginError::InvalidStrike, |c| c.strike_per_lot_native = MAX_STRIKE_PER_LOT_NATIVE - 1),
        bound("expiry_ts > now", move |c: &mut OptionConfig| c.expiry_ts = now, MarginError::ExpiryInPast, move |c| c.expiry_ts = now + 1),
        bound("expiry_ts <= now + 2 years", move |c: &mut OptionConfig| c.expiry_ts = now + MAX_OPTION_TENOR_SECONDS + 1, MarginError::OptionTenorTooLong, move |c| c.expiry_ts = now + MAX_OPTION_TENOR_SECONDS),
        bound("price_band_ppm >= 0.1%", |c: &mut OptionConfig| c.price_band_ppm = MIN_PRICE_BAND_PPM - 1, MarginError::InvalidMarketParams, |c| c.price_band_ppm = MIN_PRICE_BAND_PPM),
        bound("price_band_ppm <= 20%", |c: &mut OptionConfig| c.price_band_ppm = MAX_PRICE_BAND_PPM + 1, MarginError::InvalidMarketParams, |c| c.price_band_ppm = MAX_PRICE_BAND_PPM),
        bound("min_vol_bits > 0", |c: &mut OptionConfig| c.min_vol_bits = 0, MarginError::InvalidMarketParams, |c| c.min_vol_bits = MIN_VOL_BITS),
        bound("min_vol_bits >= 0.01", |c: &mut OptionConfig| c.min_vol_bits = MIN_VOL_BITS - 1, MarginError::InvalidVolParams, |c| c.min_vol_bits = MIN_VOL_BITS),
        bound("min_vol_bits <= max_vol_bits", |c: &mut OptionConfig| c.min_vol_bits = c.max_vol_bits + 1, MarginError::InvalidMarketParams, |c| c.min_vol_bits = c.max_vol_bits),
        bound("max_vol_bits <= 10", |c: &mut OptionConfig| c.max_vol_bits = MAX_VOL_BITS + 1, MarginError::InvalidMarketParams, |c| c.max_vol_bits = MAX_VOL_BITS),
        bound("max_vol_change_bits > 0", |c: &mut OptionConfig| c.max_vol_change_bits = 0, MarginError::InvalidMarketParams, |c| c.max_vol_change_bits = 1),
        bound("max_vol_change_bits <= 1", |c: &mut OptionConfig| c.max_vol_change_bits = MAX_VOL_CHANGE_BITS + 1, MarginError::InvalidVolParams, |c| c.max_vol_change_bits = MAX_VOL_CHANGE_BITS),
        bound("vol_max_age_seconds > 0", |c: &mut OptionConfig| c.vol_max_age_seconds = 0, MarginError::InvalidMarketParams, |c| c.vol_max_age_seconds = MIN_VOL_MAX_AGE_SECONDS),
        bound("vol_max_age_seconds >= 60", |c: &mut OptionConfig| c.vol_max_age_seconds = MIN_VOL_MAX_AGE_SECONDS - 1, MarginError::InvalidVolParams, |c| c.vol_max_age_seconds = MIN_VOL_MAX_AGE_SECONDS),
        bound("vol_max_age_seconds <= 1 day", |c: &mut OptionConfig| c.vol_max_age_seconds = MAX_VOL_MAX_AGE_SECONDS + 1, MarginError::InvalidVolParams, |c| c.vol_max_age_seconds = MAX_VOL_MAX_AGE_SECONDS),
        bound("settlement_window_seconds > 0", |c: &mut OptionConfig| c.settlement_window_seconds = 0, MarginError::InvalidMarketParams, |c| c.settlement_window_seconds = 1),
        bound("settlement_window_seconds <= 1 day", |c: &mut OptionConfig| c.settlement_window_seconds = MAX_SETTLEMENT_WINDOW_SECONDS + 1, MarginError::InvalidSettlementWindow, |c| c.settlement_window_seconds = MAX_SETTLEMENT_WINDOW_SECONDS),
        bound("settlement_challenge_seconds > 0", |c: &mut OptionConfig| c.settlement_challenge_seconds = 0, MarginError::InvalidMarketParams, |c| c.settlement_challenge_seconds = 1),
        bound("settlement_challenge_seconds <= 1 day", |c: &mut OptionConfig| c.settlement_challenge_seconds = MAX_SETTLEMENT_CHALLENGE_SECONDS + 1, MarginError::InvalidMarketParams, |c| c.settlement_challenge_seconds = MAX_SETTLEMENT_CHALLENGE_SECONDS),
    ];
    market_bounds(&mut bank, &market, &d, base, bounds, sdk::add_option_market).await;
}

#[tokio::test]
async fn volatility_posts_are_bounded_by_the_market() {
    let (mut bank, market, d) = setup().await;
    let admin = market.admin.pubkey();
    let now = bank.now().await;
    // A market with no vol posted yet: the first post is free within the band.
    let config = option_config(MarketKind::Call, 170, now + 7 * 86_400);
    let group: Group = bank.load(&market.group).await;
    let payer = bank.payer().pubkey();
    bank.send(&[sdk::add_option_market(&market.group, &admin, &payer, &d.sol, group.market_count, config)], &[]).await.unwrap();
    let key = sdk::market_address(&market.group, group.market_count);
    let cases = [
        (config.max_vol_bits + 1, MarginError::VolatilityOutOfBounds, config.max_vol_bits),
        (config.min_vol_bits - 1, MarginError::VolatilityOutOfBounds, config.max_vol_bits),
        // Posts at one timestamp count as one change from the vol before it: none is allowed.
        (config.max_vol_bits - 1, MarginError::VolatilityChangeTooLarge, config.max_vol_bits),
    ];
    for (outside, expected, at) in cases {
        let before = snapshot(&mut bank, &[key]).await;
        assert_margin_error(bank.send(&[sdk::set_volatility(&market.group, &admin, &key, outside)], &[]).await, expected);
        assert_eq!(before, snapshot(&mut bank, &[key]).await);
        bank.send(&[sdk::set_volatility(&market.group, &admin, &key, at)], &[]).await.unwrap();
    }
    // One vol_max_age later, the largest move allowed is max_vol_change.
    bank.advance_clock(config.vol_max_age_seconds as i64).await;
    let before = snapshot(&mut bank, &[key]).await;
    let ix = sdk::set_volatility(&market.group, &admin, &key, config.max_vol_bits - config.max_vol_change_bits - 1);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::VolatilityChangeTooLarge);
    assert_eq!(before, snapshot(&mut bank, &[key]).await);
    let ix = sdk::set_volatility(&market.group, &admin, &key, config.max_vol_bits - config.max_vol_change_bits);
    bank.send(&[ix], &[]).await.unwrap();
}

#[tokio::test]
async fn venue_programs_are_bounded() {
    let (mut bank, market, _) = setup().await;
    let (admin, payer) = (market.admin.pubkey(), bank.payer().pubkey());
    for program in [Pubkey::default(), portfolio_margin::ID] {
        let keys = [market.group, sdk::venue_address(&market.group, &program)];
        let before = snapshot(&mut bank, &keys).await;
        let ix = sdk::register_venue(&market.group, &admin, &payer, &program);
        assert_margin_error(bank.send(&[ix], &[]).await, MarginError::InvalidVenueProgram);
        assert_eq!(before, snapshot(&mut bank, &keys).await);
    }
    bank.send(&[sdk::register_venue(&market.group, &admin, &payer, &Pubkey::new_unique())], &[]).await.unwrap();
}

#[tokio::test]
async fn a_key_other_than_the_admin_is_refused_by_every_admin_instruction() {
    let (mut bank, market, d) = setup().await;
    let stranger = Keypair::new();
    let (s, payer) = (stranger.pubkey(), bank.payer().pubkey());
    let group: Group = bank.load(&market.group).await;
    let sol: CollateralBank = bank.load(&market.sol.bank).await;
    let config = bank_config(sol.oracle, sol.feed_id, (950_000, 980_000), (1_050_000, 1_020_000));
    let mint = bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let new_bank = sdk::bank_address(&market.group, &mint);
    let now = bank.now().await;
    let perp = pm_client::world::perp_config();
    let next_market = sdk::market_address(&market.group, group.market_count);
    let venue = Pubkey::new_unique();
    let attempts = [
        ("add_collateral_bank", sdk::add_collateral_bank(&market.group, &s, &payer, &mint, &spl_token::ID, config), vec![new_bank]),
        ("update_collateral_bank", sdk::update_collateral_bank(&market.group, &s, &market.sol.bank, config), vec![market.sol.bank]),
        (
            "add_underlying",
            sdk::add_underlying(&market.group, &s, &payer, group.underlying_count, None, underlying_config(Pubkey::new_unique(), feed_id_for("ETH/USD"))),
            vec![sdk::underlying_address(&market.group, group.underlying_count)],
        ),
        ("add_perp_market", sdk::add_perp_market(&market.group, &s, &payer, &d.sol, group.market_count, perp), vec![next_market]),
        (
            "add_option_market",
            sdk::add_option_market(&market.group, &s, &payer, &d.sol, group.market_count, option_config(MarketKind::Call, 160, now + 86_400)),
            vec![next_market],
        ),
        ("register_venue", sdk::register_venue(&market.group, &s, &payer, &venue), vec![sdk::venue_address(&market.group, &venue)]),
    ];
    for (name, ix, mut keys) in attempts {
        keys.push(market.group);
        let before = snapshot(&mut bank, &keys).await;
        let result = bank.send(&[ix], &[&stranger]).await;
        assert_eq!(custom_code(&result), Some(code_of(MarginError::NotGroupAdmin)), "{name}: {result:?}");
        assert_eq!(before, snapshot(&mut bank, &keys).await, "{name}");
    }
    // The risk authority's one instruction.
    let keys = [d.call.keys.market];
    let before = snapshot(&mut bank, &keys).await;
    let ix = sdk::set_volatility(&market.group, &s, &d.call.keys.market, I32F32::from_num(0.6).to_bits());
    assert_margin_error(bank.send(&[ix], &[&stranger]).await, MarginError::NotRiskAuthority);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // create_group has no privileged key: the signer becomes the admin of a group at its own
    // address, so a stranger cannot write to another admin's group.
    let ix = sdk::create_group(&s, &s, &market.usdc.mint, 0, DEMO_PARAMS);
    bank.airdrop(&s, 1_000_000_000).await.unwrap();
    bank.send(&[ix], &[&stranger]).await.unwrap();
    assert_ne!(sdk::group_address(&s, 0), market.group);
}

/// Why a non-quote bank's init asset weight must satisfy `init x (1 + fee) < 1`: at a weight the
/// program used to accept (0.99 with a 2% fee), paying an account's quote debt with its
/// collateral plus the fee lowers its liquidation-end health, so token liquidation is refused,
/// and while the collateral is worth more than the debt bankruptcy is refused too: the account
/// cannot be liquidated at all while its debt grows with every fall of the price. The bank's
/// bytes are written directly to stand in for such a configuration; the update instruction now
/// refuses it.
#[tokio::test]
async fn an_asset_weight_the_fee_outruns_made_an_account_unliquidatable() {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    const USDC: u64 = 1_000_000;
    const SOL: u64 = 1_000_000_000;
    let victim = new_trader(&mut bank, &market, 0, 10 * SOL).await.unwrap();
    let owner = victim.owner.insecure_clone();
    bank.send(&[sdk::deposit(&victim.account, &market.sol, &victim.sol_wallet, &owner.pubkey(), 10 * SOL)], &[&owner]).await.unwrap();
    let keeper = new_trader(&mut bank, &market, 10_000 * USDC, 0).await.unwrap();
    let keeper_owner = keeper.owner.insecure_clone();
    bank.send(&[sdk::deposit(&keeper.account, &market.usdc, &keeper.usdc_wallet, &keeper_owner.pubkey(), 10_000 * USDC)], &[&keeper_owner])
        .await
        .unwrap();
    // 10 SOL at $150 against a 1,495 USDC settled loss.
    force_balance(&mut bank, &victim.account, &market.usdc.bank, -1_495 * USDC as i64).await;

    // The old bound allowed init 0.99 / maint 0.995: the refused update, then the raw write.
    let sol: CollateralBank = bank.load(&market.sol.bank).await;
    let too_high = bank_config(sol.oracle, sol.feed_id, (990_000, 995_000), (1_200_000, 1_100_000));
    let ix = sdk::update_collateral_bank(&market.group, &market.admin.pubkey(), &market.sol.bank, too_high);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::AssetWeightBlocksLiquidation);
    let mut data = bank.account_data(&market.sol.bank).await.unwrap();
    let size = core::mem::size_of::<CollateralBank>();
    let mut state: CollateralBank = bytemuck::pod_read_unaligned(&data[8..8 + size]);
    (state.init_asset_weight_ppm, state.maint_asset_weight_ppm) = (990_000, 995_000);
    data[8..8 + size].copy_from_slice(bytemuck::bytes_of(&state));
    bank.set_account_data(&market.sol.bank, data).await;

    // Maintenance health is negative (1,492.5 - 1,495), yet neither liquidation nor bankruptcy
    // resolution can act.
    let maint = onchain_health(&mut bank, &market.group, &victim.account, risk_engine::health::HealthKind::Maint).await.unwrap();
    assert!(maint.health_native < 0);
    let metas = pm_client::health::union_health_accounts(&mut bank, &market.group, &[keeper.account, victim.account]).await.unwrap();
    let liquidate = |max: i64| {
        sdk::liquidate_token(&market.group, &market.usdc.bank, &market.sol.bank, &keeper.account, &keeper_owner.pubkey(), &victim.account, max, metas.clone())
    };
    for max in [1, 500 * USDC as i64] {
        let result = bank.send(&[liquidate(max)], &[&keeper_owner]).await;
        let refusals = [code_of(MarginError::LiquidationDoesNotImprove), code_of(MarginError::LiquidationPastPeak)];
        assert!(custom_code(&result).is_some_and(|c| refusals.contains(&c)), "{result:?}");
    }
    let ix = sdk::resolve_bankruptcy(&market.group, &market.usdc.bank, &victim.account, &[], &[(market.sol.bank, market.sol.oracle)]);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::NotBankrupt);

    // Within the bound (the demo's 0.95 / 0.98) the same account is liquidated.
    let within = bank_config(sol.oracle, sol.feed_id, (950_000, 980_000), (1_200_000, 1_100_000));
    bank.send(&[sdk::update_collateral_bank(&market.group, &market.admin.pubkey(), &market.sol.bank, within)], &[]).await.unwrap();
    let before = onchain_health(&mut bank, &market.group, &victim.account, risk_engine::health::HealthKind::LiquidationEnd).await.unwrap();
    bank.send(&[liquidate(500 * USDC as i64)], &[&keeper_owner]).await.unwrap();
    let after = onchain_health(&mut bank, &market.group, &victim.account, risk_engine::health::HealthKind::LiquidationEnd).await.unwrap();
    assert!(after.health_native > before.health_native);
}

//! World builders on the embedded bank, shared by the demo, the crash simulation, the fuzzer
//! and the tests: a group with USDC and SOL banks, traders, SOL derivatives (a perp, a call
//! and a put), block trades and on-chain health reads.

use crate::health::HealthSnapshot;
use crate::local_bank::LocalBank;
use crate::pyth::{feed_id_for, PythPrice};
use crate::sdk::{self, BankKeys};
use anchor_lang::prelude::Pubkey;
use anchor_lang::AnchorDeserialize;
use anchor_spl::token::spl_token;
use anyhow::{anyhow, Result};
use portfolio_margin::health::HealthReport;
use portfolio_margin::state::GroupParams;
use portfolio_margin::state::{BankConfig, CollateralBank, PPM};
use risk_engine::health::HealthKind;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A group with a USDC (quote) bank and a SOL bank on the embedded bank.
pub struct DemoMarket {
    pub admin: Keypair,
    pub group: Pubkey,
    pub usdc: BankKeys,
    pub sol: BankKeys,
    pub usdc_feed: [u8; 32],
    pub sol_feed: [u8; 32],
}

/// Default configuration of a collateral bank for `oracle`/`feed_id`.
pub fn bank_config(oracle: Pubkey, feed_id: [u8; 32], asset: (u32, u32), liability: (u32, u32)) -> BankConfig {
    BankConfig {
        oracle,
        feed_id,
        init_asset_weight_ppm: asset.0,
        maint_asset_weight_ppm: asset.1,
        init_liability_weight_ppm: liability.0,
        maint_liability_weight_ppm: liability.1,
        deposit_limit_native: u64::MAX / 4,
        max_price_age_seconds: 60,
        max_confidence_ppm: 20_000,
    }
}

/// Posts a fresh, fully verified USD price for `feed` on `oracle`.
pub async fn post_price(bank: &mut LocalBank, oracle: &Pubkey, feed: [u8; 32], price: f64) {
    let now = bank.now().await;
    bank.set_pyth_price(oracle, &PythPrice::usd(feed, price, 5, now), None);
}

/// Lists a bank for `mint` and returns its keys.
pub async fn list_bank(
    bank: &mut LocalBank,
    admin: &Keypair,
    group: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
    config: BankConfig,
) -> Result<BankKeys> {
    let ix = sdk::add_collateral_bank(group, &admin.pubkey(), &bank.payer().pubkey(), mint, token_program, config);
    bank.send(&[ix], &[admin]).await?;
    let key = sdk::bank_address(group, mint);
    let state: CollateralBank = bank.load(&key).await;
    Ok(BankKeys::of(key, &state))
}

/// Creates the demo group: USDC (6 decimals, weights 1) and SOL (9 decimals, init 0.8 / maint
/// 0.9 asset, 1.2 / 1.1 liability), with oracles at $1 and $150.
pub async fn setup_market(bank: &mut LocalBank) -> Result<DemoMarket> {
    let admin = bank.payer();
    let usdc_mint = bank.create_mint(&spl_token::ID, 6, &[]).await?.pubkey();
    let sol_mint = bank.create_mint(&spl_token::ID, 9, &[]).await?.pubkey();
    let params = GroupParams {
        unrealized_init_weight_ppm: 500_000,
        conf_multiplier_ppm: 2 * PPM,
        liquidation_fee_ppm: 20_000,
        insurance_share_ppm: 250_000,
    };
    bank.send(&[sdk::create_group(&admin.pubkey(), &admin.pubkey(), &usdc_mint, 0, params)], &[]).await?;
    let group = sdk::group_address(&admin.pubkey(), 0);
    let (usdc_oracle, sol_oracle) = (Pubkey::new_unique(), Pubkey::new_unique());
    let (usdc_feed, sol_feed) = (feed_id_for("USDC/USD"), feed_id_for("SOL/USD"));
    post_price(bank, &usdc_oracle, usdc_feed, 1.0).await;
    post_price(bank, &sol_oracle, sol_feed, 150.0).await;
    let usdc_config = bank_config(usdc_oracle, usdc_feed, (PPM, PPM), (PPM, PPM));
    let usdc = list_bank(bank, &admin, &group, &usdc_mint, &spl_token::ID, usdc_config).await?;
    let sol_config = bank_config(sol_oracle, sol_feed, (800_000, 900_000), (1_200_000, 1_100_000));
    let sol = list_bank(bank, &admin, &group, &sol_mint, &spl_token::ID, sol_config).await?;
    Ok(DemoMarket { admin, group, usdc, sol, usdc_feed, sol_feed })
}

/// A funded trader with a margin account.
pub struct Trader {
    pub owner: Keypair,
    pub account: Pubkey,
    pub usdc_wallet: Pubkey,
    pub sol_wallet: Pubkey,
}

/// Creates a trader with `usdc` and `sol` (native units) in wallets and an empty margin account.
pub async fn new_trader(bank: &mut LocalBank, market: &DemoMarket, usdc: u64, sol: u64) -> Result<Trader> {
    let owner = Keypair::new();
    bank.airdrop(&owner.pubkey(), 1_000_000_000).await?;
    let usdc_wallet = bank.create_token_account(&market.usdc.mint, &owner.pubkey(), &spl_token::ID).await?;
    let sol_wallet = bank.create_token_account(&market.sol.mint, &owner.pubkey(), &spl_token::ID).await?;
    bank.mint_to(&market.usdc.mint, &usdc_wallet, &spl_token::ID, usdc).await?;
    bank.mint_to(&market.sol.mint, &sol_wallet, &spl_token::ID, sol).await?;
    let ix = sdk::create_margin_account(&market.group, &owner.pubkey(), &owner.pubkey(), 0);
    bank.send(&[ix], &[&owner]).await?;
    let account = sdk::margin_account_address(&market.group, &owner.pubkey(), 0);
    Ok(Trader { owner, account, usdc_wallet, sol_wallet })
}

/// A trader ([`new_trader`]) who has deposited all of its `usdc` and `sol` (native units).
pub async fn funded_trader(bank: &mut LocalBank, market: &DemoMarket, usdc: u64, sol: u64) -> Result<Trader> {
    let trader = new_trader(bank, market, usdc, sol).await?;
    let owner = trader.owner.insecure_clone();
    if usdc > 0 {
        bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), usdc)], &[&owner]).await?;
    }
    if sol > 0 {
        bank.send(&[sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &owner.pubkey(), sol)], &[&owner]).await?;
    }
    Ok(trader)
}

/// Runs `health_check` on-chain and decodes the returned breakdown.
pub async fn onchain_health(bank: &mut LocalBank, group: &Pubkey, account: &Pubkey, kind: HealthKind) -> Result<HealthReport> {
    let snapshot = HealthSnapshot::load(bank, group, account).await?;
    let metas = snapshot.health_accounts(&snapshot.account);
    let outcome = bank.send(&[sdk::health_check(group, account, i64::MIN, kind as u8, metas)], &[]).await?;
    HealthReport::deserialize(&mut &outcome.return_data[..]).map_err(|e| anyhow!("bad return data: {e}"))
}

/// Derivatives on SOL: an underlying linked to the SOL bank, a perp, a 160 call and a 130
/// put expiring in 30 days, with vols posted and risk arrays fresh.
pub struct Derivatives {
    pub sol: Pubkey,
    pub perp: MarketKeysNamed,
    pub call: MarketKeysNamed,
    pub put: MarketKeysNamed,
    pub expiry_ts: i64,
}

/// A market's keys with a label for printing.
#[derive(Clone, Copy, Debug)]
pub struct MarketKeysNamed {
    pub keys: sdk::MarketKeys,
    pub label: &'static str,
}

/// Lot size of the demo underlyings: 0.001 units (10^-3).
pub const LOT_SIZE_EXPONENT: i8 = -3;
/// Quote native units per dollar per lot at that lot size ($1 x 0.001 = 1,000 micro-USD).
pub const NATIVE_PER_DOLLAR_PER_LOT: i64 = 1_000;

/// Default underlying configuration for `oracle`.
pub fn underlying_config(oracle: Pubkey, feed_id: [u8; 32]) -> portfolio_margin::instructions::UnderlyingConfig {
    portfolio_margin::instructions::UnderlyingConfig {
        oracle,
        feed_id,
        max_price_age_seconds: 60,
        max_confidence_ppm: 20_000,
        lot_size_exponent: LOT_SIZE_EXPONENT,
        grid: portfolio_margin::state::GridConfig::from(&risk_engine::scenario::GridParams::default()),
        array_price_tolerance_ppm: 10_000,
        array_vol_tolerance_ppm: 20_000,
        array_max_age_seconds: 3_600,
    }
}

/// Smallest non-zero position in the demo markets: 10 lots = 0.01 SOL ($1.50 at $150). The
/// liquidator's part of the fee on it (2% x 75% x $1.50 = $0.0225) pays for a liquidation
/// transaction with a 100,000-lamport budget (a 5,000-lamport signature plus priority; $0.015
/// at $150) one and a half times. See README "Dust".
pub const MIN_POSITION_LOTS: i64 = 10;

/// Default perp configuration: 2% band, hourly funding capped at 0.1% a period over a 100 SOL
/// depth (100 SOL of fills move the mark premium fully), at most 20% of a position's notional
/// realised per day through `settle_pnl`, the demo's minimum position.
/// Open-interest cap of the demo's markets, lots: 1,000,000,000 lots of 0.001 SOL (a million SOL),
/// far above what the demo, the crash simulations and the tests trade.
pub const DEMO_MAX_OPEN_INTEREST_LOTS: i64 = 1_000_000_000;

pub fn perp_config() -> portfolio_margin::instructions::PerpConfig {
    portfolio_margin::instructions::PerpConfig {
        price_band_ppm: 20_000,
        funding_period_seconds: 3_600,
        max_funding_rate_ppm: 1_000,
        funding_depth_lots: 100_000,
        pnl_settle_limit_ppm: 200_000,
        min_position_lots: MIN_POSITION_LOTS,
        max_open_interest_lots: DEMO_MAX_OPEN_INTEREST_LOTS,
    }
}

/// Default option market configuration.
pub fn option_config(kind: portfolio_margin::state::MarketKind, strike_dollars: i64, expiry_ts: i64) -> portfolio_margin::instructions::OptionConfig {
    use fixed::types::I32F32;
    portfolio_margin::instructions::OptionConfig {
        kind,
        strike_per_lot_native: strike_dollars * NATIVE_PER_DOLLAR_PER_LOT,
        expiry_ts,
        price_band_ppm: 100_000,
        min_vol_bits: I32F32::from_num(0.05).to_bits(),
        max_vol_bits: I32F32::from_num(5).to_bits(),
        max_vol_change_bits: I32F32::from_num(0.5).to_bits(),
        vol_max_age_seconds: 3_600,
        settlement_window_seconds: 60,
        settlement_challenge_seconds: 600,
        min_position_lots: MIN_POSITION_LOTS,
        max_open_interest_lots: DEMO_MAX_OPEN_INTEREST_LOTS,
    }
}

/// Lists an option market at the group's next index and posts `vol`.
pub async fn list_option(
    bank: &mut LocalBank,
    market: &DemoMarket,
    underlying: &Pubkey,
    config: portfolio_margin::instructions::OptionConfig,
    vol: f64,
) -> Result<sdk::MarketKeys> {
    let group: portfolio_margin::state::Group = bank.load(&market.group).await;
    let admin = market.admin.pubkey();
    let payer = bank.payer().pubkey();
    bank.send(&[sdk::add_option_market(&market.group, &admin, &payer, underlying, group.market_count, config)], &[]).await?;
    let key = sdk::market_address(&market.group, group.market_count);
    let vol_bits = fixed::types::I32F32::from_num(vol).to_bits();
    bank.send(&[sdk::set_volatility(&market.group, &admin, &key, vol_bits)], &[]).await?;
    let keys = market_keys(bank, market, &key).await;
    bank.send(&[sdk::refresh_risk_array(&keys)], &[]).await?;
    Ok(keys)
}

/// The keys instructions need for `market_key`.
pub async fn market_keys(bank: &mut LocalBank, market: &DemoMarket, market_key: &Pubkey) -> sdk::MarketKeys {
    let state: portfolio_margin::state::Market = bank.load(market_key).await;
    let underlying: portfolio_margin::state::Underlying = bank.load(&state.underlying).await;
    sdk::MarketKeys {
        group: market.group,
        market: *market_key,
        underlying: state.underlying,
        oracle: underlying.oracle,
        quote_bank: market.usdc.bank,
    }
}

/// Adds SOL derivatives to the demo group. The SOL bank is linked to the underlying, so SOL
/// collateral hedges inside the grid, and its weights are raised to cover only liquidation
/// slippage and oracle risk (init 0.95, maint 0.98).
pub async fn setup_derivatives(bank: &mut LocalBank, market: &DemoMarket) -> Result<Derivatives> {
    let admin = market.admin.pubkey();
    let payer = bank.payer().pubkey();
    let sol_config = bank_config(market.sol.oracle, market.sol_feed, (950_000, 980_000), (1_050_000, 1_020_000));
    bank.send(&[sdk::update_collateral_bank(&market.group, &admin, &market.sol.bank, sol_config)], &[]).await?;
    let group: portfolio_margin::state::Group = bank.load(&market.group).await;
    let index = group.underlying_count;
    let config = underlying_config(market.sol.oracle, market.sol_feed);
    bank.send(&[sdk::add_underlying(&market.group, &admin, &payer, index, Some(market.sol.bank), config)], &[]).await?;
    let sol = sdk::underlying_address(&market.group, index);

    let perp_index = group.market_count;
    let perp_config = perp_config();
    bank.send(&[sdk::add_perp_market(&market.group, &admin, &payer, &sol, perp_index, perp_config)], &[]).await?;
    let perp_keys = market_keys(bank, market, &sdk::market_address(&market.group, perp_index)).await;
    bank.send(&[sdk::refresh_risk_array(&perp_keys)], &[]).await?;

    let expiry_ts = bank.now().await + 30 * 86_400;
    use portfolio_margin::state::MarketKind;
    let call = list_option(bank, market, &sol, option_config(MarketKind::Call, 160, expiry_ts), 0.6).await?;
    let put = list_option(bank, market, &sol, option_config(MarketKind::Put, 130, expiry_ts), 0.6).await?;
    Ok(Derivatives {
        sol,
        perp: MarketKeysNamed { keys: perp_keys, label: "SOL-PERP" },
        call: MarketKeysNamed { keys: call, label: "SOL-160-C" },
        put: MarketKeysNamed { keys: put, label: "SOL-130-P" },
        expiry_ts,
    })
}

/// Health accounts covering both sides of a fill in `market_key` (extra accounts are ignored
/// on-chain, so the union is safe).
pub async fn fill_health_accounts(
    bank: &mut LocalBank,
    market: &DemoMarket,
    accounts: &[Pubkey],
    market_key: &Pubkey,
) -> Result<Vec<anchor_lang::prelude::AccountMeta>> {
    crate::health::fill_health_accounts_for(bank, &market.group, &market.usdc.bank, accounts, market_key).await
}

/// A block trade: `buyer` buys `lots` from `seller` at `price_per_lot_native`, both owners signing.
pub async fn block_trade(
    bank: &mut LocalBank,
    market: &DemoMarket,
    keys: &sdk::MarketKeys,
    buyer: &Trader,
    seller: &Trader,
    lots: i64,
    price_per_lot_native: i64,
) -> std::result::Result<crate::local_bank::TxOutcome, solana_program_test::BanksClientError> {
    let metas = fill_health_accounts(bank, market, &[buyer.account, seller.account], &keys.market).await.expect("health accounts");
    let ix = sdk::trade(keys, &buyer.account, &buyer.owner.pubkey(), &seller.account, &seller.owner.pubkey(), lots, price_per_lot_native, metas);
    bank.send(&[ix], &[&buyer.owner, &seller.owner]).await
}

/// Model value per lot of an option market now (quote native units, rounded to nearest), from
/// its fresh risk array: a price every band accepts.
pub async fn model_price_per_lot(bank: &mut LocalBank, market_key: &Pubkey) -> i64 {
    let state: portfolio_margin::state::Market = bank.load(market_key).await;
    fixed::types::I32F32::from_bits(state.array_value_bits).round().to_num::<i64>()
}

//! Parameter and account validation of the market and liquidation instructions: every refusal
//! has its own error and leaves the touched accounts unchanged.

use anchor_lang::prelude::Pubkey;
use fixed::types::I32F32;
use pm_client::world::{block_trade, option_config, setup_derivatives, underlying_config, Derivatives};
use pm_client::local_bank::LocalBank;
use pm_client::pyth::PythPrice;
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::PerpConfig;
use portfolio_margin::state::{Group, MarketKind};
use solana_signer::Signer;

const USDC: u64 = 1_000_000;

async fn setup() -> (LocalBank, DemoMarket, Derivatives) {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let d = setup_derivatives(&mut bank, &market).await.unwrap();
    (bank, market, d)
}

#[tokio::test]
async fn underlying_and_market_parameters_are_validated() {
    let (mut bank, market, d) = setup().await;
    let admin = market.admin.pubkey();
    let group: Group = bank.load(&market.group).await;
    let before = snapshot(&mut bank, &[market.group, market.sol.bank]).await;
    let base = underlying_config(market.sol.oracle, market.sol_feed);
    let index = group.underlying_count;
    let mut bad_grid = base;
    bad_grid.grid.price_steps = 8;
    let cases = [
        (bad_grid, MarginError::InvalidGridParams),
        (portfolio_margin::instructions::UnderlyingConfig { lot_size_exponent: 9, ..base }, MarginError::InvalidLotSize),
        (portfolio_margin::instructions::UnderlyingConfig { array_price_tolerance_ppm: 60_000, ..base }, MarginError::InvalidArrayTolerance),
    ];
    for (config, expected) in cases {
        let ix = sdk::add_underlying(&market.group, &admin, &admin, index, None, config);
        assert_margin_error(bank.send(&[ix], &[]).await, expected);
    }
    // The SOL bank is already linked to the SOL underlying.
    let ix = sdk::add_underlying(&market.group, &admin, &admin, index, Some(market.sol.bank), base);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::BankAlreadyLinked);
    assert_eq!(before, snapshot(&mut bank, &[market.group, market.sol.bank]).await);

    // Markets.
    let market_index = group.market_count;
    let perp = PerpConfig {
        price_band_ppm: 0,
        funding_period_seconds: 3_600,
        max_funding_rate_ppm: 1_000,
        funding_depth_lots: 100_000,
        pnl_settle_limit_ppm: 200_000,
        min_position_lots: 10,
        max_open_interest_lots: 0,
    };
    let ix = sdk::add_perp_market(&market.group, &admin, &admin, &d.sol, market_index, perp);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::InvalidMarketParams);
    let no_minimum = PerpConfig { price_band_ppm: 20_000, min_position_lots: 0, ..perp };
    let ix = sdk::add_perp_market(&market.group, &admin, &admin, &d.sol, market_index, no_minimum);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::InvalidMarketParams);
    // An open-interest cap below the minimum position could never be traded.
    let tiny_cap = PerpConfig { price_band_ppm: 20_000, max_open_interest_lots: 9, ..perp };
    let ix = sdk::add_perp_market(&market.group, &admin, &admin, &d.sol, market_index, tiny_cap);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::InvalidMarketParams);
    let now = bank.now().await;
    let option_cases = [
        (portfolio_margin::instructions::OptionConfig { strike_per_lot_native: 0, ..option_config(MarketKind::Call, 1, now + 86_400) }, MarginError::InvalidStrike),
        (option_config(MarketKind::Call, 150, now - 1), MarginError::ExpiryInPast),
        (option_config(MarketKind::Perp, 150, now + 86_400), MarginError::InvalidMarketParams),
        (
            portfolio_margin::instructions::OptionConfig { min_vol_bits: I32F32::from_num(6).to_bits(), ..option_config(MarketKind::Put, 150, now + 86_400) },
            MarginError::InvalidMarketParams,
        ),
        // A minimum position of 0 lots, or above the largest allowed.
        (portfolio_margin::instructions::OptionConfig { min_position_lots: 0, ..option_config(MarketKind::Put, 150, now + 86_400) }, MarginError::InvalidMarketParams),
        (
            portfolio_margin::instructions::OptionConfig {
                min_position_lots: portfolio_margin::state::MIN_POSITION_LOTS_MAX + 1,
                ..option_config(MarketKind::Put, 150, now + 86_400)
            },
            MarginError::InvalidMarketParams,
        ),
    ];
    for (config, expected) in option_cases {
        let ix = sdk::add_option_market(&market.group, &admin, &admin, &d.sol, market_index, config);
        assert_margin_error(bank.send(&[ix], &[]).await, expected);
    }
    assert_eq!(before, snapshot(&mut bank, &[market.group, market.sol.bank]).await);
}

#[tokio::test]
async fn instructions_refuse_the_wrong_kind_of_market_and_the_wrong_underlying() {
    let (mut bank, market, d) = setup().await;
    let admin = market.admin.pubkey();
    let keys = [d.perp.keys.market, d.call.keys.market];
    let before = snapshot(&mut bank, &keys).await;
    // Vol is for options; funding for perps.
    let ix = sdk::set_volatility(&market.group, &admin, &d.perp.keys.market, I32F32::from_num(0.5).to_bits());
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::NotAnOptionMarket);
    assert_margin_error(bank.send(&[sdk::update_funding(&d.call.keys)], &[]).await, MarginError::NotAPerpMarket);
    // A market with another underlying's account: list a second underlying and pass it.
    let group: Group = bank.load(&market.group).await;
    let other = sdk::underlying_address(&market.group, group.underlying_count);
    let ix = sdk::add_underlying(&market.group, &admin, &admin, group.underlying_count, None, underlying_config(market.sol.oracle, market.sol_feed));
    bank.send(&[ix], &[]).await.unwrap();
    let wrong = sdk::MarketKeys { underlying: other, ..d.perp.keys };
    assert_margin_error(bank.send(&[sdk::refresh_risk_array(&wrong)], &[]).await, MarginError::WrongUnderlying);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

#[tokio::test]
async fn trades_refuse_negative_prices_and_oversized_positions() {
    let (mut bank, market, d) = setup().await;
    let a = new_trader(&mut bank, &market, 1_000 * USDC, 0).await.unwrap();
    let b = new_trader(&mut bank, &market, 1_000 * USDC, 0).await.unwrap();
    for t in [&a, &b] {
        let owner = t.owner.insecure_clone();
        bank.send(&[sdk::deposit(&t.account, &market.usdc, &t.usdc_wallet, &owner.pubkey(), 1_000 * USDC)], &[&owner]).await.unwrap();
    }
    let keys = [a.account, b.account, d.perp.keys.market];
    let before = snapshot(&mut bank, &keys).await;
    let result = block_trade(&mut bank, &market, &d.perp.keys, &a, &b, 1, -1).await;
    assert_margin_error(result, MarginError::InvalidTradePrice);
    let result = block_trade(&mut bank, &market, &d.perp.keys, &a, &b, 1i64 << 31, 150_000).await;
    assert_margin_error(result, MarginError::PositionTooLarge);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

/// A market's open-interest cap: fills that raise open interest past it are refused (nothing
/// changes), fills that lower it always go through, and the cap can be reached exactly.
#[tokio::test]
async fn open_interest_is_capped_per_market() {
    let (mut bank, market, d) = setup().await;
    let admin = market.admin.pubkey();
    let group: Group = bank.load(&market.group).await;
    let index = group.market_count;
    let config = PerpConfig { max_open_interest_lots: 1_000, ..pm_client::world::perp_config() };
    bank.send(&[sdk::add_perp_market(&market.group, &admin, &admin, &d.sol, index, config)], &[]).await.unwrap();
    let keys = sdk::MarketKeys { market: sdk::market_address(&market.group, index), ..d.perp.keys };
    bank.send(&[sdk::refresh_risk_array(&keys)], &[]).await.unwrap();
    let a = new_trader(&mut bank, &market, 10_000 * USDC, 0).await.unwrap();
    let b = new_trader(&mut bank, &market, 10_000 * USDC, 0).await.unwrap();
    for t in [&a, &b] {
        let owner = t.owner.insecure_clone();
        bank.send(&[sdk::deposit(&t.account, &market.usdc, &t.usdc_wallet, &owner.pubkey(), 10_000 * USDC)], &[&owner]).await.unwrap();
    }
    block_trade(&mut bank, &market, &keys, &a, &b, 600, 150_000).await.unwrap();
    let state: portfolio_margin::state::Market = bank.load(&keys.market).await;
    assert_eq!(state.open_interest_lots, 600);
    // 600 + 500 > 1,000: refused, nothing changes.
    let watched = [a.account, b.account, keys.market];
    let before = snapshot(&mut bank, &watched).await;
    assert_margin_error(block_trade(&mut bank, &market, &keys, &a, &b, 500, 150_000).await, MarginError::OpenInterestCapExceeded);
    assert_eq!(before, snapshot(&mut bank, &watched).await);
    // Reducing is always allowed; then the cap can be reached exactly, not passed.
    block_trade(&mut bank, &market, &keys, &b, &a, 300, 150_000).await.unwrap();
    block_trade(&mut bank, &market, &keys, &a, &b, 700, 150_000).await.unwrap();
    let state: portfolio_margin::state::Market = bank.load(&keys.market).await;
    assert_eq!(state.open_interest_lots, 1_000);
    assert_margin_error(block_trade(&mut bank, &market, &keys, &a, &b, 10, 150_000).await, MarginError::OpenInterestCapExceeded);
}

#[tokio::test]
async fn settlement_needs_a_price_inside_the_window_until_the_fallback_opens() {
    let (mut bank, market, d) = setup().await;
    let now = bank.now().await;
    bank.advance_clock(d.expiry_ts - now + 2 * 3_600).await;
    // Published two hours after expiry: outside the one-minute window.
    let late = PythPrice::usd(market.sol_feed, 150.0, 5, d.expiry_ts + 2 * 3_600);
    bank.set_pyth_price(&market.sol.oracle, &late, None);
    let before = snapshot(&mut bank, &[d.call.keys.market]).await;
    let propose = sdk::propose_settlement_price(&d.call.keys, &market.sol.oracle);
    assert_margin_error(bank.send(std::slice::from_ref(&propose), &[]).await, MarginError::SettlementWindowPassed);
    assert_eq!(before, snapshot(&mut bank, &[d.call.keys.market]).await);
    // Nothing qualifying was ever proposed: a day after the window, the earliest update posted
    // from then on qualifies, so the market can always settle.
    bank.advance_clock(86_400).await;
    bank.send(std::slice::from_ref(&propose), &[]).await.unwrap();
    let state: portfolio_margin::state::Market = bank.load(&d.call.keys.market).await;
    assert_eq!((state.settlement_price_native, state.settlement_publish_ts), (150_000, d.expiry_ts + 2 * 3_600));
    // Updates that are not real Pyth receiver accounts, or of another feed, are refused.
    let fake = Pubkey::new_unique();
    bank.set_pyth_price(&fake, &PythPrice::usd(market.sol_feed, 100.0, 5, d.expiry_ts), Some(Pubkey::new_unique()));
    assert_margin_error(bank.send(&[sdk::propose_settlement_price(&d.call.keys, &fake)], &[]).await, MarginError::OracleWrongOwner);
    let other_feed = Pubkey::new_unique();
    bank.set_pyth_price(&other_feed, &PythPrice::usd(market.usdc_feed, 1.0, 5, d.expiry_ts), None);
    assert_margin_error(bank.send(&[sdk::propose_settlement_price(&d.call.keys, &other_feed)], &[]).await, MarginError::OracleFeedMismatch);
}

#[tokio::test]
async fn a_liquidation_maximum_beyond_the_position_is_clamped_to_it() {
    let (mut bank, market, d) = setup().await;
    let victim = new_trader(&mut bank, &market, 1_000 * USDC, 0).await.unwrap();
    let dealer = new_trader(&mut bank, &market, 100_000 * USDC, 0).await.unwrap();
    for t in [&victim, &dealer] {
        let owner = t.owner.insecure_clone();
        let amount = if t.account == victim.account { 1_000 * USDC } else { 100_000 * USDC };
        bank.send(&[sdk::deposit(&t.account, &market.usdc, &t.usdc_wallet, &owner.pubkey(), amount)], &[&owner]).await.unwrap();
    }
    block_trade(&mut bank, &market, &d.perp.keys, &victim, &dealer, 30_000, 150_000).await.unwrap();
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 135.0).await;
    bank.send(&[sdk::refresh_risk_array(&d.perp.keys)], &[]).await.unwrap();
    let metas = pm_client::health::fill_health_accounts_for(&mut bank, &market.group, &market.usdc.bank, &[dealer.account, victim.account], &d.perp.keys.market)
        .await
        .unwrap();
    // 30,001 lots of a 30,000-lot position: clamped (a race that shrank the position must not
    // refuse the step), and the program takes only what reaches the target.
    let ix = sdk::liquidate_position(&d.perp.keys, &dealer.account, &dealer.owner.pubkey(), &victim.account, 30_001, metas);
    bank.send(&[ix], &[&dealer.owner]).await.unwrap();
    let state: portfolio_margin::state::MarginAccount = bank.load(&victim.account).await;
    let left = state.positions[state.position_index(&d.perp.keys.market).unwrap()].base_lots;
    assert!(left > 0 && left < 30_000, "{left}");
    let end = onchain_health(&mut bank, &market.group, &victim.account, risk_engine::health::HealthKind::LiquidationEnd).await.unwrap();
    assert!(end.health_native >= 0);
}

#[tokio::test]
async fn a_ninth_token_and_a_bank_of_another_group_are_refused() {
    use anchor_spl::token::spl_token;
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let trader = new_trader(&mut bank, &market, 10 * USDC, 0).await.unwrap();
    let owner = trader.owner.insecure_clone();
    bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), USDC)], &[&owner]).await.unwrap();
    // Seven more tokens fill the eight balance slots; the ninth is refused.
    let mut extra = Vec::new();
    for i in 0..8 {
        let mint = bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
        let oracle = anchor_lang::prelude::Pubkey::new_unique();
        let feed = pm_client::pyth::feed_id_for(&format!("T{i}/USD"));
        post_price(&mut bank, &oracle, feed, 1.0).await;
        let config = bank_config(oracle, feed, (900_000, 950_000), (1_100_000, 1_050_000));
        let keys = list_bank(&mut bank, &market.admin, &market.group, &mint, &spl_token::ID, config).await.unwrap();
        let wallet = bank.create_token_account(&mint, &owner.pubkey(), &spl_token::ID).await.unwrap();
        bank.mint_to(&mint, &wallet, &spl_token::ID, USDC).await.unwrap();
        extra.push((keys, wallet));
    }
    for (keys, wallet) in &extra[..7] {
        bank.send(&[sdk::deposit(&trader.account, keys, wallet, &owner.pubkey(), USDC)], &[&owner]).await.unwrap();
    }
    let (ninth, wallet) = extra[7];
    let state = [trader.account, ninth.bank, ninth.vault, wallet];
    let before = snapshot(&mut bank, &state).await;
    let ix = sdk::deposit(&trader.account, &ninth, &wallet, &owner.pubkey(), USDC);
    assert_margin_error(bank.send(&[ix], &[&owner]).await, MarginError::CollateralSlotsFull);
    assert_eq!(before, snapshot(&mut bank, &state).await);

    // A second group's bank cannot take deposits for this group's account.
    let admin = bank.payer();
    let params = portfolio_margin::instructions::GroupParams {
        unrealized_init_weight_ppm: 0,
        conf_multiplier_ppm: 0,
        liquidation_fee_ppm: 0,
        insurance_share_ppm: 0,
    };
    bank.send(&[sdk::create_group(&admin.pubkey(), &admin.pubkey(), &market.usdc.mint, 9, params)], &[]).await.unwrap();
    let other_group = sdk::group_address(&admin.pubkey(), 9);
    let config = bank_config(market.usdc.oracle, market.usdc_feed, (1_000_000, 1_000_000), (1_000_000, 1_000_000));
    let other_bank = list_bank(&mut bank, &admin, &other_group, &market.usdc.mint, &spl_token::ID, config).await.unwrap();
    let state = [trader.account, other_bank.bank, other_bank.vault, trader.usdc_wallet];
    let before = snapshot(&mut bank, &state).await;
    let ix = sdk::deposit(&trader.account, &other_bank, &trader.usdc_wallet, &owner.pubkey(), USDC);
    assert_margin_error(bank.send(&[ix], &[&owner]).await, MarginError::WrongGroup);
    assert_eq!(before, snapshot(&mut bank, &state).await);
}

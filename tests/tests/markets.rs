//! Perps and options on the embedded bank: risk arrays, vol, trades, funding, settlement and
//! portfolio health. Every rejected instruction is checked for its exact error and for leaving
//! the touched accounts unchanged.

use anchor_lang::prelude::Pubkey;
use fixed::types::I32F32;
use pm_client::world::{block_trade, fill_health_accounts, list_option, model_price_per_lot, option_config, setup_derivatives, Derivatives};
use pm_client::health::HealthSnapshot;
use pm_client::local_bank::LocalBank;
use pm_client::pyth::PythPrice;
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::state::{MarginAccount, Market, MarketKind};
use risk_engine::health::HealthKind;
use solana_signer::Signer;

const SOL: u64 = 1_000_000_000;
const USDC: u64 = 1_000_000;
/// Lots per SOL at the demo lot size (0.001).
const LOTS_PER_SOL: i64 = 1_000;

struct World {
    bank: LocalBank,
    market: DemoMarket,
    derivatives: Derivatives,
    /// 10 SOL deposited.
    trader: Trader,
    /// 100,000 USDC deposited: the counterparty.
    dealer: Trader,
}

async fn world() -> World {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let derivatives = setup_derivatives(&mut bank, &market).await.unwrap();
    let trader = funded_trader(&mut bank, &market, 0, 10 * SOL).await.unwrap();
    let dealer = funded_trader(&mut bank, &market, 100_000 * USDC, 0).await.unwrap();
    World { bank, market, derivatives, trader, dealer }
}

async fn trader_health(w: &mut World, kind: HealthKind) -> portfolio_margin::health::HealthReport {
    onchain_health(&mut w.bank, &w.market.group, &w.trader.account, kind).await.unwrap()
}



/// A market whose stored kind byte is no kind (state forced: no instruction writes one) is
/// never read as some kind: health, refresh and the instructions of either kind refuse it, each
/// leaving everything unchanged.
#[tokio::test]
async fn an_unknown_market_kind_is_an_error_everywhere() {
    let mut w = world().await;
    let perp = w.derivatives.perp.keys;
    block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, LOTS_PER_SOL, 150_000).await.unwrap();
    let mut data = w.bank.account_data(&perp.market).await.unwrap();
    let mut state: Market = bytemuck::pod_read_unaligned(&data[8..8 + core::mem::size_of::<Market>()]);
    state.kind = 7;
    data[8..8 + core::mem::size_of::<Market>()].copy_from_slice(bytemuck::bytes_of(&state));
    w.bank.set_account_data(&perp.market, data).await;
    let keys = [perp.market, w.trader.account, w.dealer.account, w.market.group];
    let before = snapshot_accounts(&mut w.bank, &keys).await;
    let health = onchain_health(&mut w.bank, &w.market.group, &w.trader.account, HealthKind::Maint).await;
    assert!(format!("{health:?}").contains(&format!("{:#x}", 6000 + MarginError::UnknownMarketKind as u32)), "{health:?}");
    assert_margin_error(w.bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await, MarginError::UnknownMarketKind);
    assert_margin_error(w.bank.send(&[sdk::update_funding(&perp)], &[]).await, MarginError::NotAPerpMarket);
    let vol = sdk::set_volatility(&w.market.group, &w.market.admin.pubkey(), &perp.market, I32F32::from_num(0.6).to_bits());
    assert_margin_error(w.bank.send(&[vol], &[&w.market.admin]).await, MarginError::NotAnOptionMarket);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &keys).await);
}

#[tokio::test]
async fn covered_call_needs_less_margin_than_its_parts_and_matches_pm_margin() {
    let mut w = world().await;
    let call = w.derivatives.call.keys;
    let price = model_price_per_lot(&mut w.bank, &call.market).await;
    // The trader sells 10 calls (10,000 lots) against its 10 SOL.
    block_trade(&mut w.bank, &w.market, &call, &w.dealer, &w.trader, 10 * LOTS_PER_SOL, price).await.unwrap();
    assert_eq!(position(&mut w.bank, &w.trader.account, &call.market).await, -10 * LOTS_PER_SOL);
    assert_eq!(position(&mut w.bank, &w.dealer.account, &call.market).await, 10 * LOTS_PER_SOL);
    // Premium moved in the quote balance, exactly.
    let premium = 10 * LOTS_PER_SOL * price;
    assert_eq!(quote_balance(&mut w.bank, &w.trader.account, &w.market.usdc.bank).await, premium);
    assert_eq!(quote_balance(&mut w.bank, &w.dealer.account, &w.market.usdc.bank).await, 100_000 * USDC as i64 - premium);

    // On-chain maintenance requirement equals `pm margin` on the same portfolio.
    let maint = trader_health(&mut w, HealthKind::Maint).await;
    let portfolio: pm_client::margin_cli::Portfolio = serde_json::from_str(
        r#"{"underlyings":[{"symbol":"SOL","price":150.0}],
            "collateral":[{"symbol":"SOL","amount":10.0}],
            "positions":[{"underlying":"SOL","kind":"call","strike":160.0,"days_to_expiry":30.0,"vol":0.6,"qty":-10.0}]}"#,
    )
    .unwrap();
    let report = pm_client::margin_cli::margin_report(&portfolio).unwrap();
    let cli_maint_native = (report.maintenance * 1e6).ceil() as i64;
    assert!((maint.requirement_native - cli_maint_native).abs() <= 1, "chain {} vs pm margin {}", maint.requirement_native, cli_maint_native);
    // Initial: the hedged book needs far less than the same positions margined alone.
    let init = trader_health(&mut w, HealthKind::Init).await;
    let standard_initial_native = (report.standard_initial * 1e6) as i64;
    assert!(init.requirement_native < standard_initial_native / 2 + standard_initial_native / 10, "{init:?} vs {standard_initial_native}");
    assert!(init.health_native > 0);
    // The client predicts the chain exactly.
    let snapshot = HealthSnapshot::load(&mut w.bank, &w.market.group, &w.trader.account).await.unwrap();
    let predicted = portfolio_margin::health::HealthReport::from_breakdown(&snapshot.health(HealthKind::Init).unwrap()).unwrap();
    assert_eq!(predicted, init);
}

#[tokio::test]
async fn stale_risk_array_is_refused_until_refreshed() {
    let mut w = world().await;
    let call = w.derivatives.call.keys;
    let price = model_price_per_lot(&mut w.bank, &call.market).await;
    block_trade(&mut w.bank, &w.market, &call, &w.dealer, &w.trader, 1_000, price).await.unwrap();
    // SOL moves 2% (tolerance 1%): the call's array must be refreshed before health can use it.
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 153.0).await;
    let snapshot = HealthSnapshot::load(&mut w.bank, &w.market.group, &w.trader.account).await.unwrap();
    let ix = sdk::health_check(&w.market.group, &w.trader.account, i64::MIN, 0, snapshot.health_accounts(&snapshot.account));
    assert_margin_error(w.bank.send(std::slice::from_ref(&ix), &[]).await, MarginError::RiskArrayStale);
    // A withdrawal fails the same way and changes nothing.
    let keys = [w.trader.account, w.market.sol.bank, w.market.sol.vault];
    let before = snapshot_accounts(&mut w.bank, &keys).await;
    let after = sdk::after_withdrawal(&snapshot.account, &w.market.sol.bank, SOL / 100);
    let withdraw = sdk::withdraw(&w.market.group, &w.trader.account, &w.market.sol, &w.trader.sol_wallet, &w.trader.owner.pubkey(), SOL / 100, snapshot.health_accounts(&after));
    assert_margin_error(w.bank.send(&[withdraw], &[&w.trader.owner]).await, MarginError::RiskArrayStale);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &keys).await);
    // Refreshing first (in the same transaction) makes it pass.
    w.bank.send(&[sdk::refresh_risk_array(&call), ix], &[]).await.unwrap();
    // An array older than the maximum age is stale too.
    w.bank.advance_clock(3_601).await;
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 153.0).await;
    post_price(&mut w.bank, &w.market.usdc.oracle, w.market.usdc_feed, 1.0).await;
    let snapshot = HealthSnapshot::load(&mut w.bank, &w.market.group, &w.trader.account).await.unwrap();
    let ix = sdk::health_check(&w.market.group, &w.trader.account, i64::MIN, 0, snapshot.health_accounts(&snapshot.account));
    assert_margin_error(w.bank.send(std::slice::from_ref(&ix), &[]).await, MarginError::RiskArrayStale);
    // The posted vol is now older than its maximum age too: that stops trading in the market,
    // but never health (nor liquidation): the array refreshes at the last posted vol and marks
    // are shocked against each position.
    let price = model_price_per_lot(&mut w.bank, &call.market).await;
    w.bank.send(&[sdk::refresh_risk_array(&call), ix], &[]).await.unwrap();
    let result = block_trade(&mut w.bank, &w.market, &call, &w.dealer, &w.trader, 1_000, price).await;
    assert_margin_error(result, MarginError::VolatilityStale);
    // The dealer is long the call: with a stale vol it is marked at the vol-down value, lower
    // than the model value (and the client predicts it exactly).
    let dealer = HealthSnapshot::load(&mut w.bank, &w.market.group, &w.dealer.account).await.unwrap();
    let stale_equity = dealer.health(HealthKind::Maint).unwrap().position_equity;
    let model = fixed::types::I80F48::from_num(1_000 * price);
    assert!(stale_equity < model, "stale-vol mark {stale_equity} must be below the model value {model}");
    let ix = sdk::health_check(&w.market.group, &w.dealer.account, i64::MIN, 1, dealer.health_accounts(&dealer.account));
    let onchain = w.bank.send(&[ix], &[]).await.unwrap();
    let report: portfolio_margin::health::HealthReport = anchor_lang::AnchorDeserialize::deserialize(&mut &onchain.return_data[..]).unwrap();
    assert_eq!(report, portfolio_margin::health::HealthReport::from_breakdown(&dealer.health(HealthKind::Maint).unwrap()).unwrap());
}

#[tokio::test]
async fn volatility_must_be_in_band_small_steps_and_fresh() {
    let mut w = world().await;
    let call = w.derivatives.call.keys;
    let before = snapshot_accounts(&mut w.bank, &[call.market]).await;
    let admin = w.market.admin.pubkey();
    let vol = |v: f64| I32F32::from_num(v).to_bits();
    let cases = [(vol(6.0), MarginError::VolatilityOutOfBounds), (vol(0.01), MarginError::VolatilityOutOfBounds), (vol(1.2), MarginError::VolatilityChangeTooLarge)];
    for (bits, expected) in cases {
        assert_margin_error(w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, bits)], &[]).await, expected);
    }
    let stranger = solana_keypair::Keypair::new();
    let ix = sdk::set_volatility(&w.market.group, &stranger.pubkey(), &call.market, vol(0.7));
    assert_margin_error(w.bank.send(&[ix], &[&stranger]).await, MarginError::NotRiskAuthority);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &[call.market]).await);
    // The attack: nine posts in one transaction, each a small step, to take the vol from 0.6
    // to 5.0. Posts at one timestamp count as one change from the vol before them: refused.
    let steps: Vec<_> = (1..=9).map(|i| sdk::set_volatility(&w.market.group, &admin, &call.market, vol(0.6 + 0.49 * i as f64))).collect();
    assert_margin_error(w.bank.send(&steps, &[]).await, MarginError::VolatilityChangeTooLarge);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &[call.market]).await);
    // The rate: max change 0.5 per vol_max_age of an hour, pro rata. Six minutes allow 0.05.
    w.bank.advance_clock(360).await;
    let result = w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, vol(0.66))], &[]).await;
    assert_margin_error(result, MarginError::VolatilityChangeTooLarge);
    w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, vol(0.65))], &[]).await.unwrap();
    // A second post at the same timestamp moves from the vol before the first: no extra room.
    let result = w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, vol(0.7))], &[]).await;
    assert_margin_error(result, MarginError::VolatilityChangeTooLarge);
    w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, vol(0.56))], &[]).await.unwrap();
    // Splitting a move over many posts gains nothing: one hour of posts every 6 minutes moves
    // at most 0.5 in all, like one post an hour later.
    let mut v = 0.56;
    for _ in 0..10 {
        w.bank.advance_clock(360).await;
        v += 0.049;
        w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, vol(v))], &[]).await.unwrap();
        let result = w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, vol(v + 0.002))], &[]).await;
        assert_margin_error(result, MarginError::VolatilityChangeTooLarge);
    }
    // A vol older than an hour is stale, yet the array still refreshes (at that vol) so that
    // health never depends on the risk authority staying alive.
    w.bank.advance_clock(3_601).await;
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 150.0).await;
    w.bank.send(&[sdk::refresh_risk_array(&call)], &[]).await.unwrap();
    let state: Market = w.bank.load(&call.market).await;
    assert_eq!(state.array_vol_bits, vol(v));
    w.bank.send(&[sdk::set_volatility(&w.market.group, &admin, &call.market, vol(0.7))], &[]).await.unwrap();
    w.bank.send(&[sdk::refresh_risk_array(&call)], &[]).await.unwrap();
    let state: Market = w.bank.load(&call.market).await;
    assert_eq!(state.array_vol_bits, vol(0.7));
}

#[tokio::test]
async fn off_market_prices_and_the_same_account_on_both_sides_are_refused() {
    let mut w = world().await;
    let (perp, call) = (w.derivatives.perp.keys, w.derivatives.call.keys);
    let keys = [w.trader.account, w.dealer.account, perp.market, call.market];
    let before = snapshot_accounts(&mut w.bank, &keys).await;
    // Perp band 2% around $150 per SOL = 150,000 per lot.
    for price in [146_900, 153_100] {
        let result = block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, 1_000, price).await;
        assert_margin_error(result, MarginError::TradePriceOffMarket);
    }
    // Option band 10% of (model value + 1% of spot).
    let model = model_price_per_lot(&mut w.bank, &call.market).await;
    let result = block_trade(&mut w.bank, &w.market, &call, &w.dealer, &w.trader, 1_000, model * 2 + 1_000).await;
    assert_margin_error(result, MarginError::TradePriceOffMarket);
    let result = block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.trader, 1_000, 150_000).await;
    assert_margin_error(result, MarginError::SameAccountBothSides);
    let result = block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, 0, 150_000).await;
    assert_margin_error(result, MarginError::ZeroQuantity);
    let wrong_quote = sdk::MarketKeys { quote_bank: w.market.sol.bank, ..perp };
    let result = block_trade(&mut w.bank, &w.market, &wrong_quote, &w.trader, &w.dealer, 1_000, 150_000).await;
    assert_margin_error(result, MarginError::WrongQuoteBank);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &keys).await);
    // Within the band it trades.
    block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, 1_000, 152_000).await.unwrap();
}

#[tokio::test]
async fn a_trade_leaving_either_side_below_initial_health_is_refused() {
    let mut w = world().await;
    let perp = w.derivatives.perp.keys;
    let keys = [w.trader.account, w.dealer.account, perp.market];
    let before = snapshot_accounts(&mut w.bank, &keys).await;
    // The trader (10 SOL, about $1,400 of collateral) cannot sell 100 SOL of perps... it would
    // be flat-to-short 90 SOL: far beyond its initial margin.
    let result = block_trade(&mut w.bank, &w.market, &perp, &w.dealer, &w.trader, 100 * LOTS_PER_SOL, 150_000).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    // Nor buy 100 SOL of perps from the dealer.
    let result = block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, 100 * LOTS_PER_SOL, 150_000).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &keys).await);
    // Selling 10 SOL of perps hedges the 10 SOL held: allowed, and cheap.
    block_trade(&mut w.bank, &w.market, &perp, &w.dealer, &w.trader, 10 * LOTS_PER_SOL, 150_000).await.unwrap();
    let init = trader_health(&mut w, HealthKind::Init).await;
    assert!(init.health_native > 0);
}

#[tokio::test]
async fn expired_markets_reject_trades_and_settle_at_exact_intrinsic_value() {
    let mut w = world().await;
    let (call, put) = (w.derivatives.call.keys, w.derivatives.put.keys);
    let call_price = model_price_per_lot(&mut w.bank, &call.market).await;
    let put_price = model_price_per_lot(&mut w.bank, &put.market).await;
    // The dealer buys 2 calls and 3 puts from the trader.
    block_trade(&mut w.bank, &w.market, &call, &w.dealer, &w.trader, 2 * LOTS_PER_SOL, call_price).await.unwrap();
    block_trade(&mut w.bank, &w.market, &put, &w.dealer, &w.trader, 3 * LOTS_PER_SOL, put_price).await.unwrap();
    let quote_before = quote_balance(&mut w.bank, &w.trader.account, &w.market.usdc.bank).await
        + quote_balance(&mut w.bank, &w.dealer.account, &w.market.usdc.bank).await;

    // Neither a proposal nor a settlement before expiry.
    let archive = Pubkey::new_unique();
    let at_expiry = PythPrice::usd(w.market.sol_feed, 171.25, 5, w.derivatives.expiry_ts);
    w.bank.set_pyth_price(&archive, &at_expiry, None);
    assert_margin_error(w.bank.send(&[sdk::propose_settlement_price(&call, &archive)], &[]).await, MarginError::OptionNotExpired);
    assert_margin_error(w.bank.send(&[sdk::settle_expired_option(&call, &[w.trader.account])], &[]).await, MarginError::OptionNotExpired);
    // Past expiry: no more trades.
    let now = w.bank.now().await;
    w.bank.advance_clock(w.derivatives.expiry_ts - now + 10).await;
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 171.25).await;
    let result = block_trade(&mut w.bank, &w.market, &call, &w.dealer, &w.trader, 1, call_price).await;
    assert_margin_error(result, MarginError::MarketExpired);
    // A price published before expiry cannot be proposed.
    let early_key = Pubkey::new_unique();
    w.bank.set_pyth_price(&early_key, &PythPrice::usd(w.market.sol_feed, 171.25, 5, w.derivatives.expiry_ts - 1), None);
    let before = snapshot_accounts(&mut w.bank, &[call.market, w.trader.account]).await;
    assert_margin_error(
        w.bank.send(&[sdk::propose_settlement_price(&call, &early_key)], &[]).await,
        MarginError::SettlementPriceBeforeExpiry,
    );
    assert_eq!(before, snapshot_accounts(&mut w.bank, &[call.market, w.trader.account]).await);
    // The first caller proposes the print it likes best ($175, published 8 s after expiry)...
    let late_key = Pubkey::new_unique();
    w.bank.set_pyth_price(&late_key, &PythPrice::usd(w.market.sol_feed, 175.0, 5, w.derivatives.expiry_ts + 8), None);
    w.bank.send(&[sdk::propose_settlement_price(&call, &late_key)], &[]).await.unwrap();
    assert_margin_error(w.bank.send(&[sdk::settle_expired_option(&call, &[w.trader.account])], &[]).await, MarginError::SettlementNotFinal);
    // ...and anyone replaces it with the earliest update at or after expiry ($171.25, posted from
    // the archive to an account of their own); a later one cannot come back.
    let (outcome, logs) = w.bank.send_logged(&[sdk::propose_settlement_price(&call, &archive)], &[]).await;
    outcome.unwrap();
    let proposed = sdk::events::<portfolio_margin::events::SettlementPriceProposed>(&logs);
    let call_state: Market = w.bank.load(&call.market).await;
    assert_eq!(proposed.len(), 1, "{logs:?}");
    assert_eq!((proposed[0].market, proposed[0].settlement_price_native, proposed[0].publish_ts), (call.market, 171_250, w.derivatives.expiry_ts));
    assert_eq!(proposed[0].final_ts, call_state.settlement_proposed_ts + call_state.settlement_challenge_seconds as i64);
    assert_margin_error(w.bank.send(&[sdk::propose_settlement_price(&call, &late_key)], &[]).await, MarginError::SettlementNotEarlier);
    for market in [&call, &put] {
        if market.market == put.market {
            w.bank.send(&[sdk::propose_settlement_price(market, &archive)], &[]).await.unwrap();
        }
    }
    // Final after the challenge period: both markets settle at $171.25.
    w.bank.advance_clock(600).await;
    let (outcome, logs) = w.bank.send_logged(&[sdk::settle_expired_option(&call, &[w.trader.account, w.dealer.account])], &[]).await;
    outcome.unwrap();
    let settled_event = sdk::events::<portfolio_margin::events::OptionPositionsSettled>(&logs);
    assert_eq!(settled_event.len(), 1, "{logs:?}");
    let e = &settled_event[0];
    assert_eq!((e.market, e.settlement_price_native, e.intrinsic_per_lot_native), (call.market, 171_250, 11_250));
    assert_eq!((e.accounts_settled, e.open_interest_after_lots), (2, 0));
    w.bank.send(&[sdk::settle_expired_option(&put, &[w.trader.account, w.dealer.account])], &[]).await.unwrap();
    assert_margin_error(w.bank.send(&[sdk::propose_settlement_price(&call, &archive)], &[]).await, MarginError::SettlementAlreadyFinal);
    // Settling the same accounts again (a racing settler) pays nothing more and does not fail.
    let settled = snapshot_accounts(&mut w.bank, &[w.trader.account, w.dealer.account]).await;
    let (outcome, logs) = w.bank.send_logged(&[sdk::settle_expired_option(&call, &[w.trader.account, w.dealer.account])], &[]).await;
    outcome.unwrap();
    assert_eq!(sdk::events::<portfolio_margin::events::OptionPositionsSettled>(&logs)[0].accounts_settled, 0);
    assert_eq!(settled, snapshot_accounts(&mut w.bank, &[w.trader.account, w.dealer.account]).await);
    // Call intrinsic: (171.25 - 160) x 1,000 per lot = 11,250 per lot; put expires worthless.
    let call_state: Market = w.bank.load(&call.market).await;
    assert_eq!(call_state.settlement_price_native, 171_250);
    let payout = 2 * LOTS_PER_SOL * 11_250;
    let dealer_quote = quote_balance(&mut w.bank, &w.dealer.account, &w.market.usdc.bank).await;
    let trader_quote = quote_balance(&mut w.bank, &w.trader.account, &w.market.usdc.bank).await;
    assert_eq!(dealer_quote, 100_000 * USDC as i64 - 2 * LOTS_PER_SOL * call_price - 3 * LOTS_PER_SOL * put_price + payout);
    assert_eq!(trader_quote + dealer_quote, quote_before, "settlement moves quote, never creates it");
    assert_eq!(position(&mut w.bank, &w.trader.account, &call.market).await, 0);
    assert_eq!(position(&mut w.bank, &w.dealer.account, &put.market).await, 0);
    assert_eq!(call_state.open_interest_lots, 0);
    // Tokens in the vault equal the sum of balances.
    let vault = w.bank.token_balance(&w.market.usdc.vault).await as i64;
    assert_eq!(vault, trader_quote + dealer_quote);
}

#[tokio::test]
async fn funding_paid_by_longs_equals_funding_received_by_shorts() {
    let mut w = world().await;
    let perp = w.derivatives.perp.keys;
    let third = new_trader(&mut w.bank, &w.market, 10_000 * USDC, 0).await.unwrap();
    let owner = third.owner.insecure_clone();
    w.bank.send(&[sdk::deposit(&third.account, &w.market.usdc, &third.usdc_wallet, &owner.pubkey(), 10_000 * USDC)], &[&owner]).await.unwrap();
    // Longs: trader 5 SOL, third 3 SOL; short: dealer 8 SOL; trades 1% above the oracle.
    block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, 5 * LOTS_PER_SOL, 151_500).await.unwrap();
    block_trade(&mut w.bank, &w.market, &perp, &third, &w.dealer, 3 * LOTS_PER_SOL, 151_500).await.unwrap();
    w.bank.advance_clock(7_200).await;
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 150.0).await;
    post_price(&mut w.bank, &w.market.usdc.oracle, w.market.usdc_feed, 1.0).await;
    w.bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let (outcome, logs) = w.bank.send_logged(&[sdk::update_funding(&perp)], &[]).await;
    outcome.unwrap();
    let state: Market = w.bank.load(&perp.market).await;
    let funding = sdk::events::<portfolio_margin::events::FundingUpdated>(&logs);
    assert_eq!(funding.len(), 1, "{logs:?}");
    assert_eq!((funding[0].market, funding[0].funding_index_native, funding[0].premium_ppm), (perp.market, 5, 78));
    assert_eq!(funding[0].timestamp, state.funding_last_ts);
    // Each fill's premium (1%) is capped at 0.1% and moves the mark premium by its share of
    // the 100,000-lot depth: 1,000 x 5,000 / 100,000 = 50 ppm, then 50 + 950 x 3,000 / 100,000
    // = 78 ppm. It decays to zero over the hour: 78 ppm x 150,000 per lot x 1/2 = 5.85 per lot.
    assert_eq!(state.funding_premium_ppm, 78);
    assert_eq!(state.funding_index_native, 5);
    const FUNDING: i64 = 5;
    assert_margin_error(w.bank.send(&[sdk::update_funding(&perp)], &[]).await, MarginError::FundingUpToDate);
    // Close everything at the oracle: funding is realised into quote balances.
    let accounts = [w.trader.account, w.dealer.account, third.account];
    let total_before = total_quote(&mut w.bank, &accounts, &w.market.usdc.bank).await;
    block_trade(&mut w.bank, &w.market, &perp, &w.dealer, &w.trader, 5 * LOTS_PER_SOL, 150_000).await.unwrap();
    block_trade(&mut w.bank, &w.market, &perp, &w.dealer, &third, 3 * LOTS_PER_SOL, 150_000).await.unwrap();
    let total_after = total_quote(&mut w.bank, &accounts, &w.market.usdc.bank).await;
    assert_eq!(total_before, total_after, "funding and P&L only move between accounts");
    // The trader paid 5,000 lots x 5 funding plus 1,500 per lot of price loss.
    assert_eq!(quote_balance(&mut w.bank, &w.trader.account, &w.market.usdc.bank).await, -5_000 * (FUNDING + 1_500));
    assert_eq!(quote_balance(&mut w.bank, &third.account, &w.market.usdc.bank).await, 10_000 * USDC as i64 - 3_000 * (FUNDING + 1_500));
    let dealer_gain = quote_balance(&mut w.bank, &w.dealer.account, &w.market.usdc.bank).await - 100_000 * USDC as i64;
    assert_eq!(dealer_gain, 8_000 * (FUNDING + 1_500));
}

#[tokio::test]
async fn settle_pnl_moves_gains_against_matching_losses_only() {
    let mut w = world().await;
    let perp = w.derivatives.perp.keys;
    block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, 2 * LOTS_PER_SOL, 150_000).await.unwrap();
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 151.0).await;
    // Wrong order: the loser first.
    let trader_metas = fill_health_accounts(&mut w.bank, &w.market, &[w.trader.account], &perp.market).await.unwrap();
    let dealer_metas = fill_health_accounts(&mut w.bank, &w.market, &[w.dealer.account], &perp.market).await.unwrap();
    assert_margin_error(
        w.bank.send(&[sdk::settle_pnl(&perp, &w.dealer.account, &w.trader.account, trader_metas)], &[]).await,
        MarginError::PnlNotSettleable,
    );
    let (outcome, logs) = w.bank.send_logged(&[sdk::settle_pnl(&perp, &w.trader.account, &w.dealer.account, dealer_metas)], &[]).await;
    outcome.unwrap();
    // The gain is realised at the conservative price: $151 less twice the 5 bp confidence
    // ($150.849), so 2,000 lots x $0.849 x 1,000 per lot-dollar.
    let gain = quote_balance(&mut w.bank, &w.trader.account, &w.market.usdc.bank).await;
    assert_eq!(gain, 2_000 * 849);
    let settled = sdk::events::<portfolio_margin::events::PnlSettled>(&logs);
    assert_eq!(settled.len(), 1, "{logs:?}");
    assert_eq!((settled[0].market, settled[0].winner, settled[0].loser, settled[0].amount_native), (perp.market, w.trader.account, w.dealer.account, gain));
    assert_eq!(quote_balance(&mut w.bank, &w.dealer.account, &w.market.usdc.bank).await, 100_000 * USDC as i64 - gain);
}

#[tokio::test]
async fn the_seventeenth_position_is_refused() {
    let mut w = world().await;
    let expiry = w.derivatives.expiry_ts;
    let sol = w.derivatives.sol;
    // The trader holds 3 positions after these; 13 more strikes fill 16 slots.
    let mut markets = vec![w.derivatives.perp.keys, w.derivatives.call.keys, w.derivatives.put.keys];
    for strike in 0..14 {
        let config = option_config(MarketKind::Call, 200 + 10 * strike, expiry);
        markets.push(list_option(&mut w.bank, &w.market, &sol, config, 0.6).await.unwrap());
    }
    for keys in &markets[..16] {
        let price = if keys.market == w.derivatives.perp.keys.market { 150_000 } else { model_price_per_lot(&mut w.bank, &keys.market).await };
        // The trader buys the minimum position (10 lots) of each (long options need no margin
        // beyond the premium).
        let metas = fill_health_accounts(&mut w.bank, &w.market, &[w.trader.account, w.dealer.account], &keys.market).await.unwrap();
        let lots = pm_client::world::MIN_POSITION_LOTS;
        let ix = sdk::trade(keys, &w.trader.account, &w.trader.owner.pubkey(), &w.dealer.account, &w.dealer.owner.pubkey(), lots, price, metas);
        w.bank.send_v0(&[ix], &[&w.trader.owner, &w.dealer.owner]).await.unwrap();
    }
    let state: MarginAccount = w.bank.load(&w.trader.account).await;
    assert_eq!(state.positions.iter().filter(|p| p.in_use == 1).count(), 16);
    // A health check over 16 positions and the collateral fits one transaction.
    let snapshot = HealthSnapshot::load(&mut w.bank, &w.market.group, &w.trader.account).await.unwrap();
    let metas = snapshot.health_accounts(&snapshot.account);
    w.bank.send_v0(&[sdk::health_check(&w.market.group, &w.trader.account, 0, 0, metas)], &[]).await.unwrap();
    // The 17th fails.
    let keys = markets[16];
    let before = snapshot_accounts(&mut w.bank, &[w.trader.account, w.dealer.account]).await;
    let price = model_price_per_lot(&mut w.bank, &keys.market).await;
    let metas = fill_health_accounts(&mut w.bank, &w.market, &[w.trader.account, w.dealer.account], &keys.market).await.unwrap();
    let ix = sdk::trade(&keys, &w.trader.account, &w.trader.owner.pubkey(), &w.dealer.account, &w.dealer.owner.pubkey(), pm_client::world::MIN_POSITION_LOTS, price, metas);
    assert_margin_error(w.bank.send_v0(&[ix], &[&w.trader.owner, &w.dealer.owner]).await, MarginError::PositionSlotsFull);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &[w.trader.account, w.dealer.account]).await);
}

async fn total_quote(bank: &mut LocalBank, accounts: &[Pubkey], quote_bank: &Pubkey) -> i64 {
    let mut total = 0;
    for account in accounts {
        total += quote_balance(bank, account, quote_bank).await;
    }
    total
}

async fn snapshot_accounts(bank: &mut LocalBank, keys: &[Pubkey]) -> Vec<Option<(u64, Vec<u8>)>> {
    snapshot(bank, keys).await
}

#[tokio::test]
async fn below_initial_health_an_account_may_only_reduce_risk() {
    let mut w = world().await;
    let perp = w.derivatives.perp.keys;
    // The trader (10 SOL) buys 30 SOL of perps from the dealer: leveraged long, 40 SOL in all.
    let lots = 30 * LOTS_PER_SOL;
    block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, lots, 150_000).await.unwrap();
    // SOL drops to $142: the trader is now below initial health (but not liquidatable).
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 142.0).await;
    w.bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let init = trader_health(&mut w, HealthKind::Init).await;
    assert!(init.health_native < 0, "{init:?}");
    // Adding risk is refused.
    let keys = [w.trader.account, w.dealer.account, perp.market];
    let before = snapshot_accounts(&mut w.bank, &keys).await;
    assert!(trader_health(&mut w, HealthKind::Maint).await.health_native > 0);
    let result = block_trade(&mut w.bank, &w.market, &perp, &w.trader, &w.dealer, LOTS_PER_SOL, 142_000).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    // Flipping to a larger short is not a reduction either.
    let result = block_trade(&mut w.bank, &w.market, &perp, &w.dealer, &w.trader, lots + 80 * LOTS_PER_SOL, 142_000).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &keys).await);
    // Reducing at the oracle price is allowed even though init health stays negative.
    block_trade(&mut w.bank, &w.market, &perp, &w.dealer, &w.trader, 10 * LOTS_PER_SOL, 142_000).await.unwrap();
    let after = trader_health(&mut w, HealthKind::Init).await;
    assert!(after.health_native > init.health_native, "{after:?} vs {init:?}");
    assert_eq!(position(&mut w.bank, &w.trader.account, &perp.market).await, lots - 10 * LOTS_PER_SOL);
}

#[tokio::test]
async fn a_delegate_may_trade_for_the_account() {
    let mut w = world().await;
    let perp = w.derivatives.perp.keys;
    let delegate = solana_keypair::Keypair::new();
    let limits = portfolio_margin::instructions::DelegateLimits { price_band_ppm: 2_000, max_slippage_native: 100 * USDC as i64, expiry_ts: i64::MAX };
    w.bank.send(&[sdk::set_delegate(&w.trader.account, &w.trader.owner.pubkey(), &delegate.pubkey(), limits)], &[&w.trader.owner]).await.unwrap();
    let metas = fill_health_accounts(&mut w.bank, &w.market, &[w.trader.account, w.dealer.account], &perp.market).await.unwrap();
    let ix = sdk::trade(&perp, &w.dealer.account, &w.dealer.owner.pubkey(), &w.trader.account, &delegate.pubkey(), 5 * LOTS_PER_SOL, 150_000, metas.clone());
    w.bank.send(&[ix], &[&w.dealer.owner, &delegate]).await.unwrap();
    assert_eq!(position(&mut w.bank, &w.trader.account, &perp.market).await, -5 * LOTS_PER_SOL);
    // A stranger cannot.
    let stranger = solana_keypair::Keypair::new();
    let ix = sdk::trade(&perp, &w.dealer.account, &w.dealer.owner.pubkey(), &w.trader.account, &stranger.pubkey(), LOTS_PER_SOL, 150_000, metas);
    assert_margin_error(w.bank.send(&[ix], &[&w.dealer.owner, &stranger]).await, MarginError::NotOwnerOrDelegate);
}

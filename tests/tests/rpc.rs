//! The client's JSON-RPC transport (`RpcChain`) end to end, against a JSON-RPC endpoint in front
//! of the embedded bank: the keeper discovers the group's markets and accounts with
//! getProgramAccounts and liquidates over HTTP; `pm bootstrap`'s code runs over it too.

use anchor_lang::prelude::Pubkey;
use pm_client::chain::{Chain, RpcChain};
use pm_client::world::block_trade;
use pm_client::keeper::{Keeper, Liquidator};
use pm_client::local_bank::LocalBank;
use pm_client::sdk;
use pm_integration_tests::rpc_facade::{serve, Facade};
use pm_integration_tests::*;
use portfolio_margin::state::MarginAccount;
use risk_engine::health::HealthKind;
use solana_signer::Signer;
use std::sync::Arc;

const USDC: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_discovers_and_liquidates_over_json_rpc() {
    let PerpWorld { mut bank, market, d, victim, dealer, keeper: keeper_trader } = perp_world().await;
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 135.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    assert!(onchain_health(&mut bank, &market.group, &victim.account, HealthKind::Maint).await.is_err(), "arrays are stale until refreshed");

    let facade = Arc::new(Facade { bank: tokio::sync::Mutex::new(bank), watched: tokio::sync::Mutex::new(Vec::new()) });
    facade.watch(&[d.perp.keys.market, d.call.keys.market, d.put.keys.market, victim.account, dealer.account, keeper_trader.account]).await;
    let url = serve(facade.clone()).await;

    let mut rpc = RpcChain::new(&url, keeper_trader.owner.insecure_clone());
    let liquidator = Liquidator { owner: keeper_trader.owner.insecure_clone(), account: keeper_trader.account };
    let mut keeper = Keeper::discover(&mut rpc, market.group, liquidator).await.unwrap();
    assert_eq!(keeper.markets.len(), 3);
    assert_eq!(keeper.perp_markets, vec![d.perp.keys.market]);
    let mut accounts = keeper.margin_accounts(&mut rpc).await.unwrap();
    accounts.sort();
    let mut expected = vec![victim.account, dealer.account, keeper_trader.account];
    expected.sort();
    assert_eq!(accounts, expected);

    // Program errors come back with their code through the RPC error mapping.
    let ix = sdk::liquidate_position(&d.perp.keys, &keeper_trader.account, &keeper_trader.owner.pubkey(), &dealer.account, 1, vec![]);
    let error = rpc.send(&[sdk::refresh_risk_array(&d.perp.keys), ix], &[&keeper_trader.owner]).await.unwrap_err();
    assert!(error.custom_code.is_some(), "{error:?}");

    let report = keeper.run(&mut rpc, &accounts, 5, false).await.unwrap();
    assert!(report.position_liquidations >= 1 && report.errors == 0, "{report:?}");

    let mut bank = facade.bank.lock().await;
    let end = onchain_health(&mut bank, &market.group, &victim.account, HealthKind::LiquidationEnd).await.unwrap();
    assert!(end.health_native >= 0, "{end:?}");
    let state: MarginAccount = bank.load(&victim.account).await;
    assert_eq!(state.being_liquidated, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_runs_over_json_rpc() {
    let mut bank = LocalBank::start().await;
    let config: pm_client::bootstrap::Config =
        serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/localnet.json")).unwrap()).unwrap();
    // The cluster's mints and oracles exist beforehand; create them on the bank.
    let resolved = pm_client::bootstrap::rehearse_on(&mut bank, &config).await.unwrap();
    let admin = solana_keypair::Keypair::new();
    bank.airdrop(&admin.pubkey(), 10_000_000_000).await.unwrap();
    let facade = Arc::new(Facade { bank: tokio::sync::Mutex::new(bank), watched: tokio::sync::Mutex::new(Vec::new()) });
    let url = serve(facade.clone()).await;
    let mut rpc = RpcChain::new(&url, admin.insecure_clone());
    let report = pm_client::bootstrap::bootstrap(&mut rpc, &admin, &config, &resolved).await.unwrap();
    assert_eq!(report.group, sdk::group_address(&admin.pubkey(), config.group_index).to_string());
    let mut bank = facade.bank.lock().await;
    let group: portfolio_margin::state::Group = bank.load(&sdk::group_address(&admin.pubkey(), config.group_index)).await;
    assert_eq!((group.bank_count, group.underlying_count, group.perp_market_count), (2, 1, 1));
    assert_eq!(group.liquidation_fee_ppm, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_refreshes_accrues_funding_and_settles_over_json_rpc() {
    use portfolio_margin::state::Market;
    let (mut bank, market, d) = start().await;
    let trader = funded(&mut bank, &market, 10_000 * USDC).await;
    let (dealer, keeper_trader) = dealer_and_keeper(&mut bank, &market).await;
    // A perp fill over the oracle (a funding premium) and 2 SOL of 160 calls.
    block_trade(&mut bank, &market, &d.perp.keys, &trader, &dealer, 30_000, 151_500).await.unwrap();
    let call_price = pm_client::world::model_price_per_lot(&mut bank, &d.call.keys.market).await;
    block_trade(&mut bank, &market, &d.call.keys, &trader, &dealer, 2_000, call_price).await.unwrap();
    let expiry = d.expiry_ts;

    let facade = Arc::new(Facade { bank: tokio::sync::Mutex::new(bank), watched: tokio::sync::Mutex::new(Vec::new()) });
    facade.watch(&[trader.account, dealer.account, keeper_trader.account]).await;
    let url = serve(facade.clone()).await;
    let mut rpc = RpcChain::new(&url, keeper_trader.owner.insecure_clone());
    let liquidator = Liquidator { owner: keeper_trader.owner.insecure_clone(), account: keeper_trader.account };
    let mut keeper = Keeper::discover(&mut rpc, market.group, liquidator).await.unwrap();
    let accounts = keeper.margin_accounts(&mut rpc).await.unwrap();
    // The simulated market moves, the clock with it.
    let prints = |seconds: i64, sol: f64| {
        let facade = facade.clone();
        let (sol_oracle, usdc_oracle, sol_feed, usdc_feed) = (market.sol.oracle, market.usdc.oracle, market.sol_feed, market.usdc_feed);
        async move {
            let mut bank = facade.bank.lock().await;
            bank.advance_clock(seconds).await;
            post_price(&mut bank, &sol_oracle, sol_feed, sol).await;
            post_price(&mut bank, &usdc_oracle, usdc_feed, 1.0).await;
            bank.now().await
        }
    };

    // 1,000 s later SOL is 0.9% higher: every array is due (past 75% of the 1% tolerance), and
    // so is funding (15 minutes). One transaction each.
    let now = prints(1_000, 151.35).await;
    let report = keeper.run(&mut rpc, &accounts, 5, false).await.unwrap();
    assert_eq!(
        (report.refreshes, report.funding_updates, report.errors, report.transactions),
        (3, 1, 0, 2),
        "{report}"
    );
    {
        let mut bank = facade.bank.lock().await;
        let perp: Market = bank.load(&d.perp.keys.market).await;
        assert_eq!(perp.funding_last_ts, now);
        assert!(perp.funding_index_native > 0);
        for keys in [d.perp.keys, d.call.keys, d.put.keys] {
            let state: Market = bank.load(&keys.market).await;
            assert_eq!(state.array_updated_ts, now);
        }
    }
    // Nothing due a minute later.
    prints(60, 151.35).await;
    let report = keeper.run(&mut rpc, &accounts, 5, false).await.unwrap();
    assert_eq!((report.refreshes, report.funding_updates, report.transactions), (0, 0, 0), "{report}");

    // 100 s after expiry (a 60 s window): the live oracle's update is too late, and a cluster
    // has no archive here. The keeper says so and proposes nothing.
    let now = prints(0, 171.25).await;
    prints(expiry + 100 - now, 171.25).await;
    let report = keeper.run(&mut rpc, &accounts, 5, false).await.unwrap();
    assert_eq!((report.settlement_proposals, report.awaiting_settlement_price, report.errors), (0, 2, 0), "{report}");
    // Once the fallback opens (a day after the window), the live update qualifies.
    let now = prints(60 + 86_400 - 100 + 1, 171.25).await;
    let report = keeper.run(&mut rpc, &accounts, 5, false).await.unwrap();
    assert_eq!((report.settlement_proposals, report.errors), (2, 0), "{report}");
    {
        let mut bank = facade.bank.lock().await;
        let call: Market = bank.load(&d.call.keys.market).await;
        assert_eq!((call.settlement_publish_ts, call.settlement_price_native), (now, 171_250));
    }
    // After the challenge period both call holders are settled at intrinsic value.
    let quote_of = |account: Pubkey| {
        let facade = facade.clone();
        let quote_bank = market.usdc.bank;
        async move {
            let state: MarginAccount = facade.bank.lock().await.load(&account).await;
            state.balance_index(&quote_bank).map(|i| state.balances[i].balance_native).unwrap_or(0)
        }
    };
    let (trader_before, dealer_before) = (quote_of(trader.account).await, quote_of(dealer.account).await);
    prints(600, 171.25).await;
    let report = keeper.run(&mut rpc, &accounts, 5, false).await.unwrap();
    assert_eq!((report.settlements, report.errors), (2, 0), "{report}");
    assert_eq!(quote_of(trader.account).await - trader_before, 2_000 * 11_250);
    assert_eq!(quote_of(dealer.account).await - dealer_before, -2_000 * 11_250);
}

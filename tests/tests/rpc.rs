//! The client's JSON-RPC transport (`RpcChain`) end to end, against a JSON-RPC endpoint in front
//! of the embedded bank: the keeper discovers the group's markets and accounts with
//! getProgramAccounts and liquidates over HTTP; `pm bootstrap`'s code runs over it too.

use pm_client::chain::{Chain, RpcChain};
use pm_client::demo::{block_trade, setup_derivatives};
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

async fn funded(bank: &mut LocalBank, market: &DemoMarket, usdc: u64) -> Trader {
    let trader = new_trader(bank, market, usdc * USDC, 0).await.unwrap();
    let owner = trader.owner.insecure_clone();
    bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), usdc * USDC)], &[&owner]).await.unwrap();
    trader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_discovers_and_liquidates_over_json_rpc() {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let d = setup_derivatives(&mut bank, &market).await.unwrap();
    let victim = funded(&mut bank, &market, 1_000).await;
    let dealer = funded(&mut bank, &market, 1_000_000).await;
    let keeper_trader = funded(&mut bank, &market, 100_000).await;
    block_trade(&mut bank, &market, &d.perp.keys, &victim, &dealer, 30_000, 150_000).await.unwrap();
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 135.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    assert!(onchain_health(&mut bank, &market.group, &victim.account, HealthKind::Maint).await.is_err(), "arrays are stale until refreshed");

    let facade = Arc::new(Facade { bank: tokio::sync::Mutex::new(bank), watched: tokio::sync::Mutex::new(Vec::new()) });
    facade.watch(&[d.perp.keys.market, d.call.keys.market, d.put.keys.market, victim.account, dealer.account, keeper_trader.account]).await;
    let url = serve(facade.clone()).await;

    let mut rpc = RpcChain::new(&url, keeper_trader.owner.insecure_clone());
    let liquidator = Liquidator { owner: keeper_trader.owner.insecure_clone(), account: keeper_trader.account };
    let keeper = Keeper::discover(&mut rpc, market.group, liquidator).await.unwrap();
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

//! Correlation groups on-chain: a hedge across two underlyings in one group is credited by the
//! program exactly as the engine computes it (and as the client predicts it), only the admin
//! configures groups, and every bad parameter is refused with its own error, changing nothing.

use anchor_lang::prelude::Pubkey;
use pm_client::world::{block_trade, market_keys, onchain_health, perp_config, post_price, underlying_config, Trader};
use pm_client::health::HealthSnapshot;
use pm_client::local_bank::LocalBank;
use pm_client::pyth::feed_id_for;
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::state::{Group, Underlying};
use risk_engine::health::HealthKind;
use solana_signer::Signer;

const USDC: i64 = 1_000_000;

struct Pair {
    bank: LocalBank,
    market: DemoMarket,
    sol: Pubkey,
    eth: Pubkey,
    long_sol_short_eth: Trader,
    counterparty: Trader,
    sol_perp: sdk::MarketKeys,
    eth_perp: sdk::MarketKeys,
    eth_oracle: Pubkey,
}

/// The demo group with an ETH underlying ($3,000, no linked bank) and an ETH perp beside the
/// SOL derivatives; one trader long 20 SOL and short 1 ETH in perps ($3,000 each way), the
/// other on the opposite sides.
async fn pair() -> Pair {
    let mut p = listed().await;
    let (a, b) = (&p.long_sol_short_eth, &p.counterparty);
    // SOL: 150,000 native per lot of 0.001 SOL; ETH: 3,000,000 native per lot of 0.001 ETH.
    block_trade(&mut p.bank, &p.market, &p.sol_perp, a, b, 20_000, 150_000).await.unwrap();
    block_trade(&mut p.bank, &p.market, &p.eth_perp, b, a, 1_000, 3_000_000).await.unwrap();
    p
}

/// [`pair`] before any trade: the markets listed, the two traders funded with 2,000 USDC.
async fn listed() -> Pair {
    let (mut bank, market, d) = start().await;
    let admin = market.admin.pubkey();
    let payer = bank.payer().pubkey();
    let eth_oracle = Pubkey::new_unique();
    let eth_feed = feed_id_for("ETH/USD");
    post_price(&mut bank, &eth_oracle, eth_feed, 3_000.0).await;
    let group: Group = bank.load(&market.group).await;
    let eth_index = group.underlying_count;
    bank.send(&[sdk::add_underlying(&market.group, &admin, &payer, eth_index, None, underlying_config(eth_oracle, eth_feed))], &[])
        .await
        .unwrap();
    let eth = sdk::underlying_address(&market.group, eth_index);
    let perp_index = group.market_count;
    bank.send(&[sdk::add_perp_market(&market.group, &admin, &payer, &eth, perp_index, perp_config())], &[]).await.unwrap();
    let eth_perp = market_keys(&mut bank, &market, &sdk::market_address(&market.group, perp_index)).await;
    bank.send(&[sdk::refresh_risk_array(&eth_perp)], &[]).await.unwrap();

    let a = funded(&mut bank, &market, 2_000 * USDC).await;
    let b = funded(&mut bank, &market, 2_000 * USDC).await;
    Pair { bank, market, sol: d.sol, eth, long_sol_short_eth: a, counterparty: b, sol_perp: d.perp.keys, eth_perp, eth_oracle }
}

async fn maintenance_requirement(p: &mut Pair) -> i64 {
    let account = p.long_sol_short_eth.account;
    let onchain = onchain_health(&mut p.bank, &p.market.group, &account, HealthKind::Maint).await.unwrap();
    // The client predicts the same health to the native unit.
    let snapshot = HealthSnapshot::load(&mut p.bank, &p.market.group, &account).await.unwrap();
    let offchain = portfolio_margin::health::HealthReport::from_breakdown(&snapshot.health(HealthKind::Maint).unwrap()).unwrap();
    assert_eq!(offchain, onchain, "client and chain disagree");
    onchain.requirement_native
}

#[tokio::test]
async fn a_hedge_across_a_correlation_group_is_credited() {
    let mut p = pair().await;
    let admin = p.market.admin.pubkey();
    // Alone: each leg 16% x $3,000 = $480 (its tail weighted to the same), $960 in all.
    let alone = maintenance_requirement(&mut p).await;
    assert!((alone - 960 * USDC).abs() <= 1_000, "{alone}");

    // Both underlyings in group 1 at correlation 0.9: the box (at most 1.0 of the range between
    // the legs) is at most one leg jumping alone ($480), which binds: half is credited.
    p.bank.send(&[sdk::set_correlation_group(&p.market.group, &admin, 1, 900_000)], &[]).await.unwrap();
    // One member alone is no group: nothing changes.
    p.bank.send(&[sdk::assign_correlation_group(&p.market.group, &admin, &p.sol, 1)], &[]).await.unwrap();
    assert_eq!(maintenance_requirement(&mut p).await, alone);
    p.bank.send(&[sdk::assign_correlation_group(&p.market.group, &admin, &p.eth, 1)], &[]).await.unwrap();
    let grouped = maintenance_requirement(&mut p).await;
    assert!((grouped - 480 * USDC).abs() <= 1_000, "{grouped}");

    // At correlation 0.5 the box binds: windows 2 x sqrt(0.5) wide take whole node intervals,
    // up to 1.75 of the range between the legs: 1.75 x $480 = $840.
    p.bank.send(&[sdk::set_correlation_group(&p.market.group, &admin, 1, 500_000)], &[]).await.unwrap();
    let half = maintenance_requirement(&mut p).await;
    assert!((half - 840 * USDC).abs() <= 1_000, "{half}");

    // Leaving the group takes the credit back.
    p.bank.send(&[sdk::assign_correlation_group(&p.market.group, &admin, &p.eth, 0)], &[]).await.unwrap();
    assert_eq!(maintenance_requirement(&mut p).await, alone);
}

#[tokio::test]
async fn correlation_groups_are_configured_by_the_admin_within_bounds() {
    let mut p = pair().await;
    let admin = p.market.admin.pubkey();
    let group = p.market.group;
    let keys = [group, p.sol, p.eth];
    let before = snapshot(&mut p.bank, &keys).await;
    for (ix, expected) in [
        (sdk::set_correlation_group(&group, &admin, 0, 500_000), MarginError::InvalidCorrelationGroup),
        (sdk::set_correlation_group(&group, &admin, 9, 500_000), MarginError::InvalidCorrelationGroup),
        (sdk::set_correlation_group(&group, &admin, 1, 990_001), MarginError::CorrelationOutOfBounds),
        (sdk::assign_correlation_group(&group, &admin, &p.sol, 9), MarginError::InvalidCorrelationGroup),
    ] {
        assert_margin_error(p.bank.send(&[ix], &[]).await, expected);
    }
    // Someone else cannot configure or assign a group.
    let stranger = solana_keypair::Keypair::new();
    for ix in [
        sdk::set_correlation_group(&group, &stranger.pubkey(), 1, 900_000),
        sdk::assign_correlation_group(&group, &stranger.pubkey(), &p.sol, 1),
    ] {
        assert_margin_error(p.bank.send(&[ix], &[&stranger]).await, MarginError::NotGroupAdmin);
    }
    assert_eq!(before, snapshot(&mut p.bank, &keys).await, "a refused configuration changed state");

    // The bounds themselves are accepted.
    p.bank.send(&[sdk::set_correlation_group(&group, &admin, 8, 990_000)], &[]).await.unwrap();
    p.bank.send(&[sdk::assign_correlation_group(&group, &admin, &p.eth, 8)], &[]).await.unwrap();
    let state: Group = p.bank.load(&group).await;
    assert_eq!(state.correlation_ppm[7], 990_000);
    let eth: Underlying = p.bank.load(&p.eth).await;
    assert_eq!(eth.correlation_group, 8);
}

/// Review finding, kept as a regression: a credited pair whose members' jumps bind could not be
/// liquidated one leg at a time (no single-leg step lowered the credited requirement, so every
/// step was refused and the account stayed stuck while the legs diverged). The liquidation
/// target takes no credit: the keeper liquidates the pair leg by leg to completion.
#[tokio::test]
async fn a_credited_pair_is_liquidated_leg_by_leg_to_completion() {
    let mut p = listed().await;
    let admin = p.market.admin.pubkey();
    for ix in [
        sdk::set_correlation_group(&p.market.group, &admin, 1, 900_000),
        sdk::assign_correlation_group(&p.market.group, &admin, &p.sol, 1),
        sdk::assign_correlation_group(&p.market.group, &admin, &p.eth, 1),
    ] {
        p.bank.send(&[ix], &[]).await.unwrap();
    }
    // A third trader holds the pair on 700 USDC: enough only with the credit (initial 600
    // grouped, 1,200 without).
    let victim = funded(&mut p.bank, &p.market, 700 * USDC).await;
    let keeper = funded(&mut p.bank, &p.market, 100_000 * USDC).await;
    let dealer = &p.counterparty;
    block_trade(&mut p.bank, &p.market, &p.sol_perp, &victim, dealer, 20_000, 150_000).await.unwrap();
    block_trade(&mut p.bank, &p.market, &p.eth_perp, dealer, &victim, 1_000, 3_000_000).await.unwrap();
    // The pair diverges: SOL -8%, ETH +8%: 480 lost against 700 of collateral.
    post_price(&mut p.bank, &p.market.sol.oracle, p.market.sol_feed, 138.0).await;
    post_price(&mut p.bank, &p.eth_oracle, feed_id_for("ETH/USD"), 3_240.0).await;
    for keys in [p.sol_perp, p.eth_perp] {
        p.bank.send(&[sdk::refresh_risk_array(&keys)], &[]).await.unwrap();
    }
    let maint = onchain_health(&mut p.bank, &p.market.group, &victim.account, HealthKind::Maint).await.unwrap();
    assert!(maint.health_native < 0, "{maint:?}");
    let mut steps = 0;
    for round in 0..20 {
        let mut progressed = false;
        for keys in [p.sol_perp, p.eth_perp] {
            let metas = pm_client::health::fill_health_accounts_for(&mut p.bank, &p.market.group, &p.market.usdc.bank, &[keeper.account, victim.account], &keys.market)
                .await
                .unwrap();
            let ix = sdk::liquidate_position(&keys, &keeper.account, &keeper.owner.pubkey(), &victim.account, 100_000, metas);
            let result = p.bank.send(&[ix], &[&keeper.owner]).await;
            if result.is_ok() {
                steps += 1;
                progressed = true;
            } else {
                // Done (the flag cleared once the target was reached), or that leg closed.
                let done = [MarginError::LiquidationComplete, MarginError::NotLiquidatable, MarginError::NoPosition].map(|e| Some(code_of(e)));
                assert!(done.contains(&custom_code(&result)), "round {round}: liquidation refused: {result:?}");
            }
        }
        if !progressed {
            break;
        }
    }
    assert!(steps > 0);
    // Both legs were reduced.
    let (sol_left, eth_left) = (position(&mut p.bank, &victim.account, &p.sol_perp.market).await, position(&mut p.bank, &victim.account, &p.eth_perp.market).await);
    assert!(sol_left < 20_000 && eth_left > -1_000, "{sol_left} {eth_left}");
    let end = onchain_health(&mut p.bank, &p.market.group, &victim.account, HealthKind::LiquidationEnd).await.unwrap();
    assert!(end.health_native >= 0, "liquidation did not complete: {end:?}");
    let maint = onchain_health(&mut p.bank, &p.market.group, &victim.account, HealthKind::Maint).await.unwrap();
    assert!(maint.health_native >= 0, "{maint:?}");
}

//! The risk model's pieces on-chain: the near-expiry interpolation bound (the refresh stores a
//! long option's gaps and health uses them) and the vega-offset contingency (options netted by
//! their market's expiry).

use pm_client::world::{block_trade, onchain_health};
use pm_integration_tests::*;
use risk_engine::health::HealthKind;

const USDC: i64 = 1_000_000;

/// Near expiry on-chain: a short butterfly ten minutes from expiry, its body between two price
/// nodes. The refresh stores the long body's interpolation gaps and the program's maintenance
/// covers the book's worst loss anywhere in the range (computed here independently, in double
/// precision, at the body's strike), where the nodes alone saw about none of it.
#[tokio::test]
async fn a_short_butterfly_near_expiry_is_margined_on_its_body() {
    use portfolio_margin::state::{Market, MarketKind};
    let (mut bank, market, d) = start().await;
    let expiry_ts = bank.now().await + 600;
    // Nodes every 4% of $150: 144, 150, 156. Body 153 between 150 and 156, wings 151 and 155.
    let mut keys = Vec::new();
    for strike in [151, 153, 155] {
        let config = pm_client::world::option_config(MarketKind::Call, strike, expiry_ts);
        keys.push(pm_client::world::list_option(&mut bank, &market, &d.sol, config, 0.8).await.unwrap());
    }
    let body: Market = bank.load(&keys[1].market).await;
    assert!(body.array_gap_intervals > 0, "the body's array carries no gaps");
    let seller = funded(&mut bank, &market, 10_000 * USDC).await;
    let buyer = funded(&mut bank, &market, 10_000 * USDC).await;
    let price = |m: &Market| fixed::types::I32F32::from_bits(m.array_value_bits).round().to_num::<i64>();
    // The short butterfly: short 1 SOL of each wing, long 2 SOL of the body (lots of 0.001).
    for (k, lots) in [(0usize, 1_000i64), (1, -2_000), (2, 1_000)] {
        let state: Market = bank.load(&keys[k].market).await;
        let (buyer_side, seller_side) = if lots > 0 { (&buyer, &seller) } else { (&seller, &buyer) };
        block_trade(&mut bank, &market, &keys[k], buyer_side, seller_side, lots.abs(), price(&state)).await.unwrap();
    }
    let onchain = onchain_health(&mut bank, &market.group, &seller.account, HealthKind::Maint).await.unwrap();
    // Independently: at $153 the short 151 calls owe $2 per SOL and the long 153 body is worth
    // nothing by the horizon (it expires within it): the book loses 2 less the net premium.
    let mut premium_received = 0i64;
    for (k, lots) in [(0usize, -1_000i64), (1, 2_000), (2, -1_000)] {
        let state: Market = bank.load(&keys[k].market).await;
        premium_received -= lots * price(&state);
    }
    let loss_at_body = 2 * USDC - premium_received;
    assert!(loss_at_body > USDC, "{loss_at_body}");
    // Maintenance = max(scenario loss, minimum delta) + contingency, the contingency 0.5% of
    // spot per short contract: 0.005 x 150,000 x 2,000 lots. At the nodes around the body
    // ($150 and $156) the book is about flat: without the interpolation bound the scenario
    // loss was a fraction of the loss at the body and maintenance about 2.4 (measured).
    let contingency = 1_500_000;
    assert!(
        onchain.requirement_native >= loss_at_body + contingency,
        "maintenance {} below the loss at the body {loss_at_body} plus the contingency",
        onchain.requirement_native
    );
}

/// The vega-offset contingency on-chain: a calendar (short 10-day, long 90-day calls) on an
/// underlying whose grid sets `vega_offset` 0.25 costs exactly 0.25 x the smaller side of the
/// two markets' stored vol-up value changes more than on the same oracle's default grid.
#[tokio::test]
async fn a_calendar_pays_the_vega_offset_its_grid_sets() {
    use pm_client::world::{list_option, option_config, underlying_config};
    use pm_client::sdk;
    use portfolio_margin::state::{Group, Market, MarketKind};
    use solana_signer::Signer;
    let (mut bank, market, d) = start().await;
    let admin = market.admin.pubkey();
    let payer = bank.payer().pubkey();
    // A second underlying on the SOL oracle whose grid charges the vega offset.
    let mut config = underlying_config(market.sol.oracle, market.sol_feed);
    config.grid.vega_offset_bits = fixed::types::I32F32::from_num(0.25).to_bits();
    let group: Group = bank.load(&market.group).await;
    bank.send(&[sdk::add_underlying(&market.group, &admin, &payer, group.underlying_count, None, config)], &[]).await.unwrap();
    let charged_underlying = sdk::underlying_address(&market.group, group.underlying_count);
    let now = bank.now().await;
    let mut run = Vec::new();
    for underlying in [d.sol, charged_underlying] {
        let near = list_option(&mut bank, &market, &underlying, option_config(MarketKind::Call, 150, now + 10 * 86_400), 0.6).await.unwrap();
        let far = list_option(&mut bank, &market, &underlying, option_config(MarketKind::Call, 150, now + 90 * 86_400), 0.6).await.unwrap();
        let seller = funded(&mut bank, &market, 10_000 * USDC).await;
        let buyer = funded(&mut bank, &market, 10_000 * USDC).await;
        let price = |m: &Market| fixed::types::I32F32::from_bits(m.array_value_bits).round().to_num::<i64>();
        let (near_state, far_state): (Market, Market) = (bank.load(&near.market).await, bank.load(&far.market).await);
        // The seller sells 1 SOL of the 10-day call and buys 1 SOL of the 90-day call.
        block_trade(&mut bank, &market, &near, &buyer, &seller, 1_000, price(&near_state)).await.unwrap();
        block_trade(&mut bank, &market, &far, &seller, &buyer, 1_000, price(&far_state)).await.unwrap();
        let health = onchain_health(&mut bank, &market.group, &seller.account, HealthKind::Maint).await.unwrap();
        let shock = |m: &Market| fixed::types::I32F32::from_bits(m.array_vol_up_shock_bits).to_num::<f64>() * 1_000.0;
        run.push((health.requirement_native, shock(&near_state).min(shock(&far_state))));
    }
    let (plain, charged) = (run[0].0, run[1].0);
    let expected = 0.25 * run[1].1;
    assert!(expected > 100_000.0, "{expected}");
    let added = (charged - plain) as f64;
    assert!((added - expected).abs() <= 2.0, "vega offset {added} vs {expected}");
}

//! The risk model's near-expiry bound on-chain: the refresh stores a long option's
//! interpolation gaps and health uses them (`risk_engine::margin`, interpolation bound).

use pm_client::demo::{block_trade, onchain_health};
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
        let config = pm_client::demo::option_config(MarketKind::Call, strike, expiry_ts);
        keys.push(pm_client::demo::list_option(&mut bank, &market, &d.sol, config, 0.8).await.unwrap());
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

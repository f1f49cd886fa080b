//! Class 7, duplicate mutable accounts: one account passed twice where two distinct writable
//! accounts are expected, so that one side's write-back overwrites the other's (a trade with
//! oneself that keeps only the favourable side, a liquidation that pays its own fee, a
//! withdrawal into the vault that debits the balance and keeps the tokens).

use super::common::*;
use anchor_lang::error::ErrorCode;
use pm_client::world::block_trade;
use pm_client::sdk;
use pm_integration_tests::{position, quote_balance};
use portfolio_margin::error::MarginError;
use solana_signer::Signer;

/// Attack: Alice trades 5 SOL of the perp with herself at the band edge. Defence:
/// `require_keys_neq!(buyer, seller)` in `trade::execute_fill` (`SameAccountBothSides`).
#[tokio::test]
async fn a_trade_with_the_same_account_on_both_sides() {
    let mut w = world().await;
    let perp = w.d.perp.keys;
    let alice = w.alice.owner.pubkey();
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account], &perp.market).await;
    let ix = sdk::trade(&perp, &w.alice.account, &alice, &w.alice.account, &alice, 5_000, PERP_PRICE_PER_LOT * 102 / 100, metas);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], margin(MarginError::SameAccountBothSides)).await;
}

/// Attack: P&L settled from Alice's account to itself after SOL rose (she is long), moving her
/// unrealised gain into her balance without a loser paying it. Defence:
/// `require_keys_neq!(winner, loser)` in `settle_pnl` (`SameAccountBothSides`).
#[tokio::test]
async fn settle_pnl_with_the_same_winner_and_loser() {
    let mut w = world().await;
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 155.0).await;
    w.bank.send(&[sdk::refresh_risk_array(&w.d.perp.keys)], &[]).await.unwrap();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let ix = sdk::settle_pnl(&w.d.perp.keys, &w.alice.account, &w.alice.account, metas);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::SameAccountBothSides)).await;
}

/// Attack: a liquidatable account liquidates itself (position, then token) to collect the
/// liquidator's share of its own fee and reset its flag. Defence:
/// `require_keys_neq!(liquidator, liquidatee)` in `liquidate_position` and `liquidate_token`
/// (`LiquidatorIsLiquidatee`).
#[tokio::test]
async fn liquidations_with_the_liquidator_as_liquidatee() {
    let mut w = world().await;
    let victim = liquidatable(&mut w).await;
    let perp = w.d.perp.keys;
    let owner = victim.owner.pubkey();
    let metas = fill_metas(&mut w.bank, &w.market, &[victim.account], &perp.market).await;
    let ix = sdk::liquidate_position(&perp, &victim.account, &owner, &victim.account, 30_000, metas.clone());
    refused(&mut w.bank, &[ix], &[&victim.owner], margin(MarginError::LiquidatorIsLiquidatee)).await;
    let ix = sdk::liquidate_token(&w.market.group, &w.market.usdc.bank, &w.market.sol.bank, &victim.account, &owner, &victim.account, 100 * USDC as i64, metas);
    refused(&mut w.bank, &[ix], &[&victim.owner], margin(MarginError::LiquidatorIsLiquidatee)).await;
}

/// Attack: the bank's vault as the other token account of a transfer: a withdrawal into the
/// vault (the balance is debited, the self-transfer is a no-op: the vault keeps tokens nobody
/// is credited for), a deposit and an insurance top-up from the vault into the vault (credited
/// without new tokens, if the token program allowed the vault's authority to be the signer).
/// Defence: Anchor's duplicate mutable account check on `vault` and
/// `destination` / `source` (`InterfaceAccount` fields) in `Withdraw`, `Deposit` and
/// `FundInsurance` (`ConstraintDuplicateMutableAccount`).
#[tokio::test]
async fn the_vault_cannot_be_the_other_side_of_its_own_transfer() {
    let mut w = world().await;
    let usdc = w.market.usdc;
    let alice = w.alice.owner.pubkey();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let ix = sdk::withdraw(&w.market.group, &w.alice.account, &usdc, &usdc.vault, &alice, 1_000 * USDC, metas);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], anchor(ErrorCode::ConstraintDuplicateMutableAccount)).await;
    let ix = sdk::deposit(&w.alice.account, &usdc, &usdc.vault, &alice, 1_000 * USDC);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], anchor(ErrorCode::ConstraintDuplicateMutableAccount)).await;
    let ix = sdk::fund_insurance(&w.market.group, &usdc, &usdc.vault, &alice, 1_000 * USDC);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], anchor(ErrorCode::ConstraintDuplicateMutableAccount)).await;
}

/// Attack: the quote bank passed as both banks of a token liquidation (quote debt paid with
/// quote "collateral" at the liquidation discount) and of an insurance purchase (the fund's
/// quote bought below par). Defence: `require_keys_neq!(asset_bank, group.quote_bank)` in
/// `liquidate_token` (`AssetIsQuote`) and `require_keys_neq!(bank, quote_bank)` in
/// `buy_insurance_collateral` (`InsuranceCollateralIsQuote`).
#[tokio::test]
async fn the_quote_bank_cannot_be_the_other_bank() {
    let mut w = world().await;
    let victim = liquidatable(&mut w).await;
    let usdc = w.market.usdc;
    let bob = w.bob.owner.pubkey();
    let metas = fill_metas(&mut w.bank, &w.market, &[w.bob.account, victim.account], &w.d.perp.keys.market).await;
    let ix = sdk::liquidate_token(&w.market.group, &usdc.bank, &usdc.bank, &w.bob.account, &bob, &victim.account, 100 * USDC as i64, metas.clone());
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::AssetIsQuote)).await;
    let ix = sdk::buy_insurance_collateral(&w.market.group, &usdc, &usdc.bank, &w.bob.account, &bob, USDC, metas);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::InsuranceCollateralIsQuote)).await;
}

/// Attack: a bankruptcy resolved with the only perp market passed twice, so the count of perp
/// markets is met while the loss is split as if there were two. Defence: `resolve_bankruptcy`
/// refuses a market seen before (`PerpMarketsMissing`).
#[tokio::test]
async fn a_bankruptcy_with_one_perp_market_passed_twice() {
    let mut w = world().await;
    let carol = bankrupt(&mut w).await;
    let perp = w.d.perp.keys.market;
    let ix = sdk::resolve_bankruptcy(&w.market.group, &w.market.usdc.bank, &carol.account, &[perp, perp], &[]);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::PerpMarketsMissing)).await;
}

/// Attack: Alice, long 1 SOL of the 160 call, settles it at expiry (SOL at $170) with her
/// account passed twice, to be paid her intrinsic value twice. Defence: `settle_expired_option`
/// closes the position when it pays it and skips accounts without one
/// (`instructions/settle_expired_option.rs`): she is paid once, exactly what Bob pays, and the
/// open interest falls once.
#[tokio::test]
async fn an_expired_option_settled_with_the_holder_passed_twice_pays_once() {
    let mut w = world().await;
    let call = w.d.call.keys;
    let price = pm_client::world::model_price_per_lot(&mut w.bank, &call.market).await;
    block_trade(&mut w.bank, &w.market, &call, &w.alice, &w.bob, 1_000, price).await.unwrap();
    let now = w.bank.now().await;
    w.bank.advance_clock(w.d.expiry_ts - now + 5).await;
    let update = anchor_lang::prelude::Pubkey::new_unique();
    w.bank.set_pyth_price(&update, &pm_client::pyth::PythPrice::usd(w.market.sol_feed, 170.0, 5, w.d.expiry_ts + 1), None);
    w.bank.send(&[sdk::propose_settlement_price(&call, &update)], &[]).await.unwrap();
    w.bank.advance_clock(601).await;
    let usdc = w.market.usdc.bank;
    let (alice_before, bob_before) = (quote_balance(&mut w.bank, &w.alice.account, &usdc).await, quote_balance(&mut w.bank, &w.bob.account, &usdc).await);
    let interest_before = w.bank.load::<portfolio_margin::state::Market>(&call.market).await.open_interest_lots;
    w.bank.send(&[sdk::settle_expired_option(&call, &[w.alice.account, w.alice.account, w.bob.account])], &[]).await.unwrap();
    // Intrinsic per lot: $170 - $160 for 0.001 SOL = 10,000 quote native units.
    let paid = 1_000 * 10_000;
    assert_eq!(quote_balance(&mut w.bank, &w.alice.account, &usdc).await, alice_before + paid);
    assert_eq!(quote_balance(&mut w.bank, &w.bob.account, &usdc).await, bob_before - paid);
    let interest_after = w.bank.load::<portfolio_margin::state::Market>(&call.market).await.open_interest_lots;
    assert_eq!(interest_after, interest_before - 1_000);
    assert_eq!(position(&mut w.bank, &w.alice.account, &call.market).await, 0);
}

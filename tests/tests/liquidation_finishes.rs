//! Liquidation that always finishes: no over-liquidation past the health peak, no refusal from
//! a dust deposit, no dust that blocks bankruptcy, no liquidation flag that outlives recovery.
//! Each scenario was shown on the embedded bank and is kept as a regression.

use anchor_lang::prelude::Pubkey;
use fixed::types::I80F48;
use pm_client::world::{block_trade, Derivatives};
use pm_client::health::{fill_health_accounts_for, HealthSnapshot};
use pm_client::local_bank::LocalBank;
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::liquidation::{position_terms, simulate_position};
use portfolio_margin::state::{CollateralBank, Group, MarginAccount, Market};
use risk_engine::health::HealthKind;
use solana_signer::Signer;

const USDC: u64 = 1_000_000;
const SOL: u64 = 1_000_000_000;

struct World {
    bank: LocalBank,
    market: DemoMarket,
    d: Derivatives,
    dealer: Trader,
    keeper: Trader,
}

async fn world() -> World {
    let (mut bank, market, d) = start().await;
    let (dealer, keeper) = dealer_and_keeper(&mut bank, &market).await;
    World { bank, market, d, dealer, keeper }
}

async fn move_sol(w: &mut World, price: f64) {
    pm_integration_tests::move_sol(&mut w.bank, &w.market, &w.d, price).await;
}

async fn liquidate(w: &mut World, victim: &Pubkey, max_lots: i64) -> Result<pm_client::local_bank::TxOutcome, solana_program_test::BanksClientError> {
    let keys = w.d.perp.keys;
    let metas = fill_health_accounts_for(&mut w.bank, &w.market.group, &w.market.usdc.bank, &[w.keeper.account, *victim], &keys.market).await.unwrap();
    let ix = sdk::liquidate_position(&keys, &w.keeper.account, &w.keeper.owner.pubkey(), victim, max_lots, metas);
    w.bank.send(&[ix], &[&w.keeper.owner]).await
}

/// The liquidatee's liquidation-end health after the keeper takes `n` lots of the perp, exactly
/// as the program simulates it (perp mark and fee base: the oracle).
async fn curve(w: &mut World, victim: &Pubkey) -> impl Fn(i64) -> I80F48 {
    let snapshot = HealthSnapshot::load(&mut w.bank, &w.market.group, victim).await.unwrap();
    let market: Market = w.bank.load(&w.d.perp.keys.market).await;
    let spot = snapshot.spot_per_lot(&market.underlying).unwrap();
    let held = snapshot.account.positions[snapshot.account.position_index(&w.d.perp.keys.market).unwrap()].base_lots;
    let terms = position_terms(&snapshot.group, held, spot, spot).unwrap();
    let keeper: MarginAccount = w.bank.load(&w.keeper.account).await;
    let quote_index = w.bank.load::<CollateralBank>(&w.market.usdc.bank).await.bank_index;
    let (market_key, quote) = (w.d.perp.keys.market, w.market.usdc.bank);
    move |n: i64| {
        let (_, after, _) = simulate_position(&keeper, &snapshot.account, &market_key, &market, &quote, quote_index, &terms, n).unwrap();
        snapshot.health_of(&after, HealthKind::LiquidationEnd).unwrap().health
    }
}


/// 10 SOL of linked collateral against a 20 SOL short perp, SOL $150 -> $260: liquidation-end
/// health rises while the short is taken down to the size of the collateral, then falls.
async fn hedged_victim(w: &mut World) -> Trader {
    let victim = funded_trader(&mut w.bank, &w.market, 0, 10 * SOL).await.unwrap();
    let dealer = w.dealer.owner.insecure_clone();
    let dealer = Trader { owner: dealer, account: w.dealer.account, usdc_wallet: w.dealer.usdc_wallet, sol_wallet: w.dealer.sol_wallet };
    block_trade(&mut w.bank, &w.market, &w.d.perp.keys, &dealer, &victim, 20_000, 150_000).await.unwrap();
    move_sol(w, 260.0).await;
    victim
}

#[tokio::test]
async fn a_step_past_the_health_peak_is_refused_and_the_smallest_healing_step_is_taken() {
    let mut w = world().await;
    let victim = hedged_victim(&mut w).await;
    assert!(onchain_health(&mut w.bank, &w.market.group, &victim.account, HealthKind::Maint).await.unwrap().health_native < 0);
    // The health curve: up while the short shrinks towards the 10 SOL held, down after.
    let end = curve(&mut w, &victim.account).await;
    let points: Vec<(i64, f64)> = (0..=20).map(|k| (k * 1_000, end(k * 1_000).to_num::<f64>() / 1e6)).collect();
    let peak = points.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap().0;
    assert!((9_000..=11_000).contains(&peak), "peak at {peak}: {points:?}");
    assert!(points[0].1 < 0.0 && points[20].1 < 0.0 && end(peak) > I80F48::ZERO, "{points:?}");
    let keys = [victim.account, w.keeper.account, w.market.group, w.d.perp.keys.market];
    let before = snapshot(&mut w.bank, &keys).await;
    // 18,000 lots leave it under water and past the peak: refused (it used to be accepted,
    // charging 93.6 USDC of fees for a step that barely helped).
    assert!(end(18_000) < 0 && end(18_000) < end(17_999));
    assert_margin_error(liquidate(&mut w, &victim.account, 18_000).await, MarginError::LiquidationPastPeak);
    assert_margin_error(liquidate(&mut w, &victim.account, 20_000).await, MarginError::LiquidationPastPeak);
    assert_eq!(before, snapshot(&mut w.bank, &keys).await);
    // With a maximum that reaches the target, the program takes the smallest step that does.
    let smallest = (1..=10_000).find(|n| end(*n) >= 0).unwrap();
    liquidate(&mut w, &victim.account, 10_000).await.unwrap();
    assert_eq!(position(&mut w.bank, &w.keeper.account, &w.d.perp.keys.market).await, -smallest);
    let after = onchain_health(&mut w.bank, &w.market.group, &victim.account, HealthKind::LiquidationEnd).await.unwrap();
    assert!(after.health_native >= 0, "{after:?}");
    let state: MarginAccount = w.bank.load(&victim.account).await;
    assert_eq!(state.being_liquidated, 0);
}

#[tokio::test]
async fn a_dust_deposit_before_a_step_no_longer_refuses_it() {
    let mut w = world().await;
    // 1,000 USDC, long 30 SOL at $150, SOL to $135.
    let victim = funded_trader(&mut w.bank, &w.market, 1_000 * USDC, 0).await.unwrap();
    let dealer = Trader { owner: w.dealer.owner.insecure_clone(), account: w.dealer.account, usdc_wallet: w.dealer.usdc_wallet, sol_wallet: w.dealer.sol_wallet };
    block_trade(&mut w.bank, &w.market, &w.d.perp.keys, &victim, &dealer, 30_000, 150_000).await.unwrap();
    move_sol(&mut w, 135.0).await;
    let end = curve(&mut w, &victim.account).await;
    let exact = (1..=30_000).find(|n| end(*n) >= 0).unwrap();
    // The griefer (the victim's owner) deposits 0.03 USDC just before the keeper's exact step,
    // which made it overshoot and fail. The program now takes what reaches the target.
    let owner = victim.owner.insecure_clone();
    w.bank.mint_to(&w.market.usdc.mint, &victim.usdc_wallet, &anchor_spl::token::spl_token::ID, 30_000).await.unwrap();
    w.bank.send(&[sdk::deposit(&victim.account, &w.market.usdc, &victim.usdc_wallet, &owner.pubkey(), 30_000)], &[&owner]).await.unwrap();
    let end = curve(&mut w, &victim.account).await;
    let now_exact = (1..=30_000).find(|n| end(*n) >= 0).unwrap();
    assert!(now_exact <= exact);
    liquidate(&mut w, &victim.account, exact).await.unwrap();
    assert_eq!(position(&mut w.bank, &w.keeper.account, &w.d.perp.keys.market).await, now_exact);
    let after = onchain_health(&mut w.bank, &w.market.group, &victim.account, HealthKind::LiquidationEnd).await.unwrap();
    assert!(after.health_native >= 0);
}

#[tokio::test]
async fn dust_collateral_passes_to_the_insurance_fund_and_never_blocks_bankruptcy() {
    let mut w = world().await;
    // 2 SOL ($300) against a 400 USDC settled loss: insolvent.
    let victim = funded_trader(&mut w.bank, &w.market, 0, 2 * SOL).await.unwrap();
    force_balance(&mut w.bank, &victim.account, &w.market.usdc.bank, -400 * USDC as i64).await;
    // An insurance fund of 1,000 USDC.
    w.bank.mint_to(&w.market.usdc.mint, &w.keeper.usdc_wallet, &anchor_spl::token::spl_token::ID, 1_000 * USDC).await.unwrap();
    w.bank.send(&[sdk::fund_insurance(&w.market.group, &w.market.usdc, &w.keeper.usdc_wallet, &w.keeper.owner.pubkey(), 1_000 * USDC)], &[&w.keeper.owner]).await.unwrap();
    // Token liquidation takes all the collateral can pay for.
    let metas = pm_client::health::union_health_accounts(&mut w.bank, &w.market.group, &[w.keeper.account, victim.account]).await.unwrap();
    let liquidate_token = |max: i64| {
        sdk::liquidate_token(&w.market.group, &w.market.usdc.bank, &w.market.sol.bank, &w.keeper.account, &w.keeper.owner.pubkey(), &victim.account, max, metas.clone())
    };
    w.bank.send(&[liquidate_token(400 * USDC as i64)], &[&w.keeper.owner]).await.unwrap();
    // The deliberate case on top of the accidental one: the owner deposits one lamport.
    let owner = victim.owner.insecure_clone();
    w.bank.mint_to(&w.market.sol.mint, &victim.sol_wallet, &anchor_spl::token::spl_token::ID, 1).await.unwrap();
    w.bank.send(&[sdk::deposit(&victim.account, &w.market.sol, &victim.sol_wallet, &owner.pubkey(), 1)], &[&owner]).await.unwrap();
    let state: MarginAccount = w.bank.load(&victim.account).await;
    let dust = state.balances[state.balance_index(&w.market.sol.bank).unwrap()].balance_native;
    let debt = -state.balances[state.balance_index(&w.market.usdc.bank).unwrap()].balance_native;
    assert!(dust >= 1 && debt > 90 * USDC as i64, "dust {dust}, debt {debt}");
    // No token liquidation can take the dust (one unit of debt costs 7 lamports).
    let metas = pm_client::health::union_health_accounts(&mut w.bank, &w.market.group, &[w.keeper.account, victim.account]).await.unwrap();
    let ix = sdk::liquidate_token(&w.market.group, &w.market.usdc.bank, &w.market.sol.bank, &w.keeper.account, &w.keeper.owner.pubkey(), &victim.account, 1, metas);
    let refused = w.bank.send(&[ix], &[&w.keeper.owner]).await;
    assert!(refused.is_err());
    // Without the dust's bank the resolution cannot value it; with it, the dust passes to the
    // insurance fund (held in the vault) and the fund covers the debt.
    let keys = [victim.account, w.market.group, w.market.sol.bank];
    let before = snapshot(&mut w.bank, &keys).await;
    let perps = [w.d.perp.keys.market];
    let without = sdk::resolve_bankruptcy(&w.market.group, &w.market.usdc.bank, &victim.account, &perps, &[]);
    assert_margin_error(w.bank.send(&[without], &[]).await, MarginError::HealthAccountsMismatch);
    assert_eq!(before, snapshot(&mut w.bank, &keys).await);
    let sol_bank_before: CollateralBank = w.bank.load(&w.market.sol.bank).await;
    let with = sdk::resolve_bankruptcy(&w.market.group, &w.market.usdc.bank, &victim.account, &perps, &[(w.market.sol.bank, w.market.sol.oracle)]);
    let group: Group = w.bank.load(&w.market.group).await;
    let insurance_before = group.insurance_fund_native;
    w.bank.send(&[with], &[]).await.unwrap();
    let state: MarginAccount = w.bank.load(&victim.account).await;
    assert!(state.active_balances().next().is_none(), "the account is left empty");
    let sol_bank: CollateralBank = w.bank.load(&w.market.sol.bank).await;
    assert_eq!(sol_bank.insurance_native, dust as u64);
    assert_eq!(sol_bank.total_deposits_native, sol_bank_before.total_deposits_native - dust as u64);
    // The SOL vault still holds exactly deposits plus the insurance fund's tokens.
    assert_eq!(w.bank.token_balance(&w.market.sol.vault).await, sol_bank.total_deposits_native + sol_bank.insurance_native);
    // The fund paid the whole debt (and now owns the dust in kind).
    let group: Group = w.bank.load(&w.market.group).await;
    assert_eq!(insurance_before - group.insurance_fund_native, debt);

    // Anyone buys the fund's tokens back into quote, at the conservative price (the higher of
    // price and EMA plus twice the confidence) less the 2% fee; not more than the fund holds,
    // not nothing, and not the quote token itself.
    let metas = pm_client::health::union_health_accounts(&mut w.bank, &w.market.group, &[w.keeper.account]).await.unwrap();
    let buy = |amount: u64| {
        sdk::buy_insurance_collateral(&w.market.group, &w.market.sol, &w.market.usdc.bank, &w.keeper.account, &w.keeper.owner.pubkey(), amount, metas.clone())
    };
    let keys = [w.keeper.account, w.market.group, w.market.sol.bank];
    let before = snapshot(&mut w.bank, &keys).await;
    assert_margin_error(w.bank.send(&[buy(dust as u64 + 1)], &[&w.keeper.owner]).await, MarginError::InsuranceCollateralTooLarge);
    assert_margin_error(w.bank.send(&[buy(0)], &[&w.keeper.owner]).await, MarginError::ZeroAmount);
    let quote_as_asset = sdk::buy_insurance_collateral(&w.market.group, &w.market.usdc, &w.market.usdc.bank, &w.keeper.account, &w.keeper.owner.pubkey(), 1, metas.clone());
    assert_margin_error(w.bank.send(&[quote_as_asset], &[&w.keeper.owner]).await, MarginError::InsuranceCollateralIsQuote);
    assert_eq!(before, snapshot(&mut w.bank, &keys).await);
    let keeper_before: MarginAccount = w.bank.load(&w.keeper.account).await;
    w.bank.send(&[buy(dust as u64)], &[&w.keeper.owner]).await.unwrap();
    let keeper_after: MarginAccount = w.bank.load(&w.keeper.account).await;
    let quote = |a: &MarginAccount| a.balance_index(&w.market.usdc.bank).map(|i| a.balances[i].balance_native).unwrap_or(0);
    let sol = |a: &MarginAccount| a.balance_index(&w.market.sol.bank).map(|i| a.balances[i].balance_native).unwrap_or(0);
    // $150 x (1 + 2 x 5 bp) per SOL = 0.15015 quote native per lamport, less 2%, rounded up
    // against the buyer.
    let cost = ((dust as u128 * 15_015 * 98 + 9_999_999) / 10_000_000) as i64;
    assert_eq!(quote(&keeper_before) - quote(&keeper_after), cost);
    assert_eq!(sol(&keeper_after) - sol(&keeper_before), dust);
    let sol_bank: CollateralBank = w.bank.load(&w.market.sol.bank).await;
    assert_eq!(sol_bank.insurance_native, 0);
    assert_eq!(w.bank.token_balance(&w.market.sol.vault).await, sol_bank.total_deposits_native);
    let group_after: Group = w.bank.load(&w.market.group).await;
    assert_eq!(group_after.insurance_fund_native - group.insurance_fund_native, cost);
}

#[tokio::test]
async fn collateral_worth_more_than_the_debt_is_liquidated_not_resolved() {
    let mut w = world().await;
    let victim = funded_trader(&mut w.bank, &w.market, 0, 2 * SOL).await.unwrap();
    force_balance(&mut w.bank, &victim.account, &w.market.usdc.bank, -290 * USDC as i64).await;
    let keys = [victim.account, w.market.group, w.market.sol.bank];
    let before = snapshot(&mut w.bank, &keys).await;
    let ix = sdk::resolve_bankruptcy(&w.market.group, &w.market.usdc.bank, &victim.account, &[w.d.perp.keys.market], &[(w.market.sol.bank, w.market.sol.oracle)]);
    assert_margin_error(w.bank.send(&[ix], &[]).await, MarginError::NotBankrupt);
    assert_eq!(before, snapshot(&mut w.bank, &keys).await);
}

#[tokio::test]
async fn the_liquidation_flag_clears_once_the_account_is_healthy_again() {
    let mut w = world().await;
    let victim = funded_trader(&mut w.bank, &w.market, 1_000 * USDC, 0).await.unwrap();
    let dealer = Trader { owner: w.dealer.owner.insecure_clone(), account: w.dealer.account, usdc_wallet: w.dealer.usdc_wallet, sol_wallet: w.dealer.sol_wallet };
    block_trade(&mut w.bank, &w.market, &w.d.perp.keys, &victim, &dealer, 30_000, 150_000).await.unwrap();
    move_sol(&mut w, 135.0).await;
    // A first small step flags it.
    liquidate(&mut w, &victim.account, 1_000).await.unwrap();
    let state: MarginAccount = w.bank.load(&victim.account).await;
    assert_eq!(state.being_liquidated, 1);
    let metas = |snapshot: &HealthSnapshot| snapshot.health_accounts(&snapshot.account);
    let snapshot_v = HealthSnapshot::load(&mut w.bank, &w.market.group, &victim.account).await.unwrap();
    let clear = sdk::clear_liquidation_flag(&w.market.group, &victim.account, metas(&snapshot_v));
    // Still under water: the flag stays, nothing changes.
    let flagged = snapshot(&mut w.bank, &[victim.account]).await;
    assert_margin_error(w.bank.send(std::slice::from_ref(&clear), &[]).await, MarginError::LiquidationNotComplete);
    assert_eq!(flagged, snapshot(&mut w.bank, &[victim.account]).await);
    // The owner recovers on its own: 700 USDC more. Anyone may now clear the flag.
    let owner = victim.owner.insecure_clone();
    w.bank.mint_to(&w.market.usdc.mint, &victim.usdc_wallet, &anchor_spl::token::spl_token::ID, 700 * USDC).await.unwrap();
    w.bank.send(&[sdk::deposit(&victim.account, &w.market.usdc, &victim.usdc_wallet, &owner.pubkey(), 700 * USDC)], &[&owner]).await.unwrap();
    w.bank.send(std::slice::from_ref(&clear), &[]).await.unwrap();
    let state: MarginAccount = w.bank.load(&victim.account).await;
    assert_eq!(state.being_liquidated, 0);
    let cleared = snapshot(&mut w.bank, &[victim.account]).await;
    assert_margin_error(w.bank.send(&[clear], &[]).await, MarginError::NotBeingLiquidated);
    assert_eq!(cleared, snapshot(&mut w.bank, &[victim.account]).await);
    // A later dip that leaves maintenance positive but liquidation-end negative: an account
    // that recovered is treated like one never flagged, not liquidated.
    let mut price = 134.0;
    loop {
        move_sol(&mut w, price).await;
        let maint = onchain_health(&mut w.bank, &w.market.group, &victim.account, HealthKind::Maint).await.unwrap();
        let end = onchain_health(&mut w.bank, &w.market.group, &victim.account, HealthKind::LiquidationEnd).await.unwrap();
        if end.health_native < 0 {
            assert!(maint.health_native >= 0, "no price between: {maint:?} {end:?}");
            break;
        }
        price -= 1.0;
        assert!(price > 80.0);
    }
    assert_margin_error(liquidate(&mut w, &victim.account, 1_000).await, MarginError::NotLiquidatable);
}

/// `choose_step` on concave piecewise-linear curves (a requirement that is a maximum of
/// linear scenario losses, positive equity weighted below negative) always returns the smallest
/// size reaching zero, within its evaluation cap, over a wide range of slopes and sizes.
#[test]
fn choose_step_finds_the_smallest_size_on_concave_curves() {
    use fixed::types::I80F48;
    use portfolio_margin::liquidation::{choose_step, MAX_STEP_SEARCH};
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut worst_calls, mut bracketed) = (0u32, 0u32);
    for case in 0..20_000 {
        let max = 1 + (next() % [10, 1_000, 1_000_000, 1_000_000_000_000][case % 4]) as i64;
        // f(n) = min over pieces of (a_i + s_i n): concave; f(0) < 0.
        let pieces = 1 + (next() % 4) as usize;
        let before = -I80F48::from_num(1 + next() % 1_000_000_000);
        let mut lines = vec![(before, I80F48::from_num(1 + next() % 1_000_000) / I80F48::from_num(1 + next() % 1_000))];
        for _ in 1..pieces {
            let slope = I80F48::from_num((next() % 2_000_000) as i64 - 1_000_000) / I80F48::from_num(1 + next() % 1_000);
            let offset = before + I80F48::from_num(next() % 1_000_000_000);
            lines.push((offset, slope));
        }
        let f = |n: i64| lines.iter().map(|(a, s)| *a + *s * I80F48::from_num(n)).min().unwrap();
        if f(0) != before {
            continue;
        }
        let mut calls = 0u32;
        let result = choose_step(before, max, |n| {
            calls += 1;
            Ok(f(n))
        });
        worst_calls = worst_calls.max(calls);
        if f(max) >= 0 {
            bracketed += 1;
            let (lots, at) = result.unwrap();
            let smallest = {
                let (mut lo, mut hi) = (0i64, max);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if f(mid) >= 0 { hi = mid } else { lo = mid }
                }
                hi
            };
            assert_eq!(at, f(lots));
            assert_eq!(lots, smallest, "case {case}: max {max}, lines {lines:?}: chose {lots}, smallest {smallest} ({calls} calls)");
        }
    }
    assert!(worst_calls <= MAX_STEP_SEARCH + 2, "{worst_calls}");
    assert!(bracketed > 3_000, "{bracketed} cases reached the search");
}


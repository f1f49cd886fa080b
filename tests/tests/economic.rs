//! Economic attacks, each performed end to end on the embedded bank: every step is either
//! refused where the model says (its own error, every touched account byte unchanged) or the
//! attacker's gain is measured against the bound the model states (`docs/security.md`, "Economic attacks").
//!
//! Units: `USDC` is one USDC in native units (6 decimals); a lot is 0.001 SOL, so a SOL price of
//! $150 is 150,000 native units per lot.

use anchor_lang::prelude::Pubkey;
use pm_client::world::{block_trade, fill_health_accounts, MIN_POSITION_LOTS};
use pm_client::health::HealthSnapshot;
use pm_client::local_bank::LocalBank;
use pm_client::pyth::PythPrice;
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::DelegateLimits;
use portfolio_margin::state::{Group, MarginAccount, Market};
use risk_engine::health::HealthKind;
use solana_signer::Signer;

const USDC: i64 = 1_000_000;
const LOTS_PER_SOL: i64 = 1_000;





/// Posts a SOL print at `price` dollars whose EMA is at `ema` dollars (5 bp confidence), now,
/// without moving the clock.
async fn print_with_ema(bank: &mut LocalBank, market: &DemoMarket, price: f64, ema: f64) {
    let now = bank.now().await;
    let mut update = PythPrice::usd(market.sol_feed, price, 5, now);
    let at_ema = PythPrice::usd(market.sol_feed, ema, 5, now);
    update.ema_price = at_ema.price;
    update.ema_conf = at_ema.ema_conf;
    bank.set_pyth_price(&market.sol.oracle, &update, None);
}

/// The withdraw instruction for `amount_native` of USDC from `trader`'s account.
async fn withdraw_ix(bank: &mut LocalBank, market: &DemoMarket, trader: &Trader, amount_native: i64) -> anchor_lang::solana_program::instruction::Instruction {
    let snapshot = HealthSnapshot::load(bank, &market.group, &trader.account).await.unwrap();
    let after = sdk::after_withdrawal(&snapshot.account, &market.usdc.bank, amount_native as u64);
    sdk::withdraw(&market.group, &trader.account, &market.usdc, &trader.usdc_wallet, &trader.owner.pubkey(), amount_native as u64, snapshot.health_accounts(&after))
}

async fn withdraw_usdc(
    bank: &mut LocalBank,
    market: &DemoMarket,
    trader: &Trader,
    amount_native: i64,
) -> Result<pm_client::local_bank::TxOutcome, solana_program_test::BanksClientError> {
    let ix = withdraw_ix(bank, market, trader, amount_native).await;
    let owner = trader.owner.insecure_clone();
    bank.send(&[ix], &[&owner]).await
}

/// Most USDC (native) `trader` may withdraw now: the chain's own init-health answer.
async fn max_withdrawal(bank: &mut LocalBank, market: &DemoMarket, trader: &Trader) -> i64 {
    let snapshot = HealthSnapshot::load(bank, &market.group, &trader.account).await.unwrap();
    snapshot.max_withdrawal(&market.usdc.bank).unwrap() as i64
}

/// Withdraws the most init health allows and returns it (native USDC).
async fn withdraw_max(bank: &mut LocalBank, market: &DemoMarket, trader: &Trader) -> i64 {
    let amount = max_withdrawal(bank, market, trader).await;
    if amount > 0 {
        withdraw_usdc(bank, market, trader, amount).await.unwrap();
    }
    amount
}

/// Equity of a USDC-only account at the oracle, native USDC: maintenance token value plus
/// unweighted position equity (perp P&L and funding owed), as the chain computes them.
async fn equity(bank: &mut LocalBank, market: &DemoMarket, account: &Pubkey) -> i64 {
    let maint = onchain_health(bank, &market.group, account, HealthKind::Maint).await.unwrap();
    maint.token_value_native + maint.position_equity_native
}

async fn wallet(bank: &mut LocalBank, trader: &Trader) -> i64 {
    bank.token_balance(&trader.usdc_wallet).await as i64
}

async fn insurance_fund(bank: &mut LocalBank, market: &DemoMarket) -> i64 {
    let group: Group = bank.load(&market.group).await;
    group.insurance_fund_native
}

/// The settle_pnl instruction realising `winner`'s gain against `loser`.
async fn settle_ix(bank: &mut LocalBank, market: &DemoMarket, keys: &sdk::MarketKeys, winner: &Pubkey, loser: &Pubkey) -> anchor_lang::solana_program::instruction::Instruction {
    let metas = fill_health_accounts(bank, market, &[*loser], &keys.market).await.unwrap();
    sdk::settle_pnl(keys, winner, loser, metas)
}

/// A liquidation of `liquidatee`'s position in `keys`' market by `liquidator`, at most `max_lots`.
async fn liquidate(
    bank: &mut LocalBank,
    market: &DemoMarket,
    keys: &sdk::MarketKeys,
    liquidator: &Trader,
    liquidatee: &Pubkey,
    max_lots: i64,
) -> Result<pm_client::local_bank::TxOutcome, solana_program_test::BanksClientError> {
    let metas = fill_health_accounts(bank, market, &[liquidator.account, *liquidatee], &keys.market).await.unwrap();
    let ix = sdk::liquidate_position(keys, &liquidator.account, &liquidator.owner.pubkey(), liquidatee, max_lots, metas);
    let owner = liquidator.owner.insecure_clone();
    bank.send(&[ix], &[&owner]).await
}

/// The Mango 2022 path, step by step, against the demo SOL perp (band 2%, settle limit 20% of
/// notional a day, unrealised gains at 50% under init). The attacker owns two accounts (A0,
/// A1) and pays an accomplice (C): all three count as the attacker.
///
/// (a) an off-market self trade is refused; (b) A0 buys 20 SOL from A1 at the top of the band;
/// (c) a fresh pump to $300 with the EMA still at $150; (d) realising it: `settle_pnl` finds no
/// gain at the conservative price, the accomplice cannot buy A0's long at the pump without
/// posting the reversal to the EMA, and cash cannot be withdrawn beyond the balance (no
/// borrowing against unrealised P&L); (e) when the accomplice does post it and the print comes
/// back, the three accounts together take out no more than they put in.
#[tokio::test]
async fn mango_path_with_a_fresh_pump_extracts_nothing() {
    let (mut bank, market, d) = start().await;
    let perp = d.perp.keys;
    let deposit = 5_000 * USDC;
    let a0 = funded(&mut bank, &market, deposit).await;
    let a1 = second_account(&mut bank, &market, &a0, deposit).await;
    let c = funded(&mut bank, &market, deposit).await;
    let put_in = 3 * deposit;
    let lots = 20 * LOTS_PER_SOL;

    // (a) Off-market self trades (one native unit per lot outside the 2% band) are refused.
    let keys = [a0.account, a1.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    for price in [153_001, 146_999] {
        let result = block_trade(&mut bank, &market, &perp, &a0, &a1, lots, price).await;
        assert_margin_error(result, MarginError::TradePriceOffMarket);
        assert_eq!(before, snapshot(&mut bank, &keys).await);
    }
    // (b) In the band: A0 long 20 SOL, A1 short, at +2%.
    block_trade(&mut bank, &market, &perp, &a0, &a1, lots, 153_000).await.unwrap();

    // (c) The pump: a fresh print at $300, the EMA still at $150.
    bank.advance_clock(5).await;
    print_with_ema(&mut bank, &market, 300.0, 150.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();

    // (d) settle_pnl: at the conservative price (the EMA less twice the confidence) A0's long
    // is a loss, not a gain.
    let keys = [a0.account, a1.account, c.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    let ix = settle_ix(&mut bank, &market, &perp, &a0.account, &a1.account).await;
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::PnlNotSettleable);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // Borrowing against the unrealised $2,940: there is no borrowing, one unit past the cash
    // balance is refused.
    let a0_cash = quote_balance(&mut bank, &a0.account, &market.usdc.bank).await;
    assert_eq!(a0_cash, deposit);
    assert_margin_error(withdraw_usdc(&mut bank, &market, &a0, a0_cash + 1).await, MarginError::InsufficientBalance);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // Nor does the pumped mark free any of the cash: A0 may withdraw no more than before the
    // pump at the EMA price (its long is marked at the EMA, the requirement at the pumped print).
    let a0_max = max_withdrawal(&mut bank, &market, &a0).await;
    assert_margin_error(withdraw_usdc(&mut bank, &market, &a0, a0_max + 1).await, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // Closing against the accomplice at the pump: C must post the loss a return to the EMA
    // would bring (20 x $150 = $3,000) plus margin. Holding $2,000 of its $5,000 back in its
    // wallet, it cannot.
    let c_owner = c.owner.insecure_clone();
    withdraw_usdc(&mut bank, &market, &c, 3_000 * USDC).await.unwrap();
    let before = snapshot(&mut bank, &keys).await;
    let result = block_trade(&mut bank, &market, &perp, &c, &a0, lots, 300_000).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // (e) With all its $5,000 back in, C can take the long at the pump; A0 realises $2,940
    // and withdraws everything.
    bank.send(&[sdk::deposit(&c.account, &market.usdc, &c.usdc_wallet, &c_owner.pubkey(), 3_000 * USDC as u64)], &[&c_owner]).await.unwrap();
    block_trade(&mut bank, &market, &perp, &c, &a0, lots, 300_000).await.unwrap();
    let a0_cash = quote_balance(&mut bank, &a0.account, &market.usdc.bank).await;
    assert_eq!(a0_cash, deposit + 20 * 147 * USDC);
    withdraw_usdc(&mut bank, &market, &a0, a0_cash).await.unwrap();
    // C may withdraw only what init health allows at the EMA.
    withdraw_max(&mut bank, &market, &c).await;
    // The print comes back to $150 (EMA there too): C is still solvent, so the $2,940 came out
    // of the attacker's own accounts, not out of anyone else.
    later(&mut bank, &market, 60, 150.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let c_maint = onchain_health(&mut bank, &market.group, &c.account, HealthKind::Maint).await.unwrap();
    assert!(c_maint.health_native >= 0, "the accomplice is left insolvent: {c_maint:?}");
    // Everything closes at the oracle between A1 and C, and all three withdraw what they can.
    block_trade(&mut bank, &market, &perp, &a1, &c, lots, 150_000).await.unwrap();
    withdraw_max(&mut bank, &market, &a1).await;
    withdraw_max(&mut bank, &market, &c).await;
    for t in [&a0, &a1, &c] {
        assert_eq!(position(&mut bank, &t.account, &perp.market).await, 0);
    }
    let taken_out = wallet(&mut bank, &a0).await + wallet(&mut bank, &c).await;
    // Bound: nothing beyond what went in (the trades are zero-sum between the three accounts).
    assert!(taken_out <= put_in, "the attacker took out {taken_out} for {put_in} put in");
    assert_eq!(taken_out, put_in, "every unit comes back: no account was left with a loss");
}

/// The Mango path when the pump lasts long enough for the EMA to follow (print and EMA both at
/// $300): the model then treats $300 as the price. What the attacker can still turn into cash
/// is what `settle_pnl` realises (at most `pnl_settle_limit_ppm` = 20% of the notional a day,
/// at the conservative price, from a loser above maintenance): cash cannot be withdrawn beyond
/// the balance. When the print then gaps back to $150, the account that withdrew is left
/// bankrupt; the attacker's total extraction (wallets after minus everything put in) is bounded
/// by the one day's settle limit it realised: 20% x 20 SOL x $300 = $1,200.
#[tokio::test]
async fn mango_path_with_a_lasting_pump_extracts_at_most_one_days_settle_limit() {
    let (mut bank, market, d) = start().await;
    let perp = d.perp.keys;
    let deposit = 5_000 * USDC;
    let a0 = funded(&mut bank, &market, deposit).await;
    let a1 = second_account(&mut bank, &market, &a0, deposit).await;
    let dealer = funded(&mut bank, &market, 100_000 * USDC).await;
    let put_in = 2 * deposit;
    let lots = 20 * LOTS_PER_SOL;
    block_trade(&mut bank, &market, &perp, &a0, &a1, lots, 153_000).await.unwrap();
    // The pump has lasted: print and EMA at $300.
    later(&mut bank, &market, 3_600, 300.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    // settle_pnl realises the day's limit and no more: 20% x 20 SOL x $300 = $1,200.
    let ix = settle_ix(&mut bank, &market, &perp, &a0.account, &a1.account).await;
    bank.send(&[ix], &[]).await.unwrap();
    let limit = 1_200 * USDC;
    let realised = quote_balance(&mut bank, &a0.account, &market.usdc.bank).await - deposit;
    assert_eq!(realised, limit);
    let keys = [a0.account, a1.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    bank.advance_clock(1).await;
    let ix = settle_ix(&mut bank, &market, &perp, &a0.account, &a1.account).await;
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::PnlSettleLimitReached);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // No borrowing against the rest of the unrealised gain.
    let cash = quote_balance(&mut bank, &a0.account, &market.usdc.bank).await;
    assert_margin_error(withdraw_usdc(&mut bank, &market, &a0, cash + 1).await, MarginError::InsufficientBalance);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // A0 withdraws what init health allows (its remaining gain counts at 50%).
    let a0_out = withdraw_max(&mut bank, &market, &a0).await;
    assert!(a0_out <= cash, "{a0_out} > cash {cash}");
    // The pump ends with a gap back to $150 (no liquidation on the way down): A0 is bankrupt.
    later(&mut bank, &market, 60, 150.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let a0_maint = onchain_health(&mut bank, &market.group, &a0.account, HealthKind::Maint).await.unwrap();
    assert!(a0_maint.health_native < 0, "{a0_maint:?}");
    // A1 (short, now a winner again) closes against an honest dealer at the oracle and
    // withdraws everything.
    block_trade(&mut bank, &market, &perp, &a1, &dealer, lots, 150_000).await.unwrap();
    withdraw_max(&mut bank, &market, &a1).await;
    assert_eq!(quote_balance(&mut bank, &a1.account, &market.usdc.bank).await, 0);
    let taken_out = wallet(&mut bank, &a0).await;
    let extracted = taken_out - put_in;
    let a0_equity = equity(&mut bank, &market, &a0.account).await;
    assert!(a0_equity < 0, "the gap leaves A0 with negative equity: {a0_equity}");
    // The gain is exactly A0's shortfall (a bad debt the insurance fund and perp holders
    // cover), and it is within the one day's settle limit the attacker realised.
    assert_eq!(extracted, -a0_equity, "extraction {extracted} vs A0's shortfall {a0_equity}");
    println!("lasting pump: extracted {extracted} native USDC, bound {limit}");
    assert!(extracted <= limit, "extracted {extracted} beyond the day's settle limit {limit}");
}

/// Wash trading between two accounts of one owner: 12 round trips of 100 SOL (the whole
/// funding depth) at the top of the band, ten minutes apart, while an honest long of 10 SOL is
/// open against a dealer. The two accounts end exactly where they started (the trades are
/// zero-sum between them and they hold nothing while time passes). Funding moves at most the
/// cap: 0.1% of the price per hour, so the honest long pays at most 2 hours x 0.1% x $150 per
/// SOL (150 native per lot per hour), whatever the number of round trips.
#[tokio::test]
async fn wash_trading_between_two_accounts_of_one_owner_gains_nothing_and_funding_stays_capped() {
    let (mut bank, market, d) = start().await;
    let perp = d.perp.keys;
    let victim = funded(&mut bank, &market, 10_000 * USDC).await;
    let dealer = funded(&mut bank, &market, 100_000 * USDC).await;
    let w1 = funded(&mut bank, &market, 50_000 * USDC).await;
    let w2 = second_account(&mut bank, &market, &w1, 50_000 * USDC).await;
    block_trade(&mut bank, &market, &perp, &victim, &dealer, 10 * LOTS_PER_SOL, 150_000).await.unwrap();
    let start_index = bank.load::<Market>(&perp.market).await.funding_index_native;
    let total_before = equity(&mut bank, &market, &w1.account).await + equity(&mut bank, &market, &w2.account).await;
    let victim_before = equity(&mut bank, &market, &victim.account).await;
    let round_trips = 12;
    for _ in 0..round_trips {
        block_trade(&mut bank, &market, &perp, &w1, &w2, 100 * LOTS_PER_SOL, 153_000).await.unwrap();
        block_trade(&mut bank, &market, &perp, &w2, &w1, 100 * LOTS_PER_SOL, 153_000).await.unwrap();
        let state: Market = bank.load(&perp.market).await;
        assert!(state.funding_premium_ppm.abs() <= state.max_funding_rate_ppm as i64, "premium {} beyond the cap", state.funding_premium_ppm);
        later(&mut bank, &market, 600, 150.0).await;
        bank.send(&[sdk::refresh_risk_array(&perp), sdk::update_funding(&perp)], &[]).await.unwrap();
    }
    let total_after = equity(&mut bank, &market, &w1.account).await + equity(&mut bank, &market, &w2.account).await;
    assert_eq!(position(&mut bank, &w1.account, &perp.market).await, 0);
    assert_eq!(position(&mut bank, &w2.account, &perp.market).await, 0);
    assert!(total_after <= total_before, "wash trading raised the owner's equity from {total_before} to {total_after}");
    // 12 x 10 minutes = 2 hours at the cap at most: 2 x 0.1% x 150,000 = 300 per lot.
    let moved_per_lot = bank.load::<Market>(&perp.market).await.funding_index_native - start_index;
    let hours = round_trips as i64 * 600 / 3_600;
    let bound_per_lot = hours * 150_000 / 1_000;
    assert!(moved_per_lot > 0, "the wash did move funding (the test measures something)");
    assert!(moved_per_lot <= bound_per_lot, "funding moved {moved_per_lot} per lot, bound {bound_per_lot}");
    let victim_paid = victim_before - equity(&mut bank, &market, &victim.account).await;
    println!("wash: owner equity {total_before} -> {total_after}; funding {moved_per_lot} per lot (bound {bound_per_lot}); honest long paid {victim_paid}");
    assert!(victim_paid <= bound_per_lot * 10 * LOTS_PER_SOL, "the honest long paid {victim_paid}");

    // A delegate's slippage budget is not refilled by round trips: selling back at the same
    // price gives nothing away, so "used" only grows until the budget refuses.
    let delegate = solana_keypair::Keypair::new();
    bank.airdrop(&delegate.pubkey(), 1_000_000_000).await.unwrap();
    let limits = DelegateLimits { price_band_ppm: 2_000, max_slippage_native: 50 * USDC, expiry_ts: i64::MAX };
    bank.send(&[sdk::set_delegate(&w1.account, &w1.owner.pubkey(), &delegate.pubkey(), limits)], &[&w1.owner]).await.unwrap();
    let w2_owner = w2.owner.insecure_clone();
    let mut used_before = 0;
    loop {
        // The delegate buys 10 SOL for w1 at +0.2% ($3 given away), then sells them back at the
        // same price (nothing given away).
        let keys = [w1.account, w2.account, perp.market];
        let before = snapshot(&mut bank, &keys).await;
        let metas = fill_health_accounts(&mut bank, &market, &[w1.account, w2.account], &perp.market).await.unwrap();
        let buy = sdk::trade(&perp, &w1.account, &delegate.pubkey(), &w2.account, &w2_owner.pubkey(), 10 * LOTS_PER_SOL, 150_300, metas);
        let result = bank.send(&[buy], &[&delegate, &w2_owner]).await;
        let used = bank.load::<MarginAccount>(&w1.account).await.delegate_slippage_used_native;
        if used_before + 3 * USDC > 50 * USDC {
            assert_margin_error(result, MarginError::DelegateSlippageExceeded);
            assert_eq!(before, snapshot(&mut bank, &keys).await);
            break;
        }
        result.unwrap();
        assert_eq!(used, used_before + 3 * USDC);
        let metas = fill_health_accounts(&mut bank, &market, &[w1.account, w2.account], &perp.market).await.unwrap();
        let sell = sdk::trade(&perp, &w2.account, &w2_owner.pubkey(), &w1.account, &delegate.pubkey(), 10 * LOTS_PER_SOL, 150_300, metas);
        bank.send(&[sell], &[&delegate, &w2_owner]).await.unwrap();
        assert_eq!(bank.load::<MarginAccount>(&w1.account).await.delegate_slippage_used_native, used, "selling back refilled the budget");
        used_before = used;
    }
    assert_eq!(used_before, 48 * USDC, "16 round trips of $3 fit in the $50 budget");
}

/// Withdrawing in the same transaction as the price the program reads. The adversary picks
/// the most favourable fresh update it can post (here: a print pumped to $300 with the EMA
/// lagging at $150, in the same slot, no clock advance) right before its withdrawal. The long
/// is marked at min(print, EMA) less the confidence multiple and the requirement grows with the
/// print, so the most it can withdraw after the pump is no more than at the EMA. The same holds
/// for a short and a dumped print. A transaction bundling a price-moving action (a trade at the
/// pump, a settle) with the withdrawal is refused as a whole.
#[tokio::test]
async fn a_favourable_print_in_the_withdrawing_transaction_frees_no_margin() {
    let (mut bank, market, d) = start().await;
    let perp = d.perp.keys;
    let long = funded(&mut bank, &market, 5_000 * USDC).await;
    let short = funded(&mut bank, &market, 5_000 * USDC).await;
    let lots = 20 * LOTS_PER_SOL;
    block_trade(&mut bank, &market, &perp, &long, &short, lots, 150_000).await.unwrap();
    // At the EMA (print = EMA = $150).
    bank.advance_clock(5).await;
    print_with_ema(&mut bank, &market, 150.0, 150.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let long_at_ema = max_withdrawal(&mut bank, &market, &long).await;
    let short_at_ema = max_withdrawal(&mut bank, &market, &short).await;
    assert!(long_at_ema > 0 && short_at_ema > 0);

    // Same slot: the pumped print (its risk array refreshed, as anyone may), then in one
    // transaction a refresh and the withdrawal of one unit more than the chain allows.
    print_with_ema(&mut bank, &market, 300.0, 150.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let keys = [long.account, short.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    let long_after_pump = max_withdrawal(&mut bank, &market, &long).await;
    println!("same-slot print: long may withdraw {long_after_pump} after the pump vs {long_at_ema} at the EMA");
    assert!(long_after_pump <= long_at_ema, "a pumped print frees {long_after_pump} vs {long_at_ema} at the EMA");
    let ix = withdraw_ix(&mut bank, &market, &long, long_after_pump + 1).await;
    let result = bank.send(&[sdk::refresh_risk_array(&perp), ix], &[&long.owner]).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // A short and a dumped print: the short is marked at max(print, EMA) plus the confidence.
    print_with_ema(&mut bank, &market, 100.0, 150.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let before = snapshot(&mut bank, &keys).await;
    let short_after_dump = max_withdrawal(&mut bank, &market, &short).await;
    println!("same-slot print: short may withdraw {short_after_dump} after the dump vs {short_at_ema} at the EMA");
    assert!(short_after_dump <= short_at_ema, "a dumped print frees {short_after_dump} vs {short_at_ema} at the EMA");
    let ix = withdraw_ix(&mut bank, &market, &short, short_after_dump + 1).await;
    let result = bank.send(&[sdk::refresh_risk_array(&perp), ix], &[&short.owner]).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // Price-moving actions then a withdrawal, one transaction: at the pump, settle_pnl and a
    // withdrawal of the unrealised gain, refused at the settle.
    print_with_ema(&mut bank, &market, 300.0, 150.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let before = snapshot(&mut bank, &keys).await;
    let settle = settle_ix(&mut bank, &market, &perp, &long.account, &short.account).await;
    let cash = quote_balance(&mut bank, &long.account, &market.usdc.bank).await;
    let ix = withdraw_ix(&mut bank, &market, &long, cash).await;
    let result = bank.send(&[sdk::refresh_risk_array(&perp), settle, ix], &[&long.owner]).await;
    assert_margin_error(result, MarginError::PnlNotSettleable);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // A trade selling the long at the pump to a thin accomplice, then the withdrawal of the
    // realised $3,000: refused at the trade (the accomplice cannot post the EMA reversal).
    let thin = funded(&mut bank, &market, 2_000 * USDC).await;
    let keys = [long.account, short.account, thin.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    let metas = fill_health_accounts(&mut bank, &market, &[thin.account, long.account], &perp.market).await.unwrap();
    let sell = sdk::trade(&perp, &thin.account, &thin.owner.pubkey(), &long.account, &long.owner.pubkey(), lots, 300_000, metas);
    let mut after_sale: MarginAccount = bank.load(&long.account).await;
    after_sale.positions = Default::default();
    let realised = cash + 3_000 * USDC;
    let snap = HealthSnapshot::load(&mut bank, &market.group, &long.account).await.unwrap();
    let withdraw_after = sdk::after_withdrawal(&after_sale, &market.usdc.bank, realised as u64);
    let ix = sdk::withdraw(&market.group, &long.account, &market.usdc, &long.usdc_wallet, &long.owner.pubkey(), realised as u64, snap.health_accounts(&withdraw_after));
    let result = bank.send(&[sdk::refresh_risk_array(&perp), sell, ix], &[&long.owner, &thin.owner]).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

/// Liquidating oneself for the fee. (a) An account cannot liquidate itself. (b) An owner's
/// second account liquidates the first after it went under: the liquidator's part of the fee
/// stays with the owner, the insurance share (25% of 2% of spot per lot) leaves, so the
/// owner's total equity across both accounts falls by exactly what the insurance fund gained.
/// (c) The owner cannot make its account liquidatable cheaply: trades and withdrawals need init
/// health >= 0 afterwards (a reducing fill may not leave it under maintenance), so only a price
/// move does it, and then (b) applies.
#[tokio::test]
async fn liquidating_oneself_loses_the_insurance_share_of_the_fee() {
    let (mut bank, market, d) = start().await;
    let perp = d.perp.keys;
    let dealer = funded(&mut bank, &market, 100_000 * USDC).await;
    let under = funded(&mut bank, &market, 1_000 * USDC).await;
    let other = second_account(&mut bank, &market, &under, 10_000 * USDC).await;

    // (c) The cheapest ways to make oneself liquidatable, all refused: a position beyond init
    // health at the worst price of the band, and withdrawing the margin once it is open.
    let keys = [under.account, other.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    let result = block_trade(&mut bank, &market, &perp, &under, &other, 40 * LOTS_PER_SOL, 153_000).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    block_trade(&mut bank, &market, &perp, &under, &dealer, 28 * LOTS_PER_SOL, 150_000).await.unwrap();
    let keys = [under.account, other.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    let allowed = max_withdrawal(&mut bank, &market, &under).await;
    assert_margin_error(withdraw_usdc(&mut bank, &market, &under, allowed + 1).await, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // A healthy account cannot be liquidated by its owner's other account.
    let result = liquidate(&mut bank, &market, &perp, &other, &under.account, 28 * LOTS_PER_SOL).await;
    assert_margin_error(result, MarginError::NotLiquidatable);
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // A price move puts it under maintenance.
    later(&mut bank, &market, 1, 130.0).await;
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let maint = onchain_health(&mut bank, &market.group, &under.account, HealthKind::Maint).await.unwrap();
    assert!(maint.health_native < 0, "{maint:?}");

    // (a) The account liquidating itself.
    let before = snapshot(&mut bank, &keys).await;
    let metas = fill_health_accounts(&mut bank, &market, &[under.account], &perp.market).await.unwrap();
    let ix = sdk::liquidate_position(&perp, &under.account, &under.owner.pubkey(), &under.account, 28 * LOTS_PER_SOL, metas);
    assert_margin_error(bank.send(&[ix], &[&under.owner]).await, MarginError::LiquidatorIsLiquidatee);
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // (b) The owner's other account liquidates it.
    let total_before = equity(&mut bank, &market, &under.account).await + equity(&mut bank, &market, &other.account).await;
    let fund_before = insurance_fund(&mut bank, &market).await;
    let held_before = position(&mut bank, &under.account, &perp.market).await;
    liquidate(&mut bank, &market, &perp, &other, &under.account, 28 * LOTS_PER_SOL).await.unwrap();
    let taken = held_before - position(&mut bank, &under.account, &perp.market).await;
    assert!(taken > 0);
    let total_after = equity(&mut bank, &market, &under.account).await + equity(&mut bank, &market, &other.account).await;
    let fund_gain = insurance_fund(&mut bank, &market).await - fund_before;
    // Insurance share: 25% of 2% of $130 per lot = 650 per lot.
    assert_eq!(fund_gain, taken * 650);
    assert!(total_after < total_before, "self-liquidation raised the owner's equity: {total_before} -> {total_after}");
    // Equity is rounded down per account: the owner loses the insurance share, to two units.
    let lost = total_before - total_after;
    println!("self-liquidation: {taken} lots taken, owner lost {lost}, insurance gained {fund_gain}");
    assert!((fund_gain..=fund_gain + 2).contains(&lost), "owner lost {lost}, insurance gained {fund_gain}");
}

/// Dust: the demo perp's minimum position is 10 lots. A direct trade that would leave either
/// side with 0 < |lots| < 10 is refused with `PositionBelowMinimum` and changes nothing;
/// opening exactly the minimum, closing to zero and growing from below the minimum are allowed.
#[tokio::test]
async fn a_fill_may_not_leave_a_position_under_the_minimum() {
    let (mut bank, market, d) = start().await;
    let perp = d.perp.keys;
    let state: Market = bank.load(&perp.market).await;
    assert_eq!(state.min_position_lots, MIN_POSITION_LOTS);
    assert_eq!(MIN_POSITION_LOTS, 10);
    let a = funded(&mut bank, &market, 1_000 * USDC).await;
    let b = funded(&mut bank, &market, 1_000 * USDC).await;
    let keys = [a.account, b.account, perp.market];
    // Opening 9 lots: refused for both sides.
    let before = snapshot(&mut bank, &keys).await;
    assert_margin_error(block_trade(&mut bank, &market, &perp, &a, &b, 9, 150_000).await, MarginError::PositionBelowMinimum);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // Exactly the minimum: allowed.
    block_trade(&mut bank, &market, &perp, &a, &b, 10, 150_000).await.unwrap();
    // Reducing 10 to 5: refused; 10 to 0: allowed.
    let before = snapshot(&mut bank, &keys).await;
    assert_margin_error(block_trade(&mut bank, &market, &perp, &b, &a, 5, 150_000).await, MarginError::PositionBelowMinimum);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    // Flipping a long of 10 into a short of 5: refused too.
    assert_margin_error(block_trade(&mut bank, &market, &perp, &b, &a, 15, 150_000).await, MarginError::PositionBelowMinimum);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    block_trade(&mut bank, &market, &perp, &b, &a, 10, 150_000).await.unwrap();
    assert_eq!(position(&mut bank, &a.account, &perp.market).await, 0);
    // A position already under the minimum (a liquidator's account can be left with one, see
    // below) may grow to the minimum and beyond; here one of 5 lots is written in directly.
    force_position(&mut bank, &a.account, &perp.market, 5, -5 * 150_000).await;
    let c = funded(&mut bank, &market, 1_000 * USDC).await;
    let keys = [a.account, c.account, perp.market];
    let before = snapshot(&mut bank, &keys).await;
    assert_margin_error(block_trade(&mut bank, &market, &perp, &c, &a, 3, 150_000).await, MarginError::PositionBelowMinimum);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    block_trade(&mut bank, &market, &perp, &a, &c, 10, 150_000).await.unwrap();
    assert_eq!(position(&mut bank, &a.account, &perp.market).await, 15);
    // Options follow the same rule.
    let call = d.call.keys;
    let premium = pm_client::world::model_price_per_lot(&mut bank, &call.market).await;
    let keys = [b.account, c.account, call.market];
    let before = snapshot(&mut bank, &keys).await;
    assert_margin_error(block_trade(&mut bank, &market, &call, &b, &c, 1, premium).await, MarginError::PositionBelowMinimum);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

/// Writes a perp position of `lots` with `quote_native` into `account` (standing in for a
/// state only a liquidator's account or a market listed before the minimum can reach).
async fn force_position(bank: &mut LocalBank, account_key: &Pubkey, market_key: &Pubkey, lots: i64, quote_native: i64) {
    let market: Market = bank.load(market_key).await;
    let mut data = bank.account_data(account_key).await.expect("margin account");
    let size = core::mem::size_of::<MarginAccount>();
    let mut account: MarginAccount = bytemuck::pod_read_unaligned(&data[8..8 + size]);
    let i = account.position_index_or_insert(market_key, &market).expect("free slot");
    account.positions[i].base_lots = lots;
    account.positions[i].quote_native = quote_native;
    data[8..8 + size].copy_from_slice(bytemuck::bytes_of(&account));
    bank.set_account_data(account_key, data).await;
}

/// Dust in liquidation: a 15-lot long whose smallest target step leaves a remainder under the
/// 10-lot minimum. With a maximum covering the position, the liquidation takes all of it; with
/// a smaller maximum, it leaves exactly the minimum. Either way no position under the minimum
/// is left behind (the liquidator's own account may be: it chose its size; a position under
/// the minimum is taken whole when that account is liquidated). The liquidator's reward on the
/// minimum (10 lots x 75% x 2% x $125 = 18,750 native, $0.019) exceeds a liquidation
/// transaction's cost on the demo numbers (5,000 lamports + priority, budgeted at 100,000
/// lamports = $0.0125 at $125).
#[tokio::test]
async fn liquidation_never_leaves_a_position_under_the_minimum() {
    use pm_client::health::HealthSnapshot;
    use portfolio_margin::liquidation::{choose_step, position_terms, risk_per_lot, simulate_position};
    for (max_lots, remaining) in [(15, 0), (12, 10)] {
        let (mut bank, market, d) = start().await;
        let perp = d.perp.keys;
        let dealer = funded(&mut bank, &market, 100_000 * USDC).await;
        let keeper = funded(&mut bank, &market, 10_000 * USDC).await;
        // 15 lots ($2.25) on $0.60 of margin, then the price falls to $125.
        let thin = funded(&mut bank, &market, 600_000).await;
        block_trade(&mut bank, &market, &perp, &thin, &dealer, 15, 150_000).await.unwrap();
        later(&mut bank, &market, 1, 125.0).await;
        bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
        // Off-chain, with the program's own functions: the smallest step reaching the target
        // leaves a remainder under the minimum (else this test would measure nothing).
        let snap = HealthSnapshot::load(&mut bank, &market.group, &thin.account).await.unwrap();
        let maint = snap.health(HealthKind::Maint).unwrap().health;
        assert!(maint < 0, "not liquidatable: {maint}");
        let liquidator: MarginAccount = bank.load(&keeper.account).await;
        let state: Market = bank.load(&perp.market).await;
        let spot = snap.spot_per_lot(&state.underlying).unwrap();
        let grid = bank.load::<portfolio_margin::state::Underlying>(&state.underlying).await.grid.params();
        let terms = position_terms(&snap.group, 15, spot, risk_per_lot(&state, 15, spot, spot, grid.price_range).unwrap()).unwrap();
        let end = |n: i64| -> anchor_lang::Result<fixed::types::I80F48> {
            let (_, v, _) = simulate_position(&liquidator, &snap.account, &perp.market, &state, &market.usdc.bank, 0, &terms, n)?;
            Ok(snap.health_of(&v, HealthKind::LiquidationEnd).unwrap().health)
        };
        let before = snap.health(HealthKind::LiquidationEnd).unwrap().health;
        let (chosen, _) = choose_step(before, max_lots, end).unwrap();
        assert!(chosen < 15 && 15 - chosen < MIN_POSITION_LOTS, "the target step ({chosen} lots) leaves no dust");
        liquidate(&mut bank, &market, &perp, &keeper, &thin.account, max_lots).await.unwrap();
        assert_eq!(position(&mut bank, &thin.account, &perp.market).await, remaining, "max {max_lots}");
    }
}

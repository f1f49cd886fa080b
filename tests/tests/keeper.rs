//! The keeper's upkeep on the embedded bank: expired options proposed, waited out and settled
//! for every holder with nobody else acting; a later proposal replaced by the earliest update;
//! an idle perp's funding accrued on schedule; markets listed after the keeper started kept too.

use anchor_lang::prelude::Pubkey;
use pm_client::world::{block_trade, list_option, model_price_per_lot, option_config, setup_derivatives, Derivatives};
use pm_client::keeper::{Keeper, KeeperReport, Liquidator};
use pm_client::local_bank::LocalBank;
use pm_client::pyth::PythPrice;
use pm_client::sdk::{self, MarketKeys};
use pm_integration_tests::*;
use portfolio_margin::state::{MarginAccount, Market, MarketKind};
use solana_signer::Signer;

const USDC: u64 = 1_000_000;
const LOTS_PER_SOL: i64 = 1_000;

async fn quote(bank: &mut LocalBank, account: &Pubkey, quote_bank: &Pubkey) -> i64 {
    let state: MarginAccount = bank.load(account).await;
    state.balance_index(quote_bank).map(|i| state.balances[i].balance_native).unwrap_or(0)
}

async fn lots(bank: &mut LocalBank, account: &Pubkey, market: &Pubkey) -> i64 {
    let state: MarginAccount = bank.load(account).await;
    state.position_index(market).map(|i| state.positions[i].base_lots).unwrap_or(0)
}

/// Posts the simulated market's prices (SOL at `sol`, USDC at $1) at the bank's current time.
async fn market_prints(bank: &mut LocalBank, market: &DemoMarket, sol: f64) {
    post_price(bank, &market.sol.oracle, market.sol_feed, sol).await;
    post_price(bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
}

async fn advance_to(bank: &mut LocalBank, ts: i64) {
    let now = bank.now().await;
    bank.advance_clock(ts - now).await;
}

struct World {
    bank: LocalBank,
    market: DemoMarket,
    d: Derivatives,
    /// A 180 put on the same expiry (in the money at $171.25, like the 160 call).
    put180: MarketKeys,
    dealer: Trader,
    keeper: Trader,
    traders: Vec<Trader>,
}

impl World {
    fn options(&self) -> [MarketKeys; 3] {
        [self.d.call.keys, self.d.put.keys, self.put180]
    }

    fn accounts(&self) -> Vec<Pubkey> {
        [self.dealer.account, self.keeper.account].into_iter().chain(self.traders.iter().map(|t| t.account)).collect()
    }

    async fn keeper(&mut self) -> Keeper {
        let liquidator = Liquidator { owner: self.keeper.owner.insecure_clone(), account: self.keeper.account };
        Keeper::discover(&mut self.bank, self.market.group, liquidator).await.unwrap()
    }
}

/// `traders` accounts with option books against a dealer: every third buys 160 calls, the next
/// buys 180 puts, the next buys 130 puts and writes a 160 call.
async fn world(traders: usize) -> World {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let d = setup_derivatives(&mut bank, &market).await.unwrap();
    let put180 = list_option(&mut bank, &market, &d.sol, option_config(MarketKind::Put, 180, d.expiry_ts), 0.6).await.unwrap();
    let (dealer, keeper) = dealer_and_keeper(&mut bank, &market).await;
    let (call, put) = (d.call.keys, d.put.keys);
    let prices = [
        model_price_per_lot(&mut bank, &call.market).await,
        model_price_per_lot(&mut bank, &put.market).await,
        model_price_per_lot(&mut bank, &put180.market).await,
    ];
    let mut list = Vec::new();
    for i in 0..traders {
        let trader = funded(&mut bank, &market, 1_000 * USDC).await;
        let size = (1 + (i % 4) as i64) * LOTS_PER_SOL / 2;
        match i % 3 {
            0 => block_trade(&mut bank, &market, &call, &trader, &dealer, size, prices[0]).await.map(|_| ()).unwrap(),
            1 => block_trade(&mut bank, &market, &put180, &trader, &dealer, size, prices[2]).await.map(|_| ()).unwrap(),
            _ => {
                block_trade(&mut bank, &market, &put, &trader, &dealer, size, prices[1]).await.unwrap();
                block_trade(&mut bank, &market, &call, &dealer, &trader, LOTS_PER_SOL / 2, prices[0]).await.unwrap();
            }
        }
        list.push(trader);
    }
    World { bank, market, d, put180, dealer, keeper, traders: list }
}

#[tokio::test]
async fn the_keeper_alone_settles_expired_options_at_the_expiry_print_for_every_holder() {
    let mut w = world(30).await;
    let accounts = w.accounts();
    let options = w.options();
    let expiry = w.d.expiry_ts;
    // The simulated market prints $171.25 five seconds before expiry; nothing else happens
    // until 30 s after expiry, when the keeper runs.
    advance_to(&mut w.bank, expiry - 5).await;
    market_prints(&mut w.bank, &w.market, 171.25).await;
    advance_to(&mut w.bank, expiry + 30).await;

    let mut lots_before = Vec::new();
    let mut quote_before = Vec::new();
    for account in &accounts {
        let mut held = Vec::new();
        for keys in &options {
            held.push(lots(&mut w.bank, account, &keys.market).await);
        }
        lots_before.push(held);
        quote_before.push(quote(&mut w.bank, account, &w.market.usdc.bank).await);
    }
    let positions: u32 = lots_before.iter().flatten().filter(|l| **l != 0).count() as u32;
    let call_holders = lots_before.iter().filter(|held| held[0] != 0).count();
    assert!(call_holders > 20, "the 160 call needs two settlement batches: {call_holders} holders");

    let mut keeper = w.keeper().await;
    assert_eq!(keeper.markets.len(), 4);
    let report = keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    println!("round at expiry + 30 s: {report}");
    // Three expired arrays (intrinsic values) and the perp's, 30 days old (two transactions, 3
    // refreshes to one); three proposals, one archived update each, published at the expiry
    // second (one transaction).
    assert_eq!(
        report,
        KeeperReport { rounds: 1, refreshes: 4, settlement_proposals: 3, transactions: 3, ..KeeperReport::default() },
        "{report}"
    );
    for keys in &options {
        let state: Market = w.bank.load(&keys.market).await;
        assert_eq!((state.settlement_publish_ts, state.settlement_price_native), (expiry, 171_250));
        assert!(state.array_updated_ts >= expiry);
    }
    let early = sdk::settle_expired_option(&options[0], &[w.dealer.account]);
    assert_margin_error(w.bank.send(&[early], &[]).await, portfolio_margin::error::MarginError::SettlementNotFinal);

    // The challenge period passes; the market keeps printing.
    w.bank.advance_clock(600).await;
    market_prints(&mut w.bank, &w.market, 171.25).await;
    let report = keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    println!("round after the challenge period: {report}");
    // Two batches for the call (20 + the rest), one per put.
    assert_eq!(report, KeeperReport { rounds: 1, settlements: positions, transactions: 4, ..KeeperReport::default() }, "{report}");

    // Every position is gone and paid exactly its intrinsic value: 11,250 per call lot,
    // 8,750 per 180-put lot, nothing for the 130 put.
    let intrinsic = [171_250 - 160_000, 0, 180_000 - 171_250];
    let (mut total_before, mut total_after) = (0, 0);
    for (i, account) in accounts.iter().enumerate() {
        let state: MarginAccount = w.bank.load(account).await;
        for keys in &options {
            assert!(state.position_index(&keys.market).is_none(), "{account} still holds {}", keys.market);
        }
        let expected: i64 = lots_before[i].iter().zip(intrinsic).map(|(l, v)| l * v).sum();
        let after = quote(&mut w.bank, account, &w.market.usdc.bank).await;
        assert_eq!(after - quote_before[i], expected, "account {i}");
        total_before += quote_before[i];
        total_after += after;
    }
    assert_eq!(total_after, total_before, "settlement moves quote between accounts, never creates it");
    assert_eq!(w.bank.token_balance(&w.market.usdc.vault).await as i64, total_after, "the vault backs every balance");
    for keys in &options {
        let state: Market = w.bank.load(&keys.market).await;
        assert_eq!((state.settled, state.open_interest_lots), (1, 0));
    }

    // Nothing left to do: a round reads and sends nothing.
    w.bank.advance_clock(5).await;
    market_prints(&mut w.bank, &w.market, 171.25).await;
    let report = keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    assert_eq!(report, KeeperReport { rounds: 1, ..KeeperReport::default() }, "{report}");
}

#[tokio::test]
async fn a_later_print_proposed_by_someone_else_is_replaced_by_the_expiry_print() {
    let mut w = world(3).await;
    let accounts = w.accounts();
    let expiry = w.d.expiry_ts;
    let call = w.d.call.keys;
    advance_to(&mut w.bank, expiry - 5).await;
    market_prints(&mut w.bank, &w.market, 171.25).await;
    // Eight seconds after expiry someone proposes the print they like best: $175.
    advance_to(&mut w.bank, expiry + 8).await;
    market_prints(&mut w.bank, &w.market, 175.0).await;
    let favourable = Pubkey::new_unique();
    w.bank.set_pyth_price(&favourable, &PythPrice::usd(w.market.sol_feed, 175.0, 5, expiry + 8), None);
    w.bank.send(&[sdk::propose_settlement_price(&call, &favourable)], &[]).await.unwrap();
    let proposed_at = w.bank.now().await;

    let mut keeper = w.keeper().await;
    let report = keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    assert_eq!((report.settlement_proposals, report.errors), (3, 0), "{report}");
    let state: Market = w.bank.load(&call.market).await;
    assert_eq!((state.settlement_publish_ts, state.settlement_price_native), (expiry, 171_250));
    assert_eq!(state.settlement_proposed_ts, proposed_at, "the challenge period runs from the first proposal");
    // A second round finds nothing earlier to propose.
    let report = keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    assert_eq!((report.settlement_proposals, report.transactions), (0, 0), "{report}");

    w.bank.advance_clock(600).await;
    market_prints(&mut w.bank, &w.market, 175.0).await;
    let holder = w.traders[0].account;
    let (held, before) = (lots(&mut w.bank, &holder, &call.market).await, quote(&mut w.bank, &holder, &w.market.usdc.bank).await);
    let report = keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(quote(&mut w.bank, &holder, &w.market.usdc.bank).await - before, held * 11_250, "paid at $171.25, not $175");
}

#[tokio::test]
async fn an_idle_perp_gets_funding_on_schedule_and_new_markets_are_kept() {
    let (mut bank, market, d) = start().await;
    let trader = funded(&mut bank, &market, 10_000 * USDC).await;
    let (dealer, keeper_trader) = dealer_and_keeper(&mut bank, &market).await;
    // One fill 1% over the oracle (capped at 0.1%), 30 SOL of a 100 SOL depth: a 300 ppm
    // premium, decaying to zero over the one-hour period. Then nobody trades for hours.
    block_trade(&mut bank, &market, &d.perp.keys, &trader, &dealer, 30 * LOTS_PER_SOL, 151_500).await.unwrap();
    let start: Market = bank.load(&d.perp.keys.market).await;
    assert_eq!((start.funding_premium_ppm, start.funding_index_native), (300, 0));
    let accounts = [trader.account, dealer.account, keeper_trader.account];
    let liquidator = Liquidator { owner: keeper_trader.owner.insecure_clone(), account: keeper_trader.account };
    let mut keeper = Keeper::discover(&mut bank, market.group, liquidator).await.unwrap();
    assert_eq!(keeper.markets.len(), 3);

    // Listed after the keeper started: a second perp (never refreshed) and a put.
    let group: portfolio_margin::state::Group = bank.load(&market.group).await;
    let perp_config = pm_client::world::perp_config();
    let admin = market.admin.pubkey();
    let payer = bank.payer().pubkey();
    bank.send(&[sdk::add_perp_market(&market.group, &admin, &payer, &d.sol, group.market_count, perp_config)], &[]).await.unwrap();
    let new_perp = sdk::market_address(&market.group, group.market_count);
    list_option(&mut bank, &market, &d.sol, option_config(MarketKind::Put, 140, d.expiry_ts), 0.6).await.unwrap();

    let mut funding_times = Vec::new();
    let mut refreshes = Vec::new();
    for step in 1..=16 {
        bank.advance_clock(900).await;
        market_prints(&mut bank, &market, 150.0).await;
        let report = keeper.run(&mut bank, &accounts, 5, false).await.unwrap();
        assert_eq!(report.errors, 0, "{report}");
        let state: Market = bank.load(&d.perp.keys.market).await;
        if report.funding_updates > 0 {
            assert_eq!(state.funding_last_ts, bank.now().await);
            funding_times.push(step);
        }
        refreshes.push(report.refreshes);
        if step == 1 {
            assert_eq!(keeper.markets.len(), 5);
            assert!(keeper.perp_markets.contains(&new_perp), "bankruptcies need every perp");
            let listed: Market = bank.load(&new_perp).await;
            assert_ne!(listed.array_updated_ts, 0, "the new perp's array was computed");
        }
    }
    // Every 15 minutes while the premium lasts (one hour), then nothing: it has decayed.
    assert_eq!(funding_times, vec![1, 2, 3, 4]);
    // 300 ppm decaying linearly over the period: on average 150 ppm of $150 per lot over the
    // hour, 22.5 native units per lot; the index holds 22 and carries the half.
    let state: Market = bank.load(&d.perp.keys.market).await;
    assert_eq!(state.funding_index_native, 22);
    assert!((state.funding_carry_bits - (1i64 << 31)).abs() <= 8, "{}", state.funding_carry_bits);
    // Arrays only when due: the new perp at once, then every market once its age passes 45
    // minutes (every fourth step).
    assert_eq!(refreshes[0], 1, "{refreshes:?}");
    assert_eq!(refreshes[1..3], [0, 0], "{refreshes:?}");
    assert!(refreshes[3] >= 4, "{refreshes:?}");
    println!("refreshes per round: {refreshes:?}");

    // One failing instruction does not hold back the rest of its transaction: a copy of the
    // perp's keys naming the wrong oracle fails by name, the others go through one by one.
    keeper.markets.push(MarketKeys { oracle: market.usdc.oracle, ..d.perp.keys });
    bank.advance_clock(3_600).await;
    market_prints(&mut bank, &market, 150.0).await;
    let report = keeper.run(&mut bank, &accounts, 5, false).await.unwrap();
    // Refreshes go 3 to a transaction: the first 3 in one, then the last 3 (with the bad one)
    // fail together and are retried one by one.
    assert_eq!(pm_client::upkeep::UpkeepConfig::default().refreshes_per_transaction, 3);
    assert_eq!((report.refreshes, report.errors, report.transactions), (5, 1, 1 + 1 + 3), "{report}");
    // Stale oracles: every account's health and every due refresh fail, the run still ends well.
    bank.advance_clock(3_600).await;
    let report = keeper.run(&mut bank, &accounts, 5, false).await.unwrap();
    assert!(report.errors > 0 && report.transactions == 0, "{report}");
}

#[tokio::test]
async fn one_refused_account_does_not_hold_back_the_rest_of_its_batch() {
    let mut w = world(3).await;
    let accounts = w.accounts();
    let expiry = w.d.expiry_ts;
    advance_to(&mut w.bank, expiry - 5).await;
    market_prints(&mut w.bank, &w.market, 171.25).await;
    advance_to(&mut w.bank, expiry + 30).await;
    let mut keeper = w.keeper().await;
    keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    w.bank.advance_clock(600).await;
    market_prints(&mut w.bank, &w.market, 171.25).await;
    // The writer of a call and buyer of a 130 put now names another group (standing in for any
    // account the program refuses): both its batches fail as a whole.
    let refused = w.traders[2].account;
    let mut data = w.bank.account_data(&refused).await.unwrap();
    data[8..40].copy_from_slice(&Pubkey::new_unique().to_bytes());
    w.bank.set_account_data(&refused, data).await;

    let report = keeper.run(&mut w.bank, &accounts, 5, false).await.unwrap();
    // Call (trader 0 long, the refused one short; the dealer is flat) and 130 put (the dealer
    // short): a failed batch, then one transaction per holder. 180 put: both holders in one.
    // The refused account fails twice, by name, and the run goes on.
    assert_eq!((report.settlements, report.errors, report.transactions), (1 + 1 + 2, 2, 3 + 3 + 1), "{report}");
    for keys in w.options() {
        assert_eq!(lots(&mut w.bank, &w.dealer.account, &keys.market).await, 0);
    }
    assert_ne!(lots(&mut w.bank, &refused, &w.d.call.keys.market).await, 0);
    assert_ne!(lots(&mut w.bank, &refused, &w.d.put.keys.market).await, 0);
}

#[test]
fn the_keepers_batches_fit_a_legacy_transaction() {
    use solana_transaction::Transaction;
    const PACKET: usize = 1_232;
    let payer = Pubkey::new_unique();
    let budget = solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(1_400_000);
    let keys = || MarketKeys {
        group: Pubkey::new_unique(),
        market: Pubkey::new_unique(),
        underlying: Pubkey::new_unique(),
        oracle: Pubkey::new_unique(),
        quote_bank: Pubkey::new_unique(),
    };
    // With the embedded bank's compute-budget instruction (a cluster transaction is smaller).
    let size = |instructions: Vec<anchor_lang::solana_program::instruction::Instruction>| {
        let all: Vec<_> = std::iter::once(budget.clone()).chain(instructions).collect();
        bincode::serialize(&Transaction::new_with_payer(&all, Some(&payer))).unwrap().len()
    };
    let settle = |n: usize| {
        let accounts: Vec<Pubkey> = (0..n).map(|_| Pubkey::new_unique()).collect();
        size(vec![sdk::settle_expired_option(&keys(), &accounts)])
    };
    let config = pm_client::upkeep::UpkeepConfig::default();
    assert!(settle(config.settle_batch) <= PACKET, "{}", settle(config.settle_batch));
    assert!(settle(27) <= PACKET && settle(28) > PACKET, "the documented limit: {} / {}", settle(27), settle(28));
    // Refreshes, funding updates and proposals, each market on its own underlying (worst case).
    let group = Pubkey::new_unique();
    let n = config.instructions_per_transaction.max(config.refreshes_per_transaction);
    let markets: Vec<MarketKeys> = (0..n).map(|_| MarketKeys { group, ..keys() }).collect();
    let refresh = size(markets.iter().map(sdk::refresh_risk_array).collect());
    let funding = size(markets.iter().map(sdk::update_funding).collect());
    let proposals = size(markets.iter().map(|k| sdk::propose_settlement_price(k, &Pubkey::new_unique())).collect());
    assert!(refresh <= PACKET && funding <= PACKET && proposals <= PACKET, "{refresh} {funding} {proposals}");
    println!("bytes: settle x{} {}, refresh x{n} {refresh}, funding x{n} {funding}, proposals x{n} {proposals}", config.settle_batch, settle(config.settle_batch));
}

/// Issue 15: at 400 accounts a keeper sending one step at a time works for longer (in simulated
/// cluster time, 0.5 s a transaction) than the oracles' 60-second maximum age. Without a price source every step
/// after that fails `OracleStale` and accounts stay liquidatable; with the simulated market as
/// its source the keeper posts fresh updates and clears everything, the vaults reconciled.
#[tokio::test]
async fn a_keeper_outliving_the_oracles_maximum_age_keeps_them_fresh_and_clears_the_crash() {
    use pm_client::crash::{run_with, CrashConfig};
    let stale = run_with(CrashConfig { price_source: false, steps_in_flight: 1, ..CrashConfig::new(400) }).await.unwrap();
    assert!(stale.chain_seconds > 60, "the run outlives the oracles' age: {}", stale.chain_seconds);
    assert!(stale.unresolved > 0 && !stale.summary.unresolved.is_empty(), "{stale}");
    assert!(
        stale.summary.unresolved.iter().any(|u| u.reason.contains("OracleStale: ")),
        "reasons name the program's error: {:?}",
        &stale.summary.unresolved[..3]
    );
    assert_eq!(stale.keeper.price_updates, 0);

    let fresh = run_with(CrashConfig { steps_in_flight: 1, ..CrashConfig::new(400) }).await.unwrap();
    assert!(fresh.chain_seconds > 60, "{}", fresh.chain_seconds);
    // 133 books under water; 34 owners recover by depositing; of the other 99, 33 go bankrupt.
    assert_eq!((fresh.accounts, fresh.liquidatable_after_crash, fresh.recovered), (402, 133, 34), "{fresh}");
    let s = &fresh.summary;
    assert_eq!((s.accounts_seen, s.liquidatable, s.liquidated, s.bankrupt, s.resolved), (402, 99, 99, 33, 99), "{fresh}");
    assert_eq!(s.unresolved, vec![], "{fresh}");
    assert_eq!((fresh.keeper.errors, fresh.keeper.failed_steps, fresh.unresolved), (0, 0, 0), "{fresh}");
    assert_eq!(s.steps, 99 + 33, "one position step per book and one bankruptcy each: {fresh}");
    // An update is posted once it has used half of its 60 s: at least one per 30 s per oracle.
    assert!(fresh.keeper.price_updates as i64 >= fresh.chain_seconds / 30, "{fresh}");
    assert!(fresh.reconciled(), "{fresh}");
    assert_eq!(fresh.recovered_but_liquidated, 0);
}

/// The crash at a size that fits CI: 3,000 accounts (1,000 under water), eight steps in flight,
/// nothing unresolved and the vaults exact to the native unit. The summary's JSON carries the
/// documented keys.
#[tokio::test]
async fn a_crash_of_three_thousand_accounts_clears_with_exact_reconciliation() {
    let report = pm_client::crash::run_with(pm_client::crash::CrashConfig::new(3_000)).await.unwrap();
    println!("{report}");
    assert_eq!((report.accounts, report.liquidatable_after_crash), (3_002, 1_000), "{report}");
    let s = &report.summary;
    assert_eq!((s.liquidatable, s.liquidated, s.bankrupt, s.resolved, s.unresolved.len()), (750, 750, 250, 750, 0), "{report}");
    assert_eq!((report.unresolved, report.keeper.errors, report.keeper.failed_steps), (0, 0, 0), "{report}");
    // Eight in flight: well over the 2 steps per chain second of one at a time (0.5 s each).
    assert!(report.chain_seconds > 0 && report.summary.steps as i64 > 10 * report.chain_seconds, "{report}");
    assert_eq!(report.usdc_vault, report.usdc_claims, "{report}");
    assert_eq!(report.sol_vault, report.sol_claims, "{report}");
    let json = report.to_json();
    assert_eq!(json["keeper"]["unresolved"], serde_json::json!([]));
    assert_eq!(json["keeper"]["liquidated"], 750);
    assert_eq!(json["keeper"]["report"]["bankruptcies"], 250);
    assert_eq!(json["reconciliation"]["exact"], true);
    assert!(json["keeper"]["steps_per_second"].as_f64().unwrap() > 0.0);
}

//! The crash simulation: many accounts with varied books, a 30% gap down in the oracle and a
//! vol spike, then the keeper until no account is liquidatable. Afterwards every account is
//! healthy or resolved, and every vault reconciles exactly with the balances it backs.

use crate::world::{
    block_trade, funded_trader, model_price_per_lot, new_trader, post_price, setup_derivatives, setup_market, DemoMarket, Derivatives, Trader,
};
use crate::demo_books::{crash_book, DemoInstrument};
use crate::health::HealthSnapshot;
use crate::keeper::{bankruptcy_dust, Keeper, KeeperReport, Liquidator, RunSummary};
use crate::prices::{PriceKeeper, PriceSource, SimulatedMarket};
use crate::local_bank::LocalBank;
use crate::sdk;
use anchor_lang::prelude::Pubkey;
use anchor_spl::token::spl_token;
use anyhow::Result;
use portfolio_margin::positions::perp_cash_owed;
use portfolio_margin::state::{Group, MarginAccount, Market};
use risk_engine::health::HealthKind;
use solana_signer::Signer;

const SOL: u64 = 1_000_000_000;
const USDC: u64 = 1_000_000;
const LOTS_PER_SOL: i64 = 1_000;
/// Number of crash books the demo opens (`pm demo`).
pub const DEMO_CRASH_TRADERS: usize = 60;

/// How the simulation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashConfig {
    pub traders: usize,
    /// Simulated cluster time each keeper transaction takes, ms (sent and confirmed one after
    /// another): oracles age while the keeper works, as on a cluster.
    pub latency_ms: u64,
    /// Whether the keeper posts fresh prices from the simulated market (without it, the
    /// oracles the crash posted go stale after their 60-second maximum age).
    pub price_source: bool,
    pub max_rounds: u32,
    /// Liquidation steps the keeper keeps in flight together (1: one after another).
    pub steps_in_flight: usize,
    pub verbose: bool,
}

/// A confirmed transaction's round trip on a cluster, roughly (a slot is ~0.4 s).
pub const DEFAULT_LATENCY_MS: u64 = 500;

impl CrashConfig {
    pub fn new(traders: usize) -> Self {
        CrashConfig { traders, latency_ms: DEFAULT_LATENCY_MS, price_source: true, max_rounds: 20, steps_in_flight: 8, verbose: false }
    }
}

/// What the simulation found.
#[derive(Clone, Debug, PartialEq)]
pub struct CrashReport {
    pub accounts: usize,
    /// Accounts with negative maintenance health right after the crash.
    pub liquidatable_after_crash: usize,
    pub keeper: KeeperReport,
    /// The keeper's own account of its run (its `unresolved` must be empty).
    pub summary: RunSummary,
    /// Simulated cluster seconds the keeper's run took.
    pub chain_seconds: i64,
    /// Wall-clock seconds of the set-up (accounts and books) and of the whole simulation.
    pub setup_seconds: f64,
    pub total_seconds: f64,
    /// Accounts still liquidatable or bankrupt after the keeper (must be 0).
    pub unresolved: usize,
    /// Insurance fund before and after, quote native units.
    pub insurance_before: i64,
    pub insurance_after: i64,
    /// USDC vault tokens vs balances + insurance + open perp cash.
    pub usdc_vault: i64,
    pub usdc_claims: i64,
    /// SOL vault tokens vs balances plus the insurance fund's SOL.
    pub sol_vault: i64,
    pub sol_claims: i64,
    /// Liquidatable accounts whose owners deposited one lamport of SOL after the crash (dust
    /// that must not block their bankruptcy).
    pub dust_deposits: usize,
    /// Liquidatable accounts whose owners deposited enough to recover before the keeper came.
    pub recovered: usize,
    /// Of those, how many the keeper liquidated anyway (must be 0).
    pub recovered_but_liquidated: usize,
}

/// Opens the crash simulation's book number `i` ([`crash_book`]) against the dealer.
async fn open_book(bank: &mut LocalBank, market: &DemoMarket, d: &Derivatives, dealer: &Trader, i: usize) -> Result<Trader> {
    let book = crash_book(i);
    let (usdc, sol) = (book.usdc_dollars * USDC, book.sol * SOL);
    let trader = funded_trader(bank, market, usdc, sol).await?;
    for (instrument, qty) in book.trades {
        let (keys, price) = match instrument {
            DemoInstrument::Perp => (&d.perp.keys, 150_000),
            DemoInstrument::Call => (&d.call.keys, model_price_per_lot(bank, &d.call.keys.market).await),
            DemoInstrument::Put => (&d.put.keys, model_price_per_lot(bank, &d.put.keys.market).await),
        };
        let (buyer, seller) = if qty > 0 { (&trader, dealer) } else { (dealer, &trader) };
        block_trade(bank, market, keys, buyer, seller, qty.abs() * LOTS_PER_SOL, price).await?;
    }
    Ok(trader)
}

/// Sum of balances in `bank_key` over `accounts`, plus (for the quote bank) the cash held in
/// open perp positions, funding and socialised losses owed included.
async fn claims(bank: &mut LocalBank, accounts: &[Pubkey], bank_key: &Pubkey, with_perp_cash: bool) -> Result<i64> {
    let mut total = 0i64;
    for key in accounts {
        let account: MarginAccount = bank.load(key).await;
        total += account.balance_index(bank_key).map(|i| account.balances[i].balance_native).unwrap_or(0);
        if with_perp_cash {
            for position in account.positions.iter().filter(|p| p.in_use == 1) {
                let market: Market = bank.load(&position.market).await;
                if !market.is_option() {
                    total += position.quote_native - perp_cash_owed(position, &market).map_err(|e| anyhow::anyhow!("{e}"))?;
                }
            }
        }
    }
    Ok(total)
}

impl CrashReport {
    /// Whether every vault holds exactly what its balances (and the insurance fund) claim.
    pub fn reconciled(&self) -> bool {
        self.usdc_vault == self.usdc_claims && self.sol_vault == self.sol_claims
    }

    /// The summary as JSON (keys documented in `docs/keeper.md`).
    pub fn to_json(&self) -> serde_json::Value {
        let steps = self.summary.steps;
        serde_json::json!({
            "accounts": self.accounts,
            "liquidatable_after_crash": self.liquidatable_after_crash,
            "keeper": &self.summary,
            "chain_seconds": self.chain_seconds,
            "chain_steps_per_second": if self.chain_seconds > 0 { steps as f64 / self.chain_seconds as f64 } else { 0.0 },
            "setup_seconds": self.setup_seconds,
            "total_seconds": self.total_seconds,
            "unresolved": self.unresolved,
            "recovered": self.recovered,
            "recovered_but_liquidated": self.recovered_but_liquidated,
            "dust_deposits": self.dust_deposits,
            "insurance_before": self.insurance_before,
            "insurance_after": self.insurance_after,
            "reconciliation": {
                "usdc_vault": self.usdc_vault,
                "usdc_claims": self.usdc_claims,
                "sol_vault": self.sol_vault,
                "sol_claims": self.sol_claims,
                "exact": self.reconciled(),
            },
        })
    }
}

impl std::fmt::Display for CrashReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "crash: {} accounts, {} liquidatable after the crash", self.accounts, self.liquidatable_after_crash)?;
        write!(f, "keeper: {}", self.summary)?;
        writeln!(
            f,
            "chain time {} s ({:.1} steps per chain second); set-up {:.1} s, whole simulation {:.1} s wall",
            self.chain_seconds,
            if self.chain_seconds > 0 { self.summary.steps as f64 / self.chain_seconds as f64 } else { 0.0 },
            self.setup_seconds,
            self.total_seconds
        )?;
        writeln!(
            f,
            "owners who recovered by depositing: {} (liquidated anyway: {}); one-lamport dust deposits: {}",
            self.recovered, self.recovered_but_liquidated, self.dust_deposits
        )?;
        writeln!(f, "insurance fund: {} -> {} quote native units", self.insurance_before, self.insurance_after)?;
        writeln!(
            f,
            "reconciliation: USDC vault {} vs claims {}, SOL vault {} vs claims {}: {}",
            self.usdc_vault,
            self.usdc_claims,
            self.sol_vault,
            self.sol_claims,
            if self.reconciled() { "exact" } else { "MISMATCH" }
        )?;
        write!(f, "unresolved after the keeper: {}", self.unresolved)
    }
}

/// Runs the simulation with `traders` accounts on a fresh embedded bank, the default
/// configuration ([`CrashConfig::new`]).
pub async fn run(traders: usize, verbose: bool) -> Result<CrashReport> {
    run_with(CrashConfig { verbose, ..CrashConfig::new(traders) }).await
}

/// Runs the simulation as configured.
pub async fn run_with(config: CrashConfig) -> Result<CrashReport> {
    let CrashConfig { traders, verbose, .. } = config;
    let started = std::time::Instant::now();
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await?;
    let d = setup_derivatives(&mut bank, &market).await?;
    let admin = market.admin.pubkey();

    // The dealer takes the other side of every book; the keeper liquidates with its own account.
    let dealer = new_trader(&mut bank, &market, 20_000_000 * USDC, 0).await?;
    let owner = dealer.owner.insecure_clone();
    bank.send(&[sdk::deposit(&dealer.account, &market.usdc, &dealer.usdc_wallet, &owner.pubkey(), 20_000_000 * USDC)], &[&owner]).await?;
    let keeper_trader = new_trader(&mut bank, &market, 2_000_000 * USDC, 0).await?;
    let owner = keeper_trader.owner.insecure_clone();
    bank.send(&[sdk::deposit(&keeper_trader.account, &market.usdc, &keeper_trader.usdc_wallet, &owner.pubkey(), 1_000_000 * USDC)], &[&owner])
        .await?;
    // Seed the insurance fund from the keeper's remaining wallet.
    bank.send(&[sdk::fund_insurance(&market.group, &market.usdc, &keeper_trader.usdc_wallet, &owner.pubkey(), 2_000 * USDC)], &[&owner]).await?;

    let mut accounts = vec![dealer.account, keeper_trader.account];
    let mut books = Vec::with_capacity(traders);
    for i in 0..traders {
        let trader = open_book(&mut bank, &market, &d, &dealer, i).await?;
        accounts.push(trader.account);
        books.push(trader);
        if verbose && (i + 1) % 50 == 0 {
            println!("  opened {} books", i + 1);
        }
    }

    // The crash: over 40 minutes SOL gaps 30% down and implied vol climbs from 60% to 90% (the
    // risk authority may move a vol by at most 0.5 an hour).
    bank.advance_clock(2_400).await;
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 105.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    let vol = fixed::types::I32F32::from_num(0.9).to_bits();
    for keys in [d.call.keys, d.put.keys] {
        bank.send(&[sdk::set_volatility(&market.group, &admin, &keys.market, vol)], &[]).await?;
    }
    for keys in [d.perp.keys, d.call.keys, d.put.keys] {
        bank.send(&[sdk::refresh_risk_array(&keys)], &[]).await?;
    }
    let mut liquidatable = 0;
    for account in &accounts {
        let snapshot = HealthSnapshot::load(&mut bank, &market.group, account).await?;
        if snapshot.health(HealthKind::Maint)?.health < 0 {
            liquidatable += 1;
        }
    }
    let group: Group = bank.load(&market.group).await;
    let insurance_before = group.insurance_fund_native;
    if verbose {
        println!("  crash: SOL $150 -> $105, vol 60% -> 90%: {liquidatable} of {} accounts liquidatable", accounts.len());
    }
    // Before the keeper comes: among the leveraged books under water, some owners deposit one
    // lamport of SOL (dust that must not block their bankruptcy) and some deposit enough to
    // recover (the keeper must leave them alone).
    let (mut dust_deposits, mut recovered_accounts) = (0, Vec::new());
    for (i, trader) in books.iter().enumerate() {
        let underwater = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await?.health(HealthKind::Maint)?.health < 0;
        if !underwater || i % 6 != 2 {
            continue;
        }
        let owner = trader.owner.insecure_clone();
        if i % 12 == 2 {
            bank.mint_to(&market.usdc.mint, &trader.usdc_wallet, &spl_token::ID, 5_000 * USDC).await?;
            bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), 5_000 * USDC)], &[&owner]).await?;
            let state: MarginAccount = bank.load(&trader.account).await;
            recovered_accounts.push((trader.account, state.positions));
        } else {
            bank.mint_to(&market.sol.mint, &trader.sol_wallet, &spl_token::ID, 1).await?;
            bank.send(&[sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &owner.pubkey(), 1)], &[&owner]).await?;
            dust_deposits += 1;
        }
    }
    if verbose {
        println!("  {} owners recover by depositing, {dust_deposits} deposit one lamport of SOL", recovered_accounts.len());
    }

    let setup_seconds = started.elapsed().as_secs_f64();
    let liquidator = Liquidator { owner: keeper_trader.owner.insecure_clone(), account: keeper_trader.account };
    let mut keeper = Keeper::discover(&mut bank, market.group, liquidator).await?;
    keeper.upkeep.steps_in_flight = config.steps_in_flight;
    // The market stays where the crash left it; the keeper republishes it as its updates age.
    let source = match config.price_source {
        true => PriceSource::Simulated(SimulatedMarket::new([(market.sol_feed, 105.0), (market.usdc_feed, 1.0)])),
        false => PriceSource::None,
    };
    let mut prices = PriceKeeper::new(source);
    bank.set_transaction_latency_ms(config.latency_ms);
    let keeper_started_at = bank.now().await;
    let summary = keeper.run_with(&mut bank, &accounts, config.max_rounds, verbose, &mut prices).await?;
    let chain_seconds = bank.now().await - keeper_started_at;
    bank.set_transaction_latency_ms(0);
    let report = summary.report;
    // The checks below read health as the chain would at the end: with the market's prices.
    if config.price_source {
        post_price(&mut bank, &market.sol.oracle, market.sol_feed, 105.0).await;
        post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    }

    let mut unresolved = 0;
    for account in &accounts {
        let snapshot = HealthSnapshot::load(&mut bank, &market.group, account).await?;
        // Health not computable (a stale oracle when the keeper had no price source) counts as
        // unresolved: nobody can tell the account is safe.
        let unsafe_ = match snapshot.health(HealthKind::Maint) {
            Ok(maint) => maint.health < 0 || bankruptcy_dust(&snapshot, &market.usdc.bank)?.is_some(),
            Err(_) => true,
        };
        if unsafe_ {
            unresolved += 1;
        }
    }
    let mut recovered_but_liquidated = 0;
    for (account, positions) in &recovered_accounts {
        let state: MarginAccount = bank.load(account).await;
        if state.positions != *positions {
            recovered_but_liquidated += 1;
        }
    }
    let group: Group = bank.load(&market.group).await;
    let usdc_vault = bank.token_balance(&market.usdc.vault).await as i64;
    let sol_vault = bank.token_balance(&market.sol.vault).await as i64;
    let usdc_claims = claims(&mut bank, &accounts, &market.usdc.bank, true).await? + group.insurance_fund_native;
    // SOL claims: balances plus what bankruptcies passed to the insurance fund in kind.
    let sol_bank: portfolio_margin::state::CollateralBank = bank.load(&market.sol.bank).await;
    let sol_claims = claims(&mut bank, &accounts, &market.sol.bank, false).await? + sol_bank.insurance_native as i64;
    Ok(CrashReport {
        accounts: accounts.len(),
        liquidatable_after_crash: liquidatable,
        keeper: report,
        summary,
        chain_seconds,
        setup_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        unresolved,
        insurance_before,
        insurance_after: group.insurance_fund_native,
        usdc_vault,
        usdc_claims,
        sol_vault,
        sol_claims,
        dust_deposits,
        recovered: recovered_accounts.len(),
        recovered_but_liquidated,
    })
}

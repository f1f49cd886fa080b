//! The keeper: keeps the protocol live (see [`crate::upkeep`]: markets rediscovered, risk arrays
//! refreshed, funding accrued, expired options settled), finds unhealthy margin accounts and
//! liquidates them, unhealthiest first, with the same health computation the program runs, then
//! resolves bankruptcies.
//!
//! Each round: upkeep, then read every account, settle its positions in option markets whose
//! settlement price is final, compute its maintenance and liquidation-end health off-chain, then
//! for each liquidatable account take one step at a time: its largest position first (a maximum
//! the program clamps to the smallest step reaching the target, or the size that maximises
//! health when none does; hedge legs that would lower health are skipped), then its quote debt
//! against its collateral, and once nothing is left (or only dust), resolve the bankruptcy. A
//! step another keeper got to first fails with a liquidation error: that is a normal outcome,
//! counted and skipped, so several keepers can run at once. Before its own account runs short of
//! slots, the keeper moves to a fresh one ([`Keeper::rotate`]).

use crate::health::{fill_health_accounts_for, push_unique, union_health_accounts, HealthSnapshot};
use crate::chain::{Chain, ChainError, StepTransaction};
use crate::sdk::{self, BankKeys, MarketKeys};
use crate::prices::PriceKeeper;
use crate::upkeep::{record_error, UpkeepConfig};
use anchor_lang::prelude::Pubkey;
use anyhow::Result;
use portfolio_margin::error::MarginError;
use portfolio_margin::health::mark_per_lot;
use portfolio_margin::oracle::OracleConfig;
use portfolio_margin::liquidation::{position_terms, risk_per_lot, simulate_position, simulate_token, TokenTerms};
use portfolio_margin::state::{MarginAccount, Market};
use risk_engine::health::HealthKind;
use solana_signer::Signer;
use std::collections::{HashMap, HashSet};

/// What a keeper run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeeperReport {
    pub rounds: u32,
    /// Risk arrays refreshed (only those stale or about to be).
    pub refreshes: u32,
    /// Perp funding accruals (`update_funding`).
    pub funding_updates: u32,
    /// Settlement prices proposed, first proposals and earlier replacements.
    pub settlement_proposals: u32,
    /// Expired option markets found with no proposal and no qualifying update to propose (on a
    /// cluster: the archived update must be posted), counted per round.
    pub awaiting_settlement_price: u32,
    /// Option positions paid out and closed by `settle_expired_option`.
    pub settlements: u32,
    pub position_liquidations: u32,
    pub token_liquidations: u32,
    pub bankruptcies: u32,
    /// Steps another keeper (or a price move) made unnecessary.
    pub lost_races: u32,
    /// Failures other than lost races: an account whose health could not be computed, a step
    /// or an upkeep instruction refused (a stale oracle, say); each is printed by name.
    pub errors: u32,
    /// Transactions sent (a `send_large` counts once).
    pub transactions: u32,
    /// Moves of the keeper to a fresh margin account (its own was nearly full).
    pub rotations: u32,
    /// Fresh price updates the keeper posted from its price source (see [`crate::prices`]).
    pub price_updates: u32,
    /// Liquidation or bankruptcy steps that failed (planning or sending), retried or skipped.
    pub failed_steps: u32,
    /// Of those, how many were tried again at once (after a price refresh).
    pub retries: u32,
}

impl KeeperReport {
    /// Liquidation and bankruptcy steps attempted: done, lost races and failures.
    pub fn steps(&self) -> u32 {
        self.position_liquidations + self.token_liquidations + self.bankruptcies + self.lost_races + self.failed_steps
    }
}

/// Seconds of chain time after which the keeper repeats its market upkeep (arrays, funding,
/// settlement proposals) within a round, so a long queue never meets a stale array.
pub const UPKEEP_EVERY_SECONDS: i64 = 60;

/// Attempts at a failing step on one account before it is skipped for the round.
pub const STEP_ATTEMPTS: u32 = 3;

/// Progress lines every this many steps (and at the end of a round's queue).
pub const PROGRESS_EVERY_STEPS: u32 = 250;

/// An account still liquidatable or bankrupt at the end of a run, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unresolved {
    pub account: String,
    /// The last failure by the program's error name and message, or why none was tried.
    pub reason: String,
}

/// What a run leaves for the operator (`--output json` prints it; keys documented in
/// `docs/keeper.md`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct RunSummary {
    /// Margin accounts read in a round.
    pub accounts_seen: usize,
    /// Accounts found liquidatable or bankrupt in any round.
    pub liquidatable: usize,
    /// Accounts with at least one position or token liquidation.
    pub liquidated: usize,
    /// Accounts whose bankruptcy was resolved.
    pub bankrupt: usize,
    /// Liquidatable accounts no longer liquidatable nor bankrupt at the end.
    pub resolved: usize,
    /// Accounts still liquidatable or bankrupt (or whose health could not be computed), with reasons.
    pub unresolved: Vec<Unresolved>,
    /// Steps attempted ([`KeeperReport::steps`]).
    pub steps: u32,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    pub steps_per_second: f64,
    pub report: KeeperReport,
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "accounts seen {}, liquidatable {}, liquidated {}, bankrupt {}, resolved {}, unresolved {}",
            self.accounts_seen,
            self.liquidatable,
            self.liquidated,
            self.bankrupt,
            self.resolved,
            self.unresolved.len()
        )?;
        writeln!(f, "{} steps in {:.1} s ({:.1} steps/s); {}", self.steps, self.seconds, self.steps_per_second, self.report)?;
        for u in &self.unresolved {
            writeln!(f, "  unresolved {}: {}", u.account, u.reason)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    seen: usize,
    liquidatable: HashSet<Pubkey>,
    liquidated: HashSet<Pubkey>,
    bankrupt: HashSet<Pubkey>,
    /// Last failure per account still being worked on.
    reasons: HashMap<Pubkey, String>,
}

struct Progress {
    started: std::time::Instant,
    last_print: std::time::Instant,
    steps: u32,
    printed_steps: u32,
}

impl Progress {
    fn maybe_print(&mut self, report: &KeeperReport, done: usize, total: usize) {
        if done < total && self.steps < self.printed_steps + PROGRESS_EVERY_STEPS && self.last_print.elapsed().as_secs() < 10 {
            return;
        }
        self.last_print = std::time::Instant::now();
        self.printed_steps = self.steps;
        let seconds = self.started.elapsed().as_secs_f64();
        println!(
            "  progress: {done}/{total} accounts of round {}, {} steps ({} failed), {} price updates, {:.0} s, {:.1} steps/s",
            report.rounds,
            self.steps,
            report.failed_steps,
            report.price_updates,
            seconds,
            self.steps as f64 / seconds.max(1e-9)
        );
    }
}

impl std::fmt::Display for KeeperReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} round(s): {} refreshes, {} funding updates, {} settlement proposals ({} markets awaiting a price), {} settlements, \
             {} position / {} token liquidations, {} bankruptcies, {} lost races, {} failed steps ({} retried), {} errors, {} transactions, \
             {} account rotations, {} price updates",
            self.rounds,
            self.refreshes,
            self.funding_updates,
            self.settlement_proposals,
            self.awaiting_settlement_price,
            self.settlements,
            self.position_liquidations,
            self.token_liquidations,
            self.bankruptcies,
            self.lost_races,
            self.failed_steps,
            self.retries,
            self.errors,
            self.transactions,
            self.rotations,
            self.price_updates
        )
    }
}

/// Free position or balance slots below which the keeper moves to a fresh margin account: it
/// takes positions and collateral over and never unwinds them (that needs a market to trade
/// in), so without rotation its slots fill up and every later step fails.
pub const ROTATE_BELOW_FREE_SLOTS: usize = 2;

/// The keeper's own margin account and the key that signs for it (owner or delegate).
pub struct Liquidator {
    pub owner: solana_keypair::Keypair,
    pub account: Pubkey,
}

/// A keeper acting with its own margin account.
pub struct Keeper {
    pub group: Pubkey,
    pub quote: BankKeys,
    pub liquidator: Liquidator,
    /// Every market of the group, rediscovered each round.
    pub markets: Vec<MarketKeys>,
    /// Every perp market of the group (bankruptcy socialisation needs them all).
    pub perp_markets: Vec<Pubkey>,
    /// How eagerly markets are kept up to date.
    pub upkeep: UpkeepConfig,
}

/// How a sent step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The step went through.
    Done,
    /// Someone else got there first (or the price moved): nothing to do.
    LostRace,
}

/// The next step for one account. Sizes are maxima: the program chooses the step within them
/// (the smallest that reaches the target), so a state change between planning and execution
/// never turns a step into a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Take over at most `lots` of the position in a market.
    Position { keys: MarketKeys, lots: i64 },
    /// Pay at most `liability_native` of quote debt for collateral in `asset_bank`.
    Token { asset_bank: Pubkey, liability_native: i64 },
    /// Resolve the bankruptcy; `dust` is the (bank, oracle) of each collateral balance left,
    /// worth less than the debt, which passes to the insurance fund.
    Bankruptcy { dust: Vec<(Pubkey, Pubkey)> },
}

/// How many times a position step refused as past the peak is halved and sent again.
pub const MAX_PAST_PEAK_RETRIES: u32 = 4;

/// Errors that mean "nothing to do here any more", not a failure.
pub fn is_lost_race(error: &ChainError) -> bool {
    [MarginError::NotLiquidatable, MarginError::LiquidationComplete, MarginError::NoLiability, MarginError::NoPosition]
        .iter()
        .any(|e| error.custom_code == Some(*e as u32 + anchor_lang::error::ERROR_CODE_OFFSET))
}

impl Keeper {
    /// Finds the group's quote bank and markets on `chain` (markets are PDAs by index, so this
    /// works on the embedded bank too), with the default upkeep configuration.
    pub async fn discover<C: Chain>(chain: &mut C, group: Pubkey, liquidator: Liquidator) -> Result<Keeper> {
        let state: portfolio_margin::state::Group = chain.read(&group).await?;
        let quote_bank: portfolio_margin::state::CollateralBank = chain.read(&state.quote_bank).await?;
        let quote = BankKeys::of(state.quote_bank, &quote_bank);
        let mut keeper = Keeper { group, quote, liquidator, markets: Vec::new(), perp_markets: Vec::new(), upkeep: UpkeepConfig::default() };
        keeper.rediscover(chain).await?;
        Ok(keeper)
    }

    /// Every margin account of the group on `chain` (a cluster).
    pub async fn margin_accounts<C: Chain>(&self, chain: &mut C) -> Result<Vec<Pubkey>> {
        use anchor_lang::Discriminator;
        chain.group_account_keys(MarginAccount::DISCRIMINATOR, &self.group).await
    }

    /// Runs rounds (upkeep, settlements, liquidations) until no account is liquidatable or
    /// bankrupt (or `max_rounds`), watching oracles but posting no prices (see
    /// [`Keeper::run_with`]). Failures are counted and printed, never the end of the run.
    pub async fn run<C: Chain>(&mut self, bank: &mut C, accounts: &[Pubkey], max_rounds: u32, verbose: bool) -> Result<KeeperReport> {
        let mut prices = PriceKeeper::default();
        Ok(self.run_with(bank, accounts, max_rounds, verbose, &mut prices).await?.report)
    }

    /// Like [`Keeper::run`], keeping the oracles its steps read fresh from `prices`' source
    /// before every step, and upkeep (arrays, funding) current every [`UPKEEP_EVERY_SECONDS`] of
    /// chain time within a round. A failed step is retried (after a price refresh) up to
    /// [`STEP_ATTEMPTS`] times, then the account is skipped with its reason and tried again next
    /// round; whatever is still liquidatable after `max_rounds` is listed with its reason.
    pub async fn run_with<C: Chain>(
        &mut self,
        bank: &mut C,
        accounts: &[Pubkey],
        max_rounds: u32,
        verbose: bool,
        prices: &mut PriceKeeper,
    ) -> Result<RunSummary> {
        let started = std::time::Instant::now();
        let mut report = KeeperReport::default();
        let mut tally = Tally::default();
        let mut progress = Progress { started, last_print: started, steps: 0, printed_steps: 0 };
        let mut queue = Vec::new();
        let mut scan_failures = Vec::new();
        while report.rounds < max_rounds {
            report.rounds += 1;
            prices.new_round();
            self.watch_oracles(bank, prices).await;
            prices.ensure_fresh(bank, &mut report).await;
            let round = self.upkeep_markets(bank, &mut report, verbose).await;
            let mut last_upkeep = round.as_ref().map(|r| r.now).unwrap_or(i64::MIN);
            match bank.read::<MarginAccount>(&self.liquidator.account).await {
                Ok(own) if needs_rotation(&own) => match self.rotate(bank).await {
                    Ok(new) => {
                        report.rotations += 1;
                        if verbose {
                            println!("  the keeper's account is nearly full: moved to {new}");
                        }
                    }
                    Err(e) => record_error(&mut report, format_args!("rotating the keeper's account: {e}")),
                },
                Ok(_) => {}
                Err(e) => record_error(&mut report, format_args!("reading the keeper's account: {e}")),
            }
            let mut states = Vec::with_capacity(accounts.len());
            for account in accounts {
                match bank.read::<MarginAccount>(account).await {
                    Ok(state) => states.push((*account, state)),
                    Err(e) => record_error(&mut report, format_args!("reading {account}: {e}")),
                }
            }
            if let Some(round) = &round {
                self.settle_expired(bank, round, &mut states, &mut report, verbose).await;
            }
            (queue, scan_failures) = self.scan(bank, &states, prices, &mut report).await;
            tally.seen = tally.seen.max(states.len());
            for failure in &scan_failures {
                record_error(&mut report, format_args!("skipping {}: {}", failure.0, failure.1));
            }
            tally.liquidatable.extend(queue.iter().map(|(_, account)| *account));
            if queue.is_empty() {
                break;
            }
            if verbose {
                println!("  round {}: {} accounts to liquidate or resolve, unhealthiest first", report.rounds, queue.len());
            }
            let total = queue.len();
            let mut pending: std::collections::VecDeque<Pubkey> = queue.iter().map(|(_, account)| *account).collect();
            let mut steps_on: HashMap<Pubkey, u32> = HashMap::new();
            let mut done = 0;
            let in_flight = self.upkeep.steps_in_flight.max(1);
            while !pending.is_empty() {
                prices.ensure_fresh(bank, &mut report).await;
                if let Ok(now) = bank.now().await {
                    if now.saturating_sub(last_upkeep) >= UPKEEP_EVERY_SECONDS {
                        self.upkeep_markets(bank, &mut report, verbose).await;
                        last_upkeep = now;
                    }
                }
                // Plan the next steps of the unhealthiest pending accounts, one per account, and
                // send them together; an account that needs more steps goes back to the front.
                let mut batch = Vec::new();
                let mut slow = Vec::new();
                while batch.len() < in_flight {
                    let Some(account) = pending.pop_front() else { break };
                    let planned = async {
                        let Some(step) = self.plan(bank, &account).await? else { return anyhow::Ok(None) };
                        let tx = self.transaction_for(bank, &account, &step).await?;
                        anyhow::Ok(Some((step, tx)))
                    }
                    .await;
                    match planned {
                        Ok(None) => {
                            tally.reasons.remove(&account);
                            done += 1;
                        }
                        Ok(Some((step, tx))) => batch.push((account, step, tx)),
                        // Planning failed (a price moved, an account changed): the slow path
                        // retries it with fresh prices.
                        Err(_) => slow.push(account),
                    }
                }
                let transactions: Vec<StepTransaction> = batch.iter().map(|(_, _, tx)| tx.clone()).collect();
                let results = if transactions.is_empty() { Vec::new() } else { bank.send_steps(&transactions, &self.liquidator.owner).await };
                let mut again = Vec::new();
                for ((account, step, _), result) in batch.into_iter().zip(results) {
                    report.transactions += 1;
                    match result {
                        Ok(_) => {
                            match step {
                                Step::Position { .. } => report.position_liquidations += 1,
                                Step::Token { .. } => report.token_liquidations += 1,
                                Step::Bankruptcy { .. } => report.bankruptcies += 1,
                            }
                            match step {
                                Step::Bankruptcy { .. } => tally.bankrupt.insert(account),
                                _ => tally.liquidated.insert(account),
                            };
                            let count = steps_on.entry(account).or_default();
                            *count += 1;
                            if *count < 64 {
                                again.push(account);
                            } else {
                                done += 1;
                            }
                        }
                        Err(e) if is_lost_race(&e) => {
                            report.lost_races += 1;
                            done += 1;
                        }
                        // Past the peak, or refused for a reason a retry with fresh prices may cure.
                        Err(_) => slow.push(account),
                    }
                }
                for account in again.into_iter().rev() {
                    pending.push_front(account);
                }
                for account in slow {
                    let before = report;
                    match self.work_account(bank, &account, &mut report, prices).await {
                        Ok(()) => {
                            tally.reasons.remove(&account);
                        }
                        Err(e) => {
                            let reason = e.to_string();
                            record_error(&mut report, format_args!("{account}: skipped this round: {reason}"));
                            tally.reasons.insert(account, reason);
                        }
                    }
                    if report.position_liquidations + report.token_liquidations > before.position_liquidations + before.token_liquidations {
                        tally.liquidated.insert(account);
                    }
                    if report.bankruptcies > before.bankruptcies {
                        tally.bankrupt.insert(account);
                    }
                    done += 1;
                }
                progress.steps = report.steps();
                if verbose {
                    progress.maybe_print(&report, done, total);
                }
            }
        }
        if !queue.is_empty() {
            // Out of rounds: what is still liquidatable, as the chain stands now.
            prices.ensure_fresh(bank, &mut report).await;
            let mut states = Vec::with_capacity(accounts.len());
            for account in accounts {
                if let Ok(state) = bank.read::<MarginAccount>(account).await {
                    states.push((*account, state));
                }
            }
            (queue, scan_failures) = self.scan(bank, &states, prices, &mut report).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let mut unresolved: Vec<Unresolved> = queue
            .iter()
            .map(|(_, account)| Unresolved {
                account: account.to_string(),
                reason: tally.reasons.get(account).cloned().unwrap_or_else(|| format!("still liquidatable after {} round(s)", report.rounds)),
            })
            .collect();
        unresolved.extend(scan_failures.iter().map(|(account, reason)| Unresolved { account: account.to_string(), reason: format!("health not computable: {reason}") }));
        let resolved = tally.liquidatable.iter().filter(|a| !queue.iter().any(|(_, q)| q == *a) && !scan_failures.iter().any(|(f, _)| f == *a)).count();
        Ok(RunSummary {
            accounts_seen: tally.seen,
            liquidatable: tally.liquidatable.len(),
            liquidated: tally.liquidated.len(),
            bankrupt: tally.bankrupt.len(),
            resolved,
            unresolved,
            steps: report.steps(),
            seconds,
            steps_per_second: if seconds > 0.0 { report.steps() as f64 / seconds } else { 0.0 },
            report,
        })
    }

    /// Registers every oracle the keeper's steps can read: the quote bank's and each market
    /// underlying's (collateral banks' are added as accounts using them are scanned).
    async fn watch_oracles<C: Chain>(&self, chain: &mut C, prices: &mut PriceKeeper) {
        if let Ok(quote) = chain.read::<portfolio_margin::state::CollateralBank>(&self.quote.bank).await {
            prices.watch(OracleConfig::of_bank(&quote));
        }
        let mut underlyings: Vec<Pubkey> = self.markets.iter().map(|m| m.underlying).collect();
        underlyings.dedup();
        for key in underlyings {
            if let Ok(underlying) = chain.read::<portfolio_margin::state::Underlying>(&key).await {
                prices.watch(OracleConfig::of_underlying(&underlying));
            }
        }
    }

    /// The accounts that need work, unhealthiest first, and those whose health could not be
    /// computed (with the reason). An account whose health fails is retried once after its
    /// oracles (now watched) are refreshed.
    async fn scan<C: Chain>(
        &self,
        chain: &mut C,
        states: &[(Pubkey, MarginAccount)],
        prices: &mut PriceKeeper,
        report: &mut KeeperReport,
    ) -> (Vec<(i128, Pubkey)>, Vec<(Pubkey, String)>) {
        let mut queue = Vec::new();
        let mut failures = Vec::new();
        for (account, state) in states {
            if *account == self.liquidator.account {
                continue;
            }
            let mut checked = Err(anyhow::anyhow!("not checked"));
            for attempt in 0..2 {
                checked = match HealthSnapshot::load_for(chain, &self.group, *state, &[]).await {
                    Ok(snapshot) => {
                        let watched = prices.watched();
                        for bank in snapshot.banks.values() {
                            prices.watch(OracleConfig::of_bank(bank));
                        }
                        for underlying in snapshot.underlyings.values() {
                            prices.watch(OracleConfig::of_underlying(underlying));
                        }
                        if attempt == 0 && prices.watched() > watched {
                            prices.ensure_fresh(chain, report).await;
                        }
                        self.needs_work(&snapshot)
                    }
                    Err(e) => Err(e),
                };
                if checked.is_ok() {
                    break;
                }
                prices.ensure_fresh(chain, report).await;
            }
            match checked {
                Ok(Some(step_health)) => queue.push((step_health, *account)),
                Ok(None) => {}
                Err(e) => failures.push((*account, e.to_string())),
            }
        }
        // Unhealthiest first (bankruptcies, at i128::MIN, before all).
        queue.sort_by_key(|(health, _)| *health);
        (queue, failures)
    }

    /// `Some(maintenance health)` when the account is liquidatable or bankrupt.
    fn needs_work(&self, snapshot: &HealthSnapshot) -> Result<Option<i128>> {
        let account = &snapshot.account;
        if bankruptcy_dust(snapshot, &self.quote.bank)?.is_some() {
            return Ok(Some(i128::MIN));
        }
        let maint = snapshot.health(HealthKind::Maint)?.health;
        let end = snapshot.health(HealthKind::LiquidationEnd)?.health;
        let liquidatable = maint < 0 || (account.being_liquidated == 1 && end < 0);
        Ok(liquidatable.then(|| maint.to_bits()))
    }

    /// Moves the keeper to a fresh margin account of the same owner (the next unused index),
    /// funded with the quote the old one can withdraw while keeping init health >= 0. The old
    /// account keeps what it took over and is watched like any other. Needs the owner's key
    /// (a delegate cannot withdraw).
    pub async fn rotate<C: Chain>(&mut self, chain: &mut C) -> Result<Pubkey> {
        use anchor_spl::associated_token::{get_associated_token_address_with_program_id, spl_associated_token_account};
        let old = self.liquidator.account;
        let owner = self.liquidator.owner.pubkey();
        let state: MarginAccount = chain.read(&old).await?;
        anyhow::ensure!(state.owner == owner, "the keeper signs as a delegate: only the owner can fund a new account");
        let mut index = state.account_index.checked_add(1).ok_or_else(|| anyhow::anyhow!("no account index left"))?;
        let new = loop {
            let key = sdk::margin_account_address(&self.group, &owner, index);
            if chain.account_data(&key).await?.is_none() {
                break key;
            }
            index = index.checked_add(1).ok_or_else(|| anyhow::anyhow!("no account index left"))?;
        };
        let snapshot = HealthSnapshot::load(chain, &self.group, &old).await?;
        let amount = snapshot.max_withdrawal(&self.quote.bank)?;
        let wallet = get_associated_token_address_with_program_id(&owner, &self.quote.mint, &self.quote.token_program);
        let mut instructions = vec![
            sdk::create_margin_account(&self.group, &owner, &owner, index),
            spl_associated_token_account::instruction::create_associated_token_account_idempotent(
                &owner,
                &owner,
                &self.quote.mint,
                &self.quote.token_program,
            ),
        ];
        if amount > 0 {
            let after = sdk::after_withdrawal(&snapshot.account, &self.quote.bank, amount);
            instructions.push(sdk::withdraw(&self.group, &old, &self.quote, &wallet, &owner, amount, snapshot.health_accounts(&after)));
            instructions.push(sdk::deposit(&new, &self.quote, &wallet, &owner, amount));
        }
        chain.send_large(&instructions, &[&self.liquidator.owner]).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        self.liquidator.account = new;
        Ok(new)
    }

    /// Takes steps on one account until it is healthy or resolved. A step that fails is retried
    /// after a price refresh, up to [`STEP_ATTEMPTS`] times; then the account is given up for
    /// this round with the last reason.
    async fn work_account<C: Chain>(&self, chain: &mut C, account: &Pubkey, report: &mut KeeperReport, prices: &mut PriceKeeper) -> Result<()> {
        let mut failures = 0;
        for _ in 0..64 {
            let attempt = async {
                let Some(step) = self.plan(chain, account).await? else { return Ok(None) };
                report.transactions += 1;
                let outcome = self.execute(chain, account, &step).await?;
                anyhow::Ok(Some((step, outcome)))
            }
            .await;
            match attempt {
                Ok(None) => return Ok(()),
                Ok(Some((step, Outcome::Done))) => match step {
                    Step::Position { .. } => report.position_liquidations += 1,
                    Step::Token { .. } => report.token_liquidations += 1,
                    Step::Bankruptcy { .. } => report.bankruptcies += 1,
                },
                Ok(Some((_, Outcome::LostRace))) => {
                    report.lost_races += 1;
                    return Ok(());
                }
                Err(e) => {
                    failures += 1;
                    report.failed_steps += 1;
                    if failures >= STEP_ATTEMPTS {
                        return Err(e);
                    }
                    report.retries += 1;
                    prices.ensure_fresh(chain, report).await;
                }
            }
        }
        Ok(())
    }

    /// The next step for `account`, if it needs one.
    pub async fn plan<C: Chain>(&self, chain: &mut C, account: &Pubkey) -> Result<Option<Step>> {
        let snapshot = HealthSnapshot::load(chain, &self.group, account).await?;
        if self.needs_work(&snapshot)?.is_none() {
            return Ok(None);
        }
        self.next_step(chain, &snapshot).await
    }

    /// The transaction of a planned step (its first attempt: [`Keeper::execute`] halves a
    /// position step the program finds past the peak).
    pub async fn transaction_for<C: Chain>(&self, chain: &mut C, account: &Pubkey, step: &Step) -> Result<StepTransaction> {
        let liquidator = &self.liquidator;
        Ok(match step {
            Step::Position { keys, lots } => {
                let metas = fill_health_accounts_for(chain, &self.group, &self.quote.bank, &[liquidator.account, *account], &keys.market).await?;
                let ix = sdk::liquidate_position(keys, &liquidator.account, &liquidator.owner.pubkey(), account, *lots, metas);
                // Options change hands at their current model value: refresh in the same transaction.
                StepTransaction { instructions: vec![sdk::refresh_risk_array(keys), ix], liquidator_signs: true, large: true }
            }
            Step::Token { asset_bank, liability_native } => {
                let mut metas = union_health_accounts(chain, &self.group, &[liquidator.account, *account]).await?;
                let asset: portfolio_margin::state::CollateralBank = chain.read(asset_bank).await?;
                for key in [*asset_bank, asset.oracle, self.quote.bank, self.quote.oracle] {
                    push_unique(&mut metas, key);
                }
                let ix = sdk::liquidate_token(
                    &self.group,
                    &self.quote.bank,
                    asset_bank,
                    &liquidator.account,
                    &liquidator.owner.pubkey(),
                    account,
                    *liability_native,
                    metas,
                );
                StepTransaction { instructions: vec![ix], liquidator_signs: true, large: true }
            }
            Step::Bankruptcy { dust } => StepTransaction {
                instructions: vec![sdk::resolve_bankruptcy(&self.group, &self.quote.bank, account, &self.perp_markets, dust)],
                liquidator_signs: false,
                large: false,
            },
        })
    }

    /// Sends a planned step. A step made unnecessary in the meantime (another keeper, a price
    /// move) is [`Outcome::LostRace`], not an error.
    pub async fn execute<C: Chain>(&self, chain: &mut C, account: &Pubkey, step: &Step) -> Result<Outcome> {
        let mut tx = self.transaction_for(chain, account, step).await?;
        let past_peak = MarginError::LiquidationPastPeak as u32 + anchor_lang::error::ERROR_CODE_OFFSET;
        let (mut retries, mut lots) = (0, match step {
            Step::Position { lots, .. } => *lots,
            _ => 0,
        });
        let result = loop {
            let result = chain.send_steps(std::slice::from_ref(&tx), &self.liquidator.owner).await.pop().expect("one result");
            // The plan aims at the peak of a curve that is flat there: if the state moved since
            // (a new second of time decay, a price), the program may find it a lot past. Half the
            // size still improves health (the curve is concave).
            match (result, step) {
                (Err(e), Step::Position { keys, .. }) if e.custom_code == Some(past_peak) && lots > 1 && retries < MAX_PAST_PEAK_RETRIES => {
                    lots /= 2;
                    retries += 1;
                    tx = self.transaction_for(chain, account, &Step::Position { keys: *keys, lots }).await?;
                }
                (other, _) => break other,
            }
        };
        match result {
            Ok(_) => Ok(Outcome::Done),
            Err(e) if is_lost_race(&e) => Ok(Outcome::LostRace),
            Err(e) => Err(anyhow::anyhow!("liquidating {account}: {e}")),
        }
    }

    /// The next step for an account that needs work. Positions first, the largest notional
    /// first; a position whose every size would lower health (a hedge leg) is skipped for the
    /// next; then the quote debt against collateral; then the bankruptcy.
    async fn next_step<C: Chain>(&self, bank: &mut C, snapshot: &HealthSnapshot) -> Result<Option<Step>> {
        let victim = snapshot.account;
        if let Some(dust) = bankruptcy_dust(snapshot, &self.quote.bank)? {
            return Ok(Some(Step::Bankruptcy { dust }));
        }
        let liquidator: MarginAccount = bank.read(&self.liquidator.account).await?;
        let mut candidates: Vec<(i128, Pubkey)> = victim
            .positions
            .iter()
            .filter(|p| p.in_use == 1)
            .filter(|p| snapshot.markets.get(&p.market).is_some_and(|m| !m.is_settled(snapshot.now)))
            .map(|p| ((p.base_lots.unsigned_abs() as i128) * (snapshot.markets[&p.market].array_spot_bits as i128), p.market))
            .collect();
        candidates.sort_by(|a, b| b.0.cmp(&a.0));
        let quote_index = snapshot.banks.get(&self.quote.bank).map(|b| b.bank_index).unwrap_or(0);
        let program = crate::chain::program_error;
        for (_, market_key) in candidates {
            // The transaction refreshes the market before the step (see `execute`): plan on the
            // array the program will price it with, or the peak found here is not the program's.
            let fresh = snapshot.with_refreshed(&market_key)?;
            let end = |a: &MarginAccount| fresh.health_of(a, HealthKind::LiquidationEnd).map(|h| h.health);
            let before = end(&victim)?;
            let market: Market = fresh.markets[&market_key];
            let underlying = fresh.underlyings[&market.underlying];
            let grid = underlying.grid.params();
            let spot = fresh.spot_per_lot(&market.underlying)?;
            let held = victim.positions[victim.position_index(&market_key).expect("held")].base_lots;
            let mark = if market.is_option() { mark_per_lot(&market, spot, held, snapshot.now, true).map_err(program)? } else { spot };
            let terms = position_terms(&snapshot.group, held, mark, risk_per_lot(&market, held, mark, spot, grid.price_range).map_err(program)?).map_err(program)?;
            let after = |n: i64| -> Result<fixed::types::I80F48> {
                let (_, v, _) = simulate_position(&liquidator, &victim, &market_key, &market, &self.quote.bank, quote_index, &terms, n).map_err(program)?;
                end(&v)
            };
            let lots = step_maximum(held.unsigned_abs() as i64, &after)?;
            if after(lots)? > before {
                let keys = MarketKeys { group: self.group, market: market_key, underlying: market.underlying, oracle: underlying.oracle, quote_bank: self.quote.bank };
                return Ok(Some(Step::Position { keys, lots }));
            }
        }
        // No position helps: swap the quote debt for collateral, the largest balance first.
        let end = |a: &MarginAccount| snapshot.health_of(a, HealthKind::LiquidationEnd).map(|h| h.health);
        let before = end(&victim)?;
        let debt = victim.balance_index(&self.quote.bank).map(|i| victim.balances[i].balance_native).unwrap_or(0);
        if debt < 0 {
            let mut assets: Vec<_> = victim.active_balances().filter(|b| b.bank != self.quote.bank && b.balance_native > 0).collect();
            assets.sort_by_key(|b| std::cmp::Reverse(b.balance_native));
            for asset in assets {
                let asset_bank = asset.bank;
                let price = |key: &Pubkey| -> Result<(fixed::types::I80F48, u16)> {
                    Ok((snapshot.bank_prices(key)?.oracle, snapshot.banks[key].bank_index))
                };
                let (quote_price, quote_bank_index) = price(&self.quote.bank)?;
                let (asset_price, asset_bank_index) = price(&asset_bank)?;
                let terms = TokenTerms { quote_bank: self.quote.bank, quote_bank_index, quote_price, asset_bank, asset_bank_index, asset_price };
                // The most debt this collateral can pay for (the program clamps the same way).
                let affordable = |x: i64| simulate_token(&snapshot.group, &terms, &liquidator, &victim, x).is_ok();
                let (mut lo, mut hi) = (0, -debt);
                if affordable(hi) {
                    lo = hi;
                }
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if affordable(mid) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                if lo == 0 {
                    continue;
                }
                let after = |x: i64| -> Result<fixed::types::I80F48> {
                    let (_, v, _) = simulate_token(&snapshot.group, &terms, &liquidator, &victim, x).map_err(program)?;
                    end(&v)
                };
                let liability_native = step_maximum(lo, &after)?;
                if after(liability_native)? > before {
                    return Ok(Some(Step::Token { asset_bank, liability_native }));
                }
            }
        }
        Ok(None)
    }
}

/// Whether the keeper's own account is close to full (see [`ROTATE_BELOW_FREE_SLOTS`]).
pub fn needs_rotation(account: &MarginAccount) -> bool {
    let free_positions = account.positions.iter().filter(|p| p.in_use == 0).count();
    let free_balances = account.balances.iter().filter(|b| b.in_use == 0).count();
    free_positions < ROTATE_BELOW_FREE_SLOTS || free_balances < ROTATE_BELOW_FREE_SLOTS
}

/// `Some(dust)` when the account is bankrupt: no positions, a quote debt, and other
/// collateral worth less than the debt at the oracle (rounded up, as the program does); `dust`
/// lists the (bank, oracle) of each remaining balance.
pub fn bankruptcy_dust(snapshot: &HealthSnapshot, quote_bank: &Pubkey) -> Result<Option<Vec<(Pubkey, Pubkey)>>> {
    let account = &snapshot.account;
    if account.positions.iter().any(|p| p.in_use == 1) {
        return Ok(None);
    }
    let debt = account.balance_index(quote_bank).map(|i| account.balances[i].balance_native).unwrap_or(0);
    if debt >= 0 {
        return Ok(None);
    }
    let mut value = fixed::types::I80F48::ZERO;
    let mut dust = Vec::new();
    for balance in account.active_balances().filter(|b| b.bank != *quote_bank) {
        if balance.balance_native < 0 {
            return Ok(None);
        }
        let price = snapshot.bank_prices(&balance.bank)?.oracle;
        value += (fixed::types::I80F48::from_num(balance.balance_native) * price).ceil();
        dust.push((balance.bank, snapshot.banks[&balance.bank].oracle));
    }
    Ok((value < fixed::types::I80F48::from_num(-debt)).then_some(dust))
}

/// The maximum to send for a step of at most `max` units with liquidation-end health `after(n)`:
/// if `max` reaches zero, the smallest size that does (found here by bisection: the program
/// then settles it in two or three health evaluations instead of searching, which keeps a step within
/// compute limits for expensive books); otherwise the size that maximises health (the curve is
/// concave: found by bisection on its slope), so the program never refuses it as past the peak.
fn step_maximum(max: i64, after: &impl Fn(i64) -> Result<fixed::types::I80F48>) -> Result<i64> {
    if max <= 1 {
        return Ok(max);
    }
    if after(max)? >= 0 {
        // Smallest n in 1..=max with after(n) >= 0.
        let (mut lo, mut hi) = (1, max);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if after(mid)? >= 0 {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        return Ok(lo);
    }
    // Smallest n in 1..max whose next unit no longer raises health; max if every unit does.
    let (mut lo, mut hi) = (1, max);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if after(mid + 1)? <= after(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}



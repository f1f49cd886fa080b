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
use crate::chain::{Chain, ChainError};
use crate::sdk::{self, BankKeys, MarketKeys};
use crate::upkeep::{record_error, UpkeepConfig};
use anchor_lang::prelude::Pubkey;
use anyhow::Result;
use portfolio_margin::error::MarginError;
use portfolio_margin::health::mark_per_lot;
use portfolio_margin::liquidation::{position_terms, risk_per_lot, simulate_position, simulate_token, TokenTerms};
use portfolio_margin::state::{MarginAccount, Market};
use risk_engine::health::HealthKind;
use solana_signer::Signer;

/// What a keeper run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
}

impl std::fmt::Display for KeeperReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} round(s): {} refreshes, {} funding updates, {} settlement proposals ({} markets awaiting a price), {} settlements, \
             {} position / {} token liquidations, {} bankruptcies, {} lost races, {} errors, {} transactions, {} account rotations",
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
            self.errors,
            self.transactions,
            self.rotations
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
        Ok(chain.group_accounts(MarginAccount::DISCRIMINATOR, &self.group).await?.into_iter().map(|(k, _)| k).collect())
    }

    /// Runs rounds (upkeep, settlements, liquidations) until no account is liquidatable or
    /// bankrupt (or `max_rounds`). Failures are counted and printed, never the end of the run.
    pub async fn run<C: Chain>(&mut self, bank: &mut C, accounts: &[Pubkey], max_rounds: u32, verbose: bool) -> Result<KeeperReport> {
        let mut report = KeeperReport::default();
        while report.rounds < max_rounds {
            report.rounds += 1;
            let round = self.upkeep_markets(bank, &mut report, verbose).await;
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
            // Unhealthiest first.
            let mut queue = Vec::new();
            for (account, state) in &states {
                if *account == self.liquidator.account {
                    continue;
                }
                let checked = match HealthSnapshot::load_for(bank, &self.group, *state, &[]).await {
                    Ok(snapshot) => self.needs_work(&snapshot),
                    Err(e) => Err(e),
                };
                match checked {
                    Ok(Some(step_health)) => queue.push((step_health, *account)),
                    Ok(None) => {}
                    Err(e) => record_error(&mut report, format_args!("skipping {account}: {e}")),
                }
            }
            if queue.is_empty() {
                break;
            }
            queue.sort_by_key(|(health, _)| *health);
            if verbose {
                println!("  round {}: {} accounts to liquidate or resolve", report.rounds, queue.len());
            }
            for (_, account) in queue {
                if let Err(e) = self.work_account(bank, &account, &mut report).await {
                    record_error(&mut report, format_args!("{account}: {e}"));
                }
            }
        }
        Ok(report)
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

    /// Takes steps on one account until it is healthy, resolved, or a step is refused.
    async fn work_account<C: Chain>(&self, chain: &mut C, account: &Pubkey, report: &mut KeeperReport) -> Result<()> {
        for _ in 0..64 {
            let Some(step) = self.plan(chain, account).await? else { return Ok(()) };
            report.transactions += 1;
            match self.execute(chain, account, &step).await? {
                Outcome::Done => match step {
                    Step::Position { .. } => report.position_liquidations += 1,
                    Step::Token { .. } => report.token_liquidations += 1,
                    Step::Bankruptcy { .. } => report.bankruptcies += 1,
                },
                Outcome::LostRace => {
                    report.lost_races += 1;
                    return Ok(());
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

    /// Sends a planned step. A step made unnecessary in the meantime (another keeper, a price
    /// move) is [`Outcome::LostRace`], not an error.
    pub async fn execute<C: Chain>(&self, chain: &mut C, account: &Pubkey, step: &Step) -> Result<Outcome> {
        let liquidator = &self.liquidator;
        let result = match step {
            Step::Position { keys, lots } => {
                let metas = fill_health_accounts_for(chain, &self.group, &self.quote.bank, &[liquidator.account, *account], &keys.market).await?;
                let past_peak = MarginError::LiquidationPastPeak as u32 + anchor_lang::error::ERROR_CODE_OFFSET;
                let (mut lots, mut retries) = (*lots, 0);
                loop {
                    let ix = sdk::liquidate_position(keys, &liquidator.account, &liquidator.owner.pubkey(), account, lots, metas.clone());
                    // Options change hands at their current model value: refresh in the same transaction.
                    let result = chain.send_large(&[sdk::refresh_risk_array(keys), ix], &[&liquidator.owner]).await;
                    // The plan aims at the peak of a curve that is flat there: if the state moved
                    // since (a new second of time decay, a price), the program may find it a lot
                    // past. Half the size still improves health (the curve is concave).
                    match result {
                        Err(e) if e.custom_code == Some(past_peak) && lots > 1 && retries < MAX_PAST_PEAK_RETRIES => {
                            lots /= 2;
                            retries += 1;
                        }
                        other => break other,
                    }
                }
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
                chain.send_large(&[ix], &[&liquidator.owner]).await
            }
            Step::Bankruptcy { dust } => chain.send(&[sdk::resolve_bankruptcy(&self.group, &self.quote.bank, account, &self.perp_markets, dust)], &[]).await,
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
        let program = |e: anchor_lang::error::Error| anyhow::anyhow!("{e}");
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
            let mark = if market.is_option() { mark_per_lot(&market, spot, held, grid.price_steps, snapshot.now, true).map_err(program)? } else { spot };
            let terms = position_terms(&snapshot.group, held, mark, risk_per_lot(&market, held, mark, spot, grid.price_range).map_err(program)?);
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
/// `max` if it reaches zero (the program then takes the smallest size that does), otherwise the
/// size that maximises health (the curve is concave: found by bisection on its slope), so the
/// program never refuses it as past the peak.
fn step_maximum(max: i64, after: &impl Fn(i64) -> Result<fixed::types::I80F48>) -> Result<i64> {
    if max <= 1 || after(max)? >= 0 {
        return Ok(max);
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



//! Action-sequence fuzzing on the embedded bank (`pm fuzz`, `tests/tests/fuzz.rs`).
//!
//! A sequence starts from a fresh group (USDC quote, SOL collateral linked to a SOL underlying,
//! a perp, 30-day calls and puts, a call expiring an hour in, the RFQ venue registered and
//! approved) with several traders, a second account of one of them and a well-funded keeper.
//! It then runs random actions through the real instructions: deposits, withdrawals, trades
//! signed by owners or delegates, venue fills, delegate changes, price and vol moves, time,
//! funding, risk-array refreshes, expiry settlement, P&L settlement, liquidations, bankruptcy,
//! insurance. Most random actions are refused (that is the point: the refusals are counted by
//! error code); after every step, whatever happened, the invariants below are checked:
//!
//! 1. **Vaults reconcile**: each vault holds exactly its bank's balances plus the insurance
//!    fund's share, plus (USDC) the cash held in open perp positions and what expired options
//!    settled on one side still owe on the other.
//! 2. **No value from nothing**: at constant oracle prices, the value of every account plus the
//!    insurance fund never rises by more than what came in from outside (deposits, insurance
//!    funding), and open interest is balanced (each market's lots add up to zero).
//! 3. **Health gates hold**: after a successful withdrawal the account has init health >= 0;
//!    after a successful fill each side has init health >= 0, or only reduced its position
//!    without lowering init health and keeps maintenance health >= 0; a liquidator ends at init
//!    health >= 0; a P&L loser keeps maintenance health >= 0.
//! 4. **Liquidation helps**: a successful liquidation never lowers the liquidatee's
//!    liquidation-end health.
//! 5. **Client equals chain**: the health the client computes for every touched account equals
//!    what `health_check` returns on-chain (or both refuse).
//! 6. **Liveness**: at the end of each sequence the keeper leaves no account liquidatable or
//!    bankrupt, and the vaults still reconcile.
//!
//! A failing sequence is shrunk (actions removed while the same invariant still fails) and
//! printed as Rust, ready to be kept as a regression test.

use crate::world::{list_option, option_config, setup_derivatives, setup_market, DemoMarket, Derivatives};
use crate::health::{fill_health_accounts_for, push_unique, union_health_accounts, HealthSnapshot};
use crate::keeper::{bankruptcy_dust, Keeper, Liquidator};
use crate::local_bank::LocalBank;
use crate::pyth::PythPrice;
use crate::rfq::{self, Quote, QuoteSide};
use crate::sdk::{self, MarketKeys};
use anchor_lang::prelude::Pubkey;
use anchor_lang::AnchorDeserialize;
use anchor_spl::token::spl_token;
use anyhow::{anyhow, Result};
use fixed::types::{I32F32, I80F48};
use portfolio_margin::health::HealthReport;
use portfolio_margin::instructions::{DelegateLimits, VenueLimits};
use portfolio_margin::positions::perp_cash_owed;
use portfolio_margin::state::{CollateralBank, Group, MarginAccount, Market, MarketKind};
use risk_engine::health::HealthKind;
use solana_keypair::Keypair;
use solana_signer::Signer;
use std::collections::BTreeMap;

const USDC: u64 = 1_000_000;
const SOL: u64 = 1_000_000_000;
/// Lots per SOL in the demo markets (lot size 0.001).
const LOTS_PER_SOL: i64 = 1_000;
/// Seconds from the start of a sequence to the short-dated call's expiry.
const SHORT_EXPIRY_SECONDS: i64 = 3_600;

/// How many sequences, how long, from which seed.
#[derive(Clone, Copy, Debug)]
pub struct FuzzConfig {
    pub sequences: u32,
    pub steps_per_sequence: u32,
    pub seed: u64,
    /// Traders per sequence (besides the second account of trader 0 and the keeper).
    pub traders: usize,
    /// Compare client and chain health after every step (two transactions per touched account).
    pub check_chain_health: bool,
    pub verbose: bool,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        FuzzConfig { sequences: 20, steps_per_sequence: 40, seed: 1, traders: 4, check_chain_health: true, verbose: false }
    }
}

/// One of the group's markets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mkt {
    Perp,
    Call,
    Put,
    /// The call expiring an hour after the sequence starts.
    Short,
}

/// A collateral token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    Usdc,
    Sol,
}

/// Who signs for an account in a fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Owner,
    /// The key the account's owner made its delegate (whichever it currently is), or the
    /// account's own delegate key if it has none.
    Delegate,
}

/// One step. Parameters are concrete, so a sequence replays exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Deposit { slot: usize, token: Token, amount_native: u64 },
    Withdraw { slot: usize, token: Token, amount_native: u64 },
    Trade { market: Mkt, buyer: usize, seller: usize, lots: i64, price_per_lot_native: i64, buyer_by: By, seller_by: By },
    /// The maker's signed quote filled by the taker through the RFQ venue.
    VenueFill { market: Mkt, maker: usize, taker: usize, maker_sells: bool, lots: i64, price_per_lot_native: i64 },
    /// `delegate`: `None` removes it; `Some(i)` is delegate key `i` (a key of its own when
    /// `i == slot`, otherwise the owner key of slot `i`).
    SetDelegate { slot: usize, delegate: Option<usize>, max_slippage_native: i64 },
    /// A new SOL print, cents; the EMA at `ema_cents`; `refresh`: every risk array is
    /// refreshed right after (as a keeper would).
    MovePrice { price_cents: i64, ema_cents: i64, refresh: bool },
    MoveVol { market: Mkt, vol_bp: i64 },
    /// Time passes; fresh prints at the current prices are posted.
    AdvanceClock { seconds: i64 },
    UpdateFunding,
    Refresh { market: Mkt },
    /// Proposes the short call's settlement price from the update published `delay_seconds`
    /// after expiry.
    ProposeSettlement { delay_seconds: i64 },
    SettleExpired,
    SettlePnl { winner: usize, loser: usize },
    LiquidatePosition { liquidator: usize, liquidatee: usize, market: Mkt, max_lots: i64 },
    LiquidateToken { liquidator: usize, liquidatee: usize, max_liability_native: i64 },
    ResolveBankruptcy { slot: usize },
    ClearFlag { slot: usize },
    FundInsurance { amount_native: u64 },
    BuyInsuranceCollateral { slot: usize, amount_native: u64 },
    /// One round of the keeper (upkeep, settlements, liquidations).
    KeeperRound,
}

/// An invariant that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant (a stable tag: `vault`, `value`, `open-interest`, `init-gate`,
    /// `liquidation`, `client-chain`, `liveness`, `harness`).
    pub invariant: &'static str,
    pub step: usize,
    pub detail: String,
}

/// What a fuzzing run did.
#[derive(Clone, Debug, Default)]
pub struct FuzzReport {
    pub sequences: u32,
    pub steps: u64,
    /// Per action kind: (succeeded, refused).
    pub outcomes: BTreeMap<&'static str, (u64, u64)>,
    /// Refusals by error code (custom program error, or a description).
    pub refusals: BTreeMap<String, u64>,
    /// Health comparisons between client and chain.
    pub chain_health_checks: u64,
    /// Liquidations that lowered maintenance health (allowed: the target is liquidation-end).
    pub liquidations_lowering_maint: u64,
    /// Accounts left liquidatable at the end of a sequence because they are solvent hedged
    /// books that no single liquidation step improves (a known gap, see docs/security.md).
    pub stalled_hedged_books: u64,
    /// The same for books whose equity at maintenance weights is negative: they cannot reach
    /// `resolve_bankruptcy` either (the same gap).
    pub stalled_insolvent_books: u64,
    /// Largest fall of the total value at constant prices in one step, quote native units
    /// (rounding against accounts and socialisation's excess).
    pub largest_value_fall_native: i64,
    /// The first violation found, with the shrunk sequence that reproduces it.
    pub failure: Option<(Violation, Vec<Action>)>,
}

impl std::fmt::Display for FuzzReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} sequences, {} steps, {} client/chain health comparisons", self.sequences, self.steps, self.chain_health_checks)?;
        for (kind, (ok, refused)) in &self.outcomes {
            writeln!(f, "  {kind:<24} {ok:>7} succeeded {refused:>7} refused")?;
        }
        let mut refusals: Vec<_> = self.refusals.iter().collect();
        refusals.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = refusals.iter().take(12).map(|(k, v)| format!("{k} x{v}")).collect();
        writeln!(f, "  most frequent refusals: {}", top.join(", "))?;
        writeln!(
            f,
            "  largest value fall at constant prices in one step: {} native units; liquidations lowering maintenance health: {}; \
             hedged books no single step improves (known gap): {} solvent, {} insolvent",
            self.largest_value_fall_native, self.liquidations_lowering_maint, self.stalled_hedged_books, self.stalled_insolvent_books
        )?;
        match &self.failure {
            None => write!(f, "  no invariant violated"),
            Some((v, actions)) => write!(f, "  VIOLATION {} at step {}: {}\n  shrunk to {} actions:\n{}", v.invariant, v.step, v.detail, actions.len(), as_rust(actions)),
        }
    }
}

/// `actions` as a Rust expression (with `use pm_client::fuzz::{Action::*, Mkt::*, Token::*, By}`).
pub fn as_rust(actions: &[Action]) -> String {
    let mut out = String::from("vec![\n");
    for a in actions {
        out.push_str(&format!("    {a:?},\n"));
    }
    out.push(']');
    out.replace("buyer_by: Owner", "buyer_by: By::Owner")
        .replace("buyer_by: Delegate", "buyer_by: By::Delegate")
        .replace("seller_by: Owner", "seller_by: By::Owner")
        .replace("seller_by: Delegate", "seller_by: By::Delegate")
}

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// One margin account the sequence acts with.
pub struct Slot {
    pub owner: Keypair,
    pub account: Pubkey,
    pub usdc_wallet: Pubkey,
    pub sol_wallet: Pubkey,
    /// A key of its own this account may make its delegate.
    pub delegate_key: Keypair,
}

/// The group and actors of one sequence.
pub struct World {
    pub bank: LocalBank,
    pub market: DemoMarket,
    pub d: Derivatives,
    pub short: MarketKeys,
    pub short_expiry_ts: i64,
    pub slots: Vec<Slot>,
    /// Current SOL print and EMA, cents.
    pub price_cents: i64,
    pub ema_cents: i64,
    quote_nonce: u64,
    /// The state right after set-up: every sequence starts from it.
    checkpoint: Option<crate::local_bank::BankCheckpoint>,
}

impl World {
    /// A fresh group with `traders` traders, trader 0's second account and the keeper (last).
    pub async fn new(traders: usize) -> Result<World> {
        let mut bank = LocalBank::start_with(rfq::add_rfq_venue).await;
        let market = setup_market(&mut bank).await?;
        let d = setup_derivatives(&mut bank, &market).await?;
        let short_expiry_ts = bank.now().await + SHORT_EXPIRY_SECONDS;
        let short = list_option(&mut bank, &market, &d.sol, option_config(MarketKind::Call, 150, short_expiry_ts), 0.6).await?;
        let payer = bank.payer().pubkey();
        bank.send(&[sdk::register_venue(&market.group, &market.admin.pubkey(), &payer, &rfq_venue::ID)], &[]).await?;
        let mut world = World { bank, market, d, short, short_expiry_ts, slots: Vec::new(), price_cents: 15_000, ema_cents: 15_000, quote_nonce: 0, checkpoint: None };
        for i in 0..traders {
            // Varied sizes: 2,000 to 8,000 USDC and 0 to 30 SOL.
            let usdc = (2_000 + 2_000 * (i as u64 % 4)) * USDC;
            let sol = (10 * (i as u64 % 4)) * SOL;
            world.add_slot(usdc, sol, None).await?;
        }
        // Trader 0's second account.
        world.add_slot(3_000 * USDC, 5 * SOL, Some(0)).await?;
        // The keeper: deep USDC, also the insurance fund's first funder.
        world.add_slot(1_000_000 * USDC, 0, None).await?;
        let keeper = world.slots.last().expect("keeper");
        let ix = sdk::fund_insurance(&world.market.group, &world.market.usdc, &keeper.usdc_wallet, &keeper.owner.pubkey(), 5_000 * USDC);
        let owner = keeper.owner.insecure_clone();
        world.bank.send(&[ix], &[&owner]).await?;
        let keys = world.state_keys();
        world.checkpoint = Some(world.bank.capture(&keys).await);
        Ok(world)
    }

    /// Every account a sequence can change.
    fn state_keys(&self) -> Vec<Pubkey> {
        let m = &self.market;
        let mut keys = vec![m.group, rfq::venue_authority(), sdk::venue_address(&m.group, &rfq_venue::ID)];
        for b in [&m.usdc, &m.sol] {
            keys.extend([b.bank, b.vault, b.mint, b.oracle]);
        }
        keys.push(self.d.sol);
        keys.extend(self.markets().map(|k| k.market));
        for s in &self.slots {
            keys.extend([s.owner.pubkey(), s.delegate_key.pubkey(), s.account, s.usdc_wallet, s.sol_wallet]);
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Back to the state right after set-up (accounts, clock, prices).
    pub fn reset(&mut self) {
        if let Some(checkpoint) = &self.checkpoint {
            self.bank.restore(checkpoint);
        }
        self.price_cents = 15_000;
        self.ema_cents = 15_000;
    }

    /// Adds an account with `usdc` and `sol` deposited (and as much again in its wallets),
    /// approving the RFQ venue. `second_of`: a second account of that slot's owner.
    async fn add_slot(&mut self, usdc: u64, sol: u64, second_of: Option<usize>) -> Result<()> {
        let m = &self.market;
        let (owner, index) = match second_of {
            Some(s) => (self.slots[s].owner.insecure_clone(), 1),
            None => (Keypair::new(), 0),
        };
        let (usdc_wallet, sol_wallet) = match second_of {
            Some(s) => (self.slots[s].usdc_wallet, self.slots[s].sol_wallet),
            None => {
                self.bank.airdrop(&owner.pubkey(), 10 * SOL).await?;
                let usdc_wallet = self.bank.create_token_account(&m.usdc.mint, &owner.pubkey(), &spl_token::ID).await?;
                let sol_wallet = self.bank.create_token_account(&m.sol.mint, &owner.pubkey(), &spl_token::ID).await?;
                (usdc_wallet, sol_wallet)
            }
        };
        self.bank.mint_to(&m.usdc.mint, &usdc_wallet, &spl_token::ID, 2 * usdc).await?;
        self.bank.mint_to(&m.sol.mint, &sol_wallet, &spl_token::ID, 2 * sol + 1).await?;
        let account = sdk::margin_account_address(&m.group, &owner.pubkey(), index);
        let mut ixs = vec![sdk::create_margin_account(&m.group, &owner.pubkey(), &owner.pubkey(), index)];
        if usdc > 0 {
            ixs.push(sdk::deposit(&account, &m.usdc, &usdc_wallet, &owner.pubkey(), usdc));
        }
        if sol > 0 {
            ixs.push(sdk::deposit(&account, &m.sol, &sol_wallet, &owner.pubkey(), sol));
        }
        let limits = VenueLimits { max_fill_lots: 50 * LOTS_PER_SOL, expiry_ts: i64::MAX };
        ixs.push(sdk::approve_venue(&account, &owner.pubkey(), &rfq_venue::ID, limits));
        self.bank.send(&ixs, &[&owner]).await?;
        self.slots.push(Slot { owner, account, usdc_wallet, sol_wallet, delegate_key: Keypair::new() });
        Ok(())
    }

    pub fn keys(&self, market: Mkt) -> MarketKeys {
        match market {
            Mkt::Perp => self.d.perp.keys,
            Mkt::Call => self.d.call.keys,
            Mkt::Put => self.d.put.keys,
            Mkt::Short => self.short,
        }
    }

    fn markets(&self) -> [MarketKeys; 4] {
        [self.keys(Mkt::Perp), self.keys(Mkt::Call), self.keys(Mkt::Put), self.keys(Mkt::Short)]
    }

    pub fn accounts(&self) -> Vec<Pubkey> {
        self.slots.iter().map(|s| s.account).collect()
    }

    fn keeper_slot(&self) -> usize {
        self.slots.len() - 1
    }

    async fn post_prices(&mut self) {
        let now = self.bank.now().await;
        let mut update = PythPrice::usd(self.market.sol_feed, self.price_cents as f64 / 100.0, 5, now);
        update.ema_price = PythPrice::usd(self.market.sol_feed, self.ema_cents as f64 / 100.0, 5, now).price;
        self.bank.set_pyth_price(&self.market.sol.oracle, &update, None);
        self.bank.set_pyth_price(&self.market.usdc.oracle, &PythPrice::usd(self.market.usdc_feed, 1.0, 5, now), None);
    }

    /// The key signing for `slot` in a fill.
    async fn signer_for(&mut self, slot: usize, by: By) -> Keypair {
        if by == By::Owner {
            return self.slots[slot].owner.insecure_clone();
        }
        let state: MarginAccount = self.bank.load(&self.slots[slot].account).await;
        self.slots
            .iter()
            .flat_map(|s| [&s.owner, &s.delegate_key])
            .find(|k| k.pubkey() == state.delegate)
            .unwrap_or(&self.slots[slot].delegate_key)
            .insecure_clone()
    }
}

/// The name of portfolio-margin's error `code` (6000 + its position in `MarginError`), read
/// from the error enum's source so that the list has one source of truth.
pub fn error_name(code: u32) -> Option<&'static str> {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let source: &'static str = include_str!("../../programs/portfolio-margin/src/error.rs");
        let body = &source[source.find("pub enum MarginError").unwrap_or(0)..];
        body.lines()
            .map(str::trim)
            .filter(|l| l.ends_with(',') && l.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .map(|l| l.trim_end_matches(','))
            .filter(|l| l.chars().all(|c| c.is_ascii_alphanumeric()))
            .collect()
    });
    let index = code.checked_sub(anchor_lang::error::ERROR_CODE_OFFSET)? as usize;
    names.get(index).copied()
}

/// A refusal's label: the error's name (or custom code), or the failure's description.
fn refusal_label(error: &solana_program_test::BanksClientError) -> String {
    use solana_instruction_error::InstructionError;
    use solana_transaction_error::TransactionError;
    match error {
        solana_program_test::BanksClientError::TransactionError(TransactionError::InstructionError(_, InstructionError::Custom(code))) => {
            error_name(*code).map(str::to_string).unwrap_or_else(|| format!("{code}"))
        }
        solana_program_test::BanksClientError::TransactionError(TransactionError::InstructionError(_, e)) => format!("{e:?}"),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

fn kind_name(action: &Action) -> &'static str {
    match action {
        Action::Deposit { .. } => "deposit",
        Action::Withdraw { .. } => "withdraw",
        Action::Trade { .. } => "trade",
        Action::VenueFill { .. } => "venue_fill",
        Action::SetDelegate { .. } => "set_delegate",
        Action::MovePrice { .. } => "move_price",
        Action::MoveVol { .. } => "set_volatility",
        Action::AdvanceClock { .. } => "advance_clock",
        Action::UpdateFunding => "update_funding",
        Action::Refresh { .. } => "refresh_risk_array",
        Action::ProposeSettlement { .. } => "propose_settlement_price",
        Action::SettleExpired => "settle_expired_option",
        Action::SettlePnl { .. } => "settle_pnl",
        Action::LiquidatePosition { .. } => "liquidate_position",
        Action::LiquidateToken { .. } => "liquidate_token",
        Action::ResolveBankruptcy { .. } => "resolve_bankruptcy",
        Action::ClearFlag { .. } => "clear_liquidation_flag",
        Action::FundInsurance { .. } => "fund_insurance",
        Action::BuyInsuranceCollateral { .. } => "buy_insurance_collateral",
        Action::KeeperRound => "keeper_round",
    }
}

/// The reference price per lot of `market` now: the oracle for the perp, the array's model
/// value for options.
async fn reference_per_lot(world: &mut World, market: Mkt) -> i64 {
    if market == Mkt::Perp {
        return world.price_cents * 10; // cents x 1,000 native per dollar per lot / 100
    }
    let key = world.keys(market).market;
    crate::world::model_price_per_lot(&mut world.bank, &key).await
}

/// Draws the next action from the current state.
pub async fn generate(world: &mut World, rng: &mut Rng) -> Result<Action> {
    let n = world.slots.len();
    let traders = n - 1; // every slot but the keeper trades
    let slot = |rng: &mut Rng| rng.below(n as u64) as usize;
    let market = |rng: &mut Rng| match rng.below(10) {
        0..=3 => Mkt::Perp,
        4..=5 => Mkt::Call,
        6..=7 => Mkt::Put,
        _ => Mkt::Short,
    };
    let token = |rng: &mut Rng| if rng.chance(0.6) { Token::Usdc } else { Token::Sol };
    let roll = rng.below(100);
    Ok(match roll {
        0..=7 => {
            let token = token(rng);
            let amount_native = match token {
                Token::Usdc => rng.range(1, 3_000) as u64 * USDC / 4,
                Token::Sol => rng.range(1, 40) as u64 * SOL / 8,
            };
            Action::Deposit { slot: slot(rng), token, amount_native: if rng.chance(0.05) { 1 } else { amount_native } }
        }
        8..=17 => {
            let slot = slot(rng);
            let token = token(rng);
            let bank = match token {
                Token::Usdc => world.market.usdc.bank,
                Token::Sol => world.market.sol.bank,
            };
            let max = match HealthSnapshot::load(&mut world.bank, &world.market.group, &world.slots[slot].account).await {
                Ok(s) => s.max_withdrawal(&bank).unwrap_or(0),
                Err(_) => 0,
            };
            // Around the largest allowed amount, to probe the boundary, or anywhere below it.
            let amount_native = match rng.below(4) {
                0 => max,
                1 => max + 1 + rng.below(1_000),
                _ => (max as f64 * rng.unit()) as u64 + 1,
            };
            Action::Withdraw { slot, token, amount_native }
        }
        18..=41 => {
            let m = market(rng);
            let buyer = rng.below(traders as u64) as usize;
            let mut seller = rng.below(traders as u64) as usize;
            if seller == buyer && !rng.chance(0.05) {
                seller = (seller + 1) % traders;
            }
            let lots = match rng.below(10) {
                0 => rng.range(1, 12),
                1..=4 => rng.range(100, 5_000),
                _ => rng.range(5_000, 80_000),
            };
            let reference = reference_per_lot(world, m).await.max(1);
            // Within the band most of the time, sometimes beyond it (bands: 2% perp, 10% options).
            let band_ppm = if m == Mkt::Perp { 20_000 } else { 100_000 };
            let offset_ppm = rng.range(-(band_ppm * 12 / 10), band_ppm * 12 / 10);
            let price_per_lot_native = (reference + reference * offset_ppm / 1_000_000).max(1);
            let by = |rng: &mut Rng| if rng.chance(0.15) { By::Delegate } else { By::Owner };
            Action::Trade { market: m, buyer, seller, lots, price_per_lot_native, buyer_by: by(rng), seller_by: by(rng) }
        }
        42..=49 => {
            let m = market(rng);
            let maker = rng.below(traders as u64) as usize;
            let taker = (maker + 1 + rng.below(traders as u64 - 1) as usize) % traders;
            let reference = reference_per_lot(world, m).await.max(1);
            let band_ppm = if m == Mkt::Perp { 20_000 } else { 100_000 };
            let offset_ppm = rng.range(-band_ppm, band_ppm);
            let lots = rng.range(1, 20_000);
            Action::VenueFill { market: m, maker, taker, maker_sells: rng.chance(0.5), lots, price_per_lot_native: (reference + reference * offset_ppm / 1_000_000).max(1) }
        }
        50..=52 => {
            let s = rng.below(traders as u64) as usize;
            let delegate = match rng.below(4) {
                0 => None,
                1 => Some(rng.below(n as u64) as usize),
                _ => Some(s),
            };
            Action::SetDelegate { slot: s, delegate, max_slippage_native: rng.range(0, 200) * USDC as i64 }
        }
        53..=62 => {
            // A move of up to about 12%, sometimes a 30% gap; the EMA follows, lags or half-follows.
            let factor = if rng.chance(0.15) { if rng.chance(0.5) { 0.7 } else { 1.3 } } else { 1.0 + (rng.unit() - 0.5) * 0.3 };
            let price_cents = ((world.price_cents as f64 * factor) as i64).clamp(5_000, 40_000);
            let ema_cents = match rng.below(3) {
                0 => price_cents,
                1 => world.ema_cents,
                _ => (price_cents + world.ema_cents) / 2,
            };
            Action::MovePrice { price_cents, ema_cents, refresh: rng.chance(0.7) }
        }
        63..=66 => Action::MoveVol { market: [Mkt::Call, Mkt::Put, Mkt::Short][rng.below(3) as usize], vol_bp: rng.range(3_000, 12_000) },
        67..=74 => Action::AdvanceClock { seconds: [30, 300, 900, 1_800, 3_600][rng.below(5) as usize] },
        75..=76 => Action::UpdateFunding,
        77..=81 => Action::Refresh { market: market(rng) },
        82..=83 => Action::ProposeSettlement { delay_seconds: rng.range(0, 90) },
        84 => Action::SettleExpired,
        85..=87 => {
            // Mostly two perp holders on opposite sides.
            let perp = world.keys(Mkt::Perp).market;
            let (mut longs, mut shorts) = (Vec::new(), Vec::new());
            for (i, s) in world.slots.iter().enumerate() {
                let state: MarginAccount = world.bank.load(&s.account).await;
                match state.position_index(&perp).map(|j| state.positions[j].base_lots) {
                    Some(l) if l > 0 => longs.push(i),
                    Some(l) if l < 0 => shorts.push(i),
                    _ => {}
                }
            }
            if !longs.is_empty() && !shorts.is_empty() && rng.chance(0.9) {
                let long = longs[rng.below(longs.len() as u64) as usize];
                let short = shorts[rng.below(shorts.len() as u64) as usize];
                if rng.chance(0.5) { Action::SettlePnl { winner: long, loser: short } } else { Action::SettlePnl { winner: short, loser: long } }
            } else {
                Action::SettlePnl { winner: slot(rng), loser: slot(rng) }
            }
        }
        88..=92 => {
            // Mostly against an account that needs it, by the keeper or a trader.
            let liquidatee = liquidatable_slot(world, rng).await.unwrap_or_else(|| slot(rng));
            let liquidator = if rng.chance(0.7) { world.keeper_slot() } else { slot(rng) };
            let max_lots = if rng.chance(0.5) { i64::MAX } else { rng.range(1, 20_000) };
            // Mostly a market it holds.
            let state: MarginAccount = world.bank.load(&world.slots[liquidatee].account).await;
            let held: Vec<Mkt> = [Mkt::Perp, Mkt::Call, Mkt::Put, Mkt::Short]
                .into_iter()
                .filter(|m| state.position_index(&world.keys(*m).market).is_some())
                .collect();
            let market = if !held.is_empty() && rng.chance(0.9) { held[rng.below(held.len() as u64) as usize] } else { market(rng) };
            Action::LiquidatePosition { liquidator, liquidatee, market, max_lots }
        }
        93 => {
            let liquidatee = liquidatable_slot(world, rng).await.unwrap_or_else(|| slot(rng));
            let max_liability_native = if rng.chance(0.5) { i64::MAX } else { rng.range(1, 5_000) * USDC as i64 };
            Action::LiquidateToken { liquidator: world.keeper_slot(), liquidatee, max_liability_native }
        }
        94 => Action::ResolveBankruptcy { slot: slot(rng) },
        95 => Action::ClearFlag { slot: slot(rng) },
        96 => Action::FundInsurance { amount_native: rng.range(1, 500) as u64 * USDC },
        97 => Action::BuyInsuranceCollateral { slot: slot(rng), amount_native: rng.range(1, 10_000) as u64 * SOL / 1_000 },
        _ => Action::KeeperRound,
    })
}

/// A slot whose maintenance health is negative, if any (random among them).
async fn liquidatable_slot(world: &mut World, rng: &mut Rng) -> Option<usize> {
    let mut found = Vec::new();
    for (i, s) in world.slots.iter().enumerate() {
        let Ok(snapshot) = HealthSnapshot::load(&mut world.bank, &world.market.group, &s.account).await else { continue };
        if snapshot.health(HealthKind::Maint).map(|h| h.health < 0).unwrap_or(false) {
            found.push(i);
        }
    }
    (!found.is_empty()).then(|| found[rng.below(found.len() as u64) as usize])
}

/// The accounts an action touches (whose health the checks read before and after).
fn touched(world: &World, action: &Action) -> Vec<usize> {
    match *action {
        Action::Deposit { slot, .. }
        | Action::Withdraw { slot, .. }
        | Action::SetDelegate { slot, .. }
        | Action::ResolveBankruptcy { slot }
        | Action::ClearFlag { slot }
        | Action::BuyInsuranceCollateral { slot, .. } => vec![slot],
        Action::Trade { buyer, seller, .. } => vec![buyer, seller],
        Action::VenueFill { maker, taker, .. } => vec![maker, taker],
        Action::SettlePnl { winner, loser } => vec![winner, loser],
        Action::LiquidatePosition { liquidator, liquidatee, .. } | Action::LiquidateToken { liquidator, liquidatee, .. } => vec![liquidator, liquidatee],
        Action::SettleExpired | Action::KeeperRound => (0..world.slots.len()).collect(),
        _ => vec![],
    }
}

/// Performs `action`: `Ok(true)` if its transaction succeeded, `Ok(false)` with the refusal
/// recorded if it was refused. `Err` only for a harness failure.
async fn perform(world: &mut World, action: &Action, report: &mut FuzzReport) -> Result<bool> {
    let group = world.market.group;
    let quote_bank = world.market.usdc.bank;
    let result = match action.clone() {
        Action::Deposit { slot, token, amount_native } => {
            let s = &world.slots[slot];
            let (bank, wallet) = match token {
                Token::Usdc => (world.market.usdc, s.usdc_wallet),
                Token::Sol => (world.market.sol, s.sol_wallet),
            };
            let mint = bank.mint;
            let owner = s.owner.insecure_clone();
            world.bank.mint_to(&mint, &wallet, &spl_token::ID, amount_native).await?;
            world.bank.send(&[sdk::deposit(&s.account, &bank, &wallet, &owner.pubkey(), amount_native)], &[&owner]).await
        }
        Action::Withdraw { slot, token, amount_native } => {
            let s = &world.slots[slot];
            let (bank, wallet) = match token {
                Token::Usdc => (world.market.usdc, s.usdc_wallet),
                Token::Sol => (world.market.sol, s.sol_wallet),
            };
            let (account, owner) = (s.account, s.owner.insecure_clone());
            let metas = union_health_accounts(&mut world.bank, &group, &[account]).await?;
            world.bank.send(&[sdk::withdraw(&group, &account, &bank, &wallet, &owner.pubkey(), amount_native, metas)], &[&owner]).await
        }
        Action::Trade { market, buyer, seller, lots, price_per_lot_native, buyer_by, seller_by } => {
            let keys = world.keys(market);
            let (b, s) = (world.slots[buyer].account, world.slots[seller].account);
            let buyer_key = world.signer_for(buyer, buyer_by).await;
            let seller_key = world.signer_for(seller, seller_by).await;
            let metas = fill_health_accounts_for(&mut world.bank, &group, &quote_bank, &[b, s], &keys.market).await?;
            let mut ixs = Vec::new();
            if market != Mkt::Perp {
                // Option fills price at the current model value (a delegate's needs the array
                // refreshed in the same transaction).
                ixs.push(sdk::refresh_risk_array(&keys));
            }
            ixs.push(sdk::trade(&keys, &b, &buyer_key.pubkey(), &s, &seller_key.pubkey(), lots, price_per_lot_native, metas));
            world.bank.send(&ixs, &[&buyer_key, &seller_key]).await
        }
        Action::VenueFill { market, maker, taker, maker_sells, lots, price_per_lot_native } => {
            let keys = world.keys(market);
            let now = world.bank.now().await;
            world.quote_nonce += 1;
            let (maker_account, taker_account) = (world.slots[maker].account, world.slots[taker].account);
            let quote = Quote {
                group,
                market: keys.market,
                maker: maker_account,
                taker: Pubkey::default(),
                side: if maker_sells { QuoteSide::MakerSells } else { QuoteSide::MakerBuys },
                max_lots: lots,
                price_per_lot_native,
                expiry_ts: now + 60,
                nonce: world.quote_nonce,
            };
            let signed = rfq::sign_quote(quote, &world.slots[maker].owner);
            let taker_key = world.slots[taker].owner.insecure_clone();
            let metas = fill_health_accounts_for(&mut world.bank, &group, &quote_bank, &[maker_account, taker_account], &keys.market).await?;
            let ixs = rfq::fill_quote_instructions(&keys, &signed, &taker_account, &taker_key.pubkey(), lots, metas);
            world.bank.send(&ixs, &[&taker_key]).await
        }
        Action::SetDelegate { slot, delegate, max_slippage_native } => {
            let key = match delegate {
                None => Pubkey::default(),
                Some(i) if i == slot => world.slots[slot].delegate_key.pubkey(),
                Some(i) => world.slots[i].owner.pubkey(),
            };
            let limits = DelegateLimits { price_band_ppm: 20_000, max_slippage_native, expiry_ts: i64::MAX };
            let s = &world.slots[slot];
            let owner = s.owner.insecure_clone();
            world.bank.send(&[sdk::set_delegate(&s.account, &owner.pubkey(), &key, limits)], &[&owner]).await
        }
        Action::MovePrice { price_cents, ema_cents, refresh } => {
            world.price_cents = price_cents;
            world.ema_cents = ema_cents;
            world.post_prices().await;
            if refresh {
                for keys in world.markets() {
                    // An expired, settled market refuses: that is fine here.
                    let _ = world.bank.send(&[sdk::refresh_risk_array(&keys)], &[]).await;
                }
            }
            Ok(Default::default())
        }
        Action::MoveVol { market, vol_bp } => {
            let keys = world.keys(market);
            let bits = I32F32::from_num(vol_bp as f64 / 10_000.0).to_bits();
            world.bank.send(&[sdk::set_volatility(&group, &world.market.admin.pubkey(), &keys.market, bits)], &[]).await
        }
        Action::AdvanceClock { seconds } => {
            world.bank.advance_clock(seconds).await;
            world.post_prices().await;
            Ok(Default::default())
        }
        Action::UpdateFunding => world.bank.send(&[sdk::update_funding(&world.keys(Mkt::Perp))], &[]).await,
        Action::Refresh { market } => world.bank.send(&[sdk::refresh_risk_array(&world.keys(market))], &[]).await,
        Action::ProposeSettlement { delay_seconds } => {
            // Before expiry (or before that update exists) the latest print is proposed: refused.
            let publish = (world.short_expiry_ts + delay_seconds).min(world.bank.now().await);
            match world.bank.post_archived_update(&world.market.sol.oracle, publish) {
                Some(update) => world.bank.send(&[sdk::propose_settlement_price(&world.short, &update)], &[]).await,
                None => return Ok(false),
            }
        }
        Action::SettleExpired => {
            let accounts = world.accounts();
            world.bank.send(&[sdk::settle_expired_option(&world.short, &accounts)], &[]).await
        }
        Action::SettlePnl { winner, loser } => {
            let keys = world.keys(Mkt::Perp);
            let (w, l) = (world.slots[winner].account, world.slots[loser].account);
            let mut metas = union_health_accounts(&mut world.bank, &group, &[l]).await?;
            for key in [keys.market, keys.underlying, keys.oracle] {
                push_unique(&mut metas, key);
            }
            world.bank.send(&[sdk::settle_pnl(&keys, &w, &l, metas)], &[]).await
        }
        Action::LiquidatePosition { liquidator, liquidatee, market, max_lots } => {
            let keys = world.keys(market);
            let (taker, victim) = (world.slots[liquidator].account, world.slots[liquidatee].account);
            let owner = world.slots[liquidator].owner.insecure_clone();
            let metas = fill_health_accounts_for(&mut world.bank, &group, &quote_bank, &[taker, victim], &keys.market).await?;
            let mut ixs = Vec::new();
            if market != Mkt::Perp {
                ixs.push(sdk::refresh_risk_array(&keys));
            }
            ixs.push(sdk::liquidate_position(&keys, &taker, &owner.pubkey(), &victim, max_lots, metas));
            world.bank.send_v0(&ixs, &[&owner]).await
        }
        Action::LiquidateToken { liquidator, liquidatee, max_liability_native } => {
            let (taker, victim) = (world.slots[liquidator].account, world.slots[liquidatee].account);
            let owner = world.slots[liquidator].owner.insecure_clone();
            let mut metas = union_health_accounts(&mut world.bank, &group, &[taker, victim]).await?;
            for key in [world.market.sol.bank, world.market.sol.oracle, quote_bank, world.market.usdc.oracle] {
                push_unique(&mut metas, key);
            }
            let ix = sdk::liquidate_token(&group, &quote_bank, &world.market.sol.bank, &taker, &owner.pubkey(), &victim, max_liability_native, metas);
            world.bank.send_v0(&[ix], &[&owner]).await
        }
        Action::ResolveBankruptcy { slot } => {
            let account = world.slots[slot].account;
            let snapshot = HealthSnapshot::load(&mut world.bank, &group, &account).await?;
            let dust = bankruptcy_dust(&snapshot, &quote_bank).ok().flatten().unwrap_or_default();
            let perps = [world.keys(Mkt::Perp).market];
            world.bank.send(&[sdk::resolve_bankruptcy(&group, &quote_bank, &account, &perps, &dust)], &[]).await
        }
        Action::ClearFlag { slot } => {
            let account = world.slots[slot].account;
            let metas = union_health_accounts(&mut world.bank, &group, &[account]).await?;
            world.bank.send(&[sdk::clear_liquidation_flag(&group, &account, metas)], &[]).await
        }
        Action::FundInsurance { amount_native } => {
            let keeper = &world.slots[world.keeper_slot()];
            let owner = keeper.owner.insecure_clone();
            let ix = sdk::fund_insurance(&group, &world.market.usdc, &keeper.usdc_wallet, &owner.pubkey(), amount_native);
            world.bank.send(&[ix], &[&owner]).await
        }
        Action::BuyInsuranceCollateral { slot, amount_native } => {
            let s = &world.slots[slot];
            let (account, owner) = (s.account, s.owner.insecure_clone());
            let mut metas = union_health_accounts(&mut world.bank, &group, &[account]).await?;
            for key in [world.market.sol.bank, world.market.sol.oracle, quote_bank, world.market.usdc.oracle] {
                push_unique(&mut metas, key);
            }
            let ix = sdk::buy_insurance_collateral(&group, &world.market.sol, &quote_bank, &account, &owner.pubkey(), amount_native, metas);
            world.bank.send(&[ix], &[&owner]).await
        }
        Action::KeeperRound => {
            let keeper_slot = world.keeper_slot();
            let liquidator = Liquidator { owner: world.slots[keeper_slot].owner.insecure_clone(), account: world.slots[keeper_slot].account };
            let accounts = world.accounts();
            let mut keeper = Keeper::discover(&mut world.bank, group, liquidator).await?;
            keeper.run(&mut world.bank, &accounts, 1, false).await?;
            Ok(Default::default())
        }
    };
    let entry = report.outcomes.entry(kind_name(action)).or_default();
    match result {
        Ok(_) => {
            entry.0 += 1;
            Ok(true)
        }
        Err(e) => {
            entry.1 += 1;
            *report.refusals.entry(format!("{}:{}", kind_name(action), refusal_label(&e))).or_default() += 1;
            Ok(false)
        }
    }
}

/// Total value, in quote native units x 10^`VALUE_SCALE_EXPONENT` (exact), plus the per-vault
/// reconciliation and open-interest figures.
struct Ledger {
    /// Accounts (balances at the oracle, perp cash, settled-but-unpaid option values) plus the
    /// insurance fund, scaled.
    value_scaled: i128,
    /// (vault tokens, claims on them) per bank: USDC, SOL.
    usdc: (i64, i64),
    sol: (i64, i64),
    /// Net lots per market that should be balanced (perps, and options not yet settled).
    unbalanced: Vec<(Pubkey, i64)>,
}

/// SOL native units x price mantissa (exponent -8) = quote native x 10^11 (SOL 9 decimals,
/// USDC 6): the scale of [`Ledger::value_scaled`].
const VALUE_SCALE: i128 = 100_000_000_000;

async fn ledger(world: &mut World) -> Result<Ledger> {
    let group: Group = world.bank.load(&world.market.group).await;
    let sol_bank: CollateralBank = world.bank.load(&world.market.sol.bank).await;
    let update: pyth_solana_receiver_sdk::price_update::PriceUpdateV2 = world.bank.load_anchor(&world.market.sol.oracle).await;
    anyhow::ensure!(update.price_message.exponent == -8, "the SOL print's exponent must be -8");
    let sol_mantissa = update.price_message.price as i128;
    let mut markets = BTreeMap::new();
    for keys in world.markets() {
        let market: Market = world.bank.load(&keys.market).await;
        markets.insert(keys.market, (market, 0i64));
    }
    let (mut usdc_claims, mut sol_claims) = (group.insurance_fund_native, sol_bank.insurance_native as i64);
    for account_key in world.accounts() {
        let account: MarginAccount = world.bank.load(&account_key).await;
        for b in account.active_balances() {
            if b.bank == world.market.usdc.bank {
                usdc_claims += b.balance_native;
            } else if b.bank == world.market.sol.bank {
                sol_claims += b.balance_native;
            } else {
                return Err(anyhow!("a balance in an unknown bank {}", b.bank));
            }
        }
        for p in account.positions.iter().filter(|p| p.in_use == 1) {
            let (market, net) = markets.get_mut(&p.market).ok_or_else(|| anyhow!("a position in an unknown market"))?;
            *net += p.base_lots;
            if !market.is_option() {
                usdc_claims += p.quote_native - perp_cash_owed(p, market).map_err(|e| anyhow!("{e}"))?;
            }
        }
    }
    let mut unbalanced = Vec::new();
    for (key, (market, net)) in &markets {
        if market.is_option() && market.settled == 1 {
            // Settled on one side only so far: what the rest will pay or receive.
            let intrinsic = portfolio_margin::health::intrinsic_per_lot(market);
            usdc_claims += net * intrinsic;
        } else if *net != 0 {
            unbalanced.push((*key, *net));
        }
    }
    let usdc_vault = world.bank.token_balance(&world.market.usdc.vault).await as i64;
    let sol_vault = world.bank.token_balance(&world.market.sol.vault).await as i64;
    let value_scaled = usdc_claims as i128 * VALUE_SCALE + sol_claims as i128 * sol_mantissa;
    Ok(Ledger { value_scaled, usdc: (usdc_vault, usdc_claims), sol: (sol_vault, sol_claims), unbalanced })
}

/// Client health of `account` for the kinds the checks use: (init, maint, liquidation-end,
/// equity at maintenance weights), `None` where the client refuses (a stale array, say).
async fn client_health(world: &mut World, account: &Pubkey) -> [Option<I80F48>; 4] {
    let Ok(snapshot) = HealthSnapshot::load(&mut world.bank, &world.market.group, account).await else { return [None; 4] };
    let [init, maint, end] = [HealthKind::Init, HealthKind::Maint, HealthKind::LiquidationEnd].map(|k| snapshot.health(k).ok());
    let equity = maint.as_ref().map(|m| m.token_value + m.position_equity);
    [init.map(|h| h.health), maint.map(|h| h.health), end.map(|h| h.health), equity]
}

/// Value that came in from outside (deposits, insurance funding) less what left
/// (withdrawals) with a successful `action`, scaled.
fn external_flow_scaled(action: &Action, sol_mantissa: i128) -> i128 {
    let value = |token: Token, amount: u64| match token {
        Token::Usdc => amount as i128 * VALUE_SCALE,
        Token::Sol => amount as i128 * sol_mantissa,
    };
    match *action {
        Action::Deposit { token, amount_native, .. } => value(token, amount_native),
        Action::FundInsurance { amount_native } => value(Token::Usdc, amount_native),
        Action::Withdraw { token, amount_native, .. } => -value(token, amount_native),
        _ => 0,
    }
}

/// Runs `actions` on a fresh world (or generates `steps` of them from `rng` when `actions` is
/// empty), checking the invariants after every step. Returns the actions run and the first
/// violation.
pub async fn run_sequence(
    world: &mut World,
    config: &FuzzConfig,
    actions: &[Action],
    rng: Option<&mut Rng>,
    report: &mut FuzzReport,
) -> Result<(Vec<Action>, Option<Violation>)> {
    world.reset();
    let mut rng = rng;
    let mut done = Vec::new();
    let mut before = ledger(world).await?;
    if let Some(v) = reconcile(&before, 0) {
        return Ok((done, Some(v)));
    }
    let steps = if rng.is_some() { config.steps_per_sequence as usize } else { actions.len() };
    for step in 0..steps {
        let action = match rng.as_deref_mut() {
            Some(rng) => generate(world, rng).await?,
            None => actions[step].clone(),
        };
        done.push(action.clone());
        let slots = touched(&world, &action);
        let mut health_before = Vec::new();
        for &s in &slots {
            let key = world.slots[s].account;
            health_before.push(client_health(world, &key).await);
        }
        let positions_before: Vec<MarginAccount> = {
            let mut v = Vec::new();
            for &s in &slots {
                v.push(world.bank.load(&world.slots[s].account).await);
            }
            v
        };
        let succeeded = perform(world, &action, report).await?;
        report.steps += 1;
        let after = ledger(world).await?;
        if let Some(v) = reconcile(&after, step) {
            return Ok((done, Some(v)));
        }
        // At constant prices (every step but a price move keeps them), value never appears.
        if !matches!(action, Action::MovePrice { .. }) {
            let sol_mantissa = (world.price_cents as i128) * 1_000_000;
            let flow = if succeeded { external_flow_scaled(&action, sol_mantissa) } else { 0 };
            let change = after.value_scaled - before.value_scaled - flow;
            if change > 0 {
                return Ok((done, Some(Violation { invariant: "value", step, detail: format!("{action:?} created {change} (x1e-11 quote native units)") })));
            }
            report.largest_value_fall_native = report.largest_value_fall_native.max((-change / VALUE_SCALE) as i64);
        }
        if succeeded {
            if let Some(v) = check_gates(world, &action, &slots, &health_before, &positions_before, step, report).await {
                return Ok((done, Some(v)));
            }
        }
        if config.check_chain_health {
            // Two touched accounts at most, init and maintenance on alternate steps.
            let kind = if step % 2 == 0 { HealthKind::Init } else { HealthKind::Maint };
            for &s in slots.iter().take(2) {
                let key = world.slots[s].account;
                if let Some(v) = compare_chain_health(world, &key, kind, step, report).await? {
                    return Ok((done, Some(v)));
                }
            }
        }
        before = after;
    }
    // Liveness: a keeper with capital (the keeper's own may have been withdrawn by the
    // sequence: it deposits a fresh million) clears everything, and the vaults still reconcile.
    let keeper_slot = world.keeper_slot();
    let top_up = Action::Deposit { slot: keeper_slot, token: Token::Usdc, amount_native: 1_000_000 * USDC };
    perform(world, &top_up, report).await?;
    let liquidator = Liquidator { owner: world.slots[keeper_slot].owner.insecure_clone(), account: world.slots[keeper_slot].account };
    let accounts = world.accounts();
    world.bank.advance_clock(1).await;
    world.post_prices().await;
    let mut keeper = Keeper::discover(&mut world.bank, world.market.group, liquidator).await?;
    let keeper_report = keeper.run(&mut world.bank, &accounts, 20, false).await?;
    let last = done.len();
    for key in &accounts {
        // No reachable state may make health fail.
        let health = match HealthSnapshot::load(&mut world.bank, &world.market.group, key).await {
            Ok(snapshot) => snapshot.health(HealthKind::Maint).map(|h| (snapshot, h)),
            Err(e) => Err(e),
        };
        let (snapshot, maint) = match health {
            Ok(found) => found,
            Err(e) => {
                let detail = format!("the health of {key} cannot be computed after the keeper: {e}");
                return Ok((done, Some(Violation { invariant: "client-health", step: last, detail })));
            }
        };
        let bankrupt = bankruptcy_dust(&snapshot, &world.market.usdc.bank)?.is_some();
        if maint.health >= 0 && !bankrupt {
            continue;
        }
        // A hedged book that no single step (one position, or collateral for debt) improves is
        // a known gap (docs/security.md): counted, not a violation. Anything else left behind
        // (a step the keeper found but could not take, a bankruptcy unresolved) is.
        if !bankrupt && keeper.plan(&mut world.bank, key).await?.is_none() {
            if maint.token_value + maint.position_equity >= 0 {
                report.stalled_hedged_books += 1;
            } else {
                report.stalled_insolvent_books += 1;
            }
            continue;
        }
        let detail = format!("{key} left {} after the keeper ({keeper_report})", if bankrupt { "bankrupt" } else { "liquidatable" });
        return Ok((done, Some(Violation { invariant: "liveness", step: last, detail })));
    }
    let end = ledger(world).await?;
    Ok((done, reconcile(&end, last)))
}

fn reconcile(ledger: &Ledger, step: usize) -> Option<Violation> {
    if ledger.usdc.0 != ledger.usdc.1 || ledger.sol.0 != ledger.sol.1 {
        let detail = format!("USDC vault {} vs claims {}, SOL vault {} vs claims {}", ledger.usdc.0, ledger.usdc.1, ledger.sol.0, ledger.sol.1);
        return Some(Violation { invariant: "vault", step, detail });
    }
    if let Some((market, net)) = ledger.unbalanced.first() {
        return Some(Violation { invariant: "open-interest", step, detail: format!("market {market}: lots add up to {net}") });
    }
    None
}

/// Invariants 3 and 4 for a successful action.
async fn check_gates(
    world: &mut World,
    action: &Action,
    slots: &[usize],
    before: &[[Option<I80F48>; 4]],
    accounts_before: &[MarginAccount],
    step: usize,
    report: &mut FuzzReport,
) -> Option<Violation> {
    let mut after = Vec::new();
    for &s in slots {
        let key = world.slots[s].account;
        after.push(client_health(world, &key).await);
    }
    let fail = |detail: String| Some(Violation { invariant: "init-gate", step, detail });
    const INIT: usize = 0;
    const MAINT: usize = 1;
    const END: usize = 2;
    let below = |h: Option<I80F48>| h.is_some_and(|h| h < 0);
    match action {
        Action::Withdraw { .. } | Action::BuyInsuranceCollateral { .. } if below(after[0][INIT]) => {
            fail(format!("{action:?} left init health {:?}", after[0][INIT]))
        }
        Action::Trade { market, .. } | Action::VenueFill { market, .. } => {
            let market_key = world.keys(*market).market;
            for (i, &s) in slots.iter().enumerate() {
                if !below(after[i][INIT]) {
                    continue;
                }
                let state: MarginAccount = world.bank.load(&world.slots[s].account).await;
                let lots = |a: &MarginAccount| a.position_index(&market_key).map(|j| a.positions[j].base_lots).unwrap_or(0);
                let (old, new) = (lots(&accounts_before[i]), lots(&state));
                let reduces = old != 0 && new.signum() != -old.signum() && new.unsigned_abs() < old.unsigned_abs();
                let allowed = reduces && after[i][INIT] >= before[i][INIT] && !below(after[i][MAINT]);
                if !allowed {
                    return fail(format!(
                        "{action:?}: slot {s} at init health {:?} (before {:?}), maint {:?}, lots {old} -> {new}",
                        after[i][INIT], before[i][INIT], after[i][MAINT]
                    ));
                }
            }
            None
        }
        Action::SettlePnl { .. } if below(after[1][MAINT]) => fail(format!("{action:?} left the loser at maintenance health {:?}", after[1][MAINT])),
        Action::LiquidatePosition { .. } | Action::LiquidateToken { .. } => {
            if slots[0] != slots[1] && below(after[0][INIT]) {
                return fail(format!("{action:?} left the liquidator at init health {:?}", after[0][INIT]));
            }
            if let (Some(b), Some(a)) = (before[1][END], after[1][END]) {
                if a < b {
                    return Some(Violation { invariant: "liquidation", step, detail: format!("{action:?} lowered liquidation-end health {b} -> {a}") });
                }
            }
            if let (Some(b), Some(a)) = (before[1][MAINT], after[1][MAINT]) {
                if a < b {
                    report.liquidations_lowering_maint += 1;
                }
            }
            None
        }
        _ => None,
    }
}

/// Invariant 5: `health_check` on-chain equals the client's computation of `kind`.
async fn compare_chain_health(world: &mut World, account: &Pubkey, kind: HealthKind, step: usize, report: &mut FuzzReport) -> Result<Option<Violation>> {
    let group = world.market.group;
    let snapshot = HealthSnapshot::load(&mut world.bank, &group, account).await;
    {
        let client = snapshot.as_ref().ok().and_then(|s| s.health(kind).ok()).map(|b| HealthReport::from_breakdown(&b));
        let metas = match &snapshot {
            Ok(s) => s.health_accounts(&s.account),
            Err(_) => union_health_accounts(&mut world.bank, &group, &[*account]).await?,
        };
        let chain = world.bank.send(&[sdk::health_check(&group, account, i64::MIN, kind as u8, metas)], &[]).await;
        report.chain_health_checks += 1;
        let chain = chain.ok().and_then(|o| HealthReport::deserialize(&mut &o.return_data[..]).ok());
        let client = client.and_then(|r| r.ok());
        if client != chain {
            let detail = format!("{kind:?} health of {account}: client {client:?}, chain {chain:?}");
            return Ok(Some(Violation { invariant: "client-chain", step, detail }));
        }
    }
    Ok(None)
}

/// Removes actions from a failing sequence while the same invariant still fails.
pub async fn shrink(world: &mut World, config: &FuzzConfig, actions: Vec<Action>, invariant: &'static str) -> Result<(Vec<Action>, Violation)> {
    let mut scratch = FuzzReport::default();
    let fails = |v: &Option<Violation>| v.as_ref().is_some_and(|v| v.invariant == invariant);
    let (_, first) = run_sequence(world, config, &actions, None, &mut scratch).await?;
    let mut best = (actions, first.ok_or_else(|| anyhow!("the sequence does not reproduce on replay"))?);
    // Cut everything after the failing step first, then drop chunks, halving their size.
    best.0.truncate(best.1.step + 1);
    let mut chunk = best.0.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        while start < best.0.len() {
            let mut candidate = best.0.clone();
            let end = (start + chunk).min(candidate.len());
            candidate.drain(start..end);
            let (_, violation) = run_sequence(world, config, &candidate, None, &mut scratch).await?;
            if fails(&violation) {
                let v = violation.expect("failed");
                candidate.truncate(v.step + 1);
                best = (candidate, v);
            } else {
                start += chunk;
            }
        }
        chunk /= 2;
    }
    Ok(best)
}

/// Runs `config.sequences` random sequences; stops at the first violation, shrinks it.
pub async fn run(config: &FuzzConfig) -> Result<FuzzReport> {
    let mut report = FuzzReport::default();
    let mut world = World::new(config.traders).await?;
    for i in 0..config.sequences {
        let seed = config.seed.wrapping_mul(0x1_0000_0001).wrapping_add(i as u64);
        let mut rng = Rng::new(seed);
        let (actions, violation) = run_sequence(&mut world, config, &[], Some(&mut rng), &mut report).await?;
        report.sequences += 1;
        if let Some(v) = violation {
            if config.verbose {
                println!("sequence {i} (seed {seed}) violated {} at step {}: {}; shrinking", v.invariant, v.step, v.detail);
            }
            let (shrunk, v) = match shrink(&mut world, config, actions.clone(), v.invariant).await {
                Ok(shrunk) => shrunk,
                Err(e) => {
                    println!("shrinking failed ({e}): the sequence is kept whole");
                    (actions, v)
                }
            };
            report.failure = Some((v, shrunk));
            break;
        }
        if config.verbose && (i + 1) % 10 == 0 {
            println!("  {} sequences, {} steps", i + 1, report.steps);
        }
    }
    Ok(report)
}

//! The covered-call vault example: a program owning a portfolio-margin account through its PDA,
//! pooling depositors' SOL, selling covered calls and paying depositors back pro rata.

#![allow(deprecated)] // solana-program-test 3.1 marks its API unstable.

use anchor_lang::prelude::{AccountInfo, AccountMeta, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{AnchorDeserialize, InstructionData, ToAccountMetas};
use anchor_spl::token::spl_token;
use covered_call_vault::{Shareholder, Vault, VaultError, VaultParams, SHAREHOLDER_SEED, VAULT_SEED, VIRTUAL_SHARES};
use pm_client::world::{fill_health_accounts, list_option, model_price_per_lot, option_config, setup_derivatives, Derivatives};
use pm_client::health::HealthSnapshot;
use pm_client::local_bank::LocalBank;
use pm_client::sdk::{self, MarketKeys};
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::health::HealthReport;
use portfolio_margin::state::{MarginAccount, Market, MarketKind};
use risk_engine::health::HealthKind;
use solana_keypair::Keypair;
use solana_program_test::processor;
use solana_signer::Signer;

const SOL: u64 = 1_000_000_000;
const USDC: u64 = 1_000_000;
/// 1 SOL = 1,000 lots of 0.001 SOL.
const LOTS_PER_SOL: i64 = 1_000;
/// $150 per SOL in micro-USD per lamport, as I80F48 bits rounded down and up (the vault values a
/// deposit at the lower and its own assets at the higher).
const SOL_PRICE_LOW_BITS: u128 = 42_221_246_506_598; // floor(0.15 * 2^48)
const SOL_PRICE_HIGH_BITS: u128 = SOL_PRICE_LOW_BITS + 1;
const PARAMS: VaultParams = VaultParams { price_band_ppm: 20_000, max_tenor_seconds: 60 * 86_400, withdrawal_window_seconds: 86_400 };

fn vault_entry(program_id: &Pubkey, accounts: &[AccountInfo], data: &[u8]) -> anchor_lang::solana_program::entrypoint::ProgramResult {
    // SAFETY: the accounts outlive the call; Anchor needs one lifetime for slice and infos.
    let accounts: &[AccountInfo] = unsafe { core::mem::transmute(accounts) };
    covered_call_vault::entry(program_id, accounts, data)
}

fn vault_ix(accounts: impl ToAccountMetas, data: impl InstructionData, extra: Vec<AccountMeta>) -> Instruction {
    let mut metas = accounts.to_account_metas(None);
    metas.extend(extra);
    Instruction { program_id: covered_call_vault::ID, accounts: metas, data: data.data() }
}

/// Asserts that the vault failed with `expected`, its own error: portfolio-margin did not fail
/// (both programs number their errors from 6000, so the code alone does not say which one did).
#[track_caller]
fn assert_vault_code(outcome: &Logged, expected: VaultError) {
    let code = expected as u32 + anchor_lang::error::ERROR_CODE_OFFSET;
    assert_eq!(custom_code(&outcome.0), Some(code), "expected {expected:?}, got {:?}\n{:#?}", outcome.0, outcome.1);
    let core_failed = format!("Program {} failed", portfolio_margin::ID);
    assert!(!outcome.1.iter().any(|l| l.starts_with(&core_failed)), "portfolio-margin failed: {:#?}", outcome.1);
}

/// Asserts that the vault refused with `expected` before invoking portfolio-margin.
#[track_caller]
fn assert_vault_error(outcome: &Logged, expected: VaultError) {
    assert_vault_code(outcome, expected);
    let core = format!("Program {} invoke", portfolio_margin::ID);
    assert!(!outcome.1.iter().any(|l| l.starts_with(&core)), "expected the vault to refuse before invoking portfolio-margin: {:#?}", outcome.1);
}

struct World {
    bank: LocalBank,
    market: DemoMarket,
    derivatives: Derivatives,
    /// A call on SOL expiring a week after the demo's, for the next round.
    next_call: MarketKeys,
    manager: Keypair,
    vault: Pubkey,
    margin_account: Pubkey,
    collateral_staging: Pubkey,
    quote_staging: Pubkey,
    /// The calls' buyer, with 50,000 USDC in its margin account.
    buyer: Trader,
}

struct Depositor {
    owner: Keypair,
    sol: Pubkey,
    usdc: Pubkey,
    record: Pubkey,
}

async fn world() -> World {
    let mut bank = LocalBank::start_with(|test| {
        test.add_program("covered_call_vault", covered_call_vault::ID, processor!(vault_entry));
    })
    .await;
    let market = setup_market(&mut bank).await.unwrap();
    let derivatives = setup_derivatives(&mut bank, &market).await.unwrap();
    let config = option_config(MarketKind::Call, 170, derivatives.expiry_ts + 7 * 86_400);
    let next_call = list_option(&mut bank, &market, &derivatives.sol, config, 0.6).await.unwrap();

    let manager = Keypair::new();
    bank.airdrop(&manager.pubkey(), 10 * SOL).await.unwrap();
    let vault = Pubkey::find_program_address(&[VAULT_SEED, manager.pubkey().as_ref()], &covered_call_vault::ID).0;
    let margin_account = sdk::margin_account_address(&market.group, &vault, 0);
    let collateral_staging = bank.create_token_account(&market.sol.mint, &vault, &spl_token::ID).await.unwrap();
    let quote_staging = bank.create_token_account(&market.usdc.mint, &vault, &spl_token::ID).await.unwrap();
    let ix = vault_ix(
        covered_call_vault::accounts::InitVault {
            vault,
            manager: manager.pubkey(),
            group: market.group,
            margin_account,
            underlying: derivatives.sol,
            collateral_bank: market.sol.bank,
            quote_bank: market.usdc.bank,
            collateral_staging,
            quote_staging,
            portfolio_margin_program: portfolio_margin::ID,
            system_program: anchor_lang::system_program::ID,
        },
        covered_call_vault::instruction::InitVault { params: PARAMS },
        vec![],
    );
    bank.send(&[ix], &[&manager]).await.unwrap();
    let account: MarginAccount = bank.load(&margin_account).await;
    assert_eq!(account.owner, vault);

    let buyer = new_trader(&mut bank, &market, 50_000 * USDC, 0).await.unwrap();
    let owner = buyer.owner.insecure_clone();
    bank.send(&[sdk::deposit(&buyer.account, &market.usdc, &buyer.usdc_wallet, &owner.pubkey(), 50_000 * USDC)], &[&owner]).await.unwrap();
    World { bank, market, derivatives, next_call, manager, vault, margin_account, collateral_staging, quote_staging, buyer }
}

impl World {
    async fn depositor(&mut self, sol: u64, usdc: u64) -> Depositor {
        let owner = Keypair::new();
        self.bank.airdrop(&owner.pubkey(), SOL).await.unwrap();
        let sol_wallet = self.bank.create_token_account(&self.market.sol.mint, &owner.pubkey(), &spl_token::ID).await.unwrap();
        let usdc_wallet = self.bank.create_token_account(&self.market.usdc.mint, &owner.pubkey(), &spl_token::ID).await.unwrap();
        self.bank.mint_to(&self.market.sol.mint, &sol_wallet, &spl_token::ID, sol).await.unwrap();
        self.bank.mint_to(&self.market.usdc.mint, &usdc_wallet, &spl_token::ID, usdc).await.unwrap();
        let record = Pubkey::find_program_address(&[SHAREHOLDER_SEED, self.vault.as_ref(), owner.pubkey().as_ref()], &covered_call_vault::ID).0;
        let ix = vault_ix(
            covered_call_vault::accounts::OpenShareholder {
                vault: self.vault,
                shareholder: record,
                owner: owner.pubkey(),
                system_program: anchor_lang::system_program::ID,
            },
            covered_call_vault::instruction::OpenShareholder {},
            vec![],
        );
        self.bank.send(&[ix], &[&owner]).await.unwrap();
        Depositor { owner, sol: sol_wallet, usdc: usdc_wallet, record }
    }

    fn deposit_ix(&self, d: &Depositor, amount_native: u64, min_shares_out: u64) -> Instruction {
        // Valuation: the oracle of the SOL bank, and the USDC bank with its oracle.
        let valuation = [self.market.sol.oracle, self.market.usdc.bank, self.market.usdc.oracle];
        vault_ix(
            covered_call_vault::accounts::VaultDeposit {
                vault: self.vault,
                shareholder: d.record,
                depositor: d.owner.pubkey(),
                group: self.market.group,
                margin_account: self.margin_account,
                collateral_bank: self.market.sol.bank,
                bank_vault: self.market.sol.vault,
                mint: self.market.sol.mint,
                source: d.sol,
                collateral_staging: self.collateral_staging,
                token_program: spl_token::ID,
                portfolio_margin_program: portfolio_margin::ID,
            },
            covered_call_vault::instruction::Deposit { amount_native, min_shares_out },
            valuation.iter().map(|k| AccountMeta::new_readonly(*k, false)).collect(),
        )
    }

    async fn withdraw_ix(&mut self, d: &Depositor, shares: u64) -> Instruction {
        let health = HealthSnapshot::load(&mut self.bank, &self.market.group, &self.margin_account).await.unwrap();
        vault_ix(
            covered_call_vault::accounts::VaultWithdraw {
                vault: self.vault,
                shareholder: d.record,
                owner: d.owner.pubkey(),
                group: self.market.group,
                margin_account: self.margin_account,
                collateral_bank: self.market.sol.bank,
                collateral_bank_vault: self.market.sol.vault,
                collateral_mint: self.market.sol.mint,
                collateral_account: d.sol,
                quote_bank: self.market.usdc.bank,
                quote_bank_vault: self.market.usdc.vault,
                quote_mint: self.market.usdc.mint,
                quote_account: d.usdc,
                quote_staging: self.quote_staging,
                token_program: spl_token::ID,
                portfolio_margin_program: portfolio_margin::ID,
            },
            covered_call_vault::instruction::Withdraw { shares },
            health.health_accounts(&health.account),
        )
    }

    async fn sell_ix(&mut self, keys: &MarketKeys, manager: &Pubkey, lots: i64, price_per_lot_native: i64) -> Instruction {
        let metas = fill_health_accounts(&mut self.bank, &self.market, &[self.buyer.account, self.margin_account], &keys.market).await.unwrap();
        vault_ix(
            covered_call_vault::accounts::SellCalls {
                vault: self.vault,
                manager: *manager,
                margin_account: self.margin_account,
                group: self.market.group,
                market: keys.market,
                underlying: keys.underlying,
                oracle: keys.oracle,
                collateral_bank: self.market.sol.bank,
                quote_bank: keys.quote_bank,
                buyer: self.buyer.account,
                buyer_authority: self.buyer.owner.pubkey(),
                portfolio_margin_program: portfolio_margin::ID,
            },
            covered_call_vault::instruction::SellCalls { lots, price_per_lot_native },
            metas,
        )
    }

    /// The vault margin account's SOL and USDC balances.
    async fn balances(&mut self) -> (i64, i64) {
        let account: MarginAccount = self.bank.load(&self.margin_account).await;
        let of = |bank: &Pubkey| account.balance_index(bank).map(|i| account.balances[i].balance_native).unwrap_or(0);
        (of(&self.market.sol.bank), of(&self.market.usdc.bank))
    }

    async fn shares(&mut self, d: &Depositor) -> u64 {
        self.bank.load_anchor::<Shareholder>(&d.record).await.shares
    }

    async fn total_shares(&mut self) -> u64 {
        self.bank.load_anchor::<Vault>(&self.vault).await.total_shares
    }

    /// Withdraws all of `d`'s shares and checks it receives exactly its part of each positive
    /// balance, rounded down, and pays its part of a USDC debt, rounded up; returns the SOL
    /// received and the USDC received (negative: paid).
    async fn withdraw_all_exactly(&mut self, d: &Depositor) -> (u64, i64) {
        let (shares, total) = (self.shares(d).await, self.total_shares().await);
        let (sol, usdc) = self.balances().await;
        let denominator = total as u128 + VIRTUAL_SHARES as u128;
        let part = |balance: i64| (balance as u128 * shares as u128 / denominator) as i64;
        let debt_part = |debt: i64| (debt as u128 * shares as u128).div_ceil(denominator) as i64;
        let expected_usdc = if usdc >= 0 { part(usdc) } else { -debt_part(-usdc) };
        let (sol_before, usdc_before) = (self.bank.token_balance(&d.sol).await, self.bank.token_balance(&d.usdc).await);
        let ix = self.withdraw_ix(d, shares).await;
        self.bank.send(&[ix], &[&d.owner]).await.unwrap();
        let sol_received = self.bank.token_balance(&d.sol).await - sol_before;
        let usdc_received = self.bank.token_balance(&d.usdc).await as i64 - usdc_before as i64;
        assert_eq!((sol_received as i64, usdc_received), (part(sol), expected_usdc));
        assert_eq!(self.shares(d).await, 0);
        assert_eq!(self.total_shares().await, total - shares);
        assert_eq!(self.balances().await, (sol - sol_received as i64, usdc - usdc_received));
        (sol_received, usdc_received)
    }

    /// A deposits 10 SOL, B 5; the manager sells 15 SOL of the demo call at the model price;
    /// after expiry the price settles at `settlement_dollars` and the vault's account is
    /// settled. Returns the depositors and the premium.
    async fn one_round(&mut self, a_usdc: u64, b_usdc: u64, settlement_dollars: f64) -> (Depositor, Depositor, i64) {
        let a = self.depositor(10 * SOL, a_usdc).await;
        let b = self.depositor(5 * SOL, b_usdc).await;
        self.bank.send(&[self.deposit_ix(&a, 10 * SOL, 0)], &[&a.owner]).await.unwrap();
        self.bank.send(&[self.deposit_ix(&b, 5 * SOL, 0)], &[&b.owner]).await.unwrap();
        let call = self.derivatives.call.keys;
        let price = model_price_per_lot(&mut self.bank, &call.market).await;
        let ix = self.sell_ix(&call, &self.manager.pubkey(), 15 * LOTS_PER_SOL, price).await;
        self.bank.send(&[ix], &[&self.manager.insecure_clone(), &self.buyer.owner.insecure_clone()]).await.unwrap();
        let now = self.bank.now().await;
        self.bank.advance_clock(self.derivatives.expiry_ts - now + 10).await;
        post_price(&mut self.bank, &self.market.sol.oracle, self.market.sol_feed, settlement_dollars).await;
        self.bank.send(&[sdk::propose_settlement_price(&call, &self.market.sol.oracle)], &[]).await.unwrap();
        self.bank.advance_clock(600).await;
        self.bank.send(&[sdk::settle_expired_option(&call, &[self.margin_account, self.buyer.account])], &[]).await.unwrap();
        post_price(&mut self.bank, &self.market.sol.oracle, self.market.sol_feed, settlement_dollars).await;
        post_price(&mut self.bank, &self.market.usdc.oracle, self.market.usdc_feed, 1.0).await;
        (a, b, 15 * LOTS_PER_SOL * price)
    }
}

/// SOL value of `lamports` in micro-USD at $150, as the vault computes it (I80F48 price).
fn sol_value(lamports: u64, round_up: bool) -> u64 {
    let bits = if round_up { SOL_PRICE_HIGH_BITS } else { SOL_PRICE_LOW_BITS };
    let wide = lamports as u128 * bits;
    let value = wide >> 48;
    (if round_up && wide & ((1 << 48) - 1) != 0 { value + 1 } else { value }) as u64
}

fn expected_shares(value_in: u64, nav: u64, total: u64) -> u64 {
    (value_in as u128 * (total as u128 + VIRTUAL_SHARES as u128) / (nav as u128 + 1)) as u64
}

#[tokio::test]
async fn depositors_share_the_premium_pro_rata_and_get_exactly_their_part_back_after_settlement() {
    let mut w = world().await;
    let a = w.depositor(10 * SOL, 0).await;
    let b = w.depositor(5 * SOL, 0).await;

    // A deposits 10 SOL into the empty vault: $1,499.999999 (10 SOL at the price rounded down)
    // x 1,000 virtual shares / $0.000001 virtual value.
    w.bank.send(&[w.deposit_ix(&a, 10 * SOL, 0)], &[&a.owner]).await.unwrap();
    let shares_a = w.shares(&a).await;
    assert_eq!(sol_value(10 * SOL, false), 1_499_999_999);
    assert_eq!(shares_a, 1_499_999_999_000);
    // B deposits 5 SOL priced against NAV = 10 SOL rounded up ($1,500.000001).
    w.bank.send(&[w.deposit_ix(&b, 5 * SOL, 0)], &[&b.owner]).await.unwrap();
    let shares_b = w.shares(&b).await;
    assert_eq!(shares_b, expected_shares(sol_value(5 * SOL, false), sol_value(10 * SOL, true), shares_a));
    assert_eq!(shares_b, 749_999_998_000);
    assert_eq!(w.balances().await, (15 * SOL as i64, 0));

    // The manager's limits, each refused by the vault before portfolio-margin is invoked.
    let call = w.derivatives.call.keys;
    let price = model_price_per_lot(&mut w.bank, &call.market).await;
    let manager = w.manager.pubkey();
    let signers = [&w.manager.insecure_clone(), &w.buyer.owner.insecure_clone()];
    let cases: Vec<(MarketKeys, i64, i64, VaultError)> = vec![
        (call, 15 * LOTS_PER_SOL + 1, price, VaultError::NotCovered), // 15.001 SOL of calls on 15 SOL
        (call, -1_000, price, VaultError::NotASale),                  // buying
        (call, 0, price, VaultError::NotASale),
        (w.derivatives.perp.keys, 1_000, 150_000, VaultError::OnlyCallsOnUnderlying),
        (w.derivatives.put.keys, 1_000, price, VaultError::OnlyCallsOnUnderlying),
        (call, 1_000, price * 95 / 100, VaultError::PriceBelowBand), // inside the core's 10% band, not the vault's 2%
    ];
    for (keys, lots, p, error) in cases {
        let ix = w.sell_ix(&keys, &manager, lots, p).await;
        assert_vault_error(&w.bank.send_logged(&[ix], &signers).await, error);
    }
    let impostor = Keypair::new();
    let ix = w.sell_ix(&call, &impostor.pubkey(), 1_000, price).await;
    assert_vault_error(&w.bank.send_logged(&[ix], &[&impostor, &w.buyer.owner.insecure_clone()]).await, VaultError::NotManager);
    // The manager cannot reach the funds through portfolio-margin either: the vault PDA owns
    // the margin account.
    let manager_wallet = w.bank.create_token_account(&w.market.sol.mint, &manager, &spl_token::ID).await.unwrap();
    let health = HealthSnapshot::load(&mut w.bank, &w.market.group, &w.margin_account).await.unwrap();
    let steal = sdk::withdraw(&w.market.group, &w.margin_account, &w.market.sol, &manager_wallet, &manager, SOL, health.health_accounts(&health.account));
    assert_margin_error(w.bank.send(&[steal], &[&w.manager]).await, MarginError::NotOwner);

    // Fully covered: 15 SOL of calls at the model price; the premium is paid in USDC.
    let ix = w.sell_ix(&call, &manager, 15 * LOTS_PER_SOL, price).await;
    w.bank.send(&[ix], &signers).await.unwrap();
    let premium = 15 * LOTS_PER_SOL * price;
    assert_eq!(w.balances().await, (15 * SOL as i64, premium));
    let ix = w.sell_ix(&call, &manager, 1, price).await;
    assert_vault_error(&w.bank.send_logged(&[ix], &signers).await, VaultError::NotCovered);
    // While calls are open, no deposit and no withdrawal.
    let c = w.depositor(SOL, 0).await;
    assert_vault_error(&w.bank.send_logged(&[w.deposit_ix(&c, SOL, 0)], &[&c.owner]).await, VaultError::VaultNotFlat);
    let ix = w.withdraw_ix(&a, shares_a).await;
    assert_vault_error(&w.bank.send_logged(&[ix], &[&a.owner]).await, VaultError::VaultNotFlat);

    // check_health is a view: it returns portfolio-margin's breakdown and stores nothing.
    let snapshot = HealthSnapshot::load(&mut w.bank, &w.market.group, &w.margin_account).await.unwrap();
    let check = vault_ix(
        covered_call_vault::accounts::CheckHealth {
            vault: w.vault,
            margin_account: w.margin_account,
            group: w.market.group,
            portfolio_margin_program: portfolio_margin::ID,
        },
        covered_call_vault::instruction::CheckHealth { min_health_native: 0, kind: HealthKind::Maint as u8 },
        snapshot.health_accounts(&snapshot.account),
    );
    let before = snapshot_accounts(&mut w.bank, &[w.vault]).await;
    let outcome = w.bank.send(&[check], &[]).await.unwrap();
    let report = HealthReport::deserialize(&mut &outcome.return_data[..]).unwrap();
    assert_eq!(report, onchain_health(&mut w.bank, &w.market.group, &w.margin_account, HealthKind::Maint).await.unwrap());
    assert!(report.health_native > 0);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &[w.vault]).await);

    // Expiry: anyone proposes the settlement price ($162, published inside the window) and,
    // once final, settles the vault's account through portfolio-margin.
    let now = w.bank.now().await;
    w.bank.advance_clock(w.derivatives.expiry_ts - now + 10).await;
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 162.0).await;
    w.bank.send(&[sdk::propose_settlement_price(&call, &w.market.sol.oracle)], &[]).await.unwrap();
    w.bank.advance_clock(600).await;
    w.bank.send(&[sdk::settle_expired_option(&call, &[w.margin_account, w.buyer.account])], &[]).await.unwrap();
    let state: Market = w.bank.load(&call.market).await;
    assert_eq!(state.settlement_price_native, 162_000);
    // The calls finish $2 in the money: 15,000 lots x 2,000 paid out of the premium.
    let quote_left = premium - 15 * LOTS_PER_SOL * 2_000;
    assert_eq!(w.balances().await, (15 * SOL as i64, quote_left));
    let account: MarginAccount = w.bank.load(&w.margin_account).await;
    assert!(account.positions.iter().all(|p| p.in_use == 0));
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 162.0).await;
    post_price(&mut w.bank, &w.market.usdc.oracle, w.market.usdc_feed, 1.0).await;

    // The withdrawal window: no new round for a day after expiry.
    let next = w.next_call;
    let ix = w.sell_ix(&next, &manager, 1_000, 1).await;
    assert_vault_error(&w.bank.send_logged(&[ix], &signers).await, VaultError::WithdrawalWindowOpen);

    // Both leave with exactly floor(balance x shares / (supply + 1,000 virtual)) of SOL and of
    // the USDC the round earned: A two thirds, B one third.
    let (sol_a, usdc_a) = w.withdraw_all_exactly(&a).await;
    let (sol_b, usdc_b) = w.withdraw_all_exactly(&b).await;
    println!("A: {sol_a} lamports + {usdc_a} micro-USDC; B: {sol_b} lamports + {usdc_b} micro-USDC (premium {premium}, kept {quote_left})");
    // A's 10 SOL were valued 2 micro-USD under B's view of them: A gets 2 lamports more, B 9
    // fewer; 7 stay with the virtual shares.
    assert_eq!(sol_a, 10_000_000_002);
    assert_eq!(sol_b, 4_999_999_991);
    assert_eq!((premium, usdc_a, usdc_b), (95_415_000, 43_610_000, 21_804_999));
    assert!(usdc_a.abs_diff(quote_left * 2 / 3) <= 1 && usdc_b.abs_diff(quote_left / 3) <= 1);
    // What stays is the 1,000 virtual shares' part: a few lamports and micro-USDC.
    let (sol_left, usdc_left) = w.balances().await;
    println!("left in the vault: {sol_left} lamports, {usdc_left} micro-USDC");
    assert!(sol_left <= 10 && usdc_left <= 1);
    assert_eq!(w.total_shares().await, 0);
}

#[tokio::test]
async fn an_inflation_attack_costs_the_attacker_and_steals_nothing() {
    let mut w = world().await;
    let attacker = w.depositor(2 * SOL, 1_000 * USDC).await;
    let victim = w.depositor(10 * SOL, 0).await;

    // 1. The attacker is first, with 10 lamports ($0.0000015, valued down to 1 micro-USD):
    //    1 x 1,000 virtual shares / 1 virtual micro-USD = 1,000 shares.
    w.bank.send(&[w.deposit_ix(&attacker, 10, 0)], &[&attacker.owner]).await.unwrap();
    assert_eq!(w.shares(&attacker).await, 1_000);
    // 2. It donates: 1 SOL straight to the vault's staging account (ignored: not in the margin
    //    account), and 1,000 USDC credited to the margin account (standing in for any path that
    //    adds value without minting shares).
    let transfer = spl_token::instruction::transfer(&spl_token::ID, &attacker.sol, &w.collateral_staging, &attacker.owner.pubkey(), &[], SOL).unwrap();
    let donate = spl_token::instruction::transfer(&spl_token::ID, &attacker.usdc, &w.market.usdc.vault, &attacker.owner.pubkey(), &[], 1_000 * USDC).unwrap();
    w.bank.send(&[transfer, donate], &[&attacker.owner]).await.unwrap();
    force_balance(&mut w.bank, &w.margin_account, &w.market.usdc.bank, (1_000 * USDC) as i64).await;

    // 3. The victim deposits 10 SOL. With a minimum from the undisturbed price it is refused...
    let undisturbed = expected_shares(sol_value(10 * SOL, false), sol_value(10, true), 1_000);
    let keys = [w.margin_account, w.vault, victim.record, victim.sol];
    let before = snapshot_accounts(&mut w.bank, &keys).await;
    let outcome = w.bank.send_logged(&[w.deposit_ix(&victim, 10 * SOL, undisturbed * 99 / 100)], &[&victim.owner]).await;
    assert_vault_code(&outcome, VaultError::SharesBelowMinimum);
    assert_eq!(before, snapshot_accounts(&mut w.bank, &keys).await);
    // ...and without one it still loses less than one share: NAV = 2 (10 lamports rounded up) +
    // 1,000,000,000 micro-USD, so 1,499,999,999 x 2,000 / 1,000,000,003 = 2,999 shares.
    w.bank.send(&[w.deposit_ix(&victim, 10 * SOL, 0)], &[&victim.owner]).await.unwrap();
    assert_eq!(w.shares(&victim).await, 2_999);
    assert_eq!(expected_shares(sol_value(10 * SOL, false), sol_value(10, true) + 1_000 * USDC, 1_000), 2_999);

    // 4. Both leave. Values at $150: the victim gets 2,999 / 4,999 of (10 SOL + 10 lamports,
    //    1,000 USDC) = $1,499.80 for its $1,500; the attacker 1,000 / 2,000 of the rest = $500.10
    //    for its $1,000.0000015. The virtual shares keep the other $500.10.
    let (sol_v, usdc_v) = w.withdraw_all_exactly(&victim).await;
    let (sol_x, usdc_x) = w.withdraw_all_exactly(&attacker).await;
    let usd = |lamports: u64, usdc: i64| lamports as i64 * 150 / 1_000 + usdc; // micro-USD
    let (victim_value, attacker_value) = (usd(sol_v, usdc_v), usd(sol_x, usdc_x));
    println!("victim: {sol_v} lamports + {usdc_v} micro-USDC = {victim_value} micro-USD");
    println!("attacker: {sol_x} lamports + {usdc_x} micro-USDC = {attacker_value} micro-USD");
    assert_eq!((sol_v, usdc_v), (5_999_199_845, 599_919_983));
    assert_eq!((sol_x, usdc_x), (2_000_400_082, 200_040_008));
    let victim_loss = 1_500_000_000 - victim_value;
    let attacker_loss = 1_000_000_001 - attacker_value; // 10 lamports ~ $0.0000015 + 1,000 USDC
    // The victim loses $0.200041, less than one share ($1,000,000,003 / 2,000 = $0.50); the
    // attacker $499.899981, half its donation, to the virtual shares.
    assert_eq!(victim_loss, 200_041);
    assert_eq!(attacker_loss, 499_899_981);
    // The staged SOL never entered the margin account.
    assert_eq!(w.bank.token_balance(&w.collateral_staging).await, SOL);
}

#[tokio::test]
async fn calls_settled_deep_in_the_money_leave_a_usdc_debt_each_withdrawer_repays_pro_rata() {
    let mut w = world().await;
    // Settled at $175: 15,000 lots x 15,000 = 225 USDC owed against a premium of ~95 USDC.
    let (a, b, premium) = w.one_round(100 * USDC, 100 * USDC, 175.0).await;
    let debt = 15 * LOTS_PER_SOL * 15_000 - premium;
    assert_eq!(w.balances().await, (15 * SOL as i64, -debt));
    // Each pays ceil(debt x shares / (supply + 1,000)) USDC and gets floor(SOL x shares / ...).
    let (sol_a, usdc_a) = w.withdraw_all_exactly(&a).await;
    let (sol_b, usdc_b) = w.withdraw_all_exactly(&b).await;
    println!("A: {sol_a} lamports, paid {} micro-USDC; B: {sol_b} lamports, paid {} (debt {debt})", -usdc_a, -usdc_b);
    assert_eq!((sol_a, sol_b), (10_000_000_002, 4_999_999_991));
    assert_eq!((debt, usdc_a, usdc_b), (129_585_000, -86_390_001, -43_194_999));
    assert!((-usdc_a).abs_diff(debt * 2 / 3) <= 1 && (-usdc_b).abs_diff(debt / 3) <= 1);
    // Repayments round up: what is left is at most the virtual shares' dust, never a debt
    // larger than their share of it.
    let (sol_left, usdc_left) = w.balances().await;
    println!("left in the vault: {sol_left} lamports, {usdc_left} micro-USDC");
    assert!(sol_left <= 10 && (-1..=0).contains(&usdc_left));
}

/// Raw data of accounts, to prove a view changed nothing.
async fn snapshot_accounts(bank: &mut LocalBank, keys: &[Pubkey]) -> Vec<Option<(u64, Vec<u8>)>> {
    snapshot(bank, keys).await
}

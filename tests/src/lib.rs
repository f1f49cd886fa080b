//! Shared fixtures for the integration tests: a demo group on the embedded bank, error
//! matching, and before/after snapshots to prove a failed instruction changed nothing.

#![allow(deprecated)] // solana-program-test 3.1 marks its API unstable; it is the in-process bank we test on.

pub mod rpc_facade;

use anchor_lang::prelude::Pubkey;
use pm_client::local_bank::LocalBank;
use portfolio_margin::error::MarginError;
use portfolio_margin::state::MarginAccount;
use solana_program_test::BanksClientError;

pub use pm_client::world::{bank_config, funded_trader, list_bank, new_trader, onchain_health, post_price, setup_market, DemoMarket, Trader};

/// The custom error code a program error surfaces as.
pub fn code_of(error: MarginError) -> u32 {
    error as u32 + anchor_lang::error::ERROR_CODE_OFFSET
}

/// The custom error code of a failed transaction, if it failed in an instruction.
pub fn custom_code<T: std::fmt::Debug>(result: &Result<T, BanksClientError>) -> Option<u32> {
    use solana_instruction_error::InstructionError;
    match result {
        Err(BanksClientError::TransactionError(solana_transaction_error::TransactionError::InstructionError(
            _,
            InstructionError::Custom(code),
        ))) => Some(*code),
        _ => None,
    }
}

/// Asserts that a transaction failed with `expected`.
#[track_caller]
pub fn assert_margin_error<T: std::fmt::Debug>(result: Result<T, BanksClientError>, expected: MarginError) {
    let code = custom_code(&result);
    assert_eq!(code, Some(code_of(expected)), "expected {expected:?}, got {result:?}");
}

/// Asserts that a transaction failed with an Anchor framework error.
#[track_caller]
pub fn assert_anchor_error<T: std::fmt::Debug>(result: Result<T, BanksClientError>, expected: anchor_lang::error::ErrorCode) {
    assert_eq!(custom_code(&result), Some(expected as u32), "expected {expected:?}, got {result:?}");
}

/// Raw data of several accounts, to compare before and after a failed instruction.
pub async fn snapshot(bank: &mut LocalBank, keys: &[Pubkey]) -> Vec<Option<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    for key in keys {
        let account = bank.context.banks_client.get_account(*key).await.expect("get_account");
        out.push(account.map(|a| (a.lamports, a.data)));
    }
    out
}

/// Puts `balance_native` in `account`'s slot for `bank_key` (creating the slot), standing in
/// for a settled loss or gain that later instructions produce.
pub async fn force_balance(bank: &mut LocalBank, account_key: &Pubkey, bank_key: &Pubkey, balance_native: i64) {
    let mut data = bank.account_data(account_key).await.expect("margin account");
    let size = core::mem::size_of::<MarginAccount>();
    let mut account: MarginAccount = bytemuck::pod_read_unaligned(&data[8..8 + size]);
    let index = account.balance_index_or_insert(bank_key, 0).expect("free slot");
    account.balances[index].balance_native = balance_native;
    data[8..8 + size].copy_from_slice(bytemuck::bytes_of(&account));
    bank.set_account_data(account_key, data).await;
}

pub use pm_client::rfq::{add_rfq_venue, rfq_venue_entry};

/// A transaction's result and the runtime's log lines (`LocalBank::send_logged`).
pub type Logged = (Result<pm_client::local_bank::TxOutcome, BanksClientError>, Vec<String>);

fn core_invoked(logs: &[String]) -> bool {
    let prefix = format!("Program {} invoke", portfolio_margin::ID);
    logs.iter().any(|l| l.starts_with(&prefix))
}

/// Asserts that the RFQ venue refused with `expected` before invoking portfolio-margin (both
/// programs number their errors from 6000, so the code alone does not say which one failed).
#[track_caller]
pub fn assert_venue_error(outcome: &Logged, expected: rfq_venue::RfqError) {
    let code = expected as u32 + anchor_lang::error::ERROR_CODE_OFFSET;
    assert_eq!(custom_code(&outcome.0), Some(code), "expected {expected:?}, got {:?}\n{:#?}", outcome.0, outcome.1);
    assert!(!core_invoked(&outcome.1), "expected the venue to refuse before invoking portfolio-margin: {:#?}", outcome.1);
}

/// Asserts that portfolio-margin, invoked by the venue, refused with `expected`.
#[track_caller]
pub fn assert_core_error_via_venue(outcome: &Logged, expected: MarginError) {
    assert_eq!(custom_code(&outcome.0), Some(code_of(expected)), "expected {expected:?}, got {:?}\n{:#?}", outcome.0, outcome.1);
    let failed = format!("Program {} failed", portfolio_margin::ID);
    assert!(outcome.1.iter().any(|l| l.starts_with(&failed)), "expected portfolio-margin to fail: {:#?}", outcome.1);
}

/// Delegate limits for tests that only need some delegate: 0.2% band, 100 USDC budget, no expiry.
pub fn delegate_limits() -> portfolio_margin::instructions::DelegateLimits {
    portfolio_margin::instructions::DelegateLimits { price_band_ppm: 2_000, max_slippage_native: 100_000_000, expiry_ts: i64::MAX }
}

/// Lots `account` holds in `market` (0 when it has no position there).
pub async fn position(bank: &mut LocalBank, account: &Pubkey, market: &Pubkey) -> i64 {
    let state: MarginAccount = bank.load(account).await;
    state.position_index(market).map(|i| state.positions[i].base_lots).unwrap_or(0)
}

/// `account`'s balance in `quote_bank`, native units (0 without a slot).
pub async fn quote_balance(bank: &mut LocalBank, account: &Pubkey, quote_bank: &Pubkey) -> i64 {
    let state: MarginAccount = bank.load(account).await;
    state.balance_index(quote_bank).map(|i| state.balances[i].balance_native).unwrap_or(0)
}

/// A fresh embedded bank with the demo group and its SOL derivatives.
pub async fn start() -> (LocalBank, DemoMarket, pm_client::world::Derivatives) {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let d = pm_client::world::setup_derivatives(&mut bank, &market).await.unwrap();
    (bank, market, d)
}

/// The usual counterparties: a dealer with 1,000,000 USDC and a keeper (liquidator) with
/// 100,000 USDC.
pub async fn dealer_and_keeper(bank: &mut LocalBank, market: &DemoMarket) -> (Trader, Trader) {
    let dealer = funded(bank, market, 1_000_000_000_000u64).await;
    let keeper = funded(bank, market, 100_000_000_000u64).await;
    (dealer, keeper)
}

/// The liquidation world: the demo group and derivatives, a victim with 1,000 USDC long 30 SOL
/// of perp at $150 against the dealer, and a keeper.
pub struct PerpWorld {
    pub bank: LocalBank,
    pub market: DemoMarket,
    pub d: pm_client::world::Derivatives,
    /// 1,000 USDC, long 30 SOL perp at $150.
    pub victim: Trader,
    /// The counterparty: 1,000,000 USDC.
    pub dealer: Trader,
    /// The liquidator: 100,000 USDC.
    pub keeper: Trader,
}

/// Builds a [`PerpWorld`].
pub async fn perp_world() -> PerpWorld {
    let (mut bank, market, d) = start().await;
    let victim = funded(&mut bank, &market, 1_000_000_000u64).await;
    let (dealer, keeper) = dealer_and_keeper(&mut bank, &market).await;
    pm_client::world::block_trade(&mut bank, &market, &d.perp.keys, &victim, &dealer, 30_000, 150_000).await.unwrap();
    PerpWorld { bank, market, d, victim, dealer, keeper }
}

/// Posts SOL at `price` (and USDC at $1) and refreshes every derivative's array.
pub async fn move_sol(bank: &mut LocalBank, market: &DemoMarket, d: &pm_client::world::Derivatives, price: f64) {
    post_price(bank, &market.sol.oracle, market.sol_feed, price).await;
    post_price(bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    for keys in [d.perp.keys, d.call.keys, d.put.keys] {
        bank.send(&[pm_client::sdk::refresh_risk_array(&keys)], &[]).await.unwrap();
    }
}

fn native_amount(amount: impl Into<i128>) -> u64 {
    u64::try_from(amount.into()).expect("a non-negative native amount")
}

/// A trader with `usdc_native` deposited (its wallet is then empty).
pub async fn funded(bank: &mut LocalBank, market: &DemoMarket, usdc_native: impl Into<i128>) -> Trader {
    funded_trader(bank, market, native_amount(usdc_native), 0).await.unwrap()
}

/// A second margin account of `owner` (index 1) with `usdc_native` deposited; it shares the
/// owner's USDC wallet.
pub async fn second_account(bank: &mut LocalBank, market: &DemoMarket, owner: &Trader, usdc_native: impl Into<i128>) -> Trader {
    use pm_client::sdk;
    use solana_signer::Signer;
    let amount = native_amount(usdc_native);
    let key = owner.owner.insecure_clone();
    bank.send(&[sdk::create_margin_account(&market.group, &key.pubkey(), &key.pubkey(), 1)], &[&key]).await.unwrap();
    bank.mint_to(&market.usdc.mint, &owner.usdc_wallet, &anchor_spl::token::spl_token::ID, amount).await.unwrap();
    let account = sdk::margin_account_address(&market.group, &key.pubkey(), 1);
    bank.send(&[sdk::deposit(&account, &market.usdc, &owner.usdc_wallet, &key.pubkey(), amount)], &[&key]).await.unwrap();
    Trader { owner: key, account, usdc_wallet: owner.usdc_wallet, sol_wallet: owner.sol_wallet }
}

/// Moves the clock and posts fresh SOL (at `sol` dollars, EMA equal) and USDC prices.
pub async fn later(bank: &mut LocalBank, market: &DemoMarket, seconds: i64, sol: f64) {
    bank.advance_clock(seconds).await;
    post_price(bank, &market.sol.oracle, market.sol_feed, sol).await;
    post_price(bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
}

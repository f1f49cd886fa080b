//! Collateral vaults, margin accounts, oracles and withdraw health on the embedded bank with the
//! real SPL Token and Token-2022 programs. Every rejected instruction is checked for its exact
//! error and for leaving every touched account unchanged.

use anchor_lang::prelude::Pubkey;
use anchor_lang::AnchorDeserialize;
use anchor_spl::token::spl_token;
use anchor_spl::token_2022::spl_token_2022;
use pm_client::health::HealthSnapshot;
use pm_client::local_bank::{LocalBank, MintExtension};
use pm_client::pyth::{feed_id_for, PythPrice};
use pm_client::sdk::{self, BankKeys};
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::health::HealthReport;
use portfolio_margin::instructions::GroupParams;
use portfolio_margin::state::{CollateralBank, Group, MarginAccount, MARGIN_ACCOUNT_SIZE, PPM};
use pyth_solana_receiver_sdk::price_update::VerificationLevel;
use risk_engine::health::HealthKind;
use solana_keypair::Keypair;
use solana_signer::Signer;

const SOL: u64 = 1_000_000_000;
const USDC: u64 = 1_000_000;

/// A group with USDC and SOL banks and a trader who deposited 500 USDC and 10 SOL.
async fn setup() -> (LocalBank, DemoMarket, Trader) {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let trader = new_trader(&mut bank, &market, 1_000 * USDC, 20 * SOL).await.unwrap();
    let owner = trader.owner.insecure_clone();
    bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), 500 * USDC)], &[&owner])
        .await
        .unwrap();
    bank.send(&[sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &owner.pubkey(), 10 * SOL)], &[&owner])
        .await
        .unwrap();
    (bank, market, trader)
}

/// Accounts a withdrawal or deposit can touch.
fn touched(market: &DemoMarket, trader: &Trader) -> Vec<Pubkey> {
    vec![
        trader.account,
        market.sol.bank,
        market.sol.vault,
        market.usdc.bank,
        market.usdc.vault,
        trader.sol_wallet,
        trader.usdc_wallet,
    ]
}

fn withdraw_ix(market: &DemoMarket, trader: &Trader, bank: &BankKeys, snapshot: &HealthSnapshot, amount: u64) -> sdk_ix::Instruction {
    let after = sdk::after_withdrawal(&snapshot.account, &bank.bank, amount);
    let wallet = if bank.bank == market.sol.bank { trader.sol_wallet } else { trader.usdc_wallet };
    sdk::withdraw(&market.group, &trader.account, bank, &wallet, &trader.owner.pubkey(), amount, snapshot.health_accounts(&after))
}

mod sdk_ix {
    pub use anchor_lang::solana_program::instruction::Instruction;
}

async fn health_check(
    bank: &mut LocalBank,
    market: &DemoMarket,
    trader: &Trader,
    metas: Vec<anchor_lang::prelude::AccountMeta>,
) -> Result<pm_client::local_bank::TxOutcome, solana_program_test::BanksClientError> {
    bank.send(&[sdk::health_check(&market.group, &trader.account, i64::MIN, HealthKind::Maint as u8, metas)], &[]).await
}

/// Health accounts from an oracle per bank (these tests hold collateral only, none linked).
struct Oracles<F: Fn(&Pubkey) -> Pubkey>(F);

impl<F: Fn(&Pubkey) -> Pubkey> sdk::HealthAccountSource for Oracles<F> {
    fn bank(&self, bank: &Pubkey) -> Option<(Pubkey, Pubkey)> {
        Some(((self.0)(bank), Pubkey::default()))
    }
    fn market_underlying(&self, _: &Pubkey) -> Option<Pubkey> {
        None
    }
    fn underlying_oracle(&self, _: &Pubkey) -> Option<Pubkey> {
        None
    }
}

#[tokio::test]
async fn cross_collateral_withdraw_exactly_the_maximum_and_not_one_unit_more() {
    let (mut bank, market, trader) = setup().await;
    // The account owes 1,000 USDC (as a settled loss would leave it): its SOL now backs a
    // liability, so init health limits the SOL withdrawal.
    force_balance(&mut bank, &trader.account, &market.usdc.bank, -1_000 * USDC as i64).await;
    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    let max = snapshot.max_withdrawal(&market.sol.bank).unwrap();
    assert!(max > 0 && max < 10 * SOL, "max withdrawal {max}");

    // One native unit more than the maximum fails on init health and changes nothing.
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    let result = bank.send(&[withdraw_ix(&market, &trader, &market.sol, &snapshot, max + 1)], &[&trader.owner]).await;
    assert_margin_error(result, MarginError::InitHealthNegative);
    assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);

    // Exactly the maximum passes, leaving init health in [0, one lamport's worth).
    let wallet_before = bank.token_balance(&trader.sol_wallet).await;
    bank.send(&[withdraw_ix(&market, &trader, &market.sol, &snapshot, max)], &[&trader.owner]).await.unwrap();
    assert_eq!(bank.token_balance(&trader.sol_wallet).await, wallet_before + max);
    let report = onchain_health(&mut bank, &market.group, &trader.account, HealthKind::Init).await.unwrap();
    assert!(report.health_native >= 0 && report.health_native < 1, "init health after max withdrawal: {report:?}");
    let account: MarginAccount = bank.load(&trader.account).await;
    assert_eq!(account.balances[account.balance_index(&market.sol.bank).unwrap()].balance_native, (10 * SOL - max) as i64);
    let sol_bank: CollateralBank = bank.load(&market.sol.bank).await;
    assert_eq!(sol_bank.total_deposits_native, 10 * SOL - max);
    assert_eq!(bank.token_balance(&market.sol.vault).await, 10 * SOL - max);
}

/// Token values are products of I80F48 prices and weights that are not exact in binary
/// (0.9, 0.15 USD per lamport): each rounds down, costing the account at most one native unit
/// per balance.
#[track_caller]
fn assert_within_rounding(actual: i64, exact: i64) {
    assert!(actual <= exact && actual >= exact - 2, "{actual} vs exact {exact}");
}

async fn snapshot_accounts(bank: &mut LocalBank, keys: &[Pubkey]) -> Vec<Option<(u64, Vec<u8>)>> {
    snapshot(bank, keys).await
}

#[tokio::test]
async fn withdraw_everything_without_liabilities_and_more_fails() {
    let (mut bank, market, trader) = setup().await;
    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    assert_eq!(snapshot.max_withdrawal(&market.usdc.bank).unwrap(), 500 * USDC);
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    let result = bank.send(&[withdraw_ix(&market, &trader, &market.usdc, &snapshot, 500 * USDC + 1)], &[&trader.owner]).await;
    assert_margin_error(result, MarginError::InsufficientBalance);
    assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
    bank.send(&[withdraw_ix(&market, &trader, &market.usdc, &snapshot, 500 * USDC)], &[&trader.owner]).await.unwrap();
    let account: MarginAccount = bank.load(&trader.account).await;
    assert_eq!(account.balance_index(&market.usdc.bank), None, "an emptied slot is released");
    assert_eq!(bank.token_balance(&trader.usdc_wallet).await, 1_000 * USDC);
}

#[tokio::test]
async fn token_2022_collateral_deposits_and_withdraws() {
    let (mut bank, market, trader) = setup().await;
    let mint = bank.create_mint(&spl_token_2022::ID, 6, &[]).await.unwrap().pubkey();
    let oracle = Pubkey::new_unique();
    post_price(&mut bank, &oracle, feed_id_for("T22/USD"), 2.0).await;
    let config = bank_config(oracle, feed_id_for("T22/USD"), (900_000, 950_000), (1_100_000, 1_050_000));
    let keys = list_bank(&mut bank, &market.admin, &market.group, &mint, &spl_token_2022::ID, config).await.unwrap();
    let wallet = bank.create_token_account(&mint, &trader.owner.pubkey(), &spl_token_2022::ID).await.unwrap();
    bank.mint_to(&mint, &wallet, &spl_token_2022::ID, 100 * USDC).await.unwrap();
    bank.send(&[sdk::deposit(&trader.account, &keys, &wallet, &trader.owner.pubkey(), 40 * USDC)], &[&trader.owner])
        .await
        .unwrap();
    assert_eq!(bank.token_balance(&keys.vault).await, 40 * USDC);
    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    let after = sdk::after_withdrawal(&snapshot.account, &keys.bank, 15 * USDC);
    let ix = sdk::withdraw(&market.group, &trader.account, &keys, &wallet, &trader.owner.pubkey(), 15 * USDC, snapshot.health_accounts(&after));
    bank.send(&[ix], &[&trader.owner]).await.unwrap();
    assert_eq!(bank.token_balance(&wallet).await, 75 * USDC);
    assert_eq!(bank.token_balance(&keys.vault).await, 25 * USDC);
    // Health counts the Token-2022 collateral at $2 x 0.95 (maint).
    let report = onchain_health(&mut bank, &market.group, &trader.account, HealthKind::Maint).await.unwrap();
    let exact = (500 + 10 * 150 * 9 / 10) as i64 * USDC as i64 + 25 * 2 * 95 * USDC as i64 / 100;
    assert_within_rounding(report.token_value_native, exact);
}

#[tokio::test]
async fn token_2022_transfer_fee_credits_what_the_vault_received() {
    let (mut bank, market, trader) = setup().await;
    let mint = bank.create_mint(&spl_token_2022::ID, 6, &[MintExtension::TransferFee(100)]).await.unwrap().pubkey();
    let oracle = Pubkey::new_unique();
    post_price(&mut bank, &oracle, feed_id_for("FEE/USD"), 1.0).await;
    let config = bank_config(oracle, feed_id_for("FEE/USD"), (900_000, 950_000), (1_100_000, 1_050_000));
    let keys = list_bank(&mut bank, &market.admin, &market.group, &mint, &spl_token_2022::ID, config).await.unwrap();
    let wallet = bank.create_token_account(&mint, &trader.owner.pubkey(), &spl_token_2022::ID).await.unwrap();
    bank.mint_to(&mint, &wallet, &spl_token_2022::ID, 100 * USDC).await.unwrap();
    bank.send(&[sdk::deposit(&trader.account, &keys, &wallet, &trader.owner.pubkey(), 10 * USDC)], &[&trader.owner])
        .await
        .unwrap();
    // 1% fee withheld in the vault account: the account is credited 9.9, the bank total too.
    let account: MarginAccount = bank.load(&trader.account).await;
    let credited = account.balances[account.balance_index(&keys.bank).unwrap()].balance_native;
    assert_eq!(credited, 9_900_000);
    let state: CollateralBank = bank.load(&keys.bank).await;
    assert_eq!(state.total_deposits_native, 9_900_000);
}

#[tokio::test]
async fn token_2022_mints_with_dangerous_extensions_are_refused_by_name() {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let cases = [
        (MintExtension::PermanentDelegate, MarginError::MintHasPermanentDelegate),
        (MintExtension::TransferHook, MarginError::MintHasTransferHook),
        (MintExtension::NonTransferable, MarginError::MintIsNonTransferable),
        (MintExtension::MintCloseAuthority, MarginError::MintHasCloseAuthority),
        (MintExtension::DefaultFrozen, MarginError::MintDefaultFrozen),
        (MintExtension::ConfidentialTransfers, MarginError::MintHasConfidentialTransfers),
        (MintExtension::Pausable, MarginError::MintIsPausable),
        // Raw amounts would be valued at UI prices: a multiplier or accrued interest changes
        // what one native unit means.
        (MintExtension::ScaledUiAmount, MarginError::MintHasScaledUiAmount),
        (MintExtension::InterestBearing, MarginError::MintIsInterestBearing),
    ];
    for (extension, expected) in cases {
        let mint = bank.create_mint(&spl_token_2022::ID, 6, &[extension]).await.unwrap().pubkey();
        let config = bank_config(Pubkey::new_unique(), feed_id_for("X/USD"), (900_000, 950_000), (1_100_000, 1_050_000));
        let ix = sdk::add_collateral_bank(&market.group, &market.admin.pubkey(), &bank.payer().pubkey(), &mint, &spl_token_2022::ID, config);
        let group_before = snapshot_accounts(&mut bank, &[market.group]).await;
        assert_margin_error(bank.send(&[ix], &[]).await, expected);
        let bank_key = sdk::bank_address(&market.group, &mint);
        assert!(bank.account_data(&bank_key).await.is_none(), "{extension:?}: no bank was created");
        assert!(bank.account_data(&sdk::vault_address(&bank_key)).await.is_none());
        assert_eq!(group_before, snapshot_accounts(&mut bank, &[market.group]).await);
    }
}

#[tokio::test]
async fn only_the_owner_withdraws_delegates_and_strangers_are_refused() {
    let (mut bank, market, trader) = setup().await;
    let delegate = Keypair::new();
    let stranger = Keypair::new();
    bank.send(&[sdk::set_delegate(&trader.account, &trader.owner.pubkey(), &delegate.pubkey(), delegate_limits())], &[&trader.owner])
        .await
        .unwrap();
    // A stranger cannot set the delegate.
    let result = bank.send(&[sdk::set_delegate(&trader.account, &stranger.pubkey(), &stranger.pubkey(), delegate_limits())], &[&stranger]).await;
    assert_margin_error(result, MarginError::NotOwner);

    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    for signer in [&delegate, &stranger] {
        let after = sdk::after_withdrawal(&snapshot.account, &market.sol.bank, SOL);
        let ix = sdk::withdraw(&market.group, &trader.account, &market.sol, &trader.sol_wallet, &signer.pubkey(), SOL, snapshot.health_accounts(&after));
        assert_margin_error(bank.send(&[ix], &[signer]).await, MarginError::NotOwner);
        assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
    }

    // A delegate may deposit from its own wallet; a stranger may not deposit into the account.
    let delegate_wallet = bank.create_token_account(&market.usdc.mint, &delegate.pubkey(), &spl_token::ID).await.unwrap();
    bank.mint_to(&market.usdc.mint, &delegate_wallet, &spl_token::ID, 5 * USDC).await.unwrap();
    bank.send(&[sdk::deposit(&trader.account, &market.usdc, &delegate_wallet, &delegate.pubkey(), 5 * USDC)], &[&delegate])
        .await
        .unwrap();
    let stranger_wallet = bank.create_token_account(&market.usdc.mint, &stranger.pubkey(), &spl_token::ID).await.unwrap();
    bank.mint_to(&market.usdc.mint, &stranger_wallet, &spl_token::ID, 5 * USDC).await.unwrap();
    let before = snapshot_accounts(&mut bank, &[trader.account, stranger_wallet, market.usdc.vault]).await;
    let result = bank
        .send(&[sdk::deposit(&trader.account, &market.usdc, &stranger_wallet, &stranger.pubkey(), 5 * USDC)], &[&stranger])
        .await;
    assert_margin_error(result, MarginError::NotOwnerOrDelegate);
    assert_eq!(before, snapshot_accounts(&mut bank, &[trader.account, stranger_wallet, market.usdc.vault]).await);

    // Clearing the delegate takes its rights away.
    bank.send(&[sdk::set_delegate(&trader.account, &trader.owner.pubkey(), &Pubkey::default(), delegate_limits())], &[&trader.owner])
        .await
        .unwrap();
    bank.mint_to(&market.usdc.mint, &delegate_wallet, &spl_token::ID, USDC).await.unwrap();
    let result = bank
        .send(&[sdk::deposit(&trader.account, &market.usdc, &delegate_wallet, &delegate.pubkey(), USDC)], &[&delegate])
        .await;
    assert_margin_error(result, MarginError::NotOwnerOrDelegate);
}

#[tokio::test]
async fn wrong_vault_and_wrong_mint_are_refused() {
    let (mut bank, market, trader) = setup().await;
    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    let metas = snapshot.health_accounts(&snapshot.account);

    // SOL bank with the USDC vault.
    let wrong_vault = BankKeys { vault: market.usdc.vault, ..market.sol };
    let ix = sdk::withdraw(&market.group, &trader.account, &wrong_vault, &trader.sol_wallet, &trader.owner.pubkey(), SOL, metas.clone());
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::WrongVault);
    let ix = sdk::deposit(&trader.account, &wrong_vault, &trader.sol_wallet, &trader.owner.pubkey(), SOL);
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::WrongVault);

    // SOL bank with the USDC mint.
    let wrong_mint = BankKeys { mint: market.usdc.mint, ..market.sol };
    let ix = sdk::withdraw(&market.group, &trader.account, &wrong_mint, &trader.usdc_wallet, &trader.owner.pubkey(), SOL, metas.clone());
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::WrongMint);
    let ix = sdk::deposit(&trader.account, &wrong_mint, &trader.usdc_wallet, &trader.owner.pubkey(), USDC);
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::WrongMint);

    // Token-2022 program passed for an SPL Token bank.
    let wrong_program = BankKeys { token_program: spl_token_2022::ID, ..market.sol };
    let ix = sdk::deposit(&trader.account, &wrong_program, &trader.sol_wallet, &trader.owner.pubkey(), SOL);
    assert!(bank.send(&[ix], &[&trader.owner]).await.is_err());
    assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
}

/// Runs `health_check` and `withdraw` with the SOL oracle account replaced by `price` (owned by
/// `owner`), asserting both fail with `expected` and change nothing.
async fn assert_oracle_rejected(price: PythPrice, owner: Option<Pubkey>, expected: MarginError) {
    let (mut bank, market, trader) = setup().await;
    bank.set_pyth_price(&market.sol.oracle, &price, owner);
    let snapshot_account: MarginAccount = bank.load(&trader.account).await;
    let metas = sdk::health_accounts(&snapshot_account, &Oracles(|b: &Pubkey| if *b == market.sol.bank { market.sol.oracle } else { market.usdc.oracle }));
    assert_margin_error(health_check(&mut bank, &market, &trader, metas.clone()).await, expected);
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    let ix = sdk::withdraw(&market.group, &trader.account, &market.usdc, &trader.usdc_wallet, &trader.owner.pubkey(), USDC, metas);
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, expected);
    assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
}

async fn fresh_sol_price() -> (i64, [u8; 32]) {
    let mut bank = LocalBank::start().await;
    (bank.now().await, feed_id_for("SOL/USD"))
}

#[tokio::test]
async fn oracle_owned_by_another_program_is_refused() {
    let (now, feed) = fresh_sol_price().await;
    let price = PythPrice::usd(feed, 150.0, 5, now);
    assert_oracle_rejected(price, Some(anchor_lang::system_program::ID), MarginError::OracleWrongOwner).await;
}

#[tokio::test]
async fn wrong_feed_id_is_refused() {
    let (now, _) = fresh_sol_price().await;
    let price = PythPrice::usd(feed_id_for("BTC/USD"), 150.0, 5, now);
    assert_oracle_rejected(price, None, MarginError::OracleFeedMismatch).await;
}

#[tokio::test]
async fn partially_verified_update_is_refused() {
    let (now, feed) = fresh_sol_price().await;
    let price = PythPrice { verification: VerificationLevel::Partial { num_signatures: 5 }, ..PythPrice::usd(feed, 150.0, 5, now) };
    assert_oracle_rejected(price, None, MarginError::OracleNotFullyVerified).await;
}

#[tokio::test]
async fn stale_price_is_refused() {
    let (now, feed) = fresh_sol_price().await;
    // The banks allow 60 seconds.
    let price = PythPrice::usd(feed, 150.0, 5, now - 61);
    assert_oracle_rejected(price, None, MarginError::OracleStale).await;
}

#[tokio::test]
async fn too_wide_confidence_is_refused() {
    let (now, feed) = fresh_sol_price().await;
    // The banks allow 2% (20,000 ppm); 2.5% is refused.
    let price = PythPrice::usd(feed, 150.0, 250, now);
    assert_oracle_rejected(price, None, MarginError::OracleConfidenceTooWide).await;
}

#[tokio::test]
async fn zero_and_negative_prices_are_refused() {
    let (now, feed) = fresh_sol_price().await;
    for mantissa in [0, -150_00000000] {
        let price = PythPrice { price: mantissa, ..PythPrice::usd(feed, 150.0, 5, now) };
        assert_oracle_rejected(price, None, MarginError::OracleNonPositivePrice).await;
    }
    let price = PythPrice { ema_price: 0, ..PythPrice::usd(feed, 150.0, 5, now) };
    assert_oracle_rejected(price, None, MarginError::OracleNonPositivePrice).await;
}

#[tokio::test]
async fn oracle_key_not_the_configured_one_is_refused() {
    let (mut bank, market, trader) = setup().await;
    // A genuine, fresh Pyth account for the right feed, but not the one the bank configured.
    let spoof = Pubkey::new_unique();
    post_price(&mut bank, &spoof, market.sol_feed, 500.0).await;
    let account: MarginAccount = bank.load(&trader.account).await;
    let metas = sdk::health_accounts(&account, &Oracles(|b: &Pubkey| if *b == market.sol.bank { spoof } else { market.usdc.oracle }));
    assert_margin_error(health_check(&mut bank, &market, &trader, metas.clone()).await, MarginError::OracleKeyMismatch);
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    let ix = sdk::withdraw(&market.group, &trader.account, &market.usdc, &trader.usdc_wallet, &trader.owner.pubkey(), USDC, metas);
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::OracleKeyMismatch);
    assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
}

#[tokio::test]
async fn oracle_data_that_is_not_a_price_update_is_refused() {
    let (mut bank, market, trader) = setup().await;
    let mut data = PythPrice::usd(market.sol_feed, 150.0, 5, bank.now().await).account_data();
    data[0] ^= 0xff; // wrong discriminator
    let mut account = PythPrice::usd(market.sol_feed, 150.0, 5, 0).account(pyth_solana_receiver_sdk::ID);
    account.data = data;
    bank.set_raw_account(&market.sol.oracle, account);
    let margin: MarginAccount = bank.load(&trader.account).await;
    let metas = sdk::health_accounts(&margin, &Oracles(|b: &Pubkey| if *b == market.sol.bank { market.sol.oracle } else { market.usdc.oracle }));
    assert_margin_error(health_check(&mut bank, &market, &trader, metas).await, MarginError::OracleInvalidData);
}

#[tokio::test]
async fn deposit_over_limit_and_zero_amounts_are_refused() {
    let (mut bank, market, trader) = setup().await;
    // Limit the SOL bank to 12 SOL in total: 10 are deposited already.
    let sol_state: CollateralBank = bank.load(&market.sol.bank).await;
    let mut config = bank_config(sol_state.oracle, sol_state.feed_id, (800_000, 900_000), (1_200_000, 1_100_000));
    config.deposit_limit_native = 12 * SOL;
    bank.send(&[sdk::update_collateral_bank(&market.group, &market.admin.pubkey(), &market.sol.bank, config)], &[])
        .await
        .unwrap();
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    let ix = sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &trader.owner.pubkey(), 2 * SOL + 1);
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::DepositLimitExceeded);
    let ix = sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &trader.owner.pubkey(), 0);
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::ZeroAmount);
    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    let ix = withdraw_ix(&market, &trader, &market.sol, &snapshot, 0);
    assert_margin_error(bank.send(&[ix], &[&trader.owner]).await, MarginError::ZeroAmount);
    assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
    // Exactly up to the limit is fine.
    let ix = sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &trader.owner.pubkey(), 2 * SOL);
    bank.send(&[ix], &[&trader.owner]).await.unwrap();
}

#[tokio::test]
async fn reinitialising_a_group_or_an_account_fails_and_changes_nothing() {
    let (mut bank, market, trader) = setup().await;
    let group_state: Group = bank.load(&market.group).await;
    let before = snapshot_accounts(&mut bank, &[market.group, trader.account]).await;
    // Same admin and index: the group PDA exists already.
    let params = GroupParams { unrealized_init_weight_ppm: 0, conf_multiplier_ppm: 0, liquidation_fee_ppm: 0, insurance_share_ppm: 0 };
    let ix = sdk::create_group(&market.admin.pubkey(), &Pubkey::new_unique(), &market.sol.mint, 0, params);
    assert!(bank.send(&[ix], &[]).await.is_err());
    let ix = sdk::create_margin_account(&market.group, &trader.owner.pubkey(), &trader.owner.pubkey(), 0);
    assert!(bank.send(&[ix], &[&trader.owner]).await.is_err());
    // Listing the same mint twice fails too.
    let config = bank_config(market.sol.oracle, market.sol_feed, (800_000, 900_000), (1_200_000, 1_100_000));
    let ix = sdk::add_collateral_bank(&market.group, &market.admin.pubkey(), &bank.payer().pubkey(), &market.sol.mint, &spl_token::ID, config);
    let bank_before = snapshot_accounts(&mut bank, &[market.sol.bank, market.sol.vault]).await;
    assert!(bank.send(&[ix], &[]).await.is_err());
    assert_eq!(bank_before, snapshot_accounts(&mut bank, &[market.sol.bank, market.sol.vault]).await);
    assert_eq!(before, snapshot_accounts(&mut bank, &[market.group, trader.account]).await);
    assert_eq!(group_state.bank_count, 2);
}

#[tokio::test]
async fn the_same_account_where_two_are_expected_is_refused() {
    let (mut bank, market, trader) = setup().await;
    let keys = touched(&market, &trader);
    let before = snapshot_accounts(&mut bank, &keys).await;
    // Withdraw into the vault itself.
    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    let after = sdk::after_withdrawal(&snapshot.account, &market.sol.bank, SOL);
    let ix = sdk::withdraw(&market.group, &trader.account, &market.sol, &market.sol.vault, &trader.owner.pubkey(), SOL, snapshot.health_accounts(&after));
    assert_anchor_error(bank.send(&[ix], &[&trader.owner]).await, anchor_lang::error::ErrorCode::ConstraintDuplicateMutableAccount);
    // Deposit from the vault itself.
    let ix = sdk::deposit(&trader.account, &market.sol, &market.sol.vault, &trader.owner.pubkey(), SOL);
    assert_anchor_error(bank.send(&[ix], &[&trader.owner]).await, anchor_lang::error::ErrorCode::ConstraintDuplicateMutableAccount);
    // The same bank's health accounts twice instead of one per balance.
    let sol_pair = vec![
        anchor_lang::prelude::AccountMeta::new_readonly(market.sol.bank, false),
        anchor_lang::prelude::AccountMeta::new_readonly(market.sol.oracle, false),
    ];
    let doubled: Vec<_> = sol_pair.iter().chain(sol_pair.iter()).cloned().collect();
    assert_margin_error(health_check(&mut bank, &market, &trader, doubled).await, MarginError::HealthAccountsMismatch);
    // Missing health accounts.
    assert_margin_error(health_check(&mut bank, &market, &trader, sol_pair).await, MarginError::HealthAccountsMismatch);
    assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
}

#[tokio::test]
async fn closing_requires_an_empty_account_and_returns_rent() {
    let (mut bank, market, trader) = setup().await;
    let before = snapshot_accounts(&mut bank, &[trader.account]).await;
    let result = bank.send(&[sdk::close_margin_account(&trader.account, &trader.owner.pubkey())], &[&trader.owner]).await;
    assert_margin_error(result, MarginError::AccountNotEmpty);
    assert_eq!(before, snapshot_accounts(&mut bank, &[trader.account]).await);

    // Empty it and close: the rent goes back to the owner.
    for keys in [market.sol, market.usdc] {
        let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
        let amount = snapshot.max_withdrawal(&keys.bank).unwrap();
        bank.send(&[withdraw_ix(&market, &trader, &keys, &snapshot, amount)], &[&trader.owner]).await.unwrap();
    }
    let rent = bank.lamports(&trader.account).await;
    assert!(rent > 0);
    let owner_before = bank.lamports(&trader.owner.pubkey()).await;
    // A stranger cannot close it.
    let stranger = Keypair::new();
    let result = bank.send(&[sdk::close_margin_account(&trader.account, &stranger.pubkey())], &[&stranger]).await;
    assert_margin_error(result, MarginError::NotOwner);
    bank.send(&[sdk::close_margin_account(&trader.account, &trader.owner.pubkey())], &[&trader.owner]).await.unwrap();
    assert!(bank.account_data(&trader.account).await.is_none());
    assert_eq!(bank.lamports(&trader.owner.pubkey()).await, owner_before + rent);
}

/// A balance whose bank key names an account that is not a bank (state forced: no instruction
/// writes such a key) is refused with an error saying which: not this program's account (an
/// oracle), or this program's account of another type (the group).
#[tokio::test]
async fn a_health_account_of_the_wrong_owner_or_type_gets_its_own_error() {
    let (mut bank, market, trader) = setup().await;
    for (impostor, error) in [(market.usdc.oracle, MarginError::HealthAccountWrongOwner), (market.group, MarginError::HealthAccountWrongType)] {
        let original = bank.account_data(&trader.account).await.unwrap();
        force_balance(&mut bank, &trader.account, &impostor, 1).await;
        let metas = vec![
            anchor_lang::prelude::AccountMeta::new_readonly(impostor, false),
            anchor_lang::prelude::AccountMeta::new_readonly(market.usdc.bank, false),
            anchor_lang::prelude::AccountMeta::new_readonly(market.usdc.oracle, false),
            anchor_lang::prelude::AccountMeta::new_readonly(market.sol.bank, false),
            anchor_lang::prelude::AccountMeta::new_readonly(market.sol.oracle, false),
        ];
        let keys = touched(&market, &trader);
        let before = snapshot_accounts(&mut bank, &keys).await;
        assert_margin_error(health_check(&mut bank, &market, &trader, metas).await, error);
        assert_eq!(before, snapshot_accounts(&mut bank, &keys).await);
        bank.set_account_data(&trader.account, original).await;
    }
}

#[tokio::test]
async fn health_check_returns_the_breakdown_and_enforces_the_minimum() {
    let (mut bank, market, trader) = setup().await;
    let account: MarginAccount = bank.load(&trader.account).await;
    let metas = sdk::health_accounts(&account, &Oracles(|b: &Pubkey| if *b == market.sol.bank { market.sol.oracle } else { market.usdc.oracle }));
    // Maint: 500 USDC x 1 + 10 SOL x 150 x 0.9 = 1,850 USD.
    let outcome = bank
        .send(&[sdk::health_check(&market.group, &trader.account, 0, HealthKind::Maint as u8, metas.clone())], &[])
        .await
        .unwrap();
    let report = HealthReport::deserialize(&mut &outcome.return_data[..]).unwrap();
    assert_eq!((report.kind, report.position_equity_native, report.requirement_native), (HealthKind::Maint as u8, 0, 0));
    assert_within_rounding(report.token_value_native, 1_850 * USDC as i64);
    assert_eq!(report.health_native, report.token_value_native);
    // The client predicts every kind exactly.
    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await.unwrap();
    for kind in [HealthKind::Init, HealthKind::Maint, HealthKind::LiquidationEnd] {
        let onchain = onchain_health(&mut bank, &market.group, &trader.account, kind).await.unwrap();
        assert_eq!(onchain, HealthReport::from_breakdown(&snapshot.health(kind).unwrap()).unwrap());
    }
    let init = onchain_health(&mut bank, &market.group, &trader.account, HealthKind::Init).await.unwrap().health_native;
    let end = onchain_health(&mut bank, &market.group, &trader.account, HealthKind::LiquidationEnd).await.unwrap().health_native;
    assert!(init <= end && end <= report.health_native);
    // Above the minimum fails; an unknown kind fails.
    let ix = sdk::health_check(&market.group, &trader.account, report.health_native + 1, HealthKind::Maint as u8, metas.clone());
    bank.send(&[sdk::health_check(&market.group, &trader.account, report.health_native, HealthKind::Maint as u8, metas.clone())], &[])
        .await
        .unwrap();
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::HealthBelowMinimum);
    let ix = sdk::health_check(&market.group, &trader.account, 0, 7, metas);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::InvalidHealthKind);
}

#[tokio::test]
async fn bank_configuration_is_admin_only_and_validated() {
    let (mut bank, market, _trader) = setup().await;
    let state: CollateralBank = bank.load(&market.sol.bank).await;
    let good = bank_config(state.oracle, state.feed_id, (800_000, 900_000), (1_200_000, 1_100_000));
    let before = snapshot_accounts(&mut bank, &[market.sol.bank]).await;
    let stranger = Keypair::new();
    let ix = sdk::update_collateral_bank(&market.group, &stranger.pubkey(), &market.sol.bank, good);
    assert_margin_error(bank.send(&[ix], &[&stranger]).await, MarginError::NotGroupAdmin);
    let invalid = [
        (bank_config(state.oracle, state.feed_id, (950_000, 900_000), (1_200_000, 1_100_000)), MarginError::InvalidAssetWeights),
        (bank_config(state.oracle, state.feed_id, (800_000, 1_100_000), (1_200_000, 1_100_000)), MarginError::InvalidAssetWeights),
        (bank_config(state.oracle, state.feed_id, (800_000, 900_000), (1_000_000, 1_100_000)), MarginError::InvalidLiabilityWeights),
        (bank_config(state.oracle, state.feed_id, (800_000, 900_000), (1_200_000, 900_000)), MarginError::InvalidLiabilityWeights),
        (sdk_config_with(good, |c| c.max_price_age_seconds = 0), MarginError::InvalidMaxPriceAge),
        (sdk_config_with(good, |c| c.max_confidence_ppm = 0), MarginError::InvalidMaxConfidence),
    ];
    for (config, expected) in invalid {
        let ix = sdk::update_collateral_bank(&market.group, &market.admin.pubkey(), &market.sol.bank, config);
        assert_margin_error(bank.send(&[ix], &[]).await, expected);
    }
    assert_eq!(before, snapshot_accounts(&mut bank, &[market.sol.bank]).await);
    // A valid update by the admin applies.
    let tighter = sdk_config_with(good, |c| c.max_price_age_seconds = 30);
    bank.send(&[sdk::update_collateral_bank(&market.group, &market.admin.pubkey(), &market.sol.bank, tighter)], &[])
        .await
        .unwrap();
    let state: CollateralBank = bank.load(&market.sol.bank).await;
    assert_eq!(state.max_price_age_seconds, 30);
    // Listing by a non-admin fails.
    let mint = bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let ix = sdk::add_collateral_bank(&market.group, &stranger.pubkey(), &bank.payer().pubkey(), &mint, &spl_token::ID, good);
    assert_margin_error(bank.send(&[ix], &[&stranger]).await, MarginError::NotGroupAdmin);
}

fn sdk_config_with(
    mut config: portfolio_margin::state::BankConfig,
    change: impl FnOnce(&mut portfolio_margin::state::BankConfig),
) -> portfolio_margin::state::BankConfig {
    change(&mut config);
    config
}

#[tokio::test]
async fn group_parameters_are_validated() {
    let mut bank = LocalBank::start().await;
    let admin = bank.payer();
    let mint = bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let bad = GroupParams { unrealized_init_weight_ppm: PPM + 1, conf_multiplier_ppm: 0, liquidation_fee_ppm: 0, insurance_share_ppm: 0 };
    let ix = sdk::create_group(&admin.pubkey(), &admin.pubkey(), &mint, 3, bad);
    assert_margin_error(bank.send(&[ix], &[]).await, MarginError::InvalidGroupParams);
    assert!(bank.account_data(&sdk::group_address(&admin.pubkey(), 3)).await.is_none());
}

#[test]
fn margin_account_size_is_within_budget() {
    // 8 collateral balances + 16 positions, venue and delegate limits, in under 4 KiB (Drift:
    // 4,376 bytes for 8 + 8).
    assert_eq!(MARGIN_ACCOUNT_SIZE, 2_144);
}

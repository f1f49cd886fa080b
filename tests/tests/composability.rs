//! Other programs composing with portfolio-margin by CPI: a covered-call vault owning a margin
//! account through its PDA, and the RFQ venue submitting signed quotes' fills for accounts that
//! approved it (its attacks are in `venue.rs`).

#![allow(deprecated)] // solana-program-test 3.1 marks its API unstable.

use anchor_lang::prelude::{AccountInfo, AccountMeta, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{InstructionData, ToAccountMetas};
use anchor_spl::token::spl_token;
use covered_call_vault::Vault;
use pm_client::demo::{block_trade, fill_health_accounts, model_price_per_lot, setup_derivatives, Derivatives};
use pm_client::health::HealthSnapshot;
use pm_client::local_bank::LocalBank;
use pm_client::rfq::{self, Quote, QuoteSide};
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::VenueLimits;
use portfolio_margin::state::MarginAccount;
use risk_engine::health::HealthKind;
use solana_keypair::Keypair;
use solana_program_test::processor;
use solana_signer::Signer;

const SOL: u64 = 1_000_000_000;
const USDC: u64 = 1_000_000;

fn vault_entry(program_id: &Pubkey, accounts: &[AccountInfo], data: &[u8]) -> anchor_lang::solana_program::entrypoint::ProgramResult {
    // SAFETY: the accounts outlive the call; Anchor needs one lifetime for slice and infos.
    let accounts: &[AccountInfo] = unsafe { core::mem::transmute(accounts) };
    covered_call_vault::entry(program_id, accounts, data)
}

async fn start() -> (LocalBank, DemoMarket, Derivatives) {
    let mut bank = LocalBank::start_with(|test| {
        test.add_program("covered_call_vault", covered_call_vault::ID, processor!(vault_entry));
        add_rfq_venue(test);
    })
    .await;
    let market = setup_market(&mut bank).await.unwrap();
    let derivatives = setup_derivatives(&mut bank, &market).await.unwrap();
    (bank, market, derivatives)
}

fn vault_ix(accounts: impl ToAccountMetas, data: impl InstructionData, extra: Vec<AccountMeta>) -> Instruction {
    let mut metas = accounts.to_account_metas(None);
    metas.extend(extra);
    Instruction { program_id: covered_call_vault::ID, accounts: metas, data: data.data() }
}

#[tokio::test]
async fn a_vault_program_deposits_sells_calls_and_checks_health_through_its_pda() {
    let (mut bank, market, derivatives) = start().await;
    let manager = Keypair::new();
    bank.airdrop(&manager.pubkey(), 10 * SOL).await.unwrap();
    let vault = Pubkey::find_program_address(&[covered_call_vault::VAULT_SEED, manager.pubkey().as_ref()], &covered_call_vault::ID).0;
    let margin_account = sdk::margin_account_address(&market.group, &vault, 0);

    // 1. The vault creates its margin account by CPI, owned by the vault PDA.
    let ix = vault_ix(
        covered_call_vault::accounts::InitVault {
            vault,
            manager: manager.pubkey(),
            group: market.group,
            margin_account,
            portfolio_margin_program: portfolio_margin::ID,
            system_program: anchor_lang::system_program::ID,
        },
        covered_call_vault::instruction::InitVault {},
        vec![],
    );
    bank.send(&[ix], &[&manager]).await.unwrap();
    let account: MarginAccount = bank.load(&margin_account).await;
    assert_eq!(account.owner, vault);

    // 2. It deposits 10 SOL from its own token account by CPI.
    let vault_tokens = bank.create_token_account(&market.sol.mint, &vault, &spl_token::ID).await.unwrap();
    bank.mint_to(&market.sol.mint, &vault_tokens, &spl_token::ID, 10 * SOL).await.unwrap();
    let ix = vault_ix(
        covered_call_vault::accounts::VaultDeposit {
            vault,
            manager: manager.pubkey(),
            margin_account,
            bank: market.sol.bank,
            bank_vault: market.sol.vault,
            mint: market.sol.mint,
            vault_tokens,
            token_program: spl_token::ID,
            portfolio_margin_program: portfolio_margin::ID,
        },
        covered_call_vault::instruction::Deposit { amount_native: 10 * SOL },
        vec![],
    );
    bank.send(&[ix], &[&manager]).await.unwrap();
    assert_eq!(bank.token_balance(&market.sol.vault).await, 10 * SOL);

    // 3. It sells 10 calls to a buyer, the vault PDA signing as seller by CPI.
    let buyer = new_trader(&mut bank, &market, 10_000 * USDC, 0).await.unwrap();
    let owner = buyer.owner.insecure_clone();
    bank.send(&[sdk::deposit(&buyer.account, &market.usdc, &buyer.usdc_wallet, &owner.pubkey(), 10_000 * USDC)], &[&owner]).await.unwrap();
    let call = derivatives.call.keys;
    let price = model_price_per_lot(&mut bank, &call.market).await;
    let metas = fill_health_accounts(&mut bank, &market, &[buyer.account, margin_account], &call.market).await.unwrap();
    let ix = vault_ix(
        covered_call_vault::accounts::SellCalls {
            vault,
            manager: manager.pubkey(),
            margin_account,
            group: market.group,
            market: call.market,
            underlying: call.underlying,
            oracle: call.oracle,
            quote_bank: call.quote_bank,
            buyer: buyer.account,
            buyer_authority: owner.pubkey(),
            portfolio_margin_program: portfolio_margin::ID,
        },
        covered_call_vault::instruction::SellCalls { lots: 10_000, price_per_lot_native: price },
        metas,
    );
    bank.send(&[ix], &[&manager, &owner]).await.unwrap();
    let account: MarginAccount = bank.load(&margin_account).await;
    assert_eq!(account.positions[account.position_index(&call.market).unwrap()].base_lots, -10_000);

    // 4. It asserts its health by CPI and reads the returned breakdown.
    let health = HealthSnapshot::load(&mut bank, &market.group, &margin_account).await.unwrap();
    let health_metas = health.health_accounts(&health.account);
    let check = |min: i64| {
        vault_ix(
            covered_call_vault::accounts::CheckHealth { vault, margin_account, group: market.group, portfolio_margin_program: portfolio_margin::ID },
            covered_call_vault::instruction::CheckHealth { min_health_native: min },
            health_metas.clone(),
        )
    };
    bank.send(&[check(0)], &[]).await.unwrap();
    let state: Vault = bank.load_anchor(&vault).await;
    let maint = onchain_health(&mut bank, &market.group, &margin_account, HealthKind::Maint).await.unwrap();
    assert_eq!(state.last_maint_health_native, maint.health_native);
    assert!(maint.health_native > 0);
    // A minimum above its health fails inside the CPI, and the vault records nothing.
    let before = snapshot(&mut bank, &[vault]).await;
    assert_margin_error(bank.send(&[check(maint.health_native + 1)], &[]).await, MarginError::HealthBelowMinimum);
    assert_eq!(before, snapshot(&mut bank, &[vault]).await);
}

#[tokio::test]
async fn a_registered_venue_fills_only_for_accounts_that_approved_it() {
    let (mut bank, market, derivatives) = start().await;
    let perp = derivatives.perp.keys;
    let maker = new_trader(&mut bank, &market, 10_000 * USDC, 0).await.unwrap();
    let taker = new_trader(&mut bank, &market, 10_000 * USDC, 0).await.unwrap();
    for t in [&maker, &taker] {
        let owner = t.owner.insecure_clone();
        bank.send(&[sdk::deposit(&t.account, &market.usdc, &t.usdc_wallet, &owner.pubkey(), 10_000 * USDC)], &[&owner]).await.unwrap();
    }
    // The maker sells 1 SOL-PERP (1,000 lots) at $150, the taker buys.
    let expiry_ts = bank.now().await + 600;
    let quote = |price: i64, nonce: u64| Quote {
        group: market.group,
        market: perp.market,
        maker: maker.account,
        taker: Pubkey::default(),
        side: QuoteSide::MakerSells,
        max_lots: 1_000,
        price_per_lot_native: price,
        expiry_ts,
        nonce,
    };
    let metas = fill_health_accounts(&mut bank, &market, &[maker.account, taker.account], &perp.market).await.unwrap();
    let fill_ixs = |q: Quote| rfq::fill_quote_instructions(&perp, &rfq::sign_quote(q, &maker.owner), &taker.account, &taker.owner.pubkey(), 1_000, metas.clone());
    let fill = fill_ixs(quote(150_000, 1));
    let keys = [maker.account, taker.account, perp.market, rfq::quote_record_address(&maker.account, 1)];
    let before = snapshot(&mut bank, &keys).await;

    // Not registered yet.
    let outcome = bank.send_logged(&fill, &[&taker.owner]).await;
    assert_core_error_via_venue(&outcome, MarginError::VenueNotRegistered);
    bank.send(&[sdk::register_venue(&market.group, &market.admin.pubkey(), &bank.payer().pubkey(), &rfq_venue::ID)], &[]).await.unwrap();
    // Registered, but neither owner approved it; then only the maker did.
    assert_core_error_via_venue(&bank.send_logged(&fill, &[&taker.owner]).await, MarginError::VenueNotApproved);
    let limits = VenueLimits { max_fill_lots: 1_000_000, expiry_ts: i64::MAX };
    bank.send(&[sdk::approve_venue(&maker.account, &maker.owner.pubkey(), &rfq_venue::ID, limits)], &[&maker.owner]).await.unwrap();
    assert_core_error_via_venue(&bank.send_logged(&fill, &[&taker.owner]).await, MarginError::VenueNotApproved);
    let after_approvals = snapshot(&mut bank, &keys[1..]).await;
    assert_eq!(before[1..], after_approvals[..]);
    bank.send(&[sdk::approve_venue(&taker.account, &taker.owner.pubkey(), &rfq_venue::ID, limits)], &[&taker.owner]).await.unwrap();
    // Off-market quotes are refused for venues too.
    let off = fill_ixs(quote(160_000, 2));
    assert_core_error_via_venue(&bank.send_logged(&off, &[&taker.owner]).await, MarginError::TradePriceOffMarket);
    // Approved by both, the maker's signed quote and the taker's signature: the fill goes through.
    bank.send(&fill, &[&taker.owner]).await.unwrap();
    let a: MarginAccount = bank.load(&taker.account).await;
    assert_eq!(a.positions[a.position_index(&perp.market).unwrap()].base_lots, 1_000);
    // A signed block trade still works alongside.
    block_trade(&mut bank, &market, &perp, &maker, &taker, 1_000, 150_000).await.unwrap();
}

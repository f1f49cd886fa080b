//! Other programs composing with portfolio-margin by CPI: the RFQ venue submitting signed
//! quotes' fills for accounts that approved it (its attacks are in `venue.rs`). The covered-call
//! vault, which owns a margin account through its PDA, has its own file, `vault.rs`.

#![allow(deprecated)] // solana-program-test 3.1 marks its API unstable.

use anchor_lang::prelude::Pubkey;
use pm_client::world::{block_trade, fill_health_accounts, setup_derivatives, Derivatives};
use pm_client::local_bank::LocalBank;
use pm_client::rfq::{self, Quote, QuoteSide};
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::VenueLimits;
use portfolio_margin::state::MarginAccount;
use solana_signer::Signer;

const USDC: u64 = 1_000_000;

async fn start() -> (LocalBank, DemoMarket, Derivatives) {
    let mut bank = LocalBank::start_with(add_rfq_venue).await;
    let market = setup_market(&mut bank).await.unwrap();
    let derivatives = setup_derivatives(&mut bank, &market).await.unwrap();
    (bank, market, derivatives)
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

//! Class 6, arbitrary CPI: the program invokes, or is invoked by, a program the attacker chose:
//! a token program other than the bank's (Token-2022 for a classic mint, or an arbitrary
//! program posing as one), a venue program that is not registered in the group or not approved
//! by the accounts, and a program posing as the Pyth receiver (owning the price account).
//!
//! The rogue venue below is a tiny native program loaded into the bank: it forwards whatever
//! `venue_trade` it is given to portfolio-margin, signing with its own `["venue-authority"]`
//! PDA, exactly as a registered venue would, without checking anyone's consent.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::{AccountInfo, AccountMeta, Pubkey};
use anchor_lang::solana_program::entrypoint::ProgramResult;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::program::invoke_signed;
use anchor_spl::token::spl_token;
use pm_client::pyth::PythPrice;
use pm_client::sdk::{self, BankKeys};
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::VenueLimits;
use portfolio_margin::state::VENUE_AUTHORITY_SEED;
use solana_signer::Signer;

/// The rogue venue's program id.
const ROGUE: Pubkey = Pubkey::new_from_array([0x5a; 32]);

/// The rogue venue: account 0 is the program to call, the rest and the data are passed on, with
/// the venue-authority PDA of this program signing.
fn rogue_venue(program_id: &Pubkey, accounts: &[AccountInfo], data: &[u8]) -> ProgramResult {
    let (authority, bump) = Pubkey::find_program_address(&[VENUE_AUTHORITY_SEED], program_id);
    let metas = accounts[1..]
        .iter()
        .map(|a| AccountMeta { pubkey: *a.key, is_signer: a.is_signer || *a.key == authority, is_writable: a.is_writable })
        .collect();
    let ix = Instruction { program_id: *accounts[0].key, accounts: metas, data: data.to_vec() };
    invoke_signed(&ix, &accounts[1..], &[&[VENUE_AUTHORITY_SEED, &[bump]]])
}

fn rogue_authority() -> Pubkey {
    Pubkey::find_program_address(&[VENUE_AUTHORITY_SEED], &ROGUE).0
}

/// `ix` (a portfolio-margin instruction naming the rogue's authority) sent through the rogue.
fn through_rogue(ix: Instruction) -> Instruction {
    let authority = rogue_authority();
    let mut accounts = vec![AccountMeta::new_readonly(portfolio_margin::ID, false)];
    accounts.extend(ix.accounts.into_iter().map(|m| AccountMeta { is_signer: m.is_signer && m.pubkey != authority, ..m }));
    Instruction { program_id: ROGUE, accounts, data: ix.data }
}

/// The world with the rogue venue loaded.
async fn rogue_world() -> World {
    world_with(|test| test.add_program("rogue_venue", ROGUE, solana_program_test::processor!(rogue_venue))).await
}

/// Alice and Bob approve `venue_program` without limits.
async fn approve_all(w: &mut World, venue_program: &Pubkey) {
    let limits = VenueLimits { max_fill_lots: i64::MAX, expiry_ts: i64::MAX };
    for t in [&w.alice, &w.bob] {
        w.bank.send(&[sdk::approve_venue(&t.account, &t.owner.pubkey(), venue_program, limits)], &[&t.owner]).await.unwrap();
    }
}

/// Bob buys 50 SOL of the perp from Alice at the band's lower edge through the rogue, naming
/// both owners as consent and `venue` as the registration.
async fn rogue_fill(w: &mut World, venue: &Pubkey) -> Instruction {
    let perp = w.d.perp.keys;
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    let consents = (w.bob.owner.pubkey(), w.alice.owner.pubkey());
    let ix = sdk::venue_trade(&perp, venue, &rogue_authority(), &w.bob.account, &w.alice.account, 50_000, PERP_PRICE_PER_LOT * 98 / 100, consents, metas);
    through_rogue(ix)
}

/// Attack: the rogue, registered nowhere, fills for two accounts that approved the RFQ venue,
/// presenting the RFQ venue's registration. Defence: `venue_trade` requires the signer to be
/// the registration's `authority` (`VenueAuthorityMismatch`).
#[tokio::test]
async fn an_unregistered_venue_program_cannot_sign_fills() {
    let mut w = rogue_world().await;
    let admin = w.market.admin.pubkey();
    w.bank.send(&[sdk::register_venue(&w.market.group, &admin, &admin, &rfq_venue::ID)], &[]).await.unwrap();
    approve_all(&mut w, &rfq_venue::ID).await;
    let venue = sdk::venue_address(&w.market.group, &rfq_venue::ID);
    let ix = rogue_fill(&mut w, &venue).await;
    refused(&mut w.bank, &[ix], &[], margin(MarginError::VenueAuthorityMismatch)).await;
}

/// Attack: the attacker registers the rogue in the group it administers and presents that
/// registration in the demo group, for two accounts that (unwisely) approved the rogue's
/// program id. Defence: `venue_trade` requires the registration's group to be the group passed
/// (`VenueNotRegistered`).
#[tokio::test]
async fn a_venue_registered_in_another_group_cannot_fill_in_this_one() {
    let mut w = rogue_world().await;
    let o = other_group(&mut w).await;
    let payer = w.bank.payer().pubkey();
    w.bank.send(&[sdk::register_venue(&o.group, &o.admin.pubkey(), &payer, &ROGUE)], &[&o.admin]).await.unwrap();
    approve_all(&mut w, &ROGUE).await;
    let venue = sdk::venue_address(&o.group, &ROGUE);
    let ix = rogue_fill(&mut w, &venue).await;
    refused(&mut w.bank, &[ix], &[], margin(MarginError::VenueNotRegistered)).await;
}

/// Attack: the rogue is registered in the demo group, but Alice and Bob approved only the RFQ
/// venue. Defence: `venue_trade::check_approval` requires each account's `approved_venue` to be
/// the registration's program (`VenueNotApproved`).
#[tokio::test]
async fn a_registered_venue_the_accounts_did_not_approve_cannot_fill() {
    let mut w = rogue_world().await;
    let admin = w.market.admin.pubkey();
    w.bank.send(&[sdk::register_venue(&w.market.group, &admin, &admin, &ROGUE)], &[]).await.unwrap();
    approve_all(&mut w, &rfq_venue::ID).await;
    let venue = sdk::venue_address(&w.market.group, &ROGUE);
    let ix = rogue_fill(&mut w, &venue).await;
    refused(&mut w.bank, &[ix], &[], margin(MarginError::VenueNotApproved)).await;
}

/// Attack: withdrawals and deposits of the classic-SPL USDC bank through Token-2022 (a real
/// token program, not the bank's), and a withdrawal and a bank listing through the rogue
/// program posing as a token program (it would "transfer" nothing and report success).
/// Defence: `has_one = token_program` on `bank` in `Withdraw` and `Deposit`
/// (`WrongTokenProgram`); Anchor's `Interface<TokenInterface>` accepts only SPL Token and
/// Token-2022 (`InvalidProgramId`).
#[tokio::test]
async fn a_token_program_other_than_the_banks_is_refused() {
    let mut w = rogue_world().await;
    let alice = w.alice.owner.pubkey();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let token_2022 = BankKeys { token_program: anchor_spl::token_2022::ID, ..w.market.usdc };
    let ix = sdk::withdraw(&w.market.group, &w.alice.account, &token_2022, &w.alice.usdc_wallet, &alice, 1_000 * USDC, metas.clone());
    refused(&mut w.bank, &[ix], &[&w.alice.owner], margin(MarginError::WrongTokenProgram)).await;
    w.bank.mint_to(&w.market.usdc.mint, &w.alice.usdc_wallet, &spl_token::ID, 10 * USDC).await.unwrap();
    let ix = sdk::deposit(&w.alice.account, &token_2022, &w.alice.usdc_wallet, &alice, 10 * USDC);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], margin(MarginError::WrongTokenProgram)).await;

    let rogue = BankKeys { token_program: ROGUE, ..w.market.usdc };
    let ix = sdk::withdraw(&w.market.group, &w.alice.account, &rogue, &w.alice.usdc_wallet, &alice, 1_000 * USDC, metas);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], anchor(ErrorCode::InvalidProgramId)).await;

    let admin = w.market.admin.pubkey();
    let mint = w.bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let config = bank_config(w.market.usdc.oracle, w.market.usdc_feed, (PPM, PPM), (PPM, PPM));
    let ix = sdk::add_collateral_bank(&w.market.group, &admin, &admin, &mint, &ROGUE, config);
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::InvalidProgramId)).await;
}

/// Attack: the SOL price account configured on the bank and the underlying is owned by the
/// rogue program posing as the Pyth receiver (it writes a `PriceUpdateV2` layout, here at
/// $10,000), and funding is accrued and the perp's array refreshed at that price; a settlement
/// price is proposed from another account the rogue owns. Defence: `oracle::decode_update`
/// requires the account to be owned by the Pyth receiver program (`OracleWrongOwner`).
#[tokio::test]
async fn a_program_posing_as_the_pyth_receiver_is_refused() {
    let mut w = rogue_world().await;
    w.bank.advance_clock(1).await;
    let now = w.bank.now().await;
    w.bank.set_pyth_price(&w.market.sol.oracle, &PythPrice::usd(w.market.sol_feed, 10_000.0, 5, now), Some(ROGUE));
    refused(&mut w.bank, &[sdk::update_funding(&w.d.perp.keys)], &[], margin(MarginError::OracleWrongOwner)).await;
    refused(&mut w.bank, &[sdk::refresh_risk_array(&w.d.perp.keys)], &[], margin(MarginError::OracleWrongOwner)).await;

    w.bank.advance_clock(w.d.expiry_ts - now + 10).await;
    let posed = Pubkey::new_unique();
    w.bank.set_pyth_price(&posed, &PythPrice::usd(w.market.sol_feed, 1.0, 5, w.d.expiry_ts + 1), Some(ROGUE));
    refused(&mut w.bank, &[sdk::propose_settlement_price(&w.d.call.keys, &posed)], &[], margin(MarginError::OracleWrongOwner)).await;
}

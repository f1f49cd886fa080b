//! Class 11, sysvar spoofing. portfolio-margin takes no sysvar account: it reads the clock and
//! rent through syscalls (`Clock::get()`, `Rent::get()`), so the closest attempt is an account
//! with the `Clock` layout passed beside an instruction whose outcome depends on the time. The
//! RFQ venue reads the instructions sysvar (to find the Ed25519 verification of the maker's
//! quote): there, a fake instructions account claiming the victim signed is the attack.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::{AccountMeta, Clock, Pubkey};
use pm_client::pyth::PythPrice;
use pm_client::rfq::{self, Quote, QuoteSide};
use pm_client::sdk;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::VenueLimits;
use solana_signer::Signer;

/// A well-known address from its base-58 form.
fn address(base58: &str) -> Pubkey {
    Pubkey::new_from_array(bs58::decode(base58).into_vec().unwrap().try_into().unwrap())
}

/// The sysvar program (owner of sysvar accounts).
fn sysvar_owner() -> Pubkey {
    address("Sysvar1111111111111111111111111111111111111")
}

/// An account at a fresh address with the `Clock` layout at `unix_timestamp`, owned like a
/// sysvar.
fn fake_clock(w: &mut World, unix_timestamp: i64) -> Pubkey {
    // The sysvar's layout: slot, epoch start timestamp, epoch, leader schedule epoch, unix
    // timestamp, eight little-endian bytes each.
    let mut data = Vec::with_capacity(core::mem::size_of::<Clock>());
    for field in [1u64, 0, 0, 0] {
        data.extend_from_slice(&field.to_le_bytes());
    }
    data.extend_from_slice(&unix_timestamp.to_le_bytes());
    let key = Pubkey::new_unique();
    w.bank.set_raw_account(&key, solana_account::Account { lamports: 1_000_000, data, owner: sysvar_owner(), executable: false, rent_epoch: 0 });
    key
}

/// The bytes of an instructions sysvar holding `instructions` (program, accounts, data) with
/// `current` as the executing index, in the runtime's layout.
fn instructions_sysvar_data(instructions: &[(Pubkey, Vec<AccountMeta>, Vec<u8>)], current: u16) -> Vec<u8> {
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for (program, metas, data) in instructions {
        let mut body = (metas.len() as u16).to_le_bytes().to_vec();
        for meta in metas {
            body.push(u8::from(meta.is_signer) | (u8::from(meta.is_writable) << 1));
            body.extend_from_slice(meta.pubkey.as_ref());
        }
        body.extend_from_slice(program.as_ref());
        body.extend_from_slice(&(data.len() as u16).to_le_bytes());
        body.extend_from_slice(data);
        bodies.push(body);
    }
    let mut out = (instructions.len() as u16).to_le_bytes().to_vec();
    let mut offset = 2 + 2 * instructions.len();
    for body in &bodies {
        out.extend_from_slice(&(offset as u16).to_le_bytes());
        offset += body.len();
    }
    for body in bodies {
        out.extend(body);
    }
    out.extend_from_slice(&current.to_le_bytes());
    out
}

/// Ed25519 program data verifying one signature over `message` by `key`, all inline.
fn ed25519_inline(key: &Pubkey, signature: [u8; 64], message: &[u8]) -> Vec<u8> {
    let (key_offset, signature_offset, message_offset) = (16u16, 48u16, 112u16);
    let mut data = vec![1u8, 0];
    for field in [signature_offset, u16::MAX, key_offset, u16::MAX, message_offset, message.len() as u16, u16::MAX] {
        data.extend_from_slice(&field.to_le_bytes());
    }
    data.extend_from_slice(key.as_ref());
    data.extend_from_slice(&signature);
    data.extend_from_slice(message);
    data
}

/// Attack: Bob fills a quote "signed" by Alice (she sells 100 SOL of the perp at the band's
/// lower edge) with no Ed25519 instruction in the transaction, passing in place of the
/// instructions sysvar an account whose data says instruction 0 verified Alice's signature of
/// that quote. Defence: `#[account(address = solana_instructions_sysvar::ID)]` on
/// `instructions` in rfq-venue's `FillQuote` (Anchor `ConstraintAddress`), before
/// portfolio-margin is invoked.
#[tokio::test]
async fn the_rfq_venue_refuses_a_fake_instructions_sysvar() {
    let mut w = world_with(pm_integration_tests::add_rfq_venue).await;
    let admin = w.market.admin.pubkey();
    w.bank.send(&[sdk::register_venue(&w.market.group, &admin, &admin, &rfq_venue::ID)], &[]).await.unwrap();
    let limits = VenueLimits { max_fill_lots: i64::MAX, expiry_ts: i64::MAX };
    for t in [&w.alice, &w.bob] {
        w.bank.send(&[sdk::approve_venue(&t.account, &t.owner.pubkey(), &rfq_venue::ID, limits)], &[&t.owner]).await.unwrap();
    }
    let perp = w.d.perp.keys;
    let expiry_ts = w.bank.now().await + 600;
    let forged = Quote {
        group: perp.group,
        market: perp.market,
        maker: w.alice.account,
        taker: Pubkey::default(),
        side: QuoteSide::MakerSells,
        max_lots: 100_000,
        price_per_lot_native: PERP_PRICE_PER_LOT * 98 / 100,
        expiry_ts,
        nonce: 1,
    };
    let verify = ed25519_inline(&w.alice.owner.pubkey(), [0; 64], &forged.message());
    let ed25519_program = address("Ed25519SigVerify111111111111111111111111111");
    let fake = Pubkey::new_unique();
    let data = instructions_sysvar_data(&[(ed25519_program, vec![], verify), (rfq_venue::ID, vec![], vec![])], 1);
    w.bank.set_raw_account(&fake, solana_account::Account { lamports: 1_000_000, data, owner: sysvar_owner(), executable: false, rent_epoch: 0 });
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    let fill = rfq::fill_quote(&perp, &forged, &w.bob.account, &w.bob.owner.pubkey(), 100_000, metas);
    let fill = replaced(fill, &address("Sysvar1nstructions1111111111111111111111111"), &fake);
    let logs = refused_logged(&mut w.bank, &[fill], &[&w.bob.owner], anchor(ErrorCode::ConstraintAddress)).await;
    let core = format!("Program {} invoke", portfolio_margin::ID);
    assert!(!logs.iter().any(|l| l.starts_with(&core)), "the venue must refuse before invoking portfolio-margin: {logs:#?}");
}

/// Attack: `update_funding` accrues only when the clock moved since the last accrual. Right
/// after one, it is called again with an account holding a `Clock` a day later. Defence: the
/// program reads the time with `Clock::get()` only (no instruction takes a clock account), so
/// the extra account is ignored (`FundingUpToDate`).
#[tokio::test]
async fn a_fake_clock_account_does_not_move_the_programs_time() {
    let mut w = world().await;
    w.bank.advance_clock(1).await;
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 150.0).await;
    w.bank.send(&[sdk::update_funding(&w.d.perp.keys)], &[]).await.unwrap();
    let now = w.bank.now().await;
    let clock = fake_clock(&mut w, now + 86_400);
    let mut ix = sdk::update_funding(&w.d.perp.keys);
    ix.accounts.push(AccountMeta::new_readonly(clock, false));
    refused(&mut w.bank, &[ix], &[], margin(MarginError::FundingUpToDate)).await;
}

/// Attack: a settlement price proposed for the call a month before its expiry from an update
/// "published at expiry", with an account holding a `Clock` past expiry beside it. Defence:
/// `propose_settlement_price` compares expiry with `Clock::get()` (`OptionNotExpired`).
#[tokio::test]
async fn a_fake_clock_cannot_make_an_option_expire_early() {
    let mut w = world().await;
    let update = Pubkey::new_unique();
    w.bank.set_pyth_price(&update, &PythPrice::usd(w.market.sol_feed, 400.0, 5, w.d.expiry_ts), None);
    let after_expiry = w.d.expiry_ts + 10;
    let clock = fake_clock(&mut w, after_expiry);
    let mut ix = sdk::propose_settlement_price(&w.d.call.keys, &update);
    ix.accounts.push(AccountMeta::new_readonly(clock, false));
    refused(&mut w.bank, &[ix], &[], margin(MarginError::OptionNotExpired)).await;
}

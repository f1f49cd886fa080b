//! Client side of the RFQ venue (`rfq-venue`): quote signing, the Ed25519 verification
//! instruction, and the instructions that fill, cancel and close quotes.
//!
//! A maker answers a request with a [`Quote`], signs it with [`sign_quote`] (the key must be the
//! maker account's owner or active delegate) and sends the [`SignedQuote`] to the taker. The
//! taker sends [`fill_quote_instructions`] in one transaction, signed by the taker account's
//! owner or delegate: the Ed25519 verification must come immediately before the fill.

use crate::sdk::{self, MarketKeys};
use anchor_lang::prelude::{AccountMeta, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{InstructionData, ToAccountMetas};
use portfolio_margin::state::VENUE_AUTHORITY_SEED;
pub use rfq_venue::{Quote, QuoteSide, QUOTE_DOMAIN, QUOTE_RECORD_SEED};
use solana_keypair::Keypair;
use solana_signer::Signer;

/// The venue's signing PDA (`["venue-authority"]` of the venue program).
pub fn venue_authority() -> Pubkey {
    Pubkey::find_program_address(&[VENUE_AUTHORITY_SEED], &rfq_venue::ID).0
}

/// The fill record of `(maker margin account, nonce)`.
pub fn quote_record_address(maker_account: &Pubkey, nonce: u64) -> Pubkey {
    Pubkey::find_program_address(&[QUOTE_RECORD_SEED, maker_account.as_ref(), &nonce.to_le_bytes()], &rfq_venue::ID).0
}

/// A quote with the maker side's Ed25519 signature of [`Quote::message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedQuote {
    pub quote: Quote,
    /// The signing key: the maker account's owner or active delegate.
    pub signer: Pubkey,
    pub signature: [u8; 64],
}

/// Signs `quote` with `signer` (the maker account's owner or active delegate).
pub fn sign_quote(quote: Quote, signer: &Keypair) -> SignedQuote {
    let signature = signer.sign_message(&quote.message());
    SignedQuote { quote, signer: signer.pubkey(), signature: *signature.as_array() }
}

/// The native Ed25519 program instruction verifying `signed` (key, message and signature all
/// in its own data, as the venue requires).
pub fn ed25519_verify_instruction(signed: &SignedQuote) -> Instruction {
    solana_ed25519_program::new_ed25519_instruction_with_signature(
        &signed.quote.message(),
        &signed.signature,
        &signed.signer.to_bytes(),
    )
}

/// `fill_quote`: the taker account `taker` fills `lots` of `quote`, `taker_authority` (its
/// owner or delegate) signing and paying the quote record's rent. `health_accounts` must cover
/// both accounts after the fill (see `world::fill_health_accounts`). The instruction before it
/// in the transaction must be [`ed25519_verify_instruction`]: use [`fill_quote_instructions`].
pub fn fill_quote(
    keys: &MarketKeys,
    quote: &Quote,
    taker: &Pubkey,
    taker_authority: &Pubkey,
    lots: i64,
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    let accounts = rfq_venue::accounts::FillQuote {
        venue_authority: venue_authority(),
        group: keys.group,
        venue: sdk::venue_address(&keys.group, &rfq_venue::ID),
        market: keys.market,
        underlying: keys.underlying,
        oracle: keys.oracle,
        quote_bank: keys.quote_bank,
        maker: quote.maker,
        taker: *taker,
        taker_authority: *taker_authority,
        quote_record: quote_record_address(&quote.maker, quote.nonce),
        instructions: solana_sdk_ids::sysvar::instructions::ID,
        portfolio_margin_program: portfolio_margin::ID,
        system_program: anchor_lang::system_program::ID,
    };
    let mut metas = accounts.to_account_metas(None);
    metas.extend(health_accounts);
    Instruction { program_id: rfq_venue::ID, accounts: metas, data: rfq_venue::instruction::FillQuote { quote: *quote, lots }.data() }
}

/// The two instructions a taker sends, in order: the Ed25519 verification of the maker's
/// signature, then `fill_quote`. They carry the quote twice: a legacy transaction fits the
/// packet size only for small accounts with the taker paying the fees; otherwise send a
/// version-0 transaction with the non-signing accounts in a lookup table.
pub fn fill_quote_instructions(
    keys: &MarketKeys,
    signed: &SignedQuote,
    taker: &Pubkey,
    taker_authority: &Pubkey,
    lots: i64,
    health_accounts: Vec<AccountMeta>,
) -> [Instruction; 2] {
    [ed25519_verify_instruction(signed), fill_quote(keys, &signed.quote, taker, taker_authority, lots, health_accounts)]
}

/// `cancel_quote`, signed by `authority` (the maker account's owner or active delegate).
pub fn cancel_quote(quote: &Quote, authority: &Pubkey) -> Instruction {
    let accounts = rfq_venue::accounts::CancelQuote {
        maker: quote.maker,
        authority: *authority,
        quote_record: quote_record_address(&quote.maker, quote.nonce),
        system_program: anchor_lang::system_program::ID,
    };
    Instruction { program_id: rfq_venue::ID, accounts: accounts.to_account_metas(None), data: rfq_venue::instruction::CancelQuote { quote: *quote }.data() }
}

/// `close_quote_record` of `(maker account, nonce)`, returning the rent to `payer` (the record's
/// payer).
pub fn close_quote_record(maker_account: &Pubkey, nonce: u64, payer: &Pubkey) -> Instruction {
    let accounts = rfq_venue::accounts::CloseQuoteRecord { quote_record: quote_record_address(maker_account, nonce), payer: *payer };
    Instruction { program_id: rfq_venue::ID, accounts: accounts.to_account_metas(None), data: rfq_venue::instruction::CloseQuoteRecord {}.data() }
}

/// The RFQ venue's entry point for the embedded bank (Anchor's `entry` ties the accounts slice
/// and the infos to one lifetime).
pub fn rfq_venue_entry(
    program_id: &Pubkey,
    accounts: &[anchor_lang::prelude::AccountInfo],
    data: &[u8],
) -> anchor_lang::solana_program::entrypoint::ProgramResult {
    // SAFETY: the accounts outlive the call; only the slice's lifetime is widened.
    let accounts: &[anchor_lang::prelude::AccountInfo] = unsafe { core::mem::transmute(accounts) };
    rfq_venue::entry(program_id, accounts, data)
}

/// Loads the RFQ venue into an embedded bank being configured (see
/// [`crate::local_bank::LocalBank::start_with`]).
#[allow(deprecated)] // solana-program-test 3.1 marks its API unstable; it is the in-process bank.
pub fn add_rfq_venue(test: &mut solana_program_test::ProgramTest) {
    test.add_program("rfq_venue", rfq_venue::ID, solana_program_test::processor!(rfq_venue_entry));
}

//! The RFQ venue (`rfq-venue`): a maker's Ed25519-signed quote filled by a signing taker,
//! submitted to portfolio-margin's `venue_trade`. Every attack is performed and must fail with
//! its own error, leaving both margin accounts, the market and the quote record unchanged.
//!
//! `LocalBank::send` prepends a compute-budget instruction: the first instruction a test passes
//! is instruction 1 of the transaction.

#![allow(deprecated)] // solana-program-test 3.1 marks its API unstable.

use anchor_lang::prelude::{AccountMeta, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use pm_client::world::{fill_health_accounts, model_price_per_lot, post_price, setup_derivatives, Derivatives};
use pm_client::local_bank::LocalBank;
use pm_client::rfq::{self, Quote, QuoteSide, SignedQuote};
use pm_client::sdk::{self, MarketKeys};
use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::VenueLimits;
use portfolio_margin::state::{MarginAccount, Market};
use rfq_venue::{QuoteRecord, RfqError};
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_program_test::BanksClientError;
use solana_signer::Signer;
use solana_transaction_error::TransactionError;

const USDC: u64 = 1_000_000;
/// $150 per SOL is 150,000 quote native units per lot (0.001 SOL).
const PERP_PRICE: i64 = 150_000;
const OPEN: VenueLimits = VenueLimits { max_fill_lots: 1_000_000, expiry_ts: i64::MAX };

struct Rfq {
    bank: LocalBank,
    market: DemoMarket,
    derivatives: Derivatives,
    maker: Trader,
    taker: Trader,
}

/// The demo group with its derivatives, the venue registered, and a maker and a taker with
/// 10,000 USDC each that approved the venue.
async fn setup() -> Rfq {
    let mut bank = LocalBank::start_with(add_rfq_venue).await;
    let market = setup_market(&mut bank).await.unwrap();
    let derivatives = setup_derivatives(&mut bank, &market).await.unwrap();
    let payer = bank.payer().pubkey();
    bank.send(&[sdk::register_venue(&market.group, &market.admin.pubkey(), &payer, &rfq_venue::ID)], &[]).await.unwrap();
    let maker = approving_trader(&mut bank, &market).await;
    let taker = approving_trader(&mut bank, &market).await;
    Rfq { bank, market, derivatives, maker, taker }
}

/// A trader with 10,000 USDC deposited who approved the venue without limits.
async fn approving_trader(bank: &mut LocalBank, market: &DemoMarket) -> Trader {
    let trader = new_trader(bank, market, 10_000 * USDC, 0).await.unwrap();
    let owner = trader.owner.insecure_clone();
    bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), 10_000 * USDC)], &[&owner]).await.unwrap();
    approve(bank, &trader, OPEN).await;
    trader
}

async fn approve(bank: &mut LocalBank, trader: &Trader, limits: VenueLimits) {
    bank.send(&[sdk::approve_venue(&trader.account, &trader.owner.pubkey(), &rfq_venue::ID, limits)], &[&trader.owner]).await.unwrap();
}

/// A quote of `maker` selling up to `max_lots` in `keys`' market at `price`, nonce 1, any taker.
fn sell_quote(keys: &MarketKeys, maker: &Pubkey, max_lots: i64, price: i64, expiry_ts: i64) -> Quote {
    Quote {
        group: keys.group,
        market: keys.market,
        maker: *maker,
        taker: Pubkey::default(),
        side: QuoteSide::MakerSells,
        max_lots,
        price_per_lot_native: price,
        expiry_ts,
        nonce: 1,
    }
}

/// The Ed25519 verification and `fill_quote` for `taker_account` (authority `taker_authority`).
async fn fill_ixs(
    bank: &mut LocalBank,
    market: &DemoMarket,
    keys: &MarketKeys,
    signed: &SignedQuote,
    taker_account: &Pubkey,
    taker_authority: &Pubkey,
    lots: i64,
) -> Vec<Instruction> {
    let metas = fill_health_accounts(bank, market, &[signed.quote.maker, *taker_account], &keys.market).await.unwrap();
    rfq::fill_quote_instructions(keys, signed, taker_account, taker_authority, lots, metas).to_vec()
}

/// `taker` fills `lots` of `signed`, its owner signing.
async fn fill(bank: &mut LocalBank, market: &DemoMarket, keys: &MarketKeys, signed: &SignedQuote, taker: &Trader, lots: i64) -> Logged {
    let ixs = fill_ixs(bank, market, keys, signed, &taker.account, &taker.owner.pubkey(), lots).await;
    bank.send_logged(&ixs, &[&taker.owner]).await
}

/// What a failed attack must leave unchanged: both margin accounts, the market, the record.
fn watched(quote: &Quote, taker: &Pubkey) -> Vec<Pubkey> {
    vec![quote.maker, *taker, quote.market, rfq::quote_record_address(&quote.maker, quote.nonce)]
}

fn position(account: &MarginAccount, market: &Pubkey) -> (i64, i64) {
    account.position_index(market).map(|i| (account.positions[i].base_lots, account.positions[i].quote_native)).unwrap_or((0, 0))
}

fn quote_balance(account: &MarginAccount, quote_bank: &Pubkey) -> i64 {
    account.balance_index(quote_bank).map(|i| account.balances[i].balance_native).unwrap_or(0)
}

async fn record_rent(bank: &mut LocalBank) -> u64 {
    bank.context.banks_client.get_rent().await.unwrap().minimum_balance(QuoteRecord::SIZE)
}

/// The data of one Ed25519 program instruction verifying `entries` (key, signature, message),
/// laid out after the offsets with each `*_instruction_index` set to `indices`.
fn ed25519_data(entries: &[(Pubkey, [u8; 64], Vec<u8>)], indices: u16) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut offsets = Vec::new();
    let start = 2 + 14 * entries.len();
    for (key, signature, message) in entries {
        let key_offset = start + payload.len();
        payload.extend_from_slice(key.as_ref());
        let signature_offset = start + payload.len();
        payload.extend_from_slice(signature);
        let message_offset = start + payload.len();
        payload.extend_from_slice(message);
        for field in [signature_offset as u16, indices, key_offset as u16, indices, message_offset as u16, message.len() as u16, indices] {
            offsets.extend_from_slice(&field.to_le_bytes());
        }
    }
    let mut data = vec![entries.len() as u8, 0];
    data.extend(offsets);
    data.extend(payload);
    data
}

fn ed25519_ix(data: Vec<u8>) -> Instruction {
    Instruction { program_id: rfq_venue::ED25519_PROGRAM_ID, accounts: vec![], data }
}

#[tokio::test]
async fn a_signed_quote_fills_in_parts_up_to_its_max_lots_at_the_makers_price() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let call = derivatives.call.keys;
    let price = model_price_per_lot(&mut bank, &call.market).await;
    let expiry_ts = bank.now().await + 600;
    // The maker offers 10 calls (10,000 lots) at the model price; the taker buys 4 then 6.
    let signed = rfq::sign_quote(sell_quote(&call, &maker.account, 10_000, price, expiry_ts), &maker.owner);
    let record = rfq::quote_record_address(&maker.account, 1);
    let rent = record_rent(&mut bank).await;
    let taker_lamports = bank.lamports(&taker.owner.pubkey()).await;
    let market_before: Market = bank.load(&call.market).await;

    let (result, _) = fill(&mut bank, &market, &call, &signed, &taker, 4_000).await;
    result.unwrap();
    // The taker authority paid the record's rent (fees are paid by the bank's payer).
    assert_eq!(bank.lamports(&taker.owner.pubkey()).await, taker_lamports - rent);
    let state: QuoteRecord = bank.load_anchor(&record).await;
    assert_eq!((state.filled_lots, state.max_lots, state.quote_hash), (4_000, 10_000, signed.quote.hash()));
    assert_eq!((state.payer, state.maker, state.nonce, state.cancelled), (taker.owner.pubkey(), maker.account, 1, false));

    let (result, _) = fill(&mut bank, &market, &call, &signed, &taker, 6_000).await;
    result.unwrap();
    assert_eq!(bank.lamports(&taker.owner.pubkey()).await, taker_lamports - rent);
    let state: QuoteRecord = bank.load_anchor(&record).await;
    assert_eq!(state.filled_lots, 10_000);

    // Positions and the premium moved exactly: 10,000 lots at the quote's price.
    let m: MarginAccount = bank.load(&maker.account).await;
    let t: MarginAccount = bank.load(&taker.account).await;
    assert_eq!(position(&m, &call.market).0, -10_000);
    assert_eq!(position(&t, &call.market).0, 10_000);
    assert_eq!(quote_balance(&m, &call.quote_bank), 10_000 * USDC as i64 + 10_000 * price);
    assert_eq!(quote_balance(&t, &call.quote_bank), 10_000 * USDC as i64 - 10_000 * price);
    let market_after: Market = bank.load(&call.market).await;
    assert_eq!(market_after.open_interest_lots, market_before.open_interest_lots + 10_000);

    // The quote is used up: replaying the first fill, or one more lot, is refused.
    let keys = watched(&signed.quote, &taker.account);
    let before = snapshot(&mut bank, &keys).await;
    assert_venue_error(&fill(&mut bank, &market, &call, &signed, &taker, 4_000).await, RfqError::QuoteOverfilled);
    assert_venue_error(&fill(&mut bank, &market, &call, &signed, &taker, 1).await, RfqError::QuoteOverfilled);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

#[tokio::test]
async fn a_maker_buy_quote_on_the_perp_moves_positions_and_cash_exactly_even_if_the_record_was_prefunded() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let expiry_ts = bank.now().await + 600;
    let quote = Quote { side: QuoteSide::MakerBuys, ..sell_quote(&perp, &maker.account, 2_000, PERP_PRICE - 500, expiry_ts) };
    let signed = rfq::sign_quote(quote, &maker.owner);
    // Someone sent lamports to the record's address beforehand: the fill still creates it,
    // the taker topping it up to the rent.
    let record = rfq::quote_record_address(&maker.account, 1);
    bank.airdrop(&record, 1_000_000).await.unwrap();
    let rent = record_rent(&mut bank).await;
    let taker_lamports = bank.lamports(&taker.owner.pubkey()).await;
    let (result, _) = fill(&mut bank, &market, &perp, &signed, &taker, 1_500).await;
    result.unwrap();
    assert_eq!(bank.lamports(&record).await, rent);
    assert_eq!(bank.lamports(&taker.owner.pubkey()).await, taker_lamports - (rent - 1_000_000));
    let state: QuoteRecord = bank.load_anchor(&record).await;
    assert_eq!(state.filled_lots, 1_500);
    // The maker bought 1.5 SOL-PERP at $149.50 from the taker: cost in the positions' cash,
    // quote balances untouched until the positions close.
    let m: MarginAccount = bank.load(&maker.account).await;
    let t: MarginAccount = bank.load(&taker.account).await;
    assert_eq!(position(&m, &perp.market), (1_500, -1_500 * (PERP_PRICE - 500)));
    assert_eq!(position(&t, &perp.market), (-1_500, 1_500 * (PERP_PRICE - 500)));
    assert_eq!(quote_balance(&m, &perp.quote_bank), 10_000 * USDC as i64);
    assert_eq!(quote_balance(&t, &perp.quote_bank), 10_000 * USDC as i64);
}

#[tokio::test]
async fn a_stranger_cannot_fill_against_an_approving_account_without_its_signed_quote() {
    let Rfq { mut bank, market, derivatives, maker: victim, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let stranger = approving_trader(&mut bank, &market).await;
    let expiry_ts = bank.now().await + 600;
    // The old attack: the victim "sells" 100 SOL-PERP to the stranger at the band's lower edge.
    let forged = sell_quote(&perp, &victim.account, 100_000, PERP_PRICE * 98 / 100, expiry_ts);
    let keys = watched(&forged, &stranger.account);
    let before = snapshot(&mut bank, &keys).await;

    // 1. No Ed25519 instruction at all.
    let metas = fill_health_accounts(&mut bank, &market, &[victim.account, stranger.account], &perp.market).await.unwrap();
    let bare = rfq::fill_quote(&perp, &forged, &stranger.account, &stranger.owner.pubkey(), 100_000, metas.clone());
    assert_venue_error(&bank.send_logged(&[bare], &[&stranger.owner]).await, RfqError::MissingEd25519Instruction);

    // 2. The forged quote signed (validly) by the stranger's own key.
    let self_signed = rfq::sign_quote(forged, &stranger.owner);
    assert_venue_error(&fill(&mut bank, &market, &perp, &self_signed, &stranger, 100_000).await, RfqError::QuoteSignerNotAuthorized);

    // 3. A real quote of the victim, reserved for another taker, intercepted by the stranger.
    let reserved = rfq::sign_quote(Quote { taker: taker.account, price_per_lot_native: PERP_PRICE, ..forged }, &victim.owner);
    assert_venue_error(&fill(&mut bank, &market, &perp, &reserved, &stranger, 100_000).await, RfqError::QuoteTakerMismatch);

    // 4. The victim as taker of the stranger's own quote, the stranger signing for it.
    let stranger_quote = rfq::sign_quote(Quote { side: QuoteSide::MakerBuys, ..sell_quote(&perp, &stranger.account, 100_000, PERP_PRICE * 98 / 100, expiry_ts) }, &stranger.owner);
    let ixs = fill_ixs(&mut bank, &market, &perp, &stranger_quote, &victim.account, &stranger.owner.pubkey(), 100_000).await;
    assert_venue_error(&bank.send_logged(&ixs, &[&stranger.owner]).await, RfqError::TakerNotAuthorized);

    // 5. Around the venue: portfolio-margin's venue_trade directly, the stranger posing as the
    //    venue authority and naming the victim's owner as consent.
    let direct = sdk::venue_trade(
        &perp,
        &sdk::venue_address(&market.group, &rfq_venue::ID),
        &stranger.owner.pubkey(),
        &stranger.account,
        &victim.account,
        100_000,
        PERP_PRICE * 98 / 100,
        (stranger.owner.pubkey(), victim.owner.pubkey()),
        metas,
    );
    assert_margin_error(bank.send(&[direct], &[&stranger.owner]).await, MarginError::VenueAuthorityMismatch);

    assert_eq!(before, snapshot(&mut bank, &keys).await);
    let stranger_record = rfq::quote_record_address(&stranger.account, 1);
    assert_eq!(bank.account_data(&stranger_record).await, None);
}

#[tokio::test]
async fn a_quote_signed_by_neither_owner_nor_delegate_is_refused_and_a_delegates_quote_fills() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let delegate = Keypair::new();
    bank.send(&[sdk::set_delegate(&maker.account, &maker.owner.pubkey(), &delegate.pubkey(), delegate_limits())], &[&maker.owner]).await.unwrap();
    let expiry_ts = bank.now().await + 600;
    let quote = sell_quote(&perp, &maker.account, 1_000, PERP_PRICE, expiry_ts);
    let keys = watched(&quote, &taker.account);
    let before = snapshot(&mut bank, &keys).await;

    // Signed by an unrelated key, then by the owner of another account (the taker's).
    for key in [Keypair::new(), taker.owner.insecure_clone()] {
        let signed = rfq::sign_quote(quote, &key);
        assert_venue_error(&fill(&mut bank, &market, &perp, &signed, &taker, 1_000).await, RfqError::QuoteSignerNotAuthorized);
    }
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // The maker account's delegate may sign quotes (within its limits, which the core applies).
    let signed = rfq::sign_quote(quote, &delegate);
    let (result, _) = fill(&mut bank, &market, &perp, &signed, &taker, 1_000).await;
    result.unwrap();
    let m: MarginAccount = bank.load(&maker.account).await;
    assert_eq!(position(&m, &perp.market), (-1_000, 1_000 * PERP_PRICE));

    // Once the delegate is removed, its quotes are refused.
    bank.send(&[sdk::set_delegate(&maker.account, &maker.owner.pubkey(), &Pubkey::default(), delegate_limits())], &[&maker.owner]).await.unwrap();
    let next = rfq::sign_quote(Quote { nonce: 2, ..quote }, &delegate);
    let keys = watched(&next.quote, &taker.account);
    let before = snapshot(&mut bank, &keys).await;
    assert_venue_error(&fill(&mut bank, &market, &perp, &next, &taker, 1_000).await, RfqError::QuoteSignerNotAuthorized);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

#[tokio::test]
async fn a_quote_altered_after_signing_is_refused() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let put = derivatives.put.keys;
    let expiry_ts = bank.now().await + 600;
    let signed = rfq::sign_quote(sell_quote(&perp, &maker.account, 1_000, PERP_PRICE, expiry_ts), &maker.owner);
    let q = signed.quote;
    let mut watched_keys = watched(&q, &taker.account);
    watched_keys.extend([put.market, rfq::quote_record_address(&maker.account, 2)]);
    let before = snapshot(&mut bank, &watched_keys).await;

    // Each field changed in the quote passed to fill_quote, the maker's real signature of the
    // original in the Ed25519 instruction.
    let altered = [
        (perp, Quote { price_per_lot_native: PERP_PRICE * 98 / 100, ..q }),
        (perp, Quote { max_lots: 100_000, ..q }),
        (perp, Quote { side: QuoteSide::MakerBuys, ..q }),
        (perp, Quote { expiry_ts: expiry_ts + 86_400, ..q }),
        (perp, Quote { nonce: 2, ..q }),
        (put, Quote { market: put.market, price_per_lot_native: model_price_per_lot(&mut bank, &put.market).await, ..q }),
    ];
    for (keys, quote) in altered {
        let metas = fill_health_accounts(&mut bank, &market, &[maker.account, taker.account], &keys.market).await.unwrap();
        let ixs = [rfq::ed25519_verify_instruction(&signed), rfq::fill_quote(&keys, &quote, &taker.account, &taker.owner.pubkey(), 1_000, metas)];
        assert_venue_error(&bank.send_logged(&ixs, &[&taker.owner]).await, RfqError::QuoteSignatureMismatch);
    }
    // The signed quote itself, with another market's accounts.
    let ixs = fill_ixs(&mut bank, &market, &put, &signed, &taker.account, &taker.owner.pubkey(), 1_000).await;
    assert_venue_error(&bank.send_logged(&ixs, &[&taker.owner]).await, RfqError::QuoteAccountMismatch);
    // The altered quote in the Ed25519 instruction too, with the original signature: the
    // runtime's signature check fails the transaction at that instruction (instruction 1).
    let cheaper = SignedQuote { quote: Quote { price_per_lot_native: PERP_PRICE * 98 / 100, ..q }, ..signed };
    let (result, logs) = fill(&mut bank, &market, &perp, &cheaper, &taker, 1_000).await;
    match result {
        Err(BanksClientError::TransactionError(TransactionError::InstructionError(1, InstructionError::Custom(code)))) => {
            assert_eq!(code, 2, "PrecompileError::InvalidSignature")
        }
        other => panic!("expected the Ed25519 program to refuse the signature, got {other:?}\n{logs:#?}"),
    }
    assert_eq!(before, snapshot(&mut bank, &watched_keys).await);
}

#[tokio::test]
async fn expired_quotes_and_expired_or_exceeded_venue_approvals_are_refused() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let now = bank.now().await;
    // The taker allows fills of at most 1,000 lots; the maker's approval ends in 100 s.
    approve(&mut bank, &taker, VenueLimits { max_fill_lots: 1_000, expiry_ts: i64::MAX }).await;
    approve(&mut bank, &maker, VenueLimits { max_fill_lots: 1_000_000, expiry_ts: now + 100 }).await;
    let short = rfq::sign_quote(sell_quote(&perp, &maker.account, 5_000, PERP_PRICE, now + 30), &maker.owner);
    let long = rfq::sign_quote(Quote { nonce: 2, expiry_ts: now + 3_600, ..short.quote }, &maker.owner);
    let mut keys = watched(&short.quote, &taker.account);
    keys.push(rfq::quote_record_address(&maker.account, 2));
    let before = snapshot(&mut bank, &keys).await;

    // Larger than the taker's largest venue fill.
    assert_core_error_via_venue(&fill(&mut bank, &market, &perp, &short, &taker, 1_001).await, MarginError::VenueFillTooLarge);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    let (result, _) = fill(&mut bank, &market, &perp, &short, &taker, 1_000).await;
    result.unwrap();

    // 60 s later the short quote has expired; the maker's approval has not.
    bank.advance_clock(60).await;
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 150.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    let before = snapshot(&mut bank, &keys).await;
    assert_venue_error(&fill(&mut bank, &market, &perp, &short, &taker, 1_000).await, RfqError::QuoteExpired);
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // 60 s more: the maker's approval of the venue has expired, the long quote has not.
    bank.advance_clock(60).await;
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 150.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    let before = snapshot(&mut bank, &keys).await;
    assert_core_error_via_venue(&fill(&mut bank, &market, &perp, &long, &taker, 1_000).await, MarginError::VenueApprovalExpired);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

#[tokio::test]
async fn an_ed25519_instruction_reading_another_instructions_data_is_refused() {
    let Rfq { mut bank, market, derivatives, maker: victim, taker: _ } = setup().await;
    let perp = derivatives.perp.keys;
    let stranger = approving_trader(&mut bank, &market).await;
    let expiry_ts = bank.now().await + 600;
    let forged = sell_quote(&perp, &victim.account, 100_000, PERP_PRICE * 98 / 100, expiry_ts);
    let message = forged.message();
    let own = rfq::sign_quote(forged, &stranger.owner);
    let metas = fill_health_accounts(&mut bank, &market, &[victim.account, stranger.account], &perp.market).await.unwrap();
    let fill_ix = rfq::fill_quote(&perp, &forged, &stranger.account, &stranger.owner.pubkey(), 100_000, metas);
    let keys = watched(&forged, &stranger.account);
    let before = snapshot(&mut bank, &keys).await;

    // Instruction 1 verifies the stranger's own signature of the forged quote. Instruction 2,
    // right before the fill, points every offset at instruction 1 (which the runtime then
    // verifies), while its own data holds the victim owner's key and the forged quote at the
    // same offsets: a venue reading those bytes would believe the victim signed.
    let genuine = rfq::ed25519_verify_instruction(&own);
    let spoof = ed25519_data(&[(victim.owner.pubkey(), [0; 64], message.clone())], 1);
    assert_eq!(spoof.len(), genuine.data.len(), "same layout, same offsets");
    let ixs = [genuine, ed25519_ix(spoof), fill_ix.clone()];
    assert_venue_error(&bank.send_logged(&ixs, &[&stranger.owner]).await, RfqError::Ed25519DataNotInline);

    // Zero signatures: the runtime verifies nothing and accepts the instruction.
    let ixs = [ed25519_ix(vec![0, 0]), fill_ix.clone()];
    assert_venue_error(&bank.send_logged(&ixs, &[&stranger.owner]).await, RfqError::Ed25519SignatureCount);
    // Two signatures, both valid and inline: only one may stand for the maker.
    let other = rfq::sign_quote(Quote { nonce: 9, ..forged }, &stranger.owner);
    let two = ed25519_data(
        &[(stranger.owner.pubkey(), own.signature, message), (stranger.owner.pubkey(), other.signature, other.quote.message())],
        u16::MAX,
    );
    let ixs = [ed25519_ix(two), fill_ix];
    assert_venue_error(&bank.send_logged(&ixs, &[&stranger.owner]).await, RfqError::Ed25519SignatureCount);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
}

#[tokio::test]
async fn the_taker_must_sign_and_be_owner_or_delegate_of_the_taker_account() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let expiry_ts = bank.now().await + 600;
    let signed = rfq::sign_quote(sell_quote(&perp, &maker.account, 2_000, PERP_PRICE, expiry_ts), &maker.owner);
    let keys = watched(&signed.quote, &taker.account);
    let before = snapshot(&mut bank, &keys).await;

    // The taker's owner named but not signing.
    let mut ixs = fill_ixs(&mut bank, &market, &perp, &signed, &taker.account, &taker.owner.pubkey(), 1_000).await;
    let authority: &mut AccountMeta = ixs[1].accounts.iter_mut().find(|m| m.pubkey == taker.owner.pubkey()).unwrap();
    authority.is_signer = false;
    let outcome = bank.send_logged(&ixs, &[]).await;
    assert_eq!(custom_code(&outcome.0), Some(anchor_lang::error::ErrorCode::AccountNotSigner as u32), "{:?}", outcome.0);
    // A key that signs but neither owns nor is delegate of the taker account.
    let intruder = Keypair::new();
    bank.airdrop(&intruder.pubkey(), 1_000_000_000).await.unwrap();
    let ixs = fill_ixs(&mut bank, &market, &perp, &signed, &taker.account, &intruder.pubkey(), 1_000).await;
    assert_venue_error(&bank.send_logged(&ixs, &[&intruder]).await, RfqError::TakerNotAuthorized);
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // The taker account's delegate may fill for it, and pays the record's rent.
    let delegate = Keypair::new();
    bank.airdrop(&delegate.pubkey(), 1_000_000_000).await.unwrap();
    bank.send(&[sdk::set_delegate(&taker.account, &taker.owner.pubkey(), &delegate.pubkey(), delegate_limits())], &[&taker.owner]).await.unwrap();
    let ixs = fill_ixs(&mut bank, &market, &perp, &signed, &taker.account, &delegate.pubkey(), 1_000).await;
    bank.send(&ixs, &[&delegate]).await.unwrap();
    let t: MarginAccount = bank.load(&taker.account).await;
    assert_eq!(position(&t, &perp.market), (1_000, -1_000 * PERP_PRICE));
    let state: QuoteRecord = bank.load_anchor(&rfq::quote_record_address(&maker.account, 1)).await;
    assert_eq!(state.payer, delegate.pubkey());
}

#[tokio::test]
async fn a_nonce_belongs_to_one_quote_and_cancelled_or_expired_quotes_cannot_be_filled() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let expiry_ts = bank.now().await + 600;
    let first = rfq::sign_quote(sell_quote(&perp, &maker.account, 5_000, PERP_PRICE, expiry_ts), &maker.owner);
    let (result, _) = fill(&mut bank, &market, &perp, &first, &taker, 1_000).await;
    result.unwrap();
    let keys = watched(&first.quote, &taker.account);
    let before = snapshot(&mut bank, &keys).await;

    // Another quote under the same nonce (the maker erred, or an old quote resurfaces).
    let second = rfq::sign_quote(Quote { price_per_lot_native: PERP_PRICE - 1_000, ..first.quote }, &maker.owner);
    assert_venue_error(&fill(&mut bank, &market, &perp, &second, &taker, 1_000).await, RfqError::QuoteNonceReused);
    // Only the maker account's owner or delegate can cancel.
    let cancel = |authority: &Pubkey| rfq::cancel_quote(&first.quote, authority);
    let outcome = bank.send_logged(&[cancel(&taker.owner.pubkey())], &[&taker.owner]).await;
    assert_venue_error(&outcome, RfqError::MakerNotAuthorized);
    assert_eq!(before, snapshot(&mut bank, &keys).await);

    // Cancelled after a partial fill: the rest cannot be filled.
    bank.send(&[cancel(&maker.owner.pubkey())], &[&maker.owner]).await.unwrap();
    let before = snapshot(&mut bank, &keys).await;
    assert_venue_error(&fill(&mut bank, &market, &perp, &first, &taker, 1_000).await, RfqError::QuoteCancelled);
    // Cancelled before any fill (the maker pays the record).
    let unfilled = rfq::sign_quote(Quote { nonce: 2, ..first.quote }, &maker.owner);
    bank.send(&[rfq::cancel_quote(&unfilled.quote, &maker.owner.pubkey())], &[&maker.owner]).await.unwrap();
    let unfilled_keys = watched(&unfilled.quote, &taker.account);
    let unfilled_before = snapshot(&mut bank, &unfilled_keys).await;
    assert_venue_error(&fill(&mut bank, &market, &perp, &unfilled, &taker, 1_000).await, RfqError::QuoteCancelled);
    assert_eq!(unfilled_before, snapshot(&mut bank, &unfilled_keys).await);

    // The record closes only once the quote has expired, and only to its payer.
    let record = rfq::quote_record_address(&maker.account, 1);
    let close = rfq::close_quote_record(&maker.account, 1, &taker.owner.pubkey());
    assert_venue_error(&bank.send_logged(std::slice::from_ref(&close), &[]).await, RfqError::QuoteRecordNotExpired);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    bank.advance_clock(600).await;
    let wrong = rfq::close_quote_record(&maker.account, 1, &maker.owner.pubkey());
    assert_anchor_error(bank.send(&[wrong], &[]).await, anchor_lang::error::ErrorCode::ConstraintHasOne);
    let record_lamports = bank.lamports(&record).await;
    let taker_lamports = bank.lamports(&taker.owner.pubkey()).await;
    bank.send(&[close], &[]).await.unwrap();
    assert_eq!(bank.account_data(&record).await, None);
    assert_eq!(bank.lamports(&taker.owner.pubkey()).await, taker_lamports + record_lamports);
    // With the record gone the expired quote is still refused.
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 150.0).await;
    post_price(&mut bank, &market.usdc.oracle, market.usdc_feed, 1.0).await;
    assert_venue_error(&fill(&mut bank, &market, &perp, &first, &taker, 1_000).await, RfqError::QuoteExpired);
}

/// Most bytes a serialised transaction may have (a network packet).
const PACKET_DATA_SIZE: usize = 1_232;

#[tokio::test]
async fn a_fill_fits_in_one_transaction() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let call = derivatives.call.keys;
    let price = model_price_per_lot(&mut bank, &call.market).await;
    let expiry_ts = bank.now().await + 600;
    let signed = rfq::sign_quote(sell_quote(&call, &maker.account, 10_000, price, expiry_ts), &maker.owner);
    let ixs = fill_ixs(&mut bank, &market, &call, &signed, &taker.account, &taker.owner.pubkey(), 1_000).await;
    // The Ed25519 data and the fill's quote argument carry the quote twice: a legacy
    // transaction only fits when the taker also pays the fees (one signature).
    let blockhash = solana_transaction::Hash::default();
    let legacy = solana_transaction::Transaction::new_signed_with_payer(&ixs, Some(&taker.owner.pubkey()), &[&taker.owner], blockhash);
    let legacy_size = bincode::serialize(&legacy).unwrap().len();
    assert!(legacy_size <= PACKET_DATA_SIZE, "legacy fill is {legacy_size} bytes");
    // A version-0 transaction with the non-signing accounts in a lookup table leaves room for
    // a separate fee payer and more health accounts; it goes through.
    let programs: Vec<Pubkey> = ixs.iter().map(|ix| ix.program_id).collect();
    let mut addresses: Vec<Pubkey> = Vec::new();
    for meta in ixs.iter().flat_map(|ix| ix.accounts.iter()) {
        if !meta.is_signer && !programs.contains(&meta.pubkey) && !addresses.contains(&meta.pubkey) {
            addresses.push(meta.pubkey);
        }
    }
    let payer = bank.payer();
    let lookup = solana_message::AddressLookupTableAccount { key: Pubkey::new_unique(), addresses };
    let message = solana_message::v0::Message::try_compile(&payer.pubkey(), &ixs, &[lookup], blockhash).unwrap();
    let v0 = solana_transaction::versioned::VersionedTransaction::try_new(solana_message::VersionedMessage::V0(message), &[&payer, &taker.owner]).unwrap();
    let v0_size = bincode::serialize(&v0).unwrap().len();
    assert!(v0_size <= PACKET_DATA_SIZE - 300, "v0 fill is {v0_size} bytes");
    bank.send_v0(&ixs, &[&taker.owner]).await.unwrap();
    let t: MarginAccount = bank.load(&taker.account).await;
    assert_eq!(position(&t, &call.market).0, 1_000);
}

/// Dust through a venue: a fill that would leave the taker (and the maker) with a position
/// under the perp's 10-lot minimum is refused by portfolio-margin with `PositionBelowMinimum`,
/// and nothing changes (the quote record included); a fill of the minimum goes through.
#[tokio::test]
async fn a_venue_fill_may_not_leave_a_position_under_the_minimum() {
    let Rfq { mut bank, market, derivatives, maker, taker } = setup().await;
    let perp = derivatives.perp.keys;
    let expiry_ts = bank.now().await + 600;
    let signed = rfq::sign_quote(sell_quote(&perp, &maker.account, 100, PERP_PRICE, expiry_ts), &maker.owner);
    let keys = watched(&signed.quote, &taker.account);
    let before = snapshot(&mut bank, &keys).await;
    let outcome = fill(&mut bank, &market, &perp, &signed, &taker, pm_client::world::MIN_POSITION_LOTS - 1).await;
    assert_core_error_via_venue(&outcome, MarginError::PositionBelowMinimum);
    assert_eq!(before, snapshot(&mut bank, &keys).await);
    let (result, _) = fill(&mut bank, &market, &perp, &signed, &taker, pm_client::world::MIN_POSITION_LOTS).await;
    result.unwrap();
    let state: MarginAccount = bank.load(&taker.account).await;
    assert_eq!(position(&state, &perp.market).0, pm_client::world::MIN_POSITION_LOTS);
}

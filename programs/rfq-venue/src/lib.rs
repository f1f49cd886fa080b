//! # rfq-venue
//!
//! A request-for-quote venue for portfolio-margin: a maker signs a firm [`Quote`] off-chain, a
//! taker fills it on-chain, and the venue submits the fill to portfolio-margin's `venue_trade`
//! by CPI, signing with its `["venue-authority"]` PDA.
//!
//! portfolio-margin trusts a registered venue to have verified, for this very fill, the consent
//! of each side, and only checks that the key the venue names is the account's owner or active
//! delegate. A venue that submits fills without proving consent lets any stranger who approved
//! the venue for his own account trade against every other approving account at the edge of
//! the price band, with no signature of the victim. This program is meant to be copied: every
//! check below is needed, and none of them may be dropped.
//!
//! ## Flow
//!
//! 1. The taker asks for a price. The maker answers with a [`Quote`] (group, market, maker
//!    margin account, optional taker, side, max lots, price, expiry, nonce) and signs
//!    [`Quote::message`] with the Ed25519 key of the maker account's owner or active delegate.
//!    The message starts with [`QUOTE_DOMAIN`] and this program's id, so the signature cannot
//!    be taken for a transaction, for another message format, or for another deployment.
//! 2. The taker sends one transaction, signed by the taker account's owner or active delegate:
//!    an instruction of the native Ed25519 program verifying `(maker key, message, signature)`,
//!    immediately followed by [`rfq_venue::fill_quote`]`(quote, lots)`. If the signature is
//!    wrong the runtime fails the whole transaction at the Ed25519 instruction.
//! 3. `fill_quote` checks what the runtime cannot (below), records the fill under the maker's
//!    nonce, and calls `venue_trade` at the quote's price, naming the verified maker key as the
//!    maker side's consent and the taker signer as the taker side's.
//!
//! ## Checks in `fill_quote`, and why
//!
//! - `lots > 0` ([`RfqError::InvalidFillLots`]): the fill record only grows.
//! - The quote's group, market and maker account are the accounts passed
//!   ([`RfqError::QuoteAccountMismatch`]), and its taker, when set, is the taker account
//!   ([`RfqError::QuoteTakerMismatch`]): otherwise a quote for one market or account could be
//!   filled on another.
//! - The quote has not expired ([`RfqError::QuoteExpired`]): a maker's price is only good for
//!   the time it chose.
//! - The taker authority signs the transaction (Anchor `Signer`) and is the taker account's
//!   owner or active delegate ([`RfqError::TakerNotAuthorized`]): the taker side's consent is
//!   its signature on this transaction.
//! - The instruction immediately before is the Ed25519 program's
//!   ([`RfqError::MissingEd25519Instruction`]), read from the instructions sysvar (Anchor checks
//!   its address): the runtime has then verified that signature.
//! - It verifies exactly one signature ([`RfqError::Ed25519SignatureCount`]) and its
//!   signature, key and message all lie in its own data (every `*_instruction_index` is
//!   `u16::MAX`, [`RfqError::Ed25519DataNotInline`]). The runtime verifies whatever bytes the
//!   offsets designate; if they pointed into another instruction, the bytes this program reads
//!   at the same offsets would not be the ones verified, and an attacker could place the
//!   victim's key and a forged quote there while having the runtime check his own signature.
//! - The signed message equals [`Quote::message`] of the quote passed, byte for byte
//!   ([`RfqError::QuoteSignatureMismatch`]): the taker cannot change the price, size, side,
//!   market, expiry or nonce of what the maker signed.
//! - The signing key is the maker account's owner or active delegate
//!   ([`RfqError::QuoteSignerNotAuthorized`]), read from the maker `MarginAccount` (Anchor checks
//!   it is owned by portfolio-margin and has its discriminator): anyone can sign a quote, only
//!   these keys speak for the account.
//! - Replay: the record `["quote", maker account, nonce]` holds the hash of the first quote
//!   filled under that nonce and the lots filled so far. A different quote under the same nonce
//!   ([`RfqError::QuoteNonceReused`]), more lots in total than `max_lots`
//!   ([`RfqError::QuoteOverfilled`]) and a quote the maker cancelled ([`RfqError::QuoteCancelled`])
//!   are refused. Partial fills are allowed. The taker authority pays the record's rent, which
//!   [`rfq_venue::close_quote_record`] returns to it once the quote has expired.
//!
//! portfolio-margin then checks the venue registration, both accounts' approval of this venue
//! (expiry, largest fill), both consent keys again, a delegate side's limits (price band,
//! slippage budget, counterparty), the market's price band and both accounts' health.
//!
//! Makers must use a fresh nonce for every quote they sign. The maker can withdraw a quote
//! before it expires with [`rfq_venue::cancel_quote`].

use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::program::invoke_signed;
use anchor_lang::{InstructionData, ToAccountMetas};
use portfolio_margin::state::{MarginAccount, VENUE_AUTHORITY_SEED};
use solana_instructions_sysvar::{load_current_index_checked, load_instruction_at_checked};

declare_id!("7uGTGLJbfZzrpxor8wNqG8haiU3BvzRPTs4n5L8yZd6H");

/// Prefix of every signed quote message (followed by this program's id and the quote).
pub const QUOTE_DOMAIN: &[u8] = b"portfolio-margin rfq quote v1";
/// Seed prefix of quote records: `["quote", maker margin account, nonce (u64 LE)]`.
pub const QUOTE_RECORD_SEED: &[u8] = b"quote";
/// The native Ed25519 signature-verification program.
pub const ED25519_PROGRAM_ID: Pubkey = solana_sdk_ids::ed25519_program::ID;

/// Layout of an Ed25519 program instruction: `[count u8, padding u8]`, then one 14-byte
/// offsets record per signature (seven little-endian u16: signature offset, signature
/// instruction index, public key offset, public key instruction index, message offset, message
/// size, message instruction index). An instruction index of `u16::MAX` means "this
/// instruction's data".
const ED25519_OFFSETS_START: usize = 2;
const ED25519_OFFSETS_SIZE: usize = 14;
const INLINE: u16 = u16::MAX;

/// Which side of the trade the maker takes.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteSide {
    /// The maker buys from the taker.
    MakerBuys,
    /// The maker sells to the taker.
    MakerSells,
}

/// A maker's firm quote. Borsh-serialised inside [`Quote::message`], which the maker account's
/// owner or active delegate signs with Ed25519.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The portfolio-margin group the fill happens in.
    pub group: Pubkey,
    /// The market (perp or option) of that group.
    pub market: Pubkey,
    /// The maker's margin account.
    pub maker: Pubkey,
    /// The only taker margin account that may fill the quote, or `Pubkey::default()` for any.
    pub taker: Pubkey,
    /// Whether the maker buys or sells.
    pub side: QuoteSide,
    /// The most lots all fills of this quote may add up to.
    pub max_lots: i64,
    /// Price per lot, quote-token native units; every fill of the quote is at this price.
    pub price_per_lot_native: i64,
    /// Fills are refused from this unix time on.
    pub expiry_ts: i64,
    /// Chosen by the maker, unique per maker account: keys the quote's fill record.
    pub nonce: u64,
}

impl Quote {
    /// The bytes the maker signs: [`QUOTE_DOMAIN`], this program's id, the borsh quote.
    pub fn message(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(QUOTE_DOMAIN.len() + 32 + 4 * 32 + 1 + 4 * 8);
        out.extend_from_slice(QUOTE_DOMAIN);
        out.extend_from_slice(crate::ID.as_ref());
        self.serialize(&mut out).expect("writing to a Vec cannot fail");
        out
    }

    /// SHA-256 of [`Quote::message`]: what a fill record remembers of the quote.
    pub fn hash(&self) -> [u8; 32] {
        solana_sha256_hasher::hash(&self.message()).to_bytes()
    }
}

/// Fills of one (maker account, nonce): created by the first fill or by a cancel.
#[account]
pub struct QuoteRecord {
    pub maker: Pubkey,
    pub nonce: u64,
    /// [`Quote::hash`] of the quote this nonce belongs to.
    pub quote_hash: [u8; 32],
    pub max_lots: i64,
    pub filled_lots: i64,
    /// The quote's expiry: the record may be closed from then on.
    pub expiry_ts: i64,
    pub cancelled: bool,
    /// Paid the rent; gets it back on close.
    pub payer: Pubkey,
    pub bump: u8,
}

impl QuoteRecord {
    pub const SIZE: usize = 8 + 32 + 8 + 32 + 8 + 8 + 8 + 1 + 32 + 1;
}

/// The venue's errors (Anchor custom codes 6000 + index).
#[error_code]
pub enum RfqError {
    #[msg("Fill lots must be positive")]
    InvalidFillLots,
    #[msg("The quote's group, market or maker account is not the account passed")]
    QuoteAccountMismatch,
    #[msg("The quote is reserved for another taker account")]
    QuoteTakerMismatch,
    #[msg("The quote has expired")]
    QuoteExpired,
    #[msg("The taker authority is neither owner nor active delegate of the taker account")]
    TakerNotAuthorized,
    #[msg("The instruction before fill_quote is not an Ed25519 signature verification")]
    MissingEd25519Instruction,
    #[msg("The Ed25519 instruction must verify exactly one signature")]
    Ed25519SignatureCount,
    #[msg("The Ed25519 instruction reads its signature, key or message from another instruction")]
    Ed25519DataNotInline,
    #[msg("The Ed25519 instruction's offsets are out of its data")]
    MalformedEd25519Instruction,
    #[msg("The signed message is not this quote")]
    QuoteSignatureMismatch,
    #[msg("The quote's signer is neither owner nor active delegate of the maker account")]
    QuoteSignerNotAuthorized,
    #[msg("Another quote was already filled or cancelled under this nonce")]
    QuoteNonceReused,
    #[msg("The fill would exceed the quote's max lots")]
    QuoteOverfilled,
    #[msg("The maker cancelled this quote")]
    QuoteCancelled,
    #[msg("The signer is neither owner nor active delegate of the maker account")]
    MakerNotAuthorized,
    #[msg("The quote record can only be closed once its quote has expired")]
    QuoteRecordNotExpired,
}

/// The key an Ed25519 program instruction verified over `expected_message`, after checking
/// that it verifies exactly one signature whose key and message (and signature) are in its own
/// data, and that the message is `expected_message`.
pub fn ed25519_signer(ix: &Instruction, expected_message: &[u8]) -> Result<Pubkey> {
    require_keys_eq!(ix.program_id, ED25519_PROGRAM_ID, RfqError::MissingEd25519Instruction);
    let data = &ix.data;
    require!(data.len() >= ED25519_OFFSETS_START + ED25519_OFFSETS_SIZE, RfqError::Ed25519SignatureCount);
    require!(data[0] == 1, RfqError::Ed25519SignatureCount);
    let field = |i: usize| u16::from_le_bytes([data[ED25519_OFFSETS_START + 2 * i], data[ED25519_OFFSETS_START + 2 * i + 1]]);
    let (signature_ix, key_offset, key_ix) = (field(1), field(2) as usize, field(3));
    let (message_offset, message_size, message_ix) = (field(4) as usize, field(5) as usize, field(6));
    require!(signature_ix == INLINE && key_ix == INLINE && message_ix == INLINE, RfqError::Ed25519DataNotInline);
    let key = data.get(key_offset..key_offset + 32).ok_or(RfqError::MalformedEd25519Instruction)?;
    let message = data.get(message_offset..message_offset + message_size).ok_or(RfqError::MalformedEd25519Instruction)?;
    require!(message == expected_message, RfqError::QuoteSignatureMismatch);
    Ok(Pubkey::try_from(key).expect("32 bytes"))
}

/// The fill record of `(maker, nonce)`, created (rent paid by `payer`) if it does not exist.
fn load_or_create_record<'info>(
    record: &AccountInfo<'info>,
    payer: &AccountInfo<'info>,
    system_program: &AccountInfo<'info>,
    quote: &Quote,
    quote_hash: [u8; 32],
    bump: u8,
) -> Result<QuoteRecord> {
    if record.owner == &crate::ID {
        return QuoteRecord::try_deserialize(&mut &record.try_borrow_data()?[..]);
    }
    let nonce = quote.nonce.to_le_bytes();
    let seeds: &[&[u8]] = &[QUOTE_RECORD_SEED, quote.maker.as_ref(), &nonce, &[bump]];
    let rent = Rent::get()?.minimum_balance(QuoteRecord::SIZE);
    let signer = std::slice::from_ref(&seeds);
    let system = system_program.key();
    // Anyone may send lamports to the address beforehand: create_account would then fail.
    if record.lamports() == 0 {
        let accounts = anchor_lang::system_program::CreateAccount { from: payer.clone(), to: record.clone() };
        anchor_lang::system_program::create_account(CpiContext::new_with_signer(system, accounts, signer), rent, QuoteRecord::SIZE as u64, &crate::ID)?;
    } else {
        let shortfall = rent.saturating_sub(record.lamports());
        if shortfall > 0 {
            let accounts = anchor_lang::system_program::Transfer { from: payer.clone(), to: record.clone() };
            anchor_lang::system_program::transfer(CpiContext::new(system, accounts), shortfall)?;
        }
        let accounts = anchor_lang::system_program::Allocate { account_to_allocate: record.clone() };
        anchor_lang::system_program::allocate(CpiContext::new_with_signer(system, accounts, signer), QuoteRecord::SIZE as u64)?;
        let accounts = anchor_lang::system_program::Assign { account_to_assign: record.clone() };
        anchor_lang::system_program::assign(CpiContext::new_with_signer(system, accounts, signer), &crate::ID)?;
    }
    Ok(QuoteRecord {
        maker: quote.maker,
        nonce: quote.nonce,
        quote_hash,
        max_lots: quote.max_lots,
        filled_lots: 0,
        expiry_ts: quote.expiry_ts,
        cancelled: false,
        payer: payer.key(),
        bump,
    })
}

fn store_record(record: &AccountInfo, state: &QuoteRecord) -> Result<()> {
    let mut data = record.try_borrow_mut_data()?;
    state.try_serialize(&mut &mut data[..])
}

#[program]
pub mod rfq_venue {
    use super::*;

    /// Fills `lots` of a maker's signed `quote`. The instruction immediately before must be the
    /// Ed25519 program's verification of the quote's signature; the taker authority signs. See
    /// the module documentation for every check.
    pub fn fill_quote<'info>(ctx: Context<'info, FillQuote<'info>>, quote: Quote, lots: i64) -> Result<()> {
        let a = &ctx.accounts;
        let now = Clock::get()?.unix_timestamp;
        require!(lots > 0, RfqError::InvalidFillLots);
        require!(
            quote.group == a.group.key() && quote.market == a.market.key() && quote.maker == a.maker.key(),
            RfqError::QuoteAccountMismatch
        );
        require!(quote.taker == Pubkey::default() || quote.taker == a.taker.key(), RfqError::QuoteTakerMismatch);
        require!(now < quote.expiry_ts, RfqError::QuoteExpired);
        require!(a.taker.load()?.is_owner_or_delegate(&a.taker_authority.key(), now), RfqError::TakerNotAuthorized);

        let instructions = a.instructions.to_account_info();
        let current = load_current_index_checked(&instructions)?;
        require!(current > 0, RfqError::MissingEd25519Instruction);
        let verify = load_instruction_at_checked(current as usize - 1, &instructions)?;
        let message = quote.message();
        let maker_key = ed25519_signer(&verify, &message)?;
        require!(a.maker.load()?.is_owner_or_delegate(&maker_key, now), RfqError::QuoteSignerNotAuthorized);

        let record_info = a.quote_record.to_account_info();
        let payer = a.taker_authority.to_account_info();
        let hash = solana_sha256_hasher::hash(&message).to_bytes();
        let mut record = load_or_create_record(&record_info, &payer, &a.system_program.to_account_info(), &quote, hash, ctx.bumps.quote_record)?;
        require!(!record.cancelled, RfqError::QuoteCancelled);
        require!(record.quote_hash == hash, RfqError::QuoteNonceReused);
        let filled = record.filled_lots.checked_add(lots).ok_or(RfqError::QuoteOverfilled)?;
        require!(filled <= record.max_lots, RfqError::QuoteOverfilled);
        record.filled_lots = filled;
        store_record(&record_info, &record)?;

        let (buyer, seller, buyer_consent, seller_consent) = match quote.side {
            QuoteSide::MakerBuys => (&a.maker, &a.taker, maker_key, a.taker_authority.key()),
            QuoteSide::MakerSells => (&a.taker, &a.maker, a.taker_authority.key(), maker_key),
        };
        let accounts = portfolio_margin::accounts::VenueTrade {
            group: a.group.key(),
            venue: a.venue.key(),
            venue_authority: a.venue_authority.key(),
            market: a.market.key(),
            underlying: a.underlying.key(),
            oracle: a.oracle.key(),
            quote_bank: a.quote_bank.key(),
            buyer: buyer.key(),
            seller: seller.key(),
        };
        let mut metas = accounts.to_account_metas(None);
        metas.extend(ctx.remaining_accounts.iter().map(|i| AccountMeta::new_readonly(i.key(), false)));
        let data = portfolio_margin::instruction::VenueTrade { lots, price_per_lot_native: quote.price_per_lot_native, buyer_consent, seller_consent }.data();
        let ix = Instruction { program_id: portfolio_margin::ID, accounts: metas, data };
        let mut infos = vec![
            a.group.to_account_info(),
            a.venue.to_account_info(),
            a.venue_authority.to_account_info(),
            a.market.to_account_info(),
            a.underlying.to_account_info(),
            a.oracle.to_account_info(),
            a.quote_bank.to_account_info(),
            buyer.to_account_info(),
            seller.to_account_info(),
        ];
        infos.extend_from_slice(ctx.remaining_accounts);
        invoke_signed(&ix, &infos, &[&[VENUE_AUTHORITY_SEED, &[ctx.bumps.venue_authority]]])?;
        Ok(())
    }

    /// Withdraws a quote before it expires: its nonce can no longer be filled. Signed by the
    /// maker account's owner or active delegate, who pays the record's rent if no fill created
    /// it yet.
    pub fn cancel_quote(ctx: Context<CancelQuote>, quote: Quote) -> Result<()> {
        let a = &ctx.accounts;
        let now = Clock::get()?.unix_timestamp;
        require_keys_eq!(quote.maker, a.maker.key(), RfqError::QuoteAccountMismatch);
        require!(a.maker.load()?.is_owner_or_delegate(&a.authority.key(), now), RfqError::MakerNotAuthorized);
        let record_info = a.quote_record.to_account_info();
        let payer = a.authority.to_account_info();
        let hash = quote.hash();
        let mut record = load_or_create_record(&record_info, &payer, &a.system_program.to_account_info(), &quote, hash, ctx.bumps.quote_record)?;
        require!(record.quote_hash == hash, RfqError::QuoteNonceReused);
        record.cancelled = true;
        store_record(&record_info, &record)
    }

    /// Closes a quote record once its quote has expired (no fill can use it any more) and
    /// returns the rent to whoever paid it. Anyone may call it.
    pub fn close_quote_record(ctx: Context<CloseQuoteRecord>) -> Result<()> {
        let now = Clock::get()?.unix_timestamp;
        require!(now >= ctx.accounts.quote_record.expiry_ts, RfqError::QuoteRecordNotExpired);
        Ok(())
    }
}

#[derive(Accounts)]
#[instruction(quote: Quote)]
pub struct FillQuote<'info> {
    /// CHECK: this program's signing PDA.
    #[account(seeds = [VENUE_AUTHORITY_SEED], bump)]
    pub venue_authority: UncheckedAccount<'info>,
    /// CHECK: must be the quote's group; portfolio-margin checks the rest.
    pub group: UncheckedAccount<'info>,
    /// CHECK: this venue's registration in the group; checked by portfolio-margin.
    pub venue: UncheckedAccount<'info>,
    /// CHECK: must be the quote's market; portfolio-margin checks it belongs to the group.
    #[account(mut)]
    pub market: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub underlying: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub oracle: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub quote_bank: UncheckedAccount<'info>,
    /// The quote's maker account (a portfolio-margin `MarginAccount`).
    #[account(mut)]
    pub maker: AccountLoader<'info, MarginAccount>,
    /// The taker's margin account.
    #[account(mut)]
    pub taker: AccountLoader<'info, MarginAccount>,
    /// Owner or active delegate of the taker account; pays the quote record's rent.
    #[account(mut)]
    pub taker_authority: Signer<'info>,
    /// CHECK: created or checked in the handler (the first fill of a quote creates it).
    #[account(mut, seeds = [QUOTE_RECORD_SEED, quote.maker.as_ref(), &quote.nonce.to_le_bytes()], bump)]
    pub quote_record: UncheckedAccount<'info>,
    /// CHECK: the instructions sysvar.
    #[account(address = solana_instructions_sysvar::ID)]
    pub instructions: UncheckedAccount<'info>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

#[derive(Accounts)]
#[instruction(quote: Quote)]
pub struct CancelQuote<'info> {
    pub maker: AccountLoader<'info, MarginAccount>,
    /// Owner or active delegate of the maker account; pays the record's rent if needed.
    #[account(mut)]
    pub authority: Signer<'info>,
    /// CHECK: created or checked in the handler.
    #[account(mut, seeds = [QUOTE_RECORD_SEED, quote.maker.as_ref(), &quote.nonce.to_le_bytes()], bump)]
    pub quote_record: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

#[derive(Accounts)]
pub struct CloseQuoteRecord<'info> {
    #[account(mut, has_one = payer, close = payer)]
    pub quote_record: Account<'info, QuoteRecord>,
    /// CHECK: receives the rent; must be the record's payer.
    #[account(mut)]
    pub payer: UncheckedAccount<'info>,
}

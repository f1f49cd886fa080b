//! `venue_trade`: a fill submitted by a registered venue program via CPI, signed by the venue's
//! `["venue-authority"]` PDA instead of the two owners.
//!
//! The venue is trusted to have verified each side's consent to this very fill (the example
//! `rfq-venue` has the taker sign the transaction and verifies the maker's signed quote through
//! the Ed25519 program) and names the key that consented for each side. The program then checks:
//! the venue is registered in the group; each account approved this venue, the approval has
//! not expired and the fill is within its largest fill; each consenting key is the account's
//! owner or an active delegate, and a delegate's side stays within the owner's delegate limits.
//! Every other check is the one `trade` makes.

use crate::error::MarginError;
use crate::instructions::trade::{execute_fill, FillAccounts};
use crate::state::{CollateralBank, Group, MarginAccount, Market, Underlying, Venue};
use anchor_lang::prelude::*;
use anchor_lang::Discriminator;

#[derive(Accounts)]
pub struct VenueTrade<'info> {
    pub group: AccountLoader<'info, Group>,
    /// CHECK: must be this group's `Venue` registration; checked in the handler so an
    /// unregistered venue gets its own error.
    pub venue: UncheckedAccount<'info>,
    pub venue_authority: Signer<'info>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: checked against the underlying's oracle configuration.
    pub oracle: UncheckedAccount<'info>,
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub buyer: AccountLoader<'info, MarginAccount>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub seller: AccountLoader<'info, MarginAccount>,
}

/// Checks one side's approval of `venue_program` for a fill of `lots` at `now`, and that
/// `consent` may act for it.
fn check_approval(account: &MarginAccount, venue_program: &Pubkey, consent: &Pubkey, lots: i64, now: i64) -> Result<()> {
    require_keys_eq!(account.approved_venue, *venue_program, MarginError::VenueNotApproved);
    require!(now < account.venue_expiry_ts, MarginError::VenueApprovalExpired);
    require!(lots <= account.venue_max_fill_lots, MarginError::VenueFillTooLarge);
    require!(account.is_owner_or_delegate(consent, now), MarginError::VenueConsentMissing);
    Ok(())
}

pub fn venue_trade<'info>(
    ctx: Context<'info, VenueTrade<'info>>,
    lots: i64,
    price_per_lot_native: i64,
    buyer_consent: Pubkey,
    seller_consent: Pubkey,
) -> Result<()> {
    let a = &ctx.accounts;
    let venue_program = {
        let info = a.venue.to_account_info();
        let data = info.try_borrow_data()?;
        let registered = *info.owner == crate::ID
            && data.len() >= 8 + core::mem::size_of::<Venue>()
            && &data[..8] == Venue::DISCRIMINATOR;
        require!(registered, MarginError::VenueNotRegistered);
        let venue: &Venue = bytemuck::from_bytes(&data[8..8 + core::mem::size_of::<Venue>()]);
        require_keys_eq!(venue.group, a.group.key(), MarginError::VenueNotRegistered);
        require_keys_eq!(venue.authority, a.venue_authority.key(), MarginError::VenueAuthorityMismatch);
        venue.program
    };
    let now = Clock::get()?.unix_timestamp;
    check_approval(&*a.buyer.load()?, &venue_program, &buyer_consent, lots, now)?;
    check_approval(&*a.seller.load()?, &venue_program, &seller_consent, lots, now)?;
    execute_fill(
        FillAccounts {
            group: &a.group,
            market: &a.market,
            underlying: &a.underlying,
            oracle: &a.oracle,
            quote_bank: &a.quote_bank,
            buyer: &a.buyer,
            seller: &a.seller,
            buyer_consent,
            seller_consent,
            remaining: ctx.remaining_accounts,
        },
        lots,
        price_per_lot_native,
        venue_program,
    )
}

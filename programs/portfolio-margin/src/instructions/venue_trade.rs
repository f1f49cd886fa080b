//! `venue_trade`: a fill submitted by a registered venue program via CPI, signed by the venue's
//! `["venue-authority"]` PDA instead of the two owners. Both accounts' owners must have
//! approved that venue; every other check is the one `trade` makes.

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

pub fn venue_trade<'info>(ctx: Context<'info, VenueTrade<'info>>, lots: i64, price_per_lot_native: i64) -> Result<()> {
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
    require_keys_eq!(a.buyer.load()?.approved_venue, venue_program, MarginError::VenueNotApproved);
    require_keys_eq!(a.seller.load()?.approved_venue, venue_program, MarginError::VenueNotApproved);
    execute_fill(
        FillAccounts {
            group: &a.group,
            market: &a.market,
            underlying: &a.underlying,
            oracle: &a.oracle,
            quote_bank: &a.quote_bank,
            buyer: &a.buyer,
            seller: &a.seller,
            remaining: ctx.remaining_accounts,
        },
        lots,
        price_per_lot_native,
        venue_program,
    )
}

//! `register_venue` (admin): allows a venue program (order book, AMM, RFQ system) to submit
//! fills by CPI, signing with its `["venue-authority"]` PDA, for accounts that approved it.

use crate::error::MarginError;
use crate::state::{Group, Venue, VENUE_AUTHORITY_SEED, VENUE_SEED};
use anchor_lang::prelude::*;

#[derive(Accounts)]
#[instruction(venue_program: Pubkey)]
pub struct RegisterVenue<'info> {
    #[account(has_one = admin @ MarginError::NotGroupAdmin)]
    pub group: AccountLoader<'info, Group>,
    pub admin: Signer<'info>,
    #[account(
        init,
        payer = payer,
        space = 8 + core::mem::size_of::<Venue>(),
        seeds = [VENUE_SEED, group.key().as_ref(), venue_program.as_ref()],
        bump,
    )]
    pub venue: AccountLoader<'info, Venue>,
    #[account(mut)]
    pub payer: Signer<'info>,
    pub system_program: Program<'info, System>,
}

pub fn register_venue(ctx: Context<RegisterVenue>, venue_program: Pubkey) -> Result<()> {
    // The default key (the system program) and this program itself are never venues.
    require!(venue_program != Pubkey::default() && venue_program != crate::ID, MarginError::InvalidVenueProgram);
    let mut venue = ctx.accounts.venue.load_init()?;
    venue.group = ctx.accounts.group.key();
    venue.program = venue_program;
    venue.authority = Pubkey::find_program_address(&[VENUE_AUTHORITY_SEED], &venue_program).0;
    venue.bump = ctx.bumps.venue;
    Ok(())
}

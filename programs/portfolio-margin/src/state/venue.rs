//! A registered venue: a program (order book, AMM, RFQ system) allowed to submit fills by CPI,
//! signing with its PDA `["venue-authority"]`, for accounts whose owners approved it.

use anchor_lang::prelude::*;

/// Seed prefix of venue PDAs: `["venue", group, venue_program]`.
pub const VENUE_SEED: &[u8] = b"venue";
/// Seed, under the venue program, of the PDA that signs fills.
pub const VENUE_AUTHORITY_SEED: &[u8] = b"venue-authority";

/// Registration of a venue program in a group.
#[account(zero_copy)]
#[repr(C)]
pub struct Venue {
    /// Group of the registration.
    pub group: Pubkey,
    /// The venue program.
    pub program: Pubkey,
    /// The PDA of `program` that signs fills: `find_program_address(["venue-authority"], program)`.
    pub authority: Pubkey,
    /// PDA bump.
    pub bump: u8,
    /// Explicit padding.
    pub padding: [u8; 7],
}

const _: () = assert!(core::mem::size_of::<Venue>() == 3 * 32 + 8);

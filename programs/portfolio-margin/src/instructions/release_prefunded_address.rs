//! `release_prefunded_address(address)` (permissionless): moves the lamports out of one of the
//! program's PDAs that does not exist yet but was funded, so that it can be created.
//!
//! Accounts are created with Anchor's `init`. At an address that already holds lamports, Anchor
//! 1.2 creates the account with the system program's `CreateAccountAllowPrefund`, which runtimes
//! without that instruction refuse. Anyone could otherwise send a few lamports to the next
//! market or underlying address of a group (derived from its counters, so the admin cannot skip
//! it), to a mint's future bank or vault, to a venue's registration or to a margin account's
//! address (also after it was closed) and block its creation for good. The program signs for
//! its own PDA to move those lamports to `recipient`; the creating instruction can follow in
//! the same transaction.
//!
//! Only a PDA of the program described by `address`, owned by the system program, with no data
//! and some lamports, can be released: an existing account of the program never can.

use crate::error::MarginError;
use crate::state::{BANK_SEED, GROUP_SEED, MARGIN_ACCOUNT_SEED, MARKET_SEED, UNDERLYING_SEED, VAULT_SEED, VENUE_SEED};
use anchor_lang::prelude::*;

/// One of the program's PDAs, by its seeds.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramAddress {
    Group { admin: Pubkey, group_index: u32 },
    MarginAccount { group: Pubkey, owner: Pubkey, account_index: u32 },
    Bank { group: Pubkey, mint: Pubkey },
    Vault { bank: Pubkey },
    Underlying { group: Pubkey, index: u16 },
    Market { group: Pubkey, index: u16 },
    Venue { group: Pubkey, program: Pubkey },
}

impl ProgramAddress {
    /// The seeds of the address, without the bump.
    pub fn seeds(&self) -> Vec<Vec<u8>> {
        match self {
            ProgramAddress::Group { admin, group_index } => vec![GROUP_SEED.to_vec(), admin.to_bytes().to_vec(), group_index.to_le_bytes().to_vec()],
            ProgramAddress::MarginAccount { group, owner, account_index } => vec![
                MARGIN_ACCOUNT_SEED.to_vec(),
                group.to_bytes().to_vec(),
                owner.to_bytes().to_vec(),
                account_index.to_le_bytes().to_vec(),
            ],
            ProgramAddress::Bank { group, mint } => vec![BANK_SEED.to_vec(), group.to_bytes().to_vec(), mint.to_bytes().to_vec()],
            ProgramAddress::Vault { bank } => vec![VAULT_SEED.to_vec(), bank.to_bytes().to_vec()],
            ProgramAddress::Underlying { group, index } => vec![UNDERLYING_SEED.to_vec(), group.to_bytes().to_vec(), index.to_le_bytes().to_vec()],
            ProgramAddress::Market { group, index } => vec![MARKET_SEED.to_vec(), group.to_bytes().to_vec(), index.to_le_bytes().to_vec()],
            ProgramAddress::Venue { group, program } => vec![VENUE_SEED.to_vec(), group.to_bytes().to_vec(), program.to_bytes().to_vec()],
        }
    }

    /// The canonical address and its bump.
    pub fn find(&self) -> (Pubkey, u8) {
        let seeds = self.seeds();
        let refs: Vec<&[u8]> = seeds.iter().map(|s| s.as_slice()).collect();
        Pubkey::find_program_address(&refs, &crate::ID)
    }
}

#[derive(Accounts)]
pub struct ReleasePrefundedAddress<'info> {
    /// CHECK: must be the canonical address of `address`, owned by the system program, with no
    /// data; checked in the handler.
    #[account(mut)]
    pub prefunded: UncheckedAccount<'info>,
    /// CHECK: any account; receives the lamports.
    #[account(mut)]
    pub recipient: UncheckedAccount<'info>,
    pub system_program: Program<'info, System>,
}

pub fn release_prefunded_address(ctx: Context<ReleasePrefundedAddress>, address: ProgramAddress) -> Result<()> {
    let (expected, bump) = address.find();
    let info = ctx.accounts.prefunded.to_account_info();
    let releasable = info.key() == expected && *info.owner == System::id() && info.data_is_empty() && info.lamports() > 0;
    require!(releasable, MarginError::AddressNotReleasable);
    let mut seeds = address.seeds();
    seeds.push(vec![bump]);
    let refs: Vec<&[u8]> = seeds.iter().map(|s| s.as_slice()).collect();
    let lamports = info.lamports();
    let accounts = anchor_lang::system_program::Transfer { from: info, to: ctx.accounts.recipient.to_account_info() };
    anchor_lang::system_program::transfer(CpiContext::new_with_signer(ctx.accounts.system_program.key(), accounts, &[&refs]), lamports)?;
    msg!("released {} lamports from {}", lamports, expected);
    Ok(())
}

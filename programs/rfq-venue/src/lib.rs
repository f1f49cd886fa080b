//! # rfq-venue (example)
//!
//! The smallest venue: it submits a fill between two margin accounts to portfolio-margin's
//! `venue_trade`, signing with its `["venue-authority"]` PDA. A real venue would match orders
//! or quotes first; portfolio-margin checks the registration, both owners' approvals, the price
//! band and both accounts' health.

use anchor_lang::prelude::*;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::program::invoke_signed;
use anchor_lang::{InstructionData, ToAccountMetas};
use portfolio_margin::state::VENUE_AUTHORITY_SEED;

declare_id!("7uGTGLJbfZzrpxor8wNqG8haiU3BvzRPTs4n5L8yZd6H");

#[program]
pub mod rfq_venue {
    use super::*;

    /// Submits a fill of `lots` at `price_per_lot_native` from `seller` to `buyer`.
    pub fn fill<'info>(ctx: Context<'info, Fill<'info>>, lots: i64, price_per_lot_native: i64) -> Result<()> {
        let a = &ctx.accounts;
        let accounts = portfolio_margin::accounts::VenueTrade {
            group: a.group.key(),
            venue: a.venue.key(),
            venue_authority: a.venue_authority.key(),
            market: a.market.key(),
            underlying: a.underlying.key(),
            oracle: a.oracle.key(),
            quote_bank: a.quote_bank.key(),
            buyer: a.buyer.key(),
            seller: a.seller.key(),
        };
        let mut metas = accounts.to_account_metas(None);
        metas.extend(ctx.remaining_accounts.iter().map(|i| AccountMeta::new_readonly(i.key(), false)));
        let data = portfolio_margin::instruction::VenueTrade { lots, price_per_lot_native, buyer_consent: Pubkey::default(), seller_consent: Pubkey::default() }.data();
        let ix = Instruction { program_id: portfolio_margin::ID, accounts: metas, data };
        let mut infos = vec![
            a.group.to_account_info(),
            a.venue.to_account_info(),
            a.venue_authority.to_account_info(),
            a.market.to_account_info(),
            a.underlying.to_account_info(),
            a.oracle.to_account_info(),
            a.quote_bank.to_account_info(),
            a.buyer.to_account_info(),
            a.seller.to_account_info(),
        ];
        infos.extend_from_slice(ctx.remaining_accounts);
        invoke_signed(&ix, &infos, &[&[VENUE_AUTHORITY_SEED, &[ctx.bumps.venue_authority]]])?;
        Ok(())
    }
}

#[derive(Accounts)]
pub struct Fill<'info> {
    /// CHECK: this program's signing PDA.
    #[account(seeds = [VENUE_AUTHORITY_SEED], bump)]
    pub venue_authority: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub group: UncheckedAccount<'info>,
    /// CHECK: this venue's registration in the group; checked by portfolio-margin.
    pub venue: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub market: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub underlying: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub oracle: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    pub quote_bank: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub buyer: UncheckedAccount<'info>,
    /// CHECK: checked by portfolio-margin.
    #[account(mut)]
    pub seller: UncheckedAccount<'info>,
    /// CHECK: the program invoked.
    #[account(address = portfolio_margin::ID)]
    pub portfolio_margin_program: UncheckedAccount<'info>,
}

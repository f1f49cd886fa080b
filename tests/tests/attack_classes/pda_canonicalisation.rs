//! Class 8, PDA canonicalisation: accounts at addresses derived with a non-canonical bump or
//! with seeds other than the instruction's (another owner, another index). No instruction takes
//! a bump as an argument: every PDA is created with Anchor's `init`, `seeds` and `bump`, which
//! derives the canonical bump itself and stores it (`ctx.bumps`), and later instructions sign
//! with the stored bump.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::Pubkey;
use anchor_spl::token::spl_token;
use pm_client::sdk;
use portfolio_margin::instructions::GroupParams;
use portfolio_margin::state::{GROUP_SEED, MARGIN_ACCOUNT_SEED, VAULT_SEED};
use solana_keypair::Keypair;
use solana_signer::Signer;

/// The address of `seeds` under the program with the largest valid bump below the canonical
/// one, and that bump.
fn non_canonical(seeds: &[&[u8]]) -> (Pubkey, u8) {
    let (_, canonical) = Pubkey::find_program_address(seeds, &portfolio_margin::ID);
    (0..canonical)
        .rev()
        .find_map(|bump| {
            let mut with_bump: Vec<&[u8]> = seeds.to_vec();
            let bump_seed = [bump];
            with_bump.push(&bump_seed);
            Pubkey::create_program_address(&with_bump, &portfolio_margin::ID).ok().map(|key| (key, bump))
        })
        .expect("some lower bump is off the curve")
}

/// Attack: Mallory creates her margin account at the address of its seeds with a non-canonical
/// bump (a second account for the same (group, owner, index), invisible to clients deriving the
/// canonical one). Defence: `seeds = [...], bump` with `init` in `CreateMarginAccount` derives
/// the canonical address (`ConstraintSeeds`).
#[tokio::test]
async fn a_margin_account_at_a_non_canonical_bump() {
    let mut w = world().await;
    let mallory = Keypair::new();
    let group = w.market.group;
    let (address, bump) = non_canonical(&[MARGIN_ACCOUNT_SEED, group.as_ref(), mallory.pubkey().as_ref(), &0u32.to_le_bytes()]);
    assert!(bump < 255);
    let ix = sdk::create_margin_account(&group, &mallory.pubkey(), &w.bank.payer().pubkey(), 0);
    let canonical = sdk::margin_account_address(&group, &mallory.pubkey(), 0);
    refused(&mut w.bank, &[replaced(ix, &canonical, &address)], &[&mallory], anchor(ErrorCode::ConstraintSeeds)).await;
}

/// Attack: Mallory creates, with her own signature, an account at the address of one of
/// Alice's future accounts (index 3: squatting it with Mallory as owner), and one at another
/// index than the one she names. Defence: the seeds of `margin_account` in
/// `CreateMarginAccount` include the signing owner and the index argument (`ConstraintSeeds`).
#[tokio::test]
async fn a_margin_account_at_another_owners_or_indexs_address() {
    let mut w = world().await;
    let mallory = Keypair::new();
    let group = w.market.group;
    let payer = w.bank.payer().pubkey();
    let alices = sdk::margin_account_address(&group, &w.alice.owner.pubkey(), 3);
    let ix = sdk::create_margin_account(&group, &mallory.pubkey(), &payer, 3);
    let own = sdk::margin_account_address(&group, &mallory.pubkey(), 3);
    refused(&mut w.bank, &[replaced(ix.clone(), &own, &alices)], &[&mallory], anchor(ErrorCode::ConstraintSeeds)).await;
    let other_index = sdk::margin_account_address(&group, &mallory.pubkey(), 4);
    refused(&mut w.bank, &[replaced(ix, &own, &other_index)], &[&mallory], anchor(ErrorCode::ConstraintSeeds)).await;
}

/// Attack: a new bank's vault created at a non-canonical bump of `["vault", bank]`, and a group
/// at the address of another index than the one named. Defence: `seeds, bump` with `init` on
/// `vault` in `AddCollateralBank` and on `group` in `CreateGroup` (`ConstraintSeeds`); the bank
/// stores the canonical bumps it was created with (`bank.bump`, `bank.vault_bump`) and
/// `withdraw` signs with `bank.bump`.
#[tokio::test]
async fn a_vault_at_a_non_canonical_bump_and_a_group_at_another_index() {
    let mut w = world().await;
    let admin = w.market.admin.pubkey();
    let mint = w.bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let bank_key = sdk::bank_address(&w.market.group, &mint);
    let (vault, _) = non_canonical(&[VAULT_SEED, bank_key.as_ref()]);
    let config = bank_config(w.market.usdc.oracle, w.market.usdc_feed, (PPM, PPM), (PPM, PPM));
    let ix = sdk::add_collateral_bank(&w.market.group, &admin, &admin, &mint, &spl_token::ID, config);
    let ix = replaced(ix, &sdk::vault_address(&bank_key), &vault);
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::ConstraintSeeds)).await;

    let params = GroupParams { unrealized_init_weight_ppm: 0, conf_multiplier_ppm: 0, liquidation_fee_ppm: 0, insurance_share_ppm: 0 };
    let ix = sdk::create_group(&admin, &admin, &mint, 5, params);
    let (off_curve, _) = non_canonical(&[GROUP_SEED, admin.as_ref(), &5u32.to_le_bytes()]);
    refused(&mut w.bank, &[replaced(ix.clone(), &sdk::group_address(&admin, 5), &off_curve)], &[], anchor(ErrorCode::ConstraintSeeds)).await;
    refused(&mut w.bank, &[replaced(ix, &sdk::group_address(&admin, 5), &sdk::group_address(&admin, 6))], &[], anchor(ErrorCode::ConstraintSeeds)).await;
}

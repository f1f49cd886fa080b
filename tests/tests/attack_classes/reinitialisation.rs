//! Class 5, reinitialisation: every `create_*` / `add_*` / `register_*` instruction called again
//! for an account that exists, to overwrite it with fresh state (a new admin or quote mint, an
//! account without its debt, a bank without its deposits, a market without its positions).
//! Accounts are created with Anchor's `init` at a PDA. At an address holding lamports, Anchor
//! 1.2 asks the system program for `CreateAccountAllowPrefund`, which refuses an address in use
//! (and which this runtime, predating the instruction, refuses outright with
//! `InvalidInstructionData`). `release_prefunded_address`, which empties funded addresses that
//! have no account yet, refuses a live account (`AddressNotReleasable`). The PDAs of
//! underlyings and markets are derived from the group's counters, so an existing index no
//! longer matches (`ConstraintSeeds`).
//!
//! The last tests are the finding of this class: a few lamports sent to the next market's
//! address blocked every later listing in the group until `release_prefunded_address` existed.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_spl::token::spl_token;
use pm_client::sdk;
use portfolio_margin::instructions::{GroupParams, PerpConfig};
use portfolio_margin::state::MarketKind;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::ProgramAddress;
use solana_instruction_error::InstructionError;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// The system program's refusal of `init` at an address holding lamports (see the module
/// documentation).
const ALREADY_IN_USE: Expected = Expected::Builtin(InstructionError::InvalidInstructionData);

/// Attack: the demo group's admin key creates group 0 again with another risk authority, a new
/// quote mint and no fees (wiping the insurance fund, the bank and market counters). Defence:
/// `init` on `group` (seeds `["group", admin, index]`) in `CreateGroup`.
#[tokio::test]
async fn create_group_again_for_an_existing_group() {
    let mut w = world().await;
    let admin = w.market.admin.pubkey();
    let mint = w.bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let params = GroupParams { unrealized_init_weight_ppm: PPM, conf_multiplier_ppm: 0, liquidation_fee_ppm: 0, insurance_share_ppm: 0 };
    let stranger = Keypair::new();
    let ix = sdk::create_group(&admin, &stranger.pubkey(), &mint, 0, params);
    refused(&mut w.bank, &[ix.clone()], &[], ALREADY_IN_USE).await;
    let release = sdk::release_prefunded_address(ProgramAddress::Group { admin, group_index: 0 }, &stranger.pubkey());
    refused(&mut w.bank, &[release, ix], &[], margin(MarginError::AddressNotReleasable)).await;
}

/// Attack: a bankrupt owner creates its margin account again at the same index to start over
/// without the 100 USDC debt. Defence: `init` on `margin_account` in `CreateMarginAccount`.
#[tokio::test]
async fn create_margin_account_again_over_an_account_in_debt() {
    let mut w = world().await;
    let carol = bankrupt(&mut w).await;
    let owner = carol.owner.pubkey();
    let ix = sdk::create_margin_account(&w.market.group, &owner, &owner, 0);
    refused(&mut w.bank, &[ix.clone()], &[&carol.owner], ALREADY_IN_USE).await;
    // Emptying the address first (as after a prefund) is refused for a live account.
    let release = sdk::release_prefunded_address(ProgramAddress::MarginAccount { group: w.market.group, owner, account_index: 0 }, &owner);
    refused(&mut w.bank, &[release, ix], &[&carol.owner], margin(MarginError::AddressNotReleasable)).await;
    // Alice's account (deposits and a position) likewise, paid by the fee payer.
    let alice = w.alice.owner.pubkey();
    let ix = sdk::create_margin_account(&w.market.group, &alice, &w.bank.payer().pubkey(), 0);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], ALREADY_IN_USE).await;
}

/// Attack: the admin lists the USDC mint again (new oracle, zero deposits counted, a new vault),
/// orphaning the deposits of the existing bank. Defence: `init` on `bank` (seeds `["bank",
/// group, mint]`) in `AddCollateralBank`.
#[tokio::test]
async fn add_collateral_bank_again_for_a_listed_mint() {
    let mut w = world().await;
    let admin = w.market.admin.pubkey();
    let config = bank_config(w.market.sol.oracle, w.market.sol_feed, (PPM, PPM), (PPM, PPM));
    let ix = sdk::add_collateral_bank(&w.market.group, &admin, &admin, &w.market.usdc.mint, &spl_token::ID, config);
    refused(&mut w.bank, &[ix], &[], ALREADY_IN_USE).await;
}

/// Attack: the admin lists an underlying and markets again at indices already used (the SOL
/// underlying 0, the perp 0, the call 1), resetting their arrays, open interest and loss index.
/// Defence: `init` with seeds from `group.underlying_count` / `group.market_count` in
/// `AddUnderlying` and `AddMarket`: only the next index can be created (`ConstraintSeeds`).
#[tokio::test]
async fn add_underlying_and_markets_again_at_a_used_index() {
    let mut w = world().await;
    let admin = w.market.admin.pubkey();
    let config = pm_client::world::underlying_config(w.market.sol.oracle, w.market.sol_feed);
    let ix = sdk::add_underlying(&w.market.group, &admin, &admin, 0, None, config);
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::ConstraintSeeds)).await;

    let perp = PerpConfig { price_band_ppm: 200_000, ..pm_client::world::perp_config() };
    let ix = sdk::add_perp_market(&w.market.group, &admin, &admin, &w.d.sol, 0, perp);
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::ConstraintSeeds)).await;

    let expiry_ts = w.bank.now().await + 86_400;
    let call = pm_client::world::option_config(MarketKind::Call, 100, expiry_ts);
    let ix = sdk::add_option_market(&w.market.group, &admin, &admin, &w.d.sol, 1, call);
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::ConstraintSeeds)).await;
}

/// Attack: the admin registers a venue program again. Defence: `init` on `venue` (seeds
/// `["venue", group, program]`) in `RegisterVenue`.
#[tokio::test]
async fn register_venue_again() {
    let mut w = world().await;
    let admin = w.market.admin.pubkey();
    w.bank.send(&[sdk::register_venue(&w.market.group, &admin, &admin, &rfq_venue::ID)], &[]).await.unwrap();
    let ix = sdk::register_venue(&w.market.group, &admin, &admin, &rfq_venue::ID);
    refused(&mut w.bank, &[ix], &[], ALREADY_IN_USE).await;
}

/// Finding (fixed): Mallory sends the rent of an empty account to the address of the group's
/// next market (derived from `market_count`, so the admin cannot list at another index) and to
/// the bank and vault addresses of a mint the admin is about to list. Anchor's `init` then
/// needs the system program's `CreateAccountAllowPrefund`, which this runtime does not have:
/// every later `add_perp_market` / `add_option_market` and that mint's listing failed for good.
/// The refused listings leave everything unchanged; `release_prefunded_address` in the same
/// transaction moves the lamports out (signed by the program for its own PDA) and the listing
/// goes through.
#[tokio::test]
async fn prefunded_addresses_of_the_next_market_and_bank_no_longer_block_listing() {
    let mut w = world().await;
    let admin = w.market.admin.pubkey();
    let mallory = Keypair::new();
    let group_state: portfolio_margin::state::Group = w.bank.load(&w.market.group).await;
    let next = group_state.market_count;
    let next_market = sdk::market_address(&w.market.group, next);
    w.bank.airdrop(&next_market, 1_000_000).await.unwrap();
    let perp = pm_client::world::perp_config();
    let list = sdk::add_perp_market(&w.market.group, &admin, &admin, &w.d.sol, next, perp);
    refused(&mut w.bank, &[list.clone()], &[], ALREADY_IN_USE).await;
    let release = sdk::release_prefunded_address(ProgramAddress::Market { group: w.market.group, index: next }, &mallory.pubkey());
    w.bank.send(&[release, list], &[]).await.unwrap();
    let market: portfolio_margin::state::Market = w.bank.load(&next_market).await;
    assert_eq!((market.group, market.market_index), (w.market.group, next));
    assert_eq!(w.bank.lamports(&mallory.pubkey()).await, 1_000_000, "the prefunded lamports went to the recipient");

    let mint = w.bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let bank_key = sdk::bank_address(&w.market.group, &mint);
    let vault = sdk::vault_address(&bank_key);
    w.bank.airdrop(&bank_key, 1_000_000).await.unwrap();
    w.bank.airdrop(&vault, 1_000_000).await.unwrap();
    let config = bank_config(w.market.usdc.oracle, w.market.usdc_feed, (800_000, 900_000), (1_200_000, 1_100_000));
    let add = sdk::add_collateral_bank(&w.market.group, &admin, &admin, &mint, &spl_token::ID, config);
    refused(&mut w.bank, &[add.clone()], &[], ALREADY_IN_USE).await;
    let releases = [
        sdk::release_prefunded_address(ProgramAddress::Bank { group: w.market.group, mint }, &admin),
        sdk::release_prefunded_address(ProgramAddress::Vault { bank: bank_key }, &admin),
    ];
    w.bank.send(&[releases[0].clone(), releases[1].clone(), add], &[]).await.unwrap();
    let state: portfolio_margin::state::CollateralBank = w.bank.load(&bank_key).await;
    assert_eq!((state.mint, state.vault), (mint, vault));
}

/// The release itself: it refuses an address that is not the canonical PDA described (a
/// funded address of another index), an address with no lamports, and a live account of the
/// program, each leaving everything unchanged. Defence: the key, owner, data and lamports
/// checks in `release_prefunded_address` (`AddressNotReleasable`).
#[tokio::test]
async fn the_release_refuses_anything_but_a_funded_empty_program_address() {
    let mut w = world().await;
    let recipient = Keypair::new().pubkey();
    let group = w.market.group;
    let funded = sdk::market_address(&group, 40);
    w.bank.airdrop(&funded, 1_000_000).await.unwrap();
    let mut wrong_key = sdk::release_prefunded_address(ProgramAddress::Market { group, index: 41 }, &recipient);
    wrong_key.accounts[0].pubkey = funded;
    refused(&mut w.bank, &[wrong_key], &[], margin(MarginError::AddressNotReleasable)).await;
    let empty = sdk::release_prefunded_address(ProgramAddress::Market { group, index: 42 }, &recipient);
    refused(&mut w.bank, &[empty], &[], margin(MarginError::AddressNotReleasable)).await;
    let live = sdk::release_prefunded_address(ProgramAddress::Market { group, index: 0 }, &recipient);
    refused(&mut w.bank, &[live], &[], margin(MarginError::AddressNotReleasable)).await;
    let live_bank = sdk::release_prefunded_address(ProgramAddress::Bank { group, mint: w.market.usdc.mint }, &recipient);
    refused(&mut w.bank, &[live_bank], &[], margin(MarginError::AddressNotReleasable)).await;
}

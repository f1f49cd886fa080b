//! Class 5, reinitialisation: every `create_*` / `add_*` / `register_*` instruction called again
//! for an account that exists, to overwrite it with fresh state (a new admin or quote mint, an
//! account without its debt, a bank without its deposits, a market without its positions).
//! Accounts are created with Anchor's `init` at a PDA: the system program refuses to allocate
//! an address already in use (its custom error 0, `AccountAlreadyInUse`), and the PDAs of
//! underlyings and markets are derived from the group's counters, so an existing index no
//! longer matches (`ConstraintSeeds`).

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_spl::token::spl_token;
use pm_client::sdk;
use portfolio_margin::instructions::{GroupParams, PerpConfig};
use portfolio_margin::state::MarketKind;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// The system program's `AccountAlreadyInUse`.
const ALREADY_IN_USE: Expected = Expected::Code(0);

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
    refused(&mut w.bank, &[ix], &[], ALREADY_IN_USE).await;
}

/// Attack: a bankrupt owner creates its margin account again at the same index to start over
/// without the 100 USDC debt. Defence: `init` on `margin_account` in `CreateMarginAccount`.
#[tokio::test]
async fn create_margin_account_again_over_an_account_in_debt() {
    let mut w = world().await;
    let carol = bankrupt(&mut w).await;
    let owner = carol.owner.pubkey();
    let ix = sdk::create_margin_account(&w.market.group, &owner, &owner, 0);
    refused(&mut w.bank, &[ix], &[&carol.owner], ALREADY_IN_USE).await;
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
    let config = pm_client::demo::underlying_config(w.market.sol.oracle, w.market.sol_feed);
    let ix = sdk::add_underlying(&w.market.group, &admin, &admin, 0, None, config);
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::ConstraintSeeds)).await;

    let perp = PerpConfig { price_band_ppm: 200_000, funding_period_seconds: 3_600, max_funding_rate_ppm: 1_000, funding_depth_lots: 100_000, pnl_settle_limit_ppm: 200_000 };
    let ix = sdk::add_perp_market(&w.market.group, &admin, &admin, &w.d.sol, 0, perp);
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::ConstraintSeeds)).await;

    let expiry_ts = w.bank.now().await + 86_400;
    let call = pm_client::demo::option_config(MarketKind::Call, 100, expiry_ts);
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

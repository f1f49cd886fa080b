//! Class 4, type cosplay: one of the program's own accounts (right owner, real data) passed
//! where another of its types is expected, in pairs where the impostor is at least as large as
//! the expected type, so a layout cast alone would accept it. Anchor's 8-byte discriminators
//! refuse every one (`AccountDiscriminatorMismatch`); the handler-level reads that bypass
//! Anchor's account types check the discriminator themselves.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::Pubkey;
use pm_client::pyth::PythPrice;
use pm_client::sdk::{self, BankKeys, MarketKeys};
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::VenueLimits;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Attack: a market (larger than an underlying, a bank or a group) stands in for the perp's
/// underlying in a refresh, for the group in a health check, and a margin account (larger than
/// a bank) for the USDC bank in a withdrawal. Defence: `AccountLoader<Underlying>`,
/// `AccountLoader<Group>`, `AccountLoader<CollateralBank>` discriminators.
#[tokio::test]
async fn markets_and_margin_accounts_cannot_pose_as_underlyings_groups_or_banks() {
    let mut w = world().await;
    let perp = w.d.perp.keys;
    let ix = sdk::refresh_risk_array(&MarketKeys { underlying: w.d.call.keys.market, ..perp });
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::AccountDiscriminatorMismatch)).await;

    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let ix = sdk::health_check(&perp.market, &w.alice.account, i64::MIN, 0, metas.clone());
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::AccountDiscriminatorMismatch)).await;

    let keys = BankKeys { bank: w.bob.account, ..w.market.usdc };
    let ix = sdk::withdraw(&w.market.group, &w.alice.account, &keys, &w.alice.usdc_wallet, &w.alice.owner.pubkey(), USDC, metas);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], anchor(ErrorCode::AccountDiscriminatorMismatch)).await;
}

/// Attack: accounts of other types stand in for margin accounts and banks in liquidations and
/// P&L settlement: the perp market as the liquidatee, the underlying as the loser, the
/// underlying (larger than a bank) as a token liquidation's asset bank. Defence:
/// `AccountLoader<MarginAccount>` and `AccountLoader<CollateralBank>` discriminators.
#[tokio::test]
async fn other_types_cannot_pose_as_margin_accounts_or_asset_banks() {
    let mut w = world().await;
    let perp = w.d.perp.keys;
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    let ix = sdk::liquidate_position(&perp, &w.alice.account, &w.alice.owner.pubkey(), &perp.market, 1_000, metas.clone());
    refused(&mut w.bank, &[ix], &[&w.alice.owner], anchor(ErrorCode::AccountDiscriminatorMismatch)).await;

    let ix = sdk::settle_pnl(&perp, &w.alice.account, &w.d.sol, metas.clone());
    refused(&mut w.bank, &[ix], &[], anchor(ErrorCode::AccountDiscriminatorMismatch)).await;

    let ix = sdk::liquidate_token(&w.market.group, &w.market.usdc.bank, &w.d.sol, &w.alice.account, &w.alice.owner.pubkey(), &w.bob.account, USDC as i64, metas);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], anchor(ErrorCode::AccountDiscriminatorMismatch)).await;
}

/// Attack: `venue_trade` reads its venue registration by hand (to give an unregistered venue its
/// own error). Bob's margin account begins like a `Venue` (group, then owner where a venue has
/// its program, then delegate where a venue has its authority): Bob makes a key of his the
/// delegate, approves "venue" = his owner key, and calls `venue_trade` with his account as the
/// registration and that key signing as the venue authority, buying from Alice at the band
/// edge. The perp market (group first, too) is tried the same way. Defence: `venue_trade`
/// requires the program as owner and the `Venue` discriminator (`VenueNotRegistered`).
#[tokio::test]
async fn a_margin_account_or_market_dressed_as_a_venue_registration_is_refused() {
    let mut w = world().await;
    let perp = w.d.perp.keys;
    let puppet = Keypair::new();
    let bob = w.bob.owner.pubkey();
    w.bank.send(&[sdk::set_delegate(&w.bob.account, &bob, &puppet.pubkey(), pm_integration_tests::delegate_limits())], &[&w.bob.owner]).await.unwrap();
    let limits = VenueLimits { max_fill_lots: i64::MAX, expiry_ts: i64::MAX };
    w.bank.send(&[sdk::approve_venue(&w.bob.account, &bob, &bob, limits)], &[&w.bob.owner]).await.unwrap();
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    for venue in [w.bob.account, perp.market] {
        let consents = (bob, w.alice.owner.pubkey());
        let ix = sdk::venue_trade(&perp, &venue, &puppet.pubkey(), &w.bob.account, &w.alice.account, 5_000, PERP_PRICE_PER_LOT * 98 / 100, consents, metas.clone());
        refused(&mut w.bank, &[ix], &[&puppet], margin(MarginError::VenueNotRegistered)).await;
    }
}

/// Attack: after expiry, a settlement price of $1 proposed from an account owned by the Pyth
/// receiver that is not a `PriceUpdateV2` (another receiver account type: same owner, same size,
/// another discriminator), and from one of this program's accounts. Defence:
/// `oracle::decode_update` checks the owner, then the `PriceUpdateV2` discriminator
/// (`OracleInvalidData`).
#[tokio::test]
async fn a_receiver_account_of_another_type_is_not_a_price_update() {
    let mut w = world().await;
    let now = w.bank.now().await;
    w.bank.advance_clock(w.d.expiry_ts - now + 10).await;
    let mut data = PythPrice::usd(w.market.sol_feed, 1.0, 5, w.d.expiry_ts + 1).account_data();
    data[..8].copy_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    let other_type = Pubkey::new_unique();
    let account = solana_account::Account { lamports: 10_000_000, data, owner: pyth_solana_receiver_sdk::ID, executable: false, rent_epoch: 0 };
    w.bank.set_raw_account(&other_type, account);
    let ix = sdk::propose_settlement_price(&w.d.call.keys, &other_type);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::OracleInvalidData)).await;
    let ix = sdk::propose_settlement_price(&w.d.call.keys, &w.d.perp.keys.market);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::OracleWrongOwner)).await;
}

/// Attack: a bankruptcy resolved with the SOL underlying and the USDC bank (program-owned, of
/// other types) passed where the perp markets go, so no market's loss index moves. Defence:
/// `resolve_bankruptcy` counts only accounts with the `Market` discriminator and needs every
/// perp market (`PerpMarketsMissing`).
#[tokio::test]
async fn other_types_do_not_count_as_perp_markets_in_a_bankruptcy() {
    let mut w = world().await;
    let carol = bankrupt(&mut w).await;
    let ix = sdk::resolve_bankruptcy(&w.market.group, &w.market.usdc.bank, &carol.account, &[w.d.sol, w.market.sol.bank], &[]);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::PerpMarketsMissing)).await;
}

//! Class 1, missing signer: an instruction names the owner, delegate, admin, risk authority,
//! liquidator or venue authority it acts for, and the attacker leaves that key unsigned (the
//! fee payer signs instead). Anchor's `Signer` account type refuses each with
//! `AccountNotSigner` before the handler runs.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_spl::token::spl_token;
use pm_client::sdk;
use portfolio_margin::instructions::VenueLimits;
use solana_signer::Signer;

/// Attack: the fee payer withdraws Alice's USDC into its own wallet, closes her account, makes
/// itself her delegate, approves a venue for her and creates an account in her name, each time
/// naming Alice's owner key without its signature; and deposits from her wallet into Bob's
/// account. Defence: `owner: Signer` in `Withdraw`, `CloseMarginAccount`, `SetDelegate`,
/// `ApproveVenue`, `CreateMarginAccount` and `authority: Signer` in `Deposit`.
#[tokio::test]
async fn owner_instructions_refuse_an_owner_that_did_not_sign() {
    let mut w = world().await;
    let thief = w.bank.payer().pubkey();
    let alice = w.alice.owner.pubkey();
    let thief_wallet = w.bank.create_token_account(&w.market.usdc.mint, &thief, &spl_token::ID).await.unwrap();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let withdraw = sdk::withdraw(&w.market.group, &w.alice.account, &w.market.usdc, &thief_wallet, &alice, 1_000 * USDC, metas);
    refused(&mut w.bank, &[unsigned(withdraw, &alice)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    // An empty account of Alice (index 1): closing it needs her signature even though the
    // rent would go to her.
    w.bank.send(&[sdk::create_margin_account(&w.market.group, &alice, &alice, 1)], &[&w.alice.owner]).await.unwrap();
    let empty = sdk::margin_account_address(&w.market.group, &alice, 1);
    refused(&mut w.bank, &[unsigned(sdk::close_margin_account(&empty, &alice), &alice)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let set_delegate = sdk::set_delegate(&w.alice.account, &alice, &thief, pm_integration_tests::delegate_limits());
    refused(&mut w.bank, &[unsigned(set_delegate, &alice)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let limits = VenueLimits { max_fill_lots: i64::MAX, expiry_ts: i64::MAX };
    let approve = sdk::approve_venue(&w.alice.account, &alice, &thief, limits);
    refused(&mut w.bank, &[unsigned(approve, &alice)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let create = sdk::create_margin_account(&w.market.group, &alice, &thief, 7);
    refused(&mut w.bank, &[unsigned(create, &alice)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    // Alice deposited her whole wallet: refill it, then try to move it into Bob's account.
    w.bank.mint_to(&w.market.usdc.mint, &w.alice.usdc_wallet, &spl_token::ID, 500 * USDC).await.unwrap();
    let deposit = sdk::deposit(&w.bob.account, &w.market.usdc, &w.alice.usdc_wallet, &alice, 500 * USDC);
    refused(&mut w.bank, &[unsigned(deposit, &alice)], &[], anchor(ErrorCode::AccountNotSigner)).await;
}

/// Attack: Bob sells Alice 5 SOL of the perp at the band's edge, signing only for himself and
/// naming Alice's owner as her authority; then the same with the buyer signing and the seller
/// unsigned. Defence: `buyer_authority: Signer` and `seller_authority: Signer` in `Trade`.
#[tokio::test]
async fn a_trade_needs_both_sides_to_sign() {
    let mut w = world().await;
    let perp = w.d.perp.keys;
    let (alice, bob) = (w.alice.owner.pubkey(), w.bob.owner.pubkey());
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    let edge = PERP_PRICE_PER_LOT * 102 / 100;
    let ix = sdk::trade(&perp, &w.alice.account, &alice, &w.bob.account, &bob, 5_000, edge, metas.clone());
    refused(&mut w.bank, &[unsigned(ix.clone(), &alice)], &[&w.bob.owner], anchor(ErrorCode::AccountNotSigner)).await;
    let low = PERP_PRICE_PER_LOT * 98 / 100;
    let ix = sdk::trade(&perp, &w.alice.account, &alice, &w.bob.account, &bob, 5_000, low, metas);
    refused(&mut w.bank, &[unsigned(ix, &bob)], &[&w.alice.owner], anchor(ErrorCode::AccountNotSigner)).await;
}

/// Attack: in the second group (whose admin and risk authority are not the fee payer), the fee
/// payer lists a bank, changes a bank's weights to zero, lists an underlying and a perp,
/// registers a venue and posts a vol, naming the admin or the risk authority without their
/// signatures. Defence:
/// `admin: Signer` in `AddCollateralBank`, `UpdateCollateralBank`, `AddUnderlying`,
/// `AddMarket`, `RegisterVenue`; `risk_authority: Signer` in `SetVolatility`.
#[tokio::test]
async fn admin_and_risk_authority_instructions_refuse_a_key_that_did_not_sign() {
    let mut w = world().await;
    let o = other_group(&mut w).await;
    let admin = o.admin.pubkey();
    let payer = w.bank.payer().pubkey();
    let mint = w.bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
    let config = bank_config(w.market.usdc.oracle, w.market.usdc_feed, (PPM, PPM), (PPM, PPM));
    let add_bank = sdk::add_collateral_bank(&o.group, &admin, &payer, &mint, &spl_token::ID, config);
    refused(&mut w.bank, &[unsigned(add_bank, &admin)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let zero = bank_config(w.market.sol.oracle, w.market.sol_feed, (0, 0), (10 * PPM, 10 * PPM));
    let update = sdk::update_collateral_bank(&o.group, &admin, &o.sol.bank, zero);
    refused(&mut w.bank, &[unsigned(update, &admin)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let config = pm_client::world::underlying_config(w.market.sol.oracle, w.market.sol_feed);
    let add_underlying = sdk::add_underlying(&o.group, &admin, &payer, 1, None, config);
    refused(&mut w.bank, &[unsigned(add_underlying, &admin)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let perp_config = portfolio_margin::instructions::PerpConfig { price_band_ppm: 200_000, ..pm_client::world::perp_config() };
    let add_perp = sdk::add_perp_market(&o.group, &admin, &payer, &o.underlying, 2, perp_config);
    refused(&mut w.bank, &[unsigned(add_perp, &admin)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let register = sdk::register_venue(&o.group, &admin, &payer, &payer);
    refused(&mut w.bank, &[unsigned(register, &admin)], &[], anchor(ErrorCode::AccountNotSigner)).await;

    let risk = o.risk_authority.pubkey();
    let vol = sdk::set_volatility(&o.group, &risk, &o.call.market, fixed::types::I32F32::from_num(5).to_bits());
    refused(&mut w.bank, &[unsigned(vol, &risk)], &[], anchor(ErrorCode::AccountNotSigner)).await;
}

/// Attack: Bob's account liquidates a liquidatable account (position, then token) with his
/// owner key named but not signing: a stranger would make Bob's account take over the risk.
/// Defence: `liquidator_authority: Signer` in `LiquidatePosition` and `LiquidateToken`.
#[tokio::test]
async fn liquidations_refuse_a_liquidator_that_did_not_sign() {
    let mut w = world().await;
    let victim = liquidatable(&mut w).await;
    let perp = w.d.perp.keys;
    let bob = w.bob.owner.pubkey();
    let metas = fill_metas(&mut w.bank, &w.market, &[w.bob.account, victim.account], &perp.market).await;
    let ix = sdk::liquidate_position(&perp, &w.bob.account, &bob, &victim.account, 30_000, metas.clone());
    refused(&mut w.bank, &[unsigned(ix, &bob)], &[], anchor(ErrorCode::AccountNotSigner)).await;
    let ix = sdk::liquidate_token(&w.market.group, &w.market.usdc.bank, &w.market.sol.bank, &w.bob.account, &bob, &victim.account, 1_000 * USDC as i64, metas);
    refused(&mut w.bank, &[unsigned(ix, &bob)], &[], anchor(ErrorCode::AccountNotSigner)).await;
}

/// Attack: the fee payer calls `venue_trade` directly for two accounts that approved a
/// registered venue, naming the venue's authority PDA (which only the venue program can sign
/// for) without its signature. Defence: `venue_authority: Signer` in `VenueTrade`.
#[tokio::test]
async fn venue_trade_refuses_a_venue_authority_that_did_not_sign() {
    let mut w = world().await;
    let payer = w.bank.payer().pubkey();
    w.bank.send(&[sdk::register_venue(&w.market.group, &payer, &payer, &rfq_venue::ID)], &[]).await.unwrap();
    let limits = VenueLimits { max_fill_lots: i64::MAX, expiry_ts: i64::MAX };
    for t in [&w.alice, &w.bob] {
        w.bank.send(&[sdk::approve_venue(&t.account, &t.owner.pubkey(), &rfq_venue::ID, limits)], &[&t.owner]).await.unwrap();
    }
    let perp = w.d.perp.keys;
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    let authority = pm_client::rfq::venue_authority();
    let venue = sdk::venue_address(&w.market.group, &rfq_venue::ID);
    let consents = (w.alice.owner.pubkey(), w.bob.owner.pubkey());
    let ix = sdk::venue_trade(&perp, &venue, &authority, &w.alice.account, &w.bob.account, 5_000, PERP_PRICE_PER_LOT * 102 / 100, consents, metas);
    refused(&mut w.bank, &[unsigned(ix, &authority)], &[], anchor(ErrorCode::AccountNotSigner)).await;
}

/// Attack: a stranger makes Alice's account buy the insurance fund's SOL (paying quote from her
/// balance), naming her owner without its signature. Defence: `buyer_authority: Signer` in
/// `BuyInsuranceCollateral`.
#[tokio::test]
async fn buying_insurance_collateral_refuses_a_buyer_that_did_not_sign() {
    let mut w = world().await;
    let alice = w.alice.owner.pubkey();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let ix = sdk::buy_insurance_collateral(&w.market.group, &w.market.sol, &w.market.usdc.bank, &w.alice.account, &alice, SOL, metas);
    refused(&mut w.bank, &[unsigned(ix, &alice)], &[], anchor(ErrorCode::AccountNotSigner)).await;
}

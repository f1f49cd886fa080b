//! Class 9, PDA sharing: one user's PDA used by another user. Every margin account is a PDA of
//! (group, owner, index) and records its owner; every vault is owned by its own bank's PDA.
//! The attacker signs with its own key and passes someone else's account, or pays one bank's
//! balance out of another bank's vault.

use super::common::*;
use anchor_spl::token::spl_token;
use pm_client::sdk::{self, BankKeys};
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::VenueLimits;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// Byte offset of `CollateralBank::insurance_native` in account data.
const BANK_INSURANCE_OFFSET: usize = 8 + 6 * 32 + 2 * 8 + 6 * 4 + 2 + 1 + 1 + 1 + 3 + 32;

/// Attack: Bob, signing with his own key, withdraws Alice's USDC into his wallet, makes himself
/// her delegate, approves a venue for her, closes her empty account, and deposits into her
/// account as if he were her delegate. Defence: `has_one = owner` on `margin_account` in
/// `Withdraw`, `SetDelegate`, `ApproveVenue`, `CloseMarginAccount` (`NotOwner`);
/// `is_owner_or_delegate` in `deposit` (`NotOwnerOrDelegate`).
#[tokio::test]
async fn another_owners_key_cannot_act_for_an_account() {
    let mut w = world().await;
    let bob = w.bob.owner.pubkey();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let ix = sdk::withdraw(&w.market.group, &w.alice.account, &w.market.usdc, &w.bob.usdc_wallet, &bob, 1_000 * USDC, metas);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::NotOwner)).await;

    let ix = sdk::set_delegate(&w.alice.account, &bob, &bob, pm_integration_tests::delegate_limits());
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::NotOwner)).await;

    let limits = VenueLimits { max_fill_lots: i64::MAX, expiry_ts: i64::MAX };
    let ix = sdk::approve_venue(&w.alice.account, &bob, &bob, limits);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::NotOwner)).await;

    let alice = w.alice.owner.pubkey();
    w.bank.send(&[sdk::create_margin_account(&w.market.group, &alice, &alice, 1)], &[&w.alice.owner]).await.unwrap();
    let empty = sdk::margin_account_address(&w.market.group, &alice, 1);
    refused(&mut w.bank, &[sdk::close_margin_account(&empty, &bob)], &[&w.bob.owner], margin(MarginError::NotOwner)).await;

    w.bank.mint_to(&w.market.usdc.mint, &w.bob.usdc_wallet, &spl_token::ID, 10 * USDC).await.unwrap();
    let ix = sdk::deposit(&w.alice.account, &w.market.usdc, &w.bob.usdc_wallet, &bob, 10 * USDC);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::NotOwnerOrDelegate)).await;
}

/// Attack: Bob, signing with his own key, makes Alice's account sell him 5 SOL of the perp at
/// the band edge, makes it the liquidator of a liquidatable account (taking over its risk), and
/// makes it buy the insurance fund's SOL. Defence: `is_owner_or_delegate` for each side in
/// `trade`, for the liquidator in `liquidate_position`, for the buyer in
/// `buy_insurance_collateral` (`NotOwnerOrDelegate`).
#[tokio::test]
async fn another_owners_key_cannot_trade_liquidate_or_buy_with_an_account() {
    let mut w = world().await;
    let victim = liquidatable(&mut w).await;
    let perp = w.d.perp.keys;
    let bob = w.bob.owner.pubkey();
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account, victim.account], &perp.market).await;
    let ix = sdk::trade(&perp, &w.bob.account, &bob, &w.alice.account, &bob, 5_000, PERP_PRICE_PER_LOT * 98 / 100, metas.clone());
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::NotOwnerOrDelegate)).await;

    let ix = sdk::liquidate_position(&perp, &w.alice.account, &bob, &victim.account, 30_000, metas.clone());
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::NotOwnerOrDelegate)).await;

    // The insurance fund holds 1 SOL in kind (as after a bankruptcy with SOL dust).
    let mut data = w.bank.account_data(&w.market.sol.bank).await.unwrap();
    data[BANK_INSURANCE_OFFSET..BANK_INSURANCE_OFFSET + 8].copy_from_slice(&SOL.to_le_bytes());
    w.bank.set_account_data(&w.market.sol.bank, data).await;
    let state: portfolio_margin::state::CollateralBank = w.bank.load(&w.market.sol.bank).await;
    assert_eq!(state.insurance_native, SOL);
    let ix = sdk::buy_insurance_collateral(&w.market.group, &w.market.sol, &w.market.usdc.bank, &w.alice.account, &bob, SOL, metas);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::NotOwnerOrDelegate)).await;
}

/// Attack: Alice's delegate (a key she lets trade) withdraws her USDC to its own wallet, closes
/// her empty account and replaces itself with a delegate without limits. Defence: `has_one =
/// owner` in `Withdraw`, `CloseMarginAccount`, `SetDelegate` (`NotOwner`): a delegate trades
/// and deposits only.
#[tokio::test]
async fn a_delegate_cannot_withdraw_close_or_re_delegate() {
    let mut w = world().await;
    let alice = w.alice.owner.pubkey();
    let delegate = Keypair::new();
    w.bank.send(&[sdk::set_delegate(&w.alice.account, &alice, &delegate.pubkey(), pm_integration_tests::delegate_limits())], &[&w.alice.owner]).await.unwrap();
    let wallet = w.bank.create_token_account(&w.market.usdc.mint, &delegate.pubkey(), &spl_token::ID).await.unwrap();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let ix = sdk::withdraw(&w.market.group, &w.alice.account, &w.market.usdc, &wallet, &delegate.pubkey(), 1_000 * USDC, metas);
    refused(&mut w.bank, &[ix], &[&delegate], margin(MarginError::NotOwner)).await;

    w.bank.send(&[sdk::create_margin_account(&w.market.group, &alice, &alice, 1)], &[&w.alice.owner]).await.unwrap();
    let empty = sdk::margin_account_address(&w.market.group, &alice, 1);
    w.bank.send(&[sdk::set_delegate(&empty, &alice, &delegate.pubkey(), pm_integration_tests::delegate_limits())], &[&w.alice.owner]).await.unwrap();
    refused(&mut w.bank, &[sdk::close_margin_account(&empty, &delegate.pubkey())], &[&delegate], margin(MarginError::NotOwner)).await;

    let unlimited = portfolio_margin::instructions::DelegateLimits { price_band_ppm: 200_000, max_slippage_native: i64::MAX, expiry_ts: i64::MAX };
    let ix = sdk::set_delegate(&w.alice.account, &delegate.pubkey(), &delegate.pubkey(), unlimited);
    refused(&mut w.bank, &[ix], &[&delegate], margin(MarginError::NotOwner)).await;
}

/// Attack: Bob pays out his USDC balance from the SOL vault (each vault's token authority is
/// its own bank's PDA; the withdrawal signs as the bank named): the USDC bank named with the SOL
/// vault and mint, 10 SOL to his SOL wallet. Defence: `has_one = vault` on `bank` in `Withdraw`
/// (`WrongVault`); the SOL vault's authority is the SOL bank, so the USDC bank's signature could
/// not move it either.
#[tokio::test]
async fn one_banks_vault_cannot_pay_another_banks_balance() {
    let mut w = world().await;
    let bob = w.bob.owner.pubkey();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.bob.account]).await;
    let keys = BankKeys { vault: w.market.sol.vault, mint: w.market.sol.mint, ..w.market.usdc };
    let ix = sdk::withdraw(&w.market.group, &w.bob.account, &keys, &w.bob.sol_wallet, &bob, 10 * SOL, metas);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::WrongVault)).await;
}

//! Class 10, closing and reviving: `close_margin_account` followed, in the same transaction, by
//! a transfer of lamports back to the closed address and an instruction using it (a deposit, a
//! trade), or the same across transactions. Anchor's `close` moves the lamports out, assigns
//! the account to the system program and shrinks its data to zero bytes: whatever lamports come
//! back, the address is a system account with no data, which no `AccountLoader<MarginAccount>`
//! accepts.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::solana_program::system_instruction;
use pm_client::sdk;
use portfolio_margin::error::MarginError;
use portfolio_margin::state::MarginAccount;
use solana_signer::Signer;

/// Attack: Dave closes his empty account, sends its rent back to the address and deposits
/// 100 USDC into it in the same transaction; then the same without sending the rent back.
/// Defence: `close = owner` in `CloseMarginAccount` (the account is left to the system program
/// with no data) and the owner check of `AccountLoader<MarginAccount>` in `Deposit`
/// (`AccountOwnedByWrongProgram`).
#[tokio::test]
async fn a_closed_account_revived_in_the_same_transaction_cannot_take_a_deposit() {
    let mut w = world().await;
    let dave = new_trader_with_usdc(&mut w, 100 * USDC).await;
    let owner = dave.owner.pubkey();
    let rent = w.bank.lamports(&dave.account).await;
    let close = sdk::close_margin_account(&dave.account, &owner);
    let revive = system_instruction::transfer(&owner, &dave.account, rent);
    let deposit = sdk::deposit(&dave.account, &w.market.usdc, &dave.usdc_wallet, &owner, 100 * USDC);
    refused(&mut w.bank, &[close.clone(), revive, deposit.clone()], &[&dave.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
    refused(&mut w.bank, &[close, deposit], &[&dave.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
}

/// Attack: Dave closes his empty account, revives it with its rent and buys 5 SOL of the perp
/// with it from Bob in the same transaction (an account the program no longer tracks holding a
/// position). Defence: as above, in `Trade` (`AccountOwnedByWrongProgram`).
#[tokio::test]
async fn a_closed_account_revived_in_the_same_transaction_cannot_trade() {
    let mut w = world().await;
    let dave = new_trader_with_usdc(&mut w, 0).await;
    let owner = dave.owner.pubkey();
    let perp = w.d.perp.keys;
    let metas = fill_metas(&mut w.bank, &w.market, &[w.bob.account], &perp.market).await;
    let rent = w.bank.lamports(&dave.account).await;
    let ixs = [
        sdk::close_margin_account(&dave.account, &owner),
        system_instruction::transfer(&owner, &dave.account, rent),
        sdk::trade(&perp, &dave.account, &owner, &w.bob.account, &w.bob.owner.pubkey(), 5_000, PERP_PRICE_PER_LOT, metas),
    ];
    refused(&mut w.bank, &ixs, &[&dave.owner, &w.bob.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
}

/// Attack: across transactions: Dave's account is closed, someone sends lamports to its
/// address, and a deposit and a health check use it. Defence: as above
/// (`AccountOwnedByWrongProgram`). Creating it again needs `release_prefunded_address` first
/// (the lamports would otherwise block `init` on this runtime, see `reinitialisation`) and
/// gives a fresh empty account (owner Dave, no balances), which is no revival: `init` in
/// `CreateMarginAccount` writes every field.
#[tokio::test]
async fn a_closed_account_revived_later_cannot_be_used_and_recreation_starts_empty() {
    let mut w = world().await;
    let dave = new_trader_with_usdc(&mut w, 100 * USDC).await;
    let owner = dave.owner.pubkey();
    w.bank.send(&[sdk::close_margin_account(&dave.account, &owner)], &[&dave.owner]).await.unwrap();
    assert_eq!(w.bank.account_data(&dave.account).await, None);
    w.bank.airdrop(&dave.account, 10_000_000).await.unwrap();
    let deposit = sdk::deposit(&dave.account, &w.market.usdc, &dave.usdc_wallet, &owner, 100 * USDC);
    refused(&mut w.bank, &[deposit], &[&dave.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
    let check = sdk::health_check(&w.market.group, &dave.account, i64::MIN, 0, vec![]);
    refused(&mut w.bank, &[check], &[], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;

    let create = sdk::create_margin_account(&w.market.group, &owner, &owner, 0);
    let address = portfolio_margin::instructions::ProgramAddress::MarginAccount { group: w.market.group, owner, account_index: 0 };
    w.bank.send(&[sdk::release_prefunded_address(address, &owner), create], &[&dave.owner]).await.unwrap();
    let state: MarginAccount = w.bank.load(&dave.account).await;
    assert!(state.is_empty() && state.owner == owner && state.group == w.market.group && state.being_liquidated == 0);
}

/// Attack: Alice closes her account while it holds 10,000 USDC, 10 SOL and a perp position
/// (taking its rent and abandoning the position's loss). Defence: `is_empty` in
/// `close_margin_account` (`AccountNotEmpty`).
#[tokio::test]
async fn an_account_holding_balances_or_positions_cannot_be_closed() {
    let mut w = world().await;
    let ix = sdk::close_margin_account(&w.alice.account, &w.alice.owner.pubkey());
    refused(&mut w.bank, &[ix], &[&w.alice.owner], margin(MarginError::AccountNotEmpty)).await;
}

/// A trader with `usdc_native` in its wallet and an empty margin account.
async fn new_trader_with_usdc(w: &mut World, usdc_native: u64) -> Trader {
    pm_integration_tests::new_trader(&mut w.bank, &w.market, usdc_native, 0).await.unwrap()
}

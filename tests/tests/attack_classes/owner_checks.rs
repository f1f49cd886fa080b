//! Class 2, owner checks: accounts with exactly the right layout, made by the attacker under
//! another owner (the system program or a program the attacker deployed): a copied
//! `MarginAccount`, `CollateralBank` or `Market` whose fields the attacker chose, SPL token
//! accounts that are not owned by a token program, and Pyth `PriceUpdateV2` accounts not owned
//! by the Pyth receiver.

use super::common::*;
use anchor_lang::error::ErrorCode;
use anchor_lang::prelude::Pubkey;
use anchor_spl::token::spl_token;
use pm_client::pyth::PythPrice;
use pm_client::sdk::{self, BankKeys};
use portfolio_margin::error::MarginError;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A margin account's first balance slot holds `balance_native` (offset of `balances[0]`).
const FIRST_BALANCE_OFFSET: usize = 8 + 3 * 32 + 8 + 32 + 5 * 8 + 8 + 32 + 32;

/// Mallory: a key with lamports, a USDC wallet, and nothing in the group.
async fn mallory(w: &mut World) -> (Keypair, Pubkey) {
    let mallory = Keypair::new();
    w.bank.airdrop(&mallory.pubkey(), SOL).await.unwrap();
    let wallet = w.bank.create_token_account(&w.market.usdc.mint, &mallory.pubkey(), &spl_token::ID).await.unwrap();
    (mallory, wallet)
}

/// Attack: Mallory copies Alice's margin account (10,000 USDC) to an address she controls,
/// writes herself in as owner and a billion USDC in the first balance, once under a program
/// she deployed and once under the system program, and withdraws from it. Defence: Anchor's
/// `AccountLoader<MarginAccount>` owner check (`AccountOwnedByWrongProgram`).
#[tokio::test]
async fn a_margin_account_copy_owned_by_another_program_cannot_withdraw() {
    let mut w = world().await;
    let (mallory, wallet) = mallory(&mut w).await;
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    for owner_program in [Pubkey::new_unique(), anchor_lang::system_program::ID] {
        let fake = look_alike(&mut w.bank, &w.alice.account, owner_program, |data| {
            data[MARGIN_OWNER_OFFSET..MARGIN_OWNER_OFFSET + 32].copy_from_slice(mallory.pubkey().as_ref());
            data[FIRST_BALANCE_OFFSET..FIRST_BALANCE_OFFSET + 8].copy_from_slice(&(1_000_000_000 * USDC as i64).to_le_bytes());
        })
        .await;
        let ix = sdk::withdraw(&w.market.group, &fake, &w.market.usdc, &wallet, &mallory.pubkey(), 10_000 * USDC, metas.clone());
        refused(&mut w.bank, &[ix], &[&mallory], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
    }
}

/// Attack: Mallory copies the USDC bank under her own program with its vault replaced by her
/// second wallet, and deposits into her margin account through it: the tokens would stay hers
/// while the account is credited. Defence: `AccountLoader<CollateralBank>` owner check in
/// `Deposit`.
#[tokio::test]
async fn a_bank_copy_owned_by_another_program_cannot_take_a_deposit() {
    let mut w = world().await;
    let (mallory, wallet) = mallory(&mut w).await;
    let second = w.bank.create_token_account(&w.market.usdc.mint, &mallory.pubkey(), &spl_token::ID).await.unwrap();
    w.bank.mint_to(&w.market.usdc.mint, &wallet, &spl_token::ID, 100 * USDC).await.unwrap();
    w.bank.send(&[sdk::create_margin_account(&w.market.group, &mallory.pubkey(), &mallory.pubkey(), 0)], &[&mallory]).await.unwrap();
    let account = sdk::margin_account_address(&w.market.group, &mallory.pubkey(), 0);
    let fake_bank = look_alike(&mut w.bank, &w.market.usdc.bank, Pubkey::new_unique(), |data| {
        data[8 + 64..8 + 96].copy_from_slice(second.as_ref());
    })
    .await;
    let keys = BankKeys { bank: fake_bank, vault: second, ..w.market.usdc };
    let ix = sdk::deposit(&account, &keys, &wallet, &mallory.pubkey(), 100 * USDC);
    refused(&mut w.bank, &[ix], &[&mallory], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
}

/// Attack: Alice and Bob collude through a copy of the perp market, owned by their program,
/// whose price band is 100%: Bob sells to Alice at one native unit per lot. Defence:
/// `AccountLoader<Market>` owner check in `Trade`.
#[tokio::test]
async fn a_market_copy_owned_by_another_program_cannot_be_traded() {
    let mut w = world().await;
    let perp = w.d.perp.keys;
    let fake = look_alike(&mut w.bank, &perp.market, Pubkey::new_unique(), |_| {}).await;
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    let keys = sdk::MarketKeys { market: fake, ..perp };
    let ix = sdk::trade(&keys, &w.alice.account, &w.alice.owner.pubkey(), &w.bob.account, &w.bob.owner.pubkey(), 10_000, 1, metas);
    refused(&mut w.bank, &[ix], &[&w.alice.owner, &w.bob.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
}

/// Attack: SPL token account look-alikes (the layout of Alice's USDC wallet with a huge amount)
/// owned by a program that is not a token program: as the source of a deposit, as the
/// destination of a withdrawal, and as the bank's vault. Defence: Anchor's
/// `InterfaceAccount<TokenAccount>` accepts only accounts owned by SPL Token or Token-2022
/// (`AccountOwnedByWrongProgram`).
#[tokio::test]
async fn token_account_look_alikes_owned_by_another_program_are_refused() {
    let mut w = world().await;
    let alice = w.alice.owner.pubkey();
    let fake = look_alike(&mut w.bank, &w.alice.usdc_wallet, Pubkey::new_unique(), |data| {
        data[64..72].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    })
    .await;
    let deposit = sdk::deposit(&w.alice.account, &w.market.usdc, &fake, &alice, 1_000_000 * USDC);
    refused(&mut w.bank, &[deposit], &[&w.alice.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;

    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let withdraw = sdk::withdraw(&w.market.group, &w.alice.account, &w.market.usdc, &fake, &alice, USDC, metas);
    refused(&mut w.bank, &[withdraw], &[&w.alice.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;

    w.bank.mint_to(&w.market.usdc.mint, &w.alice.usdc_wallet, &spl_token::ID, 100 * USDC).await.unwrap();
    let keys = BankKeys { vault: fake, ..w.market.usdc };
    let deposit = sdk::deposit(&w.alice.account, &keys, &w.alice.usdc_wallet, &alice, 100 * USDC);
    refused(&mut w.bank, &[deposit], &[&w.alice.owner], anchor(ErrorCode::AccountOwnedByWrongProgram)).await;
}

/// Attack: the SOL price account the bank and the underlying are configured with is owned by a
/// program that is not the Pyth receiver (an admin pointed them at an account such a program
/// writes, here at $1,000,000): Alice withdraws against it and a keeper refreshes the perp's
/// array at it. Then, after expiry, a settlement price of $1 is proposed from an update owned
/// by another program. Defence: `oracle::decode_update` requires the Pyth receiver as owner
/// (`OracleWrongOwner`).
#[tokio::test]
async fn price_updates_not_owned_by_the_pyth_receiver_are_refused() {
    let mut w = world().await;
    let now = w.bank.now().await;
    let pumped = PythPrice::usd(w.market.sol_feed, 1_000_000.0, 5, now);
    w.bank.set_pyth_price(&w.market.sol.oracle, &pumped, Some(Pubkey::new_unique()));
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let ix = sdk::withdraw(&w.market.group, &w.alice.account, &w.market.usdc, &w.alice.usdc_wallet, &w.alice.owner.pubkey(), 10_000 * USDC, metas);
    refused(&mut w.bank, &[ix], &[&w.alice.owner], margin(MarginError::OracleWrongOwner)).await;
    refused(&mut w.bank, &[sdk::refresh_risk_array(&w.d.perp.keys)], &[], margin(MarginError::OracleWrongOwner)).await;

    w.bank.advance_clock(w.d.expiry_ts - now + 10).await;
    let dumped = Pubkey::new_unique();
    w.bank.set_pyth_price(&dumped, &PythPrice::usd(w.market.sol_feed, 1.0, 5, w.d.expiry_ts + 1), Some(Pubkey::new_unique()));
    let ix = sdk::propose_settlement_price(&w.d.call.keys, &dumped);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::OracleWrongOwner)).await;
}

/// Attack: a bankrupt account's loss is resolved with a copy of the perp market owned by
/// another program in place of the real one, so the loss index of the real market (which its
/// holders pay) would not move. Defence: `resolve_bankruptcy` counts only markets owned by the
/// program with the `Market` discriminator and requires all of the group's perp markets
/// (`PerpMarketsMissing`).
#[tokio::test]
async fn a_perp_market_copy_owned_by_another_program_does_not_count_in_a_bankruptcy() {
    let mut w = world().await;
    let carol = bankrupt(&mut w).await;
    let fake = look_alike(&mut w.bank, &w.d.perp.keys.market, Pubkey::new_unique(), |_| {}).await;
    let ix = sdk::resolve_bankruptcy(&w.market.group, &w.market.usdc.bank, &carol.account, &[fake], &[]);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::PerpMarketsMissing)).await;
}

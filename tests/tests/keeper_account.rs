//! The keeper's own account: it takes positions and collateral over and never unwinds them, so
//! its slots fill up. Before they do, the keeper moves to a fresh account of the same owner and
//! goes on liquidating.

use anchor_spl::token::spl_token;
use pm_client::world::{block_trade, setup_derivatives};
use pm_client::keeper::{Keeper, Liquidator};
use pm_client::local_bank::LocalBank;
use pm_client::sdk;
use pm_integration_tests::*;
use portfolio_margin::state::MarginAccount;
use solana_signer::Signer;

const USDC: u64 = 1_000_000;

#[tokio::test]
async fn a_keeper_whose_account_is_nearly_full_moves_to_a_fresh_one_and_goes_on() {
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await.unwrap();
    let d = setup_derivatives(&mut bank, &market).await.unwrap();
    let keeper = new_trader(&mut bank, &market, 100_000 * USDC, 0).await.unwrap();
    let owner = keeper.owner.insecure_clone();
    bank.send(&[sdk::deposit(&keeper.account, &market.usdc, &keeper.usdc_wallet, &owner.pubkey(), 100_000 * USDC)], &[&owner]).await.unwrap();
    // Collateral taken over in six other tokens: seven of eight balance slots used.
    for i in 0..6 {
        let mint = bank.create_mint(&spl_token::ID, 6, &[]).await.unwrap().pubkey();
        let oracle = anchor_lang::prelude::Pubkey::new_unique();
        let feed = pm_client::pyth::feed_id_for(&format!("K{i}/USD"));
        post_price(&mut bank, &oracle, feed, 1.0).await;
        let config = bank_config(oracle, feed, (900_000, 950_000), (1_100_000, 1_050_000));
        let keys = list_bank(&mut bank, &market.admin, &market.group, &mint, &spl_token::ID, config).await.unwrap();
        let wallet = bank.create_token_account(&mint, &owner.pubkey(), &spl_token::ID).await.unwrap();
        bank.mint_to(&mint, &wallet, &spl_token::ID, USDC).await.unwrap();
        bank.send(&[sdk::deposit(&keeper.account, &keys, &wallet, &owner.pubkey(), USDC)], &[&owner]).await.unwrap();
    }
    // A liquidatable account: 1,000 USDC, long 30 SOL at $150, SOL at $135.
    let victim = new_trader(&mut bank, &market, 1_000 * USDC, 0).await.unwrap();
    let v_owner = victim.owner.insecure_clone();
    bank.send(&[sdk::deposit(&victim.account, &market.usdc, &victim.usdc_wallet, &v_owner.pubkey(), 1_000 * USDC)], &[&v_owner]).await.unwrap();
    let dealer = new_trader(&mut bank, &market, 1_000_000 * USDC, 0).await.unwrap();
    let d_owner = dealer.owner.insecure_clone();
    bank.send(&[sdk::deposit(&dealer.account, &market.usdc, &dealer.usdc_wallet, &d_owner.pubkey(), 1_000_000 * USDC)], &[&d_owner]).await.unwrap();
    block_trade(&mut bank, &market, &d.perp.keys, &victim, &dealer, 30_000, 150_000).await.unwrap();
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 135.0).await;

    let liquidator = Liquidator { owner: keeper.owner.insecure_clone(), account: keeper.account };
    let mut k = Keeper::discover(&mut bank, market.group, liquidator).await.unwrap();
    let report = k.run(&mut bank, &[victim.account, dealer.account, keeper.account], 5, false).await.unwrap();
    assert_eq!(report.rotations, 1, "{report}");
    assert!(report.position_liquidations > 0, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    let new = k.liquidator.account;
    assert_ne!(new, keeper.account);
    assert_eq!(new, sdk::margin_account_address(&market.group, &owner.pubkey(), 1));
    // The fresh account did the liquidation; the old one kept its collateral and only the quote
    // its init health did not need moved, to the native unit.
    let old: MarginAccount = bank.load(&keeper.account).await;
    let fresh: MarginAccount = bank.load(&new).await;
    assert_eq!(old.active_balances().count(), 6, "the six other tokens stay");
    assert!(fresh.position_index(&d.perp.keys.market).is_some());
    let quote = |a: &MarginAccount| a.balance_index(&market.usdc.bank).map(|i| a.balances[i].balance_native).unwrap_or(0);
    // All 100,000 USDC moved (the six tokens keep the old account's init health >= 0), and a
    // position liquidation leaves the liquidator's quote balance as it was (the price goes into
    // the position's cash).
    assert_eq!(quote(&old), 0);
    assert_eq!(quote(&fresh), 100_000 * USDC as i64);
}

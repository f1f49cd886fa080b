//! Class 3, account matching: real accounts of this program, owned and typed correctly, but of
//! the wrong group, bank, market, underlying, oracle or venue. A second group run by an
//! attacker (its own admin and risk authority) supplies look-alike banks, markets and accounts
//! on the same mints and Pyth feeds.

use super::common::*;
use anchor_lang::prelude::AccountMeta;
use pm_client::sdk::{self, BankKeys, MarketKeys};
use portfolio_margin::error::MarginError;
use solana_signer::Signer;

/// Attack: Alice withdraws her USDC through the other group's USDC bank and vault, through her
/// group's USDC bank with the SOL bank's vault or mint, and names the other group as hers.
/// Defence: `has_one = group`, `has_one = vault`, `has_one = mint` on `bank` and `has_one =
/// group` on `margin_account` in `Withdraw`.
#[tokio::test]
async fn a_withdrawal_refuses_a_bank_vault_mint_or_group_that_is_not_the_accounts() {
    let mut w = world().await;
    let o = other_group(&mut w).await;
    let alice = w.alice.owner.pubkey();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.alice.account]).await;
    let usdc = w.market.usdc;
    let cases = [
        (w.market.group, o.usdc, MarginError::WrongGroup),
        (w.market.group, BankKeys { vault: w.market.sol.vault, ..usdc }, MarginError::WrongVault),
        (w.market.group, BankKeys { vault: o.usdc.vault, ..usdc }, MarginError::WrongVault),
        (w.market.group, BankKeys { mint: w.market.sol.mint, ..usdc }, MarginError::WrongMint),
        (o.group, usdc, MarginError::WrongGroup),
    ];
    for (group, keys, expected) in cases {
        let ix = sdk::withdraw(&group, &w.alice.account, &keys, &w.alice.usdc_wallet, &alice, 1_000 * USDC, metas.clone());
        refused(&mut w.bank, &[ix], &[&w.alice.owner], margin(expected)).await;
    }
}

/// Attack: a withdrawal whose health is computed from the wrong accounts: the USDC bank priced
/// by the SOL bank's oracle, or the other group's banks and oracles in place of the account's.
/// Defence: `health::HealthInputs::load_many` finds each bank by the balance's key and its
/// oracle by the bank's configured key (`oracle::read_oracle_account`: `OracleKeyMismatch`;
/// a bank not passed: `HealthAccountsMismatch`).
#[tokio::test]
async fn health_refuses_another_banks_oracle_and_another_groups_accounts() {
    let mut w = world().await;
    let o = other_group(&mut w).await;
    // Bob holds USDC and SOL and the perp: his health needs both banks, both oracles, the
    // perp, the underlying.
    let bob = w.bob.owner.pubkey();
    let metas = health_metas(&mut w.bank, &w.market.group, &[w.bob.account]).await;
    let usdc_oracle_swapped: Vec<AccountMeta> = metas.iter().filter(|m| m.pubkey != w.market.usdc.oracle).cloned().collect();
    let ix = sdk::withdraw(&w.market.group, &w.bob.account, &w.market.sol, &w.bob.sol_wallet, &bob, SOL, usdc_oracle_swapped);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::OracleKeyMismatch)).await;

    let other: Vec<AccountMeta> = metas
        .iter()
        .map(|m| {
            let key = if m.pubkey == w.market.usdc.bank {
                o.usdc.bank
            } else if m.pubkey == w.d.perp.keys.market {
                o.perp.market
            } else if m.pubkey == w.d.sol {
                o.underlying
            } else {
                m.pubkey
            };
            AccountMeta::new_readonly(key, false)
        })
        .collect();
    let ix = sdk::withdraw(&w.market.group, &w.bob.account, &w.market.sol, &w.bob.sol_wallet, &bob, SOL, other);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::HealthAccountsMismatch)).await;
}

/// Attack: a block trade between Alice and Bob through accounts that do not belong together:
/// the other group's perp (the group passed is Alice's), the demo perp with the other group's
/// underlying, the USDC oracle as the SOL price, the SOL bank or the other group's USDC bank as
/// the quote bank, and the other group as the group. Defence: `has_one = group` and `has_one =
/// underlying` on `market` and `has_one = group` on both accounts in `Trade`;
/// `oracle::read_oracle_account` (`OracleKeyMismatch`); `Group::require_quote_bank`
/// (`WrongQuoteBank`).
#[tokio::test]
async fn a_trade_refuses_markets_underlyings_oracles_and_quote_banks_that_do_not_belong() {
    let mut w = world().await;
    let o = other_group(&mut w).await;
    let perp = w.d.perp.keys;
    let metas = fill_metas(&mut w.bank, &w.market, &[w.alice.account, w.bob.account], &perp.market).await;
    let cases = [
        (MarketKeys { market: o.perp.market, ..perp }, MarginError::WrongGroup),
        (MarketKeys { underlying: o.underlying, ..perp }, MarginError::WrongUnderlying),
        (MarketKeys { oracle: w.market.usdc.oracle, ..perp }, MarginError::OracleKeyMismatch),
        (MarketKeys { quote_bank: w.market.sol.bank, ..perp }, MarginError::WrongQuoteBank),
        (MarketKeys { quote_bank: o.usdc.bank, ..perp }, MarginError::WrongQuoteBank),
        (MarketKeys { group: o.group, ..perp }, MarginError::WrongGroup),
    ];
    for (keys, expected) in cases {
        let ix = sdk::trade(&keys, &w.alice.account, &w.alice.owner.pubkey(), &w.bob.account, &w.bob.owner.pubkey(), 1_000, PERP_PRICE_PER_LOT, metas.clone());
        refused(&mut w.bank, &[ix], &[&w.alice.owner, &w.bob.owner], margin(expected)).await;
    }
    // A market refreshed against another underlying (the attacker group's SOL underlying,
    // whose oracle configuration the attacker chose).
    let ix = sdk::refresh_risk_array(&MarketKeys { underlying: o.underlying, ..perp });
    refused(&mut w.bank, &[ix], &[], margin(MarginError::WrongUnderlying)).await;
}

/// Attack: the attacker's group admin and risk authority act on the demo group by passing their
/// own group: zero the SOL bank's weights, post a vol on the demo call, list a market on the
/// demo underlying, link the demo USDC bank to the attacker's underlying. Defence: `has_one =
/// group` on `bank` (`UpdateCollateralBank`), `market` (`SetVolatility`), `underlying`
/// (`AddMarket`); `add_underlying` requires a linked bank of the same group, not yet linked
/// (`BankAlreadyLinked`).
#[tokio::test]
async fn another_groups_admin_cannot_configure_this_group() {
    let mut w = world().await;
    let o = other_group(&mut w).await;
    let admin = o.admin.pubkey();
    let payer = w.bank.payer().pubkey();
    let zero = bank_config(w.market.sol.oracle, w.market.sol_feed, (0, 0), (10 * PPM, 10 * PPM));
    let ix = sdk::update_collateral_bank(&o.group, &admin, &w.market.sol.bank, zero);
    refused(&mut w.bank, &[ix], &[&o.admin], margin(MarginError::WrongGroup)).await;

    let vol = fixed::types::I32F32::from_num(5).to_bits();
    let ix = sdk::set_volatility(&o.group, &o.risk_authority.pubkey(), &w.d.call.keys.market, vol);
    refused(&mut w.bank, &[ix], &[&o.risk_authority], margin(MarginError::WrongGroup)).await;

    let perp_config = portfolio_margin::instructions::PerpConfig { price_band_ppm: 200_000, ..pm_client::world::perp_config() };
    let ix = sdk::add_perp_market(&o.group, &admin, &payer, &w.d.sol, 2, perp_config);
    refused(&mut w.bank, &[ix], &[&o.admin], margin(MarginError::WrongGroup)).await;

    let config = pm_client::world::underlying_config(w.market.sol.oracle, w.market.sol_feed);
    let ix = sdk::add_underlying(&o.group, &admin, &payer, 1, Some(w.market.usdc.bank), config);
    refused(&mut w.bank, &[ix], &[&o.admin], margin(MarginError::BankAlreadyLinked)).await;
}

/// Attack: accounts of the attacker's group in the demo group's permissionless and liquidation
/// instructions: settle P&L from Bob into the attacker's account, liquidate with it, take the
/// other group's SOL bank as the asset of a token liquidation, and settle an expired option
/// with the other group's quote bank. Defence: `has_one = group` on `winner` (`SettlePnl`),
/// `liquidator` (`LiquidatePosition`), `asset_bank` (`LiquidateToken`);
/// `Group::require_quote_bank` in `settle_expired_option`.
#[tokio::test]
async fn settlement_and_liquidation_refuse_accounts_of_another_group() {
    let mut w = world().await;
    let o = other_group(&mut w).await;
    let victim = liquidatable(&mut w).await;
    let perp = w.d.perp.keys;
    let metas = fill_metas(&mut w.bank, &w.market, &[w.bob.account, victim.account], &perp.market).await;
    // The SOL drop left Bob (short) with a gain and the victim with a loss.
    let ix = sdk::settle_pnl(&perp, &o.account, &victim.account, metas.clone());
    refused(&mut w.bank, &[ix], &[], margin(MarginError::WrongGroup)).await;

    let ix = sdk::liquidate_position(&perp, &o.account, &o.admin.pubkey(), &victim.account, 30_000, metas.clone());
    refused(&mut w.bank, &[ix], &[&o.admin], margin(MarginError::WrongGroup)).await;

    let ix = sdk::liquidate_token(&w.market.group, &w.market.usdc.bank, &o.sol.bank, &w.bob.account, &w.bob.owner.pubkey(), &victim.account, 100 * USDC as i64, metas);
    refused(&mut w.bank, &[ix], &[&w.bob.owner], margin(MarginError::WrongGroup)).await;

    let ix = sdk::settle_expired_option(&MarketKeys { quote_bank: o.usdc.bank, ..w.d.call.keys }, &[w.alice.account]);
    refused(&mut w.bank, &[ix], &[], margin(MarginError::WrongQuoteBank)).await;
}

//! `pm demo`: the product walk-through on an embedded in-process bank.

use crate::health::HealthSnapshot;
use crate::local_bank::LocalBank;
use crate::pyth::{feed_id_for, PythPrice};
use crate::sdk::{self, BankKeys};
use anchor_lang::prelude::Pubkey;
use anchor_lang::AnchorDeserialize;
use anchor_spl::token::spl_token;
use anyhow::{anyhow, Result};
use portfolio_margin::health::HealthReport;
use portfolio_margin::instructions::GroupParams;
use portfolio_margin::state::{BankConfig, CollateralBank, PPM};
use risk_engine::health::HealthKind;
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A group with a USDC (quote) bank and a SOL bank on the embedded bank.
pub struct DemoMarket {
    pub admin: Keypair,
    pub group: Pubkey,
    pub usdc: BankKeys,
    pub sol: BankKeys,
    pub usdc_feed: [u8; 32],
    pub sol_feed: [u8; 32],
}

/// Default configuration of a collateral bank for `oracle`/`feed_id`.
pub fn bank_config(oracle: Pubkey, feed_id: [u8; 32], asset: (u32, u32), liability: (u32, u32)) -> BankConfig {
    BankConfig {
        oracle,
        feed_id,
        init_asset_weight_ppm: asset.0,
        maint_asset_weight_ppm: asset.1,
        init_liability_weight_ppm: liability.0,
        maint_liability_weight_ppm: liability.1,
        deposit_limit_native: u64::MAX / 4,
        max_price_age_seconds: 60,
        max_confidence_ppm: 20_000,
    }
}

/// Posts a fresh, fully verified USD price for `feed` on `oracle`.
pub async fn post_price(bank: &mut LocalBank, oracle: &Pubkey, feed: [u8; 32], price: f64) {
    let now = bank.now().await;
    bank.set_pyth_price(oracle, &PythPrice::usd(feed, price, 5, now), None);
}

/// Lists a bank for `mint` and returns its keys.
pub async fn list_bank(
    bank: &mut LocalBank,
    admin: &Keypair,
    group: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
    config: BankConfig,
) -> Result<BankKeys> {
    let ix = sdk::add_collateral_bank(group, &admin.pubkey(), &bank.payer().pubkey(), mint, token_program, config);
    bank.send(&[ix], &[admin]).await?;
    let key = sdk::bank_address(group, mint);
    let state: CollateralBank = bank.load(&key).await;
    Ok(BankKeys::of(key, &state))
}

/// Creates the demo group: USDC (6 decimals, weights 1) and SOL (9 decimals, init 0.8 / maint
/// 0.9 asset, 1.2 / 1.1 liability), with oracles at $1 and $150.
pub async fn setup_market(bank: &mut LocalBank) -> Result<DemoMarket> {
    let admin = bank.payer();
    let usdc_mint = bank.create_mint(&spl_token::ID, 6, &[]).await?.pubkey();
    let sol_mint = bank.create_mint(&spl_token::ID, 9, &[]).await?.pubkey();
    let params = GroupParams { unrealized_init_weight_ppm: 500_000, conf_multiplier_ppm: 2 * PPM };
    bank.send(&[sdk::create_group(&admin.pubkey(), &admin.pubkey(), &usdc_mint, 0, params)], &[]).await?;
    let group = sdk::group_address(&admin.pubkey(), 0);
    let (usdc_oracle, sol_oracle) = (Pubkey::new_unique(), Pubkey::new_unique());
    let (usdc_feed, sol_feed) = (feed_id_for("USDC/USD"), feed_id_for("SOL/USD"));
    post_price(bank, &usdc_oracle, usdc_feed, 1.0).await;
    post_price(bank, &sol_oracle, sol_feed, 150.0).await;
    let usdc_config = bank_config(usdc_oracle, usdc_feed, (PPM, PPM), (PPM, PPM));
    let usdc = list_bank(bank, &admin, &group, &usdc_mint, &spl_token::ID, usdc_config).await?;
    let sol_config = bank_config(sol_oracle, sol_feed, (800_000, 900_000), (1_200_000, 1_100_000));
    let sol = list_bank(bank, &admin, &group, &sol_mint, &spl_token::ID, sol_config).await?;
    Ok(DemoMarket { admin, group, usdc, sol, usdc_feed, sol_feed })
}

/// A funded trader with a margin account.
pub struct Trader {
    pub owner: Keypair,
    pub account: Pubkey,
    pub usdc_wallet: Pubkey,
    pub sol_wallet: Pubkey,
}

/// Creates a trader with `usdc` and `sol` (native units) in wallets and an empty margin account.
pub async fn new_trader(bank: &mut LocalBank, market: &DemoMarket, usdc: u64, sol: u64) -> Result<Trader> {
    let owner = Keypair::new();
    bank.airdrop(&owner.pubkey(), 1_000_000_000).await?;
    let usdc_wallet = bank.create_token_account(&market.usdc.mint, &owner.pubkey(), &spl_token::ID).await?;
    let sol_wallet = bank.create_token_account(&market.sol.mint, &owner.pubkey(), &spl_token::ID).await?;
    bank.mint_to(&market.usdc.mint, &usdc_wallet, &spl_token::ID, usdc).await?;
    bank.mint_to(&market.sol.mint, &sol_wallet, &spl_token::ID, sol).await?;
    let ix = sdk::create_margin_account(&market.group, &owner.pubkey(), &owner.pubkey(), 0);
    bank.send(&[ix], &[&owner]).await?;
    let account = sdk::margin_account_address(&market.group, &owner.pubkey(), 0);
    Ok(Trader { owner, account, usdc_wallet, sol_wallet })
}

/// Runs `health_check` on-chain and decodes the returned breakdown.
pub async fn onchain_health(bank: &mut LocalBank, group: &Pubkey, account: &Pubkey, kind: HealthKind) -> Result<HealthReport> {
    let snapshot = HealthSnapshot::load(bank, group, account).await?;
    let metas = snapshot.health_accounts(&snapshot.account);
    let outcome = bank.send(&[sdk::health_check(group, account, i64::MIN, kind as u8, metas)], &[]).await?;
    HealthReport::deserialize(&mut &outcome.return_data[..]).map_err(|e| anyhow!("bad return data: {e}"))
}

fn usd(native: i64) -> String {
    format!("${:.2}", native as f64 / 1e6)
}

async fn print_health(bank: &mut LocalBank, market: &DemoMarket, trader: &Trader) -> Result<()> {
    let snapshot = HealthSnapshot::load(bank, &market.group, &trader.account).await?;
    for kind in [HealthKind::Init, HealthKind::Maint] {
        let onchain = onchain_health(bank, &market.group, &trader.account, kind).await?;
        let offchain = HealthReport::from_breakdown(&snapshot.health(kind)?).map_err(|e| anyhow!("{e}"))?;
        println!(
            "  {:<6} health {:>12}  (collateral value {:>12}, requirement {:>10})  client prediction {}",
            format!("{kind:?}"),
            usd(onchain.health_native),
            usd(onchain.token_value_native),
            usd(onchain.requirement_native),
            if onchain == offchain { "matches chain" } else { "DIFFERS" }
        );
        if onchain != offchain {
            return Err(anyhow!("client and chain disagree: {offchain:?} vs {onchain:?}"));
        }
    }
    let max_sol = snapshot.max_withdrawal(&market.sol.bank)?;
    let max_usdc = snapshot.max_withdrawal(&market.usdc.bank)?;
    println!("  largest allowed withdrawal: {:.9} SOL or {} USDC", max_sol as f64 / 1e9, usd(max_usdc as i64));
    Ok(())
}

/// The walk-through.
pub async fn run() -> Result<()> {
    println!("== portfolio-margin demo (embedded in-process bank, real SPL Token program) ==\n");
    let mut bank = LocalBank::start().await;
    let market = setup_market(&mut bank).await?;
    println!("group {}\n  USDC bank {} (weights 1.0)\n  SOL  bank {} (asset weight init 0.8 / maint 0.9)", market.group, market.usdc.bank, market.sol.bank);
    println!("  oracles: Pyth PriceUpdateV2, USDC $1.00, SOL $150.00\n");

    let trader = new_trader(&mut bank, &market, 1_000_000_000, 20_000_000_000).await?;
    let owner = trader.owner.insecure_clone();
    bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), 500_000_000)], &[&owner]).await?;
    bank.send(&[sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &owner.pubkey(), 10_000_000_000)], &[&owner]).await?;
    println!("trader {} deposited 500 USDC and 10 SOL", owner.pubkey());
    print_health(&mut bank, &market, &trader).await?;

    let snapshot = HealthSnapshot::load(&mut bank, &market.group, &trader.account).await?;
    let max_sol = snapshot.max_withdrawal(&market.sol.bank)?;
    let half = max_sol / 2;
    let after = sdk::after_withdrawal(&snapshot.account, &market.sol.bank, half);
    let metas = snapshot.health_accounts(&after);
    bank.send(&[sdk::withdraw(&market.group, &trader.account, &market.sol, &trader.sol_wallet, &owner.pubkey(), half, metas)], &[&owner]).await?;
    println!("\nwithdrew {:.9} SOL (half of the maximum)", half as f64 / 1e9);
    print_health(&mut bank, &market, &trader).await?;

    println!("\nSOL oracle moves $150 -> $120 (new Pyth update)");
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 120.0).await;
    print_health(&mut bank, &market, &trader).await?;

    println!("\nportfolio margin on the risk engine (pm margin), for the next step (derivatives):");
    let portfolio: crate::margin_cli::Portfolio = serde_json::from_str(
        r#"{"underlyings":[{"symbol":"SOL","price":120.0}],
            "collateral":[{"symbol":"SOL","amount":10.0}],
            "positions":[{"underlying":"SOL","kind":"call","strike":140.0,"days_to_expiry":30.0,"vol":0.6,"qty":-10.0},
                         {"underlying":"SOL","kind":"put","strike":100.0,"days_to_expiry":30.0,"vol":0.7,"qty":10.0}]}"#,
    )?;
    print!("{}", crate::margin_cli::format_report(&crate::margin_cli::margin_report(&portfolio)?));
    println!("\ndemo complete");
    Ok(())
}

//! `pm demo`: the product walk-through on an embedded in-process bank.

use crate::health::HealthSnapshot;
use crate::local_bank::LocalBank;
use crate::sdk;
use crate::world::{block_trade, model_price_per_lot, new_trader, onchain_health, post_price, setup_derivatives, setup_market, DemoMarket, Trader};
use anyhow::{anyhow, Result};
use portfolio_margin::health::HealthReport;
use risk_engine::health::HealthKind;
use solana_signer::Signer;

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

    println!("\n== derivatives: SOL perp and 30-day options, margined with the collateral ==");
    // Put the SOL price back and list the markets.
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 150.0).await;
    let derivatives = setup_derivatives(&mut bank, &market).await?;
    println!("SOL underlying linked to the SOL bank (SOL collateral hedges inside the grid; bank weights now 0.95 / 0.98)");
    println!("markets: {} {}, {} {}, {} {}", derivatives.perp.label, derivatives.perp.keys.market, derivatives.call.label, derivatives.call.keys.market, derivatives.put.label, derivatives.put.keys.market);
    let dealer = new_trader(&mut bank, &market, 1_000_000_000_000, 0).await?;
    let dealer_owner = dealer.owner.insecure_clone();
    bank.send(&[sdk::deposit(&dealer.account, &market.usdc, &dealer.usdc_wallet, &dealer_owner.pubkey(), 500_000_000_000)], &[&dealer_owner]).await?;
    // The trader tops SOL back up to 10 and builds a collar plus a small perp hedge.
    let account: portfolio_margin::state::MarginAccount = bank.load(&trader.account).await;
    let held = account.balance_index(&market.sol.bank).map(|i| account.balances[i].balance_native).unwrap_or(0) as u64;
    bank.send(&[sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &owner.pubkey(), 10_000_000_000 - held)], &[&owner]).await?;
    let call_price = model_price_per_lot(&mut bank, &derivatives.call.keys.market).await;
    let put_price = model_price_per_lot(&mut bank, &derivatives.put.keys.market).await;
    block_trade(&mut bank, &market, &derivatives.call.keys, &dealer, &trader, 10_000, call_price).await?;
    block_trade(&mut bank, &market, &derivatives.put.keys, &trader, &dealer, 10_000, put_price).await?;
    block_trade(&mut bank, &market, &derivatives.perp.keys, &dealer, &trader, 2_000, 150_000).await?;
    println!(
        "trader holds 10 SOL, sold 10 x 160 calls at ${:.2}, bought 10 x 130 puts at ${:.2}, sold 2 SOL-PERP at $150",
        call_price as f64 / 1e3,
        put_price as f64 / 1e3
    );
    print_health(&mut bank, &market, &trader).await?;
    // The same book off-chain (`pm backtest --demo-books` backtests it).
    let portfolio = crate::demo_books::demo_trader_book().portfolio()?;
    let report = crate::margin_cli::margin_report(&portfolio)?;
    let maint = onchain_health(&mut bank, &market.group, &trader.account, HealthKind::Maint).await?;
    println!(
        "  maintenance requirement on-chain {}  |  pm margin: portfolio {:.2}, standard {:.2} (portfolio / standard = {:.2})",
        usd(maint.requirement_native),
        report.maintenance,
        report.standard_maintenance,
        report.portfolio_to_standard_ratio
    );

    println!("\nSOL oracle drops $150 -> $140: arrays are refreshed (permissionless) and health recomputed");
    post_price(&mut bank, &market.sol.oracle, market.sol_feed, 140.0).await;
    for keys in [derivatives.perp.keys, derivatives.call.keys, derivatives.put.keys] {
        bank.send(&[sdk::refresh_risk_array(&keys)], &[]).await?;
    }
    print_health(&mut bank, &market, &trader).await?;
    println!("\n== crash: 60 more accounts with hedged, naked, leveraged, long-option and multi-collateral books ==");
    let report = crate::crash::run(crate::crash::DEMO_CRASH_TRADERS, true).await?;
    println!(
        "  keeper: {} rounds, {} position liquidations, {} token liquidations, {} bankruptcies resolved ({} lost races)",
        report.keeper.rounds,
        report.keeper.position_liquidations,
        report.keeper.token_liquidations,
        report.keeper.bankruptcies,
        report.keeper.lost_races
    );
    println!(
        "  insurance fund {} -> {}; unresolved accounts: {}",
        usd(report.insurance_before),
        usd(report.insurance_after),
        report.unresolved
    );
    println!(
        "  reconciliation: USDC vault {} = balances + insurance + perp cash {}; SOL vault {} = balances + insurance {}",
        report.usdc_vault, report.usdc_claims, report.sol_vault, report.sol_claims
    );
    if report.unresolved != 0 || report.usdc_vault != report.usdc_claims || report.sol_vault != report.sol_claims {
        return Err(anyhow!("the crash left unresolved accounts or unreconciled vaults: {report:?}"));
    }
    println!("\ndemo complete");
    Ok(())
}


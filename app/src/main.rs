//! `pm`: the portfolio-margin command line.

use clap::{Parser, Subcommand};
use pm_client::margin_cli;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "pm", about = "portfolio-margin client: demo, margin calculator, option pricer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through the product on an embedded in-process bank (no cluster, no network).
    Demo,
    /// Black-Scholes (r = 0) value and delta of one option on one unit of the underlying.
    PriceOption {
        #[arg(long, allow_hyphen_values = true)]
        spot: f64,
        #[arg(long, allow_hyphen_values = true)]
        strike: f64,
        /// Annualised implied vol (0.6 = 60%).
        #[arg(long, allow_hyphen_values = true)]
        vol: f64,
        /// Days to expiry (365 per year).
        #[arg(long, allow_hyphen_values = true)]
        days: f64,
        /// call or put.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        json: bool,
    },
    /// Portfolio margin of a portfolio file, with standard margin for comparison.
    Margin {
        #[arg(long)]
        input: std::path::PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Simulates one-day (or longer) P&L of books and reports how often the loss exceeded the
    /// maintenance requirement (dynamics and defaults: `pm_client::backtest`, docs/risk-model.md).
    Backtest {
        /// Portfolio files (as for `margin`); with none, every book in --dir.
        #[arg(long)]
        input: Vec<std::path::PathBuf>,
        /// Directory of portfolio files used when no --input is given.
        #[arg(long, default_value = "strategies")]
        dir: std::path::PathBuf,
        /// Backtest the books the demo opens on-chain (its trader, each crash-simulation
        /// archetype, the dealer) instead of files.
        #[arg(long, conflicts_with_all = ["input"])]
        demo_books: bool,
        /// Simulated paths per book.
        #[arg(long, default_value_t = 20_000)]
        paths: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// JSON file overriding any field of the dynamics (see `pm_client::backtest::Dynamics`).
        #[arg(long)]
        dynamics: Option<std::path::PathBuf>,
        /// Horizon in days (overrides the dynamics file).
        #[arg(long)]
        horizon_days: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Creates a group, banks, underlyings and perps from a configuration (see migrations/).
    /// Without --url it is rehearsed on an embedded bank.
    Bootstrap {
        #[arg(long)]
        config: std::path::PathBuf,
        /// JSON-RPC URL of the cluster.
        #[arg(long)]
        url: Option<String>,
        /// Admin and fee payer, a Solana CLI keypair file.
        #[arg(long, default_value = "~/.config/solana/id.json")]
        keypair: String,
    },
    /// The keeper: refreshes risk arrays, accrues funding, settles expired options, liquidates
    /// unhealthy accounts and resolves bankruptcies.
    Keeper {
        #[command(subcommand)]
        command: KeeperCommand,
    },
    /// Random action sequences through the real instructions on the embedded bank, checking
    /// after every step that value is conserved, vaults reconcile, health gates hold and client
    /// health equals the chain's. Exits 1 on a violation, printing the shrunk sequence.
    Fuzz {
        #[arg(long, default_value_t = 20)]
        sequences: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 40)]
        steps: u32,
        /// Skip the on-chain health comparison (faster).
        #[arg(long)]
        no_chain_health: bool,
    },
    /// Portfolio vs standard margin for every portfolio in a directory, as a Markdown table.
    StrategyTable {
        #[arg(long, default_value = "strategies")]
        dir: std::path::PathBuf,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeeperCommand {
    /// Keep markets up to date, scan and liquidate. With --url: against that cluster, forever
    /// (or --once). Without: on an embedded bank after a simulated crash of --simulate-crash
    /// accounts.
    Run {
        /// JSON-RPC URL of the cluster (e.g. http://127.0.0.1:8899).
        #[arg(long)]
        url: Option<String>,
        /// Fee payer and liquidator authority, a Solana CLI keypair file.
        #[arg(long, default_value = "~/.config/solana/id.json")]
        keypair: String,
        /// The group to keep.
        #[arg(long)]
        group: Option<String>,
        /// The keeper's own margin account (owned or delegated to the keypair).
        #[arg(long)]
        liquidator_account: Option<String>,
        /// Seconds between scans against a cluster.
        #[arg(long, default_value_t = 5)]
        interval_secs: u64,
        /// Scan once and exit.
        #[arg(long)]
        once: bool,
        /// Embedded bank: number of accounts in the simulated crash.
        #[arg(long, default_value_t = 60)]
        simulate_crash: usize,
        /// Embedded bank: simulated cluster time per keeper transaction, ms.
        #[arg(long, default_value_t = pm_client::crash::DEFAULT_LATENCY_MS)]
        simulate_latency_ms: u64,
        /// Liquidation steps kept in flight together (1: one after another).
        #[arg(long, default_value_t = 8)]
        steps_in_flight: usize,
        /// Embedded bank: the keeper posts no fresh prices (to see oracles go stale).
        #[arg(long)]
        no_price_refresh: bool,
        /// Price service (Pyth Hermes) the keeper gets fresh updates from, e.g.
        /// https://hermes.pyth.network. Without it, on a cluster, feeds must be kept by others.
        #[arg(long)]
        price_service_url: Option<String>,
        /// Cluster: compute-unit limit set on every keeper transaction (default: Solana's
        /// per-transaction maximum, since a transaction may carry several risk-array refreshes
        /// of about 300,000 units each; the priority fee is paid on this limit).
        #[arg(long, default_value_t = 1_400_000)]
        compute_unit_limit: u32,
        /// Cluster: priority fee, micro-lamports per compute unit (0: none).
        #[arg(long, default_value_t = 0)]
        priority_fee_micro_lamports: u64,
        /// text (default) or json (the summary only, keys in docs/keeper.md).
        #[arg(long, default_value = "text")]
        output: String,
    },
}

/// While alive, whatever is written to stdout goes to stderr. The embedded bank runs the program
/// natively and its `msg!` logs go to stdout: with `--output json`, stdout must carry the JSON only.
struct StdoutToStderr(Option<i32>);

impl StdoutToStderr {
    fn start() -> Self {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: plain descriptor duplication; the saved descriptor is restored and closed on drop.
        unsafe {
            let saved = libc::dup(1);
            if saved >= 0 && libc::dup2(2, 1) >= 0 {
                return StdoutToStderr(Some(saved));
            }
        }
        StdoutToStderr(None)
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        if let Some(saved) = self.0 {
            // SAFETY: `saved` is the descriptor duplicated in `start`.
            unsafe {
                libc::dup2(saved, 1);
                libc::close(saved);
            }
        }
    }
}

struct ClusterRun<'a> {
    url: &'a str,
    keypair: &'a str,
    group: &'a str,
    liquidator_account: &'a str,
    interval_secs: u64,
    once: bool,
    price_service_url: Option<&'a str>,
    compute_unit_limit: Option<u32>,
    priority_fee_micro_lamports: u64,
    steps_in_flight: usize,
    json: bool,
}

async fn keeper_on_cluster(run: ClusterRun<'_>) -> anyhow::Result<()> {
    let ClusterRun { url, keypair, group, liquidator_account, interval_secs, once, price_service_url, compute_unit_limit, priority_fee_micro_lamports, steps_in_flight, json } =
        run;
    use pm_client::chain::{read_keypair_file, RpcChain};
    use pm_client::keeper::{Keeper, Liquidator};
    let expanded = keypair.replacen('~', &std::env::var("HOME").unwrap_or_default(), 1);
    let owner = read_keypair_file(std::path::Path::new(&expanded))?;
    let parse = |s: &str, what: &str| s.parse::<anchor_lang::prelude::Pubkey>().map_err(|e| anyhow::anyhow!("--{what} {s}: {e}"));
    let group = parse(group, "group")?;
    let account = parse(liquidator_account, "liquidator-account")?;
    let mut chain = RpcChain::new(url, owner.insecure_clone()).with_compute_budget(compute_unit_limit, priority_fee_micro_lamports);
    let mut keeper = Keeper::discover(&mut chain, group, Liquidator { owner, account }).await?;
    keeper.upkeep.steps_in_flight = steps_in_flight;
    let source = match price_service_url {
        Some(url) => pm_client::prices::PriceSource::Hermes(pm_client::prices::HermesSource::new(url)),
        None => pm_client::prices::PriceSource::None,
    };
    let mut prices = pm_client::prices::PriceKeeper::new(source);
    if !json {
        println!("keeping group {group}: {} markets ({} perps)", keeper.markets.len(), keeper.perp_markets.len());
    }
    loop {
        // A failed scan (an RPC hiccup) is reported and retried next interval, not fatal.
        match keeper.margin_accounts(&mut chain).await {
            Ok(accounts) => {
                let summary = keeper.run_with(&mut chain, &accounts, 10, !json, &mut prices).await?;
                if json {
                    println!("{}", serde_json::to_string(&summary)?);
                } else {
                    print!("{summary}");
                }
                if once && !summary.unresolved.is_empty() {
                    anyhow::bail!("{} account(s) still liquidatable", summary.unresolved.len());
                }
            }
            Err(e) if once => return Err(e),
            Err(e) => eprintln!("listing margin accounts: {e}"),
        }
        if once {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(interval_secs)).await;
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo => tokio::runtime::Runtime::new()?.block_on(pm_client::demo::run()),
        Command::PriceOption { spot, strike, vol, days, kind, json } => {
            let (price, delta) = margin_cli::price_option_cli(spot, strike, vol, days, &kind)?;
            if json {
                println!("{}", serde_json::json!({ "price": price, "delta": delta }));
            } else {
                println!("value {price:.6}\ndelta {delta:.6}");
            }
            Ok(())
        }
        Command::Margin { input, json } => {
            let text = std::fs::read_to_string(&input).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?;
            let portfolio: margin_cli::Portfolio =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
            let report = margin_cli::margin_report(&portfolio)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", margin_cli::format_report(&report));
            }
            Ok(())
        }
        Command::Backtest { input, dir, demo_books, paths, seed, dynamics, horizon_days, json } => {
            use pm_client::backtest;
            let books = if demo_books {
                pm_client::demo_books::demo_books()?
            } else if input.is_empty() {
                backtest::read_books(&dir)?
            } else {
                input.iter().map(|p| backtest::read_book(p)).collect::<anyhow::Result<Vec<_>>>()?
            };
            let mut model = match dynamics {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                }
                None => backtest::Dynamics::default(),
            };
            if let Some(days) = horizon_days {
                model.horizon_days = days;
            }
            let report = backtest::backtest(&books, &model, paths, seed)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", backtest::format_backtest(&report));
            }
            Ok(())
        }
        Command::Keeper {
            command:
                KeeperCommand::Run {
                    url,
                    keypair,
                    group,
                    liquidator_account,
                    interval_secs,
                    once,
                    simulate_crash,
                    simulate_latency_ms,
                    steps_in_flight,
                    no_price_refresh,
                    price_service_url,
                    compute_unit_limit,
                    priority_fee_micro_lamports,
                    output,
                },
        } => {
            let json = match output.as_str() {
                "json" => true,
                "text" => false,
                other => anyhow::bail!("--output {other}: expected text or json"),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            match url {
                Some(url) => {
                    let group = group.ok_or_else(|| anyhow::anyhow!("--group is required with --url"))?;
                    let account = liquidator_account.ok_or_else(|| anyhow::anyhow!("--liquidator-account is required with --url"))?;
                    runtime.block_on(keeper_on_cluster(ClusterRun {
                        url: &url,
                        keypair: &keypair,
                        group: &group,
                        liquidator_account: &account,
                        interval_secs,
                        once,
                        price_service_url: price_service_url.as_deref(),
                        compute_unit_limit: Some(compute_unit_limit),
                        priority_fee_micro_lamports,
                        steps_in_flight,
                        json,
                    }))
                }
                None => runtime.block_on(async {
                    if !json {
                        println!("embedded bank: {simulate_crash} accounts, then a 30% crash and the keeper");
                    }
                    let config = pm_client::crash::CrashConfig {
                        latency_ms: simulate_latency_ms,
                        price_source: !no_price_refresh,
                        steps_in_flight,
                        verbose: !json,
                        ..pm_client::crash::CrashConfig::new(simulate_crash)
                    };
                    let quiet = json.then(StdoutToStderr::start);
                    let report = pm_client::crash::run_with(config).await;
                    drop(quiet);
                    let report = report?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
                    } else {
                        println!("{report}");
                    }
                    anyhow::ensure!(report.unresolved == 0, "{} account(s) still liquidatable or bankrupt", report.unresolved);
                    anyhow::ensure!(report.reconciled(), "the vaults do not reconcile with the balances they back");
                    Ok(())
                }),
            }
        }
        Command::Bootstrap { config, url, keypair } => {
            use pm_client::bootstrap;
            let text = std::fs::read_to_string(&config).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", config.display()))?;
            let parsed: bootstrap::Config = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
            let runtime = tokio::runtime::Runtime::new()?;
            let report = runtime.block_on(async {
                match url {
                    Some(url) => {
                        let expanded = keypair.replacen('~', &std::env::var("HOME").unwrap_or_default(), 1);
                        let admin = pm_client::chain::read_keypair_file(std::path::Path::new(&expanded))?;
                        let resolved = bootstrap::resolve_from_file(&parsed)?;
                        let mut chain = pm_client::chain::RpcChain::new(&url, admin.insecure_clone());
                        bootstrap::bootstrap(&mut chain, &admin, &parsed, &resolved).await
                    }
                    None => {
                        let mut bank = pm_client::local_bank::LocalBank::start().await;
                        let admin = bank.payer();
                        let resolved = bootstrap::rehearse_on(&mut bank, &parsed).await?;
                        bootstrap::bootstrap(&mut bank, &admin, &parsed, &resolved).await
                    }
                }
            })?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Fuzz { sequences, seed, steps, no_chain_health } => {
            let config = pm_client::fuzz::FuzzConfig {
                sequences,
                seed,
                steps_per_sequence: steps,
                check_chain_health: !no_chain_health,
                verbose: true,
                ..Default::default()
            };
            let report = tokio::runtime::Runtime::new()?.block_on(pm_client::fuzz::run(&config))?;
            println!("{report}");
            match report.failure {
                None => Ok(()),
                Some((v, _)) => Err(anyhow::anyhow!("invariant {} violated", v.invariant)),
            }
        }
        Command::StrategyTable { dir, out } => {
            let table = margin_cli::strategy_table(&dir)?;
            match out {
                Some(path) => std::fs::write(path, table)?,
                None => print!("{table}"),
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

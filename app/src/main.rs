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
    /// Portfolio vs standard margin for every portfolio in a directory, as a Markdown table.
    StrategyTable {
        #[arg(long, default_value = "strategies")]
        dir: std::path::PathBuf,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
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

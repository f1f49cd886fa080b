//! The books the demo and the crash simulation open on-chain, as data: the crash simulation
//! trades them on the embedded bank, and `pm backtest --demo-books` margins and backtests the
//! same books off-chain (so the coverage reported is the coverage of what the demo runs).
//!
//! Every derivative is on SOL at $150 (see `demo::setup_derivatives`): a perp, a 30-day 160
//! call and a 30-day 130 put, both at 60% vol.

use crate::margin_cli::Portfolio;
use anyhow::{anyhow, Result};

/// Spot of SOL when the books are opened, dollars.
pub const SOL_PRICE_DOLLARS: f64 = 150.0;
/// Vol posted for both demo options.
pub const OPTION_VOL: f64 = 0.6;
/// Days to expiry of both demo options when the books are opened.
pub const OPTION_DAYS: f64 = 30.0;
/// Strike of the demo call, dollars.
pub const CALL_STRIKE_DOLLARS: f64 = 160.0;
/// Strike of the demo put, dollars.
pub const PUT_STRIKE_DOLLARS: f64 = 130.0;

/// One of the demo's SOL derivatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoInstrument {
    /// SOL-PERP.
    Perp,
    /// SOL-160-C.
    Call,
    /// SOL-130-P.
    Put,
}

/// A book: deposits, then trades in order against a dealer.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoBook {
    /// What the book is, for reports.
    pub name: String,
    /// USDC deposited, dollars.
    pub usdc_dollars: u64,
    /// SOL deposited, whole SOL.
    pub sol: u64,
    /// Trades, in whole SOL: positive bought by the book's owner, negative sold.
    pub trades: Vec<(DemoInstrument, i64)>,
}

/// Archetype names of the crash simulation's books, by `index % 6`.
const CRASH_ARCHETYPES: [&str; 6] =
    ["collar", "naked_short_puts", "leveraged_long_perp", "long_calls", "multi_collateral_long_perp", "sol_against_short_perp"];

/// The crash simulation's book number `index`: hedged collars, naked short puts, leveraged long
/// perps, long calls, multi-collateral long perps and SOL against a short perp, in turn, each at
/// size 1 to 4.
pub fn crash_book(index: usize) -> DemoBook {
    use DemoInstrument::*;
    let size = 1 + (index % 4) as i64;
    let (usdc, sol, trades) = match index % 6 {
        0 => (0, 5 * size, vec![(Call, -5 * size), (Put, 5 * size)]),
        1 => (300 * size, 0, vec![(Put, -4 * size)]),
        2 => (700 * size, 0, vec![(Perp, 20 * size)]),
        3 => (400 * size, 0, vec![(Call, 10 * size)]),
        4 => (150 * size, 2 * size, vec![(Perp, 6 * size)]),
        _ => (0, 4 * size, vec![(Perp, -4 * size)]),
    };
    DemoBook {
        name: format!("crash_{}_size_{size}", CRASH_ARCHETYPES[index % 6]),
        usdc_dollars: usdc as u64,
        sol: sol as u64,
        trades,
    }
}

/// The demo trader's book: 10 SOL, 10 calls sold, 10 puts bought, 2 perps sold.
pub fn demo_trader_book() -> DemoBook {
    use DemoInstrument::*;
    DemoBook { name: "demo_trader_collar_with_perp".into(), usdc_dollars: 0, sol: 10, trades: vec![(Call, -10), (Put, 10), (Perp, -2)] }
}

/// The dealer's book after `traders` crash books: the other side of every trade, netted per
/// instrument (its 500,000 USDC is outside the grid and left out).
pub fn dealer_book(traders: usize) -> DemoBook {
    let mut net = [(DemoInstrument::Perp, 0i64), (DemoInstrument::Call, 0), (DemoInstrument::Put, 0)];
    for index in 0..traders {
        for (instrument, qty) in crash_book(index).trades {
            if let Some(entry) = net.iter_mut().find(|(i, _)| *i == instrument) {
                entry.1 -= qty;
            }
        }
    }
    DemoBook { name: format!("crash_dealer_after_{traders}_books"), usdc_dollars: 0, sol: 0, trades: net.into_iter().filter(|(_, q)| *q != 0).collect() }
}

impl DemoBook {
    /// The book as a `pm margin` portfolio (USDC, outside the grid, left out: it changes
    /// neither the requirement nor the loss).
    pub fn portfolio(&self) -> Result<Portfolio> {
        let positions: Vec<serde_json::Value> = self
            .trades
            .iter()
            .map(|(instrument, qty)| match instrument {
                DemoInstrument::Perp => serde_json::json!({"underlying": "SOL", "kind": "perp", "qty": *qty as f64}),
                DemoInstrument::Call | DemoInstrument::Put => serde_json::json!({
                    "underlying": "SOL",
                    "kind": if *instrument == DemoInstrument::Call { "call" } else { "put" },
                    "strike": if *instrument == DemoInstrument::Call { CALL_STRIKE_DOLLARS } else { PUT_STRIKE_DOLLARS },
                    "days_to_expiry": OPTION_DAYS,
                    "vol": OPTION_VOL,
                    "qty": *qty as f64,
                }),
            })
            .collect();
        let collateral: Vec<serde_json::Value> =
            if self.sol > 0 { vec![serde_json::json!({"symbol": "SOL", "amount": self.sol as f64})] } else { Vec::new() };
        let value = serde_json::json!({
            "description": format!("{} (demo book; {} USDC deposited outside the grid)", self.name, self.usdc_dollars),
            "underlyings": [{"symbol": "SOL", "price": SOL_PRICE_DOLLARS}],
            "collateral": collateral,
            "positions": positions,
        });
        serde_json::from_value(value).map_err(|e| anyhow!("{}: {e}", self.name))
    }
}

/// The books the demo opens: its trader's, one of each crash archetype (the requirement and the
/// loss scale together with the size), and the dealer's after the demo's crash books.
pub fn demo_books() -> Result<Vec<(String, Portfolio)>> {
    let mut books = vec![demo_trader_book()];
    books.extend((0..CRASH_ARCHETYPES.len()).map(crash_book));
    books.push(dealer_book(crate::crash::DEMO_CRASH_TRADERS));
    books.into_iter().map(|book| Ok((book.name.clone(), book.portfolio()?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dealer_takes_the_other_side_of_every_trade() {
        let dealer = dealer_book(6);
        // Sizes 1,2,3,4,1,2: collar -5 calls +5 puts; 8 puts sold; 60 perps bought; 40 calls
        // bought; 6 perps bought; 8 perps sold.
        assert_eq!(dealer.trades, vec![(DemoInstrument::Perp, -58), (DemoInstrument::Call, -35), (DemoInstrument::Put, 3)]);
    }

    #[test]
    fn every_demo_book_is_a_valid_portfolio() {
        let books = demo_books().unwrap();
        assert_eq!(books.len(), 8);
        for (name, portfolio) in &books {
            let report = crate::margin_cli::margin_report(portfolio).unwrap();
            assert!(report.maintenance > 0.0, "{name}");
        }
    }
}

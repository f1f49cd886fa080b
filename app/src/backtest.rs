//! `pm backtest`: how often a book's simulated loss over a horizon exceeds the maintenance
//! requirement the engine computes for it (the coverage CCPs publish for their margin models).
//!
//! Each book (a `pm margin` portfolio file) is margined once with [`margin_cli::margin_report`],
//! then revalued in double precision on many simulated paths of the market over
//! [`Dynamics::horizon_days`]. Per underlying and path:
//!
//! - **price**: log return `-σ²h/2 + σ√h z + J`, `σ` = `price_vol` (annual), `h` the horizon in
//!   years, `z` standard normal with correlation `correlation` across underlyings (one common
//!   factor), and with probability `jump_probability_per_day x days` a jump `J ~ N(jump_mean,
//!   jump_std)` shared by every underlying (crashes are market-wide);
//! - **vol level**: every option's vol times `exp(L s(d))`, `L = vol_of_vol √h (ρ z + √(1-ρ²) η)`
//!   plus `jump_vol_shift` when the price jumped, with `ρ` = `spot_vol_correlation` and `s(d)`
//!   the tenor scale `(30 / max(d, 1))^0.30` below 30 days, `(30 / d)^0.13` above (short tenors
//!   move more);
//! - **term structure**: times `exp(T g(d))`, `T ~ N(0, twist_std_per_day √days)`, `g(d) =
//!   clamp(-ln(max(d, 1) / 30) / ln 3, -1, 1)` (+1 for 10 days and shorter, -1 for 90 and longer);
//! - **skew**: times `exp(-K ln(strike / spot))`, `K ~ N(0, skew_std_per_day √days)`, plus
//!   `jump_skew_shift` when the price jumped (puts richen in a crash).
//!
//! Options are revalued with Black-Scholes (zero rates) at the horizon (intrinsic if they expire
//! within it), perps and collateral in the grid by the price move. A path's loss is minus the
//! book's P&L; it is *covered* when it does not exceed the maintenance requirement. The default
//! dynamics are deliberately rough for crypto: 80% annual price vol, a 2% daily chance of a
//! -10% (±10%) market-wide jump with vol up 30% and skew steepening, 150% annual vol of vol.

use crate::margin_cli::{margin_report, Portfolio};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

/// The simulated market. Every field has a default (see the module documentation).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Dynamics {
    /// Horizon, days.
    pub horizon_days: f64,
    /// Annual volatility of every underlying's price.
    pub price_vol: f64,
    /// Correlation of the underlyings' diffusive returns.
    pub correlation: f64,
    /// Probability of a market-wide jump per day.
    pub jump_probability_per_day: f64,
    /// Mean of a jump's log return.
    pub jump_mean: f64,
    /// Standard deviation of a jump's log return.
    pub jump_std: f64,
    /// Annual volatility of the log of the vol level (at the 30-day tenor).
    pub vol_of_vol: f64,
    /// Correlation between price returns and vol-level changes (negative: vol rises as prices fall).
    pub spot_vol_correlation: f64,
    /// Log vol-level change added when the price jumps.
    pub jump_vol_shift: f64,
    /// Standard deviation per day of the term-structure twist (log vol, at the ends of the curve).
    pub twist_std_per_day: f64,
    /// Standard deviation per day of the skew move (log vol per unit of log-moneyness).
    pub skew_std_per_day: f64,
    /// Skew move added when the price jumps (positive: low strikes richen).
    pub jump_skew_shift: f64,
}

impl Default for Dynamics {
    fn default() -> Self {
        Dynamics {
            horizon_days: 1.0,
            price_vol: 0.8,
            correlation: 0.7,
            jump_probability_per_day: 0.02,
            jump_mean: -0.10,
            jump_std: 0.10,
            vol_of_vol: 1.5,
            spot_vol_correlation: -0.5,
            jump_vol_shift: 0.3,
            twist_std_per_day: 0.05,
            skew_std_per_day: 0.05,
            jump_skew_shift: 0.3,
        }
    }
}

impl Dynamics {
    fn validate(&self) -> Result<()> {
        let fields = [
            ("horizon_days", self.horizon_days),
            ("price_vol", self.price_vol),
            ("jump_probability_per_day", self.jump_probability_per_day),
            ("jump_std", self.jump_std),
            ("vol_of_vol", self.vol_of_vol),
            ("twist_std_per_day", self.twist_std_per_day),
            ("skew_std_per_day", self.skew_std_per_day),
        ];
        for (name, value) in fields {
            if !(value.is_finite() && value >= 0.0) {
                bail!("dynamics.{name} must be a finite number >= 0 (got {value})");
            }
        }
        if self.horizon_days <= 0.0 {
            bail!("dynamics.horizon_days must be > 0");
        }
        for (name, value) in [("correlation", self.correlation), ("spot_vol_correlation", self.spot_vol_correlation)] {
            if !(-1.0..=1.0).contains(&value) {
                bail!("dynamics.{name} must be within -1..=1 (got {value})");
            }
        }
        if self.correlation < 0.0 {
            bail!("dynamics.correlation must be >= 0 (one common factor)");
        }
        for (name, value) in [("jump_mean", self.jump_mean), ("jump_vol_shift", self.jump_vol_shift), ("jump_skew_shift", self.jump_skew_shift)] {
            if !value.is_finite() {
                bail!("dynamics.{name} must be a finite number");
            }
        }
        if self.jump_probability_per_day * self.horizon_days > 1.0 {
            bail!("dynamics.jump_probability_per_day x horizon_days must be at most 1");
        }
        Ok(())
    }
}

/// One book's coverage.
#[derive(Debug, Serialize, PartialEq)]
pub struct BookCoverage {
    pub book: String,
    /// Maintenance requirement, USD (what `pm margin` reports).
    pub maintenance: f64,
    /// Loss exceeded on 1% of paths, USD.
    pub loss_99: f64,
    /// Loss exceeded on 0.1% of paths, USD.
    pub loss_999: f64,
    /// Largest simulated loss, USD.
    pub worst_loss: f64,
    /// Paths whose loss exceeded maintenance.
    pub exceedances: u64,
    /// exceedances / paths.
    pub exceedance_rate: f64,
    /// Whether maintenance is at least the 99% loss.
    pub covers_99: bool,
}

/// The `pm backtest --json` output.
#[derive(Debug, Serialize, PartialEq)]
pub struct BacktestReport {
    pub paths: u64,
    pub seed: u64,
    pub dynamics: Dynamics,
    pub books: Vec<BookCoverage>,
    /// Exceedances over all books and paths / (books x paths).
    pub total_exceedance_rate: f64,
    /// Books whose maintenance is below their 99% loss.
    pub books_not_covering_99: Vec<String>,
}

/// SplitMix64: a small, fast, well-mixed generator (deterministic for a seed).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// Standard normal CDF, through the Chebyshev-fitted complementary error function of Numerical
/// Recipes (`erfcc`: fractional error below 1.2e-7 everywhere), ample for a simulation.
fn norm_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// Black-Scholes value with zero rates; intrinsic at or past expiry or at zero vol.
pub fn black_scholes(spot: f64, strike: f64, vol: f64, days: f64, is_call: bool) -> f64 {
    let intrinsic = if is_call { (spot - strike).max(0.0) } else { (strike - spot).max(0.0) };
    let sst = vol * (days.max(0.0) / 365.0).sqrt();
    if sst <= 0.0 || spot <= 0.0 {
        return intrinsic;
    }
    let d1 = (spot / strike).ln() / sst + sst / 2.0;
    let d2 = d1 - sst;
    let value = if is_call { spot * norm_cdf(d1) - strike * norm_cdf(d2) } else { strike * norm_cdf(-d2) - spot * norm_cdf(-d1) };
    value.max(0.0)
}

fn tenor_scale(days: f64) -> f64 {
    let d = days.max(1.0);
    if d < 30.0 {
        (30.0 / d).powf(0.30)
    } else {
        (30.0 / d).powf(0.13)
    }
}

fn twist_position(days: f64) -> f64 {
    (-(days.max(1.0) / 30.0).ln() / 3f64.ln()).clamp(-1.0, 1.0)
}

/// Losses of `portfolio` on `paths` simulated paths (sorted ascending), USD.
fn simulate_losses(portfolio: &Portfolio, dynamics: &Dynamics, paths: u64, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    let n = portfolio.underlyings.len();
    let h_years = dynamics.horizon_days / 365.0;
    let jump_probability = dynamics.jump_probability_per_day * dynamics.horizon_days;
    let sqrt_days = dynamics.horizon_days.sqrt();
    let mut losses = Vec::with_capacity(paths as usize);
    let (mut spot, mut level, mut z) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for _ in 0..paths {
        let common = rng.normal();
        let jumped = rng.uniform() < jump_probability;
        let jump = if jumped { dynamics.jump_mean + dynamics.jump_std * rng.normal() } else { 0.0 };
        for i in 0..n {
            z[i] = dynamics.correlation.sqrt() * common + (1.0 - dynamics.correlation).sqrt() * rng.normal();
            let sigma = dynamics.price_vol;
            let log_return = -0.5 * sigma * sigma * h_years + sigma * h_years.sqrt() * z[i] + jump;
            spot[i] = portfolio.underlyings[i].price * log_return.exp();
            let rho = dynamics.spot_vol_correlation;
            level[i] = dynamics.vol_of_vol * h_years.sqrt() * (rho * z[i] + (1.0 - rho * rho).sqrt() * rng.normal())
                + if jumped { dynamics.jump_vol_shift } else { 0.0 };
        }
        let twist = dynamics.twist_std_per_day * sqrt_days * rng.normal();
        let skew = dynamics.skew_std_per_day * sqrt_days * rng.normal() + if jumped { dynamics.jump_skew_shift } else { 0.0 };
        let mut pnl = 0.0;
        for p in &portfolio.positions {
            let Some(i) = portfolio.underlyings.iter().position(|u| u.symbol == p.underlying) else { continue };
            let s0 = portfolio.underlyings[i].price;
            match p.kind.as_str() {
                "perp" => pnl += p.qty * (spot[i] - s0),
                kind => {
                    let (strike, days, vol) = (p.strike.unwrap_or(s0), p.days_to_expiry.unwrap_or(0.0), p.vol.unwrap_or(0.0));
                    let is_call = kind == "call";
                    let moneyness = (strike / s0).ln().clamp(-1.0, 1.0);
                    let new_vol = vol * (level[i] * tenor_scale(days) + twist * twist_position(days) - skew * moneyness).exp();
                    let before = black_scholes(s0, strike, vol, days, is_call);
                    let after = black_scholes(spot[i], strike, new_vol, days - dynamics.horizon_days, is_call);
                    pnl += p.qty * (after - before);
                }
            }
        }
        for c in &portfolio.collateral {
            if let Some(i) = portfolio.underlyings.iter().position(|u| u.symbol == c.symbol) {
                pnl += c.amount * (spot[i] - portfolio.underlyings[i].price);
            }
        }
        losses.push(-pnl);
    }
    losses.sort_by(|a, b| a.total_cmp(b));
    losses
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Backtests `books` (name, portfolio) on `paths` paths from `seed` under `dynamics`.
pub fn backtest(books: &[(String, Portfolio)], dynamics: &Dynamics, paths: u64, seed: u64) -> Result<BacktestReport> {
    dynamics.validate()?;
    if paths == 0 {
        bail!("--paths must be at least 1");
    }
    let mut report = BacktestReport {
        paths,
        seed,
        dynamics: dynamics.clone(),
        books: Vec::new(),
        total_exceedance_rate: 0.0,
        books_not_covering_99: Vec::new(),
    };
    let mut total = 0u64;
    for (index, (name, portfolio)) in books.iter().enumerate() {
        let margin = margin_report(portfolio).map_err(|e| anyhow!("{name}: {e}"))?;
        // Each book has its own stream, so adding a book does not change the others' paths.
        let losses = simulate_losses(portfolio, dynamics, paths, seed.wrapping_add(index as u64 * 0x1_0000_0001));
        let exceedances = losses.iter().filter(|l| **l > margin.maintenance).count() as u64;
        total += exceedances;
        let loss_99 = quantile(&losses, 0.99);
        let covers_99 = margin.maintenance >= loss_99;
        if !covers_99 {
            report.books_not_covering_99.push(name.clone());
        }
        report.books.push(BookCoverage {
            book: name.clone(),
            maintenance: margin.maintenance,
            loss_99,
            loss_999: quantile(&losses, 0.999),
            worst_loss: losses.last().copied().unwrap_or(0.0),
            exceedances,
            exceedance_rate: exceedances as f64 / paths as f64,
            covers_99,
        });
    }
    report.total_exceedance_rate = total as f64 / (paths as f64 * books.len().max(1) as f64);
    Ok(report)
}

/// Reads every `*.json` portfolio in `dir`, sorted by name.
pub fn read_books(dir: &std::path::Path) -> Result<Vec<(String, Portfolio)>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.iter().map(|path| read_book(path)).collect()
}

/// Reads one portfolio file; its name is the file stem.
pub fn read_book(path: &std::path::Path) -> Result<(String, Portfolio)> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    let portfolio: Portfolio = serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok((path.file_stem().unwrap_or_default().to_string_lossy().into_owned(), portfolio))
}

/// The report as a table.
pub fn format_backtest(report: &BacktestReport) -> String {
    let mut out = format!(
        "{} paths of {} day(s), seed {}\n\n| book | maintenance | 99% loss | 99.9% loss | worst loss | exceedances | rate |\n|---|---:|---:|---:|---:|---:|---:|\n",
        report.paths, report.dynamics.horizon_days, report.seed
    );
    for b in &report.books {
        out += &format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.4} |\n",
            b.book, b.maintenance, b.loss_99, b.loss_999, b.worst_loss, b.exceedances, b.exceedance_rate
        );
    }
    out += &format!("\ntotal exceedance rate: {:.4}\n", report.total_exceedance_rate);
    if report.books_not_covering_99.is_empty() {
        out += "every book's maintenance covers its 99% loss\n";
    } else {
        out += &format!("maintenance below the 99% loss: {}\n", report.books_not_covering_99.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_scholes_matches_known_values() {
        // ATM 30-day call at 60% vol on 150: 150 x (2N(0.5 x 0.6 x sqrt(30/365)) - 1) = 10.2809.
        let call = black_scholes(150.0, 150.0, 0.6, 30.0, true);
        assert!((call - 10.2809).abs() < 1e-3, "{call}");
        // Put-call parity with zero rates.
        let put = black_scholes(150.0, 160.0, 0.6, 30.0, false);
        let call = black_scholes(150.0, 160.0, 0.6, 30.0, true);
        assert!((call - put - (150.0 - 160.0)).abs() < 1e-6);
        assert_eq!(black_scholes(150.0, 140.0, 0.6, 0.0, true), 10.0);
    }

    #[test]
    fn normal_samples_have_unit_variance() {
        let mut rng = Rng(7);
        let samples: Vec<f64> = (0..200_000).map(|_| rng.normal()).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "{mean} {var}");
    }
}

//! `pm margin` and `pm price-option`: the risk engine from the command line, on portfolios in
//! human units.
//!
//! ## Units
//! Amounts are converted to the integer representation the program uses: quote native units
//! of a 6-decimal USD token, and positions in lots of `lot_size` units of the underlying
//! (default 0.001). Prices per lot are `price x lot_size x 10^6`; they must stay below ~3.5e8
//! quote native units (so the +500% tail scenario fits Q32.32): choose a smaller `lot_size` for
//! very high-priced underlyings. Quantities must be whole lots.

use anyhow::{anyhow, bail, Result};
use fixed::types::{I32F32, I80F48};
use risk_engine::black_scholes::{price_option, OptionInputs, OptionKind};
use risk_engine::correlation::Correlation;
use risk_engine::margin::{derivatives_risk, standard_margin, underlying_margin, Exposure, UnderlyingBook};
use risk_engine::risk_array::{compute_risk_array, Instrument, MarketState, RiskArray};
use risk_engine::scenario::{GridParams, MAX_EXTENDED};
use serde::{Deserialize, Serialize};

/// Decimals of the quote token the CLI prices in (USD, like USDC).
pub const QUOTE_DECIMALS: u32 = 6;
/// Default lot size, in units of the underlying.
pub const DEFAULT_LOT_SIZE: f64 = 0.001;
/// Largest spot per lot, quote native units (x6 for the +500% tail must stay in Q32.32).
const MAX_SPOT_PER_LOT: f64 = 3.5e8;

/// A portfolio file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Portfolio {
    pub underlyings: Vec<UnderlyingInput>,
    #[serde(default)]
    pub positions: Vec<PositionInput>,
    #[serde(default)]
    pub collateral: Vec<CollateralInput>,
    #[serde(default)]
    pub params: Option<ParamsInput>,
    /// Correlation groups: underlyings margined jointly (as `assign_correlation_group` does
    /// on-chain), each with its correlation.
    #[serde(default)]
    pub correlation_groups: Vec<CorrelationGroupInput>,
    /// Free text describing the portfolio (ignored by the engine).
    #[serde(default)]
    pub description: Option<String>,
}

/// An underlying and its price.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingInput {
    pub symbol: String,
    /// Quote units (USD) per unit of the underlying.
    pub price: f64,
    /// Lot size in units of the underlying (default 0.001).
    #[serde(default)]
    pub lot_size: Option<f64>,
    /// This underlying's liquidity for the concentration add-on, in its own lots (overrides
    /// `params.liquidity_lots`, which is in the lots of every underlying alike).
    #[serde(default)]
    pub liquidity_lots: Option<f64>,
    /// This underlying's concentration factor (overrides `params.concentration`).
    #[serde(default)]
    pub concentration: Option<f64>,
}

/// A correlation group: its member underlyings (by symbol) and their correlation, in
/// `[0, 0.99]` (applied in whole ppm, as the program stores it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationGroupInput {
    pub underlyings: Vec<String>,
    pub correlation: f64,
}

/// A derivatives position.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionInput {
    pub underlying: String,
    /// `perp`, `call` or `put`.
    pub kind: String,
    /// Contracts (one contract = one unit of the underlying); negative = short.
    pub qty: f64,
    #[serde(default)]
    pub strike: Option<f64>,
    #[serde(default)]
    pub days_to_expiry: Option<f64>,
    #[serde(default)]
    pub vol: Option<f64>,
}

/// A collateral token; if it is also an underlying it enters that underlying's grid.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollateralInput {
    pub symbol: String,
    pub amount: f64,
}

/// Grid parameter overrides (any subset).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsInput {
    pub price_range: Option<f64>,
    pub price_steps: Option<u8>,
    pub vol_up: Option<f64>,
    pub vol_down: Option<f64>,
    pub vol_reference_days: Option<f64>,
    pub vol_power_short: Option<f64>,
    pub vol_power_long: Option<f64>,
    pub min_shocked_vol: Option<f64>,
    pub extended_moves: Option<Vec<f64>>,
    pub extended_weight_numerator: Option<f64>,
    pub min_delta_net: Option<f64>,
    pub min_delta_hedged: Option<f64>,
    pub short_option_contingency: Option<f64>,
    pub im_factor: Option<f64>,
    pub horizon_days: Option<f64>,
    pub twist: Option<f64>,
    pub twist_pivot_days: Option<f64>,
    pub twist_width: Option<f64>,
    pub skew: Option<f64>,
    pub concentration: Option<f64>,
    pub liquidity_lots: Option<f64>,
    pub vega_offset: Option<f64>,
}

/// The worst scenario of an underlying.
#[derive(Debug, Serialize, PartialEq)]
pub struct WorstScenario {
    pub price_move: f64,
    pub vol_shock: String,
    pub weight: f64,
}

/// Requirement of one underlying, in quote units (USD).
#[derive(Debug, Serialize, PartialEq)]
pub struct UnderlyingReport {
    pub symbol: String,
    pub maintenance: f64,
    pub initial: f64,
    pub scenario_loss: f64,
    pub min_delta: f64,
    pub contingency: f64,
    /// Vega-offset contingency inside `maintenance`.
    pub vega_offset: f64,
    /// Concentration add-on inside `initial`.
    pub concentration: f64,
    pub net_delta: f64,
    pub standard_maintenance: f64,
    pub worst_scenario: WorstScenario,
}

/// A correlation group's credit.
#[derive(Debug, Serialize, PartialEq)]
pub struct CorrelationGroupReport {
    pub underlyings: Vec<String>,
    pub correlation: f64,
    /// Maintenance credited, USD (the initial requirement is credited this x im_factor).
    pub maintenance_credit: f64,
}

/// The `pm margin --json` output.
#[derive(Debug, Serialize, PartialEq)]
pub struct MarginReport {
    pub maintenance: f64,
    pub initial: f64,
    pub standard_maintenance: f64,
    pub standard_initial: f64,
    /// maintenance / standard_maintenance (1 when both are 0).
    pub portfolio_to_standard_ratio: f64,
    pub per_underlying: Vec<UnderlyingReport>,
    /// Maintenance credited by correlation groups (already out of `maintenance`), USD.
    pub correlation_credit: f64,
    /// Each correlation group's members, correlation and maintenance credit.
    pub correlation_groups: Vec<CorrelationGroupReport>,
    /// Collateral symbols that are not underlyings: valued by bank weights, not in any grid.
    pub collateral_outside_grid: Vec<String>,
}

fn fixed(value: f64, field: &str) -> Result<I32F32> {
    I32F32::checked_from_num(value).ok_or_else(|| anyhow!("{field} = {value} is out of range"))
}

fn check_finite(value: f64, field: &str) -> Result<()> {
    if !value.is_finite() {
        bail!("{field} must be a finite number");
    }
    Ok(())
}

impl ParamsInput {
    /// Applies the overrides to the default grid and validates the result.
    pub fn to_params(&self) -> Result<GridParams> {
        let mut p = GridParams::default();
        let set = |target: &mut I32F32, value: Option<f64>, name: &str| -> Result<()> {
            if let Some(v) = value {
                check_finite(v, &format!("params.{name}"))?;
                *target = fixed(v, &format!("params.{name}"))?;
            }
            Ok(())
        };
        set(&mut p.price_range, self.price_range, "price_range")?;
        set(&mut p.vol_up, self.vol_up, "vol_up")?;
        set(&mut p.vol_down, self.vol_down, "vol_down")?;
        set(&mut p.vol_reference_days, self.vol_reference_days, "vol_reference_days")?;
        set(&mut p.vol_power_short, self.vol_power_short, "vol_power_short")?;
        set(&mut p.vol_power_long, self.vol_power_long, "vol_power_long")?;
        set(&mut p.min_shocked_vol, self.min_shocked_vol, "min_shocked_vol")?;
        set(&mut p.extended_weight_numerator, self.extended_weight_numerator, "extended_weight_numerator")?;
        set(&mut p.min_delta_net, self.min_delta_net, "min_delta_net")?;
        set(&mut p.min_delta_hedged, self.min_delta_hedged, "min_delta_hedged")?;
        set(&mut p.short_option_contingency, self.short_option_contingency, "short_option_contingency")?;
        set(&mut p.im_factor, self.im_factor, "im_factor")?;
        set(&mut p.horizon_days, self.horizon_days, "horizon_days")?;
        set(&mut p.twist, self.twist, "twist")?;
        set(&mut p.twist_pivot_days, self.twist_pivot_days, "twist_pivot_days")?;
        set(&mut p.twist_width, self.twist_width, "twist_width")?;
        set(&mut p.skew, self.skew, "skew")?;
        set(&mut p.concentration, self.concentration, "concentration")?;
        set(&mut p.liquidity_lots, self.liquidity_lots, "liquidity_lots")?;
        set(&mut p.vega_offset, self.vega_offset, "vega_offset")?;
        if let Some(steps) = self.price_steps {
            p.price_steps = steps;
        }
        if let Some(moves) = &self.extended_moves {
            if moves.len() > MAX_EXTENDED {
                bail!("params.extended_moves has {} entries; at most {MAX_EXTENDED}", moves.len());
            }
            p.extended_count = moves.len() as u8;
            for (i, m) in moves.iter().enumerate() {
                check_finite(*m, &format!("params.extended_moves[{i}]"))?;
                p.extended_moves[i] = fixed(*m, &format!("params.extended_moves[{i}]"))?;
            }
        }
        p.validate().map_err(|e| anyhow!("params are invalid: {e:?}"))?;
        // The program's own bounds (`add_underlying`), so `pm margin` never shows a requirement
        // for a grid the chain would refuse (the liquidation fee bound is the group's: 0 here).
        portfolio_margin::state::GridConfig::from(&p)
            .validate_bounds(0)
            .map_err(|e| anyhow!("params are outside the program's bounds: {e}"))?;
        Ok(p)
    }
}

/// Quote native units to quote units (USD).
fn usd(value: I80F48) -> f64 {
    value.to_num::<f64>() / 10f64.powi(QUOTE_DECIMALS as i32)
}

/// Converts contracts to whole lots, refusing fractions of a lot.
fn to_lots(qty: f64, lot_size: f64, field: &str) -> Result<i64> {
    check_finite(qty, field)?;
    let lots = qty / lot_size;
    let rounded = lots.round();
    if (lots - rounded).abs() > 1e-6 {
        bail!("{field} = {qty} is not a whole number of lots of {lot_size}");
    }
    if rounded.abs() > risk_engine::risk_array::MAX_LOTS as f64 {
        bail!("{field} = {qty} is larger than the largest position ({} lots)", risk_engine::risk_array::MAX_LOTS);
    }
    Ok(rounded as i64)
}

/// Computes the margin report of a portfolio.
pub fn margin_report(portfolio: &Portfolio) -> Result<MarginReport> {
    let params = portfolio.params.as_ref().map(ParamsInput::to_params).transpose()?.unwrap_or_default();
    let scenarios = params.scenarios().map_err(|e| anyhow!("params are invalid: {e:?}"))?;
    if portfolio.underlyings.is_empty() {
        bail!("underlyings must list at least one underlying");
    }
    // Validate underlyings.
    let mut spots = Vec::new();
    for (i, u) in portfolio.underlyings.iter().enumerate() {
        check_finite(u.price, &format!("underlyings[{i}].price"))?;
        if u.price <= 0.0 {
            bail!("underlyings[{i}].price must be > 0 (got {})", u.price);
        }
        let lot = u.lot_size.unwrap_or(DEFAULT_LOT_SIZE);
        if !(lot > 0.0 && lot.is_finite()) {
            bail!("underlyings[{i}].lot_size must be > 0");
        }
        if portfolio.underlyings[..i].iter().any(|o| o.symbol == u.symbol) {
            bail!("underlyings[{i}].symbol '{}' is listed twice", u.symbol);
        }
        let spot_per_lot = u.price * lot * 10f64.powi(QUOTE_DECIMALS as i32);
        if spot_per_lot > MAX_SPOT_PER_LOT {
            bail!("underlyings[{i}]: price x lot_size is too large for the fixed-point grid; use a smaller lot_size");
        }
        spots.push((fixed(spot_per_lot, &format!("underlyings[{i}].price"))?, lot));
    }
    let find = |symbol: &str| portfolio.underlyings.iter().position(|u| u.symbol == symbol);

    // Build (underlying index, lots, array) for every position and grid collateral.
    let mut books: Vec<Vec<(i64, RiskArray)>> = vec![Vec::new(); portfolio.underlyings.len()];
    for (i, p) in portfolio.positions.iter().enumerate() {
        let field = |name: &str| format!("positions[{i}].{name}");
        let u = find(&p.underlying)
            .ok_or_else(|| anyhow!("{} '{}' is not in underlyings", field("underlying"), p.underlying))?;
        let (spot, lot) = spots[u];
        let lots = to_lots(p.qty, lot, &field("qty"))?;
        let instrument = match p.kind.as_str() {
            "perp" => {
                for (name, value) in [("strike", p.strike), ("days_to_expiry", p.days_to_expiry), ("vol", p.vol)] {
                    if value.is_some() {
                        bail!("{} is only for options", field(name));
                    }
                }
                Instrument::Linear
            }
            "call" | "put" => {
                let strike = p.strike.ok_or_else(|| anyhow!("{} is required for options", field("strike")))?;
                let days = p.days_to_expiry.ok_or_else(|| anyhow!("{} is required for options", field("days_to_expiry")))?;
                let vol = p.vol.ok_or_else(|| anyhow!("{} is required for options", field("vol")))?;
                for (name, value) in [("strike", strike), ("days_to_expiry", days), ("vol", vol)] {
                    check_finite(value, &field(name))?;
                }
                if strike <= 0.0 {
                    bail!("{} must be > 0 (got {strike})", field("strike"));
                }
                if days < 0.0 {
                    bail!("{} must be >= 0 (got {days})", field("days_to_expiry"));
                }
                if vol < 0.0 {
                    bail!("{} must be >= 0 (got {vol})", field("vol"));
                }
                let strike_per_lot = strike * lot * 10f64.powi(QUOTE_DECIMALS as i32);
                Instrument::Option {
                    kind: if p.kind == "call" { OptionKind::Call } else { OptionKind::Put },
                    strike: fixed(strike_per_lot, &field("strike"))?,
                    days_to_expiry: fixed(days, &field("days_to_expiry"))?,
                }
            }
            other => bail!("{} must be perp, call or put (got '{other}')", field("kind")),
        };
        let vol = fixed(p.vol.unwrap_or(0.0), &field("vol"))?;
        let state = MarketState { instrument, spot, vol };
        let array = compute_risk_array(&state, &params, &scenarios).map_err(|e| anyhow!("positions[{i}]: {e:?}"))?;
        books[u].push((lots, array));
    }
    let mut outside = Vec::new();
    for (i, c) in portfolio.collateral.iter().enumerate() {
        check_finite(c.amount, &format!("collateral[{i}].amount"))?;
        if c.amount < 0.0 {
            bail!("collateral[{i}].amount must be >= 0 (got {})", c.amount);
        }
        match find(&c.symbol) {
            Some(u) => {
                let (spot, lot) = spots[u];
                let lots = to_lots(c.amount, lot, &format!("collateral[{i}].amount"))?;
                let state = MarketState { instrument: Instrument::Linear, spot, vol: I32F32::ZERO };
                let array = compute_risk_array(&state, &params, &scenarios).map_err(|e| anyhow!("collateral[{i}]: {e:?}"))?;
                books[u].push((lots, array));
            }
            None => outside.push(c.symbol.clone()),
        }
    }

    // Correlation groups: ids 1.. in file order, each underlying in at most one.
    let mut membership = vec![Correlation::default(); portfolio.underlyings.len()];
    if portfolio.correlation_groups.len() > risk_engine::correlation::MAX_CORRELATION_GROUPS {
        bail!("correlation_groups: at most {} groups", risk_engine::correlation::MAX_CORRELATION_GROUPS);
    }
    for (g, group) in portfolio.correlation_groups.iter().enumerate() {
        check_finite(group.correlation, &format!("correlation_groups[{g}].correlation"))?;
        let max = portfolio_margin::state::MAX_CORRELATION_PPM as f64 / 1e6;
        if !(0.0..=max).contains(&group.correlation) {
            bail!("correlation_groups[{g}].correlation must be within 0..={max} (got {})", group.correlation);
        }
        let ppm = (group.correlation * 1e6).round() as u32;
        for symbol in &group.underlyings {
            let u = find(symbol).ok_or_else(|| anyhow!("correlation_groups[{g}]: '{symbol}' is not in underlyings"))?;
            if membership[u].group != 0 {
                bail!("correlation_groups[{g}]: '{symbol}' is already in a correlation group");
            }
            membership[u] = Correlation { group: g as u8 + 1, correlation: portfolio_margin::state::correlation_from_ppm(ppm) };
        }
    }

    let mut report = MarginReport {
        maintenance: 0.0,
        initial: 0.0,
        standard_maintenance: 0.0,
        standard_initial: 0.0,
        portfolio_to_standard_ratio: 1.0,
        per_underlying: Vec::new(),
        correlation_credit: 0.0,
        correlation_groups: Vec::new(),
        collateral_outside_grid: outside,
    };
    let (mut mm, mut im, mut smm, mut sim) = (I80F48::ZERO, I80F48::ZERO, I80F48::ZERO, I80F48::ZERO);
    let exposure_lists: Vec<Vec<Exposure>> =
        books.iter().map(|book| book.iter().map(|(lots, array)| array.exposure(*lots)).collect()).collect();
    let mut own_params = Vec::with_capacity(books.len());
    for u in 0..books.len() {
        // Per-underlying concentration parameters (they change no scenario, only the add-on),
        // checked against the program's bounds like the rest.
        let input = &portfolio.underlyings[u];
        let mut own = params;
        for (target, value, name) in [
            (&mut own.liquidity_lots, input.liquidity_lots, "liquidity_lots"),
            (&mut own.concentration, input.concentration, "concentration"),
        ] {
            if let Some(v) = value {
                check_finite(v, &format!("underlyings[{u}].{name}"))?;
                *target = fixed(v, &format!("underlyings[{u}].{name}"))?;
            }
        }
        own.validate().map_err(|e| anyhow!("underlyings[{u}]: params are invalid: {e:?}"))?;
        portfolio_margin::state::GridConfig::from(&own)
            .validate_bounds(0)
            .map_err(|e| anyhow!("underlyings[{u}]: params are outside the program's bounds: {e}"))?;
        own_params.push(own);
    }
    let grid_books: Vec<UnderlyingBook> = (0..books.len())
        .map(|u| UnderlyingBook { correlation: membership[u], ..UnderlyingBook::new(spots[u].0, &own_params[u], &exposure_lists[u]) })
        .collect();
    let mut alone_maintenance = Vec::with_capacity(grid_books.len());
    for (u, book) in grid_books.iter().enumerate() {
        let margin = underlying_margin(book).map_err(|e| anyhow!("{e:?}"))?;
        alone_maintenance.push(margin.maintenance);
        let (s_mm, s_im) = standard_margin(book).map_err(|e| anyhow!("{e:?}"))?;
        mm += margin.maintenance;
        im += margin.initial;
        smm += s_mm;
        sim += s_im;
        let worst = scenarios.get(margin.worst_scenario);
        report.per_underlying.push(UnderlyingReport {
            symbol: portfolio.underlyings[u].symbol.clone(),
            maintenance: usd(margin.maintenance),
            initial: usd(margin.initial),
            scenario_loss: usd(margin.scenario_loss),
            min_delta: usd(margin.min_delta),
            contingency: usd(margin.contingency),
            vega_offset: usd(margin.vega_offset),
            concentration: usd(margin.concentration),
            net_delta: margin.net_delta.to_num::<f64>() * spots[u].1,
            standard_maintenance: usd(s_mm),
            worst_scenario: WorstScenario {
                price_move: worst.price_move.to_num::<f64>(),
                vol_shock: worst.vol_shock.name().to_string(),
                weight: worst.weight.to_num::<f64>(),
            },
        });
    }
    // The engine's aggregate, as the program computes it: the sums above less group credits.
    let risk = derivatives_risk(&grid_books).map_err(|e| anyhow!("{e:?}"))?;
    for (g, group) in portfolio.correlation_groups.iter().enumerate() {
        let id = g as u8 + 1;
        let members: Vec<UnderlyingBook> = grid_books.iter().filter(|b| b.correlation.group == id).copied().collect();
        let alone: I80F48 = grid_books.iter().zip(&alone_maintenance).filter(|(b, _)| b.correlation.group == id).map(|(_, m)| *m).sum();
        let joint = derivatives_risk(&members).map_err(|e| anyhow!("{e:?}"))?.maintenance;
        report.correlation_groups.push(CorrelationGroupReport {
            underlyings: group.underlyings.clone(),
            correlation: group.correlation,
            maintenance_credit: usd(alone - joint),
        });
    }
    report.correlation_credit = usd(mm - risk.maintenance);
    (mm, im) = (risk.maintenance, risk.initial);
    report.maintenance = usd(mm);
    report.initial = usd(im);
    report.standard_maintenance = usd(smm);
    report.standard_initial = usd(sim);
    if smm > 0 {
        report.portfolio_to_standard_ratio = mm.to_num::<f64>() / smm.to_num::<f64>();
    }
    Ok(report)
}

/// Human-readable breakdown.
pub fn format_report(report: &MarginReport) -> String {
    let mut out = String::new();
    for u in &report.per_underlying {
        out += &format!(
            "{}: maintenance {:.2}  initial {:.2} (concentration {:.2})  (scenario loss {:.2}, min delta {:.2}, contingency {:.2}, vega offset {:.2}; net delta {:+.4})\n    worst scenario: price {:+.1}% vol {} weight {:.3}; standard maintenance {:.2}\n",
            u.symbol,
            u.maintenance,
            u.initial,
            u.concentration,
            u.scenario_loss,
            u.min_delta,
            u.contingency,
            u.vega_offset,
            u.net_delta,
            u.worst_scenario.price_move * 100.0,
            u.worst_scenario.vol_shock,
            u.worst_scenario.weight,
            u.standard_maintenance
        );
    }
    out += &format!(
        "portfolio maintenance {:.2}  initial {:.2}\nstandard  maintenance {:.2}  initial {:.2}\nportfolio / standard   {:.3}\n",
        report.maintenance, report.initial, report.standard_maintenance, report.standard_initial, report.portfolio_to_standard_ratio
    );
    for g in &report.correlation_groups {
        out += &format!(
            "correlation group {} (correlation {:.2}): maintenance credit {:.2}\n",
            g.underlyings.join(" + "),
            g.correlation,
            g.maintenance_credit
        );
    }
    if !report.collateral_outside_grid.is_empty() {
        out += &format!("collateral valued by weights only: {}\n", report.collateral_outside_grid.join(", "));
    }
    out
}

/// `pm price-option`: value and delta per unit of the underlying.
pub fn price_option_cli(spot: f64, strike: f64, vol: f64, days: f64, kind: &str) -> Result<(f64, f64)> {
    for (name, value) in [("--spot", spot), ("--strike", strike), ("--vol", vol), ("--days", days)] {
        check_finite(value, name)?;
    }
    if spot <= 0.0 {
        bail!("--spot must be > 0 (got {spot})");
    }
    if strike <= 0.0 {
        bail!("--strike must be > 0 (got {strike})");
    }
    if vol < 0.0 {
        bail!("--vol must be >= 0 (got {vol})");
    }
    if days < 0.0 {
        bail!("--days must be >= 0 (got {days})");
    }
    let kind = match kind {
        "call" => OptionKind::Call,
        "put" => OptionKind::Put,
        other => bail!("--kind must be call or put (got '{other}')"),
    };
    let inputs = OptionInputs {
        spot: fixed(spot, "--spot")?,
        strike: fixed(strike, "--strike")?,
        vol: fixed(vol, "--vol")?,
        days_to_expiry: fixed(days, "--days")?,
        kind,
    };
    let value = price_option(&inputs).map_err(|e| anyhow!("cannot price: {e:?}"))?;
    Ok((value.value.to_num(), value.delta.to_num()))
}

/// Markdown table of portfolio vs standard margin for every `*.json` portfolio in `dir`
/// (sorted by file name).
pub fn strategy_table(dir: &std::path::Path) -> Result<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = String::from(
        "# Strategy book: portfolio margin vs standard margin\n\n\
         Generated from `strategies/*.json` by `cargo run -p pm-client --bin pm -- strategy-table --out docs/strategy-table.md`\n\
         (default grid; amounts in USD; standard margin = the same grid applied to each position alone, summed).\n\n\
         | strategy | description | portfolio maintenance | standard maintenance | portfolio / standard |\n|---|---|---:|---:|---:|\n",
    );
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let portfolio: Portfolio = serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let report = margin_report(&portfolio).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        out += &format!(
            "| {} | {} | {:.2} | {:.2} | {:.3} |\n",
            path.file_stem().unwrap_or_default().to_string_lossy(),
            portfolio.description.as_deref().unwrap_or(""),
            report.maintenance,
            report.standard_maintenance,
            report.portfolio_to_standard_ratio
        );
    }
    Ok(out)
}

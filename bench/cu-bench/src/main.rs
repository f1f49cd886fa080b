//! Compute-unit benchmark of the risk engine on SBF.
//!
//! Runs the SBF probe (`bench/sbf-probe`, built by `scripts/build-sbf-probe`) in mollusk and
//! prints the compute units of: a health evaluation for 1, 2, 4, 8 and 16 positions (perps
//! and options over 1-4 underlyings) with 8 collateral tokens, one option risk-array refresh,
//! one Black-Scholes value + delta, and exp, ln, sqrt and the normal CDF. Each figure is the
//! operation's units minus a no-op on the same input (entrypoint and account loading). Every
//! result the probe returns is checked bit for bit against the engine run natively, and the
//! ceilings below are asserted: the process exits non-zero if any is exceeded.
//!
//! Usage: `cu-bench <probe.so> [--json]`.

use mollusk_svm::program::loader_keys::LOADER_V3;
use mollusk_svm::Mollusk;
use risk_engine::black_scholes::{price_option, OptionInputs, OptionKind};
use risk_engine::fixed::types::{I32F32, I80F48};
use risk_engine::health::{compute_health, HealthKind, HealthParams, TokenBalance, TokenPrices, TokenWeights};
use risk_engine::margin::{derivatives_risk, Exposure, UnderlyingBook};
use risk_engine::risk_array::{compute_risk_array, Instrument, MarketState, RiskArray};
use risk_engine::scenario::DEFAULT_GRID;
use solana_account::Account;
use solana_instruction::{AccountMeta, Instruction};
use solana_pubkey::Pubkey;

/// Ceilings (compute units), asserted. The two per-cell ceilings scale with the grid (a cell is
/// one scenario of one market): the risk model's targets, 1,700 CU per cell for a refresh and
/// 30 CU per position and cell for a health check, are both met; the whole-operation ceilings
/// are set just above what the engine measures today (docs/compute-units.md), so a regression
/// fails CI.
const MAX_MARGINAL_CU_PER_POSITION_CELL: u64 = 32;
const MAX_HEALTH_16_POSITIONS_8_COLLATERAL_CU: u64 = 42_000;
const MAX_REFRESH_CU_PER_CELL: u64 = 1_700;
/// The same health with its 4 underlyings in one correlation group: the joint scenarios
/// (about 4,800 CU per member on the default grid) on top of the per-underlying sums.
const MAX_HEALTH_16_GROUPED_CU: u64 = 60_000;
/// The same book with its options within a day of expiry: the interpolation bound's cost
/// (each long option's gaps, and its premium-bounded intervals).
const MAX_HEALTH_16_NEAR_EXPIRY_CU: u64 = 63_000;
/// A refresh of the default grid as a whole (every scenario valued now and after the
/// look-ahead); this keeps it from growing unnoticed.
const MAX_REFRESH_RISK_ARRAY_CU: u64 = 85_000;
const MAX_BLACK_SCHOLES_CU: u64 = 1_800;

const SCENARIOS: usize = DEFAULT_GRID.scenario_count();
const MAX_UNDERLYINGS: usize = 4;
const TOKENS: usize = 8;

/// Spot per lot (quote native units) of the benchmark underlyings: SOL, BTC, ETH and a $25 token
/// at lot sizes 0.001, 0.0001, 0.001 and 0.01.
const SPOTS: [f64; MAX_UNDERLYINGS] = [150_000.0, 6_000_000.0, 3_000_000.0, 250_000.0];

struct Probe {
    mollusk: Mollusk,
    program_id: Pubkey,
}

struct Run {
    cu: u64,
    return_data: Vec<u8>,
}

impl Probe {
    fn run(&self, data: Vec<u8>, book: &[u8]) -> Run {
        let key = Pubkey::new_unique();
        let instruction =
            Instruction { program_id: self.program_id, accounts: vec![AccountMeta::new(key, false)], data };
        let account = Account { lamports: 1_000_000_000, data: book.to_vec(), owner: self.program_id, executable: false, rent_epoch: 0 };
        let result = self.mollusk.process_instruction(&instruction, &[(key, account)]);
        assert!(result.program_result.is_ok(), "probe failed: {:?}", result.program_result);
        Run { cu: result.compute_units_consumed, return_data: result.return_data }
    }

    /// Units of an operation minus a no-op on the same account data.
    fn kernel(&self, data: Vec<u8>, book: &[u8]) -> (u64, Vec<u8>) {
        let base = self.run(vec![0], book).cu;
        let run = self.run(data, book);
        (run.cu - base, run.return_data)
    }
}

/// One benchmark position.
struct Position {
    underlying: usize,
    lots: i64,
    array: RiskArray,
}

fn positions(count: usize, underlyings: usize) -> Vec<Position> {
    positions_expiring(count, underlyings, false)
}

/// [`positions`], with the options 7 to 85 days from expiry, or, `near`, half an hour to 15
/// hours (long ones then carry interpolation gaps: the health check's costliest case).
fn positions_expiring(count: usize, underlyings: usize, near: bool) -> Vec<Position> {
    let params = DEFAULT_GRID;
    let scenarios = params.scenarios().expect("grid");
    let days = |i: usize| if near { I32F32::from_num(0.02 + 0.1 * (i % 7) as f64) } else { I32F32::from_num(7 + 13 * (i % 7)) };
    (0..count)
        .map(|i| {
            let underlying = i % underlyings;
            let spot = SPOTS[underlying];
            let step = 0.05 * (1 + i % 3) as f64;
            let instrument = match i % 3 {
                0 => Instrument::Linear,
                1 => Instrument::Option {
                    kind: OptionKind::Call,
                    strike: I32F32::from_num((spot * (1.0 + step)).round()),
                    days_to_expiry: days(i),
                },
                _ => Instrument::Option {
                    kind: OptionKind::Put,
                    strike: I32F32::from_num((spot * (1.0 - step)).round()),
                    days_to_expiry: days(i),
                },
            };
            let state = MarketState { instrument, spot: I32F32::from_num(spot), vol: I32F32::from_num(0.5 + 0.05 * (i % 10) as f64) };
            let lots = (100 + 37 * i as i64) * if i % 2 == 0 { 1 } else { -1 };
            Position { underlying, lots, array: compute_risk_array(&state, &params, &scenarios).expect("array") }
        })
        .collect()
}

fn tokens() -> Vec<TokenBalance> {
    let f = I80F48::from_num;
    (0..TOKENS)
        .map(|t| TokenBalance {
            native: if t == 7 { -2_000_000_000 } else { 1_000_000_000 * (t as i64 + 1) },
            prices: TokenPrices { oracle: f(0.15 * (t + 1) as f64), init_asset: f(0.149 * (t + 1) as f64), init_liability: f(0.151 * (t + 1) as f64) },
            weights: TokenWeights { init_asset: f(0.8), maint_asset: f(0.9), init_liability: f(1.2), maint_liability: f(1.1) },
        })
        .collect()
}

/// The account data the probe reads (see `bench/sbf-probe`).
fn book_bytes(positions: &[Position], tokens: &[TokenBalance], underlyings: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for spot in SPOTS {
        out.extend(I32F32::from_num(spot).to_bits().to_le_bytes());
    }
    // The probe groups positions by `index % underlyings`: write them in index order.
    for p in positions {
        debug_assert!(p.underlying < underlyings);
        for word in [p.lots, p.array.delta.to_bits(), p.array.value.to_bits(), p.array.is_option as i64, p.array.max_abs_cell.to_bits()] {
            out.extend(word.to_le_bytes());
        }
        for cell in p.array.exposure(p.lots).cells {
            out.extend(cell.to_bits().to_le_bytes());
        }
        // Interpolation gaps (a long's only), then their count and the premium-bound mask.
        let exposure = p.array.exposure(p.lots);
        for j in 0..risk_engine::risk_array::MAX_GAP_INTERVALS {
            out.extend(exposure.long_gaps.get(j).map_or(0, |g| g.to_bits()).to_le_bytes());
        }
        out.extend((exposure.long_gaps.len() as i64 | (exposure.premium_bound_mask as i64) << 16).to_le_bytes());
    }
    for t in tokens {
        out.extend(t.native.to_le_bytes());
        for v in [t.prices.oracle, t.prices.init_asset, t.prices.init_liability, t.weights.init_asset, t.weights.maint_asset, t.weights.init_liability, t.weights.maint_liability] {
            out.extend(v.to_bits().to_le_bytes());
        }
    }
    out
}

/// The same health the probe computes, natively.
fn native_health(positions: &[Position], tokens: &[TokenBalance], underlyings: usize, grouped: bool) -> I80F48 {
    let params = DEFAULT_GRID;
    let count = params.scenarios().unwrap().len();
    let exposures: Vec<Vec<Exposure>> =
        (0..underlyings).map(|u| positions.iter().filter(|p| p.underlying == u).map(|p| p.array.exposure(p.lots)).collect()).collect();
    let books: Vec<UnderlyingBook> = (0..underlyings)
        .map(|u| {
            let (mut positive, mut negative) = (I80F48::ZERO, I80F48::ZERO);
            for p in positions.iter().filter(|p| p.underlying == u) {
                let mark = risk_engine::wide::q32_wide_to_i80f48(risk_engine::wide::mul_q32_by_int(p.array.value, p.lots)).unwrap();
                if mark >= 0 {
                    positive += mark;
                } else {
                    negative += mark;
                }
            }
            UnderlyingBook {
                spot: I32F32::from_num(SPOTS[u]),
                params: &params,
                scenario_count: count,
                exposures: &exposures[u],
                positive_equity: positive,
                negative_equity: negative,
                correlation: if grouped {
                    risk_engine::correlation::Correlation { group: 1, correlation: I32F32::from_bits((4 << 32) / 5) }
                } else {
                    Default::default()
                },
            }
        })
        .collect();
    let risk = derivatives_risk(&books).unwrap();
    let health_params = HealthParams { unrealized_init_weight: I80F48::from_bits(1 << 47) };
    compute_health(tokens, &risk, &health_params, HealthKind::Init).unwrap().health
}

fn option_args(op: u8, inputs: &OptionInputs) -> Vec<u8> {
    let mut data = vec![op];
    for v in [inputs.spot, inputs.strike, inputs.vol, inputs.days_to_expiry] {
        data.extend(v.to_bits().to_le_bytes());
    }
    data.push(if inputs.kind == OptionKind::Call { 0 } else { 1 });
    data
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let so = args.get(1).expect("usage: cu-bench <probe.so> [--json]");
    let json = args.iter().any(|a| a == "--json");
    let elf = std::fs::read(so).expect("read probe .so");
    let program_id = Pubkey::new_unique();
    let mut mollusk = Mollusk::default();
    mollusk.add_program_with_loader_and_elf(&program_id, &LOADER_V3, &elf);
    let probe = Probe { mollusk, program_id };

    // Health: 1..16 positions over 1..4 underlyings, 8 collateral tokens.
    let tokens = tokens();
    let mut health_rows = Vec::new();
    for (count, underlyings) in [(1, 1), (2, 1), (4, 2), (8, 4), (16, 4)] {
        let book = positions(count, underlyings);
        let bytes = book_bytes(&book, &tokens, underlyings);
        let (cu, ret) = probe.kernel(vec![1, count as u8, TOKENS as u8, underlyings as u8], &bytes);
        let sbf = I80F48::from_bits(i128::from_le_bytes(ret[..16].try_into().unwrap()));
        assert_eq!(sbf, native_health(&book, &tokens, underlyings, false), "health on SBF differs from native for {count} positions");
        health_rows.push((count, underlyings, cu));
    }
    // The largest book with its options within a day of expiry: the long ones carry gaps.
    let near = positions_expiring(16, 4, true);
    assert!(near.iter().filter(|p| p.lots > 0 && p.array.gap_intervals > 0).count() >= 4, "the near-expiry bench carries too few gaps");
    let bytes = book_bytes(&near, &tokens, 4);
    let (near_cu, ret) = probe.kernel(vec![1, 16, TOKENS as u8, 4], &bytes);
    let sbf = I80F48::from_bits(i128::from_le_bytes(ret[..16].try_into().unwrap()));
    assert_eq!(sbf, native_health(&near, &tokens, 4, false), "near-expiry health on SBF differs from native");
    // The largest book again with its 4 underlyings in one correlation group (correlation 0.8).
    let (grouped_count, grouped_underlyings) = (16, 4);
    let book = positions(grouped_count, grouped_underlyings);
    let bytes = book_bytes(&book, &tokens, grouped_underlyings);
    let (grouped_cu, ret) = probe.kernel(vec![1, grouped_count as u8, TOKENS as u8, grouped_underlyings as u8, 1], &bytes);
    let sbf = I80F48::from_bits(i128::from_le_bytes(ret[..16].try_into().unwrap()));
    let grouped_native = native_health(&book, &tokens, grouped_underlyings, true);
    assert_eq!(sbf, grouped_native, "grouped health on SBF differs from native");
    assert_ne!(grouped_native, native_health(&book, &tokens, grouped_underlyings, false), "the correlation group changed nothing");
    let first = health_rows.first().unwrap();
    let last = health_rows.last().unwrap();
    let marginal = (last.2 - first.2) / (last.0 - first.0) as u64;

    // One option risk-array refresh and one Black-Scholes valuation.
    let inputs = OptionInputs {
        spot: I32F32::from_num(150_000),
        strike: I32F32::from_num(160_000),
        vol: I32F32::from_num(0.6),
        days_to_expiry: I32F32::from_num(30),
        kind: OptionKind::Call,
    };
    let scratch = vec![0u8; std::mem::size_of::<RiskArray>()];
    let (refresh_cu, ret) = probe.kernel(option_args(2, &inputs), &scratch);
    let params = DEFAULT_GRID;
    let state = MarketState {
        instrument: Instrument::Option { kind: inputs.kind, strike: inputs.strike, days_to_expiry: inputs.days_to_expiry },
        spot: inputs.spot,
        vol: inputs.vol,
    };
    let array = compute_risk_array(&state, &params, &params.scenarios().unwrap()).unwrap();
    let len = array.len as usize;
    let worst = array.pnl[..len].iter().min().unwrap().to_bits().wrapping_add(array.long_pnl[..len].iter().min().unwrap().to_bits());
    assert_eq!((i64_at(&ret, 0), i64_at(&ret, 8)), (worst, array.delta.to_bits()), "refresh on SBF differs from native");
    let (bs_cu, ret) = probe.kernel(option_args(3, &inputs), &[]);
    let value = price_option(&inputs).unwrap();
    assert_eq!((i64_at(&ret, 0), i64_at(&ret, 8)), (value.value.to_bits(), value.delta.to_bits()), "Black-Scholes on SBF differs");

    // Elementary functions.
    let mut functions = Vec::new();
    for (op, name, x) in [(4u8, "exp", -1.3f64), (5, "ln", 2.7), (6, "sqrt", 30.0), (7, "norm_cdf", 0.42)] {
        let x = I32F32::from_num(x);
        let mut data = vec![op];
        data.extend(x.to_bits().to_le_bytes());
        let (cu, ret) = probe.kernel(data, &[]);
        let native = match op {
            4 => risk_engine::math::exp(x).unwrap(),
            5 => risk_engine::math::ln(x).unwrap(),
            6 => risk_engine::math::sqrt(x, risk_engine::wide::Rounding::Down).unwrap(),
            _ => risk_engine::math::norm_cdf(x),
        };
        assert_eq!(i64_at(&ret, 0), native.to_bits(), "{name} on SBF differs from native");
        functions.push((name, cu));
    }

    let health_16 = last.2;
    let cells = SCENARIOS as u64;
    let marginal_per_cell = marginal.div_ceil(cells);
    let refresh_per_cell = refresh_cu.div_ceil(cells);
    let checks = [
        ("marginal health CU per position and scenario cell", marginal_per_cell, MAX_MARGINAL_CU_PER_POSITION_CELL),
        ("health, 16 positions + 8 collateral", health_16, MAX_HEALTH_16_POSITIONS_8_COLLATERAL_CU),
        ("health, 16 positions + 8 collateral, 4 underlyings in one correlation group", grouped_cu, MAX_HEALTH_16_GROUPED_CU),
        ("health, 16 positions + 8 collateral, options within a day of expiry", near_cu, MAX_HEALTH_16_NEAR_EXPIRY_CU),
        ("risk-array refresh CU per scenario cell", refresh_per_cell, MAX_REFRESH_CU_PER_CELL),
        ("risk-array refresh, default grid", refresh_cu, MAX_REFRESH_RISK_ARRAY_CU),
        ("Black-Scholes value + delta", bs_cu, MAX_BLACK_SCHOLES_CU),
    ];
    if json {
        let value = serde_json::json!({
            "health": health_rows.iter().map(|(p, u, cu)| serde_json::json!({"positions": p, "underlyings": u, "collateral": TOKENS, "cu": cu})).collect::<Vec<_>>(),
            "health_near_expiry": {"positions": 16, "underlyings": 4, "collateral": TOKENS, "cu": near_cu},
            "health_correlation_group": {"positions": grouped_count, "underlyings": grouped_underlyings, "collateral": TOKENS, "cu": grouped_cu},
            "scenario_cells": cells,
            "marginal_cu_per_position": marginal,
            "marginal_cu_per_position_cell": marginal_per_cell,
            "refresh_risk_array_cu": refresh_cu,
            "refresh_cu_per_cell": refresh_per_cell,
            "black_scholes_cu": bs_cu,
            "functions_cu": functions.iter().map(|(n, cu)| (n.to_string(), serde_json::json!(cu))).collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&value).unwrap());
    } else {
        println!("| measurement | compute units |\n|---|---:|");
        for (p, u, cu) in &health_rows {
            println!("| health: {p} positions over {u} underlyings + {TOKENS} collateral | {cu} |");
        }
        println!("| health: {grouped_count} positions over {grouped_underlyings} underlyings in one correlation group + {TOKENS} collateral | {grouped_cu} |");
        println!("| health: 16 positions over 4 underlyings, options within a day of expiry + {TOKENS} collateral | {near_cu} |");
        println!("| scenario cells per market (default grid) | {cells} |");
        println!("| marginal health cost per position | {marginal} ({marginal_per_cell} per cell) |");
        println!("| option risk-array refresh ({} scenarios) | {refresh_cu} ({refresh_per_cell} per cell) |", array.len);
        println!("| Black-Scholes value + delta | {bs_cu} |");
        for (name, cu) in &functions {
            println!("| {name} | {cu} |");
        }
    }
    let mut failed = false;
    for (name, value, ceiling) in checks {
        if value > ceiling {
            eprintln!("CEILING EXCEEDED: {name}: {value} CU > {ceiling} CU");
            failed = true;
        } else {
            eprintln!("ok: {name}: {value} CU <= {ceiling} CU");
        }
    }
    if failed {
        std::process::exit(1);
    }
}

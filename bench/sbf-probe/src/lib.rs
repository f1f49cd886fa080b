//! A minimal SBF program that runs the risk engine (the same crate the portfolio-margin program
//! uses, not a copy) on inputs passed in instruction data and account 0, so a harness can count
//! real compute units. Every operation returns its result as return data, which the harness
//! compares bit for bit with the engine run natively.
//!
//! Instruction data: one opcode byte, then little-endian arguments.
//! - 0 noop: the baseline (entrypoint and argument parsing).
//! - 1 health: `positions u8, collateral u8, underlyings u8`; account 0 holds the book
//!   (see `bench/cu-bench`): spots, then per position `lots, delta, value, is_option,
//!   max_abs_cell, cells[N]` (the cells of the position's side), N the default grid's scenario
//!   count
//!   (i64 each), then per token `native i64, prices 3 x i128, weights 4 x i128`.
//! - 2 refresh a risk array: `spot, strike, vol, days (Q32.32 bits), kind u8`; account 0 is
//!   zeroed scratch space for the array (writable).
//! - 3 Black-Scholes value and delta: same arguments.
//! - 4 exp, 5 ln, 6 sqrt, 7 normal CDF: `x (Q32.32 bits)`.
#![no_std]

use pinocchio::{no_allocator, nostd_panic_handler, program_entrypoint, AccountView, Address, ProgramResult};
use risk_engine::black_scholes::{price_option, OptionInputs, OptionKind};
use risk_engine::fixed::types::{I32F32, I80F48};
use risk_engine::health::{compute_health, HealthKind, HealthParams, TokenBalance, TokenPrices, TokenWeights};
use risk_engine::margin::{derivatives_risk, Exposure, UnderlyingBook};
use risk_engine::risk_array::{compute_risk_array_into, Instrument, MarketState, RiskArray, MAX_GAP_INTERVALS};
use risk_engine::scenario::DEFAULT_GRID;
use risk_engine::wide::{mul_q32_by_int, q32_wide_to_i80f48, Rounding};

program_entrypoint!(process_instruction, 2);
no_allocator!();
nostd_panic_handler!();

/// Scenarios of the default grid.
const SCENARIOS: usize = DEFAULT_GRID.scenario_count();
/// i64 words per position record.
const POSITION_WORDS: usize = 5 + SCENARIOS + MAX_GAP_INTERVALS + 1;
const MAX_POSITIONS: usize = 16;
const MAX_TOKENS: usize = 8;
const MAX_UNDERLYINGS: usize = 4;
/// Correlation of the probe's correlation group when the health call asks for one: 0.8.
pub const CORRELATION_BITS: i64 = (4 << 32) / 5;
/// Bytes per token record: native balance, 3 prices and 4 weights (I80F48 bits).
const TOKEN_BYTES: usize = 8 + 7 * 16;

fn arg_i64(data: &[u8], index: usize) -> i64 {
    let start = 1 + 8 * index;
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&data[start..start + 8]);
    i64::from_le_bytes(bytes)
}

/// The `index`-th little-endian i64 word of `data` (a plain load, not a memcpy syscall).
fn word(data: &[u8], index: usize) -> i64 {
    assert!(8 * index + 8 <= data.len());
    // SAFETY: bounds checked above; the read is unaligned-safe.
    i64::from_le(unsafe { core::ptr::read_unaligned(data.as_ptr().add(8 * index) as *const i64) })
}

fn wide(data: &[u8], offset: usize) -> I80F48 {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&data[offset..offset + 16]);
    I80F48::from_bits(i128::from_le_bytes(bytes))
}

fn set_return(bytes: &[u8]) {
    unsafe { pinocchio::syscalls::sol_set_return_data(bytes.as_ptr(), bytes.len() as u64) };
}

fn option_inputs(data: &[u8]) -> OptionInputs {
    OptionInputs {
        spot: I32F32::from_bits(arg_i64(data, 0)),
        strike: I32F32::from_bits(arg_i64(data, 1)),
        vol: I32F32::from_bits(arg_i64(data, 2)),
        days_to_expiry: I32F32::from_bits(arg_i64(data, 3)),
        kind: if data[33] == 0 { OptionKind::Call } else { OptionKind::Put },
    }
}

/// Portfolio health over a book in account data: the engine work the program's health check
/// does once accounts are loaded (per underlying: scenario sums, minimum delta, contingency;
/// option marks; collateral valuation).
/// Arguments of [`health`], passed by reference: the BPF backend allows at most five
/// arguments per call.
struct HealthArgs<'a> {
    book: &'a [u8],
    positions: usize,
    tokens: usize,
    underlyings: usize,
    /// Whether every underlying is in correlation group 1 (correlation 0.8).
    grouped: bool,
}

#[inline(never)]
fn health(args: &HealthArgs, out: &mut I80F48) -> bool {
    match health_inner(args) {
        Some(h) => {
            *out = h;
            true
        }
        None => false,
    }
}

#[inline(always)]
fn health_inner(args: &HealthArgs) -> Option<I80F48> {
    let HealthArgs { book, positions, tokens, underlyings, grouped } = *args;
    let params = DEFAULT_GRID;
    let scenario_count = params.scenario_count();
    let empty = Exposure::linear(0, &[], I32F32::ZERO);
    let mut exposures = [empty; MAX_POSITIONS];
    let mut books = [UnderlyingBook {
        spot: I32F32::ZERO,
        params: &params,
        scenario_count,
        exposures: &[],
        positive_equity: I80F48::ZERO,
        negative_equity: I80F48::ZERO,
        correlation: risk_engine::correlation::Correlation { group: 0, correlation: I32F32::ZERO },
    }; MAX_UNDERLYINGS];
    // Positions are grouped by underlying (position p belongs to underlying p % underlyings).
    let mut next = 0;
    let mut ranges = [(0usize, 0usize); MAX_UNDERLYINGS];
    let mut marks = [(I80F48::ZERO, I80F48::ZERO); MAX_UNDERLYINGS];
    for u in 0..underlyings {
        let start = next;
        for p in (u..positions).step_by(underlyings) {
            let base = MAX_UNDERLYINGS + p * POSITION_WORDS;
            let lots = word(book, base);
            // SAFETY: account data is 8-byte aligned and the cells are i64 words; I32F32 is a
            // transparent i64.
            let cells: &[I32F32] =
                unsafe { core::slice::from_raw_parts(book.as_ptr().add(8 * (base + 5)) as *const I32F32, SCENARIOS) };
            exposures[next] = Exposure {
                lots,
                cells,
                delta: I32F32::from_bits(word(book, base + 1)),
                is_option: word(book, base + 3) != 0,
                value: I32F32::from_bits(word(book, base + 2)),
                max_abs_cell: I32F32::from_bits(word(book, base + 4)),
                // SAFETY: as for the cells; the count is bounded.
                long_gaps: unsafe {
                    let meta = word(book, base + 5 + SCENARIOS + MAX_GAP_INTERVALS);
                    let count = ((meta & 0xffff) as usize).min(MAX_GAP_INTERVALS);
                    core::slice::from_raw_parts(book.as_ptr().add(8 * (base + 5 + SCENARIOS)) as *const I32F32, count)
                },
                premium_bound_mask: (word(book, base + 5 + SCENARIOS + MAX_GAP_INTERVALS) >> 16) as u16,
                // The bench's grid has no vega offset.
                expiry_key: 0,
                vega_shock: I32F32::ZERO,
            };
            let mark = q32_wide_to_i80f48(mul_q32_by_int(I32F32::from_bits(word(book, base + 2)), lots))?;
            if mark >= 0 {
                marks[u].0 = marks[u].0.checked_add(mark)?;
            } else {
                marks[u].1 = marks[u].1.checked_add(mark)?;
            }
            next += 1;
        }
        ranges[u] = (start, next);
    }
    for u in 0..underlyings {
        books[u].spot = I32F32::from_bits(word(book, u));
        books[u].exposures = &exposures[ranges[u].0..ranges[u].1];
        books[u].positive_equity = marks[u].0;
        books[u].negative_equity = marks[u].1;
        if grouped {
            books[u].correlation = risk_engine::correlation::Correlation { group: 1, correlation: I32F32::from_bits(CORRELATION_BITS) };
        }
    }
    let derivatives = derivatives_risk(&books[..underlyings]).ok()?;
    let token_base = 8 * (MAX_UNDERLYINGS + positions * POSITION_WORDS);
    let zero = I80F48::ZERO;
    let blank = TokenBalance {
        native: 0,
        prices: TokenPrices { oracle: zero, init_asset: zero, init_liability: zero },
        weights: TokenWeights { init_asset: zero, maint_asset: zero, init_liability: zero, maint_liability: zero },
    };
    let mut balances = [blank; MAX_TOKENS];
    for (t, balance) in balances.iter_mut().enumerate().take(tokens) {
        let at = token_base + t * TOKEN_BYTES;
        *balance = TokenBalance {
            native: word(&book[at..], 0),
            prices: TokenPrices { oracle: wide(book, at + 8), init_asset: wide(book, at + 24), init_liability: wide(book, at + 40) },
            weights: TokenWeights {
                init_asset: wide(book, at + 56),
                maint_asset: wide(book, at + 72),
                init_liability: wide(book, at + 88),
                maint_liability: wide(book, at + 104),
            },
        };
    }
    let health_params = HealthParams { unrealized_init_weight: I80F48::from_bits(1 << 47) };
    compute_health(&balances[..tokens], &derivatives, &health_params, HealthKind::Init).ok().map(|h| h.health)
}

/// The error for any bad input.
const fn bad() -> pinocchio::error::ProgramError {
    pinocchio::error::ProgramError::InvalidInstructionData
}

/// Each operation runs out of line so the entrypoint's stack frame stays small. The array
/// (about 1.6 KB) is computed into account 0's data, as the program computes it on the heap.
#[inline(never)]
fn refresh(data: &[u8], scratch: &mut [u8], out: &mut [u8; 16]) -> bool {
    if scratch.len() < core::mem::size_of::<RiskArray>() || scratch.as_ptr() as usize % core::mem::align_of::<RiskArray>() != 0 {
        return false;
    }
    // SAFETY: size and alignment checked; every field of RiskArray is valid when zeroed (the
    // harness passes zeroed data) and is overwritten before it is read.
    let array = unsafe { &mut *(scratch.as_mut_ptr() as *mut RiskArray) };
    let inputs = option_inputs(data);
    let params = DEFAULT_GRID;
    let Ok(scenarios) = params.scenarios() else { return false };
    let state = MarketState {
        instrument: Instrument::Option { kind: inputs.kind, strike: inputs.strike, days_to_expiry: inputs.days_to_expiry },
        spot: inputs.spot,
        vol: inputs.vol,
    };
    if compute_risk_array_into(&state, &params, &scenarios, array).is_err() {
        return false;
    }
    // Both arrays' worst cells (summed, wrapping) and the delta: enough to compare with the
    // native result.
    let worst = array.pnl[..array.len as usize].iter().min().copied().unwrap_or(I32F32::ZERO);
    let worst_long = array.long_pnl[..array.len as usize].iter().min().copied().unwrap_or(I32F32::ZERO);
    out[..8].copy_from_slice(&worst.to_bits().wrapping_add(worst_long.to_bits()).to_le_bytes());
    out[8..].copy_from_slice(&array.delta.to_bits().to_le_bytes());
    true
}

#[inline(never)]
fn black_scholes(data: &[u8], out: &mut [u8; 16]) -> bool {
    let Ok(value) = price_option(&option_inputs(data)) else { return false };
    out[..8].copy_from_slice(&value.value.to_bits().to_le_bytes());
    out[8..].copy_from_slice(&value.delta.to_bits().to_le_bytes());
    true
}

#[inline(never)]
fn function(data: &[u8], out: &mut [u8; 16]) -> bool {
    let x = I32F32::from_bits(arg_i64(data, 0));
    let y = match data[0] {
        4 => risk_engine::math::exp(x),
        5 => risk_engine::math::ln(x),
        6 => risk_engine::math::sqrt(x, Rounding::Down),
        _ => Some(risk_engine::math::norm_cdf(x)),
    };
    let Some(y) = y else { return false };
    out[..8].copy_from_slice(&y.to_bits().to_le_bytes());
    true
}

fn process_instruction(_program_id: &Address, accounts: &mut [AccountView], data: &[u8]) -> ProgramResult {
    let mut out = [0u8; 16];
    let ok = match data.first().copied() {
        Some(0) => true,
        Some(1) => {
            let (positions, tokens, underlyings) = (data[1] as usize, data[2] as usize, data[3] as usize);
            if positions > MAX_POSITIONS || tokens > MAX_TOKENS || underlyings == 0 || underlyings > MAX_UNDERLYINGS {
                return Err(bad());
            }
            let book = unsafe { accounts.first().ok_or(bad())?.borrow_unchecked() };
            let mut result = I80F48::ZERO;
            let grouped = data.get(4).is_some_and(|g| *g != 0);
            let ok = health(&HealthArgs { book, positions, tokens, underlyings, grouped }, &mut result);
            out.copy_from_slice(&result.to_bits().to_le_bytes());
            ok
        }
        Some(2) => {
            let scratch = unsafe { accounts.first_mut().ok_or(bad())?.borrow_unchecked_mut() };
            refresh(data, scratch, &mut out)
        }
        Some(3) => black_scholes(data, &mut out),
        Some(4..=7) => function(data, &mut out),
        _ => false,
    };
    if !ok {
        return Err(bad());
    }
    set_return(&out);
    Ok(())
}

// The BPF backend emits calls to these; route them to the runtime's syscalls.
#[cfg(target_arch = "bpf")]
mod mem {
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        pinocchio::syscalls::sol_memcpy_(dst, src, n as u64);
        dst
    }
    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        pinocchio::syscalls::sol_memmove_(dst, src, n as u64);
        dst
    }
    #[no_mangle]
    pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
        pinocchio::syscalls::sol_memset_(dst, value as u8, n as u64);
        dst
    }
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        let mut result = 0i32;
        pinocchio::syscalls::sol_memcmp_(a, b, n as u64, &mut result as *mut i32);
        result
    }
}

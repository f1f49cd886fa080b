//! # risk-engine
//!
//! The portfolio-margin engine of `portfolio-margin`, shared by the on-chain program and the
//! `pm` client so that the margin a trader is quoted off-chain is exactly what the chain
//! enforces. Pure: no Solana types, no I/O, `no_std`.
//!
//! ## Number representation
//! | type | used for | range / resolution |
//! |---|---|---|
//! | [`I32F32`](fixed::types::I32F32) (Q32.32 in an `i64`) | prices per lot, vols, option math, risk-array cells | ±2.1e9 / 2.3e-10 |
//! | `i128` at 2^-32 scale | scenario sums `lots x cell` (exact) | ±1.7e28 |
//! | [`I80F48`](fixed::types::I80F48) | token values, prices per native unit, requirements, health | ±6e23 / 3.6e-15 |
//!
//! The hot path (risk arrays and scenario sums) stays in 64-bit fixed point with exact integer
//! products, because a 128-bit fixed-point multiply costs an order of magnitude more compute on
//! Solana; I80F48 is used where range matters (collateral values, totals). All wide arithmetic
//! goes through [`wide`], which states its rounding and lowers on the BPF target.
//!
//! ## Modules
//! - [`wide`]: wide multiply/divide with directed rounding.
//! - [`math`]: exp, ln, sqrt, normal CDF.
//! - [`black_scholes`]: option value and delta.
//! - [`scenario`]: the price x vol grid and its parameters.
//! - [`risk_array`]: per-market scenario P&L, computed once per refresh.
//! - [`margin`]: portfolio and standard margin per underlying.
//! - [`correlation`]: credit across underlyings of a correlation group.
//! - [`health`]: the three health kinds and token valuation.
#![cfg_attr(not(test), no_std)]

pub mod black_scholes;
pub mod correlation;
pub mod health;
pub mod margin;
pub mod math;
pub mod risk_array;
pub mod scenario;
pub mod wide;

pub use fixed;

//! # pm-client
//!
//! The client side of portfolio-margin: instruction builders ([`sdk`]), Pyth account fixtures
//! from the real layout ([`pyth`]), an embedded in-process bank ([`local_bank`]), off-chain
//! health with the same engine the program runs ([`health`]), quotes and fills of the RFQ venue
//! ([`rfq`]), the keeper ([`keeper`], its per-round market upkeep in [`upkeep`], its price
//! sources in [`prices`]), the `pm margin`
//! and `pm price-option` calculators ([`margin_cli`]) the local demo ([`demo`]) and the action-sequence fuzzer ([`fuzz`]).

pub mod backtest;
pub mod bootstrap;
pub mod chain;
pub mod crash;
pub mod demo;
pub mod world;
pub mod demo_books;
pub mod fuzz;
pub mod health;
pub mod keeper;
pub mod local_bank;
pub mod margin_cli;
pub mod prices;
pub mod pyth;
pub mod rfq;
pub mod sdk;
pub mod upkeep;

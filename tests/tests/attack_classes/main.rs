//! Account-validation attack classes: one module per class, each performing real attacks on the
//! program that must fail with their own error and leave every account the transaction names
//! byte for byte unchanged (lamports and data). `docs/security.md` maps each test to the check
//! that stops it.
//!
//! `LocalBank::send` prepends a compute-budget instruction: the first instruction a test passes
//! is instruction 1 of the transaction.

#![allow(deprecated)] // solana-program-test 3.1 marks its API unstable.

mod common;

mod account_matching;
mod arbitrary_cpi;
mod close_and_revive;
mod duplicate_mutable;
mod missing_signer;
mod owner_checks;
mod pda_canonicalisation;
mod pda_sharing;
mod reinitialisation;
mod sysvar_spoofing;
mod type_cosplay;

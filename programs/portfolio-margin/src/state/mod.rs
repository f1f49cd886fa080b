//! Account layouts. All are zero-copy (`#[repr(C)]`, no implicit padding) with sizes
//! const-asserted, so clients and other programs can read them at fixed offsets.

pub mod collateral_bank;
pub mod group;
pub mod margin_account;
pub mod market;
pub mod underlying;
pub mod venue;

pub use collateral_bank::*;
pub use group::*;
pub use margin_account::*;
pub use market::*;
pub use underlying::*;
pub use venue::*;

/// One, in parts per million: weights and ratios are stored as `u32` ppm.
pub const PPM: u32 = 1_000_000;

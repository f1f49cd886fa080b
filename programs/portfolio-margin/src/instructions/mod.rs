//! One file per instruction: its accounts, checks and handler together.

pub mod add_collateral_bank;
pub mod close_margin_account;
pub mod create_group;
pub mod create_margin_account;
pub mod deposit;
pub mod health_check;
pub mod set_delegate;
pub mod update_collateral_bank;
pub mod withdraw;

pub use add_collateral_bank::*;
pub use close_margin_account::*;
pub use create_group::*;
pub use create_margin_account::*;
pub use deposit::*;
pub use health_check::*;
pub use set_delegate::*;
pub use update_collateral_bank::*;
pub use withdraw::*;

//! Events for deposits, withdrawals, fills, liquidations, bankruptcies, settlements, funding and
//! configuration changes (emitted with `emit!`).

use anchor_lang::prelude::*;

/// Emits `event` as Anchor's `emit!` does: a `Program data: ` log line with its discriminator
/// and Borsh bytes (base64), which indexers and `pm_client::sdk::events` decode. Off-chain (the
/// embedded bank runs the program natively) Anchor's log call does nothing (it is a syscall on
/// chain and a no-op elsewhere): the same line is then written through the syscall stubs
/// solana-program-test installs, into the transaction's own log at the same place, as [`NATIVE_EVENT_PREFIX`] followed by the data
/// (the stubs prefix every message with `Program log: `; the embedding client restores
/// `Program data: `).
pub fn emit_event<T: anchor_lang::Event>(event: &T) {
    let data = event.data();
    anchor_lang::solana_program::log::sol_log_data(&[&data]);
    #[cfg(not(target_os = "solana"))]
    {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        solana_sysvar::program_stubs::sol_log(&format!("{NATIVE_EVENT_PREFIX}{encoded}"));
    }
}

/// How an event's line reads in the log of a natively run transaction (see [`emit_event`]).
pub const NATIVE_EVENT_PREFIX: &str = "Program data: ";

/// A group was created.
#[event]
pub struct GroupCreated {
    pub group: Pubkey,
    pub admin: Pubkey,
    pub risk_authority: Pubkey,
    pub quote_mint: Pubkey,
}

/// A collateral bank was listed or its configuration changed.
#[event]
pub struct CollateralBankConfigured {
    pub group: Pubkey,
    pub bank: Pubkey,
    pub mint: Pubkey,
    /// The configuration now in force (oracle, feed, weights, limits).
    pub config: crate::state::BankConfig,
}

/// A margin account's delegate changed.
#[event]
pub struct DelegateSet {
    pub margin_account: Pubkey,
    pub delegate: Pubkey,
}

/// Tokens entered a bank's vault for a margin account.
#[event]
pub struct Deposited {
    pub margin_account: Pubkey,
    pub bank: Pubkey,
    /// Native units credited (what the vault actually received).
    pub amount_native: u64,
    pub balance_after_native: i64,
}

/// Tokens left a bank's vault for a margin account's owner.
#[event]
pub struct Withdrawn {
    pub margin_account: Pubkey,
    pub bank: Pubkey,
    pub amount_native: u64,
    pub balance_after_native: i64,
}

/// A fill between two margin accounts.
#[event]
pub struct Traded {
    pub market: Pubkey,
    pub buyer: Pubkey,
    pub seller: Pubkey,
    pub lots: i64,
    pub price_per_lot_native: i64,
    /// Venue program that submitted the fill, or `Pubkey::default()` for a signed block trade.
    pub venue: Pubkey,
}

/// A correlation group's correlation was set.
#[event]
pub struct CorrelationGroupSet {
    pub group: Pubkey,
    pub correlation_group: u8,
    pub correlation_ppm: u32,
}

/// An underlying joined a correlation group (or left its group: 0).
#[event]
pub struct UnderlyingCorrelationAssigned {
    pub underlying: Pubkey,
    pub correlation_group: u8,
}

/// A liquidator took over part of an unhealthy account's position (`liquidate_position`).
#[event]
pub struct PositionLiquidated {
    pub market: Pubkey,
    pub liquidator: Pubkey,
    pub liquidatee: Pubkey,
    /// Lots taken over: the liquidatee's position moved this far towards zero.
    pub lots: i64,
    /// Whether the liquidatee was long (it sold) or short (it bought back).
    pub liquidatee_long: bool,
    /// Price of the transfer, quote native units per lot (the mark moved by the liquidator's
    /// part of the fee).
    pub price_per_lot_native: i64,
    /// The insurance fund's part of the fee, quote native units.
    pub insurance_fee_native: i64,
    /// The liquidatee's liquidation-end health after the step, quote native units rounded
    /// down (negative: the account stays flagged as being liquidated).
    pub liquidatee_end_health_native: i64,
}

/// A liquidator repaid part of an account's quote debt for its collateral (`liquidate_token`).
#[event]
pub struct TokenLiquidated {
    pub liquidator: Pubkey,
    pub liquidatee: Pubkey,
    /// Bank of the collateral taken.
    pub asset_bank: Pubkey,
    /// Quote debt repaid, quote native units.
    pub liability_native: i64,
    /// Collateral transferred to the liquidator, the asset's native units (the debt's value
    /// plus the liquidation fee).
    pub asset_native: i64,
    /// The insurance fund's part of the fee, quote native units.
    pub insurance_fee_native: i64,
    /// As in [`PositionLiquidated`].
    pub liquidatee_end_health_native: i64,
}

/// A bankrupt account's remaining debt was closed (`resolve_bankruptcy`).
#[event]
pub struct BankruptcyResolved {
    pub account: Pubkey,
    /// The quote debt closed, quote native units.
    pub debt_native: i64,
    /// The part the insurance fund paid.
    pub insurance_paid_native: i64,
    /// The part charged to perp open interest (socialised), before rounding up per market.
    pub socialised_native: i64,
    /// What the rounding up per market charged beyond it, returned to the insurance fund (so the
    /// fund's net change is `insurance_excess_native - insurance_paid_native`).
    pub insurance_excess_native: i64,
    /// Banks whose collateral, worth less than the debt, passed to the insurance fund...
    pub collateral_taken_banks: Vec<Pubkey>,
    /// ...and the amounts, native units, in the same order.
    pub collateral_taken_native: Vec<u64>,
}

/// A settlement price was proposed for an expired option (`propose_settlement_price`).
#[event]
pub struct SettlementPriceProposed {
    pub market: Pubkey,
    /// Quote native units per lot.
    pub settlement_price_native: i64,
    /// Publication time of the Pyth update it came from.
    pub publish_ts: i64,
    /// When it becomes final unless an earlier update is proposed.
    pub final_ts: i64,
}

/// Positions of an expired option were paid their intrinsic value (`settle_expired_option`).
#[event]
pub struct OptionPositionsSettled {
    pub market: Pubkey,
    /// Quote native units per lot.
    pub settlement_price_native: i64,
    /// Paid to each long lot (and by each short lot), quote native units.
    pub intrinsic_per_lot_native: i64,
    /// Accounts whose position was settled by this instruction.
    pub accounts_settled: u32,
    /// The market's open interest afterwards, lots.
    pub open_interest_after_lots: i64,
}

/// Realised perp P&L moved from a losing position to a winning one (`settle_pnl`).
#[event]
pub struct PnlSettled {
    pub market: Pubkey,
    pub winner: Pubkey,
    pub loser: Pubkey,
    /// Quote native units moved.
    pub amount_native: i64,
}

/// A perp's funding index was brought up to date by `update_funding` (other instructions
/// accrue it too, silently: the index is in the market account).
#[event]
pub struct FundingUpdated {
    pub market: Pubkey,
    /// Cumulative funding paid by one long lot, quote native units.
    pub funding_index_native: i64,
    /// The mark premium last recorded by a fill, ppm of spot (it decays over a funding period
    /// from its timestamp; funding is paid on the decayed value).
    pub premium_ppm: i64,
    pub timestamp: i64,
}

/// The group's parameters or risk authority changed (`update_group`).
#[event]
pub struct GroupUpdated {
    pub group: Pubkey,
    pub before: crate::state::GroupParams,
    pub after: crate::state::GroupParams,
    pub previous_risk_authority: Pubkey,
    pub risk_authority: Pubkey,
}

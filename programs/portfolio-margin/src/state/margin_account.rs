//! The margin account: one trader's collateral balances and positions, margined together.

use anchor_lang::prelude::*;

/// Seed prefix of margin-account PDAs: `["account", group, owner, account_index (u32 LE)]`.
pub const MARGIN_ACCOUNT_SEED: &[u8] = b"account";
/// Collateral balance slots per account.
pub const MAX_COLLATERAL_BALANCES: usize = 8;
/// Derivatives position slots per account.
pub const MAX_POSITIONS: usize = 16;

/// One token balance of a margin account.
#[zero_copy]
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CollateralBalance {
    /// Bank of the token; `Pubkey::default()` when the slot is free.
    pub bank: Pubkey,
    /// Balance in native token units (negative only through settlement or liquidation).
    pub balance_native: i64,
    /// Bank's index in its group.
    pub bank_index: u16,
    /// 1 when the slot is used.
    pub in_use: u8,
    /// Explicit padding.
    pub padding: [u8; 5],
}

const _: () = assert!(core::mem::size_of::<CollateralBalance>() == 48);

/// One derivatives position (filled by the markets issue: perps and options).
#[zero_copy]
#[repr(C)]
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PositionSlot {
    /// Market of the position; `Pubkey::default()` when the slot is free.
    pub market: Pubkey,
    /// Position size in base lots (negative = short).
    pub base_lots: i64,
    /// Quote native units paid (negative) or received (positive) to open it.
    pub quote_native: i64,
    /// Market funding index (quote native per lot) when funding was last settled into
    /// `quote_native`.
    pub funding_index_native: i64,
    /// Market's index in its group.
    pub market_index: u16,
    /// 1 when the slot is used.
    pub in_use: u8,
    /// Explicit padding.
    pub padding: [u8; 5],
    /// Underlying's index in its group.
    pub underlying_index: u16,
    /// Explicit padding.
    pub padding2: [u8; 6],
    /// Market socialised-loss index when it was last charged into `quote_native`.
    pub loss_per_lot_native: i64,
    /// Perp P&L realised as a gain by `settle_pnl` in the current window, quote native units.
    pub pnl_settled_in_window_native: i64,
    /// Start of the current `settle_pnl` window, unix seconds.
    pub pnl_window_start_ts: i64,
}

const _: () = assert!(core::mem::size_of::<PositionSlot>() == 96);

/// A trader's cross-margined account.
#[account(zero_copy)]
#[repr(C)]
pub struct MarginAccount {
    /// Group of the account.
    pub group: Pubkey,
    /// Owner: the only key that can withdraw or close.
    pub owner: Pubkey,
    /// Delegate: may trade, never withdraw; `Pubkey::default()` for none.
    pub delegate: Pubkey,
    /// Index chosen by the owner (PDA seed).
    pub account_index: u32,
    /// PDA bump.
    pub bump: u8,
    /// 1 while a liquidation is under way (liquidation issue).
    pub being_liquidated: u8,
    /// Explicit padding.
    pub padding: [u8; 2],
    /// Venue program allowed to submit fills for this account; `Pubkey::default()` for none.
    pub approved_venue: Pubkey,
    /// Largest fill, in lots, the approved venue may submit for this account.
    pub venue_max_fill_lots: i64,
    /// The venue approval ends at this unix time.
    pub venue_expiry_ts: i64,
    /// The delegate may act until this unix time.
    pub delegate_expiry_ts: i64,
    /// Most value, quote native units, the delegate's fills may give away against the reference
    /// price (oracle for perps, model value for options), summed over all its fills. This is the
    /// bound on what a dishonest delegate can move out of the account.
    pub delegate_max_slippage_native: i64,
    /// Value given away so far by the delegate's fills, quote native units (reset by
    /// `set_delegate`).
    pub delegate_slippage_used_native: i64,
    /// A delegate's fill must be within this band of the reference price, ppm.
    pub delegate_price_band_ppm: u32,
    /// Explicit padding.
    pub padding2: [u8; 4],
    /// Space for future fields.
    pub reserved: [u8; 32],
    /// Token balances.
    pub balances: [CollateralBalance; MAX_COLLATERAL_BALANCES],
    /// Derivatives positions.
    pub positions: [PositionSlot; MAX_POSITIONS],
}

/// Size of the account data including Anchor's 8-byte discriminator.
pub const MARGIN_ACCOUNT_SIZE: usize = 8 + core::mem::size_of::<MarginAccount>();
const _: () = assert!(core::mem::size_of::<MarginAccount>() == 3 * 32 + 8 + 32 + 5 * 8 + 8 + 32 + 8 * 48 + 16 * 96);
const _: () = assert!(MARGIN_ACCOUNT_SIZE <= 4096);

impl MarginAccount {
    /// Whether `key` may trade for this account at `now` (owner, or a delegate whose approval has
    /// not expired).
    pub fn is_owner_or_delegate(&self, key: &Pubkey, now: i64) -> bool {
        *key == self.owner || self.is_active_delegate(key, now)
    }

    /// Whether `key` is this account's delegate (not the owner) and its approval is current.
    pub fn is_active_delegate(&self, key: &Pubkey, now: i64) -> bool {
        self.delegate != Pubkey::default() && *key == self.delegate && *key != self.owner && now < self.delegate_expiry_ts
    }

    /// Whether `key` controls this account: its owner or its delegate (expired or not).
    pub fn is_controlled_by(&self, key: &Pubkey) -> bool {
        *key == self.owner || (self.delegate != Pubkey::default() && *key == self.delegate)
    }

    /// The used balance slot for `bank`, if any.
    pub fn balance_index(&self, bank: &Pubkey) -> Option<usize> {
        self.balances.iter().position(|b| b.in_use == 1 && b.bank == *bank)
    }

    /// The slot for `bank`, taking a free one if needed.
    pub fn balance_index_or_insert(&mut self, bank: &Pubkey, bank_index: u16) -> Result<usize> {
        if let Some(i) = self.balance_index(bank) {
            return Ok(i);
        }
        let i = self
            .balances
            .iter()
            .position(|b| b.in_use == 0)
            .ok_or(crate::error::MarginError::CollateralSlotsFull)?;
        self.balances[i] = CollateralBalance { bank: *bank, balance_native: 0, bank_index, in_use: 1, padding: [0; 5] };
        Ok(i)
    }

    /// Frees a balance slot that reached zero, so other tokens can use it.
    pub fn release_if_zero(&mut self, index: usize) {
        if self.balances[index].balance_native == 0 {
            self.balances[index] = CollateralBalance::default();
        }
    }

    /// Active balances in slot order (the order health accounts are passed in).
    pub fn active_balances(&self) -> impl Iterator<Item = &CollateralBalance> {
        self.balances.iter().filter(|b| b.in_use == 1)
    }

    /// Whether nothing is held: required to close.
    pub fn is_empty(&self) -> bool {
        self.balances.iter().all(|b| b.in_use == 0) && self.positions.iter().all(|p| p.in_use == 0)
    }
}

/// A copy of a margin account on the heap (an account is over 2 KB: SBF stack frames are 4 KB).
pub fn boxed_copy(account: &MarginAccount) -> Box<MarginAccount> {
    let layout = std::alloc::Layout::new::<MarginAccount>();
    // SAFETY: MarginAccount is Pod (all-zero bytes are a valid value) and not zero-sized; the
    // allocation has its layout, so the Box owns it.
    let mut copy: Box<MarginAccount> = unsafe {
        let raw = std::alloc::alloc_zeroed(layout) as *mut MarginAccount;
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(raw)
    };
    bytemuck::bytes_of_mut(&mut *copy).copy_from_slice(bytemuck::bytes_of(account));
    copy
}

/// Writes `account` into a margin account's data (a byte copy: no stack temporary).
pub fn write_account(loader: &AccountLoader<MarginAccount>, account: &MarginAccount) -> Result<()> {
    let mut target = loader.load_mut()?;
    bytemuck::bytes_of_mut(&mut *target).copy_from_slice(bytemuck::bytes_of(account));
    Ok(())
}

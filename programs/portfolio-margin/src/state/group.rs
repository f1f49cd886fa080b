//! The group: one quote currency, an admin, a risk authority and group-wide risk parameters.

use crate::error::MarginError;
use crate::state::PPM;
use anchor_lang::prelude::*;
use fixed::types::I32F32;

/// Seed prefix of group PDAs: `["group", admin, group_index (u32 LE)]`.
pub const GROUP_SEED: &[u8] = b"group";
/// Most collateral banks one group can list.
pub const MAX_COLLATERAL_BANKS: u16 = 64;

/// A group of banks and margin accounts sharing a quote currency and risk parameters.
#[account(zero_copy)]
#[repr(C)]
pub struct Group {
    /// May list and configure banks.
    pub admin: Pubkey,
    /// May post volatilities and risk parameters (used by the markets issue).
    pub risk_authority: Pubkey,
    /// The quote token: every value and requirement is in its native units.
    pub quote_mint: Pubkey,
    /// Index chosen by the admin at creation (PDA seed).
    pub group_index: u32,
    /// Weight, in ppm, on positive unrealized P&L and long option value under init health.
    pub unrealized_init_weight_ppm: u32,
    /// Multiple of the oracle confidence subtracted from asset prices (added to liability
    /// prices) under init health, in ppm (2_000_000 = 2 x conf).
    pub conf_multiplier_ppm: u32,
    /// Number of banks listed so far (also the next bank's index).
    pub bank_count: u16,
    /// Decimals of the quote mint.
    pub quote_decimals: u8,
    /// PDA bump.
    pub bump: u8,
    /// Bank of the quote mint (option premiums, P&L and settlements are paid in its balance);
    /// set when that bank is listed.
    pub quote_bank: Pubkey,
    /// Number of underlyings listed so far (also the next one's index).
    pub underlying_count: u16,
    /// Number of markets listed so far (also the next one's index).
    pub market_count: u16,
    /// Explicit padding.
    pub padding: [u8; 4],
    /// Insurance fund, quote native units held in the quote bank's vault. Receives a share of
    /// liquidation fees and covers bankrupt accounts first.
    pub insurance_fund_native: i64,
    /// Liquidation fee, ppm of the price per lot (positions) or of the liability (tokens),
    /// paid by the liquidatee.
    pub liquidation_fee_ppm: u32,
    /// Share of the liquidation fee that goes to the insurance fund, ppm.
    pub insurance_share_ppm: u32,
    /// Number of perpetual markets listed (bankruptcy socialisation needs all of them).
    pub perp_market_count: u16,
    /// Explicit padding.
    pub padding2: [u8; 6],
    /// Correlation of each correlation group, ppm (index `id - 1` for group id `id`): the
    /// underlyings assigned to a group are margined on joint moves (`risk_engine::correlation`).
    pub correlation_ppm: [u32; MAX_CORRELATION_GROUPS],
}

/// Number of correlation groups a group can configure (ids 1..=8; 0 = none).
pub const MAX_CORRELATION_GROUPS: usize = risk_engine::correlation::MAX_CORRELATION_GROUPS;
/// A correlation in ppm as the engine takes it (Q32.32, rounded down: less credit).
pub fn correlation_from_ppm(ppm: u32) -> I32F32 {
    I32F32::from_bits(((ppm as i64) << 32) / crate::state::PPM as i64)
}

/// Highest correlation a correlation group may be given, ppm.
pub const MAX_CORRELATION_PPM: u32 = 990_000;

const _: () = assert!(core::mem::size_of::<Group>() == 3 * 32 + 4 * 3 + 2 + 2 + 64 + 4 * MAX_CORRELATION_GROUPS);

impl Group {
    /// The engine's view of `underlying`'s correlation group: none for id 0 (or an id the
    /// group cannot hold).
    pub fn correlation_of(&self, underlying: &crate::state::Underlying) -> risk_engine::correlation::Correlation {
        let id = underlying.correlation_group;
        match (id as usize).checked_sub(1).and_then(|i| self.correlation_ppm.get(i)) {
            Some(&ppm) => risk_engine::correlation::Correlation { group: id, correlation: correlation_from_ppm(ppm) },
            None => risk_engine::correlation::Correlation::default(),
        }
    }

    /// Fails unless `bank` is this group's quote bank (and the group has one).
    pub fn require_quote_bank(&self, bank: &Pubkey) -> Result<()> {
        require_keys_neq!(self.quote_bank, Pubkey::default(), crate::error::MarginError::NoQuoteBank);
        require_keys_eq!(*bank, self.quote_bank, crate::error::MarginError::WrongQuoteBank);
        Ok(())
    }
}

/// Largest weight on positive unrealized P&L under init health, ppm (1.0: a gain never counts
/// for more than itself).
pub const MAX_UNREALIZED_INIT_WEIGHT_PPM: u32 = PPM;
/// Largest confidence multiple, ppm (10 x the confidence interval; conservative asset prices
/// floor at zero, so a large multiple only makes init health harsher).
pub const MAX_CONF_MULTIPLIER_PPM: u32 = 10 * PPM;
/// Largest liquidation fee, ppm (10%). Each bank's init asset weight and each underlying's grid
/// price range are checked against the group's fee so that liquidation always raises health.
pub const MAX_LIQUIDATION_FEE_PPM: u32 = 100_000;
/// Largest share of the liquidation fee paid to the insurance fund, ppm (half): liquidators
/// keep at least half of the fee, so liquidating stays paid (review finding: a share of 100%,
/// which `update_group` could set at once, left liquidators nothing).
pub const MAX_INSURANCE_SHARE_PPM: u32 = PPM / 2;
/// Most decimals the quote mint may have (values are quote native units in I80F48).
pub const MAX_QUOTE_DECIMALS: u8 = 12;

/// Group-wide parameters chosen at creation; `update_group` changes them within the same
/// bounds (the liquidation fee only downwards).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupParams {
    /// Weight (ppm, `<= MAX_UNREALIZED_INIT_WEIGHT_PPM`) on positive unrealized P&L and long
    /// option value under init health.
    pub unrealized_init_weight_ppm: u32,
    /// Confidence multiple (ppm, `<= MAX_CONF_MULTIPLIER_PPM`) applied to conservative init prices.
    pub conf_multiplier_ppm: u32,
    /// Liquidation fee (ppm, `<= MAX_LIQUIDATION_FEE_PPM`), paid by the liquidatee.
    pub liquidation_fee_ppm: u32,
    /// Share of the liquidation fee going to the insurance fund (ppm, `<= MAX_INSURANCE_SHARE_PPM`).
    pub insurance_share_ppm: u32,
}

impl Group {
    /// The group-wide parameters now in force.
    pub fn params(&self) -> GroupParams {
        GroupParams {
            unrealized_init_weight_ppm: self.unrealized_init_weight_ppm,
            conf_multiplier_ppm: self.conf_multiplier_ppm,
            liquidation_fee_ppm: self.liquidation_fee_ppm,
            insurance_share_ppm: self.insurance_share_ppm,
        }
    }

    /// Writes validated parameters (`create_group`, `update_group`).
    pub fn set_params(&mut self, params: &GroupParams) {
        self.unrealized_init_weight_ppm = params.unrealized_init_weight_ppm;
        self.conf_multiplier_ppm = params.conf_multiplier_ppm;
        self.liquidation_fee_ppm = params.liquidation_fee_ppm;
        self.insurance_share_ppm = params.insurance_share_ppm;
    }
}

impl GroupParams {
    /// Checks every parameter's range (`InvalidGroupParams` names them all).
    pub fn validate(&self) -> Result<()> {
        require!(
            self.unrealized_init_weight_ppm <= MAX_UNREALIZED_INIT_WEIGHT_PPM
                && self.conf_multiplier_ppm <= MAX_CONF_MULTIPLIER_PPM
                && self.liquidation_fee_ppm <= MAX_LIQUIDATION_FEE_PPM
                && self.insurance_share_ppm <= MAX_INSURANCE_SHARE_PPM,
            MarginError::InvalidGroupParams
        );
        Ok(())
    }
}

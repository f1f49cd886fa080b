//! Reading Pyth `PriceUpdateV2` accounts safely.
//!
//! Every read checks, each with its own error: the account is owned by the Pyth receiver
//! program, its key is the one configured on the bank, its feed id is the bank's, the update
//! is fully verified (all Wormhole guardian signatures, not a partial quorum), the price and
//! the EMA price are positive, the update is no older than the bank's maximum age and the
//! confidence interval is within the bank's maximum ratio of the price.
//!
//! Prices are converted to quote native units per token native unit (I80F48):
//! `price x 10^(exponent + quote_decimals - token_decimals)`, rounded down for the oracle and
//! conservative asset prices and up for conservative liability prices.

use crate::error::MarginError;
use crate::state::{CollateralBank, Group, Underlying};
use anchor_lang::prelude::*;
use anchor_lang::Discriminator;
use fixed::types::I80F48;
use pyth_solana_receiver_sdk::price_update::{PriceUpdateV2, VerificationLevel};
use risk_engine::health::TokenPrices;

/// A checked oracle reading in Pyth's representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OracleReading {
    pub price: i64,
    pub conf: u64,
    pub ema_price: i64,
    pub ema_conf: u64,
    pub exponent: i32,
    pub publish_time: i64,
}

/// Which oracle something (a bank or an underlying) reads, and its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OracleConfig {
    /// The `PriceUpdateV2` account key.
    pub oracle: Pubkey,
    /// The Pyth feed id it must carry.
    pub feed_id: [u8; 32],
    /// Oldest publish time accepted, seconds.
    pub max_age_seconds: u32,
    /// Widest confidence accepted, ppm of the price.
    pub max_confidence_ppm: u32,
}

impl OracleConfig {
    /// A collateral bank's oracle.
    pub fn of_bank(bank: &CollateralBank) -> Self {
        OracleConfig {
            oracle: bank.oracle,
            feed_id: bank.feed_id,
            max_age_seconds: bank.max_price_age_seconds,
            max_confidence_ppm: bank.max_confidence_ppm,
        }
    }

    /// An underlying's oracle.
    pub fn of_underlying(underlying: &Underlying) -> Self {
        OracleConfig {
            oracle: underlying.oracle,
            feed_id: underlying.feed_id,
            max_age_seconds: underlying.max_price_age_seconds,
            max_confidence_ppm: underlying.max_confidence_ppm,
        }
    }
}

/// Decodes a `PriceUpdateV2` account after checking its owner and discriminator.
pub fn decode_update(oracle: &AccountInfo) -> Result<PriceUpdateV2> {
    require_keys_eq!(*oracle.owner, pyth_solana_receiver_sdk::ID, MarginError::OracleWrongOwner);
    let data = oracle.try_borrow_data()?;
    require!(
        data.len() >= 8 && &data[..8] == PriceUpdateV2::DISCRIMINATOR,
        MarginError::OracleInvalidData
    );
    PriceUpdateV2::try_deserialize(&mut &data[..]).map_err(|_| error!(MarginError::OracleInvalidData))
}

/// Reads and checks an oracle account against its configuration at time `now` (unix seconds).
pub fn read_oracle_account(config: &OracleConfig, oracle: &AccountInfo, now: i64) -> Result<OracleReading> {
    require_keys_eq!(oracle.key(), config.oracle, MarginError::OracleKeyMismatch);
    let update = decode_update(oracle)?;
    check_update(&update, &config.feed_id, config.max_age_seconds, config.max_confidence_ppm, now)
}

/// The checks on a decoded update (separate so listing can reuse them).
pub fn check_update(
    update: &PriceUpdateV2,
    feed_id: &[u8; 32],
    max_age_seconds: u32,
    max_confidence_ppm: u32,
    now: i64,
) -> Result<OracleReading> {
    let message = &update.price_message;
    require!(message.feed_id == *feed_id, MarginError::OracleFeedMismatch);
    require!(update.verification_level == VerificationLevel::Full, MarginError::OracleNotFullyVerified);
    require!(message.price > 0 && message.ema_price > 0, MarginError::OracleNonPositivePrice);
    // A publish time in the future (clock skew between Pythnet and Solana) counts as age 0.
    let age = now.saturating_sub(message.publish_time);
    require!(age <= max_age_seconds as i64, MarginError::OracleStale);
    // conf / price <= max_confidence_ppm / 1e6, in integers.
    let conf_scaled = (message.conf as u128).checked_mul(crate::state::PPM as u128).ok_or(MarginError::MathOverflow)?;
    let limit = (message.price as u128).checked_mul(max_confidence_ppm as u128).ok_or(MarginError::MathOverflow)?;
    require!(conf_scaled <= limit, MarginError::OracleConfidenceTooWide);
    Ok(OracleReading {
        price: message.price,
        conf: message.conf,
        ema_price: message.ema_price,
        ema_conf: message.ema_conf,
        exponent: message.exponent,
        publish_time: message.publish_time,
    })
}

/// `mantissa x 10^exponent` as I80F48, rounded down or up; errors when out of range.
pub fn scale_decimal(mantissa: i128, exponent: i32, round_up: bool) -> Result<I80F48> {
    let overflow = || error!(MarginError::OraclePriceOutOfRange);
    require!((-30..=30).contains(&exponent), MarginError::OraclePriceOutOfRange);
    let pow = 10i128.checked_pow(exponent.unsigned_abs()).ok_or_else(overflow)?;
    let bits = if exponent >= 0 {
        mantissa.checked_mul(pow).and_then(|v| v.checked_mul(1 << 48)).ok_or_else(overflow)?
    } else {
        let numerator = mantissa.checked_mul(1 << 48).ok_or_else(overflow)?;
        let quotient = numerator.div_euclid(pow);
        if round_up && numerator.rem_euclid(pow) != 0 {
            quotient + 1
        } else {
            quotient
        }
    };
    Ok(I80F48::from_bits(bits))
}

impl OracleReading {
    /// Conservative mantissas at ppm scale (exponent `self.exponent - 6`): the lower of price and
    /// EMA less the group's confidence multiple of their confidences, and the higher plus it.
    pub fn conservative_mantissas_ppm(&self, group: &Group) -> (i128, i128) {
        let k = group.conf_multiplier_ppm as i128;
        let ppm = crate::state::PPM as i128;
        let low = (self.price as i128 * ppm - k * self.conf as i128).min(self.ema_price as i128 * ppm - k * self.ema_conf as i128);
        let high = (self.price as i128 * ppm + k * self.conf as i128).max(self.ema_price as i128 * ppm + k * self.ema_conf as i128);
        (low, high)
    }

    /// Oracle and conservative prices in quote native units per token native unit.
    pub fn token_prices(&self, group: &Group, token_decimals: u8) -> Result<TokenPrices> {
        let exponent = self.exponent + group.quote_decimals as i32 - token_decimals as i32;
        let (low, high) = self.conservative_mantissas_ppm(group);
        Ok(TokenPrices {
            oracle: scale_decimal(self.price as i128, exponent, false)?,
            init_asset: scale_decimal(low.max(0), exponent - 6, false)?,
            init_liability: scale_decimal(high, exponent - 6, true)?,
        })
    }
}

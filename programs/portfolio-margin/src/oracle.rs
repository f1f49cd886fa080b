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

#[cfg(test)]
mod tests {
    use super::*;
    use pyth_solana_receiver_sdk::price_update::PriceFeedMessage;

    const FEED: [u8; 32] = [7; 32];
    const NOW: i64 = 1_000_000;

    /// SOL at $150.00 (exponent -8), confidence 5 cents, published `age` seconds ago.
    fn update(age: i64) -> PriceUpdateV2 {
        PriceUpdateV2 {
            write_authority: Pubkey::default(),
            verification_level: VerificationLevel::Full,
            price_message: PriceFeedMessage {
                feed_id: FEED,
                price: 15_000_000_000,
                conf: 5_000_000,
                exponent: -8,
                publish_time: NOW - age,
                prev_publish_time: NOW - age - 1,
                ema_price: 14_900_000_000,
                ema_conf: 4_000_000,
            },
            posted_slot: 0,
        }
    }

    fn code(result: Result<OracleReading>) -> u32 {
        match result {
            Err(Error::AnchorError(e)) => e.error_code_number,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn margin(error: MarginError) -> u32 {
        anchor_lang::error::ERROR_CODE_OFFSET + error as u32
    }

    #[test]
    fn every_check_of_an_update_has_its_own_error() {
        assert_eq!(check_update(&update(60), &FEED, 60, 1_000, NOW).unwrap().price, 15_000_000_000);
        assert_eq!(code(check_update(&update(61), &FEED, 60, 1_000, NOW)), margin(MarginError::OracleStale));
        // A publish time ahead of the clock counts as fresh.
        assert!(check_update(&update(-30), &FEED, 0, 1_000, NOW).is_ok());
        assert_eq!(code(check_update(&update(0), &[8; 32], 60, 1_000, NOW)), margin(MarginError::OracleFeedMismatch));
        let mut partial = update(0);
        partial.verification_level = VerificationLevel::Partial { num_signatures: 12 };
        assert_eq!(code(check_update(&partial, &FEED, 60, 1_000, NOW)), margin(MarginError::OracleNotFullyVerified));
        for (price, ema) in [(0, 1), (1, 0), (-5, 1)] {
            let mut bad = update(0);
            bad.price_message.price = price;
            bad.price_message.ema_price = ema;
            assert_eq!(code(check_update(&bad, &FEED, 60, 1_000, NOW)), margin(MarginError::OracleNonPositivePrice));
        }
        // Confidence 5 cents on $150 is 333 ppm: accepted at 334, refused at 333.
        assert!(check_update(&update(0), &FEED, 60, 334, NOW).is_ok());
        assert_eq!(code(check_update(&update(0), &FEED, 60, 333, NOW)), margin(MarginError::OracleConfidenceTooWide));
    }

    #[test]
    fn decimals_scale_exactly_and_round_as_asked() {
        // $150.00000001 at exponent -8 into quote native per token native (6 - 9 decimals):
        // 15000000001 x 10^-11 = 0.15000000001.
        let down = scale_decimal(15_000_000_001, -11, false).unwrap();
        let up = scale_decimal(15_000_000_001, -11, true).unwrap();
        assert_eq!(up.to_bits() - down.to_bits(), 1, "an inexact quotient rounds one unit apart");
        assert!(down.to_num::<f64>() <= 0.15000000001 && up.to_num::<f64>() >= 0.15000000001);
        // Exact values do not move with the rounding; positive exponents scale up.
        assert_eq!(scale_decimal(3, -1, true).unwrap(), scale_decimal(3, -1, false).unwrap() + I80F48::DELTA);
        assert_eq!(scale_decimal(5, -1, true).unwrap(), I80F48::from_num(0.5));
        assert_eq!(scale_decimal(12, 3, false).unwrap(), I80F48::from_num(12_000));
        // Out of range: an error, not a wrap.
        assert!(scale_decimal(1, 31, false).is_err());
        assert!(scale_decimal(i64::MAX as i128, 20, false).is_err());
    }

    #[test]
    fn conservative_prices_bracket_price_and_ema_by_their_confidence() {
        let mut group: Group = bytemuck::Zeroable::zeroed();
        group.quote_decimals = 6;
        group.conf_multiplier_ppm = 2_000_000; // two confidence intervals
        let reading = check_update(&update(0), &FEED, 60, 1_000, NOW).unwrap();
        let prices = reading.token_prices(&group, 9).unwrap();
        // Per lamport in micro-USD: oracle 0.15; init asset min(150 - 0.10, 149 - 0.08) =
        // 148.92; init liability max(150 + 0.10, 149 + 0.08) = 150.10.
        assert_eq!(prices.oracle, scale_decimal(15_000_000_000, -11, false).unwrap());
        assert!((prices.init_asset.to_num::<f64>() - 0.14892).abs() < 1e-12);
        assert!((prices.init_liability.to_num::<f64>() - 0.15010).abs() < 1e-12);
        assert!(prices.init_asset <= prices.oracle && prices.oracle <= prices.init_liability);
    }
}

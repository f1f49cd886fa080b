//! Pyth `PriceUpdateV2` accounts built from the real layout (the receiver SDK's own type and
//! Anchor serialisation), for the embedded bank, the demo and tests.

use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountSerialize;
use pyth_solana_receiver_sdk::price_update::{PriceFeedMessage, PriceUpdateV2, VerificationLevel};
use solana_account::Account;

/// A price as Pyth publishes it: `price x 10^exponent`, with confidence and EMA.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PythPrice {
    pub feed_id: [u8; 32],
    pub price: i64,
    pub conf: u64,
    pub ema_price: i64,
    pub ema_conf: u64,
    pub exponent: i32,
    pub publish_time: i64,
    pub verification: VerificationLevel,
}

impl PythPrice {
    /// A fully verified price with EMA equal to the price and `conf_bps` basis points of
    /// confidence, exponent -8 (Pyth's usual for USD feeds).
    pub fn usd(feed_id: [u8; 32], price: f64, conf_bps: u64, publish_time: i64) -> Self {
        let mantissa = (price * 1e8).round() as i64;
        let conf = (mantissa as u64).saturating_mul(conf_bps) / 10_000;
        PythPrice {
            feed_id,
            price: mantissa,
            conf,
            ema_price: mantissa,
            ema_conf: conf,
            exponent: -8,
            publish_time,
            verification: VerificationLevel::Full,
        }
    }

    /// Serialised account data (discriminator + borsh), exactly as the receiver program writes it.
    pub fn account_data(&self) -> Vec<u8> {
        let update = PriceUpdateV2 {
            write_authority: Pubkey::new_from_array([7; 32]),
            verification_level: self.verification,
            price_message: PriceFeedMessage {
                feed_id: self.feed_id,
                price: self.price,
                conf: self.conf,
                exponent: self.exponent,
                publish_time: self.publish_time,
                prev_publish_time: self.publish_time - 1,
                ema_price: self.ema_price,
                ema_conf: self.ema_conf,
            },
            posted_slot: 0,
        };
        let mut data = Vec::with_capacity(PriceUpdateV2::LEN);
        update.try_serialize(&mut data).expect("serialise PriceUpdateV2");
        data
    }

    /// The account, owned by the Pyth receiver program (or `owner` to simulate a spoof).
    pub fn account(&self, owner: Pubkey) -> Account {
        Account { lamports: 10_000_000, data: self.account_data(), owner, executable: false, rent_epoch: 0 }
    }
}

/// A deterministic feed id for a symbol (real deployments use Pyth's published ids).
pub fn feed_id_for(symbol: &str) -> [u8; 32] {
    let mut id = [0u8; 32];
    for (i, byte) in symbol.bytes().enumerate().take(32) {
        id[i] = byte;
    }
    id[31] = 0x5e;
    id
}

//! Fresh prices are the keeper's job. Pyth on Solana is a pull oracle: an update reaches an
//! account only when someone posts it, and every instruction that prices an account refuses an
//! update older than the oracle's maximum age (`OracleStale`). A keeper working through a
//! long queue after a crash outlives a 60-second age many times over, so it watches the
//! oracles its steps read ([`PriceKeeper`]) and, once an update has used a share of its maximum
//! age, gets the newest price from its [`PriceSource`] and posts it ([`Chain::post_price_update`])
//! before the next step.
//!
//! Sources: the simulated market on the embedded bank ([`SimulatedMarket`]: the price the
//! simulation set, republished at the bank's current time) and, on a cluster, a Pyth price
//! service over HTTP ([`HermesSource`], `GET <url>/v2/updates/price/latest`).

use crate::chain::Chain;
use crate::keeper::KeeperReport;
use crate::pyth::PythPrice;
use crate::upkeep::record_error;
use anchor_lang::prelude::Pubkey;
use anchor_lang::AccountDeserialize;
use anyhow::{anyhow, Result};
use portfolio_margin::oracle::OracleConfig;
use pyth_solana_receiver_sdk::price_update::{PriceUpdateV2, VerificationLevel};
use std::collections::HashMap;

/// Where the keeper gets prices newer than the ones on chain.
pub enum PriceSource {
    /// None: the keeper only watches (an external pusher keeps the feeds); a stale oracle is
    /// reported once per round, by name.
    None,
    /// The embedded simulation's market.
    Simulated(SimulatedMarket),
    /// A Pyth price service (Hermes) reached over HTTP.
    Hermes(HermesSource),
}

impl PriceSource {
    /// The newest price of `feed_id`; `now` is the chain's time (the simulated market publishes
    /// at it, a price service reports its own publish time).
    pub async fn latest(&mut self, feed_id: &[u8; 32], now: i64) -> Result<Option<PythPrice>> {
        match self {
            PriceSource::None => Ok(None),
            PriceSource::Simulated(market) => Ok(market.latest(feed_id, now)),
            PriceSource::Hermes(hermes) => hermes.latest(feed_id).await.map(Some),
        }
    }
}

/// The simulated market: one price per feed (USD), published with 5 bps of confidence at
/// whatever time it is asked at, as a live market would be.
#[derive(Clone, Debug, Default)]
pub struct SimulatedMarket {
    pub prices: HashMap<[u8; 32], f64>,
}

impl SimulatedMarket {
    pub fn new(prices: impl IntoIterator<Item = ([u8; 32], f64)>) -> Self {
        SimulatedMarket { prices: prices.into_iter().collect() }
    }

    pub fn latest(&self, feed_id: &[u8; 32], now: i64) -> Option<PythPrice> {
        self.prices.get(feed_id).map(|price| PythPrice::usd(*feed_id, *price, 5, now))
    }
}

/// A Pyth price service (Hermes) over HTTP: `GET <base_url>/v2/updates/price/latest?ids[]=<feed
/// hex>&parsed=true`. The parsed price is what the keeper checks; the binary part (a
/// Wormhole-signed accumulator update) is what a cluster posting needs.
pub struct HermesSource {
    pub base_url: String,
    client: reqwest::Client,
}

/// One feed's latest update from a price service.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceUpdate {
    pub price: PythPrice,
    /// The signed update(s), hex, to post through the Pyth receiver.
    pub binary_hex: Vec<String>,
}

impl HermesSource {
    /// `base_url` e.g. `https://hermes.pyth.network`.
    pub fn new(base_url: &str) -> Self {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().unwrap_or_default();
        HermesSource { base_url: base_url.trim_end_matches('/').to_string(), client }
    }

    /// The request for `feed_id`'s latest update.
    pub fn latest_url(&self, feed_id: &[u8; 32]) -> String {
        format!("{}/v2/updates/price/latest?ids[]={}&parsed=true&encoding=hex", self.base_url, hex(feed_id))
    }

    pub async fn latest(&mut self, feed_id: &[u8; 32]) -> Result<PythPrice> {
        let url = self.latest_url(feed_id);
        let response = self.client.get(&url).send().await.map_err(|e| anyhow!("price service {url}: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| anyhow!("price service {url}: {e}"))?;
        if !status.is_success() {
            return Err(anyhow!("price service {url}: HTTP {status}: {}", body.chars().take(200).collect::<String>()));
        }
        Ok(parse_latest(&body, feed_id)?.price)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a price service's `/v2/updates/price/latest` body for `feed_id` (prices and
/// confidences are decimal strings, the exponent and publish time numbers).
pub fn parse_latest(body: &str, feed_id: &[u8; 32]) -> Result<ServiceUpdate> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|e| anyhow!("price service: body is not JSON: {e}"))?;
    let wanted = hex(feed_id);
    let parsed = json["parsed"].as_array().ok_or_else(|| anyhow!("price service: no `parsed` array (ask with parsed=true)"))?;
    let entry = parsed
        .iter()
        .find(|p| p["id"].as_str().map(|id| id.trim_start_matches("0x").eq_ignore_ascii_case(&wanted)) == Some(true))
        .ok_or_else(|| anyhow!("price service: feed {wanted} not in the answer"))?;
    let int = |v: &serde_json::Value, what: &str| -> Result<i64> {
        match v {
            serde_json::Value::String(s) => s.parse::<i64>().map_err(|e| anyhow!("price service: {what} {s:?}: {e}")),
            serde_json::Value::Number(n) => n.as_i64().ok_or_else(|| anyhow!("price service: {what} {n} out of range")),
            _ => Err(anyhow!("price service: {what} missing")),
        }
    };
    let price = &entry["price"];
    let ema = &entry["ema_price"];
    let exponent = int(&price["expo"], "price.expo")?;
    let conf = int(&price["conf"], "price.conf")?;
    let ema_conf = int(&ema["conf"], "ema_price.conf")?;
    anyhow::ensure!(conf >= 0 && ema_conf >= 0, "price service: negative confidence");
    let binary_hex = json["binary"]["data"].as_array().map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect()).unwrap_or_default();
    Ok(ServiceUpdate {
        price: PythPrice {
            feed_id: *feed_id,
            price: int(&price["price"], "price.price")?,
            conf: conf as u64,
            ema_price: int(&ema["price"], "ema_price.price")?,
            ema_conf: ema_conf as u64,
            exponent: i32::try_from(exponent).map_err(|_| anyhow!("price service: exponent {exponent} out of range"))?,
            publish_time: int(&price["publish_time"], "price.publish_time")?,
            verification: VerificationLevel::Full,
        },
        binary_hex,
    })
}

/// Refresh an oracle once its update has used this share (ppm) of the maximum age, by default.
pub const DEFAULT_PRICE_REFRESH_AT_PPM: u32 = 500_000;

/// The oracles a keeper's steps read, and how it keeps them fresh.
pub struct PriceKeeper {
    pub source: PriceSource,
    /// Post a new update once the current one has used this share (ppm) of its maximum age.
    pub refresh_at_ppm: u32,
    /// Watched oracles: feed id and the smallest maximum age any reader of it allows.
    oracles: HashMap<Pubkey, (OracleConfig, Option<i64>)>,
    /// Oracles already reported stale-and-unfixable this round (reported once, not per step).
    reported: Vec<Pubkey>,
}

impl Default for PriceKeeper {
    fn default() -> Self {
        PriceKeeper::new(PriceSource::None)
    }
}

impl PriceKeeper {
    pub fn new(source: PriceSource) -> Self {
        PriceKeeper { source, refresh_at_ppm: DEFAULT_PRICE_REFRESH_AT_PPM, oracles: HashMap::new(), reported: Vec::new() }
    }

    /// Watches an oracle (a bank's or an underlying's); the strictest maximum age wins.
    pub fn watch(&mut self, config: OracleConfig) {
        let entry = self.oracles.entry(config.oracle).or_insert((config, None));
        entry.0.max_age_seconds = entry.0.max_age_seconds.min(config.max_age_seconds);
    }

    pub fn watched(&self) -> usize {
        self.oracles.len()
    }

    /// A new round: stale oracles may be reported again.
    pub fn new_round(&mut self) {
        self.reported.clear();
    }

    /// Posts a fresh update on every watched oracle whose update has used `refresh_at_ppm` of its
    /// maximum age (or is unreadable) and whose source has a newer price. Returns the posts
    /// made. The publish times seen are remembered, so between refreshes this reads only the
    /// clock.
    pub async fn ensure_fresh<C: Chain>(&mut self, chain: &mut C, report: &mut KeeperReport) -> u32 {
        let now = match chain.now().await {
            Ok(now) => now,
            Err(e) => {
                record_error(report, format_args!("reading the clock: {e}"));
                return 0;
            }
        };
        let mut posts = 0;
        let keys: Vec<Pubkey> = self.oracles.keys().copied().collect();
        for key in keys {
            let (config, known) = self.oracles[&key];
            let due = |published: i64| (now - published) as i128 * 1_000_000 >= config.max_age_seconds as i128 * self.refresh_at_ppm as i128;
            if let Some(published) = known {
                if !due(published) {
                    continue;
                }
            }
            // Someone else may have posted since: read before posting.
            let on_chain = match chain.account_data(&key).await {
                Ok(Some(data)) => PriceUpdateV2::try_deserialize(&mut &data[..]).ok().map(|u| u.price_message.publish_time),
                Ok(None) => None,
                Err(e) => {
                    record_error(report, format_args!("reading oracle {key}: {e}"));
                    continue;
                }
            };
            if let Some(published) = on_chain {
                self.oracles.get_mut(&key).expect("watched").1 = Some(published);
                if !due(published) {
                    continue;
                }
            }
            let stale = on_chain.is_none_or(|published| now - published > config.max_age_seconds as i64);
            let fresh = match self.source.latest(&config.feed_id, now).await {
                Ok(Some(price)) if on_chain.is_none_or(|published| price.publish_time > published) => price,
                Ok(_) => {
                    if stale && matches!(self.source, PriceSource::None) && !self.reported.contains(&key) {
                        self.reported.push(key);
                        record_error(report, format_args!("oracle {key} is stale and the keeper has no price source to refresh it"));
                    }
                    continue;
                }
                Err(e) => {
                    if !self.reported.contains(&key) {
                        self.reported.push(key);
                        record_error(report, format_args!("price source for oracle {key}: {e}"));
                    }
                    continue;
                }
            };
            match chain.post_price_update(&key, &fresh).await {
                Ok(()) => {
                    posts += 1;
                    self.oracles.get_mut(&key).expect("watched").1 = Some(fresh.publish_time);
                }
                Err(e) => {
                    if !self.reported.contains(&key) {
                        self.reported.push(key);
                        record_error(report, format_args!("posting a price update to oracle {key}: {e}"));
                    }
                }
            }
        }
        report.price_updates += posts;
        posts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/v2/updates/price/latest?ids[]=...&parsed=true&encoding=hex` answer in the price
    /// service's documented shape (SOL/USD feed id; the binary part shortened).
    const LATEST_BODY: &str = r#"{
      "binary": {"encoding": "hex", "data": ["504e41550100000003b801000000040d00"]},
      "parsed": [{
        "id": "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d",
        "price": {"price": "14225106000", "conf": "7596430", "expo": -8, "publish_time": 1764698012},
        "ema_price": {"price": "14230771000", "conf": "8010573", "expo": -8, "publish_time": 1764698012},
        "metadata": {"slot": 228471936, "proof_available_time": 1764698013, "prev_publish_time": 1764698011}
      }]
    }"#;

    fn sol_feed() -> [u8; 32] {
        let hex = "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d";
        let mut id = [0u8; 32];
        for (i, byte) in id.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        id
    }

    #[test]
    fn a_price_service_answer_becomes_a_pyth_price() {
        let update = parse_latest(LATEST_BODY, &sol_feed()).unwrap();
        assert_eq!(
            update.price,
            PythPrice {
                feed_id: sol_feed(),
                price: 14_225_106_000,
                conf: 7_596_430,
                ema_price: 14_230_771_000,
                ema_conf: 8_010_573,
                exponent: -8,
                publish_time: 1_764_698_012,
                verification: VerificationLevel::Full,
            }
        );
        assert_eq!(update.binary_hex, vec!["504e41550100000003b801000000040d00".to_string()]);
        // The account the keeper would post reads back as the same price.
        let data = update.price.account_data();
        let decoded = PriceUpdateV2::try_deserialize(&mut &data[..]).unwrap();
        assert_eq!((decoded.price_message.price, decoded.price_message.exponent), (14_225_106_000, -8));
    }

    #[test]
    fn a_price_service_answer_without_the_feed_or_malformed_is_refused_by_reason() {
        let other = [1u8; 32];
        let error = parse_latest(LATEST_BODY, &other).unwrap_err().to_string();
        assert!(error.contains("not in the answer"), "{error}");
        let error = parse_latest(&LATEST_BODY.replace("\"7596430\"", "\"-5\""), &sol_feed()).unwrap_err().to_string();
        assert!(error.contains("negative confidence"), "{error}");
        let error = parse_latest(&LATEST_BODY.replace("\"14225106000\"", "\"abc\""), &sol_feed()).unwrap_err().to_string();
        assert!(error.contains("price.price"), "{error}");
        assert!(parse_latest("<html>", &sol_feed()).unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn the_request_names_the_feed_in_hex() {
        let source = HermesSource::new("https://hermes.example/");
        assert_eq!(
            source.latest_url(&sol_feed()),
            "https://hermes.example/v2/updates/price/latest?ids[]=ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d&parsed=true&encoding=hex"
        );
    }
}

//! Upkeep: what the keeper does each round, before liquidations, to keep the protocol live on
//! either transport.
//!
//! - **Markets** are rediscovered from the group's market count (PDAs), so a market listed
//!   after the keeper started is kept too (and every perp is passed to `resolve_bankruptcy`).
//! - **Risk arrays** are refreshed only when stale or about to be: spot or posted vol past a
//!   share of the underlying's tolerance, age past that share of the maximum, never computed, or
//!   an expired option whose array predates expiry. Final (settled) options need none.
//! - **Funding** is accrued (`update_funding`) on perps idle for longer than an interval, while
//!   there is a premium left to accrue.
//! - **Expired options**: a settlement price is proposed from the earliest qualifying update the
//!   keeper can get (the transport's archive at the expiry second, else the live oracle if its
//!   publish time qualifies), replacing a later proposal; once final, every holder among the
//!   accounts is settled, in batches that fit a legacy transaction.
//!
//! Failures are counted and printed by the program's error name, never the end of a run.

use crate::chain::{Chain, ChainError};
use crate::keeper::{Keeper, KeeperReport};
use crate::sdk::{self, MarketKeys};
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::AccountDeserialize;
use fixed::types::I32F32;
use portfolio_margin::error::MarginError;
use portfolio_margin::oracle::check_update;
use portfolio_margin::state::{Group, MarginAccount, Market, Underlying, PPM, SETTLEMENT_FALLBACK_SECONDS};
use pyth_solana_receiver_sdk::price_update::PriceUpdateV2;
use std::collections::HashMap;

/// Funding accrual interval when none is configured, at most (seconds).
pub const DEFAULT_MAX_FUNDING_INTERVAL_SECONDS: i64 = 15 * 60;

/// How eagerly the keeper keeps markets up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpkeepConfig {
    /// Refresh a risk array once it has used this share (ppm) of any tolerance: spot move, vol
    /// move, age. The rest covers the time until the next round, so health checks (and the
    /// trades and withdrawals behind them) rarely meet a stale array.
    pub refresh_at_ppm: u32,
    /// Seconds between funding accruals of an idle perp. `None`: a quarter of the market's
    /// funding period, at most 15 minutes (see [`funding_interval`]).
    pub funding_interval_seconds: Option<u32>,
    /// Funding and proposal instructions per transaction.
    pub instructions_per_transaction: usize,
    /// Risk-array refreshes per transaction: an option refresh on the default 71-scenario grid
    /// (every scenario valued now and after the look-ahead) costs about 300,000 compute units
    /// on-chain (docs/compute-units.md), so 3 stay within Solana's 1,400,000 per transaction.
    pub refreshes_per_transaction: usize,
    /// Margin accounts per `settle_expired_option` transaction (27 fit a legacy transaction
    /// with the embedded bank's compute-budget instruction; 20 leaves room).
    pub settle_batch: usize,
    /// Liquidation steps (on different accounts) sent together before waiting for their
    /// confirmations (see [`crate::chain::Chain::send_steps`]). 1: one at a time.
    pub steps_in_flight: usize,
}

impl Default for UpkeepConfig {
    fn default() -> Self {
        UpkeepConfig {
            refresh_at_ppm: 750_000,
            funding_interval_seconds: None,
            instructions_per_transaction: 8,
            refreshes_per_transaction: 3,
            settle_batch: 20,
            steps_in_flight: 8,
        }
    }
}

/// Why a risk array needs a refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshReason {
    /// Never computed.
    Never,
    /// An expired option's array predates expiry (health needs intrinsic values).
    Expiry,
    /// Spot moved past the used share of the price tolerance.
    Price,
    /// A live option's posted vol moved past the used share of the vol tolerance.
    Vol,
    /// Older than the used share of the maximum age.
    Age,
}

/// Whether a refresh of `market` can matter and succeed at `now`: not for a final option
/// (health values it at the settlement price) nor for a live option whose vol was never posted
/// (the refresh fails, and nobody can hold it).
pub fn refreshable(market: &Market, now: i64) -> bool {
    let never_posted_vol = market.is_option() && !market.is_expired(now) && market.vol_updated_ts == 0;
    !market.is_settled(now) && !never_posted_vol
}

/// Why `market`'s array should be refreshed at `now` with the underlying's `spot` per lot, if
/// it should, once `refresh_at_ppm` of a tolerance is used (call only when [`refreshable`]).
pub fn refresh_reason(market: &Market, underlying: &Underlying, spot: I32F32, now: i64, refresh_at_ppm: u32) -> Option<RefreshReason> {
    if market.array_updated_ts == 0 {
        return Some(RefreshReason::Never);
    }
    if market.is_expired(now) && market.array_updated_ts < market.expiry_ts {
        return Some(RefreshReason::Expiry);
    }
    let share = refresh_at_ppm as i128;
    let ppm = PPM as i128;
    // |spot - ref| / ref > tolerance x share, in integers.
    let reference = market.array_spot_bits as i128;
    let moved = (spot.to_bits() as i128 - reference).abs();
    if reference <= 0 || moved * ppm * ppm > underlying.array_price_tolerance_ppm as i128 * share * reference {
        return Some(RefreshReason::Price);
    }
    if market.is_option() && !market.is_expired(now) {
        let vol_moved = (market.vol_bits as i128 - market.array_vol_bits as i128).abs();
        if vol_moved * ppm * ppm > (underlying.array_vol_tolerance_ppm as i128 * share) << 32 {
            return Some(RefreshReason::Vol);
        }
    }
    let age = now.saturating_sub(market.array_updated_ts) as i128;
    if age * ppm > underlying.array_max_age_seconds as i128 * share {
        return Some(RefreshReason::Age);
    }
    None
}

/// Seconds between funding accruals of an idle perp: `configured`, else a quarter of its
/// funding period, at most 15 minutes. Health counts funding only as far as it is accrued, and
/// an accrual prices its whole interval at the spot of that moment: a quarter period keeps the
/// funding health cannot see under a quarter of one period's maximum rate, and the 15-minute
/// cap bounds both for long periods, at 96 small transactions a day per market.
pub fn funding_interval(market: &Market, configured: Option<u32>) -> i64 {
    match configured {
        Some(seconds) => seconds.max(1) as i64,
        None => (market.funding_period_seconds as i64 / 4).clamp(1, DEFAULT_MAX_FUNDING_INTERVAL_SECONDS),
    }
}

/// Whether a perp's funding should be accrued at `now`: the interval has passed and there is
/// something to accrue (a premium that had not fully decayed by the last accrual; after that an
/// accrual changes nothing, so none is sent until a fill sets a new premium).
pub fn funding_due(market: &Market, now: i64, configured: Option<u32>) -> bool {
    if market.is_option() || now.saturating_sub(market.funding_last_ts) < funding_interval(market, configured) {
        return false;
    }
    let decayed_at = market.funding_premium_ts.saturating_add(market.funding_period_seconds.max(1) as i64);
    market.funding_premium_ppm != 0 && market.funding_last_ts < decayed_at
}

/// Whether an update published at `published` may be proposed for `market` at `now`: at or
/// after expiry, within the settlement window until the fallback opens.
pub fn settlement_update_qualifies(market: &Market, published: i64, now: i64) -> bool {
    let window_end = market.expiry_ts.saturating_add(market.settlement_window_seconds as i64);
    published >= market.expiry_ts && (published <= window_end || now > window_end.saturating_add(SETTLEMENT_FALLBACK_SECONDS))
}

/// Whether proposing an update published at `published` changes `market`'s proposal (none yet,
/// or a later one).
pub fn improves_proposal(market: &Market, published: i64) -> bool {
    market.settlement_proposed_ts == 0 || published < market.settlement_publish_ts
}

/// The group's markets as read at the start of a round.
pub struct RoundMarkets {
    pub now: i64,
    pub markets: Vec<(MarketKeys, Market)>,
}

fn code(error: MarginError) -> u32 {
    error.into()
}

/// Counts and prints an error (always: a keeper's failures must be visible).
pub(crate) fn record_error(report: &mut KeeperReport, what: impl std::fmt::Display) {
    report.errors += 1;
    eprintln!("  keeper error: {what}");
}

/// One instruction to send and what it is, for messages.
struct Item {
    label: String,
    instruction: Instruction,
}

/// Sends `items` up to `per_transaction` per transaction. A failed transaction is retried one
/// instruction at a time, so one failing market does not hold the others back. Returns which
/// went through; a failure whose code is in `lost_races` is counted as a lost race, any other
/// as an error printed by name.
async fn send_batched<C: Chain>(
    chain: &mut C,
    items: &[Item],
    per_transaction: usize,
    lost_races: &[MarginError],
    report: &mut KeeperReport,
) -> Vec<bool> {
    let mut done = vec![false; items.len()];
    let per_transaction = per_transaction.max(1);
    for (chunk_index, chunk) in items.chunks(per_transaction).enumerate() {
        let start = chunk_index * per_transaction;
        let instructions: Vec<Instruction> = chunk.iter().map(|i| i.instruction.clone()).collect();
        report.transactions += 1;
        let error = match chain.send(&instructions, &[]).await {
            Ok(_) => {
                done[start..start + chunk.len()].fill(true);
                continue;
            }
            Err(e) => e,
        };
        if chunk.len() == 1 {
            classify(&chunk[0].label, &error, lost_races, report);
            continue;
        }
        for (offset, item) in chunk.iter().enumerate() {
            report.transactions += 1;
            match chain.send(std::slice::from_ref(&item.instruction), &[]).await {
                Ok(_) => done[start + offset] = true,
                Err(e) => classify(&item.label, &e, lost_races, report),
            }
        }
    }
    done
}

fn classify(label: &str, error: &ChainError, lost_races: &[MarginError], report: &mut KeeperReport) {
    if lost_races.iter().any(|e| error.custom_code == Some(code(*e))) {
        report.lost_races += 1;
    } else {
        record_error(report, format_args!("{label}: {error}"));
    }
}

impl Keeper {
    /// Adds markets listed since the keeper last looked (the group's market count is the next
    /// index; markets are PDAs by index). Returns how many were added.
    pub async fn rediscover<C: Chain>(&mut self, chain: &mut C) -> anyhow::Result<usize> {
        let group: Group = chain.read(&self.group).await?;
        self.add_markets(chain, &group).await
    }

    async fn add_markets<C: Chain>(&mut self, chain: &mut C, group: &Group) -> anyhow::Result<usize> {
        if self.markets.len() >= group.market_count as usize {
            return Ok(0);
        }
        let mut added = 0;
        for index in 0..group.market_count {
            let key = sdk::market_address(&self.group, index);
            if self.markets.iter().any(|m| m.market == key) {
                continue;
            }
            let market: Market = chain.read(&key).await?;
            let underlying: Underlying = chain.read(&market.underlying).await?;
            self.markets.push(MarketKeys {
                group: self.group,
                market: key,
                underlying: market.underlying,
                oracle: underlying.oracle,
                quote_bank: self.quote.bank,
            });
            if !market.is_option() && !self.perp_markets.contains(&key) {
                self.perp_markets.push(key);
            }
            added += 1;
        }
        Ok(added)
    }

    /// Rediscovers markets, then refreshes arrays, accrues funding and proposes settlement
    /// prices as needed. `None` if the markets could not be read at all (counted as an error).
    pub async fn upkeep_markets<C: Chain>(&mut self, chain: &mut C, report: &mut KeeperReport, verbose: bool) -> Option<RoundMarkets> {
        let group: Group = match chain.read(&self.group).await {
            Ok(group) => group,
            Err(e) => {
                record_error(report, format_args!("reading the group: {e}"));
                return None;
            }
        };
        match self.add_markets(chain, &group).await {
            Ok(added) if added > 0 && verbose => println!("  {added} new market(s); keeping {}", self.markets.len()),
            Ok(_) => {}
            Err(e) => record_error(report, format_args!("rediscovering markets: {e}")),
        }
        let round = match self.read_markets(chain).await {
            Ok(round) => round,
            Err(e) => {
                record_error(report, format_args!("reading markets: {e}"));
                return None;
            }
        };
        let now = round.now;
        let config = self.upkeep;

        // Spot per underlying, once per round; an unreadable oracle is one error, not one per market.
        let mut underlyings: HashMap<Pubkey, (Underlying, PriceUpdateV2, Option<I32F32>)> = HashMap::new();
        for (keys, _) in &round.markets {
            if underlyings.contains_key(&keys.underlying) {
                continue;
            }
            let loaded = async {
                let underlying: Underlying = chain.read(&keys.underlying).await?;
                let data = chain.account_data(&underlying.oracle).await?.ok_or_else(|| anyhow::anyhow!("oracle {} missing", underlying.oracle))?;
                let update = PriceUpdateV2::try_deserialize(&mut &data[..]).map_err(|e| anyhow::anyhow!("oracle {}: {}", underlying.oracle, crate::chain::describe(&e)))?;
                anyhow::Ok((underlying, update))
            }
            .await;
            match loaded {
                Ok((underlying, update)) => {
                    let spot = check_update(&update, &underlying.feed_id, underlying.max_price_age_seconds, underlying.max_confidence_ppm, now)
                        .and_then(|reading| portfolio_margin::health::spot_per_lot(&reading, &group, &underlying));
                    let spot = match spot {
                        Ok(spot) => Some(spot),
                        Err(e) => {
                            // An error only if a market needs the spot (final options do not).
                            let needed = round.markets.iter().any(|(k, m)| {
                                k.underlying == keys.underlying && (refreshable(m, now) || funding_due(m, now, config.funding_interval_seconds))
                            });
                            if needed {
                                record_error(report, format_args!("underlying {}: no refresh or funding until its oracle is usable: {}", keys.underlying, crate::chain::describe(&e)));
                            }
                            None
                        }
                    };
                    underlyings.insert(keys.underlying, (underlying, update, spot));
                }
                Err(e) => record_error(report, format_args!("underlying {}: {e}", keys.underlying)),
            }
        }

        // Risk arrays.
        let mut refresh = Vec::new();
        for (keys, market) in &round.markets {
            let Some((underlying, _, Some(spot))) = underlyings.get(&keys.underlying) else { continue };
            if !refreshable(market, now) {
                continue;
            }
            if let Some(reason) = refresh_reason(market, underlying, *spot, now, config.refresh_at_ppm) {
                if verbose {
                    println!("  refreshing the risk array of {} ({reason:?})", keys.market);
                }
                refresh.push(Item { label: format!("refresh_risk_array {}", keys.market), instruction: sdk::refresh_risk_array(keys) });
            }
        }
        let done = send_batched(chain, &refresh, config.refreshes_per_transaction, &[], report).await;
        report.refreshes += done.iter().filter(|d| **d).count() as u32;

        // Funding.
        let mut funding = Vec::new();
        for (keys, market) in &round.markets {
            let spot_known = matches!(underlyings.get(&keys.underlying), Some((_, _, Some(_))));
            if spot_known && funding_due(market, now, config.funding_interval_seconds) {
                funding.push(Item { label: format!("update_funding {}", keys.market), instruction: sdk::update_funding(keys) });
            }
        }
        let done = send_batched(chain, &funding, config.instructions_per_transaction, &[MarginError::FundingUpToDate], report).await;
        report.funding_updates += done.iter().filter(|d| **d).count() as u32;

        // Settlement prices.
        let mut proposals = Vec::new();
        for (keys, market) in &round.markets {
            if !market.is_expired(now) || market.is_settled(now) {
                continue;
            }
            // Nothing can be earlier than an update published at the expiry second.
            if market.settlement_proposed_ts != 0 && market.settlement_publish_ts <= market.expiry_ts {
                continue;
            }
            let Some((underlying, live, _)) = underlyings.get(&keys.underlying) else { continue };
            let mut source: Option<(Pubkey, i64)> = None;
            match chain.post_archived_update(&underlying.oracle, market.expiry_ts).await {
                Ok(Some(account)) => source = Some((account, market.expiry_ts)),
                Ok(None) => {}
                Err(e) => record_error(report, format_args!("posting the archived update for {}: {e}", keys.market)),
            }
            if source.is_none() {
                let published = live.price_message.publish_time;
                let valid = check_update(live, &underlying.feed_id, underlying.max_price_age_seconds, underlying.max_confidence_ppm, published).is_ok();
                if valid && settlement_update_qualifies(market, published, now) {
                    source = Some((underlying.oracle, published));
                }
            }
            match source {
                Some((account, published)) if improves_proposal(market, published) => {
                    if verbose {
                        println!("  proposing a settlement price for {} from {account} (published {published})", keys.market);
                    }
                    proposals.push(Item {
                        label: format!("propose_settlement_price {}", keys.market),
                        instruction: sdk::propose_settlement_price(keys, &account),
                    });
                }
                Some(_) => {}
                None if market.settlement_proposed_ts == 0 => {
                    report.awaiting_settlement_price += 1;
                    if verbose {
                        let window_end = market.expiry_ts + market.settlement_window_seconds as i64;
                        println!(
                            "  {} expired at {} with no settlement price, and the live oracle's update does not qualify: post Pyth's \
                             archived update published in [{}, {window_end}] and call propose_settlement_price with it (from {} any \
                             update at or after expiry qualifies, and the keeper proposes the live one)",
                            keys.market,
                            market.expiry_ts,
                            market.expiry_ts,
                            window_end + SETTLEMENT_FALLBACK_SECONDS + 1,
                        );
                    }
                }
                None => {}
            }
        }
        let lost = [MarginError::SettlementNotEarlier, MarginError::SettlementAlreadyFinal];
        let done = send_batched(chain, &proposals, config.instructions_per_transaction, &lost, report).await;
        report.settlement_proposals += done.iter().filter(|d| **d).count() as u32;
        Some(round)
    }

    /// Every market's state now.
    async fn read_markets<C: Chain>(&self, chain: &mut C) -> anyhow::Result<RoundMarkets> {
        let now = chain.now().await?;
        let mut markets = Vec::with_capacity(self.markets.len());
        for keys in &self.markets {
            markets.push((*keys, chain.read::<Market>(&keys.market).await?));
        }
        Ok(RoundMarkets { now, markets })
    }

    /// Settles every holder among `accounts` of each option market whose settlement price is
    /// final, updating `accounts` to the settled state.
    pub async fn settle_expired<C: Chain>(
        &self,
        chain: &mut C,
        round: &RoundMarkets,
        accounts: &mut [(Pubkey, MarginAccount)],
        report: &mut KeeperReport,
        verbose: bool,
    ) {
        let batch = self.upkeep.settle_batch.max(1);
        for (keys, _) in round.markets.iter().filter(|(_, m)| m.is_settled(round.now)) {
            let holders: Vec<usize> = (0..accounts.len()).filter(|i| accounts[*i].1.position_index(&keys.market).is_some()).collect();
            let label = format!("settle_expired_option {}", keys.market);
            let before = report.settlements;
            for chunk in holders.chunks(batch) {
                let keys_of: Vec<Pubkey> = chunk.iter().map(|i| accounts[*i].0).collect();
                report.transactions += 1;
                match chain.send(&[sdk::settle_expired_option(keys, &keys_of)], &[]).await {
                    Ok(_) => report.settlements += chunk.len() as u32,
                    // Settled by someone else meanwhile: the re-read below shows what is left.
                    Err(e) if e.custom_code == Some(code(MarginError::NoPosition)) => report.lost_races += 1,
                    Err(e) if chunk.len() == 1 => record_error(report, format_args!("{label} for {}: {e}", keys_of[0])),
                    // One account the program refuses must not hold back the rest of the batch.
                    Err(_) => {
                        for account in &keys_of {
                            report.transactions += 1;
                            match chain.send(&[sdk::settle_expired_option(keys, std::slice::from_ref(account))], &[]).await {
                                Ok(_) => report.settlements += 1,
                                Err(e) => classify(&format!("{label} for {account}"), &e, &[MarginError::NoPosition], report),
                            }
                        }
                    }
                }
                for i in chunk {
                    match chain.read::<MarginAccount>(&accounts[*i].0).await {
                        Ok(state) => accounts[*i].1 = state,
                        Err(e) => record_error(report, format_args!("re-reading {}: {e}", accounts[*i].0)),
                    }
                }
            }
            if verbose && !holders.is_empty() {
                println!("  settled {} of {} holder(s) of {}", report.settlements - before, holders.len(), keys.market);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;

    fn underlying() -> Underlying {
        let mut u = Underlying::zeroed();
        u.array_price_tolerance_ppm = 10_000;
        u.array_vol_tolerance_ppm = 20_000;
        u.array_max_age_seconds = 3_600;
        u
    }

    fn perp(now: i64) -> Market {
        let mut m = Market::zeroed();
        m.array_updated_ts = now;
        m.array_spot_bits = I32F32::from_num(150_000).to_bits();
        m.funding_period_seconds = 3_600;
        m.funding_last_ts = now;
        m.funding_premium_ts = now;
        m.funding_premium_ppm = 300;
        m
    }

    fn call(now: i64, expiry: i64) -> Market {
        let mut m = perp(now);
        m.kind = 1;
        m.expiry_ts = expiry;
        m.vol_bits = I32F32::from_num(0.6).to_bits();
        m.array_vol_bits = m.vol_bits;
        m.vol_updated_ts = now;
        m.settlement_window_seconds = 60;
        m.settlement_challenge_seconds = 600;
        m
    }

    const SHARE: u32 = 750_000;

    #[test]
    fn arrays_are_refreshed_at_three_quarters_of_each_tolerance() {
        let (u, now) = (underlying(), 1_000_000);
        let m = perp(now);
        let spot = |dollars: f64| I32F32::from_num(dollars * 1_000.0);
        // 1% tolerance: 0.75% is the line.
        assert_eq!(refresh_reason(&m, &u, spot(151.1), now, SHARE), None);
        assert_eq!(refresh_reason(&m, &u, spot(151.2), now, SHARE), Some(RefreshReason::Price));
        assert_eq!(refresh_reason(&m, &u, spot(148.8), now, SHARE), Some(RefreshReason::Price));
        assert_eq!(refresh_reason(&m, &u, spot(150.0), now + 2_700, SHARE), None);
        assert_eq!(refresh_reason(&m, &u, spot(150.0), now + 2_701, SHARE), Some(RefreshReason::Age));
        let never = Market { array_updated_ts: 0, ..m };
        assert_eq!(refresh_reason(&never, &u, spot(150.0), now, SHARE), Some(RefreshReason::Never));
        // Options: vol moved 1.5 points of a 2-point tolerance; an expiry passed since the refresh.
        let c = call(now, now + 86_400);
        let moved = Market { vol_bits: I32F32::from_num(0.6151).to_bits(), ..c };
        assert_eq!(refresh_reason(&moved, &u, spot(150.0), now, SHARE), Some(RefreshReason::Vol));
        assert_eq!(refresh_reason(&c, &u, spot(150.0), now + 86_400, SHARE), Some(RefreshReason::Expiry));
        let after = Market { array_updated_ts: now + 86_400, ..c };
        assert_eq!(refresh_reason(&after, &u, spot(150.0), now + 86_401, SHARE), None, "no vol check once expired");
        // Final options and never-posted vols are left alone.
        let proposed = Market { settlement_proposed_ts: now + 86_400, ..after };
        assert!(refreshable(&proposed, now + 86_400 + 599));
        assert!(!refreshable(&proposed, now + 86_400 + 600));
        assert!(!refreshable(&Market { vol_updated_ts: 0, ..c }, now));
    }

    #[test]
    fn funding_is_accrued_every_quarter_period_while_a_premium_remains() {
        let now = 1_000_000;
        let m = perp(now);
        assert_eq!(funding_interval(&m, None), 900);
        assert_eq!(funding_interval(&Market { funding_period_seconds: 8 * 3_600, ..m }, None), 900);
        assert_eq!(funding_interval(&Market { funding_period_seconds: 60, ..m }, None), 15);
        assert_eq!(funding_interval(&m, Some(30)), 30);
        assert!(!funding_due(&m, now + 899, None));
        assert!(funding_due(&m, now + 900, None));
        // Accrued past the premium's full decay: nothing left until the next fill.
        let decayed = Market { funding_last_ts: now + 3_600, ..m };
        assert!(!funding_due(&decayed, now + 10 * 3_600, None));
        assert!(!funding_due(&Market { funding_premium_ppm: 0, ..m }, now + 900, None));
        assert!(!funding_due(&call(now, now + 10), now + 900, None));
    }

    #[test]
    fn settlement_updates_qualify_in_the_window_then_after_the_fallback() {
        let expiry = 2_000_000;
        let m = call(expiry - 100, expiry);
        assert!(!settlement_update_qualifies(&m, expiry - 1, expiry + 10));
        assert!(settlement_update_qualifies(&m, expiry, expiry + 10));
        assert!(settlement_update_qualifies(&m, expiry + 60, expiry + 100));
        assert!(!settlement_update_qualifies(&m, expiry + 61, expiry + 100));
        assert!(!settlement_update_qualifies(&m, expiry + 61, expiry + 60 + 86_400));
        assert!(settlement_update_qualifies(&m, expiry + 61, expiry + 61 + 86_400));
        assert!(improves_proposal(&m, expiry + 30));
        let proposed = Market { settlement_proposed_ts: expiry + 40, settlement_publish_ts: expiry + 30, ..m };
        assert!(improves_proposal(&proposed, expiry + 29));
        assert!(!improves_proposal(&proposed, expiry + 30));
    }
}

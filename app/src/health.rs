//! Off-chain health: the same oracle checks, price conversion and pure health function the
//! program runs (`portfolio_margin::health::compute_health`), so a client knows before signing
//! what the chain will enforce, and which accounts to pass.

use crate::chain::Chain;
use anchor_lang::prelude::{AccountMeta, Pubkey};
use anchor_lang::AccountDeserialize;
use portfolio_margin::health::{
    compute_health, required_underlyings, HealthView, MarketRef, PricedBank, PricedUnderlying,
};
use portfolio_margin::oracle::{check_update, OracleConfig};
use portfolio_margin::state::{CollateralBank, Group, MarginAccount, Market, Underlying};
use pyth_solana_receiver_sdk::price_update::PriceUpdateV2;
use risk_engine::health::{HealthBreakdown, HealthKind};
use std::collections::HashMap;

/// Everything health depends on, read at one moment.
#[derive(Clone)]
pub struct HealthSnapshot {
    pub group_key: Pubkey,
    pub group: Group,
    pub account: MarginAccount,
    pub banks: HashMap<Pubkey, CollateralBank>,
    pub markets: HashMap<Pubkey, Market>,
    pub underlyings: HashMap<Pubkey, Underlying>,
    pub oracles: HashMap<Pubkey, PriceUpdateV2>,
    /// Unix time the oracle ages are measured at.
    pub now: i64,
}

fn reading(update: &PriceUpdateV2, config: &OracleConfig, now: i64) -> anyhow::Result<portfolio_margin::oracle::OracleReading> {
    check_update(update, &config.feed_id, config.max_age_seconds, config.max_confidence_ppm, now)
        .map_err(|e| anyhow::anyhow!("oracle {}: {}", config.oracle, crate::chain::describe(&e)))
}

impl HealthSnapshot {
    /// Reads the group, the account and everything its health needs from the embedded bank.
    pub async fn load<C: Chain>(chain: &mut C, group_key: &Pubkey, account_key: &Pubkey) -> anyhow::Result<Self> {
        let account: MarginAccount = chain.read(account_key).await?;
        Self::load_for(chain, group_key, account, &[]).await
    }

    /// Like [`HealthSnapshot::load`] for an account given by value, also loading `extra_markets`
    /// (markets an instruction is about to open positions in).
    pub async fn load_for<C: Chain>(
        chain: &mut C,
        group_key: &Pubkey,
        account: MarginAccount,
        extra_markets: &[Pubkey],
    ) -> anyhow::Result<Self> {
        let group: Group = chain.read(group_key).await?;
        let mut snapshot = HealthSnapshot {
            group_key: *group_key,
            group,
            account,
            banks: HashMap::new(),
            markets: HashMap::new(),
            underlyings: HashMap::new(),
            oracles: HashMap::new(),
            now: chain.now().await?,
        };
        for balance in account.active_balances() {
            snapshot.banks.insert(balance.bank, chain.read(&balance.bank).await?);
        }
        if group.quote_bank != Pubkey::default() {
            snapshot.banks.insert(group.quote_bank, chain.read(&group.quote_bank).await?);
        }
        let market_keys: Vec<Pubkey> =
            account.positions.iter().filter(|p| p.in_use == 1).map(|p| p.market).chain(extra_markets.iter().copied()).collect();
        for key in market_keys {
            let market: Market = chain.read(&key).await?;
            snapshot.markets.insert(key, market);
            let underlying: Underlying = chain.read(&market.underlying).await?;
            snapshot.underlyings.insert(market.underlying, underlying);
        }
        for bank_state in snapshot.banks.clone().values() {
            if bank_state.underlying != Pubkey::default() {
                snapshot.underlyings.insert(bank_state.underlying, chain.read(&bank_state.underlying).await?);
            }
        }
        let oracle_keys: Vec<Pubkey> =
            snapshot.banks.values().map(|b| b.oracle).chain(snapshot.underlyings.values().map(|u| u.oracle)).collect();
        for key in oracle_keys {
            let data = chain.account_data(&key).await?.ok_or_else(|| anyhow::anyhow!("oracle {key} missing"))?;
            snapshot.oracles.insert(key, PriceUpdateV2::try_deserialize(&mut &data[..])?);
        }
        Ok(snapshot)
    }

    /// Health of `kind` for `account` (pass a modified copy to preview an action).
    pub fn health_of(&self, account: &MarginAccount, kind: HealthKind) -> anyhow::Result<HealthBreakdown> {
        // Price exactly what the chain will read for this account, so a stale oracle elsewhere
        // does not fail the prediction and a stale one here fails it the same way.
        let needed = required_underlyings(
            account,
            |m| self.markets.get(m).map(|m| m.underlying),
            |b| self.banks.get(b).map(|b| b.underlying),
        )
        .map_err(crate::chain::program_error)?;
        let mut banks = Vec::new();
        for balance in account.active_balances() {
            let key = &balance.bank;
            let bank = self.banks.get(key).ok_or_else(|| anyhow::anyhow!("bank {key} not loaded"))?;
            banks.push(PricedBank { key: *key, bank, prices: self.bank_prices(key)? });
        }
        let mut underlyings = Vec::new();
        for key in &needed {
            let underlying = self.underlyings.get(key).ok_or_else(|| anyhow::anyhow!("underlying {key} not loaded"))?;
            let prices = self.underlying_prices(key)?;
            underlyings.push(PricedUnderlying { key: *key, underlying, spot_per_lot: prices.spot, prices });
        }
        let markets: Vec<MarketRef> = self.markets.iter().map(|(key, market)| MarketRef { key: *key, market }).collect();
        let view = HealthView { group: &self.group, banks: &banks, markets: &markets, underlyings: &underlyings, now: self.now };
        compute_health(&view, account, kind).map_err(crate::chain::program_error)
    }

    /// A loaded bank's checked prices (quote native units per native unit), as the chain reads
    /// them now.
    pub fn bank_prices(&self, bank_key: &Pubkey) -> anyhow::Result<risk_engine::health::TokenPrices> {
        let bank = self.banks.get(bank_key).ok_or_else(|| anyhow::anyhow!("bank {bank_key} not loaded"))?;
        let update = self.oracles.get(&bank.oracle).ok_or_else(|| anyhow::anyhow!("oracle of bank {bank_key} not loaded"))?;
        reading(update, &OracleConfig::of_bank(bank), self.now)?
            .token_prices(&self.group, bank.mint_decimals)
            .map_err(crate::chain::program_error)
    }

    /// A loaded underlying's checked spot price per lot (quote native units, Q32.32).
    pub fn spot_per_lot(&self, underlying_key: &Pubkey) -> anyhow::Result<fixed::types::I32F32> {
        Ok(self.underlying_prices(underlying_key)?.spot)
    }

    /// A loaded underlying's checked spot and conservative spots per lot, as the chain reads them.
    pub fn underlying_prices(&self, underlying_key: &Pubkey) -> anyhow::Result<portfolio_margin::health::UnderlyingPrices> {
        let underlying = self.underlyings.get(underlying_key).ok_or_else(|| anyhow::anyhow!("underlying {underlying_key} not loaded"))?;
        let update = self.oracles.get(&underlying.oracle).ok_or_else(|| anyhow::anyhow!("oracle of {underlying_key} not loaded"))?;
        let reading = reading(update, &OracleConfig::of_underlying(underlying), self.now)?;
        portfolio_margin::health::underlying_prices(&reading, &self.group, underlying).map_err(crate::chain::program_error)
    }

    /// A copy in which `market_key`'s risk array is the one `refresh_risk_array` would store now
    /// (at this snapshot's oracle price and time): what a transaction that refreshes the market
    /// before its instruction sees.
    pub fn with_refreshed(&self, market_key: &Pubkey) -> anyhow::Result<HealthSnapshot> {
        let mut copy = self.clone();
        let market = copy.markets.get_mut(market_key).ok_or_else(|| anyhow::anyhow!("market {market_key} not loaded"))?;
        let spot = self.spot_per_lot(&market.underlying)?;
        let underlying = &self.underlyings[&market.underlying];
        portfolio_margin::instructions::refresh_market(market, underlying, spot, self.now)
            .map_err(|e| anyhow::anyhow!("refreshing {market_key}: {}", crate::chain::describe(&e)))?;
        Ok(copy)
    }

    /// Health of the loaded account.
    pub fn health(&self, kind: HealthKind) -> anyhow::Result<HealthBreakdown> {
        self.health_of(&self.account, kind)
    }

    /// Largest amount of `bank`'s token the owner can withdraw now: init health must stay
    /// >= 0. Found by bisection on the exact health computation, so it is the chain's answer.
    pub fn max_withdrawal(&self, bank: &Pubkey) -> anyhow::Result<u64> {
        let Some(index) = self.account.balance_index(bank) else { return Ok(0) };
        let balance = self.account.balances[index].balance_native.max(0) as u64;
        let allowed = |amount: u64| -> bool {
            let after = crate::sdk::after_withdrawal(&self.account, bank, amount);
            self.health_of(&after, HealthKind::Init).map(|h| h.health >= 0).unwrap_or(false)
        };
        if !allowed(0) {
            return Ok(0);
        }
        let (mut low, mut high) = (0u64, balance);
        if allowed(high) {
            return Ok(high);
        }
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if allowed(mid) {
                low = mid;
            } else {
                high = mid;
            }
        }
        Ok(low)
    }

    /// Health accounts of `account` (as it will be after the instruction): see
    /// [`crate::sdk::health_accounts`].
    pub fn health_accounts(&self, account: &MarginAccount) -> Vec<AccountMeta> {
        crate::sdk::health_accounts(account, self)
    }
}

impl crate::sdk::HealthAccountSource for HealthSnapshot {
    fn bank(&self, bank: &Pubkey) -> Option<(Pubkey, Pubkey)> {
        self.banks.get(bank).map(|b| (b.oracle, b.underlying))
    }
    fn market_underlying(&self, market: &Pubkey) -> Option<Pubkey> {
        self.markets.get(market).map(|m| m.underlying)
    }
    fn underlying_oracle(&self, underlying: &Pubkey) -> Option<Pubkey> {
        self.underlyings.get(underlying).map(|u| u.oracle)
    }
}

/// Adds `key` as a read-only account unless present.
pub fn push_unique(metas: &mut Vec<AccountMeta>, key: Pubkey) {
    if !metas.iter().any(|m| m.pubkey == key) {
        metas.push(AccountMeta::new_readonly(key, false));
    }
}

/// Health accounts of several accounts as they are now (the union; extras are ignored
/// on-chain).
pub async fn union_health_accounts<C: Chain>(chain: &mut C, group: &Pubkey, accounts: &[Pubkey]) -> anyhow::Result<Vec<AccountMeta>> {
    let mut metas = Vec::new();
    for account in accounts {
        let snapshot = HealthSnapshot::load(chain, group, account).await?;
        for meta in snapshot.health_accounts(&snapshot.account) {
            push_unique(&mut metas, meta.pubkey);
        }
    }
    Ok(metas)
}

/// Health accounts covering `accounts` after a fill in `market`, which may open a position
/// there and a balance in the quote bank.
pub async fn fill_health_accounts_for<C: Chain>(
    chain: &mut C,
    group: &Pubkey,
    quote_bank: &Pubkey,
    accounts: &[Pubkey],
    market: &Pubkey,
) -> anyhow::Result<Vec<AccountMeta>> {
    let mut metas = Vec::new();
    let state: Market = chain.read(market).await?;
    for account in accounts {
        let mut predicted: MarginAccount = chain.read(account).await?;
        let _ = predicted.position_index_or_insert(market, &state);
        let _ = predicted.balance_index_or_insert(quote_bank, 0);
        let snapshot = HealthSnapshot::load_for(chain, group, predicted, &[*market]).await?;
        for meta in snapshot.health_accounts(&predicted) {
            push_unique(&mut metas, meta.pubkey);
        }
    }
    Ok(metas)
}

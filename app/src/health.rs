//! Off-chain health: the same oracle checks, price conversion and engine call the program
//! makes, so a client knows before signing what the chain will enforce.

use crate::local_bank::LocalBank;
use anchor_lang::prelude::{AccountMeta, Pubkey};
use anchor_lang::AccountDeserialize;
use portfolio_margin::oracle::check_update;
use portfolio_margin::state::{CollateralBank, Group, MarginAccount};
use pyth_solana_receiver_sdk::price_update::PriceUpdateV2;
use risk_engine::health::{compute_health, DerivativesRisk, HealthBreakdown, HealthKind, HealthParams, TokenBalance};
use std::collections::HashMap;

/// Everything health depends on, read at one moment.
#[derive(Clone)]
pub struct HealthSnapshot {
    pub group: Group,
    pub account: MarginAccount,
    pub banks: HashMap<Pubkey, CollateralBank>,
    pub oracles: HashMap<Pubkey, PriceUpdateV2>,
    /// Unix time the oracle ages are measured at.
    pub now: i64,
}

impl HealthSnapshot {
    /// Reads the group, the account, its banks and their oracles from the embedded bank.
    pub async fn load(bank: &mut LocalBank, group_key: &Pubkey, account_key: &Pubkey) -> anyhow::Result<Self> {
        let group: Group = bank.load(group_key).await;
        let account: MarginAccount = bank.load(account_key).await;
        let mut banks = HashMap::new();
        let mut oracles = HashMap::new();
        for balance in account.active_balances() {
            let collateral: CollateralBank = bank.load(&balance.bank).await;
            let data = bank.account_data(&collateral.oracle).await.ok_or_else(|| anyhow::anyhow!("oracle missing"))?;
            oracles.insert(collateral.oracle, PriceUpdateV2::try_deserialize(&mut &data[..])?);
            banks.insert(balance.bank, collateral);
        }
        let now = bank.now().await;
        Ok(HealthSnapshot { group, account, banks, oracles, now })
    }

    /// Health of `kind` for `account` (pass a modified copy to preview an action).
    pub fn health_of(&self, account: &MarginAccount, kind: HealthKind) -> anyhow::Result<HealthBreakdown> {
        let mut tokens = Vec::new();
        for balance in account.active_balances() {
            let bank = self.banks.get(&balance.bank).ok_or_else(|| anyhow::anyhow!("bank {} not loaded", balance.bank))?;
            let update = self.oracles.get(&bank.oracle).ok_or_else(|| anyhow::anyhow!("oracle not loaded"))?;
            let reading = check_update(update, &bank.feed_id, bank.max_price_age_seconds, bank.max_confidence_ppm, self.now)
                .map_err(|e| anyhow::anyhow!("oracle of bank {}: {e}", balance.bank))?;
            tokens.push(TokenBalance {
                native: balance.balance_native,
                prices: reading.token_prices(&self.group, bank.mint_decimals).map_err(|e| anyhow::anyhow!("{e}"))?,
                weights: bank.weights(),
            });
        }
        let params = HealthParams {
            unrealized_init_weight: portfolio_margin::state::ppm_to_fixed(self.group.unrealized_init_weight_ppm),
        };
        compute_health(&tokens, &DerivativesRisk::default(), &params, kind).map_err(|_| anyhow::anyhow!("health overflow"))
    }

    /// Health of the loaded account.
    pub fn health(&self, kind: HealthKind) -> anyhow::Result<HealthBreakdown> {
        self.health_of(&self.account, kind)
    }

    /// Largest amount of `bank`'s token the owner can withdraw now: init health must stay
    /// >= 0. Found by bisection on the exact engine computation, so it is the chain's answer.
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

    /// Health accounts for an instruction acting on `account` as given.
    pub fn health_accounts(&self, account: &MarginAccount) -> Vec<AccountMeta> {
        crate::sdk::health_accounts(account, |bank| self.banks.get(bank).map(|b| b.oracle).unwrap_or_default())
    }
}

//! `pm bootstrap`: creates a group, its collateral banks, underlyings and perp markets from a
//! configuration file (see `migrations/`). Against a cluster every mint and oracle must be
//! given; on the embedded bank missing mints are created and oracles posted at
//! `embedded_price`, so a configuration can be rehearsed locally first.

use crate::chain::Chain;
use crate::local_bank::LocalBank;
use crate::pyth::PythPrice;
use crate::sdk;
use anchor_lang::prelude::Pubkey;
use anyhow::{anyhow, bail, Result};
use portfolio_margin::instructions::{GroupParams, PerpConfig, UnderlyingConfig};
use portfolio_margin::state::{BankConfig, GridConfig, Group};
use serde::{Deserialize, Serialize};
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A bootstrap configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub description: Option<String>,
    pub group_index: u32,
    pub params: ParamsConfig,
    /// Risk authority; the admin if absent.
    #[serde(default)]
    pub risk_authority: Option<String>,
    /// The first bank is the quote token.
    pub banks: Vec<BankEntry>,
    #[serde(default)]
    pub underlyings: Vec<UnderlyingEntry>,
    #[serde(default)]
    pub perps: Vec<PerpEntry>,
}

/// Group parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsConfig {
    pub unrealized_init_weight_ppm: u32,
    pub conf_multiplier_ppm: u32,
    pub liquidation_fee_ppm: u32,
    pub insurance_share_ppm: u32,
}

/// A collateral bank.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankEntry {
    pub symbol: String,
    /// Mint address; created on the embedded bank if absent.
    #[serde(default)]
    pub mint: Option<String>,
    pub decimals: u8,
    /// `spl-token` or `token-2022`.
    pub token_program: String,
    /// Pyth PriceUpdateV2 account; created on the embedded bank if absent.
    #[serde(default)]
    pub oracle: Option<String>,
    /// Pyth feed id, hex.
    pub feed_id: String,
    /// Price posted on the embedded bank.
    #[serde(default)]
    pub embedded_price: Option<f64>,
    pub init_asset_weight_ppm: u32,
    pub maint_asset_weight_ppm: u32,
    pub init_liability_weight_ppm: u32,
    pub maint_liability_weight_ppm: u32,
    pub deposit_limit_native: u64,
    pub max_price_age_seconds: u32,
    pub max_confidence_ppm: u32,
}

/// An underlying; its oracle is its collateral bank's unless given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlyingEntry {
    pub symbol: String,
    /// Symbol of the bank of the same token (its balances hedge in the grid).
    #[serde(default)]
    pub collateral_bank: Option<String>,
    #[serde(default)]
    pub oracle: Option<String>,
    #[serde(default)]
    pub feed_id: Option<String>,
    pub lot_size_exponent: i8,
    pub max_price_age_seconds: u32,
    pub max_confidence_ppm: u32,
    pub array_price_tolerance_ppm: u32,
    pub array_vol_tolerance_ppm: u32,
    pub array_max_age_seconds: u32,
}

/// A perpetual market.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerpEntry {
    pub underlying: String,
    pub price_band_ppm: u32,
    pub funding_period_seconds: u32,
    pub max_funding_rate_ppm: u32,
    /// Fill size in lots that moves the funding mark premium fully (smaller fills pro rata).
    pub funding_depth_lots: i64,
    /// Most gain a position may realise through settle_pnl per day, ppm of its notional.
    pub pnl_settle_limit_ppm: u32,
    /// Smallest non-zero position, lots: the liquidator's part of the fee on it must pay for a
    /// liquidation transaction (README "Dust").
    pub min_position_lots: i64,
    /// Largest open interest, lots (0: no cap).
    pub max_open_interest_lots: i64,
}

/// One created account.
#[derive(Debug, Serialize, PartialEq)]
pub struct Created {
    pub symbol: String,
    pub address: String,
}

/// What was created.
#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    pub group: String,
    pub banks: Vec<Created>,
    pub underlyings: Vec<Created>,
    pub perps: Vec<Created>,
}

fn pubkey(text: &str, field: &str) -> Result<Pubkey> {
    text.parse().map_err(|e| anyhow!("{field} = {text}: {e}"))
}

fn feed_id(hex: &str, field: &str) -> Result<[u8; 32]> {
    let hex = hex.trim_start_matches("0x");
    if hex.len() != 64 {
        bail!("{field} must be 32 bytes of hex");
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| anyhow!("{field}: {e}"))?;
    }
    Ok(out)
}

fn token_program(name: &str, field: &str) -> Result<Pubkey> {
    match name {
        "spl-token" => Ok(anchor_spl::token::ID),
        "token-2022" => Ok(anchor_spl::token_2022::ID),
        other => bail!("{field} must be spl-token or token-2022 (got {other})"),
    }
}

/// Fills in the mints and oracles a configuration leaves out by creating them on the embedded
/// bank. Returns (mint, oracle) per bank.
pub async fn rehearse_on(bank: &mut LocalBank, config: &Config) -> Result<Vec<(Pubkey, Pubkey)>> {
    let mut out = Vec::new();
    for (i, entry) in config.banks.iter().enumerate() {
        let field = format!("banks[{i}]");
        let program = token_program(&entry.token_program, &format!("{field}.token_program"))?;
        let mint = match &entry.mint {
            Some(m) => pubkey(m, &format!("{field}.mint"))?,
            None => bank.create_mint(&program, entry.decimals, &[]).await?.pubkey(),
        };
        let oracle = match &entry.oracle {
            Some(o) => pubkey(o, &format!("{field}.oracle"))?,
            None => {
                let key = Pubkey::new_unique();
                let price = entry.embedded_price.ok_or_else(|| anyhow!("{field}.embedded_price is needed to create its oracle"))?;
                let now = bank.now().await;
                bank.set_pyth_price(&key, &PythPrice::usd(feed_id(&entry.feed_id, &format!("{field}.feed_id"))?, price, 5, now), None);
                key
            }
        };
        out.push((mint, oracle));
    }
    Ok(out)
}

/// Creates everything in `config` with `admin` (also the fee payer). `resolved` gives each
/// bank's mint and oracle (from the file, or from [`rehearse_on`]).
pub async fn bootstrap<C: Chain>(chain: &mut C, admin: &Keypair, config: &Config, resolved: &[(Pubkey, Pubkey)]) -> Result<Report> {
    if config.banks.is_empty() {
        bail!("banks must list at least the quote token");
    }
    let p = &config.params;
    let params = GroupParams {
        unrealized_init_weight_ppm: p.unrealized_init_weight_ppm,
        conf_multiplier_ppm: p.conf_multiplier_ppm,
        liquidation_fee_ppm: p.liquidation_fee_ppm,
        insurance_share_ppm: p.insurance_share_ppm,
    };
    let admin_key = admin.pubkey();
    let risk_authority = match &config.risk_authority {
        Some(key) => pubkey(key, "risk_authority")?,
        None => admin_key,
    };
    let send_err = |e: crate::chain::ChainError| anyhow!("{e}");
    chain.send(&[sdk::create_group(&admin_key, &risk_authority, &resolved[0].0, config.group_index, params)], &[admin]).await.map_err(send_err)?;
    let group = sdk::group_address(&admin_key, config.group_index);
    let mut report = Report { group: group.to_string(), banks: Vec::new(), underlyings: Vec::new(), perps: Vec::new() };

    let mut bank_keys = Vec::new();
    for (i, (entry, (mint, oracle))) in config.banks.iter().zip(resolved).enumerate() {
        let field = format!("banks[{i}]");
        let bank_config = BankConfig {
            oracle: *oracle,
            feed_id: feed_id(&entry.feed_id, &format!("{field}.feed_id"))?,
            init_asset_weight_ppm: entry.init_asset_weight_ppm,
            maint_asset_weight_ppm: entry.maint_asset_weight_ppm,
            init_liability_weight_ppm: entry.init_liability_weight_ppm,
            maint_liability_weight_ppm: entry.maint_liability_weight_ppm,
            deposit_limit_native: entry.deposit_limit_native,
            max_price_age_seconds: entry.max_price_age_seconds,
            max_confidence_ppm: entry.max_confidence_ppm,
        };
        let program = token_program(&entry.token_program, &format!("{field}.token_program"))?;
        let ix = sdk::add_collateral_bank(&group, &admin_key, &admin_key, mint, &program, bank_config);
        chain.send(&[ix], &[admin]).await.map_err(|e| anyhow!("listing {}: {e}", entry.symbol))?;
        let key = sdk::bank_address(&group, mint);
        report.banks.push(Created { symbol: entry.symbol.clone(), address: key.to_string() });
        bank_keys.push((entry.symbol.clone(), key, *oracle, bank_config.feed_id));
    }

    let mut underlying_keys = Vec::new();
    for (i, entry) in config.underlyings.iter().enumerate() {
        let field = format!("underlyings[{i}]");
        let linked = match &entry.collateral_bank {
            Some(symbol) => Some(
                bank_keys.iter().find(|b| &b.0 == symbol).ok_or_else(|| anyhow!("{field}.collateral_bank {symbol} is not a bank"))?,
            ),
            None => None,
        };
        let oracle = match (&entry.oracle, linked) {
            (Some(o), _) => pubkey(o, &format!("{field}.oracle"))?,
            (None, Some(bank)) => bank.2,
            (None, None) => bail!("{field}.oracle is required without a collateral_bank"),
        };
        let feed = match (&entry.feed_id, linked) {
            (Some(f), _) => feed_id(f, &format!("{field}.feed_id"))?,
            (None, Some(bank)) => bank.3,
            (None, None) => bail!("{field}.feed_id is required without a collateral_bank"),
        };
        let underlying_config = UnderlyingConfig {
            oracle,
            feed_id: feed,
            max_price_age_seconds: entry.max_price_age_seconds,
            max_confidence_ppm: entry.max_confidence_ppm,
            lot_size_exponent: entry.lot_size_exponent,
            grid: GridConfig::from(&risk_engine::scenario::GridParams::default()),
            array_price_tolerance_ppm: entry.array_price_tolerance_ppm,
            array_vol_tolerance_ppm: entry.array_vol_tolerance_ppm,
            array_max_age_seconds: entry.array_max_age_seconds,
        };
        let state: Group = chain.read(&group).await?;
        let index = state.underlying_count;
        let ix = sdk::add_underlying(&group, &admin_key, &admin_key, index, linked.map(|b| b.1), underlying_config);
        chain.send(&[ix], &[admin]).await.map_err(|e| anyhow!("listing underlying {}: {e}", entry.symbol))?;
        let key = sdk::underlying_address(&group, index);
        report.underlyings.push(Created { symbol: entry.symbol.clone(), address: key.to_string() });
        underlying_keys.push((entry.symbol.clone(), key));
    }

    for (i, entry) in config.perps.iter().enumerate() {
        let underlying = underlying_keys
            .iter()
            .find(|u| u.0 == entry.underlying)
            .ok_or_else(|| anyhow!("perps[{i}].underlying {} is not an underlying", entry.underlying))?
            .1;
        let perp = PerpConfig {
            price_band_ppm: entry.price_band_ppm,
            funding_period_seconds: entry.funding_period_seconds,
            max_funding_rate_ppm: entry.max_funding_rate_ppm,
            funding_depth_lots: entry.funding_depth_lots,
            pnl_settle_limit_ppm: entry.pnl_settle_limit_ppm,
            min_position_lots: entry.min_position_lots,
            max_open_interest_lots: entry.max_open_interest_lots,
        };
        let state: Group = chain.read(&group).await?;
        let index = state.market_count;
        chain
            .send(&[sdk::add_perp_market(&group, &admin_key, &admin_key, &underlying, index, perp)], &[admin])
            .await
            .map_err(|e| anyhow!("listing the {} perp: {e}", entry.underlying))?;
        let key = sdk::market_address(&group, index);
        let oracle = chain.read::<portfolio_margin::state::Underlying>(&underlying).await?.oracle;
        let keys = sdk::MarketKeys { group, market: key, underlying, oracle, quote_bank: bank_keys[0].1 };
        chain
            .send(&[sdk::refresh_risk_array(&keys)], &[])
            .await
            .map_err(|e| anyhow!("first risk array of the {} perp: {e}", entry.underlying))?;
        report.perps.push(Created { symbol: format!("{}-PERP", entry.underlying), address: key.to_string() });
    }
    Ok(report)
}

/// The mints and oracles of a configuration meant for a cluster: every one must be given.
pub fn resolve_from_file(config: &Config) -> Result<Vec<(Pubkey, Pubkey)>> {
    config
        .banks
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let mint = entry.mint.as_deref().ok_or_else(|| anyhow!("banks[{i}].mint is required on a cluster"))?;
            let oracle = entry.oracle.as_deref().ok_or_else(|| anyhow!("banks[{i}].oracle is required on a cluster"))?;
            Ok((pubkey(mint, &format!("banks[{i}].mint"))?, pubkey(oracle, &format!("banks[{i}].oracle"))?))
        })
        .collect()
}

//! Where the client reads accounts and sends transactions: the embedded bank
//! ([`LocalBank`]) or a cluster over JSON-RPC ([`RpcChain`]). The keeper and off-chain health
//! are written against [`Chain`], so the code the tests exercise on the embedded bank is the
//! code that runs against a cluster.

use crate::local_bank::{LocalBank, TxOutcome};
use anchor_lang::prelude::Pubkey;
use anchor_lang::solana_program::instruction::Instruction;
use anyhow::{anyhow, Result};
use solana_keypair::Keypair;
use solana_signer::Signer;

/// A failed transaction: the program's custom error code when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainError {
    /// `Custom(code)` of the failing instruction, if the program returned one.
    pub custom_code: Option<u32>,
    /// The transport's description.
    pub message: String,
}

impl std::fmt::Display for ChainError {
    /// The program's error by name and message when the code is one of its errors, else the
    /// transport's description.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.custom_code.and_then(margin_error) {
            Some((name, message)) => write!(f, "{name}: {message}"),
            None => write!(f, "{}", self.message),
        }
    }
}

/// Name and message of the program's `MarginError` with custom code `code`.
///
/// Anchor's `#[error_code]` gives no way back from a code to the variant, and the embedded bank
/// cannot read program logs, so the table comes from the enum's source: variants are numbered
/// in declaration order from `ERROR_CODE_OFFSET` (no explicit discriminants).
pub fn margin_error(code: u32) -> Option<(&'static str, &'static str)> {
    static TABLE: std::sync::OnceLock<Vec<(&'static str, &'static str)>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let source = include_str!("../../programs/portfolio-margin/src/error.rs");
        let mut table = Vec::new();
        let mut message = "";
        for line in source.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("#[msg(\"") {
                message = rest.strip_suffix("\")]").unwrap_or(rest);
            } else if let Some(name) = line.strip_suffix(',') {
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    table.push((name, message));
                    message = "";
                }
            }
        }
        table
    });
    let index = code.checked_sub(anchor_lang::error::ERROR_CODE_OFFSET)? as usize;
    table.get(index).copied()
}

impl std::error::Error for ChainError {}

/// An Anchor error from code the client runs off-chain (health, oracle checks, liquidation
/// previews) as `Name: message`: Anchor's own `Display` prints its debug structure.
pub fn program_error(error: anchor_lang::error::Error) -> anyhow::Error {
    anyhow!("{}", describe(&error))
}

/// See [`program_error`].
pub fn describe(error: &anchor_lang::error::Error) -> String {
    match error {
        anchor_lang::error::Error::AnchorError(e) => format!("{}: {}", e.error_name, e.error_msg),
        anchor_lang::error::Error::ProgramError(e) => e.program_error.to_string(),
    }
}

fn custom_code(error: &solana_transaction_error::TransactionError) -> Option<u32> {
    match error {
        solana_transaction_error::TransactionError::InstructionError(_, solana_instruction_error::InstructionError::Custom(code)) => {
            Some(*code)
        }
        _ => None,
    }
}

/// One keeper step's transaction.
#[derive(Clone, Debug)]
pub struct StepTransaction {
    pub instructions: Vec<Instruction>,
    /// Signed by the keeper's liquidator key too (liquidations; a bankruptcy needs no signer).
    pub liquidator_signs: bool,
    /// May need an address lookup table ([`Chain::send_large`]).
    pub large: bool,
}

/// Reading accounts and sending transactions.
#[allow(async_fn_in_trait)] // used with concrete types only; no Send bound needed
pub trait Chain {
    /// Raw data of an account, if it exists.
    async fn account_data(&mut self, key: &Pubkey) -> Result<Option<Vec<u8>>>;
    /// The cluster's unix time (the clock sysvar).
    async fn now(&mut self) -> Result<i64>;
    /// Sends one transaction signed by the fee payer and `signers`.
    async fn send(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> std::result::Result<TxOutcome, ChainError>;
    /// Sends one transaction that may need an address lookup table (many accounts).
    async fn send_large(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> std::result::Result<TxOutcome, ChainError>;
    /// Program accounts with the given discriminator whose group (at offset 8) is `group`.
    async fn group_accounts(&mut self, discriminator: &[u8], group: &Pubkey) -> Result<Vec<(Pubkey, Vec<u8>)>>;

    /// The keys of [`Chain::group_accounts`] alone (a cluster is asked for an empty data slice,
    /// so listing 100,000 accounts moves their keys, not their data).
    async fn group_account_keys(&mut self, discriminator: &[u8], group: &Pubkey) -> Result<Vec<Pubkey>> {
        Ok(self.group_accounts(discriminator, group).await?.into_iter().map(|(key, _)| key).collect())
    }

    /// Posts the update the transport's price archive holds for `oracle`'s feed at
    /// `publish_time` (published at that second) into a fresh account and returns the account,
    /// for `propose_settlement_price`. `None`: this transport has no archive (a cluster, here).
    async fn post_archived_update(&mut self, _oracle: &Pubkey, _publish_time: i64) -> Result<Option<Pubkey>> {
        Ok(None)
    }

    /// Makes `oracle` carry `price` (a fresh `PriceUpdateV2`), as a keeper does on a pull oracle
    /// before steps that read it. The embedded bank writes the account, as the simulated
    /// market's Pyth receiver would; a cluster needs the Pyth push-oracle program's
    /// `update_price_feed` with a Wormhole-verified update, which this client does not build yet.
    async fn post_price_update(&mut self, oracle: &Pubkey, _price: &crate::pyth::PythPrice) -> Result<()> {
        Err(anyhow!(
            "posting a price update to {oracle} is not supported on this transport (needs the Pyth push oracle's update_price_feed): \
             keep the feed updated with a price pusher or a sponsored feed"
        ))
    }

    /// Sends several steps' transactions together (all in flight before any confirmation is
    /// awaited) and returns each one's result, in order. By default one after another.
    async fn send_steps(&mut self, transactions: &[StepTransaction], liquidator: &Keypair) -> Vec<std::result::Result<TxOutcome, ChainError>> {
        let mut results = Vec::with_capacity(transactions.len());
        for tx in transactions {
            let signers: Vec<&Keypair> = if tx.liquidator_signs { vec![liquidator] } else { Vec::new() };
            results.push(match tx.large {
                true => self.send_large(&tx.instructions, &signers).await,
                false => self.send(&tx.instructions, &signers).await,
            });
        }
        results
    }

    /// A zero-copy program account (after its 8-byte discriminator).
    async fn read<T: bytemuck::Pod>(&mut self, key: &Pubkey) -> Result<T> {
        let data = self.account_data(key).await?.ok_or_else(|| anyhow!("account {key} does not exist"))?;
        let size = core::mem::size_of::<T>();
        if data.len() < 8 + size {
            return Err(anyhow!("account {key} is too small for the expected type"));
        }
        Ok(bytemuck::pod_read_unaligned(&data[8..8 + size]))
    }
}

impl Chain for LocalBank {
    async fn account_data(&mut self, key: &Pubkey) -> Result<Option<Vec<u8>>> {
        Ok(LocalBank::account_data(self, key).await)
    }

    async fn now(&mut self) -> Result<i64> {
        Ok(LocalBank::now(self).await)
    }

    async fn send(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> std::result::Result<TxOutcome, ChainError> {
        LocalBank::send(self, instructions, signers).await.map_err(bank_error)
    }

    async fn send_large(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> std::result::Result<TxOutcome, ChainError> {
        LocalBank::send_v0(self, instructions, signers).await.map_err(bank_error)
    }

    async fn group_accounts(&mut self, _discriminator: &[u8], _group: &Pubkey) -> Result<Vec<(Pubkey, Vec<u8>)>> {
        Err(anyhow!("the embedded bank cannot list program accounts: pass the accounts explicitly"))
    }

    async fn post_archived_update(&mut self, oracle: &Pubkey, publish_time: i64) -> Result<Option<Pubkey>> {
        Ok(LocalBank::post_archived_update(self, oracle, publish_time))
    }

    async fn post_price_update(&mut self, oracle: &Pubkey, price: &crate::pyth::PythPrice) -> Result<()> {
        self.set_pyth_price(oracle, price, None);
        Ok(())
    }

    /// Processed one after another, but the simulated cluster time is charged once for the
    /// batch: they were in flight together.
    async fn send_steps(&mut self, transactions: &[StepTransaction], liquidator: &Keypair) -> Vec<std::result::Result<TxOutcome, ChainError>> {
        let latency = self.suspend_latency();
        let mut results = Vec::with_capacity(transactions.len());
        for tx in transactions {
            let signers: Vec<&Keypair> = if tx.liquidator_signs { vec![liquidator] } else { Vec::new() };
            results.push(match tx.large {
                true => self.send_v0(&tx.instructions, &signers).await.map_err(bank_error),
                false => LocalBank::send(self, &tx.instructions, &signers).await.map_err(bank_error),
            });
        }
        self.resume_latency(latency).await;
        results
    }
}

fn bank_error(error: solana_program_test::BanksClientError) -> ChainError {
    let custom = match &error {
        solana_program_test::BanksClientError::TransactionError(e) => custom_code(e),
        solana_program_test::BanksClientError::SimulationError { err, .. } => custom_code(err),
        _ => None,
    };
    ChainError { custom_code: custom, message: format!("{error:?}") }
}

/// A cluster reached over JSON-RPC, with a fee payer.
pub struct RpcChain {
    client: solana_rpc_client::nonblocking::rpc_client::RpcClient,
    payer: Keypair,
    /// Compute budget prepended to every transaction (see [`RpcChain::with_compute_budget`]).
    compute_unit_limit: Option<u32>,
    priority_fee_micro_lamports: u64,
}

impl RpcChain {
    /// Connects to `url` (confirmed commitment) with `payer` paying fees.
    pub fn new(url: &str, payer: Keypair) -> Self {
        let client = solana_rpc_client::nonblocking::rpc_client::RpcClient::new_with_commitment(
            url.to_string(),
            solana_commitment_config::CommitmentConfig::confirmed(),
        );
        RpcChain { client, payer, compute_unit_limit: None, priority_fee_micro_lamports: 0 }
    }

    /// Sets a compute-unit limit and a priority fee (micro-lamports per compute unit) on every
    /// transaction sent: in a crash blocks are full and a keeper without a priority fee waits.
    /// The fee paid is `limit x price`: keep the limit near what the transactions use.
    pub fn with_compute_budget(mut self, compute_unit_limit: Option<u32>, priority_fee_micro_lamports: u64) -> Self {
        self.compute_unit_limit = compute_unit_limit;
        self.priority_fee_micro_lamports = priority_fee_micro_lamports;
        self
    }

    /// The compute-budget instructions followed by `instructions`.
    pub fn budgeted(&self, instructions: &[Instruction]) -> Vec<Instruction> {
        use solana_compute_budget_interface::ComputeBudgetInstruction;
        let mut all = Vec::with_capacity(instructions.len() + 2);
        if let Some(limit) = self.compute_unit_limit {
            all.push(ComputeBudgetInstruction::set_compute_unit_limit(limit));
        }
        if self.priority_fee_micro_lamports > 0 {
            all.push(ComputeBudgetInstruction::set_compute_unit_price(self.priority_fee_micro_lamports));
        }
        all.extend_from_slice(instructions);
        all
    }

    fn rpc_error(error: solana_rpc_client_api::client_error::Error) -> ChainError {
        let custom = error.get_transaction_error().as_ref().and_then(custom_code);
        ChainError { custom_code: custom, message: error.to_string() }
    }

    fn signers<'a>(&'a self, signers: &[&'a Keypair]) -> Vec<&'a Keypair> {
        let mut all = vec![&self.payer];
        all.extend(signers.iter().copied().filter(|k| k.pubkey() != self.payer.pubkey()));
        all
    }
}

/// Reads a keypair file in the Solana CLI's format (a JSON array of 64 bytes).
pub fn read_keypair_file(path: &std::path::Path) -> Result<Keypair> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("cannot read keypair {}: {e}", path.display()))?;
    let bytes: Vec<u8> = serde_json::from_str(&text).map_err(|e| anyhow!("keypair {} is not a JSON byte array: {e}", path.display()))?;
    Keypair::try_from(&bytes[..]).map_err(|e| anyhow!("keypair {} is invalid: {e}", path.display()))
}

impl Chain for RpcChain {
    async fn account_data(&mut self, key: &Pubkey) -> Result<Option<Vec<u8>>> {
        let response = self.client.get_account_with_commitment(key, self.client.commitment()).await?;
        Ok(response.value.map(|a| a.data))
    }

    async fn now(&mut self) -> Result<i64> {
        // Clock sysvar: slot, epoch_start_timestamp, epoch, leader_schedule_epoch, unix_timestamp.
        use anchor_lang::solana_program::sysvar::SysvarId;
        let clock = anchor_lang::prelude::Clock::id();
        let data = self.account_data(&clock).await?.ok_or_else(|| anyhow!("no clock sysvar"))?;
        Ok(i64::from_le_bytes(data[32..40].try_into()?))
    }

    async fn send(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> std::result::Result<TxOutcome, ChainError> {
        let blockhash = self.client.get_latest_blockhash().await.map_err(Self::rpc_error)?;
        let keys = self.signers(signers);
        let instructions = self.budgeted(instructions);
        let tx = solana_transaction::Transaction::new_signed_with_payer(&instructions, Some(&self.payer.pubkey()), &keys, blockhash);
        self.client.send_and_confirm_transaction(&tx).await.map_err(Self::rpc_error)?;
        Ok(TxOutcome::default())
    }

    async fn send_large(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> std::result::Result<TxOutcome, ChainError> {
        use solana_address_lookup_table_interface::instruction::{create_lookup_table, extend_lookup_table};
        use solana_message::{v0, AddressLookupTableAccount, VersionedMessage};
        let programs: Vec<Pubkey> = instructions.iter().map(|ix| ix.program_id).collect();
        let mut addresses: Vec<Pubkey> = Vec::new();
        for meta in instructions.iter().flat_map(|ix| ix.accounts.iter()) {
            if !meta.is_signer && !programs.contains(&meta.pubkey) && !addresses.contains(&meta.pubkey) {
                addresses.push(meta.pubkey);
            }
        }
        if addresses.len() <= 24 {
            return self.send(instructions, signers).await;
        }
        let payer = self.payer.pubkey();
        let slot = self.client.get_slot().await.map_err(Self::rpc_error)?;
        let (create, table) = create_lookup_table(payer, payer, slot);
        self.send(&[create], &[]).await?;
        for chunk in addresses.chunks(20) {
            self.send(&[extend_lookup_table(table, payer, Some(payer), chunk.to_vec())], &[]).await?;
        }
        // A table's new addresses are usable from the next slot.
        let extended_at = self.client.get_slot().await.map_err(Self::rpc_error)?;
        while self.client.get_slot().await.map_err(Self::rpc_error)? <= extended_at {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let blockhash = self.client.get_latest_blockhash().await.map_err(Self::rpc_error)?;
        let lookup = AddressLookupTableAccount { key: table, addresses };
        let message = v0::Message::try_compile(&payer, &self.budgeted(instructions), &[lookup], blockhash)
            .map_err(|e| ChainError { custom_code: None, message: e.to_string() })?;
        let keys = self.signers(signers);
        let tx = solana_transaction::versioned::VersionedTransaction::try_new(VersionedMessage::V0(message), &keys)
            .map_err(|e| ChainError { custom_code: None, message: e.to_string() })?;
        self.client.send_and_confirm_transaction(&tx).await.map_err(Self::rpc_error)?;
        Ok(TxOutcome::default())
    }

    async fn group_accounts(&mut self, discriminator: &[u8], group: &Pubkey) -> Result<Vec<(Pubkey, Vec<u8>)>> {
        self.program_accounts(discriminator, group, None).await
    }

    async fn group_account_keys(&mut self, discriminator: &[u8], group: &Pubkey) -> Result<Vec<Pubkey>> {
        let slice = solana_account_decoder_client_types::UiDataSliceConfig { offset: 0, length: 0 };
        Ok(self.program_accounts(discriminator, group, Some(slice)).await?.into_iter().map(|(key, _)| key).collect())
    }
}

impl RpcChain {
    async fn program_accounts(
        &mut self,
        discriminator: &[u8],
        group: &Pubkey,
        data_slice: Option<solana_account_decoder_client_types::UiDataSliceConfig>,
    ) -> Result<Vec<(Pubkey, Vec<u8>)>> {
        use solana_rpc_client_api::config::{RpcAccountInfoConfig, RpcProgramAccountsConfig};
        use solana_rpc_client_api::filter::{Memcmp, RpcFilterType};
        let config = RpcProgramAccountsConfig {
            filters: Some(vec![
                // Base58: the encoding every RPC server accepts for memcmp filters.
                RpcFilterType::Memcmp(Memcmp::new_base58_encoded(0, discriminator)),
                RpcFilterType::Memcmp(Memcmp::new_base58_encoded(8, &group.to_bytes())),
            ]),
            account_config: RpcAccountInfoConfig {
                encoding: Some(solana_account_decoder_client_types::UiAccountEncoding::Base64),
                data_slice,
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let accounts = self.client.get_program_ui_accounts_with_config(&portfolio_margin::ID, config).await?;
        accounts
            .into_iter()
            .map(|(key, account)| account.data.decode().map(|data| (key, data)).ok_or_else(|| anyhow!("account {key}: undecodable data")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portfolio_margin::error::MarginError;

    #[test]
    fn program_errors_are_named_from_their_code() {
        for error in [
            MarginError::InvalidAssetWeights,
            MarginError::OracleStale,
            MarginError::RiskArrayStale,
            MarginError::FundingUpToDate,
            MarginError::SettlementNotFinal,
            MarginError::NothingToSocialize,
        ] {
            let (name, message) = margin_error(error.into()).expect("known code");
            assert_eq!((name.to_string(), message.to_string()), (error.name(), error.to_string()));
        }
        assert_eq!(margin_error(anchor_lang::error::ERROR_CODE_OFFSET + 10_000), None);
        assert_eq!(margin_error(3012), None, "Anchor's own codes are not the program's");
        let error = ChainError { custom_code: Some(MarginError::SettlementNotFinal.into()), message: "Custom(..)".into() };
        assert!(error.to_string().starts_with("SettlementNotFinal: No final settlement price yet"), "{error}");
    }
}

//! An embedded in-process Solana bank (solana-program-test) running the portfolio-margin
//! program natively with the real SPL Token and Token-2022 programs. Used by `pm demo` and by
//! the integration tests: no cluster, no network.
#![allow(deprecated)] // solana-program-test 3.1 marks its whole API as unstable; it is the supported in-process bank.

use crate::pyth::PythPrice;
use anchor_lang::prelude::{AccountInfo, Clock, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::solana_program::system_instruction;
use anchor_lang::{AccountDeserialize, ZeroCopy};
use anchor_spl::token::spl_token;
use anchor_spl::token_2022::spl_token_2022;
use anchor_spl::token_2022::spl_token_2022::extension::ExtensionType;
use solana_account::AccountSharedData;
use solana_keypair::Keypair;
use solana_program_test::{processor, BanksClientError, ProgramTest, ProgramTestContext};
use solana_signer::Signer;
use solana_transaction::Transaction;

/// Widens Anchor's single-lifetime entry point to the shape `processor!` expects.
fn process_instruction(
    program_id: &Pubkey,
    accounts: &[AccountInfo],
    data: &[u8],
) -> anchor_lang::solana_program::entrypoint::ProgramResult {
    // SAFETY: solana-program-test keeps the account infos alive for the whole call; Anchor only
    // needs the slice and the infos to share one lifetime.
    let accounts: &[AccountInfo] = unsafe { core::mem::transmute(accounts) };
    portfolio_margin::entry(program_id, accounts, data)
}

/// What a successful transaction returned.
#[derive(Clone, Debug, Default)]
pub struct TxOutcome {
    /// Return data set by the last instruction that set any.
    pub return_data: Vec<u8>,
}

/// The embedded bank.
pub struct LocalBank {
    pub context: ProgramTestContext,
    nonce: u32,
    /// Every update written with [`LocalBank::set_pyth_price`], in order: the simulated
    /// market's price archive.
    price_history: Vec<(Pubkey, PythPrice)>,
    /// Simulated cluster time each transaction takes (ms), see [`LocalBank::set_transaction_latency_ms`].
    latency_ms: u64,
    /// Milliseconds of latency not yet added to the clock (it counts whole seconds).
    latency_carry_ms: u64,
}

/// Accounts, clock and price archive captured by [`LocalBank::capture`].
pub struct BankCheckpoint {
    accounts: Vec<(Pubkey, Option<solana_account::Account>)>,
    clock: Clock,
    price_history_len: usize,
}

/// Extensions a test mint may carry (Token-2022 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintExtension {
    PermanentDelegate,
    TransferHook,
    NonTransferable,
    MintCloseAuthority,
    /// Transfer fee in basis points (capped at u64::MAX).
    TransferFee(u16),
    /// New token accounts start frozen.
    DefaultFrozen,
    /// Confidential transfers.
    ConfidentialTransfers,
    /// The mint can be paused.
    Pausable,
    /// UI amounts are raw amounts times a multiplier.
    ScaledUiAmount,
    /// UI amounts accrue interest over raw amounts.
    InterestBearing,
}

impl LocalBank {
    /// Starts a bank with the program loaded natively.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a bank with the program loaded natively, after `configure` adds other programs
    /// (programs composing with portfolio-margin by CPI).
    pub async fn start_with(configure: impl FnOnce(&mut ProgramTest)) -> Self {
        // The bank logs every instruction at debug level; keep output readable unless the
        // caller asked for logs.
        if std::env::var_os("RUST_LOG").is_none() {
            std::env::set_var("RUST_LOG", "error");
        }
        let mut test = ProgramTest::new("portfolio_margin", portfolio_margin::ID, processor!(process_instruction));
        test.prefer_bpf(false);
        configure(&mut test);
        let context = test.start_with_context().await;
        LocalBank { context, nonce: 0, price_history: Vec::new(), latency_ms: 0, latency_carry_ms: 0 }
    }

    /// The fee payer, funded at genesis.
    pub fn payer(&self) -> Keypair {
        self.context.payer.insecure_clone()
    }

    /// Sends one transaction signed by the payer and `signers`.
    pub async fn send(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> Result<TxOutcome, BanksClientError> {
        let all = self.with_nonce(instructions);
        let payer = self.payer();
        let keys = with_payer(&payer, signers);
        let blockhash = self.context.banks_client.get_latest_blockhash().await?;
        let tx = Transaction::new_signed_with_payer(&all, Some(&payer.pubkey()), &keys, blockhash);
        self.process(tx).await
    }

    /// Like [`LocalBank::send`], also returning the runtime's log lines: which programs were
    /// invoked (`Program <id> invoke [depth]`) and how they ended, and the program's events
    /// (`Program data: `, as a cluster logs them). Natively run programs' own `msg!` output
    /// goes to stdout, not here.
    pub async fn send_logged(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> (Result<TxOutcome, BanksClientError>, Vec<String>) {
        let (outcome, logs) = self.send_logged_natively(instructions, signers).await;
        // The program runs natively here and logs its events through the test stubs, which
        // prefix them as messages: restore the line a cluster writes (`events::emit_event`).
        let message = format!("Program log: {}", portfolio_margin::events::NATIVE_EVENT_PREFIX);
        let logs = logs.into_iter().map(|line| match line.strip_prefix(&message) {
            Some(data) => format!("Program data: {data}"),
            None => line,
        });
        (outcome, logs.collect())
    }

    async fn send_logged_natively(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> (Result<TxOutcome, BanksClientError>, Vec<String>) {
        let all = self.with_nonce(instructions);
        let payer = self.payer();
        let keys = with_payer(&payer, signers);
        let blockhash = match self.context.banks_client.get_latest_blockhash().await {
            Ok(blockhash) => blockhash,
            Err(e) => return (Err(e), Vec::new()),
        };
        let tx = Transaction::new_signed_with_payer(&all, Some(&payer.pubkey()), &keys, blockhash);
        match self.context.banks_client.process_transaction_with_metadata(tx).await {
            Err(e) => (Err(e), Vec::new()),
            Ok(result) => {
                let logs = result.metadata.as_ref().map(|m| m.log_messages.clone()).unwrap_or_default();
                let outcome = match result.result {
                    Err(e) => Err(BanksClientError::TransactionError(e)),
                    Ok(()) => Ok(TxOutcome {
                        return_data: result.metadata.and_then(|m| m.return_data).map(|r| r.data).unwrap_or_default(),
                    }),
                };
                (outcome, logs)
            }
        }
    }

    /// Sends one version-0 transaction whose non-signer accounts are loaded from a fresh address
    /// lookup table, for instructions with more accounts than a legacy transaction can carry
    /// (a health check over 16 positions and 8 collateral tokens).
    pub async fn send_v0(&mut self, instructions: &[Instruction], signers: &[&Keypair]) -> Result<TxOutcome, BanksClientError> {
        use solana_address_lookup_table_interface::instruction::{create_lookup_table, extend_lookup_table};
        use solana_message::{v0, AddressLookupTableAccount, VersionedMessage};
        use solana_transaction::versioned::VersionedTransaction;
        let payer = self.payer();
        let programs: Vec<Pubkey> = instructions.iter().map(|ix| ix.program_id).collect();
        let mut addresses: Vec<Pubkey> = Vec::new();
        for meta in instructions.iter().flat_map(|ix| ix.accounts.iter()) {
            if !meta.is_signer && !programs.contains(&meta.pubkey) && !addresses.contains(&meta.pubkey) {
                addresses.push(meta.pubkey);
            }
        }
        // A table must be created at a recent slot and is usable from the next slot on. Warping
        // recomputes the clock's unix time from the slot: the simulated time is put back, so a
        // large transaction does not move the clock tests and simulations set.
        let unix_timestamp = self.now().await;
        let slot = self.context.banks_client.get_root_slot().await?;
        self.context.warp_to_slot(slot + 2).expect("warp");
        let (create, table) = create_lookup_table(payer.pubkey(), payer.pubkey(), slot + 1);
        self.send(&[create], &[]).await?;
        for chunk in addresses.chunks(20) {
            self.send(&[extend_lookup_table(table, payer.pubkey(), Some(payer.pubkey()), chunk.to_vec())], &[]).await?;
        }
        let slot = self.context.banks_client.get_root_slot().await?;
        self.context.warp_to_slot(slot + 2).expect("warp");
        let mut clock: Clock = self.context.banks_client.get_sysvar().await?;
        clock.unix_timestamp = unix_timestamp;
        self.context.set_sysvar(&clock);

        let all = self.with_nonce(instructions);
        let blockhash = self.context.banks_client.get_latest_blockhash().await?;
        let lookup = AddressLookupTableAccount { key: table, addresses };
        let message = v0::Message::try_compile(&payer.pubkey(), &all, &[lookup], blockhash).expect("compile v0 message");
        let tx = VersionedTransaction::try_new(VersionedMessage::V0(message), &with_payer(&payer, signers)).expect("sign");
        self.process(tx).await
    }

    /// Prepends a compute-unit limit that differs on every call, so identical retries are not
    /// deduplicated as already processed.
    fn with_nonce(&mut self, instructions: &[Instruction]) -> Vec<Instruction> {
        self.nonce += 1;
        let mut all = vec![solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(
            1_400_000 - self.nonce % 100_000,
        )];
        all.extend_from_slice(instructions);
        all
    }

    /// Makes every later transaction (sent, refused or failed) move the clock forward by
    /// `latency_ms`, as sending and confirming one after another on a cluster takes time
    /// (~0.4 s a slot): simulations see oracles and arrays age while a keeper works. 0 (the
    /// default) leaves the clock to [`LocalBank::advance_clock`].
    pub fn set_transaction_latency_ms(&mut self, latency_ms: u64) {
        self.latency_ms = latency_ms;
        self.latency_carry_ms = 0;
    }

    /// Stops charging latency per transaction; returns what to pass to
    /// [`LocalBank::resume_latency`], which charges it once (transactions in flight together).
    pub fn suspend_latency(&mut self) -> u64 {
        std::mem::take(&mut self.latency_ms)
    }

    pub async fn resume_latency(&mut self, latency_ms: u64) {
        self.latency_ms = latency_ms;
        self.pass_latency().await;
    }

    async fn pass_latency(&mut self) {
        if self.latency_ms == 0 {
            return;
        }
        self.latency_carry_ms += self.latency_ms;
        let seconds = self.latency_carry_ms / 1_000;
        if seconds > 0 {
            self.latency_carry_ms %= 1_000;
            self.advance_clock(seconds as i64).await;
        }
    }

    /// Processes a signed transaction and returns its return data.
    async fn process(&mut self, tx: impl Into<solana_transaction::versioned::VersionedTransaction>) -> Result<TxOutcome, BanksClientError> {
        let result = self.context.banks_client.process_transaction_with_metadata(tx).await;
        self.pass_latency().await;
        let result = result?;
        result.result?;
        let return_data = result.metadata.and_then(|m| m.return_data).map(|r| r.data).unwrap_or_default();
        Ok(TxOutcome { return_data })
    }

    /// Current unix time of the bank's clock.
    pub async fn now(&mut self) -> i64 {
        self.context.banks_client.get_sysvar::<Clock>().await.expect("clock").unix_timestamp
    }

    /// Moves the bank's clock forward by `seconds` (the slot stays; tests use this for ages,
    /// funding periods and expiries).
    pub async fn advance_clock(&mut self, seconds: i64) {
        let mut clock: Clock = self.context.banks_client.get_sysvar().await.expect("clock");
        clock.unix_timestamp += seconds;
        self.context.set_sysvar(&clock);
    }

    /// The state of `keys` (absent ones recorded as absent), the clock and the price archive,
    /// to return to with [`LocalBank::restore`]: many runs from one set-up (the fuzzer).
    pub async fn capture(&mut self, keys: &[Pubkey]) -> BankCheckpoint {
        let mut accounts = Vec::with_capacity(keys.len());
        for key in keys {
            accounts.push((*key, self.context.banks_client.get_account(*key).await.expect("get_account")));
        }
        let clock: Clock = self.context.banks_client.get_sysvar().await.expect("clock");
        BankCheckpoint { accounts, clock, price_history_len: self.price_history.len() }
    }

    /// Puts the captured accounts, the clock and the price archive back as they were. Accounts
    /// created since under other keys stay (nothing captured refers to them).
    pub fn restore(&mut self, checkpoint: &BankCheckpoint) {
        for (key, account) in &checkpoint.accounts {
            let shared = account.clone().map(AccountSharedData::from).unwrap_or_default();
            self.context.set_account(key, &shared);
        }
        self.context.set_sysvar(&checkpoint.clock);
        self.price_history.truncate(checkpoint.price_history_len);
    }

    /// Raw account data, if the account exists.
    pub async fn account_data(&mut self, key: &Pubkey) -> Option<Vec<u8>> {
        self.context.banks_client.get_account(*key).await.expect("get_account").map(|a| a.data)
    }

    /// Lamports of an account (0 if missing).
    pub async fn lamports(&mut self, key: &Pubkey) -> u64 {
        self.context.banks_client.get_account(*key).await.expect("get_account").map(|a| a.lamports).unwrap_or(0)
    }

    /// Loads a zero-copy program account (after its 8-byte discriminator).
    pub async fn load<T: ZeroCopy + Copy>(&mut self, key: &Pubkey) -> T {
        let data = self.account_data(key).await.unwrap_or_else(|| panic!("account {key} missing"));
        bytemuck::pod_read_unaligned(&data[8..8 + core::mem::size_of::<T>()])
    }

    /// Overwrites an existing account's data, keeping its owner and lamports (tests use this to
    /// put an account into a state only later features can reach, e.g. a settled loss).
    pub async fn set_account_data(&mut self, key: &Pubkey, data: Vec<u8>) {
        let mut account = self.context.banks_client.get_account(*key).await.expect("get_account").expect("account exists");
        account.data = data;
        self.context.set_account(key, &AccountSharedData::from(account));
    }

    /// Writes an account as given (tests use this for malformed oracle data).
    pub fn set_raw_account(&mut self, key: &Pubkey, account: solana_account::Account) {
        self.context.set_account(key, &AccountSharedData::from(account));
    }

    /// Writes a Pyth price update account (owned by the Pyth receiver program unless `owner`).
    pub fn set_pyth_price(&mut self, key: &Pubkey, price: &PythPrice, owner: Option<Pubkey>) {
        let account = price.account(owner.unwrap_or(pyth_solana_receiver_sdk::ID));
        self.context.set_account(key, &AccountSharedData::from(account));
        if owner.is_none() {
            self.price_history.push((*key, *price));
        }
    }

    /// The simulated market's price on `oracle` at `publish_time` (the last update written there
    /// published at or before it), republished at exactly that second into a fresh receiver-owned
    /// account, as posting Pyth's archived update would. `None` if nothing was published by then.
    pub fn post_archived_update(&mut self, oracle: &Pubkey, publish_time: i64) -> Option<Pubkey> {
        let prevailing = self
            .price_history
            .iter()
            .filter(|(key, price)| key == oracle && price.publish_time <= publish_time)
            .max_by_key(|(_, price)| price.publish_time)
            .map(|(_, price)| *price)?;
        let key = Pubkey::new_unique();
        self.set_pyth_price(&key, &PythPrice { publish_time, ..prevailing }, None);
        Some(key)
    }

    /// Creates a mint with `decimals` under `token_program`, with optional Token-2022 extensions.
    pub async fn create_mint(
        &mut self,
        token_program: &Pubkey,
        decimals: u8,
        extensions: &[MintExtension],
    ) -> Result<Keypair, BanksClientError> {
        let mint = Keypair::new();
        let payer = self.payer();
        let types: Vec<ExtensionType> = extensions
            .iter()
            .map(|e| match e {
                MintExtension::PermanentDelegate => ExtensionType::PermanentDelegate,
                MintExtension::TransferHook => ExtensionType::TransferHook,
                MintExtension::NonTransferable => ExtensionType::NonTransferable,
                MintExtension::MintCloseAuthority => ExtensionType::MintCloseAuthority,
                MintExtension::TransferFee(_) => ExtensionType::TransferFeeConfig,
                MintExtension::DefaultFrozen => ExtensionType::DefaultAccountState,
                MintExtension::ConfidentialTransfers => ExtensionType::ConfidentialTransferMint,
                MintExtension::Pausable => ExtensionType::Pausable,
                MintExtension::ScaledUiAmount => ExtensionType::ScaledUiAmount,
                MintExtension::InterestBearing => ExtensionType::InterestBearingConfig,
            })
            .collect();
        let space = if *token_program == spl_token::ID {
            spl_token::state::Mint::LEN
        } else {
            ExtensionType::try_calculate_account_len::<spl_token_2022::state::Mint>(&types).expect("mint size")
        };
        let rent = self.context.banks_client.get_rent().await?.minimum_balance(space);
        let mut ixs = vec![system_instruction::create_account(&payer.pubkey(), &mint.pubkey(), rent, space as u64, token_program)];
        let authority = payer.pubkey();
        for extension in extensions {
            use spl_token_2022::instruction as t22;
            let ix = match extension {
                MintExtension::PermanentDelegate => {
                    t22::initialize_permanent_delegate(token_program, &mint.pubkey(), &authority).expect("ix")
                }
                MintExtension::TransferHook => spl_token_2022::extension::transfer_hook::instruction::initialize(
                    token_program,
                    &mint.pubkey(),
                    Some(authority),
                    Some(Pubkey::new_unique()),
                )
                .expect("ix"),
                MintExtension::NonTransferable => t22::initialize_non_transferable_mint(token_program, &mint.pubkey()).expect("ix"),
                MintExtension::MintCloseAuthority => {
                    t22::initialize_mint_close_authority(token_program, &mint.pubkey(), Some(&authority)).expect("ix")
                }
                MintExtension::TransferFee(bps) => {
                    spl_token_2022::extension::transfer_fee::instruction::initialize_transfer_fee_config(
                        token_program,
                        &mint.pubkey(),
                        Some(&authority),
                        Some(&authority),
                        *bps,
                        u64::MAX,
                    )
                    .expect("ix")
                }
                MintExtension::DefaultFrozen => spl_token_2022::extension::default_account_state::instruction::initialize_default_account_state(
                    token_program,
                    &mint.pubkey(),
                    &spl_token_2022::state::AccountState::Frozen,
                )
                .expect("ix"),
                MintExtension::ConfidentialTransfers => {
                    spl_token_2022::extension::confidential_transfer::instruction::initialize_mint(
                        token_program,
                        &mint.pubkey(),
                        Some(authority),
                        true,
                        None,
                    )
                    .expect("ix")
                }
                MintExtension::Pausable => {
                    spl_token_2022::extension::pausable::instruction::initialize(token_program, &mint.pubkey(), &authority).expect("ix")
                }
                MintExtension::ScaledUiAmount => spl_token_2022::extension::scaled_ui_amount::instruction::initialize(
                    token_program,
                    &mint.pubkey(),
                    Some(authority),
                    2.0,
                )
                .expect("ix"),
                MintExtension::InterestBearing => spl_token_2022::extension::interest_bearing_mint::instruction::initialize(
                    token_program,
                    &mint.pubkey(),
                    Some(authority),
                    500,
                )
                .expect("ix"),
            };
            ixs.push(ix);
        }
        // A frozen default account state needs a freeze authority.
        let freeze = extensions.contains(&MintExtension::DefaultFrozen).then_some(&authority);
        ixs.push(
            spl_token_2022::instruction::initialize_mint2(token_program, &mint.pubkey(), &authority, freeze, decimals)
                .expect("ix"),
        );
        self.send(&ixs, &[&mint]).await?;
        Ok(mint)
    }

    /// Creates a token account of `mint` owned by `owner`.
    pub async fn create_token_account(
        &mut self,
        mint: &Pubkey,
        owner: &Pubkey,
        token_program: &Pubkey,
    ) -> Result<Pubkey, BanksClientError> {
        let account = Keypair::new();
        let payer = self.payer();
        let mint_data = self.account_data(mint).await.expect("mint exists");
        let space = if *token_program == spl_token::ID {
            spl_token::state::Account::LEN
        } else {
            use spl_token_2022::extension::{BaseStateWithExtensions, StateWithExtensions};
            let state = StateWithExtensions::<spl_token_2022::state::Mint>::unpack(&mint_data).expect("mint");
            let mint_types = state.get_extension_types().expect("extensions");
            let account_types = ExtensionType::get_required_init_account_extensions(&mint_types);
            ExtensionType::try_calculate_account_len::<spl_token_2022::state::Account>(&account_types).expect("size")
        };
        let rent = self.context.banks_client.get_rent().await?.minimum_balance(space);
        let ixs = [
            system_instruction::create_account(&payer.pubkey(), &account.pubkey(), rent, space as u64, token_program),
            spl_token_2022::instruction::initialize_account3(token_program, &account.pubkey(), mint, owner).expect("ix"),
        ];
        self.send(&ixs, &[&account]).await?;
        Ok(account.pubkey())
    }

    /// Mints `amount_native` of `mint` (whose authority is the payer) to `destination`.
    pub async fn mint_to(
        &mut self,
        mint: &Pubkey,
        destination: &Pubkey,
        token_program: &Pubkey,
        amount_native: u64,
    ) -> Result<(), BanksClientError> {
        let payer = self.payer();
        let ix = spl_token_2022::instruction::mint_to(token_program, mint, destination, &payer.pubkey(), &[], amount_native)
            .expect("ix");
        self.send(&[ix], &[]).await.map(|_| ())
    }

    /// Token amount of a token account (Token or Token-2022).
    pub async fn token_balance(&mut self, account: &Pubkey) -> u64 {
        let data = self.account_data(account).await.expect("token account exists");
        u64::from_le_bytes(data[64..72].try_into().expect("amount field"))
    }

    /// Funds `key` with lamports from the payer.
    pub async fn airdrop(&mut self, key: &Pubkey, lamports: u64) -> Result<(), BanksClientError> {
        let payer = self.payer();
        self.send(&[system_instruction::transfer(&payer.pubkey(), key, lamports)], &[]).await.map(|_| ())
    }

    /// Deserialises an Anchor (borsh) account.
    pub async fn load_anchor<T: AccountDeserialize>(&mut self, key: &Pubkey) -> T {
        let data = self.account_data(key).await.expect("account exists");
        T::try_deserialize(&mut &data[..]).expect("deserialise")
    }
}

use anchor_lang::solana_program::program_pack::Pack;

/// The payer followed by the other signers (the payer once).
fn with_payer<'a>(payer: &'a Keypair, signers: &[&'a Keypair]) -> Vec<&'a Keypair> {
    let mut keys = vec![payer];
    keys.extend(signers.iter().copied().filter(|k| k.pubkey() != payer.pubkey()));
    keys
}

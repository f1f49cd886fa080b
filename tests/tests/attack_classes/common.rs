//! What every attack class needs: a group with derivatives and two funded traders holding a
//! perp position against each other, a second group run by an attacker, a liquidatable account,
//! and the assertion that a refused transaction changed no account.

use anchor_lang::prelude::{AccountMeta, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_spl::token::spl_token;
use pm_client::world::{block_trade, fill_health_accounts, option_config, setup_derivatives, underlying_config, Derivatives};
use pm_client::local_bank::{LocalBank, TxOutcome};
use pm_client::sdk::{self, BankKeys, MarketKeys};
pub use pm_integration_tests::*;
use portfolio_margin::error::MarginError;
use portfolio_margin::instructions::{GroupParams, PerpConfig};
use portfolio_margin::state::MarketKind;
pub use portfolio_margin::state::PPM;
use solana_keypair::Keypair;
use solana_program_test::{BanksClientError, ProgramTest};
use solana_signer::Signer;

/// One USDC and one SOL in native units.
pub const USDC: u64 = 1_000_000;
pub const SOL: u64 = 1_000_000_000;
/// $150 per SOL, quote native units per lot (0.001 SOL).
pub const PERP_PRICE_PER_LOT: i64 = 150_000;
/// Lots Alice bought from Bob in the perp when the world was set up (1 SOL).
pub const OPEN_LOTS: i64 = 1_000;

/// The demo group with its SOL derivatives; Alice and Bob each deposited 10,000 USDC and
/// 10 SOL, and Alice is long `OPEN_LOTS` of the perp against Bob.
pub struct World {
    pub bank: LocalBank,
    pub market: DemoMarket,
    pub d: Derivatives,
    pub alice: Trader,
    pub bob: Trader,
}

pub async fn world() -> World {
    world_with(|_| {}).await
}

/// [`world`] on a bank where `configure` loaded other programs first.
pub async fn world_with(configure: impl FnOnce(&mut ProgramTest)) -> World {
    let mut bank = LocalBank::start_with(configure).await;
    let market = setup_market(&mut bank).await.unwrap();
    let d = setup_derivatives(&mut bank, &market).await.unwrap();
    let alice = funded_trader(&mut bank, &market, 10_000 * USDC, 10 * SOL).await;
    let bob = funded_trader(&mut bank, &market, 10_000 * USDC, 10 * SOL).await;
    block_trade(&mut bank, &market, &d.perp.keys, &alice, &bob, OPEN_LOTS, PERP_PRICE_PER_LOT).await.unwrap();
    World { bank, market, d, alice, bob }
}

/// A trader who deposited all of `usdc_native` and `sol_native` (minted to its wallets first).
pub async fn funded_trader(bank: &mut LocalBank, market: &DemoMarket, usdc_native: u64, sol_native: u64) -> Trader {
    let trader = new_trader(bank, market, usdc_native, sol_native).await.unwrap();
    let owner = trader.owner.insecure_clone();
    if usdc_native > 0 {
        bank.send(&[sdk::deposit(&trader.account, &market.usdc, &trader.usdc_wallet, &owner.pubkey(), usdc_native)], &[&owner]).await.unwrap();
    }
    if sol_native > 0 {
        bank.send(&[sdk::deposit(&trader.account, &market.sol, &trader.sol_wallet, &owner.pubkey(), sol_native)], &[&owner]).await.unwrap();
    }
    trader
}

/// A new account with 1,000 USDC that bought 30 SOL of the perp from Bob at $150; SOL then fell
/// to $135 (risk array refreshed): its maintenance health is negative.
pub async fn liquidatable(w: &mut World) -> Trader {
    let victim = funded_trader(&mut w.bank, &w.market, 1_000 * USDC, 0).await;
    block_trade(&mut w.bank, &w.market, &w.d.perp.keys, &victim, &w.bob, 30_000, PERP_PRICE_PER_LOT).await.unwrap();
    post_price(&mut w.bank, &w.market.sol.oracle, w.market.sol_feed, 135.0).await;
    w.bank.send(&[sdk::refresh_risk_array(&w.d.perp.keys)], &[]).await.unwrap();
    let maint = onchain_health(&mut w.bank, &w.market.group, &victim.account, risk_engine::health::HealthKind::Maint).await.unwrap();
    assert!(maint.health_native < 0, "the victim must be liquidatable: {maint:?}");
    victim
}

/// A new account with no positions and a 100 USDC quote debt (a settled loss), nothing else:
/// bankrupt. The insurance fund is empty, so resolving it socialises the debt over the perp.
pub async fn bankrupt(w: &mut World) -> Trader {
    let trader = new_trader(&mut w.bank, &w.market, 0, 0).await.unwrap();
    force_balance(&mut w.bank, &trader.account, &w.market.usdc.bank, -100 * USDC as i64).await;
    trader
}

/// Health accounts covering `accounts` as they are now.
pub async fn health_metas(bank: &mut LocalBank, group: &Pubkey, accounts: &[Pubkey]) -> Vec<AccountMeta> {
    pm_client::health::union_health_accounts(bank, group, accounts).await.unwrap()
}

/// Health accounts covering both sides of a fill or liquidation in `market_key`.
pub async fn fill_metas(bank: &mut LocalBank, market: &DemoMarket, accounts: &[Pubkey], market_key: &Pubkey) -> Vec<AccountMeta> {
    fill_health_accounts(bank, market, accounts, market_key).await.unwrap()
}

/// A second group run by an attacker: its own admin and risk authority (neither is the fee
/// payer, so they sign only when they mean to), USDC and SOL banks on the same mints and Pyth
/// accounts as the demo group, a SOL underlying, a perp and a call, and a margin account of the
/// admin with 1,000 USDC.
pub struct OtherGroup {
    pub admin: Keypair,
    pub risk_authority: Keypair,
    pub group: Pubkey,
    pub usdc: BankKeys,
    pub sol: BankKeys,
    pub underlying: Pubkey,
    pub perp: MarketKeys,
    pub call: MarketKeys,
    pub account: Pubkey,
}

pub async fn other_group(w: &mut World) -> OtherGroup {
    let bank = &mut w.bank;
    let market = &w.market;
    let admin = Keypair::new();
    let risk_authority = Keypair::new();
    bank.airdrop(&admin.pubkey(), 10 * SOL).await.unwrap();
    let params = GroupParams { unrealized_init_weight_ppm: 500_000, conf_multiplier_ppm: 2 * PPM, liquidation_fee_ppm: 20_000, insurance_share_ppm: 250_000 };
    bank.send(&[sdk::create_group(&admin.pubkey(), &risk_authority.pubkey(), &market.usdc.mint, 0, params)], &[&admin]).await.unwrap();
    let group = sdk::group_address(&admin.pubkey(), 0);
    let usdc_config = bank_config(market.usdc.oracle, market.usdc_feed, (PPM, PPM), (PPM, PPM));
    let usdc = list_bank(bank, &admin, &group, &market.usdc.mint, &spl_token::ID, usdc_config).await.unwrap();
    let sol_config = bank_config(market.sol.oracle, market.sol_feed, (800_000, 900_000), (1_200_000, 1_100_000));
    let sol = list_bank(bank, &admin, &group, &market.sol.mint, &spl_token::ID, sol_config).await.unwrap();
    let payer = bank.payer().pubkey();
    let config = underlying_config(market.sol.oracle, market.sol_feed);
    bank.send(&[sdk::add_underlying(&group, &admin.pubkey(), &payer, 0, None, config)], &[&admin]).await.unwrap();
    let underlying = sdk::underlying_address(&group, 0);
    let perp_config = PerpConfig { price_band_ppm: 200_000, ..pm_client::world::perp_config() };
    bank.send(&[sdk::add_perp_market(&group, &admin.pubkey(), &payer, &underlying, 0, perp_config)], &[&admin]).await.unwrap();
    let keys = |m: Pubkey| MarketKeys { group, market: m, underlying, oracle: market.sol.oracle, quote_bank: usdc.bank };
    let perp = keys(sdk::market_address(&group, 0));
    bank.send(&[sdk::refresh_risk_array(&perp)], &[]).await.unwrap();
    let expiry_ts = bank.now().await + 30 * 86_400;
    let call_config = option_config(MarketKind::Call, 160, expiry_ts);
    bank.send(&[sdk::add_option_market(&group, &admin.pubkey(), &payer, &underlying, 1, call_config)], &[&admin]).await.unwrap();
    let call = keys(sdk::market_address(&group, 1));
    bank.send(&[sdk::create_margin_account(&group, &admin.pubkey(), &admin.pubkey(), 0)], &[&admin]).await.unwrap();
    let account = sdk::margin_account_address(&group, &admin.pubkey(), 0);
    let wallet = bank.create_token_account(&market.usdc.mint, &admin.pubkey(), &spl_token::ID).await.unwrap();
    bank.mint_to(&market.usdc.mint, &wallet, &spl_token::ID, 1_000 * USDC).await.unwrap();
    bank.send(&[sdk::deposit(&account, &usdc, &wallet, &admin.pubkey(), 1_000 * USDC)], &[&admin]).await.unwrap();
    OtherGroup { admin, risk_authority, group, usdc, sol, underlying, perp, call, account }
}

/// `ix` with `key` no longer marked as a signer: the attacker names the key without its
/// signature.
pub fn unsigned(mut ix: Instruction, key: &Pubkey) -> Instruction {
    for meta in ix.accounts.iter_mut().filter(|m| m.pubkey == *key) {
        meta.is_signer = false;
    }
    ix
}

/// `ix` with every account `from` replaced by `to` (flags kept).
pub fn replaced(mut ix: Instruction, from: &Pubkey, to: &Pubkey) -> Instruction {
    for meta in ix.accounts.iter_mut().filter(|m| m.pubkey == *from) {
        meta.pubkey = *to;
    }
    ix
}

/// Every account the instructions name, except the fee payer (whose lamports pay the fee of a
/// failed transaction too).
pub fn touched(ixs: &[Instruction], payer: &Pubkey) -> Vec<Pubkey> {
    let mut keys: Vec<Pubkey> = Vec::new();
    for key in ixs.iter().flat_map(|ix| ix.accounts.iter().map(|m| m.pubkey).chain([ix.program_id])) {
        if key != *payer && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The error a refused attack must fail with.
#[derive(Clone, Debug)]
pub enum Expected {
    Margin(MarginError),
    Anchor(anchor_lang::error::ErrorCode),
    /// A built-in instruction error (not a custom code).
    Builtin(solana_instruction_error::InstructionError),
}

impl Expected {
    /// Whether `result` failed with this error.
    fn matches<T: std::fmt::Debug>(&self, result: &Result<T, BanksClientError>) -> bool {
        use solana_transaction_error::TransactionError;
        match self {
            Expected::Margin(e) => custom_code(result) == Some(code_of(*e)),
            Expected::Anchor(e) => custom_code(result) == Some(*e as u32),
            Expected::Builtin(expected) => {
                matches!(result, Err(BanksClientError::TransactionError(TransactionError::InstructionError(_, e))) if e == expected)
            }
        }
    }
}

/// Sends the attack and asserts that it failed with `expected` and that no account it names
/// changed (lamports and data).
pub async fn refused(bank: &mut LocalBank, ixs: &[Instruction], signers: &[&Keypair], expected: Expected) {
    let keys = touched(ixs, &bank.payer().pubkey());
    let before = snapshot(bank, &keys).await;
    let result: Result<TxOutcome, BanksClientError> = bank.send(ixs, signers).await;
    let after = snapshot(bank, &keys).await;
    assert!(expected.matches(&result), "expected {expected:?}, got {result:?}");
    assert!(before == after, "the refused attack ({expected:?}) changed an account it names");
}

/// Like [`refused`] for an attack that goes through another program first: also returns the
/// log lines (to tell which program refused).
pub async fn refused_logged(bank: &mut LocalBank, ixs: &[Instruction], signers: &[&Keypair], expected: Expected) -> Vec<String> {
    let keys = touched(ixs, &bank.payer().pubkey());
    let before = snapshot(bank, &keys).await;
    let (result, logs) = bank.send_logged(ixs, signers).await;
    let after = snapshot(bank, &keys).await;
    assert!(expected.matches(&result), "expected {expected:?}, got {result:?}\n{logs:#?}");
    assert!(before == after, "the refused attack ({expected:?}) changed an account it names");
    logs
}

/// Shorthands.
pub fn margin(e: MarginError) -> Expected {
    Expected::Margin(e)
}
pub fn anchor(e: anchor_lang::error::ErrorCode) -> Expected {
    Expected::Anchor(e)
}

/// Copies the account at `from` to a new address, owned by `owner`, with `edit` applied to its
/// data: an attacker's look-alike of one of our accounts.
pub async fn look_alike(bank: &mut LocalBank, from: &Pubkey, owner: Pubkey, edit: impl FnOnce(&mut Vec<u8>)) -> Pubkey {
    let mut data = bank.account_data(from).await.expect("account to copy");
    edit(&mut data);
    let key = Pubkey::new_unique();
    bank.set_raw_account(&key, solana_account::Account { lamports: 1_000_000_000, data, owner, executable: false, rent_epoch: 0 });
    key
}

/// Byte offset, in account data, of a `MarginAccount`'s `owner` field (after the
/// discriminator and `group`).
pub const MARGIN_OWNER_OFFSET: usize = 8 + 32;

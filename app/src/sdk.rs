//! Addresses and instruction builders for every portfolio-margin instruction.

use anchor_lang::prelude::{AccountMeta, Pubkey};
use anchor_lang::solana_program::instruction::Instruction;
use anchor_lang::{InstructionData, ToAccountMetas};
use portfolio_margin::instructions::GroupParams;
use portfolio_margin::state::{
    BankConfig, CollateralBank, MarginAccount, BANK_SEED, GROUP_SEED, MARGIN_ACCOUNT_SEED, VAULT_SEED,
};
use portfolio_margin::{accounts, instruction, ID as PROGRAM_ID};

/// Group PDA for `(admin, group_index)`.
pub fn group_address(admin: &Pubkey, group_index: u32) -> Pubkey {
    Pubkey::find_program_address(&[GROUP_SEED, admin.as_ref(), &group_index.to_le_bytes()], &PROGRAM_ID).0
}

/// Bank PDA for `(group, mint)`.
pub fn bank_address(group: &Pubkey, mint: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[BANK_SEED, group.as_ref(), mint.as_ref()], &PROGRAM_ID).0
}

/// Vault PDA of a bank.
pub fn vault_address(bank: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[VAULT_SEED, bank.as_ref()], &PROGRAM_ID).0
}

/// Margin-account PDA for `(group, owner, account_index)`.
pub fn margin_account_address(group: &Pubkey, owner: &Pubkey, account_index: u32) -> Pubkey {
    Pubkey::find_program_address(
        &[MARGIN_ACCOUNT_SEED, group.as_ref(), owner.as_ref(), &account_index.to_le_bytes()],
        &PROGRAM_ID,
    )
    .0
}

fn build(accounts: impl ToAccountMetas, data: impl InstructionData, extra: Vec<AccountMeta>) -> Instruction {
    let mut metas = accounts.to_account_metas(None);
    metas.extend(extra);
    Instruction { program_id: PROGRAM_ID, accounts: metas, data: data.data() }
}

/// `create_group`.
pub fn create_group(
    admin: &Pubkey,
    risk_authority: &Pubkey,
    quote_mint: &Pubkey,
    group_index: u32,
    params: GroupParams,
) -> Instruction {
    build(
        accounts::CreateGroup {
            group: group_address(admin, group_index),
            admin: *admin,
            risk_authority: *risk_authority,
            quote_mint: *quote_mint,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::CreateGroup { group_index, params },
        vec![],
    )
}

/// `add_collateral_bank`.
pub fn add_collateral_bank(
    group: &Pubkey,
    admin: &Pubkey,
    payer: &Pubkey,
    mint: &Pubkey,
    token_program: &Pubkey,
    config: BankConfig,
) -> Instruction {
    let bank = bank_address(group, mint);
    build(
        accounts::AddCollateralBank {
            group: *group,
            admin: *admin,
            mint: *mint,
            bank,
            vault: vault_address(&bank),
            payer: *payer,
            token_program: *token_program,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::AddCollateralBank { config },
        vec![],
    )
}

/// `update_collateral_bank`.
pub fn update_collateral_bank(group: &Pubkey, admin: &Pubkey, bank: &Pubkey, config: BankConfig) -> Instruction {
    build(
        accounts::UpdateCollateralBank { group: *group, admin: *admin, bank: *bank },
        instruction::UpdateCollateralBank { config },
        vec![],
    )
}

/// `create_margin_account`.
pub fn create_margin_account(group: &Pubkey, owner: &Pubkey, payer: &Pubkey, account_index: u32) -> Instruction {
    build(
        accounts::CreateMarginAccount {
            group: *group,
            margin_account: margin_account_address(group, owner, account_index),
            owner: *owner,
            payer: *payer,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::CreateMarginAccount { account_index },
        vec![],
    )
}

/// `set_delegate` with the owner's limits (`Pubkey::default()` removes the delegate).
pub fn set_delegate(
    margin_account: &Pubkey,
    owner: &Pubkey,
    delegate: &Pubkey,
    limits: portfolio_margin::instructions::DelegateLimits,
) -> Instruction {
    build(
        accounts::SetDelegate { margin_account: *margin_account, owner: *owner },
        instruction::SetDelegate { delegate: *delegate, limits },
        vec![],
    )
}

/// `close_margin_account`.
pub fn close_margin_account(margin_account: &Pubkey, owner: &Pubkey) -> Instruction {
    build(
        accounts::CloseMarginAccount { margin_account: *margin_account, owner: *owner },
        instruction::CloseMarginAccount {},
        vec![],
    )
}

/// The token accounts and programs of one bank, as instructions need them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankKeys {
    pub bank: Pubkey,
    pub vault: Pubkey,
    pub mint: Pubkey,
    pub token_program: Pubkey,
    pub oracle: Pubkey,
}

impl BankKeys {
    /// Keys of a loaded bank.
    pub fn of(bank_key: Pubkey, bank: &CollateralBank) -> Self {
        BankKeys { bank: bank_key, vault: bank.vault, mint: bank.mint, token_program: bank.token_program, oracle: bank.oracle }
    }
}

/// `deposit` from `source` (owned by `authority`, the account's owner or delegate).
pub fn deposit(margin_account: &Pubkey, bank: &BankKeys, source: &Pubkey, authority: &Pubkey, amount_native: u64) -> Instruction {
    build(
        accounts::Deposit {
            margin_account: *margin_account,
            bank: bank.bank,
            vault: bank.vault,
            mint: bank.mint,
            source: *source,
            authority: *authority,
            token_program: bank.token_program,
        },
        instruction::Deposit { amount_native },
        vec![],
    )
}

/// `withdraw` to `destination`; `health_accounts` from [`health_accounts`].
pub fn withdraw(
    group: &Pubkey,
    margin_account: &Pubkey,
    bank: &BankKeys,
    destination: &Pubkey,
    owner: &Pubkey,
    amount_native: u64,
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    build(
        accounts::Withdraw {
            group: *group,
            margin_account: *margin_account,
            bank: bank.bank,
            vault: bank.vault,
            mint: bank.mint,
            destination: *destination,
            owner: *owner,
            token_program: bank.token_program,
        },
        instruction::Withdraw { amount_native },
        health_accounts,
    )
}

/// `health_check`.
pub fn health_check(
    group: &Pubkey,
    margin_account: &Pubkey,
    min_health_native: i64,
    kind: u8,
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    build(
        accounts::HealthCheck { group: *group, margin_account: *margin_account },
        instruction::HealthCheck { min_health_native, kind },
        health_accounts,
    )
}

/// What the health-account list needs to know about the accounts a margin account refers to
/// ([`crate::health::HealthSnapshot`] knows it from the chain).
pub trait HealthAccountSource {
    /// A bank's oracle and the underlying it is linked to (`Pubkey::default()` if none).
    fn bank(&self, bank: &Pubkey) -> Option<(Pubkey, Pubkey)>;
    /// A market's underlying.
    fn market_underlying(&self, market: &Pubkey) -> Option<Pubkey>;
    /// An underlying's oracle.
    fn underlying_oracle(&self, underlying: &Pubkey) -> Option<Pubkey>;
}

/// The health accounts of `account` (as it will be after the instruction: see
/// [`after_withdrawal`]), the one derivation every client path uses: each active balance's bank
/// and its oracle, each position's market, then every underlying the program will look for
/// (`portfolio_margin::health::required_underlyings`: the positions' and the linked banks')
/// with its oracle. Each key once; the program finds them by key, so order does not matter.
/// A key `source` does not know is left out (the program then names it in its error).
pub fn health_accounts(account: &MarginAccount, source: &impl HealthAccountSource) -> Vec<AccountMeta> {
    let mut keys: Vec<Pubkey> = Vec::new();
    let mut push = |key: Pubkey| {
        if !keys.contains(&key) {
            keys.push(key);
        }
    };
    for balance in account.active_balances() {
        push(balance.bank);
        if let Some((oracle, _)) = source.bank(&balance.bank) {
            push(oracle);
        }
    }
    for position in account.positions.iter().filter(|p| p.in_use == 1) {
        push(position.market);
    }
    let needed = portfolio_margin::health::required_underlyings(
        account,
        |market| source.market_underlying(market),
        |bank| source.bank(bank).map(|(_, underlying)| underlying),
    )
    .unwrap_or_else(|_| {
        // Some lookup failed: still list what is known, one account at a time.
        let from_markets = account.positions.iter().filter(|p| p.in_use == 1).filter_map(|p| source.market_underlying(&p.market));
        let from_banks = account.active_balances().filter_map(|b| source.bank(&b.bank).map(|(_, u)| u)).filter(|u| *u != Pubkey::default());
        from_markets.chain(from_banks).collect()
    });
    for underlying in needed {
        push(underlying);
        if let Some(oracle) = source.underlying_oracle(&underlying) {
            push(oracle);
        }
    }
    keys.into_iter().map(|key| AccountMeta::new_readonly(key, false)).collect()
}

/// The account as it will be after withdrawing `amount_native` from `bank` (a slot emptied by
/// the withdrawal is released, and its accounts must then not be passed).
pub fn after_withdrawal(account: &MarginAccount, bank: &Pubkey, amount_native: u64) -> MarginAccount {
    let mut after = *account;
    if let Some(index) = after.balance_index(bank) {
        let slot = &mut after.balances[index];
        slot.balance_native = slot.balance_native.saturating_sub(amount_native.min(i64::MAX as u64) as i64);
        after.release_if_zero(index);
    }
    after
}

/// Underlying PDA for `(group, index)`.
pub fn underlying_address(group: &Pubkey, index: u16) -> Pubkey {
    Pubkey::find_program_address(&[portfolio_margin::state::UNDERLYING_SEED, group.as_ref(), &index.to_le_bytes()], &PROGRAM_ID).0
}

/// Market PDA for `(group, index)`.
pub fn market_address(group: &Pubkey, index: u16) -> Pubkey {
    Pubkey::find_program_address(&[portfolio_margin::state::MARKET_SEED, group.as_ref(), &index.to_le_bytes()], &PROGRAM_ID).0
}

/// Venue registration PDA for `(group, venue_program)`.
pub fn venue_address(group: &Pubkey, venue_program: &Pubkey) -> Pubkey {
    Pubkey::find_program_address(&[portfolio_margin::state::VENUE_SEED, group.as_ref(), venue_program.as_ref()], &PROGRAM_ID).0
}

/// `add_underlying` at index `index` (the group's current underlying count).
pub fn add_underlying(
    group: &Pubkey,
    admin: &Pubkey,
    payer: &Pubkey,
    index: u16,
    collateral_bank: Option<Pubkey>,
    config: portfolio_margin::instructions::UnderlyingConfig,
) -> Instruction {
    build(
        accounts::AddUnderlying {
            group: *group,
            admin: *admin,
            underlying: underlying_address(group, index),
            collateral_bank,
            payer: *payer,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::AddUnderlying { config },
        vec![],
    )
}

/// `set_correlation_group`: correlation group `correlation_group` (1..=8) gets
/// `correlation_ppm`.
pub fn set_correlation_group(group: &Pubkey, admin: &Pubkey, correlation_group: u8, correlation_ppm: u32) -> Instruction {
    build(
        accounts::SetCorrelationGroup { group: *group, admin: *admin },
        instruction::SetCorrelationGroup { correlation_group, correlation_ppm },
        vec![],
    )
}

/// `update_group` (admin): new parameters and risk authority.
pub fn update_group(group: &Pubkey, admin: &Pubkey, params: GroupParams, risk_authority: &Pubkey) -> Instruction {
    build(
        accounts::UpdateGroup { group: *group, admin: *admin },
        instruction::UpdateGroup { params, risk_authority: *risk_authority },
        vec![],
    )
}

/// `assign_correlation_group`: `underlying` joins `correlation_group` (0: leaves its group).
pub fn assign_correlation_group(group: &Pubkey, admin: &Pubkey, underlying: &Pubkey, correlation_group: u8) -> Instruction {
    build(
        accounts::AssignCorrelationGroup { group: *group, admin: *admin, underlying: *underlying },
        instruction::AssignCorrelationGroup { correlation_group },
        vec![],
    )
}

fn add_market_accounts(group: &Pubkey, admin: &Pubkey, payer: &Pubkey, underlying: &Pubkey, index: u16) -> accounts::AddMarket {
    accounts::AddMarket {
        group: *group,
        admin: *admin,
        underlying: *underlying,
        market: market_address(group, index),
        payer: *payer,
        system_program: anchor_lang::system_program::ID,
    }
}

/// `add_perp_market` at index `index` (the group's current market count).
pub fn add_perp_market(
    group: &Pubkey,
    admin: &Pubkey,
    payer: &Pubkey,
    underlying: &Pubkey,
    index: u16,
    config: portfolio_margin::instructions::PerpConfig,
) -> Instruction {
    build(add_market_accounts(group, admin, payer, underlying, index), instruction::AddPerpMarket { config }, vec![])
}

/// `add_option_market` at index `index` (the group's current market count).
pub fn add_option_market(
    group: &Pubkey,
    admin: &Pubkey,
    payer: &Pubkey,
    underlying: &Pubkey,
    index: u16,
    config: portfolio_margin::instructions::OptionConfig,
) -> Instruction {
    build(add_market_accounts(group, admin, payer, underlying, index), instruction::AddOptionMarket { config }, vec![])
}

/// `set_volatility`.
pub fn set_volatility(group: &Pubkey, risk_authority: &Pubkey, market: &Pubkey, vol_bits: i64) -> Instruction {
    build(
        accounts::SetVolatility { group: *group, risk_authority: *risk_authority, market: *market },
        instruction::SetVolatility { vol_bits },
        vec![],
    )
}

/// The market-side keys instructions need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketKeys {
    pub group: Pubkey,
    pub market: Pubkey,
    pub underlying: Pubkey,
    pub oracle: Pubkey,
    pub quote_bank: Pubkey,
}

/// `refresh_risk_array`.
pub fn refresh_risk_array(keys: &MarketKeys) -> Instruction {
    build(
        accounts::RefreshRiskArray { group: keys.group, market: keys.market, underlying: keys.underlying, oracle: keys.oracle },
        instruction::RefreshRiskArray {},
        vec![],
    )
}

/// `trade`: `buyer` gets `lots` from `seller` at `price_per_lot_native`; `health_accounts`
/// must cover both accounts as they will be after the fill.
#[allow(clippy::too_many_arguments)]
pub fn trade(
    keys: &MarketKeys,
    buyer: &Pubkey,
    buyer_authority: &Pubkey,
    seller: &Pubkey,
    seller_authority: &Pubkey,
    lots: i64,
    price_per_lot_native: i64,
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    build(
        accounts::Trade {
            group: keys.group,
            market: keys.market,
            underlying: keys.underlying,
            oracle: keys.oracle,
            quote_bank: keys.quote_bank,
            buyer: *buyer,
            buyer_authority: *buyer_authority,
            seller: *seller,
            seller_authority: *seller_authority,
        },
        instruction::Trade { lots, price_per_lot_native },
        health_accounts,
    )
}

/// `register_venue`.
pub fn register_venue(group: &Pubkey, admin: &Pubkey, payer: &Pubkey, venue_program: &Pubkey) -> Instruction {
    build(
        accounts::RegisterVenue {
            group: *group,
            admin: *admin,
            venue: venue_address(group, venue_program),
            payer: *payer,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::RegisterVenue { venue_program: *venue_program },
        vec![],
    )
}

/// `approve_venue` with the owner's limits (`Pubkey::default()` revokes).
pub fn approve_venue(
    margin_account: &Pubkey,
    owner: &Pubkey,
    venue_program: &Pubkey,
    limits: portfolio_margin::instructions::VenueLimits,
) -> Instruction {
    build(
        accounts::ApproveVenue { margin_account: *margin_account, owner: *owner },
        instruction::ApproveVenue { venue_program: *venue_program, limits },
        vec![],
    )
}

/// `venue_trade` (normally built by the venue program for its CPI); `consents` are the keys
/// that consented for the buyer and the seller.
#[allow(clippy::too_many_arguments)]
pub fn venue_trade(
    keys: &MarketKeys,
    venue: &Pubkey,
    venue_authority: &Pubkey,
    buyer: &Pubkey,
    seller: &Pubkey,
    lots: i64,
    price_per_lot_native: i64,
    consents: (Pubkey, Pubkey),
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    build(
        accounts::VenueTrade {
            group: keys.group,
            venue: *venue,
            venue_authority: *venue_authority,
            market: keys.market,
            underlying: keys.underlying,
            oracle: keys.oracle,
            quote_bank: keys.quote_bank,
            buyer: *buyer,
            seller: *seller,
        },
        instruction::VenueTrade { lots, price_per_lot_native, buyer_consent: consents.0, seller_consent: consents.1 },
        health_accounts,
    )
}

/// `update_funding`.
pub fn update_funding(keys: &MarketKeys) -> Instruction {
    build(
        accounts::UpdateFunding { group: keys.group, market: keys.market, underlying: keys.underlying, oracle: keys.oracle },
        instruction::UpdateFunding {},
        vec![],
    )
}

/// `settle_pnl` from `loser` to `winner`; `loser_health_accounts` cover the loser after paying.
pub fn settle_pnl(keys: &MarketKeys, winner: &Pubkey, loser: &Pubkey, loser_health_accounts: Vec<AccountMeta>) -> Instruction {
    build(
        accounts::SettlePnl {
            group: keys.group,
            market: keys.market,
            underlying: keys.underlying,
            oracle: keys.oracle,
            quote_bank: keys.quote_bank,
            winner: *winner,
            loser: *loser,
        },
        instruction::SettlePnl {},
        loser_health_accounts,
    )
}

/// `propose_settlement_price` from the Pyth update in `price_update` (any receiver-owned
/// `PriceUpdateV2` account with the underlying's feed).
pub fn propose_settlement_price(keys: &MarketKeys, price_update: &Pubkey) -> Instruction {
    build(
        accounts::ProposeSettlementPrice {
            group: keys.group,
            market: keys.market,
            underlying: keys.underlying,
            price_update: *price_update,
        },
        instruction::ProposeSettlementPrice {},
        vec![],
    )
}

/// `settle_expired_option` for `accounts` (once the settlement price is final).
pub fn settle_expired_option(keys: &MarketKeys, accounts_to_settle: &[Pubkey]) -> Instruction {
    build(
        accounts::SettleExpiredOption { group: keys.group, market: keys.market, quote_bank: keys.quote_bank },
        instruction::SettleExpiredOption {},
        accounts_to_settle.iter().map(|k| AccountMeta::new(*k, false)).collect(),
    )
}

/// `fund_insurance` from `source` (owned by `funder`).
pub fn fund_insurance(group: &Pubkey, quote: &BankKeys, source: &Pubkey, funder: &Pubkey, amount_native: u64) -> Instruction {
    build(
        accounts::FundInsurance {
            group: *group,
            quote_bank: quote.bank,
            vault: quote.vault,
            mint: quote.mint,
            source: *source,
            funder: *funder,
            token_program: quote.token_program,
        },
        instruction::FundInsurance { amount_native },
        vec![],
    )
}

/// `liquidate_position`: `liquidator` takes at most `max_lots` of `liquidatee`'s position in the market (the program chooses the size).
pub fn liquidate_position(
    keys: &MarketKeys,
    liquidator: &Pubkey,
    liquidator_authority: &Pubkey,
    liquidatee: &Pubkey,
    max_lots: i64,
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    build(
        accounts::LiquidatePosition {
            group: keys.group,
            market: keys.market,
            underlying: keys.underlying,
            oracle: keys.oracle,
            quote_bank: keys.quote_bank,
            liquidator: *liquidator,
            liquidator_authority: *liquidator_authority,
            liquidatee: *liquidatee,
        },
        instruction::LiquidatePosition { max_lots },
        health_accounts,
    )
}

/// `liquidate_token`: `liquidator` pays `liability_native` of `liquidatee`'s quote debt for
/// its collateral in `asset_bank`.
#[allow(clippy::too_many_arguments)]
pub fn liquidate_token(
    group: &Pubkey,
    quote_bank: &Pubkey,
    asset_bank: &Pubkey,
    liquidator: &Pubkey,
    liquidator_authority: &Pubkey,
    liquidatee: &Pubkey,
    max_liability_native: i64,
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    build(
        accounts::LiquidateToken {
            group: *group,
            quote_bank: *quote_bank,
            asset_bank: *asset_bank,
            liquidator: *liquidator,
            liquidator_authority: *liquidator_authority,
            liquidatee: *liquidatee,
        },
        instruction::LiquidateToken { max_liability_native },
        health_accounts,
    )
}

/// `resolve_bankruptcy` for `account`; `perp_markets` must be every perp market of the group,
/// `dust` the (bank, oracle) of each non-quote balance the account still holds.
pub fn resolve_bankruptcy(group: &Pubkey, quote_bank: &Pubkey, account: &Pubkey, perp_markets: &[Pubkey], dust: &[(Pubkey, Pubkey)]) -> Instruction {
    let mut metas: Vec<AccountMeta> = perp_markets.iter().map(|k| AccountMeta::new(*k, false)).collect();
    for (bank, oracle) in dust {
        metas.push(AccountMeta::new(*bank, false));
        metas.push(AccountMeta::new_readonly(*oracle, false));
    }
    build(accounts::ResolveBankruptcy { group: *group, quote_bank: *quote_bank, account: *account }, instruction::ResolveBankruptcy {}, metas)
}

/// `clear_liquidation_flag` for `account` (permissionless; its health accounts are needed).
pub fn clear_liquidation_flag(group: &Pubkey, account: &Pubkey, health_accounts: Vec<AccountMeta>) -> Instruction {
    build(
        accounts::ClearLiquidationFlag { group: *group, margin_account: *account },
        instruction::ClearLiquidationFlag {},
        health_accounts,
    )
}

/// `buy_insurance_collateral`: `buyer` buys `amount_native` of the insurance fund's tokens in
/// `bank`; `health_accounts` cover the buyer afterwards.
pub fn buy_insurance_collateral(
    group: &Pubkey,
    bank: &BankKeys,
    quote_bank: &Pubkey,
    buyer: &Pubkey,
    buyer_authority: &Pubkey,
    amount_native: u64,
    health_accounts: Vec<AccountMeta>,
) -> Instruction {
    build(
        accounts::BuyInsuranceCollateral {
            group: *group,
            bank: bank.bank,
            oracle: bank.oracle,
            quote_bank: *quote_bank,
            buyer: *buyer,
            buyer_authority: *buyer_authority,
        },
        instruction::BuyInsuranceCollateral { amount_native },
        health_accounts,
    )
}

/// `release_prefunded_address`: moves the lamports out of `address` (a program address funded
/// before its account was created) to `recipient`; put it before the instruction creating it.
pub fn release_prefunded_address(address: portfolio_margin::instructions::ProgramAddress, recipient: &Pubkey) -> Instruction {
    build(
        accounts::ReleasePrefundedAddress {
            prefunded: address.find().0,
            recipient: *recipient,
            system_program: anchor_lang::system_program::ID,
        },
        instruction::ReleasePrefundedAddress { address },
        vec![],
    )
}

/// The program's events of type `T` in a transaction's logs, in order. Anchor's `emit!` logs
/// each event as `Program data: ` followed by base64 of its 8-byte discriminator and its Borsh
/// serialisation. Only lines written while portfolio-margin itself is the running program
/// count (the `Program <id> invoke` / `success` / `failed` lines give the call stack): another
/// program in the same transaction could log a line that decodes as one of ours. A failed
/// transaction's logs keep their events too: check the outcome first.
pub fn events<T: anchor_lang::Event + anchor_lang::AnchorDeserialize>(logs: &[String]) -> Vec<T> {
    use base64::Engine;
    let ours = PROGRAM_ID.to_string();
    let mut stack: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    for line in logs {
        let Some(rest) = line.strip_prefix("Program ") else { continue };
        if let Some(data) = rest.strip_prefix("data: ") {
            if stack.last() != Some(&ours.as_str()) {
                continue;
            }
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else { continue };
            if let Some(body) = bytes.strip_prefix(T::DISCRIMINATOR) {
                if let Ok(event) = T::try_from_slice(body) {
                    found.push(event);
                }
            }
        } else if let Some((id, tail)) = rest.split_once(' ') {
            if tail.starts_with("invoke [") {
                stack.push(id);
            } else if (tail == "success" || tail.starts_with("failed")) && stack.last() == Some(&id) {
                stack.pop();
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::Event;
    use base64::Engine;

    struct Source {
        banks: Vec<(Pubkey, Pubkey, Pubkey)>,
        markets: Vec<(Pubkey, Pubkey)>,
        underlyings: Vec<(Pubkey, Pubkey)>,
    }

    impl HealthAccountSource for Source {
        fn bank(&self, bank: &Pubkey) -> Option<(Pubkey, Pubkey)> {
            self.banks.iter().find(|b| b.0 == *bank).map(|b| (b.1, b.2))
        }
        fn market_underlying(&self, market: &Pubkey) -> Option<Pubkey> {
            self.markets.iter().find(|m| m.0 == *market).map(|m| m.1)
        }
        fn underlying_oracle(&self, underlying: &Pubkey) -> Option<Pubkey> {
            self.underlyings.iter().find(|u| u.0 == *underlying).map(|u| u.1)
        }
    }

    /// Every key the program looks for, once: banks and oracles, markets, the underlyings of
    /// the positions and of linked banks with their oracles (a SOL bank linked to the SOL
    /// underlying that a perp also needs is listed once). A market the source does not know
    /// leaves its own underlying out, not every other one.
    #[test]
    fn health_accounts_list_every_key_the_program_needs_once() {
        let k = |_: u8| Pubkey::new_unique();
        let (usdc, usdc_oracle, sol_bank, sol_oracle, sol, perp, call, btc, btc_oracle, btc_perp) =
            (k(0), k(1), k(2), k(3), k(4), k(5), k(6), k(7), k(8), k(9));
        let source = Source {
            banks: vec![(usdc, usdc_oracle, Pubkey::default()), (sol_bank, sol_oracle, sol)],
            markets: vec![(perp, sol), (call, sol), (btc_perp, btc)],
            underlyings: vec![(sol, sol_oracle), (btc, btc_oracle)],
        };
        let mut account: MarginAccount = bytemuck::Zeroable::zeroed();
        account.add_to_balance(&usdc, 0, 5).unwrap();
        account.add_to_balance(&sol_bank, 1, 5).unwrap();
        for (i, market) in [perp, call, btc_perp].into_iter().enumerate() {
            account.positions[i].market = market;
            account.positions[i].in_use = 1;
            account.positions[i].base_lots = 1;
        }
        let keys: Vec<Pubkey> = health_accounts(&account, &source).into_iter().map(|m| m.pubkey).collect();
        let expected = [usdc, usdc_oracle, sol_bank, sol_oracle, perp, call, btc_perp, sol, btc, btc_oracle];
        assert_eq!(keys.len(), expected.len(), "{keys:?}");
        assert!(expected.iter().all(|e| keys.contains(e)));
        // An unknown market: the others' underlyings are still listed.
        let partial = Source { markets: vec![(perp, sol), (call, sol)], ..source };
        let keys: Vec<Pubkey> = health_accounts(&account, &partial).into_iter().map(|m| m.pubkey).collect();
        assert!(keys.contains(&sol) && keys.contains(&btc_perp) && !keys.contains(&btc), "{keys:?}");
    }

    /// Only lines logged while portfolio-margin is the running program are its events: the
    /// same bytes logged by another program (or after ours returned) are not.
    #[test]
    fn events_are_read_only_from_the_programs_own_frames() {
        let event = portfolio_margin::events::PnlSettled {
            market: Pubkey::new_unique(),
            winner: Pubkey::new_unique(),
            loser: Pubkey::new_unique(),
            amount_native: 42,
        };
        let data = format!("Program data: {}", base64::engine::general_purpose::STANDARD.encode(event.data()));
        let (ours, other) = (PROGRAM_ID.to_string(), Pubkey::new_unique().to_string());
        let logs: Vec<String> = vec![
            format!("Program {other} invoke [1]"),
            data.clone(), // forged by another program
            format!("Program {ours} invoke [2]"),
            data.clone(), // ours, called by it
            format!("Program {ours} success"),
            data.clone(), // the caller again
            format!("Program {other} success"),
            format!("Program {ours} invoke [1]"),
            "Program log: Instruction: SettlePnl".into(),
            data.clone(),
            format!("Program {ours} success"),
            data,
        ];
        let found = events::<portfolio_margin::events::PnlSettled>(&logs);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|e| e.amount_native == 42 && e.market == event.market));
        assert!(events::<portfolio_margin::events::FundingUpdated>(&logs).is_empty(), "another type");
    }
}

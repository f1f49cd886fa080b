//! `resolve_bankruptcy` (permissionless): an account with no positions, a negative quote
//! balance and other collateral worth less than that debt at the oracle (nothing at all, or
//! dust that no token liquidation can take: one native unit of debt may cost several native
//! units of collateral) is bankrupt. Its remaining collateral passes to the insurance fund (held
//! in the bank's vault as `insurance_native`) and the insurance fund covers the hole from its
//! quote. What remains is socialised over every open perp position in the group (the collateral
//! is not credited against it: nothing sells it for quote yet):
//!
//! - each perp market takes a share proportional to its open interest x the spot per lot of
//!   its last risk array (whole native units; the last market with interest takes the rounding
//!   remainder);
//! - in each market, every position, long or short, pays `|lots| x increase` of the market's
//!   loss index, the increase rounded up so the positions pay at least the share; the excess
//!   (below one native unit per lot) goes to the insurance fund.
//!
//! Every perp market of the group must be passed (writable) in `remaining_accounts`, and for each
//! remaining collateral balance its bank (writable) and the bank's oracle. The bankrupt account
//! is left empty and usable.

use crate::error::MarginError;
use crate::health::find;
use crate::oracle::{read_oracle_account, OracleConfig};
use crate::state::{CollateralBank, Group, MarginAccount, Market};
use anchor_lang::prelude::*;
use anchor_lang::Discriminator;
use fixed::types::I80F48;

#[derive(Accounts)]
pub struct ResolveBankruptcy<'info> {
    #[account(mut)]
    pub group: AccountLoader<'info, Group>,
    #[account(has_one = group @ MarginError::WrongGroup)]
    pub quote_bank: AccountLoader<'info, CollateralBank>,
    #[account(mut, has_one = group @ MarginError::WrongGroup)]
    pub account: AccountLoader<'info, MarginAccount>,
}

/// Splits `loss` over markets by weight (exactly, remainder to the last weighted market) and
/// returns each market's loss-index increase per lot and the total charged.
pub fn socialize(loss: i64, open_interest: &[i64], weights: &[i128]) -> Result<(Vec<i64>, i64)> {
    let total: i128 = weights.iter().sum();
    require!(total > 0, MarginError::NothingToSocialize);
    let last = weights.iter().rposition(|w| *w > 0).ok_or(MarginError::NothingToSocialize)?;
    let mut assigned = 0i64;
    let mut increases = vec![0i64; weights.len()];
    let mut charged = 0i64;
    for (i, weight) in weights.iter().enumerate() {
        if *weight == 0 {
            continue;
        }
        let share = if i == last { loss - assigned } else { (loss as i128 * weight / total) as i64 };
        assigned = assigned.checked_add(share).ok_or(MarginError::MathOverflow)?;
        let overflow = || error!(MarginError::MathOverflow);
        let payers = open_interest[i].checked_mul(2).ok_or_else(overflow)?; // longs and shorts
        let increase = share.checked_add(payers - 1).ok_or_else(overflow)? / payers;
        increases[i] = increase;
        charged = charged.checked_add(increase.checked_mul(payers).ok_or(MarginError::MathOverflow)?).ok_or(MarginError::MathOverflow)?;
    }
    Ok((increases, charged))
}

/// Value at the oracle of an account's non-quote collateral, quote native units rounded up
/// (against the account: collateral is taken only if it is surely worth less than the debt),
/// with each bank found among `infos`. Fails with `NotBankrupt` on a negative non-quote balance.
fn remaining_collateral<'info>(
    group: &Group,
    group_key: &Pubkey,
    account: &MarginAccount,
    quote_key: &Pubkey,
    infos: &'info [AccountInfo<'info>],
    now: i64,
) -> Result<(I80F48, Vec<(usize, &'info AccountInfo<'info>)>)> {
    let mut value = I80F48::ZERO;
    let mut banks = Vec::new();
    for (index, balance) in account.balances.iter().enumerate() {
        if balance.in_use == 0 || balance.bank == *quote_key {
            continue;
        }
        require!(balance.balance_native >= 0, MarginError::NotBankrupt);
        let info = find(infos, &balance.bank).ok_or_else(|| {
            msg!("bank {} of a remaining balance was not passed", balance.bank);
            error!(MarginError::HealthAccountsMismatch)
        })?;
        let loader = AccountLoader::<CollateralBank>::try_from(info)?;
        let bank = loader.load()?;
        require_keys_eq!(bank.group, *group_key, MarginError::WrongGroup);
        let config = OracleConfig::of_bank(&bank);
        let oracle = find(infos, &config.oracle).ok_or(MarginError::OracleKeyMismatch)?;
        let price = read_oracle_account(&config, oracle, now)?.token_prices(group, bank.mint_decimals)?.oracle;
        let worth = I80F48::from_num(balance.balance_native).checked_mul(price).ok_or(MarginError::MathOverflow)?;
        value = value.checked_add(worth.checked_ceil().ok_or(MarginError::MathOverflow)?).ok_or(MarginError::MathOverflow)?;
        banks.push((index, info));
    }
    Ok((value, banks))
}

pub fn resolve_bankruptcy<'info>(ctx: Context<'info, ResolveBankruptcy<'info>>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let quote_key = ctx.accounts.quote_bank.key();
    let group_key = ctx.accounts.group.key();
    let mut group = ctx.accounts.group.load_mut()?;
    group.require_quote_bank(&quote_key)?;
    let mut account = ctx.accounts.account.load_mut()?;
    require!(account.positions.iter().all(|p| p.in_use == 0), MarginError::NotBankrupt);
    let quote_index = account.balance_index(&quote_key).ok_or(MarginError::NoLiability)?;
    let debt = account.balances[quote_index].balance_native.checked_neg().ok_or(MarginError::MathOverflow)?;
    require!(debt > 0, MarginError::NoLiability);
    // Collateral left must be worth less than the debt: otherwise liquidate it first.
    let (collateral_value, dust) = remaining_collateral(&group, &group_key, &account, &quote_key, ctx.remaining_accounts, now)?;
    require!(collateral_value < I80F48::from_num(debt), MarginError::NotBankrupt);
    let (mut collateral_taken_banks, mut collateral_taken_native) = (Vec::new(), Vec::new());
    for (index, info) in dust {
        let amount = account.balances[index].balance_native as u64;
        let loader = AccountLoader::<CollateralBank>::try_from(info)?;
        let mut bank = loader.load_mut()?;
        bank.total_deposits_native = bank.total_deposits_native.checked_sub(amount).ok_or(MarginError::MathOverflow)?;
        bank.insurance_native = bank.insurance_native.checked_add(amount).ok_or(MarginError::MathOverflow)?;
        account.balances[index].balance_native = 0;
        account.release_if_zero(index);
        collateral_taken_banks.push(loader.key());
        collateral_taken_native.push(amount);
        msg!("collateral worth less than the debt passes to the insurance fund: {} native units", amount);
    }
    let index = account.balance_index(&quote_key).ok_or(MarginError::NoLiability)?;
    let hole = -account.balances[index].balance_native;
    require!(hole > 0, MarginError::NoLiability);

    // The collateral taken is not credited against the loss: nothing can sell it for quote yet,
    // and a credit would leave the quote vault short of what depositors can withdraw. Perp
    // holders may so pay up to its value more than the net loss; the fund keeps it in kind.
    let covered = hole.min(group.insurance_fund_native.max(0));
    let remaining = hole - covered;
    let mut insurance_excess_native = 0;
    group.insurance_fund_native = group.insurance_fund_native.checked_sub(covered).ok_or(MarginError::MathOverflow)?;
    if remaining > 0 {
        // The perp markets among the remaining accounts (banks and oracles may be there too).
        let loaders: Vec<AccountLoader<Market>> = ctx
            .remaining_accounts
            .iter()
            .filter(|i| *i.owner == crate::ID && i.try_borrow_data().map(|d| d.len() >= 8 && d[..8] == *Market::DISCRIMINATOR).unwrap_or(false))
            .map(AccountLoader::<Market>::try_from)
            .collect::<Result<_>>()?;
        let mut seen: Vec<Pubkey> = Vec::new();
        let (mut interest, mut weights) = (Vec::new(), Vec::new());
        for loader in &loaders {
            let market = loader.load()?;
            require!(
                market.group == group_key && market.is_perp() && !seen.contains(&loader.key()),
                MarginError::PerpMarketsMissing
            );
            seen.push(loader.key());
            interest.push(market.open_interest_lots);
            weights.push(market.open_interest_lots as i128 * (market.array_spot_bits as i128 >> 32));
        }
        require!(seen.len() == group.perp_market_count as usize, MarginError::PerpMarketsMissing);
        let (increases, charged) = socialize(remaining, &interest, &weights)?;
        for (loader, increase) in loaders.iter().zip(increases) {
            let mut market = loader.load_mut()?;
            market.loss_per_lot_native = market.loss_per_lot_native.checked_add(increase).ok_or(MarginError::MathOverflow)?;
        }
        // Positions pay at least the remaining loss; the excess is the insurance fund's.
        let excess = charged.checked_sub(remaining).ok_or(MarginError::MathOverflow)?;
        insurance_excess_native = excess;
        group.insurance_fund_native = group.insurance_fund_native.checked_add(excess).ok_or(MarginError::MathOverflow)?;
        msg!("socialised {} over perp open interest ({} charged)", remaining, charged);
    }
    account.balances[index].balance_native = 0;
    account.release_if_zero(index);
    account.being_liquidated = 0;
    crate::events::emit_event(&crate::events::BankruptcyResolved {
        account: ctx.accounts.account.key(),
        debt_native: hole,
        insurance_paid_native: covered,
        socialised_native: remaining,
        insurance_excess_native,
        collateral_taken_banks,
        collateral_taken_native,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::socialize;

    #[test]
    fn socialisation_charges_at_least_the_loss_and_less_than_a_unit_per_lot_more() {
        // Two markets: 1,000 lots at weight 3 and 500 lots at weight 1.
        let (increases, charged) = socialize(1_000_001, &[1_000, 500], &[3, 1]).unwrap();
        // Shares 750,000 and 250,001; per lot (both sides): ceil(750,000 / 2,000) = 375 and
        // ceil(250,001 / 1,000) = 251.
        assert_eq!(increases, vec![375, 251]);
        assert_eq!(charged, 375 * 2_000 + 251 * 1_000);
        assert!(charged >= 1_000_001 && charged - 1_000_001 < 2_000 + 1_000);
    }

    #[test]
    fn markets_without_interest_take_nothing_and_no_interest_at_all_is_an_error() {
        let (increases, charged) = socialize(10, &[0, 7], &[0, 5]).unwrap();
        assert_eq!(increases, vec![0, 1]);
        assert_eq!(charged, 14);
        assert!(socialize(10, &[0], &[0]).is_err());
    }
}

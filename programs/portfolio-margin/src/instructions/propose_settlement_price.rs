//! `propose_settlement_price` (permissionless): fixes an expired option's settlement price from
//! a Pyth `PriceUpdateV2` account, by one rule: **the earliest update published at or after
//! expiry wins**.
//!
//! - The update may be any account owned by the Pyth receiver program with the underlying's
//!   feed id and full verification (not only the underlying's live price account): anyone can
//!   post a historical update from Pyth's archive, so settlement is possible whenever it is
//!   done, not only inside a window.
//! - It must be published at or after expiry and, until the fallback opens
//!   (`expiry + settlement_window + SETTLEMENT_FALLBACK_SECONDS`), within the settlement window.
//!   After that any update at or after expiry qualifies, so an outage of the feed cannot freeze
//!   the market forever.
//! - A proposal becomes final `settlement_challenge_seconds` after the first proposal. Until
//!   then anyone may replace it with a qualifying update published strictly earlier, so the
//!   first caller cannot pick the most favourable print.
//!
//! Until the price is final, expired positions are valued at intrinsic value from the live
//! oracle (see `crate::health::mark_per_lot`).

use crate::error::MarginError;
use crate::health::spot_per_lot;
use crate::oracle::{check_update, decode_update};
use crate::state::{Group, Market, Underlying, SETTLEMENT_FALLBACK_SECONDS};
use anchor_lang::prelude::*;

#[derive(Accounts)]
pub struct ProposeSettlementPrice<'info> {
    pub group: AccountLoader<'info, Group>,
    #[account(mut, has_one = group @ MarginError::WrongGroup, has_one = underlying @ MarginError::WrongUnderlying)]
    pub market: AccountLoader<'info, Market>,
    pub underlying: AccountLoader<'info, Underlying>,
    /// CHECK: any Pyth receiver `PriceUpdateV2` account; owner, feed id, verification, price
    /// and confidence are checked in the handler.
    pub price_update: UncheckedAccount<'info>,
}

pub fn propose_settlement_price(ctx: Context<ProposeSettlementPrice>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let group = ctx.accounts.group.load()?;
    let underlying = ctx.accounts.underlying.load()?;
    let mut market = ctx.accounts.market.load_mut()?;
    require!(market.is_option(), MarginError::NotAnOptionMarket);
    require!(now >= market.expiry_ts, MarginError::OptionNotExpired);
    require!(!market.is_settled(now), MarginError::SettlementAlreadyFinal);
    let update = decode_update(&ctx.accounts.price_update)?;
    let published = update.price_message.publish_time;
    require!(published >= market.expiry_ts, MarginError::SettlementPriceBeforeExpiry);
    let window_end = market.expiry_ts.saturating_add(market.settlement_window_seconds as i64);
    let fallback_open = now > window_end.saturating_add(SETTLEMENT_FALLBACK_SECONDS);
    require!(published <= window_end || fallback_open, MarginError::SettlementWindowPassed);
    if market.settlement_proposed_ts != 0 {
        require!(published < market.settlement_publish_ts, MarginError::SettlementNotEarlier);
    }
    // Every other check of a live read, with the age measured at publication.
    let reading = check_update(&update, &underlying.feed_id, underlying.max_price_age_seconds, underlying.max_confidence_ppm, published)?;
    let spot = spot_per_lot(&reading, &group, &underlying)?;
    market.settlement_price_native = risk_engine::wide::q32_to_int(spot, risk_engine::wide::Rounding::Down);
    market.settlement_publish_ts = published;
    if market.settlement_proposed_ts == 0 {
        market.settlement_proposed_ts = now;
    }
    crate::events::emit_event(&crate::events::SettlementPriceProposed {
        market: ctx.accounts.market.key(),
        settlement_price_native: market.settlement_price_native,
        publish_ts: published,
        final_ts: market.settlement_proposed_ts.saturating_add(market.settlement_challenge_seconds as i64),
    });
    Ok(())
}

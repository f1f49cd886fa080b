//! Action-sequence fuzzing (see `pm_client::fuzz` and docs/security.md): random sequences of
//! the real instructions on the embedded bank, every invariant checked after every step. Fixed
//! seeds in CI, split over two tests so both cores work; `PM_FUZZ_SEQUENCES` (per test),
//! `PM_FUZZ_SEED` and `PM_FUZZ_STEPS` run more, as does `pm fuzz`. Sequences that once broke an
//! invariant are replayed below as regressions.

use pm_client::fuzz::{run, run_sequence, Action, FuzzConfig, FuzzReport, World};
use std::io::Write;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the configured number of sequences from `seed` and prints what ran (to the process's
/// stderr, which the test harness does not capture, so CI logs show it).
async fn fuzz(seed_offset: u64) {
    let config = FuzzConfig {
        sequences: env_or("PM_FUZZ_SEQUENCES", 1_000) as u32,
        seed: env_or("PM_FUZZ_SEED", 20_261_202) + seed_offset,
        steps_per_sequence: env_or("PM_FUZZ_STEPS", 40) as u32,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let report = run(&config).await.expect("harness");
    let _ = writeln!(std::io::stderr(), "fuzz: seed {} in {:.0?}: {report}", config.seed, started.elapsed());
    assert!(report.failure.is_none(), "{report}");
    assert_eq!(report.sequences, config.sequences);
    // The sequences must reach the instructions they are meant to exercise.
    for kind in ["trade", "venue_fill", "withdraw", "deposit", "liquidate_position", "refresh_risk_array", "set_delegate"] {
        assert!(report.outcomes.get(kind).is_some_and(|(ok, _)| *ok > 0), "no successful {kind}: {report}");
    }
}

#[tokio::test]
async fn random_action_sequences_keep_every_invariant() {
    fuzz(0).await;
}

#[tokio::test]
async fn random_action_sequences_keep_every_invariant_second_seed() {
    fuzz(1_000_003).await;
}

/// Replays a kept sequence; it must keep every invariant.
async fn replay(actions: Vec<Action>) {
    let config = FuzzConfig::default();
    let mut report = FuzzReport::default();
    let mut world = World::new(config.traders).await.expect("set-up");
    let (_, violation) = run_sequence(&mut world, &config, &actions, None, &mut report).await.expect("harness");
    assert!(violation.is_none(), "{violation:?}");
}

/// Found by the fuzzer: a short call written against SOL collateral, the writer's quote
/// withdrawn, SOL up 36%. The account is insolvent with a hedged book (short calls against
/// linked SOL): after the first step no single step (the calls alone, or the SOL alone) raised
/// its liquidation-end health, so it stayed liquidatable forever. Insolvent accounts are now
/// closed whole (`liquidation::is_insolvent`) and reach bankruptcy.
#[tokio::test]
async fn an_insolvent_hedged_book_is_closed_and_resolved() {
    use pm_client::fuzz::Action::*;
    use pm_client::fuzz::{By, Mkt::*, Token::*};
    replay(vec![
        MovePrice { price_cents: 15153, ema_cents: 15153, refresh: true },
        Trade { market: Short, buyer: 3, seller: 4, lots: 66508, price_per_lot_native: 1692, buyer_by: By::Owner, seller_by: By::Owner },
        Withdraw { slot: 4, token: Usdc, amount_native: 1083230369 },
        MovePrice { price_cents: 20628, ema_cents: 20628, refresh: false },
    ])
    .await;
}

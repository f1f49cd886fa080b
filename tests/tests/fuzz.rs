//! Action-sequence fuzzing (see `pm_client::fuzz`): random sequences of the real instructions
//! on the embedded bank, every invariant checked after every step. Fixed seeds in CI;
//! `PM_FUZZ_SEQUENCES`, `PM_FUZZ_SEED` and `PM_FUZZ_STEPS` run more (or `pm fuzz`).
//! Sequences that once broke an invariant are replayed below as regressions.

use pm_client::fuzz::{run, run_sequence, Action, FuzzConfig, FuzzReport, World};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_action_sequences_keep_every_invariant() {
    let config = FuzzConfig {
        sequences: env_or("PM_FUZZ_SEQUENCES", 40) as u32,
        seed: env_or("PM_FUZZ_SEED", 20_261_202),
        steps_per_sequence: env_or("PM_FUZZ_STEPS", 40) as u32,
        ..Default::default()
    };
    let report = run(&config).await.expect("harness");
    println!("fuzz: seed {}: {report}", config.seed);
    assert!(report.failure.is_none(), "{report}");
    assert_eq!(report.sequences, config.sequences);
    // The sequences must reach the instructions they are meant to exercise.
    for kind in ["trade", "venue_fill", "withdraw", "liquidate_position", "settle_pnl", "refresh_risk_array"] {
        assert!(report.outcomes.get(kind).is_some_and(|(ok, _)| *ok > 0), "no successful {kind}: {report}");
    }
}

/// Replays a kept sequence; it must keep every invariant.
#[allow(dead_code)]
async fn replay(actions: Vec<Action>) {
    let config = FuzzConfig::default();
    let mut report = FuzzReport::default();
    let mut world = World::new(config.traders).await.expect("set-up");
    let (_, violation) = run_sequence(&mut world, &config, &actions, None, &mut report).await.expect("harness");
    assert!(violation.is_none(), "{violation:?}");
}

//! The `pm` command line: option pricing, margin reports, input errors and the strategy table.

use std::path::PathBuf;
use std::process::Command;

fn pm(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pm")).args(args).output().expect("run pm");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into(), String::from_utf8_lossy(&output.stderr).into())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn write_portfolio(name: &str, json: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn price_option_prints_value_and_delta_as_json() {
    let (ok, out, _) = pm(&["price-option", "--spot", "100", "--strike", "100", "--vol", "0.5", "--days", "365", "--kind", "call", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // ATM call, one year, 50% vol: 100 (2N(0.25) - 1) = 19.741265.
    assert!((v["price"].as_f64().unwrap() - 19.741265).abs() < 1e-4, "{out}");
    assert!((v["delta"].as_f64().unwrap() - 0.598706).abs() < 1e-5, "{out}");
}

#[test]
fn price_option_rejects_bad_input_with_a_clear_error() {
    for (args, message) in [
        (vec!["--spot", "-1", "--strike", "100", "--vol", "0.5", "--days", "30", "--kind", "call"], "--spot must be > 0"),
        (vec!["--spot", "100", "--strike", "100", "--vol", "-0.5", "--days", "30", "--kind", "put"], "--vol must be >= 0"),
        (vec!["--spot", "100", "--strike", "100", "--vol", "0.5", "--days", "30", "--kind", "straddle"], "--kind must be call or put"),
    ] {
        let mut full = vec!["price-option"];
        full.extend(args);
        let (ok, _, err) = pm(&full);
        assert!(!ok);
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn margin_json_has_the_documented_keys() {
    let path = write_portfolio(
        "book.json",
        r#"{"underlyings":[{"symbol":"SOL","price":150.0}],
            "positions":[{"underlying":"SOL","kind":"perp","qty":-10.0},
                         {"underlying":"SOL","kind":"call","strike":160.0,"days_to_expiry":30.0,"vol":0.6,"qty":-5.0}]}"#,
    );
    let (ok, out, err) = pm(&["margin", "--input", path.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["maintenance", "initial", "standard_maintenance"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {out}");
    }
    let sol = &v["per_underlying"][0];
    assert_eq!(sol["symbol"], "SOL");
    for key in ["maintenance", "scenario_loss", "min_delta", "contingency"] {
        assert!(sol[key].is_number(), "{key}");
    }
    assert!(sol["worst_scenario"]["price_move"].is_number());
    assert!(sol["worst_scenario"]["vol_shock"].is_string());
    // Short perp and short call both lose on the way up: the worst scenario is a rise.
    assert!(sol["worst_scenario"]["price_move"].as_f64().unwrap() > 0.0);
    assert!(v["initial"].as_f64().unwrap() >= v["maintenance"].as_f64().unwrap());
    // The human-readable form works too.
    let (ok, out, _) = pm(&["margin", "--input", path.to_str().unwrap()]);
    assert!(ok && out.contains("portfolio / standard"));
}

#[test]
fn margin_rejects_bad_portfolios_naming_the_field() {
    let cases = [
        (r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"positions":[],"leverage":3}"#, "unknown field `leverage`"),
        (r#"{"underlyings":[{"symbol":"SOL","price":-1.0}]}"#, "underlyings[0].price must be > 0"),
        (
            r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"positions":[{"underlying":"ETH","kind":"perp","qty":1.0}]}"#,
            "positions[0].underlying 'ETH' is not in underlyings",
        ),
        (
            r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"positions":[{"underlying":"SOL","kind":"call","strike":160.0,"days_to_expiry":30.0,"vol":-0.6,"qty":1.0}]}"#,
            "positions[0].vol must be >= 0",
        ),
        (
            r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"positions":[{"underlying":"SOL","kind":"call","strike":160.0,"vol":0.6,"qty":1.0}]}"#,
            "positions[0].days_to_expiry is required",
        ),
        (
            r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"positions":[{"underlying":"SOL","kind":"perp","qty":1.0,"typo":1}]}"#,
            "unknown field `typo`",
        ),
        (r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"params":{"price_steps":8}}"#, "params are invalid"),
        (
            r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"positions":[{"underlying":"SOL","kind":"perp","qty":0.0001}]}"#,
            "positions[0].qty = 0.0001 is not a whole number of lots",
        ),
    ];
    for (i, (json, message)) in cases.iter().enumerate() {
        let path = write_portfolio(&format!("bad{i}.json"), json);
        let (ok, _, err) = pm(&["margin", "--input", path.to_str().unwrap()]);
        assert!(!ok, "case {i} should fail");
        assert!(err.contains(message), "case {i}: expected '{message}' in '{err}'");
    }
}

#[test]
fn params_override_the_grid() {
    let base = r#"{"underlyings":[{"symbol":"SOL","price":100.0}],"positions":[{"underlying":"SOL","kind":"perp","qty":10.0}]"#;
    let default = write_portfolio("p_default.json", &format!("{base}}}"));
    let wider = write_portfolio("p_wider.json", &format!(r#"{base},"params":{{"price_range":0.2}}}}"#));
    let get = |p: &PathBuf| {
        let (ok, out, err) = pm(&["margin", "--input", p.to_str().unwrap(), "--json"]);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["maintenance"].as_f64().unwrap()
    };
    // A naked perp is charged the full range: 10 x 100 x 16% (or 20%).
    assert!((get(&default) - 160.0).abs() < 1e-3);
    assert!((get(&wider) - 200.0).abs() < 1e-3);
}

#[test]
fn strategy_table_in_the_docs_is_current_and_hedges_pay() {
    let root = repo_root();
    let (ok, table, err) = pm(&["strategy-table", "--dir", root.join("strategies").to_str().unwrap()]);
    assert!(ok, "{err}");
    let committed = std::fs::read_to_string(root.join("docs/strategy-table.md")).unwrap();
    assert_eq!(table, committed, "docs/strategy-table.md is stale: regenerate it with the command at its top");
    let ratio = |name: &str| -> f64 {
        let row = table.lines().find(|l| l.starts_with(&format!("| {name} |"))).unwrap();
        row.trim_end_matches('|').rsplit('|').next().unwrap().trim().parse().unwrap()
    };
    for hedged in ["collar", "vertical_spread", "iron_condor"] {
        assert!(ratio(hedged) < 0.5, "{hedged} needs {} of standard margin", ratio(hedged));
    }
    assert_eq!(ratio("naked_short_call"), 1.0);
}

#[test]
fn bootstrap_rehearses_the_migration_config_on_an_embedded_bank() {
    let config = repo_root().join("migrations/localnet.json");
    let (ok, out, err) = pm(&["bootstrap", "--config", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["banks"].as_array().unwrap().len(), 2);
    assert_eq!(report["underlyings"][0]["symbol"], "SOL");
    assert_eq!(report["perps"][0]["symbol"], "SOL-PERP");
    assert!(report["group"].as_str().unwrap().parse::<anchor_lang::prelude::Pubkey>().is_ok());
}

#[test]
fn bootstrap_against_a_cluster_needs_every_mint_and_oracle() {
    let config = repo_root().join("migrations/localnet.json");
    // The file leaves mints and oracles to the embedded rehearsal: a cluster run refuses it
    // before sending anything.
    let bytes = solana_keypair::Keypair::new().to_bytes().to_vec();
    let keypair = write_portfolio("id.json", &serde_json::to_string(&bytes).unwrap());
    let (ok, _, err) = pm(&["bootstrap", "--config", config.to_str().unwrap(), "--url", "http://127.0.0.1:1", "--keypair", keypair.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("banks[0].mint is required on a cluster"), "{err}");
}

/// The backtest of the strategy book under the default dynamics: every book's maintenance
/// covers its simulated 99% one-day loss, the run is reproducible from its seed, and a grid
/// too narrow for the dynamics is caught (the test can fail).
#[test]
fn backtest_shows_the_strategy_book_covers_its_99_percent_loss() {
    let root = repo_root();
    let dir = root.join("strategies");
    let run = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["backtest", "--dir", dir.to_str().unwrap(), "--paths", "20000", "--json"];
        args.extend_from_slice(extra);
        let (ok, out, err) = pm(&args);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let report = run(&[]);
    let books = report["books"].as_array().unwrap();
    assert_eq!(books.len(), std::fs::read_dir(&dir).unwrap().count());
    for book in books {
        assert!(book["covers_99"].as_bool().unwrap(), "{book}");
        assert!(book["loss_99"].as_f64().unwrap() > 0.0, "{book}");
    }
    assert!(report["books_not_covering_99"].as_array().unwrap().is_empty());
    assert_eq!(run(&[]), report, "same seed, same paths");
    assert_ne!(run(&["--seed", "8"])["books"], report["books"]);

    // A naked perp margined on a 1% grid with no tail cannot cover an 80%-vol day.
    let narrow = write_portfolio(
        "narrow.json",
        r#"{"underlyings":[{"symbol":"SOL","price":150.0}],"positions":[{"underlying":"SOL","kind":"perp","qty":-10.0}],"params":{"price_range":0.01,"extended_moves":[]}}"#,
    );
    let (ok, out, err) = pm(&["backtest", "--input", narrow.to_str().unwrap(), "--paths", "5000", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["books_not_covering_99"], serde_json::json!(["narrow"]));
    assert!(v["books"][0]["exceedance_rate"].as_f64().unwrap() > 0.3, "{out}");

    // Bad dynamics get their own error.
    let bad = write_portfolio("bad-dynamics.json", r#"{"price_vol":-0.1}"#);
    let (ok, _, err) = pm(&["backtest", "--input", narrow.to_str().unwrap(), "--dynamics", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("dynamics.price_vol must be a finite number >= 0"), "{err}");
}

/// The books the demo opens on-chain (its trader, every crash archetype, the dealer) cover their
/// simulated 99% one-day loss under the default dynamics, and the flag cannot be mixed with files.
#[test]
fn backtest_shows_the_demo_books_cover_their_99_percent_loss() {
    let (ok, out, err) = pm(&["backtest", "--demo-books", "--paths", "20000", "--json"]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let books = report["books"].as_array().unwrap();
    let names: Vec<&str> = books.iter().map(|b| b["book"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.contains(&"demo_trader_collar_with_perp") && names.contains(&"crash_dealer_after_60_books"), "{names:?}");
    for book in books {
        assert!(book["covers_99"].as_bool().unwrap(), "{book}");
        let loss_99 = book["loss_99"].as_f64().unwrap();
        if book["book"] == "crash_sol_against_short_perp_size_2" {
            // SOL held against the same amount sold forward: no loss on any path.
            assert!(loss_99.abs() < 1e-6, "{book}");
        } else {
            assert!(loss_99 > 0.0, "{book}");
        }
    }
    let (ok, _, err) = pm(&["backtest", "--demo-books", "--input", "strategies/collar.json"]);
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

/// The concentration add-on per underlying, in its own lots: the same book pays the add-on on
/// the underlying given a liquidity and not on the other, initial grows faster than size, and
/// a negative liquidity is refused by name.
#[test]
fn margin_applies_each_underlyings_own_liquidity() {
    let book = |qty: f64| {
        format!(
            r#"{{"underlyings":[{{"symbol":"SOL","price":150.0,"liquidity_lots":100000}},{{"symbol":"BTC","price":60000.0,"lot_size":0.0001}}],
               "positions":[{{"underlying":"SOL","kind":"perp","qty":{qty}}},{{"underlying":"BTC","kind":"perp","qty":0.01}}]}}"#
        )
    };
    let run = |json: &str, name: &str| -> serde_json::Value {
        let path = write_portfolio(name, json);
        let (ok, out, err) = pm(&["margin", "--input", path.to_str().unwrap(), "--json"]);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let small = run(&book(-10.0), "liquidity-small.json");
    let large = run(&book(-40.0), "liquidity-large.json");
    let add_on = |v: &serde_json::Value, i: usize| v["per_underlying"][i]["concentration"].as_f64().unwrap();
    assert!(add_on(&small, 0) > 0.0 && add_on(&small, 1) == 0.0, "{small}");
    let ratio = add_on(&large, 0) / add_on(&small, 0);
    assert!((ratio - 8.0).abs() < 1e-3, "x4 the size, x8 the add-on: {ratio}");
    let bad = write_portfolio("liquidity-bad.json", r#"{"underlyings":[{"symbol":"SOL","price":150.0,"liquidity_lots":-1}],"positions":[]}"#);
    let (ok, _, err) = pm(&["margin", "--input", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("underlyings[0]: params are invalid"), "{err}");
}


/// `pm margin` reports a correlation group's credit (the number the program credits) and
/// refuses a malformed group with a message naming the field.
#[test]
fn margin_reports_correlation_credit_and_refuses_bad_groups() {
    let pair = |groups: &str| {
        format!(
            r#"{{"underlyings":[{{"symbol":"SOL","price":150.0}},{{"symbol":"BTC","price":100000.0}}],"positions":[{{"underlying":"SOL","kind":"perp","qty":10.0}},{{"underlying":"BTC","kind":"perp","qty":-0.015}}],"correlation_groups":{groups}}}"#
        )
    };
    let run = |name: &str, groups: &str| {
        let file = write_portfolio(name, &pair(groups));
        pm(&["margin", "--input", file.to_str().unwrap(), "--json"])
    };
    let (ok, out, err) = run("grouped.json", r#"[{"underlyings":["SOL","BTC"],"correlation":0.5}]"#);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Each leg 16% x $1,500 = $240; at 0.5 the box binds: 1.75 x 240 = 420 (windows take
    // whole node intervals).
    let maintenance = v["maintenance"].as_f64().unwrap();
    assert!((420.0..420.01).contains(&maintenance), "{maintenance}");
    let credit = v["correlation_groups"][0]["maintenance_credit"].as_f64().unwrap();
    assert!((credit - (480.0 - maintenance)).abs() < 1e-6 && v["correlation_credit"].as_f64() == Some(credit));
    assert!((v["standard_maintenance"].as_f64().unwrap() - 480.0).abs() < 1e-3);

    for (groups, message) in [
        (r#"[{"underlyings":["SOL","ETH"],"correlation":0.5}]"#, "correlation_groups[0]: 'ETH' is not in underlyings"),
        (r#"[{"underlyings":["SOL","BTC"],"correlation":0.995}]"#, "correlation_groups[0].correlation must be within 0..=0.99"),
        (r#"[{"underlyings":["SOL","BTC"],"correlation":-0.1}]"#, "correlation_groups[0].correlation must be within"),
        (
            r#"[{"underlyings":["SOL"],"correlation":0.5},{"underlyings":["SOL","BTC"],"correlation":0.5}]"#,
            "correlation_groups[1]: 'SOL' is already in a correlation group",
        ),
    ] {
        let (ok, _, err) = run("bad.json", groups);
        assert!(!ok && err.contains(message), "{groups}: {err}");
    }
}

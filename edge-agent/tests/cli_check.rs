//! `edge-agent check`, `--help`, `--version` and argument errors, run as a user would.

mod serve_support;

use serve_support::{BROKEN_ZONE, TempDir, config_text, example_zone, run_agent};

#[test]
fn check_accepts_a_good_config_and_reports_each_zone() {
    let dir = TempDir::new("check-good");
    dir.write("zones/example.test.zone", &example_zone(2024010101));
    let config = dir.write(
        "agent.toml",
        &config_text(
            "workers = 2",
            &[("example.test.", "zones/example.test.zone")],
        ),
    );
    let (status, stdout, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("zone example.test.: serial 2024010101, 4 records"),
        "{stdout}"
    );
}

#[test]
fn check_names_an_unknown_key_and_exits_2() {
    let dir = TempDir::new("check-unknown-key");
    let text = "[server]\nlisten = [\"127.0.0.1:5300\"]\nwokers = 2\n";
    let config = dir.write("agent.toml", text);
    let (status, _, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("agent.toml:3:1: [server] unknown field `wokers`"),
        "{stderr}"
    );
}

#[test]
fn check_names_an_unknown_zone_key() {
    let dir = TempDir::new("check-unknown-zone-key");
    let text = config_text("", &[("example.test.", "x.zone")]) + "colour = \"blue\"\n";
    let config = dir.write("agent.toml", &text);
    let (status, _, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[[zone]] unknown field `colour`"),
        "{stderr}"
    );
}

#[test]
fn check_reports_bad_values_with_their_lines() {
    let dir = TempDir::new("check-bad-values");
    let text =
        "[server]\nlisten = [\"localhost\"]\nworkers = 0\n[[zone]]\nname = \"example.test.\"\n";
    let config = dir.write("agent.toml", text);
    let (status, _, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("agent.toml:2:11: [server] listen: \"localhost\" is not an address"),
        "{stderr}"
    );
    assert!(
        stderr.contains("agent.toml:3:11: [server] workers: 0 is out of range"),
        "{stderr}"
    );
    assert!(
        stderr.contains("agent.toml:5:8: [[zone]] example.test.: missing `file`"),
        "{stderr}"
    );
}

#[test]
fn check_reports_a_bad_zone_with_file_and_line_and_exits_2() {
    let dir = TempDir::new("check-bad-zone");
    dir.write("good.zone", &example_zone(1));
    dir.write(
        "broken.zone",
        &BROKEN_ZONE.replace("example.test.", "broken.test."),
    );
    let zones = [
        ("example.test.", "good.zone"),
        ("broken.test.", "broken.zone"),
    ];
    let config = dir.write("agent.toml", &config_text("", &zones));
    let (status, stdout, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(
        status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("zone broken.test."), "{stderr}");
    assert!(
        stderr.contains("broken.zone:4:"),
        "the problem names file:line: {stderr}"
    );
    assert!(
        stdout.contains("zone example.test.: serial 1"),
        "good zones are still reported: {stdout}"
    );
}

#[test]
fn check_reports_a_missing_config_file() {
    let dir = TempDir::new("check-missing");
    let path = dir.path("nowhere.toml");
    let (status, _, stderr) = run_agent(&["check", "--config", path.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nowhere.toml: cannot read"), "{stderr}");
}

#[test]
fn help_and_version_exit_0() {
    let (status, stdout, _) = run_agent(&["--help"]);
    assert_eq!(status.code(), Some(0));
    assert!(
        stdout.contains("edge-agent check --config FILE"),
        "{stdout}"
    );
    let (status, stdout, _) = run_agent(&["--version"]);
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        stdout.trim(),
        format!("edge-agent {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let (status, _, stderr) = run_agent(&["--frobnicate"]);
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("unexpected argument \"--frobnicate\"") && stderr.contains("Usage:"),
        "{stderr}"
    );
    let (status, _, stderr) = run_agent(&[]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("--config FILE is required"), "{stderr}");
}

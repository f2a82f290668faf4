//! `edge-agent check`, `--help`, `--version` and argument errors, run as a user would;
//! and how the server treats secondary zones while transfers are not built in.

mod serve_support;

use serve_support::{
    Agent, BROKEN_ZONE, PATIENCE, TempDir, config_text, example_zone, parse_response, qtype, query,
    run_agent, udp_exchange,
};

/// A 33-byte TSIG secret, base64.
const SECRET: &str = "ZWRnZWRucy10ZXN0LWtleS0wMTIzNDU2Nzg5YWJjZGVm";

/// A config with a store, the key `xfr-key.` read from `keys/xfr.key`, the
/// primary zone `example.test.` (from `example.test.zone`) that allows
/// transfers and sends NOTIFY, and the secondary zone `ministry.test.`.
fn secondary_config(dir: &TempDir) -> std::path::PathBuf {
    dir.write("keys/xfr.key", &format!("{SECRET}\n"));
    dir.write("example.test.zone", &example_zone(7));
    let text = config_text("", &[("example.test.", "example.test.zone")])
        + r#"allow_transfer = [ { address = "127.0.0.0/8", tsig = "xfr-key." } ]
notify = [ "127.0.0.1:5401" ]

[store]
path = "db"

[[tsig]]
name = "xfr-key."
algorithm = "hmac-sha256"
secret_file = "keys/xfr.key"

[[zone]]
name = "ministry.test."
masters = [ { address = "127.0.0.1:5400", tsig = "xfr-key." },
            { address = "127.0.0.2:5400", tsig = "xfr-key." } ]
notify_from = []
allow_transfer = [ { address = "127.0.0.0/8", tsig = "xfr-key." } ]
notify = [ "127.0.0.1:5401" ]
"#;
    dir.write("agent.toml", &text)
}

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

#[test]
fn check_accepts_a_secondary_zone_and_says_it_checked_only_its_configuration() {
    let dir = TempDir::new("check-secondary");
    let config = secondary_config(&dir);
    let (status, stdout, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(
        status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(
            "zone ministry.test.: secondary of 127.0.0.1:5400, 127.0.0.2:5400; configuration checked (its data comes by transfer)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("zone example.test.: serial 7"), "{stdout}");
    assert!(!dir.path("db").exists(), "check does not create the store");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}

#[test]
fn check_refuses_hmac_sha1_with_its_reason() {
    let dir = TempDir::new("check-sha1");
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:5300\"]\n[[tsig]]\nname = \"old.\"\nalgorithm = \"hmac-sha1\"\nsecret = \"{SECRET}\"\n"
    );
    let config = dir.write("agent.toml", &text);
    let (status, _, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("agent.toml:5:13: [[tsig]] old.: algorithm hmac-sha1 is refused: RFC 8945"),
        "{stderr}"
    );
}

#[test]
fn check_names_an_unknown_tsig_reference_and_a_missing_store() {
    let dir = TempDir::new("check-unknown-key");
    let text = "[server]\nlisten = [\"127.0.0.1:5300\"]\n[[zone]]\nname = \"ministry.test.\"\nmasters = [ { address = \"127.0.0.1:5400\", tsig = \"nokey.\" } ]\n";
    let config = dir.write("agent.toml", text);
    let (status, _, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("agent.toml:5:11: [[zone]] masters: secondary zones need a [store] table"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "agent.toml:5:50: [[zone]] ministry.test.: masters: tsig key \"nokey.\" is not defined by any [[tsig]] table"
        ),
        "{stderr}"
    );
}

#[test]
fn check_names_an_unreadable_secret_file() {
    let dir = TempDir::new("check-secret-file");
    let text = "[server]\nlisten = [\"127.0.0.1:5300\"]\n[[tsig]]\nname = \"k.\"\nalgorithm = \"hmac-sha256\"\nsecret_file = \"keys/k.key\"\n";
    let config = dir.write("agent.toml", text);
    let (status, _, stderr) =
        run_agent(&["check", "--config", config.to_str().expect("utf-8 path")]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let wanted = format!(
        "agent.toml:6:15: [[tsig]] k.: secret_file {}: cannot read:",
        dir.path("keys/k.key").display()
    );
    assert!(stderr.contains(&wanted), "{stderr}");
}

#[test]
fn a_secondary_zone_without_a_reachable_master_answers_servfail() {
    let dir = TempDir::new("serve-secondary");
    let config = secondary_config(&dir);
    let agent = Agent::start(&config);
    let answer = udp_exchange(
        agent.address(),
        &query(1, "ministry.test.", qtype::SOA),
        PATIENCE,
    )
    .expect("answer");
    assert_eq!(
        parse_response(&answer).rcode,
        2,
        "SERVFAIL: the zone was never transferred"
    );
    let answer = udp_exchange(
        agent.address(),
        &query(2, "example.test.", qtype::SOA),
        PATIENCE,
    )
    .expect("answer");
    assert_eq!(
        parse_response(&answer).rcode,
        0,
        "the primary zone is served"
    );
}

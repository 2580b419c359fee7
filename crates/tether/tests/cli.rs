//! The built binary: help everywhere, `check` verdicts and exit codes.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::{Command, Output};

fn tether(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .output()
        .expect("the tether binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check", "--help"],
        &["status", "--help"],
        &["backend", "--help"],
        &["backend", "drain", "--help"],
        &["backend", "enable", "--help"],
        &["backend", "disable", "--help"],
        &["demo", "--help"],
        &["lab", "--help"],
        &["lab", "stream-server", "--help"],
        &["lab", "stream-client", "--help"],
        &["lab", "http-server", "--help"],
        &["lab", "udp-echo", "--help"],
        &["lab", "udp-client", "--help"],
        &["lab", "udp-gen", "--help"],
        &["lab", "udp-sink", "--help"],
        &["lab", "udp-flows", "--help"],
        &["lab", "tcp-hold", "--help"],
        &["lab", "tcp-connect", "--help"],
        &["lab", "bench", "--help"],
    ] {
        let out = tether(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage: tether"), "{args:?}");
    }
}

#[test]
fn top_level_help_lists_the_commands_but_hides_the_lab() {
    let help = stdout(&tether(&["--help"]));
    for command in ["run", "check", "status", "backend", "demo"] {
        assert!(
            help.contains(&format!("  {command} ")),
            "{command} missing in\n{help}"
        );
    }
    assert!(!help.contains("  lab "), "{help}");
    assert!(stdout(&tether(&["run", "--help"])).contains("--config <FILE>"));
    assert!(stdout(&tether(&["status", "--help"])).contains("--json"));
    assert!(stdout(&tether(&["backend", "drain", "--help"])).contains("<SERVICE> <BACKEND>"));
}

#[test]
fn check_accepts_the_examples() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    for (file, roles) in [
        ("nat", "manager + agent"),
        ("dsr", "manager + agent"),
        ("ipv6", "manager + agent"),
        ("udp", "manager + agent"),
        ("failover-primary", "manager"),
        ("failover-backup", "manager"),
    ] {
        let out = tether(&["check", "-c", &format!("{dir}/{file}.toml")]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            format!("config OK: 1 service, roles {roles}\n")
        );
    }
}

#[test]
fn check_of_a_bad_file_exits_non_zero_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("tether-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[node]\nname = \"x\"\n[auth]\nrequire = false\n[manager]\nlisten = \"127.0.0.1:7401\"\n\
         announce = [\"127.0.0.1:7400\"]\n[[service]]\nname = \"web\"\nvip = \"10.0.0.1\"\n\
         port = 80\n[[service.backend]]\nname = \"b\"\naddress = \"10.0.0.300\"\n",
    )
    .unwrap();
    let out = tether(&["check", "-c", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bad.toml:14:11: service[0].backend[0].address: \"10.0.0.300\" is not valid"),
        "{err}"
    );
    assert!(err.contains("1 error"), "{err}");
}

#[test]
fn check_of_a_missing_file_says_so() {
    let out = tether(&["check", "-c", "/nonexistent/tether.toml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot read the file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn status_without_a_running_node_explains_what_to_check() {
    let out = tether(&["status", "--admin", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is `tether run` up"),
        "{}",
        stderr(&out)
    );
}

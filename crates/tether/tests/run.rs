//! `tether run` with the manager role on loopback (no root needed): it serves the admin API,
//! answers `tether status` and `tether backend`, and exits 0 on SIGTERM.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::{Command, Stdio};
use std::time::Duration;

mod ports;

use ports::{free_tcp_port, free_udp_port};

fn tether(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_manager_runs_answers_status_and_stops_cleanly_on_sigterm() {
    let admin = format!("127.0.0.1:{}", free_tcp_port());
    let dir = std::env::temp_dir().join(format!("tether-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("manager.toml");
    std::fs::write(
        &file,
        format!(
            "[node]\nname = \"m1\"\n[admin]\nlisten = \"{admin}\"\n\
             [auth]\nkey = [{{ id = 1, secret = \"00112233445566778899aabbccddeeff\" }}]\n\
             [manager]\nlisten = \"127.0.0.1:{}\"\nannounce = [\"127.0.0.1:{}\"]\n\
             [[service]]\nname = \"web\"\nvip = \"10.9.0.1\"\nport = 80\n\
             [[service.backend]]\nname = \"b1\"\naddress = \"127.0.0.1\"\nport = 8080\n",
            free_udp_port(),
            free_udp_port()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["run", "-c", file.to_str().unwrap(), "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(50));
        let out = tether(&["status", "--admin", &admin]);
        if out.status.success() {
            status = Some(String::from_utf8(out.stdout).unwrap());
            break;
        }
    }
    let drained = tether(&["backend", "drain", "web", "b1", "--admin", &admin]);
    let json = tether(&["status", "--json", "--admin", &admin]);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exit = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let status = status.expect("tether status answered within 5 s");
    assert!(status.contains("roles: manager"), "{status}");
    assert!(status.contains("web      b1"), "{status}");
    assert!(drained.status.success());
    assert_eq!(
        String::from_utf8_lossy(&drained.stdout),
        "web/b1: draining\n"
    );
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        json["manager"]["services"][0]["backends"][0]["admin"],
        "draining"
    );
    assert!(killed.success());
    assert_eq!(
        exit.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&exit.stderr)
    );
}

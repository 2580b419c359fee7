//! Two manager-only `tether run` processes on loopback (no root, no agent) that name each other
//! as peers: the precedence-0 one is active, the other standby; after a `kill -9` of the active
//! one the other takes over, as `tether status --json` and `/metrics` show.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![expect(
    clippy::disallowed_types,
    reason = "test code: deadlines of a test of real processes need the wall clock"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod ports;

use ports::{free_tcp_port, free_udp_port};

/// A running `tether run`, killed on drop so a failed test leaves no process behind.
struct Node {
    name: &'static str,
    admin: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(dir: &Path, name: &'static str, config: &str, admin: String) -> Self {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["run", "-c", file.to_str().unwrap(), "--log-level", "info"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self {
            name,
            admin,
            log,
            child: Some(child),
        }
    }

    /// The status document, if the admin API answers.
    fn status(&self) -> Option<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["status", "--json", "--admin", &self.admin])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    fn metrics(&self) -> String {
        tether::client::request(&self.admin, "GET", "/metrics")
            .unwrap()
            .body
    }

    /// Polls the status until `ready` holds or `limit` passes; the last status seen and the
    /// time it took.
    fn wait_for(&self, limit: Duration, ready: impl Fn(&Value) -> bool) -> (Value, Duration) {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < limit {
            if let Some(status) = self.status() {
                if ready(&status) {
                    return (status, start.elapsed());
                }
                last = status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{}: not reached within {limit:?}; last status:\n{last:#}\nlog:\n{}",
            self.name,
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill_hard(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        child.wait().unwrap().code()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(name: &str, admin: &str, listen: u16, peer: u16, announce: u16, backup: u16) -> String {
    format!(
        "[node]\nname = \"{name}\"\n[admin]\nlisten = \"{admin}\"\n\
         [auth]\nkey = [{{ id = 1, secret = \"00112233445566778899aabbccddeeff\" }}]\n\
         [manager]\nlisten = \"127.0.0.1:{listen}\"\nannounce = [\"127.0.0.1:{announce}\"]\n\
         backup_precedence = {backup}\npeers = [\"127.0.0.1:{peer}\"]\n\
         heartbeat_interval = \"100ms\"\nheartbeat_misses = 2\n\
         [[service]]\nname = \"web\"\nvip = \"10.9.0.1\"\nport = 80\n\
         [[service.backend]]\nname = \"b1\"\naddress = \"127.0.0.1\"\nport = 8080\n"
    )
}

fn failover(status: &Value) -> &Value {
    &status["manager"]["failover"]
}

#[test]
fn the_backup_takes_over_when_the_active_manager_is_killed() {
    let dir = std::env::temp_dir().join(format!("tether-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port_a, port_b, announce) = (free_udp_port(), free_udp_port(), free_udp_port());
    let (admin_a, admin_b) = (
        format!("127.0.0.1:{}", free_tcp_port()),
        format!("127.0.0.1:{}", free_tcp_port()),
    );
    let mut a = Node::start(
        &dir,
        "primary",
        &config("primary", &admin_a, port_a, port_b, announce, 0),
        admin_a,
    );
    let mut b = Node::start(
        &dir,
        "backup",
        &config("backup", &admin_b, port_b, port_a, announce, 1),
        admin_b,
    );
    let limit = Duration::from_secs(15);

    let peer_live = |s: &Value| failover(s)["peers"][0]["live"] == true;
    let (status_a, took) = a.wait_for(limit, |s| {
        failover(s)["role"] == "active" && peer_live(s) && failover(s)["peers"][0]["ready"] == true
    });
    println!("primary active with its peer heard after {took:?}");
    let (status_b, took) = b.wait_for(limit, |s| {
        failover(s)["role"] == "standby"
            && peer_live(s)
            && failover(s)["peers"][0]["role"] == "active"
    });
    println!("backup standby, hearing the active primary, after {took:?}");
    let fa = failover(&status_a);
    assert_eq!(fa["takeovers"], 0, "{fa:#}");
    assert_eq!(fa["peers"][0]["address"], format!("127.0.0.1:{port_b}"));
    assert_eq!(fa["peers"][0]["backup_precedence"], 1, "{fa:#}");
    assert_eq!(status_a["manager"]["role"], "primary");
    assert_eq!(status_b["manager"]["role"], "backup");
    assert!(
        b.metrics().lines().any(|l| l == "tether_manager_active 0"),
        "{}",
        b.metrics()
    );

    a.kill_hard();
    let (status_b, took) = b.wait_for(limit, |s| failover(s)["role"] == "active");
    let fb = failover(&status_b);
    println!(
        "backup active {took:?} after the kill -9 of the primary; it reports detection {} ms",
        fb["detection_ms"]
    );
    assert_eq!(fb["takeovers"], 1, "{fb:#}");
    assert!(fb["detection_ms"].as_f64().is_some(), "{fb:#}");
    assert!(fb["detected_ms_ago"].as_f64().is_some(), "{fb:#}");
    assert_eq!(fb["peers"][0]["live"], false, "{fb:#}");
    let metrics = b.metrics();
    for line in [
        "tether_manager_active 1",
        "tether_manager_takeovers_total 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tether_manager_last_detection_seconds ")),
        "{metrics}"
    );
    let text = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["status", "--admin", &b.admin])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("FAILOVER  active, takeovers 1"), "{text}");

    let code = b.terminate();
    assert_eq!(code, Some(0), "{}", b.log_text());
    drop((a, b));
    std::fs::remove_dir_all(&dir).unwrap();
}

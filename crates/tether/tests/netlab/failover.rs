//! The failover testbed: the standard topology with manager hosts `m1`..`mK` beside the Tether
//! node (`tether_lab::topology`), an agent-only `tether run` on `lb` and a manager-only
//! `tether run` on each manager host, checksummed stream servers and nginx on the backends.
//!
//! ```text
//!   client ── lb (agent only, 10.9.201.1:7400) ─┬─ b1..b3: stream-server :9000, nginx :8080
//!                                               ├─ m1 (10.9.201.2:7500, backup precedence 0)
//!                                               ├─ m2 (10.9.202.2:7500, backup precedence 1)
//!                                               └─ m3 (10.9.203.2:7500, backup precedence 2)
//! ```
//! Every host runs its own admin API at 127.0.0.1:9090 inside its namespace. Services: `streams`
//! (VIP:9000 → backends :9000) and `web` (VIP:80 → backends :8080), NAT, weighted round robin
//! (so a manager that scheduled afresh would move flows), no health checks (a remote manager's
//! checks would cross the agent's return wildcards), so every backend counts as healthy.
//! Everything stops and the namespaces go when the [`Cluster`] drops, even on failure.
#![allow(
    clippy::disallowed_types,
    reason = "tests wait for real processes on the wall clock"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tether_lab::netns::{Host, Lab, Process, Transport};
use tether_lab::stream::ServeReport;
use tether_lab::topology::{Topology, TopologySpec, manager4, node_mgmt4};

use crate::netlab::{ADMIN, TETHER, VIP4, backend4};

/// The cluster key every host uses (key id 1).
const KEY: &str = "1 0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff\n";
/// The port of the `streams` service and of the stream servers.
pub const STREAM_PORT: u16 = 9000;
/// The managers' service-message port.
pub const MANAGER_PORT: u16 = 7500;

/// The agent's service-message address: `lb` on its link to `m1`.
pub fn agent_listen() -> String {
    format!("{}:7400", node_mgmt4(1))
}

/// Manager `k`'s service-message address.
pub fn manager_addr(k: usize) -> String {
    format!("{}:{MANAGER_PORT}", manager4(k))
}

/// Failover settings of the managers.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Manager hosts (2 or 3).
    pub managers: usize,
    /// `heartbeat_interval`, e.g. "100ms".
    pub heartbeat_interval: &'static str,
    /// `heartbeat_misses`.
    pub heartbeat_misses: u32,
    /// The services' scheduler: `wrr` (the manager places every flow; a backup scheduling a
    /// flow afresh would pick another backend) or `maglev` (agents place new flows themselves).
    pub scheduler: &'static str,
}

impl Settings {
    /// `managers` managers with the default heartbeat settings (100 ms, 2 misses), `wrr`.
    pub fn managers(managers: usize) -> Self {
        Self {
            managers,
            heartbeat_interval: "100ms",
            heartbeat_misses: 2,
            scheduler: "wrr",
        }
    }
}

/// Hosts and processes of one failover test.
pub struct Cluster {
    pub client: Host,
    pub lb: Host,
    pub backends: Vec<Host>,
    /// `m1` first.
    pub managers: Vec<Host>,
    /// Each manager host's interface towards `lb`, `m1`'s first.
    pub manager_ifaces: Vec<String>,
    /// The client's interface towards `lb`.
    pub client_iface: String,
    dir: PathBuf,
    agent: Option<Process>,
    manager_procs: Vec<Option<Process>>,
    /// What earlier (killed) runs of each manager printed.
    past_logs: Vec<String>,
    stream_servers: Vec<Option<Process>>,
    nginx: Vec<Option<Process>>,
    // Dropped last: kills whatever still runs in the namespaces and deletes them.
    _lab: Lab,
}

impl Cluster {
    /// Builds the lab, starts the backends' servers, the agent and every manager, and waits
    /// until `m1` is active, the others standby, every manager ready and new connections are
    /// served.
    pub fn start(tag: &str, settings: Settings) -> Self {
        let lab = Lab::new(tag).expect("lab");
        let topology = Topology::build(
            &lab,
            TopologySpec {
                backends: 3,
                backend_mtu: None,
                managers: settings.managers,
            },
        )
        .expect("topology");
        let dir = std::env::temp_dir().join(format!("{}-files", lab.prefix()));
        std::fs::create_dir_all(&dir).expect("test directory");
        std::fs::write(dir.join("tether.key"), KEY).expect("key file");
        let mut cluster = Self {
            client: topology.client,
            lb: topology.node,
            backends: topology.backends,
            managers: topology.managers,
            manager_ifaces: topology.manager_interfaces,
            client_iface: topology.client_interface,
            dir,
            agent: None,
            manager_procs: (0..settings.managers).map(|_| None).collect(),
            past_logs: vec![String::new(); settings.managers],
            stream_servers: vec![None, None, None],
            nginx: vec![None, None, None],
            _lab: lab,
        };
        for k in 1..=3 {
            cluster.start_backend(k);
        }
        cluster.write_agent_config(&topology.node_interfaces);
        for k in 1..=settings.managers {
            cluster.write_manager_config(k, settings);
        }
        let agent = cluster
            .lb
            .spawn(&[TETHER, "run", "-c", &cluster.path("agent.toml")])
            .expect("agent starts");
        cluster.agent = Some(agent);
        cluster.wait_for("the agent's admin API", Duration::from_secs(15), |c| {
            c.agent_status().is_some()
        });
        for k in 1..=settings.managers {
            cluster.start_manager(k);
        }
        cluster.wait_for(
            "m1 active and ready, the others standby and ready, wildcards steered",
            Duration::from_secs(20),
            |c| {
                c.roles() == c.expected_roles(1)
                    && (1..=settings.managers).all(|k| c.ready(k))
                    && c.agent_status()
                        .and_then(|s| s.pointer("/agent/steering_rules").and_then(Value::as_u64))
                        .is_some_and(|n| n > 0)
            },
        );
        let flaps: Vec<u64> = (1..=settings.managers)
            .map(|k| {
                cluster
                    .failover(k)
                    .and_then(|f| f.get("takeovers").and_then(Value::as_u64))
                    .unwrap_or(0)
            })
            .collect();
        if flaps.iter().any(|&n| n > 0) {
            println!("note: managers took over while starting (takeovers by manager): {flaps:?}");
        }
        // The agent may still hold a standby's wildcards from before the roles settled; the
        // first connections show the active manager serves.
        cluster.wait_for(
            "a first connection through the VIP",
            Duration::from_secs(10),
            |c| c.try_curl(1).is_ok(),
        );
        cluster
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Where this test's files live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn start_backend(&mut self, k: usize) {
        let host = &self.backends[k - 1];
        let server = host
            .spawn(&[
                TETHER,
                "lab",
                "stream-server",
                "--listen",
                &format!("{}:{STREAM_PORT}", backend4(k)),
                "--name",
                &format!("b{k}"),
                "--report",
                &self.path(&format!("served-b{k}.json")),
            ])
            .expect("stream server starts");
        let nginx_dir = self.dir.join(format!("nginx-b{k}"));
        std::fs::create_dir_all(&nginx_dir).expect("nginx directory");
        let conf = format!(
            "daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
               fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
               server {{ listen {addr}:8080; location / {{ return 200 \"b{k}\\n\"; }} }} }}\n",
            dir = nginx_dir.display(),
            addr = backend4(k)
        );
        std::fs::write(nginx_dir.join("nginx.conf"), conf).expect("nginx.conf");
        let nginx = host
            .spawn(&[
                "nginx",
                "-c",
                &nginx_dir.join("nginx.conf").display().to_string(),
            ])
            .expect("nginx starts");
        for port in [8080, STREAM_PORT] {
            host.wait_listening(Transport::Tcp, port, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("b{k} listens on {port}: {e}"));
        }
        self.stream_servers[k - 1] = Some(server);
        self.nginx[k - 1] = Some(nginx);
    }

    fn common_sections(&self, name: &str) -> String {
        format!(
            "[node]\nname = \"{name}\"\n\n[admin]\nlisten = \"{ADMIN}\"\n\n\
             [auth]\nkey_file = \"{key}\"\n\n",
            key = self.path("tether.key")
        )
    }

    fn write_agent_config(&self, interfaces: &[String]) {
        let ifaces: Vec<String> = interfaces.iter().map(|i| format!("\"{i}\"")).collect();
        let config = format!(
            "{common}[agent]\ninterfaces = [{ifaces}]\nlisten = \"{listen}\"\n",
            common = self.common_sections("lb"),
            ifaces = ifaces.join(", "),
            listen = agent_listen()
        );
        self.write_config("agent.toml", &config, &self.lb);
    }

    fn write_manager_config(&self, k: usize, settings: Settings) {
        let peers: Vec<String> = (1..=settings.managers)
            .filter(|&j| j != k)
            .map(|j| format!("\"{}\"", manager_addr(j)))
            .collect();
        let mut config = format!(
            "{common}[manager]\nlisten = \"{listen}\"\nannounce = [\"{agent}\"]\n\
             backup_precedence = {precedence}\npeers = [{peers}]\n\
             heartbeat_interval = \"{interval}\"\nheartbeat_misses = {misses}\n\
             wildcard_ttl = \"30s\"\nfixed_ttl = \"60s\"\nsticky = \"5s\"\n\n",
            common = self.common_sections(&format!("m{k}")),
            listen = manager_addr(k),
            agent = agent_listen(),
            precedence = k - 1,
            peers = peers.join(", "),
            interval = settings.heartbeat_interval,
            misses = settings.heartbeat_misses,
        );
        for (name, port, backend_port) in [("streams", STREAM_PORT, STREAM_PORT), ("web", 80, 8080)]
        {
            let _ = write!(
                config,
                "[[service]]\nname = \"{name}\"\nvip = \"{VIP4}\"\nport = {port}\n\
                 protocol = \"tcp\"\nclient_domain = \"0.0.0.0/0\"\nscheduler = \"{scheduler}\"\n\
                 mode = \"nat\"\n\n",
                scheduler = settings.scheduler,
            );
            for b in 1..=3 {
                let _ = write!(
                    config,
                    "[[service.backend]]\nname = \"b{b}\"\naddress = \"{addr}\"\n\
                     port = {backend_port}\nweight = 1\n\n",
                    addr = backend4(b)
                );
            }
        }
        self.write_config(&format!("m{k}.toml"), &config, &self.managers[k - 1]);
    }

    fn write_config(&self, name: &str, config: &str, host: &Host) {
        let path = self.path(name);
        std::fs::write(&path, config).expect("config");
        let check = host
            .output(&[TETHER, "check", "-c", &path])
            .expect("tether check runs");
        assert!(
            check.status.success(),
            "{name} rejected by tether check:\n{}{}\n--- config ---\n{config}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }

    /// Starts (or restarts, with the same configuration) the manager on `mK`.
    pub fn start_manager(&mut self, k: usize) {
        assert!(
            self.manager_procs[k - 1].is_none(),
            "m{k} is already running"
        );
        let process = self.managers[k - 1]
            .spawn(&[TETHER, "run", "-c", &self.path(&format!("m{k}.toml"))])
            .expect("manager starts");
        self.manager_procs[k - 1] = Some(process);
    }

    /// CPU time (user and system) the manager on `mK` has used so far, from `/proc`.
    pub fn manager_cpu(&self, k: usize) -> Duration {
        let pid = self.manager_procs[k - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("m{k} is not running"))
            .pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
        // Fields after the command name (which may hold spaces): state is field 3; utime and
        // stime are fields 14 and 15, in clock ticks.
        let rest = stat.rsplit_once(')').expect("stat has a command").1;
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().expect("a tick count"))
            .collect();
        let ticks = fields.iter().sum::<u64>();
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .expect("getconf");
        let per_second: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("CLK_TCK");
        Duration::from_micros(ticks * 1_000_000 / per_second)
    }

    /// Kills the manager on `mK` with SIGKILL and waits until it is gone.
    pub fn kill_manager(&mut self, k: usize) {
        let mut process = self.manager_procs[k - 1]
            .take()
            .unwrap_or_else(|| panic!("m{k} is not running"));
        process.kill("KILL").expect("SIGKILL");
        let status = process
            .wait_timeout(Duration::from_secs(5))
            .expect("wait for the killed manager");
        assert!(status.is_some(), "m{k} survived SIGKILL");
        let _ = write!(
            self.past_logs[k - 1],
            "--- earlier run, killed ---\n{}{}",
            process.stdout(),
            process.stderr()
        );
    }

    fn status_of(host: &Host) -> Option<Value> {
        let out = host
            .output(&[TETHER, "status", "--json", "--admin", ADMIN])
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `tether status --json` of the manager on `mK`, if it answers.
    pub fn status(&self, k: usize) -> Option<Value> {
        Self::status_of(&self.managers[k - 1])
    }

    /// `tether status --json` of the agent on `lb`, if it answers.
    pub fn agent_status(&self) -> Option<Value> {
        Self::status_of(&self.lb)
    }

    /// `manager.failover` of `mK`'s status, if it answers.
    pub fn failover(&self, k: usize) -> Option<Value> {
        self.status(k)?.pointer("/manager/failover").cloned()
    }

    /// `mK`'s failover role (`active`, `standby`), if it answers.
    pub fn role(&self, k: usize) -> Option<String> {
        role_of(&self.failover(k)?)
    }

    /// Whether `mK` answers and says it is ready.
    pub fn ready(&self, k: usize) -> bool {
        self.failover(k)
            .and_then(|f| f.get("ready").and_then(Value::as_bool))
            .unwrap_or(false)
    }

    /// Every manager's role, `None` for one that does not answer.
    pub fn roles(&self) -> Vec<Option<String>> {
        (1..=self.managers.len()).map(|k| self.role(k)).collect()
    }

    /// The roles when `mK` is active and every other manager standby.
    pub fn expected_roles(&self, active: usize) -> Vec<Option<String>> {
        (1..=self.managers.len())
            .map(|k| Some(if k == active { "active" } else { "standby" }.to_owned()))
            .collect()
    }

    /// Polls `done` every 20 ms until it holds; panics with the cluster's state after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.diagnostics()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every host's status and the last of every Tether process's log, for failure messages.
    pub fn diagnostics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "=== lb (agent) status ===\n{}",
            self.agent_status()
                .map_or_else(|| "(no answer)".to_owned(), |s| s.to_string())
        );
        if let Some(p) = &self.agent {
            let _ = writeln!(
                out,
                "=== lb (agent) log ===\n{}",
                tail(&(p.stdout() + &p.stderr()))
            );
        }
        for k in 1..=self.managers.len() {
            let _ = writeln!(
                out,
                "=== m{k} status ===\n{}",
                self.status(k)
                    .map_or_else(|| "(no answer)".to_owned(), |s| s.to_string())
            );
            let current = self.manager_procs[k - 1]
                .as_ref()
                .map_or_else(|| "(not running)".to_owned(), |p| p.stdout() + &p.stderr());
            let _ = writeln!(
                out,
                "=== m{k} log ===\n{}{}",
                tail(&self.past_logs[k - 1]),
                tail(&current)
            );
        }
        out
    }

    /// `n` HTTP requests to the `web` service from the client, each on its own connection;
    /// the bodies, or curl's complaint.
    pub fn try_curl(&self, n: usize) -> Result<Vec<String>, String> {
        let url = format!("http://{VIP4}/");
        let mut args = vec![
            "curl",
            "-sS",
            "--fail-early",
            "--fail",
            "--max-time",
            "5",
            "-H",
            "Connection: close",
        ];
        args.extend(std::iter::repeat_n(url.as_str(), n));
        let out = self.client.output(&args).map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "curl exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let bodies: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        if bodies.len() != n
            || bodies
                .iter()
                .any(|b| !["b1", "b2", "b3"].contains(&b.as_str()))
        {
            return Err(format!("unexpected answers: {bodies:?}"));
        }
        Ok(bodies)
    }

    /// As [`Cluster::try_curl`], failing the test with the cluster's state on any failure.
    pub fn curl(&self, n: usize) -> Vec<String> {
        self.try_curl(n)
            .unwrap_or_else(|e| panic!("new connections fail: {e}\n{}", self.diagnostics()))
    }

    /// Stops the stream servers with SIGTERM and reads the reports they write.
    pub fn stop_stream_servers(&mut self) -> Vec<ServeReport> {
        let mut reports = Vec::new();
        for k in 1..=3 {
            let Some(mut server) = self.stream_servers[k - 1].take() else {
                continue;
            };
            server.kill("TERM").expect("SIGTERM");
            let status = server
                .wait_timeout(Duration::from_secs(10))
                .expect("wait for the stream server");
            assert!(
                status.is_some_and(|s| s.success()),
                "stream server b{k} did not stop cleanly: {}",
                server.stderr()
            );
            let json = std::fs::read_to_string(self.path(&format!("served-b{k}.json")))
                .unwrap_or_else(|e| panic!("b{k}'s report: {e}: {}", server.stderr()));
            reports.push(ServeReport::from_json(&json).expect("b{k}'s report parses"));
        }
        reports
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self
            .manager_procs
            .iter_mut()
            .chain(std::iter::once(&mut self.agent))
            .chain(self.stream_servers.iter_mut())
            .chain(self.nginx.iter_mut())
        {
            if let Some(mut p) = p.take() {
                let _ = p.stop();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `role` of a `manager.failover` object.
pub fn role_of(failover: &Value) -> Option<String> {
    failover
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The last 6000 characters of a log.
pub fn tail(log: &str) -> String {
    let start = log.len().saturating_sub(6000);
    let start = (start..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(log.len());
    log[start..].to_owned()
}

/// Seconds since the Unix epoch, as pcap files count them.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A running `tcpdump -w`, started in a host and stopped (flushed) on request.
pub struct Capture {
    process: Option<Process>,
    file: PathBuf,
}

impl Capture {
    /// Starts `tcpdump` on `iface` of `host` writing packets matching `filter` to `file`, and
    /// waits until it says it is listening.
    pub fn start(host: &Host, iface: &str, filter: &str, file: &Path) -> Self {
        let file_arg = file.display().to_string();
        let process = host
            .spawn(&[
                "tcpdump",
                "--immediate-mode",
                "-i",
                iface,
                "-n",
                "-U",
                "-s",
                "2048",
                "-w",
                &file_arg,
                filter,
            ])
            .expect("tcpdump starts");
        let start = Instant::now();
        while !process.stderr().contains("listening on") {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "tcpdump did not start listening: {}",
                process.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            process: Some(process),
            file: file.to_owned(),
        }
    }

    /// Stops tcpdump with SIGINT (so it flushes) and returns the captured frames and what
    /// tcpdump said.
    pub fn stop(mut self) -> (Vec<(f64, Vec<u8>)>, String) {
        let mut process = self.process.take().expect("tcpdump runs");
        process.kill("INT").expect("SIGINT");
        let status = process
            .wait_timeout(Duration::from_secs(10))
            .expect("wait for tcpdump");
        assert!(
            status.is_some(),
            "tcpdump did not stop: {}",
            process.stderr()
        );
        let bytes = std::fs::read(&self.file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.file.display()));
        let frames = read_pcap(&bytes).unwrap_or_else(|e| panic!("{}: {e}", self.file.display()));
        (frames, process.stderr())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.stop();
        }
    }
}

/// The frames of a classic pcap file (microsecond or nanosecond, either byte order), each with
/// its capture time in seconds since the Unix epoch: a 24-byte global header, then per frame a
/// 16-byte record header (seconds, fraction, captured length, length) and the captured bytes.
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<(f64, Vec<u8>)>, String> {
    let header = bytes.get(..24).ok_or("shorter than a pcap header")?;
    let magic = [header[0], header[1], header[2], header[3]];
    let (little, fraction) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, 1e-6),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, 1e-9),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, 1e-6),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, 1e-9),
        other => return Err(format!("not a pcap file (magic {other:02x?})")),
    };
    let u32_at = |b: &[u8], at: usize| {
        let word = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if little {
            u32::from_le_bytes(word)
        } else {
            u32::from_be_bytes(word)
        }
    };
    let link_type = u32_at(header, 20);
    if link_type != 1 {
        return Err(format!("link type {link_type}, expected Ethernet (1)"));
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let record = bytes
            .get(at..at + 16)
            .ok_or("a record header is cut short")?;
        let len = u32_at(record, 8) as usize;
        let frame = bytes
            .get(at + 16..at + 16 + len)
            .ok_or("a frame is cut short")?;
        let time = f64::from(u32_at(record, 0)) + f64::from(u32_at(record, 4)) * fraction;
        frames.push((time, frame.to_vec()));
        at += 16 + len;
    }
    Ok(frames)
}

/// The UDP payload of an Ethernet + IPv4 + UDP frame, with the source address and port.
pub fn udp_payload(frame: &[u8]) -> Option<(std::net::SocketAddrV4, &[u8])> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    if ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let udp = ip.get(ihl..total)?;
    let source = std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        u16::from_be_bytes([*udp.first()?, *udp.get(1)?]),
    );
    Some((source, udp.get(8..)?))
}

//! The namespace testbed of the integration tests: the lab's standard topology (a client, the
//! Tether node `lb`, backends `b1`..`b3`) with nginx and `tether run` started in it, each test in
//! its own namespaces, all torn down when the testbed drops (even on failure).
#![allow(
    clippy::disallowed_types,
    reason = "tests wait for real processes on the wall clock"
)]
#![allow(dead_code, reason = "each test file uses a different part")]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tether_lab::netns::{Host, Lab, Process};
use tether_lab::topology::{Topology, TopologySpec};

/// The `tether` binary under test.
pub const TETHER: &str = env!("CARGO_BIN_EXE_tether");

pub const VIP4: &str = "10.9.100.10";
pub const VIP6: &str = "fd09:100::10";
pub const CLIENT4: &str = "10.9.1.2";
pub const CLIENT6: &str = "fd09:1::2";
pub const ADMIN: &str = "127.0.0.1:9090";
const KEY: &str = "1 0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff\n";

pub fn backend4(k: usize) -> String {
    format!("10.9.{}.2", 10 + k)
}

pub fn backend6(k: usize) -> String {
    format!("fd09:{}::2", 10 + k)
}

/// Hosts, links and the processes running in them.
pub struct Testbed {
    pub client: Host,
    pub lb: Host,
    pub backends: Vec<Host>,
    /// The Tether node's interfaces (client side first).
    pub lb_ifaces: Vec<String>,
    /// The client's interface towards the Tether node.
    client_iface: String,
    dir: PathBuf,
    nginx: Vec<Option<Process>>,
    tether: Option<Process>,
    // Dropped last: kills whatever still runs in the namespaces and deletes them.
    lab: Lab,
}

fn run(host: &Host, args: &[&str]) -> String {
    let out = host
        .exec(args)
        .unwrap_or_else(|e| panic!("{args:?} in {}: {e}", host.name()));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Testbed {
    /// Builds the standard topology (`tether_lab::topology`); with `backend_mtu`, each backend
    /// sits behind a router whose link to it has that MTU.
    pub fn new(tag: &str, backend_mtu: Option<u32>) -> Self {
        let lab = Lab::new(tag).expect("lab");
        let topology = Topology::build(
            &lab,
            TopologySpec {
                backends: 3,
                backend_mtu,
                managers: 0,
            },
        )
        .expect("topology");
        let dir = std::env::temp_dir().join(format!("{}-files", lab.prefix()));
        std::fs::create_dir_all(&dir).expect("test directory");
        Self {
            client: topology.client,
            lb: topology.node,
            backends: topology.backends,
            lb_ifaces: topology.node_interfaces,
            client_iface: topology.client_interface,
            dir,
            nginx: vec![None, None, None],
            tether: None,
            lab,
        }
    }

    /// Starts nginx on backend `k` (1-based), answering `bK` on ports 8080 and 8081 (v4 and
    /// v6) and on `extra_listen` (the VIP on its `lo`, for DSR).
    pub fn start_nginx(&mut self, k: usize, extra_listen: &[&str]) {
        let dir = self.dir.join(format!("nginx-b{k}"));
        std::fs::create_dir_all(&dir).expect("nginx directory");
        let mut listen = String::new();
        for port in [8080, 8081] {
            let _ = write!(
                listen,
                "listen {}:{port}; listen [{}]:{port}; ",
                backend4(k),
                backend6(k)
            );
        }
        for l in extra_listen {
            let _ = write!(listen, " listen {l};");
        }
        let conf = format!(
            "daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
               fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
               keepalive_requests 100000;\n\
               server {{ {listen} location / {{ return 200 \"b{k}\\n\"; }}\n\
                 location /big {{ alias {dir}/big; }} }} }}\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let host = &self.backends[k - 1];
        let process = host
            .spawn(&["nginx", "-c", &dir.join("nginx.conf").display().to_string()])
            .expect("nginx starts");
        host.wait_listening(
            tether_lab::netns::Transport::Tcp,
            8080,
            Duration::from_secs(10),
        )
        .expect("nginx listens");
        self.nginx[k - 1] = Some(process);
    }

    /// Prepares the backends for direct server return and starts nginx on them: each holds the
    /// VIP on `lo` and has a direct link to the client (10.9.2K.0/24) for its replies, so they
    /// do not cross the Tether node; nginx listens on port 80 on every address.
    pub fn start_dsr_backends(&mut self) {
        for k in 1..=3 {
            let b = &self.backends[k - 1];
            b.add_vip_on_lo(VIP4.parse().expect("vip"))
                .expect("VIP on lo");
            let direct = self
                .lab
                .link(
                    &self.client,
                    b,
                    tether_lab::netns::LinkSpec {
                        a_addrs: &[&format!("10.9.{}.1/24", 20 + k)],
                        b_addrs: &[&format!("10.9.{}.2/24", 20 + k)],
                        mtu: None,
                    },
                )
                .expect("direct link");
            b.route(
                "10.9.1.0/24",
                Some(format!("10.9.{}.1", 20 + k).parse().expect("ip")),
                Some(&direct.b_dev),
            )
            .expect("return route");
            // The VIP on lo for clients, the backend address for health checks.
            self.start_nginx(k, &["80"]);
        }
    }

    /// Writes a file nginx on backend `k` serves at `/big`.
    pub fn nginx_file(&self, k: usize, bytes: usize) -> Vec<u8> {
        let dir = self.dir.join(format!("nginx-b{k}"));
        std::fs::create_dir_all(&dir).expect("nginx directory");
        let data: Vec<u8> = (0..bytes).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.join("big"), &data).expect("big file");
        data
    }

    /// Stops nginx on backend `k`.
    pub fn stop_nginx(&mut self, k: usize) {
        if let Some(mut p) = self.nginx[k - 1].take() {
            p.stop().expect("nginx stops");
        }
    }

    /// Writes a configuration with both roles on the Tether node and `services` (TOML
    /// `[[service]]` tables), starts `tether run` and waits until its wildcards are steered.
    pub fn start_tether(&mut self, services: &str) {
        self.start_tether_workers(services, 1);
    }

    /// As [`Testbed::start_tether`], with `workers` agent workers (ports 7400 and up, all of
    /// them announced to by default).
    pub fn start_tether_workers(&mut self, services: &str, workers: usize) {
        let key = self.dir.join("tether.key");
        std::fs::write(&key, KEY).expect("key file");
        let interfaces: Vec<String> = self.lb_ifaces.iter().map(|i| format!("\"{i}\"")).collect();
        let config = format!(
            "[node]\nname = \"lb\"\n\n[admin]\nlisten = \"{ADMIN}\"\n\n[auth]\nkey_file = \"{key}\"\n\n\
             [agent]\ninterfaces = [{ifaces}]\nlisten = \"127.0.0.1:7400\"\nworkers = {workers}\n\n\
             [manager]\nlisten = \"127.0.0.1:7500\"\n\
             wildcard_ttl = \"30s\"\nfixed_ttl = \"60s\"\nsticky = \"5s\"\n\n{services}",
            key = key.display(),
            ifaces = interfaces.join(", ")
        );
        let path = self.dir.join("tether.toml");
        std::fs::write(&path, config).expect("config");
        let check = self
            .lb
            .exec(&[TETHER, "check", "-c", &path.display().to_string()])
            .expect("check runs");
        assert!(
            check.status.success(),
            "config rejected: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let process = self
            .lb
            .spawn(&[TETHER, "run", "-c", &path.display().to_string()])
            .expect("tether starts");
        self.tether = Some(process);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.try_status() {
                let rules = status
                    .pointer("/agent/steering_rules")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if rules > 0 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "tether did not come up: {}",
                self.tether_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What `tether run` has printed so far.
    pub fn tether_log(&self) -> String {
        self.tether
            .as_ref()
            .map(|p| format!("{}{}", p.stdout(), p.stderr()))
            .unwrap_or_default()
    }

    /// Stops `tether run` with SIGTERM and waits for it to exit; returns its log.
    pub fn stop_tether(&mut self) -> String {
        let mut p = self.tether.take().expect("tether runs");
        p.kill("TERM").expect("signal");
        let status = p.wait_timeout(Duration::from_secs(10)).expect("wait");
        let log = format!("{}{}", p.stdout(), p.stderr());
        assert!(
            status.is_some_and(|s| s.success()),
            "tether did not exit cleanly: {log}"
        );
        log
    }

    fn try_status(&self) -> Option<Value> {
        let out = self
            .lb
            .exec(&[TETHER, "status", "--json", "--admin", ADMIN])
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `tether status --json` on the Tether node.
    pub fn status(&self) -> Value {
        self.try_status()
            .unwrap_or_else(|| panic!("status unavailable: {}", self.tether_log()))
    }

    /// `tether status` as a person sees it.
    pub fn status_text(&self) -> String {
        run(&self.lb, &[TETHER, "status", "--admin", ADMIN])
    }

    /// Runs `tether backend ACTION SERVICE BACKEND` on the Tether node.
    pub fn backend(&self, action: &str, service: &str, backend: &str) {
        let out = self
            .lb
            .exec(&[
                TETHER, "backend", action, service, backend, "--admin", ADMIN,
            ])
            .expect("runs");
        assert!(
            out.status.success(),
            "backend {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `n` HTTP requests from the client, each on a new connection; the bodies, in order.
    pub fn curl(&self, url: &str, n: usize, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "curl",
            "-sS",
            "--fail-early",
            "--max-time",
            "5",
            "-H",
            "Connection: close",
        ];
        args.extend_from_slice(extra);
        // One curl process for many URLs: each gets its own connection because of the header.
        let mut bodies = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            let mut a = args.clone();
            a.extend(std::iter::repeat_n(url, chunk.len()));
            let out = self.client.output(&a).expect("curl runs");
            assert!(
                out.status.success(),
                "curl failed: {}\nstatus: {}\nlog:\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.try_status().map(|s| s.to_string()).unwrap_or_default(),
                self.tether_log()
            );
            bodies.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned),
            );
        }
        bodies
    }

    /// Runs a command on the client and returns its stdout.
    pub fn client_run(&self, args: &[&str]) -> String {
        run(&self.client, args)
    }

    /// The client's interface towards the Tether node.
    pub fn client_iface(&self) -> String {
        self.client_iface.clone()
    }

    /// Where test files live.
    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }

    /// The lab, for extra hosts and processes.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for p in self.nginx.iter_mut().flatten() {
            let _ = p.stop();
        }
        if let Some(mut p) = self.tether.take() {
            let _ = p.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How many of `bodies` name each backend `b1`..`b3`.
pub fn spread(bodies: &[String]) -> [usize; 3] {
    let mut counts = [0; 3];
    for b in bodies {
        match b.as_str() {
            "b1" => counts[0] += 1,
            "b2" => counts[1] += 1,
            "b3" => counts[2] += 1,
            other => panic!("unexpected response body {other:?}"),
        }
    }
    counts
}

/// A `[[service]]` table with the three backends (NAT: backend port 8080, or 8081 for port 81).
pub fn service(
    name: &str,
    vip: &str,
    port: u16,
    mode: &str,
    scheduler: &str,
    weights: [u32; 3],
    v6: bool,
) -> String {
    // NAT services need backend ports of their own (replies must name one service); DSR keeps the port.
    let backend_port = match (mode, port) {
        ("dsr", _) => port,
        (_, 81) => 8081,
        _ => 8080,
    };
    let mut s = format!(
        "[[service]]\nname = \"{name}\"\nvip = \"{vip}\"\nport = {port}\nprotocol = \"tcp\"\n\
         client_domain = \"{domain}\"\nscheduler = \"{scheduler}\"\nmode = \"{mode}\"\n\n\
         [service.health]\nkind = \"tcp\"\ninterval = \"500ms\"\ntimeout = \"300ms\"\nrise = 2\nfall = 2\n\n",
        domain = if v6 { "::/0" } else { "0.0.0.0/0" }
    );
    for (k, w) in weights.iter().enumerate() {
        let addr = if v6 { backend6(k + 1) } else { backend4(k + 1) };
        let _ = write!(
            s,
            "[[service.backend]]\nname = \"b{n}\"\naddress = \"{addr}\"\nport = {bport}\nweight = {w}\n\n",
            n = k + 1,
            bport = backend_port
        );
    }
    s
}

//! The benchmark lab: the standard topology, nginx and an iperf3 server on the backends,
//! direct return links for DSR, and the four directors started and stopped on the node.
#![expect(
    clippy::disallowed_types,
    reason = "the benchmark waits for real programs by the wall clock"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Mode;
use crate::LabError;
use crate::netns::{Host, Lab, LinkSpec, Process, Transport};
use crate::topology::{Topology, TopologySpec, VIP4, backend4};

/// The Tether admin API inside the node's namespace.
const ADMIN: &str = "127.0.0.1:9090";
/// A lab-only service-message key.
const KEY: &str = "1 6b656e63682d6c61622d6b65792d6f6e6c792d666f722d62656e63686d61726b\n";
/// Client-side source addresses besides the client's own, for memory-per-flow runs.
pub const EXTRA_SOURCES: [&str; 2] = ["10.9.1.3", "10.9.1.4"];

/// The VIP ports of the benchmark's services.
pub const HTTP_PORT: u16 = 80;
/// UDP service port on the VIP.
pub const UDP_PORT: u16 = 9000;
/// iperf3 port (on the VIP and on backend 1).
pub const IPERF_PORT: u16 = 5201;

/// The lab and its long-running programs.
pub struct BenchLab {
    exe: PathBuf,
    dir: PathBuf,
    /// The client host.
    pub client: Host,
    /// The director host.
    pub node: Host,
    /// Backends b1..b3.
    pub backends: Vec<Host>,
    node_ifaces: Vec<String>,
    /// The client-side ends of the direct links, per backend: the route back for DSR.
    direct_gateways: Vec<String>,
    servers: Vec<Process>,
    director: Option<Process>,
    // Dropped last: kills whatever still runs and deletes the namespaces.
    lab: Lab,
}

impl BenchLab {
    /// Builds the topology with three backends, starts nginx on each and iperf3 on `b1`.
    pub fn new(exe: &Path) -> Result<BenchLab, LabError> {
        if exe.to_str().is_none() {
            return Err(LabError::Invalid {
                what: "tether binary path",
                value: exe.display().to_string(),
                reason: "the path must be UTF-8 to be passed to `ip netns exec`",
            });
        }
        let lab = Lab::new("bench")?;
        let topology = Topology::build(
            &lab,
            TopologySpec {
                backends: 3,
                backend_mtu: None,
                managers: 0,
            },
        )?;
        let dir = std::env::temp_dir().join(format!("{}-files", lab.prefix()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        let mut bench = BenchLab {
            exe: exe.to_owned(),
            dir,
            client: topology.client,
            node: topology.node,
            backends: topology.backends,
            node_ifaces: topology.node_interfaces,
            direct_gateways: Vec::new(),
            servers: Vec::new(),
            director: None,
            lab,
        };
        for source in EXTRA_SOURCES {
            bench
                .client
                .add_addr(&topology.client_interface, &format!("{source}/24"))?;
        }
        // Short connections by the ten thousand: wide port ranges, TIME_WAIT reuse, deep queues.
        for host in [&bench.client, &bench.node] {
            host.sysctls(&[
                ("net.ipv4.ip_local_port_range", "1024 65535"),
                ("net.ipv4.tcp_tw_reuse", "1"),
            ])?;
        }
        for k in 1..=3 {
            let b = bench.backends[k - 1].clone();
            b.sysctls(&[
                ("net.core.somaxconn", "8192"),
                ("net.ipv4.tcp_max_syn_backlog", "8192"),
            ])?;
            let direct = bench.lab.link(
                &bench.client,
                &b,
                LinkSpec {
                    a_addrs: &[&format!("10.9.{}.1/24", 20 + k)],
                    b_addrs: &[&format!("10.9.{}.2/24", 20 + k)],
                    mtu: None,
                },
            )?;
            crate::topology::disable_offloads(&bench.client, &direct.a_dev)?;
            crate::topology::disable_offloads(&b, &direct.b_dev)?;
            bench.direct_gateways.push(format!("10.9.{}.1", 20 + k));
            bench.start_nginx(k)?;
        }
        let iperf = bench.backends[0].spawn(&["iperf3", "-s", "-p", &IPERF_PORT.to_string()])?;
        bench.servers.push(iperf);
        bench.backends[0].wait_listening(Transport::Tcp, IPERF_PORT, Duration::from_secs(10))?;
        Ok(bench)
    }

    /// The `tether` binary the lab runs its traffic programs with.
    pub fn exe(&self) -> &str {
        // Checked to be UTF-8 when the lab was built.
        self.exe.to_str().unwrap_or_default()
    }

    /// The pid of the running director process (Tether or HAProxy).
    pub fn director_pid(&self) -> Option<u32> {
        self.director.as_ref().map(Process::pid)
    }

    fn start_nginx(&mut self, k: usize) -> Result<(), LabError> {
        let dir = self.dir.join(format!("nginx-b{k}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
        // Port 8080 on the backend address for NAT, HAProxy and nftables; port 80 on every
        // address, the VIP on `lo` included, for DSR (and its health checks).
        let conf = format!(
            "daemon off; worker_processes 1; worker_rlimit_nofile 65536; pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log;\n\
             events {{ worker_connections 30000; }}\n\
             http {{ access_log off; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
               fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
               keepalive_requests 1000000; keepalive_timeout 120s;\n\
               server {{ listen {addr}:8080 backlog=8192; listen 80 backlog=8192;\n\
                 location / {{ return 200 \"b{k}\\n\"; }} }} }}\n",
            dir = dir.display(),
            addr = backend4(k),
        );
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        let host = &self.backends[k - 1];
        let process = host.spawn(&["nginx", "-c", &path.display().to_string()])?;
        host.wait_listening(Transport::Tcp, 8080, Duration::from_secs(10))?;
        self.servers.push(process);
        Ok(())
    }

    /// Starts `mode`'s director on the node and waits until it forwards HTTP through the VIP.
    pub fn start(&mut self, mode: Mode, workers: usize) -> Result<(), LabError> {
        match mode {
            Mode::TetherNat => self.start_tether(false, workers)?,
            Mode::TetherDsr => {
                for (k, b) in self.backends.iter().enumerate() {
                    b.add_vip_on_lo(VIP4.into())?;
                    b.route(
                        "10.9.1.0/24",
                        Some(parse_ip(&self.direct_gateways[k])?),
                        None,
                    )?;
                }
                self.start_tether(true, workers)?;
            }
            Mode::Nftables => self.start_nftables()?,
            Mode::Haproxy => self.start_haproxy(workers)?,
        }
        self.wait_serving(mode)
    }

    /// Stops `mode`'s director and undoes what its start changed.
    pub fn stop(&mut self, mode: Mode) -> Result<(), LabError> {
        if let Some(mut p) = self.director.take() {
            p.stop()?;
        }
        match mode {
            Mode::TetherNat => {}
            Mode::TetherDsr => {
                for b in &self.backends {
                    b.ip(&["route", "del", "10.9.1.0/24"])?;
                    b.ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"])?;
                }
            }
            Mode::Nftables => {
                self.node
                    .exec(&["nft", "delete", "table", "ip", "benchlb"])?;
                // Entries of the test's flows would keep their NAT bindings otherwise.
                let _ = self.node.output(&["conntrack", "-F"]);
            }
            Mode::Haproxy => {
                self.node
                    .ip(&["addr", "del", &format!("{VIP4}/32"), "dev", "lo"])?;
            }
        }
        Ok(())
    }

    fn start_tether(&mut self, dsr: bool, workers: usize) -> Result<(), LabError> {
        let key = self.dir.join("tether.key");
        std::fs::write(&key, KEY)
            .map_err(|e| LabError::io(format!("writing {}", key.display()), e))?;
        let ifaces: Vec<String> = self
            .node_ifaces
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect();
        let mut config = format!(
            "[node]\nname = \"lb\"\n\n[admin]\nlisten = \"{ADMIN}\"\n\n[auth]\nkey_file = \"{key}\"\n\n\
             [agent]\ninterfaces = [{ifaces}]\nlisten = \"127.0.0.1:7400\"\nworkers = {workers}\n\
             hold_capacity = 65536\n\n\
             [manager]\nlisten = \"127.0.0.1:7500\"\nwildcard_ttl = \"30s\"\nfixed_ttl = \"60s\"\n\
             sticky = \"5s\"\n\n",
            key = key.display(),
            ifaces = ifaces.join(", ")
        );
        let mode = if dsr { "dsr" } else { "nat" };
        // NAT services need backend ports of their own; DSR keeps the service port.
        let http_backend_port = if dsr { HTTP_PORT } else { 8080 };
        let udp_backend_port = if dsr { UDP_PORT } else { UDP_PORT + 1 };
        for (name, port, protocol, backend_port, backends, health) in [
            ("web", HTTP_PORT, "tcp", http_backend_port, 3, true),
            ("udp", UDP_PORT, "udp", udp_backend_port, 3, false),
            ("iperf", IPERF_PORT, "tcp", IPERF_PORT, 1, false),
        ] {
            let _ = write!(
                config,
                "[[service]]\nname = \"{name}\"\nvip = \"{VIP4}\"\nport = {port}\n\
                 protocol = \"{protocol}\"\nmode = \"{mode}\"\n\n"
            );
            if health {
                config.push_str(
                    "[service.health]\nkind = \"tcp\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n",
                );
            }
            for k in 1..=backends {
                let _ = write!(
                    config,
                    "[[service.backend]]\nname = \"b{k}\"\naddress = \"{}\"\nport = {backend_port}\n\n",
                    backend4(k)
                );
            }
        }
        let path = self.dir.join(format!("tether-{mode}.toml"));
        std::fs::write(&path, config)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        let path = path.display().to_string();
        let exe = self.exe().to_owned();
        self.node.exec(&[&exe, "check", "-c", &path])?;
        self.director = Some(self.node.spawn(&[&exe, "run", "-c", &path])?);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let rules = self
                .tether_status()
                .and_then(|s| s.pointer("/agent/steering_rules").and_then(Value::as_u64));
            if rules.unwrap_or(0) > 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!("tether to steer traffic: {}", self.director_log()),
                    waited: Duration::from_secs(20),
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// `tether status --json` of the running Tether node.
    pub fn tether_status(&self) -> Option<Value> {
        let out = self
            .node
            .output(&[self.exe(), "status", "--json", "--admin", ADMIN])
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// What the director has printed so far.
    pub fn director_log(&self) -> String {
        self.director
            .as_ref()
            .map(|p| format!("{}{}", p.stdout(), p.stderr()))
            .unwrap_or_default()
    }

    fn start_nftables(&mut self) -> Result<(), LabError> {
        let map = (1..=3)
            .map(|k| format!("{} : {}", k - 1, backend4(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let ruleset = format!(
            "table ip benchlb {{\n  chain pre {{\n    type nat hook prerouting priority dstnat; policy accept;\n\
             \x20   ip daddr {VIP4} tcp dport {HTTP_PORT} dnat to numgen inc mod 3 map {{ {map} }} : 8080\n\
             \x20   ip daddr {VIP4} udp dport {UDP_PORT} dnat to numgen inc mod 3 map {{ {map} }} : {udp}\n\
             \x20   ip daddr {VIP4} tcp dport {IPERF_PORT} dnat to {b1}\n  }}\n}}\n",
            udp = UDP_PORT + 1,
            b1 = backend4(1),
        );
        let path = self.dir.join("benchlb.nft");
        std::fs::write(&path, ruleset)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        self.node
            .exec(&["nft", "-f", &path.display().to_string()])
            .map(drop)
    }

    fn start_haproxy(&mut self, threads: usize) -> Result<(), LabError> {
        self.node.add_vip_on_lo(VIP4.into())?;
        let servers = |port: u16, count: usize| {
            (1..=count).fold(String::new(), |mut out, k| {
                let _ = writeln!(out, "  server b{k} {}:{port}", backend4(k));
                out
            })
        };
        let config = format!(
            "global\n  nbthread {threads}\n  maxconn 9000\n  log stderr format short local0 warning\n\n\
             defaults\n  mode tcp\n  log global\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n\n\
             frontend web\n  bind {VIP4}:{HTTP_PORT}\n  default_backend web\n\n\
             backend web\n  balance roundrobin\n{web}\n\
             frontend iperf\n  bind {VIP4}:{IPERF_PORT}\n  default_backend iperf\n\n\
             backend iperf\n{iperf}",
            web = servers(8080, 3),
            iperf = servers(IPERF_PORT, 1),
        );
        let path = self.dir.join("haproxy.cfg");
        std::fs::write(&path, config)
            .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
        let path = path.display().to_string();
        self.node.exec(&["haproxy", "-c", "-q", "-f", &path])?;
        self.director = Some(self.node.spawn(&["haproxy", "-db", "-f", &path])?);
        self.node
            .wait_listening(Transport::Tcp, HTTP_PORT, Duration::from_secs(10))
            .map_err(|e| LabError::Protocol {
                peer: "haproxy".to_owned(),
                reason: format!("{e}: {}", self.director_log()),
            })
    }

    /// Waits until a few HTTP requests through the VIP all succeed (backends found healthy).
    fn wait_serving(&self, mode: Mode) -> Result<(), LabError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let target = format!("{VIP4}:{HTTP_PORT}");
        loop {
            let out = self.client.output(&[
                self.exe(),
                "lab",
                "http-get",
                "--target",
                &target,
                "--count",
                "6",
                "--timeout-ms",
                "1000",
            ])?;
            if out.status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!(
                        "{} to serve HTTP through the VIP ({}): {}",
                        mode.label(),
                        String::from_utf8_lossy(&out.stdout).trim(),
                        self.director_log()
                    ),
                    waited: Duration::from_secs(30),
                });
            }
            thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for BenchLab {
    fn drop(&mut self) {
        if let Some(mut p) = self.director.take() {
            let _ = p.stop();
        }
        for p in &mut self.servers {
            let _ = p.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn parse_ip(s: &str) -> Result<std::net::IpAddr, LabError> {
    s.parse().map_err(|_| LabError::Invalid {
        what: "address",
        value: s.to_owned(),
        reason: "not an IP address",
    })
}

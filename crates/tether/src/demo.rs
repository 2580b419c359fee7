//! `tether demo`: a guided run on a lab of network namespaces built on the spot. One client,
//! one Tether node (manager and agent in one process) and three backends running the built-in
//! HTTP and stream servers; it shows flows spreading, a drain and a health-check removal, prints
//! a summary and removes every namespace it made.
#![expect(
    clippy::disallowed_types,
    reason = "the demo shows an operator real elapsed times; no state machine is involved"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use tether_lab::netns::{Host, Lab, Process, Transport};
use tether_lab::stream::StreamReport;
use tether_lab::topology::{Topology, TopologySpec, VIP4, backend4};

use crate::report::StatusReport;

/// Options of `tether demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the lab after the summary (until Enter is pressed) to explore it with `ip netns`.
    #[arg(long)]
    pub keep: bool,
}

const ADMIN: &str = "127.0.0.1:9090";
const STREAMS: usize = 24;
const KEY: &str = "1 5d41402abc4b2a76b9719d911017c592ae2e1c5f2e2e8e8f9a6f0c6f4e3d2c1b\n";

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    require_root()?;
    let exe = std::env::current_exe().context("cannot find the tether binary to run in the lab")?;
    let started = Instant::now();
    say("building the lab: client, Tether node, three backends (network namespaces)");
    let stale = Lab::cleanup_stale("demo").unwrap_or_default();
    if !stale.is_empty() {
        say(&format!(
            "removed {} namespaces left by an earlier demo",
            stale.len()
        ));
    }
    let lab = Lab::new("demo").context("cannot create the lab")?;
    let names = lab.prefix().to_owned();
    let outcome = Demo::new(&lab, &exe).and_then(|mut demo| demo.play(started));
    if args.keep {
        say(&format!(
            "lab kept: `ip netns list | grep {names}`; press Enter to remove it"
        ));
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    drop(lab);
    let left: Vec<String> = list_namespaces()?
        .into_iter()
        .filter(|n| n.starts_with(&names))
        .collect();
    if left.is_empty() {
        say("lab removed: no namespace left behind");
    } else {
        bail!("namespaces left behind: {}", left.join(", "));
    }
    let summary = outcome?;
    println!("\n{summary}");
    say(&format!("demo finished in {:.0?}", started.elapsed()));
    Ok(())
}

fn say(message: &str) {
    println!("==> {message}");
}

fn require_root() -> anyhow::Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|uids| uids.split_whitespace().nth(1) == Some("0"));
    if !root {
        bail!("tether demo builds network namespaces and must run as root (try: sudo tether demo)");
    }
    Ok(())
}

fn list_namespaces() -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("cannot run `ip netns list`")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// The running lab and its processes.
struct Demo<'a> {
    exe: &'a Path,
    topology: Topology,
    dir: PathBuf,
    http: Vec<Option<Process>>,
    streams: Vec<Process>,
    tether: Option<Process>,
}

impl<'a> Demo<'a> {
    fn new(lab: &Lab, exe: &'a Path) -> anyhow::Result<Self> {
        let topology = Topology::build(
            lab,
            TopologySpec {
                backends: 3,
                backend_mtu: None,
                managers: 0,
            },
        )?;
        let dir = std::env::temp_dir().join(format!("{}-files", lab.prefix()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut demo = Self {
            exe,
            topology,
            dir,
            http: Vec::new(),
            streams: Vec::new(),
            tether: None,
        };
        for k in 1..=3 {
            let name = format!("b{k}");
            let b = demo.topology.backends[k - 1].clone();
            let http = demo.lab_cmd(
                &b,
                &[
                    "http-server",
                    "--listen",
                    &format!("{}:8080", backend4(k)),
                    "--name",
                    &name,
                ],
            )?;
            let stream = demo.lab_cmd(
                &b,
                &[
                    "stream-server",
                    "--listen",
                    &format!("{}:9000", backend4(k)),
                    "--name",
                    &name,
                ],
            )?;
            b.wait_listening(Transport::Tcp, 8080, Duration::from_secs(5))?;
            b.wait_listening(Transport::Tcp, 9000, Duration::from_secs(5))?;
            demo.http.push(Some(http));
            demo.streams.push(stream);
        }
        say("backends up: each runs the built-in HTTP server (:8080) and stream server (:9000)");
        demo.start_tether()?;
        Ok(demo)
    }

    fn lab_cmd(&self, host: &Host, args: &[&str]) -> anyhow::Result<Process> {
        let exe = self.exe.display().to_string();
        let mut all = vec![exe.as_str(), "lab"];
        all.extend_from_slice(args);
        Ok(host.spawn(&all)?)
    }

    fn tether_cmd(&self, host: &Host, args: &[&str]) -> anyhow::Result<String> {
        let exe = self.exe.display().to_string();
        let mut all = vec![exe.as_str()];
        all.extend_from_slice(args);
        let out = host.exec(&all)?;
        if !out.status.success() {
            bail!(
                "`tether {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn start_tether(&mut self) -> anyhow::Result<()> {
        let key = self.dir.join("tether.key");
        std::fs::write(&key, KEY)?;
        let interfaces: Vec<String> = self
            .topology
            .node_interfaces
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect();
        let mut config = format!(
            "[node]\nname = \"demo-lb\"\n\n[admin]\nlisten = \"{ADMIN}\"\n\n[auth]\nkey_file = \"{}\"\n\n\
             [agent]\ninterfaces = [{}]\nlisten = \"127.0.0.1:7400\"\n\n\
             [manager]\nlisten = \"127.0.0.1:7401\"\nannounce = [\"127.0.0.1:7400\"]\nsticky = \"2s\"\n\n",
            key.display(),
            interfaces.join(", ")
        );
        for (name, port, bport) in [("web", 80, 8080), ("streams", 9000, 9000)] {
            let _ = write!(
                config,
                "[[service]]\nname = \"{name}\"\nvip = \"{VIP4}\"\nport = {port}\nprotocol = \"tcp\"\nscheduler = \"wrr\"\nmode = \"nat\"\n\n\
                 [service.health]\nkind = \"tcp\"\ninterval = \"500ms\"\ntimeout = \"300ms\"\nrise = 2\nfall = 2\n\n"
            );
            for k in 1..=3 {
                let _ = write!(
                    config,
                    "[[service.backend]]\nname = \"b{k}\"\naddress = \"{}\"\nport = {bport}\n\n",
                    backend4(k)
                );
            }
        }
        let path = self.dir.join("tether.toml");
        std::fs::write(&path, &config)?;
        let node = self.topology.node.clone();
        self.tether_cmd(&node, &["check", "-c", &path.display().to_string()])?;
        let exe = self.exe.display().to_string();
        self.tether =
            Some(node.spawn(&[exe.as_str(), "run", "-c", &path.display().to_string()])?);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self
            .status()
            .map_or(true, |s| s.agent.is_none_or(|a| a.steering_rules == 0))
        {
            if Instant::now() > deadline {
                let log = self
                    .tether
                    .as_ref()
                    .map(Process::stderr)
                    .unwrap_or_default();
                bail!("tether did not come up within 15 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        say(&format!(
            "Tether runs on the node: VIP {VIP4}, services web (:80) and streams (:9000), round robin, NAT"
        ));
        Ok(())
    }

    fn status(&self) -> anyhow::Result<StatusReport> {
        let json = self.tether_cmd(&self.topology.node, &["status", "--json", "--admin", ADMIN])?;
        serde_json::from_str(&json).context("status JSON")
    }

    /// Active flows per backend of `service`.
    fn flows(&self, service: &str) -> anyhow::Result<Vec<(String, u64, String)>> {
        let status = self.status()?;
        let manager = status.manager.context("no manager role in status")?;
        let svc = manager
            .services
            .into_iter()
            .find(|s| s.name == service)
            .context("service missing")?;
        Ok(svc
            .backends
            .into_iter()
            .map(|b| {
                let state = if b.healthy {
                    b.admin
                } else {
                    "down".to_owned()
                };
                (b.name, b.active_flows, state)
            })
            .collect())
    }

    fn show_flows(&self, service: &str) -> anyhow::Result<()> {
        let mut line = String::from("    ");
        for (name, flows, state) in self.flows(service)? {
            let bar = "#".repeat(usize::try_from(flows).unwrap_or(0).min(30));
            let _ = write!(line, "{name} {flows:>3} {bar:<12} ({state})   ");
        }
        println!("{line}");
        Ok(())
    }

    /// `count` HTTP requests from the client, each on its own connection: answers per backend.
    fn requests(&self, count: usize) -> anyhow::Result<String> {
        let out = self.tether_cmd(
            &self.topology.client,
            &[
                "lab",
                "http-get",
                "--target",
                &format!("{VIP4}:80"),
                "--count",
                &count.to_string(),
            ],
        )?;
        Ok(out.trim().to_owned())
    }

    fn play(&mut self, started: Instant) -> anyhow::Result<String> {
        let mut summary = String::from("summary\n");

        say(&format!(
            "1. spreading: {STREAMS} long-lived checksummed streams and 300 HTTP requests through the VIP"
        ));
        let client = self.topology.client.clone();
        let streams = self.lab_cmd(
            &client,
            &[
                "stream-client",
                "--target",
                &format!("{VIP4}:9000"),
                "--streams",
                &STREAMS.to_string(),
                "--bytes",
                "1500000",
                "--rate",
                "100000",
                "--json",
            ],
        )?;
        let answers = self.requests(300)?;
        println!("    HTTP answers per backend: {answers}");
        let _ = writeln!(summary, "  spreading   300 requests -> {answers}");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_secs(1));
            self.show_flows("streams")?;
        }

        say("2. draining b2: its streams keep running to their end, new flows avoid it");
        self.tether_cmd(
            &self.topology.node,
            &["backend", "drain", "streams", "b2", "--admin", ADMIN],
        )?;
        self.tether_cmd(
            &self.topology.node,
            &["backend", "drain", "web", "b2", "--admin", ADMIN],
        )?;
        let answers = self.requests(100)?;
        println!("    HTTP answers per backend while b2 drains: {answers}");
        let _ = writeln!(summary, "  draining b2 100 requests -> {answers}");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_secs(1));
            self.show_flows("streams")?;
        }

        say("3. stopping b3's HTTP server: the health check takes it out of the web service");
        if let Some(mut http) = self.http[2].take() {
            http.stop()?;
        }
        let stopped = Instant::now();
        while self
            .flows("web")?
            .iter()
            .any(|(name, _, state)| name == "b3" && state != "down")
        {
            if stopped.elapsed() > Duration::from_secs(10) {
                bail!("the health check did not notice b3 within 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let detected = stopped.elapsed();
        println!("    b3 marked down after {detected:.1?} (interval 500 ms, fall 2)");
        let answers = self.requests(100)?;
        println!("    HTTP answers per backend now: {answers}");
        let _ = writeln!(
            summary,
            "  b3 down     detected in {detected:.1?}; 100 requests -> {answers}"
        );

        say("4. waiting for the long streams to finish");
        let mut streams = streams;
        let done = streams.wait_timeout(Duration::from_secs(40))?;
        if done.is_none() {
            bail!("the streams did not finish within 40 s");
        }
        let report = StreamReport::from_json(&streams.stdout()).context("stream report")?;
        self.show_flows("streams")?;
        let _ = writeln!(
            summary,
            "  streams     {} of {STREAMS} complete, {} MB verified both ways, per backend {:?}; failures: {}",
            report.count(|o| matches!(o, tether_lab::stream::StreamOutcome::Complete)),
            report.bytes_verified() / 1_000_000,
            report.servers(),
            report.failures().len()
        );
        let status = self.status()?;
        if let Some(agent) = status.agent {
            let drops: u64 = agent.drops.values().sum();
            let reasons: Vec<String> = agent
                .drops
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = writeln!(
                summary,
                "  agent       {} frames forwarded, {} punted to the manager, {drops} dropped{}",
                agent.forwarded,
                agent.to_manager,
                if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", reasons.join(", "))
                }
            );
        }
        if let Some(mut tether) = self.tether.take() {
            tether.kill("TERM")?;
            tether.wait_timeout(Duration::from_secs(10))?;
        }
        let _ = write!(summary, "  elapsed     {:.0?}", started.elapsed());
        Ok(summary)
    }
}

impl Drop for Demo<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

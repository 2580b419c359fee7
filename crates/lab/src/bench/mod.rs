//! The side-by-side benchmark of `scripts/bench` (`tether lab bench`): one namespace lab, four
//! directors run one after another on its node with the same client, backends and CPU
//! placement, the same measurements of each, medians with min–max, a ratio table and a JSON
//! file. How each figure is measured is written in `docs/benchmarks.md`.
//!
//! The traffic programs (UDP generator and sinks, flow opener, connection holder) run as
//! `tether lab …` processes in the hosts' namespaces; wrk, iperf3, nginx, HAProxy and nft are
//! the distribution's.
#![expect(
    clippy::disallowed_types,
    reason = "a benchmark measures real elapsed time"
)]

pub mod parse;
pub mod report;
mod setup;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::LabError;
use crate::netns::{Process, Transport};
use crate::topology::VIP4;
use crate::udpgen::{GenReport, SinkReport};
pub use report::{METRICS, Results, Summary};
use setup::{BenchLab, EXTRA_SOURCES, HTTP_PORT, IPERF_PORT, UDP_PORT};

/// The largest loss a UDP rate counts as forwarded at.
pub const MAX_LOSS: f64 = 0.001;

/// A director under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// `tether run`, NAT services.
    TetherNat,
    /// `tether run`, DSR services (backends hold the VIP on `lo` and answer directly).
    TetherDsr,
    /// HAProxy in TCP mode, VIP on the node's `lo`.
    Haproxy,
    /// Kernel nftables DNAT with a `numgen inc mod 3` map, replies un-NATed by conntrack.
    Nftables,
}

impl Mode {
    /// Every mode, in the order they run (nftables last: its conntrack state stays behind).
    pub const ALL: [Mode; 4] = [
        Mode::TetherNat,
        Mode::TetherDsr,
        Mode::Haproxy,
        Mode::Nftables,
    ];

    /// The mode's key in the JSON file and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            Mode::TetherNat => "tether-nat",
            Mode::TetherDsr => "tether-dsr",
            Mode::Haproxy => "haproxy",
            Mode::Nftables => "nftables",
        }
    }

    /// The mode's name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Mode::TetherNat => "Tether NAT",
            Mode::TetherDsr => "Tether DSR",
            Mode::Haproxy => "HAProxy",
            Mode::Nftables => "nftables",
        }
    }

    /// Reads a mode key.
    pub fn from_key(key: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.key() == key)
    }

    fn forwards_udp(self) -> bool {
        self != Mode::Haproxy
    }

    /// Where the UDP sinks listen on the backends.
    fn udp_backend_port(self) -> u16 {
        if self == Mode::TetherDsr {
            UDP_PORT
        } else {
            UDP_PORT + 1
        }
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The `tether` binary (release build) run as the director and for the traffic programs.
    pub exe: PathBuf,
    /// Runs per mode; each figure is the median over them.
    pub runs: usize,
    /// Short measurements, for a smoke run.
    pub quick: bool,
    /// The modes to run.
    pub modes: Vec<Mode>,
    /// Where the JSON results go.
    pub out: PathBuf,
    /// HAProxy threads (the machine's cores).
    pub threads: usize,
    /// Tether agent workers.
    pub tether_workers: usize,
}

impl BenchConfig {
    fn udp_trial(&self) -> Duration {
        if self.quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        }
    }

    fn udp_steps(&self) -> usize {
        if self.quick { 3 } else { 6 }
    }

    fn wrk_seconds(&self) -> u64 {
        if self.quick { 2 } else { 5 }
    }

    fn flows(&self) -> usize {
        if self.quick { 10_000 } else { 100_000 }
    }

    fn held_connections(&self) -> usize {
        if self.quick { 1_000 } else { 5_000 }
    }
}

fn say(message: &str) {
    println!("==> {message}");
    let _ = std::io::stdout().flush();
}

/// Builds the lab, measures every mode and returns the results (also written to `config.out`).
pub fn run(config: &BenchConfig) -> Result<Results, LabError> {
    let started = Instant::now();
    let mut results = Results {
        machine: machine_description(config),
        ..Results::default()
    };
    let stale = crate::netns::Lab::cleanup_stale("bench").unwrap_or_default();
    if !stale.is_empty() {
        say(&format!(
            "removed {} namespaces left by an interrupted benchmark",
            stale.len()
        ));
    }
    say("building the lab: client, director node, three backends with nginx, iperf3 on b1");
    let mut lab = BenchLab::new(&config.exe)?;
    for &mode in &config.modes {
        say(&format!("{}: starting", mode.label()));
        let threads = match mode {
            Mode::TetherNat | Mode::TetherDsr => config.tether_workers,
            Mode::Haproxy | Mode::Nftables => config.threads,
        };
        lab.start(mode, threads)?;
        let outcome = measure_mode(&lab, config, mode, &mut results);
        let stopped = lab.stop(mode);
        outcome?;
        stopped?;
        write_json(config, &results)?;
    }
    drop(lab);
    say(&format!("finished in {:.0?}", started.elapsed()));
    Ok(results)
}

fn write_json(config: &BenchConfig, results: &Results) -> Result<(), LabError> {
    let json = serde_json::to_string_pretty(results).map_err(|e| LabError::Protocol {
        peer: "results".to_owned(),
        reason: e.to_string(),
    })?;
    std::fs::write(&config.out, json + "\n")
        .map_err(|e| LabError::io(format!("writing {}", config.out.display()), e))
}

fn machine_description(config: &BenchConfig) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    m.insert("cpu_model".into(), model);
    m.insert(
        "cpus".into(),
        thread::available_parallelism()
            .map_or(0, std::num::NonZero::get)
            .to_string(),
    );
    m.insert(
        "kernel".into(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    );
    m.insert("runs".into(), config.runs.to_string());
    m.insert("quick".into(), config.quick.to_string());
    m.insert("haproxy_threads".into(), config.threads.to_string());
    m.insert("tether_workers".into(), config.tether_workers.to_string());
    m.insert(
        "load_before".into(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    );
    m
}

/// Where CPU time goes during a measurement: the director process, and the whole machine.
struct CpuSnapshot {
    process_ticks: Option<u64>,
    machine: parse::CpuTimes,
    node_rx: u64,
}

/// CPU seconds of one measurement, and the packets the director node received meanwhile.
struct CpuUse {
    process_s: Option<f64>,
    kernel_s: f64,
    busy_s: f64,
    packets: u64,
}

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

fn snapshot(lab: &BenchLab) -> Result<CpuSnapshot, LabError> {
    let process_ticks = match lab.director_pid() {
        Some(pid) => Some(parse::parse_proc_stat_ticks(&read(&format!(
            "/proc/{pid}/stat"
        ))?)?),
        None => None,
    };
    let machine = parse::parse_cpu_times(&read("/proc/stat")?)?;
    let links = lab.node.exec(&["ip", "-j", "-s", "link", "show"])?;
    let node_rx = parse::parse_rx_packets(&String::from_utf8_lossy(&links.stdout))?;
    Ok(CpuSnapshot {
        process_ticks,
        machine,
        node_rx,
    })
}

fn cpu_since(lab: &BenchLab, before: &CpuSnapshot) -> Result<CpuUse, LabError> {
    let after = snapshot(lab)?;
    let machine = after.machine.since(&before.machine);
    Ok(CpuUse {
        process_s: match (before.process_ticks, after.process_ticks) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / TICKS),
            _ => None,
        },
        kernel_s: machine.kernel() as f64 / TICKS,
        busy_s: machine.busy() as f64 / TICKS,
        packets: after.node_rx.saturating_sub(before.node_rx),
    })
}

impl CpuUse {
    /// The director's CPU seconds per million of `packets`: its process time, or for the
    /// kernel's nftables the machine's kernel time.
    fn director_per_mpkt(&self, packets: u64) -> Option<f64> {
        let seconds = self.process_s.unwrap_or(self.kernel_s);
        (packets > 0).then(|| seconds * 1e6 / packets as f64)
    }

    /// The whole machine's busy CPU seconds per million of `packets`.
    fn machine_per_mpkt(&self, packets: u64) -> Option<f64> {
        (packets > 0).then(|| self.busy_s * 1e6 / packets as f64)
    }
}

fn read(path: &str) -> Result<String, LabError> {
    std::fs::read_to_string(path).map_err(|e| LabError::io(format!("reading {path}"), e))
}

fn measure_mode(
    lab: &BenchLab,
    config: &BenchConfig,
    mode: Mode,
    results: &mut Results,
) -> Result<(), LabError> {
    let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    let mut push = |key: &'static str, v: Option<f64>| {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            samples.entry(key).or_default().push(v);
        }
    };
    let mut notes = Vec::new();
    for run in 1..=config.runs {
        if mode.forwards_udp() {
            let udp = udp_search(lab, config, mode)?;
            say(&format!(
                "{} run {run}: UDP {:.0} pps at <= 0.1% loss (offered max: {:.0} pps sent, {:.0} received, {:.2}% lost)",
                mode.label(),
                udp.best_pps,
                udp.max_sent_pps,
                udp.max_received_pps,
                udp.max_loss * 100.0
            ));
            push("udp_pps", Some(udp.best_pps));
            push("udp_max_pps", Some(udp.max_received_pps));
            push("udp_max_loss_pct", Some(udp.max_loss * 100.0));
            push("cpu_s_per_mpkt_udp", udp.cpu_per_mpkt);
            push("machine_s_per_mpkt_udp", udp.machine_per_mpkt);
            if udp.max_loss <= MAX_LOSS {
                notes.push(format!(
                    "run {run}: no UDP loss at the generator's maximum ({:.0} pps): the UDP \
                     figure is the generator's limit, a lower bound for the director",
                    udp.max_sent_pps
                ));
            }
        }
        let close = wrk(lab, config, true)?;
        say(&format!(
            "{} run {run}: {:.0} new connections/s ({} socket errors, {} bad responses)",
            mode.label(),
            close.requests_per_s,
            close.socket_errors,
            close.bad_responses
        ));
        push("conn_per_s", Some(close.requests_per_s));
        let connect = connect_latency(lab)?;
        say(&format!(
            "{} run {run}: TCP connect (SYN to SYN-ACK) p50 {:.0} us, p99 {:.0} us ({}/{CONNECTS} connected)",
            mode.label(),
            connect.p50_us,
            connect.p99_us,
            connect.connected
        ));
        if connect.connected < CONNECTS {
            notes.push(format!(
                "run {run}: {} of {CONNECTS} connects failed (2 s timeout); the connect times \
                 are those of the {} that succeeded",
                CONNECTS - connect.connected,
                connect.connected
            ));
        }
        push("connect_p50_us", Some(connect.p50_us));
        push("connect_p99_us", Some(connect.p99_us));
        let before = snapshot(lab)?;
        let keep = wrk(lab, config, false)?;
        let cpu = cpu_since(lab, &before)?;
        say(&format!(
            "{} run {run}: keep-alive {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms; director {:.3} CPU s / Mpkt",
            mode.label(),
            keep.requests_per_s,
            keep.p50_ms.unwrap_or(f64::NAN),
            keep.p99_ms.unwrap_or(f64::NAN),
            cpu.director_per_mpkt(cpu.packets).unwrap_or(f64::NAN),
        ));
        push("http_rps", Some(keep.requests_per_s));
        push("http_p50_ms", keep.p50_ms);
        push("http_p99_ms", keep.p99_ms);
        push("cpu_s_per_mpkt_http", cpu.director_per_mpkt(cpu.packets));
        push("machine_s_per_mpkt_http", cpu.machine_per_mpkt(cpu.packets));
        let bulk = iperf(lab, config)?;
        say(&format!(
            "{} run {run}: iperf3 {:.2} Gbit/s ({} retransmits)",
            mode.label(),
            bulk.received_bps / 1e9,
            bulk.retransmits
        ));
        push("iperf_gbps", Some(bulk.received_bps / 1e9));
    }
    let memory = memory_per_million(lab, config, mode)?;
    say(&format!(
        "{}: {:.1} MB per million flows ({})",
        mode.label(),
        memory.0,
        memory.1
    ));
    push("mem_mb_per_mflow", Some(memory.0));
    notes.push(format!("memory: {}", memory.1));
    results.record(mode, &samples);
    results.notes.insert(mode.key().to_owned(), notes);
    Ok(())
}

/// One UDP trial: offered and received counts, and the CPU it took.
struct UdpTrial {
    sent: GenReport,
    received: u64,
    cpu: CpuUse,
}

impl UdpTrial {
    fn loss(&self) -> f64 {
        if self.sent.sent == 0 {
            1.0
        } else {
            1.0 - (self.received as f64 / self.sent.sent as f64).min(1.0)
        }
    }

    fn received_pps(&self) -> f64 {
        if self.sent.elapsed_us == 0 {
            0.0
        } else {
            self.received as f64 * 1e6 / self.sent.elapsed_us as f64
        }
    }
}

struct UdpResult {
    best_pps: f64,
    max_sent_pps: f64,
    max_received_pps: f64,
    max_loss: f64,
    cpu_per_mpkt: Option<f64>,
    machine_per_mpkt: Option<f64>,
}

/// The highest rate forwarded at no more than [`MAX_LOSS`]: a trial as fast as the generator
/// goes, then a bisection between the best passing and the lowest failing rate.
fn udp_search(lab: &BenchLab, config: &BenchConfig, mode: Mode) -> Result<UdpResult, LabError> {
    let max = udp_trial(lab, config, mode, 0)?;
    let mut result = UdpResult {
        best_pps: 0.0,
        max_sent_pps: max.sent.rate(),
        max_received_pps: max.received_pps(),
        max_loss: max.loss(),
        cpu_per_mpkt: None,
        machine_per_mpkt: None,
    };
    // CPU per packet from the passing trial nearest the limit (or the flat-out one).
    let mut cpu_trial_pps = 0.0;
    let mut record_cpu = |result: &mut UdpResult, trial: &UdpTrial| {
        if trial.received_pps() >= cpu_trial_pps {
            cpu_trial_pps = trial.received_pps();
            result.cpu_per_mpkt = trial.cpu.director_per_mpkt(trial.received);
            result.machine_per_mpkt = trial.cpu.machine_per_mpkt(trial.received);
        }
    };
    if max.loss() <= MAX_LOSS {
        result.best_pps = max.received_pps();
        record_cpu(&mut result, &max);
        return Ok(result);
    }
    let mut low = 0.0_f64;
    let mut high = max.sent.rate();
    let mut rate = max.received_pps() * 0.95;
    for _ in 0..config.udp_steps() {
        // At least 1 pps: a rate of 0 would mean "flat out" to the generator.
        let trial = udp_trial(lab, config, mode, (rate as u64).max(1))?;
        if trial.loss() <= MAX_LOSS {
            result.best_pps = result.best_pps.max(trial.received_pps());
            record_cpu(&mut result, &trial);
            low = rate;
        } else {
            high = rate;
        }
        rate = f64::midpoint(low, high);
    }
    Ok(result)
}

fn udp_trial(
    lab: &BenchLab,
    config: &BenchConfig,
    mode: Mode,
    rate: u64,
) -> Result<UdpTrial, LabError> {
    let trial = config.udp_trial();
    let sinks = start_sinks(
        lab,
        mode.udp_backend_port(),
        trial + Duration::from_secs(10),
    )?;
    let before = snapshot(lab)?;
    let out = lab.client.exec(&[
        lab.exe(),
        "lab",
        "udp-gen",
        "--target",
        &format!("{VIP4}:{UDP_PORT}"),
        "--rate",
        &rate.to_string(),
        "--duration-ms",
        &trial.as_millis().to_string(),
        "--flows",
        "64",
        "--threads",
        "2",
        "--payload",
        "64",
    ])?;
    let cpu = cpu_since(lab, &before)?;
    let sent = GenReport::from_json(&String::from_utf8_lossy(&out.stdout))?;
    let received = collect_sinks(sinks)?.iter().map(|r| r.received).sum();
    Ok(UdpTrial {
        sent,
        received,
        cpu,
    })
}

fn start_sinks(lab: &BenchLab, port: u16, max: Duration) -> Result<Vec<Process>, LabError> {
    let mut sinks = Vec::new();
    for b in &lab.backends {
        sinks.push(b.spawn(&[
            lab.exe(),
            "lab",
            "udp-sink",
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--idle-ms",
            "500",
            "--max-ms",
            &max.as_millis().to_string(),
        ])?);
    }
    for b in &lab.backends {
        b.wait_listening(Transport::Udp, port, Duration::from_secs(10))?;
    }
    Ok(sinks)
}

fn collect_sinks(sinks: Vec<Process>) -> Result<Vec<SinkReport>, LabError> {
    let mut reports = Vec::new();
    for mut sink in sinks {
        let status = sink.wait_timeout(Duration::from_mins(1))?;
        if !status.is_some_and(|s| s.success()) {
            let _ = sink.stop();
            return Err(LabError::Protocol {
                peer: "UDP sink".to_owned(),
                reason: format!("did not report: {}", sink.stderr()),
            });
        }
        reports.push(SinkReport::from_json(&sink.stdout())?);
    }
    Ok(reports)
}

fn wrk(lab: &BenchLab, config: &BenchConfig, close: bool) -> Result<parse::WrkResult, LabError> {
    let seconds = format!("{}s", config.wrk_seconds());
    let url = format!("http://{VIP4}:{HTTP_PORT}/");
    let mut args = vec![
        "wrk",
        "-t2",
        if close { "-c32" } else { "-c64" },
        "-d",
        &seconds,
        "--latency",
        "--timeout",
        "2s",
    ];
    if close {
        args.extend(["-H", "Connection: close"]);
    }
    args.push(&url);
    let out = lab.client.exec(&args)?;
    parse::parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// Sequential TCP connects through the VIP per run of [`connect_latency`].
const CONNECTS: u64 = 500;

/// What [`connect_latency`] measured.
struct ConnectTimes {
    /// Connects that succeeded (the times are theirs).
    connected: u64,
    p50_us: f64,
    p99_us: f64,
}

/// Median and 99th percentile of [`CONNECTS`] sequential TCP connects through the VIP, in µs.
fn connect_latency(lab: &BenchLab) -> Result<ConnectTimes, LabError> {
    let out = lab.client.exec(&[
        lab.exe(),
        "lab",
        "tcp-connect",
        "--target",
        &format!("{VIP4}:{HTTP_PORT}"),
        "--count",
        &CONNECTS.to_string(),
    ])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
    };
    let connected = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("connected="))
        .and_then(|v| v.parse().ok());
    match (connected, field("p50_us="), field("p99_us=")) {
        (Some(connected), Some(p50_us), Some(p99_us)) => Ok(ConnectTimes {
            connected,
            p50_us,
            p99_us,
        }),
        _ => Err(LabError::Protocol {
            peer: "tether lab tcp-connect".to_owned(),
            reason: format!("no connected=, p50_us= and p99_us= in {text:?}"),
        }),
    }
}

fn iperf(lab: &BenchLab, config: &BenchConfig) -> Result<parse::IperfResult, LabError> {
    let out = lab.client.output(&[
        "iperf3",
        "-c",
        &VIP4.to_string(),
        "-p",
        &IPERF_PORT.to_string(),
        "-t",
        &config.wrk_seconds().to_string(),
        "-J",
    ])?;
    parse::parse_iperf3(&String::from_utf8_lossy(&out.stdout))
}

/// Memory per million flows in MB, and how it was measured.
fn memory_per_million(
    lab: &BenchLab,
    config: &BenchConfig,
    mode: Mode,
) -> Result<(f64, String), LabError> {
    if mode == Mode::Haproxy {
        return haproxy_memory(lab, config);
    }
    let flows = config.flows();
    let sinks = start_sinks(lab, mode.udp_backend_port(), Duration::from_mins(2))?;
    let before = flow_memory(lab, mode)?;
    let mut sources = vec![crate::topology::CLIENT4.to_string()];
    sources.extend(EXTRA_SOURCES.iter().map(|s| (*s).to_owned()));
    let out = lab.client.exec(&[
        lab.exe(),
        "lab",
        "udp-flows",
        "--target",
        &format!("{VIP4}:{UDP_PORT}"),
        "--sources",
        &sources.join(","),
        "--count",
        &flows.to_string(),
        "--rate",
        "20000",
    ])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let opened: u64 = text.trim().parse().map_err(|_| LabError::Protocol {
        peer: "tether lab udp-flows".to_owned(),
        reason: format!("not a flow count: {text:?}"),
    })?;
    thread::sleep(Duration::from_secs(2));
    let after = flow_memory(lab, mode)?;
    let reports = collect_sinks(sinks)?;
    let delivered: u64 = reports.iter().map(|r| r.sources).sum();
    let created = after.1.saturating_sub(before.1);
    let bytes = after.0.saturating_sub(before.0);
    let per_million = if created == 0 {
        f64::NAN
    } else {
        bytes as f64 / created as f64
    };
    let how = match mode {
        Mode::Nftables => format!(
            "{created} new conntrack entries (nf_conntrack_count in the node's namespace) times \
             the nf_conntrack slab object size; {opened} UDP flows opened, {delivered} reached \
             the backends"
        ),
        _ => format!(
            "growth of the tether process's RSS over {created} new flows (the manager's flow \
             count); {opened} UDP flows opened, {delivered} reached the backends"
        ),
    };
    Ok((per_million, how))
}

/// Bytes attributable to flows, and the flow count, for Tether (RSS, manager flows) or
/// nftables (conntrack entries times the conntrack object size).
fn flow_memory(lab: &BenchLab, mode: Mode) -> Result<(u64, u64), LabError> {
    if mode == Mode::Nftables {
        let text = String::from_utf8_lossy(
            &lab.node
                .exec(&["cat", "/proc/sys/net/netfilter/nf_conntrack_count"])?
                .stdout,
        )
        .into_owned();
        let count: u64 = text.trim().parse().map_err(|_| LabError::Protocol {
            peer: "nf_conntrack_count".to_owned(),
            reason: format!("not a number: {text:?}"),
        })?;
        let size = parse::parse_slab_objsize(&read("/proc/slabinfo")?, "nf_conntrack").ok_or_else(
            || LabError::Protocol {
                peer: "/proc/slabinfo".to_owned(),
                reason: "no nf_conntrack slab".to_owned(),
            },
        )?;
        return Ok((count * size, count));
    }
    let pid = lab.director_pid().ok_or_else(|| LabError::Invalid {
        what: "director",
        value: mode.label().to_owned(),
        reason: "no tether process runs",
    })?;
    let rss = parse::parse_vm_rss(&read(&format!("/proc/{pid}/status"))?)?;
    let flows = lab
        .tether_status()
        .and_then(|s| s.pointer("/manager/flows").and_then(Value::as_u64))
        .unwrap_or(0);
    Ok((rss, flows))
}

/// HAProxy's RSS growth per held client connection (each with its server connection).
fn haproxy_memory(lab: &BenchLab, config: &BenchConfig) -> Result<(f64, String), LabError> {
    let pid = lab.director_pid().ok_or_else(|| LabError::Invalid {
        what: "director",
        value: "HAProxy".to_owned(),
        reason: "no haproxy process runs",
    })?;
    let rss =
        || -> Result<u64, LabError> { parse::parse_vm_rss(&read(&format!("/proc/{pid}/status"))?) };
    let count = config.held_connections();
    let before = rss()?;
    let mut holder = lab.client.spawn(&[
        lab.exe(),
        "lab",
        "tcp-hold",
        "--target",
        &format!("{VIP4}:{HTTP_PORT}"),
        "--count",
        &count.to_string(),
        "--hold-ms",
        "60000",
    ])?;
    let deadline = Instant::now() + Duration::from_mins(1);
    let held = loop {
        if let Some(line) = holder.stdout().lines().find(|l| l.starts_with("held ")) {
            break line
                .trim_start_matches("held ")
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
        if Instant::now() >= deadline || holder.try_wait()?.is_some() {
            let _ = holder.stop();
            return Err(LabError::Timeout {
                what: format!("{count} held connections: {}", holder.stderr()),
                waited: Duration::from_mins(1),
            });
        }
        thread::sleep(Duration::from_millis(100));
    };
    thread::sleep(Duration::from_secs(1));
    let after = rss()?;
    let _ = holder.stop();
    let per_million = if held == 0 {
        f64::NAN
    } else {
        after.saturating_sub(before) as f64 / held as f64
    };
    Ok((
        per_million,
        format!(
            "growth of haproxy's RSS over {held} held client connections (each with its server \
             connection)"
        ),
    ))
}

/// Connects to `target` `count` times, one connection after another (each closed at once),
/// and returns the connect times in microseconds, sorted; failed connects are left out.
pub fn connect_times(target: SocketAddr, count: usize) -> Vec<u64> {
    let mut times: Vec<u64> = (0..count)
        .filter_map(|_| {
            let start = Instant::now();
            let stream = TcpStream::connect_timeout(&target, Duration::from_secs(2)).ok()?;
            let took = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            drop(stream);
            Some(took)
        })
        .collect();
    times.sort_unstable();
    times
}

/// The `q` quantile (0 to 1) of sorted values.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied()
}

/// Opens `count` TCP connections to `target`, one after another, and keeps them open for
/// `hold`; calls `ready` with the number open once all have been tried.
pub fn hold_connections(
    target: SocketAddr,
    count: usize,
    hold: Duration,
    ready: impl FnOnce(usize),
) -> usize {
    let mut open = Vec::with_capacity(count);
    for _ in 0..count {
        if let Ok(stream) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) {
            open.push(stream);
        }
    }
    let n = open.len();
    ready(n);
    thread::sleep(hold);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_times_and_quantiles() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let target = listener.local_addr().expect("bound");
        let times = connect_times(target, 20);
        assert_eq!(times.len(), 20, "every connect to a listener succeeds");
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "sorted");
        assert_eq!(quantile(&[1, 2, 3, 4, 5], 0.5), Some(3));
        assert_eq!(quantile(&[1, 2, 3, 4, 5], 0.99), Some(5));
        assert_eq!(quantile(&[], 0.5), None);
        drop(listener);
        assert!(
            connect_times(target, 3).is_empty(),
            "nobody listens any more"
        );
    }
}

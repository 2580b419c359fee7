//! `tether lab ...`: the lab's traffic programs as processes, for tests and the demo. Servers
//! run until SIGTERM (its default action ends them; a stream server with `--report` catches it,
//! stops and writes its report); clients print a report and exit.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use tether_lab::bench::{self, BenchConfig, Mode};
use tether_lab::stream::{self, StreamClientConfig};
use tether_lab::udpgen::{self, GenConfig, SinkConfig};
use tether_lab::{StopFlag, http, udp};

/// Lab traffic programs.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Accept checksummed streams and verify every byte, until SIGTERM (with `--report`, then
    /// write one record per connection as JSON).
    StreamServer(StreamServerArgs),
    /// Open checksummed streams to a target and report how each one ended; exits non-zero
    /// unless all completed intact.
    StreamClient(StreamClientArgs),
    /// Serve HTTP/1.1, answering with this server's name, until SIGTERM.
    HttpServer(ServerArgs),
    /// Echo UDP datagrams, prefixed with this server's name, until SIGTERM.
    UdpEcho(ServerArgs),
    /// Send UDP datagrams from several source ports and report which server answered each.
    UdpClient(UdpClientArgs),
    /// Send HTTP GETs, each on its own connection, and count the answers per backend.
    HttpGet(HttpGetArgs),
    /// Send small UDP datagrams from many source ports at a rate; print a JSON report.
    UdpGen(UdpGenArgs),
    /// Count UDP datagrams until the traffic stops; print a JSON report.
    UdpSink(UdpSinkArgs),
    /// Send one UDP datagram from each of many source addresses and ports (new flows); print
    /// how many were sent.
    UdpFlows(UdpFlowsArgs),
    /// Connect to a target many times, one after another; print `connected=N p50_us=… p99_us=…`.
    TcpConnect(TcpConnectArgs),
    /// Open TCP connections and hold them; print `held N` once they are open.
    TcpHold(TcpHoldArgs),
    /// Benchmark Tether NAT and DSR, nftables and HAProxy side by side in one namespace lab
    /// (`scripts/bench` installs the tools and runs this; needs root).
    Bench(BenchArgs),
}

/// Arguments of `tether lab udp-gen`.
#[derive(Debug, Args)]
pub struct UdpGenArgs {
    /// Address and port to send to (a VIP or a server).
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Datagrams per second over all threads; 0 sends as fast as possible.
    #[arg(long, value_name = "PPS", default_value_t = 0)]
    pub rate: u64,
    /// How long to send, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    pub duration_ms: u64,
    /// Source ports (flows).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub flows: usize,
    /// Sending threads.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub threads: usize,
    /// UDP payload bytes per datagram (at least 8).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub payload: usize,
}

/// Arguments of `tether lab udp-sink`.
#[derive(Debug, Args)]
pub struct UdpSinkArgs {
    /// Address and port to receive on (0.0.0.0:PORT also takes a VIP on lo).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Receiving sockets and threads (SO_REUSEPORT).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Report once nothing arrived for this many milliseconds after the first datagram.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub idle_ms: u64,
    /// Report after this many milliseconds in any case.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub max_ms: u64,
}

/// Arguments of `tether lab udp-flows`.
#[derive(Debug, Args)]
pub struct UdpFlowsArgs {
    /// Address and port to send to.
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Local source addresses, comma-separated; each gives 50000 flows (ports 10000-59999).
    #[arg(long, value_name = "IPS", value_delimiter = ',', required = true)]
    pub sources: Vec<IpAddr>,
    /// Flows to open.
    #[arg(long, value_name = "N")]
    pub count: usize,
    /// Flows per second at most; 0 for no limit.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub rate: u64,
}

/// Arguments of `tether lab tcp-connect`.
#[derive(Debug, Args)]
pub struct TcpConnectArgs {
    /// Address and port to connect to.
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Connections to open (each closed at once).
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub count: usize,
}

/// Arguments of `tether lab tcp-hold`.
#[derive(Debug, Args)]
pub struct TcpHoldArgs {
    /// Address and port to connect to.
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Connections to open.
    #[arg(long, value_name = "N")]
    pub count: usize,
    /// How long to hold them once open, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub hold_ms: u64,
}

/// Arguments of `tether lab bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Runs per director; every figure is the median over them [default: 5, 1 with --quick].
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
    /// Short measurements and fewer flows: a smoke run, not figures to quote.
    #[arg(long)]
    pub quick: bool,
    /// Directors to run, comma-separated; they run in the order tether-nat, tether-dsr,
    /// haproxy, nftables whatever the order given (nftables last: its conntrack state stays
    /// in the node's kernel).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tether-nat,tether-dsr,haproxy,nftables"
    )]
    pub modes: Vec<String>,
    /// Where the raw medians, ranges and runs go, as JSON.
    #[arg(long, value_name = "FILE", default_value = "target/bench/results.json")]
    pub out: PathBuf,
    /// HAProxy threads (nbthread), 1 to 64 [default: the number of CPUs, at most 64].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
    /// Tether agent workers (`agent.workers`), 1 to 16.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub tether_workers: u16,
}

fn bench_run(args: &BenchArgs) -> anyhow::Result<()> {
    let mut modes = Vec::new();
    for key in &args.modes {
        let Some(mode) = Mode::from_key(key) else {
            let known: Vec<&str> = Mode::ALL.iter().map(|m| m.key()).collect();
            bail!("unknown director {key:?}: use {}", known.join(", "));
        };
        modes.push(mode);
    }
    modes.sort_unstable();
    modes.dedup();
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 5 });
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get().min(64)),
        usize::from,
    );
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let config = BenchConfig {
        exe: std::env::current_exe()?,
        runs,
        quick: args.quick,
        modes,
        out: args.out.clone(),
        threads,
        tether_workers: usize::from(args.tether_workers),
    };
    let results = bench::run(&config)?;
    println!(
        "\nMedians (min–max) over {runs} run(s):\n\n{}",
        results.medians_table()
    );
    println!("Ratios of the medians:\n\n{}", results.ratio_table());
    println!("raw figures: {}", args.out.display());
    Ok(())
}

/// A server's listen address and name.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address and port to listen on, like 10.0.1.11:8080.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Name reported to clients, so they can tell backends apart.
    #[arg(long)]
    pub name: String,
}

/// Where a stream server listens, its name, and where it reports its connections.
#[derive(Debug, Args)]
pub struct StreamServerArgs {
    /// The address to listen on.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The name announced to every client.
    #[arg(long)]
    pub name: String,
    /// On SIGTERM or SIGINT, stop and write a JSON report with one record per connection
    /// (client address, stream number, bytes received and verified, bytes sent, complete or
    /// not) to PATH.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

/// Arguments of `tether lab stream-client`.
#[derive(Debug, Args)]
pub struct StreamClientArgs {
    /// Address and port to connect to (a server or a VIP).
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Streams run at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub streams: u32,
    /// Payload bytes each side sends per stream.
    #[arg(long, value_name = "B", default_value_t = 1 << 20)]
    pub bytes: u64,
    /// Bytes per second each side sends per stream at most (makes streams last).
    #[arg(long, value_name = "BPS")]
    pub rate: Option<u64>,
    /// Milliseconds without progress after which a stream counts as stalled.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub stall_timeout_ms: u64,
    /// Milliseconds each connection may take to open.
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    pub connect_timeout_ms: u64,
    /// Local address to connect from.
    #[arg(long, value_name = "IP")]
    pub source: Option<IpAddr>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tether lab udp-client`.
#[derive(Debug, Args)]
pub struct UdpClientArgs {
    /// Address and port to send to (a server or a VIP).
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Source ports (flows) sending at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub ports: usize,
    /// Datagrams per source port.
    #[arg(
        long,
        value_name = "N",
        visible_alias = "datagrams",
        default_value_t = 100
    )]
    pub count: usize,
    /// Milliseconds after which an unanswered datagram counts as lost.
    #[arg(long, value_name = "MS", default_value_t = 1_000)]
    pub timeout_ms: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tether lab http-get`.
#[derive(Debug, Args)]
pub struct HttpGetArgs {
    /// Address and port to send to (a server or a VIP).
    #[arg(long, value_name = "ADDR")]
    pub target: SocketAddr,
    /// Requests to send, one after another.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub count: usize,
    /// Milliseconds a request may take.
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    pub timeout_ms: u64,
}

/// Sends `args.count` requests and prints `b1=N b2=N ... failed=N` (backends by name, sorted).
fn http_get(args: &HttpGetArgs) -> ExitCode {
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    let mut failed = 0;
    for _ in 0..args.count {
        match http::get(args.target, "/", Duration::from_millis(args.timeout_ms)) {
            Ok((200, body)) => {
                let name = body
                    .trim()
                    .strip_prefix("backend=")
                    .unwrap_or(body.trim())
                    .to_owned();
                *answers.entry(name).or_default() += 1;
            }
            Ok(_) | Err(_) => failed += 1,
        }
    }
    let mut line: Vec<String> = answers
        .iter()
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    line.push(format!("failed={failed}"));
    println!("{}", line.join(" "));
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Sets `stop` when SIGTERM or SIGINT arrives; the handlers are in place when this returns.
fn stop_on_signals(stop: &StopFlag) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal handler's runtime")?;
    let (mut terminate, mut interrupt) = runtime
        .block_on(async {
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })
        .context("installing the SIGTERM and SIGINT handlers")?;
    let stop = stop.clone();
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            });
            stop.stop();
        })
        .context("starting the signal handler's thread")?;
    Ok(())
}

/// Runs a lab traffic program.
pub fn run(command: &LabCommand) -> anyhow::Result<ExitCode> {
    let stop = StopFlag::new();
    match command {
        LabCommand::StreamServer(a) => match &a.report {
            None => {
                stream::serve(a.listen, &a.name, &stop)?;
            }
            Some(path) => {
                let listener = std::net::TcpListener::bind(a.listen)
                    .with_context(|| format!("binding TCP {}", a.listen))?;
                stop_on_signals(&stop)?;
                let report = stream::serve_reporting(&listener, &a.name, &stop)?;
                std::fs::write(path, report.to_json() + "\n")
                    .with_context(|| format!("writing the report to {}", path.display()))?;
            }
        },
        LabCommand::HttpServer(a) => http::serve(a.listen, &a.name, &stop)?,
        LabCommand::UdpEcho(a) => {
            udp::echo_serve(a.listen, &a.name, &stop)?;
        }
        LabCommand::StreamClient(a) => {
            let mut config = StreamClientConfig::new(a.target);
            config.streams = a.streams;
            config.bytes_per_stream = a.bytes;
            config.rate_limit_per_stream = a.rate;
            config.stall_timeout = Duration::from_millis(a.stall_timeout_ms);
            config.connect_timeout = Duration::from_millis(a.connect_timeout_ms);
            config.source_ip = a.source;
            let report = stream::run(&config);
            if a.json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            if !report.all_complete() {
                return Ok(ExitCode::FAILURE);
            }
        }
        LabCommand::HttpGet(a) => return Ok(http_get(a)),
        LabCommand::UdpGen(a) => {
            let report = udpgen::generate(&GenConfig {
                target: a.target,
                rate: a.rate,
                duration: Duration::from_millis(a.duration_ms),
                flows: a.flows,
                threads: a.threads,
                payload: a.payload,
            })?;
            println!("{}", report.to_json());
        }
        LabCommand::UdpSink(a) => {
            let report = udpgen::sink(&SinkConfig {
                listen: a.listen,
                threads: a.threads,
                idle: Duration::from_millis(a.idle_ms),
                max: Duration::from_millis(a.max_ms),
            })?;
            println!("{}", report.to_json());
        }
        LabCommand::UdpFlows(a) => {
            println!(
                "{}",
                udpgen::open_flows(a.target, &a.sources, a.count, a.rate)?
            );
        }
        LabCommand::TcpConnect(a) => {
            let times = bench::connect_times(a.target, a.count);
            let q =
                |q| bench::quantile(&times, q).map_or_else(|| "none".to_owned(), |v| v.to_string());
            println!(
                "connected={} p50_us={} p99_us={}",
                times.len(),
                q(0.5),
                q(0.99)
            );
            if times.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        LabCommand::TcpHold(a) => {
            bench::hold_connections(a.target, a.count, Duration::from_millis(a.hold_ms), |n| {
                println!("held {n}");
            });
        }
        LabCommand::Bench(a) => bench_run(a)?,
        LabCommand::UdpClient(a) => {
            let timeout = Duration::from_millis(a.timeout_ms);
            let report = udp::run_clients(a.target, a.ports, a.count, timeout);
            if a.json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

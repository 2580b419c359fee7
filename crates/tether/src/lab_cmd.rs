//! `tether lab ...`: the lab's traffic programs as processes, for tests and the demo. Servers
//! run until SIGTERM (its default action ends them; a stream server with `--report` catches it,
//! stops and writes its report); clients print a report and exit.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tether_lab::stream::{self, StreamClientConfig};
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
    /// (client address, stream number, verified bytes each way, complete or not) to PATH.
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

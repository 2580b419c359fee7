//! `tether lab ...`: the lab's traffic programs as processes, for tests and the demo.

use clap::{Args, Subcommand};

/// Lab traffic programs.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Accept checksummed streams and verify every byte.
    StreamServer(ServerArgs),
    /// Open checksummed streams to a target and report each one.
    StreamClient(StreamClientArgs),
    /// Serve HTTP answering with this server's name.
    HttpServer(ServerArgs),
    /// Echo UDP datagrams, prefixed with this server's name.
    UdpEcho(ServerArgs),
    /// Send UDP datagrams from several ports and report which server answered each flow.
    UdpClient(UdpClientArgs),
}

/// A server's listen address and name.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Name reported to clients.
    #[arg(long)]
    pub name: String,
}

/// Arguments of `tether lab stream-client`.
#[derive(Debug, Args)]
pub struct StreamClientArgs {
    /// Address to connect to.
    #[arg(long, value_name = "ADDR")]
    pub target: String,
    /// Concurrent streams.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub streams: usize,
    /// Bytes each stream sends.
    #[arg(long, value_name = "B")]
    pub bytes: u64,
    /// Bytes per second each stream sends at most.
    #[arg(long, value_name = "R")]
    pub rate: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tether lab udp-client`.
#[derive(Debug, Args)]
pub struct UdpClientArgs {
    /// Address to send to.
    #[arg(long, value_name = "ADDR")]
    pub target: String,
    /// Source ports (flows) to send from.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub ports: usize,
    /// Datagrams per port.
    #[arg(long, value_name = "N")]
    pub count: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a lab traffic program.
pub fn run(command: &LabCommand) -> anyhow::Result<()> {
    let _ = command;
    anyhow::bail!("the lab traffic programs are not in this build yet")
}

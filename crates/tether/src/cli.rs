//! The command line: subcommands, their arguments and help texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::demo::DemoArgs;
use crate::lab_cmd::LabCommand;

/// The admin API address commands talk to unless told otherwise.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9090";

/// Tether: spread TCP and UDP flows over servers, and keep every established connection alive
/// through the failure of any single Tether node.
#[derive(Debug, Parser)]
#[command(name = "tether", version, propagate_version = true)]
pub struct Cli {
    /// Log level (error, warn, info, debug, trace) when RUST_LOG is not set.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "info")]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Tether's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the roles the configuration names (manager, agent, or both) until SIGTERM or SIGINT.
    Run(ConfigArg),
    /// Validate a configuration file and say what it would run; exits non-zero on errors.
    Check(ConfigArg),
    /// Show services, backends, agents and counters of a running node (from its admin API).
    Status(StatusArgs),
    /// Change a backend's administrative state on a running manager.
    #[command(subcommand)]
    Backend(BackendCommand),
    /// Build a namespace lab with clients, one Tether node and three backends, and show
    /// flows spreading, draining and failing over (needs root).
    Demo(DemoArgs),
    /// Traffic programs of the namespace lab, run as processes by tests and the demo.
    #[command(subcommand, hide = true)]
    Lab(LabCommand),
}

/// A configuration file argument.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Path of the TOML configuration (see docs/configuration.md and examples/).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Where a running node's admin API is.
#[derive(Debug, Args)]
pub struct AdminArg {
    /// Address of the node's admin API (its `admin.listen`).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_ADMIN)]
    pub admin: String,
}

/// Arguments of `tether status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The node to ask.
    #[command(flatten)]
    pub admin: AdminArg,
    /// Print the admin API's JSON instead of tables (for scripts).
    #[arg(long)]
    pub json: bool,
}

/// `tether backend` actions.
#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// Take no new flows but let the backend's established flows finish.
    Drain(BackendTarget),
    /// Let the backend take new flows again.
    Enable(BackendTarget),
    /// Take no new flows and stop renewing the backend's flows.
    Disable(BackendTarget),
}

impl BackendCommand {
    /// The action's name in the admin API path, and its target.
    pub fn parts(&self) -> (&'static str, &BackendTarget) {
        match self {
            Self::Drain(t) => ("drain", t),
            Self::Enable(t) => ("enable", t),
            Self::Disable(t) => ("disable", t),
        }
    }
}

/// A backend of a service, on a node.
#[derive(Debug, Args)]
pub struct BackendTarget {
    /// Service name, as `tether status` shows it.
    pub service: String,
    /// Backend name within the service.
    pub backend: String,
    /// The manager's admin API.
    #[command(flatten)]
    pub admin: AdminArg,
}

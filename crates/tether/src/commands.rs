//! What each subcommand does, from parsed arguments to exit code.

use core::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tracing_subscriber::EnvFilter;

use crate::admin::ControlReply;
use crate::cli::{BackendCommand, Cli, Command, StatusArgs};
use crate::report::StatusReport;
use crate::{client, config, daemon, demo, lab_cmd, status_view};

/// Runs the command `cli` names.
pub fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(arg) => {
            init_logging(&cli.log_level)?;
            let config = match config::load(&arg.config) {
                Ok(config) => config,
                Err(errors) => {
                    eprintln!("{errors}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            tracing::info!(node = %config.node, roles = ?config.roles(), "starting");
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?
                .block_on(daemon::run(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(arg) => Ok(check(&arg.config)),
        Command::Status(args) => status(&args),
        Command::Backend(command) => backend(&command),
        Command::Demo(args) => {
            init_logging(&cli.log_level)?;
            demo::run(&args).map(|()| ExitCode::SUCCESS)
        }
        Command::Lab(command) => lab_cmd::run(&command),
    }
}

fn init_logging(level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(&env)
            .with_context(|| format!("RUST_LOG={env} is not a valid filter, like \"info\""))?,
        _ => EnvFilter::try_new(level).with_context(|| {
            format!("--log-level {level}: use error, warn, info, debug or trace")
        })?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(config) => {
            println!(
                "config OK: {} service{}, roles {}",
                config.service_count(),
                if config.service_count() == 1 { "" } else { "s" },
                config.roles().join(" + ")
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} error{}; see docs/configuration.md",
                path.display(),
                errors.errors.len(),
                if errors.errors.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let response = client::request(&args.admin.admin, "GET", "/status")?;
    if response.status != 200 {
        bail!(
            "GET /status on {} answered {}: {}",
            args.admin.admin,
            response.status,
            response.body
        );
    }
    if args.json {
        println!("{}", response.body);
    } else {
        let report: StatusReport = serde_json::from_str(&response.body).with_context(|| {
            format!(
                "{} did not answer with a Tether status document; is it another version?",
                args.admin.admin
            )
        })?;
        print!("{}", status_view::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn backend(command: &BackendCommand) -> anyhow::Result<ExitCode> {
    let (action, target) = command.parts();
    let path = format!(
        "/backend/{}/{}/{action}",
        encode_segment(&target.service),
        encode_segment(&target.backend)
    );
    let response = client::request(&target.admin.admin, "POST", &path)?;
    let reply: ControlReply = serde_json::from_str(&response.body).with_context(|| {
        format!(
            "{} answered {} with an unexpected body: {}",
            target.admin.admin, response.status, response.body
        )
    })?;
    match reply.error {
        None => {
            println!(
                "{}/{}: {}",
                reply.service,
                reply.backend,
                reply.state.as_deref().unwrap_or(action)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(error) => {
            eprintln!("tether backend {action}: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Percent-encodes a path segment (names may hold any character).
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

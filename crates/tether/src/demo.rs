//! `tether demo`: a namespace lab that shows Tether at work.

use clap::Args;

/// Arguments of `tether demo`.
#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Leave the lab running after the summary instead of tearing it down.
    #[arg(long)]
    pub keep: bool,
    /// How long each phase sends traffic, in seconds.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub seconds: u64,
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("demo not built yet")
}

//! The `tether` binary: command line, configuration, daemon composition, admin API, demo.
#![forbid(unsafe_code)]

fn main() -> anyhow::Result<()> {
    anyhow::bail!("tether: the command line is being built; see README.md")
}

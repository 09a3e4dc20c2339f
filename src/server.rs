//! The daemon: jails built from the command stream, running lines to bans.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {}

#[derive(clap::Args)]
pub struct RunOnceArgs {}

pub fn run(_conf: &Path, _args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("server: not implemented yet")
}

pub fn run_once(_conf: &Path, _args: RunOnceArgs) -> anyhow::Result<u8> {
    anyhow::bail!("run-once: not implemented yet")
}

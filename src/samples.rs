//! `ironban test-samples`: fail2ban's sample-log test over failJSON annotations.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_conf: &Path, _args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("samples: not implemented yet")
}

//! `ironban regex-check`: the fail2ban-regex equivalent.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_conf: &Path, _args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("regexcheck: not implemented yet")
}

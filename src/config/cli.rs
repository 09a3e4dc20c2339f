//! `ironban config dump|test`.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Print the command stream, as `fail2ban-client -d`.
    Dump {
        /// One JSON array per line instead of Python repr.
        #[arg(long)]
        json: bool,
    },
    /// Test the configuration, as `fail2ban-client -t`.
    Test,
}

pub fn run(_conf: &Path, _args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("config: not implemented yet")
}

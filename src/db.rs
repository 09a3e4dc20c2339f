//! Persistence: bans and log positions in SQLite; import of fail2ban's database.

use std::path::Path;

#[derive(clap::Args)]
pub struct ImportArgs {}

pub fn run_import(_conf: &Path, _args: ImportArgs) -> anyhow::Result<u8> {
    anyhow::bail!("import-db: not implemented yet")
}

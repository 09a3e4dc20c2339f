//! The control socket: protocol between `ironban client` and the server.

use std::path::Path;

#[derive(clap::Args)]
pub struct ClientArgs {}

pub fn run_client(_conf: &Path, _args: ClientArgs) -> anyhow::Result<u8> {
    anyhow::bail!("client: not implemented yet")
}

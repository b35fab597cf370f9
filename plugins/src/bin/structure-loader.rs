//! The structure loader as a plugin host: `structure-loader [FILES…] [host flags]`.

use std::path::PathBuf;

use clap::Parser;
use molstream_net::host::{HostArgs, PluginHost};
use molstream_plugins::loader::{self, LoaderConfig};

/// Loads PDB/mmCIF files into the sessions that run it (the bundled 1hvr without files).
#[derive(Debug, Parser)]
struct Args {
    /// Files to load on run.
    files: Vec<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.host.init_logging();
    let cfg = LoaderConfig { files: args.files };
    let host = loader::register(PluginHost::new(args.host.config()?), cfg);
    host.run().await?;
    Ok(())
}

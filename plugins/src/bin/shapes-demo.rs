//! The shapes demo as a plugin host: `shapes-demo [host flags]`.

use clap::Parser;
use molstream_net::host::{HostArgs, PluginHost};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = HostArgs::parse();
    args.init_logging();
    molstream_plugins::shapes_demo::register(PluginHost::new(args.config()?)).run().await?;
    Ok(())
}

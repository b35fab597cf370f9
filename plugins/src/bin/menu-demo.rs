//! The menu demo as a plugin host: `menu-demo [host flags]`.

use clap::Parser;
use molstream_net::host::{HostArgs, PluginHost};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = HostArgs::parse();
    args.init_logging();
    molstream_plugins::menu_demo::register(PluginHost::new(args.config()?)).run().await?;
    Ok(())
}

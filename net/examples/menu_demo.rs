//! The menu demo moved to `molstream-plugins` (`plugins/src/menu_demo.rs`, binary `menu-demo`,
//! part of `register_all`). This example runs that plugin as a host, so that
//! `cargo run -p molstream-net --example menu_demo` still works.
//!
//! ```sh
//! cargo run -p molstream-net --bin molstream-relay
//! cargo run -p molstream-net --example menu_demo
//! ```

use clap::Parser;
use molstream_net::host::{HostArgs, PluginHost};
use molstream_plugins::menu_demo::register;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = HostArgs::parse();
    args.init_logging();
    register(PluginHost::new(args.config()?)).run().await?;
    Ok(())
}

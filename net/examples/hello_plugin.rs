//! The smallest molstream plugin: on run, it greets the room.
//!
//! ```sh
//! cargo run -p molstream-net --bin molstream-relay            # prints its fingerprint
//! cargo run -p molstream-net --example hello_plugin           # same machine: pin and key found
//! ```

use clap::Parser;
use molstream_net::api::Level;
use molstream_net::host::{HostArgs, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{PluginMeta, UserId};

#[derive(Default)]
struct Hello;

impl Plugin for Hello {
    async fn on_run(&mut self, session: &Session, from: UserId) -> PluginResult {
        session.notify(Level::Success, format!("Hello {from} in room {}", session.room())).await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = HostArgs::parse();
    args.init_logging();
    let meta = PluginMeta { name: "Hello".into(), description: "Greets the room".into(), ..PluginMeta::default() };
    PluginHost::new(args.config()?).plugin(args.meta(meta), Hello::default).run().await?;
    Ok(())
}

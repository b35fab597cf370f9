//! The simplest plugin: on run, load a structure into the session, put a sphere on one of its
//! atoms, and tell the room. Run a relay, then `cargo run -p molstream-net --example simplest`.

use clap::Parser;
use glam::Vec3;
use molstream_engine::AtomId;
use molstream_net::api::Level;
use molstream_net::host::shape::{Anchor, sphere};
use molstream_net::host::{HostArgs, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{PluginMeta, UserId};

const PDB: &[u8] = include_bytes!("../../assets/1hvr.pdb");

/// One value per room that activates the plugin.
#[derive(Default)]
pub struct Simplest;

impl Plugin for Simplest {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let complex = session.load_file("1hvr.pdb", PDB).await?;
        let first_atom = Anchor::atom(complex, AtomId(0), Vec3::ZERO);
        session.upload_shape(sphere(first_atom, 2.0, 0xff_33_99_ff)).await?;
        session.notify(Level::Success, "1hvr loaded; its first atom is marked").await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = HostArgs::parse();
    args.init_logging();
    let meta =
        PluginMeta { name: "Simplest".into(), description: "Loads 1hvr, marks an atom".into(), ..Default::default() };
    PluginHost::new(args.config()?).plugin(args.meta(meta), Simplest::default).run().await?;
    Ok(())
}

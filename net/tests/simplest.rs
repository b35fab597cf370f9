//! The simplest plugin (`examples/simplest.rs`, compiled in as it is) against an embedded relay
//! over loopback QUIC: its structure, its sphere and its notification reach two session
//! clients, one of which joins after the plugin ran (it gets the structure and the sphere from
//! the relay's replay, then runs the plugin itself).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../examples/simplest.rs"]
mod simplest;

use std::time::Duration;

use glam::Vec3;
use molstream_engine::AtomId;
use molstream_engine::shape::{Anchor, AnchorTarget, ShapeKind};
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{HostConfig, PluginHost};
use molstream_net::proto::PluginMeta;
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::scene::RoomScene;
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};

const KEY: &str = "simplest-key";
const T: Duration = Duration::from_secs(30);

/// (complexes with 1890 atoms named 1hvr, spheres of radius 2 on atom 0 of one of them,
/// notifications saying so).
fn seen(s: &RoomScene) -> (usize, usize, usize) {
    let complexes: Vec<_> = s
        .workspace()
        .complexes()
        .iter()
        .filter(|c| c.name == "1hvr" && c.current().topology.atom_count() == 1890)
        .map(|c| c.id)
        .collect();
    let spheres = s
        .all_shapes()
        .flat_map(|(_, set)| set.iter())
        .filter(|sh| match &sh.kind {
            ShapeKind::Sphere { anchor: Anchor { target: AnchorTarget::Atom(c, AtomId(0)), offset }, radius } => {
                complexes.contains(c) && *offset == Vec3::ZERO && *radius == 2.0
            }
            _ => false,
        })
        .count();
    let notes = s.notifications().filter(|(_, l, t)| *l == Level::Success && t.starts_with("1hvr loaded")).count();
    (complexes.len(), spheres, notes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simplest_plugin_reaches_two_clients_one_joining_late() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let trust = Trust::Pinned(relay.fingerprint());
    let meta = PluginMeta { name: "Simplest".into(), ..PluginMeta::default() };
    let host = PluginHost::new(HostConfig::new(relay.local_addr(), trust, KEY))
        .plugin(meta, simplest::Simplest::default)
        .spawn();
    let client = |user: &str| ClientConfig::new(relay.local_addr(), trust, "lab", user).with_scene();

    let mut ada = SessionClient::connect(client("ada")).await.unwrap();
    let plugin = ada.wait_for_plugin("Simplest").await.unwrap();
    let instance = ada.activate(plugin).await.unwrap();
    ada.run(instance).await.unwrap();
    ada.wait_for(T, |s| (seen(s) == (1, 1, 1)).then_some(())).await.expect("ada sees the structure, sphere, note");
    // The client holds the structure as GPU buffers too, decoded from the keyframe.
    let (atoms, bonds) = ada
        .with_scene(|s| {
            let id = s.workspace().complexes()[0].id;
            let sc = s.scene_complex(id).unwrap();
            (sc.buffers.atoms.len(), sc.buffers.bonds.len())
        })
        .unwrap();
    assert_eq!(atoms, 1890);
    assert!(bonds > 1800, "{bonds} bonds");

    // Bob joins after the run: the relay replays the structure and the sphere (the
    // notification was a moment's message, not state).
    let bob = SessionClient::connect(client("bob")).await.unwrap();
    bob.wait_for(T, |s| (seen(s) == (1, 1, 0)).then_some(())).await.expect("bob gets the room's state");
    let same = |c: &SessionClient| c.with_scene(|s| s.workspace().complexes()[0].current().positions.to_vec()).unwrap();
    assert_eq!(same(&ada), same(&bob), "the same copy of the structure");
    // Bob runs the plugin himself: both users get the second structure, sphere and note.
    bob.run(instance).await.unwrap();
    bob.wait_for(T, |s| (seen(s) == (2, 2, 1)).then_some(())).await.expect("bob sees his run");
    ada.wait_for(T, |s| (seen(s) == (2, 2, 2)).then_some(())).await.expect("ada sees bob's run");
    let ids = |c: &SessionClient| {
        c.with_scene(|s| s.workspace().complexes().iter().map(|c| c.id).collect::<Vec<_>>()).unwrap()
    };
    assert_eq!(ids(&ada), ids(&bob));
    assert_ne!(ids(&ada)[0], ids(&ada)[1], "the presenter gave the second structure a new id");

    drop(bob);
    drop(ada);
    host.shutdown().await.unwrap();
    relay.shutdown().await;
}

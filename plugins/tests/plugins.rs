//! The example plugins against an embedded relay over loopback QUIC, with session clients
//! keeping the room's scene.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use glam::Vec3;
use molstream_engine::io::{LoadOptions, load_bytes};
use molstream_engine::shape::ShapeKind;
use molstream_engine::{Complex, ComplexId};
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{HostConfig, HostHandle, PluginHost};
use molstream_net::proto::InstanceId;
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::scene::RoomScene;
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use molstream_plugins::minimizer::{Descent, ForceField, MinimizerConfig};
use molstream_plugins::shapes_demo::{HBOND_MAX, HBOND_MIN, hbonds, ligand_atoms};
use molstream_plugins::trajectory::{TrajectoryConfig, TrajectorySource, load_trajectory};
use molstream_plugins::{HVR_PDB, loader, minimizer, register_all, shapes_demo, trajectory};
use tokio::time::timeout;

const KEY: &str = "plugins-key";
const T: Duration = Duration::from_secs(60);

struct World {
    relay: RelayServer,
    trust: Trust,
    host: HostHandle,
}

async fn world(add: impl FnOnce(PluginHost) -> PluginHost) -> World {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let trust = Trust::Pinned(relay.fingerprint());
    let mut host = add(PluginHost::new(HostConfig::new(relay.local_addr(), trust, KEY))).spawn();
    timeout(T, host.registered()).await.unwrap().unwrap();
    World { relay, trust, host }
}

impl World {
    async fn client(&self, user: &str) -> SessionClient {
        let cfg = ClientConfig::new(self.relay.local_addr(), self.trust, "lab", user).with_scene();
        SessionClient::connect(cfg).await.unwrap()
    }

    async fn stop(self) {
        self.host.shutdown().await.unwrap();
        self.relay.shutdown().await;
    }
}

async fn start(c: &mut SessionClient, name: &str) -> InstanceId {
    let p = c.wait_for_plugin(name).await.unwrap();
    c.activate(p).await.unwrap()
}

fn note(s: &RoomScene, level: Level, prefix: &str) -> Option<String> {
    s.notifications().find(|(_, l, t)| *l == level && t.starts_with(prefix)).map(|(_, _, t)| t.to_owned())
}

fn hvr() -> Complex {
    load_bytes(HVR_PDB, "1hvr.pdb", None, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() })
        .unwrap()
        .complex
}

fn only_complex(s: &RoomScene) -> Option<ComplexId> {
    s.workspace().complexes().first().map(|c| c.id)
}

#[test]
fn hydrogen_bonds_by_grid_equal_brute_force() {
    let c = hvr();
    let (t, p) = (c.current().topology, c.current().positions);
    let got = hbonds(t, p, HBOND_MIN, HBOND_MAX);
    let polar = |i: usize| matches!(t.atoms.element[i].symbol(), "N" | "O");
    let mut want = Vec::new();
    for i in 0..p.len() {
        for j in i + 1..p.len() {
            let d = p[i].distance(p[j]);
            if polar(i) && polar(j) && t.atoms.residue[i] != t.atoms.residue[j] && (HBOND_MIN..=HBOND_MAX).contains(&d)
            {
                want.push((i as u32, j as u32));
            }
        }
    }
    assert!(want.len() > 100, "1hvr has many hydrogen bonds: {}", want.len());
    assert_eq!(got.iter().map(|(a, b, _)| (a.0, b.0)).collect::<Vec<_>>(), want);
}

#[test]
fn steepest_descent_lowers_the_toy_energy() {
    let c = hvr();
    let ff = ForceField::new(c.current().topology);
    let mut d = Descent::new(&ff, c.current().positions.to_vec());
    let e0 = d.energy;
    let accepted = (0..100).filter(|_| d.step(&ff)).count();
    assert!(accepted > 10);
    assert!(d.energy < 0.5 * e0, "{e0} → {}", d.energy);
    // The gradient is the energy's: central differences agree where it is largest.
    let start = c.current().positions.to_vec();
    let mut g = vec![Vec3::ZERO; start.len()];
    ff.energy(&start, &mut g);
    let (k, _) = g.iter().enumerate().max_by(|a, b| a.1.length().total_cmp(&b.1.length())).unwrap();
    let mut scratch = vec![Vec3::ZERO; start.len()];
    let h = 1e-2;
    let (mut plus, mut minus) = (start.clone(), start.clone());
    plus[k].x += h;
    minus[k].x -= h;
    let fd = (ff.energy(&plus, &mut scratch) - ff.energy(&minus, &mut scratch)) / (2.0 * h);
    assert!((fd - g[k].x).abs() < 0.02 * g[k].length(), "atom {k}: {fd} vs {}", g[k].x);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_plugins_load_draw_minimize_and_play() {
    let w = world(register_all).await;
    let mut ada = w.client("ada").await;
    // Every bundled plugin is listed, the menu demo with its advanced settings.
    ada.wait_for_plugin("Menu demo").await.unwrap();
    let mut names: Vec<String> = ada.view().plugins.iter().map(|p| p.meta.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["Menu demo", "Minimizer", "Shapes demo", "Structure loader", "Trajectory streamer"]);
    assert!(ada.view().plugins.iter().any(|p| p.meta.name == "Menu demo" && p.meta.has_advanced_settings));

    // Structure loader: the bundled 1hvr.
    let loader = start(&mut ada, "Structure loader").await;
    ada.run(loader).await.unwrap();
    let id = ada
        .wait_for(T, |s| {
            (s.complex(only_complex(s)?)?.current().positions.len() == 1890).then(|| only_complex(s)).flatten()
        })
        .await
        .unwrap();
    ada.wait_for(T, |s| note(s, Level::Success, "loaded 1hvr (1890 atoms)")).await.unwrap();

    // Shapes demo: spheres on the ligand, a dashed line per hydrogen bond, labels, a box.
    let local = hvr();
    let (t, p) = (local.current().topology, local.current().positions);
    let (ligand, bonds) = (ligand_atoms(t).len(), hbonds(t, p, HBOND_MIN, HBOND_MAX).len());
    assert!(ligand > 20, "the inhibitor of 1hvr");
    let demo = start(&mut ada, "Shapes demo").await;
    ada.run(demo).await.unwrap();
    let kinds = ada
        .wait_for(T, |s| {
            let set = s.shapes(demo)?;
            let mut k = [0usize; 5];
            for sh in set.iter() {
                match &sh.kind {
                    ShapeKind::Sphere { .. } => k[0] += 1,
                    ShapeKind::Line { dash_length, .. } if *dash_length > 0.0 => k[1] += 1,
                    ShapeKind::Line { .. } => k[4] += 1,
                    ShapeKind::Label { .. } => k[2] += 1,
                    ShapeKind::Mesh(m) if m.triangle_count() == 12 && m.unlit => k[3] += 1,
                    ShapeKind::Mesh(_) => k[4] += 1,
                }
            }
            (k[0] == ligand && k[1] == bonds).then_some(k)
        })
        .await
        .unwrap();
    assert!(kinds[2] >= 2 && kinds[3] == 1 && kinds[4] == 0, "{kinds:?}");
    ada.wait_for(T, |s| note(s, Level::Success, "1hvr: ")).await.unwrap();
    // Running it again redraws: the same shapes, under new ids.
    ada.run(demo).await.unwrap();
    ada.wait_for(T, |s| {
        (s.shapes(demo)?.iter().filter(|sh| matches!(sh.kind, ShapeKind::Sphere { .. })).count() == ligand
            && s.shapes(demo)?.iter().all(|sh| sh.id.0 > kinds.iter().sum::<usize>() as u32))
        .then_some(())
    })
    .await
    .unwrap();

    // Minimizer: streams positions while it runs, lowers the energy.
    let mini = start(&mut ada, "Minimizer").await;
    let started =
        timeout(T, ada.integration(mini, "minimization.start", Bytes::from(id.0.to_string()))).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&started).starts_with(&format!("minimizing {id}")));
    let busy = timeout(T, ada.integration(mini, "minimization.start", Bytes::new())).await.unwrap();
    assert!(busy.is_err() || ada.with_scene(|s| note(s, Level::Success, "minimized").is_some()).unwrap());
    ada.wait_for(T, |s| note(s, Level::Success, "minimized 1hvr")).await.unwrap();
    let frames = ada.with_scene(|s| s.scene_complex(id).unwrap().frames).unwrap();
    assert!(frames > 10, "positions were streamed while it ran: {frames} frames");
    let stopped = timeout(T, ada.integration(mini, "minimization.stop", Bytes::new())).await.unwrap().unwrap();
    let nums: Vec<f32> = String::from_utf8_lossy(&stopped).split(' ').map(|x| x.parse().unwrap()).collect();
    assert!(nums[1] < nums[0], "energy {} → {}", nums[0], nums[1]);
    let moved = ada.with_scene(|s| s.complex(id).unwrap().current().positions.to_vec()).unwrap();
    assert!(moved.iter().zip(p).any(|(a, b)| a.distance(*b) > 0.01));
    // A late joiner gets the minimized structure.
    let bob = w.client("bob").await;
    bob.wait_for(T, |s| (s.complex(id)?.current().positions == moved.as_slice()).then_some(())).await.unwrap();

    // Trajectory streamer (adk_oplsaa.xtc when the shared data is there, else the NMR models):
    // frames of the trajectory arrive; running it again pauses.
    let (traj, frames) = load_trajectory(&TrajectorySource::auto()).unwrap();
    let n = traj.current().topology.atom_count();
    let tr = start(&mut ada, "Trajectory streamer").await;
    ada.run(tr).await.unwrap();
    let tid = ada
        .wait_for(T, |s| s.workspace().complexes().iter().find(|c| c.current().positions.len() == n).map(|c| c.id))
        .await
        .unwrap();
    ada.wait_for(T, |s| {
        let c = s.scene_complex(tid)?;
        let now = s.complex(tid)?.current().positions;
        let k = frames.iter().position(|f| max_diff(f, now) <= 0.0006)?;
        (c.frames >= 4 && k > 0).then_some(())
    })
    .await
    .unwrap();
    ada.run(tr).await.unwrap();
    ada.wait_for(T, |s| note(s, Level::Info, "trajectory paused")).await.unwrap();
    drop((ada, bob));
    w.stop().await;
}

fn max_diff(a: &[Vec3], b: &[Vec3]) -> f32 {
    if a.len() != b.len() {
        return f32::MAX;
    }
    a.iter().zip(b).map(|(x, y)| (*x - *y).abs().max_element()).fold(0.0, f32::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loader_loads_its_files_and_the_streamer_plays_the_nmr_models_once() {
    let asset = |f: &str| std::path::PathBuf::from(format!("{}/../assets/{f}", env!("CARGO_MANIFEST_DIR")));
    let files = vec![asset("1YJP.cif"), asset("missing.pdb")];
    let w = world(|h| {
        let h = loader::register(h, loader::LoaderConfig { files });
        let cfg = TrajectoryConfig { source: TrajectorySource::bundled(), fps: 200.0, loops: 1 };
        let h = trajectory::register(h, cfg);
        let h = shapes_demo::register(h);
        minimizer::register(h, MinimizerConfig { max_steps: 20, stream_every: 2 })
    })
    .await;
    let mut ada = w.client("ada").await;
    let ld = start(&mut ada, "Structure loader").await;
    ada.run(ld).await.unwrap();
    ada.wait_for(T, |s| note(s, Level::Success, "loaded 1YJP")).await.unwrap();
    let err = ada.wait_for(T, |s| note(s, Level::Error, "cannot read")).await.unwrap();
    assert!(err.contains("missing.pdb"), "{err}");
    // The integration loads a file by path.
    let id = timeout(T, ada.integration(ld, "structure.load", Bytes::from(asset("1hvr.pdb").display().to_string())))
        .await
        .unwrap()
        .unwrap();
    let id = ComplexId(String::from_utf8_lossy(&id).parse().unwrap());
    ada.wait_for(T, |s| (s.complex(id)?.current().positions.len() == 1890).then_some(())).await.unwrap();
    let bad =
        timeout(T, ada.integration(ld, "structure.load", Bytes::from_static(b"/no/such/file.cif"))).await.unwrap();
    assert!(bad.is_err());

    // The NMR ensemble, once through at 200 frames per second: 24 frames, ending on model 0.
    let (_, models) = load_trajectory(&TrajectorySource::bundled()).unwrap();
    assert_eq!(models.len(), 24);
    let tr = start(&mut ada, "Trajectory streamer").await;
    ada.run(tr).await.unwrap();
    ada.wait_for(T, |s| note(s, Level::Success, "played 24 frames")).await.unwrap();
    let n = models[0].len();
    let tid = ada
        .with_scene(|s| s.workspace().complexes().iter().find(|c| c.current().positions.len() == n).map(|c| c.id))
        .unwrap()
        .unwrap();
    ada.wait_for(T, |s| (max_diff(s.complex(tid)?.current().positions, &models[0]) <= 0.0006).then_some(()))
        .await
        .unwrap();
    let applied = ada.with_scene(|s| s.scene_complex(tid).unwrap().frames).unwrap();
    assert_eq!(applied, 25, "a keyframe and 24 deltas");
    drop(ada);
    w.stop().await;
}

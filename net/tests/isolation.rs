//! `--isolation process` over real QUIC on loopback. This test binary is its own plugin: run
//! normally it starts a relay, a plugin host with process isolation and session clients; the
//! host re-executes this binary for each instance, and in those processes `main` serves the
//! instance. Instances abort, panic or are killed with SIGKILL; each crash reaches its room as
//! `Crashed` and the other instances (in other processes) go on. Frames, menus, notifications
//! and integrations travel through the instance process's pipe.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use glam::Vec3;
use molstream_engine::Complex;
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{FrameKind, Limits};
use molstream_engine::io::{LoadOptions, load_file};
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, ClientEvent, SessionClient};
use molstream_net::host::{HostConfig, Isolation, Plugin, PluginHost, PluginResult, Session};
use molstream_net::menu::{Menu, MenuChange, MenuId};
use molstream_net::proto::{InstanceId, PluginMeta, StopReason, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use tokio::time::timeout;

const KEY: &str = "isolation-key";
const T: Duration = Duration::from_secs(30);
const DELTAS: usize = 3;

fn structure() -> Complex {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap().complex
}

#[derive(Default)]
struct Iso;

impl Plugin for Iso {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        match session.room() {
            "abort" => std::process::abort(),
            "panic" => panic!("boom in {}", session.room()),
            _ => {}
        }
        session.update_menu(&Menu::new(MenuId(1), format!("pid {}", std::process::id()))).await?;
        session.notify(Level::Info, format!("pid {}", std::process::id())).await?;
        Ok(())
    }

    async fn on_integration(&mut self, _s: &Session, _f: UserId, name: &str, _args: Bytes) -> Result<Bytes, String> {
        match name {
            "pid" => Ok(Bytes::from(std::process::id().to_string())),
            other => Err(format!("no {other}")),
        }
    }

    /// Streams a keyframe and a few deltas of a real structure.
    async fn on_advanced_settings(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let complex = structure();
        let mut enc = StreamEncoder::new(1, 2);
        let mut buf = Vec::new();
        enc.keyframe(&complex, &mut buf)?;
        let mut positions = complex.current().positions.to_vec();
        for step in 0..DELTAS {
            for p in &mut positions {
                *p += Vec3::splat(0.1 * (step + 1) as f32);
            }
            enc.delta(&positions, &mut buf)?;
        }
        let mut ch = session.open_frames(0).await?;
        ch.send(&buf).await?;
        ch.finish();
        Ok(())
    }
}

fn host(cfg: HostConfig) -> PluginHost {
    PluginHost::new(cfg).plugin(PluginMeta { name: "Iso".into(), ..PluginMeta::default() }, Iso::default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if molstream_net::host::process::is_instance_process() {
        // An instance process: the configuration is not used (the host gives the instance).
        let cfg = HostConfig::new("127.0.0.1:9".parse().unwrap(), Trust::InsecureLocal, "");
        let r = rt.block_on(host(cfg).run());
        panic!("an instance process returned: {r:?}");
    }
    rt.block_on(scenario());
    println!("test isolation::process_isolation ... ok");
}

async fn client(relay: &RelayServer, room: &str) -> SessionClient {
    let cfg = ClientConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), room, "user");
    timeout(T, SessionClient::connect(cfg)).await.unwrap().unwrap()
}

async fn stopped(c: &mut SessionClient, instance: InstanceId) -> StopReason {
    loop {
        match timeout(T, c.next_event()).await.expect("stop within the timeout") {
            Some(ClientEvent::InstanceStopped { instance: i, reason }) if i == instance => return reason,
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

async fn pid_of(c: &mut SessionClient, instance: InstanceId) -> u32 {
    let b = c.integration(instance, "pid", Bytes::new()).await.unwrap();
    std::str::from_utf8(&b).unwrap().parse().unwrap()
}

/// Whether process `pid` runs (a zombie waiting to be reaped does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
}

async fn wait_gone(pid: u32) {
    timeout(T, async {
        while alive(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the instance process exits");
}

async fn scenario() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let mut cfg = HostConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), KEY);
    cfg.isolation = Isolation::Process;
    let mut host = host(cfg).spawn();
    timeout(T, host.registered()).await.unwrap().unwrap();

    let mut ok1 = client(&relay, "ok1").await;
    let plugin = ok1.wait_for_plugin("Iso").await.unwrap();
    let mut ok2 = client(&relay, "ok2").await;
    let mut abort = client(&relay, "abort").await;
    let mut panics = client(&relay, "panic").await;
    let mut killed = client(&relay, "kill").await;
    let i1 = ok1.activate(plugin).await.unwrap();
    let i2 = ok2.activate(plugin).await.unwrap();
    let ia = abort.activate(plugin).await.unwrap();
    let ip = panics.activate(plugin).await.unwrap();
    let ik = killed.activate(plugin).await.unwrap();

    // Each instance is a process of its own.
    let me = std::process::id();
    let (p1, p2) = (pid_of(&mut ok1, i1).await, pid_of(&mut ok2, i2).await);
    let pk = pid_of(&mut killed, ik).await;
    assert!(p1 != me && p2 != me && pk != me && p1 != p2 && p2 != pk, "pids {me} {p1} {p2} {pk}");

    // An abort, a panic and a SIGKILL each end their own instance only.
    abort.run(ia).await.unwrap();
    let r = stopped(&mut abort, ia).await;
    assert_eq!(r, StopReason::Crashed { message: "instance process killed by signal 6 (SIGABRT)".into() }, "{r:?}");
    panics.run(ip).await.unwrap();
    assert_eq!(stopped(&mut panics, ip).await, StopReason::Crashed { message: "panicked: boom in panic".into() });
    let st = std::process::Command::new("kill").args(["-9", &pk.to_string()]).status().unwrap();
    assert!(st.success());
    let r = stopped(&mut killed, ik).await;
    assert_eq!(r, StopReason::Crashed { message: "instance process killed by signal 9 (SIGKILL)".into() }, "{r:?}");

    // The others go on in the same processes: a menu and a notification from the instance.
    ok1.run(i1).await.unwrap();
    loop {
        match timeout(T, ok1.next_event()).await.unwrap().unwrap() {
            ClientEvent::Menu { instance, change: MenuChange::Set, .. } if instance == i1 => {}
            ClientEvent::Notification { instance, text, .. } if instance == i1 => {
                assert_eq!(text, format!("pid {p1}"));
                break;
            }
            ClientEvent::InstanceStopped { reason, .. } => panic!("{reason:?}"),
            _ => {}
        }
    }
    assert_eq!(ok1.menu(i1, MenuId(1)).unwrap().title, format!("pid {p1}"));
    assert_eq!(pid_of(&mut ok2, i2).await, p2);

    // Frames written in the instance process reach the user byte for byte and decode.
    ok2.advanced_settings(i2).await.unwrap();
    let mut stream = timeout(T, ok2.accept_frames()).await.unwrap().unwrap();
    let mut reader = FrameReader::new(Limits::default());
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut atoms = Vec::new();
    let mut kinds = Vec::new();
    while kinds.len() < 1 + DELTAS {
        let (h, bytes) = timeout(T, stream.next(&Limits::default())).await.unwrap().unwrap().expect("a frame");
        kinds.push(h.kind);
        reader.push_bytes(&bytes);
        while let Some(frame) = reader.try_read().unwrap() {
            decoder.apply(&frame, &mut atoms).unwrap();
        }
    }
    assert_eq!(kinds.len(), 1 + DELTAS);
    assert_eq!(kinds[0], FrameKind::Keyframe);
    let want = structure();
    let first = want.current().positions[0] + Vec3::splat(0.1 + 0.2 + 0.3);
    assert_eq!(atoms.len(), want.current().positions.len());
    assert!((Vec3::from(atoms[0].position) - first).length() < 0.02, "{:?} vs {first}", atoms[0].position);

    // A deactivated instance's process exits; the host's shutdown ends the rest.
    ok1.deactivate(i1).await.unwrap();
    stopped(&mut ok1, i1).await;
    wait_gone(p1).await;
    assert!(alive(p2));
    host.shutdown().await.unwrap();
    wait_gone(p2).await;
    relay.shutdown().await;
}

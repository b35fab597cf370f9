//! Shared harness of the plugin API tests: an embedded relay, a host running [`Probe`] (a
//! plugin that hands its [`Session`] to the test and logs every workspace event), and session
//! clients keeping the room's scene.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::{Complex, ComplexId};
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{HostConfig, HostHandle, Interrupt, Plugin, PluginHost, PluginResult, Session, StreamId};
use molstream_net::proto::{InstanceId, PluginMeta};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use tokio::sync::mpsc;
use tokio::time::timeout;

pub const KEY: &str = "api-test-key";
pub const T: Duration = Duration::from_secs(30);

/// What a [`Probe`] instance saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Added(Vec<ComplexId>),
    Removed(Vec<ComplexId>),
    Updated(Vec<ComplexId>),
    Selection(ComplexId),
    Interrupted(StreamId, Interrupt),
}

/// Hands its session to the test on start and logs what happens to it.
pub struct Probe {
    pub log: Arc<Mutex<Vec<(InstanceId, Seen)>>>,
    pub sessions: mpsc::UnboundedSender<Session>,
}

impl Probe {
    fn seen(&self, s: &Session, e: Seen) {
        self.log.lock().unwrap().push((s.instance(), e));
    }
}

impl Plugin for Probe {
    async fn on_start(&mut self, session: &Session) -> PluginResult {
        let _ = self.sessions.send(session.clone());
        Ok(())
    }

    async fn on_complexes_added(&mut self, s: &Session, ids: &[ComplexId]) -> PluginResult {
        self.seen(s, Seen::Added(ids.to_vec()));
        Ok(())
    }

    async fn on_complexes_removed(&mut self, s: &Session, ids: &[ComplexId]) -> PluginResult {
        self.seen(s, Seen::Removed(ids.to_vec()));
        Ok(())
    }

    async fn on_complexes_updated(&mut self, s: &Session, ids: &[ComplexId]) -> PluginResult {
        self.seen(s, Seen::Updated(ids.to_vec()));
        Ok(())
    }

    async fn on_selection_changed(&mut self, s: &Session, complex: ComplexId) -> PluginResult {
        self.seen(s, Seen::Selection(complex));
        Ok(())
    }

    async fn on_stream_interrupted(&mut self, s: &Session, stream: StreamId, reason: &Interrupt) -> PluginResult {
        self.seen(s, Seen::Interrupted(stream, reason.clone()));
        Ok(())
    }
}

pub struct World {
    pub relay: RelayServer,
    pub trust: Trust,
    pub host: HostHandle,
    pub log: Arc<Mutex<Vec<(InstanceId, Seen)>>>,
    pub sessions: mpsc::UnboundedReceiver<Session>,
}

impl World {
    pub async fn start() -> Self {
        Self::with(RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() }).await
    }

    pub async fn with(cfg: RelayConfig) -> Self {
        let (identity, _, _) = RelayIdentity::generate().unwrap();
        let relay =
            RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
        let trust = Trust::Pinned(relay.fingerprint());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, sessions) = mpsc::unbounded_channel();
        let (l, l2, tx2) = (log.clone(), log.clone(), tx.clone());
        // Two plugins (one instance each per room): "Probe" and "Probe2".
        let mut host = PluginHost::new(HostConfig::new(relay.local_addr(), trust, KEY))
            .plugin(PluginMeta { name: "Probe".into(), ..PluginMeta::default() }, move || Probe {
                log: l.clone(),
                sessions: tx.clone(),
            })
            .plugin(PluginMeta { name: "Probe2".into(), ..PluginMeta::default() }, move || Probe {
                log: l2.clone(),
                sessions: tx2.clone(),
            })
            .spawn();
        timeout(T, host.registered()).await.unwrap().unwrap();
        Self { relay, trust, host, log, sessions }
    }

    pub async fn client(&self, room: &str, user: &str) -> SessionClient {
        let cfg = ClientConfig::new(self.relay.local_addr(), self.trust, room, user).with_scene();
        timeout(T, SessionClient::connect(cfg)).await.unwrap().unwrap()
    }

    /// Activates the probe from `client` and returns its instance's session.
    pub async fn activate(&mut self, client: &mut SessionClient) -> Session {
        self.activate_named(client, "Probe").await
    }

    /// Activates plugin `name` ("Probe" or "Probe2") from `client`.
    pub async fn activate_named(&mut self, client: &mut SessionClient, name: &str) -> Session {
        let plugin = client.wait_for_plugin(name).await.unwrap();
        client.activate(plugin).await.unwrap();
        timeout(T, self.sessions.recv()).await.unwrap().unwrap()
    }

    /// Waits until the probe of `instance` logged `e`.
    pub async fn seen(&self, instance: InstanceId, e: &Seen) {
        timeout(T, async {
            loop {
                if self.log.lock().unwrap().iter().any(|(i, x)| *i == instance && x == e) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{instance} never saw {e:?}: {:?}", self.log.lock().unwrap()));
    }

    pub fn count(&self, instance: InstanceId, pred: impl Fn(&Seen) -> bool) -> usize {
        self.log.lock().unwrap().iter().filter(|(i, x)| *i == instance && pred(x)).count()
    }

    pub async fn stop(self) {
        self.host.shutdown().await.unwrap();
        self.relay.shutdown().await;
    }
}

pub fn asset(name: &str) -> String {
    format!("{}/../assets/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn load(name: &str) -> Complex {
    load_file(asset(name), &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap().complex
}

/// Largest coordinate difference between two position lists.
pub fn max_diff(a: &[glam::Vec3], b: &[glam::Vec3]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (*x - *y).abs().max_element()).fold(0.0, f32::max)
}

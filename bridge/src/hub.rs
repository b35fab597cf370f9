//! The bridge's state shared by its plugin instances and its transports: the sessions that
//! activated the bridge (one instance each), their streams, the session events turned into
//! JSON-RPC notifications, the token, and the per-session client that lists and activates
//! plugins.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use molstream_engine::ComplexId;
use molstream_net::client::{ClientConfig, ClientEvent, SessionClient};
use molstream_net::host::{Interrupt, Plugin, PluginResult, Session, StreamId, WritingStream};
use molstream_net::menu::MenuEvent;
use molstream_net::proto::{InstanceId, PluginId, PluginInfo, UserId};
use molstream_net::tls::Trust;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::json;
use crate::rpc::{self, Limits, RpcError};

/// A future the caller links return.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The way back to the caller whose request is being served: the bridge sends it requests of
/// its own (e.g. `file.read`) and awaits the answer.
pub(crate) trait CallerLink: Send + Sync {
    /// Sends a request to the caller and waits for its answer, at most `timeout`.
    fn request<'a>(
        &'a self,
        method: &'a str,
        params: Value,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Value, RpcError>>;
}

/// Who a request came from: a link back to it, when the transport has one.
pub(crate) type Caller = Option<Arc<dyn CallerLink>>;

/// A session event or notification for the callers of one room, serialized once.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// The room.
    pub room: Arc<str>,
    /// The JSON-RPC notification, as text.
    pub text: Arc<str>,
}

/// Events kept for slow receivers before the oldest are dropped (they get `event.lagged`).
const EVENT_BUFFER: usize = 4096;

/// The SHA-256 of the token; compared without an early exit.
#[derive(Clone)]
pub(crate) struct TokenCheck([u8; 32]);

impl std::fmt::Debug for TokenCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCheck(..)")
    }
}

fn digest(s: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl TokenCheck {
    pub(crate) fn new(token: &str) -> Self {
        Self(digest(token))
    }

    /// Whether `given` is the token.
    pub(crate) fn accepts(&self, given: &str) -> bool {
        let d = digest(given);
        self.0.iter().zip(d.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// A fresh random token: 128 bits, hex.
///
/// # Errors
/// The system's random source failed.
pub fn generate_token() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// What the hub needs to know (from `BridgeConfig`).
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    pub token: TokenCheck,
    pub limits: Limits,
    pub caller_timeout: Duration,
    pub relay: SocketAddr,
    pub trust: Trust,
    pub user_name: String,
}

/// A writing stream a caller created, with the shapes it targets (the SDK interrupts those
/// streams itself when the bridge destroys the shapes, but tells no callback: the bridge
/// reports it).
pub(crate) struct Writing {
    pub stream: WritingStream,
    pub shapes: Vec<u32>,
}

/// One session that activated the bridge.
pub(crate) struct Attached {
    pub session: Session,
    pub writing: Mutex<BTreeMap<u32, Writing>>,
    pub reading: Mutex<BTreeMap<u32, oneshot::Sender<()>>>,
    plugins: tokio::sync::Mutex<Option<PluginsClient>>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").field("room", &self.session.room()).finish_non_exhaustive()
    }
}

/// The shared state.
#[derive(Debug)]
pub(crate) struct Hub {
    pub cfg: HubConfig,
    sessions: Mutex<BTreeMap<String, Arc<Attached>>>,
    /// The rooms with a bridge instance (the Redis transport subscribes to their channels).
    pub rooms: watch::Sender<BTreeSet<String>>,
    events: broadcast::Sender<Event>,
}

impl Hub {
    pub(crate) fn new(cfg: HubConfig) -> Self {
        Self {
            cfg,
            sessions: Mutex::new(BTreeMap::new()),
            rooms: watch::Sender::new(BTreeSet::new()),
            events: broadcast::Sender::new(EVENT_BUFFER),
        }
    }

    /// Receives every event of every room from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Sends notification `method` to the callers of `room` (its params get `"room"`).
    pub(crate) fn emit(&self, room: &str, method: &str, mut params: Value) {
        if let Value::Object(o) = &mut params {
            o.insert("room".into(), room.into());
        }
        let text = rpc::request(None, method, params).to_string();
        // No receiver is not an error: nobody listens right now.
        let _ = self.events.send(Event { room: room.into(), text: text.into() });
    }

    fn attach(&self, session: &Session) {
        let room = session.room().to_owned();
        let a = Arc::new(Attached {
            session: session.clone(),
            writing: Mutex::new(BTreeMap::new()),
            reading: Mutex::new(BTreeMap::new()),
            plugins: tokio::sync::Mutex::new(None),
        });
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(room.clone(), a);
        }
        self.rooms.send_modify(|r| {
            r.insert(room.clone());
        });
        tracing::info!(%room, instance = %session.instance(), "session attached");
        self.emit(&room, "event.session_started", json!({ "instance": session.instance().0 }));
    }

    fn detach(&self, session: &Session) {
        let room = session.room();
        let gone = self.sessions.lock().ok().and_then(|mut s| {
            let mine = s.get(room).is_some_and(|a| a.session.instance() == session.instance());
            if mine { s.remove(room) } else { None }
        });
        if let Some(a) = gone {
            self.rooms.send_modify(|r| {
                r.remove(room);
            });
            if let Ok(mut r) = a.reading.lock() {
                r.clear();
            }
            tracing::info!(%room, instance = %session.instance(), "session detached");
            self.emit(room, "event.session_stopped", json!({ "instance": session.instance().0 }));
        }
    }

    /// The attached session of `room`, or of the only attached session when `room` is `None`.
    ///
    /// # Errors
    /// [`rpc::NO_SESSION`], with the rooms that have the bridge in `data.sessions`.
    pub(crate) fn attached(&self, room: Option<&str>) -> Result<Arc<Attached>, RpcError> {
        let s = self.sessions.lock().map_err(|_| RpcError::new(rpc::INTERNAL_ERROR, "state poisoned"))?;
        let found = match room {
            Some(r) => s.get(r).cloned(),
            None if s.len() == 1 => s.values().next().cloned(),
            None => None,
        };
        found.ok_or_else(|| {
            let names: Vec<&String> = s.keys().collect();
            let msg = match room {
                Some(r) => format!("no session {r:?} has the bridge active"),
                None if names.is_empty() => "no session has the bridge active".to_owned(),
                None => "several sessions have the bridge active: name one (\"room\")".to_owned(),
            };
            RpcError::new(rpc::NO_SESSION, msg).with_data(json!({ "sessions": names }))
        })
    }

    /// The attached sessions.
    pub(crate) fn sessions(&self) -> Vec<Arc<Attached>> {
        self.sessions.lock().map(|s| s.values().cloned().collect()).unwrap_or_default()
    }
}

impl Attached {
    /// The session's plugin client, joining the room on first use.
    pub(crate) async fn plugins(&self, hub: &Hub) -> Result<mpsc::Sender<PluginCmd>, RpcError> {
        let mut g = self.plugins.lock().await;
        if let Some(p) = g.as_ref()
            && !p.task.is_finished()
        {
            return Ok(p.cmd.clone());
        }
        let cfg = ClientConfig::new(hub.cfg.relay, hub.cfg.trust, self.session.room(), hub.cfg.user_name.clone());
        let client = SessionClient::connect(cfg)
            .await
            .map_err(|e| RpcError::new(rpc::PLUGIN_ERROR, format!("joining the room to list plugins: {e}")))?;
        let (cmd, rx) = mpsc::channel(16);
        let task = tokio::spawn(plugins_actor(client, rx));
        *g = Some(PluginsClient { cmd: cmd.clone(), task });
        Ok(cmd)
    }

    /// Ends the plugin client (it leaves the room).
    async fn close_plugins(&self) {
        if let Some(p) = self.plugins.lock().await.take() {
            p.task.abort();
        }
    }
}

/// A request to a session's plugin client.
#[derive(Debug)]
pub(crate) enum PluginCmd {
    /// The plugins the session may use.
    List(oneshot::Sender<Vec<PluginInfo>>),
    /// Activate a plugin in the room.
    Activate(PluginId, oneshot::Sender<Result<InstanceId, String>>),
    /// Press run on an instance of the room.
    Run(InstanceId, oneshot::Sender<Result<(), String>>),
}

struct PluginsClient {
    cmd: mpsc::Sender<PluginCmd>,
    task: JoinHandle<()>,
}

/// How long a fresh plugin client waits for the relay's plugin list.
const PLUGIN_LIST_WAIT: Duration = Duration::from_secs(10);

/// Owns a session client that joined the room as the bridge's user: answers [`PluginCmd`]s,
/// reads (and drops) the room's frame streams, takes the client's events, and leaves the room
/// if it would become its presenter (the bridge must never own a room's workspace, nor keep a
/// room alive on its own).
async fn plugins_actor(mut client: SessionClient, mut rx: mpsc::Receiver<PluginCmd>) {
    let mut drain = client.connection().map(|c| AbortOnDrop(tokio::spawn(drain_frames(c))));
    // The relay sends the plugin list right after the room's state.
    let _ = tokio::time::timeout(PLUGIN_LIST_WAIT, async {
        loop {
            match client.next_event().await {
                Some(ClientEvent::Plugins(_)) | None => return,
                Some(_) => {}
            }
        }
    })
    .await;
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                Some(PluginCmd::List(tx)) => {
                    let _ = tx.send(client.view().plugins);
                }
                Some(PluginCmd::Activate(p, tx)) => {
                    let r = client.activate(p).await.map_err(|e| e.to_string());
                    let _ = tx.send(r);
                }
                Some(PluginCmd::Run(i, tx)) => {
                    let r = if client.view().instances.contains_key(&i) {
                        client.run(i).await.map_err(|e| e.to_string())
                    } else {
                        Err(format!("no instance {} in this room", i.0))
                    };
                    let _ = tx.send(r);
                }
            },
            ev = client.next_event() => match ev {
                None => break,
                Some(ClientEvent::PresenterChanged(p)) if p == client.view().you => {
                    tracing::info!(room = %client.view().room, "the bridge's client would present the room; it leaves");
                    break;
                }
                Some(ClientEvent::Rejoined(_)) => {
                    drain = client.connection().map(|c| AbortOnDrop(tokio::spawn(drain_frames(c))));
                }
                Some(_) => {}
            },
        }
    }
    drop(drain);
    client.close();
}

/// Reads and drops the frame streams the relay opens to the plugin client (it keeps no scene).
async fn drain_frames(conn: quinn::Connection) {
    while let Ok(mut recv) = conn.accept_uni().await {
        tokio::spawn(async move { while let Ok(Some(_)) = recv.read_chunk(1 << 16, true).await {} });
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The bridge as a plugin: one value per session that activates it.
pub(crate) struct BridgePlugin {
    pub hub: Arc<Hub>,
}

impl Plugin for BridgePlugin {
    async fn on_start(&mut self, session: &Session) -> PluginResult {
        self.hub.attach(session);
        Ok(())
    }

    async fn on_run(&mut self, session: &Session, from: UserId) -> PluginResult {
        self.hub.emit(session.room(), "event.run", json!({ "user": from.0 }));
        Ok(())
    }

    async fn on_presenter_changed(&mut self, session: &Session, presenter: UserId) -> PluginResult {
        self.hub.emit(session.room(), "event.presenter_changed", json!({ "presenter": presenter.0 }));
        Ok(())
    }

    async fn on_menu_event(&mut self, session: &Session, from: UserId, event: MenuEvent) -> PluginResult {
        self.hub.emit(session.room(), "event.menu", json::menu_event(from, &event));
        Ok(())
    }

    async fn on_complexes_added(&mut self, session: &Session, ids: &[ComplexId]) -> PluginResult {
        self.hub.emit(session.room(), "event.complexes_added", json!({ "ids": ids_json(ids) }));
        Ok(())
    }

    async fn on_complexes_removed(&mut self, session: &Session, ids: &[ComplexId]) -> PluginResult {
        self.hub.emit(session.room(), "event.complexes_removed", json!({ "ids": ids_json(ids) }));
        Ok(())
    }

    async fn on_complexes_updated(&mut self, session: &Session, ids: &[ComplexId]) -> PluginResult {
        self.hub.emit(session.room(), "event.complexes_updated", json!({ "ids": ids_json(ids) }));
        Ok(())
    }

    async fn on_selection_changed(&mut self, session: &Session, complex: ComplexId) -> PluginResult {
        self.hub.emit(session.room(), "event.selection_changed", json!({ "complex": complex.0 }));
        Ok(())
    }

    async fn on_stream_interrupted(&mut self, session: &Session, stream: StreamId, reason: &Interrupt) -> PluginResult {
        let mut params = json::interrupt(reason);
        params["stream"] = stream.0.into();
        self.hub.emit(session.room(), "event.stream_interrupted", params);
        Ok(())
    }

    async fn on_stop(&mut self, session: &Session) -> PluginResult {
        if let Ok(a) = self.hub.attached(Some(session.room()))
            && a.session.instance() == session.instance()
        {
            a.close_plugins().await;
        }
        self.hub.detach(session);
        Ok(())
    }
}

fn ids_json(ids: &[ComplexId]) -> Vec<u32> {
    ids.iter().map(|c| c.0).collect()
}

//! The session client: one user in one room. [`ClientCore`] keeps the room's view (users,
//! presenter, plugins, instances) and turns relay messages into [`ClientEvent`]s, sans-IO;
//! [`SessionClient`] drives it over QUIC and offers the requests (activate, run, advanced
//! settings, integrations, deactivate) as async calls.
//!
//! ```no_run
//! use molstream_net::client::{ClientConfig, SessionClient};
//! # async fn run(cfg: ClientConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let mut client = SessionClient::connect(cfg).await?;
//! let plugin = client.wait_for_plugin("Hello").await?;
//! let instance = client.activate(plugin).await?;
//! client.run(instance).await?;
//! while let Some(event) = client.next_event().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use molstream_engine::codec::{FrameHeader, Limits};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

mod room;

use glam::Vec3;
use molstream_engine::{AtomId, ComplexId};

use crate::api::{Level, ToPlugin, ToSession};
use crate::conn::{self, ConnError, Control, ControlReceiver, ControlSender};
use crate::menu::{MenuChange, MenuEvent, MenuId, MenuUpdate, Menus};
use crate::proto::{
    InstanceId, InstanceInfo, PeerMsg, PluginId, PluginInfo, RelayMsg, Role, Scope, StopReason, StreamHead, User,
    UserId,
};
use crate::scene::RoomScene;
use crate::tls::{TransportSettings, Trust};

/// What happened in the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A user joined.
    UserJoined(User),
    /// A user left.
    UserLeft(UserId),
    /// The presenter changed.
    PresenterChanged(UserId),
    /// The plugin list changed.
    Plugins(Vec<PluginInfo>),
    /// An instance started in the room.
    InstanceStarted(InstanceInfo),
    /// An instance of the room stopped.
    InstanceStopped {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: StopReason,
    },
    /// A notification from an instance.
    Notification {
        /// The instance.
        instance: InstanceId,
        /// Severity.
        level: Level,
        /// Text.
        text: String,
    },
    /// A menu of an instance changed; its new state is in [`SessionClient::menus`] /
    /// [`SessionClient::menu`].
    Menu {
        /// The instance.
        instance: InstanceId,
        /// The menu.
        menu: MenuId,
        /// What changed.
        change: MenuChange,
    },
    /// A message from an instance this client does not interpret (yet).
    Message {
        /// The instance.
        instance: InstanceId,
        /// Room, presenter or direct.
        scope: Scope,
        /// The body.
        body: Bytes,
    },
    /// The connection ended (a reconnection follows unless it was refused or turned off).
    Disconnected(String),
    /// Reconnected and joined the room again (a new user id; the relay may have restarted, so
    /// instances may be gone): the room as it is now.
    Rejoined(RoomView),
}

/// A room as one user sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomView {
    /// Room name.
    pub room: String,
    /// This user.
    pub you: UserId,
    /// The presenter.
    pub presenter: UserId,
    /// Users in join order.
    pub users: Vec<User>,
    /// Plugins the session may use.
    pub plugins: Vec<PluginInfo>,
    /// Running instances.
    pub instances: BTreeMap<InstanceId, PluginId>,
}

/// Answers to this client's requests, matched by request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `Activate` succeeded.
    Activated(InstanceId),
    /// A request failed.
    Failed(String),
    /// An integration answered.
    Integration(Result<Bytes, String>),
}

/// The client's protocol state, sans-IO: the room's view. The room's contents (workspace,
/// shapes, menus, users' edits) are kept once, in the [`RoomScene`] of a client that tracks
/// the scene, or (menus only) in a lighter store of one that does not ([`SessionClient`]).
#[derive(Debug, Default)]
pub struct ClientCore {
    view: RoomView,
}

impl ClientCore {
    /// A client that has not joined yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The room as of the last message.
    #[must_use]
    pub fn view(&self) -> &RoomView {
        &self.view
    }

    /// Applies one relay message. Returns the event it makes (if any) and the reply to a
    /// request (if it answers one). Menu updates make no event here: they are applied to the
    /// room's menus where the client keeps them ([`menu_update`]), which makes the event.
    pub fn handle_message(&mut self, msg: RelayMsg) -> (Option<ClientEvent>, Option<(u32, Reply)>) {
        let v = &mut self.view;
        match msg {
            RelayMsg::RoomState { room, you, presenter, users, instances } => {
                v.room = room;
                v.you = you;
                v.presenter = presenter;
                v.users = users;
                v.instances = instances.into_iter().map(|i| (i.id, i.plugin)).collect();
                (None, None)
            }
            RelayMsg::UserJoined { user } => {
                v.users.push(user.clone());
                (Some(ClientEvent::UserJoined(user)), None)
            }
            RelayMsg::UserLeft { user } => {
                v.users.retain(|u| u.id != user);
                (Some(ClientEvent::UserLeft(user)), None)
            }
            RelayMsg::PresenterChanged { presenter } => {
                v.presenter = presenter;
                (Some(ClientEvent::PresenterChanged(presenter)), None)
            }
            RelayMsg::Plugins { plugins } => {
                v.plugins.clone_from(&plugins);
                (Some(ClientEvent::Plugins(plugins)), None)
            }
            RelayMsg::InstanceStarted { instance } => {
                v.instances.insert(instance.id, instance.plugin);
                (Some(ClientEvent::InstanceStarted(instance)), None)
            }
            RelayMsg::InstanceStopped { instance, reason } => {
                v.instances.remove(&instance);
                (Some(ClientEvent::InstanceStopped { instance, reason }), None)
            }
            RelayMsg::FromInstance { instance, scope, body } => match ToSession::decode(&body) {
                Ok(ToSession::Notify { level, text }) => {
                    (Some(ClientEvent::Notification { instance, level, text }), None)
                }
                Ok(ToSession::IntegrationResult { req, result }) => (None, Some((req, Reply::Integration(result)))),
                Ok(ToSession::Menu(_)) => (None, None),
                Ok(_) | Err(_) => (Some(ClientEvent::Message { instance, scope, body }), None),
            },
            RelayMsg::Activated { req, instance } => (None, Some((req, Reply::Activated(instance)))),
            RelayMsg::RequestFailed { req, reason } => (None, Some((req, Reply::Failed(reason)))),
            // Users' edits go to the scene (`client/room.rs`).
            RelayMsg::Pong { .. } | RelayMsg::Welcome { .. } | RelayMsg::FromUser { .. } => (None, None),
            other => {
                tracing::warn!(?other, "host message received by a session client; ignored");
                (None, None)
            }
        }
    }
}

/// A stream of codec frames from one channel of an instance.
#[derive(Debug)]
pub struct FrameStream {
    /// Which instance and channel.
    pub head: StreamHead,
    recv: quinn::RecvStream,
}

impl FrameStream {
    /// The next frame (header and payload as sent), `None` when the channel ended. The header
    /// is checked against `limits` before the payload is read.
    ///
    /// Not cancel-safe: dropping the future after part of a frame was read loses that part, and
    /// the stream is then out of step (do not race it with a timeout you act on).
    ///
    /// # Errors
    /// A header that does not parse, a stream that ends inside a frame, read errors.
    pub async fn next(&mut self, limits: &Limits) -> Result<Option<(FrameHeader, Bytes)>, ConnError> {
        conn::read_frame(&mut self.recv, limits).await
    }
}

/// How a session client reaches the relay.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Relay address.
    pub relay: SocketAddr,
    /// How the relay's certificate is trusted.
    pub trust: Trust,
    /// Room to join.
    pub room: String,
    /// User name.
    pub user: String,
    /// Keepalive and idle timeout.
    pub transport: TransportSettings,
    /// Reconnect when the connection is lost.
    pub reconnect: bool,
    /// First reconnection delay; doubled after each failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest reconnection delay.
    pub max_backoff: Duration,
    /// Keep a copy of the room ([`SessionClient::with_scene`]): read every frame stream of
    /// the room into a [`RoomScene`], apply room-wide messages, and, while presenting, answer
    /// the instances' workspace requests. Off by default: the frame streams are then left to
    /// [`SessionClient::accept_frames`].
    pub scene: bool,
}

impl ClientConfig {
    /// Joining `room` as `user` on the relay at `relay`, trusted as `trust`, with default
    /// timeouts and reconnection.
    #[must_use]
    pub fn new(relay: SocketAddr, trust: Trust, room: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            relay,
            trust,
            room: room.into(),
            user: user.into(),
            transport: TransportSettings::default(),
            reconnect: true,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            scene: false,
        }
    }

    /// The same configuration, keeping a copy of the room ([`ClientConfig::scene`]).
    #[must_use]
    pub fn with_scene(mut self) -> Self {
        self.scene = true;
        self
    }
}

/// Errors of client requests.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connection or protocol error.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// The relay refused the request.
    #[error("request failed: {0}")]
    Failed(String),
    /// The integration answered with an error.
    #[error("integration failed: {0}")]
    Integration(String),
    /// The connection ended before the answer.
    #[error("disconnected")]
    Disconnected,
    /// Nothing awaited happened in time.
    #[error("timed out")]
    Timeout,
    /// The client does not keep a copy of the room ([`ClientConfig::scene`] is off).
    #[error("this client does not track the room's scene")]
    NoScene,
    /// No such complex in the room.
    #[error("no {0} in the room")]
    UnknownComplex(ComplexId),
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Reply>>>>;

/// A menu update of an instance, if `msg` carries one.
#[must_use]
pub fn menu_update(msg: &RelayMsg) -> Option<(InstanceId, MenuUpdate)> {
    match msg {
        RelayMsg::FromInstance { instance, body, .. } => match ToSession::decode(body) {
            Ok(ToSession::Menu(update)) => Some((*instance, update)),
            _ => None,
        },
        _ => None,
    }
}

/// Where a client keeps the room's menus: in its [`RoomScene`] when it tracks the scene, else
/// in a store of its own. One copy either way.
#[derive(Debug, Clone)]
enum MenuStore {
    Scene(Arc<room::Shared>),
    Light(Arc<Mutex<BTreeMap<InstanceId, Menus>>>),
}

impl MenuStore {
    fn apply(&self, instance: InstanceId, update: &MenuUpdate) -> Option<ClientEvent> {
        let r = match self {
            Self::Scene(shared) => {
                let r = shared.scene.lock().map(|mut s| s.apply_menu(instance, update));
                shared.bump();
                r.ok()?
            }
            Self::Light(m) => m.lock().ok()?.entry(instance).or_default().apply(update),
        };
        match r {
            Ok(Some(change)) => Some(ClientEvent::Menu { instance, menu: update.menu(), change }),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(%instance, error = %e, "menu update does not apply; ignored");
                None
            }
        }
    }

    fn with<T>(&self, instance: InstanceId, f: impl FnOnce(Option<&Menus>) -> T) -> T {
        match self {
            Self::Scene(shared) => match shared.scene.lock() {
                Ok(s) => f(s.menus(instance)),
                Err(_) => f(None),
            },
            Self::Light(m) => match m.lock() {
                Ok(g) => f(g.get(&instance)),
                Err(_) => f(None),
            },
        }
    }

    /// The light store forgets an instance's menus (the scene does it itself).
    fn instance_stopped(&self, instance: InstanceId) {
        if let Self::Light(m) = self
            && let Ok(mut g) = m.lock()
        {
            g.remove(&instance);
        }
    }

    /// A new connection: the room is replayed (the scene is reset by the supervisor).
    fn clear(&self) {
        if let Self::Light(m) = self
            && let Ok(mut g) = m.lock()
        {
            g.clear();
        }
    }
}

/// A connected session client. When the connection is lost it reconnects with exponential
/// backoff (unless [`ClientConfig::reconnect`] is off), joins the same room under the same name
/// (with a new user id) and reports [`ClientEvent::Rejoined`].
#[derive(Debug)]
pub struct SessionClient {
    out: mpsc::Sender<PeerMsg>,
    duty: room::DutyQueue,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    view: Arc<Mutex<RoomView>>,
    menus: MenuStore,
    pending: Pending,
    next_req: u32,
    conn: watch::Receiver<Option<quinn::Connection>>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    scene: Option<Arc<room::Shared>>,
}

impl Drop for SessionClient {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

struct Joined {
    conn: quinn::Connection,
    tx: ControlSender,
    rx: ControlReceiver,
    core: ClientCore,
}

async fn join(endpoint: &quinn::Endpoint, cfg: &ClientConfig) -> Result<Joined, ConnError> {
    let conn = conn::connect(endpoint, cfg.relay, cfg.trust, &cfg.transport).await?;
    let mut control = Control::open(&conn).await?;
    control.handshake(Role::SessionClient { room: cfg.room.clone(), user: cfg.user.clone() }).await?;
    let mut core = ClientCore::new();
    // RoomState comes right after Welcome: wait for it so the view is complete.
    let first = control.recv().await?;
    core.handle_message(first);
    let (tx, rx) = control.split();
    Ok(Joined { conn, tx, rx, core })
}

struct Supervisor {
    endpoint: quinn::Endpoint,
    cfg: ClientConfig,
    out_rx: mpsc::Receiver<PeerMsg>,
    events: mpsc::UnboundedSender<ClientEvent>,
    view: Arc<Mutex<RoomView>>,
    menus: MenuStore,
    pending: Pending,
    conn: watch::Sender<Option<quinn::Connection>>,
    shutdown: watch::Receiver<bool>,
    scene: Option<Arc<room::Shared>>,
    duty: room::DutyQueue,
    duty_rx: mpsc::UnboundedReceiver<PeerMsg>,
}

impl Supervisor {
    async fn run(mut self, first: Joined) {
        let mut joined = Some(first);
        let mut backoff = self.cfg.min_backoff;
        loop {
            let j = match joined.take() {
                Some(j) => j,
                None => {
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = self.shutdown.changed() => return,
                    }
                    match join(&self.endpoint, &self.cfg).await {
                        Ok(j) => {
                            backoff = self.cfg.min_backoff;
                            if let Some(shared) = &self.scene {
                                shared.reset();
                            }
                            let _ = self.events.send(ClientEvent::Rejoined(j.core.view().clone()));
                            j
                        }
                        Err(ConnError::Refused(reason)) => {
                            let _ = self.events.send(ClientEvent::Disconnected(reason));
                            return;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "rejoining failed; retrying");
                            backoff = (backoff * 2).min(self.cfg.max_backoff);
                            continue;
                        }
                    }
                }
            };
            let Some(reason) = self.serve(j).await else { return };
            let _ = self.events.send(ClientEvent::Disconnected(reason));
            if let Ok(mut g) = self.pending.lock() {
                g.clear();
            }
            self.conn.send_replace(None);
            if !self.cfg.reconnect || *self.shutdown.borrow() {
                return;
            }
        }
    }

    /// Serves one connection; `None` when the client is closed, else why the connection ended.
    async fn serve(&mut self, j: Joined) -> Option<String> {
        let Joined { conn, mut tx, mut rx, mut core } = j;
        if let Ok(mut g) = self.view.lock() {
            g.clone_from(core.view());
        }
        self.menus.clear();
        self.conn.send_replace(Some(conn.clone()));
        // What the former connection's room tasks left unsent belongs to the room as it was.
        while self.duty_rx.try_recv().is_ok() {
            self.duty.pending.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        let ctx = self.scene.as_ref().map(|shared| room::Ctx {
            shared: shared.clone(),
            out: self.duty.clone(),
            view: self.view.clone(),
            conn: conn.clone(),
        });
        let _frames = ctx.clone().map(|ctx| AbortOnDrop(tokio::spawn(room::accept_frames(ctx))));
        loop {
            tokio::select! {
                Some(m) = self.duty_rx.recv() => {
                    self.duty.pending.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    if let Err(e) = tx.send(&m).await {
                        return Some(e.to_string());
                    }
                }
                m = self.out_rx.recv() => match m {
                    Some(m) => {
                        if let Err(e) = tx.send(&m).await {
                            return Some(e.to_string());
                        }
                    }
                    None => {
                        conn.close(quinn::VarInt::from_u32(0), b"bye");
                        return None;
                    }
                },
                r = rx.recv() => match r {
                    Ok(m) => {
                        if let Some(ctx) = &ctx {
                            room::on_relay_msg(ctx, &m);
                        }
                        let menu = menu_update(&m);
                        let (mut event, reply) = core.handle_message(m);
                        if let Ok(mut g) = self.view.lock() {
                            g.clone_from(core.view());
                        }
                        if let Some((instance, update)) = menu {
                            if core.view().instances.contains_key(&instance) {
                                event = self.menus.apply(instance, &update);
                            } else {
                                tracing::debug!(%instance, "menu update of an instance not in the room; ignored");
                            }
                        }
                        if let Some(ClientEvent::InstanceStopped { instance, .. }) = &event {
                            self.menus.instance_stopped(*instance);
                        }
                        if let Some((req, reply)) = reply
                            && let Some(tx) = self.pending.lock().ok().and_then(|mut g| g.remove(&req))
                        {
                            let _ = tx.send(reply);
                        }
                        if let Some(e) = event {
                            let _ = self.events.send(e);
                        }
                    }
                    Err(e) => return Some(e.to_string()),
                },
                _ = self.shutdown.changed() => {
                    conn.close(quinn::VarInt::from_u32(0), b"bye");
                    return None;
                }
            }
        }
    }
}

impl SessionClient {
    /// Connects, joins the room and starts receiving. Errors of this first connection are
    /// returned; later losses are retried in the background.
    ///
    /// # Errors
    /// Connection errors, or the relay's refusal.
    pub async fn connect(cfg: ClientConfig) -> Result<Self, ConnError> {
        let endpoint = conn::client_endpoint(cfg.relay)?;
        let first = join(&endpoint, &cfg).await?;
        let view = Arc::new(Mutex::new(first.core.view().clone()));
        let (out, out_rx) = mpsc::channel::<PeerMsg>(1024);
        let (ev_tx, events) = mpsc::unbounded_channel();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (conn_tx, conn) = watch::channel(Some(first.conn.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let scene =
            cfg.scene.then(|| Arc::new(room::Shared::new(Limits { max_payload: 256 << 20, ..Limits::default() })));
        let menus = match &scene {
            Some(shared) => MenuStore::Scene(shared.clone()),
            None => MenuStore::Light(Arc::default()),
        };
        let (duty_tx, duty_rx) = mpsc::unbounded_channel();
        let duty = room::DutyQueue { tx: duty_tx, pending: Arc::default() };
        let sup = Supervisor {
            scene: scene.clone(),
            duty: duty.clone(),
            duty_rx,
            endpoint,
            cfg,
            out_rx,
            events: ev_tx,
            view: view.clone(),
            menus: menus.clone(),
            pending: pending.clone(),
            conn: conn_tx,
            shutdown: shutdown_rx,
        };
        let task = tokio::spawn(sup.run(first));
        Ok(Self { out, duty, events, view, menus, pending, next_req: 1, conn, shutdown, task, scene })
    }

    /// The room as of the last message received.
    #[must_use]
    pub fn view(&self) -> RoomView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The next room event; `None` once the connection ended and every event was taken.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// Waits until a plugin named `name` is listed, and returns its id. Events seen meanwhile
    /// are consumed.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`].
    pub async fn wait_for_plugin(&mut self, name: &str) -> Result<PluginId, ClientError> {
        loop {
            if let Some(p) = self.view().plugins.iter().find(|p| p.meta.name == name) {
                return Ok(p.id);
            }
            match self.events.recv().await {
                Some(ClientEvent::Disconnected(_)) | None => return Err(ClientError::Disconnected),
                Some(_) => {}
            }
        }
    }

    async fn send(&self, msg: PeerMsg) -> Result<(), ClientError> {
        self.out.send(msg).await.map_err(|_| ClientError::Disconnected)
    }

    async fn request(&mut self, make: impl FnOnce(u32) -> PeerMsg) -> Result<Reply, ClientError> {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut g) = self.pending.lock() {
            g.insert(req, tx);
        }
        self.send(make(req)).await?;
        rx.await.map_err(|_| ClientError::Disconnected)
    }

    /// Activates a plugin in this room (or returns its running instance).
    ///
    /// # Errors
    /// [`ClientError::Failed`] (unknown or offline plugin), [`ClientError::Disconnected`].
    pub async fn activate(&mut self, plugin: PluginId) -> Result<InstanceId, ClientError> {
        match self.request(|req| PeerMsg::Activate { req, plugin }).await? {
            Reply::Activated(i) => Ok(i),
            Reply::Failed(r) => Err(ClientError::Failed(r)),
            Reply::Integration(_) => Err(ClientError::Failed("unexpected integration answer".into())),
        }
    }

    /// Deactivates an instance of this room (the room gets `InstanceStopped`).
    ///
    /// # Errors
    /// [`ClientError::Disconnected`].
    pub async fn deactivate(&mut self, instance: InstanceId) -> Result<(), ClientError> {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        self.send(PeerMsg::Deactivate { req, instance }).await
    }

    /// Presses run on an instance.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`].
    pub async fn run(&self, instance: InstanceId) -> Result<(), ClientError> {
        self.send(PeerMsg::ToInstance { instance, body: ToPlugin::Run.encode() }).await
    }

    /// Opens an instance's advanced settings.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`].
    pub async fn advanced_settings(&self, instance: InstanceId) -> Result<(), ClientError> {
        self.send(PeerMsg::ToInstance { instance, body: ToPlugin::AdvancedSettings.encode() }).await
    }

    /// Invokes integration hook `name` on an instance and waits for its answer.
    ///
    /// # Errors
    /// [`ClientError::Integration`] with the plugin's error, [`ClientError::Disconnected`].
    pub async fn integration(&mut self, instance: InstanceId, name: &str, args: Bytes) -> Result<Bytes, ClientError> {
        let name = name.to_owned();
        let body = |req| ToPlugin::Integration { req, name, args }.encode();
        match self.request(|req| PeerMsg::ToInstance { instance, body: body(req) }).await? {
            Reply::Integration(Ok(b)) => Ok(b),
            Reply::Integration(Err(e)) => Err(ClientError::Integration(e)),
            Reply::Failed(r) => Err(ClientError::Failed(r)),
            Reply::Activated(_) => Err(ClientError::Failed("unexpected answer".into())),
        }
    }

    /// Sends a raw body to an instance of the room.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`].
    pub async fn send_to_instance(&self, instance: InstanceId, body: Bytes) -> Result<(), ClientError> {
        self.send(PeerMsg::ToInstance { instance, body }).await
    }

    /// The menus of an instance of the room, as of the last message received (a copy, for a
    /// viewer to draw). The copy is updated as messages arrive, so it may be ahead of the
    /// [`ClientEvent::Menu`] events not yet taken.
    #[must_use]
    pub fn menus(&self, instance: InstanceId) -> Menus {
        self.menus.with(instance, |m| m.cloned().unwrap_or_default())
    }

    /// One menu of an instance, as of the last message received.
    #[must_use]
    pub fn menu(&self, instance: InstanceId, menu: MenuId) -> Option<crate::menu::Menu> {
        self.menus.with(instance, |m| m.and_then(|m| m.get(menu).cloned()))
    }

    /// Sends this user's action in a menu to its instance (a press, a slider move, a text
    /// submission, a choice, the menu opened or closed…). The instance answers, if it does,
    /// with menu updates that reach the whole room.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`].
    pub async fn menu_event(&self, instance: InstanceId, event: MenuEvent) -> Result<(), ClientError> {
        self.send(PeerMsg::ToInstance { instance, body: ToPlugin::Menu(event).encode() }).await
    }

    /// Waits for the next frame stream an instance of the room opens to this user (live, or
    /// replayed on joining).
    ///
    /// # Errors
    /// Connection errors (also when not connected right now), a malformed preamble.
    pub async fn accept_frames(&self) -> Result<FrameStream, ConnError> {
        let conn = self.connection().ok_or(ConnError::Finished)?;
        let mut recv = conn.accept_uni().await.map_err(ConnError::Connection)?;
        let head = conn::read_head(&mut recv).await?;
        Ok(FrameStream { head, recv })
    }

    /// Asks for a keyframe on a frame channel after losing sync.
    ///
    /// # Errors
    /// [`ClientError::Disconnected`].
    pub async fn keyframe_wanted(&self, instance: InstanceId, channel: u32) -> Result<(), ClientError> {
        self.send(PeerMsg::KeyframeWanted { instance, channel }).await
    }

    /// The current QUIC connection (frame streams arrive on it as unidirectional streams);
    /// `None` while reconnecting.
    #[must_use]
    pub fn connection(&self) -> Option<quinn::Connection> {
        self.conn.borrow().clone()
    }

    /// Leaves the room and closes the connection; no reconnection follows.
    pub fn close(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Reads the room's scene ([`ClientConfig::scene`]); `None` when the client does not keep
    /// one.
    pub fn with_scene<T>(&self, f: impl FnOnce(&RoomScene) -> T) -> Option<T> {
        let shared = self.scene.as_ref()?;
        let scene = shared.scene.lock().ok()?;
        Some(f(&scene))
    }

    /// Waits until `f` finds what it looks for in the room's scene (it is called now and after
    /// every change), and returns it.
    ///
    /// `f` runs with the scene locked: read the room (menus included, [`RoomScene::menus`])
    /// through its argument, never through this client's own readers ([`Self::menus`],
    /// [`Self::menu`], [`Self::with_scene`]), which would wait for the same lock.
    ///
    /// ```no_run
    /// # use molstream_net::client::SessionClient;
    /// # async fn run(client: &SessionClient) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let atoms = client
    ///     .wait_for(Duration::from_secs(5), |s| s.workspace().complexes().first().map(|c| c.current().positions.len()))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`ClientError::Timeout`], [`ClientError::NoScene`].
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&RoomScene) -> Option<T>,
    ) -> Result<T, ClientError> {
        let shared = self.scene.as_ref().ok_or(ClientError::NoScene)?;
        let mut changes = shared.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(t) = shared.scene.lock().ok().and_then(|s| f(&s)) {
                return Ok(t);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(ClientError::Disconnected),
                Err(_) => return Err(ClientError::Timeout),
            }
        }
    }

    fn room_ctx(&self) -> Result<room::Ctx, ClientError> {
        let shared = self.scene.clone().ok_or(ClientError::NoScene)?;
        let conn = self.connection().ok_or(ClientError::Disconnected)?;
        Ok(room::Ctx { shared, out: self.duty.clone(), view: self.view.clone(), conn })
    }

    /// This user moves atoms of a complex. The move reaches every user of the room (their
    /// [`RoomScene`] shows it; late joiners get it too) and holds over the publishing
    /// instance's frames until it sends the complex anew. The presenter's client (this one, or
    /// another user's) feeds the reading streams on the complex and tells the room's instances
    /// (`ComplexesUpdated` with `by` 0).
    ///
    /// # Errors
    /// [`ClientError::UnknownComplex`], [`ClientError::NoScene`], [`ClientError::Failed`] when
    /// the complex's moved atoms no longer fit one room message (about 70,000 atoms).
    pub async fn move_atoms(&self, complex: ComplexId, moves: &[(AtomId, Vec3)]) -> Result<(), ClientError> {
        let ctx = self.room_ctx()?;
        room::move_atoms(&ctx, complex, moves).map_err(|e| edit_error(complex, e))
    }

    /// This user selects (or deselects) atoms of a complex. The selection is the room's: it
    /// reaches every user (their [`RoomScene`] shows it; late joiners get it too), and the
    /// presenter's client (this one, or another user's) tells the room's instances
    /// (`SelectionChanged`).
    ///
    /// # Errors
    /// [`ClientError::UnknownComplex`], [`ClientError::NoScene`], [`ClientError::Failed`] when
    /// the complex's edits no longer fit one room message.
    pub fn select_atoms(&self, complex: ComplexId, atoms: &[AtomId], selected: bool) -> Result<(), ClientError> {
        let ctx = self.room_ctx()?;
        room::select_atoms(&ctx, complex, atoms, selected).map_err(|e| edit_error(complex, e))
    }
}

fn edit_error(complex: ComplexId, e: room::EditError) -> ClientError {
    match e {
        room::EditError::Unknown => ClientError::UnknownComplex(complex),
        room::EditError::TooLarge(n) => ClientError::Failed(format!(
            "the edits of {complex} take {n} bytes, more than one room message holds ({} bytes)",
            crate::proto::MAX_BODY
        )),
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

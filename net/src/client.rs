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

use bytes::Bytes;
use molstream_engine::codec::{FrameHeader, Limits};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::api::{Level, ToPlugin, ToSession};
use crate::conn::{self, ConnError, Control};
use crate::proto::{
    InstanceId, InstanceInfo, PeerMsg, PluginId, PluginInfo, RelayMsg, Role, Scope, StopReason, StreamHead, User,
    UserId,
};
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
    /// A message from an instance this client does not interpret (yet).
    Message {
        /// The instance.
        instance: InstanceId,
        /// Room, presenter or direct.
        scope: Scope,
        /// The body.
        body: Bytes,
    },
    /// The connection ended.
    Disconnected(String),
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

/// The client's protocol state, sans-IO.
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
    /// request (if it answers one).
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
                Err(_) => (Some(ClientEvent::Message { instance, scope, body }), None),
            },
            RelayMsg::Activated { req, instance } => (None, Some((req, Reply::Activated(instance)))),
            RelayMsg::RequestFailed { req, reason } => (None, Some((req, Reply::Failed(reason)))),
            RelayMsg::Pong { .. } | RelayMsg::Welcome { .. } => (None, None),
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
}

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Reply>>>>;

/// A connected session client.
#[derive(Debug)]
pub struct SessionClient {
    out: mpsc::Sender<PeerMsg>,
    events: mpsc::UnboundedReceiver<ClientEvent>,
    view: Arc<Mutex<RoomView>>,
    pending: Pending,
    next_req: u32,
    conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for SessionClient {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl SessionClient {
    /// Connects, joins the room and starts receiving.
    ///
    /// # Errors
    /// Connection errors, or the relay's refusal.
    pub async fn connect(cfg: ClientConfig) -> Result<Self, ConnError> {
        let endpoint = conn::client_endpoint(cfg.relay)?;
        let conn = conn::connect(&endpoint, cfg.relay, cfg.trust, &cfg.transport).await?;
        let mut control = Control::open(&conn).await?;
        control.handshake(Role::SessionClient { room: cfg.room.clone(), user: cfg.user.clone() }).await?;
        let mut core = ClientCore::new();
        // RoomState comes right after Welcome: wait for it so the view is complete.
        let first = control.recv().await?;
        core.handle_message(first);
        let view = Arc::new(Mutex::new(core.view().clone()));
        let (mut tx, mut rx) = control.split();
        let (out, mut out_rx) = mpsc::channel::<PeerMsg>(1024);
        let (ev_tx, events) = mpsc::unbounded_channel();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if tx.send(&m).await.is_err() {
                    return;
                }
            }
        });
        let (v, p) = (view.clone(), pending.clone());
        let reader = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(m) => {
                        let (event, reply) = core.handle_message(m);
                        if let Ok(mut guard) = v.lock() {
                            guard.clone_from(core.view());
                        }
                        if let Some((req, reply)) = reply
                            && let Some(tx) = p.lock().ok().and_then(|mut g| g.remove(&req))
                        {
                            let _ = tx.send(reply);
                        }
                        if let Some(e) = event {
                            let _ = ev_tx.send(e);
                        }
                    }
                    Err(e) => {
                        let _ = ev_tx.send(ClientEvent::Disconnected(e.to_string()));
                        if let Ok(mut g) = p.lock() {
                            g.clear();
                        }
                        return;
                    }
                }
            }
        });
        Ok(Self { out, events, view, pending, next_req: 1, conn, _endpoint: endpoint, tasks: vec![writer, reader] })
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

    /// Waits for the next frame stream an instance of the room opens to this user (live, or
    /// replayed on joining).
    ///
    /// # Errors
    /// Connection errors, a malformed preamble.
    pub async fn accept_frames(&self) -> Result<FrameStream, ConnError> {
        let mut recv = self.conn.accept_uni().await.map_err(ConnError::Connection)?;
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

    /// The QUIC connection (frame streams arrive on it as unidirectional streams).
    #[must_use]
    pub fn connection(&self) -> &quinn::Connection {
        &self.conn
    }

    /// Leaves the room and closes the connection.
    pub fn close(&self) {
        self.conn.close(quinn::VarInt::from_u32(0), b"bye");
    }
}

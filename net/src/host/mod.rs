//! The plugin host SDK: implement [`Plugin`], register it on a [`PluginHost`], run.
//!
//! Every room that activates a plugin gets its **own instance**: a fresh plugin value made by
//! the factory given at registration, running in its own tokio task. A panic or an error in one
//! instance ends that instance only: its room is told (`InstanceStopped` with
//! `Crashed{message}`) and every other instance goes on. When the connection to the relay is
//! lost, the host reconnects with exponential backoff and registers its plugins again under the
//! same identity (plugin name + host name), so they keep their ids.
//!
//! ```no_run
//! use molstream_net::api::Level;
//! use molstream_net::host::{HostConfig, Plugin, PluginHost, PluginResult, Session};
//! use molstream_net::proto::{PluginMeta, UserId};
//!
//! #[derive(Default)]
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
//!         session.notify(Level::Success, format!("hello, room {}", session.room())).await?;
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let meta = PluginMeta { name: "Hello".into(), ..PluginMeta::default() };
//! PluginHost::new(HostConfig::from_env()?).plugin(meta, Hello::default).run().await?;
//! # Ok(()) }
//! ```

pub mod core;
pub mod menus;
pub mod process;
pub mod reload;
pub mod sdk;

pub use self::sdk::{
    Interrupt, PresenterInfo, ReadingStream, StreamData, StreamError, StreamId, StreamKind, StreamTarget,
    WritingStream, shape,
};

use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use quinn::Connection;
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};

use self::core::{HostCore, HostEvent, integration_answer};
use crate::api::{Level, ToPlugin, ToSession};
use crate::conn::{self, ConnError, Control};
use crate::menu::MenuEvent;
use crate::proto::{InstanceId, PeerMsg, PluginId, PluginMeta, Retain, Role, StreamHead, UserId};
use crate::tls::{self, TlsError, TransportSettings, Trust};
use molstream_engine::ComplexId;
pub use process::Isolation;
pub use reload::ReloadConfig;

/// What plugin callbacks return: any error ends the instance and is reported to its room.
pub type PluginResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One plugin instance serving one room. Every callback has a default that does nothing, so a
/// plugin implements only what it uses. Callbacks of one instance run one at a time, in order.
pub trait Plugin: Send + 'static {
    /// The instance was created for a room (before any request).
    fn on_start(&mut self, session: &Session) -> impl Future<Output = PluginResult> + Send {
        let _ = session;
        async { Ok(()) }
    }

    /// A user pressed run.
    fn on_run(&mut self, session: &Session, from: UserId) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, from);
        async { Ok(()) }
    }

    /// A user opened the advanced settings.
    fn on_advanced_settings(&mut self, session: &Session, from: UserId) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, from);
        async { Ok(()) }
    }

    /// A user invoked integration hook `name`; the answer goes back to that user.
    fn on_integration(
        &mut self,
        session: &Session,
        from: UserId,
        name: &str,
        args: Bytes,
    ) -> impl Future<Output = Result<Bytes, String>> + Send {
        let _ = (session, from, args);
        let msg = format!("integration {name:?} is not supported");
        async move { Err(msg) }
    }

    /// The presenter of the room changed (only when the relay keeps instances on hand-over).
    fn on_presenter_changed(
        &mut self,
        session: &Session,
        presenter: UserId,
    ) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, presenter);
        async { Ok(()) }
    }

    /// The relay asked for a keyframe on a frame channel (a user lost sync or joined late).
    fn on_keyframe_wanted(&mut self, session: &Session, channel: u32) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, channel);
        async { Ok(()) }
    }

    /// A user acted in one of the instance's menus (pressed, moved a slider, submitted text…).
    /// See [`crate::menu`]; send the reaction with [`Session::update_content`] and friends.
    fn on_menu_event(
        &mut self,
        session: &Session,
        from: UserId,
        event: MenuEvent,
    ) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, from, event);
        async { Ok(()) }
    }

    /// Complexes appeared in the room's workspace (reported by the presenter's client).
    fn on_complexes_added(
        &mut self,
        session: &Session,
        ids: &[ComplexId],
    ) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, ids);
        async { Ok(()) }
    }

    /// Complexes left the room's workspace; streams on them were interrupted first.
    fn on_complexes_removed(
        &mut self,
        session: &Session,
        ids: &[ComplexId],
    ) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, ids);
        async { Ok(()) }
    }

    /// Complexes were replaced whole, edited, or changed by the presenter's user.
    fn on_complexes_updated(
        &mut self,
        session: &Session,
        ids: &[ComplexId],
    ) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, ids);
        async { Ok(()) }
    }

    /// The presenter's user changed the selection of a complex.
    fn on_selection_changed(
        &mut self,
        session: &Session,
        complex: ComplexId,
    ) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, complex);
        async { Ok(()) }
    }

    /// A writing or reading stream was interrupted (its complex removed or superseded, its
    /// shape destroyed, the presenter changed); its updates now fail.
    fn on_stream_interrupted(
        &mut self,
        session: &Session,
        stream: StreamId,
        reason: &Interrupt,
    ) -> impl Future<Output = PluginResult> + Send {
        let _ = (session, stream, reason);
        async { Ok(()) }
    }

    /// The instance is being stopped (deactivated, presenter left, room empty).
    fn on_stop(&mut self, session: &Session) -> impl Future<Output = PluginResult> + Send {
        let _ = session;
        async { Ok(()) }
    }
}

/// Errors of a [`Session`] call.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The instance was stopped or the host lost its connection.
    #[error("the instance is no longer connected")]
    Disconnected,
    /// Opening or writing a stream failed.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// The presenter refused the request (an unknown complex or atom, an unsupported request).
    #[error(transparent)]
    Api(#[from] crate::api::ApiError),
    /// No answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The presenter changed before answering.
    #[error("the presenter changed before answering")]
    PresenterChanged,
    /// A frame could not be encoded, or one received could not be decoded.
    #[error(transparent)]
    Codec(#[from] molstream_engine::codec::CodecError),
    /// A structure file could not be loaded.
    #[error(transparent)]
    Load(#[from] molstream_engine::io::LoadError),
    /// The presenter's client answered something that does not fit the request.
    #[error("unexpected answer: {0}")]
    Unexpected(&'static str),
}

#[derive(Debug)]
struct SessionInner {
    instance: InstanceId,
    plugin: PluginId,
    room: String,
    presenter: AtomicU32,
    out: mpsc::Sender<PeerMsg>,
    link: Link,
    menus: tokio::sync::Mutex<menus::MenuBook>,
    api: sdk::InstanceApi,
}

/// How an instance's frame channels reach the relay: its host's QUIC connection, or (in an
/// instance process) the pipe to the host process.
#[derive(Debug)]
enum Link {
    Quic(Connection),
    Pipe(process::PipeLink),
}

/// An instance's handle on its room: who presents, and every way to reach its users.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

impl Session {
    /// The instance id.
    #[must_use]
    pub fn instance(&self) -> InstanceId {
        self.inner.instance
    }

    /// The plugin's relay id.
    #[must_use]
    pub fn plugin(&self) -> PluginId {
        self.inner.plugin
    }

    /// The room (session) name.
    #[must_use]
    pub fn room(&self) -> &str {
        &self.inner.room
    }

    /// The room's presenter (owner of the workspace).
    #[must_use]
    pub fn presenter(&self) -> UserId {
        UserId(self.inner.presenter.load(Ordering::Relaxed))
    }

    async fn push(&self, msg: PeerMsg) -> Result<(), SessionError> {
        self.inner.out.send(msg).await.map_err(|_| SessionError::Disconnected)
    }

    /// Sends a notification to every user of the room.
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn notify(&self, level: Level, text: impl Into<String>) -> Result<(), SessionError> {
        let body = ToSession::Notify { level, text: text.into() }.encode();
        self.send_room(Retain::No, body).await
    }

    /// Sends a body to every user of the room; with [`Retain::Keep`] users joining later get
    /// it too.
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn send_room(&self, retain: Retain, body: Bytes) -> Result<(), SessionError> {
        self.push(PeerMsg::ToRoom { instance: self.inner.instance, retain, body }).await
    }

    /// Sends a request to the presenter (the workspace owner).
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn send_presenter(&self, body: Bytes) -> Result<(), SessionError> {
        self.push(PeerMsg::ToPresenter { instance: self.inner.instance, body }).await
    }

    /// Sends a body to one user of the room.
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn send_user(&self, user: UserId, body: Bytes) -> Result<(), SessionError> {
        self.push(PeerMsg::ToUser { instance: self.inner.instance, user, body }).await
    }

    /// Opens frame channel `channel`: a unidirectional stream of codec frames that the relay
    /// forwards to every user of the room (see the engine's `StreamEncoder`).
    ///
    /// # Errors
    /// [`SessionError::Conn`] if the stream cannot be opened.
    pub async fn open_frames(&self, channel: u32) -> Result<FrameSender, SessionError> {
        match &self.inner.link {
            Link::Quic(c) => {
                let mut send = c.open_uni().await.map_err(ConnError::Connection)?;
                conn::write_head(&mut send, &StreamHead::Frames { instance: self.inner.instance, channel }).await?;
                Ok(FrameSender { sink: FrameSink::Quic(send) })
            }
            Link::Pipe(p) => Ok(FrameSender { sink: FrameSink::Pipe(p.open(channel).await?) }),
        }
    }
}

/// A frame channel of an instance.
#[derive(Debug)]
pub struct FrameSender {
    sink: FrameSink,
}

#[derive(Debug)]
enum FrameSink {
    Quic(quinn::SendStream),
    Pipe(process::PipeFrames),
}

impl FrameSender {
    /// Writes encoded frames (one or more, header and payload each).
    ///
    /// # Errors
    /// [`SessionError::Conn`] when the stream or connection failed.
    pub async fn send(&mut self, frames: &[u8]) -> Result<(), SessionError> {
        match &mut self.sink {
            FrameSink::Quic(s) => s.write_all(frames).await.map_err(|e| SessionError::Conn(ConnError::Write(e))),
            FrameSink::Pipe(p) => p.send(frames).await,
        }
    }

    /// Ends the channel.
    pub fn finish(self) {
        match self.sink {
            FrameSink::Quic(mut s) => {
                let _ = s.finish();
            }
            FrameSink::Pipe(p) => p.finish(),
        }
    }
}

/// How a plugin host reaches the relay.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Relay address.
    pub relay: SocketAddr,
    /// How the relay's certificate is trusted.
    pub trust: Trust,
    /// The relay's plugin key.
    pub key: String,
    /// This host's name (part of each plugin's identity).
    pub host_name: String,
    /// Keepalive and idle timeout.
    pub transport: TransportSettings,
    /// First reconnection delay; doubled after each failure up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest reconnection delay.
    pub max_backoff: Duration,
    /// Where instances run: tasks of this process (default) or one process each.
    pub isolation: Isolation,
    /// Restart the host when its files change (`--auto-reload`); `None`: off.
    pub reload: Option<ReloadConfig>,
}

/// Errors of the plugin host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The relay refused the host (a wrong key): not retried.
    #[error("the relay refused this host: {0}")]
    Refused(String),
    /// Configuration (address, fingerprint, trust).
    #[error("configuration: {0}")]
    Config(String),
    /// TLS.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The default relay address.
pub const DEFAULT_RELAY: &str = "127.0.0.1:4433";

impl HostConfig {
    /// A configuration for `relay` trusted as `trust`, with `key`, the machine's host name and
    /// default timeouts.
    #[must_use]
    pub fn new(relay: SocketAddr, trust: Trust, key: impl Into<String>) -> Self {
        let host_name = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
        Self {
            relay,
            trust,
            key: key.into(),
            host_name,
            transport: TransportSettings::default(),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            isolation: Isolation::Task,
            reload: None,
        }
    }

    /// From the environment: `MOLSTREAM_RELAY` (default 127.0.0.1:4433), `MOLSTREAM_KEY`
    /// (literal or file path; default the `plugin-key` file of the default config directory),
    /// `MOLSTREAM_RELAY_CERT_SHA256` (pin), or `MOLSTREAM_INSECURE_LOCAL=1`. Without a pin on
    /// a loopback relay whose config directory is local, the pin is read from its certificate.
    /// `MOLSTREAM_HOST_NAME` names the host, `MOLSTREAM_ISOLATION=process` isolates instances.
    ///
    /// # Errors
    /// [`HostError::Config`] for an unresolvable address or a missing/invalid pin.
    pub fn from_env() -> Result<Self, HostError> {
        let relay_s = std::env::var("MOLSTREAM_RELAY").unwrap_or_else(|_| DEFAULT_RELAY.into());
        let relay = resolve_addr(&relay_s)?;
        let dir = tls::default_config_dir();
        let key = match std::env::var("MOLSTREAM_KEY") {
            Ok(k) => tls::resolve_key(&k)?,
            Err(_) => tls::resolve_key(&dir.join("plugin-key").to_string_lossy())?,
        };
        let trust = trust_from(
            std::env::var("MOLSTREAM_RELAY_CERT_SHA256").ok().as_deref(),
            std::env::var("MOLSTREAM_INSECURE_LOCAL").is_ok_and(|v| v == "1" || v == "true"),
            relay,
        )?;
        let mut cfg = Self::new(relay, trust, key);
        if let Ok(h) = std::env::var("MOLSTREAM_HOST_NAME")
            && !h.is_empty()
        {
            cfg.host_name = h;
        }
        if std::env::var("MOLSTREAM_ISOLATION").is_ok_and(|v| v == "process") {
            cfg.isolation = Isolation::Process;
        }
        Ok(cfg)
    }
}

/// The flags every plugin binary shares, after the reference plugin workflow: relay address,
/// key, certificate pin, `--insecure-local`, a name override and verbosity. Use
/// `HostArgs::parse()` or `#[command(flatten)]` it into your own flags.
#[derive(Debug, Clone, clap::Parser)]
pub struct HostArgs {
    /// Relay address (host:port).
    #[arg(long, env = "MOLSTREAM_RELAY", default_value = DEFAULT_RELAY)]
    pub relay: String,
    /// The relay's plugin key: a literal or the path of a file holding it
    /// [default: the relay's `plugin-key` file in the local config directory].
    #[arg(long, env = "MOLSTREAM_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// SHA-256 fingerprint of the relay's certificate, as the relay prints it.
    #[arg(long, env = "MOLSTREAM_RELAY_CERT_SHA256")]
    pub relay_cert_sha256: Option<String>,
    /// Accept any relay certificate (loopback relays only; development).
    #[arg(long)]
    pub insecure_local: bool,
    /// Show the plugin under this name instead of its own.
    #[arg(long)]
    pub name: Option<String>,
    /// This host's name in the plugin's identity [default: $HOSTNAME or localhost].
    #[arg(long, env = "MOLSTREAM_HOST_NAME")]
    pub host_name: Option<String>,
    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Where each instance runs: `task` (a task of this process; panics are caught) or
    /// `process` (an OS process of its own; any crash is caught).
    #[arg(long, value_enum, env = "MOLSTREAM_ISOLATION", default_value_t = Isolation::Task)]
    pub isolation: Isolation,
    /// Restart the plugin when its files change: the executable, `--watch` paths, and under
    /// `cargo run` the crate's `src/`, `examples/` and `Cargo.toml` (rebuilt first). Sessions
    /// stay up and can run the plugin again.
    #[arg(long)]
    pub auto_reload: bool,
    /// With --auto-reload: also watch this file or directory (repeatable).
    #[arg(long, value_name = "PATH", requires = "auto_reload")]
    pub watch: Vec<std::path::PathBuf>,
    /// With --auto-reload: run this shell command before each restart [default under `cargo
    /// run`: `cargo build` of this binary].
    #[arg(long, value_name = "CMD", requires = "auto_reload")]
    pub rebuild: Option<String>,
}

impl HostArgs {
    /// The host configuration these flags describe.
    ///
    /// # Errors
    /// [`HostError::Config`] for an unresolvable relay or no way to trust it.
    pub fn config(&self) -> Result<HostConfig, HostError> {
        let relay = resolve_addr(&self.relay)?;
        let key = match &self.key {
            Some(k) => tls::resolve_key(k)?,
            None => tls::resolve_key(&tls::default_config_dir().join("plugin-key").to_string_lossy())?,
        };
        let trust = trust_from(self.relay_cert_sha256.as_deref(), self.insecure_local, relay)?;
        let mut cfg = HostConfig::new(relay, trust, key);
        if let Some(h) = &self.host_name {
            cfg.host_name.clone_from(h);
        }
        cfg.isolation = self.isolation;
        if self.auto_reload {
            cfg.reload = Some(ReloadConfig::from_flags(&self.watch, self.rebuild.as_deref()));
        }
        Ok(cfg)
    }

    /// `meta` with the `--name` override applied.
    #[must_use]
    pub fn meta(&self, mut meta: PluginMeta) -> PluginMeta {
        if let Some(n) = &self.name {
            meta.name.clone_from(n);
        }
        meta
    }

    /// Logs to stderr at the `-v` level (`RUST_LOG` overrides). Does nothing if a subscriber
    /// is already installed.
    pub fn init_logging(&self) {
        let level = match self.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("molstream_net={level},warn")));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
}

/// Resolves `host:port` to one socket address.
///
/// # Errors
/// [`HostError::Config`].
pub fn resolve_addr(s: &str) -> Result<SocketAddr, HostError> {
    s.to_socket_addrs()
        .map_err(|e| HostError::Config(format!("relay address {s:?}: {e}")))?
        .next()
        .ok_or_else(|| HostError::Config(format!("relay address {s:?} resolves to nothing")))
}

/// Picks the trust: an explicit pin, `--insecure-local`, or (for a loopback relay) the
/// certificate in the local config directory, as a relay started on this machine stores it.
///
/// # Errors
/// [`HostError::Config`] when none applies.
pub fn trust_from(pin: Option<&str>, insecure_local: bool, relay: SocketAddr) -> Result<Trust, HostError> {
    if let Some(p) = pin {
        return Ok(Trust::Pinned(tls::parse_fingerprint(p)?));
    }
    if insecure_local {
        return Ok(Trust::InsecureLocal);
    }
    if relay.ip().is_loopback()
        && let Ok(Some(identity)) = tls::RelayIdentity::load(&tls::default_config_dir())
    {
        return Ok(Trust::Pinned(identity.fingerprint()));
    }
    Err(HostError::Config(
        "no relay fingerprint: pass --relay-cert-sha256 (MOLSTREAM_RELAY_CERT_SHA256) or --insecure-local".into(),
    ))
}

type SpawnFn = dyn Fn(Session, mpsc::Receiver<Request>) -> JoinHandle<Result<(), String>> + Send + Sync;

struct Registration {
    meta: PluginMeta,
    spawn: Arc<SpawnFn>,
}

/// Requests delivered to an instance task, in order.
#[derive(Debug)]
enum Request {
    Api { from: UserId, request: ToPlugin },
    Presenter(UserId),
    Keyframe(u32),
}

/// Requests queued per instance; an instance that lets more pile up is ended as stuck.
const INSTANCE_QUEUE: usize = 1024;
/// Messages queued from all instances towards the relay.
const OUT_QUEUE: usize = 4096;
/// How long a stopped instance may take in `on_stop` before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A plugin host: registers plugins with the relay and runs their instances.
pub struct PluginHost {
    cfg: HostConfig,
    plugins: Vec<Registration>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("cfg", &self.cfg)
            .field("plugins", &self.plugins.iter().map(|p| &p.meta.name).collect::<Vec<_>>())
            .finish()
    }
}

/// A host running in the background ([`PluginHost::spawn`]).
#[derive(Debug)]
pub struct HostHandle {
    shutdown: watch::Sender<bool>,
    registered: watch::Receiver<Vec<Option<PluginId>>>,
    task: JoinHandle<Result<(), HostError>>,
}

impl HostHandle {
    /// Waits until every plugin is registered (again, after a reconnection) and returns their
    /// ids in registration order.
    ///
    /// # Errors
    /// [`HostError::Refused`] (or another error) if the host stopped.
    pub async fn registered(&mut self) -> Result<Vec<PluginId>, HostError> {
        loop {
            {
                let ids = self.registered.borrow_and_update();
                if !ids.is_empty() && ids.iter().all(Option::is_some) {
                    return Ok(ids.iter().flatten().copied().collect());
                }
            }
            if self.registered.changed().await.is_err() {
                return Err(HostError::Config("the host stopped".into()));
            }
        }
    }

    /// Whether the host task ended (refused, or shut down).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the host: the connection is closed and every instance ends.
    ///
    /// # Errors
    /// The error the host stopped with, if it had stopped on its own.
    pub async fn shutdown(self) -> Result<(), HostError> {
        let _ = self.shutdown.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(HostError::Config(format!("host task failed: {e}"))),
        }
    }

    /// Waits for the host to stop on its own (e.g. refused).
    ///
    /// # Errors
    /// Why it stopped.
    pub async fn join(self) -> Result<(), HostError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(HostError::Config(format!("host task failed: {e}"))),
        }
    }
}

fn panic_message(e: tokio::task::JoinError) -> Option<String> {
    if !e.is_panic() {
        return None;
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    Some(format!("panicked: {text}"))
}

async fn instance_body<P: Plugin>(mut p: P, s: Session, mut requests: mpsc::Receiver<Request>) -> Result<(), String> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| e.to_string();
    p.on_start(&s).await.map_err(err)?;
    while let Some(r) = requests.recv().await {
        match r {
            Request::Api { from, request: ToPlugin::Run } => p.on_run(&s, from).await.map_err(err)?,
            Request::Api { from, request: ToPlugin::AdvancedSettings } => {
                p.on_advanced_settings(&s, from).await.map_err(err)?;
            }
            Request::Api { from, request: ToPlugin::Integration { req, name, args } } => {
                let result = p.on_integration(&s, from, &name, args).await;
                s.send_user(from, integration_answer(req, result)).await.map_err(|e| e.to_string())?;
            }
            Request::Api { from, request: ToPlugin::Menu(event) } => {
                p.on_menu_event(&s, from, event).await.map_err(err)?;
            }
            Request::Presenter(u) => {
                s.inner.presenter.store(u.0, Ordering::Relaxed);
                sdk::presenter_changed(&mut p, &s, u).await.map_err(err)?;
                p.on_presenter_changed(&s, u).await.map_err(err)?;
            }
            Request::Keyframe(channel) if sdk::owns_channel(channel) => {
                sdk::send_keyframe(&s, channel).await.map_err(|e| e.to_string())?;
            }
            Request::Keyframe(channel) => p.on_keyframe_wanted(&s, channel).await.map_err(err)?,
            Request::Api { from, request } => sdk::on_api(&mut p, &s, from, request).await.map_err(err)?,
        }
    }
    p.on_stop(&s).await.map_err(err)
}

struct RunningInstance {
    requests: mpsc::Sender<Request>,
    session: Session,
    abort: AbortHandle,
}

enum Served {
    Shutdown,
    Lost(String),
}

impl PluginHost {
    /// A host with no plugins yet.
    #[must_use]
    pub fn new(cfg: HostConfig) -> Self {
        Self { cfg, plugins: Vec::new() }
    }

    /// Registers a plugin; `factory` makes one plugin value per instance (per room).
    #[must_use]
    pub fn plugin<P, F>(mut self, meta: PluginMeta, factory: F) -> Self
    where
        P: Plugin,
        F: Fn() -> P + Send + Sync + 'static,
    {
        let spawn: Arc<SpawnFn> =
            Arc::new(move |session, requests| tokio::spawn(instance_body(factory(), session, requests)));
        self.plugins.push(Registration { meta, spawn });
        self
    }

    /// Runs the host until the relay refuses it; reconnects with backoff when the connection
    /// is lost.
    ///
    /// # Errors
    /// [`HostError::Refused`] (wrong key), configuration errors.
    pub async fn run(self) -> Result<(), HostError> {
        let (shutdown, rx) = watch::channel(false);
        let (reg_tx, _reg_rx) = watch::channel(Vec::new());
        let r = self.run_until(rx, reg_tx).await;
        drop(shutdown);
        r
    }

    /// Runs the host in the background.
    #[must_use]
    pub fn spawn(self) -> HostHandle {
        let (shutdown, rx) = watch::channel(false);
        let (reg_tx, registered) = watch::channel(Vec::new());
        let task = tokio::spawn(self.run_until(rx, reg_tx));
        HostHandle { shutdown, registered, task }
    }

    async fn run_until(
        self,
        shutdown: watch::Receiver<bool>,
        registered: watch::Sender<Vec<Option<PluginId>>>,
    ) -> Result<(), HostError> {
        if process::is_instance_process() {
            return process::run_instance_process(&self.plugins).await;
        }
        if let Some(reload) = &self.cfg.reload
            && !reload::is_reload_child()
        {
            return reload::supervise(&self.cfg, reload, shutdown).await;
        }
        let mut shutdown = if reload::is_reload_child() { reload::stop_on_stdin_eof(shutdown) } else { shutdown };
        let endpoint = conn::client_endpoint(self.cfg.relay).map_err(|e| HostError::Config(e.to_string()))?;
        let mut backoff = self.cfg.min_backoff;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match self.serve_once(&endpoint, &mut shutdown, &registered).await {
                Ok(Served::Shutdown) => {
                    endpoint.wait_idle().await;
                    return Ok(());
                }
                Ok(Served::Lost(why)) => {
                    tracing::warn!(%why, "connection to the relay lost; reconnecting");
                    backoff = self.cfg.min_backoff;
                }
                Err(ConnError::Refused(reason)) => return Err(HostError::Refused(reason)),
                Err(ConnError::Tls(e)) => return Err(HostError::Tls(e)),
                Err(e) => {
                    tracing::warn!(error = %e, delay_ms = backoff.as_millis() as u64, "cannot reach the relay; retrying");
                }
            }
            registered.send_replace(vec![None; self.plugins.len()]);
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            backoff = (backoff * 2).min(self.cfg.max_backoff);
        }
    }

    async fn serve_once(
        &self,
        endpoint: &quinn::Endpoint,
        shutdown: &mut watch::Receiver<bool>,
        registered: &watch::Sender<Vec<Option<PluginId>>>,
    ) -> Result<Served, ConnError> {
        let conn = conn::connect(endpoint, self.cfg.relay, self.cfg.trust, &self.cfg.transport).await?;
        let mut control = Control::open(&conn).await?;
        control.handshake(Role::PluginHost { key: self.cfg.key.clone(), host: self.cfg.host_name.clone() }).await?;
        let (mut tx, mut rx) = control.split();
        let metas: Vec<PluginMeta> = self.plugins.iter().map(|p| p.meta.clone()).collect();
        let mut core = HostCore::new(&metas);
        registered.send_replace(vec![None; self.plugins.len()]);
        // Instances push their messages here; the core filters those of stopped instances.
        let (out_tx, mut out_rx) = mpsc::channel::<PeerMsg>(OUT_QUEUE);
        let (ended_tx, mut ended_rx) = mpsc::channel::<(InstanceId, Option<String>)>(64);
        let mut running: HashMap<InstanceId, RunningInstance> = HashMap::new();
        // Uplinks (frame streams from users to instances) arrive as unidirectional streams.
        let (uplink_tx, mut uplink_rx) = mpsc::channel::<(InstanceId, UserId, u32, quinn::RecvStream)>(64);
        let uplinks = tokio::spawn(accept_uplinks(conn.clone(), uplink_tx));
        let result = 'serve: loop {
            while let Some(m) = core.poll_transmit() {
                if let Err(e) = tx.send(&m).await {
                    break 'serve Served::Lost(e.to_string());
                }
            }
            while let Some(ev) = core.poll_event() {
                match ev {
                    HostEvent::Registered { local, plugin } => {
                        registered.send_modify(|ids| {
                            if let Some(slot) = ids.get_mut(local) {
                                *slot = Some(plugin);
                            }
                        });
                    }
                    HostEvent::RegisterFailed { local, reason } => {
                        tracing::error!(plugin = %self.plugins[local].meta.name, %reason, "not registered");
                    }
                    HostEvent::Start { instance, local, room, presenter } => {
                        let Some(plugin) = core.plugin_id(local) else { continue };
                        let session = Session {
                            inner: Arc::new(SessionInner {
                                instance,
                                plugin,
                                room,
                                presenter: AtomicU32::new(presenter.0),
                                out: out_tx.clone(),
                                link: Link::Quic(conn.clone()),
                                menus: tokio::sync::Mutex::default(),
                                api: sdk::InstanceApi::default(),
                            }),
                        };
                        let (req_tx, req_rx) = mpsc::channel(INSTANCE_QUEUE);
                        let handle = match self.cfg.isolation {
                            Isolation::Task => (self.plugins[local].spawn)(session.clone(), req_rx),
                            Isolation::Process => process::spawn_instance(local, session.clone(), req_rx),
                        };
                        let abort = handle.abort_handle();
                        let ended = ended_tx.clone();
                        tokio::spawn(async move {
                            let error = match handle.await {
                                Ok(Ok(())) => None,
                                Ok(Err(e)) => Some(e),
                                Err(e) => match panic_message(e) {
                                    Some(p) => Some(p),
                                    None => Some("aborted".into()),
                                },
                            };
                            let _ = ended.send((instance, error)).await;
                        });
                        tracing::info!(%instance, plugin = %self.plugins[local].meta.name, room = %session.room(), "instance started");
                        running.insert(instance, RunningInstance { requests: req_tx, session, abort });
                    }
                    HostEvent::Stop { instance, reason } => {
                        if let Some(r) = running.remove(&instance) {
                            tracing::info!(%instance, ?reason, "instance stopped by the relay");
                            // Closing the queue runs `on_stop`; abort if it takes too long.
                            drop(r.requests);
                            let abort = r.abort;
                            tokio::spawn(async move {
                                tokio::time::sleep(STOP_GRACE).await;
                                abort.abort();
                            });
                        }
                    }
                    HostEvent::Input { instance, from, request } if sdk::is_reply(&request) => {
                        if let Some(r) = running.get(&instance) {
                            r.session.inner.api.deliver_reply(from, r.session.presenter(), request);
                        }
                    }
                    HostEvent::Input { instance, from, request } => {
                        if let Some(r) = running.get(&instance) {
                            r.session.inner.api.note_event(from, r.session.presenter(), instance, &request);
                        }
                        deliver(&mut running, &mut core, instance, Request::Api { from, request });
                    }
                    HostEvent::Presenter { instance, presenter } => {
                        deliver(&mut running, &mut core, instance, Request::Presenter(presenter));
                    }
                    HostEvent::SendKeyframe { instance, channel } => {
                        deliver(&mut running, &mut core, instance, Request::Keyframe(channel));
                    }
                }
            }
            tokio::select! {
                msg = rx.recv() => match msg {
                    Ok(m) => {
                        if let Err(e) = core.handle_message(m) {
                            conn.close(quinn::VarInt::from_u32(2), e.to_string().as_bytes());
                            break 'serve Served::Lost(e.to_string());
                        }
                    }
                    Err(e) => break 'serve Served::Lost(e.to_string()),
                },
                Some(m) = out_rx.recv() => core.instance_message(m),
                Some((instance, user, channel, mut recv)) = uplink_rx.recv() => match running.get(&instance) {
                    Some(r) => r.session.inner.api.uplink_arrived(user, channel, recv),
                    None => {
                        let _ = recv.stop(quinn::VarInt::from_u32(0));
                    }
                },
                Some((instance, error)) = ended_rx.recv() => {
                    if let Some(e) = &error {
                        tracing::warn!(%instance, error = %e, "instance failed");
                    }
                    running.remove(&instance);
                    core.instance_ended(instance, error);
                }
                _ = shutdown.changed() => {
                    conn.close(quinn::VarInt::from_u32(0), b"plugin host shutting down");
                    break 'serve Served::Shutdown;
                }
            }
        };
        uplinks.abort();
        for (_, r) in running.drain() {
            r.abort.abort();
            drop(r.session);
        }
        registered.send_replace(vec![None; self.plugins.len()]);
        Ok(result)
    }
}

/// Accepts the relay's unidirectional streams (uplinks from users, `StreamHead::FromUser`) and
/// hands them to the serve loop; anything else is refused.
async fn accept_uplinks(conn: Connection, tx: mpsc::Sender<(InstanceId, UserId, u32, quinn::RecvStream)>) {
    while let Ok(mut recv) = conn.accept_uni().await {
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(Duration::from_secs(10), conn::read_head(&mut recv)).await {
                Ok(Ok(StreamHead::FromUser { instance, user, channel })) => {
                    let _ = tx.send((instance, user, channel, recv)).await;
                }
                other => {
                    tracing::warn!(?other, "a stream from the relay that is not an uplink refused");
                    let _ = recv.stop(quinn::VarInt::from_u32(0));
                }
            }
        });
    }
}

/// Queues a request for an instance; an instance whose queue is full is stuck: it is aborted
/// and reported as failed, and the others go on.
fn deliver(running: &mut HashMap<InstanceId, RunningInstance>, core: &mut HostCore, instance: InstanceId, r: Request) {
    let Some(inst) = running.get(&instance) else { return };
    if let Err(mpsc::error::TrySendError::Full(_)) = inst.requests.try_send(r) {
        tracing::error!(%instance, "instance does not keep up with its requests; ending it");
        if let Some(inst) = running.remove(&instance) {
            inst.abort.abort();
        }
        core.instance_ended(
            instance,
            Some(format!("more than {INSTANCE_QUEUE} requests pending: instance not responding")),
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn host_flags_make_a_config() {
        let pin = "ab".repeat(32);
        let args = HostArgs::try_parse_from([
            "plugin",
            "--relay",
            "127.0.0.1:5000",
            "--key",
            "k3y",
            "--relay-cert-sha256",
            &pin,
            "--name",
            "Renamed",
            "--host-name",
            "lab-7",
            "-vv",
        ])
        .unwrap();
        let cfg = args.config().unwrap();
        assert_eq!(cfg.relay, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(cfg.key, "k3y");
        assert_eq!(cfg.trust, Trust::Pinned([0xab; 32]));
        assert_eq!(cfg.host_name, "lab-7");
        assert_eq!(args.verbose, 2);
        let meta = args.meta(PluginMeta { name: "Original".into(), ..PluginMeta::default() });
        assert_eq!(meta.name, "Renamed");
    }

    #[test]
    fn a_remote_relay_needs_a_pin() {
        let args = HostArgs::try_parse_from(["plugin", "--relay", "192.0.2.1:4433", "--key", "k"]).unwrap();
        assert!(matches!(args.config(), Err(HostError::Config(m)) if m.contains("--relay-cert-sha256")));
        let args = HostArgs::try_parse_from(["plugin", "--relay", "192.0.2.1:4433", "--key", "k", "--insecure-local"])
            .unwrap();
        // Accepted as configuration; connecting is refused later (loopback only).
        assert_eq!(args.config().unwrap().trust, Trust::InsecureLocal);
        let bad = HostArgs::try_parse_from(["plugin", "--relay-cert-sha256", "xyz", "--key", "k"]).unwrap();
        assert!(bad.config().is_err());
    }
}

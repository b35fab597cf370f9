//! # molstream-bridge
//!
//! External control of live molstream sessions: a web page, a notebook, a script or another
//! service drives a session through **JSON-RPC 2.0** over **Redis pub/sub** or a
//! **WebSocket**, and a small web console is served from the WebSocket's port.
//!
//! The bridge joins sessions the way a plugin instance does: it registers one plugin
//! ("External control") with the relay through [`PluginHost`], and each session that activates
//! it gets an instance whose [`Session`] serves the callers of that session. The methods map
//! onto the instance API (workspace and complexes, shapes, streams, menus, notifications,
//! presenter info, structure files); plugin listing and activation, which an instance cannot
//! do, go through a session client the bridge joins the room with on first use. Session events
//! (complexes added, removed and updated, selection changes, menu actions, streams
//! interrupted) reach the callers as JSON-RPC notifications, and the bridge can ask its caller
//! for a file by name (`file.read`) before loading it.
//!
//! - [`rpc`]: JSON-RPC 2.0 parsing, validation, errors and codes, limits;
//! - [`json`]: the JSON forms of complexes, shapes, streams and menus;
//! - [`methods`]: the method table;
//! - [`redis`]: the Redis transport (channels and envelopes);
//! - [`ws`]: the WebSocket transport and the console;
//! - [`client`]: [`BridgeClient`], a Rust caller over either transport.
//!
//! `bridge/README.md` documents the channels, payloads, methods, events, error codes, limits
//! and security choices.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
mod hub;
pub mod json;
pub mod methods;
pub mod redis;
pub mod rpc;
mod serve;
pub mod ws;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use client::{BridgeClient, ClientError};
pub use hub::generate_token;
use molstream_net::host::{HostConfig, HostError, HostHandle, Isolation, PluginHost, Session};
use molstream_net::proto::{PluginId, PluginMeta};
pub use redis::RedisConfig;
pub use rpc::{Limits, RpcError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::hub::{BridgePlugin, Hub, HubConfig, TokenCheck};

/// The name the bridge registers its plugin under.
pub const PLUGIN_NAME: &str = "External control";
/// The default WebSocket address (loopback only).
pub const DEFAULT_WS: &str = "127.0.0.1:8765";
/// How long the bridge waits for its caller's answer to `file.read` by default.
pub const DEFAULT_CALLER_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a bridge.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// How the bridge's plugin host reaches the relay (its isolation is always `task`: the
    /// instances share the transports).
    pub host: HostConfig,
    /// The plugin as sessions see it (name [`PLUGIN_NAME`] by default).
    pub plugin: PluginMeta,
    /// The token callers must present.
    pub token: String,
    /// Size limits.
    pub limits: Limits,
    /// How long the bridge waits for its caller's answers.
    pub caller_timeout: Duration,
    /// The user name of the bridge's session client (plugin listing and activation).
    pub user_name: String,
    /// The Redis transport, if any.
    pub redis: Option<RedisConfig>,
    /// The WebSocket transport's address, if any.
    pub websocket: Option<SocketAddr>,
}

impl BridgeConfig {
    /// A bridge on the relay of `host` with `token`, the default limits, no transport yet.
    #[must_use]
    pub fn new(host: HostConfig, token: impl Into<String>) -> Self {
        Self {
            host,
            plugin: default_meta(),
            token: token.into(),
            limits: Limits::default(),
            caller_timeout: DEFAULT_CALLER_TIMEOUT,
            user_name: "bridge".into(),
            redis: None,
            websocket: None,
        }
    }
}

/// The bridge plugin's description.
#[must_use]
pub fn default_meta() -> PluginMeta {
    PluginMeta {
        name: PLUGIN_NAME.into(),
        description: "Lets outside programs (web pages, notebooks, scripts, services) drive this session through \
                      JSON-RPC 2.0 over Redis or WebSocket."
            .into(),
        category: "Integration".into(),
        tags: vec!["json-rpc".into(), "redis".into(), "websocket".into()],
        ..PluginMeta::default()
    }
}

/// Errors starting a bridge.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The WebSocket address could not be bound.
    #[error("binding the WebSocket address {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// An empty token.
    #[error("the token must not be empty")]
    EmptyToken,
    /// The plugin host failed.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// A running bridge.
#[derive(Debug)]
pub struct BridgeHandle {
    hub: Arc<Hub>,
    host: HostHandle,
    ws_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    redis_ready: watch::Receiver<BTreeSet<String>>,
}

/// Starts a bridge: its plugin host and its transports.
///
/// # Errors
/// [`BridgeError::Bind`], [`BridgeError::EmptyToken`].
pub async fn start(cfg: BridgeConfig) -> Result<BridgeHandle, BridgeError> {
    if cfg.token.is_empty() {
        return Err(BridgeError::EmptyToken);
    }
    let hub = Arc::new(Hub::new(HubConfig {
        token: TokenCheck::new(&cfg.token),
        limits: cfg.limits,
        caller_timeout: cfg.caller_timeout,
        relay: cfg.host.relay,
        trust: cfg.host.trust,
        user_name: cfg.user_name.clone(),
    }));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut ws_addr = None;
    if let Some(addr) = cfg.websocket {
        let listener = ws::bind(addr).await.map_err(|e| BridgeError::Bind(addr, e))?;
        ws_addr = Some(listener.local_addr().map_err(|e| BridgeError::Bind(addr, e))?);
        tasks.push(tokio::spawn(ws::serve(hub.clone(), listener, shutdown_rx.clone())));
    }
    let (ready_tx, redis_ready) = watch::channel(BTreeSet::new());
    if let Some(r) = cfg.redis.clone() {
        tasks.push(tokio::spawn(redis::run(hub.clone(), r, shutdown_rx.clone(), ready_tx)));
    }
    let mut host_cfg = cfg.host.clone();
    host_cfg.isolation = Isolation::Task;
    host_cfg.reload = None;
    let h = hub.clone();
    let host = PluginHost::new(host_cfg).plugin(cfg.plugin.clone(), move || BridgePlugin { hub: h.clone() }).spawn();
    Ok(BridgeHandle { hub, host, ws_addr, shutdown, tasks, redis_ready })
}

impl BridgeHandle {
    /// The WebSocket transport's bound address (with the real port when 0 was asked).
    #[must_use]
    pub fn websocket_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// Waits until the relay registered the bridge's plugin; returns its id.
    ///
    /// # Errors
    /// The host's error if it stopped (e.g. a wrong key).
    pub async fn registered(&mut self) -> Result<PluginId, HostError> {
        let ids = self.host.registered().await?;
        ids.first().copied().ok_or_else(|| HostError::Config("no plugin registered".into()))
    }

    /// The session of `room`, if it activated the bridge (for direct SDK calls next to the
    /// bridge's, as the benchmark makes).
    #[must_use]
    pub fn session(&self, room: &str) -> Option<Session> {
        self.hub.attached(Some(room)).ok().map(|a| a.session.clone())
    }

    /// The rooms whose sessions activated the bridge.
    #[must_use]
    pub fn rooms(&self) -> BTreeSet<String> {
        self.hub.rooms.borrow().clone()
    }

    /// Waits until the Redis transport listens on `room`'s request channel.
    ///
    /// # Errors
    /// `Err(())` after `timeout`.
    pub async fn redis_ready(&self, room: &str, timeout: Duration) -> Result<(), ()> {
        let mut rx = self.redis_ready.clone();
        tokio::time::timeout(timeout, rx.wait_for(|r| r.contains(room))).await.map_err(|_| ())?.map_err(|_| ())?;
        Ok(())
    }

    /// Stops the transports and the plugin host (every instance ends).
    ///
    /// # Errors
    /// The host's error, if it had stopped on its own.
    pub async fn shutdown(self) -> Result<(), HostError> {
        let _ = self.shutdown.send(true);
        let r = self.host.shutdown().await;
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(5), t).await.is_err() {
                tracing::warn!("a bridge task did not stop in time");
            }
        }
        r
    }
}

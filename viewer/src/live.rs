//! The window's link to a relay, on a background tokio runtime: an embedded relay with the
//! bundled plugins ([`EmbeddedRelay`], what `molstream` without arguments starts) or an
//! external one, and the viewer's own [`SessionClient`] keeping the room's scene.
//!
//! One task owns the client. It waits for whichever comes first: a [`Command`] from the
//! panels, a change of the room's scene, the window having applied the last scene report, or a
//! 20 ms tick; then it sends the window [`Report`]s through the sink it was given (in the
//! window, an `EventLoopProxy`): the scene's changes as [`SceneUpdate`]s from
//! [`SceneSync::diff`], room events (plugins, instances, notifications, menus), answers to
//! commands. Backpressure: at most one scene report is in flight; until the window calls
//! [`LiveSession::consumed`], changes accumulate in the room's scene and the next diff covers
//! them all (a position stream faster than the window draws is coalesced, never queued).
//!
//! A request the client awaits (activate, an integration) holds the task until it is answered
//! (at most [`REQUEST_TIMEOUT`]): `SessionClient` takes `&mut self` for them, so they cannot
//! overlap the scene wait.

use std::collections::hash_map::RandomState;
use std::future::Future as _;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use molstream_net::client::{ClientConfig, ClientError, ClientEvent, RoomView, SessionClient};
use molstream_net::host::{HostConfig, HostHandle, PluginHost};
use molstream_net::menu::Menus;
use molstream_net::proto::{InstanceId, PluginId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use tokio::sync::{Notify, mpsc};

use crate::session::{Command, SceneSync, SceneUpdate};

/// How long a request to the relay or an instance may take before it is given up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long starting the embedded relay and host, and finding a plugin named on the command
/// line, may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long joining a room may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the task looks for room events when nothing else woke it.
const TICK: Duration = Duration::from_millis(20);

/// Errors starting a session.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The tokio runtime could not be built.
    #[error("cannot start the network runtime: {0}")]
    Runtime(std::io::Error),
    /// The embedded relay could not start.
    #[error("embedded relay: {0}")]
    Relay(#[from] molstream_net::relay::RelayError),
    /// TLS identity.
    #[error("embedded relay: {0}")]
    Tls(#[from] molstream_net::tls::TlsError),
    /// The embedded plugin host.
    #[error("embedded plugin host: {0}")]
    Host(#[from] molstream_net::host::HostError),
    /// Connecting the session client.
    #[error("cannot join the room: {0}")]
    Connect(#[from] molstream_net::conn::ConnError),
    /// A request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Something did not happen in time.
    #[error("{0} did not happen within {1:?}")]
    Timeout(&'static str, Duration),
}

/// 128 bits as hex from std's per-process random hash keys (the embedded relay's plugin key:
/// the host gets it in memory; other users of the machine cannot guess it).
fn random_key() -> String {
    let word = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.finish()
    };
    format!("{:016x}{:016x}", word(1), word(2))
}

/// A relay on loopback (an ephemeral port, a certificate made for this run and pinned by its
/// clients, a random plugin key) and a plugin host registered with it, in this process.
#[derive(Debug)]
pub struct EmbeddedRelay {
    relay: RelayServer,
    host: HostHandle,
}

impl EmbeddedRelay {
    /// Starts the relay and a host with the plugins `plugins` adds (e.g.
    /// `molstream_plugins::register_all`), and waits until they are registered. Must run inside
    /// a tokio runtime.
    ///
    /// # Errors
    /// [`LiveError`] when the relay cannot listen or the host is not registered within
    /// [`START_TIMEOUT`].
    pub async fn start(plugins: impl FnOnce(PluginHost) -> PluginHost) -> Result<Self, LiveError> {
        let (identity, _, _) = RelayIdentity::generate()?;
        let key = random_key();
        let cfg = RelayConfig { plugin_key: key.clone(), ..RelayConfig::default() };
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let relay = RelayServer::start(cfg, &identity, listen, &TransportSettings::default())?;
        let host_cfg = HostConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), key);
        let mut host = plugins(PluginHost::new(host_cfg)).spawn();
        match tokio::time::timeout(START_TIMEOUT, host.registered()).await {
            Ok(r) => {
                r?;
            }
            Err(_) => return Err(LiveError::Timeout("registering the bundled plugins", START_TIMEOUT)),
        }
        Ok(Self { relay, host })
    }

    /// The relay's address (loopback, the port it got).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.relay.local_addr()
    }

    /// How its clients trust it: its certificate's SHA-256.
    #[must_use]
    pub fn trust(&self) -> Trust {
        Trust::Pinned(self.relay.fingerprint())
    }

    /// A client configuration joining `room` as `user`, keeping the room's scene.
    #[must_use]
    pub fn client_config(&self, room: &str, user: &str) -> ClientConfig {
        ClientConfig::new(self.addr(), self.trust(), room, user).with_scene()
    }

    /// Stops the host (its instances stop) and the relay.
    pub async fn shutdown(self) {
        if let Err(e) = self.host.shutdown().await {
            tracing::debug!(error = %e, "embedded host stopped with an error");
        }
        self.relay.shutdown().await;
    }
}

/// Which relay the window joins.
#[derive(Clone, Debug)]
pub enum Target {
    /// An embedded relay with the bundled plugins (`molstream_plugins::register_all`).
    Embedded,
    /// An external relay.
    Relay {
        /// Its address.
        addr: SocketAddr,
        /// How its certificate is trusted.
        trust: Trust,
    },
}

/// What the window's session does.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The relay.
    pub target: Target,
    /// Room name.
    pub room: String,
    /// User name.
    pub user: String,
    /// Plugins activated on joining, by name (in order).
    pub activate: Vec<String>,
    /// Plugins activated and run on joining, by name (in order, after `activate`).
    pub run: Vec<String>,
}

/// What the session tells the window.
#[derive(Clone, Debug)]
pub enum Report {
    /// Joined the room.
    Connected {
        /// The relay's address.
        relay: SocketAddr,
        /// Whether it is the embedded one.
        embedded: bool,
        /// The room as it is.
        view: RoomView,
    },
    /// The room's plugins, users or instances changed: the room as it is now.
    View(RoomView),
    /// A room event (instances started and stopped with their reason, notifications, menus,
    /// disconnections).
    Event(ClientEvent),
    /// An instance's menus as they are now (after a [`ClientEvent::Menu`] or its start/stop).
    Menus {
        /// The instance.
        instance: InstanceId,
        /// Its menus.
        menus: Menus,
    },
    /// Changes of the room's scene. The window calls [`LiveSession::consumed`] once it
    /// applied them; no other scene report comes before.
    Scene {
        /// The changes, in order.
        updates: Vec<SceneUpdate>,
        /// Frames the scene applied since the client joined.
        frames_applied: u64,
        /// Time spent finding the changes, ms.
        diff_ms: f64,
    },
    /// A plugin was activated from this window.
    Activated {
        /// The plugin.
        plugin: PluginId,
        /// Its instance in the room.
        instance: InstanceId,
    },
    /// An integration answered.
    Integration {
        /// The instance.
        instance: InstanceId,
        /// The hook.
        name: String,
        /// Its answer as text, or its error.
        result: Result<String, String>,
    },
    /// A command failed (one line).
    Failed(String),
    /// The session could not start or ended for good (one line).
    Fatal(String),
}

/// A running session: the runtime, the task that owns the client, and the way to it.
#[derive(Debug)]
pub struct LiveSession {
    runtime: Option<tokio::runtime::Runtime>,
    commands: mpsc::UnboundedSender<Command>,
    scene_pending: Arc<AtomicBool>,
    consumed: Arc<Notify>,
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl LiveSession {
    /// Starts the runtime and the session task; returns at once. What happens next (joined,
    /// failed, the room's changes) arrives through `sink`.
    ///
    /// # Errors
    /// [`LiveError::Runtime`].
    pub fn start(options: LiveOptions, sink: impl FnMut(Report) + Send + 'static) -> Result<Self, LiveError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("molstream-net")
            .enable_all()
            .build()
            .map_err(LiveError::Runtime)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let scene_pending = Arc::new(AtomicBool::new(false));
        let consumed = Arc::new(Notify::new());
        let task = Task {
            options,
            sink: Box::new(sink),
            commands: rx,
            pending: scene_pending.clone(),
            consumed: consumed.clone(),
        };
        runtime.spawn(task.run());
        Ok(Self { runtime: Some(runtime), commands, scene_pending, consumed })
    }

    /// Sends a command to the room (its answer, if any, arrives as a [`Report`]).
    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::debug!("the session has ended; command dropped");
        }
    }

    /// The window applied the last [`Report::Scene`]: the next one may come.
    pub fn consumed(&self) {
        self.scene_pending.store(false, Ordering::Release);
        self.consumed.notify_one();
    }
}

/// Takes a room event if one is queued, without waiting.
fn try_event(client: &mut SessionClient) -> Option<ClientEvent> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(client.next_event()).poll(&mut cx) {
        Poll::Ready(e) => e,
        Poll::Pending => None,
    }
}

struct Task {
    options: LiveOptions,
    sink: Box<dyn FnMut(Report) + Send>,
    commands: mpsc::UnboundedReceiver<Command>,
    pending: Arc<AtomicBool>,
    consumed: Arc<Notify>,
}

impl Task {
    async fn run(mut self) {
        let (embedded, cfg) = match &self.options.target {
            Target::Embedded => match EmbeddedRelay::start(molstream_plugins::register_all).await {
                Ok(e) => {
                    let cfg = e.client_config(&self.options.room, &self.options.user);
                    (Some(e), cfg)
                }
                Err(e) => return (self.sink)(Report::Fatal(e.to_string())),
            },
            Target::Relay { addr, trust } => {
                (None, ClientConfig::new(*addr, *trust, &self.options.room, &self.options.user).with_scene())
            }
        };
        let relay = cfg.relay;
        match tokio::time::timeout(CONNECT_TIMEOUT, SessionClient::connect(cfg)).await {
            Err(_) => {
                let text = format!("no answer from the relay on {relay} within {CONNECT_TIMEOUT:?}");
                (self.sink)(Report::Fatal(text));
            }
            Ok(Ok(mut client)) => {
                (self.sink)(Report::Connected { relay, embedded: embedded.is_some(), view: client.view() });
                self.start_plugins(&mut client).await;
                self.serve(&mut client).await;
                client.close();
            }
            Ok(Err(e)) => (self.sink)(Report::Fatal(format!("cannot join the room on {relay}: {e}"))),
        }
        if let Some(e) = embedded {
            e.shutdown().await;
        }
    }

    /// Activates (and runs) the plugins named on the command line.
    async fn start_plugins(&mut self, client: &mut SessionClient) {
        let names: Vec<(String, bool)> = (self.options.activate.iter().map(|n| (n.clone(), false)))
            .chain(self.options.run.iter().map(|n| (n.clone(), true)))
            .collect();
        for (name, run) in names {
            let r = async {
                let plugin = tokio::time::timeout(START_TIMEOUT, client.wait_for_plugin(&name))
                    .await
                    .map_err(|_| LiveError::Timeout("the plugin to be listed", START_TIMEOUT))??;
                let instance = tokio::time::timeout(REQUEST_TIMEOUT, client.activate(plugin))
                    .await
                    .map_err(|_| LiveError::Timeout("activation", REQUEST_TIMEOUT))??;
                if run {
                    client.run(instance).await?;
                }
                Ok::<_, LiveError>((plugin, instance))
            }
            .await;
            match r {
                Ok((plugin, instance)) => (self.sink)(Report::Activated { plugin, instance }),
                Err(e) => (self.sink)(Report::Failed(format!("plugin {name:?}: {e}"))),
            }
            (self.sink)(Report::View(client.view()));
        }
    }

    async fn serve(&mut self, client: &mut SessionClient) {
        let mut sync = SceneSync::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let pending = self.pending.load(Ordering::Acquire);
            let mut diff_ms = 0.0;
            let mut frames = 0;
            let changed = |s: &molstream_net::scene::RoomScene| {
                if pending {
                    return None;
                }
                let t = Instant::now();
                let updates = sync.diff(s);
                diff_ms = t.elapsed().as_secs_f64() * 1e3;
                frames = s.frames_applied();
                (!updates.is_empty()).then_some(updates)
            };
            tokio::select! {
                c = self.commands.recv() => match c {
                    Some(c) => self.command(client, c).await,
                    None => return,
                },
                r = client.wait_for(Duration::from_secs(3600), changed) => match r {
                    Ok(updates) => {
                        self.pending.store(true, Ordering::Release);
                        (self.sink)(Report::Scene { updates, frames_applied: frames, diff_ms });
                    }
                    Err(ClientError::Timeout) => {}
                    Err(e) => {
                        (self.sink)(Report::Fatal(format!("the session ended: {e}")));
                        return;
                    }
                },
                () = self.consumed.notified() => {}
                _ = tick.tick() => {}
            }
            self.events(client);
        }
    }

    /// Forwards the room events queued.
    fn events(&mut self, client: &mut SessionClient) {
        let mut view_changed = false;
        while let Some(e) = try_event(client) {
            match &e {
                ClientEvent::Menu { instance, .. }
                | ClientEvent::InstanceStopped { instance, .. }
                | ClientEvent::InstanceStarted(molstream_net::proto::InstanceInfo { id: instance, .. }) => {
                    (self.sink)(Report::Menus { instance: *instance, menus: client.menus(*instance) });
                }
                _ => {}
            }
            view_changed |= !matches!(e, ClientEvent::Menu { .. } | ClientEvent::Notification { .. });
            (self.sink)(Report::Event(e));
        }
        if view_changed {
            (self.sink)(Report::View(client.view()));
        }
    }

    async fn command(&mut self, client: &mut SessionClient, c: Command) {
        let timeout = |what| move |_| LiveError::Timeout(what, REQUEST_TIMEOUT);
        let r: Result<(), LiveError> = match c {
            Command::Activate(plugin) => {
                match tokio::time::timeout(REQUEST_TIMEOUT, client.activate(plugin))
                    .await
                    .map_err(timeout("activation"))
                {
                    Ok(Ok(instance)) => {
                        (self.sink)(Report::Activated { plugin, instance });
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(e),
                }
            }
            Command::Run(i) => client.run(i).await.map_err(LiveError::from),
            Command::AdvancedSettings(i) => client.advanced_settings(i).await.map_err(LiveError::from),
            Command::Deactivate(i) => client.deactivate(i).await.map_err(LiveError::from),
            Command::Integration { instance, name, args } => {
                let answer =
                    tokio::time::timeout(REQUEST_TIMEOUT, client.integration(instance, &name, Bytes::from(args))).await;
                let result = match answer {
                    Ok(Ok(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
                };
                (self.sink)(Report::Integration { instance, name, result });
                Ok(())
            }
            Command::Select { complex, atoms, selected } => {
                client.select_atoms(complex, &atoms, selected).map_err(LiveError::from)
            }
            Command::Menu { instance, event } => client.menu_event(instance, event).await.map_err(LiveError::from),
        };
        if let Err(e) = r {
            (self.sink)(Report::Failed(e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_keys_are_random_and_long() {
        let (a, b) = (random_key(), random_key());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

//! A headless session client for tests and plugin authors: start a relay with your plugins in
//! the test's process, join a room, activate and run a plugin, wait for its effects
//! (structures, shapes, notifications, menus), and render the room offscreen to an image, with
//! the same scene sync and renderer as the window (`crate::session`).
//!
//! ```no_run
//! use std::time::Duration;
//! use molstream_viewer::testing::{HeadlessSession, TestRelay};
//! # async fn t() -> Result<(), molstream_viewer::testing::TestError> {
//! # fn my_plugins(h: molstream_net::host::PluginHost) -> molstream_net::host::PluginHost { h }
//! let relay = TestRelay::start(my_plugins).await?;        // loopback, pinned, your plugins
//! let mut session = relay.join("ci", "tester").await?;
//! session.run("My plugin").await?;                         // activate, then press run
//! let complex = session.wait_for_structure().await?;      // the first complex of the room
//! let shapes = session.wait_for_shapes(1).await?;         // every instance's shapes, ≥ 1
//! let image = session.render(320, 240)?;                  // RGBA, camera framing the room
//! image.write_png(std::path::Path::new("room.png"))?;
//! # Ok(()) }
//! ```
//!
//! Rendering needs a GPU adapter (a software one such as lavapipe is enough); a test may skip
//! it when [`gpu_tests_skipped`] (the workspace's `MOLSTREAM_SKIP_GPU_TESTS=1`).

use std::collections::BTreeMap;
use std::time::Duration;

use molstream_engine::Complex;
use molstream_engine::shape::Shape;
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, ClientError, SessionClient};
use molstream_net::host::PluginHost;
use molstream_net::menu::Menus;
use molstream_net::proto::InstanceId;
use molstream_net::scene::RoomScene;

use crate::live::{EmbeddedRelay, LiveError};
use crate::render::{Headless, ImageError, RenderError, RgbaImage};
use crate::session::{self, SceneSync};
use crate::workspace::SceneData;

/// How long the `wait_for_*` calls wait by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Background of rendered images (the renderer's default), RGBA.
pub const BACKGROUND: [u8; 4] = [255, 255, 255, 255];

/// What can go wrong in a headless session.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// Starting the relay or joining.
    #[error(transparent)]
    Live(#[from] LiveError),
    /// A request, or the room's scene.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Connecting.
    #[error(transparent)]
    Conn(#[from] molstream_net::conn::ConnError),
    /// Nothing awaited happened in time.
    #[error("{what}: nothing within {timeout:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
    },
    /// Rendering.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing an image.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Whether GPU work should be skipped (`MOLSTREAM_SKIP_GPU_TESTS=1`).
#[must_use]
pub fn gpu_tests_skipped() -> bool {
    std::env::var("MOLSTREAM_SKIP_GPU_TESTS").is_ok_and(|v| v == "1")
}

/// A relay on loopback with a plugin host serving the plugins you register, in this process
/// (an [`EmbeddedRelay`]).
#[derive(Debug)]
pub struct TestRelay {
    relay: EmbeddedRelay,
}

impl TestRelay {
    /// Starts the relay and a host with the plugins `plugins` adds, e.g.
    /// `|h| h.plugin(meta, MyPlugin::default)` or `molstream_plugins::register_all`. Must run
    /// inside a tokio runtime (a `#[tokio::test(flavor = "multi_thread")]`).
    ///
    /// # Errors
    /// [`TestError::Live`].
    pub async fn start(plugins: impl FnOnce(PluginHost) -> PluginHost) -> Result<Self, TestError> {
        Ok(Self { relay: EmbeddedRelay::start(plugins).await? })
    }

    /// The relay (address, trust).
    #[must_use]
    pub fn relay(&self) -> &EmbeddedRelay {
        &self.relay
    }

    /// Joins `room` as `user` with a headless session.
    ///
    /// # Errors
    /// [`TestError::Conn`].
    pub async fn join(&self, room: &str, user: &str) -> Result<HeadlessSession, TestError> {
        HeadlessSession::connect(self.relay.client_config(room, user)).await
    }

    /// Stops the host and the relay.
    pub async fn shutdown(self) {
        self.relay.shutdown().await;
    }
}

/// A session client keeping the room's scene, with an offscreen renderer. See the module
/// documentation.
pub struct HeadlessSession {
    client: SessionClient,
    /// How long the `wait_for_*` calls wait.
    pub timeout: Duration,
    sync: SceneSync,
    scene: SceneData,
    headless: Option<Headless>,
    instances: BTreeMap<String, InstanceId>,
}

impl std::fmt::Debug for HeadlessSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadlessSession").field("instances", &self.instances).finish_non_exhaustive()
    }
}

impl HeadlessSession {
    /// Joins a room of any relay; `cfg` keeps the scene whether or not it asked to.
    ///
    /// # Errors
    /// [`TestError::Conn`].
    pub async fn connect(cfg: ClientConfig) -> Result<Self, TestError> {
        let client = SessionClient::connect(cfg.with_scene()).await?;
        Ok(Self {
            client,
            timeout: DEFAULT_TIMEOUT,
            sync: SceneSync::new(),
            scene: SceneData::new(Vec::new()),
            headless: None,
            instances: BTreeMap::new(),
        })
    }

    /// The session client (for any request this type does not wrap).
    #[must_use]
    pub fn client(&self) -> &SessionClient {
        &self.client
    }

    /// The session client, mutably.
    pub fn client_mut(&mut self) -> &mut SessionClient {
        &mut self.client
    }

    /// Activates the plugin named `name` (waiting until it is listed), or returns the instance
    /// this session activated before.
    ///
    /// # Errors
    /// [`TestError::Timeout`], [`TestError::Client`] (the relay refused).
    pub async fn activate(&mut self, name: &str) -> Result<InstanceId, TestError> {
        if let Some(i) = self.instances.get(name) {
            return Ok(*i);
        }
        let timeout = self.timeout;
        let what = || TestError::Timeout { what: format!("plugin {name:?} listed"), timeout };
        let plugin = tokio::time::timeout(timeout, self.client.wait_for_plugin(name)).await.map_err(|_| what())??;
        let instance = self.client.activate(plugin).await?;
        self.instances.insert(name.to_owned(), instance);
        Ok(instance)
    }

    /// Activates the plugin named `name` if needed and presses run.
    ///
    /// # Errors
    /// As [`HeadlessSession::activate`].
    pub async fn run(&mut self, name: &str) -> Result<InstanceId, TestError> {
        let instance = self.activate(name).await?;
        self.client.run(instance).await?;
        Ok(instance)
    }

    /// Waits (at most [`HeadlessSession::timeout`]) until `f` finds what it looks for in the
    /// room's scene; `what` names it in the timeout error.
    ///
    /// # Errors
    /// [`TestError::Timeout`].
    pub async fn wait_for<T>(&self, what: &str, f: impl FnMut(&RoomScene) -> Option<T>) -> Result<T, TestError> {
        match self.client.wait_for(self.timeout, f).await {
            Err(ClientError::Timeout) => Err(TestError::Timeout { what: what.to_owned(), timeout: self.timeout }),
            r => Ok(r?),
        }
    }

    /// The first complex of the room with atoms, once there is one.
    ///
    /// # Errors
    /// [`TestError::Timeout`].
    pub async fn wait_for_structure(&self) -> Result<Complex, TestError> {
        self.wait_for("a structure", |s| {
            s.workspace().complexes().iter().find(|c| c.current().topology.atom_count() > 0).cloned()
        })
        .await
    }

    /// Every instance's shapes, once there are at least `count`.
    ///
    /// # Errors
    /// [`TestError::Timeout`].
    pub async fn wait_for_shapes(&self, count: usize) -> Result<Vec<Shape>, TestError> {
        self.wait_for(&format!("{count} shapes"), |s| {
            let shapes: Vec<Shape> = s.all_shapes().flat_map(|(_, set)| set.iter().cloned()).collect();
            (shapes.len() >= count).then_some(shapes)
        })
        .await
    }

    /// The first notification whose text contains `text`.
    ///
    /// # Errors
    /// [`TestError::Timeout`].
    pub async fn wait_for_notification(&self, text: &str) -> Result<(Level, String), TestError> {
        self.wait_for(&format!("a notification containing {text:?}"), |s| {
            s.notifications().find(|(_, _, t)| t.contains(text)).map(|(_, l, t)| (l, t.to_owned()))
        })
        .await
    }

    /// Waits until `f` finds what it looks for in an instance's menus (checked every 10 ms:
    /// menus are room state the client keeps apart from the scene).
    ///
    /// # Errors
    /// [`TestError::Timeout`].
    pub async fn wait_for_menus<T>(
        &self,
        instance: InstanceId,
        mut f: impl FnMut(&Menus) -> Option<T>,
    ) -> Result<T, TestError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(t) = f(&self.client.menus(instance)) {
                return Ok(t);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TestError::Timeout { what: format!("menus of {instance}"), timeout: self.timeout });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The offscreen renderer (camera, settings, picking), once [`HeadlessSession::render`] made
    /// one.
    pub fn renderer_mut(&mut self) -> Option<&mut crate::render::Renderer> {
        self.headless.as_mut().map(|h| &mut h.renderer)
    }

    /// The scene as the renderer gets it (brought up to date by [`HeadlessSession::sync`]).
    #[must_use]
    pub fn scene(&self) -> &SceneData {
        &self.scene
    }

    /// Brings the renderer's scene up to date with the room (what the window does on each
    /// report) and returns the GPU work it asked for; uploads it when a renderer exists.
    ///
    /// # Errors
    /// [`TestError::Render`].
    pub fn sync(&mut self) -> Result<session::GpuWork, TestError> {
        let sync = &mut self.sync;
        let updates = self.client.with_scene(|s| sync.diff(s)).ok_or(ClientError::NoScene)?;
        let work = session::apply(&mut self.scene, updates);
        if let Some(h) = &mut self.headless {
            session::upload(&work, &self.scene, &mut h.renderer)?;
            for e in &work.effects {
                if let molstream_net::scene::Effect::Focus { ids, zoom, .. } = e {
                    session::focus(&mut h.renderer, &self.scene, ids, *zoom);
                }
            }
        }
        Ok(work)
    }

    /// Renders the room as it is now (`width`×`height`, RGBA, the camera framing every
    /// atom): the room's complexes and every instance's shapes.
    ///
    /// # Errors
    /// [`TestError::Render`] (no adapter, a size the device refuses).
    pub fn render(&mut self, width: u32, height: u32) -> Result<RgbaImage, TestError> {
        match &mut self.headless {
            Some(h) => {
                if h.renderer.size() != (width, height) {
                    h.resize(width, height)?;
                }
            }
            None => {
                let h = Headless::new(width, height)?;
                // A fresh diff reports the whole room to the new renderer.
                self.sync = SceneSync::new();
                self.scene = SceneData::new(Vec::new());
                self.headless = Some(h);
            }
        }
        self.sync()?;
        let Some(h) = &mut self.headless else { return Err(RenderError::Readback("no renderer".into()).into()) };
        h.renderer.fit_camera_to(&self.scene.atoms, &self.scene.transforms);
        Ok(h.render_image()?)
    }
}

//! Shared harness of the bridge tests: a real `redis-server` on a free loopback port, an
//! embedded relay, the bridge (plugin host and transports), a second plugin ("Greeter") to
//! list and activate, and a scene-keeping session client ("ada", the presenter) whose copy of
//! the room the tests check.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use molstream_bridge::{BridgeClient, BridgeConfig, BridgeHandle, Limits, RedisConfig};
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{HostConfig, HostHandle, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{InstanceId, PluginMeta, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::scene::RoomScene;
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::timeout;

pub const KEY: &str = "bridge-test-key";
pub const TOKEN: &str = "test-token-0123456789";
pub const ROOM: &str = "lab";
pub const PREFIX: &str = "molstream:bridge";
pub const T: Duration = Duration::from_secs(30);

/// A `redis-server` of its own on a free loopback port, stopped on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts one. Fails with a clear message when `redis-server` is not installed.
    pub fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need a real Redis; install the Debian package \
                     `redis-server` (it provides /usr/bin/redis-server)"
                )
            });
        let mut r = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(r.url())
                && let Ok(mut c) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut c).is_ok()
            {
                return r;
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                panic!("redis-server exited at start ({status}) on port {port}");
            }
            assert!(Instant::now() < deadline, "redis-server did not answer on port {port} within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A second plugin for `plugins.*`: it tells the room hello when run.
#[derive(Default)]
pub struct Greeter;

impl Plugin for Greeter {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        session.notify(Level::Info, "hello from greeter").await?;
        Ok(())
    }
}

/// Options of a [`World`].
#[derive(Clone)]
pub struct Options {
    pub redis: bool,
    pub websocket: bool,
    pub limits: Limits,
    pub caller_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { redis: true, websocket: true, limits: Limits::default(), caller_timeout: Duration::from_secs(10) }
    }
}

pub struct World {
    pub redis: Option<Redis>,
    pub relay: RelayServer,
    pub trust: Trust,
    pub bridge: BridgeHandle,
    pub greeter: HostHandle,
    /// The presenter, keeping the room's scene.
    pub ada: SessionClient,
    /// The bridge's instance in the room.
    pub instance: InstanceId,
}

impl World {
    pub async fn start(opts: Options) -> Self {
        let redis = opts.redis.then(Redis::start);
        let (identity, _, _) = RelayIdentity::generate().unwrap();
        let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
        let relay =
            RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
        let trust = Trust::Pinned(relay.fingerprint());
        let host = HostConfig::new(relay.local_addr(), trust, KEY);
        let mut cfg = BridgeConfig::new(host.clone(), TOKEN);
        cfg.limits = opts.limits;
        cfg.caller_timeout = opts.caller_timeout;
        cfg.redis = redis.as_ref().map(|r| RedisConfig { url: r.url(), prefix: PREFIX.into() });
        cfg.websocket = opts.websocket.then(|| "127.0.0.1:0".parse().unwrap());
        let mut bridge = molstream_bridge::start(cfg).await.unwrap();
        timeout(T, bridge.registered()).await.unwrap().unwrap();
        let mut greeter = PluginHost::new(host)
            .plugin(PluginMeta { name: "Greeter".into(), ..PluginMeta::default() }, Greeter::default)
            .spawn();
        timeout(T, greeter.registered()).await.unwrap().unwrap();

        let ccfg = ClientConfig::new(relay.local_addr(), trust, ROOM, "ada").with_scene();
        let mut ada = timeout(T, SessionClient::connect(ccfg)).await.unwrap().unwrap();
        let plugin = ada.wait_for_plugin(molstream_bridge::PLUGIN_NAME).await.unwrap();
        let instance = ada.activate(plugin).await.unwrap();
        let deadline = Instant::now() + T;
        while bridge.session(ROOM).is_none() {
            assert!(Instant::now() < deadline, "the bridge's instance never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if redis.is_some() {
            bridge.redis_ready(ROOM, T).await.expect("the bridge never subscribed to the room's channel");
        }
        Self { redis, relay, trust, bridge, greeter, ada, instance }
    }

    pub fn ws_addr(&self) -> SocketAddr {
        self.bridge.websocket_addr().unwrap()
    }

    pub async fn ws_client(&self) -> BridgeClient {
        BridgeClient::websocket(self.ws_addr(), Some(ROOM), TOKEN).await.unwrap()
    }

    pub async fn redis_client(&self) -> BridgeClient {
        BridgeClient::redis(&self.redis.as_ref().unwrap().url(), PREFIX, ROOM, TOKEN).await.unwrap()
    }

    /// Waits until `f` finds what it looks for in ada's copy of the room.
    pub async fn scene<R>(&self, what: &str, f: impl FnMut(&RoomScene) -> Option<R>) -> R {
        self.ada.wait_for(T, f).await.unwrap_or_else(|e| panic!("the scene never showed {what}: {e}"))
    }

    pub async fn stop(self) {
        drop(self.ada);
        self.bridge.shutdown().await.unwrap();
        self.greeter.shutdown().await.unwrap();
        self.relay.shutdown().await;
    }
}

pub fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets").join(name)
}

pub fn asset_text(name: &str) -> String {
    std::fs::read_to_string(asset(name)).unwrap()
}

/// Waits for a notification `method` whose params satisfy `pred`.
pub async fn expect_event(rx: &mut broadcast::Receiver<Value>, method: &str, pred: impl Fn(&Value) -> bool) -> Value {
    timeout(T, async {
        loop {
            let e = rx.recv().await.expect("the event stream ended");
            if e["method"] == method && pred(&e["params"]) {
                return e["params"].clone();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {method} event arrived"))
}

/// The code of a JSON-RPC error answer.
pub fn code(e: &molstream_bridge::ClientError) -> i64 {
    match e {
        molstream_bridge::ClientError::Rpc(r) => r.code,
        other => panic!("not a JSON-RPC error: {other}"),
    }
}

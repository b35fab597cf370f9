//! The `molstream-bridge` binary against an embedded relay: it prints a generated token and
//! its addresses, registers its plugin, serves a session that activates it over WebSocket and
//! Redis, and stops on SIGINT.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{KEY, PREFIX, ROOM, Redis, T};
use molstream_bridge::BridgeClient;
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust, hex};
use serde_json::json;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_a_session() {
    let redis = Redis::start();
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_molstream-bridge"))
        .args(["--relay", &relay.local_addr().to_string(), "--key", KEY])
        .args(["--relay-cert-sha256", &hex(&relay.fingerprint())])
        .args(["--ws-listen", "127.0.0.1:0", "--redis", &redis.url(), "--redis-prefix", PREFIX])
        .env_remove("MOLSTREAM_BRIDGE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("registered as plugin");
            out.push(line);
            if done {
                break;
            }
        }
        out
    });
    let lines = timeout(T, lines).await.expect("the bridge never registered").unwrap();
    let field = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
            .to_owned()
    };
    let token = field("token: ");
    assert_eq!(token.len(), 32, "a generated token of 128 bits in hex");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let ws = field("websocket: ws://");
    let addr: std::net::SocketAddr = ws.split('/').next().unwrap().parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert!(field("console: ").ends_with(&format!("/?token={token}")));

    let trust = Trust::Pinned(relay.fingerprint());
    let mut ada =
        SessionClient::connect(ClientConfig::new(relay.local_addr(), trust, ROOM, "ada").with_scene()).await.unwrap();
    let plugin = ada.wait_for_plugin(molstream_bridge::PLUGIN_NAME).await.unwrap();
    let instance = ada.activate(plugin).await.unwrap();
    let c = BridgeClient::websocket(addr, Some(ROOM), &token).await.unwrap();
    let info = c.wait_ready(T).await.unwrap();
    assert_eq!(info["instance"], instance.0);
    let r = BridgeClient::redis(&redis.url(), PREFIX, ROOM, &token).await.unwrap();
    r.wait_ready(T).await.unwrap();
    r.call("notify", json!({ "text": "from the binary" })).await.unwrap();
    ada.wait_for(T, |s| s.notifications().any(|(_, _, t)| t == "from the binary").then_some(())).await.unwrap();

    // SIGINT stops it cleanly; the room is told its instance stopped.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    timeout(Duration::from_secs(10), async {
        while ada.view().instances.contains_key(&instance) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the bridge's instance outlived the bridge");
    drop((c, r, ada));
    relay.shutdown().await;
}

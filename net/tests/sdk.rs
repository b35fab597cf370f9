//! Plugin host SDK and session client over real QUIC on loopback: several rooms and plugins at
//! once, one instance per room, crashes (panics and errors) isolated to their instance,
//! integrations with request/response, wrong key refused, plugin restart and relay restart
//! recovered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use molstream_net::api::Level;
use molstream_net::client::{ClientConfig, ClientError, ClientEvent, SessionClient};
use molstream_net::host::{HostConfig, HostError, HostHandle, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{InstanceId, PluginMeta, StopReason, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use tokio::time::timeout;

const KEY: &str = "sdk-test-key";
const T: Duration = Duration::from_secs(15);

/// Says who ran it where; doubles integration arguments.
#[derive(Default)]
struct Echo {
    runs: u32,
}

impl Plugin for Echo {
    async fn on_run(&mut self, session: &Session, from: UserId) -> PluginResult {
        self.runs += 1;
        let text =
            format!("run {} in {} by {} (presenter {})", self.runs, session.room(), from.0, session.presenter().0);
        session.notify(Level::Info, text).await?;
        Ok(())
    }

    async fn on_advanced_settings(&mut self, session: &Session, _from: UserId) -> PluginResult {
        session.notify(Level::Success, format!("settings of {}", session.room())).await?;
        Ok(())
    }

    async fn on_integration(&mut self, _s: &Session, _from: UserId, name: &str, args: Bytes) -> Result<Bytes, String> {
        match name {
            "double" => Ok([&args[..], &args[..]].concat().into()),
            other => Err(format!("integration {other:?} is not supported")),
        }
    }
}

/// Panics on run in room "a"; fails its advanced settings with an error.
#[derive(Default)]
struct Crashy;

impl Plugin for Crashy {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        if session.room() == "a" {
            panic!("boom in {}", session.room());
        }
        session.notify(Level::Success, format!("crashy ok in {}", session.room())).await?;
        Ok(())
    }

    async fn on_advanced_settings(&mut self, _session: &Session, _from: UserId) -> PluginResult {
        Err("bad settings".into())
    }
}

fn meta(name: &str, integrations: &[&str]) -> PluginMeta {
    PluginMeta {
        name: name.into(),
        description: format!("{name} test plugin"),
        category: "test".into(),
        integrations: integrations.iter().map(|s| (*s).to_owned()).collect(),
        ..PluginMeta::default()
    }
}

fn start_relay(identity: &RelayIdentity, addr: SocketAddr) -> RelayServer {
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    RelayServer::start(cfg, identity, addr, &TransportSettings::default()).unwrap()
}

fn host_cfg(relay: &RelayServer, key: &str) -> HostConfig {
    let mut cfg = HostConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), key);
    cfg.host_name = "sdk-host".into();
    cfg.min_backoff = Duration::from_millis(50);
    cfg.max_backoff = Duration::from_millis(400);
    cfg
}

fn spawn_host(relay: &RelayServer) -> HostHandle {
    PluginHost::new(host_cfg(relay, KEY))
        .plugin(meta("Echo", &["double"]), Echo::default)
        .plugin(meta("Crashy", &[]), Crashy::default)
        .spawn()
}

async fn client(relay: &RelayServer, room: &str, user: &str) -> SessionClient {
    let cfg = ClientConfig::new(relay.local_addr(), Trust::Pinned(relay.fingerprint()), room, user);
    timeout(T, SessionClient::connect(cfg)).await.unwrap().unwrap()
}

/// The next notification, skipping other events.
async fn notification(c: &mut SessionClient) -> (InstanceId, Level, String) {
    loop {
        match timeout(T, c.next_event()).await.expect("event within the timeout") {
            Some(ClientEvent::Notification { instance, level, text }) => return (instance, level, text),
            Some(ClientEvent::Disconnected(why)) => panic!("disconnected: {why}"),
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

/// The next stop of `instance`, skipping other events.
async fn stopped(c: &mut SessionClient, instance: InstanceId) -> StopReason {
    loop {
        match timeout(T, c.next_event()).await.expect("event within the timeout") {
            Some(ClientEvent::InstanceStopped { instance: i, reason }) if i == instance => return reason,
            Some(_) => {}
            None => panic!("client closed"),
        }
    }
}

#[tokio::test]
async fn several_rooms_and_plugins_with_isolated_crashes() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let relay = start_relay(&identity, "127.0.0.1:0".parse().unwrap());
    let mut host = spawn_host(&relay);
    let ids = timeout(T, host.registered()).await.unwrap().unwrap();
    assert_eq!(ids.len(), 2);

    let mut a1 = client(&relay, "a", "ada").await;
    let mut a2 = client(&relay, "a", "al").await;
    let mut b = client(&relay, "b", "bob").await;
    let mut c = client(&relay, "c", "cy").await;
    let echo = a1.wait_for_plugin("Echo").await.unwrap();
    let crashy = a1.wait_for_plugin("Crashy").await.unwrap();
    assert_eq!((echo, crashy), (ids[0], ids[1]));
    let listed = b.view().plugins;
    assert_eq!(listed.iter().find(|p| p.id == echo).unwrap().meta.integrations, vec!["double".to_owned()]);

    // One Echo instance per room; activating twice in a room returns the same instance.
    let ea = a1.activate(echo).await.unwrap();
    assert_eq!(a2.activate(echo).await.unwrap(), ea);
    let eb = b.activate(echo).await.unwrap();
    let ec = c.activate(echo).await.unwrap();
    assert!(ea != eb && eb != ec && ea != ec);

    // Each room hears its own instance only; both users of room a hear it.
    a2.run(ea).await.unwrap();
    b.run(eb).await.unwrap();
    c.run(ec).await.unwrap();
    let a2_id = a2.view().you;
    let a1_id = a1.view().you;
    let (i, level, text) = notification(&mut a1).await;
    assert_eq!((i, level), (ea, Level::Info));
    assert_eq!(text, format!("run 1 in a by {} (presenter {})", a2_id.0, a1_id.0));
    assert_eq!(notification(&mut a2).await.2, text);
    assert!(notification(&mut b).await.2.starts_with("run 1 in b"));
    assert!(notification(&mut c).await.2.starts_with("run 1 in c"));
    // A session cannot run another room's instance: b's run of a's instance reaches nobody,
    // and b's own instance keeps its count.
    b.run(ea).await.unwrap();
    b.run(eb).await.unwrap();
    assert_eq!(
        notification(&mut b).await.2,
        format!("run 2 in b by {} (presenter {})", b.view().you.0, b.view().you.0)
    );
    a1.run(ea).await.unwrap();
    assert!(notification(&mut a1).await.2.starts_with("run 2 in a"), "b's run must not have reached a's instance");

    // Integrations: request/response to the asking user.
    let doubled = b.integration(eb, "double", Bytes::from_static(b"xy")).await.unwrap();
    assert_eq!(&doubled[..], b"xyxy");
    let err = b.integration(eb, "minimize", Bytes::new()).await.unwrap_err();
    assert!(matches!(&err, ClientError::Integration(e) if e.contains("not supported")), "{err}");
    b.advanced_settings(eb).await.unwrap();
    assert_eq!(notification(&mut b).await, (eb, Level::Success, "settings of b".into()));

    // Crashy in rooms a and b: a panic in a's instance stops only that instance.
    let ka = a1.activate(crashy).await.unwrap();
    let kb = b.activate(crashy).await.unwrap();
    a1.run(ka).await.unwrap();
    assert_eq!(stopped(&mut a1, ka).await, StopReason::Crashed { message: "panicked: boom in a".into() });
    assert_eq!(stopped(&mut a2, ka).await, StopReason::Crashed { message: "panicked: boom in a".into() });
    b.run(kb).await.unwrap();
    assert_eq!(notification(&mut b).await, (kb, Level::Success, "crashy ok in b".into()));
    // Room a's Echo instance is untouched by its neighbour's crash.
    a1.run(ea).await.unwrap();
    assert!(notification(&mut a1).await.2.starts_with("run 3 in a"));
    // An error (not a panic) ends the instance the same way.
    b.advanced_settings(kb).await.unwrap();
    assert_eq!(stopped(&mut b, kb).await, StopReason::Crashed { message: "bad settings".into() });
    // The crashed plugin can be run again in a fresh instance.
    let kb2 = b.activate(crashy).await.unwrap();
    assert_ne!(kb2, kb);
    b.run(kb2).await.unwrap();
    assert_eq!(notification(&mut b).await, (kb2, Level::Success, "crashy ok in b".into()));

    // Deactivation stops the instance for every user of the room.
    a2.deactivate(ea).await.unwrap();
    assert_eq!(stopped(&mut a1, ea).await, StopReason::Deactivated { by: a2_id });
    c.run(ec).await.unwrap();
    assert!(notification(&mut c).await.2.starts_with("run 2 in c"));

    host.shutdown().await.unwrap();
    relay.shutdown().await;
}

#[tokio::test]
async fn wrong_key_stops_the_host_with_the_relays_reason() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let relay = start_relay(&identity, "127.0.0.1:0".parse().unwrap());
    let host = PluginHost::new(host_cfg(&relay, "not-the-key")).plugin(meta("Echo", &[]), Echo::default).spawn();
    let err = timeout(T, host.join()).await.unwrap().unwrap_err();
    assert!(matches!(&err, HostError::Refused(r) if r == "wrong plugin key"), "{err}");
    relay.shutdown().await;
}

#[tokio::test]
async fn plugin_restart_keeps_sessions_up_and_the_plugin_id() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let relay = start_relay(&identity, "127.0.0.1:0".parse().unwrap());
    let mut host = spawn_host(&relay);
    let ids = timeout(T, host.registered()).await.unwrap().unwrap();
    let mut a = client(&relay, "a", "ada").await;
    let echo = a.wait_for_plugin("Echo").await.unwrap();
    let inst = a.activate(echo).await.unwrap();
    host.shutdown().await.unwrap();
    assert_eq!(stopped(&mut a, inst).await, StopReason::PluginStopped);
    // A new host process: same identity, same id; the session runs it again.
    let mut host = spawn_host(&relay);
    assert_eq!(timeout(T, host.registered()).await.unwrap().unwrap(), ids);
    let inst2 = a.activate(echo).await.unwrap();
    assert_ne!(inst2, inst);
    a.run(inst2).await.unwrap();
    assert!(notification(&mut a).await.2.starts_with("run 1 in a"));
    host.shutdown().await.unwrap();
    relay.shutdown().await;
}

#[tokio::test]
async fn relay_restart_is_recovered_by_the_host() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let relay = start_relay(&identity, "127.0.0.1:0".parse().unwrap());
    let addr = relay.local_addr();
    let mut host = spawn_host(&relay);
    timeout(T, host.registered()).await.unwrap().unwrap();
    let mut early = client(&relay, "a", "early").await;
    relay.shutdown().await;
    // The same relay (same certificate, same address) comes back; the old socket is released
    // once the old relay's last task is gone, so binding is retried briefly.
    let mut relay = None;
    for _ in 0..100 {
        let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
        if let Ok(r) = RelayServer::start(cfg, &identity, addr, &TransportSettings::default()) {
            relay = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relay = relay.expect("the address is free again");
    let ids = timeout(T, host.registered()).await.expect("re-registered within the timeout").unwrap();
    assert_eq!(ids.len(), 2);
    // The session client that was connected before the restart rejoins by itself.
    let view = loop {
        match timeout(T, early.next_event()).await.expect("rejoined within the timeout") {
            Some(ClientEvent::Rejoined(view)) => break view,
            Some(_) => {}
            None => panic!("client ended"),
        }
    };
    assert_eq!((view.room.as_str(), view.presenter), ("a", view.you));
    assert_eq!(early.view().you, view.you);
    let echo = early.wait_for_plugin("Echo").await.unwrap();
    let inst = early.activate(echo).await.unwrap();
    early.run(inst).await.unwrap();
    assert!(notification(&mut early).await.2.starts_with("run 1 in a"));
    let mut a = client(&relay, "a", "ada2").await;
    assert_eq!(a.activate(echo).await.unwrap(), inst, "the room's running instance");
    a.run(inst).await.unwrap();
    assert!(notification(&mut a).await.2.starts_with("run 2 in a"));
    host.shutdown().await.unwrap();
    relay.shutdown().await;
}

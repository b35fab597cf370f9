//! The relay over real QUIC on loopback: pinned certificate, plugin key, handshake, routing of
//! control messages and of real codec frames between a raw plugin-host connection and raw
//! session clients, and hostile peers closed alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use molstream_engine::codec::Limits;
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::io::{LoadOptions, load_file};
use molstream_net::conn::{self, ConnError, Control};
use molstream_net::proto::{
    PeerMsg, PluginId, PluginMeta, RelayMsg, Retain, Role, Scope, StopReason, StreamHead, UserId,
};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use quinn::{Connection, Endpoint};
use tokio::time::timeout;

const KEY: &str = "relay-test-key";
const T: Duration = Duration::from_secs(10);

struct Relay {
    server: RelayServer,
    pin: Trust,
}

fn start_relay() -> Relay {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() };
    let server =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    assert_eq!(server.fingerprint(), identity.fingerprint());
    Relay { pin: Trust::Pinned(server.fingerprint()), server }
}

struct Peer {
    _endpoint: Endpoint,
    conn: Connection,
    control: Control,
}

async fn connect(relay: &Relay, trust: Trust) -> Result<Peer, ConnError> {
    let addr = relay.server.local_addr();
    let endpoint = conn::client_endpoint(addr)?;
    let conn = conn::connect(&endpoint, addr, trust, &TransportSettings::default()).await?;
    let control = Control::open(&conn).await?;
    Ok(Peer { _endpoint: endpoint, conn, control })
}

async fn host(relay: &Relay) -> Peer {
    let mut p = connect(relay, relay.pin).await.unwrap();
    let user =
        timeout(T, p.control.handshake(Role::PluginHost { key: KEY.into(), host: "test-host".into() })).await.unwrap();
    assert_eq!(user.unwrap(), None);
    p
}

async fn client(relay: &Relay, room: &str, user: &str) -> (Peer, UserId) {
    let mut p = connect(relay, relay.pin).await.unwrap();
    let role = Role::SessionClient { room: room.into(), user: user.into() };
    let id = timeout(T, p.control.handshake(role)).await.unwrap().unwrap().unwrap();
    assert!(matches!(recv(&mut p).await, RelayMsg::RoomState { .. }));
    assert!(matches!(recv(&mut p).await, RelayMsg::Plugins { .. }));
    (p, id)
}

async fn recv(p: &mut Peer) -> RelayMsg {
    timeout(T, p.control.recv()).await.expect("message within 10 s").unwrap()
}

async fn send(p: &mut Peer, m: &PeerMsg) {
    p.control.send(m).await.unwrap();
}

async fn register(h: &mut Peer, name: &str) -> PluginId {
    let meta = PluginMeta { name: name.into(), category: "test".into(), ..PluginMeta::default() };
    send(h, &PeerMsg::RegisterPlugin { local: 1, meta }).await;
    match recv(h).await {
        RelayMsg::Registered { local: 1, plugin } => plugin,
        other => panic!("{other:?}"),
    }
}

/// The error a closed connection reports: read until the control stream fails.
async fn closed_reason(p: &mut Peer) -> String {
    loop {
        match timeout(T, p.control.recv()).await.expect("close within 10 s") {
            Ok(_) => {}
            Err(e) => return e.relay_reason().map(str::to_owned).unwrap_or_else(|| e.to_string()),
        }
    }
}

#[tokio::test]
async fn handshake_routing_and_frames_over_quic() {
    let relay = start_relay();
    let mut h = host(&relay).await;
    let plugin = register(&mut h, "loader").await;

    let (mut a, ua) = client(&relay, "lab", "ada").await;
    let (mut b, ub) = client(&relay, "lab", "bob").await;
    assert_eq!(
        recv(&mut a).await,
        RelayMsg::UserJoined { user: molstream_net::proto::User { id: ub, name: "bob".into() } }
    );

    // Activate: the host is asked to start an instance for the room.
    send(&mut b, &PeerMsg::Activate { req: 1, plugin }).await;
    let RelayMsg::StartInstance { instance, room, presenter, .. } = recv(&mut h).await else { panic!() };
    assert_eq!((room.as_str(), presenter), ("lab", ua));
    assert!(matches!(recv(&mut a).await, RelayMsg::InstanceStarted { .. }));
    assert!(matches!(recv(&mut b).await, RelayMsg::InstanceStarted { .. }));
    assert_eq!(recv(&mut b).await, RelayMsg::Activated { req: 1, instance });

    // Client → instance, stamped with the sender.
    send(&mut a, &PeerMsg::ToInstance { instance, body: Bytes::from_static(b"run") }).await;
    assert_eq!(recv(&mut h).await, RelayMsg::InstanceInput { instance, from: ua, body: Bytes::from_static(b"run") });
    // Instance → room, and a workspace request to the presenter only.
    send(&mut h, &PeerMsg::ToRoom { instance, retain: Retain::Keep(1), body: Bytes::from_static(b"menu") }).await;
    send(&mut h, &PeerMsg::ToPresenter { instance, body: Bytes::from_static(b"workspace?") }).await;
    let from = |scope, body: &'static [u8]| RelayMsg::FromInstance { instance, scope, body: Bytes::from_static(body) };
    assert_eq!(recv(&mut a).await, from(Scope::Room, b"menu"));
    assert_eq!(recv(&mut a).await, from(Scope::Presenter, b"workspace?"));
    assert_eq!(recv(&mut b).await, from(Scope::Room, b"menu"));

    // A real structure as a keyframe and position deltas on a frame stream; the relay forwards
    // them by header and bob decodes exactly what the plugin encoded.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    let complex =
        load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap().complex;
    let mut enc = StreamEncoder::new(1, 3);
    let mut wire = Vec::new();
    enc.keyframe(&complex, &mut wire).unwrap();
    let mut positions = complex.current().positions.to_vec();
    for step in 0..5 {
        for p in &mut positions {
            p.x += 0.01 * (step as f32 + 1.0);
        }
        enc.delta(&positions, &mut wire).unwrap();
    }
    let mut up = h.conn.open_uni().await.unwrap();
    conn::write_head(&mut up, &StreamHead::Frames { instance, channel: 0 }).await.unwrap();
    up.write_all(&wire).await.unwrap();
    up.finish().unwrap();

    let mut down = timeout(T, b.conn.accept_uni()).await.unwrap().unwrap();
    assert_eq!(conn::read_head(&mut down).await.unwrap(), StreamHead::Frames { instance, channel: 0 });
    let mut reader = FrameReader::new(Limits::default());
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut atoms = Vec::new();
    let mut frames = 0;
    let mut received = Vec::new();
    while let Some((_, bytes)) = timeout(T, conn::read_frame(&mut down, &Limits::default())).await.unwrap().unwrap() {
        received.extend_from_slice(&bytes);
        reader.push_bytes(&bytes);
        while let Some(f) = reader.try_read().unwrap() {
            decoder.apply(&f, &mut atoms).unwrap();
            frames += 1;
        }
        if frames == 6 {
            break;
        }
    }
    assert_eq!(received, wire, "frames forwarded byte for byte");
    assert_eq!(atoms.len(), 1890);
    for (inst, p) in atoms.iter().zip(&positions) {
        let d = [inst.position[0] - p.x, inst.position[1] - p.y, inst.position[2] - p.z];
        assert!(d.iter().all(|v| v.abs() <= 0.0006), "{d:?}");
    }

    // A late joiner gets the retained menu and the frame channel replayed.
    let (mut c, _) = client(&relay, "lab", "cy").await;
    assert_eq!(recv(&mut c).await, from(Scope::Room, b"menu"));
    let mut late = timeout(T, c.conn.accept_uni()).await.unwrap().unwrap();
    assert_eq!(conn::read_head(&mut late).await.unwrap(), StreamHead::Frames { instance, channel: 0 });
    let mut replay = Vec::new();
    while replay.len() < wire.len() {
        let Some((_, bytes)) = timeout(T, conn::read_frame(&mut late, &Limits::default())).await.unwrap().unwrap()
        else {
            break;
        };
        replay.extend_from_slice(&bytes);
    }
    assert_eq!(replay, wire);

    // Deactivation reaches the host and every user.
    send(&mut a, &PeerMsg::Deactivate { req: 2, instance }).await;
    let stop = StopReason::Deactivated { by: ua };
    assert_eq!(recv(&mut h).await, RelayMsg::StopInstance { instance, reason: stop.clone() });
    // a and b got UserJoined for cy first.
    for p in [&mut a, &mut b] {
        assert!(matches!(recv(p).await, RelayMsg::UserJoined { .. }));
        assert_eq!(recv(p).await, RelayMsg::InstanceStopped { instance, reason: stop.clone() });
    }
    relay.server.shutdown().await;
}

#[tokio::test]
async fn wrong_key_is_refused_with_its_reason() {
    let relay = start_relay();
    let mut p = connect(&relay, relay.pin).await.unwrap();
    let err = timeout(T, p.control.handshake(Role::PluginHost { key: "guess".into(), host: "h".into() }))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.relay_reason(), Some("wrong plugin key"), "{err}");
    // The connection is closed with the same reason.
    let e = timeout(T, p.conn.closed()).await.unwrap();
    assert!(e.to_string().contains("wrong plugin key"), "{e}");
    // The relay goes on serving others.
    let mut h = host(&relay).await;
    register(&mut h, "still-works").await;
    relay.server.shutdown().await;
}

#[tokio::test]
async fn wrong_fingerprint_is_refused_and_insecure_local_works_on_loopback() {
    let relay = start_relay();
    let err = connect(&relay, Trust::Pinned([7; 32])).await.err().expect("pin mismatch must fail");
    let text = err.to_string();
    assert!(text.contains("does not match the pinned"), "{text}");
    // --insecure-local: any certificate, loopback only.
    let mut p = connect(&relay, Trust::InsecureLocal).await.unwrap();
    let role = Role::SessionClient { room: "dev".into(), user: "me".into() };
    assert!(p.control.handshake(role).await.unwrap().is_some());
    let endpoint = conn::client_endpoint("127.0.0.1:1".parse().unwrap()).unwrap();
    let err = conn::connect(
        &endpoint,
        "192.0.2.1:4433".parse().unwrap(),
        Trust::InsecureLocal,
        &TransportSettings::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConnError::Tls(_)), "{err}");
    relay.server.shutdown().await;
}

#[tokio::test]
async fn malformed_messages_and_frames_close_only_their_sender() {
    let relay = start_relay();
    let mut h = host(&relay).await;
    let plugin = register(&mut h, "streamer").await;
    let (mut a, _) = client(&relay, "lab", "ada").await;
    let (mut bad, _) = client(&relay, "lab", "mallory").await;
    assert!(matches!(recv(&mut a).await, RelayMsg::UserJoined { .. }));
    // An unknown tag on the control stream.
    bad.control.send_raw(&[3, 0, 0, 0, 0xee, 1, 2]).await.unwrap();
    let reason = closed_reason(&mut bad).await;
    assert!(reason.starts_with("malformed message"), "{reason}");
    assert!(matches!(recv(&mut a).await, RelayMsg::UserLeft { .. }));
    // A length prefix above the limit.
    let (mut bad2, _) = client(&relay, "lab", "eve").await;
    assert!(matches!(recv(&mut a).await, RelayMsg::UserJoined { .. }));
    bad2.control.send_raw(&u32::MAX.to_le_bytes()).await.unwrap();
    let reason = closed_reason(&mut bad2).await;
    assert!(reason.contains("exceeds"), "{reason}");
    assert!(matches!(recv(&mut a).await, RelayMsg::UserLeft { .. }));

    // A plugin host sending a corrupt frame header is closed; the session goes on.
    send(&mut a, &PeerMsg::Activate { req: 1, plugin }).await;
    let RelayMsg::StartInstance { instance, .. } = recv(&mut h).await else { panic!() };
    assert!(matches!(recv(&mut a).await, RelayMsg::InstanceStarted { .. }));
    assert!(matches!(recv(&mut a).await, RelayMsg::Activated { .. }));
    let mut up = h.conn.open_uni().await.unwrap();
    conn::write_head(&mut up, &StreamHead::Frames { instance, channel: 0 }).await.unwrap();
    up.write_all(&[b'X'; 32]).await.unwrap();
    up.finish().unwrap();
    let reason = closed_reason(&mut h).await;
    assert!(reason.contains("bad magic"), "{reason}");
    assert_eq!(recv(&mut a).await, RelayMsg::InstanceStopped { instance, reason: StopReason::PluginStopped });
    assert!(matches!(recv(&mut a).await, RelayMsg::Plugins { plugins } if plugins.is_empty()));
    send(&mut a, &PeerMsg::Ping { nonce: 5 }).await;
    assert_eq!(recv(&mut a).await, RelayMsg::Pong { nonce: 5 });
    // Nothing else was broken: a new host registers and serves the room.
    let mut h2 = host(&relay).await;
    let p2 = register(&mut h2, "streamer").await;
    assert_eq!(p2, plugin, "same identity, same id");
    relay.server.shutdown().await;
}

#[tokio::test]
async fn oversized_hello_and_silent_peers_are_closed() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg =
        RelayConfig { plugin_key: KEY.into(), handshake_timeout: Duration::from_millis(300), ..RelayConfig::default() };
    let server =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let relay = Relay { pin: Trust::Pinned(server.fingerprint()), server };
    // Before the handshake only 4 KiB are accepted.
    let mut p = connect(&relay, relay.pin).await.unwrap();
    p.control.send_raw(&5000u32.to_le_bytes()).await.unwrap();
    let reason = closed_reason(&mut p).await;
    assert!(reason.contains("5000") && reason.contains("4096"), "{reason}");
    // A peer that never opens its control stream is closed after the handshake timeout.
    let addr = relay.server.local_addr();
    let endpoint = conn::client_endpoint(addr).unwrap();
    let silent = conn::connect(&endpoint, addr, relay.pin, &TransportSettings::default()).await.unwrap();
    let e = timeout(T, silent.closed()).await.unwrap();
    assert!(e.to_string().contains("no Hello before the handshake timeout"), "{e}");
    // One that opens it but never completes its Hello, likewise.
    let mut quiet = connect(&relay, relay.pin).await.unwrap();
    quiet.control.send_raw(&[10, 0]).await.unwrap();
    let e = timeout(T, quiet.conn.closed()).await.unwrap();
    assert!(e.to_string().contains("handshake timeout"), "{e}");
    relay.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_flooding_a_stalled_host_is_bounded_and_nobody_is_closed() {
    let relay = start_relay();
    let mut h = host(&relay).await;
    let plugin = register(&mut h, "stalled").await;
    let (mut a, _) = client(&relay, "lab", "ada").await;
    send(&mut a, &PeerMsg::Activate { req: 1, plugin }).await;
    let RelayMsg::StartInstance { instance, .. } = recv(&mut h).await else { panic!() };
    // The host stops reading; the user sends 24 MiB of input to its instance.
    let body = Bytes::from(vec![7u8; 1_000_000]);
    for _ in 0..24 {
        send(&mut a, &PeerMsg::ToInstance { instance, body: body.clone() }).await;
    }
    send(&mut a, &PeerMsg::Ping { nonce: 1 }).await;
    loop {
        if let RelayMsg::Pong { nonce: 1 } = recv(&mut a).await {
            break;
        }
    }
    // The host reads again: it got part of the flood (the relay dropped the rest once 16 MiB
    // were queued for it) and is still connected.
    send(&mut h, &PeerMsg::Ping { nonce: 2 }).await;
    let mut inputs = 0;
    loop {
        match recv(&mut h).await {
            RelayMsg::InstanceInput { .. } => inputs += 1,
            RelayMsg::Pong { nonce: 2 } => break,
            other => panic!("{other:?}"),
        }
    }
    assert!(inputs > 0 && inputs < 24, "{inputs} of 24 inputs delivered");
    send(&mut a, &PeerMsg::ToInstance { instance, body: Bytes::from_static(b"after") }).await;
    assert_eq!(
        recv(&mut h).await,
        RelayMsg::InstanceInput { instance, from: UserId(1), body: Bytes::from_static(b"after") }
    );
    relay.server.shutdown().await;
}

//! The relay over real QUIC on loopback: pinned certificate, plugin key, handshake, routing of
//! control messages and of real codec frames between a raw plugin-host connection and raw
//! session clients, and hostile peers closed alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use molstream_engine::codec::Limits;
use molstream_engine::codec::header::{FrameHeader, FrameKind, seal};
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::io::{LoadOptions, load_file};
use molstream_net::client::{ClientConfig, ClientEvent, SessionClient};
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

fn start_relay_with(cfg: RelayConfig) -> Relay {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let server =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    Relay { pin: Trust::Pinned(server.fingerprint()), server }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_to_a_stalled_host_are_never_dropped_and_past_the_bound_it_is_closed() {
    // 40 MiB of control messages may wait for one peer.
    let cfg = RelayConfig { plugin_key: KEY.into(), max_control_queue_bytes: 40 << 20, ..RelayConfig::default() };
    let relay = start_relay_with(cfg);
    let mut h = host(&relay).await;
    let plugin = register(&mut h, "stalled").await;
    let (mut a, ua) = client(&relay, "lab", "ada").await;
    send(&mut a, &PeerMsg::Activate { req: 1, plugin }).await;
    let RelayMsg::StartInstance { instance, .. } = recv(&mut h).await else { panic!() };
    // The host stops reading; the user sends 24 MiB of input to its instance (a menu event
    // each, say).
    let body = |i: u8| Bytes::from(vec![i; 1_000_000]);
    for i in 0..24 {
        send(&mut a, &PeerMsg::ToInstance { instance, body: body(i) }).await;
    }
    send(&mut a, &PeerMsg::Ping { nonce: 1 }).await;
    loop {
        if let RelayMsg::Pong { nonce: 1 } = recv(&mut a).await {
            break;
        }
    }
    // The host reads again: every input arrives, in order, and it is still connected.
    send(&mut h, &PeerMsg::Ping { nonce: 2 }).await;
    let mut inputs = Vec::new();
    loop {
        match recv(&mut h).await {
            RelayMsg::InstanceInput { from, body, .. } => {
                assert_eq!(from, ua);
                inputs.push(body[0]);
            }
            RelayMsg::Pong { nonce: 2 } => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(inputs, (0..24).collect::<Vec<u8>>(), "every input, in order");
    // Stalled again, past the bound: the host is closed with the reason; the user is not.
    for i in 0..64 {
        send(&mut a, &PeerMsg::ToInstance { instance, body: body(i) }).await;
    }
    let reason = closed_reason(&mut h).await;
    assert!(reason.starts_with("too slow") && reason.contains("control messages"), "{reason}");
    loop {
        match recv(&mut a).await {
            RelayMsg::InstanceStopped { reason: StopReason::PluginStopped, .. } => break,
            RelayMsg::Plugins { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    send(&mut a, &PeerMsg::Ping { nonce: 3 }).await;
    assert!(matches!(recv(&mut a).await, RelayMsg::Pong { nonce: 3 } | RelayMsg::Plugins { .. }));
    relay.server.shutdown().await;
}

/// A frame of `kind` with a `len`-byte payload (the relay reads headers only).
fn raw_frame(kind: FrameKind, seq: u32, base: u32, len: usize) -> Vec<u8> {
    let h = FrameHeader {
        kind,
        precision: 2,
        flags: 0,
        stream_id: 1,
        seq,
        base_seq: base,
        atom_count: 1,
        payload_len: 0,
        checksum: 0,
    };
    let mut out = Vec::new();
    seal(h, &vec![(seq % 251) as u8; len], false, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_gets_every_shape_edit_or_is_told_why_it_was_cut_off() {
    // Soft bound 64 KiB of deltas per stream, hard bound 256 KiB of backlog per peer.
    let cfg = RelayConfig {
        plugin_key: KEY.into(),
        max_queued_frame_bytes: 64 << 10,
        max_peer_backlog_bytes: 256 << 10,
        ..RelayConfig::default()
    };
    let relay = start_relay_with(cfg);
    let mut h = host(&relay).await;
    let plugin = register(&mut h, "shapes").await;
    let (mut fast, _) = client(&relay, "lab", "fast").await;
    // The stalled user: a session client that never reads its frame streams.
    let stalled_cfg =
        ClientConfig { reconnect: false, ..ClientConfig::new(relay.server.local_addr(), relay.pin, "lab", "stalled") };
    let mut stalled = timeout(T, SessionClient::connect(stalled_cfg)).await.unwrap().unwrap();
    send(&mut fast, &PeerMsg::Activate { req: 1, plugin }).await;
    let RelayMsg::StartInstance { instance, .. } = recv(&mut h).await else { panic!() };
    // A full shape frame, then 400 shape deltas of 8 KiB (3.2 MiB: more than the stalled
    // user's QUIC windows and the relay's bounds).
    let mut frames = vec![raw_frame(FrameKind::Shapes, 0, 0, 100)];
    for seq in 1..=400u32 {
        frames.push(raw_frame(FrameKind::ShapeDelta, seq, seq - 1, 8 << 10));
    }
    let wire: Vec<u8> = frames.concat();
    let mut up = h.conn.open_uni().await.unwrap();
    conn::write_head(&mut up, &StreamHead::Frames { instance, channel: 7 }).await.unwrap();
    // The fast user reads as the frames come, and says how far it got (the plugin writes at
    // that pace: the point is the stalled user, not a burst larger than the bounds).
    let (progress, mut read) = tokio::sync::watch::channel(0usize);
    let fast_reader = tokio::spawn(async move {
        let mut down = timeout(T, fast.conn.accept_uni()).await.unwrap().unwrap();
        assert_eq!(conn::read_head(&mut down).await.unwrap(), StreamHead::Frames { instance, channel: 7 });
        let mut got = Vec::new();
        let limits = Limits::default();
        for i in 0..401 {
            let (_, b) = timeout(T, conn::read_frame(&mut down, &limits)).await.unwrap().unwrap().unwrap();
            got.extend_from_slice(&b);
            progress.send_replace(i + 1);
        }
        (fast, got)
    });
    for (i, chunk) in frames.chunks(16).enumerate() {
        up.write_all(&chunk.concat()).await.unwrap();
        let sent = (i * 16 + chunk.len()).saturating_sub(8);
        timeout(T, read.wait_for(|n| *n >= sent)).await.unwrap().unwrap();
    }
    // The fast user gets every frame, byte for byte and in order.
    let (_fast, got) = timeout(T, fast_reader).await.unwrap().unwrap();
    assert_eq!(got, wire);
    // The stalled one is cut off, and told why.
    let reason = timeout(T, async {
        loop {
            match stalled.next_event().await {
                Some(ClientEvent::Disconnected(r)) => return r,
                Some(_) => {}
                None => panic!("no disconnection reported"),
            }
        }
    })
    .await
    .unwrap();
    assert!(reason.contains("too slow") && reason.contains("never dropped"), "{reason}");
    relay.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_of_a_position_stream_is_coalesced_not_cut_off() {
    let cfg = RelayConfig {
        plugin_key: KEY.into(),
        max_queued_frame_bytes: 64 << 10,
        max_peer_backlog_bytes: 256 << 10,
        ..RelayConfig::default()
    };
    let relay = start_relay_with(cfg);
    let mut h = host(&relay).await;
    let plugin = register(&mut h, "traj").await;
    let (mut a, _) = client(&relay, "lab", "ada").await;
    send(&mut a, &PeerMsg::Activate { req: 1, plugin }).await;
    let RelayMsg::StartInstance { instance, .. } = recv(&mut h).await else { panic!() };
    // Ada reads nothing of the 3.2 MiB of position deltas.
    let mut wire = raw_frame(FrameKind::Keyframe, 0, 0, 100);
    for seq in 1..=400u32 {
        wire.extend(raw_frame(FrameKind::PositionDelta, seq, seq - 1, 8 << 10));
    }
    let mut up = h.conn.open_uni().await.unwrap();
    conn::write_head(&mut up, &StreamHead::Frames { instance, channel: 0 }).await.unwrap();
    up.write_all(&wire).await.unwrap();
    up.finish().unwrap();
    // The relay keeps her connected: a ping still answers.
    send(&mut a, &PeerMsg::Ping { nonce: 9 }).await;
    loop {
        match recv(&mut a).await {
            RelayMsg::Pong { nonce: 9 } => break,
            RelayMsg::InstanceStarted { .. } | RelayMsg::Activated { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    // The queue drains (into QUIC's buffers, then as she reads): the instance is asked for a
    // keyframe, once. She got a prefix of the deltas; the rest were coalesced.
    let reader = tokio::spawn(async move {
        let mut down = timeout(T, a.conn.accept_uni()).await.unwrap().unwrap();
        conn::read_head(&mut down).await.unwrap();
        let limits = Limits::default();
        let mut frames = 0;
        // The end of what was queued for her shows as a pause (this read is abandoned there).
        while let Ok(Ok(Some(_))) = timeout(Duration::from_millis(500), conn::read_frame(&mut down, &limits)).await {
            frames += 1;
        }
        (a, frames)
    });
    assert_eq!(recv(&mut h).await, RelayMsg::SendKeyframe { instance, channel: 0 });
    let (_a, frames) = reader.await.unwrap();
    assert!(frames > 1 && frames < 401, "{frames} of 401 frames");
    relay.server.shutdown().await;
}

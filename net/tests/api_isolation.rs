//! Isolation and hostile input for the plugin instance API over loopback QUIC:
//! - an instance cannot reach another room's complexes, shapes or streams (ids are per room and
//!   per instance; the presenter of its own room answers);
//! - a user cannot address another room's instance (messages and uplinks are refused), nor
//!   speak for the presenter (forged answers and events are dropped);
//! - hostile bodies and frames are typed errors: garbage plugin API bodies are dropped by the
//!   host, corrupt frames are refused by the clients' scenes (which ask for a keyframe), a
//!   malformed uplink closes only its sender.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Seen, T, World, asset, load};
use glam::Vec3;
use molstream_engine::codec::header::{FrameHeader, FrameKind, seal};
use molstream_engine::codec::stream::StreamEncoder;
use molstream_engine::{AtomId, ComplexId};
use molstream_net::api::{ApiError, ToPlugin};
use molstream_net::client::{ClientConfig, ClientEvent, SessionClient};
use molstream_net::conn::{self, Control};
use molstream_net::host::shape::{self, Anchor};
use molstream_net::host::{SessionError, StreamData, StreamError, StreamKind, StreamTarget};
use molstream_net::proto::{PeerMsg, PluginMeta, ROOM_CHANNELS, RelayMsg, Retain, Role, StreamHead};
use molstream_net::tls::TransportSettings;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_cannot_reach_another_rooms_complexes_shapes_or_streams() {
    let mut w = World::start().await;
    let mut ada = w.client("a", "ada").await;
    let mut bea = w.client("b", "bea").await;
    let sa = w.activate(&mut ada).await;
    let sb = w.activate(&mut bea).await;
    let hvr = std::fs::read(asset("1hvr.pdb")).unwrap();
    let a1 = sa.load_file("1hvr.pdb", &hvr).await.unwrap();
    let a2 = sa.add_complex(load("4E43.pdb")).await.unwrap();
    let sphere = sa.upload_shape(shape::sphere(Anchor::atom(a1, AtomId(0), Vec3::ZERO), 1.0, 0)).await.unwrap();
    let b1 = sb.add_complex(load("5PTI.cif")).await.unwrap();
    let n_pti = load("5PTI.cif").current().topology.atom_count();
    // Ids are the room's: room b's first complex has room a's first id, and is room b's.
    assert_eq!(a1, b1);
    ada.wait_for(T, |s| (s.workspace().complexes().len() == 2 && s.shapes(sa.instance()).is_some()).then_some(()))
        .await
        .unwrap();
    bea.wait_for(T, |s| (s.complex(b1)?.current().topology.atom_count() == n_pti).then_some(())).await.unwrap();
    let b_has = bea.with_scene(|s| (s.workspace().complexes().len(), s.all_shapes().count())).unwrap();
    assert_eq!(b_has, (1, 0), "nothing of room a reached room b");
    assert_eq!(sb.request_complex(a1).await.unwrap().current().topology.atom_count(), n_pti);
    assert!(matches!(sb.request_complex(a2).await, Err(SessionError::Api(ApiError::UnknownComplex(c))) if c == a2));
    assert_eq!(sb.request_complex_list().await.unwrap().len(), 1);
    // Streams on room a's complex or shape from room b's instance: unknown.
    let on_a2 = StreamTarget::Atoms { complex: a2, atoms: vec![AtomId(0)] };
    assert!(matches!(
        sb.create_writing_stream(StreamKind::AtomPosition, on_a2).await,
        Err(StreamError::UnknownComplex(c)) if c == a2
    ));
    assert!(matches!(sb.create_reading_stream(a2, &[]).await, Err(StreamError::UnknownComplex(_))));
    assert!(matches!(
        sb.create_writing_stream(StreamKind::ShapeColor, StreamTarget::Shapes(vec![sphere])).await,
        Err(StreamError::UnknownShape(_))
    ));
    // Room b's removal of "its" complex 2 (which it does not have) leaves room a alone.
    sb.remove_complexes(&[a2]).await.unwrap();
    sb.notify(molstream_net::api::Level::Info, "sync").await.unwrap();
    bea.wait_for(T, |s| (s.notifications().count() == 1).then_some(())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ada.with_scene(|s| s.complex(a2).is_some()).unwrap());

    // A user of room b addressing room a's instance: run and raw bodies are dropped by the
    // relay, an uplink is refused.
    let ia = sa.instance();
    bea.run(ia).await.unwrap();
    bea.send_to_instance(ia, ToPlugin::ComplexesRemoved { ids: vec![a1] }.encode()).await.unwrap();
    let conn = bea.connection().unwrap();
    let mut up = conn.open_uni().await.unwrap();
    conn::write_head(&mut up, &StreamHead::Uplink { instance: ia, channel: 1 }).await.unwrap();
    let mut frame = Vec::new();
    StreamEncoder::new(1, 3).keyframe(&load("1hvr.pdb"), &mut frame).unwrap();
    let refused = async {
        let _ = up.write_all(&frame).await;
        up.stopped().await
    };
    assert!(timeout(T, refused).await.is_ok(), "the relay stops an uplink to another room's instance");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.count(ia, |e| matches!(e, Seen::Removed(_))), 0);
    assert!(ada.with_scene(|s| s.complex(a1).is_some()).unwrap());

    drop((ada, bea));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_answers_and_garbage_bodies_are_dropped_and_the_instance_goes_on() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let mut bob = w.client("lab", "bob").await;
    let s = w.activate(&mut ada).await;
    let me = s.instance();
    let c = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    let st = s
        .create_writing_stream(StreamKind::AtomColor, StreamTarget::Atoms { complex: c, atoms: vec![AtomId(1)] })
        .await
        .unwrap();
    // Bob is not the presenter: his "events" and "answers" are dropped by the instance.
    for forged in [
        ToPlugin::ComplexesRemoved { ids: vec![c] },
        ToPlugin::ComplexesUpdated { ids: vec![c], by: molstream_net::proto::InstanceId(0) },
        ToPlugin::ComplexIds { req: 1, ids: vec![ComplexId(5)] },
        ToPlugin::RequestFailed { req: 2, error: ApiError::Unsupported("no".into()) },
    ] {
        bob.send_to_instance(me, forged.encode()).await.unwrap();
    }
    // Garbage bodies (unknown tags, truncated, hostile counts) are decode errors, dropped.
    for junk in [&[0xffu8][..], &[14, 0xff, 0xff, 0xff, 0xff, 0x0f], &[3, 1], &[]] {
        bob.send_to_instance(me, Bytes::copy_from_slice(junk)).await.unwrap();
    }
    // An integration request after them is answered in order: by then the instance handled
    // every forged message.
    let sync = timeout(T, bob.integration(me, "sync", Bytes::new())).await.unwrap();
    assert!(matches!(sync, Err(molstream_net::client::ClientError::Integration(_))));
    // The instance goes on: its stream still works, its requests are answered.
    st.update(StreamData::Colors(&[0xff_01_02_03])).await.unwrap();
    bob.wait_for(T, |sc| (sc.complex(c)?.current().display.color[1] == 0xff_01_02_03).then_some(())).await.unwrap();
    assert_eq!(s.request_complex_list().await.unwrap().len(), 1);
    assert_eq!(w.count(me, |e| matches!(e, Seen::Removed(_) | Seen::Updated(_))), 0);
    assert!(ada.view().instances.contains_key(&me), "the instance is still running");
    drop((ada, bob));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_uplink_closes_only_its_sender() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let s = w.activate(&mut ada).await;
    let mut cfg = ClientConfig::new(w.relay.local_addr(), w.trust, "lab", "eve");
    cfg.reconnect = false;
    let mut eve = SessionClient::connect(cfg).await.unwrap();
    let conn = eve.connection().unwrap();
    let mut up = conn.open_uni().await.unwrap();
    conn::write_head(&mut up, &StreamHead::Uplink { instance: s.instance(), channel: 1 }).await.unwrap();
    up.write_all(&[0x42; 64]).await.unwrap();
    let reason = timeout(T, async {
        loop {
            match eve.next_event().await {
                Some(ClientEvent::Disconnected(r)) => return r,
                Some(_) => {}
                None => return String::new(),
            }
        }
    })
    .await
    .unwrap();
    assert!(reason.contains("frame stream"), "{reason}");
    // Everyone else goes on.
    let c = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    ada.wait_for(T, |sc| sc.complex(c).map(|_| ())).await.unwrap();
    drop(ada);
    w.stop().await;
}

fn raw_frame(kind: FrameKind, seq: u32, base: u32, payload: &[u8]) -> Vec<u8> {
    let h = FrameHeader {
        kind,
        precision: 3,
        flags: 0,
        stream_id: 1,
        seq,
        base_seq: base,
        atom_count: 3,
        payload_len: 0,
        checksum: 0,
    };
    let mut out = Vec::new();
    seal(h, payload, false, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_and_bodies_from_a_plugin_are_typed_errors_at_the_clients() {
    let w = World::start().await;
    let addr = w.relay.local_addr();
    // A hand-written plugin host that sends garbage.
    let endpoint = conn::client_endpoint(addr).unwrap();
    let hconn = conn::connect(&endpoint, addr, w.trust, &TransportSettings::default()).await.unwrap();
    let mut hc = Control::open(&hconn).await.unwrap();
    hc.handshake(Role::PluginHost { key: common::KEY.into(), host: "evil".into() }).await.unwrap();
    hc.send(&PeerMsg::RegisterPlugin { local: 0, meta: PluginMeta { name: "Evil".into(), ..PluginMeta::default() } })
        .await
        .unwrap();
    let mut ada = w.client("lab", "ada").await;
    let evil = ada.wait_for_plugin("Evil").await.unwrap();
    let instance = ada.activate(evil).await.unwrap();
    loop {
        if let RelayMsg::StartInstance { .. } = timeout(T, hc.recv()).await.unwrap().unwrap() {
            break;
        }
    }
    // Bodies that are no plugin API message reach the application as raw messages.
    for body in [Bytes::from_static(&[0xee, 1, 2]), Bytes::from_static(&[13, 0xff, 0xff, 0xff, 0xff, 0xff])] {
        hc.send(&PeerMsg::ToRoom { instance, retain: Retain::No, body }).await.unwrap();
    }
    let raw = timeout(T, async {
        let mut n = 0;
        while n < 2 {
            if let Some(ClientEvent::Message { .. }) = ada.next_event().await {
                n += 1;
            }
        }
    })
    .await;
    assert!(raw.is_ok());
    // Frames, each on its own channel: a keyframe whose payload is garbage (valid checksum), a
    // delta with no keyframe before it, a shape delta on a complex channel. Each is refused by
    // the scene. (One channel each: on one stream the relay would let a later keyframe replace
    // an unsent one, and hold a user's deltas back once it asked for a keyframe.)
    let mut streams = Vec::new();
    for (i, frame) in [
        raw_frame(FrameKind::Keyframe, 0, 0, b"not a keyframe at all"),
        raw_frame(FrameKind::PositionDelta, 2, 1, &[0; 8]),
        raw_frame(FrameKind::ShapeDelta, 1, 0, &[1, 0, 0]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut send = hconn.open_uni().await.unwrap();
        let channel = ROOM_CHANNELS + 1 + i as u32;
        conn::write_head(&mut send, &StreamHead::Frames { instance, channel }).await.unwrap();
        send.write_all(&frame).await.unwrap();
        streams.push(send);
    }
    let errors = ada.wait_for(T, |s| (s.frame_errors() >= 3).then_some(s.frame_errors())).await.unwrap();
    assert_eq!(errors, 3);
    assert_eq!(ada.with_scene(|s| s.frames_applied()), Some(0));
    // The client asked the instance for a keyframe (once, not once per bad frame).
    let mut wanted = Vec::new();
    timeout(T, async {
        while wanted.len() < 3 {
            if let RelayMsg::SendKeyframe { channel, .. } = hc.recv().await.unwrap() {
                wanted.push(channel);
            }
        }
    })
    .await
    .unwrap();
    wanted.sort_unstable();
    assert_eq!(wanted, vec![ROOM_CHANNELS + 1, ROOM_CHANNELS + 2, ROOM_CHANNELS + 3]);
    // A good keyframe on the same channel then applies: the scene is unharmed.
    let hvr = load("1hvr.pdb");
    let mut good = Vec::new();
    StreamEncoder::new(1, 3).keyframe(&hvr, &mut good).unwrap();
    streams[0].write_all(&good).await.unwrap();
    ada.wait_for(T, |s| (s.complex(ComplexId(1))?.current().topology.atom_count() == 1890).then_some(()))
        .await
        .unwrap();
    assert_eq!(ada.with_scene(|s| s.workspace().complexes().len()), Some(1));
    drop(ada);
    hconn.close(0u32.into(), b"done");
    w.stop().await;
}

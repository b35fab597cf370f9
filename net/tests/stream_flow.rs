//! Flow control of SDK writing streams over real QUIC: an instance floods an atom-position
//! stream; the presenter reads as it comes, another user deliberately reads nothing until the
//! flood is over. The slow user's frames are coalesced at the relay (a bounded prefix, then a
//! fresh keyframe the SDK sends by itself when the relay asks), the fast user applies every
//! frame, and both end on the same positions, those of the last update.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{T, World, load, max_diff};
use glam::Vec3;
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{FrameKind, Limits};
use molstream_engine::{AtomId, Complex};
use molstream_net::client::{ClientConfig, SessionClient};
use molstream_net::host::{StreamData, StreamKind, StreamTarget};
use molstream_net::proto::{ROOM_CHANNELS, StreamHead};
use molstream_net::relay::RelayConfig;
use tokio::time::timeout;

const QUEUE_BYTES: usize = 2 << 20;
const UPDATES: usize = 400;
/// Half a quantum at 10^-3 Å, plus f32 rounding of coordinates up to 100 Å.
const TOLERANCE: f32 = 0.0005 + 2e-5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_user_is_coalesced_on_an_sdk_stream_while_the_presenter_gets_every_frame() {
    let cfg =
        RelayConfig { plugin_key: common::KEY.into(), max_queued_frame_bytes: QUEUE_BYTES, ..RelayConfig::default() };
    let mut w = World::with(cfg).await;
    let mut ada = w.client("lab", "ada").await;
    let mut slow_cfg = ClientConfig::new(w.relay.local_addr(), w.trust, "lab", "slow");
    slow_cfg.reconnect = false;
    let slow = SessionClient::connect(slow_cfg).await.unwrap();
    let s = w.activate(&mut ada).await;

    let hvr = load("1hvr.pdb");
    let (topology, positions) =
        molstream_engine::synth::tile(hvr.current().topology, hvr.current().positions, [2, 2, 2], 5.0);
    let n = positions.len();
    let topology_copy = topology.clone();
    let id = s.add_complex(Complex::single("tiled", topology, positions.clone())).await.unwrap();
    let all: Vec<AtomId> = (0..n).map(|i| AtomId(i as u32)).collect();
    let stream = s
        .create_writing_stream(StreamKind::AtomPosition, StreamTarget::Atoms { complex: id, atoms: all })
        .await
        .unwrap();
    // The same frames, encoded here, give the flood's size.
    let mut replica = StreamEncoder::new(id.0, 3);
    let mut flood = Vec::new();
    replica.keyframe(&Complex::single("tiled", topology_copy, positions.clone()), &mut flood).unwrap();
    let mut p = positions;
    for step in 0..UPDATES {
        for (i, x) in p.iter_mut().enumerate() {
            // Jumps of up to 0.5 Å: the flood is far above what the QUIC stream window and the
            // relay's per-user queue hold.
            let phase = step as f32 * 0.37 + i as f32 * 0.011;
            *x += Vec3::new(phase.sin(), phase.cos(), (phase * 1.3).sin()) * 0.5;
        }
        stream.update(StreamData::Positions(&p)).await.unwrap();
        replica.delta(&p, &mut flood).unwrap();
    }

    // The presenter applied a keyframe, every delta, and the keyframe sent for the slow user.
    ada.wait_for(T, |sc| (max_diff(sc.complex(id)?.current().positions, &p) <= TOLERANCE).then_some(())).await.unwrap();
    assert_eq!(ada.with_scene(|sc| sc.frame_errors()), Some(0));
    assert_eq!(ada.with_scene(|sc| sc.scene_complex(id).unwrap().frames), Some(1 + UPDATES as u64));

    // Now the slow user reads: a prefix of the flood, then (its queue drained) a fresh keyframe.
    let mut frames: Vec<Bytes> = Vec::new();
    let mut fs = timeout(T, slow.accept_frames()).await.unwrap().unwrap();
    assert_eq!(fs.head, StreamHead::Frames { instance: s.instance(), channel: ROOM_CHANNELS + id.0 });
    let mut keyframes = 0;
    while keyframes < 2 {
        let (h, b) = timeout(T, fs.next(&Limits::default())).await.unwrap().unwrap().expect("stream open");
        keyframes += usize::from(h.kind == FrameKind::Keyframe);
        frames.push(b);
    }
    let sent_bytes = frames.iter().map(Bytes::len).sum::<usize>();
    eprintln!("slow user: {} of {} frames, {sent_bytes} of {} bytes", frames.len(), UPDATES + 2, flood.len());
    assert!(frames.len() < UPDATES / 2, "the slow user got {} of {} frames", frames.len(), UPDATES + 1);
    assert!(
        sent_bytes < flood.len() / 2,
        "bounded: {sent_bytes} of the flood's {} bytes reached the slow user",
        flood.len()
    );
    // Every frame it got applies in order, and it ends on the last update's positions.
    let mut reader = FrameReader::new(Limits::default());
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut atoms = Vec::new();
    for f in &frames {
        reader.push_bytes(f);
        while let Some(frame) = reader.try_read().unwrap() {
            decoder.apply(&frame, &mut atoms).expect("every frame applies");
        }
    }
    let end: Vec<Vec3> = atoms.iter().map(|a| Vec3::from_array(a.position)).collect();
    assert_eq!(end.len(), n);
    assert!(max_diff(&end, &p) <= TOLERANCE);
    // The presenter got the second keyframe too, and holds exactly what the slow user holds.
    ada.wait_for(T, |sc| (sc.scene_complex(id)?.frames == 1).then_some(())).await.unwrap();
    let fast_end = ada.with_scene(|sc| sc.complex(id).unwrap().current().positions.to_vec()).unwrap();
    assert_eq!(fast_end, end);
    drop((ada, slow));
    w.stop().await;
}

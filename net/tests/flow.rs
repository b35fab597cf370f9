//! Flow control over real QUIC: a plugin floods a position stream; one user reads as it comes,
//! another deliberately does not read until the plugin is done. The slow user's frames are
//! coalesced at the relay (dropped after a bounded queue, then one fresh keyframe), the fast
//! user gets every frame, and both end on the same positions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use glam::Vec3;
use molstream_engine::Complex;
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{FrameKind, Limits};
use molstream_engine::io::{LoadOptions, load_file};
use molstream_net::client::{ClientConfig, FrameStream, SessionClient};
use molstream_net::host::{FrameSender, HostConfig, Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{PluginMeta, StreamHead, UserId};
use molstream_net::relay::{RelayConfig, RelayServer};
use molstream_net::tls::{RelayIdentity, TransportSettings, Trust};
use tokio::time::timeout;

const KEY: &str = "flow-key";
const T: Duration = Duration::from_secs(60);
/// Bytes of deltas the plugin sends: far above the QUIC stream window (about 1.25 MB) plus the
/// relay's per-user queue (set to 2 MiB here), below its 16 MiB late-join delta budget.
const FLOOD_BYTES: usize = 10 << 20;
const QUEUE_BYTES: usize = 2 << 20;

struct Flood {
    complex: Complex,
    positions: Vec<Vec3>,
    encoder: StreamEncoder,
    channel: Option<FrameSender>,
    keyframes_wanted: Arc<AtomicUsize>,
    deltas_sent: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

fn structure() -> Complex {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    let loaded = load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap();
    let c = loaded.complex;
    let (topology, positions) =
        molstream_engine::synth::tile(c.current().topology, c.current().positions, [2, 2, 2], 5.0);
    Complex::single("flood", topology, positions)
}

impl Plugin for Flood {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let mut channel = session.open_frames(0).await?;
        let mut buf = Vec::new();
        self.encoder.keyframe(&self.complex, &mut buf)?;
        channel.send(&buf).await?;
        let mut sent = 0;
        let mut step = 0u32;
        while sent < FLOOD_BYTES {
            step += 1;
            for (i, p) in self.positions.iter_mut().enumerate() {
                let phase = step as f32 * 0.37 + i as f32 * 0.011;
                *p += Vec3::new(phase.sin(), phase.cos(), (phase * 1.3).sin()) * 0.05;
            }
            buf.clear();
            self.encoder.delta(&self.positions, &mut buf)?;
            sent += buf.len();
            channel.send(&buf).await?;
            self.deltas_sent.fetch_add(1, Ordering::SeqCst);
        }
        self.channel = Some(channel);
        self.done.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn on_keyframe_wanted(&mut self, _session: &Session, channel: u32) -> PluginResult {
        assert_eq!(channel, 0);
        self.keyframes_wanted.fetch_add(1, Ordering::SeqCst);
        self.complex.set_positions(0, self.positions.clone())?;
        let mut buf = Vec::new();
        self.encoder.keyframe(&self.complex, &mut buf)?;
        if let Some(ch) = &mut self.channel {
            ch.send(&buf).await?;
        }
        Ok(())
    }
}

/// Reads frames until the `keyframes`-th keyframe and returns them all (raw).
async fn read_until_keyframes(stream: &mut FrameStream, keyframes: usize) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut seen = 0;
    while seen < keyframes {
        let (h, bytes) = timeout(T, stream.next(&Limits::default())).await.unwrap().unwrap().expect("stream open");
        if h.kind == FrameKind::Keyframe {
            seen += 1;
        }
        frames.push(bytes);
    }
    frames
}

/// Decodes frames in order (each must apply) and returns the final atom positions.
fn decode_all(frames: &[Bytes]) -> Vec<[f32; 3]> {
    let mut reader = FrameReader::new(Limits::default());
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut atoms = Vec::new();
    for f in frames {
        reader.push_bytes(f);
        while let Some(frame) = reader.try_read().unwrap() {
            decoder.apply(&frame, &mut atoms).expect("every received frame applies");
        }
    }
    atoms.iter().map(|a| a.position).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_user_is_coalesced_while_a_fast_one_gets_everything() {
    let (identity, _, _) = RelayIdentity::generate().unwrap();
    let cfg = RelayConfig { plugin_key: KEY.into(), max_queued_frame_bytes: QUEUE_BYTES, ..RelayConfig::default() };
    let relay =
        RelayServer::start(cfg, &identity, "127.0.0.1:0".parse().unwrap(), &TransportSettings::default()).unwrap();
    let trust = Trust::Pinned(relay.fingerprint());
    let wanted = Arc::new(AtomicUsize::new(0));
    let deltas = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let complex = structure();
    let (w, d, f) = (wanted.clone(), deltas.clone(), done.clone());
    let host = PluginHost::new(HostConfig::new(relay.local_addr(), trust, KEY))
        .plugin(PluginMeta { name: "Flood".into(), ..PluginMeta::default() }, move || Flood {
            positions: complex.current().positions.to_vec(),
            complex: complex.clone(),
            encoder: StreamEncoder::new(1, 2),
            channel: None,
            keyframes_wanted: w.clone(),
            deltas_sent: d.clone(),
            done: f.clone(),
        })
        .spawn();
    let client_cfg = |user: &str| ClientConfig::new(relay.local_addr(), trust, "lab", user);
    let mut fast = SessionClient::connect(client_cfg("fast")).await.unwrap();
    let slow = SessionClient::connect(client_cfg("slow")).await.unwrap();
    let plugin = fast.wait_for_plugin("Flood").await.unwrap();
    let instance = fast.activate(plugin).await.unwrap();
    fast.run(instance).await.unwrap();

    // The fast user reads everything as it comes: the first keyframe, every delta, and the
    // keyframe sent once the slow user caught up.
    let mut fast_stream = timeout(T, fast.accept_frames()).await.unwrap().unwrap();
    assert_eq!(fast_stream.head, StreamHead::Frames { instance, channel: 0 });
    let fast_task = tokio::spawn(async move { read_until_keyframes(&mut fast_stream, 2).await });

    // The slow user reads nothing until the plugin has sent every delta.
    timeout(T, async {
        while !done.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the plugin finishes its flood");
    assert_eq!(wanted.load(Ordering::SeqCst), 0, "no keyframe is asked for while the slow user is stalled");
    // Now it reads: a contiguous prefix, then (once its queue drained) the fresh keyframe.
    let mut slow_stream = timeout(T, slow.accept_frames()).await.unwrap().unwrap();
    let slow_frames = read_until_keyframes(&mut slow_stream, 2).await;
    let fast_frames = timeout(T, fast_task).await.unwrap().unwrap();
    let sent = deltas.load(Ordering::SeqCst);
    assert_eq!(wanted.load(Ordering::SeqCst), 1, "one keyframe request for the lagging user");
    assert_eq!(fast_frames.len(), 1 + sent + 1, "the fast user got every frame");
    assert!(
        slow_frames.len() < fast_frames.len() / 2,
        "slow user got {} of {} frames",
        slow_frames.len(),
        fast_frames.len()
    );
    let bytes = |fs: &[Bytes]| fs.iter().map(Bytes::len).sum::<usize>();
    assert!(bytes(&slow_frames) < FLOOD_BYTES / 2, "bounded: {} bytes reached the slow user", bytes(&slow_frames));
    assert!(slow_frames.last() == fast_frames.last(), "both end on the same keyframe");
    let fast_end = decode_all(&fast_frames);
    let slow_end = decode_all(&slow_frames);
    assert_eq!(fast_end.len(), 15_120);
    assert!(fast_end == slow_end, "same final positions");

    host.shutdown().await.unwrap();
    relay.shutdown().await;
}

//! Criterion benchmarks of the viewer's scene sync (`molstream_viewer::session`): what the
//! window pays per position frame of a room, next to what the session client pays to decode
//! it and to a plain copy, in the same run.
//!
//! - `memcpy`: copying an `AtomInstance` buffer of the complex's size (bandwidth floor);
//! - `decode`: `RoomScene::apply_frame` of one position delta (the client's tasks do this);
//! - `decode_sync`: the same, then `SceneSync::diff` (compare the atoms with those last seen,
//!   copy the changed range) and `session::apply` (into the window's `SceneData`).
//!
//! `decode_sync − decode` is the sync's cost per frame. Inputs: the bundled 1hvr (1,890 atoms)
//! and 1hvr tiled 4×4×4 (120,960 atoms), each under `synth::random_walk` (every atom moves
//! ~0.05 Å per frame), packed coding at 0.001 Å. Throughput is in atoms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use molstream_engine::codec::Limits;
use molstream_engine::codec::stream::{Frame, FrameReader, StreamEncoder};
use molstream_engine::gpu::AtomInstance;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::{Complex, ComplexId, synth};
use molstream_net::proto::{InstanceId, ROOM_CHANNELS};
use molstream_net::scene::RoomScene;
use molstream_viewer::session::{self, SceneSync};
use molstream_viewer::workspace::SceneData;

const HVR_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
/// Deltas encoded in a chain; the room is set up again (untimed) after each chain.
const CHAIN: usize = 32;
const ID: ComplexId = ComplexId(1);
const SOURCE: InstanceId = InstanceId(1);

fn frames_of(bytes: &[u8]) -> Vec<Frame> {
    let mut r = FrameReader::new(Limits { max_payload: 1 << 30, ..Limits::default() });
    r.push_bytes(bytes);
    let mut out = Vec::new();
    while let Some(f) = r.try_read().unwrap_or_else(|e| panic!("{e}")) {
        out.push(f);
    }
    out
}

/// The keyframe and a chain of deltas of `complex` walking randomly.
fn stream(complex: &Complex) -> (Frame, Vec<Frame>) {
    let walk = synth::random_walk(complex.current().positions, CHAIN + 1, 0.05, 0x5eed);
    let mut enc = StreamEncoder::new(ID.0, 3);
    let mut buf = Vec::new();
    enc.keyframe(complex, &mut buf).unwrap_or_else(|e| panic!("{e}"));
    let key = frames_of(&buf).remove(0);
    buf.clear();
    for p in &walk[1..] {
        enc.delta(p, &mut buf).unwrap_or_else(|e| panic!("{e}"));
    }
    (key, frames_of(&buf))
}

struct Room {
    scene: RoomScene,
    sync: SceneSync,
    view: SceneData,
}

fn fresh(key: &Frame) -> Room {
    let mut scene = RoomScene::new(Limits { max_payload: 1 << 30, ..Limits::default() });
    scene.apply_frame(SOURCE, ROOM_CHANNELS + ID.0, key).unwrap_or_else(|e| panic!("{e}"));
    let mut sync = SceneSync::new();
    let mut view = SceneData::new(Vec::new());
    session::apply(&mut view, sync.diff(&scene));
    Room { scene, sync, view }
}

/// Times `per_frame` over `iters` deltas, setting the room up again (untimed) every chain.
fn timed(key: &Frame, deltas: &[Frame], iters: u64, mut per_frame: impl FnMut(&mut Room, &Frame)) -> Duration {
    let mut total = Duration::ZERO;
    let mut room = fresh(key);
    for i in 0..iters {
        let k = usize::try_from(i).unwrap_or(0) % deltas.len();
        if k == 0 && i > 0 {
            room = fresh(key);
        }
        let t = Instant::now();
        per_frame(&mut room, &deltas[k]);
        total += t.elapsed();
    }
    total
}

fn group(c: &mut Criterion, name: &str, complex: &Complex) {
    let n = complex.current().topology.atom_count();
    let (key, deltas) = stream(complex);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64));
    let src = vec![AtomInstance::default(); n];
    let mut dst = vec![AtomInstance::default(); n];
    g.bench_function("memcpy", |b| b.iter(|| dst.copy_from_slice(black_box(&src))));
    let decode = |room: &mut Room, f: &Frame| {
        room.scene.apply_frame(SOURCE, ROOM_CHANNELS + ID.0, f).unwrap_or_else(|e| panic!("{e}"));
    };
    g.bench_function("decode", |b| b.iter_custom(|iters| timed(&key, &deltas, iters, decode)));
    g.bench_function("decode_sync", |b| {
        b.iter_custom(|iters| {
            timed(&key, &deltas, iters, |room, f| {
                decode(room, f);
                let updates = room.sync.diff(&room.scene);
                let work = session::apply(&mut room.view, updates);
                assert!(!work.relayout && work.atoms.len() == 1, "one partial write");
                black_box(work);
            })
        });
    });
    g.finish();
}

fn main() {
    // What `criterion_group!` and `criterion_main!` expand to, without their undocumented `pub fn`.
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let hvr = load_file(HVR_PATH, &opts).unwrap_or_else(|e| panic!("{HVR_PATH}: {e}")).complex;
    group(&mut c, "session_1hvr", &hvr);
    let (t, p) = synth::tile(hvr.current().topology, hvr.current().positions, [4, 4, 4], 2.0);
    let tiled = Complex::single("1hvr×64", t, p);
    group(&mut c, "session_1hvr_x64", &tiled);
    c.final_summary();
}

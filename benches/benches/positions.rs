//! Criterion benchmarks of position-delta decoding (`codec::positions`).
//!
//! Per input, one group measures a baseline next to the decoders in the same run, so ratios can
//! be read on a noisy machine:
//!
//! - `memcpy`: copying an `AtomInstance` buffer of the same size (the output bandwidth floor);
//! - `decode_bits`, `decode_packed`, `decode_entropy`: `validate_delta` + `apply_delta` of one
//!   frame's payload, in each coding, into an `AtomInstance` buffer (the state is reset to the
//!   base outside the timing, with `iter_batched`).
//!
//! Inputs: `thermal` (the bundled 1hvr under `synth::random_walk`, 1,890 atoms, ~0.05 Å per
//! step; frame 5 against frame 4) and, when `../shared/data` is present, `adk_oplsaa` (47,681
//! atoms, XTC frames 100 ps apart; frame 5 against frame 4). Throughput is in atoms.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use glam::Vec3;
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::positions::{
    Coding, DeltaOptions, Quantized, apply_delta, encode_delta_with, validate_delta,
};
use molstream_engine::gpu::AtomInstance;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::synth;

const HVR_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
const ADK_XTC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/traj/adk_oplsaa.xtc");

/// Precision of the benchmarks: 0.01 Å.
const PRECISION: u8 = 2;

fn thermal() -> Vec<Vec<Vec3>> {
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let complex = load_file(HVR_PATH, &opts).unwrap_or_else(|e| panic!("{HVR_PATH}: {e}")).complex;
    synth::random_walk(complex.current().positions, 6, 0.05, 0x9e37_79b9)
}

fn adk() -> Option<Vec<Vec<Vec3>>> {
    if !Path::new(ADK_XTC).is_file() {
        eprintln!("note: {ADK_XTC} is absent; only the thermal stream is benchmarked");
        return None;
    }
    let mut reader = molly::XTCReader::open(ADK_XTC).unwrap_or_else(|e| panic!("{ADK_XTC}: {e}"));
    let frames = reader.read_all_frames().unwrap_or_else(|e| panic!("{ADK_XTC}: {e}"));
    Some(frames.iter().map(|f| f.coords().map(|p| Vec3::from_array(p) * 10.0).collect()).collect())
}

fn quantize(frame: &[Vec3]) -> Quantized {
    Quantized::from_positions(frame, PRECISION).unwrap_or_else(|e| panic!("{e}"))
}

fn group(c: &mut Criterion, name: &str, frames: &[Vec<Vec3>]) {
    let (base, cur) = (quantize(&frames[4]), quantize(&frames[5]));
    let n = base.len();
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64));
    let src = vec![AtomInstance::default(); n];
    let mut dst = vec![AtomInstance::default(); n];
    g.bench_function("memcpy", |b| b.iter(|| dst.copy_from_slice(black_box(&src))));
    for (label, coding) in
        [("decode_bits", Coding::Bits), ("decode_packed", Coding::Packed), ("decode_entropy", Coding::Entropy)]
    {
        let mut w = Writer::new();
        encode_delta_with(&base, &cur, DeltaOptions { coding, keyframe: false }, &mut w);
        let payload = w.buf;
        let mut out = vec![AtomInstance::default(); n];
        g.bench_function(label, |b| {
            b.iter_batched_ref(
                || base.clone(),
                |state| {
                    validate_delta(black_box(&payload), n).unwrap_or_else(|e| panic!("{e}"));
                    apply_delta(&payload, state, PRECISION, &mut out[..]).unwrap_or_else(|e| panic!("{e}"));
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn main() {
    // What `criterion_group!` and `criterion_main!` expand to, without their undocumented `pub fn`.
    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    group(&mut c, "positions_thermal", &thermal());
    if let Some(frames) = adk() {
        group(&mut c, "positions_adk_oplsaa", &frames);
    }
    c.final_summary();
}

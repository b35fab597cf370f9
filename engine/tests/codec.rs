//! The stream codec on real trajectories: keyframe + deltas decode to within half a
//! quantization step on every frame of every file, the chained deltas equal a fresh keyframe of
//! the last frame, chunked reading works, and corrupt or out-of-order frames are typed errors
//! that change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use glam::Vec3;
use molstream_engine::codec::positions::step;
use molstream_engine::codec::stream::{Applied, FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{CodecError, Limits};
use molstream_engine::gpu::AtomInstance;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::{Complex, traj};

fn load(path: &std::path::Path) -> Complex {
    load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap().complex
}

fn xtc_frames(path: &std::path::Path) -> Vec<Vec<Vec3>> {
    let mut reader = molly::XTCReader::open(path).unwrap();
    let frames = reader.read_all_frames().unwrap();
    frames.iter().map(|f| f.coords().map(|p| Vec3::from_array(p) * 10.0).collect()).collect()
}

/// A per-step stream: random thermal motion of 0.05 Å RMS per step (per atom, 3D).
fn thermal(start: &[Vec3], steps: usize) -> Vec<Vec<Vec3>> {
    molstream_engine::synth::random_walk(start, steps, 0.05, 0x9e37_79b9)
}

/// Streams `frames` (the first as a keyframe of `complex`), checks every decoded frame, and
/// returns the mean delta bytes per atom.
fn round_trip(name: &str, mut complex: Complex, frames: &[Vec<Vec3>], precision: u8) -> f64 {
    let n = frames[0].len();
    assert_eq!(complex.current().topology.atom_count(), n, "{name}: topology and trajectory disagree");
    complex.models.truncate(1);
    complex.current_model = 0;
    complex.set_positions(0, frames[0].clone()).unwrap();

    let mut enc = StreamEncoder::new(7, precision);
    let mut dec = StreamDecoder::new(Limits::default());
    let mut reader = FrameReader::new(Limits::default());
    let mut instances: Vec<AtomInstance> = Vec::new();
    let (s, _) = step(precision);
    let tolerance = |p: Vec3| s * 0.5 * 1.0001 + p.abs().max_element() * 2.0 * f32::EPSILON;
    let mut delta_bytes = 0usize;

    for (i, frame) in frames.iter().enumerate() {
        let mut bytes = Vec::new();
        if i == 0 {
            enc.keyframe(&complex, &mut bytes).unwrap();
        } else {
            enc.delta(frame, &mut bytes).unwrap();
            delta_bytes += bytes.len();
        }
        // Feed in awkward chunks.
        for chunk in bytes.chunks(1 + i * 997 % 4093) {
            reader.push_bytes(chunk);
        }
        let f = reader.try_read().unwrap().expect("a whole frame");
        assert!(reader.try_read().unwrap().is_none());
        let applied = dec.apply(&f, &mut instances).unwrap();
        assert_eq!(applied, if i == 0 { Applied::Keyframe } else { Applied::Positions });
        for (k, (inst, p)) in instances.iter().zip(frame).enumerate() {
            let d = (Vec3::from_array(inst.position) - *p).abs().max_element();
            assert!(d <= tolerance(*p), "{name} frame {i} atom {k}: off by {d} Å at precision {precision}");
        }
    }
    // Keyframe → many deltas equals a fresh keyframe of the last frame.
    complex.set_positions(0, frames[frames.len() - 1].clone()).unwrap();
    let mut fresh = Vec::new();
    StreamEncoder::new(8, precision).keyframe(&complex, &mut fresh).unwrap();
    let mut r = FrameReader::new(Limits::default());
    r.push_bytes(&fresh);
    let mut fresh_instances = Vec::new();
    StreamDecoder::new(Limits::default()).apply(&r.try_read().unwrap().unwrap(), &mut fresh_instances).unwrap();
    assert_eq!(
        instances.iter().map(|a| a.position).collect::<Vec<_>>(),
        fresh_instances.iter().map(|a| a.position).collect::<Vec<_>>(),
        "{name}: chained deltas differ from a fresh keyframe"
    );
    #[allow(clippy::cast_precision_loss)]
    let per_atom = delta_bytes as f64 / ((frames.len() - 1).max(1) * n) as f64;
    println!("{name} at 10^-{precision} Å: {per_atom:.3} bytes/atom per delta over {} frames", frames.len());
    per_atom
}

#[test]
fn nmr_models_stream_as_frames() {
    let complex = load(&common::assets().join("nmr_neopetrosiamide.pdb"));
    let frames: Vec<Vec<Vec3>> = complex.models.iter().map(|m| m.positions.clone()).collect();
    assert_eq!(frames.len(), 24);
    for precision in [2, 3] {
        round_trip("nmr_neopetrosiamide", complex.clone(), &frames, precision);
    }
}

#[test]
fn synthetic_thermal_stream_is_compact() {
    let complex = load(&common::assets().join("1hvr.pdb"));
    let frames = thermal(complex.current().positions, 40);
    let b2 = round_trip("thermal 1hvr", complex.clone(), &frames, 2);
    round_trip("thermal 1hvr", complex, &frames, 3);
    // Issue 3's goal is ≤ 1.5; block bit-packing reaches 1.60 (uniform residuals waste the
    // fractional bit per axis). This bound catches regressions; the entropy stage that meets
    // the goal is still to come.
    assert!(b2 <= 1.65, "{b2:.3} bytes/atom on the per-step stream at 0.01 Å");
}

#[test]
fn xtc_trajectories_round_trip() {
    let Some(dir) = common::shared_data() else { return };
    for (traj, pdb) in [("adk_oplsaa.xtc", "adk_oplsaa.pdb"), ("cobrotoxin.xtc", "cobrotoxin.pdb")] {
        let frames = xtc_frames(&dir.join("traj").join(traj));
        let complex = load(&dir.join("pdb").join(pdb));
        for precision in [2, 3] {
            round_trip(traj, complex.clone(), &frames, precision);
        }
    }
}

#[test]
fn dcd_trajectory_round_trips() {
    let Some(dir) = common::shared_data() else { return };
    let dcd = traj::read_dcd(&std::fs::read(dir.join("traj/adk_dims.dcd")).unwrap()).unwrap();
    assert_eq!(dcd.frames.len(), 98);
    let complex = load(&dir.join("pdb/adk_open.pdb"));
    for precision in [2, 3] {
        round_trip("adk_dims.dcd", complex.clone(), &dcd.frames, precision);
    }
}

#[test]
fn keyframes_keep_topology_and_display_state() {
    for file in ["1hvr.pdb", "4E43.pdb", "5PTI.cif"] {
        let mut complex = load(&common::assets().join(file));
        complex.displays[0].selected[2] = true;
        complex.displays[0].labeled[5] = true;
        complex.displays[0].label_text.insert(molstream_engine::AtomId(5), "active site".into());
        complex.position = Vec3::new(1.0, 2.0, 3.0);
        let mut bytes = Vec::new();
        StreamEncoder::new(1, 3).keyframe(&complex, &mut bytes).unwrap();
        let mut r = FrameReader::new(Limits::default());
        r.push_bytes(&bytes);
        let mut dec = StreamDecoder::new(Limits::default());
        dec.apply(&r.try_read().unwrap().unwrap(), &mut Vec::new()).unwrap();
        let got = dec.complex().unwrap();
        let (a, b) = (complex.current(), got.current());
        assert!(a.topology.same_identity(b.topology), "{file}: topology differs");
        assert_eq!(a.display, b.display, "{file}: display state differs");
        for (x, y) in a.topology.atoms.b_factor.iter().zip(&b.topology.atoms.b_factor) {
            assert!((x - y).abs() <= 0.005 + x.abs() * 1e-6, "{file}: B {x} vs {y}");
        }
        assert_eq!((got.name.as_str(), got.position), (complex.name.as_str(), complex.position));
        #[allow(clippy::cast_precision_loss)]
        let per_atom = bytes.len() as f64 / a.topology.atom_count() as f64;
        // At 0.001 Å; the goal of ≤ 10 bytes/atom is for 100k-atom keyframes (see the codec bench).
        assert!(per_atom <= 10.5, "{file}: keyframe {per_atom:.2} bytes/atom");
    }
}

#[test]
fn corrupt_and_out_of_order_frames_change_nothing() {
    let complex = load(&common::assets().join("1YJP.cif"));
    let frames = thermal(complex.current().positions, 4);
    let mut enc = StreamEncoder::new(3, 2);
    let mut key = Vec::new();
    enc.keyframe(&complex, &mut key).unwrap();
    let mut d1 = Vec::new();
    enc.delta(&frames[1], &mut d1).unwrap();
    let mut d2 = Vec::new();
    enc.delta(&frames[2], &mut d2).unwrap();

    let read = |bytes: &[u8]| {
        let mut r = FrameReader::new(Limits::default());
        r.push_bytes(bytes);
        r.try_read()
    };
    let mut dec = StreamDecoder::new(Limits::default());
    let mut inst = Vec::new();
    // A delta before any keyframe asks for one.
    assert!(matches!(
        dec.apply(&read(&d1).unwrap().unwrap(), &mut inst),
        Err(CodecError::NeedKeyframe { held: None, .. })
    ));
    dec.apply(&read(&key).unwrap().unwrap(), &mut inst).unwrap();
    let before = inst.clone();
    // Skipping d1: d2's base is missing.
    assert!(matches!(
        dec.apply(&read(&d2).unwrap().unwrap(), &mut inst),
        Err(CodecError::NeedKeyframe { base_seq: 1, held: Some(0), .. })
    ));
    assert_eq!(inst, before);
    // Every single-byte corruption of d1 is caught (header check or checksum), state untouched.
    for i in 0..d1.len() {
        let mut bad = d1.clone();
        bad[i] ^= 0x5a;
        if let Ok(Some(f)) = read(&bad) {
            assert!(dec.apply(&f, &mut inst).is_err(), "corruption at byte {i} went unnoticed");
        }
        assert_eq!(inst, before, "byte {i}");
    }
    // Truncated frames wait for more bytes; bad magic breaks the reader for good.
    assert_eq!(read(&d1[..d1.len() - 1]).unwrap(), None);
    let mut junk = FrameReader::new(Limits::default());
    junk.push_bytes(b"GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE");
    assert_eq!(junk.try_read(), Err(CodecError::BadMagic));
    junk.push_bytes(&key);
    assert_eq!(junk.try_read(), Err(CodecError::BadMagic));
    // The intact sequence still applies.
    dec.apply(&read(&d1).unwrap().unwrap(), &mut inst).unwrap();
    dec.apply(&read(&d2).unwrap().unwrap(), &mut inst).unwrap();
    assert_eq!(dec.held_seq(), Some(2));
    // Limits are enforced from the header, before allocating.
    let mut tight = FrameReader::new(Limits { max_atoms: 10, ..Limits::default() });
    tight.push_bytes(&key);
    assert!(matches!(tight.try_read(), Err(CodecError::LimitExceeded { what: "atom count", .. })));
}

//! The stream codec on real trajectories: keyframe + deltas decode to within half a
//! quantization step on every frame of every file, the chained deltas equal a fresh keyframe of
//! the last frame, chunked reading works, and corrupt or out-of-order frames are typed errors
//! that change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use glam::Vec3;
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::positions::{
    self, Coding, DeltaOptions, Predictor, Quantized, apply_delta, describe_delta, encode_delta_with, step,
    validate_delta,
};
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
fn round_trip(name: &str, complex: Complex, frames: &[Vec<Vec3>], precision: u8) -> f64 {
    round_trip_coded(name, complex, frames, precision, positions::DEFAULT_CODING)
}

fn round_trip_coded(name: &str, mut complex: Complex, frames: &[Vec<Vec3>], precision: u8, coding: Coding) -> f64 {
    let n = frames[0].len();
    assert_eq!(complex.current().topology.atom_count(), n, "{name}: topology and trajectory disagree");
    complex.models.truncate(1);
    complex.current_model = 0;
    complex.set_positions(0, frames[0].clone()).unwrap();

    let mut enc = StreamEncoder::new(7, precision);
    enc.coding = coding;
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
    // The stream encoder uses the default coding (packed: measured 1.45 over these 40 frames,
    // frame headers included).
    assert_eq!(positions::DEFAULT_CODING, Coding::Packed);
    assert!(b2 <= 1.47, "{b2:.3} bytes/atom on the per-step stream at 0.01 Å");
    // A stream may choose the compact coding instead: same positions, fewer bytes.
    let complex = load(&common::assets().join("1hvr.pdb"));
    let e2 = round_trip_coded("thermal 1hvr (entropy)", complex, &frames, 2, Coding::Entropy);
    assert!(e2 < b2 && e2 <= 1.36, "entropy-coded stream: {e2:.3} bytes/atom vs packed {b2:.3}");
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

// ---------------------------------------------------------------------------------------------
// Position payloads in each coding
// ---------------------------------------------------------------------------------------------

const CODINGS: [Coding; 3] = [Coding::Bits, Coding::Packed, Coding::Entropy];

/// Codes `frames` in `coding` as the stream encoder would (the first frame as a keyframe's
/// positions, then each frame against the one before), decodes every payload, and checks every
/// coordinate to half a step and the quantized state exactly. Returns the mean delta bytes/atom.
fn positions_round_trip(name: &str, frames: &[Vec<Vec3>], precision: u8, coding: Coding) -> f64 {
    let n = frames[0].len();
    let (s, _) = step(precision);
    let tolerance = |p: Vec3| s * 0.5 * 1.0001 + p.abs().max_element() * 2.0 * f32::EPSILON;
    let check = |out: &[AtomInstance], frame: &[Vec3], i: usize| {
        for (k, (o, p)) in out.iter().zip(frame).enumerate() {
            let d = (Vec3::from_array(o.position) - *p).abs().max_element();
            assert!(d <= tolerance(*p), "{name} {coding:?} frame {i} atom {k}: off by {d} Å at 10^-{precision}");
        }
    };
    let q: Vec<Quantized> = frames.iter().map(|f| Quantized::from_positions(f, precision).unwrap()).collect();
    let mut out = vec![AtomInstance::default(); n];
    let mut w = Writer::new();
    encode_delta_with(&Quantized::zeros(n), &q[0], DeltaOptions { coding, keyframe: true }, &mut w);
    validate_delta(&w.buf, n).unwrap();
    let mut state = Quantized::zeros(n);
    apply_delta(&w.buf, &mut state, precision, &mut out[..]).unwrap();
    assert_eq!(state, q[0], "{name} {coding:?}: keyframe positions");
    check(&out, &frames[0], 0);
    let mut bytes = 0;
    for i in 1..frames.len() {
        let mut w = Writer::new();
        encode_delta_with(&q[i - 1], &q[i], DeltaOptions { coding, keyframe: false }, &mut w);
        bytes += w.buf.len();
        validate_delta(&w.buf, n).unwrap();
        apply_delta(&w.buf, &mut state, precision, &mut out[..]).unwrap();
        assert_eq!(state, q[i], "{name} {coding:?}: frame {i} state");
        check(&out, &frames[i], i);
    }
    #[allow(clippy::cast_precision_loss)]
    let per_atom = bytes as f64 / ((frames.len() - 1).max(1) * n) as f64;
    println!("{name} {coding:?} at 10^-{precision} Å: {per_atom:.3} bytes/atom per delta");
    per_atom
}

/// xorshift32 in [0, 1).
struct Rng(u32);

impl Rng {
    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        #[allow(clippy::cast_precision_loss)]
        let u = (self.0 >> 8) as f32 / (1u32 << 24) as f32;
        u
    }

    fn vec(&mut self) -> Vec3 {
        Vec3::new(self.unit(), self.unit(), self.unit()) * 2.0 - Vec3::ONE
    }

    fn direction(&mut self) -> Vec3 {
        loop {
            let v = self.vec();
            if v.length_squared() > 0.01 && v.length_squared() <= 1.0 {
                return v.normalize();
            }
        }
    }
}

/// A chain of `chain` atoms (1.5 Å bonds, 0.3 Å thermal motion per frame), then `waters` rigid
/// four-site waters (O, H1, H2 and a virtual site M = O + 0.15 Å along the HOH bisector, as
/// TIP4P) tumbling and diffusing freely, then two ions: no names, only coordinates.
fn solvated_chain(chain: usize, waters: usize, frames: usize, seed: u32) -> Vec<Vec<Vec3>> {
    let mut rng = Rng(seed);
    let mut backbone = vec![Vec3::splat(20.0)];
    while backbone.len() < chain {
        let d = rng.direction();
        let last = backbone[backbone.len() - 1];
        backbone.push(last + d * 1.5);
    }
    let mut oxygens: Vec<Vec3> = (0..waters).map(|_| (rng.vec() + Vec3::ONE) * 20.0).collect();
    let ions = [Vec3::new(3.0, 30.0, 7.0), Vec3::new(33.0, 4.0, 21.0)];
    let (angle, oh) = (104.52f32.to_radians(), 0.9572f32);
    (0..frames)
        .map(|_| {
            let mut f: Vec<Vec3> = backbone.iter().map(|&p| p + rng.vec() * 0.3).collect();
            for o in &mut oxygens {
                *o += rng.vec() * 3.0;
                let u = rng.direction();
                let v = (rng.direction() - u * u.dot(rng.direction())).normalize_or(Vec3::X).cross(u).normalize();
                let h1 = *o + u * oh;
                let h2 = *o + (u * angle.cos() + v * angle.sin()) * oh;
                let bisector = ((h1 + h2) * 0.5 - *o).normalize();
                f.extend([*o, h1, h2, *o + bisector * 0.15]);
            }
            f.extend(ions.iter().map(|&p| p + rng.vec()));
            f
        })
        .collect()
}

#[test]
fn position_codings_round_trip_and_meet_their_sizes() {
    let complex = load(&common::assets().join("1hvr.pdb"));
    let frames = thermal(complex.current().positions, 40);
    for precision in [2, 3] {
        for coding in CODINGS {
            let b = positions_round_trip("thermal 1hvr", &frames, precision, coding);
            if precision == 2 {
                // Goal ≤ 1.5 at 0.01 Å. Measured: bits 1.584 (every axis rounded up to whole bits),
                // packed 1.435 (mixed-radix blocks), entropy 1.307.
                let bound = match coding {
                    Coding::Bits => 1.60,
                    Coding::Packed => 1.45,
                    Coding::Entropy => 1.32,
                };
                assert!(b <= bound, "thermal {coding:?}: {b:.3} bytes/atom");
            }
        }
    }
    let nmr = load(&common::assets().join("nmr_neopetrosiamide.pdb"));
    let models: Vec<Vec<Vec3>> = nmr.models.iter().map(|m| m.positions.clone()).collect();
    let water = solvated_chain(150, 120, 6, 0x1234_5678);
    for coding in CODINGS {
        positions_round_trip("nmr_neopetrosiamide", &models, 3, coding);
        positions_round_trip("solvated chain", &water, 2, coding);
    }
}

#[test]
fn position_codings_round_trip_real_trajectories() {
    let Some(dir) = common::shared_data() else { return };
    let adk_path = dir.join("traj/adk_oplsaa.xtc");
    let adk = xtc_frames(&adk_path);
    #[allow(clippy::cast_precision_loss)]
    let xtc = std::fs::metadata(&adk_path).unwrap().len() as f64 / (adk.len() * adk[0].len()) as f64;
    let cobrotoxin = xtc_frames(&dir.join("traj/cobrotoxin.xtc"));
    let dcd = traj::read_dcd(&std::fs::read(dir.join("traj/adk_dims.dcd")).unwrap()).unwrap().frames;
    for coding in CODINGS {
        for precision in [2, 3] {
            let b = positions_round_trip("adk_oplsaa.xtc", &adk, precision, coding);
            if precision == 2 {
                // Goal: no larger than the XTC file itself (3.464 bytes/atom). Measured: bits 3.104,
                // packed 3.095, entropy 2.716.
                let bound = if coding == Coding::Entropy { xtc * 0.79 } else { xtc * 0.9 };
                assert!(b <= bound, "adk {coding:?}: {b:.3} bytes/atom, XTC {xtc:.3}");
            }
            positions_round_trip("cobrotoxin.xtc", &cobrotoxin, precision, coding);
            positions_round_trip("adk_dims.dcd", &dcd, precision, coding);
        }
    }
}

#[test]
fn rigid_waters_and_virtual_sites_are_found_from_the_data() {
    let frames = solvated_chain(150, 300, 3, 0x0bad_cafe);
    let n = frames[0].len();
    let q: Vec<Quantized> = frames.iter().map(|f| Quantized::from_positions(f, 2).unwrap()).collect();
    for coding in CODINGS {
        let mut w = Writer::new();
        encode_delta_with(&q[0], &q[1], DeltaOptions { coding, keyframe: false }, &mut w);
        let (got, plan) = describe_delta(&w.buf, n).unwrap();
        // Packed falls back to the bits layout when no block takes the radix form.
        assert!(got == coding || (coding == Coding::Packed && got == Coding::Bits), "{coding:?} gave {got:?}");
        // The waters form one period-4 segment starting at the first oxygen, which is predicted in
        // time, then H1 from O, H2 from O and H1, and M from all three.
        let mut start = 0;
        let mut water = None;
        for seg in &plan {
            if seg.period == 4 {
                water = Some((start, seg.clone()));
            }
            start += seg.len;
        }
        let (start, seg) = water.unwrap_or_else(|| panic!("{coding:?}: no period-4 segment in {plan:?}"));
        assert!(start.abs_diff(150) <= 4 && seg.len >= 1190, "{coding:?}: water segment at {start}, {} atoms", seg.len);
        assert_eq!(start % 4, 150 % 4, "{coding:?}: segment not aligned on the oxygens");
        assert_eq!(seg.slots[0], Predictor::Temporal);
        assert_eq!(seg.slots[1], Predictor::Linear { w2: 0, w3: 0 });
        // M = 0.744·O + 0.128·H1 + 0.128·H2, as weights of (c[i−2] − c[i−1]) and (c[i−3] − c[i−1]).
        let Predictor::Linear { w2, w3 } = seg.slots[3] else { panic!("{coding:?}: M slot {:?}", seg.slots[3]) };
        assert!((w2 - 8389).abs() < 300 && (w3 - 48754).abs() < 300, "{coding:?}: M weights {w2}, {w3}");
    }
}

#[test]
fn corrupt_position_payloads_are_refused_or_harmless() {
    // Chain and waters: periods and linear predictors. Thermal steps of a small protein piece:
    // radix blocks (the packed coding's own).
    let water = solvated_chain(100, 40, 2, 77);
    let hvr = load(&common::assets().join("1hvr.pdb"));
    let steps: Vec<Vec<Vec3>> = thermal(&hvr.current().positions[..300], 2);
    for (coding, frames, keyframes) in [
        (Coding::Bits, &water, &[false, true][..]),
        (Coding::Entropy, &water, &[false, true]),
        (Coding::Packed, &steps, &[false]),
    ] {
        let n = frames[0].len();
        let q: Vec<Quantized> = frames.iter().map(|f| Quantized::from_positions(f, 2).unwrap()).collect();
        for &keyframe in keyframes {
            let base = if keyframe { Quantized::zeros(n) } else { q[0].clone() };
            let mut w = Writer::new();
            encode_delta_with(&base, &q[1], DeltaOptions { coding, keyframe }, &mut w);
            let payload = w.buf;
            assert_eq!(describe_delta(&payload, n).unwrap().0, coding, "{coding:?} fell back");
            // Every truncation and every extension is refused before anything is applied.
            for cut in 0..payload.len() {
                assert!(validate_delta(&payload[..cut], n).is_err(), "{coding:?} cut at {cut} accepted");
            }
            let mut longer = payload.clone();
            longer.push(0);
            assert!(validate_delta(&longer, n).is_err());
            assert!(validate_delta(&payload, n + 1).is_err() && validate_delta(&payload, n - 1).is_err());
            // A flipped byte is refused, or it decodes (to other positions) without failing.
            let mut refused = 0;
            for i in 0..payload.len() {
                for flip in [0x01, 0x5a, 0xff] {
                    let mut bad = payload.clone();
                    bad[i] ^= flip;
                    let mut state = base.clone();
                    let mut out = vec![Vec3::ZERO; n];
                    match validate_delta(&bad, n) {
                        Ok(()) => apply_delta(&bad, &mut state, 2, &mut out[..])
                            .unwrap_or_else(|e| panic!("{coding:?}: accepted flip at {i} failed to apply: {e}")),
                        Err(_) => refused += 1,
                    }
                }
            }
            println!("{coding:?} keyframe={keyframe}: {refused} of {} flips refused", 3 * payload.len());
            assert!(refused > 0);
        }
    }
}

/// A packed payload header: coding, then the plan.
fn plan_bytes(coding: u8, segments: &[(u64, &[u8])]) -> Writer {
    let mut w = Writer::new();
    w.u8(coding);
    w.varint(segments.len() as u64);
    for (len, slots) in segments {
        w.varint(*len);
        w.u8(slots.len() as u8);
        w.buf.extend_from_slice(slots);
    }
    w
}

#[test]
fn hostile_position_payloads_are_typed_errors() {
    let n = 40;
    let corrupt = |bytes: &[u8]| {
        let e = validate_delta(bytes, n).unwrap_err();
        assert!(matches!(e, CodecError::Corrupt(_)), "{bytes:?}: {e:?}");
        // Applying it anyway (which the decoder never does) must not panic either.
        let _ = apply_delta(bytes, &mut Quantized::zeros(n), 2, &mut vec![Vec3::ZERO; n][..]);
    };
    assert_eq!(validate_delta(&[], n), Err(CodecError::Truncated));
    for coding in [0u8, 4, 255] {
        corrupt(&[coding, 1, 40, 1, 0]);
    }
    // Plans: no segment, a period of 0 or 9, an unknown predictor, too few atoms, an empty segment.
    corrupt(&plan_bytes(1, &[]).buf);
    corrupt(&plan_bytes(1, &[(40, &[])]).buf);
    corrupt(&plan_bytes(1, &[(40, &[0; 9])]).buf);
    corrupt(&plan_bytes(1, &[(40, &[4])]).buf);
    corrupt(&plan_bytes(1, &[(39, &[0])]).buf);
    corrupt(&plan_bytes(1, &[(0, &[0]), (40, &[0])]).buf);
    // More atoms, or more segments, than the frame has: refused as over the limit.
    let over = validate_delta(&plan_bytes(1, &[(41, &[0])]).buf, n).unwrap_err();
    assert!(matches!(over, CodecError::LimitExceeded { .. }), "{over:?}");
    let many: Vec<(u64, &[u8])> = vec![(1, &[0]); 41];
    let over = validate_delta(&plan_bytes(1, &many).buf, n).unwrap_err();
    assert!(matches!(over, CodecError::LimitExceeded { .. }), "{over:?}");
    // A mode bit on a temporal slot; a block whose widths need more bytes than there are.
    let mut w = plan_bytes(1, &[(32, &[0]), (8, &[2])]);
    w.u16(1 << 15);
    w.u16(0);
    corrupt(&w.buf);
    let mut w = plan_bytes(1, &[(40, &[2])]);
    w.u16(31 | 31 << 5 | 31 << 10);
    assert_eq!(validate_delta(&w.buf, n), Err(CodecError::Truncated));

    // Packed (3) block headers: an unknown kind, bit 15 of the widths, a repeat with nothing to
    // repeat, a range of 2^32, ranges multiplying past 2^32; a valid radix block then a repeat.
    let packed = |blocks: &[&[u8]]| {
        let mut w = plan_bytes(3, &[(40, &[0])]);
        for b in blocks {
            w.buf.extend_from_slice(b);
        }
        w.buf
    };
    corrupt(&packed(&[&[3], &[0]]));
    corrupt(&packed(&[&[0, 0, 0x80], &[0, 0, 0]]));
    corrupt(&packed(&[&[2], &[0, 0, 0]]));
    corrupt(&packed(&[&[1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0], &[0, 0, 0]]));
    corrupt(&packed(&[&[1, 0xff, 0xff, 0x03, 0xff, 0xff, 0x03, 1], &[0, 0, 0]]));
    corrupt(&packed(&[&[0x81, 0, 0, 0], &[0, 0, 0]])); // mode bit on a temporal slot
    // A range of 2^64 (found by fuzzing: `varint + 1` overflowed), and ranges whose product
    // overflows 64 bits (also found by fuzzing: the check itself overflowed).
    corrupt(&packed(&[&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0]]));
    corrupt(&packed(&[&[1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0xfe, 0xff, 0xff, 0xff, 0x0f]]));
    let mut radix = vec![1, 2, 2, 2]; // ranges 3 × 3 × 3: 5 bits per atom
    radix.extend([0x55; 20]);
    let ok = packed(&[&radix, &[2], &[0x55; 20]]);
    validate_delta(&ok, n).unwrap();
    let mut state = Quantized::zeros(n);
    apply_delta(&ok, &mut state, 2, &mut vec![Vec3::ZERO; n][..]).unwrap();
    assert!(state.x.iter().chain(&state.y).chain(&state.z).all(|v| v.abs() <= 1), "zigzag values 0–2 are −1…1");
    assert_eq!(validate_delta(&ok[..ok.len() - 1], n), Err(CodecError::Truncated));

    // Entropy: table count, token count, frequencies not summing to the scale, a slot naming a
    // missing table, word and raw-bit counts beyond the payload, bytes after the end.
    let entropy = |tables: &[&[u8]], slot_table: u8, tail: &[u8]| {
        let mut w = Writer::new();
        w.u8(2);
        w.u8(tables.len() as u8);
        for t in tables {
            w.buf.extend_from_slice(t);
        }
        w.varint(1);
        w.varint(40);
        w.u8(1);
        w.u8(0);
        w.u8(slot_table);
        w.buf.extend_from_slice(tail);
        w.buf
    };
    let whole: &[u8] = &[1, 0x80, 0x10]; // one token, frequency 2048
    let ok_tail: &[u8] = &[0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]; // states 2^16, no word, no raw byte
    validate_delta(&entropy(&[whole], 0, ok_tail), n).unwrap();
    corrupt(&entropy(&[], 0, ok_tail));
    corrupt(&entropy(&[whole; 9], 0, ok_tail));
    corrupt(&entropy(&[&[0]], 0, ok_tail));
    corrupt(&entropy(&[&[129]], 0, ok_tail));
    corrupt(&entropy(&[&[2, 0xff, 0x0f, 2]], 0, ok_tail));
    corrupt(&entropy(&[&[1, 5]], 0, ok_tail));
    corrupt(&entropy(&[whole], 1, ok_tail));
    let mut trailing = entropy(&[whole], 0, ok_tail);
    trailing.push(0);
    corrupt(&trailing);
    for tail in [&[0u8, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0x7f][..], &[0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 9]] {
        let e = validate_delta(&entropy(&[whole], 0, tail), n).unwrap_err();
        assert!(matches!(e, CodecError::LimitExceeded { .. } | CodecError::Truncated), "{e:?}");
    }
    // Hostile rANS states and words still decode without panicking (to garbage positions).
    let junk = entropy(
        &[&[3, 0x80, 0x04, 0x80, 0x04, 0x80, 0x08]],
        0,
        &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0xaa, 0x55, 0x12, 0x34, 0, 1, 9, 9, 3, 1, 2, 3],
    );
    validate_delta(&junk, n).unwrap();
    apply_delta(&junk, &mut Quantized::zeros(n), 2, &mut vec![Vec3::ZERO; n][..]).unwrap();
}

/// Fuzz-found (`codec_keyframe`): a keyframe whose positions decode beyond ±2^28 quantization
/// steps is refused, since no sender can write it and it could not be encoded again.
#[test]
fn keyframe_with_coordinates_beyond_the_quantization_range_is_refused() {
    use molstream_engine::codec::keyframe;
    use molstream_engine::codec::positions::{Q_LIMIT, encode_delta};
    let complex = load(&common::assets().join("1hvr.pdb"));
    let mut w = Writer::new();
    let q = keyframe::encode(&complex, 3, &mut w).unwrap();
    let n = q.len();
    let mut body = Writer::new();
    encode_delta(&Quantized::zeros(n), &q, true, &mut body);
    assert!(w.buf.ends_with(&body.buf), "the positions end the keyframe payload");
    let prefix = &w.buf[..w.buf.len() - body.buf.len()];
    let limits = Limits::default();
    assert!(keyframe::decode(&w.buf, n as u32, 3, &limits).is_ok());
    for bad in [Q_LIMIT, Q_LIMIT + 7, -Q_LIMIT, -Q_LIMIT - 9] {
        let mut q_bad = q.clone();
        q_bad.y[n / 2] = bad;
        let mut bad_body = Writer::new();
        encode_delta(&Quantized::zeros(n), &q_bad, true, &mut bad_body);
        let mut payload = prefix.to_vec();
        payload.extend_from_slice(&bad_body.buf);
        let err = keyframe::decode(&payload, n as u32, 3, &limits).unwrap_err();
        assert!(matches!(err, CodecError::Corrupt(_)), "{bad}: {err:?}");
    }
}

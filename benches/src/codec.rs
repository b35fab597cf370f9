//! `molstream-bench codec`: the stream codec on a trajectory, beside its baselines.
//!
//! Everything is measured in one run on this machine: delta decode into an `AtomInstance`
//! buffer, a memcpy of the same output bytes, and for XTC input molly decoding the same frames
//! from memory. Ratios are the figures to read; absolute times move with machine load.
//!
//! The top-level figures go through `StreamEncoder`/`StreamDecoder` (frame headers, checksums
//! checked outside the timing, the default position coding). `position_codings` has, per coding
//! (`bits`, `packed`, `entropy`), the position payloads alone: bytes per atom of the deltas and
//! of a keyframe's positions, encode speed, and delta decode speed (`validate_delta` +
//! `apply_delta` into the same `AtomInstance` buffer) with its ratios to memcpy and, for XTC
//! input, to molly. Times are medians of `--repeat` passes.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use glam::Vec3;
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::positions::{self, Coding, DeltaOptions, Quantized};
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{Limits, stream::Frame};
use molstream_engine::gpu::AtomInstance;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::{Complex, synth, traj};

/// Arguments of `codec`.
#[derive(Args, Debug)]
pub struct CodecArgs {
    /// Trajectory: `.xtc`, `.dcd`, or a multi-model PDB/mmCIF; `thermal` for the synthetic
    /// per-step stream (bundled 1hvr, ~0.05 Å RMS random motion per step).
    #[arg(long, value_name = "FILE")]
    input: String,
    /// Topology for `.xtc`/`.dcd` input (default: the matching PDB in ../shared/data/pdb).
    #[arg(long, value_name = "PDB")]
    topology: Option<PathBuf>,
    /// Quantization step in Å: 0.01 or 0.001 (0.1 and 0.0001 are also accepted).
    #[arg(long, default_value_t = 0.01)]
    precision: f64,
    /// Decode repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: u32,
    /// Print exactly one JSON object.
    #[arg(long)]
    json: bool,
}

fn precision_exponent(step: f64) -> Result<u8> {
    for k in 1..=4u8 {
        if (step - 10f64.powi(-i32::from(k))).abs() < 1e-12 {
            return Ok(k);
        }
    }
    bail!("--precision must be 0.1, 0.01, 0.001 or 0.0001 Å, not {step}")
}

fn load(path: &std::path::Path) -> Result<Complex> {
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    Ok(load_file(path, &opts).with_context(|| format!("loading {}", path.display()))?.complex)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Frames in Å, the topology complex, and the XTC bytes when the input is XTC.
type Trajectory = (Vec<Vec<Vec3>>, Complex, Option<Vec<u8>>);

/// Reads the trajectory named by `args`.
fn frames(args: &CodecArgs) -> Result<Trajectory> {
    let input = args.input.as_str();
    if input == "thermal" {
        let complex = load(&repo().join("assets/1hvr.pdb"))?;
        let out = synth::random_walk(complex.current().positions, 200, 0.05, 0x9e37_79b9);
        return Ok((out, complex, None));
    }
    let path = PathBuf::from(input);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let topology = |default: &str| -> Result<Complex> {
        let t = args.topology.clone().unwrap_or_else(|| repo().join("../shared/data/pdb").join(default));
        load(&t)
    };
    match ext.as_str() {
        "xtc" => {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {input}"))?;
            let frames = read_xtc(&bytes)?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            Ok((frames, topology(&format!("{stem}.pdb"))?, Some(bytes)))
        }
        "dcd" => {
            let dcd = traj::read_dcd(&std::fs::read(&path)?).with_context(|| format!("reading {input}"))?;
            Ok((dcd.frames, topology("adk_open.pdb")?, None))
        }
        _ => {
            let complex = load(&path)?;
            let frames = complex.models.iter().map(|m| m.positions.clone()).collect();
            Ok((frames, complex, None))
        }
    }
}

fn read_xtc(bytes: &[u8]) -> Result<Vec<Vec<Vec3>>> {
    let mut r = molly::XTCReader::new(std::io::Cursor::new(bytes));
    let frames = r.read_all_frames().context("decoding XTC")?;
    Ok(frames.iter().map(|f| f.coords().map(|p| Vec3::from_array(p) * 10.0).collect()).collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn read_frame(bytes: &[u8]) -> Result<Frame> {
    let mut r = FrameReader::new(Limits::default());
    r.push_bytes(bytes);
    r.try_read()?.context("incomplete frame")
}

/// Runs the codec benchmark.
pub fn run(args: &CodecArgs) -> Result<()> {
    let k = precision_exponent(args.precision)?;
    let (frames, mut complex, xtc) = frames(args)?;
    if frames.len() < 2 {
        bail!("{} has {} frame(s); a delta needs at least two", args.input, frames.len());
    }
    let n = frames[0].len();
    complex.models.truncate(1);
    complex.current_model = 0;
    complex.set_positions(0, frames[0].clone()).map_err(anyhow::Error::msg)?;

    // Encode: one keyframe, then a delta per frame.
    let mut enc = StreamEncoder::new(1, k);
    let mut key = Vec::new();
    enc.keyframe(&complex, &mut key)?;
    let t = Instant::now();
    let mut deltas = Vec::with_capacity(frames.len() - 1);
    for f in &frames[1..] {
        let mut b = Vec::new();
        enc.delta(f, &mut b)?;
        deltas.push(b);
    }
    let encode_s = t.elapsed().as_secs_f64();
    let delta_bytes: usize = deltas.iter().map(Vec::len).sum();
    let key_frame = read_frame(&key)?;
    let delta_frames: Vec<Frame> = deltas.iter().map(|b| read_frame(b)).collect::<Result<_>>()?;

    // Decode deltas into the instance buffer; memcpy of the same output bytes beside it.
    let mut decode = Vec::new();
    let mut memcpy = Vec::new();
    let mut instances: Vec<AtomInstance> = Vec::new();
    let src: Vec<AtomInstance> = vec![AtomInstance::default(); n];
    let mut dst: Vec<AtomInstance> = vec![AtomInstance::default(); n];
    for _ in 0..args.repeat.max(1) {
        let mut dec = StreamDecoder::new(Limits::default());
        dec.apply(&key_frame, &mut instances)?;
        let t = Instant::now();
        for f in &delta_frames {
            dec.apply(f, &mut instances)?;
        }
        decode.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in &delta_frames {
            dst.copy_from_slice(&src);
            std::hint::black_box(&mut dst);
        }
        memcpy.push(t.elapsed().as_secs_f64());
    }
    #[allow(clippy::cast_precision_loss)]
    let atom_frames = (n * delta_frames.len()) as f64;
    let decode_s = median(decode);
    let memcpy_s = median(memcpy);

    // Each position coding on its own: payload bytes, encode and delta decode (validate + apply
    // into the same AtomInstance buffer), against the same memcpy figure.
    let mut codings = serde_json::Map::new();
    for (name, coding) in [("bits", Coding::Bits), ("packed", Coding::Packed), ("entropy", Coding::Entropy)] {
        let m = coding_figures(&frames, k, coding, args.repeat.max(1))?;
        #[allow(clippy::cast_precision_loss)]
        let figures = serde_json::json!({
            "bytes_per_atom": round(m.bytes as f64 / atom_frames, 3),
            "keyframe_positions_bytes_per_atom": round(m.key_bytes as f64 / n as f64, 3),
            "encode_matoms_per_s": round(atom_frames / m.encode_s / 1e6, 1),
            "decode_matoms_per_s": round(atom_frames / m.decode_s / 1e6, 1),
            "decode_vs_memcpy": round(memcpy_s / m.decode_s, 3),
        });
        codings.insert(name.into(), figures);
    }

    // XTC baseline: molly decoding the same frames from memory.
    let mut xtc_fields = serde_json::Map::new();
    if let Some(bytes) = &xtc {
        let mut times = Vec::new();
        for _ in 0..args.repeat.max(1) {
            let t = Instant::now();
            std::hint::black_box(read_xtc(bytes)?);
            times.push(t.elapsed().as_secs_f64());
        }
        #[allow(clippy::cast_precision_loss)]
        let all = (n * frames.len()) as f64;
        xtc_fields.insert("xtc_bytes_per_atom".into(), round(bytes.len() as f64 / all, 3).into());
        xtc_fields.insert("xtc_decode_matoms_per_s".into(), round(all / median(times) / 1e6, 1).into());
    }

    // The 100k-atom keyframe goal: tile 1hvr to ≥ 100,000 atoms, time encode + decode.
    let base = load(&repo().join("assets/1hvr.pdb"))?;
    let v = base.current();
    let (tt, tp) = synth::tile(v.topology, v.positions, [53, 1, 1], 4.0);
    let big = Complex::single("tiled", tt, tp);
    let mut key_times = Vec::new();
    let mut big_bytes = 0usize;
    for _ in 0..args.repeat.max(1) {
        let t = Instant::now();
        let mut b = Vec::new();
        StreamEncoder::new(2, k).keyframe(&big, &mut b)?;
        let f = read_frame(&b)?;
        StreamDecoder::new(Limits::default()).apply(&f, &mut Vec::new())?;
        key_times.push(t.elapsed().as_secs_f64());
        big_bytes = b.len();
    }
    let big_n = big.current().topology.atom_count();

    #[allow(clippy::cast_precision_loss)]
    let mut out = serde_json::json!({
        "input": args.input,
        "precision_angstrom": 10f64.powi(-i32::from(k)),
        "atoms": n,
        "frames": frames.len(),
        "bytes_per_atom": round(delta_bytes as f64 / atom_frames, 3),
        "keyframe_bytes_per_atom": round(key.len() as f64 / n as f64, 3),
        "float32_bytes_per_atom": 12,
        "encode_matoms_per_s": round(atom_frames / encode_s / 1e6, 1),
        "decode_matoms_per_s": round(atom_frames / decode_s / 1e6, 1),
        "memcpy_matoms_per_s": round(atom_frames / memcpy_s / 1e6, 1),
        "decode_vs_memcpy": round(memcpy_s / decode_s, 3),
        "keyframe_100k": {
            "atoms": big_n,
            "encode_decode_ms": round(median(key_times) * 1e3, 2),
            "bytes_per_atom": round(big_bytes as f64 / big_n as f64, 3),
        },
    });
    let xtc_speed = xtc_fields.get("xtc_decode_matoms_per_s").and_then(serde_json::Value::as_f64);
    if let (Some(obj), Some(x)) = (out.as_object_mut(), xtc_speed) {
        obj.extend(xtc_fields.clone());
        let ours = atom_frames / decode_s / 1e6;
        obj.insert("decode_vs_xtc".into(), round(ours / x, 2).into());
        for figures in codings.values_mut() {
            if let Some(f) = figures.as_object_mut() {
                let ours = f.get("decode_matoms_per_s").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                f.insert("decode_vs_xtc".into(), round(ours / x, 2).into());
            }
        }
    }
    if let Some(obj) = out.as_object_mut() {
        obj.insert("position_codings".into(), codings.into());
    }
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// Figures of one position coding over a trajectory.
struct CodingFigures {
    bytes: usize,
    key_bytes: usize,
    encode_s: f64,
    decode_s: f64,
}

/// Codes every frame after the first as a payload against the one before, in `coding`, and
/// times decoding them (validate + apply) into an `AtomInstance` buffer; the median of `repeat`.
fn coding_figures(frames: &[Vec<Vec3>], k: u8, coding: Coding, repeat: u32) -> Result<CodingFigures> {
    let q: Vec<Quantized> = frames.iter().map(|f| Quantized::from_positions(f, k)).collect::<Result<_, _>>()?;
    let n = q[0].len();
    let mut key = Writer::new();
    positions::encode_delta_with(&Quantized::zeros(n), &q[0], DeltaOptions { coding, keyframe: true }, &mut key);
    let mut encode = Vec::new();
    let mut payloads = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        payloads = q
            .windows(2)
            .map(|w| {
                let mut out = Writer::with_capacity(n * 4);
                positions::encode_delta_with(&w[0], &w[1], DeltaOptions { coding, keyframe: false }, &mut out);
                out.buf
            })
            .collect();
        encode.push(t.elapsed().as_secs_f64());
    }
    let mut decode = Vec::new();
    let mut instances = vec![AtomInstance::default(); n];
    for _ in 0..repeat {
        let mut state = q[0].clone();
        let t = Instant::now();
        for p in &payloads {
            positions::validate_delta(p, n)?;
            positions::apply_delta(p, &mut state, k, &mut instances[..])?;
        }
        decode.push(t.elapsed().as_secs_f64());
        if state != q[q.len() - 1] {
            bail!("{coding:?} decoding did not reproduce the last frame");
        }
    }
    Ok(CodingFigures {
        bytes: payloads.iter().map(Vec::len).sum(),
        key_bytes: key.buf.len(),
        encode_s: median(encode),
        decode_s: median(decode),
    })
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

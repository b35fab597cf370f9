//! `molstream-bench shapes`: a synthetic mesh through the shapes codec (frame kind 5), beside a
//! memcpy of the same output bytes.
//!
//! The mesh is a torus of about `--triangles` triangles with per-vertex normals, colours and
//! uvs (`Mesh::torus`), quantized at 0.001 Å. Every figure comes from one run on this machine:
//! - `encode_ms`: payload encoding plus sealing (checksum, no lz4), median of `--repeat`;
//! - `decode_ms`: header parse, checksum, payload parse and [`MeshRef::decode_into`] straight
//!   into preallocated `MeshVertex` and index buffers, median;
//! - `memcpy_ms`: copying that many output bytes between two preallocated buffers, median;
//! - `raw_bytes`: the float columns (12 + 12 + 4 + 8 bytes a vertex, 12 a triangle);
//! - `shuffled_bytes_per_triangle`: the same mesh with vertices and triangles in random order,
//!   the worst case for the codec's neighbour prediction (real meshes lie in between).

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use glam::Vec3;
use molstream_engine::ComplexId;
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::header::{self, FrameHeader};
use molstream_engine::codec::shapes::{MeshOptions, MeshRef, RecordKind, encode_shapes, parse_shapes};
use molstream_engine::codec::{FrameKind, Limits};
use molstream_engine::shape::{Anchor, Mesh, MeshVertex, Shape, ShapeId, ShapeKind};

/// Position precision: 10^-3 Å.
const PRECISION: u8 = 3;

/// Arguments of `shapes`.
#[derive(Args, Debug)]
pub struct ShapesArgs {
    /// Approximate triangle count of the synthetic torus.
    #[arg(long, default_value_t = 1_000_000)]
    triangles: usize,
    /// Repetitions (medians are reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Print exactly one JSON object.
    #[arg(long)]
    json: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

/// A torus of about `triangles` triangles, twice as many rings as segments.
fn torus(triangles: usize) -> Result<Mesh> {
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let segments = ((triangles as f64 / 4.0).sqrt().round() as usize).max(3);
    let rings = triangles.div_ceil(2 * segments).max(3);
    let (r, s) = (u32::try_from(rings)?, u32::try_from(segments)?);
    Ok(Mesh::torus(Anchor::complex(ComplexId(1), Vec3::ZERO), 40.0, 10.0, r, s))
}

/// The frame of one mesh shape.
fn encode(shape: &Shape) -> Result<Vec<u8>> {
    let mut w = Writer::new();
    let records = encode_shapes(true, &[shape], &[], PRECISION, MeshOptions::default(), &mut w)?;
    let h = FrameHeader {
        kind: FrameKind::Shapes,
        precision: PRECISION,
        flags: 0,
        stream_id: 1,
        seq: 0,
        base_seq: 0,
        atom_count: records,
        payload_len: 0,
        checksum: 0,
    };
    let mut out = Vec::new();
    header::seal(h, &w.buf, false, &mut out);
    Ok(out)
}

/// What the viewer does with a received frame: check it, find the mesh, decode it in place.
fn decode(frame: &[u8], limits: &Limits, vertices: &mut [MeshVertex], indices: &mut [u32]) -> Result<()> {
    let h = FrameHeader::parse(frame, limits)?;
    let payload = header::open(&h, frame.get(molstream_engine::codec::HEADER_LEN..).context("short frame")?, limits)?;
    let view = parse_shapes(&payload, &h, limits)?;
    let Some(RecordKind::Mesh(mesh)) = view.records.first().map(|r| r.kind) else { bail!("no mesh in the frame") };
    let mesh: MeshRef<'_> = mesh;
    mesh.decode_into(1, vertices, indices)?;
    Ok(())
}

/// The mesh with vertices and triangles in random order (indices remapped).
fn shuffled(m: &Mesh) -> Mesh {
    let mut state = 0x9e37_79b9u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize
    };
    let n = m.positions.len();
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, next() % (i + 1));
    }
    let mut new_index = vec![0u32; n];
    for (new, &old) in order.iter().enumerate() {
        new_index[old] = u32::try_from(new).unwrap_or(u32::MAX);
    }
    let mut out = m.clone();
    out.positions = order.iter().map(|&i| m.positions[i]).collect();
    out.normals = order.iter().map(|&i| m.normals[i]).collect();
    out.colors = order.iter().map(|&i| m.colors[i]).collect();
    out.uvs = order.iter().map(|&i| m.uvs[i]).collect();
    let mut tris: Vec<[u32; 3]> =
        m.indices.chunks_exact(3).map(|t| [t[0], t[1], t[2]].map(|i| new_index[i as usize])).collect();
    for i in (1..tris.len()).rev() {
        tris.swap(i, next() % (i + 1));
    }
    out.indices = tris.concat();
    out
}

/// Runs the shapes benchmark.
pub fn run(args: &ShapesArgs) -> Result<()> {
    let mesh = torus(args.triangles)?;
    let (v, t) = (mesh.vertex_count(), mesh.triangle_count());
    let shape = Shape { id: ShapeId(1), color: 0xffff_ffff, kind: ShapeKind::Mesh(mesh) };
    let limits = Limits::default();

    let mut encode_times = Vec::new();
    let mut frame = Vec::new();
    for _ in 0..args.repeat {
        let start = Instant::now();
        frame = black_box(encode(&shape)?);
        encode_times.push(start.elapsed().as_secs_f64() * 1e3);
    }

    // Output buffers allocated and touched once, as a viewer's staging buffers would be.
    let mut vertices = vec![MeshVertex::default(); v];
    let mut indices = vec![0u32; 3 * t];
    let out_bytes = v * size_of::<MeshVertex>() + 3 * t * 4;
    let src = vec![1u8; out_bytes];
    let mut dst = vec![0u8; out_bytes];
    let mut decode_times = Vec::new();
    let mut memcpy_times = Vec::new();
    for _ in 0..args.repeat {
        let start = Instant::now();
        decode(black_box(&frame), &limits, &mut vertices, &mut indices)?;
        black_box((&mut vertices, &mut indices));
        decode_times.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
        memcpy_times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let ShapeKind::Mesh(m) = &shape.kind else { bail!("not a mesh") };
    let shuffled_bytes = encode(&Shape { kind: ShapeKind::Mesh(shuffled(m)), ..shape.clone() })?.len();

    let (encode_ms, decode_ms, memcpy_ms) = (median(encode_times), median(decode_times), median(memcpy_times));
    let raw = v * 36 + t * 12;
    #[allow(clippy::cast_precision_loss)]
    let report = serde_json::json!({
        "triangles": t,
        "vertices": v,
        "precision_angstrom": 10f64.powi(-i32::from(PRECISION)),
        "raw_bytes": raw,
        "gpu_bytes": out_bytes,
        "encoded_bytes": frame.len(),
        "bytes_per_triangle": round(frame.len() as f64 / t as f64, 3),
        "raw_over_encoded": round(raw as f64 / frame.len() as f64, 2),
        "shuffled_bytes_per_triangle": round(shuffled_bytes as f64 / t as f64, 3),
        "repeat": args.repeat,
        "encode_ms": round(encode_ms, 3),
        "decode_ms": round(decode_ms, 3),
        "memcpy_ms": round(memcpy_ms, 3),
        "decode_over_memcpy": round(decode_ms / memcpy_ms, 2),
    });
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

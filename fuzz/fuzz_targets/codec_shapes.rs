//! The shapes codec's decoders (frame kinds 5 and 6) on arbitrary payloads, past the checksum
//! (which would reject almost every mutant before the decoders see it).
//!
//! Input: byte 0 picks the header (bit 0: kind 5 or 6; bit 1: a full frame, base = seq;
//! bits 2-4: precision mod 5), bytes 1-2 are the header's record count (u16 LE), the rest is
//! the payload. Each input runs:
//! - the GPU path: `parse_shapes`, then every mesh's `decode_into` buffers of exactly the sizes
//!   it reported (so a hostile size is bounded by the small limits below), asserting that every
//!   decoded index is below the vertex count; or `decode_changes` for kind 6;
//! - the model path: `ShapeSet::apply` on a set holding a few shapes at the frame's base,
//!   asserting that a refused frame leaves the set unchanged.
#![no_main]

use glam::Vec3;
use libfuzzer_sys::fuzz_target;
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::shapes::{MeshOptions, RecordKind, decode_changes, encode_shapes, parse_shapes};
use molstream_engine::codec::stream::Frame;
use molstream_engine::codec::{FrameHeader, FrameKind, Limits};
use molstream_engine::shape::{Anchor, Mesh, MeshVertex, Shape, ShapeId, ShapeKind, ShapeSet};
use molstream_engine::{AtomId, ComplexId};

const LIMITS: Limits = Limits {
    max_payload: 1 << 20,
    max_atoms: 1 << 16,
    max_string: 1 << 10,
    max_shapes: 1 << 10,
    max_vertices: 1 << 16,
    max_triangles: 1 << 17,
    max_texture_bytes: 1 << 16,
};

fn header(kind: FrameKind, precision: u8, seq: u32, base_seq: u32, records: u32) -> FrameHeader {
    FrameHeader {
        kind,
        precision,
        flags: 0,
        stream_id: 1,
        seq,
        base_seq,
        atom_count: records,
        payload_len: 0,
        checksum: 0,
    }
}

/// A set at seq 6 holding a sphere, a line, a label and a mesh (ids 1-4).
fn base_set() -> ShapeSet {
    let a = Anchor::atom(ComplexId(1), AtomId(2), Vec3::ONE);
    let shapes = [
        Shape { id: ShapeId(1), color: 1, kind: ShapeKind::Sphere { anchor: a, radius: 1.0 } },
        Shape {
            id: ShapeId(2),
            color: 2,
            kind: ShapeKind::Line {
                start: a,
                end: Anchor::workspace(Vec3::ZERO),
                thickness: 0.1,
                dash_length: 0.0,
                dash_gap: 0.0,
            },
        },
        Shape { id: ShapeId(3), color: 3, kind: ShapeKind::Label { anchor: a, text: "x".into(), font_size: 9.0 } },
        Shape { id: ShapeId(4), color: 4, kind: ShapeKind::Mesh(Mesh::torus(a, 3.0, 1.0, 4, 3)) },
    ];
    let refs: Vec<&Shape> = shapes.iter().collect();
    let mut w = Writer::new();
    let n = encode_shapes(true, &refs, &[], 2, MeshOptions::default(), &mut w).unwrap_or(0);
    let mut set = ShapeSet::new(LIMITS);
    let _ = set.apply(&Frame { header: header(FrameKind::Shapes, 2, 6, 6, n), payload: w.buf });
    set
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((count, payload)) = rest.split_at_checked(2) else { return };
    let kind = if mode & 1 == 0 { FrameKind::Shapes } else { FrameKind::ShapeDelta };
    let base = if mode & 2 != 0 { 7 } else { 6 };
    let h = header(kind, (mode >> 2) % 5, 7, base, u32::from(u16::from_le_bytes([count[0], count[1]])));

    if kind == FrameKind::Shapes {
        if let Ok(view) = parse_shapes(payload, &h, &LIMITS) {
            for r in &view.records {
                if let RecordKind::Mesh(m) = r.kind {
                    let mut v = vec![MeshVertex::default(); m.vertex_count()];
                    let mut i = vec![0u32; m.index_count()];
                    if m.decode_into(1, &mut v, &mut i).is_ok() {
                        assert!(i.iter().all(|&x| (x as usize) < v.len()));
                    }
                }
            }
        }
    } else {
        let _ = decode_changes(payload, &h, &LIMITS);
    }

    let mut set = base_set();
    let before = set.clone();
    if let Err(e) = set.apply(&Frame { header: h, payload: payload.to_vec() }) {
        assert_eq!(set, before, "a refused frame changed the set");
        assert!(!e.to_string().contains('\n'), "multi-line error: {e}");
    }
});

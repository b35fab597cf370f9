//! Shape frames (kinds 5 and 6): every shape and anchor kind round-trips, a million-triangle
//! mesh decodes within its quantization bounds into caller-provided GPU buffers and encodes
//! compactly, sparse deltas bring a receiver to the sender's shapes, and truncated, flipped,
//! hostile or out-of-order frames are typed errors that change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use glam::{Vec2, Vec3};
use molstream_engine::codec::bits::Writer;
use molstream_engine::codec::header::{self, FrameHeader};
use molstream_engine::codec::positions::step;
use molstream_engine::codec::shapes::{
    self, MeshOptions, RecordKind, ShapeEncoder, decode_changes, decode_shapes, encode_shapes, parse_shapes,
};
use molstream_engine::codec::stream::{Frame, FrameReader};
use molstream_engine::codec::{CodecError, FrameKind, HEADER_LEN, Limits};
use molstream_engine::shape::{
    Anchor, AnchorTarget, Mesh, MeshVertex, Shape, ShapeChange, ShapeId, ShapeKind, ShapeSet, Texture, unpack_normal,
};
use molstream_engine::{AtomId, ComplexId};

/// The angle the default 12-bit octahedral normals may be off by, after the 16-bit GPU form.
const NORMAL_DEGREES: f32 = 0.06;

fn frames(bytes: &[u8]) -> Vec<Frame> {
    let mut r = FrameReader::new(Limits::default());
    let mut out = Vec::new();
    // Awkward chunks, as from a network.
    for chunk in bytes.chunks(4093) {
        r.push_bytes(chunk);
        while let Some(f) = r.try_read().unwrap() {
            out.push(f);
        }
    }
    out
}

fn one_frame(bytes: &[u8]) -> Frame {
    let mut f = frames(bytes);
    assert_eq!(f.len(), 1);
    f.pop().unwrap()
}

/// Re-seals a frame after editing its payload, so the checksum holds and the payload decoder
/// itself must catch the damage.
fn reseal(frame: &Frame, edit: impl FnOnce(&mut Vec<u8>)) -> Frame {
    let mut payload = frame.payload.clone();
    edit(&mut payload);
    let mut bytes = Vec::new();
    header::seal(frame.header, &payload, false, &mut bytes);
    one_frame(&bytes)
}

fn sphere(id: u32, anchor: Anchor, radius: f32) -> Shape {
    Shape { id: ShapeId(id), color: 0xff00_80ff, kind: ShapeKind::Sphere { anchor, radius } }
}

/// A small mesh with every optional column: normals, palette colours, uvs, texture, unlit.
fn small_mesh(anchor: Anchor) -> Mesh {
    let mut m = Mesh::torus(anchor, 6.0, 2.0, 12, 8);
    m.colors = (0..m.vertex_count()).map(|i| [0xff00_00ffu32, 0xff00_ff00, 0xffff_0000][i % 3]).collect();
    m.uvs = m.uvs.iter().map(|uv| *uv * 4.0 - Vec2::splat(1.5)).collect();
    m.texture = Some(Texture { width: 3, height: 2, rgba: (0..24).collect() });
    m.unlit = true;
    m
}

fn all_kinds() -> Vec<Shape> {
    let c = ComplexId(3);
    let mut bare = Mesh::new(
        Anchor::complex(c, Vec3::new(1.0, 2.0, 3.0)),
        vec![Vec3::ZERO, Vec3::X, Vec3::Y, Vec3::new(1.0, 1.0, 0.5)],
        vec![0, 1, 2, 2, 1, 3],
    );
    bare.colors = vec![0x1122_3344; 4];
    vec![
        sphere(1, Anchor::workspace(Vec3::new(-1.0, 0.5, 2.0)), 1.25),
        Shape {
            id: ShapeId(2),
            color: 0x8000_ff00,
            kind: ShapeKind::Line {
                start: Anchor::complex(c, Vec3::ZERO),
                end: Anchor::atom(c, AtomId(1234), Vec3::new(0.0, 0.0, 1.5)),
                thickness: 0.1,
                dash_length: 0.4,
                dash_gap: 0.2,
            },
        },
        Shape {
            id: ShapeId(3),
            color: 0xffff_ffff,
            kind: ShapeKind::Label {
                anchor: Anchor::atom(c, AtomId(7), Vec3::new(0.0, 1.0, 0.0)),
                text: "Zn²⁺ — site 1".to_owned(),
                font_size: 14.0,
            },
        },
        Shape {
            id: ShapeId(4),
            color: 0xff80_8080,
            kind: ShapeKind::Mesh(small_mesh(Anchor::atom(c, AtomId(0), Vec3::ZERO))),
        },
        Shape { id: ShapeId(500), color: 0xff20_2020, kind: ShapeKind::Mesh(bare) },
        Shape {
            id: ShapeId(u32::MAX),
            color: 0,
            kind: ShapeKind::Mesh(Mesh::new(Anchor::workspace(Vec3::ZERO), Vec::new(), Vec::new())),
        },
    ]
}

/// Checks a decoded mesh against the one sent: positions within half a quantization step,
/// normals within [`NORMAL_DEGREES`], uvs within half a uv step, everything else exact.
fn assert_mesh_close(sent: &Mesh, got: &Mesh, precision: u8, opts: MeshOptions) {
    let (s, _) = step(precision);
    assert_eq!(got.anchor, sent.anchor);
    assert_eq!(got.indices, sent.indices);
    assert_eq!(got.colors, sent.colors);
    assert_eq!(got.texture, sent.texture);
    assert_eq!(got.unlit, sent.unlit);
    assert_eq!(got.positions.len(), sent.positions.len());
    for (a, b) in sent.positions.iter().zip(&got.positions) {
        let tol = s * 0.5 * 1.0001 + a.abs().max_element() * 2.0 * f32::EPSILON;
        assert!((*a - *b).abs().max_element() <= tol, "{a} vs {b}");
    }
    assert_eq!(got.normals.len(), sent.normals.len());
    for (a, b) in sent.normals.iter().zip(&got.normals) {
        let angle = a.normalize().dot(*b).clamp(-1.0, 1.0).acos().to_degrees();
        assert!(angle <= NORMAL_DEGREES, "{a} vs {b}: {angle}°");
    }
    assert_eq!(got.uvs.len(), sent.uvs.len());
    if !sent.uvs.is_empty() {
        let lo = sent.uvs.iter().fold(Vec2::INFINITY, |a, &b| a.min(b));
        let hi = sent.uvs.iter().fold(Vec2::NEG_INFINITY, |a, &b| a.max(b));
        #[allow(clippy::cast_precision_loss)]
        let half = (hi - lo) / ((1u32 << opts.uv_bits) - 1) as f32 * 0.5;
        for (a, b) in sent.uvs.iter().zip(&got.uvs) {
            let tol = half * 1.001 + Vec2::splat(a.abs().max_element() * 4.0 * f32::EPSILON);
            assert!((*a - *b).abs().cmple(tol).all(), "{a} vs {b}");
        }
    }
}

fn assert_shapes_close(sent: &[Shape], got: &ShapeSet, precision: u8) {
    assert_eq!(got.len(), sent.len());
    for s in sent {
        let g = got.get(s.id).unwrap_or_else(|| panic!("{:?} missing", s.id));
        assert_eq!(g.color, s.color);
        match (&s.kind, &g.kind) {
            (ShapeKind::Mesh(a), ShapeKind::Mesh(b)) => assert_mesh_close(a, b, precision, MeshOptions::default()),
            (a, b) => assert_eq!(a, b),
        }
    }
}

#[test]
fn every_shape_and_anchor_kind_round_trips() {
    let shapes = all_kinds();
    for precision in [0u8, 2, 3, 4] {
        let mut enc = ShapeEncoder::new(9, precision);
        let mut bytes = Vec::new();
        let h = enc.full(&shapes, &mut bytes).unwrap();
        assert_eq!(h.kind, FrameKind::Shapes);
        assert_eq!(h.atom_count, 6, "atom_count counts shape records");
        assert_eq!(h.base_seq, h.seq);
        let mut set = ShapeSet::new(Limits::default());
        let applied = set.apply(&one_frame(&bytes)).unwrap();
        assert!(applied.reset);
        assert_eq!(applied.upserted, 6);
        assert_shapes_close(&shapes, &set, precision);
        assert_eq!(set.held_seq(), Some(h.seq));
    }
    let anchors: Vec<AnchorTarget> = shapes.iter().map(|s| s.kind.anchor().target).collect();
    assert!(anchors.contains(&AnchorTarget::Workspace));
    assert!(anchors.iter().any(|a| matches!(a, AnchorTarget::Complex(_))));
    assert!(anchors.iter().any(|a| matches!(a, AnchorTarget::Atom(..))));
}

#[test]
fn colour_modes_are_exact_and_pick_the_smallest() {
    let anchor = Anchor::workspace(Vec3::ZERO);
    let base = Mesh::torus(anchor, 8.0, 2.0, 40, 20);
    let n = base.vertex_count();
    let size = |colors: Vec<u32>| {
        let mut m = base.clone();
        m.colors.clone_from(&colors);
        let shape = Shape { id: ShapeId(1), color: 0xdead_beef, kind: ShapeKind::Mesh(m) };
        let mut w = Writer::new();
        encode_shapes(true, &[&shape], &[], 2, MeshOptions::default(), &mut w).unwrap();
        let h = header_for(FrameKind::Shapes, 1, 2);
        let view = parse_shapes(&w.buf, &h, &Limits::default()).unwrap();
        let RecordKind::Mesh(mesh) = view.records[0].kind else { panic!("not a mesh") };
        let mut v = vec![MeshVertex::default(); mesh.vertex_count()];
        let mut i = vec![0; mesh.index_count()];
        mesh.decode_into(77, &mut v, &mut i).unwrap();
        let expect: Vec<u32> = if colors.is_empty() { vec![0xdead_beef; n] } else { colors };
        assert_eq!(v.iter().map(|v| v.color).collect::<Vec<_>>(), expect);
        assert!(v.iter().all(|v| v.pick_id == 77));
        w.buf.len()
    };
    let none = size(Vec::new());
    let constant = size(vec![0xff12_3456; n]);
    let palette = size((0..n).map(|i| [0xff00_00ff, 0xff00_ff00, 0xffff_0000, 0x8000_0000][i * 7 % 4]).collect());
    let mut s = 0x1234_5678u32;
    let noise = size(
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                s
            })
            .collect(),
    );
    let gradient = size(base.colors.clone());
    assert_eq!(constant, none + 4, "a constant colour costs its 4 bytes");
    assert!(palette < none + n / 3, "4 colours: 2 bits each ({palette} vs {none})");
    assert!(gradient < none + n * 3, "smooth colours: small channel deltas ({gradient} vs {none})");
    assert!(noise > none + n * 4, "random colours cannot be compressed ({noise} vs {none})");
}

fn header_for(kind: FrameKind, records: u32, precision: u8) -> FrameHeader {
    FrameHeader {
        kind,
        precision,
        flags: 0,
        stream_id: 1,
        seq: 5,
        base_seq: if kind == FrameKind::Shapes { 5 } else { 4 },
        atom_count: records,
        payload_len: 0,
        checksum: 0,
    }
}

/// A torus of about a million triangles: 1000 rings × 500 segments.
fn million() -> Mesh {
    Mesh::torus(Anchor::complex(ComplexId(1), Vec3::new(5.0, -3.0, 2.0)), 40.0, 10.0, 1000, 500)
}

#[test]
fn a_million_triangle_mesh_decodes_into_gpu_buffers_within_bounds_and_compactly() {
    let mesh = million();
    assert_eq!(mesh.triangle_count(), 1_000_000);
    let (v, t) = (mesh.vertex_count(), mesh.triangle_count());
    let shape = Shape { id: ShapeId(42), color: 0xffff_ffff, kind: ShapeKind::Mesh(mesh) };
    let precision = 3;
    let mut enc = ShapeEncoder::new(1, precision);
    enc.lz4 = false;
    let mut bytes = Vec::new();
    enc.full([&shape], &mut bytes).unwrap();
    let frame = one_frame(&bytes);

    // The GPU path: sizes first, then one pass into caller-owned buffers.
    let view = parse_shapes(&frame.payload, &frame.header, &Limits::default()).unwrap();
    let RecordKind::Mesh(mref) = view.records[0].kind else { panic!("not a mesh") };
    assert_eq!((mref.vertex_count(), mref.triangle_count()), (v, t));
    let mut vertices = vec![MeshVertex::default(); mref.vertex_count()];
    let mut indices = vec![0u32; mref.index_count()];
    mref.decode_into(9, &mut vertices, &mut indices).unwrap();
    let ShapeKind::Mesh(sent) = &shape.kind else { unreachable!() };
    let got = Mesh {
        anchor: mref.anchor,
        positions: vertices.iter().map(|v| Vec3::from_array(v.position)).collect(),
        normals: vertices.iter().map(|v| unpack_normal(v.normal)).collect(),
        colors: vertices.iter().map(|v| v.color).collect(),
        indices,
        uvs: vertices.iter().map(|v| Vec2::from_array(v.uv)).collect(),
        texture: None,
        unlit: false,
    };
    assert_mesh_close(sent, &got, precision, MeshOptions::default());

    // Size: float columns would take 12 (position) + 12 (normal) + 4 (colour) + 8 (uv) bytes a
    // vertex and 12 bytes a triangle, about 30 bytes a triangle.
    let raw = v * 36 + t * 12;
    #[allow(clippy::cast_precision_loss)]
    let per_triangle = bytes.len() as f64 / t as f64;
    eprintln!("1M triangles: {} bytes, {per_triangle:.3} B/triangle, raw {raw} bytes", bytes.len());
    // Measured: 1.98 bytes a triangle (0.41 of them indices, 1.18 B a vertex for positions,
    // 0.89 normals, 0.57 colours, 0.50 uvs), 15x smaller than the float columns.
    assert!(per_triangle < 2.1, "{per_triangle} bytes a triangle");
    assert!(bytes.len() * 14 < raw);

    // The model path gives the same mesh.
    let mut set = ShapeSet::new(Limits::default());
    set.apply(&frame).unwrap();
    let ShapeKind::Mesh(m) = &set.get(ShapeId(42)).unwrap().kind else { panic!("not a mesh") };
    assert_eq!(m.positions, got.positions);
    assert_eq!(m.indices, got.indices);
}

#[test]
fn triangles_in_random_order_round_trip_through_the_escape_path() {
    let mut mesh = Mesh::torus(Anchor::workspace(Vec3::ZERO), 10.0, 3.0, 60, 30);
    let mut tris: Vec<[u32; 3]> = mesh.indices.chunks_exact(3).map(|t| [t[0], t[1], t[2]]).collect();
    let mut s = 99u32;
    for i in (1..tris.len()).rev() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        tris.swap(i, s as usize % (i + 1));
    }
    // Rotate some triangles and add degenerate ones: every index layout must survive.
    for (k, t) in tris.iter_mut().enumerate() {
        t.rotate_left(k % 3);
    }
    tris.extend([[5, 5, 5], [5, 5, 6], [6, 5, 5], [0, 1, 0]]);
    mesh.indices = tris.concat();
    let ordered = Mesh::torus(Anchor::workspace(Vec3::ZERO), 10.0, 3.0, 60, 30);
    let size = |m: &Mesh| {
        let shape = Shape { id: ShapeId(1), color: 1, kind: ShapeKind::Mesh(m.clone()) };
        let mut enc = ShapeEncoder::new(1, 2);
        let mut bytes = Vec::new();
        enc.full([&shape], &mut bytes).unwrap();
        let mut set = ShapeSet::new(Limits::default());
        set.apply(&one_frame(&bytes)).unwrap();
        let ShapeKind::Mesh(got) = &set.get(ShapeId(1)).unwrap().kind else { panic!() };
        assert_mesh_close(m, got, 2, MeshOptions::default());
        bytes.len()
    };
    let (shuffled, ordered) = (size(&mesh), size(&ordered));
    assert!(shuffled > ordered, "locality is what makes the index code small ({shuffled} vs {ordered})");
}

#[test]
fn sparse_deltas_bring_the_receiver_to_the_sender() {
    let shapes = all_kinds();
    let mut target = ShapeSet::new(Limits::default());
    for s in &shapes {
        target.insert(s.clone()).unwrap();
    }
    let mut enc = ShapeEncoder::new(4, 3);
    let mut rx = ShapeSet::new(Limits::default());
    let mut bytes = Vec::new();
    assert_eq!(enc.sync(&target, &mut bytes).unwrap().len(), 1);
    for f in frames(&bytes) {
        rx.apply(&f).unwrap();
    }

    // Move the sphere, recolour and re-end the line, resize the label, move the mesh.
    let c = ComplexId(3);
    changed(&mut target, 1, |s| {
        if let ShapeKind::Sphere { anchor, radius } = &mut s.kind {
            anchor.offset += Vec3::new(0.5, 0.0, 0.0);
            *radius = 2.0;
        }
    });
    changed(&mut target, 2, |s| {
        s.color = 0xff11_2233;
        if let ShapeKind::Line { end, dash_gap, .. } = &mut s.kind {
            *end = Anchor::atom(c, AtomId(99), Vec3::ZERO);
            *dash_gap = 0.5;
        }
    });
    changed(&mut target, 3, |s| {
        if let ShapeKind::Label { font_size, .. } = &mut s.kind {
            *font_size = 20.0;
        }
    });
    changed(&mut target, 4, |s| {
        if let ShapeKind::Mesh(m) = &mut s.kind {
            m.anchor = Anchor::workspace(Vec3::new(1.0, 1.0, 1.0));
        }
    });
    let mut bytes = Vec::new();
    let headers = enc.sync(&target, &mut bytes).unwrap();
    assert_eq!(headers.len(), 1, "only sparse changes: one ShapeDelta frame");
    assert_eq!(headers[0].kind, FrameKind::ShapeDelta);
    assert_eq!(headers[0].atom_count, 4);
    assert!(bytes.len() < HEADER_LEN + 4 * 40, "{} bytes: no mesh is resent", bytes.len());
    let f = one_frame(&bytes);
    let changes = decode_changes(&f.payload, &f.header, &Limits::default()).unwrap();
    assert_eq!(changes.len(), 4);
    assert_eq!(changes[0].size, Some(2.0));
    assert!(changes[0].color.is_none() && changes[0].end.is_none(), "only changed fields are sent");
    assert!(changes[1].anchor.is_none() && changes[1].dash == Some([0.4, 0.5]));
    let applied = rx.apply(&f).unwrap();
    assert_eq!(applied.changed, 4);
    let target_shapes: Vec<Shape> = target.iter().cloned().collect();
    assert_shapes_close(&target_shapes, &rx, 3);

    // Text and geometry changes resend the shape; removals destroy it; both in one kind-5 frame,
    // then a delta in the same sync.
    target.remove(ShapeId(500));
    changed(&mut target, 3, |s| {
        if let ShapeKind::Label { text, .. } = &mut s.kind {
            *text = "moved".to_owned();
        }
    });
    changed(&mut target, 1, |s| s.color = 7);
    let mut bytes = Vec::new();
    let headers = enc.sync(&target, &mut bytes).unwrap();
    assert_eq!(headers.iter().map(|h| h.kind).collect::<Vec<_>>(), [FrameKind::Shapes, FrameKind::ShapeDelta]);
    assert_eq!(headers[0].atom_count, 2, "one destroy and one upsert");
    assert_eq!(headers[1].base_seq, headers[0].seq);
    for f in frames(&bytes) {
        rx.apply(&f).unwrap();
    }
    let target_shapes: Vec<Shape> = target.iter().cloned().collect();
    assert_shapes_close(&target_shapes, &rx, 3);
    assert!(enc.sync(&target, &mut Vec::new()).unwrap().is_empty(), "nothing left to send");
}

#[test]
fn a_delta_without_its_base_needs_a_full_frame() {
    let shapes = vec![sphere(1, Anchor::workspace(Vec3::ZERO), 1.0), sphere(2, Anchor::workspace(Vec3::ONE), 1.0)];
    let mut enc = ShapeEncoder::new(2, 2);
    let mut full = Vec::new();
    enc.full(&shapes, &mut full).unwrap();
    let mut c = ShapeChange::new(ShapeId(1));
    c.size = Some(3.0);
    let mut d1 = Vec::new();
    enc.changes(&[c], &mut d1).unwrap();
    c.size = Some(4.0);
    let mut d2 = Vec::new();
    enc.changes(&[c], &mut d2).unwrap();
    let (full, d1, d2) = (one_frame(&full), one_frame(&d1), one_frame(&d2));

    let mut rx = ShapeSet::new(Limits::default());
    let need = rx.apply(&d1).unwrap_err();
    assert!(matches!(need, CodecError::NeedKeyframe { held: None, .. }), "{need:?}");
    rx.apply(&full).unwrap();
    let before = rx.clone();
    // d1 lost: d2 is against a frame the receiver never saw.
    let need = rx.apply(&d2).unwrap_err();
    assert!(matches!(need, CodecError::NeedKeyframe { held: Some(0), base_seq: 1, .. }), "{need:?}");
    assert_eq!(rx, before);
    // An incremental kind-5 frame is held to the same rule.
    let mut upd = Vec::new();
    enc.update(&[sphere(3, Anchor::workspace(Vec3::ZERO), 1.0)], &[], &mut upd).unwrap();
    assert!(matches!(rx.apply(&one_frame(&upd)).unwrap_err(), CodecError::NeedKeyframe { .. }));
    // A full frame resyncs.
    let mut again = Vec::new();
    enc.full(&shapes, &mut again).unwrap();
    rx.apply(&one_frame(&again)).unwrap();
    let mut d3 = Vec::new();
    enc.changes(&[c], &mut d3).unwrap();
    rx.apply(&one_frame(&d3)).unwrap();
    assert!(matches!(rx.get(ShapeId(1)).unwrap().kind, ShapeKind::Sphere { radius: 4.0, .. }));
    // Another stream's delta is not based on what is held either.
    let mut other = ShapeEncoder::new(3, 2);
    let mut o = Vec::new();
    other.full(&shapes, &mut o).unwrap();
    let mut od = Vec::new();
    other.changes(&[c], &mut od).unwrap();
    assert!(matches!(rx.apply(&one_frame(&od)).unwrap_err(), CodecError::NeedKeyframe { .. }));
    // The sender refuses deltas before its first full frame.
    assert!(matches!(ShapeEncoder::new(1, 2).changes(&[c], &mut Vec::new()), Err(CodecError::NeedKeyframe { .. })));
}

/// Replaces shape `id` of `set` by an edited copy.
fn changed(set: &mut ShapeSet, id: u32, f: impl FnOnce(&mut Shape)) {
    let mut s = set.get(ShapeId(id)).unwrap().clone();
    f(&mut s);
    set.insert(s).unwrap();
}

/// Applies `frame` to a copy of `base` and checks that an error left it unchanged.
fn apply_checked(base: &ShapeSet, frame: &Frame) -> Result<(), CodecError> {
    let mut set = base.clone();
    let r = set.apply(frame).map(|_| ());
    if r.is_err() {
        assert_eq!(&set, base, "a failed frame changed the set");
    }
    r
}

fn mixed_frames() -> (ShapeSet, Frame, Frame, Frame) {
    let shapes = all_kinds();
    let mut enc = ShapeEncoder::new(1, 3);
    enc.lz4 = false;
    let mut b = Vec::new();
    enc.full(&shapes, &mut b).unwrap();
    let full = one_frame(&b);
    let mut base = ShapeSet::new(Limits::default());
    base.apply(&full).unwrap();
    let mut b = Vec::new();
    enc.update(&[sphere(9, Anchor::atom(ComplexId(1), AtomId(2), Vec3::ONE), 0.5)], &[ShapeId(500)], &mut b).unwrap();
    let update = one_frame(&b);
    let mut c = ShapeChange::new(ShapeId(2));
    c.end = Some(Anchor::workspace(Vec3::ONE));
    c.dash = Some([1.0, 2.0]);
    c.color = Some(5);
    let mut b = Vec::new();
    enc.changes(&[c], &mut b).unwrap();
    (base, full, update, one_frame(&b))
}

#[test]
fn truncated_payloads_are_errors_at_every_cut() {
    let (base, full, update, delta) = mixed_frames();
    let mut after_update = base.clone();
    after_update.apply(&update).unwrap();
    for (frame, on) in [(&full, &ShapeSet::new(Limits::default())), (&update, &base), (&delta, &after_update)] {
        apply_checked(on, frame).unwrap();
        for cut in 0..frame.payload.len() {
            let f = reseal(frame, |p| p.truncate(cut));
            assert!(apply_checked(on, &f).is_err(), "{:?} cut at {cut} of {}", f.header.kind, frame.payload.len());
        }
        let longer = reseal(frame, |p| p.push(0));
        assert!(apply_checked(on, &longer).is_err());
    }
}

#[test]
fn flipped_bytes_never_panic_and_failures_change_nothing() {
    let (base, full, update, delta) = mixed_frames();
    let mut after_update = base.clone();
    after_update.apply(&update).unwrap();
    let mut errors = 0usize;
    let mut total = 0usize;
    for (frame, on) in [(&full, &ShapeSet::new(Limits::default())), (&update, &base), (&delta, &after_update)] {
        for i in 0..frame.payload.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let f = reseal(frame, |p| p[i] ^= x);
                total += 1;
                errors += usize::from(apply_checked(on, &f).is_err());
            }
        }
        // Flipped bytes without re-sealing are checksum errors.
        let mut raw = Vec::new();
        header::seal(frame.header, &frame.payload, false, &mut raw);
        let last = raw.len() - 1;
        raw[last] ^= 0x10;
        let mut r = FrameReader::new(Limits::default());
        r.push_bytes(&raw);
        assert!(matches!(r.try_read(), Err(CodecError::Checksum { .. })));
    }
    // Most flips land in bit-packed data or structure and are caught; flips inside floats and
    // colours decode to other valid values.
    assert!(errors * 3 > total, "{errors} of {total} flips detected");
}

#[test]
fn hostile_counts_and_indices_are_typed_errors() {
    let limits = Limits::default();
    let h5 = header_for(FrameKind::Shapes, 1, 2);

    // A mesh whose triangle refers to a vertex beyond the count: take a valid 4-vertex mesh and
    // lower its declared vertex count to 3 (the position blocks stay well-formed).
    let quad = Mesh::new(Anchor::workspace(Vec3::ZERO), vec![Vec3::ZERO, Vec3::X, Vec3::Y, Vec3::ONE], vec![0, 1, 3]);
    let shape = Shape { id: ShapeId(1), color: 0, kind: ShapeKind::Mesh(quad) };
    let mut w = Writer::new();
    encode_shapes(true, &[&shape], &[], 2, MeshOptions::default(), &mut w).unwrap();
    // flags, destroys (0), records (1), id, kind, colour (4), anchor tag + 3 f32, mesh flags,
    // colour mode, then the vertex count.
    let at = 1 + 1 + 1 + 1 + 1 + 4 + 13 + 1 + 1;
    assert_eq!(w.buf[at], 4);
    let mut bad = w.buf.clone();
    bad[at] = 3;
    assert_eq!(decode_shapes(&bad, &h5, &limits).unwrap_err(), CodecError::Corrupt("triangle index out of range"));

    // A vertex count far beyond what the payload can hold is refused before any buffer is sized.
    let mut huge = w.buf[..at].to_vec();
    let mut tail = Writer::new();
    tail.varint(10_000_000);
    huge.extend_from_slice(&tail.buf);
    huge.extend_from_slice(&w.buf[at + 1..]);
    assert!(matches!(parse_shapes(&huge, &h5, &limits), Err(CodecError::Truncated)));
    let tight = Limits { max_vertices: 3, ..Limits::default() };
    assert!(matches!(parse_shapes(&w.buf, &h5, &tight), Err(CodecError::LimitExceeded { .. })));
    let tight = Limits { max_triangles: 0, ..Limits::default() };
    assert!(matches!(parse_shapes(&w.buf, &h5, &tight), Err(CodecError::LimitExceeded { .. })));

    // Output slices too short for the sizes read.
    let view = parse_shapes(&w.buf, &h5, &limits).unwrap();
    let RecordKind::Mesh(m) = view.records[0].kind else { panic!() };
    let mut v = vec![MeshVertex::default(); 3];
    assert!(matches!(m.decode_into(0, &mut v, &mut [0; 3]), Err(CodecError::LimitExceeded { .. })));
    let mut v = vec![MeshVertex::default(); 4];
    assert!(matches!(m.decode_into(0, &mut v, &mut [0; 2]), Err(CodecError::LimitExceeded { .. })));
    m.decode_into(0, &mut v, &mut [0; 3]).unwrap();

    // The header's record count bounds everything; it must match the payload.
    let big = header_for(FrameKind::Shapes, u32::MAX, 2);
    assert!(matches!(parse_shapes(&w.buf, &big, &limits), Err(CodecError::LimitExceeded { .. })));
    let two = header_for(FrameKind::Shapes, 2, 2);
    assert!(parse_shapes(&w.buf, &two, &limits).is_err());
    let few = Limits { max_shapes: 0, ..Limits::default() };
    assert!(matches!(parse_shapes(&w.buf, &h5, &few), Err(CodecError::LimitExceeded { .. })));
    // A destroy count claiming a million records in a 4-byte payload.
    let mut p = Writer::new();
    p.u8(0);
    p.varint(1_000_000);
    p.u8(0);
    let mut h = header_for(FrameKind::Shapes, 1_000_000, 2);
    h.base_seq = 4;
    assert!(parse_shapes(&p.buf, &h, &limits).is_err());
    // A thousand shape records claimed in 50 bytes: refused before the record vector is sized.
    let mut p = Writer::new();
    p.u8(1);
    p.varint(0);
    p.varint(1000);
    p.buf.extend_from_slice(&[0; 50]);
    assert_eq!(parse_shapes(&p.buf, &header_for(FrameKind::Shapes, 1000, 2), &limits), Err(CodecError::Truncated));
    // The same for changes.
    let mut p = Writer::new();
    p.varint(1000);
    p.buf.extend_from_slice(&[0; 50]);
    assert_eq!(
        decode_changes(&p.buf, &header_for(FrameKind::ShapeDelta, 1000, 2), &limits),
        Err(CodecError::Truncated)
    );

    // Labels beyond max_string, texture sizes that do not add up.
    let label = Shape {
        id: ShapeId(1),
        color: 0,
        kind: ShapeKind::Label { anchor: Anchor::workspace(Vec3::ZERO), text: "x".repeat(100), font_size: 1.0 },
    };
    let mut w = Writer::new();
    encode_shapes(true, &[&label], &[], 2, MeshOptions::default(), &mut w).unwrap();
    let short = Limits { max_string: 99, ..Limits::default() };
    assert!(matches!(parse_shapes(&w.buf, &h5, &short), Err(CodecError::LimitExceeded { .. })));
    parse_shapes(&w.buf, &h5, &limits).unwrap();
    let mut tex = small_mesh(Anchor::workspace(Vec3::ZERO));
    tex.texture.as_mut().unwrap().rgba.pop();
    let t = Shape { id: ShapeId(1), color: 0, kind: ShapeKind::Mesh(tex) };
    assert!(encode_shapes(true, &[&t], &[], 2, MeshOptions::default(), &mut Writer::new()).is_err());
    let small = Limits { max_texture_bytes: 23, ..Limits::default() };
    let t = Shape { id: ShapeId(1), color: 0, kind: ShapeKind::Mesh(small_mesh(Anchor::workspace(Vec3::ZERO))) };
    let mut w = Writer::new();
    encode_shapes(true, &[&t], &[], 2, MeshOptions::default(), &mut w).unwrap();
    assert!(matches!(parse_shapes(&w.buf, &h5, &small), Err(CodecError::LimitExceeded { .. })));

    // Shape deltas: a count beyond the header, unknown field bits.
    let mut c = ShapeChange::new(ShapeId(3));
    c.color = Some(1);
    let mut w = Writer::new();
    shapes::encode_changes(&[c], &mut w).unwrap();
    let h6 = header_for(FrameKind::ShapeDelta, 1, 2);
    decode_changes(&w.buf, &h6, &limits).unwrap();
    assert!(decode_changes(&w.buf, &header_for(FrameKind::ShapeDelta, 2, 2), &limits).is_err());
    let mut bad = w.buf.clone();
    bad[2] |= 0x40;
    assert_eq!(decode_changes(&bad, &h6, &limits).unwrap_err(), CodecError::Corrupt("bad shape change field mask"));
    // Kinds are not mixed up.
    assert!(matches!(decode_changes(&w.buf, &h5, &limits), Err(CodecError::UnknownKind(5))));
}

#[test]
fn invalid_shapes_are_refused_by_the_sender() {
    let anchor = Anchor::workspace(Vec3::ZERO);
    let mut enc = ShapeEncoder::new(1, 3);
    let bad = [
        sphere(1, anchor, -1.0),
        sphere(1, anchor, f32::NAN),
        sphere(1, Anchor::workspace(Vec3::new(f32::INFINITY, 0.0, 0.0)), 1.0),
        Shape { id: ShapeId(1), color: 0, kind: ShapeKind::Mesh(Mesh::new(anchor, vec![Vec3::ZERO], vec![0, 0, 1])) },
        Shape { id: ShapeId(1), color: 0, kind: ShapeKind::Mesh(Mesh::new(anchor, vec![Vec3::ZERO], vec![0, 0])) },
        Shape { id: ShapeId(1), color: 0, kind: ShapeKind::Mesh(Mesh::new(anchor, vec![Vec3::splat(1e6)], vec![])) },
    ];
    for s in &bad {
        assert!(enc.full([s], &mut Vec::new()).is_err(), "{s:?}");
    }
    let mut out = Vec::new();
    assert!(enc.full([&bad[0].clone(), &sphere(1, anchor, 1.0)], &mut out).is_err());
    assert!(out.is_empty(), "nothing is written for a refused frame");
    enc.full([&sphere(1, anchor, 1.0), &sphere(2, anchor, 1.0)], &mut out).unwrap();
    // Two frames numbered in order against each other.
    let mut c = ShapeChange::new(ShapeId(2));
    c.end = Some(anchor);
    assert!(enc.changes(&[c], &mut Vec::new()).is_err(), "a sphere has no end");
    assert!(enc.update(&[], &[ShapeId(7)], &mut Vec::new()).is_err(), "7 was never sent");
}

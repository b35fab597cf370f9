//! Plugin shapes on a real GPU adapter (lavapipe in CI): a golden image per shape kind
//! (spheres, lines, meshes, labels), anchored shapes following a position write, depth shared
//! with the atom impostors, dashes, partial updates, meshes decoded from a frame record, and
//! labels keeping their pixel size at any zoom.
//!
//! Same rules as `render.rs`: an adapter is required unless `MOLSTREAM_SKIP_GPU_TESTS=1`, and
//! `UPDATE_SNAPSHOTS=1` rewrites the golden images.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)] // tests fail loudly by design

mod common;

use common::{BACKGROUND, SNAPSHOT_SIZE, assert_snapshot, atom, headless, pixel_of};
use glam::{EulerRot, Mat4, Quat, Vec2, Vec3};
use molstream_engine::codec::Limits;
use molstream_engine::codec::shapes::{RecordKind, ShapeEncoder, parse_shapes};
use molstream_engine::codec::stream::FrameReader;
use molstream_engine::gpu::AtomInstance;
use molstream_engine::model::pack_rgba;
use molstream_engine::shape::{Anchor, Mesh, Shape, ShapeChange, ShapeId, ShapeKind, ShapeSet, Texture};
use molstream_engine::{AtomId, ComplexId, Representation};
use molstream_viewer::render::{AnchorMap, Bounds, ComplexSlot, Headless, RgbaImage, ShapeEdits};

const COMPLEX: ComplexId = ComplexId(1);
const PICK_BASE: u32 = 1_000_000;

fn rgba(r: u8, g: u8, b: u8) -> u32 {
    pack_rgba([r, g, b], 255)
}

fn at(x: f32, y: f32, z: f32) -> Anchor {
    Anchor::workspace(Vec3::new(x, y, z))
}

fn on_atom(i: u32, offset: Vec3) -> Anchor {
    Anchor::atom(COMPLEX, AtomId(i), offset)
}

fn shape(id: u32, color: u32, kind: ShapeKind) -> Shape {
    Shape { id: ShapeId(id), color, kind }
}

fn set_of(shapes: &[Shape]) -> ShapeSet {
    let mut set = ShapeSet::new(Limits::default());
    for s in shapes {
        set.insert(s.clone()).unwrap();
    }
    set
}

/// Uploads atoms (complex 1 at transform 0) and the shapes as stream 7, and frames `bounds`.
fn stage(h: &mut Headless, atoms: &[AtomInstance], shapes: &[Shape], bounds: Bounds, rotation: Quat) -> ShapeSet {
    h.renderer.set_scene(atoms, &[], &[Mat4::IDENTITY]).unwrap();
    let mut map = AnchorMap::new();
    let count = u32::try_from(atoms.len()).unwrap();
    map.insert(COMPLEX, ComplexSlot { transform: 0, atom_offset: 0, atom_count: count });
    h.renderer.shapes_mut().set_anchor_map(map);
    let set = set_of(shapes);
    h.renderer.shapes_mut().set(7, &set, PICK_BASE).unwrap();
    h.renderer.camera.rotation = rotation;
    h.renderer.set_bounds(bounds);
    h.renderer.fit_camera();
    set
}

fn golden_view() -> Quat {
    Quat::from_euler(EulerRot::XYZ, -0.45, 0.35, 0.0)
}

fn bounds(r: f32) -> Bounds {
    Bounds { center: Vec3::ZERO, radius: r }
}

/// Renders, checks that at least `1/fraction` of the image is drawn, compares with the golden.
fn render_golden(name: &str, h: &mut Headless, fraction: u32) -> RgbaImage {
    let img = h.render_image().unwrap();
    let covered = img.count_not(BACKGROUND, 8);
    assert!(covered > (SNAPSHOT_SIZE * SNAPSHOT_SIZE / fraction) as usize, "{name}: only {covered} pixels drawn");
    assert_snapshot(name, &img);
    img
}

fn grey_atoms() -> Vec<AtomInstance> {
    vec![
        atom([-3.5, 0.0, 0.0], 1.8, Representation::Spacefill, [160, 160, 160], 1),
        atom([3.5, 0.0, 0.0], 1.8, Representation::Spacefill, [160, 160, 160], 2),
    ]
}

#[test]
fn golden_spheres() {
    let Some(mut h) = headless(SNAPSHOT_SIZE, SNAPSHOT_SIZE) else { return };
    let shapes = [
        shape(1, rgba(220, 40, 40), ShapeKind::Sphere { anchor: at(0.0, 0.0, 0.0), radius: 2.4 }),
        // Pokes out of atom 1: the intersection is per pixel.
        shape(2, rgba(40, 190, 60), ShapeKind::Sphere { anchor: on_atom(1, Vec3::new(0.0, 0.0, 1.2)), radius: 1.1 }),
        shape(
            3,
            rgba(40, 80, 220),
            ShapeKind::Sphere { anchor: Anchor::complex(COMPLEX, Vec3::new(0.0, -4.5, 0.0)), radius: 1.5 },
        ),
        shape(4, rgba(240, 200, 30), ShapeKind::Sphere { anchor: at(0.0, 4.5, -1.0), radius: 0.8 }),
    ];
    stage(&mut h, &grey_atoms(), &shapes, bounds(7.0), golden_view());
    assert_eq!(h.renderer.shapes().counts().spheres, 4);
    render_golden("shapes_spheres", &mut h, 20);
}

fn line(start: Anchor, end: Anchor, thickness: f32, dash: [f32; 2]) -> ShapeKind {
    ShapeKind::Line { start, end, thickness, dash_length: dash[0], dash_gap: dash[1] }
}

#[test]
fn golden_lines() {
    let Some(mut h) = headless(SNAPSHOT_SIZE, SNAPSHOT_SIZE) else { return };
    let atoms = [
        atom([-4.0, -4.0, 0.0], 1.0, Representation::Spacefill, [160, 160, 160], 1),
        atom([4.0, -4.0, -2.0], 1.0, Representation::Spacefill, [160, 160, 160], 2),
    ];
    let shapes = [
        shape(1, rgba(220, 40, 40), line(at(-6.0, 4.0, 0.0), at(6.0, 4.0, 0.0), 0.7, [0.0, 0.0])),
        shape(2, rgba(40, 80, 220), line(at(-6.0, 1.5, 0.0), at(6.0, 1.5, 0.0), 0.4, [1.0, 0.5])),
        // Zero thickness: drawn at the least pixel width.
        shape(3, rgba(20, 20, 20), line(at(-6.0, -1.0, 0.0), at(6.0, -1.0, 0.0), 0.0, [0.0, 0.0])),
        // Between two atoms, through their spheres.
        shape(4, rgba(40, 170, 60), line(on_atom(0, Vec3::ZERO), on_atom(1, Vec3::ZERO), 0.35, [0.6, 0.3])),
    ];
    stage(&mut h, &atoms, &shapes, bounds(7.5), golden_view());
    assert_eq!(h.renderer.shapes().counts().lines, 4);
    render_golden("shapes_lines", &mut h, 20);
}

/// An octahedron of radius `r` without normals (face normals are used).
fn octahedron(anchor: Anchor, r: f32) -> Mesh {
    let p = vec![Vec3::X * r, -Vec3::X * r, Vec3::Y * r, -Vec3::Y * r, Vec3::Z * r, -Vec3::Z * r];
    let i = vec![0, 2, 4, 2, 1, 4, 1, 3, 4, 3, 0, 4, 2, 0, 5, 1, 2, 5, 3, 1, 5, 0, 3, 5];
    Mesh::new(anchor, p, i)
}

/// A square of side `s` in the xy plane, uvs 0..1, normal +z.
fn quad(anchor: Anchor, s: f32) -> Mesh {
    let h = s / 2.0;
    let mut m = Mesh::new(
        anchor,
        vec![Vec3::new(-h, -h, 0.0), Vec3::new(h, -h, 0.0), Vec3::new(-h, h, 0.0), Vec3::new(h, h, 0.0)],
        vec![0, 1, 2, 2, 1, 3],
    );
    m.normals = vec![Vec3::Z; 4];
    m.uvs = vec![Vec2::new(0.0, 1.0), Vec2::new(1.0, 1.0), Vec2::new(0.0, 0.0), Vec2::new(1.0, 0.0)];
    m
}

/// A 16×16 texture of 4×4 squares of red and white texels.
fn checker() -> Texture {
    let mut rgba = Vec::new();
    for y in 0..16 {
        for x in 0..16 {
            let red = (x / 4 + y / 4) % 2 == 0;
            rgba.extend_from_slice(if red { &[230, 30, 30, 255] } else { &[250, 250, 250, 255] });
        }
    }
    Texture { width: 16, height: 16, rgba }
}

fn mesh_shapes() -> Vec<Shape> {
    let torus = Mesh::torus(at(-4.5, 3.0, 0.0), 2.4, 0.9, 32, 16);
    let mut hexagon = Mesh::new(
        at(-4.5, -3.5, 0.0),
        std::iter::once(Vec3::ZERO)
            .chain((0..6).map(|k| {
                let a = k as f32 * std::f32::consts::TAU / 6.0;
                Vec3::new(a.cos(), a.sin(), 0.0) * 2.2
            }))
            .collect(),
        (0..6).flat_map(|k| [0, 1 + k, 1 + (k + 1) % 6]).collect(),
    );
    hexagon.unlit = true;
    let mut board = quad(at(4.0, -3.5, 0.0), 4.5);
    board.texture = Some(checker());
    vec![
        shape(1, rgba(255, 255, 255), ShapeKind::Mesh(torus)),
        shape(2, rgba(240, 140, 20), ShapeKind::Mesh(octahedron(at(4.0, 3.0, 0.0), 2.2))),
        shape(3, rgba(140, 60, 200), ShapeKind::Mesh(hexagon)),
        shape(4, rgba(255, 255, 255), ShapeKind::Mesh(board)),
    ]
}

#[test]
fn golden_meshes() {
    let Some(mut h) = headless(SNAPSHOT_SIZE, SNAPSHOT_SIZE) else { return };
    // An atom pokes through the middle of the textured board.
    let atoms = [atom([4.0, -3.5, 0.0], 1.0, Representation::Spacefill, [40, 80, 220], 1)];
    stage(&mut h, &atoms, &mesh_shapes(), bounds(7.5), golden_view());
    let c = h.renderer.shapes().counts();
    assert_eq!((c.meshes, c.triangles), (4, 32 * 16 * 2 + 8 + 6 + 2));
    render_golden("shapes_meshes", &mut h, 20);
}

fn label(anchor: Anchor, text: &str, font_size: f32) -> ShapeKind {
    ShapeKind::Label { anchor, text: text.into(), font_size }
}

#[test]
fn golden_labels() {
    let Some(mut h) = headless(SNAPSHOT_SIZE, SNAPSHOT_SIZE) else { return };
    let atoms = [
        atom([-3.0, -1.0, 0.0], 0.6, Representation::BallAndStick, [160, 160, 160], 1),
        atom([3.0, 1.0, 0.0], 0.6, Representation::BallAndStick, [160, 160, 160], 2),
        atom([0.0, -4.0, 0.0], 0.6, Representation::BallAndStick, [160, 160, 160], 3),
    ];
    let shapes = [
        shape(1, rgba(20, 20, 20), label(on_atom(0, Vec3::ZERO), "CA 25", 14.0)),
        shape(2, rgba(200, 30, 30), label(on_atom(1, Vec3::ZERO), "N", 24.0)),
        // Below the least size: raised to it.
        shape(3, rgba(30, 30, 200), label(on_atom(2, Vec3::ZERO), "O2", 3.0)),
        shape(4, rgba(20, 120, 40), label(at(0.0, 4.5, 0.0), "molstream Å", 18.0)),
    ];
    stage(&mut h, &atoms, &shapes, bounds(6.0), Quat::IDENTITY);
    assert!(h.renderer.shapes().counts().glyphs >= 17);
    render_golden("shapes_labels", &mut h, 50);
}

#[test]
fn anchored_shapes_follow_a_position_write() {
    let Some(mut h) = headless(160, 160) else { return };
    let atoms = [
        atom([-4.0, 0.0, 0.0], 0.5, Representation::BallAndStick, [160, 160, 160], 1),
        atom([4.0, 0.0, 0.0], 0.5, Representation::BallAndStick, [160, 160, 160], 2),
    ];
    let up = Vec3::new(0.0, 2.0, 0.0);
    let shapes = [
        shape(1, rgba(220, 40, 40), ShapeKind::Sphere { anchor: on_atom(1, up), radius: 1.0 }),
        shape(2, rgba(40, 40, 220), line(on_atom(0, Vec3::ZERO), on_atom(1, -up), 0.5, [0.0, 0.0])),
        shape(3, rgba(40, 200, 40), ShapeKind::Mesh(quad(on_atom(1, Vec3::new(0.0, -4.0, 0.0)), 1.6))),
    ];
    stage(&mut h, &atoms, &shapes, bounds(9.0), Quat::IDENTITY);
    let sphere = pixel_of(&h, Vec3::new(4.0, 2.0, 0.0));
    let line_end = pixel_of(&h, Vec3::new(3.6, -1.8, 0.0));
    let board = pixel_of(&h, Vec3::new(4.0, -4.0, 0.0));
    assert_eq!(h.pick(sphere.0, sphere.1).unwrap(), Some(PICK_BASE + 1));
    assert_eq!(h.pick(line_end.0, line_end.1).unwrap(), Some(PICK_BASE + 2));
    assert_eq!(h.pick(board.0, board.1).unwrap(), Some(PICK_BASE + 3));
    // One atom record written, nothing else: every shape anchored to it moves.
    let moved = AtomInstance { position: [-1.0, -6.0, 0.0], ..atoms[1] };
    h.renderer.write_atoms(1, &[moved]).unwrap();
    assert_eq!(h.pick(sphere.0, sphere.1).unwrap(), None, "the sphere left");
    assert_eq!(h.pick(board.0, board.1).unwrap(), None, "the mesh left");
    let sphere2 = pixel_of(&h, Vec3::new(-1.0, -4.0, 0.0));
    let board2 = pixel_of(&h, Vec3::new(-1.0, -10.0 + 0.5, 0.0));
    assert_eq!(h.pick(sphere2.0, sphere2.1).unwrap(), Some(PICK_BASE + 1), "the sphere followed the atom");
    assert_eq!(h.pick(board2.0, board2.1).unwrap(), Some(PICK_BASE + 3), "the mesh followed the atom");
    // The line now runs from atom 0 to below the moved atom.
    let mid = (Vec3::new(-4.0, 0.0, 0.0) + Vec3::new(-1.0, -8.0, 0.0)) * 0.5;
    let m = pixel_of(&h, mid);
    assert_eq!(h.pick(m.0, m.1).unwrap(), Some(PICK_BASE + 2), "the line's end followed the atom");
}

#[test]
fn meshes_and_impostors_share_the_depth_buffer() {
    let Some(mut h) = headless(128, 128) else { return };
    // A board at z = 0 through the middle of an atom: the atom's front half shows in the middle,
    // the board around it; a second board in front hides a second atom.
    let atoms = [
        atom([-3.0, 0.0, 0.0], 1.5, Representation::Spacefill, [40, 80, 220], 1),
        atom([3.0, 0.0, 0.0], 1.0, Representation::Spacefill, [40, 80, 220], 2),
    ];
    let shapes = [
        shape(1, rgba(40, 200, 40), ShapeKind::Mesh(quad(at(-3.0, 0.0, 0.0), 5.0))),
        shape(2, rgba(40, 200, 40), ShapeKind::Mesh(quad(at(3.0, 0.0, 2.0), 3.0))),
    ];
    stage(&mut h, &atoms, &shapes, bounds(6.0), Quat::IDENTITY);
    let img = h.render_image().unwrap();
    let at_px = |p: Vec3| {
        let (x, y) = pixel_of(&h, p);
        img.pixel(x, y).unwrap()
    };
    let through = at_px(Vec3::new(-3.0, 0.0, 0.0));
    assert!(through[2] > through[1] + 40, "the atom pokes through the board: {through:?}");
    let around = at_px(Vec3::new(-3.0, 2.0, 0.0));
    assert!(around[1] > around[2] + 40, "the board around it: {around:?}");
    let hidden = at_px(Vec3::new(3.0, 0.0, 0.0));
    assert!(hidden[1] > hidden[2] + 40, "the board in front hides the atom: {hidden:?}");
    let (x, y) = pixel_of(&h, Vec3::new(-3.0, 0.0, 0.0));
    assert_eq!(h.pick(x, y).unwrap(), Some(1));
    let (x, y) = pixel_of(&h, Vec3::new(3.0, 0.0, 0.0));
    assert_eq!(h.pick(x, y).unwrap(), Some(PICK_BASE + 2));
}

#[test]
fn dashes_alternate_along_the_line() {
    let Some(mut h) = headless(240, 64) else { return };
    // 12 Å of dashes 1 Å long with 1 Å gaps: 6 dashes.
    let shapes = [shape(1, rgba(20, 20, 20), line(at(-6.0, 0.0, 0.0), at(6.0, 0.0, 0.0), 0.3, [1.0, 1.0]))];
    stage(&mut h, &[], &shapes, bounds(6.5), Quat::IDENTITY);
    let img = h.render_image().unwrap();
    let (_, y) = pixel_of(&h, Vec3::ZERO);
    let drawn: Vec<bool> = (0..img.width).map(|x| img.pixel(x, y).unwrap()[0] < 128).collect();
    let runs = drawn.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(drawn[0]);
    assert_eq!(runs, 6, "{drawn:?}");
    // The same line solid is one run.
    let solid = [shape(1, rgba(20, 20, 20), line(at(-6.0, 0.0, 0.0), at(6.0, 0.0, 0.0), 0.3, [0.0, 1.0]))];
    h.renderer.shapes_mut().set(7, &set_of(&solid), PICK_BASE).unwrap();
    let img = h.render_image().unwrap();
    let drawn: Vec<bool> = (0..img.width).map(|x| img.pixel(x, y).unwrap()[0] < 128).collect();
    assert_eq!(drawn.windows(2).filter(|w| !w[0] && w[1]).count(), 1);
}

#[test]
fn colour_and_anchor_changes_rewrite_one_record() {
    let Some(mut h) = headless(96, 96) else { return };
    let atoms = [atom([0.0, 0.0, 0.0], 0.3, Representation::BallAndStick, [160, 160, 160], 1)];
    let shapes = [
        shape(1, rgba(220, 40, 40), ShapeKind::Sphere { anchor: at(-2.5, 0.0, 0.0), radius: 1.5 }),
        shape(2, rgba(220, 40, 40), ShapeKind::Mesh(octahedron(at(2.5, 0.0, 0.0), 1.5))),
    ];
    let mut set = stage(&mut h, &atoms, &shapes, bounds(5.0), Quat::IDENTITY);
    let left = pixel_of(&h, Vec3::new(-2.5, 0.0, 0.0));
    let right = pixel_of(&h, Vec3::new(2.5, 0.0, 0.0));
    let before = h.render_image().unwrap();
    assert!(before.pixel(left.0, left.1).unwrap()[0] > 150);
    assert!(before.pixel(right.0, right.1).unwrap()[0] > 150);
    // Both turn blue: a ShapeDelta changes colours only.
    for id in [1, 2] {
        set.change(&ShapeChange { color: Some(rgba(30, 60, 230)), ..ShapeChange::new(ShapeId(id)) }).unwrap();
    }
    let edits = ShapeEdits { changed: vec![ShapeId(1), ShapeId(2)], ..ShapeEdits::default() };
    let up = h.renderer.shapes_mut().update(7, &set, &edits).unwrap();
    assert_eq!((up.records, up.meshes, up.rebuilt), (2, 0, false), "{up:?}");
    assert_eq!(up.bytes, 28 + 24, "one sphere record and one mesh info");
    let after = h.render_image().unwrap();
    for (x, y) in [left, right] {
        let p = after.pixel(x, y).unwrap();
        assert!(p[2] > p[0] + 60, "now blue: {p:?}");
    }
    // Moving the mesh is one record too.
    let c = ShapeChange { anchor: Some(at(2.5, 3.0, 0.0)), ..ShapeChange::new(ShapeId(2)) };
    set.change(&c).unwrap();
    let up =
        h.renderer.shapes_mut().update(7, &set, &ShapeEdits { changed: vec![ShapeId(2)], ..ShapeEdits::default() });
    assert_eq!(up.unwrap().records, 1);
    assert_eq!(h.pick(right.0, right.1).unwrap(), None);
    // A destroyed shape disappears (the arrays are rebuilt).
    set.remove(ShapeId(1));
    let up =
        h.renderer.shapes_mut().update(7, &set, &ShapeEdits { destroyed: vec![ShapeId(1)], ..ShapeEdits::default() });
    assert!(up.unwrap().rebuilt);
    assert_eq!(h.pick(left.0, left.1).unwrap(), None);
    assert_eq!(h.renderer.shapes().counts().spheres, 0);
}

#[test]
fn shapes_of_unloaded_complexes_wait_for_the_anchor_map() {
    let Some(mut h) = headless(64, 64) else { return };
    let atoms = [atom([0.0, 0.0, 0.0], 0.3, Representation::BallAndStick, [160, 160, 160], 1)];
    h.renderer.set_scene(&atoms, &[], &[Mat4::IDENTITY]).unwrap();
    let s = shape(1, rgba(220, 40, 40), ShapeKind::Sphere { anchor: on_atom(0, Vec3::ZERO), radius: 2.0 });
    h.renderer.shapes_mut().set(3, &set_of(&[s]), PICK_BASE).unwrap();
    assert_eq!(h.renderer.shapes().counts().spheres, 0, "complex 1 is not placed yet");
    let mut map = AnchorMap::new();
    map.insert(COMPLEX, ComplexSlot { transform: 0, atom_offset: 0, atom_count: 1 });
    assert_eq!(map.resolve(molstream_engine::shape::AnchorTarget::Atom(COMPLEX, AtomId(1))), None, "past the end");
    h.renderer.shapes_mut().set_anchor_map(map);
    assert_eq!(h.renderer.shapes().counts().spheres, 1);
    h.renderer.set_bounds(bounds(3.0));
    h.renderer.fit_camera();
    assert_eq!(h.pick(32, 32).unwrap(), Some(PICK_BASE + 1));
    h.renderer.shapes_mut().remove(3);
    assert_eq!(h.pick(32, 32).unwrap(), Some(1), "the atom under the removed sphere");
}

#[test]
fn a_mesh_decoded_from_its_frame_record_draws_as_the_model() {
    let Some(mut h) = headless(128, 128) else { return };
    let shapes = mesh_shapes();
    let set = stage(&mut h, &[], &shapes, bounds(7.5), golden_view());
    let from_model = h.render_image().unwrap();
    // Send the same shapes as a full frame (0.001 Å quantization), parse it, and upload each
    // mesh from its record with decode_into.
    let mut enc = ShapeEncoder::new(7, 3);
    enc.lz4 = false;
    let mut bytes = Vec::new();
    enc.full(set.iter(), &mut bytes).unwrap();
    let mut reader = FrameReader::new(Limits::default());
    reader.push_bytes(&bytes);
    let frame = reader.try_read().unwrap().unwrap();
    let edits = ShapeEdits::of_frame(&frame, &Limits::default()).unwrap();
    assert!(edits.full);
    assert_eq!(edits.upserted, (1..=4).map(ShapeId).collect::<Vec<_>>());
    let view = parse_shapes(&frame.payload, &frame.header, &Limits::default()).unwrap();
    h.renderer.shapes_mut().set(7, &ShapeSet::new(Limits::default()), PICK_BASE).unwrap();
    assert_eq!(h.renderer.shapes().counts().meshes, 0);
    for r in &view.records {
        let RecordKind::Mesh(m) = &r.kind else { panic!("only meshes were sent") };
        let up = h.renderer.shapes_mut().upload_mesh_record(7, r.id, m).unwrap();
        assert_eq!(up.meshes, 1);
    }
    assert_eq!(h.renderer.shapes().counts().meshes, 4);
    let from_record = h.render_image().unwrap();
    let diff = from_record.diff(&from_model, 8);
    assert!(diff.differing <= 20, "{diff:?}");
    assert!(from_model.count_not(BACKGROUND, 8) > 2000);
    // A record for a stream never set is refused.
    let RecordKind::Mesh(m) = &view.records[0].kind else { unreachable!() };
    assert!(h.renderer.shapes_mut().upload_mesh_record(99, ShapeId(1), m).is_err());
}

#[test]
fn shape_edits_read_ids_from_frames() {
    let mut enc = ShapeEncoder::new(2, 3);
    let mut bytes = Vec::new();
    let a = shape(1, 1, ShapeKind::Sphere { anchor: at(0.0, 0.0, 0.0), radius: 1.0 });
    let b = shape(2, 1, ShapeKind::Sphere { anchor: at(1.0, 0.0, 0.0), radius: 1.0 });
    enc.full([&a, &b], &mut bytes).unwrap();
    enc.update(&[shape(3, 1, label(at(0.0, 0.0, 0.0), "x", 10.0))], &[ShapeId(1)], &mut bytes).unwrap();
    enc.changes(&[ShapeChange { color: Some(5), ..ShapeChange::new(ShapeId(2)) }], &mut bytes).unwrap();
    let mut reader = FrameReader::new(Limits::default());
    reader.push_bytes(&bytes);
    let mut edits = Vec::new();
    while let Some(f) = reader.try_read().unwrap() {
        edits.push(ShapeEdits::of_frame(&f, &Limits::default()).unwrap());
    }
    assert_eq!(
        edits,
        [
            ShapeEdits { full: true, upserted: vec![ShapeId(1), ShapeId(2)], ..ShapeEdits::default() },
            ShapeEdits { upserted: vec![ShapeId(3)], destroyed: vec![ShapeId(1)], ..ShapeEdits::default() },
            ShapeEdits { changed: vec![ShapeId(2)], ..ShapeEdits::default() },
        ]
    );
}

/// Bounding box (x0, y0, x1, y1) of pixels darker than 128 in red.
fn ink_box(img: &RgbaImage) -> Option<(u32, u32, u32, u32)> {
    let mut b: Option<(u32, u32, u32, u32)> = None;
    for y in 0..img.height {
        for x in 0..img.width {
            if img.pixel(x, y).unwrap()[0] < 128 {
                b = Some(b.map_or((x, y, x, y), |(a, c, d, e)| (a.min(x), c.min(y), d.max(x), e.max(y))));
            }
        }
    }
    b
}

#[test]
fn labels_keep_their_pixel_size_at_any_zoom() {
    let Some(mut h) = headless(200, 120) else { return };
    let shapes = [shape(1, rgba(0, 0, 0), label(at(0.0, 0.0, 0.0), "HIS 41", 16.0))];
    stage(&mut h, &[], &shapes, bounds(5.0), Quat::IDENTITY);
    let near = ink_box(&h.render_image().unwrap()).expect("text drawn");
    h.renderer.camera.distance *= 4.0;
    let far = ink_box(&h.render_image().unwrap()).expect("text drawn far away");
    let size = |b: (u32, u32, u32, u32)| (b.2 - b.0, b.3 - b.1);
    let (wn, hn) = size(near);
    let (wf, hf) = size(far);
    assert!(wn.abs_diff(wf) <= 1 && hn.abs_diff(hf) <= 1, "{near:?} vs {far:?}");
    // About 16 px high (cap height and descender-free text: 0.6–1.0 of the font size) and
    // centred on the anchor.
    assert!((9..=17).contains(&hn), "{hn}");
    assert!((near.0 + near.2).abs_diff(200) <= 4, "{near:?}");
    // Pixels per point doubles the size.
    h.renderer.shapes_mut().set_pixels_per_point(2.0);
    let big = ink_box(&h.render_image().unwrap()).unwrap();
    let (wb, _) = size(big);
    assert!((wb as f32 / wn as f32 - 2.0).abs() < 0.2, "{wn} -> {wb}");
    // The label is pickable where its ink is solid.
    let img = h.render_image().unwrap();
    let solid = (0..img.height)
        .flat_map(|y| (0..img.width).map(move |x| (x, y)))
        .find(|&(x, y)| img.pixel(x, y).unwrap()[0] < 20)
        .expect("solid ink");
    assert_eq!(h.pick(solid.0, solid.1).unwrap(), Some(PICK_BASE + 1));
    assert_eq!(h.pick(2, 2).unwrap(), None);
}

#[test]
fn ambient_occlusion_darkens_contact_and_can_be_turned_off() {
    let Some(mut h) = headless(192, 192) else { return };
    // A sphere resting on a board, seen from above at an angle: the board darkens around the
    // contact, not far from it.
    let atoms = [atom([0.0, 0.0, 2.0], 2.0, Representation::Spacefill, [200, 200, 200], 1)];
    let mut board = quad(at(0.0, 0.0, 0.0), 16.0);
    board.unlit = true;
    let shapes = [shape(1, rgba(200, 200, 200), ShapeKind::Mesh(board))];
    stage(&mut h, &atoms, &shapes, bounds(8.0), Quat::from_rotation_x(0.9));
    // Two points of the board at the same view depth (same world y and z): beside the contact
    // and far from it.
    let near = pixel_of(&h, Vec3::new(2.3, 0.0, 0.0));
    let far = pixel_of(&h, Vec3::new(6.5, 0.0, 0.0));
    let grey = |img: &RgbaImage, (x, y): (u32, u32)| i32::from(img.pixel(x, y).unwrap()[0]);
    h.renderer.settings.ambient_occlusion = 0.0;
    let off = h.render_image().unwrap();
    assert!((grey(&off, near) - grey(&off, far)).abs() <= 3, "{} vs {}", grey(&off, near), grey(&off, far));
    h.renderer.settings.ambient_occlusion = 1.0;
    let on = h.render_image().unwrap();
    eprintln!(
        "board near/far: ao off {} {}, on {} {}",
        grey(&off, near),
        grey(&off, far),
        grey(&on, near),
        grey(&on, far)
    );
    assert!(grey(&on, near) + 15 < grey(&on, far), "{} vs {}", grey(&on, near), grey(&on, far));
    assert!((grey(&on, far) - grey(&off, far)).abs() <= 3, "open board unchanged");
}

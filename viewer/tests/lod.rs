//! Culling and level of detail on a real GPU adapter (lavapipe in CI): the culled draw looks
//! like the full one, atoms outside the view are dropped by the compute pass, far atoms become
//! points and thin bonds are skipped, and a position write is culled again on the GPU.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)] // tests fail loudly by design

mod common;

use common::{BACKGROUND, CHANNEL_TOLERANCE, MAX_DIFFERING, atom, headless, pixel_of};
use glam::{Mat4, Vec3};
use molstream_engine::gpu::{AtomInstance, BondInstance, StructureBuffers};
use molstream_engine::io::{self, LoadOptions};
use molstream_engine::{BondKind, ColorScheme, Representation, Style};
use molstream_viewer::render::{Headless, LodCounts};

/// A flat `n × n` grid of ball-and-stick atoms 3 Å apart in the xy plane, bonded to their
/// right and upper neighbours. Atom (i, j) has pick id `1 + j·n + i`.
fn grid(n: u32) -> (Vec<AtomInstance>, Vec<BondInstance>) {
    let mut atoms = Vec::new();
    let mut bonds = Vec::new();
    let half = (n - 1) as f32 * 1.5;
    for j in 0..n {
        for i in 0..n {
            let k = j * n + i;
            let p = [i as f32 * 3.0 - half, j as f32 * 3.0 - half, 0.0];
            atoms.push(atom(p, 0.5, Representation::BallAndStick, [90, 120, 200], k + 1));
            if i + 1 < n {
                bonds.push(BondInstance { atom_a: k, atom_b: k + 1, kind: BondKind::Single as u32, color: 0 });
            }
            if j + 1 < n {
                bonds.push(BondInstance { atom_a: k, atom_b: k + n, kind: BondKind::Double as u32, color: 0 });
            }
        }
    }
    (atoms, bonds)
}

fn stage(h: &mut Headless, atoms: &[AtomInstance], bonds: &[BondInstance]) {
    h.renderer.set_scene(atoms, bonds, &[Mat4::IDENTITY]).unwrap();
    h.renderer.fit_camera_to(atoms, &[Mat4::IDENTITY]);
}

#[test]
fn the_culled_draw_looks_like_the_full_draw() {
    let Some(mut h) = headless(256, 256) else { return };
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    let options = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    for representation in [Representation::BallAndStick, Representation::Sticks, Representation::Wire] {
        let mut complex = io::load_file(path, &options).unwrap().complex;
        complex.set_style(Style { representation, color: ColorScheme::Element });
        let b = StructureBuffers::build(complex.current());
        stage(&mut h, &b.atoms, &b.bonds);
        h.renderer.settings.lod = false;
        let full = h.render_image().unwrap();
        h.renderer.settings.lod = true;
        let culled = h.render_image().unwrap();
        let c = h.renderer.lod_counts().unwrap();
        // The whole structure is in view and large enough: nothing is dropped.
        assert_eq!(c.atoms + c.points, u32::try_from(b.atoms.len()).unwrap(), "{representation:?} {c:?}");
        assert_eq!(c.bonds, u32::try_from(b.bonds.len()).unwrap(), "{representation:?} {c:?}");
        let diff = culled.diff(&full, CHANNEL_TOLERANCE);
        let allowed = (256.0 * 256.0 * MAX_DIFFERING) as usize;
        assert!(diff.differing <= allowed, "{representation:?}: {diff:?}");
    }
}

#[test]
fn atoms_outside_the_view_are_culled_and_far_ones_become_points() {
    let Some(mut h) = headless(200, 200) else { return };
    let (atoms, bonds) = grid(20);
    stage(&mut h, &atoms, &bonds);
    h.render_image().unwrap();
    let all = h.renderer.lod_counts().unwrap();
    assert_eq!(all, LodCounts { atoms: 400, points: 0, bonds: 760, extras: 380 });
    // Zoomed in on one corner: only atoms near the view survive. Every atom whose centre
    // projects inside the image must be kept; atoms farther than their radius plus a pixel
    // outside it must not be.
    h.renderer.camera.target = Vec3::new(-20.0, -20.0, 0.0);
    h.renderer.camera.distance /= 4.0;
    h.render_image().unwrap();
    let zoomed = h.renderer.lod_counts().unwrap();
    let cam = h.renderer.camera;
    let inside = |margin: f32| {
        atoms
            .iter()
            .filter(|a| {
                let p = Vec3::from_array(a.position);
                let c = cam.project(p, 200, 200).unwrap();
                let edge = cam.project(p + cam.right() * a.radius, 200, 200).unwrap();
                let m = margin * (c.distance(edge) + 1.0);
                (-m..200.0 + m).contains(&c.x) && (-m..200.0 + m).contains(&c.y)
            })
            .count() as u32
    };
    let (strict, loose) = (inside(0.0), inside(1.0));
    assert!(strict > 0 && strict < 400);
    assert!(
        (strict..=loose).contains(&(zoomed.atoms + zoomed.points)),
        "{zoomed:?}: between {strict} and {loose} expected"
    );
    assert!(zoomed.bonds < 760 && zoomed.bonds > 0);
    // Far away: atoms under a pixel become points and the bonds (0.15 Å) are skipped; the grid
    // still shows.
    h.renderer.camera.target = Vec3::ZERO;
    h.renderer.camera.distance *= 4.0 * 6.0;
    let img = h.render_image().unwrap();
    let far = h.renderer.lod_counts().unwrap();
    assert_eq!(far, LodCounts { atoms: 0, points: 400, bonds: 0, extras: 0 });
    assert!(img.count_not(BACKGROUND, 24) >= 100, "the points are drawn");
    // A point picks its atom.
    let (x, y) = pixel_of(&h, Vec3::from_array(atoms[0].position));
    let id = h.pick(x, y).unwrap().expect("a point under the pixel");
    assert!((1..=400).contains(&id));
    // With level of detail off every instance is drawn again.
    h.renderer.settings.lod = false;
    assert_eq!(h.renderer.lod_counts().unwrap(), LodCounts { atoms: 400, points: 0, bonds: 760, extras: 380 });
}

#[test]
fn a_position_write_is_culled_on_the_gpu() {
    let Some(mut h) = headless(128, 128) else { return };
    let mut atoms: Vec<AtomInstance> = (0..9)
        .map(|k| {
            atom(
                [(k % 3) as f32 * 3.0 - 3.0, (k / 3) as f32 * 3.0 - 3.0, 0.0],
                1.0,
                Representation::Spacefill,
                [200, 60, 60],
                k + 1,
            )
        })
        .collect();
    stage(&mut h, &atoms, &[]);
    // Atom 9 goes far out of view: one record written, and it is culled.
    atoms[8].position = [500.0, 0.0, 0.0];
    h.renderer.write_atoms(8, &atoms[8..]).unwrap();
    h.render_image().unwrap();
    assert_eq!(h.renderer.lod_counts().unwrap().atoms, 8);
    let (x, y) = pixel_of(&h, Vec3::ZERO);
    assert_eq!(h.pick(x, y).unwrap(), Some(5));
    // It comes back over the centre atom, in front of it: drawn and picked again.
    atoms[8].position = [0.0, 0.0, 2.0];
    h.renderer.write_atoms(8, &atoms[8..]).unwrap();
    assert_eq!(h.pick(x, y).unwrap(), Some(9));
    assert_eq!(h.renderer.lod_counts().unwrap().atoms, 9);
}

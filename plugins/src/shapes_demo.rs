//! The shapes demo: on run, takes the first complex of the workspace (loading the bundled 1hvr
//! into an empty one) and draws spheres on its ligand atoms, a dashed line for every hydrogen
//! bond found by distance between donor and acceptor atoms, labels, and a translucent box
//! around the ligand. Running it again draws the shapes anew (the old ones are destroyed).

use std::collections::HashMap;

use glam::Vec3;
use molstream_engine::shape::{Mesh, ShapeId};
use molstream_engine::{AtomId, Element, ResidueId, Topology};
use molstream_net::api::Level;
use molstream_net::host::shape::{self, Anchor};
use molstream_net::host::{Plugin, PluginHost, PluginResult, Session};
use molstream_net::proto::{PluginMeta, UserId};

use crate::HVR_PDB;

/// Donor–acceptor distances counted as hydrogen bonds, Å.
pub const HBOND_MIN: f32 = 2.5;
/// See [`HBOND_MIN`].
pub const HBOND_MAX: f32 = 3.3;

fn polar(e: Element) -> bool {
    e == Element::N || e == Element::O
}

/// Hydrogen bonds by distance: pairs of nitrogen or oxygen atoms (donors and acceptors alike,
/// as hydrogens are often missing) in different residues, `min..=max` Å apart, found with a
/// uniform grid (O(n)). Each pair once, lower atom first, sorted.
#[must_use]
pub fn hbonds(t: &Topology, positions: &[Vec3], min: f32, max: f32) -> Vec<(AtomId, AtomId, f32)> {
    let cell = max.max(0.1);
    let key = |p: Vec3| {
        let c = (p / cell).floor();
        #[allow(clippy::cast_possible_truncation)]
        (c.x as i32, c.y as i32, c.z as i32)
    };
    let mut grid: HashMap<(i32, i32, i32), Vec<u32>> = HashMap::new();
    let atoms: Vec<usize> = (0..t.atom_count()).filter(|&i| polar(t.atoms.element[i])).collect();
    for &i in &atoms {
        grid.entry(key(positions[i])).or_default().push(i as u32);
    }
    let mut out = Vec::new();
    for &i in &atoms {
        let (x, y, z) = key(positions[i]);
        for dx in -1..=1 {
            for dy in -1..=1 {
                for dz in -1..=1 {
                    let Some(cands) = grid.get(&(x + dx, y + dy, z + dz)) else { continue };
                    for &j in cands {
                        let j = j as usize;
                        if j <= i || t.atoms.residue[i] == t.atoms.residue[j] {
                            continue;
                        }
                        let d = positions[i].distance(positions[j]);
                        if (min..=max).contains(&d) {
                            out.push((AtomId(i as u32), AtomId(j as u32), d));
                        }
                    }
                }
            }
        }
    }
    out.sort_by_key(|(a, b, _)| (*a, *b));
    out
}

/// Atoms of ligands: hetero atoms outside water.
#[must_use]
pub fn ligand_atoms(t: &Topology) -> Vec<AtomId> {
    (0..t.atom_count())
        .filter(|&i| {
            let r = t.atoms.residue[i];
            t.atoms.het[i] && !matches!(t.residue_name(r), "HOH" | "WAT" | "DOD")
        })
        .map(|i| AtomId(i as u32))
        .collect()
}

/// An axis-aligned box from `min` to `max` (relative to `anchor`): 8 corners, 12 triangles.
#[must_use]
pub fn box_mesh(anchor: Anchor, min: Vec3, max: Vec3) -> Mesh {
    let corner = |i: u32| {
        Vec3::new(
            if i & 1 == 0 { min.x } else { max.x },
            if i & 2 == 0 { min.y } else { max.y },
            if i & 4 == 0 { min.z } else { max.z },
        )
    };
    let positions = (0..8).map(corner).collect();
    #[rustfmt::skip]
    let indices = vec![
        0, 2, 1, 1, 2, 3, // -z
        4, 5, 6, 5, 7, 6, // +z
        0, 1, 4, 1, 5, 4, // -y
        2, 6, 3, 3, 6, 7, // +y
        0, 4, 2, 2, 4, 6, // -x
        1, 3, 5, 3, 7, 5, // +x
    ];
    let mut m = Mesh::new(anchor, positions, indices);
    m.unlit = true;
    m
}

/// The plugin: one per room; remembers its shapes to redraw them.
#[derive(Debug, Default)]
pub struct ShapesDemo {
    shapes: Vec<ShapeId>,
}

/// What the demo declares.
#[must_use]
pub fn meta() -> PluginMeta {
    PluginMeta {
        name: "Shapes demo".into(),
        description: "Spheres on ligand atoms, dashed hydrogen bonds, labels and a box.".into(),
        category: "Demo".into(),
        tags: vec!["shapes".into(), "hydrogen bonds".into()],
        ..PluginMeta::default()
    }
}

/// Adds the demo to `host`.
#[must_use]
pub fn register(host: PluginHost) -> PluginHost {
    host.plugin(meta(), ShapesDemo::default)
}

fn rgba(rgb: [u8; 3], alpha: u8) -> u32 {
    molstream_engine::model::pack_rgba(rgb, alpha)
}

impl Plugin for ShapesDemo {
    async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
        let id = match session.request_complex_list().await?.first() {
            Some(c) => c.id,
            None => session.load_file("1hvr.pdb", HVR_PDB).await?,
        };
        let complex = session.request_complex(id).await?;
        let view = complex.current();
        let (t, p) = (view.topology, view.positions);
        let mut marked = ligand_atoms(t);
        if marked.is_empty() {
            // No ligand: mark the first residues' alpha carbons.
            marked = (0..t.atom_count())
                .filter(|&i| t.atom_name(AtomId(i as u32)) == "CA")
                .take(20)
                .map(|i| AtomId(i as u32))
                .collect();
        }
        let mut shapes = Vec::new();
        for &a in &marked {
            let color = rgba(t.atoms.element[a.index()].cpk_color(), 170);
            shapes.push(shape::sphere(Anchor::atom(id, a, Vec3::ZERO), 0.6, color));
        }
        let bonds = hbonds(t, p, HBOND_MIN, HBOND_MAX);
        for (a, b, _) in &bonds {
            let (start, end) = (Anchor::atom(id, *a, Vec3::ZERO), Anchor::atom(id, *b, Vec3::ZERO));
            shapes.push(shape::dashed_line(start, end, 0.06, 0.2, 0.12, rgba([255, 220, 0], 255)));
        }
        // A label per marked residue, above its first marked atom.
        let mut residues: Vec<ResidueId> = marked.iter().map(|a| t.atoms.residue[a.index()]).collect();
        residues.dedup();
        for r in &residues {
            let first = marked.iter().find(|a| t.atoms.residue[a.index()] == *r).copied().unwrap_or(AtomId(0));
            let text = format!("{} {}", t.residue_name(*r), t.residues.seq_num[r.index()]);
            shapes.push(shape::label(Anchor::atom(id, first, Vec3::new(0.0, 0.0, 1.5)), text, 16.0, u32::MAX));
        }
        let (lo, hi) = marked
            .iter()
            .map(|a| p[a.index()])
            .fold((Vec3::splat(f32::MAX), Vec3::splat(f32::MIN)), |(lo, hi), q| (lo.min(q), hi.max(q)));
        shapes.push(shape::label(
            Anchor::complex(id, hi + Vec3::splat(1.0)),
            format!("{} hydrogen bonds", bonds.len()),
            20.0,
            u32::MAX,
        ));
        let margin = Vec3::splat(1.5);
        let mesh = box_mesh(Anchor::complex(id, Vec3::ZERO), lo - margin, hi + margin);
        shapes.push(shape::mesh(mesh, rgba([80, 160, 255], 60)));

        if !self.shapes.is_empty() {
            session.destroy_shapes(&std::mem::take(&mut self.shapes)).await?;
        }
        self.shapes = session.upload_shapes(&mut shapes).await?;
        let text = format!(
            "{}: {} spheres, {} hydrogen bonds, {} labels, 1 box",
            complex.name,
            marked.len(),
            bonds.len(),
            residues.len() + 1
        );
        session.notify(Level::Success, text).await?;
        Ok(())
    }
}

//! Building GPU instance buffers from a loaded structure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use molstream_engine::gpu::{self, AtomInstance, BondInstance, InstanceBase, StructureBuffers};
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::model::pack_rgba;
use molstream_engine::{ColorScheme, Element, Representation, Style};

fn load(file: &str) -> molstream_engine::Complex {
    load_file(common::assets().join(file), &LoadOptions::default()).unwrap().complex
}

#[test]
fn instances_have_the_documented_sizes() {
    assert_eq!(std::mem::size_of::<AtomInstance>(), 32);
    assert_eq!(std::mem::size_of::<BondInstance>(), 16);
}

#[test]
fn atom_buffer_mirrors_the_model_in_every_style() {
    let mut complex = load("1hvr.pdb");
    for repr in Representation::ALL {
        for color in [ColorScheme::Element, ColorScheme::Chain, ColorScheme::ResidueType, ColorScheme::BFactor] {
            complex.set_style(Style { representation: repr, color });
            let view = complex.current();
            let b = StructureBuffers::build(view);
            assert_eq!(b.atoms.len(), 1890);
            assert_eq!(b.atom_bytes().len(), 1890 * 32);
            for (i, a) in b.atoms.iter().enumerate() {
                assert_eq!(a.position, view.positions[i].to_array());
                assert_eq!(a.flags & gpu::ATOM_FLAG_REPR_MASK, repr as u32);
                assert_eq!(
                    a.flags >> gpu::ATOM_FLAG_ELEMENT_SHIFT & 0xff,
                    u32::from(view.topology.atoms.element[i].atomic_number())
                );
                assert_eq!(a.pick_id, u32::try_from(i).unwrap() + 1);
                assert_eq!(a.color >> 24, 255, "opaque");
            }
            match repr {
                Representation::Hidden => assert!(b.atoms.iter().all(|a| a.radius == 0.0)),
                Representation::Spacefill => {
                    let c = view.topology.atoms.element.iter().position(|&e| e == Element::C).unwrap();
                    assert!((b.atoms[c].radius - 1.70).abs() < 1e-6);
                }
                _ => assert!(b.atoms.iter().all(|a| a.radius > 0.0 && a.radius < 1.0)),
            }
        }
    }
}

#[test]
fn color_schemes_color_what_they_say() {
    let mut complex = load("1hvr.pdb");
    complex.set_style(Style { representation: Representation::BallAndStick, color: ColorScheme::Element });
    let view = complex.current();
    let t = view.topology;
    let o = t.atoms.element.iter().position(|&e| e == Element::O).unwrap();
    assert_eq!(view.display.color[o], pack_rgba([255, 13, 13], 255));

    complex.set_style(Style { representation: Representation::BallAndStick, color: ColorScheme::Chain });
    let view = complex.current();
    let t = view.topology;
    let chain_a = t.atom_chain(molstream_engine::AtomId(0));
    let first_b = (0..t.atom_count())
        .find(|&i| t.chain_name(t.atom_chain(molstream_engine::AtomId::from_index(i))) == "B")
        .unwrap();
    assert_eq!(t.chain_name(chain_a), "A");
    assert_ne!(view.display.color[0], view.display.color[first_b], "chains A and B differ");

    complex.set_style(Style { representation: Representation::BallAndStick, color: ColorScheme::BFactor });
    let view = complex.current();
    let b = &view.topology.atoms.b_factor;
    let (lo, hi) =
        (0..b.len()).fold((0, 0), |(l, h), i| (if b[i] < b[l] { i } else { l }, if b[i] > b[h] { i } else { h }));
    assert_eq!(view.display.color[lo], pack_rgba([0, 0, 255], 255), "lowest B is blue");
    assert_eq!(view.display.color[hi], pack_rgba([255, 0, 0], 255), "highest B is red");
}

#[test]
fn bonds_index_the_atom_buffer_and_ignore_positions() {
    let complex = load("1hvr.pdb");
    let view = complex.current();
    let mut atoms = Vec::new();
    let mut bonds = Vec::new();
    // Place the model after 100 atoms of another complex in shared buffers.
    let base = InstanceBase { atom_offset: 100, pick_base: 101, transform: 3 };
    gpu::build_atom_instances(view, base, &mut atoms);
    gpu::build_bond_instances(view, base, &mut bonds);
    assert_eq!(bonds.len(), view.topology.bonds.len());
    assert!(bonds.iter().all(|b| (100..100 + 1890).contains(&b.atom_a) && (100..100 + 1890).contains(&b.atom_b)));
    assert!(atoms.iter().all(|a| a.transform == 3));
    // Double and aromatic bonds from the residue templates reach the buffer.
    assert!(bonds.iter().any(|b| b.kind == molstream_engine::BondKind::Double as u32));
    assert!(bonds.iter().any(|b| b.kind == molstream_engine::BondKind::Aromatic as u32));

    // A new frame rewrites positions only.
    let before = atoms.clone();
    let moved: Vec<_> = view.positions.iter().map(|p| *p + glam::Vec3::X).collect();
    gpu::update_positions(&moved, &mut atoms);
    for (a, b) in atoms.iter().zip(&before) {
        assert!((a.position[0] - b.position[0] - 1.0).abs() < 1e-4);
        assert_eq!((a.radius, a.color, a.flags, a.pick_id), (b.radius, b.color, b.flags, b.pick_id));
    }
}

#[test]
fn selection_and_labels_reach_the_flags() {
    let mut complex = load("1YJP.cif");
    let d = &mut complex.displays[0];
    d.selected[3] = true;
    d.labeled[5] = true;
    let b = StructureBuffers::build(complex.current());
    assert_ne!(b.atoms[3].flags & gpu::ATOM_FLAG_SELECTED, 0);
    assert_eq!(b.atoms[4].flags & gpu::ATOM_FLAG_SELECTED, 0);
    assert_ne!(b.atoms[5].flags & gpu::ATOM_FLAG_LABELED, 0);
}

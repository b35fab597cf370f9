//! `Workspace::insert`: a copy of a workspace whose ids are given elsewhere keeps them, a
//! complex with a known id is replaced, and `add` never reuses an id seen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use glam::Vec3;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::{Complex, ComplexId, Workspace};

fn complex(name: &str) -> Complex {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    let mut c =
        load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap().complex;
    c.name = name.into();
    c
}

#[test]
fn insert_keeps_given_ids_replaces_and_add_stays_above() {
    let mut ws = Workspace::new();
    let mut a = complex("a");
    a.id = ComplexId(7);
    assert!(ws.insert(a).is_none());
    let mut b = complex("b");
    b.id = ComplexId(3);
    assert!(ws.insert(b).is_none());
    assert_eq!(ws.complexes().iter().map(|c| c.id.0).collect::<Vec<_>>(), vec![7, 3]);
    let mut a2 = complex("a2");
    a2.id = ComplexId(7);
    a2.position = Vec3::X;
    let old = ws.insert(a2).unwrap();
    assert_eq!(old.name, "a");
    assert_eq!(ws.get(ComplexId(7)).unwrap().name, "a2");
    assert_eq!(ws.complexes().len(), 2, "replaced in place");
    assert_eq!(ws.complexes()[0].id, ComplexId(7));
    assert_eq!(ws.add(complex("c")), ComplexId(8), "add gives an id above every id inserted");
}

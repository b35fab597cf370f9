//! Loading real PDB and mmCIF files: counts must match gemmi / Biopython / the raw records.
//!
//! Expected values were computed with gemmi 0.7.5 and Biopython 1.88 and by counting records
//! in the text (they agree except where noted in each row). `ref_bonds` is an independent
//! distance-criterion bond count (gemmi NeighborSearch, Cordero radii + 0.45 Å, one bond per
//! hydrogen, no bonds between different alternate locations); molstream also adds CONECT
//! bonds and treats ions differently, so its count must land within 3 % of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use molstream_engine::io::{LoadOptions, load_file};

struct Expect {
    file: &'static str,
    models: usize,
    chains: usize,
    residues: usize,
    atom_sites: usize,
    ref_bonds: usize,
}

const fn e(
    file: &'static str,
    models: usize,
    chains: usize,
    residues: usize,
    atom_sites: usize,
    ref_bonds: usize,
) -> Expect {
    Expect { file, models, chains, residues, atom_sites, ref_bonds }
}

/// Files in ../shared/data (pdb/ and cif/).
const SHARED: &[Expect] = &[
    e("pdb/1hvr.pdb", 1, 2, 199, 1890, 1922),
    // 68 alternate-location records (A/B) in the first model, all kept.
    e("pdb/4E43.pdb", 1, 3, 408, 1877, 1705),
    e("pdb/5a7u.pdb", 1, 1, 28, 455, 462),
    // Residue numbers run into the chain column; B-factors run into occupancy.
    e("pdb/6msm.pdb", 1, 2, 1208, 9703, 9911),
    // MD-written: 76 columns, no element column, blank chain id.
    e("pdb/adk_open.pdb", 1, 1, 214, 3341, 3365),
    // MD-written: 66 columns; residue numbers wrap 9999 → 0, so distinct keys are 10000.
    // (Biopython silently drops 5196 atoms of this file; gemmi and the records say 47681.)
    e("pdb/adk_oplsaa.pdb", 1, 1, 10000, 47681, 25514),
    e("pdb/cobrotoxin.pdb", 1, 1, 4693, 19385, 10153),
    e("pdb/nmr_neopetrosiamide.pdb", 24, 1, 28, 392, 401),
    e("cif/1YJP.cif", 1, 1, 14, 66, 59),
    e("cif/3KPR.cif", 1, 10, 1768, 13434, 13682),
    // 34 alternate-location rows, 229 deuterium atoms.
    e("cif/5PTI.cif", 1, 1, 123, 1104, 1055),
];

fn check(path: &std::path::Path, x: &Expect) {
    let loaded = load_file(path, &LoadOptions::default()).unwrap_or_else(|err| panic!("{err}"));
    let c = loaded.complex.counts();
    assert_eq!(
        (c.models, c.chains, c.residues, c.atom_sites),
        (x.models, x.chains, x.residues, x.atom_sites),
        "{}: (models, chains, residues, atom_sites)",
        x.file
    );
    #[allow(clippy::cast_precision_loss)]
    let rel = (c.bonds as f64 - x.ref_bonds as f64).abs() / x.ref_bonds as f64;
    assert!(rel < 0.03, "{}: {} bonds, reference {} ({:.1} % off)", x.file, c.bonds, x.ref_bonds, rel * 100.0);
    for t in &loaded.complex.topologies {
        t.validate().unwrap_or_else(|e| panic!("{}: {e}", x.file));
    }
    // Every model has one position per atom of its topology, and NMR models share one topology.
    for m in &loaded.complex.models {
        assert_eq!(m.positions.len(), loaded.complex.topologies[m.topology].atom_count());
    }
    if x.models > 1 {
        assert_eq!(loaded.complex.topologies.len(), 1, "{}: models should share a topology", x.file);
    }
}

#[test]
fn every_shared_file_loads_with_the_reference_counts() {
    let Some(dir) = common::shared_data() else { return };
    for x in SHARED {
        check(&dir.join(x.file), x);
    }
}

#[test]
fn bundled_assets_load_with_the_reference_counts() {
    let dir = common::assets();
    for x in [
        e("1hvr.pdb", 1, 2, 199, 1890, 1922),
        e("4E43.pdb", 1, 3, 408, 1877, 1705),
        e("nmr_neopetrosiamide.pdb", 24, 1, 28, 392, 401),
        e("1YJP.cif", 1, 1, 14, 66, 59),
        e("5PTI.cif", 1, 1, 123, 1104, 1055),
        // gzip-compressed mmCIF.
        e("3KPR.cif.gz", 1, 10, 1768, 13434, 13682),
    ] {
        check(&dir.join(x.file), &x);
    }
}

#[test]
fn alternate_locations_are_kept_and_never_bonded_to_each_other() {
    let loaded = load_file(common::assets().join("4E43.pdb"), &LoadOptions::default()).unwrap();
    let m = loaded.complex.current();
    let t = m.topology;
    let alts = t.atoms.alt_loc.iter().filter(|&&a| a != 0).count();
    assert_eq!(alts, 68);
    assert!(t.atoms.alt_loc.contains(&b'A') && t.atoms.alt_loc.contains(&b'B'));
    for i in 0..t.bonds.len() {
        let (a, b) = (t.bonds.a[i].index(), t.bonds.b[i].index());
        let (x, y) = (t.atoms.alt_loc[a], t.atoms.alt_loc[b]);
        assert!(x == 0 || y == 0 || x == y, "bond between altlocs {} and {}", x as char, y as char);
    }
    // Occupancies are kept as written (pdbtbx would divide shared atoms by the conformer count).
    assert!(t.atoms.occupancy.iter().all(|&o| (0.0..=1.0).contains(&o)));
}

#[test]
fn hydrogens_have_at_most_one_bond() {
    let loaded = load_file(common::assets().join("1hvr.pdb"), &LoadOptions::default()).unwrap();
    let t = loaded.complex.current().topology;
    let mut degree = vec![0u32; t.atom_count()];
    for i in 0..t.bonds.len() {
        degree[t.bonds.a[i].index()] += 1;
        degree[t.bonds.b[i].index()] += 1;
    }
    let hydrogens: Vec<usize> = (0..t.atom_count()).filter(|&i| t.atoms.element[i].is_hydrogen()).collect();
    assert_eq!(hydrogens.len(), 330);
    assert!(hydrogens.iter().all(|&i| degree[i] == 1), "every H of 1hvr is bonded exactly once");
}

#[test]
fn md_files_get_elements_from_atom_names() {
    let Some(dir) = common::shared_data() else { return };
    let loaded = load_file(dir.join("pdb/adk_open.pdb"), &LoadOptions::default()).unwrap();
    let t = loaded.complex.current().topology;
    let count = |sym: &str| {
        let el = molstream_engine::Element::from_symbol(sym).unwrap();
        t.atoms.element.iter().filter(|&&e| e == el).count()
    };
    // gemmi reads CA as calcium and finds 389 H here; by name there are 1685 H and no Ca.
    assert_eq!(count("H"), 1685);
    assert_eq!(count("Ca"), 0);
    assert!(loaded.warnings.iter().any(|w| w.message.contains("no element")));
}

#[test]
fn secondary_structure_comes_from_helix_sheet_and_struct_conf() {
    use molstream_engine::model::SecondaryStructure as S;
    for file in ["1hvr.pdb", "5PTI.cif"] {
        let loaded = load_file(common::assets().join(file), &LoadOptions::default()).unwrap();
        let t = loaded.complex.current().topology;
        let helix = t.residues.secondary.iter().filter(|&&s| s == S::Helix).count();
        let sheet = t.residues.secondary.iter().filter(|&&s| s == S::Sheet).count();
        assert!(helix > 0 && sheet > 0, "{file}: {helix} helix, {sheet} sheet residues");
    }
}

#[test]
fn conect_bonds_are_kept() {
    // 1hvr's inhibitor is HETATM with CONECT records; its atoms must be bonded.
    let loaded =
        load_file(common::assets().join("1hvr.pdb"), &LoadOptions { infer_bonds: false, ..LoadOptions::default() })
            .unwrap();
    let t = loaded.complex.current().topology;
    assert!(t.bonds.len() >= 34, "CONECT bonds alone: {}", t.bonds.len());
    assert!(t.bonds.a.iter().all(|a| t.atoms.het[a.index()]) || !t.bonds.is_empty());
}

#[test]
fn pdb_writer_round_trips_through_the_reader() {
    use molstream_engine::io::{Format, load_bytes, pdb};
    for file in ["4E43.pdb", "5PTI.cif"] {
        let a = load_file(common::assets().join(file), &LoadOptions::default()).unwrap();
        let text = pdb::write(a.complex.current());
        let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
        let b = load_bytes(text.as_bytes(), "roundtrip.pdb", Some(Format::Pdb), &opts).unwrap();
        let (ta, tb) = (a.complex.current().topology, b.complex.current().topology);
        assert_eq!(a.complex.counts(), b.complex.counts(), "{file}");
        assert_eq!(ta.atoms.alt_loc, tb.atoms.alt_loc, "{file}");
        assert_eq!(ta.atoms.element, tb.atoms.element, "{file}");
        assert_eq!(ta.atoms.het, tb.atoms.het, "{file}");
        for i in 0..ta.atom_count() {
            let id = molstream_engine::AtomId::from_index(i);
            assert_eq!(ta.atom_name(id), tb.atom_name(id), "{file} atom {i}");
            let d = a.complex.current().positions[i].distance(b.complex.current().positions[i]);
            assert!(d < 0.001, "{file} atom {i} moved {d} Å");
        }
    }
}

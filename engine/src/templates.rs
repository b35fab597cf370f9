//! Bond orders of standard residues. Distance inference finds which atoms bond but not the
//! order; this table supplies it for amino acids, nucleotides and water so double and aromatic
//! bonds can be drawn. Bonds of other residues (ligands) stay [`BondKind::Unknown`] unless the
//! file gives an order.

use std::collections::{HashMap, HashSet};

use crate::ids::{AtomId, StrId};
use crate::model::{BondKind, Topology};

const AMINO: &str =
    "ALA ARG ASN ASP CYS GLN GLU GLY HIS HID HIE HIP ILE LEU LYS MET MSE PHE PRO SER THR TRP TYR VAL SEC PYL";
const NUCLEIC: &str = "A C G U I DA DC DG DT DI";
const WATER: &str = "HOH WAT SOL TIP3 TIP4 TIP5 SPC DOD";

use BondKind::{Aromatic as Ar, Double as Db};

/// (residues, atom, atom, kind): every residue listed shares the entry.
const ORDERS: &[(&str, &str, &str, BondKind)] = &[
    (AMINO, "C", "O", Db),
    ("ARG", "CZ", "NH2", Db),
    ("ASN ASP", "CG", "OD1", Db),
    ("GLN GLU", "CD", "OE1", Db),
    ("PHE TYR", "CG", "CD1", Ar),
    ("PHE TYR", "CD1", "CE1", Ar),
    ("PHE TYR", "CE1", "CZ", Ar),
    ("PHE TYR", "CZ", "CE2", Ar),
    ("PHE TYR", "CE2", "CD2", Ar),
    ("PHE TYR", "CD2", "CG", Ar),
    ("HIS HID HIE HIP", "CG", "ND1", Ar),
    ("HIS HID HIE HIP", "ND1", "CE1", Ar),
    ("HIS HID HIE HIP", "CE1", "NE2", Ar),
    ("HIS HID HIE HIP", "NE2", "CD2", Ar),
    ("HIS HID HIE HIP", "CD2", "CG", Ar),
    ("TRP", "CG", "CD1", Ar),
    ("TRP", "CD1", "NE1", Ar),
    ("TRP", "NE1", "CE2", Ar),
    ("TRP", "CE2", "CD2", Ar),
    ("TRP", "CD2", "CG", Ar),
    ("TRP", "CE2", "CZ2", Ar),
    ("TRP", "CZ2", "CH2", Ar),
    ("TRP", "CH2", "CZ3", Ar),
    ("TRP", "CZ3", "CE3", Ar),
    ("TRP", "CE3", "CD2", Ar),
    // Purines.
    ("A G I DA DG DI", "N9", "C8", Ar),
    ("A G I DA DG DI", "C8", "N7", Ar),
    ("A G I DA DG DI", "N7", "C5", Ar),
    ("A G I DA DG DI", "C5", "C6", Ar),
    ("A G I DA DG DI", "C6", "N1", Ar),
    ("A G I DA DG DI", "N1", "C2", Ar),
    ("A G I DA DG DI", "C2", "N3", Ar),
    ("A G I DA DG DI", "N3", "C4", Ar),
    ("A G I DA DG DI", "C4", "C5", Ar),
    ("A G I DA DG DI", "C4", "N9", Ar),
    ("G DG I DI", "C6", "O6", Db),
    // Cytosine.
    ("C DC", "N1", "C2", Ar),
    ("C DC", "C2", "N3", Ar),
    ("C DC", "N3", "C4", Ar),
    ("C DC", "C4", "C5", Ar),
    ("C DC", "C5", "C6", Ar),
    ("C DC", "C6", "N1", Ar),
    ("C DC", "C2", "O2", Db),
    // Thymine and uracil.
    ("U DT", "C2", "O2", Db),
    ("U DT", "C4", "O4", Db),
    ("U DT", "C5", "C6", Db),
    // Phosphate (both naming conventions).
    (NUCLEIC, "P", "OP1", Db),
    (NUCLEIC, "P", "O1P", Db),
];

/// The order table resolved against one topology's interned names.
#[derive(Debug)]
pub struct ResidueTemplates {
    orders: HashMap<(StrId, StrId, StrId), BondKind>,
    standard: HashSet<StrId>,
}

impl ResidueTemplates {
    /// Resolves the table against `topology`'s strings (entries naming absent strings drop out).
    #[must_use]
    pub fn new(topology: &Topology) -> Self {
        let s = &topology.strings;
        let mut orders = HashMap::new();
        for &(residues, a, b, kind) in ORDERS {
            let (Some(a), Some(b)) = (s.find(a), s.find(b)) else { continue };
            for r in residues.split_whitespace().filter_map(|r| s.find(r)) {
                orders.insert((r, a.min(b), a.max(b)), kind);
            }
        }
        let standard =
            [AMINO, NUCLEIC, WATER].iter().flat_map(|l| l.split_whitespace()).filter_map(|r| s.find(r)).collect();
        Self { orders, standard }
    }

    /// Order of an inferred bond: from the table within a standard residue, single for other
    /// bonds inside or between standard residues, unknown otherwise.
    #[must_use]
    pub fn kind(&self, t: &Topology, a: AtomId, b: AtomId) -> BondKind {
        let (ra, rb) = (t.atoms.residue[a.index()], t.atoms.residue[b.index()]);
        let (na, nb) = (t.residues.name[ra.index()], t.residues.name[rb.index()]);
        if !self.standard.contains(&na) || !self.standard.contains(&nb) {
            return BondKind::Unknown;
        }
        if ra == rb {
            let (x, y) = (t.atoms.name[a.index()], t.atoms.name[b.index()]);
            if let Some(&k) = self.orders.get(&(na, x.min(y), x.max(y))) {
                return k;
            }
        }
        BondKind::Single
    }
}

//! Builds a [`Topology`] and its positions from atom records in file order, grouping them into
//! residues and chain segments. Every loader goes through it, so the grouping rules (and the
//! counts they give) are the same for PDB and mmCIF.

use glam::Vec3;

use crate::element::Element;
use crate::ids::{AtomId, ChainId, ResidueId, StrId};
use crate::model::{RibbonFlags, SecondaryStructure, Topology};

/// One ATOM/HETATM record (or mmCIF `atom_site` row), borrowed from the parser.
#[derive(Clone, Copy, Debug)]
pub struct AtomRecord<'a> {
    /// Atom name, trimmed.
    pub name: &'a str,
    /// Element.
    pub element: Element,
    /// Serial number.
    pub serial: i32,
    /// Alternate location; 0 for none.
    pub alt_loc: u8,
    /// HETATM record.
    pub het: bool,
    /// Occupancy.
    pub occupancy: f32,
    /// B-factor.
    pub b_factor: f32,
    /// Formal charge.
    pub formal_charge: i8,
    /// Residue name, trimmed.
    pub res_name: &'a str,
    /// Author chain id, trimmed (may be empty).
    pub chain: &'a str,
    /// Author sequence number.
    pub seq_num: i32,
    /// Insertion code; 0 for none.
    pub ins_code: u8,
    /// Position in Å.
    pub position: Vec3,
}

/// A secondary-structure range (HELIX, SHEET, `_struct_conf`, `_struct_sheet_range`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryRange {
    /// Kind.
    pub kind: SecondaryStructure,
    /// Author chain id.
    pub chain: String,
    /// First residue (sequence number, insertion code or 0).
    pub start: (i32, u8),
    /// Last residue, inclusive.
    pub end: (i32, u8),
}

/// Accumulates atom records into a topology.
#[derive(Debug, Default)]
pub struct TopologyBuilder {
    topo: Topology,
    positions: Vec<Vec3>,
    current_chain: Option<StrId>,
    current_residue: Option<(i32, u8)>,
    chain_break: bool,
}

impl TopologyBuilder {
    /// An empty builder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `atoms` atoms.
    #[must_use]
    pub fn with_capacity(atoms: usize) -> Self {
        let mut b = Self::new();
        let a = &mut b.topo.atoms;
        a.name.reserve(atoms);
        a.element.reserve(atoms);
        a.serial.reserve(atoms);
        a.alt_loc.reserve(atoms);
        a.het.reserve(atoms);
        a.occupancy.reserve(atoms);
        a.b_factor.reserve(atoms);
        a.formal_charge.reserve(atoms);
        a.residue.reserve(atoms);
        b.positions.reserve(atoms);
        b
    }

    /// Number of atoms pushed so far.
    #[must_use]
    pub fn atom_count(&self) -> usize {
        self.positions.len()
    }

    /// Ends the current chain segment (a `TER` record): the next atom starts a new segment even
    /// if it has the same chain id.
    pub fn chain_break(&mut self) {
        self.chain_break = true;
    }

    /// Appends an atom, opening a new residue when (chain, sequence number, insertion code)
    /// changes and a new chain segment when the chain id changes or after a TER.
    pub fn push(&mut self, rec: &AtomRecord<'_>) -> AtomId {
        let t = &mut self.topo;
        let chain = t.strings.intern(rec.chain);
        let atom_index = t.atoms.name.len();
        let new_chain = self.chain_break || self.current_chain != Some(chain);
        if new_chain {
            close_range(&mut t.chains.residue_offsets, t.residues.name.len());
            t.chains.name.push(chain);
            self.current_chain = Some(chain);
            self.chain_break = false;
        }
        let key = (rec.seq_num, rec.ins_code);
        if new_chain || self.current_residue != Some(key) {
            close_range(&mut t.residues.atom_offsets, atom_index);
            let name = t.strings.intern(rec.res_name);
            t.residues.name.push(name);
            t.residues.seq_num.push(rec.seq_num);
            t.residues.ins_code.push(rec.ins_code);
            t.residues.secondary.push(SecondaryStructure::Coil);
            t.residues.ribbon.push(RibbonFlags::default());
            t.residues.chain.push(ChainId::from_index(t.chains.name.len() - 1));
            self.current_residue = Some(key);
        }
        let name = t.strings.intern(rec.name);
        let a = &mut t.atoms;
        a.name.push(name);
        a.element.push(rec.element);
        a.serial.push(rec.serial);
        a.alt_loc.push(rec.alt_loc);
        a.het.push(rec.het);
        a.occupancy.push(rec.occupancy);
        a.b_factor.push(rec.b_factor);
        a.formal_charge.push(rec.formal_charge);
        a.residue.push(ResidueId::from_index(t.residues.name.len() - 1));
        self.positions.push(rec.position);
        AtomId::from_index(atom_index)
    }

    /// Finishes the topology: closes the offset arrays, marks polymer residues and applies
    /// secondary structure. Bonds are added by the caller.
    #[must_use]
    pub fn finish(mut self, secondary: &[SecondaryRange]) -> (Topology, Vec<Vec3>) {
        let t = &mut self.topo;
        let n_atoms = t.atoms.name.len();
        let n_res = t.residues.name.len();
        // The offset arrays hold each range's start; the total closes the last range (or is the
        // lone 0 of an empty topology).
        close_range(&mut t.residues.atom_offsets, n_atoms);
        close_range(&mut t.chains.residue_offsets, n_res);
        mark_polymers(t);
        apply_secondary(t, secondary);
        (self.topo, self.positions)
    }
}

/// Pushes the start offset of the next range, or the total at the end.
fn close_range(offsets: &mut Vec<u32>, next_start: usize) {
    let v = u32::try_from(next_start).unwrap_or(u32::MAX);
    offsets.push(v);
}

fn mark_polymers(t: &mut Topology) {
    let ca = t.strings.intern("CA");
    let p = t.strings.intern("P");
    for r in 0..t.residue_count() {
        let range = t.residue_atoms(ResidueId::from_index(r));
        let trace = t.atoms.name[range.clone()]
            .iter()
            .zip(&t.atoms.element[range])
            .any(|(&n, &e)| (n == ca && e == Element::C) || (n == p && e == Element::P));
        let flags = &mut t.residues.ribbon[r];
        flags.set(RibbonFlags::POLYMER, trace);
        flags.set(RibbonFlags::VISIBLE, trace);
    }
}

fn apply_secondary(t: &mut Topology, ranges: &[SecondaryRange]) {
    for range in ranges {
        for c in 0..t.chain_count() {
            let cid = ChainId::from_index(c);
            if t.chain_name(cid) != range.chain {
                continue;
            }
            let mut inside = false;
            for r in t.chain_residues(cid) {
                let key = (t.residues.seq_num[r], t.residues.ins_code[r]);
                if key == range.start {
                    inside = true;
                }
                if inside {
                    t.residues.secondary[r] = range.kind;
                }
                if key == range.end {
                    inside = false;
                }
            }
        }
    }
}

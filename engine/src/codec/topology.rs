//! Topology deltas (kind 7): atoms, residues, chains and bonds inserted or removed, as an edit
//! of the topology held (a plugin adds hydrogens, removes a ligand, joins two residues).
//!
//! A [`TopologyEdit`] is applied the same way on both ends ([`TopologyEdit::apply_to`] on the
//! sender's complex, the stream decoder on its copy), so after the frame both hold the same
//! topology, string pool, display state and quantized positions, and the next position delta
//! is taken against the new atom set. A position delta whose atom count no longer matches is
//! refused with [`CodecError::AtomCount`]; one whose base is the frame before the edit with
//! [`CodecError::NeedKeyframe`].
//!
//! # Semantics
//!
//! Ids in an edit refer to the topology *before* it. Removals name atoms, residues, chains and
//! bonds; a removed residue must lose all its atoms and a removed chain all its residues (a
//! residue or chain that only loses some, or all, of its members without being removed stays,
//! possibly empty). Bonds touching a removed atom are removed with it. New chains, residues and
//! atoms each carry `before`: the old item they are inserted in front of (the old count means
//! at the end), and the lists are sorted by `before`; items with equal `before` keep their list
//! order. A new residue belongs to a kept old chain or a new one, a new atom to a kept old
//! residue or a new one. The result must keep chains → residues → atoms contiguous (checked).
//! Kept bonds keep their order and come first, then the new bonds; a bond that already exists
//! is refused. New names are interned in order: chain names, residue names, atom names.
//!
//! # Payload
//!
//! Little-endian; `varint` is unsigned LEB128, `zvarint` a varint of `zigzag(v)`, `ranges` the
//! sorted-id-runs coding of [`super::attrs`], `ref` a varint `index << 1 | new` (`new` = 1: the
//! index is into this frame's list of new items, 0: an id of the topology before the edit).
//! The header's `atom_count` is the atom count *after* the edit.
//!
//! | field | coding |
//! |---|---|
//! | atoms, residues, chains, bonds, strings before the edit | 5 varints, must equal the receiver's |
//! | removed atoms, residues, chains, bonds | 4 × `ranges` |
//! | new strings `s` | varint, then `s` × (varint length, UTF-8); they get ids from the old string count on |
//! | new chains `c` | varint, then `c` chain rows |
//! | new residues `r` | varint, then `r` residue rows |
//! | new atoms `m` | varint, then `m` atom rows |
//! | new bonds `b` | varint, then `b` bond rows |
//! | positions of the new atoms | a position-delta body for `m` atoms against all-zero coordinates (as in keyframes), to the end of the payload |
//!
//! Chain row: `before` delta (varint, from the previous row's `before`, the first from 0), name
//! string id (varint).
//!
//! Residue row: `before` delta (varint), chain `ref`, name string id (varint), sequence number
//! (zvarint), insertion code (u8), secondary structure (u8, 0-3), ribbon flags (u8).
//!
//! Atom row: `before` delta (varint), residue `ref`, name string id (varint), element (u8,
//! atomic number), serial (zvarint), alt loc (u8), het (u8, 0/1), occupancy × 100 (zvarint),
//! B-factor × 100 (zvarint), formal charge (u8, two's complement), colour (u32, RGBA8), radius
//! (f32), representation (u8, 0-4), display flags (u8: bit 0 selected, bit 1 labeled, bit 2 a
//! label text follows; other bits 0), then the label text (varint length, UTF-8) if bit 2.
//!
//! Bond row: atom `ref` a, atom `ref` b, kind (u8, 0-4).
//!
//! `atoms − removed atoms + m` must equal the header's atom count. Every count is bounded by
//! the bytes left (a chain row takes at least 2 bytes, a residue row 7, an atom row 20, a bond
//! row 3) before anything is allocated, and the whole edit is checked against the topology
//! held before anything changes.

use std::collections::HashSet;

use glam::Vec3;

use super::attrs::{IdRange, expand, ranges_of, read_ranges, write_ranges};
use super::bits::{Reader, Writer, unzigzag, zigzag};
use super::keyframe::{from_hundredths, hundredths};
use super::positions::{self, Quantized};
use super::{CodecError, Limits};
use crate::element::Element;
use crate::ids::{AtomId, BondId, ChainId, ResidueId, StrId};
use crate::model::{
    BondKind, Complex, DisplayState, Representation, RibbonFlags, SecondaryStructure, Topology, pack_rgba,
};

/// A chain: one of the topology before the edit, or one the edit inserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainRef {
    /// A chain of the topology before the edit (must not be removed).
    Existing(ChainId),
    /// Index into [`TopologyEdit::new_chains`].
    New(u32),
}

/// A residue: one of the topology before the edit, or one the edit inserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResidueRef {
    /// A residue of the topology before the edit (must not be removed).
    Existing(ResidueId),
    /// Index into [`TopologyEdit::new_residues`].
    New(u32),
}

/// An atom: one of the topology before the edit, or one the edit inserts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomRef {
    /// An atom of the topology before the edit (must not be removed).
    Existing(AtomId),
    /// Index into [`TopologyEdit::new_atoms`].
    New(u32),
}

/// A chain segment to insert.
#[derive(Clone, Debug, PartialEq)]
pub struct NewChain {
    /// The old chain it goes in front of; the old chain count means at the end.
    pub before: ChainId,
    /// Author chain id.
    pub name: String,
}

/// A residue to insert.
#[derive(Clone, Debug, PartialEq)]
pub struct NewResidue {
    /// The old residue it goes in front of; the old residue count means at the end.
    pub before: ResidueId,
    /// Its chain.
    pub chain: ChainRef,
    /// Residue name.
    pub name: String,
    /// Author sequence number.
    pub seq_num: i32,
    /// Insertion code; 0 for none.
    pub ins_code: u8,
    /// Secondary structure.
    pub secondary: SecondaryStructure,
    /// Ribbon flags.
    pub ribbon: RibbonFlags,
}

/// An atom to insert, with its topology columns, position and display state.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAtom {
    /// The old atom it goes in front of; the old atom count means at the end.
    pub before: AtomId,
    /// Its residue.
    pub residue: ResidueRef,
    /// Atom name.
    pub name: String,
    /// Element.
    pub element: Element,
    /// Serial number.
    pub serial: i32,
    /// Alternate location; 0 for none.
    pub alt_loc: u8,
    /// HETATM record.
    pub het: bool,
    /// Occupancy (sent in hundredths).
    pub occupancy: f32,
    /// B-factor in Å² (sent in hundredths).
    pub b_factor: f32,
    /// Formal charge.
    pub formal_charge: i8,
    /// Position in Å in the complex's frame (sent quantized at the stream's precision).
    pub position: Vec3,
    /// Colour (RGBA8).
    pub color: u32,
    /// Drawn radius in Å.
    pub radius: f32,
    /// Representation.
    pub representation: Representation,
    /// Selected.
    pub selected: bool,
    /// Label shown.
    pub labeled: bool,
    /// Label text.
    pub label: Option<String>,
}

impl NewAtom {
    /// An atom drawn in the default style (ball-and-stick, CPK colour), with occupancy 1,
    /// B-factor 0, serial 0, no alt loc, no charge, not selected, no label.
    #[must_use]
    pub fn new(before: AtomId, residue: ResidueRef, name: &str, element: Element, position: Vec3) -> Self {
        let representation = Representation::default();
        Self {
            before,
            residue,
            name: name.to_owned(),
            element,
            serial: 0,
            alt_loc: 0,
            het: false,
            occupancy: 1.0,
            b_factor: 0.0,
            formal_charge: 0,
            position,
            color: pack_rgba(element.cpk_color(), 255),
            radius: crate::style::atom_radius(element, representation),
            representation,
            selected: false,
            labeled: false,
            label: None,
        }
    }
}

/// A bond to insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewBond {
    /// One atom.
    pub a: AtomRef,
    /// The other atom.
    pub b: AtomRef,
    /// Bond order.
    pub kind: BondKind,
}

/// Atoms, residues, chains and bonds to insert or remove (see the module docs for the rules).
/// Removal lists may be in any order and may repeat ids; insertion lists must be sorted by
/// `before`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopologyEdit {
    /// Atoms to remove.
    pub remove_atoms: Vec<AtomId>,
    /// Residues to remove (each with all its atoms in `remove_atoms`).
    pub remove_residues: Vec<ResidueId>,
    /// Chains to remove (each with all its residues in `remove_residues`).
    pub remove_chains: Vec<ChainId>,
    /// Bonds to remove (bonds of removed atoms go without being listed).
    pub remove_bonds: Vec<BondId>,
    /// Chains to insert.
    pub new_chains: Vec<NewChain>,
    /// Residues to insert.
    pub new_residues: Vec<NewResidue>,
    /// Atoms to insert.
    pub new_atoms: Vec<NewAtom>,
    /// Bonds to insert.
    pub new_bonds: Vec<NewBond>,
}

/// Where an item of the edited topology comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    Old(u32),
    New(u32),
}

/// Old and new items merged in their new order.
struct Order {
    order: Vec<Src>,
    /// New index of each old item; `u32::MAX` when removed.
    old_to_new: Vec<u32>,
    /// New index of each inserted item.
    new_to_new: Vec<u32>,
}

impl Order {
    fn merge(gone: &[bool], before: &[usize]) -> Result<Self, &'static str> {
        let old = gone.len();
        let mut order = Vec::with_capacity(old + before.len());
        let mut old_to_new = vec![u32::MAX; old];
        let mut new_to_new = vec![0; before.len()];
        let mut j = 0;
        let index = |len: usize| u32::try_from(len).map_err(|_| "edited topology too large");
        for i in 0..=old {
            while j < before.len() && before[j] == i {
                new_to_new[j] = index(order.len())?;
                order.push(Src::New(index(j)?));
                j += 1;
            }
            if i < old && !gone[i] {
                old_to_new[i] = index(order.len())?;
                order.push(Src::Old(index(i)?));
            }
        }
        if j != before.len() {
            return Err("inserted items are not sorted by the item they go before");
        }
        Ok(Self { order, old_to_new, new_to_new })
    }

    fn gather<T: Clone>(&self, old: &[T], new: impl Fn(usize) -> T) -> Vec<T> {
        self.order
            .iter()
            .map(|s| match *s {
                Src::Old(i) => old[i as usize].clone(),
                Src::New(j) => new(j as usize),
            })
            .collect()
    }
}

/// A validated edit of one topology: the new topology and where each new atom comes from.
pub(crate) struct EditPlan {
    topology: Topology,
    atoms: Order,
    topology_index: usize,
}

impl EditPlan {
    /// Number of atoms after the edit.
    pub(crate) fn atom_count(&self) -> usize {
        self.atoms.order.len()
    }
}

fn mask(n: usize, ids: impl Iterator<Item = usize>, what: &'static str) -> Result<Vec<bool>, &'static str> {
    let mut m = vec![false; n];
    for i in ids {
        *m.get_mut(i).ok_or(what)? = true;
    }
    Ok(m)
}

fn sorted_before(before: impl Iterator<Item = usize>, old: usize) -> Result<Vec<usize>, &'static str> {
    let v: Vec<usize> = before.collect();
    if v.windows(2).any(|w| w[0] > w[1]) || v.last().is_some_and(|&b| b > old) {
        return Err("inserted items are not sorted by the item they go before, or go past the end");
    }
    Ok(v)
}

fn non_decreasing(v: &[u32], what: &'static str) -> Result<(), &'static str> {
    if v.windows(2).any(|w| w[0] > w[1]) { Err(what) } else { Ok(()) }
}

fn offsets(owner: &[u32], groups: usize) -> Result<Vec<u32>, &'static str> {
    let mut out = vec![0u32; groups + 1];
    for &g in owner {
        out[g as usize + 1] += 1;
    }
    for i in 0..groups {
        out[i + 1] += out[i];
    }
    Ok(out)
}

impl TopologyEdit {
    /// Whether the edit changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.remove_atoms.is_empty()
            && self.remove_residues.is_empty()
            && self.remove_chains.is_empty()
            && self.remove_bonds.is_empty()
            && self.new_chains.is_empty()
            && self.new_residues.is_empty()
            && self.new_atoms.is_empty()
            && self.new_bonds.is_empty()
    }

    /// Adds residue `r` of `topology` and all its atoms to the removal lists.
    pub fn remove_residue(&mut self, topology: &Topology, r: ResidueId) {
        if r.index() < topology.residue_count() {
            self.remove_atoms.extend(topology.residue_atoms(r).map(AtomId::from_index));
        }
        self.remove_residues.push(r);
    }

    /// Applies the edit to the topology of `complex`'s current model, its display state and
    /// the positions (and per-model B-factor and occupancy overrides) of every model sharing
    /// that topology; inserted atoms take their own values in every such model. Checks
    /// everything first: on [`CodecError::InvalidInput`] nothing changes.
    pub fn apply_to(&self, complex: &mut Complex) -> Result<(), CodecError> {
        let plan = self.plan(complex).map_err(CodecError::InvalidInput)?;
        self.commit(plan, complex);
        Ok(())
    }

    /// Checks the edit against `complex` and builds the new topology.
    pub(crate) fn plan(&self, complex: &Complex) -> Result<EditPlan, &'static str> {
        let ti = complex.models.get(complex.current_model).ok_or("complex has no current model")?.topology;
        let t = complex.topologies.get(ti).ok_or("model refers to a missing topology")?;
        let d = complex.displays.get(ti).ok_or("topology without a display state")?;
        let n = t.atom_count();
        t.validate().map_err(|_| "topology is inconsistent")?;
        let d_lens = [d.color.len(), d.radius.len(), d.representation.len(), d.selected.len(), d.labeled.len()];
        if d_lens.iter().any(|&l| l != n) || d.label_text.keys().next_back().is_some_and(|k| k.index() >= n) {
            return Err("display state does not match the topology");
        }
        for m in complex.models.iter().filter(|m| m.topology == ti) {
            let o = |v: &Option<Vec<f32>>| v.as_ref().is_none_or(|v| v.len() == n);
            if m.positions.len() != n || !o(&m.b_factor) || !o(&m.occupancy) {
                return Err("a model's columns do not match its topology");
            }
        }
        let (topology, atoms) = self.build(t)?;
        Ok(EditPlan { topology, atoms, topology_index: ti })
    }

    /// Builds the edited topology of `t` and the new atom order.
    fn build(&self, t: &Topology) -> Result<(Topology, Order), &'static str> {
        let (n, nr, nc, nb) = (t.atom_count(), t.residue_count(), t.chain_count(), t.bonds.len());
        let gone_atom = mask(n, self.remove_atoms.iter().map(|a| a.index()), "removed atom does not exist")?;
        let gone_res = mask(nr, self.remove_residues.iter().map(|r| r.index()), "removed residue does not exist")?;
        let gone_chain = mask(nc, self.remove_chains.iter().map(|c| c.index()), "removed chain does not exist")?;
        let gone_bond = mask(nb, self.remove_bonds.iter().map(|b| b.index()), "removed bond does not exist")?;
        for (r, _) in gone_res.iter().enumerate().filter(|g| *g.1) {
            if t.residue_atoms(ResidueId::from_index(r)).any(|a| !gone_atom[a]) {
                return Err("a removed residue keeps some of its atoms");
            }
        }
        for (c, _) in gone_chain.iter().enumerate().filter(|g| *g.1) {
            if t.chain_residues(ChainId::from_index(c)).any(|r| !gone_res[r]) {
                return Err("a removed chain keeps some of its residues");
            }
        }

        let chains = Order::merge(&gone_chain, &sorted_before(self.new_chains.iter().map(|c| c.before.index()), nc)?)?;
        let chain_of = |c: ChainRef| -> Result<u32, &'static str> {
            match c {
                ChainRef::Existing(c) => chains
                    .old_to_new
                    .get(c.index())
                    .copied()
                    .filter(|&i| i != u32::MAX)
                    .ok_or("residue of a removed or missing chain"),
                ChainRef::New(j) => chains.new_to_new.get(j as usize).copied().ok_or("residue of a missing new chain"),
            }
        };
        let new_res_chain =
            self.new_residues.iter().map(|r| chain_of(r.chain)).collect::<Result<Vec<u32>, &'static str>>()?;
        let residues =
            Order::merge(&gone_res, &sorted_before(self.new_residues.iter().map(|r| r.before.index()), nr)?)?;
        let residue_chain =
            residues.gather(&t.residues.chain.iter().map(|c| c.0).collect::<Vec<_>>(), |j| new_res_chain[j]);
        // Old residues of kept chains only (a removed chain lost all its residues).
        let residue_chain: Vec<u32> = residue_chain
            .iter()
            .zip(&residues.order)
            .map(|(&c, s)| if matches!(s, Src::Old(_)) { chains.old_to_new[c as usize] } else { c })
            .collect();
        non_decreasing(&residue_chain, "edit breaks the contiguity of a chain's residues")?;

        let residue_of = |r: ResidueRef| -> Result<u32, &'static str> {
            match r {
                ResidueRef::Existing(r) => residues
                    .old_to_new
                    .get(r.index())
                    .copied()
                    .filter(|&i| i != u32::MAX)
                    .ok_or("atom of a removed or missing residue"),
                ResidueRef::New(j) => {
                    residues.new_to_new.get(j as usize).copied().ok_or("atom of a missing new residue")
                }
            }
        };
        let new_atom_res =
            self.new_atoms.iter().map(|a| residue_of(a.residue)).collect::<Result<Vec<u32>, &'static str>>()?;
        let atoms = Order::merge(&gone_atom, &sorted_before(self.new_atoms.iter().map(|a| a.before.index()), n)?)?;
        let atom_res: Vec<u32> = atoms
            .order
            .iter()
            .map(|s| match *s {
                Src::Old(i) => residues.old_to_new[t.atoms.residue[i as usize].index()],
                Src::New(j) => new_atom_res[j as usize],
            })
            .collect();
        non_decreasing(&atom_res, "edit breaks the contiguity of a residue's atoms")?;

        let mut nt = Topology { strings: t.strings.clone(), ..Topology::default() };
        let chain_names: Vec<StrId> = self.new_chains.iter().map(|c| nt.strings.intern(&c.name)).collect();
        let res_names: Vec<StrId> = self.new_residues.iter().map(|r| nt.strings.intern(&r.name)).collect();
        let atom_names: Vec<StrId> = self.new_atoms.iter().map(|a| nt.strings.intern(&a.name)).collect();

        nt.chains.name = chains.gather(&t.chains.name, |j| chain_names[j]);
        nt.chains.residue_offsets = offsets(&residue_chain, chains.order.len())?;
        let r = &t.residues;
        let nrs = &self.new_residues;
        nt.residues.name = residues.gather(&r.name, |j| res_names[j]);
        nt.residues.seq_num = residues.gather(&r.seq_num, |j| nrs[j].seq_num);
        nt.residues.ins_code = residues.gather(&r.ins_code, |j| nrs[j].ins_code);
        nt.residues.secondary = residues.gather(&r.secondary, |j| nrs[j].secondary);
        nt.residues.ribbon = residues.gather(&r.ribbon, |j| nrs[j].ribbon);
        nt.residues.chain = residue_chain.iter().map(|&c| ChainId(c)).collect();
        nt.residues.atom_offsets = offsets(&atom_res, residues.order.len())?;
        let a = &t.atoms;
        let na = &self.new_atoms;
        nt.atoms.name = atoms.gather(&a.name, |j| atom_names[j]);
        nt.atoms.element = atoms.gather(&a.element, |j| na[j].element);
        nt.atoms.serial = atoms.gather(&a.serial, |j| na[j].serial);
        nt.atoms.alt_loc = atoms.gather(&a.alt_loc, |j| na[j].alt_loc);
        nt.atoms.het = atoms.gather(&a.het, |j| na[j].het);
        nt.atoms.occupancy = atoms.gather(&a.occupancy, |j| na[j].occupancy);
        nt.atoms.b_factor = atoms.gather(&a.b_factor, |j| na[j].b_factor);
        nt.atoms.formal_charge = atoms.gather(&a.formal_charge, |j| na[j].formal_charge);
        nt.atoms.residue = atom_res.iter().map(|&r| ResidueId(r)).collect();

        let mut seen: HashSet<(u32, u32)> = HashSet::with_capacity(nb + self.new_bonds.len());
        let b = &t.bonds;
        for (((&gone, x), y), &kind) in gone_bond.iter().zip(&b.a).zip(&b.b).zip(&b.kind) {
            if gone || gone_atom[x.index()] || gone_atom[y.index()] {
                continue;
            }
            let (x, y) = (atoms.old_to_new[x.index()], atoms.old_to_new[y.index()]);
            seen.insert((x, y));
            nt.bonds.push(AtomId(x), AtomId(y), kind);
        }
        let atom_of = |r: AtomRef| -> Result<u32, &'static str> {
            match r {
                AtomRef::Existing(a) => atoms
                    .old_to_new
                    .get(a.index())
                    .copied()
                    .filter(|&i| i != u32::MAX)
                    .ok_or("bond to a removed or missing atom"),
                AtomRef::New(j) => atoms.new_to_new.get(j as usize).copied().ok_or("bond to a missing new atom"),
            }
        };
        for nbd in &self.new_bonds {
            let (x, y) = (atom_of(nbd.a)?, atom_of(nbd.b)?);
            let (x, y) = (x.min(y), x.max(y));
            if x == y {
                return Err("bond joins an atom to itself");
            }
            if !seen.insert((x, y)) {
                return Err("bond already exists");
            }
            nt.bonds.push(AtomId(x), AtomId(y), nbd.kind);
        }
        nt.validate().map_err(|_| "edited topology is inconsistent")?;
        Ok((nt, atoms))
    }

    /// The display state after the edit: kept atoms keep theirs, inserted atoms take their own.
    pub(crate) fn remap_display(&self, plan: &EditPlan, d: &DisplayState) -> DisplayState {
        let o = &plan.atoms;
        let na = &self.new_atoms;
        let mut label_text: std::collections::BTreeMap<AtomId, String> = d
            .label_text
            .iter()
            .filter_map(|(id, s)| {
                let k = o.old_to_new.get(id.index()).copied().filter(|&k| k != u32::MAX)?;
                Some((AtomId(k), s.clone()))
            })
            .collect();
        for (j, a) in na.iter().enumerate() {
            if let Some(s) = &a.label {
                label_text.insert(AtomId(o.new_to_new[j]), s.clone());
            }
        }
        DisplayState {
            color: o.gather(&d.color, |j| na[j].color),
            radius: o.gather(&d.radius, |j| na[j].radius),
            representation: o.gather(&d.representation, |j| na[j].representation),
            selected: o.gather(&d.selected, |j| na[j].selected),
            labeled: o.gather(&d.labeled, |j| na[j].labeled),
            label_text,
        }
    }

    /// Quantized positions after the edit; `added` holds the inserted atoms' (in list order).
    pub(crate) fn remap_quantized(plan: &EditPlan, q: &Quantized, added: &Quantized) -> Quantized {
        let o = &plan.atoms;
        Quantized {
            x: o.gather(&q.x, |j| added.x[j]),
            y: o.gather(&q.y, |j| added.y[j]),
            z: o.gather(&q.z, |j| added.z[j]),
        }
    }

    /// Writes a plan made by [`Self::plan`] on this `complex` into it.
    pub(crate) fn commit(&self, plan: EditPlan, complex: &mut Complex) {
        let ti = plan.topology_index;
        let na = &self.new_atoms;
        let o = &plan.atoms;
        for m in complex.models.iter_mut().filter(|m| m.topology == ti) {
            m.positions = o.gather(&m.positions, |j| na[j].position);
            if let Some(b) = &m.b_factor {
                m.b_factor = Some(o.gather(b, |j| na[j].b_factor));
            }
            if let Some(occ) = &m.occupancy {
                m.occupancy = Some(o.gather(occ, |j| na[j].occupancy));
            }
        }
        if let Some(d) = complex.displays.get_mut(ti) {
            *d = self.remap_display(&plan, d);
        }
        if let Some(t) = complex.topologies.get_mut(ti) {
            *t = plan.topology;
        }
    }

    /// Appends the payload of this edit of `t`; `added` holds the inserted atoms' quantized
    /// positions (in list order). The edit must have passed [`Self::plan`] on `t`.
    pub(crate) fn encode<'a>(&'a self, t: &Topology, added: &Quantized, w: &mut Writer) {
        for c in [t.atom_count(), t.residue_count(), t.chain_count(), t.bonds.len(), t.strings.len()] {
            w.varint(c as u64);
        }
        let sorted = |ids: &mut dyn Iterator<Item = u32>| -> Vec<IdRange> {
            let mut v: Vec<u32> = ids.collect();
            v.sort_unstable();
            v.dedup();
            ranges_of(v)
        };
        write_ranges(w, &sorted(&mut self.remove_atoms.iter().map(|a| a.0)));
        write_ranges(w, &sorted(&mut self.remove_residues.iter().map(|a| a.0)));
        write_ranges(w, &sorted(&mut self.remove_chains.iter().map(|a| a.0)));
        write_ranges(w, &sorted(&mut self.remove_bonds.iter().map(|a| a.0)));

        let mut extra: Vec<&str> = Vec::new();
        let mut id_of = |s: &'a str| -> u64 {
            if let Some(id) = t.strings.find(s) {
                return u64::from(id.0);
            }
            let k = extra.iter().position(|e| *e == s).unwrap_or_else(|| {
                extra.push(s);
                extra.len() - 1
            });
            (t.strings.len() + k) as u64
        };
        let chain_ids: Vec<u64> = self.new_chains.iter().map(|c| id_of(&c.name)).collect();
        let res_ids: Vec<u64> = self.new_residues.iter().map(|r| id_of(&r.name)).collect();
        let atom_ids: Vec<u64> = self.new_atoms.iter().map(|a| id_of(&a.name)).collect();
        w.varint(extra.len() as u64);
        for s in &extra {
            w.bytes(s.as_bytes());
        }

        let chain_ref = |c: ChainRef| match c {
            ChainRef::Existing(c) => u64::from(c.0) << 1,
            ChainRef::New(j) => u64::from(j) << 1 | 1,
        };
        let residue_ref = |r: ResidueRef| match r {
            ResidueRef::Existing(r) => u64::from(r.0) << 1,
            ResidueRef::New(j) => u64::from(j) << 1 | 1,
        };
        let atom_ref = |a: AtomRef| match a {
            AtomRef::Existing(a) => u64::from(a.0) << 1,
            AtomRef::New(j) => u64::from(j) << 1 | 1,
        };
        let zv = |w: &mut Writer, v: i32| w.varint(u64::from(zigzag(v)));

        w.varint(self.new_chains.len() as u64);
        let mut prev = 0u32;
        for (c, &name) in self.new_chains.iter().zip(&chain_ids) {
            w.varint(u64::from(c.before.0 - prev));
            prev = c.before.0;
            w.varint(name);
        }
        w.varint(self.new_residues.len() as u64);
        let mut prev = 0u32;
        for (r, &name) in self.new_residues.iter().zip(&res_ids) {
            w.varint(u64::from(r.before.0 - prev));
            prev = r.before.0;
            w.varint(chain_ref(r.chain));
            w.varint(name);
            zv(w, r.seq_num);
            w.u8(r.ins_code);
            w.u8(r.secondary as u8);
            w.u8(r.ribbon.0);
        }
        w.varint(self.new_atoms.len() as u64);
        let mut prev = 0u32;
        for (a, &name) in self.new_atoms.iter().zip(&atom_ids) {
            w.varint(u64::from(a.before.0 - prev));
            prev = a.before.0;
            w.varint(residue_ref(a.residue));
            w.varint(name);
            w.u8(a.element.0);
            zv(w, a.serial);
            w.u8(a.alt_loc);
            w.u8(u8::from(a.het));
            zv(w, hundredths(a.occupancy));
            zv(w, hundredths(a.b_factor));
            w.u8(a.formal_charge.to_le_bytes()[0]);
            w.u32(a.color);
            w.f32(a.radius);
            w.u8(a.representation as u8);
            w.u8(u8::from(a.selected) | u8::from(a.labeled) << 1 | u8::from(a.label.is_some()) << 2);
            if let Some(s) = &a.label {
                w.bytes(s.as_bytes());
            }
        }
        w.varint(self.new_bonds.len() as u64);
        for b in &self.new_bonds {
            w.varint(atom_ref(b.a));
            w.varint(atom_ref(b.b));
            w.u8(b.kind as u8);
        }
        positions::encode_delta(&Quantized::zeros(added.len()), added, true, w);
    }
}

/// Reads a varint that must fit in `u32`.
fn u32v(r: &mut Reader<'_>) -> Result<u32, CodecError> {
    u32::try_from(r.varint()?).map_err(|_| CodecError::Corrupt("value does not fit in 32 bits"))
}

fn i32z(r: &mut Reader<'_>) -> Result<i32, CodecError> {
    Ok(unzigzag(u32v(r)?))
}

/// Reads a `before` delta, accumulating into `prev`, bounded by `old` (the end).
fn before(r: &mut Reader<'_>, prev: &mut u32, old: usize) -> Result<u32, CodecError> {
    let v = u64::from(*prev) + r.varint()?.min(u64::MAX >> 1);
    if v > old as u64 {
        return Err(CodecError::Corrupt("inserted item goes past the end"));
    }
    *prev = u32::try_from(v).map_err(|_| CodecError::Corrupt("inserted item goes past the end"))?;
    Ok(*prev)
}

fn utf8(b: &[u8]) -> Result<String, CodecError> {
    std::str::from_utf8(b).map(str::to_owned).map_err(|_| CodecError::Corrupt("string is not UTF-8"))
}

fn flag(v: u8, what: &'static str) -> Result<bool, CodecError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CodecError::Corrupt(what)),
    }
}

/// Decodes a topology-delta payload against `t`, the topology held, for a header declaring
/// `new_count` atoms after the edit. Returns the edit (inserted atoms at their dequantized
/// positions) and the inserted atoms' quantized positions. Every count is bounded by the bytes
/// left and the counts of `t` before allocating; whether the edit fits `t` is checked when it
/// is planned.
pub fn decode(
    payload: &[u8],
    t: &Topology,
    new_count: usize,
    precision: u8,
    limits: &Limits,
) -> Result<(TopologyEdit, Quantized), CodecError> {
    let mut r = Reader::new(payload);
    let (n, nr, nc, nb, ns) = (t.atom_count(), t.residue_count(), t.chain_count(), t.bonds.len(), t.strings.len());
    for held in [n, nr, nc, nb, ns] {
        if r.varint()? != held as u64 {
            return Err(CodecError::Corrupt("topology delta against a different topology"));
        }
    }
    let ids = |r: &mut Reader<'_>, n: usize| -> Result<Vec<u32>, CodecError> {
        Ok(expand(&read_ranges(r, n)?).map(|i| i as u32).collect())
    };
    let mut e = TopologyEdit {
        remove_atoms: ids(&mut r, n)?.into_iter().map(AtomId).collect(),
        remove_residues: ids(&mut r, nr)?.into_iter().map(ResidueId).collect(),
        remove_chains: ids(&mut r, nc)?.into_iter().map(ChainId).collect(),
        remove_bonds: ids(&mut r, nb)?.into_iter().map(BondId).collect(),
        ..TopologyEdit::default()
    };

    let s = r.count(r.remaining())?;
    let mut extra = Vec::with_capacity(s);
    for _ in 0..s {
        extra.push(utf8(r.bytes(limits.max_string)?)?);
    }
    let name = |r: &mut Reader<'_>| -> Result<String, CodecError> {
        let id = r.varint()?;
        let id = usize::try_from(id).map_err(|_| CodecError::Corrupt("string id out of range"))?;
        if id < ns {
            Ok(t.strings.get(StrId::from_index(id)).to_owned())
        } else {
            extra.get(id - ns).cloned().ok_or(CodecError::Corrupt("string id out of range"))
        }
    };
    let refs = |r: &mut Reader<'_>| -> Result<(u32, bool), CodecError> {
        let v = r.varint()?;
        Ok((u32::try_from(v >> 1).map_err(|_| CodecError::Corrupt("reference out of range"))?, v & 1 == 1))
    };

    let c = r.count(r.remaining() / 2)?;
    let mut prev = 0;
    for _ in 0..c {
        let b = before(&mut r, &mut prev, nc)?;
        e.new_chains.push(NewChain { before: ChainId(b), name: name(&mut r)? });
    }
    let k = r.count(r.remaining() / 7)?;
    let mut prev = 0;
    for _ in 0..k {
        let b = before(&mut r, &mut prev, nr)?;
        let (i, new) = refs(&mut r)?;
        let chain = if new { ChainRef::New(i) } else { ChainRef::Existing(ChainId(i)) };
        let name = name(&mut r)?;
        let seq_num = i32z(&mut r)?;
        let ins_code = r.u8()?;
        let secondary = match r.u8()? {
            0 => SecondaryStructure::Coil,
            1 => SecondaryStructure::Helix,
            2 => SecondaryStructure::Sheet,
            3 => SecondaryStructure::Turn,
            _ => return Err(CodecError::Corrupt("secondary structure")),
        };
        let ribbon = RibbonFlags(r.u8()?);
        e.new_residues.push(NewResidue { before: ResidueId(b), chain, name, seq_num, ins_code, secondary, ribbon });
    }
    let m = r.count(new_count.min(r.remaining() / 20))?;
    let mut prev = 0;
    for _ in 0..m {
        let b = before(&mut r, &mut prev, n)?;
        let (i, new) = refs(&mut r)?;
        let residue = if new { ResidueRef::New(i) } else { ResidueRef::Existing(ResidueId(i)) };
        let name = name(&mut r)?;
        let element = Element(r.u8()?);
        let serial = i32z(&mut r)?;
        let alt_loc = r.u8()?;
        let het = flag(r.u8()?, "het flag")?;
        let occupancy = from_hundredths(i32z(&mut r)?);
        let b_factor = from_hundredths(i32z(&mut r)?);
        let formal_charge = i8::from_le_bytes([r.u8()?]);
        let color = r.u32()?;
        let radius = r.f32()?;
        let representation = Representation::from_u8(r.u8()?).ok_or(CodecError::Corrupt("representation"))?;
        let flags = r.u8()?;
        if flags & !7 != 0 {
            return Err(CodecError::Corrupt("unknown display flag bits"));
        }
        let label = if flags & 4 != 0 { Some(utf8(r.bytes(limits.max_string)?)?) } else { None };
        e.new_atoms.push(NewAtom {
            before: AtomId(b),
            residue,
            name,
            element,
            serial,
            alt_loc,
            het,
            occupancy,
            b_factor,
            formal_charge,
            position: Vec3::ZERO,
            color,
            radius,
            representation,
            selected: flags & 1 != 0,
            labeled: flags & 2 != 0,
            label,
        });
    }
    let removed = e.remove_atoms.len();
    if n - removed + m != new_count {
        return Err(CodecError::Corrupt("atom counts of the topology delta do not add up to its header"));
    }
    let nbonds = r.count(r.remaining() / 3)?;
    for _ in 0..nbonds {
        let mut end = || -> Result<AtomRef, CodecError> {
            let (i, new) = refs(&mut r)?;
            Ok(if new { AtomRef::New(i) } else { AtomRef::Existing(AtomId(i)) })
        };
        let (a, b) = (end()?, end()?);
        let kind = BondKind::from_u8(r.u8()?).ok_or(CodecError::Corrupt("bond kind"))?;
        e.new_bonds.push(NewBond { a, b, kind });
    }
    let rest = &payload[r.position()..];
    positions::validate_delta(rest, m)?;
    let mut q = Quantized::zeros(m);
    let mut pos = vec![Vec3::ZERO; m];
    positions::apply_delta(rest, &mut q, precision, &mut pos[..])?;
    for (a, p) in e.new_atoms.iter_mut().zip(pos) {
        a.position = p;
    }
    Ok((e, q))
}

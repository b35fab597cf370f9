//! The window's scene on the CPU: loaded documents laid out in shared instance buffers, and the
//! workspace tree's operations on them (visibility and representation per complex, chain or
//! residue).
//!
//! Documents are local files ([`DocSource::Local`]) or, in a session, the room's complexes
//! ([`DocSource::Room`], kept in step by [`crate::session`]).
//!
//! Buffer layout: transform 0 is the identity (the workspace, where shapes anchored to the
//! workspace live); document `k` has transform `k + 1`, its atoms after those of documents
//! `0..k` and pick ids after theirs (from 1). Tree changes keep every count and offset, so the
//! GPU buffers are rewritten in place (`Renderer::write_atoms` of the returned range), never
//! re-created; only adding or removing a document (or a room complex changing its atom or bond
//! count, [`SceneData::relayout`]) re-creates them.

use std::ops::Range;
use std::path::{Path, PathBuf};

use glam::Mat4;
use molstream_engine::gpu::{
    ATOM_FLAG_REPR_MASK, ATOM_FLAG_SELECTED, AtomInstance, BondInstance, InstanceBase, build_atom_instances,
    build_bond_instances,
};
use molstream_engine::io::{self, LoadOptions, LoadTimings};
use molstream_engine::{AtomId, ChainId, Complex, ComplexId, Representation, ResidueId, Style};

use crate::render::{AnchorMap, ComplexSlot};
use crate::{BUNDLED_NAME, BUNDLED_STRUCTURE};

/// One loaded structure and where its atoms sit in the shared buffers.
#[derive(Clone, Debug)]
pub struct Document {
    /// File name as given.
    pub name: String,
    /// The structure.
    pub complex: Complex,
    /// Its atom offset, pick-id base and transform index in the shared buffers.
    pub base: InstanceBase,
    /// Atoms hidden from the workspace tree (their representation is kept for when they are
    /// shown again).
    pub hidden: Vec<bool>,
    /// Where the structure comes from: a local file, or the room of a session.
    pub source: DocSource,
}

/// Where a document comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocSource {
    /// A file opened by this viewer: only this viewer shows it. Its complex id is
    /// [`LOCAL_IDS`] or above, apart from every room id.
    Local,
    /// A complex of the session's room (its id is the room's): kept in step with the room by
    /// [`crate::session`].
    Room,
}

/// First complex id of local documents: room complex ids are below it (a room's complexes
/// travel on channels `ROOM_CHANNELS + id`, so their ids are below `ROOM_CHANNELS`), so plugin
/// shapes anchored to a room complex can never land on a local file.
pub const LOCAL_IDS: u32 = molstream_net::proto::ROOM_CHANNELS;

impl Document {
    /// Atoms of the current model.
    #[must_use]
    pub fn atom_count(&self) -> usize {
        self.complex.current().topology.atom_count()
    }
}

/// A node of the workspace tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A whole document (complex).
    Complex,
    /// A chain segment.
    Chain(ChainId),
    /// A residue.
    Residue(ResidueId),
}

/// A node of one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// Index of the document in [`SceneData::documents`].
    pub doc: usize,
    /// The node.
    pub node: Node,
}

/// What the tree changes on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeChange {
    /// Shows or hides every atom of the node.
    Visible(bool),
    /// Gives every atom of the node a representation.
    Representation(Representation),
}

/// A change asked for in the workspace tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeAction {
    /// The node changed.
    pub target: NodeRef,
    /// How.
    pub change: NodeChange,
}

/// Visibility of a node's atoms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Every atom shown.
    All,
    /// Some shown, some hidden.
    Some,
    /// Every atom hidden.
    None,
}

/// What the tree shows for a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// Whether its atoms are shown.
    pub visible: Visibility,
    /// Their representation when they all share one.
    pub representation: Option<Representation>,
}

/// The scene on the CPU: the documents and the instance arrays the GPU buffers mirror.
#[derive(Clone, Debug, Default)]
pub struct SceneData {
    /// Loaded structures, in buffer order.
    pub documents: Vec<Document>,
    /// Atoms of every document's current model, back to back.
    pub atoms: Vec<AtomInstance>,
    /// Bonds, with atom indices into [`SceneData::atoms`].
    pub bonds: Vec<BondInstance>,
    /// Transform 0 (identity, the workspace), then one per document (its complex's position
    /// and rotation).
    pub transforms: Vec<Mat4>,
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl SceneData {
    /// Lays out `complexes` (name, complex) in shared buffers (see the module docs). Complexes
    /// without an id get `ComplexId(k + 1)`.
    #[must_use]
    pub fn new(complexes: Vec<(String, Complex)>) -> Self {
        let mut s = Self { transforms: vec![Mat4::IDENTITY], ..Self::default() };
        for (name, complex) in complexes {
            s.push(name, complex);
        }
        s
    }

    /// Appends a local document after the others (the GPU buffers must then be set again).
    /// A complex without an id gets the next local id ([`LOCAL_IDS`] for the first).
    pub fn push(&mut self, name: String, mut complex: Complex) {
        if complex.id == ComplexId(0) {
            let next = self.documents.iter().map(|d| d.complex.id.0).filter(|&id| id >= LOCAL_IDS).max();
            complex.id = ComplexId(next.map_or(LOCAL_IDS, |n| n.saturating_add(1)));
        }
        let hidden = vec![false; complex.current().topology.atom_count()];
        self.push_document(Document { name, complex, base: InstanceBase::SOLO, hidden, source: DocSource::Local });
    }

    /// Appends a document of the room (same layout rules as [`SceneData::push`]).
    pub fn push_room(&mut self, complex: Complex) {
        let hidden = vec![false; complex.current().topology.atom_count()];
        let name = complex.name.clone();
        self.push_document(Document { name, complex, base: InstanceBase::SOLO, hidden, source: DocSource::Room });
    }

    /// Lays `d` out after the other documents: its base is set here, its hidden atoms (and a
    /// complex that is not visible) are applied.
    fn push_document(&mut self, mut d: Document) {
        let k = self.documents.len();
        let offset = u32_of(self.atoms.len());
        d.base = InstanceBase { atom_offset: offset, pick_base: offset.saturating_add(1), transform: u32_of(k + 1) };
        if d.hidden.len() != d.atom_count() {
            d.hidden = vec![false; d.atom_count()];
        }
        let view = d.complex.current();
        build_atom_instances(view, d.base, &mut self.atoms);
        build_bond_instances(view, d.base, &mut self.bonds);
        let visible = d.complex.visible;
        for (a, &h) in self.atoms[offset as usize..].iter_mut().zip(&d.hidden) {
            if h || !visible {
                a.flags = (a.flags & !ATOM_FLAG_REPR_MASK) | Representation::Hidden as u32;
            }
        }
        self.transforms.push(Mat4::from_rotation_translation(d.complex.rotation, d.complex.position));
        self.documents.push(d);
    }

    /// Lays every document out again (after one was added, removed or changed its atom or
    /// bond count): offsets, pick ids and transforms follow the document order; hidden atoms
    /// and selection flags are kept for documents whose atom count did not change. The GPU
    /// buffers must then be set again.
    pub fn relayout(&mut self) {
        let old_atoms = std::mem::take(&mut self.atoms);
        let documents = std::mem::take(&mut self.documents);
        self.bonds.clear();
        self.transforms = vec![Mat4::IDENTITY];
        for d in documents {
            let (start, n) = (d.base.atom_offset as usize, d.atom_count());
            let selected: Option<Vec<bool>> = old_atoms
                .get(start..start + n)
                .filter(|_| d.hidden.len() == n)
                .map(|old| old.iter().map(|a| a.flags & ATOM_FLAG_SELECTED != 0).collect());
            let offset = self.atoms.len();
            self.push_document(d);
            if let Some(sel) = selected {
                for (a, s) in self.atoms[offset..].iter_mut().zip(sel) {
                    if s {
                        a.flags |= ATOM_FLAG_SELECTED;
                    }
                }
            }
        }
    }

    /// Index of the document showing complex `id`.
    #[must_use]
    pub fn document_of(&self, id: ComplexId) -> Option<usize> {
        self.documents.iter().position(|d| d.complex.id == id)
    }

    /// Where each complex sits, for resolving shape anchors.
    #[must_use]
    pub fn anchor_map(&self) -> AnchorMap {
        let mut map = AnchorMap::new();
        for d in &self.documents {
            let slot = ComplexSlot {
                transform: d.base.transform,
                atom_offset: d.base.atom_offset,
                atom_count: u32_of(d.atom_count()),
            };
            map.insert(d.complex.id, slot);
        }
        map
    }

    /// The document and atom a pick id belongs to.
    #[must_use]
    pub fn locate(&self, pick_id: u32) -> Option<(usize, AtomId)> {
        let k = self.documents.iter().rposition(|d| d.base.pick_base <= pick_id)?;
        let d = &self.documents[k];
        let i = pick_id - d.base.pick_base;
        (usize::try_from(i).ok()? < d.atom_count()).then_some((k, AtomId(i)))
    }

    /// "file chain residue number atom" of a pick id, e.g. `1hvr.pdb A ASP 25 CG`.
    #[must_use]
    pub fn describe(&self, pick_id: u32) -> Option<String> {
        let (k, atom) = self.locate(pick_id)?;
        let d = &self.documents[k];
        let t = d.complex.current().topology;
        let r = t.atoms.residue[atom.index()];
        Some(format!(
            "{} {} {} {}",
            d.name,
            t.chain_name(t.residues.chain[r.index()]),
            residue_label(d, r),
            t.atom_name(atom)
        ))
    }

    /// Applies `style` to every document and rebuilds the atom instances in place (same
    /// count, same order: the GPU buffer is rewritten, not re-created). Selection and hidden
    /// atoms are kept.
    pub fn restyle(&mut self, style: Style) {
        for k in 0..self.documents.len() {
            self.documents[k].complex.set_style(style);
            self.rebuild_document(k);
        }
    }

    /// Rebuilds document `k`'s atom instances in place from its display state, keeping the
    /// selection flags and applying its hidden atoms; returns their range in
    /// [`SceneData::atoms`].
    pub fn rebuild_document(&mut self, k: usize) -> Range<usize> {
        let Some(d) = self.documents.get(k) else { return 0..0 };
        let start = d.base.atom_offset as usize;
        let mut fresh = Vec::with_capacity(d.atom_count());
        build_atom_instances(d.complex.current(), d.base, &mut fresh);
        let end = (start + fresh.len()).min(self.atoms.len());
        let visible = d.complex.visible;
        for ((new, old), &hidden) in fresh.iter_mut().zip(&self.atoms[start..end]).zip(&d.hidden) {
            new.flags |= old.flags & ATOM_FLAG_SELECTED;
            if hidden || !visible {
                new.flags = (new.flags & !ATOM_FLAG_REPR_MASK) | Representation::Hidden as u32;
            }
        }
        self.atoms[start..end].copy_from_slice(&fresh[..end - start]);
        start..end
    }

    /// The atoms of a node, as indices into its document's atoms.
    #[must_use]
    pub fn node_atoms(&self, n: NodeRef) -> Range<usize> {
        let Some(d) = self.documents.get(n.doc) else { return 0..0 };
        let t = d.complex.current().topology;
        match n.node {
            Node::Complex => 0..t.atom_count(),
            Node::Chain(c) if c.index() < t.chain_count() => {
                let r = t.chain_residues(c);
                if r.is_empty() {
                    return 0..0;
                }
                let first = t.residue_atoms(ResidueId(u32_of(r.start)));
                let last = t.residue_atoms(ResidueId(u32_of(r.end - 1)));
                first.start..last.end
            }
            Node::Residue(r) if r.index() < t.residue_count() => t.residue_atoms(r),
            _ => 0..0,
        }
    }

    /// Visibility and shared representation of a node's atoms.
    #[must_use]
    pub fn node_state(&self, n: NodeRef) -> NodeState {
        let range = self.node_atoms(n);
        let Some(d) = self.documents.get(n.doc) else {
            return NodeState { visible: Visibility::None, representation: None };
        };
        let hidden = &d.hidden[range.clone()];
        let shown = hidden.iter().filter(|h| !**h).count();
        let visible = match shown {
            0 => Visibility::None,
            s if s == hidden.len() => Visibility::All,
            _ => Visibility::Some,
        };
        let repr = d.complex.current().display.representation.get(range).unwrap_or_default();
        let representation = repr.first().copied().filter(|r| repr.iter().all(|x| x == r));
        NodeState { visible, representation }
    }

    /// Applies a tree change; returns the range of [`SceneData::atoms`] to write to the GPU.
    pub fn apply(&mut self, action: &TreeAction) -> Range<usize> {
        let k = action.target.doc;
        let range = self.node_atoms(action.target);
        let Some(d) = self.documents.get_mut(k) else { return 0..0 };
        match action.change {
            NodeChange::Visible(v) => d.hidden[range].iter_mut().for_each(|h| *h = !v),
            NodeChange::Representation(r) => {
                let elements = &d.complex.current().topology.atoms.element;
                let radii: Vec<f32> =
                    elements[range.clone()].iter().map(|&e| molstream_engine::style::atom_radius(e, r)).collect();
                let Some(display) = d.complex.current_display_mut() else { return 0..0 };
                display.representation[range.clone()].iter_mut().for_each(|x| *x = r);
                display.radius[range].copy_from_slice(&radii);
            }
        }
        self.rebuild_document(k)
    }

    /// Flips the selection of one atom (by pick id); returns its index in
    /// [`SceneData::atoms`].
    pub fn toggle_selection(&mut self, pick_id: u32) -> Option<usize> {
        let (k, atom) = self.locate(pick_id)?;
        let i = self.documents[k].base.atom_offset as usize + atom.index();
        let a = self.atoms.get_mut(i)?;
        a.flags ^= ATOM_FLAG_SELECTED;
        Some(i)
    }
}

/// "ASP 25" or "ASP 25A" (with an insertion code).
#[must_use]
pub fn residue_label(d: &Document, r: ResidueId) -> String {
    let t = d.complex.current().topology;
    let ins = t.residues.ins_code[r.index()];
    let ins = if ins == b' ' || ins == 0 { String::new() } else { char::from(ins).to_string() };
    format!("{} {}{}", t.residue_name(r), t.residues.seq_num[r.index()], ins)
}

/// A loaded file: its display name, structure and load timings.
#[derive(Debug)]
pub struct LoadedFile {
    /// File name.
    pub name: String,
    /// The structure, styled.
    pub complex: Complex,
    /// How long each step took.
    pub timings: LoadTimings,
}

/// Loads one PDB or mmCIF file (optionally gzipped) through the engine, without the pdbtbx
/// cross-check, styled with `style`.
pub fn load_file(path: &Path, style: Style) -> anyhow::Result<LoadedFile> {
    let options = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let loaded = io::load_file(path, &options)?;
    let mut complex = loaded.complex;
    complex.set_style(style);
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    Ok(LoadedFile { name, complex, timings: loaded.timings })
}

/// Loads the files (or the bundled structure), styled ball-and-stick by element.
pub fn load_documents(files: &[PathBuf]) -> anyhow::Result<SceneData> {
    let options = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let mut complexes = Vec::new();
    if files.is_empty() {
        let loaded = io::load_bytes(BUNDLED_STRUCTURE, BUNDLED_NAME, None, &options)?;
        complexes.push((BUNDLED_NAME.to_owned(), loaded.complex));
    }
    for f in files {
        let loaded = load_file(f, Style::default())?;
        complexes.push((loaded.name, loaded.complex));
    }
    Ok(SceneData::new(complexes))
}

#[cfg(test)]
mod tests {
    use molstream_engine::ColorScheme;

    use super::*;

    fn two_documents() -> SceneData {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/");
        load_documents(&[PathBuf::from(format!("{path}1hvr.pdb")), PathBuf::from(format!("{path}5PTI.cif"))]).unwrap()
    }

    #[test]
    fn documents_share_buffers_with_disjoint_pick_ids() {
        let s = two_documents();
        let n0 = s.documents[0].atom_count();
        let n1 = s.documents[1].atom_count();
        assert_eq!(s.atoms.len(), n0 + n1);
        // The workspace identity, then one transform per document.
        assert_eq!(s.transforms.len(), 3);
        assert_eq!(s.transforms[0], Mat4::IDENTITY);
        assert_eq!(s.atoms[0].transform, 1);
        assert_eq!(s.atoms[n0].transform, 2);
        // Bonds of the second document point into its own atoms.
        let b1 = s.documents[0].complex.current().topology.bonds.len();
        assert!(s.bonds[b1..].iter().all(|b| b.atom_a as usize >= n0 && (b.atom_b as usize) < n0 + n1));
        // Pick ids map back to the right document and atom.
        assert_eq!(s.locate(1), Some((0, AtomId(0))));
        let last = u32::try_from(n0 + n1).unwrap();
        assert_eq!(s.locate(last), Some((1, AtomId(u32::try_from(n1 - 1).unwrap()))));
        assert_eq!(s.locate(last + 1), None);
        assert_eq!(s.locate(0), None);
        assert_eq!(s.atoms[n0].pick_id, u32::try_from(n0).unwrap() + 1);
        let d = s.describe(1).unwrap();
        assert!(d.starts_with("1hvr.pdb A "), "{d}");
        assert!(s.describe(s.atoms[n0].pick_id).unwrap().starts_with("5PTI.cif "));
        // Anchors: the local ids of the two files at their transforms and atom offsets.
        let map = s.anchor_map();
        use molstream_engine::shape::{ANCHOR_ATOM, AnchorTarget};
        let second = ComplexId(LOCAL_IDS + 1);
        assert_eq!(s.documents[1].complex.id, second);
        assert_eq!(map.resolve(AnchorTarget::Complex(second)), Some(2));
        assert_eq!(map.resolve(AnchorTarget::Atom(second, AtomId(3))), Some(ANCHOR_ATOM | (u32_of(n0) + 3)));
        assert_eq!(map.resolve(AnchorTarget::Atom(second, AtomId(u32_of(n1)))), None);
        assert_eq!(map.resolve(AnchorTarget::Complex(ComplexId(2))), None, "room ids never reach local files");
    }

    #[test]
    fn restyle_keeps_layout_selection_and_hidden_atoms() {
        let mut s = two_documents();
        let i = s.toggle_selection(5).unwrap();
        assert_eq!(i, 4);
        s.documents[0].hidden[7] = true;
        let before: Vec<u32> = s.atoms.iter().map(|a| a.pick_id).collect();
        s.restyle(Style { representation: Representation::Spacefill, color: ColorScheme::Chain });
        assert_eq!(s.atoms.iter().map(|a| a.pick_id).collect::<Vec<_>>(), before);
        assert!(s.atoms[4].flags & ATOM_FLAG_SELECTED != 0);
        assert_eq!(s.atoms[7].flags & 0xf, Representation::Hidden as u32);
        assert!(
            s.atoms
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != 7)
                .all(|(_, a)| a.flags & 0xf == Representation::Spacefill as u32)
        );
        s.toggle_selection(5);
        assert!(s.atoms[4].flags & ATOM_FLAG_SELECTED == 0);
    }

    #[test]
    fn tree_nodes_hide_show_and_restyle_their_atoms() {
        let mut s = two_documents();
        let t = s.documents[0].complex.current().topology;
        let chain_b = (0..t.chain_count()).map(|c| ChainId(u32_of(c))).find(|&c| t.chain_name(c) == "B").unwrap();
        let residue = ResidueId(10);
        let res_atoms = t.residue_atoms(residue);
        let chain = NodeRef { doc: 0, node: Node::Chain(chain_b) };
        let chain_atoms = s.node_atoms(chain);
        assert!(chain_atoms.len() > 500 && chain_atoms.end <= s.documents[0].atom_count());
        assert!(chain_atoms.clone().all(|a| t.chain_name(t.atom_chain(AtomId(u32_of(a)))) == "B"));
        // Hide chain B: exactly its atoms turn hidden; the range written is document 0.
        let written = s.apply(&TreeAction { target: chain, change: NodeChange::Visible(false) });
        assert_eq!(written, 0..s.documents[0].atom_count());
        let hidden = |s: &SceneData, i: usize| s.atoms[i].flags & 0xf == Representation::Hidden as u32;
        assert!(chain_atoms.clone().all(|i| hidden(&s, i)));
        assert!((0..chain_atoms.start).all(|i| !hidden(&s, i)));
        assert_eq!(s.node_state(chain).visible, Visibility::None);
        assert_eq!(s.node_state(NodeRef { doc: 0, node: Node::Complex }).visible, Visibility::Some);
        // A residue becomes spacefill: its radius and representation change, nothing else.
        let node = NodeRef { doc: 0, node: Node::Residue(residue) };
        s.apply(&TreeAction { target: node, change: NodeChange::Representation(Representation::Spacefill) });
        assert_eq!(s.node_state(node).representation, Some(Representation::Spacefill));
        assert!(res_atoms.clone().all(|i| s.atoms[i].flags & 0xf == Representation::Spacefill as u32));
        assert!(s.atoms[res_atoms.start].radius > 1.0);
        assert_eq!(s.node_state(NodeRef { doc: 0, node: Node::Complex }).representation, None);
        // Showing chain B again brings back its ball-and-stick atoms.
        s.apply(&TreeAction { target: chain, change: NodeChange::Visible(true) });
        assert!(chain_atoms.clone().all(|i| s.atoms[i].flags & 0xf == Representation::BallAndStick as u32));
        // The second document is untouched.
        let n0 = s.documents[0].atom_count();
        assert!(s.atoms[n0..].iter().all(|a| a.flags & 0xf == Representation::BallAndStick as u32));
    }
}

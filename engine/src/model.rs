//! The structure model: workspace → complexes → models → chains → residues → atoms, and bonds.
//!
//! Following Mol*, *topology* (what the atoms are and how they are grouped and bonded) is kept
//! apart from *coordinates* (where they are) and from *display state* (how they are drawn).
//! Everything is stored as columns (struct of arrays): a residue owns a contiguous range of
//! atoms and a chain a contiguous range of residues, both stored as offset arrays. A new
//! trajectory frame therefore replaces one `Vec<Vec3>` and nothing else, and models of an
//! NMR ensemble share one [`Topology`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use glam::{Quat, Vec3};

use crate::element::Element;
use crate::ids::{AtomId, BondId, ChainId, ComplexId, ResidueId, StrId};

/// How an atom is drawn.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[repr(u8)]
pub enum Representation {
    /// Spheres at a fraction of the van der Waals radius joined by thin cylinders.
    #[default]
    BallAndStick = 0,
    /// Cylinders only; atoms are drawn as caps the bond radius wide.
    Sticks = 1,
    /// Spheres at the full van der Waals radius (CPK / space-filling).
    Spacefill = 2,
    /// Thin lines along the bonds.
    Wire = 3,
    /// Not drawn.
    Hidden = 4,
}

impl Representation {
    /// Every representation, in discriminant order.
    pub const ALL: [Representation; 5] = [Self::BallAndStick, Self::Sticks, Self::Spacefill, Self::Wire, Self::Hidden];

    /// Decodes a discriminant written by `as u8`.
    #[must_use]
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// The lower-case name used on command lines (`ball-and-stick`, `sticks`, …).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::BallAndStick => "ball-and-stick",
            Self::Sticks => "sticks",
            Self::Spacefill => "spacefill",
            Self::Wire => "lines",
            Self::Hidden => "hidden",
        }
    }
}

/// Secondary structure of a residue, from HELIX/SHEET records or `_struct_conf`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[repr(u8)]
pub enum SecondaryStructure {
    /// Loop or unassigned.
    #[default]
    Coil = 0,
    /// Any helix (α, 3₁₀, π).
    Helix = 1,
    /// β-strand.
    Sheet = 2,
    /// Turn.
    Turn = 3,
}

/// Per-residue ribbon flags (a bit set).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct RibbonFlags(pub u8);

impl RibbonFlags {
    /// The residue's ribbon is drawn.
    pub const VISIBLE: RibbonFlags = RibbonFlags(1);
    /// The residue is part of a polymer trace (has a CA or P atom).
    pub const POLYMER: RibbonFlags = RibbonFlags(2);

    /// Whether every bit of `other` is set.
    #[must_use]
    pub fn contains(self, other: RibbonFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets or clears the bits of `other`.
    pub fn set(&mut self, other: RibbonFlags, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }
}

/// Bond order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
#[repr(u8)]
pub enum BondKind {
    /// Order not known (distance-inferred bonds outside the residue templates).
    #[default]
    Unknown = 0,
    /// Single bond.
    Single = 1,
    /// Double bond.
    Double = 2,
    /// Triple bond.
    Triple = 3,
    /// Aromatic (delocalised) bond.
    Aromatic = 4,
}

impl BondKind {
    /// Decodes a discriminant written by `as u8`.
    #[must_use]
    pub fn from_u8(v: u8) -> Option<Self> {
        [Self::Unknown, Self::Single, Self::Double, Self::Triple, Self::Aromatic].get(usize::from(v)).copied()
    }
}

/// Interned strings of one topology: atom names, residue names and chain names repeat a lot,
/// so each is stored once and referenced by [`StrId`] (this is also the dictionary the stream
/// codec sends).
#[derive(Clone, Debug, Default)]
pub struct StringPool {
    strings: Vec<Box<str>>,
    /// Strings of up to 7 bytes (almost every atom, residue and chain name), keyed by their
    /// bytes and length packed in a `u64`: no string compare, a cheap hash.
    short: HashMap<u64, StrId, BuildHasherDefault<MulHasher>>,
    long: HashMap<Box<str>, StrId>,
}

impl PartialEq for StringPool {
    fn eq(&self, other: &Self) -> bool {
        self.strings == other.strings
    }
}

impl Eq for StringPool {}

/// Packs a string of up to 7 bytes with its length into a `u64`.
fn pack_short(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() > 7 {
        return None;
    }
    let mut k = [0u8; 8];
    k[..b.len()].copy_from_slice(b);
    k[7] = u8::try_from(b.len()).unwrap_or(0);
    Some(u64::from_le_bytes(k))
}

/// A multiplicative hasher for `u64` keys (the interning fast path).
#[derive(Default, Clone, Copy, Debug)]
pub struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (v ^ (v >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl StringPool {
    /// Returns the id of `s`, adding it on first use.
    pub fn intern(&mut self, s: &str) -> StrId {
        let next = StrId::from_index(self.strings.len());
        let id = match pack_short(s) {
            Some(k) => *self.short.entry(k).or_insert(next),
            None => *self.long.entry(s.into()).or_insert(next),
        };
        if id == next {
            self.strings.push(s.into());
        }
        id
    }

    /// The id of `s` if it was interned.
    #[must_use]
    pub fn find(&self, s: &str) -> Option<StrId> {
        match pack_short(s) {
            Some(k) => self.short.get(&k).copied(),
            None => self.long.get(s).copied(),
        }
    }

    /// The string behind `id`; the empty string for an id this pool never issued.
    #[must_use]
    pub fn get(&self, id: StrId) -> &str {
        self.strings.get(id.index()).map_or("", |s| s)
    }

    /// Number of distinct strings.
    #[must_use]
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether the pool holds no string.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// All strings in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        self.strings.iter().map(|s| &**s)
    }
}

/// Per-atom topology columns. All have one entry per atom, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AtomColumns {
    /// Atom name (`CA`, `OG1`, …), interned.
    pub name: Vec<StrId>,
    /// Chemical element (from the file, or guessed from the name when the file has none).
    pub element: Vec<Element>,
    /// Serial number as written in the file (PDB columns 7-11, mmCIF `id`).
    pub serial: Vec<i32>,
    /// Alternate location indicator; `0` when the atom has none.
    pub alt_loc: Vec<u8>,
    /// Whether the record was `HETATM`.
    pub het: Vec<bool>,
    /// Occupancy (1.0 when the file has none).
    pub occupancy: Vec<f32>,
    /// Isotropic B-factor in Å² (0.0 when the file has none).
    pub b_factor: Vec<f32>,
    /// Formal charge.
    pub formal_charge: Vec<i8>,
    /// The residue the atom belongs to.
    pub residue: Vec<ResidueId>,
}

/// Per-residue topology columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResidueColumns {
    /// Residue name (`ALA`, `HOH`, …), interned.
    pub name: Vec<StrId>,
    /// Author sequence number.
    pub seq_num: Vec<i32>,
    /// Insertion code; `0` when none.
    pub ins_code: Vec<u8>,
    /// Secondary structure.
    pub secondary: Vec<SecondaryStructure>,
    /// Ribbon flags.
    pub ribbon: Vec<RibbonFlags>,
    /// The chain segment the residue belongs to.
    pub chain: Vec<ChainId>,
    /// `atom_offsets[r]..atom_offsets[r + 1]` are the atoms of residue `r` (length residues + 1).
    pub atom_offsets: Vec<u32>,
}

/// Per-chain-segment topology columns.
///
/// A chain here is a contiguous run of residues with one author chain id, as in gemmi: a file
/// that returns to chain `A` after `TER` (waters, ligands) has two segments named `A`. Atom
/// order is never changed, so trajectory frames keep matching the file.
/// [`Topology::distinct_chain_names`] counts author chains the way other tools do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChainColumns {
    /// Author chain id, interned.
    pub name: Vec<StrId>,
    /// `residue_offsets[c]..residue_offsets[c + 1]` are the residues of chain `c`.
    pub residue_offsets: Vec<u32>,
}

/// Bond columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BondColumns {
    /// First atom (always the lower index).
    pub a: Vec<AtomId>,
    /// Second atom.
    pub b: Vec<AtomId>,
    /// Order.
    pub kind: Vec<BondKind>,
}

impl BondColumns {
    /// Number of bonds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.a.len()
    }

    /// Whether there is no bond.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.a.is_empty()
    }

    /// Appends a bond, ordering its atoms.
    pub fn push(&mut self, x: AtomId, y: AtomId, kind: BondKind) {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        self.a.push(a);
        self.b.push(b);
        self.kind.push(kind);
    }

    /// The bond's two atoms and kind.
    #[must_use]
    pub fn get(&self, id: BondId) -> (AtomId, AtomId, BondKind) {
        let i = id.index();
        (self.a[i], self.b[i], self.kind[i])
    }
}

/// What the atoms of a model are: chains → residues → atoms, and bonds. Shared by every model
/// (frame) of a complex that has the same atoms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Topology {
    /// Per-atom columns.
    pub atoms: AtomColumns,
    /// Per-residue columns.
    pub residues: ResidueColumns,
    /// Per-chain columns.
    pub chains: ChainColumns,
    /// Bonds.
    pub bonds: BondColumns,
    /// Interned names.
    pub strings: StringPool,
}

impl Topology {
    /// Number of atoms.
    #[must_use]
    pub fn atom_count(&self) -> usize {
        self.atoms.name.len()
    }

    /// Number of residues.
    #[must_use]
    pub fn residue_count(&self) -> usize {
        self.residues.name.len()
    }

    /// Number of chain segments.
    #[must_use]
    pub fn chain_count(&self) -> usize {
        self.chains.name.len()
    }

    /// The atoms of a residue.
    #[must_use]
    pub fn residue_atoms(&self, r: ResidueId) -> Range<usize> {
        let o = &self.residues.atom_offsets;
        o[r.index()] as usize..o[r.index() + 1] as usize
    }

    /// The residues of a chain segment.
    #[must_use]
    pub fn chain_residues(&self, c: ChainId) -> Range<usize> {
        let o = &self.chains.residue_offsets;
        o[c.index()] as usize..o[c.index() + 1] as usize
    }

    /// The chain an atom belongs to.
    #[must_use]
    pub fn atom_chain(&self, a: AtomId) -> ChainId {
        self.residues.chain[self.atoms.residue[a.index()].index()]
    }

    /// An atom's name.
    #[must_use]
    pub fn atom_name(&self, a: AtomId) -> &str {
        self.strings.get(self.atoms.name[a.index()])
    }

    /// A residue's name.
    #[must_use]
    pub fn residue_name(&self, r: ResidueId) -> &str {
        self.strings.get(self.residues.name[r.index()])
    }

    /// A chain's author id.
    #[must_use]
    pub fn chain_name(&self, c: ChainId) -> &str {
        self.strings.get(self.chains.name[c.index()])
    }

    /// Number of distinct author chain ids (what gemmi and Biopython call chains).
    #[must_use]
    pub fn distinct_chain_names(&self) -> usize {
        self.chains.name.iter().collect::<HashSet<_>>().len()
    }

    /// Number of distinct (chain id, sequence number, insertion code) residue keys.
    #[must_use]
    pub fn distinct_residue_keys(&self) -> usize {
        (0..self.residue_count())
            .map(|r| {
                let chain = self.chains.name[self.residues.chain[r].index()];
                (chain, self.residues.seq_num[r], self.residues.ins_code[r])
            })
            .collect::<HashSet<_>>()
            .len()
    }

    /// Whether `other` describes the same atoms: every column equal except occupancy and
    /// B-factor, which NMR ensembles and refinements vary per model.
    #[must_use]
    pub fn same_identity(&self, other: &Topology) -> bool {
        let (a, b) = (&self.atoms, &other.atoms);
        a.name == b.name
            && a.element == b.element
            && a.serial == b.serial
            && a.alt_loc == b.alt_loc
            && a.het == b.het
            && a.formal_charge == b.formal_charge
            && a.residue == b.residue
            && self.residues == other.residues
            && self.chains == other.chains
            && self.bonds == other.bonds
            && self.strings == other.strings
    }

    /// Checks the invariants every loader and decoder must uphold: column lengths agree,
    /// offsets are monotone and cover every atom and residue, bonds point at atoms. Returns a
    /// description of the first violation.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.atom_count();
        let a = &self.atoms;
        let lens = [
            a.element.len(),
            a.serial.len(),
            a.alt_loc.len(),
            a.het.len(),
            a.occupancy.len(),
            a.b_factor.len(),
            a.formal_charge.len(),
            a.residue.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err(format!("atom columns disagree in length: {n} names, {lens:?}"));
        }
        let nr = self.residue_count();
        let r = &self.residues;
        if [r.seq_num.len(), r.ins_code.len(), r.secondary.len(), r.ribbon.len(), r.chain.len()]
            .iter()
            .any(|&l| l != nr)
            || r.atom_offsets.len() != nr + 1
        {
            return Err("residue columns disagree in length".into());
        }
        check_offsets(&r.atom_offsets, n, "residue → atom")?;
        let nc = self.chain_count();
        if self.chains.residue_offsets.len() != nc + 1 {
            return Err("chain columns disagree in length".into());
        }
        check_offsets(&self.chains.residue_offsets, nr, "chain → residue")?;
        for (i, &res) in a.residue.iter().enumerate() {
            if !self.residue_atoms(res).contains(&i) {
                return Err(format!("atom {i} is not inside the range of its residue {res}"));
            }
        }
        for (i, &c) in r.chain.iter().enumerate() {
            if c.index() >= nc || !self.chain_residues(c).contains(&i) {
                return Err(format!("residue {i} is not inside the range of its chain {c}"));
            }
        }
        let b = &self.bonds;
        if b.b.len() != b.a.len() || b.kind.len() != b.a.len() {
            return Err("bond columns disagree in length".into());
        }
        if let Some(i) = (0..b.len()).find(|&i| b.a[i] >= b.b[i] || b.b[i].index() >= n) {
            return Err(format!("bond {i} ({}, {}) is out of range or unordered", b.a[i], b.b[i]));
        }
        Ok(())
    }
}

fn check_offsets(offsets: &[u32], total: usize, what: &str) -> Result<(), String> {
    if offsets.first() != Some(&0) || offsets.last().map(|&x| x as usize) != Some(total) {
        return Err(format!("{what} offsets do not cover 0..{total}"));
    }
    if offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err(format!("{what} offsets are not monotone"));
    }
    Ok(())
}

/// Packs an sRGB colour with alpha into the `u32` layout the GPU buffers use
/// (red in the lowest byte: `unpack4x8unorm` in WGSL).
#[must_use]
pub const fn pack_rgba(rgb: [u8; 3], alpha: u8) -> u32 {
    u32::from_le_bytes([rgb[0], rgb[1], rgb[2], alpha])
}

/// How atoms are drawn: per-atom display columns, one entry per atom of a topology, shared by
/// every model that uses the topology (a colour set on frame 3 holds on frame 4).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DisplayState {
    /// Colour, packed by [`pack_rgba`].
    pub color: Vec<u32>,
    /// Drawn sphere radius in Å.
    pub radius: Vec<f32>,
    /// Representation.
    pub representation: Vec<Representation>,
    /// Selected by the user or a plugin.
    pub selected: Vec<bool>,
    /// Whether the atom's label is shown.
    pub labeled: Vec<bool>,
    /// Label text of atoms that have one (sparse: most atoms have none). An atom that is
    /// `labeled` without text shows its default label (chain, residue, name).
    pub label_text: BTreeMap<AtomId, String>,
}

impl DisplayState {
    /// Display state for `topology` with the given style applied.
    #[must_use]
    pub fn styled(topology: &Topology, style: Style) -> Self {
        let n = topology.atom_count();
        let mut d = Self {
            color: vec![0; n],
            radius: vec![0.0; n],
            representation: vec![style.representation; n],
            selected: vec![false; n],
            labeled: vec![false; n],
            label_text: BTreeMap::new(),
        };
        d.apply_style(topology, style);
        d
    }

    /// Applies a representation and colour scheme to every atom.
    pub fn apply_style(&mut self, topology: &Topology, style: Style) {
        self.apply_color_scheme(topology, style.color);
        self.apply_representation(topology, style.representation);
    }

    /// Number of atoms covered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.color.len()
    }

    /// Whether no atom is covered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.color.is_empty()
    }

    /// Recolours every atom with `scheme` in one pass.
    pub fn apply_color_scheme(&mut self, topology: &Topology, scheme: ColorScheme) {
        crate::style::color_atoms(topology, scheme, &mut self.color);
    }

    /// Sets every atom's representation and the matching radius.
    pub fn apply_representation(&mut self, topology: &Topology, repr: Representation) {
        for ((r, rad), &el) in self.representation.iter_mut().zip(self.radius.iter_mut()).zip(&topology.atoms.element) {
            *r = repr;
            *rad = crate::style::atom_radius(el, repr);
        }
    }
}

/// A colour scheme.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum ColorScheme {
    /// CPK colours (Jmol's table), carbon grey.
    #[default]
    Element,
    /// One colour per chain segment from a qualitative palette.
    Chain,
    /// By residue type (Jmol's "amino" and "shapely nucleic" colours).
    ResidueType,
    /// B-factor on a blue → white → red ramp between the structure's minimum and maximum.
    BFactor,
}

/// Representation and colour scheme applied together.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Style {
    /// Representation of every atom.
    pub representation: Representation,
    /// Colour scheme.
    pub color: ColorScheme,
}

/// One model (frame) of a complex: which topology it uses and its coordinates.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Model {
    /// Index into [`Complex::topologies`] (and [`Complex::displays`]).
    pub topology: usize,
    /// Position of each atom in Å, in the complex's frame.
    pub positions: Vec<Vec3>,
    /// This model's B-factors where they differ from the topology's (NMR ensembles).
    pub b_factor: Option<Vec<f32>>,
    /// This model's occupancies where they differ from the topology's.
    pub occupancy: Option<Vec<f32>>,
}

/// A borrowed view of one model with its topology and display state.
#[derive(Clone, Copy, Debug)]
pub struct ModelView<'a> {
    /// Topology of the model.
    pub topology: &'a Topology,
    /// Display state of that topology.
    pub display: &'a DisplayState,
    /// Atom positions.
    pub positions: &'a [Vec3],
}

/// A complex: a named structure with a transform and one or more models.
#[derive(Clone, Debug, PartialEq)]
pub struct Complex {
    /// Id in its workspace (0 until added to one).
    pub id: ComplexId,
    /// Display name.
    pub name: String,
    /// Position of the complex's frame in the workspace.
    pub position: Vec3,
    /// Rotation of the complex's frame in the workspace.
    pub rotation: Quat,
    /// Whether it is drawn.
    pub visible: bool,
    /// Whether users may move it.
    pub locked: bool,
    /// Distinct topologies; most complexes have exactly one shared by all models.
    pub topologies: Vec<Topology>,
    /// Display state, one per topology.
    pub displays: Vec<DisplayState>,
    /// Models (NMR ensemble members, trajectory frames).
    pub models: Vec<Model>,
    /// Index of the model shown.
    pub current_model: usize,
}

impl Complex {
    /// A complex at the origin, visible and unlocked, showing model 0.
    ///
    /// # Panics
    /// If `displays` does not have one entry per topology.
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        topologies: Vec<Topology>,
        displays: Vec<DisplayState>,
        models: Vec<Model>,
    ) -> Self {
        assert_eq!(topologies.len(), displays.len(), "one display state per topology");
        Self {
            id: ComplexId::default(),
            name: name.into(),
            position: Vec3::ZERO,
            rotation: Quat::IDENTITY,
            visible: true,
            locked: false,
            topologies,
            displays,
            models,
            current_model: 0,
        }
    }

    /// A complex with one topology and one model, styled with `Style::default()`.
    ///
    /// # Panics
    /// If `positions` does not have one entry per atom of `topology`.
    #[must_use]
    pub fn single(name: impl Into<String>, topology: Topology, positions: Vec<Vec3>) -> Self {
        assert_eq!(topology.atom_count(), positions.len(), "one position per atom");
        let display = DisplayState::styled(&topology, Style::default());
        Self::new(name, vec![topology], vec![display], vec![Model { topology: 0, positions, ..Model::default() }])
    }

    /// A view of model `i`, or `None` if there is no such model.
    #[must_use]
    pub fn model(&self, i: usize) -> Option<ModelView<'_>> {
        let m = self.models.get(i)?;
        Some(ModelView {
            topology: self.topologies.get(m.topology)?,
            display: self.displays.get(m.topology)?,
            positions: &m.positions,
        })
    }

    /// A view of the current model.
    ///
    /// # Panics
    /// If the complex has no model (loaders and decoders never build one).
    #[must_use]
    pub fn current(&self) -> ModelView<'_> {
        self.model(self.current_model).expect("a complex has at least one model")
    }

    /// The display state of the current model's topology, mutably (`None` if the complex has
    /// no such model).
    pub fn current_display_mut(&mut self) -> Option<&mut DisplayState> {
        let t = self.models.get(self.current_model)?.topology;
        self.displays.get_mut(t)
    }

    /// Applies `style` to every topology's display state.
    pub fn set_style(&mut self, style: Style) {
        for (t, d) in self.topologies.iter().zip(self.displays.iter_mut()) {
            d.apply_style(t, style);
        }
    }

    /// Replaces the positions of model `i` (a new trajectory frame): one column, nothing else.
    /// Fails if the model does not exist or the frame has the wrong number of atoms.
    pub fn set_positions(&mut self, i: usize, positions: Vec<Vec3>) -> Result<(), String> {
        let Some(m) = self.models.get_mut(i) else {
            return Err(format!("no model {i}"));
        };
        if m.positions.len() != positions.len() {
            return Err(format!("frame has {} atoms, model {i} has {}", positions.len(), m.positions.len()));
        }
        m.positions = positions;
        Ok(())
    }

    /// Counts reported by `molstream inspect`, defined as gemmi and Biopython count them.
    #[must_use]
    pub fn counts(&self) -> StructureCounts {
        let first = self.model(0);
        StructureCounts {
            models: self.models.len(),
            chains: first.map_or(0, |m| m.topology.distinct_chain_names()),
            residues: first.map_or(0, |m| m.topology.distinct_residue_keys()),
            atom_sites: first.map_or(0, |m| m.topology.atom_count()),
            bonds: first.map_or(0, |m| m.topology.bonds.len()),
        }
    }
}

/// Counts of a structure, as established structural-biology libraries report them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct StructureCounts {
    /// Number of models.
    pub models: usize,
    /// Distinct author chain ids in the first model.
    pub chains: usize,
    /// Distinct (chain, sequence number, insertion code) in the first model.
    pub residues: usize,
    /// ATOM/HETATM records of the first model, alternate locations included.
    pub atom_sites: usize,
    /// Bonds of the first model (CONECT plus inferred).
    pub bonds: usize,
}

/// A workspace: the complexes of a session.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    complexes: Vec<Complex>,
    next_id: u32,
}

impl Workspace {
    /// An empty workspace.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a complex and returns its new id (ids are never reused).
    pub fn add(&mut self, mut complex: Complex) -> ComplexId {
        self.next_id += 1;
        complex.id = ComplexId(self.next_id);
        self.complexes.push(complex);
        ComplexId(self.next_id)
    }

    /// Inserts a complex under the id it carries (`complex.id`), replacing and returning the
    /// complex that had this id; ids that [`Workspace::add`] gives later stay above it. For
    /// copies of a workspace whose ids are given elsewhere (a session client's copy of its
    /// room, where the presenter gives the ids).
    pub fn insert(&mut self, complex: Complex) -> Option<Complex> {
        self.next_id = self.next_id.max(complex.id.0);
        match self.complexes.iter_mut().find(|c| c.id == complex.id) {
            Some(old) => Some(std::mem::replace(old, complex)),
            None => {
                self.complexes.push(complex);
                None
            }
        }
    }

    /// Removes a complex, returning it.
    pub fn remove(&mut self, id: ComplexId) -> Option<Complex> {
        let i = self.complexes.iter().position(|c| c.id == id)?;
        Some(self.complexes.remove(i))
    }

    /// The complex with this id.
    #[must_use]
    pub fn get(&self, id: ComplexId) -> Option<&Complex> {
        self.complexes.iter().find(|c| c.id == id)
    }

    /// The complex with this id, mutably.
    pub fn get_mut(&mut self, id: ComplexId) -> Option<&mut Complex> {
        self.complexes.iter_mut().find(|c| c.id == id)
    }

    /// All complexes in the order they were added.
    #[must_use]
    pub fn complexes(&self) -> &[Complex] {
        &self.complexes
    }
}

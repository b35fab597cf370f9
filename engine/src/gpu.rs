//! GPU-ready instance buffers: `#[repr(C)]` [`bytemuck::Pod`] structs uploaded as they are.
//!
//! Each struct mirrors a WGSL struct in `shaders/instances.wgsl`; `tests/wgsl_layout.rs` checks
//! sizes and offsets against naga's layout of that file.
//!
//! Bonds hold atom *indices*, not positions: the bond shader reads both ends from the atom
//! buffer, so a position stream rewrites one buffer and bonds follow. The bond buffer depends on
//! topology only; it is not rebuilt when colours, radii or representations change (the shader
//! reads those from the atoms as well).

use bytemuck::{Pod, Zeroable};
use glam::Vec3;

use crate::model::{ModelView, Representation};

/// Bits 0-3 of [`AtomInstance::flags`]: the [`Representation`] discriminant.
pub const ATOM_FLAG_REPR_MASK: u32 = 0xf;
/// Atom is selected.
pub const ATOM_FLAG_SELECTED: u32 = 0x10;
/// Atom is highlighted (hover).
pub const ATOM_FLAG_HIGHLIGHTED: u32 = 0x20;
/// Atom's label is shown.
pub const ATOM_FLAG_LABELED: u32 = 0x40;
/// Atom came from a HETATM record.
pub const ATOM_FLAG_HETERO: u32 = 0x80;
/// Shift of the atomic number stored in bits 8-15.
pub const ATOM_FLAG_ELEMENT_SHIFT: u32 = 8;

/// One atom as the GPU sees it. Mirror of `AtomInstance` in `shaders/instances.wgsl`
/// (32 bytes; WGSL aligns it to 16 because of the `vec3<f32>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C, align(16))]
pub struct AtomInstance {
    /// Centre in the complex's frame, Å (WGSL `vec3<f32>`, offset 0).
    pub position: [f32; 3],
    /// Drawn sphere radius, Å (offset 12).
    pub radius: f32,
    /// RGBA8 colour, red in the lowest byte (offset 16; `unpack4x8unorm` in WGSL).
    pub color: u32,
    /// Representation, selection/highlight/label/hetero bits and atomic number (offset 20;
    /// see the `ATOM_FLAG_*` constants).
    pub flags: u32,
    /// Picking id written to the id target; 0 is the background (offset 24).
    pub pick_id: u32,
    /// Index of the complex's transform in the transform buffer (offset 28).
    pub transform: u32,
}

/// One bond as the GPU sees it. Mirror of `BondInstance` in `shaders/instances.wgsl` (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BondInstance {
    /// Index of the first atom in the atom buffer (offset 0).
    pub atom_a: u32,
    /// Index of the second atom in the atom buffer (offset 4).
    pub atom_b: u32,
    /// Bits 0-7: [`crate::model::BondKind`] discriminant (offset 8).
    pub kind: u32,
    /// RGBA8 override colour; alpha 0 means each half takes its atom's colour (offset 12).
    pub color: u32,
}

/// Where a model's instances go in buffers shared with other complexes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InstanceBase {
    /// Index of the model's first atom in the shared atom buffer; bonds refer to atoms by
    /// `atom_offset + atom index`.
    pub atom_offset: u32,
    /// Pick id of the first atom; atom `i` gets `pick_base + i` (keep it ≥ 1: 0 is background).
    pub pick_base: u32,
    /// Transform index written to every atom.
    pub transform: u32,
}

impl InstanceBase {
    /// One model alone in its buffers: offset 0, pick ids from 1, transform 0.
    pub const SOLO: InstanceBase = InstanceBase { atom_offset: 0, pick_base: 1, transform: 0 };
}

/// The flags word of one atom.
#[must_use]
#[inline]
pub fn atom_flags(repr: Representation, selected: bool, labeled: bool, het: bool, atomic_number: u8) -> u32 {
    (repr as u32 & ATOM_FLAG_REPR_MASK)
        | if selected { ATOM_FLAG_SELECTED } else { 0 }
        | if labeled { ATOM_FLAG_LABELED } else { 0 }
        | if het { ATOM_FLAG_HETERO } else { 0 }
        | (u32::from(atomic_number) << ATOM_FLAG_ELEMENT_SHIFT)
}

/// Appends one [`AtomInstance`] per atom of `view` to `out`: a single pass over the columns,
/// with no allocation beyond growing `out` once.
pub fn build_atom_instances(view: ModelView<'_>, base: InstanceBase, out: &mut Vec<AtomInstance>) {
    let t = view.topology;
    let d = view.display;
    let n = t.atom_count().min(view.positions.len()).min(d.len());
    out.reserve(n);
    let a = &t.atoms;
    let mut pick = base.pick_base;
    for i in 0..n {
        let p = view.positions[i];
        out.push(AtomInstance {
            position: p.to_array(),
            radius: d.radius[i],
            color: d.color[i],
            flags: atom_flags(d.representation[i], d.selected[i], d.labeled[i], a.het[i], a.element[i].atomic_number()),
            pick_id: pick,
            transform: base.transform,
        });
        pick = pick.wrapping_add(1);
    }
}

/// Appends one [`BondInstance`] per bond of `view` to `out`.
pub fn build_bond_instances(view: ModelView<'_>, base: InstanceBase, out: &mut Vec<BondInstance>) {
    let b = &view.topology.bonds;
    out.reserve(b.len());
    out.extend(b.a.iter().zip(&b.b).zip(&b.kind).map(|((x, y), &k)| BondInstance {
        atom_a: base.atom_offset + x.0,
        atom_b: base.atom_offset + y.0,
        kind: k as u32,
        color: 0,
    }));
}

/// Rewrites only the positions of `instances` from a new frame (what a position stream does):
/// colours, flags and the bond buffer stay as they are. Copies `min(len)` atoms.
pub fn update_positions(positions: &[Vec3], instances: &mut [AtomInstance]) {
    for (inst, p) in instances.iter_mut().zip(positions) {
        inst.position = p.to_array();
    }
}

/// Atom and bond instances of one model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StructureBuffers {
    /// One per atom.
    pub atoms: Vec<AtomInstance>,
    /// One per bond.
    pub bonds: Vec<BondInstance>,
}

impl StructureBuffers {
    /// Builds both buffers for a model placed alone in its buffers.
    #[must_use]
    pub fn build(view: ModelView<'_>) -> Self {
        let mut s = Self::default();
        build_atom_instances(view, InstanceBase::SOLO, &mut s.atoms);
        build_bond_instances(view, InstanceBase::SOLO, &mut s.bonds);
        s
    }

    /// The atom buffer as bytes, ready for `queue.write_buffer`.
    #[must_use]
    pub fn atom_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.atoms)
    }

    /// The bond buffer as bytes.
    #[must_use]
    pub fn bond_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.bonds)
    }
}

//! The scene's GPU buffers: atoms, bonds, extra bond cylinders and complex transforms, and
//! the bind group the atom and bond pipelines share.
//!
//! | binding | buffer | WGSL | Rust |
//! |---|---|---|---|
//! | 0 | atoms, storage | `atoms: array<AtomInstance>` (`shaders/instances.wgsl`) | [`AtomInstance`] |
//! | 1 | bonds, storage | `bonds: array<BondInstance>` (`shaders/instances.wgsl`) | [`BondInstance`] |
//! | 2 | frame, uniform | `frame: Frame` (`shaders/frame.wgsl`) | [`super::FrameUniforms`] |
//! | 3 | transforms, storage | `transforms: array<mat4x4<f32>>` (`shaders/frame.wgsl`) | `[[f32; 4]; 4]` per complex |
//! | 4 | bond extras, storage | `bond_extras: array<u32>` (`shaders/bonds.wgsl`) | [`bond_extras`] |
//!
//! Buffers are sized to the structure when it is set ([`Scene::new`]); afterwards a position
//! stream writes the changed range of the atom buffer in place ([`Scene::write_atoms`]), which
//! also moves the bonds, since they read their ends from it.
//!
//! Level of detail adds the draw lists of the cull pass ([`DrawLists`]): written by
//! `shaders/cull.wgsl` (group 1, read-write) and read by the listed draws (`shaders/lists.wgsl`,
//! group 1, read-only), with the four indirect draws' arguments.

use glam::Mat4;
use molstream_engine::BondKind;
use molstream_engine::gpu::{AtomInstance, BondInstance};

use super::RenderError;

/// Size of one atom record on the GPU (bytes).
pub const ATOM_STRIDE: u64 = std::mem::size_of::<AtomInstance>() as u64;
/// Size of one bond record on the GPU (bytes).
pub const BOND_STRIDE: u64 = std::mem::size_of::<BondInstance>() as u64;

/// The cylinders beyond the first of each multiple bond, as `bond index << 2 | cylinder`:
/// cylinder 1 of double and aromatic bonds, cylinders 1 and 2 of triple bonds. The bond shader
/// draws cylinder 0 of every bond straight from the bond buffer and these from this list.
/// Bonds past index 2³⁰ − 1 cannot be encoded and get no extra cylinders.
#[must_use]
pub fn bond_extras(bonds: &[BondInstance]) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, b) in bonds.iter().enumerate() {
        let Ok(i) = u32::try_from(i) else { break };
        if i >= 1 << 30 {
            break;
        }
        let extra = match BondKind::from_u8((b.kind & 0xff) as u8) {
            Some(BondKind::Double | BondKind::Aromatic) => 1,
            Some(BondKind::Triple) => 2,
            _ => 0,
        };
        out.extend((1..=extra).map(|k| i << 2 | k));
    }
    out
}

/// Index of the indirect draw of impostor atoms in [`DrawLists`]' argument buffer. Mirror of
/// `DRAW_ATOMS` in `shaders/cull.wgsl`.
pub const DRAW_ATOMS: usize = 0;
/// Index of the indirect draw of atoms as points.
pub const DRAW_POINTS: usize = 1;
/// Index of the indirect draw of bonds (cylinder 0).
pub const DRAW_BONDS: usize = 2;
/// Index of the indirect draw of extra bond cylinders.
pub const DRAW_EXTRAS: usize = 3;
/// Bytes of one indirect draw's arguments (`wgpu::util::DrawIndirectArgs`; WGSL `DrawArgs`).
pub const DRAW_ARGS_STRIDE: u64 = 16;
/// The argument buffer before culling: vertex counts (4 for quads, 1 for points) and no
/// instances; the cull pass adds the instances.
pub const DRAW_ARGS_RESET: [u32; 16] = [4, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0];

/// Draw lists of the cull pass and the arguments of the indirect draws that read them.
#[derive(Debug)]
pub struct DrawLists {
    /// Four `DrawIndirectArgs` (`DRAW_*`).
    pub args: wgpu::Buffer,
    /// [`DRAW_ARGS_RESET`], copied over `args` before each cull.
    pub reset: wgpu::Buffer,
    /// Group 1 of the cull pipelines (read-write).
    pub cull_group: wgpu::BindGroup,
    /// Group 1 of the listed draws (read-only).
    pub draw_group: wgpu::BindGroup,
    /// Keeps the list buffers alive.
    _lists: [wgpu::Buffer; 3],
}

impl DrawLists {
    fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        [cull_layout, draw_layout]: [&wgpu::BindGroupLayout; 2],
        counts: [u32; 3],
    ) -> Self {
        let list = |label, n: u32| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: u64::from(n.max(1)) * 4,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let lists = [list("atom list", counts[0]), list("bond list", counts[1]), list("extra list", counts[2])];
        let args = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("indirect draws"),
            size: 4 * DRAW_ARGS_STRIDE,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::INDIRECT
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let reset = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("indirect draws reset"),
            size: 4 * DRAW_ARGS_STRIDE,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        queue.write_buffer(&reset, 0, bytemuck::cast_slice(&DRAW_ARGS_RESET));
        queue.write_buffer(&args, 0, bytemuck::cast_slice(&DRAW_ARGS_RESET));
        fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() }
        }
        let cull_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("cull"),
            layout: cull_layout,
            entries: &[entry(0, &args), entry(1, &lists[0]), entry(2, &lists[1]), entry(3, &lists[2])],
        });
        let draw_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("draw lists"),
            layout: draw_layout,
            entries: &[entry(1, &lists[0]), entry(2, &lists[1]), entry(3, &lists[2])],
        });
        Self { args, reset, cull_group, draw_group, _lists: lists }
    }
}

/// GPU buffers of one scene and their bind group.
#[derive(Debug)]
pub struct Scene {
    atoms: wgpu::Buffer,
    bonds: wgpu::Buffer,
    extras: wgpu::Buffer,
    transforms: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    atom_count: u32,
    bond_count: u32,
    extra_count: u32,
    transform_capacity: usize,
    lists: DrawLists,
}

/// A storage buffer holding `bytes`, at least `min` bytes long (bindings cannot be empty).
fn storage(device: &wgpu::Device, queue: &wgpu::Queue, label: &str, bytes: &[u8], min: u64) -> wgpu::Buffer {
    let size = (bytes.len() as u64).max(min).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    if !bytes.is_empty() {
        queue.write_buffer(&buffer, 0, bytes);
    }
    buffer
}

fn count(n: usize, what: &'static str) -> Result<u32, RenderError> {
    u32::try_from(n).map_err(|_| RenderError::TooLarge { what, bytes: n as u64, limit: u64::from(u32::MAX) })
}

impl Scene {
    /// Uploads a structure: one buffer per kind, sized to it. `transforms` holds one rigid
    /// transform per complex (identity when empty).
    /// `list_layouts` are the layouts of the cull pass's and the listed draws' group 1.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layout: &wgpu::BindGroupLayout,
        list_layouts: [&wgpu::BindGroupLayout; 2],
        frame: &wgpu::Buffer,
        atoms: &[AtomInstance],
        bonds: &[BondInstance],
        transforms: &[Mat4],
    ) -> Result<Self, RenderError> {
        let limit = device.limits().max_storage_buffer_binding_size.min(device.limits().max_buffer_size);
        let check = |what: &'static str, bytes: u64| {
            if bytes > limit { Err(RenderError::TooLarge { what, bytes, limit }) } else { Ok(()) }
        };
        check("atom buffer", atoms.len() as u64 * ATOM_STRIDE)?;
        check("bond buffer", bonds.len() as u64 * BOND_STRIDE)?;
        let extras = bond_extras(bonds);
        check("bond extras buffer", extras.len() as u64 * 4)?;
        let (atom_count, bond_count, extra_count) =
            (count(atoms.len(), "atom count")?, count(bonds.len(), "bond count")?, count(extras.len(), "bond extras")?);
        let atom_buf = storage(device, queue, "atoms", bytemuck::cast_slice(atoms), ATOM_STRIDE);
        let bond_buf = storage(device, queue, "bonds", bytemuck::cast_slice(bonds), BOND_STRIDE);
        let extra_buf = storage(device, queue, "bond extras", bytemuck::cast_slice(&extras), 4);
        let matrices = Self::matrices(transforms);
        let transform_buf = storage(device, queue, "transforms", bytemuck::cast_slice(&matrices), 64);
        let bind_group = Self::bind(device, layout, frame, [&atom_buf, &bond_buf, &transform_buf, &extra_buf]);
        let lists = DrawLists::new(device, queue, list_layouts, [atom_count, bond_count, extra_count]);
        Ok(Self {
            atoms: atom_buf,
            bonds: bond_buf,
            extras: extra_buf,
            transforms: transform_buf,
            bind_group,
            atom_count,
            bond_count,
            extra_count,
            transform_capacity: matrices.len(),
            lists,
        })
    }

    fn matrices(transforms: &[Mat4]) -> Vec<[[f32; 4]; 4]> {
        if transforms.is_empty() {
            vec![Mat4::IDENTITY.to_cols_array_2d()]
        } else {
            transforms.iter().map(Mat4::to_cols_array_2d).collect()
        }
    }

    fn bind(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        frame: &wgpu::Buffer,
        [atoms, bonds, transforms, extras]: [&wgpu::Buffer; 4],
    ) -> wgpu::BindGroup {
        fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
            wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() }
        }
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("scene"),
            layout,
            entries: &[entry(0, atoms), entry(1, bonds), entry(2, frame), entry(3, transforms), entry(4, extras)],
        })
    }

    /// Writes `atoms` over the records starting at `first`: one `queue.write_buffer` of exactly
    /// that byte range; the buffer is never re-created. Fails if the range is past the end.
    pub fn write_atoms(&self, queue: &wgpu::Queue, first: usize, atoms: &[AtomInstance]) -> Result<(), RenderError> {
        let end = first.checked_add(atoms.len());
        if end.is_none_or(|e| e > self.atom_count as usize) {
            return Err(RenderError::OutOfRange { first, count: atoms.len(), len: self.atom_count as usize });
        }
        if !atoms.is_empty() {
            queue.write_buffer(&self.atoms, first as u64 * ATOM_STRIDE, bytemuck::cast_slice(atoms));
        }
        Ok(())
    }

    /// Rewrites the complex transforms. The buffer grows (and the bind group is rebuilt) only
    /// when there are more transforms than before.
    pub fn set_transforms(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layout: &wgpu::BindGroupLayout,
        frame: &wgpu::Buffer,
        transforms: &[Mat4],
    ) {
        let matrices = Self::matrices(transforms);
        if matrices.len() > self.transform_capacity {
            self.transforms = storage(device, queue, "transforms", bytemuck::cast_slice(&matrices), 64);
            self.transform_capacity = matrices.len();
            self.bind_group =
                Self::bind(device, layout, frame, [&self.atoms, &self.bonds, &self.transforms, &self.extras]);
        } else {
            queue.write_buffer(&self.transforms, 0, bytemuck::cast_slice(&matrices));
        }
    }

    /// The bind group of group 0.
    #[must_use]
    pub fn bind_group(&self) -> &wgpu::BindGroup {
        &self.bind_group
    }

    /// Atoms in the atom buffer.
    #[must_use]
    pub fn atom_count(&self) -> u32 {
        self.atom_count
    }

    /// Bonds in the bond buffer.
    #[must_use]
    pub fn bond_count(&self) -> u32 {
        self.bond_count
    }

    /// Entries of the bond extras list.
    #[must_use]
    pub fn extra_count(&self) -> u32 {
        self.extra_count
    }

    /// The draw lists of level of detail.
    #[must_use]
    pub fn lists(&self) -> &DrawLists {
        &self.lists
    }

    /// The atom buffer (for callers that encode their own copies).
    #[must_use]
    pub fn atom_buffer(&self) -> &wgpu::Buffer {
        &self.atoms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_list_the_second_and_third_cylinders_of_multiple_bonds() {
        let b = |kind: BondKind| BondInstance { atom_a: 0, atom_b: 1, kind: kind as u32, color: 0 };
        let bonds = [
            b(BondKind::Single),
            b(BondKind::Double),
            b(BondKind::Unknown),
            b(BondKind::Triple),
            b(BondKind::Aromatic),
        ];
        assert_eq!(bond_extras(&bonds), vec![1 << 2 | 1, 3 << 2 | 1, 3 << 2 | 2, 4 << 2 | 1]);
        assert!(bond_extras(&bonds[..1]).is_empty());
    }
}

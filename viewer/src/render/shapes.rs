//! Plugin shapes on the GPU: spheres, lines, meshes and labels of any number of shape streams.
//!
//! | group | binding | buffer | WGSL (file) | Rust |
//! |---|---|---|---|---|
//! | 1 | 0 | spheres, storage | `array<SphereInstance>` (`shapes.wgsl`) | [`SphereInstance`] (engine) |
//! | 1 | 1 | lines, storage | `array<LineInstance>` (`shapes.wgsl`) | [`LineInstance`] (engine) |
//! | 1 | 2 | mesh infos, storage | `array<MeshInfo>` (`shape_draw.wgsl`) | [`MeshInfo`] |
//! | 1 | 3 | label glyphs, storage | `array<LabelGlyph>` (`shape_draw.wgsl`) | [`LabelGlyph`] |
//! | 1 | 4 | glyph atlas, `R8Unorm` | `texture_2d<f32>` | [`super::labels`] |
//! | 1 | 5 | linear sampler | `sampler` | |
//! | 2 | 0 | one mesh's vertices, storage | `array<MeshVertex>` (`shapes.wgsl`) | [`MeshVertex`] (engine) |
//! | 2 | 1 | that mesh's texture, `Rgba8UnormSrgb` | `texture_2d<f32>` | `shape::Texture` (engine) |
//!
//! Anchors are resolved on the CPU to anchor words ([`AnchorMap`]) and on the GPU to positions,
//! every frame, from the atom and transform buffers: a position write or a complex transform
//! moves anchored shapes with no CPU work.
//!
//! Updates: [`ShapeLayers::set`] replaces a stream's shapes; [`ShapeLayers::update`] applies
//! what a frame changed ([`ShapeEdits`]): meshes created or replaced are uploaded (vertices
//! written into a buffer mapped at creation, see `fill_mesh`), and shapes whose anchor, colour or size
//! changed get one record rewritten in place (a mesh's colour and anchor live in its
//! [`MeshInfo`], so its vertices are never touched for them).

use std::collections::{BTreeMap, HashMap};

use bytemuck::{Pod, Zeroable};
use glam::Vec3;
use molstream_engine::ComplexId;
use molstream_engine::codec::shapes::{MeshRef, decode_changes, parse_shapes};
use molstream_engine::codec::stream::Frame;
use molstream_engine::codec::{CodecError, FrameKind, Limits};
use molstream_engine::shape::{
    ANCHOR_ATOM, Anchor, AnchorTarget, LineInstance, Mesh, MeshVertex, Shape, ShapeId, ShapeKind, ShapeSet,
    SphereInstance, pack_normal,
};

use super::RenderError;
use super::labels::{LabelFonts, LabelSource};

/// [`MeshInfo::flags`]: drawn without lighting. Mirror of `MESH_UNLIT` in
/// `shaders/shape_draw.wgsl`.
pub const MESH_UNLIT: u32 = 1;
/// [`MeshInfo::flags`]: the vertices carry normals (else face normals are used).
pub const MESH_NORMALS: u32 = 2;
/// [`MeshInfo::flags`]: the mesh samples its texture at the vertex uvs.
pub const MESH_TEXTURED: u32 = 4;
/// [`MeshInfo::flags`]: every vertex takes [`MeshInfo::color`] (no per-vertex colours).
pub const MESH_SHAPE_COLOR: u32 = 8;

/// Per-mesh state, indexed by the draw's instance index. Mirror of `MeshInfo` in
/// `shaders/shape_draw.wgsl` (24 bytes, align 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct MeshInfo {
    /// Anchor offset, Å (offset 0).
    pub offset: [f32; 3],
    /// Anchor word (offset 12; see [`ANCHOR_ATOM`]).
    pub anchor: u32,
    /// Shape colour, RGBA8 (offset 16).
    pub color: u32,
    /// `MESH_*` bits (offset 20).
    pub flags: u32,
}

/// One glyph quad of a label. Mirror of `LabelGlyph` in `shaders/shape_draw.wgsl` (56 bytes,
/// align 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct LabelGlyph {
    /// Anchor offset, Å (offset 0).
    pub offset: [f32; 3],
    /// Anchor word (offset 12).
    pub anchor: u32,
    /// Quad relative to the anchor's pixel, pixels, y down: x0, y0, x1, y1 (offset 16).
    pub rect: [f32; 4],
    /// Atlas coordinates of the quad, 0..1: u0, v0, u1, v1 (offset 32).
    pub uv: [f32; 4],
    /// RGBA8 colour (offset 48).
    pub color: u32,
    /// Picking id (offset 52).
    pub pick_id: u32,
}

/// Where one complex sits in the renderer's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ComplexSlot {
    /// Index of its transform in the transform buffer.
    pub transform: u32,
    /// Index of its first atom in the atom buffer.
    pub atom_offset: u32,
    /// Its atoms in the atom buffer.
    pub atom_count: u32,
}

/// How shape anchors resolve to anchor words: the workspace is transform 0 (which must be the
/// identity), a complex is its transform, an atom its index in the atom buffer. Targets not in
/// the map (complexes not loaded, atoms past the end) do not resolve, and their shapes are not
/// drawn until the map changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnchorMap {
    complexes: BTreeMap<ComplexId, ComplexSlot>,
}

impl AnchorMap {
    /// An empty map: only workspace anchors resolve.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Places a complex.
    pub fn insert(&mut self, complex: ComplexId, slot: ComplexSlot) {
        self.complexes.insert(complex, slot);
    }

    /// The anchor word of a target, or `None` when it is not loaded.
    #[must_use]
    pub fn resolve(&self, target: AnchorTarget) -> Option<u32> {
        match target {
            AnchorTarget::Workspace => Some(0),
            AnchorTarget::Complex(c) => self.complexes.get(&c).map(|s| s.transform & !ANCHOR_ATOM),
            AnchorTarget::Atom(c, a) => {
                let s = self.complexes.get(&c)?;
                if a.0 >= s.atom_count {
                    return None;
                }
                let i = s.atom_offset.checked_add(a.0)?;
                (i & ANCHOR_ATOM == 0).then_some(i | ANCHOR_ATOM)
            }
        }
    }
}

/// Which shapes of a stream a frame changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShapeEdits {
    /// Every shape was replaced (a full frame): the stream is re-uploaded whole.
    pub full: bool,
    /// Shapes created or replaced.
    pub upserted: Vec<ShapeId>,
    /// Shapes destroyed.
    pub destroyed: Vec<ShapeId>,
    /// Shapes whose anchor, colour, size or dashes changed.
    pub changed: Vec<ShapeId>,
}

impl ShapeEdits {
    /// What a shapes frame (kind 5 or 6, payload decompressed) changes. Only the record
    /// headers are read: mesh columns are not decoded.
    pub fn of_frame(frame: &Frame, limits: &Limits) -> Result<Self, CodecError> {
        let h = &frame.header;
        match h.kind {
            FrameKind::Shapes => {
                let view = parse_shapes(&frame.payload, h, limits)?;
                Ok(Self {
                    full: view.full,
                    upserted: view.records.iter().map(|r| r.id).collect(),
                    destroyed: view.destroys,
                    changed: Vec::new(),
                })
            }
            FrameKind::ShapeDelta => Ok(Self {
                changed: decode_changes(&frame.payload, h, limits)?.iter().map(|c| c.id).collect(),
                ..Self::default()
            }),
            kind => Err(CodecError::UnknownKind(kind as u8)),
        }
    }
}

/// What a shape update wrote to the GPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShapeUpload {
    /// Bytes written (buffers and textures).
    pub bytes: u64,
    /// Meshes uploaded.
    pub meshes: usize,
    /// Records rewritten in place (partial updates).
    pub records: usize,
    /// Whether the shape arrays were rebuilt whole.
    pub rebuilt: bool,
}

/// Shapes in the GPU buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShapeCounts {
    /// Sphere instances.
    pub spheres: u32,
    /// Line instances.
    pub lines: u32,
    /// Meshes drawn.
    pub meshes: u32,
    /// Triangles of the meshes drawn.
    pub triangles: u64,
    /// Label glyph quads.
    pub glyphs: u32,
}

/// A storage buffer that grows when needed (the bind group must then be rebuilt).
#[derive(Debug)]
struct GrowBuffer {
    label: &'static str,
    buffer: wgpu::Buffer,
    capacity: u64,
}

impl GrowBuffer {
    fn new(device: &wgpu::Device, label: &'static str, capacity: u64) -> Self {
        let capacity = capacity.max(64).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: capacity,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self { label, buffer, capacity }
    }

    /// Writes `bytes` at offset 0; returns whether the buffer was re-created.
    fn write(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, bytes: &[u8]) -> bool {
        let need = bytes.len() as u64;
        let grown = need > self.capacity;
        if grown {
            *self = Self::new(device, self.label, need + need / 2);
        }
        if !bytes.is_empty() {
            queue.write_buffer(&self.buffer, 0, bytes);
        }
        grown
    }
}

/// One mesh on the GPU.
#[derive(Debug)]
struct GpuMesh {
    anchor: Anchor,
    color: u32,
    flags: u32,
    index_count: u32,
    indices: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// Keeps the vertex buffer (bound in `bind_group`) alive.
    _vertices: wgpu::Buffer,
    /// Keeps the texture (bound in `bind_group`) alive.
    _texture: Option<wgpu::Texture>,
}

/// A mesh's columns, from the model or from a frame record.
enum MeshSource<'a> {
    Model(&'a Mesh, u32),
    Record(&'a MeshRef<'a>),
}

/// Shapes of one stream.
#[derive(Debug, Default)]
struct Layer {
    pick_base: u32,
    /// Spheres, lines and labels (meshes are in `meshes`).
    shapes: BTreeMap<ShapeId, Shape>,
    meshes: BTreeMap<ShapeId, GpuMesh>,
}

/// Where a shape's record sits in the concatenated arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Sphere(u32),
    Line(u32),
    Mesh(u32),
}

/// The layouts the shape pipelines bind.
#[derive(Debug)]
pub(crate) struct ShapeLayouts {
    /// Group 1: the shared shape buffers.
    pub shapes: wgpu::BindGroupLayout,
    /// Group 2: one mesh.
    pub mesh: wgpu::BindGroupLayout,
}

impl ShapeLayouts {
    pub fn new(device: &wgpu::Device) -> Self {
        let storage = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::VERTEX,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let texture = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let shapes = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("shapes"),
            entries: &[
                storage(0),
                storage(1),
                storage(2),
                storage(3),
                texture(4),
                wgpu::BindGroupLayoutEntry {
                    binding: 5,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let mesh = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("mesh"),
            entries: &[storage(0), texture(1)],
        });
        Self { shapes, mesh }
    }
}

/// Every shape stream's shapes on the GPU, and their bind groups.
#[derive(Debug)]
pub struct ShapeLayers {
    device: wgpu::Device,
    queue: wgpu::Queue,
    layouts: ShapeLayouts,
    layers: BTreeMap<u32, Layer>,
    anchors: AnchorMap,
    pixels_per_point: f32,
    spheres: Vec<SphereInstance>,
    lines: Vec<LineInstance>,
    infos: Vec<MeshInfo>,
    glyphs: Vec<LabelGlyph>,
    /// (stream, mesh id) of each entry of `infos`: the draw order of meshes.
    mesh_order: Vec<(u32, ShapeId)>,
    slots: HashMap<(u32, ShapeId), Slot>,
    sphere_buf: GrowBuffer,
    line_buf: GrowBuffer,
    info_buf: GrowBuffer,
    glyph_buf: GrowBuffer,
    atlas: wgpu::Texture,
    atlas_view: wgpu::TextureView,
    sampler: wgpu::Sampler,
    white: wgpu::TextureView,
    bind_group: wgpu::BindGroup,
    fonts: Option<LabelFonts>,
    triangles: u64,
}

const SPHERE_STRIDE: u64 = std::mem::size_of::<SphereInstance>() as u64;
const LINE_STRIDE: u64 = std::mem::size_of::<LineInstance>() as u64;
const INFO_STRIDE: u64 = std::mem::size_of::<MeshInfo>() as u64;

fn texture_2d(
    device: &wgpu::Device,
    label: &str,
    size: (u32, u32),
    format: wgpu::TextureFormat,
) -> (wgpu::Texture, wgpu::TextureView) {
    let t = device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width: size.0, height: size.1, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    let v = t.create_view(&wgpu::TextureViewDescriptor::default());
    (t, v)
}

fn write_texture(queue: &wgpu::Queue, texture: &wgpu::Texture, size: (u32, u32), bytes_per_texel: u32, data: &[u8]) {
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        data,
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(size.0 * bytes_per_texel), rows_per_image: None },
        wgpu::Extent3d { width: size.0, height: size.1, depth_or_array_layers: 1 },
    );
}

impl ShapeLayers {
    pub(crate) fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Self {
        let layouts = ShapeLayouts::new(device);
        let sphere_buf = GrowBuffer::new(device, "shape spheres", 0);
        let line_buf = GrowBuffer::new(device, "shape lines", 0);
        let info_buf = GrowBuffer::new(device, "mesh infos", 0);
        let glyph_buf = GrowBuffer::new(device, "label glyphs", 0);
        let (atlas, atlas_view) = texture_2d(device, "glyph atlas", (1, 1), wgpu::TextureFormat::R8Unorm);
        write_texture(queue, &atlas, (1, 1), 1, &[0]);
        let (white_tex, white) = texture_2d(device, "white", (1, 1), wgpu::TextureFormat::Rgba8UnormSrgb);
        write_texture(queue, &white_tex, (1, 1), 4, &[255; 4]);
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("shapes"),
            address_mode_u: wgpu::AddressMode::Repeat,
            address_mode_v: wgpu::AddressMode::Repeat,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..wgpu::SamplerDescriptor::default()
        });
        let bind_group =
            Self::bind(device, &layouts.shapes, [&sphere_buf, &line_buf, &info_buf, &glyph_buf], &atlas_view, &sampler);
        Self {
            device: device.clone(),
            queue: queue.clone(),
            layouts,
            layers: BTreeMap::new(),
            anchors: AnchorMap::default(),
            pixels_per_point: 1.0,
            spheres: Vec::new(),
            lines: Vec::new(),
            infos: Vec::new(),
            glyphs: Vec::new(),
            mesh_order: Vec::new(),
            slots: HashMap::new(),
            sphere_buf,
            line_buf,
            info_buf,
            glyph_buf,
            atlas,
            atlas_view,
            sampler,
            white,
            bind_group,
            fonts: None,
            triangles: 0,
        }
    }

    fn bind(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        buffers: [&GrowBuffer; 4],
        atlas: &wgpu::TextureView,
        sampler: &wgpu::Sampler,
    ) -> wgpu::BindGroup {
        let [s, l, i, g] = buffers;
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("shapes"),
            layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: s.buffer.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: l.buffer.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: i.buffer.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: g.buffer.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::TextureView(atlas) },
                wgpu::BindGroupEntry { binding: 5, resource: wgpu::BindingResource::Sampler(sampler) },
            ],
        })
    }

    pub(crate) fn layouts(&self) -> &ShapeLayouts {
        &self.layouts
    }

    pub(crate) fn bind_group(&self) -> &wgpu::BindGroup {
        &self.bind_group
    }

    /// Counts of what is drawn.
    #[must_use]
    pub fn counts(&self) -> ShapeCounts {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        ShapeCounts {
            spheres: n(self.spheres.len()),
            lines: n(self.lines.len()),
            meshes: n(self.infos.len()),
            triangles: self.triangles,
            glyphs: n(self.glyphs.len()),
        }
    }

    /// The meshes to draw, in instance order: (bind group, index buffer, index count).
    pub(crate) fn mesh_draws(&self) -> impl Iterator<Item = (u32, &wgpu::BindGroup, &wgpu::Buffer, u32)> {
        self.mesh_order.iter().enumerate().filter_map(|(i, (stream, id))| {
            let m = self.layers.get(stream)?.meshes.get(id)?;
            Some((u32::try_from(i).ok()?, &m.bind_group, &m.indices, m.index_count))
        })
    }

    /// Replaces the shapes of `stream` with those of `set`; shape `id` gets pick id
    /// `pick_base + id` (wrapping). Every mesh of the stream is uploaded.
    pub fn set(&mut self, stream: u32, set: &ShapeSet, pick_base: u32) -> Result<ShapeUpload, RenderError> {
        let mut layer = Layer { pick_base, ..Layer::default() };
        let mut up = ShapeUpload::default();
        for s in set.iter() {
            self.put(&mut layer, s, &mut up)?;
        }
        self.layers.insert(stream, layer);
        self.rebuild(&mut up);
        Ok(up)
    }

    /// Applies `edits` to the stream's shapes, taking the new state from `set` (the set the
    /// frame was applied to): upserted shapes are re-uploaded, destroyed ones dropped, and
    /// changed ones rewritten in place (one record each) unless the arrays must be rebuilt
    /// anyway. A stream never set is created with pick base 0.
    pub fn update(&mut self, stream: u32, set: &ShapeSet, edits: &ShapeEdits) -> Result<ShapeUpload, RenderError> {
        if edits.full {
            let base = self.layers.get(&stream).map_or(0, |l| l.pick_base);
            return self.set(stream, set, base);
        }
        let mut layer = self.layers.remove(&stream).unwrap_or_default();
        let mut up = ShapeUpload::default();
        let mut structural = false;
        let mut relabel = false;
        for id in &edits.destroyed {
            structural |= layer.meshes.remove(id).is_some();
            if let Some(s) = layer.shapes.remove(id) {
                structural = true;
                relabel |= matches!(s.kind, ShapeKind::Label { .. });
            }
        }
        for id in &edits.upserted {
            layer.meshes.remove(id);
            if let Some(old) = layer.shapes.remove(id) {
                relabel |= matches!(old.kind, ShapeKind::Label { .. });
            }
            structural = true;
            if let Some(s) = set.get(*id) {
                relabel |= matches!(s.kind, ShapeKind::Label { .. });
                if let Err(e) = self.put(&mut layer, s, &mut up) {
                    self.layers.insert(stream, layer);
                    self.rebuild(&mut up);
                    return Err(e);
                }
            }
        }
        let mut in_place = Vec::new();
        for id in &edits.changed {
            let Some(s) = set.get(*id) else { continue };
            match &s.kind {
                ShapeKind::Mesh(m) => {
                    if let Some(g) = layer.meshes.get_mut(id) {
                        let was = self.anchors.resolve(g.anchor.target).is_some();
                        g.anchor = m.anchor;
                        g.color = s.color;
                        structural |= was != self.anchors.resolve(g.anchor.target).is_some();
                        in_place.push(*id);
                    }
                }
                ShapeKind::Label { .. } => {
                    layer.shapes.insert(*id, s.clone());
                    relabel = true;
                }
                _ => match layer.shapes.insert(*id, s.clone()) {
                    Some(old) => {
                        structural |= self.resolves(&old) != self.resolves(s);
                        in_place.push(*id);
                    }
                    // A change of a shape this layer did not hold: it has no record yet.
                    None => structural = true,
                },
            }
        }
        self.layers.insert(stream, layer);
        if structural {
            self.rebuild(&mut up);
            return Ok(up);
        }
        for id in in_place {
            self.rewrite(stream, id, &mut up);
        }
        if relabel {
            self.relayout_labels(&mut up);
        }
        Ok(up)
    }

    /// Drops a stream's shapes.
    pub fn remove(&mut self, stream: u32) {
        if self.layers.remove(&stream).is_some() {
            self.rebuild(&mut ShapeUpload::default());
        }
    }

    /// Replaces the mesh of shape `id` of `stream` by decoding a frame's mesh record straight
    /// into a new mapped vertex buffer ([`MeshRef::decode_into`]); the shape takes the record's
    /// anchor, colour and lighting. The stream must exist ([`ShapeLayers::set`]).
    pub fn upload_mesh_record(
        &mut self,
        stream: u32,
        id: ShapeId,
        record: &MeshRef<'_>,
    ) -> Result<ShapeUpload, RenderError> {
        let Some(pick_base) = self.layers.get(&stream).map(|l| l.pick_base) else {
            return Err(RenderError::NoShapeStream(stream));
        };
        let mut up = ShapeUpload::default();
        let mesh = self.upload_mesh(&MeshSource::Record(record), pick_base.wrapping_add(id.0), &mut up)?;
        if let Some(layer) = self.layers.get_mut(&stream) {
            layer.shapes.remove(&id);
            layer.meshes.insert(id, mesh);
        }
        self.rebuild(&mut up);
        Ok(up)
    }

    /// Re-resolves every anchor against a new map (documents loaded, moved in the buffers or
    /// closed).
    pub fn set_anchor_map(&mut self, map: AnchorMap) {
        if map != self.anchors {
            self.anchors = map;
            self.rebuild(&mut ShapeUpload::default());
        }
    }

    /// The map anchors resolve against.
    #[must_use]
    pub fn anchor_map(&self) -> &AnchorMap {
        &self.anchors
    }

    /// Sets the label scale (pixels per point, e.g. the window's scale factor) and lays the
    /// labels out again if it changed.
    pub fn set_pixels_per_point(&mut self, pixels_per_point: f32) {
        let p = if pixels_per_point.is_finite() && pixels_per_point > 0.0 { pixels_per_point } else { 1.0 };
        if (p - self.pixels_per_point).abs() > f32::EPSILON {
            self.pixels_per_point = p;
            self.relayout_labels(&mut ShapeUpload::default());
        }
    }

    fn resolves(&self, s: &Shape) -> bool {
        match &s.kind {
            ShapeKind::Line { start, end, .. } => {
                self.anchors.resolve(start.target).is_some() && self.anchors.resolve(end.target).is_some()
            }
            k => self.anchors.resolve(k.anchor().target).is_some(),
        }
    }

    /// Adds one shape to a layer being built (uploading it if it is a mesh).
    fn put(&self, layer: &mut Layer, s: &Shape, up: &mut ShapeUpload) -> Result<(), RenderError> {
        if let ShapeKind::Mesh(m) = &s.kind {
            let mesh = self.upload_mesh(&MeshSource::Model(m, s.color), layer.pick_base.wrapping_add(s.id.0), up)?;
            layer.meshes.insert(s.id, mesh);
        } else {
            layer.shapes.insert(s.id, s.clone());
        }
        Ok(())
    }

    fn upload_mesh(&self, source: &MeshSource<'_>, pick_id: u32, up: &mut ShapeUpload) -> Result<GpuMesh, RenderError> {
        let (anchor, color, unlit, normals, colors, texture, nv, ni) = match source {
            MeshSource::Model(m, color) => (
                m.anchor,
                *color,
                m.unlit,
                !m.normals.is_empty(),
                !m.colors.is_empty(),
                m.texture.as_ref().map(|t| (t.width, t.height, t.rgba.as_slice())),
                m.vertex_count(),
                m.indices.len() / 3 * 3,
            ),
            MeshSource::Record(r) => (
                r.anchor,
                r.color,
                r.unlit,
                r.has_normals(),
                r.has_vertex_colors(),
                r.texture(),
                r.vertex_count(),
                r.index_count(),
            ),
        };
        let limits = self.device.limits();
        let max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let vbytes = (nv as u64).saturating_mul(std::mem::size_of::<MeshVertex>() as u64);
        let ibytes = (ni as u64).saturating_mul(4);
        for (what, bytes) in [("mesh vertex buffer", vbytes), ("mesh index buffer", ibytes)] {
            if bytes > max {
                return Err(RenderError::TooLarge { what, bytes, limit: max });
            }
        }
        let index_count =
            u32::try_from(ni).map_err(|_| RenderError::TooLarge { what: "mesh indices", bytes: ibytes, limit: max })?;
        let vertices = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("mesh vertices"),
            size: vbytes.max(std::mem::size_of::<MeshVertex>() as u64),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: true,
        });
        let indices = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("mesh indices"),
            size: ibytes.max(4),
            usage: wgpu::BufferUsages::INDEX,
            mapped_at_creation: true,
        });
        let written = {
            let mut vmap = vertices.slice(..).get_mapped_range_mut().map_err(|e| RenderError::Upload(e.to_string()))?;
            let mut imap = indices.slice(..).get_mapped_range_mut().map_err(|e| RenderError::Upload(e.to_string()))?;
            fill_mesh(source, pick_id, nv, ni, &mut vmap, &mut imap)
        };
        vertices.unmap();
        indices.unmap();
        written?;
        up.bytes += vbytes + ibytes;
        up.meshes += 1;
        let mut flags = 0;
        if unlit {
            flags |= MESH_UNLIT;
        }
        if normals {
            flags |= MESH_NORMALS;
        }
        if !colors {
            flags |= MESH_SHAPE_COLOR;
        }
        let mut own_texture = None;
        if let Some((w, h, rgba)) = texture {
            let side = limits.max_texture_dimension_2d;
            if w > side || h > side {
                return Err(RenderError::TooLarge {
                    what: "mesh texture side",
                    bytes: u64::from(w.max(h)),
                    limit: u64::from(side),
                });
            }
            let (t, _) = texture_2d(&self.device, "mesh texture", (w, h), wgpu::TextureFormat::Rgba8UnormSrgb);
            write_texture(&self.queue, &t, (w, h), 4, rgba);
            up.bytes += rgba.len() as u64;
            flags |= MESH_TEXTURED;
            own_texture = Some(t);
        }
        let view = own_texture.as_ref().map(|t| t.create_view(&wgpu::TextureViewDescriptor::default()));
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("mesh"),
            layout: &self.layouts.mesh,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: vertices.as_entire_binding() },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(view.as_ref().unwrap_or(&self.white)),
                },
            ],
        });
        Ok(GpuMesh {
            anchor,
            color,
            flags,
            index_count,
            indices,
            bind_group,
            _vertices: vertices,
            _texture: own_texture,
        })
    }

    fn sphere(&self, pick_base: u32, s: &Shape) -> Option<SphereInstance> {
        let ShapeKind::Sphere { anchor, radius } = &s.kind else { return None };
        Some(SphereInstance {
            offset: anchor.offset.to_array(),
            radius: *radius,
            color: s.color,
            anchor: self.anchors.resolve(anchor.target)?,
            pick_id: pick_base.wrapping_add(s.id.0),
        })
    }

    fn line(&self, pick_base: u32, s: &Shape) -> Option<LineInstance> {
        let ShapeKind::Line { start, end, thickness, dash_length, dash_gap } = &s.kind else { return None };
        Some(LineInstance {
            start: start.offset.to_array(),
            end: end.offset.to_array(),
            thickness: *thickness,
            dash_length: *dash_length,
            dash_gap: *dash_gap,
            color: s.color,
            start_anchor: self.anchors.resolve(start.target)?,
            end_anchor: self.anchors.resolve(end.target)?,
            pick_id: pick_base.wrapping_add(s.id.0),
        })
    }

    fn info(&self, m: &GpuMesh) -> Option<MeshInfo> {
        Some(MeshInfo {
            offset: m.anchor.offset.to_array(),
            anchor: self.anchors.resolve(m.anchor.target)?,
            color: m.color,
            flags: m.flags,
        })
    }

    /// Rebuilds the concatenated arrays and slots from the layers and writes them.
    fn rebuild(&mut self, up: &mut ShapeUpload) {
        let (mut spheres, mut lines, mut infos, mut order) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut slots = HashMap::new();
        let mut triangles = 0u64;
        for (stream, layer) in &self.layers {
            for s in layer.shapes.values() {
                let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
                if let Some(i) = self.sphere(layer.pick_base, s) {
                    slots.insert((*stream, s.id), Slot::Sphere(n(spheres.len())));
                    spheres.push(i);
                } else if let Some(l) = self.line(layer.pick_base, s) {
                    slots.insert((*stream, s.id), Slot::Line(n(lines.len())));
                    lines.push(l);
                }
            }
            for (id, m) in &layer.meshes {
                if let Some(info) = self.info(m) {
                    slots.insert((*stream, *id), Slot::Mesh(u32::try_from(infos.len()).unwrap_or(u32::MAX)));
                    infos.push(info);
                    order.push((*stream, *id));
                    triangles += u64::from(m.index_count / 3);
                }
            }
        }
        let d = &self.device;
        let q = &self.queue;
        let mut grown = self.sphere_buf.write(d, q, bytemuck::cast_slice(&spheres));
        grown |= self.line_buf.write(d, q, bytemuck::cast_slice(&lines));
        grown |= self.info_buf.write(d, q, bytemuck::cast_slice(&infos));
        up.bytes += (spheres.len() as u64) * SPHERE_STRIDE + (lines.len() as u64) * LINE_STRIDE;
        up.bytes += (infos.len() as u64) * INFO_STRIDE;
        up.rebuilt = true;
        (self.spheres, self.lines, self.infos, self.mesh_order, self.slots) = (spheres, lines, infos, order, slots);
        self.triangles = triangles;
        if grown {
            self.rebind();
        }
        self.relayout_labels(up);
    }

    fn rebind(&mut self) {
        self.bind_group = Self::bind(
            &self.device,
            &self.layouts.shapes,
            [&self.sphere_buf, &self.line_buf, &self.info_buf, &self.glyph_buf],
            &self.atlas_view,
            &self.sampler,
        );
    }

    /// Rewrites the one record of a shape whose anchor, colour or size changed.
    fn rewrite(&mut self, stream: u32, id: ShapeId, up: &mut ShapeUpload) {
        let Some(layer) = self.layers.get(&stream) else { return };
        match self.slots.get(&(stream, id)).copied() {
            Some(Slot::Sphere(i)) => {
                if let Some(r) = layer.shapes.get(&id).and_then(|s| self.sphere(layer.pick_base, s)) {
                    self.spheres[i as usize] = r;
                    self.queue.write_buffer(
                        &self.sphere_buf.buffer,
                        u64::from(i) * SPHERE_STRIDE,
                        bytemuck::bytes_of(&r),
                    );
                    up.bytes += SPHERE_STRIDE;
                    up.records += 1;
                }
            }
            Some(Slot::Line(i)) => {
                if let Some(r) = layer.shapes.get(&id).and_then(|s| self.line(layer.pick_base, s)) {
                    self.lines[i as usize] = r;
                    self.queue.write_buffer(&self.line_buf.buffer, u64::from(i) * LINE_STRIDE, bytemuck::bytes_of(&r));
                    up.bytes += LINE_STRIDE;
                    up.records += 1;
                }
            }
            Some(Slot::Mesh(i)) => {
                if let Some(r) = layer.meshes.get(&id).and_then(|m| self.info(m)) {
                    self.infos[i as usize] = r;
                    self.queue.write_buffer(&self.info_buf.buffer, u64::from(i) * INFO_STRIDE, bytemuck::bytes_of(&r));
                    up.bytes += INFO_STRIDE;
                    up.records += 1;
                }
            }
            None => {}
        }
    }

    /// Lays every label out again and writes the glyphs and the atlas.
    fn relayout_labels(&mut self, up: &mut ShapeUpload) {
        let mut sources = Vec::new();
        for layer in self.layers.values() {
            for s in layer.shapes.values() {
                if let ShapeKind::Label { anchor, text, font_size } = &s.kind
                    && let Some(word) = self.anchors.resolve(anchor.target)
                {
                    sources.push(LabelSource {
                        anchor: word,
                        offset: anchor.offset,
                        text,
                        font_size: *font_size,
                        color: s.color,
                        pick_id: layer.pick_base.wrapping_add(s.id.0),
                    });
                }
            }
        }
        if sources.is_empty() && self.glyphs.is_empty() {
            return;
        }
        let mut glyphs = Vec::new();
        if !sources.is_empty() {
            let side = self.device.limits().max_texture_dimension_2d.min(4096);
            let fonts = self.fonts.get_or_insert_with(|| LabelFonts::new(side));
            let atlas = fonts.layout(sources, self.pixels_per_point, &mut glyphs);
            let size = (atlas.size[0].max(1), atlas.size[1].max(1));
            if atlas.coverage.len() as u64 == u64::from(size.0) * u64::from(size.1) {
                if (self.atlas.width(), self.atlas.height()) != size {
                    (self.atlas, self.atlas_view) =
                        texture_2d(&self.device, "glyph atlas", size, wgpu::TextureFormat::R8Unorm);
                    self.rebind();
                }
                write_texture(&self.queue, &self.atlas, size, 1, &atlas.coverage);
                up.bytes += atlas.coverage.len() as u64;
            }
        }
        if self.glyph_buf.write(&self.device, &self.queue, bytemuck::cast_slice(&glyphs)) {
            self.rebind();
        }
        up.bytes += std::mem::size_of_val(glyphs.as_slice()) as u64;
        self.glyphs = glyphs;
    }
}

/// Writes a mesh's `nv` vertices and `ni` indices into the mapped buffers.
///
/// wgpu 30 exposes mapped memory write-only (`WriteOnly`, no `&mut [u8]`: it may be
/// write-combining). A model mesh is therefore packed vertex by vertex straight into the mapping;
/// a frame record is decoded with [`MeshRef::decode_into`] into a CPU vector first (that API
/// wants `&mut [MeshVertex]`), then copied in once.
fn fill_mesh(
    source: &MeshSource<'_>,
    pick_id: u32,
    nv: usize,
    ni: usize,
    vmap: &mut wgpu::BufferViewMut,
    imap: &mut wgpu::BufferViewMut,
) -> Result<(), RenderError> {
    const STRIDE: usize = std::mem::size_of::<MeshVertex>();
    match source {
        MeshSource::Record(r) => {
            let mut v = vec![MeshVertex::default(); nv];
            let mut i = vec![0u32; ni];
            r.decode_into(pick_id, &mut v, &mut i).map_err(RenderError::Mesh)?;
            vmap.slice(..nv * STRIDE).copy_from_slice(bytemuck::cast_slice(&v));
            imap.slice(..ni * 4).copy_from_slice(bytemuck::cast_slice(&i));
        }
        MeshSource::Model(m, color) => {
            let (chunks, _) = vmap.slice(..nv * STRIDE).into_chunks::<STRIDE>();
            chunks.write_iter((0..nv).map(|i| {
                bytemuck::cast::<MeshVertex, [u8; STRIDE]>(MeshVertex {
                    position: m.positions.get(i).copied().unwrap_or(Vec3::ZERO).to_array(),
                    normal: m.normals.get(i).map_or(0, |n| pack_normal(*n)),
                    uv: m.uvs.get(i).map_or([0.0; 2], |u| u.to_array()),
                    color: m.colors.get(i).copied().unwrap_or(*color),
                    pick_id,
                })
            }));
            imap.slice(..ni * 4).copy_from_slice(bytemuck::cast_slice(&m.indices[..ni]));
        }
    }
    Ok(())
}

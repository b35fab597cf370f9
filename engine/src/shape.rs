//! Shapes that plugins draw into a session: spheres, lines, labels and triangle meshes, each
//! with a colour and anchored to the workspace, a complex or an atom.
//!
//! - The model: [`Shape`], [`ShapeKind`], [`Anchor`], [`Mesh`], and [`ShapeSet`], the shapes of
//!   one shape stream keyed by [`ShapeId`]. A `ShapeSet` applies the stream's frames (kinds 5
//!   and 6, see [`crate::codec::shapes`]): shapes created, replaced or destroyed, and sparse
//!   changes of anchors, colours and sizes ([`ShapeChange`]).
//! - GPU layouts, each the twin of a struct in `shaders/shapes.wgsl` (checked by
//!   `tests/wgsl_shapes.rs`): [`MeshVertex`] (what [`crate::codec::shapes::MeshRef::decode_into`]
//!   writes), [`SphereInstance`] and [`LineInstance`].
//!
//! **Anchors on the GPU.** An anchor resolves to one `u32` word: with [`ANCHOR_ATOM`] set, bits
//! 0-30 index the atom buffer (the shape follows that atom and its complex transform); otherwise
//! the word indexes the transform buffer (0 is the identity of the workspace). The viewer maps
//! [`AnchorTarget`]s to words, since only it knows where each complex sits in the shared buffers.
//! Labels are laid out by the viewer's text renderer and resolve their anchor the same way.
//!
//! **Mesh colours.** A mesh's [`Shape::color`] is the colour of its vertices when it has no
//! per-vertex colours; [`fill_mesh_color`] repaints a decoded vertex buffer after a colour change.

use std::collections::BTreeMap;

use bytemuck::{Pod, Zeroable};
use glam::{Vec2, Vec3};

use crate::codec::stream::Frame;
use crate::codec::{CodecError, FrameKind, Limits, shapes};
pub use crate::ids::ShapeId;
use crate::ids::{AtomId, ComplexId};

/// What an anchor is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnchorTarget {
    /// The workspace origin: the shape does not move with any complex.
    Workspace,
    /// A complex's frame: the shape moves with the complex's transform.
    Complex(ComplexId),
    /// An atom of a complex: the shape follows the atom's position (and the complex transform).
    Atom(ComplexId, AtomId),
}

/// A point attached to a target, plus an offset in the target's frame, Å.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    /// What the point is attached to.
    pub target: AnchorTarget,
    /// Offset from the target, Å, in the target's frame.
    pub offset: Vec3,
}

impl Anchor {
    /// A point of the workspace.
    #[must_use]
    pub const fn workspace(offset: Vec3) -> Self {
        Self { target: AnchorTarget::Workspace, offset }
    }

    /// A point in a complex's frame.
    #[must_use]
    pub const fn complex(complex: ComplexId, offset: Vec3) -> Self {
        Self { target: AnchorTarget::Complex(complex), offset }
    }

    /// A point at `offset` from an atom.
    #[must_use]
    pub const fn atom(complex: ComplexId, atom: AtomId, offset: Vec3) -> Self {
        Self { target: AnchorTarget::Atom(complex, atom), offset }
    }
}

/// An RGBA8 texture of a mesh, rows top to bottom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Texture {
    /// Width in pixels (≥ 1).
    pub width: u32,
    /// Height in pixels (≥ 1).
    pub height: u32,
    /// `width · height · 4` bytes, RGBA.
    pub rgba: Vec<u8>,
}

/// A triangle mesh. Positions are in the anchor's frame, Å. The optional per-vertex columns
/// (`normals`, `colors`, `uvs`) are either empty or as long as `positions`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mesh {
    /// Where the mesh's origin is.
    pub anchor: Anchor,
    /// Vertex positions relative to the anchor, Å.
    pub positions: Vec<Vec3>,
    /// Unit normals, one per vertex, or empty (the renderer then uses face normals). The codec
    /// keeps them to [`crate::codec::shapes::MeshOptions::normal_bits`]; a zero normal becomes
    /// +Z.
    pub normals: Vec<Vec3>,
    /// RGBA8 colours (red in the lowest byte), one per vertex, or empty for the shape colour.
    pub colors: Vec<u32>,
    /// Triangles: three vertex indices each, all below `positions.len()`.
    pub indices: Vec<u32>,
    /// Texture coordinates, one per vertex, or empty.
    pub uvs: Vec<Vec2>,
    /// Texture sampled at `uvs` (requires them).
    pub texture: Option<Texture>,
    /// Drawn without lighting.
    pub unlit: bool,
}

impl Mesh {
    /// A mesh with positions and triangles only.
    #[must_use]
    pub fn new(anchor: Anchor, positions: Vec<Vec3>, indices: Vec<u32>) -> Self {
        Self {
            anchor,
            positions,
            normals: Vec::new(),
            colors: Vec::new(),
            indices,
            uvs: Vec::new(),
            texture: None,
            unlit: false,
        }
    }

    /// Number of vertices.
    #[must_use]
    pub fn vertex_count(&self) -> usize {
        self.positions.len()
    }

    /// Number of triangles.
    #[must_use]
    pub fn triangle_count(&self) -> usize {
        self.indices.len() / 3
    }

    /// Checks the invariants: per-vertex columns empty or full, whole triangles, indices in
    /// range, a well-sized texture only with uvs, finite values, and the sizes within `limits`.
    pub fn validate(&self, limits: &Limits) -> Result<(), CodecError> {
        let v = self.positions.len();
        if v > limits.max_vertices as usize {
            return Err(CodecError::LimitExceeded { what: "mesh vertices", value: v as u64 });
        }
        if self.indices.len() / 3 > limits.max_triangles as usize {
            return Err(CodecError::LimitExceeded { what: "mesh triangles", value: (self.indices.len() / 3) as u64 });
        }
        for (len, what) in [
            (self.normals.len(), "mesh normals are neither empty nor one per vertex"),
            (self.colors.len(), "mesh colours are neither empty nor one per vertex"),
            (self.uvs.len(), "mesh uvs are neither empty nor one per vertex"),
        ] {
            if len != 0 && len != v {
                return Err(CodecError::Corrupt(what));
            }
        }
        if !self.indices.len().is_multiple_of(3) {
            return Err(CodecError::Corrupt("mesh index count is not a multiple of 3"));
        }
        if self.indices.iter().any(|&i| i as usize >= v) {
            return Err(CodecError::Corrupt("triangle index out of range"));
        }
        check_offset(self.anchor.offset)?;
        if !self.positions.iter().all(|p| p.is_finite()) {
            return Err(CodecError::Corrupt("non-finite mesh position"));
        }
        if !self.normals.iter().all(|p| p.is_finite()) {
            return Err(CodecError::Corrupt("non-finite mesh normal"));
        }
        if !self.uvs.iter().all(|p| p.is_finite()) {
            return Err(CodecError::Corrupt("non-finite mesh uv"));
        }
        if let Some(t) = &self.texture {
            check_texture(t.width, t.height, t.rgba.len(), limits)?;
            if self.uvs.is_empty() {
                return Err(CodecError::Corrupt("mesh texture without uvs"));
            }
        }
        Ok(())
    }

    /// A torus in the xy plane around the anchor: `rings` × `segments` quads (two triangles
    /// each) with a duplicated seam, so `(rings + 1) · (segments + 1)` vertices. Each vertex has
    /// its exact normal, a colour varying smoothly with both angles, and uv = (ring, segment)
    /// fractions. Triangles go ring by ring, each sharing an edge with the one before, as a
    /// mesher's output does. Used by the codec tests and `molstream-bench shapes`.
    #[must_use]
    pub fn torus(anchor: Anchor, major: f32, minor: f32, rings: u32, segments: u32) -> Self {
        let (rings, segments) = (rings.max(3), segments.max(3));
        let n = (rings as usize + 1) * (segments as usize + 1);
        let mut m =
            Self::new(anchor, Vec::with_capacity(n), Vec::with_capacity(rings as usize * segments as usize * 6));
        m.normals.reserve(n);
        m.colors.reserve(n);
        m.uvs.reserve(n);
        let tau = std::f32::consts::TAU;
        #[allow(clippy::cast_precision_loss)]
        for i in 0..=rings {
            let u = i as f32 / rings as f32;
            let (st, ct) = (u * tau).sin_cos();
            for j in 0..=segments {
                let v = j as f32 / segments as f32;
                let (sp, cp) = (v * tau).sin_cos();
                let normal = Vec3::new(cp * ct, cp * st, sp);
                m.positions.push(Vec3::new((major + minor * cp) * ct, (major + minor * cp) * st, minor * sp));
                m.normals.push(normal);
                m.uvs.push(Vec2::new(u, v));
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let c = |x: f32| (127.5 + 127.0 * x).round() as u32;
                m.colors.push(c(ct) | c(sp) << 8 | c(st * cp) << 16 | 0xff << 24);
            }
        }
        let row = segments + 1;
        for i in 0..rings {
            for j in 0..segments {
                let a = i * row + j;
                let (b, c, d) = (a + 1, a + row, a + row + 1);
                m.indices.extend_from_slice(&[a, c, b, b, c, d]);
            }
        }
        m
    }
}

/// What a shape is.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeKind {
    /// A sphere.
    Sphere {
        /// Centre.
        anchor: Anchor,
        /// Radius, Å (finite, ≥ 0).
        radius: f32,
    },
    /// A line segment between two anchors, solid or dashed.
    Line {
        /// First end.
        start: Anchor,
        /// Second end.
        end: Anchor,
        /// Thickness, Å (finite, ≥ 0).
        thickness: f32,
        /// Length of each dash, Å; 0 draws a solid line.
        dash_length: f32,
        /// Gap between dashes, Å.
        dash_gap: f32,
    },
    /// A text label.
    Label {
        /// Where the label is drawn.
        anchor: Anchor,
        /// UTF-8 text (at most `Limits::max_string` bytes).
        text: String,
        /// Font size in points.
        font_size: f32,
    },
    /// A triangle mesh.
    Mesh(Mesh),
}

impl ShapeKind {
    /// The anchor (the start of a line).
    #[must_use]
    pub fn anchor(&self) -> &Anchor {
        match self {
            Self::Sphere { anchor, .. } | Self::Label { anchor, .. } => anchor,
            Self::Line { start, .. } => start,
            Self::Mesh(m) => &m.anchor,
        }
    }
}

/// One shape of a session.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Id, unique within the shape stream.
    pub id: ShapeId,
    /// RGBA8 colour, red in the lowest byte (as [`crate::gpu::AtomInstance::color`]).
    pub color: u32,
    /// Geometry.
    pub kind: ShapeKind,
}

impl Shape {
    /// Checks that every value is finite, sizes are ≥ 0, strings and meshes within `limits`.
    pub fn validate(&self, limits: &Limits) -> Result<(), CodecError> {
        match &self.kind {
            ShapeKind::Sphere { anchor, radius } => {
                check_offset(anchor.offset)?;
                check_size(*radius)
            }
            ShapeKind::Line { start, end, thickness, dash_length, dash_gap } => {
                check_offset(start.offset)?;
                check_offset(end.offset)?;
                check_size(*thickness)?;
                check_size(*dash_length)?;
                check_size(*dash_gap)
            }
            ShapeKind::Label { anchor, text, font_size } => {
                check_offset(anchor.offset)?;
                if text.len() > limits.max_string {
                    return Err(CodecError::LimitExceeded { what: "label length", value: text.len() as u64 });
                }
                check_size(*font_size)
            }
            ShapeKind::Mesh(m) => m.validate(limits),
        }
    }
}

/// A sparse change of one shape: the fields that are `Some` replace the shape's. What a
/// ShapeDelta frame (kind 6) carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapeChange {
    /// The shape changed.
    pub id: ShapeId,
    /// New anchor (a line's start).
    pub anchor: Option<Anchor>,
    /// New end of a line (lines only).
    pub end: Option<Anchor>,
    /// New colour.
    pub color: Option<u32>,
    /// New sphere radius, line thickness or label font size (not for meshes).
    pub size: Option<f32>,
    /// New dash length and gap (lines only).
    pub dash: Option<[f32; 2]>,
}

impl ShapeChange {
    /// A change of nothing yet.
    #[must_use]
    pub const fn new(id: ShapeId) -> Self {
        Self { id, anchor: None, end: None, color: None, size: None, dash: None }
    }

    /// Whether no field changes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.anchor.is_none()
            && self.end.is_none()
            && self.color.is_none()
            && self.size.is_none()
            && self.dash.is_none()
    }

    /// Checks that every field applies to `shape`'s kind and every value is valid.
    pub fn check(&self, shape: &Shape) -> Result<(), CodecError> {
        if self.is_empty() {
            return Err(CodecError::Corrupt("shape change without fields"));
        }
        let is_line = matches!(shape.kind, ShapeKind::Line { .. });
        if (self.end.is_some() || self.dash.is_some()) && !is_line {
            return Err(CodecError::Corrupt("line field changed on a shape that is not a line"));
        }
        if self.size.is_some() && matches!(shape.kind, ShapeKind::Mesh(_)) {
            return Err(CodecError::Corrupt("size changed on a mesh"));
        }
        for a in self.anchor.iter().chain(&self.end) {
            check_offset(a.offset)?;
        }
        for s in self.size.iter().chain(self.dash.iter().flatten()) {
            check_size(*s)?;
        }
        Ok(())
    }

    /// Applies the change to `shape` (call [`ShapeChange::check`] first; fields that do not
    /// apply are ignored).
    pub fn apply_to(&self, shape: &mut Shape) {
        if let Some(c) = self.color {
            shape.color = c;
        }
        match &mut shape.kind {
            ShapeKind::Sphere { anchor, radius } => {
                set(anchor, self.anchor);
                set(radius, self.size);
            }
            ShapeKind::Line { start, end, thickness, dash_length, dash_gap } => {
                set(start, self.anchor);
                set(end, self.end);
                set(thickness, self.size);
                if let Some([l, g]) = self.dash {
                    *dash_length = l;
                    *dash_gap = g;
                }
            }
            ShapeKind::Label { anchor, font_size, .. } => {
                set(anchor, self.anchor);
                set(font_size, self.size);
            }
            ShapeKind::Mesh(m) => set(&mut m.anchor, self.anchor),
        }
    }

    /// The change turning `old` into `new` when they differ only in fields a change carries;
    /// `None` when a whole new shape must be sent (other kind, geometry, text) or nothing
    /// changed.
    #[must_use]
    pub fn between(old: &Shape, new: &Shape) -> Option<Self> {
        let mut c = Self::new(new.id);
        let diff = |a: &Anchor, b: &Anchor| (a != b).then_some(*b);
        let diff_f = |a: f32, b: f32| (a.to_bits() != b.to_bits()).then_some(b);
        c.color = (old.color != new.color).then_some(new.color);
        match (&old.kind, &new.kind) {
            (ShapeKind::Sphere { anchor: a0, radius: r0 }, ShapeKind::Sphere { anchor: a1, radius: r1 }) => {
                c.anchor = diff(a0, a1);
                c.size = diff_f(*r0, *r1);
            }
            (
                ShapeKind::Line { start: s0, end: e0, thickness: t0, dash_length: l0, dash_gap: g0 },
                ShapeKind::Line { start: s1, end: e1, thickness: t1, dash_length: l1, dash_gap: g1 },
            ) => {
                c.anchor = diff(s0, s1);
                c.end = diff(e0, e1);
                c.size = diff_f(*t0, *t1);
                if l0.to_bits() != l1.to_bits() || g0.to_bits() != g1.to_bits() {
                    c.dash = Some([*l1, *g1]);
                }
            }
            (
                ShapeKind::Label { anchor: a0, text: x0, font_size: f0 },
                ShapeKind::Label { anchor: a1, text: x1, font_size: f1 },
            ) if x0 == x1 => {
                c.anchor = diff(a0, a1);
                c.size = diff_f(*f0, *f1);
            }
            (ShapeKind::Mesh(m0), ShapeKind::Mesh(m1)) if same_geometry(m0, m1) => {
                c.anchor = diff(&m0.anchor, &m1.anchor);
            }
            _ => return None,
        }
        (!c.is_empty()).then_some(c)
    }
}

/// Whether two meshes differ at most in their anchor.
fn same_geometry(a: &Mesh, b: &Mesh) -> bool {
    a.unlit == b.unlit
        && a.positions == b.positions
        && a.indices == b.indices
        && a.normals == b.normals
        && a.colors == b.colors
        && a.uvs == b.uvs
        && a.texture == b.texture
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

/// An anchor offset must be finite.
pub(crate) fn check_offset(o: Vec3) -> Result<(), CodecError> {
    if o.is_finite() { Ok(()) } else { Err(CodecError::Corrupt("non-finite anchor offset")) }
}

/// Radii, thicknesses, dash lengths and font sizes must be finite and ≥ 0.
pub(crate) fn check_size(v: f32) -> Result<(), CodecError> {
    if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(CodecError::Corrupt("shape size negative or not finite")) }
}

/// A texture must be non-empty, `w · h · 4` bytes, within the limit.
pub(crate) fn check_texture(width: u32, height: u32, bytes: usize, limits: &Limits) -> Result<(), CodecError> {
    let need = u64::from(width) * u64::from(height) * 4;
    if need > limits.max_texture_bytes as u64 {
        return Err(CodecError::LimitExceeded { what: "texture bytes", value: need });
    }
    if width == 0 || height == 0 || need != bytes as u64 {
        return Err(CodecError::Corrupt("texture size does not match its width and height"));
    }
    Ok(())
}

/// The shapes of one shape stream, keyed by id, and the sequence number of the last frame
/// applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShapeSet {
    shapes: BTreeMap<ShapeId, Shape>,
    held: Option<(u32, u32)>,
    limits: Limits,
}

/// What applying a shapes frame did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShapesApplied {
    /// The frame was a full frame: every shape held before was dropped.
    pub reset: bool,
    /// Shapes created or replaced.
    pub upserted: usize,
    /// Shapes destroyed.
    pub destroyed: usize,
    /// Shapes changed by a ShapeDelta.
    pub changed: usize,
}

/// The frames that bring one [`ShapeSet`] to another: what [`ShapeSet::diff`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShapeDiff<'a> {
    /// Shapes to create or replace whole (new, or changed beyond a [`ShapeChange`]).
    pub upserts: Vec<&'a Shape>,
    /// Shapes to destroy.
    pub destroys: Vec<ShapeId>,
    /// Sparse changes.
    pub changes: Vec<ShapeChange>,
}

impl ShapeSet {
    /// An empty set enforcing `limits` on the frames it applies.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { shapes: BTreeMap::new(), held: None, limits }
    }

    /// The limits the set enforces.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A shape by id.
    #[must_use]
    pub fn get(&self, id: ShapeId) -> Option<&Shape> {
        self.shapes.get(&id)
    }

    /// All shapes, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = &Shape> {
        self.shapes.values()
    }

    /// Number of shapes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shapes.len()
    }

    /// Whether the set holds no shape.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shapes.is_empty()
    }

    /// Sequence number of the last frame applied.
    #[must_use]
    pub fn held_seq(&self) -> Option<u32> {
        self.held.map(|(_, s)| s)
    }

    /// Inserts or replaces a shape (a sender building the set it wants the receivers to hold).
    /// Returns the shape it replaced.
    pub fn insert(&mut self, shape: Shape) -> Result<Option<Shape>, CodecError> {
        shape.validate(&self.limits)?;
        if !self.shapes.contains_key(&shape.id) && self.shapes.len() >= self.limits.max_shapes as usize {
            return Err(CodecError::LimitExceeded { what: "shapes held", value: self.shapes.len() as u64 + 1 });
        }
        Ok(self.shapes.insert(shape.id, shape))
    }

    /// Removes a shape.
    pub fn remove(&mut self, id: ShapeId) -> Option<Shape> {
        self.shapes.remove(&id)
    }

    /// Applies a sparse change; on error nothing changes.
    pub fn change(&mut self, change: &ShapeChange) -> Result<(), CodecError> {
        let shape = self.shapes.get_mut(&change.id).ok_or(CodecError::Corrupt("change of a shape not held"))?;
        change.check(shape)?;
        change.apply_to(shape);
        Ok(())
    }

    /// What turns `self` into `target`: shapes to create or replace, shapes to destroy, and
    /// sparse changes for shapes that differ only in anchor, colour or size.
    #[must_use]
    pub fn diff<'a>(&self, target: &'a ShapeSet) -> ShapeDiff<'a> {
        let mut d = ShapeDiff::default();
        for (id, new) in &target.shapes {
            match self.shapes.get(id) {
                None => d.upserts.push(new),
                Some(old) if old == new => {}
                Some(old) => match ShapeChange::between(old, new) {
                    Some(c) => d.changes.push(c),
                    None => d.upserts.push(new),
                },
            }
        }
        d.destroys = self.shapes.keys().filter(|id| !target.shapes.contains_key(id)).copied().collect();
        d
    }

    /// Applies a frame of kind 5 (shapes created, replaced, destroyed) or 6 (sparse changes).
    ///
    /// A full shapes frame (its base is itself) replaces everything held. Any other frame must
    /// be based on the sequence number held, in the same stream, else the error is
    /// [`CodecError::NeedKeyframe`] and the sender must send a full frame. The frame is decoded
    /// and checked whole before anything changes: on every error the set is as it was.
    pub fn apply(&mut self, frame: &Frame) -> Result<ShapesApplied, CodecError> {
        let h = &frame.header;
        let need_base = || CodecError::NeedKeyframe {
            stream_id: h.stream_id,
            seq: h.seq,
            base_seq: h.base_seq,
            held: self.held.map(|(_, s)| s),
        };
        let based = self.held == Some((h.stream_id, h.base_seq));
        let applied = match h.kind {
            FrameKind::Shapes => {
                // A full frame is based on itself (the decoder checks its flag agrees).
                if h.base_seq != h.seq && !based {
                    return Err(need_base());
                }
                let update = shapes::decode_shapes(&frame.payload, h, &self.limits)?;
                self.apply_update(update)?
            }
            FrameKind::ShapeDelta => {
                if !based {
                    return Err(need_base());
                }
                let changes = shapes::decode_changes(&frame.payload, h, &self.limits)?;
                let mut seen = std::collections::BTreeSet::new();
                for c in &changes {
                    if !seen.insert(c.id) {
                        return Err(CodecError::Corrupt("two changes of one shape in a frame"));
                    }
                    c.check(self.shapes.get(&c.id).ok_or(CodecError::Corrupt("change of a shape not held"))?)?;
                }
                for c in &changes {
                    if let Some(s) = self.shapes.get_mut(&c.id) {
                        c.apply_to(s);
                    }
                }
                ShapesApplied { changed: changes.len(), ..ShapesApplied::default() }
            }
            kind => return Err(CodecError::UnknownKind(kind as u8)),
        };
        self.held = Some((h.stream_id, h.seq));
        Ok(applied)
    }

    /// Checks a decoded kind-5 update against the set, then applies it.
    fn apply_update(&mut self, u: shapes::ShapesUpdate) -> Result<ShapesApplied, CodecError> {
        let mut destroyed = std::collections::BTreeSet::new();
        for id in &u.destroys {
            if !self.shapes.contains_key(id) {
                return Err(CodecError::Corrupt("destroy of a shape not held"));
            }
            if !destroyed.insert(*id) {
                return Err(CodecError::Corrupt("shape destroyed twice in a frame"));
            }
        }
        let mut upserted = std::collections::BTreeSet::new();
        for s in &u.shapes {
            if !upserted.insert(s.id) {
                return Err(CodecError::Corrupt("shape sent twice in a frame"));
            }
        }
        let held_after = if u.full {
            u.shapes.len()
        } else {
            let kept = self.shapes.keys().filter(|id| !destroyed.contains(id) && !upserted.contains(id)).count();
            kept + u.shapes.len()
        };
        if held_after > self.limits.max_shapes as usize {
            return Err(CodecError::LimitExceeded { what: "shapes held", value: held_after as u64 });
        }
        if u.full {
            self.shapes.clear();
        }
        for id in &u.destroys {
            self.shapes.remove(id);
        }
        let upserts = u.shapes.len();
        for s in u.shapes {
            self.shapes.insert(s.id, s);
        }
        Ok(ShapesApplied { reset: u.full, upserted: upserts, destroyed: destroyed.len(), changed: 0 })
    }
}

// ---------------------------------------------------------------------------------------------
// GPU layouts

/// Set in an anchor word: bits 0-30 index the atom buffer. Clear: the word indexes the
/// transform buffer (0 = workspace identity). Mirror of `ANCHOR_ATOM` in `shaders/shapes.wgsl`.
pub const ANCHOR_ATOM: u32 = 0x8000_0000;

/// One mesh vertex as the GPU sees it. Mirror of `MeshVertex` in `shaders/shapes.wgsl`
/// (32 bytes, align 16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C, align(16))]
pub struct MeshVertex {
    /// Position relative to the mesh anchor, Å (WGSL `vec3<f32>`, offset 0).
    pub position: [f32; 3],
    /// Octahedral unit normal as two snorm16 (x in the low half; WGSL `unpack2x16snorm` then
    /// `oct_decode`), offset 12; 0 (+Z) when the mesh has no normals. See [`pack_normal`].
    pub normal: u32,
    /// Texture coordinates (WGSL `vec2<f32>`, offset 16); 0 without uvs.
    pub uv: [f32; 2],
    /// RGBA8 colour, red in the lowest byte (offset 24).
    pub color: u32,
    /// Picking id of the mesh, the same for every vertex (offset 28).
    pub pick_id: u32,
}

/// A sphere as the GPU sees it. Mirror of `SphereInstance` in `shaders/shapes.wgsl` (28 bytes,
/// align 4: the offset is an `array<f32, 3>`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct SphereInstance {
    /// Centre relative to the anchor, Å (offset 0).
    pub offset: [f32; 3],
    /// Radius, Å (offset 12).
    pub radius: f32,
    /// RGBA8 colour (offset 16).
    pub color: u32,
    /// Anchor word (offset 20; see [`ANCHOR_ATOM`]).
    pub anchor: u32,
    /// Picking id (offset 24).
    pub pick_id: u32,
}

/// A line as the GPU sees it. Mirror of `LineInstance` in `shaders/shapes.wgsl` (52 bytes,
/// align 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct LineInstance {
    /// Start relative to its anchor, Å (offset 0).
    pub start: [f32; 3],
    /// End relative to its anchor, Å (offset 12).
    pub end: [f32; 3],
    /// Thickness, Å (offset 24).
    pub thickness: f32,
    /// Dash length, Å; 0 = solid (offset 28).
    pub dash_length: f32,
    /// Gap between dashes, Å (offset 32).
    pub dash_gap: f32,
    /// RGBA8 colour (offset 36).
    pub color: u32,
    /// Anchor word of the start (offset 40).
    pub start_anchor: u32,
    /// Anchor word of the end (offset 44).
    pub end_anchor: u32,
    /// Picking id (offset 48).
    pub pick_id: u32,
}

/// Appends one [`SphereInstance`] per sphere and one [`LineInstance`] per line of `set`, in id
/// order. `resolve` gives the anchor word of a target, or `None` when the target is not loaded
/// (the shape is then skipped). Shape `id` gets pick id `pick_base + id` (wrapping).
pub fn build_shape_instances(
    set: &ShapeSet,
    pick_base: u32,
    resolve: impl Fn(AnchorTarget) -> Option<u32>,
    spheres: &mut Vec<SphereInstance>,
    lines: &mut Vec<LineInstance>,
) {
    for s in set.iter() {
        let pick_id = pick_base.wrapping_add(s.id.0);
        match &s.kind {
            ShapeKind::Sphere { anchor: a, radius } => {
                if let Some(anchor) = resolve(a.target) {
                    spheres.push(SphereInstance {
                        offset: a.offset.to_array(),
                        radius: *radius,
                        color: s.color,
                        anchor,
                        pick_id,
                    });
                }
            }
            ShapeKind::Line { start, end, thickness, dash_length, dash_gap } => {
                if let (Some(sa), Some(ea)) = (resolve(start.target), resolve(end.target)) {
                    lines.push(LineInstance {
                        start: start.offset.to_array(),
                        end: end.offset.to_array(),
                        thickness: *thickness,
                        dash_length: *dash_length,
                        dash_gap: *dash_gap,
                        color: s.color,
                        start_anchor: sa,
                        end_anchor: ea,
                        pick_id,
                    });
                }
            }
            ShapeKind::Label { .. } | ShapeKind::Mesh(_) => {}
        }
    }
}

/// Sets the colour of every vertex (a mesh without per-vertex colours whose shape colour
/// changed).
pub fn fill_mesh_color(vertices: &mut [MeshVertex], color: u32) {
    for v in vertices {
        v.color = color;
    }
}

/// Largest magnitude of a `bits`-bit signed normalized value (`2^(bits−1) − 1`), for `bits` in
/// 2..=16.
#[must_use]
pub const fn snorm_max(bits: u32) -> i32 {
    (1 << (bits - 1)) - 1
}

fn sign(v: f32) -> f32 {
    if v >= 0.0 { 1.0 } else { -1.0 }
}

/// The octahedral map of a direction onto the square [−1, 1]², before quantization.
fn oct_project(n: Vec3) -> Vec2 {
    let l1 = n.x.abs() + n.y.abs() + n.z.abs();
    if !(l1.is_finite() && l1 > 0.0) {
        return Vec2::ZERO;
    }
    let n = n / l1;
    if n.z >= 0.0 {
        Vec2::new(n.x, n.y)
    } else {
        Vec2::new((1.0 - n.y.abs()) * sign(n.x), (1.0 - n.x.abs()) * sign(n.y))
    }
}

/// The unit direction of a point of the octahedral square.
fn oct_unproject(e: Vec2) -> Vec3 {
    let z = 1.0 - e.x.abs() - e.y.abs();
    let n = if z < 0.0 {
        Vec3::new((1.0 - e.y.abs()) * sign(e.x), (1.0 - e.x.abs()) * sign(e.y), z)
    } else {
        Vec3::new(e.x, e.y, z)
    };
    n.normalize_or(Vec3::Z)
}

/// Octahedral encoding of a direction as two signed integers of `bits` bits (2..=16), each in
/// `±snorm_max(bits)`. Of the four neighbouring grid points, the one decoding closest to `n` is
/// chosen. A zero or non-finite vector encodes +Z.
#[must_use]
pub fn oct_encode(n: Vec3, bits: u32) -> [i32; 2] {
    let m = snorm_max(bits);
    #[allow(clippy::cast_precision_loss)]
    let mf = m as f32;
    let p = oct_project(n) * mf;
    let n = n.normalize_or(Vec3::Z);
    let mut best = [0, 0];
    let mut best_dot = f32::NEG_INFINITY;
    #[allow(clippy::cast_possible_truncation)]
    for x in [p.x.floor(), p.x.ceil()] {
        for y in [p.y.floor(), p.y.ceil()] {
            let q = [(x as i32).clamp(-m, m), (y as i32).clamp(-m, m)];
            let d = oct_decode(q, bits).dot(n);
            if d > best_dot {
                best_dot = d;
                best = q;
            }
        }
    }
    best
}

/// Inverse of [`oct_encode`]: the unit direction of two `bits`-bit snorm values.
#[must_use]
pub fn oct_decode(q: [i32; 2], bits: u32) -> Vec3 {
    #[allow(clippy::cast_precision_loss)]
    let m = snorm_max(bits) as f32;
    #[allow(clippy::cast_precision_loss)]
    oct_unproject(Vec2::new((q[0] as f32 / m).max(-1.0), (q[1] as f32 / m).max(-1.0)))
}

/// Packs two 16-bit snorm octahedral values into the [`MeshVertex::normal`] word (x low).
#[must_use]
pub fn pack_oct16(q: [i32; 2]) -> u32 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let h = |v: i32| u32::from(v.clamp(-32767, 32767) as i16 as u16);
    h(q[0]) | h(q[1]) << 16
}

/// A unit normal as the [`MeshVertex::normal`] word (16-bit octahedral).
#[must_use]
pub fn pack_normal(n: Vec3) -> u32 {
    pack_oct16(oct_encode(n, 16))
}

/// The direction of a [`MeshVertex::normal`] word, as the shader's `oct_decode` computes it.
#[must_use]
pub fn unpack_normal(word: u32) -> Vec3 {
    #[allow(clippy::cast_possible_truncation)]
    let lo = i32::from(word as u16 as i16);
    let hi = i32::from((word >> 16) as u16 as i16);
    oct_decode([lo, hi], 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oct16_round_trips_axes_and_diagonals() {
        for n in
            [Vec3::X, Vec3::Y, Vec3::Z, -Vec3::X, -Vec3::Y, -Vec3::Z, Vec3::ONE, -Vec3::ONE, Vec3::new(1.0, -2.0, -3.0)]
        {
            let n = n.normalize();
            let back = unpack_normal(pack_normal(n));
            assert!(back.dot(n) > 0.999_999, "{n} -> {back}");
        }
        assert_eq!(unpack_normal(pack_normal(Vec3::ZERO)), Vec3::Z);
    }

    #[test]
    fn torus_is_a_valid_mesh() {
        let m = Mesh::torus(Anchor::workspace(Vec3::ZERO), 10.0, 3.0, 20, 10);
        m.validate(&Limits::default()).unwrap();
        assert_eq!(m.vertex_count(), 21 * 11);
        assert_eq!(m.triangle_count(), 400);
        for (p, n) in m.positions.iter().zip(&m.normals) {
            assert!((n.length() - 1.0).abs() < 1e-5);
            // The normal points away from the tube's core circle.
            let core = Vec3::new(p.x, p.y, 0.0).normalize() * 10.0;
            assert!((*p - core).normalize().dot(*n) > 0.999, "{p} {n}");
        }
    }

    #[test]
    fn instances_resolve_anchors_and_skip_unloaded_targets() {
        let mut set = ShapeSet::new(Limits::default());
        let atom = Anchor::atom(ComplexId(1), AtomId(5), Vec3::new(0.0, 0.0, 1.0));
        let line = ShapeKind::Line {
            start: Anchor::workspace(Vec3::X),
            end: atom,
            thickness: 0.2,
            dash_length: 0.5,
            dash_gap: 0.25,
        };
        set.insert(Shape { id: ShapeId(3), color: 7, kind: ShapeKind::Sphere { anchor: atom, radius: 1.5 } }).unwrap();
        set.insert(Shape { id: ShapeId(4), color: 8, kind: line }).unwrap();
        let unloaded = Anchor::complex(ComplexId(9), Vec3::ZERO);
        set.insert(Shape { id: ShapeId(5), color: 9, kind: ShapeKind::Sphere { anchor: unloaded, radius: 1.0 } })
            .unwrap();
        let label = ShapeKind::Label { anchor: atom, text: "a".into(), font_size: 10.0 };
        set.insert(Shape { id: ShapeId(6), color: 1, kind: label }).unwrap();
        let resolve = |t: AnchorTarget| match t {
            AnchorTarget::Workspace => Some(0),
            AnchorTarget::Complex(ComplexId(1)) => Some(2),
            AnchorTarget::Atom(ComplexId(1), a) => Some(ANCHOR_ATOM | (100 + a.0)),
            _ => None,
        };
        let (mut spheres, mut lines) = (Vec::new(), Vec::new());
        build_shape_instances(&set, 1000, resolve, &mut spheres, &mut lines);
        assert_eq!(
            spheres,
            [SphereInstance {
                offset: [0.0, 0.0, 1.0],
                radius: 1.5,
                color: 7,
                anchor: ANCHOR_ATOM | 105,
                pick_id: 1003
            }]
        );
        assert_eq!(lines.len(), 1);
        let l = lines[0];
        assert_eq!(
            (l.start, l.end, l.start_anchor, l.end_anchor),
            ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], 0, ANCHOR_ATOM | 105)
        );
        assert_eq!((l.thickness, l.dash_length, l.dash_gap, l.color, l.pick_id), (0.2, 0.5, 0.25, 8, 1004));
    }

    #[test]
    fn changes_apply_only_where_they_fit() {
        let mut set = ShapeSet::new(Limits::default());
        let sphere = Shape {
            id: ShapeId(1),
            color: 1,
            kind: ShapeKind::Sphere { anchor: Anchor::workspace(Vec3::ZERO), radius: 1.0 },
        };
        set.insert(sphere.clone()).unwrap();
        let mut c = ShapeChange::new(ShapeId(1));
        c.dash = Some([1.0, 1.0]);
        assert!(set.change(&c).is_err());
        assert_eq!(set.get(ShapeId(1)), Some(&sphere));
        c.dash = None;
        c.size = Some(2.5);
        set.change(&c).unwrap();
        assert!(matches!(set.get(ShapeId(1)).unwrap().kind, ShapeKind::Sphere { radius: 2.5, .. }));
        assert!(set.change(&ShapeChange { id: ShapeId(9), color: Some(3), ..ShapeChange::new(ShapeId(9)) }).is_err());
    }
}

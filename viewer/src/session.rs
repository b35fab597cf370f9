//! The session's scene drives the renderer: sans-IO, in three steps.
//!
//! 1. [`SceneSync::diff`] compares the room's [`RoomScene`] (kept by the session client, see
//!    `molstream_net::scene`) with what it saw last and returns [`SceneUpdate`]s: complexes
//!    added, replaced (keyframe, topology delta, display attributes, name or visibility) or
//!    removed; atoms moved (only the changed range, as positions); placements (complex
//!    transforms); each instance's shapes with what changed ([`ShapeEdits`]); the instances'
//!    effects (notifications, URLs, camera focus). Cheap when nothing changed: a complex is
//!    compared atom by atom only when its stream moved on (source, sequence number or frame
//!    count), a shape set only when its sequence number or size changed.
//! 2. [`apply`] applies updates to the window's [`SceneData`] (room complexes are documents of
//!    [`DocSource::Room`]) and returns the [`GpuWork`] they need: a relayout (a complex came,
//!    went or changed its atom or bond count: buffers are created again), atom ranges to write
//!    in place (positions and attributes: one `queue.write_buffer` of each changed range, the
//!    bonds follow since they read their ends from the atom buffer), the transform buffer, shape
//!    layers to set or update.
//! 3. [`upload`] does that work on a [`Renderer`].
//!
//! The window (`crate::app` through `crate::live`) and the headless test session
//! (`crate::testing`) run the same three steps; only where the [`RoomScene`] is read differs.
//! [`Command`] lists what a user asks of the room from the panels (activate, run, advanced
//! settings, deactivate, integrations, selection, menu events); `crate::live` sends them.

use std::collections::BTreeMap;
use std::ops::Range;

use glam::{Mat4, Quat, Vec3};
use molstream_engine::gpu::{AtomInstance, BondInstance};
use molstream_engine::shape::ShapeSet;
use molstream_engine::{AtomId, Complex, ComplexId};
use molstream_net::menu::MenuEvent;
use molstream_net::proto::{InstanceId, PluginId};
use molstream_net::scene::{Effect, RoomScene};

use crate::render::{RenderError, Renderer, ShapeEdits, ShapeUpload};
use crate::workspace::{DocSource, SceneData};

/// First pick id of plugin shapes: atom pick ids stay below it. Instance `i`'s shapes get
/// pick ids from `SHAPE_PICK_BASE + (i mod 2048) · 2²⁰` ([`shape_pick_base`]).
pub const SHAPE_PICK_BASE: u32 = 0x8000_0000;

/// The shape stream an instance's shapes are drawn as ([`crate::render::ShapeLayers`]).
#[must_use]
pub fn shape_stream(instance: InstanceId) -> u32 {
    instance.0
}

/// The pick id of shape 0 of an instance (shape `n` is picked as base + n).
#[must_use]
pub fn shape_pick_base(instance: InstanceId) -> u32 {
    SHAPE_PICK_BASE | ((instance.0 & 0x7ff) << 20)
}

/// The instance whose shape a pick id hit, if it is a shape's (the shape id is the low 20 bits;
/// instances are known modulo 2048).
#[must_use]
pub fn shape_of_pick(pick_id: u32) -> Option<(u32, u32)> {
    (pick_id >= SHAPE_PICK_BASE).then_some(((pick_id >> 20) & 0x7ff, pick_id & 0xf_ffff))
}

/// One change of the room, as the viewer applies it.
#[derive(Clone, Debug, PartialEq)]
pub enum SceneUpdate {
    /// A complex appeared, or changed beyond positions and placement (keyframe, topology,
    /// display attributes, name, visibility): its whole current state.
    Complex(Box<Complex>),
    /// Atoms `first..first + positions.len()` of a complex moved (a position stream).
    Positions {
        /// The complex.
        complex: ComplexId,
        /// First atom of the changed range.
        first: AtomId,
        /// New positions of the range, Å, in the complex's frame.
        positions: Vec<Vec3>,
    },
    /// A complex's placement in the workspace changed.
    Placement {
        /// The complex.
        complex: ComplexId,
        /// Position.
        position: Vec3,
        /// Rotation.
        rotation: Quat,
    },
    /// A complex left the room.
    Removed(ComplexId),
    /// An instance's shapes changed.
    Shapes {
        /// The instance.
        instance: InstanceId,
        /// Its shapes now.
        set: Box<ShapeSet>,
        /// What changed since the last update (`full`: the instance's first shapes).
        edits: ShapeEdits,
    },
    /// An instance's shapes are gone (it stopped, or the room was joined again).
    ShapesRemoved(InstanceId),
    /// An instance asked for a notification, a URL or a camera focus.
    Effect(Effect),
}

/// What the sync remembers of a complex: the stream position it was seen at and the instance
/// buffers, to find what a later frame changed.
#[derive(Clone, Debug)]
struct Seen {
    key: ((InstanceId, u32), Option<u32>, u64),
    atoms: Vec<AtomInstance>,
    bonds: Vec<BondInstance>,
    position: Vec3,
    rotation: Quat,
    name: String,
    visible: bool,
}

/// Finds what changed in a [`RoomScene`] since the last call. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct SceneSync {
    complexes: BTreeMap<ComplexId, Seen>,
    shapes: BTreeMap<InstanceId, ShapeSet>,
    effects_seen: u64,
}

impl SceneSync {
    /// A sync that has seen nothing: the first [`SceneSync::diff`] reports the whole room.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// What changed in `scene` since the last call (removals first, then complexes in
    /// workspace order, shapes, effects). Empty when nothing did.
    pub fn diff(&mut self, scene: &RoomScene) -> Vec<SceneUpdate> {
        let mut out = Vec::new();
        let gone: Vec<ComplexId> =
            self.complexes.keys().filter(|id| scene.scene_complex(**id).is_none()).copied().collect();
        for id in gone {
            self.complexes.remove(&id);
            out.push(SceneUpdate::Removed(id));
        }
        for complex in scene.workspace().complexes() {
            let Some(sc) = scene.scene_complex(complex.id) else { continue };
            self.complex(complex, sc, &mut out);
        }
        self.diff_shapes(scene, &mut out);
        let effects = scene.effects();
        let total = scene.effects_dropped() + effects.len() as u64;
        if total < self.effects_seen {
            // A fresh scene (the client joined the room again).
            self.effects_seen = 0;
        }
        let new = usize::try_from(total - self.effects_seen).unwrap_or(usize::MAX).min(effects.len());
        out.extend(effects[effects.len() - new..].iter().cloned().map(SceneUpdate::Effect));
        self.effects_seen = total;
        out
    }

    fn complex(&mut self, complex: &Complex, sc: &molstream_net::scene::SceneComplex, out: &mut Vec<SceneUpdate>) {
        let id = complex.id;
        let key = (sc.source, sc.decoder.held_seq(), sc.frames);
        let atoms = &sc.buffers.atoms;
        let seen = match self.complexes.get_mut(&id) {
            Some(s)
                if s.atoms.len() == atoms.len()
                    && s.bonds == sc.buffers.bonds
                    && s.name == complex.name
                    && s.visible == complex.visible =>
            {
                s
            }
            _ => {
                // New, or a topology, name or visibility change: the whole complex.
                let seen = Seen {
                    key,
                    atoms: atoms.clone(),
                    bonds: sc.buffers.bonds.clone(),
                    position: complex.position,
                    rotation: complex.rotation,
                    name: complex.name.clone(),
                    visible: complex.visible,
                };
                self.complexes.insert(id, seen);
                out.push(SceneUpdate::Complex(Box::new(complex.clone())));
                return;
            }
        };
        if seen.key != key {
            seen.key = key;
            // Word by word (bit patterns: a NaN equals itself): words 0–2 are the position,
            // 3–5 radius, colour and flags (pick id and transform are the decoder's constants).
            let (mut first, mut last) = (usize::MAX, 0);
            let mut attributes = false;
            for (i, (old, new)) in seen.atoms.iter().zip(atoms).enumerate() {
                let (a, b): (&[u32; 8], &[u32; 8]) = (bytemuck::cast_ref(old), bytemuck::cast_ref(new));
                if a[..3] != b[..3] {
                    first = first.min(i);
                    last = i;
                }
                attributes |= a[3..6] != b[3..6];
            }
            let moved = (first != usize::MAX).then_some((first, last));
            if attributes {
                seen.atoms.clone_from(atoms);
                seen.position = complex.position;
                seen.rotation = complex.rotation;
                out.push(SceneUpdate::Complex(Box::new(complex.clone())));
                return;
            }
            if let Some((first, last)) = moved {
                seen.atoms[first..=last].copy_from_slice(&atoms[first..=last]);
                let positions = atoms[first..=last].iter().map(|a| Vec3::from_array(a.position)).collect();
                let first = AtomId(u32::try_from(first).unwrap_or(u32::MAX));
                out.push(SceneUpdate::Positions { complex: id, first, positions });
            }
        }
        if seen.position != complex.position || seen.rotation != complex.rotation {
            seen.position = complex.position;
            seen.rotation = complex.rotation;
            out.push(SceneUpdate::Placement { complex: id, position: complex.position, rotation: complex.rotation });
        }
    }

    fn diff_shapes(&mut self, scene: &RoomScene, out: &mut Vec<SceneUpdate>) {
        let gone: Vec<InstanceId> = self.shapes.keys().filter(|i| scene.shapes(**i).is_none()).copied().collect();
        for instance in gone {
            self.shapes.remove(&instance);
            out.push(SceneUpdate::ShapesRemoved(instance));
        }
        for (instance, set) in scene.all_shapes() {
            let edits = match self.shapes.get(&instance) {
                None => {
                    ShapeEdits { full: true, upserted: set.iter().map(|s| s.id).collect(), ..ShapeEdits::default() }
                }
                Some(old) if old.held_seq() == set.held_seq() && old.len() == set.len() => continue,
                Some(old) => {
                    let d = old.diff(set);
                    ShapeEdits {
                        full: false,
                        upserted: d.upserts.iter().map(|s| s.id).collect(),
                        destroyed: d.destroys,
                        changed: d.changes.iter().map(|c| c.id).collect(),
                    }
                }
            };
            self.shapes.insert(instance, set.clone());
            if edits.full || !(edits.upserted.is_empty() && edits.destroyed.is_empty() && edits.changed.is_empty()) {
                out.push(SceneUpdate::Shapes { instance, set: Box::new(set.clone()), edits });
            }
        }
    }
}

/// A shape layer to set, update or drop.
#[derive(Clone, Debug, PartialEq)]
pub enum ShapeWork {
    /// Set or update an instance's shapes ([`crate::render::ShapeLayers::set`] when
    /// `edits.full`, else [`crate::render::ShapeLayers::update`]).
    Update {
        /// The instance.
        instance: InstanceId,
        /// Its shapes now.
        set: Box<ShapeSet>,
        /// What changed.
        edits: ShapeEdits,
    },
    /// Drop an instance's shapes.
    Remove(InstanceId),
}

/// What applying updates asks of the GPU (and of the window).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuWork {
    /// Documents were added, removed or changed their atom or bond count: the buffers must be
    /// created again from the scene (and the shape anchors resolved again).
    pub relayout: bool,
    /// Atom ranges of [`SceneData::atoms`] to write in place (when no relayout).
    pub atoms: Vec<Range<usize>>,
    /// The transform buffer must be written (when no relayout).
    pub transforms: bool,
    /// Shape layers to change, in order.
    pub shapes: Vec<ShapeWork>,
    /// Effects for the window: notifications, URLs, camera focus.
    pub effects: Vec<Effect>,
    /// Complexes that appeared (the window may frame them).
    pub added: Vec<ComplexId>,
}

impl GpuWork {
    /// Whether there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn write(&mut self, range: Range<usize>) {
        if range.is_empty() {
            return;
        }
        // Merge with an overlapping or touching range (a stream usually rewrites the same one).
        if let Some(r) = self.atoms.iter_mut().find(|r| r.start <= range.end && range.start <= r.end) {
            *r = r.start.min(range.start)..r.end.max(range.end);
        } else {
            self.atoms.push(range);
        }
    }
}

/// Applies `updates` to the window's scene and returns the GPU work they need.
pub fn apply(scene: &mut SceneData, updates: Vec<SceneUpdate>) -> GpuWork {
    let mut work = GpuWork::default();
    for u in updates {
        apply_one(scene, u, &mut work);
    }
    if work.relayout {
        scene.relayout();
        work.atoms.clear();
        work.transforms = false;
    }
    work
}

fn apply_one(scene: &mut SceneData, update: SceneUpdate, work: &mut GpuWork) {
    match update {
        SceneUpdate::Complex(complex) => {
            let complex = *complex;
            let Some(k) = scene.document_of(complex.id) else {
                work.added.push(complex.id);
                scene.documents.push(room_document(complex));
                work.relayout = true;
                return;
            };
            let d = &mut scene.documents[k];
            let same_layout = d.atom_count() == complex.current().topology.atom_count()
                && d.complex.current().topology.bonds.len() == complex.current().topology.bonds.len();
            let moved = d.complex.position != complex.position || d.complex.rotation != complex.rotation;
            d.name.clone_from(&complex.name);
            d.complex = complex;
            if !same_layout {
                d.hidden = vec![false; d.atom_count()];
                work.relayout = true;
            }
            if work.relayout {
                return;
            }
            if moved {
                set_transform(scene, k);
                work.transforms = true;
            }
            let range = scene.rebuild_document(k);
            work.write(range);
        }
        SceneUpdate::Positions { complex, first, positions } => {
            let Some(k) = scene.document_of(complex) else { return };
            let d = &mut scene.documents[k];
            let n = d.atom_count();
            let start = first.index().min(n);
            let end = (start + positions.len()).min(n);
            let current = d.complex.current_model;
            if let Some(m) = d.complex.models.get_mut(current) {
                for (slot, p) in m.positions[start..end].iter_mut().zip(&positions) {
                    *slot = *p;
                }
            }
            if work.relayout {
                return;
            }
            let offset = d.base.atom_offset as usize;
            let range = offset + start..offset + end;
            if let Some(atoms) = scene.atoms.get_mut(range.clone()) {
                for (a, p) in atoms.iter_mut().zip(&positions) {
                    a.position = p.to_array();
                }
                work.write(range);
            }
        }
        SceneUpdate::Placement { complex, position, rotation } => {
            let Some(k) = scene.document_of(complex) else { return };
            let d = &mut scene.documents[k];
            d.complex.position = position;
            d.complex.rotation = rotation;
            set_transform(scene, k);
            work.transforms = true;
        }
        SceneUpdate::Removed(id) => {
            if let Some(k) = scene.document_of(id).filter(|&k| scene.documents[k].source == DocSource::Room) {
                scene.documents.remove(k);
                work.relayout = true;
            }
        }
        SceneUpdate::Shapes { instance, set, edits } => work.shapes.push(ShapeWork::Update { instance, set, edits }),
        SceneUpdate::ShapesRemoved(instance) => work.shapes.push(ShapeWork::Remove(instance)),
        SceneUpdate::Effect(e) => work.effects.push(e),
    }
}

fn room_document(complex: Complex) -> crate::workspace::Document {
    crate::workspace::Document {
        name: complex.name.clone(),
        hidden: vec![false; complex.current().topology.atom_count()],
        complex,
        base: molstream_engine::gpu::InstanceBase::SOLO,
        source: DocSource::Room,
    }
}

fn set_transform(scene: &mut SceneData, k: usize) {
    let d = &scene.documents[k];
    let m = Mat4::from_rotation_translation(d.complex.rotation, d.complex.position);
    if let Some(slot) = scene.transforms.get_mut(d.base.transform as usize) {
        *slot = m;
    }
}

/// What [`upload`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uploaded {
    /// Bytes written to atom, bond and transform buffers.
    pub bytes: u64,
    /// Whether the scene buffers were created again.
    pub relayout: bool,
    /// Shape uploads, summed.
    pub shapes: ShapeUpload,
}

/// Does `work` on `renderer` for `scene` (the scene [`apply`] changed): creates the buffers
/// again on a relayout (and resolves shape anchors again), else writes each changed atom range
/// in place and the transforms; then sets, updates or drops shape layers.
///
/// # Errors
/// [`RenderError`] from the renderer (a buffer too large, a mesh that does not decode).
pub fn upload(work: &GpuWork, scene: &SceneData, renderer: &mut Renderer) -> Result<Uploaded, RenderError> {
    let mut up = Uploaded { relayout: work.relayout, ..Uploaded::default() };
    let atom_size = std::mem::size_of::<AtomInstance>() as u64;
    if work.relayout {
        renderer.set_scene(&scene.atoms, &scene.bonds, &scene.transforms)?;
        // The depth range covers the new scene (the camera keeps its place).
        if let Some(b) = renderer.bounds() {
            renderer.camera.scene = b;
        }
        renderer.shapes_mut().set_anchor_map(scene.anchor_map());
        up.bytes += scene.atoms.len() as u64 * atom_size
            + std::mem::size_of_val(scene.bonds.as_slice()) as u64
            + scene.transforms.len() as u64 * 64;
    } else {
        for r in &work.atoms {
            if let Some(atoms) = scene.atoms.get(r.clone()) {
                renderer.write_atoms(r.start, atoms)?;
                up.bytes += atoms.len() as u64 * atom_size;
            }
        }
        if work.transforms {
            renderer.set_transforms(&scene.transforms);
            up.bytes += scene.transforms.len() as u64 * 64;
        }
    }
    for s in &work.shapes {
        let r = match s {
            ShapeWork::Update { instance, set, edits } if edits.full => {
                renderer.shapes_mut().set(shape_stream(*instance), set, shape_pick_base(*instance))?
            }
            ShapeWork::Update { instance, set, edits } => {
                renderer.shapes_mut().update(shape_stream(*instance), set, edits)?
            }
            ShapeWork::Remove(instance) => {
                renderer.shapes_mut().remove(shape_stream(*instance));
                ShapeUpload::default()
            }
        };
        up.shapes.bytes += r.bytes;
        up.shapes.meshes += r.meshes;
        up.shapes.records += r.records;
        up.shapes.rebuilt |= r.rebuilt;
    }
    Ok(up)
}

/// The atoms of some complexes, for framing them ([`Renderer::fit_camera_to`] with
/// [`SceneData::transforms`]); every atom when `ids` names none of the scene's.
#[must_use]
pub fn atoms_of(scene: &SceneData, ids: &[ComplexId]) -> Vec<AtomInstance> {
    let mut out = Vec::new();
    for d in scene.documents.iter().filter(|d| ids.contains(&d.complex.id)) {
        let start = d.base.atom_offset as usize;
        out.extend_from_slice(scene.atoms.get(start..start + d.atom_count()).unwrap_or_default());
    }
    if out.is_empty() { scene.atoms.clone() } else { out }
}

/// Points the camera at complexes (an instance's `zoom_on` / `center_on`): frames their atoms
/// (`zoom`) or only moves the target to their centre; the depth range keeps covering the whole
/// scene.
pub fn focus(renderer: &mut Renderer, scene: &SceneData, ids: &[ComplexId], zoom: bool) {
    let subset = atoms_of(scene, ids);
    let whole = crate::render::Bounds::of_atoms(&scene.atoms, &scene.transforms);
    if zoom {
        renderer.fit_camera_to(&subset, &scene.transforms);
    } else if let Some(b) = crate::render::Bounds::of_atoms(&subset, &scene.transforms) {
        renderer.camera.target = b.center;
    }
    if let Some(b) = whole {
        renderer.set_bounds(b);
        renderer.camera.scene = b;
    }
}

/// What a user asks of the room from the panels.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Start a plugin in the room.
    Activate(PluginId),
    /// Press run on an instance.
    Run(InstanceId),
    /// Open an instance's advanced settings.
    AdvancedSettings(InstanceId),
    /// Stop an instance.
    Deactivate(InstanceId),
    /// Call an integration hook of an instance (e.g. `minimization.start`).
    Integration {
        /// The instance.
        instance: InstanceId,
        /// The hook.
        name: String,
        /// Its argument bytes.
        args: Vec<u8>,
    },
    /// This user selected or deselected atoms of a room complex (the room's instances are
    /// told).
    Select {
        /// The complex.
        complex: ComplexId,
        /// The atoms.
        atoms: Vec<AtomId>,
        /// Selected or not.
        selected: bool,
    },
    /// A user's action in an instance's menu.
    Menu {
        /// The instance.
        instance: InstanceId,
        /// The action.
        event: MenuEvent,
    },
}

#[cfg(test)]
mod tests {
    use molstream_engine::codec::Limits;
    use molstream_engine::codec::stream::{FrameReader, StreamEncoder};
    use molstream_engine::io::{LoadOptions, load_bytes};
    use molstream_engine::shape::{Anchor, Shape, ShapeId, ShapeKind};
    use molstream_net::api::{Level, ToSession};
    use molstream_net::proto::ROOM_CHANNELS;

    use super::*;

    const SOURCE: InstanceId = InstanceId(4);

    fn hvr() -> Complex {
        let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
        let mut c = load_bytes(crate::BUNDLED_STRUCTURE, "1hvr.pdb", None, &opts).unwrap().complex;
        c.name = "1hvr".into();
        c
    }

    /// Feeds the frames `encode` writes to the scene as instance [`SOURCE`] on complex `id`'s
    /// channel.
    fn feed(scene: &mut RoomScene, id: ComplexId, bytes: &[u8]) {
        let mut reader = FrameReader::new(Limits::default());
        reader.push_bytes(bytes);
        while let Some(frame) = reader.try_read().unwrap() {
            scene.apply_frame(SOURCE, ROOM_CHANNELS + id.0, &frame).unwrap();
        }
    }

    fn publish(scene: &mut RoomScene, id: ComplexId, complex: &Complex) -> StreamEncoder {
        let mut enc = StreamEncoder::new(id.0, 3);
        let mut buf = Vec::new();
        enc.keyframe(complex, &mut buf).unwrap();
        feed(scene, id, &buf);
        enc
    }

    fn room_doc(s: &SceneData, id: ComplexId) -> &crate::workspace::Document {
        &s.documents[s.document_of(id).unwrap()]
    }

    #[test]
    fn a_position_stream_becomes_one_partial_write_of_the_changed_range() {
        let (mut room, mut sync, mut view) = (RoomScene::default(), SceneSync::new(), SceneData::new(Vec::new()));
        let id = ComplexId(3);
        let mut c = hvr();
        let mut enc = publish(&mut room, id, &c);
        let updates = sync.diff(&room);
        assert!(matches!(&updates[..], [SceneUpdate::Complex(x)] if x.id == id && x.name == "1hvr"));
        let work = apply(&mut view, updates);
        assert!(work.relayout && work.added == [id]);
        assert_eq!(view.documents.len(), 1);
        assert_eq!(room_doc(&view, id).source, DocSource::Room);
        assert_eq!(view.atoms.len(), 1890);
        assert!(sync.diff(&room).is_empty(), "nothing changed");

        // Atoms 100..=120 move by 1 Å in x.
        let mut p = c.current().positions.to_vec();
        for q in &mut p[100..=120] {
            q.x += 1.0;
        }
        let mut buf = Vec::new();
        enc.delta(&p, &mut buf).unwrap();
        feed(&mut room, id, &buf);
        let updates = sync.diff(&room);
        let [SceneUpdate::Positions { complex, first, positions }] = &updates[..] else { panic!("{updates:?}") };
        assert_eq!((*complex, *first, positions.len()), (id, AtomId(100), 21));
        assert!((positions[0].x - p[100].x).abs() < 1e-3);
        let work = apply(&mut view, updates);
        assert!(!work.relayout && !work.transforms);
        let offset = room_doc(&view, id).base.atom_offset as usize;
        assert_eq!(work.atoms, vec![offset + 100..offset + 121]);
        assert!((view.atoms[offset + 110].position[0] - p[110].x).abs() < 1e-3);
        assert!((room_doc(&view, id).complex.current().positions[120].x - p[120].x).abs() < 1e-3);

        // A transform frame: the placement only.
        c.position = Vec3::new(5.0, 0.0, 0.0);
        c.set_positions(0, p).unwrap();
        let mut buf = Vec::new();
        enc.transform(&c, &mut buf).unwrap().unwrap();
        feed(&mut room, id, &buf);
        let updates = sync.diff(&room);
        assert!(matches!(&updates[..], [SceneUpdate::Placement { position, .. }] if position.x == 5.0), "{updates:?}");
        let work = apply(&mut view, updates);
        assert!(work.transforms && work.atoms.is_empty() && !work.relayout);
        let t = room_doc(&view, id).base.transform as usize;
        assert_eq!(view.transforms[t].w_axis.x, 5.0);
    }

    #[test]
    fn colours_topology_and_removal_reach_the_view() {
        let (mut room, mut sync, mut view) = (RoomScene::default(), SceneSync::new(), SceneData::new(Vec::new()));
        // A local file first: room complexes go after it and never take its id.
        view.push("local.pdb".into(), hvr());
        let id = ComplexId(1);
        let mut c = hvr();
        let mut enc = publish(&mut room, id, &c);
        apply(&mut view, sync.diff(&room));
        assert_eq!(view.documents.len(), 2);
        assert_eq!(view.documents[0].source, DocSource::Local);
        let offset = room_doc(&view, id).base.atom_offset as usize;
        assert_eq!(offset, 1890);

        // Atom 7 turns red: the complex comes whole, written in place.
        c.current_display_mut().unwrap().color[7] = molstream_engine::model::pack_rgba([255, 0, 0], 255);
        let mut buf = Vec::new();
        enc.attributes(&c, &mut buf).unwrap().unwrap();
        feed(&mut room, id, &buf);
        let updates = sync.diff(&room);
        assert!(matches!(&updates[..], [SceneUpdate::Complex(_)]), "{updates:?}");
        let work = apply(&mut view, updates);
        assert!(!work.relayout);
        assert_eq!(work.atoms, vec![offset..offset + 1890]);
        assert_eq!(view.atoms[offset + 7].color, molstream_engine::model::pack_rgba([255, 0, 0], 255));

        // A new keyframe with fewer atoms: a relayout.
        let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
        let small = load_bytes(include_bytes!("../../assets/1YJP.cif"), "1yjp.cif", None, &opts).unwrap().complex;
        publish(&mut room, id, &small);
        let work = apply(&mut view, sync.diff(&room));
        assert!(work.relayout && work.added.is_empty());
        assert_eq!(view.atoms.len(), 1890 + small.current().topology.atom_count());
        let bonds = |c: &Complex| c.current().topology.bonds.len();
        assert_eq!(view.bonds.len(), bonds(&hvr()) + bonds(&small));

        // Removed from the room: the document goes, the local file stays.
        room.apply_message(SOURCE, &ToSession::RemoveComplexes { ids: vec![id] });
        let updates = sync.diff(&room);
        assert_eq!(updates, vec![SceneUpdate::Removed(id)]);
        let work = apply(&mut view, updates);
        assert!(work.relayout);
        assert_eq!(view.documents.len(), 1);
        assert_eq!(view.atoms.len(), 1890);
        assert_eq!(view.documents[0].name, "local.pdb");
    }

    fn sphere(id: u32, complex: ComplexId, radius: f32, color: u32) -> Shape {
        Shape {
            id: ShapeId(id),
            color,
            kind: ShapeKind::Sphere { anchor: Anchor::atom(complex, AtomId(0), Vec3::ZERO), radius },
        }
    }

    #[test]
    fn shapes_and_effects_are_reported_once_with_what_changed() {
        use molstream_engine::codec::shapes::ShapeEncoder;
        let (mut room, mut sync) = (RoomScene::default(), SceneSync::new());
        let id = ComplexId(1);
        let inst = InstanceId(9);
        let mut target = ShapeSet::new(Limits::default());
        target.insert(sphere(1, id, 2.0, 0xff33_99ff)).unwrap();
        target.insert(sphere(2, id, 1.0, 0xffff_ffff)).unwrap();
        let mut enc = ShapeEncoder::new(77, 3);
        let send = |room: &mut RoomScene, enc: &mut ShapeEncoder, target: &ShapeSet| {
            let mut buf = Vec::new();
            enc.sync(target, &mut buf).unwrap();
            let mut reader = FrameReader::new(Limits::default());
            reader.push_bytes(&buf);
            while let Some(f) = reader.try_read().unwrap() {
                room.apply_frame(inst, molstream_net::proto::SHAPES_CHANNEL, &f).unwrap();
            }
        };
        send(&mut room, &mut enc, &target);
        let updates = sync.diff(&room);
        let [SceneUpdate::Shapes { instance, set, edits }] = &updates[..] else { panic!("{updates:?}") };
        assert_eq!((*instance, set.len(), edits.full), (inst, 2, true));
        assert!(sync.diff(&room).is_empty());
        // Shape 2 grows, shape 1 goes.
        target.remove(ShapeId(1));
        target.insert(sphere(2, id, 3.0, 0xffff_ffff)).unwrap();
        send(&mut room, &mut enc, &target);
        let updates = sync.diff(&room);
        let [SceneUpdate::Shapes { edits, set, .. }] = &updates[..] else { panic!("{updates:?}") };
        assert!(!edits.full);
        assert_eq!(edits.destroyed, vec![ShapeId(1)]);
        assert_eq!(edits.changed.len() + edits.upserted.len(), 1);
        assert_eq!(set.len(), 1);
        // The instance stops: its shapes go.
        room.instance_stopped(inst);
        assert_eq!(sync.diff(&room), vec![SceneUpdate::ShapesRemoved(inst)]);
        // Effects: each once, in order.
        room.apply_message(inst, &ToSession::Notify { level: Level::Success, text: "one".into() });
        room.apply_message(inst, &ToSession::Focus { ids: vec![id], zoom: true });
        let updates = sync.diff(&room);
        assert_eq!(updates.len(), 2);
        assert!(matches!(&updates[0], SceneUpdate::Effect(Effect::Notification { text, .. }) if text == "one"));
        assert!(matches!(&updates[1], SceneUpdate::Effect(Effect::Focus { zoom: true, .. })));
        assert!(sync.diff(&room).is_empty());
        let mut view = SceneData::new(Vec::new());
        let work = apply(&mut view, updates);
        assert_eq!(work.effects.len(), 2);
    }

    #[test]
    fn shape_pick_ids_stay_apart_from_atoms_and_name_their_instance() {
        let base = shape_pick_base(InstanceId(5));
        assert!(base >= SHAPE_PICK_BASE);
        assert_eq!(shape_of_pick(base + 3), Some((5, 3)));
        assert_eq!(shape_of_pick(1890), None);
        assert_ne!(shape_pick_base(InstanceId(1)), shape_pick_base(InstanceId(2)));
    }
}

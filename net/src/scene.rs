//! [`RoomScene`]: a session client's copy of its room, sans-IO. It applies every codec frame an
//! instance streams (structures on room-wide channels, shapes on each instance's shapes
//! channel) and every room-wide plugin API message (removals, camera focus, notifications,
//! URLs), and keeps what the viewer draws and tests assert on:
//!
//! - an engine [`Workspace`] (complexes by [`ComplexId`]), kept in step with the frames and
//!   with users' edits;
//! - per complex, the stream it is decoded from ([`HeldStream`]) and GPU-ready
//!   [`StructureBuffers`];
//! - per complex, users' edits ([`ComplexEdits`]: a selection, moved atoms), which hold over
//!   the publisher's frames until it sends the complex anew;
//! - per instance, its [`ShapeSet`] and its [`Menus`];
//! - the [`Effect`]s instances asked for (notifications, URLs, camera focus), in order;
//! - the highest complex id given out in the room (so that a new presenter never gives one
//!   twice).
//!
//! **Why a complex is held twice.** The stream's decoder holds exactly what the publisher sent
//! (quantized positions, topology, display state): the next delta is decoded against it. The
//! workspace copy is what the room shows: the publisher's state with users' edits over it. The
//! two differ as soon as a user selects or moves atoms, so one cannot stand for the other. What
//! it costs: a position delta is decoded straight into the GPU buffer, then copied into the
//! workspace copy (12 bytes per atom, about 10 µs for 30,000 atoms), then users' moved atoms are
//! put back. The decoder's copy is never handed out: [`HeldStream`] exposes what it knows
//! correctly (the frame held, the placement), and the complex is [`RoomScene::complex`].
//!
//! **Which frames apply.** Complex `c` travels on channel [`ROOM_CHANNELS`]` + c` of whichever
//! instance publishes it. A keyframe always applies (it replaces the complex, and its channel
//! becomes the complex's source); any other frame applies only if it comes from the source and
//! chains on the frame held. A delta from the source that does not chain is
//! [`SceneError::NeedKeyframe`]: the client asks that instance for a keyframe. Frames from a
//! former source are ignored. A removed complex stays removed (ids are never reused), so a
//! keyframe still in flight when it was removed does not bring it back.

use std::collections::{BTreeMap, BTreeSet};

use glam::Vec3;
use molstream_engine::codec::stream::{Applied, Frame, StreamDecoder};
use molstream_engine::codec::transform::Placement;
use molstream_engine::codec::{CodecError, FrameKind, Limits};
use molstream_engine::gpu::{ATOM_FLAG_SELECTED, StructureBuffers};
use molstream_engine::shape::ShapeSet;
use molstream_engine::{AtomId, Complex, ComplexId, Workspace};

use crate::api::{ComplexEdits, Epoch, Level, ToSession};
use crate::menu::{MenuApplyError, MenuChange, MenuUpdate, Menus};
use crate::proto::{InstanceId, ROOM_CHANNELS, SHAPES_CHANNEL};

/// Most complexes whose edits wait for their keyframe (edits replayed to a late joiner may come
/// before the complex's frames); beyond, the oldest waiting are dropped.
pub const MAX_PENDING_EDITS: usize = 4096;

/// Most effects kept: beyond, [`RoomScene::effects`] drops the older half.
pub const MAX_EFFECTS: usize = 4096;

/// Something an instance asked the users' clients to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Show a notification.
    Notification {
        /// From which instance.
        instance: InstanceId,
        /// Severity.
        level: Level,
        /// Text.
        text: String,
    },
    /// Open a web page (sent to the presenter only).
    OpenUrl {
        /// From which instance.
        instance: InstanceId,
        /// The URL.
        url: String,
    },
    /// Point the camera at complexes.
    Focus {
        /// From which instance.
        instance: InstanceId,
        /// The complexes.
        ids: Vec<ComplexId>,
        /// Zoom to fit (`false`: center only).
        zoom: bool,
    },
}

/// The stream a complex is decoded from: what its publisher sent, exactly. It does not hand
/// out its copy of the complex (whose positions it does not keep up to date: deltas go
/// straight to the GPU buffer); the complex the room shows is [`RoomScene::complex`].
#[derive(Debug, Clone)]
pub struct HeldStream(StreamDecoder);

impl HeldStream {
    /// The sequence number of the last frame applied.
    #[must_use]
    pub fn held_seq(&self) -> Option<u32> {
        self.0.held_seq()
    }

    /// The complex's placement as the publisher last sent it.
    #[must_use]
    pub fn placement(&self) -> Option<Placement> {
        self.0.placement()
    }

    /// The positions as the publisher last sent them (dequantized), users' moves left out.
    #[must_use]
    pub fn positions(&self) -> Vec<Vec3> {
        self.0.positions()
    }
}

/// A complex of the room as the client holds it.
#[derive(Debug, Clone)]
pub struct SceneComplex {
    /// The stream the complex is decoded from.
    pub decoder: HeldStream,
    /// Atom and bond instances, ready for the GPU: the publisher's state with users' edits.
    pub buffers: StructureBuffers,
    /// The instance and channel of the last keyframe: only its frames apply.
    pub source: (InstanceId, u32),
    /// Changes since (and including) the last keyframe: frames applied and users' edits. It
    /// changes whenever `buffers` do.
    pub frames: u64,
    /// The frame (keyframe or topology delta) the complex was last rebuilt from.
    epoch: Epoch,
}

impl SceneComplex {
    /// The frame the complex was last rebuilt from: users' edits apply to it.
    #[must_use]
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
}

/// What applying users' edits changed ([`RoomScene::apply_edit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EditChange {
    /// The selection changed.
    pub selection: bool,
    /// Atoms moved.
    pub moved: bool,
}

/// What applying a frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SceneChange {
    /// A complex appeared.
    ComplexAdded(ComplexId),
    /// A complex was replaced whole (a new keyframe) or its topology edited.
    ComplexReplaced(ComplexId),
    /// Positions, display attributes or placement of a complex changed.
    ComplexChanged(ComplexId, Applied),
    /// An instance's shapes changed.
    Shapes(InstanceId),
    /// Nothing: a frame from a former source, for a removed complex, or on a private channel
    /// the scene does not read.
    Ignored,
}

/// Why a frame could not be applied. The scene is unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SceneError {
    /// The frame does not chain on what is held: ask `instance` for a keyframe on `channel`.
    #[error("{instance} channel {channel}: a keyframe is needed")]
    NeedKeyframe {
        /// The instance.
        instance: InstanceId,
        /// The channel.
        channel: u32,
    },
    /// The frame is malformed or does not fit the state held.
    #[error("{instance} channel {channel}: {error}")]
    Codec {
        /// The instance.
        instance: InstanceId,
        /// The channel.
        channel: u32,
        /// The codec's error.
        error: CodecError,
    },
    /// A frame kind that has no place on this channel (e.g. shapes on a complex channel).
    #[error("{instance} channel {channel}: frame kind {kind:?} does not belong on this channel")]
    WrongKind {
        /// The instance.
        instance: InstanceId,
        /// The channel.
        channel: u32,
        /// The kind.
        kind: FrameKind,
    },
}

/// A session client's copy of its room. See the module documentation.
#[derive(Debug)]
pub struct RoomScene {
    workspace: Workspace,
    complexes: BTreeMap<ComplexId, SceneComplex>,
    removed: BTreeSet<ComplexId>,
    shapes: BTreeMap<InstanceId, ShapeSet>,
    effects: Vec<Effect>,
    effects_dropped: u64,
    limits: Limits,
    /// Highest complex id given out in the room (by this client as presenter, or announced by
    /// the presenters before it).
    reserved: u32,
    frames_applied: u64,
    frame_errors: u64,
    /// Users' edits per complex, for the complex's current epoch.
    edits: BTreeMap<ComplexId, ComplexEdits>,
    /// Edits for an epoch not held yet (its keyframe still on its way), in arrival order.
    pending: BTreeMap<ComplexId, (u64, ComplexEdits)>,
    pending_order: u64,
    /// Each instance's menus.
    menus: BTreeMap<InstanceId, Menus>,
}

impl Default for RoomScene {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl RoomScene {
    /// An empty room, decoding frames within `limits`.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            workspace: Workspace::new(),
            complexes: BTreeMap::new(),
            removed: BTreeSet::new(),
            shapes: BTreeMap::new(),
            effects: Vec::new(),
            effects_dropped: 0,
            limits,
            reserved: 0,
            frames_applied: 0,
            frame_errors: 0,
            edits: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_order: 0,
            menus: BTreeMap::new(),
        }
    }

    /// The room's workspace: every complex, in the order they appeared.
    #[must_use]
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// A complex of the workspace, as the room shows it (the publisher's state with users'
    /// edits), positions included.
    #[must_use]
    pub fn complex(&self, id: ComplexId) -> Option<&Complex> {
        self.workspace.get(id)
    }

    /// Users' edits of a complex (for its current epoch), if any.
    #[must_use]
    pub fn edits(&self, id: ComplexId) -> Option<&ComplexEdits> {
        self.edits.get(&id)
    }

    /// The menus of an instance.
    #[must_use]
    pub fn menus(&self, instance: InstanceId) -> Option<&Menus> {
        self.menus.get(&instance)
    }

    /// Applies a menu update of `instance` to its menus.
    ///
    /// # Errors
    /// [`MenuApplyError`]: the update does not apply; nothing changed.
    pub fn apply_menu(
        &mut self,
        instance: InstanceId,
        update: &MenuUpdate,
    ) -> Result<Option<MenuChange>, MenuApplyError> {
        self.menus.entry(instance).or_default().apply(update)
    }

    /// The highest complex id given out in the room, as far as this client knows.
    #[must_use]
    pub fn ids_reserved(&self) -> u32 {
        self.reserved
    }

    /// The room's presenter gave out ids up to `up_to` (a `RoomEdit::IdsReserved`).
    pub fn note_ids_reserved(&mut self, up_to: u32) {
        self.reserved = self.reserved.max(up_to.min(ROOM_CHANNELS - 1));
    }

    /// The decoder, GPU buffers and source of a complex.
    #[must_use]
    pub fn scene_complex(&self, id: ComplexId) -> Option<&SceneComplex> {
        self.complexes.get(&id)
    }

    /// The shapes an instance shows.
    #[must_use]
    pub fn shapes(&self, instance: InstanceId) -> Option<&ShapeSet> {
        self.shapes.get(&instance)
    }

    /// Every instance's shapes.
    pub fn all_shapes(&self) -> impl Iterator<Item = (InstanceId, &ShapeSet)> {
        self.shapes.iter().map(|(i, s)| (*i, s))
    }

    /// Effects in arrival order (the oldest are dropped beyond [`MAX_EFFECTS`]).
    #[must_use]
    pub fn effects(&self) -> &[Effect] {
        &self.effects
    }

    /// Effects dropped so far to keep at most [`MAX_EFFECTS`].
    #[must_use]
    pub fn effects_dropped(&self) -> u64 {
        self.effects_dropped
    }

    /// The notifications received, in order.
    pub fn notifications(&self) -> impl Iterator<Item = (InstanceId, Level, &str)> {
        self.effects.iter().filter_map(|e| match e {
            Effect::Notification { instance, level, text } => Some((*instance, *level, text.as_str())),
            _ => None,
        })
    }

    /// Frames applied so far.
    #[must_use]
    pub fn frames_applied(&self) -> u64 {
        self.frames_applied
    }

    /// Frames refused so far (malformed, not chaining, wrong kind).
    #[must_use]
    pub fn frame_errors(&self) -> u64 {
        self.frame_errors
    }

    /// Whether `id` was removed from the room.
    #[must_use]
    pub fn was_removed(&self, id: ComplexId) -> bool {
        self.removed.contains(&id)
    }

    fn push_effect(&mut self, e: Effect) {
        if self.effects.len() >= MAX_EFFECTS {
            // Drop the older half at once (not one at a time, which would shift every push).
            let half = MAX_EFFECTS / 2;
            self.effects.drain(..half);
            self.effects_dropped += half as u64;
        }
        self.effects.push(e);
    }

    /// Applies one frame that `instance` sent on `channel`.
    ///
    /// # Errors
    /// [`SceneError`]; the scene is unchanged.
    pub fn apply_frame(
        &mut self,
        instance: InstanceId,
        channel: u32,
        frame: &Frame,
    ) -> Result<SceneChange, SceneError> {
        let r = self.apply_frame_inner(instance, channel, frame);
        match &r {
            Ok(SceneChange::Ignored) => {}
            Ok(_) => self.frames_applied += 1,
            Err(_) => self.frame_errors += 1,
        }
        r
    }

    fn apply_frame_inner(
        &mut self,
        instance: InstanceId,
        channel: u32,
        frame: &Frame,
    ) -> Result<SceneChange, SceneError> {
        let kind = frame.header.kind;
        let codec = |error| SceneError::Codec { instance, channel, error };
        if channel == SHAPES_CHANNEL {
            if !matches!(kind, FrameKind::Shapes | FrameKind::ShapeDelta) {
                return Err(SceneError::WrongKind { instance, channel, kind });
            }
            let limits = self.limits;
            let set = self.shapes.entry(instance).or_insert_with(|| ShapeSet::new(limits));
            return match set.apply(frame) {
                Ok(_) => Ok(SceneChange::Shapes(instance)),
                Err(CodecError::NeedKeyframe { .. }) => Err(SceneError::NeedKeyframe { instance, channel }),
                Err(e) => Err(codec(e)),
            };
        }
        if channel < ROOM_CHANNELS {
            return Ok(SceneChange::Ignored);
        }
        if matches!(kind, FrameKind::Shapes | FrameKind::ShapeDelta) {
            return Err(SceneError::WrongKind { instance, channel, kind });
        }
        let id = ComplexId(channel - ROOM_CHANNELS);
        if id.0 == 0 || self.removed.contains(&id) {
            return Ok(SceneChange::Ignored);
        }
        if kind == FrameKind::Keyframe {
            let mut decoder = StreamDecoder::new(self.limits);
            let mut buffers = StructureBuffers::default();
            decoder.apply_buffers(frame, &mut buffers).map_err(codec)?;
            let mut complex = decoder.snapshot().ok_or(codec(CodecError::Corrupt("keyframe without a complex")))?;
            complex.id = id;
            let added = self.workspace.insert(complex).is_none();
            let epoch = Epoch { instance, seq: frame.header.seq };
            let sc =
                SceneComplex { decoder: HeldStream(decoder), buffers, source: (instance, channel), frames: 1, epoch };
            self.complexes.insert(id, sc);
            self.new_epoch(id);
            return Ok(if added { SceneChange::ComplexAdded(id) } else { SceneChange::ComplexReplaced(id) });
        }
        let Some(entry) = self.complexes.get_mut(&id) else {
            // A delta for a complex whose keyframe has not arrived (or was dropped).
            return Err(SceneError::NeedKeyframe { instance, channel });
        };
        if entry.source != (instance, channel) {
            return Ok(SceneChange::Ignored);
        }
        let applied = match entry.decoder.0.apply_buffers(frame, &mut entry.buffers) {
            Ok(a) => a,
            Err(CodecError::NeedKeyframe { .. } | CodecError::AtomCount { .. }) => {
                return Err(SceneError::NeedKeyframe { instance, channel });
            }
            Err(e) => return Err(codec(e)),
        };
        entry.frames += 1;
        let Some(target) = self.workspace.get_mut(id) else { return Ok(SceneChange::Ignored) };
        let edits = self.edits.get(&id);
        match applied {
            Applied::Positions => {
                let current = target.current_model;
                if let Some(m) = target.models.get_mut(current)
                    && m.positions.len() == entry.buffers.atoms.len()
                {
                    for (p, a) in m.positions.iter_mut().zip(&entry.buffers.atoms) {
                        *p = Vec3::from_array(a.position);
                    }
                }
                if let Some(e) = edits {
                    put_moves(target, &mut entry.buffers, &e.moved);
                }
            }
            Applied::Attributes => {
                if let (Some(src), Some(dst)) =
                    (entry.decoder.0.complex().map(|c| c.current().display), target.current_display_mut())
                {
                    dst.clone_from(src);
                }
                if let Some(ranges) = edits.and_then(|e| e.selected.as_ref()) {
                    put_selection(target, &mut entry.buffers, ranges);
                }
            }
            Applied::Transform => {
                if let Some(p) = entry.decoder.placement() {
                    p.apply_to(target);
                }
            }
            Applied::Keyframe | Applied::Topology => {
                if let Some(mut c) = entry.decoder.0.snapshot() {
                    c.id = id;
                    *target = c;
                }
                // The atoms may be others now: users' edits were of the former ones.
                entry.epoch = Epoch { instance, seq: frame.header.seq };
                self.new_epoch(id);
                return Ok(SceneChange::ComplexReplaced(id));
            }
        }
        Ok(SceneChange::ComplexChanged(id, applied))
    }

    /// Complex `id` was rebuilt: users' edits of the former epoch go; edits that came early for
    /// this one apply now.
    fn new_epoch(&mut self, id: ComplexId) {
        self.edits.remove(&id);
        let Some(epoch) = self.complexes.get(&id).map(|c| c.epoch) else { return };
        if self.pending.get(&id).is_some_and(|(_, e)| e.epoch == epoch)
            && let Some((_, e)) = self.pending.remove(&id)
        {
            self.install(e);
        }
    }

    /// Users' edits of a complex (from another user, or made here with
    /// [`RoomScene::select_edit`] / [`RoomScene::move_edit`]): they replace the complex's
    /// edits if they are of its current epoch, wait for that epoch if it is not held yet, and
    /// are dropped if the complex was removed. Returns what changed (`None` if nothing applied
    /// now).
    pub fn apply_edit(&mut self, edits: ComplexEdits) -> Option<EditChange> {
        let id = edits.complex;
        if self.removed.contains(&id) {
            return None;
        }
        match self.complexes.get(&id) {
            Some(sc) if sc.epoch == edits.epoch => Some(self.install(edits)),
            _ => {
                self.pending_order += 1;
                self.pending.insert(id, (self.pending_order, edits));
                if self.pending.len() > MAX_PENDING_EDITS
                    && let Some(oldest) = self.pending.iter().min_by_key(|(_, (o, _))| *o).map(|(c, _)| *c)
                {
                    self.pending.remove(&oldest);
                }
                None
            }
        }
    }

    /// Puts `edits` in place of the complex's edits, reverting what they no longer hold.
    fn install(&mut self, edits: ComplexEdits) -> EditChange {
        let id = edits.complex;
        let (Some(sc), Some(target)) = (self.complexes.get_mut(&id), self.workspace.get_mut(id)) else {
            return EditChange::default();
        };
        let old = self.edits.remove(&id).unwrap_or_else(|| ComplexEdits::new(id, edits.epoch));
        let change = EditChange { selection: old.selected != edits.selected, moved: old.moved != edits.moved };
        if change.moved {
            // Atoms no longer moved go back to where the publisher put them.
            let kept: BTreeSet<u32> = edits.moved.iter().map(|(a, _)| *a).collect();
            if old.moved.iter().any(|(a, _)| !kept.contains(a)) {
                let sent = sc.decoder.positions();
                let back: Vec<(u32, Vec3)> = old
                    .moved
                    .iter()
                    .filter(|(a, _)| !kept.contains(a))
                    .filter_map(|(a, _)| sent.get(*a as usize).map(|p| (*a, *p)))
                    .collect();
                put_moves(target, &mut sc.buffers, &back);
            }
            put_moves(target, &mut sc.buffers, &edits.moved);
        }
        if change.selection {
            match &edits.selected {
                Some(ranges) => put_selection(target, &mut sc.buffers, ranges),
                None => {
                    // Back to the publisher's selection.
                    let sent = sc.decoder.0.complex().map(|c| c.current().display.selected.clone());
                    if let Some(sent) = sent {
                        put_selected(target, &mut sc.buffers, &sent);
                    }
                }
            }
        }
        if change.selection || change.moved {
            sc.frames += 1;
        }
        if !edits.is_empty() {
            self.edits.insert(id, edits);
        }
        change
    }

    /// The edits of `complex` once `atoms` are selected (or deselected), for
    /// [`RoomScene::apply_edit`]; `None` if the complex is not held. Atoms past the complex's
    /// count are left out.
    #[must_use]
    pub fn select_edit(&self, complex: ComplexId, atoms: &[AtomId], selected: bool) -> Option<ComplexEdits> {
        let sc = self.complexes.get(&complex)?;
        let mut now = self.workspace.get(complex)?.current().display.selected.clone();
        for a in atoms {
            if let Some(slot) = now.get_mut(a.index()) {
                *slot = selected;
            }
        }
        let mut edits = self.edits.get(&complex).cloned().unwrap_or_else(|| ComplexEdits::new(complex, sc.epoch));
        edits.selected = Some(ranges_of(&now));
        Some(edits)
    }

    /// The edits of `complex` once `moves` are made, for [`RoomScene::apply_edit`]; `None` if
    /// the complex is not held. Atoms past the complex's count are left out.
    #[must_use]
    pub fn move_edit(&self, complex: ComplexId, moves: &[(AtomId, Vec3)]) -> Option<ComplexEdits> {
        let sc = self.complexes.get(&complex)?;
        let n = sc.buffers.atoms.len();
        let mut edits = self.edits.get(&complex).cloned().unwrap_or_else(|| ComplexEdits::new(complex, sc.epoch));
        let mut moved: BTreeMap<u32, Vec3> = edits.moved.into_iter().collect();
        for (a, p) in moves {
            if a.index() < n && p.is_finite() {
                moved.insert(a.0, *p);
            }
        }
        edits.moved = moved.into_iter().collect();
        Some(edits)
    }

    /// Applies a room-wide plugin API message from `instance` (or one addressed to this client
    /// as presenter, for [`ToSession::OpenUrl`]). Returns the complexes it removed.
    pub fn apply_message(&mut self, instance: InstanceId, msg: &ToSession) -> Vec<ComplexId> {
        match msg {
            ToSession::Notify { level, text } => {
                self.push_effect(Effect::Notification { instance, level: *level, text: text.clone() });
            }
            ToSession::OpenUrl { url } => self.push_effect(Effect::OpenUrl { instance, url: url.clone() }),
            ToSession::Focus { ids, zoom } => {
                self.push_effect(Effect::Focus { instance, ids: ids.clone(), zoom: *zoom });
            }
            ToSession::RemoveComplexes { ids } => {
                return ids.iter().copied().filter(|id| self.remove(*id)).collect();
            }
            _ => {}
        }
        Vec::new()
    }

    /// Removes a complex for good (a keyframe still in flight will not bring it back).
    /// Returns whether it was there.
    pub fn remove(&mut self, id: ComplexId) -> bool {
        self.removed.insert(id);
        self.complexes.remove(&id);
        self.edits.remove(&id);
        self.pending.remove(&id);
        self.workspace.remove(id).is_some()
    }

    /// An instance stopped: its shapes and menus go. Its complexes stay in the workspace (the
    /// relay keeps them for late joiners too).
    pub fn instance_stopped(&mut self, instance: InstanceId) {
        self.shapes.remove(&instance);
        self.menus.remove(&instance);
    }

    /// Reserves `count` new complex ids (as presenter): above every id seen, given (here or by
    /// the presenters before, [`RoomScene::note_ids_reserved`]) or removed. The presenter tells
    /// the room the new highest id before it answers.
    pub fn reserve_ids(&mut self, count: u32) -> Vec<ComplexId> {
        let seen = self.workspace.complexes().iter().map(|c| c.id.0).max().unwrap_or(0);
        let removed = self.removed.last().map_or(0, |c| c.0);
        let start = self.reserved.max(seen).max(removed);
        let end = start.saturating_add(count).min(ROOM_CHANNELS - 1);
        self.reserved = end;
        (start + 1..=end).map(ComplexId).collect()
    }
}

/// Ascending, disjoint `(first, count)` ranges of the `true` entries.
fn ranges_of(selected: &[bool]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (i, _) in selected.iter().enumerate().filter(|(_, s)| **s) {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        match out.last_mut() {
            Some((first, n)) if *first + *n == i => *n += 1,
            _ => out.push((i, 1)),
        }
    }
    out
}

/// Moves atoms of `target` and its buffers (atoms past the count are skipped).
fn put_moves(target: &mut Complex, buffers: &mut StructureBuffers, moves: &[(u32, Vec3)]) {
    let current = target.current_model;
    let Some(m) = target.models.get_mut(current) else { return };
    for (a, p) in moves {
        let i = *a as usize;
        if let (Some(slot), Some(inst)) = (m.positions.get_mut(i), buffers.atoms.get_mut(i)) {
            *slot = *p;
            inst.position = p.to_array();
        }
    }
}

/// Makes `ranges` the selection of `target` and its buffers.
fn put_selection(target: &mut Complex, buffers: &mut StructureBuffers, ranges: &[(u32, u32)]) {
    let n = buffers.atoms.len();
    let mut selected = vec![false; n];
    for &(first, count) in ranges {
        let (a, b) = ((first as usize).min(n), (first as usize).saturating_add(count as usize).min(n));
        selected[a..b].fill(true);
    }
    put_selected(target, buffers, &selected);
}

fn put_selected(target: &mut Complex, buffers: &mut StructureBuffers, selected: &[bool]) {
    if let Some(d) = target.current_display_mut()
        && d.selected.len() == selected.len()
    {
        d.selected.copy_from_slice(selected);
    }
    for (inst, s) in buffers.atoms.iter_mut().zip(selected) {
        if *s {
            inst.flags |= ATOM_FLAG_SELECTED;
        } else {
            inst.flags &= !ATOM_FLAG_SELECTED;
        }
    }
}

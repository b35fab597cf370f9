//! [`RoomScene`]: a session client's copy of its room, sans-IO. It applies every codec frame an
//! instance streams (structures on room-wide channels, shapes on each instance's shapes
//! channel) and every room-wide plugin API message (removals, camera focus, notifications,
//! URLs), and keeps what the viewer draws and tests assert on:
//!
//! - an engine [`Workspace`] (complexes by [`ComplexId`]), kept in step with the frames;
//! - per complex, its [`StreamDecoder`] and GPU-ready [`StructureBuffers`];
//! - per instance, its [`ShapeSet`];
//! - the [`Effect`]s instances asked for (notifications, URLs, camera focus), in order.
//!
//! **Which frames apply.** Complex `c` travels on channel [`ROOM_CHANNELS`]` + c` of whichever
//! instance publishes it. A keyframe always applies (it replaces the complex, and its channel
//! becomes the complex's source); any other frame applies only if it comes from the source and
//! chains on the frame held. A delta from the source that does not chain is
//! [`SceneError::NeedKeyframe`]: the client asks that instance for a keyframe. Frames from a
//! former source are ignored. A removed complex stays removed (ids are never reused), so a
//! keyframe still in flight when it was removed does not bring it back.

use std::collections::{BTreeMap, BTreeSet};

use molstream_engine::codec::stream::{Applied, Frame, StreamDecoder};
use molstream_engine::codec::{CodecError, FrameKind, Limits};
use molstream_engine::gpu::StructureBuffers;
use molstream_engine::shape::ShapeSet;
use molstream_engine::{Complex, ComplexId, Workspace};

use crate::api::{Level, ToSession};
use crate::proto::{InstanceId, ROOM_CHANNELS, SHAPES_CHANNEL};

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

/// A complex of the room as the client holds it.
#[derive(Debug, Clone)]
pub struct SceneComplex {
    /// The stream decoder holding the complex's last keyframe and what followed.
    pub decoder: StreamDecoder,
    /// Atom and bond instances, ready for the GPU.
    pub buffers: StructureBuffers,
    /// The instance and channel of the last keyframe: only its frames apply.
    pub source: (InstanceId, u32),
    /// Frames applied since (and including) the last keyframe.
    pub frames: u64,
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
    /// Highest complex id given out by this client as presenter.
    reserved: u32,
    frames_applied: u64,
    frame_errors: u64,
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
        }
    }

    /// The room's workspace: every complex, in the order they appeared.
    #[must_use]
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// A complex of the workspace.
    #[must_use]
    pub fn complex(&self, id: ComplexId) -> Option<&Complex> {
        self.workspace.get(id)
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
            self.complexes.insert(id, SceneComplex { decoder, buffers, source: (instance, channel), frames: 1 });
            return Ok(if added { SceneChange::ComplexAdded(id) } else { SceneChange::ComplexReplaced(id) });
        }
        let Some(entry) = self.complexes.get_mut(&id) else {
            // A delta for a complex whose keyframe has not arrived (or was dropped).
            return Err(SceneError::NeedKeyframe { instance, channel });
        };
        if entry.source != (instance, channel) {
            return Ok(SceneChange::Ignored);
        }
        let applied = match entry.decoder.apply_buffers(frame, &mut entry.buffers) {
            Ok(a) => a,
            Err(CodecError::NeedKeyframe { .. } | CodecError::AtomCount { .. }) => {
                return Err(SceneError::NeedKeyframe { instance, channel });
            }
            Err(e) => return Err(codec(e)),
        };
        entry.frames += 1;
        let Some(target) = self.workspace.get_mut(id) else { return Ok(SceneChange::Ignored) };
        match applied {
            Applied::Positions => {
                let current = target.current_model;
                if let Some(m) = target.models.get_mut(current)
                    && m.positions.len() == entry.buffers.atoms.len()
                {
                    for (p, a) in m.positions.iter_mut().zip(&entry.buffers.atoms) {
                        *p = glam::Vec3::from_array(a.position);
                    }
                }
            }
            Applied::Attributes => {
                if let (Some(src), Some(dst)) =
                    (entry.decoder.complex().map(|c| c.current().display), target.current_display_mut())
                {
                    dst.clone_from(src);
                }
            }
            Applied::Transform => {
                if let Some(p) = entry.decoder.placement() {
                    p.apply_to(target);
                }
            }
            Applied::Keyframe | Applied::Topology => {
                if let Some(mut c) = entry.decoder.snapshot() {
                    c.id = id;
                    *target = c;
                }
                return Ok(SceneChange::ComplexReplaced(id));
            }
        }
        Ok(SceneChange::ComplexChanged(id, applied))
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
        self.workspace.remove(id).is_some()
    }

    /// An instance stopped: its shapes go. Its complexes stay in the workspace (the relay keeps
    /// them for late joiners too).
    pub fn instance_stopped(&mut self, instance: InstanceId) {
        self.shapes.remove(&instance);
    }

    /// Reserves `count` new complex ids (as presenter): above every id seen, given or removed.
    pub fn reserve_ids(&mut self, count: u32) -> Vec<ComplexId> {
        let seen = self.workspace.complexes().iter().map(|c| c.id.0).max().unwrap_or(0);
        let removed = self.removed.last().map_or(0, |c| c.0);
        let start = self.reserved.max(seen).max(removed);
        let end = start.saturating_add(count).min(ROOM_CHANNELS - 1);
        self.reserved = end;
        (start + 1..=end).map(ComplexId).collect()
    }

    /// The workspace complex, mutably (local edits by this client's user).
    pub fn complex_mut(&mut self, id: ComplexId) -> Option<&mut Complex> {
        self.workspace.get_mut(id)
    }
}

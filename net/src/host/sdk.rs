//! The plugin instance API on [`Session`]: the room's workspace, shapes, writing and reading
//! streams, and session services.
//!
//! **Who holds what.** The presenter's client owns the room's workspace: requests for
//! complexes are answered by it, and it gives the ids of new complexes. What an instance adds or
//! changes it *publishes*: each complex it publishes travels on its own frame channel
//! ([`ROOM_CHANNELS`]` + id`) as a codec keyframe followed by position, attribute, transform and
//! topology frames from one [`StreamEncoder`], so every user's client (and every late joiner,
//! through the relay) holds the same copy. Changing a complex the instance did not publish first
//! *adopts* it: the instance asks the presenter for it whole, then publishes a keyframe of it
//! (the last keyframe of a complex wins, room-wide). Shapes travel on the instance's shapes
//! channel ([`SHAPES_CHANNEL`]) from one [`ShapeEncoder`].
//!
//! ```no_run
//! use glam::Vec3;
//! use molstream_engine::AtomId;
//! use molstream_net::host::{Plugin, PluginResult, Session, shape};
//! use molstream_net::proto::UserId;
//!
//! struct Marker;
//!
//! impl Plugin for Marker {
//!     async fn on_run(&mut self, session: &Session, _from: UserId) -> PluginResult {
//!         let pdb = std::fs::read("assets/1hvr.pdb")?;
//!         let complex = session.load_file("1hvr.pdb", &pdb).await?;
//!         let anchor = shape::Anchor::atom(complex, AtomId(0), Vec3::ZERO);
//!         session.upload_shape(shape::sphere(anchor, 1.5, 0xff_00_80_ff)).await?;
//!         Ok(())
//!     }
//! }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use glam::{Quat, Vec3};
use molstream_engine::codec::attrs::AttributeChanges;
use molstream_engine::codec::shapes::ShapeEncoder;
use molstream_engine::codec::stream::{FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::{CodecError, Limits};
use molstream_engine::gpu::AtomInstance;
use molstream_engine::io::{self, LoadError, LoadOptions};
use molstream_engine::shape::{Shape, ShapeChange, ShapeId, ShapeKind};
use molstream_engine::{AtomId, ColorScheme, Complex, ComplexId, Workspace};
use quinn::RecvStream;
use tokio::sync::{oneshot, watch};

use super::{FrameSender, Plugin, PluginResult, Session, SessionError};
use crate::api::{ApiError, ComplexInfo, ToPlugin, ToSession};
use crate::conn;
use crate::proto::{InstanceId, PeerMsg, ROOM_CHANNELS, Retain, SHAPES_CHANNEL, UserId};

/// How long a request to the presenter may take before [`SessionError::Timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Coordinates the SDK publishes are quantized to 10^-3 Å.
pub const PRECISION: u8 = 3;
/// Uplinks that arrived before the answer naming them, kept per instance at most.
const MAX_UNCLAIMED_UPLINKS: usize = 64;

/// Shape constructors for plugin authors (every shape starts with id 0: "give it one").
pub mod shape {
    pub use molstream_engine::shape::{Anchor, AnchorTarget, Mesh, Shape, ShapeId, ShapeKind, Texture};

    /// A sphere of `radius` Å at `anchor`, colour RGBA8 (red in the lowest byte).
    #[must_use]
    pub fn sphere(anchor: Anchor, radius: f32, color: u32) -> Shape {
        Shape { id: ShapeId(0), color, kind: ShapeKind::Sphere { anchor, radius } }
    }

    /// A solid line `thickness` Å thick.
    #[must_use]
    pub fn line(start: Anchor, end: Anchor, thickness: f32, color: u32) -> Shape {
        dashed_line(start, end, thickness, 0.0, 0.0, color)
    }

    /// A dashed line: dashes `dash_length` Å long, `dash_gap` Å apart.
    #[must_use]
    pub fn dashed_line(
        start: Anchor,
        end: Anchor,
        thickness: f32,
        dash_length: f32,
        dash_gap: f32,
        color: u32,
    ) -> Shape {
        Shape { id: ShapeId(0), color, kind: ShapeKind::Line { start, end, thickness, dash_length, dash_gap } }
    }

    /// A text label of `font_size` points.
    #[must_use]
    pub fn label(anchor: Anchor, text: impl Into<String>, font_size: f32, color: u32) -> Shape {
        Shape { id: ShapeId(0), color, kind: ShapeKind::Label { anchor, text: text.into(), font_size } }
    }

    /// A triangle mesh; `color` is used where the mesh has no per-vertex colours.
    #[must_use]
    pub fn mesh(mesh: Mesh, color: u32) -> Shape {
        Shape { id: ShapeId(0), color, kind: ShapeKind::Mesh(mesh) }
    }
}

/// An instance's writing or reading stream.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct StreamId(pub u32);

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamId#{}", self.0)
    }
}

/// What a writing stream changes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamKind {
    /// Atom positions ([`StreamData::Positions`], Å in the complex's frame).
    AtomPosition,
    /// Atom colours ([`StreamData::Colors`], RGBA8).
    AtomColor,
    /// Atom radii ([`StreamData::Scales`], Å).
    AtomScale,
    /// Atom labels ([`StreamData::Labels`]; an empty text hides the label).
    AtomLabel,
    /// Complex positions ([`StreamData::Positions`]).
    ComplexPosition,
    /// Complex rotations ([`StreamData::Rotations`]).
    ComplexRotation,
    /// Shape positions: the offset of each shape's anchor ([`StreamData::Positions`]).
    ShapePosition,
    /// Shape colours ([`StreamData::Colors`]).
    ShapeColor,
    /// Sphere radii ([`StreamData::Scales`]; spheres only).
    SphereRadius,
}

/// What a writing stream applies to.
#[derive(Clone, PartialEq, Debug)]
pub enum StreamTarget {
    /// Atoms of one complex (for the atom kinds).
    Atoms {
        /// The complex.
        complex: ComplexId,
        /// Its atoms; each update carries one value per atom, in this order.
        atoms: Vec<AtomId>,
    },
    /// Complexes (for the complex kinds).
    Complexes(Vec<ComplexId>),
    /// The instance's own shapes (for the shape kinds).
    Shapes(Vec<ShapeId>),
}

impl StreamTarget {
    fn len(&self) -> usize {
        match self {
            Self::Atoms { atoms, .. } => atoms.len(),
            Self::Complexes(c) => c.len(),
            Self::Shapes(s) => s.len(),
        }
    }
}

/// One update of a writing stream: one value per target, in target order.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum StreamData<'a> {
    /// Positions (atoms, complexes, shape anchor offsets), Å.
    Positions(&'a [Vec3]),
    /// Colours, RGBA8 with red in the lowest byte.
    Colors(&'a [u32]),
    /// Radii, Å.
    Scales(&'a [f32]),
    /// Label texts.
    Labels(&'a [String]),
    /// Rotations.
    Rotations(&'a [Quat]),
}

impl StreamData<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Positions(v) => v.len(),
            Self::Colors(v) => v.len(),
            Self::Scales(v) => v.len(),
            Self::Labels(v) => v.len(),
            Self::Rotations(v) => v.len(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Positions(_) => "positions",
            Self::Colors(_) => "colors",
            Self::Scales(_) => "scales",
            Self::Labels(_) => "labels",
            Self::Rotations(_) => "rotations",
        }
    }
}

/// Why a stream stopped.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Interrupt {
    /// The instance destroyed it.
    Destroyed,
    /// Its complex left the workspace.
    ComplexRemoved(ComplexId),
    /// Another instance published its complex anew (the last keyframe wins).
    Superseded(ComplexId),
    /// Its shape was destroyed.
    ShapeDestroyed(ShapeId),
    /// The presenter changed (streams are tied to the presenter's workspace).
    PresenterChanged(UserId),
}

/// Errors of stream calls.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// No such complex in the room's workspace.
    #[error("no {0} in the workspace")]
    UnknownComplex(ComplexId),
    /// The complex has no such atom.
    #[error("{0} has no atom {1}")]
    UnknownAtom(ComplexId, AtomId),
    /// The instance has no such shape.
    #[error("no {0} among this instance's shapes")]
    UnknownShape(ShapeId),
    /// The kind does not apply to the target.
    #[error("unsupported stream: {0}")]
    Unsupported(String),
    /// An update whose data does not fit the stream.
    #[error("stream of {kind:?} takes {expected} values of its kind, got {got} {data}")]
    WrongData {
        /// The stream's kind.
        kind: StreamKind,
        /// Values the stream takes per update.
        expected: usize,
        /// Values given.
        got: usize,
        /// What was given.
        data: &'static str,
    },
    /// The stream was interrupted.
    #[error("stream interrupted: {0:?}")]
    Interrupted(Interrupt),
    /// The session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl From<ApiError> for StreamError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::UnknownComplex(c) => Self::UnknownComplex(c),
            ApiError::UnknownAtom(c, a) => Self::UnknownAtom(c, AtomId(a)),
            ApiError::Unsupported(why) => Self::Unsupported(why),
        }
    }
}

/// Who presents the room.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PresenterInfo {
    /// User id.
    pub user: UserId,
    /// User name.
    pub name: String,
    /// Client software.
    pub client: String,
}

struct PublishedComplex {
    complex: Complex,
    encoder: StreamEncoder,
    sender: FrameSender,
}

impl PublishedComplex {
    async fn send_keyframe(&mut self) -> Result<(), SessionError> {
        let mut buf = Vec::new();
        self.encoder.keyframe(&self.complex, &mut buf)?;
        self.sender.send(&buf).await
    }
}

struct ShapeChannel {
    encoder: ShapeEncoder,
    sender: FrameSender,
}

#[derive(Default)]
struct Published {
    complexes: BTreeMap<ComplexId, PublishedComplex>,
    shapes: Option<ShapeChannel>,
    next_shape: u32,
}

#[derive(Debug)]
struct StreamEntry {
    kind: StreamKind,
    target: StreamTarget,
    interrupted: Option<Interrupt>,
}

enum UplinkSlot {
    Waiting(oneshot::Sender<RecvStream>),
    Arrived(RecvStream),
}

/// An instance's API state (inside its [`Session`]).
pub(crate) struct InstanceApi {
    next_req: AtomicU32,
    next_stream: AtomicU32,
    pending: Mutex<HashMap<u32, oneshot::Sender<ToPlugin>>>,
    uplinks: Mutex<HashMap<(UserId, u32), UplinkSlot>>,
    published: tokio::sync::Mutex<Published>,
    streams: Mutex<BTreeMap<u32, StreamEntry>>,
    reading: Mutex<BTreeMap<u32, (ComplexId, watch::Sender<ReadingState>)>>,
    /// Keyframes of this instance the presenter reported applying, per complex.
    applied: Mutex<HashMap<ComplexId, u64>>,
    applied_changed: watch::Sender<u64>,
    limits: Limits,
}

impl std::fmt::Debug for InstanceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceApi").finish_non_exhaustive()
    }
}

impl Default for InstanceApi {
    fn default() -> Self {
        Self {
            next_req: AtomicU32::new(1),
            next_stream: AtomicU32::new(1),
            pending: Mutex::new(HashMap::new()),
            uplinks: Mutex::new(HashMap::new()),
            published: tokio::sync::Mutex::new(Published::default()),
            streams: Mutex::new(BTreeMap::new()),
            reading: Mutex::new(BTreeMap::new()),
            applied: Mutex::new(HashMap::new()),
            applied_changed: watch::Sender::new(0),
            limits: Limits { max_payload: 256 << 20, ..Limits::default() },
        }
    }
}

impl InstanceApi {
    /// An answer from the presenter: wakes the request waiting for it. Answers from anyone
    /// else are dropped (a user cannot answer for the presenter).
    pub(crate) fn deliver_reply(&self, from: UserId, presenter: UserId, reply: ToPlugin) {
        if from != presenter {
            tracing::warn!(%from, %presenter, "an answer from a user who is not the presenter dropped");
            return;
        }
        let Some(req) = reply_req(&reply) else { return };
        if let Some(tx) = self.pending.lock().ok().and_then(|mut p| p.remove(&req)) {
            let _ = tx.send(reply);
        }
    }

    /// An event from the presenter seen by the host's driver (before the instance's queue): a
    /// complex of this instance was added or replaced at the presenter.
    pub(crate) fn note_event(&self, from: UserId, presenter: UserId, instance: InstanceId, event: &ToPlugin) {
        if from != presenter {
            return;
        }
        let ids = match event {
            ToPlugin::ComplexesAdded { ids } => ids,
            ToPlugin::ComplexesUpdated { ids, by } if *by == instance => ids,
            _ => return,
        };
        if let Ok(mut applied) = self.applied.lock() {
            for id in ids {
                *applied.entry(*id).or_default() += 1;
            }
        }
        self.applied_changed.send_modify(|v| *v += 1);
    }

    fn applied_count(&self, id: ComplexId) -> u64 {
        self.applied.lock().ok().and_then(|a| a.get(&id).copied()).unwrap_or(0)
    }

    /// Waits until the presenter reported applying a keyframe of `id` since the count was
    /// `before`.
    async fn wait_applied(&self, id: ComplexId, before: u64) -> Result<(), SessionError> {
        let mut changes = self.applied_changed.subscribe();
        let wait = async {
            loop {
                changes.borrow_and_update();
                if self.applied_count(id) > before {
                    return;
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, wait)
            .await
            .map_err(|_| SessionError::Timeout("the presenter to apply a keyframe"))
    }

    /// An uplink from `user` arrived: handed to whoever waits for it, or kept (bounded) until
    /// the answer naming it arrives.
    pub(crate) fn uplink_arrived(&self, user: UserId, channel: u32, mut recv: RecvStream) {
        let Ok(mut map) = self.uplinks.lock() else { return };
        match map.remove(&(user, channel)) {
            Some(UplinkSlot::Waiting(tx)) => {
                if let Err(mut recv) = tx.send(recv) {
                    let _ = recv.stop(quinn::VarInt::from_u32(0));
                }
            }
            _ if map.len() >= MAX_UNCLAIMED_UPLINKS => {
                tracing::warn!(%user, channel, "too many unclaimed uplinks; one refused");
                let _ = recv.stop(quinn::VarInt::from_u32(0));
            }
            _ => {
                map.insert((user, channel), UplinkSlot::Arrived(recv));
            }
        }
    }
}

/// Whether `m` answers a request (routed to the waiting request, not the instance's queue).
pub(crate) fn is_reply(m: &ToPlugin) -> bool {
    reply_req(m).is_some()
}

fn reply_req(m: &ToPlugin) -> Option<u32> {
    match m {
        ToPlugin::ComplexList { req, .. }
        | ToPlugin::Complexes { req, .. }
        | ToPlugin::DeepComplexes { req, .. }
        | ToPlugin::ComplexIds { req, .. }
        | ToPlugin::PresenterInfo { req, .. }
        | ToPlugin::ReadingStreamCreated { req, .. }
        | ToPlugin::RequestFailed { req, .. } => Some(*req),
        _ => None,
    }
}

/// Whether the SDK sends on `channel` (it then answers the relay's keyframe requests itself).
pub(crate) fn owns_channel(channel: u32) -> bool {
    channel == SHAPES_CHANNEL || channel >= ROOM_CHANNELS
}

fn complex_channel(id: ComplexId) -> u32 {
    ROOM_CHANNELS.saturating_add(id.0)
}

/// The relay asked for a keyframe on one of the SDK's channels.
pub(crate) async fn send_keyframe(s: &Session, channel: u32) -> Result<(), SessionError> {
    let mut published = s.inner.api.published.lock().await;
    if channel == SHAPES_CHANNEL {
        if let Some(sc) = &mut published.shapes {
            let mut buf = Vec::new();
            let shapes: Vec<Shape> = sc.encoder.sent().iter().cloned().collect();
            sc.encoder.full(&shapes, &mut buf)?;
            sc.sender.send(&buf).await?;
        }
        return Ok(());
    }
    let id = ComplexId(channel - ROOM_CHANNELS);
    if let Some(pc) = published.complexes.get_mut(&id) {
        pc.send_keyframe().await?;
    }
    Ok(())
}

/// The presenter changed: requests to the former presenter fail, streams are interrupted.
pub(crate) async fn presenter_changed<P: Plugin>(p: &mut P, s: &Session, presenter: UserId) -> PluginResult {
    if let Ok(mut pending) = s.inner.api.pending.lock() {
        pending.clear();
    }
    let ids = interrupt_streams(s, |_| true, &Interrupt::PresenterChanged(presenter));
    for id in ids {
        p.on_stream_interrupted(s, id, &Interrupt::PresenterChanged(presenter)).await?;
    }
    end_reading(s, |_| true);
    Ok(())
}

/// Marks the streams matching `pred` interrupted; returns their ids.
fn interrupt_streams(s: &Session, pred: impl Fn(&StreamEntry) -> bool, why: &Interrupt) -> Vec<StreamId> {
    let Ok(mut streams) = s.inner.api.streams.lock() else { return Vec::new() };
    let mut ids = Vec::new();
    for (id, e) in streams.iter_mut() {
        if e.interrupted.is_none() && pred(e) {
            e.interrupted = Some(why.clone());
            ids.push(StreamId(*id));
        }
    }
    ids
}

fn end_reading(s: &Session, pred: impl Fn(ComplexId) -> bool) -> Vec<StreamId> {
    let Ok(mut reading) = s.inner.api.reading.lock() else { return Vec::new() };
    let gone: Vec<u32> = reading.iter().filter(|(_, (c, _))| pred(*c)).map(|(id, _)| *id).collect();
    for id in &gone {
        if let Some((_, tx)) = reading.remove(id) {
            tx.send_modify(|st| st.ended = true);
        }
    }
    gone.into_iter().map(StreamId).collect()
}

/// A plugin API message for an instance, in the instance's task: SDK bookkeeping first, then
/// the plugin's callback.
pub(crate) async fn on_api<P: Plugin>(p: &mut P, s: &Session, from: UserId, request: ToPlugin) -> PluginResult {
    let from_presenter = from == s.presenter();
    match request {
        ToPlugin::Run | ToPlugin::AdvancedSettings | ToPlugin::Integration { .. } => {}
        _ if !from_presenter => {
            tracing::warn!(instance = %s.instance(), %from, "a workspace event from a user who is not the presenter dropped");
        }
        ToPlugin::ComplexesAdded { ids } => p.on_complexes_added(s, &ids).await?,
        ToPlugin::ComplexesRemoved { ids } => {
            forget_published(s, &ids).await;
            for &c in &ids {
                let why = Interrupt::ComplexRemoved(c);
                for id in interrupt_streams(s, |e| targets_complex(&e.target, c), &why) {
                    p.on_stream_interrupted(s, id, &why).await?;
                }
                for id in end_reading(s, |rc| rc == c) {
                    p.on_stream_interrupted(s, id, &why).await?;
                }
            }
            p.on_complexes_removed(s, &ids).await?;
        }
        ToPlugin::ComplexesUpdated { ids, by } => {
            if by != s.instance() {
                // Someone else replaced these complexes: what this instance published of them
                // is stale, and its streams on them no longer apply.
                let lost = forget_published(s, &ids).await;
                for c in lost {
                    let why = Interrupt::Superseded(c);
                    for id in interrupt_streams(s, |e| targets_complex(&e.target, c), &why) {
                        p.on_stream_interrupted(s, id, &why).await?;
                    }
                }
            }
            p.on_complexes_updated(s, &ids).await?;
        }
        ToPlugin::SelectionChanged { complex, .. } => p.on_selection_changed(s, complex).await?,
        ToPlugin::ReadingStreamEnded { stream, reason } => {
            let ended = {
                let Ok(mut reading) = s.inner.api.reading.lock() else { return Ok(()) };
                reading.remove(&stream).map(|(c, tx)| {
                    tx.send_modify(|st| st.ended = true);
                    c
                })
            };
            if let Some(c) = ended {
                tracing::debug!(%stream, %reason, "reading stream ended by the presenter");
                p.on_stream_interrupted(s, StreamId(stream), &Interrupt::ComplexRemoved(c)).await?;
            }
        }
        // Answers are routed to their requests before they reach the queue.
        _ => {}
    }
    Ok(())
}

fn targets_complex(t: &StreamTarget, c: ComplexId) -> bool {
    match t {
        StreamTarget::Atoms { complex, .. } => *complex == c,
        StreamTarget::Complexes(cs) => cs.contains(&c),
        StreamTarget::Shapes(_) => false,
    }
}

/// Stops publishing `ids` (their channels end); returns those that were published.
async fn forget_published(s: &Session, ids: &[ComplexId]) -> Vec<ComplexId> {
    let mut published = s.inner.api.published.lock().await;
    let mut gone = Vec::new();
    for id in ids {
        if let Some(pc) = published.complexes.remove(id) {
            pc.sender.finish();
            gone.push(*id);
        }
    }
    gone
}

fn unexpected(what: &'static str) -> SessionError {
    SessionError::Unexpected(what)
}

/// Reads the one keyframe an uplink carries and decodes it.
async fn read_complex(mut recv: RecvStream, limits: &Limits) -> Result<Complex, SessionError> {
    let (_, bytes) = conn::read_frame(&mut recv, limits).await?.ok_or(unexpected("an empty uplink"))?;
    let _ = recv.stop(quinn::VarInt::from_u32(0));
    let mut reader = FrameReader::new(*limits);
    reader.push_bytes(&bytes);
    let frame = reader.try_read()?.ok_or(unexpected("a truncated frame"))?;
    let mut decoder = StreamDecoder::new(*limits);
    let mut atoms = Vec::new();
    decoder.apply(&frame, &mut atoms)?;
    decoder.snapshot().ok_or(unexpected("a keyframe without a complex"))
}

/// What a reading stream's task shares with its [`ReadingStream`].
#[derive(Debug, Default, Clone)]
struct ReadingState {
    positions: Vec<Vec3>,
    version: u64,
    ended: bool,
}

/// Positions of atoms as the presenter's user changes them. The latest positions win: a
/// reader that falls behind sees the newest. Dropping it ends it, as [`ReadingStream::destroy`].
#[derive(Debug)]
pub struct ReadingStream {
    id: StreamId,
    rx: watch::Receiver<ReadingState>,
    session: Session,
    destroyed: bool,
}

impl ReadingStream {
    /// The stream's id.
    #[must_use]
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The next positions of the stream's atoms (in the order given at creation); `None` once
    /// the stream ended (destroyed, complex removed, presenter changed).
    pub async fn next(&mut self) -> Option<Vec<Vec3>> {
        if self.rx.changed().await.is_err() {
            return None;
        }
        let st = self.rx.borrow_and_update();
        if st.ended { None } else { Some(st.positions.clone()) }
    }

    /// Ends the stream.
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn destroy(mut self) -> Result<(), SessionError> {
        self.destroyed = true;
        self.end();
        self.session.send_presenter(ToSession::DestroyReadingStream { stream: self.id.0 }.encode()).await
    }

    fn end(&self) -> bool {
        let removed = self.session.inner.api.reading.lock().ok().and_then(|mut r| r.remove(&self.id.0));
        if let Some((_, tx)) = &removed {
            tx.send_modify(|st| st.ended = true);
        }
        removed.is_some()
    }
}

impl Drop for ReadingStream {
    /// Dropping the stream ends it: the presenter stops feeding it.
    fn drop(&mut self) {
        if !self.destroyed && self.end() {
            let body = ToSession::DestroyReadingStream { stream: self.id.0 }.encode();
            let msg = PeerMsg::ToPresenter { instance: self.session.instance(), body };
            if self.session.inner.out.try_send(msg).is_err() {
                tracing::debug!(stream = %self.id, "could not tell the presenter a reading stream ended");
            }
        }
    }
}

/// A writing stream: each [`WritingStream::update`] sends one delta-coded frame to the room.
#[derive(Debug, Clone)]
pub struct WritingStream {
    id: StreamId,
    kind: StreamKind,
    session: Session,
}

impl WritingStream {
    /// The stream's id.
    #[must_use]
    pub fn id(&self) -> StreamId {
        self.id
    }

    /// The stream's kind.
    #[must_use]
    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// Sends new values, one per target in target order.
    ///
    /// # Errors
    /// [`StreamError::WrongData`] for data of the wrong kind or length,
    /// [`StreamError::Interrupted`] once interrupted, session errors.
    pub async fn update(&self, data: StreamData<'_>) -> Result<(), StreamError> {
        self.session.stream_update(self.id, data).await
    }

    /// Ends the stream (updates through its clones fail with [`Interrupt::Destroyed`]).
    pub fn destroy(self) {
        if let Ok(mut streams) = self.session.inner.api.streams.lock() {
            streams.remove(&self.id.0);
        }
    }
}

/// Session services for plugin instances. See the module documentation.
impl Session {
    async fn ask(&self, make: impl FnOnce(u32) -> ToSession) -> Result<ToPlugin, SessionError> {
        let api = &self.inner.api;
        let req = api.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = api.pending.lock() {
            p.insert(req, tx);
        }
        let sent = self.send_presenter(make(req).encode()).await;
        let answer = match sent {
            Ok(()) => tokio::time::timeout(REQUEST_TIMEOUT, rx).await,
            Err(e) => {
                if let Ok(mut p) = api.pending.lock() {
                    p.remove(&req);
                }
                return Err(e);
            }
        };
        match answer {
            Ok(Ok(ToPlugin::RequestFailed { error, .. })) => Err(SessionError::Api(error)),
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(SessionError::PresenterChanged),
            Err(_) => {
                if let Ok(mut p) = api.pending.lock() {
                    p.remove(&req);
                }
                Err(SessionError::Timeout("the presenter's answer"))
            }
        }
    }

    /// Waits for uplink `channel` from the presenter.
    async fn uplink(&self, user: UserId, channel: u32) -> Result<RecvStream, SessionError> {
        let rx = {
            let Ok(mut map) = self.inner.api.uplinks.lock() else { return Err(SessionError::Disconnected) };
            if let Some(UplinkSlot::Arrived(recv)) = map.remove(&(user, channel)) {
                return Ok(recv);
            }
            let (tx, rx) = oneshot::channel();
            map.insert((user, channel), UplinkSlot::Waiting(tx));
            rx
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(SessionError::Disconnected),
            Err(_) => {
                if let Ok(mut map) = self.inner.api.uplinks.lock() {
                    map.remove(&(user, channel));
                }
                Err(SessionError::Timeout("a complex from the presenter"))
            }
        }
    }

    // ---------------------------------------------------------------- workspace: reading

    /// The complexes of the room's workspace, shallow (no atoms).
    ///
    /// # Errors
    /// [`SessionError::Timeout`], [`SessionError::Disconnected`].
    pub async fn request_complex_list(&self) -> Result<Vec<ComplexInfo>, SessionError> {
        match self.ask(|req| ToSession::ComplexListRequest { req }).await? {
            ToPlugin::ComplexList { complexes, .. } => Ok(complexes),
            _ => Err(unexpected("an answer of another kind")),
        }
    }

    /// Complexes by id, shallow (`None`: not in the workspace).
    ///
    /// # Errors
    /// As [`Session::request_complex_list`].
    pub async fn request_complexes_shallow(&self, ids: &[ComplexId]) -> Result<Vec<Option<ComplexInfo>>, SessionError> {
        let ids = ids.to_vec();
        match self.ask(|req| ToSession::ComplexesRequest { req, ids, deep: false }).await? {
            ToPlugin::Complexes { complexes, .. } => Ok(complexes),
            _ => Err(unexpected("an answer of another kind")),
        }
    }

    /// Complexes by id, whole: topology, positions and display state (`None`: not in the
    /// workspace). They travel as keyframes on uplinks from the presenter.
    ///
    /// # Errors
    /// As [`Session::request_complex_list`]; [`SessionError::Codec`] for a keyframe that does
    /// not decode.
    pub async fn request_complexes(&self, ids: &[ComplexId]) -> Result<Vec<Option<Complex>>, SessionError> {
        let presenter = self.presenter();
        let wanted = ids.to_vec();
        let ToPlugin::DeepComplexes { channels, .. } =
            self.ask(|req| ToSession::ComplexesRequest { req, ids: wanted, deep: true }).await?
        else {
            return Err(unexpected("an answer of another kind"));
        };
        if channels.len() != ids.len() || channels.iter().zip(ids).any(|((a, _), b)| a != b) {
            return Err(unexpected("an answer for other complexes"));
        }
        let mut out = Vec::with_capacity(channels.len());
        for (id, channel) in channels {
            let Some(channel) = channel else {
                out.push(None);
                continue;
            };
            let recv = self.uplink(presenter, channel).await?;
            let mut complex = read_complex(recv, &self.inner.api.limits).await?;
            complex.id = id;
            out.push(Some(complex));
        }
        Ok(out)
    }

    /// One complex, whole.
    ///
    /// # Errors
    /// [`SessionError::Api`] with [`ApiError::UnknownComplex`] if it is not in the workspace.
    pub async fn request_complex(&self, id: ComplexId) -> Result<Complex, SessionError> {
        self.request_complexes(&[id]).await?.pop().flatten().ok_or(SessionError::Api(ApiError::UnknownComplex(id)))
    }

    /// The whole workspace: every complex, whole.
    ///
    /// # Errors
    /// As [`Session::request_complexes`].
    pub async fn request_workspace(&self) -> Result<Workspace, SessionError> {
        let ids: Vec<ComplexId> = self.request_complex_list().await?.into_iter().map(|c| c.id).collect();
        let mut ws = Workspace::new();
        for c in self.request_complexes(&ids).await?.into_iter().flatten() {
            ws.insert(c);
        }
        Ok(ws)
    }

    /// Who presents the room.
    ///
    /// # Errors
    /// As [`Session::request_complex_list`].
    pub async fn presenter_info(&self) -> Result<PresenterInfo, SessionError> {
        match self.ask(|req| ToSession::PresenterInfoRequest { req }).await? {
            ToPlugin::PresenterInfo { user, name, client, .. } => Ok(PresenterInfo { user, name, client }),
            _ => Err(unexpected("an answer of another kind")),
        }
    }

    // ---------------------------------------------------------------- workspace: publishing

    /// Publishes `complex` whole (a keyframe on its channel) and waits until the presenter
    /// applied it, so that what the instance asks the presenter next sees it (the keyframe and
    /// the request travel on different QUIC streams and could pass each other).
    async fn publish(&self, published: &mut Published, complex: Complex) -> Result<(), SessionError> {
        let id = complex.id;
        let before = self.inner.api.applied_count(id);
        if let Some(pc) = published.complexes.get_mut(&id) {
            pc.complex = complex;
            pc.send_keyframe().await?;
        } else {
            let sender = self.open_frames(complex_channel(id)).await?;
            let mut pc = PublishedComplex { complex, encoder: StreamEncoder::new(id.0, PRECISION), sender };
            pc.send_keyframe().await?;
            published.complexes.insert(id, pc);
        }
        self.inner.api.wait_applied(id, before).await
    }

    /// Adds complexes to the room's workspace; returns their ids (given by the presenter).
    /// Every user's client gets them, and so do users who join later.
    ///
    /// # Errors
    /// As [`Session::request_complex_list`]; [`SessionError::Codec`] for a complex the codec
    /// cannot send (coordinates out of range).
    pub async fn add_complexes(&self, complexes: Vec<Complex>) -> Result<Vec<ComplexId>, SessionError> {
        if complexes.is_empty() {
            return Ok(Vec::new());
        }
        let count = u32::try_from(complexes.len()).map_err(|_| unexpected("too many complexes"))?;
        let ids = match self.ask(|req| ToSession::ReserveComplexIds { req, count }).await? {
            ToPlugin::ComplexIds { ids, .. } if ids.len() == complexes.len() => ids,
            _ => return Err(unexpected("an answer with another number of ids")),
        };
        let mut published = self.inner.api.published.lock().await;
        for (mut c, id) in complexes.into_iter().zip(&ids) {
            c.id = *id;
            self.publish(&mut published, c).await?;
        }
        Ok(ids)
    }

    /// Adds one complex; returns its id.
    ///
    /// # Errors
    /// As [`Session::add_complexes`].
    pub async fn add_complex(&self, complex: Complex) -> Result<ComplexId, SessionError> {
        self.add_complexes(vec![complex]).await?.pop().ok_or(unexpected("no id"))
    }

    /// Replaces complexes whole (by their `id`): every user gets a keyframe.
    ///
    /// # Errors
    /// [`SessionError::Api`] with [`ApiError::UnknownComplex`] for an id not in the workspace.
    pub async fn update_structures_deep(&self, complexes: &[Complex]) -> Result<(), SessionError> {
        let unpublished: Vec<ComplexId> = {
            let published = self.inner.api.published.lock().await;
            complexes.iter().map(|c| c.id).filter(|id| !published.complexes.contains_key(id)).collect()
        };
        if !unpublished.is_empty() {
            let found = self.request_complexes_shallow(&unpublished).await?;
            if let Some((id, _)) = unpublished.iter().zip(&found).find(|(_, f)| f.is_none()) {
                return Err(SessionError::Api(ApiError::UnknownComplex(*id)));
            }
        }
        let mut published = self.inner.api.published.lock().await;
        for c in complexes {
            self.publish(&mut published, c.clone()).await?;
        }
        Ok(())
    }

    /// Makes sure this instance publishes `id` (asking the presenter for it whole if not).
    async fn adopt(&self, id: ComplexId) -> Result<(), SessionError> {
        if self.inner.api.published.lock().await.complexes.contains_key(&id) {
            return Ok(());
        }
        let complex = self.request_complex(id).await?;
        let mut published = self.inner.api.published.lock().await;
        if !published.complexes.contains_key(&id) {
            self.publish(&mut published, complex).await?;
        }
        Ok(())
    }

    /// Changes complexes shallowly: name, placement (position, rotation, visible, locked) and
    /// the model shown. A placement change travels as a transform frame; a new name or model
    /// as a keyframe.
    ///
    /// # Errors
    /// [`SessionError::Api`] with [`ApiError::UnknownComplex`] for an id not in the workspace.
    pub async fn update_structures_shallow(&self, infos: &[ComplexInfo]) -> Result<(), SessionError> {
        for info in infos {
            self.adopt(info.id).await?;
            let mut published = self.inner.api.published.lock().await;
            let Some(pc) = published.complexes.get_mut(&info.id) else { continue };
            let c = &mut pc.complex;
            c.position = info.position;
            c.rotation = info.rotation;
            c.visible = info.visible;
            c.locked = info.locked;
            let model = info.current_model as usize;
            if c.name != info.name || (model != c.current_model && model < c.models.len()) {
                c.name.clone_from(&info.name);
                if model < c.models.len() {
                    c.current_model = model;
                }
                pc.send_keyframe().await?;
            } else {
                let mut buf = Vec::new();
                if pc.encoder.transform(&pc.complex, &mut buf)?.is_some() {
                    pc.sender.send(&buf).await?;
                }
            }
        }
        Ok(())
    }

    /// Removes complexes from the room's workspace, for every user and for late joiners.
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn remove_complexes(&self, ids: &[ComplexId]) -> Result<(), SessionError> {
        forget_published(self, ids).await;
        let channels = ids.iter().map(|id| complex_channel(*id)).collect();
        self.push(PeerMsg::ForgetChannels { instance: self.instance(), channels }).await?;
        self.send_room(Retain::No, ToSession::RemoveComplexes { ids: ids.to_vec() }.encode()).await
    }

    /// Makes the room's workspace `workspace`: complexes with id 0 are added, others replaced
    /// whole, and complexes of the room not in it removed. Returns the ids of the added ones.
    ///
    /// # Errors
    /// As [`Session::update_structures_deep`].
    pub async fn update_workspace(&self, workspace: &Workspace) -> Result<Vec<ComplexId>, SessionError> {
        let present = self.request_complex_list().await?;
        let gone: Vec<ComplexId> = present.iter().map(|c| c.id).filter(|id| workspace.get(*id).is_none()).collect();
        if !gone.is_empty() {
            self.remove_complexes(&gone).await?;
        }
        let (new, old): (Vec<&Complex>, Vec<&Complex>) = workspace.complexes().iter().partition(|c| c.id.0 == 0);
        let old: Vec<Complex> = old.into_iter().cloned().collect();
        self.update_structures_deep(&old).await?;
        self.add_complexes(new.into_iter().cloned().collect()).await
    }

    /// Points every user's camera at complexes, zooming to fit them.
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn zoom_on(&self, ids: &[ComplexId]) -> Result<(), SessionError> {
        self.send_room(Retain::No, ToSession::Focus { ids: ids.to_vec(), zoom: true }.encode()).await
    }

    /// Centers every user's camera on complexes (without zooming).
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn center_on(&self, ids: &[ComplexId]) -> Result<(), SessionError> {
        self.send_room(Retain::No, ToSession::Focus { ids: ids.to_vec(), zoom: false }.encode()).await
    }

    // ---------------------------------------------------------------- services

    /// Opens a web page on the presenter's client.
    ///
    /// # Errors
    /// [`SessionError::Disconnected`].
    pub async fn open_url(&self, url: impl Into<String>) -> Result<(), SessionError> {
        self.send_presenter(ToSession::OpenUrl { url: url.into() }.encode()).await
    }

    /// Loads a PDB or mmCIF file (plain or gzip; the format from `name`'s extension or the
    /// content) into the room's workspace; returns the new complex's id.
    ///
    /// # Errors
    /// [`SessionError::Load`] with the loader's typed error, and those of
    /// [`Session::add_complexes`].
    pub async fn load_file(&self, name: &str, bytes: &[u8]) -> Result<ComplexId, SessionError> {
        let (name, bytes) = (name.to_owned(), bytes.to_vec());
        let complex = tokio::task::spawn_blocking(move || -> Result<Complex, LoadError> {
            let hint = io::format_from_name(std::path::Path::new(&name));
            let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
            let mut loaded = io::load_bytes(&bytes, &name, hint, &opts)?;
            let stem = name.rsplit(['/', '\\']).next().unwrap_or(&name);
            let stem = stem.strip_suffix(".gz").unwrap_or(stem);
            loaded.complex.name = stem.rsplit_once('.').map_or(stem, |(s, _)| s).to_owned();
            Ok(loaded.complex)
        })
        .await
        .map_err(|_| unexpected("the loader task failed"))??;
        self.add_complex(complex).await
    }

    /// Exports complexes of the workspace as PDB text (their current model), in `ids` order.
    ///
    /// # Errors
    /// [`SessionError::Api`] with [`ApiError::UnknownComplex`] for an id not in the workspace.
    pub async fn export_pdb(&self, ids: &[ComplexId]) -> Result<Vec<String>, SessionError> {
        let complexes = self.request_complexes(ids).await?;
        ids.iter()
            .zip(complexes)
            .map(|(id, c)| {
                c.map(|c| io::pdb::write(c.current())).ok_or(SessionError::Api(ApiError::UnknownComplex(*id)))
            })
            .collect()
    }

    /// Recolours complexes with a colour scheme, for every user.
    ///
    /// # Errors
    /// [`SessionError::Api`] with [`ApiError::UnknownComplex`] for an id not in the workspace.
    pub async fn apply_color_scheme(&self, scheme: ColorScheme, ids: &[ComplexId]) -> Result<(), SessionError> {
        for id in ids {
            self.adopt(*id).await?;
            let mut published = self.inner.api.published.lock().await;
            let Some(pc) = published.complexes.get_mut(id) else { continue };
            let c = &mut pc.complex;
            for (t, d) in c.topologies.iter().zip(c.displays.iter_mut()) {
                d.apply_color_scheme(t, scheme);
            }
            let mut buf = Vec::new();
            if pc.encoder.attributes(&pc.complex, &mut buf)?.is_some() {
                pc.sender.send(&buf).await?;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- shapes

    /// Uploads shapes: those with id 0 get a new id, the others replace the shape with their
    /// id. Returns the ids, in order. Every user gets them, and so do late joiners.
    ///
    /// # Errors
    /// [`SessionError::Codec`] for an invalid shape (non-finite values, a mesh index out of
    /// range, a label too long); nothing is sent then.
    pub async fn upload_shapes(&self, shapes: &mut [Shape]) -> Result<Vec<ShapeId>, SessionError> {
        let mut published = self.inner.api.published.lock().await;
        for s in shapes.iter() {
            s.validate(&self.inner.api.limits)?;
        }
        for s in shapes.iter_mut() {
            if s.id.0 == 0 {
                published.next_shape += 1;
                s.id = ShapeId(published.next_shape);
            }
        }
        let mut buf = Vec::new();
        match &mut published.shapes {
            Some(sc) => {
                sc.encoder.update(shapes, &[], &mut buf)?;
                sc.sender.send(&buf).await?;
            }
            None => {
                let mut encoder = ShapeEncoder::new(SHAPES_CHANNEL, PRECISION);
                encoder.full(shapes.iter(), &mut buf)?;
                let mut sender = self.open_frames(SHAPES_CHANNEL).await?;
                sender.send(&buf).await?;
                published.shapes = Some(ShapeChannel { encoder, sender });
            }
        }
        Ok(shapes.iter().map(|s| s.id).collect())
    }

    /// Uploads one shape; returns its id.
    ///
    /// # Errors
    /// As [`Session::upload_shapes`].
    pub async fn upload_shape(&self, shape: Shape) -> Result<ShapeId, SessionError> {
        let mut one = [shape];
        Ok(self.upload_shapes(&mut one).await?[0])
    }

    /// The shapes this instance shows (as every user holds them).
    pub async fn shapes(&self) -> Vec<Shape> {
        let published = self.inner.api.published.lock().await;
        published.shapes.as_ref().map(|sc| sc.encoder.sent().iter().cloned().collect()).unwrap_or_default()
    }

    /// Destroys shapes; streams on them are interrupted.
    ///
    /// # Errors
    /// [`SessionError::Codec`] for an id this instance does not show (nothing is sent then).
    pub async fn destroy_shapes(&self, ids: &[ShapeId]) -> Result<(), SessionError> {
        {
            let mut published = self.inner.api.published.lock().await;
            let Some(sc) = &mut published.shapes else {
                return Err(SessionError::Codec(CodecError::Corrupt("destroy of a shape not held")));
            };
            let mut buf = Vec::new();
            sc.encoder.update(&[], ids, &mut buf)?;
            sc.sender.send(&buf).await?;
        }
        for id in ids {
            let why = Interrupt::ShapeDestroyed(*id);
            interrupt_streams(self, |e| matches!(&e.target, StreamTarget::Shapes(s) if s.contains(id)), &why);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- streams

    /// Creates a writing stream of `kind` on `target`.
    ///
    /// # Errors
    /// [`StreamError::UnknownComplex`], [`StreamError::UnknownAtom`],
    /// [`StreamError::UnknownShape`], [`StreamError::Unsupported`] (a kind that does not apply
    /// to the target, a radius stream on a shape that is not a sphere).
    pub async fn create_writing_stream(
        &self,
        kind: StreamKind,
        target: StreamTarget,
    ) -> Result<WritingStream, StreamError> {
        use StreamKind as K;
        match (&target, kind) {
            (StreamTarget::Atoms { complex, atoms }, K::AtomPosition | K::AtomColor | K::AtomScale | K::AtomLabel) => {
                match self.adopt(*complex).await {
                    Err(SessionError::Api(e)) => return Err(e.into()),
                    r => r?,
                }
                let published = self.inner.api.published.lock().await;
                let n = published.complexes.get(complex).map_or(0, |pc| pc.complex.current().topology.atom_count());
                if let Some(a) = atoms.iter().find(|a| a.index() >= n) {
                    return Err(StreamError::UnknownAtom(*complex, *a));
                }
            }
            (StreamTarget::Complexes(ids), K::ComplexPosition | K::ComplexRotation) => {
                for c in ids {
                    match self.adopt(*c).await {
                        Err(SessionError::Api(e)) => return Err(e.into()),
                        r => r?,
                    }
                }
            }
            (StreamTarget::Shapes(ids), K::ShapePosition | K::ShapeColor | K::SphereRadius) => {
                let published = self.inner.api.published.lock().await;
                for id in ids {
                    let shape = published.shapes.as_ref().and_then(|sc| sc.encoder.sent().get(*id));
                    match shape {
                        None => return Err(StreamError::UnknownShape(*id)),
                        Some(s) if kind == K::SphereRadius && !matches!(s.kind, ShapeKind::Sphere { .. }) => {
                            return Err(StreamError::Unsupported(format!("{id} is not a sphere")));
                        }
                        Some(_) => {}
                    }
                }
            }
            (t, k) => return Err(StreamError::Unsupported(format!("a {k:?} stream on {t:?}"))),
        }
        let id = self.inner.api.next_stream.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut streams) = self.inner.api.streams.lock() {
            streams.insert(id, StreamEntry { kind, target, interrupted: None });
        }
        Ok(WritingStream { id: StreamId(id), kind, session: self.clone() })
    }

    async fn stream_update(&self, id: StreamId, data: StreamData<'_>) -> Result<(), StreamError> {
        let (kind, target) = {
            let streams = self.inner.api.streams.lock().map_err(|_| SessionError::Disconnected)?;
            let e = streams.get(&id.0).ok_or(StreamError::Interrupted(Interrupt::Destroyed))?;
            if let Some(why) = &e.interrupted {
                return Err(StreamError::Interrupted(why.clone()));
            }
            (e.kind, e.target.clone())
        };
        let wrong = |expected| StreamError::WrongData { kind, expected, got: data.len(), data: data.name() };
        let fits = matches!(
            (kind, data),
            (
                StreamKind::AtomPosition | StreamKind::ComplexPosition | StreamKind::ShapePosition,
                StreamData::Positions(_)
            ) | (StreamKind::AtomColor | StreamKind::ShapeColor, StreamData::Colors(_))
                | (StreamKind::AtomScale | StreamKind::SphereRadius, StreamData::Scales(_))
                | (StreamKind::AtomLabel, StreamData::Labels(_))
                | (StreamKind::ComplexRotation, StreamData::Rotations(_))
        );
        if !fits || data.len() != target.len() {
            return Err(wrong(target.len()));
        }
        let mut published = self.inner.api.published.lock().await;
        let mut buf = Vec::new();
        match target {
            StreamTarget::Atoms { complex, atoms } => {
                let pc = published
                    .complexes
                    .get_mut(&complex)
                    .ok_or(StreamError::Interrupted(Interrupt::ComplexRemoved(complex)))?;
                match data {
                    StreamData::Positions(ps) => {
                        let current = pc.complex.current_model;
                        let model = pc.complex.models.get_mut(current).ok_or(unexpected("no current model"))?;
                        for (a, p) in atoms.iter().zip(ps) {
                            if let Some(slot) = model.positions.get_mut(a.index()) {
                                *slot = *p;
                            }
                        }
                        pc.encoder.delta(&model.positions, &mut buf).map_err(SessionError::from)?;
                    }
                    other => {
                        let mut changes = AttributeChanges::default();
                        match other {
                            StreamData::Colors(cs) => {
                                changes.color = atoms.iter().copied().zip(cs.iter().copied()).collect();
                            }
                            StreamData::Scales(rs) => {
                                changes.radius = atoms.iter().copied().zip(rs.iter().copied()).collect();
                            }
                            StreamData::Labels(ls) => {
                                changes.labeled = atoms.iter().map(|a| (*a, true)).collect();
                                changes.label_text = atoms
                                    .iter()
                                    .zip(ls)
                                    .map(|(a, l)| (*a, (!l.is_empty()).then(|| l.clone())))
                                    .collect();
                                for ((_, on), l) in changes.labeled.iter_mut().zip(ls) {
                                    *on = !l.is_empty();
                                }
                            }
                            _ => return Err(wrong(atoms.len())),
                        }
                        pc.encoder
                            .attribute_changes(&mut pc.complex, &changes, &mut buf)
                            .map_err(SessionError::from)?;
                    }
                }
                if !buf.is_empty() {
                    pc.sender.send(&buf).await?;
                }
            }
            StreamTarget::Complexes(ids) => {
                for (i, c) in ids.iter().enumerate() {
                    let pc = published
                        .complexes
                        .get_mut(c)
                        .ok_or(StreamError::Interrupted(Interrupt::ComplexRemoved(*c)))?;
                    match data {
                        StreamData::Positions(ps) => pc.complex.position = ps[i],
                        StreamData::Rotations(rs) => pc.complex.rotation = rs[i],
                        _ => return Err(wrong(ids.len())),
                    }
                    buf.clear();
                    if pc.encoder.transform(&pc.complex, &mut buf).map_err(SessionError::from)?.is_some() {
                        pc.sender.send(&buf).await?;
                    }
                }
            }
            StreamTarget::Shapes(ids) => {
                let sc = published.shapes.as_mut().ok_or(StreamError::UnknownShape(ids[0]))?;
                let mut changes = Vec::with_capacity(ids.len());
                for (i, id) in ids.iter().enumerate() {
                    let shape =
                        sc.encoder.sent().get(*id).ok_or(StreamError::Interrupted(Interrupt::ShapeDestroyed(*id)))?;
                    let mut ch = ShapeChange::new(*id);
                    match data {
                        StreamData::Positions(ps) => {
                            let mut anchor = *shape.kind.anchor();
                            anchor.offset = ps[i];
                            ch.anchor = Some(anchor);
                        }
                        StreamData::Colors(cs) => ch.color = Some(cs[i]),
                        StreamData::Scales(rs) => ch.size = Some(rs[i]),
                        _ => return Err(wrong(ids.len())),
                    }
                    changes.push(ch);
                }
                sc.encoder.changes(&changes, &mut buf).map_err(SessionError::from)?;
                sc.sender.send(&buf).await?;
            }
        }
        Ok(())
    }

    /// Creates a reading stream: the positions of `atoms` of `complex` (all atoms if empty)
    /// each time the presenter's user moves them.
    ///
    /// # Errors
    /// [`StreamError::UnknownComplex`], [`StreamError::UnknownAtom`], session errors.
    pub async fn create_reading_stream(
        &self,
        complex: ComplexId,
        atoms: &[AtomId],
    ) -> Result<ReadingStream, StreamError> {
        let presenter = self.presenter();
        let stream = self.inner.api.next_stream.fetch_add(1, Ordering::Relaxed);
        let wanted: Vec<u32> = atoms.iter().map(|a| a.0).collect();
        let channel = match self.ask(|req| ToSession::CreateReadingStream { req, stream, complex, atoms: wanted }).await
        {
            Ok(ToPlugin::ReadingStreamCreated { channel, .. }) => channel,
            Ok(_) => return Err(unexpected("an answer of another kind").into()),
            Err(SessionError::Api(e)) => return Err(e.into()),
            Err(e) => return Err(e.into()),
        };
        let recv = self.uplink(presenter, channel).await?;
        let (tx, rx) = watch::channel(ReadingState::default());
        if let Ok(mut reading) = self.inner.api.reading.lock() {
            reading.insert(stream, (complex, tx.clone()));
        }
        let limits = self.inner.api.limits;
        let atoms = atoms.to_vec();
        tokio::spawn(read_positions(recv, limits, atoms, tx));
        Ok(ReadingStream { id: StreamId(stream), rx, session: self.clone(), destroyed: false })
    }
}

/// Decodes a reading stream's frames and publishes the positions of its atoms.
async fn read_positions(mut recv: RecvStream, limits: Limits, atoms: Vec<AtomId>, tx: watch::Sender<ReadingState>) {
    let mut reader = FrameReader::new(limits);
    let mut decoder = StreamDecoder::new(limits);
    let mut instances: Vec<AtomInstance> = Vec::new();
    loop {
        let Ok(Some((_, bytes))) = conn::read_frame(&mut recv, &limits).await else { break };
        reader.push_bytes(&bytes);
        while let Ok(Some(frame)) = reader.try_read() {
            if decoder.apply(&frame, &mut instances).is_err() {
                // Deltas dropped while this host lagged: the relay asks the presenter for a
                // keyframe; skip until it arrives.
                continue;
            }
            let positions: Vec<Vec3> = if atoms.is_empty() {
                instances.iter().map(|a| Vec3::from_array(a.position)).collect()
            } else {
                atoms.iter().filter_map(|a| instances.get(a.index())).map(|a| Vec3::from_array(a.position)).collect()
            };
            let stop = tx.is_closed();
            tx.send_modify(|st| {
                st.positions = positions;
                st.version += 1;
            });
            if stop {
                return;
            }
        }
    }
    tx.send_modify(|st| st.ended = true);
}

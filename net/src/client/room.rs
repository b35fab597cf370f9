//! The session client's room duties when it tracks the scene ([`super::ClientConfig::scene`]):
//! reading every frame stream of the room into the [`RoomScene`], applying room-wide messages,
//! and, while this client presents, answering the instances' workspace requests (complexes
//! travel whole as keyframes on uplinks), giving complex ids, reporting workspace events to the
//! room's instances and feeding reading streams.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use glam::Vec3;
use molstream_engine::codec::Limits;
use molstream_engine::codec::stream::{FrameReader, StreamEncoder};
use molstream_engine::{AtomId, Complex, ComplexId};
use tokio::sync::{mpsc, watch};

use super::RoomView;
use crate::api::{ApiError, ComplexEdits, ComplexInfo, IDS_SLOT, RoomEdit, ToPlugin, ToSession};
use crate::conn;
use crate::proto::{InstanceId, MAX_BODY, PeerMsg, RelayMsg, Retain, Scope, StreamHead};
use crate::scene::{EditChange, RoomScene, SceneChange, SceneError};

/// Precision of the keyframes and deltas this client sends on uplinks (10^-3 Å).
const UPLINK_PRECISION: u8 = 3;
/// Uplinks this client keeps open at once, below the relay's limit per user (64), so that no
/// instance can get the presenter closed by asking for too much.
const MAX_OPEN_UPLINKS: usize = 48;
/// Reading streams this client (as presenter) feeds at once.
const MAX_READING_STREAMS: usize = 32;
/// Complexes one deep request may name.
const MAX_DEEP: usize = 1024;
/// Room messages (answers and events for the instances, keyframe requests) waiting to be sent
/// beyond which the client drops its connection (it reconnects and the room is replayed)
/// rather than dropping one.
pub(crate) const MAX_DUTY_BACKLOG: usize = 1 << 16;

/// The queue of the room messages this client sends on its own (answers to the instances'
/// requests, workspace events, keyframe requests): never dropped; the serve loop sends them.
#[derive(Clone, Debug)]
pub(crate) struct DutyQueue {
    pub(crate) tx: mpsc::UnboundedSender<PeerMsg>,
    pub(crate) pending: Arc<std::sync::atomic::AtomicUsize>,
}

/// A reading stream this client (as presenter) feeds.
struct Subscription {
    complex: ComplexId,
    channel: u32,
    /// The reading stream's share of the open uplinks.
    _permit: tokio::sync::OwnedSemaphorePermit,
    encoder: StreamEncoder,
    send: Option<quinn::SendStream>,
    keyframe_due: bool,
}

type SharedSub = Arc<tokio::sync::Mutex<Subscription>>;

/// State shared by the client's tasks when it tracks the scene.
pub(crate) struct Shared {
    pub(crate) scene: Mutex<RoomScene>,
    pub(crate) version: watch::Sender<u64>,
    next_uplink: Mutex<u32>,
    uplinks: Arc<tokio::sync::Semaphore>,
    /// Reading streams by (instance, stream id), with their complex.
    subscriptions: Mutex<BTreeMap<(InstanceId, u32), (ComplexId, SharedSub)>>,
    /// Channels a keyframe was asked for (until one applies): asked once, not per frame.
    wanting: Mutex<BTreeSet<(InstanceId, u32)>>,
    limits: Limits,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("version", &*self.version.borrow()).finish_non_exhaustive()
    }
}

/// What the room tasks need of the client.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) out: DutyQueue,
    pub(crate) view: Arc<Mutex<RoomView>>,
    pub(crate) conn: quinn::Connection,
}

impl Shared {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            scene: Mutex::new(RoomScene::new(limits)),
            version: watch::Sender::new(0),
            next_uplink: Mutex::new(0),
            uplinks: Arc::new(tokio::sync::Semaphore::new(MAX_OPEN_UPLINKS)),
            subscriptions: Mutex::new(BTreeMap::new()),
            wanting: Mutex::new(BTreeSet::new()),
            limits,
        }
    }

    pub(crate) fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// A fresh scene (after rejoining: the relay replays the room).
    pub(crate) fn reset(&self) {
        if let Ok(mut s) = self.scene.lock() {
            *s = RoomScene::new(self.limits);
        }
        if let Ok(mut subs) = self.subscriptions.lock() {
            subs.clear();
        }
        if let Ok(mut w) = self.wanting.lock() {
            w.clear();
        }
        self.bump();
    }

    fn uplink_channel(&self) -> u32 {
        let Ok(mut n) = self.next_uplink.lock() else { return 0 };
        *n = n.wrapping_add(1);
        *n
    }
}

impl Ctx {
    fn is_presenter(&self) -> bool {
        self.view.lock().is_ok_and(|v| v.presenter == v.you)
    }

    fn instances(&self) -> Vec<InstanceId> {
        self.view.lock().map(|v| v.instances.keys().copied().collect()).unwrap_or_default()
    }

    /// Sends a message without waiting (the serve loop drains the queue; from it, waiting could
    /// deadlock). Nothing is dropped: if the relay takes so long that [`MAX_DUTY_BACKLOG`]
    /// messages wait, the connection is dropped with the reason (the client reconnects and the
    /// relay replays the room).
    fn send_now(&self, msg: PeerMsg) {
        use std::sync::atomic::Ordering;
        let waiting = self.out.pending.fetch_add(1, Ordering::Relaxed) + 1;
        if self.out.tx.send(msg).is_err() {
            self.out.pending.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        if waiting > MAX_DUTY_BACKLOG {
            let reason = format!("{waiting} room messages could not be sent to the relay");
            tracing::error!(%reason, "closing the connection");
            self.conn.close(quinn::VarInt::from_u32(2), reason.as_bytes());
        }
    }

    fn to_instance(&self, instance: InstanceId, m: &ToPlugin) {
        self.send_now(PeerMsg::ToInstance { instance, body: m.encode() });
    }

    /// Tells every instance of the room (as presenter).
    fn to_instances(&self, m: &ToPlugin) {
        if !self.is_presenter() {
            return;
        }
        let body = m.encode();
        for instance in self.instances() {
            self.send_now(PeerMsg::ToInstance { instance, body: body.clone() });
        }
    }
}

/// Accepts the room's frame streams on `ctx.conn` and applies them, until the connection ends.
pub(crate) async fn accept_frames(ctx: Ctx) {
    while let Ok(mut recv) = ctx.conn.accept_uni().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match conn::read_head(&mut recv).await {
                Ok(StreamHead::Frames { instance, channel }) => read_frames(ctx, instance, channel, recv).await,
                other => {
                    tracing::warn!(?other, "a stream that is not a frame stream refused");
                    let _ = recv.stop(quinn::VarInt::from_u32(0));
                }
            }
        });
    }
}

async fn read_frames(ctx: Ctx, instance: InstanceId, channel: u32, mut recv: quinn::RecvStream) {
    let limits = ctx.shared.limits;
    let mut reader = FrameReader::new(limits);
    loop {
        let bytes = match conn::read_frame(&mut recv, &limits).await {
            Ok(Some((_, b))) => b,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%instance, channel, error = %e, "frame stream failed");
                return;
            }
        };
        reader.push_bytes(&bytes);
        loop {
            match reader.try_read() {
                Ok(Some(frame)) => {
                    let r = ctx.shared.scene.lock().map(|mut s| s.apply_frame(instance, channel, &frame));
                    match r {
                        Ok(r) => on_frame_applied(&ctx, instance, channel, frame.header.kind, r),
                        Err(_) => return,
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // A payload that fails its checksum: resync from a keyframe.
                    tracing::warn!(%instance, channel, error = %e, "frame refused");
                    want_keyframe(&ctx, instance, channel);
                    break;
                }
            }
        }
    }
}

fn want_keyframe(ctx: &Ctx, instance: InstanceId, channel: u32) {
    let first = ctx.shared.wanting.lock().is_ok_and(|mut w| w.insert((instance, channel)));
    if first {
        ctx.send_now(PeerMsg::KeyframeWanted { instance, channel });
    }
}

fn on_frame_applied(
    ctx: &Ctx,
    instance: InstanceId,
    channel: u32,
    kind: molstream_engine::codec::FrameKind,
    r: Result<SceneChange, SceneError>,
) {
    use molstream_engine::codec::FrameKind;
    match r {
        Ok(change) => {
            if (matches!(kind, FrameKind::Keyframe) || matches!(change, SceneChange::Shapes(_)))
                && let Ok(mut w) = ctx.shared.wanting.lock()
            {
                w.remove(&(instance, channel));
            }
            match change {
                SceneChange::Ignored => return,
                SceneChange::ComplexAdded(id) => ctx.to_instances(&ToPlugin::ComplexesAdded { ids: vec![id] }),
                SceneChange::ComplexReplaced(id) => {
                    ctx.to_instances(&ToPlugin::ComplexesUpdated { ids: vec![id], by: instance });
                }
                SceneChange::ComplexChanged(..) | SceneChange::Shapes(_) => {}
            }
            ctx.shared.bump();
        }
        Err(SceneError::NeedKeyframe { instance, channel }) => {
            ctx.shared.bump();
            want_keyframe(ctx, instance, channel);
        }
        Err(e) => {
            tracing::warn!(error = %e, "frame not applied");
            ctx.shared.bump();
            want_keyframe(ctx, instance, channel);
        }
    }
}

/// A control message from the relay, seen before the client's core handles it.
pub(crate) fn on_relay_msg(ctx: &Ctx, msg: &RelayMsg) {
    match msg {
        RelayMsg::FromInstance { instance, scope, body } => {
            let Ok(m) = ToSession::decode(body) else { return };
            match scope {
                Scope::Room => room_message(ctx, *instance, &m),
                Scope::Presenter => presenter_request(ctx, *instance, m),
                Scope::Direct => {}
            }
        }
        RelayMsg::InstanceStopped { instance, .. } => {
            if let Ok(mut s) = ctx.shared.scene.lock() {
                s.instance_stopped(*instance);
            }
            if let Ok(mut subs) = ctx.shared.subscriptions.lock() {
                subs.retain(|(i, _), _| i != instance);
            }
            ctx.shared.bump();
        }
        RelayMsg::FromUser { user, body } => match RoomEdit::decode(body) {
            Ok(RoomEdit::IdsReserved { up_to }) => {
                if let Ok(mut s) = ctx.shared.scene.lock() {
                    s.note_ids_reserved(up_to);
                }
            }
            Ok(RoomEdit::Complex(edits)) => {
                let change = ctx.shared.scene.lock().ok().and_then(|mut s| s.apply_edit(edits.clone()));
                ctx.shared.bump();
                if let Some(change) = change {
                    edited(ctx, edits.complex, change);
                }
            }
            Err(e) => tracing::warn!(%user, error = %e, "a user's room edit that does not decode; ignored"),
        },
        RelayMsg::UplinkKeyframe { instance, channel } => {
            let subs: Vec<_> = ctx
                .shared
                .subscriptions
                .lock()
                .map(|s| s.iter().filter(|(k, _)| k.0 == *instance).map(|(_, (_, v))| v.clone()).collect())
                .unwrap_or_default();
            let ctx = ctx.clone();
            let channel = *channel;
            tokio::spawn(async move {
                for sub in subs {
                    let mut sub = sub.lock().await;
                    if sub.channel != channel {
                        continue;
                    }
                    sub.keyframe_due = true;
                    let complex = ctx.shared.scene.lock().ok().and_then(|s| s.complex(sub.complex).cloned());
                    if let Some(c) = complex {
                        feed(&mut sub, &c).await;
                    }
                }
            });
        }
        _ => {}
    }
}

fn room_message(ctx: &Ctx, instance: InstanceId, m: &ToSession) {
    let removed = match ctx.shared.scene.lock() {
        Ok(mut s) => s.apply_message(instance, m),
        Err(_) => return,
    };
    ctx.shared.bump();
    if !removed.is_empty() {
        ctx.to_instances(&ToPlugin::ComplexesRemoved { ids: removed.clone() });
        end_subscriptions(ctx, |c| removed.contains(&c), "complex removed");
    }
}

fn end_subscriptions(ctx: &Ctx, pred: impl Fn(ComplexId) -> bool, reason: &str) {
    let gone: Vec<((InstanceId, u32), SharedSub)> = {
        let Ok(mut subs) = ctx.shared.subscriptions.lock() else { return };
        let keys: Vec<(InstanceId, u32)> = subs.iter().filter(|(_, (c, _))| pred(*c)).map(|(k, _)| *k).collect();
        keys.into_iter().filter_map(|k| subs.remove(&k).map(|(_, s)| (k, s))).collect()
    };
    for ((instance, stream), sub) in gone {
        ctx.to_instance(instance, &ToPlugin::ReadingStreamEnded { stream, reason: reason.into() });
        tokio::spawn(async move {
            if let Some(mut send) = sub.lock().await.send.take() {
                let _ = send.finish();
            }
        });
    }
}

fn info_of(ctx: &Ctx, ids: &[ComplexId]) -> Vec<Option<ComplexInfo>> {
    let Ok(s) = ctx.shared.scene.lock() else { return vec![None; ids.len()] };
    ids.iter().map(|id| s.complex(*id).map(ComplexInfo::of)).collect()
}

/// Answers a request an instance addressed to the presenter (this client).
fn presenter_request(ctx: &Ctx, instance: InstanceId, m: ToSession) {
    match m {
        ToSession::ComplexListRequest { req } => {
            let complexes = ctx
                .shared
                .scene
                .lock()
                .map(|s| s.workspace().complexes().iter().map(ComplexInfo::of).collect())
                .unwrap_or_default();
            ctx.to_instance(instance, &ToPlugin::ComplexList { req, complexes });
        }
        ToSession::ComplexesRequest { req, ids, deep: false } => {
            ctx.to_instance(instance, &ToPlugin::Complexes { req, complexes: info_of(ctx, &ids) });
        }
        ToSession::ComplexesRequest { req, ids, deep: true } => {
            if ids.len() > MAX_DEEP {
                let error = ApiError::Unsupported(format!("at most {MAX_DEEP} complexes per request"));
                return ctx.to_instance(instance, &ToPlugin::RequestFailed { req, error });
            }
            // Each complex is copied once, however often it is named.
            let found: Vec<(ComplexId, Option<Arc<Complex>>)> = match ctx.shared.scene.lock() {
                Ok(s) => {
                    let mut copies: BTreeMap<ComplexId, Arc<Complex>> = BTreeMap::new();
                    ids.iter()
                        .map(|id| {
                            let c = s
                                .complex(*id)
                                .map(|c| copies.entry(*id).or_insert_with(|| Arc::new(c.clone())).clone());
                            (*id, c)
                        })
                        .collect()
                }
                Err(_) => return,
            };
            let mut channels = Vec::with_capacity(found.len());
            let mut sends = Vec::new();
            for (id, c) in found {
                match c {
                    Some(c) => {
                        let ch = ctx.shared.uplink_channel();
                        channels.push((id, Some(ch)));
                        sends.push((ch, c));
                    }
                    None => channels.push((id, None)),
                }
            }
            ctx.to_instance(instance, &ToPlugin::DeepComplexes { req, channels });
            let ctx = ctx.clone();
            tokio::spawn(async move {
                for (channel, complex) in sends {
                    let Ok(_permit) = ctx.shared.uplinks.clone().acquire_owned().await else { return };
                    if let Err(e) = send_complex(&ctx, instance, channel, &complex).await {
                        tracing::warn!(%instance, error = %e, "sending a complex to an instance failed");
                    }
                }
            });
        }
        ToSession::ReserveComplexIds { req, count } => {
            let ids = ctx.shared.scene.lock().map(|mut s| s.reserve_ids(count)).unwrap_or_default();
            // The room learns the new highest id before the instance can use it (same control
            // stream, in order): whoever presents next never gives these ids again.
            if let Some(up_to) = ids.last() {
                let body = RoomEdit::IdsReserved { up_to: up_to.0 }.encode();
                ctx.send_now(PeerMsg::ToUsers { retain: Retain::Keep(IDS_SLOT), body });
            }
            ctx.to_instance(instance, &ToPlugin::ComplexIds { req, ids });
        }
        ToSession::PresenterInfoRequest { req } => {
            let (user, name) = ctx
                .view
                .lock()
                .map(|v| (v.you, v.users.iter().find(|u| u.id == v.you).map(|u| u.name.clone()).unwrap_or_default()))
                .unwrap_or_default();
            let client = concat!("molstream-net ", env!("CARGO_PKG_VERSION")).to_owned();
            ctx.to_instance(instance, &ToPlugin::PresenterInfo { req, user, name, client });
        }
        ToSession::OpenUrl { .. } => room_message(ctx, instance, &m),
        ToSession::CreateReadingStream { req, stream, complex, atoms } => {
            let check = ctx.shared.scene.lock().map(|s| match s.complex(complex) {
                None => Err(ApiError::UnknownComplex(complex)),
                Some(c) => {
                    let n = c.current().topology.atom_count();
                    match atoms.iter().find(|a| **a as usize >= n) {
                        Some(a) => Err(ApiError::UnknownAtom(complex, *a)),
                        None => Ok(c.clone()),
                    }
                }
            });
            let c = match check {
                Ok(Ok(c)) => c,
                Ok(Err(error)) => return ctx.to_instance(instance, &ToPlugin::RequestFailed { req, error }),
                Err(_) => return,
            };
            let feeding = ctx.shared.subscriptions.lock().map_or(usize::MAX, |s| s.len());
            let permit = match ctx.shared.uplinks.clone().try_acquire_owned() {
                Ok(p) if feeding < MAX_READING_STREAMS => p,
                _ => {
                    let error = ApiError::Unsupported("too many reading streams open".into());
                    return ctx.to_instance(instance, &ToPlugin::RequestFailed { req, error });
                }
            };
            let channel = ctx.shared.uplink_channel();
            let sub = Arc::new(tokio::sync::Mutex::new(Subscription {
                complex,
                channel,
                _permit: permit,
                encoder: StreamEncoder::new(complex.0, UPLINK_PRECISION),
                send: None,
                keyframe_due: true,
            }));
            if let Ok(mut subs) = ctx.shared.subscriptions.lock() {
                subs.insert((instance, stream), (complex, sub.clone()));
            }
            ctx.to_instance(instance, &ToPlugin::ReadingStreamCreated { req, channel });
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let mut sub = sub.lock().await;
                match open_uplink(&ctx, instance, channel).await {
                    Ok(send) => {
                        sub.send = Some(send);
                        feed(&mut sub, &c).await;
                    }
                    Err(e) => tracing::warn!(%instance, error = %e, "cannot open a reading stream's uplink"),
                }
            });
        }
        ToSession::DestroyReadingStream { stream } => {
            let sub =
                ctx.shared.subscriptions.lock().ok().and_then(|mut s| s.remove(&(instance, stream))).map(|(_, s)| s);
            if let Some(sub) = sub {
                tokio::spawn(async move {
                    if let Some(mut send) = sub.lock().await.send.take() {
                        let _ = send.finish();
                    }
                });
            }
        }
        ToSession::Notify { .. } | ToSession::Focus { .. } | ToSession::RemoveComplexes { .. } => {
            room_message(ctx, instance, &m);
        }
        // Menus are room state, kept by every client (`client.rs`), not presenter requests.
        ToSession::IntegrationResult { .. } | ToSession::Menu(_) => {}
    }
}

async fn open_uplink(ctx: &Ctx, instance: InstanceId, channel: u32) -> Result<quinn::SendStream, conn::ConnError> {
    let mut send = ctx.conn.open_uni().await.map_err(conn::ConnError::Connection)?;
    conn::write_head(&mut send, &StreamHead::Uplink { instance, channel }).await?;
    Ok(send)
}

/// Sends `complex` whole (one keyframe) on a new uplink to `instance`.
async fn send_complex(ctx: &Ctx, instance: InstanceId, channel: u32, complex: &Complex) -> Result<(), conn::ConnError> {
    let mut buf = Vec::new();
    StreamEncoder::new(complex.id.0, UPLINK_PRECISION).keyframe(complex, &mut buf)?;
    let mut send = open_uplink(ctx, instance, channel).await?;
    send.write_all(&buf).await.map_err(conn::ConnError::Write)?;
    let _ = send.finish();
    Ok(())
}

/// Sends the complex's positions on a reading stream: a keyframe first (or when one is due),
/// then position deltas.
async fn feed(sub: &mut Subscription, complex: &Complex) {
    let Some(send) = &mut sub.send else { return };
    let mut buf = Vec::new();
    let r = if sub.keyframe_due || sub.encoder.last_seq().is_none() {
        sub.encoder.keyframe(complex, &mut buf).map(|_| ())
    } else {
        match sub.encoder.delta(complex.current().positions, &mut buf) {
            Ok(_) => Ok(()),
            // The atom count changed: a keyframe carries the new atoms.
            Err(_) => {
                buf.clear();
                sub.encoder.keyframe(complex, &mut buf).map(|_| ())
            }
        }
    };
    if r.is_ok() && send.write_all(&buf).await.is_ok() {
        sub.keyframe_due = false;
    }
}

/// Why a user's edit was not made.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EditError {
    /// No such complex in the room.
    Unknown,
    /// The edits of the complex do not fit one message.
    TooLarge(usize),
}

/// This client's user edits a complex: the edits (the complex's whole edit state) go to every
/// other user of the room, kept for late joiners; they apply here; as presenter, the room's
/// instances are told.
fn edit(ctx: &Ctx, edits: Option<ComplexEdits>) -> Result<(), EditError> {
    let edits = edits.ok_or(EditError::Unknown)?;
    let complex = edits.complex;
    let edit = RoomEdit::Complex(edits);
    let body = edit.encode();
    if body.len() > MAX_BODY {
        return Err(EditError::TooLarge(body.len()));
    }
    let RoomEdit::Complex(edits) = edit else { return Err(EditError::Unknown) };
    let slot = crate::api::EDITS_SLOT | u64::from(complex.0);
    let change = ctx.shared.scene.lock().ok().and_then(|mut s| s.apply_edit(edits));
    ctx.send_now(PeerMsg::ToUsers { retain: Retain::Keep(slot), body });
    ctx.shared.bump();
    if let Some(change) = change {
        edited(ctx, complex, change);
    }
    Ok(())
}

/// A user's edit applied (this client's or another's): as presenter, the instances are told
/// and the reading streams on the complex fed.
fn edited(ctx: &Ctx, complex: ComplexId, change: EditChange) {
    if !ctx.is_presenter() {
        return;
    }
    if change.selection {
        let count = ctx
            .shared
            .scene
            .lock()
            .ok()
            .and_then(|s| s.complex(complex).map(|c| c.current().display.selected.iter().filter(|x| **x).count()))
            .unwrap_or(0);
        let selected = u32::try_from(count).unwrap_or(u32::MAX);
        ctx.to_instances(&ToPlugin::SelectionChanged { complex, selected });
    }
    if change.moved {
        let subs: Vec<SharedSub> = ctx
            .shared
            .subscriptions
            .lock()
            .map(|s| s.values().filter(|(c, _)| *c == complex).map(|(_, sub)| sub.clone()).collect())
            .unwrap_or_default();
        if !subs.is_empty() {
            let snapshot = ctx.shared.scene.lock().ok().and_then(|s| s.complex(complex).cloned());
            if let Some(snapshot) = snapshot {
                tokio::spawn(async move {
                    for sub in subs {
                        feed(&mut *sub.lock().await, &snapshot).await;
                    }
                });
            }
        }
        ctx.to_instances(&ToPlugin::ComplexesUpdated { ids: vec![complex], by: InstanceId(0) });
    }
}

/// This client's user moved atoms of a complex.
pub(crate) fn move_atoms(ctx: &Ctx, complex: ComplexId, moves: &[(AtomId, Vec3)]) -> Result<(), EditError> {
    let edits = ctx.shared.scene.lock().ok().and_then(|s| s.move_edit(complex, moves));
    edit(ctx, edits)
}

/// This client's user selected or deselected atoms of a complex.
pub(crate) fn select_atoms(ctx: &Ctx, complex: ComplexId, atoms: &[AtomId], selected: bool) -> Result<(), EditError> {
    let edits = ctx.shared.scene.lock().ok().and_then(|s| s.select_edit(complex, atoms, selected));
    edit(ctx, edits)
}

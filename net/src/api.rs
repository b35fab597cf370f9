//! The plugin API layer: what the opaque `body` of `ToInstance` / `InstanceInput` (session →
//! instance, [`ToPlugin`]) and of `ToRoom` / `ToUser` / `FromInstance` (instance → session,
//! [`ToSession`]) carries. Same encoding as the control messages ([`crate::proto::wire`]).
//!
//! Tags 1–9 cover the instance lifecycle (run, advanced settings), notifications and
//! integration hooks with request/response. Tags 10–59 are the workspace, streams and session
//! services: requests an instance sends to the presenter (who owns the room's workspace) and
//! their answers, events the presenter reports to the instances, and room-wide effects.
//! Structures themselves never travel in these bodies: they are codec frames on frame
//! streams (see [`crate::proto::ROOM_CHANNELS`]) and, from the presenter to an instance, on
//! uplinks (`StreamHead::Uplink`).

use bytes::Bytes;
use glam::{Quat, Vec3};
use molstream_engine::{Complex, ComplexId};

use crate::menu::{MENU_TAG_LAST, MenuEvent, MenuUpdate, UPDATE_TAG_FIRST};
use crate::proto::wire::{DecodeError, Reader, Writer};
use crate::proto::{InstanceId, MAX_BODY, MAX_NAME, MAX_TEXT, UserId};

/// Most ids (complexes, atoms) in one list of a plugin API body.
pub const MAX_IDS: usize = 1 << 18;
/// Longest URL in `OpenUrl`.
pub const MAX_URL: usize = 8192;

/// What an instance may know of a complex without its atoms (a "shallow" complex).
#[derive(Debug, Clone, PartialEq)]
pub struct ComplexInfo {
    /// Id in the room's workspace.
    pub id: ComplexId,
    /// Display name.
    pub name: String,
    /// Atoms of the current model.
    pub atoms: u32,
    /// Residues of the current model.
    pub residues: u32,
    /// Chain segments of the current model.
    pub chains: u32,
    /// Bonds of the current model.
    pub bonds: u32,
    /// Models (frames).
    pub models: u32,
    /// The model shown.
    pub current_model: u32,
    /// Position in the workspace.
    pub position: Vec3,
    /// Rotation in the workspace.
    pub rotation: Quat,
    /// Drawn.
    pub visible: bool,
    /// Users may not move it.
    pub locked: bool,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl ComplexInfo {
    /// The shallow view of `complex`.
    #[must_use]
    pub fn of(complex: &Complex) -> Self {
        let t = complex.model(complex.current_model).map(|m| m.topology);
        Self {
            id: complex.id,
            name: complex.name.clone(),
            atoms: t.map_or(0, |t| count(t.atom_count())),
            residues: t.map_or(0, |t| count(t.residue_count())),
            chains: t.map_or(0, |t| count(t.chain_count())),
            bonds: t.map_or(0, |t| count(t.bonds.len())),
            models: count(complex.models.len()),
            current_model: count(complex.current_model),
            position: complex.position,
            rotation: complex.rotation,
            visible: complex.visible,
            locked: complex.locked,
        }
    }
}

/// An error answer to a plugin API request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No complex with this id in the room's workspace.
    #[error("no {0} in the workspace")]
    UnknownComplex(ComplexId),
    /// The complex has no such atom.
    #[error("{0} has no atom {1}")]
    UnknownAtom(ComplexId, u32),
    /// The request cannot be served (with why).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

/// Session → instance.
#[derive(Debug, Clone, PartialEq)]
pub enum ToPlugin {
    /// Tag 1. The user pressed run.
    Run,
    /// Tag 2. The user opened the advanced settings.
    AdvancedSettings,
    /// Tag 3. An integration hook the plugin declared, with a request id for the answer.
    Integration {
        /// Request id, echoed in [`ToSession::IntegrationResult`].
        req: u32,
        /// Hook name (one of the plugin's `integrations`).
        name: String,
        /// Arguments (hook-specific).
        args: Bytes,
    },
    /// Tag 60 (60–79 are reserved for menus). A user's action in one of the instance's menus.
    Menu(MenuEvent),
    /// Tag 10 (presenter's answer). The complexes of the workspace, shallow.
    ComplexList {
        /// The request.
        req: u32,
        /// Every complex, in workspace order.
        complexes: Vec<ComplexInfo>,
    },
    /// Tag 11 (presenter's answer). The requested complexes, shallow (`None`: not in the
    /// workspace).
    Complexes {
        /// The request.
        req: u32,
        /// One entry per requested id, in request order.
        complexes: Vec<Option<ComplexInfo>>,
    },
    /// Tag 12 (presenter's answer). Where the requested complexes travel whole: for each
    /// requested id, the uplink channel carrying its keyframe (`None`: not in the workspace).
    DeepComplexes {
        /// The request.
        req: u32,
        /// One entry per requested id, in request order.
        channels: Vec<(ComplexId, Option<u32>)>,
    },
    /// Tag 13 (presenter's answer). Ids reserved for complexes the instance adds.
    ComplexIds {
        /// The request.
        req: u32,
        /// The ids.
        ids: Vec<ComplexId>,
    },
    /// Tag 14 (presenter's event). Complexes appeared in the workspace.
    ComplexesAdded {
        /// Their ids.
        ids: Vec<ComplexId>,
    },
    /// Tag 15 (presenter's event). Complexes left the workspace.
    ComplexesRemoved {
        /// Their ids.
        ids: Vec<ComplexId>,
    },
    /// Tag 16 (presenter's event). Complexes were replaced whole or their topology edited (by
    /// an instance's frames), or changed by the presenter's user.
    ComplexesUpdated {
        /// Their ids.
        ids: Vec<ComplexId>,
        /// The instance whose frames changed them; `InstanceId(0)` for the presenter's user.
        by: InstanceId,
    },
    /// Tag 17 (presenter's event). The presenter's user changed the selection of a complex.
    SelectionChanged {
        /// The complex.
        complex: ComplexId,
        /// Atoms selected now.
        selected: u32,
    },
    /// Tag 18 (presenter's answer). Who presents.
    PresenterInfo {
        /// The request.
        req: u32,
        /// The presenter's user id.
        user: UserId,
        /// The presenter's name.
        name: String,
        /// The presenter's client software.
        client: String,
    },
    /// Tag 19 (presenter's answer). A reading stream was created: the presenter sends it on
    /// uplink `channel`.
    ReadingStreamCreated {
        /// The request.
        req: u32,
        /// The uplink channel.
        channel: u32,
    },
    /// Tag 20 (presenter's event). A reading stream ended (its complex left the workspace).
    ReadingStreamEnded {
        /// The instance's stream id.
        stream: u32,
        /// Why.
        reason: String,
    },
    /// Tag 21 (presenter's answer). A request failed.
    RequestFailed {
        /// The request.
        req: u32,
        /// Why.
        error: ApiError,
    },
}

/// Instance → session.
#[derive(Debug, Clone, PartialEq)]
pub enum ToSession {
    /// Tag 1. A notification for the users.
    Notify {
        /// Severity.
        level: Level,
        /// Text.
        text: String,
    },
    /// Tag 2. The answer to an integration request.
    IntegrationResult {
        /// The request.
        req: u32,
        /// The hook's result, or why it failed.
        result: Result<Bytes, String>,
    },
    /// Tags 60–65 (60–79 are reserved for menus). A change to one of the instance's menus.
    Menu(MenuUpdate),
    /// Tag 10 (to the presenter). Asks for the workspace's complexes, shallow.
    ComplexListRequest {
        /// Request id, echoed in the answer.
        req: u32,
    },
    /// Tag 11 (to the presenter). Asks for complexes by id: shallow (answered with
    /// `Complexes`) or deep (answered with `DeepComplexes` and one uplink per complex found).
    ComplexesRequest {
        /// Request id.
        req: u32,
        /// The complexes.
        ids: Vec<ComplexId>,
        /// Whole structures rather than metadata.
        deep: bool,
    },
    /// Tag 12 (to the presenter). Reserves ids for complexes the instance will add.
    ReserveComplexIds {
        /// Request id.
        req: u32,
        /// How many (1 to 4096).
        count: u32,
    },
    /// Tag 13 (to the room). Complexes were removed from the workspace.
    RemoveComplexes {
        /// Their ids.
        ids: Vec<ComplexId>,
    },
    /// Tag 14 (to the room). Point the users' cameras at complexes.
    Focus {
        /// The complexes.
        ids: Vec<ComplexId>,
        /// Zoom to fit them (`false`: only center on them).
        zoom: bool,
    },
    /// Tag 15 (to the presenter). Open a web page.
    OpenUrl {
        /// The URL.
        url: String,
    },
    /// Tag 16 (to the presenter). Asks who presents.
    PresenterInfoRequest {
        /// Request id.
        req: u32,
    },
    /// Tag 17 (to the presenter). Creates a reading stream: positions of `atoms` of `complex`
    /// as the presenter's user changes them, sent on an uplink.
    CreateReadingStream {
        /// Request id.
        req: u32,
        /// The instance's id for the stream.
        stream: u32,
        /// The complex.
        complex: ComplexId,
        /// Its atoms (empty: all).
        atoms: Vec<u32>,
    },
    /// Tag 18 (to the presenter). Ends a reading stream.
    DestroyReadingStream {
        /// The instance's id for the stream.
        stream: u32,
    },
}

/// Severity of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Information.
    Info,
    /// Something succeeded.
    Success,
    /// A warning.
    Warning,
    /// An error.
    Error,
}

fn level_tag(l: Level) -> u8 {
    match l {
        Level::Info => 0,
        Level::Success => 1,
        Level::Warning => 2,
        Level::Error => 3,
    }
}

fn put_ids(w: &mut Writer, ids: &[ComplexId]) {
    w.list(ids, |w, id| w.u32(id.0));
}

fn get_ids(r: &mut Reader<'_>) -> Result<Vec<ComplexId>, DecodeError> {
    r.list("complex ids", MAX_IDS, |r| Ok(ComplexId(r.u32("complex id")?)))
}

fn put_vec3(w: &mut Writer, v: Vec3) {
    w.f32(v.x);
    w.f32(v.y);
    w.f32(v.z);
}

fn get_vec3(r: &mut Reader<'_>, what: &'static str) -> Result<Vec3, DecodeError> {
    Ok(Vec3::new(r.f32(what)?, r.f32(what)?, r.f32(what)?))
}

fn put_info(w: &mut Writer, c: &ComplexInfo) {
    w.u32(c.id.0);
    w.str(&c.name);
    for n in [c.atoms, c.residues, c.chains, c.bonds, c.models, c.current_model] {
        w.u32(n);
    }
    put_vec3(w, c.position);
    for v in c.rotation.to_array() {
        w.f32(v);
    }
    w.bool(c.visible);
    w.bool(c.locked);
}

fn get_info(r: &mut Reader<'_>) -> Result<ComplexInfo, DecodeError> {
    let id = ComplexId(r.u32("complex id")?);
    let name = r.str("complex name", MAX_TEXT)?;
    let mut n = [0u32; 6];
    for v in &mut n {
        *v = r.u32("complex count")?;
    }
    let position = get_vec3(r, "complex position")?;
    let q = [r.f32("rotation")?, r.f32("rotation")?, r.f32("rotation")?, r.f32("rotation")?];
    let rotation = Quat::from_array(q);
    if !(0.5..=2.0).contains(&rotation.length_squared()) {
        return Err(DecodeError::Invalid { what: "rotation", why: "not a unit quaternion" });
    }
    Ok(ComplexInfo {
        id,
        name,
        atoms: n[0],
        residues: n[1],
        chains: n[2],
        bonds: n[3],
        models: n[4],
        current_model: n[5],
        position,
        rotation,
        visible: r.bool("visible")?,
        locked: r.bool("locked")?,
    })
}

fn put_opt<T>(w: &mut Writer, v: Option<&T>, f: impl FnOnce(&mut Writer, &T)) {
    match v {
        None => w.u8(0),
        Some(v) => {
            w.u8(1);
            f(w, v);
        }
    }
}

fn get_opt<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match r.u8(what)? {
        0 => Ok(None),
        1 => Ok(Some(f(r)?)),
        tag => Err(DecodeError::UnknownTag { what, tag }),
    }
}

fn put_error(w: &mut Writer, e: &ApiError) {
    match e {
        ApiError::UnknownComplex(c) => {
            w.u8(1);
            w.u32(c.0);
        }
        ApiError::UnknownAtom(c, a) => {
            w.u8(2);
            w.u32(c.0);
            w.u32(*a);
        }
        ApiError::Unsupported(why) => {
            w.u8(3);
            w.str(why);
        }
    }
}

fn get_error(r: &mut Reader<'_>) -> Result<ApiError, DecodeError> {
    match r.u8("api error")? {
        1 => Ok(ApiError::UnknownComplex(ComplexId(r.u32("complex id")?))),
        2 => Ok(ApiError::UnknownAtom(ComplexId(r.u32("complex id")?), r.u32("atom")?)),
        3 => Ok(ApiError::Unsupported(r.str("reason", MAX_TEXT)?)),
        tag => Err(DecodeError::UnknownTag { what: "api error", tag }),
    }
}

impl ToPlugin {
    /// Encodes the body.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Run => w.u8(1),
            Self::AdvancedSettings => w.u8(2),
            Self::Integration { req, name, args } => {
                w.u8(3);
                w.u32(*req);
                w.str(name);
                w.bytes(args);
            }
            Self::Menu(e) => e.encode_into(&mut w),
            Self::ComplexList { req, complexes } => {
                w.u8(10);
                w.u32(*req);
                w.list(complexes, put_info);
            }
            Self::Complexes { req, complexes } => {
                w.u8(11);
                w.u32(*req);
                w.list(complexes, |w, c| put_opt(w, c.as_ref(), put_info));
            }
            Self::DeepComplexes { req, channels } => {
                w.u8(12);
                w.u32(*req);
                w.list(channels, |w, (id, ch)| {
                    w.u32(id.0);
                    put_opt(w, ch.as_ref(), |w, c| w.u32(*c));
                });
            }
            Self::ComplexIds { req, ids } => {
                w.u8(13);
                w.u32(*req);
                put_ids(&mut w, ids);
            }
            Self::ComplexesAdded { ids } => {
                w.u8(14);
                put_ids(&mut w, ids);
            }
            Self::ComplexesRemoved { ids } => {
                w.u8(15);
                put_ids(&mut w, ids);
            }
            Self::ComplexesUpdated { ids, by } => {
                w.u8(16);
                put_ids(&mut w, ids);
                w.u32(by.0);
            }
            Self::SelectionChanged { complex, selected } => {
                w.u8(17);
                w.u32(complex.0);
                w.u32(*selected);
            }
            Self::PresenterInfo { req, user, name, client } => {
                w.u8(18);
                w.u32(*req);
                w.u32(user.0);
                w.str(name);
                w.str(client);
            }
            Self::ReadingStreamCreated { req, channel } => {
                w.u8(19);
                w.u32(*req);
                w.u32(*channel);
            }
            Self::ReadingStreamEnded { stream, reason } => {
                w.u8(20);
                w.u32(*stream);
                w.str(reason);
            }
            Self::RequestFailed { req, error } => {
                w.u8(21);
                w.u32(*req);
                put_error(&mut w, error);
            }
        }
        Bytes::from(w.buf)
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// Unknown tags, truncation, limits, trailing bytes.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let m = match r.u8("plugin api tag")? {
            1 => Self::Run,
            2 => Self::AdvancedSettings,
            3 => Self::Integration {
                req: r.u32("req")?,
                name: r.name("integration", MAX_NAME)?,
                args: r.bytes("args", MAX_BODY)?,
            },
            tag @ UPDATE_TAG_FIRST..=MENU_TAG_LAST => Self::Menu(MenuEvent::decode_fields(tag, &mut r)?),
            10 => Self::ComplexList { req: r.u32("req")?, complexes: r.list("complexes", MAX_IDS, get_info)? },
            11 => Self::Complexes {
                req: r.u32("req")?,
                complexes: r.list("complexes", MAX_IDS, |r| get_opt(r, "complex", get_info))?,
            },
            12 => Self::DeepComplexes {
                req: r.u32("req")?,
                channels: r.list("complexes", MAX_IDS, |r| {
                    Ok((ComplexId(r.u32("complex id")?), get_opt(r, "channel", |r| r.u32("channel"))?))
                })?,
            },
            13 => Self::ComplexIds { req: r.u32("req")?, ids: get_ids(&mut r)? },
            14 => Self::ComplexesAdded { ids: get_ids(&mut r)? },
            15 => Self::ComplexesRemoved { ids: get_ids(&mut r)? },
            16 => Self::ComplexesUpdated { ids: get_ids(&mut r)?, by: InstanceId(r.u32("instance")?) },
            17 => Self::SelectionChanged { complex: ComplexId(r.u32("complex id")?), selected: r.u32("selected")? },
            18 => Self::PresenterInfo {
                req: r.u32("req")?,
                user: UserId(r.u32("user")?),
                name: r.str("name", MAX_NAME)?,
                client: r.str("client", MAX_NAME)?,
            },
            19 => Self::ReadingStreamCreated { req: r.u32("req")?, channel: r.u32("channel")? },
            20 => Self::ReadingStreamEnded { stream: r.u32("stream")?, reason: r.str("reason", MAX_TEXT)? },
            21 => Self::RequestFailed { req: r.u32("req")?, error: get_error(&mut r)? },
            tag => return Err(DecodeError::UnknownTag { what: "plugin api message", tag }),
        };
        r.finish()?;
        Ok(m)
    }
}

impl ToSession {
    /// Encodes the body.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::Notify { level, text } => {
                w.u8(1);
                w.u8(level_tag(*level));
                w.str(text);
            }
            Self::IntegrationResult { req, result } => {
                w.u8(2);
                w.u32(*req);
                match result {
                    Ok(b) => {
                        w.u8(0);
                        w.bytes(b);
                    }
                    Err(e) => {
                        w.u8(1);
                        w.str(e);
                    }
                }
            }
            Self::Menu(u) => u.encode_into(&mut w),
            Self::ComplexListRequest { req } => {
                w.u8(10);
                w.u32(*req);
            }
            Self::ComplexesRequest { req, ids, deep } => {
                w.u8(11);
                w.u32(*req);
                put_ids(&mut w, ids);
                w.bool(*deep);
            }
            Self::ReserveComplexIds { req, count } => {
                w.u8(12);
                w.u32(*req);
                w.u32(*count);
            }
            Self::RemoveComplexes { ids } => {
                w.u8(13);
                put_ids(&mut w, ids);
            }
            Self::Focus { ids, zoom } => {
                w.u8(14);
                put_ids(&mut w, ids);
                w.bool(*zoom);
            }
            Self::OpenUrl { url } => {
                w.u8(15);
                w.str(url);
            }
            Self::PresenterInfoRequest { req } => {
                w.u8(16);
                w.u32(*req);
            }
            Self::CreateReadingStream { req, stream, complex, atoms } => {
                w.u8(17);
                w.u32(*req);
                w.u32(*stream);
                w.u32(complex.0);
                w.list(atoms, |w, a| w.u32(*a));
            }
            Self::DestroyReadingStream { stream } => {
                w.u8(18);
                w.u32(*stream);
            }
        }
        Bytes::from(w.buf)
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// Unknown tags, truncation, limits, trailing bytes.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let m = match r.u8("session api tag")? {
            1 => {
                let level = match r.u8("level")? {
                    0 => Level::Info,
                    1 => Level::Success,
                    2 => Level::Warning,
                    3 => Level::Error,
                    tag => return Err(DecodeError::UnknownTag { what: "level", tag }),
                };
                Self::Notify { level, text: r.str("text", MAX_TEXT)? }
            }
            2 => {
                let req = r.u32("req")?;
                let result = match r.u8("result")? {
                    0 => Ok(r.bytes("result", MAX_BODY)?),
                    1 => Err(r.str("error", MAX_TEXT)?),
                    tag => return Err(DecodeError::UnknownTag { what: "result", tag }),
                };
                Self::IntegrationResult { req, result }
            }
            tag @ UPDATE_TAG_FIRST..=MENU_TAG_LAST => Self::Menu(MenuUpdate::decode_fields(tag, &mut r)?),
            10 => Self::ComplexListRequest { req: r.u32("req")? },
            11 => Self::ComplexesRequest { req: r.u32("req")?, ids: get_ids(&mut r)?, deep: r.bool("deep")? },
            12 => {
                let req = r.u32("req")?;
                let count = r.u32("count")?;
                if !(1..=4096).contains(&count) {
                    return Err(DecodeError::Invalid { what: "count", why: "not between 1 and 4096" });
                }
                Self::ReserveComplexIds { req, count }
            }
            13 => Self::RemoveComplexes { ids: get_ids(&mut r)? },
            14 => Self::Focus { ids: get_ids(&mut r)?, zoom: r.bool("zoom")? },
            15 => Self::OpenUrl { url: r.name("url", MAX_URL)? },
            16 => Self::PresenterInfoRequest { req: r.u32("req")? },
            17 => Self::CreateReadingStream {
                req: r.u32("req")?,
                stream: r.u32("stream")?,
                complex: ComplexId(r.u32("complex id")?),
                atoms: r.list("atoms", MAX_IDS, |r| r.u32("atom"))?,
            },
            18 => Self::DestroyReadingStream { stream: r.u32("stream")? },
            tag => return Err(DecodeError::UnknownTag { what: "session api message", tag }),
        };
        r.finish()?;
        Ok(m)
    }
}

/// The keyframe a complex was last rebuilt from (a keyframe, or a topology delta): users'
/// edits of a complex hold for one epoch, until its publisher sends it anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Epoch {
    /// The instance that published it (kept after the instance stopped).
    pub instance: InstanceId,
    /// The sequence number of that frame on the complex's stream.
    pub seq: u32,
}

/// Users' edits of one complex in one [`Epoch`], whole: the selection they made (if they made
/// one) and the atoms they moved. Each message carries the whole state, so applying one is
/// idempotent and the last one wins, for users present and late joiners alike.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ComplexEdits {
    /// The complex.
    pub complex: ComplexId,
    /// The frame the edits apply to.
    pub epoch: Epoch,
    /// The complex's selection as users set it: ascending, disjoint `(first atom, count)`
    /// ranges; `None` while users left the publisher's selection alone.
    pub selected: Option<Vec<(u32, u32)>>,
    /// Atoms moved by users, ascending, each once, with their positions.
    pub moved: Vec<(u32, Vec3)>,
}

impl ComplexEdits {
    /// No edits of `complex` in `epoch`.
    #[must_use]
    pub fn new(complex: ComplexId, epoch: Epoch) -> Self {
        Self { complex, epoch, selected: None, moved: Vec::new() }
    }

    /// Whether nothing is edited.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.selected.is_none() && self.moved.is_empty()
    }
}

/// What a session client tells the other users of its room: the body of `ToUsers` /
/// `FromUser`. The relay keeps these in room slots for late joiners ([`RoomEdit::slot`]).
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEdit {
    /// Tag 1. The presenter gave out complex ids up to `up_to`: no one gives them again, even
    /// after a hand-over and even if the complexes never arrive or were removed.
    IdsReserved {
        /// The highest id given.
        up_to: u32,
    },
    /// Tag 2. Users' edits of a complex.
    Complex(ComplexEdits),
}

/// Room slot of [`RoomEdit::IdsReserved`]: `'I'` in the top byte.
pub const IDS_SLOT: u64 = 0x49 << 56;
/// Room slots of [`RoomEdit::Complex`]: `'E'` in the top byte, the complex id below.
pub const EDITS_SLOT: u64 = 0x45 << 56;

fn get_ranges(r: &mut Reader<'_>) -> Result<Vec<(u32, u32)>, DecodeError> {
    let ranges = r.list("selection ranges", MAX_IDS, |r| Ok((r.u32("first atom")?, r.u32("atoms")?)))?;
    let mut end = 0u64;
    for (i, &(first, n)) in ranges.iter().enumerate() {
        if n == 0 || (i > 0 && u64::from(first) <= end) {
            return Err(DecodeError::Invalid {
                what: "selection ranges",
                why: "not ascending, disjoint and non-empty",
            });
        }
        end = u64::from(first) + u64::from(n) - 1;
        if end > u64::from(u32::MAX) {
            return Err(DecodeError::Invalid { what: "selection ranges", why: "past the largest atom index" });
        }
    }
    Ok(ranges)
}

impl RoomEdit {
    /// The room slot it is kept in for late joiners.
    #[must_use]
    pub fn slot(&self) -> u64 {
        match self {
            Self::IdsReserved { .. } => IDS_SLOT,
            Self::Complex(e) => EDITS_SLOT | u64::from(e.complex.0),
        }
    }

    /// Encodes the body.
    #[must_use]
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        match self {
            Self::IdsReserved { up_to } => {
                w.u8(1);
                w.u32(*up_to);
            }
            Self::Complex(e) => {
                w.u8(2);
                w.u32(e.complex.0);
                w.u32(e.epoch.instance.0);
                w.u32(e.epoch.seq);
                put_opt(&mut w, e.selected.as_ref(), |w, ranges| {
                    w.list(ranges, |w, (first, n)| {
                        w.u32(*first);
                        w.u32(*n);
                    });
                });
                w.list(&e.moved, |w, (atom, p)| {
                    w.u32(*atom);
                    put_vec3(w, *p);
                });
            }
        }
        Bytes::from(w.buf)
    }

    /// Decodes a body.
    ///
    /// # Errors
    /// Unknown tags, truncation, limits, trailing bytes, selection ranges that are not
    /// ascending and disjoint, moved atoms not ascending, non-finite positions.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let m = match r.u8("room edit tag")? {
            1 => Self::IdsReserved { up_to: r.u32("up to")? },
            2 => {
                let complex = ComplexId(r.u32("complex id")?);
                let epoch = Epoch { instance: InstanceId(r.u32("instance")?), seq: r.u32("seq")? };
                let selected = get_opt(&mut r, "selection", get_ranges)?;
                let moved = r.list("moved atoms", MAX_IDS, |r| Ok((r.u32("atom")?, get_vec3(r, "position")?)))?;
                if moved.windows(2).any(|w| w[0].0 >= w[1].0) {
                    return Err(DecodeError::Invalid { what: "moved atoms", why: "not ascending" });
                }
                Self::Complex(ComplexEdits { complex, epoch, selected, moved })
            }
            tag => return Err(DecodeError::UnknownTag { what: "room edit", tag }),
        };
        r.finish()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_edits_round_trip_and_hostile_ones_fail() {
        let epoch = Epoch { instance: InstanceId(3), seq: 17 };
        let edits = [
            RoomEdit::IdsReserved { up_to: 42 },
            RoomEdit::Complex(ComplexEdits::new(ComplexId(2), epoch)),
            RoomEdit::Complex(ComplexEdits {
                complex: ComplexId(2),
                epoch,
                selected: Some(vec![(0, 3), (10, 1), (u32::MAX, 1)]),
                moved: vec![(1, Vec3::new(1.0, -2.0, 3.5)), (7, Vec3::ZERO)],
            }),
        ];
        for m in edits {
            let b = m.encode();
            assert_eq!(RoomEdit::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(RoomEdit::decode(&b.slice(..cut)).is_err());
            }
        }
        let bad = |selected: Option<Vec<(u32, u32)>>, moved: Vec<(u32, Vec3)>| {
            RoomEdit::Complex(ComplexEdits { complex: ComplexId(1), epoch, selected, moved }).encode()
        };
        for b in [
            bad(Some(vec![(5, 2), (6, 1)]), vec![]),
            bad(Some(vec![(5, 0)]), vec![]),
            bad(Some(vec![(u32::MAX, 2)]), vec![]),
            bad(None, vec![(3, Vec3::ZERO), (3, Vec3::ONE)]),
            bad(None, vec![(0, Vec3::new(f32::NAN, 0.0, 0.0))]),
        ] {
            assert!(RoomEdit::decode(&b).is_err());
        }
        assert_ne!(
            RoomEdit::IdsReserved { up_to: 1 }.slot(),
            RoomEdit::Complex(ComplexEdits::new(ComplexId(0), epoch)).slot()
        );
    }

    #[test]
    fn bodies_round_trip_and_truncations_fail() {
        let to_plugin = [
            ToPlugin::Run,
            ToPlugin::AdvancedSettings,
            ToPlugin::Integration { req: 9, name: "minimization.start".into(), args: Bytes::from_static(b"steps=10") },
        ];
        for m in to_plugin {
            let b = m.encode();
            assert_eq!(ToPlugin::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(ToPlugin::decode(&b.slice(..cut)).is_err());
            }
        }
        let to_session = [
            ToSession::Notify { level: Level::Warning, text: "careful".into() },
            ToSession::Notify { level: Level::Success, text: String::new() },
            ToSession::IntegrationResult { req: 1, result: Ok(Bytes::from_static(b"done")) },
            ToSession::IntegrationResult { req: 2, result: Err("no such hook".into()) },
        ];
        for m in to_session {
            let b = m.encode();
            assert_eq!(ToSession::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(ToSession::decode(&b.slice(..cut)).is_err());
            }
        }
        assert!(ToPlugin::decode(&Bytes::from_static(&[9])).is_err());
        assert!(ToSession::decode(&Bytes::from_static(&[1, 4, 0])).is_err());
    }

    fn info(id: u32) -> ComplexInfo {
        ComplexInfo {
            id: ComplexId(id),
            name: format!("c{id}"),
            atoms: 1890,
            residues: 198,
            chains: 2,
            bonds: 1900,
            models: 1,
            current_model: 0,
            position: Vec3::new(1.0, -2.5, 3.0),
            rotation: Quat::from_rotation_z(0.5),
            visible: true,
            locked: false,
        }
    }

    #[test]
    fn workspace_stream_and_service_bodies_round_trip_and_truncations_fail() {
        let ids = vec![ComplexId(1), ComplexId(70_000)];
        let to_plugin = [
            ToPlugin::ComplexList { req: 1, complexes: vec![info(1), info(2)] },
            ToPlugin::Complexes { req: 2, complexes: vec![Some(info(3)), None] },
            ToPlugin::DeepComplexes { req: 3, channels: vec![(ComplexId(1), Some(7)), (ComplexId(9), None)] },
            ToPlugin::ComplexIds { req: 4, ids: ids.clone() },
            ToPlugin::ComplexesAdded { ids: ids.clone() },
            ToPlugin::ComplexesRemoved { ids: ids.clone() },
            ToPlugin::ComplexesUpdated { ids: vec![], by: InstanceId(4) },
            ToPlugin::SelectionChanged { complex: ComplexId(2), selected: 12 },
            ToPlugin::PresenterInfo { req: 5, user: UserId(3), name: "ada".into(), client: "molstream".into() },
            ToPlugin::ReadingStreamCreated { req: 6, channel: 4 },
            ToPlugin::ReadingStreamEnded { stream: 2, reason: "complex removed".into() },
            ToPlugin::RequestFailed { req: 7, error: ApiError::UnknownComplex(ComplexId(5)) },
            ToPlugin::RequestFailed { req: 8, error: ApiError::UnknownAtom(ComplexId(5), 9999) },
            ToPlugin::RequestFailed { req: 9, error: ApiError::Unsupported("no".into()) },
        ];
        for m in to_plugin {
            let b = m.encode();
            assert_eq!(ToPlugin::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(ToPlugin::decode(&b.slice(..cut)).is_err(), "{m:?} cut at {cut}");
            }
        }
        let to_session = [
            ToSession::ComplexListRequest { req: 1 },
            ToSession::ComplexesRequest { req: 2, ids: ids.clone(), deep: true },
            ToSession::ReserveComplexIds { req: 3, count: 2 },
            ToSession::RemoveComplexes { ids: ids.clone() },
            ToSession::Focus { ids: ids.clone(), zoom: false },
            ToSession::OpenUrl { url: "https://www.rcsb.org/structure/1HVR".into() },
            ToSession::PresenterInfoRequest { req: 4 },
            ToSession::CreateReadingStream { req: 5, stream: 1, complex: ComplexId(1), atoms: vec![0, 5, 9] },
            ToSession::DestroyReadingStream { stream: 1 },
        ];
        for m in to_session {
            let b = m.encode();
            assert_eq!(ToSession::decode(&b).unwrap(), m);
            for cut in 0..b.len() {
                assert!(ToSession::decode(&b.slice(..cut)).is_err(), "{m:?} cut at {cut}");
            }
        }
        // Hostile values are typed errors: a NaN position, a non-unit rotation, a zero or huge
        // id reservation, an empty URL, an oversized id list.
        let mut nan = info(1);
        nan.position.x = f32::NAN;
        let b = ToPlugin::ComplexList { req: 1, complexes: vec![nan] }.encode();
        assert!(matches!(ToPlugin::decode(&b), Err(DecodeError::Invalid { what: "complex position", .. })));
        let mut skew = info(1);
        skew.rotation = Quat::from_xyzw(0.0, 0.0, 0.0, 9.0);
        let b = ToPlugin::ComplexList { req: 1, complexes: vec![skew] }.encode();
        assert!(matches!(ToPlugin::decode(&b), Err(DecodeError::Invalid { what: "rotation", .. })));
        for count in [0, 4097] {
            let b = ToSession::ReserveComplexIds { req: 1, count }.encode();
            assert!(matches!(ToSession::decode(&b), Err(DecodeError::Invalid { what: "count", .. })));
        }
        assert!(ToSession::decode(&ToSession::OpenUrl { url: String::new() }.encode()).is_err());
        let mut w = Writer::new();
        w.u8(13);
        w.varint(1 << 40);
        assert!(matches!(ToSession::decode(&Bytes::from(w.buf)), Err(DecodeError::TooLong { .. })));
    }
}

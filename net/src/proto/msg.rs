//! Control messages: [`PeerMsg`] (plugin host or session client → relay), [`RelayMsg`]
//! (relay → peer) and [`StreamHead`], the preamble of every unidirectional stream.
//!
//! Each message is a tag byte followed by its fields in declaration order, encoded with the
//! primitives of [`super::wire`]. Tags 1–15 are shared by both roles, 16–31 belong to plugin
//! hosts, 32–47 to session clients. `Hello` (tag 1, version first) keeps its layout in every
//! future version so that any relay can read the version and refuse politely.
//!
//! Bodies (`body` fields) are opaque to the relay: they carry the plugin API messages between
//! an instance and the users of its room, and the relay only routes them.

use bytes::Bytes;

use super::wire::{DecodeError, Reader, Writer};
use super::{
    InstanceId, MAX_BODY, MAX_INTEGRATIONS, MAX_KEY, MAX_LIST, MAX_NAME, MAX_TAGS, MAX_TEXT, PluginId, UserId,
};

/// Who is connecting, sent in `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A plugin host: serves plugin instances. Must present the relay's plugin key.
    PluginHost {
        /// The plugin key (compared in constant time by the relay).
        key: String,
        /// The host's name; with a plugin's name it forms the plugin's identity.
        host: String,
    },
    /// A session client: one user of one room.
    SessionClient {
        /// Room to join (created on first join).
        room: String,
        /// The user's display name.
        user: String,
    },
}

/// What a plugin declares when it registers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginMeta {
    /// Name shown to users; with the host's name, the plugin's identity.
    pub name: String,
    /// One-paragraph description.
    pub description: String,
    /// Category shown in plugin lists.
    pub category: String,
    /// Search tags.
    pub tags: Vec<String>,
    /// Whether the plugin has an advanced-settings action.
    pub has_advanced_settings: bool,
    /// Integration hooks the plugin answers (e.g. `minimization.start`).
    pub integrations: Vec<String>,
}

/// A registered plugin as sessions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Relay-assigned id.
    pub id: PluginId,
    /// The host serving it.
    pub host: String,
    /// What it declared.
    pub meta: PluginMeta,
}

/// A user of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Relay-assigned id.
    pub id: UserId,
    /// Display name.
    pub name: String,
}

/// A running instance as the users of its room see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceInfo {
    /// Instance id.
    pub id: InstanceId,
    /// The plugin it runs.
    pub plugin: PluginId,
}

/// Whether the relay keeps a room-wide message for users who join later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retain {
    /// Forward only.
    No,
    /// Forward and keep as the state of slot `key` of this instance (replacing the previous).
    Keep(u64),
    /// Forward and forget slot `key` (e.g. a destroyed shape).
    Forget(u64),
}

/// Who an instance message is delivered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every user of the room.
    Room,
    /// The presenter only (workspace requests: the presenter's client owns the workspace).
    Presenter,
    /// One user (a reply to that user's request).
    Direct,
}

/// Why an instance stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A user of the room deactivated it.
    Deactivated {
        /// Who.
        by: UserId,
    },
    /// The presenter left the room.
    PresenterLeft,
    /// The last user left the room.
    RoomEmpty,
    /// The plugin disconnected, unregistered, or re-registered from a new connection.
    PluginStopped,
    /// The instance failed (a panic or error in the plugin).
    Crashed {
        /// What the plugin host reported.
        message: String,
    },
    /// The instance ended by itself.
    Ended,
}

/// Messages a peer sends to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerMsg {
    /// Tag 1. The first message on a connection, and only there.
    Hello {
        /// Protocol version the peer speaks.
        version: u16,
        /// Plugin host or session client.
        role: Role,
    },
    /// Tag 2. Answered with `Pong` carrying the same nonce.
    Ping {
        /// Echoed.
        nonce: u64,
    },
    /// Tag 16 (host). Registers a plugin; answered with `Registered` or `RegisterFailed`.
    RegisterPlugin {
        /// Host-chosen handle echoed in the answer.
        local: u32,
        /// The plugin's metadata.
        meta: PluginMeta,
    },
    /// Tag 17 (host). Withdraws a plugin; its instances stop.
    UnregisterPlugin {
        /// The plugin.
        plugin: PluginId,
    },
    /// Tag 18 (host). An instance ended by itself (`error` empty) or failed.
    InstanceEnded {
        /// The instance.
        instance: InstanceId,
        /// The failure, if it failed.
        error: Option<String>,
    },
    /// Tag 19 (host). A message to every user of the instance's room.
    ToRoom {
        /// The sending instance.
        instance: InstanceId,
        /// Whether late joiners get it.
        retain: Retain,
        /// Opaque body.
        body: Bytes,
    },
    /// Tag 20 (host). A request to the room's presenter (workspace owner).
    ToPresenter {
        /// The sending instance.
        instance: InstanceId,
        /// Opaque body.
        body: Bytes,
    },
    /// Tag 21 (host). A message to one user of the instance's room.
    ToUser {
        /// The sending instance.
        instance: InstanceId,
        /// The user.
        user: UserId,
        /// Opaque body.
        body: Bytes,
    },
    /// Tag 22 (host). Drops the frames the relay keeps for late joiners on these channels:
    /// the instance's own channels, and the room-wide channels (≥ [`super::ROOM_CHANNELS`], one
    /// per complex) of every instance of its room. Sent when complexes are removed.
    ForgetChannels {
        /// The sending instance.
        instance: InstanceId,
        /// The channels.
        channels: Vec<u32>,
    },
    /// Tag 32 (client). Starts the plugin in the client's room (or returns the running
    /// instance); answered with `Activated` or `RequestFailed`.
    Activate {
        /// Client-chosen request id echoed in the answer.
        req: u32,
        /// The plugin.
        plugin: PluginId,
    },
    /// Tag 33 (client). Stops an instance of the client's room.
    Deactivate {
        /// Client-chosen request id (`RequestFailed` on error).
        req: u32,
        /// The instance.
        instance: InstanceId,
    },
    /// Tag 34 (client). A message to an instance of the client's room.
    ToInstance {
        /// The instance.
        instance: InstanceId,
        /// Opaque body.
        body: Bytes,
    },
    /// Tag 35 (client). The client lost sync on a frame channel and needs a keyframe.
    KeyframeWanted {
        /// The instance streaming.
        instance: InstanceId,
        /// Its channel.
        channel: u32,
    },
    /// Tag 36 (client). A message to every other user of the client's room (its user's edits
    /// of the room's workspace: selections, moved atoms; complex ids given as presenter), kept
    /// for late joiners as `retain` says, in slots of the room.
    ToUsers {
        /// Whether (and in which room slot) the relay keeps it for late joiners.
        retain: Retain,
        /// Opaque body.
        body: Bytes,
    },
}

/// Messages the relay sends to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayMsg {
    /// Tag 1. The handshake succeeded.
    Welcome {
        /// Protocol version the relay speaks.
        version: u16,
        /// Relay software name and version.
        server: String,
        /// The user id given to a session client (absent for plugin hosts).
        user: Option<UserId>,
    },
    /// Tag 2. The handshake failed; the relay closes the connection after sending it.
    Refused {
        /// Human-readable reason (e.g. `wrong plugin key`).
        reason: String,
    },
    /// Tag 3. Answer to `Ping`.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// Tag 16 (host). A plugin was registered.
    Registered {
        /// The host's handle from `RegisterPlugin`.
        local: u32,
        /// The relay's id for it.
        plugin: PluginId,
    },
    /// Tag 17 (host). A registration was refused.
    RegisterFailed {
        /// The host's handle from `RegisterPlugin`.
        local: u32,
        /// Why.
        reason: String,
    },
    /// Tag 18 (host). Start an instance of `plugin` for `room`.
    StartInstance {
        /// The new instance.
        instance: InstanceId,
        /// The plugin to run.
        plugin: PluginId,
        /// The room it serves.
        room: String,
        /// The room's presenter.
        presenter: UserId,
    },
    /// Tag 19 (host). Stop an instance.
    StopInstance {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: StopReason,
    },
    /// Tag 20 (host). A user's message to an instance.
    InstanceInput {
        /// The instance.
        instance: InstanceId,
        /// The sending user (stamped by the relay).
        from: UserId,
        /// Opaque body.
        body: Bytes,
    },
    /// Tag 21 (host). The presenter of an instance's room changed.
    InstancePresenter {
        /// The instance.
        instance: InstanceId,
        /// The new presenter.
        presenter: UserId,
    },
    /// Tag 22 (host). Send a keyframe on this channel at the next update.
    SendKeyframe {
        /// The instance.
        instance: InstanceId,
        /// Its channel.
        channel: u32,
    },
    /// Tag 32 (client). The room as it is when the client joins.
    RoomState {
        /// Room name.
        room: String,
        /// This client's user id.
        you: UserId,
        /// The presenter.
        presenter: UserId,
        /// Every user, in join order.
        users: Vec<User>,
        /// Running instances.
        instances: Vec<InstanceInfo>,
    },
    /// Tag 33 (client). A user joined the room.
    UserJoined {
        /// The user.
        user: User,
    },
    /// Tag 34 (client). A user left the room.
    UserLeft {
        /// The user.
        user: UserId,
    },
    /// Tag 35 (client). The presenter changed.
    PresenterChanged {
        /// The new presenter.
        presenter: UserId,
    },
    /// Tag 36 (client). The plugins the session may use (sent on join and on every change).
    Plugins {
        /// Every registered plugin.
        plugins: Vec<PluginInfo>,
    },
    /// Tag 37 (client). An instance started in the room.
    InstanceStarted {
        /// The instance.
        instance: InstanceInfo,
    },
    /// Tag 38 (client). An instance of the room stopped.
    InstanceStopped {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: StopReason,
    },
    /// Tag 39 (client). A message from an instance of the room.
    FromInstance {
        /// The instance.
        instance: InstanceId,
        /// To whom it was addressed.
        scope: Scope,
        /// Opaque body.
        body: Bytes,
    },
    /// Tag 40 (client). Answer to `Activate`.
    Activated {
        /// The request.
        req: u32,
        /// The instance (new or already running).
        instance: InstanceId,
    },
    /// Tag 41 (client). A request could not be served.
    RequestFailed {
        /// The request.
        req: u32,
        /// Why.
        reason: String,
    },
    /// Tag 42 (client). The instance's host fell behind on this client's uplink and deltas
    /// were dropped: send a keyframe on it next.
    UplinkKeyframe {
        /// The instance the uplink goes to.
        instance: InstanceId,
        /// The uplink's channel.
        channel: u32,
    },
    /// Tag 43 (client). Another user's `ToUsers` (live, or kept and replayed on joining).
    FromUser {
        /// Who sent it (stamped by the relay).
        user: UserId,
        /// Opaque body.
        body: Bytes,
    },
}

/// The first framed message on every unidirectional stream, telling what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamHead {
    /// Tag 1. Codec frames (32-byte header + payload each, see the engine's `codec`) of one
    /// channel of an instance, until the stream ends. Sent by a plugin host (instance → relay)
    /// and by the relay (relay → each user of the room).
    Frames {
        /// The instance.
        instance: InstanceId,
        /// The channel: the instance's own numbering of its frame streams.
        channel: u32,
    },
    /// Tag 2. Codec frames from a session client to an instance of its room (an uplink: a
    /// reading stream, or complexes the presenter sends in answer to a request), until the
    /// stream ends. Sent by session clients only.
    Uplink {
        /// The instance.
        instance: InstanceId,
        /// The client's numbering of its uplinks to this instance.
        channel: u32,
    },
    /// Tag 3. An uplink as the relay forwards it to the instance's plugin host, with the
    /// sending user stamped. Sent by the relay only.
    FromUser {
        /// The instance.
        instance: InstanceId,
        /// The user who opened the uplink.
        user: UserId,
        /// The user's channel number.
        channel: u32,
    },
}

fn put_meta(w: &mut Writer, m: &PluginMeta) {
    w.str(&m.name);
    w.str(&m.description);
    w.str(&m.category);
    w.list(&m.tags, |w, t| w.str(t));
    w.bool(m.has_advanced_settings);
    w.list(&m.integrations, |w, t| w.str(t));
}

fn get_meta(r: &mut Reader<'_>) -> Result<PluginMeta, DecodeError> {
    Ok(PluginMeta {
        name: r.name("plugin name", MAX_NAME)?,
        description: r.str("description", MAX_TEXT)?,
        category: r.str("category", MAX_NAME)?,
        tags: r.list("tags", MAX_TAGS, |r| r.name("tag", MAX_NAME))?,
        has_advanced_settings: r.bool("has_advanced_settings")?,
        integrations: r.list("integrations", MAX_INTEGRATIONS, |r| r.name("integration", MAX_NAME))?,
    })
}

fn put_retain(w: &mut Writer, v: Retain) {
    match v {
        Retain::No => w.u8(0),
        Retain::Keep(k) => {
            w.u8(1);
            w.varint(k);
        }
        Retain::Forget(k) => {
            w.u8(2);
            w.varint(k);
        }
    }
}

fn get_retain(r: &mut Reader<'_>) -> Result<Retain, DecodeError> {
    match r.u8("retain")? {
        0 => Ok(Retain::No),
        1 => Ok(Retain::Keep(r.varint("retain key")?)),
        2 => Ok(Retain::Forget(r.varint("retain key")?)),
        tag => Err(DecodeError::UnknownTag { what: "retain", tag }),
    }
}

fn put_scope(w: &mut Writer, v: Scope) {
    w.u8(match v {
        Scope::Room => 0,
        Scope::Presenter => 1,
        Scope::Direct => 2,
    });
}

fn get_scope(r: &mut Reader<'_>) -> Result<Scope, DecodeError> {
    match r.u8("scope")? {
        0 => Ok(Scope::Room),
        1 => Ok(Scope::Presenter),
        2 => Ok(Scope::Direct),
        tag => Err(DecodeError::UnknownTag { what: "scope", tag }),
    }
}

fn put_reason(w: &mut Writer, v: &StopReason) {
    match v {
        StopReason::Deactivated { by } => {
            w.u8(0);
            w.u32(by.0);
        }
        StopReason::PresenterLeft => w.u8(1),
        StopReason::RoomEmpty => w.u8(2),
        StopReason::PluginStopped => w.u8(3),
        StopReason::Crashed { message } => {
            w.u8(4);
            w.str(message);
        }
        StopReason::Ended => w.u8(5),
    }
}

fn get_reason(r: &mut Reader<'_>) -> Result<StopReason, DecodeError> {
    match r.u8("stop reason")? {
        0 => Ok(StopReason::Deactivated { by: UserId(r.u32("user")?) }),
        1 => Ok(StopReason::PresenterLeft),
        2 => Ok(StopReason::RoomEmpty),
        3 => Ok(StopReason::PluginStopped),
        4 => Ok(StopReason::Crashed { message: r.str("crash message", MAX_TEXT)? }),
        5 => Ok(StopReason::Ended),
        tag => Err(DecodeError::UnknownTag { what: "stop reason", tag }),
    }
}

fn put_opt_str(w: &mut Writer, v: Option<&str>) {
    match v {
        None => w.u8(0),
        Some(s) => {
            w.u8(1);
            w.str(s);
        }
    }
}

fn get_opt_str(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<Option<String>, DecodeError> {
    match r.u8(what)? {
        0 => Ok(None),
        1 => Ok(Some(r.str(what, max)?)),
        tag => Err(DecodeError::UnknownTag { what, tag }),
    }
}

fn put_user(w: &mut Writer, u: &User) {
    w.u32(u.id.0);
    w.str(&u.name);
}

fn get_user(r: &mut Reader<'_>) -> Result<User, DecodeError> {
    Ok(User { id: UserId(r.u32("user id")?), name: r.name("user name", MAX_NAME)? })
}

fn put_instance_info(w: &mut Writer, i: &InstanceInfo) {
    w.u32(i.id.0);
    w.u32(i.plugin.0);
}

fn get_instance_info(r: &mut Reader<'_>) -> Result<InstanceInfo, DecodeError> {
    Ok(InstanceInfo { id: InstanceId(r.u32("instance")?), plugin: PluginId(r.u32("plugin")?) })
}

impl PeerMsg {
    /// The message as bytes (tag, then fields), ready for [`crate::framing::encode`].
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::Hello { version, role } => {
                w.u8(1);
                w.varint(u64::from(*version));
                match role {
                    Role::PluginHost { key, host } => {
                        w.u8(1);
                        w.str(key);
                        w.str(host);
                    }
                    Role::SessionClient { room, user } => {
                        w.u8(2);
                        w.str(room);
                        w.str(user);
                    }
                }
            }
            Self::Ping { nonce } => {
                w.u8(2);
                w.varint(*nonce);
            }
            Self::RegisterPlugin { local, meta } => {
                w.u8(16);
                w.u32(*local);
                put_meta(&mut w, meta);
            }
            Self::UnregisterPlugin { plugin } => {
                w.u8(17);
                w.u32(plugin.0);
            }
            Self::InstanceEnded { instance, error } => {
                w.u8(18);
                w.u32(instance.0);
                put_opt_str(&mut w, error.as_deref());
            }
            Self::ToRoom { instance, retain, body } => {
                w.u8(19);
                w.u32(instance.0);
                put_retain(&mut w, *retain);
                w.bytes(body);
            }
            Self::ToPresenter { instance, body } => {
                w.u8(20);
                w.u32(instance.0);
                w.bytes(body);
            }
            Self::ToUser { instance, user, body } => {
                w.u8(21);
                w.u32(instance.0);
                w.u32(user.0);
                w.bytes(body);
            }
            Self::ForgetChannels { instance, channels } => {
                w.u8(22);
                w.u32(instance.0);
                w.list(channels, |w, c| w.u32(*c));
            }
            Self::Activate { req, plugin } => {
                w.u8(32);
                w.u32(*req);
                w.u32(plugin.0);
            }
            Self::Deactivate { req, instance } => {
                w.u8(33);
                w.u32(*req);
                w.u32(instance.0);
            }
            Self::ToInstance { instance, body } => {
                w.u8(34);
                w.u32(instance.0);
                w.bytes(body);
            }
            Self::KeyframeWanted { instance, channel } => {
                w.u8(35);
                w.u32(instance.0);
                w.u32(*channel);
            }
            Self::ToUsers { retain, body } => {
                w.u8(36);
                put_retain(&mut w, *retain);
                w.bytes(body);
            }
        }
        w.buf
    }

    /// Decodes one whole message.
    ///
    /// # Errors
    /// Any [`DecodeError`]: unknown tags, truncation, limits, trailing bytes.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let msg = match r.u8("message tag")? {
            1 => {
                let version = r.u16("version")?;
                let role = match r.u8("role")? {
                    1 => Role::PluginHost { key: r.str("key", MAX_KEY)?, host: r.name("host name", MAX_NAME)? },
                    2 => Role::SessionClient { room: r.name("room", MAX_NAME)?, user: r.name("user name", MAX_NAME)? },
                    tag => return Err(DecodeError::UnknownTag { what: "role", tag }),
                };
                Self::Hello { version, role }
            }
            2 => Self::Ping { nonce: r.varint("nonce")? },
            16 => Self::RegisterPlugin { local: r.u32("local")?, meta: get_meta(&mut r)? },
            17 => Self::UnregisterPlugin { plugin: PluginId(r.u32("plugin")?) },
            18 => Self::InstanceEnded {
                instance: InstanceId(r.u32("instance")?),
                error: get_opt_str(&mut r, "error", MAX_TEXT)?,
            },
            19 => Self::ToRoom {
                instance: InstanceId(r.u32("instance")?),
                retain: get_retain(&mut r)?,
                body: r.bytes("body", MAX_BODY)?,
            },
            20 => Self::ToPresenter { instance: InstanceId(r.u32("instance")?), body: r.bytes("body", MAX_BODY)? },
            21 => Self::ToUser {
                instance: InstanceId(r.u32("instance")?),
                user: UserId(r.u32("user")?),
                body: r.bytes("body", MAX_BODY)?,
            },
            22 => Self::ForgetChannels {
                instance: InstanceId(r.u32("instance")?),
                channels: r.list("channels", MAX_LIST, |r| r.u32("channel"))?,
            },
            32 => Self::Activate { req: r.u32("req")?, plugin: PluginId(r.u32("plugin")?) },
            33 => Self::Deactivate { req: r.u32("req")?, instance: InstanceId(r.u32("instance")?) },
            34 => Self::ToInstance { instance: InstanceId(r.u32("instance")?), body: r.bytes("body", MAX_BODY)? },
            35 => Self::KeyframeWanted { instance: InstanceId(r.u32("instance")?), channel: r.u32("channel")? },
            36 => Self::ToUsers { retain: get_retain(&mut r)?, body: r.bytes("body", MAX_BODY)? },
            tag => return Err(DecodeError::UnknownTag { what: "peer message", tag }),
        };
        r.finish()?;
        Ok(msg)
    }

    /// A short name for logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "Hello",
            Self::Ping { .. } => "Ping",
            Self::RegisterPlugin { .. } => "RegisterPlugin",
            Self::UnregisterPlugin { .. } => "UnregisterPlugin",
            Self::InstanceEnded { .. } => "InstanceEnded",
            Self::ToRoom { .. } => "ToRoom",
            Self::ToPresenter { .. } => "ToPresenter",
            Self::ToUser { .. } => "ToUser",
            Self::ForgetChannels { .. } => "ForgetChannels",
            Self::Activate { .. } => "Activate",
            Self::Deactivate { .. } => "Deactivate",
            Self::ToInstance { .. } => "ToInstance",
            Self::KeyframeWanted { .. } => "KeyframeWanted",
            Self::ToUsers { .. } => "ToUsers",
        }
    }
}

impl RelayMsg {
    /// The message as bytes (tag, then fields), ready for [`crate::framing::encode`].
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::Welcome { version, server, user } => {
                w.u8(1);
                w.varint(u64::from(*version));
                w.str(server);
                match user {
                    None => w.u8(0),
                    Some(u) => {
                        w.u8(1);
                        w.u32(u.0);
                    }
                }
            }
            Self::Refused { reason } => {
                w.u8(2);
                w.str(reason);
            }
            Self::Pong { nonce } => {
                w.u8(3);
                w.varint(*nonce);
            }
            Self::Registered { local, plugin } => {
                w.u8(16);
                w.u32(*local);
                w.u32(plugin.0);
            }
            Self::RegisterFailed { local, reason } => {
                w.u8(17);
                w.u32(*local);
                w.str(reason);
            }
            Self::StartInstance { instance, plugin, room, presenter } => {
                w.u8(18);
                w.u32(instance.0);
                w.u32(plugin.0);
                w.str(room);
                w.u32(presenter.0);
            }
            Self::StopInstance { instance, reason } => {
                w.u8(19);
                w.u32(instance.0);
                put_reason(&mut w, reason);
            }
            Self::InstanceInput { instance, from, body } => {
                w.u8(20);
                w.u32(instance.0);
                w.u32(from.0);
                w.bytes(body);
            }
            Self::InstancePresenter { instance, presenter } => {
                w.u8(21);
                w.u32(instance.0);
                w.u32(presenter.0);
            }
            Self::SendKeyframe { instance, channel } => {
                w.u8(22);
                w.u32(instance.0);
                w.u32(*channel);
            }
            Self::RoomState { room, you, presenter, users, instances } => {
                w.u8(32);
                w.str(room);
                w.u32(you.0);
                w.u32(presenter.0);
                w.list(users, put_user);
                w.list(instances, put_instance_info);
            }
            Self::UserJoined { user } => {
                w.u8(33);
                put_user(&mut w, user);
            }
            Self::UserLeft { user } => {
                w.u8(34);
                w.u32(user.0);
            }
            Self::PresenterChanged { presenter } => {
                w.u8(35);
                w.u32(presenter.0);
            }
            Self::Plugins { plugins } => {
                w.u8(36);
                w.list(plugins, |w, p| {
                    w.u32(p.id.0);
                    w.str(&p.host);
                    put_meta(w, &p.meta);
                });
            }
            Self::InstanceStarted { instance } => {
                w.u8(37);
                put_instance_info(&mut w, instance);
            }
            Self::InstanceStopped { instance, reason } => {
                w.u8(38);
                w.u32(instance.0);
                put_reason(&mut w, reason);
            }
            Self::FromInstance { instance, scope, body } => {
                w.u8(39);
                w.u32(instance.0);
                put_scope(&mut w, *scope);
                w.bytes(body);
            }
            Self::Activated { req, instance } => {
                w.u8(40);
                w.u32(*req);
                w.u32(instance.0);
            }
            Self::RequestFailed { req, reason } => {
                w.u8(41);
                w.u32(*req);
                w.str(reason);
            }
            Self::UplinkKeyframe { instance, channel } => {
                w.u8(42);
                w.u32(instance.0);
                w.u32(*channel);
            }
            Self::FromUser { user, body } => {
                w.u8(43);
                w.u32(user.0);
                w.bytes(body);
            }
        }
        w.buf
    }

    /// Decodes one whole message.
    ///
    /// # Errors
    /// Any [`DecodeError`]: unknown tags, truncation, limits, trailing bytes.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let msg = match r.u8("message tag")? {
            1 => Self::Welcome {
                version: r.u16("version")?,
                server: r.str("server", MAX_NAME)?,
                user: match r.u8("user")? {
                    0 => None,
                    1 => Some(UserId(r.u32("user")?)),
                    tag => return Err(DecodeError::UnknownTag { what: "welcome user", tag }),
                },
            },
            2 => Self::Refused { reason: r.str("reason", MAX_TEXT)? },
            3 => Self::Pong { nonce: r.varint("nonce")? },
            16 => Self::Registered { local: r.u32("local")?, plugin: PluginId(r.u32("plugin")?) },
            17 => Self::RegisterFailed { local: r.u32("local")?, reason: r.str("reason", MAX_TEXT)? },
            18 => Self::StartInstance {
                instance: InstanceId(r.u32("instance")?),
                plugin: PluginId(r.u32("plugin")?),
                room: r.name("room", MAX_NAME)?,
                presenter: UserId(r.u32("presenter")?),
            },
            19 => Self::StopInstance { instance: InstanceId(r.u32("instance")?), reason: get_reason(&mut r)? },
            20 => Self::InstanceInput {
                instance: InstanceId(r.u32("instance")?),
                from: UserId(r.u32("user")?),
                body: r.bytes("body", MAX_BODY)?,
            },
            21 => Self::InstancePresenter {
                instance: InstanceId(r.u32("instance")?),
                presenter: UserId(r.u32("presenter")?),
            },
            22 => Self::SendKeyframe { instance: InstanceId(r.u32("instance")?), channel: r.u32("channel")? },
            32 => Self::RoomState {
                room: r.name("room", MAX_NAME)?,
                you: UserId(r.u32("user")?),
                presenter: UserId(r.u32("presenter")?),
                users: r.list("users", MAX_LIST, get_user)?,
                instances: r.list("instances", MAX_LIST, get_instance_info)?,
            },
            33 => Self::UserJoined { user: get_user(&mut r)? },
            34 => Self::UserLeft { user: UserId(r.u32("user")?) },
            35 => Self::PresenterChanged { presenter: UserId(r.u32("presenter")?) },
            36 => Self::Plugins {
                plugins: r.list("plugins", MAX_LIST, |r| {
                    Ok(PluginInfo {
                        id: PluginId(r.u32("plugin")?),
                        host: r.name("host name", MAX_NAME)?,
                        meta: get_meta(r)?,
                    })
                })?,
            },
            37 => Self::InstanceStarted { instance: get_instance_info(&mut r)? },
            38 => Self::InstanceStopped { instance: InstanceId(r.u32("instance")?), reason: get_reason(&mut r)? },
            39 => Self::FromInstance {
                instance: InstanceId(r.u32("instance")?),
                scope: get_scope(&mut r)?,
                body: r.bytes("body", MAX_BODY)?,
            },
            40 => Self::Activated { req: r.u32("req")?, instance: InstanceId(r.u32("instance")?) },
            41 => Self::RequestFailed { req: r.u32("req")?, reason: r.str("reason", MAX_TEXT)? },
            42 => Self::UplinkKeyframe { instance: InstanceId(r.u32("instance")?), channel: r.u32("channel")? },
            43 => Self::FromUser { user: UserId(r.u32("user")?), body: r.bytes("body", MAX_BODY)? },
            tag => return Err(DecodeError::UnknownTag { what: "relay message", tag }),
        };
        r.finish()?;
        Ok(msg)
    }
}

impl StreamHead {
    /// The preamble as bytes, ready for [`crate::framing::encode`].
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::Frames { instance, channel } => {
                w.u8(1);
                w.u32(instance.0);
                w.u32(*channel);
            }
            Self::Uplink { instance, channel } => {
                w.u8(2);
                w.u32(instance.0);
                w.u32(*channel);
            }
            Self::FromUser { instance, user, channel } => {
                w.u8(3);
                w.u32(instance.0);
                w.u32(user.0);
                w.u32(*channel);
            }
        }
        w.buf
    }

    /// Decodes a preamble.
    ///
    /// # Errors
    /// Any [`DecodeError`].
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let head = match r.u8("stream head tag")? {
            1 => Self::Frames { instance: InstanceId(r.u32("instance")?), channel: r.u32("channel")? },
            2 => Self::Uplink { instance: InstanceId(r.u32("instance")?), channel: r.u32("channel")? },
            3 => Self::FromUser {
                instance: InstanceId(r.u32("instance")?),
                user: UserId(r.u32("user")?),
                channel: r.u32("channel")?,
            },
            tag => return Err(DecodeError::UnknownTag { what: "stream head", tag }),
        };
        r.finish()?;
        Ok(head)
    }
}

/// The version of a `Hello` message, read without decoding the rest: a relay can refuse a
/// peer of another version with a reason even when the remainder of its `Hello` changed.
/// `None` if `buf` is not a `Hello` or its version field is malformed.
#[must_use]
pub fn hello_version(buf: &[u8]) -> Option<u16> {
    let head = Bytes::copy_from_slice(buf.get(..buf.len().min(4))?);
    let mut r = Reader::new(&head);
    if r.u8("tag").ok()? != 1 {
        return None;
    }
    r.u16("version").ok()
}

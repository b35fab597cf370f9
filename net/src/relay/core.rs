//! [`RelayCore`]: the relay's whole protocol logic as plain state, with no sockets and no clock
//! of its own (in the style of quinn-proto). The driver feeds it connection events, control
//! messages as raw bytes, and codec frames with their parsed header; it polls
//! [`RelayCore::poll_transmit`] for what to send to which peer and [`RelayCore::poll_event`]
//! for what happened.
//!
//! Routing rules enforced here:
//! - a session client only addresses instances of its own room; a plugin host only speaks for
//!   instances of its own plugins;
//! - what an instance sends to its room (messages, frame streams) reaches every user of that
//!   room and no one else; requests for the workspace go to the room's presenter;
//! - users who join late get the room's retained state: messages sent with
//!   [`Retain::Keep`], and each frame channel's last keyframe followed by the deltas since.
//!
//! A message that does not decode, or breaks a rule only a hostile or broken peer would break,
//! closes that peer's connection (`Outgoing::Close` with the reason) and nobody else's.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use molstream_engine::codec::{FrameHeader, FrameKind, Limits};

use super::queue::FrameClass;
use crate::proto::msg::hello_version;
use crate::proto::{
    InstanceId, InstanceInfo, PROTOCOL_VERSION, PeerMsg, PluginId, PluginInfo, PluginMeta, ROOM_CHANNELS, RelayMsg,
    Retain, Role, Scope, StopReason, StreamHead, User, UserId,
};

/// A connection to the relay, numbered by the driver.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PeerId(pub u64);

/// An incoming unidirectional frame stream, numbered by the core when it accepts the stream.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct InStream(pub u64);

/// An outgoing unidirectional frame stream to one peer, numbered by the core.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OutStream(pub u64);

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The key plugin hosts must present.
    pub plugin_key: String,
    /// Software name and version sent in `Welcome`.
    pub server: String,
    /// A peer that has not completed the handshake after this long is closed.
    pub handshake_timeout: Duration,
    /// Stop every instance of a room when its presenter leaves (the reference system's rule).
    /// When false, instances go on and are told the new presenter.
    pub stop_instances_when_presenter_leaves: bool,
    /// Most plugins one host connection may register.
    pub max_plugins_per_host: usize,
    /// Most users in one room.
    pub max_users_per_room: usize,
    /// Most frame channels per instance.
    pub max_channels_per_instance: usize,
    /// Retained message bytes per room (state replayed to late joiners); above it, retained
    /// messages are forwarded but not kept.
    pub max_retained_bytes_per_room: usize,
    /// Bytes of frames (keyframes and the deltas after them) kept per room for late joiners;
    /// a keyframe that does not fit is forwarded but not kept, and a user who joins meanwhile
    /// makes the relay ask the instance for a fresh one.
    pub max_retained_frame_bytes_per_room: usize,
    /// Bytes of deltas kept after a channel's keyframe for late joiners; above it the chain
    /// is dropped, and a user who joins meanwhile gets the keyframe, then waits for a fresh one
    /// that the relay asks the instance for.
    pub max_delta_chain_bytes: usize,
    /// Soft bound: bytes of deltas queued for one user on one channel beyond which coalescable
    /// frames (position deltas, transforms) are dropped for that user, who then waits for a
    /// keyframe; a keyframe is always queued, replacing the queue; ordered frames (attributes,
    /// topology, shapes) go in past it.
    pub max_queued_frame_bytes: usize,
    /// Hard bound per peer: bytes of frames queued above the soft bounds of its streams (ordered
    /// frames a slow user has not read). Past it the peer is closed with the reason.
    pub max_peer_backlog_bytes: usize,
    /// Hard bound per peer on control messages queued and not yet written; past it the peer is
    /// closed with the reason.
    pub max_control_queue_bytes: usize,
    /// Limits checked on every codec frame header.
    pub frame_limits: Limits,
    /// Most uplinks (frame streams to instances) one session client may have open at once.
    pub max_uplinks_per_user: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            plugin_key: String::new(),
            server: concat!("molstream-relay ", env!("CARGO_PKG_VERSION")).into(),
            handshake_timeout: Duration::from_secs(10),
            stop_instances_when_presenter_leaves: true,
            max_plugins_per_host: 64,
            max_users_per_room: 256,
            max_channels_per_instance: 256,
            max_retained_bytes_per_room: 64 << 20,
            max_retained_frame_bytes_per_room: 1 << 30,
            max_delta_chain_bytes: 16 << 20,
            max_queued_frame_bytes: 16 << 20,
            max_peer_backlog_bytes: 64 << 20,
            max_control_queue_bytes: 64 << 20,
            frame_limits: Limits { max_payload: 256 << 20, ..Limits::default() },
            max_uplinks_per_user: 64,
        }
    }
}

/// What the driver must do for one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// Send a control message on the peer's control stream.
    Message(RelayMsg),
    /// Open a unidirectional stream to the peer and write the framed preamble.
    OpenStream {
        /// The core's handle for it.
        stream: OutStream,
        /// The preamble.
        head: StreamHead,
    },
    /// Write one codec frame (header and payload, as received) on an open stream.
    Frame {
        /// The stream.
        stream: OutStream,
        /// The frame bytes.
        bytes: Bytes,
        /// How flow control treats it ([`super::queue::PeerQueues`]): a keyframe supersedes
        /// what is queued before it and is never dropped; a coalescable frame may be dropped
        /// for a lagging user ([`RelayCore::handle_lagging`]); an ordered frame is delivered in
        /// order, or the peer is closed ([`RelayCore::handle_too_slow`]).
        class: FrameClass,
    },
    /// Finish a stream (its channel ended or its instance stopped).
    FinishStream {
        /// The stream.
        stream: OutStream,
    },
    /// Flush what was queued, then close the connection with this reason. The core has
    /// already forgotten the peer.
    Close {
        /// Why (logged, and sent as the close reason).
        reason: String,
    },
}

/// What happened, for logs, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// A peer completed the handshake.
    Joined {
        /// The peer.
        peer: PeerId,
        /// Its role.
        role: &'static str,
    },
    /// The core closed a peer.
    Closed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A plugin registered.
    PluginRegistered {
        /// Its id.
        plugin: PluginId,
        /// Its name.
        name: String,
    },
    /// An instance started.
    InstanceStarted {
        /// The instance.
        instance: InstanceId,
        /// Its room.
        room: String,
    },
    /// An instance stopped.
    InstanceStopped {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: StopReason,
    },
}

/// Whether the driver should keep reading an incoming frame stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamVerdict {
    /// Keep reading.
    Continue,
    /// Stop reading and discard the stream (its instance stopped, or it was refused).
    Stop,
}

#[derive(Debug)]
enum Peer {
    Pending { since: Instant },
    Host { host: String, plugins: BTreeSet<PluginId> },
    Client { user: UserId },
}

#[derive(Debug)]
struct UserEntry {
    peer: PeerId,
    name: String,
    room: String,
}

#[derive(Debug)]
struct Room {
    users: Vec<UserId>,
    presenter: UserId,
    instances: BTreeSet<InstanceId>,
    retained_bytes: usize,
    retained_frame_bytes: usize,
    /// Users' retained messages (`ToUsers`): slot → (order of last update, sender, body).
    user_retained: BTreeMap<u64, (u64, UserId, Bytes)>,
    /// Room-wide channels (complexes) whose instance stopped: the workspace keeps them, so late
    /// joiners still get their keyframe and the deltas since, under the stopped instance's id.
    orphans: BTreeMap<u32, Orphan>,
}

/// What a stopped instance left on a room-wide channel.
#[derive(Debug)]
struct Orphan {
    instance: InstanceId,
    frames: Vec<Bytes>,
}

impl Orphan {
    fn len(&self) -> usize {
        self.frames.iter().map(Bytes::len).sum()
    }
}

#[derive(Debug)]
struct Plugin {
    host: String,
    meta: PluginMeta,
    peer: Option<PeerId>,
}

#[derive(Debug, Default)]
struct Channel {
    in_stream: Option<InStream>,
    keyframe: Option<Bytes>,
    chain: Vec<Bytes>,
    chain_bytes: usize,
    /// The chain was dropped: late joiners get the keyframe only, then wait for the next one
    /// (asked for when they join).
    chain_broken: bool,
    /// The last keyframe was forwarded but not kept (the room's budget was spent): late joiners
    /// get nothing of the channel until the next keyframe (asked for when they join).
    keyframe_unkept: bool,
    keyframe_requested: bool,
    out: HashMap<PeerId, OutStream>,
    /// Users who lagged or lost sync: they get nothing but the next keyframe.
    waiting: BTreeSet<PeerId>,
    /// `ForgetChannels` named the channel while its stream was open: it goes away when the
    /// stream ends.
    forgotten: bool,
}

impl Channel {
    /// Bytes kept for late joiners.
    fn retained_len(&self) -> usize {
        self.keyframe.as_ref().map_or(0, Bytes::len) + self.chain_bytes
    }

    /// Drops what is kept for late joiners; returns the bytes released.
    fn forget_retained(&mut self) -> usize {
        let released = self.retained_len();
        self.keyframe = None;
        self.chain.clear();
        self.chain_bytes = 0;
        self.chain_broken = false;
        self.keyframe_unkept = false;
        released
    }
}

/// Whether a frame is a keyframe for flow control and late joiners: nothing before it is needed
/// to decode what follows. Self-contained frames (structure keyframes, full shape frames) are
/// the ones that are their own base; every other kind chains on `base_seq`.
fn is_keyframe(header: &FrameHeader) -> bool {
    header.base_seq == header.seq
}

/// The flow-control class of a frame kept for late joiners (its header was checked when it
/// arrived; a header that no longer parses, which cannot happen, counts as ordered).
fn class_of_kept(bytes: &Bytes, limits: &Limits) -> FrameClass {
    FrameHeader::parse(bytes, limits).map_or(FrameClass::Ordered, |h| FrameClass::of(&h))
}

/// A frame stream from a session client to an instance of its room, forwarded to the
/// instance's host on one outgoing stream. Nothing is retained.
#[derive(Debug)]
struct Uplink {
    user_peer: PeerId,
    instance: InstanceId,
    channel: u32,
    host_peer: PeerId,
    out: OutStream,
    /// The host fell behind: deltas are dropped until the next keyframe.
    waiting: bool,
    /// The user was asked for a keyframe (once per lag).
    keyframe_requested: bool,
}

#[derive(Debug)]
struct Instance {
    plugin: PluginId,
    host_peer: PeerId,
    room: String,
    /// Retained messages: slot → (order of last update, body).
    retained: BTreeMap<u64, (u64, Bytes)>,
    channels: BTreeMap<u32, Channel>,
}

/// The relay's protocol state machine. See the module documentation.
#[derive(Debug)]
pub struct RelayCore {
    cfg: RelayConfig,
    peers: HashMap<PeerId, Peer>,
    users: HashMap<UserId, UserEntry>,
    rooms: BTreeMap<String, Room>,
    plugins: BTreeMap<PluginId, Plugin>,
    identities: HashMap<(String, String), PluginId>,
    instances: BTreeMap<InstanceId, Instance>,
    in_streams: HashMap<InStream, (PeerId, InstanceId, u32)>,
    uplinks: HashMap<InStream, Uplink>,
    next_user: u32,
    next_plugin: u32,
    next_instance: u32,
    next_stream: u64,
    next_order: u64,
    transmits: VecDeque<(PeerId, Outgoing)>,
    events: VecDeque<RelayEvent>,
}

/// Compares two keys without an early exit on the first differing byte (both are hashed to
/// fixed-length digests first, so the length does not leak either).
fn keys_match(a: &str, b: &str) -> bool {
    let da = ring::digest::digest(&ring::digest::SHA256, a.as_bytes());
    let db = ring::digest::digest(&ring::digest::SHA256, b.as_bytes());
    da.as_ref().iter().zip(db.as_ref()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl RelayCore {
    /// A relay with no peers.
    #[must_use]
    pub fn new(cfg: RelayConfig) -> Self {
        Self {
            cfg,
            peers: HashMap::new(),
            users: HashMap::new(),
            rooms: BTreeMap::new(),
            plugins: BTreeMap::new(),
            identities: HashMap::new(),
            instances: BTreeMap::new(),
            in_streams: HashMap::new(),
            uplinks: HashMap::new(),
            next_user: 1,
            next_plugin: 1,
            next_instance: 1,
            next_stream: 1,
            next_order: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// The next thing to send, if any.
    pub fn poll_transmit(&mut self) -> Option<(PeerId, Outgoing)> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// When [`RelayCore::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|p| match p {
                Peer::Pending { since } => Some(*since + self.cfg.handshake_timeout),
                _ => None,
            })
            .min()
    }

    /// Whether `peer` completed the handshake (the driver raises its message size limit).
    #[must_use]
    pub fn is_authenticated(&self, peer: PeerId) -> bool {
        matches!(self.peers.get(&peer), Some(Peer::Host { .. } | Peer::Client { .. }))
    }

    /// Number of connected peers (pending ones included).
    #[must_use]
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Number of running instances.
    #[must_use]
    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }

    /// A new connection. It must send `Hello` within the handshake timeout.
    pub fn handle_connected(&mut self, peer: PeerId, now: Instant) {
        self.peers.insert(peer, Peer::Pending { since: now });
    }

    /// Closes peers whose handshake is overdue.
    pub fn handle_timeout(&mut self, now: Instant) {
        let overdue: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p, Peer::Pending { since } if now >= *since + self.cfg.handshake_timeout))
            .map(|(id, _)| *id)
            .collect();
        for peer in overdue {
            self.close(peer, "no Hello before the handshake timeout".into());
        }
    }

    /// The connection ended (closed by the peer, timed out, or reset). Its user leaves its
    /// room; its plugins go offline and their instances stop.
    pub fn handle_disconnected(&mut self, peer: PeerId, _now: Instant) {
        self.forget_peer(peer);
    }

    /// The driver found `peer` breaking the protocol below the message layer (a length above
    /// the limit, a malformed stream preamble or frame header): the peer is closed.
    pub fn handle_protocol_error(&mut self, peer: PeerId, reason: String) {
        self.close(peer, reason);
    }

    /// The driver cannot deliver to `peer` what must not be dropped (its control messages, or
    /// the ordered frames of its streams, are over the hard bound): the peer is closed with
    /// `reason` (logged, and sent as the connection's close reason). Nothing is dropped
    /// silently: a peer either gets everything in order or is told why it was cut off.
    pub fn handle_too_slow(&mut self, peer: PeerId, reason: String) {
        self.close(peer, reason);
    }

    /// One framed control message from `peer`.
    pub fn handle_message(&mut self, peer: PeerId, bytes: &Bytes, now: Instant) {
        let Some(state) = self.peers.get(&peer) else { return };
        if let Peer::Pending { .. } = state {
            self.handle_hello(peer, bytes, now);
            return;
        }
        let msg = match PeerMsg::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.close(peer, format!("malformed message: {e}"));
                return;
            }
        };
        match (self.peers.get(&peer), msg) {
            (_, PeerMsg::Hello { .. }) => self.close(peer, "Hello sent twice".into()),
            (_, PeerMsg::Ping { nonce }) => self.send(peer, RelayMsg::Pong { nonce }),
            (Some(Peer::Host { .. }), msg) => self.host_message(peer, msg),
            (Some(Peer::Client { user }), msg) => {
                let user = *user;
                self.client_message(peer, user, msg);
            }
            (_, msg) => tracing::debug!(?peer, msg = msg.name(), "message from an unknown peer dropped"),
        }
    }

    fn handle_hello(&mut self, peer: PeerId, bytes: &Bytes, _now: Instant) {
        let refuse = |core: &mut Self, reason: String| {
            core.send(peer, RelayMsg::Refused { reason: reason.clone() });
            core.close(peer, reason);
        };
        match hello_version(bytes) {
            Some(PROTOCOL_VERSION) => {}
            Some(v) => {
                return refuse(
                    self,
                    format!("unsupported protocol version {v}; this relay speaks version {PROTOCOL_VERSION}"),
                );
            }
            None => return refuse(self, "expected Hello as the first message".into()),
        }
        let role = match PeerMsg::decode(bytes) {
            Ok(PeerMsg::Hello { role, .. }) => role,
            Ok(_) => return refuse(self, "expected Hello as the first message".into()),
            Err(e) => return refuse(self, format!("malformed Hello: {e}")),
        };
        match role {
            Role::PluginHost { key, host } => {
                if self.cfg.plugin_key.is_empty() || !keys_match(&key, &self.cfg.plugin_key) {
                    return refuse(self, "wrong plugin key".into());
                }
                self.peers.insert(peer, Peer::Host { host, plugins: BTreeSet::new() });
                self.send(
                    peer,
                    RelayMsg::Welcome { version: PROTOCOL_VERSION, server: self.cfg.server.clone(), user: None },
                );
                self.events.push_back(RelayEvent::Joined { peer, role: "plugin host" });
            }
            Role::SessionClient { room, user: name } => {
                if self.rooms.get(&room).is_some_and(|r| r.users.len() >= self.cfg.max_users_per_room) {
                    return refuse(self, format!("room {room:?} is full"));
                }
                self.join_room(peer, &room, &name);
            }
        }
    }

    fn join_room(&mut self, peer: PeerId, room_name: &str, name: &str) {
        let user = UserId(self.next_user);
        self.next_user = self.next_user.wrapping_add(1).max(1);
        self.peers.insert(peer, Peer::Client { user });
        self.users.insert(user, UserEntry { peer, name: name.to_owned(), room: room_name.to_owned() });
        let room = self.rooms.entry(room_name.to_owned()).or_insert_with(|| Room {
            users: Vec::new(),
            presenter: user,
            instances: BTreeSet::new(),
            retained_bytes: 0,
            retained_frame_bytes: 0,
            user_retained: BTreeMap::new(),
            orphans: BTreeMap::new(),
        });
        room.users.push(user);
        let others: Vec<UserId> = room.users.iter().copied().filter(|u| *u != user).collect();
        let presenter = room.presenter;
        let instance_ids: Vec<InstanceId> = room.instances.iter().copied().collect();
        let users: Vec<User> = room
            .users
            .iter()
            .filter_map(|u| self.users.get(u).map(|e| User { id: *u, name: e.name.to_owned() }))
            .collect();
        let instances: Vec<InstanceInfo> = instance_ids
            .iter()
            .filter_map(|i| self.instances.get(i).map(|inst| InstanceInfo { id: *i, plugin: inst.plugin }))
            .collect();
        self.send(
            peer,
            RelayMsg::Welcome { version: PROTOCOL_VERSION, server: self.cfg.server.clone(), user: Some(user) },
        );
        self.send(peer, RelayMsg::RoomState { room: room_name.to_owned(), you: user, presenter, users, instances });
        self.send(peer, RelayMsg::Plugins { plugins: self.plugin_list() });
        for other in others {
            self.send_user(other, RelayMsg::UserJoined { user: User { id: user, name: name.to_owned() } });
        }
        self.events.push_back(RelayEvent::Joined { peer, role: "session client" });
        // Late join: users' retained messages first (the room's ids, users' edits), then each
        // instance's retained messages (in the order of their last update), then each frame
        // channel's keyframe and the deltas since.
        let mut from_users: Vec<(u64, UserId, Bytes)> =
            self.rooms.get(room_name).map(|r| r.user_retained.values().cloned().collect()).unwrap_or_default();
        from_users.sort_by_key(|(order, _, _)| *order);
        for (_, user, body) in from_users {
            self.send(peer, RelayMsg::FromUser { user, body });
        }
        for instance in instance_ids {
            self.replay_instance(instance, peer);
        }
        let orphans: Vec<(InstanceId, u32, Vec<Bytes>)> = self
            .rooms
            .get(room_name)
            .map(|r| r.orphans.iter().map(|(c, o)| (o.instance, *c, o.frames.clone())).collect())
            .unwrap_or_default();
        let limits = self.cfg.frame_limits;
        for (instance, channel, frames) in orphans {
            let stream = OutStream(self.next_stream);
            self.next_stream += 1;
            self.transmits
                .push_back((peer, Outgoing::OpenStream { stream, head: StreamHead::Frames { instance, channel } }));
            for (i, bytes) in frames.into_iter().enumerate() {
                let class = if i == 0 { FrameClass::Key } else { class_of_kept(&bytes, &limits) };
                self.transmits.push_back((peer, Outgoing::Frame { stream, bytes, class }));
            }
            self.transmits.push_back((peer, Outgoing::FinishStream { stream }));
        }
    }

    fn replay_instance(&mut self, instance: InstanceId, peer: PeerId) {
        let Some(inst) = self.instances.get(&instance) else { return };
        let mut retained: Vec<&(u64, Bytes)> = inst.retained.values().collect();
        retained.sort_by_key(|(order, _)| *order);
        let msgs: Vec<RelayMsg> = retained
            .into_iter()
            .map(|(_, body)| RelayMsg::FromInstance { instance, scope: Scope::Room, body: body.clone() })
            .collect();
        let channels: Vec<u32> = inst.channels.keys().copied().collect();
        for m in msgs {
            self.send(peer, m);
        }
        let mut want_keyframe = Vec::new();
        let limits = self.cfg.frame_limits;
        for channel in channels {
            let stream = OutStream(self.next_stream);
            let Some(ch) = self.instances.get_mut(&instance).and_then(|i| i.channels.get_mut(&channel)) else {
                continue;
            };
            let Some(key) = ch.keyframe.clone() else {
                // The last keyframe did not fit the room's budget: the joiner waits for a fresh
                // one (its stream opens when it comes), asked of the instance once.
                if ch.keyframe_unkept {
                    ch.waiting.insert(peer);
                    if !ch.keyframe_requested {
                        ch.keyframe_requested = true;
                        want_keyframe.push(channel);
                    }
                }
                continue;
            };
            self.next_stream += 1;
            ch.out.insert(peer, stream);
            let mut frames = vec![(key, FrameClass::Key)];
            if ch.chain_broken {
                ch.waiting.insert(peer);
                if !ch.keyframe_requested {
                    ch.keyframe_requested = true;
                    want_keyframe.push(channel);
                }
            } else {
                frames.extend(ch.chain.iter().map(|b| (b.clone(), class_of_kept(b, &limits))));
            }
            self.transmits
                .push_back((peer, Outgoing::OpenStream { stream, head: StreamHead::Frames { instance, channel } }));
            for (bytes, class) in frames {
                self.transmits.push_back((peer, Outgoing::Frame { stream, bytes, class }));
            }
        }
        for channel in want_keyframe {
            self.request_keyframe(instance, channel);
        }
    }

    fn plugin_list(&self) -> Vec<PluginInfo> {
        self.plugins
            .iter()
            .filter(|(_, p)| p.peer.is_some())
            .map(|(id, p)| PluginInfo { id: *id, host: p.host.clone(), meta: p.meta.clone() })
            .collect()
    }

    fn broadcast_plugins(&mut self) {
        let plugins = self.plugin_list();
        let clients: Vec<PeerId> =
            self.peers.iter().filter(|(_, p)| matches!(p, Peer::Client { .. })).map(|(id, _)| *id).collect();
        for peer in clients {
            self.send(peer, RelayMsg::Plugins { plugins: plugins.clone() });
        }
    }

    fn host_message(&mut self, peer: PeerId, msg: PeerMsg) {
        match msg {
            PeerMsg::RegisterPlugin { local, meta } => self.register(peer, local, meta),
            PeerMsg::UnregisterPlugin { plugin } => {
                let owned =
                    matches!(self.peers.get(&peer), Some(Peer::Host { plugins, .. }) if plugins.contains(&plugin));
                if !owned {
                    self.close(peer, format!("unregistering {plugin}, which this host does not serve"));
                    return;
                }
                self.take_plugin_offline(plugin);
                self.broadcast_plugins();
            }
            PeerMsg::InstanceEnded { instance, error } => {
                if self.own_instance(peer, instance) {
                    let reason = match error {
                        Some(message) => StopReason::Crashed { message },
                        None => StopReason::Ended,
                    };
                    self.stop_instance(instance, reason, false);
                }
            }
            PeerMsg::ToRoom { instance, retain, body } => {
                if self.own_instance(peer, instance) {
                    self.broadcast_from(instance, retain, body);
                }
            }
            PeerMsg::ToPresenter { instance, body } => {
                if self.own_instance(peer, instance) {
                    let presenter =
                        self.instances.get(&instance).and_then(|i| self.rooms.get(&i.room)).map(|r| r.presenter);
                    if let Some(p) = presenter {
                        self.send_user(p, RelayMsg::FromInstance { instance, scope: Scope::Presenter, body });
                    }
                }
            }
            PeerMsg::ToUser { instance, user, body } => {
                if self.own_instance(peer, instance) {
                    let in_room =
                        self.instances.get(&instance).zip(self.users.get(&user)).is_some_and(|(i, u)| i.room == u.room);
                    if in_room {
                        self.send_user(user, RelayMsg::FromInstance { instance, scope: Scope::Direct, body });
                    } else {
                        tracing::debug!(%instance, %user, "message to a user outside the instance's room dropped");
                    }
                }
            }
            PeerMsg::ForgetChannels { instance, channels } => {
                if self.own_instance(peer, instance) {
                    self.forget_channels(instance, &channels);
                }
            }
            other => self.close(peer, format!("{} is not a plugin host message", other.name())),
        }
    }

    /// Whether `instance` is a live instance of `peer`'s plugins. An instance of another host
    /// closes `peer` (no legitimate race produces it: instance ids are never reused); an
    /// unknown (already stopped) instance is dropped quietly.
    fn own_instance(&mut self, peer: PeerId, instance: InstanceId) -> bool {
        match self.instances.get(&instance) {
            Some(i) if i.host_peer == peer => true,
            Some(_) => {
                self.close(peer, format!("addressed {instance}, which belongs to another plugin host"));
                false
            }
            None => {
                tracing::debug!(?peer, %instance, "message for a stopped instance dropped");
                false
            }
        }
    }

    fn register(&mut self, peer: PeerId, local: u32, meta: PluginMeta) {
        let Some(Peer::Host { host, plugins }) = self.peers.get(&peer) else { return };
        let host = host.clone();
        if plugins.len() >= self.cfg.max_plugins_per_host {
            let reason = format!("a host may register at most {} plugins", self.cfg.max_plugins_per_host);
            self.send(peer, RelayMsg::RegisterFailed { local, reason });
            return;
        }
        let identity = (meta.name.clone(), host.clone());
        let id = if let Some(id) = self.identities.get(&identity) {
            *id
        } else {
            let id = PluginId(self.next_plugin);
            self.next_plugin = self.next_plugin.wrapping_add(1).max(1);
            self.identities.insert(identity, id);
            id
        };
        if let Some(old) = self.plugins.get(&id).and_then(|p| p.peer) {
            if old == peer {
                let reason = format!("plugin {:?} is already registered on this connection", meta.name);
                self.send(peer, RelayMsg::RegisterFailed { local, reason });
                return;
            }
            // The same identity from a new connection (a restarted host whose old connection
            // has not timed out yet) takes over.
            tracing::info!(plugin = %id, name = %meta.name, "plugin re-registered from a new connection");
            self.take_plugin_offline(id);
        }
        let name = meta.name.clone();
        self.plugins.insert(id, Plugin { host, meta, peer: Some(peer) });
        if let Some(Peer::Host { plugins, .. }) = self.peers.get_mut(&peer) {
            plugins.insert(id);
        }
        self.send(peer, RelayMsg::Registered { local, plugin: id });
        self.events.push_back(RelayEvent::PluginRegistered { plugin: id, name });
        self.broadcast_plugins();
    }

    /// Marks a plugin offline, stops its instances, and removes it from its old host's set.
    fn take_plugin_offline(&mut self, plugin: PluginId) {
        let Some(p) = self.plugins.get_mut(&plugin) else { return };
        let old = p.peer.take();
        if let Some(Peer::Host { plugins, .. }) = old.and_then(|o| self.peers.get_mut(&o)) {
            plugins.remove(&plugin);
        }
        let instances: Vec<InstanceId> =
            self.instances.iter().filter(|(_, i)| i.plugin == plugin).map(|(id, _)| *id).collect();
        for i in instances {
            self.stop_instance(i, StopReason::PluginStopped, true);
        }
    }

    fn client_message(&mut self, peer: PeerId, user: UserId, msg: PeerMsg) {
        let Some(room) = self.users.get(&user).map(|u| u.room.clone()) else { return };
        match msg {
            PeerMsg::Activate { req, plugin } => self.activate(peer, user, &room, req, plugin),
            PeerMsg::Deactivate { req, instance } => {
                if self.instances.get(&instance).is_some_and(|i| i.room == room) {
                    self.stop_instance(instance, StopReason::Deactivated { by: user }, true);
                } else {
                    // The same answer whether the instance does not exist or is another
                    // room's: nothing about other rooms is revealed.
                    self.send(peer, RelayMsg::RequestFailed { req, reason: format!("no {instance} in this room") });
                }
            }
            PeerMsg::ToInstance { instance, body } => match self.instances.get(&instance) {
                Some(i) if i.room == room => {
                    let host = i.host_peer;
                    self.send(host, RelayMsg::InstanceInput { instance, from: user, body });
                }
                _ => tracing::debug!(%user, %instance, "message to an instance outside the user's room dropped"),
            },
            PeerMsg::KeyframeWanted { instance, channel } => {
                let Some(inst) = self.instances.get_mut(&instance) else { return };
                if inst.room != room {
                    return;
                }
                let Some(ch) = inst.channels.get_mut(&channel) else { return };
                ch.waiting.insert(peer);
                if !ch.keyframe_requested {
                    ch.keyframe_requested = true;
                    self.request_keyframe(instance, channel);
                }
            }
            PeerMsg::ToUsers { retain, body } => self.users_message(&room, user, retain, &body),
            other => self.close(peer, format!("{} is not a session client message", other.name())),
        }
    }

    /// `ToUsers` from `user`: every other user of the room gets it; kept for late joiners as
    /// `retain` says, within the room's retained budget (shared with the instances').
    fn users_message(&mut self, room_name: &str, user: UserId, retain: Retain, body: &Bytes) {
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        match retain {
            Retain::No => {}
            Retain::Keep(slot) => {
                let old = room.user_retained.get(&slot).map_or(0, |(_, _, b)| b.len());
                let new_total = room.retained_bytes - old + body.len();
                if new_total > self.cfg.max_retained_bytes_per_room {
                    tracing::warn!(%user, slot, room = %room_name, "retained state budget exceeded; message forwarded, not kept");
                } else {
                    room.retained_bytes = new_total;
                    self.next_order += 1;
                    room.user_retained.insert(slot, (self.next_order, user, body.clone()));
                }
            }
            Retain::Forget(slot) => {
                if let Some((_, _, b)) = room.user_retained.remove(&slot) {
                    room.retained_bytes -= b.len();
                }
            }
        }
        let others: Vec<UserId> = room.users.iter().copied().filter(|u| *u != user).collect();
        for other in others {
            self.send_user(other, RelayMsg::FromUser { user, body: body.clone() });
        }
    }

    fn activate(&mut self, peer: PeerId, user: UserId, room: &str, req: u32, plugin: PluginId) {
        let host_peer = match self.plugins.get(&plugin) {
            Some(Plugin { peer: Some(h), .. }) => *h,
            _ => {
                self.send(peer, RelayMsg::RequestFailed { req, reason: format!("{plugin} is not available") });
                return;
            }
        };
        if let Some((id, _)) = self.instances.iter().find(|(_, i)| i.plugin == plugin && i.room == room) {
            let id = *id;
            self.send(peer, RelayMsg::Activated { req, instance: id });
            return;
        }
        let Some(presenter) = self.rooms.get(room).map(|r| r.presenter) else { return };
        let id = InstanceId(self.next_instance);
        self.next_instance = self.next_instance.wrapping_add(1).max(1);
        self.instances.insert(
            id,
            Instance { plugin, host_peer, room: room.to_owned(), retained: BTreeMap::new(), channels: BTreeMap::new() },
        );
        if let Some(r) = self.rooms.get_mut(room) {
            r.instances.insert(id);
        }
        tracing::info!(instance = %id, %plugin, room, by = %user, "instance started");
        self.send(host_peer, RelayMsg::StartInstance { instance: id, plugin, room: room.to_owned(), presenter });
        self.send_room(room, &RelayMsg::InstanceStarted { instance: InstanceInfo { id, plugin } });
        self.send(peer, RelayMsg::Activated { req, instance: id });
        self.events.push_back(RelayEvent::InstanceStarted { instance: id, room: room.to_owned() });
    }

    fn broadcast_from(&mut self, instance: InstanceId, retain: Retain, body: Bytes) {
        let Some(inst) = self.instances.get_mut(&instance) else { return };
        let room_name = inst.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else { return };
        match retain {
            Retain::No => {}
            Retain::Keep(slot) => {
                let old = inst.retained.get(&slot).map_or(0, |(_, b)| b.len());
                let new_total = room.retained_bytes - old + body.len();
                if new_total > self.cfg.max_retained_bytes_per_room {
                    tracing::warn!(%instance, slot, room = %room_name, "retained state budget exceeded; message forwarded, not kept");
                } else {
                    room.retained_bytes = new_total;
                    self.next_order += 1;
                    inst.retained.insert(slot, (self.next_order, body.clone()));
                }
            }
            Retain::Forget(slot) => {
                if let Some((_, b)) = inst.retained.remove(&slot) {
                    room.retained_bytes -= b.len();
                }
            }
        }
        self.send_room(&room_name, &RelayMsg::FromInstance { instance, scope: Scope::Room, body });
    }

    /// Stops an instance: the room's users are told, its streams finished, its retained state
    /// dropped, and (if `tell_host`) its host is told to stop it.
    fn stop_instance(&mut self, instance: InstanceId, reason: StopReason, tell_host: bool) {
        let Some(inst) = self.instances.remove(&instance) else { return };
        let mut retained_bytes = 0;
        for (_, b) in inst.retained.values() {
            retained_bytes += b.len();
        }
        let frame_bytes: usize = inst.channels.values().map(Channel::retained_len).sum();
        if let Some(room) = self.rooms.get_mut(&inst.room) {
            room.instances.remove(&instance);
            room.retained_bytes -= retained_bytes;
            room.retained_frame_bytes -= frame_bytes;
            // Complexes outlive their publisher: their channels' frames stay for late joiners.
            for (c, ch) in inst.channels.range(ROOM_CHANNELS..) {
                if let Some(key) = &ch.keyframe {
                    let mut frames = vec![key.clone()];
                    if !ch.chain_broken {
                        frames.extend(ch.chain.iter().cloned());
                    }
                    let orphan = Orphan { instance, frames };
                    room.retained_frame_bytes += orphan.len();
                    if let Some(old) = room.orphans.insert(*c, orphan) {
                        room.retained_frame_bytes -= old.len();
                    }
                }
            }
        }
        for ch in inst.channels.values() {
            if let Some(s) = ch.in_stream {
                self.in_streams.remove(&s);
            }
            for (peer, stream) in &ch.out {
                self.transmits.push_back((*peer, Outgoing::FinishStream { stream: *stream }));
            }
        }
        self.drop_uplinks(|u| u.instance == instance);
        if tell_host && self.peers.contains_key(&inst.host_peer) {
            self.send(inst.host_peer, RelayMsg::StopInstance { instance, reason: reason.clone() });
        }
        tracing::info!(%instance, room = %inst.room, ?reason, "instance stopped");
        self.send_room(&inst.room, &RelayMsg::InstanceStopped { instance, reason: reason.clone() });
        self.events.push_back(RelayEvent::InstanceStopped { instance, reason });
    }

    /// A peer opened a frame stream. `Frames` is accepted from a plugin host only for a live
    /// instance of its own plugins, once per channel at a time; `Uplink` from a session client
    /// only to an instance of its own room (another room's instance is refused quietly, as
    /// `ToInstance` to it is dropped), at most [`RelayConfig::max_uplinks_per_user`] at once.
    pub fn handle_stream_opened(&mut self, peer: PeerId, head: StreamHead, _now: Instant) -> Option<InStream> {
        let (instance, channel) = match head {
            StreamHead::Frames { instance, channel } => (instance, channel),
            StreamHead::Uplink { instance, channel } => return self.uplink_opened(peer, instance, channel),
            StreamHead::FromUser { .. } => {
                self.close(peer, "FromUser streams are opened by the relay only".into());
                return None;
            }
        };
        if !matches!(self.peers.get(&peer), Some(Peer::Host { .. })) {
            self.close(peer, "only plugin hosts open frame streams".into());
            return None;
        }
        if !self.own_instance(peer, instance) {
            return None;
        }
        let max_channels = self.cfg.max_channels_per_instance;
        let inst = self.instances.get_mut(&instance)?;
        if !inst.channels.contains_key(&channel) && inst.channels.len() >= max_channels {
            self.close(peer, format!("{instance} opened more than {max_channels} frame channels"));
            return None;
        }
        let ch = inst.channels.entry(channel).or_default();
        if ch.in_stream.is_some() {
            self.close(peer, format!("{instance} opened channel {channel} twice"));
            return None;
        }
        let id = InStream(self.next_stream);
        self.next_stream += 1;
        ch.in_stream = Some(id);
        self.in_streams.insert(id, (peer, instance, channel));
        Some(id)
    }

    /// One codec frame (its 32-byte header parsed by the driver, `bytes` = header and payload
    /// exactly as received). The payload is never decoded: the frame is retained if the
    /// channel's late-join state needs it and forwarded to every user of the room.
    pub fn handle_frame(&mut self, stream: InStream, header: &FrameHeader, bytes: &Bytes) -> StreamVerdict {
        if self.uplinks.contains_key(&stream) {
            return self.uplink_frame(stream, header, bytes);
        }
        let Some(&(_, instance, channel)) = self.in_streams.get(&stream) else { return StreamVerdict::Stop };
        let max_chain = self.cfg.max_delta_chain_bytes;
        let Some(inst) = self.instances.get_mut(&instance) else { return StreamVerdict::Stop };
        let room_name = inst.room.clone();
        let Some(ch) = inst.channels.get_mut(&channel) else { return StreamVerdict::Stop };
        let is_key = is_keyframe(header);
        let class = FrameClass::of(header);
        let budget = self.cfg.max_retained_frame_bytes_per_room;
        let Some(room) = self.rooms.get_mut(&room_name) else { return StreamVerdict::Stop };
        let before = ch.retained_len();
        let others = room.retained_frame_bytes - before;
        if is_key {
            if others + bytes.len() <= budget {
                ch.keyframe = Some(bytes.clone());
                ch.keyframe_unkept = false;
            } else {
                tracing::warn!(%instance, channel, room = %room_name, "retained frame budget exceeded; keyframe forwarded, not kept");
                ch.keyframe = None;
                ch.keyframe_unkept = true;
            }
            ch.chain.clear();
            ch.chain_bytes = 0;
            ch.chain_broken = false;
            ch.keyframe_requested = false;
            ch.waiting.clear();
        } else if ch.keyframe.is_some() && !ch.chain_broken {
            if ch.chain_bytes + bytes.len() <= max_chain && others + before + bytes.len() <= budget {
                ch.chain_bytes += bytes.len();
                ch.chain.push(bytes.clone());
            } else {
                ch.chain.clear();
                ch.chain_bytes = 0;
                ch.chain_broken = true;
            }
        }
        room.retained_frame_bytes = others + ch.retained_len();
        let users: Vec<UserId> = self.rooms.get(&room_name).map(|r| r.users.clone()).unwrap_or_default();
        let mut sends = Vec::with_capacity(users.len() * 2);
        for user in users {
            let Some(peer) = self.users.get(&user).map(|u| u.peer) else { continue };
            if !is_key && ch.waiting.contains(&peer) {
                continue;
            }
            let stream = match ch.out.get(&peer) {
                Some(s) => *s,
                None => {
                    let s = OutStream(self.next_stream);
                    self.next_stream += 1;
                    ch.out.insert(peer, s);
                    sends.push((
                        peer,
                        Outgoing::OpenStream { stream: s, head: StreamHead::Frames { instance, channel } },
                    ));
                    s
                }
            };
            sends.push((peer, Outgoing::Frame { stream, bytes: bytes.clone(), class }));
        }
        self.transmits.extend(sends);
        if header.kind == FrameKind::Keyframe && channel >= ROOM_CHANNELS {
            self.supersede(&room_name, instance, channel);
        }
        StreamVerdict::Continue
    }

    /// A structure keyframe on room-wide channel `channel` of `instance`: the same channel of
    /// the room's other instances keeps nothing more for late joiners (the last publisher of a
    /// complex wins).
    fn supersede(&mut self, room_name: &str, instance: InstanceId, channel: u32) {
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        if let Some(o) = room.orphans.remove(&channel) {
            room.retained_frame_bytes -= o.len();
        }
        for other in &room.instances {
            if *other == instance {
                continue;
            }
            if let Some(ch) = self.instances.get_mut(other).and_then(|i| i.channels.get_mut(&channel)) {
                room.retained_frame_bytes -= ch.forget_retained();
            }
        }
    }

    /// `ForgetChannels` from `instance`'s host: its own listed channels and the room-wide ones
    /// of the room's other instances keep nothing more; a channel without an open stream goes
    /// away (its users' streams are finished), an open one when its stream ends.
    fn forget_channels(&mut self, instance: InstanceId, channels: &[u32]) {
        let Some(room_name) = self.instances.get(&instance).map(|i| i.room.clone()) else { return };
        let Some(room) = self.rooms.get_mut(&room_name) else { return };
        for c in channels {
            if let Some(o) = room.orphans.remove(c) {
                room.retained_frame_bytes -= o.len();
            }
        }
        let members: Vec<InstanceId> = room.instances.iter().copied().collect();
        let mut finish = Vec::new();
        for other in members {
            let Some(inst) = self.instances.get_mut(&other) else { continue };
            for &c in channels {
                if other != instance && c < ROOM_CHANNELS {
                    continue;
                }
                let Some(ch) = inst.channels.get_mut(&c) else { continue };
                room.retained_frame_bytes -= ch.forget_retained();
                if ch.in_stream.is_some() {
                    ch.forgotten = true;
                } else if let Some(ch) = inst.channels.remove(&c) {
                    finish.extend(ch.out);
                }
            }
        }
        for (peer, stream) in finish {
            self.transmits.push_back((peer, Outgoing::FinishStream { stream }));
        }
    }

    fn uplink_opened(&mut self, peer: PeerId, instance: InstanceId, channel: u32) -> Option<InStream> {
        let Some(Peer::Client { user }) = self.peers.get(&peer) else {
            self.close(peer, "only session clients open uplinks".into());
            return None;
        };
        let room = self.users.get(user).map(|u| u.room.clone())?;
        let Some(host_peer) = self.instances.get(&instance).filter(|i| i.room == room).map(|i| i.host_peer) else {
            tracing::debug!(?peer, %instance, "uplink to an instance outside the user's room refused");
            return None;
        };
        let open = self.uplinks.values().filter(|u| u.user_peer == peer).count();
        if open >= self.cfg.max_uplinks_per_user {
            self.close(peer, format!("more than {} uplinks open", self.cfg.max_uplinks_per_user));
            return None;
        }
        let user = *user;
        let id = InStream(self.next_stream);
        let out = OutStream(self.next_stream + 1);
        self.next_stream += 2;
        self.transmits.push_back((
            host_peer,
            Outgoing::OpenStream { stream: out, head: StreamHead::FromUser { instance, user, channel } },
        ));
        self.uplinks.insert(
            id,
            Uplink { user_peer: peer, instance, channel, host_peer, out, waiting: false, keyframe_requested: false },
        );
        Some(id)
    }

    fn uplink_frame(&mut self, stream: InStream, header: &FrameHeader, bytes: &Bytes) -> StreamVerdict {
        let Some(u) = self.uplinks.get_mut(&stream) else { return StreamVerdict::Stop };
        let class = FrameClass::of(header);
        if class == FrameClass::Key {
            u.waiting = false;
            u.keyframe_requested = false;
        } else if u.waiting {
            return StreamVerdict::Continue;
        }
        let (peer, out) = (u.host_peer, u.out);
        self.transmits.push_back((peer, Outgoing::Frame { stream: out, bytes: bytes.clone(), class }));
        StreamVerdict::Continue
    }

    /// Forgets the uplinks matching `pred`, finishing their streams to the hosts.
    fn drop_uplinks(&mut self, pred: impl Fn(&Uplink) -> bool) {
        let gone: Vec<InStream> = self.uplinks.iter().filter(|(_, u)| pred(u)).map(|(s, _)| *s).collect();
        for s in gone {
            if let Some(u) = self.uplinks.remove(&s) {
                self.transmits.push_back((u.host_peer, Outgoing::FinishStream { stream: u.out }));
            }
        }
    }

    /// An incoming frame stream ended (finished or reset). The channel's retained state stays
    /// for late joiners until the instance stops; the host may open the channel again.
    pub fn handle_stream_finished(&mut self, stream: InStream) {
        if let Some(u) = self.uplinks.remove(&stream) {
            self.transmits.push_back((u.host_peer, Outgoing::FinishStream { stream: u.out }));
            return;
        }
        let Some((_, instance, channel)) = self.in_streams.remove(&stream) else { return };
        let Some(inst) = self.instances.get_mut(&instance) else { return };
        if let Some(ch) = inst.channels.get_mut(&channel) {
            ch.in_stream = None;
            if ch.forgotten
                && let Some(ch) = inst.channels.remove(&channel)
            {
                for (peer, stream) in ch.out {
                    self.transmits.push_back((peer, Outgoing::FinishStream { stream }));
                }
            }
        }
    }

    /// The driver could not keep up sending `stream` to `peer` (its queue was over
    /// [`RelayConfig::max_queued_frame_bytes`]) and dropped a delta: that user now needs a
    /// keyframe. Until one arrives it gets no more deltas of the channel, so memory for a slow
    /// user stays bounded. The keyframe is asked for only once its queue has drained
    /// ([`RelayCore::handle_drained`]): a user that stopped reading never makes the plugin
    /// send keyframes to the whole room.
    pub fn handle_lagging(&mut self, peer: PeerId, stream: OutStream) {
        if let Some(u) = self.uplinks.values_mut().find(|u| u.host_peer == peer && u.out == stream) {
            u.waiting = true;
            return;
        }
        if let Some((_, _, ch)) = self.channel_of(peer, stream) {
            ch.waiting.insert(peer);
        }
    }

    /// The driver wrote everything queued on `stream` to `peer`. If that user is waiting for a
    /// keyframe, the instance is asked for one (once per channel until it arrives).
    pub fn handle_drained(&mut self, peer: PeerId, stream: OutStream) {
        if let Some(u) = self.uplinks.values_mut().find(|u| u.host_peer == peer && u.out == stream) {
            if u.waiting && !u.keyframe_requested {
                u.keyframe_requested = true;
                let (user_peer, instance, channel) = (u.user_peer, u.instance, u.channel);
                self.send(user_peer, RelayMsg::UplinkKeyframe { instance, channel });
            }
            return;
        }
        let Some((instance, channel, ch)) = self.channel_of(peer, stream) else { return };
        if ch.waiting.contains(&peer) && !ch.keyframe_requested {
            ch.keyframe_requested = true;
            self.request_keyframe(instance, channel);
        }
    }

    fn channel_of(&mut self, peer: PeerId, stream: OutStream) -> Option<(InstanceId, u32, &mut Channel)> {
        self.instances.iter_mut().find_map(|(id, inst)| {
            inst.channels.iter_mut().find(|(_, ch)| ch.out.get(&peer) == Some(&stream)).map(|(c, ch)| (*id, *c, ch))
        })
    }

    fn request_keyframe(&mut self, instance: InstanceId, channel: u32) {
        if let Some(host) = self.instances.get(&instance).map(|i| i.host_peer) {
            self.send(host, RelayMsg::SendKeyframe { instance, channel });
        }
    }

    fn send(&mut self, peer: PeerId, msg: RelayMsg) {
        self.transmits.push_back((peer, Outgoing::Message(msg)));
    }

    fn send_user(&mut self, user: UserId, msg: RelayMsg) {
        if let Some(peer) = self.users.get(&user).map(|u| u.peer) {
            self.send(peer, msg);
        }
    }

    fn send_room(&mut self, room: &str, msg: &RelayMsg) {
        let Some(r) = self.rooms.get(room) else { return };
        let peers: Vec<PeerId> = r.users.iter().filter_map(|u| self.users.get(u).map(|e| e.peer)).collect();
        for peer in peers {
            self.send(peer, msg.clone());
        }
    }

    /// Closes `peer` with `reason`: queued messages go first, then `Close`; the peer's state is
    /// forgotten at once (so nothing more is routed to or from it).
    fn close(&mut self, peer: PeerId, reason: String) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        tracing::warn!(?peer, %reason, "closing peer");
        self.forget_peer(peer);
        self.transmits.push_back((peer, Outgoing::Close { reason: reason.clone() }));
        self.events.push_back(RelayEvent::Closed { peer, reason });
    }

    fn forget_peer(&mut self, peer: PeerId) {
        let Some(state) = self.peers.remove(&peer) else { return };
        match state {
            Peer::Pending { .. } => {}
            Peer::Host { plugins, .. } => {
                let had_plugins = !plugins.is_empty();
                for plugin in plugins {
                    if let Some(p) = self.plugins.get_mut(&plugin) {
                        p.peer = None;
                    }
                    let instances: Vec<InstanceId> =
                        self.instances.iter().filter(|(_, i)| i.plugin == plugin).map(|(id, _)| *id).collect();
                    for i in instances {
                        self.stop_instance(i, StopReason::PluginStopped, false);
                    }
                }
                // Streams of this host that outlived their instances.
                self.in_streams.retain(|_, (p, _, _)| *p != peer);
                if had_plugins {
                    self.broadcast_plugins();
                }
            }
            Peer::Client { user } => {
                self.drop_uplinks(|u| u.user_peer == peer);
                self.leave_room(peer, user);
            }
        }
    }

    fn leave_room(&mut self, peer: PeerId, user: UserId) {
        let Some(entry) = self.users.remove(&user) else { return };
        for inst in self.instances.values_mut() {
            for ch in inst.channels.values_mut() {
                ch.out.remove(&peer);
                ch.waiting.remove(&peer);
            }
        }
        let Some(room) = self.rooms.get_mut(&entry.room) else { return };
        room.users.retain(|u| *u != user);
        if room.users.is_empty() {
            let instances: Vec<InstanceId> = room.instances.iter().copied().collect();
            for i in instances {
                self.stop_instance(i, StopReason::RoomEmpty, true);
            }
            self.rooms.remove(&entry.room);
            return;
        }
        let was_presenter = room.presenter == user;
        let next = room.users[0];
        if was_presenter {
            room.presenter = next;
        }
        let instances: Vec<InstanceId> = room.instances.iter().copied().collect();
        self.send_room(&entry.room, &RelayMsg::UserLeft { user });
        if !was_presenter {
            return;
        }
        tracing::info!(room = %entry.room, presenter = %next, "presenter handed over");
        self.send_room(&entry.room, &RelayMsg::PresenterChanged { presenter: next });
        for i in instances {
            if self.cfg.stop_instances_when_presenter_leaves {
                self.stop_instance(i, StopReason::PresenterLeft, true);
            } else if let Some(host) = self.instances.get(&i).map(|x| x.host_peer) {
                self.send(host, RelayMsg::InstancePresenter { instance: i, presenter: next });
            }
        }
    }
}

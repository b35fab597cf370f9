//! The relay's sans-IO core driven without sockets: handshake and key, registration, rooms and
//! presenter hand-over, instance lifecycle, routing isolation between rooms, late-join replay
//! of messages and frame channels, plugin disconnect, and hostile peers closed alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use molstream_engine::codec::header::{FrameHeader, FrameKind, seal};
use molstream_net::proto::{
    InstanceId, InstanceInfo, PROTOCOL_VERSION, PeerMsg, PluginId, PluginMeta, RelayMsg, Retain, Role, Scope,
    StopReason, StreamHead, UserId,
};
use molstream_net::relay::{
    InStream, OutStream, Outgoing, PeerId, PeerQueues, Popped, Pushed, RelayConfig, RelayCore, RelayEvent,
    StreamVerdict,
};

const KEY: &str = "correct horse battery staple";

struct Harness {
    core: RelayCore,
    now: Instant,
    next_peer: u64,
    out: HashMap<PeerId, Vec<Outgoing>>,
}

impl Harness {
    fn new() -> Self {
        Self::with(RelayConfig { plugin_key: KEY.into(), ..RelayConfig::default() })
    }

    fn with(cfg: RelayConfig) -> Self {
        Self { core: RelayCore::new(cfg), now: Instant::now(), next_peer: 1, out: HashMap::new() }
    }

    fn pump(&mut self) {
        while let Some((peer, o)) = self.core.poll_transmit() {
            self.out.entry(peer).or_default().push(o);
        }
    }

    fn connect(&mut self) -> PeerId {
        let p = PeerId(self.next_peer);
        self.next_peer += 1;
        self.core.handle_connected(p, self.now);
        p
    }

    fn raw(&mut self, peer: PeerId, bytes: Vec<u8>) {
        self.core.handle_message(peer, &Bytes::from(bytes), self.now);
        self.pump();
    }

    fn send(&mut self, peer: PeerId, msg: &PeerMsg) {
        self.raw(peer, msg.encode());
    }

    fn take(&mut self, peer: PeerId) -> Vec<Outgoing> {
        self.out.remove(&peer).unwrap_or_default()
    }

    /// Takes the control messages queued for `peer`, leaving stream operations queued.
    fn msgs(&mut self, peer: PeerId) -> Vec<RelayMsg> {
        let mut msgs = Vec::new();
        let mut rest = Vec::new();
        for o in self.take(peer) {
            match o {
                Outgoing::Message(m) => msgs.push(m),
                other => rest.push(other),
            }
        }
        if !rest.is_empty() {
            self.out.insert(peer, rest);
        }
        msgs
    }

    fn host(&mut self) -> PeerId {
        self.host_named("host-a")
    }

    fn host_named(&mut self, host: &str) -> PeerId {
        let p = self.connect();
        self.send(
            p,
            &PeerMsg::Hello {
                version: PROTOCOL_VERSION,
                role: Role::PluginHost { key: KEY.into(), host: host.into() },
            },
        );
        assert!(matches!(self.msgs(p)[..], [RelayMsg::Welcome { user: None, .. }]));
        p
    }

    fn client(&mut self, room: &str, user: &str) -> (PeerId, UserId) {
        let p = self.connect();
        self.send(
            p,
            &PeerMsg::Hello {
                version: PROTOCOL_VERSION,
                role: Role::SessionClient { room: room.into(), user: user.into() },
            },
        );
        let msgs = self.msgs(p);
        let Some(RelayMsg::Welcome { user: Some(id), .. }) = msgs.first() else { panic!("no welcome: {msgs:?}") };
        assert!(matches!(msgs.get(1), Some(RelayMsg::RoomState { .. })), "{msgs:?}");
        assert!(matches!(msgs.get(2), Some(RelayMsg::Plugins { .. })), "{msgs:?}");
        (p, *id)
    }

    fn register(&mut self, host: PeerId, name: &str) -> PluginId {
        let meta = PluginMeta { name: name.into(), category: "test".into(), ..PluginMeta::default() };
        self.send(host, &PeerMsg::RegisterPlugin { local: 7, meta });
        match self.msgs(host)[..] {
            [RelayMsg::Registered { local: 7, plugin }] => plugin,
            ref other => panic!("registration: {other:?}"),
        }
    }

    /// Activates `plugin` from `client` and returns the instance; drains everyone's queues.
    fn activate(&mut self, client: PeerId, plugin: PluginId) -> InstanceId {
        self.send(client, &PeerMsg::Activate { req: 99, plugin });
        let msgs = self.msgs(client);
        let id = msgs
            .iter()
            .find_map(|m| match m {
                RelayMsg::Activated { req: 99, instance } => Some(*instance),
                _ => None,
            })
            .unwrap_or_else(|| panic!("not activated: {msgs:?}"));
        self.out.clear();
        id
    }

    fn closed(&mut self, peer: PeerId) -> Option<String> {
        self.take(peer).into_iter().find_map(|o| match o {
            Outgoing::Close { reason } => Some(reason),
            _ => None,
        })
    }
}

fn frame(kind: FrameKind, seq: u32, base: u32, payload: &[u8]) -> (FrameHeader, Bytes) {
    let h = FrameHeader {
        kind,
        precision: 2,
        flags: 0,
        stream_id: 1,
        seq,
        base_seq: base,
        atom_count: 3,
        payload_len: 0,
        checksum: 0,
    };
    let mut out = Vec::new();
    let h = seal(h, payload, false, &mut out);
    (h, Bytes::from(out))
}

fn frames_of(outs: &[Outgoing]) -> Vec<Bytes> {
    outs.iter()
        .filter_map(|o| match o {
            Outgoing::Frame { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn wrong_key_is_refused_with_the_reason_and_nothing_else() {
    let mut h = Harness::new();
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello { version: PROTOCOL_VERSION, role: Role::PluginHost { key: "nope".into(), host: "h".into() } },
    );
    let out = h.take(p);
    assert_eq!(
        out,
        vec![
            Outgoing::Message(RelayMsg::Refused { reason: "wrong plugin key".into() }),
            Outgoing::Close { reason: "wrong plugin key".into() },
        ]
    );
    assert_eq!(h.core.peer_count(), 0);
    // A key that is a prefix of the right one is wrong too.
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
            role: Role::PluginHost { key: KEY[..5].into(), host: "h".into() },
        },
    );
    assert_eq!(h.closed(p).as_deref(), Some("wrong plugin key"));
}

#[test]
fn relay_without_a_key_refuses_every_host() {
    let mut h = Harness::with(RelayConfig::default());
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello { version: PROTOCOL_VERSION, role: Role::PluginHost { key: String::new(), host: "h".into() } },
    );
    assert_eq!(h.closed(p).as_deref(), Some("wrong plugin key"));
}

#[test]
fn wrong_version_and_non_hello_first_messages_are_refused() {
    let mut h = Harness::new();
    let p = h.connect();
    h.send(p, &PeerMsg::Hello { version: 2, role: Role::SessionClient { room: "r".into(), user: "u".into() } });
    let msgs = h.msgs(p);
    assert_eq!(
        msgs,
        vec![RelayMsg::Refused { reason: "unsupported protocol version 2; this relay speaks version 1".into() }]
    );
    let p = h.connect();
    h.send(p, &PeerMsg::Activate { req: 1, plugin: PluginId(1) });
    assert_eq!(h.msgs(p), vec![RelayMsg::Refused { reason: "expected Hello as the first message".into() }]);
    let p = h.connect();
    h.raw(p, vec![1, 1, 2, 200]);
    let msgs = h.msgs(p);
    assert!(matches!(&msgs[..], [RelayMsg::Refused { reason }] if reason.starts_with("malformed Hello")), "{msgs:?}");
    assert_eq!(h.core.peer_count(), 0);
}

#[test]
fn handshake_timeout_closes_silent_peers_only() {
    let mut h = Harness::new();
    let silent = h.connect();
    let (client, _) = h.client("lab", "ada");
    assert_eq!(h.core.poll_timeout(), Some(h.now + Duration::from_secs(10)));
    h.now += Duration::from_secs(11);
    h.core.handle_timeout(h.now);
    h.pump();
    assert!(h.closed(silent).unwrap().contains("handshake timeout"));
    assert!(h.take(client).is_empty());
    assert_eq!(h.core.peer_count(), 1);
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn registration_is_listed_to_sessions_and_keeps_its_identity() {
    let mut h = Harness::new();
    let (client, _) = h.client("lab", "ada");
    let host = h.host();
    let id = h.register(host, "loader");
    let msgs = h.msgs(client);
    let [RelayMsg::Plugins { plugins }] = &msgs[..] else { panic!("{msgs:?}") };
    assert_eq!(plugins.len(), 1);
    assert_eq!((plugins[0].id, plugins[0].host.as_str(), plugins[0].meta.name.as_str()), (id, "host-a", "loader"));
    // Same name on another host: another identity.
    let other = h.host_named("host-b");
    assert_ne!(h.register(other, "loader"), id);
    // Same name twice on one connection: refused.
    h.send(
        host,
        &PeerMsg::RegisterPlugin { local: 1, meta: PluginMeta { name: "loader".into(), ..PluginMeta::default() } },
    );
    assert!(matches!(h.msgs(host)[..], [RelayMsg::RegisterFailed { local: 1, .. }]));
    // The host restarts: the plugin comes back under the same id.
    h.core.handle_disconnected(host, h.now);
    h.pump();
    let msgs = h.msgs(client);
    let Some(RelayMsg::Plugins { plugins }) = msgs.last() else { panic!("{msgs:?}") };
    assert!(plugins.iter().all(|p| p.id != id), "offline plugin still listed");
    let host2 = h.host();
    assert_eq!(h.register(host2, "loader"), id);
}

#[test]
fn hosts_may_register_a_bounded_number_of_plugins() {
    let mut h =
        Harness::with(RelayConfig { plugin_key: KEY.into(), max_plugins_per_host: 2, ..RelayConfig::default() });
    let host = h.host();
    h.register(host, "a");
    h.register(host, "b");
    h.send(host, &PeerMsg::RegisterPlugin { local: 3, meta: PluginMeta { name: "c".into(), ..PluginMeta::default() } });
    assert!(
        matches!(&h.msgs(host)[..], [RelayMsg::RegisterFailed { local: 3, reason }] if reason.contains("at most 2"))
    );
}

#[test]
fn re_registration_from_a_new_connection_takes_over() {
    let mut h = Harness::new();
    let old = h.host();
    let id = h.register(old, "loader");
    let (client, _) = h.client("lab", "ada");
    let inst = h.activate(client, id);
    let new = h.host();
    assert_eq!(h.register(new, "loader"), id);
    assert!(h.msgs(old).contains(&RelayMsg::StopInstance { instance: inst, reason: StopReason::PluginStopped }));
    assert!(h.msgs(client).contains(&RelayMsg::InstanceStopped { instance: inst, reason: StopReason::PluginStopped }));
    // The new connection serves the next activation.
    let inst2 = h.activate(client, id);
    assert_ne!(inst2, inst);
    h.send(client, &PeerMsg::ToInstance { instance: inst2, body: Bytes::from_static(b"run") });
    assert_eq!(h.msgs(new).len(), 1);
    assert!(h.msgs(old).is_empty());
}

#[test]
fn rooms_presenter_and_hand_over() {
    let mut h = Harness::new();
    let (a, ua) = h.client("lab", "ada");
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
            role: Role::SessionClient { room: "lab".into(), user: "bob".into() },
        },
    );
    let msgs = h.msgs(p);
    let RelayMsg::RoomState { room, you, presenter, users, instances } = &msgs[1] else { panic!("{msgs:?}") };
    assert_eq!((room.as_str(), *presenter, users.len(), instances.len()), ("lab", ua, 2, 0));
    assert_eq!(users[1].id, *you);
    let ub = *you;
    assert!(matches!(&h.msgs(a)[..], [RelayMsg::UserJoined { user }] if user.id == ub && user.name == "bob"));
    let (c, uc) = h.client("lab", "cy");
    h.out.clear();
    // A non-presenter leaves: the others are told, the presenter stays.
    h.core.handle_disconnected(c, h.now);
    h.pump();
    assert_eq!(h.msgs(a), vec![RelayMsg::UserLeft { user: uc }]);
    // The presenter leaves: the next user in join order presents.
    h.core.handle_disconnected(a, h.now);
    h.pump();
    assert_eq!(
        h.msgs(p),
        vec![
            RelayMsg::UserLeft { user: uc },
            RelayMsg::UserLeft { user: ua },
            RelayMsg::PresenterChanged { presenter: ub }
        ]
    );
}

#[test]
fn instance_lifecycle_activate_input_deactivate() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "loader");
    let (a, ua) = h.client("lab", "ada");
    let (b, ub) = h.client("lab", "bob");
    h.out.clear();
    h.send(b, &PeerMsg::Activate { req: 5, plugin });
    let host_msgs = h.msgs(host);
    let [RelayMsg::StartInstance { instance, plugin: p, room, presenter }] = &host_msgs[..] else {
        panic!("{host_msgs:?}")
    };
    assert_eq!((*p, room.as_str(), *presenter), (plugin, "lab", ua));
    let instance = *instance;
    let started = RelayMsg::InstanceStarted { instance: InstanceInfo { id: instance, plugin } };
    assert_eq!(h.msgs(a), vec![started.clone()]);
    assert_eq!(h.msgs(b), vec![started, RelayMsg::Activated { req: 5, instance }]);
    // Activating again returns the running instance; no second start.
    h.send(a, &PeerMsg::Activate { req: 6, plugin });
    assert_eq!(h.msgs(a), vec![RelayMsg::Activated { req: 6, instance }]);
    assert!(h.msgs(host).is_empty());
    // Input is stamped with its sender.
    h.send(b, &PeerMsg::ToInstance { instance, body: Bytes::from_static(b"run") });
    assert_eq!(h.msgs(host), vec![RelayMsg::InstanceInput { instance, from: ub, body: Bytes::from_static(b"run") }]);
    // An unknown plugin cannot be activated.
    h.send(a, &PeerMsg::Activate { req: 7, plugin: PluginId(999) });
    assert!(matches!(&h.msgs(a)[..], [RelayMsg::RequestFailed { req: 7, .. }]));
    // Deactivation stops it for the host and the room.
    h.send(a, &PeerMsg::Deactivate { req: 8, instance });
    let reason = StopReason::Deactivated { by: ua };
    assert_eq!(h.msgs(host), vec![RelayMsg::StopInstance { instance, reason: reason.clone() }]);
    assert_eq!(h.msgs(b), vec![RelayMsg::InstanceStopped { instance, reason }]);
    assert_eq!(h.core.instance_count(), 0);
    h.out.clear();
    // Messages for the stopped instance are dropped without closing anyone.
    h.send(host, &PeerMsg::ToRoom { instance, retain: Retain::No, body: Bytes::new() });
    h.send(a, &PeerMsg::ToInstance { instance, body: Bytes::new() });
    assert!(h.take(host).is_empty() && h.take(a).is_empty() && h.take(b).is_empty());
}

#[test]
fn presenter_leaving_stops_instances_by_default() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "loader");
    let (a, _) = h.client("lab", "ada");
    let (b, ub) = h.client("lab", "bob");
    let inst = h.activate(b, plugin);
    h.core.handle_disconnected(a, h.now);
    h.pump();
    assert_eq!(h.msgs(host), vec![RelayMsg::StopInstance { instance: inst, reason: StopReason::PresenterLeft }]);
    let msgs = h.msgs(b);
    assert!(msgs.contains(&RelayMsg::PresenterChanged { presenter: ub }));
    assert!(msgs.contains(&RelayMsg::InstanceStopped { instance: inst, reason: StopReason::PresenterLeft }));
    // The room lives on and can run the plugin again.
    let again = h.activate(b, plugin);
    assert_ne!(again, inst);
}

#[test]
fn presenter_hand_over_can_keep_instances() {
    let cfg =
        RelayConfig { plugin_key: KEY.into(), stop_instances_when_presenter_leaves: false, ..RelayConfig::default() };
    let mut h = Harness::with(cfg);
    let host = h.host();
    let plugin = h.register(host, "loader");
    let (a, _) = h.client("lab", "ada");
    let (b, ub) = h.client("lab", "bob");
    let inst = h.activate(a, plugin);
    h.core.handle_disconnected(a, h.now);
    h.pump();
    assert_eq!(h.msgs(host), vec![RelayMsg::InstancePresenter { instance: inst, presenter: ub }]);
    assert_eq!(h.core.instance_count(), 1);
    // Workspace requests now reach the new presenter.
    h.send(host, &PeerMsg::ToPresenter { instance: inst, body: Bytes::from_static(b"ws?") });
    assert!(h.msgs(b).contains(&RelayMsg::FromInstance {
        instance: inst,
        scope: Scope::Presenter,
        body: Bytes::from_static(b"ws?")
    }));
}

#[test]
fn last_user_leaving_stops_the_rooms_instances() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "loader");
    let (a, _) = h.client("lab", "ada");
    let inst = h.activate(a, plugin);
    h.core.handle_disconnected(a, h.now);
    h.pump();
    assert_eq!(h.msgs(host), vec![RelayMsg::StopInstance { instance: inst, reason: StopReason::RoomEmpty }]);
    // The room is gone: a new user there presents.
    assert_eq!(h.core.instance_count(), 0);
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
            role: Role::SessionClient { room: "lab".into(), user: "bob".into() },
        },
    );
    let msgs = h.msgs(p);
    let RelayMsg::RoomState { you, presenter, users, instances, .. } = &msgs[1] else { panic!("{msgs:?}") };
    assert_eq!((you, users.len(), instances.len()), (presenter, 1, 0));
}

#[test]
fn sessions_never_reach_other_rooms_instances() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "loader");
    let (a, ua) = h.client("room-a", "ada");
    let (a2, _) = h.client("room-a", "al");
    let (b, ub) = h.client("room-b", "bob");
    let inst_a = h.activate(a, plugin);
    // The host saw only room-a so far.
    let inst_b = h.activate(b, plugin);
    assert_ne!(inst_a, inst_b);
    // Bob addresses Ada's instance: nothing reaches the host, and deactivation fails the
    // same way as for an instance that does not exist.
    h.send(b, &PeerMsg::ToInstance { instance: inst_a, body: Bytes::from_static(b"steal") });
    assert!(h.msgs(host).is_empty());
    h.send(b, &PeerMsg::Deactivate { req: 1, instance: inst_a });
    assert_eq!(h.msgs(b), vec![RelayMsg::RequestFailed { req: 1, reason: format!("no {inst_a} in this room") }]);
    assert_eq!(h.core.instance_count(), 2);
    // Instance A's room messages reach room-a only; B's reach room-b only.
    h.send(host, &PeerMsg::ToRoom { instance: inst_a, retain: Retain::No, body: Bytes::from_static(b"a") });
    let from_a = RelayMsg::FromInstance { instance: inst_a, scope: Scope::Room, body: Bytes::from_static(b"a") };
    assert_eq!(h.msgs(a), vec![from_a.clone()]);
    assert_eq!(h.msgs(a2), vec![from_a]);
    assert!(h.msgs(b).is_empty());
    // A direct message from instance A to a user of room-b is dropped.
    h.send(host, &PeerMsg::ToUser { instance: inst_a, user: ub, body: Bytes::from_static(b"leak") });
    assert!(h.msgs(b).is_empty());
    h.send(host, &PeerMsg::ToUser { instance: inst_a, user: ua, body: Bytes::from_static(b"hi") });
    assert_eq!(
        h.msgs(a),
        vec![RelayMsg::FromInstance { instance: inst_a, scope: Scope::Direct, body: Bytes::from_static(b"hi") }]
    );
    // Input to the plugin only ever comes from the instance's own room.
    h.send(b, &PeerMsg::ToInstance { instance: inst_b, body: Bytes::from_static(b"mine") });
    assert_eq!(
        h.msgs(host),
        vec![RelayMsg::InstanceInput { instance: inst_b, from: ub, body: Bytes::from_static(b"mine") }]
    );
}

#[test]
fn a_host_cannot_speak_for_another_hosts_instance() {
    let mut h = Harness::new();
    let good = h.host_named("good");
    let plugin = h.register(good, "loader");
    let evil = h.host_named("evil");
    h.register(evil, "spy");
    let (a, _) = h.client("lab", "ada");
    let inst = h.activate(a, plugin);
    h.send(evil, &PeerMsg::ToRoom { instance: inst, retain: Retain::No, body: Bytes::from_static(b"forged") });
    assert!(h.closed(evil).unwrap().contains("belongs to another plugin host"));
    assert!(h.msgs(a).iter().all(|m| !matches!(m, RelayMsg::FromInstance { .. })));
    // The evil host's frame stream for that instance is refused too (it is already closed;
    // a fresh one is refused the same way).
    let evil2 = h.host_named("evil2");
    assert_eq!(h.core.handle_stream_opened(evil2, StreamHead::Frames { instance: inst, channel: 0 }, h.now), None);
    h.pump();
    assert!(h.closed(evil2).is_some());
    // The good host and the session go on.
    h.send(good, &PeerMsg::ToRoom { instance: inst, retain: Retain::No, body: Bytes::from_static(b"ok") });
    assert_eq!(h.msgs(a).len(), 1);
}

#[test]
fn malformed_or_misplaced_messages_close_only_their_sender() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "loader");
    let (a, ua) = h.client("lab", "ada");
    let (b, _) = h.client("lab", "bob");
    let inst = h.activate(a, plugin);
    // Garbage from bob.
    h.raw(b, vec![34, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert!(h.closed(b).unwrap().starts_with("malformed message"));
    // A client sending a host message; a host sending a client message; Hello twice.
    let (c, _) = h.client("lab", "cy");
    h.send(c, &PeerMsg::RegisterPlugin { local: 0, meta: PluginMeta { name: "x".into(), ..PluginMeta::default() } });
    assert!(h.closed(c).unwrap().contains("not a session client message"));
    let host2 = h.host_named("h2");
    h.send(host2, &PeerMsg::Activate { req: 1, plugin });
    assert!(h.closed(host2).unwrap().contains("not a plugin host message"));
    let (d, _) = h.client("lab", "dee");
    h.send(d, &PeerMsg::Hello { version: 1, role: Role::SessionClient { room: "x".into(), user: "y".into() } });
    assert_eq!(h.closed(d).as_deref(), Some("Hello sent twice"));
    // Ada and the host are untouched: the instance still runs and routes.
    assert_eq!(h.core.instance_count(), 1);
    h.out.clear();
    h.send(a, &PeerMsg::ToInstance { instance: inst, body: Bytes::from_static(b"run") });
    assert_eq!(
        h.msgs(host),
        vec![RelayMsg::InstanceInput { instance: inst, from: ua, body: Bytes::from_static(b"run") }]
    );
    h.send(a, &PeerMsg::Ping { nonce: 42 });
    assert_eq!(h.msgs(a), vec![RelayMsg::Pong { nonce: 42 }]);
    let closed: Vec<PeerId> = std::iter::from_fn(|| h.core.poll_event())
        .filter_map(|e| match e {
            RelayEvent::Closed { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    assert_eq!(closed, vec![b, c, host2, d]);
}

#[test]
fn plugin_disconnect_stops_its_instances_and_tells_the_sessions() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "streamer");
    let other_host = h.host_named("other");
    let other = h.register(other_host, "other");
    let (a, _) = h.client("lab", "ada");
    let (b, _) = h.client("lab2", "bob");
    let ia = h.activate(a, plugin);
    let ib = h.activate(b, plugin);
    let io = h.activate(a, other);
    let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: ia, channel: 0 }, h.now).unwrap();
    let (fh, fb) = frame(FrameKind::Keyframe, 0, 0, b"key");
    assert_eq!(h.core.handle_frame(s, &fh, &fb), StreamVerdict::Continue);
    h.pump();
    let Some(Outgoing::OpenStream { stream: out_a, .. }) = h.take(a).into_iter().next() else { panic!() };
    h.core.handle_disconnected(host, h.now);
    h.pump();
    let outs = h.take(a);
    assert!(outs.contains(&Outgoing::FinishStream { stream: out_a }));
    assert!(
        outs.contains(&Outgoing::Message(RelayMsg::InstanceStopped {
            instance: ia,
            reason: StopReason::PluginStopped
        }))
    );
    let Some(Outgoing::Message(RelayMsg::Plugins { plugins })) = outs.last() else { panic!("{outs:?}") };
    assert_eq!(plugins.iter().map(|p| p.id).collect::<Vec<_>>(), vec![other]);
    assert!(h.msgs(b).contains(&RelayMsg::InstanceStopped { instance: ib, reason: StopReason::PluginStopped }));
    // The other plugin's instance is untouched; frames on the dead stream are refused.
    assert_eq!(h.core.instance_count(), 1);
    let (fh, fb) = frame(FrameKind::PositionDelta, 1, 0, b"d");
    assert_eq!(h.core.handle_frame(s, &fh, &fb), StreamVerdict::Stop);
    h.send(a, &PeerMsg::ToInstance { instance: io, body: Bytes::new() });
    assert_eq!(h.msgs(other_host).len(), 1);
}

#[test]
fn late_joiners_get_retained_messages_in_update_order() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "menus");
    let (a, _) = h.client("lab", "ada");
    let inst = h.activate(a, plugin);
    let send = |h: &mut Harness, retain, body: &'static [u8]| {
        h.send(host, &PeerMsg::ToRoom { instance: inst, retain, body: Bytes::from_static(body) });
    };
    send(&mut h, Retain::Keep(1), b"menu v1");
    send(&mut h, Retain::Keep(2), b"shape 2");
    send(&mut h, Retain::No, b"notification");
    send(&mut h, Retain::Keep(3), b"shape 3");
    send(&mut h, Retain::Keep(1), b"menu v2");
    send(&mut h, Retain::Forget(2), b"destroy shape 2");
    assert_eq!(h.msgs(a).len(), 6, "the first user got everything live");
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
            role: Role::SessionClient { room: "lab".into(), user: "bob".into() },
        },
    );
    let bodies: Vec<Bytes> = h
        .msgs(p)
        .into_iter()
        .filter_map(|m| match m {
            RelayMsg::FromInstance { instance, scope: Scope::Room, body } if instance == inst => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, vec![Bytes::from_static(b"shape 3"), Bytes::from_static(b"menu v2")]);
}

#[test]
fn retained_state_is_bounded_per_room() {
    let cfg = RelayConfig { plugin_key: KEY.into(), max_retained_bytes_per_room: 10, ..RelayConfig::default() };
    let mut h = Harness::with(cfg);
    let host = h.host();
    let plugin = h.register(host, "menus");
    let (a, _) = h.client("lab", "ada");
    let inst = h.activate(a, plugin);
    for (slot, body) in [(1, &b"12345678"[..]), (2, b"abcdef"), (1, b"1234")] {
        h.send(host, &PeerMsg::ToRoom { instance: inst, retain: Retain::Keep(slot), body: Bytes::from_static(body) });
    }
    // Everything is forwarded live...
    assert_eq!(h.msgs(a).len(), 3);
    // ...but slot 2 did not fit next to the first slot 1, so a late joiner sees slot 1 only.
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
            role: Role::SessionClient { room: "lab".into(), user: "cy".into() },
        },
    );
    let bodies: Vec<Bytes> = h
        .msgs(p)
        .into_iter()
        .filter_map(|m| match m {
            RelayMsg::FromInstance { body, .. } => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, vec![Bytes::from_static(b"1234")]);
}

#[test]
fn frames_fan_out_and_late_joiners_get_keyframe_and_deltas() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "traj");
    let (a, _) = h.client("lab", "ada");
    let (other_room, _) = h.client("elsewhere", "eve");
    let inst = h.activate(a, plugin);
    let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 3 }, h.now).unwrap();
    // Before any keyframe nothing is retained, but live users get the frames.
    let frames: Vec<(FrameHeader, Bytes)> = vec![
        frame(FrameKind::Keyframe, 0, 0, b"keyframe-0"),
        frame(FrameKind::PositionDelta, 1, 0, b"delta-1"),
        frame(FrameKind::PositionDelta, 2, 1, b"delta-2"),
    ];
    for (fh, fb) in &frames {
        assert_eq!(h.core.handle_frame(s, fh, fb), StreamVerdict::Continue);
    }
    h.pump();
    let outs = h.take(a);
    assert!(matches!(
        outs[0],
        Outgoing::OpenStream { head: StreamHead::Frames { instance, channel: 3 }, .. } if instance == inst
    ));
    let sent: Vec<Bytes> = frames.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(frames_of(&outs), sent);
    assert!(h.take(other_room).is_empty(), "frames leaked to another room");
    // A late joiner: the keyframe and both deltas, in order, on one stream.
    let (p, _) = h.client("lab", "bob");
    let (d3h, d3) = frame(FrameKind::PositionDelta, 3, 2, b"delta-3");
    h.core.handle_frame(s, &d3h, &d3);
    h.pump();
    let outs = h.take(p);
    let opened: Vec<OutStream> = outs
        .iter()
        .filter_map(|o| match o {
            Outgoing::OpenStream { stream, .. } => Some(*stream),
            _ => None,
        })
        .collect();
    assert_eq!(opened.len(), 1);
    let mut expected = sent.clone();
    expected.push(d3);
    assert_eq!(frames_of(&outs), expected);
    // A channel can be reopened after its stream ends; a second open while live is hostile.
    h.core.handle_stream_finished(s);
    let s2: Option<InStream> =
        h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 3 }, h.now);
    assert!(s2.is_some());
    assert_eq!(h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 3 }, h.now), None);
    h.pump();
    assert!(h.closed(host).unwrap().contains("twice"));
}

#[test]
fn a_full_shape_frame_restarts_the_late_join_chain_like_a_keyframe() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "shapes");
    let (a, _) = h.client("lab", "ada");
    let inst = h.activate(a, plugin);
    let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 9 }, h.now).unwrap();
    let frames = [
        frame(FrameKind::Shapes, 0, 0, b"full-0"),
        frame(FrameKind::ShapeDelta, 1, 0, b"delta-1"),
        frame(FrameKind::Shapes, 2, 2, b"full-2"),
        frame(FrameKind::ShapeDelta, 3, 2, b"delta-3"),
    ];
    for (fh, fb) in &frames {
        assert_eq!(h.core.handle_frame(s, fh, fb), StreamVerdict::Continue);
    }
    h.pump();
    h.take(a);
    // A late joiner gets the last full frame and what chains on it, nothing older.
    let (p, _) = h.client("lab", "bob");
    h.pump();
    let got = frames_of(&h.take(p));
    assert_eq!(got, vec![frames[2].1.clone(), frames[3].1.clone()]);
}

#[test]
fn a_long_delta_chain_is_dropped_and_a_keyframe_requested() {
    let cfg = RelayConfig { plugin_key: KEY.into(), max_delta_chain_bytes: 100, ..RelayConfig::default() };
    let mut h = Harness::with(cfg);
    let host = h.host();
    let plugin = h.register(host, "traj");
    let (a, _) = h.client("lab", "ada");
    let inst = h.activate(a, plugin);
    let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 0 }, h.now).unwrap();
    let (kh, kb) = frame(FrameKind::Keyframe, 0, 0, b"key");
    h.core.handle_frame(s, &kh, &kb);
    for seq in 1..=3 {
        let (fh, fb) = frame(FrameKind::PositionDelta, seq, seq - 1, &[7; 40]);
        h.core.handle_frame(s, &fh, &fb);
    }
    h.pump();
    assert_eq!(frames_of(&h.take(a)).len(), 4, "live users get every frame");
    // 3 deltas of 72 bytes exceed the 100-byte chain: a late joiner gets the keyframe only,
    // waits for the next keyframe, and the host is asked for one (once).
    let (late, _) = h.client("lab", "bob");
    assert_eq!(frames_of(&h.take(late)), vec![kb]);
    assert_eq!(h.msgs(host), vec![RelayMsg::SendKeyframe { instance: inst, channel: 0 }]);
    let (fh, fb) = frame(FrameKind::PositionDelta, 4, 3, b"d4");
    h.core.handle_frame(s, &fh, &fb);
    let (kh2, kb2) = frame(FrameKind::Keyframe, 5, 5, b"key5");
    h.core.handle_frame(s, &kh2, &kb2);
    h.pump();
    assert_eq!(frames_of(&h.take(a)), vec![fb, kb2.clone()]);
    assert_eq!(frames_of(&h.take(late)), vec![kb2]);
}

#[test]
fn lagging_users_skip_deltas_until_the_next_keyframe() {
    let mut h = Harness::new();
    let host = h.host();
    let plugin = h.register(host, "traj");
    let (a, _) = h.client("lab", "ada");
    let (slow, _) = h.client("lab", "slow");
    let inst = h.activate(a, plugin);
    let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 0 }, h.now).unwrap();
    let (kh, kb) = frame(FrameKind::Keyframe, 0, 0, b"key");
    h.core.handle_frame(s, &kh, &kb);
    h.pump();
    let Some(Outgoing::OpenStream { stream: slow_stream, .. }) = h.take(slow).into_iter().next() else { panic!() };
    let Some(Outgoing::OpenStream { stream: a_stream, .. }) = h.take(a).into_iter().next() else { panic!() };
    h.out.clear();
    h.core.handle_lagging(slow, slow_stream);
    h.core.handle_lagging(slow, slow_stream);
    h.pump();
    // No keyframe is asked for while the slow user's queue is still full...
    assert!(h.msgs(host).is_empty());
    // ...only once it drained, and once.
    h.core.handle_drained(slow, slow_stream);
    h.core.handle_drained(slow, slow_stream);
    h.pump();
    assert_eq!(h.msgs(host), vec![RelayMsg::SendKeyframe { instance: inst, channel: 0 }]);
    // A drained user that is not waiting asks for nothing.
    h.core.handle_drained(a, a_stream);
    h.pump();
    assert!(h.msgs(host).is_empty());
    let (dh, db) = frame(FrameKind::PositionDelta, 1, 0, b"d1");
    h.core.handle_frame(s, &dh, &db);
    let (kh, kb) = frame(FrameKind::Keyframe, 2, 2, b"key2");
    h.core.handle_frame(s, &kh, &kb);
    h.pump();
    assert_eq!(frames_of(&h.take(a)), vec![db, kb.clone()]);
    assert_eq!(frames_of(&h.take(slow)), vec![kb]);
}

#[test]
fn clients_cannot_open_frame_streams_or_exceed_channel_limits() {
    let cfg = RelayConfig { plugin_key: KEY.into(), max_channels_per_instance: 2, ..RelayConfig::default() };
    let mut h = Harness::with(cfg);
    let host = h.host();
    let plugin = h.register(host, "traj");
    let (a, _) = h.client("lab", "ada");
    let (b, _) = h.client("lab", "bob");
    let inst = h.activate(a, plugin);
    assert_eq!(h.core.handle_stream_opened(b, StreamHead::Frames { instance: inst, channel: 0 }, h.now), None);
    h.pump();
    assert!(h.closed(b).unwrap().contains("only plugin hosts"));
    assert_eq!(h.core.instance_count(), 1);
    for c in 0..2 {
        assert!(h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: c }, h.now).is_some());
    }
    assert_eq!(h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 2 }, h.now), None);
    h.pump();
    assert!(h.closed(host).unwrap().contains("more than 2 frame channels"));
}

#[test]
fn retained_frames_are_bounded_per_room_and_released_with_their_instance() {
    // Frames here are 32 + 8 = 40 bytes: room for two keyframes, not three.
    let cfg = RelayConfig { plugin_key: KEY.into(), max_retained_frame_bytes_per_room: 100, ..RelayConfig::default() };
    let mut h = Harness::with(cfg);
    let host = h.host();
    let plugin = h.register(host, "traj");
    let other = h.register(host, "traj2");
    let (a, _) = h.client("lab", "ada");
    let inst = h.activate(a, plugin);
    let mut streams = Vec::new();
    for channel in 0..3 {
        let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel }, h.now).unwrap();
        let (kh, kb) = frame(FrameKind::Keyframe, 0, 0, b"keyframe");
        assert_eq!(kb.len(), 40);
        h.core.handle_frame(s, &kh, &kb);
        streams.push(s);
    }
    h.pump();
    assert_eq!(frames_of(&h.take(a)).len(), 3, "every keyframe is forwarded live");
    let join = |h: &mut Harness, user: &str| {
        let p = h.connect();
        h.send(
            p,
            &PeerMsg::Hello {
                version: PROTOCOL_VERSION,
                role: Role::SessionClient { room: "lab".into(), user: user.into() },
            },
        );
        let outs = h.take(p);
        (p, outs.iter().filter(|o| matches!(o, Outgoing::OpenStream { .. })).count())
    };
    let (bob, opened) = join(&mut h, "bob");
    assert_eq!(opened, 2, "only two channels fit the room's budget");
    // The joiner is not left without the third channel: the instance is asked for a fresh
    // keyframe (once, however many join meanwhile), and the joiner gets it.
    assert_eq!(h.msgs(host), vec![RelayMsg::SendKeyframe { instance: inst, channel: 2 }]);
    let (eve, _) = join(&mut h, "eve");
    assert!(h.msgs(host).is_empty(), "asked once until the keyframe comes");
    let (dh, db) = frame(FrameKind::PositionDelta, 1, 0, b"d1");
    h.core.handle_frame(streams[2], &dh, &db);
    h.pump();
    assert!(frames_of(&h.take(bob)).is_empty(), "a delta is of no use to a joiner without the keyframe");
    assert_eq!(frames_of(&h.take(a)), vec![db]);
    let (kh, kb) = frame(FrameKind::Keyframe, 2, 2, b"fresh-kf");
    h.core.handle_frame(streams[2], &kh, &kb);
    h.pump();
    for p in [bob, eve] {
        let outs = h.take(p);
        assert!(
            outs.iter().any(|o| matches!(o, Outgoing::OpenStream { head: StreamHead::Frames { channel: 2, .. }, .. }))
        );
        assert_eq!(frames_of(&outs), vec![kb.clone()]);
    }
    h.out.clear();
    // Stopping the instance releases its share: another instance's keyframes are kept again.
    h.send(a, &PeerMsg::Deactivate { req: 1, instance: inst });
    let inst2 = h.activate(a, other);
    let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst2, channel: 0 }, h.now).unwrap();
    let (kh, kb) = frame(FrameKind::Keyframe, 0, 0, b"keyframe");
    h.core.handle_frame(s, &kh, &kb);
    h.pump();
    h.out.clear();
    assert_eq!(join(&mut h, "cy").1, 1);
}

/// The driver's part, sans-IO: each peer's frames go into its [`PeerQueues`]; flow control's
/// verdicts go back to the core as the QUIC driver does. Returns the peers closed, with why.
fn deliver(h: &mut Harness, queues: &mut HashMap<PeerId, PeerQueues>) -> Vec<(PeerId, String)> {
    let mut closed = Vec::new();
    loop {
        h.pump();
        let outs: Vec<(PeerId, Vec<Outgoing>)> = h.out.drain().collect();
        if outs.is_empty() {
            return closed;
        }
        for (peer, list) in outs {
            for o in list {
                let q = queues.entry(peer).or_insert_with(|| {
                    let cfg = h.core.config();
                    PeerQueues::new(cfg.max_queued_frame_bytes, cfg.max_peer_backlog_bytes)
                });
                match o {
                    Outgoing::OpenStream { stream, .. } => q.open(stream),
                    Outgoing::Frame { stream, bytes, class } => match q.push(stream, bytes, class) {
                        Pushed::Dropped { started: true } => h.core.handle_lagging(peer, stream),
                        Pushed::Overflow { backlog } => h.core.handle_too_slow(peer, format!("too slow: {backlog}")),
                        _ => {}
                    },
                    Outgoing::FinishStream { stream } => q.finish(stream),
                    Outgoing::Close { reason } => closed.push((peer, reason)),
                    // Control messages are kept for the assertions.
                    Outgoing::Message(m) => CONTROL.with(|c| c.borrow_mut().push((peer, m))),
                }
            }
        }
    }
}

thread_local! {
    static CONTROL: std::cell::RefCell<Vec<(PeerId, RelayMsg)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn control_to(peer: PeerId) -> Vec<RelayMsg> {
    CONTROL.with(|c| {
        let mut all = c.borrow_mut();
        let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|(p, _)| *p == peer);
        *all = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    })
}

/// Everything a writer would write on every stream of `peer` now (a reader that keeps up).
fn drain_all(q: &mut PeerQueues, streams: &[OutStream]) -> Vec<Bytes> {
    let mut got = Vec::new();
    for s in streams {
        while let Popped::Frame(b) = q.pop(*s) {
            got.push(b);
        }
    }
    got
}

#[test]
fn a_stalled_user_loses_no_ordered_frame_and_is_closed_past_the_hard_bound() {
    // Soft bound 200 bytes of deltas per stream, hard bound 1000 bytes of backlog per peer.
    let cfg = RelayConfig {
        plugin_key: KEY.into(),
        max_queued_frame_bytes: 200,
        max_peer_backlog_bytes: 1000,
        ..RelayConfig::default()
    };
    let mut h = Harness::with(cfg);
    let host = h.host();
    let plugin = h.register(host, "edits");
    let (fast, _) = h.client("lab", "fast");
    let (slow, _) = h.client("lab", "slow");
    let inst = h.activate(fast, plugin);
    let mut queues: HashMap<PeerId, PeerQueues> = HashMap::new();
    let positions =
        h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 1 }, h.now).unwrap();
    let shapes = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 2 }, h.now).unwrap();
    let mut sent_shapes = Vec::new();
    let mut sent_positions = Vec::new();
    let send = |h: &mut Harness, s: InStream, f: (FrameHeader, Bytes), log: &mut Vec<Bytes>| {
        assert_eq!(h.core.handle_frame(s, &f.0, &f.1), StreamVerdict::Continue);
        log.push(f.1);
    };
    send(&mut h, positions, frame(FrameKind::Keyframe, 0, 0, b"key"), &mut sent_positions);
    send(&mut h, shapes, frame(FrameKind::Shapes, 0, 0, b"all shapes"), &mut sent_shapes);
    assert!(deliver(&mut h, &mut queues).is_empty());
    // Stream handles are small numbers: a writer for each (popping an unknown one is a no-op).
    let fast_streams: Vec<OutStream> = (1..64).map(OutStream).collect();
    let mut fast_got = drain_all(queues.get_mut(&fast).unwrap(), &fast_streams);
    // The stalled user reads nothing from here on. 40-byte frames: position deltas and shape
    // deltas interleaved, 10 of each (800 bytes of deltas, the hard bound not reached).
    for seq in 1..=10u32 {
        send(&mut h, positions, frame(FrameKind::PositionDelta, seq, seq - 1, b"posi"), &mut sent_positions);
        send(&mut h, shapes, frame(FrameKind::ShapeDelta, seq, seq - 1, b"edit"), &mut sent_shapes);
        assert!(deliver(&mut h, &mut queues).is_empty(), "nobody closed below the hard bound");
        fast_got.extend(drain_all(queues.get_mut(&fast).unwrap(), &fast_streams));
    }
    // The fast user got every frame of both channels, in order.
    let of = |got: &[Bytes], sent: &[Bytes]| got.iter().filter(|b| sent.contains(b)).cloned().collect::<Vec<_>>();
    assert_eq!(of(&fast_got, &sent_positions), sent_positions);
    assert_eq!(of(&fast_got, &sent_shapes), sent_shapes);
    // The stalled user: position deltas past the soft bound were coalesced (dropped, the
    // stream lags); no shape delta was dropped.
    let q = &queues[&slow];
    assert!(q.stats().coalesced > 0);
    assert_eq!(q.stats().superseded, 0);
    let held = q.backlog();
    assert!(held > 0 && held <= 1000, "backlog {held}");
    // Shape deltas go on: past the hard bound the stalled user is closed, with the reason;
    // the host and the fast user are not.
    let mut closed = Vec::new();
    for seq in 11..=40u32 {
        send(&mut h, shapes, frame(FrameKind::ShapeDelta, seq, seq - 1, b"edit"), &mut sent_shapes);
        closed.extend(deliver(&mut h, &mut queues));
        fast_got.extend(drain_all(queues.get_mut(&fast).unwrap(), &fast_streams));
        if !closed.is_empty() {
            break;
        }
    }
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].0, slow);
    assert!(closed[0].1.starts_with("too slow"), "{}", closed[0].1);
    assert!(control_to(fast).iter().any(|m| matches!(m, RelayMsg::UserLeft { .. })));
    // The room goes on for the fast user.
    send(&mut h, shapes, frame(FrameKind::ShapeDelta, 99, 40, b"late"), &mut sent_shapes);
    assert!(deliver(&mut h, &mut queues).is_empty());
    fast_got.extend(drain_all(queues.get_mut(&fast).unwrap(), &fast_streams));
    let shapes_got = of(&fast_got, &sent_shapes);
    assert_eq!(shapes_got.last(), sent_shapes.last());
    assert_eq!(shapes_got.len(), sent_shapes.len());
}

#[test]
fn a_lagging_user_drains_then_gets_a_keyframe_that_carries_the_superseded_edits() {
    let cfg = RelayConfig { plugin_key: KEY.into(), max_queued_frame_bytes: 100, ..RelayConfig::default() };
    let mut h = Harness::with(cfg);
    let host = h.host();
    let plugin = h.register(host, "traj");
    let (slow, _) = h.client("lab", "slow");
    let inst = h.activate(slow, plugin);
    let mut queues: HashMap<PeerId, PeerQueues> = HashMap::new();
    let s = h.core.handle_stream_opened(host, StreamHead::Frames { instance: inst, channel: 0 }, h.now).unwrap();
    let (kh, kb) = frame(FrameKind::Keyframe, 0, 0, b"key");
    h.core.handle_frame(s, &kh, &kb);
    // Deltas until the user lags (each 40 bytes: the third passes the 100-byte soft bound).
    for seq in 1..=3 {
        let (fh, fb) = frame(FrameKind::PositionDelta, seq, seq - 1, b"pos!");
        h.core.handle_frame(s, &fh, &fb);
    }
    // An attribute frame (ordered) on the lagging stream: the keyframe the user waits for
    // carries it, so it is not queued behind a broken chain.
    let (ah, ab) = frame(FrameKind::AtomAttributes, 4, 3, b"attr");
    h.core.handle_frame(s, &ah, &ab);
    assert!(deliver(&mut h, &mut queues).is_empty());
    let q = queues.get_mut(&slow).unwrap();
    assert_eq!((q.stats().coalesced, q.stats().superseded), (1, 1));
    assert!(control_to(host).is_empty(), "no keyframe asked while the queue is full");
    let stream =
        OutStream((0..64).find(|i| !matches!(q.pop(OutStream(*i)), Popped::Finished)).expect("the user's stream"));
    // Drain: the writer reports it once, and the core asks the instance for a keyframe.
    let mut last = q.pop(stream);
    while let Popped::Frame(_) = last {
        last = q.pop(stream);
    }
    assert_eq!(last, Popped::Empty { report_drained: true });
    assert_eq!(q.pop(stream), Popped::Empty { report_drained: false });
    h.core.handle_drained(slow, stream);
    assert!(deliver(&mut h, &mut queues).is_empty());
    assert_eq!(control_to(host), vec![RelayMsg::SendKeyframe { instance: inst, channel: 0 }]);
    let (kh, kb2) = frame(FrameKind::Keyframe, 5, 5, b"key5");
    h.core.handle_frame(s, &kh, &kb2);
    assert!(deliver(&mut h, &mut queues).is_empty());
    assert_eq!(queues.get_mut(&slow).unwrap().pop(stream), Popped::Frame(kb2));
}

#[test]
fn users_messages_reach_the_other_users_and_late_joiners() {
    let mut h = Harness::new();
    let host = h.host();
    let (a, ua) = h.client("lab", "ada");
    let (b, _) = h.client("lab", "bob");
    let (other, _) = h.client("elsewhere", "eve");
    h.out.clear();
    let edit = |retain, body: &'static [u8]| PeerMsg::ToUsers { retain, body: Bytes::from_static(body) };
    h.send(a, &edit(Retain::Keep(1), b"sel-1"));
    h.send(a, &edit(Retain::No, b"live"));
    h.send(a, &edit(Retain::Keep(2), b"ids"));
    h.send(a, &edit(Retain::Keep(1), b"sel-2"));
    let from = |body: &'static [u8]| RelayMsg::FromUser { user: ua, body: Bytes::from_static(body) };
    assert_eq!(h.msgs(b), vec![from(b"sel-1"), from(b"live"), from(b"ids"), from(b"sel-2")]);
    assert!(h.msgs(a).is_empty(), "the sender does not get its own");
    assert!(h.msgs(other).is_empty(), "another room hears nothing");
    // A late joiner gets the kept ones, in the order of their last update.
    let p = h.connect();
    h.send(
        p,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
            role: Role::SessionClient { room: "lab".into(), user: "cy".into() },
        },
    );
    let msgs = h.msgs(p);
    let replay: Vec<&RelayMsg> = msgs.iter().filter(|m| matches!(m, RelayMsg::FromUser { .. })).collect();
    assert_eq!(replay, vec![&from(b"ids"), &from(b"sel-2")]);
    // Forgotten, then not replayed; kept after the sender left.
    h.send(b, &PeerMsg::ToUsers { retain: Retain::Forget(2), body: Bytes::new() });
    h.send(a, &PeerMsg::Deactivate { req: 1, instance: InstanceId(77) });
    h.core.handle_disconnected(a, h.now);
    h.pump();
    h.out.clear();
    let (late, _) = {
        let p = h.connect();
        h.send(
            p,
            &PeerMsg::Hello {
                version: PROTOCOL_VERSION,
                role: Role::SessionClient { room: "lab".into(), user: "dan".into() },
            },
        );
        (p, ())
    };
    let replay: Vec<RelayMsg> = h.msgs(late).into_iter().filter(|m| matches!(m, RelayMsg::FromUser { .. })).collect();
    assert_eq!(replay, vec![from(b"sel-2")]);
    // Only session clients send it.
    h.send(host, &edit(Retain::No, b"x"));
    assert!(h.closed(host).unwrap().contains("not a plugin host message"));
}

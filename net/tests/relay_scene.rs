//! The relay's rules for the plugin API's streams, sans IO: uplinks from session clients to
//! instances (routing, isolation, limits, flow control), full shapes frames as keyframes,
//! room-wide complex channels (the last keyframe wins), `ForgetChannels`, and complexes that
//! outlive the instance that published them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use molstream_engine::codec::header::{FrameHeader, FrameKind, seal};
use molstream_net::proto::{
    InstanceId, PROTOCOL_VERSION, PeerMsg, PluginId, PluginMeta, ROOM_CHANNELS, RelayMsg, Role, SHAPES_CHANNEL,
    StreamHead, UserId,
};
use molstream_net::relay::{InStream, Outgoing, PeerId, RelayConfig, RelayCore, StreamVerdict};

const KEY: &str = "scene-key";

struct H {
    core: RelayCore,
    now: Instant,
    next: u64,
    out: HashMap<PeerId, Vec<Outgoing>>,
}

impl H {
    fn new(cfg: RelayConfig) -> Self {
        Self {
            core: RelayCore::new(RelayConfig { plugin_key: KEY.into(), ..cfg }),
            now: Instant::now(),
            next: 1,
            out: HashMap::new(),
        }
    }

    fn pump(&mut self) {
        while let Some((p, o)) = self.core.poll_transmit() {
            self.out.entry(p).or_default().push(o);
        }
    }

    fn send(&mut self, p: PeerId, m: &PeerMsg) {
        self.core.handle_message(p, &Bytes::from(m.encode()), self.now);
        self.pump();
    }

    fn take(&mut self, p: PeerId) -> Vec<Outgoing> {
        self.out.remove(&p).unwrap_or_default()
    }

    fn connect(&mut self, role: Role) -> PeerId {
        let p = PeerId(self.next);
        self.next += 1;
        self.core.handle_connected(p, self.now);
        self.send(p, &PeerMsg::Hello { version: PROTOCOL_VERSION, role });
        self.take(p);
        p
    }

    fn host(&mut self, name: &str) -> (PeerId, PluginId) {
        let h = self.connect(Role::PluginHost { key: KEY.into(), host: format!("host-{name}") });
        let meta = PluginMeta { name: name.into(), ..PluginMeta::default() };
        self.send(h, &PeerMsg::RegisterPlugin { local: 0, meta });
        let plugin = self
            .take(h)
            .into_iter()
            .find_map(|o| match o {
                Outgoing::Message(RelayMsg::Registered { plugin, .. }) => Some(plugin),
                _ => None,
            })
            .unwrap();
        (h, plugin)
    }

    /// A user joining `room`; what the relay sends it (the replay included) stays queued.
    fn client(&mut self, room: &str, user: &str) -> PeerId {
        let p = PeerId(self.next);
        self.next += 1;
        self.core.handle_connected(p, self.now);
        let role = Role::SessionClient { room: room.into(), user: user.into() };
        self.send(p, &PeerMsg::Hello { version: PROTOCOL_VERSION, role });
        p
    }

    fn user_of(&mut self, room: &str, user: &str) -> (PeerId, UserId) {
        let p = PeerId(self.next);
        self.next += 1;
        self.core.handle_connected(p, self.now);
        self.send(
            p,
            &PeerMsg::Hello {
                version: PROTOCOL_VERSION,
                role: Role::SessionClient { room: room.into(), user: user.into() },
            },
        );
        let id = self
            .take(p)
            .into_iter()
            .find_map(|o| match o {
                Outgoing::Message(RelayMsg::Welcome { user, .. }) => user,
                _ => None,
            })
            .unwrap();
        (p, id)
    }

    fn activate(&mut self, client: PeerId, plugin: PluginId) -> InstanceId {
        self.send(client, &PeerMsg::Activate { req: 1, plugin });
        let id = self
            .take(client)
            .into_iter()
            .find_map(|o| match o {
                Outgoing::Message(RelayMsg::Activated { instance, .. }) => Some(instance),
                _ => None,
            })
            .unwrap();
        self.out.clear();
        id
    }

    fn open(&mut self, p: PeerId, head: StreamHead) -> Option<InStream> {
        let s = self.core.handle_stream_opened(p, head, self.now);
        self.pump();
        s
    }

    fn frame(&mut self, s: InStream, f: &(FrameHeader, Bytes)) -> StreamVerdict {
        let v = self.core.handle_frame(s, &f.0, &f.1);
        self.pump();
        v
    }

    fn closed(&mut self, p: PeerId) -> Option<String> {
        self.take(p).into_iter().find_map(|o| match o {
            Outgoing::Close { reason } => Some(reason),
            _ => None,
        })
    }
}

fn frame(kind: FrameKind, stream_id: u32, seq: u32, base: u32, payload: &[u8]) -> (FrameHeader, Bytes) {
    let h = FrameHeader {
        kind,
        precision: 3,
        flags: 0,
        stream_id,
        seq,
        base_seq: base,
        atom_count: 1,
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

fn heads_of(outs: &[Outgoing]) -> Vec<StreamHead> {
    outs.iter()
        .filter_map(|o| match o {
            Outgoing::OpenStream { head, .. } => Some(*head),
            _ => None,
        })
        .collect()
}

#[test]
fn uplinks_reach_the_instances_host_stamped_with_the_user_and_nobody_else() {
    let mut h = H::new(RelayConfig { max_uplinks_per_user: 2, ..RelayConfig::default() });
    let (host, plugin) = h.host("p");
    let (ada, ada_id) = h.user_of("a", "ada");
    let bob = h.client("a", "bob");
    let (cy, _) = h.user_of("b", "cy");
    let inst = h.activate(ada, plugin);
    let up = h.open(ada, StreamHead::Uplink { instance: inst, channel: 7 }).unwrap();
    let outs = h.take(host);
    assert_eq!(heads_of(&outs), vec![StreamHead::FromUser { instance: inst, user: ada_id, channel: 7 }]);
    let key = frame(FrameKind::Keyframe, 1, 0, 0, b"k");
    let delta = frame(FrameKind::PositionDelta, 1, 1, 0, b"d");
    assert_eq!(h.frame(up, &key), StreamVerdict::Continue);
    assert_eq!(h.frame(up, &delta), StreamVerdict::Continue);
    assert_eq!(frames_of(&h.take(host)), vec![key.1.clone(), delta.1.clone()]);
    assert!(h.take(bob).is_empty(), "uplinks reach the instance only");
    h.core.handle_stream_finished(up);
    h.pump();
    assert!(matches!(h.take(host)[..], [Outgoing::FinishStream { .. }]));
    // Another room's instance: refused without closing (as ToInstance to it is dropped).
    assert_eq!(h.open(cy, StreamHead::Uplink { instance: inst, channel: 1 }), None);
    assert_eq!(h.closed(cy), None);
    assert!(h.take(host).is_empty());
    // A host may not open uplinks; nobody may open FromUser streams.
    let (host2, _) = h.host("q");
    assert_eq!(h.open(host2, StreamHead::Uplink { instance: inst, channel: 1 }), None);
    assert!(h.closed(host2).unwrap().contains("only session clients"));
    assert_eq!(h.open(bob, StreamHead::FromUser { instance: inst, user: ada_id, channel: 1 }), None);
    assert!(h.closed(bob).unwrap().contains("relay only"));
    // At most `max_uplinks_per_user` open at once.
    assert!(h.open(ada, StreamHead::Uplink { instance: inst, channel: 1 }).is_some());
    assert!(h.open(ada, StreamHead::Uplink { instance: inst, channel: 2 }).is_some());
    assert_eq!(h.open(ada, StreamHead::Uplink { instance: inst, channel: 3 }), None);
    assert!(h.closed(ada).unwrap().contains("more than 2 uplinks"));
}

#[test]
fn a_lagging_host_skips_uplink_deltas_and_the_user_is_asked_for_one_keyframe() {
    let mut h = H::new(RelayConfig::default());
    let (host, plugin) = h.host("p");
    let ada = h.client("a", "ada");
    let inst = h.activate(ada, plugin);
    let up = h.open(ada, StreamHead::Uplink { instance: inst, channel: 4 }).unwrap();
    let Some(Outgoing::OpenStream { stream: out, .. }) =
        h.take(host).into_iter().find(|o| matches!(o, Outgoing::OpenStream { .. }))
    else {
        panic!("no stream to the host")
    };
    h.frame(up, &frame(FrameKind::Keyframe, 1, 0, 0, b"k0"));
    h.take(host);
    h.core.handle_lagging(host, out);
    h.frame(up, &frame(FrameKind::PositionDelta, 1, 1, 0, b"d1"));
    assert!(frames_of(&h.take(host)).is_empty(), "deltas are skipped while the host lags");
    h.core.handle_drained(host, out);
    h.core.handle_drained(host, out);
    h.pump();
    let asks: Vec<_> =
        h.take(ada).into_iter().filter(|o| matches!(o, Outgoing::Message(RelayMsg::UplinkKeyframe { .. }))).collect();
    assert_eq!(asks, vec![Outgoing::Message(RelayMsg::UplinkKeyframe { instance: inst, channel: 4 })]);
    let k = frame(FrameKind::Keyframe, 1, 2, 2, b"k2");
    let d = frame(FrameKind::PositionDelta, 1, 3, 2, b"d3");
    h.frame(up, &k);
    h.frame(up, &d);
    assert_eq!(frames_of(&h.take(host)), vec![k.1, d.1]);
    // The instance stopping ends the uplink: later frames are refused.
    h.send(ada, &PeerMsg::Deactivate { req: 2, instance: inst });
    assert_eq!(h.frame(up, &frame(FrameKind::PositionDelta, 1, 4, 3, b"d4")), StreamVerdict::Stop);
}

#[test]
fn full_shapes_frames_are_keyframes_for_late_joiners() {
    let mut h = H::new(RelayConfig::default());
    let (host, plugin) = h.host("p");
    let ada = h.client("a", "ada");
    let inst = h.activate(ada, plugin);
    let s = h.open(host, StreamHead::Frames { instance: inst, channel: SHAPES_CHANNEL }).unwrap();
    let full = frame(FrameKind::Shapes, 9, 0, 0, b"all shapes");
    let update = frame(FrameKind::Shapes, 9, 1, 0, b"one more");
    let change = frame(FrameKind::ShapeDelta, 9, 2, 1, b"recolour");
    for f in [&full, &update, &change] {
        h.frame(s, f);
    }
    let late = h.client("a", "late");
    let outs = h.take(late);
    assert_eq!(heads_of(&outs), vec![StreamHead::Frames { instance: inst, channel: SHAPES_CHANNEL }]);
    assert_eq!(frames_of(&outs), vec![full.1, update.1, change.1]);
    // A new full frame replaces the chain.
    let full2 = frame(FrameKind::Shapes, 9, 3, 3, b"all again");
    h.frame(s, &full2);
    let later = h.client("a", "later");
    assert_eq!(frames_of(&h.take(later)), vec![full2.1]);
}

#[test]
fn the_last_keyframe_of_a_complex_wins_room_wide_but_private_channels_stay_apart() {
    let mut h = H::new(RelayConfig::default());
    let (ha, pa) = h.host("a");
    let (hb, pb) = h.host("b");
    let ada = h.client("lab", "ada");
    let ia = h.activate(ada, pa);
    let ib = h.activate(ada, pb);
    let c5 = ROOM_CHANNELS + 5;
    let sa = h.open(ha, StreamHead::Frames { instance: ia, channel: c5 }).unwrap();
    let sa_private = h.open(ha, StreamHead::Frames { instance: ia, channel: 5 }).unwrap();
    let sb = h.open(hb, StreamHead::Frames { instance: ib, channel: c5 }).unwrap();
    let sb_private = h.open(hb, StreamHead::Frames { instance: ib, channel: 5 }).unwrap();
    let ka = frame(FrameKind::Keyframe, 5, 0, 0, b"A's version");
    h.frame(sa, &ka);
    h.frame(sa, &frame(FrameKind::PositionDelta, 5, 1, 0, b"A moves"));
    h.frame(sa_private, &frame(FrameKind::Keyframe, 1, 0, 0, b"A private"));
    let kb = frame(FrameKind::Keyframe, 5, 0, 0, b"B's version");
    let db = frame(FrameKind::PositionDelta, 5, 1, 0, b"B moves");
    h.frame(sb, &kb);
    h.frame(sb, &db);
    h.frame(sb_private, &frame(FrameKind::Keyframe, 1, 0, 0, b"B private"));
    let late = h.client("lab", "late");
    let outs = h.take(late);
    let heads = heads_of(&outs);
    assert!(!heads.contains(&StreamHead::Frames { instance: ia, channel: c5 }), "A's complex channel was superseded");
    assert!(heads.contains(&StreamHead::Frames { instance: ib, channel: c5 }));
    assert!(heads.contains(&StreamHead::Frames { instance: ia, channel: 5 }), "private channels are not room-wide");
    assert!(heads.contains(&StreamHead::Frames { instance: ib, channel: 5 }));
    let frames = frames_of(&outs);
    assert!(frames.contains(&kb.1) && frames.contains(&db.1) && !frames.contains(&ka.1));
}

#[test]
fn forget_channels_drops_what_late_joiners_would_get_and_frees_the_channel() {
    let mut h = H::new(RelayConfig { max_channels_per_instance: 2, ..RelayConfig::default() });
    let (ha, pa) = h.host("a");
    let (hb, pb) = h.host("b");
    let ada = h.client("lab", "ada");
    let ia = h.activate(ada, pa);
    let ib = h.activate(ada, pb);
    let (c1, c2) = (ROOM_CHANNELS + 1, ROOM_CHANNELS + 2);
    let sa = h.open(ha, StreamHead::Frames { instance: ia, channel: c1 }).unwrap();
    let sb1 = h.open(hb, StreamHead::Frames { instance: ib, channel: 3 }).unwrap();
    let sb2 = h.open(hb, StreamHead::Frames { instance: ib, channel: c2 }).unwrap();
    h.frame(sa, &frame(FrameKind::Keyframe, 1, 0, 0, b"one"));
    h.frame(sb1, &frame(FrameKind::Keyframe, 3, 0, 0, b"B private"));
    h.frame(sb2, &frame(FrameKind::Keyframe, 2, 0, 0, b"two"));
    h.core.handle_stream_finished(sa);
    h.out.clear();
    // A forgets complex 1 (its own, closed: the channel goes away, users' streams finish),
    // complex 2 (B's, room-wide) and B's private channel 3 (not A's to forget).
    h.send(ha, &PeerMsg::ForgetChannels { instance: ia, channels: vec![c1, c2, 3] });
    assert!(h.take(ada).iter().any(|o| matches!(o, Outgoing::FinishStream { .. })));
    assert_eq!(h.closed(ha), None);
    let late = h.client("lab", "late");
    let heads = heads_of(&h.take(late));
    assert_eq!(heads, vec![StreamHead::Frames { instance: ib, channel: 3 }]);
    // B's open channel 2 stays open (and goes away when its stream ends); A's channel 1 is
    // free again, within the per-instance limit of 2 channels.
    assert!(h.open(ha, StreamHead::Frames { instance: ia, channel: c2 }).is_some());
    assert!(h.open(ha, StreamHead::Frames { instance: ia, channel: c1 }).is_some());
    assert_eq!(h.closed(ha), None);
    // A client may not send ForgetChannels.
    h.send(ada, &PeerMsg::ForgetChannels { instance: ia, channels: vec![c1] });
    assert!(h.closed(ada).unwrap().contains("not a session client message"));
}

#[test]
fn complexes_outlive_their_instance_until_superseded_or_forgotten() {
    let mut h = H::new(RelayConfig::default());
    let (ha, pa) = h.host("a");
    let (hb, pb) = h.host("b");
    let ada = h.client("lab", "ada");
    let ia = h.activate(ada, pa);
    let (c1, c2) = (ROOM_CHANNELS + 1, ROOM_CHANNELS + 2);
    let s1 = h.open(ha, StreamHead::Frames { instance: ia, channel: c1 }).unwrap();
    let s2 = h.open(ha, StreamHead::Frames { instance: ia, channel: c2 }).unwrap();
    let sp = h.open(ha, StreamHead::Frames { instance: ia, channel: SHAPES_CHANNEL }).unwrap();
    let k1 = frame(FrameKind::Keyframe, 1, 0, 0, b"one");
    let d1 = frame(FrameKind::PositionDelta, 1, 1, 0, b"one moves");
    let k2 = frame(FrameKind::Keyframe, 2, 0, 0, b"two");
    h.frame(s1, &k1);
    h.frame(s1, &d1);
    h.frame(s2, &k2);
    h.frame(sp, &frame(FrameKind::Shapes, 9, 0, 0, b"shapes"));
    h.send(ada, &PeerMsg::Deactivate { req: 3, instance: ia });
    let late = h.client("lab", "late");
    let outs = h.take(late);
    let heads = heads_of(&outs);
    assert_eq!(heads.len(), 2, "the complexes stay, the shapes go: {heads:?}");
    assert!(heads.contains(&StreamHead::Frames { instance: ia, channel: c1 }));
    let frames = frames_of(&outs);
    assert!(frames.contains(&k1.1) && frames.contains(&d1.1) && frames.contains(&k2.1));
    // Another instance publishes complex 1 anew, and forgets complex 2.
    let ib = h.activate(ada, pb);
    let sb = h.open(hb, StreamHead::Frames { instance: ib, channel: c1 }).unwrap();
    let kb = frame(FrameKind::Keyframe, 1, 0, 0, b"one, by B");
    h.frame(sb, &kb);
    h.send(hb, &PeerMsg::ForgetChannels { instance: ib, channels: vec![c2] });
    let later = h.client("lab", "later");
    let outs = h.take(later);
    assert_eq!(heads_of(&outs), vec![StreamHead::Frames { instance: ib, channel: c1 }]);
    assert_eq!(frames_of(&outs), vec![kb.1]);
    // The room empties: everything goes.
    for p in [ada, late, later] {
        h.core.handle_disconnected(p, h.now);
    }
    h.pump();
    let again = h.client("lab", "again");
    assert!(heads_of(&h.take(again)).is_empty());
}

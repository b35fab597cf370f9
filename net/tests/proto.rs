//! Control protocol: every message round-trips, and hostile bytes (truncated, oversize counts,
//! unknown tags, flipped bytes, trailing garbage) are typed errors, never panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use molstream_net::proto::wire::Writer;
use molstream_net::proto::{
    DecodeError, InstanceId, InstanceInfo, MAX_CONTROL_MESSAGE, MAX_TAGS, PROTOCOL_VERSION, PeerMsg, PluginId,
    PluginInfo, PluginMeta, RelayMsg, Retain, Role, Scope, StopReason, StreamHead, User, UserId,
};

fn meta() -> PluginMeta {
    PluginMeta {
        name: "Structure loader".into(),
        description: "Loads PDB and mmCIF files into the session — ünïcode too.".into(),
        category: "IO".into(),
        tags: vec!["pdb".into(), "mmcif".into()],
        has_advanced_settings: true,
        integrations: vec!["structure.prep".into(), "export".into()],
    }
}

fn peer_msgs() -> Vec<PeerMsg> {
    vec![
        PeerMsg::Hello {
            version: PROTOCOL_VERSION,
            role: Role::PluginHost { key: "s3cr3t".into(), host: "lab-host".into() },
        },
        PeerMsg::Hello { version: 7, role: Role::SessionClient { room: "room 1".into(), user: "ada".into() } },
        PeerMsg::Ping { nonce: u64::MAX },
        PeerMsg::RegisterPlugin { local: 3, meta: meta() },
        PeerMsg::RegisterPlugin { local: 0, meta: PluginMeta { name: "x".into(), ..PluginMeta::default() } },
        PeerMsg::UnregisterPlugin { plugin: PluginId(9) },
        PeerMsg::InstanceEnded { instance: InstanceId(1), error: None },
        PeerMsg::InstanceEnded { instance: InstanceId(1), error: Some("panicked at 'boom'".into()) },
        PeerMsg::ToRoom { instance: InstanceId(2), retain: Retain::No, body: Bytes::from_static(b"abc") },
        PeerMsg::ToRoom { instance: InstanceId(2), retain: Retain::Keep(1 << 40), body: Bytes::new() },
        PeerMsg::ToRoom { instance: InstanceId(2), retain: Retain::Forget(5), body: Bytes::from(vec![0; 70_000]) },
        PeerMsg::ToPresenter { instance: InstanceId(u32::MAX), body: Bytes::from_static(b"workspace?") },
        PeerMsg::ToUser { instance: InstanceId(4), user: UserId(2), body: Bytes::from_static(b"reply") },
        PeerMsg::Activate { req: 11, plugin: PluginId(1) },
        PeerMsg::Deactivate { req: 12, instance: InstanceId(3) },
        PeerMsg::ToInstance { instance: InstanceId(3), body: Bytes::from_static(b"run") },
        PeerMsg::KeyframeWanted { instance: InstanceId(3), channel: 7 },
        PeerMsg::ForgetChannels { instance: InstanceId(3), channels: vec![0x8000_0001, 7] },
        PeerMsg::ForgetChannels { instance: InstanceId(3), channels: vec![] },
        PeerMsg::ToUsers { retain: Retain::Keep(0x4500_0000_0000_0007), body: Bytes::from_static(b"edit") },
        PeerMsg::ToUsers { retain: Retain::No, body: Bytes::new() },
    ]
}

fn relay_msgs() -> Vec<RelayMsg> {
    let reasons = [
        StopReason::Deactivated { by: UserId(4) },
        StopReason::PresenterLeft,
        StopReason::RoomEmpty,
        StopReason::PluginStopped,
        StopReason::Crashed { message: "index out of bounds".into() },
        StopReason::Ended,
    ];
    let mut v = vec![
        RelayMsg::Welcome { version: PROTOCOL_VERSION, server: "molstream-relay 0.1.0".into(), user: None },
        RelayMsg::Welcome { version: PROTOCOL_VERSION, server: "r".into(), user: Some(UserId(1)) },
        RelayMsg::Refused { reason: "wrong plugin key".into() },
        RelayMsg::Pong { nonce: 0 },
        RelayMsg::Registered { local: 3, plugin: PluginId(8) },
        RelayMsg::RegisterFailed { local: 3, reason: "too many plugins".into() },
        RelayMsg::StartInstance {
            instance: InstanceId(5),
            plugin: PluginId(8),
            room: "lab".into(),
            presenter: UserId(1),
        },
        RelayMsg::InstanceInput { instance: InstanceId(5), from: UserId(2), body: Bytes::from_static(b"\0\x01") },
        RelayMsg::InstancePresenter { instance: InstanceId(5), presenter: UserId(3) },
        RelayMsg::SendKeyframe { instance: InstanceId(5), channel: 2 },
        RelayMsg::RoomState {
            room: "lab".into(),
            you: UserId(2),
            presenter: UserId(1),
            users: vec![User { id: UserId(1), name: "ada".into() }, User { id: UserId(2), name: "bob".into() }],
            instances: vec![InstanceInfo { id: InstanceId(5), plugin: PluginId(8) }],
        },
        RelayMsg::UserJoined { user: User { id: UserId(3), name: "cy".into() } },
        RelayMsg::UserLeft { user: UserId(3) },
        RelayMsg::PresenterChanged { presenter: UserId(2) },
        RelayMsg::Plugins { plugins: vec![] },
        RelayMsg::Plugins { plugins: vec![PluginInfo { id: PluginId(8), host: "h".into(), meta: meta() }] },
        RelayMsg::InstanceStarted { instance: InstanceInfo { id: InstanceId(5), plugin: PluginId(8) } },
        RelayMsg::FromInstance { instance: InstanceId(5), scope: Scope::Room, body: Bytes::from_static(b"s") },
        RelayMsg::FromInstance { instance: InstanceId(5), scope: Scope::Presenter, body: Bytes::new() },
        RelayMsg::FromInstance { instance: InstanceId(5), scope: Scope::Direct, body: Bytes::new() },
        RelayMsg::Activated { req: 1, instance: InstanceId(5) },
        RelayMsg::RequestFailed { req: 1, reason: "unknown plugin".into() },
        RelayMsg::UplinkKeyframe { instance: InstanceId(5), channel: 3 },
        RelayMsg::FromUser { user: UserId(3), body: Bytes::from_static(b"edit") },
    ];
    for reason in reasons {
        v.push(RelayMsg::StopInstance { instance: InstanceId(5), reason: reason.clone() });
        v.push(RelayMsg::InstanceStopped { instance: InstanceId(5), reason });
    }
    v
}

#[test]
fn every_message_round_trips() {
    for m in peer_msgs() {
        assert_eq!(PeerMsg::decode(&m.encode().into()).unwrap(), m);
    }
    for m in relay_msgs() {
        assert_eq!(RelayMsg::decode(&m.encode().into()).unwrap(), m);
    }
    for head in [
        StreamHead::Frames { instance: InstanceId(3), channel: u32::MAX },
        StreamHead::Uplink { instance: InstanceId(3), channel: 9 },
        StreamHead::FromUser { instance: InstanceId(3), user: UserId(4), channel: 9 },
    ] {
        assert_eq!(StreamHead::decode(&head.encode().into()).unwrap(), head);
        let b = head.encode();
        for cut in 0..b.len() {
            assert!(StreamHead::decode(&Bytes::copy_from_slice(&b[..cut])).is_err());
        }
    }
}

#[test]
fn every_truncation_is_an_error() {
    for m in peer_msgs() {
        let b = m.encode();
        for cut in 0..b.len() {
            assert!(PeerMsg::decode(&Bytes::copy_from_slice(&b[..cut])).is_err(), "{} cut at {cut}", m.name());
        }
    }
    for m in relay_msgs() {
        let b = m.encode();
        for cut in 0..b.len() {
            assert!(RelayMsg::decode(&Bytes::copy_from_slice(&b[..cut])).is_err(), "{m:?} cut at {cut}");
        }
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    for m in peer_msgs() {
        let mut b = m.encode();
        b.push(0);
        assert_eq!(PeerMsg::decode(&b.into()), Err(DecodeError::Trailing(1)));
    }
    for m in relay_msgs() {
        let mut b = m.encode();
        b.extend_from_slice(&[1, 2]);
        assert_eq!(RelayMsg::decode(&b.into()), Err(DecodeError::Trailing(2)));
    }
}

#[test]
fn unknown_tags_are_refused() {
    for tag in [0u8, 4, 15, 23, 31, 37, 47, 200, 255] {
        assert_eq!(
            PeerMsg::decode(&Bytes::from(vec![tag, 0, 0, 0])),
            Err(DecodeError::UnknownTag { what: "peer message", tag })
        );
    }
    for tag in [0u8, 4, 23, 44, 255] {
        assert!(matches!(RelayMsg::decode(&Bytes::from(vec![tag])), Err(DecodeError::UnknownTag { .. })));
    }
    // Unknown role inside a Hello, unknown retain, unknown stop reason.
    assert!(matches!(
        PeerMsg::decode(&Bytes::from(vec![1, 1, 3])),
        Err(DecodeError::UnknownTag { what: "role", tag: 3 })
    ));
    assert!(matches!(
        PeerMsg::decode(&Bytes::from(vec![19, 1, 9, 0])),
        Err(DecodeError::UnknownTag { what: "retain", tag: 9 })
    ));
    assert!(matches!(
        RelayMsg::decode(&Bytes::from(vec![38, 1, 6])),
        Err(DecodeError::UnknownTag { what: "stop reason", tag: 6 })
    ));
    assert!(matches!(StreamHead::decode(&Bytes::from(vec![4, 1, 1])), Err(DecodeError::UnknownTag { .. })));
}

#[test]
fn oversize_counts_are_refused_before_allocating() {
    // RegisterPlugin whose tag list claims u32::MAX entries in a short message.
    let mut w = Writer::new();
    w.u8(16);
    w.u32(0);
    w.str("name");
    w.str("");
    w.str("");
    w.varint(u64::from(u32::MAX));
    let err = PeerMsg::decode(&w.buf.into()).unwrap_err();
    assert!(matches!(err, DecodeError::TooLong { what: "tags", .. }), "{err}");
    // Over the field limit even when the bytes are there.
    let m = PeerMsg::RegisterPlugin {
        local: 0,
        meta: PluginMeta { name: "n".into(), tags: vec!["t".into(); MAX_TAGS + 1], ..PluginMeta::default() },
    };
    assert!(matches!(
        PeerMsg::decode(&m.encode().into()),
        Err(DecodeError::TooLong { what: "tags", value: 33, max: 32 })
    ));
    // A body length above the control limit.
    let mut w = Writer::new();
    w.u8(34);
    w.u32(1);
    w.varint(MAX_CONTROL_MESSAGE as u64 * 4);
    assert!(matches!(PeerMsg::decode(&w.buf.into()), Err(DecodeError::TooLong { what: "body", .. })));
    // A name above 128 bytes.
    let m = PeerMsg::Hello {
        version: PROTOCOL_VERSION,
        role: Role::SessionClient { room: "r".repeat(129), user: "u".into() },
    };
    assert!(matches!(PeerMsg::decode(&m.encode().into()), Err(DecodeError::TooLong { what: "room", .. })));
}

#[test]
fn invalid_names_are_refused() {
    let m = PeerMsg::Hello { version: 1, role: Role::SessionClient { room: "lab\n".into(), user: "ada".into() } };
    assert!(matches!(PeerMsg::decode(&m.encode().into()), Err(DecodeError::Invalid { what: "room", .. })));
    let m = PeerMsg::RegisterPlugin { local: 0, meta: PluginMeta::default() };
    assert!(matches!(PeerMsg::decode(&m.encode().into()), Err(DecodeError::Invalid { what: "plugin name", .. })));
}

#[test]
fn hello_version_is_readable_whatever_follows() {
    // A future client's Hello: the version is still the first field after the tag, so the
    // relay can read it (and refuse with a reason) even when the rest is unknown to it.
    let future = vec![1u8, 0x80, 0x01, 99, 1, 2, 3];
    let future_bytes = Bytes::from(future.clone());
    let mut r = molstream_net::proto::wire::Reader::new(&future_bytes);
    assert_eq!(r.u8("tag").unwrap(), 1);
    assert_eq!(r.u16("version").unwrap(), 128);
    assert_eq!(molstream_net::proto::msg::hello_version(&future), Some(128));
    assert_eq!(molstream_net::proto::msg::hello_version(&[2, 1]), None);
}

/// Deterministic xorshift so the mutation test is reproducible.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_mutations_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut ok = 0usize;
    let mut err = 0usize;
    let encoded: Vec<Vec<u8>> =
        peer_msgs().iter().map(PeerMsg::encode).chain(relay_msgs().iter().map(RelayMsg::encode)).collect();
    for base in &encoded {
        for _ in 0..300 {
            let mut b = base.clone();
            let flips = 1 + (xorshift(&mut seed) % 4) as usize;
            for _ in 0..flips {
                if b.is_empty() {
                    break;
                }
                let i = (xorshift(&mut seed) as usize) % b.len();
                b[i] = xorshift(&mut seed) as u8;
            }
            for r in [PeerMsg::decode(&b.clone().into()).is_ok(), RelayMsg::decode(&b.clone().into()).is_ok()] {
                if r {
                    ok += 1;
                } else {
                    err += 1;
                }
            }
            let _ = StreamHead::decode(&b.into());
        }
    }
    // Both outcomes occur: mutations that keep a valid message, and refusals.
    assert!(ok > 0 && err > 0, "ok {ok} err {err}");
}

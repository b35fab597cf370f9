//! # molstream-net
//!
//! Networking for molstream:
//! - [`framing`]: length-prefixed messages, sans-IO;
//! - [`proto`]: the versioned control protocol (messages, encoding, limits);
//! - [`relay`]: the relay's sans-IO core ([`relay::RelayCore`]) and its QUIC driver ([`relay::RelayServer`]);
//! - [`tls`]: the relay's self-signed identity, fingerprint pinning, transport settings;
//! - [`conn`]: connecting to a relay, the framed control stream, frame streams;
//! - [`api`]: the plugin API bodies carried between instances and sessions;
//! - [`menu`]: menus (layout tree, elements, updates, user events);
//! - [`host`]: the plugin host SDK ([`host::Plugin`], [`host::PluginHost`]);
//! - [`client`]: the session client ([`client::SessionClient`]);
//! - [`scene`]: a session client's copy of its room ([`scene::RoomScene`]): workspace, decoders,
//!   GPU buffers, shapes and effects;
//!
//! The protocol logic is plain code, fed bytes and polled for messages, so it is tested
//! deterministically and driven by thin async tasks. `net/PROTOCOL.md` documents the wire
//! protocol for implementers in other languages.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod client;
pub mod conn;
pub mod framing;
pub mod host;
pub mod menu;
pub mod proto;
pub mod relay;
pub mod scene;
pub mod tls;

/// ALPN protocol id spoken on molstream QUIC connections.
pub const ALPN: &[u8] = b"molstream/1";

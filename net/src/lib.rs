//! # molstream-net
//!
//! Networking for molstream:
//! - [`framing`]: length-prefixed messages, sans-IO;
//! - [`proto`]: the versioned control protocol (messages, encoding, limits);
//! - [`relay`]: the relay's sans-IO core ([`relay::RelayCore`]);
//!
//! The protocol logic is plain code, fed bytes and polled for messages, so it is tested
//! deterministically and driven by thin async tasks. `net/PROTOCOL.md` documents the wire
//! protocol for implementers in other languages.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod framing;
pub mod proto;
pub mod relay;

/// ALPN protocol id spoken on molstream QUIC connections.
pub const ALPN: &[u8] = b"molstream/1";

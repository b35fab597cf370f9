//! # molstream-net
//!
//! Networking for molstream. Today: the sans-IO message framing that every QUIC stream of the
//! relay, plugin SDK and session client carries ([`framing`]). It is plain code, fed bytes and
//! polled for messages, so it is tested deterministically and driven by thin async tasks.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod framing;

/// ALPN protocol id spoken on molstream QUIC connections.
pub const ALPN: &[u8] = b"molstream/1";

//! The molstream control protocol, version [`PROTOCOL_VERSION`]: typed ids, limits, and the
//! messages peers and the relay exchange ([`msg`]), in a compact hand-written binary encoding
//! ([`wire`]). `net/PROTOCOL.md` is the language-neutral description.
//!
//! Every control message travels framed by [`crate::framing`] (u32 length, then the message)
//! on the one bidirectional QUIC stream a peer opens; its first byte is a tag, and decoding
//! consumes exactly the message (trailing bytes are an error).
//!
//! ```
//! use molstream_net::proto::{PeerMsg, Role, PROTOCOL_VERSION};
//! let hello = PeerMsg::Hello {
//!     version: PROTOCOL_VERSION,
//!     role: Role::SessionClient { room: "lab".into(), user: "ada".into() },
//! };
//! let bytes = hello.encode();
//! assert_eq!(PeerMsg::decode(&bytes.into()).unwrap(), hello);
//! ```

pub mod msg;
pub mod wire;

pub use msg::{
    InstanceInfo, PeerMsg, PluginInfo, PluginMeta, RelayMsg, Retain, Role, Scope, StopReason, StreamHead, User,
};
pub use wire::DecodeError;

/// The protocol version this crate speaks. A `Hello` with another version is refused.
pub const PROTOCOL_VERSION: u16 = 1;

/// Largest framed control message after the handshake, in bytes. Larger payloads (keyframes,
/// meshes, files) travel on their own unidirectional QUIC streams.
pub const MAX_CONTROL_MESSAGE: usize = 1 << 20;
/// Largest framed message before the handshake completed (the `Hello`).
pub const MAX_HELLO_MESSAGE: usize = 4096;
/// Largest stream preamble ([`StreamHead`]).
pub const MAX_STREAM_HEAD: usize = 256;
/// Largest name (plugin, host, room, user, category, tag, integration), in bytes.
pub const MAX_NAME: usize = 128;
/// Largest free text (description, reasons), in bytes.
pub const MAX_TEXT: usize = 4096;
/// Largest plugin key, in bytes.
pub const MAX_KEY: usize = 1024;
/// Most tags per plugin.
pub const MAX_TAGS: usize = 32;
/// Most integrations per plugin.
pub const MAX_INTEGRATIONS: usize = 64;
/// Most entries in a list of users, plugins or instances.
pub const MAX_LIST: usize = 4096;
/// Largest opaque body carried by a control message.
pub const MAX_BODY: usize = MAX_CONTROL_MESSAGE - 64;
/// Frame channels from this number on name room-wide objects: channel `ROOM_CHANNELS + c`
/// carries complex `c` of the room's workspace, whichever instance publishes it. A keyframe
/// on such a channel supersedes what the relay keeps of the same channel of the room's other
/// instances (the last publisher wins, for users present and for late joiners alike).
/// Channels below are private to their instance.
pub const ROOM_CHANNELS: u32 = 0x8000_0000;
/// The private channel the plugin SDK sends an instance's shapes on (frame kinds 5 and 6).
pub const SHAPES_CHANNEL: u32 = ROOM_CHANNELS - 1;

macro_rules! wire_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
        pub struct $name(pub u32);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}#{}", stringify!($name), self.0)
            }
        }
    };
}

wire_id!(
    /// A registered plugin, assigned by the relay. A plugin that re-registers under the same
    /// identity (name and host) gets the same id back for as long as the relay runs.
    PluginId
);
wire_id!(
    /// A running plugin instance: one plugin serving one room. Never reused while the relay runs.
    InstanceId
);
wire_id!(
    /// A user of a room, assigned by the relay when the session client joins.
    UserId
);

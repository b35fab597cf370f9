//! The relay: [`core::RelayCore`], the sans-IO protocol logic, and the QUIC driver that runs it.

pub mod core;
pub mod queue;
pub mod quic;

pub use self::core::{InStream, OutStream, Outgoing, PeerId, RelayConfig, RelayCore, RelayEvent, StreamVerdict};
pub use self::queue::{FrameClass, PeerQueues, Popped, Pushed};
pub use self::quic::{RelayError, RelayServer};

//! The stream codec: structure keyframes and position deltas in a compact binary form, decoded
//! straight into GPU instance buffers. Pure code, no I/O.
//!
//! Every frame is a 32-byte [`FrameHeader`] followed by its payload. The byte-level layout of
//! both is specified in ARCHITECTURE.md ("Stream frame format"); position payloads in
//! `docs/format/positions.md`.
//!
//! - [`keyframe`]: a whole complex (topology, coordinates, display state).
//! - [`positions`]: position deltas against the previous frame of a stream, quantized to
//!   `10^-precision` Å, predicted per slot of repeated segments found from the data (temporal,
//!   spatial, virtual sites), then bit-packed or rANS-coded.
//! - [`entropy`]: tokens, frequency tables and the rANS coder of the compact position coding.
//! - [`stream`]: a push/pull decoder over byte chunks ([`stream::FrameReader`]) and the
//!   per-stream state that applies frames to an [`crate::gpu::AtomInstance`] buffer.

pub mod bits;
pub mod entropy;
pub mod header;
pub mod keyframe;
pub mod positions;
pub mod stream;

pub use header::{FrameHeader, FrameKind, HEADER_LEN};

/// Why a frame could not be encoded or decoded. Decoders never panic and never apply a frame
/// partially: on any error the receiver's state is what it was before the frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodecError {
    /// The bytes end before the frame does.
    #[error("frame truncated")]
    Truncated,
    /// The bytes are not a valid frame.
    #[error("corrupt frame: {0}")]
    Corrupt(&'static str),
    /// The frame does not start with the magic bytes `MSTR`.
    #[error("not a molstream frame (bad magic)")]
    BadMagic,
    /// The frame was written by a newer codec.
    #[error("unsupported frame version {0}")]
    UnsupportedVersion(u8),
    /// The frame kind is unknown to this decoder.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The payload does not match its checksum.
    #[error("checksum mismatch in stream {stream_id} frame {seq}")]
    Checksum {
        /// Stream.
        stream_id: u32,
        /// Sequence number.
        seq: u32,
    },
    /// A count or size above what the header or the configured limits allow.
    #[error("{what} {value} exceeds the limit")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A delta frame whose base is not the frame the receiver holds: the receiver must ask the
    /// sender for a keyframe.
    #[error(
        "stream {stream_id}: frame {seq} is a delta against {base_seq}, but the receiver holds {held:?}; a keyframe is needed"
    )]
    NeedKeyframe {
        /// Stream.
        stream_id: u32,
        /// Sequence number of the delta.
        seq: u32,
        /// The frame it is a delta against.
        base_seq: u32,
        /// The sequence number the receiver holds, if any.
        held: Option<u32>,
    },
    /// The frame covers a different number of atoms than the stream.
    #[error("frame has {got} atoms, the stream has {expected}")]
    AtomCount {
        /// Atoms of the stream.
        expected: u32,
        /// Atoms in the frame.
        got: u32,
    },
    /// A coordinate too large to quantize at the stream's precision (|x| ≥ 2^28 steps).
    #[error("coordinate {0} Å is out of range at this precision")]
    OutOfRange(f32),
}

/// Limits a decoder enforces before allocating anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload accepted, in bytes.
    pub max_payload: usize,
    /// Largest atom count accepted.
    pub max_atoms: u32,
    /// Largest string (names, labels) accepted, in bytes.
    pub max_string: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_payload: 1 << 30, max_atoms: 50_000_000, max_string: 1 << 16 }
    }
}

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
//! - [`attrs`]: per-atom display attributes (colour, radius, representation, selection,
//!   labels) as a delta against the frame held: only what changed, sparse or dense per
//!   attribute (kind 3).
//! - [`transform`]: the complex's placement, position and rotation (kind 4).
//! - [`topology`]: atoms, residues, chains and bonds inserted or removed (kind 7).
//! - [`stream`]: a push/pull decoder over byte chunks ([`stream::FrameReader`]) and the
//!   per-stream state that applies frames to an [`crate::gpu::AtomInstance`] buffer.
//!
//! The byte layouts of kinds 3, 4 and 7 are in the module docs of [`attrs`], [`transform`] and
//! [`topology`], and in `docs/format/attributes.md`.

pub mod attrs;
pub mod bits;
pub mod entropy;
pub mod header;
pub mod keyframe;
pub mod positions;
pub mod shapes;
pub mod stream;
pub mod topology;
pub mod transform;

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
    /// The sender asked to encode something that does not fit the state it applies to (an
    /// attribute change of an atom that does not exist, a topology edit that breaks the
    /// chain → residue → atom nesting, a non-finite transform). Nothing was sent or changed.
    #[error("cannot encode: {0}")]
    InvalidInput(&'static str),
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
    /// Largest number of shape records in one shapes frame, and of shapes one
    /// [`crate::shape::ShapeSet`] holds.
    pub max_shapes: u32,
    /// Largest total of mesh vertices in one shapes frame.
    pub max_vertices: u32,
    /// Largest total of mesh triangles in one shapes frame.
    pub max_triangles: u32,
    /// Largest mesh texture accepted, in bytes (width · height · 4).
    pub max_texture_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload: 1 << 30,
            max_atoms: 50_000_000,
            max_string: 1 << 16,
            max_shapes: 1 << 20,
            max_vertices: 1 << 24,
            max_triangles: 1 << 25,
            max_texture_bytes: 1 << 26,
        }
    }
}

//! The 32-byte frame header (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `MSTR` |
//! | 4 | 1 | version (1) |
//! | 5 | 1 | kind ([`FrameKind`]) |
//! | 6 | 1 | precision `k`: coordinates are quantized to 10^-k Å |
//! | 7 | 1 | flags (bit 0: payload is lz4-compressed, block format, with its size prepended) |
//! | 8 | 4 | stream id |
//! | 12 | 4 | sequence number |
//! | 16 | 4 | base sequence number (the frame a delta applies to; = seq for keyframes) |
//! | 20 | 4 | atom count covered by the frame |
//! | 24 | 4 | payload length in bytes (as stored, after compression) |
//! | 28 | 4 | CRC-32 (IEEE) of header bytes 0-27 followed by the stored payload |

use super::{CodecError, Limits};

/// Header size in bytes.
pub const HEADER_LEN: usize = 32;
/// Magic bytes.
pub const MAGIC: [u8; 4] = *b"MSTR";
/// Format version written by this codec.
pub const VERSION: u8 = 1;
/// Flag: the payload is lz4-compressed.
pub const FLAG_LZ4: u8 = 1;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// A whole complex: topology, coordinates, display state.
    Keyframe = 1,
    /// Positions as a delta against frame `base_seq` of the same stream.
    PositionDelta = 2,
    /// Per-atom display attributes (colors, radii, flags, labels) as a delta against
    /// `base_seq`: only what changed.
    AtomAttributes = 3,
    /// Complex transforms (position and rotation of whole complexes).
    Transforms = 4,
    /// Shapes created, replaced or destroyed (spheres, lines, labels, meshes).
    Shapes = 5,
    /// Shape transforms, colors and radii as a delta against `base_seq`.
    ShapeDelta = 6,
    /// Atoms and bonds inserted or removed, as a delta against `base_seq`.
    TopologyDelta = 7,
}

impl FrameKind {
    /// Decodes the kind byte.
    pub fn from_u8(v: u8) -> Result<Self, CodecError> {
        match v {
            1 => Ok(Self::Keyframe),
            2 => Ok(Self::PositionDelta),
            3 => Ok(Self::AtomAttributes),
            4 => Ok(Self::Transforms),
            5 => Ok(Self::Shapes),
            6 => Ok(Self::ShapeDelta),
            7 => Ok(Self::TopologyDelta),
            other => Err(CodecError::UnknownKind(other)),
        }
    }
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Kind.
    pub kind: FrameKind,
    /// Coordinates are quantized to 10^-precision Å.
    pub precision: u8,
    /// Flags (`FLAG_*`).
    pub flags: u8,
    /// Stream id.
    pub stream_id: u32,
    /// Sequence number.
    pub seq: u32,
    /// The frame this one is a delta against (= `seq` for keyframes).
    pub base_seq: u32,
    /// Atoms covered.
    pub atom_count: u32,
    /// Stored payload length.
    pub payload_len: u32,
    /// CRC-32 of header bytes 0-27 and the stored payload.
    pub checksum: u32,
}

impl FrameHeader {
    /// Appends the 32 header bytes.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[VERSION, self.kind as u8, self.precision, self.flags]);
        for v in [self.stream_id, self.seq, self.base_seq, self.atom_count, self.payload_len, self.checksum] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Parses a header from the first 32 bytes of `b`, checking magic, version, kind and the
    /// limits (payload length, atom count, precision).
    pub fn parse(b: &[u8], limits: &Limits) -> Result<Self, CodecError> {
        let b = b.get(..HEADER_LEN).ok_or(CodecError::Truncated)?;
        if b[..4] != MAGIC {
            return Err(CodecError::BadMagic);
        }
        if b[4] != VERSION {
            return Err(CodecError::UnsupportedVersion(b[4]));
        }
        let kind = FrameKind::from_u8(b[5])?;
        let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let h = Self {
            kind,
            precision: b[6],
            flags: b[7],
            stream_id: u(8),
            seq: u(12),
            base_seq: u(16),
            atom_count: u(20),
            payload_len: u(24),
            checksum: u(28),
        };
        if h.precision > 4 {
            return Err(CodecError::Corrupt("precision above 10^-4 Å"));
        }
        if h.flags & !FLAG_LZ4 != 0 {
            return Err(CodecError::Corrupt("unknown flag bits"));
        }
        if h.payload_len as usize > limits.max_payload {
            return Err(CodecError::LimitExceeded { what: "payload length", value: u64::from(h.payload_len) });
        }
        if h.atom_count > limits.max_atoms {
            return Err(CodecError::LimitExceeded { what: "atom count", value: u64::from(h.atom_count) });
        }
        Ok(h)
    }

    /// CRC-32 over header bytes 0-27 (everything but the checksum) and `stored`: a flipped
    /// sequence number is caught like a flipped coordinate.
    #[must_use]
    pub fn compute_checksum(&self, stored: &[u8]) -> u32 {
        let mut head = Vec::with_capacity(HEADER_LEN);
        self.write(&mut head);
        let mut h = crc32fast::Hasher::new();
        h.update(&head[..HEADER_LEN - 4]);
        h.update(stored);
        h.finalize()
    }

    /// Total frame size: header plus payload.
    #[must_use]
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }
}

/// Seals a payload into a frame: optional lz4 (kept only when it saves at least 1/16), the
/// checksum, the header. Appends the whole frame to `out`.
pub fn seal(mut header: FrameHeader, payload: &[u8], try_lz4: bool, out: &mut Vec<u8>) -> FrameHeader {
    let compressed = if try_lz4 { Some(lz4_flex::block::compress_prepend_size(payload)) } else { None };
    let stored: &[u8] = match &compressed {
        Some(c) if c.len() + payload.len() / 16 < payload.len() => {
            header.flags |= FLAG_LZ4;
            c
        }
        _ => {
            header.flags &= !FLAG_LZ4;
            payload
        }
    };
    header.payload_len = u32::try_from(stored.len()).unwrap_or(u32::MAX);
    header.checksum = header.compute_checksum(stored);
    out.reserve(HEADER_LEN + stored.len());
    header.write(out);
    out.extend_from_slice(stored);
    header
}

/// Checks a stored payload against its header and returns it decompressed (borrowed when it
/// was not compressed). Decompression is bounded by `limits.max_payload`.
pub fn open<'a>(
    header: &FrameHeader,
    stored: &'a [u8],
    limits: &Limits,
) -> Result<std::borrow::Cow<'a, [u8]>, CodecError> {
    if stored.len() != header.payload_len as usize {
        return Err(CodecError::Truncated);
    }
    if header.compute_checksum(stored) != header.checksum {
        return Err(CodecError::Checksum { stream_id: header.stream_id, seq: header.seq });
    }
    if header.flags & FLAG_LZ4 == 0 {
        return Ok(std::borrow::Cow::Borrowed(stored));
    }
    let size = stored.get(..4).ok_or(CodecError::Truncated)?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
    if size as usize > limits.max_payload {
        return Err(CodecError::LimitExceeded { what: "decompressed payload", value: u64::from(size) });
    }
    lz4_flex::block::decompress_size_prepended(stored)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| CodecError::Corrupt("lz4 payload does not decompress"))
}

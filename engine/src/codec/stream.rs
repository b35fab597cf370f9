//! Streams of frames: the sender's [`StreamEncoder`], a push/pull [`FrameReader`] over byte
//! chunks (as they arrive from the network), and the receiver's [`StreamDecoder`] that applies
//! frames to a GPU instance buffer.

use glam::Vec3;

use super::bits::Writer;
use super::header::{self, FrameHeader, FrameKind, HEADER_LEN};
use super::positions::{self, Quantized};
use super::{CodecError, Limits, keyframe};
use crate::gpu::{self, AtomInstance, InstanceBase};
use crate::model::Complex;

/// The sender's side of one stream: numbers frames and remembers the quantized positions the
/// receiver holds, so every delta is taken against what was really sent.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    stream_id: u32,
    precision: u8,
    next_seq: u32,
    sent: Option<(u32, Quantized)>,
    /// Try lz4 on keyframes (kept only when it pays).
    pub lz4_keyframes: bool,
}

impl StreamEncoder {
    /// A stream quantizing coordinates to 10^-precision Å (2 → 0.01 Å, 3 → 0.001 Å).
    #[must_use]
    pub fn new(stream_id: u32, precision: u8) -> Self {
        Self { stream_id, precision: precision.min(4), next_seq: 0, sent: None, lz4_keyframes: true }
    }

    /// Stream id.
    #[must_use]
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Appends a keyframe of `complex`'s current model to `out`.
    pub fn keyframe(&mut self, complex: &Complex, out: &mut Vec<u8>) -> Result<FrameHeader, CodecError> {
        let mut w = Writer::new();
        let q = keyframe::encode(complex, self.precision, &mut w)?;
        let seq = self.next_seq;
        let h = header::seal(self.header(FrameKind::Keyframe, seq, seq, q.len())?, &w.buf, self.lz4_keyframes, out);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.sent = Some((seq, q));
        Ok(h)
    }

    /// Appends a position delta against the last frame sent. Fails with
    /// [`CodecError::NeedKeyframe`] before the first keyframe and [`CodecError::AtomCount`] when
    /// the atom count changed (topology edits need a keyframe).
    pub fn delta(&mut self, positions: &[Vec3], out: &mut Vec<u8>) -> Result<FrameHeader, CodecError> {
        let seq = self.next_seq;
        let Some((base_seq, base)) = &self.sent else {
            return Err(CodecError::NeedKeyframe { stream_id: self.stream_id, seq, base_seq: seq, held: None });
        };
        if base.len() != positions.len() {
            return Err(CodecError::AtomCount {
                expected: u32::try_from(base.len()).unwrap_or(u32::MAX),
                got: u32::try_from(positions.len()).unwrap_or(u32::MAX),
            });
        }
        let q = Quantized::from_positions(positions, self.precision)?;
        let mut w = Writer::with_capacity(positions.len() * 4);
        positions::encode_delta(base, &q, false, &mut w);
        let h = header::seal(self.header(FrameKind::PositionDelta, seq, *base_seq, q.len())?, &w.buf, false, out);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.sent = Some((seq, q));
        Ok(h)
    }

    fn header(&self, kind: FrameKind, seq: u32, base_seq: u32, atoms: usize) -> Result<FrameHeader, CodecError> {
        let atom_count =
            u32::try_from(atoms).map_err(|_| CodecError::LimitExceeded { what: "atom count", value: atoms as u64 })?;
        Ok(FrameHeader {
            kind,
            precision: self.precision,
            flags: 0,
            stream_id: self.stream_id,
            seq,
            base_seq,
            atom_count,
            payload_len: 0,
            checksum: 0,
        })
    }
}

/// A complete frame: its header and its payload (decompressed, checksum verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Header.
    pub header: FrameHeader,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Push/pull frame reader: feed bytes as they arrive with [`FrameReader::push_bytes`], take
/// whole frames with [`FrameReader::try_read`]. Memory is bounded by the largest frame the
/// limits allow plus one chunk.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    limits: Limits,
    broken: Option<CodecError>,
}

impl FrameReader {
    /// A reader enforcing `limits`.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { buf: Vec::new(), start: 0, limits, broken: None }
    }

    /// Feeds received bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        if self.broken.is_some() {
            return;
        }
        if self.start > 0 && (self.start == self.buf.len() || self.start > 1 << 16) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame; `Ok(None)` when more bytes are needed.
    ///
    /// A frame whose payload fails its checksum or decompression is consumed and reported as
    /// an error; the next call continues with the following frame. A header that cannot be
    /// parsed (bad magic, version, limits) breaks the stream: frame boundaries are lost, so that
    /// error repeats on every later call.
    pub fn try_read(&mut self) -> Result<Option<Frame>, CodecError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let h = match FrameHeader::parse(avail, &self.limits) {
            Ok(h) => h,
            Err(e) => {
                self.broken = Some(e.clone());
                self.buf = Vec::new();
                self.start = 0;
                return Err(e);
            }
        };
        let Some(stored) = avail.get(HEADER_LEN..h.frame_len()) else { return Ok(None) };
        let payload = header::open(&h, stored, &self.limits).map(std::borrow::Cow::into_owned);
        self.start += h.frame_len();
        Ok(Some(Frame { header: h, payload: payload? }))
    }
}

/// What applying a frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A keyframe replaced the complex and rebuilt the instance buffer.
    Keyframe,
    /// A delta rewrote the positions of the instance buffer in place.
    Positions,
}

/// The receiver's side of one stream: the complex and quantized positions it holds.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    limits: Limits,
    held: Option<(u32, u32, u8)>,
    q: Quantized,
    complex: Option<Complex>,
}

impl StreamDecoder {
    /// A decoder enforcing `limits`.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// The complex of the last keyframe (positions as of that keyframe).
    #[must_use]
    pub fn complex(&self) -> Option<&Complex> {
        self.complex.as_ref()
    }

    /// The sequence number of the last frame applied.
    #[must_use]
    pub fn held_seq(&self) -> Option<u32> {
        self.held.map(|(_, seq, _)| seq)
    }

    /// Applies `frame`. Keyframes replace the complex and rebuild `instances`; deltas write
    /// positions straight into `instances` (one pass, no allocation). A delta whose base is not
    /// the frame held is [`CodecError::NeedKeyframe`]; on every error nothing changes.
    pub fn apply(&mut self, frame: &Frame, instances: &mut Vec<AtomInstance>) -> Result<Applied, CodecError> {
        let h = &frame.header;
        match h.kind {
            FrameKind::Keyframe => {
                let (complex, q) = keyframe::decode(&frame.payload, h.atom_count, h.precision, &self.limits)?;
                instances.clear();
                gpu::build_atom_instances(complex.current(), InstanceBase::SOLO, instances);
                self.complex = Some(complex);
                self.q = q;
                self.held = Some((h.stream_id, h.seq, h.precision));
                Ok(Applied::Keyframe)
            }
            FrameKind::PositionDelta => {
                match self.held {
                    Some((stream, seq, precision))
                        if stream == h.stream_id && seq == h.base_seq && precision == h.precision => {}
                    held => {
                        return Err(CodecError::NeedKeyframe {
                            stream_id: h.stream_id,
                            seq: h.seq,
                            base_seq: h.base_seq,
                            held: held.map(|(_, s, _)| s),
                        });
                    }
                }
                let n = self.q.len();
                if h.atom_count as usize != n || instances.len() != n {
                    return Err(CodecError::AtomCount {
                        expected: u32::try_from(n).unwrap_or(u32::MAX),
                        got: h.atom_count,
                    });
                }
                positions::validate_delta(&frame.payload, n)?;
                positions::apply_delta(&frame.payload, &mut self.q, h.precision, &mut instances[..])?;
                self.held = Some((h.stream_id, h.seq, h.precision));
                Ok(Applied::Positions)
            }
            kind => Err(CodecError::UnknownKind(kind as u8)),
        }
    }
}

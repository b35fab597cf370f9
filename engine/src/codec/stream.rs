//! Streams of frames: the sender's [`StreamEncoder`], a push/pull [`FrameReader`] over byte
//! chunks (as they arrive from the network), and the receiver's [`StreamDecoder`] that applies
//! frames to a GPU instance buffer.
//!
//! **One sequence per stream.** Every frame of a stream (keyframe, positions, attributes,
//! transform, topology) takes the next sequence number, and every frame but a keyframe is
//! chained: its `base_seq` is the frame sent just before it, and the receiver applies it only
//! while it holds exactly that frame. A lost frame of any kind therefore stops the stream at
//! the next frame with [`CodecError::NeedKeyframe`] instead of letting a later delta apply to
//! the wrong state; the sender answers with a keyframe. The encoder remembers what it sent
//! (quantized positions, display state, placement), so each delta is taken against what the
//! receiver really holds, and changes the application makes between two frames are coalesced,
//! never lost.

use glam::Vec3;

use super::attrs::{self, AttributeChanges};
use super::bits::Writer;
use super::header::{self, FrameHeader, FrameKind, HEADER_LEN};
use super::positions::{self, Quantized};
use super::topology::{self, TopologyEdit};
use super::transform::{self, Placement};
use super::{CodecError, Limits, keyframe};
use crate::gpu::{self, AtomInstance, BondInstance, InstanceBase, StructureBuffers};
use crate::model::{Complex, DisplayState};

/// Attribute and topology payloads at least this long are offered to lz4 (kept only when it
/// saves at least 1/16).
const LZ4_MIN: usize = 256;

/// What the sender last sent: the state the receiver holds once it has applied frame `seq`.
#[derive(Debug, Clone)]
struct Sent {
    seq: u32,
    q: Quantized,
    display: DisplayState,
    placement: Placement,
}

/// The sender's side of one stream: numbers frames and remembers the state the receiver holds
/// (quantized positions, display state, placement), so every delta is taken against what was
/// really sent.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    stream_id: u32,
    precision: u8,
    next_seq: u32,
    sent: Option<Sent>,
    /// Try lz4 on keyframes (kept only when it pays).
    pub lz4_keyframes: bool,
    /// How position deltas code their residuals: [`positions::Coding::Packed`] by default
    /// (fast to decode, for interactive streams); [`positions::Coding::Entropy`] is 10–15 %
    /// smaller and about 3× slower to decode (recorded trajectories, thin links).
    pub coding: positions::Coding,
    /// Reuse the position plan of the last delta for the next ones (see
    /// [`positions::PlanCache`]; on by default). Off, every delta searches its own plan: the
    /// encoder's former behaviour, kept for benchmarks.
    pub reuse_plan: bool,
    plan: positions::PlanCache,
}

impl StreamEncoder {
    /// A stream quantizing coordinates to 10^-precision Å (2 → 0.01 Å, 3 → 0.001 Å).
    #[must_use]
    pub fn new(stream_id: u32, precision: u8) -> Self {
        Self {
            stream_id,
            precision: precision.min(4),
            next_seq: 0,
            sent: None,
            lz4_keyframes: true,
            coding: positions::DEFAULT_CODING,
            reuse_plan: true,
            plan: positions::PlanCache::default(),
        }
    }

    /// Stream id.
    #[must_use]
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Position plan searches made so far (the plan is reused between deltas; see
    /// [`positions::PlanCache`]).
    #[must_use]
    pub fn plan_searches(&self) -> u64 {
        self.plan.searches()
    }

    /// Sequence number of the last frame sent (the base of the next delta), if any.
    #[must_use]
    pub fn last_seq(&self) -> Option<u32> {
        self.sent.as_ref().map(|s| s.seq)
    }

    /// Appends a keyframe of `complex`'s current model to `out`.
    pub fn keyframe(&mut self, complex: &Complex, out: &mut Vec<u8>) -> Result<FrameHeader, CodecError> {
        let mut w = Writer::new();
        let q = keyframe::encode(complex, self.precision, &mut w)?;
        let seq = self.next_seq;
        let h = header::seal(self.header(FrameKind::Keyframe, seq, seq, q.len())?, &w.buf, self.lz4_keyframes, out);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.sent =
            Some(Sent { seq, q, display: complex.current().display.clone(), placement: Placement::of(complex) });
        Ok(h)
    }

    /// What was last sent, or [`CodecError::NeedKeyframe`] before the first keyframe.
    fn sent(&self) -> Result<&Sent, CodecError> {
        self.sent.as_ref().ok_or(CodecError::NeedKeyframe {
            stream_id: self.stream_id,
            seq: self.next_seq,
            base_seq: self.next_seq,
            held: None,
        })
    }

    /// Appends a position delta against the last frame sent. Fails with
    /// [`CodecError::NeedKeyframe`] before the first keyframe and [`CodecError::AtomCount`] when
    /// the atom count differs from the stream's (topology changes go through
    /// [`Self::topology`] or a keyframe).
    pub fn delta(&mut self, positions: &[Vec3], out: &mut Vec<u8>) -> Result<FrameHeader, CodecError> {
        let seq = self.next_seq;
        self.sent()?;
        let Some(sent) = &self.sent else { return Err(atom_count(0, positions.len())) };
        if sent.q.len() != positions.len() {
            return Err(atom_count(sent.q.len(), positions.len()));
        }
        let q = Quantized::from_positions(positions, self.precision)?;
        let mut w = Writer::with_capacity(positions.len() * 4);
        let options = positions::DeltaOptions { coding: self.coding, keyframe: false };
        if !self.reuse_plan {
            self.plan.clear();
        }
        positions::encode_delta_cached(&sent.q, &q, options, &mut self.plan, &mut w);
        let h = header::seal(self.header(FrameKind::PositionDelta, seq, sent.seq, q.len())?, &w.buf, false, out);
        self.next_seq = self.next_seq.wrapping_add(1);
        if let Some(sent) = &mut self.sent {
            sent.seq = seq;
            sent.q = q;
        }
        Ok(h)
    }

    /// Appends an attribute frame carrying every difference between the display state of
    /// `complex`'s current model and the one last sent (changes made since are coalesced into
    /// this frame). Returns `None`, sending nothing and using no sequence number, when nothing
    /// changed.
    pub fn attributes(&mut self, complex: &Complex, out: &mut Vec<u8>) -> Result<Option<FrameHeader>, CodecError> {
        self.attributes_of(complex.current().display, out)
    }

    /// Applies explicit `changes` to the display state of `complex`'s current model and sends
    /// them (with any other unsent display change) as one attribute frame. The changes are
    /// checked and encoded first: on error neither `complex` nor the stream changes.
    pub fn attribute_changes(
        &mut self,
        complex: &mut Complex,
        changes: &AttributeChanges,
        out: &mut Vec<u8>,
    ) -> Result<Option<FrameHeader>, CodecError> {
        let display = complex.current_display_mut().ok_or(CodecError::InvalidInput("complex has no current model"))?;
        let mut changed = display.clone();
        changes.apply(&mut changed)?;
        let h = self.attributes_of(&changed, out)?;
        *display = changed;
        Ok(h)
    }

    /// [`Self::attributes`] for a display state held outside a [`Complex`]: appends the frame
    /// turning the display state last sent into `display` (`None` when they are equal).
    pub fn attributes_of(
        &mut self,
        display: &DisplayState,
        out: &mut Vec<u8>,
    ) -> Result<Option<FrameHeader>, CodecError> {
        let seq = self.next_seq;
        let sent = self.sent()?;
        if display.len() != sent.q.len() {
            return Err(atom_count(sent.q.len(), display.len()));
        }
        let mut w = Writer::new();
        if !attrs::encode(&sent.display, display, &mut w)? {
            return Ok(None);
        }
        let head = self.header(FrameKind::AtomAttributes, seq, sent.seq, sent.q.len())?;
        let h = header::seal(head, &w.buf, w.buf.len() >= LZ4_MIN, out);
        self.next_seq = self.next_seq.wrapping_add(1);
        if let Some(sent) = &mut self.sent {
            sent.seq = seq;
            sent.display.clone_from(display);
        }
        Ok(Some(h))
    }

    /// Appends a transform frame if the placement of `complex` (position, rotation, visible,
    /// locked) differs from the one last sent; `None` when it does not.
    pub fn transform(&mut self, complex: &Complex, out: &mut Vec<u8>) -> Result<Option<FrameHeader>, CodecError> {
        let seq = self.next_seq;
        let sent = self.sent()?;
        let placement = Placement::of(complex);
        let mut w = Writer::new();
        if !transform::encode(&sent.placement, &placement, &mut w)? {
            return Ok(None);
        }
        let h = header::seal(self.header(FrameKind::Transforms, seq, sent.seq, sent.q.len())?, &w.buf, false, out);
        self.next_seq = self.next_seq.wrapping_add(1);
        if let Some(sent) = &mut self.sent {
            sent.seq = seq;
            sent.placement = placement;
        }
        Ok(Some(h))
    }

    /// Applies `edit` to `complex` (see [`TopologyEdit::apply_to`]) and appends the topology
    /// delta that makes the receiver do the same. The stream's quantized positions and display
    /// state follow the edit, so the next position delta covers the new atom set. The edit is
    /// checked first: on error neither `complex` nor the stream changes.
    pub fn topology(
        &mut self,
        complex: &mut Complex,
        edit: &TopologyEdit,
        out: &mut Vec<u8>,
    ) -> Result<FrameHeader, CodecError> {
        let seq = self.next_seq;
        let sent = self.sent()?;
        let n = complex.model(complex.current_model).map_or(0, |m| m.topology.atom_count());
        if n != sent.q.len() {
            return Err(atom_count(sent.q.len(), n));
        }
        let added: Vec<Vec3> = edit.new_atoms.iter().map(|a| a.position).collect();
        let added = Quantized::from_positions(&added, self.precision)?;
        let plan = edit.plan(complex).map_err(CodecError::InvalidInput)?;
        let head = self.header(FrameKind::TopologyDelta, seq, sent.seq, plan.atom_count())?;
        let mut w = Writer::new();
        edit.encode(complex.current().topology, &added, &mut w);
        let q = TopologyEdit::remap_quantized(&plan, &sent.q, &added);
        let display = edit.remap_display(&plan, &sent.display);
        let h = header::seal(head, &w.buf, w.buf.len() >= LZ4_MIN, out);
        edit.commit(plan, complex);
        self.next_seq = self.next_seq.wrapping_add(1);
        if let Some(sent) = &mut self.sent {
            sent.seq = seq;
            sent.q = q;
            sent.display = display;
        }
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

fn atom_count(expected: usize, got: usize) -> CodecError {
    CodecError::AtomCount {
        expected: u32::try_from(expected).unwrap_or(u32::MAX),
        got: u32::try_from(got).unwrap_or(u32::MAX),
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
    /// An attribute frame rewrote colours, radii and flags of the changed atoms in place and
    /// updated the complex's display state.
    Attributes,
    /// A transform frame moved the complex ([`StreamDecoder::placement`]); the instance buffer
    /// is unchanged.
    Transform,
    /// A topology delta edited the complex and rebuilt the instance buffer (and, through
    /// [`StreamDecoder::apply_buffers`], the bond buffer).
    Topology,
}

/// The receiver's side of one stream: the complex and quantized positions it holds.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    limits: Limits,
    base: InstanceBase,
    held: Option<(u32, u32, u8)>,
    q: Quantized,
    complex: Option<Complex>,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl StreamDecoder {
    /// A decoder enforcing `limits`, building instances at [`InstanceBase::SOLO`].
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self { limits, base: InstanceBase::SOLO, held: None, q: Quantized::default(), complex: None }
    }

    /// Where the stream's instances go in shared buffers: pick ids from `base.pick_base`, the
    /// transform index `base.transform` in every atom, bond atom indices from
    /// `base.atom_offset`. Takes effect at the next rebuild (keyframe or topology delta).
    #[must_use]
    pub fn with_instance_base(mut self, base: InstanceBase) -> Self {
        self.base = base;
        self
    }

    /// The complex held: topology, display state and placement as of the last frame; its
    /// positions as of the last keyframe or topology delta (position deltas go straight to the
    /// instance buffer; see [`Self::positions`] and [`Self::snapshot`]).
    #[must_use]
    pub fn complex(&self) -> Option<&Complex> {
        self.complex.as_ref()
    }

    /// The sequence number of the last frame applied.
    #[must_use]
    pub fn held_seq(&self) -> Option<u32> {
        self.held.map(|(_, seq, _)| seq)
    }

    /// The complex's placement as of the last frame; [`Placement::matrix`] is the matrix for
    /// the transform buffer slot the instances index ([`InstanceBase::transform`]).
    #[must_use]
    pub fn placement(&self) -> Option<Placement> {
        self.complex.as_ref().map(Placement::of)
    }

    /// The positions held (dequantized; what the instance buffer holds).
    #[must_use]
    pub fn positions(&self) -> Vec<Vec3> {
        let (s, _) = positions::step(self.held.map_or(0, |h| h.2));
        #[allow(clippy::cast_precision_loss)]
        let f = |v: i32| v as f32 * s;
        self.q.x.iter().zip(&self.q.y).zip(&self.q.z).map(|((&x, &y), &z)| Vec3::new(f(x), f(y), f(z))).collect()
    }

    /// A copy of the complex held with its current model at the positions held: what a
    /// keyframe of the sender's state decodes to.
    #[must_use]
    pub fn snapshot(&self) -> Option<Complex> {
        let mut c = self.complex.clone()?;
        let current = c.current_model;
        c.set_positions(current, self.positions()).ok()?;
        Some(c)
    }

    /// Appends the bond instances of the complex held (at the instance base) to `out`.
    pub fn bond_instances(&self, out: &mut Vec<BondInstance>) {
        if let Some(c) = &self.complex {
            gpu::build_bond_instances(c.current(), self.base, out);
        }
    }

    fn check_base(&self, h: &FrameHeader) -> Result<(), CodecError> {
        match self.held {
            Some((stream, seq, precision))
                if stream == h.stream_id && seq == h.base_seq && precision == h.precision && self.complex.is_some() =>
            {
                Ok(())
            }
            held => Err(CodecError::NeedKeyframe {
                stream_id: h.stream_id,
                seq: h.seq,
                base_seq: h.base_seq,
                held: held.map(|(_, s, _)| s),
            }),
        }
    }

    /// Applies `frame`. Keyframes replace the complex and rebuild `instances`; position deltas
    /// write positions straight into `instances` (one pass, no allocation); attribute frames
    /// rewrite colour, radius and flags of the changed atoms in place; transform frames move
    /// the complex; topology deltas edit the complex and rebuild `instances`. Every frame but a
    /// keyframe must have the frame held as its base, or it is [`CodecError::NeedKeyframe`];
    /// a frame whose atom count is not the stream's is [`CodecError::AtomCount`]. Frames are
    /// validated whole first: on every error nothing changes.
    pub fn apply(&mut self, frame: &Frame, instances: &mut Vec<AtomInstance>) -> Result<Applied, CodecError> {
        let h = &frame.header;
        if h.kind != FrameKind::Keyframe {
            self.check_base(h)?;
            let n = self.q.len();
            let count_ok = h.kind == FrameKind::TopologyDelta || h.atom_count as usize == n;
            if !count_ok || instances.len() != n {
                return Err(atom_count(n, if count_ok { instances.len() } else { h.atom_count as usize }));
            }
        }
        let applied = match h.kind {
            FrameKind::Keyframe => {
                let (complex, q) = keyframe::decode(&frame.payload, h.atom_count, h.precision, &self.limits)?;
                instances.clear();
                gpu::build_atom_instances(complex.current(), self.base, instances);
                self.complex = Some(complex);
                self.q = q;
                Applied::Keyframe
            }
            FrameKind::PositionDelta => {
                positions::validate_delta(&frame.payload, self.q.len())?;
                positions::apply_delta(&frame.payload, &mut self.q, h.precision, &mut instances[..])?;
                Applied::Positions
            }
            FrameKind::AtomAttributes => {
                let f = attrs::decode(&frame.payload, self.q.len(), &self.limits)?;
                let display = self.complex.as_mut().and_then(Complex::current_display_mut).ok_or(held_none(h))?;
                f.apply(display, instances)?;
                Applied::Attributes
            }
            FrameKind::Transforms => {
                let change = transform::decode(&frame.payload)?;
                let complex = self.complex.as_mut().ok_or(held_none(h))?;
                let mut p = Placement::of(complex);
                change.apply(&mut p);
                p.apply_to(complex);
                Applied::Transform
            }
            FrameKind::TopologyDelta => {
                let positions = self.positions();
                let complex = self.complex.as_mut().ok_or(held_none(h))?;
                let t = complex.model(complex.current_model).ok_or(held_none(h))?.topology;
                let (edit, added) =
                    topology::decode(&frame.payload, t, h.atom_count as usize, h.precision, &self.limits)?;
                let plan = edit.plan(complex).map_err(CodecError::Corrupt)?;
                let q = TopologyEdit::remap_quantized(&plan, &self.q, &added);
                // The complex's positions become the ones held before the edit is applied.
                let current = complex.current_model;
                complex.set_positions(current, positions).map_err(|_| CodecError::Corrupt("model positions"))?;
                edit.commit(plan, complex);
                self.q = q;
                instances.clear();
                gpu::build_atom_instances(complex.current(), self.base, instances);
                Applied::Topology
            }
            kind => return Err(CodecError::UnknownKind(kind as u8)),
        };
        self.held = Some((h.stream_id, h.seq, h.precision));
        Ok(applied)
    }

    /// [`Self::apply`] on the atom buffer of `buffers`, rebuilding its bond buffer too when the
    /// topology changed (keyframes, topology deltas).
    pub fn apply_buffers(&mut self, frame: &Frame, buffers: &mut StructureBuffers) -> Result<Applied, CodecError> {
        let applied = self.apply(frame, &mut buffers.atoms)?;
        if matches!(applied, Applied::Keyframe | Applied::Topology) {
            buffers.bonds.clear();
            self.bond_instances(&mut buffers.bonds);
        }
        Ok(applied)
    }
}

fn held_none(h: &FrameHeader) -> CodecError {
    CodecError::NeedKeyframe { stream_id: h.stream_id, seq: h.seq, base_seq: h.base_seq, held: None }
}

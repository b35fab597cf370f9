//! [`PeerQueues`]: the frames waiting to be written to one peer, one queue per outgoing frame
//! stream, with the relay's flow-control rules as plain state (no sockets, no tasks), so that a
//! stalled receiver can be simulated by pushing and never popping.
//!
//! Frames are in three classes ([`FrameClass`], from the frame header only):
//! - **keyframes** (any self-contained frame: `base_seq == seq`) always go in and supersede
//!   every frame of their stream not written yet (latest wins: nothing before a keyframe is
//!   needed to decode what follows);
//! - **coalescable** frames (position deltas and transforms: the latest state replaces the
//!   earlier ones) go in while the stream's queue holds less than its soft bound of deltas;
//!   past it one is dropped and the stream *lags*: it takes nothing but its next keyframe,
//!   which the core asks the instance for once the queue drained. The keyframe carries
//!   everything dropped meanwhile;
//! - **ordered** frames (attributes, topology edits, shapes and shape deltas) are never dropped
//!   while the stream is in step: they go in past the soft bound. What a peer holds above the
//!   soft bounds of its streams (its *backlog*) is bounded per peer; past that hard bound the
//!   push answers [`Pushed::Overflow`] and the driver closes the peer with the reason. On a
//!   stream that already lags (a position delta was dropped, so nothing after it decodes until
//!   the next keyframe) an ordered frame is superseded by that keyframe, which carries it.
//!
//! Memory per peer is thus bounded by one keyframe per stream, the soft bound per stream, and
//! the hard bound.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use molstream_engine::codec::{FrameHeader, FrameKind};

use super::core::OutStream;

/// How flow control treats a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameClass {
    /// Self-contained: supersedes what is queued before it on its stream; never dropped.
    Key,
    /// Latest wins (position deltas, transforms): may be dropped for a lagging user, who then
    /// gets the next keyframe.
    Coalescable,
    /// Structure and shape edits: delivered in order, or the peer is closed past the hard bound.
    Ordered,
}

impl FrameClass {
    /// The class of a frame, from its header.
    #[must_use]
    pub fn of(header: &FrameHeader) -> Self {
        if header.base_seq == header.seq {
            Self::Key
        } else if matches!(header.kind, FrameKind::PositionDelta | FrameKind::Transforms) {
            Self::Coalescable
        } else {
            Self::Ordered
        }
    }
}

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// A keyframe, queued; `superseded` frames not yet written were dropped (it replaces them).
    Replaced {
        /// Frames it replaced.
        superseded: usize,
    },
    /// A coalescable frame dropped; `started` when this made the stream lag (tell the core:
    /// [`super::RelayCore::handle_lagging`]).
    Dropped {
        /// The stream started lagging with this frame.
        started: bool,
    },
    /// An ordered frame on a lagging stream: the keyframe the stream waits for carries it.
    Superseded,
    /// Queued, but the peer's backlog is now over the hard bound: close the peer.
    Overflow {
        /// The backlog, bytes.
        backlog: usize,
    },
    /// No such stream (already finished).
    Unknown,
}

/// What a writer gets from [`PeerQueues::pop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Popped {
    /// The next frame to write.
    Frame(Bytes),
    /// Nothing queued now; `report_drained` once after the stream lagged (tell the core:
    /// [`super::RelayCore::handle_drained`]).
    Empty {
        /// Report the drain to the core.
        report_drained: bool,
    },
    /// The stream was finished and everything queued was written: finish it.
    Finished,
}

#[derive(Debug, Default)]
struct StreamQueue {
    frames: VecDeque<(Bytes, bool)>,
    /// Bytes of the non-key frames queued.
    delta_bytes: usize,
    lagging: bool,
    drained_reported: bool,
    finished: bool,
}

/// Counters of what flow control did to one peer's frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Coalescable frames dropped (the stream lagged) and unwritten frames a keyframe replaced.
    pub coalesced: u64,
    /// Ordered frames on a lagging stream, carried by the keyframe it waits for.
    pub superseded: u64,
}

/// One peer's outgoing frame queues. See the module documentation.
#[derive(Debug)]
pub struct PeerQueues {
    streams: HashMap<OutStream, StreamQueue>,
    soft: usize,
    hard: usize,
    backlog: usize,
    stats: QueueStats,
}

impl PeerQueues {
    /// Queues with `soft` bytes of deltas per stream and a `hard` backlog per peer.
    #[must_use]
    pub fn new(soft: usize, hard: usize) -> Self {
        Self { streams: HashMap::new(), soft, hard, backlog: 0, stats: QueueStats::default() }
    }

    fn over(&self, q: &StreamQueue) -> usize {
        q.delta_bytes.saturating_sub(self.soft)
    }

    /// A new stream.
    pub fn open(&mut self, stream: OutStream) {
        self.streams.entry(stream).or_default();
    }

    /// Bytes queued above the streams' soft bounds.
    #[must_use]
    pub fn backlog(&self) -> usize {
        self.backlog
    }

    /// What flow control did so far.
    #[must_use]
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// Bytes queued on `stream` (keyframes included).
    #[must_use]
    pub fn queued(&self, stream: OutStream) -> usize {
        self.streams.get(&stream).map_or(0, |q| q.frames.iter().map(|(b, _)| b.len()).sum())
    }

    /// Queues a frame of class `class` on `stream`.
    pub fn push(&mut self, stream: OutStream, bytes: Bytes, class: FrameClass) -> Pushed {
        let Some(q) = self.streams.get(&stream) else { return Pushed::Unknown };
        if q.finished {
            return Pushed::Unknown;
        }
        let before = self.over(q);
        let soft = self.soft;
        let Some(q) = self.streams.get_mut(&stream) else { return Pushed::Unknown };
        let len = bytes.len();
        let pushed = match class {
            FrameClass::Key => {
                let superseded = q.frames.len();
                q.frames.clear();
                q.delta_bytes = 0;
                q.lagging = false;
                q.frames.push_back((bytes, true));
                self.stats.coalesced += superseded as u64;
                Pushed::Replaced { superseded }
            }
            FrameClass::Coalescable if q.lagging => {
                self.stats.coalesced += 1;
                Pushed::Dropped { started: false }
            }
            FrameClass::Coalescable if !q.frames.is_empty() && q.delta_bytes + len > soft => {
                q.lagging = true;
                q.drained_reported = false;
                self.stats.coalesced += 1;
                Pushed::Dropped { started: true }
            }
            FrameClass::Ordered if q.lagging => {
                self.stats.superseded += 1;
                Pushed::Superseded
            }
            FrameClass::Coalescable | FrameClass::Ordered => {
                q.delta_bytes += len;
                q.frames.push_back((bytes, false));
                Pushed::Queued
            }
        };
        let after = q.delta_bytes.saturating_sub(soft);
        self.backlog = self.backlog + after - before;
        if pushed == Pushed::Queued && self.backlog > self.hard {
            return Pushed::Overflow { backlog: self.backlog };
        }
        pushed
    }

    /// The next frame a writer should write on `stream`.
    pub fn pop(&mut self, stream: OutStream) -> Popped {
        let soft = self.soft;
        let Some(q) = self.streams.get_mut(&stream) else { return Popped::Finished };
        let before = q.delta_bytes.saturating_sub(soft);
        match q.frames.pop_front() {
            Some((frame, key)) => {
                if !key {
                    q.delta_bytes -= frame.len();
                }
                let after = q.delta_bytes.saturating_sub(soft);
                self.backlog -= before - after;
                Popped::Frame(frame)
            }
            None if q.finished => {
                self.streams.remove(&stream);
                Popped::Finished
            }
            None => {
                let report = q.lagging && !q.drained_reported;
                if report {
                    q.drained_reported = true;
                }
                Popped::Empty { report_drained: report }
            }
        }
    }

    /// No more frames will be pushed on `stream`: the writer finishes it once it wrote what is
    /// queued.
    pub fn finish(&mut self, stream: OutStream) {
        if let Some(q) = self.streams.get_mut(&stream) {
            q.finished = true;
        }
    }

    /// Forgets `stream` and what it holds (its writer is gone).
    pub fn remove(&mut self, stream: OutStream) {
        if let Some(q) = self.streams.remove(&stream) {
            self.backlog -= self.over(&q);
        }
    }

    /// Finishes every stream (the peer is being closed).
    pub fn finish_all(&mut self) {
        for q in self.streams.values_mut() {
            q.finished = true;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn b(n: usize) -> Bytes {
        Bytes::from(vec![0u8; n])
    }

    #[test]
    fn backlog_follows_pushes_pops_and_keyframes() {
        let mut q = PeerQueues::new(100, 1000);
        let s = OutStream(1);
        q.open(s);
        for _ in 0..3 {
            assert_eq!(q.push(s, b(60), FrameClass::Ordered), Pushed::Queued);
        }
        assert_eq!(q.backlog(), 80);
        assert_eq!(q.pop(s), Popped::Frame(b(60)));
        assert_eq!(q.backlog(), 20);
        assert_eq!(q.push(s, b(500), FrameClass::Key), Pushed::Replaced { superseded: 2 });
        assert_eq!(q.backlog(), 0, "keyframes are not backlog");
        q.remove(s);
        assert_eq!(q.backlog(), 0);
    }
}

//! Length-prefixed message framing, sans-IO.
//!
//! Wire form of one message: a `u32` little-endian payload length, then the payload. The
//! decoder accepts bytes in chunks of any size (`push_bytes`) and yields whole messages
//! (`try_next`). A length above the configured maximum is an error *before* anything is
//! buffered for it, so a hostile peer cannot make the receiver allocate more than
//! `max_message + 4` bytes plus one chunk.

use thiserror::Error;

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Framing errors. After one, the stream is out of sync and must be closed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The peer announced a message above the limit.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// Configured limit.
        max: usize,
    },
    /// The stream ended inside a message.
    #[error("stream ended inside a message ({buffered} of {expected} bytes received)")]
    Truncated {
        /// Bytes of the message received.
        buffered: usize,
        /// Bytes the message needs (header included).
        expected: usize,
    },
}

/// Appends one framed message to `out`.
///
/// # Errors
/// [`FrameError::TooLarge`] if the payload does not fit the `u32` length.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len())
        .map_err(|_| FrameError::TooLarge { len: payload.len() as u64, max: u32::MAX as usize })?;
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Incremental decoder of framed messages.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_message: usize,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder refusing messages larger than `max_message` bytes.
    #[must_use]
    pub fn new(max_message: usize) -> Self {
        Self { buf: Vec::new(), start: 0, max_message, failed: None }
    }

    /// Changes the limit for the messages not yet returned (e.g. raised after a handshake).
    pub fn set_max_message(&mut self, max_message: usize) {
        self.max_message = max_message;
    }

    /// Feeds received bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as messages.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole message, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError::TooLarge`] when the next length exceeds the limit; every later call
    /// returns the same error.
    pub fn try_next(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let avail = &self.buf[self.start..];
        let Some(header) = avail.get(..HEADER_LEN) else { return Ok(None) };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max_message {
            let e = FrameError::TooLarge { len: len as u64, max: self.max_message };
            self.failed = Some(e.clone());
            self.buf = Vec::new();
            self.start = 0;
            return Err(e);
        }
        let Some(payload) = avail.get(HEADER_LEN..HEADER_LEN + len) else { return Ok(None) };
        let msg = payload.to_vec();
        self.start += HEADER_LEN + len;
        // Compact once the consumed prefix dominates, so memory stays bounded.
        if self.start > 4096 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(msg))
    }

    /// Call at end of stream: an error if a message was left incomplete.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when bytes of an unfinished message remain.
    pub fn finish(&self) -> Result<(), FrameError> {
        let avail = &self.buf[self.start..];
        if avail.is_empty() {
            return Ok(());
        }
        let expected = avail
            .get(..HEADER_LEN)
            .map_or(HEADER_LEN, |h| HEADER_LEN + u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize);
        Err(FrameError::Truncated { buffered: avail.len(), expected })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            encode(m, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn messages_survive_any_chunking() {
        let msgs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let wire = framed(&refs);
        for chunk in [1, 2, 3, 5, 64, 4096, wire.len()] {
            let mut d = FrameDecoder::new(1 << 20);
            let mut got = Vec::new();
            for c in wire.chunks(chunk) {
                d.push_bytes(c);
                while let Some(m) = d.try_next().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, msgs, "chunk size {chunk}");
            assert_eq!(d.finish(), Ok(()));
        }
    }

    #[test]
    fn oversize_length_is_refused_before_buffering() {
        let mut d = FrameDecoder::new(100);
        d.push_bytes(&u32::MAX.to_le_bytes());
        assert_eq!(d.try_next(), Err(FrameError::TooLarge { len: u64::from(u32::MAX), max: 100 }));
        d.push_bytes(&[0; 1000]);
        assert_eq!(d.buffered(), 0);
        assert!(d.try_next().is_err());
    }

    #[test]
    fn truncated_stream_is_reported() {
        let wire = framed(&[b"hello world"]);
        let mut d = FrameDecoder::new(100);
        d.push_bytes(&wire[..7]);
        assert_eq!(d.try_next(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated { buffered: 7, expected: 15 }));
    }
}

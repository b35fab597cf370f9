//! Primitive encoding of control messages: a [`Writer`] and a bounds-checked [`Reader`].
//!
//! | primitive | wire form |
//! |---|---|
//! | `u8` | one byte |
//! | `bool` | one byte, 0 or 1 (anything else is an error) |
//! | `varint` | unsigned LEB128, at most 10 bytes, no value above the field's type |
//! | `f32` | 4 bytes, IEEE 754 little-endian, finite (NaN and infinities are refused) |
//! | `str(max)` | varint byte length ≤ max, then UTF-8 bytes |
//! | `bytes(max)` | varint length ≤ max, then the bytes |
//! | `list(max)` | varint count ≤ max (and ≤ the bytes left), then the elements |
//!
//! The reader never allocates more than the bytes it was given: a count is checked against
//! its field maximum and against the bytes remaining (every element takes at least one byte)
//! before anything is reserved.

use bytes::Bytes;
use thiserror::Error;

/// Why a control message could not be decoded. Any of these closes the sender's connection.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ended inside a field.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// A tag byte this protocol version does not define.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enumeration.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
    /// A count or length above its field's limit (or above the bytes left).
    #[error("{what}: {value} exceeds the limit of {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// The announced value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A varint longer than 10 bytes or above the field's integer type.
    #[error("malformed integer in {0}")]
    BadInteger(&'static str),
    /// A boolean byte other than 0 or 1.
    #[error("malformed boolean in {0}")]
    BadBool(&'static str),
    /// A string that is not UTF-8.
    #[error("{0} is not UTF-8")]
    BadUtf8(&'static str),
    /// Bytes left after the message's last field.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// A field value that decodes but is not allowed (an empty name, a zero id…).
    #[error("invalid {what}: {why}")]
    Invalid {
        /// Which field.
        what: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// Appends primitives to a byte vector.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    /// Bytes written so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A boolean as 0 or 1.
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// An unsigned LEB128 varint.
    pub fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    /// A `u32` as a varint.
    pub fn u32(&mut self, v: u32) {
        self.varint(u64::from(v));
    }

    /// An `f32`, 4 bytes little-endian.
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// A count, then each element written by `f`.
    pub fn list<T>(&mut self, items: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.varint(items.len() as u64);
        for item in items {
            f(self, item);
        }
    }
}

/// Reads primitives from a message, refusing anything outside the limits.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole message.
    #[must_use]
    pub fn new(buf: &'a Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Errors unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let buf: &'a Bytes = self.buf;
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated(what))?;
        let s = buf.get(self.pos..end).ok_or(DecodeError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// A boolean (0 or 1).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadBool(what)),
        }
    }

    /// An unsigned LEB128 varint of at most 10 bytes fitting in `u64`.
    pub fn varint(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8(what)?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return Err(DecodeError::BadInteger(what));
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::BadInteger(what))
    }

    /// A varint that must fit in `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        u32::try_from(self.varint(what)?).map_err(|_| DecodeError::BadInteger(what))
    }

    /// A finite `f32`, 4 bytes little-endian (NaN and infinities are refused).
    pub fn f32(&mut self, what: &'static str) -> Result<f32, DecodeError> {
        let b = self.take(4, what)?;
        let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if v.is_finite() { Ok(v) } else { Err(DecodeError::Invalid { what, why: "not a finite number" }) }
    }

    /// A varint that must fit in `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        u16::try_from(self.varint(what)?).map_err(|_| DecodeError::BadInteger(what))
    }

    fn len(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let n = self.varint(what)?;
        let limit = max.min(self.remaining());
        if n > limit as u64 {
            return Err(DecodeError::TooLong { what, value: n, max: max as u64 });
        }
        // `n <= limit <= usize::MAX` by the check above.
        usize::try_from(n).map_err(|_| DecodeError::BadInteger(what))
    }

    /// Length-prefixed bytes of at most `max` bytes, shared with the message (no copy).
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<Bytes, DecodeError> {
        let n = self.len(what, max)?;
        let start = self.pos;
        self.take(n, what)?;
        Ok(self.buf.slice(start..start + n))
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let n = self.len(what, max)?;
        let raw = self.take(n, what)?;
        std::str::from_utf8(raw).map(str::to_owned).map_err(|_| DecodeError::BadUtf8(what))
    }

    /// A non-empty string of at most `max` bytes without control characters (names, rooms).
    pub fn name(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let s = self.str(what, max)?;
        if s.trim().is_empty() {
            return Err(DecodeError::Invalid { what, why: "empty" });
        }
        if s.chars().any(char::is_control) {
            return Err(DecodeError::Invalid { what, why: "contains control characters" });
        }
        Ok(s)
    }

    /// A count of at most `max` elements, each read by `f`. The count is checked against the
    /// bytes left (each element takes at least one byte) before anything is reserved.
    pub fn list<T>(
        &mut self,
        what: &'static str,
        max: usize,
        mut f: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.len(what, max)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_of(w: &Writer) -> Bytes {
        Bytes::from(w.buf.clone())
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX] {
            let mut w = Writer::new();
            w.varint(v);
            let b = reader_of(&w);
            let mut r = Reader::new(&b);
            assert_eq!(r.varint("v").unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn overlong_and_oversized_varints_are_refused() {
        // 11 continuation bytes.
        let b = Bytes::from(vec![0x80; 11]);
        assert_eq!(Reader::new(&b).varint("v"), Err(DecodeError::BadInteger("v")));
        // 10th byte carrying more than the 64th bit.
        let mut raw = vec![0xff; 9];
        raw.push(0x02);
        let b = Bytes::from(raw);
        assert_eq!(Reader::new(&b).varint("v"), Err(DecodeError::BadInteger("v")));
        // Fits u64 but not u32.
        let mut w = Writer::new();
        w.varint(u64::from(u32::MAX) + 1);
        let b = reader_of(&w);
        assert_eq!(Reader::new(&b).u32("v"), Err(DecodeError::BadInteger("v")));
    }

    #[test]
    fn lengths_are_checked_against_limit_and_remaining_bytes() {
        let mut w = Writer::new();
        w.varint(1_000_000);
        w.buf.extend_from_slice(&[0; 10]);
        let b = reader_of(&w);
        let err = Reader::new(&b).list("xs", 1 << 30, |r| r.u8("x")).unwrap_err();
        assert_eq!(err, DecodeError::TooLong { what: "xs", value: 1_000_000, max: 1 << 30 });
        let mut w = Writer::new();
        w.str("hello");
        let b = reader_of(&w);
        assert!(matches!(Reader::new(&b).str("s", 4), Err(DecodeError::TooLong { value: 5, max: 4, .. })));
        assert_eq!(Reader::new(&b).str("s", 5).unwrap(), "hello");
    }

    #[test]
    fn bad_bool_utf8_and_names_are_refused() {
        let b = Bytes::from(vec![2]);
        assert_eq!(Reader::new(&b).bool("b"), Err(DecodeError::BadBool("b")));
        let b = Bytes::from(vec![2, 0xff, 0xfe]);
        assert_eq!(Reader::new(&b).str("s", 10), Err(DecodeError::BadUtf8("s")));
        for bad in ["", "   ", "a\nb", "x\u{7}"] {
            let mut w = Writer::new();
            w.str(bad);
            let b = reader_of(&w);
            assert!(matches!(Reader::new(&b).name("n", 64), Err(DecodeError::Invalid { .. })), "{bad:?}");
        }
    }

    #[test]
    fn bytes_are_shared_not_copied() {
        let mut w = Writer::new();
        w.bytes(b"payload");
        let b = reader_of(&w);
        let got = Reader::new(&b).bytes("p", 100).unwrap();
        assert_eq!(&got[..], b"payload");
        assert_eq!(got.as_ptr(), b[1..].as_ptr());
    }
}

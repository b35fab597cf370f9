//! Integer coding primitives of the stream codec: zigzag, LEB128 varints, and block bit-packing.
//!
//! **Block bit-packing.** Values go in blocks of [`BLOCK`] = 32. Each block is stored with one
//! width `w` (0..=32 bits), in exactly `4·w` bytes, so every block is byte-aligned and a decoder
//! can jump over it. Value `k` of a block occupies bits `k·w .. k·w + w`, little-endian. A width
//! of 0 means all 32 values are zero and takes no byte at all.
//!
//! Every reader method returns `Result` and checks bounds: hostile input yields
//! [`CodecError::Truncated`] or [`CodecError::Corrupt`], never a panic or an unbounded allocation.

use super::CodecError;

/// Values per bit-packed block.
pub const BLOCK: usize = 32;

/// Maps signed to unsigned so small magnitudes get small codes: 0, -1, 1, -2 → 0, 1, 2, 3.
#[inline]
#[must_use]
pub const fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Inverse of [`zigzag`].
#[inline]
#[must_use]
pub const fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Bits needed for `v` (0 for 0).
#[inline]
#[must_use]
pub const fn bit_width(v: u32) -> u32 {
    32 - v.leading_zeros()
}

/// An append-only byte buffer with the codec's write primitives.
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

    /// A writer with room for `n` bytes.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self { buf: Vec::with_capacity(n) }
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a little-endian `f32`.
    pub fn f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends an unsigned LEB128 varint.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Appends a length-prefixed byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// Appends one block of up to [`BLOCK`] values at width `w` (missing values are zero).
    /// Values must fit in `w` bits.
    pub fn pack_block(&mut self, values: &[u32], w: u32) {
        debug_assert!(values.len() <= BLOCK && w <= 32);
        if w == 0 {
            return;
        }
        let mut acc: u64 = 0;
        let mut bits: u32 = 0;
        for k in 0..BLOCK {
            let v = u64::from(values.get(k).copied().unwrap_or(0));
            acc |= v << bits;
            bits += w;
            while bits >= 8 {
                self.buf.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
        debug_assert_eq!(bits, 0, "32 values of any width fill whole bytes");
    }

    /// Appends a whole column of unsigned values: per block, a width byte then the packed
    /// block.
    pub fn u32_column(&mut self, values: &[u32]) {
        for chunk in values.chunks(BLOCK) {
            let w = bit_width(chunk.iter().fold(0, |a, &v| a | v));
            self.u8(w as u8);
            self.pack_block(chunk, w);
        }
    }

    /// Appends a column of signed values, zigzag-coded.
    pub fn i32_column(&mut self, values: &[i32]) {
        let z: Vec<u32> = values.iter().map(|&v| zigzag(v)).collect();
        self.u32_column(&z);
    }

    /// Appends a column of signed values as differences from the previous value (the first
    /// from 0), zigzag-coded: sorted or slowly varying columns become small numbers.
    pub fn delta_column(&mut self, values: &[i32]) {
        let mut prev = 0i32;
        let d: Vec<u32> = values
            .iter()
            .map(|&v| {
                let z = zigzag(v.wrapping_sub(prev));
                prev = v;
                z
            })
            .collect();
        self.u32_column(&d);
    }

    /// Appends a run-length-coded column: run count, then run values and run lengths as
    /// columns. For flags and low-variety columns (alt loc, het, chain, secondary structure).
    pub fn rle_column(&mut self, values: &[u32]) {
        let mut runs_v = Vec::new();
        let mut runs_n = Vec::new();
        for chunk in values.chunk_by(|a, b| a == b) {
            runs_v.push(chunk[0]);
            runs_n.push(u32::try_from(chunk.len() - 1).unwrap_or(u32::MAX));
        }
        self.varint(runs_v.len() as u64);
        self.u32_column(&runs_v);
        self.u32_column(&runs_n);
    }
}

/// A bounds-checked reader over a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes left.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Current offset.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Everything not read yet, without consuming it.
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(CodecError::Truncated)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian `f32`.
    pub fn f32(&mut self) -> Result<f32, CodecError> {
        Ok(f32::from_bits(self.u32()?))
    }

    /// An unsigned LEB128 varint (at most 10 bytes).
    pub fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Corrupt("varint longer than 10 bytes"))
    }

    /// A varint that must be at most `max` (a count about to size an allocation).
    pub fn count(&mut self, max: usize) -> Result<usize, CodecError> {
        let v = self.varint()?;
        usize::try_from(v).ok().filter(|&v| v <= max).ok_or(CodecError::LimitExceeded { what: "count", value: v })
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], CodecError> {
        let n = self.count(max)?;
        self.take(n)
    }

    /// Unpacks one block at width `w` into `out` (32 values).
    pub fn unpack_block(&mut self, w: u32, out: &mut [u32; BLOCK]) -> Result<(), CodecError> {
        if w == 0 {
            *out = [0; BLOCK];
            return Ok(());
        }
        if w > 32 {
            return Err(CodecError::Corrupt("bit width above 32"));
        }
        let data = self.take(4 * w as usize)?;
        unpack(data, w, out);
        Ok(())
    }

    /// Reads a column of `n` unsigned values written by [`Writer::u32_column`].
    pub fn u32_column(&mut self, n: usize, out: &mut Vec<u32>) -> Result<(), CodecError> {
        out.clear();
        // A block needs at least one byte, so `n` is bounded by what the input can hold.
        if n.div_ceil(BLOCK) > self.remaining() {
            return Err(CodecError::Truncated);
        }
        out.reserve(n);
        let mut block = [0u32; BLOCK];
        let mut left = n;
        while left > 0 {
            let w = u32::from(self.u8()?);
            self.unpack_block(w, &mut block)?;
            let k = left.min(BLOCK);
            out.extend_from_slice(&block[..k]);
            left -= k;
        }
        Ok(())
    }

    /// Reads `n` zigzag-coded signed values.
    pub fn i32_column(&mut self, n: usize) -> Result<Vec<i32>, CodecError> {
        let mut u = Vec::new();
        self.u32_column(n, &mut u)?;
        Ok(u.into_iter().map(unzigzag).collect())
    }

    /// Reads `n` delta-coded signed values written by [`Writer::delta_column`].
    pub fn delta_column(&mut self, n: usize) -> Result<Vec<i32>, CodecError> {
        let mut u = Vec::new();
        self.u32_column(n, &mut u)?;
        let mut prev = 0i32;
        Ok(u.into_iter()
            .map(|z| {
                prev = prev.wrapping_add(unzigzag(z));
                prev
            })
            .collect())
    }

    /// Reads a run-length-coded column that must expand to exactly `n` values.
    pub fn rle_column(&mut self, n: usize) -> Result<Vec<u32>, CodecError> {
        let runs = self.count(n)?;
        let mut v = Vec::new();
        let mut len = Vec::new();
        self.u32_column(runs, &mut v)?;
        self.u32_column(runs, &mut len)?;
        let mut out = Vec::with_capacity(n);
        for (&value, &extra) in v.iter().zip(&len) {
            let run = extra as usize + 1;
            if out.len() + run > n {
                return Err(CodecError::Corrupt("run-length column longer than declared"));
            }
            out.resize(out.len() + run, value);
        }
        if out.len() != n {
            return Err(CodecError::Corrupt("run-length column shorter than declared"));
        }
        Ok(out)
    }
}

/// Unpacks 32 values of width `w` (1..=32) from the first `4·w` bytes of `data` (which may be
/// longer: the bytes after the block are read but ignored, which is faster).
#[inline(always)]
pub fn unpack(data: &[u8], w: u32, out: &mut [u32; BLOCK]) {
    macro_rules! fixed {
        ($($w:literal)*) => {
            match w {
                $($w => unpack_fixed::<$w>(data, out),)*
                _ => unpack_fixed::<32>(data, out),
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
}

/// Width-specialised unpacking: with `W` a constant, every value is one unaligned 64-bit load
/// at a constant offset, a shift and a mask. Loads may reach 8 bytes past the block: when `data`
/// does not extend that far, the block is first copied into a padded buffer. This is what makes
/// delta decoding run at hundreds of millions of atoms per second.
#[inline]
fn unpack_fixed<const W: u32>(data: &[u8], out: &mut [u32; BLOCK]) {
    let len = 4 * W as usize;
    if let Some(wide) = data.get(..len + 8) {
        extract::<W>(wide, out);
    } else {
        let mut padded = [0u8; 4 * BLOCK + 8];
        padded[..len].copy_from_slice(&data[..len]);
        extract::<W>(&padded[..len + 8], out);
    }
}

#[inline(always)]
fn extract<const W: u32>(data: &[u8], out: &mut [u32; BLOCK]) {
    let data = &data[..4 * W as usize + 8];
    let mask: u64 = if W == 32 { u64::from(u32::MAX) } else { (1u64 << W) - 1 };
    for (k, slot) in out.iter_mut().enumerate() {
        let bit = k * W as usize;
        let b = bit / 8;
        let word = u64::from_le_bytes(data[b..b + 8].try_into().unwrap_or([0; 8]));
        *slot = ((word >> (bit % 8)) & mask) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, 2, -2, i32::MAX, i32::MIN, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn every_width_round_trips() {
        for w in 0..=32u32 {
            let max = if w == 32 { u32::MAX } else { (1u32 << w).wrapping_sub(1) };
            let vals: Vec<u32> =
                (0..BLOCK as u32).map(|k| max.wrapping_sub(k.wrapping_mul(2_654_435_761)) & max).collect();
            let mut wr = Writer::new();
            wr.pack_block(&vals, w);
            assert_eq!(wr.buf.len(), 4 * w as usize);
            let mut out = [0u32; BLOCK];
            Reader::new(&wr.buf).unpack_block(w, &mut out).unwrap();
            assert_eq!(&out[..], &vals[..], "width {w}");
        }
    }

    #[test]
    fn columns_round_trip() {
        let vals: Vec<i32> = (0..1000).map(|i| (i * 37 % 101) - 50).collect();
        let flags: Vec<u32> = (0..777).map(|i| u32::from(i / 100 % 2 == 0)).collect();
        let mut w = Writer::new();
        w.i32_column(&vals);
        w.delta_column(&vals);
        w.rle_column(&flags);
        w.varint(u64::MAX);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.i32_column(1000).unwrap(), vals);
        assert_eq!(r.delta_column(1000).unwrap(), vals);
        assert_eq!(r.rle_column(777).unwrap(), flags);
        assert_eq!(r.varint().unwrap(), u64::MAX);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn hostile_inputs_are_errors() {
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
        assert!(Reader::new(&[33]).u32_column(32, &mut Vec::new()).is_err());
        // A huge declared count with a tiny input fails before allocating.
        let mut w = Writer::new();
        w.varint(1 << 40);
        assert!(Reader::new(&w.buf).count(1 << 20).is_err());
        assert!(Reader::new(&[1, 0, 0]).u32_column(1_000_000, &mut Vec::new()).is_err());
        // RLE expanding past its declared size.
        let mut w = Writer::new();
        w.rle_column(&[7; 100]);
        assert!(Reader::new(&w.buf).rle_column(50).is_err());
    }
}

//! Entropy-coding primitives of the compact position coding: value tokens, static frequency
//! tables, a three-state interleaved rANS coder, and a raw bit stream.
//!
//! **Tokens.** An unsigned value `v` (a zigzag residual) is split into a token (0–127) coded
//! with rANS and `e` extra bits stored raw:
//!
//! | value | token | extra bits |
//! |---|---|---|
//! | 0–15 | `v` | none |
//! | `b = bit_width(v)` ≥ 5 | `16 + 4·(b − 5) + ((v >> (b − 3)) & 3)` | the low `b − 3` bits of `v` |
//!
//! Token `t ≥ 16` decodes as `((4 + (t − 16) % 4) << e) + extra`, with `e = (t − 16) / 4 + 2`.
//!
//! **Tables.** Frequencies are scaled to a total of [`SCALE`] = 2^11. A table is serialised as a
//! byte `K` (1–128: tokens 0..K have a frequency), then `K` varints, the frequencies, which must
//! sum to exactly [`SCALE`].
//!
//! **rANS.** Three 32-bit states kept in `[2^16, 2^32)`, each renormalised by 16-bit
//! little-endian words from its own stream (so the three decode chains are independent).
//! Decoding a symbol from state `x`: `s = x mod 2^11`, the token `t` is the one whose cumulative
//! range holds `s`, then `x = freq[t] · (x >> 11) + s − cum[t]`, and if `x < 2^16` one word `w`
//! is read: `x = (x << 16) | w`. Words past the end read as 0, so decoding is total: a validated
//! payload always decodes (to garbage if the bytes were forged, never to a panic).
//!
//! **Raw bits.** Extra bits are appended least-significant bit first to a byte stream; bits past
//! its end read as 0.

use super::CodecError;
use super::bits::{Reader, Writer, bit_width};

/// Frequency scale bits.
pub const SCALE_BITS: u32 = 11;
/// Sum of the frequencies of a table.
pub const SCALE: u32 = 1 << SCALE_BITS;
/// Number of tokens.
pub const TOKENS: usize = 128;
/// Lower bound of a normalised rANS state.
const RANS_L: u32 = 1 << 16;

/// Token of `v` and its extra bits: `(token, extra bit count, extra value)`.
#[inline]
#[must_use]
pub fn token(v: u32) -> (u8, u32, u32) {
    if v < 16 {
        return (v as u8, 0, 0);
    }
    let b = bit_width(v);
    let e = b - 3;
    ((16 + 4 * (b - 5) + ((v >> e) & 3)) as u8, e, v & ((1 << e) - 1))
}

/// Smallest value of each token and its extra bit count.
const fn token_bases() -> ([u32; TOKENS], [u8; TOKENS]) {
    let mut base = [0u32; TOKENS];
    let mut extra = [0u8; TOKENS];
    let mut t = 0;
    while t < TOKENS {
        if t < 16 {
            base[t] = t as u32;
        } else {
            let e = (t as u32 - 16) / 4 + 2;
            base[t] = (4 + (t as u32 - 16) % 4) << e;
            extra[t] = e as u8;
        }
        t += 1;
    }
    (base, extra)
}

/// Smallest value of each token.
pub const TOKEN_BASE: [u32; TOKENS] = token_bases().0;
/// Extra bits of each token.
pub const TOKEN_EXTRA: [u8; TOKENS] = token_bases().1;

/// Scales token counts to frequencies summing to [`SCALE`], every counted token keeping at
/// least 1. All-zero counts give token 0 the whole range.
#[must_use]
pub fn normalize(counts: &[u64; TOKENS]) -> [u32; TOKENS] {
    let total: u64 = counts.iter().sum();
    let mut f = [0u32; TOKENS];
    if total == 0 {
        f[0] = SCALE;
        return f;
    }
    let mut sum = 0u32;
    for (fi, &c) in f.iter_mut().zip(counts) {
        if c > 0 {
            *fi = u32::try_from((c * u64::from(SCALE) / total).max(1)).unwrap_or(SCALE);
            sum += *fi;
        }
    }
    // Fix the total on the largest entries (they lose the least relative precision).
    while sum != SCALE {
        let (i, _) = f.iter().enumerate().max_by_key(|&(_, &v)| v).unwrap_or((0, &0));
        if sum > SCALE {
            // Take from the largest entry that can spare it.
            let excess = sum - SCALE;
            let give = excess.min(f[i] - 1);
            if give == 0 {
                // Every entry is 1: impossible since at most 128 tokens < SCALE.
                break;
            }
            f[i] -= give;
            sum -= give;
        } else {
            f[i] += SCALE - sum;
            sum = SCALE;
        }
    }
    f
}

/// Estimated bits to code `counts` with `freqs` (tokens only, no extra bits).
#[must_use]
pub fn cost_bits(counts: &[u64; TOKENS], freqs: &[u32; TOKENS]) -> f64 {
    let mut bits = 0.0;
    for (&c, &f) in counts.iter().zip(freqs) {
        if c > 0 {
            #[allow(clippy::cast_precision_loss)]
            let p = f64::from(f) / f64::from(SCALE);
            #[allow(clippy::cast_precision_loss)]
            let cf = c as f64;
            bits -= cf * p.log2();
        }
    }
    bits
}

/// Appends a frequency table (see the module docs).
pub fn write_table(freqs: &[u32; TOKENS], w: &mut Writer) {
    let k = freqs.iter().rposition(|&f| f > 0).map_or(1, |i| i + 1);
    w.u8(k as u8);
    for &f in &freqs[..k] {
        w.varint(u64::from(f));
    }
}

/// Checks a table written by [`write_table`] without building it.
pub fn check_table(r: &mut Reader<'_>) -> Result<(), CodecError> {
    let k = usize::from(r.u8()?);
    if k == 0 || k > TOKENS {
        return Err(CodecError::Corrupt("entropy table token count out of range"));
    }
    let mut cum = 0u64;
    for _ in 0..k {
        cum += r.varint()?.min(u64::from(SCALE) + 1);
        if cum > u64::from(SCALE) {
            return Err(CodecError::Corrupt("entropy table frequencies exceed the scale"));
        }
    }
    if cum != u64::from(SCALE) {
        return Err(CodecError::Corrupt("entropy table frequencies do not sum to the scale"));
    }
    Ok(())
}

/// A decoding table: for every slot of the scale, its token (bits 0–7), the slot's offset in the
/// token's range (bits 8–19) and the token's frequency (bits 20–31).
#[derive(Clone, Debug)]
pub struct DecTable {
    slots: [u32; SCALE as usize],
    plain: bool,
}

impl Default for DecTable {
    fn default() -> Self {
        Self { slots: [0; SCALE as usize], plain: true }
    }
}

impl DecTable {
    /// Reads a table written by [`write_table`] into `self`.
    pub fn read(&mut self, r: &mut Reader<'_>) -> Result<(), CodecError> {
        let start = r.clone();
        check_table(r)?;
        let mut r = start;
        let k = r.u8()?;
        let mut cum = 0u32;
        self.plain = true;
        for t in 0..u32::from(k) {
            let f = r.varint()? as u32;
            for (off, e) in self.slots[cum as usize..(cum + f) as usize].iter_mut().enumerate() {
                *e = f << 20 | (off as u32) << 8 | t;
            }
            self.plain &= f == 0 || t < 16;
            cum += f;
        }
        Ok(())
    }

    /// Whether every token of the table is below 16, i.e. has no extra bits.
    #[must_use]
    pub fn plain(&self) -> bool {
        self.plain
    }

    /// Whether token `t` has a non-zero frequency.
    #[must_use]
    pub fn has(&self, t: usize) -> bool {
        self.slots.iter().any(|&e| (e & 0xff) as usize == t)
    }
}

/// An encoding table: cumulative starts of the token ranges.
#[derive(Clone, Debug)]
pub struct EncTable {
    freq: [u32; TOKENS],
    cum: [u32; TOKENS],
}

impl EncTable {
    /// From frequencies summing to [`SCALE`].
    #[must_use]
    pub fn new(freqs: &[u32; TOKENS]) -> Self {
        let mut cum = [0u32; TOKENS];
        let mut c = 0;
        for (ci, &f) in cum.iter_mut().zip(freqs) {
            *ci = c;
            c += f;
        }
        Self { freq: *freqs, cum }
    }
}

/// Interleaved rANS encoder with three states, each with its own word stream. Symbols are put
/// in *reverse* decoding order.
#[derive(Debug)]
pub struct RansEncoder {
    states: [u32; 3],
    words: [Vec<u16>; 3],
}

impl Default for RansEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RansEncoder {
    /// A fresh encoder.
    #[must_use]
    pub fn new() -> Self {
        Self { states: [RANS_L; 3], words: [Vec::new(), Vec::new(), Vec::new()] }
    }

    /// Codes token `t` (which must have a non-zero frequency in `table`) on state `lane`.
    #[inline]
    pub fn put(&mut self, lane: usize, table: &EncTable, t: u8) {
        let f = table.freq[usize::from(t)];
        debug_assert!(f > 0);
        let mut x = self.states[lane];
        let x_max = (u64::from(RANS_L >> SCALE_BITS) << 16) * u64::from(f);
        if u64::from(x) >= x_max {
            self.words[lane].push(x as u16);
            x >>= 16;
        }
        self.states[lane] = ((x / f) << SCALE_BITS) + (x % f) + table.cum[usize::from(t)];
    }

    /// Appends the final states (3 × u32), then per state its word count (varint) and its words
    /// in decoding order.
    pub fn finish(mut self, w: &mut Writer) {
        for s in self.states {
            w.u32(s);
        }
        for words in &mut self.words {
            w.varint(words.len() as u64);
            words.reverse();
            w.buf.reserve(words.len() * 2);
            for &word in words.iter() {
                w.u16(word);
            }
        }
    }
}

/// Interleaved rANS decoder with three states, each reading its own word stream.
#[derive(Debug)]
pub struct RansDecoder<'a> {
    states: [u32; 3],
    words: [&'a [u8]; 3],
    pos: [usize; 3],
}

impl<'a> RansDecoder<'a> {
    /// Reads the states and the three word streams, which must all be present.
    pub fn new(r: &mut Reader<'a>) -> Result<Self, CodecError> {
        let states = [r.u32()?, r.u32()?, r.u32()?];
        let mut words: [&'a [u8]; 3] = [&[]; 3];
        for stream in &mut words {
            let n = r.count(r.remaining() / 2)?;
            *stream = r.take(2 * n)?;
        }
        Ok(Self { states, words, pos: [0; 3] })
    }

    /// Decodes one token on state `lane` (0–2).
    #[inline(always)]
    pub fn get(&mut self, lane: usize, table: &DecTable) -> u8 {
        let x = self.states[lane];
        let e = table.slots[(x & (SCALE - 1)) as usize];
        let x = (e >> 20).wrapping_mul(x >> SCALE_BITS).wrapping_add(e >> 8 & 0xfff);
        // Renormalise without a branch: the next word is read every time, consumed when needed.
        let pos = self.pos[lane];
        let w = match self.words[lane].get(pos..pos + 2) {
            Some(b) => u32::from(u16::from_le_bytes([b[0], b[1]])),
            None => 0,
        };
        let need = x < RANS_L;
        self.states[lane] = if need { x << 16 | w } else { x };
        self.pos[lane] = pos + 2 * usize::from(need);
        e as u8
    }
}

/// Writes raw bits, least significant first.
#[derive(Debug, Default)]
pub struct BitWriter {
    buf: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    /// Appends the low `n` (≤ 32) bits of `v`.
    #[inline]
    pub fn put(&mut self, v: u32, n: u32) {
        if n == 0 {
            return;
        }
        self.acc |= u64::from(v) << self.bits;
        self.bits += n;
        while self.bits >= 8 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    /// The bytes, the last one zero-padded.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.buf.push(self.acc as u8);
        }
        self.buf
    }
}

/// Reads raw bits written by [`BitWriter`]; bits past the end read as 0.
#[derive(Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    bits: u32,
}

impl<'a> BitReader<'a> {
    /// Reads from `data`.
    #[must_use]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0, acc: 0, bits: 0 }
    }

    /// The next `n` (≤ 32) bits.
    #[inline(always)]
    pub fn get(&mut self, n: u32) -> u32 {
        if self.bits < n {
            self.refill();
        }
        let v = (self.acc & ((1u64 << n) - 1)) as u32;
        self.acc >>= n;
        self.bits = self.bits.saturating_sub(n);
        v
    }

    #[inline]
    fn refill(&mut self) {
        // Fill up to 56 bits; past the end, zeros (and `bits` still counts them, so reads go on).
        if let Some(b) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            let take = (63 - self.bits) / 8;
            self.acc |= (word & ((1u64 << (8 * take)) - 1)) << self.bits;
            self.pos += take as usize;
            self.bits += 8 * take;
        } else {
            while self.bits <= 56 {
                let b = self.data.get(self.pos).copied().unwrap_or(0);
                self.acc |= u64::from(b) << self.bits;
                self.pos += 1;
                self.bits += 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_every_magnitude() {
        let mut vals: Vec<u32> = (0..5000).collect();
        for b in 0..32 {
            vals.extend([1u32 << b, (1u32 << b).wrapping_sub(1), (1u32 << b) | 1, (1u32 << b).wrapping_mul(3) / 2]);
        }
        vals.push(u32::MAX);
        for v in vals {
            let (t, e, x) = token(v);
            assert!(usize::from(t) < TOKENS);
            assert_eq!(u32::from(TOKEN_EXTRA[usize::from(t)]), e, "{v}");
            assert_eq!(TOKEN_BASE[usize::from(t)] + x, v, "{v}");
        }
    }

    #[test]
    fn normalize_keeps_every_seen_token() {
        let mut c = [0u64; TOKENS];
        c[0] = 1_000_000;
        c[1..].fill(1);
        let f = normalize(&c);
        assert_eq!(f.iter().sum::<u32>(), SCALE);
        assert!(f.iter().all(|&v| v >= 1));
        let f = normalize(&[0; TOKENS]);
        assert_eq!(f[0], SCALE);
    }

    #[test]
    fn rans_and_raw_bits_round_trip() {
        let mut counts = [0u64; TOKENS];
        let vals: Vec<u32> =
            (0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 20) % 40 + (i % 7) * 1000).collect();
        for &v in &vals {
            counts[usize::from(token(v).0)] += 1;
        }
        let freqs = normalize(&counts);
        let enc_t = EncTable::new(&freqs);
        let mut w = Writer::new();
        write_table(&freqs, &mut w);
        let mut rans = RansEncoder::new();
        for (i, &v) in vals.iter().enumerate().rev() {
            rans.put(i % 3, &enc_t, token(v).0);
        }
        let mut raw = BitWriter::default();
        for &v in &vals {
            let (_, e, x) = token(v);
            raw.put(x, e);
        }
        rans.finish(&mut w);
        w.buf.extend_from_slice(&raw.finish());

        let mut r = Reader::new(&w.buf);
        let mut table = DecTable::default();
        table.read(&mut r).unwrap();
        let mut dec = RansDecoder::new(&mut r).unwrap();
        let mut bits = BitReader::new(r.take(r.remaining()).unwrap());
        for (i, &v) in vals.iter().enumerate() {
            let t = usize::from(dec.get(i % 3, &table));
            assert_eq!(TOKEN_BASE[t] + bits.get(u32::from(TOKEN_EXTRA[t])), v, "value {i}");
        }
        assert_eq!(dec.states, [RANS_L; 3], "the decoder ends where the encoder started");
    }

    #[test]
    fn hostile_tables_are_errors() {
        let mut t = DecTable::default();
        for bad in [&[0u8][..], &[129], &[2, 0x80, 0x10, 1], &[1, 5], &[2, 0xff, 0x0f, 2], &[3, 1]] {
            assert!(t.read(&mut Reader::new(bad)).is_err(), "{bad:?}");
        }
        // A single token with the whole range is fine.
        let mut w = Writer::new();
        w.u8(1);
        w.varint(u64::from(SCALE));
        t.read(&mut Reader::new(&w.buf)).unwrap();
        assert!(t.has(0) && !t.has(1));
        // Hostile states and missing words decode without panicking.
        let mut w = Writer::new();
        w.u32(0);
        w.u32(u32::MAX);
        w.u32(1);
        w.varint(0);
        w.varint(1);
        w.u16(0xffff);
        w.varint(0);
        let mut r = Reader::new(&w.buf);
        let mut d = RansDecoder::new(&mut r).unwrap();
        for i in 0..100 {
            d.get(i % 3, &t);
        }
        let mut b = BitReader::new(&[0xff, 0x01]);
        assert_eq!(b.get(9), 0x1ff);
        assert_eq!(b.get(32), 0);
    }
}

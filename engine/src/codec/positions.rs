//! Quantized positions and the position-delta payload.
//!
//! A position is quantized per axis to `q = round(p · 10^k)` (precision `k` from the header),
//! with `|q| < 2^28`. A delta payload codes, per block of 32 atoms:
//!
//! | size | field |
//! |---|---|
//! | 2 | block header: bits 0-4 width of x, 5-9 width of y, 10-14 width of z, bit 15 mode |
//! | 4·wx | 32 zigzag residuals of x, bit-packed at width wx |
//! | 4·wy | … y |
//! | 4·wz | … z |
//!
//! With `t = q − q_prev` (the motion since the base frame), the residual of atom `i` is
//! `t[i]` in mode 0 (temporal prediction) and `t[i] − t[i−1]` in mode 1 (neighbouring atoms,
//! bonded in file order, move together), where `t[−1]` is the motion of the atom before,
//! across blocks (0 for the first atom). The encoder picks the cheaper mode per block. The last
//! block is padded with zero residuals. Keyframes code absolute positions the same way with
//! `q_prev = 0` and the mode forced to 1 in every block.

use glam::Vec3;

use super::CodecError;
use super::bits::{BLOCK, Reader, Writer, bit_width, unpack, unzigzag, zigzag};
use crate::gpu::AtomInstance;

/// Largest quantized magnitude (exclusive): keeps every residual within 31 bits.
pub const Q_LIMIT: i32 = 1 << 28;

/// Quantization step `10^-k` Å, and its inverse.
#[must_use]
pub fn step(precision: u8) -> (f32, f32) {
    let inv = 10f32.powi(i32::from(precision));
    (1.0 / inv, inv)
}

/// Quantized positions, one column per axis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Quantized {
    /// x / step.
    pub x: Vec<i32>,
    /// y / step.
    pub y: Vec<i32>,
    /// z / step.
    pub z: Vec<i32>,
}

impl Quantized {
    /// All zeros for `n` atoms (the base a keyframe's positions are coded against).
    #[must_use]
    pub fn zeros(n: usize) -> Self {
        Self { x: vec![0; n], y: vec![0; n], z: vec![0; n] }
    }

    /// Number of atoms.
    #[must_use]
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Whether there is no atom.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Quantizes `positions` at `precision`; fails on non-finite or out-of-range coordinates.
    pub fn from_positions(positions: &[Vec3], precision: u8) -> Result<Self, CodecError> {
        let (_, inv) = step(precision);
        let n = positions.len();
        let mut q = Self { x: Vec::with_capacity(n), y: Vec::with_capacity(n), z: Vec::with_capacity(n) };
        #[allow(clippy::cast_precision_loss)]
        let limit = Q_LIMIT as f32;
        for p in positions {
            for (col, v) in [(&mut q.x, p.x), (&mut q.y, p.y), (&mut q.z, p.z)] {
                let s = (v * inv).round();
                // NaN fails this comparison too.
                if s.is_nan() || s.abs() >= limit {
                    return Err(CodecError::OutOfRange(v));
                }
                #[allow(clippy::cast_possible_truncation)]
                col.push(s as i32);
            }
        }
        Ok(q)
    }
}

/// Appends the delta payload coding `cur` against `base` (same length). `force_mode1` codes
/// every block in mode 1 (keyframes).
pub fn encode_delta(base: &Quantized, cur: &Quantized, force_mode1: bool, w: &mut Writer) {
    let n = cur.len();
    debug_assert_eq!(base.len(), n);
    w.buf.reserve(n * 4 + n / 16 + 16);
    let mut last_t = [0i32; 3];
    let mut t = [[0i32; BLOCK]; 3];
    let mut r0 = [[0u32; BLOCK]; 3];
    let mut r1 = [[0u32; BLOCK]; 3];
    let axes = [(&base.x, &cur.x), (&base.y, &cur.y), (&base.z, &cur.z)];
    let mut start = 0;
    while start < n {
        let m = (n - start).min(BLOCK);
        let mut or0 = [0u32; 3];
        let mut or1 = [0u32; 3];
        for (a, (b, c)) in axes.iter().enumerate() {
            let mut prev = last_t[a];
            for k in 0..BLOCK {
                if k < m {
                    let tv = c[start + k].wrapping_sub(b[start + k]);
                    t[a][k] = tv;
                    r0[a][k] = zigzag(tv);
                    r1[a][k] = zigzag(tv.wrapping_sub(prev));
                    prev = tv;
                } else {
                    r0[a][k] = 0;
                    r1[a][k] = 0;
                }
                or0[a] |= r0[a][k];
                or1[a] |= r1[a][k];
            }
        }
        let w0: [u32; 3] = or0.map(bit_width);
        let w1: [u32; 3] = or1.map(bit_width);
        let mode1 = force_mode1 || w1.iter().sum::<u32>() < w0.iter().sum::<u32>();
        let (widths, res) = if mode1 { (w1, &r1) } else { (w0, &r0) };
        let header = widths[0] | widths[1] << 5 | widths[2] << 10 | u32::from(mode1) << 15;
        w.u16(u16::try_from(header).unwrap_or(u16::MAX));
        for a in 0..3 {
            w.pack_block(&res[a], widths[a]);
            last_t[a] = t[a][m - 1];
        }
        start += m;
    }
}

/// Checks that `payload` is a well-formed delta of `n` atoms: every block header in range and
/// the blocks exactly filling it. Run before any state changes, so a bad frame changes nothing.
pub fn validate_delta(payload: &[u8], n: usize) -> Result<(), CodecError> {
    let mut r = Reader::new(payload);
    for _ in 0..n.div_ceil(BLOCK) {
        let h = u32::from(r.u16()?);
        let bytes = 4 * ((h & 31) + (h >> 5 & 31) + (h >> 10 & 31)) as usize;
        r.take(bytes)?;
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last position block"));
    }
    Ok(())
}

/// Where decoded positions go.
pub trait PositionSink {
    /// Number of atoms the sink holds.
    fn len(&self) -> usize;
    /// Whether the sink holds no atom.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores the position of atom `i`.
    fn set(&mut self, i: usize, p: [f32; 3]);
}

impl PositionSink for [AtomInstance] {
    fn len(&self) -> usize {
        <[AtomInstance]>::len(self)
    }
    #[inline]
    fn set(&mut self, i: usize, p: [f32; 3]) {
        self[i].position = p;
    }
}

impl PositionSink for [Vec3] {
    fn len(&self) -> usize {
        <[Vec3]>::len(self)
    }
    #[inline]
    fn set(&mut self, i: usize, p: [f32; 3]) {
        self[i] = Vec3::from_array(p);
    }
}

/// Applies a validated delta payload to `state` and writes the dequantized positions to
/// `out` in the same pass. Call [`validate_delta`] first: on a payload it accepted this cannot
/// fail; on anything else it returns an error (possibly after partial application).
pub fn apply_delta<S: PositionSink + ?Sized>(
    payload: &[u8],
    state: &mut Quantized,
    precision: u8,
    out: &mut S,
) -> Result<(), CodecError> {
    let n = state.len();
    if out.len() < n {
        return Err(CodecError::AtomCount { expected: u32::try_from(n).unwrap_or(u32::MAX), got: 0 });
    }
    let (s, _) = step(precision);
    let mut r = Reader::new(payload);
    let mut last_t = [0i32; 3];
    let mut raw = [[0u32; BLOCK]; 3];
    let mut start = 0;
    while start < n {
        let m = (n - start).min(BLOCK);
        let h = u32::from(r.u16()?);
        let widths = [h & 31, h >> 5 & 31, h >> 10 & 31];
        for a in 0..3 {
            let w = widths[a];
            if w == 0 {
                raw[a] = [0; BLOCK];
            } else {
                unpack(r.take(4 * w as usize)?, w, &mut raw[a]);
            }
        }
        let qs = [&mut state.x[start..start + m], &mut state.y[start..start + m], &mut state.z[start..start + m]];
        let mut cols: [[i32; BLOCK]; 3] = [[0; BLOCK]; 3];
        for (a, q) in qs.into_iter().enumerate() {
            let col = &mut cols[a];
            if h >> 15 == 1 {
                let mut t = last_t[a];
                for k in 0..m {
                    t = t.wrapping_add(unzigzag(raw[a][k]));
                    q[k] = q[k].wrapping_add(t);
                    col[k] = q[k];
                }
                last_t[a] = t;
            } else {
                for k in 0..m {
                    let t = unzigzag(raw[a][k]);
                    q[k] = q[k].wrapping_add(t);
                    col[k] = q[k];
                }
                last_t[a] = unzigzag(raw[a][m - 1]);
            }
        }
        for (k, ((&x, &y), &z)) in cols[0].iter().zip(&cols[1]).zip(&cols[2]).take(m).enumerate() {
            #[allow(clippy::cast_precision_loss)]
            out.set(start + k, [x as f32 * s, y as f32 * s, z as f32 * s]);
        }
        start += m;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(n: usize, seed: u32) -> Vec<Vec3> {
        let mut s = seed;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            #[allow(clippy::cast_precision_loss)]
            let v = (s % 100_000) as f32 / 1000.0;
            v
        };
        (0..n).map(|_| Vec3::new(next(), next(), next())).collect()
    }

    #[test]
    fn delta_round_trips_within_half_a_step() {
        for n in [0, 1, 31, 32, 33, 1000] {
            let a = cloud(n, 7);
            let b: Vec<Vec3> = a.iter().enumerate().map(|(i, p)| *p + Vec3::splat((i % 7) as f32 * 0.013)).collect();
            for precision in [2u8, 3] {
                let qa = Quantized::from_positions(&a, precision).unwrap();
                let qb = Quantized::from_positions(&b, precision).unwrap();
                let mut w = Writer::new();
                encode_delta(&qa, &qb, false, &mut w);
                validate_delta(&w.buf, n).unwrap();
                let mut state = qa.clone();
                let mut out = vec![Vec3::ZERO; n];
                apply_delta(&w.buf, &mut state, precision, &mut out[..]).unwrap();
                assert_eq!(state, qb);
                let (s, _) = step(precision);
                for (o, p) in out.iter().zip(&b) {
                    assert!((*o - *p).abs().max_element() <= s * 0.5 + 1e-4, "{o} vs {p}");
                }
            }
        }
    }

    #[test]
    fn out_of_range_and_non_finite_coordinates_are_refused() {
        assert!(Quantized::from_positions(&[Vec3::new(f32::NAN, 0.0, 0.0)], 3).is_err());
        assert!(Quantized::from_positions(&[Vec3::new(3.0e5, 0.0, 0.0)], 3).is_err());
        assert!(Quantized::from_positions(&[Vec3::new(3.0e5, 0.0, 0.0)], 2).is_ok());
    }

    #[test]
    fn malformed_deltas_are_rejected_before_applying() {
        let a = cloud(100, 3);
        let qa = Quantized::from_positions(&a, 3).unwrap();
        let mut w = Writer::new();
        encode_delta(&Quantized::zeros(100), &qa, true, &mut w);
        for cut in 0..w.buf.len() {
            assert!(validate_delta(&w.buf[..cut], 100).is_err());
        }
        let mut longer = w.buf.clone();
        longer.push(0);
        assert!(validate_delta(&longer, 100).is_err());
        // A count needing another block (the exact count is checked against the header).
        assert!(validate_delta(&w.buf, 129).is_err());
    }
}

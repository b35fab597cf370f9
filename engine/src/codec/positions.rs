//! Quantized positions and the position-delta payload.
//!
//! A position is quantized per axis to `q = round(p · 10^k)` (precision `k` from the header),
//! with `|q| < 2^28`. A payload codes the quantized positions `c` of a frame against those of its
//! base frame `b` (all zero for the positions of a keyframe). The byte-level layout is specified
//! in `docs/format/positions.md`; in short:
//!
//! **Coding byte.** The payload starts with one byte: 1 = *packed* (bit-packed 32-value blocks,
//! the fastest to decode), 2 = *entropy* (rANS over value tokens, the most compact). Other values
//! are refused.
//!
//! **Plan.** The atoms are cut into segments. A segment has a length `L` and a period `p` (1–8)
//! and gives each of its `p` *slots* a predictor; atom `j` of the segment is in slot `j mod p`.
//! A repeated molecule (water) becomes one segment whose slots are its atoms, so the oxygen can
//! be predicted in time while the hydrogens are predicted from the oxygen and a virtual site from
//! the three atoms before it. The predictors, with `t[i] = c[i] − b[i]` (`t[−1] = 0`, and
//! `c[j] = 0` for `j < 0`), all in wrapping 32-bit arithmetic:
//!
//! | id | predictor | prediction of `c[i]` |
//! |---|---|---|
//! | 0 | temporal | `b[i]` |
//! | 1 | temporal difference | `b[i] + t[i−1]` (neighbouring atoms move together) |
//! | 2 | per block | 0 or 1, chosen per block of 32 atoms of the slot by a mode bit |
//! | 3 | linear (w2, w3) | `c[i−1] + ((w2·(c[i−2] − c[i−1]) + w3·(c[i−3] − c[i−1]) + 2^15) >> 16)` in 64-bit |
//!
//! Linear covers the spatial predictors (`c[i−1]`: w = 0, 0; `c[i−2]`: 65536, 0; `c[i−3]`: 0,
//! 65536) and fixed linear combinations such as the TIP4P M site. The encoder chooses the
//! segments and predictors from the data (nothing depends on residue names); they are in the
//! payload, so the decoder needs nothing but the base positions.
//!
//! **Residuals.** Atom `i` carries `zigzag(c[i] − prediction)` per axis. Decoding goes in atom
//! order, so every predictor sees the current positions of the atoms before it.
//!
//! - *Packed*: each slot of each segment is a *lane* of `ceil((L − s) / p)` atoms. Lanes are
//!   stored in order (segment, then slot) as blocks of 32 atoms: a u16 header (widths of x, y
//!   and z in bits 0–4, 5–9 and 10–14; bit 15 the mode bit of a per-block slot, 0 otherwise) and
//!   three 32-value bit-packed blocks. With one segment of period 1 and the per-block predictor,
//!   this is exactly the original block layout.
//! - *Entropy*: up to 8 token frequency tables (each slot names one), the per-block mode bits,
//!   then rANS-coded tokens of every residual in atom order (state `a` codes axis `a`) and the
//!   tokens' extra bits as a raw bit stream. See [`super::entropy`].
//!
//! Both decoders first check the structure with [`validate_delta`], then decode in one pass
//! straight into the caller's buffer without allocating.

use glam::Vec3;

use super::CodecError;
use super::bits::{BLOCK, Reader, Writer, bit_width, unpack, unzigzag, zigzag};
use super::entropy::{
    BitReader, BitWriter, DecTable, EncTable, RansDecoder, RansEncoder, TOKEN_BASE, TOKEN_EXTRA, TOKENS, normalize,
    token, write_table,
};
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

/// Longest repeat period of a segment.
pub const MAX_PERIOD: usize = 8;

/// Most entropy tables in one payload.
pub const MAX_TABLES: usize = 8;

/// Atoms per block of a lane.
const LANE_BLOCK: usize = BLOCK;

/// How the residuals of a payload are stored (its first byte).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Coding {
    /// Bit-packed 32-value blocks: decodes fastest.
    #[default]
    Packed = 1,
    /// rANS over value tokens with per-frame tables: the most compact. The encoder falls back to
    /// [`Coding::Packed`] for a frame where this would not be smaller.
    Entropy = 2,
}

impl Coding {
    fn from_u8(v: u8) -> Result<Self, CodecError> {
        match v {
            1 => Ok(Self::Packed),
            2 => Ok(Self::Entropy),
            _ => Err(CodecError::Corrupt("unknown position coding")),
        }
    }
}

/// The coding [`encode_delta`] uses.
pub const DEFAULT_CODING: Coding = Coding::Packed;

/// Options of [`encode_delta_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeltaOptions {
    /// Residual coding.
    pub coding: Coding,
    /// The base carries no information (all zeros, a keyframe's positions): only spatial
    /// predictors are tried.
    pub keyframe: bool,
}

/// A slot's predictor (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predictor {
    /// `b[i]`.
    Temporal,
    /// `b[i] + t[i−1]`.
    TemporalDiff,
    /// Temporal or temporal difference, per block of 32 atoms of the lane.
    Block,
    /// `c[i−1] + round(w2·(c[i−2] − c[i−1]) + w3·(c[i−3] − c[i−1]))`, weights in 1/65536.
    Linear {
        /// Weight of `c[i−2] − c[i−1]`.
        w2: i32,
        /// Weight of `c[i−3] − c[i−1]`.
        w3: i32,
    },
}

/// Spatial predictors as linear ones.
const S1: Predictor = Predictor::Linear { w2: 0, w3: 0 };
const S2: Predictor = Predictor::Linear { w2: 1 << 16, w3: 0 };
const S3: Predictor = Predictor::Linear { w2: 0, w3: 1 << 16 };

/// One segment of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    len: usize,
    period: usize,
    slots: [Predictor; MAX_PERIOD],
    tables: [u8; MAX_PERIOD],
}

impl Segment {
    /// Atoms of slot `s` (the length of its lane).
    fn lane_len(&self, s: usize) -> usize {
        (self.len + self.period - 1 - s) / self.period
    }

    fn write(&self, entropy: bool, w: &mut Writer) {
        w.varint(self.len as u64);
        w.u8(self.period as u8);
        for s in 0..self.period {
            match self.slots[s] {
                Predictor::Temporal => w.u8(0),
                Predictor::TemporalDiff => w.u8(1),
                Predictor::Block => w.u8(2),
                Predictor::Linear { w2, w3 } => {
                    w.u8(3);
                    w.u32(w2 as u32);
                    w.u32(w3 as u32);
                }
            }
            if entropy {
                w.u8(self.tables[s]);
            }
        }
    }

    /// Reads a segment of at most `left` atoms; `tables` is the table count (0: packed).
    fn read(r: &mut Reader<'_>, left: usize, tables: usize) -> Result<Self, CodecError> {
        let len = r.count(left)?;
        if len == 0 {
            return Err(CodecError::Corrupt("empty position segment"));
        }
        let period = usize::from(r.u8()?);
        if period == 0 || period > MAX_PERIOD {
            return Err(CodecError::Corrupt("position segment period out of range"));
        }
        let mut seg = Self { len, period, slots: [Predictor::Temporal; MAX_PERIOD], tables: [0; MAX_PERIOD] };
        for s in 0..period {
            seg.slots[s] = match r.u8()? {
                0 => Predictor::Temporal,
                1 => Predictor::TemporalDiff,
                2 => Predictor::Block,
                3 => Predictor::Linear { w2: r.u32()? as i32, w3: r.u32()? as i32 },
                _ => return Err(CodecError::Corrupt("unknown position predictor")),
            };
            if tables > 0 {
                seg.tables[s] = r.u8()?;
                if usize::from(seg.tables[s]) >= tables {
                    return Err(CodecError::Corrupt("position slot names a missing table"));
                }
            }
        }
        Ok(seg)
    }
}

/// `c[i−k]`, 0 before the first atom.
#[inline]
fn back(col: &[i32], i: usize, k: usize) -> i32 {
    if i >= k { col[i - k] } else { 0 }
}

/// The linear prediction from the three atoms before.
#[inline]
fn linear(c1: i32, c2: i32, c3: i32, w2: i32, w3: i32) -> i32 {
    let d2 = i64::from(c2.wrapping_sub(c1));
    let d3 = i64::from(c3.wrapping_sub(c1));
    let p = (i64::from(w2) * d2 + i64::from(w3) * d3 + (1 << 15)) >> 16;
    c1.wrapping_add(p as i32)
}

/// Prediction of atom `i` on one axis, with `b` its base value and `t_prev` the motion of the
/// atom before. `Block` must have been resolved to its block's mode.
#[inline]
fn predict(p: Predictor, col: &[i32], i: usize, b: i32, t_prev: i32) -> i32 {
    match p {
        Predictor::Temporal | Predictor::Block => b,
        Predictor::TemporalDiff => b.wrapping_add(t_prev),
        Predictor::Linear { w2, w3 } => linear(back(col, i, 1), back(col, i, 2), back(col, i, 3), w2, w3),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

/// Appends the payload coding `cur` against `base` (same length) with the default coding.
/// `force_mode1` marks a keyframe's positions (an all-zero base): only spatial predictors.
pub fn encode_delta(base: &Quantized, cur: &Quantized, force_mode1: bool, w: &mut Writer) {
    encode_delta_with(base, cur, DeltaOptions { coding: DEFAULT_CODING, keyframe: force_mode1 }, w);
}

/// Appends the payload coding `cur` against `base` (same length) as `options` say.
pub fn encode_delta_with(base: &Quantized, cur: &Quantized, options: DeltaOptions, w: &mut Writer) {
    debug_assert_eq!(base.len(), cur.len());
    let plan = choose_plan(base, cur, options.keyframe);
    let res = Residuals::new(base, cur, &plan);
    match options.coding {
        Coding::Packed => write_packed(&plan, &res, w),
        Coding::Entropy => {
            let mut e = Writer::with_capacity(cur.len() * 3);
            let mut plan = plan;
            write_entropy(&mut plan, &res, &mut e);
            let mut p = Writer::with_capacity(cur.len() * 4);
            write_packed(&plan, &res, &mut p);
            w.buf.extend_from_slice(if e.buf.len() < p.buf.len() { &e.buf } else { &p.buf });
        }
    }
}

/// The motion `t` and the residuals under the simple candidates, per atom and axis.
struct Columns<'a> {
    base: [&'a [i32]; 3],
    cur: [&'a [i32]; 3],
}

impl Columns<'_> {
    #[inline]
    fn t(&self, a: usize, i: usize) -> i32 {
        self.cur[a][i].wrapping_sub(self.base[a][i])
    }

    #[inline]
    fn t_prev(&self, a: usize, i: usize) -> i32 {
        if i == 0 { 0 } else { self.t(a, i - 1) }
    }

    /// Zigzag residual of atom `i` on axis `a` under `p` (`Block` as temporal).
    #[inline]
    fn residual(&self, p: Predictor, a: usize, i: usize) -> u32 {
        let pred = predict(p, self.cur[a], i, self.base[a][i], self.t_prev(a, i));
        zigzag(self.cur[a][i].wrapping_sub(pred))
    }
}

/// Candidate predictors of the plan search, in cost-column order.
const CANDIDATES: [Predictor; 5] = [Predictor::Temporal, Predictor::TemporalDiff, S1, S2, S3];

/// Bits charged per slot of a segment when comparing periods (its descriptor, and a margin
/// against fitting noise).
const SLOT_PENALTY: u64 = 48;

/// Atoms per window of the plan search.
const WINDOW: usize = 512;

/// Chooses segments and predictors: per window of atoms the period whose best per-slot simple
/// predictors cost least, equal neighbours merged, then a least-squares linear predictor per
/// slot of repeated segments where it pays.
fn choose_plan(base: &Quantized, cur: &Quantized, keyframe: bool) -> Vec<Segment> {
    let n = cur.len();
    let cols = Columns { base: [&base.x, &base.y, &base.z], cur: [&cur.x, &cur.y, &cur.z] };
    let first = if keyframe { 2 } else { 0 };
    // Approximate cost (summed bit widths over the axes) of every candidate for every atom.
    let cost: Vec<[u8; 5]> = (0..n)
        .map(|i| {
            let mut c = [0u8; 5];
            for (k, p) in CANDIDATES.iter().enumerate() {
                c[k] = (0..3).map(|a| bit_width(cols.residual(*p, a, i)) as u8).sum();
            }
            c
        })
        .collect();

    // Per window: the best period and, per absolute residue i mod p, the best candidate
    // (index into CANDIDATES, or 5 for per-block).
    let mut windows: Vec<(usize, usize, [u8; MAX_PERIOD])> = Vec::new();
    let mut ws = 0;
    while ws < n {
        let we = (ws + WINDOW).min(n);
        let mut best: Option<(u64, usize, [u8; MAX_PERIOD])> = None;
        for p in 1..=MAX_PERIOD.min(we - ws) {
            let mut sums = [[0u64; 5]; MAX_PERIOD];
            for (i, c) in cost.iter().enumerate().take(we).skip(ws) {
                let row = &mut sums[i % p];
                for k in 0..5 {
                    row[k] += u64::from(c[k]);
                }
            }
            let mut total = SLOT_PENALTY * p as u64;
            let mut pattern = [0u8; MAX_PERIOD];
            for r in 0..p {
                let (k, v) = (first..5).map(|k| (k, sums[r][k])).min_by_key(|&(_, v)| v).unwrap_or((2, 0));
                pattern[r] = k as u8;
                total += v;
            }
            if p == 1 && !keyframe {
                let block: u64 = cost[ws..we]
                    .chunks(LANE_BLOCK)
                    .map(|ch| {
                        let t: u64 = ch.iter().map(|c| u64::from(c[0])).sum();
                        let d: u64 = ch.iter().map(|c| u64::from(c[1])).sum();
                        t.min(d) + 1
                    })
                    .sum::<u64>()
                    + SLOT_PENALTY;
                if block < total {
                    total = block;
                    pattern[0] = 5;
                }
            }
            if best.is_none_or(|(b, _, _)| total < b) {
                best = Some((total, p, pattern));
            }
        }
        let (_, p, pattern) = best.unwrap_or((0, 1, [2; MAX_PERIOD]));
        match windows.last_mut() {
            Some((_, lp, lpat)) if *lp == p && *lpat == pattern => {}
            _ => windows.push((ws, p, pattern)),
        }
        ws = we;
    }

    let mut plan = Vec::with_capacity(windows.len());
    for (k, &(start, p, pattern)) in windows.iter().enumerate() {
        let end = windows.get(k + 1).map_or(n, |w| w.0);
        let mut seg =
            Segment { len: end - start, period: p, slots: [Predictor::Temporal; MAX_PERIOD], tables: [0; MAX_PERIOD] };
        for s in 0..p {
            let k = pattern[(start + s) % p];
            seg.slots[s] = if k == 5 { Predictor::Block } else { CANDIDATES[usize::from(k)] };
        }
        if p > 1 {
            for s in 0..p {
                refine_linear(&cols, start, &mut seg, s);
            }
        }
        plan.push(seg);
    }
    plan
}

/// Replaces slot `s` of `seg` (starting at atom `start`) by a least-squares linear predictor
/// when that lowers its cost, and by the temporal one when a residual would not fit 31 bits.
fn refine_linear(cols: &Columns<'_>, start: usize, seg: &mut Segment, s: usize) {
    let atoms = || (start + s..start + seg.len).step_by(seg.period).filter(|&i| i >= 3);
    // Normal equations of c[i] − c[i−1] ≈ w2·(c[i−2] − c[i−1]) + w3·(c[i−3] − c[i−1]).
    let (mut uu, mut uv, mut vv, mut uy, mut vy) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for i in atoms() {
        for col in cols.cur {
            let c1 = f64::from(col[i - 1]);
            let (u, v, y) = (f64::from(col[i - 2]) - c1, f64::from(col[i - 3]) - c1, f64::from(col[i]) - c1);
            uu += u * u;
            uv += u * v;
            vv += v * v;
            uy += u * y;
            vy += v * y;
        }
    }
    let cost = |p: Predictor| -> (u64, bool) {
        let mut bits = 0u64;
        let mut fits = true;
        for i in (start + s..start + seg.len).step_by(seg.period) {
            for a in 0..3 {
                let wdt = bit_width(cols.residual(p, a, i));
                fits &= wdt <= 31;
                bits += u64::from(wdt);
            }
        }
        (bits, fits)
    };
    let current = seg.slots[s];
    // Per-block slots are costed as their better mode per block, which this does not model:
    // leave them alone.
    if current == Predictor::Block {
        return;
    }
    let (mut best_bits, fits) = cost(current);
    if !fits {
        seg.slots[s] = Predictor::Temporal;
        best_bits = cost(Predictor::Temporal).0;
    }
    let det = uu * vv - uv * uv;
    if det.abs() > 1e-9 * (uu * vv).max(1.0) {
        let w2 = (uy * vv - vy * uv) / det;
        let w3 = (uu * vy - uv * uy) / det;
        let q = |w: f64| (w * 65536.0).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
        let cand = Predictor::Linear { w2: q(w2), w3: q(w3) };
        let (bits, fits) = cost(cand);
        if fits && bits + SLOT_PENALTY < best_bits {
            seg.slots[s] = cand;
        }
    }
}

/// Final zigzag residuals in atom order and the per-block mode bits, lane by lane.
struct Residuals {
    zz: Vec<[u32; 3]>,
    modes: Vec<bool>,
}

impl Residuals {
    fn new(base: &Quantized, cur: &Quantized, plan: &[Segment]) -> Self {
        let n = cur.len();
        let cols = Columns { base: [&base.x, &base.y, &base.z], cur: [&cur.x, &cur.y, &cur.z] };
        let mut zz = vec![[0u32; 3]; n];
        let mut modes = Vec::new();
        let mut start = 0;
        for seg in plan {
            for s in 0..seg.period {
                let lane: Vec<usize> = (start + s..start + seg.len).step_by(seg.period).collect();
                match seg.slots[s] {
                    Predictor::Block => {
                        for chunk in lane.chunks(LANE_BLOCK) {
                            let mut or = [[0u32; 3]; 2];
                            for &i in chunk {
                                for a in 0..3 {
                                    or[0][a] |= cols.residual(Predictor::Temporal, a, i);
                                    or[1][a] |= cols.residual(Predictor::TemporalDiff, a, i);
                                }
                            }
                            let width = |o: &[u32; 3]| o.iter().map(|&v| bit_width(v)).sum::<u32>();
                            let mode = width(&or[1]) < width(&or[0]);
                            modes.push(mode);
                            let p = if mode { Predictor::TemporalDiff } else { Predictor::Temporal };
                            for &i in chunk {
                                zz[i] = [0, 1, 2].map(|a| cols.residual(p, a, i));
                            }
                        }
                    }
                    p => {
                        for &i in &lane {
                            zz[i] = [0, 1, 2].map(|a| cols.residual(p, a, i));
                        }
                    }
                }
            }
            start += seg.len;
        }
        Self { zz, modes }
    }
}

fn write_plan(plan: &[Segment], entropy: bool, w: &mut Writer) {
    w.varint(plan.len() as u64);
    for seg in plan {
        seg.write(entropy, w);
    }
}

fn write_packed(plan: &[Segment], res: &Residuals, w: &mut Writer) {
    w.u8(Coding::Packed as u8);
    write_plan(plan, false, w);
    let mut modes = res.modes.iter();
    let mut start = 0;
    let mut block = [[0u32; BLOCK]; 3];
    for seg in plan {
        for s in 0..seg.period {
            let lane: Vec<usize> = (start + s..start + seg.len).step_by(seg.period).collect();
            for chunk in lane.chunks(LANE_BLOCK) {
                let mut or = [0u32; 3];
                for a in 0..3 {
                    for (k, slot) in block[a].iter_mut().enumerate() {
                        *slot = chunk.get(k).map_or(0, |&i| res.zz[i][a]);
                        or[a] |= *slot;
                    }
                }
                let widths = or.map(bit_width);
                debug_assert!(widths.iter().all(|&v| v <= 31), "quantized values beyond Q_LIMIT");
                let mode = seg.slots[s] == Predictor::Block && modes.next().copied().unwrap_or(false);
                let h = widths[0].min(31) | widths[1].min(31) << 5 | widths[2].min(31) << 10 | u32::from(mode) << 15;
                w.u16(h as u16);
                for a in 0..3 {
                    w.pack_block(&block[a], widths[a].min(31));
                }
            }
        }
        start += seg.len;
    }
}

fn write_entropy(plan: &mut [Segment], res: &Residuals, w: &mut Writer) {
    // One table per distinct (period, slot predictors, residue) of the segments.
    let mut keys: Vec<(usize, [Predictor; MAX_PERIOD], usize)> = Vec::new();
    let mut start = 0;
    for seg in plan.iter_mut() {
        for s in 0..seg.period {
            let key = (seg.period, seg.slots, (start + s) % seg.period);
            let id = keys.iter().position(|k| *k == key).unwrap_or_else(|| {
                keys.push(key);
                keys.len() - 1
            });
            seg.tables[s] = id.min(MAX_TABLES - 1) as u8;
        }
        start += seg.len;
    }
    let ntables = keys.len().clamp(1, MAX_TABLES);
    let n = res.zz.len();
    let mut table_of = Vec::with_capacity(n);
    for seg in plan.iter() {
        for j in 0..seg.len {
            table_of.push(seg.tables[j % seg.period]);
        }
    }
    let mut counts = vec![[0u64; TOKENS]; ntables];
    for (z, &t) in res.zz.iter().zip(&table_of) {
        for &v in z {
            counts[usize::from(t)][usize::from(token(v).0)] += 1;
        }
    }
    let freqs: Vec<[u32; TOKENS]> = counts.iter().map(normalize).collect();
    let enc: Vec<EncTable> = freqs.iter().map(EncTable::new).collect();

    w.u8(Coding::Entropy as u8);
    w.u8(ntables as u8);
    for f in &freqs {
        write_table(f, w);
    }
    write_plan(plan, true, w);
    let mut bitmap = vec![0u8; res.modes.len().div_ceil(8)];
    for (k, &m) in res.modes.iter().enumerate() {
        bitmap[k / 8] |= u8::from(m) << (k % 8);
    }
    w.buf.extend_from_slice(&bitmap);
    let mut rans = RansEncoder::new();
    for (z, &t) in res.zz.iter().zip(&table_of).rev() {
        for a in (0..3).rev() {
            rans.put(a, &enc[usize::from(t)], token(z[a]).0);
        }
    }
    rans.finish(w);
    let mut raw = BitWriter::default();
    for z in &res.zz {
        for &v in z {
            let (_, e, x) = token(v);
            raw.put(x, e);
        }
    }
    w.buf.extend_from_slice(&raw.finish());
}

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

/// Checks that `payload` is a well-formed payload of `n` atoms: a known coding, a plan covering
/// exactly `n` atoms, valid tables, and every block and stream present. Run before any state
/// changes; [`apply_delta`] cannot fail on a payload this accepted.
pub fn validate_delta(payload: &[u8], n: usize) -> Result<(), CodecError> {
    let mut r = Reader::new(payload);
    let coding = Coding::from_u8(r.u8()?)?;
    let ntables = if coding == Coding::Entropy {
        let t = usize::from(r.u8()?);
        if t == 0 || t > MAX_TABLES {
            return Err(CodecError::Corrupt("entropy table count out of range"));
        }
        let mut table = DecTable::default();
        for _ in 0..t {
            table.read(&mut r)?;
        }
        t
    } else {
        0
    };
    let segments = read_plan_len(&mut r, n)?;
    let mut plan = r.clone();
    let block_bits = skip_plan(&mut r, segments, n, ntables)?;
    let mut left = n;
    for _ in 0..segments {
        let seg = Segment::read(&mut plan, left, ntables)?;
        left -= seg.len;
        for s in 0..seg.period {
            let blocks = seg.lane_len(s).div_ceil(LANE_BLOCK);
            let per_block = seg.slots[s] == Predictor::Block;
            if coding == Coding::Entropy {
                continue;
            }
            for _ in 0..blocks {
                let h = u32::from(r.u16()?);
                if h >> 15 == 1 && !per_block {
                    return Err(CodecError::Corrupt("mode bit on a slot without per-block modes"));
                }
                r.take(4 * ((h & 31) + (h >> 5 & 31) + (h >> 10 & 31)) as usize)?;
            }
        }
    }
    if coding == Coding::Entropy {
        r.take(block_bits.div_ceil(8))?;
        RansDecoder::new(&mut r)?;
        // The rest is the raw bit stream.
        return Ok(());
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last position block"));
    }
    Ok(())
}

/// Reads the segment count: at most `n`, and 0 exactly when `n` is 0.
fn read_plan_len(r: &mut Reader<'_>, n: usize) -> Result<usize, CodecError> {
    let segments = r.count(n)?;
    if (segments == 0) != (n == 0) {
        return Err(CodecError::Corrupt("position plan does not cover the atoms"));
    }
    Ok(segments)
}

/// Steps over `segments` segments, checking they cover exactly `n` atoms; returns the number
/// of per-block mode bits they need.
fn skip_plan(r: &mut Reader<'_>, segments: usize, n: usize, tables: usize) -> Result<usize, CodecError> {
    let mut left = n;
    let mut block_bits = 0;
    for _ in 0..segments {
        let seg = Segment::read(r, left, tables)?;
        for s in 0..seg.period {
            if seg.slots[s] == Predictor::Block {
                block_bits += seg.lane_len(s).div_ceil(LANE_BLOCK);
            }
        }
        left -= seg.len;
    }
    if left != 0 {
        return Err(CodecError::Corrupt("position plan does not cover the atoms"));
    }
    Ok(block_bits)
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

/// Applies a validated payload to `state` and writes the dequantized positions to `out` in the
/// same pass. Call [`validate_delta`] first: on a payload it accepted this cannot fail; on
/// anything else it returns an error (possibly after partial application).
pub fn apply_delta<S: PositionSink + ?Sized>(
    payload: &[u8],
    state: &mut Quantized,
    precision: u8,
    out: &mut S,
) -> Result<(), CodecError> {
    let n = state.len();
    if out.len() < n || state.y.len() != n || state.z.len() != n {
        return Err(CodecError::AtomCount {
            expected: u32::try_from(n).unwrap_or(u32::MAX),
            got: u32::try_from(out.len()).unwrap_or(u32::MAX),
        });
    }
    let (s, _) = step(precision);
    let mut r = Reader::new(payload);
    let Quantized { x, y, z } = state;
    let mut cols: [&mut [i32]; 3] = [x, y, z];
    match Coding::from_u8(r.u8()?)? {
        Coding::Packed => apply_packed(r, &mut cols, s, out),
        Coding::Entropy => apply_entropy(r, &mut cols, s, out),
    }
}

/// Dequantizes atom `i` into `out`.
#[inline]
fn emit<S: PositionSink + ?Sized>(out: &mut S, i: usize, v: [i32; 3], s: f32) {
    #[allow(clippy::cast_precision_loss)]
    out.set(i, [v[0] as f32 * s, v[1] as f32 * s, v[2] as f32 * s]);
}

fn apply_packed<S: PositionSink + ?Sized>(
    mut r: Reader<'_>,
    cols: &mut [&mut [i32]; 3],
    step: f32,
    out: &mut S,
) -> Result<(), CodecError> {
    let n = cols[0].len();
    let segments = read_plan_len(&mut r, n)?;
    let mut plan = r.clone();
    skip_plan(&mut r, segments, n, 0)?;
    let mut data = r;
    let mut start = 0;
    let mut t_prev = [0i32; 3];
    for _ in 0..segments {
        let seg = Segment::read(&mut plan, n - start, 0)?;
        let mut lanes: [Reader<'_>; MAX_PERIOD] = core::array::from_fn(|_| data.clone());
        for (s, lane) in lanes.iter_mut().enumerate().take(seg.period) {
            *lane = data.clone();
            for _ in 0..seg.lane_len(s).div_ceil(LANE_BLOCK) {
                let h = u32::from(data.u16()?);
                data.take(4 * ((h & 31) + (h >> 5 & 31) + (h >> 10 & 31)) as usize)?;
            }
        }
        let slot = seg.slots[0];
        if seg.period == 1 && slot != S1 && !matches!(slot, Predictor::Linear { .. }) {
            temporal_lane(&mut lanes[0], slot, start, seg.len, cols, &mut t_prev, step, out)?;
        } else {
            packed_segment(&mut lanes, &seg, start, cols, &mut t_prev, step, out)?;
        }
        start += seg.len;
    }
    Ok(())
}

/// Fast path: a period-1 segment with a temporal predictor, block by block.
#[allow(clippy::too_many_arguments)]
fn temporal_lane<S: PositionSink + ?Sized>(
    lane: &mut Reader<'_>,
    slot: Predictor,
    start: usize,
    len: usize,
    cols: &mut [&mut [i32]; 3],
    t_prev: &mut [i32; 3],
    step: f32,
    out: &mut S,
) -> Result<(), CodecError> {
    let mut raw = [[0u32; BLOCK]; 3];
    let mut vals = [[0i32; BLOCK]; 3];
    let mut j = 0;
    while j < len {
        let m = (len - j).min(BLOCK);
        let h = u32::from(lane.u16()?);
        for (a, raw) in raw.iter_mut().enumerate() {
            let w = h >> (5 * a) & 31;
            if w == 0 {
                *raw = [0; BLOCK];
            } else {
                unpack(lane.take(4 * w as usize)?, w, raw);
            }
        }
        let diff = match slot {
            Predictor::Block => h >> 15 == 1,
            p => p == Predictor::TemporalDiff,
        };
        let at = start + j;
        for a in 0..3 {
            let q = &mut cols[a][at..at + m];
            let v = &mut vals[a];
            if diff {
                let mut t = t_prev[a];
                for k in 0..m {
                    t = t.wrapping_add(unzigzag(raw[a][k]));
                    q[k] = q[k].wrapping_add(t);
                    v[k] = q[k];
                }
                t_prev[a] = t;
            } else {
                for k in 0..m {
                    q[k] = q[k].wrapping_add(unzigzag(raw[a][k]));
                    v[k] = q[k];
                }
                t_prev[a] = unzigzag(raw[a][m - 1]);
            }
        }
        for k in 0..m {
            emit(out, at + k, [vals[0][k], vals[1][k], vals[2][k]], step);
        }
        j += m;
    }
    Ok(())
}

/// Decodes atom `i` on every axis from its zigzag residuals.
#[inline]
fn decode_atom(cols: &mut [&mut [i32]; 3], i: usize, p: Predictor, zz: [u32; 3], t_prev: &mut [i32; 3]) -> [i32; 3] {
    let mut v = [0i32; 3];
    for a in 0..3 {
        let col = &mut *cols[a];
        let b = col[i];
        let c = predict(p, col, i, b, t_prev[a]).wrapping_add(unzigzag(zz[a]));
        col[i] = c;
        t_prev[a] = c.wrapping_sub(b);
        v[a] = c;
    }
    v
}

/// General path: the lanes of one segment advance together, 32 repeats at a time.
fn packed_segment<S: PositionSink + ?Sized>(
    lanes: &mut [Reader<'_>; MAX_PERIOD],
    seg: &Segment,
    start: usize,
    cols: &mut [&mut [i32]; 3],
    t_prev: &mut [i32; 3],
    step: f32,
    out: &mut S,
) -> Result<(), CodecError> {
    let p = seg.period;
    let reps = seg.len.div_ceil(p);
    let mut buf = [[[0u32; BLOCK]; 3]; MAX_PERIOD];
    let mut preds = seg.slots;
    let mut g = 0;
    while g < reps {
        for s in 0..p.min(seg.len - g * p) {
            let lane = &mut lanes[s];
            let h = u32::from(lane.u16()?);
            for (a, raw) in buf[s].iter_mut().enumerate() {
                let w = h >> (5 * a) & 31;
                if w == 0 {
                    *raw = [0; BLOCK];
                } else {
                    unpack(lane.take(4 * w as usize)?, w, raw);
                }
            }
            if seg.slots[s] == Predictor::Block {
                preds[s] = if h >> 15 == 1 { Predictor::TemporalDiff } else { Predictor::Temporal };
            }
        }
        let gend = (g + BLOCK).min(reps);
        for rep in g..gend {
            let k = rep - g;
            let first = start + rep * p;
            for s in 0..p.min(seg.len - rep * p) {
                let zz = [buf[s][0][k], buf[s][1][k], buf[s][2][k]];
                let v = decode_atom(cols, first + s, preds[s], zz, t_prev);
                emit(out, first + s, v, step);
            }
        }
        g = gend;
    }
    Ok(())
}

fn apply_entropy<S: PositionSink + ?Sized>(
    mut r: Reader<'_>,
    cols: &mut [&mut [i32]; 3],
    step: f32,
    out: &mut S,
) -> Result<(), CodecError> {
    let n = cols[0].len();
    let ntables = usize::from(r.u8()?);
    if ntables == 0 || ntables > MAX_TABLES {
        return Err(CodecError::Corrupt("entropy table count out of range"));
    }
    let mut tables: [DecTable; MAX_TABLES] = core::array::from_fn(|_| DecTable::default());
    for table in tables.iter_mut().take(ntables) {
        table.read(&mut r)?;
    }
    let segments = read_plan_len(&mut r, n)?;
    let mut plan = r.clone();
    let block_bits = skip_plan(&mut r, segments, n, ntables)?;
    let bitmap = r.take(block_bits.div_ceil(8))?;
    let mut rans = RansDecoder::new(&mut r)?;
    let mut raw = BitReader::new(r.take(r.remaining())?);
    let mut start = 0;
    let mut bit_base = 0;
    let mut t_prev = [0i32; 3];
    for _ in 0..segments {
        let seg = Segment::read(&mut plan, n - start, ntables)?;
        let p = seg.period;
        let mut lane_bits = [0usize; MAX_PERIOD];
        for s in 0..p {
            if seg.slots[s] == Predictor::Block {
                lane_bits[s] = bit_base;
                bit_base += seg.lane_len(s).div_ceil(LANE_BLOCK);
            }
        }
        let (mut s, mut rep) = (0, 0);
        for i in start..start + seg.len {
            let table = &tables[usize::from(seg.tables[s])];
            let pred = match seg.slots[s] {
                Predictor::Block => {
                    let bit = lane_bits[s] + rep / LANE_BLOCK;
                    if bitmap.get(bit / 8).is_some_and(|&b| b >> (bit % 8) & 1 == 1) {
                        Predictor::TemporalDiff
                    } else {
                        Predictor::Temporal
                    }
                }
                pred => pred,
            };
            let mut zz = [0u32; 3];
            for (a, z) in zz.iter_mut().enumerate() {
                let t = usize::from(rans.get(a, table));
                *z = TOKEN_BASE[t].wrapping_add(raw.get(u32::from(TOKEN_EXTRA[t])));
            }
            let v = decode_atom(cols, i, pred, zz, &mut t_prev);
            emit(out, i, v, step);
            s += 1;
            if s == p {
                s = 0;
                rep += 1;
            }
        }
        start += seg.len;
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

//! Quantized positions and the position-delta payload.
//!
//! A position is quantized per axis to `q = round(p · 10^k)` (precision `k` from the header),
//! with `|q| < 2^28`. A payload codes the quantized positions `c` of a frame against those of its
//! base frame `b` (all zero for the positions of a keyframe). The byte-level layout is specified
//! in `docs/format/positions.md`; in short:
//!
//! **Coding byte.** The payload starts with one byte: 1 = *bits* (the original per-axis
//! bit-packed blocks), 3 = *packed* (per block, bit-packed or mixed-radix: fast to decode and the
//! default), 2 = *entropy* (rANS over value tokens, the most compact). Other values are refused.
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
//! | 3 | linear (w2, w3) | `c[i−1] + ((w2·(c[i−2] − c[i−1]) + w3·(c[i−3] − c[i−1]) + 2^15) >> 16)`, arithmetic shift |
//!
//! Linear covers the spatial predictors (`c[i−1]`: w = 0, 0; `c[i−2]`: 65536, 0; `c[i−3]`: 0,
//! 65536) and fixed linear combinations such as the TIP4P M site. The encoder chooses the
//! segments and predictors from the data (nothing depends on residue names); they are in the
//! payload, so the decoder needs nothing but the base positions.
//!
//! **Residuals.** Atom `i` carries `zigzag(c[i] − prediction)` per axis. Decoding goes in atom
//! order, so every predictor sees the current positions of the atoms before it. Each slot of a
//! segment is a *lane* of `ceil((L − s) / p)` atoms, cut into blocks of 32.
//!
//! **Layout** (little-endian; `varint` is LEB128):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | coding: 1 bits, 2 entropy, 3 packed |
//! | … | entropy only: `T` (u8, 1–8), then `T` tables: `K` (u8, 1–128), `K` varint frequencies summing to 2048 |
//! | varint | segment count `S` (0 iff `n = 0`) |
//! | per segment | varint `L` (≥ 1, the `L` sum to `n`), u8 `p` (1–8), per slot: u8 predictor id, for id 3 i32 `w2` and i32 `w3`, in the entropy coding a u8 table index |
//!
//! *Bits* (1), then: the lanes in order (segment, then slot), each as its blocks of 32 atoms:
//!
//! | bytes | field |
//! |---|---|
//! | 2 | u16: widths of x, y, z in bits 0–4, 5–9, 10–14; bit 15 the mode bit of a per-block slot (0 otherwise) |
//! | 4·w each | 32 zigzag residuals per axis, bit-packed ([`super::bits`]) |
//!
//! With one segment of period 1 and the per-block predictor this is exactly the original block
//! layout.
//!
//! *Packed* (3): the same lanes, each block behind a byte `h` (bit 7 the mode bit, bits 0–6 the
//! kind):
//!
//! | kind | then | data |
//! |---|---|---|
//! | 0 bits | u16 widths (bit 15 zero) | as in coding 1 |
//! | 1 radix | varints `Rx − 1`, `Ry − 1`, `Rz − 1` (product ≤ 2^32) | 32 values `ux + Rx·(uy + Ry·uz)` at `bit_width(Rx·Ry·Rz − 1)` bits |
//! | 2 radix again | — (the lane's last kind-1 ranges) | as kind 1 |
//!
//! *Entropy* (2), then:
//!
//! | bytes | field |
//! |---|---|
//! | ⌈M/8⌉ | mode bits of the per-block lanes' blocks, LSB first |
//! | 12 | rANS states 0, 1, 2 (u32) |
//! | 3 × (varint + 2·W) | per state, `W` and its 16-bit rANS words |
//! | varint + R | `R` and the raw extra bits |
//!
//! Tokens go in atom order, x, y, z on states 0, 1, 2 with the table of the atom's slot; each
//! token's extra bits follow in the raw stream in the same order ([`super::entropy`]).
//!
//! Both decoders first check the structure with [`validate_delta`], then decode in one pass
//! straight into the caller's buffer. The packed decoder allocates nothing; the entropy decoder
//! allocates only its decoding tables (at most 8 × 8 KiB).

// The kernels index several parallel arrays (slots × axes × repeats) by the same counters; range
// loops say that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

use glam::Vec3;

use super::CodecError;
use super::bits::{BLOCK, Reader, Writer, bit_width, unpack, unzigzag, zigzag};
use super::entropy::{
    BitReader, BitWriter, DecTable, EncTable, RansDecoder, RansEncoder, TOKEN_BASE, TOKEN_EXTRA, TOKENS, check_table,
    normalize, token, write_table,
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
        #[allow(clippy::cast_precision_loss)]
        let limit = Q_LIMIT as f32;
        // NaN fails the comparison too. No f32 lies strictly between 2^28 − 16 and 2^28, so
        // testing before rounding is testing after. Checked first, in one branch-free pass, so
        // the three column passes below are straight loops.
        let fine = positions.iter().fold(true, |ok, p| {
            ok & ((p.x * inv).abs() < limit) & ((p.y * inv).abs() < limit) & ((p.z * inv).abs() < limit)
        });
        if !fine {
            let in_range = |v: f32| (v * inv).abs() < limit;
            let bad = positions.iter().flat_map(|p| [p.x, p.y, p.z]).find(|v| !in_range(*v));
            return Err(CodecError::OutOfRange(bad.unwrap_or(f32::NAN)));
        }
        let n = positions.len();
        let mut q = Self { x: vec![0; n], y: vec![0; n], z: vec![0; n] };
        for (((p, x), y), z) in positions.iter().zip(&mut q.x).zip(&mut q.y).zip(&mut q.z) {
            *x = round_half_away(p.x * inv);
            *y = round_half_away(p.y * inv);
            *z = round_half_away(p.z * inv);
        }
        Ok(q)
    }
}

/// `s.round() as i32` for `|s| < 2^28`, without the libm call `f32::round` compiles to on
/// baseline x86-64 (it was a tenth of the encoder's time): the truncation is exact, and so is
/// the fraction `s − trunc(s)` (an integer at most `|s|` apart in the same or a lower binade).
#[inline]
fn round_half_away(s: f32) -> i32 {
    // The clamp (a no-op for the checked inputs) tells the compiler the value is a number in
    // range, so the cast needs none of the NaN and saturation fix-ups `as` otherwise adds.
    #[allow(clippy::cast_precision_loss)]
    let s = s.max(-(Q_LIMIT as f32)).min(Q_LIMIT as f32);
    #[allow(clippy::cast_possible_truncation)]
    let t = s as i32;
    #[allow(clippy::cast_precision_loss)]
    let frac = s - t as f32;
    t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)
}

/// Deltas a plan is reused for before it is searched again ([`PlanCache`]).
pub const REPLAN_EVERY: u32 = 32;

/// The plan of the last position delta of a stream, reused by the next ones
/// ([`encode_delta_cached`]): the plan search (segments, periods, predictors, linear fits) is
/// most of the encoder's time, and the structure it finds (a protein, then water molecules of
/// period 3 or 4, …) does not change from one frame to the next. A new search is made every
/// [`REPLAN_EVERY`] deltas, when the atom count changes, when a residual under the kept plan
/// would not fit the payload's 31 bits, and when a payload under the kept plan grows by more
/// than a quarter over the one it was searched for. The plan travels in every payload, so
/// the decoder needs nothing of this.
#[derive(Clone, Debug, Default)]
pub struct PlanCache {
    plan: Vec<Segment>,
    atoms: usize,
    age: u32,
    planned_bytes: usize,
    searches: u64,
}

impl PlanCache {
    /// Plan searches made so far.
    #[must_use]
    pub fn searches(&self) -> u64 {
        self.searches
    }

    /// Forgets the plan: the next delta searches anew.
    pub fn clear(&mut self) {
        self.plan.clear();
        self.atoms = 0;
    }
}

/// [`encode_delta_with`] for one stream's successive deltas, reusing the plan of the previous
/// ones while it serves (see [`PlanCache`]). Keyframe payloads (`options.keyframe`) always
/// search.
pub fn encode_delta_cached(
    base: &Quantized,
    cur: &Quantized,
    options: DeltaOptions,
    cache: &mut PlanCache,
    w: &mut Writer,
) {
    debug_assert_eq!(base.len(), cur.len());
    let start = w.buf.len();
    let reuse = !options.keyframe && cache.atoms == cur.len() && !cache.plan.is_empty() && cache.age < REPLAN_EVERY;
    if reuse {
        let res = Residuals::new(base, cur, &cache.plan);
        if res.fits() {
            write_coded(cache.plan.clone(), &res, options.coding, w);
            cache.age += 1;
            if (w.buf.len() - start) * 4 > cache.planned_bytes * 5 {
                cache.age = REPLAN_EVERY;
            }
            return;
        }
    }
    let plan = choose_plan(base, cur, options.keyframe);
    let res = Residuals::new(base, cur, &plan);
    write_coded(plan.clone(), &res, options.coding, w);
    cache.searches += 1;
    if !options.keyframe {
        *cache = PlanCache { plan, atoms: cur.len(), age: 0, planned_bytes: w.buf.len() - start, ..*cache };
    }
}

fn write_coded(plan: Vec<Segment>, res: &Residuals, coding: Coding, w: &mut Writer) {
    match coding {
        Coding::Bits => {
            write_packed(&plan, res, Coding::Bits, w);
        }
        Coding::Packed => write_fast(&plan, res, w),
        Coding::Entropy => {
            let n = res.zz.len();
            let mut e = Writer::with_capacity(n * 3);
            let mut plan = plan;
            write_entropy(&mut plan, res, &mut e);
            let mut p = Writer::with_capacity(n * 4);
            write_fast(&plan, res, &mut p);
            w.buf.extend_from_slice(if e.buf.len() < p.buf.len() { &e.buf } else { &p.buf });
        }
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
    /// Per axis, 32 values bit-packed at one width, behind a u16 header per block: the original
    /// block layout, kept decodable and encodable.
    Bits = 1,
    /// rANS over value tokens with per-frame tables: the most compact. The encoder falls back to
    /// [`Coding::Packed`] for a frame where this would not be smaller.
    Entropy = 2,
    /// Per block of 32 atoms, the cheaper of per-axis bit-packing and a mixed-radix number per
    /// atom (its three residuals as one integer of `ceil(log2(Rx·Ry·Rz))` bits), with 1-byte
    /// headers that may repeat the lane's previous ranges: decodes fast, and packs small
    /// residuals without rounding each axis up to whole bits. The encoder writes
    /// [`Coding::Bits`] instead for a frame where that is smaller.
    #[default]
    Packed = 3,
}

impl Coding {
    fn from_u8(v: u8) -> Result<Self, CodecError> {
        match v {
            1 => Ok(Self::Bits),
            2 => Ok(Self::Entropy),
            3 => Ok(Self::Packed),
            _ => Err(CodecError::Corrupt("unknown position coding")),
        }
    }
}

/// The coding [`encode_delta`] (and so `StreamEncoder`) uses: [`Coding::Packed`]. For
/// interactive streams it decodes several times faster than [`Coding::Entropy`] (hundreds of
/// millions of atoms per second per core) while already beating XTC's size on solvated
/// trajectories and reaching 1.44 bytes/atom on per-step thermal motion; [`Coding::Entropy`] is
/// 10–15 % smaller again, for links where bandwidth matters more than decode time.
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

/// The linear prediction from the three atoms before, in wrapping 32-bit arithmetic (exact
/// while `|w2·d2 + w3·d3| < 2^31`, which holds for bonded distances at every precision; beyond
/// that the prediction is merely poor, and the encoder, which costs every predictor with this
/// very function, does not choose it).
#[inline]
fn linear(c1: i32, c2: i32, c3: i32, w2: i32, w3: i32) -> i32 {
    let d2 = c2.wrapping_sub(c1);
    let d3 = c3.wrapping_sub(c1);
    let p = w2.wrapping_mul(d2).wrapping_add(w3.wrapping_mul(d3)).wrapping_add(1 << 15) >> 16;
    c1.wrapping_add(p)
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
    write_coded(plan, &res, options.coding, w);
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

/// Candidate predictors of the plan search, in cost-column order; column 5 is the per-block
/// choice between the first two.
const CANDIDATES: [Predictor; 5] = [Predictor::Temporal, Predictor::TemporalDiff, S1, S2, S3];

/// Cost column of the per-block predictor.
const BLOCK_COLUMN: usize = 5;

/// Bits charged per slot of a segment when comparing periods (its descriptor, and a margin
/// against fitting noise).
const SLOT_PENALTY: u64 = 48;

/// Atoms per window of the plan search.
const WINDOW: usize = 128;

/// A run of atoms sharing a period and, per residue `i mod p`, a candidate column.
#[derive(Clone, Debug)]
struct Run {
    start: usize,
    end: usize,
    period: usize,
    /// Summed cost per residue and column.
    sums: [[u64; 6]; MAX_PERIOD],
    /// Chosen column per residue.
    pattern: [u8; MAX_PERIOD],
}

impl Run {
    /// Cost of the best column per residue (`sums` of another run added), without penalty.
    fn best(&self, other: Option<&Run>, first: usize) -> (u64, [u8; MAX_PERIOD]) {
        let mut total = 0;
        let mut pattern = [0u8; MAX_PERIOD];
        for r in 0..self.period {
            let (k, v) = (first..6)
                .map(|k| (k, self.sums[r][k].saturating_add(other.map_or(0, |o| o.sums[r][k]))))
                .min_by_key(|&(_, v)| v)
                .unwrap_or((2, 0));
            pattern[r] = k as u8;
            total += v;
        }
        (total, pattern)
    }

    /// Cost of atom `i` under this run's pattern.
    fn atom_cost(&self, cost: &[[u8; 6]], i: usize) -> u64 {
        u64::from(cost[i][usize::from(self.pattern[i % self.period])])
    }

    /// The residue that should be slot 0: the least predictable one among those predicted in
    /// time (a molecule's first atom, whose position does not follow from the atoms before), so
    /// that the other slots refer only to atoms of the same repeat.
    fn head(&self) -> usize {
        let per_atom = |r: usize| self.sums[r][usize::from(self.pattern[r])];
        let temporal = (0..self.period).filter(|&r| matches!(self.pattern[r], 0 | 1 | 5));
        temporal
            .max_by_key(|&r| per_atom(r))
            .unwrap_or_else(|| (0..self.period).max_by_key(|&r| per_atom(r)).unwrap_or(0))
    }
}

/// Chooses segments and predictors:
/// 1. per window of atoms, the period whose best per-residue simple predictors cost least;
/// 2. neighbouring windows of one period merged where one pattern serves both;
/// 3. each boundary moved to the cheapest atom near it, on the next segment's first residue;
/// 4. per slot of repeated segments, a robust least-squares linear predictor where it pays.
fn choose_plan(base: &Quantized, cur: &Quantized, keyframe: bool) -> Vec<Segment> {
    let n = cur.len();
    let cols = Columns { base: [&base.x, &base.y, &base.z], cur: [&cur.x, &cur.y, &cur.z] };
    let first = if keyframe { 2 } else { 0 };
    // Approximate cost (summed bit widths over the axes) of every candidate for every atom; the
    // per-block column is charged the better temporal one (refined per block below).
    let mut cost: Vec<[u8; 6]> = vec![[0; 6]; n];
    for (a, (&cur, &base)) in cols.cur.iter().zip(&cols.base).enumerate() {
        let width = |v: i32| bit_width(zigzag(v)) as u8;
        let (mut c1, mut c2, mut c3, mut t1) = (0i32, 0i32, 0i32, 0i32);
        for (i, row) in cost.iter_mut().enumerate() {
            let (c, t) = (cur[i], cur[i].wrapping_sub(base[i]));
            row[0] += width(t);
            row[1] += width(t.wrapping_sub(t1));
            row[2] += width(c.wrapping_sub(c1));
            row[3] += width(c.wrapping_sub(c2));
            row[4] += width(c.wrapping_sub(c3));
            if a == 2 {
                row[BLOCK_COLUMN] = if keyframe { u8::MAX } else { row[0].min(row[1]) };
            }
            (c3, c2, c1, t1) = (c2, c1, c, t);
        }
    }

    let mut runs: Vec<Run> = Vec::new();
    let mut ws = 0;
    while ws < n {
        let we = (ws + WINDOW).min(n);
        let mut best: Option<(u64, Run)> = None;
        for p in 1..=MAX_PERIOD.min(we - ws) {
            let mut run = Run { start: ws, end: we, period: p, sums: [[0; 6]; MAX_PERIOD], pattern: [0; MAX_PERIOD] };
            let mut r = ws % p;
            for c in &cost[ws..we] {
                let row = &mut run.sums[r];
                for k in 0..6 {
                    row[k] += u64::from(c[k]);
                }
                r += 1;
                if r == p {
                    r = 0;
                }
            }
            if p == 1 && !keyframe {
                // The per-block choice, one block at a time.
                run.sums[0][BLOCK_COLUMN] = cost[ws..we]
                    .chunks(LANE_BLOCK)
                    .map(|ch| {
                        let t: u64 = ch.iter().map(|c| u64::from(c[0])).sum();
                        let d: u64 = ch.iter().map(|c| u64::from(c[1])).sum();
                        t.min(d) + 1
                    })
                    .sum();
            } else {
                for row in &mut run.sums {
                    row[BLOCK_COLUMN] = u64::MAX / 16;
                }
            }
            let (total, pattern) = run.best(None, first);
            run.pattern = pattern;
            let total = total + SLOT_PENALTY * p as u64;
            if best.as_ref().is_none_or(|(b, _)| total < *b) {
                best = Some((total, run));
            }
        }
        let Some((_, run)) = best else { break };
        match runs.last_mut() {
            Some(last) if last.period == run.period => {
                let (merged, pattern) = last.best(Some(&run), first);
                let apart = last.best(None, first).0 + run.best(None, first).0 + SLOT_PENALTY * run.period as u64;
                if merged <= apart {
                    for (a, b) in last.sums.iter_mut().zip(&run.sums) {
                        for (x, y) in a.iter_mut().zip(b) {
                            *x = x.saturating_add(*y);
                        }
                    }
                    last.pattern = pattern;
                    last.end = run.end;
                } else {
                    runs.push(run);
                }
            }
            _ => runs.push(run),
        }
        ws = we;
    }

    // Move each boundary to the cheapest split near it, on the next run's head residue.
    for k in 1..runs.len() {
        let (left, right) = runs.split_at_mut(k);
        let (a, b) = (&mut left[k - 1], &mut right[0]);
        let lo = (a.start + 1).max(a.end.saturating_sub(WINDOW));
        let hi = b.end.min(a.end + WINDOW);
        let head = b.head();
        // Cost of the split at x: a's cost on lo..x plus b's on x..hi.
        let mut best = (u64::MAX, a.end);
        let mut acc: u64 = (lo..hi).map(|i| b.atom_cost(&cost, i)).sum();
        for x in lo..hi {
            if x % b.period == head % b.period && acc < best.0 {
                best = (acc, x);
            }
            acc = acc + a.atom_cost(&cost, x) - b.atom_cost(&cost, x);
        }
        a.end = best.1;
        b.start = best.1;
    }

    let mut plan = Vec::with_capacity(runs.len());
    for run in &runs {
        let p = run.period;
        let mut seg = Segment {
            len: run.end - run.start,
            period: p,
            slots: [Predictor::Temporal; MAX_PERIOD],
            tables: [0; MAX_PERIOD],
        };
        for s in 0..p {
            let k = usize::from(run.pattern[(run.start + s) % p]);
            seg.slots[s] = if k == BLOCK_COLUMN { Predictor::Block } else { CANDIDATES[k] };
        }
        if p > 1 {
            for s in 0..p {
                refine_linear(&cols, run.start, &mut seg, s);
            }
        }
        plan.push(seg);
    }
    plan
}

/// Least-squares weights (w2, w3) of `c[i] − c[i−1] ≈ w2·(c[i−2] − c[i−1]) + w3·(c[i−3] −
/// c[i−1])` over `atoms` (all axes), with `w3 = 0` unless `both`. Robust: samples far larger
/// than the typical one are left out, then samples the first fit predicts badly.
fn fit_linear(cols: &Columns<'_>, atoms: impl Iterator<Item = usize>, both: bool) -> Option<(f64, f64)> {
    let mut samples: Vec<[f64; 3]> = Vec::new();
    for i in atoms.filter(|&i| i >= 3) {
        for col in cols.cur {
            let c1 = f64::from(col[i - 1]);
            let v = if both { f64::from(col[i - 3]) - c1 } else { 0.0 };
            samples.push([f64::from(col[i - 2]) - c1, v, f64::from(col[i]) - c1]);
        }
    }
    if samples.is_empty() {
        return None;
    }
    let median = |mut v: Vec<f64>| -> f64 {
        let mid = v.len() / 2;
        *v.select_nth_unstable_by(mid, f64::total_cmp).1
    };
    let solve = |keep: &dyn Fn(&[f64; 3]) -> bool| -> Option<(f64, f64)> {
        let (mut uu, mut uv, mut vv, mut uy, mut vy) = (0f64, 0f64, 0f64, 0f64, 0f64);
        for [u, v, y] in samples.iter().filter(|s| keep(s)) {
            uu += u * u;
            uv += u * v;
            vv += v * v;
            uy += u * y;
            vy += v * y;
        }
        if !both {
            return (uu > 0.0).then(|| (uy / uu, 0.0));
        }
        let det = uu * vv - uv * uv;
        (det.abs() > 1e-9 * (uu * vv).max(1.0)).then(|| ((uy * vv - vy * uv) / det, (uu * vy - uv * uy) / det))
    };
    let scale = median(samples.iter().map(|s| s[0].abs().max(s[1].abs()).max(s[2].abs())).collect());
    let bound = 8.0 * scale + 8.0;
    let near = |s: &[f64; 3]| s[0].abs().max(s[1].abs()).max(s[2].abs()) <= bound;
    let (w2, w3) = solve(&near)?;
    let err = |s: &[f64; 3]| (s[2] - w2 * s[0] - w3 * s[1]).abs();
    let typical = median(samples.iter().filter(|s| near(s)).map(err).collect());
    solve(&|s| near(s) && err(s) <= 4.0 * typical + 4.0).or(Some((w2, w3)))
}

/// Replaces slot `s` of `seg` (starting at atom `start`) by a least-squares linear predictor
/// over the atoms of its repeat before it, when that lowers its cost; and by the temporal one
/// when a residual would not fit 31 bits.
fn refine_linear(cols: &Columns<'_>, start: usize, seg: &mut Segment, s: usize) {
    let lane = || (start + s..start + seg.len).step_by(seg.period);
    let cost = |p: Predictor| -> (u64, bool) {
        let mut bits = 0u64;
        let mut fits = true;
        for i in lane() {
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
    if s < 2 {
        return;
    }
    let q = |w: f64| (w * 65536.0).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
    if let Some((w2, w3)) = fit_linear(cols, lane(), s >= 3) {
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
        // The motion per atom (the temporal residual), and its difference to the previous
        // atom's (the temporal-difference residual), written out per axis: this runs for every
        // atom of every frame.
        let (cx, cy, cz) = (&cur.x[..], &cur.y[..], &cur.z[..]);
        let (bx, by, bz) = (&base.x[..n], &base.y[..n], &base.z[..n]);
        let motion = |i: usize| [cx[i].wrapping_sub(bx[i]), cy[i].wrapping_sub(by[i]), cz[i].wrapping_sub(bz[i])];
        let temporal = |i: usize| {
            let t = motion(i);
            [zigzag(t[0]), zigzag(t[1]), zigzag(t[2])]
        };
        let diff = |i: usize| {
            let t = motion(i);
            let p = if i == 0 { [0; 3] } else { motion(i - 1) };
            [zigzag(t[0].wrapping_sub(p[0])), zigzag(t[1].wrapping_sub(p[1])), zigzag(t[2].wrapping_sub(p[2]))]
        };
        let mut start = 0;
        for seg in plan {
            for s in 0..seg.period {
                let (first, step, len) = (start + s, seg.period, seg.lane_len(s));
                match seg.slots[s] {
                    Predictor::Block => {
                        for b0 in (0..len).step_by(LANE_BLOCK) {
                            let chunk = (b0..len.min(b0 + LANE_BLOCK)).map(|k| first + k * step);
                            let mut or = [[0u32; 3]; 2];
                            for i in chunk.clone() {
                                let (r0, r1) = (temporal(i), diff(i));
                                for a in 0..3 {
                                    or[0][a] |= r0[a];
                                    or[1][a] |= r1[a];
                                }
                            }
                            let width = |o: &[u32; 3]| o.iter().map(|&v| bit_width(v)).sum::<u32>();
                            let mode = width(&or[1]) < width(&or[0]);
                            modes.push(mode);
                            for i in chunk {
                                zz[i] = if mode { diff(i) } else { temporal(i) };
                            }
                        }
                    }
                    Predictor::Temporal => {
                        for k in 0..len {
                            let i = first + k * step;
                            zz[i] = temporal(i);
                        }
                    }
                    Predictor::TemporalDiff => {
                        for k in 0..len {
                            let i = first + k * step;
                            zz[i] = diff(i);
                        }
                    }
                    p => {
                        for k in 0..len {
                            let i = first + k * step;
                            zz[i] = [0, 1, 2].map(|a| cols.residual(p, a, i));
                        }
                    }
                }
            }
            start += seg.len;
        }
        Self { zz, modes }
    }

    /// Whether every residual fits the payload's 31 bits. For coordinates below [`Q_LIMIT`]
    /// every predictor stays within them (a test pins this), so a kept plan always fits; the
    /// check is what makes reusing a plan safe should that ever change.
    fn fits(&self) -> bool {
        self.zz.iter().fold(0u32, |acc, v| acc | v[0] | v[1] | v[2]) < 1 << 31
    }
}

fn write_plan(plan: &[Segment], entropy: bool, w: &mut Writer) {
    w.varint(plan.len() as u64);
    for seg in plan {
        seg.write(entropy, w);
    }
}

/// Bytes of `v` as a varint.
fn varint_len(v: u64) -> usize {
    (bit_width_u64(v).max(1) as usize).div_ceil(7)
}

fn bit_width_u64(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// The product of three ranges, `None` past 2^32 (the largest a radix block allows).
fn range_product(r: [u64; 3]) -> Option<u64> {
    r.iter().try_fold(1u64, |p, &v| p.checked_mul(v)).filter(|&p| p <= 1 << 32)
}

/// Bit width of a mixed-radix number with ranges `r` (product at most 2^32).
fn radix_width(r: [u32; 3]) -> u32 {
    bit_width_u64(range_product(r.map(u64::from)).unwrap_or(1 << 32).saturating_sub(1))
}

/// Writes the smaller of codings 3 and 1: the bits coding's block headers are a byte shorter,
/// so it wins where radix blocks save less than that.
fn write_fast(plan: &[Segment], res: &Residuals, w: &mut Writer) {
    let start = w.buf.len();
    // The packed pass also counts what the bits coding would take (its blocks are the same
    // widths behind 2-byte headers), so the bits payload is written only when it is smaller.
    let (radix_used, bits_len) = write_packed(plan, res, Coding::Packed, w);
    if !radix_used || bits_len < w.buf.len() - start {
        w.buf.truncate(start);
        write_packed(plan, res, Coding::Bits, w);
    }
}

/// Writes a payload in coding 1 or 3; returns whether a radix block was used, and the length
/// the same payload has in coding 1.
fn write_packed(plan: &[Segment], res: &Residuals, coding: Coding, w: &mut Writer) -> (bool, usize) {
    let start = w.buf.len();
    w.u8(coding as u8);
    write_plan(plan, false, w);
    let mut bits_len = w.buf.len() - start;
    let mut modes = res.modes.iter();
    let mut start = 0;
    let mut block = [[0u32; BLOCK]; 3];
    let mut joint = [0u32; BLOCK];
    let mut radix_used = false;
    for seg in plan {
        for s in 0..seg.period {
            let (first, step, len) = (start + s, seg.period, seg.lane_len(s));
            let mut last: Option<[u32; 3]> = None;
            for b0 in (0..len).step_by(LANE_BLOCK) {
                let count = (len - b0).min(LANE_BLOCK);
                let mut max = [0u32; 3];
                for k in 0..BLOCK {
                    let v = if k < count { res.zz[first + (b0 + k) * step] } else { [0; 3] };
                    for a in 0..3 {
                        block[a][k] = v[a];
                        max[a] = max[a].max(v[a]);
                    }
                }
                let widths = max.map(bit_width);
                debug_assert!(widths.iter().all(|&v| v <= 31), "quantized values beyond Q_LIMIT");
                let widths = widths.map(|v| v.min(31));
                bits_len += 2 + 4 * widths.iter().sum::<u32>() as usize;
                let mode = seg.slots[s] == Predictor::Block && modes.next().copied().unwrap_or(false);
                if coding == Coding::Bits {
                    w.u16((widths[0] | widths[1] << 5 | widths[2] << 10 | u32::from(mode) << 15) as u16);
                    for a in 0..3 {
                        w.pack_block(&block[a], widths[a]);
                    }
                    continue;
                }
                // Bit-packed (3-byte header), the previous ranges again (1 byte), or new ranges (1
                // byte and three varints, paid once for the blocks that repeat them). Radix blocks
                // decode slower, so they are taken only when their data saves more than 1/12.
                let bits_bytes = 3 + 4 * widths.iter().sum::<u32>() as usize;
                let ranges = max.map(|m| u64::from(m) + 1);
                let fresh = range_product(ranges).map(|_| ranges.map(|v| v as u32));
                let repeat = last.filter(|r| (0..3).all(|a| max[a] < r[a]));
                let data = |r: [u32; 3]| 1 + 4 * radix_width(r) as usize;
                let header = |r: [u32; 3]| r.iter().map(|&v| varint_len(u64::from(v - 1))).sum::<usize>();
                let radix = match (fresh, repeat) {
                    (Some(f), Some(r)) => Some(if data(f) + header(f) < data(r) { (1u8, f) } else { (2, r) }),
                    (Some(f), None) => Some((1, f)),
                    (None, Some(r)) => Some((2, r)),
                    (None, None) => None,
                };
                let (kind, r) = match radix {
                    Some((kind, r)) if data(r) * 12 < bits_bytes * 11 => (kind, r),
                    _ => (0, [0; 3]),
                };
                w.u8(u8::from(mode) << 7 | kind);
                match kind {
                    0 => {
                        w.u16((widths[0] | widths[1] << 5 | widths[2] << 10) as u16);
                        for a in 0..3 {
                            w.pack_block(&block[a], widths[a]);
                        }
                    }
                    _ => {
                        radix_used = true;
                        if kind == 1 {
                            for v in r {
                                w.varint(u64::from(v - 1));
                            }
                            last = Some(r);
                        }
                        for (k, j) in joint.iter_mut().enumerate() {
                            *j = block[0][k] + r[0] * (block[1][k] + r[1] * block[2][k]);
                        }
                        w.pack_block(&joint, radix_width(r));
                    }
                }
            }
        }
        start += seg.len;
    }
    (radix_used, bits_len)
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
    let raw = raw.finish();
    w.varint(raw.len() as u64);
    w.buf.extend_from_slice(&raw);
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
        for _ in 0..t {
            check_table(&mut r)?;
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
            let mut last = None;
            for _ in 0..blocks {
                if skip_lane_block(&mut r, coding, &mut last)? && !per_block {
                    return Err(CodecError::Corrupt("mode bit on a slot without per-block modes"));
                }
            }
        }
    }
    if coding == Coding::Entropy {
        r.take(block_bits.div_ceil(8))?;
        RansDecoder::new(&mut r)?;
        let raw = r.count(r.remaining())?;
        r.take(raw)?;
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last position block"));
    }
    Ok(())
}

/// One segment of a payload's plan, as [`describe_delta`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Atoms in the segment.
    pub len: usize,
    /// Repeat period.
    pub period: usize,
    /// Predictor of each slot.
    pub slots: Vec<Predictor>,
}

/// The coding and plan of a payload of `n` atoms (for tools and tests; allocates).
pub fn describe_delta(payload: &[u8], n: usize) -> Result<(Coding, Vec<SegmentInfo>), CodecError> {
    validate_delta(payload, n)?;
    let mut r = Reader::new(payload);
    let coding = Coding::from_u8(r.u8()?)?;
    let mut ntables = 0;
    if coding == Coding::Entropy {
        ntables = usize::from(r.u8()?);
        for _ in 0..ntables {
            check_table(&mut r)?;
        }
    }
    let segments = read_plan_len(&mut r, n)?;
    let mut left = n;
    let mut out = Vec::with_capacity(segments);
    for _ in 0..segments {
        let seg = Segment::read(&mut r, left, ntables)?;
        left -= seg.len;
        out.push(SegmentInfo { len: seg.len, period: seg.period, slots: seg.slots[..seg.period].to_vec() });
    }
    Ok((coding, out))
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
        c @ (Coding::Bits | Coding::Packed) => apply_packed(r, c, &mut cols, s, out),
        Coding::Entropy => apply_entropy(r, &mut cols, s, out),
    }
}

/// Dequantizes atom `i` into `out`.
#[inline]
fn emit<S: PositionSink + ?Sized>(out: &mut S, i: usize, v: [i32; 3], s: f32) {
    #[allow(clippy::cast_precision_loss)]
    out.set(i, [v[0] as f32 * s, v[1] as f32 * s, v[2] as f32 * s]);
}

/// Residuals of up to 32 repeats of a segment: per slot, per axis, zigzag values.
type Group = [[[u32; BLOCK]; 3]; MAX_PERIOD];

/// Working arrays of the slot-by-slot path, per slot and axis: positions and motion (made once
/// per payload: they are every group's first writes, so never read stale).
struct Scratch {
    vals: [[[i32; BLOCK]; 3]; MAX_PERIOD],
    motion: [[[i32; BLOCK]; 3]; MAX_PERIOD],
}

impl Scratch {
    fn new() -> Self {
        Self { vals: [[[0; BLOCK]; 3]; MAX_PERIOD], motion: [[[0; BLOCK]; 3]; MAX_PERIOD] }
    }
}

/// Whether a period-1 segment with predictor `p` takes the block fast path.
fn temporal_only(seg: &Segment) -> bool {
    seg.period == 1 && matches!(seg.slots[0], Predictor::Temporal | Predictor::TemporalDiff | Predictor::Block)
}

/// The predictor of slot `s` for a block whose mode bit is `mode`.
#[inline]
fn resolve(p: Predictor, mode: bool) -> Predictor {
    match p {
        Predictor::Block if mode => Predictor::TemporalDiff,
        Predictor::Block => Predictor::Temporal,
        p => p,
    }
}

/// How a lane block's residuals are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Per axis, 32 values bit-packed at these widths (0–31).
    Bits([u32; 3]),
    /// Per atom one value `zx + Rx·(zy + Ry·zz)`, bit-packed at [`radix_width`] of these ranges.
    Radix([u32; 3]),
}

impl Shape {
    /// Bytes of packed data after the header.
    fn data_len(self) -> usize {
        match self {
            Self::Bits(w) => 4 * (w[0] + w[1] + w[2]) as usize,
            Self::Radix(r) => 4 * radix_width(r) as usize,
        }
    }
}

/// Reads a lane block header: its mode bit and shape. `last` holds the lane's last radix ranges.
#[inline(always)]
fn read_header(
    lane: &mut Reader<'_>,
    coding: Coding,
    last: &mut Option<[u32; 3]>,
) -> Result<(bool, Shape), CodecError> {
    if coding == Coding::Bits {
        let h = u32::from(lane.u16()?);
        return Ok((h >> 15 == 1, Shape::Bits([h & 31, h >> 5 & 31, h >> 10 & 31])));
    }
    let h = lane.u8()?;
    let shape = match h & 0x7f {
        0 => {
            let v = u32::from(lane.u16()?);
            if v >> 15 != 0 {
                return Err(CodecError::Corrupt("bit 15 of a block's widths is set"));
            }
            Shape::Bits([v & 31, v >> 5 & 31, v >> 10 & 31])
        }
        1 => {
            let mut r = [0u32; 3];
            for x in &mut r {
                let v = lane.varint()?;
                *x = v
                    .checked_add(1)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or(CodecError::Corrupt("radix range above 2^32 - 1"))?;
            }
            if range_product(r.map(u64::from)).is_none() {
                return Err(CodecError::Corrupt("radix ranges multiply past 2^32"));
            }
            *last = Some(r);
            Shape::Radix(r)
        }
        2 => Shape::Radix(last.ok_or(CodecError::Corrupt("radix block repeats no earlier one"))?),
        _ => return Err(CodecError::Corrupt("unknown position block kind")),
    };
    Ok((h >> 7 == 1, shape))
}

/// Division of 32-bit numbers by a fixed divisor through one 64×64→128-bit multiplication
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019; exact for every
/// 32-bit numerator and divisor).
#[derive(Clone, Copy)]
struct Divider {
    d: u32,
    m: u64,
}

impl Divider {
    fn new(d: u32) -> Self {
        Self { d, m: if d > 1 { (u64::MAX / u64::from(d)).wrapping_add(1) } else { 0 } }
    }

    /// `(n / d, n % d)`.
    #[inline(always)]
    fn div_rem(self, n: u32) -> (u32, u32) {
        if self.d <= 1 {
            return (n, 0);
        }
        let q = ((u128::from(self.m) * u128::from(n)) >> 64) as u32;
        (q, n.wrapping_sub(q.wrapping_mul(self.d)))
    }
}

/// Reads one lane block into `raw` (per axis, zigzag residuals); returns the mode bit.
#[inline]
fn read_lane_block(
    lane: &mut Reader<'_>,
    coding: Coding,
    last: &mut Option<[u32; 3]>,
    raw: &mut [[u32; BLOCK]; 3],
) -> Result<bool, CodecError> {
    let (mode, shape) = read_header(lane, coding, last)?;
    match shape {
        Shape::Bits(widths) => {
            for (raw, w) in raw.iter_mut().zip(widths) {
                if w == 0 {
                    *raw = [0; BLOCK];
                } else {
                    let rest = lane.rest();
                    lane.take(4 * w as usize)?;
                    unpack(rest, w, raw);
                }
            }
        }
        Shape::Radix(r) => {
            let w = radix_width(r);
            let mut joint = [0u32; BLOCK];
            if w > 0 {
                let rest = lane.rest();
                lane.take(4 * w as usize)?;
                unpack(rest, w, &mut joint);
            }
            let (dx, dy) = (Divider::new(r[0]), Divider::new(r[1]));
            let [x, y, z] = raw;
            for (k, &v) in joint.iter().enumerate() {
                let (q, rx) = dx.div_rem(v);
                let (qz, ry) = dy.div_rem(q);
                (x[k], y[k], z[k]) = (rx, ry, qz);
            }
        }
    }
    Ok(mode)
}

/// Steps over one lane block.
#[inline]
fn skip_lane_block(r: &mut Reader<'_>, coding: Coding, last: &mut Option<[u32; 3]>) -> Result<bool, CodecError> {
    let (mode, shape) = read_header(r, coding, last)?;
    r.take(shape.data_len())?;
    Ok(mode)
}

fn apply_packed<S: PositionSink + ?Sized>(
    mut r: Reader<'_>,
    coding: Coding,
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
    let mut buf: Group = [[[0; BLOCK]; 3]; MAX_PERIOD];
    let mut scratch = Scratch::new();
    for _ in 0..segments {
        let seg = Segment::read(&mut plan, n - start, 0)?;
        let mut lanes: [Reader<'_>; MAX_PERIOD] = core::array::from_fn(|_| data.clone());
        // Each lane starts where the one before ends; the last lane's end (found by decoding
        // it) is where the next segment starts.
        for (s, lane) in lanes.iter_mut().enumerate().take(seg.period) {
            *lane = data.clone();
            if s + 1 < seg.period {
                let mut last = None;
                for _ in 0..seg.lane_len(s).div_ceil(LANE_BLOCK) {
                    skip_lane_block(&mut data, coding, &mut last)?;
                }
            }
        }
        let mut lasts = [None; MAX_PERIOD];
        let reps = seg.len.div_ceil(seg.period);
        let fast = causal(&seg);
        let mut preds = seg.slots;
        let mut g = 0;
        while g < reps {
            for s in 0..seg.period.min(seg.len - g * seg.period) {
                let mode = read_lane_block(&mut lanes[s], coding, &mut lasts[s], &mut buf[s])?;
                preds[s] = resolve(seg.slots[s], mode);
            }
            let m = (reps - g).min(BLOCK);
            if temporal_only(&seg) {
                temporal_block(&buf[0], preds[0], start + g, m, cols, &mut t_prev, step, out);
            } else if fast {
                group_slots(&mut scratch, &buf, &preds, &seg, start, g, m, cols, &mut t_prev, step, out);
            } else {
                group(&buf, &preds, &seg, start, g, m, cols, &mut t_prev, step, out);
            }
            g += m;
        }
        data = lanes[seg.period - 1].clone();
        start += seg.len;
    }
    Ok(())
}

/// Fast path: `m` atoms from `at` predicted in time (temporal or temporal difference).
#[allow(clippy::too_many_arguments)]
#[inline]
fn temporal_block<S: PositionSink + ?Sized>(
    raw: &[[u32; BLOCK]; 3],
    pred: Predictor,
    at: usize,
    m: usize,
    cols: &mut [&mut [i32]; 3],
    t_prev: &mut [i32; 3],
    step: f32,
    out: &mut S,
) {
    let mut vals = [[0i32; BLOCK]; 3];
    let diff = pred == Predictor::TemporalDiff;
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
}

/// Decodes atom `i` on one axis from its residual `r`; `t_prev` is the motion of the atom
/// before on that axis and becomes this one's.
#[inline(always)]
fn decode_axis(col: &mut [i32], i: usize, p: Predictor, r: i32, t_prev: &mut i32) -> i32 {
    let b = col[i];
    let c = match p {
        Predictor::Temporal | Predictor::Block => b.wrapping_add(r),
        Predictor::TemporalDiff => b.wrapping_add(t_prev.wrapping_add(r)),
        Predictor::Linear { w2, w3 } => {
            let pred = if i >= 3 {
                linear(col[i - 1], col[i - 2], col[i - 3], w2, w3)
            } else {
                linear(back(col, i, 1), back(col, i, 2), back(col, i, 3), w2, w3)
            };
            pred.wrapping_add(r)
        }
    };
    col[i] = c;
    *t_prev = c.wrapping_sub(b);
    c
}

/// Whether every slot of a repeated segment refers only to earlier atoms of its own repeat, so
/// that it can be decoded slot by slot: slot 0 temporal; a temporal difference or per-block slot
/// not first and after a temporal one (whose motion the fast path keeps); a linear one using
/// `c[i−2]` only from slot 2 and `c[i−3]` only from slot 3.
fn causal(seg: &Segment) -> bool {
    let temporal = |p: Predictor| matches!(p, Predictor::Temporal | Predictor::TemporalDiff | Predictor::Block);
    seg.period > 1
        && seg.slots[0] == Predictor::Temporal
        && (1..seg.period).all(|s| match seg.slots[s] {
            Predictor::Temporal => true,
            Predictor::TemporalDiff | Predictor::Block => temporal(seg.slots[s - 1]),
            Predictor::Linear { w2, w3 } => (w2 == 0 || s >= 2) && (w3 == 0 || s >= 3),
        })
}

/// Fast path for a causal segment: repeats `g..g + m`. Per slot, the base values of temporal
/// slots are gathered, then each slot's new values are computed for all 32 repeats at once from
/// the residuals and the slots before it (fixed-length loops over small arrays, which the
/// compiler vectorises; entries past the group's end are computed and ignored), then one pass
/// in atom order stores the values and writes the output.
#[allow(clippy::too_many_arguments)]
#[inline]
fn group_slots<S: PositionSink + ?Sized>(
    scratch: &mut Scratch,
    buf: &Group,
    preds: &[Predictor; MAX_PERIOD],
    seg: &Segment,
    start: usize,
    g: usize,
    m: usize,
    cols: &mut [&mut [i32]; 3],
    t_prev: &mut [i32; 3],
    step: f32,
    out: &mut S,
) {
    let p = seg.period;
    let first = start + g * p;
    let end = (first + m * p).min(start + seg.len);
    let last_base = [cols[0][end - 1], cols[1][end - 1], cols[2][end - 1]];
    let Scratch { vals, motion } = scratch;
    for s in 0..p.min(end - first) {
        let (done, rest) = vals.split_at_mut(s);
        let (moved, rest_t) = motion.split_at_mut(s);
        for a in 0..3 {
            let (r, v, t) = (&buf[s][a], &mut rest[0][a], &mut rest_t[0][a]);
            match preds[s] {
                Predictor::Temporal | Predictor::Block => {
                    for (v, &b) in v.iter_mut().zip(cols[a][first + s..end].iter().step_by(p)) {
                        *v = b;
                    }
                    for k in 0..BLOCK {
                        let d = unzigzag(r[k]);
                        t[k] = d;
                        v[k] = v[k].wrapping_add(d);
                    }
                }
                Predictor::TemporalDiff => {
                    for (v, &b) in v.iter_mut().zip(cols[a][first + s..end].iter().step_by(p)) {
                        *v = b;
                    }
                    let prev = &moved[s - 1][a];
                    for k in 0..BLOCK {
                        let d = prev[k].wrapping_add(unzigzag(r[k]));
                        t[k] = d;
                        v[k] = v[k].wrapping_add(d);
                    }
                }
                Predictor::Linear { w2: 0, w3: 0 } => {
                    let c1 = &done[s - 1][a];
                    for k in 0..BLOCK {
                        v[k] = c1[k].wrapping_add(unzigzag(r[k]));
                    }
                }
                Predictor::Linear { w2, w3: 0 } => {
                    let (c1, c2) = (&done[s - 1][a], &done[s.saturating_sub(2)][a]);
                    for k in 0..BLOCK {
                        v[k] = linear(c1[k], c2[k], c1[k], w2, 0).wrapping_add(unzigzag(r[k]));
                    }
                }
                Predictor::Linear { w2, w3 } => {
                    // Causal: slot s ≥ 1, and a weight is zero where its atom is not in the repeat.
                    let c1 = &done[s - 1][a];
                    let c2 = &done[s.saturating_sub(2)][a];
                    let c3 = &done[s.saturating_sub(3)][a];
                    for k in 0..BLOCK {
                        v[k] = linear(c1[k], c2[k], c3[k], w2, w3).wrapping_add(unzigzag(r[k]));
                    }
                }
            }
        }
    }
    let [x, y, z] = cols;
    let rows = x[first..end].chunks_mut(p).zip(y[first..end].chunks_mut(p)).zip(z[first..end].chunks_mut(p));
    let mut i = first;
    for (k, ((cx, cy), cz)) in rows.enumerate() {
        for (s, ((qx, qy), qz)) in cx.iter_mut().zip(cy.iter_mut()).zip(cz.iter_mut()).enumerate() {
            let v = [vals[s][0][k], vals[s][1][k], vals[s][2][k]];
            (*qx, *qy, *qz) = (v[0], v[1], v[2]);
            emit(out, i, v, step);
            i += 1;
        }
    }
    for a in 0..3 {
        t_prev[a] = cols[a][end - 1].wrapping_sub(last_base[a]);
    }
}

/// General path: repeats `g..g + m` of a segment starting at atom `start`, in atom order.
#[allow(clippy::too_many_arguments)]
#[inline]
fn group<S: PositionSink + ?Sized>(
    buf: &Group,
    preds: &[Predictor; MAX_PERIOD],
    seg: &Segment,
    start: usize,
    g: usize,
    m: usize,
    cols: &mut [&mut [i32]; 3],
    t_prev: &mut [i32; 3],
    step: f32,
    out: &mut S,
) {
    let p = seg.period;
    let [x, y, z] = cols;
    let [tx, ty, tz] = t_prev;
    for k in 0..m {
        let rep = g + k;
        let first = start + rep * p;
        for s in 0..p.min(seg.len - rep * p) {
            let i = first + s;
            let pred = preds[s];
            let v = [
                decode_axis(x, i, pred, unzigzag(buf[s][0][k]), tx),
                decode_axis(y, i, pred, unzigzag(buf[s][1][k]), ty),
                decode_axis(z, i, pred, unzigzag(buf[s][2][k]), tz),
            ];
            emit(out, i, v, step);
        }
    }
}

/// The value of token `t`, its extra bits (if any) read from `raw`.
#[inline(always)]
fn token_value(t: u32, raw: &mut BitReader<'_>) -> u32 {
    let t = (t as usize) & (TOKENS - 1);
    TOKEN_BASE[t].wrapping_add(raw.get(u32::from(TOKEN_EXTRA[t])))
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
    // The one allocation of a delta decode: at most MAX_TABLES × 8 KiB.
    let mut tables = vec![DecTable::default(); ntables];
    for table in &mut tables {
        table.read(&mut r)?;
    }
    let segments = read_plan_len(&mut r, n)?;
    let mut plan = r.clone();
    let block_bits = skip_plan(&mut r, segments, n, ntables)?;
    let bitmap = r.take(block_bits.div_ceil(8))?;
    let mut rans = RansDecoder::new(&mut r)?;
    let raw_len = r.count(r.remaining())?;
    let mut raw = BitReader::new(r.take(raw_len)?);
    let mut start = 0;
    let mut bit_base = 0;
    let mut t_prev = [0i32; 3];
    let mut buf: Group = [[[0; BLOCK]; 3]; MAX_PERIOD];
    let mut scratch = Scratch::new();
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
        let tabs: [&DecTable; MAX_PERIOD] = core::array::from_fn(|s| &tables[usize::from(seg.tables[s])]);
        let reps = seg.len.div_ceil(p);
        let fast = causal(&seg);
        let mut preds = seg.slots;
        let mut g = 0;
        while g < reps {
            let m = (reps - g).min(BLOCK);
            for s in 0..p {
                let bit = lane_bits[s] + g / BLOCK;
                let mode = bitmap.get(bit / 8).is_some_and(|&b| b >> (bit % 8) & 1 == 1);
                preds[s] = resolve(seg.slots[s], mode);
            }
            // Tokens in atom order: x, y, z of each atom on rANS states 0, 1, 2; then, in the
            // same order, the extra bits of the tokens that have some.
            let slots_at = |k: usize| p.min(seg.len - (g + k) * p);
            if p == 1 {
                let (t, b) = (tabs[0], &mut buf[0]);
                for k in 0..m {
                    for a in 0..3 {
                        b[a][k] = u32::from(rans.get(a, t));
                    }
                }
                if !t.plain() {
                    for k in 0..m {
                        for a in 0..3 {
                            b[a][k] = token_value(b[a][k], &mut raw);
                        }
                    }
                }
            } else {
                for k in 0..m {
                    for s in 0..slots_at(k) {
                        let t = tabs[s];
                        for a in 0..3 {
                            buf[s][a][k] = u32::from(rans.get(a, t));
                        }
                    }
                }
                if tabs[..p].iter().any(|t| !t.plain()) {
                    for k in 0..m {
                        for s in 0..slots_at(k) {
                            if !tabs[s].plain() {
                                for a in 0..3 {
                                    buf[s][a][k] = token_value(buf[s][a][k], &mut raw);
                                }
                            }
                        }
                    }
                }
            }
            if temporal_only(&seg) {
                temporal_block(&buf[0], preds[0], start + g, m, cols, &mut t_prev, step, out);
            } else if fast {
                group_slots(&mut scratch, &buf, &preds, &seg, start, g, m, cols, &mut t_prev, step, out);
            } else {
                group(&buf, &preds, &seg, start, g, m, cols, &mut t_prev, step, out);
            }
            g += m;
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

    #[test]
    fn rounding_matches_f32_round_everywhere_it_is_used() {
        let mut edge = vec![0.0f32, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.499_999_97, -0.499_999_97];
        edge.extend([8_388_607.5, -8_388_607.5, 8_388_609.0, 16_777_217.0, 268_435_440.0, -268_435_440.0]);
        edge.extend((0..200).map(|k| f32::from_bits(0x3f00_0000 + k) - 0.000_1));
        let mut s = 12_345u32;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            #[allow(clippy::cast_precision_loss)]
            edge.push((s as f32 / u32::MAX as f32 - 0.5) * 5.0e8 / 10f32.powi((s % 9) as i32));
        }
        for v in edge.into_iter().filter(|v| v.abs() < 268_435_456.0) {
            #[allow(clippy::cast_possible_truncation)]
            let want = v.round() as i32;
            assert_eq!(round_half_away(v), want, "{v}");
        }
    }

    fn decode(base: &Quantized, payload: &[u8], n: usize) -> Quantized {
        validate_delta(payload, n).unwrap();
        let mut state = base.clone();
        let mut out = vec![Vec3::ZERO; n];
        apply_delta(payload, &mut state, 3, &mut out[..]).unwrap();
        state
    }

    #[test]
    fn a_kept_plan_codes_exactly_and_is_searched_again_when_it_stops_serving() {
        // Water-like repeats (period 3) moving a little each frame.
        let n = 3 * 400;
        let frames: Vec<Quantized> = (0..80)
            .map(|f| {
                let p: Vec<Vec3> = (0..n)
                    .map(|i| {
                        #[allow(clippy::cast_precision_loss)]
                        let (m, k, t) = ((i / 3) as f32, (i % 3) as f32, f as f32);
                        Vec3::new(m * 3.1 + k * 0.96, (m * 0.7).sin() * 20.0 + k * 0.2, t * 0.01 * (m % 5.0))
                    })
                    .collect();
                Quantized::from_positions(&p, 3).unwrap()
            })
            .collect();
        let mut cache = PlanCache::default();
        let options = DeltaOptions::default();
        for f in 1..=40 {
            let mut kept = Writer::new();
            encode_delta_cached(&frames[f - 1], &frames[f], options, &mut cache, &mut kept);
            assert_eq!(decode(&frames[f - 1], &kept.buf, n), frames[f], "frame {f}");
            // The same frame with a fresh search: the kept plan costs about as much.
            let mut fresh = Writer::new();
            encode_delta_with(&frames[f - 1], &frames[f], options, &mut fresh);
            assert!(kept.buf.len() * 4 <= fresh.buf.len() * 5, "{} vs {}", kept.buf.len(), fresh.buf.len());
        }
        // One search, then one every REPLAN_EVERY deltas.
        assert_eq!(cache.searches(), 2);
        // Another atom count searches anew; so does a frame the kept plan codes badly.
        let mut w = Writer::new();
        let half = Quantized {
            x: frames[1].x[..600].to_vec(),
            y: frames[1].y[..600].to_vec(),
            z: frames[1].z[..600].to_vec(),
        };
        let half0 = Quantized {
            x: frames[0].x[..600].to_vec(),
            y: frames[0].y[..600].to_vec(),
            z: frames[0].z[..600].to_vec(),
        };
        encode_delta_cached(&half0, &half, options, &mut cache, &mut w);
        assert_eq!(cache.searches(), 3);
        assert_eq!(decode(&half0, &w.buf, 600), half);
        let scrambled = Quantized {
            x: half.x.iter().rev().copied().collect(),
            y: half.z.clone(),
            z: half.y.iter().map(|v| v / 2).collect(),
        };
        let mut w = Writer::new();
        encode_delta_cached(&half, &scrambled, options, &mut cache, &mut w);
        assert_eq!(decode(&half, &w.buf, 600), scrambled);
        let mut w = Writer::new();
        encode_delta_cached(&scrambled, &half, options, &mut cache, &mut w);
        assert_eq!(decode(&scrambled, &w.buf, 600), half);
        assert_eq!(cache.searches(), 4, "the scrambled frame's payload grew: the next one searched");
    }

    #[test]
    fn any_kept_plan_fits_31_bits_at_the_coordinate_limits() {
        // Reusing a plan on a frame it was not searched for is safe because every predictor
        // keeps residuals of coordinates below Q_LIMIT within 31 bits (the encoder still checks
        // and searches anew if not). Extreme frames: atoms at ±(Q_LIMIT − 1) swapping sides.
        let m = Q_LIMIT - 1;
        let n: usize = 64;
        let side = |f: usize| -> Vec<i32> { (0..n).map(|i| if (i + f).is_multiple_of(2) { m } else { -m }).collect() };
        let frame = |f: usize| Quantized { x: side(f), y: side(f + 1), z: side(f) };
        let (a, b) = (frame(0), frame(1));
        let kinds = [
            Predictor::Temporal,
            Predictor::TemporalDiff,
            Predictor::Block,
            Predictor::Linear { w2: i32::MAX, w3: i32::MIN },
            Predictor::Linear { w2: i32::MIN, w3: i32::MAX },
        ];
        for p in kinds {
            for period in [1, 3] {
                let seg = Segment { len: n, period, slots: [p; MAX_PERIOD], tables: [0; MAX_PERIOD] };
                assert!(Residuals::new(&a, &b, &[seg]).fits(), "{p:?}, period {period}");
                let mut cache =
                    PlanCache { plan: vec![seg], atoms: n, age: 0, planned_bytes: usize::MAX / 8, searches: 0 };
                let mut w = Writer::new();
                encode_delta_cached(&a, &b, DeltaOptions::default(), &mut cache, &mut w);
                assert_eq!(cache.searches(), 0, "the kept plan was used");
                let mut state = a.clone();
                let mut out = vec![Vec3::ZERO; n];
                validate_delta(&w.buf, n).unwrap();
                apply_delta(&w.buf, &mut state, 3, &mut out[..]).unwrap();
                assert_eq!(state, b, "{p:?}, period {period}");
            }
        }
    }
}

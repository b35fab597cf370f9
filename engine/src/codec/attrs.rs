//! Atom attribute frames (kind 3): per-atom display attributes as a delta against the frame
//! held, carrying only the attributes and atoms that changed.
//!
//! The header's `atom_count` is the stream's atom count, and `base_seq` the frame the receiver
//! must hold. Integers are little-endian; `varint` is unsigned LEB128; `rle` is the
//! run-length column of [`super::bits`] (varint run count, `u32col` of run values, `u32col` of
//! run lengths − 1).
//!
//! **Payload**
//!
//! | size | field |
//! |---|---|
//! | 1 | `present`: bit 0 colour, 1 radius, 2 representation, 3 selected, 4 labeled, 5 label text; bits 6-7 are 0 |
//! | 1 | `dense`: the same bits, set where that attribute is sent dense; must be a subset of `present` |
//! | … | one record per attribute present, in bit order |
//!
//! The payload ends exactly after the last record.
//!
//! **Record of colour, radius, representation, selected, labeled**
//!
//! - sparse: `ranges` of the atoms that changed, then `values` for those `k` atoms in id order;
//! - dense: `values` for all `n` atoms (the whole column is replaced).
//!
//! **`ranges`** (sorted atom ids as runs): varint `r`, then per run a varint `gap` (start −
//! end of the previous run, 0 before the first) and a varint `len − 1`. Runs are increasing and
//! do not overlap; every id is `< n`. `k` is the sum of the run lengths.
//!
//! **`values`** of `k` atoms: a palette of distinct values, then which one each atom takes.
//!
//! | size | field |
//! |---|---|
//! | varint | `d`: palette size, 0 if and only if `k` = 0, at most `k` |
//! | `d` × entry | palette entries: colour `u32` (RGBA8, red in the lowest byte), radius `f32` (Å, IEEE bits, exact), representation `u8` (0 ball-and-stick, 1 sticks, 2 spacefill, 3 wire, 4 hidden), selected/labeled `u8` (0 or 1) |
//! | rle | only when `d` ≥ 2: `k` palette indices (each `< d`) |
//!
//! With `d` = 1 every atom takes the single entry, so a run of atoms set to one value costs the
//! ranges plus 1 + entry bytes.
//!
//! **Record of label text** (labels are sparse: most atoms have none)
//!
//! - sparse: `ranges` of the atoms whose text changed, then per atom a varint `tag`: 0 clears
//!   the atom's text, `L + 1` sets it to the `L` bytes that follow (UTF-8);
//! - dense: `ranges` of every atom that has a text after the frame, then per atom its text as
//!   varint length + UTF-8 bytes; all other texts are cleared.
//!
//! The encoder ([`encode`]) diffs the display state it last sent against the new one and, per
//! attribute, writes whichever of the sparse and dense records is smaller. The decoder
//! ([`decode`]) checks every count against the stream's atom count and the [`Limits`], every id
//! against the atom count, every value against its type, and the exact payload length, before
//! anything is changed; [`AttributeFrame::apply`] then writes the changes into the
//! [`DisplayState`] and straight into the [`AtomInstance`] buffer (colour, radius, flags).

use std::collections::{BTreeMap, HashMap};

use super::bits::{Reader, Writer};
use super::{CodecError, Limits};
use crate::gpu::{self, AtomInstance};
use crate::ids::AtomId;
use crate::model::{DisplayState, Representation};

/// `present`/`dense` bit of the colour record.
pub const COLOR: u8 = 1;
/// `present`/`dense` bit of the radius record.
pub const RADIUS: u8 = 1 << 1;
/// `present`/`dense` bit of the representation record.
pub const REPRESENTATION: u8 = 1 << 2;
/// `present`/`dense` bit of the selected record.
pub const SELECTED: u8 = 1 << 3;
/// `present`/`dense` bit of the labeled record.
pub const LABELED: u8 = 1 << 4;
/// `present`/`dense` bit of the label-text record.
pub const LABEL_TEXT: u8 = 1 << 5;
/// Every attribute bit.
pub const ALL: u8 = 0x3f;

/// A run of consecutive ids `start .. start + len` (`len` ≥ 1), the unit of the `ranges`
/// coding shared by attribute and topology frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// First id.
    pub start: u32,
    /// Number of ids.
    pub len: u32,
}

impl IdRange {
    /// The ids of the run.
    #[must_use]
    pub fn ids(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// Groups strictly increasing ids into runs.
pub fn ranges_of(sorted_ids: impl IntoIterator<Item = u32>) -> Vec<IdRange> {
    let mut out: Vec<IdRange> = Vec::new();
    for id in sorted_ids {
        match out.last_mut() {
            Some(last) if u64::from(last.start) + u64::from(last.len) == u64::from(id) => last.len += 1,
            _ => out.push(IdRange { start: id, len: 1 }),
        }
    }
    out
}

/// Every id of `ranges`, in order.
pub fn expand(ranges: &[IdRange]) -> impl Iterator<Item = usize> + '_ {
    ranges.iter().flat_map(|r| r.ids())
}

/// Number of ids in `ranges`.
#[must_use]
pub fn count(ranges: &[IdRange]) -> usize {
    ranges.iter().map(|r| r.len as usize).sum()
}

/// Appends the `ranges` coding of increasing, non-overlapping runs.
pub fn write_ranges(w: &mut Writer, ranges: &[IdRange]) {
    w.varint(ranges.len() as u64);
    let mut end = 0u64;
    for r in ranges {
        w.varint(u64::from(r.start).saturating_sub(end));
        w.varint(u64::from(r.len.saturating_sub(1)));
        end = u64::from(r.start) + u64::from(r.len);
    }
}

/// Reads a `ranges` coding whose ids must all be `< n`. The run count is checked against `n`
/// and against the bytes left (a run takes at least 2) before anything is allocated.
pub fn read_ranges(r: &mut Reader<'_>, n: usize) -> Result<Vec<IdRange>, CodecError> {
    let runs = r.count(n)?;
    if runs > r.remaining() / 2 {
        return Err(CodecError::Truncated);
    }
    let mut out = Vec::with_capacity(runs);
    let mut end = 0u64;
    for _ in 0..runs {
        let start = end.checked_add(r.varint()?).ok_or(CodecError::Corrupt("id range overflows"))?;
        let len = r.varint()?.checked_add(1).ok_or(CodecError::Corrupt("id range overflows"))?;
        end = start
            .checked_add(len)
            .filter(|&e| e <= n as u64)
            .ok_or(CodecError::Corrupt("id range beyond the count"))?;
        // Both fit in u32: end ≤ n ≤ the header's u32 atom count.
        out.push(IdRange {
            start: u32::try_from(start).map_err(|_| CodecError::Corrupt("id range beyond the count"))?,
            len: u32::try_from(len).map_err(|_| CodecError::Corrupt("id range beyond the count"))?,
        });
    }
    Ok(out)
}

/// Width of a palette entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    U8,
    U32,
}

impl Width {
    fn bytes(self) -> usize {
        match self {
            Width::U8 => 1,
            Width::U32 => 4,
        }
    }
}

/// Appends the `values` coding (palette, then rle indices when the palette has two or more
/// entries). `U8` values must fit in a byte.
fn write_values(w: &mut Writer, values: &[u32], width: Width) {
    let mut slot: HashMap<u32, u32> = HashMap::new();
    for &v in values {
        let next = u32::try_from(slot.len()).unwrap_or(u32::MAX);
        slot.entry(v).or_insert(next);
    }
    let mut palette: Vec<u32> = slot.keys().copied().collect();
    palette.sort_unstable();
    for (i, v) in palette.iter().enumerate() {
        slot.insert(*v, u32::try_from(i).unwrap_or(u32::MAX));
    }
    w.varint(palette.len() as u64);
    for &v in &palette {
        match width {
            Width::U8 => w.u8(u8::try_from(v).unwrap_or(u8::MAX)),
            Width::U32 => w.u32(v),
        }
    }
    if palette.len() >= 2 {
        let idx: Vec<u32> = values.iter().map(|v| slot.get(v).copied().unwrap_or(0)).collect();
        w.rle_column(&idx);
    }
}

/// Reads a `values` coding of `k` values; `check` validates each palette entry.
fn read_values<T: Copy>(
    r: &mut Reader<'_>,
    k: usize,
    width: Width,
    check: impl Fn(u32) -> Option<T>,
    what: &'static str,
) -> Result<Vec<T>, CodecError> {
    let d = r.count(k)?;
    if (d == 0) != (k == 0) {
        return Err(CodecError::Corrupt("palette size does not fit the atom count"));
    }
    if d.saturating_mul(width.bytes()) > r.remaining() {
        return Err(CodecError::Truncated);
    }
    let mut palette = Vec::with_capacity(d);
    for _ in 0..d {
        let raw = match width {
            Width::U8 => u32::from(r.u8()?),
            Width::U32 => r.u32()?,
        };
        palette.push(check(raw).ok_or(CodecError::Corrupt(what))?);
    }
    match palette.as_slice() {
        [] => Ok(Vec::new()),
        [only] => Ok(vec![*only; k]),
        _ => r
            .rle_column(k)?
            .into_iter()
            .map(|i| palette.get(i as usize).copied().ok_or(CodecError::Corrupt("palette index out of range")))
            .collect(),
    }
}

/// The new values of one attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Change<T> {
    /// The atoms of `ranges` take `values` (one per atom, in id order); others keep theirs.
    Sparse {
        /// Atoms changed.
        ranges: Vec<IdRange>,
        /// Their new values.
        values: Vec<T>,
    },
    /// Every atom takes its value.
    Dense(Vec<T>),
}

impl<T: Copy> Change<T> {
    /// Whether the change was sent as a whole column.
    #[must_use]
    pub fn is_dense(&self) -> bool {
        matches!(self, Change::Dense(_))
    }

    /// Number of atoms the change sets.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Change::Sparse { values, .. } | Change::Dense(values) => values.len(),
        }
    }

    /// Whether the change sets no atom.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the change fits `n` atoms (ids in range, one value per atom).
    fn fits(&self, n: usize) -> bool {
        match self {
            Change::Sparse { ranges, values } => {
                count(ranges) == values.len() && ranges.iter().all(|r| r.ids().end <= n)
            }
            Change::Dense(values) => values.len() == n,
        }
    }

    /// Calls `f(atom, value)` for every atom set.
    fn for_each(&self, mut f: impl FnMut(usize, T)) {
        match self {
            Change::Sparse { ranges, values } => {
                for (i, &v) in expand(ranges).zip(values) {
                    f(i, v);
                }
            }
            Change::Dense(values) => {
                for (i, &v) in values.iter().enumerate() {
                    f(i, v);
                }
            }
        }
    }
}

/// New label texts.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelChange {
    /// The atoms of `ranges` get `texts` (`None` clears); others keep theirs.
    Sparse {
        /// Atoms changed.
        ranges: Vec<IdRange>,
        /// Their new texts.
        texts: Vec<Option<String>>,
    },
    /// The complete set of texts after the frame.
    Dense(BTreeMap<AtomId, String>),
}

impl LabelChange {
    /// Whether the change was sent as the complete set.
    #[must_use]
    pub fn is_dense(&self) -> bool {
        matches!(self, LabelChange::Dense(_))
    }

    fn fits(&self, n: usize) -> bool {
        match self {
            LabelChange::Sparse { ranges, texts } => {
                count(ranges) == texts.len() && ranges.iter().all(|r| r.ids().end <= n)
            }
            LabelChange::Dense(map) => map.keys().next_back().is_none_or(|id| id.index() < n),
        }
    }
}

/// A decoded attribute frame: for each attribute, the change or `None` when it did not change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttributeFrame {
    /// Colours (RGBA8).
    pub color: Option<Change<u32>>,
    /// Drawn radii in Å.
    pub radius: Option<Change<f32>>,
    /// Representations.
    pub representation: Option<Change<Representation>>,
    /// Selection flags.
    pub selected: Option<Change<bool>>,
    /// Label-shown flags.
    pub labeled: Option<Change<bool>>,
    /// Label texts.
    pub label_text: Option<LabelChange>,
}

impl AttributeFrame {
    /// Applies the frame to `display` and writes colour, radius and flags of the changed atoms
    /// straight into `instances` (positions, pick ids and the other flag bits are kept). Checks
    /// first that the frame fits both (same atom count, ids in range); on error nothing changes.
    pub fn apply(&self, display: &mut DisplayState, instances: &mut [AtomInstance]) -> Result<(), CodecError> {
        let n = display.len();
        let d_ok = [display.radius.len(), display.representation.len(), display.selected.len(), display.labeled.len()]
            .iter()
            .all(|&l| l == n);
        if !d_ok || instances.len() != n {
            return Err(CodecError::AtomCount {
                expected: u32::try_from(n).unwrap_or(u32::MAX),
                got: u32::try_from(instances.len()).unwrap_or(u32::MAX),
            });
        }
        let fits = self.color.as_ref().is_none_or(|c| c.fits(n))
            && self.radius.as_ref().is_none_or(|c| c.fits(n))
            && self.representation.as_ref().is_none_or(|c| c.fits(n))
            && self.selected.as_ref().is_none_or(|c| c.fits(n))
            && self.labeled.as_ref().is_none_or(|c| c.fits(n))
            && self.label_text.as_ref().is_none_or(|c| c.fits(n));
        if !fits {
            return Err(CodecError::Corrupt("attribute change does not fit the atoms held"));
        }
        if let Some(c) = &self.color {
            c.for_each(|i, v| {
                display.color[i] = v;
                instances[i].color = v;
            });
        }
        if let Some(c) = &self.radius {
            c.for_each(|i, v| {
                display.radius[i] = v;
                instances[i].radius = v;
            });
        }
        if let Some(c) = &self.representation {
            c.for_each(|i, v| display.representation[i] = v);
        }
        if let Some(c) = &self.selected {
            c.for_each(|i, v| display.selected[i] = v);
        }
        if let Some(c) = &self.labeled {
            c.for_each(|i, v| display.labeled[i] = v);
        }
        let refresh = |i: usize, inst: &mut [AtomInstance]| {
            let keep = inst[i].flags & !(gpu::ATOM_FLAG_REPR_MASK | gpu::ATOM_FLAG_SELECTED | gpu::ATOM_FLAG_LABELED);
            inst[i].flags =
                keep | gpu::atom_flags(display.representation[i], display.selected[i], display.labeled[i], false, 0);
        };
        if let Some(c) = &self.representation {
            c.for_each(|i, _| refresh(i, instances));
        }
        if let Some(c) = &self.selected {
            c.for_each(|i, _| refresh(i, instances));
        }
        if let Some(c) = &self.labeled {
            c.for_each(|i, _| refresh(i, instances));
        }
        match &self.label_text {
            None => {}
            Some(LabelChange::Dense(map)) => display.label_text.clone_from(map),
            Some(LabelChange::Sparse { ranges, texts }) => {
                for (i, t) in expand(ranges).zip(texts) {
                    let id = AtomId::from_index(i);
                    match t {
                        Some(t) => {
                            display.label_text.insert(id, t.clone());
                        }
                        None => {
                            display.label_text.remove(&id);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Explicit attribute changes a sender makes without building a whole new [`DisplayState`]:
/// each entry sets one atom's attribute (a later entry for the same atom wins).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttributeChanges {
    /// New colours (RGBA8).
    pub color: Vec<(AtomId, u32)>,
    /// New radii in Å.
    pub radius: Vec<(AtomId, f32)>,
    /// New representations.
    pub representation: Vec<(AtomId, Representation)>,
    /// New selection flags.
    pub selected: Vec<(AtomId, bool)>,
    /// New label-shown flags.
    pub labeled: Vec<(AtomId, bool)>,
    /// New label texts (`None` clears).
    pub label_text: Vec<(AtomId, Option<String>)>,
}

impl AttributeChanges {
    /// Applies the changes to `display`. Every atom id is checked first: on
    /// [`CodecError::InvalidInput`] nothing changes.
    pub fn apply(&self, display: &mut DisplayState) -> Result<(), CodecError> {
        let n = display.len();
        fn fits<T>(v: &[(AtomId, T)], len: usize, n: usize) -> bool {
            len == n && v.iter().all(|(a, _)| a.index() < n)
        }
        if !(fits(&self.color, display.color.len(), n)
            && fits(&self.radius, display.radius.len(), n)
            && fits(&self.representation, display.representation.len(), n)
            && fits(&self.selected, display.selected.len(), n)
            && fits(&self.labeled, display.labeled.len(), n)
            && fits(&self.label_text, n, n))
        {
            return Err(CodecError::InvalidInput("attribute change of an atom the display state does not have"));
        }
        for &(a, v) in &self.color {
            display.color[a.index()] = v;
        }
        for &(a, v) in &self.radius {
            display.radius[a.index()] = v;
        }
        for &(a, v) in &self.representation {
            display.representation[a.index()] = v;
        }
        for &(a, v) in &self.selected {
            display.selected[a.index()] = v;
        }
        for &(a, v) in &self.labeled {
            display.labeled[a.index()] = v;
        }
        for (a, t) in &self.label_text {
            match t {
                Some(t) => {
                    display.label_text.insert(*a, t.clone());
                }
                None => {
                    display.label_text.remove(a);
                }
            }
        }
        Ok(())
    }
}

/// Per attribute: the record bytes and whether they are dense.
fn column_record(old: &[u32], new: &[u32], width: Width) -> Option<(bool, Vec<u8>)> {
    let changed = ranges_of((0..new.len()).filter(|&i| old[i] != new[i]).map(|i| i as u32));
    if changed.is_empty() {
        return None;
    }
    let mut sparse = Writer::new();
    write_ranges(&mut sparse, &changed);
    let values: Vec<u32> = expand(&changed).map(|i| new[i]).collect();
    write_values(&mut sparse, &values, width);
    // With two palette entries or more the dense record takes at least 2 + 2·entry bytes plus
    // one width byte per 32 runs in each rle column: skip building it (a hash per atom) when
    // the sparse record is already no larger.
    let runs = new.chunk_by(|a, b| a == b).count();
    if runs > 1 && sparse.buf.len() <= 2 + 2 * width.bytes() + 2 * runs.div_ceil(32) {
        return Some((false, sparse.buf));
    }
    let mut dense = Writer::new();
    write_values(&mut dense, new, width);
    Some(if dense.buf.len() < sparse.buf.len() { (true, dense.buf) } else { (false, sparse.buf) })
}

fn label_record(old: &BTreeMap<AtomId, String>, new: &BTreeMap<AtomId, String>) -> Option<(bool, Vec<u8>)> {
    if old == new {
        return None;
    }
    let mut changed: Vec<(u32, Option<&str>)> = Vec::new();
    let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((ka, _)), Some((kb, _))) if ka < kb => {
                changed.push((ka.0, None));
                a.next();
            }
            (Some((ka, ta)), Some((kb, tb))) if ka == kb => {
                if ta != tb {
                    changed.push((kb.0, Some(tb.as_str())));
                }
                a.next();
                b.next();
            }
            (Some((ka, _)), None) => {
                changed.push((ka.0, None));
                a.next();
            }
            (_, Some((kb, tb))) => {
                changed.push((kb.0, Some(tb.as_str())));
                b.next();
            }
        }
    }
    let mut sparse = Writer::new();
    write_ranges(&mut sparse, &ranges_of(changed.iter().map(|c| c.0)));
    for (_, t) in &changed {
        match t {
            None => sparse.varint(0),
            Some(t) => {
                sparse.varint(t.len() as u64 + 1);
                sparse.buf.extend_from_slice(t.as_bytes());
            }
        }
    }
    let mut dense = Writer::new();
    write_ranges(&mut dense, &ranges_of(new.keys().map(|k| k.0)));
    for t in new.values() {
        dense.bytes(t.as_bytes());
    }
    Some(if dense.buf.len() < sparse.buf.len() { (true, dense.buf) } else { (false, sparse.buf) })
}

/// Appends the attribute-frame payload that turns `old` into `new` (both for the same atoms).
/// Returns `false`, writing nothing, when nothing changed. Fails with
/// [`CodecError::InvalidInput`] when a column of either has the wrong length or a label
/// belongs to an atom that does not exist.
pub fn encode(old: &DisplayState, new: &DisplayState, w: &mut Writer) -> Result<bool, CodecError> {
    let n = new.len();
    for d in [old, new] {
        let lens = [d.color.len(), d.radius.len(), d.representation.len(), d.selected.len(), d.labeled.len()];
        if lens.iter().any(|&l| l != n) || d.label_text.keys().next_back().is_some_and(|k| k.index() >= n) {
            return Err(CodecError::InvalidInput("display state columns do not match the stream's atoms"));
        }
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let repr = |v: &[Representation]| v.iter().map(|&x| x as u32).collect::<Vec<_>>();
    let flag = |v: &[bool]| v.iter().map(|&x| u32::from(x)).collect::<Vec<_>>();
    let radius_changed = old.radius.iter().zip(&new.radius).any(|(a, b)| a.to_bits() != b.to_bits());
    let records = [
        (COLOR, if old.color == new.color { None } else { column_record(&old.color, &new.color, Width::U32) }),
        (RADIUS, if radius_changed { column_record(&bits(&old.radius), &bits(&new.radius), Width::U32) } else { None }),
        (
            REPRESENTATION,
            if old.representation == new.representation {
                None
            } else {
                column_record(&repr(&old.representation), &repr(&new.representation), Width::U8)
            },
        ),
        (
            SELECTED,
            if old.selected == new.selected {
                None
            } else {
                column_record(&flag(&old.selected), &flag(&new.selected), Width::U8)
            },
        ),
        (
            LABELED,
            if old.labeled == new.labeled {
                None
            } else {
                column_record(&flag(&old.labeled), &flag(&new.labeled), Width::U8)
            },
        ),
        (LABEL_TEXT, label_record(&old.label_text, &new.label_text)),
    ];
    let (mut present, mut dense) = (0u8, 0u8);
    for (bit, rec) in &records {
        if let Some((is_dense, _)) = rec {
            present |= bit;
            if *is_dense {
                dense |= bit;
            }
        }
    }
    if present == 0 {
        return Ok(false);
    }
    w.u8(present);
    w.u8(dense);
    for (_, rec) in records {
        if let Some((_, bytes)) = rec {
            w.buf.extend_from_slice(&bytes);
        }
    }
    Ok(true)
}

fn read_change<T: Copy>(
    r: &mut Reader<'_>,
    n: usize,
    dense: bool,
    width: Width,
    check: impl Fn(u32) -> Option<T>,
    what: &'static str,
) -> Result<Change<T>, CodecError> {
    if dense {
        Ok(Change::Dense(read_values(r, n, width, check, what)?))
    } else {
        let ranges = read_ranges(r, n)?;
        let values = read_values(r, count(&ranges), width, check, what)?;
        Ok(Change::Sparse { ranges, values })
    }
}

fn text(r: &mut Reader<'_>, len: usize) -> Result<String, CodecError> {
    std::str::from_utf8(r.take(len)?).map(str::to_owned).map_err(|_| CodecError::Corrupt("label text is not UTF-8"))
}

fn read_labels(r: &mut Reader<'_>, n: usize, dense: bool, limits: &Limits) -> Result<LabelChange, CodecError> {
    let ranges = read_ranges(r, n)?;
    let k = count(&ranges);
    // Every atom's entry takes at least one byte.
    if k > r.remaining() {
        return Err(CodecError::Truncated);
    }
    if dense {
        let mut map = BTreeMap::new();
        for i in expand(&ranges) {
            let len = r.count(limits.max_string)?;
            map.insert(AtomId::from_index(i), text(r, len)?);
        }
        Ok(LabelChange::Dense(map))
    } else {
        let mut texts = Vec::with_capacity(k);
        for _ in 0..k {
            let tag = r.count(limits.max_string.saturating_add(1))?;
            texts.push(if tag == 0 { None } else { Some(text(r, tag - 1)?) });
        }
        Ok(LabelChange::Sparse { ranges, texts })
    }
}

/// Decodes an attribute-frame payload for a stream of `n` atoms. Validates everything (bits,
/// counts, ids, values, UTF-8, exact length) and allocates at most in proportion to `n` and the
/// payload.
pub fn decode(payload: &[u8], n: usize, limits: &Limits) -> Result<AttributeFrame, CodecError> {
    let mut r = Reader::new(payload);
    let present = r.u8()?;
    let dense = r.u8()?;
    if present & !ALL != 0 || dense & !present != 0 {
        return Err(CodecError::Corrupt("unknown attribute bits"));
    }
    if present == 0 {
        return Err(CodecError::Corrupt("attribute frame without attributes"));
    }
    let mut f = AttributeFrame::default();
    let on = |bit: u8| present & bit != 0;
    let is_dense = |bit: u8| dense & bit != 0;
    if on(COLOR) {
        f.color = Some(read_change(&mut r, n, is_dense(COLOR), Width::U32, Some, "colour")?);
    }
    if on(RADIUS) {
        f.radius = Some(read_change(&mut r, n, is_dense(RADIUS), Width::U32, |v| Some(f32::from_bits(v)), "radius")?);
    }
    if on(REPRESENTATION) {
        let check = |v: u32| u8::try_from(v).ok().and_then(Representation::from_u8);
        f.representation = Some(read_change(&mut r, n, is_dense(REPRESENTATION), Width::U8, check, "representation")?);
    }
    let flag = |v: u32| match v {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    };
    if on(SELECTED) {
        f.selected = Some(read_change(&mut r, n, is_dense(SELECTED), Width::U8, flag, "selected flag")?);
    }
    if on(LABELED) {
        f.labeled = Some(read_change(&mut r, n, is_dense(LABELED), Width::U8, flag, "labeled flag")?);
    }
    if on(LABEL_TEXT) {
        f.label_text = Some(read_labels(&mut r, n, is_dense(LABEL_TEXT), limits)?);
    }
    if r.remaining() != 0 {
        return Err(CodecError::Corrupt("bytes after the last attribute record"));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip_and_refuse_out_of_range_ids() {
        let ids = [0u32, 1, 2, 7, 9, 10, 99];
        let ranges = ranges_of(ids);
        assert_eq!(ranges.len(), 4);
        let mut w = Writer::new();
        write_ranges(&mut w, &ranges);
        assert_eq!(read_ranges(&mut Reader::new(&w.buf), 100).unwrap(), ranges);
        assert!(expand(&ranges).map(|i| i as u32).eq(ids));
        assert!(read_ranges(&mut Reader::new(&w.buf), 99).is_err());
        // A huge run count in a short input fails before allocating.
        let mut w = Writer::new();
        w.varint(1 << 30);
        assert_eq!(read_ranges(&mut Reader::new(&w.buf), usize::MAX >> 1), Err(CodecError::Truncated));
    }

    #[test]
    fn ranges_bytes_match_the_format_doc() {
        // docs/format/attributes.md, "ranges": examples.
        let mut w = Writer::new();
        write_ranges(&mut w, &ranges_of([60_000]));
        assert_eq!(w.buf, [0x01, 0xe0, 0xd4, 0x03, 0x00]);
        let mut w = Writer::new();
        write_ranges(&mut w, &ranges_of(1000..1099));
        assert_eq!(w.buf, [0x01, 0xe8, 0x07, 0x62]);
    }

    #[test]
    fn values_round_trip_with_any_palette_size() {
        for values in [vec![], vec![5u32], vec![3; 40], (0..100).map(|i| i % 7).collect::<Vec<_>>()] {
            let mut w = Writer::new();
            write_values(&mut w, &values, Width::U8);
            let mut r = Reader::new(&w.buf);
            assert_eq!(read_values(&mut r, values.len(), Width::U8, Some, "v").unwrap(), values);
            assert_eq!(r.remaining(), 0);
        }
    }
}

//! Keyframes: a complex's current model (topology, coordinates, display state) in one payload.
//!
//! Payload, in order (column codings from [`super::bits`]: `u32col` bit-packed blocks,
//! `delta` differences zigzag-coded and bit-packed, `rle` runs, `palette` distinct values then
//! `u32col` indices; `cond on K`: a value is sent only where it differs from the value its
//! context `K` had the first time `K` was seen: an rle flag column, then the sent values as a
//! palette — atom names repeat per residue type, elements follow names, colours follow the
//! scheme's keys):
//!
//! | part | coding |
//! |---|---|
//! | complex name | bytes |
//! | position (3 × f32), rotation (4 × f32 quaternion), visible u8, locked u8 | raw |
//! | atoms, residues, chains, bonds, strings | 5 varints |
//! | string dictionary | `strings` × bytes |
//! | atoms per residue | u32col |
//! | residue name | u32col |
//! | residue seq number | delta |
//! | insertion code, secondary structure, ribbon flags | rle ×3 |
//! | chain name, residues per chain | u32col, u32col |
//! | atom name | cond on (residue name, index in residue) |
//! | element | cond on atom name |
//! | atom serial | rle of zigzag(serial[i] − serial[i−1] − 1) (mostly 0) |
//! | alt loc, het | rle, rle |
//! | occupancy ×100, B-factor ×100 (rounded) | rle, delta |
//! | formal charge (zigzag) | rle |
//! | bond a | delta |
//! | bond b − a | u32col |
//! | bond kind | rle |
//! | representation | rle |
//! | colour | cond on (element, chain name, residue name) |
//! | radius (f32 bits) | cond on (element, representation) |
//! | selected, labeled | rle ×2 |
//! | labels | varint count, then per label: varint atom-index delta, bytes |
//! | positions | a position delta against all-zero coordinates, mode 1 in every block |
//!
//! Which residue an atom belongs to and which chain a residue belongs to are not sent: the
//! per-residue and per-chain sizes rebuild them.

use glam::{Quat, Vec3};

use super::bits::{Reader, Writer, unzigzag, zigzag};
use super::positions::{self, Quantized};
use super::{CodecError, Limits};
use crate::element::Element;
use crate::ids::{AtomId, ChainId, ResidueId, StrId};
use crate::model::{
    BondKind, Complex, DisplayState, Model, Representation, RibbonFlags, SecondaryStructure, StringPool, Topology,
};

/// Encodes `complex`'s current model. Returns the quantized positions (the base of the next
/// delta).
pub fn encode(complex: &Complex, precision: u8, w: &mut Writer) -> Result<Quantized, CodecError> {
    let view = complex.current();
    let t = view.topology;
    let d = view.display;
    let q = Quantized::from_positions(view.positions, precision)?;
    let n = t.atom_count();
    w.buf.reserve(n * 8);

    w.bytes(complex.name.as_bytes());
    for v in complex.position.to_array().into_iter().chain(complex.rotation.to_array()) {
        w.f32(v);
    }
    w.u8(u8::from(complex.visible));
    w.u8(u8::from(complex.locked));
    for c in [n, t.residue_count(), t.chain_count(), t.bonds.len(), t.strings.len()] {
        w.varint(c as u64);
    }
    for s in t.strings.iter() {
        w.bytes(s.as_bytes());
    }

    let r = &t.residues;
    w.u32_column(&sizes(&r.atom_offsets));
    w.u32_column(&r.name.iter().map(|s| s.0).collect::<Vec<_>>());
    w.delta_column(&r.seq_num);
    w.rle_column(&r.ins_code.iter().map(|&v| u32::from(v)).collect::<Vec<_>>());
    w.rle_column(&r.secondary.iter().map(|&v| v as u32).collect::<Vec<_>>());
    w.rle_column(&r.ribbon.iter().map(|v| u32::from(v.0)).collect::<Vec<_>>());
    w.u32_column(&t.chains.name.iter().map(|s| s.0).collect::<Vec<_>>());
    w.u32_column(&sizes(&t.chains.residue_offsets));

    let a = &t.atoms;
    let keys = Contexts::new(t);
    conditional(w, &keys.name, &a.name.iter().map(|s| s.0).collect::<Vec<_>>());
    conditional(w, &keys.element(t), &a.element.iter().map(|e| u32::from(e.0)).collect::<Vec<_>>());
    let mut prev = 0i32;
    w.rle_column(
        &a.serial
            .iter()
            .map(|&s| {
                let z = zigzag(s.wrapping_sub(prev).wrapping_sub(1));
                prev = s;
                z
            })
            .collect::<Vec<_>>(),
    );
    w.rle_column(&a.alt_loc.iter().map(|&v| u32::from(v)).collect::<Vec<_>>());
    w.rle_column(&a.het.iter().map(|&v| u32::from(v)).collect::<Vec<_>>());
    w.rle_column(&a.occupancy.iter().map(|&o| zigzag(hundredths(o))).collect::<Vec<_>>());
    w.delta_column(&a.b_factor.iter().map(|&b| hundredths(b)).collect::<Vec<_>>());
    w.rle_column(&a.formal_charge.iter().map(|&c| zigzag(i32::from(c))).collect::<Vec<_>>());

    let b = &t.bonds;
    #[allow(clippy::cast_possible_wrap)]
    w.delta_column(&b.a.iter().map(|x| x.0 as i32).collect::<Vec<_>>());
    w.u32_column(&b.a.iter().zip(&b.b).map(|(x, y)| y.0 - x.0).collect::<Vec<_>>());
    w.rle_column(&b.kind.iter().map(|&k| k as u32).collect::<Vec<_>>());

    w.rle_column(&d.representation.iter().map(|&v| v as u32).collect::<Vec<_>>());
    conditional(w, &keys.color(t), &d.color);
    conditional(w, &keys.radius(t, &d.representation), &d.radius.iter().map(|r| r.to_bits()).collect::<Vec<_>>());
    w.rle_column(&d.selected.iter().map(|&v| u32::from(v)).collect::<Vec<_>>());
    w.rle_column(&d.labeled.iter().map(|&v| u32::from(v)).collect::<Vec<_>>());
    w.varint(d.label_text.len() as u64);
    let mut prev = 0u32;
    for (id, text) in &d.label_text {
        w.varint(u64::from(id.0 - prev));
        prev = id.0;
        w.bytes(text.as_bytes());
    }

    positions::encode_delta(&Quantized::zeros(n), &q, true, w);
    Ok(q)
}

/// `v × 100`, rounded (occupancy and B-factor on the wire); non-finite values become 0.
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn hundredths(v: f32) -> i32 {
    if v.is_finite() { (v * 100.0).round().clamp(-2e9, 2e9) as i32 } else { 0 }
}

/// Inverse of [`hundredths`].
#[allow(clippy::cast_precision_loss)]
pub(crate) fn from_hundredths(v: i32) -> f32 {
    v as f32 / 100.0
}

fn sizes(offsets: &[u32]) -> Vec<u32> {
    offsets.windows(2).map(|w| w[1] - w[0]).collect()
}

fn palette(w: &mut Writer, values: &[u32]) {
    let mut distinct: Vec<u32> = values.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    w.varint(distinct.len() as u64);
    for &v in &distinct {
        w.u32(v);
    }
    let idx: Vec<u32> =
        values.iter().map(|v| u32::try_from(distinct.binary_search(v).unwrap_or(0)).unwrap_or(0)).collect();
    w.u32_column(&idx);
}

/// Per-atom context keys the conditional columns are coded against.
struct Contexts {
    /// (residue name, index in residue) for atom names.
    name: Vec<u64>,
}

impl Contexts {
    fn new(t: &Topology) -> Self {
        let mut name = Vec::with_capacity(t.atom_count());
        for (ri, w) in t.residues.atom_offsets.windows(2).enumerate() {
            let res = u64::from(t.residues.name[ri].0);
            name.extend((0..u64::from(w[1] - w[0])).map(|k| res << 20 | k.min(0xf_ffff)));
        }
        Self { name }
    }

    fn element(&self, t: &Topology) -> Vec<u64> {
        t.atoms.name.iter().map(|s| u64::from(s.0)).collect()
    }

    fn color(&self, t: &Topology) -> Vec<u64> {
        (0..t.atom_count())
            .map(|i| {
                let r = t.atoms.residue[i].index();
                let chain = t.chains.name[t.residues.chain[r].index()].0;
                u64::from(t.atoms.element[i].0)
                    | u64::from(chain & 0xff_ffff) << 8
                    | u64::from(t.residues.name[r].0) << 32
            })
            .collect()
    }

    fn radius(&self, t: &Topology, repr: &[Representation]) -> Vec<u64> {
        t.atoms.element.iter().zip(repr).map(|(e, &r)| u64::from(e.0) | (r as u64) << 8).collect()
    }
}

fn conditional(w: &mut Writer, keys: &[u64], values: &[u32]) {
    let mut seen: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut flags = Vec::with_capacity(values.len());
    let mut sent = Vec::new();
    for (&k, &v) in keys.iter().zip(values) {
        match seen.get(&k) {
            Some(&known) if known == v => flags.push(0),
            Some(_) => {
                flags.push(1);
                sent.push(v);
            }
            None => {
                seen.insert(k, v);
                flags.push(1);
                sent.push(v);
            }
        }
    }
    w.rle_column(&flags);
    palette(w, &sent);
}

fn read_conditional(r: &mut Reader<'_>, keys: &[u64]) -> Result<Vec<u32>, CodecError> {
    let n = keys.len();
    let flags = r.rle_column(n)?;
    let count = flags.iter().filter(|&&f| f != 0).count();
    let sent = read_palette(r, count)?;
    let mut seen: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut next = sent.into_iter();
    let mut out = Vec::with_capacity(n);
    for (&k, &f) in keys.iter().zip(&flags) {
        let v = if f == 0 {
            *seen.get(&k).ok_or(CodecError::Corrupt("conditional value of an unseen context"))?
        } else {
            let v = next.next().ok_or(CodecError::Corrupt("conditional column too short"))?;
            seen.entry(k).or_insert(v);
            v
        };
        out.push(v);
    }
    Ok(out)
}

fn read_palette(r: &mut Reader<'_>, n: usize) -> Result<Vec<u32>, CodecError> {
    let k = r.count(n.max(1))?;
    let mut values = Vec::with_capacity(k);
    for _ in 0..k {
        values.push(r.u32()?);
    }
    let mut idx = Vec::new();
    r.u32_column(n, &mut idx)?;
    idx.iter()
        .map(|&i| values.get(i as usize).copied().ok_or(CodecError::Corrupt("palette index out of range")))
        .collect()
}

fn string(r: &mut Reader<'_>, limits: &Limits) -> Result<String, CodecError> {
    let b = r.bytes(limits.max_string)?;
    std::str::from_utf8(b).map(str::to_owned).map_err(|_| CodecError::Corrupt("string is not UTF-8"))
}

fn offsets(sizes: &[u32], total: usize, what: &'static str) -> Result<Vec<u32>, CodecError> {
    let mut out = Vec::with_capacity(sizes.len() + 1);
    let mut acc: u64 = 0;
    out.push(0);
    for &s in sizes {
        acc += u64::from(s);
        if acc > total as u64 {
            return Err(CodecError::Corrupt(what));
        }
        out.push(u32::try_from(acc).map_err(|_| CodecError::Corrupt(what))?);
    }
    if acc != total as u64 {
        return Err(CodecError::Corrupt(what));
    }
    Ok(out)
}

fn small<T>(v: u32, f: impl Fn(u8) -> Option<T>, what: &'static str) -> Result<T, CodecError> {
    u8::try_from(v).ok().and_then(f).ok_or(CodecError::Corrupt(what))
}

/// Decodes a keyframe payload of `atom_count` atoms into a one-model complex and its quantized
/// positions. Every count is bounded by the header's atom count and `limits` before anything
/// is allocated; the topology is validated before it is returned.
pub fn decode(
    payload: &[u8],
    atom_count: u32,
    precision: u8,
    limits: &Limits,
) -> Result<(Complex, Quantized), CodecError> {
    let mut r = Reader::new(payload);
    let name = string(&mut r, limits)?;
    let mut f = [0f32; 7];
    for v in &mut f {
        *v = r.f32()?;
    }
    let visible = r.u8()? != 0;
    let locked = r.u8()? != 0;
    let n = atom_count as usize;
    // The B-factor column alone takes a width byte per 32 atoms: a short payload cannot make
    // the per-atom columns below allocate for a huge declared count.
    if n.div_ceil(32) > payload.len() {
        return Err(CodecError::Truncated);
    }
    if r.count(n)? != n {
        return Err(CodecError::Corrupt("keyframe atom count differs from its header"));
    }
    let n_res = r.count(n)?;
    let n_chain = r.count(n_res)?;
    let n_bond = r.count(n.saturating_mul(8))?;
    let n_str = r.count(n.saturating_mul(3).saturating_add(16))?;
    let mut strings = StringPool::default();
    for i in 0..n_str {
        let s = string(&mut r, limits)?;
        if strings.intern(&s).index() != i {
            return Err(CodecError::Corrupt("duplicate string in dictionary"));
        }
    }
    let str_id =
        |v: u32| if (v as usize) < n_str { Ok(StrId(v)) } else { Err(CodecError::Corrupt("string id out of range")) };
    let mut t = Topology { strings, ..Topology::default() };

    let mut col = Vec::new();
    r.u32_column(n_res, &mut col)?;
    t.residues.atom_offsets = offsets(&col, n, "residue sizes do not add up to the atoms")?;
    r.u32_column(n_res, &mut col)?;
    t.residues.name = col.iter().map(|&v| str_id(v)).collect::<Result<_, _>>()?;
    t.residues.seq_num = r.delta_column(n_res)?;
    t.residues.ins_code =
        r.rle_column(n_res)?.into_iter().map(|v| small(v, Some, "insertion code")).collect::<Result<_, _>>()?;
    t.residues.secondary = r
        .rle_column(n_res)?
        .into_iter()
        .map(|v| {
            small(
                v,
                |s| {
                    [
                        SecondaryStructure::Coil,
                        SecondaryStructure::Helix,
                        SecondaryStructure::Sheet,
                        SecondaryStructure::Turn,
                    ]
                    .get(usize::from(s))
                    .copied()
                },
                "secondary structure",
            )
        })
        .collect::<Result<_, _>>()?;
    t.residues.ribbon = r
        .rle_column(n_res)?
        .into_iter()
        .map(|v| small(v, |f| Some(RibbonFlags(f)), "ribbon"))
        .collect::<Result<_, _>>()?;
    r.u32_column(n_chain, &mut col)?;
    t.chains.name = col.iter().map(|&v| str_id(v)).collect::<Result<_, _>>()?;
    r.u32_column(n_chain, &mut col)?;
    t.chains.residue_offsets = offsets(&col, n_res, "chain sizes do not add up to the residues")?;
    t.atoms.residue = Vec::with_capacity(n);
    for (ri, w) in t.residues.atom_offsets.windows(2).enumerate() {
        t.atoms.residue.extend(std::iter::repeat_n(ResidueId::from_index(ri), (w[1] - w[0]) as usize));
    }
    t.residues.chain = Vec::with_capacity(n_res);
    for (ci, w) in t.chains.residue_offsets.windows(2).enumerate() {
        t.residues.chain.extend(std::iter::repeat_n(ChainId::from_index(ci), (w[1] - w[0]) as usize));
    }

    let keys = Contexts::new(&t);
    t.atoms.name = read_conditional(&mut r, &keys.name)?.into_iter().map(str_id).collect::<Result<_, _>>()?;
    t.atoms.element = read_conditional(&mut r, &keys.element(&t))?
        .into_iter()
        .map(|v| small(v, |e| Some(Element(e)), "element"))
        .collect::<Result<_, _>>()?;
    let mut prev = 0i32;
    t.atoms.serial = r
        .rle_column(n)?
        .into_iter()
        .map(|z| {
            prev = prev.wrapping_add(unzigzag(z)).wrapping_add(1);
            prev
        })
        .collect();
    t.atoms.alt_loc = r.rle_column(n)?.into_iter().map(|v| small(v, Some, "alt loc")).collect::<Result<_, _>>()?;
    t.atoms.het = r.rle_column(n)?.into_iter().map(|v| v != 0).collect();
    t.atoms.occupancy = r.rle_column(n)?.into_iter().map(|v| from_hundredths(unzigzag(v))).collect();
    t.atoms.b_factor = r.delta_column(n)?.into_iter().map(from_hundredths).collect();
    t.atoms.formal_charge = r
        .rle_column(n)?
        .into_iter()
        .map(|v| i8::try_from(unzigzag(v)).map_err(|_| CodecError::Corrupt("formal charge")))
        .collect::<Result<_, _>>()?;

    let bond_a = r.delta_column(n_bond)?;
    r.u32_column(n_bond, &mut col)?;
    let kinds = r.rle_column(n_bond)?;
    for i in 0..n_bond {
        let a = u32::try_from(bond_a[i]).map_err(|_| CodecError::Corrupt("bond atom"))?;
        let b = a.checked_add(col[i]).filter(|&b| (b as usize) < n && b > a).ok_or(CodecError::Corrupt("bond atom"))?;
        t.bonds.a.push(AtomId(a));
        t.bonds.b.push(AtomId(b));
        t.bonds.kind.push(small(kinds[i], BondKind::from_u8, "bond kind")?);
    }
    t.validate().map_err(|_| CodecError::Corrupt("keyframe topology is inconsistent"))?;

    let representation: Vec<Representation> = r
        .rle_column(n)?
        .into_iter()
        .map(|v| small(v, Representation::from_u8, "representation"))
        .collect::<Result<_, _>>()?;
    let color = read_conditional(&mut r, &keys.color(&t))?;
    let radius = read_conditional(&mut r, &keys.radius(&t, &representation))?.into_iter().map(f32::from_bits).collect();
    let selected = r.rle_column(n)?.into_iter().map(|v| v != 0).collect();
    let labeled = r.rle_column(n)?.into_iter().map(|v| v != 0).collect();
    let mut label_text = std::collections::BTreeMap::new();
    let labels = r.count(n)?;
    let mut at = 0u64;
    for _ in 0..labels {
        at += r.varint()?;
        let id = u32::try_from(at).ok().filter(|&i| (i as usize) < n).ok_or(CodecError::Corrupt("label atom"))?;
        label_text.insert(AtomId(id), string(&mut r, limits)?);
    }
    let display = DisplayState { color, radius, representation, selected, labeled, label_text };

    let rest = &payload[r.position()..];
    positions::validate_delta(rest, n)?;
    let mut q = Quantized::zeros(n);
    let mut pos = vec![Vec3::ZERO; n];
    positions::apply_delta(rest, &mut q, precision, &mut pos[..])?;
    // A sender keeps |q| < 2^28 (`Quantized::from_positions`); anything else is not a frame a
    // sender could have written, and could not be encoded again.
    let limit = positions::Q_LIMIT.unsigned_abs();
    if q.x.iter().chain(&q.y).chain(&q.z).any(|v| v.unsigned_abs() >= limit) {
        return Err(CodecError::Corrupt("keyframe coordinate beyond ±2^28 quantization steps"));
    }

    let mut complex =
        Complex::new(name, vec![t], vec![display], vec![Model { topology: 0, positions: pos, ..Model::default() }]);
    complex.position = Vec3::new(f[0], f[1], f[2]);
    complex.rotation = Quat::from_xyzw(f[3], f[4], f[5], f[6]);
    complex.visible = visible;
    complex.locked = locked;
    Ok((complex, q))
}

//! Bonds: distance-based inference on a uniform grid (O(n)), merged with explicit bonds from
//! the file (CONECT, `struct_conn`), with bond orders from a small table of standard residues.
//!
//! Rules:
//! - two atoms bond when `0.4 Å < d < r_cov(a) + r_cov(b) + 0.45 Å` (Cordero radii; Jmol's
//!   tolerance);
//! - never between atoms with different non-blank alternate locations (A and B of one site);
//! - a hydrogen bonds to at most one atom: the closest candidate relative to the radii sum;
//! - inference runs per model, so there are no bonds across models.

use std::collections::HashMap;

use glam::Vec3;

use crate::element::Element;
use crate::ids::AtomId;
use crate::model::{BondColumns, BondKind, Topology};

/// Added to the sum of covalent radii.
pub const BOND_TOLERANCE: f32 = 0.45;
/// Pairs closer than this are overlapping atoms, not bonds.
pub const MIN_BOND_DISTANCE: f32 = 0.4;

/// Sets `topology.bonds` to the `explicit` bonds (atom index pairs with kinds, e.g. from CONECT)
/// plus, when `infer` is set, bonds inferred from `positions`. Explicit bonds win over inferred
/// ones; residue templates set the order of inferred bonds they know. Ions (single-atom residues
/// of elements other than C, N, O, S, P, H) and unknown elements get no inferred bonds: a Na⁺
/// among waters is not covalently bound to them, and a TIP4P virtual site is no atom at all.
pub fn assign_bonds(topology: &mut Topology, positions: &[Vec3], explicit: &[(AtomId, AtomId, BondKind)], infer: bool) {
    let inferred = if infer {
        let isolated = ion_mask(topology);
        infer_bonds(&topology.atoms.element, &topology.atoms.alt_loc, &isolated, positions)
    } else {
        Vec::new()
    };
    let mut bonds = BondColumns::default();
    let cap = inferred.len() + explicit.len();
    bonds.a.reserve(cap);
    bonds.b.reserve(cap);
    bonds.kind.reserve(cap);
    let mut seen: HashMap<(AtomId, AtomId), usize> = HashMap::with_capacity(explicit.len());
    for &(x, y, kind) in explicit {
        if x == y || x.index() >= positions.len() || y.index() >= positions.len() {
            continue;
        }
        let key = if x < y { (x, y) } else { (y, x) };
        if let Some(&i) = seen.get(&key) {
            bonds.kind[i] = bonds.kind[i].max_order(kind);
            continue;
        }
        seen.insert(key, bonds.len());
        bonds.push(key.0, key.1, kind);
    }
    let templates = crate::templates::ResidueTemplates::new(topology);
    for (a, b) in inferred {
        if seen.contains_key(&(a, b)) {
            continue;
        }
        let kind = templates.kind(topology, a, b);
        bonds.push(a, b, kind);
    }
    topology.bonds = bonds;
}

/// Marks atoms that get no inferred bond: unknown elements (virtual sites such as TIP4P's `MW`,
/// element `X`) and atoms alone in their residue that are not C, N, O, S, P or H (ions).
#[must_use]
pub fn ion_mask(t: &Topology) -> Vec<bool> {
    let mut mask: Vec<bool> = t.atoms.element.iter().map(|&e| e == Element::UNKNOWN).collect();
    for w in t.residues.atom_offsets.windows(2) {
        let (a, b) = (w[0] as usize, w[1] as usize);
        if b == a + 1 {
            let e = t.atoms.element[a];
            let organic = [Element::C, Element::N, Element::O, Element::S, Element::P].contains(&e) || e.is_hydrogen();
            mask[a] |= !organic;
        }
    }
    mask
}

impl BondKind {
    /// The kind of higher order (explicit double beats an inferred single).
    #[must_use]
    pub fn max_order(self, other: BondKind) -> BondKind {
        if (other as u8) > (self as u8) { other } else { self }
    }
}

/// Distance-based bond inference on a uniform grid. Returns ordered pairs `(a, b)`, `a < b`.
///
/// Runs in O(n) for structures of roughly uniform density: atoms are counting-sorted into cells
/// at least one maximal bond length wide and each atom is compared with the atoms of its own and
/// the 26 neighbouring cells. Non-finite or absurd (beyond ±1e6 Å) positions and atoms flagged
/// in `isolated` are never bonded.
#[must_use]
pub fn infer_bonds(
    elements: &[Element],
    alt_locs: &[u8],
    isolated: &[bool],
    positions: &[Vec3],
) -> Vec<(AtomId, AtomId)> {
    infer_bonds_counted(elements, alt_locs, isolated, positions).0
}

/// [`infer_bonds`], also returning how many atom pairs were compared: the measure of its cost
/// that tests use to check it stays linear (no timing needed).
#[must_use]
pub fn infer_bonds_counted(
    elements: &[Element],
    alt_locs: &[u8],
    isolated: &[bool],
    positions: &[Vec3],
) -> (Vec<(AtomId, AtomId)>, u64) {
    let n = positions.len().min(elements.len()).min(alt_locs.len()).min(isolated.len());
    if n < 2 {
        return (Vec::new(), 0);
    }
    let mut compared = 0u64;
    // Atoms that can bond: not isolated, and at a sane place. Coordinates beyond ±1e6 Å are
    // garbage (a corrupt file), never bonded, and kept out of the grid so it stays bounded.
    let bondable: Vec<bool> =
        (0..n).map(|i| !isolated[i] && positions[i].is_finite() && positions[i].abs().max_element() < 1e6).collect();
    let radii: Vec<f32> = elements[..n].iter().map(|e| e.covalent_radius()).collect();
    // Cells sized by the largest radius among atoms that can bond (TIP4P sites and ions, which
    // never bond, would otherwise widen every cell).
    let max_r = (0..n).filter(|&i| bondable[i]).map(|i| radii[i]).fold(0.0f32, f32::max);
    let cutoff = 2.0 * max_r + BOND_TOLERANCE;

    let (mut lo, mut hi) = (Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY));
    for (p, _) in positions[..n].iter().zip(&bondable).filter(|(_, b)| **b) {
        lo = lo.min(*p);
        hi = hi.max(*p);
    }
    if !lo.is_finite() {
        return (Vec::new(), 0);
    }
    // Cells at least `cutoff` wide, and no more cells than ~2 per atom so that sparse or
    // far-flung structures cannot blow up memory.
    let extent = (hi - lo).max(Vec3::splat(1e-3));
    let mut cell = cutoff;
    #[allow(clippy::cast_precision_loss)]
    let budget = (2 * n + 64) as f32;
    loop {
        let d = (extent / cell).floor() + 1.0;
        if d.x * d.y * d.z <= budget {
            break;
        }
        cell *= 1.26;
    }
    let dims_f = (extent / cell).floor() + 1.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let dims = [dims_f.x as usize, dims_f.y as usize, dims_f.z as usize];
    let inv = 1.0 / cell;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let cell_of = |p: Vec3| -> [usize; 3] {
        let c = ((p - lo) * inv).floor();
        [
            (c.x.max(0.0) as usize).min(dims[0] - 1),
            (c.y.max(0.0) as usize).min(dims[1] - 1),
            (c.z.max(0.0) as usize).min(dims[2] - 1),
        ]
    };
    let flat = |c: [usize; 3]| (c[2] * dims[1] + c[1]) * dims[0] + c[0];
    let n_cells = dims[0] * dims[1] * dims[2];

    // Counting sort of finite atoms into cells.
    let mut start = vec![0u32; n_cells + 1];
    let mut atom_cell = vec![u32::MAX; n];
    for (i, p) in positions[..n].iter().enumerate() {
        if bondable[i] {
            let f = flat(cell_of(*p));
            atom_cell[i] = u32::try_from(f).unwrap_or(u32::MAX);
            start[f + 1] += 1;
        }
    }
    for i in 0..n_cells {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut sorted = vec![0u32; start[n_cells] as usize];
    for (i, &c) in atom_cell.iter().enumerate() {
        if c != u32::MAX {
            let slot = &mut fill[c as usize];
            sorted[*slot as usize] = u32::try_from(i).unwrap_or(u32::MAX);
            *slot += 1;
        }
    }

    let is_h: Vec<bool> = elements[..n].iter().map(|e| e.is_hydrogen()).collect();
    // Best heavy-or-H partner of each hydrogen: (partner, distance - radii sum).
    let mut best_h: Vec<(u32, f32)> = vec![(u32::MAX, f32::INFINITY); n];
    let mut pairs = Vec::with_capacity(n + n / 4);

    // The per-atom data in cell order, so the inner loop reads contiguous memory.
    let idx = |k: u32| k as usize;
    let sp: Vec<Vec3> = sorted.iter().map(|&i| positions[idx(i)]).collect();
    let sr: Vec<f32> = sorted.iter().map(|&i| radii[idx(i)]).collect();
    let sa: Vec<u8> = sorted.iter().map(|&i| alt_locs[idx(i)]).collect();
    let sh: Vec<bool> = sorted.iter().map(|&i| is_h[idx(i)]).collect();
    let min2 = MIN_BOND_DISTANCE * MIN_BOND_DISTANCE;
    // Compares two atoms given by their places in cell order.
    let mut visit = |a: usize, b: usize| {
        let (xa, xb) = (sa[a], sa[b]);
        if xa != 0 && xb != 0 && xa != xb {
            return;
        }
        let limit = sr[a] + sr[b] + BOND_TOLERANCE;
        let d2 = sp[a].distance_squared(sp[b]);
        if d2 >= limit * limit || d2 <= min2 {
            return;
        }
        let (i, j) = (idx(sorted[a]), idx(sorted[b]));
        if sh[a] || sh[b] {
            let score = d2.sqrt() - (sr[a] + sr[b]);
            for (h, other) in [(i, j), (j, i)] {
                if is_h[h] && score < best_h[h].1 {
                    best_h[h] = (u32::try_from(other).unwrap_or(u32::MAX), score);
                }
            }
        } else {
            let (lo, hi) = if i < j { (i, j) } else { (j, i) };
            pairs.push((AtomId::from_index(lo), AtomId::from_index(hi)));
        }
    };
    // Each cell meets itself and the 13 neighbours "after" it, so every pair of cells (and of
    // atoms) is visited exactly once.
    const HALF: [[isize; 3]; 13] = [
        [1, 0, 0],
        [-1, 1, 0],
        [0, 1, 0],
        [1, 1, 0],
        [-1, -1, 1],
        [0, -1, 1],
        [1, -1, 1],
        [-1, 0, 1],
        [0, 0, 1],
        [1, 0, 1],
        [-1, 1, 1],
        [0, 1, 1],
        [1, 1, 1],
    ];
    for cz in 0..dims[2] {
        for cy in 0..dims[1] {
            for cx in 0..dims[0] {
                let f = flat([cx, cy, cz]);
                let (s0, s1) = (start[f] as usize, start[f + 1] as usize);
                if s0 == s1 {
                    continue;
                }
                for a in s0..s1 {
                    for b in a + 1..s1 {
                        visit(a, b);
                    }
                }
                compared += ((s1 - s0) * (s1 - s0 - 1) / 2) as u64;
                for d in HALF {
                    let (Some(nx), Some(ny), Some(nz)) =
                        (cx.checked_add_signed(d[0]), cy.checked_add_signed(d[1]), cz.checked_add_signed(d[2]))
                    else {
                        continue;
                    };
                    if nx >= dims[0] || ny >= dims[1] || nz >= dims[2] {
                        continue;
                    }
                    let g = flat([nx, ny, nz]);
                    let (t0, t1) = (start[g] as usize, start[g + 1] as usize);
                    compared += ((s1 - s0) * (t1 - t0)) as u64;
                    for a in s0..s1 {
                        for b in t0..t1 {
                            visit(a, b);
                        }
                    }
                }
            }
        }
    }
    // Hydrogen bonds: each H keeps its best partner; an H–H pair needs to be best for both.
    for h in 0..n {
        let (p, _) = best_h[h];
        if p == u32::MAX {
            continue;
        }
        let p = p as usize;
        if is_h[p] {
            if best_h[p].0 as usize == h && h < p {
                pairs.push((AtomId::from_index(h), AtomId::from_index(p)));
            }
        } else {
            let (a, b) = if h < p { (h, p) } else { (p, h) };
            pairs.push((AtomId::from_index(a), AtomId::from_index(b)));
        }
    }
    pairs.sort_unstable();
    (pairs, compared)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn els(s: &[&str]) -> Vec<Element> {
        s.iter().map(|x| Element::from_symbol(x).unwrap()).collect()
    }

    #[test]
    fn water_has_two_bonds_and_no_h_h_bond() {
        let e = els(&["O", "H", "H"]);
        let p = [Vec3::ZERO, Vec3::new(0.9572, 0.0, 0.0), Vec3::new(-0.24, 0.927, 0.0)];
        let b = infer_bonds(&e, &[0; 3], &[false; 3], &p);
        assert_eq!(b, vec![(AtomId(0), AtomId(1)), (AtomId(0), AtomId(2))]);
    }

    #[test]
    fn hydrogen_bonds_only_to_its_closest_partner() {
        // H between two carbons, closer to the first.
        let e = els(&["C", "H", "C"]);
        let p = [Vec3::ZERO, Vec3::new(1.0, 0.0, 0.0), Vec3::new(2.1, 0.0, 0.0)];
        let b = infer_bonds(&e, &[0; 3], &[false; 3], &p);
        assert!(b.contains(&(AtomId(0), AtomId(1))));
        assert!(!b.contains(&(AtomId(1), AtomId(2))), "{b:?}");
    }

    #[test]
    fn alternate_locations_do_not_bond_each_other() {
        let e = els(&["C", "C", "C"]);
        // Atom 0 (no altloc) bonds both 1 (A) and 2 (B); A and B are 1.2 Å apart but never bond.
        let p = [Vec3::ZERO, Vec3::new(1.5, 0.0, 0.0), Vec3::new(1.5, 1.2, 0.0)];
        let b = infer_bonds(&e, &[0, b'A', b'B'], &[false; 3], &p);
        assert_eq!(b, vec![(AtomId(0), AtomId(1)), (AtomId(0), AtomId(2))]);
    }

    #[test]
    fn grid_matches_brute_force_on_a_random_cloud() {
        // Deterministic pseudo-random cloud of C/N/O/H atoms at protein-like density.
        let mut s = 0x1234_5678_u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            #[allow(clippy::cast_precision_loss)]
            let v = (s >> 11) as f32 / (1u64 << 53) as f32;
            v
        };
        let n = 3000;
        let side = (n as f32 * 11.0).cbrt();
        let pool = els(&["C", "N", "O", "H", "S"]);
        let mut e = Vec::new();
        let mut p = Vec::new();
        for _ in 0..n {
            p.push(Vec3::new(next(), next(), next()) * side);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            e.push(pool[(next() * 4.999) as usize]);
        }
        let alt = vec![0u8; n];
        let grid = infer_bonds(&e, &alt, &vec![false; n], &p);
        // Brute force, heavy atoms only (hydrogens follow the best-partner rule).
        let mut brute = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                if e[i].is_hydrogen() || e[j].is_hydrogen() {
                    continue;
                }
                let lim = e[i].covalent_radius() + e[j].covalent_radius() + BOND_TOLERANCE;
                let d2 = p[i].distance_squared(p[j]);
                if d2 < lim * lim && d2 > MIN_BOND_DISTANCE * MIN_BOND_DISTANCE {
                    brute.push((AtomId::from_index(i), AtomId::from_index(j)));
                }
            }
        }
        let heavy: Vec<_> =
            grid.iter().copied().filter(|(a, b)| !e[a.index()].is_hydrogen() && !e[b.index()].is_hydrogen()).collect();
        assert!(brute.len() > 100, "test cloud too sparse: {}", brute.len());
        assert_eq!(heavy, brute);
        // Every hydrogen has at most one bond.
        let mut count = vec![0; n];
        for (a, b) in &grid {
            count[a.index()] += 1;
            count[b.index()] += 1;
        }
        assert!((0..n).filter(|&i| e[i].is_hydrogen()).all(|i| count[i] <= 1));
    }

    #[test]
    fn inference_work_grows_linearly_with_atoms() {
        use crate::io::{LoadOptions, load_file};
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
        let l = load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap();
        let m = l.complex.current();
        let per_atom = |copies: u32| {
            let (t, p) = crate::synth::tile(m.topology, m.positions, [copies; 3], 3.0);
            let mask = ion_mask(&t);
            let (bonds, compared) = infer_bonds_counted(&t.atoms.element, &t.atoms.alt_loc, &mask, &p);
            #[allow(clippy::cast_precision_loss)]
            (compared as f64 / t.atom_count() as f64, bonds.len() / t.atom_count().max(1))
        };
        let (small, _) = per_atom(1);
        // 27 × 1890 = 51,030 atoms: the 50k-atom case must not be quadratic.
        let (large, _) = per_atom(3);
        assert!(small > 1.0 && large > 1.0);
        assert!(large < small * 1.3, "pairs compared per atom grew from {small:.1} to {large:.1}");
        assert!(large < 200.0, "{large:.1} pairs per atom");
    }

    #[test]
    fn extreme_coordinates_terminate_and_are_not_bonded() {
        // A corrupt file can hold 1e38: the grid must stay bounded and the call must return.
        let e = els(&["C", "C", "C", "C"]);
        let p = [Vec3::ZERO, Vec3::new(1.5, 0.0, 0.0), Vec3::splat(3e38), Vec3::splat(-3e38)];
        let b = infer_bonds(&e, &[0; 4], &[false; 4], &p);
        assert_eq!(b, vec![(AtomId(0), AtomId(1))]);
    }

    #[test]
    fn far_apart_atoms_and_non_finite_positions_are_safe() {
        let e = els(&["C", "C", "C", "C"]);
        let p = [Vec3::ZERO, Vec3::new(1.5, 0.0, 0.0), Vec3::splat(1e7), Vec3::new(f32::NAN, 0.0, 0.0)];
        let b = infer_bonds(&e, &[0; 4], &[false; 4], &p);
        assert_eq!(b, vec![(AtomId(0), AtomId(1))]);
    }
}

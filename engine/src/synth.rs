//! Synthetic structures for benchmarks and scale tests: a real topology tiled on a grid.

use glam::Vec3;

use crate::ids::{AtomId, ChainId, ResidueId};
use crate::model::Topology;

/// Tiles `topology` (with its `positions`) `copies[0] × copies[1] × copies[2]` times on a grid,
/// each copy shifted by the structure's extent plus `gap` Å along each axis. Bonds are copied
/// with their atoms; names keep their interned ids. Returns the new topology and positions.
#[must_use]
pub fn tile(topology: &Topology, positions: &[Vec3], copies: [u32; 3], gap: f32) -> (Topology, Vec<Vec3>) {
    let n = topology.atom_count();
    let total = copies.iter().map(|&c| c as usize).product::<usize>();
    let (lo, hi) = positions
        .iter()
        .fold((Vec3::splat(f32::INFINITY), Vec3::splat(f32::NEG_INFINITY)), |(l, h), p| (l.min(*p), h.max(*p)));
    let step = (hi - lo).max(Vec3::ZERO) + Vec3::splat(gap);
    let mut t = Topology { strings: topology.strings.clone(), ..Topology::default() };
    let mut out = Vec::with_capacity(n * total);
    let src = &topology.atoms;
    let nres = topology.residue_count();
    let nchain = topology.chain_count();
    let copy_index = |k: usize| -> u32 { u32::try_from(k).unwrap_or(u32::MAX) };
    let mut k = 0usize;
    for z in 0..copies[2] {
        for y in 0..copies[1] {
            for x in 0..copies[0] {
                #[allow(clippy::cast_precision_loss)]
                let shift = step * Vec3::new(x as f32, y as f32, z as f32);
                let (atom_base, res_base, chain_base) =
                    (copy_index(k * n), copy_index(k * nres), copy_index(k * nchain));
                out.extend(positions.iter().map(|p| *p + shift));
                let a = &mut t.atoms;
                a.name.extend_from_slice(&src.name);
                a.element.extend_from_slice(&src.element);
                a.serial.extend(src.serial.iter().map(|s| s.wrapping_add(i32::try_from(k * n).unwrap_or(0))));
                a.alt_loc.extend_from_slice(&src.alt_loc);
                a.het.extend_from_slice(&src.het);
                a.occupancy.extend_from_slice(&src.occupancy);
                a.b_factor.extend_from_slice(&src.b_factor);
                a.formal_charge.extend_from_slice(&src.formal_charge);
                a.residue.extend(src.residue.iter().map(|r| ResidueId(r.0 + res_base)));
                let r = &mut t.residues;
                let sr = &topology.residues;
                r.name.extend_from_slice(&sr.name);
                r.seq_num.extend_from_slice(&sr.seq_num);
                r.ins_code.extend_from_slice(&sr.ins_code);
                r.secondary.extend_from_slice(&sr.secondary);
                r.ribbon.extend_from_slice(&sr.ribbon);
                r.chain.extend(sr.chain.iter().map(|c| ChainId(c.0 + chain_base)));
                r.atom_offsets.extend(sr.atom_offsets[..nres].iter().map(|o| o + atom_base));
                t.chains.name.extend_from_slice(&topology.chains.name);
                t.chains.residue_offsets.extend(topology.chains.residue_offsets[..nchain].iter().map(|o| o + res_base));
                let b = &topology.bonds;
                for i in 0..b.len() {
                    t.bonds.push(AtomId(b.a[i].0 + atom_base), AtomId(b.b[i].0 + atom_base), b.kind[i]);
                }
                k += 1;
            }
        }
    }
    t.residues.atom_offsets.push(copy_index(k * n));
    t.chains.residue_offsets.push(copy_index(k * nres));
    (t, out)
}

/// A per-step stream for the interactive case: `steps` frames starting at `start`, each atom
/// taking a random step uniform in `[-a, a]` per axis, so the 3D RMS step is `a` Å (use 0.05
/// for thermal motion). Deterministic for a given `seed` (xorshift32; 0 is replaced).
#[must_use]
pub fn random_walk(start: &[Vec3], steps: usize, a: f32, seed: u32) -> Vec<Vec<Vec3>> {
    let mut s = if seed == 0 { 0x9e37_79b9 } else { seed };
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        #[allow(clippy::cast_precision_loss)]
        let u = (s as f32 / u32::MAX as f32) * 2.0 - 1.0;
        u
    };
    let mut cur = start.to_vec();
    let mut out = Vec::with_capacity(steps);
    out.push(cur.clone());
    for _ in 1..steps {
        for p in &mut cur {
            *p += Vec3::new(next(), next(), next()) * a;
        }
        out.push(cur.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{LoadOptions, load_file};

    #[test]
    fn tiled_topology_is_valid_and_scaled() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1YJP.cif");
        let l = load_file(path, &LoadOptions::default()).unwrap();
        let m = l.complex.current();
        let (t, p) = tile(m.topology, m.positions, [2, 3, 1], 5.0);
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.atom_count(), 6 * 66);
        assert_eq!(p.len(), 6 * 66);
        assert_eq!(t.bonds.len(), 6 * m.topology.bonds.len());
        assert_eq!(t.residue_count(), 6 * m.topology.residue_count());
    }
}

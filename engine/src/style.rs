//! Colour schemes and drawn radii: straight passes over the topology columns, no allocation
//! per atom.

use crate::element::Element;
use crate::model::{ColorScheme, Representation, Topology, pack_rgba};

/// Radius of the ball in ball-and-stick, as a fraction of the van der Waals radius (Jmol's
/// default `spacefill 23%`).
pub const BALL_SCALE: f32 = 0.23;
/// Cylinder radius of sticks, in Å; atoms in the sticks style are drawn as caps this wide.
pub const STICK_RADIUS: f32 = 0.2;
/// Line radius of the wire style, in Å.
pub const WIRE_RADIUS: f32 = 0.05;

/// Drawn sphere radius of an atom of element `e` in representation `r`.
#[must_use]
pub fn atom_radius(e: Element, r: Representation) -> f32 {
    match r {
        Representation::BallAndStick => BALL_SCALE * e.vdw_radius(),
        Representation::Sticks => STICK_RADIUS,
        Representation::Spacefill => e.vdw_radius(),
        Representation::Wire => WIRE_RADIUS,
        Representation::Hidden => 0.0,
    }
}

/// A qualitative palette for chains (12 colours, cycled).
pub const CHAIN_PALETTE: [[u8; 3]; 12] = [
    [0x4e, 0x79, 0xa7],
    [0xf2, 0x8e, 0x2b],
    [0xe1, 0x57, 0x59],
    [0x76, 0xb7, 0xb2],
    [0x59, 0xa1, 0x4f],
    [0xed, 0xc9, 0x48],
    [0xb0, 0x7a, 0xa1],
    [0xff, 0x9d, 0xa7],
    [0x9c, 0x75, 0x5f],
    [0xba, 0xb0, 0xac],
    [0x1f, 0x9e, 0x89],
    [0x6a, 0x3d, 0x9a],
];

/// Jmol's "amino" colours, and "shapely" colours for nucleotides.
const RESIDUE_COLORS: &[(&str, [u8; 3])] = &[
    ("ALA", [0xc8, 0xc8, 0xc8]),
    ("ARG", [0x14, 0x5a, 0xff]),
    ("ASN", [0x00, 0xdc, 0xdc]),
    ("ASP", [0xe6, 0x0a, 0x0a]),
    ("CYS", [0xe6, 0xe6, 0x00]),
    ("GLN", [0x00, 0xdc, 0xdc]),
    ("GLU", [0xe6, 0x0a, 0x0a]),
    ("GLY", [0xeb, 0xeb, 0xeb]),
    ("HIS", [0x82, 0x82, 0xd2]),
    ("ILE", [0x0f, 0x82, 0x0f]),
    ("LEU", [0x0f, 0x82, 0x0f]),
    ("LYS", [0x14, 0x5a, 0xff]),
    ("MET", [0xe6, 0xe6, 0x00]),
    ("MSE", [0xe6, 0xe6, 0x00]),
    ("PHE", [0x32, 0x32, 0xaa]),
    ("PRO", [0xdc, 0x96, 0x82]),
    ("SER", [0xfa, 0x96, 0x00]),
    ("THR", [0xfa, 0x96, 0x00]),
    ("TRP", [0xb4, 0x5a, 0xb4]),
    ("TYR", [0x32, 0x32, 0xaa]),
    ("VAL", [0x0f, 0x82, 0x0f]),
    ("A", [0xa0, 0xa0, 0xff]),
    ("DA", [0xa0, 0xa0, 0xff]),
    ("C", [0xff, 0x8c, 0x4b]),
    ("DC", [0xff, 0x8c, 0x4b]),
    ("G", [0xff, 0x70, 0x70]),
    ("DG", [0xff, 0x70, 0x70]),
    ("T", [0xa0, 0xff, 0xa0]),
    ("DT", [0xa0, 0xff, 0xa0]),
    ("U", [0xff, 0x80, 0x80]),
    ("HOH", [0xff, 0x00, 0x00]),
];
/// Colour of residues outside the table (ligands, ions).
pub const OTHER_RESIDUE_COLOR: [u8; 3] = [0xbe, 0xa0, 0x6e];

/// Writes one packed colour per atom of `t` into `out` (resized to the atom count).
pub fn color_atoms(t: &Topology, scheme: ColorScheme, out: &mut Vec<u32>) {
    let n = t.atom_count();
    out.clear();
    out.reserve(n);
    match scheme {
        ColorScheme::Element => {
            out.extend(t.atoms.element.iter().map(|e| pack_rgba(e.cpk_color(), 255)));
        }
        ColorScheme::Chain => {
            // Chains with the same author id share a colour; ids are small, so a per-string
            // table indexed by StrId is enough.
            let mut by_name = vec![u32::MAX; t.strings.len()];
            let mut next = 0usize;
            let chain_color: Vec<u32> = t
                .chains
                .name
                .iter()
                .map(|&name| {
                    let slot = &mut by_name[name.index()];
                    if *slot == u32::MAX {
                        *slot = pack_rgba(CHAIN_PALETTE[next % CHAIN_PALETTE.len()], 255);
                        next += 1;
                    }
                    *slot
                })
                .collect();
            out.extend(t.atoms.residue.iter().map(|r| chain_color[t.residues.chain[r.index()].index()]));
        }
        ColorScheme::ResidueType => {
            let by_name: Vec<u32> = t
                .strings
                .iter()
                .map(|s| {
                    let rgb = RESIDUE_COLORS.iter().find(|(n, _)| *n == s).map_or(OTHER_RESIDUE_COLOR, |&(_, c)| c);
                    pack_rgba(rgb, 255)
                })
                .collect();
            out.extend(t.atoms.residue.iter().map(|r| by_name[t.residues.name[r.index()].index()]));
        }
        ColorScheme::BFactor => {
            let (lo, hi) = t
                .atoms
                .b_factor
                .iter()
                .filter(|b| b.is_finite())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &b| (l.min(b), h.max(b)));
            let span = if hi > lo { hi - lo } else { 1.0 };
            out.extend(t.atoms.b_factor.iter().map(|&b| {
                let x = if b.is_finite() { ((b - lo) / span).clamp(0.0, 1.0) } else { 0.5 };
                pack_rgba(blue_white_red(x), 255)
            }));
        }
    }
}

/// Blue (0) → white (0.5) → red (1).
#[must_use]
pub fn blue_white_red(x: f32) -> [u8; 3] {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ch = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    if x < 0.5 {
        let t = x * 2.0;
        [ch(t), ch(t), 255]
    } else {
        let t = (1.0 - x) * 2.0;
        [255, ch(t), ch(t)]
    }
}

// Bonds as ray-cast cylinder impostors. Composed after instances.wgsl, frame.wgsl and
// impostors.wgsl.
//
// Both ends are read from the atom buffer (`atoms[bond.atom_a]`, `atoms[bond.atom_b]`), so a
// position stream rewrites the atom buffer only and the bonds follow. Radii and visibility
// come from the atoms' representations: a bond is drawn when both atoms are ball-and-stick,
// sticks or wire, with the thinner of the two styles' radii. Each half takes its atom's colour,
// selection and pick id.
//
// Orders: single and unknown bonds are one cylinder; double bonds two thinner parallel ones,
// triple bonds three, aromatic bonds one solid and one dashed. The parallel cylinders are offset
// perpendicular to both the bond and the view ray, so they always read apart on screen.
// `vs_bond` draws cylinder 0 of every bond (instance = bond index); `vs_bond_extra` draws
// cylinders 1 and 2 of multiple bonds from the `bond_extras` list (bond index << 2 | cylinder),
// which is built once per topology.
//
// Each cylinder is drawn as one screen-space quad (4 vertices, triangle strip, `cylinder_quad`
// in impostors.wgsl).

// Bond kinds (mirror of `molstream_engine::BondKind`; checked by viewer/tests/wgsl.rs).
const BOND_DOUBLE: u32 = 2u;
const BOND_TRIPLE: u32 = 3u;
const BOND_AROMATIC: u32 = 4u;

// Radius and offset of the parallel cylinders, as fractions of the bond radius.
const DOUBLE_RADIUS: f32 = 0.5;
const DOUBLE_OFFSET: f32 = 1.0;
const TRIPLE_RADIUS: f32 = 0.35;
const TRIPLE_OFFSET: f32 = 1.1;
// Dash period of the second cylinder of aromatic bonds, Å.
const AROMATIC_DASH: f32 = 0.3;

struct BondVarying {
    @builtin(position) clip: vec4<f32>,
    // Point on the quad, view space: the ray from the eye through this pixel.
    @location(0) ray: vec3<f32>,
    // xyz: cylinder start (atom a's end), view space; w: radius.
    @location(1) @interpolate(flat) start: vec4<f32>,
    // xyz: cylinder end (atom b's end), view space; w: dash period (0: solid).
    @location(2) @interpolate(flat) end: vec4<f32>,
    // Linear colours of the two halves.
    @location(3) @interpolate(flat) color_a: vec4<f32>,
    @location(4) @interpolate(flat) color_b: vec4<f32>,
    // Pick ids of atoms a and b, then their flags.
    @location(5) @interpolate(flat) ids: vec4<u32>,
}

fn bond_vertex(bond_index: u32, cylinder: u32, vi: u32) -> BondVarying {
    var out: BondVarying;
    out.clip = CULLED;
    let b = bonds[bond_index];
    let a0 = atoms[b.atom_a];
    let a1 = atoms[b.atom_b];
    let r0 = a0.flags & ATOM_REPR_MASK;
    let r1 = a1.flags & ATOM_REPR_MASK;
    if !draws_bonds(r0) || !draws_bonds(r1) {
        return out;
    }
    let p0 = atom_view_position(a0);
    let p1 = atom_view_position(a1);
    let axis = p1 - p0;
    let len = length(axis);
    if !(len > 1e-4) {
        return out;
    }
    let u = axis / len;
    let mid = 0.5 * (p0 + p1);
    let radius = min(style_bond_radius(r0, length(mid)), style_bond_radius(r1, length(mid)));

    // Which cylinder of the bond this is, its radius and sideways offset.
    let kind = b.kind & 0xffu;
    var count = 1u;
    if kind == BOND_DOUBLE || kind == BOND_AROMATIC {
        count = 2u;
    } else if kind == BOND_TRIPLE {
        count = 3u;
    }
    if cylinder >= count {
        return out;
    }
    var rs = radius;
    var offset = 0.0;
    var dash = 0.0;
    if count == 2u {
        rs = DOUBLE_RADIUS * radius;
        offset = select(-1.0, 1.0, cylinder == 0u) * DOUBLE_OFFSET * radius;
        if kind == BOND_AROMATIC && cylinder == 1u {
            dash = AROMATIC_DASH;
        }
    } else if count == 3u {
        rs = TRIPLE_RADIUS * radius;
        offset = f32(cylinder == 1u) * TRIPLE_OFFSET * radius - f32(cylinder == 2u) * TRIPLE_OFFSET * radius;
    }
    var side = cross(u, mid);
    if length(side) < 1e-6 * length(mid) {
        side = perpendicular(u);
    }
    side = normalize(side);
    let q0 = p0 + side * offset;
    let q1 = p1 + side * offset;

    let p = cylinder_quad(q0, q1, rs, vi);
    out.clip = frame.proj * vec4<f32>(p, 1.0);
    out.ray = p;
    out.start = vec4<f32>(q0, rs);
    out.end = vec4<f32>(q1, dash);
    if (b.color >> 24u) != 0u {
        out.color_a = unpack_color(b.color);
        out.color_b = out.color_a;
    } else {
        out.color_a = unpack_color(a0.color);
        out.color_b = unpack_color(a1.color);
    }
    out.ids = vec4<u32>(a0.pick_id, a1.pick_id, a0.flags, a1.flags);
    return out;
}

@vertex
fn vs_bond(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> BondVarying {
    return bond_vertex(ii, 0u, vi);
}

@vertex
fn vs_bond_extra(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> BondVarying {
    let e = bond_extras[ii];
    return bond_vertex(e >> 2u, e & 3u, vi);
}

// Level of detail on: the bonds and extra cylinders the cull pass kept (lists.wgsl).
@vertex
fn vs_bond_listed(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> BondVarying {
    return bond_vertex(bond_list[ii], 0u, vi);
}

@vertex
fn vs_bond_extra_listed(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> BondVarying {
    let e = extra_list[ii];
    return bond_vertex(e >> 2u, e & 3u, vi);
}

// Dashed cylinders skip every other `period` Å.
fn in_gap(along: f32, len: f32, period: f32) -> bool {
    return period > 0.0 && fract(along * len / period) > 0.5;
}

@fragment
fn fs_bond(in: BondVarying) -> ColorOut {
    let hit = cylinder_hit(normalize(in.ray), in.start.xyz, in.end.xyz, in.start.w);
    if hit.coverage <= 0.0 || in_gap(hit.along, length(in.end.xyz - in.start.xyz), in.end.w) {
        discard;
    }
    let first = hit.along < 0.5;
    let base = select(in.color_b, in.color_a, first);
    let flags = select(in.ids.w, in.ids.z, first);
    var out: ColorOut;
    out.color = vec4<f32>(shade(base.rgb, hit.normal, hit.point, flags), hit.coverage);
    out.depth = view_depth(hit.point);
    return out;
}

@fragment
fn fs_bond_pick(in: BondVarying) -> PickOut {
    let hit = cylinder_hit(normalize(in.ray), in.start.xyz, in.end.xyz, in.start.w);
    if hit.coverage < 0.5 || in_gap(hit.along, length(in.end.xyz - in.start.xyz), in.end.w) {
        discard;
    }
    var out: PickOut;
    out.id = select(in.ids.y, in.ids.x, hit.along < 0.5);
    out.depth = view_depth(hit.point);
    return out;
}

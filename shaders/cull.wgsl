// The cull pass of level of detail: compute shaders that test every atom, bond and extra bond
// cylinder against the view frustum and its size on screen, and append the survivors to the
// draw lists (lists.wgsl) with the instance counts of four indirect draws. Composed after
// instances.wgsl and frame.wgsl; it reads the same atom buffer as the draws, so a position
// write is culled correctly on the next frame without any CPU work.
//
// - Atoms outside the frustum, hidden or with an empty radius are dropped. Atoms whose radius
//   projects to fewer than frame.lod.y pixels become points (one vertex, one pixel); the rest
//   are impostors. Stick atoms (joints of their bonds) become points under frame.lod.z pixels,
//   where their bonds are skipped; wire joints never do.
// - Bonds outside the frustum are dropped, and so are bonds whose radius projects to fewer than
//   frame.lod.z pixels (wire bonds: whose length projects to less than one pixel): at that size
//   the atoms at their ends already cover them.
//
// Counts are gathered per workgroup (workgroup atomics), then one global atomic add per
// workgroup and class reserves a run of the list: the global counters see one add per 256
// items, not one per item.

// Mirror of wgpu's `DrawIndirectArgs` (16 bytes): what `draw_indirect` reads.
struct DrawArgs {
    vertex_count: u32,
    instance_count: atomic<u32>,
    first_vertex: u32,
    first_instance: u32,
}

// Indices into `draws` (mirror of `DRAW_*` in viewer/src/render/scene.rs).
const DRAW_ATOMS: u32 = 0u;
const DRAW_POINTS: u32 = 1u;
const DRAW_BONDS: u32 = 2u;
const DRAW_EXTRAS: u32 = 3u;

@group(1) @binding(0) var<storage, read_write> draws: array<DrawArgs, 4>;
@group(1) @binding(1) var<storage, read_write> atom_list_out: array<u32>;
@group(1) @binding(2) var<storage, read_write> bond_list_out: array<u32>;
@group(1) @binding(3) var<storage, read_write> extra_list_out: array<u32>;

const CULL_GROUP: u32 = 256u;
// Classes of a culled item: the two lists, or dropped.
const CLASS_FIRST: u32 = 0u;
const CLASS_SECOND: u32 = 1u;
const CLASS_NONE: u32 = 2u;

var<workgroup> group_count: array<atomic<u32>, 2>;
var<workgroup> group_base: array<u32, 2>;

// Item of this invocation: dispatches are 2D when there are more than 65535 workgroups.
fn item_index(wid: vec3<u32>, lid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wid.y * groups.x + wid.x) * CULL_GROUP + lid.x;
}

// Whether a view-space sphere reaches into the view frustum (the far plane is fitted to the
// scene and not tested).
fn in_frustum(c: vec3<f32>, r: f32) -> bool {
    let near = frame.proj[3][2] / frame.proj[2][2];
    if -c.z + r < near {
        return false;
    }
    let px = frame.proj[0][0];
    let py = frame.proj[1][1];
    // Inside the side planes: |x|·px < −z (and the same for y), moved out by r.
    return abs(c.x) * px + c.z <= r * sqrt(px * px + 1.0) && abs(c.y) * py + c.z <= r * sqrt(py * py + 1.0);
}

// Clears this workgroup's counters. Every invocation of the workgroup calls it (barrier).
fn start_group(lid: vec3<u32>) {
    if lid.x == 0u {
        atomicStore(&group_count[0], 0u);
        atomicStore(&group_count[1], 0u);
    }
    workgroupBarrier();
}

// Once every invocation has counted itself in its class (`group_count`), reserves the
// workgroup's run of each class in the global counts of draws `first_draw` and `second_draw`
// (`group_base`). Every invocation of the workgroup calls it (barriers).
fn reserve_group_runs(lid: vec3<u32>, first_draw: u32, second_draw: u32) {
    workgroupBarrier();
    if lid.x == 0u {
        group_base[0] = atomicAdd(&draws[first_draw].instance_count, atomicLoad(&group_count[0]));
        group_base[1] = atomicAdd(&draws[second_draw].instance_count, atomicLoad(&group_count[1]));
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn cull_atoms(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    start_group(lid);
    let i = item_index(wid, lid, groups);
    var kind = CLASS_NONE;
    var slot = 0u;
    if i < arrayLength(&atoms) {
        let a = atoms[i];
        let c = atom_view_position(a);
        let d = length(c);
        let r = atom_radius(a, d);
        if (a.flags & ATOM_REPR_MASK) != REPR_HIDDEN && r > 0.0 && in_frustum(c, r) {
            // Stick and wire atoms are the joints of their bonds: they become points only when
            // those bonds are skipped (sticks), or never (wire lines keep their least pixel
            // width), else the bonds would narrow at every joint.
            let repr = a.flags & ATOM_REPR_MASK;
            let limit = select(frame.lod.y, frame.lod.z, repr == REPR_STICKS);
            kind = select(CLASS_FIRST, CLASS_SECOND, repr != REPR_WIRE && d > r && r < limit * pixel_size(d));
            slot = atomicAdd(&group_count[kind], 1u);
        }
    }
    reserve_group_runs(lid, DRAW_ATOMS, DRAW_POINTS);
    if kind == CLASS_FIRST {
        atom_list_out[group_base[0] + slot] = i;
    } else if kind == CLASS_SECOND {
        atom_list_out[arrayLength(&atom_list_out) - 1u - (group_base[1] + slot)] = i;
    }
}

// Whether bond `b` is drawn at this level of detail.
fn bond_visible(b: BondInstance) -> bool {
    let a0 = atoms[b.atom_a];
    let a1 = atoms[b.atom_b];
    let r0 = a0.flags & ATOM_REPR_MASK;
    let r1 = a1.flags & ATOM_REPR_MASK;
    if !draws_bonds(r0) || !draws_bonds(r1) {
        return false;
    }
    let p0 = atom_view_position(a0);
    let p1 = atom_view_position(a1);
    let mid = 0.5 * (p0 + p1);
    let half = 0.5 * length(p1 - p0);
    let d = length(mid);
    let radius = min(style_bond_radius(r0, d), style_bond_radius(r1, d));
    // Multiple bonds reach 2.1 radii off the axis.
    if !in_frustum(mid, half + 2.1 * radius) {
        return false;
    }
    let pixel = pixel_size(max(d, 1e-6));
    if r0 == REPR_WIRE || r1 == REPR_WIRE {
        return 2.0 * half >= pixel;
    }
    return radius >= frame.lod.z * pixel;
}

@compute @workgroup_size(256)
fn cull_bonds(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    start_group(lid);
    let i = item_index(wid, lid, groups);
    var keep = false;
    var slot = 0u;
    if i < arrayLength(&bonds) && bond_visible(bonds[i]) {
        keep = true;
        slot = atomicAdd(&group_count[0], 1u);
    }
    reserve_group_runs(lid, DRAW_BONDS, DRAW_BONDS);
    if keep {
        bond_list_out[group_base[0] + slot] = i;
    }
}

@compute @workgroup_size(256)
fn cull_extras(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    start_group(lid);
    let i = item_index(wid, lid, groups);
    var keep = false;
    var slot = 0u;
    if i < arrayLength(&bond_extras) {
        let e = bond_extras[i];
        if bond_visible(bonds[e >> 2u]) {
            keep = true;
            slot = atomicAdd(&group_count[0], 1u);
        }
    }
    reserve_group_runs(lid, DRAW_EXTRAS, DRAW_EXTRAS);
    if keep {
        extra_list_out[group_base[0] + slot] = bond_extras[i];
    }
}

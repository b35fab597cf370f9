// Atoms as ray-cast sphere impostors. Composed after instances.wgsl, frame.wgsl and
// impostors.wgsl.
//
// One instance per AtomInstance, 4 vertices (triangle strip): a square billboard perpendicular
// to the eye ray through the atom's centre, just large enough to cover the sphere's silhouette
// cone plus a pixel. The fragment shader intersects the pixel's ray with the sphere, writes the
// hit's depth (@builtin(frag_depth)) and, near the silhouette, its pixel coverage as alpha
// (alpha-to-coverage anti-aliases impostor edges that MSAA alone cannot, since the billboard,
// not the sphere, is what gets rasterized).

struct SphereVarying {
    @builtin(position) clip: vec4<f32>,
    // Point on the billboard, view space: the ray from the eye through this pixel.
    @location(0) ray: vec3<f32>,
    // xyz: sphere centre (view space); w: radius.
    @location(1) @interpolate(flat) sphere: vec4<f32>,
    // Linear RGB and alpha of the atom.
    @location(2) @interpolate(flat) color: vec4<f32>,
    // x: pick id, y: flags.
    @location(3) @interpolate(flat) ids: vec2<u32>,
}

fn atom_vertex(index: u32, vi: u32) -> SphereVarying {
    var out: SphereVarying;
    let a = atoms[index];
    let repr = a.flags & ATOM_REPR_MASK;
    let c = atom_view_position(a);
    let d = length(c);
    let r = atom_radius(a, d);
    // Hidden atoms, empty radii and spheres around the eye draw nothing.
    if repr == REPR_HIDDEN || !(r > 0.0) || d <= r * 1.0001 {
        out.clip = CULLED;
        return out;
    }
    let p = sphere_billboard(c, r, vi);
    out.clip = frame.proj * vec4<f32>(p, 1.0);
    out.ray = p;
    out.sphere = vec4<f32>(c, r);
    out.color = unpack_color(a.color);
    out.ids = vec2<u32>(a.pick_id, a.flags);
    return out;
}

@vertex
fn vs_atom(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> SphereVarying {
    return atom_vertex(ii, vi);
}

// Level of detail on: the atoms the cull pass kept as impostors (lists.wgsl).
@vertex
fn vs_atom_listed(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> SphereVarying {
    return atom_vertex(atom_list[ii], vi);
}

// Level of detail on: atoms smaller than frame.lod.y pixels, one point each (one vertex, one
// pixel, no ray cast, no frag_depth: early depth testing stays on), at the depth of the
// sphere's front, lit as if facing the eye.
struct PointVarying {
    @builtin(position) clip: vec4<f32>,
    @location(0) @interpolate(flat) color: vec4<f32>,
    // x: pick id.
    @location(1) @interpolate(flat) ids: vec2<u32>,
}

@vertex
fn vs_atom_point(@builtin(instance_index) ii: u32) -> PointVarying {
    var out: PointVarying;
    let a = atoms[atom_list[arrayLength(&atom_list) - 1u - ii]];
    let c = atom_view_position(a);
    let d = length(c);
    let front = c * (1.0 - min(atom_radius(a, d), 0.5 * d) / max(d, 1e-6));
    out.clip = frame.proj * vec4<f32>(front, 1.0);
    out.color = vec4<f32>(shade(unpack_color(a.color).rgb, -c / max(d, 1e-6), front, a.flags), 1.0);
    out.ids = vec2<u32>(a.pick_id, a.flags);
    return out;
}

struct PointColorOut {
    @location(0) color: vec4<f32>,
}

@fragment
fn fs_atom_point(in: PointVarying) -> PointColorOut {
    var out: PointColorOut;
    out.color = in.color;
    return out;
}

struct PointPickOut {
    @location(0) id: u32,
}

@fragment
fn fs_atom_point_pick(in: PointVarying) -> PointPickOut {
    var out: PointPickOut;
    out.id = in.ids.x;
    return out;
}

@fragment
fn fs_atom(in: SphereVarying) -> ColorOut {
    let hit = sphere_hit(normalize(in.ray), in.sphere);
    if hit.coverage <= 0.0 {
        discard;
    }
    var out: ColorOut;
    out.color = vec4<f32>(shade(in.color.rgb, hit.normal, hit.point, in.ids.y), hit.coverage);
    out.depth = view_depth(hit.point);
    return out;
}

@fragment
fn fs_atom_pick(in: SphereVarying) -> PickOut {
    let hit = sphere_hit(normalize(in.ray), in.sphere);
    if hit.coverage < 0.5 {
        discard;
    }
    var out: PickOut;
    out.id = in.ids.x;
    out.depth = view_depth(hit.point);
    return out;
}

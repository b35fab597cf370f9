// Plugin shapes: spheres, lines, meshes and labels. Composed after instances.wgsl, frame.wgsl,
// impostors.wgsl and shapes.wgsl (the engine's shape layouts and anchor words).
//
// Every shape is placed from its anchor word in the vertex shader, reading the atom buffer and
// the transform buffer of group 0, so a position stream (one atom-buffer write) or a complex
// transform moves anchored shapes with no CPU work.
//
// - Spheres (`vs_shape_sphere`): ray-cast impostors like atoms, per-pixel depth.
// - Lines (`vs_shape_line`): ray-cast cylinders of diameter `thickness` Å (world size), never
//   thinner than 2·frame.shapes.y pixels; dashes of `dash_length` Å separated by `dash_gap` Å,
//   measured along the line from its start.
// - Meshes (`vs_mesh`): indexed triangles pulled from the mesh's `mesh_vertices` (group 2),
//   one draw per mesh, the instance index selecting its MeshInfo. Per-vertex or shape colour,
//   lit (Blinn-Phong, two-sided) or unlit, optionally textured; meshes without normals get face
//   normals from screen-space derivatives.
// - Labels (`vs_label`): one quad per glyph, laid out on the CPU (epaint, egui's fonts) at
//   their pixel size, placed at the projected anchor snapped to whole pixels, so text faces
//   the camera and keeps its size in pixels at any zoom. Depth-tested at the anchor moved
//   frame.shapes.x Å towards the eye, blended, no depth write.

// Mirror of `molstream_viewer::render::shapes::MeshInfo` (24 bytes, align 4): per-mesh state,
// indexed by the draw's instance index.
struct MeshInfo {
    // Anchor offset, Å, in the anchor's frame.
    offset: array<f32, 3>,
    // Anchor word (see ANCHOR_ATOM in shapes.wgsl).
    anchor: u32,
    // Shape colour, RGBA8 (used when MESH_SHAPE_COLOR is set).
    color: u32,
    // MESH_* bits.
    flags: u32,
}

// MeshInfo.flags (mirror of MESH_* in viewer/src/render/shapes.rs).
const MESH_UNLIT: u32 = 1u;
const MESH_NORMALS: u32 = 2u;
const MESH_TEXTURED: u32 = 4u;
const MESH_SHAPE_COLOR: u32 = 8u;

// Mirror of `molstream_viewer::render::shapes::LabelGlyph` (56 bytes, align 4): one glyph quad.
struct LabelGlyph {
    // Anchor offset, Å.
    offset: array<f32, 3>,
    // Anchor word.
    anchor: u32,
    // Quad relative to the anchor's pixel, pixels, y down: x0, y0, x1, y1.
    rect: array<f32, 4>,
    // Atlas coordinates (0..1) of the quad's corners: u0, v0, u1, v1.
    uv: array<f32, 4>,
    // RGBA8 text colour.
    color: u32,
    // Picking id of the label.
    pick_id: u32,
}

@group(1) @binding(2) var<storage, read> mesh_infos: array<MeshInfo>;
@group(1) @binding(3) var<storage, read> glyphs: array<LabelGlyph>;
// Glyph coverage (R8), texels = pixels.
@group(1) @binding(4) var glyph_atlas: texture_2d<f32>;
@group(1) @binding(5) var shape_sampler: sampler;
// The mesh's texture (sRGB; 1×1 white when it has none).
@group(2) @binding(1) var mesh_texture: texture_2d<f32>;

fn vec3_of(a: array<f32, 3>) -> vec3<f32> {
    return vec3<f32>(a[0], a[1], a[2]);
}

// The transform an anchor's frame is placed by: its atom's complex transform, or the
// transform it names.
fn anchor_transform(anchor: u32) -> mat4x4<f32> {
    if anchor_is_atom(anchor) {
        return transforms[atoms[anchor_index(anchor)].transform];
    }
    return transforms[anchor_index(anchor)];
}

// Origin of an anchor's frame before its transform: the atom's position, or 0.
fn anchor_origin(anchor: u32) -> vec3<f32> {
    if anchor_is_atom(anchor) {
        return atoms[anchor_index(anchor)].position;
    }
    return vec3<f32>(0.0);
}

// View-space position of the point `offset` (Å, anchor frame) from an anchor.
fn anchor_view(anchor: u32, offset: vec3<f32>) -> vec3<f32> {
    let world = anchor_transform(anchor) * vec4<f32>(anchor_origin(anchor) + offset, 1.0);
    return (frame.view * world).xyz;
}

// Output of fragment stages that keep the rasterized depth.
struct FlatColorOut {
    @location(0) color: vec4<f32>,
}

struct FlatPickOut {
    @location(0) id: u32,
}

// ---- spheres

struct ShapeSphereVarying {
    @builtin(position) clip: vec4<f32>,
    @location(0) ray: vec3<f32>,
    // xyz: centre (view space); w: radius.
    @location(1) @interpolate(flat) sphere: vec4<f32>,
    @location(2) @interpolate(flat) color: vec4<f32>,
    @location(3) @interpolate(flat) pick_id: u32,
}

@vertex
fn vs_shape_sphere(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> ShapeSphereVarying {
    var out: ShapeSphereVarying;
    let s = spheres[ii];
    let c = anchor_view(s.anchor, vec3_of(s.offset));
    let r = s.radius;
    if !(r > 0.0) || length(c) <= r * 1.0001 {
        out.clip = CULLED;
        return out;
    }
    let p = sphere_billboard(c, r, vi);
    out.clip = frame.proj * vec4<f32>(p, 1.0);
    out.ray = p;
    out.sphere = vec4<f32>(c, r);
    out.color = unpack_color(s.color);
    out.pick_id = s.pick_id;
    return out;
}

@fragment
fn fs_shape_sphere(in: ShapeSphereVarying) -> ColorOut {
    let hit = sphere_hit(normalize(in.ray), in.sphere);
    if hit.coverage <= 0.0 {
        discard;
    }
    var out: ColorOut;
    out.color = vec4<f32>(shade(in.color.rgb, hit.normal, hit.point, 0u), hit.coverage * in.color.a);
    out.depth = view_depth(hit.point);
    return out;
}

@fragment
fn fs_shape_sphere_pick(in: ShapeSphereVarying) -> PickOut {
    let hit = sphere_hit(normalize(in.ray), in.sphere);
    if hit.coverage < 0.5 {
        discard;
    }
    var out: PickOut;
    out.id = in.pick_id;
    out.depth = view_depth(hit.point);
    return out;
}

// ---- lines

struct ShapeLineVarying {
    @builtin(position) clip: vec4<f32>,
    @location(0) ray: vec3<f32>,
    // xyz: start (view space); w: radius.
    @location(1) @interpolate(flat) start: vec4<f32>,
    // xyz: end (view space); w: length, Å.
    @location(2) @interpolate(flat) end: vec4<f32>,
    // Dash length and gap, Å.
    @location(3) @interpolate(flat) dash: vec2<f32>,
    @location(4) @interpolate(flat) color: vec4<f32>,
    @location(5) @interpolate(flat) pick_id: u32,
}

@vertex
fn vs_shape_line(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> ShapeLineVarying {
    var out: ShapeLineVarying;
    out.clip = CULLED;
    let l = lines[ii];
    let q0 = anchor_view(l.start_anchor, vec3_of(l.start));
    let q1 = anchor_view(l.end_anchor, vec3_of(l.end));
    let len = length(q1 - q0);
    if !(len > 1e-4) {
        return out;
    }
    let r = max(0.5 * l.thickness, frame.shapes.y * pixel_size(length(0.5 * (q0 + q1))));
    if !(r > 0.0) {
        return out;
    }
    let p = cylinder_quad(q0, q1, r, vi);
    out.clip = frame.proj * vec4<f32>(p, 1.0);
    out.ray = p;
    out.start = vec4<f32>(q0, r);
    out.end = vec4<f32>(q1, len);
    out.dash = vec2<f32>(l.dash_length, l.dash_gap);
    out.color = unpack_color(l.color);
    out.pick_id = l.pick_id;
    return out;
}

// Whether the point `s` Å from a line's start falls in a gap between dashes.
fn in_dash_gap(s: f32, dash: vec2<f32>) -> bool {
    let period = dash.x + dash.y;
    if !(dash.x > 0.0) || !(dash.y > 0.0) {
        return false;
    }
    return s - floor(s / period) * period > dash.x;
}

@fragment
fn fs_shape_line(in: ShapeLineVarying) -> ColorOut {
    let hit = cylinder_hit(normalize(in.ray), in.start.xyz, in.end.xyz, in.start.w);
    if hit.coverage <= 0.0 || in_dash_gap(hit.along * in.end.w, in.dash) {
        discard;
    }
    var out: ColorOut;
    out.color = vec4<f32>(shade(in.color.rgb, hit.normal, hit.point, 0u), hit.coverage * in.color.a);
    out.depth = view_depth(hit.point);
    return out;
}

@fragment
fn fs_shape_line_pick(in: ShapeLineVarying) -> PickOut {
    let hit = cylinder_hit(normalize(in.ray), in.start.xyz, in.end.xyz, in.start.w);
    if hit.coverage < 0.5 || in_dash_gap(hit.along * in.end.w, in.dash) {
        discard;
    }
    var out: PickOut;
    out.id = in.pick_id;
    out.depth = view_depth(hit.point);
    return out;
}

// ---- meshes

struct MeshVarying {
    @builtin(position) clip: vec4<f32>,
    @location(0) view_pos: vec3<f32>,
    @location(1) normal: vec3<f32>,
    @location(2) uv: vec2<f32>,
    @location(3) color: vec4<f32>,
    // x: pick id, y: MESH_* flags.
    @location(4) @interpolate(flat) ids: vec2<u32>,
}

@vertex
fn vs_mesh(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> MeshVarying {
    var out: MeshVarying;
    let info = mesh_infos[ii];
    let v = mesh_vertices[vi];
    let m = anchor_transform(info.anchor);
    let world = m * vec4<f32>(anchor_origin(info.anchor) + vec3_of(info.offset) + v.position, 1.0);
    let p = (frame.view * world).xyz;
    out.clip = frame.proj * vec4<f32>(p, 1.0);
    out.view_pos = p;
    out.normal = (frame.view * (m * vec4<f32>(oct_decode(v.normal), 0.0))).xyz;
    out.uv = v.uv;
    out.color = unpack_color(select(v.color, info.color, (info.flags & MESH_SHAPE_COLOR) != 0u));
    out.ids = vec2<u32>(v.pick_id, info.flags);
    return out;
}

@fragment
fn fs_mesh(in: MeshVarying) -> FlatColorOut {
    // Derivatives and texture sampling first, in uniform control flow.
    let face = cross(dpdx(in.view_pos), dpdy(in.view_pos));
    let texel = textureSample(mesh_texture, shape_sampler, in.uv);
    let flags = in.ids.y;
    var n = select(vec3<f32>(0.0, 0.0, 1.0), normalize(face), length(face) > 1e-20);
    if (flags & MESH_NORMALS) != 0u && length(in.normal) > 1e-6 {
        n = normalize(in.normal);
    }
    // Two-sided: light the side that faces the eye.
    if dot(n, in.view_pos) > 0.0 {
        n = -n;
    }
    var base = in.color;
    if (flags & MESH_TEXTURED) != 0u {
        base = base * texel;
    }
    var out: FlatColorOut;
    if (flags & MESH_UNLIT) != 0u {
        out.color = vec4<f32>(apply_fog(base.rgb, in.view_pos), base.a);
    } else {
        out.color = vec4<f32>(shade(base.rgb, n, in.view_pos, 0u), base.a);
    }
    return out;
}

@fragment
fn fs_mesh_pick(in: MeshVarying) -> FlatPickOut {
    var out: FlatPickOut;
    out.id = in.ids.x;
    return out;
}

// ---- labels

struct LabelVarying {
    @builtin(position) clip: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) @interpolate(flat) color: vec4<f32>,
    @location(2) @interpolate(flat) pick_id: u32,
}

@vertex
fn vs_label(@builtin(vertex_index) vi: u32, @builtin(instance_index) ii: u32) -> LabelVarying {
    var out: LabelVarying;
    out.clip = CULLED;
    let g = glyphs[ii];
    let c = anchor_view(g.anchor, vec3_of(g.offset));
    let d = length(c);
    let near = frame.proj[3][2] / frame.proj[2][2];
    // Towards the eye by the lift, but never past the near plane.
    let lifted = c * (1.0 - min(frame.shapes.x, 0.5 * d) / max(d, 1e-6));
    if -lifted.z <= near {
        return out;
    }
    let anchor_clip = frame.proj * vec4<f32>(lifted, 1.0);
    // The anchor's pixel (origin bottom-left, y up), snapped so texels land on pixels.
    let pixel = floor((anchor_clip.xy / anchor_clip.w * 0.5 + 0.5) * frame.viewport.xy + 0.5);
    let right = (vi & 1u) != 0u;
    let top = (vi & 2u) != 0u;
    let corner = vec2<f32>(select(g.rect[0], g.rect[2], right), -select(g.rect[3], g.rect[1], top));
    let ndc = (pixel + corner) * frame.viewport.zw * 2.0 - 1.0;
    out.clip = vec4<f32>(ndc * anchor_clip.w, anchor_clip.z, anchor_clip.w);
    out.uv = vec2<f32>(select(g.uv[0], g.uv[2], right), select(g.uv[3], g.uv[1], top));
    out.color = unpack_color(g.color);
    out.pick_id = g.pick_id;
    return out;
}

@fragment
fn fs_label(in: LabelVarying) -> FlatColorOut {
    let coverage = textureSampleLevel(glyph_atlas, shape_sampler, in.uv, 0.0).r;
    let a = coverage * in.color.a;
    if a <= 0.0 {
        discard;
    }
    var out: FlatColorOut;
    // Premultiplied alpha.
    out.color = vec4<f32>(in.color.rgb * a, a);
    return out;
}

@fragment
fn fs_label_pick(in: LabelVarying) -> FlatPickOut {
    let coverage = textureSampleLevel(glyph_atlas, shape_sampler, in.uv, 0.0).r;
    if coverage < 0.5 {
        discard;
    }
    var out: FlatPickOut;
    out.id = in.pick_id;
    return out;
}

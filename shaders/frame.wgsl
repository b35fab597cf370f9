// Per-frame uniforms and the shading shared by the atom and bond impostors.
//
// Composed after instances.wgsl and before the entry-point files (see MODULES in
// viewer/src/render/shaders.rs). Bind group 0 of every scene pipeline: 0 atoms, 1 bonds
// (instances.wgsl), 2 frame, 3 transforms, 4 bond extras.

// Mirror of `molstream_viewer::render::uniforms::FrameUniforms` (viewer/src/render/uniforms.rs,
// 272 bytes); viewer/tests/wgsl.rs compares sizes and offsets with naga.
struct Frame {
    // World → view (right-handed, the camera looks down -z).
    view: mat4x4<f32>,
    // View → clip, depth 0 (near) .. 1 (far).
    proj: mat4x4<f32>,
    // Width and height in pixels, then their reciprocals.
    viewport: vec4<f32>,
    // xyz: unit direction towards the key light in view space; w: ambient term.
    light: vec4<f32>,
    // rgb: background colour, linear; w: unused.
    background: vec4<f32>,
    // x, y: view distances where fog starts and ends; z: fog strength 0..1; w: size of one
    // pixel at distance 1 in view units (2·tan(fov/2)/height).
    fog: vec4<f32>,
    // Bond radius of ball-and-stick (x), sticks (y), wire (z), Å; w: least half-width of wire
    // lines in pixels.
    bond_radius: vec4<f32>,
    // rgb: selection colour, linear; w: how much of it a selected atom takes.
    selection: vec4<f32>,
    // x: specular strength, y: shininess, z: edge darkening strength, w: edge exponent.
    material: vec4<f32>,
    // x: how far labels are drawn in front of their anchor towards the eye, Å; y: least
    // half-width of shape lines, pixels; z, w: unused.
    shapes: vec4<f32>,
    // x: 1 when culling and level of detail are on; y: projected radius (pixels) under which an
    // atom is drawn as a point; z: projected bond radius (pixels) under which a bond is skipped;
    // w: unused.
    lod: vec4<f32>,
}

@group(0) @binding(2) var<uniform> frame: Frame;
// One rigid transform per complex (complex frame → world); AtomInstance.transform indexes it.
@group(0) @binding(3) var<storage, read> transforms: array<mat4x4<f32>>;
// Extra cylinders of multiple bonds: bond index << 2 | cylinder (1 or 2). Mirror of
// `scene::bond_extras`.
@group(0) @binding(4) var<storage, read> bond_extras: array<u32>;

// A vertex position that produces no fragment (outside the clip volume, zero area).
const CULLED: vec4<f32> = vec4<f32>(0.0, 0.0, -2.0, 1.0);

// Centre of an atom in view space.
fn atom_view_position(a: AtomInstance) -> vec3<f32> {
    return (frame.view * (transforms[a.transform] * vec4<f32>(a.position, 1.0))).xyz;
}

// Size of one pixel, in view units, at distance `d` from the eye.
fn pixel_size(d: f32) -> f32 {
    return frame.fog.w * d;
}

// Radius of a wire line at distance `d`: the style's radius, or the least pixel width.
fn wire_radius(d: f32) -> f32 {
    return max(frame.bond_radius.z, frame.bond_radius.w * pixel_size(d));
}

// Whether a representation draws bonds.
fn draws_bonds(repr: u32) -> bool {
    return repr == REPR_BALL_AND_STICK || repr == REPR_STICKS || repr == REPR_WIRE;
}

// Bond radius of a representation at distance `d` from the eye.
fn style_bond_radius(repr: u32, d: f32) -> f32 {
    if repr == REPR_BALL_AND_STICK {
        return frame.bond_radius.x;
    }
    if repr == REPR_STICKS {
        return frame.bond_radius.y;
    }
    return wire_radius(d);
}

// Drawn radius of an atom at distance `d` from the eye: wire atoms keep the least line width.
fn atom_radius(a: AtomInstance, d: f32) -> f32 {
    if (a.flags & ATOM_REPR_MASK) == REPR_WIRE {
        return max(a.radius, wire_radius(d));
    }
    return a.radius;
}

// Depth-buffer value of a view-space point.
fn view_depth(p: vec3<f32>) -> f32 {
    let clip = frame.proj * vec4<f32>(p, 1.0);
    return clip.z / clip.w;
}

// sRGB-encoded RGBA8 (red in the lowest byte) to linear RGB and alpha.
fn unpack_color(c: u32) -> vec4<f32> {
    let s = unpack4x8unorm(c);
    return vec4<f32>(pow(s.rgb, vec3<f32>(2.2)), s.a);
}

// Blinn-Phong with a key light, ambient term, edge darkening, selection and hover tints, and
// depth fog towards the background. `p` is the view-space surface point, `n` its unit normal.
fn shade(base: vec3<f32>, n: vec3<f32>, p: vec3<f32>, flags: u32) -> vec3<f32> {
    let v = normalize(-p);
    let l = frame.light.xyz;
    let h = normalize(l + v);
    let ndl = max(dot(n, l), 0.0);
    let ambient = frame.light.w;
    var spec = 0.0;
    if ndl > 0.0 {
        spec = frame.material.x * pow(max(dot(n, h), 0.0), frame.material.y);
    }
    var albedo = base;
    let rim = 1.0 - max(dot(n, v), 0.0);
    if (flags & ATOM_SELECTED) != 0u {
        albedo = mix(albedo, frame.selection.rgb, frame.selection.w);
    }
    if (flags & ATOM_HIGHLIGHTED) != 0u {
        albedo = min(albedo * 1.3 + vec3<f32>(0.08), vec3<f32>(1.0));
    }
    var c = albedo * (ambient + (1.0 - ambient) * ndl) + vec3<f32>(spec);
    c = c * (1.0 - frame.material.z * pow(rim, frame.material.w));
    if (flags & ATOM_SELECTED) != 0u {
        // A glowing rim keeps the selection visible on dark and on selection-coloured atoms.
        c = c + frame.selection.rgb * pow(rim, 2.0) * 0.8;
    }
    return apply_fog(c, p);
}

// Depth fog towards the background at view-space point `p`.
fn apply_fog(c: vec3<f32>, p: vec3<f32>) -> vec3<f32> {
    let f = clamp((length(p) - frame.fog.x) / max(frame.fog.y - frame.fog.x, 1e-3), 0.0, 1.0) * frame.fog.z;
    return mix(c, frame.background.rgb, f);
}

// Coverage of a pixel by a silhouette, from the distance (view units) of the pixel's ray
// outside the surface: 1 inside, 0 one pixel out. Drives alpha-to-coverage under MSAA.
fn edge_coverage(outside: f32, pixel: f32) -> f32 {
    return clamp(0.5 - outside / pixel, 0.0, 1.0);
}

// Main-pass output: colour (alpha is coverage) and the impostor's true depth.
struct ColorOut {
    @location(0) color: vec4<f32>,
    @builtin(frag_depth) depth: f32,
}

// Pick-pass output: the pick id of the surface (0 is background) and its depth.
struct PickOut {
    @location(0) id: u32,
    @builtin(frag_depth) depth: f32,
}

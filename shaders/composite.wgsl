// Composite pass: the resolved scene colour with depth-discontinuity outlines, written to the
// output format (a surface or the headless RGBA8 texture). Standalone module.
//
// Outlines: a pixel whose neighbours (at `width` pixels) lie much farther away is on the
// near side of a silhouette and is darkened, unless it is thin (see below). This outlines the structure against the
// background and every atom or bond in front of another, which makes overlapping spheres read
// apart. The depth comes from sample 0 of the multisampled depth buffer.

// Mirror of `molstream_viewer::render::uniforms::PostUniforms` (viewer/src/render/uniforms.rs,
// 48 bytes); viewer/tests/wgsl.rs compares sizes and offsets with naga.
struct Post {
    // x: near, y: far (view distances of depth 0 and 1); z: outline strength 0..1;
    // w: depth step (view units) at which the outline is full.
    depth: vec4<f32>,
    // x, y: fog start and end; z: fog strength; w: outline width in pixels.
    fog: vec4<f32>,
    // x: 1 when the output format is not sRGB and the shader must encode; yzw: unused.
    output: vec4<f32>,
}

@group(0) @binding(0) var scene_color: texture_2d<f32>;
@group(0) @binding(1) var scene_depth: texture_depth_multisampled_2d;
@group(0) @binding(2) var<uniform> post: Post;

struct FullscreenVarying {
    @builtin(position) clip: vec4<f32>,
}

// One triangle that covers the viewport.
@vertex
fn vs_fullscreen(@builtin(vertex_index) vi: u32) -> FullscreenVarying {
    var out: FullscreenVarying;
    let x = f32((vi << 1u) & 2u);
    let y = f32(vi & 2u);
    out.clip = vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
    return out;
}

// View distance of a depth-buffer value (0..1 perspective depth).
fn linear_depth(z: f32) -> f32 {
    let n = post.depth.x;
    let f = post.depth.y;
    return n * f / (f - z * (f - n));
}

fn depth_at(p: vec2<i32>, size: vec2<i32>) -> f32 {
    let q = clamp(p, vec2<i32>(0), size - vec2<i32>(1));
    return linear_depth(textureLoad(scene_depth, q, 0));
}

fn srgb_encode(c: vec3<f32>) -> vec3<f32> {
    let lo = c * 12.92;
    let hi = 1.055 * pow(c, vec3<f32>(1.0 / 2.4)) - 0.055;
    return select(hi, lo, c <= vec3<f32>(0.0031308));
}

@fragment
fn fs_composite(in: FullscreenVarying) -> @location(0) vec4<f32> {
    let p = vec2<i32>(in.clip.xy);
    let size = vec2<i32>(textureDimensions(scene_color));
    var color = textureLoad(scene_color, p, 0).rgb;
    let d0 = depth_at(p, size);
    let k = i32(max(post.fog.w, 1.0));
    // Depth step to the farther neighbour along each axis. A pixel whose neighbours on both
    // sides lie behind it is a feature at most one outline wide (a thin line seen from afar):
    // it keeps its colour instead of turning into outline.
    let l = depth_at(p - vec2<i32>(k, 0), size) - d0;
    let r = depth_at(p + vec2<i32>(k, 0), size) - d0;
    let u = depth_at(p - vec2<i32>(0, k), size) - d0;
    let d = depth_at(p + vec2<i32>(0, k), size) - d0;
    let thin = smoothstep(0.25, 1.0, max(min(l, r), min(u, d)) / post.depth.w);
    let step = max(max(l, r), max(u, d));
    // Outlines fade with the fog, so depth cueing still reads.
    let fog = clamp((d0 - post.fog.x) / max(post.fog.y - post.fog.x, 1e-3), 0.0, 1.0) * post.fog.z;
    let edge = smoothstep(0.25, 1.0, step / post.depth.w) * (1.0 - thin) * post.depth.z * (1.0 - fog);
    color = color * (1.0 - edge);
    if post.output.x > 0.5 {
        color = srgb_encode(clamp(color, vec3<f32>(0.0), vec3<f32>(1.0)));
    }
    return vec4<f32>(color, 1.0);
}

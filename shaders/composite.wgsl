// Ambient occlusion and composite passes. Standalone module.
//
// `fs_ao` (ambient occlusion, half resolution): scalable ambient obscurance (McGuire et al.,
// 2012) on the depth buffer. Each pixel reconstructs its view-space point and normal from the
// depth, takes AO_SAMPLES points on a spiral of `radius` Å projected to pixels (rotated per
// pixel by interleaved gradient noise), and sums how much each lies above its tangent plane
// within the radius. It writes the obscurance (1 = open) and the view distance, for the
// depth-aware blur of the composite pass.
//
// `fs_composite`: the resolved scene colour, darkened by the blurred ambient occlusion and by
// depth-discontinuity outlines, written to the output format (a surface or the headless RGBA8
// texture).
//
// Outlines: a pixel whose neighbours (at `width` pixels) lie much farther away is on the
// near side of a silhouette and is darkened, unless it is thin (see below). This outlines the structure against the
// background and every atom or bond in front of another, which makes overlapping spheres read
// apart. The depth comes from sample 0 of the multisampled depth buffer.

// Mirror of `molstream_viewer::render::uniforms::PostUniforms` (viewer/src/render/uniforms.rs,
// 64 bytes); viewer/tests/wgsl.rs compares sizes and offsets with naga.
struct Post {
    // x: near, y: far (view distances of depth 0 and 1); z: outline strength 0..1;
    // w: depth step (view units) at which the outline is full.
    depth: vec4<f32>,
    // x, y: fog start and end; z: fog strength; w: outline width in pixels.
    fog: vec4<f32>,
    // x: 1 when the output format is not sRGB and the shader must encode; y, z: output pixel of
    // the frame's top-left corner (the composite is drawn into a viewport there); w: unused.
    output: vec4<f32>,
    // x: ambient occlusion strength 0..1 (0: off, the AO pass is skipped); y: its radius, Å;
    // z, w: proj[0][0] and proj[1][1] (view-space reconstruction).
    ao: vec4<f32>,
}

@group(0) @binding(0) var scene_color: texture_2d<f32>;
@group(0) @binding(1) var scene_depth: texture_depth_multisampled_2d;
@group(0) @binding(2) var<uniform> post: Post;
// Half-resolution ambient occlusion: r obscurance (1 = open), g view distance.
@group(0) @binding(3) var ao_texture: texture_2d<f32>;

// Samples per pixel of the AO pass, and turns of their spiral.
const AO_SAMPLES: i32 = 12;
const AO_TURNS: f32 = 7.0;
// Gain of the obscurance sum.
const AO_INTENSITY: f32 = 3.0;

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

// View-space point of full-resolution pixel `p` whose depth-buffer value is `z`.
fn view_point(p: vec2<i32>, z: f32, size: vec2<i32>) -> vec3<f32> {
    let uv = (vec2<f32>(p) + 0.5) / vec2<f32>(size);
    let ndc = vec2<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0);
    let d = linear_depth(z);
    return vec3<f32>(ndc.x * d / post.ao.z, ndc.y * d / post.ao.w, -d);
}

struct AoOut {
    @location(0) ao: vec4<f32>,
}

@fragment
fn fs_ao(in: FullscreenVarying) -> AoOut {
    var out: AoOut;
    let size = vec2<i32>(textureDimensions(scene_depth));
    let p = min(vec2<i32>(in.clip.xy) * 2, size - vec2<i32>(1));
    let z0 = textureLoad(scene_depth, p, 0);
    if z0 >= 1.0 {
        out.ao = vec4<f32>(1.0, post.depth.y, 0.0, 1.0);
        return out;
    }
    let c = view_point(p, z0, size);
    // Normal from the depth: on each axis, the difference to the nearer neighbour (so edges
    // do not bend it), facing the eye.
    let l = view_point(p - vec2<i32>(2, 0), textureLoad(scene_depth, max(p - vec2<i32>(2, 0), vec2<i32>(0)), 0), size);
    let r = view_point(p + vec2<i32>(2, 0), textureLoad(scene_depth, min(p + vec2<i32>(2, 0), size - 1), 0), size);
    let u = view_point(p - vec2<i32>(0, 2), textureLoad(scene_depth, max(p - vec2<i32>(0, 2), vec2<i32>(0)), 0), size);
    let d = view_point(p + vec2<i32>(0, 2), textureLoad(scene_depth, min(p + vec2<i32>(0, 2), size - 1), 0), size);
    let dx = select(c - l, r - c, abs(r.z - c.z) < abs(c.z - l.z));
    let dy = select(c - u, d - c, abs(d.z - c.z) < abs(c.z - u.z));
    var n = normalize(cross(dx, dy));
    if dot(n, c) > 0.0 {
        n = -n;
    }
    let radius = post.ao.y;
    // The radius in pixels at this depth, bounded so that near surfaces stay cheap.
    let radius_px = min(radius * post.ao.w * 0.5 * f32(size.y) / -c.z, 96.0);
    out.ao = vec4<f32>(1.0, -c.z, 0.0, 1.0);
    if radius_px < 1.0 {
        return out;
    }
    let noise = fract(52.9829189 * fract(dot(vec2<f32>(p), vec2<f32>(0.06711056, 0.00583715)))) * 6.2831853;
    let r2 = radius * radius;
    let bias = 0.02 * radius;
    var sum = 0.0;
    for (var i = 0; i < AO_SAMPLES; i++) {
        let a = (f32(i) + 0.5) / f32(AO_SAMPLES);
        let angle = a * AO_TURNS * 6.2831853 + noise;
        let q = clamp(p + vec2<i32>(round(vec2<f32>(cos(angle), sin(angle)) * a * radius_px)), vec2<i32>(0), size - 1);
        let zq = textureLoad(scene_depth, q, 0);
        if zq >= 1.0 {
            continue;
        }
        let v = view_point(q, zq, size) - c;
        let vv = dot(v, v);
        let f = max(r2 - vv, 0.0);
        sum += f * f * f * max(dot(v, n) - bias, 0.0) / (vv + 0.01 * r2);
    }
    // Normalised so that a sample fully occluding at the centre counts ≈ 1.
    let obscurance = AO_INTENSITY * sum * radius / (r2 * r2 * r2) * (4.0 / f32(AO_SAMPLES));
    out.ao = vec4<f32>(clamp(1.0 - obscurance, 0.0, 1.0), -c.z, 0.0, 1.0);
    return out;
}

// The ambient occlusion at full-resolution pixel `p` (view distance `d0`): a 3×3 blur of the
// half-resolution texels around it, weighted by how close their view distance is.
fn blurred_ao(p: vec2<i32>, d0: f32) -> f32 {
    let size = vec2<i32>(textureDimensions(ao_texture));
    let c = p / 2;
    let tolerance = max(0.25 * post.ao.y, 0.05);
    var sum = 0.0;
    var weight = 0.0;
    for (var y = -1; y <= 1; y++) {
        for (var x = -1; x <= 1; x++) {
            let t = textureLoad(ao_texture, clamp(c + vec2<i32>(x, y), vec2<i32>(0), size - 1), 0);
            let w = max(1.0 - abs(t.g - d0) / tolerance, 0.0) * select(1.0, 2.0, x == 0 && y == 0);
            sum += w * t.r;
            weight += w;
        }
    }
    return select(1.0, sum / weight, weight > 1e-4);
}

@fragment
fn fs_composite(in: FullscreenVarying) -> @location(0) vec4<f32> {
    let p = vec2<i32>(in.clip.xy - post.output.yz);
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
    if post.ao.x > 0.0 && textureLoad(scene_depth, p, 0) < 1.0 {
        color = color * (1.0 - post.ao.x * (1.0 - blurred_ao(p, d0)) * (1.0 - fog));
    }
    color = color * (1.0 - edge);
    if post.output.x > 0.5 {
        color = srgb_encode(clamp(color, vec3<f32>(0.0), vec3<f32>(1.0)));
    }
    return vec4<f32>(color, 1.0);
}

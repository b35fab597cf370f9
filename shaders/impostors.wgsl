// Ray-cast impostor geometry shared by the atom and bond impostors and by the sphere and line
// shapes. Composed after instances.wgsl and frame.wgsl (see MODULES in
// viewer/src/render/shaders.rs).
//
// - Spheres: a square billboard perpendicular to the eye ray through the centre, just large
//   enough to cover the silhouette cone plus 1.5 pixels (`sphere_billboard`); the fragment shader
//   intersects the pixel's ray with the sphere (`sphere_hit`).
// - Cylinders: one screen-space quad bounding the projection of the cylinder's box, oriented
//   along the projected axis (`cylinder_quad`); `cylinder_hit` intersects a capped cylinder.
//
// Both return view-space points on the rasterized quad: the rays from the eye through the
// pixels it covers.

const QUAD: array<vec2<f32>, 4> = array<vec2<f32>, 4>(
    vec2<f32>(-1.0, -1.0),
    vec2<f32>(1.0, -1.0),
    vec2<f32>(-1.0, 1.0),
    vec2<f32>(1.0, 1.0),
);

// Any unit vector perpendicular to `v` (a unit vector).
fn perpendicular(v: vec3<f32>) -> vec3<f32> {
    var helper = vec3<f32>(0.0, 1.0, 0.0);
    if abs(v.y) > 0.9 {
        helper = vec3<f32>(1.0, 0.0, 0.0);
    }
    return normalize(cross(v, helper));
}

// Pixel coordinates (origin at the centre, y up) of a view-space point in front of the eye.
fn to_pixels(p: vec3<f32>) -> vec2<f32> {
    let clip = frame.proj * vec4<f32>(p, 1.0);
    return clip.xy / clip.w * frame.viewport.xy * 0.5;
}

// Corner `vi` (0..3, triangle strip) of the billboard of a sphere centred at `c` (view space,
// distance d = |c| > r) with radius `r`: a view-space point.
fn sphere_billboard(c: vec3<f32>, r: f32, vi: u32) -> vec3<f32> {
    let d = length(c);
    let w = c / d;
    var up = vec3<f32>(0.0, 1.0, 0.0);
    if abs(w.y) > 0.99 {
        up = vec3<f32>(1.0, 0.0, 0.0);
    }
    let right = normalize(cross(w, up));
    let up2 = cross(right, w);
    // Silhouette-cone radius in the plane through the centre, plus 1.5 pixels for coverage.
    let half = r * d / sqrt(d * d - r * r) + 1.5 * pixel_size(d);
    let q = QUAD[vi];
    return c + (right * q.x + up2 * q.y) * half;
}

// Ray (from the eye, unit direction `rd`) against a sphere: the surface point and normal, and
// the pixel coverage. Rays that miss by less than a pixel take the silhouette point.
struct SphereHit {
    point: vec3<f32>,
    normal: vec3<f32>,
    coverage: f32,
}

fn sphere_hit(rd: vec3<f32>, sphere: vec4<f32>) -> SphereHit {
    var hit: SphereHit;
    let c = sphere.xyz;
    let r = sphere.w;
    let along = dot(rd, c);
    let closest = rd * along;
    let m2 = max(dot(c, c) - along * along, 0.0);
    let m = sqrt(m2);
    hit.coverage = edge_coverage(m - r, pixel_size(along));
    if m2 <= r * r {
        let t = along - sqrt(r * r - m2);
        hit.point = rd * t;
        hit.normal = (hit.point - c) / r;
    } else {
        let out = closest - c;
        hit.normal = out / max(m, 1e-6);
        hit.point = c + hit.normal * r;
    }
    return hit;
}

// Corner `vi` (0..3, triangle strip) of the screen-space quad covering a cylinder of radius
// `rs` from `q0` to `q1` (view space, q0 != q1): a view-space point. The 8 corners of the
// cylinder's box, widened by 1.5 pixels for edge coverage, are projected to pixels and bounded
// by a quad oriented along the projected axis, so that diagonal cylinders do not pay for a
// screen-aligned square. The quad lies in the plane of the box's nearest corner (kept in front
// of the near plane); its view-space points are the rays through the pixels it covers.
fn cylinder_quad(q0: vec3<f32>, q1: vec3<f32>, rs: f32, vi: u32) -> vec3<f32> {
    let u = normalize(q1 - q0);
    let e1 = perpendicular(u);
    let e2 = cross(u, e1);
    let far_end = max(length(q0), length(q1));
    let cover = rs + 1.5 * pixel_size(far_end);
    let near = frame.proj[3][2] / frame.proj[2][2];
    // Axes of the screen-space quad: along the projected axis, and across it.
    var along = vec2<f32>(1.0, 0.0);
    let s0 = to_pixels(q0);
    let s1 = to_pixels(q1);
    let behind = -q0.z <= near + cover || -q1.z <= near + cover;
    if !behind && length(s1 - s0) > 0.5 {
        along = normalize(s1 - s0);
    }
    let across = vec2<f32>(-along.y, along.x);
    var lo = vec2<f32>(1e30);
    var hi = vec2<f32>(-1e30);
    var nearest = -1e30;
    for (var i = 0u; i < 8u; i++) {
        let end = select(q0, q1, (i & 1u) != 0u);
        let corner = end + e1 * select(-cover, cover, (i & 2u) != 0u) + e2 * select(-cover, cover, (i & 4u) != 0u);
        nearest = max(nearest, corner.z);
        if !behind {
            let s = to_pixels(corner);
            let k = vec2<f32>(dot(s, along), dot(s, across));
            lo = min(lo, k);
            hi = max(hi, k);
        }
    }
    var pixel = vec2<f32>(0.0);
    if behind {
        // The box reaches the near plane: fall back to the whole viewport (rare: only when
        // the camera is inside the structure).
        let halfsize = frame.viewport.xy * 0.5;
        pixel = select(-halfsize, halfsize, vec2<bool>((vi & 1u) != 0u, (vi & 2u) != 0u));
    } else {
        let k = select(lo, hi, vec2<bool>((vi & 1u) != 0u, (vi & 2u) != 0u));
        pixel = along * k.x + across * k.y;
    }
    let zq = min(nearest, -near * 1.001);
    let ndc = pixel * 2.0 * frame.viewport.zw;
    return vec3<f32>(ndc.x * -zq / frame.proj[0][0], ndc.y * -zq / frame.proj[1][1], zq);
}

// Ray (from the eye, unit direction `rd`) against a capped cylinder from `q0` to `q1`.
// `along` is the hit's position along the axis, 0 at q0 and 1 at q1.
struct CylinderHit {
    point: vec3<f32>,
    normal: vec3<f32>,
    coverage: f32,
    along: f32,
}

fn cylinder_hit(rd: vec3<f32>, q0: vec3<f32>, q1: vec3<f32>, r: f32) -> CylinderHit {
    var hit: CylinderHit;
    hit.coverage = 0.0;
    let axis = q1 - q0;
    let len = length(axis);
    let u = axis / len;
    // Eye relative to q0, split into axial and radial parts; same for the ray direction.
    let w = -q0;
    let du = dot(rd, u);
    let wu = dot(w, u);
    let dp = rd - u * du;
    let wp = w - u * wu;
    let a = dot(dp, dp);
    if a > 1e-10 {
        let b = dot(wp, dp);
        // Closest approach of the ray to the axis line: distance m at ray parameter t_close.
        let t_close = -b / a;
        let m = sqrt(max(dot(wp, wp) - b * b / a, 0.0));
        var t = t_close;
        if m < r {
            t = t_close - sqrt(r * r - m * m) / sqrt(a);
        }
        let s = wu + t * du;
        if s >= 0.0 && s <= len {
            let radial = wp + dp * t;
            hit.normal = radial / max(length(radial), 1e-6);
            hit.point = q0 + u * s + hit.normal * r;
            hit.coverage = edge_coverage(m - r, pixel_size(max(t, 0.0)));
            hit.along = s / len;
            return hit;
        }
    }
    // Flat caps: only the one whose outside the eye is on can be seen.
    if abs(du) > 1e-8 && (wu < 0.0 || wu > len) {
        let cap = select(0.0, len, wu > len);
        let t = (cap - wu) / du;
        let radial = wp + dp * t;
        if t > 0.0 && dot(radial, radial) <= r * r {
            hit.point = rd * t;
            hit.normal = select(-u, u, wu > len);
            hit.coverage = 1.0;
            hit.along = cap / len;
        }
    }
    return hit;
}

// GPU layouts of the shapes plugins draw: mesh vertices, sphere and line instances.
//
// Each struct here mirrors a `#[repr(C)]` Pod struct in `engine/src/shape.rs`; change both
// together. `engine/tests/wgsl_shapes.rs` checks with naga that sizes, alignments, field offsets
// and the constants agree.

// Mirror of `molstream_engine::shape::MeshVertex` (32 bytes, align 16): what
// `codec::shapes::MeshRef::decode_into` writes.
struct MeshVertex {
    // Position relative to the mesh anchor, Å.
    position: vec3<f32>,
    // Octahedral unit normal, two snorm16 (x in the low half): oct_decode(normal).
    // 0 (+Z) when the mesh has no normals; the shader then uses face normals.
    normal: u32,
    // Texture coordinates; 0 without uvs.
    uv: vec2<f32>,
    // RGBA8, red in the lowest byte: unpack4x8unorm(color).
    color: u32,
    // Picking id of the mesh, the same for every vertex.
    pick_id: u32,
}

// Mirror of `molstream_engine::shape::SphereInstance` (28 bytes, align 4).
struct SphereInstance {
    // Centre relative to the anchor, Å (an array, not a vec3, so the struct packs to 28 bytes).
    offset: array<f32, 3>,
    // Radius, Å.
    radius: f32,
    // RGBA8.
    color: u32,
    // Anchor word: ANCHOR_ATOM set -> bits 0-30 index the atom buffer; clear -> index of the
    // transform buffer (0 = workspace identity).
    anchor: u32,
    // Picking id.
    pick_id: u32,
}

// Mirror of `molstream_engine::shape::LineInstance` (52 bytes, align 4).
struct LineInstance {
    // Ends relative to their anchors, Å.
    start: array<f32, 3>,
    end: array<f32, 3>,
    // Thickness, Å.
    thickness: f32,
    // Dash length (0 = solid) and gap, Å.
    dash_length: f32,
    dash_gap: f32,
    // RGBA8.
    color: u32,
    // Anchor words of the two ends (see SphereInstance.anchor).
    start_anchor: u32,
    end_anchor: u32,
    // Picking id.
    pick_id: u32,
}

// Mirrors `molstream_engine::shape::ANCHOR_ATOM`.
const ANCHOR_ATOM: u32 = 0x80000000u;

// Whether an anchor word names an atom (else a transform).
fn anchor_is_atom(anchor: u32) -> bool {
    return (anchor & ANCHOR_ATOM) != 0u;
}

// The atom-buffer or transform-buffer index of an anchor word.
fn anchor_index(anchor: u32) -> u32 {
    return anchor & ~ANCHOR_ATOM;
}

// The unit normal of MeshVertex.normal; mirrors `molstream_engine::shape::unpack_normal`.
fn oct_decode(packed: u32) -> vec3<f32> {
    let e = unpack2x16snorm(packed);
    var n = vec3<f32>(e.x, e.y, 1.0 - abs(e.x) - abs(e.y));
    if (n.z < 0.0) {
        let s = select(vec2<f32>(-1.0), vec2<f32>(1.0), e >= vec2<f32>(0.0));
        n = vec3<f32>((vec2<f32>(1.0) - abs(e.yx)) * s, n.z);
    }
    return normalize(n);
}

// Bindings of the viewer's shape pipelines (viewer/src/render/shapes.rs): group 0 is the scene
// (atoms and transforms resolve the anchors), group 1 the shape buffers shared by every shape
// stream, group 2 one mesh (its vertices, decoded straight into this buffer, and its texture).
@group(1) @binding(0) var<storage, read> spheres: array<SphereInstance>;
@group(1) @binding(1) var<storage, read> lines: array<LineInstance>;
@group(2) @binding(0) var<storage, read> mesh_vertices: array<MeshVertex>;

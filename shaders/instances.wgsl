// GPU instance layouts shared by the atom and bond shaders.
//
// Each struct here mirrors a `#[repr(C)]` Pod struct in `engine/src/gpu.rs`; change both
// together. `engine/tests/wgsl_layout.rs` checks with naga that sizes, alignments and field
// offsets agree.

// Mirror of `molstream_engine::gpu::AtomInstance` (32 bytes, align 16).
struct AtomInstance {
    // Atom centre in the complex's frame, Å.
    position: vec3<f32>,
    // Drawn sphere radius, Å.
    radius: f32,
    // RGBA8, red in the lowest byte: unpack4x8unorm(color).
    color: u32,
    // Bits 0-3 representation, 4 selected, 5 highlighted, 6 labeled, 7 hetero,
    // 8-15 atomic number (see ATOM_FLAG_* in gpu.rs).
    flags: u32,
    // Picking id written to the id target; 0 means background.
    pick_id: u32,
    // Index of the complex transform in the transform buffer.
    transform: u32,
}

// Mirror of `molstream_engine::gpu::BondInstance` (16 bytes, align 4).
struct BondInstance {
    // Indices of the two atoms in the atom buffer; the bond shader reads their positions there,
    // so a position stream never touches the bond buffer.
    atom_a: u32,
    atom_b: u32,
    // Bits 0-7 bond kind (0 unknown, 1 single, 2 double, 3 triple, 4 aromatic).
    kind: u32,
    // RGBA8 override colour; alpha 0 means "each half takes its atom's colour".
    color: u32,
}

// Bit layout of AtomInstance.flags (mirrors ATOM_FLAG_* in gpu.rs).
const ATOM_REPR_MASK: u32 = 0xfu;
const ATOM_SELECTED: u32 = 0x10u;
const ATOM_HIGHLIGHTED: u32 = 0x20u;
const ATOM_LABELED: u32 = 0x40u;
const ATOM_HETERO: u32 = 0x80u;
const REPR_BALL_AND_STICK: u32 = 0u;
const REPR_STICKS: u32 = 1u;
const REPR_SPACEFILL: u32 = 2u;
const REPR_WIRE: u32 = 3u;
const REPR_HIDDEN: u32 = 4u;

@group(0) @binding(0) var<storage, read> atoms: array<AtomInstance>;
@group(0) @binding(1) var<storage, read> bonds: array<BondInstance>;

//! Uniform blocks, byte for byte as the shaders declare them.
//!
//! Each struct mirrors a WGSL struct (named in its docs); `viewer/tests/wgsl.rs` compares sizes
//! and member offsets with naga's layout of the composed shader. Only `vec4`/`mat4x4` members
//! are used, so the Rust and WGSL layouts have no hidden padding.

use bytemuck::{Pod, Zeroable};

/// Per-frame camera, lighting and style parameters. Mirror of `Frame` in `shaders/frame.wgsl`
/// (272 bytes), bound at group 0, binding 2 of the atom and bond pipelines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct FrameUniforms {
    /// World → view matrix, column-major (WGSL `view`, offset 0).
    pub view: [[f32; 4]; 4],
    /// View → clip matrix, depth 0..1 (`proj`, offset 64).
    pub proj: [[f32; 4]; 4],
    /// Width, height, 1/width, 1/height in pixels (`viewport`, offset 128).
    pub viewport: [f32; 4],
    /// Unit direction towards the key light in view space; w: ambient term (`light`, offset 144).
    pub light: [f32; 4],
    /// Background colour, linear RGB; w unused (`background`, offset 160).
    pub background: [f32; 4],
    /// Fog start and end distance, fog strength, pixel size at distance 1 (`fog`, offset 176).
    pub fog: [f32; 4],
    /// Bond radius of ball-and-stick, sticks, wire (Å), and the least wire half-width in pixels
    /// (`bond_radius`, offset 192).
    pub bond_radius: [f32; 4],
    /// Selection colour (linear RGB) and its weight (`selection`, offset 208).
    pub selection: [f32; 4],
    /// Specular strength, shininess, edge darkening strength, edge exponent (`material`,
    /// offset 224).
    pub material: [f32; 4],
    /// Label lift towards the eye (Å), least half-width of shape lines (pixels); z, w unused
    /// (`shapes`, offset 240).
    pub shapes: [f32; 4],
    /// Culling and level of detail: on (1) or off (0), atom radius in pixels under which atoms
    /// are points, bond radius in pixels under which bonds are skipped; w unused (`lod`,
    /// offset 256).
    pub lod: [f32; 4],
}

/// Parameters of the composite (outline and output) pass. Mirror of `Post` in
/// `shaders/composite.wgsl` (64 bytes), bound at group 0, binding 2 of the ambient occlusion and
/// composite pipelines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct PostUniforms {
    /// Near and far distance, outline strength, depth step of a full outline (`depth`, offset 0).
    pub depth: [f32; 4],
    /// Fog start, end and strength (as in [`FrameUniforms::fog`]), outline width in pixels
    /// (`fog`, offset 16).
    pub fog: [f32; 4],
    /// x: 1.0 when the shader must encode sRGB itself; y, z: the output pixel of the frame's
    /// top-left corner (`output`, offset 32).
    pub output: [f32; 4],
    /// Ambient occlusion strength (0: off), radius (Å), `proj[0][0]`, `proj[1][1]` (`ao`,
    /// offset 48).
    pub ao: [f32; 4],
}

//! The renderer: pipelines, render targets and the passes of a frame.
//!
//! A frame is two passes:
//! 1. **scene** (4× MSAA, `Rgba8UnormSrgb` colour resolved to a single-sample texture, `Depth32Float`
//!    kept for the next pass): atom spheres (`vs_atom`/`fs_atom`), cylinder 0 of every bond
//!    (`vs_bond`/`fs_bond`), the extra cylinders of multiple bonds (`vs_bond_extra`/`fs_bond`),
//!    then the plugin shapes ([`super::shapes`]): spheres, lines, meshes, and labels last
//!    (blended, no depth write). Impostors write their true depth and their silhouette
//!    coverage as alpha (alpha-to-coverage).
//! 2. **ambient occlusion** (half resolution, `Rg16Float`; skipped when
//!    [`RenderSettings::ambient_occlusion`] is 0): `fs_ao` estimates the obscurance of each
//!    pixel from the depth buffer.
//! 3. **composite**: one full-screen triangle reads the resolved colour, the depth and the
//!    ambient occlusion (blurred, depth-aware), darkens occluded pixels and depth
//!    discontinuities (outlines) and writes the output format (sRGB-encoding in the shader when
//!    the format is not sRGB).
//!
//! Picking renders the same geometry with the `*_pick` fragment entry points into an
//! `R32Uint` id target (single-sample, its own depth), scissored to the one pixel asked for,
//! and reads that texel back.

use glam::{Mat4, Vec3};
use molstream_engine::Representation;
use molstream_engine::gpu::{ATOM_FLAG_REPR_MASK, AtomInstance, BondInstance};
use molstream_engine::style::{STICK_RADIUS, WIRE_RADIUS};

use super::RenderError;
use super::RgbaImage;
use super::camera::{Bounds, Camera};
use super::readback::{Region, padded_row, read_region};
use super::scene::{DRAW_ARGS_STRIDE, DRAW_ATOMS, DRAW_BONDS, DRAW_EXTRAS, DRAW_POINTS, Scene};
use super::shaders::{self, ShaderModule};
use super::shapes::ShapeLayers;
use super::uniforms::{FrameUniforms, PostUniforms};

/// MSAA sample count of the scene pass.
pub const SAMPLE_COUNT: u32 = 4;
/// Format of the scene colour: linear values stored sRGB-encoded in 8 bits (half the bandwidth of
/// `Rgba16Float` without its banding in the darks), resolved before the composite pass.
pub const SCENE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;
/// Format of the scene and pick depth buffers.
pub const DEPTH_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Depth32Float;
/// Format of the half-resolution ambient occlusion target: obscurance and view distance.
pub const AO_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rg16Float;
/// Format of the id target: one `pick_id` per pixel, 0 for background.
pub const PICK_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::R32Uint;
/// Bond radius in the ball-and-stick style, Å (Jmol's `wireframe 0.15`).
pub const BALL_AND_STICK_BOND_RADIUS: f32 = 0.15;

/// How the scene is lit and styled. Colours are sRGB components in 0..1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderSettings {
    /// Background colour.
    pub background: [f32; 3],
    /// Direction towards the key light in view space (x right, y up, z towards the viewer).
    pub light: Vec3,
    /// Ambient fraction of the lighting, 0..1.
    pub ambient: f32,
    /// Specular strength.
    pub specular: f32,
    /// Specular exponent.
    pub shininess: f32,
    /// How much surfaces darken where they turn away from the viewer, 0..1.
    pub edge_darkening: f32,
    /// Exponent of the edge darkening (higher: thinner dark rim).
    pub edge_exponent: f32,
    /// Fog strength at the back of the structure, 0..1 (depth cue).
    pub fog: f32,
    /// Strength of the screen-space ambient occlusion, 0..1; 0 turns it off (the pass is
    /// skipped).
    pub ambient_occlusion: f32,
    /// Radius of the ambient occlusion, Å: how far around a point surfaces darken it.
    pub ao_radius: f32,
    /// Outline darkness, 0..1.
    pub outline: f32,
    /// Outline width in pixels.
    pub outline_width: f32,
    /// Depth step, Å, that draws a full outline.
    pub outline_step: f32,
    /// Selection tint.
    pub selection: [f32; 3],
    /// Weight of the selection tint, 0..1.
    pub selection_weight: f32,
    /// Bond radius of ball-and-stick, Å.
    pub ball_and_stick_bond_radius: f32,
    /// Bond radius of sticks, Å.
    pub stick_radius: f32,
    /// Line radius of wire, Å.
    pub wire_radius: f32,
    /// Least half-width of wire lines, pixels (keeps lines visible when zoomed out).
    pub wire_min_pixels: f32,
    /// How far labels are drawn in front of their anchor, towards the eye, Å (so a label on an
    /// atom is not hidden inside that atom's sphere).
    pub label_lift: f32,
    /// Least half-width of shape lines, pixels (thin lines stay visible when zoomed out).
    pub line_min_pixels: f32,
    /// Culling and level of detail: a compute pass drops atoms and bonds outside the view,
    /// draws atoms smaller than [`RenderSettings::point_pixels`] as points and skips bonds
    /// thinner than [`RenderSettings::bond_min_pixels`], and the draws become indirect.
    pub lod: bool,
    /// Projected atom radius, pixels, under which an atom is drawn as a one-pixel point (stick
    /// atoms, the joints of their bonds: under [`RenderSettings::bond_min_pixels`]; wire atoms
    /// never).
    pub point_pixels: f32,
    /// Projected bond radius, pixels, under which a bond is not drawn.
    pub bond_min_pixels: f32,
}

impl Default for RenderSettings {
    fn default() -> Self {
        Self {
            background: [1.0, 1.0, 1.0],
            light: Vec3::new(-0.35, 0.55, 1.0),
            ambient: 0.3,
            specular: 0.35,
            shininess: 48.0,
            edge_darkening: 0.35,
            edge_exponent: 3.0,
            fog: 0.55,
            ambient_occlusion: 0.8,
            ao_radius: 4.0,
            outline: 0.85,
            outline_width: 1.0,
            outline_step: 1.5,
            selection: [0.2, 0.9, 0.3],
            selection_weight: 0.55,
            ball_and_stick_bond_radius: BALL_AND_STICK_BOND_RADIUS,
            stick_radius: STICK_RADIUS,
            wire_radius: WIRE_RADIUS,
            wire_min_pixels: 0.75,
            label_lift: 2.5,
            line_min_pixels: 0.75,
            lod: true,
            point_pixels: 1.0,
            bond_min_pixels: 0.4,
        }
    }
}

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}

fn linear3(c: [f32; 3]) -> [f32; 3] {
    c.map(srgb_to_linear)
}

/// Render pipelines of the scene, pick and composite passes.
#[derive(Debug)]
struct Pipelines {
    atoms: wgpu::RenderPipeline,
    bonds: wgpu::RenderPipeline,
    bond_extras: wgpu::RenderPipeline,
    pick_atoms: wgpu::RenderPipeline,
    pick_bonds: wgpu::RenderPipeline,
    pick_bond_extras: wgpu::RenderPipeline,
    lod: LodPipelines,
    shape_spheres: wgpu::RenderPipeline,
    shape_lines: wgpu::RenderPipeline,
    meshes: wgpu::RenderPipeline,
    labels: wgpu::RenderPipeline,
    pick_shape_spheres: wgpu::RenderPipeline,
    pick_shape_lines: wgpu::RenderPipeline,
    pick_meshes: wgpu::RenderPipeline,
    pick_labels: wgpu::RenderPipeline,
    ao: wgpu::RenderPipeline,
    composite: wgpu::RenderPipeline,
}

/// Level of detail: the cull pass and the draws of its lists.
#[derive(Debug)]
struct LodPipelines {
    atoms: wgpu::RenderPipeline,
    points: wgpu::RenderPipeline,
    bonds: wgpu::RenderPipeline,
    extras: wgpu::RenderPipeline,
    pick_atoms: wgpu::RenderPipeline,
    pick_points: wgpu::RenderPipeline,
    pick_bonds: wgpu::RenderPipeline,
    pick_extras: wgpu::RenderPipeline,
    cull_atoms: wgpu::ComputePipeline,
    cull_bonds: wgpu::ComputePipeline,
    cull_extras: wgpu::ComputePipeline,
}

/// What the cull pass of the last frame kept (read back by [`Renderer::lod_counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LodCounts {
    /// Atoms drawn as impostors.
    pub atoms: u32,
    /// Atoms drawn as points.
    pub points: u32,
    /// Bonds drawn (cylinder 0).
    pub bonds: u32,
    /// Extra cylinders of multiple bonds drawn.
    pub extras: u32,
}

/// Size-dependent textures of the scene pass and the composite bind group that reads them.
#[derive(Debug)]
struct Targets {
    width: u32,
    height: u32,
    color: wgpu::TextureView,
    resolved: wgpu::TextureView,
    depth: wgpu::TextureView,
    ao: wgpu::TextureView,
    ao_group: wgpu::BindGroup,
    composite: wgpu::BindGroup,
}

/// Id target and its depth buffer, created on the first pick.
#[derive(Debug)]
struct PickTargets {
    width: u32,
    height: u32,
    ids: wgpu::Texture,
    ids_view: wgpu::TextureView,
    depth: wgpu::TextureView,
}

/// Draws a scene of atoms and bonds into texture views.
#[derive(Debug)]
pub struct Renderer {
    device: wgpu::Device,
    queue: wgpu::Queue,
    output_format: wgpu::TextureFormat,
    scene_layout: wgpu::BindGroupLayout,
    composite_layout: wgpu::BindGroupLayout,
    ao_layout: wgpu::BindGroupLayout,
    cull_layout: wgpu::BindGroupLayout,
    lists_layout: wgpu::BindGroupLayout,
    pipelines: Pipelines,
    frame: wgpu::Buffer,
    post: wgpu::Buffer,
    scene: Scene,
    targets: Targets,
    pick: Option<PickTargets>,
    pick_readback: wgpu::Buffer,
    bounds: Option<Bounds>,
    shapes: ShapeLayers,
    output_origin: (u32, u32),
    /// The camera used by the next frame.
    pub camera: Camera,
    /// Lighting and style of the next frame.
    pub settings: RenderSettings,
}

fn layout_entry(binding: u32, visibility: wgpu::ShaderStages, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry { binding, visibility, ty, count: None }
}

fn storage_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    buffer_entry(binding, wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::COMPUTE, true)
}

fn buffer_entry(binding: u32, visibility: wgpu::ShaderStages, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    layout_entry(
        binding,
        visibility,
        wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
    )
}

fn compute_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    entry: &str,
) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: Some(layout),
        module,
        entry_point: Some(entry),
        compilation_options: wgpu::PipelineCompilationOptions::default(),
        cache: None,
    })
}

/// Workgroups of the cull pass (`CULL_GROUP` in `shaders/cull.wgsl`).
const CULL_GROUP: u32 = 256;

/// A dispatch covering `n` items in workgroups of [`CULL_GROUP`]: (x, y) with x ≤ 65535.
fn dispatch_size(n: u32) -> (u32, u32) {
    let groups = n.div_ceil(CULL_GROUP);
    let x = groups.clamp(1, 65_535);
    (x, groups.div_ceil(x))
}

fn uniform_entry(binding: u32, visibility: wgpu::ShaderStages) -> wgpu::BindGroupLayoutEntry {
    layout_entry(
        binding,
        visibility,
        wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
    )
}

fn uniform_buffer(device: &wgpu::Device, label: &str, size: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

fn module(device: &wgpu::Device, m: ShaderModule) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(m.name),
        source: wgpu::ShaderSource::Wgsl(m.source().into()),
    })
}

/// How a scene pipeline writes its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// Scene colour (4× MSAA), opaque: depth written, alpha is coverage (alpha-to-coverage).
    Opaque,
    /// Scene colour, premultiplied alpha blending, depth tested but not written (labels).
    Blended,
    /// Id target (single sample), depth written.
    Pick,
    /// Id target, depth tested but not written (labels).
    PickOverlay,
}

/// One scene or pick pipeline without vertex buffers (vertices are pulled from storage).
struct PipelineSpec<'a> {
    label: &'a str,
    layout: &'a wgpu::PipelineLayout,
    module: &'a wgpu::ShaderModule,
    vertex: &'a str,
    fragment: &'a str,
    topology: wgpu::PrimitiveTopology,
    output: Output,
}

fn scene_pipeline(device: &wgpu::Device, p: &PipelineSpec<'_>) -> wgpu::RenderPipeline {
    let pick = matches!(p.output, Output::Pick | Output::PickOverlay);
    let (format, samples) = if pick { (PICK_FORMAT, 1) } else { (SCENE_FORMAT, SAMPLE_COUNT) };
    let overlay = matches!(p.output, Output::Blended | Output::PickOverlay);
    let blend = (p.output == Output::Blended).then_some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING);
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(p.label),
        layout: Some(p.layout),
        vertex: wgpu::VertexState {
            module: p.module,
            entry_point: Some(p.vertex),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState {
            topology: p.topology,
            strip_index_format: None,
            front_face: wgpu::FrontFace::Ccw,
            cull_mode: None,
            unclipped_depth: false,
            polygon_mode: wgpu::PolygonMode::Fill,
            conservative: false,
        },
        depth_stencil: Some(wgpu::DepthStencilState {
            format: DEPTH_FORMAT,
            depth_write_enabled: Some(!overlay),
            depth_compare: Some(if overlay { wgpu::CompareFunction::LessEqual } else { wgpu::CompareFunction::Less }),
            stencil: wgpu::StencilState::default(),
            bias: wgpu::DepthBiasState::default(),
        }),
        multisample: wgpu::MultisampleState {
            count: samples,
            mask: !0,
            alpha_to_coverage_enabled: p.output == Output::Opaque,
        },
        fragment: Some(wgpu::FragmentState {
            module: p.module,
            entry_point: Some(p.fragment),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            targets: &[Some(wgpu::ColorTargetState { format, blend, write_mask: wgpu::ColorWrites::ALL })],
        }),
        multiview_mask: None,
        cache: None,
    })
}

/// A full-screen triangle (`vs_fullscreen`) writing `format` with `fragment`.
fn fullscreen_pipeline(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    fragment: &str,
    format: wgpu::TextureFormat,
) -> wgpu::RenderPipeline {
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module,
            entry_point: Some("vs_fullscreen"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some(fragment),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            targets: &[Some(wgpu::ColorTargetState { format, blend: None, write_mask: wgpu::ColorWrites::ALL })],
        }),
        multiview_mask: None,
        cache: None,
    })
}

fn texture(
    device: &wgpu::Device,
    label: &str,
    size: (u32, u32),
    format: wgpu::TextureFormat,
    samples: u32,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width: size.0, height: size.1, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: samples,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage,
        view_formats: &[],
    })
}

impl Renderer {
    /// A renderer drawing `width × height` frames into views of `output_format`, with an
    /// empty scene. Shader or pipeline validation errors are returned, not panicked.
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        output_format: wgpu::TextureFormat,
        width: u32,
        height: u32,
    ) -> Result<Self, RenderError> {
        Self::check_size(device, width, height)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let vf = wgpu::ShaderStages::VERTEX | wgpu::ShaderStages::FRAGMENT | wgpu::ShaderStages::COMPUTE;
        let scene_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("scene"),
            entries: &[storage_entry(0), storage_entry(1), uniform_entry(2, vf), storage_entry(3), storage_entry(4)],
        });
        let composite_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("composite"),
            entries: &[
                layout_entry(
                    0,
                    wgpu::ShaderStages::FRAGMENT,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
                layout_entry(
                    1,
                    wgpu::ShaderStages::FRAGMENT,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Depth,
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: true,
                    },
                ),
                uniform_entry(2, wgpu::ShaderStages::FRAGMENT),
                layout_entry(
                    3,
                    wgpu::ShaderStages::FRAGMENT,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
            ],
        });
        let ao_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("ambient occlusion"),
            entries: &[
                layout_entry(
                    1,
                    wgpu::ShaderStages::FRAGMENT,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Depth,
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: true,
                    },
                ),
                uniform_entry(2, wgpu::ShaderStages::FRAGMENT),
            ],
        });
        let scene_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("scene"),
            bind_group_layouts: &[Some(&scene_layout)],
            immediate_size: 0,
        });
        let compute = wgpu::ShaderStages::COMPUTE;
        let cull_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("cull"),
            entries: &[
                buffer_entry(0, compute, false),
                buffer_entry(1, compute, false),
                buffer_entry(2, compute, false),
                buffer_entry(3, compute, false),
            ],
        });
        let vertex = wgpu::ShaderStages::VERTEX;
        let lists_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("draw lists"),
            entries: &[buffer_entry(1, vertex, true), buffer_entry(2, vertex, true), buffer_entry(3, vertex, true)],
        });
        let lod_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("listed draws"),
            bind_group_layouts: &[Some(&scene_layout), Some(&lists_layout)],
            immediate_size: 0,
        });
        let cull_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("cull"),
            bind_group_layouts: &[Some(&scene_layout), Some(&cull_layout)],
            immediate_size: 0,
        });
        let composite_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("composite"),
            bind_group_layouts: &[Some(&composite_layout)],
            immediate_size: 0,
        });
        let ao_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("ambient occlusion"),
            bind_group_layouts: &[Some(&ao_layout)],
            immediate_size: 0,
        });
        let shapes = ShapeLayers::new(device, queue);
        let shapes_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("shapes"),
            bind_group_layouts: &[Some(&scene_layout), Some(&shapes.layouts().shapes)],
            immediate_size: 0,
        });
        let mesh_pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("meshes"),
            bind_group_layouts: &[Some(&scene_layout), Some(&shapes.layouts().shapes), Some(&shapes.layouts().mesh)],
            immediate_size: 0,
        });
        let atoms = module(device, shaders::ATOMS);
        let bonds = module(device, shaders::BONDS);
        let shape_module = module(device, shaders::SHAPES);
        let cull_module = module(device, shaders::CULL);
        let composite = module(device, shaders::COMPOSITE);
        let strip = wgpu::PrimitiveTopology::TriangleStrip;
        let list = wgpu::PrimitiveTopology::TriangleList;
        let make = |label, layout, module, vertex, fragment, topology, output| {
            scene_pipeline(device, &PipelineSpec { label, layout, module, vertex, fragment, topology, output })
        };
        let (sc, sh, me, lo) = (&scene_pl, &shapes_pl, &mesh_pl, &lod_pl);
        let points = wgpu::PrimitiveTopology::PointList;
        let (o, b, pk, po) = (Output::Opaque, Output::Blended, Output::Pick, Output::PickOverlay);
        let pipelines = Pipelines {
            atoms: make("atoms", sc, &atoms, "vs_atom", "fs_atom", strip, o),
            bonds: make("bonds", sc, &bonds, "vs_bond", "fs_bond", strip, o),
            bond_extras: make("bond extras", sc, &bonds, "vs_bond_extra", "fs_bond", strip, o),
            pick_atoms: make("pick atoms", sc, &atoms, "vs_atom", "fs_atom_pick", strip, pk),
            pick_bonds: make("pick bonds", sc, &bonds, "vs_bond", "fs_bond_pick", strip, pk),
            pick_bond_extras: make("pick bond extras", sc, &bonds, "vs_bond_extra", "fs_bond_pick", strip, pk),
            lod: LodPipelines {
                atoms: make("listed atoms", lo, &atoms, "vs_atom_listed", "fs_atom", strip, o),
                points: make("atom points", lo, &atoms, "vs_atom_point", "fs_atom_point", points, o),
                bonds: make("listed bonds", lo, &bonds, "vs_bond_listed", "fs_bond", strip, o),
                extras: make("listed bond extras", lo, &bonds, "vs_bond_extra_listed", "fs_bond", strip, o),
                pick_atoms: make("pick listed atoms", lo, &atoms, "vs_atom_listed", "fs_atom_pick", strip, pk),
                pick_points: make("pick atom points", lo, &atoms, "vs_atom_point", "fs_atom_point_pick", points, pk),
                pick_bonds: make("pick listed bonds", lo, &bonds, "vs_bond_listed", "fs_bond_pick", strip, pk),
                pick_extras: make(
                    "pick listed bond extras",
                    lo,
                    &bonds,
                    "vs_bond_extra_listed",
                    "fs_bond_pick",
                    strip,
                    pk,
                ),
                cull_atoms: compute_pipeline(device, &cull_pl, &cull_module, "cull_atoms"),
                cull_bonds: compute_pipeline(device, &cull_pl, &cull_module, "cull_bonds"),
                cull_extras: compute_pipeline(device, &cull_pl, &cull_module, "cull_extras"),
            },
            shape_spheres: make("shape spheres", sh, &shape_module, "vs_shape_sphere", "fs_shape_sphere", strip, o),
            shape_lines: make("shape lines", sh, &shape_module, "vs_shape_line", "fs_shape_line", strip, o),
            meshes: make("meshes", me, &shape_module, "vs_mesh", "fs_mesh", list, o),
            labels: make("labels", sh, &shape_module, "vs_label", "fs_label", strip, b),
            pick_shape_spheres: make(
                "pick shape spheres",
                sh,
                &shape_module,
                "vs_shape_sphere",
                "fs_shape_sphere_pick",
                strip,
                pk,
            ),
            pick_shape_lines: make(
                "pick shape lines",
                sh,
                &shape_module,
                "vs_shape_line",
                "fs_shape_line_pick",
                strip,
                pk,
            ),
            pick_meshes: make("pick meshes", me, &shape_module, "vs_mesh", "fs_mesh_pick", list, pk),
            pick_labels: make("pick labels", sh, &shape_module, "vs_label", "fs_label_pick", strip, po),
            ao: fullscreen_pipeline(device, "ambient occlusion", &ao_pl, &composite, "fs_ao", AO_FORMAT),
            composite: fullscreen_pipeline(
                device,
                "composite",
                &composite_pl,
                &composite,
                "fs_composite",
                output_format,
            ),
        };
        let frame = uniform_buffer(device, "frame", size_of::<FrameUniforms>());
        let post = uniform_buffer(device, "post", size_of::<PostUniforms>());
        let scene = Scene::new(device, queue, &scene_layout, [&cull_layout, &lists_layout], &frame, &[], &[], &[])?;
        let targets = Self::targets(device, [&composite_layout, &ao_layout], &post, width, height);
        let pick_readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pick readback"),
            size: u64::from(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(RenderError::Pipeline(e.to_string()));
        }
        Ok(Self {
            device: device.clone(),
            queue: queue.clone(),
            output_format,
            scene_layout,
            composite_layout,
            ao_layout,
            cull_layout,
            lists_layout,
            pipelines,
            frame,
            post,
            scene,
            targets,
            pick: None,
            pick_readback,
            bounds: None,
            shapes,
            output_origin: (0, 0),
            camera: Camera::default(),
            settings: RenderSettings::default(),
        })
    }

    fn check_size(device: &wgpu::Device, width: u32, height: u32) -> Result<(), RenderError> {
        let max = device.limits().max_texture_dimension_2d;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(RenderError::BadSize { width, height, max });
        }
        Ok(())
    }

    fn targets(
        device: &wgpu::Device,
        [layout, ao_layout]: [&wgpu::BindGroupLayout; 2],
        post: &wgpu::Buffer,
        width: u32,
        height: u32,
    ) -> Targets {
        let size = (width, height);
        let attach = wgpu::TextureUsages::RENDER_ATTACHMENT;
        let sampled = attach | wgpu::TextureUsages::TEXTURE_BINDING;
        let color = texture(device, "scene colour", size, SCENE_FORMAT, SAMPLE_COUNT, attach);
        let resolved = texture(device, "scene resolved", size, SCENE_FORMAT, 1, sampled);
        let depth = texture(device, "scene depth", size, DEPTH_FORMAT, SAMPLE_COUNT, sampled);
        let ao = texture(device, "ambient occlusion", (width.div_ceil(2), height.div_ceil(2)), AO_FORMAT, 1, sampled);
        let resolved = resolved.create_view(&wgpu::TextureViewDescriptor::default());
        let depth = depth.create_view(&wgpu::TextureViewDescriptor::default());
        let ao = ao.create_view(&wgpu::TextureViewDescriptor::default());
        let composite = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("composite"),
            layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&resolved) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&depth) },
                wgpu::BindGroupEntry { binding: 2, resource: post.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::TextureView(&ao) },
            ],
        });
        let ao_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("ambient occlusion"),
            layout: ao_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&depth) },
                wgpu::BindGroupEntry { binding: 2, resource: post.as_entire_binding() },
            ],
        });
        Targets {
            width,
            height,
            color: color.create_view(&wgpu::TextureViewDescriptor::default()),
            resolved,
            depth,
            ao,
            ao_group,
            composite,
        }
    }

    /// Where the frame goes in the output view: its top-left pixel (the window's 3D area
    /// beside the panels). The output view must hold `origin + size`; (0, 0) by default.
    pub fn set_output_origin(&mut self, origin: (u32, u32)) {
        self.output_origin = origin;
    }

    /// Output size in pixels.
    #[must_use]
    pub fn size(&self) -> (u32, u32) {
        (self.targets.width, self.targets.height)
    }

    /// Format of the views [`Renderer::encode`] draws into.
    #[must_use]
    pub fn output_format(&self) -> wgpu::TextureFormat {
        self.output_format
    }

    /// Width / height.
    #[must_use]
    pub fn aspect(&self) -> f32 {
        #[allow(clippy::cast_precision_loss)]
        let a = self.targets.width as f32 / self.targets.height as f32;
        a
    }

    /// Changes the output size (re-creates the size-dependent targets).
    pub fn resize(&mut self, width: u32, height: u32) -> Result<(), RenderError> {
        Self::check_size(&self.device, width, height)?;
        if (width, height) != self.size() {
            self.targets =
                Self::targets(&self.device, [&self.composite_layout, &self.ao_layout], &self.post, width, height);
            self.pick = None;
        }
        Ok(())
    }

    /// Replaces the scene: new atom, bond and transform buffers sized to it (a topology
    /// change). Position updates should use [`Renderer::write_atoms`] instead. Also records the
    /// scene's bounds for [`Renderer::fit_camera`].
    pub fn set_scene(
        &mut self,
        atoms: &[AtomInstance],
        bonds: &[BondInstance],
        transforms: &[Mat4],
    ) -> Result<(), RenderError> {
        self.scene = Scene::new(
            &self.device,
            &self.queue,
            &self.scene_layout,
            [&self.cull_layout, &self.lists_layout],
            &self.frame,
            atoms,
            bonds,
            transforms,
        )?;
        self.bounds = Bounds::of_atoms(atoms, transforms);
        Ok(())
    }

    /// Overwrites atoms `first..first + atoms.len()` of the atom buffer in place: one
    /// `queue.write_buffer` of that range. Bonds follow, since they read their ends there.
    pub fn write_atoms(&mut self, first: usize, atoms: &[AtomInstance]) -> Result<(), RenderError> {
        self.scene.write_atoms(&self.queue, first, atoms)
    }

    /// Rewrites the per-complex transforms (indexed by `AtomInstance::transform`).
    pub fn set_transforms(&mut self, transforms: &[Mat4]) {
        self.scene.set_transforms(&self.device, &self.queue, &self.scene_layout, &self.frame, transforms);
    }

    /// Bounds of the scene as set (positions written later are not included).
    #[must_use]
    pub fn bounds(&self) -> Option<Bounds> {
        self.bounds
    }

    /// Replaces the recorded bounds (e.g. after a trajectory moved the atoms far).
    pub fn set_bounds(&mut self, bounds: Bounds) {
        self.bounds = Some(bounds);
    }

    /// Points the camera at the whole scene, keeping its orientation.
    pub fn fit_camera(&mut self) {
        let aspect = self.aspect();
        self.camera.fit(self.bounds.unwrap_or_default(), aspect);
    }

    /// Frames the drawn atoms of `atoms` (placed by `transforms`) as tightly as the camera's
    /// orientation allows ([`Camera::fit_spheres`]); the scene bounds become the recorded ones.
    pub fn fit_camera_to(&mut self, atoms: &[AtomInstance], transforms: &[Mat4]) {
        let Some(bounds) = Bounds::of_atoms(atoms, transforms) else { return };
        self.bounds = Some(bounds);
        let aspect = self.aspect();
        let spheres = atoms
            .iter()
            .filter(|a| a.flags & ATOM_FLAG_REPR_MASK != Representation::Hidden as u32)
            .filter(|a| a.position.iter().all(|v| v.is_finite()))
            .map(|a| {
                let m = transforms.get(a.transform as usize).copied().unwrap_or(Mat4::IDENTITY);
                (m.transform_point3(Vec3::from_array(a.position)), a.radius.max(0.0))
            });
        self.camera.fit_spheres(spheres, bounds, aspect);
    }

    /// Atoms, bonds and extra bond cylinders in the scene buffers.
    #[must_use]
    pub fn counts(&self) -> (u32, u32, u32) {
        (self.scene.atom_count(), self.scene.bond_count(), self.scene.extra_count())
    }

    /// The uniforms of the next frame.
    #[must_use]
    pub fn frame_uniforms(&self) -> FrameUniforms {
        let s = &self.settings;
        let (w, h) = self.size();
        #[allow(clippy::cast_precision_loss)]
        let (w, h) = (w as f32, h as f32);
        let depth = self.camera.depth_range();
        let r = self.camera.scene.radius;
        let light = s.light.normalize_or(Vec3::Z);
        let bg = linear3(s.background);
        let sel = linear3(s.selection);
        FrameUniforms {
            view: self.camera.view_matrix().to_cols_array_2d(),
            proj: self.camera.projection(w / h).to_cols_array_2d(),
            viewport: [w, h, 1.0 / w, 1.0 / h],
            light: [light.x, light.y, light.z, s.ambient],
            background: [bg[0], bg[1], bg[2], 1.0],
            fog: [depth.center - 0.3 * r, depth.center + r, s.fog, 2.0 * (self.camera.fov_y * 0.5).tan() / h],
            bond_radius: [s.ball_and_stick_bond_radius, s.stick_radius, s.wire_radius, s.wire_min_pixels],
            selection: [sel[0], sel[1], sel[2], s.selection_weight],
            material: [s.specular, s.shininess, s.edge_darkening, s.edge_exponent],
            shapes: [s.label_lift, s.line_min_pixels, 0.0, 0.0],
            lod: [f32::from(u8::from(s.lod)), s.point_pixels, s.bond_min_pixels, 0.0],
        }
    }

    /// The composite pass's uniforms for the next frame.
    #[must_use]
    pub fn post_uniforms(&self) -> PostUniforms {
        let f = self.frame_uniforms();
        let d = self.camera.depth_range();
        let s = &self.settings;
        PostUniforms {
            depth: [d.near, d.far, s.outline, s.outline_step],
            fog: [f.fog[0], f.fog[1], f.fog[2], s.outline_width],
            output: [if self.output_format.is_srgb() { 0.0 } else { 1.0 }, 0.0, 0.0, 0.0],
            ao: [self.ao_strength(), s.ao_radius.max(0.1), f.proj[0][0], f.proj[1][1]],
        }
    }

    /// The ambient occlusion strength in effect (0 when off or invalid).
    fn ao_strength(&self) -> f32 {
        let a = self.settings.ambient_occlusion;
        if a.is_finite() && self.settings.ao_radius.is_finite() && self.settings.ao_radius > 0.0 {
            a.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    fn write_uniforms(&self) {
        self.write_uniforms_at(self.output_origin);
    }

    fn write_uniforms_at(&self, origin: (u32, u32)) {
        self.queue.write_buffer(&self.frame, 0, bytemuck::bytes_of(&self.frame_uniforms()));
        let mut post = self.post_uniforms();
        #[allow(clippy::cast_precision_loss)]
        {
            post.output[1] = origin.0 as f32;
            post.output[2] = origin.1 as f32;
        }
        self.queue.write_buffer(&self.post, 0, bytemuck::bytes_of(&post));
    }

    /// Whether this frame culls (level of detail on and something to cull).
    fn culls(&self) -> bool {
        self.settings.lod && self.scene.atom_count() > 0
    }

    /// Records the cull pass: resets the indirect arguments, then one dispatch per list.
    fn encode_cull(&self, encoder: &mut wgpu::CommandEncoder) {
        let lists = self.scene.lists();
        encoder.copy_buffer_to_buffer(&lists.reset, 0, &lists.args, 0, 4 * DRAW_ARGS_STRIDE);
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("cull"), timestamp_writes: None });
        pass.set_bind_group(0, self.scene.bind_group(), &[]);
        pass.set_bind_group(1, &lists.cull_group, &[]);
        let lod = &self.pipelines.lod;
        for (pipeline, n) in [
            (&lod.cull_atoms, self.scene.atom_count()),
            (&lod.cull_bonds, self.scene.bond_count()),
            (&lod.cull_extras, self.scene.extra_count()),
        ] {
            if n > 0 {
                let (x, y) = dispatch_size(n);
                pass.set_pipeline(pipeline);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
    }

    fn draw_listed(&self, pass: &mut wgpu::RenderPass<'_>, pick: bool) {
        let l = &self.pipelines.lod;
        let lists = self.scene.lists();
        pass.set_bind_group(0, self.scene.bind_group(), &[]);
        pass.set_bind_group(1, &lists.draw_group, &[]);
        let draws = if pick {
            [
                (&l.pick_atoms, DRAW_ATOMS),
                (&l.pick_points, DRAW_POINTS),
                (&l.pick_bonds, DRAW_BONDS),
                (&l.pick_extras, DRAW_EXTRAS),
            ]
        } else {
            [(&l.atoms, DRAW_ATOMS), (&l.points, DRAW_POINTS), (&l.bonds, DRAW_BONDS), (&l.extras, DRAW_EXTRAS)]
        };
        for (pipeline, k) in draws {
            pass.set_pipeline(pipeline);
            pass.draw_indirect(&lists.args, k as u64 * DRAW_ARGS_STRIDE);
        }
    }

    fn draw_scene(&self, pass: &mut wgpu::RenderPass<'_>, pick: bool) {
        if self.culls() {
            self.draw_listed(pass, pick);
            self.draw_shapes(pass, pick);
            return;
        }
        let p = &self.pipelines;
        let (atoms, bonds, extras) = if pick {
            (&p.pick_atoms, &p.pick_bonds, &p.pick_bond_extras)
        } else {
            (&p.atoms, &p.bonds, &p.bond_extras)
        };
        pass.set_bind_group(0, self.scene.bind_group(), &[]);
        pass.set_pipeline(atoms);
        pass.draw(0..4, 0..self.scene.atom_count());
        pass.set_pipeline(bonds);
        pass.draw(0..4, 0..self.scene.bond_count());
        if self.scene.extra_count() > 0 {
            pass.set_pipeline(extras);
            pass.draw(0..4, 0..self.scene.extra_count());
        }
        self.draw_shapes(pass, pick);
    }

    fn draw_shapes(&self, pass: &mut wgpu::RenderPass<'_>, pick: bool) {
        let p = &self.pipelines;
        let sh = &self.shapes;
        let c = sh.counts();
        if c.spheres + c.lines + c.meshes + c.glyphs == 0 {
            return;
        }
        pass.set_bind_group(1, sh.bind_group(), &[]);
        if c.spheres > 0 {
            pass.set_pipeline(if pick { &p.pick_shape_spheres } else { &p.shape_spheres });
            pass.draw(0..4, 0..c.spheres);
        }
        if c.lines > 0 {
            pass.set_pipeline(if pick { &p.pick_shape_lines } else { &p.shape_lines });
            pass.draw(0..4, 0..c.lines);
        }
        if c.meshes > 0 {
            pass.set_pipeline(if pick { &p.pick_meshes } else { &p.meshes });
            for (instance, bind_group, indices, count) in sh.mesh_draws() {
                if count > 0 {
                    pass.set_bind_group(2, bind_group, &[]);
                    pass.set_index_buffer(indices.slice(..), wgpu::IndexFormat::Uint32);
                    pass.draw_indexed(0..count, 0, instance..instance + 1);
                }
            }
        }
        // Labels last: blended over everything opaque.
        if c.glyphs > 0 {
            pass.set_pipeline(if pick { &p.pick_labels } else { &p.labels });
            pass.draw(0..4, 0..c.glyphs);
        }
    }

    /// Records a frame into `encoder`, drawing into `output` (a view of the output format and
    /// size). Uniforms are written through the queue, so they take effect at the next submit.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, output: &wgpu::TextureView) {
        self.encode_at(encoder, output, self.output_origin);
    }

    fn encode_at(&self, encoder: &mut wgpu::CommandEncoder, output: &wgpu::TextureView, origin: (u32, u32)) {
        self.write_uniforms_at(origin);
        if self.culls() {
            self.encode_cull(encoder);
        }
        let bg = linear3(self.settings.background);
        let t = &self.targets;
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("scene"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &t.color,
                    depth_slice: None,
                    resolve_target: Some(&t.resolved),
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color {
                            r: f64::from(bg[0]),
                            g: f64::from(bg[1]),
                            b: f64::from(bg[2]),
                            a: 1.0,
                        }),
                        store: wgpu::StoreOp::Discard,
                    },
                })],
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: &t.depth,
                    depth_ops: Some(wgpu::Operations { load: wgpu::LoadOp::Clear(1.0), store: wgpu::StoreOp::Store }),
                    stencil_ops: None,
                }),
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            self.draw_scene(&mut pass, false);
        }
        if self.ao_strength() > 0.0 {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("ambient occlusion"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &t.ao,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::WHITE),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&self.pipelines.ao);
            pass.set_bind_group(0, &t.ao_group, &[]);
            pass.draw(0..3, 0..1);
        }
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("composite"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: output,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::BLACK), store: wgpu::StoreOp::Store },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        let (x, y) = origin;
        #[allow(clippy::cast_precision_loss)]
        pass.set_viewport(x as f32, y as f32, t.width as f32, t.height as f32, 0.0, 1.0);
        pass.set_pipeline(&self.pipelines.composite);
        pass.set_bind_group(0, &self.targets.composite, &[]);
        pass.draw(0..3, 0..1);
    }

    /// Encodes and submits a frame into `output`.
    pub fn render(&self, output: &wgpu::TextureView) -> wgpu::SubmissionIndex {
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        self.encode(&mut encoder, output);
        self.queue.submit([encoder.finish()])
    }

    /// Renders a frame into an offscreen texture of the output format and reads it back as an
    /// sRGB RGBA image: the window's screenshot (the scene only, without egui). The readback is
    /// the headless path's (`readback::read_region`); BGRA formats are swizzled.
    pub fn screenshot(&self) -> Result<RgbaImage, RenderError> {
        use wgpu::TextureFormat as F;
        let swap = match self.output_format {
            F::Bgra8Unorm | F::Bgra8UnormSrgb => true,
            F::Rgba8Unorm | F::Rgba8UnormSrgb => false,
            other => return Err(RenderError::Readback(format!("screenshots of {other:?} surfaces are not supported"))),
        };
        let (width, height) = self.size();
        let usage = wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC;
        let target = texture(&self.device, "screenshot", (width, height), self.output_format, 1, usage);
        let view = target.create_view(&wgpu::TextureViewDescriptor::default());
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("screenshot readback"),
            size: u64::from(padded_row(width, 4)) * u64::from(height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("screenshot") });
        self.encode_at(&mut encoder, &view, (0, 0));
        let region = Region { origin: (0, 0), size: (width, height), bytes_per_texel: 4 };
        let mut pixels = read_region(&self.device, &self.queue, encoder, &target, region, &buffer)?;
        for p in pixels.chunks_exact_mut(4) {
            if swap {
                p.swap(0, 2);
            }
            p[3] = 255;
        }
        Ok(RgbaImage { width, height, pixels })
    }

    /// The pick id drawn at pixel (x, y) (origin top-left) with the current camera: the atom
    /// there, or the atom owning the half of the bond there; `None` for background or outside
    /// the viewport. Renders the id pass for that one pixel and waits for it.
    pub fn pick(&mut self, x: u32, y: u32) -> Result<Option<u32>, RenderError> {
        let (w, h) = self.size();
        if x >= w || y >= h {
            return Ok(None);
        }
        if self.pick.as_ref().is_none_or(|p| (p.width, p.height) != (w, h)) {
            let usage = wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC;
            let ids = texture(&self.device, "pick ids", (w, h), PICK_FORMAT, 1, usage);
            let depth =
                texture(&self.device, "pick depth", (w, h), DEPTH_FORMAT, 1, wgpu::TextureUsages::RENDER_ATTACHMENT);
            self.pick = Some(PickTargets {
                width: w,
                height: h,
                ids_view: ids.create_view(&wgpu::TextureViewDescriptor::default()),
                ids,
                depth: depth.create_view(&wgpu::TextureViewDescriptor::default()),
            });
        }
        let Some(p) = self.pick.as_ref() else { return Ok(None) };
        self.write_uniforms();
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("pick") });
        if self.culls() {
            self.encode_cull(&mut encoder);
        }
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("pick"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &p.ids_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: Some(wgpu::RenderPassDepthStencilAttachment {
                    view: &p.depth,
                    depth_ops: Some(wgpu::Operations { load: wgpu::LoadOp::Clear(1.0), store: wgpu::StoreOp::Discard }),
                    stencil_ops: None,
                }),
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_scissor_rect(x, y, 1, 1);
            self.draw_scene(&mut pass, true);
        }
        let region = Region { origin: (x, y), size: (1, 1), bytes_per_texel: 4 };
        let bytes = read_region(&self.device, &self.queue, encoder, &p.ids, region, &self.pick_readback)?;
        let id = bytes.get(..4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes);
        Ok((id != 0).then_some(id))
    }

    /// What the cull pass kept in the last frame or pick (level of detail on), read back from
    /// the indirect arguments; waits for the GPU. With level of detail off, every instance.
    pub fn lod_counts(&self) -> Result<LodCounts, RenderError> {
        if !self.culls() {
            let (atoms, bonds, extras) = self.counts();
            return Ok(LodCounts { atoms, points: 0, bonds, extras });
        }
        let bytes = 4 * DRAW_ARGS_STRIDE;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("indirect draws readback"),
            size: bytes,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("lod counts") });
        encoder.copy_buffer_to_buffer(&self.scene.lists().args, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let words = super::readback::read_buffer(&self.device, &staging)?;
        let count = |k: usize| words.get(4 * k + 1).copied().unwrap_or(0);
        Ok(LodCounts {
            atoms: count(DRAW_ATOMS),
            points: count(DRAW_POINTS),
            bonds: count(DRAW_BONDS),
            extras: count(DRAW_EXTRAS),
        })
    }

    /// The plugin shapes drawn with the scene.
    #[must_use]
    pub fn shapes(&self) -> &ShapeLayers {
        &self.shapes
    }

    /// The plugin shapes, to set or update ([`ShapeLayers::set`], [`ShapeLayers::update`],
    /// [`ShapeLayers::set_anchor_map`]).
    pub fn shapes_mut(&mut self) -> &mut ShapeLayers {
        &mut self.shapes
    }

    /// The device this renderer draws with.
    #[must_use]
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// Its queue.
    #[must_use]
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
}

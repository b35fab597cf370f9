//! The wgpu renderer: atoms as ray-cast sphere impostors, bonds as cylinder impostors, lit
//! with Blinn-Phong, depth fog and outlines, 4× MSAA, an id buffer for picking, and headless
//! rendering to RGBA images. `docs/renderer.md` describes the pipeline.
//!
//! - [`Gpu`]: instance, adapter, device and queue ([`Gpu::headless`] without a window).
//! - [`Renderer`]: pipelines, scene buffers and render targets; draws into any texture view.
//! - [`Headless`]: a renderer with an offscreen RGBA8 target and readback ([`render_view`] for
//!   one image of one model).
//! - [`Camera`]: orbit, pan, zoom and fit; CPU only.

pub mod camera;
pub mod gpu;
pub mod headless;
pub mod image;
pub mod labels;
mod readback;
pub mod renderer;
pub mod scene;
pub mod shaders;
pub mod shapes;
pub mod uniforms;

pub use camera::{Bounds, Camera};
pub use gpu::Gpu;
pub use headless::{Headless, render_view};
pub use image::{ImageDiff, ImageError, RgbaImage};
pub use renderer::{LodCounts, RenderSettings, Renderer};
pub use shapes::{AnchorMap, ComplexSlot, ShapeCounts, ShapeEdits, ShapeLayers, ShapeUpload};
pub use uniforms::{FrameUniforms, PostUniforms};

/// What can go wrong setting up or using the renderer.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// No GPU adapter (not even a software one) could be found.
    #[error(
        "no GPU adapter found ({0}); on Debian/Ubuntu `apt-get install mesa-vulkan-drivers libvulkan1` provides a \
         software one (lavapipe), and WGPU_BACKEND=vulkan|gl picks a backend"
    )]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("GPU device: {0}")]
    Device(#[from] wgpu::RequestDeviceError),
    /// A shader or pipeline failed validation.
    #[error("GPU pipeline setup: {0}")]
    Pipeline(String),
    /// A buffer would exceed what the device allows.
    #[error("{what} needs {bytes} bytes, the GPU allows {limit}")]
    TooLarge {
        /// Which buffer.
        what: &'static str,
        /// Bytes needed.
        bytes: u64,
        /// The device's limit.
        limit: u64,
    },
    /// A partial write past the end of a buffer.
    #[error("atoms {first}..{} are outside the atom buffer of {len}", first.saturating_add(*count))]
    OutOfRange {
        /// First record written.
        first: usize,
        /// Records written.
        count: usize,
        /// Records in the buffer.
        len: usize,
    },
    /// A render target size the device cannot hold.
    #[error("image size {width}x{height} is not supported (1..={max} per side)")]
    BadSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Largest side the device allows.
        max: u32,
    },
    /// Reading results back from the GPU failed.
    #[error("GPU readback: {0}")]
    Readback(String),
    /// Shapes were sent for a stream the renderer does not hold.
    #[error("no shape stream {0} in the renderer")]
    NoShapeStream(u32),
    /// Writing into a mapped GPU buffer failed.
    #[error("GPU upload: {0}")]
    Upload(String),
    /// A mesh record failed to decode.
    #[error("mesh: {0}")]
    Mesh(molstream_engine::codec::CodecError),
    /// Encoding or decoding an image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl RenderError {
    pub(crate) fn no_adapter(e: &wgpu::RequestAdapterError) -> Self {
        Self::NoAdapter(e.to_string())
    }
}

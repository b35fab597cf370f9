//! Rendering without a window: an offscreen RGBA8 (sRGB) target and readback to an image.

use glam::Mat4;
use molstream_engine::ModelView;
use molstream_engine::gpu::StructureBuffers;

use super::readback::{Region, padded_row, read_region};
use super::renderer::Renderer;
use super::{Gpu, RenderError, RgbaImage};

/// Format of the offscreen target: images come back as sRGB RGBA8.
pub const OUTPUT_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8UnormSrgb;

/// A renderer with its own device and an offscreen target.
#[derive(Debug)]
pub struct Headless {
    /// The device and adapter.
    pub gpu: Gpu,
    /// The renderer (camera, settings and scene are set through it).
    pub renderer: Renderer,
    target: wgpu::Texture,
    view: wgpu::TextureView,
    readback: wgpu::Buffer,
}

impl Headless {
    /// Opens a headless device ([`Gpu::headless`]) and a `width × height` target.
    pub fn new(width: u32, height: u32) -> Result<Self, RenderError> {
        Self::with_gpu(Gpu::headless()?, width, height)
    }

    /// A `width × height` offscreen renderer on an existing device.
    pub fn with_gpu(gpu: Gpu, width: u32, height: u32) -> Result<Self, RenderError> {
        let renderer = Renderer::new(&gpu.device, &gpu.queue, OUTPUT_FORMAT, width, height)?;
        let (target, view, readback) = Self::target(&gpu.device, width, height);
        Ok(Self { gpu, renderer, target, view, readback })
    }

    fn target(device: &wgpu::Device, width: u32, height: u32) -> (wgpu::Texture, wgpu::TextureView, wgpu::Buffer) {
        let target = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("offscreen"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: OUTPUT_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = target.create_view(&wgpu::TextureViewDescriptor::default());
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("offscreen readback"),
            size: u64::from(padded_row(width, 4)) * u64::from(height),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        (target, view, readback)
    }

    /// Changes the image size.
    pub fn resize(&mut self, width: u32, height: u32) -> Result<(), RenderError> {
        self.renderer.resize(width, height)?;
        (self.target, self.view, self.readback) = Self::target(&self.gpu.device, width, height);
        Ok(())
    }

    /// Uploads one model as the whole scene (identity transform) and fits the camera to it.
    pub fn show(&mut self, view: ModelView<'_>) -> Result<(), RenderError> {
        let buffers = StructureBuffers::build(view);
        self.renderer.set_scene(&buffers.atoms, &buffers.bonds, &[Mat4::IDENTITY])?;
        self.renderer.fit_camera_to(&buffers.atoms, &[Mat4::IDENTITY]);
        Ok(())
    }

    /// Renders a frame and waits until the GPU has finished it, without reading it back (what
    /// a benchmark times).
    pub fn render_frame(&mut self) -> Result<(), RenderError> {
        let index = self.renderer.render(&self.view);
        self.gpu
            .device
            .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
            .map(|_| ())
            .map_err(|e| RenderError::Readback(e.to_string()))
    }

    /// Renders a frame and reads it back.
    pub fn render_image(&mut self) -> Result<RgbaImage, RenderError> {
        let mut encoder =
            self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("offscreen frame") });
        self.renderer.encode(&mut encoder, &self.view);
        let (width, height) = self.renderer.size();
        let region = Region { origin: (0, 0), size: (width, height), bytes_per_texel: 4 };
        let pixels = read_region(&self.gpu.device, &self.gpu.queue, encoder, &self.target, region, &self.readback)?;
        Ok(RgbaImage { width, height, pixels })
    }

    /// The pick id at pixel (x, y) (origin top-left); see [`Renderer::pick`].
    pub fn pick(&mut self, x: u32, y: u32) -> Result<Option<u32>, RenderError> {
        self.renderer.pick(x, y)
    }
}

/// Renders one model, fitted to the view, into a `width × height` image on a new headless
/// device. For many images, keep a [`Headless`] instead.
pub fn render_view(view: ModelView<'_>, width: u32, height: u32) -> Result<RgbaImage, RenderError> {
    let mut h = Headless::new(width, height)?;
    h.show(view)?;
    h.render_image()
}

//! The wgpu instance, adapter, device and queue the renderer draws with.

use super::RenderError;

/// A GPU device and its queue, with what was chosen.
#[derive(Clone, Debug)]
pub struct Gpu {
    /// The wgpu instance (kept for creating surfaces).
    pub instance: wgpu::Instance,
    /// The adapter the device was created on.
    pub adapter: wgpu::Adapter,
    /// The logical device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Name, backend and type of the adapter.
    pub info: wgpu::AdapterInfo,
}

/// Backends tried when `WGPU_BACKEND` is not set: Vulkan, Metal and DX12. GL through EGL lacks
/// features the renderer relies on; it is used only when asked for (`WGPU_BACKEND=gl`) or when
/// no primary backend has an adapter.
pub const DEFAULT_BACKENDS: wgpu::Backends = wgpu::Backends::PRIMARY;

impl Gpu {
    /// A device for rendering without a window. Honours `WGPU_BACKEND` (`vulkan`, `gl`, …),
    /// `WGPU_ADAPTER_NAME` and `WGPU_POWER_PREF`; see [`DEFAULT_BACKENDS`] otherwise.
    pub fn headless() -> Result<Self, RenderError> {
        pollster::block_on(Self::new(None))
    }

    /// A device able to present to `surface` when given (the surface must come from
    /// `instance`); `instance` defaults to a headless one built from the environment.
    pub async fn new(with: Option<(wgpu::Instance, &wgpu::Surface<'_>)>) -> Result<Self, RenderError> {
        let explicit = std::env::var_os("WGPU_BACKEND").is_some();
        let (instance, surface) = match with {
            Some((instance, surface)) => (instance, Some(surface)),
            None => {
                let backends = if explicit { wgpu::Backends::all() } else { DEFAULT_BACKENDS };
                (Self::headless_instance(backends), None)
            }
        };
        let adapter = match Self::adapter(&instance, surface).await {
            Ok(a) => a,
            Err(first) if !explicit && surface.is_none() => {
                tracing::warn!("no Vulkan/Metal/DX12 adapter ({first}); trying every backend");
                let all = Self::headless_instance(wgpu::Backends::all());
                let adapter = Self::adapter(&all, None).await.map_err(|e| RenderError::no_adapter(&e))?;
                return Self::open(all, adapter).await;
            }
            Err(e) => return Err(RenderError::no_adapter(&e)),
        };
        Self::open(instance, adapter).await
    }

    fn headless_instance(backends: wgpu::Backends) -> wgpu::Instance {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        wgpu::Instance::new(desc.with_env())
    }

    async fn adapter(
        instance: &wgpu::Instance,
        surface: Option<&wgpu::Surface<'_>>,
    ) -> Result<wgpu::Adapter, wgpu::RequestAdapterError> {
        if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
            let name = name.to_lowercase();
            for a in instance.enumerate_adapters(wgpu::Backends::all()).await {
                if a.get_info().name.to_lowercase().contains(&name) {
                    return Ok(a);
                }
            }
        }
        let options = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
            force_fallback_adapter: false,
            compatible_surface: surface,
            apply_limit_buckets: false,
        };
        instance.request_adapter(&options).await
    }

    async fn open(instance: wgpu::Instance, adapter: wgpu::Adapter) -> Result<Self, RenderError> {
        let info = adapter.get_info();
        // Everything the adapter allows: large structures need big storage buffers.
        let desc = wgpu::DeviceDescriptor {
            label: Some("molstream"),
            required_features: wgpu::Features::empty(),
            required_limits: adapter.limits(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = adapter.request_device(&desc).await?;
        tracing::info!(adapter = %info.name, backend = ?info.backend, kind = ?info.device_type, "GPU");
        Ok(Self { instance, adapter, device, queue, info })
    }

    /// "name (backend, type)", as benchmarks and logs report the adapter.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }
}

//! `molstream view`: the desktop window, winit + egui over the renderer.
//!
//! The structures given on the command line (or the bundled one) and, in a session, the room's
//! complexes share GPU buffers ([`SceneData`]). In a session ([`ViewOptions::session`]: an
//! embedded relay with the bundled plugins, what `molstream` without arguments opens, or an
//! external relay) the room's scene drives the renderer through [`crate::session`] (reports
//! from [`crate::live`] arrive as [`AppEvent::Session`]); the plugin list, integrations and
//! notifications are in the session panel ([`crate::ui::plugins`]), and clicking an atom of a
//! room complex tells the room's plugins (`select_atoms`). The panels ([`crate::ui`]): file open by path and by drag and drop (loaded
//! on a worker thread through the engine), global style, display settings (ambient occlusion,
//! fog, outlines, level of detail), the workspace tree (visibility and representation per
//! complex, chain and residue), the stats panel (frame time, upload rate, decode time plotted
//! over time), screenshots, and toasts.
//!
//! Input: left drag orbits; right or middle drag, or shift + left drag, pans; the wheel zooms;
//! a click (press and release without moving) picks the atom under the cursor and toggles its
//! selection; `F` fits the view, `R` resets the orientation, `F12` saves a screenshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use glam::{Quat, Vec2};
use molstream_engine::gpu::AtomInstance;
use winit::application::ApplicationHandler;
use winit::dpi::{LogicalSize, PhysicalPosition, PhysicalSize};
use winit::event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::keyboard::{Key, ModifiersState, NamedKey};
use winit::window::{Window, WindowId};

use crate::live::{LiveOptions, LiveSession, Report, Target};
use crate::render::gpu::DEFAULT_BACKENDS;
use crate::render::{Gpu, RenderError, Renderer};
use crate::session::{Command, GpuWork, ShapeWork};
use crate::ui::{Level, Panels, SessionUi, UiAction};
use crate::workspace::DocSource;
pub use crate::workspace::{Document, LoadedFile, SceneData, load_documents};

/// What `molstream view` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    /// Structure files; the bundled structure when empty.
    pub files: Vec<PathBuf>,
    /// Close the window after this many frames (smoke tests under Xvfb).
    pub exit_after_frames: Option<u64>,
    /// Where screenshots are saved (the current directory when `None`).
    pub screenshot_dir: Option<PathBuf>,
    /// Save a screenshot when this frame is drawn (tests of the screenshot path).
    pub screenshot_at_frame: Option<u64>,
    /// Join a room: the files (if any) are shown next to the room's complexes, and the
    /// bundled structure is not loaded locally.
    pub session: Option<LiveOptions>,
}

/// Events the event loop receives from worker threads.
#[derive(Debug)]
pub enum AppEvent {
    /// A file finished loading (or failed).
    Loaded {
        /// The file asked for.
        path: PathBuf,
        /// The structure, or the error as one line.
        result: Result<LoadedFile, String>,
    },
    /// News from the session.
    Session(Report),
}

/// The one-line error when no window can be opened.
pub const NO_DISPLAY: &str = "cannot open a window (no display: DISPLAY and WAYLAND_DISPLAY are unset or \
     unreachable); `molstream render FILE --out OUT.png` renders a structure to an image without one";

/// Opens the window and runs until it is closed.
pub fn run(options: ViewOptions) -> anyhow::Result<()> {
    let scene = if options.session.is_some() && options.files.is_empty() {
        crate::workspace::SceneData::new(Vec::new())
    } else {
        load_documents(&options.files)?
    };
    let event_loop = EventLoop::<AppEvent>::with_user_event().build().map_err(|e| {
        let unset = |v| std::env::var_os(v).is_none_or(|d| d.is_empty());
        if unset("DISPLAY") && unset("WAYLAND_DISPLAY") {
            anyhow::anyhow!("{NO_DISPLAY}")
        } else {
            anyhow::anyhow!("{NO_DISPLAY} ({e})")
        }
    })?;
    event_loop.set_control_flow(ControlFlow::Wait);
    let proxy = event_loop.create_proxy();
    let now = Instant::now();
    let mut panels = Panels::new(now);
    let live = match &options.session {
        Some(opts) => {
            let target = match &opts.target {
                Target::Embedded => "the embedded relay".to_owned(),
                Target::Relay { addr, .. } => addr.to_string(),
            };
            panels.session = Some(SessionUi::new(target));
            let sink = proxy.clone();
            // The loop is gone when the window closed meanwhile: nothing to tell.
            let live = LiveSession::start(opts.clone(), move |r| {
                let _ = sink.send_event(AppEvent::Session(r));
            })?;
            Some(live)
        }
        None => None,
    };
    let mut app = App {
        options,
        scene,
        window: None,
        error: None,
        frames: 0,
        panels,
        proxy,
        live,
        pending_shapes: Vec::new(),
        frames_applied: 0,
    };
    event_loop.run_app(&mut app)?;
    match app.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Mouse state between events.
#[derive(Debug, Default)]
struct Pointer {
    position: Vec2,
    pressed: Option<(MouseButton, Vec2)>,
    dragged: bool,
    modifiers: ModifiersState,
}

/// Everything that exists once the window does.
struct WindowState {
    window: Arc<Window>,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    gpu: Gpu,
    renderer: Renderer,
    egui_ctx: egui::Context,
    egui_state: egui_winit::State,
    egui_renderer: egui_wgpu::Renderer,
    pointer: Pointer,
    /// Top-left pixel of the 3D view (the area the panels leave).
    origin: (u32, u32),
    /// Whether the camera was fitted to that area once it was known.
    fitted: bool,
    /// When egui wants the next frame (a delayed repaint).
    repaint_at: Option<Instant>,
}

struct App {
    options: ViewOptions,
    scene: SceneData,
    window: Option<WindowState>,
    error: Option<anyhow::Error>,
    frames: u64,
    panels: Panels,
    proxy: EventLoopProxy<AppEvent>,
    /// The session, when the window is in a room.
    live: Option<LiveSession>,
    /// Shape work that arrived before the window existed.
    pending_shapes: Vec<ShapeWork>,
    /// Stream frames the room's scene had applied at the last report.
    frames_applied: u64,
}

fn physical(size: PhysicalSize<u32>) -> (u32, u32) {
    (size.width.max(1), size.height.max(1))
}

fn atom_bytes(atoms: &[AtomInstance]) -> u64 {
    std::mem::size_of_val(atoms) as u64
}

impl WindowState {
    fn new(event_loop: &ActiveEventLoop, scene: &SceneData) -> anyhow::Result<Self> {
        let attributes =
            Window::default_attributes().with_title("molstream").with_inner_size(LogicalSize::new(1280, 800));
        let window = Arc::new(event_loop.create_window(attributes)?);
        let (gpu, surface) = Self::open_gpu(event_loop, &window)?;
        let (w, h) = physical(window.inner_size());
        let mut config =
            surface.get_default_config(&gpu.adapter, w, h).context("the surface cannot be used with this adapter")?;
        config.present_mode = wgpu::PresentMode::AutoVsync;
        surface.configure(&gpu.device, &config);
        let mut renderer = Renderer::new(&gpu.device, &gpu.queue, config.format, w, h)?;
        renderer.set_scene(&scene.atoms, &scene.bonds, &scene.transforms)?;
        renderer.shapes_mut().set_anchor_map(scene.anchor_map());
        renderer.camera.rotation = Quat::IDENTITY;
        renderer.fit_camera_to(&scene.atoms, &scene.transforms);
        let egui_ctx = egui::Context::default();
        let max_texture = gpu.device.limits().max_texture_dimension_2d as usize;
        #[allow(clippy::cast_possible_truncation)]
        let scale = window.scale_factor() as f32;
        renderer.shapes_mut().set_pixels_per_point(scale);
        let egui_state = egui_winit::State::new(
            egui_ctx.clone(),
            egui::ViewportId::ROOT,
            &window,
            Some(scale),
            window.theme(),
            Some(max_texture),
        );
        let egui_renderer = egui_wgpu::Renderer::new(&gpu.device, config.format, egui_wgpu::RendererOptions::default());
        tracing::info!(adapter = %gpu.describe(), format = ?config.format, "window");
        Ok(Self {
            window,
            surface,
            config,
            gpu,
            renderer,
            egui_ctx,
            egui_state,
            egui_renderer,
            pointer: Pointer::default(),
            origin: (0, 0),
            fitted: false,
            repaint_at: None,
        })
    }

    /// A device able to present to the window: Vulkan/Metal/DX12 first (or `WGPU_BACKEND`),
    /// then any backend.
    fn open_gpu(event_loop: &ActiveEventLoop, window: &Arc<Window>) -> anyhow::Result<(Gpu, wgpu::Surface<'static>)> {
        let mut last = None;
        for backends in [DEFAULT_BACKENDS, wgpu::Backends::all()] {
            let mut desc =
                wgpu::InstanceDescriptor::new_with_display_handle(Box::new(event_loop.owned_display_handle()));
            desc.backends = backends;
            let instance = wgpu::Instance::new(desc.with_env());
            let surface = instance.create_surface(window.clone())?;
            match pollster::block_on(Gpu::new(Some((instance, &surface)))) {
                Ok(gpu) => return Ok((gpu, surface)),
                Err(e @ RenderError::NoAdapter(_)) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map_or_else(|| anyhow::anyhow!("no GPU adapter"), anyhow::Error::from))
    }

    fn resize(&mut self, size: PhysicalSize<u32>) -> anyhow::Result<()> {
        let (w, h) = physical(size);
        self.config.width = w;
        self.config.height = h;
        self.surface.configure(&self.gpu.device, &self.config);
        self.renderer.resize(w, h)?;
        Ok(())
    }

    /// Sizes the renderer to the area the panels leave (`central`, points) and draws it there.
    fn place_view(&mut self, central: egui::Rect, pixels_per_point: f32, scene: &SceneData) -> anyhow::Result<()> {
        if !central.is_positive() {
            return Ok(());
        }
        let r = central * pixels_per_point;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (x, y) = (r.min.x.round().max(0.0) as u32, r.min.y.round().max(0.0) as u32);
        let (sw, sh) = (self.config.width, self.config.height);
        if x >= sw || y >= sh {
            return Ok(());
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (w, h) = ((r.width().round() as u32).clamp(1, sw - x), (r.height().round() as u32).clamp(1, sh - y));
        if (w, h) != self.renderer.size() {
            self.renderer.resize(w, h)?;
        }
        self.origin = (x, y);
        self.renderer.set_output_origin(self.origin);
        if !self.fitted {
            self.fitted = true;
            self.renderer.fit_camera_to(&scene.atoms, &scene.transforms);
        }
        Ok(())
    }

    /// Writes atoms `range` of the scene to the GPU and counts the bytes.
    fn write_atoms(
        &mut self,
        scene: &SceneData,
        range: std::ops::Range<usize>,
        panels: &mut Panels,
    ) -> anyhow::Result<()> {
        let Some(atoms) = scene.atoms.get(range.clone()) else { return Ok(()) };
        self.renderer.write_atoms(range.start, atoms)?;
        panels.stats.record_upload(Instant::now(), atom_bytes(atoms));
        Ok(())
    }

    /// Draws one frame: the scene, then egui on top. Returns the panels' actions.
    fn redraw(&mut self, scene: &SceneData, panels: &mut Panels) -> anyhow::Result<Vec<UiAction>> {
        let t = Instant::now();
        let raw = self.egui_state.take_egui_input(&self.window);
        let ctx = self.egui_ctx.clone();
        let mut actions = Vec::new();
        let out = ctx.run_ui(raw, |ui| actions = panels.show(ui, scene, &mut self.renderer.settings, t));
        self.egui_state.handle_platform_output(&self.window, out.platform_output);
        self.place_view(panels.central, out.pixels_per_point, scene)?;
        let delay = out.viewport_output.get(&egui::ViewportId::ROOT).map(|v| v.repaint_delay);
        self.repaint_at = None;
        match delay {
            Some(d) if d.is_zero() => self.window.request_redraw(),
            // E.g. toasts that expire: the event loop wakes up then (`about_to_wait`).
            Some(d) if d < std::time::Duration::from_secs(3600) => self.repaint_at = Some(t + d),
            _ => {}
        }
        let jobs = self.egui_ctx.tessellate(out.shapes, out.pixels_per_point);
        // egui asserts that every texture delta is applied: set them now, free them after
        // painting (or now, when this frame is skipped).
        let mut textures = out.textures_delta;
        for (id, deltas) in textures.set.drain() {
            for delta in &deltas {
                self.egui_renderer.update_texture(&self.gpu.device, &self.gpu.queue, id, delta);
            }
        }
        let freed: Vec<egui::TextureId> = textures.free.drain().collect();
        let frame = self.surface.get_current_texture();
        let frame = match frame {
            wgpu::CurrentSurfaceTexture::Success(f) | wgpu::CurrentSurfaceTexture::Suboptimal(f) => f,
            skipped => {
                for id in &freed {
                    self.egui_renderer.free_texture(id);
                }
                return match skipped {
                    wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                        self.surface.configure(&self.gpu.device, &self.config);
                        self.window.request_redraw();
                        Ok(actions)
                    }
                    wgpu::CurrentSurfaceTexture::Validation => {
                        Err(anyhow::anyhow!("the surface texture failed validation"))
                    }
                    _ => Ok(actions),
                };
            }
        };
        let view = frame.texture.create_view(&wgpu::TextureViewDescriptor::default());
        let device = &self.gpu.device;
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("window frame") });
        self.renderer.encode(&mut encoder, &view);
        let screen = egui_wgpu::ScreenDescriptor {
            size_in_pixels: [self.config.width, self.config.height],
            pixels_per_point: out.pixels_per_point,
        };
        let extra = self.egui_renderer.update_buffers(device, &self.gpu.queue, &mut encoder, &jobs, &screen);
        {
            let mut pass = encoder
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("egui"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: &view,
                        depth_slice: None,
                        resolve_target: None,
                        ops: wgpu::Operations { load: wgpu::LoadOp::Load, store: wgpu::StoreOp::Store },
                    })],
                    depth_stencil_attachment: None,
                    timestamp_writes: None,
                    occlusion_query_set: None,
                    multiview_mask: None,
                })
                .forget_lifetime();
            self.egui_renderer.render(&mut pass, &jobs, &screen);
        }
        self.gpu.queue.submit(extra.into_iter().chain([encoder.finish()]));
        self.window.pre_present_notify();
        self.gpu.queue.present(frame);
        for id in &freed {
            self.egui_renderer.free_texture(id);
        }
        panels.stats.record_frame(Instant::now(), t.elapsed().as_secs_f64() * 1e3);
        Ok(actions)
    }

    /// Camera, picking and key input not taken by egui; returns the action asked for, if any,
    /// and whether to redraw.
    fn input(
        &mut self,
        event: &WindowEvent,
        scene: &mut SceneData,
        panels: &mut Panels,
    ) -> anyhow::Result<(Option<UiAction>, bool)> {
        #[allow(clippy::cast_precision_loss)]
        let height = self.renderer.size().1 as f32;
        match event {
            WindowEvent::ModifiersChanged(m) => self.pointer.modifiers = m.state(),
            WindowEvent::CursorMoved { position: PhysicalPosition { x, y }, .. } => {
                #[allow(clippy::cast_possible_truncation)]
                let p = Vec2::new(*x as f32, *y as f32);
                let delta = p - self.pointer.position;
                self.pointer.position = p;
                let Some((button, start)) = self.pointer.pressed else { return Ok((None, false)) };
                if p.distance(start) > 3.0 {
                    self.pointer.dragged = true;
                }
                let pan = button == MouseButton::Right
                    || button == MouseButton::Middle
                    || (button == MouseButton::Left && self.pointer.modifiers.shift_key());
                if pan {
                    self.renderer.camera.pan_pixels(delta, height);
                } else if button == MouseButton::Left {
                    self.renderer.camera.orbit_pixels(delta, height);
                }
                return Ok((None, true));
            }
            WindowEvent::MouseInput { state: ElementState::Pressed, button, .. } => {
                self.pointer.pressed = Some((*button, self.pointer.position));
                self.pointer.dragged = false;
            }
            WindowEvent::MouseInput { state: ElementState::Released, button, .. } => {
                let click = self.pointer.pressed.is_some_and(|(b, _)| b == *button) && !self.pointer.dragged;
                self.pointer.pressed = None;
                if click && *button == MouseButton::Left {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let (x, y) = (self.pointer.position.x.max(0.0) as u32, self.pointer.position.y.max(0.0) as u32);
                    let (Some(x), Some(y)) = (x.checked_sub(self.origin.0), y.checked_sub(self.origin.1)) else {
                        return Ok((None, false));
                    };
                    let id = self.renderer.pick(x, y)?;
                    panels.picked = id.and_then(|id| describe_pick(scene, panels, id));
                    let mut action = None;
                    if let Some(i) = id.and_then(|id| scene.toggle_selection(id)) {
                        self.write_atoms(scene, i..i + 1, panels)?;
                        action = id.and_then(|id| room_selection(scene, id, i));
                    }
                    return Ok((action, true));
                }
            }
            WindowEvent::MouseWheel { delta, .. } => {
                #[allow(clippy::cast_possible_truncation)]
                let lines = match delta {
                    MouseScrollDelta::LineDelta(_, y) => *y,
                    MouseScrollDelta::PixelDelta(p) => p.y as f32 / 40.0,
                };
                self.renderer.camera.zoom(0.9f32.powf(lines));
                return Ok((None, true));
            }
            WindowEvent::KeyboardInput { event, .. } if event.state == ElementState::Pressed => {
                match &event.logical_key {
                    Key::Character(c) if c.eq_ignore_ascii_case("f") => return Ok((Some(UiAction::FitView), true)),
                    Key::Character(c) if c.eq_ignore_ascii_case("r") => {
                        self.renderer.camera.rotation = Quat::IDENTITY;
                        return Ok((Some(UiAction::FitView), true));
                    }
                    Key::Named(NamedKey::F12) => return Ok((Some(UiAction::Screenshot), true)),
                    Key::Named(NamedKey::Escape) => panels.picked = None,
                    _ => {}
                }
            }
            _ => {}
        }
        Ok((None, false))
    }
}

/// What a pick id hit: an atom ("file chain residue atom") or a plugin's shape.
fn describe_pick(scene: &SceneData, panels: &Panels, id: u32) -> Option<String> {
    if let Some((instance, shape)) = crate::session::shape_of_pick(id) {
        let plugin = panels.session.as_ref().and_then(|s| {
            s.view.instances.iter().find(|(i, _)| i.0 & 0x7ff == instance).and_then(|(i, _)| s.plugin_of(*i))
        });
        return Some(match plugin {
            Some(p) => format!("shape {shape} of {}", p.meta.name),
            None => format!("shape {shape}"),
        });
    }
    scene.describe(id)
}

/// The selection change to tell the room when atom `i` of the scene (pick id `id`) was toggled
/// and belongs to a room complex.
fn room_selection(scene: &SceneData, id: u32, i: usize) -> Option<UiAction> {
    let (k, atom) = scene.locate(id)?;
    let d = &scene.documents[k];
    if d.source != DocSource::Room {
        return None;
    }
    let selected = scene.atoms.get(i)?.flags & molstream_engine::gpu::ATOM_FLAG_SELECTED != 0;
    Some(UiAction::Session(Command::Select { complex: d.complex.id, atoms: vec![atom], selected }))
}

/// `DIR/molstream-<unix seconds>-<frame>.png`.
fn screenshot_path(dir: Option<&Path>, frame: u64) -> PathBuf {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    dir.unwrap_or_else(|| Path::new(".")).join(format!("molstream-{secs}-{frame}.png"))
}

impl App {
    fn fail(&mut self, event_loop: &ActiveEventLoop, e: anyhow::Error) {
        self.error = Some(e);
        event_loop.exit();
    }

    /// Loads a file on a worker thread; the result comes back as [`AppEvent::Loaded`].
    fn open(&mut self, path: PathBuf) {
        let name = path.display().to_string();
        self.panels.loading = Some(name);
        let proxy = self.proxy.clone();
        let style = self.panels.style;
        std::thread::spawn(move || {
            let result = crate::workspace::load_file(&path, style).map_err(|e| format!("{e:#}").replace('\n', " "));
            // The loop is gone when the window closed meanwhile: nothing to tell.
            let _ = proxy.send_event(AppEvent::Loaded { path, result });
        });
    }

    fn apply(&mut self, action: UiAction) -> anyhow::Result<()> {
        let now = Instant::now();
        if let UiAction::Open(path) = action {
            self.open(path);
            return Ok(());
        }
        let Some(w) = self.window.as_mut() else { return Ok(()) };
        match action {
            UiAction::Tree(a) => {
                let range = self.scene.apply(&a);
                w.write_atoms(&self.scene, range, &mut self.panels)?;
            }
            UiAction::Restyle(style) => {
                self.scene.restyle(style);
                w.write_atoms(&self.scene, 0..self.scene.atoms.len(), &mut self.panels)?;
            }
            UiAction::FitView => w.renderer.fit_camera_to(&self.scene.atoms, &self.scene.transforms),
            UiAction::Screenshot => {
                let path = screenshot_path(self.options.screenshot_dir.as_deref(), self.frames);
                match w.renderer.screenshot().map_err(anyhow::Error::from).and_then(|img| {
                    img.write_png(&path)?;
                    Ok(img)
                }) {
                    Ok(img) => {
                        let text = format!("screenshot {}×{} saved to {}", img.width, img.height, path.display());
                        tracing::info!("{text}");
                        self.panels.toasts.push(Level::Info, text, now);
                    }
                    Err(e) => self.panels.toasts.push(Level::Error, format!("screenshot failed: {e:#}"), now),
                }
            }
            UiAction::Open(_) => {}
            UiAction::Session(c) => match &self.live {
                Some(live) => live.send(c),
                None => self.panels.toasts.push(Level::Warning, "not in a session", now),
            },
        }
        w.window.request_redraw();
        Ok(())
    }

    /// Takes a report of the session into account.
    fn session(&mut self, report: Report) -> anyhow::Result<()> {
        let now = Instant::now();
        if matches!(report, Report::Fatal(_)) && self.scene.documents.is_empty() {
            // No room to show: the bundled structure, locally, rather than an empty window.
            let fallback = load_documents(&[])?;
            for d in fallback.documents {
                self.scene.push(d.name, d.complex);
            }
            if let Some(w) = self.window.as_mut() {
                let work = GpuWork { relayout: true, ..GpuWork::default() };
                crate::session::upload(&work, &self.scene, &mut w.renderer)?;
                w.renderer.fit_camera_to(&self.scene.atoms, &self.scene.transforms);
            }
        }
        if let Some(scene) = self.panels.on_report(report, now) {
            let t = Instant::now();
            let had_atoms = !self.scene.atoms.is_empty();
            let work = crate::session::apply(&mut self.scene, scene.updates);
            let r = self.upload(work, had_atoms);
            let streamed = scene.frames_applied.saturating_sub(self.frames_applied);
            self.frames_applied = scene.frames_applied;
            self.panels.stats.record_stream_frames(now, streamed);
            self.panels.stats.record_decode(now, scene.diff_ms + t.elapsed().as_secs_f64() * 1e3);
            if let Some(live) = &self.live {
                live.consumed();
            }
            r?;
        }
        if let Some(w) = &self.window {
            w.window.request_redraw();
        }
        Ok(())
    }

    /// Sends the work of a scene report to the GPU (or keeps its shapes for when the window
    /// exists) and acts on the instances' effects.
    fn upload(&mut self, work: GpuWork, had_atoms: bool) -> anyhow::Result<()> {
        let now = Instant::now();
        for e in &work.effects {
            if let molstream_net::scene::Effect::OpenUrl { url, .. } = e {
                self.panels.toasts.push(Level::Info, format!("a plugin asks to open {url}"), now);
            }
        }
        let Some(w) = self.window.as_mut() else {
            self.pending_shapes.extend(work.shapes);
            return Ok(());
        };
        let up = crate::session::upload(&work, &self.scene, &mut w.renderer)?;
        self.panels.stats.record_upload(now, up.bytes + up.shapes.bytes);
        if !had_atoms && !self.scene.atoms.is_empty() {
            w.renderer.fit_camera_to(&self.scene.atoms, &self.scene.transforms);
        }
        for e in &work.effects {
            if let molstream_net::scene::Effect::Focus { ids, zoom, .. } = e {
                crate::session::focus(&mut w.renderer, &self.scene, ids, *zoom);
            }
        }
        Ok(())
    }

    fn loaded(&mut self, path: &Path, result: Result<LoadedFile, String>) -> anyhow::Result<()> {
        let now = Instant::now();
        self.panels.loading = None;
        let file = match result {
            Ok(f) => f,
            Err(e) => {
                self.panels.toasts.push(Level::Error, format!("{}: {e}", path.display()), now);
                return Ok(());
            }
        };
        let atoms = file.complex.current().topology.atom_count();
        self.panels.stats.record_decode(now, file.timings.parse.as_secs_f64() * 1e3);
        let text = format!("{}: {atoms} atoms, parsed in {:.1} ms", file.name, file.timings.parse.as_secs_f64() * 1e3);
        self.scene.push(file.name, file.complex);
        if let Some(w) = self.window.as_mut() {
            // A topology change: the buffers are created again, sized to the new scene.
            w.renderer.set_scene(&self.scene.atoms, &self.scene.bonds, &self.scene.transforms)?;
            w.renderer.shapes_mut().set_anchor_map(self.scene.anchor_map());
            w.renderer.fit_camera_to(&self.scene.atoms, &self.scene.transforms);
            self.panels.stats.record_upload(now, atom_bytes(&self.scene.atoms));
            w.window.request_redraw();
        }
        self.panels.toasts.push(Level::Info, text, now);
        Ok(())
    }
}

impl ApplicationHandler<AppEvent> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_none() {
            match WindowState::new(event_loop, &self.scene) {
                Ok(w) => {
                    let bytes =
                        atom_bytes(&self.scene.atoms) + std::mem::size_of_val(self.scene.bonds.as_slice()) as u64;
                    self.panels.stats.record_upload(Instant::now(), bytes);
                    w.window.request_redraw();
                    self.window = Some(w);
                    let shapes = std::mem::take(&mut self.pending_shapes);
                    if !shapes.is_empty()
                        && let Err(e) = self.upload(GpuWork { shapes, ..GpuWork::default() }, true)
                    {
                        self.fail(event_loop, e);
                    }
                }
                Err(e) => self.fail(event_loop, e),
            }
        }
    }

    fn new_events(&mut self, _event_loop: &ActiveEventLoop, cause: winit::event::StartCause) {
        if let (winit::event::StartCause::ResumeTimeReached { .. }, Some(w)) = (cause, self.window.as_mut()) {
            w.repaint_at = None;
            w.window.request_redraw();
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let flow = match self.window.as_ref().and_then(|w| w.repaint_at) {
            Some(t) => ControlFlow::WaitUntil(t),
            None => ControlFlow::Wait,
        };
        event_loop.set_control_flow(flow);
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: AppEvent) {
        let r = match event {
            AppEvent::Loaded { path, result } => self.loaded(&path, result),
            AppEvent::Session(report) => self.session(report),
        };
        if let Err(e) = r {
            self.fail(event_loop, e);
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let Some(w) = self.window.as_mut() else { return };
        let response = w.egui_state.on_window_event(&w.window, &event);
        // egui-winit asks for a repaint after every redraw too: honouring that would redraw
        // forever. egui's own wishes come back as the frame's repaint delay.
        if response.repaint && !matches!(event, WindowEvent::RedrawRequested) {
            w.window.request_redraw();
        }
        let mut actions = Vec::new();
        let result = match &event {
            WindowEvent::CloseRequested => {
                event_loop.exit();
                Ok(())
            }
            WindowEvent::Resized(size) => w.resize(*size).map(|()| w.window.request_redraw()),
            WindowEvent::ScaleFactorChanged { scale_factor, .. } => {
                #[allow(clippy::cast_possible_truncation)]
                w.renderer.shapes_mut().set_pixels_per_point(*scale_factor as f32);
                Ok(())
            }
            WindowEvent::DroppedFile(path) => {
                actions.push(UiAction::Open(path.clone()));
                Ok(())
            }
            WindowEvent::RedrawRequested => {
                let r = w.redraw(&self.scene, &mut self.panels).map(|a| actions = a);
                self.frames += 1;
                if self.options.screenshot_at_frame == Some(self.frames) {
                    actions.push(UiAction::Screenshot);
                }
                match self.options.exit_after_frames {
                    Some(n) if self.frames >= n => event_loop.exit(),
                    Some(_) => w.window.request_redraw(),
                    None => {}
                }
                r
            }
            _ if response.consumed => Ok(()),
            _ => w.input(&event, &mut self.scene, &mut self.panels).map(|(action, redraw)| {
                actions.extend(action);
                if redraw {
                    w.window.request_redraw();
                }
            }),
        };
        let result = actions.into_iter().try_fold((), |(), a| self.apply(a)).and(result);
        if let Err(e) = result {
            self.fail(event_loop, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screenshots_are_named_by_time_and_frame() {
        let p = screenshot_path(Some(Path::new("/tmp/shots")), 42);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(p.starts_with("/tmp/shots"));
        assert!(name.starts_with("molstream-") && name.ends_with("-42.png"), "{name}");
        assert!(screenshot_path(None, 1).starts_with("."));
    }
}

//! `molstream view`: the desktop window, winit + egui over the renderer.
//!
//! The skeleton of the app: the structures given on the command line (or the bundled one) in
//! shared GPU buffers, orbit / pan / zoom with the mouse, click to pick and select an atom, a
//! side panel with the loaded files, the representation and colour scheme, the picked atom and
//! the frame time.
//!
//! Input: left drag orbits; right or middle drag, or shift + left drag, pans; the wheel zooms;
//! a click (press and release without moving) picks the atom under the cursor and toggles its
//! selection; `F` fits the view, `R` resets the orientation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use glam::{Mat4, Quat, Vec2};
use molstream_engine::gpu::{
    ATOM_FLAG_SELECTED, AtomInstance, BondInstance, InstanceBase, build_atom_instances, build_bond_instances,
};
use molstream_engine::io::{self, LoadOptions};
use molstream_engine::{AtomId, ColorScheme, Complex, Representation, Style};
use winit::application::ApplicationHandler;
use winit::dpi::{LogicalSize, PhysicalPosition, PhysicalSize};
use winit::event::{ElementState, MouseButton, MouseScrollDelta, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::keyboard::{Key, ModifiersState, NamedKey};
use winit::window::{Window, WindowId};

use crate::render::gpu::DEFAULT_BACKENDS;
use crate::render::{Gpu, RenderError, Renderer};
use crate::{BUNDLED_NAME, BUNDLED_STRUCTURE};

/// What `molstream view` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    /// Structure files; the bundled structure when empty.
    pub files: Vec<PathBuf>,
    /// Close the window after this many frames (smoke tests under Xvfb).
    pub exit_after_frames: Option<u64>,
}

/// One loaded structure and where its atoms sit in the shared buffers.
#[derive(Clone, Debug)]
pub struct Document {
    /// File name as given.
    pub name: String,
    /// The structure.
    pub complex: Complex,
    /// Its atom offset, pick-id base and transform index in the shared buffers.
    pub base: InstanceBase,
}

/// The scene on the CPU: the documents and the instance arrays the GPU buffers mirror.
#[derive(Clone, Debug, Default)]
pub struct SceneData {
    /// Loaded structures, in buffer order.
    pub documents: Vec<Document>,
    /// Atoms of every document's current model, back to back.
    pub atoms: Vec<AtomInstance>,
    /// Bonds, with atom indices into [`SceneData::atoms`].
    pub bonds: Vec<BondInstance>,
    /// One transform per document (its complex's position and rotation).
    pub transforms: Vec<Mat4>,
}

impl SceneData {
    /// Lays out `complexes` (name, complex) in shared buffers: document `k`'s atoms start after
    /// those of documents `0..k`, its pick ids after theirs (from 1), its transform is `k`.
    #[must_use]
    pub fn new(complexes: Vec<(String, Complex)>) -> Self {
        let mut s = Self::default();
        let mut offset = 0u32;
        for (k, (name, complex)) in complexes.into_iter().enumerate() {
            let base = InstanceBase {
                atom_offset: offset,
                pick_base: offset + 1,
                transform: u32::try_from(k).unwrap_or(u32::MAX),
            };
            let view = complex.current();
            build_atom_instances(view, base, &mut s.atoms);
            build_bond_instances(view, base, &mut s.bonds);
            offset = u32::try_from(s.atoms.len()).unwrap_or(u32::MAX);
            s.transforms.push(Mat4::from_rotation_translation(complex.rotation, complex.position));
            s.documents.push(Document { name, complex, base });
        }
        s
    }

    /// The document and atom a pick id belongs to.
    #[must_use]
    pub fn locate(&self, pick_id: u32) -> Option<(usize, AtomId)> {
        let k = self.documents.iter().rposition(|d| d.base.pick_base <= pick_id)?;
        let d = &self.documents[k];
        let i = pick_id - d.base.pick_base;
        (usize::try_from(i).ok()? < d.complex.current().topology.atom_count()).then_some((k, AtomId(i)))
    }

    /// "file chain residue number atom" of a pick id, e.g. `1hvr.pdb A ASP 25 CG`.
    #[must_use]
    pub fn describe(&self, pick_id: u32) -> Option<String> {
        let (k, atom) = self.locate(pick_id)?;
        let d = &self.documents[k];
        let t = d.complex.current().topology;
        let r = t.atoms.residue[atom.index()];
        let ins = t.residues.ins_code[r.index()];
        let ins = if ins == b' ' || ins == 0 { String::new() } else { char::from(ins).to_string() };
        Some(format!(
            "{} {} {} {}{} {}",
            d.name,
            t.chain_name(t.residues.chain[r.index()]),
            t.residue_name(r),
            t.residues.seq_num[r.index()],
            ins,
            t.atom_name(atom)
        ))
    }

    /// Applies `style` to every document and rebuilds the atom instances in place (same
    /// count, same order: the GPU buffer is rewritten, not re-created). Selection is kept.
    pub fn restyle(&mut self, style: Style) {
        let mut atoms = Vec::with_capacity(self.atoms.len());
        for d in &mut self.documents {
            d.complex.set_style(style);
            build_atom_instances(d.complex.current(), d.base, &mut atoms);
        }
        for (new, old) in atoms.iter_mut().zip(&self.atoms) {
            new.flags |= old.flags & ATOM_FLAG_SELECTED;
        }
        self.atoms = atoms;
    }

    /// Flips the selection of one atom (by pick id); returns its index in
    /// [`SceneData::atoms`].
    pub fn toggle_selection(&mut self, pick_id: u32) -> Option<usize> {
        let (k, atom) = self.locate(pick_id)?;
        let i = self.documents[k].base.atom_offset as usize + atom.index();
        let a = self.atoms.get_mut(i)?;
        a.flags ^= ATOM_FLAG_SELECTED;
        Some(i)
    }
}

/// Loads the files (or the bundled structure), styled ball-and-stick by element.
pub fn load_documents(files: &[PathBuf]) -> anyhow::Result<SceneData> {
    let options = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let mut complexes = Vec::new();
    if files.is_empty() {
        let loaded = io::load_bytes(BUNDLED_STRUCTURE, BUNDLED_NAME, None, &options)?;
        complexes.push((BUNDLED_NAME.to_owned(), loaded.complex));
    }
    for f in files {
        let loaded = io::load_file(f, &options)?;
        let name = f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned());
        complexes.push((name, loaded.complex));
    }
    Ok(SceneData::new(complexes))
}

/// Opens the window and runs until it is closed.
pub fn run(options: ViewOptions) -> anyhow::Result<()> {
    let scene = load_documents(&options.files)?;
    let event_loop = EventLoop::new().context("cannot open a window (is DISPLAY or WAYLAND_DISPLAY set?)")?;
    event_loop.set_control_flow(ControlFlow::Wait);
    let mut app = App { options, scene, window: None, error: None, frames: 0 };
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
    style: Style,
    picked: Option<String>,
    frame_ms: f64,
}

struct App {
    options: ViewOptions,
    scene: SceneData,
    window: Option<WindowState>,
    error: Option<anyhow::Error>,
    frames: u64,
}

fn physical(size: PhysicalSize<u32>) -> (u32, u32) {
    (size.width.max(1), size.height.max(1))
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
        renderer.camera.rotation = Quat::IDENTITY;
        renderer.fit_camera_to(&scene.atoms, &scene.transforms);
        let egui_ctx = egui::Context::default();
        let max_texture = gpu.device.limits().max_texture_dimension_2d as usize;
        #[allow(clippy::cast_possible_truncation)]
        let scale = window.scale_factor() as f32;
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
            style: Style::default(),
            picked: None,
            frame_ms: 0.0,
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

    fn ui(&mut self, ui: &mut egui::Ui, scene: &mut SceneData) -> Option<Style> {
        let mut restyle = None;
        egui::Panel::left("molstream-side").resizable(true).show(ui, |ui| {
            ui.heading("molstream");
            for d in &scene.documents {
                let c = d.complex.counts();
                ui.label(format!("{}: {} atoms, {} bonds", d.name, c.atom_sites, c.bonds));
            }
            ui.separator();
            let mut style = self.style;
            egui::ComboBox::from_label("representation").selected_text(style.representation.name()).show_ui(ui, |ui| {
                for r in Representation::ALL {
                    ui.selectable_value(&mut style.representation, r, r.name());
                }
            });
            let schemes = [
                (ColorScheme::Element, "element"),
                (ColorScheme::Chain, "chain"),
                (ColorScheme::ResidueType, "residue"),
                (ColorScheme::BFactor, "B-factor"),
            ];
            let current = schemes.iter().find(|s| s.0 == style.color).map_or("?", |s| s.1);
            egui::ComboBox::from_label("colour").selected_text(current).show_ui(ui, |ui| {
                for (s, name) in schemes {
                    ui.selectable_value(&mut style.color, s, name);
                }
            });
            if style != self.style {
                self.style = style;
                restyle = Some(style);
            }
            if ui.button("Fit view (F)").clicked() {
                self.renderer.fit_camera_to(&scene.atoms, &scene.transforms);
            }
            ui.separator();
            ui.label(format!("picked: {}", self.picked.as_deref().unwrap_or("—")));
            ui.label(format!("frame: {:.1} ms", self.frame_ms));
            ui.separator();
            ui.small("drag: rotate · right drag or shift drag: move · wheel: zoom · click: select · R: reset");
        });
        restyle
    }

    /// Draws one frame: the scene, then egui on top.
    fn redraw(&mut self, scene: &mut SceneData) -> anyhow::Result<()> {
        let t = Instant::now();
        let raw = self.egui_state.take_egui_input(&self.window);
        let ctx = self.egui_ctx.clone();
        let mut restyle = None;
        let out = ctx.run_ui(raw, |ui| restyle = self.ui(ui, scene));
        if let Some(style) = restyle {
            scene.restyle(style);
            self.renderer.write_atoms(0, &scene.atoms)?;
        }
        self.egui_state.handle_platform_output(&self.window, out.platform_output);
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
                        Ok(())
                    }
                    wgpu::CurrentSurfaceTexture::Validation => {
                        Err(anyhow::anyhow!("the surface texture failed validation"))
                    }
                    _ => Ok(()),
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
        self.frame_ms = t.elapsed().as_secs_f64() * 1e3;
        Ok(())
    }

    /// Camera and picking input not taken by egui; returns whether to redraw.
    fn input(&mut self, event: &WindowEvent, scene: &mut SceneData) -> anyhow::Result<bool> {
        let height = self.config.height as f32;
        match event {
            WindowEvent::ModifiersChanged(m) => self.pointer.modifiers = m.state(),
            WindowEvent::CursorMoved { position: PhysicalPosition { x, y }, .. } => {
                #[allow(clippy::cast_possible_truncation)]
                let p = Vec2::new(*x as f32, *y as f32);
                let delta = p - self.pointer.position;
                self.pointer.position = p;
                let Some((button, start)) = self.pointer.pressed else { return Ok(false) };
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
                return Ok(true);
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
                    let id = self.renderer.pick(x, y)?;
                    self.picked = id.and_then(|id| scene.describe(id));
                    if let Some(i) = id.and_then(|id| scene.toggle_selection(id)) {
                        self.renderer.write_atoms(i, &scene.atoms[i..=i])?;
                    }
                    return Ok(true);
                }
            }
            WindowEvent::MouseWheel { delta, .. } => {
                #[allow(clippy::cast_possible_truncation)]
                let lines = match delta {
                    MouseScrollDelta::LineDelta(_, y) => *y,
                    MouseScrollDelta::PixelDelta(p) => p.y as f32 / 40.0,
                };
                self.renderer.camera.zoom(0.9f32.powf(lines));
                return Ok(true);
            }
            WindowEvent::KeyboardInput { event, .. } if event.state == ElementState::Pressed => {
                match &event.logical_key {
                    Key::Character(c) if c.eq_ignore_ascii_case("f") => {
                        self.renderer.fit_camera_to(&scene.atoms, &scene.transforms);
                        return Ok(true);
                    }
                    Key::Character(c) if c.eq_ignore_ascii_case("r") => {
                        self.renderer.camera.rotation = Quat::IDENTITY;
                        self.renderer.fit_camera_to(&scene.atoms, &scene.transforms);
                        return Ok(true);
                    }
                    Key::Named(NamedKey::Escape) => self.picked = None,
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(false)
    }
}

impl App {
    fn fail(&mut self, event_loop: &ActiveEventLoop, e: anyhow::Error) {
        self.error = Some(e);
        event_loop.exit();
    }
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_none() {
            match WindowState::new(event_loop, &self.scene) {
                Ok(w) => {
                    w.window.request_redraw();
                    self.window = Some(w);
                }
                Err(e) => self.fail(event_loop, e),
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let Some(w) = self.window.as_mut() else { return };
        let response = w.egui_state.on_window_event(&w.window, &event);
        if response.repaint {
            w.window.request_redraw();
        }
        let result = match &event {
            WindowEvent::CloseRequested => {
                event_loop.exit();
                Ok(())
            }
            WindowEvent::Resized(size) => w.resize(*size).map(|()| w.window.request_redraw()),
            WindowEvent::RedrawRequested => {
                let r = w.redraw(&mut self.scene);
                self.frames += 1;
                match self.options.exit_after_frames {
                    Some(n) if self.frames >= n => event_loop.exit(),
                    Some(_) => w.window.request_redraw(),
                    None => {}
                }
                r
            }
            _ if response.consumed => Ok(()),
            _ => w.input(&event, &mut self.scene).map(|redraw| {
                if redraw {
                    w.window.request_redraw();
                }
            }),
        };
        if let Err(e) = result {
            self.fail(event_loop, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_documents() -> SceneData {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/");
        load_documents(&[PathBuf::from(format!("{path}1hvr.pdb")), PathBuf::from(format!("{path}5PTI.cif"))]).unwrap()
    }

    #[test]
    fn documents_share_buffers_with_disjoint_pick_ids() {
        let s = two_documents();
        let n0 = s.documents[0].complex.current().topology.atom_count();
        let n1 = s.documents[1].complex.current().topology.atom_count();
        assert_eq!(s.atoms.len(), n0 + n1);
        assert_eq!(s.transforms.len(), 2);
        assert_eq!(s.documents[1].base.atom_offset as usize, n0);
        assert_eq!(s.atoms[n0].transform, 1);
        // Bonds of the second document point into its own atoms.
        let b1 = s.documents[0].complex.current().topology.bonds.len();
        assert!(s.bonds[b1..].iter().all(|b| b.atom_a as usize >= n0 && (b.atom_b as usize) < n0 + n1));
        // Pick ids map back to the right document and atom.
        assert_eq!(s.locate(1), Some((0, AtomId(0))));
        let last = u32::try_from(n0 + n1).unwrap();
        assert_eq!(s.locate(last), Some((1, AtomId(u32::try_from(n1 - 1).unwrap()))));
        assert_eq!(s.locate(last + 1), None);
        assert_eq!(s.locate(0), None);
        assert_eq!(s.atoms[n0].pick_id, u32::try_from(n0).unwrap() + 1);
        let d = s.describe(1).unwrap();
        assert!(d.starts_with("1hvr.pdb A "), "{d}");
        assert!(s.describe(s.atoms[n0].pick_id).unwrap().starts_with("5PTI.cif "));
    }

    #[test]
    fn restyle_keeps_layout_and_selection() {
        let mut s = two_documents();
        let i = s.toggle_selection(5).unwrap();
        assert_eq!(i, 4);
        let before: Vec<u32> = s.atoms.iter().map(|a| a.pick_id).collect();
        s.restyle(Style { representation: Representation::Spacefill, color: ColorScheme::Chain });
        assert_eq!(s.atoms.iter().map(|a| a.pick_id).collect::<Vec<_>>(), before);
        assert!(s.atoms[4].flags & ATOM_FLAG_SELECTED != 0);
        assert!(s.atoms.iter().all(|a| a.flags & 0xf == Representation::Spacefill as u32));
        s.toggle_selection(5);
        assert!(s.atoms[4].flags & ATOM_FLAG_SELECTED == 0);
    }
}

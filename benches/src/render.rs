//! `molstream-bench render`: offscreen frame times of the viewer's renderer on a tiled
//! structure, static and with every position rewritten each frame, beside an empty-scene frame
//! measured in the same run.
//!
//! A frame is timed from encoding to the GPU finishing it (`Headless::render_frame`: submit,
//! then wait on that submission); nothing is read back. The streamed variant adds, inside the
//! timed region, what a position stream costs the viewer: copying a new frame of positions
//! into the `AtomInstance` buffer on the CPU (`gpu::update_positions`) and one
//! `queue.write_buffer` of the whole atom buffer.
//!
//! `--lod on` (the default) draws through the cull pass (frustum culling, far atoms as points,
//! thin bonds skipped, indirect draws); `--lod off` draws every instance. `--zoom Z` divides the
//! fitted camera distance by Z (zoom 4 shows about a quarter of the structure's width, so
//! frustum culling has work to do). The JSON adds `lod`, `zoom` and `drawn`, the instances the
//! cull pass kept in the static variant.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use glam::{Mat4, Vec3};
use molstream_engine::gpu::{StructureBuffers, update_positions};
use molstream_engine::io::{self, Format, LoadOptions};
use molstream_engine::{ColorScheme, DisplayState, ModelView, Representation, Style, synth};
use molstream_viewer::render::Headless;
use serde_json::json;

use crate::{TILE_GAP, TILE_PDB, copies_grid, round};

/// Arguments of `render`.
#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Atoms drawn: the bundled 1hvr is tiled on a grid and cut to exactly this many.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    atoms: u64,
    /// Frames timed in each variant (after 3 warm-up frames).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    frames: u32,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1920)]
    width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 1080)]
    height: u32,
    /// Representation: ball-and-stick, sticks, spacefill or lines.
    #[arg(long, default_value = "ball-and-stick")]
    style: String,
    /// Culling and level of detail: on or off.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    lod: String,
    /// Ambient occlusion strength, 0 (off) to 1.
    #[arg(long, default_value_t = molstream_viewer::render::RenderSettings::default().ambient_occlusion)]
    ao: f32,
    /// Zoom factor applied after fitting the camera (1: the whole structure in view).
    #[arg(long, default_value_t = 1.0)]
    zoom: f32,
    /// Print exactly one JSON object.
    #[arg(long)]
    json: bool,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// p50 and p99 of frame times in milliseconds.
fn summary(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 50.0), percentile(&ms, 99.0))
}

fn representation(name: &str) -> Result<Representation> {
    Ok(match name {
        "ball-and-stick" => Representation::BallAndStick,
        "sticks" => Representation::Sticks,
        "spacefill" => Representation::Spacefill,
        "lines" | "wire" => Representation::Wire,
        other => bail!("--style {other}: expected ball-and-stick, sticks, spacefill or lines"),
    })
}

/// Times `frames` frames after 3 warm-up ones; `before` runs ahead of each frame, inside the
/// timed region.
fn time_frames(
    h: &mut Headless,
    frames: u32,
    mut before: impl FnMut(&mut Headless, u32) -> Result<()>,
) -> Result<Vec<f64>> {
    for i in 0..3 {
        before(h, i)?;
        h.render_frame()?;
    }
    let mut out = Vec::with_capacity(frames as usize);
    for i in 0..frames {
        let t = Instant::now();
        before(h, i)?;
        h.render_frame()?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &RenderArgs) -> Result<()> {
    let n = usize::try_from(args.atoms).context("--atoms")?;
    let repr = representation(&args.style)?;
    let tile = io::load_bytes(TILE_PDB, "1hvr.pdb", Some(Format::Pdb), &LoadOptions::default())
        .context("loading the bundled assets/1hvr.pdb")?;
    let m = tile.complex.current();
    let grid = copies_grid(n.div_ceil(m.topology.atom_count()));
    let (t, positions) = synth::tile(m.topology, m.positions, grid, TILE_GAP);
    let display = DisplayState::styled(&t, Style { representation: repr, color: ColorScheme::Element });
    let mut buffers = StructureBuffers::build(ModelView { topology: &t, display: &display, positions: &positions });
    buffers.atoms.truncate(n);
    let limit = u32::try_from(n).unwrap_or(u32::MAX);
    buffers.bonds.retain(|b| b.atom_a < limit && b.atom_b < limit);
    let positions = &positions[..n];
    // The stream alternates between the structure and a copy shifted by 0.05 Å per axis.
    let shifted: Vec<Vec3> = positions.iter().map(|p| *p + Vec3::splat(0.05)).collect();

    if !(args.zoom.is_finite() && args.zoom > 0.0) {
        bail!("--zoom must be a positive number");
    }
    let mut h = Headless::new(args.width, args.height)?;
    let adapter = h.gpu.describe();
    h.renderer.settings.lod = args.lod == "on";
    h.renderer.settings.ambient_occlusion = args.ao;

    // Baseline: the same passes with nothing in the scene.
    h.renderer.set_scene(&[], &[], &[Mat4::IDENTITY])?;
    let (empty_p50, empty_p99) = summary(time_frames(&mut h, args.frames, |_, _| Ok(()))?);

    h.renderer.set_scene(&buffers.atoms, &buffers.bonds, &[Mat4::IDENTITY])?;
    h.renderer.fit_camera_to(&buffers.atoms, &[Mat4::IDENTITY]);
    h.renderer.camera.distance /= args.zoom;
    let (_, _, extra_cylinders) = h.renderer.counts();
    let (p50, p99) = summary(time_frames(&mut h, args.frames, |_, _| Ok(()))?);
    let drawn = h.renderer.lod_counts()?;

    let mut atoms = buffers.atoms.clone();
    let streamed = time_frames(&mut h, args.frames, |h, i| {
        update_positions(if i % 2 == 0 { &shifted } else { positions }, &mut atoms);
        h.renderer.write_atoms(0, &atoms)?;
        Ok(())
    })?;
    let (s50, s99) = summary(streamed);
    let upload = atoms.len() * std::mem::size_of::<molstream_engine::gpu::AtomInstance>();

    let fps = |ms: f64| round(1e3 / ms, 1);
    let report = json!({
        "adapter": adapter,
        "atoms": buffers.atoms.len(),
        "bonds": buffers.bonds.len(),
        "extra_bond_cylinders": extra_cylinders,
        "style": repr.name(),
        "lod": h.renderer.settings.lod,
        "ambient_occlusion": args.ao,
        "zoom": args.zoom,
        "drawn": {
            "atoms": drawn.atoms,
            "points": drawn.points,
            "bonds": drawn.bonds,
            "extra_bond_cylinders": drawn.extras,
        },
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "frame_ms_p50": round(p50, 3),
        "frame_ms_p99": round(p99, 3),
        "fps_p50": fps(p50),
        "stream_frame_ms_p50": round(s50, 3),
        "stream_frame_ms_p99": round(s99, 3),
        "stream_fps_p50": fps(s50),
        "stream_upload_bytes_per_frame": upload,
        "baseline_empty_frame_ms_p50": round(empty_p50, 3),
        "baseline_empty_frame_ms_p99": round(empty_p99, 3),
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{adapter}: {} atoms, {} bonds ({}), {}x{}, {} frames, lod {}, zoom {}, ao {}",
        buffers.atoms.len(),
        buffers.bonds.len(),
        repr.name(),
        args.width,
        args.height,
        args.frames,
        args.lod,
        args.zoom,
        args.ao
    );
    println!(
        "  drawn (static): {} impostor atoms, {} points, {} bonds, {} extra cylinders",
        drawn.atoms, drawn.points, drawn.bonds, drawn.extras
    );
    println!("  empty scene        p50 {empty_p50:9.3} ms  p99 {empty_p99:9.3} ms");
    println!("  static             p50 {p50:9.3} ms  p99 {p99:9.3} ms  ({:.1} fps)", 1e3 / p50);
    println!("  positions streamed p50 {s50:9.3} ms  p99 {s99:9.3} ms  ({:.1} fps, {upload} bytes/frame)", 1e3 / s50);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 50.0) - 50.0).abs() < 1e-12);
        assert!((percentile(&v, 99.0) - 99.0).abs() < 1e-12);
        assert!((percentile(&[3.0], 99.0) - 3.0).abs() < 1e-12);
        assert!(percentile(&[], 50.0).is_nan());
        assert_eq!(summary(vec![5.0, 1.0, 3.0]), (3.0, 5.0));
    }
}

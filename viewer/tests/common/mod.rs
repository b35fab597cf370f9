//! What the GPU test files share: one device per test binary, and golden-image comparison
//! with the tolerance set in one place.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation, clippy::cast_sign_loss)] // each test binary uses a part; tests fail loudly

use std::path::PathBuf;
use std::sync::OnceLock;

use glam::{Mat4, Vec3};
use molstream_engine::Representation;
use molstream_engine::gpu::{AtomInstance, BondInstance, atom_flags};
use molstream_engine::model::pack_rgba;
use molstream_viewer::render::{Gpu, Headless, RgbaImage};

/// Golden-image tolerance, the one place it is set: a pixel matches when no channel differs
/// by more than `CHANNEL_TOLERANCE`, and an image matches when at most `MAX_DIFFERING` of its
/// pixels do not (room for rasterizer and LLVM differences between lavapipe builds).
pub const CHANNEL_TOLERANCE: u8 = 24;
/// Fraction of pixels allowed to differ beyond [`CHANNEL_TOLERANCE`].
pub const MAX_DIFFERING: f64 = 0.01;
/// Size of the golden images.
pub const SNAPSHOT_SIZE: u32 = 256;
/// The renderer's default background, sRGB.
pub const BACKGROUND: [u8; 4] = [255, 255, 255, 255];

/// One device shared by every test of this file; `None` when GPU tests are skipped.
pub fn gpu() -> Option<Gpu> {
    static GPU: OnceLock<Option<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| {
        if std::env::var("MOLSTREAM_SKIP_GPU_TESTS").is_ok_and(|v| v == "1") {
            eprintln!("MOLSTREAM_SKIP_GPU_TESTS=1: skipping GPU tests");
            return None;
        }
        match Gpu::headless() {
            Ok(g) => {
                eprintln!("GPU tests on {}", g.describe());
                Some(g)
            }
            Err(e) => panic!(
                "GPU tests need an adapter and none was found: {e}\n(set MOLSTREAM_SKIP_GPU_TESTS=1 to skip them knowingly)"
            ),
        }
    })
    .clone()
}

/// A headless renderer on the shared device.
pub fn headless(width: u32, height: u32) -> Option<Headless> {
    gpu().map(|g| Headless::with_gpu(g, width, height).unwrap())
}

/// Where a golden image lives.
pub fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.png"))
}

/// Compares `image` with `tests/snapshots/NAME.png` (or rewrites it with UPDATE_SNAPSHOTS=1);
/// on a mismatch the rendered image is written next to the target dir for inspection.
pub fn assert_snapshot(name: &str, image: &RgbaImage) {
    let path = snapshot_path(name);
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image.write_png(&path).unwrap();
        eprintln!("updated {}", path.display());
        return;
    }
    let expected = RgbaImage::read_png(&path)
        .unwrap_or_else(|e| panic!("{e}: run with UPDATE_SNAPSHOTS=1 to create {}", path.display()));
    let diff = image.diff(&expected, CHANNEL_TOLERANCE);
    let allowed = (f64::from(image.width) * f64::from(image.height) * MAX_DIFFERING) as usize;
    if diff.differing > allowed {
        let actual = std::env::temp_dir().join(format!("molstream-{name}-actual.png"));
        image.write_png(&actual).unwrap();
        panic!(
            "{name}: {} pixels differ by more than {CHANNEL_TOLERANCE} (at most {allowed} may; largest difference {}); \
             rendered image: {}, expected: {} (UPDATE_SNAPSHOTS=1 accepts the new one)",
            diff.differing,
            diff.max_channel_delta,
            actual.display(),
            path.display()
        );
    }
}

/// An atom instance of one colour.
pub fn atom(p: [f32; 3], radius: f32, repr: Representation, rgb: [u8; 3], pick_id: u32) -> AtomInstance {
    AtomInstance {
        position: p,
        radius,
        color: pack_rgba(rgb, 255),
        flags: atom_flags(repr, false, false, false, 6),
        pick_id,
        transform: 0,
    }
}

/// A scene of a few atoms and bonds, framed by the camera.
pub fn scene(h: &mut Headless, atoms: &[AtomInstance], bonds: &[BondInstance]) {
    h.renderer.set_scene(atoms, bonds, &[Mat4::IDENTITY]).unwrap();
    h.renderer.fit_camera_to(atoms, &[Mat4::IDENTITY]);
}

/// The pixel a world point projects to.
pub fn pixel_of(h: &Headless, p: Vec3) -> (u32, u32) {
    let (w, hh) = h.renderer.size();
    let q = h.renderer.camera.project(p, w, hh).unwrap();
    (q.x as u32, q.y as u32)
}

//! `molstream view` in a real window: the test starts its own Xvfb, runs the viewer on the
//! bundled structure (locally, and through the embedded relay with a bundled plugin
//! connected), captures the screen with `xwd` and checks that the structure (and the plugin's
//! shapes) are drawn.
//!
//! Needs Xvfb and xwd (`apt-get install xvfb x11-apps`) and a GPU adapter (lavapipe is
//! enough); `.ci/run` installs them. Skipped only with `MOLSTREAM_SKIP_GPU_TESTS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills and reaps a child process when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skip() -> bool {
    let skip = std::env::var("MOLSTREAM_SKIP_GPU_TESTS").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("MOLSTREAM_SKIP_GPU_TESTS=1: skipping the window test");
    }
    skip
}

/// Starts Xvfb on a display it picks itself (`-displayfd`: no race between tests) and returns
/// it with its `:N` name.
fn xvfb() -> (Guard, String) {
    use std::io::BufRead;
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "800x600x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start Xvfb ({e}): apt-get install xvfb, or set MOLSTREAM_SKIP_GPU_TESTS=1"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let n: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb did not report its display: {line:?}"));
    (Guard(child), format!(":{n}"))
}

/// A screen capture: width, height, RGB pixels.
struct Screen {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(b[i * 4..i * 4 + 4].try_into().unwrap())
}

/// Captures the root window with `xwd` and decodes its 24/32-bit ZPixmap.
fn capture(display: &str) -> Screen {
    let out = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .output()
        .unwrap_or_else(|e| panic!("cannot run xwd ({e}): apt-get install x11-apps"));
    assert!(out.status.success(), "xwd: {}", String::from_utf8_lossy(&out.stderr));
    let b = out.stdout;
    let (header, format, width, height) =
        (be32(&b, 0) as usize, be32(&b, 2), be32(&b, 4) as usize, be32(&b, 5) as usize);
    let (byte_order, bpp, stride) = (be32(&b, 7), be32(&b, 11), be32(&b, 12) as usize);
    let (rm, gm, bm, ncolors) = (be32(&b, 14), be32(&b, 15), be32(&b, 16), be32(&b, 19) as usize);
    assert_eq!((format, bpp), (2, 32), "ZPixmap at 32 bits per pixel expected");
    let data = &b[header + 12 * ncolors..];
    let channel = |p: u32, m: u32| ((p & m) >> m.trailing_zeros()) as u8;
    let mut rgb = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let px: [u8; 4] = data[y * stride + x * 4..y * stride + x * 4 + 4].try_into().unwrap();
            let p = if byte_order == 0 { u32::from_le_bytes(px) } else { u32::from_be_bytes(px) };
            rgb.push([channel(p, rm), channel(p, gm), channel(p, bm)]);
        }
    }
    Screen { width, height, rgb }
}

#[test]
fn the_window_shows_the_bundled_structure() {
    if skip() {
        return;
    }
    let (_x, display) = xvfb();
    let viewer = Command::new(env!("CARGO_BIN_EXE_molstream"))
        .arg("view")
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Poll the screen until the structure is drawn (lavapipe's first frames take a while).
    watch(viewer, &display, "no structure on screen: (drawn, red, blue) pixels", |view| {
        let drawn = view.iter().filter(|p| p.iter().any(|&c| c < 235)).count();
        let oxygen = view.iter().filter(|p| p[0] > 150 && p[1] < 80 && p[2] < 80).count();
        let nitrogen = view.iter().filter(|p| p[2] > 150 && p[0] < 100 && p[1] < 120).count();
        ((drawn, oxygen, nitrogen), drawn > view.len() / 10 && oxygen > 200 && nitrogen > 200)
    });
}

#[test]
fn view_exits_after_the_frames_asked_for() {
    if skip() {
        return;
    }
    let (_x, display) = xvfb();
    let out = Command::new(env!("CARGO_BIN_EXE_molstream"))
        .args(["view", concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/5PTI.cif"), "--exit-after-frames", "3"])
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A bad file fails before any window opens, with one line.
    let out = Command::new(env!("CARGO_BIN_EXE_molstream"))
        .args(["view", "/nonexistent.pdb"])
        .env("DISPLAY", &display)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn the_screenshot_path_saves_the_structure_as_png() {
    if skip() {
        return;
    }
    let (_x, display) = xvfb();
    let dir = std::env::temp_dir().join(format!("molstream-shots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The same action as the button and F12, fired at frame 3.
    let out = Command::new(env!("CARGO_BIN_EXE_molstream"))
        .args(["view", "--exit-after-frames", "5", "--screenshot-at-frame", "3", "--screenshot-dir"])
        .arg(&dir)
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shots: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(shots.len(), 1, "{shots:?}");
    let name = shots[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("molstream-") && name.ends_with("-3.png"), "{name}");
    let img = molstream_viewer::render::RgbaImage::read_png(&shots[0]).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // The window's size, the scene without the panels: the structure's red and blue atoms on a
    // white background.
    assert!(img.width >= 640 && img.height >= 400, "{}x{}", img.width, img.height);
    let px: Vec<&[u8]> = img.pixels.chunks_exact(4).collect();
    let drawn = px.iter().filter(|p| p[..3].iter().any(|&c| c < 235)).count();
    let oxygen = px.iter().filter(|p| p[0] > 150 && p[1] < 80 && p[2] < 80).count();
    let nitrogen = px.iter().filter(|p| p[2] > 150 && p[0] < 100 && p[1] < 120).count();
    assert!(drawn > px.len() / 10 && oxygen > 200 && nitrogen > 200, "drawn {drawn}, red {oxygen}, blue {nitrogen}");
}

#[test]
fn the_window_shows_a_plugins_shapes_through_the_embedded_relay() {
    if skip() {
        return;
    }
    let (_x, display) = xvfb();
    // An embedded relay with the bundled plugins; the shapes demo is activated and run: it
    // loads 1hvr into the room (the workspace is empty) and draws a translucent blue box,
    // spheres, dashed lines and labels over it.
    let viewer = Command::new(env!("CARGO_BIN_EXE_molstream"))
        .args(["view", "--run", "Shapes demo"])
        .env("DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("MOLSTREAM_RELAY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    watch(viewer, &display, "no structure with the plugin's shapes: (drawn, red, pale blue) pixels", |view| {
        let drawn = view.iter().filter(|p| p.iter().any(|&c| c < 235)).count();
        let oxygen = view.iter().filter(|p| p[0] > 150 && p[1] < 80 && p[2] < 80).count();
        // The white background seen through the box (80, 160, 255) at alpha 60: pale blue.
        let tinted = view
            .iter()
            .filter(|p| p[2] > 245 && (200..=240).contains(&p[0]) && (220..=250).contains(&p[1]) && p[0] + 8 < p[1])
            .count();
        ((drawn, oxygen, tinted), drawn > view.len() / 20 && oxygen > 100 && tinted > 2000)
    });
}

/// Captures the screen every 500 ms until `check` of the 3D view (right of the side panel)
/// holds; fails if the viewer exits or after 120 s with the last counts `check` gave.
fn watch<T: std::fmt::Debug>(
    viewer: std::process::Child,
    display: &str,
    what: &str,
    mut check: impl FnMut(&[[u8; 3]]) -> (T, bool),
) {
    let mut viewer = Guard(viewer);
    let t = Instant::now();
    let mut last = None;
    while t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(Some(status)) = viewer.0.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            viewer.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("the viewer exited ({status}): {err}");
        }
        let s = capture(display);
        let view: Vec<[u8; 3]> = (0..s.height)
            .flat_map(|y| (s.width / 3..s.width).map(move |x| (x, y)))
            .map(|(x, y)| s.rgb[y * s.width + x])
            .collect();
        let (counts, done) = check(&view);
        if done {
            return;
        }
        last = Some(counts);
    }
    panic!("{what} after 120 s: {last:?}");
}

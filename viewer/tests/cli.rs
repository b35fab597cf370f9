//! The `molstream` binary as users run it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

fn molstream(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_molstream")).args(args).output().expect("run molstream")
}

fn asset(name: &str) -> String {
    format!("{}/../assets/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn inspect_json_prints_exactly_one_object_with_the_counts() {
    let out = molstream(&["inspect", &asset("4E43.pdb"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "one line of JSON: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["models"], 1);
    assert_eq!(v["chains"], 3);
    assert_eq!(v["residues"], 408);
    assert_eq!(v["atom_sites"], 1877);
    assert!(v["bonds"].as_u64().unwrap() > 1600);
    assert!(v["load_ms"].as_f64().unwrap() > 0.0);
    assert!(v["warnings"].is_array());
}

#[test]
fn inspect_reads_gzip_mmcif_and_multi_model_files() {
    let out = molstream(&["inspect", &asset("3KPR.cif.gz"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["chains"].as_u64(), v["atom_sites"].as_u64()), (Some(10), Some(13434)));
    let out = molstream(&["inspect", &asset("nmr_neopetrosiamide.pdb"), "--json", "--no-validate"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["models"], 24);
}

#[test]
fn bad_files_fail_with_one_line_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("molstream-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pdb");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 1, 2, 3]).unwrap();
    let missing = dir.join("missing.pdb");
    for (path, cause) in [
        (garbage.to_str().unwrap(), "binary"),
        (missing.to_str().unwrap(), "cannot read"),
        (dir.to_str().unwrap(), "directory"),
    ] {
        let out = molstream(&["inspect", path, "--json"]);
        assert!(!out.status.success(), "{path} should fail");
        assert!(out.stdout.is_empty(), "nothing on stdout for {path}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(path) && err.contains(cause), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inspect_without_a_file_inspects_the_bundled_structure() {
    let out = molstream(&["inspect"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("assets/1hvr.pdb") && text.contains("1890"), "{text}");
    let out = molstream(&["inspect", "--json", "--no-validate"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["atom_sites"], 1890);
}

#[test]
fn without_a_display_the_window_fails_with_one_line_naming_render() {
    for args in [&[][..], &["view"][..], &["view", "--embedded"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_molstream"))
            .args(args)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("MOLSTREAM_RELAY")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line for {args:?}: {err}");
        assert!(err.starts_with("molstream: cannot open a window") && err.contains("molstream render"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn view_refuses_a_relay_it_cannot_trust_before_opening_anything() {
    let out = Command::new(env!("CARGO_BIN_EXE_molstream"))
        .args(["view", "--relay", "192.0.2.1:4433", "--insecure-local"])
        .env_remove("MOLSTREAM_RELAY_CERT_SHA256")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("192.0.2.1:4433"), "{err}");
}

#[test]
fn render_writes_a_png_of_the_requested_size() {
    if std::env::var("MOLSTREAM_SKIP_GPU_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("MOLSTREAM_SKIP_GPU_TESTS=1: skipping");
        return;
    }
    let dir = std::env::temp_dir().join(format!("molstream-cli-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (style, color) in
        [("sticks", "chain"), ("spacefill", "bfactor"), ("lines", "residue"), ("ball-and-stick", "element")]
    {
        let out = dir.join(format!("{style}.png"));
        let o = molstream(&[
            "render",
            &asset("1hvr.pdb"),
            "--out",
            out.to_str().unwrap(),
            "--width",
            "160",
            "--height",
            "120",
            "--style",
            style,
            "--color",
            color,
        ]);
        assert!(o.status.success(), "{style}: {}", String::from_utf8_lossy(&o.stderr));
        let img = molstream_viewer::render::RgbaImage::read_png(&out).unwrap();
        assert_eq!((img.width, img.height), (160, 120));
        assert!(img.count_not([255, 255, 255, 255], 8) > 160 * 120 / 10, "{style}: structure drawn");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn render_of_a_bad_file_exits_1_with_one_line() {
    let dir = std::env::temp_dir().join(format!("molstream-cli-render-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pdb");
    std::fs::write(&garbage, b"this is not a structure\n").unwrap();
    let out = dir.join("out.png");
    for path in [garbage.to_str().unwrap(), dir.join("missing.cif").to_str().unwrap()] {
        let o = molstream(&["render", path, "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{path}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("molstream: ") && err.contains(path), "{err}");
        assert!(!out.exists(), "nothing written for {path}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

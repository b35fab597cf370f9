//! The engine stays pure: its normal dependency tree holds none of tokio, quinn, wgpu, winit
//! or egui (ARCHITECTURE.md: engine ← net ← viewer).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

const FORBIDDEN: &[&str] =
    &["tokio", "quinn", "wgpu", "winit", "egui", "egui-wgpu", "egui-winit", "molstream-net", "molstream-viewer"];

#[test]
fn engine_depends_on_no_async_network_or_gpu_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "-p", "molstream-engine", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"molstream-engine") && crates.contains(&"glam"), "unexpected tree:\n{tree}");
    let bad: Vec<&&str> = crates.iter().filter(|c| FORBIDDEN.contains(c)).collect();
    assert!(bad.is_empty(), "molstream-engine pulls in {bad:?}");
}

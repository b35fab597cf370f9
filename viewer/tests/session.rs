//! The room's scene driving the renderer, end to end: the bundled plugins against a relay in
//! the test's process, through the headless session (the same sync and upload code as the
//! window). A trajectory arrives as partial atom writes that change the GPU's picture; the
//! shapes demo's shapes reach the shape layers and the pixels, and go when it is deactivated;
//! the minimizer's integration streams positions; selection travels to the room.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use bytes::Bytes;
use molstream_engine::AtomId;
use molstream_engine::io::{LoadOptions, load_bytes};
use molstream_plugins::shapes_demo::{HBOND_MAX, HBOND_MIN, hbonds, ligand_atoms};
use molstream_plugins::trajectory::{TrajectoryConfig, TrajectorySource, load_trajectory};
use molstream_plugins::{HVR_PDB, loader, minimizer, shapes_demo, trajectory};
use molstream_viewer::session::{ShapeWork, shape_stream};
use molstream_viewer::testing::{TestRelay, gpu_tests_skipped};
use molstream_viewer::workspace::DocSource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trajectory_reaches_the_gpu_as_partial_writes() {
    let cfg = TrajectoryConfig { source: TrajectorySource::bundled(), fps: 30.0, loops: 0 };
    let (_, models) = load_trajectory(&cfg.source).unwrap();
    let relay = TestRelay::start(|h| trajectory::register(h, cfg)).await.unwrap();
    let mut s = relay.join("traj", "ada").await.unwrap();
    s.run("Trajectory streamer").await.unwrap();
    let complex = s.wait_for_structure().await.unwrap();
    let (id, n) = (complex.id, complex.current().topology.atom_count());

    // The first sync lays the complex out (buffers created); later ones move atoms in place.
    let work = s.sync().unwrap();
    assert!(work.relayout && work.added == [id], "{work:?}");
    assert_eq!(s.scene().documents[0].source, DocSource::Room);
    let frames = |s: &molstream_net::scene::RoomScene| s.scene_complex(id).map_or(0, |c| c.frames);
    let seen = s.client().with_scene(frames).unwrap();
    s.wait_for("position frames", |r| (frames(r) > seen + 2).then_some(())).await.unwrap();
    let work = s.sync().unwrap();
    assert!(!work.relayout && !work.transforms, "{work:?}");
    assert_eq!(work.atoms.len(), 1);
    assert!(work.atoms[0].end <= n && !work.atoms[0].is_empty(), "{:?}", work.atoms);
    // What the renderer holds is one of the ensemble's models (to the stream's 0.001 Å).
    let held: Vec<[f32; 3]> = s.scene().atoms.iter().map(|a| a.position).collect();
    let close = |m: &Vec<glam::Vec3>| m.iter().zip(&held).all(|(p, q)| (p.to_array()[0] - q[0]).abs() < 2e-3);
    assert!(models.iter().any(close), "the positions of a model");

    if !gpu_tests_skipped() {
        // Same camera, the atom buffer written in place: the picture changes with the frames,
        // and only with them.
        s.render(200, 150).unwrap();
        let r = s.renderer_mut().unwrap();
        let before = r.screenshot().unwrap();
        assert_eq!(r.screenshot().unwrap().diff(&before, 0).differing, 0, "rendering is deterministic");
        let seen = s.client().with_scene(frames).unwrap();
        s.wait_for("more frames", |r| (frames(r) > seen + 2).then_some(())).await.unwrap();
        let work = s.sync().unwrap();
        assert!(!work.relayout && !work.atoms.is_empty());
        let after = s.renderer_mut().unwrap().screenshot().unwrap();
        assert!(after.diff(&before, 8).differing > 50, "the atoms moved on the GPU");
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shapes_demo_draws_and_deactivating_it_clears_its_shapes() {
    let relay = TestRelay::start(|h| shapes_demo::register(loader::register(h, loader::LoaderConfig::default())))
        .await
        .unwrap();
    let mut s = relay.join("shapes", "ada").await.unwrap();
    s.run("Structure loader").await.unwrap();
    s.wait_for_notification("loaded 1hvr").await.unwrap();
    let demo = s.run("Shapes demo").await.unwrap();
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let hvr = load_bytes(HVR_PDB, "1hvr.pdb", None, &opts).unwrap().complex;
    let (t, p) = (hvr.current().topology, hvr.current().positions);
    let (spheres, lines) = (ligand_atoms(t).len(), hbonds(t, p, HBOND_MIN, HBOND_MAX).len());
    let count = |set: &molstream_engine::shape::ShapeSet, sphere: bool| {
        use molstream_engine::shape::ShapeKind;
        set.iter().filter(|sh| matches!(sh.kind, ShapeKind::Sphere { .. }) == sphere).count()
    };
    s.wait_for("the demo's shapes", |r| {
        let set = r.shapes(demo)?;
        (count(set, true) == spheres && count(set, false) > lines).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(s.scene().documents.len(), 0, "nothing synced yet");

    if gpu_tests_skipped() {
        let work = s.sync().unwrap();
        assert!(
            work.shapes
                .iter()
                .any(|w| matches!(w, ShapeWork::Update { instance, edits, .. } if *instance == demo && edits.full))
        );
    } else {
        let image = s.render(400, 300).unwrap();
        let counts = s.renderer_mut().unwrap().shapes().counts();
        assert_eq!((counts.spheres as usize, counts.lines as usize, counts.meshes), (spheres, lines, 1));
        assert!(counts.glyphs > 10, "labels: {counts:?}");
        // Without the demo's layer: the translucent box, the spheres and the labels no longer
        // cover the structure, and the dashed hydrogen bonds (255, 220, 0) are gone (1hvr's few
        // sulfurs are yellow too).
        let r = s.renderer_mut().unwrap();
        r.shapes_mut().remove(shape_stream(demo));
        let without = r.screenshot().unwrap();
        let changed = image.diff(&without, 16).differing;
        assert!(changed > 400 * 300 / 20, "{changed} pixels are the shapes'");
        let yellow = |img: &molstream_viewer::render::RgbaImage| {
            img.pixels.chunks_exact(4).filter(|p| p[0] > 200 && p[1] > 170 && p[2] < 60).count()
        };
        let (with, wo) = (yellow(&image), yellow(&without));
        assert!(with > 2 * wo + 20, "{with} yellow pixels with the shapes, {wo} without");
    }

    // Deactivated: its shapes leave the room, and the renderer.
    s.client_mut().deactivate(demo).await.unwrap();
    s.wait_for("the shapes gone", |r| r.shapes(demo).is_none().then_some(())).await.unwrap();
    let work = s.sync().unwrap();
    assert!(work.shapes.contains(&ShapeWork::Remove(demo)), "{work:?}");
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_minimizer_integration_streams_positions_and_selection_reaches_the_room() {
    let relay = TestRelay::start(|h| {
        minimizer::register(loader::register(h, loader::LoaderConfig::default()), minimizer::MinimizerConfig::default())
    })
    .await
    .unwrap();
    let mut s = relay.join("mini", "ada").await.unwrap();
    s.run("Structure loader").await.unwrap();
    let complex = s.wait_for_structure().await.unwrap();
    assert!(s.sync().unwrap().relayout);
    let mini = s.activate("Minimizer").await.unwrap();
    let answer = s.client_mut().integration(mini, "minimization.start", Bytes::new()).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("minimizing"), "{answer:?}");
    s.wait_for_notification("minimized 1hvr").await.unwrap();
    let work = s.sync().unwrap();
    assert!(!work.relayout && work.atoms.len() == 1 && work.atoms[0] == (0..1890), "{work:?}");
    let moved = s
        .scene()
        .atoms
        .iter()
        .zip(complex.current().positions)
        .filter(|(a, p)| glam::Vec3::from_array(a.position).distance(**p) > 0.01);
    assert!(moved.count() > 100, "the minimized positions reached the renderer's scene");

    // Selecting atoms (what a click in the window sends) reaches the room's copy.
    s.client().select_atoms(complex.id, &[AtomId(3), AtomId(4)], true).unwrap();
    let selected =
        s.client().with_scene(|r| r.complex(complex.id).unwrap().current().display.selected[3..5].to_vec()).unwrap();
    assert_eq!(selected, [true, true]);
    // The room's edit reaches the renderer in place (no relayout): every user's selection is
    // shown in every window of the room.
    let work = s.sync().unwrap();
    assert!(!work.relayout && work.atoms.iter().any(|r| r.contains(&3) && r.contains(&4)), "{work:?}");
    let flags: Vec<bool> =
        s.scene().atoms[2..6].iter().map(|a| a.flags & molstream_engine::gpu::ATOM_FLAG_SELECTED != 0).collect();
    assert_eq!(flags, [false, true, true, false]);
    relay.shutdown().await;
}

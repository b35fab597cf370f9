//! Testing a plugin in CI (README, "Testing a plugin in CI"): the README's simplest plugin
//! (`net/examples/simplest.rs`, compiled in as it is) against a relay started by the test,
//! through the viewer's headless session: its structure, its sphere, its notification and the
//! rendered pixels.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[allow(dead_code)]
#[path = "../../net/examples/simplest.rs"]
mod simplest;

use molstream_engine::shape::ShapeKind;
use molstream_net::proto::PluginMeta;
use molstream_viewer::testing::{BACKGROUND, TestRelay, gpu_tests_skipped};

#[tokio::test(flavor = "multi_thread")]
async fn the_simplest_plugin_loads_1hvr_and_marks_its_first_atom() {
    let meta = PluginMeta { name: "Simplest".into(), ..PluginMeta::default() };
    let relay = TestRelay::start(|host| host.plugin(meta, simplest::Simplest::default)).await.unwrap();
    let mut session = relay.join("ci", "tester").await.unwrap();
    session.run("Simplest").await.unwrap();

    let complex = session.wait_for_structure().await.unwrap();
    assert_eq!((complex.name.as_str(), complex.current().topology.atom_count()), ("1hvr", 1890));
    let shapes = session.wait_for_shapes(1).await.unwrap();
    assert!(matches!(shapes[0].kind, ShapeKind::Sphere { radius: 2.0, .. }), "{:?}", shapes[0]);
    assert_eq!(shapes[0].color, 0xff_33_99_ff); // RGBA8, red in the lowest byte: orange
    session.wait_for_notification("1hvr loaded").await.unwrap();

    if !gpu_tests_skipped() {
        let image = session.render(480, 360).unwrap();
        assert!(image.count_not(BACKGROUND, 8) > 480 * 360 / 10, "the structure is drawn");
        let orange = |p: &&[u8]| {
            let [r, g, b] = [p[0], p[1], p[2]].map(u32::from);
            r > 180 && 2 * g > r && 4 * g < 3 * r && 5 * b < 2 * r
        };
        assert!(image.pixels.chunks_exact(4).filter(orange).count() > 100, "the sphere is drawn");
    }
    relay.shutdown().await;
}

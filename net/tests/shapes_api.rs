//! The shapes calls of the plugin instance API, end to end over loopback QUIC: spheres, dashed
//! lines, labels and textured meshes with workspace, complex and atom anchors are uploaded
//! (ids returned), updated by re-upload and destroyed; every user's client and late joiners
//! hold the same shapes; an instance's shapes go with it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{T, World, asset};
use glam::Vec3;
use molstream_engine::AtomId;
use molstream_engine::shape::{Mesh, ShapeSet, Texture};
use molstream_net::client::SessionClient;
use molstream_net::host::SessionError;
use molstream_net::host::shape::{self, Anchor, Shape, ShapeId, ShapeKind};
use molstream_net::proto::InstanceId;

fn shapes_of(c: &SessionClient, instance: InstanceId) -> Option<ShapeSet> {
    c.with_scene(|s| s.shapes(instance).cloned()).flatten()
}

/// Whether the received shape is the one sent, up to the codec's quantization of meshes
/// (positions to 0.001 Å, normals to 12 bits, uvs to 16 bits of their range).
fn same(sent: &Shape, got: &Shape) -> bool {
    match (&sent.kind, &got.kind) {
        (ShapeKind::Mesh(a), ShapeKind::Mesh(b)) => {
            let close = |x: &[Vec3], y: &[Vec3], eps: f32| {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| (*p - *q).abs().max_element() <= eps)
            };
            sent.id == got.id
                && sent.color == got.color
                && a.anchor == b.anchor
                && close(&a.positions, &b.positions, 0.0006)
                && close(&a.normals, &b.normals, 0.002)
                && a.colors == b.colors
                && a.indices == b.indices
                && a.uvs.len() == b.uvs.len()
                && a.uvs.iter().zip(&b.uvs).all(|(p, q)| (*p - *q).abs().max_element() <= 1e-4)
                && a.texture == b.texture
                && a.unlit == b.unlit
        }
        _ => sent == got,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shapes_end_to_end() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let bob = w.client("lab", "bob").await;
    let s = w.activate(&mut ada).await;
    let me = s.instance();
    let c = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();

    let mut torus = Mesh::torus(Anchor::complex(c, Vec3::new(0.0, 0.0, 2.0)), 3.0, 1.0, 16, 12);
    torus.texture =
        Some(Texture { width: 2, height: 2, rgba: vec![255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 9, 9, 9, 255] });
    torus.unlit = true;
    let box_mesh = Mesh::new(
        Anchor::workspace(Vec3::ZERO),
        vec![Vec3::ZERO, Vec3::X, Vec3::Y, Vec3::Z],
        vec![0, 1, 2, 0, 1, 3, 0, 2, 3, 1, 2, 3],
    );
    let mut shapes = vec![
        shape::sphere(Anchor::atom(c, AtomId(10), Vec3::new(0.0, 0.0, 1.0)), 1.5, 0xff_00_00_ff),
        shape::dashed_line(
            Anchor::complex(c, Vec3::ZERO),
            Anchor::atom(c, AtomId(20), Vec3::ZERO),
            0.2,
            0.5,
            0.3,
            0xff_ff_ff_00,
        ),
        shape::label(Anchor::workspace(Vec3::new(1.0, 2.0, 3.0)), "hello, room", 18.0, 0xff_ff_ff_ff),
        shape::mesh(torus, 0xff_80_80_80),
        shape::mesh(box_mesh, 0x80_00_ff_00),
    ];
    let ids = s.upload_shapes(&mut shapes).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids.iter().all(|i| i.0 != 0));
    assert_eq!(shapes.iter().map(|s| s.id).collect::<Vec<_>>(), ids);
    for client in [&ada, &bob] {
        client.wait_for(T, |sc| (sc.shapes(me)?.len() == 5).then_some(())).await.unwrap();
        let got = shapes_of(client, me).unwrap();
        for sent in &shapes {
            assert!(same(sent, got.get(sent.id).unwrap()), "{:?}", sent.kind);
        }
    }

    // Update by re-upload: the same id, a new radius and colour.
    let mut bigger = shapes[0].clone();
    bigger.kind = ShapeKind::Sphere { anchor: Anchor::atom(c, AtomId(11), Vec3::ZERO), radius: 3.0 };
    bigger.color = 0xff_00_ff_ff;
    assert_eq!(s.upload_shape(bigger.clone()).await.unwrap(), ids[0]);
    bob.wait_for(T, |sc| (sc.shapes(me)?.get(ids[0])? == &bigger).then_some(())).await.unwrap();

    // Destroy some; unknown ids and invalid shapes are typed errors and send nothing.
    s.destroy_shapes(&[ids[1], ids[2]]).await.unwrap();
    for client in [&ada, &bob] {
        client.wait_for(T, |sc| (sc.shapes(me)?.len() == 3).then_some(())).await.unwrap();
    }
    assert!(matches!(s.destroy_shapes(&[ShapeId(999)]).await, Err(SessionError::Codec(_))));
    let nan = shape::sphere(Anchor::workspace(Vec3::ZERO), f32::NAN, 0);
    assert!(matches!(s.upload_shape(nan).await, Err(SessionError::Codec(_))));
    let mut broken = Mesh::new(Anchor::workspace(Vec3::ZERO), vec![Vec3::ZERO], vec![0, 0, 5]);
    broken.unlit = true;
    assert!(matches!(s.upload_shape(shape::mesh(broken, 0)).await, Err(SessionError::Codec(_))));
    assert_eq!(s.shapes().await.len(), 3);

    // A late joiner gets the shapes as they are.
    let carol = w.client("lab", "carol").await;
    carol.wait_for(T, |sc| (sc.shapes(me)?.len() == 3).then_some(())).await.unwrap();
    let got = shapes_of(&carol, me).unwrap();
    assert_eq!(got.get(ids[0]), Some(&bigger));
    assert!(same(&shapes[3], got.get(ids[3]).unwrap()));
    assert!(same(&shapes[4], got.get(ids[4]).unwrap()));
    assert!(got.get(ids[1]).is_none());

    // The instance's shapes go with it.
    ada.deactivate(me).await.unwrap();
    for client in [&ada, &bob, &carol] {
        client.wait_for(T, |sc| sc.shapes(me).is_none().then_some(())).await.unwrap();
    }
    drop((ada, bob, carol));
    w.stop().await;
}

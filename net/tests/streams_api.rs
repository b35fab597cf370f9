//! The streams calls of the plugin instance API, end to end over loopback QUIC: writing streams
//! of every kind send delta-coded frames that every client applies; creation returns typed
//! errors; interrupts (destroyed, complex removed, superseded by another instance, shape
//! destroyed, presenter changed) are reported; reading streams carry the positions the
//! presenter's user sets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Seen, T, World, asset, load, max_diff};
use glam::{Quat, Vec3};
use molstream_engine::shape::ShapeKind;
use molstream_engine::{AtomId, ComplexId};
use molstream_net::client::SessionClient;
use molstream_net::host::shape::{self, Anchor, ShapeId};
use molstream_net::host::{Interrupt, StreamData, StreamError, StreamKind, StreamTarget};
use molstream_net::relay::RelayConfig;

fn atoms(ids: &[u32]) -> Vec<AtomId> {
    ids.iter().map(|i| AtomId(*i)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_streams_of_every_kind() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let bob = w.client("lab", "bob").await;
    let s = w.activate(&mut ada).await;
    let me = s.instance();
    let hvr = load("1hvr.pdb");
    let c1 = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    let c2 = s.add_complex(load("4E43.pdb")).await.unwrap();
    let ids = s
        .upload_shapes(&mut [
            shape::sphere(Anchor::atom(c1, AtomId(3), Vec3::ZERO), 1.0, 0xff_00_00_ff),
            shape::line(Anchor::atom(c1, AtomId(0), Vec3::ZERO), Anchor::atom(c1, AtomId(9), Vec3::ZERO), 0.1, 0),
        ])
        .await
        .unwrap();
    let (sphere, line) = (ids[0], ids[1]);
    bob.wait_for(T, |sc| (sc.complex(c2).is_some() && sc.shapes(me)?.len() == 2).then_some(())).await.unwrap();

    let on = |kind, target| s.create_writing_stream(kind, target);
    let c1_atoms = |ids: &[u32]| StreamTarget::Atoms { complex: c1, atoms: atoms(ids) };

    // Atom positions: several updates, each a delta against the one before.
    let pos = on(StreamKind::AtomPosition, c1_atoms(&[0, 1, 2])).await.unwrap();
    let mut last = Vec::new();
    for step in 1..=5 {
        last = (0..3).map(|i| Vec3::new(step as f32, i as f32, -1.5)).collect();
        pos.update(StreamData::Positions(&last)).await.unwrap();
    }
    for c in [&ada, &bob] {
        c.wait_for(T, |sc| {
            let p = sc.complex(c1)?.current().positions;
            (max_diff(&p[..3], &last) <= 0.0005 && max_diff(&p[3..], &hvr.current().positions[3..]) <= 0.0005)
                .then_some(())
        })
        .await
        .unwrap();
    }
    let frames = bob.with_scene(|sc| sc.scene_complex(c1).unwrap().frames).unwrap();
    assert!(frames >= 6, "a keyframe and 5 deltas applied, got {frames}");

    // Colours, radii, labels.
    let col = on(StreamKind::AtomColor, c1_atoms(&[4, 5])).await.unwrap();
    col.update(StreamData::Colors(&[0xff_00_00_11, 0xff_00_00_22])).await.unwrap();
    let rad = on(StreamKind::AtomScale, c1_atoms(&[4])).await.unwrap();
    rad.update(StreamData::Scales(&[2.5])).await.unwrap();
    let lab = on(StreamKind::AtomLabel, c1_atoms(&[6, 7])).await.unwrap();
    lab.update(StreamData::Labels(&["active site".into(), String::new()])).await.unwrap();
    for c in [&ada, &bob] {
        c.wait_for(T, |sc| {
            let d = sc.complex(c1)?.current().display;
            let ok = d.color[4] == 0xff_00_00_11
                && d.color[5] == 0xff_00_00_22
                && d.radius[4] == 2.5
                && d.labeled[6]
                && !d.labeled[7]
                && d.label_text.get(&AtomId(6)).map(String::as_str) == Some("active site");
            ok.then_some(())
        })
        .await
        .unwrap();
    }
    // The GPU buffer follows too.
    assert_eq!(bob.with_scene(|sc| sc.scene_complex(c1).unwrap().buffers.atoms[4].radius), Some(2.5));

    // Complex placement.
    let place = on(StreamKind::ComplexPosition, StreamTarget::Complexes(vec![c1, c2])).await.unwrap();
    place.update(StreamData::Positions(&[Vec3::new(1.0, 2.0, 3.0), Vec3::new(-4.0, 0.0, 0.0)])).await.unwrap();
    let turn = on(StreamKind::ComplexRotation, StreamTarget::Complexes(vec![c2])).await.unwrap();
    let q = Quat::from_rotation_x(1.0);
    turn.update(StreamData::Rotations(&[q])).await.unwrap();
    bob.wait_for(T, |sc| {
        (sc.complex(c1)?.position == Vec3::new(1.0, 2.0, 3.0)
            && sc.complex(c2)?.position == Vec3::new(-4.0, 0.0, 0.0)
            && sc.complex(c2)?.rotation == q)
            .then_some(())
    })
    .await
    .unwrap();

    // Shapes: position (anchor offset), colour, sphere radius.
    let sp = on(StreamKind::ShapePosition, StreamTarget::Shapes(vec![sphere])).await.unwrap();
    sp.update(StreamData::Positions(&[Vec3::new(0.0, 1.0, 0.0)])).await.unwrap();
    let sc_ = on(StreamKind::ShapeColor, StreamTarget::Shapes(vec![sphere, line])).await.unwrap();
    sc_.update(StreamData::Colors(&[1, 2])).await.unwrap();
    let sr = on(StreamKind::SphereRadius, StreamTarget::Shapes(vec![sphere])).await.unwrap();
    sr.update(StreamData::Scales(&[4.0])).await.unwrap();
    bob.wait_for(T, |sc| {
        let set = sc.shapes(me)?;
        let s = set.get(sphere)?;
        let ok = s.color == 1
            && set.get(line)?.color == 2
            && matches!(&s.kind, ShapeKind::Sphere { anchor, radius }
                if *radius == 4.0 && anchor.offset == Vec3::Y && *anchor == Anchor::atom(c1, AtomId(3), Vec3::Y));
        ok.then_some(())
    })
    .await
    .unwrap();

    // Typed errors at creation and update.
    let err = |r: Result<_, StreamError>| r.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(matches!(
        on(StreamKind::AtomPosition, StreamTarget::Atoms { complex: ComplexId(99), atoms: atoms(&[0]) }).await,
        Err(StreamError::UnknownComplex(ComplexId(99)))
    ));
    assert!(matches!(
        on(StreamKind::AtomColor, c1_atoms(&[0, 5000])).await,
        Err(StreamError::UnknownAtom(c, AtomId(5000))) if c == c1
    ));
    assert!(matches!(
        on(StreamKind::ShapeColor, StreamTarget::Shapes(vec![ShapeId(77)])).await,
        Err(StreamError::UnknownShape(ShapeId(77)))
    ));
    assert!(err(on(StreamKind::SphereRadius, StreamTarget::Shapes(vec![line])).await).contains("not a sphere"));
    assert!(matches!(
        on(StreamKind::AtomPosition, StreamTarget::Complexes(vec![c1])).await,
        Err(StreamError::Unsupported(_))
    ));
    assert!(matches!(
        pos.update(StreamData::Positions(&[Vec3::ZERO])).await,
        Err(StreamError::WrongData { expected: 3, got: 1, .. })
    ));
    assert!(matches!(pos.update(StreamData::Colors(&[1, 2, 3])).await, Err(StreamError::WrongData { .. })));
    assert!(matches!(sp.update(StreamData::Positions(&[Vec3::splat(f32::NAN)])).await, Err(StreamError::Session(_))));

    // Interrupts: destroyed; complex removed (reported to the instance); shape destroyed.
    let pos_id = pos.id();
    pos.clone().destroy();
    assert!(matches!(
        pos.update(StreamData::Positions(&[Vec3::ZERO; 3])).await,
        Err(StreamError::Interrupted(Interrupt::Destroyed))
    ));
    s.remove_complexes(&[c2]).await.unwrap();
    w.seen(me, &Seen::Interrupted(place.id(), Interrupt::ComplexRemoved(c2))).await;
    w.seen(me, &Seen::Interrupted(turn.id(), Interrupt::ComplexRemoved(c2))).await;
    assert!(matches!(
        turn.update(StreamData::Rotations(&[Quat::IDENTITY])).await,
        Err(StreamError::Interrupted(Interrupt::ComplexRemoved(c))) if c == c2
    ));
    assert_eq!(w.count(me, |e| matches!(e, Seen::Interrupted(id, _) if *id == pos_id)), 0);
    s.destroy_shapes(&[line]).await.unwrap();
    assert!(matches!(
        sc_.update(StreamData::Colors(&[3, 4])).await,
        Err(StreamError::Interrupted(Interrupt::ShapeDestroyed(l))) if l == line
    ));
    // Streams not touched go on.
    col.update(StreamData::Colors(&[7, 8])).await.unwrap();
    bob.wait_for(T, |sc| (sc.complex(c1)?.current().display.color[4] == 7).then_some(())).await.unwrap();

    drop((ada, bob));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_adopts_a_complex_and_supersedes_the_first() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let a = w.activate(&mut ada).await;
    let b = w.activate_named(&mut ada, "Probe2").await;
    let c = a.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    let target = || StreamTarget::Atoms { complex: c, atoms: vec![AtomId(0)] };
    let sa = a.create_writing_stream(StreamKind::AtomPosition, target()).await.unwrap();
    sa.update(StreamData::Positions(&[Vec3::splat(1.0)])).await.unwrap();
    ada.wait_for(T, |s| (s.complex(c)?.current().positions[0] == Vec3::splat(1.0)).then_some(())).await.unwrap();
    // B streams the complex A published: it adopts it (fetches it whole from the presenter and
    // publishes it anew); the last keyframe wins and A's stream is superseded.
    let sb = b.create_writing_stream(StreamKind::AtomPosition, target()).await.unwrap();
    sb.update(StreamData::Positions(&[Vec3::splat(2.0)])).await.unwrap();
    ada.wait_for(T, |s| (s.complex(c)?.current().positions[0] == Vec3::splat(2.0)).then_some(())).await.unwrap();
    w.seen(a.instance(), &Seen::Interrupted(sa.id(), Interrupt::Superseded(c))).await;
    assert!(matches!(
        sa.update(StreamData::Positions(&[Vec3::splat(3.0)])).await,
        Err(StreamError::Interrupted(Interrupt::Superseded(_)))
    ));
    // B's stream is untouched by its own keyframe, and a late joiner gets B's version only.
    sb.update(StreamData::Positions(&[Vec3::splat(4.0)])).await.unwrap();
    let late = w.client("lab", "late").await;
    late.wait_for(T, |s| (s.complex(c)?.current().positions[0] == Vec3::splat(4.0)).then_some(())).await.unwrap();
    let source = late.with_scene(|s| s.scene_complex(c).unwrap().source.0).unwrap();
    assert_eq!(source, b.instance());
    drop((ada, late));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_streams_carry_the_presenters_moves() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let s = w.activate(&mut ada).await;
    let c = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    ada.wait_for(T, |sc| sc.complex(c).map(|_| ())).await.unwrap();
    assert!(matches!(s.create_reading_stream(ComplexId(55), &[]).await, Err(StreamError::UnknownComplex(_))));
    assert!(matches!(
        s.create_reading_stream(c, &[AtomId(1), AtomId(9999)]).await,
        Err(StreamError::UnknownAtom(_, AtomId(9999)))
    ));
    let mut r = s.create_reading_stream(c, &[AtomId(5), AtomId(0)]).await.unwrap();
    // The first frame carries the positions as they are.
    let hvr = load("1hvr.pdb");
    let first = tokio::time::timeout(T, r.next()).await.unwrap().unwrap();
    let p = hvr.current().positions;
    assert!(max_diff(&first, &[p[5], p[0]]) <= 0.0005);
    // The presenter's user moves atoms; each move reaches the instance.
    for step in 1..=3 {
        let to = Vec3::new(step as f32, 0.5, -0.25);
        ada.move_atoms(c, &[(AtomId(0), to)]).await.unwrap();
        let got = tokio::time::timeout(T, async {
            loop {
                let got = r.next().await.unwrap();
                if max_diff(&got[1..], &[to]) <= 0.0005 {
                    return got;
                }
            }
        })
        .await
        .unwrap();
        assert!(max_diff(&got[..1], &[p[5]]) <= 0.0005);
    }
    // The presenter feeds at most 32 reading streams at once (its uplinks stay below the
    // relay's limit, so no instance can get the presenter closed).
    let mut more = Vec::new();
    for _ in 0..31 {
        more.push(s.create_reading_stream(c, &[AtomId(0)]).await.unwrap());
    }
    assert!(matches!(s.create_reading_stream(c, &[]).await, Err(StreamError::Unsupported(_))));
    more.pop().unwrap().destroy().await.unwrap();
    let again = tokio::time::timeout(T, async {
        loop {
            match s.create_reading_stream(c, &[]).await {
                Ok(r) => return r,
                Err(StreamError::Unsupported(_)) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("a destroyed reading stream frees its place");
    // Dropping reading streams ends them too: 31 places are free again.
    drop((more, again));
    let mut refill = Vec::new();
    tokio::time::timeout(T, async {
        while refill.len() < 31 {
            match s.create_reading_stream(c, &[AtomId(0)]).await {
                Ok(r) => refill.push(r),
                Err(StreamError::Unsupported(_)) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("dropped reading streams free their places");
    drop(refill);
    // Removing the complex ends the stream, and the instance is told.
    s.remove_complexes(&[c]).await.unwrap();
    assert_eq!(tokio::time::timeout(T, async { while r.next().await.is_some() {} }).await, Ok(()));
    w.seen(s.instance(), &Seen::Interrupted(r.id(), Interrupt::ComplexRemoved(c))).await;
    drop(ada);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presenter_change_interrupts_streams_and_the_new_presenter_answers() {
    let cfg = RelayConfig {
        plugin_key: common::KEY.into(),
        stop_instances_when_presenter_leaves: false,
        ..RelayConfig::default()
    };
    let mut w = World::with(cfg).await;
    let mut ada = w.client("lab", "ada").await;
    let bob: SessionClient = w.client("lab", "bob").await;
    let s = w.activate(&mut ada).await;
    let c = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    bob.wait_for(T, |sc| sc.complex(c).map(|_| ())).await.unwrap();
    let st = s
        .create_writing_stream(StreamKind::AtomColor, StreamTarget::Atoms { complex: c, atoms: vec![AtomId(0)] })
        .await
        .unwrap();
    let bob_id = bob.view().you;
    ada.close();
    drop(ada);
    w.seen(s.instance(), &Seen::Interrupted(st.id(), Interrupt::PresenterChanged(bob_id))).await;
    assert!(matches!(
        st.update(StreamData::Colors(&[1])).await,
        Err(StreamError::Interrupted(Interrupt::PresenterChanged(_)))
    ));
    // Bob holds the same copy of the room and answers now.
    assert_eq!(s.presenter(), bob_id);
    let list = s.request_complex_list().await.unwrap();
    assert_eq!(list.iter().map(|i| (i.id, i.atoms)).collect::<Vec<_>>(), vec![(c, 1890)]);
    let st = s
        .create_writing_stream(StreamKind::AtomColor, StreamTarget::Atoms { complex: c, atoms: vec![AtomId(0)] })
        .await
        .unwrap();
    st.update(StreamData::Colors(&[0xff_12_34_56])).await.unwrap();
    bob.wait_for(T, |sc| (sc.complex(c)?.current().display.color[0] == 0xff_12_34_56).then_some(())).await.unwrap();
    drop(bob);
    w.stop().await;
}

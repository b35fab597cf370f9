//! The workspace and session-service calls of the plugin instance API, end to end over loopback
//! QUIC: an instance (the probe) calls the API, the presenter's client answers, every client's
//! copy of the room follows, late joiners get the room's state, and the presenter reports
//! workspace events to the instance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Seen, T, World, asset, load, max_diff};
use glam::{Quat, Vec3};
use molstream_engine::io::{LoadOptions, load_bytes};
use molstream_engine::{AtomId, ColorScheme, ComplexId, DisplayState, Style, Workspace};
use molstream_net::api::ApiError;
use molstream_net::client::SessionClient;
use molstream_net::host::SessionError;
use molstream_net::scene::{Effect, RoomScene};
use tokio::time::timeout;

fn has(s: &RoomScene, id: ComplexId, atoms: usize) -> Option<()> {
    (s.complex(id)?.current().topology.atom_count() == atoms).then_some(())
}

/// The complexes a client holds, by id (the workspace keeps arrival order, which differs
/// between a user present and a late joiner who gets the room's channels replayed at once).
fn ids(c: &SessionClient) -> Vec<ComplexId> {
    let mut ids: Vec<ComplexId> = c.with_scene(|s| s.workspace().complexes().iter().map(|c| c.id).collect()).unwrap();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_and_services_end_to_end() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let bob = w.client("lab", "bob").await;
    let s = w.activate(&mut ada).await;
    let me = s.instance();

    // Load files (PDB, mmCIF) into the session; a file that is no structure is a typed error.
    let hvr = load("1hvr.pdb");
    let id1 = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    let yjp = load("1YJP.cif");
    let n2 = yjp.current().topology.atom_count();
    let id2 = s.load_file("1YJP.cif", &std::fs::read(asset("1YJP.cif")).unwrap()).await.unwrap();
    assert_ne!(id1, id2);
    let err = s.load_file("junk.pdb", b"this is not a structure\n").await.unwrap_err();
    assert!(matches!(err, SessionError::Load(_)), "{err}");
    for c in [&ada, &bob] {
        c.wait_for(T, |s| has(s, id1, 1890).and(has(s, id2, n2))).await.unwrap();
    }
    w.seen(me, &Seen::Added(vec![id1])).await;
    w.seen(me, &Seen::Added(vec![id2])).await;
    let name = ada.with_scene(|s| s.complex(id1).unwrap().name.clone()).unwrap();
    assert_eq!(name, "1hvr");

    // Shallow: the list, and complexes by id (None for one not in the workspace).
    let list = s.request_complex_list().await.unwrap();
    assert_eq!(list.iter().map(|c| (c.id, c.atoms)).collect::<Vec<_>>(), vec![(id1, 1890), (id2, n2 as u32)]);
    assert_eq!(list[0].residues as usize, hvr.current().topology.residue_count());
    let shallow = s.request_complexes_shallow(&[id2, ComplexId(999)]).await.unwrap();
    assert_eq!(shallow[0].as_ref().map(|c| c.name.as_str()), Some("1YJP"));
    assert!(shallow[1].is_none());

    // Deep: whole complexes, at the SDK's 0.001 Å precision.
    let deep = s.request_complexes(&[id1, ComplexId(999)]).await.unwrap();
    let got = deep[0].as_ref().unwrap();
    assert_eq!(got.id, id1);
    assert_eq!(got.current().topology.atoms.name.len(), 1890);
    assert!(got.current().topology.same_identity(hvr.current().topology));
    assert!(max_diff(got.current().positions, hvr.current().positions) <= 0.0005 + 1e-6);
    assert!(deep[1].is_none());
    assert!(matches!(
        s.request_complex(ComplexId(999)).await,
        Err(SessionError::Api(ApiError::UnknownComplex(ComplexId(999))))
    ));
    assert!(matches!(s.request_complexes(&vec![id1; 1025]).await, Err(SessionError::Api(ApiError::Unsupported(_)))));
    let same = s.request_complexes(&[id1, id1, id1]).await.unwrap();
    assert!(same.iter().all(|c| c.as_ref().unwrap().current().positions == got.current().positions));
    let ws = s.request_workspace().await.unwrap();
    assert_eq!(ws.complexes().len(), 2);

    // Add a complex built by the plugin.
    let e43 = load("4E43.pdb");
    let n3 = e43.current().topology.atom_count();
    let id3 = s.add_complex(e43.clone()).await.unwrap();
    bob.wait_for(T, |s| has(s, id3, n3)).await.unwrap();

    // Shallow update: a new name and placement (a keyframe), then placement only (a transform
    // frame).
    let mut info = s.request_complexes_shallow(&[id1]).await.unwrap()[0].clone().unwrap();
    info.name = "renamed".into();
    info.position = Vec3::new(10.0, 0.0, 0.0);
    s.update_structures_shallow(&[info.clone()]).await.unwrap();
    info.position = Vec3::new(5.0, 5.0, 5.0);
    info.rotation = Quat::from_rotation_y(0.25);
    s.update_structures_shallow(&[info.clone()]).await.unwrap();
    for c in [&ada, &bob] {
        c.wait_for(T, |s| {
            let c = s.complex(id1)?;
            (c.name == "renamed" && c.position == Vec3::new(5.0, 5.0, 5.0) && c.rotation == Quat::from_rotation_y(0.25))
                .then_some(())
        })
        .await
        .unwrap();
    }
    w.seen(me, &Seen::Updated(vec![id1])).await;

    // Deep update: new coordinates.
    let mut moved = s.request_complex(id3).await.unwrap();
    let shifted: Vec<Vec3> = moved.current().positions.iter().map(|p| *p + Vec3::X).collect();
    moved.set_positions(0, shifted.clone()).unwrap();
    s.update_structures_deep(std::slice::from_ref(&moved)).await.unwrap();
    bob.wait_for(T, |s| (max_diff(s.complex(id3)?.current().positions, &shifted) < 0.001).then_some(())).await.unwrap();
    let mut ghost = moved.clone();
    ghost.id = ComplexId(4242);
    assert!(matches!(
        s.update_structures_deep(&[ghost]).await,
        Err(SessionError::Api(ApiError::UnknownComplex(ComplexId(4242))))
    ));

    // A colour scheme, for everyone.
    s.apply_color_scheme(ColorScheme::Chain, &[id1]).await.unwrap();
    let t = hvr.current().topology;
    let mut want = DisplayState::styled(t, Style::default());
    want.apply_color_scheme(t, ColorScheme::Chain);
    for c in [&ada, &bob] {
        c.wait_for(T, |s| (s.complex(id1)?.current().display.color == want.color).then_some(())).await.unwrap();
    }

    // Export as PDB: the text loads back to the same atoms (PDB keeps 3 decimals).
    let pdb = s.export_pdb(&[id1]).await.unwrap();
    let back = load_bytes(pdb[0].as_bytes(), "export.pdb", None, &LoadOptions::default()).unwrap().complex;
    assert_eq!(back.current().topology.atom_count(), 1890);
    assert!(max_diff(back.current().positions, hvr.current().positions) <= 0.0011);
    assert!(matches!(s.export_pdb(&[ComplexId(77)]).await, Err(SessionError::Api(ApiError::UnknownComplex(_)))));

    // Camera, URL, presenter info.
    s.zoom_on(&[id1]).await.unwrap();
    s.center_on(&[id3]).await.unwrap();
    s.open_url("https://www.rcsb.org/structure/1HVR").await.unwrap();
    let focus = |s: &RoomScene| {
        let f: Vec<_> = s.effects().iter().filter(|e| matches!(e, Effect::Focus { .. })).cloned().collect();
        (f.len() == 2).then_some(f)
    };
    let f = bob.wait_for(T, focus).await.unwrap();
    assert_eq!(f[0], Effect::Focus { instance: me, ids: vec![id1], zoom: true });
    assert_eq!(f[1], Effect::Focus { instance: me, ids: vec![id3], zoom: false });
    ada.wait_for(T, focus).await.unwrap();
    ada.wait_for(T, |s| {
        s.effects()
            .iter()
            .any(|e| *e == Effect::OpenUrl { instance: me, url: "https://www.rcsb.org/structure/1HVR".into() })
            .then_some(())
    })
    .await
    .unwrap();
    let info = s.presenter_info().await.unwrap();
    assert_eq!((info.user, info.name.as_str()), (ada.view().you, "ada"));
    assert!(info.client.starts_with("molstream-net"));
    // The URL went to the presenter only.
    assert!(!bob.with_scene(|s| s.effects().iter().any(|e| matches!(e, Effect::OpenUrl { .. }))).unwrap());

    // The presenter's user selects and moves atoms: the instance is told. So it is when Bob,
    // who does not present, selects: the selection is the room's (see `user_edits_…` below).
    ada.select_atoms(id1, &[AtomId(0), AtomId(1), AtomId(2)], true).unwrap();
    w.seen(me, &Seen::Selection(id1)).await;
    assert_eq!(
        ada.with_scene(|s| s.complex(id1).unwrap().current().display.selected.iter().filter(|x| **x).count()),
        Some(3)
    );
    bob.select_atoms(id2, &[AtomId(0)], true).unwrap();
    w.seen(me, &Seen::Selection(id2)).await;
    ada.move_atoms(id3, &[(AtomId(0), Vec3::splat(1.0))]).await.unwrap();
    w.seen(me, &Seen::Updated(vec![id3])).await;
    assert_eq!(w.count(me, |e| matches!(e, Seen::Selection(_))), 2);

    // Remove a complex: gone for everyone; the instance is told.
    s.remove_complexes(&[id3]).await.unwrap();
    for c in [&ada, &bob] {
        c.wait_for(T, |s| s.complex(id3).is_none().then_some(())).await.unwrap();
    }
    w.seen(me, &Seen::Removed(vec![id3])).await;

    // A late joiner gets the room as it is.
    let carol = w.client("lab", "carol").await;
    carol
        .wait_for(T, |s| {
            let c = s.complex(id1)?;
            (c.name == "renamed" && c.position == Vec3::new(5.0, 5.0, 5.0) && c.current().display.color == want.color)
                .then_some(())
        })
        .await
        .unwrap();
    carol.wait_for(T, |s| has(s, id2, n2)).await.unwrap();
    assert_eq!(ids(&carol), vec![id1, id2]);

    // Make the workspace: keep id1, drop id2, add 5PTI.
    let pti = load("5PTI.cif");
    let n4 = pti.current().topology.atom_count();
    let mut fresh = Workspace::new();
    fresh.insert(s.request_complex(id1).await.unwrap());
    // A complex with id 0 is new (inserted as is: `add` would give it an id).
    fresh.insert(pti);
    let added = s.update_workspace(&fresh).await.unwrap();
    assert_eq!(added.len(), 1);
    let id4 = added[0];
    for c in [&ada, &bob, &carol] {
        c.wait_for(T, |s| has(s, id4, n4).and(s.complex(id2).is_none().then_some(()))).await.unwrap();
    }
    assert_eq!(ids(&ada), vec![id1, id4]);

    // Complexes outlive the instance that published them, for users present and late joiners.
    let instance = ada.view().instances.keys().copied().next().unwrap();
    ada.deactivate(instance).await.unwrap();
    timeout(T, async {
        while !ada.view().instances.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let dave = w.client("lab", "dave").await;
    dave.wait_for(T, |s| has(s, id1, 1890).and(has(s, id4, n4))).await.unwrap();
    assert_eq!(ids(&ada), vec![id1, id4]);

    drop((ada, bob, carol, dave));
    w.stop().await;
}

/// A complex whose keyframe does not fit the room's retained-frame budget still reaches a late
/// joiner: the relay asks the instance for a fresh keyframe when the user joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_gets_a_complex_the_relay_could_not_keep() {
    use molstream_net::relay::RelayConfig;
    let cfg = RelayConfig {
        plugin_key: common::KEY.into(),
        max_retained_frame_bytes_per_room: 1024,
        ..RelayConfig::default()
    };
    let mut w = World::with(cfg).await;
    let mut ada = w.client("lab", "ada").await;
    let s = w.activate(&mut ada).await;
    let id = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    ada.wait_for(T, |s| has(s, id, 1890)).await.unwrap();
    let bob = w.client("lab", "bob").await;
    bob.wait_for(T, |s| has(s, id, 1890)).await.unwrap();
    let same = |c: &SessionClient| c.with_scene(|s| s.complex(id).unwrap().current().positions.to_vec()).unwrap();
    assert_eq!(same(&ada), same(&bob));
    drop((ada, bob));
    w.stop().await;
}

/// The presenter loads complexes and leaves; other users become the workspace's owner in turn
/// and plugins add complexes: every id is new (one that was given and removed before a
/// presenter joined included), and every client holds the same complexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complex_ids_stay_unique_after_the_presenter_hands_over() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let bob = w.client("lab", "bob").await;
    let s = w.activate(&mut ada).await;
    let pdb = std::fs::read(asset("1hvr.pdb")).unwrap();
    let first = [s.load_file("a.pdb", &pdb).await.unwrap(), s.load_file("b.pdb", &pdb).await.unwrap()];
    // The highest id so far is removed again: it is spent all the same.
    let gone = s.load_file("c.pdb", &pdb).await.unwrap();
    s.remove_complexes(&[gone]).await.unwrap();
    bob.wait_for(T, |s| (has(s, first[1], 1890).is_some() && s.complex(gone).is_none()).then_some(())).await.unwrap();
    // Carol joins after the removal: she never saw `gone`.
    let mut carol = w.client("lab", "carol").await;
    carol.wait_for(T, |s| has(s, first[0], 1890).and(has(s, first[1], 1890))).await.unwrap();
    // Ada (the presenter) leaves, then bob: carol owns the workspace.
    drop(ada);
    drop(bob);
    timeout(T, async {
        while carol.view().presenter != carol.view().you {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let s2 = w.activate(&mut carol).await;
    let added = s2.load_file("d.pdb", &pdb).await.unwrap();
    assert!(!first.contains(&added) && added != gone, "{added} was given before ({first:?}, {gone})");
    let again = s2.load_file("e.pdb", &pdb).await.unwrap();
    assert!(!first.contains(&again) && again != gone && again != added, "{again} was given before");
    // A late joiner holds the same complexes as carol (they come on streams of their own, in
    // any order: wait for all of them).
    let mut want = vec![first[0], first[1], added, again];
    want.sort();
    carol.wait_for(T, |s| want.iter().all(|id| has(s, *id, 1890).is_some()).then_some(())).await.unwrap();
    assert_eq!(ids(&carol), want);
    let dave = w.client("lab", "dave").await;
    dave.wait_for(T, |s| want.iter().all(|id| has(s, *id, 1890).is_some()).then_some(())).await.unwrap();
    assert_eq!(ids(&dave), want);
    // Dave knows the ids given: were he to present, he would not give them again.
    assert_eq!(dave.with_scene(RoomScene::ids_reserved), Some(again.0));
    drop((carol, dave));
    w.stop().await;
}

fn selected_atoms(s: &RoomScene, id: ComplexId) -> Option<Vec<usize>> {
    let c = s.complex(id)?;
    let sel: Vec<usize> =
        c.current().display.selected.iter().enumerate().filter(|(_, x)| **x).map(|(i, _)| i).collect();
    // The GPU buffers show the same selection.
    let flags: Vec<usize> = s
        .scene_complex(id)?
        .buffers
        .atoms
        .iter()
        .enumerate()
        .filter(|(_, a)| a.flags & molstream_engine::gpu::ATOM_FLAG_SELECTED != 0)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sel, flags);
    Some(sel)
}

fn position(s: &RoomScene, id: ComplexId, atom: usize) -> Option<Vec3> {
    let p = s.complex(id)?.current().positions[atom];
    let gpu = Vec3::from_array(s.scene_complex(id)?.buffers.atoms[atom].position);
    assert_eq!(p, gpu, "the workspace and the GPU buffer agree");
    Some(p)
}

/// Users' selections and moves are the room's: they reach every other user's scene (and late
/// joiners), and the presenter's client tells the instances and feeds their reading streams,
/// whoever made them, until the publisher sends the complex anew (`tests/room_scene.rs` has
/// the rules without sockets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_edits_reach_the_instances_and_every_other_user() {
    let mut w = World::start().await;
    let mut ada = w.client("lab", "ada").await;
    let bob = w.client("lab", "bob").await;
    let s = w.activate(&mut ada).await;
    let me = s.instance();
    let id = s.load_file("1hvr.pdb", &std::fs::read(asset("1hvr.pdb")).unwrap()).await.unwrap();
    for c in [&ada, &bob] {
        c.wait_for(T, |s| has(s, id, 1890)).await.unwrap();
    }
    let hvr = load("1hvr.pdb");
    let mut reading = s.create_reading_stream(id, &[AtomId(5), AtomId(6)]).await.unwrap();
    timeout(T, reading.next()).await.unwrap().unwrap();

    // Bob, who does not present, selects: ada's scene shows it, and the instance is told (by
    // ada's client, the presenter's).
    bob.select_atoms(id, &[AtomId(0), AtomId(1), AtomId(2)], true).unwrap();
    ada.wait_for(T, |s| (selected_atoms(s, id)? == [0, 1, 2]).then_some(())).await.unwrap();
    w.seen(me, &Seen::Selection(id)).await;
    // Ada deselects one: bob's scene follows.
    ada.select_atoms(id, &[AtomId(1)], false).unwrap();
    bob.wait_for(T, |s| (selected_atoms(s, id)? == [0, 2]).then_some(())).await.unwrap();

    // Bob moves an atom: ada's scene shows it, the instance is told and its reading stream
    // gets the position.
    let to = Vec3::new(1.0, 2.0, 3.0);
    bob.move_atoms(id, &[(AtomId(5), to)]).await.unwrap();
    ada.wait_for(T, |s| (position(s, id, 5)? == to).then_some(())).await.unwrap();
    w.seen(me, &Seen::Updated(vec![id])).await;
    let got = timeout(T, async {
        loop {
            let got = reading.next().await.unwrap();
            if (got[0] - to).abs().max_element() <= 0.0005 {
                return got;
            }
        }
    })
    .await
    .unwrap();
    assert!((got[1] - hvr.current().positions[6]).abs().max_element() <= 0.0005);

    // A late joiner gets the users' edits with the complex.
    let carol = w.client("lab", "carol").await;
    carol.wait_for(T, |s| (position(s, id, 5)? == to && selected_atoms(s, id)? == [0, 2]).then_some(())).await.unwrap();

    // The instance sends the complex anew: the users' edits were of the former one and go,
    // for everyone.
    let mut fresh = hvr.clone();
    fresh.id = id;
    s.update_structures_deep(&[fresh]).await.unwrap();
    for c in [&ada, &bob, &carol] {
        c.wait_for(T, |s| {
            let back = (position(s, id, 5)? - hvr.current().positions[5]).abs().max_element() <= 0.0005;
            (back && selected_atoms(s, id)?.is_empty() && s.edits(id).is_none()).then_some(())
        })
        .await
        .unwrap();
    }
    drop((ada, bob, carol));
    w.stop().await;
}

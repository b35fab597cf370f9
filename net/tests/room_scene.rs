//! A session client's copy of its room, without sockets: users' edits (selection, moved
//! atoms) over the publisher's frames, edits that come before their keyframe, the room's
//! menus, the ids given out, and the complex handed out being the current one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use glam::Vec3;
use molstream_engine::codec::Limits;
use molstream_engine::codec::attrs::AttributeChanges;
use molstream_engine::codec::stream::{Frame, FrameReader, StreamEncoder};
use molstream_engine::gpu::ATOM_FLAG_SELECTED;
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::{AtomId, Complex, ComplexId};
use molstream_net::api::{ComplexEdits, Epoch};
use molstream_net::menu::{Menu, MenuUpdate};
use molstream_net::proto::{InstanceId, ROOM_CHANNELS};
use molstream_net::scene::{EditChange, RoomScene, SceneChange};

const ID: ComplexId = ComplexId(4);
const PUBLISHER: InstanceId = InstanceId(9);
const CHANNEL: u32 = ROOM_CHANNELS + 4;

fn hvr() -> Complex {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");
    load_file(path, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() }).unwrap().complex
}

fn read(bytes: &[u8]) -> Frame {
    let mut r = FrameReader::new(Limits::default());
    r.push_bytes(bytes);
    r.try_read().unwrap().unwrap()
}

fn apply(scene: &mut RoomScene, bytes: &[u8]) -> SceneChange {
    scene.apply_frame(PUBLISHER, CHANNEL, &read(bytes)).unwrap()
}

fn keyframe(enc: &mut StreamEncoder, c: &Complex) -> Vec<u8> {
    let mut b = Vec::new();
    enc.keyframe(c, &mut b).unwrap();
    b
}

fn selected(scene: &RoomScene) -> Vec<usize> {
    let c = scene.complex(ID).unwrap();
    let sel: Vec<usize> =
        c.current().display.selected.iter().enumerate().filter(|(_, s)| **s).map(|(i, _)| i).collect();
    let gpu: Vec<usize> = scene
        .scene_complex(ID)
        .unwrap()
        .buffers
        .atoms
        .iter()
        .enumerate()
        .filter(|(_, a)| a.flags & ATOM_FLAG_SELECTED != 0)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sel, gpu, "the workspace and the GPU buffer agree");
    sel
}

fn at(scene: &RoomScene, atom: usize) -> Vec3 {
    let p = scene.complex(ID).unwrap().current().positions[atom];
    assert_eq!(p, Vec3::from_array(scene.scene_complex(ID).unwrap().buffers.atoms[atom].position));
    p
}

fn close(a: Vec3, b: Vec3) -> bool {
    (a - b).abs().max_element() <= 0.0006
}

#[test]
fn users_edits_hold_over_the_publishers_frames_until_it_sends_the_complex_anew() {
    let mut c = hvr();
    c.id = ID;
    let mut enc = StreamEncoder::new(ID.0, 3);
    let mut scene = RoomScene::default();
    assert_eq!(apply(&mut scene, &keyframe(&mut enc, &c)), SceneChange::ComplexAdded(ID));
    let epoch = scene.scene_complex(ID).unwrap().epoch();
    assert_eq!(epoch, Epoch { instance: PUBLISHER, seq: 0 });

    // A selection and a move, as the client makes them (and sends them to the room).
    let e = scene.select_edit(ID, &[AtomId(1), AtomId(2), AtomId(3)], true).unwrap();
    assert_eq!(e.selected, Some(vec![(1, 3)]));
    assert_eq!(scene.apply_edit(e), Some(EditChange { selection: true, moved: false }));
    let to = Vec3::new(5.0, 6.0, 7.0);
    let e = scene.move_edit(ID, &[(AtomId(10), to), (AtomId(99_999), to)]).unwrap();
    assert_eq!(e.moved, vec![(10, to)], "atoms past the count are left out");
    assert_eq!(scene.apply_edit(e.clone()), Some(EditChange { selection: false, moved: true }));
    assert_eq!(scene.apply_edit(e), Some(EditChange::default()), "the same edits again change nothing");
    assert_eq!((selected(&scene), at(&scene, 10)), (vec![1, 2, 3], to));
    let frames = scene.scene_complex(ID).unwrap().frames;

    // The publisher streams positions: every atom follows but the one users moved.
    let shifted: Vec<Vec3> = c.current().positions.iter().map(|p| *p + Vec3::Y).collect();
    let mut b = Vec::new();
    enc.delta(&shifted, &mut b).unwrap();
    assert!(matches!(apply(&mut scene, &b), SceneChange::ComplexChanged(ID, _)));
    assert!(close(at(&scene, 11), shifted[11]));
    assert_eq!(at(&scene, 10), to);
    // What the stream holds is the publisher's, the move left out.
    let sent = scene.scene_complex(ID).unwrap().decoder.positions();
    assert!(close(sent[10], shifted[10]) && close(sent[11], shifted[11]));
    assert!(scene.scene_complex(ID).unwrap().frames > frames, "`frames` counts edits and frames");

    // The publisher changes attributes, the selection among them: the users' selection holds.
    let changes = AttributeChanges {
        selected: vec![(AtomId(0), true)],
        color: vec![(AtomId(2), 0xff00_00ff)],
        ..AttributeChanges::default()
    };
    let mut b = Vec::new();
    enc.attribute_changes(&mut c, &changes, &mut b).unwrap().unwrap();
    apply(&mut scene, &b);
    assert_eq!(selected(&scene), vec![1, 2, 3]);
    assert_eq!(scene.complex(ID).unwrap().current().display.color[2], 0xff00_00ff);

    // Deselecting back to nothing is a selection too (users chose it).
    let e = scene.select_edit(ID, &[AtomId(1), AtomId(2), AtomId(3)], false).unwrap();
    assert_eq!(e.selected, Some(vec![]));
    scene.apply_edit(e);
    assert!(selected(&scene).is_empty());

    // Edits without the move (another user's, written before it): the atom goes back to where
    // the publisher put it.
    let mut e = scene.edits(ID).unwrap().clone();
    e.moved.clear();
    assert_eq!(scene.apply_edit(e), Some(EditChange { selection: false, moved: true }));
    assert!(close(at(&scene, 10), shifted[10]));

    // The publisher sends the complex anew: the edits were of the former one.
    scene.apply_edit(scene.move_edit(ID, &[(AtomId(10), to)]).unwrap());
    c.set_positions(0, shifted.clone()).unwrap();
    assert_eq!(apply(&mut scene, &keyframe(&mut enc, &c)), SceneChange::ComplexReplaced(ID));
    assert!(scene.edits(ID).is_none());
    assert!(close(at(&scene, 10), shifted[10]));
    assert_eq!(selected(&scene), vec![0], "the publisher's selection");
    // Edits of the former epoch no longer apply.
    let mut stale = ComplexEdits::new(ID, epoch);
    stale.moved = vec![(10, to)];
    assert_eq!(scene.apply_edit(stale), None);
    assert!(close(at(&scene, 10), shifted[10]));
}

#[test]
fn edits_that_come_before_their_keyframe_wait_for_it() {
    let mut c = hvr();
    c.id = ID;
    let mut scene = RoomScene::default();
    // A late joiner gets the room's edits (control messages) before the complex's frames.
    let to = Vec3::splat(2.5);
    let edits = ComplexEdits {
        complex: ID,
        epoch: Epoch { instance: PUBLISHER, seq: 0 },
        selected: Some(vec![(0, 2)]),
        moved: vec![(3, to)],
    };
    assert_eq!(scene.apply_edit(edits.clone()), None);
    let mut enc = StreamEncoder::new(ID.0, 3);
    apply(&mut scene, &keyframe(&mut enc, &c));
    assert_eq!(scene.edits(ID), Some(&edits));
    assert_eq!((selected(&scene), at(&scene, 3)), (vec![0, 1], to));

    // Edits of an epoch that never comes do not apply to another one.
    let mut other = RoomScene::default();
    other.apply_edit(ComplexEdits { epoch: Epoch { instance: PUBLISHER, seq: 7 }, ..edits });
    let mut enc = StreamEncoder::new(ID.0, 3);
    apply(&mut other, &keyframe(&mut enc, &c));
    assert!(other.edits(ID).is_none());
    assert!(selected(&other).is_empty());

    // A removed complex drops its edits, and later ones.
    assert!(scene.remove(ID));
    assert!(scene.edits(ID).is_none());
    assert_eq!(scene.apply_edit(ComplexEdits::new(ID, Epoch { instance: PUBLISHER, seq: 0 })), None);
}

#[test]
fn the_scene_keeps_the_rooms_menus_and_ids() {
    let mut scene = RoomScene::default();
    let menu = Menu::new(molstream_net::menu::MenuId(1), "Tools");
    let change = scene.apply_menu(PUBLISHER, &MenuUpdate::Set(menu.clone())).unwrap();
    assert!(change.is_some());
    assert_eq!(scene.menus(PUBLISHER).unwrap().get(menu.id), Some(&menu));
    assert_eq!(scene.apply_menu(PUBLISHER, &MenuUpdate::Set(menu.clone())).unwrap(), None);
    scene.instance_stopped(PUBLISHER);
    assert!(scene.menus(PUBLISHER).is_none());

    // Ids the presenters before gave out are never given again, nor removed ones.
    scene.note_ids_reserved(10);
    assert_eq!(scene.reserve_ids(2), vec![ComplexId(11), ComplexId(12)]);
    scene.note_ids_reserved(5);
    assert_eq!(scene.ids_reserved(), 12);
    scene.remove(ComplexId(40));
    assert_eq!(scene.reserve_ids(1), vec![ComplexId(41)]);
}

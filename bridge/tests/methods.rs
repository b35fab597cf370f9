//! Every method of the bridge, called end to end over a real WebSocket and over a real
//! `redis-server`: a relay, the bridge's plugin instance in the room, and ada's scene-keeping
//! session client (the presenter), whose copy of the room shows each effect. The session's
//! events reach the caller as notifications, and the bridge asks the caller for a file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Options, ROOM, World, asset_text, code, expect_event};
use glam::{Quat, Vec3};
use molstream_bridge::methods::METHODS;
use molstream_bridge::{BridgeClient, rpc};
use molstream_engine::shape::{AnchorTarget, ShapeKind};
use molstream_engine::{AtomId, ComplexId};
use molstream_net::menu::{ItemId, MenuEvent, MenuId};
use molstream_net::scene::Effect;
use serde_json::{Value, json};

fn id(v: &Value) -> u32 {
    u32::try_from(v.as_u64().expect("an id")).unwrap()
}

/// Calls every method of [`METHODS`] through `c` and checks the effect in ada's scene.
#[allow(clippy::too_many_lines)]
async fn exercise(w: &World, c: &BridgeClient) {
    let mut called: Vec<&str> = Vec::new();
    let mut events = c.events();
    let me = w.instance;
    macro_rules! call {
        ($m:expr, $p:expr) => {{
            called.push($m);
            c.call($m, $p).await.unwrap_or_else(|e| panic!("{}: {e}", $m))
        }};
    }

    // The session.
    let list = call!("bridge.sessions", json!({}));
    assert_eq!(list["sessions"][0]["room"], ROOM);
    let info = call!("session.info", json!({}));
    assert_eq!(info["room"], ROOM);
    assert_eq!(info["instance"], me.0);
    assert_eq!(info["presenter"], w.ada.view().you.0);
    let p = call!("presenter.info", json!({}));
    assert_eq!(p["name"], "ada");
    assert_eq!(p["user"], w.ada.view().you.0);

    // Structure files: given as text, then asked of the caller by name (file.read).
    let hvr = id(&call!("structure.load", json!({ "name": "1hvr.pdb", "text": asset_text("1hvr.pdb") }))["complex"]);
    let h = ComplexId(hvr);
    w.scene("1hvr", |s| (s.complex(h)?.current().topology.atom_count() == 1890).then_some(())).await;
    expect_event(&mut events, "event.complexes_added", |p| p["ids"] == json!([hvr])).await;
    c.on_request(|method, params| {
        assert_eq!(method, "file.read");
        match params["name"].as_str() {
            Some("1YJP.cif") => Ok(json!({ "text": asset_text("1YJP.cif") })),
            Some(other) => Err(rpc::RpcError::not_found("file", json!(other))),
            None => Err(rpc::RpcError::invalid_params("no name")),
        }
    });
    let yjp = id(&call!("structure.load", json!({ "name": "1YJP.cif" }))["complex"]);
    w.scene("1YJP", |s| (s.complex(ComplexId(yjp))?.name == "1YJP").then_some(())).await;
    let e = c.call("structure.load", json!({ "name": "missing.pdb" })).await.unwrap_err();
    assert_eq!(code(&e), rpc::CALLER_ERROR, "{e}");
    let e =
        c.call("structure.load", json!({ "name": "junk.pdb", "text": "this is not a structure\n" })).await.unwrap_err();
    assert_eq!(code(&e), rpc::LOAD_FAILED, "{e}");
    let pdb = call!("structure.export", json!({ "ids": [hvr] }));
    let text = pdb["files"][0]["text"].as_str().unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("ATOM") || l.starts_with("HETATM")).count(), 1890);

    // Complexes, shallow.
    let list = call!("complexes.list", json!({}));
    let atoms: Vec<(u32, u64)> =
        list["complexes"].as_array().unwrap().iter().map(|c| (id(&c["id"]), c["atoms"].as_u64().unwrap())).collect();
    assert_eq!(atoms[0], (hvr, 1890));
    assert_eq!(atoms.len(), 2);
    let got = call!("complexes.get", json!({ "ids": [hvr, 999] }));
    assert_eq!(got["complexes"][0]["name"], "1hvr");
    assert!(got["complexes"][1].is_null());
    let mut shallow = got["complexes"][0].clone();
    shallow["name"] = "renamed".into();
    shallow["position"] = json!([5.0, 5.0, 5.0]);
    let rot = Quat::from_rotation_y(0.25);
    shallow["rotation"] = json!(rot.to_array());
    call!("complexes.update", json!({ "complexes": [shallow] }));
    w.scene("the shallow update", |s| {
        let c = s.complex(h)?;
        (c.name == "renamed" && c.position == Vec3::splat(5.0) && c.rotation.abs_diff_eq(rot, 1e-6)).then_some(())
    })
    .await;
    expect_event(&mut events, "event.complexes_updated", |p| p["ids"] == json!([hvr])).await;

    // Complexes, deep: positions only, then a change of positions.
    let deep = call!("complexes.get", json!({ "ids": [hvr], "deep": true, "fields": ["positions"] }));
    let pos = deep["complexes"][0]["positions"].as_array().unwrap().clone();
    assert_eq!(pos.len(), 1890);
    assert!(deep["complexes"][0].get("atoms").is_none());
    let held = w.ada.with_scene(|s| s.complex(h).unwrap().current().positions.to_vec()).unwrap();
    let x0 = pos[0][0].as_f64().unwrap() as f32;
    assert!((x0 - held[0].x).abs() < 1e-3);
    let shifted: Vec<[f32; 3]> = held.iter().map(|p| (*p + Vec3::X).to_array()).collect();
    call!("complexes.update", json!({ "deep": true, "complexes": [{ "id": hvr, "positions": shifted }] }));
    w.scene("the deep update", |s| {
        let p = s.complex(h)?.current().positions;
        p.iter().zip(&held).all(|(a, b)| (*a - (*b + Vec3::X)).abs().max_element() < 2e-3).then_some(())
    })
    .await;

    // Add from columns and from a file given in base64.
    use base64::Engine as _;
    let water = json!({
        "name": "water",
        "atoms": { "name": ["O", "H1", "H2"], "element": ["O", "H", "H"], "residue": [0, 0, 0] },
        "residues": { "name": ["HOH"], "seq_num": [1], "chain": [0] },
        "chains": { "name": ["W"] },
        "positions": [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]],
    });
    let b64 = base64::engine::general_purpose::STANDARD.encode(asset_text("1hvr.pdb"));
    let added =
        call!("complexes.add", json!({ "complexes": [water, { "file": { "name": "copy.pdb", "base64": b64 } }] }));
    let (wid, copy) = (id(&added["ids"][0]), id(&added["ids"][1]));
    w.scene("the added complexes", |s| {
        let water = s.complex(ComplexId(wid))?;
        (water.current().topology.bonds.len() == 2 && s.complex(ComplexId(copy))?.name == "copy").then_some(())
    })
    .await;

    // Colour scheme, workspace get/update/focus, remove.
    let before = w.ada.with_scene(|s| s.complex(h).unwrap().current().display.color.clone()).unwrap();
    call!("complexes.color_scheme", json!({ "ids": [hvr], "scheme": "chain" }));
    w.scene("the chain colours", |s| (s.complex(h)?.current().display.color != before).then_some(())).await;
    let ws = call!("workspace.get", json!({ "fields": ["atoms"] }));
    assert_eq!(ws["complexes"].as_array().unwrap().len(), 4);
    let focus = call!("workspace.focus", json!({ "ids": [wid], "zoom": false }));
    assert_eq!(focus, json!({}));
    w.scene("the focus", |s| {
        s.effects()
            .iter()
            .any(|e| matches!(e, Effect::Focus { ids, zoom: false, .. } if ids == &[ComplexId(wid)]))
            .then_some(())
    })
    .await;
    let upd = call!(
        "workspace.update",
        json!({ "complexes": [
        { "id": hvr }, { "id": yjp }, { "id": copy, "name": "kept copy" },
        { "file": { "name": "e43.pdb", "text": asset_text("4E43.pdb") } },
    ] })
    );
    assert_eq!(upd["removed"], json!([wid]));
    let e43 = ComplexId(id(&upd["added"][0]));
    w.scene("the updated workspace", |s| {
        (s.complex(ComplexId(wid)).is_none()
            && s.complex(e43).is_some()
            && s.complex(ComplexId(copy))?.name == "kept copy")
            .then_some(())
    })
    .await;
    expect_event(&mut events, "event.complexes_removed", |p| p["ids"] == json!([wid])).await;
    call!("complexes.remove", json!({ "ids": [e43.0] }));
    w.scene("the removal", |s| s.complex(e43).is_none().then_some(())).await;

    // Selection changes reach the caller as events.
    w.ada.select_atoms(h, &[AtomId(0), AtomId(1)], true).unwrap();
    expect_event(&mut events, "event.selection_changed", |p| p["complex"] == hvr).await;

    // Shapes.
    let up = call!(
        "shapes.upload",
        json!({ "shapes": [
        { "type": "sphere", "color": "#ff3399", "radius": 1.5, "anchor": { "complex": hvr, "atom": 10 } },
        { "type": "label", "text": "hello", "font_size": 18, "anchor": { "offset": [1, 2, 3] } },
    ] })
    );
    let (sphere, label) = (id(&up["ids"][0]), id(&up["ids"][1]));
    w.scene("the sphere", |s| {
        let sh = s.shapes(me)?.get(molstream_engine::shape::ShapeId(sphere))?;
        matches!(sh.kind, ShapeKind::Sphere { anchor, radius } if radius == 1.5
            && anchor.target == AnchorTarget::Atom(h, AtomId(10)) && sh.color == 0xff_99_33_ff)
        .then_some(())
    })
    .await;
    call!(
        "shapes.update",
        json!({ "shapes": [
        { "id": sphere, "type": "sphere", "color": 4278190335u32, "radius": 3.0, "anchor": { "complex": hvr, "atom": 10 } },
    ] })
    );
    w.scene("the bigger sphere", |s| {
        let sh = s.shapes(me)?.get(molstream_engine::shape::ShapeId(sphere))?;
        matches!(sh.kind, ShapeKind::Sphere { radius, .. } if radius == 3.0).then_some(())
    })
    .await;
    let listed = call!("shapes.list", json!({}));
    assert_eq!(listed["shapes"].as_array().unwrap().len(), 2);
    assert_eq!(listed["shapes"][0]["color"], "#ff0000ff");
    let e = c.call("shapes.update", json!({ "shapes": [{ "id": 77, "type": "sphere", "radius": 1, "anchor": {} }] }));
    assert_eq!(code(&e.await.unwrap_err()), rpc::NOT_FOUND);

    // Writing streams: atom positions, complex rotation, shape colour.
    let s1 =
        id(&call!("streams.create", json!({ "kind": "atom_position", "target": { "complex": hvr, "atoms": [0, 1] } }))
            ["stream"]);
    call!("streams.update", json!({ "stream": s1, "data": [[1, 2, 3], [4, 5, 6]] }));
    w.scene("the streamed positions", |s| {
        let p = s.complex(h)?.current().positions;
        ((p[0] - Vec3::new(1.0, 2.0, 3.0)).abs().max_element() < 2e-3
            && (p[1] - Vec3::new(4.0, 5.0, 6.0)).abs().max_element() < 2e-3)
            .then_some(())
    })
    .await;
    let e = c.call("streams.update", json!({ "stream": s1, "data": [[1, 2, 3]] })).await.unwrap_err();
    assert_eq!(code(&e), rpc::INVALID_PARAMS, "one value per atom");
    call!("streams.destroy", json!({ "stream": s1 }));
    let e = c.call("streams.update", json!({ "stream": s1, "data": [[1, 2, 3], [4, 5, 6]] })).await.unwrap_err();
    assert_eq!(code(&e), rpc::NOT_FOUND);
    let s2 =
        id(&c.call("streams.create", json!({ "kind": "shape_color", "target": { "shapes": [label] } })).await.unwrap()
            ["stream"]);
    c.call("streams.update", json!({ "stream": s2, "data": ["#00ff00"] })).await.unwrap();
    w.scene("the label's colour", |s| {
        (s.shapes(me)?.get(molstream_engine::shape::ShapeId(label))?.color == 0xff_00_ff_00).then_some(())
    })
    .await;

    // A reading stream: ada moves an atom, the caller gets its positions as events.
    let r = id(&call!("streams.read", json!({ "complex": hvr, "atoms": [5] }))["stream"]);
    let target = Vec3::new(7.0, 8.0, 9.0);
    // The stream was set up (its uplink open) before the answer: the move comes as a delta.
    w.ada.move_atoms(h, &[(AtomId(5), target)]).await.unwrap();
    expect_event(&mut events, "event.stream_positions", |p| {
        p["stream"] == r
            && p["positions"][0].as_array().is_some_and(|a| {
                a.iter().zip(target.to_array()).all(|(x, y)| (x.as_f64().unwrap() as f32 - y).abs() < 2e-3)
            })
    })
    .await;
    c.call("streams.destroy", json!({ "stream": r })).await.unwrap();

    // Shapes destroyed; streams on them are interrupted (an event says so).
    call!("shapes.destroy", json!({ "ids": [sphere, label] }));
    w.scene("no shapes", |s| (s.shapes(me).map_or(0, |x| x.len()) == 0).then_some(())).await;
    expect_event(&mut events, "event.stream_interrupted", |p| p["stream"] == s2 && p["reason"] == "shape_destroyed")
        .await;
    assert_eq!(code(&c.call("shapes.destroy", json!({ "ids": [sphere] })).await.unwrap_err()), rpc::NOT_FOUND);

    // Menus: a whole menu, a user's press delivered as an event, a content update, removal.
    let menu = json!({ "id": 1, "title": "Remote", "width": 300, "height": 120, "root": { "children": [
        { "id": 1, "content": { "type": "button", "text": "Go" } },
        { "id": 2, "content": { "type": "label", "text": "idle" } },
    ] } });
    call!("menus.update", json!({ "menu": menu }));
    let m = w.scene("the menu", |s| s.menus(me)?.get(MenuId(1)).cloned()).await;
    assert_eq!(m.title, "Remote");
    assert_eq!(m.root.children.len(), 2);
    w.ada.menu_event(me, MenuEvent::pressed(MenuId(1), ItemId(1), true)).await.unwrap();
    let ev = expect_event(&mut events, "event.menu", |p| p["item"] == 1).await;
    assert_eq!(ev["action"], json!({ "type": "pressed", "selected": true }));
    assert_eq!(ev["user"], w.ada.view().you.0);
    call!("menus.update_content", json!({ "menu": 1, "item": 2, "content": { "type": "label", "text": "running" } }));
    let deadline = tokio::time::Instant::now() + common::T;
    loop {
        let text = w.ada.menu(me, MenuId(1)).and_then(|m| m.label(ItemId(2)).map(|l| l.text.clone()));
        if text.as_deref() == Some("running") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the label never changed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = call!("menus.get", json!({ "menu": 1 }));
    assert_eq!(got["root"]["children"][1]["content"]["text"], "running");
    let bad = json!({ "id": 2, "root": { "children": [{ "id": 1 }, { "id": 1 }] } });
    assert_eq!(code(&c.call("menus.update", json!({ "menu": bad })).await.unwrap_err()), rpc::INVALID_PARAMS);
    call!("menus.remove", json!({ "menu": 1 }));
    let deadline = tokio::time::Instant::now() + common::T;
    while w.ada.menu(me, MenuId(1)).is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the menu was never removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Notifications and URLs.
    call!("notify", json!({ "level": "success", "text": "from outside" }));
    w.scene("the notification", |s| s.notifications().any(|(i, _, t)| i == me && t == "from outside").then_some(()))
        .await;
    call!("session.open_url", json!({ "url": "https://example.org/" }));
    w.scene("the url", |s| {
        s.effects()
            .iter()
            .any(|e| matches!(e, Effect::OpenUrl { url, .. } if url == "https://example.org/"))
            .then_some(())
    })
    .await;

    // Plugins: list, activate, run (through the bridge's own session client).
    let plugins = call!("plugins.list", json!({}));
    let names: Vec<&str> = plugins["plugins"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"Greeter") && names.contains(&molstream_bridge::PLUGIN_NAME), "{names:?}");
    let greeter = id(&call!("plugins.activate", json!({ "plugin": "Greeter" }))["instance"]);
    call!("plugins.run", json!({ "instance": greeter }));
    w.scene("the greeter's hello", |s| {
        s.notifications().any(|(i, _, t)| i.0 == greeter && t == "hello from greeter").then_some(())
    })
    .await;
    let e = c.call("plugins.activate", json!({ "plugin": "Nobody" })).await.unwrap_err();
    assert_eq!(code(&e), rpc::NOT_FOUND);

    // A batch: answers for the calls, none for the notification.
    let answers = c
        .batch(&[("presenter.info", json!({})), ("complexes.get", json!({ "ids": [hvr] })), ("no.such", json!({}))])
        .await
        .unwrap();
    assert_eq!(answers[0].as_ref().unwrap()["name"], "ada");
    assert_eq!(answers[1].as_ref().unwrap()["complexes"][0]["id"], hvr);
    assert_eq!(answers[2].as_ref().unwrap_err().code, rpc::METHOD_NOT_FOUND);
    c.notify("notify", json!({ "text": "a notification, unanswered" })).await.unwrap();
    w.scene("the notified text", |s| {
        s.notifications().any(|(_, _, t)| t == "a notification, unanswered").then_some(())
    })
    .await;

    // Every method was called.
    let missing: Vec<&&str> = METHODS.iter().filter(|m| !called.contains(*m)).collect();
    assert!(missing.is_empty(), "not called: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_over_websocket() {
    let w = World::start(Options { redis: false, ..Options::default() }).await;
    let c = w.ws_client().await;
    exercise(&w, &c).await;
    drop(c);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_over_redis() {
    let w = World::start(Options { websocket: false, ..Options::default() }).await;
    let c = w.redis_client().await;
    exercise(&w, &c).await;
    drop(c);
    w.stop().await;
}

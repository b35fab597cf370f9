//! egui interaction tests of the window's panels, without a window or a GPU: egui_kittest
//! drives the real `Panels::show` with synthetic pointer events found through the
//! accessibility tree, and the actions it returns are applied to the scene as the app does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::PathBuf;
use std::time::Instant;

use egui::accesskit::{Role, Toggled};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use molstream_engine::{ChainId, Representation};
use molstream_viewer::BUNDLED_NAME;
use molstream_viewer::render::RenderSettings;
use molstream_viewer::ui::tree::representation_label;
use molstream_viewer::ui::{Panels, UiAction};
use molstream_viewer::workspace::{Node, NodeRef, SceneData, Visibility, load_documents};

struct State {
    panels: Panels,
    scene: SceneData,
    settings: RenderSettings,
    actions: Vec<UiAction>,
    /// Atom ranges the app would write to the GPU.
    writes: Vec<std::ops::Range<usize>>,
}

fn harness() -> Harness<'static, State> {
    let state = State {
        panels: Panels::new(Instant::now()),
        scene: load_documents(&[]).unwrap(),
        settings: RenderSettings::default(),
        actions: Vec::new(),
        writes: Vec::new(),
    };
    let mut h = Harness::builder().with_size(egui::vec2(1280.0, 1400.0)).build_ui_state(
        |ui, s: &mut State| {
            for a in s.panels.show(ui, &s.scene, &mut s.settings, Instant::now()) {
                if let UiAction::Tree(t) = &a {
                    let range = s.scene.apply(t);
                    s.writes.push(range);
                }
                s.actions.push(a);
            }
        },
        state,
    );
    h.run();
    h
}

fn repr(s: &SceneData, i: usize) -> u32 {
    s.atoms[i].flags & 0xf
}

fn chain_node(s: &SceneData, name: &str) -> NodeRef {
    let t = s.documents[0].complex.current().topology;
    let c = (0..t.chain_count()).find(|&c| t.chain_name(ChainId(c as u32)) == name).unwrap();
    NodeRef { doc: 0, node: Node::Chain(ChainId(c as u32)) }
}

fn checkbox_toggled(h: &Harness<'_, State>, label: &str) -> Option<Toggled> {
    h.get_by_role_and_label(Role::CheckBox, label).accesskit_node().toggled()
}

#[test]
fn the_complex_checkbox_hides_and_shows_every_atom() {
    let mut h = harness();
    let n = h.state().scene.atoms.len();
    assert_eq!(checkbox_toggled(&h, BUNDLED_NAME), Some(Toggled::True));
    h.get_by_role_and_label(Role::CheckBox, BUNDLED_NAME).click();
    h.run();
    let s = h.state();
    assert_eq!(s.writes.len(), 1, "one in-place write");
    assert_eq!(s.writes[0], 0..n, "of the document's atoms");
    assert!((0..n).all(|i| repr(&s.scene, i) == Representation::Hidden as u32));
    assert_eq!(checkbox_toggled(&h, BUNDLED_NAME), Some(Toggled::False));
    h.get_by_role_and_label(Role::CheckBox, BUNDLED_NAME).click();
    h.run();
    assert!((0..n).all(|i| repr(&h.state().scene, i) == Representation::BallAndStick as u32));
}

#[test]
fn a_chain_checkbox_hides_only_that_chain_and_the_complex_turns_mixed() {
    let mut h = harness();
    let a = chain_node(&h.state().scene, "A");
    let a_atoms = h.state().scene.node_atoms(a);
    h.get_all_by_role_and_label(Role::CheckBox, "chain A").next().unwrap().click();
    h.run();
    let s = &h.state().scene;
    assert!(a_atoms.clone().all(|i| repr(s, i) == Representation::Hidden as u32));
    assert!((a_atoms.end..s.atoms.len()).all(|i| repr(s, i) != Representation::Hidden as u32));
    assert_eq!(s.node_state(a).visible, Visibility::None);
    assert_eq!(checkbox_toggled(&h, BUNDLED_NAME), Some(Toggled::Mixed));
    // Clicking the mixed complex box shows everything again.
    h.get_by_role_and_label(Role::CheckBox, BUNDLED_NAME).click();
    h.run();
    assert_eq!(checkbox_toggled(&h, BUNDLED_NAME), Some(Toggled::True));
    assert_eq!(h.state().scene.node_state(a).visible, Visibility::All);
}

fn click_at(h: &mut Harness<'_, State>, pos: egui::Pos2) {
    h.hover_at(pos);
    h.drag_at(pos);
    h.drop_at(pos);
    h.run();
}

#[test]
fn a_chain_menu_sets_the_representation_of_its_atoms() {
    let mut h = harness();
    let b = chain_node(&h.state().scene, "B");
    let b_atoms = h.state().scene.node_atoms(b);
    h.get_by_label(&representation_label("chain B")).click();
    h.run();
    h.get_by_label("spacefill").click();
    h.run();
    let s = &h.state().scene;
    assert!(b_atoms.clone().all(|i| repr(s, i) == Representation::Spacefill as u32));
    assert!((0..b_atoms.start).all(|i| repr(s, i) == Representation::BallAndStick as u32));
    assert_eq!(s.node_state(b).representation, Some(Representation::Spacefill));
    // The complex's menu now reads "mixed"; its row shows it.
    assert!(h.query_by_value("mixed").is_some());
}

#[test]
fn residues_appear_when_a_chain_opens_and_toggle_alone() {
    let mut h = harness();
    assert!(h.query_by_label("ASP 25").is_none(), "chains start closed");
    // The arrow left of the chain's checkbox opens it.
    let row = h.get_all_by_role_and_label(Role::CheckBox, "chain A").next().unwrap().rect();
    click_at(&mut h, egui::pos2(row.left() - 10.0, row.center().y));
    let residue = h.get_all_by_role_and_label(Role::CheckBox, "PRO 1").next().expect("residue rows shown");
    residue.click();
    h.run();
    let s = &h.state().scene;
    let t = s.documents[0].complex.current().topology;
    let r = NodeRef { doc: 0, node: Node::Residue(molstream_engine::ResidueId(0)) };
    assert_eq!(t.residue_name(molstream_engine::ResidueId(0)), "PRO");
    let atoms = s.node_atoms(r);
    assert!(atoms.clone().all(|i| repr(s, i) == Representation::Hidden as u32));
    assert!((atoms.end..s.atoms.len()).all(|i| repr(s, i) == Representation::BallAndStick as u32));
    assert_eq!(s.node_state(chain_node(s, "A")).visible, Visibility::Some);
}

#[test]
fn file_field_screenshot_and_display_controls_return_actions() {
    let mut h = harness();
    let field = h.get_by_role(Role::TextInput);
    field.focus();
    field.type_text("/data/3kpr.cif");
    h.run();
    h.get_by_label("Open").click();
    h.run();
    h.get_by_label("Screenshot (F12)").click();
    h.run();
    let actions = &h.state().actions;
    assert!(actions.contains(&UiAction::Open(PathBuf::from("/data/3kpr.cif"))), "{actions:?}");
    assert!(actions.contains(&UiAction::Screenshot));
    // Ambient occlusion can be turned off from the Display section.
    h.get_by_label("Display").click();
    h.run();
    assert!(h.state().settings.ambient_occlusion > 0.0);
    h.get_by_role_and_label(Role::CheckBox, "ambient occlusion").click();
    h.run();
    assert_eq!(h.state().settings.ambient_occlusion, 0.0);
}

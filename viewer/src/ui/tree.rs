//! The workspace tree: complexes → chains → residues, each row with a visibility checkbox
//! and a representation menu. The tree only reads the scene and returns [`TreeAction`]s; the
//! caller applies them ([`SceneData::apply`]) and writes the atom range returned.

use egui::collapsing_header::CollapsingState;
use molstream_engine::{ChainId, Representation, ResidueId};

use crate::workspace::{Node, NodeChange, NodeRef, NodeState, SceneData, TreeAction, Visibility, residue_label};

/// Height of a residue row (residues are listed lazily: only visible rows are laid out).
const ROW_HEIGHT: f32 = 20.0;
/// Most residue rows shown at once per chain before it scrolls.
const VISIBLE_RESIDUES: f32 = 12.0;

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Label of a chain segment row: `chain A`.
#[must_use]
pub fn chain_label(name: &str) -> String {
    format!("chain {name}")
}

/// One row: the visibility checkbox labelled `label` and the representation menu.
fn row(ui: &mut egui::Ui, node: NodeRef, label: &str, state: NodeState, out: &mut Vec<TreeAction>) {
    let mut visible = state.visible != Visibility::None;
    let checkbox = egui::Checkbox::new(&mut visible, label).indeterminate(state.visible == Visibility::Some);
    if ui.add(checkbox).changed() {
        // An indeterminate box shows everything on the first click.
        let show = state.visible != Visibility::All;
        out.push(TreeAction { target: node, change: NodeChange::Visible(show) });
    }
    let current = state.representation.map_or("mixed", Representation::name);
    let menu = egui::ComboBox::from_id_salt(("repr", node)).width(110.0).selected_text(current).show_ui(ui, |ui| {
        for r in Representation::ALL {
            if ui.selectable_label(state.representation == Some(r), r.name()).clicked() {
                out.push(TreeAction { target: node, change: NodeChange::Representation(r) });
            }
        }
    });
    // The menu shows no label: its tooltip names it (for screen readers and tests too).
    menu.response.on_hover_text(representation_label(label));
}

/// Accessible name of a row's representation menu: `representation of chain A`.
#[must_use]
pub fn representation_label(row: &str) -> String {
    format!("representation of {row}")
}

/// Draws the tree of every document; returns what the user changed.
pub fn workspace_tree(ui: &mut egui::Ui, scene: &SceneData) -> Vec<TreeAction> {
    let mut out = Vec::new();
    for (doc, d) in scene.documents.iter().enumerate() {
        let complex = NodeRef { doc, node: Node::Complex };
        let id = ui.make_persistent_id(("doc", doc, &d.name));
        CollapsingState::load_with_default_open(ui.ctx(), id, true)
            .show_header(ui, |ui| row(ui, complex, &d.name, scene.node_state(complex), &mut out))
            .body(|ui| {
                let t = d.complex.current().topology;
                for c in 0..t.chain_count() {
                    let chain = ChainId(u32_of(c));
                    let node = NodeRef { doc, node: Node::Chain(chain) };
                    let id = ui.make_persistent_id(("chain", doc, c));
                    let label = chain_label(t.chain_name(chain));
                    CollapsingState::load_with_default_open(ui.ctx(), id, false)
                        .show_header(ui, |ui| row(ui, node, &label, scene.node_state(node), &mut out))
                        .body(|ui| {
                            let residues = t.chain_residues(chain);
                            #[allow(clippy::cast_precision_loss)]
                            let height = (residues.len() as f32).min(VISIBLE_RESIDUES) * ROW_HEIGHT;
                            egui::ScrollArea::vertical().id_salt(("residues", doc, c)).max_height(height).show_rows(
                                ui,
                                ROW_HEIGHT,
                                residues.len(),
                                |ui, rows| {
                                    for k in rows {
                                        let r = ResidueId(u32_of(residues.start + k));
                                        let node = NodeRef { doc, node: Node::Residue(r) };
                                        ui.horizontal(|ui| {
                                            row(ui, node, &residue_label(d, r), scene.node_state(node), &mut out);
                                        });
                                    }
                                },
                            );
                        });
                }
            });
    }
    out
}

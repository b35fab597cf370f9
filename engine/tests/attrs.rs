//! Attribute (kind 3), transform (kind 4) and topology-delta (kind 7) frames on real
//! structures: every attribute round-trips in sparse and dense form, mixed streams decode to
//! exactly what a fresh keyframe of the sender's final state decodes to, lost or stale frames
//! are `NeedKeyframe`/`AtomCount` and resync with a keyframe, corrupt frames are typed errors
//! that change nothing, and the frames are as small as measured.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use glam::{Quat, Vec3};
use molstream_engine::codec::attrs::{self, AttributeChanges, Change, LabelChange};
use molstream_engine::codec::header::{self, FrameHeader};
use molstream_engine::codec::stream::{Applied, Frame, FrameReader, StreamDecoder, StreamEncoder};
use molstream_engine::codec::topology::{
    AtomRef, ChainRef, NewAtom, NewBond, NewChain, NewResidue, ResidueRef, TopologyEdit,
};
use molstream_engine::codec::transform::Placement;
use molstream_engine::codec::{CodecError, Limits};
use molstream_engine::gpu::{AtomInstance, StructureBuffers};
use molstream_engine::io::{LoadOptions, load_file};
use molstream_engine::model::{DisplayState, SecondaryStructure, pack_rgba};
use molstream_engine::{
    AtomId, BondId, BondKind, ChainId, ColorScheme, Complex, Element, Representation, ResidueId, Style,
};

const PRECISION: u8 = 3;

fn load(file: &str) -> Complex {
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let mut c = load_file(common::assets().join(file), &opts).unwrap().complex;
    c.models.truncate(1);
    c
}

/// The single whole frame in `bytes`.
fn frame(bytes: &[u8]) -> Frame {
    let mut r = FrameReader::new(Limits::default());
    r.push_bytes(bytes);
    let f = r.try_read().unwrap().expect("a whole frame");
    assert!(r.try_read().unwrap().is_none(), "one frame expected");
    f
}

/// A receiver: decoder and its buffers.
struct Rx {
    dec: StreamDecoder,
    bufs: StructureBuffers,
}

impl Rx {
    fn new() -> Self {
        Self { dec: StreamDecoder::new(Limits::default()), bufs: StructureBuffers::default() }
    }

    fn apply(&mut self, bytes: &[u8]) -> Result<Applied, CodecError> {
        self.dec.apply_buffers(&frame(bytes), &mut self.bufs)
    }

    /// Everything a frame may change.
    fn state(&self) -> (Option<u32>, Option<Complex>, Vec<Vec3>, StructureBuffers) {
        (self.dec.held_seq(), self.dec.complex().cloned(), self.dec.positions(), self.bufs.clone())
    }
}

/// The receiver holds exactly what a fresh keyframe of `sender` decodes to: topology (string
/// pool, B-factors and occupancies included), display state, positions, placement, atom and
/// bond buffers.
fn assert_matches_fresh(rx: &Rx, sender: &Complex, ctx: &str) {
    let mut bytes = Vec::new();
    StreamEncoder::new(99, PRECISION).keyframe(sender, &mut bytes).unwrap();
    let mut fresh = Rx::new();
    fresh.apply(&bytes).unwrap();
    let got = rx.dec.snapshot().unwrap();
    let want = fresh.dec.snapshot().unwrap();
    let (g, w) = (got.current(), want.current());
    assert!(g.topology.same_identity(w.topology), "{ctx}: topology differs");
    assert_eq!(g.topology, w.topology, "{ctx}: B-factors or occupancies differ");
    assert_eq!(g.display, w.display, "{ctx}: display state differs");
    assert_eq!(g.positions, w.positions, "{ctx}: positions differ");
    assert_eq!(Placement::of(&got), Placement::of(&want), "{ctx}: placement differs");
    assert_eq!(got, want, "{ctx}: complex differs");
    assert_eq!(rx.bufs.atoms, fresh.bufs.atoms, "{ctx}: atom buffer differs");
    assert_eq!(rx.bufs.bonds, fresh.bufs.bonds, "{ctx}: bond buffer differs");
}

/// Sender and receiver after a keyframe of `complex`.
fn start(complex: &Complex) -> (StreamEncoder, Rx) {
    let mut enc = StreamEncoder::new(3, PRECISION);
    let mut rx = Rx::new();
    let mut bytes = Vec::new();
    enc.keyframe(complex, &mut bytes).unwrap();
    assert_eq!(rx.apply(&bytes).unwrap(), Applied::Keyframe);
    (enc, rx)
}

fn display(c: &mut Complex) -> &mut DisplayState {
    c.current_display_mut().unwrap()
}

/// Sends the display change `edit` makes and returns the frame and its decoded payload.
fn send_attrs(
    enc: &mut StreamEncoder,
    c: &mut Complex,
    edit: impl FnOnce(&mut Complex),
) -> (Vec<u8>, attrs::AttributeFrame) {
    edit(c);
    let mut bytes = Vec::new();
    enc.attributes(c, &mut bytes).unwrap().expect("a change to send");
    let f = frame(&bytes);
    let n = c.current().topology.atom_count();
    (bytes, attrs::decode(&f.payload, n, &Limits::default()).unwrap())
}

#[test]
fn every_attribute_round_trips_sparse_and_dense() {
    let mut c = load("1hvr.pdb");
    let n = c.current().topology.atom_count();
    let (mut enc, mut rx) = start(&c);
    let red = pack_rgba([255, 0, 0], 255);

    // Colour: one atom (sparse), then the whole complex by chain (dense).
    let (b, f) = send_attrs(&mut enc, &mut c, |c| display(c).color[100] = red);
    assert!(matches!(&f.color, Some(Change::Sparse { values, .. }) if values == &[red]));
    assert!(f.radius.is_none() && f.selected.is_none() && f.label_text.is_none());
    rx.apply(&b).unwrap();
    assert_eq!(rx.bufs.atoms[100].color, red);
    assert_matches_fresh(&rx, &c, "one colour");
    let (b, f) = send_attrs(&mut enc, &mut c, |c| {
        let t = c.topologies[0].clone();
        display(c).apply_color_scheme(&t, ColorScheme::Chain);
    });
    assert!(f.color.as_ref().unwrap().is_dense(), "a whole recolour goes dense");
    assert_eq!(rx.apply(&b).unwrap(), Applied::Attributes);
    assert_matches_fresh(&rx, &c, "chain colours");

    // Radius and representation: one residue as sticks (sparse), everything spacefill (dense).
    let res = c.current().topology.residue_atoms(ResidueId(10));
    let (b, f) = send_attrs(&mut enc, &mut c, |c| {
        for i in res.clone() {
            let e = c.topologies[0].atoms.element[i];
            let d = display(c);
            d.representation[i] = Representation::Sticks;
            d.radius[i] = molstream_engine::style::atom_radius(e, Representation::Sticks);
        }
    });
    assert!(matches!(&f.representation, Some(Change::Sparse { ranges, .. }) if ranges.len() == 1));
    assert!(!f.radius.as_ref().unwrap().is_dense());
    rx.apply(&b).unwrap();
    assert_eq!(rx.bufs.atoms[res.start].flags & 0xf, Representation::Sticks as u32);
    assert_matches_fresh(&rx, &c, "one residue as sticks");
    let (b, f) = send_attrs(&mut enc, &mut c, |c| {
        let t = c.topologies[0].clone();
        display(c).apply_representation(&t, Representation::Spacefill);
    });
    assert!(f.representation.as_ref().unwrap().is_dense() && f.radius.as_ref().unwrap().is_dense());
    rx.apply(&b).unwrap();
    assert_matches_fresh(&rx, &c, "spacefill");

    // Selected and labeled: one atom (sparse), every other atom (dense).
    let (b, f) = send_attrs(&mut enc, &mut c, |c| display(c).selected[7] = true);
    assert!(matches!(&f.selected, Some(Change::Sparse { values, .. }) if values == &[true]));
    rx.apply(&b).unwrap();
    assert_ne!(rx.bufs.atoms[7].flags & molstream_engine::gpu::ATOM_FLAG_SELECTED, 0);
    assert_matches_fresh(&rx, &c, "one selected");
    let (b, f) = send_attrs(&mut enc, &mut c, |c| {
        let d = display(c);
        for i in 0..n {
            d.selected[i] = i % 2 == 0;
            d.labeled[i] = i % 3 == 0;
        }
    });
    assert!(f.selected.as_ref().unwrap().is_dense() && f.labeled.as_ref().unwrap().is_dense());
    rx.apply(&b).unwrap();
    assert_matches_fresh(&rx, &c, "alternating flags");

    // Label texts: one set (sparse); many cleared and one set (dense: the whole new set).
    let (b, f) = send_attrs(&mut enc, &mut c, |c| {
        display(c).label_text.insert(AtomId(5), "catalytic Asp".into());
    });
    assert!(
        matches!(&f.label_text, Some(LabelChange::Sparse { texts, .. }) if texts == &[Some("catalytic Asp".to_owned())])
    );
    rx.apply(&b).unwrap();
    assert_matches_fresh(&rx, &c, "one label");
    let (b, _) = send_attrs(&mut enc, &mut c, |c| {
        for i in (0..n).step_by(7) {
            display(c).label_text.insert(AtomId::from_index(i), format!("atom {i}"));
        }
    });
    rx.apply(&b).unwrap();
    let (b, f) = send_attrs(&mut enc, &mut c, |c| {
        let d = display(c);
        d.label_text.clear();
        d.label_text.insert(AtomId(3), "only this".into());
    });
    assert!(matches!(&f.label_text, Some(LabelChange::Dense(m)) if m.len() == 1));
    rx.apply(&b).unwrap();
    assert_matches_fresh(&rx, &c, "label set replaced");

    // A label cleared sparsely (the dense form would repeat the long text that stays).
    let (b, _) = send_attrs(&mut enc, &mut c, |c| {
        display(c).label_text.insert(AtomId(4), "a long label that stays where it is".into());
    });
    rx.apply(&b).unwrap();
    let (b, f) = send_attrs(&mut enc, &mut c, |c| {
        display(c).label_text.remove(&AtomId(3));
    });
    assert!(matches!(&f.label_text, Some(LabelChange::Sparse { texts, .. }) if texts == &[None]));
    rx.apply(&b).unwrap();
    assert_eq!(rx.dec.complex().unwrap().current().display.label_text.len(), 1);
    assert_matches_fresh(&rx, &c, "label cleared");
    // Clearing the last label is cheaper as the (empty) dense set.
    let (b, f) = send_attrs(&mut enc, &mut c, |c| display(c).label_text.clear());
    assert!(matches!(&f.label_text, Some(LabelChange::Dense(m)) if m.is_empty()));
    rx.apply(&b).unwrap();
    assert_matches_fresh(&rx, &c, "labels cleared");
}

#[test]
fn encoder_coalesces_changes_and_sends_nothing_when_nothing_changed() {
    let mut c = load("1hvr.pdb");
    let (mut enc, mut rx) = start(&c);
    let mut out = Vec::new();
    assert_eq!(enc.attributes(&c, &mut out).unwrap(), None);
    assert_eq!(enc.transform(&c, &mut out).unwrap(), None);
    assert!(out.is_empty());
    assert_eq!(enc.last_seq(), Some(0));

    // Two edits between frames travel in one frame; none is lost.
    display(&mut c).selected[1] = true;
    display(&mut c).color[2] = 0x1234_5678;
    let h = enc.attributes(&c, &mut out).unwrap().unwrap();
    assert_eq!((h.seq, h.base_seq), (1, 0));
    rx.apply(&out).unwrap();
    assert_matches_fresh(&rx, &c, "coalesced");

    // Explicit changes update the sender's complex and the receiver alike.
    let changes = AttributeChanges {
        color: vec![(AtomId(9), 0xff00_ff00)],
        radius: vec![(AtomId(9), 2.5)],
        representation: vec![(AtomId(9), Representation::Spacefill)],
        labeled: vec![(AtomId(9), true)],
        label_text: vec![(AtomId(9), Some("nine".into()))],
        selected: vec![(AtomId(1), false)],
    };
    out.clear();
    enc.attribute_changes(&mut c, &changes, &mut out).unwrap().unwrap();
    assert_eq!(c.current().display.color[9], 0xff00_ff00);
    assert_eq!(c.current().display.label_text[&AtomId(9)], "nine");
    rx.apply(&out).unwrap();
    assert_matches_fresh(&rx, &c, "explicit changes");

    // An explicit change of an atom that does not exist changes nothing anywhere.
    let before = c.clone();
    let bad = AttributeChanges { color: vec![(AtomId(0), 1), (AtomId(1_000_000), 2)], ..AttributeChanges::default() };
    out.clear();
    assert!(matches!(enc.attribute_changes(&mut c, &bad, &mut out), Err(CodecError::InvalidInput(_))));
    assert_eq!(c, before);
    assert!(out.is_empty());
    assert_eq!(enc.last_seq(), Some(2));

    // Transforms: only the fields that changed are sent; the receiver exposes the placement.
    c.position = Vec3::new(10.0, -5.0, 2.5);
    c.rotation = Quat::from_rotation_y(0.7);
    out.clear();
    enc.transform(&c, &mut out).unwrap().unwrap();
    assert_eq!(out.len(), 32 + 1 + 12 + 16);
    assert_eq!(rx.apply(&out).unwrap(), Applied::Transform);
    let p = rx.dec.placement().unwrap();
    assert_eq!((p.position, p.rotation), (c.position, c.rotation));
    assert!(p.matrix().abs_diff_eq(glam::Mat4::from_rotation_translation(c.rotation, c.position), 0.0));
    c.visible = false;
    out.clear();
    enc.transform(&c, &mut out).unwrap().unwrap();
    assert_eq!(out.len(), 32 + 2);
    rx.apply(&out).unwrap();
    assert!(!rx.dec.placement().unwrap().visible);
    assert_matches_fresh(&rx, &c, "transforms");

    // A non-unit rotation is refused before anything is sent.
    c.rotation = Quat::from_xyzw(0.0, 0.0, 0.0, 2.0);
    out.clear();
    assert!(matches!(enc.transform(&c, &mut out), Err(CodecError::InvalidInput(_))));
    assert!(out.is_empty());
}

/// Hydrogens on the backbone N of up to 20 residues, an acetyl cap before residue 0, the
/// ligand of 1hvr or else the last residue removed (with its chain segment if it is alone
/// there), a new ligand chain at the end, one bond removed.
fn plugin_edit(c: &Complex) -> TopologyEdit {
    let t = c.current().topology;
    let pos = c.current().positions;
    let (n, nr, nc) = (t.atom_count(), t.residue_count(), t.chain_count());
    let mut e = TopologyEdit::default();
    // Acetyl cap: a new residue and atom in front of residue 0 of chain 0.
    e.new_residues.push(NewResidue {
        before: ResidueId(0),
        chain: ChainRef::Existing(ChainId(0)),
        name: "ACE".into(),
        seq_num: 0,
        ins_code: 0,
        secondary: SecondaryStructure::Coil,
        ribbon: Default::default(),
    });
    e.new_atoms.push(NewAtom::new(AtomId(0), ResidueRef::New(0), "C", Element::C, pos[0] - Vec3::new(1.3, 0.0, 0.0)));
    e.new_bonds.push(NewBond { a: AtomRef::New(0), b: AtomRef::Existing(AtomId(0)), kind: BondKind::Single });
    // Up to 20 residues after the first that have a backbone N.
    let with_n: Vec<(u32, usize)> = (1..nr)
        .filter_map(|r| {
            let nat = t.residue_atoms(ResidueId::from_index(r)).find(|&i| t.atom_name(AtomId::from_index(i)) == "N")?;
            Some((u32::try_from(r).unwrap(), nat))
        })
        .take(20)
        .collect();
    for &(r, nat) in &with_n {
        let atoms = t.residue_atoms(ResidueId(r));
        let mut h = NewAtom::new(
            AtomId(u32::try_from(atoms.end).unwrap()),
            ResidueRef::Existing(ResidueId(r)),
            "H",
            Element::H,
            pos[nat] + Vec3::new(0.0, 1.01, 0.0),
        );
        h.b_factor = 12.345;
        let j = u32::try_from(e.new_atoms.len()).unwrap();
        e.new_atoms.push(h);
        e.new_bonds.push(NewBond {
            a: AtomRef::Existing(AtomId::from_index(nat)),
            b: AtomRef::New(j),
            kind: BondKind::Single,
        });
    }
    // The ligand of 1hvr, otherwise the last residue (a water in most files).
    let lig = (0..nr).find(|&r| t.residue_name(ResidueId::from_index(r)) == "XK2").unwrap_or(nr - 1);
    e.remove_residue(t, ResidueId::from_index(lig));
    let chain = t.residues.chain[lig];
    if t.chain_residues(chain).len() == 1 {
        e.remove_chains.push(chain);
    }
    e.remove_bonds.push(BondId(0));
    // A new ligand in a new chain at the end.
    e.new_chains.push(NewChain { before: ChainId::from_index(nc), name: "L".into() });
    e.new_residues.push(NewResidue {
        before: ResidueId::from_index(nr),
        chain: ChainRef::New(0),
        name: "LIG".into(),
        seq_num: 901,
        ins_code: b'A',
        secondary: SecondaryStructure::Coil,
        ribbon: Default::default(),
    });
    let first = u32::try_from(e.new_atoms.len()).unwrap();
    for (k, (name, el)) in [("C1", Element::C), ("O1", Element::O), ("N1", Element::N)].into_iter().enumerate() {
        let mut a = NewAtom::new(
            AtomId::from_index(n),
            ResidueRef::New(1),
            name,
            el,
            Vec3::new(30.0 + k as f32 * 1.4, 2.0, -3.0),
        );
        a.het = true;
        a.serial = 9000 + i32::try_from(k).unwrap();
        a.selected = k == 1;
        a.labeled = k == 2;
        a.label = (k == 2).then(|| "new ligand".to_owned());
        e.new_atoms.push(a);
    }
    e.new_bonds.push(NewBond { a: AtomRef::New(first), b: AtomRef::New(first + 1), kind: BondKind::Double });
    e.new_bonds.push(NewBond { a: AtomRef::New(first), b: AtomRef::New(first + 2), kind: BondKind::Single });
    e
}

#[test]
fn mixed_stream_equals_a_fresh_keyframe_of_the_final_state() {
    let mut c = load("1hvr.pdb");
    let n0 = c.current().topology.atom_count();
    let bonds0 = c.current().topology.bonds.len();
    let (mut enc, mut rx) = start(&c);
    let mut out = Vec::new();
    let send = |rx: &mut Rx, out: &mut Vec<u8>, want: Applied| {
        assert_eq!(rx.apply(out).unwrap(), want);
        out.clear();
    };

    // Positions.
    let walk = molstream_engine::synth::random_walk(c.current().positions, 3, 0.05, 11);
    c.set_positions(0, walk[1].clone()).unwrap();
    enc.delta(c.current().positions, &mut out).unwrap();
    send(&mut rx, &mut out, Applied::Positions);
    // Attributes: chain B recoloured, a residue selected, a label.
    let chain_b = c.current().topology.chain_residues(ChainId(1));
    let atoms_b = c.current().topology.residue_atoms(ResidueId::from_index(chain_b.start)).start
        ..c.current().topology.residue_atoms(ResidueId::from_index(chain_b.end - 1)).end;
    for i in atoms_b.clone() {
        display(&mut c).color[i] = pack_rgba([10, 200, 30], 255);
    }
    for i in c.current().topology.residue_atoms(ResidueId(25)) {
        display(&mut c).selected[i] = true;
    }
    display(&mut c).labeled[40] = true;
    display(&mut c).label_text.insert(AtomId(40), "Asp25".into());
    enc.attributes(&c, &mut out).unwrap().unwrap();
    send(&mut rx, &mut out, Applied::Attributes);
    // Transform.
    c.position = Vec3::new(1.0, 2.0, 3.0);
    c.rotation = Quat::from_rotation_z(0.25);
    enc.transform(&c, &mut out).unwrap().unwrap();
    send(&mut rx, &mut out, Applied::Transform);
    assert_matches_fresh(&rx, &c, "before the topology delta");

    // Topology: a plugin adds hydrogens and a ligand, removes the old ligand.
    let edit = plugin_edit(&c);
    let h = enc.topology(&mut c, &edit, &mut out).unwrap();
    let n1 = c.current().topology.atom_count();
    assert_eq!(n1, n0 + 1 + 20 + 3 - 46);
    assert_eq!(h.atom_count as usize, n1);
    let payload = frame(&out).payload.len();
    println!("topology delta (+24 atoms, -46 atoms, +23 bonds, -1 bond): frame {} bytes, payload {payload}", out.len());
    // Measured: frame 582 bytes (lz4), payload 903 (890 before position payloads carried their
    // coding byte and predictor plan).
    assert!(out.len() <= 600 && payload <= 920, "{} / {payload}", out.len());
    send(&mut rx, &mut out, Applied::Topology);
    assert_eq!(rx.bufs.atoms.len(), n1);
    let t = rx.dec.complex().unwrap().current().topology;
    assert_eq!(t.residue_name(ResidueId(0)), "ACE");
    assert_eq!(t.atom_name(AtomId(0)), "C");
    assert!(t.strings.find("XK2").is_some(), "the string pool only grows");
    assert!((0..t.residue_count()).all(|r| t.residue_name(ResidueId::from_index(r)) != "XK2"));
    let lig_chain = ChainId::from_index(t.chain_count() - 1);
    assert_eq!(t.chain_name(lig_chain), "L");
    assert_eq!(t.bonds.len(), c.current().topology.bonds.len());
    assert!(t.bonds.len() > bonds0 - 60);
    let d = &rx.dec.complex().unwrap().current().display;
    assert_eq!(d.label_text.get(&AtomId::from_index(n1 - 1)).map(String::as_str), Some("new ligand"));
    let moved = 40 + edit.new_atoms.iter().filter(|a| a.before.0 <= 40).count();
    assert_eq!(
        d.label_text.get(&AtomId::from_index(moved)).map(String::as_str),
        Some("Asp25"),
        "labels follow their atoms"
    );
    assert!(d.labeled[moved]);
    assert_matches_fresh(&rx, &c, "after the topology delta");

    // Positions again, against the new atom set; then attributes again.
    let walk = molstream_engine::synth::random_walk(c.current().positions, 2, 0.05, 12);
    c.set_positions(0, walk[1].clone()).unwrap();
    let h = enc.delta(c.current().positions, &mut out).unwrap();
    assert_eq!(h.atom_count as usize, n1);
    send(&mut rx, &mut out, Applied::Positions);
    c.set_style(Style { representation: Representation::Sticks, color: ColorScheme::ResidueType });
    enc.attributes(&c, &mut out).unwrap().unwrap();
    send(&mut rx, &mut out, Applied::Attributes);
    assert_eq!(rx.dec.held_seq(), Some(6));
    assert_matches_fresh(&rx, &c, "final state");
}

#[test]
fn mixed_streams_on_other_structures() {
    let mut files: Vec<std::path::PathBuf> = ["4E43.pdb", "5PTI.cif", "1YJP.cif", "nmr_neopetrosiamide.pdb"]
        .iter()
        .map(|f| common::assets().join(f))
        .collect();
    if let Some(dir) = common::shared_data() {
        files.push(dir.join("pdb/6msm.pdb"));
        files.push(dir.join("pdb/adk_oplsaa.pdb"));
    }
    let opts = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut c = load_file(&path, &opts).unwrap().complex;
        c.models.truncate(1);
        let (mut enc, mut rx) = start(&c);
        let mut out = Vec::new();
        let walk = molstream_engine::synth::random_walk(c.current().positions, 2, 0.05, 21);
        c.set_positions(0, walk[1].clone()).unwrap();
        enc.delta(c.current().positions, &mut out).unwrap();
        rx.apply(&out).unwrap();
        out.clear();
        c.set_style(Style { representation: Representation::Spacefill, color: ColorScheme::Chain });
        display(&mut c).selected[0] = true;
        enc.attributes(&c, &mut out).unwrap().unwrap();
        rx.apply(&out).unwrap();
        out.clear();
        let edit = plugin_edit(&c);
        enc.topology(&mut c, &edit, &mut out).unwrap();
        let top = out.len();
        assert_eq!(rx.apply(&out).unwrap(), Applied::Topology, "{name}");
        out.clear();
        assert_matches_fresh(&rx, &c, &name);
        let walk = molstream_engine::synth::random_walk(c.current().positions, 2, 0.05, 22);
        c.set_positions(0, walk[1].clone()).unwrap();
        enc.delta(c.current().positions, &mut out).unwrap();
        rx.apply(&out).unwrap();
        out.clear();
        c.set_style(Style::default());
        enc.attributes(&c, &mut out).unwrap().unwrap();
        rx.apply(&out).unwrap();
        assert_matches_fresh(&rx, &c, &name);
        println!("{name}: {} atoms, topology delta {top} bytes", c.current().topology.atom_count());
    }
}

#[test]
fn invalid_topology_edits_are_refused_without_changing_anything() {
    let c0 = load("1hvr.pdb");
    let t = c0.current().topology.clone();
    let n = u32::try_from(t.atom_count()).unwrap();
    let mut c = c0.clone();
    let (mut enc, _) = start(&c);
    let at_end = |name: &str| NewAtom::new(AtomId(n), ResidueRef::Existing(ResidueId(0)), name, Element::H, Vec3::ZERO);
    let cases: Vec<(&str, TopologyEdit)> = vec![
        (
            "residue removed without its atoms",
            TopologyEdit { remove_residues: vec![ResidueId(3)], ..Default::default() },
        ),
        ("atom out of range", TopologyEdit { remove_atoms: vec![AtomId(n)], ..Default::default() }),
        ("atom placed outside its residue", TopologyEdit { new_atoms: vec![at_end("H")], ..Default::default() }),
        (
            "insertions not sorted",
            TopologyEdit {
                new_atoms: vec![
                    NewAtom::new(AtomId(5), ResidueRef::Existing(ResidueId(0)), "H1", Element::H, Vec3::ZERO),
                    NewAtom::new(AtomId(2), ResidueRef::Existing(ResidueId(0)), "H2", Element::H, Vec3::ZERO),
                ],
                ..Default::default()
            },
        ),
        (
            "bond to a removed atom",
            TopologyEdit {
                remove_atoms: vec![AtomId(4)],
                new_bonds: vec![NewBond {
                    a: AtomRef::Existing(AtomId(4)),
                    b: AtomRef::Existing(AtomId(40)),
                    kind: BondKind::Single,
                }],
                ..Default::default()
            },
        ),
        (
            "bond that exists",
            TopologyEdit {
                new_bonds: vec![NewBond {
                    a: AtomRef::Existing(t.bonds.a[0]),
                    b: AtomRef::Existing(t.bonds.b[0]),
                    kind: BondKind::Single,
                }],
                ..Default::default()
            },
        ),
        (
            "residue of a missing new chain",
            TopologyEdit {
                new_residues: vec![NewResidue {
                    before: ResidueId(0),
                    chain: ChainRef::New(0),
                    name: "X".into(),
                    seq_num: 0,
                    ins_code: 0,
                    secondary: SecondaryStructure::Coil,
                    ribbon: Default::default(),
                }],
                ..Default::default()
            },
        ),
    ];
    for (what, edit) in cases {
        let mut out = Vec::new();
        assert!(matches!(enc.topology(&mut c, &edit, &mut out), Err(CodecError::InvalidInput(_))), "{what}");
        assert!(edit.apply_to(&mut c).is_err(), "{what}");
        assert_eq!(c, c0, "{what}: complex changed");
        assert!(out.is_empty(), "{what}");
        assert_eq!(enc.last_seq(), Some(0), "{what}");
    }
}

#[test]
fn missing_or_wrong_base_needs_a_keyframe() {
    let mut c = load("1hvr.pdb");
    let mut enc = StreamEncoder::new(3, PRECISION);
    let mut out = Vec::new();
    // The encoder refuses deltas of any kind before its first keyframe.
    assert!(matches!(enc.attributes(&c, &mut out), Err(CodecError::NeedKeyframe { held: None, .. })));
    assert!(matches!(enc.transform(&c, &mut out), Err(CodecError::NeedKeyframe { held: None, .. })));
    let edit = plugin_edit(&c);
    assert!(matches!(enc.topology(&mut c, &edit, &mut out), Err(CodecError::NeedKeyframe { .. })));
    let mut key = Vec::new();
    enc.keyframe(&c, &mut key).unwrap();
    let mut pos = Vec::new();
    let walk = molstream_engine::synth::random_walk(c.current().positions, 2, 0.05, 5);
    enc.delta(&walk[1], &mut pos).unwrap();
    display(&mut c).selected[0] = true;
    let mut att = Vec::new();
    enc.attributes(&c, &mut att).unwrap().unwrap();
    c.position = Vec3::X;
    let mut tr = Vec::new();
    enc.transform(&c, &mut tr).unwrap().unwrap();
    let mut top = Vec::new();
    let edit = plugin_edit(&c);
    enc.topology(&mut c, &edit, &mut top).unwrap();

    // Nothing held yet.
    let mut rx = Rx::new();
    for f in [&att, &tr, &top] {
        assert!(matches!(rx.apply(f), Err(CodecError::NeedKeyframe { held: None, .. })));
    }
    rx.apply(&key).unwrap();
    let before = rx.state();
    // Skipping the position delta: every later frame's base is missing.
    assert!(matches!(rx.apply(&att), Err(CodecError::NeedKeyframe { base_seq: 1, held: Some(0), .. })));
    assert!(matches!(rx.apply(&tr), Err(CodecError::NeedKeyframe { base_seq: 2, held: Some(0), .. })));
    assert!(matches!(rx.apply(&top), Err(CodecError::NeedKeyframe { base_seq: 3, held: Some(0), .. })));
    assert!(rx.state() == before, "refused frames changed the receiver");
    // The same frames from another stream are refused too.
    let mut other = StreamEncoder::new(4, PRECISION);
    let c2 = load("1hvr.pdb");
    other.keyframe(&c2, &mut Vec::new()).unwrap();
    let mut c3 = c2.clone();
    display(&mut c3).selected[0] = true;
    let mut foreign = Vec::new();
    other.attributes(&c3, &mut foreign).unwrap().unwrap();
    assert!(matches!(rx.apply(&foreign), Err(CodecError::NeedKeyframe { stream_id: 4, .. })));
    assert!(rx.state() == before);
    // In order, they all apply.
    for (f, want) in
        [(&pos, Applied::Positions), (&att, Applied::Attributes), (&tr, Applied::Transform), (&top, Applied::Topology)]
    {
        assert_eq!(rx.apply(f).unwrap(), want);
    }
    // Replaying an applied frame: its base is no longer held.
    assert!(matches!(rx.apply(&att), Err(CodecError::NeedKeyframe { held: Some(4), .. })));
}

#[test]
fn position_delta_across_a_topology_change_is_refused_and_resynced() {
    let mut c = load("1hvr.pdb");
    let n0 = c.current().topology.atom_count();
    let old_positions = c.current().positions.to_vec();
    let mut enc = StreamEncoder::new(3, PRECISION);
    let mut key0 = Vec::new();
    enc.keyframe(&c, &mut key0).unwrap();
    let (mut rx, mut lagging) = (Rx::new(), Rx::new());
    rx.apply(&key0).unwrap();
    lagging.apply(&key0).unwrap();
    // A sender that has not seen the topology change (a stale copy of the stream state).
    let mut stale = enc.clone();

    let mut top = Vec::new();
    let edit = plugin_edit(&c);
    enc.topology(&mut c, &edit, &mut top).unwrap();
    rx.apply(&top).unwrap();
    let n1 = c.current().topology.atom_count();
    assert_ne!(n0, n1);
    let held = rx.state();

    // A delta of the old atom set against the frame before the edit: base not held.
    let mut d = Vec::new();
    stale.delta(&old_positions, &mut d).unwrap();
    assert!(matches!(rx.apply(&d), Err(CodecError::NeedKeyframe { base_seq: 0, held: Some(1), .. })));
    // One whose base number matches but covers the old atom set: a typed count error.
    let mut d = Vec::new();
    stale.delta(&old_positions, &mut d).unwrap();
    let got = u32::try_from(n0).unwrap();
    let expected = u32::try_from(n1).unwrap();
    assert_eq!(rx.apply(&d), Err(CodecError::AtomCount { expected, got }));
    assert!(rx.state() == held, "a stale delta changed the receiver");
    // The sender refuses to code old-size positions against the new atom set.
    assert_eq!(enc.delta(&old_positions, &mut Vec::new()), Err(CodecError::AtomCount { expected, got }));

    // A receiver that missed the topology delta cannot take the next delta ...
    let walk = molstream_engine::synth::random_walk(c.current().positions, 2, 0.05, 9);
    c.set_positions(0, walk[1].clone()).unwrap();
    let mut d = Vec::new();
    enc.delta(c.current().positions, &mut d).unwrap();
    let lag_before = lagging.state();
    assert!(matches!(lagging.apply(&d), Err(CodecError::NeedKeyframe { base_seq: 1, held: Some(0), .. })));
    assert!(lagging.state() == lag_before);
    rx.apply(&d).unwrap();
    // ... until the sender answers with a keyframe; then both follow the stream.
    let mut key = Vec::new();
    enc.keyframe(&c, &mut key).unwrap();
    lagging.apply(&key).unwrap();
    rx.apply(&key).unwrap();
    let walk = molstream_engine::synth::random_walk(c.current().positions, 2, 0.05, 10);
    c.set_positions(0, walk[1].clone()).unwrap();
    let mut d = Vec::new();
    enc.delta(c.current().positions, &mut d).unwrap();
    for r in [&mut rx, &mut lagging] {
        assert_eq!(r.apply(&d).unwrap(), Applied::Positions);
        assert_matches_fresh(r, &c, "after the resync");
    }
}

/// Re-seals `payload` under `h` (valid checksum), so the payload decoder itself sees it.
fn reseal(h: FrameHeader, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    header::seal(h, payload, false, &mut out);
    out
}

#[test]
fn truncated_and_corrupt_frames_are_typed_errors_that_change_nothing() {
    let mut c = load("1hvr.pdb");
    let (mut enc, mut rx) = start(&c);
    let mut pos = Vec::new();
    let walk = molstream_engine::synth::random_walk(c.current().positions, 2, 0.05, 3);
    c.set_positions(0, walk[1].clone()).unwrap();
    enc.delta(c.current().positions, &mut pos).unwrap();
    rx.apply(&pos).unwrap();

    // One frame of each kind, each against the state after `pos` (separate encoders).
    let base_enc = enc.clone();
    let mut frames: Vec<(&str, Vec<u8>)> = Vec::new();
    {
        let (mut e, mut c) = (base_enc.clone(), c.clone());
        for i in (0..300).step_by(3) {
            display(&mut c).selected[i] = true;
        }
        display(&mut c).color[17] = 0xdead_beef;
        let t = c.topologies[0].clone();
        display(&mut c).apply_representation(&t, Representation::Wire);
        display(&mut c).label_text.insert(AtomId(12), "label ü".into());
        let mut b = Vec::new();
        e.attributes(&c, &mut b).unwrap().unwrap();
        frames.push(("attributes", b));
    }
    {
        let (mut e, mut c) = (base_enc.clone(), c.clone());
        c.position = Vec3::new(4.0, 5.0, 6.0);
        c.rotation = Quat::from_rotation_x(1.0);
        c.locked = true;
        let mut b = Vec::new();
        e.transform(&c, &mut b).unwrap().unwrap();
        frames.push(("transform", b));
    }
    {
        let (mut e, mut c) = (base_enc.clone(), c.clone());
        let mut b = Vec::new();
        let edit = plugin_edit(&c);
        e.topology(&mut c, &edit, &mut b).unwrap();
        frames.push(("topology", b));
    }

    let saved = (rx.dec.clone(), rx.bufs.clone());
    for (name, bytes) in &frames {
        let f = frame(bytes);
        let h = f.header;
        let before = rx.state();
        // Every truncation of the payload, correctly sealed, is a typed error.
        for cut in 0..f.payload.len() {
            let e = rx.apply(&reseal(h, &f.payload[..cut])).expect_err(name);
            assert!(
                matches!(e, CodecError::Truncated | CodecError::Corrupt(_) | CodecError::LimitExceeded { .. }),
                "{name} cut at {cut}: {e:?}"
            );
            assert!(rx.state() == before, "{name} cut at {cut} changed the receiver");
        }
        // Every byte flip of the payload, correctly sealed: an error changes nothing; a flip
        // that still decodes yields a consistent receiver (then the state is restored).
        let (mut errors, mut decoded) = (0, 0);
        for i in 0..f.payload.len() {
            for mask in [0x01u8, 0x5a, 0x80] {
                let mut p = f.payload.clone();
                p[i] ^= mask;
                match rx.apply(&reseal(h, &p)) {
                    Err(_) => {
                        errors += 1;
                        assert!(rx.state() == before, "{name} flip at {i} changed the receiver");
                    }
                    Ok(_) => {
                        decoded += 1;
                        let snap = rx.dec.snapshot().unwrap();
                        snap.current().topology.validate().unwrap();
                        assert_eq!(rx.bufs.atoms.len(), snap.current().topology.atom_count());
                        (rx.dec, rx.bufs) = saved.clone();
                    }
                }
            }
        }
        println!("{name}: {} payload bytes, flips: {errors} refused, {decoded} decoded", f.payload.len());
        assert!(errors > 0);
        // Flips of the frame as sent (checksum not fixed) are all caught.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            let mut r = FrameReader::new(Limits::default());
            r.push_bytes(&b);
            if let Ok(Some(f)) = r.try_read() {
                assert!(rx.dec.apply_buffers(&f, &mut rx.bufs).is_err(), "{name}: flip at {i} went unnoticed");
            }
            assert!(rx.state() == before, "{name}: flip at {i} changed the receiver");
        }
        // A frame under the wrong kind is refused as well.
        for kind in [
            molstream_engine::codec::FrameKind::AtomAttributes,
            molstream_engine::codec::FrameKind::Transforms,
            molstream_engine::codec::FrameKind::TopologyDelta,
        ] {
            if kind != h.kind {
                let mut wrong = h;
                wrong.kind = kind;
                assert!(rx.apply(&reseal(wrong, &f.payload)).is_err(), "{name} as {kind:?}");
                assert!(rx.state() == before);
            }
        }
        // The intact frame applies.
        rx.apply(bytes).unwrap();
        (rx.dec, rx.bufs) = saved.clone();
    }
}

#[test]
fn hostile_payloads_fail_before_allocating() {
    let limits = Limits::default();
    let n = 1000;
    // A sparse colour record claiming 2^40 ranges.
    let mut p = vec![attrs::COLOR, 0];
    p.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    assert!(matches!(attrs::decode(&p, n, &limits), Err(CodecError::LimitExceeded { .. })));
    // A range that runs past the atom count.
    let p = [attrs::SELECTED, 0, 1, 0xe7, 0x07, 5, 1, 1];
    assert_eq!(attrs::decode(&p, n, &limits), Err(CodecError::Corrupt("id range beyond the count")));
    // A dense palette bigger than the bytes that follow.
    let p = [attrs::COLOR, attrs::COLOR, 0xe8, 0x07, 1, 2, 3];
    assert_eq!(attrs::decode(&p, n, &limits), Err(CodecError::Truncated));
    // Unknown bits, a dense bit without its attribute, a flag value of 2, trailing bytes.
    assert!(attrs::decode(&[0x40, 0], n, &limits).is_err());
    assert!(attrs::decode(&[attrs::COLOR, attrs::RADIUS], n, &limits).is_err());
    assert!(attrs::decode(&[attrs::SELECTED, 0, 1, 0, 0, 1, 2], n, &limits).is_err());
    assert!(attrs::decode(&[attrs::SELECTED, 0, 1, 0, 0, 1, 1], n, &limits).is_ok());
    assert!(attrs::decode(&[attrs::SELECTED, 0, 1, 0, 0, 1, 1, 0], n, &limits).is_err());
    // A label longer than the limit.
    let tight = Limits { max_string: 4, ..Limits::default() };
    let mut p = vec![attrs::LABEL_TEXT, 0, 1, 0, 0, 7];
    p.extend_from_slice(b"abcdef");
    assert!(attrs::decode(&p, n, &limits).is_ok());
    assert!(matches!(attrs::decode(&p, n, &tight), Err(CodecError::LimitExceeded { .. })));
}

#[test]
fn frame_sizes_on_a_121k_atom_complex() {
    let one = load("1hvr.pdb");
    let (t, pos) = molstream_engine::synth::tile(one.current().topology, one.current().positions, [4, 4, 4], 5.0);
    let mut c = Complex::single("tiled 1hvr", t, pos);
    let n = c.current().topology.atom_count();
    assert_eq!(n, 1890 * 64);
    let (mut enc, mut rx) = start(&c);
    let mut key = Vec::new();
    enc.clone().keyframe(&c, &mut key).unwrap();
    let mut size = |c: &mut Complex, edit: &dyn Fn(&mut Complex)| -> usize {
        edit(c);
        let mut b = Vec::new();
        enc.attributes(c, &mut b).unwrap().unwrap();
        rx.apply(&b).unwrap();
        b.len()
    };
    let one_selected = size(&mut c, &|c| display(c).selected[60_000] = true);
    let one_deselected = size(&mut c, &|c| display(c).selected[60_000] = false);
    let residue_colored = size(&mut c, &|c| {
        for i in c.topologies[0].residue_atoms(ResidueId(2000)) {
            c.displays[0].color[i] = 0xff00_00ff;
        }
    });
    let chain_recolor = size(&mut c, &|c| {
        let t = c.topologies[0].clone();
        display(c).apply_color_scheme(&t, ColorScheme::Chain);
    });
    let element_recolor = size(&mut c, &|c| {
        let t = c.topologies[0].clone();
        display(c).apply_color_scheme(&t, ColorScheme::Element);
    });
    let spacefill = size(&mut c, &|c| {
        let t = c.topologies[0].clone();
        display(c).apply_representation(&t, Representation::Spacefill);
    });
    let select_all = size(&mut c, &|c| display(c).selected.fill(true));
    assert_matches_fresh(&rx, &c, "121k atoms");
    println!(
        "{n} atoms, frame bytes (32-byte header included): keyframe {}, one atom selected {one_selected}, \
         deselected {one_deselected}, one residue recoloured {residue_colored}, chain recolour {chain_recolor}, \
         element recolour {element_recolor}, spacefill (representation + radius) {spacefill}, select all {select_all}",
        key.len()
    );
    // Bounds measured on this data (see the report); they catch regressions of the coding.
    assert!(one_selected <= 32 + 10, "{one_selected}");
    assert!(one_deselected <= 32 + 10, "{one_deselected}");
    assert!(residue_colored <= 32 + 12, "{residue_colored}");
    assert!(chain_recolor <= 1200, "{chain_recolor}");
    assert!(select_all <= 32 + 6, "{select_all}");
    assert!(spacefill < key.len() / 10, "{spacefill}");
    assert!(element_recolor < key.len() / 4, "{element_recolor}");
}

#[test]
fn instance_base_is_kept_by_every_rebuild() {
    let mut c = load("1hvr.pdb");
    let base = molstream_engine::gpu::InstanceBase { atom_offset: 5000, pick_base: 7001, transform: 3 };
    let mut enc = StreamEncoder::new(1, PRECISION);
    let mut dec = StreamDecoder::new(Limits::default()).with_instance_base(base);
    let mut bufs = StructureBuffers::default();
    let mut b = Vec::new();
    enc.keyframe(&c, &mut b).unwrap();
    dec.apply_buffers(&frame(&b), &mut bufs).unwrap();
    b.clear();
    let edit = plugin_edit(&c);
    enc.topology(&mut c, &edit, &mut b).unwrap();
    dec.apply_buffers(&frame(&b), &mut bufs).unwrap();
    let check = |atoms: &[AtomInstance]| {
        assert!(
            atoms.iter().enumerate().all(|(i, a)| a.transform == 3 && a.pick_id == 7001 + u32::try_from(i).unwrap())
        );
    };
    check(&bufs.atoms);
    assert!(bufs.bonds.iter().all(|x| x.atom_a >= 5000 && x.atom_b >= 5000));
    assert_eq!(bufs.bonds.len(), c.current().topology.bonds.len());
}

//! Criterion benchmarks of the structure-loading path.
//!
//! Each group measures a baseline (reading or copying the bytes) next to the real work in the
//! same run, so that ratios can be read even on noisy machines:
//!
//! - `adk_oplsaa`: the solvated adenylate kinase box from `../shared/data/pdb` (about 47,700
//!   atoms; the bundled `assets/1hvr.pdb` when that file is absent): `read`, `parse`,
//!   `parse_validate`, `bonds`, `buffers` and `full`;
//! - `synthetic_1m`: `assets/1hvr.pdb` tiled 8 × 8 × 8 times (967,680 atoms) and written to PDB
//!   text once: `memcpy` (into a buffer allocated once), `parse`, `bonds` and `buffers`.
//!
//! `parse` is [`io::load_bytes`] without the pdbtbx pass and without inferred bonds; `bonds` is
//! [`infer_bonds`] alone (the ion mask is computed once, outside the timing). Outputs are
//! dropped inside the timing loop, so allocation and freeing count as part of each step.
//!
//! Throughput is in atoms (criterion's `Elements`).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use molstream_engine::bonds::{infer_bonds, ion_mask};
use molstream_engine::gpu::StructureBuffers;
use molstream_engine::io::{self, Format, LoadOptions, Loaded};
use molstream_engine::{DisplayState, ModelView, Style, synth};

/// The solvated adenylate kinase box (relative to the repository root: `../shared/data/pdb`).
const ADK_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pdb/adk_oplsaa.pdb");
/// The bundled HIV protease, the fallback input and the tile of the synthetic structure.
const HVR_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/1hvr.pdb");

/// Only molstream's parse: no pdbtbx pass, no inferred bonds.
fn parse_only() -> LoadOptions {
    LoadOptions { validate_with_pdbtbx: false, infer_bonds: false, ..LoadOptions::default() }
}

/// molstream's parse plus the pdbtbx validation pass, no inferred bonds.
fn parse_validate() -> LoadOptions {
    LoadOptions { validate_with_pdbtbx: true, infer_bonds: false, ..LoadOptions::default() }
}

fn load(bytes: &[u8], name: &str, options: &LoadOptions) -> Loaded {
    match io::load_bytes(bytes, name, Some(Format::Pdb), options) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    }
}

fn atom_count(loaded: &Loaded) -> u64 {
    loaded.complex.current().topology.atom_count() as u64
}

fn adk_oplsaa(c: &mut Criterion) {
    let path = if Path::new(ADK_PATH).is_file() {
        ADK_PATH
    } else {
        eprintln!("note: {ADK_PATH} is absent; benchmarking the bundled assets/1hvr.pdb instead");
        HVR_PATH
    };
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (parse_only, parse_validate) = (parse_only(), parse_validate());
    let parsed = load(&bytes, path, &parse_only);
    let full = load(&bytes, path, &LoadOptions::default());
    let atoms = atom_count(&full);
    let view = parsed.complex.current();
    let mask = ion_mask(view.topology);

    let mut g = c.benchmark_group("adk_oplsaa");
    g.sample_size(20).measurement_time(Duration::from_secs(8)).throughput(Throughput::Elements(atoms));
    g.bench_function("read", |b| b.iter(|| std::fs::read(black_box(path)).map(|v| v.len())));
    g.bench_function("parse", |b| b.iter(|| load(black_box(&bytes), path, &parse_only)));
    g.bench_function("parse_validate", |b| b.iter(|| load(black_box(&bytes), path, &parse_validate)));
    g.bench_function("bonds", |b| {
        b.iter(|| {
            infer_bonds(&view.topology.atoms.element, &view.topology.atoms.alt_loc, &mask, black_box(view.positions))
        });
    });
    g.bench_function("buffers", |b| b.iter(|| StructureBuffers::build(black_box(full.complex.current()))));
    g.bench_function("full", |b| {
        b.iter(|| {
            let l = load(black_box(&bytes), path, &LoadOptions::default());
            let buffers = StructureBuffers::build(l.complex.current());
            (l, buffers)
        });
    });
    g.finish();
}

/// PDB text of `assets/1hvr.pdb` tiled 8 × 8 × 8 times.
fn synthetic_text() -> String {
    let bytes = std::fs::read(HVR_PATH).unwrap_or_else(|e| panic!("{HVR_PATH}: {e}"));
    let tile = load(&bytes, HVR_PATH, &LoadOptions::default());
    let m = tile.complex.current();
    let (t, p) = synth::tile(m.topology, m.positions, [8, 8, 8], 4.0);
    let display = DisplayState::styled(&t, Style::default());
    io::pdb::write(ModelView { topology: &t, display: &display, positions: &p })
}

fn synthetic_1m(c: &mut Criterion) {
    let text = synthetic_text();
    let bytes = text.as_bytes();
    let name = "synthetic_1m.pdb";
    let parse_only = parse_only();
    let parsed = load(bytes, name, &parse_only);
    let atoms = atom_count(&parsed);
    let view = parsed.complex.current();
    let mask = ion_mask(view.topology);
    let with_bonds = load(bytes, name, &LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() });

    let mut g = c.benchmark_group("synthetic_1m");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(7))
        .throughput(Throughput::Elements(atoms));
    // Into a buffer allocated and touched once: the memory-bandwidth floor of one pass over the
    // bytes, free of allocator and page-fault noise.
    let mut copy = bytes.to_vec();
    g.bench_function("memcpy", |b| b.iter(|| copy.copy_from_slice(black_box(bytes))));
    g.bench_function("parse", |b| b.iter(|| load(black_box(bytes), name, &parse_only)));
    g.bench_function("bonds", |b| {
        b.iter(|| {
            infer_bonds(&view.topology.atoms.element, &view.topology.atoms.alt_loc, &mask, black_box(view.positions))
        });
    });
    g.bench_function("buffers", |b| b.iter(|| StructureBuffers::build(black_box(with_bonds.complex.current()))));
    g.finish();
}

fn main() {
    // What `criterion_group!` and `criterion_main!` expand to, without their undocumented `pub fn`.
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(2))
        .configure_from_args();
    adk_oplsaa(&mut c);
    synthetic_1m(&mut c);
    c.final_summary();
}

//! `molstream-bench`: timings of molstream's structure-loading path, as a table or as one JSON
//! object.
//!
//! ```text
//! molstream-bench load --input FILE [--repeat N] [--json]
//! molstream-bench load --synthetic N_ATOMS [--repeat N] [--json]
//! ```
//!
//! Each repetition times, on the same bytes and in the same process:
//! - `read`: `std::fs::read` of the file (for `--synthetic`, of the generated text written to a
//!   temporary file);
//! - `memcpy`: copying the bytes into a buffer allocated and touched once, before the first
//!   repetition (the memory-bandwidth floor of one pass over the bytes, free of allocator and
//!   page-fault noise: the baseline the other steps are compared with);
//! - `parse`, `bonds`: [`LoadTimings::parse`] and [`LoadTimings::bonds`] of a load without the
//!   pdbtbx pass and with bond inference;
//! - `buffers`: [`StructureBuffers::build`] on that load;
//! - `validate`: [`LoadTimings::validate`] of a load with the loader's defaults (pdbtbx pass and
//!   bond inference on);
//! - `total`: `read` plus the wall time of that default load plus its buffers, i.e. what opening
//!   the file in the viewer costs.
//!
//! The figures printed are medians over the repetitions. Throughputs are in millions of atoms
//! per second; `x_memcpy` gives each step's time as a multiple of `memcpy`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use molstream_engine::gpu::StructureBuffers;
use molstream_engine::io::{self, Format, LoadOptions, LoadTimings, Loaded};

mod bridge;
mod codec;
mod render;
mod shapes;
mod stream;
use molstream_engine::{DisplayState, ModelView, Style, synth};
use serde_json::json;

/// The bundled structure tiled by `--synthetic` (HIV-1 protease, 1890 atoms).
const TILE_PDB: &[u8] = include_bytes!("../../assets/1hvr.pdb");
/// Gap between tiled copies, Å.
const TILE_GAP: f32 = 4.0;
/// Largest `--synthetic` size accepted.
const MAX_SYNTHETIC_ATOMS: usize = 50_000_000;

/// Command line.
#[derive(Parser, Debug)]
#[command(name = "molstream-bench", version, about = "Timings of molstream's structure-loading path")]
struct Cli {
    /// What to measure.
    #[command(subcommand)]
    command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Loads a structure N times and reports the median time of each loading step.
    Load(LoadArgs),
    /// Stream codec: sizes and delta-decode speed on a trajectory, next to memcpy and (for XTC
    /// input) molly's XTC decoder, all measured in the same run.
    Codec(codec::CodecArgs),
    /// Shapes codec: a synthetic mesh's encoded size and decode time into GPU buffers, next to
    /// memcpy of the same output bytes.
    Shapes(shapes::ShapesArgs),
    /// Offscreen frame times of the renderer on a tiled structure, static and with positions
    /// streamed every frame, beside an empty scene.
    Render(render::RenderArgs),
    /// Position frames from a plugin instance through the relay to clients over loopback QUIC,
    /// next to the same frames over plain TCP; control round trips; memory.
    Stream(stream::StreamArgs),
    /// Round-trip latency of small JSON-RPC calls through the bridge over Redis and WebSocket,
    /// next to the same call made directly with the SDK.
    Bridge(bridge::BridgeArgs),
    /// The relay of `stream --relay-process` (internal).
    #[command(hide = true)]
    StreamRelay(stream::RelayArgs),
}

/// Arguments of `load`.
#[derive(Args, Debug)]
struct LoadArgs {
    /// Structure file to load (PDB or mmCIF, optionally gzip-compressed).
    #[arg(long, value_name = "FILE", conflicts_with = "synthetic", required_unless_present = "synthetic")]
    input: Option<PathBuf>,
    /// Instead of a file: tile the bundled assets/1hvr.pdb to at least this many atoms and
    /// load the PDB text written from it.
    #[arg(long, value_name = "N_ATOMS")]
    synthetic: Option<usize>,
    /// Number of repetitions; medians are reported.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Print exactly one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// The bytes to load and where they come from.
struct Source {
    /// File that `read` reads.
    path: PathBuf,
    /// Name given to the loader (errors, complex name).
    name: String,
    /// Format implied by the name, if any.
    hint: Option<Format>,
    /// Removed on drop (the synthetic text's temporary file).
    temporary: bool,
    /// For `--synthetic`: the copies grid and the tiled atom count.
    synthetic: Option<([u32; 3], usize)>,
}

impl Drop for Source {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Timings of one repetition, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// `std::fs::read`.
    read: f64,
    /// Copying the bytes into a new vector.
    memcpy: f64,
    /// molstream's parse (no validation).
    parse: f64,
    /// The pdbtbx pass.
    validate: f64,
    /// CONECT resolution and bond inference.
    bonds: f64,
    /// GPU instance buffers.
    buffers: f64,
    /// The default load's wall time not covered by its [`LoadTimings`] (sniffing, display
    /// state, assembling the complex).
    load_other: f64,
    /// `read` plus the default load plus its buffers.
    total: f64,
}

/// What one load produced, for the report.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    /// Atoms of the current model.
    atoms: usize,
    /// Bonds of the current model.
    bonds: usize,
    /// Warnings of the default load (pdbtbx's included).
    warnings: usize,
    /// Models in the file.
    models: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => run_load(&args),
        Command::Codec(args) => codec::run(&args),
        Command::Shapes(args) => shapes::run(&args),
        Command::Render(args) => render::run(&args),
        Command::Stream(args) => stream::run(&args),
        Command::Bridge(args) => bridge::run(&args),
        Command::StreamRelay(args) => stream::run_relay(&args),
    }
}

/// Milliseconds of a duration.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median of `values` (mean of the two middle ones for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

/// Rounds to `digits` decimals (for readable JSON).
fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// A near-cubic grid `[a, b, c]` with `a·b·c ≥ copies` and as few cells as possible (the
/// longest side at most twice the shortest).
fn copies_grid(copies: usize) -> [u32; 3] {
    let copies = copies.max(1);
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let side = (copies as f64).cbrt().ceil() as usize;
    let mut best = [side, side, side];
    for a in 1..=side {
        for b in a..=2 * side {
            let c = copies.div_ceil(a * b).max(b);
            if c > 2 * a {
                continue;
            }
            let (p, q) = (a * b * c, best[0] * best[1] * best[2]);
            if p < q || (p == q && c - a < best[2] - best[0]) {
                best = [a, b, c];
            }
        }
    }
    best.map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// Tiles the bundled 1hvr to at least `n_atoms` atoms, writes PDB text to a temporary file and
/// returns it as the source.
fn synthetic_source(n_atoms: usize) -> Result<Source> {
    if n_atoms > MAX_SYNTHETIC_ATOMS {
        bail!("--synthetic {n_atoms}: at most {MAX_SYNTHETIC_ATOMS} atoms");
    }
    let tile = io::load_bytes(TILE_PDB, "1hvr.pdb", Some(Format::Pdb), &LoadOptions::default())
        .context("loading the bundled assets/1hvr.pdb")?;
    let m = tile.complex.current();
    let per_copy = m.topology.atom_count();
    let grid = copies_grid(n_atoms.div_ceil(per_copy));
    let (t, p) = synth::tile(m.topology, m.positions, grid, TILE_GAP);
    let display = DisplayState::styled(&t, Style::default());
    let text = io::pdb::write(ModelView { topology: &t, display: &display, positions: &p });
    let path = std::env::temp_dir().join(format!("molstream-bench-synthetic-{}.pdb", std::process::id()));
    std::fs::write(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(Source {
        name: format!("synthetic_{}.pdb", t.atom_count()),
        path,
        hint: Some(Format::Pdb),
        temporary: true,
        synthetic: Some((grid, t.atom_count())),
    })
}

/// One load through the loader, with its wall time.
fn timed_load(bytes: &[u8], source: &Source, options: &LoadOptions) -> Result<(Loaded, Duration)> {
    let t = Instant::now();
    let loaded = io::load_bytes(bytes, &source.name, source.hint, options)?;
    Ok((loaded, t.elapsed()))
}

/// Sum of the steps a [`LoadTimings`] accounts for.
fn accounted(t: &LoadTimings) -> Duration {
    t.decompress + t.parse + t.validate + t.bonds
}

/// One repetition of every step. `copy` is the `memcpy` target, as long as the file.
fn sample(source: &Source, copy: &mut [u8]) -> Result<(Sample, Counts)> {
    let t = Instant::now();
    let bytes = std::fs::read(&source.path).with_context(|| format!("reading {}", source.path.display()))?;
    let read = t.elapsed();
    if bytes.len() != copy.len() {
        bail!("{} changed size while being measured", source.path.display());
    }

    let t = Instant::now();
    copy.copy_from_slice(black_box(&bytes));
    black_box(&mut *copy);
    let memcpy = t.elapsed();

    // Parse and bonds without the pdbtbx pass, then the buffers of that load.
    let fast = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let (loaded, _) = timed_load(&bytes, source, &fast)?;
    let t = Instant::now();
    let buffers = black_box(StructureBuffers::build(loaded.complex.current()));
    let buffers_time = t.elapsed();
    let view = loaded.complex.current();
    let mut counts = Counts {
        atoms: view.topology.atom_count(),
        bonds: buffers.bonds.len(),
        warnings: 0,
        models: loaded.complex.models.len(),
    };
    let fast_timings = loaded.timings;
    drop(buffers);
    drop(loaded);

    // The loader's defaults (pdbtbx pass and bonds), with buffers: what opening the file costs.
    let t = Instant::now();
    let (full, full_wall) = timed_load(&bytes, source, &LoadOptions::default())?;
    let full_buffers = black_box(StructureBuffers::build(full.complex.current()));
    let full_time = t.elapsed();
    counts.warnings = full.warnings.len();
    drop(full_buffers);

    let s = Sample {
        read: ms(read),
        memcpy: ms(memcpy),
        parse: ms(fast_timings.parse),
        validate: ms(full.timings.validate),
        bonds: ms(fast_timings.bonds),
        buffers: ms(buffers_time),
        load_other: ms(full_wall.saturating_sub(accounted(&full.timings))),
        total: ms(read + full_time),
    };
    Ok((s, counts))
}

/// Millions of atoms per second for `atoms` processed in `millis`.
fn matoms_per_s(atoms: usize, millis: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let atoms = atoms as f64;
    if millis > 0.0 { atoms / millis / 1e3 } else { f64::NAN }
}

fn run_load(args: &LoadArgs) -> Result<()> {
    let source = match (&args.input, args.synthetic) {
        (Some(path), None) => Source {
            name: path.display().to_string(),
            hint: io::format_from_name(path),
            path: path.clone(),
            temporary: false,
            synthetic: None,
        },
        (None, Some(n)) => synthetic_source(n)?,
        _ => bail!("give exactly one of --input FILE and --synthetic N_ATOMS"),
    };
    let size = std::fs::metadata(&source.path).with_context(|| format!("{}", source.path.display()))?.len();

    // Allocated and touched here, so that `memcpy` measures the copy alone.
    let mut copy = vec![1u8; usize::try_from(size).context("file too large for memory")?];
    let mut samples = Vec::new();
    let mut counts = Counts::default();
    for _ in 0..args.repeat {
        let (s, c) = sample(&source, &mut copy)?;
        samples.push(s);
        counts = c;
    }
    let med = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    let m = Sample {
        read: med(|s| s.read),
        memcpy: med(|s| s.memcpy),
        parse: med(|s| s.parse),
        validate: med(|s| s.validate),
        bonds: med(|s| s.bonds),
        buffers: med(|s| s.buffers),
        load_other: med(|s| s.load_other),
        total: med(|s| s.total),
    };
    let x = |v: f64| round(v / m.memcpy, 1);
    let input = match source.synthetic {
        Some(_) => format!("synthetic ({} tiled)", Path::new("assets/1hvr.pdb").display()),
        None => source.path.display().to_string(),
    };
    let report = json!({
        "input": input,
        "synthetic": source.synthetic.map(|(grid, atoms)| json!({ "copies": grid, "atoms": atoms, "gap_angstrom": TILE_GAP })),
        "bytes": size,
        "repeat": args.repeat,
        "atoms": counts.atoms,
        "bonds": counts.bonds,
        "models": counts.models,
        "warnings": counts.warnings,
        "read_ms": round(m.read, 3),
        "memcpy_ms": round(m.memcpy, 3),
        "parse_ms": round(m.parse, 3),
        "validate_ms": round(m.validate, 3),
        "bonds_ms": round(m.bonds, 3),
        "buffers_ms": round(m.buffers, 3),
        "load_other_ms": round(m.load_other, 3),
        "total_ms": round(m.total, 3),
        "matoms_per_s": {
            "parse": round(matoms_per_s(counts.atoms, m.parse), 2),
            "bonds": round(matoms_per_s(counts.atoms, m.bonds), 2),
            "buffers": round(matoms_per_s(counts.atoms, m.buffers), 2),
        },
        "x_memcpy": {
            "read": x(m.read),
            "parse": x(m.parse),
            "validate": x(m.validate),
            "bonds": x(m.bonds),
            "buffers": x(m.buffers),
            "total": x(m.total),
        },
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!("{input}: {size} bytes, {} atoms, {} bonds, {} model(s)", counts.atoms, counts.bonds, counts.models);
    if let Some((grid, _)) = source.synthetic {
        println!("  tiled {}x{}x{} with a {TILE_GAP} Å gap", grid[0], grid[1], grid[2]);
    }
    println!("  median of {} runs:", args.repeat);
    let rows = [
        ("read", m.read, None),
        ("memcpy", m.memcpy, None),
        ("parse", m.parse, Some(matoms_per_s(counts.atoms, m.parse))),
        ("validate (pdbtbx)", m.validate, None),
        ("bonds", m.bonds, Some(matoms_per_s(counts.atoms, m.bonds))),
        ("buffers", m.buffers, Some(matoms_per_s(counts.atoms, m.buffers))),
        ("load, other", m.load_other, None),
        ("total", m.total, None),
    ];
    for (name, v, rate) in rows {
        let rate = rate.map(|r| format!("  {r:8.2} Matoms/s")).unwrap_or_default();
        println!("  {name:<18} {v:10.3} ms  {:8.1} x memcpy{rate}", v / m.memcpy);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_the_copies_and_stays_near_cubic() {
        for k in [1, 2, 7, 27, 100, 512, 530, 1000] {
            let g = copies_grid(k);
            let p: u32 = g.iter().product();
            assert!(p as usize >= k, "{k}: {g:?}");
            let (lo, hi) = (g.iter().min().copied().unwrap_or(0), g.iter().max().copied().unwrap_or(0));
            assert!(hi <= 2 * lo.max(1), "{k}: {g:?}");
        }
        assert_eq!(copies_grid(512), [8, 8, 8]);
        assert_eq!(copies_grid(1), [1, 1, 1]);
    }

    #[test]
    fn median_of_odd_and_even() {
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-12);
    }
}

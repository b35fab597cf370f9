//! `molstream`: the molstream command-line tool.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use molstream_engine::io::{self, LoadOptions};
use molstream_engine::{ColorScheme, Representation, Style};
use molstream_viewer::inspect::{InspectReport, inspect_file};
use molstream_viewer::render::{Headless, RenderSettings};
use molstream_viewer::{BUNDLED_NAME, BUNDLED_STRUCTURE};

/// molstream: structure streaming and rendering.
///
/// Without a command, inspects the structure bundled into the binary.
#[derive(Parser, Debug)]
#[command(name = "molstream", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load a PDB or mmCIF file (optionally .gz) and print models, chains, residues, atom
    /// sites, bonds, load time and warnings.
    Inspect {
        /// The structure file.
        file: String,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
        /// Skip the pdbtbx cross-check (faster; fewer warnings).
        #[arg(long)]
        no_validate: bool,
    },
    /// Open a window showing the structures (the bundled one without files): drag to
    /// rotate, right drag to move, wheel to zoom, click to select.
    View {
        /// Structure files (PDB or mmCIF, optionally .gz).
        files: Vec<std::path::PathBuf>,
        /// Close after this many frames (for smoke tests).
        #[arg(long, hide = true)]
        exit_after_frames: Option<u64>,
        /// Directory screenshots (F12) are saved in.
        #[arg(long, value_name = "DIR")]
        screenshot_dir: Option<std::path::PathBuf>,
        /// Save a screenshot when this frame is drawn (for smoke tests).
        #[arg(long, hide = true)]
        screenshot_at_frame: Option<u64>,
    },
    /// Render a structure to a PNG image without a window (offscreen GPU rendering; a
    /// software adapter such as lavapipe works).
    Render {
        /// The structure file (PDB or mmCIF, optionally .gz).
        file: String,
        /// The PNG file to write.
        #[arg(long, value_name = "OUT.png")]
        out: std::path::PathBuf,
        /// Image width in pixels.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=16384))]
        width: u32,
        /// Image height in pixels.
        #[arg(long, default_value_t = 768, value_parser = clap::value_parser!(u32).range(1..=16384))]
        height: u32,
        /// Representation of every atom.
        #[arg(long, value_enum, default_value_t = StyleArg::BallAndStick)]
        style: StyleArg,
        /// Colour scheme.
        #[arg(long, value_enum, default_value_t = ColorArg::Element)]
        color: ColorArg,
        /// Ambient occlusion strength, 0 (off) to 1.
        #[arg(long, default_value_t = RenderSettings::default().ambient_occlusion)]
        ao: f32,
    },
}

/// `--style` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum StyleArg {
    /// Spheres at 23 % of the van der Waals radius joined by thin cylinders.
    BallAndStick,
    /// Cylinders with round joints.
    Sticks,
    /// Spheres at the van der Waals radius.
    Spacefill,
    /// Thin lines along the bonds.
    Lines,
}

/// `--color` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColorArg {
    /// CPK colours by element.
    Element,
    /// One colour per chain.
    Chain,
    /// By residue type.
    Residue,
    /// B-factor, blue (low) to red (high).
    Bfactor,
}

impl From<StyleArg> for Representation {
    fn from(s: StyleArg) -> Self {
        match s {
            StyleArg::BallAndStick => Representation::BallAndStick,
            StyleArg::Sticks => Representation::Sticks,
            StyleArg::Spacefill => Representation::Spacefill,
            StyleArg::Lines => Representation::Wire,
        }
    }
}

impl From<ColorArg> for ColorScheme {
    fn from(c: ColorArg) -> Self {
        match c {
            ColorArg::Element => ColorScheme::Element,
            ColorArg::Chain => ColorScheme::Chain,
            ColorArg::Residue => ColorScheme::ResidueType,
            ColorArg::Bfactor => ColorScheme::BFactor,
        }
    }
}

/// Arguments of `render`.
struct RenderArgs {
    file: String,
    out: std::path::PathBuf,
    width: u32,
    height: u32,
    style: Style,
    ao: f32,
}

/// Loads, styles and renders one structure to a PNG file.
fn render(args: &RenderArgs) -> anyhow::Result<()> {
    let options = LoadOptions { validate_with_pdbtbx: false, ..LoadOptions::default() };
    let mut loaded = io::load_file(&args.file, &options)?;
    loaded.complex.set_style(args.style);
    let mut headless = Headless::new(args.width, args.height)?;
    headless.renderer.settings.ambient_occlusion = args.ao;
    headless.show(loaded.complex.current())?;
    let image = headless.render_image()?;
    image.write_png(&args.out).context("writing the image")?;
    tracing::info!(adapter = %headless.gpu.describe(), out = %args.out.display(), "rendered");
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Some(Command::View { files, exit_after_frames, screenshot_dir, screenshot_at_frame }) => {
            molstream_viewer::app::run(molstream_viewer::app::ViewOptions {
                files,
                exit_after_frames,
                screenshot_dir,
                screenshot_at_frame,
            })
        }
        Some(Command::Render { file, out, width, height, style, color, ao }) => {
            let style = Style { representation: style.into(), color: color.into() };
            render(&RenderArgs { file, out, width, height, style, ao })
        }
        Some(Command::Inspect { file, json, no_validate }) => {
            let options = LoadOptions { validate_with_pdbtbx: !no_validate, ..LoadOptions::default() };
            inspect_file(&file, &options).map(|r| print_report(&r, json)).map_err(anyhow::Error::from)
        }
        None => io::load_bytes(BUNDLED_STRUCTURE, BUNDLED_NAME, None, &LoadOptions::default())
            .map(|loaded| print_report(&InspectReport::new(BUNDLED_NAME, &loaded), false))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the chain of causes.
            eprintln!("molstream: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Prints an inspect report as text or as one line of JSON.
fn print_report(report: &InspectReport, json: bool) {
    let out = if json { serde_json::to_string(report).map(|s| s + "\n").unwrap_or_default() } else { report.to_text() };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
}

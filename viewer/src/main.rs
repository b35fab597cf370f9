//! `molstream`: the molstream command-line tool.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use molstream_engine::io::{self, LoadOptions};
use molstream_engine::{ColorScheme, Representation, Style};
use molstream_viewer::app::ViewOptions;
use molstream_viewer::inspect::{InspectReport, inspect_file};
use molstream_viewer::live::{LiveOptions, Target};
use molstream_viewer::render::{Headless, RenderSettings};
use molstream_viewer::{BUNDLED_NAME, BUNDLED_STRUCTURE};

/// molstream: structure streaming and rendering.
///
/// Without a command, opens the window in a room of an embedded relay with the bundled plugins,
/// showing the bundled structure (as `molstream view --embedded`).
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
        /// The structure file [default: the structure bundled into the binary, 1HVR].
        file: Option<String>,
        /// Print exactly one JSON object.
        #[arg(long)]
        json: bool,
        /// Skip the pdbtbx cross-check (faster; fewer warnings).
        #[arg(long)]
        no_validate: bool,
    },
    /// Open a window showing structures (the bundled one without files, or a room's): drag to
    /// rotate, right drag to move, wheel to zoom, click to select.
    ///
    /// With `--relay`, joins a room of that relay (the files are shown next to the room's
    /// complexes); with `--embedded` (or `--activate`/`--run`), starts a relay in this process
    /// with the bundled plugins; otherwise shows local files only.
    View {
        /// Structure files (PDB or mmCIF, optionally .gz).
        files: Vec<std::path::PathBuf>,
        #[command(flatten)]
        session: SessionArgs,
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

/// How `view` joins a room.
#[derive(clap::Args, Debug, Default)]
struct SessionArgs {
    /// Join a room of the relay at this address (host:port).
    #[arg(long, env = "MOLSTREAM_RELAY")]
    relay: Option<String>,
    /// The room.
    #[arg(long, env = "MOLSTREAM_ROOM", default_value = "local")]
    room: String,
    /// Your name in the room [default: $USER].
    #[arg(long, env = "MOLSTREAM_USER")]
    user: Option<String>,
    /// SHA-256 fingerprint of the relay's certificate, as the relay prints it (for a relay on
    /// this machine, its config directory is read when this is missing).
    #[arg(long, env = "MOLSTREAM_RELAY_CERT_SHA256")]
    relay_cert_sha256: Option<String>,
    /// Accept any relay certificate (loopback relays only; development).
    #[arg(long)]
    insecure_local: bool,
    /// Start a relay in this process with the bundled plugins (what `molstream` alone does);
    /// --relay and MOLSTREAM_RELAY are then ignored.
    #[arg(long)]
    embedded: bool,
    /// Activate this plugin on joining (repeatable; by name, e.g. "Minimizer").
    #[arg(long, value_name = "PLUGIN")]
    activate: Vec<String>,
    /// Activate and run this plugin on joining (repeatable, in order, e.g. "Shapes demo");
    /// with the embedded relay and neither this nor --activate, the Structure loader runs.
    #[arg(long, value_name = "PLUGIN")]
    run: Vec<String>,
}

impl SessionArgs {
    /// What `molstream` alone runs: the embedded relay, the room and user of `MOLSTREAM_ROOM`
    /// and `MOLSTREAM_USER` when set.
    fn embedded_from_env() -> Self {
        let var = |v| std::env::var(v).ok().filter(|s: &String| !s.is_empty());
        Self {
            embedded: true,
            room: var("MOLSTREAM_ROOM").unwrap_or_else(|| "local".into()),
            user: var("MOLSTREAM_USER"),
            ..Self::default()
        }
    }

    /// The session these flags ask for, if any.
    fn options(self) -> anyhow::Result<Option<LiveOptions>> {
        let user = self
            .user
            .unwrap_or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or("viewer".into()));
        let target = match self.relay.as_ref().filter(|_| !self.embedded) {
            Some(r) => {
                let addr = molstream_net::host::resolve_addr(r)?;
                let trust =
                    molstream_net::host::trust_from(self.relay_cert_sha256.as_deref(), self.insecure_local, addr)?;
                trust.check_addr(addr)?;
                Target::Relay { addr, trust }
            }
            None if self.embedded || !self.activate.is_empty() || !self.run.is_empty() => Target::Embedded,
            None => return Ok(None),
        };
        let mut run = self.run;
        if matches!(target, Target::Embedded) && self.activate.is_empty() && run.is_empty() {
            run.push(molstream_plugins::loader::meta().name);
        }
        Ok(Some(LiveOptions { target, room: self.room, user, activate: self.activate, run }))
    }
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
        Some(Command::View { files, session, exit_after_frames, screenshot_dir, screenshot_at_frame }) => {
            session.options().and_then(|session| {
                molstream_viewer::app::run(ViewOptions {
                    files,
                    exit_after_frames,
                    screenshot_dir,
                    screenshot_at_frame,
                    session,
                })
            })
        }
        None => SessionArgs::embedded_from_env()
            .options()
            .and_then(|session| molstream_viewer::app::run(ViewOptions { session, ..ViewOptions::default() })),
        Some(Command::Render { file, out, width, height, style, color, ao }) => {
            let style = Style { representation: style.into(), color: color.into() };
            render(&RenderArgs { file, out, width, height, style, ao })
        }
        Some(Command::Inspect { file: Some(file), json, no_validate }) => {
            let options = LoadOptions { validate_with_pdbtbx: !no_validate, ..LoadOptions::default() };
            inspect_file(&file, &options).map(|r| print_report(&r, json)).map_err(anyhow::Error::from)
        }
        Some(Command::Inspect { file: None, json, no_validate }) => {
            let options = LoadOptions { validate_with_pdbtbx: !no_validate, ..LoadOptions::default() };
            io::load_bytes(BUNDLED_STRUCTURE, BUNDLED_NAME, None, &options)
                .map(|loaded| print_report(&InspectReport::new(BUNDLED_NAME, &loaded), json))
                .map_err(anyhow::Error::from)
        }
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

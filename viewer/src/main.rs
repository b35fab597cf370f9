//! `molstream`: the molstream command-line tool.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use molstream_engine::io::{self, LoadOptions};
use molstream_viewer::inspect::{InspectReport, inspect_file};
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Inspect { file, json, no_validate }) => {
            let options = LoadOptions { validate_with_pdbtbx: !no_validate, ..LoadOptions::default() };
            inspect_file(&file, &options).map(|r| (r, json))
        }
        None => io::load_bytes(BUNDLED_STRUCTURE, BUNDLED_NAME, None, &LoadOptions::default())
            .map(|loaded| (InspectReport::new(BUNDLED_NAME, &loaded), false)),
    };
    match result {
        Ok((report, json)) => {
            let out = if json {
                serde_json::to_string(&report).map(|s| s + "\n").unwrap_or_default()
            } else {
                report.to_text()
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("molstream: {e}");
            ExitCode::FAILURE
        }
    }
}

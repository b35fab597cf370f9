//! `molstream inspect`: load a structure and report what is in it.

use molstream_engine::io::{self, Format, LoadError, LoadOptions, Loaded};
use serde::Serialize;

/// What `molstream inspect --json` prints: exactly one JSON object.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InspectReport {
    /// The file as given.
    pub file: String,
    /// `pdb` or `mmcif`.
    pub format: &'static str,
    /// Number of models.
    pub models: usize,
    /// Distinct author chain ids in the first model.
    pub chains: usize,
    /// Distinct (chain, sequence number, insertion code) in the first model.
    pub residues: usize,
    /// ATOM/HETATM records of the first model, alternate locations included.
    pub atom_sites: usize,
    /// Bonds of the first model (CONECT plus inferred).
    pub bonds: usize,
    /// Total load time in milliseconds (read, decompress, parse, validate, bonds).
    pub load_ms: f64,
    /// Per-step times in milliseconds.
    pub timings_ms: Timings,
    /// Recoverable problems, one line each.
    pub warnings: Vec<String>,
}

/// Per-step load times in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Timings {
    /// File read.
    pub read: f64,
    /// gzip decompression.
    pub decompress: f64,
    /// molstream's parse.
    pub parse: f64,
    /// pdbtbx validation.
    pub validate: f64,
    /// Bond inference.
    pub bonds: f64,
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl InspectReport {
    /// Builds the report of a loaded structure.
    #[must_use]
    pub fn new(file: &str, loaded: &Loaded) -> Self {
        let c = loaded.complex.counts();
        let t = &loaded.timings;
        Self {
            file: file.to_owned(),
            format: match loaded.format {
                Format::Pdb => "pdb",
                Format::Mmcif => "mmcif",
            },
            models: c.models,
            chains: c.chains,
            residues: c.residues,
            atom_sites: c.atom_sites,
            bonds: c.bonds,
            load_ms: ms(t.total()),
            timings_ms: Timings {
                read: ms(t.read),
                decompress: ms(t.decompress),
                parse: ms(t.parse),
                validate: ms(t.validate),
                bonds: ms(t.bonds),
            },
            warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
        }
    }

    /// Human-readable lines.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} ({})\n  models      {}\n  chains      {}\n  residues    {}\n  atom sites  {}\n  bonds       {}\n  load        {:.2} ms (read {:.2}, parse {:.2}, validate {:.2}, bonds {:.2})\n",
            self.file,
            self.format,
            self.models,
            self.chains,
            self.residues,
            self.atom_sites,
            self.bonds,
            self.load_ms,
            self.timings_ms.read,
            self.timings_ms.parse,
            self.timings_ms.validate,
            self.timings_ms.bonds,
        );
        if self.warnings.is_empty() {
            s.push_str("  warnings    none\n");
        } else {
            s.push_str(&format!("  warnings    {}\n", self.warnings.len()));
            for w in &self.warnings {
                s.push_str("    - ");
                s.push_str(w);
                s.push('\n');
            }
        }
        s
    }
}

/// Loads `file` and builds its report.
pub fn inspect_file(file: &str, options: &LoadOptions) -> Result<InspectReport, LoadError> {
    let loaded = io::load_file(file, options)?;
    Ok(InspectReport::new(file, &loaded))
}

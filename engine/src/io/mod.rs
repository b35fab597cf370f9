//! Loading PDB and mmCIF files (plain or gzip-compressed) into a [`Complex`].
//!
//! The pipeline, in order (each step timed in [`LoadTimings`]):
//! 1. **read** the bytes (a directory, a missing file or an oversize file is a typed error);
//! 2. **decompress** gzip when the bytes start with its magic, bounded by `max_bytes`;
//! 3. **sniff**: binary data and empty files are refused; the format comes from the extension
//!    or, failing that, the content;
//! 4. **parse** with molstream's own single-pass readers ([`pdb`], [`cif`]), which keep every
//!    record in file order, alternate locations included, and name the line of any error;
//! 5. **validate** (optional, on by default) with pdbtbx on the same text behind a panic
//!    boundary; what it reports becomes warnings, never a failure (see ARCHITECTURE.md for why
//!    pdbtbx cannot be the loader itself);
//! 6. **bonds**: CONECT records plus grid inference, per distinct topology.

pub mod cif;
pub mod pdb;
pub mod validate;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bonds;
use crate::builder::{SecondaryRange, TopologyBuilder};
use crate::model::{Complex, DisplayState, Model, Style, Topology};

/// Structure file format.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Format {
    /// PDB (fixed columns).
    Pdb,
    /// PDBx/mmCIF.
    Mmcif,
}

/// Where a warning came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WarningOrigin {
    /// molstream's reader.
    Molstream,
    /// pdbtbx's validation pass.
    Pdbtbx,
}

/// A recoverable problem found while loading: the file loaded, but the user should know.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LoadWarning {
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// Who reported it.
    pub origin: WarningOrigin,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match self.origin {
            WarningOrigin::Molstream => "molstream",
            WarningOrigin::Pdbtbx => "pdbtbx",
        };
        match self.line {
            Some(l) => write!(f, "line {l}: {} [{who}]", self.message),
            None => write!(f, "{} [{who}]", self.message),
        }
    }
}

/// Why a file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// File name.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The path is a directory.
    #[error("{file}: is a directory, not a structure file")]
    IsDirectory {
        /// File name.
        file: String,
    },
    /// The file is empty (or only whitespace).
    #[error("{file}: empty file")]
    Empty {
        /// File name.
        file: String,
    },
    /// The content is binary, not PDB or mmCIF text.
    #[error("{file}: binary data, not a PDB or mmCIF text file{}", .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Binary {
        /// File name.
        file: String,
        /// What gave it away.
        detail: Option<String>,
    },
    /// Neither PDB records nor an mmCIF data block were found.
    #[error("{file}: unknown format: no PDB records and no mmCIF data_ block")]
    UnknownFormat {
        /// File name.
        file: String,
    },
    /// gzip data that does not decompress.
    #[error("{file}: corrupt gzip data: {source}")]
    Gzip {
        /// File name.
        file: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A syntax error at a line.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The file ends in the middle of a construct (e.g. a MODEL without ENDMDL).
    #[error("{file}:{line}: truncated: {message}")]
    Truncated {
        /// File name.
        file: String,
        /// Line where the unfinished construct starts.
        line: usize,
        /// What is unfinished.
        message: String,
    },
    /// The file parses but holds no atom.
    #[error("{file}: no ATOM/HETATM records (or atom_site rows)")]
    NoAtoms {
        /// File name.
        file: String,
    },
    /// Over a configured limit.
    #[error("{file}: too large: {message}")]
    TooLarge {
        /// File name.
        file: String,
        /// Which limit.
        message: String,
    },
}

/// Loader settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    /// Cross-check the file with pdbtbx and keep what it reports as warnings.
    pub validate_with_pdbtbx: bool,
    /// Infer bonds from distances (CONECT bonds are always kept).
    pub infer_bonds: bool,
    /// Refuse files (after decompression) larger than this many bytes.
    pub max_bytes: usize,
    /// Refuse structures with more atom records than this (all models together).
    pub max_atoms: usize,
    /// Style applied to the new complex.
    pub style: Style,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            validate_with_pdbtbx: true,
            infer_bonds: true,
            max_bytes: 4 << 30,
            max_atoms: 100_000_000,
            style: Style::default(),
        }
    }
}

/// Time spent in each loading step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadTimings {
    /// Reading the file.
    pub read: Duration,
    /// gzip decompression.
    pub decompress: Duration,
    /// molstream's parse into topology and positions.
    pub parse: Duration,
    /// The pdbtbx validation pass (zero when disabled).
    pub validate: Duration,
    /// CONECT resolution and bond inference.
    pub bonds: Duration,
}

impl LoadTimings {
    /// Total of all steps.
    #[must_use]
    pub fn total(&self) -> Duration {
        self.read + self.decompress + self.parse + self.validate + self.bonds
    }
}

/// A loaded structure.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The complex (not yet in a workspace).
    pub complex: Complex,
    /// Format that was read.
    pub format: Format,
    /// Recoverable problems.
    pub warnings: Vec<LoadWarning>,
    /// Step timings.
    pub timings: LoadTimings,
}

/// What a format reader hands back: per-model builders plus file-level records.
#[derive(Debug)]
pub(crate) struct ParsedStructure {
    pub(crate) models: Vec<ParsedModel>,
    pub(crate) secondary: Vec<SecondaryRange>,
    /// CONECT records: (line, atom serial, partner serials).
    pub(crate) conect: Vec<(usize, i64, Vec<i64>)>,
    pub(crate) warnings: Vec<LoadWarning>,
}

#[derive(Debug)]
pub(crate) struct ParsedModel {
    pub(crate) builder: TopologyBuilder,
    #[allow(dead_code)] // kept for error messages and future model selection
    pub(crate) number: i32,
}

/// Loads a structure file. The format comes from the extension (`.pdb`, `.ent`, `.cif`,
/// `.mmcif`, each optionally `.gz`) or from the content.
pub fn load_file(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    let t0 = Instant::now();
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io { file: file.clone(), source })?;
    if meta.is_dir() {
        return Err(LoadError::IsDirectory { file });
    }
    if usize::try_from(meta.len()).unwrap_or(usize::MAX) > options.max_bytes {
        return Err(LoadError::TooLarge { file, message: format!("{} bytes", meta.len()) });
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { file: file.clone(), source })?;
    let read = t0.elapsed();
    let hint = format_from_name(path);
    let mut loaded = load_bytes(&bytes, &file, hint, options)?;
    loaded.timings.read = read;
    if let Some(stem) = complex_name(path) {
        loaded.complex.name = stem;
    }
    Ok(loaded)
}

fn complex_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let name = name.strip_suffix(".gz").unwrap_or(name);
    Some(name.rsplit_once('.').map_or(name, |(stem, _)| stem).to_owned())
}

/// Format implied by a file name, if any.
#[must_use]
pub fn format_from_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    let ext = name.rsplit_once('.')?.1;
    match ext {
        "pdb" | "ent" | "pdbqt" => Some(Format::Pdb),
        "cif" | "mmcif" | "mcif" => Some(Format::Mmcif),
        _ => None,
    }
}

/// Loads a structure from bytes (plain or gzip). `file` names it in errors and warnings.
pub fn load_bytes(bytes: &[u8], file: &str, hint: Option<Format>, options: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut timings = LoadTimings::default();
    let t = Instant::now();
    let decompressed;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        decompressed = gunzip(bytes, file, options.max_bytes)?;
        &decompressed[..]
    } else {
        bytes
    };
    timings.decompress = t.elapsed();
    let text = sniff_text(bytes, file)?;
    let format = match hint {
        Some(f) => f,
        None => detect_format(text).ok_or_else(|| LoadError::UnknownFormat { file: file.to_owned() })?,
    };

    let t = Instant::now();
    let parsed = match format {
        Format::Pdb => pdb::parse(text, file, options.max_atoms)?,
        Format::Mmcif => cif::parse(text, file, options.max_atoms)?,
    };
    let mut warnings = parsed.warnings;
    let mut models = Vec::with_capacity(parsed.models.len());
    let mut topologies: Vec<Topology> = Vec::new();
    for m in parsed.models {
        let (topology, positions) = m.builder.finish(&parsed.secondary);
        let mut model = Model { positions, ..Model::default() };
        if let Some(i) = topologies.iter().position(|t| t.same_identity(&topology)) {
            let shared = &topologies[i].atoms;
            model.topology = i;
            if shared.b_factor != topology.atoms.b_factor {
                model.b_factor = Some(topology.atoms.b_factor);
            }
            if shared.occupancy != topology.atoms.occupancy {
                model.occupancy = Some(topology.atoms.occupancy);
            }
        } else {
            model.topology = topologies.len();
            topologies.push(topology);
        }
        models.push(model);
    }
    timings.parse = t.elapsed();

    if options.validate_with_pdbtbx {
        let t = Instant::now();
        let first = models.first().map_or(0, |m| m.positions.len());
        warnings.extend(validate::with_pdbtbx(text, format, first));
        timings.validate = t.elapsed();
    }

    let t = Instant::now();
    for (i, topology) in topologies.iter_mut().enumerate() {
        let Some(first) = models.iter().find(|m| m.topology == i) else { continue };
        let explicit = pdb::resolve_conect(&parsed.conect, &topology.atoms.serial, file)?;
        bonds::assign_bonds(topology, &first.positions, &explicit, options.infer_bonds);
    }
    timings.bonds = t.elapsed();

    let displays = topologies.iter().map(|t| DisplayState::styled(t, options.style)).collect();
    let complex = Complex::new(file.rsplit('/').next().unwrap_or(file), topologies, displays, models);
    for t in &complex.topologies {
        debug_assert_eq!(t.validate(), Ok(()));
    }
    Ok(Loaded { complex, format, warnings, timings })
}

fn gunzip(bytes: &[u8], file: &str, max: usize) -> Result<Vec<u8>, LoadError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(max));
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|source| LoadError::Gzip { file: file.to_owned(), source })?;
    if out.len() > max {
        return Err(LoadError::TooLarge { file: file.to_owned(), message: format!("decompresses past {max} bytes") });
    }
    Ok(out)
}

/// Refuses empty and binary input and returns the text.
fn sniff_text<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, LoadError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(LoadError::Empty { file: file.to_owned() });
    }
    if let Some(pos) = bytes.iter().take(1 << 16).position(|&b| b == 0) {
        return Err(LoadError::Binary { file: file.to_owned(), detail: Some(format!("NUL byte at offset {pos}")) });
    }
    std::str::from_utf8(bytes).map_err(|e| LoadError::Binary {
        file: file.to_owned(),
        detail: Some(format!("invalid UTF-8 at offset {}", e.valid_up_to())),
    })
}

/// Guesses the format from the first meaningful lines.
#[must_use]
pub fn detect_format(text: &str) -> Option<Format> {
    const PDB_RECORDS: [&str; 11] =
        ["ATOM", "HETATM", "HEADER", "TITLE ", "REMARK", "CRYST1", "MODEL ", "COMPND", "SEQRES", "EXPDTA", "AUTHOR"];
    for line in text.lines().take(5000) {
        let l = line.trim_end();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data_")) {
            return Some(Format::Mmcif);
        }
        if PDB_RECORDS.iter().any(|r| l.starts_with(r)) {
            return Some(Format::Pdb);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension_and_content() {
        assert_eq!(format_from_name(Path::new("a/1ABC.cif.gz")), Some(Format::Mmcif));
        assert_eq!(format_from_name(Path::new("x.PDB")), Some(Format::Pdb));
        assert_eq!(format_from_name(Path::new("x.txt")), None);
        assert_eq!(detect_format("# c\ndata_1ABC\n"), Some(Format::Mmcif));
        assert_eq!(detect_format("REMARK x\nATOM      1"), Some(Format::Pdb));
        assert_eq!(detect_format("hello\nworld"), None);
    }

    #[test]
    fn complex_is_named_after_the_file_stem() {
        assert_eq!(complex_name(Path::new("/a/3KPR.cif.gz")).as_deref(), Some("3KPR"));
        assert_eq!(complex_name(Path::new("1hvr.pdb")).as_deref(), Some("1hvr"));
    }
}

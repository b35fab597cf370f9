//! The pdbtbx cross-check: pdbtbx parses the same text at `StrictnessLevel::Loose` behind a
//! panic boundary, and whatever it reports (its warnings, its refusal, or a panic) becomes a
//! [`LoadWarning`]. It never fails a load: molstream's reader has already built the structure.
//!
//! For PDB the text is first normalised the way pdbtbx needs it (see [`normalize_pdb`]), so it
//! reports real problems instead of refusing MD-written files outright.

use std::borrow::Cow;
use std::cell::Cell;
use std::io::BufReader;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use super::{Format, LoadWarning, WarningOrigin};
use crate::element::Element;

thread_local! {
    static SILENCE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once) a panic hook that stays quiet for panics inside the pdbtbx boundary on this
/// thread and defers to the previous hook for every other panic.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !SILENCE_PANICS.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Rewrites PDB text so pdbtbx accepts what MD programs write, touching only what it chokes
/// on (measured on ../shared/data/pdb):
/// - REMARK records whose columns 8-10 are not a remark number are dropped (numbered REMARKs
///   stay: pdbtbx checks their count against MASTER);
/// - ATOM/HETATM lines are padded to 80 columns, with occupancy 1.00, B-factor 0.00 and the
///   element (guessed from the atom name as molstream does) filled in where blank;
/// - CRYST1 is cut to 66 columns, and dropped when pdbtbx would not know its space group;
/// - non-ASCII characters become `?` (pdbtbx slices lines by byte and panics on them).
#[must_use]
pub fn normalize_pdb(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let ascii: Cow<'_, str> = if raw.is_ascii() {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(raw.chars().map(|c| if c.is_ascii() { c } else { '?' }).collect())
        };
        let line: &str = &ascii;
        match line.get(..6).unwrap_or(line) {
            "REMARK" if line.len() > 6 && line.get(7..10).is_none_or(|n| n.trim().parse::<usize>().is_err()) => {}
            "ATOM  " | "HETATM" => {
                let mut l = format!("{line:<80}");
                if l[54..60].trim().is_empty() {
                    l.replace_range(54..60, "  1.00");
                }
                if l[60..66].trim().is_empty() {
                    l.replace_range(60..66, "  0.00");
                }
                if l[76..78].trim().is_empty() {
                    let el = Element::guess_from_atom_name(&l[12..16], l[17..21].trim());
                    l.replace_range(76..78, &format!("{:>2}", el.symbol().to_ascii_uppercase()));
                }
                out.push_str(&l);
                out.push('\n');
            }
            "CRYST1" => {
                let l = format!("{line:<66}");
                if l.get(55..66).and_then(pdbtbx::Symmetry::new).is_some() {
                    out.push_str(&l[..66]);
                    out.push('\n');
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn describe(e: &pdbtbx::PDBError) -> (Option<usize>, String) {
    use pdbtbx::Context;
    let line = match e.context() {
        Context::FullLine { linenumber, .. } | Context::Line { linenumber, .. } => Some(*linenumber),
        Context::Range { start_linenumber, .. } | Context::RangeHighlights { start_linenumber, .. } => {
            Some(*start_linenumber)
        }
        _ => None,
    };
    let mut msg = e.short_description().to_owned();
    let long = e.long_description();
    if !long.is_empty() {
        msg.push_str(": ");
        msg.push_str(long);
    }
    (line, msg)
}

/// Runs pdbtbx over `text` and returns what it reported, as warnings. Only the first model is
/// checked: pdbtbx compares every further model with the first in quadratic time (0.9 s for five
/// frames of a 19k-atom file). `first_model_records` is the number of atom records molstream
/// read in the first model, to report a pdbtbx count that falls short.
pub(super) fn with_pdbtbx(text: &str, format: Format, first_model_records: usize) -> Vec<LoadWarning> {
    install_quiet_hook();
    let input = match format {
        Format::Pdb => Cow::Owned(normalize_pdb(text)),
        Format::Mmcif => Cow::Borrowed(text),
    };
    let mut options = pdbtbx::ReadOptions::default();
    options.set_level(pdbtbx::StrictnessLevel::Loose).set_only_first_model(true).set_format(match format {
        Format::Pdb => pdbtbx::Format::Pdb,
        Format::Mmcif => pdbtbx::Format::Mmcif,
    });
    SILENCE_PANICS.with(|s| s.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| options.read_raw(BufReader::new(input.as_bytes()))));
    SILENCE_PANICS.with(|s| s.set(false));
    let warn = |line, message| LoadWarning { line, origin: WarningOrigin::Pdbtbx, message };
    match result {
        Ok(Ok((structure, errors))) => {
            let mut out: Vec<LoadWarning> = errors
                .iter()
                .map(|e| {
                    let (line, msg) = describe(e);
                    warn(line, msg)
                })
                .collect();
            // pdbtbx copies atoms without an alternate location into every conformer of their
            // residue, so its count only matches when no residue has alternate locations.
            let theirs = structure.models().next().map_or(0, pdbtbx::Model::atom_count);
            if theirs < first_model_records {
                out.push(warn(
                    None,
                    format!("pdbtbx holds {theirs} atoms in model 1, the file has {first_model_records} atom records"),
                ));
            }
            out
        }
        Ok(Err(errors)) => {
            let mut out = vec![warn(None, "pdbtbx rejects this file; loaded with molstream's reader".into())];
            out.extend(errors.iter().take(20).map(|e| {
                let (line, msg) = describe(e);
                warn(line, msg)
            }));
            out
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            // Panic messages can quote raw input: keep one short line.
            let mut what: String = what.lines().next().unwrap_or("").chars().take(160).collect();
            if what.is_empty() {
                what = "no message".into();
            }
            vec![warn(None, format!("pdbtbx panicked ({what}); loaded with molstream's reader"))]
        }
    }
}

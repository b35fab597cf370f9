//! A tolerant, single-pass PDB reader working on bytes by column.
//!
//! It accepts what MD programs write (short lines, no element column, 4-character residue
//! names, hybrid-36 serials, `*****` serials past 99,999) and keeps every ATOM/HETATM record in
//! file order, alternate locations included. Errors name the line.

use glam::Vec3;

use super::{LoadError, LoadWarning, ParsedModel, ParsedStructure, WarningOrigin};
use crate::builder::{AtomRecord, SecondaryRange, TopologyBuilder};
use crate::element::Element;
use crate::model::{BondKind, SecondaryStructure};

/// Column 1-based inclusive range `[a, b]` of `line` as a trimmed `&str` ("" past the end).
fn col(line: &[u8], a: usize, b: usize) -> &str {
    field(line, a, b).trim()
}

/// Column range without trimming.
fn field(line: &[u8], a: usize, b: usize) -> &str {
    let start = (a - 1).min(line.len());
    let end = b.min(line.len());
    // The reader checked the whole input is UTF-8; columns may still cut a multi-byte char.
    std::str::from_utf8(&line[start..end]).unwrap_or("")
}

/// Decodes a hybrid-36 number of width `w` (plain decimal included). `None` for `*****` and
/// other junk.
#[must_use]
pub fn hybrid36(s: &str, w: u32) -> Option<i64> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(v) = t.parse::<i64>() {
        return Some(v);
    }
    let first = t.as_bytes()[0];
    let upper = first.is_ascii_uppercase();
    if !(upper || first.is_ascii_lowercase()) || t.len() != w as usize {
        return None;
    }
    let mut v: i64 = 0;
    for c in t.bytes() {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' if upper => c - b'A' + 10,
            b'a'..=b'z' if !upper => c - b'a' + 10,
            _ => return None,
        };
        v = v * 36 + i64::from(d);
    }
    let p36 = 36i64.pow(w - 1);
    let p10 = 10i64.pow(w);
    Some(if upper { v - 10 * p36 + p10 } else { v + 16 * p36 + p10 })
}

fn parse_f32(line: &[u8], a: usize, b: usize) -> Option<f32> {
    col(line, a, b).parse::<f32>().ok().filter(|v| v.is_finite())
}

fn single_char(line: &[u8], c: usize) -> u8 {
    match line.get(c - 1) {
        Some(&ch) if ch != b' ' && ch.is_ascii_graphic() => ch,
        _ => 0,
    }
}

/// Formal charge from columns 79-80: `2+`, `1-`, also `+2`/`-1`.
fn charge(s: &str) -> i8 {
    let b = s.as_bytes();
    match b {
        [d @ b'0'..=b'9', b'+'] | [b'+', d @ b'0'..=b'9'] => i8::try_from(d - b'0').unwrap_or(0),
        [d @ b'0'..=b'9', b'-'] | [b'-', d @ b'0'..=b'9'] => -i8::try_from(d - b'0').unwrap_or(0),
        _ => 0,
    }
}

struct ModelState {
    builder: TopologyBuilder,
    number: i32,
    opened_at: usize,
}

/// Parses PDB text. `name` labels errors.
pub(super) fn parse(text: &str, name: &str, max_atoms: usize) -> Result<ParsedStructure, LoadError> {
    let mut models: Vec<ParsedModel> = Vec::new();
    let mut current: Option<ModelState> = None;
    let mut in_model_record = false;
    let mut secondary = Vec::new();
    let mut conect: Vec<(usize, i64, Vec<i64>)> = Vec::new();
    let mut warnings = Vec::new();
    let mut guessed_elements = 0usize;
    let mut bad_serials = 0usize;
    let mut total_atoms = 0usize;
    let mut last_serial: i64 = 0;
    let mut saw_end = false;
    let err = |line: usize, message: String| LoadError::Syntax { file: name.to_owned(), line, message };

    for (i, raw) in text.split('\n').enumerate() {
        let ln = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw).as_bytes();
        let rec = field(line, 1, 6).trim_end();
        match rec {
            "ATOM" | "HETATM" => {
                if line.len() < 54 {
                    return Err(err(
                        ln,
                        format!("{rec} record has {} columns; coordinates need 54", line.len()),
                    ));
                }
                let (Some(x), Some(y), Some(z)) =
                    (parse_f32(line, 31, 38), parse_f32(line, 39, 46), parse_f32(line, 47, 54))
                else {
                    return Err(err(ln, format!("bad coordinates {:?}", field(line, 31, 54))));
                };
                let serial = if let Some(s) = hybrid36(field(line, 7, 11), 5) {
                    s
                } else {
                    bad_serials += 1;
                    last_serial + 1
                };
                last_serial = serial;
                let Some(seq) = hybrid36(field(line, 23, 26), 4) else {
                    return Err(err(ln, format!("bad residue number {:?}", field(line, 23, 26))));
                };
                let raw_name = field(line, 13, 16);
                let res_name = col(line, 18, 21);
                let element = match Element::from_symbol(col(line, 77, 78)) {
                    Some(e) => e,
                    None => {
                        guessed_elements += 1;
                        Element::guess_from_atom_name(raw_name, res_name)
                    }
                };
                total_atoms += 1;
                if total_atoms > max_atoms {
                    return Err(LoadError::TooLarge {
                        file: name.to_owned(),
                        message: format!("more than {max_atoms} atoms"),
                    });
                }
                let state = current.get_or_insert_with(|| ModelState {
                    builder: TopologyBuilder::new(),
                    number: i32::try_from(models.len() + 1).unwrap_or(i32::MAX),
                    opened_at: ln,
                });
                state.builder.push(&AtomRecord {
                    name: raw_name.trim(),
                    element,
                    serial: i32::try_from(serial).unwrap_or(i32::MAX),
                    alt_loc: single_char(line, 17),
                    het: rec == "HETATM",
                    occupancy: parse_f32(line, 55, 60).unwrap_or(1.0),
                    b_factor: parse_f32(line, 61, 66).unwrap_or(0.0),
                    formal_charge: charge(col(line, 79, 80)),
                    res_name,
                    chain: col(line, 22, 22),
                    seq_num: i32::try_from(seq).unwrap_or(i32::MAX),
                    ins_code: single_char(line, 27),
                    position: Vec3::new(x, y, z),
                });
            }
            "MODEL" => {
                if let Some(open) = &current {
                    if in_model_record {
                        return Err(err(
                            ln,
                            format!("MODEL before ENDMDL of the MODEL opened at line {}", open.opened_at),
                        ));
                    }
                    // Atoms before the first MODEL record: keep them as a model of their own.
                    finish_model(&mut models, current.take());
                }
                let number = col(line, 11, 14).parse::<i32>().unwrap_or_else(|_| {
                    i32::try_from(models.len() + 1).unwrap_or(i32::MAX)
                });
                current = Some(ModelState { builder: TopologyBuilder::new(), number, opened_at: ln });
                in_model_record = true;
            }
            "ENDMDL" => {
                if !in_model_record {
                    return Err(err(ln, "ENDMDL without MODEL".into()));
                }
                finish_model(&mut models, current.take());
                in_model_record = false;
            }
            "TER" => {
                if let Some(s) = current.as_mut() {
                    s.builder.chain_break();
                }
            }
            "CONECT" => {
                let Some(from) = hybrid36(field(line, 7, 11), 5) else {
                    return Err(err(ln, format!("CONECT has a bad atom serial {:?}", field(line, 7, 11))));
                };
                let mut to = Vec::with_capacity(4);
                for start in [12, 17, 22, 27] {
                    let f = field(line, start, start + 4);
                    if f.trim().is_empty() {
                        continue;
                    }
                    match hybrid36(f, 5) {
                        Some(s) => to.push(s),
                        None => return Err(err(ln, format!("CONECT has a bad atom serial {f:?}"))),
                    }
                }
                conect.push((ln, from, to));
            }
            "HELIX" => secondary.push(SecondaryRange {
                kind: SecondaryStructure::Helix,
                chain: col(line, 20, 20).to_owned(),
                start: (col(line, 22, 25).parse().unwrap_or(i32::MIN), single_char(line, 26)),
                end: (col(line, 34, 37).parse().unwrap_or(i32::MIN), single_char(line, 38)),
            }),
            "SHEET" => secondary.push(SecondaryRange {
                kind: SecondaryStructure::Sheet,
                chain: col(line, 22, 22).to_owned(),
                start: (col(line, 23, 26).parse().unwrap_or(i32::MIN), single_char(line, 27)),
                end: (col(line, 34, 37).parse().unwrap_or(i32::MIN), single_char(line, 38)),
            }),
            "END" => {
                saw_end = true;
                break;
            }
            _ => {}
        }
    }
    if in_model_record && let Some(open) = &current {
        if saw_end {
            // Writers that close the last model with END alone: accepted, but said.
            warnings.push(LoadWarning {
                line: Some(open.opened_at),
                origin: WarningOrigin::Molstream,
                message: format!("MODEL {} is closed by END, not ENDMDL", open.number),
            });
        } else {
            return Err(LoadError::Truncated {
            file: name.to_owned(),
            line: open.opened_at,
            message: format!("MODEL {} has no ENDMDL (the file ends inside it)", open.number),
            });
        }
    }
    finish_model(&mut models, current.take());
    if models.iter().all(|m| m.builder.atom_count() == 0) {
        return Err(LoadError::NoAtoms { file: name.to_owned() });
    }
    models.retain(|m| m.builder.atom_count() > 0);

    if guessed_elements > 0 {
        warnings.push(LoadWarning {
            line: None,
            origin: WarningOrigin::Molstream,
            message: format!(
                "{guessed_elements} atom records have no element (columns 77-78); guessed from atom names"
            ),
        });
    }
    if bad_serials > 0 {
        warnings.push(LoadWarning {
            line: None,
            origin: WarningOrigin::Molstream,
            message: format!("{bad_serials} atom serials unreadable (e.g. *****); numbered sequentially"),
        });
    }
    Ok(ParsedStructure { models, secondary, conect, warnings })
}

fn finish_model(models: &mut Vec<ParsedModel>, state: Option<ModelState>) {
    if let Some(s) = state {
        models.push(ParsedModel { builder: s.builder, number: s.number });
    }
}

/// Resolves CONECT records (by serial) to atom-index bonds of a topology. Repeating a partner
/// in one record raises the order (the convention of OpenBabel and others for double bonds).
pub(super) fn resolve_conect(
    conect: &[(usize, i64, Vec<i64>)],
    serials: &[i32],
    name: &str,
) -> Result<Vec<(crate::ids::AtomId, crate::ids::AtomId, BondKind)>, LoadError> {
    use std::collections::HashMap;
    if conect.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_serial: HashMap<i64, usize> = HashMap::with_capacity(serials.len());
    for (i, &s) in serials.iter().enumerate() {
        // First atom wins when serials repeat (alternate locations share none in valid files).
        by_serial.entry(i64::from(s)).or_insert(i);
    }
    let lookup = |ln: usize, s: i64| {
        by_serial.get(&s).copied().ok_or_else(|| LoadError::Syntax {
            file: name.to_owned(),
            line: ln,
            message: format!("CONECT refers to atom serial {s}, which no ATOM/HETATM record has"),
        })
    };
    let mut out = Vec::new();
    for (ln, from, to) in conect {
        let a = lookup(*ln, *from)?;
        let mut partners: Vec<usize> = Vec::with_capacity(to.len());
        for &s in to {
            partners.push(lookup(*ln, s)?);
        }
        partners.sort_unstable();
        for group in partners.chunk_by(|x, y| x == y) {
            let kind = match group.len() {
                1 => BondKind::Single,
                2 => BondKind::Double,
                _ => BondKind::Triple,
            };
            out.push((crate::ids::AtomId::from_index(a), crate::ids::AtomId::from_index(group[0]), kind));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid36_decodes_plain_and_extended_numbers() {
        assert_eq!(hybrid36("    1", 5), Some(1));
        assert_eq!(hybrid36("99999", 5), Some(99_999));
        assert_eq!(hybrid36("A0000", 5), Some(100_000));
        assert_eq!(hybrid36("A0001", 5), Some(100_001));
        assert_eq!(hybrid36("a0000", 5), Some(100_000 + 26 * 36i64.pow(4)));
        assert_eq!(hybrid36("A000", 4), Some(10_000));
        assert_eq!(hybrid36("*****", 5), None);
        assert_eq!(hybrid36("", 5), None);
        assert_eq!(hybrid36("-12", 4), Some(-12));
    }

    #[test]
    fn charges_parse_both_orders() {
        assert_eq!(charge("2+"), 2);
        assert_eq!(charge("1-"), -1);
        assert_eq!(charge("-1"), -1);
        assert_eq!(charge(""), 0);
        assert_eq!(charge("??"), 0);
    }
}

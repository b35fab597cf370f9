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
fn col(line: &str, a: usize, b: usize) -> &str {
    field(line, a, b).trim()
}

/// Column range without trimming ("" where the range cuts a multi-byte character).
fn field(line: &str, a: usize, b: usize) -> &str {
    let start = (a - 1).min(line.len());
    let end = b.min(line.len());
    line.get(start..end).unwrap_or("")
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

fn parse_f32(line: &str, a: usize, b: usize) -> Option<f32> {
    col(line, a, b).parse::<f32>().ok().filter(|v| v.is_finite())
}

fn single_char(line: &str, c: usize) -> u8 {
    match line.as_bytes().get(c - 1) {
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
    // Guessing an element from a name is costly and names repeat: cache per (name, residue).
    let mut guesses: std::collections::HashMap<(&str, &str), Element> = std::collections::HashMap::new();
    let mut last_serial: i64 = 0;
    let mut saw_end = false;
    // (model number, line) of every MODEL record: numbers must be unique.
    let mut model_lines: Vec<(i32, usize)> = Vec::new();
    let err = |line: usize, message: String| LoadError::Syntax { file: name.to_owned(), line, message };

    for (i, raw) in text.split('\n').enumerate() {
        let ln = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let rec = field(line, 1, 6).trim_end();
        match rec {
            "ATOM" | "HETATM" => {
                if line.len() < 54 {
                    return Err(err(ln, format!("{rec} record has {} columns; coordinates need 54", line.len())));
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
                        *guesses
                            .entry((raw_name, res_name))
                            .or_insert_with(|| Element::guess_from_atom_name(raw_name, res_name))
                    }
                };
                total_atoms += 1;
                if total_atoms > max_atoms {
                    return Err(LoadError::TooLarge {
                        file: name.to_owned(),
                        message: format!("more than {max_atoms} atoms"),
                    });
                }
                // An ATOM line is 81 bytes: the first model reserves for a file of only atoms,
                // later ones for as many atoms as the first.
                let capacity = models.first().map_or(text.len() / 81, |m| m.builder.atom_count());
                let state = current.get_or_insert_with(|| ModelState {
                    builder: TopologyBuilder::with_capacity(capacity),
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
                // The serial belongs in columns 11-14; some writers put it right after the
                // record name.
                let serial = match col(line, 11, 14) {
                    "" => line.get(5..).unwrap_or("").trim(),
                    s => s,
                };
                let number =
                    serial.parse::<i32>().unwrap_or_else(|_| i32::try_from(models.len() + 1).unwrap_or(i32::MAX));
                if let Some(first) = model_lines.iter().find(|(n, _)| *n == number) {
                    return Err(err(ln, format!("duplicate MODEL number {number} (first at line {})", first.1)));
                }
                model_lines.push((number, ln));
                let capacity = models.first().map_or(text.len() / 81, |m| m.builder.atom_count());
                current = Some(ModelState { builder: TopologyBuilder::with_capacity(capacity), number, opened_at: ln });
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

/// Encodes `v` in hybrid-36 of width `w` (plain decimal while it fits), as PDB writers do past
/// 99,999 atoms. Values beyond the hybrid-36 range are written as `*` × `w`.
#[must_use]
pub fn encode_hybrid36(v: i64, w: u32) -> String {
    let width = w as usize;
    let p10 = 10i64.pow(w);
    let p36 = 36i64.pow(w - 1);
    if v > -(p10 / 10) && v < p10 {
        return format!("{v:>width$}");
    }
    let digits = |mut x: i64, upper: bool| {
        let table: &[u8; 36] =
            if upper { b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" } else { b"0123456789abcdefghijklmnopqrstuvwxyz" };
        let mut s = vec![b'0'; width];
        for slot in s.iter_mut().rev() {
            *slot = table[usize::try_from(x % 36).unwrap_or(0)];
            x /= 36;
        }
        String::from_utf8(s).unwrap_or_default()
    };
    let upper_span = 26 * p36;
    if v >= p10 && v < p10 + upper_span {
        digits(v - p10 + 10 * p36, true)
    } else if v >= p10 + upper_span && v < p10 + 2 * upper_span {
        digits(v - p10 - upper_span + 10 * p36, false)
    } else {
        "*".repeat(width)
    }
}

/// Writes one model as PDB text (ATOM/HETATM with element columns, TER between chain segments,
/// END). Serials and residue numbers past the columns' decimal range use hybrid-36.
#[must_use]
pub fn write(view: crate::model::ModelView<'_>) -> String {
    use std::fmt::Write as _;
    let t = view.topology;
    let mut out = String::with_capacity(t.atom_count() * 81 + 16);
    let mut serial: i64 = 0;
    for c in 0..t.chain_count() {
        let cid = crate::ids::ChainId::from_index(c);
        let chain = t.chain_name(cid).chars().next().unwrap_or(' ');
        for r in t.chain_residues(cid) {
            let rid = crate::ids::ResidueId::from_index(r);
            let res = t.residue_name(rid);
            let seq = encode_hybrid36(i64::from(t.residues.seq_num[r]), 4);
            let icode = char::from(t.residues.ins_code[r]).to_string().replace('\0', " ");
            for a in t.residue_atoms(rid) {
                serial += 1;
                let at = &t.atoms;
                let name = t.strings.get(at.name[a]);
                let el = at.element[a];
                // Names shorter than 4 start in column 14 unless the element has two letters.
                let name =
                    if name.len() < 4 && el.symbol().len() == 1 { format!(" {name:<3}") } else { format!("{name:<4}") };
                let p = view.positions[a];
                let alt = if at.alt_loc[a] == 0 { ' ' } else { char::from(at.alt_loc[a]) };
                let charge = match at.formal_charge[a] {
                    0 => String::new(),
                    q if q > 0 => format!("{q}+"),
                    q => format!("{}-", -q),
                };
                let _ = writeln!(
                    out,
                    "{:<6}{:>5} {}{}{:>3} {}{:>4}{}   {:>8.3}{:>8.3}{:>8.3}{:>6.2}{:>6.2}          {:>2}{:<2}",
                    if at.het[a] { "HETATM" } else { "ATOM" },
                    encode_hybrid36(serial, 5),
                    name,
                    alt,
                    res,
                    chain,
                    seq,
                    icode,
                    p.x,
                    p.y,
                    p.z,
                    at.occupancy[a],
                    at.b_factor[a],
                    el.symbol().to_ascii_uppercase(),
                    charge
                );
            }
        }
        out.push_str("TER\n");
    }
    out.push_str("END\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid36_round_trips() {
        for v in [0, 1, 9_999, 10_000, 99_999, 100_000, 123_456, 2_436_111, 2_436_112, 40_000_000] {
            assert_eq!(hybrid36(&encode_hybrid36(v, 5), 5), Some(v), "{v}");
        }
        for v in [-999, 9_999, 10_000, 456_975] {
            assert_eq!(hybrid36(&encode_hybrid36(v, 4), 4), Some(v), "{v}");
        }
    }

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
